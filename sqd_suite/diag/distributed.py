"""MPI distribution of the CI vector by blocks of alpha rows.

Rank ``r`` owns rows ``bounds[r]:bounds[r+1]`` of the ``(n_a, n_b)`` CI matrix
of every Davidson vector. Before each sigma it receives, from the ranks that
own them, the rows its ``SubspaceHamiltonian`` reads
(``needed_alpha_rows``) straight into a full-shape buffer with MPI derived
datatypes (no packing copies). The buffer is allocated with ``numpy.zeros``,
so rows never received are never touched and cost no physical memory.

Bytes received per sigma by rank r: ``8 * n_b * |needed_r \\ own_r|``; summed
over ranks at most ``8 * D * (P - 1)`` (every rank reads every row), much less
when the single and double excitations of a block stay near it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from .strings import occupation_lists

__all__ = [
    "BlockLayout",
    "RowExchange",
    "alpha_work_weights",
    "partition_rows",
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


class BlockLayout:
    """Which alpha rows each rank owns."""

    def __init__(self, bounds: np.ndarray, n_b: int) -> None:
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.n_b = n_b

    @property
    def nparts(self) -> int:
        return len(self.bounds) - 1

    def range(self, rank: int) -> tuple[int, int]:
        return int(self.bounds[rank]), int(self.bounds[rank + 1])

    def owner(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.bounds, rows, side="right") - 1


class RowExchange:
    """Fills the rows a rank's sigma reads into a full-shape buffer, once per sigma.

    Built collectively from each rank's sorted ``needed`` global row indices.
    ``gather(block)`` returns the ``(n_a, n_b)`` buffer with this rank's block
    and every needed row filled in. Counts bytes and seconds.
    """

    def __init__(self, comm: Any, layout: BlockLayout, needed: np.ndarray, n_a: int) -> None:
        from mpi4py import MPI

        self.comm = comm
        self.layout = layout
        rank, size = comm.Get_rank(), comm.Get_size()
        self.a0, self.a1 = layout.range(rank)
        n_b = layout.n_b
        needed = np.unique(np.asarray(needed, dtype=np.int64))
        remote = needed[(needed < self.a0) | (needed >= self.a1)]
        owners = layout.owner(remote)
        recv_rows = [remote[owners == r] for r in range(size)]
        # Tell every owner which of its rows we read.
        send_rows = comm.alltoall(recv_rows)
        self.full = np.zeros((n_a, n_b))
        self._row = MPI.DOUBLE.Create_contiguous(n_b).Commit()
        self._recv: list[tuple[int, Any]] = []
        self._send: list[tuple[int, Any]] = []
        for r in range(size):
            if len(recv_rows[r]):
                t = self._row.Create_indexed_block(1, recv_rows[r].tolist()).Commit()
                self._recv.append((r, t))
            if len(send_rows[r]):
                t = self._row.Create_indexed_block(1, (np.asarray(send_rows[r]) - self.a0).tolist()).Commit()
                self._send.append((r, t))
        self.rows_received = int(len(remote))
        self.bytes_per_gather = 8 * n_b * self.rows_received
        self.bytes_received = 0
        self.seconds = 0.0

    def gather(self, block: np.ndarray) -> np.ndarray:
        from mpi4py import MPI

        t0 = time.perf_counter()
        block = np.ascontiguousarray(block).reshape(self.a1 - self.a0, self.layout.n_b)
        reqs = [self.comm.Irecv([self.full, 1, t], source=r, tag=7) for r, t in self._recv]
        reqs += [self.comm.Isend([block, 1, t], dest=r, tag=7) for r, t in self._send]
        self.full[self.a0 : self.a1] = block
        MPI.Request.Waitall(reqs)
        self.bytes_received += self.bytes_per_gather
        self.seconds += time.perf_counter() - t0
        return self.full

    def free(self) -> None:
        for _, t in self._recv + self._send:
            t.Free()
        self._row.Free()
        self._recv, self._send = [], []


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
