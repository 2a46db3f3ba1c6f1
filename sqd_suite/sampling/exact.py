"""Exact sampling of the ansatz state vector with ffsim, plus a global depolarizing stand-in.

The state vector lives in the (n_alpha, n_beta) sector (ffsim's
``dim_a * dim_b`` vector), so its size is ``16 * C(norb, n_a) * C(norb, n_b)``
bytes. Shots are drawn as one multinomial over that vector (O(dim), not
O(shots)), then a binomial fraction ``global_depolarizing`` of the shots is
replaced by uniformly random ``2*norb``-bit strings, as ffsim's
``FfsimSampler(global_depolarizing=p)`` does. Noiseless samples of a
CCSD-initialised LUCJ are nearly all Hartree-Fock; the depolarizing fraction
is a cheap stand-in for hardware noise that widens the sampled subspace.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from pyscf.fci import cistring

from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling.samples import Samples, _ints_to_matrix, _unique_rows

if TYPE_CHECKING:
    from sqd_suite.circuits import LUCJAnsatz

__all__ = ["exact_memory_bytes", "sample_exact", "uniform_bitstrings"]

# Peak during ffsim's apply_unitary is about 4 vectors (measured with
# tracemalloc: input + 3 work arrays), plus the float64 probabilities.
_PEAK_VECTORS = 4.5


def exact_memory_bytes(norb: int, nelec: tuple[int, int]) -> int:
    """Estimated peak bytes of exact sampling: state vector and work arrays."""
    dim = math.comb(norb, nelec[0]) * math.comb(norb, nelec[1])
    return int(_PEAK_VECTORS * 16 * dim)


def _check_memory(norb: int, nelec: tuple[int, int], max_memory_gb: float) -> None:
    need = exact_memory_bytes(norb, nelec)
    if need > max_memory_gb * 1e9:
        dim = math.comb(norb, nelec[0]) * math.comb(norb, nelec[1])
        raise SQDInputError(
            "sampler.max_memory_gb",
            f"exact sampling of {2 * norb} qubits with nelec={nelec} needs a state vector of "
            f"{dim:.3g} amplitudes ({16 * dim / 1e9:.3g} GB; about {need / 1e9:.3g} GB at peak), "
            f"above the limit of {max_memory_gb:g} GB",
            fix="raise sampler.max_memory_gb if the machine has the memory, use a smaller active space, "
            "or sample on hardware (sampler.kind: ibm_runtime or qrmi)",
        )


def _uniform_keys(n_shots: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random ``width``-bit strings (width <= 64) as uint64 keys, bit i = qubit i."""
    keys = rng.integers(0, np.iinfo(np.uint64).max, size=n_shots, dtype=np.uint64, endpoint=True)
    if width < 64:
        keys &= np.uint64((1 << width) - 1)
    return keys


def uniform_bitstrings(
    n_shots: int, norb: int, *, seed: np.random.Generator | int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``n_shots`` uniformly random ``2*norb``-bit strings, aggregated to (unique matrix, counts)."""
    rng = np.random.default_rng(seed)
    width = 2 * norb
    if n_shots == 0:
        return np.zeros((0, width), dtype=bool), np.zeros(0, dtype=np.int64)
    if width <= 64:
        uniq, counts = np.unique(_uniform_keys(n_shots, width, rng), return_counts=True)
        return _ints_to_matrix(uniq, width), counts.astype(np.int64)
    # Wide strings: draw in chunks so the bool matrix never holds all shots at once.
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    chunk = max(1, 2**24 // width)
    for start in range(0, n_shots, chunk):
        m = min(chunk, n_shots - start)
        parts.append(_unique_rows(rng.integers(0, 2, size=(m, width), dtype=np.uint8).astype(bool)))
    matrix = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    return _unique_rows(matrix, counts)


def _state_probabilities(ansatz: LUCJAnsatz) -> np.ndarray:
    vec = ansatz.state_vector()
    probs = np.abs(vec) ** 2
    del vec
    probs /= probs.sum()
    return probs


def sample_exact(
    ansatz: LUCJAnsatz,
    shots: int,
    settings: SamplerConfig | None = None,
    *,
    seed: np.random.Generator | int | None,
) -> Samples:
    """Sample ``shots`` bitstrings from the exact ansatz state (with optional depolarizing noise)."""
    settings = settings or SamplerConfig()
    norb, nelec = ansatz.norb, ansatz.nelec
    _check_memory(norb, nelec, settings.max_memory_gb)
    if norb > 32:
        # Bitstrings are aggregated as one 64-bit word each.
        raise SQDInputError("sampler.kind", f"exact sampling supports norb <= 32, got {norb}", fix="use a hardware sampler")
    rng = np.random.default_rng(seed)
    p = settings.global_depolarizing
    n_uniform = int(rng.binomial(shots, p)) if p > 0 else 0
    n_exact = shots - n_uniform
    width = 2 * norb
    keys = [np.zeros(0, dtype=np.uint64)]
    weights = [np.zeros(0, dtype=np.int64)]
    if n_exact > 0:
        probs = _state_probabilities(ansatz)
        draws = rng.multinomial(n_exact, probs)
        del probs
        idx = np.flatnonzero(draws)
        dim_b = math.comb(norb, nelec[1])
        addr_a, addr_b = np.divmod(idx, dim_b)
        str_a = np.asarray(cistring.addrs2str(norb, nelec[0], addr_a), dtype=np.uint64)
        str_b = np.asarray(cistring.addrs2str(norb, nelec[1], addr_b), dtype=np.uint64)
        keys.append((str_b << np.uint64(norb)) | str_a)
        weights.append(draws[idx].astype(np.int64))
    if n_uniform > 0:
        keys.append(_uniform_keys(n_uniform, width, rng))
        weights.append(np.ones(n_uniform, dtype=np.int64))
    # Aggregate on integer keys (no per-shot rows): sorted unique outcomes and their counts.
    uniq, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=np.concatenate(weights), minlength=len(uniq))
    metadata = {
        "sampler": "exact",
        "backend": "ffsim_statevector",
        "shots": int(shots),
        "global_depolarizing": float(p),
        "n_depolarized_shots": n_uniform,
    }
    return Samples(_ints_to_matrix(uniq, width), np.rint(counts).astype(np.int64), norb, metadata)
