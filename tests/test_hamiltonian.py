"""Hamiltonian builder against PySCF: CASCI from our integrals equals PySCF's CASCI."""

import numpy as np
import pytest
from pyscf import fci, gto, mcscf, scf

from sqd_suite.config import config_from_dict
from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import (
    build_hamiltonian,
    canonical_orbitals,
    hamiltonian_from_fcidump,
    hamiltonian_from_integrals,
)

H2O = "O 0 0 0; H 0 0.757 0.587; H 0 -0.757 0.587"


def _pyscf_casci(atom, basis, ncas, nelecas, spin=0, ncore=None):
    mol = gto.M(atom=atom, basis=basis, spin=spin, verbose=0)
    mf = (scf.RHF(mol) if spin == 0 else scf.ROHF(mol)).run(conv_tol=1e-11)
    mc = mcscf.CASCI(mf, ncas, nelecas, ncore=ncore)
    mc.fcisolver.conv_tol = 1e-12
    return mc.kernel()[0], mf.e_tot


@pytest.fixture(scope="module")
def h2o():
    cfg = config_from_dict({"molecule": {"atom": H2O, "basis": "6-31g"}, "active_space": {"frozen_core": 1, "norb": 8}})
    return build_hamiltonian(cfg)


def test_casci_equals_pyscf(h2o):
    e_ref, e_hf = _pyscf_casci(H2O, "6-31g", 8, (4, 4))
    assert h2o.norb == 8 and h2o.nelec == (4, 4)
    assert h2o.exact_method == "CASCI"
    assert abs(h2o.e_exact - e_ref) < 1e-8
    assert abs(h2o.e_hf - e_hf) < 1e-9
    # The HF determinant energy from our integrals is the SCF energy.
    from sqd_suite.hamiltonian import _determinant_energy

    assert abs(_determinant_energy(h2o.h1, h2o.h2, h2o.nelec, h2o.ecore) - e_hf) < 1e-8


def test_integral_symmetries(h2o):
    h1, h2 = h2o.h1, h2o.h2
    assert np.allclose(h1, h1.T)
    assert np.allclose(h2, h2.transpose(1, 0, 2, 3))
    assert np.allclose(h2, h2.transpose(2, 3, 0, 1))


def test_ccsd_amplitudes_and_occupancies(h2o):
    nocc, nvir = 4, 4
    assert h2o.t1.shape == (nocc, nvir)
    assert h2o.t2.shape == (nocc, nocc, nvir, nvir)
    assert h2o.e_exact < h2o.e_ccsd < h2o.e_hf
    for occ in (h2o.occupancies_mp2, h2o.occupancies_ccsd, h2o.hf_occupancies()):
        assert np.allclose([occ[0].sum(), occ[1].sum()], [4, 4])


def test_open_shell_and_full_space_is_fci():
    atom = "O 0 0 0; H 0 0 0.97"
    cfg = config_from_dict({"molecule": {"atom": atom, "basis": "sto-3g", "spin": 1}})
    ham = build_hamiltonian(cfg)
    assert ham.nelec == (5, 4) and ham.exact_method == "FCI"
    mol = gto.M(atom=atom, basis="sto-3g", spin=1, verbose=0)
    mf = scf.ROHF(mol).run(conv_tol=1e-11)
    e_fci = fci.FCI(mf).run(conv_tol=1e-12).e_tot
    assert abs(ham.e_exact - e_fci) < 1e-8
    assert len(ham.t2) == 3  # UCCSD (aa, ab, bb)


def test_explicit_orbital_list_matches_casci():
    cfg = config_from_dict({"molecule": {"atom": H2O, "basis": "sto-3g"}, "active_space": {"orbitals": [1, 2, 3, 4, 5, 6]}})
    ham = build_hamiltonian(cfg, compute_ccsd=False)
    e_ref, _ = _pyscf_casci(H2O, "sto-3g", 6, (4, 4))
    assert abs(ham.e_exact - e_ref) < 1e-8


def test_fcidump_round_trip(h2o, tmp_path):
    path = tmp_path / "h2o.fcidump"
    h2o.to_fcidump(path)
    as_is = hamiltonian_from_fcidump(path, orbitals="as_is", compute_ccsd=False)
    assert np.allclose(as_is.h1, h2o.h1, atol=1e-14) and np.allclose(as_is.h2, h2o.h2, atol=1e-14)
    assert as_is.ecore == pytest.approx(h2o.ecore, abs=1e-13)
    assert abs(as_is.e_exact - h2o.e_exact) < 1e-9
    scf_basis = hamiltonian_from_fcidump(path)
    # Orbitals rotated to SCF: same spectrum, same HF and CCSD energies.
    assert abs(scf_basis.e_exact - h2o.e_exact) < 1e-9
    assert abs(scf_basis.e_hf - h2o.e_hf) < 1e-8
    assert abs(scf_basis.e_ccsd - h2o.e_ccsd) < 1e-6


def test_wrapping_integrals_gives_determinant_energy():
    rng = np.random.default_rng(0)
    norb = 4
    h1 = rng.standard_normal((norb, norb))
    h1 = h1 + h1.T
    ham = hamiltonian_from_integrals(h1, np.zeros((norb,) * 4), norb, (2, 1), ecore=0.5)
    assert ham.e_hf == pytest.approx(np.trace(h1[:2, :2]) + h1[0, 0] + 0.5)
    assert ham.e_exact <= ham.e_hf + 1e-12


@pytest.mark.parametrize(
    ("molecule", "active", "field"),
    [
        ({"atom": "N 0 0 0; N 0 0 1.1", "basis": "no-such-basis"}, {}, "molecule.basis"),
        ({"atom": "H 0 0 0; H 0 0 0.74", "spin": 1}, {}, "molecule.spin"),
        ({"atom": "N 0 0 0; N 0 0 1.1", "basis": "sto-3g"}, {"frozen_core": 2, "norb": 40}, "active_space.norb"),
        ({"atom": "N 0 0 0; N 0 0 1.1", "basis": "sto-3g"}, {"frozen_core": 9}, "active_space.frozen_core"),
        ({"atom": "N 0 0 0; N 0 0 1.1", "basis": "sto-3g"}, {"frozen_core": 2, "norb": 4}, "active_space.norb"),
        ({"atom": "N 0 0 0; N 0 0 1.1", "basis": "sto-3g"}, {"orbitals": [2, 3, 99]}, "active_space.orbitals"),
        ({"atom": "N 0 0 0; N 0 0 1.1", "basis": "sto-3g"}, {"nelec": [3, 2]}, "active_space.nelec"),
    ],
)
def test_impossible_inputs_name_the_field(molecule, active, field):
    cfg = config_from_dict({"molecule": molecule, "active_space": active})
    with pytest.raises(SQDInputError) as info:
        build_hamiltonian(cfg, compute_ccsd=False)
    assert field in str(info.value) and "fix:" in str(info.value)


def test_norb_error_names_molecule_and_count():
    cfg = config_from_dict(
        {"molecule": {"atom": "N 0 0 0; N 0 0 1.1", "basis": "cc-pvdz"}, "active_space": {"frozen_core": 2, "norb": 40}}
    )
    with pytest.raises(SQDInputError, match=r"active_space.norb: 40 exceeds the 26 orbitals of N2/cc-pvdz"):
        build_hamiltonian(cfg, compute_ccsd=False)


def test_corrupt_fcidump(tmp_path):
    path = tmp_path / "bad.fcidump"
    path.write_text("this is not an FCIDUMP\n")
    with pytest.raises(SQDInputError, match="active_space.fcidump"):
        hamiltonian_from_fcidump(path)


def test_canonical_orbitals_fix_the_gauge_of_degenerate_shells():
    # Any rotation inside N2's degenerate pi pairs, and any signs, give the same orbitals back.
    mol = gto.M(atom="N 0 0 0; N 0 0 1.1", basis="6-31g", verbose=0)
    mf = scf.RHF(mol).run(conv_tol=1e-11)
    c, e, occ = mf.mo_coeff, mf.mo_energy, mf.mo_occ
    ref = canonical_orbitals(c, e, occ)
    pairs = [i for i in range(len(e) - 1) if abs(e[i + 1] - e[i]) < 1e-6]
    assert len(pairs) >= 2  # pi_u and pi_g* at least
    rng = np.random.default_rng(0)
    mixed = c * rng.choice([-1.0, 1.0], size=len(e))
    for i in pairs:
        t = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        mixed[:, i : i + 2] = mixed[:, i : i + 2] @ rot
    np.testing.assert_allclose(canonical_orbitals(mixed, e, occ), ref, atol=1e-9)
    # Still canonical HF orbitals: the Fock matrix stays diagonal with the same energies.
    fock = ref.T @ mf.get_fock() @ ref
    np.testing.assert_allclose(fock, np.diag(e), atol=1e-7)


@pytest.mark.slow  # two fresh processes
def test_two_processes_build_the_same_n2_hamiltonian_and_circuit(tmp_path):
    # N2's pi pairs come out of SCF rotated differently in each process, and
    # the LUCJ factorization of t2 amplifies round-off in its degenerate
    # eigenspaces; the fixed gauge and one PySCF thread make runs of one YAML
    # reproducible bit for bit (not just their FCI).
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    code = (
        "import sys, numpy as np\n"
        "from sqd_suite.config import load_config\n"
        "from sqd_suite.hamiltonian import build_hamiltonian\n"
        "from sqd_suite.circuits import build_lucj_ansatz\n"
        "cfg = load_config(sys.argv[1])\n"
        "h = build_hamiltonian(cfg)\n"
        "np.savez(sys.argv[2], h1=h.h1, h2=h.h2, t2=h.t2, lucj=build_lucj_ansatz(h, cfg.circuit).to_parameters())\n"
    )
    for i in range(2):
        subprocess.run([sys.executable, "-c", code, str(repo / "molecules" / "n2_631g.yaml"), str(tmp_path / f"{i}.npz")],
                       check=True, timeout=300)
    a, b = np.load(tmp_path / "0.npz"), np.load(tmp_path / "1.npz")
    for key in ("h1", "h2", "t2", "lucj"):
        np.testing.assert_array_equal(a[key], b[key])
