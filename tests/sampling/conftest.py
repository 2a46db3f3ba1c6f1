"""Small Hamiltonians and ansatzes shared by the sampler tests (built once per session)."""

from __future__ import annotations

import pytest

from sqd_suite.circuits import LUCJAnsatz, build_lucj_ansatz
from sqd_suite.config import config_from_dict
from sqd_suite.hamiltonian import ActiveSpaceHamiltonian, build_hamiltonian


@pytest.fixture(scope="session")
def lih() -> ActiveSpaceHamiltonian:
    """LiH/STO-3G: 6 orbitals, (2, 2) electrons, 12 qubits."""
    return build_hamiltonian(config_from_dict({"molecule": {"atom": "Li 0 0 0; H 0 0 1.6", "basis": "sto-3g"}}))


@pytest.fixture(scope="session")
def h2() -> ActiveSpaceHamiltonian:
    """H2/STO-3G: 2 orbitals, (1, 1) electrons, 4 qubits."""
    return build_hamiltonian(config_from_dict({"molecule": {"atom": "H 0 0 0; H 0 0 0.74", "basis": "sto-3g"}}))


@pytest.fixture(scope="session")
def lih_ansatz(lih: ActiveSpaceHamiltonian) -> LUCJAnsatz:
    return build_lucj_ansatz(lih)


@pytest.fixture(scope="session")
def h2_ansatz(h2: ActiveSpaceHamiltonian) -> LUCJAnsatz:
    return build_lucj_ansatz(h2)
