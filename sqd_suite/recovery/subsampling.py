"""Subsampling into batches and the per-batch subspaces the SQD loop diagonalises.

qiskit-addon-sqd 0.14 draws each batch with
``rng.choice(n, samples_per_batch, replace=False, p=probabilities)`` over the
unique (recovered or post-selected) bitstrings: without replacement inside a
batch, independently between batches, weighted by probability; when
``samples_per_batch >= n`` every batch is all rows and no random number is drawn.
:func:`subsample` and :func:`configuration_batches` reproduce that choice
operation for operation in a numba kernel, so the same generator state gives
the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sqd_suite.recovery import _kernels, _rows
from sqd_suite.recovery._checks import (
    check_nelec_tuple,
    check_occupancies,
    check_positive_int,
    check_weights,
)
from sqd_suite.recovery._stream import run_with_uniforms
from sqd_suite.recovery.bitstrings import (
    _check_int64_norb,
    as_bitstring_matrix,
    bitstrings_to_words,
)
from sqd_suite.recovery.configuration_recovery import hamming_mask, recover_words

# numpy's tolerance on sum(p) == 1 in Generator.choice
_P_ATOL = math.sqrt(np.finfo(np.float64).eps)


def _batch_indices(
    probs: np.ndarray, samples_per_batch: int, num_batches: int, rng: np.random.Generator
) -> np.ndarray:
    n = probs.shape[0]
    if samples_per_batch >= n:
        return np.broadcast_to(np.arange(n), (num_batches, n))
    p = np.ascontiguousarray(probs, dtype=np.float64)
    out = np.empty((num_batches, samples_per_batch), dtype=np.int64)

    def step(u: np.ndarray, batch0: int) -> tuple[int, int]:
        return _kernels.subsample_indices(p, samples_per_batch, out, u, batch0)

    total = num_batches * samples_per_batch
    run_with_uniforms(rng, step, num_batches, total + total // 2)
    return out


def subsample(
    bitstring_matrix: np.ndarray,
    probabilities: np.ndarray,
    samples_per_batch: int,
    num_batches: int,
    rand_seed: np.random.Generator | int | None = None,
) -> list[np.ndarray]:
    """Draw ``num_batches`` batches of ``samples_per_batch`` rows.

    Mirrors ``qiskit_addon_sqd.subsampling.subsample`` and its random stream: each
    batch is drawn without replacement with weights ``probabilities`` (which must
    sum to one, as numpy requires), batches independently; if
    ``samples_per_batch >= len(bitstring_matrix)`` every batch is the whole matrix.
    Difference: an empty matrix gives empty ``(0, ncols)`` bool batches rather
    than 1-D float ``np.array([])``.
    """
    bm = as_bitstring_matrix(bitstring_matrix)
    n = bm.shape[0]
    samples_per_batch = check_positive_int(samples_per_batch, "samples_per_batch")
    num_batches = check_positive_int(num_batches, "num_batches")
    probs = check_weights(probabilities, n, "probabilities").astype(np.float64, copy=False)
    if n == 0:
        return [bm.copy() for _ in range(num_batches)]
    rng = np.random.default_rng(rand_seed)
    if samples_per_batch < n:
        total = math.fsum(probs)
        if abs(total - 1.0) > _P_ATOL:
            raise ValueError(
                f"probabilities sum to {total!r}, not 1; divide them by their sum."
            )
        if np.count_nonzero(probs > 0) < samples_per_batch:
            raise ValueError(
                f"probabilities have fewer positive entries than samples_per_batch="
                f"{samples_per_batch}; lower samples_per_batch."
            )
    idx = _batch_indices(probs, samples_per_batch, num_batches, rng)
    return [bm[row] for row in idx]


def _check_carryover(
    carryover: tuple[np.ndarray, np.ndarray] | None, norb: int, nelec: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    if carryover is None:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    try:
        ca, cb = carryover
    except (TypeError, ValueError):
        raise ValueError(
            "carryover must be a pair (alpha_strings, beta_strings) of int64 arrays or None."
        ) from None
    out = []
    for label, c, ne in (("alpha", ca, nelec[0]), ("beta", cb, nelec[1])):
        arr = np.ascontiguousarray(c, dtype=np.int64).reshape(-1)
        if arr.size:
            w = _kernels.weights(_kernels.int64_to_words(arr))
            if norb < 64 and (arr.min() < 0 or arr.max() >> norb != 0):
                raise ValueError(
                    f"carryover: {label} strings set bits at or above norb={norb}."
                )
            if np.any(w != ne):
                raise ValueError(
                    f"carryover: {label} strings must hold {ne} electrons each; "
                    "pass strings from a subspace with the same nelec."
                )
        out.append(arr)
    return out[0], out[1]


def _canonical_rows(
    alpha: np.ndarray, beta: np.ndarray, weights: np.ndarray, norb: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows in ``np.unique(bitstring_matrix, axis=0)`` order, duplicates merged."""
    keys = _rows.row_keys(alpha, beta, norb)
    if _rows.is_strictly_sorted(keys):
        return alpha, beta, weights
    order, new = _rows.group_sorted(keys)
    starts = np.flatnonzero(new)
    merged = np.add.reduceat(weights[order], starts) if weights.size else weights
    sel = order[starts]
    return alpha[sel], beta[sel], merged


def configuration_batches(
    bitstring_matrix: np.ndarray,
    counts: np.ndarray,
    avg_occupancies: tuple[np.ndarray, np.ndarray] | None,
    nelec: tuple[int, int],
    *,
    samples_per_batch: int,
    num_batches: int,
    carryover: tuple[np.ndarray, np.ndarray] | None = None,
    symmetrize_spin: bool = False,
    recover: bool = True,
    seed: np.random.Generator | int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Recover (or post-select), subsample, and return each batch's alpha and beta strings.

    One iteration of qiskit-addon-sqd 0.14's ``diagonalize_fermionic_hamiltonian``
    up to the solver, on unique outcomes: rows are put in ``np.unique(axis=0)``
    order (duplicates merged), probabilities are ``counts / counts.sum()`` (float
    ``counts`` are taken as probabilities as given), then

    - with ``recover=True`` and occupancies given: :func:`recover_configurations`
      (every row recovered once, whatever its count);
    - with ``recover=False`` or ``avg_occupancies=None``: post-selection of rows
      with the right electron counts. qiskit-addon-sqd does this on the first
      iteration when ``initial_occupancies`` is None, and recovers with the given
      occupancies otherwise; pass Hartree-Fock occupancies with ``recover=False``
      to mirror its default;

    then :func:`subsample`, and per batch the sorted unique strings of the
    batch plus ``carryover`` (with ``symmetrize_spin``, both spins get the union
    of all alpha and beta strings; the same array is returned twice). With the
    same generator state, the subspaces equal those qiskit-addon-sqd builds.

    Args:
        bitstring_matrix: ``(n, 2*norb)`` bools, unique measured outcomes.
        counts: int64 counts (or float probabilities), one per row.
        avg_occupancies: ``(occ_a, occ_b)`` of length norb, or None.
        nelec: ``(n_alpha, n_beta)``.
        samples_per_batch: rows drawn per batch.
        num_batches: number of batches.
        carryover: ``(alpha_strings, beta_strings)`` int64, in every batch.
        symmetrize_spin: use the alpha-beta union for both spins (needs n_alpha == n_beta).
        recover: recover wrong-count rows (True) or drop them (False).
        seed: seed or generator; a generator is advanced in place.

    Returns:
        For each batch, ``(alpha_strings, beta_strings)``: sorted unique int64
        (with 64 orbitals, orbital 63 is the sign bit and sorting is signed).

    Raises:
        ValueError: bad shapes or values, norb > 64, or, when post-selecting, no
            row with the right electron counts.
    """
    bm = as_bitstring_matrix(bitstring_matrix)
    n, ncols = bm.shape
    norb = ncols // 2
    _check_int64_norb(norb, "bitstring_matrix")
    weights = check_weights(counts, n, "counts")
    na, nb = check_nelec_tuple(nelec, norb)
    samples_per_batch = check_positive_int(samples_per_batch, "samples_per_batch")
    num_batches = check_positive_int(num_batches, "num_batches")
    if symmetrize_spin and na != nb:
        raise ValueError(
            f"symmetrize_spin=True needs n_alpha == n_beta, got nelec=({na}, {nb})."
        )
    use_recovery = recover and avg_occupancies is not None
    occ = check_occupancies(avg_occupancies, norb) if use_recovery else None
    carry_a, carry_b = _check_carryover(carryover, norb, (na, nb))
    rng = np.random.default_rng(seed)

    if n == 0 or not weights.sum() > 0:
        raise ValueError("counts: the total count is zero; pass at least one sampled bitstring.")
    alpha, beta = bitstrings_to_words(bm)
    alpha, beta, weights = _canonical_rows(alpha, beta, weights, norb)
    if np.issubdtype(weights.dtype, np.integer):
        probs = weights / weights.sum()
    else:
        probs = weights.astype(np.float64)

    if use_recovery:
        ra, rb = recover_words(alpha, beta, norb, occ, (na, nb), rng)
        first, inverse = _rows.unique_first_appearance(_rows.row_keys(ra, rb, norb))
        freqs = np.bincount(inverse, weights=probs, minlength=first.size)
        freqs = np.abs(freqs) / np.sum(np.abs(freqs))
        alpha, beta = ra[first], rb[first]
    else:
        mask = hamming_mask(alpha, beta, na, nb)
        if not mask.any():
            raise ValueError(
                f"bitstring_matrix: no row holds nelec=({na}, {nb}) electrons; pass "
                "avg_occupancies (e.g. Hartree-Fock) with recover=True."
            )
        alpha, beta = alpha[mask], beta[mask]
        freqs = probs[mask]
        if not np.sum(freqs) > 0:
            raise ValueError(
                f"counts: every row with nelec=({na}, {nb}) has zero count; pass "
                "avg_occupancies with recover=True."
            )
        freqs /= np.sum(freqs)

    # rows of zero weight can never be drawn; numpy's choice refuses to draw
    # more rows than have positive weight, so take all of those instead
    npos = int(np.count_nonzero(freqs > 0))
    if npos < min(samples_per_batch, freqs.size):
        keep = freqs > 0
        alpha, beta, freqs = alpha[keep], beta[keep], freqs[keep]
    idx = _batch_indices(freqs, samples_per_batch, num_batches, rng)

    a_str = _kernels.words_to_int64(alpha)
    b_str = _kernels.words_to_int64(beta)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for row in idx:
        if symmetrize_spin:
            s = np.unique(np.concatenate((carry_a, carry_b, a_str[row], b_str[row])))
            out.append((s, s))
        else:
            out.append(
                (
                    np.unique(np.concatenate((carry_a, a_str[row]))),
                    np.unique(np.concatenate((carry_b, b_str[row]))),
                )
            )
    return out


@dataclass(frozen=True)
class DistinctCounts:
    """Distinct configurations in a sample set (shown beside every energy).

    ``valid_*`` count only rows with the right electron counts and are None when
    no ``nelec`` was given.
    """

    shots: int | float
    bitstrings: int
    alpha_strings: int
    beta_strings: int
    valid_fraction: float | None = None
    valid_bitstrings: int | None = None
    valid_alpha_strings: int | None = None
    valid_beta_strings: int | None = None

    @property
    def valid_dimension(self) -> int | None:
        """Product-space dimension of the valid alpha and beta strings."""
        if self.valid_alpha_strings is None or self.valid_beta_strings is None:
            return None
        return self.valid_alpha_strings * self.valid_beta_strings


def count_distinct(
    bitstring_matrix: np.ndarray,
    counts: np.ndarray | None = None,
    *,
    nelec: tuple[int, int] | None = None,
) -> DistinctCounts:
    """Count distinct determinants (bitstrings), alpha strings and beta strings.

    ``counts`` defaults to one per row; with ``nelec`` also counts the rows with
    the right electron counts and the fraction of shots (weight) they carry.
    """
    bm = as_bitstring_matrix(bitstring_matrix)
    n, ncols = bm.shape
    norb = ncols // 2
    weights = (
        np.ones(n, dtype=np.int64) if counts is None else check_weights(counts, n, "counts")
    )
    alpha, beta = bitstrings_to_words(bm)
    total = weights.sum()
    shots = int(total) if np.issubdtype(weights.dtype, np.integer) else float(total)
    res = DistinctCounts(
        shots=shots,
        bitstrings=_rows.count_unique_rows(_rows.row_keys(alpha, beta, norb)),
        alpha_strings=_rows.count_unique_rows(alpha),
        beta_strings=_rows.count_unique_rows(beta),
    )
    if nelec is None:
        return res
    na, nb = check_nelec_tuple(nelec, norb)
    mask = hamming_mask(alpha, beta, na, nb)
    va, vb = alpha[mask], beta[mask]
    return DistinctCounts(
        shots=res.shots,
        bitstrings=res.bitstrings,
        alpha_strings=res.alpha_strings,
        beta_strings=res.beta_strings,
        valid_fraction=float(weights[mask].sum() / total) if total else 0.0,
        valid_bitstrings=_rows.count_unique_rows(_rows.row_keys(va, vb, norb)),
        valid_alpha_strings=_rows.count_unique_rows(va),
        valid_beta_strings=_rows.count_unique_rows(vb),
    )
