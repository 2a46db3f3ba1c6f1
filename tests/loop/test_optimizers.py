"""The closed loop's optimisers on analytic objectives (no SQD involved)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import rosen

from sqd_suite.loop.optimizers import (
    cobyla,
    differential_evolution,
    initial_population,
    pointwise,
    spsa,
)

SHIFT = np.array([0.7, -1.3, 0.4, 2.0])


def shifted_quadratic(x: np.ndarray) -> float:
    return float(np.sum((x - SHIFT[: x.size]) ** 2 * np.arange(1, x.size + 1)))


def test_pointwise_evaluates_each_row() -> None:
    objective = pointwise(lambda x: float(x.sum()))
    np.testing.assert_array_equal(objective(np.array([[1.0, 2.0], [3.0, -4.0]]), 0), [3.0, -1.0])


def test_initial_population_walker0_is_x0_and_noise_is_bounded() -> None:
    x0 = np.array([0.1, -0.2, 0.3])
    pop = initial_population(x0, 5, 0.05, seed=3)
    assert pop.shape == (5, 3)
    np.testing.assert_array_equal(pop[0], x0)
    assert np.all(np.abs(pop[1:] - x0) <= 0.05)
    assert np.all(np.abs(pop[1:] - x0) > 0)
    np.testing.assert_array_equal(pop, initial_population(x0, 5, 0.05, seed=3))


def test_de_finds_minimum_of_shifted_quadratic() -> None:
    res = differential_evolution(
        pointwise(shifted_quadratic), np.zeros(4),
        population=12, generations=150, mutation=0.5, crossover=0.9, init_noise=2.0, seed=1,
    )
    np.testing.assert_allclose(res.x, SHIFT, atol=1e-3)
    assert res.fun < 1e-6
    assert res.nfev == 12 * 151
    assert len(res.history) == 151


def test_de_finds_rosenbrock_minimum_in_3d() -> None:
    res = differential_evolution(
        pointwise(rosen), np.full(3, -0.5),
        population=15, generations=300, mutation=0.5, crossover=0.9, init_noise=1.5, seed=2,
    )
    np.testing.assert_allclose(res.x, np.ones(3), atol=1e-2)
    assert res.fun < 1e-4


def test_de_greedy_selection_never_increases_best_or_any_walker() -> None:
    rng = np.random.default_rng(0)

    def noisy(points: np.ndarray, generation: int) -> np.ndarray:
        # Noisy and rugged, so many trials are worse than their targets.
        return np.array([rosen(p) + rng.normal(scale=5.0) for p in points])

    res = differential_evolution(noisy, np.zeros(3), population=6, generations=30, init_noise=1.0, seed=4)
    best = [h.best_value for h in res.history]
    assert all(b1 <= b0 for b0, b1 in zip(best, best[1:]))
    for prev, cur in zip(res.history, res.history[1:]):
        assert np.all(cur.population_values <= prev.population_values)
        # A walker changes exactly where its trial was accepted.
        np.testing.assert_array_equal(cur.population_values[cur.accepted], cur.values[cur.accepted])
        np.testing.assert_array_equal(cur.population_values[~cur.accepted], prev.population_values[~cur.accepted])
    assert res.fun == best[-1] == min(h.values.min() for h in res.history)
    assert not all(h.accepted.all() for h in res.history[1:])


def test_de_generation_zero_is_x0_then_noisy_walkers_and_batches_are_per_generation() -> None:
    calls: list[tuple[int, int]] = []

    def objective(points: np.ndarray, generation: int) -> np.ndarray:
        calls.append((generation, len(points)))
        return np.array([shifted_quadratic(p) for p in points])

    x0 = np.array([0.5, 0.5])
    res = differential_evolution(objective, x0, population=5, generations=3, init_noise=0.1, seed=9)
    assert calls == [(0, 5), (1, 5), (2, 5), (3, 5)]
    np.testing.assert_array_equal(res.history[0].points[0], x0)


def test_de_is_deterministic_and_replayable() -> None:
    kwargs = dict(population=6, generations=10, init_noise=0.5, seed=5)
    a = differential_evolution(pointwise(rosen), np.zeros(3), **kwargs)
    b = differential_evolution(pointwise(rosen), np.zeros(3), **kwargs)
    np.testing.assert_array_equal(a.x, b.x)
    for ha, hb in zip(a.history, b.history):
        np.testing.assert_array_equal(ha.points, hb.points)
    c = differential_evolution(pointwise(rosen), np.zeros(3), **{**kwargs, "seed": 6})
    assert not np.array_equal(a.history[1].points, c.history[1].points)


def test_de_failed_evaluations_are_never_selected() -> None:
    def objective(points: np.ndarray, generation: int) -> np.ndarray:
        values = np.array([shifted_quadratic(p) for p in points])
        values[points[:, 0] > 0.2] = np.nan  # half-space where the evaluation "crashes"
        return values

    res = differential_evolution(objective, np.zeros(2), population=6, generations=20, init_noise=0.1, seed=0)
    assert np.isfinite(res.fun)
    assert res.x[0] <= 0.2


def test_de_rejects_tiny_population() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        differential_evolution(pointwise(rosen), np.zeros(2), population=2)


def test_de_small_population_still_explores() -> None:
    res = differential_evolution(pointwise(shifted_quadratic), np.zeros(2), population=3,
                                 generations=60, init_noise=1.0, seed=0)
    assert res.fun < 0.5 * shifted_quadratic(np.zeros(2))


def test_cobyla_minimises_shifted_quadratic() -> None:
    res = cobyla(pointwise(shifted_quadratic), np.zeros(4), max_evaluations=200, rhobeg=0.5)
    np.testing.assert_allclose(res.x, SHIFT, atol=1e-3)
    assert res.nfev <= 200
    assert [h.generation for h in res.history] == list(range(res.nfev))
    np.testing.assert_array_equal(res.history[0].points[0], np.zeros(4))


def test_spsa_decreases_noisy_quadratic() -> None:
    rng = np.random.default_rng(11)

    def noisy(points: np.ndarray, generation: int) -> np.ndarray:
        return np.array([shifted_quadratic(p) + rng.normal(scale=0.05) for p in points])

    x0 = np.zeros(4)
    res = spsa(noisy, x0, max_evaluations=201, perturbation=0.1, target_step=0.2, seed=3)
    assert res.nfev == 201
    assert [len(h.points) for h in res.history] == [1] + [2] * 100
    # The noise-free value at the final iterate is far below the start.
    assert shifted_quadratic(res.x_last) < 0.05 * shifted_quadratic(x0)
    assert res.fun <= res.history[0].values[0]


def test_spsa_is_deterministic() -> None:
    a = spsa(pointwise(shifted_quadratic), np.zeros(3), max_evaluations=41, seed=2)
    b = spsa(pointwise(shifted_quadratic), np.zeros(3), max_evaluations=41, seed=2)
    np.testing.assert_array_equal(a.x_last, b.x_last)
    assert shifted_quadratic(a.x_last) < shifted_quadratic(np.zeros(3))


def test_cobyla_keeps_the_budget_below_its_simplex_size() -> None:
    # scipy needs d + 2 evaluations at least; the budget still holds.
    res = cobyla(pointwise(shifted_quadratic), np.zeros(4), max_evaluations=3, rhobeg=0.5)
    assert res.nfev == 3
    assert res.fun < shifted_quadratic(np.zeros(4))
    assert "budget" in res.message
