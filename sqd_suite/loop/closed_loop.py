"""Closed-loop SQD: optimise the LUCJ parameters with the SQD energy as the objective.

The parameter vector is the ansatz's flat vector (``ansatz.to_parameters()``,
which includes the final orbital rotation when ``circuit.final_orbital_rotation``
is on). One *evaluation* of a vector samples its circuit with the configured
sampler (``closed_loop.shots`` shots), runs the self-consistent SQD loop on the
samples and returns its energy. The optimiser (:mod:`sqd_suite.loop.optimizers`,
chosen by ``closed_loop.optimizer``) sees only energies:

- ``differential_evolution``: best/2/bin over ``population`` walkers; walker 0
  of generation 0 is the CCSD-initialised ansatz (the open-loop result), the
  others it plus uniform noise ``init_noise``; ``generations`` further
  generations follow.
- ``cobyla`` / ``spsa``: a local search from the CCSD parameters within
  ``max_evaluations`` evaluations; ``init_noise`` sets the initial trust
  radius (COBYLA) or the perturbation and first step (SPSA).

Carry-over between generations: every walker of generation ``g`` adds to its
subspace the carry-over strings of the best evaluation of generations
``< g`` (its large-weight determinants), so what one generation found is
never lost. Under a cap (``sqd.max_dim``) only the heaviest
``closed_loop.carryover_fraction`` of the cap is carried, so the walkers'
own samples keep room in the subspace (:func:`limit_carryover`).

Randomness: evaluation ``(generation, walker)`` samples and subsamples with
seeds from :func:`evaluation_seeds` ``(closed_loop.seed, generation, walker)``
and the optimisers draw from ``(closed_loop.seed, generation)``, so the run is
a deterministic function of the recorded energies. Resume replays it: pass the
evaluations a crashed run recorded as ``completed`` and they are reused, not
recomputed (their parameter hashes are checked).

Parallel walkers: with an mpi4py communicator of several ranks, the ranks are
split into ``min(size, walkers)`` groups; group ``k`` evaluates the walkers
``w`` with ``w % groups == k`` (its leader samples, the group runs the SQD
loop and Davidson together) and the results are shared with every rank.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sqd_suite.config import ClosedLoopConfig, RunConfig, SamplerConfig, SQDConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.loop.optimizers import OptimizeResult, cobyla, differential_evolution, spsa
from sqd_suite.loop.sqd import SQD

__all__ = [
    "EVALUATIONS_GROUP",
    "ClosedLoopResult",
    "GenerationSummary",
    "WalkerEvaluation",
    "evaluate_walker",
    "evaluation_seeds",
    "limit_carryover",
    "params_hash",
    "read_evaluations",
    "read_run_evaluations",
    "run_closed_loop",
    "run_closed_loop_file",
    "write_evaluation",
]


class SampleFn(Protocol):
    """The sampler contract (:func:`sqd_suite.sampling.sample`)."""

    def __call__(self, ansatz: Any, shots: int, settings: SamplerConfig, *, seed: int) -> Any: ...


def params_hash(params: np.ndarray) -> str:
    """A short stable fingerprint of a parameter vector (float64 bytes)."""
    data = np.ascontiguousarray(np.asarray(params, dtype=np.float64)).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def evaluation_seeds(seed: int, generation: int, walker: int) -> tuple[int, int]:
    """``(sampler seed, SQD seed)`` of one evaluation: a function of ``(seed, generation, walker)`` only."""
    state = np.random.SeedSequence([int(seed), int(generation), int(walker)]).generate_state(2, dtype=np.uint32)
    return int(state[0]), int(state[1])


@dataclass(frozen=True)
class WalkerEvaluation:
    """One evaluation of the objective (what the run file records).

    ``subspace_shape`` is the SQD result's ``(n_alpha, n_beta)`` strings;
    ``distinct_strings`` the distinct alpha/beta strings over the last SQD
    iteration's batches; ``distinct_bitstrings`` the distinct sampled
    outcomes. ``carryover`` are the result's large-weight strings (they seed
    later generations when this evaluation is the best). ``timings`` holds
    wall seconds for ``sample``, ``sqd`` and ``total``, and ``cpu`` seconds.
    """

    generation: int
    walker: int
    params: np.ndarray
    params_hash: str
    sampler_seed: int
    sqd_seed: int
    energy: float
    subspace_shape: tuple[int, int]
    distinct_strings: tuple[int, int]
    distinct_bitstrings: int
    sqd_iterations: int
    carryover: tuple[np.ndarray, np.ndarray]
    carryover_in: tuple[int, int]
    occupancies: tuple[np.ndarray, np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return self.subspace_shape[0] * self.subspace_shape[1]


@dataclass(frozen=True)
class GenerationSummary:
    """One generation: its evaluations' energies and dimensions, and the best so far."""

    generation: int
    n_evaluations: int
    best_energy: float
    mean_energy: float
    best_so_far: float
    mean_dimension: float
    max_dimension: int
    seconds: float
    resumed: bool


@dataclass(frozen=True)
class ClosedLoopResult:
    """Outcome of :func:`run_closed_loop`.

    ``energy``/``params`` belong to the best evaluation ``best``;
    ``open_loop`` is generation 0, walker 0 (the CCSD-initialised ansatz, no
    carry-over: the plain SQD result at the same shots and subspace cap).
    ``improvement`` is ``open_loop.energy - energy`` (>= 0).
    ``best_carryover_in`` are the strings the best evaluation received (with
    them :func:`evaluate_walker` reproduces it); ``final`` is that re-run's
    SQD result when :func:`run_closed_loop_file` made one.
    """

    energy: float
    params: np.ndarray
    best: WalkerEvaluation
    open_loop: WalkerEvaluation
    evaluations: tuple[WalkerEvaluation, ...]
    generations: tuple[GenerationSummary, ...]
    optimizer: str
    message: str
    best_carryover_in: tuple[np.ndarray, np.ndarray] = field(repr=False, default=(np.zeros(0, np.int64),) * 2)
    e_exact: float | None = None
    final: Any = field(repr=False, default=None)

    @property
    def improvement(self) -> float:
        return self.open_loop.energy - self.energy

    @property
    def n_evaluations(self) -> int:
        return len(self.evaluations)

    def table(self) -> str:
        """The per-generation history as a plain-text table (mHa against exact when known)."""
        ref = self.e_exact
        head = f"{'gen':>4} {'evals':>5} {'best':>16} {'mean':>16} {'best so far':>16}"
        head += f" {'err (mHa)':>10}" if ref is not None else ""
        head += f" {'mean dim':>10} {'max dim':>8} {'time (s)':>9}"
        lines = [head]
        for g in self.generations:
            line = f"{g.generation:>4} {g.n_evaluations:>5} {g.best_energy:>16.8f} {g.mean_energy:>16.8f} {g.best_so_far:>16.8f}"
            if ref is not None:
                line += f" {1e3 * (g.best_so_far - ref):>10.3f}"
            line += f" {g.mean_dimension:>10.0f} {g.max_dimension:>8d} {g.seconds:>9.2f}"
            if g.resumed:
                line += "  (resumed)"
            lines.append(line)
        return "\n".join(lines)


def _walker_groups(comm: Any | None, n_walkers: int) -> tuple[int, int, Any | None, Any | None]:
    """(groups, this rank's group, group communicator for SQD, communicator to free)."""
    if comm is None or comm.Get_size() == 1:
        return 1, 0, None, None
    size, rank = comm.Get_size(), comm.Get_rank()
    n_groups = min(size, n_walkers)
    color = rank * n_groups // size
    sub = comm.Split(color, rank)
    return n_groups, color, (sub if sub.Get_size() > 1 else None), sub


class _Objective:
    """The SQD energy of parameter vectors, batch by batch (one batch = one generation)."""

    def __init__(
        self,
        hamiltonian: Any,
        ansatz: Any,
        sampler: SamplerConfig,
        sqd: SQDConfig,
        config: ClosedLoopConfig,
        *,
        comm: Any | None,
        completed: Sequence[WalkerEvaluation],
        callback: Callable[[WalkerEvaluation], None] | None,
        sample_fn: SampleFn,
    ) -> None:
        self.hamiltonian = hamiltonian
        self.ansatz = ansatz
        self.sampler = sampler
        self.sqd = sqd
        self.config = config
        self.comm = comm if comm is not None and comm.Get_size() > 1 else None
        self.completed = {(e.generation, e.walker): e for e in completed}
        self.callback = callback
        self.sample_fn = sample_fn
        self.evaluations: list[WalkerEvaluation] = []
        self.generations: list[GenerationSummary] = []
        self.best: WalkerEvaluation | None = None
        empty = np.zeros(0, dtype=np.int64)
        self.carry: tuple[np.ndarray, np.ndarray] = (empty, empty)
        self.carry_in: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, points: np.ndarray, generation: int) -> np.ndarray:
        t0 = time.perf_counter()
        # The carry-over of this generation is fixed before any walker runs.
        carry = self.carry
        self.carry_in[generation] = carry
        todo = []
        for w, x in enumerate(points):
            rec = self.completed.get((generation, w))
            if rec is None:
                todo.append(w)
            elif rec.params_hash != params_hash(x):
                raise SQDInputError(
                    "closed_loop",
                    f"the recorded evaluation (generation {generation}, walker {w}) has other parameters "
                    "than the replay computes",
                    fix="resume with the same closed_loop, circuit and sqd settings, or start a new run file",
                )
        fresh = self._evaluate(points, generation, todo, carry)
        batch: list[WalkerEvaluation] = []
        for w in range(len(points)):
            if w in fresh:
                ev = fresh[w]
                if self.callback is not None:
                    self.callback(ev)
            else:
                ev = self.completed[(generation, w)]
            batch.append(ev)
        self.evaluations.extend(batch)
        energies = np.array([e.energy for e in batch])
        i = int(np.argmin(energies))
        if self.best is None or batch[i].energy < self.best.energy:
            self.best = batch[i]
            self.carry = limit_carryover(self.best.carryover, self.sqd, self.config)
        dims = np.array([e.dimension for e in batch])
        resumed = not todo
        seconds = sum(e.timings.get("total", 0.0) for e in batch) if resumed else time.perf_counter() - t0
        self.generations.append(GenerationSummary(
            generation=generation,
            n_evaluations=len(batch),
            best_energy=float(energies[i]),
            mean_energy=float(energies.mean()),
            best_so_far=float(self.best.energy),
            mean_dimension=float(dims.mean()),
            max_dimension=int(dims.max()),
            seconds=float(seconds),
            resumed=resumed,
        ))
        return energies

    def _evaluate(
        self, points: np.ndarray, generation: int, todo: list[int], carry: tuple[np.ndarray, np.ndarray]
    ) -> dict[int, WalkerEvaluation]:
        if not todo:
            return {}
        n_groups, group, subcomm, to_free = _walker_groups(self.comm, len(todo))
        try:
            mine = [
                self._evaluate_one(points[w], generation, w, carry, subcomm)
                for k, w in enumerate(todo) if k % n_groups == group
            ]
        finally:
            if to_free is not None:
                to_free.Free()
        if self.comm is None:
            return {e.walker: e for e in mine}
        lead = subcomm is None or subcomm.Get_rank() == 0
        out: dict[int, WalkerEvaluation] = {}
        for part in self.comm.allgather(mine if lead else []):
            for e in part:
                out.setdefault(e.walker, e)
        return out

    def _evaluate_one(
        self, x: np.ndarray, generation: int, walker: int, carry: tuple[np.ndarray, np.ndarray], subcomm: Any | None
    ) -> WalkerEvaluation:
        ev, _, _ = evaluate_walker(
            self.hamiltonian, self.ansatz, x, self.sampler, self.sqd, self.config,
            generation=generation, walker=walker, carryover=carry, comm=subcomm, sample_fn=self.sample_fn,
        )
        return ev


def evaluate_walker(
    hamiltonian: Any,
    ansatz: Any,
    params: np.ndarray,
    sampler: SamplerConfig,
    sqd: SQDConfig,
    config: ClosedLoopConfig,
    *,
    generation: int,
    walker: int,
    carryover: tuple[np.ndarray, np.ndarray] | None = None,
    comm: Any | None = None,
    sample_fn: SampleFn | None = None,
) -> tuple[WalkerEvaluation, Any, Any]:
    """One evaluation: sample the ansatz at ``params``, run the SQD loop, summarise.

    Collective over ``comm`` (its rank 0 samples, all ranks share the SQD
    loop). Returns ``(evaluation, samples, sqd_result)``; the same arguments
    give the same numbers (this is how the run file's final result is
    reproduced for the best walker).
    """
    t0 = time.perf_counter()
    c0 = time.process_time()
    comm = comm if comm is not None and comm.Get_size() > 1 else None
    sample_fn = sample_fn or _default_sample_fn()
    shots = config.shots or sampler.shots
    empty = np.zeros(0, dtype=np.int64)
    carry = (empty, empty) if carryover is None else (
        np.asarray(carryover[0], np.int64), np.asarray(carryover[1], np.int64))
    sampler_seed, sqd_seed = evaluation_seeds(config.seed, generation, walker)
    circuit = ansatz.with_parameters(np.asarray(params, dtype=np.float64))
    # One sampler call per walker (a QPU job must not be submitted twice).
    samples = None
    if comm is None or comm.Get_rank() == 0:
        samples = sample_fn(circuit, shots, sampler, seed=sampler_seed)
    if comm is not None:
        samples = comm.bcast(samples, root=0)
    t_sample = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = SQD(hamiltonian, samples, sqd, seed=sqd_seed, comm=comm).kernel(
        carryover=carry if len(carry[0]) or len(carry[1]) else None
    )
    t_sqd = time.perf_counter() - t1
    last = result.iterations[-1]
    ev = WalkerEvaluation(
        generation=int(generation),
        walker=int(walker),
        params=np.array(params, dtype=np.float64, copy=True),
        params_hash=params_hash(params),
        sampler_seed=sampler_seed,
        sqd_seed=sqd_seed,
        energy=float(result.energy),
        subspace_shape=(int(result.subspace_shape[0]), int(result.subspace_shape[1])),
        distinct_strings=(int(last.distinct_strings[0]), int(last.distinct_strings[1])),
        distinct_bitstrings=int(len(samples.counts)),
        sqd_iterations=len(result.iterations),
        carryover=_heaviest_first(last.carryover, result, symmetric=bool(sqd.symmetrize_spin)),
        carryover_in=(len(carry[0]), len(carry[1])),
        occupancies=(np.asarray(result.occupancies[0]), np.asarray(result.occupancies[1])),
        # cpu: this process's CPU seconds; far below total on an oversubscribed machine.
        timings={"sample": t_sample, "sqd": t_sqd, "total": time.perf_counter() - t0,
                 "cpu": time.process_time() - c0},
    )
    return ev, samples, result


def _string_weights(strings: np.ndarray, top_strings: np.ndarray, top_coef: np.ndarray) -> np.ndarray:
    """Sum of ``c**2`` over the result's largest determinants, per string of the sorted ``strings``."""
    w = np.zeros(len(strings))
    if len(strings) == 0 or len(top_strings) == 0:
        return w
    pos = np.searchsorted(strings, top_strings)
    ok = pos < len(strings)
    ok[ok] &= strings[pos[ok]] == top_strings[ok]
    np.add.at(w, pos[ok], np.square(top_coef[ok]))
    return w


def _heaviest_first(
    carry: tuple[np.ndarray, np.ndarray], result: Any, *, symmetric: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The carry-over strings ordered by descending CI weight (ties by string), so a prefix is the heaviest."""
    a = np.sort(np.asarray(carry[0], np.int64))
    b = np.sort(np.asarray(carry[1], np.int64))
    top_a, top_b, top_c = (np.asarray(result.top_alpha, np.int64), np.asarray(result.top_beta, np.int64),
                           np.asarray(result.top_coef, np.float64))
    wa = _string_weights(a, top_a, top_c)
    wb = _string_weights(b, top_b, top_c)
    if symmetric and np.array_equal(a, b):
        # one shared string set: weigh each string by both spins
        wa = wb = wa + wb
    return a[np.lexsort((a, -wa))], b[np.lexsort((b, -wb))]


def limit_carryover(
    carry: tuple[np.ndarray, np.ndarray], sqd: SQDConfig, config: ClosedLoopConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The heaviest ``carryover_fraction * sqd.max_dim`` strings per spin (all without a cap), sorted.

    With a cap, carrying the whole best subspace would fill it and leave the
    walkers' samples no room: every walker would return the same energy.
    """
    a, b = carry
    if sqd.max_dim is not None:
        k = max(1, int(config.carryover_fraction * sqd.max_dim))
        a, b = a[:k], b[:k]
    return np.sort(np.asarray(a, np.int64)), np.sort(np.asarray(b, np.int64))


def _default_sample_fn() -> SampleFn:
    from sqd_suite.sampling import sample

    return sample


def run_closed_loop(
    hamiltonian: Any,
    ansatz: Any,
    sampler: SamplerConfig,
    sqd: SQDConfig,
    config: ClosedLoopConfig,
    *,
    comm: Any | None = None,
    completed: Sequence[WalkerEvaluation] = (),
    callback: Callable[[WalkerEvaluation], None] | None = None,
    sample_fn: SampleFn | None = None,
) -> ClosedLoopResult:
    """Optimise the ansatz parameters with the SQD energy as the objective.

    Args:
        hamiltonian: An :class:`~sqd_suite.hamiltonian.ActiveSpaceHamiltonian`.
        ansatz: The CCSD-initialised :class:`~sqd_suite.circuits.LUCJAnsatz`
            (walker 0 of generation 0; its ``to_parameters()`` is ``x0``).
        sampler: The ``sampler`` section (kind, noise); ``closed_loop.shots``
            overrides its ``shots``.
        sqd: The ``sqd`` section (batches, iterations, ``max_dim`` cap).
        config: The ``closed_loop`` section.
        comm: mpi4py communicator; several ranks evaluate walkers in parallel.
        completed: Evaluations recorded by an interrupted run: reused, not
            recomputed, so the run continues where it stopped.
        callback: Called on every rank with each new evaluation as soon as its
            generation is done (write it to the run file there, on rank 0).
        sample_fn: The sampler (default :func:`sqd_suite.sampling.sample`).

    Returns:
        A :class:`ClosedLoopResult`.
    """
    x0 = np.asarray(ansatz.to_parameters(), dtype=np.float64)
    if x0.size == 0:
        raise SQDInputError("circuit", "the ansatz has no parameters to optimise", fix="use n_reps >= 1")
    if sampler.kind == "file":
        raise SQDInputError(
            "sampler.kind", "the closed loop needs a sampler that runs the circuit, but 'file' replays fixed bitstrings",
            fix="use exact, aer, ibm_runtime or qrmi, or set closed_loop.enabled: false",
        )
    if config.optimizer == "differential_evolution" and config.population < 3:
        raise SQDInputError(
            "closed_loop.population", f"differential evolution needs at least 3 walkers (got {config.population})",
            fix="use population >= 3 (>= 5 lets best/2/bin draw four distinct partners)",
        )
    objective = _Objective(
        hamiltonian, ansatz, sampler, sqd, config,
        comm=comm, completed=completed, callback=callback,
        sample_fn=sample_fn or _default_sample_fn(),
    )
    res: OptimizeResult
    if config.optimizer == "differential_evolution":
        res = differential_evolution(
            objective, x0, population=config.population, generations=config.generations,
            mutation=config.mutation, crossover=config.crossover, init_noise=config.init_noise, seed=config.seed,
        )
    elif config.optimizer == "cobyla":
        res = cobyla(objective, x0, max_evaluations=config.max_evaluations, rhobeg=config.init_noise)
    elif config.optimizer == "spsa":
        res = spsa(objective, x0, max_evaluations=config.max_evaluations, perturbation=config.init_noise,
                   seed=config.seed)
    else:  # pragma: no cover - the config schema allows only the three
        raise SQDInputError("closed_loop.optimizer", f"unknown optimizer {config.optimizer!r}",
                            fix="use differential_evolution, cobyla or spsa")
    best = objective.best
    assert best is not None  # every optimiser evaluates x0
    open_loop = objective.evaluations[0]
    return ClosedLoopResult(
        energy=best.energy,
        params=best.params,
        best=best,
        open_loop=open_loop,
        evaluations=tuple(objective.evaluations),
        generations=tuple(objective.generations),
        optimizer=config.optimizer,
        message=res.message,
        best_carryover_in=objective.carry_in[best.generation],
        e_exact=getattr(hamiltonian, "e_exact", None),
    )


# --- run-file records -------------------------------------------------------

_SCALAR_FIELDS = ("generation", "walker", "params_hash", "sampler_seed", "sqd_seed", "energy",
                  "distinct_bitstrings", "sqd_iterations")


def _name(generation: int, walker: int) -> str:
    return f"g{generation:05d}_w{walker:04d}"


def write_evaluation(group: Any, evaluation: WalkerEvaluation) -> None:
    """Append one evaluation to an HDF5 group (e.g. ``/closed_loop/evaluations``).

    The subgroup gets the attribute ``complete`` last, and is flushed, so a
    crash mid-write leaves a record that :func:`read_evaluations` skips (and
    that is rewritten on resume).
    """
    name = _name(evaluation.generation, evaluation.walker)
    if name in group:
        del group[name]  # an incomplete record of a crashed write
    g = group.create_group(name)
    for key in _SCALAR_FIELDS:
        g.attrs[key] = getattr(evaluation, key)
    g.attrs["subspace_shape"] = np.asarray(evaluation.subspace_shape, dtype=np.int64)
    g.attrs["distinct_strings"] = np.asarray(evaluation.distinct_strings, dtype=np.int64)
    g.attrs["carryover_in"] = np.asarray(evaluation.carryover_in, dtype=np.int64)
    g.create_dataset("params", data=np.asarray(evaluation.params, dtype=np.float64))
    g.create_dataset("carryover_alpha", data=np.asarray(evaluation.carryover[0], dtype=np.int64))
    g.create_dataset("carryover_beta", data=np.asarray(evaluation.carryover[1], dtype=np.int64))
    g.create_dataset("occupancies", data=np.vstack(evaluation.occupancies).astype(np.float64))
    t = g.create_group("timings")
    for key, value in evaluation.timings.items():
        t.attrs[key] = float(value)
    g.attrs["complete"] = True
    group.file.flush()


def read_evaluations(group: Any) -> list[WalkerEvaluation]:
    """The complete evaluations in a group written by :func:`write_evaluation`, in order."""
    out = []
    for name in sorted(group):
        g = group[name]
        if not g.attrs.get("complete", False):
            continue
        a = {k: g.attrs[k] for k in _SCALAR_FIELDS}
        occ = g["occupancies"][()]
        out.append(WalkerEvaluation(
            generation=int(a["generation"]),
            walker=int(a["walker"]),
            params=g["params"][()],
            params_hash=str(a["params_hash"]),
            sampler_seed=int(a["sampler_seed"]),
            sqd_seed=int(a["sqd_seed"]),
            energy=float(a["energy"]),
            subspace_shape=tuple(int(v) for v in g.attrs["subspace_shape"]),  # type: ignore[arg-type]
            distinct_strings=tuple(int(v) for v in g.attrs["distinct_strings"]),  # type: ignore[arg-type]
            distinct_bitstrings=int(a["distinct_bitstrings"]),
            sqd_iterations=int(a["sqd_iterations"]),
            carryover=(g["carryover_alpha"][()], g["carryover_beta"][()]),
            carryover_in=tuple(int(v) for v in g.attrs["carryover_in"]),  # type: ignore[arg-type]
            occupancies=(occ[0], occ[1]),
            timings={k: float(v) for k, v in g["timings"].attrs.items()},
        ))
    out.sort(key=lambda e: (e.generation, e.walker))
    return out


# --- a closed-loop run in a run file (what `sqd run` / `sqd resume` call) ---

EVALUATIONS_GROUP = "closed_loop/evaluations"


def read_run_evaluations(path: str | Path) -> list[WalkerEvaluation]:
    """The evaluations recorded in a run file (empty when there are none yet)."""
    import h5py

    with h5py.File(path, "r") as f:
        if EVALUATIONS_GROUP not in f:
            return []
        return read_evaluations(f[EVALUATIONS_GROUP])


def run_closed_loop_file(
    config: RunConfig,
    hamiltonian: Any,
    ansatz: Any,
    path: str | Path,
    *,
    comm: Any | None = None,
    observer: Any | None = None,
    elapsed0: float = 0.0,
) -> ClosedLoopResult:
    """Run (or resume) the closed loop of ``config`` recorded in the run file ``path``.

    Every rank calls this; rank 0 alone touches the file, through the store's
    copy-on-write updates. ``path`` must exist (:func:`sqd_suite.store.create_run_file`,
    with the CCSD ``ansatz``'s parameters as the circuit). Evaluations
    already in ``/closed_loop/evaluations`` are reused (resume), each new
    one is appended as soon as its generation is done. At the end the best
    walker is evaluated once more with its own seeds and carry-over
    (identical numbers), and its samples, SQD iterations and result become
    the run file's ``/samples``, ``/iterations`` and ``/result``, so
    ``sqd report`` and the analysis read a closed-loop run like any other;
    ``/closed_loop`` holds the summary (optimizer, open-loop and best
    energies, best parameters).

    ``observer`` (rank 0) gets ``stage(message)`` per evaluation and
    ``iteration(record, elapsed_s)`` for the final SQD iterations.
    """
    from sqd_suite.store import append_iteration, update_run_file, write_result, write_run_samples

    t_start = time.perf_counter()
    path = Path(path)
    root = comm is None or comm.Get_rank() == 0
    multi = comm is not None and comm.Get_size() > 1
    completed = read_run_evaluations(path) if root else None
    if multi:
        completed = comm.bcast(completed, root=0)
    if root and observer is not None and completed:
        observer.stage(f"closed loop: resuming with {len(completed)} recorded evaluations")

    def record(ev: WalkerEvaluation) -> None:
        if not root:
            return
        with update_run_file(path) as f:
            group = f.require_group(EVALUATIONS_GROUP)
            write_evaluation(group, ev)
            cl = f["closed_loop"]
            cl.attrs["optimizer"] = config.closed_loop.optimizer
            cl.attrs["n_evaluations"] = len(group)
            f.attrs["elapsed_s"] = float(elapsed0 + time.perf_counter() - t_start)
        if observer is not None:
            observer.stage(
                f"closed loop: generation {ev.generation} walker {ev.walker}: E = {ev.energy:.8f} Ha, "
                f"subspace {ev.subspace_shape[0]}x{ev.subspace_shape[1]}, {ev.timings['total']:.1f} s"
            )

    res = run_closed_loop(
        hamiltonian, ansatz, config.sampler, config.sqd, config.closed_loop,
        comm=comm, completed=completed or (), callback=record,
    )
    if root and observer is not None:
        observer.stage(f"closed loop: best generation {res.best.generation} walker {res.best.walker}; "
                       "re-running it for the result")
    best = res.best
    ev, samples, final = evaluate_walker(
        hamiltonian, ansatz, best.params, config.sampler, config.sqd, config.closed_loop,
        generation=best.generation, walker=best.walker, carryover=res.best_carryover_in, comm=comm,
    )
    if root:
        write_run_samples(path, samples)
        for it in final.iterations:
            elapsed = elapsed0 + time.perf_counter() - t_start
            append_iteration(path, it, elapsed_s=elapsed)
            if observer is not None:
                observer.iteration(it, elapsed)
        with update_run_file(path) as f:
            cl = f.require_group("closed_loop")
            for key in ("best", "params"):
                if key in cl:
                    del cl[key]
            cl.create_dataset("params", data=best.params)
            cl.attrs["optimizer"] = res.optimizer
            cl.attrs["message"] = res.message
            cl.attrs["energy"] = res.energy
            cl.attrs["open_loop_energy"] = res.open_loop.energy
            cl.attrs["best_generation"] = best.generation
            cl.attrs["best_walker"] = best.walker
            cl.attrs["n_evaluations"] = res.n_evaluations
            cl.attrs["reproduced_energy"] = float(final.energy)
        write_result(path, final, elapsed_s=elapsed0 + time.perf_counter() - t_start)
    return dataclasses.replace(res, final=final)
