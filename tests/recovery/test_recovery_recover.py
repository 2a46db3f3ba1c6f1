"""Configuration recovery and post-selection: by hand, against qiskit-addon-sqd, properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit_addon_sqd.configuration_recovery import recover_configurations as q_recover
from qiskit_addon_sqd.subsampling import postselect_by_hamming_right_and_left as q_postselect

from sqd_suite.recovery import (
    bitstrings_to_strings,
    postselect_by_hamming,
    recover_configurations,
    recover_strings,
)

FAST = settings(max_examples=60, deadline=None, derandomize=True)


def _p01(ratio: float, occ: float, eps: float = 0.01) -> float:
    if occ < ratio:
        return occ * eps / ratio
    if ratio == 1.0:
        return eps
    slope = (1 - eps) / (1 - ratio)
    return occ * slope + (1 - slope)


def ref_correct_half(half: np.ndarray, occ_cols: np.ndarray, target: int, rng) -> np.ndarray:
    """Slow reference: qiskit-addon-sqd's algorithm with our completion where it fails."""
    half = half.copy()
    n = half.size
    n_diff = int(half.sum()) - target
    if n_diff == 0:
        return half
    r = target / n
    probs = np.array(
        [_p01(1 - r, 1 - o) if b else _p01(r, o) for b, o in zip(half, occ_cols)]
    )
    probs = np.minimum(1, np.maximum(0, probs))
    if np.sum(probs) != 0:
        probs /= np.sum(probs)
    k = abs(n_diff)
    cand = np.flatnonzero(half == (n_diff > 0))
    with np.errstate(invalid="ignore"):
        sub = probs[cand] / np.sum(probs[cand])
    pos = sub > 0
    if pos.sum() >= k:
        chosen = rng.choice(cand, size=k, replace=False, p=sub)
    else:
        rest = cand[~pos]
        extra = rng.choice(rest, size=k - pos.sum(), replace=False, p=np.full(rest.size, 1 / rest.size))
        chosen = np.concatenate((cand[pos], extra))
    half[chosen] = ~half[chosen]
    return half


def ref_recover(bm, occ_a, occ_b, na, nb, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    norb = bm.shape[1] // 2
    out = bm.copy()
    for i in range(bm.shape[0]):
        out[i, :norb] = ref_correct_half(bm[i, :norb], occ_b[::-1], nb, rng)
        out[i, norb:] = ref_correct_half(bm[i, norb:], occ_a[::-1], na, rng)
    return out


def test_hand_case_single_candidate() -> None:
    # norb=4, (2, 2); alpha occupies orbitals 0,1,2 but occ_a says 2 is empty:
    # orbitals 0 and 1 (occ 1) have zero flip weight, so orbital 2 is the one to go.
    occ = np.array([1.0, 1.0, 0.0, 0.0])
    bm = np.array([[0, 0, 1, 1, 0, 1, 1, 1]], dtype=bool)
    out, probs = recover_configurations(bm, [1.0], (occ, occ), 2, 2, rand_seed=0)
    np.testing.assert_array_equal(out, [[0, 0, 1, 1, 0, 0, 1, 1]])
    np.testing.assert_array_equal(probs, [1.0])
    # too few beta electrons: only empty orbital 1 has occ 1 -> it gets filled
    bm = np.array([[0, 0, 0, 1, 0, 0, 1, 1]], dtype=bool)
    out, _ = recover_configurations(bm, [1.0], (occ, occ), 2, 2, rand_seed=0)
    np.testing.assert_array_equal(out, [[0, 0, 1, 1, 0, 0, 1, 1]])


def test_valid_rows_are_untouched_and_merged_in_order() -> None:
    bm = np.array(
        [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 1, 0]], dtype=bool
    )  # norb 2, all (1, 1)
    probs = np.array([0.2, 0.5, 0.3])
    out, p = recover_configurations(bm, probs, (np.ones(2), np.ones(2)), 1, 1, rand_seed=1)
    np.testing.assert_array_equal(out, bm)
    np.testing.assert_array_equal(p, probs)
    # two rows that recover to the same bitstring add their probabilities,
    # at the position of the first one
    bm = np.array([[1, 0, 1, 1], [1, 0, 0, 1], [0, 1, 0, 1]], dtype=bool)
    occ_a = np.array([1.0, 0.0])
    out, p = recover_configurations(bm, [0.25, 0.25, 0.5], (occ_a, occ_a), 1, 1, rand_seed=1)
    np.testing.assert_array_equal(out, [[1, 0, 0, 1], [0, 1, 0, 1]])
    np.testing.assert_allclose(p, [0.5, 0.5])


def _random_case(rng: np.random.Generator):
    norb = int(rng.integers(2, 20))
    na = int(rng.integers(0, norb + 1))
    nb = int(rng.integers(0, norb + 1))
    n = int(rng.integers(1, 200))
    bm = np.unique(rng.random((n, 2 * norb)) < rng.random(), axis=0)
    p = rng.random(len(bm))
    p /= p.sum()
    kind = rng.integers(3)
    if kind == 0:
        occ = (rng.random(norb), rng.random(norb))
    elif kind == 1:  # Hartree-Fock
        occ = (np.arange(norb) < na).astype(float), (np.arange(norb) < nb).astype(float)
    else:  # near-converged, values near 0 and 1
        occ = (np.clip(rng.normal(0.5, 0.6, norb), 0, 1), np.clip(rng.normal(0.5, 0.6, norb), 0, 1))
    return bm, p, occ, na, nb


def test_agrees_with_qiskit_bit_for_bit() -> None:
    rng = np.random.default_rng(2024)
    compared = 0
    for trial in range(60):
        bm, p, occ, na, nb = _random_case(rng)
        g_q = np.random.default_rng(trial)
        g_o = np.random.default_rng(trial)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q_bm, q_p = q_recover(bm, p, occ, na, nb, rand_seed=g_q)
        except ValueError:
            continue  # qiskit-addon-sqd fails; see test_completes_where_qiskit_fails
        weights_q = q_bm[:, : bm.shape[1] // 2].sum(1), q_bm[:, bm.shape[1] // 2 :].sum(1)
        if not (np.all(weights_q[0] == nb) and np.all(weights_q[1] == na)):
            continue  # qiskit-addon-sqd left a half uncorrected
        o_bm, o_p = recover_configurations(bm, p, occ, na, nb, rand_seed=g_o)
        np.testing.assert_array_equal(o_bm, q_bm)
        np.testing.assert_array_equal(o_p, q_p)
        assert g_o.random() == g_q.random()  # same number of draws
        compared += 1
    assert compared >= 40


def test_matches_slow_reference_including_completion() -> None:
    rng = np.random.default_rng(7)
    for trial in range(40):
        bm, _, occ, na, nb = _random_case(rng)
        a, b = bitstrings_to_strings(bm)
        norb = bm.shape[1] // 2
        ra, rb = recover_strings(a, b, norb, occ, (na, nb), seed=trial)
        ref = ref_recover(bm, occ[0], occ[1], na, nb, trial)
        ea, eb = bitstrings_to_strings(ref)
        np.testing.assert_array_equal(ra, ea)
        np.testing.assert_array_equal(rb, eb)


def test_completes_where_qiskit_fails() -> None:
    # occupancies of exactly 0/1 summing to 1 alpha electron while nelec says 2:
    # every flip weight of a row like 0001 | 0001 is zero and qiskit-addon-sqd
    # leaves it with one electron per spin
    occ = np.array([1.0, 0.0, 0.0, 0.0])
    bm = np.array([[0, 0, 0, 1, 0, 0, 0, 1]], dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q_bm, _ = q_recover(bm, [1.0], (occ, occ), 2, 2, rand_seed=0)
    assert q_bm[0, 4:].sum() == 1
    out, _ = recover_configurations(bm, [1.0], (occ, occ), 2, 2, rand_seed=0)
    assert out[0, :4].sum() == 2 and out[0, 4:].sum() == 2
    # four electrons to remove, only one with positive weight: qiskit-addon-sqd raises
    occ = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    bm = np.array([[1, 1, 1, 1, 1, 0, 0, 0, 0, 1]], dtype=bool)
    with pytest.raises(ValueError):
        q_recover(bm, [1.0], (occ, occ), 1, 1, rand_seed=0)
    out, _ = recover_configurations(bm, [1.0], (occ, occ), 1, 1, rand_seed=0)
    assert out[0, :5].sum() == 1 and out[0, 5:].sum() == 1
    assert not out[0, 0]  # orbital 4 (occ 0), the one positive-weight candidate, went


def test_completion_is_uniform_over_zero_weight_candidates() -> None:
    # 5 electrons, target 1, all occupancies exactly 1: every flip weight is zero
    occ = np.ones(5)
    bm = np.array([[1, 1, 1, 1, 1, 0, 0, 0, 0, 1]], dtype=bool)
    kept = np.zeros(5)
    n = 4000
    for seed in range(n):
        out, _ = recover_configurations(bm, [1.0], (occ, occ), 1, 1, rand_seed=seed)
        kept += out[0, :5]
    # chi-square against uniform (4 dof, 99.9 % quantile 18.47)
    chi2 = np.sum((kept - n / 5) ** 2 / (n / 5))
    assert chi2 < 18.47


@st.composite
def recovery_inputs(draw):
    norb = draw(st.integers(1, 9))
    na = draw(st.integers(0, norb))
    nb = draw(st.integers(0, norb))
    n = draw(st.integers(1, 12))
    bits = draw(st.lists(st.booleans(), min_size=n * 2 * norb, max_size=n * 2 * norb))
    bm = np.array(bits, dtype=bool).reshape(n, 2 * norb)
    occ_value = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))
    occ_a = np.array(draw(st.lists(occ_value, min_size=norb, max_size=norb)))
    occ_b = np.array(draw(st.lists(occ_value, min_size=norb, max_size=norb)))
    counts = np.array(draw(st.lists(st.integers(1, 100), min_size=n, max_size=n)), dtype=float)
    seed = draw(st.integers(0, 2**32 - 1))
    return bm, counts / counts.sum(), (occ_a, occ_b), na, nb, seed


@FAST
@given(recovery_inputs())
def test_property_right_electron_counts(case) -> None:
    bm, p, occ, na, nb, seed = case
    norb = bm.shape[1] // 2
    out, probs = recover_configurations(bm, p, occ, na, nb, rand_seed=seed)
    assert np.all(out[:, norb:].sum(axis=1) == na)
    assert np.all(out[:, :norb].sum(axis=1) == nb)
    assert len(np.unique(out, axis=0)) == len(out)
    assert np.all(probs >= 0) and abs(probs.sum() - 1) < 1e-12


@FAST
@given(recovery_inputs())
def test_property_nothing_lost_when_all_valid(case) -> None:
    bm, p, occ, _, _, seed = case
    norb = bm.shape[1] // 2
    # relabel the target counts so that the rows with the first row's counts are valid
    na, nb = int(bm[0, norb:].sum()), int(bm[0, :norb].sum())
    keep = (bm[:, norb:].sum(1) == na) & (bm[:, :norb].sum(1) == nb)
    valid, pv = bm[keep], p[keep] / p[keep].sum()
    uniq, first = np.unique(valid, axis=0, return_index=True)
    valid, pv = valid[np.sort(first)], pv[np.sort(first)]
    pv = pv / pv.sum()
    out, probs = recover_configurations(valid, pv, occ, na, nb, rand_seed=seed)
    np.testing.assert_array_equal(out, valid)
    np.testing.assert_allclose(probs, pv, rtol=1e-14)
    post, pp = postselect_by_hamming(bm, p, hamming_right=na, hamming_left=nb)
    assert len(post) == keep.sum()


def test_postselect_matches_qiskit() -> None:
    rng = np.random.default_rng(5)
    bm = rng.random((300, 16)) < 0.4
    p = rng.random(300)
    p /= p.sum()
    q = q_postselect(bm, p.copy(), hamming_right=3, hamming_left=3)
    o = postselect_by_hamming(bm, p, hamming_right=3, hamming_left=3)
    np.testing.assert_array_equal(o[0], q[0])
    np.testing.assert_array_equal(o[1], q[1])


def test_bad_input() -> None:
    bm = np.zeros((2, 8), dtype=bool)
    occ = (np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"avg_occupancies: the alpha occupancies have shape \(3,\)"):
        recover_configurations(bm, [0.5, 0.5], (np.zeros(3), np.zeros(4)), 1, 1)
    with pytest.raises(ValueError, match="impossible with norb=4"):
        recover_configurations(bm, [0.5, 0.5], occ, 5, 1)
    with pytest.raises(ValueError, match="non-negative"):
        recover_configurations(bm, [0.5, 0.5], occ, -1, 1)
    with pytest.raises(ValueError, match=r"probabilities must be a 1-D array with one entry per"):
        recover_configurations(bm, [1.0], occ, 1, 1)
    with pytest.raises(ValueError, match="pair"):
        recover_configurations(bm, [0.5, 0.5], np.zeros(8), 1, 1)
    with pytest.raises(ValueError, match="7 columns"):
        recover_configurations(np.zeros((1, 7), dtype=bool), [1.0], occ, 1, 1)
    out, p = recover_configurations(np.zeros((0, 8), dtype=bool), [], occ, 1, 1)
    assert out.shape == (0, 8) and p.shape == (0,)


def test_multiword_recovery_counts() -> None:
    rng = np.random.default_rng(11)
    norb = 70
    bm = rng.random((50, 140)) < 0.1
    occ = (np.arange(norb) < 6).astype(float) * 0.9 + 0.05
    out, probs = recover_configurations(bm, np.full(50, 0.02), (occ, occ), 6, 6, rand_seed=3)
    assert np.all(out[:, norb:].sum(1) == 6) and np.all(out[:, :norb].sum(1) == 6)
    ref = ref_recover(bm, occ, occ, 6, 6, 3)
    uniq_ref = ref[np.sort(np.unique(ref, axis=0, return_index=True)[1])]
    np.testing.assert_array_equal(out, uniq_ref)


def test_quasi_probabilities_agree_with_qiskit() -> None:
    rng = np.random.default_rng(12)
    bm = np.unique(rng.random((150, 12)) < 0.5, axis=0)
    p = rng.normal(size=len(bm))
    occ = (rng.random(6), rng.random(6))
    q = q_recover(bm, p, occ, 3, 2, rand_seed=4)
    o = recover_configurations(bm, p, occ, 3, 2, rand_seed=4)
    np.testing.assert_array_equal(o[0], q[0])
    np.testing.assert_array_equal(o[1], q[1])
