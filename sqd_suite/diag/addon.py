"""Drop-in ``sci_solver`` for qiskit-addon-sqd's ``diagonalize_fermionic_hamiltonian``.

``diagonalize_fermionic_hamiltonian(..., sci_solver=sci_solver)`` calls it with
every subspace of an iteration ``[(strings_a, strings_b), ...]``, the integrals,
``norb`` and ``nelec``, and reads from each :class:`SCIResult` the ``energy``
(without the nuclear constant), ``orbital_occupancies`` and, for the
carry-over, ``sci_state.amplitudes`` with ``ci_strs_a`` / ``ci_strs_b``.
Options go through ``functools.partial`` (``spin_sq`` as in its own
``solve_sci_batch``) or :class:`SCISolver`, which also warm-starts each call
from the previous call's best state.

Under MPI (``comm`` given, every rank calling collectively, as
qiskit-addon-sqd's SPMD mode does) each subspace is solved by all ranks and
rank 0 receives the full amplitudes; the other ranks' results carry no state
and are ignored by qiskit-addon-sqd.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit_addon_sqd.fermion import SCIResult, SCIState

from .properties import largest_determinants, map_ci_vector
from .solve import DiagResult, solve

__all__ = ["SCISolver", "sci_solver"]

# PySCF's fix_spin_ default shift, which qiskit-addon-sqd's solve_sci uses with spin_sq.
_PYSCF_SPIN_SHIFT = 0.1

# Determinants of the previous best state that warm-start a distributed solve:
# enough to hold nearly all the weight of an SQD ground state, few enough that
# every rank keeps them (100 kB).
MPI_WARM_DETERMINANTS = 4096


def _as_strings(strings: Any) -> np.ndarray:
    return np.unique(np.asarray(strings, dtype=np.int64))


def _gather_ci(res: DiagResult, comm: Any | None) -> np.ndarray | None:
    """The full (n_a, n_b) ground-state matrix on rank 0 (None elsewhere)."""
    ci = res.ci if res.ci.ndim == 2 else res.ci[0]
    if comm is None or comm.Get_size() == 1:
        return ci
    counts = np.array(comm.allgather(ci.size))
    tiles = comm.gather((res.alpha_range, res.beta_range), root=0)
    flat = np.empty(counts.sum()) if comm.Get_rank() == 0 else None
    displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
    comm.Gatherv(np.ascontiguousarray(ci), [flat, counts, displs, _mpi_double()] if flat is not None else None, root=0)
    if flat is None:
        return None
    full = np.empty((len(res.alpha_strings), len(res.beta_strings)))
    for ((a0, a1), (b0, b1)), start in zip(tiles, displs):
        full[a0:a1, b0:b1] = flat[start : start + (a1 - a0) * (b1 - b0)].reshape(a1 - a0, b1 - b0)
    return full


def _mpi_double() -> Any:
    from mpi4py import MPI

    return MPI.DOUBLE


def _to_sci_result(res: DiagResult, norb: int, nelec: tuple[int, int], comm: Any | None) -> SCIResult:
    amplitudes = _gather_ci(res, comm)
    if amplitudes is None:
        empty = np.zeros(0, dtype=np.int64)
        return SCIResult(res.energy, None, orbital_occupancies=res.occupancies, carryover=(empty, empty))
    state = SCIState(
        amplitudes=amplitudes,
        ci_strs_a=res.alpha_strings,
        ci_strs_b=res.beta_strings,
        norb=norb,
        nelec=nelec,
    )
    return SCIResult(res.energy, state, orbital_occupancies=res.occupancies)


def sci_solver(
    ci_strings: list[tuple[np.ndarray, np.ndarray]],
    one_body_tensor: np.ndarray,
    two_body_tensor: np.ndarray,
    norb: int,
    nelec: tuple[int, int],
    *,
    spin_sq: float | None = None,
    tol: float = 1e-8,
    max_iter: int = 200,
    comm: Any | None = None,
    grid: tuple[int, int] | None = None,
    spin_shift: float = _PYSCF_SPIN_SHIFT,
) -> list[SCIResult]:
    """Solve each subspace with :func:`sqd_suite.diag.solve`; qiskit-addon-sqd's ``solve_sci_batch`` signature.

    Args:
        ci_strings: ``[(strings_a, strings_b), ...]``, one pair per subspace.
        one_body_tensor: ``h1``.
        two_body_tensor: ``(pq|rs)``.
        norb: Number of spatial orbitals.
        nelec: ``(n_alpha, n_beta)``.
        spin_sq: Wanted ``<S^2>``, imposed with a penalty ``spin_shift`` as
            PySCF's ``fix_spin_`` does; None imposes nothing.
        tol: See :func:`sqd_suite.diag.solve`.
        max_iter: Davidson iteration limit.
        comm: mpi4py communicator, or None.
        grid: MPI rank grid, see :func:`sqd_suite.diag.solve`.
        spin_shift: Penalty strength used with ``spin_sq``.

    Returns:
        One :class:`SCIResult` per subspace; energies exclude the nuclear constant.
    """
    return SCISolver(tol=tol, max_iter=max_iter, comm=comm, grid=grid, spin_sq=spin_sq, spin_shift=spin_shift,
                     warm_start=False)(ci_strings, one_body_tensor, two_body_tensor, norb, nelec)


class SCISolver:
    """A configured ``sci_solver`` that warm-starts from its previous call's best state.

    SQD iterations change the strings only partly, so the previous ground
    state mapped onto the new strings (:func:`map_ci_vector`) is a much
    better start than the lowest diagonal element. Under MPI no rank holds
    the whole vector: its ``MPI_WARM_DETERMINANTS`` largest determinants
    (gathered collectively) are the start instead, each rank placing those
    of its own tile.
    """

    def __init__(
        self,
        *,
        tol: float = 1e-8,
        max_iter: int = 200,
        comm: Any | None = None,
        grid: tuple[int, int] | None = None,
        spin_sq: float | None = None,
        spin_shift: float = _PYSCF_SPIN_SHIFT,
        warm_start: bool = True,
    ) -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.comm = comm
        self.grid = grid
        self.spin_sq = spin_sq
        self.spin_shift = spin_shift
        self.warm_start = warm_start
        self.last: DiagResult | None = None
        self.results: list[DiagResult] = []
        self._distributed = comm is not None and comm.Get_size() > 1
        self._warm: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(
        self,
        ci_strings: list[tuple[np.ndarray, np.ndarray]],
        one_body_tensor: np.ndarray,
        two_body_tensor: np.ndarray,
        norb: int,
        nelec: tuple[int, int],
    ) -> list[SCIResult]:
        nelec = (int(nelec[0]), int(nelec[1]))
        out = []
        self.results = []
        prev = self.last
        for strs_a, strs_b in ci_strings:
            alpha, beta = _as_strings(strs_a), _as_strings(strs_b)
            ci0: Any = None
            if self._distributed:
                ci0 = self._warm
            elif prev is not None:
                ci0 = map_ci_vector(prev.ci, prev.alpha_strings, prev.beta_strings, alpha, beta)
                if not np.any(ci0):
                    ci0 = None
            res = solve(
                one_body_tensor,
                two_body_tensor,
                norb,
                nelec,
                alpha,
                beta,
                tol=self.tol,
                max_iter=self.max_iter,
                ci0=ci0,
                comm=self.comm,
                grid=self.grid,
                spin_penalty=self.spin_shift if self.spin_sq is not None else 0.0,
                spin_target=self.spin_sq,
            )
            self.results.append(res)
            out.append(_to_sci_result(res, norb, nelec, self.comm))
        if self.warm_start and self.results:
            self.last = best = min(self.results, key=lambda r: r.energy)
            if self._distributed:
                self._warm = largest_determinants(
                    best.ci if best.ci.ndim == 2 else best.ci[0], best.alpha_strings, best.beta_strings,
                    MPI_WARM_DETERMINANTS, alpha_range=best.alpha_range, beta_range=best.beta_range, comm=self.comm,
                )  # fmt: skip
        return out
