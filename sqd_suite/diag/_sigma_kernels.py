"""Numba kernels of the matrix-free product-space sigma (private; see hamiltonian.py for the algebra).

Layout: the input is a *panel*, every alpha row of the columns c0:c1 of C
((n_a, c1 - c0) row-major, only the rows the output reads need be filled);
the output holds the tile rows a0:a1 x columns b0:b1 of sigma. The beta
tables passed with a panel hold only links from output column b to input
columns inside the panel (local indices on both sides). The output's own
panel (c0:c1 == b0:b1, ``same``) carries the diagonal and every term without
a beta excitation and must be applied first: it assigns, the others add.
Every kernel is a "pull": an output row is written by one thread only, so no
atomics. Work is applied in blocks of K alpha rows gathered into a (n_b, K)
block G so that each (value, beta index) pair of a sparse beta pattern
updates K contiguous entries (the only form that reaches the machine's
multiply-add rate; an indexed load per multiply-add runs 4-8x slower).

Beta link codes: ``code = 2 * pair(r, s) + (sign < 0)``, so that a table
``e2[code] = sign * value(pair)`` replaces a branch on the sign.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True)
def _gather_rows(c: np.ndarray, rows: np.ndarray, row0: int, kb: int, g: np.ndarray) -> None:
    """g[:, k] = c[rows[row0 + k], :]: transpose K rows into a column block.

    Eight source rows per sweep so each g row gets 8 contiguous stores (a plain
    per-row transpose touches a new cache line per element and runs ~8x slower).
    """
    nb = c.shape[1]
    k0 = 0
    while k0 + 8 <= kb:
        s0 = c[rows[row0 + k0]]
        s1 = c[rows[row0 + k0 + 1]]
        s2 = c[rows[row0 + k0 + 2]]
        s3 = c[rows[row0 + k0 + 3]]
        s4 = c[rows[row0 + k0 + 4]]
        s5 = c[rows[row0 + k0 + 5]]
        s6 = c[rows[row0 + k0 + 6]]
        s7 = c[rows[row0 + k0 + 7]]
        for jb in range(nb):
            gr = g[jb]
            gr[k0] = s0[jb]
            gr[k0 + 1] = s1[jb]
            gr[k0 + 2] = s2[jb]
            gr[k0 + 3] = s3[jb]
            gr[k0 + 4] = s4[jb]
            gr[k0 + 5] = s5[jb]
            gr[k0 + 6] = s6[jb]
            gr[k0 + 7] = s7[jb]
        k0 += 8
    for k in range(k0, kb):
        src = c[rows[row0 + k]]
        for jb in range(nb):
            g[jb, k] = src[jb]


@numba.njit(cache=True, fastmath=True)
def _scatter_rows(
    out: np.ndarray, a0: int, rows: np.ndarray, scale: np.ndarray, row0: int, kb: int, t: np.ndarray, assign: bool
) -> None:
    """out[rows[row0 + k] - a0, :] (+)= scale[row0 + k] * t[:, k], four rows per sweep."""
    nb = out.shape[1]
    k0 = 0
    while k0 + 4 <= kb:
        o0 = out[rows[row0 + k0] - a0]
        o1 = out[rows[row0 + k0 + 1] - a0]
        o2 = out[rows[row0 + k0 + 2] - a0]
        o3 = out[rows[row0 + k0 + 3] - a0]
        f0 = scale[row0 + k0]
        f1 = scale[row0 + k0 + 1]
        f2 = scale[row0 + k0 + 2]
        f3 = scale[row0 + k0 + 3]
        if assign:
            for ib in range(nb):
                tr = t[ib]
                o0[ib] = f0 * tr[k0]
                o1[ib] = f1 * tr[k0 + 1]
                o2[ib] = f2 * tr[k0 + 2]
                o3[ib] = f3 * tr[k0 + 3]
        else:
            for ib in range(nb):
                tr = t[ib]
                o0[ib] += f0 * tr[k0]
                o1[ib] += f1 * tr[k0 + 1]
                o2[ib] += f2 * tr[k0 + 2]
                o3[ib] += f3 * tr[k0 + 3]
        k0 += 4
    for k in range(k0, kb):
        o = out[rows[row0 + k] - a0]
        f = scale[row0 + k]
        if assign:
            for ib in range(nb):
                o[ib] = f * t[ib, k]
        else:
            for ib in range(nb):
                o[ib] += f * t[ib, k]


@numba.njit(cache=True, fastmath=True)
def _identity_block(
    c: np.ndarray,
    out: np.ndarray,
    a0: int,
    i0: int,
    kb: int,
    occa: np.ndarray,
    ea: np.ndarray,
    occb_jdiag: np.ndarray,
    eb: np.ndarray,
    bs_ptr: np.ndarray,
    bs_col: np.ndarray,
    bs_code: np.ndarray,
    bs_h: np.ndarray,
    bd_ptr: np.ndarray,
    bd_col: np.ndarray,
    bd_val: np.ndarray,
    jpair: np.ndarray,
    rows: np.ndarray,
    ones: np.ndarray,
    g: np.ndarray,
    t: np.ndarray,
    u2: np.ndarray,
    same: bool,
) -> None:
    """Rows i0:i0+kb of sigma (+)= diagonal + beta same-spin + (beta single x alpha diagonal) terms.

    With ``same`` (the output's own panel) adds the diagonal and assigns the
    output rows; otherwise adds the beta links into this panel.
    """
    nb = t.shape[0]
    nela = occa.shape[1]
    npair = jpair.shape[0]
    _gather_rows(c, rows, i0, kb, g)
    # u2[code, k]: sign * sum_{i in occ(alpha_k)} (rs|ii), the alpha-beta part of a beta single.
    for rr in range(npair):
        for k in range(kb):
            u = 0.0
            for x in range(nela):
                u += jpair[rr, occa[i0 + k, x]]
            u2[2 * rr, k] = u
            u2[2 * rr + 1, k] = -u
    for ib in range(nb):
        trow = t[ib]
        if same:
            for k in range(kb):
                d = ea[i0 + k] + eb[ib]
                for x in range(nela):
                    d += occb_jdiag[ib, occa[i0 + k, x]]
                trow[k] = d * g[ib, k]
        else:
            trow[:kb] = 0.0
        for ll in range(bs_ptr[ib], bs_ptr[ib + 1]):
            grow = g[bs_col[ll]]
            urow = u2[bs_code[ll]]
            h = bs_h[ll]
            for k in range(kb):
                trow[k] += (h + urow[k]) * grow[k]
        for ll in range(bd_ptr[ib], bd_ptr[ib + 1]):
            grow = g[bd_col[ll]]
            v = bd_val[ll]
            for k in range(kb):
                trow[k] += v * grow[k]
    _scatter_rows(out, a0, rows, ones, i0, kb, t, same)


@numba.njit(cache=True, fastmath=True)
def _alpha_doubles(
    c: np.ndarray, out: np.ndarray, a0: int, r0: int, r1: int, ad_ptr: np.ndarray, ad_col: np.ndarray, ad_val: np.ndarray
) -> None:
    """sigma[ia, :] += sum_d H_aa[ia, ja_d] * c[ja_d, :] (contiguous over beta), four links per sweep."""
    nb = c.shape[1]
    for ia in range(r0, r1):
        orow = out[ia - a0]
        lo = ad_ptr[ia - a0]
        hi = ad_ptr[ia - a0 + 1]
        ll = lo
        while ll + 4 <= hi:
            c0 = c[ad_col[ll]]
            c1 = c[ad_col[ll + 1]]
            c2 = c[ad_col[ll + 2]]
            c3 = c[ad_col[ll + 3]]
            v0 = ad_val[ll]
            v1 = ad_val[ll + 1]
            v2 = ad_val[ll + 2]
            v3 = ad_val[ll + 3]
            for ib in range(nb):
                orow[ib] += v0 * c0[ib] + v1 * c1[ib] + v2 * c2[ib] + v3 * c3[ib]
            ll += 4
        while ll < hi:
            c0 = c[ad_col[ll]]
            v0 = ad_val[ll]
            for ib in range(nb):
                orow[ib] += v0 * c0[ib]
            ll += 1


@numba.njit(cache=True, fastmath=True)
def _pair_block(
    c: np.ndarray,
    out: np.ndarray,
    a0: int,
    pair: int,
    l0: int,
    kb: int,
    l_ia: np.ndarray,
    l_ja: np.ndarray,
    l_sign: np.ndarray,
    l_f: np.ndarray,
    occb: np.ndarray,
    bs_ptr: np.ndarray,
    bs_col: np.ndarray,
    bs_code: np.ndarray,
    eri_pair: np.ndarray,
    jpair: np.ndarray,
    g: np.ndarray,
    t: np.ndarray,
    e2: np.ndarray,
    same: bool,
) -> None:
    """Alpha single links l0:l0+kb, all with orbital pair ``pair``: alpha single x (beta single + beta diagonal).

    sigma[ia, ib] += sa * [(F_pq(ja) + sum_{j in occ(ib)} (pq|jj)) c[ja, ib] + sum_rs sb (pq|rs) c[ja, jb]]
    (the first term only on the output's own panel, ``same``).
    """
    nb = t.shape[0]
    nelb = occb.shape[1]
    npair = eri_pair.shape[0]
    erow = eri_pair[pair]
    for rr in range(npair):
        e2[2 * rr] = erow[rr]
        e2[2 * rr + 1] = -erow[rr]
    jrow = jpair[pair]
    _gather_rows(c, l_ja, l0, kb, g)
    for ib in range(nb):
        trow = t[ib]
        if same:
            d = 0.0
            for x in range(nelb):
                d += jrow[occb[ib, x]]
            grow = g[ib]
            for k in range(kb):
                trow[k] = (d + l_f[l0 + k]) * grow[k]
        else:
            trow[:kb] = 0.0
        for ll in range(bs_ptr[ib], bs_ptr[ib + 1]):
            grow = g[bs_col[ll]]
            v = e2[bs_code[ll]]
            for k in range(kb):
                trow[k] += v * grow[k]
    _scatter_rows(out, a0, l_ia, l_sign, l0, kb, t, False)


@numba.njit(cache=True, parallel=True, fastmath=True)
def sigma_rows(
    c: np.ndarray,
    out: np.ndarray,
    a0: int,
    chunk_bounds: np.ndarray,
    kmax: int,
    occa: np.ndarray,
    ea: np.ndarray,
    ad_ptr: np.ndarray,
    ad_col: np.ndarray,
    ad_val: np.ndarray,
    pair_ptr: np.ndarray,
    l_ia: np.ndarray,
    l_ja: np.ndarray,
    l_sign: np.ndarray,
    l_f: np.ndarray,
    occb: np.ndarray,
    occb_jdiag: np.ndarray,
    eb: np.ndarray,
    bs_ptr: np.ndarray,
    bs_col: np.ndarray,
    bs_code: np.ndarray,
    bs_h: np.ndarray,
    bd_ptr: np.ndarray,
    bd_col: np.ndarray,
    bd_val: np.ndarray,
    eri_pair: np.ndarray,
    jpair: np.ndarray,
    same: bool,
) -> None:
    """out[ia - a0, :] (+)= (H_el panel)[ia, b0:b1] for ia in chunk_bounds[0]:chunk_bounds[-1]; one chunk per task.

    ``occb``, ``occb_jdiag`` and ``eb`` hold the output columns b0:b1; the
    beta tables this panel's links. ``same``: the own panel (assigns).
    """
    nb_in = c.shape[1]
    nb_out = out.shape[1]
    npair = eri_pair.shape[0]
    nchunk = chunk_bounds.size - 1
    for ch in numba.prange(nchunk):
        r0 = chunk_bounds[ch]
        r1 = chunk_bounds[ch + 1]
        g = np.empty((nb_in, kmax))
        t = np.empty((nb_out, kmax))
        u2 = np.empty((2 * npair, kmax))
        e2 = np.empty(2 * npair)
        # Identity blocks address global rows directly: rows[i] = i, scale 1.
        rows = np.arange(r1).astype(np.int32)
        ones = np.ones(r1)
        for i0 in range(r0, r1, kmax):
            kb = min(kmax, r1 - i0)
            _identity_block(
                c, out, a0, i0, kb, occa, ea, occb_jdiag, eb,
                bs_ptr, bs_col, bs_code, bs_h, bd_ptr, bd_col, bd_val, jpair, rows, ones, g, t, u2, same,
            )  # fmt: skip
        if same:
            _alpha_doubles(c, out, a0, r0, r1, ad_ptr, ad_col, ad_val)
        for pair in range(npair):
            s = pair_ptr[pair]
            e = pair_ptr[pair + 1]
            if s == e:
                continue
            # Links of a pair are sorted by output row: this chunk's links are one slice.
            lo = s + np.searchsorted(l_ia[s:e], r0)
            hi = s + np.searchsorted(l_ia[s:e], r1)
            for l0 in range(lo, hi, kmax):
                kb = min(kmax, hi - l0)
                _pair_block(
                    c, out, a0, pair, l0, kb, l_ia, l_ja, l_sign, l_f, occb,
                    bs_ptr, bs_col, bs_code, eri_pair, jpair, g, t, e2, same,
                )  # fmt: skip


@numba.njit(cache=True, parallel=True)
def single_fock_values(
    indptr: np.ndarray, p: np.ndarray, q: np.ndarray, occ: np.ndarray, h1: np.ndarray, h2: np.ndarray
) -> np.ndarray:
    """Same-spin part of a single-excitation element: h_pq + sum_{j in occ(i)} [(pq|jj) - (pj|jq)].

    Symmetric in the link's two ends (the j = p, q terms cancel), so the source row's occupations serve.
    """
    n = indptr.size - 1
    nel = occ.shape[1]
    f = np.empty(p.size)
    for i in numba.prange(n):
        for ll in range(indptr[i], indptr[i + 1]):
            pp = p[ll]
            qq = q[ll]
            v = h1[pp, qq]
            for x in range(nel):
                j = occ[i, x]
                v += h2[pp, qq, j, j] - h2[pp, j, j, qq]
            f[ll] = v
    return f


@numba.njit(cache=True, parallel=True)
def double_values(
    p: np.ndarray, q: np.ndarray, r: np.ndarray, s: np.ndarray, sign: np.ndarray, h2: np.ndarray
) -> np.ndarray:
    """sign * [(pq|rs) - (ps|rq)] for a+_p a+_r a_s a_q links."""
    out = np.empty(p.size)
    for k in numba.prange(p.size):
        out[k] = sign[k] * (h2[p[k], q[k], r[k], s[k]] - h2[p[k], s[k], r[k], q[k]])
    return out


@numba.njit(cache=True)
def string_energies(occ: np.ndarray, h1: np.ndarray, jdiag: np.ndarray, kdiag: np.ndarray) -> np.ndarray:
    """Same-spin diagonal: sum_i h_ii + 1/2 sum_{ij} [(ii|jj) - (ij|ji)] over occupied i, j."""
    n, nel = occ.shape
    out = np.empty(n)
    for a in range(n):
        e = 0.0
        for x in range(nel):
            i = occ[a, x]
            e += h1[i, i]
            for y in range(nel):
                j = occ[a, y]
                e += 0.5 * (jdiag[i, j] - kdiag[i, j])
        out[a] = e
    return out
