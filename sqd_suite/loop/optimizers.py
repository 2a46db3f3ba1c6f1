"""Gradient-free optimisers on a batch objective, independent of SQD.

Every optimiser minimises a :data:`BatchObjective`: ``objective(points,
generation) -> values``, where ``points`` is a ``(k, d)`` array of parameter
vectors evaluated together (the walkers of one generation, which a caller may
run in parallel) and ``generation`` numbers the batch (0 is always the
starting point ``x0`` alone, or with the initial population). The row index of
a point in its batch is its *walker*; ``(generation, walker)`` identifies an
evaluation, so a caller can derive its randomness from ``(seed, generation,
walker)`` and replay a run deterministically.

The optimisers themselves draw random numbers from ``(seed, generation)`` only,
so replaying a run with the same recorded objective values retraces it exactly
(this is how a crashed closed-loop run resumes).

Wrap a plain ``f(x) -> float`` with :func:`pointwise`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

__all__ = [
    "BatchObjective",
    "GenerationRecord",
    "OptimizeResult",
    "cobyla",
    "differential_evolution",
    "initial_population",
    "pointwise",
    "spsa",
]

BatchObjective = Callable[[np.ndarray, int], np.ndarray]


def pointwise(fun: Callable[[np.ndarray], float]) -> BatchObjective:
    """A batch objective that evaluates ``fun`` on each row in turn."""

    def objective(points: np.ndarray, generation: int) -> np.ndarray:
        return np.array([float(fun(p)) for p in points], dtype=float)

    return objective


@dataclass(frozen=True)
class GenerationRecord:
    """One batch of evaluations.

    ``points`` (k, d) and ``values`` (k,) are what was evaluated;
    ``best_value`` / ``best_x`` the best value seen so far (after this batch)
    and where; ``accepted`` (DE only) marks the walkers whose trial replaced
    the target.
    """

    generation: int
    points: np.ndarray
    values: np.ndarray
    best_value: float
    best_x: np.ndarray
    accepted: np.ndarray | None = None
    population_values: np.ndarray | None = None


@dataclass(frozen=True)
class OptimizeResult:
    """Outcome of an optimiser.

    ``x``/``fun`` are the best evaluated point and its value (for SQD any
    evaluated energy is a variational upper bound, so the minimum over
    evaluations is a legitimate result). ``x_last`` is the optimiser's final
    iterate (DE: the best member of the final population, the same as ``x``;
    SPSA: the last iterate, which need not have been evaluated). ``nfev``
    counts evaluations, ``history`` holds one record per batch.
    """

    x: np.ndarray
    fun: float
    x_last: np.ndarray
    nfev: int
    ngen: int
    history: tuple[GenerationRecord, ...] = field(repr=False)
    message: str = ""


def _rng(seed: int, generation: int) -> np.random.Generator:
    # One stream per generation: a replay needs no saved RNG state.
    return np.random.default_rng([int(seed), int(generation)])


def _evaluate(objective: BatchObjective, points: np.ndarray, generation: int) -> np.ndarray:
    values = np.asarray(objective(np.array(points, dtype=float, copy=True), generation), dtype=float)
    if values.shape != (len(points),):
        raise ValueError(f"objective returned shape {values.shape} for {len(points)} points")
    # A failed evaluation (NaN) must never be selected.
    return np.where(np.isfinite(values), values, np.inf)


def initial_population(x0: np.ndarray, population: int, init_noise: float, *, seed: int) -> np.ndarray:
    """Walker 0 is ``x0``; walkers 1.. are ``x0`` plus uniform noise in ``[-init_noise, init_noise]``."""
    x0 = np.asarray(x0, dtype=float)
    noise = _rng(seed, 0).uniform(-init_noise, init_noise, size=(population - 1, x0.size))
    return np.vstack([x0[None, :], x0[None, :] + noise])


def differential_evolution(
    objective: BatchObjective,
    x0: np.ndarray,
    *,
    population: int = 6,
    generations: int = 4,
    mutation: float = 0.6,
    crossover: float = 0.9,
    init_noise: float = 0.05,
    seed: int = 0,
    callback: Callable[[GenerationRecord], None] | None = None,
) -> OptimizeResult:
    """Differential evolution, best/2/bin, synchronous (one batch per generation).

    Generation 0 evaluates the initial population (:func:`initial_population`).
    Each of the following ``generations`` builds, for every walker ``i``, the
    mutant ``best + F * (x_r1 - x_r2 + x_r3 - x_r4)`` with ``r1..r4`` distinct
    walkers other than ``i`` (drawn with replacement when fewer than four
    exist), takes each coordinate from the mutant with probability
    ``crossover`` (and one random coordinate always), evaluates all trials as
    one batch and keeps a trial when it is no worse than its target (greedy
    selection, so the best value never increases). Evaluations:
    ``population * (generations + 1)``.
    """
    x0 = np.asarray(x0, dtype=float).ravel()
    if population < 3:
        raise ValueError(f"differential evolution needs a population of at least 3 (got {population})")
    if generations < 0:
        raise ValueError(f"generations must be >= 0 (got {generations})")
    dim = x0.size
    pop = initial_population(x0, population, init_noise, seed=seed)
    values = _evaluate(objective, pop, 0)
    best = int(np.argmin(values))
    history = [
        GenerationRecord(0, pop.copy(), values.copy(), float(values[best]), pop[best].copy(),
                         accepted=None, population_values=values.copy())
    ]
    if callback is not None:
        callback(history[-1])

    for gen in range(1, generations + 1):
        rng = _rng(seed, gen)
        trials = np.empty_like(pop)
        for i in range(population):
            others = np.delete(np.arange(population), i)
            r = rng.choice(others, size=4, replace=len(others) < 4)
            mutant = pop[best] + mutation * (pop[r[0]] - pop[r[1]] + pop[r[2]] - pop[r[3]])
            take = rng.random(dim) < crossover
            take[rng.integers(dim)] = True
            trials[i] = np.where(take, mutant, pop[i])
        trial_values = _evaluate(objective, trials, gen)
        accepted = trial_values <= values
        pop[accepted] = trials[accepted]
        values[accepted] = trial_values[accepted]
        best = int(np.argmin(values))
        history.append(
            GenerationRecord(gen, trials, trial_values, float(values[best]), pop[best].copy(),
                             accepted=accepted, population_values=values.copy())
        )
        if callback is not None:
            callback(history[-1])

    return OptimizeResult(
        x=pop[best].copy(),
        fun=float(values[best]),
        x_last=pop[best].copy(),
        nfev=population * (generations + 1),
        ngen=generations + 1,
        history=tuple(history),
        message=f"differential evolution best/2/bin: {generations} generations of {population} walkers",
    )


class _Tracker:
    """Best point so far and the per-batch history of a sequential optimiser."""

    def __init__(self, objective: BatchObjective, callback: Callable[[GenerationRecord], None] | None) -> None:
        self.objective = objective
        self.callback = callback
        self.history: list[GenerationRecord] = []
        self.best_x: np.ndarray | None = None
        self.best_value = np.inf
        self.nfev = 0

    def __call__(self, points: np.ndarray) -> np.ndarray:
        gen = len(self.history)
        values = _evaluate(self.objective, points, gen)
        self.nfev += len(points)
        i = int(np.argmin(values))
        if self.best_x is None or values[i] < self.best_value:
            self.best_x, self.best_value = points[i].copy(), float(values[i])
        self.history.append(GenerationRecord(gen, np.array(points, copy=True), values, self.best_value, self.best_x.copy()))
        if self.callback is not None:
            self.callback(self.history[-1])
        return values


class _BudgetExhausted(Exception):
    """Raised inside an objective to stop scipy at the evaluation budget."""


def cobyla(
    objective: BatchObjective,
    x0: np.ndarray,
    *,
    max_evaluations: int = 40,
    rhobeg: float = 0.05,
    callback: Callable[[GenerationRecord], None] | None = None,
) -> OptimizeResult:
    """COBYLA (scipy), one evaluation per generation; generation 0 is ``x0``.

    ``rhobeg`` is the initial trust-region radius (the closed loop passes
    ``init_noise``: the same scale as the DE walkers' spread). COBYLA's first
    ``d + 1`` evaluations build its initial simplex (one coordinate step of
    ``rhobeg`` each), so with ``max_evaluations <= d + 1`` it is a coordinate
    scan; the budget is enforced exactly even when scipy would ask for more.
    """
    x0 = np.asarray(x0, dtype=float).ravel()
    track = _Tracker(objective, callback)

    def fun(x: np.ndarray) -> float:
        if track.nfev >= max_evaluations:
            raise _BudgetExhausted
        value = float(track(x[None, :])[0])
        # COBYLA cannot step away from an infinite value; a large finite one works.
        return value if np.isfinite(value) else 1e10

    # scipy insists on at least d + 2 evaluations; the budget is enforced in fun.
    maxfun = max(int(max_evaluations), x0.size + 2)
    try:
        res = scipy.optimize.minimize(
            fun, x0, method="COBYLA", options={"maxiter": maxfun, "rhobeg": float(rhobeg), "tol": 1e-8}
        )
        x_last, message = np.asarray(res.x, dtype=float), f"COBYLA: {res.message}"
    except _BudgetExhausted:
        x_last, message = track.best_x, f"COBYLA: stopped at the budget of {max_evaluations} evaluations"
    if track.best_x is None:  # pragma: no cover - scipy always evaluates x0
        raise RuntimeError("COBYLA made no evaluation")
    return OptimizeResult(
        x=track.best_x,
        fun=track.best_value,
        x_last=x_last,
        nfev=track.nfev,
        ngen=len(track.history),
        history=tuple(track.history),
        message=message,
    )


def spsa(
    objective: BatchObjective,
    x0: np.ndarray,
    *,
    max_evaluations: int = 40,
    perturbation: float = 0.05,
    target_step: float | None = None,
    learning_rate: float | None = None,
    alpha: float = 0.602,
    gamma: float = 0.101,
    stability: float | None = None,
    seed: int = 0,
    callback: Callable[[GenerationRecord], None] | None = None,
) -> OptimizeResult:
    """Simultaneous-perturbation stochastic approximation (Spall's gains).

    Generation 0 evaluates ``x0``; generation ``k >= 1`` evaluates the pair
    ``x_k +- c_k * delta_k`` (one batch of two walkers, ``delta`` a random
    +-1 vector) and steps ``x_{k+1} = x_k - a_k * g_k`` with
    ``g_k = (f+ - f-) / (2 c_k) * delta_k``. Gains: ``a_k = a / (k + A)^alpha``,
    ``c_k = perturbation / k^gamma``, ``A = stability`` (default a tenth of
    the iterations). Without ``learning_rate``, ``a`` is calibrated from the
    first gradient estimate so that the first step moves each coordinate by
    ``target_step`` (default ``perturbation``) on average; this costs no
    extra evaluation.
    """
    x = np.asarray(x0, dtype=float).ravel().copy()
    dim = x.size
    track = _Tracker(objective, callback)
    track(x[None, :])
    n_iter = max(0, (int(max_evaluations) - 1) // 2)
    big_a = 0.1 * n_iter if stability is None else float(stability)
    target = perturbation if target_step is None else float(target_step)
    a = learning_rate
    for k in range(1, n_iter + 1):
        rng = _rng(seed, k)
        delta = rng.choice(np.array([-1.0, 1.0]), size=dim)
        ck = perturbation / k**gamma
        f_plus, f_minus = track(np.vstack([x + ck * delta, x - ck * delta]))
        if not (np.isfinite(f_plus) and np.isfinite(f_minus)):
            continue  # a failed evaluation gives no gradient information
        grad = (f_plus - f_minus) / (2.0 * ck) * delta
        if a is None:
            scale = np.mean(np.abs(grad))
            a = target * (1.0 + big_a) ** alpha / scale if scale > 0 else target
        x = x - a / (k + big_a) ** alpha * grad
    return OptimizeResult(
        x=track.best_x,
        fun=track.best_value,
        x_last=x,
        nfev=track.nfev,
        ngen=len(track.history),
        history=tuple(track.history),
        message=f"SPSA: {n_iter} iterations",
    )
