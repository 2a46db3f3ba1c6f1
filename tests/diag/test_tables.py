"""Excitation tables against a brute-force reference with explicit operators on bit strings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sqd_suite.diag.strings import (
    full_strings,
    occupation_lists,
    occupation_matrix,
    popcount,
    validate_strings,
)
from sqd_suite.diag.tables import build_doubles, build_singles


def _apply(ops: list[tuple[str, int]], string: int) -> tuple[int, int]:
    """Apply operators right to left ('c' create / 'd' destroy); PySCF sign convention. (0, 0) if it vanishes."""
    sign = 1
    for kind, p in reversed(ops):
        occupied = (string >> p) & 1
        if (kind == "c") == bool(occupied):
            return 0, 0
        sign *= (-1) ** bin(string >> (p + 1)).count("1")
        string ^= 1 << p
    return sign, string


def _brute_singles(strings: np.ndarray, norb: int) -> set[tuple[int, int, int, int, int]]:
    index = {int(s): i for i, s in enumerate(strings)}
    links = set()
    for i, s in enumerate(strings):
        for p, q in itertools.permutations(range(norb), 2):
            sign, t = _apply([("c", p), ("d", q)], int(s))
            if sign and t in index:
                links.add((i, index[t], p, q, sign))
    return links


def _brute_doubles(strings: np.ndarray, norb: int, rows: range) -> set[tuple[int, ...]]:
    index = {int(s): i for i, s in enumerate(strings)}
    links = set()
    for i in rows:
        s = int(strings[i])
        for p, r in itertools.combinations(range(norb), 2):
            for q, t_ in itertools.combinations(range(norb), 2):
                if {p, r} & {q, t_}:
                    continue
                sign, t = _apply([("c", p), ("c", r), ("d", t_), ("d", q)], s)
                if sign and t in index:
                    links.add((i, index[t], p, r, q, t_, sign))
    return links


def _subset(norb: int, nelec: int, frac: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    full = full_strings(norb, nelec)
    n = max(1, int(round(frac * full.size)))
    return np.sort(rng.choice(full, n, replace=False))


CASES = [(6, 3, 1.0), (7, 3, 0.5), (8, 4, 0.3), (8, 1, 1.0), (6, 0, 1.0), (7, 2, 0.6), (9, 6, 0.25), (5, 5, 1.0)]


@pytest.mark.parametrize(("norb", "nelec", "frac"), CASES)
def test_singles_match_brute_force(norb: int, nelec: int, frac: float) -> None:
    strings = _subset(norb, nelec, frac, seed=norb * 10 + nelec)
    table = build_singles(strings, norb, nelec)
    src = table.sources()
    got = set(zip(src.tolist(), table.target.tolist(), table.p.tolist(), table.q.tolist(), table.sign.tolist()))
    assert got == _brute_singles(strings, norb)
    assert table.nnz == len(got)
    assert np.all(table.p != table.q)


@pytest.mark.parametrize(("norb", "nelec", "frac"), CASES)
def test_doubles_match_brute_force(norb: int, nelec: int, frac: float) -> None:
    strings = _subset(norb, nelec, frac, seed=norb * 10 + nelec)
    table = build_doubles(strings, norb, nelec)
    rows = np.repeat(np.arange(strings.size), table.counts())
    got = set(
        zip(
            rows.tolist(), table.target.tolist(), table.p.tolist(), table.r.tolist(),
            table.q.tolist(), table.s.tolist(), table.sign.tolist(),
        )
    )  # fmt: skip
    assert got == _brute_doubles(strings, norb, range(strings.size))
    assert table.nnz == len(got)


def test_doubles_row_range_is_a_slice_of_the_full_table() -> None:
    norb, nelec = 9, 4
    strings = _subset(norb, nelec, 0.4, seed=5)
    full = build_doubles(strings, norb, nelec)
    r0, r1 = 7, 31
    part = build_doubles(strings, norb, nelec, row_range=(r0, r1))
    assert part.row_range == (r0, r1)
    lo, hi = full.indptr[r0], full.indptr[r1]
    np.testing.assert_array_equal(part.indptr, full.indptr[r0 : r1 + 1] - lo)
    for name in ("target", "p", "r", "q", "s", "sign"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[lo:hi])


def test_tables_are_symmetric() -> None:
    norb, nelec = 10, 4
    strings = _subset(norb, nelec, 0.2, seed=11)
    s = build_singles(strings, norb, nelec)
    fwd = set(zip(s.sources().tolist(), s.target.tolist(), s.p.tolist(), s.q.tolist(), s.sign.tolist()))
    assert fwd == {(t, i, q, p, sg) for (i, t, p, q, sg) in fwd}
    d = build_doubles(strings, norb, nelec)
    rows = np.repeat(np.arange(strings.size), d.counts())
    pairs = set(zip(rows.tolist(), d.target.tolist()))
    assert pairs == {(t, i) for (i, t) in pairs}


def test_string_helpers() -> None:
    strings = np.array([0b00111, 0b01011, 0b10101], dtype=np.int64)
    np.testing.assert_array_equal(popcount(strings), [3, 3, 3])
    np.testing.assert_array_equal(occupation_lists(strings, 5, 3), [[0, 1, 2], [0, 1, 3], [0, 2, 4]])
    np.testing.assert_array_equal(occupation_matrix(strings, 5)[2], [1, 0, 1, 0, 1])
    assert full_strings(5, 2).size == 10
    with pytest.raises(ValueError, match="sorted"):
        validate_strings(strings[::-1], 5, 3)
    with pytest.raises(ValueError, match="electrons"):
        validate_strings(np.array([0b1, 0b11]), 5, 2)
    with pytest.raises(ValueError, match="outside"):
        validate_strings(np.array([0b111 << 4]), 5, 3)


@pytest.mark.slow
def test_tables_scale_to_ten_thousand_strings() -> None:
    import time

    rng = np.random.default_rng(0)
    norb, nelec = 26, 5
    # Bias toward low orbitals, as sampled strings are: occupied orbitals drawn without
    # replacement with weights exp(-0.2 p) (Gumbel top-k).
    keys = -0.2 * np.arange(norb) + rng.gumbel(size=(300_000, norb))
    occ = np.argpartition(-keys, nelec - 1, axis=1)[:, :nelec].astype(np.int64)
    strings = np.unique(np.sum(np.int64(1) << occ, axis=1))
    assert strings.size >= 10_000
    strings = np.sort(rng.choice(strings, 10_000, replace=False))
    build_singles(strings[:50], norb, nelec)
    build_doubles(strings[:50], norb, nelec)
    t0 = time.perf_counter()
    s = build_singles(strings, norb, nelec)
    d = build_doubles(strings, norb, nelec)
    elapsed = time.perf_counter() - t0
    assert s.nnz > 0 and d.nnz > 0
    assert elapsed < 10.0
