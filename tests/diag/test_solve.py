"""`solve` against PySCF FCI, PySCF selected CI and qiskit-addon-sqd on the same strings."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from pyscf import ao2mo, fci, gto, scf
from pyscf.fci import cistring, selected_ci, spin_op

from sqd_suite.diag import (
    carryover_strings,
    largest_determinants,
    map_ci_vector,
    orbital_occupancies,
    place_determinants,
    solve,
)


def _integrals(atom: str, basis: str, spin: int = 0) -> tuple[np.ndarray, np.ndarray, float, int, tuple[int, int]]:
    mol = gto.M(atom=atom, basis=basis, spin=spin, verbose=0)
    mf = (scf.RHF(mol) if spin == 0 else scf.ROHF(mol)).run()
    c = mf.mo_coeff
    h1 = c.T @ mf.get_hcore() @ c
    h2 = ao2mo.restore(1, ao2mo.kernel(mol, c), mol.nao)
    return h1, h2, mol.energy_nuc(), mol.nao, mol.nelec


@pytest.fixture(scope="module")
def water():
    return _integrals("O 0 0 0; H 0 0.757 0.587; H 0 -0.757 0.587", "sto-3g")


@pytest.fixture(scope="module")
def lih():
    return _integrals("Li 0 0 0; H 0 0 1.6", "sto-3g")


@pytest.fixture(scope="module")
def ch2_triplet():
    return _integrals("C 0 0 0; H 0 0.99 0.6; H 0 -0.99 0.6", "sto-3g", spin=2)


@pytest.fixture(scope="module")
def n2():
    return _integrals("N 0 0 0; N 0 0 1.1", "sto-3g")


def _full_strings(norb: int, nelec: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.asarray(cistring.make_strings(range(norb), nelec[0]), dtype=np.int64),
        np.asarray(cistring.make_strings(range(norb), nelec[1]), dtype=np.int64),
    )


_FCI_CACHE: dict[str, tuple] = {}


def _pyscf_fci(system: str, h1, h2, norb, nelec, ecore):  # noqa: ANN001
    """Lowest three FCI states (energies, vectors), computed once per system."""
    if system not in _FCI_CACHE:
        solver = fci.direct_spin1.FCI()
        solver.conv_tol = 1e-12
        _FCI_CACHE[system] = solver.kernel(h1, h2, norb, nelec, ecore=ecore, nroots=3)
    return _FCI_CACHE[system]


@pytest.mark.parametrize("system", ["water", "lih", "ch2_triplet"])
@pytest.mark.parametrize("dense_threshold", [0, 400])
def test_full_space_matches_fci(system: str, dense_threshold: int, request: pytest.FixtureRequest) -> None:
    h1, h2, ecore, norb, nelec = request.getfixturevalue(system)
    e_all, c_all = _pyscf_fci(system, h1, h2, norb, nelec, ecore)
    e_ref, c_ref = e_all[0], c_all[0]
    alpha, beta = _full_strings(norb, nelec)
    res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-11, dense_threshold=dense_threshold)
    assert res.converged
    assert abs(res.energy - e_ref) < 1e-8
    # Occupancies: diagonal of PySCF's spin 1-RDMs, summing to the electron counts.
    dm_a, dm_b = fci.direct_spin1.make_rdm1s(c_ref, norb, nelec)
    np.testing.assert_allclose(res.occupancies[0], np.diag(dm_a), atol=1e-6)
    np.testing.assert_allclose(res.occupancies[1], np.diag(dm_b), atol=1e-6)
    assert abs(res.occupancies[0].sum() - nelec[0]) < 1e-10
    assert abs(res.occupancies[1].sum() - nelec[1]) < 1e-10
    assert abs(res.spin_square - spin_op.spin_square0(c_ref, norb, nelec)[0]) < 1e-6
    # The vector is normalized and is PySCF's up to sign.
    assert abs(np.vdot(res.ci, res.ci) - 1.0) < 1e-10
    assert abs(abs(np.vdot(res.ci, c_ref)) - 1.0) < 1e-8
    assert set(res.timings) >= {"tables", "sigma", "davidson", "communication", "total"}


def test_singlet_spin_square_is_zero(water) -> None:
    h1, h2, ecore, norb, nelec = water
    alpha, beta = _full_strings(norb, nelec)
    res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-10)
    assert abs(res.spin_square) < 1e-6


def test_triplet_spin_square(ch2_triplet) -> None:
    h1, h2, ecore, norb, nelec = ch2_triplet
    alpha, beta = _full_strings(norb, nelec)
    res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-10, dense_threshold=0)
    assert abs(res.spin_square - 2.0) < 1e-6


def test_three_roots_match_fci(water) -> None:
    h1, h2, ecore, norb, nelec = water
    e_ref, _ = _pyscf_fci("water", h1, h2, norb, nelec, ecore)
    alpha, beta = _full_strings(norb, nelec)
    res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-11, nroots=3, dense_threshold=0)
    assert res.converged
    np.testing.assert_allclose(res.energies, e_ref, atol=1e-8)
    assert res.ci.shape == (3, len(alpha), len(beta))
    overlap = np.einsum("iab,jab->ij", res.ci, res.ci)
    np.testing.assert_allclose(overlap, np.eye(3), atol=1e-8)
    assert res.energy == res.energies[0]


def test_spin_penalty_removes_triplet(water) -> None:
    h1, h2, ecore, norb, nelec = water
    alpha, beta = _full_strings(norb, nelec)
    plain = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-11, nroots=3, dense_threshold=0)
    pen = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-11, nroots=3, dense_threshold=0,
                spin_penalty=1.0)
    assert plain.spin_squares.max() > 1.9  # a triplet is among the lowest three
    np.testing.assert_allclose(pen.spin_squares, 0.0, atol=1e-6)
    singlets = plain.energies[plain.spin_squares < 1e-3]
    # Energies are <H> without the penalty: the singlets are unchanged.
    np.testing.assert_allclose(pen.energies[: len(singlets)], singlets, atol=1e-8)


def test_quadratic_penalty_targets_triplet(water) -> None:
    # spin_target above Sz(Sz+1) = 0 selects lambda (S^2 - t)^2: the lowest
    # triplet (Ms = 0 component) becomes the ground state of the shifted H.
    h1, h2, ecore, norb, nelec = water
    e_ref, c_ref = _pyscf_fci("water", h1, h2, norb, nelec, ecore)
    s2_ref = np.array([spin_op.spin_square0(c, norb, nelec)[0] for c in c_ref])
    alpha, beta = _full_strings(norb, nelec)
    res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-11, dense_threshold=0,
                spin_penalty=1.0, spin_target=2.0)
    assert abs(res.spin_square - 2.0) < 1e-6
    assert abs(res.energy - e_ref[np.argmax(s2_ref > 1.5)]) < 1e-8


def _random_subset(strings: np.ndarray, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Keep the lowest (HF) string so the subspace holds the reference.
    pick = rng.choice(np.arange(1, len(strings)), size=k - 1, replace=False)
    return np.sort(np.concatenate([strings[:1], strings[pick]]))


def test_subset_matches_pyscf_selected_ci(n2) -> None:
    h1, h2, ecore, norb, nelec = n2
    full_a, full_b = _full_strings(norb, nelec)
    alpha = _random_subset(full_a, 40, seed=1)
    beta = _random_subset(full_b, 35, seed=2)
    myci = selected_ci.SelectedCI()
    myci.conv_tol = 1e-13
    e_ref, c_ref = selected_ci.kernel_fixed_space(myci, h1, h2, norb, nelec, (alpha, beta), ecore=ecore)
    res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-11)
    assert res.dimension == 40 * 35
    assert abs(res.energy - e_ref) < 1e-8
    dm_a, dm_b = myci.make_rdm1s(c_ref, norb, nelec)
    np.testing.assert_allclose(res.occupancies[0], np.diag(dm_a), atol=1e-6)
    np.testing.assert_allclose(res.occupancies[1], np.diag(dm_b), atol=1e-6)


def test_subset_matches_qiskit_addon_sqd(n2) -> None:
    from qiskit_addon_sqd.fermion import solve_sci_batch

    h1, h2, ecore, norb, nelec = n2
    full_a, full_b = _full_strings(norb, nelec)
    batches = [(_random_subset(full_a, 30, seed=s), _random_subset(full_b, 30, seed=s + 10)) for s in (3, 4)]
    ref = solve_sci_batch(batches, h1, h2, norb, nelec, tol=1e-12)
    for (alpha, beta), r in zip(batches, ref, strict=True):
        res = solve(h1, h2, norb, nelec, alpha, beta, tol=1e-11)
        assert abs(res.energy - r.energy) < 1e-7
        np.testing.assert_allclose(res.occupancies[0], r.orbital_occupancies[0], atol=1e-6)


def test_warm_start_from_loose_solution(n2) -> None:
    # The loop pattern: loose inner solves, then a tight one from the loose vector.
    h1, h2, ecore, norb, nelec = n2
    full_a, full_b = _full_strings(norb, nelec)
    alpha = _random_subset(full_a, 40, seed=5)
    beta = _random_subset(full_b, 40, seed=6)
    loose = solve(h1, h2, norb, nelec, alpha, beta, tol=1e-5)
    cold = solve(h1, h2, norb, nelec, alpha, beta, tol=1e-11)
    warm = solve(h1, h2, norb, nelec, alpha, beta, tol=1e-11, ci0=loose.ci)
    assert loose.n_iter < cold.n_iter
    assert abs(warm.energy - cold.energy) < 1e-9
    assert warm.n_iter < cold.n_iter
    # ... and from its largest determinants only (what distributed loops keep).
    sparse = solve(h1, h2, norb, nelec, alpha, beta, tol=1e-11, ci0=largest_determinants(loose.ci, alpha, beta, 300))
    assert abs(sparse.energy - cold.energy) < 1e-9
    assert sparse.n_iter < cold.n_iter


def test_warm_start_from_mapped_vector(n2) -> None:
    h1, h2, ecore, norb, nelec = n2
    full_a, full_b = _full_strings(norb, nelec)
    small_a = _random_subset(full_a, 40, seed=5)
    small_b = _random_subset(full_b, 40, seed=6)
    # The next iteration's strings: the old ones plus a few new ones.
    big_a = np.union1d(small_a, _random_subset(full_a, 3, seed=7))
    big_b = np.union1d(small_b, _random_subset(full_b, 3, seed=8))
    old = solve(h1, h2, norb, nelec, small_a, small_b, tol=1e-10)
    ci0 = map_ci_vector(old.ci, small_a, small_b, big_a, big_b)
    assert ci0.shape == (len(big_a), len(big_b))
    assert abs(np.vdot(ci0, ci0) - 1.0) < 1e-12  # a superset keeps every coefficient
    cold = solve(h1, h2, norb, nelec, big_a, big_b, tol=1e-10)
    warm = solve(h1, h2, norb, nelec, big_a, big_b, tol=1e-10, ci0=ci0)
    assert abs(warm.energy - cold.energy) < 1e-9
    assert warm.energy <= old.energy + 1e-12
    assert warm.n_iter <= cold.n_iter
    # The sparse form: the old state's largest determinants, placed by solve itself.
    dets = largest_determinants(old.ci, small_a, small_b, 200)
    placed = place_determinants(dets, small_a, small_b)
    kept = placed != 0
    assert kept.sum() == 200 and np.array_equal(placed[kept], old.ci[kept])
    assert np.abs(old.ci[~kept]).max() <= np.abs(old.ci[kept]).min()
    sparse = solve(h1, h2, norb, nelec, big_a, big_b, tol=1e-10, ci0=dets)
    assert abs(sparse.energy - cold.energy) < 1e-9
    assert sparse.n_iter <= cold.n_iter
    tile = place_determinants(dets, big_a, big_b, alpha_range=(3, 20), beta_range=(5, 9))
    np.testing.assert_array_equal(tile, place_determinants(dets, big_a, big_b)[3:20, 5:9])


def test_map_ci_vector_keeps_common_determinants() -> None:
    old_a = np.array([0b0011, 0b0101, 0b0110], dtype=np.int64)
    old_b = np.array([0b0011, 0b1001], dtype=np.int64)
    new_a = np.array([0b0011, 0b1010, 0b0110], dtype=np.int64)
    new_b = np.array([0b0011, 0b0101, 0b1001], dtype=np.int64)
    ci = np.arange(6.0).reshape(3, 2) + 1
    out = map_ci_vector(ci, old_a, old_b, new_a, new_b)
    expected = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [5.0, 0.0, 6.0]])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(map_ci_vector(ci, old_a, old_b, new_a, new_b, alpha_range=(1, 3)), expected[1:])
    tile = map_ci_vector(ci, old_a, old_b, new_a, new_b, alpha_range=(0, 2), beta_range=(1, 3))
    np.testing.assert_array_equal(tile, expected[0:2, 1:3])


def test_largest_determinants_and_carryover(water) -> None:
    h1, h2, ecore, norb, nelec = water
    alpha, beta = _full_strings(norb, nelec)
    res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=1e-10)
    sa, sb, coef = largest_determinants(res.ci, alpha, beta, 3)
    # Hartree-Fock dominates the ground state.
    assert sa[0] == alpha[0] and sb[0] == beta[0] and coef[0] > 0.9
    assert np.all(np.diff(np.abs(coef)) <= 0)
    ca, cb = carryover_strings(res.ci, alpha, beta, threshold=1e-2)
    assert ca[0] == alpha[0] and cb[0] == beta[0]
    kept = np.abs(res.ci) > 1e-2
    assert set(ca) == set(alpha[kept.any(axis=1)])
    occ_a, occ_b = orbital_occupancies(2.0 * res.ci, alpha, beta, norb)
    np.testing.assert_allclose(occ_a, res.occupancies[0], atol=1e-12)


def test_single_determinant_subspace(water) -> None:
    h1, h2, ecore, norb, nelec = water
    alpha, beta = _full_strings(norb, nelec)
    res = solve(h1, h2, norb, nelec, alpha[:1], beta[:1], ecore=ecore)
    e_hf = scf.RHF(gto.M(atom="O 0 0 0; H 0 0.757 0.587; H 0 -0.757 0.587", basis="sto-3g", verbose=0)).kernel()
    assert abs(res.energy - e_hf) < 1e-8
    assert res.ci.shape == (1, 1) and res.ci[0, 0] == 1.0


def test_rejects_bad_strings(water) -> None:
    h1, h2, ecore, norb, nelec = water
    alpha, beta = _full_strings(norb, nelec)
    with pytest.raises(ValueError, match="sorted"):
        solve(h1, h2, norb, nelec, alpha[::-1], beta)
    with pytest.raises(ValueError, match="electrons"):
        solve(h1, h2, norb, nelec, alpha, np.array([0b111], dtype=np.int64))


@pytest.mark.slow  # three SQD loops, JAX start-up: ~10 s on an idle machine
def test_sci_solver_in_qiskit_addon_sqd_loop(n2) -> None:
    from qiskit_addon_sqd.fermion import diagonalize_fermionic_hamiltonian

    from sqd_suite.diag import SCISolver, sci_solver

    h1, h2, ecore, norb, nelec = n2
    rng = np.random.default_rng(11)
    # Noisy samples around the Hartree-Fock state; beta half on the left.
    p_occ = np.r_[np.full(norb - nelec[1], 0.15), np.full(nelec[1], 0.9), np.full(norb - nelec[0], 0.15),
                  np.full(nelec[0], 0.9)]
    bits = rng.random((2000, 2 * norb)) < p_occ
    common = dict(samples_per_batch=40, norb=norb, nelec=nelec, num_batches=2, max_iterations=2, seed=5)
    ref = diagonalize_fermionic_hamiltonian(h1, h2, bits, **common)
    ours = diagonalize_fermionic_hamiltonian(h1, h2, bits, sci_solver=functools.partial(sci_solver, tol=1e-11),
                                             **common)
    warm = diagonalize_fermionic_hamiltonian(h1, h2, bits, sci_solver=SCISolver(tol=1e-11), **common)
    for res in (ours, warm):
        assert abs(res.energy - ref.energy) < 1e-7
        assert res.sci_state.amplitudes.shape == ref.sci_state.amplitudes.shape
        np.testing.assert_array_equal(res.sci_state.ci_strs_a, ref.sci_state.ci_strs_a)
        np.testing.assert_allclose(res.orbital_occupancies[0], ref.orbital_occupancies[0], atol=1e-6)
        np.testing.assert_allclose(res.orbital_occupancies[1], ref.orbital_occupancies[1], atol=1e-6)


def test_sci_solver_spin_sq_like_solve_sci_batch(ch2_triplet) -> None:
    from qiskit_addon_sqd.fermion import solve_sci_batch

    from sqd_suite.diag import sci_solver

    h1, h2, ecore, norb, nelec = ch2_triplet
    alpha, beta = _full_strings(norb, nelec)
    batch = [(alpha[:15], beta[:30])]
    for spin_sq in (None, 2.0):
        ref = solve_sci_batch(batch, h1, h2, norb, nelec, spin_sq=spin_sq, tol=1e-12)[0]
        ours = sci_solver(batch, h1, h2, norb, nelec, spin_sq=spin_sq, tol=1e-11)[0]
        assert abs(ours.energy - ref.energy) < 1e-7
        assert abs(ours.sci_state.spin_square() - ref.sci_state.spin_square()) < 1e-6
