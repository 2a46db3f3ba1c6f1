"""Properties of a CI vector on a product space of alpha x beta strings.

All functions take this rank's tile of the vector, rows ``alpha_range`` x
columns ``beta_range`` of the ``(n_a, n_b)`` matrix (default: all of it), and
sum over ranks with ``comm`` (an mpi4py communicator, or None for a single
process holding everything).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .distributed import matvec_by_panels, resolve_panels
from .strings import bit_count, occupation_matrix

__all__ = [
    "SpinSquareOperator",
    "carryover_strings",
    "largest_determinants",
    "map_ci_vector",
    "orbital_occupancies",
    "place_determinants",
    "spin_square",
]


def _allsum(a: np.ndarray, comm: Any | None) -> np.ndarray:
    if comm is None or comm.Get_size() == 1:
        return a
    from mpi4py import MPI

    a = np.ascontiguousarray(a)
    out = np.empty_like(a)
    comm.Allreduce(a, out, op=MPI.SUM)
    return out


def _tile(
    ci: np.ndarray, n_a: int, n_b: int, alpha_range: tuple[int, int] | None, beta_range: tuple[int, int] | None
) -> tuple[int, int]:
    """(a0, b0) of a tile, checked against the shape of ``ci``."""
    a0, a1 = (0, n_a) if alpha_range is None else alpha_range
    b0, b1 = (0, n_b) if beta_range is None else beta_range
    if ci.shape[-2:] != (a1 - a0, b1 - b0):
        raise ValueError(f"CI tile has shape {ci.shape[-2:]}, alpha_range {a0}:{a1} x beta_range {b0}:{b1} needs "
                         f"{(a1 - a0, b1 - b0)}")  # fmt: skip
    return a0, b0


def orbital_occupancies(
    ci: np.ndarray,
    alpha_strings: np.ndarray,
    beta_strings: np.ndarray,
    norb: int,
    *,
    alpha_range: tuple[int, int] | None = None,
    beta_range: tuple[int, int] | None = None,
    comm: Any | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha and beta orbital occupancies (diagonal of the spin 1-RDMs).

    ``ci`` is this rank's tile and need not be normalized; the occupancies
    sum to the electron counts.
    """
    a0, b0 = _tile(ci, len(alpha_strings), len(beta_strings), alpha_range, beta_range)
    c2 = np.square(ci)
    w_a = c2.sum(axis=1)  # this rank's weight of each local alpha string
    w_b = c2.sum(axis=0)  # and of each local beta string
    occ = np.empty(2 * norb + 1)
    occ[:norb] = w_a @ occupation_matrix(np.asarray(alpha_strings[a0 : a0 + len(w_a)], np.int64), norb)
    occ[norb : 2 * norb] = w_b @ occupation_matrix(np.asarray(beta_strings[b0 : b0 + len(w_b)], np.int64), norb)
    occ[-1] = w_a.sum()
    occ = _allsum(occ, comm)
    return occ[:norb] / occ[-1], occ[norb : 2 * norb] / occ[-1]


def _link_arrays(table: Any) -> tuple[np.ndarray, ...]:
    """(indptr, target, p, q, sign) of a single-excitation link table."""
    if hasattr(table, "indptr"):
        return (table.indptr, table.target, table.p, table.q, table.sign)
    return tuple(table)


@numba.njit(parallel=True, cache=True)
def _s2_kernel(
    a_indptr: np.ndarray,
    a_target: np.ndarray,
    a_p: np.ndarray,
    a_q: np.ndarray,
    a_sign: np.ndarray,
    table_row0: int,
    a0: int,
    a1: int,
    alpha_strings: np.ndarray,
    beta_out: np.ndarray,
    bucket_ptr: np.ndarray,
    b_source: np.ndarray,
    b_target: np.ndarray,
    b_sign: np.ndarray,
    norb: int,
    sz_term: float,
    c: np.ndarray,
    out: np.ndarray,
    same: bool,
) -> None:
    # S^2 = Sz(Sz+1) + N_b - sum_pq E^a_qp E^b_pq. The p == q part of the sum
    # is n_pa n_pb, so the diagonal is Sz(Sz+1) + popcount(beta & ~alpha).
    # c is a column panel (all rows), out the tile; beta links are local to both.
    for ia in numba.prange(a0, a1):
        row = ia - a0
        sa_str = alpha_strings[ia]
        if same:
            for ib in range(beta_out.shape[0]):
                out[row, ib] = (sz_term + bit_count(beta_out[ib] & ~sa_str)) * c[ia, ib]
        r = ia - table_row0
        for k in range(a_indptr[r], a_indptr[r + 1]):
            p = a_p[k]
            q = a_q[k]
            if p == q:
                continue
            # a+_p a_q |ia> = s |ta>  gives  (E^a_qp)_{ia, ta} = s; it pairs
            # with (E^b_pq)_{ib, jb}, stored as the beta link a+_q a_p |ib>.
            ta = a_target[k]
            sa = a_sign[k]
            key = q * norb + p
            for l in range(bucket_ptr[key], bucket_ptr[key + 1]):
                out[row, b_source[l]] -= sa * b_sign[l] * c[ta, b_target[l]]


class SpinSquareOperator:
    """Matrix-free S^2 on the tile ``alpha_range x beta_range`` of a product space, from the single-excitation tables.

    ``alpha_singles`` must hold the links of every alpha string in
    ``alpha_range`` (its rows may be global or start at ``alpha_range[0]``);
    ``beta_singles`` those of every beta string. Tables follow the
    ``(indptr, target, p, q, sign)`` CSR convention ``a+_p a_q |i> = sign |target>``.
    Input comes whole (:meth:`matvec`) or by column panels ``beta_bounds``
    (:meth:`apply_panel`), as for :class:`~sqd_suite.diag.SubspaceHamiltonian`.
    """

    def __init__(
        self,
        alpha_strings: np.ndarray,
        beta_strings: np.ndarray,
        norb: int,
        nelec: tuple[int, int],
        alpha_singles: Any,
        beta_singles: Any,
        *,
        alpha_range: tuple[int, int] | None = None,
        beta_range: tuple[int, int] | None = None,
        beta_bounds: np.ndarray | None = None,
    ) -> None:
        self.alpha_strings = np.ascontiguousarray(alpha_strings, dtype=np.int64)
        self.beta_strings = np.ascontiguousarray(beta_strings, dtype=np.int64)
        self.norb = norb
        self.nelec = (int(nelec[0]), int(nelec[1]))
        n_a, n_b = len(self.alpha_strings), len(self.beta_strings)
        self.alpha_range = (0, n_a) if alpha_range is None else (int(alpha_range[0]), int(alpha_range[1]))
        self.beta_bounds, self.own_panel = resolve_panels(n_b, beta_range, beta_bounds)
        b0, b1 = (int(x) for x in self.beta_bounds[self.own_panel : self.own_panel + 2])
        self.beta_range = (b0, b1)
        a0, a1 = self.alpha_range
        indptr, target, p, q, sign = (np.asarray(x) for x in _link_arrays(alpha_singles))
        if len(indptr) == n_a + 1:
            self._table_row0 = 0
        elif len(indptr) == a1 - a0 + 1:
            self._table_row0 = a0
        else:
            raise ValueError("alpha link table rows match neither all strings nor alpha_range")
        self._alpha = (
            indptr.astype(np.int64),
            target.astype(np.int64),
            p.astype(np.int64),
            q.astype(np.int64),
            sign.astype(np.float64),
        )
        # Beta links of the output columns bucketed by orbital pair (p, q), the
        # order the kernel reads them, one set per input panel (local indices).
        b_indptr, b_target, b_p, b_q, b_sign = (np.asarray(x) for x in _link_arrays(beta_singles))
        lo, hi = int(b_indptr[b0]), int(b_indptr[b1])
        source = np.repeat(np.arange(b0, b1, dtype=np.int64), np.diff(b_indptr[b0 : b1 + 1]))
        key = b_p[lo:hi].astype(np.int64) * norb + b_q[lo:hi].astype(np.int64)
        order = np.argsort(key, kind="stable")
        key, source = key[order], source[order]
        tgt = b_target[lo:hi].astype(np.int64)[order]
        sgn = b_sign[lo:hi].astype(np.float64)[order]
        self._panels = []
        for k in range(self.beta_bounds.size - 1):
            c0, c1 = int(self.beta_bounds[k]), int(self.beta_bounds[k + 1])
            keep = (tgt >= c0) & (tgt < c1)
            self._panels.append((
                np.searchsorted(key[keep], np.arange(norb * norb + 1)).astype(np.int64),
                source[keep] - b0,
                tgt[keep] - c0,
                sgn[keep],
            ))  # fmt: skip
        sz = 0.5 * (self.nelec[0] - self.nelec[1])
        self._sz_term = sz * (sz + 1.0)

    @property
    def tile_shape(self) -> tuple[int, int]:
        return (self.alpha_range[1] - self.alpha_range[0], self.beta_range[1] - self.beta_range[0])

    def needed_alpha_rows(self) -> np.ndarray:
        """Sorted global alpha indices whose rows ``matvec`` reads (the block and its single excitations)."""
        a0, a1 = self.alpha_range
        indptr, target = self._alpha[0], self._alpha[1]
        r0 = self._table_row0
        links = target[indptr[a0 - r0] : indptr[a1 - r0]]
        return np.union1d(np.arange(a0, a1, dtype=np.int64), links)

    def matvec(self, c_full: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The tile of ``S^2 c``; ``c_full`` is (n_a, n_b), only rows linked to the tile's rows are read."""
        c_full = np.ascontiguousarray(c_full, dtype=np.float64)
        return matvec_by_panels(self, c_full, np.empty(self.tile_shape) if out is None else out)

    def apply_panel(self, panel: np.ndarray, k: int, out: np.ndarray) -> np.ndarray:
        """Add column panel ``k``'s contribution to the tile ``out``; the own panel (first!) assigns."""
        a0, a1 = self.alpha_range
        b0, b1 = self.beta_range
        bucket_ptr, b_source, b_target, b_sign = self._panels[k]
        _s2_kernel(
            *self._alpha,
            self._table_row0,
            a0,
            a1,
            self.alpha_strings,
            self.beta_strings[b0:b1],
            bucket_ptr,
            b_source,
            b_target,
            b_sign,
            self.norb,
            self._sz_term,
            panel,
            out,
            k == self.own_panel,
        )
        return out


def spin_square(
    op: SpinSquareOperator,
    c_full: np.ndarray,
    *,
    comm: Any | None = None,
) -> float:
    """<S^2> of a vector; ``c_full`` holds (at least) the rows the operator reads, ``op``'s tile being this rank's."""
    (a0, a1), (b0, b1) = op.alpha_range, op.beta_range
    block = c_full[a0:a1, b0:b1]
    s2c = op.matvec(c_full)
    num = _allsum(np.array([np.vdot(block, s2c), np.vdot(block, block)]), comm)
    return float(num[0] / num[1])


def largest_determinants(
    ci: np.ndarray,
    alpha_strings: np.ndarray,
    beta_strings: np.ndarray,
    k: int,
    *,
    alpha_range: tuple[int, int] | None = None,
    beta_range: tuple[int, int] | None = None,
    comm: Any | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` determinants of largest ``|c|``: (alpha strings, beta strings, coefficients), descending."""
    a0, b0 = _tile(ci, len(alpha_strings), len(beta_strings), alpha_range, beta_range)
    flat = np.abs(ci).ravel()
    kk = min(k, flat.size)
    idx = np.argpartition(-flat, kk - 1)[:kk] if kk else np.zeros(0, dtype=np.int64)
    ia, ib = np.divmod(idx, max(ci.shape[1], 1))
    cand = np.stack([np.asarray(alpha_strings)[a0 + ia], np.asarray(beta_strings)[b0 + ib]], axis=1).astype(np.int64)
    coef = ci.ravel()[idx]
    if comm is not None and comm.Get_size() > 1:
        cand = np.concatenate(comm.allgather(cand))
        coef = np.concatenate(comm.allgather(coef))
    # Ties broken by the strings so every rank and every layout agrees.
    order = np.lexsort((cand[:, 1], cand[:, 0], -np.abs(coef)))[:k]
    return cand[order, 0], cand[order, 1], coef[order]


def carryover_strings(
    ci: np.ndarray,
    alpha_strings: np.ndarray,
    beta_strings: np.ndarray,
    *,
    threshold: float = 1e-4,
    max_strings: int | None = None,
    alpha_range: tuple[int, int] | None = None,
    beta_range: tuple[int, int] | None = None,
    comm: Any | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Strings of the determinants with ``|c| > threshold``, each spin by descending marginal weight.

    The same selection as qiskit-addon-sqd's default carry-over (threshold on
    single amplitudes, ranked by summed ``c**2`` over the other spin), on a
    distributed vector. ``max_strings`` caps the count per spin.
    """
    n_a, n_b = len(alpha_strings), len(beta_strings)
    a0, b0 = _tile(ci, n_a, n_b, alpha_range, beta_range)
    big = np.abs(ci) > threshold
    c2 = np.square(ci)
    # Per string of each spin: marginal weight and how many of its determinants passed,
    # summed over the ranks that share its row or column (O(n_a + n_b) numbers).
    marg = np.zeros(2 * (n_a + n_b))
    ta, tb = ci.shape
    marg[a0 : a0 + ta] = c2.sum(axis=1)
    marg[n_a + b0 : n_a + b0 + tb] = c2.sum(axis=0)
    marg[n_a + n_b + a0 : n_a + n_b + a0 + ta] = big.sum(axis=1)
    marg[2 * n_a + n_b + b0 : 2 * n_a + n_b + b0 + tb] = big.sum(axis=0)
    marg = _allsum(marg, comm)
    picked = []
    for strings, w, hits in (
        (alpha_strings, marg[:n_a], marg[n_a + n_b : 2 * n_a + n_b]),
        (beta_strings, marg[n_a : n_a + n_b], marg[2 * n_a + n_b :]),
    ):
        sel = np.flatnonzero(hits > 0)
        picked.append(np.asarray(strings, dtype=np.int64)[sel][np.lexsort((sel, -w[sel]))][:max_strings])
    return picked[0], picked[1]


def map_ci_vector(
    ci_old: np.ndarray,
    old_alpha: np.ndarray,
    old_beta: np.ndarray,
    new_alpha: np.ndarray,
    new_beta: np.ndarray,
    *,
    alpha_range: tuple[int, int] | None = None,
    beta_range: tuple[int, int] | None = None,
) -> np.ndarray:
    """Project a CI vector onto a new string set (a warm start for :func:`solve`).

    ``ci_old`` is the full ``(n_a_old, n_b_old)`` matrix or a stack of them
    ``(nroots, n_a_old, n_b_old)``. Determinants present in both sets keep
    their coefficient, new ones get zero. Returns the tile ``alpha_range x
    beta_range`` of the new ``(n_a_new, n_b_new)`` matrix (all of it by
    default), not normalized.
    """
    old_alpha = np.asarray(old_alpha, np.int64)
    old_beta = np.asarray(old_beta, np.int64)
    new_alpha = np.asarray(new_alpha, np.int64)
    new_beta = np.asarray(new_beta, np.int64)
    a0, a1 = (0, len(new_alpha)) if alpha_range is None else alpha_range
    b0, b1 = (0, len(new_beta)) if beta_range is None else beta_range
    new_beta = new_beta[b0:b1]
    if ci_old.shape[-2:] != (len(old_alpha), len(old_beta)):
        raise ValueError(f"ci_old has shape {ci_old.shape}, strings give {(len(old_alpha), len(old_beta))}")
    rows_new = new_alpha[a0:a1]
    pos_a = np.minimum(np.searchsorted(old_alpha, rows_new), max(len(old_alpha) - 1, 0))
    hit_a = np.flatnonzero(old_alpha[pos_a] == rows_new) if len(old_alpha) else np.zeros(0, np.int64)
    pos_b = np.minimum(np.searchsorted(old_beta, new_beta), max(len(old_beta) - 1, 0))
    hit_b = np.flatnonzero(old_beta[pos_b] == new_beta) if len(old_beta) else np.zeros(0, np.int64)
    out = np.zeros(ci_old.shape[:-2] + (a1 - a0, len(new_beta)))
    out[..., hit_a[:, None], hit_b[None, :]] = ci_old[..., pos_a[hit_a][:, None], pos_b[hit_b][None, :]]
    return out


def place_determinants(
    determinants: tuple[np.ndarray, np.ndarray, np.ndarray],
    alpha_strings: np.ndarray,
    beta_strings: np.ndarray,
    *,
    alpha_range: tuple[int, int] | None = None,
    beta_range: tuple[int, int] | None = None,
) -> np.ndarray:
    """The tile ``alpha_range x beta_range`` of the vector holding ``determinants`` on new strings.

    ``determinants`` is ``(alpha strings, beta strings, coefficients)``, e.g.
    from :func:`largest_determinants`; those outside the string set are
    dropped, every other entry is zero. A sparse warm start for a solve on
    any layout: each rank builds only its tile.
    """
    det_a, det_b, coef = (np.asarray(x) for x in determinants)
    alpha = np.asarray(alpha_strings, np.int64)
    beta = np.asarray(beta_strings, np.int64)
    a0, a1 = (0, len(alpha)) if alpha_range is None else alpha_range
    b0, b1 = (0, len(beta)) if beta_range is None else beta_range
    ia = np.searchsorted(alpha, det_a)
    ib = np.searchsorted(beta, det_b)
    hit = (ia < len(alpha)) & (ib < len(beta))
    hit[hit] &= (alpha[ia[hit]] == det_a[hit]) & (beta[ib[hit]] == det_b[hit])
    hit &= (ia >= a0) & (ia < a1) & (ib >= b0) & (ib < b1)
    out = np.zeros((a1 - a0, b1 - b0))
    out[ia[hit] - a0, ib[hit] - b0] = coef[hit]
    return out
