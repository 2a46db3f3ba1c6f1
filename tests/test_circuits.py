"""The LUCJ ansatz: interaction pairs, parameters, circuit, layout-aware transpilation."""

from __future__ import annotations

import dataclasses
import json

import ffsim
import numpy as np
import pytest
from qiskit_ibm_runtime.fake_provider import FakeSherbrooke

from sqd_suite.circuits import LUCJAnsatz, build_lucj_ansatz, default_interaction_pairs, transpile_ansatz
from sqd_suite.config import CircuitConfig, config_from_dict
from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import ActiveSpaceHamiltonian, build_hamiltonian


@pytest.fixture(scope="module")
def lih() -> ActiveSpaceHamiltonian:
    return build_hamiltonian(config_from_dict({"molecule": {"atom": "Li 0 0 0; H 0 0 1.6", "basis": "sto-3g"}}))


@pytest.fixture(scope="module")
def h3() -> ActiveSpaceHamiltonian:
    """Linear H3 doublet: open shell, nelec (2, 1)."""
    return build_hamiltonian(
        config_from_dict({"molecule": {"atom": "H 0 0 0; H 0 0 0.9; H 0 0 1.8", "basis": "sto-3g", "spin": 1}})
    )


def test_default_pairs_follow_the_layout():
    aa, ab = default_interaction_pairs(9, "heavy-hex")
    assert aa == [(p, p + 1) for p in range(8)] and ab == [(0, 0), (4, 4), (8, 8)]
    assert default_interaction_pairs(3, "square")[1] == [(0, 0), (1, 1), (2, 2)]
    assert default_interaction_pairs(3, "all-to-all") == (None, None)


def test_ansatz_from_ccsd(lih):
    ansatz = build_lucj_ansatz(lih, CircuitConfig(n_reps=2))
    assert ansatz.spin_balanced and ansatz.n_reps == 2 and ansatz.with_final_orbital_rotation
    assert ansatz.interaction_pairs[1] == [(0, 0), (4, 4)]
    # 2 reps x (5 aa + 2 ab + 36 rotation) + 36 final rotation
    assert ansatz.n_params == len(ansatz.to_parameters()) == 2 * (5 + 2 + 36) + 36
    vec = ansatz.state_vector()
    assert abs(np.linalg.norm(vec) - 1) < 1e-12
    # CCSD-initialised LUCJ stays close to Hartree-Fock for LiH.
    assert np.abs(vec[0]) ** 2 > 0.95
    assert not build_lucj_ansatz(lih, CircuitConfig(final_orbital_rotation=False)).with_final_orbital_rotation


def test_parameters_round_trip_through_json(lih):
    ansatz = build_lucj_ansatz(lih)
    params = ansatz.to_parameters()
    structure = json.loads(json.dumps(ansatz.structure()))
    rebuilt = LUCJAnsatz.from_parameters(params, **structure)
    np.testing.assert_allclose(rebuilt.to_parameters(), params, atol=1e-12)
    assert abs(np.vdot(rebuilt.state_vector(), ansatz.state_vector())) == pytest.approx(1.0, abs=1e-10)
    shifted = ansatz.with_parameters(params + 0.1)
    assert abs(np.vdot(shifted.state_vector(), ansatz.state_vector())) < 0.999


def test_circuit_prepares_the_ansatz_state(lih):
    ansatz = build_lucj_ansatz(lih)
    circuit = ansatz.circuit(measure=False)
    assert circuit.num_qubits == 12
    state = ffsim.qiskit.final_state_vector(circuit, norb=ansatz.norb, nelec=ansatz.nelec)
    assert abs(np.vdot(state.vec, ansatz.state_vector())) == pytest.approx(1.0, abs=1e-10)
    measured = ansatz.circuit()
    assert measured.num_clbits == 12


def test_open_shell_uses_spin_unbalanced_ucj(h3):
    assert h3.nelec == (2, 1)
    ansatz = build_lucj_ansatz(h3)
    assert isinstance(ansatz.operator, ffsim.UCJOpSpinUnbalanced) and not ansatz.spin_balanced
    assert len(ansatz.interaction_pairs) == 3
    rebuilt = LUCJAnsatz.from_parameters(ansatz.to_parameters(), **json.loads(json.dumps(ansatz.structure())))
    assert abs(np.vdot(rebuilt.state_vector(), ansatz.state_vector())) == pytest.approx(1.0, abs=1e-10)
    state = ffsim.qiskit.final_state_vector(ansatz.circuit(measure=False), norb=3, nelec=(2, 1))
    assert abs(np.vdot(state.vec, ansatz.state_vector())) == pytest.approx(1.0, abs=1e-10)


def test_missing_amplitudes_is_a_one_line_error(lih):
    with pytest.raises(SQDInputError, match="no CCSD amplitudes"):
        build_lucj_ansatz(dataclasses.replace(lih, t1=None, t2=None))


def test_transpile_on_heavy_hex_needs_no_swaps(lih):
    backend = FakeSherbrooke()
    ansatz = build_lucj_ansatz(lih, backend=backend)
    assert ansatz.backend_name == "fake_sherbrooke" and ansatz.dropped_pairs_ab == ()
    out = transpile_ansatz(ansatz, backend, seed=1)
    stats = out.stats
    assert stats["unhosted_pairs_ab"] == [] and stats["n_logical_qubits"] == 12
    assert len(set(stats["physical_qubits"])) == 12
    assert 0 < stats["two_qubit_depth"] <= stats["depth"]
    assert stats["two_qubit_gates"] == stats["count_ops"]["ecr"]
    # Layout chosen for the pairs: at most 2 ancillas (one per alpha-beta pair), so no SWAP chains.
    assert stats["n_active_qubits"] <= 14
    json.dumps(stats)  # storable in the run record


def test_all_to_all_ansatz_is_routed(lih):
    backend = FakeSherbrooke()
    ansatz = build_lucj_ansatz(lih, CircuitConfig(layout="all-to-all", n_reps=1), backend=backend)
    assert ansatz.interaction_pairs == (None, None)
    routed = transpile_ansatz(ansatz, backend, seed=1).stats
    lucj = transpile_ansatz(build_lucj_ansatz(lih, backend=backend), backend, seed=1).stats
    assert routed["two_qubit_gates"] > lucj["two_qubit_gates"]


def test_error_thresholds_decide_which_pairs_fit(lih):
    from qiskit_ibm_runtime.fake_provider import FakeTorino

    backend = FakeTorino()
    lenient = build_lucj_ansatz(lih, CircuitConfig(readout_error_threshold=1.0), backend=backend)
    assert lenient.interaction_pairs[1] == [(0, 0), (4, 4)] and lenient.dropped_pairs_ab == ()
    assert lenient.structure()["readout_error_threshold"] == 1.0
    # Transpiling reuses the ansatz's thresholds, so the same pairs are hosted.
    assert transpile_ansatz(lenient, backend, seed=3).stats["unhosted_pairs_ab"] == []
    # A threshold that excludes nearly every qubit leaves no layout: a one-line error with the fix.
    with pytest.raises(SQDInputError, match="circuit.readout_error_threshold"):
        build_lucj_ansatz(lih, CircuitConfig(readout_error_threshold=0.001), backend=backend)


def test_exact_sampling_of_an_open_shell_keeps_the_electron_counts(h3):
    from sqd_suite.config import SamplerConfig
    from sqd_suite.sampling import sample

    ansatz = build_lucj_ansatz(h3)
    s = sample(ansatz, 20_000, SamplerConfig(), seed=4)
    alpha, beta = s.alpha_beta_strings()
    assert {bin(int(a)).count("1") for a in alpha} == {2} and {bin(int(b)).count("1") for b in beta} == {1}
    assert s.shots == 20_000
