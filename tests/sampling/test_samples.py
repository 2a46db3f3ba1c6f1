"""Samples: aggregation, the bitstring convention, counts and HDF5 round trips."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sqd_suite.sampling import Samples


def test_from_bitstring_matrix_aggregates_and_sorts():
    m = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0]], dtype=bool)
    s = Samples.from_bitstring_matrix(m, 2, metadata={"sampler": "test"})
    assert s.to_counts() == {"0001": 1, "0110": 2, "1000": 1}
    assert list(s.to_counts()) == ["0001", "0110", "1000"]  # sorted as binary numbers
    assert s.shots == 4 and s.n_unique == 3
    np.testing.assert_allclose(s.probabilities, [0.25, 0.5, 0.25])
    assert s.to_shot_matrix().shape == (4, 4)
    assert s.metadata == {"sampler": "test"}


def test_convention_alpha_right_beta_left():
    # alpha occupies orbital 0, beta occupies orbital 1 (norb = 3): "010" + "001".
    s = Samples.from_counts({"010001": 5}, 3)
    alpha, beta = s.alpha_beta_strings()
    assert alpha.tolist() == [0b001] and beta.tolist() == [0b010]
    assert s.bitstrings[0].tolist() == [False, True, False, False, False, True]


def test_counts_round_trip_and_wrong_width():
    rng = np.random.default_rng(3)
    counts = {"".join(rng.choice(["0", "1"], size=10)): int(rng.integers(1, 9)) for _ in range(50)}
    s = Samples.from_counts(counts, 5)
    assert s.to_counts() == counts
    with pytest.raises(ValueError, match="expected 10"):
        Samples.from_counts({"0101": 1}, 5)


def test_wide_bitstrings_use_the_multiword_path():
    rng = np.random.default_rng(4)
    rows = rng.integers(0, 2, size=(30, 80)).astype(bool)
    m = np.concatenate([rows, rows[:10]])
    s = Samples.from_bitstring_matrix(m, 40)
    assert s.n_unique == 30 and s.shots == 40
    assert sorted(s.counts.tolist()) == [1] * 20 + [2] * 10
    # Sorted as binary numbers, the same order text keys sort in.
    keys = list(s.to_counts())
    assert keys == sorted(keys)


def test_merge_adds_counts():
    a = Samples.from_counts({"0011": 2, "0101": 1}, 2)
    b = Samples.from_counts({"0011": 3, "1111": 4}, 2)
    assert a.merge(b).to_counts() == {"0011": 5, "0101": 1, "1111": 4}


@pytest.mark.parametrize("norb", [3, 40])
def test_h5_round_trip(tmp_path, norb):
    rng = np.random.default_rng(norb)
    m = rng.integers(0, 2, size=(2000, 2 * norb)).astype(bool)
    s = Samples.from_bitstring_matrix(m, norb, metadata={"sampler": "exact", "job_ids": ["a", "b"], "x": np.int64(3)})
    with h5py.File(tmp_path / "run.h5", "w") as f:
        s.save_to_h5(f.create_group("samples"))
    with h5py.File(tmp_path / "run.h5", "r") as f:
        r = Samples.from_h5(f["samples"])
    np.testing.assert_array_equal(r.bitstrings, s.bitstrings)
    np.testing.assert_array_equal(r.counts, s.counts)
    assert r.norb == norb and r.metadata == {"sampler": "exact", "job_ids": ["a", "b"], "x": 3}


def test_rejects_inconsistent_shapes():
    with pytest.raises(ValueError, match="shape"):
        Samples(np.zeros((2, 5), dtype=bool), np.ones(2, dtype=np.int64), 3)
    with pytest.raises(ValueError, match="positive"):
        Samples(np.zeros((1, 6), dtype=bool), np.zeros(1, dtype=np.int64), 3)
