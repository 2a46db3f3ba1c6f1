"""The active-space Hamiltonian: PySCF SCF, active space, integrals, CCSD, FCIDUMP.

:func:`build_hamiltonian` turns a :class:`~sqd_suite.config.RunConfig` into an
:class:`ActiveSpaceHamiltonian` (plain arrays plus reference energies); the
FCIDUMP helpers read and write the same object so external Hamiltonians and
other solvers interoperate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sqd_suite.config import RunConfig
from sqd_suite.errors import SQDInputError

__all__ = [
    "ActiveSpaceHamiltonian",
    "build_hamiltonian",
    "canonical_orbitals",
    "exact_energy",
    "hamiltonian_from_fcidump",
    "hamiltonian_from_integrals",
]


@dataclass(frozen=True)
class ActiveSpaceHamiltonian:
    """A Hamiltonian on an active space, with the references SQD is judged by.

    ``h2`` is the full 4-index tensor ``(pq|rs)`` in chemists' notation. For a
    closed shell, ``t1`` (nocc, nvir) and ``t2`` (nocc, nocc, nvir, nvir) are the
    RCCSD amplitudes; for an open shell they are the UCCSD tuples
    ``(t1a, t1b)`` and ``(t2aa, t2ab, t2bb)``.
    """

    h1: np.ndarray
    h2: np.ndarray
    ecore: float
    norb: int
    nelec: tuple[int, int]
    e_hf: float
    e_ccsd: float | None = None
    e_exact: float | None = None
    exact_method: str | None = None
    t1: Any = None
    t2: Any = None
    mo_coeff: np.ndarray | None = None
    ccsd_converged: bool | None = None
    occupancies_mp2: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    occupancies_ccsd: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    label: str = ""

    @property
    def n_qubits(self) -> int:
        return 2 * self.norb

    @property
    def is_closed_shell(self) -> bool:
        return self.nelec[0] == self.nelec[1]

    @property
    def fci_dimension(self) -> int:
        """Determinants in the full product space of the active space."""
        return math.comb(self.norb, self.nelec[0]) * math.comb(self.norb, self.nelec[1])

    def hf_occupancies(self) -> tuple[np.ndarray, np.ndarray]:
        """Aufbau occupancies of the reference determinant, per spin."""
        occ_a = np.zeros(self.norb)
        occ_b = np.zeros(self.norb)
        occ_a[: self.nelec[0]] = 1.0
        occ_b[: self.nelec[1]] = 1.0
        return occ_a, occ_b

    def initial_occupancies(self, kind: str = "hf") -> tuple[np.ndarray, np.ndarray]:
        """Occupancies that start configuration recovery: 'hf', 'mp2' or 'ccsd'."""
        if kind == "hf":
            return self.hf_occupancies()
        occ = {"mp2": self.occupancies_mp2, "ccsd": self.occupancies_ccsd}[kind]
        if occ is None:
            raise SQDInputError(
                "sqd.initial_occupancies",
                f"{kind.upper()} occupancies are not available for {self.label or 'this Hamiltonian'}",
                fix="use 'hf'",
            )
        return occ

    def to_fcidump(self, path: str | Path) -> None:
        """Write the integrals as an FCIDUMP (full double precision)."""
        from pyscf.tools import fcidump

        fcidump.from_integrals(
            str(path),
            self.h1,
            self.h2,
            self.norb,
            sum(self.nelec),
            nuc=self.ecore,
            ms=self.nelec[0] - self.nelec[1],
            tol=1e-15,
            float_format=" %.17g",
        )

    def summary(self) -> dict[str, Any]:
        """Scalars for tables and run files."""
        return {
            "label": self.label,
            "norb": self.norb,
            "nelec_alpha": self.nelec[0],
            "nelec_beta": self.nelec[1],
            "n_qubits": self.n_qubits,
            "fci_dimension": self.fci_dimension,
            "ecore": self.ecore,
            "e_hf": self.e_hf,
            "e_ccsd": self.e_ccsd,
            "e_exact": self.e_exact,
            "exact_method": self.exact_method,
        }


def exact_energy(h1: np.ndarray, h2: np.ndarray, norb: int, nelec: tuple[int, int], ecore: float = 0.0) -> float:
    """Lowest eigenvalue of the full active-space Hamiltonian (PySCF FCI/CASCI).

    No spin constraint: this is the same operator SQD projects, so SQD energies
    are bounded below by it.
    """
    from pyscf import fci

    solver = fci.direct_spin1.FCI()
    solver.conv_tol = 1e-11
    solver.max_cycle = 200
    e, _ = solver.kernel(h1, h2, norb, nelec, ecore=ecore)
    return float(e)


def _occupancies_from_rdm1(rdm1, active: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-spin diagonal on the active orbitals; a spin-summed (restricted) 1-RDM is halved."""
    da, db = (rdm1 / 2, rdm1 / 2) if isinstance(rdm1, np.ndarray) and rdm1.ndim == 2 else rdm1
    return np.diag(da)[active].copy(), np.diag(db)[active].copy()


def canonical_orbitals(
    mo_coeff: np.ndarray, mo_energy: np.ndarray, mo_occ: np.ndarray | None = None, *, tol: float = 1e-6
) -> np.ndarray:
    """The same orbitals in a fixed gauge: degenerate shells rotated to one basis, signs fixed.

    An SCF solver returns any rotation within a degenerate shell (N2's pi
    pairs), and it differs from process to process; a string subspace is not
    invariant to it, so two runs of one molecule would give different SQD
    energies. Within each group of orbitals of equal energy (to ``tol``) and
    equal occupation, the orbitals are rotated to diagonalize
    ``C_g^T W C_g`` with ``W = diag(1, 2, ..., n_basis)`` (which basis
    functions they live on), in ascending order; then each orbital's sign
    makes ``sum_mu (mu + 1) C[mu, i]`` positive. Energies of the canonical
    HF orbitals are unchanged (a rotation inside a degenerate block keeps
    the Fock matrix diagonal).
    """
    c = np.array(mo_coeff, dtype=np.float64, copy=True)
    e = np.asarray(mo_energy, dtype=np.float64)
    occ = np.zeros_like(e) if mo_occ is None else np.asarray(mo_occ, dtype=np.float64)
    weights = np.arange(1.0, c.shape[0] + 1.0)
    start = 0
    for i in range(1, len(e) + 1):
        if i < len(e) and abs(e[i] - e[i - 1]) < tol and occ[i] == occ[i - 1]:
            continue
        if i - start > 1:
            block = c[:, start:i]
            _, rot = np.linalg.eigh(block.T @ (weights[:, None] * block))
            c[:, start:i] = block @ rot
        start = i
    proj = weights @ c
    # A projection that vanishes by symmetry falls back on the largest coefficient.
    big = np.abs(c).argmax(axis=0)
    ref = np.where(np.abs(proj) > 1e-8 * np.abs(c).sum(axis=0), proj, c[big, np.arange(c.shape[1])])
    return c * np.where(ref < 0, -1.0, 1.0)


def _ccsd(mf, frozen: list[int], active: list[int], closed_shell: bool):
    """CCSD amplitudes, energy and MP2/CCSD occupancies on the active orbitals."""
    from pyscf import cc, mp, scf

    if closed_shell:
        ref, mp2, ccsd = mf, mp.MP2, cc.CCSD
    else:
        # ROHF reference: UMP2/UCCSD in the same orbitals (both spins share mo_coeff).
        ref, mp2, ccsd = scf.addons.convert_to_uhf(mf), mp.UMP2, cc.UCCSD
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pt = mp2(ref, frozen=frozen or None).run(verbose=0)
        out["occupancies_mp2"] = _occupancies_from_rdm1(pt.make_rdm1(ao_repr=False), active)
        mycc = ccsd(ref, frozen=frozen or None)
        mycc.verbose = 0
        mycc.conv_tol = 1e-10
        mycc.kernel()
        out["t1"], out["t2"] = mycc.t1, mycc.t2
        if mycc.converged:
            out["occupancies_ccsd"] = _occupancies_from_rdm1(mycc.make_rdm1(), active)
    out["e_ccsd"] = float(mycc.e_tot)
    out["ccsd_converged"] = bool(mycc.converged)
    return out


def _make_mole(config: RunConfig):
    from pyscf import gto
    from pyscf.lib.exceptions import BasisNotFoundError

    mcfg = config.molecule
    src = config.source
    try:
        geometry = mcfg.geometry(config.base_dir)
    except OSError as err:
        raise SQDInputError("molecule.xyz", f"cannot read {mcfg.xyz} ({err.strerror})", fix="check the path", source=src) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gto.M(
                atom=geometry,
                basis=mcfg.basis,
                charge=mcfg.charge,
                spin=mcfg.spin,
                unit=mcfg.unit,
                symmetry=mcfg.symmetry,
                verbose=0,
            )
    except BasisNotFoundError as err:
        detail = " ".join(str(err).split())
        raise SQDInputError(
            "molecule.basis",
            f"{mcfg.basis!r}: {detail}",
            fix="use a basis PySCF knows (sto-3g, 6-31g, cc-pvdz, ...) that covers every element",
            source=src,
        ) from None
    except RuntimeError as err:
        if "spin" in str(err):
            raise SQDInputError(
                "molecule.spin",
                f"spin {mcfg.spin} (2S) is impossible with charge {mcfg.charge}: the electron count has the other parity",
                fix="set spin = n_alpha - n_beta so that it has the parity of the electron count",
                source=src,
            ) from None
        raise SQDInputError("molecule.atom", " ".join(str(err).split()), fix="check the geometry", source=src) from None
    except (KeyError, ValueError, IndexError) as err:
        raise SQDInputError(
            "molecule.atom", f"cannot parse the geometry ({err})", fix="write 'Symbol x y z; ...' or a list of [symbol, x, y, z]", source=src
        ) from None


def _active_orbitals(config: RunConfig, mol, nmo: int) -> tuple[list[int], tuple[int, int]]:
    """Active orbital indices and active electrons, checked against the molecule."""
    acfg = config.active_space
    src = config.source
    name = f"{_formula(mol)}/{config.molecule.basis}"
    n_a_tot, n_b_tot = mol.nelec
    if acfg.orbitals is not None:
        active = sorted(acfg.orbitals)
        bad = [o for o in active if not 0 <= o < nmo]
        if bad:
            raise SQDInputError(
                "active_space.orbitals", f"orbital {bad[0]} does not exist: {name} has {nmo} orbitals (0..{nmo - 1})",
                fix="list indices below the orbital count", source=src,
            )
        # Aufbau: orbitals below n_beta are doubly occupied, up to n_alpha singly.
        ncore = sum(1 for o in range(n_b_tot) if o not in active)
        if any(o not in active for o in range(n_b_tot, n_a_tot)):
            raise SQDInputError(
                "active_space.orbitals", "a singly occupied orbital is left out of the active space",
                fix=f"include orbitals {n_b_tot}..{n_a_tot - 1}", source=src,
            )
    else:
        ncore = acfg.frozen_core
        if ncore > n_b_tot:
            raise SQDInputError(
                "active_space.frozen_core", f"{ncore} frozen orbitals exceed the {n_b_tot} doubly occupied orbitals of {name}",
                fix=f"freeze at most {n_b_tot}", source=src,
            )
        norb = acfg.norb if acfg.norb is not None else nmo - ncore
        if ncore + norb > nmo:
            raise SQDInputError(
                "active_space.norb", f"{norb} exceeds the {nmo - ncore} orbitals of {name} above a frozen core of {ncore}",
                fix=f"use norb <= {nmo - ncore}", source=src,
            )
        active = list(range(ncore, ncore + norb))
    norb = len(active)
    if acfg.nelec is not None:
        nelec = (int(acfg.nelec[0]), int(acfg.nelec[1]))
        if nelec[0] - nelec[1] != n_a_tot - n_b_tot or sum(nelec) % 2 != (n_a_tot + n_b_tot) % 2:
            raise SQDInputError(
                "active_space.nelec", f"{list(nelec)} does not match the molecule's spin (n_alpha - n_beta = {n_a_tot - n_b_tot})",
                fix="keep n_alpha - n_beta equal to molecule.spin", source=src,
            )
        if sum(nelec) > n_a_tot + n_b_tot:
            raise SQDInputError(
                "active_space.nelec", f"{sum(nelec)} active electrons exceed the {n_a_tot + n_b_tot} of {name}",
                fix="use fewer active electrons", source=src,
            )
    else:
        # Every electron outside the doubly occupied orbitals below the active space.
        nelec = (n_a_tot - ncore, n_b_tot - ncore)
    if max(nelec) > norb:
        raise SQDInputError(
            "active_space.norb", f"{norb} active orbitals cannot hold {nelec[0]} alpha and {nelec[1]} beta electrons",
            fix=f"use at least {max(nelec)} active orbitals or fewer electrons", source=src,
        )
    if min(nelec) < 0:
        raise SQDInputError(
            "active_space.frozen_core", f"freezing {ncore} orbitals leaves negative electron counts {list(nelec)}",
            fix="freeze fewer orbitals", source=src,
        )
    return active, nelec


def _formula(mol) -> str:
    """Hill order: C, then H, then the rest alphabetically; without C, all alphabetically."""
    counts: dict[str, int] = {}
    for i in range(mol.natm):
        sym = mol.atom_pure_symbol(i)
        counts[sym] = counts.get(sym, 0) + 1
    if "C" in counts:
        order = ["C"] + (["H"] if "H" in counts else []) + sorted(s for s in counts if s not in ("C", "H"))
    else:
        order = sorted(counts)
    return "".join(f"{s}{counts[s] if counts[s] > 1 else ''}" for s in order)


def build_hamiltonian(config: RunConfig, *, compute_ccsd: bool = True) -> ActiveSpaceHamiltonian:
    """SCF, active space, integrals, CCSD and (when small enough) the exact energy.

    When the full space exceeds ``active_space.exact_max_dim``, a recorded
    ``active_space.reference_energy`` stands in, marked as given.

    PySCF runs on one OpenMP thread here: threaded sums round differently
    from run to run, and the LUCJ ansatz's factorization of ``t2`` turns
    1e-13 differences into a different circuit wherever its eigenvalues are
    degenerate (N2's pi pairs). One thread makes a YAML give bit-identical
    integrals, amplitudes and samples in every run; SCF and CCSD of SQD-sized
    active spaces take seconds either way.
    """
    from pyscf import lib

    with lib.with_omp_threads(1):
        ham = _build(config, compute_ccsd)
    if ham.e_exact is None and config.active_space.reference_energy is not None:
        ham = replace(ham, e_exact=float(config.active_space.reference_energy), exact_method="given")
    return ham


def _build(config: RunConfig, compute_ccsd: bool) -> ActiveSpaceHamiltonian:
    if config.active_space.fcidump is not None:
        return hamiltonian_from_fcidump(
            config.resolve(config.active_space.fcidump),
            orbitals=config.active_space.fcidump_orbitals,
            exact_max_dim=config.active_space.exact_max_dim,
            compute_ccsd=compute_ccsd,
            source=config.source,
        )
    from pyscf import ao2mo, mcscf, scf

    mol = _make_mole(config)
    mf = scf.RHF(mol) if mol.spin == 0 else scf.ROHF(mol)
    mf.conv_tol = 1e-10
    mf.verbose = 0
    mf.kernel()
    if not mf.converged:
        mf = mf.newton().run()
    mf.mo_coeff = canonical_orbitals(mf.mo_coeff, mf.mo_energy, mf.mo_occ)
    nmo = mf.mo_coeff.shape[1]
    active, nelec = _active_orbitals(config, mol, nmo)
    norb = len(active)
    # Orbitals below the active space that are not in it are doubly occupied core.
    ncore = (mol.nelectron - sum(nelec)) // 2
    mc = mcscf.CASCI(mf, norb, nelec, ncore=ncore)
    mo = mc.sort_mo([i + 1 for i in active]) if config.active_space.orbitals is not None else mf.mo_coeff
    h1, ecore = mc.get_h1eff(mo)
    h2 = ao2mo.restore(1, mc.get_h2eff(mo), norb)
    mo_active = mo[:, ncore : ncore + norb]
    label = f"{_formula(mol)}/{config.molecule.basis}"
    extra: dict[str, Any] = {}
    if compute_ccsd:
        frozen = [i for i in range(nmo) if i not in active]
        extra = _ccsd(mf, frozen, active, closed_shell=mol.spin == 0)
    return hamiltonian_from_integrals(
        np.ascontiguousarray(h1),
        np.ascontiguousarray(h2),
        norb,
        nelec,
        ecore=float(ecore),
        e_hf=float(mf.e_tot),
        mo_coeff=mo_active,
        exact_max_dim=config.active_space.exact_max_dim,
        # FCI when every orbital and electron is active, else CASCI of the active space.
        exact_method="FCI" if norb == nmo else "CASCI",
        label=label,
        **extra,
    )


def hamiltonian_from_integrals(
    h1: np.ndarray,
    h2: np.ndarray,
    norb: int,
    nelec: tuple[int, int],
    *,
    ecore: float = 0.0,
    e_hf: float | None = None,
    exact_max_dim: float = 2.0e6,
    exact_method: str = "FCI",
    label: str = "",
    **fields: Any,
) -> ActiveSpaceHamiltonian:
    """Wrap integrals, adding the HF determinant energy and the exact energy when small."""
    from pyscf import ao2mo

    h2 = ao2mo.restore(1, np.asarray(h2, dtype=float), norb)
    if e_hf is None:
        e_hf = _determinant_energy(h1, h2, nelec, ecore)
    ham = ActiveSpaceHamiltonian(
        h1=np.asarray(h1, dtype=float), h2=h2, ecore=float(ecore), norb=norb, nelec=tuple(nelec), e_hf=e_hf, label=label, **fields
    )
    if ham.fci_dimension <= exact_max_dim:
        e = exact_energy(ham.h1, ham.h2, norb, ham.nelec, ham.ecore)
        ham = replace(ham, e_exact=e, exact_method=exact_method)
    return ham


def _determinant_energy(h1: np.ndarray, h2: np.ndarray, nelec: tuple[int, int], ecore: float) -> float:
    """Energy of the aufbau determinant (lowest n_alpha, n_beta orbitals)."""
    oa, ob = list(range(nelec[0])), list(range(nelec[1]))
    j = np.einsum("iijj->ij", h2)
    k = np.einsum("ijji->ij", h2)
    e = h1[oa, oa].sum() + h1[ob, ob].sum()
    e += 0.5 * (j[np.ix_(oa, oa)].sum() - k[np.ix_(oa, oa)].sum())
    e += 0.5 * (j[np.ix_(ob, ob)].sum() - k[np.ix_(ob, ob)].sum())
    e += j[np.ix_(oa, ob)].sum()
    return float(e + ecore)


def hamiltonian_from_fcidump(
    path: str | Path,
    *,
    orbitals: str = "scf",
    exact_max_dim: float = 2.0e6,
    compute_ccsd: bool = True,
    source: str | Path | None = None,
) -> ActiveSpaceHamiltonian:
    """Read an FCIDUMP. With ``orbitals='scf'`` the integrals are rotated to the
    canonical SCF orbitals of the file's Hamiltonian, so that the LUCJ ansatz
    starts from its Hartree-Fock state; ``'as_is'`` keeps the file's orbitals."""
    from pyscf import ao2mo
    from pyscf.tools import fcidump

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = fcidump.read(str(path), verbose=False)
    except FileNotFoundError:
        raise SQDInputError("active_space.fcidump", f"{path}: no such file", fix="check the path", source=source) from None
    except Exception as err:  # PySCF raises assorted errors on a malformed file
        raise SQDInputError(
            "active_space.fcidump", f"{path} is not a readable FCIDUMP ({type(err).__name__}: {err})",
            fix="write it with `sqd hamiltonian --fcidump` or pyscf.tools.fcidump", source=source,
        ) from None
    norb = int(data["NORB"])
    ms2 = int(data.get("MS2", 0))
    ntot = int(data["NELEC"])
    if (ntot + ms2) % 2 or ntot > 2 * norb:
        raise SQDInputError(
            "active_space.fcidump", f"{path}: NELEC={ntot}, MS2={ms2} do not fit {norb} orbitals",
            fix="correct the FCIDUMP header", source=source,
        )
    nelec = ((ntot + ms2) // 2, (ntot - ms2) // 2)
    h1 = np.array(data["H1"], dtype=float)
    # Some writers give one triangle only; the Hamiltonian is symmetric.
    lower = np.tril_indices(norb, -1)
    if not np.any(h1[lower]):
        h1[lower] = h1.T[lower]
    elif not np.any(h1.T[lower]):
        h1.T[lower] = h1[lower]
    h2 = ao2mo.restore(1, np.asarray(data["H2"], dtype=float), norb)
    ecore = float(data.get("ECORE", 0.0))
    label = path.stem
    if orbitals == "as_is":
        return hamiltonian_from_integrals(h1, h2, norb, nelec, ecore=ecore, exact_max_dim=exact_max_dim, label=label)
    mf = _scf_on_integrals(h1, h2, norb, nelec, ecore)
    c = mf.mo_coeff
    h1_mo = c.T @ h1 @ c
    h2_mo = ao2mo.incore.full(ao2mo.restore(8, h2, norb), c)
    extra: dict[str, Any] = {}
    if compute_ccsd:
        extra = _ccsd(mf, [], list(range(norb)), closed_shell=nelec[0] == nelec[1])
    return hamiltonian_from_integrals(
        h1_mo, h2_mo, norb, nelec, ecore=ecore, e_hf=float(mf.e_tot), exact_max_dim=exact_max_dim,
        label=label, mo_coeff=None, **extra,
    )


def _scf_on_integrals(h1: np.ndarray, h2: np.ndarray, norb: int, nelec: tuple[int, int], ecore: float):
    """RHF/ROHF with the integrals as an orthonormal 'AO' basis."""
    from pyscf import ao2mo, gto, scf

    # As pyscf.tools.fcidump.to_scf does: no basis functions, the integrals are the basis.
    mol = gto.M(verbose=0)
    mol.nelectron = sum(nelec)
    mol.spin = nelec[0] - nelec[1]
    mol.nao = norb
    mol.energy_nuc = lambda *a: ecore
    mol.incore_anyway = True
    intor_symmetric = mol.intor_symmetric
    mol.intor_symmetric = lambda intor, **kw: np.eye(norb) if intor == "int1e_ovlp" else intor_symmetric(intor, **kw)
    mf = scf.RHF(mol) if mol.spin == 0 else scf.ROHF(mol)
    mf.get_hcore = lambda *a: h1
    mf.get_ovlp = lambda *a: np.eye(norb)
    mf._eri = ao2mo.restore(8, h2, norb)
    mf.conv_tol = 1e-10
    warnings.filterwarnings("ignore", message="Function mol.dumps drops attribute")
    # Start from the file's own aufbau determinant.
    dm_a = np.diag([1.0] * nelec[0] + [0.0] * (norb - nelec[0]))
    dm_b = np.diag([1.0] * nelec[1] + [0.0] * (norb - nelec[1]))
    dm0 = dm_a + dm_b if mol.spin == 0 else np.array([dm_a, dm_b])
    mf.kernel(dm0)
    if not mf.converged:
        mf = mf.newton()
        mf.kernel(mf.make_rdm1())
    mf.mo_coeff = canonical_orbitals(mf.mo_coeff, mf.mo_energy, mf.mo_occ)
    return mf
