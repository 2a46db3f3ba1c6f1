"""Conversion between measured bitstrings and per-spin orbital strings.

A bitstring row of ``2*norb`` bools reads ``[b_{N-1} ... b_0 a_{N-1} ... a_0]``
(qiskit-addon-sqd's layout): beta half on the left, alpha half on the right,
each little-endian. A spin string is an integer whose bit ``p`` is orbital ``p``.

Up to 64 orbitals per spin a string is one int64 (for exactly 64 orbitals,
orbital 63 is the sign bit: the int64 is the two's-complement view of the
uint64). Any number of orbitals is handled as ``(n, nwords)`` uint64 "words",
bit ``p & 63`` of word ``p >> 6``.
"""

from __future__ import annotations

import numpy as np

from sqd_suite.recovery import _kernels

MAX_ORBITALS_INT64 = 64


def _nwords(norb: int) -> int:
    return max(1, (norb + 63) // 64)


def as_bitstring_matrix(bitstring_matrix: np.ndarray, name: str = "bitstring_matrix") -> np.ndarray:
    """Validate a bitstring matrix and return it as a C-contiguous bool array."""
    bm = np.asarray(bitstring_matrix)
    if bm.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D bool array (rows = bitstrings), got shape {bm.shape}; "
            "reshape a single bitstring with bitstring[None, :]."
        )
    if bm.shape[1] % 2:
        raise ValueError(
            f"{name} has {bm.shape[1]} columns; a bitstring needs 2*norb columns "
            "(beta half left, alpha half right)."
        )
    if bm.dtype != np.bool_:
        if not np.issubdtype(bm.dtype, np.integer) or (bm.size and (bm.min() < 0 or bm.max() > 1)):
            raise ValueError(f"{name} must hold bools (or 0/1 integers), got dtype {bm.dtype}.")
        bm = bm.astype(np.bool_)
    return np.ascontiguousarray(bm)


def bitstrings_to_words(bitstring_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack a bitstring matrix into ``(alpha_words, beta_words)``, each ``(n, nwords)`` uint64.

    Works for any number of orbitals.
    """
    bm = as_bitstring_matrix(bitstring_matrix)
    norb = bm.shape[1] // 2
    nw = _nwords(norb)
    alpha = _kernels.pack_half(bm, norb, norb, nw)
    beta = _kernels.pack_half(bm, 0, norb, nw)
    return alpha, beta


def words_to_bitstrings(alpha_words: np.ndarray, beta_words: np.ndarray, norb: int) -> np.ndarray:
    """Inverse of :func:`bitstrings_to_words`: a ``(n, 2*norb)`` bool matrix."""
    alpha_words = np.ascontiguousarray(alpha_words, dtype=np.uint64)
    beta_words = np.ascontiguousarray(beta_words, dtype=np.uint64)
    if alpha_words.ndim != 2 or alpha_words.shape != beta_words.shape:
        raise ValueError(
            f"alpha_words and beta_words must be 2-D arrays of equal shape, got "
            f"{alpha_words.shape} and {beta_words.shape}."
        )
    if alpha_words.shape[1] != _nwords(norb):
        raise ValueError(
            f"words have {alpha_words.shape[1]} columns but norb={norb} needs {_nwords(norb)}."
        )
    out = np.empty((alpha_words.shape[0], 2 * norb), dtype=np.bool_)
    _kernels.unpack_half(alpha_words, norb, out, norb)
    _kernels.unpack_half(beta_words, norb, out, 0)
    return out


def _check_int64_norb(norb: int, name: str) -> None:
    if norb > MAX_ORBITALS_INT64:
        raise ValueError(
            f"{name}: {norb} orbitals per spin do not fit one int64 string (limit "
            f"{MAX_ORBITALS_INT64}); use bitstrings_to_words for multi-word strings."
        )


def _paired_strings(alpha: np.ndarray, beta: np.ndarray, norb: int) -> tuple[np.ndarray, np.ndarray]:
    """``alpha``/``beta`` as flat int64 arrays of one determinant each, checked against ``norb``."""
    _check_int64_norb(norb, "norb")
    a = np.ascontiguousarray(alpha, dtype=np.int64).reshape(-1)
    b = np.ascontiguousarray(beta, dtype=np.int64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"alpha and beta must have the same length, got {a.size} and {b.size}.")
    return a, b


def bitstrings_to_strings(bitstring_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a bitstring matrix into int64 ``(alpha_strings, beta_strings)``, one per row.

    Rows are kept (no sorting or de-duplication). Limited to 64 orbitals per spin.
    """
    bm = as_bitstring_matrix(bitstring_matrix)
    norb = bm.shape[1] // 2
    _check_int64_norb(norb, "bitstring_matrix")
    alpha, beta = bitstrings_to_words(bm)
    return _kernels.words_to_int64(alpha), _kernels.words_to_int64(beta)


def strings_to_bitstrings(alpha: np.ndarray, beta: np.ndarray, norb: int) -> np.ndarray:
    """Build the bitstring matrix of determinants ``(alpha[i], beta[i])``."""
    alpha, beta = _paired_strings(alpha, beta, norb)
    if norb < 64:
        bad = (alpha < 0) | (alpha >> norb != 0) | (beta < 0) | (beta >> norb != 0)
        if bad.any():
            raise ValueError(
                f"alpha/beta hold strings with bits at or above norb={norb}; "
                "pass the right norb."
            )
    return words_to_bitstrings(
        _kernels.int64_to_words(alpha), _kernels.int64_to_words(beta), norb
    )

