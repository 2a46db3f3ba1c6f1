"""Measured bitstrings as unique outcomes plus counts.

Bitstring convention (the one place it is defined, shared with
qiskit-addon-sqd): a bitstring has ``2*norb`` bits. As a bool matrix (rows =
outcomes, columns = bits) column ``j`` holds qubit ``2*norb-1-j``; qubits
``0..norb-1`` are alpha orbitals ``0..norb-1`` and qubits ``norb..2*norb-1``
are beta orbitals. A row reads ``[b_{N-1} ... b_0 a_{N-1} ... a_0]``: beta
half on the left, alpha half on the right, each little-endian. As text (counts
keys) it is the same sequence of ``0``/``1`` characters, which is also what
Qiskit's ``BitArray.get_counts()`` returns for a ``measure_all()`` circuit.

Rows of a :class:`Samples` are unique and sorted by the bitstring read as a
binary number, so equal sample sets compare equal row by row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Samples"]


def _ints_to_matrix(keys: np.ndarray, width: int) -> np.ndarray:
    """uint64 keys (bit i = qubit i) to the bool matrix convention (width <= 64)."""
    as_bytes = np.ascontiguousarray(keys, dtype=">u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1, bitorder="big")[:, 64 - width :].astype(bool)


def _matrix_to_ints(matrix: np.ndarray) -> np.ndarray:
    """Bool matrix (width <= 64) to uint64 keys, bit i = qubit i."""
    n, width = matrix.shape
    packed = np.packbits(matrix, axis=1, bitorder="big")  # left-aligned in ceil(width/8) bytes
    buf = np.zeros((n, 8), dtype=np.uint8)
    buf[:, : packed.shape[1]] = packed
    return buf.view(">u8").ravel().astype(np.uint64) >> np.uint64(64 - width)


def _unique_rows(matrix: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of a bool matrix sorted as binary numbers, with summed weights."""
    n, width = matrix.shape
    if weights is None:
        weights = np.ones(n, dtype=np.int64)
    if n == 0:
        return np.zeros((0, width), dtype=bool), np.zeros(0, dtype=np.int64)
    if width <= 64:
        keys = _matrix_to_ints(matrix)
        uniq, inverse = np.unique(keys, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
        return _ints_to_matrix(uniq, width), np.rint(counts).astype(np.int64)
    # Wider than one word: pad on the left to whole bytes so byte order is numeric order.
    pad = (-width) % 8
    padded = np.zeros((n, width + pad), dtype=bool)
    padded[:, pad:] = matrix
    packed = np.ascontiguousarray(np.packbits(padded, axis=1, bitorder="big"))
    void = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    uniq, first, inverse = np.unique(void, return_index=True, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
    return matrix[first].copy(), np.rint(counts).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Samples:
    """Unique measured bitstrings with their counts.

    Attributes:
        bitstrings: bool matrix (n_unique, 2*norb), qiskit-addon-sqd column
            convention (see the module docstring).
        counts: int64 (n_unique,), each >= 1.
        norb: spatial orbitals; the bitstring width is ``2*norb``.
        metadata: JSON-serialisable facts about the sampling (sampler kind,
            backend, job ids, transpile stats, ...).
    """

    bitstrings: np.ndarray
    counts: np.ndarray
    norb: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b = np.asarray(self.bitstrings, dtype=bool)
        c = np.asarray(self.counts, dtype=np.int64)
        if b.ndim != 2 or b.shape[1] != 2 * self.norb:
            raise ValueError(f"bitstrings must have shape (n, {2 * self.norb}) for norb={self.norb}, got {b.shape}")
        if c.shape != (b.shape[0],):
            raise ValueError(f"counts must have shape ({b.shape[0]},), got {c.shape}")
        if c.size and c.min() < 1:
            raise ValueError("counts must be positive")
        object.__setattr__(self, "bitstrings", b)
        object.__setattr__(self, "counts", c)

    @property
    def shots(self) -> int:
        return int(self.counts.sum())

    @property
    def n_unique(self) -> int:
        return int(self.counts.size)

    @property
    def n_bits(self) -> int:
        return 2 * self.norb

    @property
    def probabilities(self) -> np.ndarray:
        """Empirical probability of each unique bitstring (what recovery takes)."""
        return self.counts / max(self.shots, 1)

    @staticmethod
    def from_bitstring_matrix(
        matrix: np.ndarray,
        norb: int,
        *,
        counts: np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Samples:
        """From a bool matrix of shots (or outcomes with ``counts``); duplicates are aggregated."""
        matrix = np.asarray(matrix, dtype=bool)
        if matrix.ndim != 2 or matrix.shape[1] != 2 * norb:
            raise ValueError(f"bitstring matrix must have shape (n, {2 * norb}) for norb={norb}, got {matrix.shape}")
        weights = None if counts is None else np.asarray(counts, dtype=np.int64)
        if weights is not None:
            keep = weights > 0
            matrix, weights = matrix[keep], weights[keep]
        uniq, agg = _unique_rows(matrix, weights)
        return Samples(uniq, agg, norb, dict(metadata or {}))

    @staticmethod
    def from_counts(
        counts: Mapping[str, int], norb: int, *, metadata: dict[str, Any] | None = None
    ) -> Samples:
        """From ``{"0101...": n}`` (text keys in the module's convention)."""
        keys = list(counts)
        width = 2 * norb
        if not keys:
            return Samples(np.zeros((0, width), dtype=bool), np.zeros(0, dtype=np.int64), norb, dict(metadata or {}))
        bad = next((k for k in keys if len(k) != width), None)
        if bad is not None:
            raise ValueError(f"bitstring {bad[:80]!r} has {len(bad)} bits, expected {width} (2*norb)")
        raw = np.frombuffer("".join(keys).encode("ascii"), dtype=np.uint8).reshape(len(keys), width)
        if not np.all((raw == ord("0")) | (raw == ord("1"))):
            raise ValueError("bitstrings may contain only the characters 0 and 1")
        values = np.fromiter((counts[k] for k in keys), dtype=np.int64, count=len(keys))
        return Samples.from_bitstring_matrix(raw == ord("1"), norb, counts=values, metadata=metadata)

    def to_counts(self) -> dict[str, int]:
        """``{"0101...": n}`` in the module's convention."""
        if self.n_unique == 0:
            return {}
        text = np.where(self.bitstrings, ord("1"), ord("0")).astype(np.uint8).tobytes().decode("ascii")
        w = self.n_bits
        return {text[i * w : (i + 1) * w]: int(c) for i, c in enumerate(self.counts)}

    def to_shot_matrix(self) -> np.ndarray:
        """One row per shot (rows of each outcome repeated, in the sorted order)."""
        return np.repeat(self.bitstrings, self.counts, axis=0)

    def alpha_beta_strings(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row alpha and beta occupation strings as int64 (bit p = orbital p); norb <= 63."""
        if self.norb > 63:
            raise ValueError("alpha/beta strings as int64 need norb <= 63")
        n = self.norb
        beta = _matrix_to_ints(self.bitstrings[:, :n]).astype(np.int64) if n else np.zeros(self.n_unique, np.int64)
        alpha = _matrix_to_ints(self.bitstrings[:, n:]).astype(np.int64) if n else np.zeros(self.n_unique, np.int64)
        return alpha, beta

    def merge(self, other: Samples) -> Samples:
        """Both sample sets pooled (counts of equal bitstrings added)."""
        if other.norb != self.norb:
            raise ValueError(f"cannot merge samples of norb={self.norb} and norb={other.norb}")
        matrix = np.concatenate([self.bitstrings, other.bitstrings])
        counts = np.concatenate([self.counts, other.counts])
        return Samples.from_bitstring_matrix(matrix, self.norb, counts=counts, metadata=self.metadata)

    def save_to_h5(self, group: Any) -> None:
        """Write into an h5py group: packed bits, counts, norb and metadata (JSON)."""
        pad = (-self.n_bits) % 8
        padded = np.zeros((self.n_unique, self.n_bits + pad), dtype=bool)
        padded[:, pad:] = self.bitstrings
        packed = np.packbits(padded, axis=1, bitorder="big")
        opts: dict[str, Any] = {"compression": "gzip", "compression_opts": 4} if self.n_unique > 1024 else {}
        for name in ("bitstrings_packed", "counts"):
            if name in group:
                del group[name]
        group.create_dataset("bitstrings_packed", data=packed, **opts)
        group.create_dataset("counts", data=self.counts, **opts)
        group.attrs["norb"] = self.norb
        group.attrs["n_bits"] = self.n_bits
        group.attrs["convention"] = "qiskit-addon-sqd: column j = qubit 2*norb-1-j; packed big-endian, left-padded"
        group.attrs["metadata"] = json.dumps(self.metadata, default=_json_default)

    @staticmethod
    def from_h5(group: Any) -> Samples:
        """Read what :meth:`save_to_h5` wrote."""
        norb = int(group.attrs["norb"])
        n_bits = 2 * norb
        packed = np.asarray(group["bitstrings_packed"][()], dtype=np.uint8)
        pad = (-n_bits) % 8
        bits = np.unpackbits(packed, axis=1, bitorder="big").astype(bool)
        bits = bits[:, pad : pad + n_bits] if packed.size else np.zeros((0, n_bits), dtype=bool)
        metadata = json.loads(group.attrs.get("metadata", "{}"))
        return Samples(bits, np.asarray(group["counts"][()], dtype=np.int64), norb, metadata)

    def summary(self) -> dict[str, Any]:
        """Scalars for logs and tables: shots, unique outcomes, distinct alpha/beta halves."""
        n = self.norb
        halves = [
            _unique_rows(self.bitstrings[:, n:])[0].shape[0],
            _unique_rows(self.bitstrings[:, :n])[0].shape[0],
        ]
        return {
            "shots": self.shots,
            "n_unique": self.n_unique,
            "n_unique_alpha": int(halves[0]),
            "n_unique_beta": int(halves[1]),
        }


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
