"""Block Davidson on explicit matrices with known spectra."""

from __future__ import annotations

import numpy as np
import pytest

from sqd_suite.diag.davidson import davidson, davidson_memory_bytes


def _ci_like_matrix(n: int, seed: int, coupling: float = 0.05) -> np.ndarray:
    """Diagonally dominant symmetric matrix with a spread diagonal, like a CI Hamiltonian."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)) * coupling
    a = a + a.T
    a[np.diag_indices(n)] = np.sort(rng.uniform(0.0, 20.0, n))
    a[0, 0] -= 3.0
    return a


def _run(a: np.ndarray, **kwargs: object):
    return davidson(lambda x, out: np.dot(a, x, out=out), np.diag(a).copy(), np.zeros((0, a.shape[0])), **kwargs)


@pytest.mark.parametrize("nroots", [1, 3])
@pytest.mark.parametrize("max_space", [8, 20])
def test_lowest_eigenvalues(nroots: int, max_space: int) -> None:
    a = _ci_like_matrix(600, seed=1)
    w = np.linalg.eigvalsh(a)
    res = _run(a, nroots=nroots, tol=1e-12, max_space=max_space + 4 * (nroots - 1))
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, w[:nroots], atol=1e-10)
    # Ritz vectors: normalized, orthogonal, eigenvectors.
    x = res.vectors
    np.testing.assert_allclose(x @ x.T, np.eye(nroots), atol=1e-10)
    resid = a @ x.T - x.T * res.eigenvalues
    assert np.linalg.norm(resid, axis=0).max() < 1e-5
    assert res.timings["sigma"] >= 0.0 and res.n_matvec >= res.n_iter


def test_restart_needs_more_iterations_but_same_answer() -> None:
    a = _ci_like_matrix(400, seed=2, coupling=0.3)
    w = np.linalg.eigvalsh(a)
    small = _run(a, tol=1e-12, max_space=6)
    large = _run(a, tol=1e-12, max_space=40)
    assert small.converged and large.converged
    assert abs(small.eigenvalues[0] - w[0]) < 1e-10
    assert abs(large.eigenvalues[0] - w[0]) < 1e-10
    assert small.n_iter >= large.n_iter


def test_degenerate_roots() -> None:
    rng = np.random.default_rng(3)
    n = 300
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    spectrum = np.r_[[-1.0, -1.0, -1.0], np.linspace(0.5, 10.0, n - 3)]
    a = (q * spectrum) @ q.T
    res = _run(a, nroots=3, tol=1e-12, max_space=30)
    assert res.converged
    np.testing.assert_allclose(res.eigenvalues, [-1.0, -1.0, -1.0], atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_tiny_spaces(n: int) -> None:
    a = _ci_like_matrix(n, seed=4)
    res = _run(a, nroots=1, tol=1e-12)
    assert res.converged
    assert abs(res.eigenvalues[0] - np.linalg.eigvalsh(a)[0]) < 1e-12


def test_warm_start_converges_faster() -> None:
    a = _ci_like_matrix(500, seed=5, coupling=0.2)
    cold = _run(a, tol=1e-12)
    w, v = np.linalg.eigh(a)
    guess = v[:, 0] + 1e-3 * np.random.default_rng(6).normal(size=500)
    warm = davidson(lambda x, out: np.dot(a, x, out=out), np.diag(a).copy(), guess[None, :], tol=1e-12)
    assert warm.converged and abs(warm.eigenvalues[0] - w[0]) < 1e-10
    assert warm.n_iter < cold.n_iter


def test_too_many_roots() -> None:
    with pytest.raises(ValueError, match="nroots"):
        _run(np.eye(2), nroots=3)


def test_memory_formula() -> None:
    assert davidson_memory_bytes(1000, nroots=1, max_space=12) == 8 * 1000 * (24 + 2 + 3)
