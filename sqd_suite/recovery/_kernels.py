"""Numba kernels for bit packing, configuration recovery and subsampling.

Strings are packed per spin into ``(n, nwords)`` uint64 arrays: bit ``p & 63`` of
word ``p >> 6`` is orbital ``p``. Every integer inside these kernels that touches a
word is uint64 (numba turns uint64 mixed with int64 into float64).

The random draws reproduce numpy's ``Generator.choice(..., replace=False, p=...)``
and numpy's pairwise float summation operation by operation, so that with the same
generator state the kernels make exactly the choices qiskit-addon-sqd makes.
``error_model="numpy"`` keeps numpy's float semantics (0/0 is NaN, not an
exception), which the weighted draws rely on.
"""

from __future__ import annotations

import numba
import numpy as np

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S1 = np.uint64(1)
_S2 = np.uint64(2)
_S4 = np.uint64(4)
_S56 = np.uint64(56)

# flip-probability slack of qiskit-addon-sqd's _p_flip_0_to_1
EPS = 0.01


@numba.njit(cache=True, error_model="numpy")
def popcount64(x: np.uint64) -> int:
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return np.int64((x * _H01) >> _S56)


@numba.njit(cache=True, error_model="numpy")
def pack_half(bits: np.ndarray, col0: int, norb: int, nwords: int) -> np.ndarray:
    """Pack columns ``col0 .. col0+norb-1`` of a bool matrix; the last column is orbital 0."""
    n = bits.shape[0]
    out = np.zeros((n, nwords), dtype=np.uint64)
    for i in range(n):
        # columns run from the highest orbital down: shift each bit in from the right
        c = col0
        p = norb - 1
        while p >= 0:
            wi = p >> 6
            lo = wi << 6
            acc = _ZERO
            while p >= lo:
                acc = (acc << _S1) | np.uint64(bits[i, c])
                c += 1
                p -= 1
            out[i, wi] = acc
    return out


@numba.njit(cache=True, error_model="numpy")
def unpack_half(words: np.ndarray, norb: int, out: np.ndarray, col0: int) -> None:
    """Inverse of :func:`pack_half`, writing into ``out[:, col0:col0+norb]``."""
    for i in range(words.shape[0]):
        for p in range(norb):
            out[i, col0 + norb - 1 - p] = (
                (words[i, p >> 6] >> np.uint64(p & 63)) & _ONE
            ) != _ZERO


@numba.njit(cache=True, error_model="numpy")
def weights(words: np.ndarray) -> np.ndarray:
    """Hamming weight of each row of packed words."""
    n, nw = words.shape
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        c = 0
        for w in range(nw):
            c += popcount64(words[i, w])
        out[i] = c
    return out


@numba.njit(cache=True, error_model="numpy")
def _block_sum(a: np.ndarray, start: int, n: int) -> float:
    # numpy's pairwise_sum base cases (n <= 128): 8 accumulators, then the rest
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[start + i]
        return res
    r0 = a[start]
    r1 = a[start + 1]
    r2 = a[start + 2]
    r3 = a[start + 3]
    r4 = a[start + 4]
    r5 = a[start + 5]
    r6 = a[start + 6]
    r7 = a[start + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        j = start + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[start + i]
        i += 1
    return res


@numba.njit(cache=True, error_model="numpy")
def pairwise_sum(a: np.ndarray, start: int, n: int) -> float:
    """``np.sum(a[start:start+n])`` with numpy's exact pairwise summation order.

    numpy recurses on halves (cut at a multiple of 8) above 128 elements; this
    walks the same tree with an explicit stack (cached recursive numba functions
    are not reliable).
    """
    if n <= 128:
        return _block_sum(a, start, n)
    st_s = np.empty(64, dtype=np.int64)
    st_n = np.empty(64, dtype=np.int64)
    st_state = np.empty(64, dtype=np.int64)
    vals = np.empty(64)
    sp = 1
    st_s[0] = start
    st_n[0] = n
    st_state[0] = 0
    vsp = 0
    while sp > 0:
        t = sp - 1
        s0 = st_s[t]
        m = st_n[t]
        if m <= 128:
            sp -= 1
            vals[vsp] = _block_sum(a, s0, m)
            vsp += 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if st_state[t] == 0:
            st_state[t] = 1
            st_s[sp] = s0
            st_n[sp] = n2
            st_state[sp] = 0
            sp += 1
        elif st_state[t] == 1:
            st_state[t] = 2
            st_s[sp] = s0 + n2
            st_n[sp] = m - n2
            st_state[sp] = 0
            sp += 1
        else:
            sp -= 1
            right = vals[vsp - 1]
            left = vals[vsp - 2]
            vsp -= 2
            vals[vsp] = left + right
            vsp += 1
    return vals[0]


@numba.njit(cache=True, error_model="numpy")
def _searchsorted_right(cdf: np.ndarray, tot: float, m: int, x: float) -> int:
    """``np.searchsorted(cdf[:m] / tot, x, side="right")``, dividing only where looked at."""
    if m <= 32:
        for j in range(m):
            if cdf[j] / tot > x:
                return j
        return m
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) >> 1
        if cdf[mid] / tot <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, error_model="numpy")
def choice_without_replacement(
    p: np.ndarray,
    m: int,
    k: int,
    u: np.ndarray,
    upos: int,
    found: np.ndarray,
    cdf: np.ndarray,
    taken: np.ndarray,
) -> int:
    """numpy's ``rng.choice(m, k, replace=False, p=p[:m])``, indices into ``found[:k]``.

    Same algorithm and float operations as numpy: draw the missing number of
    uniforms (taken from ``u`` at ``upos``, in the order numpy draws them), zero
    the weights already found, rebuild the cdf, normalise it by its last entry,
    bisect (side='right') and keep new indices in order of first draw. Two
    shortcuts give the same floats: the cumulative sum is redone only from the
    first weight zeroed since the last round (its prefix is unchanged), and
    entries are divided by the total only when the search looks at them.
    ``p`` is overwritten; ``taken`` (length >= m) must be all False and is left
    so. The caller guarantees at least ``k`` positive weights. Returns the new
    position in ``u``, or -1 when ``u`` ran out (the caller refills it and
    redoes the whole draw).
    """
    n_uniq = 0
    lo = 0  # first cdf entry to recompute
    while n_uniq < k:
        nd = k - n_uniq
        if upos + nd > u.shape[0]:
            for j in range(n_uniq):
                taken[found[j]] = False
            return -1
        acc = 0.0 if lo == 0 else cdf[lo - 1]
        for j in range(lo, m):
            acc += p[j]
            cdf[j] = acc
        tot = cdf[m - 1]
        lo = m
        for j in range(nd):
            idx = _searchsorted_right(cdf, tot, m, u[upos + j])
            if not taken[idx]:
                taken[idx] = True
                found[n_uniq] = idx
                n_uniq += 1
                p[idx] = 0.0
                if idx < lo:
                    lo = idx
        upos += nd
    for j in range(k):
        taken[found[j]] = False
    return upos


@numba.njit(cache=True, error_model="numpy")
def _p_flip_0_to_1(ratio_exp: float, occ: float) -> float:
    if occ < ratio_exp:
        return occ * EPS / ratio_exp
    if ratio_exp == 1.0:
        return EPS
    slope = (1 - EPS) / (1 - ratio_exp)
    intercept = 1 - slope
    return occ * slope + intercept


@numba.njit(cache=True, error_model="numpy")
def _correct_half(
    words: np.ndarray,
    occ: np.ndarray,
    norb: int,
    target: int,
    u: np.ndarray,
    upos: int,
    bits: np.ndarray,
    probs: np.ndarray,
    cand: np.ndarray,
    sub: np.ndarray,
    found: np.ndarray,
    cdf: np.ndarray,
    taken: np.ndarray,
) -> int:
    """Correct one spin half in place, as qiskit-addon-sqd's ``_bipartite_bitstring_correcting``.

    Arrays are indexed by bitstring column within the half: column ``c`` is
    orbital ``norb - 1 - c``, which fixes the order of the weighted draw.
    Returns the new position in ``u``, or -1 when ``u`` ran out.
    """
    count = 0
    for w in range(words.shape[0]):
        count += popcount64(words[w])
    n_diff = count - target
    if n_diff == 0:
        return upos
    ratio = target / norb
    for c in range(norb):
        q = norb - 1 - c
        b = ((words[q >> 6] >> np.uint64(q & 63)) & _ONE) != _ZERO
        bits[c] = b
        if b:
            pr = _p_flip_0_to_1(1 - ratio, 1 - occ[q])
        else:
            pr = _p_flip_0_to_1(ratio, occ[q])
        probs[c] = min(1.0, max(0.0, pr))
    # qiskit-addon-sqd normalises all weights (unless all are zero) before
    # taking the candidates'; only the candidates' quotients are ever used
    tot = pairwise_sum(probs, 0, norb)
    if tot == 0.0:
        tot = 1.0
    # flip ones when there are too many electrons, zeros when too few
    flip_ones = n_diff > 0
    k = n_diff if flip_ones else -n_diff
    m = 0
    for c in range(norb):
        if bits[c] == flip_ones:
            cand[m] = c
            sub[m] = probs[c] / tot
            m += 1
    s = pairwise_sum(sub, 0, m)
    npos = 0
    for j in range(m):
        sub[j] = sub[j] / s
        if sub[j] > 0.0:
            npos += 1
    if npos >= k:
        upos = choice_without_replacement(sub, m, k, u, upos, found, cdf, taken)
        if upos < 0:
            return -1
        for j in range(k):
            found[j] = cand[found[j]]
    else:
        # qiskit-addon-sqd raises here (numpy: "Fewer non-zero entries in p than
        # size", or NaN weights when all are zero) or, when every flip probability
        # of the half is zero, leaves the wrong electron count in place. Take every
        # positive-weight candidate, then the rest uniformly among the zero-weight
        # ones: the limit of giving those a vanishing weight.
        nf = 0
        mz = 0
        for j in range(m):
            if sub[j] > 0.0:
                found[nf] = cand[j]
                nf += 1
            else:
                cand[m + mz] = cand[j]
                mz += 1
        for j in range(mz):
            sub[j] = 1.0 / mz
        upos = choice_without_replacement(sub, mz, k - nf, u, upos, found[nf:], cdf, taken)
        if upos < 0:
            return -1
        for j in range(nf, k):
            found[j] = cand[m + found[j]]
    for j in range(k):
        q = norb - 1 - found[j]
        words[q >> 6] ^= _ONE << np.uint64(q & 63)
    return upos


@numba.njit(cache=True, error_model="numpy")
def flips_needed(alpha: np.ndarray, beta: np.ndarray, n_alpha: int, n_beta: int) -> int:
    """Total number of bits recovery must flip: the first-round draws it makes."""
    total = 0
    wa = weights(alpha)
    wb = weights(beta)
    for i in range(wa.shape[0]):
        total += abs(wa[i] - n_alpha) + abs(wb[i] - n_beta)
    return total


@numba.njit(cache=True, error_model="numpy")
def recover_rows(
    alpha: np.ndarray,
    beta: np.ndarray,
    out_a: np.ndarray,
    out_b: np.ndarray,
    occ_a: np.ndarray,
    occ_b: np.ndarray,
    norb: int,
    n_alpha: int,
    n_beta: int,
    u: np.ndarray,
    row0: int,
) -> tuple[int, int]:
    """Recover rows ``row0..`` into ``out_a``/``out_b``; beta (left half) before alpha.

    Row by row like qiskit-addon-sqd. Returns ``(row, used)``: when ``u`` runs
    out, ``row`` is the row to redo (its output restored) and ``used`` the
    uniforms consumed before it; ``row == len(alpha)`` when done.
    """
    bits = np.zeros(norb, dtype=np.bool_)
    probs = np.zeros(norb)
    cand = np.zeros(2 * norb, dtype=np.int64)
    sub = np.zeros(norb)
    found = np.zeros(norb, dtype=np.int64)
    cdf = np.zeros(norb)
    taken = np.zeros(norb, dtype=np.bool_)
    upos = 0
    for i in range(row0, alpha.shape[0]):
        out_a[i] = alpha[i]
        out_b[i] = beta[i]
        pos = _correct_half(
            out_b[i], occ_b, norb, n_beta, u, upos, bits, probs, cand, sub, found, cdf, taken
        )
        if pos >= 0:
            pos = _correct_half(
                out_a[i], occ_a, norb, n_alpha, u, pos, bits, probs, cand, sub, found, cdf, taken
            )
        if pos < 0:
            out_a[i] = alpha[i]
            out_b[i] = beta[i]
            return i, upos
        upos = pos
    return alpha.shape[0], upos


@numba.njit(cache=True, error_model="numpy")
def subsample_indices(
    p: np.ndarray,
    samples_per_batch: int,
    out: np.ndarray,
    u: np.ndarray,
    batch0: int,
) -> tuple[int, int]:
    """Fill rows ``batch0..`` of ``out`` with ``rng.choice(len(p), samples_per_batch, replace=False, p=p)``.

    Returns ``(batch, used)`` like :func:`recover_rows`.
    """
    m = p.shape[0]
    work = np.empty(m)
    cdf = np.empty(m)
    taken = np.zeros(m, dtype=np.bool_)
    upos = 0
    for b in range(batch0, out.shape[0]):
        work[:] = p
        pos = choice_without_replacement(work, m, samples_per_batch, u, upos, out[b], cdf, taken)
        if pos < 0:
            return b, upos
        upos = pos
    return out.shape[0], upos


@numba.njit(cache=True, error_model="numpy")
def words_to_int64(words: np.ndarray) -> np.ndarray:
    """Single-word strings as int64 (orbital 63, when present, is the sign bit)."""
    n = words.shape[0]
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = np.int64(words[i, 0])
    return out


@numba.njit(cache=True, error_model="numpy")
def int64_to_words(strings: np.ndarray) -> np.ndarray:
    n = strings.shape[0]
    out = np.empty((n, 1), dtype=np.uint64)
    for i in range(n):
        out[i, 0] = np.uint64(strings[i])
    return out


@numba.njit(cache=True, error_model="numpy")
def unique_first_appearance_1key(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys in order of first appearance, by open-addressing hashing.

    Returns ``first`` (row of each distinct key's first occurrence, ascending)
    and ``inverse`` (for every row, the index of its key in ``first``).
    """
    n = keys.shape[0]
    size = 2
    bits = 1
    while size < 2 * n:
        size <<= 1
        bits += 1
    mask = np.uint64(size - 1)
    shift = np.uint64(64 - bits)
    slot_key = np.empty(size, dtype=np.uint64)
    slot_label = np.full(size, -1, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    inverse = np.empty(n, dtype=np.int64)
    n_unique = 0
    for i in range(n):
        k = keys[i]
        # Fibonacci hashing: the high bits of k * 2^64/phi
        h = (k * np.uint64(0x9E3779B97F4A7C15)) >> shift
        while True:
            lab = slot_label[h]
            if lab < 0:
                slot_key[h] = k
                slot_label[h] = n_unique
                first[n_unique] = i
                inverse[i] = n_unique
                n_unique += 1
                break
            if slot_key[h] == k:
                inverse[i] = lab
                break
            h = (h + _ONE) & mask
    return first[:n_unique].copy(), inverse
