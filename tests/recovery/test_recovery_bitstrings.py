"""Bitstrings <-> orbital strings, by hand and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from sqd_suite.recovery import (
    bitstrings_to_strings,
    bitstrings_to_words,
    strings_to_bitstrings,
    words_to_bitstrings,
)


def test_layout_by_hand() -> None:
    # [b2 b1 b0 a2 a1 a0]: beta = orbitals {0, 1}, alpha = orbitals {0, 2}
    bm = np.array([[0, 1, 1, 1, 0, 1], [1, 0, 0, 0, 1, 0]], dtype=bool)
    alpha, beta = bitstrings_to_strings(bm)
    np.testing.assert_array_equal(alpha, [0b101, 0b010])
    np.testing.assert_array_equal(beta, [0b011, 0b100])
    assert alpha.dtype == np.int64
    np.testing.assert_array_equal(strings_to_bitstrings(alpha, beta, 3), bm)


def test_matches_qiskit_integer_convention() -> None:
    from qiskit_addon_sqd.counts import bitstring_matrix_to_integers

    rng = np.random.default_rng(3)
    bm = rng.random((50, 40)) < 0.5
    alpha, beta = bitstrings_to_strings(bm)
    np.testing.assert_array_equal(alpha, bitstring_matrix_to_integers(bm[:, 20:]))
    np.testing.assert_array_equal(beta, bitstring_matrix_to_integers(bm[:, :20]))


def test_64_orbitals_use_the_sign_bit() -> None:
    bm = np.zeros((1, 128), dtype=bool)
    bm[0, 64] = True  # alpha orbital 63
    bm[0, 127] = True  # alpha orbital 0
    alpha, beta = bitstrings_to_strings(bm)
    assert alpha[0] == np.int64(-(2**63) + 1)
    assert beta[0] == 0
    np.testing.assert_array_equal(strings_to_bitstrings(alpha, beta, 64), bm)


def test_multiword_round_trip() -> None:
    rng = np.random.default_rng(4)
    bm = rng.random((30, 2 * 150)) < 0.3
    alpha, beta = bitstrings_to_words(bm)
    assert alpha.shape == (30, 3) and alpha.dtype == np.uint64
    np.testing.assert_array_equal(words_to_bitstrings(alpha, beta, 150), bm)
    # orbital p is bit p % 64 of word p // 64
    p = 100
    col = 150 + 150 - 1 - p
    np.testing.assert_array_equal((alpha[:, 1] >> np.uint64(36)) & np.uint64(1), bm[:, col])


def test_bad_input_messages() -> None:
    with pytest.raises(ValueError, match="int64 string.*limit 64.*bitstrings_to_words"):
        bitstrings_to_strings(np.zeros((1, 130), dtype=bool))
    with pytest.raises(ValueError, match="bitstring_matrix has 5 columns"):
        bitstrings_to_strings(np.zeros((2, 5), dtype=bool))
    with pytest.raises(ValueError, match="2-D"):
        bitstrings_to_strings(np.zeros(6, dtype=bool))
    with pytest.raises(ValueError, match="bools"):
        bitstrings_to_strings(np.full((1, 4), 2))
    with pytest.raises(ValueError, match="norb=3"):
        strings_to_bitstrings(np.array([8]), np.array([1]), 3)
