"""Spin strings: validation, occupation lists and fermionic signs.

A spin string is an int64 whose bit ``p`` is set when spatial orbital ``p`` is
occupied (PySCF ``cistring`` convention). Signs follow PySCF: an operator on
orbital ``p`` picks up ``(-1)**(number of occupied orbitals above p)``. For
number-conserving products (``a+_p a_q``, ``a+_p a+_r a_s a_q``) the sign is
the same whichever end one counts from.
"""

from __future__ import annotations

import numba
import numpy as np

MAX_NORB = 63


def validate_strings(strings: np.ndarray, norb: int, nelec: int, *, name: str = "strings") -> np.ndarray:
    """Check that ``strings`` is a sorted, unique int64 array of ``nelec``-electron strings on ``norb`` orbitals.

    Returns the array as contiguous int64 (no copy when it already is one).
    """
    if not 0 < norb <= MAX_NORB:
        raise ValueError(f"norb must be in 1..{MAX_NORB}, got {norb}")
    if not 0 <= nelec <= norb:
        raise ValueError(f"{name}: nelec {nelec} does not fit in {norb} orbitals")
    arr = np.ascontiguousarray(strings, dtype=np.int64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of strings")
    if arr.size > 1 and not np.all(arr[1:] > arr[:-1]):
        raise ValueError(f"{name} must be sorted ascending and unique")
    if arr[0] < 0 or arr[-1] >= (1 << norb):
        raise ValueError(f"{name} has bits outside orbitals 0..{norb - 1}")
    counts = popcount(arr)
    if np.any(counts != nelec):
        bad = int(arr[np.argmax(counts != nelec)])
        raise ValueError(f"{name}: string {bad:#b} does not have {nelec} electrons")
    return arr


def popcount(strings: np.ndarray) -> np.ndarray:
    """Number of set bits of each int64 string."""
    return _popcount_array(np.ascontiguousarray(strings, dtype=np.int64))


def occupation_lists(strings: np.ndarray, norb: int, nelec: int) -> np.ndarray:
    """Occupied orbitals of each string in ascending order, shape (n, nelec), int32."""
    return _occ_lists(np.ascontiguousarray(strings, dtype=np.int64), norb, nelec)


def occupation_matrix(strings: np.ndarray, norb: int) -> np.ndarray:
    """0/1 occupation numbers, shape (n, norb), float64."""
    bits = (np.asarray(strings, dtype=np.int64)[:, None] >> np.arange(norb, dtype=np.int64)) & 1
    return bits.astype(np.float64)


def full_strings(norb: int, nelec: int) -> np.ndarray:
    """All ``nelec``-electron strings on ``norb`` orbitals, sorted (the full FCI string space)."""
    from pyscf.fci import cistring

    return np.sort(np.asarray(cistring.make_strings(range(norb), nelec), dtype=np.int64))


@numba.njit(cache=True, inline="always")
def bit_count(x: int) -> int:
    """Popcount of a non-negative int64 (SWAR)."""
    x = np.uint64(x)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True, inline="always")
def op_sign(string: int, p: int) -> int:
    """Sign of a creation/annihilation operator on orbital ``p``: (-1)**(occupied orbitals above p)."""
    return 1 - 2 * (bit_count(string >> (p + 1)) & 1)


@numba.njit(cache=True, inline="always")
def single_sign(string: int, p: int, q: int) -> int:
    """Sign of ``a+_p a_q |string>`` (q occupied, p empty or p == q)."""
    lo = min(p, q)
    hi = max(p, q)
    if hi - lo < 2:
        return 1
    mask = ((np.int64(1) << hi) - 1) ^ ((np.int64(1) << (lo + 1)) - 1)
    return 1 - 2 * (bit_count(string & mask) & 1)


@numba.njit(cache=True)
def _popcount_array(strings: np.ndarray) -> np.ndarray:
    out = np.empty(strings.size, dtype=np.int64)
    for i in range(strings.size):
        out[i] = bit_count(strings[i])
    return out


@numba.njit(cache=True)
def _occ_lists(strings: np.ndarray, norb: int, nelec: int) -> np.ndarray:
    out = np.empty((strings.size, nelec), dtype=np.int32)
    for i in range(strings.size):
        k = 0
        for p in range(norb):
            if (strings[i] >> p) & 1:
                out[i, k] = p
                k += 1
    return out
