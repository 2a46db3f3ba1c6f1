"""Lowest eigenpairs of the Hamiltonian on a product space of alpha x beta strings.

:func:`solve` is the entry point: integrals and strings in, a frozen
:class:`DiagResult` out. Without ``comm`` it runs in one process; with an
mpi4py communicator every rank holds one (alpha block x beta block) tile of
each vector (see :mod:`sqd_suite.diag.distributed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from .davidson import davidson, davidson_memory_bytes
from .distributed import PanelExchange, TileLayout, choose_grid, set_threads_per_rank
from .hamiltonian import SubspaceHamiltonian
from .properties import SpinSquareOperator, largest_determinants, orbital_occupancies, place_determinants

__all__ = ["DiagResult", "solve"]

# Up to this many determinants the Hamiltonian is built densely (one matvec
# per column) and diagonalized with numpy.linalg.eigh: robust for the tiny
# subspaces of early SQD iterations. Above it Davidson's ~10-30 matvecs are
# cheaper than D of them.
DENSE_THRESHOLD = 100


@dataclass(frozen=True)
class DiagResult:
    """Result of :func:`solve`.

    ``ci`` is this rank's tile, rows ``alpha_range`` x columns ``beta_range``,
    of the normalized CI matrix, shape ``(a1 - a0, b1 - b0)``, or
    ``(nroots, a1 - a0, b1 - b0)`` when ``nroots > 1``; its largest entry is
    positive. ``grid`` is the ``(P_a, P_b)`` rank grid. ``occupancies`` and
    ``spin_square`` belong to the lowest root; ``spin_squares`` has one
    value per root. Energies include ``ecore``. ``timings`` holds seconds
    per phase: ``tables``, ``diagonal``, ``sigma``, ``davidson`` (solver
    overhead), ``communication`` (row exchange and reductions),
    ``properties`` and ``total``. ``comm_bytes`` is the number of bytes this
    rank received in panel exchanges.
    """

    energy: float
    energies: np.ndarray
    ci: np.ndarray
    alpha_range: tuple[int, int]
    beta_range: tuple[int, int]
    alpha_strings: np.ndarray
    beta_strings: np.ndarray
    occupancies: tuple[np.ndarray, np.ndarray]
    spin_square: float
    spin_squares: np.ndarray
    n_iter: int
    converged: bool
    n_matvec: int = 0
    residual_norms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grid: tuple[int, int] = (1, 1)
    comm_bytes: int = 0
    memory_bytes: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        """Number of determinants of the subspace."""
        return len(self.alpha_strings) * len(self.beta_strings)


class _Operator:
    """This rank's tile of (H + penalty) x, with the panel exchange and timings."""

    def __init__(
        self,
        ham: SubspaceHamiltonian,
        exchange: PanelExchange | None,
        spin_op: SpinSquareOperator,
        spin_penalty: float,
        spin_target: float,
        quadratic: bool,
    ) -> None:
        self.ham = ham
        self.exchange = exchange
        self.spin_op = spin_op
        self.spin_penalty = spin_penalty
        self.spin_target = spin_target
        self.quadratic = quadratic
        self.tile = ham.tile_shape
        self.sigma_seconds = 0.0

    def _panels(self, x: np.ndarray, apply: Any) -> None:
        """Call ``apply(k, panel)`` on every column panel of the vector whose tile is ``x``."""
        if self.exchange is None:
            apply(0, x.reshape(self.ham.shape))
        else:
            self.exchange.run(x, apply)

    def spin(self, x: np.ndarray) -> np.ndarray:
        """This rank's tile of S^2 x."""
        y = np.empty(self.tile)
        self._panels(x, lambda k, panel: self.spin_op.apply_panel(panel, k, y))
        return y

    def penalty_from(self, x: np.ndarray, s2x: np.ndarray) -> np.ndarray:
        """P x from S^2 x: S^2 x - t x, applied twice for the quadratic penalty."""
        y = s2x - self.spin_target * x.reshape(self.tile)
        if self.quadratic:
            y = self.spin(y) - self.spin_target * y
        return y

    def __call__(self, x: np.ndarray, out: np.ndarray) -> None:
        t0 = time.perf_counter()
        comm0 = self.exchange.seconds if self.exchange is not None else 0.0
        out2 = out.reshape(self.tile)
        s2x = np.empty(self.tile) if self.spin_penalty else None

        def apply(k: int, panel: np.ndarray) -> None:
            self.ham.apply_panel(panel, k, out2)
            if s2x is not None:
                self.spin_op.apply_panel(panel, k, s2x)

        self._panels(x, apply)
        if s2x is not None:
            out2 += self.spin_penalty * self.penalty_from(x, s2x)
        comm1 = self.exchange.seconds if self.exchange is not None else 0.0
        self.sigma_seconds += time.perf_counter() - t0 - (comm1 - comm0)


def _check_strings(strings: np.ndarray, norb: int, n: int, name: str) -> np.ndarray:
    s = np.asarray(strings)
    if s.ndim != 1 or len(s) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of strings")
    s = s.astype(np.int64)
    if np.any(s[1:] <= s[:-1]):
        raise ValueError(f"{name} must be sorted ascending and unique (use numpy.unique)")
    if s[0] < 0 or (norb < 63 and s[-1] >= (1 << norb)):
        raise ValueError(f"{name} has strings outside norb={norb} orbitals")
    if np.any(np.bitwise_count(s) != n):
        raise ValueError(f"{name} must all have {n} electrons")
    return s


def _initial_vectors(
    ci0: Any, alpha: np.ndarray, beta: np.ndarray, tile: tuple[tuple[int, int], tuple[int, int]]
) -> np.ndarray:
    """This rank's tile of the warm-start vectors, shape (k, tile size)."""
    (a0, a1), (b0, b1) = tile
    n_a, n_b = len(alpha), len(beta)
    n_loc = (a1 - a0) * (b1 - b0)
    if ci0 is None:
        return np.zeros((0, n_loc))
    if isinstance(ci0, tuple) and len(ci0) == 3:
        # Determinants: each rank places those of its tile (an all-zero guess is dropped).
        c = place_determinants(ci0, alpha, beta, alpha_range=(a0, a1), beta_range=(b0, b1))
        return c.reshape(1, n_loc)
    c = np.asarray(ci0, dtype=np.float64)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[1:] not in ((n_a, n_b), (a1 - a0, b1 - b0)):
        raise ValueError(
            f"ci0 must have shape ({n_a}, {n_b}) or this rank's tile ({a1 - a0}, {b1 - b0}), "
            f"optionally with a leading root axis; got {np.shape(ci0)}"
        )
    if c.shape[1:] == (n_a, n_b):
        c = c[:, a0:a1, b0:b1]
    return np.ascontiguousarray(c).reshape(len(c), n_loc)


def solve(
    h1: np.ndarray,
    h2: np.ndarray,
    norb: int,
    nelec: tuple[int, int],
    alpha_strings: np.ndarray,
    beta_strings: np.ndarray,
    *,
    ecore: float = 0.0,
    nroots: int = 1,
    tol: float = 1e-8,
    max_iter: int = 200,
    ci0: np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    comm: Any | None = None,
    grid: tuple[int, int] | None = None,
    spin_penalty: float = 0.0,
    spin_target: float | None = None,
    residual_tol: float | None = None,
    max_space: int | None = None,
    dense_threshold: int = DENSE_THRESHOLD,
) -> DiagResult:
    """Lowest ``nroots`` eigenpairs of the Hamiltonian on ``alpha_strings x beta_strings``.

    Args:
        h1: One-electron integrals ``(norb, norb)``.
        h2: Two-electron integrals ``(pq|rs)``, ``(norb,) * 4``.
        norb: Number of spatial orbitals.
        nelec: ``(n_alpha, n_beta)``.
        alpha_strings: Sorted unique int64 alpha strings.
        beta_strings: Sorted unique int64 beta strings.
        ecore: Constant added to the energies.
        nroots: Number of lowest states.
        tol: Convergence threshold: every root's energy changed by less than
            ``tol`` between iterations and its residual norm is below
            ``residual_tol`` (default ``sqrt(tol)``), so energies are good to
            about ``tol``. Use 1e-4..1e-5 in inner loop iterations, 1e-8 at
            the end.
        max_iter: Maximum Davidson iterations.
        ci0: Warm start on the same strings: the full ``(n_a, n_b)`` matrix,
            this rank's tile, or a stack of either for several roots. Map a
            vector from other strings with
            :func:`~sqd_suite.diag.properties.map_ci_vector`; or determinants
            ``(alpha strings, beta strings, coefficients)`` on any strings
            (e.g. :func:`~sqd_suite.diag.properties.largest_determinants` of
            a previous solve), which each rank places in its own tile, so a
            distributed solve never builds the whole vector.
        comm: mpi4py communicator to distribute the vectors over, or None.
        grid: ``(P_a, P_b)`` with ``P_a * P_b`` ranks: alpha blocks x beta
            blocks. Default :func:`~sqd_suite.diag.distributed.choose_grid`:
            alpha rows only (``P_b = 1``) unless a rank's receive buffer would
            outgrow its Davidson vectors (docs/diag.md).
        spin_penalty: lambda in ``H + lambda * P`` with ``P = S^2 - t``, or
            ``(S^2 - t)^2`` when ``spin_target`` exceeds ``Sz(Sz+1)``. Pushes
            up states of the wrong spin; reported energies are ``<H>``.
        spin_target: ``t``, the wanted ``<S^2>``; default ``Sz(Sz+1)`` with
            ``Sz = (n_alpha - n_beta) / 2``, the lowest spin in the sector.
        residual_tol: See ``tol``.
        max_space: Davidson basis size (memory ``2 * max_space`` vectors).
        dense_threshold: Up to this many determinants, diagonalize densely.

    Returns:
        A :class:`DiagResult`; each rank holds its own tile of the vectors.
    """
    t_start = time.perf_counter()
    timings = dict.fromkeys(("tables", "diagonal", "sigma", "davidson", "communication", "properties"), 0.0)
    n_alpha, n_beta = (int(nelec[0]), int(nelec[1]))
    alpha = _check_strings(alpha_strings, norb, n_alpha, "alpha_strings")
    beta = _check_strings(beta_strings, norb, n_beta, "beta_strings")
    h1 = np.asarray(h1, dtype=np.float64)
    h2 = np.asarray(h2, dtype=np.float64)
    if h1.shape != (norb, norb) or h2.shape != (norb,) * 4:
        raise ValueError(f"h1 and h2 must have shapes {(norb, norb)} and {(norb,) * 4}")
    n_a, n_b = len(alpha), len(beta)
    dim = n_a * n_b
    if not 1 <= nroots <= dim:
        raise ValueError(f"nroots must be in [1, {dim}] for this subspace, got {nroots}")
    sz = 0.5 * (n_alpha - n_beta)
    target = sz * (sz + 1.0) if spin_target is None else float(spin_target)
    quadratic = target > sz * (sz + 1.0) + 0.1

    size = 1 if comm is None else comm.Get_size()
    if size > 1:
        set_threads_per_rank(comm)
    dense = dim <= dense_threshold

    t0 = time.perf_counter()
    layout = None
    tile = ((0, n_a), (0, n_b))  # this rank's tile of the returned vectors
    if size > 1:
        grid = choose_grid(size, n_a, n_b) if grid is None else (int(grid[0]), int(grid[1]))
        if grid[0] * grid[1] != size or min(grid) < 1:
            raise ValueError(f"grid {grid} needs {grid[0] * grid[1]} ranks, the communicator has {size}")
        layout = TileLayout.balanced(alpha, beta, norb, grid)
        tile = layout.tile(comm.Get_rank())
    # The tile this rank computes: its own, or everything for a dense solve
    # (tiny, so every rank does it and keeps its tile at the end).
    (a0, a1), (b0, b1) = tile
    if dense or layout is None:
        ranges: dict[str, Any] = {}
    else:
        ranges = {"alpha_range": (a0, a1), "beta_range": (b0, b1), "beta_bounds": layout.beta_bounds}
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, (n_alpha, n_beta), alpha, beta, **ranges)
    spin_op = SpinSquareOperator(alpha, beta, norb, (n_alpha, n_beta), ham.alpha_singles, ham.beta_singles,
                                 **ranges)  # fmt: skip
    exchange = None
    if ranges:
        # S^2 reads a subset of the rows H reads from every panel.
        needed = [ham.needed_alpha_rows(k) for k in range(layout.grid[1])]
        exchange = PanelExchange(comm, layout, needed)
    timings["tables"] = time.perf_counter() - t0
    op = _Operator(ham, exchange, spin_op, float(spin_penalty), target, quadratic)
    n_loc = (a1 - a0) * (b1 - b0)

    if dense:
        theta, vecs, n_iter, n_matvec, conv, rnorm = _dense(op, nroots)
        timings["sigma"] = op.sigma_seconds
        memory = 8 * dim * (2 * dim + 2)
    else:
        t0 = time.perf_counter()
        h_diagonal = np.ascontiguousarray(ham.diagonal(), dtype=np.float64).ravel()
        diagonal = h_diagonal
        if spin_penalty:
            pen_diag = _penalty_diagonal(alpha[a0:a1], beta[b0:b1], sz, target, quadratic)
            diagonal = h_diagonal + spin_penalty * pen_diag
        timings["diagonal"] = time.perf_counter() - t0
        x0 = _initial_vectors(ci0, alpha, beta, tile)
        targeted = quadratic and spin_penalty != 0.0
        res = davidson(op, diagonal, x0, nroots=nroots, tol=tol, residual_tol=residual_tol,
                       max_iter=max_iter, max_space=max_space, comm=comm if size > 1 else None,
                       n_guess=_n_guess(nroots, targeted),
                       guess_diagonal=(h_diagonal, diagonal) if targeted else h_diagonal)  # fmt: skip
        theta, vecs, n_iter, n_matvec = res.eigenvalues, res.vectors, res.n_iter, res.n_matvec
        conv, rnorm = res.converged, res.residual_norms
        timings["sigma"] = op.sigma_seconds
        timings["davidson"] = res.timings["davidson"]
        timings["communication"] = res.timings["communication"]
        memory = davidson_memory_bytes(n_loc, nroots=nroots, max_space=max_space) + 8 * n_loc
        if exchange is not None:
            memory += exchange.buffer_bytes

    # Properties: sign, <S^2>, penalty-free energies, occupancies.
    t0 = time.perf_counter()
    comm_p = comm if exchange is not None else None
    vecs = vecs.reshape((nroots, *op.tile))
    part = {"alpha_range": ham.alpha_range, "beta_range": ham.beta_range, "comm": comm_p}
    s2 = np.empty(nroots)
    energies = np.empty(nroots)
    for k in range(nroots):
        _, _, top = largest_determinants(vecs[k], alpha, beta, 1, **part)
        if top[0] < 0:
            vecs[k] *= -1.0
        s2c = op.spin(vecs[k])
        vals = np.array([np.vdot(vecs[k], s2c), np.vdot(vecs[k], vecs[k]), 0.0])
        if spin_penalty:
            vals[2] = np.vdot(vecs[k], op.penalty_from(vecs[k], s2c))
        if comm_p is not None:
            from mpi4py import MPI

            comm_p.Allreduce(MPI.IN_PLACE, vals, op=MPI.SUM)
        s2[k] = vals[0] / vals[1]
        energies[k] = theta[k] - spin_penalty * vals[2] / vals[1] + ecore
    occ = orbital_occupancies(vecs[0], alpha, beta, norb, **part)
    if dense:
        vecs = vecs[:, a0:a1, b0:b1]
    vecs = np.ascontiguousarray(vecs)
    comm_bytes = 0
    if exchange is not None:
        # Panel exchanges of the Davidson matvecs and of the properties above.
        timings["communication"] += exchange.seconds
        comm_bytes = exchange.bytes_received
        exchange.free()
    timings["properties"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    return DiagResult(
        energy=float(energies[0]),
        energies=energies,
        ci=vecs[0] if nroots == 1 else vecs,
        alpha_range=(a0, a1),
        beta_range=(b0, b1),
        alpha_strings=alpha,
        beta_strings=beta,
        occupancies=occ,
        spin_square=float(s2[0]),
        spin_squares=s2,
        n_iter=n_iter,
        converged=bool(conv),
        n_matvec=n_matvec,
        residual_norms=np.asarray(rnorm),
        grid=layout.grid if layout is not None else (1, 1),
        comm_bytes=comm_bytes,
        memory_bytes=int(memory),
        timings=timings,
    )


def _n_guess(nroots: int, targeted_spin: bool) -> int:
    # One guess finds the ground state; for excited states, extra guesses make
    # it likely that every symmetry among the low roots is represented (the
    # diagonal preconditioner never mixes in a symmetry absent from the
    # guesses). The same holds when a spin above the lowest is targeted: the
    # wanted state need not share the symmetry of the lowest determinant.
    # A targeted spin takes as many again from the penalized diagonal (open-shell
    # determinants of the wanted spin, the H-ranked ones being mostly closed
    # shells): with only H-ranked guesses a triplet of another spatial symmetry
    # than the lowest determinants was missed (tests/diag/test_mpi.py).
    base = nroots if nroots == 1 and not targeted_spin else 2 * nroots + 2
    return 2 * base if targeted_spin else base


def _penalty_diagonal(
    alpha: np.ndarray, beta: np.ndarray, sz: float, target: float, quadratic: bool
) -> np.ndarray:
    """Diagonal of P: <S^2>_det = Sz(Sz+1) + #(beta electrons in orbitals empty in alpha)."""
    d = sz * (sz + 1.0) + np.bitwise_count(beta[None, :] & ~alpha[:, None]).astype(np.float64) - target
    # (S^2 - t)^2 has diagonal >= d^2; d^2 is the usual cheap stand-in.
    return (d * d if quadratic else d).ravel()


def _dense(op: _Operator, nroots: int) -> tuple[np.ndarray, np.ndarray, int, int, bool, np.ndarray]:
    """Build (H + penalty) column by column and diagonalize it with eigh."""
    dim = op.tile[0] * op.tile[1]
    mat = np.empty((dim, dim))
    e = np.zeros(dim)
    # Tiny matvecs: starting threads for each would cost more than the work.
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for j in range(dim):
            # Row j of a symmetric operator is its column j, and rows are contiguous.
            e[j] = 1.0
            op(e, mat[j])
            e[j] = 0.0
    finally:
        numba.set_num_threads(threads)
    mat = 0.5 * (mat + mat.T)
    w, v = np.linalg.eigh(mat)
    return w[:nroots], np.ascontiguousarray(v[:, :nroots].T), 1, dim, True, np.zeros(nroots)

