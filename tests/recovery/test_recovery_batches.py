"""Subsampling, batch subspaces and distinct counts, against qiskit-addon-sqd 0.14."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from qiskit_addon_sqd.configuration_recovery import recover_configurations as q_recover
from qiskit_addon_sqd.fermion import (
    SCIResult,
    batch_to_ci_strings,
    diagonalize_fermionic_hamiltonian,
)
from qiskit_addon_sqd.subsampling import postselect_by_hamming_right_and_left as q_postselect
from qiskit_addon_sqd.subsampling import subsample as q_subsample

from sqd_suite.recovery import (
    bitstrings_to_strings,
    configuration_batches,
    count_distinct,
    subsample,
)

NORB = 8
NELEC = (3, 3)


def noisy_shots(n_shots: int, noise: float, seed: int) -> np.ndarray:
    """Shots near Hartree-Fock plus a fraction of uniformly random bitstrings."""
    rng = np.random.default_rng(seed)
    hf = np.zeros(2 * NORB, dtype=bool)
    hf[NORB - NELEC[1] : NORB] = True
    hf[2 * NORB - NELEC[0] :] = True
    shots = np.tile(hf, (n_shots, 1))
    # single excitations in each spin on a third of the shots
    for lo in (0, NORB):
        rows = np.flatnonzero(rng.random(n_shots) < 0.3)
        occ_col = lo + NORB - 1 - rng.integers(0, 3, rows.size)
        vir_col = lo + NORB - 1 - rng.integers(3, NORB, rows.size)
        shots[rows, occ_col] = False
        shots[rows, vir_col] = True
    noisy = rng.random(n_shots) < noise
    shots[noisy] = rng.random((noisy.sum(), 2 * NORB)) < 0.5
    return shots


@pytest.fixture(scope="module")
def samples() -> tuple[np.ndarray, np.ndarray]:
    bm, counts = np.unique(noisy_shots(4000, 0.3, 0), axis=0, return_counts=True)
    return bm, counts.astype(np.int64)


OCC = (np.linspace(0.95, 0.02, NORB), np.linspace(0.9, 0.05, NORB))


def qiskit_iteration(bm, counts, occ, carry, symmetrize, spb, nb, rng):
    """One iteration of qiskit-addon-sqd 0.14's loop up to the solver."""
    probs = counts / counts.sum()
    if symmetrize:
        # the loop merges the two spins' carry-over before building subspaces
        merged = np.unique(np.concatenate(carry))
        carry = (merged, merged)
    if occ is None:
        bits, p = q_postselect(bm, probs, hamming_right=NELEC[0], hamming_left=NELEC[1])
    else:
        bits, p = q_recover(bm, probs, occ, *NELEC, rand_seed=rng)
    out = []
    for batch in q_subsample(bits, p, spb, nb, rand_seed=rng):
        a, b = batch_to_ci_strings(batch, NORB, carry[0], carry[1], symmetrize_spin=symmetrize)
        out.append((np.sort(np.unique(a)), np.sort(np.unique(b))))
    return out


@pytest.mark.parametrize("recover", [True, False])
@pytest.mark.parametrize("symmetrize", [False, True])
@pytest.mark.parametrize("spb", [7, 60, 10**6])
def test_batches_equal_qiskit(samples, recover, symmetrize, spb) -> None:
    bm, counts = samples
    carry = (np.array([0b111, 0b1011]), np.array([0b111, 0b11100000]))
    g_q = np.random.default_rng(42)
    g_o = np.random.default_rng(42)
    expected = qiskit_iteration(
        bm, counts, OCC if recover else None, carry, symmetrize, spb, 4, g_q
    )
    ours = configuration_batches(
        bm,
        counts,
        OCC,
        NELEC,
        samples_per_batch=spb,
        num_batches=4,
        carryover=carry,
        symmetrize_spin=symmetrize,
        recover=recover,
        seed=g_o,
    )
    assert len(ours) == 4
    for (ea, eb), (oa, ob) in zip(expected, ours):
        np.testing.assert_array_equal(oa, ea)
        np.testing.assert_array_equal(ob, eb)
        assert oa.dtype == np.int64
    assert g_o.random() == g_q.random()


def test_two_iterations_of_qiskit_loop(samples) -> None:
    """Record what diagonalize_fermionic_hamiltonian hands its solver; rebuild it."""
    bm, counts = samples
    shots = np.repeat(bm, counts, axis=0)
    seen: list[list[tuple[np.ndarray, np.ndarray]]] = []
    carry = (np.array([0b111, 0b1101]), np.array([0b111, 0b1011]))

    def solver(ci_strings, h1, h2, norb, nelec):
        seen.append(ci_strings)
        return [
            SCIResult(
                energy=-1.0 - len(seen) - i,
                sci_state=None,
                orbital_occupancies=OCC,
                carryover=carry,
            )
            for i in range(len(ci_strings))
        ]

    h1 = np.zeros((NORB, NORB))
    h2 = np.zeros((NORB,) * 4)
    hf = ((np.arange(NORB) < 3).astype(float),) * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diagonalize_fermionic_hamiltonian(
            h1, h2, shots, 25, NORB, NELEC, num_batches=3, max_iterations=2,
            sci_solver=solver, seed=123,
        )
    g = np.random.default_rng(123)
    # first iteration: no initial_occupancies -> post-selection only
    first = configuration_batches(
        bm, counts, hf, NELEC, samples_per_batch=25, num_batches=3, recover=False, seed=g
    )
    second = configuration_batches(
        bm, counts, OCC, NELEC, samples_per_batch=25, num_batches=3, carryover=carry, seed=g
    )
    for ours, theirs in ((first, seen[0]), (second, seen[1])):
        for (oa, ob), (ta, tb) in zip(ours, theirs):
            np.testing.assert_array_equal(oa, ta)
            np.testing.assert_array_equal(ob, tb)


def test_row_order_and_duplicates_do_not_matter(samples) -> None:
    bm, counts = samples
    perm = np.random.default_rng(0).permutation(len(bm))
    ref = configuration_batches(bm, counts, OCC, NELEC, samples_per_batch=40, num_batches=3, seed=5)
    shuffled = configuration_batches(
        bm[perm], counts[perm], OCC, NELEC, samples_per_batch=40, num_batches=3, seed=5
    )
    # split every count into two rows
    half = counts // 2
    dup_bm = np.concatenate((bm, bm))
    dup_counts = np.concatenate((counts - half, half))
    dup = configuration_batches(
        dup_bm, dup_counts, OCC, NELEC, samples_per_batch=40, num_batches=3, seed=5
    )
    for (ra, rb), (sa, sb), (da, db) in zip(ref, shuffled, dup):
        np.testing.assert_array_equal(ra, sa)
        np.testing.assert_array_equal(rb, sb)
        np.testing.assert_array_equal(ra, da)
        np.testing.assert_array_equal(rb, db)


def test_batches_hold_carryover_and_right_counts(samples) -> None:
    bm, counts = samples
    carry = (np.array([0b10000011]), np.array([0b1000101]))
    for a, b in configuration_batches(
        bm, counts, OCC, NELEC, samples_per_batch=30, num_batches=5, carryover=carry, seed=1
    ):
        assert set(carry[0]) <= set(a) and set(carry[1]) <= set(b)
        assert np.all(np.diff(a) > 0) and np.all(np.diff(b) > 0)
        assert all(bin(int(s)).count("1") == 3 for s in np.concatenate((a, b)))
        assert len(a) <= 31 and len(b) <= 31
    (a, b), = configuration_batches(
        bm, counts, OCC, NELEC, samples_per_batch=30, num_batches=1, carryover=carry,
        symmetrize_spin=True, seed=1,
    )
    assert a is b and set(carry[0]) | set(carry[1]) <= set(a)


def test_all_valid_rows_kept_when_batch_covers_them() -> None:
    bm = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [0, 1, 0, 1]], dtype=bool)
    (a, b), (a2, b2) = configuration_batches(
        bm, np.array([5, 1, 2]), None, (1, 1), samples_per_batch=10, num_batches=2, seed=0
    )
    np.testing.assert_array_equal(a, [1, 2])
    np.testing.assert_array_equal(b, [1, 2])
    np.testing.assert_array_equal(a2, a)


def test_subsample_matches_qiskit() -> None:
    rng = np.random.default_rng(8)
    bm = rng.random((400, 12)) < 0.5
    p = rng.random(400) ** 4
    p /= p.sum()
    for spb in (1, 50, 399, 400, 1000):
        q = q_subsample(bm, p, spb, 3, rand_seed=17)
        o = subsample(bm, p, spb, 3, rand_seed=17)
        for qb, ob in zip(q, o):
            np.testing.assert_array_equal(ob, qb)


def test_subsample_bad_input() -> None:
    bm = np.zeros((4, 4), dtype=bool)
    with pytest.raises(ValueError, match="sum to"):
        subsample(bm, np.full(4, 0.3), 2, 1)
    with pytest.raises(ValueError, match="samples_per_batch must be a positive integer"):
        subsample(bm, np.full(4, 0.25), 0, 1)
    with pytest.raises(ValueError, match="fewer positive entries"):
        subsample(bm, np.array([1.0, 0, 0, 0]), 2, 1)
    assert [b.shape for b in subsample(np.zeros((0, 4), bool), [], 3, 2)] == [(0, 4)] * 2


def test_configuration_batches_bad_input(samples) -> None:
    bm, counts = samples
    kw = dict(samples_per_batch=5, num_batches=1)
    with pytest.raises(ValueError, match=r"beta occupancies have shape \(7,\)"):
        configuration_batches(bm, counts, (OCC[0], OCC[1][:7]), NELEC, **kw)
    with pytest.raises(ValueError, match=r"nelec=\(9, 3\) is impossible"):
        configuration_batches(bm, counts, OCC, (9, 3), **kw)
    with pytest.raises(ValueError, match="symmetrize_spin"):
        configuration_batches(bm, counts, OCC, (3, 2), symmetrize_spin=True, **kw)
    with pytest.raises(ValueError, match="carryover: beta strings must hold 3"):
        configuration_batches(bm, counts, OCC, NELEC, carryover=([7], [1]), **kw)
    with pytest.raises(ValueError, match="counts must be a 1-D array"):
        configuration_batches(bm, counts[:-1], OCC, NELEC, **kw)
    with pytest.raises(ValueError, match="limit 64"):
        configuration_batches(np.zeros((1, 130), bool), [1], None, (1, 1), **kw)
    with pytest.raises(ValueError, match="total count is zero"):
        configuration_batches(bm, np.zeros_like(counts), OCC, NELEC, **kw)
    with pytest.raises(ValueError, match="total count is zero"):
        configuration_batches(np.zeros((0, 16), bool), [], OCC, NELEC, **kw)
    with pytest.raises(ValueError, match="no row holds nelec"):
        configuration_batches(np.ones((2, 4), bool), [1, 1], None, (1, 1), **kw)


def test_count_distinct_by_hand() -> None:
    # (alpha, beta) rows: (1,1) x3 shots, (2,1), (1,2), (3,1) invalid for (1, 1)
    bm = np.array(
        [[0, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 1], [0, 1, 1, 1]], dtype=bool
    )
    counts = np.array([3, 1, 1, 5])
    c = count_distinct(bm, counts, nelec=(1, 1))
    assert (c.shots, c.bitstrings, c.alpha_strings, c.beta_strings) == (10, 4, 3, 2)
    assert (c.valid_bitstrings, c.valid_alpha_strings, c.valid_beta_strings) == (3, 2, 2)
    assert c.valid_fraction == pytest.approx(0.5)
    assert c.valid_dimension == 4
    assert count_distinct(bm).valid_bitstrings is None


def test_count_distinct_matches_numpy_unique(samples) -> None:
    bm, counts = samples
    a, b = bitstrings_to_strings(bm)
    c = count_distinct(bm, counts, nelec=NELEC)
    assert c.bitstrings == len(np.unique(bm, axis=0))
    assert c.alpha_strings == len(np.unique(a)) and c.beta_strings == len(np.unique(b))
    ok = (bm[:, NORB:].sum(1) == 3) & (bm[:, :NORB].sum(1) == 3)
    assert c.valid_alpha_strings == len(np.unique(a[ok]))
    assert c.valid_fraction == pytest.approx(counts[ok].sum() / counts.sum())


@pytest.mark.parametrize("norb", [40, 64])
def test_wide_orbitals_match_qiskit_and_ignore_row_order(norb: int) -> None:
    rng = np.random.default_rng(norb)
    nelec = (3, 2)
    bm = np.unique(rng.random((300, 2 * norb)) < 4 / norb, axis=0)
    counts = rng.integers(1, 20, len(bm))
    occ = (np.linspace(0.9, 0.01, norb), np.linspace(0.8, 0.02, norb))
    g_q = np.random.default_rng(1)
    bits, p = q_recover(bm, counts / counts.sum(), occ, *nelec, rand_seed=g_q)
    expected = []
    for batch in q_subsample(bits, p, 20, 3, rand_seed=g_q):
        a, b = bitstrings_to_strings(batch)
        expected.append((np.unique(a), np.unique(b)))
    perm = rng.permutation(len(bm))
    for rows in (np.arange(len(bm)), perm):
        ours = configuration_batches(
            bm[rows], counts[rows], occ, nelec, samples_per_batch=20, num_batches=3, seed=1
        )
        for (ea, eb), (oa, ob) in zip(expected, ours):
            np.testing.assert_array_equal(oa, ea)
            np.testing.assert_array_equal(ob, eb)
    # with 64 orbitals, orbital 63 is the int64 sign bit and popcounts still hold
    assert all(
        bin(int(s) & (2**64 - 1)).count("1") == nelec[0] for s in ours[0][0]
    )
