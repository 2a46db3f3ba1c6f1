"""The self-consistent SQD loop (configuration recovery <-> subspace diagonalization).

:func:`kernel` works on plain arrays (integrals, unique bitstrings and their
counts); :class:`SQD` is a thin object over it that takes an
:class:`~sqd_suite.hamiltonian.ActiveSpaceHamiltonian`, a ``Samples`` object and
the ``sqd`` config section.

One iteration: recover configurations with the current orbital occupancies,
draw ``num_batches`` batches of ``samples_per_batch`` outcomes, add the
carry-over strings, diagonalize every batch (loose tolerance, warm start from
the previous iteration's largest determinants), keep the lowest energy, and
take the next occupancies and carry-over strings from that batch's vector. The
loop stops when the energy and the occupancies stop changing or after
``max_iterations``; the last iteration's best batch is then solved again with
the tight tolerance, which gives the reported energy.

Every iteration's randomness comes from ``(seed, iteration)`` alone, and the
state one iteration hands to the next is exactly what :class:`SQDIteration`
holds (and the run file stores), so a run resumed from its history gives the
same numbers as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sqd_suite.config import SQDConfig
from sqd_suite.diag.properties import carryover_strings, largest_determinants
from sqd_suite.diag.solve import DiagResult, solve
from sqd_suite.recovery import bitstrings_to_strings, configuration_batches

__all__ = [
    "SQD",
    "SQDIteration",
    "SQDResult",
    "iteration_rng",
    "kernel",
    "quality_warnings",
]

# Determinants of the best vector kept per iteration: they warm-start the next
# iteration's solves and the final tight solve, and the run file stores them.
# Keeping a bounded sparse vector (not the whole one) makes resume exact and
# the run file small.
WARM_START_DETERMINANTS = 4096

# Energy changes are compared with this much slack for round-off (Ha).
_ROUNDOFF = 1e-12

# A subspace holding this fraction of the full space is flagged: its energy
# comes from near-exact diagonalization rather than from the samples.
LARGE_FRACTION = 0.5

# Chemical accuracy (Ha), used only to word warnings.
CHEMICAL_ACCURACY = 1.6e-3


@dataclass(frozen=True)
class SQDIteration:
    """One completed iteration of the loop (everything the next one needs).

    ``subspace_shape`` is ``(n_alpha_strings, n_beta_strings)`` of the best
    batch, whose determinant count is :attr:`dimension`;
    ``distinct_strings`` counts the distinct alpha and beta strings over all
    batches of the iteration (carry-over included). ``occupancies`` and
    ``carryover`` come from the best batch and feed the next iteration;
    ``top_alpha``/``top_beta``/``top_coef`` are the largest determinants of
    the best batch's vector (descending ``|c|``). ``energy_change`` and
    ``occupancy_change`` are against the previous iteration (NaN for the
    first); ``converged`` says whether both were below tolerance.
    """

    iteration: int
    energy: float
    batch_energies: np.ndarray
    best_batch: int
    subspace_shape: tuple[int, int]
    distinct_strings: tuple[int, int]
    batch_shapes: np.ndarray
    occupancies: tuple[np.ndarray, np.ndarray]
    carryover: tuple[np.ndarray, np.ndarray]
    alpha_strings: np.ndarray
    beta_strings: np.ndarray
    top_alpha: np.ndarray
    top_beta: np.ndarray
    top_coef: np.ndarray
    spin_square: float
    davidson_converged: bool
    davidson_iterations: int
    energy_change: float
    occupancy_change: float
    converged: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        """Determinants in the best batch's subspace."""
        return self.subspace_shape[0] * self.subspace_shape[1]


@dataclass(frozen=True)
class SQDResult:
    """Outcome of the loop.

    ``energy`` is the tight-tolerance energy (with ``ecore``) of the last
    iteration's best batch; ``ci`` this rank's tile ``alpha_range x
    beta_range`` of its normalized CI matrix (all of it without MPI). ``converged`` is
    true only when the loop met its energy and occupancy tolerances *and*
    the final eigensolve converged; ``warnings`` names everything that makes
    the number less than it seems (tiny subspace, full space, no
    convergence, error against the exact reference).
    """

    energy: float
    iterations: tuple[SQDIteration, ...]
    converged: bool
    alpha_strings: np.ndarray
    beta_strings: np.ndarray
    ci: np.ndarray
    alpha_range: tuple[int, int]
    beta_range: tuple[int, int]
    occupancies: tuple[np.ndarray, np.ndarray]
    spin_square: float
    top_alpha: np.ndarray
    top_beta: np.ndarray
    top_coef: np.ndarray
    davidson_converged: bool
    warnings: tuple[str, ...]
    e_exact: float | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def subspace_shape(self) -> tuple[int, int]:
        return (len(self.alpha_strings), len(self.beta_strings))

    @property
    def dimension(self) -> int:
        return len(self.alpha_strings) * len(self.beta_strings)

    @property
    def error(self) -> float | None:
        """Energy minus the exact reference, when there is one."""
        return None if self.e_exact is None else self.energy - self.e_exact


def iteration_rng(seed: int, iteration: int) -> np.random.Generator:
    """The generator of one iteration: a function of ``(seed, iteration)`` only.

    So a resumed run draws the same batches as an uninterrupted one, whatever
    iteration it restarted at.
    """
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1, int(iteration))))


def quality_warnings(
    energy: float,
    subspace_shape: tuple[int, int],
    norb: int,
    nelec: tuple[int, int],
    *,
    loop_converged: bool = True,
    davidson_converged: bool = True,
    e_hf: float | None = None,
    e_exact: float | None = None,
) -> tuple[str, ...]:
    """Plain-words reasons a result is weaker than its digits suggest.

    A subspace is called tiny when either spin has fewer strings than the
    Hartree-Fock string plus its single excitations: such a space cannot even
    hold all singles, so the energy says more about the sampler than about
    the molecule.
    """
    n_a, n_b = subspace_shape
    out: list[str] = []
    full_a, full_b = math.comb(norb, nelec[0]), math.comb(norb, nelec[1])
    need_a = 1 + nelec[0] * (norb - nelec[0])
    need_b = 1 + nelec[1] * (norb - nelec[1])
    if n_a >= full_a and n_b >= full_b:
        out.append(
            f"the subspace is the full space ({n_a} x {n_b}): this is exact diagonalization, "
            "the samples selected nothing"
        )
    elif n_a * n_b >= LARGE_FRACTION * full_a * full_b:
        out.append(
            f"the subspace holds {100 * n_a * n_b / (full_a * full_b):.0f} % of the full space "
            f"({n_a} x {n_b} of {full_a} x {full_b}): close to exact diagonalization, it says little "
            "about the samples"
        )
    elif n_a < min(need_a, full_a) or n_b < min(need_b, full_b):
        out.append(
            f"tiny subspace: {n_a} x {n_b} strings, fewer than the {need_a} x {need_b} that "
            "Hartree-Fock and its single excitations need; sample more or add noise/closed loop"
        )
    if not loop_converged:
        out.append("the loop did not converge (max_iterations reached)")
    if not davidson_converged:
        out.append("the final eigensolve did not converge")
    if e_hf is not None and energy > e_hf - 1e-8:
        out.append(f"energy is not below Hartree-Fock ({energy - e_hf:+.2e} Ha)")
    if e_exact is not None and energy - e_exact > CHEMICAL_ACCURACY:
        out.append(f"error vs exact {1e3 * (energy - e_exact):.2f} mHa exceeds chemical accuracy (1.6 mHa)")
    return tuple(out)


def _string_counts(strings: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique strings and how many shots measured each."""
    uniq, inv = np.unique(strings, return_inverse=True)
    return uniq, np.bincount(inv.ravel(), weights=counts, minlength=len(uniq))


def _cap_strings(
    strings: np.ndarray,
    keep: np.ndarray,
    max_dim: int,
    occ: np.ndarray,
    norb: int,
    measured: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """At most ``max_dim`` strings: all of ``keep``, then the most measured, then the likeliest under ``occ``.

    Ranking by measured shots first keeps the cap responsive to the samples
    (a closed loop changes them); strings made by recovery were not measured
    and are ranked by their probability under independent occupancies.
    """
    if len(strings) <= max_dim:
        return strings
    forced = np.isin(strings, keep)
    known, shots = measured
    pos = np.minimum(np.searchsorted(known, strings), max(len(known) - 1, 0))
    freq = np.where(known[pos] == strings, shots[pos], 0.0) if len(known) else np.zeros(len(strings))
    p = np.clip(occ, 1e-12, 1 - 1e-12)
    bits = (strings[:, None] >> np.arange(norb, dtype=np.int64)) & 1
    loglik = bits @ np.log(p) + (1 - bits) @ np.log1p(-p)
    freq = np.where(forced, np.inf, freq)
    order = np.lexsort((strings, -loglik, -freq))[:max_dim]
    return np.sort(strings[order])


def _split(comm: Any | None, num_batches: int) -> tuple[Any | None, list[int], Any | None]:
    """(sub-communicator, batches this rank works on, communicator to free)."""
    if comm is None or comm.Get_size() == 1:
        return None, list(range(num_batches)), None
    size, rank = comm.Get_size(), comm.Get_rank()
    if size < num_batches:
        # every rank on every batch, one batch after another
        return comm, list(range(num_batches)), None
    color = rank * num_batches // size
    sub = comm.Split(color, rank)
    return (None if sub.Get_size() == 1 else sub), [color], sub


@dataclass(frozen=True)
class _BatchOutcome:
    batch: int
    energy: float
    occupancies: tuple[np.ndarray, np.ndarray]
    carryover: tuple[np.ndarray, np.ndarray]
    top: tuple[np.ndarray, np.ndarray, np.ndarray]
    spin_square: float
    converged: bool
    n_iter: int
    seconds: float


def _solve_batch(
    h1: np.ndarray,
    h2: np.ndarray,
    norb: int,
    nelec: tuple[int, int],
    alpha: np.ndarray,
    beta: np.ndarray,
    *,
    ecore: float,
    tol: float,
    max_iter: int,
    warm: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    comm: Any | None,
    spin_penalty: float,
    carry_amp: float,
    n_top: int,
    mpi_layout: str = "auto",
) -> tuple[DiagResult, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Solve one subspace (collective over ``comm``) and take what the loop keeps."""
    size = 1 if comm is None else comm.Get_size()
    grid = {"auto": None, "alpha_blocks": (size, 1), "beta_blocks": (1, size)}[mpi_layout]
    # Each rank places the kept determinants in its own tile (inside solve).
    ci0 = warm if warm is not None and len(warm[2]) else None
    res = solve(
        h1, h2, norb, nelec, alpha, beta,
        ecore=ecore, tol=tol, max_iter=max_iter, ci0=ci0, comm=comm, grid=grid, spin_penalty=spin_penalty,
    )
    # Every rank holds only its tile (a dense solve too), so properties sum over ranks.
    tile = {"alpha_range": res.alpha_range, "beta_range": res.beta_range, "comm": comm if size > 1 else None}
    carry = carryover_strings(res.ci, alpha, beta, threshold=carry_amp, **tile)
    top = largest_determinants(res.ci, alpha, beta, n_top, **tile)
    return res, carry, top


def kernel(
    h1: np.ndarray,
    h2: np.ndarray,
    norb: int,
    nelec: tuple[int, int],
    bitstrings: np.ndarray,
    counts: np.ndarray,
    *,
    ecore: float = 0.0,
    samples_per_batch: int = 300,
    num_batches: int = 3,
    max_iterations: int = 10,
    energy_tol: float = 1e-6,
    occupancies_tol: float = 1e-4,
    carryover_threshold: float = 1e-4,
    symmetrize_spin: bool = True,
    spin_penalty: float = 0.0,
    initial_occupancies: tuple[np.ndarray, np.ndarray] | None = None,
    carryover: tuple[np.ndarray, np.ndarray] | None = None,
    max_dim: int | None = None,
    davidson_tol: float = 1e-8,
    inner_davidson_tol: float = 1e-5,
    max_davidson_iter: int = 200,
    seed: int = 0,
    comm: Any | None = None,
    mpi_layout: str = "auto",
    history: Sequence[SQDIteration] = (),
    callback: Callable[[SQDIteration], None] | None = None,
    e_hf: float | None = None,
    e_exact: float | None = None,
) -> SQDResult:
    """Run the self-consistent SQD loop on unique bitstrings and their counts.

    Args:
        h1, h2, norb, nelec: The active-space Hamiltonian (chemists' ``(pq|rs)``).
        bitstrings: ``(n, 2*norb)`` bool matrix of unique outcomes
            (qiskit-addon-sqd column order).
        counts: int64 counts (or probabilities), one per row.
        ecore: Constant added to every energy.
        samples_per_batch, num_batches: Subsampling per iteration.
        max_iterations: Iterations at most (those in ``history`` included).
        energy_tol, occupancies_tol: The loop stops when the lowest energy
            changes by less than ``energy_tol`` and no orbital occupancy by
            more than ``occupancies_tol`` between iterations.
        carryover_threshold: Determinants with amplitude ``|c|`` above this
            pass their strings to every batch of the next iteration (the
            qiskit-addon-sqd convention; 1e-4 keeps strings down to ``|c|**2 = 1e-8``).
        symmetrize_spin: Both spins use the union of strings (only when
            ``n_alpha == n_beta``; ignored otherwise).
        spin_penalty: Passed to :func:`~sqd_suite.diag.solve`.
        initial_occupancies: ``(occ_a, occ_b)`` of the first recovery;
            default Hartree-Fock.
        carryover: Strings ``(alpha, beta)`` added to the first iteration's
            batches (e.g. from another run or walker).
        max_dim: Cap on strings per spin of a batch: carry-over strings are
            kept, then the most measured, then the likeliest under the
            current occupancies.
        davidson_tol: Eigensolver tolerance of the final solve (the reported energy).
        inner_davidson_tol: Eigensolver tolerance inside the loop.
        max_davidson_iter: Davidson iteration cap per solve.
        seed: Iteration ``k`` draws from ``iteration_rng(seed, k)``.
        comm: mpi4py communicator. With at least as many ranks as batches,
            the batches run in parallel on sub-communicators; otherwise all
            ranks solve each batch in turn.
        mpi_layout: How each distributed solve tiles its vectors: 'auto',
            'alpha_blocks' or 'beta_blocks' (see :class:`~sqd_suite.config.SQDConfig`).
        history: Completed iterations of an interrupted run: the loop
            continues after the last one and gives the numbers an
            uninterrupted run gives.
        callback: Called on every rank with each new :class:`SQDIteration`
            (write it to disk there).
        e_hf, e_exact: Reference energies, used only for :attr:`SQDResult.warnings`.

    Returns:
        An :class:`SQDResult`.
    """
    t_start = time.perf_counter()
    nelec = (int(nelec[0]), int(nelec[1]))
    h1 = np.asarray(h1, dtype=np.float64)
    h2 = np.asarray(h2, dtype=np.float64)
    sym = bool(symmetrize_spin and nelec[0] == nelec[1])
    # qiskit-addon-sqd's convention: a threshold on |c|, not on |c|^2
    carry_amp = float(carryover_threshold)
    if initial_occupancies is None:
        occ0 = (np.zeros(norb), np.zeros(norb))
        occ0[0][: nelec[0]] = 1.0
        occ0[1][: nelec[1]] = 1.0
    else:
        occ0 = (np.asarray(initial_occupancies[0], float), np.asarray(initial_occupancies[1], float))
    empty = np.zeros(0, dtype=np.int64)
    carry0 = (empty, empty) if carryover is None else (
        np.asarray(carryover[0], np.int64), np.asarray(carryover[1], np.int64))

    measured: tuple = ((), ())
    if max_dim is not None:
        raw_a, raw_b = bitstrings_to_strings(bitstrings)
        w = np.asarray(counts, dtype=np.float64)
        if sym:
            both = _string_counts(np.concatenate([raw_a, raw_b]), np.concatenate([w, w]))
            measured = (both, both)
        else:
            measured = (_string_counts(raw_a, w), _string_counts(raw_b, w))

    iterations = list(history)
    subcomm, my_batches, to_free = _split(comm, num_batches)
    try:
        while not iterations or (not iterations[-1].converged and len(iterations) < max_iterations):
            it = len(iterations)
            prev = iterations[-1] if iterations else None
            occ = prev.occupancies if prev else occ0
            carry = prev.carryover if prev else carry0
            warm = (prev.top_alpha, prev.top_beta, prev.top_coef) if prev else None
            t0 = time.perf_counter()
            batches = configuration_batches(
                bitstrings, counts, occ, nelec,
                samples_per_batch=samples_per_batch, num_batches=num_batches,
                carryover=carry, symmetrize_spin=sym, seed=iteration_rng(seed, it),
            )
            if max_dim is not None:
                keep_a = np.union1d(carry[0], carry[1]) if sym else carry[0]
                keep_b = keep_a if sym else carry[1]
                occ_a, occ_b = (0.5 * (occ[0] + occ[1]),) * 2 if sym else occ
                meas_a, meas_b = measured
                batches = [
                    (_cap_strings(a, keep_a, max_dim, occ_a, norb, meas_a),
                     _cap_strings(b, keep_b, max_dim, occ_b, norb, meas_b))
                    for a, b in batches
                ]
            t_rec = time.perf_counter() - t0

            t0 = time.perf_counter()
            mine: list[_BatchOutcome] = []
            for b in my_batches:
                tb = time.perf_counter()
                alpha, beta = batches[b]
                res, bcarry, top = _solve_batch(
                    h1, h2, norb, nelec, alpha, beta, ecore=ecore, tol=inner_davidson_tol,
                    max_iter=max_davidson_iter, warm=warm, comm=subcomm, spin_penalty=spin_penalty,
                    carry_amp=carry_amp, n_top=WARM_START_DETERMINANTS, mpi_layout=mpi_layout,
                )
                mine.append(_BatchOutcome(
                    b, res.energy, res.occupancies, bcarry, top, res.spin_square, res.converged,
                    res.n_iter, time.perf_counter() - tb,
                ))
            outcomes = _gather(mine, comm, subcomm)
            t_diag = time.perf_counter() - t0

            energies = np.array([o.energy for o in outcomes])
            best = outcomes[int(np.argmin(energies))]
            ba, bb = batches[best.batch]
            union_a = np.unique(np.concatenate([a for a, _ in batches]))
            union_b = union_a if sym else np.unique(np.concatenate([b for _, b in batches]))
            new_carry = best.carryover
            if sym:
                # both spins share one string set; the carry-over too
                u = np.unique(np.concatenate(new_carry))
                new_carry = (u, u)
            if prev is None:
                d_e, d_occ, conv = math.nan, math.nan, False
            else:
                d_e = abs(best.energy - prev.energy)
                d_occ = float(max(np.max(np.abs(best.occupancies[0] - prev.occupancies[0])),
                                  np.max(np.abs(best.occupancies[1] - prev.occupancies[1]))))
                conv = d_e < energy_tol + _ROUNDOFF and d_occ < occupancies_tol
            record = SQDIteration(
                iteration=it,
                energy=float(best.energy),
                batch_energies=energies,
                best_batch=best.batch,
                subspace_shape=(len(ba), len(bb)),
                distinct_strings=(len(union_a), len(union_b)),
                batch_shapes=np.array([[len(a), len(b)] for a, b in batches], dtype=np.int64),
                occupancies=best.occupancies,
                carryover=(np.sort(new_carry[0]), np.sort(new_carry[1])),
                alpha_strings=ba,
                beta_strings=bb,
                top_alpha=best.top[0],
                top_beta=best.top[1],
                top_coef=best.top[2],
                spin_square=float(best.spin_square),
                davidson_converged=bool(best.converged),
                davidson_iterations=int(best.n_iter),
                energy_change=float(d_e),
                occupancy_change=float(d_occ),
                converged=bool(conv),
                timings={"recovery": t_rec, "diagonalization": t_diag,
                         "batches": float(sum(o.seconds for o in outcomes)),
                         "total": time.perf_counter() - t0 + t_rec},
            )
            iterations.append(record)
            if callback is not None:
                callback(record)
    finally:
        if to_free is not None:
            to_free.Free()

    last = iterations[-1]
    t0 = time.perf_counter()
    fcomm = comm if comm is not None and comm.Get_size() > 1 else None
    res, _, top = _solve_batch(
        h1, h2, norb, nelec, last.alpha_strings, last.beta_strings, ecore=ecore, tol=davidson_tol,
        max_iter=max_davidson_iter, warm=(last.top_alpha, last.top_beta, last.top_coef), comm=fcomm,
        spin_penalty=spin_penalty, carry_amp=carry_amp, n_top=WARM_START_DETERMINANTS, mpi_layout=mpi_layout,
    )
    t_final = time.perf_counter() - t0
    loop_conv = last.converged
    warns = quality_warnings(
        res.energy, last.subspace_shape, norb, nelec, loop_converged=loop_conv,
        davidson_converged=res.converged, e_hf=e_hf, e_exact=e_exact,
    )
    return SQDResult(
        energy=float(res.energy),
        iterations=tuple(iterations),
        converged=bool(loop_conv and res.converged),
        alpha_strings=last.alpha_strings,
        beta_strings=last.beta_strings,
        ci=res.ci,
        alpha_range=res.alpha_range,
        beta_range=res.beta_range,
        occupancies=res.occupancies,
        spin_square=float(res.spin_square),
        top_alpha=top[0],
        top_beta=top[1],
        top_coef=top[2],
        davidson_converged=bool(res.converged),
        warnings=warns,
        e_exact=e_exact,
        timings={"final_solve": t_final, "total": time.perf_counter() - t_start},
    )


def _gather(mine: list[_BatchOutcome], comm: Any | None, subcomm: Any | None) -> list[_BatchOutcome]:
    """Every batch's outcome on every rank, in batch order."""
    if comm is None or comm.Get_size() == 1:
        return mine
    lead = subcomm is None or subcomm.Get_rank() == 0
    # ranks of one sub-communicator hold identical outcomes: only its leader sends
    parts = comm.allgather(mine if lead else [])
    seen: dict[int, _BatchOutcome] = {}
    for part in parts:
        for o in part:
            seen.setdefault(o.batch, o)
    return [seen[b] for b in sorted(seen)]


class SQD:
    """The SQD loop on a Hamiltonian and a set of samples (a thin object over :func:`kernel`).

    Options are attributes, PySCF style, initialised from an
    :class:`~sqd_suite.config.SQDConfig`::

        sqd = SQD(ham, samples, config.sqd, seed=config.sampler.seed)
        result = sqd.kernel()
    """

    def __init__(
        self,
        hamiltonian: Any,
        samples: Any,
        config: SQDConfig | None = None,
        *,
        seed: int = 0,
        comm: Any | None = None,
    ) -> None:
        cfg = config or SQDConfig()
        self.hamiltonian = hamiltonian
        self.samples = samples
        self.seed = seed
        self.comm = comm
        self.samples_per_batch = cfg.samples_per_batch
        self.num_batches = cfg.num_batches
        self.max_iterations = cfg.max_iterations
        self.energy_tol = cfg.energy_tol
        self.occupancies_tol = cfg.occupancies_tol
        self.carryover_threshold = cfg.carryover_threshold
        self.symmetrize_spin = cfg.symmetrize_spin
        self.spin_penalty = cfg.spin_penalty
        # 'hf', 'mp2', 'ccsd' (from the Hamiltonian) or explicit (occ_a, occ_b)
        self.initial_occupancies: str | tuple[np.ndarray, np.ndarray] = cfg.initial_occupancies
        self.max_dim = cfg.max_dim
        self.davidson_tol = cfg.davidson_tol
        self.inner_davidson_tol = cfg.inner_davidson_tol
        self.mpi_layout = cfg.mpi_layout
        self.result: SQDResult | None = None

    def kernel(
        self,
        *,
        history: Sequence[SQDIteration] = (),
        callback: Callable[[SQDIteration], None] | None = None,
        carryover: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> SQDResult:
        """Run (or, given ``history``, continue) the loop; see :func:`kernel`."""
        ham = self.hamiltonian
        occ = self.initial_occupancies
        if isinstance(occ, str):
            # only the first iteration reads them (a resumed run may lack MP2/CCSD data)
            occ = None if history else ham.initial_occupancies(occ)
        self.result = kernel(
            ham.h1, ham.h2, ham.norb, ham.nelec, self.samples.bitstrings, self.samples.counts,
            ecore=ham.ecore,
            samples_per_batch=self.samples_per_batch,
            num_batches=self.num_batches,
            max_iterations=self.max_iterations,
            energy_tol=self.energy_tol,
            occupancies_tol=self.occupancies_tol,
            carryover_threshold=self.carryover_threshold,
            symmetrize_spin=self.symmetrize_spin,
            spin_penalty=self.spin_penalty,
            initial_occupancies=occ,
            carryover=carryover,
            max_dim=self.max_dim,
            davidson_tol=self.davidson_tol,
            inner_davidson_tol=self.inner_davidson_tol,
            seed=self.seed,
            comm=self.comm,
            mpi_layout=self.mpi_layout,
            history=history,
            callback=callback,
            e_hf=ham.e_hf,
            e_exact=ham.e_exact,
        )
        return self.result
