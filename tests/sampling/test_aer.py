"""Noisy fake-backend simulation through qiskit-ibm-runtime's local testing mode."""

from __future__ import annotations

import pytest

from sqd_suite.circuits import build_lucj_ansatz
from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import fake_backend, sample, target_backend


def test_aer_samples_h2_on_a_fake_device(h2):
    settings = SamplerConfig(kind="aer", backend="FakeManilaV2")
    backend = target_backend(settings)
    ansatz = build_lucj_ansatz(h2, backend=backend)
    s = sample(ansatz, 1000, settings, seed=3, backend=backend)
    again = sample(ansatz, 1000, settings, seed=3, backend=backend)
    assert s.shots == 1000 and s.norb == 2
    assert s.to_counts() == again.to_counts()  # seeded simulator and transpiler
    counts = s.to_counts()
    # The Hartree-Fock string dominates; device noise adds other outcomes.
    assert max(counts, key=counts.get) == "0101" and len(counts) > 1
    stats = s.metadata["transpile_stats"]
    assert s.metadata["sampler"] == "aer" and s.metadata["backend"] == "fake_manila"
    assert stats["unhosted_pairs_ab"] == [] and stats["two_qubit_gates"] > 0


def test_aer_refuses_large_circuits(lih_ansatz):
    with pytest.raises(SQDInputError, match="sampler.max_qubits") as err:
        sample(lih_ansatz, 10, SamplerConfig(kind="aer", max_qubits=8), seed=0)
    assert "12 qubits" in str(err.value)


def test_fake_backend_names():
    assert fake_backend("fake_manila").name == "fake_manila"
    assert fake_backend("FakeManilaV2").name == "fake_manila"
    with pytest.raises(SQDInputError, match="unknown fake backend"):
        fake_backend("FakeNowhere")
