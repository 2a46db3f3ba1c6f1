"""MPI distribution of the CI vector over a P_a x P_b grid of (alpha block x beta block) tiles.

Rank ``r = I * P_b + J`` owns the tile ``C[A_I, B_J]`` of every Davidson
vector, where the alpha blocks ``A_I`` and beta blocks ``B_J`` are contiguous
string ranges of equal work (prefix sums of :func:`alpha_work_weights`, for
beta with the spins swapped). Its sigma reads *panels*, the column blocks
``C[:, B_K]``, one at a time (:class:`PanelExchange`): round ``s`` brings
panel ``K = (J + s) mod P_b``, and from it only the rows the tile reads
(:meth:`SubspaceHamiltonian.needed_alpha_rows`), received straight into a
panel buffer with MPI derived datatypes (no packing copies). The next
panel's receives are posted before the current one is computed on.

Bytes received per sigma by rank (I, J): ``8 * sum_K |B_K| * |N_K|``, with
``N_K`` the rows panel K must supply (the tile's rows and their single
excitations; for ``K = J`` also the doubles, and there the tile's own rows
are copied, not received). Sampled strings have no
locality, so ``N_K`` is nearly every row and the total is about
``8 D (P - 1)``, whatever the grid; what the grid changes is the receive
memory per rank: one ``8 D`` buffer for ``P_b = 1`` (the alpha-row layout),
two panel buffers of ``8 n_a |B_K|`` bytes otherwise (``16 D / P_b``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .strings import occupation_lists

__all__ = [
    "PanelExchange",
    "TileLayout",
    "alpha_work_weights",
    "choose_grid",
    "excitation_counts",
    "matvec_by_panels",
    "partition_rows",
    "receive_buffer_bytes",
    "resolve_panels",
    "set_threads_per_rank",
]


def _hole_counts(strings: np.ndarray, norb: int, nremove: int) -> np.ndarray:
    """For every string, the sum over its (N - nremove)-electron sub-strings h of (#strings containing h) - 1."""
    n = len(strings)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    nel = int(np.bitwise_count(strings[0]))
    if nel < nremove:
        return np.zeros(n, dtype=np.int64)
    bits = np.int64(1) << occupation_lists(strings, norb, nel).astype(np.int64)
    if nremove == 1:
        keys = strings[:, None] ^ bits
    else:
        i, j = np.triu_indices(nel, 1)
        keys = strings[:, None] ^ bits[:, i] ^ bits[:, j]
    _, inverse, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
    return (counts[inverse].reshape(keys.shape) - 1).sum(axis=1)


def excitation_counts(strings: np.ndarray, norb: int) -> tuple[np.ndarray, np.ndarray]:
    """In-set single and double excitation counts of every string.

    Two strings one excitation apart share exactly N - 1 electrons, two
    excitations apart exactly N - 2: counting strings per hole string gives
    both without an O(n^2) scan (double holes also see each single partner
    N - 1 times, which is subtracted).
    """
    strings = np.asarray(strings, dtype=np.int64)
    s = _hole_counts(strings, norb, 1)
    nel = int(np.bitwise_count(strings[0])) if len(strings) else 0
    d = _hole_counts(strings, norb, 2) - (nel - 1) * s if nel >= 2 else np.zeros_like(s)
    return s, d


def alpha_work_weights(
    alpha_strings: np.ndarray, beta_strings: np.ndarray, norb: int, *, diagonal: bool = True
) -> np.ndarray:
    """Multiply-adds of one sigma per alpha row (diag-design.md's W, split by row).

    Swap the arguments for the work per beta column (the formula is symmetric).

    ``s_a(a) * sum_b s_b + n_b * (s_a(a) + d_a(a)) + sum_b (s_b + d_b)``:
    alpha-beta, alpha-alpha and beta-beta terms, plus ``n_b`` for the diagonal
    when ``diagonal`` (for load balancing; W itself counts no diagonal).
    Counted from hole strings, without building excitation tables.
    """
    s_a, d_a = excitation_counts(alpha_strings, norb)
    s_b, d_b = excitation_counts(beta_strings, norb)
    n_b = len(beta_strings)
    return (
        s_a * float(s_b.sum())
        + n_b * (s_a + d_a).astype(np.float64)
        + float((s_b + d_b).sum())
        + (n_b if diagonal else 0)
    )


def partition_rows(weights: np.ndarray, nparts: int) -> np.ndarray:
    """Boundaries ``(nparts + 1,)`` cutting rows into contiguous blocks of about equal total weight."""
    n = len(weights)
    prefix = np.concatenate([[0.0], np.cumsum(np.asarray(weights, dtype=np.float64))])
    targets = prefix[-1] * np.arange(1, nparts) / nparts
    cuts = np.searchsorted(prefix, targets)
    # Move each cut to whichever neighbouring row boundary is closer to its target.
    lower = np.maximum(cuts - 1, 0)
    closer = np.abs(prefix[lower] - targets) <= np.abs(prefix[np.minimum(cuts, n)] - targets)
    cuts = np.where(closer, lower, cuts)
    bounds = np.concatenate([[0], cuts, [n]]).astype(np.int64)
    return np.maximum.accumulate(np.minimum(bounds, n))


def choose_grid(size: int, n_a: int, n_b: int, *, doubles_per_det: int = 26) -> tuple[int, int]:
    """The (P_a, P_b) grid for ``size`` ranks: the fastest whose receive buffers fit beside the vectors.

    Candidates are the divisors P_b of ``size`` (at most ``n_b``) for which
    :func:`receive_buffer_bytes` is no more than the rank's Davidson vectors,
    ``8 * doubles_per_det * D / size`` (26: the default basis of 10, see
    docs/diag.md), so memory per rank falls as ``1 / size``. Among them the
    one nearest ``sqrt(size) / 2`` (ties: the larger), measured fastest
    (``bench/diag.py --tiles``): many alpha blocks leave a rank too few alpha
    rows to fill the K-wide buckets, many beta blocks spread a column's beta
    links over many panels, each paying a gather and a scatter.
    """
    budget = 8.0 * doubles_per_det * float(n_a) * n_b / size
    divisors = [d for d in range(1, size + 1) if size % d == 0 and d <= max(1, n_b)]
    fits = [d for d in divisors if receive_buffer_bytes(n_a, n_b, d) <= budget] or [divisors[-1]]
    target = math.sqrt(size) / 2
    p_b = min(fits, key=lambda d: (abs(math.log(d / target)), -d))
    return size // p_b, p_b


def receive_buffer_bytes(n_a: int, n_b: int, p_b: int) -> int:
    """Worst-case bytes a rank receives into per sigma: ``8 D`` for ``P_b = 1``, two panels ``16 n_a |B_K|`` otherwise."""
    if p_b == 1:
        return 8 * n_a * n_b
    return 16 * n_a * -(-n_b // p_b)


def resolve_panels(
    n_b: int, beta_range: tuple[int, int] | None, beta_bounds: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """(column panel bounds, index of the panel that is ``beta_range``), checked.

    Without ``beta_bounds`` the panels are the cuts at ``beta_range``
    (default: one panel of all columns).
    """
    b0, b1 = (0, n_b) if beta_range is None else (int(beta_range[0]), int(beta_range[1]))
    if not 0 <= b0 <= b1 <= n_b:
        raise ValueError(f"beta_range {beta_range} outside 0..{n_b}")
    if beta_bounds is None:
        bounds = np.unique(np.array([0, b0, b1, n_b], dtype=np.int64))
        if b0 == b1:  # an empty tile still needs a panel of its own
            bounds = np.sort(np.concatenate([bounds, [b0]]))
    else:
        bounds = np.asarray(beta_bounds, dtype=np.int64)
        if bounds.ndim != 1 or bounds.size < 2 or bounds[0] != 0 or bounds[-1] != n_b or np.any(np.diff(bounds) < 0):
            raise ValueError(f"beta_bounds must rise from 0 to {n_b}, got {beta_bounds}")
    hits = np.flatnonzero((bounds[:-1] == b0) & (bounds[1:] == b1))
    if hits.size == 0:
        raise ValueError(f"beta_range {(b0, b1)} is not one of the panels {bounds.tolist()}")
    return bounds, int(hits[0])


def panel_order(n_panels: int, own: int) -> list[int]:
    """The order panels are applied in: the own panel (it assigns), then the following ones cyclically."""
    return [(own + s) % n_panels for s in range(n_panels)]


def matvec_by_panels(op: Any, c: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``op``'s tile of ``op c`` for the full vector ``c``, applying one column panel at a time."""
    n_b = c.shape[1]
    bounds = op.beta_bounds
    for k in panel_order(bounds.size - 1, op.own_panel):
        c0, c1 = int(bounds[k]), int(bounds[k + 1])
        op.apply_panel(c if (c0, c1) == (0, n_b) else np.ascontiguousarray(c[:, c0:c1]), k, out)
    return out


@dataclass(frozen=True)
class TileLayout:
    """Which tile of the ``(n_a, n_b)`` CI matrix each rank owns: rank ``I * P_b + J`` has ``A_I x B_J``."""

    alpha_bounds: np.ndarray  # (P_a + 1,)
    beta_bounds: np.ndarray  # (P_b + 1,)

    @classmethod
    def balanced(
        cls, alpha_strings: np.ndarray, beta_strings: np.ndarray, norb: int, grid: tuple[int, int]
    ) -> TileLayout:
        """Blocks of equal work along each spin (prefix sums of the per-string work)."""
        p_a, p_b = int(grid[0]), int(grid[1])
        a = partition_rows(alpha_work_weights(alpha_strings, beta_strings, norb), p_a)
        b = partition_rows(alpha_work_weights(beta_strings, alpha_strings, norb), p_b)
        return cls(a, b)

    @property
    def grid(self) -> tuple[int, int]:
        return self.alpha_bounds.size - 1, self.beta_bounds.size - 1

    def coords(self, rank: int) -> tuple[int, int]:
        """(I, J) of a rank."""
        return divmod(rank, self.grid[1])

    def rank_of(self, i: int, j: int) -> int:
        return i * self.grid[1] + j

    def tile(self, rank: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(alpha range, beta range) of a rank's tile."""
        i, j = self.coords(rank)
        a, b = self.alpha_bounds, self.beta_bounds
        return (int(a[i]), int(a[i + 1])), (int(b[j]), int(b[j + 1]))


class PanelExchange:
    """Delivers, once per sigma, the column panels a rank's tile reads, own panel first.

    Built collectively from ``needed[K]``, the sorted global alpha rows of
    panel ``K`` the tile reads (empty: panel not read). :meth:`run` calls
    ``apply(K, panel)`` for every panel read, ``panel`` being an
    ``(n_a, |B_K|)`` buffer with those rows filled. Counts bytes and the
    seconds spent outside ``apply``.
    """

    def __init__(self, comm: Any, layout: TileLayout, needed: list[np.ndarray]) -> None:
        from mpi4py import MPI

        self.comm = comm
        self.layout = layout
        rank, size = comm.Get_rank(), comm.Get_size()
        p_a, p_b = layout.grid
        if p_a * p_b != size:
            raise ValueError(f"grid {layout.grid} does not match {size} ranks")
        self.j = layout.coords(rank)[1]  # this rank's grid column: its own panel
        (self.a0, self.a1), (self.b0, self.b1) = layout.tile(rank)
        n_a = self._n_a = int(layout.alpha_bounds[-1])
        widths = np.diff(layout.beta_bounds)
        needed = [np.unique(np.asarray(rows, dtype=np.int64)) for rows in needed]
        # Rows each rank must send us; our own rows of our own panel are copied, not sent.
        recv_rows = [np.zeros(0, dtype=np.int64) for _ in range(size)]
        for k in range(p_b):
            owner_i = np.searchsorted(layout.alpha_bounds, needed[k], side="right") - 1
            for i in np.unique(owner_i):
                r = layout.rank_of(int(i), k)
                if r != rank:
                    recv_rows[r] = needed[k][owner_i == i]
        send_rows = comm.alltoall(recv_rows)
        self._needed = [len(rows) > 0 for rows in needed]
        self._rounds: list[tuple[int, list[tuple[int, Any]], list[tuple[int, Any]]]] = []
        self._types: list[Any] = []
        own_row = self._row_type(MPI, int(widths[self.j]))
        for s in range(p_b):
            k = (self.j + s) % p_b  # the panel we receive in round s
            row_k = self._row_type(MPI, int(widths[k]))
            recvs = [
                (r, self._commit(row_k.Create_indexed_block(1, recv_rows[r].tolist())))
                for r in (layout.rank_of(i, k) for i in range(p_a))
                if len(recv_rows[r])
            ]
            # The ranks that read our panel J in round s sit in grid column (J - s) mod P_b.
            sends = [
                (r, self._commit(own_row.Create_indexed_block(1, (np.asarray(send_rows[r]) - self.a0).tolist())))
                for r in (layout.rank_of(i, (self.j - s) % p_b) for i in range(p_a))
                if len(send_rows[r])
            ]
            self._rounds.append((k, recvs, sends))
        self.bytes_per_sigma = int(sum(8 * len(recv_rows[r]) * widths[layout.coords(r)[1]] for r in range(size)))
        width = int(widths.max(initial=0))
        self._buffers = [np.zeros(n_a * (int(widths[0]) if p_b == 1 else width)) for _ in range(min(p_b, 2))]
        # Resident bytes: only rows ever received or copied touch their pages.
        self.buffer_bytes = int(min(
            sum(b.nbytes for b in self._buffers),
            8 * sum(len(needed[k]) * widths[k] for k in range(p_b)),
        ))  # fmt: skip
        self.bytes_received = 0
        self.seconds = 0.0

    def _row_type(self, mpi: Any, width: int) -> Any:
        return self._commit(mpi.DOUBLE.Create_contiguous(width))

    def _commit(self, datatype: Any) -> Any:
        self._types.append(datatype)
        return datatype.Commit()

    def _panel(self, s: int) -> np.ndarray:
        """The (n_a, |B_K|) view of round s's buffer (rounds alternate between two buffers)."""
        k = self._rounds[s][0]
        width = int(self.layout.beta_bounds[k + 1] - self.layout.beta_bounds[k])
        return self._buffers[s % len(self._buffers)][: self._n_a * width].reshape(self._n_a, width)

    def _post_receives(self, s: int) -> list[Any]:
        panel = self._panel(s)
        return [self.comm.Irecv([panel, 1, t], source=r, tag=11) for r, t in self._rounds[s][1]]

    def run(self, block: np.ndarray, apply: Any) -> None:
        """Call ``apply(K, panel)`` for each panel the tile reads, own panel first; ``block`` is this rank's tile."""
        from mpi4py import MPI

        t0 = time.perf_counter()
        inside = 0.0
        block = np.ascontiguousarray(block).reshape(self.a1 - self.a0, self.b1 - self.b0)
        # The tile is read-only until every send completes, so all rounds' sends go out now.
        sends = [self.comm.Isend([block, 1, t], dest=r, tag=11) for _, _, snd in self._rounds for r, t in snd]
        pending = self._post_receives(0)
        for s, (k, _, _) in enumerate(self._rounds):
            following = self._post_receives(s + 1) if s + 1 < len(self._rounds) else []
            MPI.Request.Waitall(pending)
            pending = following
            panel = self._panel(s)
            if s == 0:
                panel[self.a0 : self.a1] = block
            if s == 0 or self._needed[k]:
                t1 = time.perf_counter()
                apply(k, panel)
                inside += time.perf_counter() - t1
        MPI.Request.Waitall(sends)
        self.bytes_received += self.bytes_per_sigma
        self.seconds += time.perf_counter() - t0 - inside

    def free(self) -> None:
        for t in self._types:
            t.Free()
        self._types, self._rounds = [], []


def set_threads_per_rank(comm: Any) -> int:
    """Give each rank on a node an equal share of the node's cores for numba; returns the count.

    Ranks times threads must not exceed the cores, or the sigma kernels
    oversubscribe and run slower than with fewer ranks.
    """
    import numba
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    local = node.Get_size()
    node.Free()
    cores = len(os.sched_getaffinity(0))
    n = max(1, min(numba.config.NUMBA_NUM_THREADS, cores // local))
    numba.set_num_threads(n)
    return n
