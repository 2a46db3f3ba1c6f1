"""Each numba kernel against a slow, obvious reference."""

from __future__ import annotations

import numpy as np
import pytest

from sqd_suite.recovery import _kernels
from sqd_suite.recovery._stream import run_with_uniforms


def ref_pack_half(bits: np.ndarray, col0: int, norb: int) -> np.ndarray:
    nw = max(1, (norb + 63) // 64)
    out = np.zeros((bits.shape[0], nw), dtype=np.uint64)
    for i in range(bits.shape[0]):
        for p in range(norb):
            if bits[i, col0 + norb - 1 - p]:
                out[i, p // 64] |= np.uint64(1 << (p % 64))
    return out


@pytest.mark.parametrize("norb", [1, 5, 31, 32, 63, 64, 65, 130])
def test_pack_unpack_weights(norb: int) -> None:
    rng = np.random.default_rng(norb)
    bits = rng.random((20, 2 * norb)) < 0.4
    nw = max(1, (norb + 63) // 64)
    alpha = _kernels.pack_half(bits, norb, norb, nw)
    beta = _kernels.pack_half(bits, 0, norb, nw)
    np.testing.assert_array_equal(alpha, ref_pack_half(bits, norb, norb))
    np.testing.assert_array_equal(beta, ref_pack_half(bits, 0, norb))
    out = np.empty_like(bits)
    _kernels.unpack_half(alpha, norb, out, norb)
    _kernels.unpack_half(beta, norb, out, 0)
    np.testing.assert_array_equal(out, bits)
    np.testing.assert_array_equal(_kernels.weights(alpha), bits[:, norb:].sum(axis=1))
    np.testing.assert_array_equal(_kernels.weights(beta), bits[:, :norb].sum(axis=1))


def test_popcount_extremes() -> None:
    for x in [0, 1, 2**63, 2**64 - 1, 0x5555555555555555, 0xF0F0]:
        assert _kernels.popcount64(np.uint64(x)) == bin(x).count("1")


def test_pairwise_sum_is_numpy_sum_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for n in list(range(0, 300)) + [511, 1000, 4097]:
        # wide dynamic range makes any change of summation order visible
        a = rng.random(n) * 10.0 ** rng.integers(-8, 8, n)
        assert _kernels.pairwise_sum(a, 0, n) == np.sum(a), n
    a = rng.random(50)
    assert _kernels.pairwise_sum(a, 7, 20) == np.sum(a[7:27])


def test_choice_without_replacement_is_numpy_choice() -> None:
    rng = np.random.default_rng(1)
    for trial in range(300):
        m = int(rng.integers(1, 60))
        p = rng.random(m) ** int(rng.integers(1, 8))
        p[rng.random(m) < 0.2] = 0.0
        if not np.any(p > 0):
            p[0] = 1.0
        p /= p.sum()
        k = int(rng.integers(1, np.count_nonzero(p > 0) + 1))
        seed = int(rng.integers(2**31))
        expected_rng = np.random.default_rng(seed)
        expected = expected_rng.choice(m, size=k, replace=False, p=p)
        ours_rng = np.random.default_rng(seed)
        found = np.zeros(k, dtype=np.int64)

        def step(u: np.ndarray, start: int) -> tuple[int, int]:
            pos = _kernels.choice_without_replacement(
                p.copy(), m, k, u, 0, found, np.zeros(m), np.zeros(m, dtype=bool)
            )
            return (0, 0) if pos < 0 else (1, pos)

        # a tiny first chunk forces refills mid-draw
        run_with_uniforms(ours_rng, step, 1, 1)
        np.testing.assert_array_equal(found, expected)
        assert ours_rng.random() == expected_rng.random()


def test_subsample_indices_refill_matches_single_pass() -> None:
    rng = np.random.default_rng(2)
    p = rng.random(500) ** 6
    p /= p.sum()
    outs = []
    states = []
    for chunk in (1, 100000):
        g = np.random.default_rng(9)
        out = np.empty((4, 50), dtype=np.int64)

        def step(u: np.ndarray, b0: int, out: np.ndarray = out) -> tuple[int, int]:
            return _kernels.subsample_indices(p, 50, out, u, b0)

        run_with_uniforms(g, step, 4, chunk)
        outs.append(out)
        states.append(g.random())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert states[0] == states[1]
    g = np.random.default_rng(9)
    expected = [g.choice(np.arange(500), 50, replace=False, p=p) for _ in range(4)]
    np.testing.assert_array_equal(outs[0], np.array(expected))


@pytest.mark.parametrize(
    "make", [np.random.PCG64, np.random.MT19937, np.random.Philox, np.random.SFC64]
)
def test_stream_leaves_any_generator_as_numpy_would(make) -> None:
    p = np.random.default_rng(0).random(200) ** 3
    p /= p.sum()
    g_ours = np.random.Generator(make(5))
    g_ref = np.random.Generator(make(5))
    out = np.empty((3, 40), dtype=np.int64)

    def step(u: np.ndarray, b0: int) -> tuple[int, int]:
        return _kernels.subsample_indices(p, 40, out, u, b0)

    used = run_with_uniforms(g_ours, step, 3, 7)
    expected = [g_ref.choice(np.arange(200), 40, replace=False, p=p) for _ in range(3)]
    np.testing.assert_array_equal(out, np.array(expected))
    assert used >= 120
    assert g_ours.random() == g_ref.random()


def test_unique_first_appearance_matches_sorting_reference() -> None:
    from sqd_suite.recovery import _rows

    rng = np.random.default_rng(6)
    for n, hi in [(0, 5), (1, 5), (1000, 50), (5000, 2**63), (3000, 3)]:
        keys = rng.integers(0, hi, n, dtype=np.uint64) if n else np.zeros(0, np.uint64)
        if n > 100:
            keys[::7] = np.uint64(2**64 - 1)  # the all-ones key is a valid key
        first, inverse = _kernels.unique_first_appearance_1key(keys)
        _, ref_first, ref_inv = np.unique(keys, return_index=True, return_inverse=True)
        order = np.argsort(ref_first)
        np.testing.assert_array_equal(first, ref_first[order])
        relabel = np.empty_like(order)
        relabel[order] = np.arange(order.size)
        np.testing.assert_array_equal(inverse, relabel[ref_inv])
        # the multi-column path gives the same answer
        f2, i2 = _rows.unique_first_appearance(np.stack([keys, keys], axis=1))
        np.testing.assert_array_equal(f2, first)
        np.testing.assert_array_equal(i2, inverse)
