"""Matrix-free product-space sigma against PySCF (full space and selected CI) and brute-force counts."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from pyscf import ao2mo
from pyscf.fci import direct_spin1, selected_ci

from sqd_suite.diag.hamiltonian import SubspaceHamiltonian, sigma
from sqd_suite.diag.strings import full_strings


def _random_integrals(norb: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random real symmetric h1 and (pq|rs) with 8-fold symmetry."""
    rng = np.random.default_rng(seed)
    h1 = rng.standard_normal((norb, norb))
    h1 = h1 + h1.T
    npair = norb * (norb + 1) // 2
    eri = rng.standard_normal((npair, npair))
    eri = eri + eri.T
    return h1, ao2mo.restore(1, eri, norb)


def _subset(norb: int, nelec: int, frac: float, rng: np.random.Generator) -> np.ndarray:
    full = full_strings(norb, nelec)
    n = max(1, int(round(frac * full.size)))
    return np.sort(rng.choice(full, n, replace=False))


def _pyscf_sci(h1, h2, norb, nelec, sa, sb, c) -> np.ndarray:
    civec = selected_ci._as_SCIvector(np.array(c, copy=True), (sa, sb))
    eri = direct_spin1.absorb_h1e(h1, h2, norb, nelec, 0.5)
    return np.asarray(selected_ci.contract_2e(eri, civec, norb, nelec)).reshape(c.shape)


FULL_CASES = [
    (4, (2, 2)), (5, (3, 1)), (6, (3, 2)), (6, (0, 2)), (6, (2, 0)), (5, (1, 1)), (7, (4, 3)), (6, (6, 1)), (8, (6, 7)),
]  # fmt: skip


@pytest.mark.parametrize(("norb", "nelec"), FULL_CASES)
def test_sigma_full_space_matches_direct_spin1(norb: int, nelec: tuple[int, int]) -> None:
    h1, h2 = _random_integrals(norb, seed=norb)
    sa, sb = full_strings(norb, nelec[0]), full_strings(norb, nelec[1])
    c = np.random.default_rng(1).standard_normal((sa.size, sb.size))
    got = sigma(h1, h2, norb, nelec, sa, sb, c)
    ref = direct_spin1.contract_2e(direct_spin1.absorb_h1e(h1, h2, norb, nelec, 0.5), c, norb, nelec)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb)
    hdiag = direct_spin1.make_hdiag(h1, h2, norb, nelec).reshape(ham.shape)
    np.testing.assert_allclose(ham.diagonal(), hdiag, rtol=0, atol=1e-12 * np.abs(hdiag).max())


SUBSET_CASES = [(8, (3, 3), 0.4), (9, (4, 2), 0.5), (10, (5, 5), 0.3), (8, (1, 3), 0.5), (10, (3, 4), 0.25), (10, (7, 8), 0.5)]


@pytest.mark.parametrize(("norb", "nelec", "frac"), SUBSET_CASES)
@pytest.mark.parametrize("block_size", [1, 5, 32])
def test_sigma_subset_matches_selected_ci(norb: int, nelec: tuple[int, int], frac: float, block_size: int) -> None:
    rng = np.random.default_rng(norb + 100 * nelec[0] + 1000 * nelec[1])
    h1, h2 = _random_integrals(norb, seed=int(rng.integers(1 << 30)))
    sa, sb = _subset(norb, nelec[0], frac, rng), _subset(norb, nelec[1], frac, rng)
    c = rng.standard_normal((sa.size, sb.size))
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb, block_size=block_size)
    got = ham.matvec(c)
    ref = _pyscf_sci(h1, h2, norb, nelec, sa, sb, c)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    hdiag = selected_ci.make_hdiag(h1, h2, (sa, sb), norb, nelec).reshape(ham.shape)
    np.testing.assert_allclose(ham.diagonal(), hdiag, rtol=0, atol=1e-12 * np.abs(hdiag).max())


@pytest.mark.parametrize(
    ("alpha_bounds", "beta_bounds"),
    [([0, 1, 17, 18, 40, None], [0, None]), ([0, None], [0, 3, 20, 21, None]), ([0, 13, 30, None], [0, 0, 9, 25, None])],
)
def test_tiles_assemble_sigma_and_read_only_needed_rows(alpha_bounds: list, beta_bounds: list) -> None:
    # Tiles of (alpha block x beta block), each applied panel by panel, give
    # PySCF's sigma; rows a panel does not list as needed may hold anything.
    norb, nelec = 10, (4, 3)
    rng = np.random.default_rng(7)
    h1, h2 = _random_integrals(norb, seed=8)
    sa, sb = _subset(norb, nelec[0], 0.3, rng), _subset(norb, nelec[1], 0.4, rng)
    ab = np.array([sa.size if x is None else x for x in alpha_bounds])
    bb = np.array([sb.size if x is None else x for x in beta_bounds])
    c = rng.standard_normal((sa.size, sb.size))
    ref = _pyscf_sci(h1, h2, norb, nelec, sa, sb, c)
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb, block_size=8)
    got = np.full_like(c, np.nan)
    diag = np.full_like(c, np.nan)
    work = 0
    for a0, a1 in zip(ab[:-1], ab[1:]):
        for b0, b1 in zip(bb[:-1], bb[1:]):
            part = ham.with_tile((a0, a1), (b0, b1), beta_bounds=bb)
            assert (part.alpha_range, part.beta_range) == ((a0, a1), (b0, b1))
            out = np.empty(part.tile_shape)
            order = [(part.own_panel + s) % (bb.size - 1) for s in range(bb.size - 1)]
            for k in order:
                panel = np.full((sa.size, bb[k + 1] - bb[k]), np.nan)
                needed = part.needed_alpha_rows(k)
                panel[needed] = c[needed, bb[k] : bb[k + 1]]
                part.apply_panel(panel, k, out)
            got[a0:a1, b0:b1] = out
            np.testing.assert_array_equal(part.matvec(c), out)
            diag[a0:a1, b0:b1] = part.diagonal()
            work += part.work_per_sigma()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    hdiag = selected_ci.make_hdiag(h1, h2, (sa, sb), norb, nelec).reshape(ham.shape)
    np.testing.assert_allclose(diag, hdiag, rtol=0, atol=1e-12 * np.abs(hdiag).max())
    assert work == ham.work_per_sigma()
    # Per-row weights (counted from hole strings, no tables) sum to the tables' W over any block.
    w = ham.alpha_weights()
    np.testing.assert_allclose(w.sum(), ham.work_per_sigma())
    np.testing.assert_allclose(w[17:40].sum(), ham.with_tile((17, 40)).work_per_sigma())
    assert ham.with_tile((5, 5)).matvec(c).shape == (0, sb.size)
    assert ham.with_tile(None, (4, 4)).matvec(c).shape == (sa.size, 0)


def test_other_panels_read_only_the_block_and_its_singles() -> None:
    norb, nelec = 9, (3, 2)
    rng = np.random.default_rng(3)
    h1, h2 = _random_integrals(norb, seed=4)
    sa, sb = _subset(norb, nelec[0], 0.5, rng), _subset(norb, nelec[1], 0.5, rng)
    part = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb, alpha_range=(10, 12),
                                              beta_range=(0, 8), beta_bounds=[0, 8, sb.size])  # fmt: skip
    nbits = np.bitwise_count(sa[:, None] ^ sa[None, 10:12])
    np.testing.assert_array_equal(part.needed_alpha_rows(1), np.flatnonzero((nbits <= 2).any(axis=1)))
    np.testing.assert_array_equal(part.needed_alpha_rows(0), np.flatnonzero((nbits <= 4).any(axis=1)))


def test_needed_rows_are_the_row_block_and_its_excitations() -> None:
    norb, nelec = 9, (3, 2)
    rng = np.random.default_rng(3)
    h1, h2 = _random_integrals(norb, seed=4)
    sa, sb = _subset(norb, nelec[0], 0.5, rng), _subset(norb, nelec[1], 0.5, rng)
    part = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb, alpha_range=(10, 12))
    diff = sa[:, None] ^ sa[None, 10:12]
    nbits = np.vectorize(lambda x: bin(int(x)).count("1"))(diff)
    expected = np.flatnonzero((nbits <= 4).any(axis=1))
    np.testing.assert_array_equal(part.needed_alpha_rows(), expected)


def test_work_per_sigma_counts_links() -> None:
    norb, nelec = 8, (3, 3)
    rng = np.random.default_rng(12)
    h1, h2 = _random_integrals(norb, seed=13)
    sa, sb = _subset(norb, nelec[0], 0.5, rng), _subset(norb, nelec[1], 0.6, rng)
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb)

    def counts(strings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nbits = np.vectorize(lambda x: bin(int(x)).count("1"))(strings[:, None] ^ strings[None, :])
        return (nbits == 2).sum(axis=1), (nbits == 4).sum(axis=1)

    s_a, d_a = counts(sa)
    s_b, d_b = counts(sb)
    n_a, n_b = sa.size, sb.size
    expected = s_a.sum() * s_b.sum() + n_b * (s_a + d_a).sum() + n_a * (s_b + d_b).sum()
    assert ham.work_per_sigma() == expected
    assert ham.nbytes() > 0


def test_threads_give_identical_results() -> None:
    norb, nelec = 10, (4, 4)
    rng = np.random.default_rng(21)
    h1, h2 = _random_integrals(norb, seed=22)
    sa, sb = _subset(norb, nelec[0], 0.3, rng), _subset(norb, nelec[1], 0.3, rng)
    c = rng.standard_normal((sa.size, sb.size))
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb, block_size=16)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = ham.matvec(c)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        out = np.empty_like(one)
        many = ham.matvec(c, out=out)
    finally:
        numba.set_num_threads(before)
    assert many is out
    np.testing.assert_allclose(many, one, rtol=0, atol=1e-13 * np.abs(one).max())


def test_hermitian() -> None:
    norb, nelec = 9, (4, 3)
    rng = np.random.default_rng(31)
    h1, h2 = _random_integrals(norb, seed=32)
    sa, sb = _subset(norb, nelec[0], 0.4, rng), _subset(norb, nelec[1], 0.4, rng)
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, sa, sb)
    x, y = rng.standard_normal((2, sa.size, sb.size))
    assert np.vdot(x, ham.matvec(y)) == pytest.approx(np.vdot(ham.matvec(x), y), rel=1e-12)


def test_input_validation() -> None:
    norb, nelec = 5, (2, 2)
    h1, h2 = _random_integrals(norb, seed=1)
    s = full_strings(norb, 2)
    with pytest.raises(ValueError, match="8-fold"):
        bad = h2.copy()
        bad[0, 1, 2, 3] += 1.0
        SubspaceHamiltonian.from_integrals(h1, bad, norb, nelec, s, s)
    with pytest.raises(ValueError, match="alpha_range"):
        SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, s, s, alpha_range=(3, s.size + 1))
    with pytest.raises(ValueError, match="not one of the panels"):
        SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, s, s, beta_range=(0, 3), beta_bounds=[0, 2, s.size])
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, s, s)
    with pytest.raises(ValueError, match="shape"):
        ham.matvec(np.zeros((s.size, s.size + 1)))


@pytest.mark.slow
def test_sigma_larger_subset_matches_selected_ci() -> None:
    norb, nelec = 14, (5, 4)
    rng = np.random.default_rng(41)
    h1, h2 = _random_integrals(norb, seed=42)
    sa, sb = _subset(norb, nelec[0], 0.08, rng), _subset(norb, nelec[1], 0.1, rng)
    c = rng.standard_normal((sa.size, sb.size))
    got = sigma(h1, h2, norb, nelec, sa, sb, c)
    ref = _pyscf_sci(h1, h2, norb, nelec, sa, sb, c)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11 * np.abs(ref).max())


def test_spin_square_tiles_match_pyscf_operator() -> None:
    # S^2 by tiles and panels equals PySCF's S^2 applied on the full space.
    from pyscf.fci import spin_op

    from sqd_suite.diag import SpinSquareOperator
    from sqd_suite.diag.tables import build_singles

    norb, nelec = 6, (3, 2)
    sa, sb = full_strings(norb, nelec[0]), full_strings(norb, nelec[1])
    c = np.random.default_rng(5).standard_normal((sa.size, sb.size))
    ref = spin_op.contract_ss(c, norb, nelec)
    singles = (build_singles(sa, norb, nelec[0]), build_singles(sb, norb, nelec[1]))
    bounds = np.array([0, 4, 11, sb.size])
    got = np.full_like(c, np.nan)
    for a0, a1 in ((0, 7), (7, sa.size)):
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            op = SpinSquareOperator(sa, sb, norb, nelec, *singles, alpha_range=(a0, a1), beta_range=(b0, b1),
                                    beta_bounds=bounds)  # fmt: skip
            got[a0:a1, b0:b1] = op.matvec(c)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
