"""Input checks shared by the recovery API: one-line ValueErrors naming argument and fix."""

from __future__ import annotations

import operator

import numpy as np


def check_electrons(n_alpha: int, n_beta: int, norb: int, name: str = "nelec") -> tuple[int, int]:
    try:
        na = operator.index(n_alpha)
        nb = operator.index(n_beta)
    except TypeError:
        raise ValueError(
            f"{name} must be two integers (n_alpha, n_beta), got ({n_alpha!r}, {n_beta!r})."
        ) from None
    if na < 0 or nb < 0:
        raise ValueError(
            f"{name}=({na}, {nb}): the numbers of electrons must be non-negative integers."
        )
    if na > norb or nb > norb:
        raise ValueError(
            f"{name}=({na}, {nb}) is impossible with norb={norb} orbitals per spin; "
            "check nelec or the bitstring width (2*norb columns)."
        )
    return na, nb


def check_nelec_tuple(nelec: tuple[int, int], norb: int) -> tuple[int, int]:
    try:
        n_alpha, n_beta = nelec
    except (TypeError, ValueError):
        raise ValueError(f"nelec must be a tuple (n_alpha, n_beta), got {nelec!r}.") from None
    return check_electrons(n_alpha, n_beta, norb)


def check_occupancies(
    avg_occupancies: tuple[np.ndarray, np.ndarray], norb: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(occ_a, occ_b)`` as float64 arrays of length norb."""
    try:
        occ_a, occ_b = avg_occupancies
    except (TypeError, ValueError):
        raise ValueError(
            "avg_occupancies must be a pair (occ_a, occ_b) of arrays of length norb; "
            "a flat 2*norb array (deprecated in qiskit-addon-sqd) is not accepted."
        ) from None
    out = []
    for label, occ in (("alpha", occ_a), ("beta", occ_b)):
        arr = np.ascontiguousarray(occ, dtype=np.float64)
        if arr.shape != (norb,):
            raise ValueError(
                f"avg_occupancies: the {label} occupancies have shape {arr.shape}, "
                f"expected ({norb},) to match the {2 * norb}-bit bitstrings."
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"avg_occupancies: the {label} occupancies contain NaN or inf.")
        out.append(arr)
    return out[0], out[1]


def check_weights(
    weights: np.ndarray, n: int, name: str, *, allow_negative: bool = False
) -> np.ndarray:
    arr = np.asarray(weights)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name} must be a 1-D array with one entry per bitstring row ({n}), "
            f"got shape {arr.shape}."
        )
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}.")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf.")
    if not allow_negative and arr.size and arr.min() < 0:
        raise ValueError(f"{name} contains negative entries; pass counts or probabilities.")
    return arr


def check_positive_int(value: int, name: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.") from None
    if v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v}.")
    return v
