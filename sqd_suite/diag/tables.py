"""In-set excitation tables of a sorted string set.

Tables are per string (never per determinant). Both are CSR by source string:
row ``i`` lists the strings of the set reached from string ``i``.

* :class:`SingleExcitations`: ``a+_p a_q |i> = sign |target>`` with ``p != q``.
  Diagonal links (``p == q``, the occupation numbers) are *excluded*; take
  occupations from the strings (:func:`sqd_suite.diag.strings.occupation_matrix`).
  The graph is symmetric: the link ``i -> t`` with ``(p, q, sign)`` has the
  partner ``t -> i`` with ``(q, p, sign)``.
* :class:`DoubleExcitations`: ``a+_p a+_r a_s a_q |i> = sign |target>`` with
  ``p < r`` created and ``q < s`` annihilated, all four distinct. Rows may be
  restricted to a block ``row_range`` of source strings (targets are global).

Singles are found by looking up each string's ``n_occ * n_vir`` replacements
in the sorted array; doubles by bucketing strings under their ``C(N, 2)``
(N-2)-electron "hole" strings (two strings that differ by exactly two
orbitals share exactly one hole string), so no O(n^2) scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from sqd_suite.diag.strings import bit_count, occupation_lists, op_sign, single_sign, validate_strings


@dataclass(frozen=True, eq=False)
class SingleExcitations:
    """In-set single excitations, CSR by source: ``a+_p a_q |i> = sign |target>`` (``p != q``)."""

    indptr: np.ndarray  # (n + 1,) int64
    target: np.ndarray  # (nnz,) int32, global index in the string set
    p: np.ndarray  # (nnz,) int32, created orbital
    q: np.ndarray  # (nnz,) int32, annihilated orbital
    sign: np.ndarray  # (nnz,) int8, +1 or -1

    @property
    def n_strings(self) -> int:
        return self.indptr.size - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def counts(self) -> np.ndarray:
        """Number of in-set single excitations of each string (``s(i)``)."""
        return np.diff(self.indptr)

    def sources(self) -> np.ndarray:
        """Source string index of each link, shape (nnz,), int32."""
        return np.repeat(np.arange(self.n_strings, dtype=np.int32), self.counts())


@dataclass(frozen=True, eq=False)
class DoubleExcitations:
    """In-set same-spin double excitations for source rows ``row_range``.

    ``a+_p a+_r a_s a_q |row_range[0] + i> = sign |target>``, ``p < r``, ``q < s``.
    """

    row_range: tuple[int, int]
    indptr: np.ndarray  # (row_range[1] - row_range[0] + 1,) int64
    target: np.ndarray  # (nnz,) int32, global index
    p: np.ndarray  # (nnz,) int32 } created
    r: np.ndarray  # (nnz,) int32 }
    q: np.ndarray  # (nnz,) int32 } annihilated
    s: np.ndarray  # (nnz,) int32 }
    sign: np.ndarray  # (nnz,) int8

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def counts(self) -> np.ndarray:
        """Number of in-set double excitations of each row (``d(i)``)."""
        return np.diff(self.indptr)


def build_singles(strings: np.ndarray, norb: int, nelec: int) -> SingleExcitations:
    """Single-excitation table of a sorted string set (off-diagonal links only)."""
    strings = validate_strings(strings, norb, nelec)
    occ = occupation_lists(strings, norb, nelec)
    counts = _singles_count(strings, occ, norb)
    indptr = np.zeros(strings.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    target = np.empty(nnz, dtype=np.int32)
    p = np.empty(nnz, dtype=np.int32)
    q = np.empty(nnz, dtype=np.int32)
    sign = np.empty(nnz, dtype=np.int8)
    _singles_fill(strings, occ, norb, indptr, target, p, q, sign)
    return SingleExcitations(indptr=indptr, target=target, p=p, q=q, sign=sign)


def build_doubles(
    strings: np.ndarray, norb: int, nelec: int, *, row_range: tuple[int, int] | None = None
) -> DoubleExcitations:
    """Same-spin double-excitation table for source rows ``row_range`` (default: all)."""
    strings = validate_strings(strings, norb, nelec)
    n = strings.size
    r0, r1 = (0, n) if row_range is None else (int(row_range[0]), int(row_range[1]))
    if not 0 <= r0 <= r1 <= n:
        raise ValueError(f"row_range {row_range} outside 0..{n}")
    nrow = r1 - r0
    empty_i32 = np.empty(0, dtype=np.int32)
    if nelec < 2 or nelec > norb - 2 or nrow == 0:
        return DoubleExcitations(
            row_range=(r0, r1),
            indptr=np.zeros(nrow + 1, dtype=np.int64),
            target=empty_i32,
            p=empty_i32,
            r=empty_i32,
            q=empty_i32,
            s=empty_i32,
            sign=np.empty(0, dtype=np.int8),
        )
    occ = occupation_lists(strings, norb, nelec)
    keys = _hole_keys(strings, occ)
    order = np.argsort(keys, kind="stable").astype(np.int64)
    sorted_keys = keys[order]
    npairs = nelec * (nelec - 1) // 2
    owner = (order // npairs).astype(np.int32)
    # Group boundaries of equal hole strings; singletons cannot hold a pair.
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    bounds = np.r_[starts, sorted_keys.size].astype(np.int64)
    sizes = np.diff(bounds)
    keep = np.flatnonzero(sizes > 1)
    gstart = bounds[keep]
    gend = bounds[keep + 1]
    gcount = _group_pair_count(strings, owner, gstart, gend, r0, r1)
    goff = np.zeros(gcount.size + 1, dtype=np.int64)
    np.cumsum(gcount, out=goff[1:])
    rows = np.empty(goff[-1], dtype=np.int32)
    cols = np.empty(goff[-1], dtype=np.int32)
    _group_pair_fill(strings, owner, gstart, gend, r0, r1, goff, rows, cols)
    # CSR by source row (stable: targets ascending within a row after the sort below).
    perm = np.lexsort((cols, rows))
    rows = rows[perm]
    target = np.ascontiguousarray(cols[perm])
    indptr = np.zeros(nrow + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows - r0, minlength=nrow), out=indptr[1:])
    nnz = target.size
    p = np.empty(nnz, dtype=np.int32)
    r = np.empty(nnz, dtype=np.int32)
    q = np.empty(nnz, dtype=np.int32)
    s = np.empty(nnz, dtype=np.int32)
    sign = np.empty(nnz, dtype=np.int8)
    _doubles_orbitals(strings, rows, target, p, r, q, s, sign)
    return DoubleExcitations(row_range=(r0, r1), indptr=indptr, target=target, p=p, r=r, q=q, s=s, sign=sign)


@numba.njit(cache=True, parallel=True)
def _singles_count(strings: np.ndarray, occ: np.ndarray, norb: int) -> np.ndarray:
    n, nel = occ.shape
    counts = np.zeros(n, dtype=np.int64)
    for i in numba.prange(n):
        s0 = strings[i]
        c = 0
        for k in range(nel):
            q = occ[i, k]
            base = s0 ^ (np.int64(1) << q)
            for p in range(norb):
                if (s0 >> p) & 1:
                    continue
                t = base | (np.int64(1) << p)
                j = np.searchsorted(strings, t)
                if j < n and strings[j] == t:
                    c += 1
        counts[i] = c
    return counts


@numba.njit(cache=True, parallel=True)
def _singles_fill(
    strings: np.ndarray,
    occ: np.ndarray,
    norb: int,
    indptr: np.ndarray,
    target: np.ndarray,
    p_out: np.ndarray,
    q_out: np.ndarray,
    sign: np.ndarray,
) -> None:
    n, nel = occ.shape
    for i in numba.prange(n):
        s0 = strings[i]
        pos = indptr[i]
        for k in range(nel):
            q = occ[i, k]
            base = s0 ^ (np.int64(1) << q)
            for p in range(norb):
                if (s0 >> p) & 1:
                    continue
                t = base | (np.int64(1) << p)
                j = np.searchsorted(strings, t)
                if j < n and strings[j] == t:
                    target[pos] = j
                    p_out[pos] = p
                    q_out[pos] = q
                    sign[pos] = single_sign(s0, p, q)
                    pos += 1


@numba.njit(cache=True, parallel=True)
def _hole_keys(strings: np.ndarray, occ: np.ndarray) -> np.ndarray:
    n, nel = occ.shape
    npairs = nel * (nel - 1) // 2
    keys = np.empty(n * npairs, dtype=np.int64)
    for i in numba.prange(n):
        pos = i * npairs
        for a in range(nel):
            for b in range(a + 1, nel):
                keys[pos] = strings[i] ^ (np.int64(1) << occ[i, a]) ^ (np.int64(1) << occ[i, b])
                pos += 1
    return keys


@numba.njit(cache=True, parallel=True)
def _group_pair_count(
    strings: np.ndarray, owner: np.ndarray, gstart: np.ndarray, gend: np.ndarray, r0: int, r1: int
) -> np.ndarray:
    counts = np.zeros(gstart.size, dtype=np.int64)
    for g in numba.prange(gstart.size):
        c = 0
        for x in range(gstart[g], gend[g]):
            i = owner[x]
            if i < r0 or i >= r1:
                continue
            for y in range(gstart[g], gend[g]):
                # Strings sharing a hole differ by 0, 1 or 2 orbitals; keep exactly 2.
                if bit_count(strings[i] ^ strings[owner[y]]) == 4:
                    c += 1
        counts[g] = c
    return counts


@numba.njit(cache=True, parallel=True)
def _group_pair_fill(
    strings: np.ndarray,
    owner: np.ndarray,
    gstart: np.ndarray,
    gend: np.ndarray,
    r0: int,
    r1: int,
    goff: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
) -> None:
    for g in numba.prange(gstart.size):
        pos = goff[g]
        for x in range(gstart[g], gend[g]):
            i = owner[x]
            if i < r0 or i >= r1:
                continue
            for y in range(gstart[g], gend[g]):
                j = owner[y]
                if bit_count(strings[i] ^ strings[j]) == 4:
                    rows[pos] = i
                    cols[pos] = j
                    pos += 1


@numba.njit(cache=True, inline="always")
def _lowest_two(x: int) -> tuple[int, int]:
    lo = 0
    while not (x >> lo) & 1:
        lo += 1
    hi = lo + 1
    while not (x >> hi) & 1:
        hi += 1
    return lo, hi


@numba.njit(cache=True, parallel=True)
def _doubles_orbitals(
    strings: np.ndarray,
    rows: np.ndarray,
    target: np.ndarray,
    p_out: np.ndarray,
    r_out: np.ndarray,
    q_out: np.ndarray,
    s_out: np.ndarray,
    sign: np.ndarray,
) -> None:
    for k in numba.prange(rows.size):
        src = strings[rows[k]]
        dst = strings[target[k]]
        q, s = _lowest_two(src & ~dst)
        p, r = _lowest_two(dst & ~src)
        # a+_p a+_r a_s a_q applied right to left.
        x = src
        sg = op_sign(x, q)
        x ^= np.int64(1) << q
        sg *= op_sign(x, s)
        x ^= np.int64(1) << s
        sg *= op_sign(x, r)
        x ^= np.int64(1) << r
        sg *= op_sign(x, p)
        p_out[k] = p
        r_out[k] = r
        q_out[k] = q
        s_out[k] = s
        sign[k] = sg
