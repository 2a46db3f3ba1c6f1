"""Block Davidson eigensolver on (possibly distributed) vector blocks.

Every vector is held as this rank's block only: a row of length ``n_local``.
Inner products are local dot products followed by one small ``Allreduce``, so
the subspace (at most ``max_space`` vectors and their images) is never
replicated across ranks; only the small projected matrix is.

Convergence (``tol``): a root is converged when its eigenvalue changed by less
than ``tol`` since the previous iteration and its residual norm
``||H x - theta x||`` is below ``residual_tol`` (default ``sqrt(tol)``, as in
PySCF). The eigenvalue error of a converged root is then of order
``residual**2 / gap``, i.e. about ``tol``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DavidsonResult", "davidson", "davidson_memory_bytes"]

# Rows of the basis transformed at a time during a restart, so the in-place
# update V <- Q^T V needs only a (q, _CHUNK) temporary.
_CHUNK = 1 << 15


@dataclass(frozen=True)
class DavidsonResult:
    """Outcome of :func:`davidson`.

    ``vectors`` holds this rank's block of each Ritz vector, shape
    ``(nroots, n_local)``, normalized over all ranks.
    """

    eigenvalues: np.ndarray
    vectors: np.ndarray
    n_iter: int
    converged: bool
    converged_roots: np.ndarray
    residual_norms: np.ndarray
    n_matvec: int
    timings: dict[str, float] = field(default_factory=dict)


class _Reducer:
    """Sums small arrays over ranks and times it; a no-op without a communicator."""

    def __init__(self, comm: Any | None) -> None:
        self.comm = comm if comm is not None and comm.Get_size() > 1 else None
        self.seconds = 0.0
        self.calls = 0

    def sum(self, a: np.ndarray) -> np.ndarray:
        if self.comm is None:
            return a
        from mpi4py import MPI

        t0 = time.perf_counter()
        a = np.ascontiguousarray(a)
        out = np.empty_like(a)
        # MPICH's Allreduce gives bitwise identical sums on all ranks, so every
        # rank takes the same convergence and restart decisions.
        self.comm.Allreduce(a, out, op=MPI.SUM)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


def davidson_memory_bytes(n_local: int, *, nroots: int = 1, max_space: int | None = None) -> int:
    """Bytes :func:`davidson` allocates for a block of ``n_local`` entries.

    The basis and its images (``2 * max_space`` vectors), residuals and Ritz
    vectors (``2 * nroots``) and the diagonal (1).
    """
    max_space = _default_max_space(nroots) if max_space is None else max_space
    return 8 * n_local * (2 * max_space + 2 * nroots + 1)


def _default_max_space(nroots: int) -> int:
    return 12 + 4 * (nroots - 1)


def davidson(
    matvec: Callable[[np.ndarray, np.ndarray], None],
    diagonal: np.ndarray,
    x0: np.ndarray,
    *,
    nroots: int = 1,
    tol: float = 1e-8,
    residual_tol: float | None = None,
    max_iter: int = 200,
    max_space: int | None = None,
    restart_keep: int = 2,
    comm: Any | None = None,
    n_guess: int | None = None,
    guess_diagonal: np.ndarray | None = None,
    lindep: float = 1e-10,
    callback: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> DavidsonResult:
    """Lowest ``nroots`` eigenpairs of a symmetric operator by block Davidson.

    Args:
        matvec: ``matvec(x, out)`` writes this rank's block of ``A x`` into
            ``out``; ``x`` is this rank's block. It is called collectively.
        diagonal: This rank's block of ``diag(A)``, for the preconditioner.
        x0: Initial guesses, shape ``(k, n_local)`` (this rank's blocks),
            possibly ``k = 0``. Up to ``n_guess`` directions are completed
            with unit vectors on the lowest entries of ``guess_diagonal``.
        nroots: Number of lowest eigenpairs wanted.
        tol: Eigenvalue change below which a root may count as converged.
        residual_tol: Residual norm below which a root may count as
            converged; ``sqrt(tol)`` by default.
        max_iter: Maximum number of iterations (block matvecs).
        max_space: Largest number of basis vectors kept; memory is
            ``2 * max_space`` vectors. Default ``12 + 4 * (nroots - 1)``.
        restart_keep: Ritz vectors kept per root at a restart; the previous
            iteration's Ritz vectors are kept too (GD+k), so a restart keeps
            ``(restart_keep + 1) * nroots`` vectors.
        comm: mpi4py communicator over the ranks holding blocks, or None.
        n_guess: Number of initial directions (default ``nroots``). More
            than ``nroots`` makes it less likely that a root whose symmetry
            the first guesses lack is missed.
        guess_diagonal: Diagonal ranking the unit-vector guesses (default
            ``diagonal``; e.g. the diagonal without a penalty term).
        lindep: Relative norm below which a new direction is discarded as
            linearly dependent.
        callback: Called as ``callback(iteration, eigenvalues, residual_norms)``.

    Returns:
        A :class:`DavidsonResult`.
    """
    t_start = time.perf_counter()
    red = _Reducer(comm)
    diagonal = np.ascontiguousarray(diagonal, dtype=np.float64)
    n = diagonal.shape[0]
    ntot = int(red.sum(np.array([n], dtype=np.int64))[0])
    if nroots < 1 or nroots > ntot:
        raise ValueError(f"nroots must be in [1, {ntot}], got {nroots}")
    if residual_tol is None:
        residual_tol = math.sqrt(tol)
    if max_space is None:
        max_space = _default_max_space(nroots)
    keep = min((restart_keep + 1) * nroots, max_space - nroots)
    if keep < 2 * nroots and ntot > max_space:
        raise ValueError(f"max_space={max_space} is too small for nroots={nroots}")
    max_space = min(max_space, ntot)

    V = np.empty((max_space, n))
    AV = np.empty((max_space, n))
    hsub = np.zeros((max_space, max_space))
    R = np.empty((nroots, n))
    X = np.empty((nroots, n))
    t_sigma = 0.0
    n_matvec = 0
    m = 0

    def orthonormal_append(t: np.ndarray) -> bool:
        """Orthogonalize t against V[:m] (two passes) and append it; False if dependent."""
        nonlocal m
        norm0 = math.sqrt(red.sum(np.array([t @ t]))[0])
        if norm0 == 0.0 or m >= max_space:
            return False
        for _ in range(2):
            if m:
                coef = red.sum(V[:m] @ t)
                t -= coef @ V[:m]
        norm = math.sqrt(red.sum(np.array([t @ t]))[0])
        if norm < lindep * norm0:
            return False
        np.multiply(t, 1.0 / norm, out=V[m])
        m += 1
        return True

    # Initial basis: the guesses, then unit vectors on the lowest diagonal
    # entries until n_guess directions are in.
    n_guess = min(max(nroots, nroots if n_guess is None else n_guess), max_space - 1, ntot)
    n_guess = max(n_guess, nroots)
    for row in np.atleast_2d(np.asarray(x0, dtype=np.float64)):
        orthonormal_append(row.copy())
    if m < n_guess:
        gd = diagonal if guess_diagonal is None else np.ascontiguousarray(guess_diagonal, dtype=np.float64)
        for t in _unit_guesses(gd, n_guess + m, red):
            if m >= n_guess:
                break
            orthonormal_append(t)
    if m < nroots:
        raise ValueError("could not build nroots independent initial guesses")

    theta_prev = np.full(nroots, np.inf)
    y_prev: np.ndarray | None = None
    m_done = 0
    converged = np.zeros(nroots, dtype=bool)
    rnorm = np.full(nroots, np.inf)
    theta = np.zeros(nroots)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        t0 = time.perf_counter()
        for i in range(m_done, m):
            matvec(V[i], AV[i])
        t_sigma += time.perf_counter() - t0
        n_matvec += m - m_done
        # New rows of the projected matrix.
        hsub[m_done:m, :m] = red.sum(AV[m_done:m] @ V[:m].T)
        hsub[:m, m_done:m] = hsub[m_done:m, :m].T
        m_done = m
        w, Y = np.linalg.eigh(hsub[:m, :m])
        theta = w[:nroots]
        Yk = np.ascontiguousarray(Y[:, :nroots])
        np.dot(Yk.T, AV[:m], out=R)
        np.dot(Yk.T, V[:m], out=X)
        R -= theta[:, None] * X
        rnorm = np.sqrt(red.sum(np.einsum("ij,ij->i", R, R)))
        converged = (np.abs(theta - theta_prev) < tol) & (rnorm < residual_tol)
        if m == ntot:
            converged[:] = True
        if callback is not None:
            callback(n_iter, theta.copy(), rnorm.copy())
        if converged.all() or n_iter == max_iter:
            break
        todo = np.flatnonzero(~converged)

        if m + len(todo) > max_space:
            # Thick restart (GD+k): the lowest Ritz vectors and the previous
            # iteration's Ritz vectors, orthonormalized in subspace coordinates.
            cols = [Y[:, : min(keep - nroots, m)]]
            if y_prev is not None:
                yp = np.zeros((m, y_prev.shape[1]))
                yp[: y_prev.shape[0]] = y_prev
                cols.append(yp)
            Q = _orthonormal_columns(np.hstack(cols))
            q = Q.shape[1]
            for s in range(0, n, _CHUNK):
                sl = slice(s, min(s + _CHUNK, n))
                V[:q, sl] = Q.T @ V[:m, sl]
                AV[:q, sl] = Q.T @ AV[:m, sl]
            hsub[:q, :q] = Q.T @ hsub[:m, :m] @ Q
            hsub[:q, :q] = 0.5 * (hsub[:q, :q] + hsub[:q, :q].T)
            Yk = Q.T @ Yk
            m = m_done = q
        y_prev = Yk

        # Preconditioned residuals as new directions.
        added = 0
        for i in todo:
            denom = diagonal - theta[i]
            np.copysign(np.maximum(np.abs(denom), 1e-4), denom, out=denom)
            t = R[i] / denom
            added += orthonormal_append(t)
        if added == 0:
            break
        theta_prev = theta.copy()

    timings = {
        "sigma": t_sigma,
        "communication": red.seconds,
        "davidson": time.perf_counter() - t_start - t_sigma - red.seconds,
    }
    return DavidsonResult(
        eigenvalues=theta.copy(),
        vectors=X,
        n_iter=n_iter,
        converged=bool(converged.all()),
        converged_roots=converged,
        residual_norms=rnorm,
        n_matvec=n_matvec,
        timings=timings,
    )


def _orthonormal_columns(a: np.ndarray, rtol: float = 1e-8) -> np.ndarray:
    """Orthonormal basis of the column span of a small matrix (Gram-Schmidt, drops dependent columns)."""
    cols: list[np.ndarray] = []
    for j in range(a.shape[1]):
        v = a[:, j].copy()
        n0 = np.linalg.norm(v)
        for _ in range(2):
            for u in cols:
                v -= (u @ v) * u
        nv = np.linalg.norm(v)
        if n0 > 0 and nv > rtol * n0:
            cols.append(v / nv)
    return np.array(cols).T


def _unit_guesses(diagonal: np.ndarray, k: int, red: _Reducer) -> list[np.ndarray]:
    """Unit vectors (this rank's blocks) on the k globally lowest diagonal entries."""
    n = diagonal.shape[0]
    kk = min(k, n)
    local = np.argpartition(diagonal, kk - 1)[:kk] if kk else np.zeros(0, dtype=np.int64)
    if red.comm is None:
        order = local[np.argsort(diagonal[local], kind="stable")]
        out = []
        for i in order[:k]:
            e = np.zeros(n)
            e[i] = 1.0
            out.append(e)
        return out
    # Exchange each rank's k lowest (value, rank, index) and pick the global k.
    cand = np.full((k, 3), np.inf)
    cand[:kk, 0] = diagonal[local]
    cand[:kk, 1] = red.comm.Get_rank()
    cand[:kk, 2] = local
    t0 = time.perf_counter()
    allc = np.concatenate(red.comm.allgather(cand))
    red.seconds += time.perf_counter() - t0
    allc = allc[np.isfinite(allc[:, 0])]
    order = np.lexsort((allc[:, 2], allc[:, 1], allc[:, 0]))[:k]
    me = red.comm.Get_rank()
    out = []
    for val, r, i in allc[order]:
        e = np.zeros(n)
        if int(r) == me:
            e[int(i)] = 1.0
        out.append(e)
    return out
