"""Exact state-vector sampling and its global depolarizing noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyscf.fci import cistring

from sqd_suite.circuits import LUCJAnsatz
from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import Samples, exact_memory_bytes, sample, uniform_bitstrings


def _ffsim_distribution(ansatz: LUCJAnsatz) -> dict[str, float]:
    """|amplitude|^2 keyed by bitstring text, built independently of the sampler."""
    vec = ansatz.state_vector()
    norb, (na, nb) = ansatz.norb, ansatz.nelec
    strs_a = cistring.make_strings(range(norb), na)
    strs_b = cistring.make_strings(range(norb), nb)
    probs = np.abs(vec.reshape(len(strs_a), len(strs_b))) ** 2
    return {
        format(int(sb), f"0{norb}b") + format(int(sa), f"0{norb}b"): float(probs[i, j])
        for i, sa in enumerate(strs_a)
        for j, sb in enumerate(strs_b)
    }


def _total_variation(samples: Samples, dist: dict[str, float]) -> float:
    emp = {k: c / samples.shots for k, c in samples.to_counts().items()}
    keys = set(emp) | set(dist)
    return 0.5 * sum(abs(emp.get(k, 0.0) - dist.get(k, 0.0)) for k in keys)


@pytest.mark.parametrize("random_params", [False, True])
def test_exact_reproduces_ansatz_probabilities(lih_ansatz, random_params):
    ansatz = lih_ansatz
    if random_params:
        # A spread-out distribution tests more than the Hartree-Fock peak.
        rng = np.random.default_rng(5)
        ansatz = ansatz.with_parameters(ansatz.to_parameters() + rng.uniform(-0.5, 0.5, ansatz.n_params))
    dist = _ffsim_distribution(ansatz)
    shots = 4_000_000
    s = sample(ansatz, shots, SamplerConfig(), seed=11)
    assert s.shots == shots
    assert set(s.to_counts()) <= {k for k, p in dist.items() if p > 0}
    # Expected TV distance at 4e6 shots over 225 outcomes is below 0.004.
    assert _total_variation(s, dist) < 0.01
    assert s.metadata["sampler"] == "exact"


def test_exact_is_seeded(lih_ansatz):
    a = sample(lih_ansatz, 10_000, SamplerConfig(global_depolarizing=0.2), seed=3)
    b = sample(lih_ansatz, 10_000, SamplerConfig(global_depolarizing=0.2), seed=3)
    c = sample(lih_ansatz, 10_000, SamplerConfig(global_depolarizing=0.2), seed=4)
    assert a.to_counts() == b.to_counts() != c.to_counts()


def test_zero_amplitude_ansatz_gives_only_hartree_fock(lih_ansatz):
    zero = lih_ansatz.with_parameters(np.zeros(lih_ansatz.n_params))
    s = sample(zero, 50_000, SamplerConfig(), seed=1)
    norb, (na, nb) = zero.norb, zero.nelec
    hf = "0" * (norb - nb) + "1" * nb + "0" * (norb - na) + "1" * na
    assert s.to_counts() == {hf: 50_000}


def test_depolarizing_fraction_is_statistically_right(lih_ansatz):
    zero = lih_ansatz.with_parameters(np.zeros(lih_ansatz.n_params))
    p, shots, n_bits = 0.3, 1_000_000, zero.n_qubits
    s = sample(zero, shots, SamplerConfig(global_depolarizing=p), seed=7)
    n_uniform = s.metadata["n_depolarized_shots"]
    sd = math.sqrt(shots * p * (1 - p))
    assert abs(n_uniform - shots * p) < 5 * sd
    counts = s.to_counts()
    hf = "000011000011"
    # HF shots: all exact ones plus the uniform ones that happen to hit HF.
    expected_hf = shots * (1 - p) + shots * p / 2**n_bits
    assert abs(counts[hf] - expected_hf) < 5 * sd
    # The uniform part is uniform: each bit is set in about half of the non-HF shots.
    others = Samples.from_counts({k: v for k, v in counts.items() if k != hf}, zero.norb)
    bit_freq = (others.bitstrings * others.counts[:, None]).sum(axis=0) / others.shots
    assert np.all(np.abs(bit_freq - 0.5) < 0.01)
    assert len(counts) > 0.9 * 2**n_bits  # 3e5 uniform shots cover nearly all 4096 strings


def test_uniform_bitstrings_fast_and_wide():
    m, c = uniform_bitstrings(2_000_000, 26, seed=1)  # 52 bits: the uint64 path, no per-shot loop
    assert c.sum() == 2_000_000 and m.shape[1] == 52
    m, c = uniform_bitstrings(1000, 40, seed=1)  # 80 bits: the multi-word path
    assert c.sum() == 1000 and m.shape == (1000, 80)


def test_exact_refuses_state_vectors_above_the_memory_limit(lih_ansatz):
    need = exact_memory_bytes(26, (5, 5))
    assert need > 8e9  # N2/cc-pVDZ-sized active space would not fit the default 8 GB
    with pytest.raises(SQDInputError) as err:
        sample(lih_ansatz, 10, SamplerConfig(max_memory_gb=1e-6), seed=0)
    msg = str(err.value)
    assert "\n" not in msg and "sampler.max_memory_gb" in msg and "GB" in msg and "225 amplitudes" in msg
