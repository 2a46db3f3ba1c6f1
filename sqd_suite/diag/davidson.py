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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

__all__ = ["DavidsonResult", "davidson", "davidson_memory_bytes"]

# Columns per chunk of the basis kernels: a chunk of a few rows
# stays in L2 while it is reused.
_CHUNK = 4096


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


# The basis operations are memory-bound level-1/2 work on long vectors. They
# run as single-threaded numba loops rather than BLAS or parallel loops:
# multithreaded OpenBLAS level-1/2 calls and short numba parallel regions were
# 10-100x slower on shared, oversubscribed cores (measured: 6 s against 0.1 s
# of Davidson overhead at D = 1e6), one core nearly saturates memory bandwidth
# for them anyway, and with MPI each rank does its own block. Fixed-size
# chunks with partial sums keep the reductions independent of everything but
# the data.


@numba.njit(fastmath=True, cache=True)
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    acc = 0.0
    for x in range(a.shape[0]):
        acc += a[x] * b[x]
    return acc


@numba.njit(fastmath=True, cache=True)
def _axpy(alpha: float, x: np.ndarray, y: np.ndarray) -> None:
    for i in range(x.shape[0]):
        y[i] += alpha * x[i]


@numba.njit(cache=True)
def _gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(ka, kb) matrix of dot products a[i] . b[j] of rows."""
    ka, n = a.shape
    kb = b.shape[0]
    nch = (n + _CHUNK - 1) // _CHUNK
    part = np.zeros((nch, ka, kb))
    for c in range(nch):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        for i in range(ka):
            for j in range(kb):
                part[c, i, j] = _dot(a[i, lo:hi], b[j, lo:hi])
    out = np.zeros((ka, kb))
    for c in range(nch):
        out += part[c]
    return out


@numba.njit(cache=True)
def _combine(y: np.ndarray, v: np.ndarray, out: np.ndarray, accumulate: float) -> None:
    """out[r] = accumulate * out[r] + sum_i y[i, r] v[i]; out must not overlap v."""
    m, n = v.shape
    k = y.shape[1]
    nch = (n + _CHUNK - 1) // _CHUNK
    for c in range(nch):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        for r in range(k):
            o = out[r, lo:hi]
            if accumulate == 0.0:
                o[:] = 0.0  # assign: out may hold uninitialized memory (0 * nan is nan)
            elif accumulate != 1.0:
                o *= accumulate
            for i in range(m):
                _axpy(y[i, r], v[i, lo:hi], o)


@numba.njit(cache=True)
def _rotate(q: np.ndarray, v: np.ndarray) -> None:
    """v[:k] = q.T @ v[:m] in place, q of shape (m, k), k <= m, one chunk of columns at a time."""
    m, k = q.shape
    n = v.shape[1]
    nch = (n + _CHUNK - 1) // _CHUNK
    for c in range(nch):
        lo = c * _CHUNK
        hi = min(n, lo + _CHUNK)
        tmp = np.zeros((k, hi - lo))
        for r in range(k):
            for i in range(m):
                _axpy(q[i, r], v[i, lo:hi], tmp[r])
        for r in range(k):
            v[r, lo:hi] = tmp[r]


@numba.njit(cache=True)
def _precondition(r: np.ndarray, diagonal: np.ndarray, theta: float, out: np.ndarray) -> None:
    # out = r / (diag - theta), the denominator kept at least 1e-4 in size;
    # one pass and no temporaries (the vectors are large).
    for j in range(r.shape[0]):
        d = diagonal[j] - theta
        if abs(d) < 1e-4:
            d = 1e-4 if d >= 0.0 else -1e-4
        out[j] = r[j] / d


def davidson_memory_bytes(n_local: int, *, nroots: int = 1, max_space: int | None = None) -> int:
    """Bytes :func:`davidson` allocates for a block of ``n_local`` entries.

    The basis and its images (``2 * max_space`` vectors), residuals and Ritz
    vectors (``2 * nroots``), two work vectors and the diagonal (3).
    """
    max_space = _default_max_space(nroots) if max_space is None else max_space
    return 8 * n_local * (2 * max_space + 2 * nroots + 3)


def _default_max_space(nroots: int) -> int:
    # 10 keeps one root at 208 B/det (D = 1e8 in 21 GB); GD+k restarts lose little.
    return 10 + 4 * (nroots - 1)


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
    guess_diagonal: np.ndarray | Sequence[np.ndarray] | None = None,
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
            ``2 * max_space`` vectors. Default ``10 + 4 * (nroots - 1)``.
        restart_keep: Ritz vectors kept per root at a restart; the previous
            iteration's Ritz vectors are kept too (GD+k), so a restart keeps
            ``(restart_keep + 1) * nroots`` vectors.
        comm: mpi4py communicator over the ranks holding blocks, or None.
        n_guess: Number of initial directions (default ``nroots``). More
            than ``nroots`` makes it less likely that a root whose symmetry
            the first guesses lack is missed.
        guess_diagonal: Diagonal ranking the unit-vector guesses (default
            ``diagonal``; e.g. the diagonal without a penalty term), or
            several: guesses are then taken from their rankings in turn.
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
    T = np.empty(n)
    t_sigma = 0.0
    n_matvec = 0
    m = 0

    def orthonormal_append(t: np.ndarray) -> bool:
        """Orthogonalize t against V[:m] (two passes) and append it; False if dependent."""
        nonlocal m
        t2 = t.reshape(1, n)
        norm0 = math.sqrt(red.sum(_gram(t2, t2))[0, 0])
        if norm0 == 0.0 or m >= max_space:
            return False
        for _ in range(2):
            if m:
                coef = red.sum(_gram(V[:m], t2))  # (m, 1)
                _combine(-coef, V[:m], t2, 1.0)
        norm = math.sqrt(red.sum(_gram(t2, t2))[0, 0])
        if norm < lindep * norm0:
            return False
        _combine(np.array([[1.0 / norm]]), t2, V[m : m + 1], 0.0)
        m += 1
        return True

    # Initial basis: the guesses, then unit vectors on the lowest diagonal
    # entries until n_guess directions are in.
    n_guess = min(max(nroots, nroots if n_guess is None else n_guess), max_space - 1, ntot)
    n_guess = max(n_guess, nroots)
    guesses = np.asarray(x0, dtype=np.float64)
    for row in guesses.reshape(1, n) if guesses.ndim == 1 else guesses:
        T[:] = row
        orthonormal_append(T)
    if m < n_guess:
        if guess_diagonal is None:
            rankings = [diagonal]
        elif isinstance(guess_diagonal, np.ndarray):
            rankings = [guess_diagonal]
        else:
            rankings = list(guess_diagonal)
        # Every rank walks the same global candidates (-1: held elsewhere), so appends stay collective.
        lists = [_unit_guesses(np.ascontiguousarray(g, dtype=np.float64), n_guess + m, red) for g in rankings]
        for i in (pos for group in zip(*lists) for pos in group):
            if m >= n_guess:
                break
            T[:] = 0.0
            if i >= 0:
                T[i] = 1.0
            orthonormal_append(T)
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
        hsub[m_done:m, :m] = red.sum(_gram(AV[m_done:m], V[:m]))
        hsub[:m, m_done:m] = hsub[m_done:m, :m].T
        m_done = m
        w, Y = np.linalg.eigh(hsub[:m, :m])
        theta = w[:nroots]
        Yk = np.ascontiguousarray(Y[:, :nroots])
        _combine(Yk, V[:m], X, 0.0)
        # R = AV^T Y - theta X
        _combine(Yk, AV[:m], R, 0.0)
        _combine(-np.diag(theta), X, R, 1.0)
        rnorm = np.sqrt(np.diag(red.sum(_gram(R, R))))
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
            Q = np.ascontiguousarray(Q)
            _rotate(Q, V[:m])
            _rotate(Q, AV[:m])
            hsub[:q, :q] = Q.T @ hsub[:m, :m] @ Q
            hsub[:q, :q] = 0.5 * (hsub[:q, :q] + hsub[:q, :q].T)
            Yk = Q.T @ Yk
            m = m_done = q
        y_prev = Yk

        # Preconditioned residuals as new directions.
        added = 0
        for i in todo:
            _precondition(R[i], diagonal, float(theta[i]), T)
            added += orthonormal_append(T)
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


def _unit_guesses(diagonal: np.ndarray, k: int, red: _Reducer) -> list[int]:
    """Local positions of the k globally lowest diagonal entries, in order (-1: on another rank)."""
    n = diagonal.shape[0]
    kk = min(k, n)
    local = np.argpartition(diagonal, kk - 1)[:kk] if kk else np.zeros(0, dtype=np.int64)
    if red.comm is None:
        return [int(i) for i in local[np.argsort(diagonal[local], kind="stable")][:k]]
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
    return [int(i) if int(r) == me else -1 for _, r, i in allc[order]]
