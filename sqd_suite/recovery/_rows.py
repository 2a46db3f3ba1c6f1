"""Sorting and de-duplication of packed determinants ``(alpha_words, beta_words)``.

The order is that of the bool rows compared lexicographically (what
``np.unique(bitstring_matrix, axis=0)`` gives): beta half first, high orbitals first.
"""

from __future__ import annotations

import numpy as np

from sqd_suite.recovery import _kernels


def row_keys(alpha: np.ndarray, beta: np.ndarray, norb: int) -> np.ndarray:
    """``(n, k)`` uint64 keys whose lexicographic order is the bool-row order."""
    if 2 * norb <= 64:
        # one word holds the whole bitstring: beta in the high bits
        key = (beta[:, 0] << np.uint64(norb)) | alpha[:, 0]
        return key[:, None]
    return np.concatenate([beta[:, ::-1], alpha[:, ::-1]], axis=1)


def lex_order(keys: np.ndarray) -> np.ndarray:
    """Stable ascending order of the rows of ``keys``."""
    if keys.shape[1] == 1:
        return np.argsort(keys[:, 0], kind="stable")
    return np.lexsort(keys.T[::-1])


def is_strictly_sorted(keys: np.ndarray) -> bool:
    if keys.shape[0] < 2:
        return True
    if keys.shape[1] == 1:
        return bool(np.all(keys[1:, 0] > keys[:-1, 0]))
    # lexicographic a < b: first differing column decides
    a, b = keys[:-1], keys[1:]
    diff = a != b
    first = np.argmax(diff, axis=1)
    rows = np.arange(a.shape[0])
    return bool(np.all(diff.any(axis=1)) and np.all(a[rows, first] < b[rows, first]))


def group_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort rows; return (order, start flags of each group of equal rows in sorted order)."""
    order = lex_order(keys)
    sk = keys[order]
    new = np.ones(keys.shape[0], dtype=bool)
    if keys.shape[0] > 1:
        new[1:] = np.any(sk[1:] != sk[:-1], axis=1)
    return order, new


def unique_first_appearance(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows in order of first appearance.

    Returns ``first`` (ascending row index of each distinct row's first
    occurrence) and ``inverse`` (for every row, the position of its distinct row
    in ``first``).
    """
    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if keys.shape[1] == 1:
        return _kernels.unique_first_appearance_1key(np.ascontiguousarray(keys[:, 0]))
    order, new = group_sorted(keys)
    group = np.cumsum(new) - 1
    # stable sort: the first element of each group is its earliest row
    first = order[new]
    rank = np.argsort(first, kind="stable")
    pos = np.empty(first.size, dtype=np.int64)
    pos[rank] = np.arange(first.size)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = pos[group]
    return first[rank], inverse


def count_unique_rows(words: np.ndarray) -> int:
    if words.shape[0] == 0:
        return 0
    if words.shape[1] == 1:
        return int(np.unique(words[:, 0]).size)
    _, new = group_sorted(words)
    return int(new.sum())
