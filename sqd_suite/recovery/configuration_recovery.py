"""Configuration recovery and post-selection, mirroring qiskit-addon-sqd.

The recovery is that of Robledo-Moreno et al. (Sci. Adv. 11, eadu9991, 2025) as
implemented in ``qiskit_addon_sqd.configuration_recovery.recover_configurations``:
each row of the bitstring matrix is corrected once (rows are unique outcomes,
weighted by their probabilities), spin half by spin half, by flipping surplus
ones (or missing zeros) chosen at random without replacement with weights from
the average orbital occupancies. The draws use numpy's weighted choice
algorithm operation for operation, so the same generator gives the same result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sqd_suite.recovery import _kernels, _rows
from sqd_suite.recovery._checks import check_electrons, check_occupancies, check_weights
from sqd_suite.recovery._stream import run_with_uniforms
from sqd_suite.recovery.bitstrings import (
    _paired_strings,
    as_bitstring_matrix,
    bitstrings_to_words,
    words_to_bitstrings,
)


def recover_words(
    alpha_words: np.ndarray,
    beta_words: np.ndarray,
    norb: int,
    avg_occupancies: tuple[np.ndarray, np.ndarray],
    nelec: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Recover packed rows (no checks, no de-duplication), advancing ``rng``."""
    occ_a, occ_b = avg_occupancies
    n_alpha, n_beta = nelec
    out_a = np.empty_like(alpha_words)
    out_b = np.empty_like(beta_words)

    def step(u: np.ndarray, row0: int) -> tuple[int, int]:
        return _kernels.recover_rows(
            alpha_words, beta_words, out_a, out_b, occ_a, occ_b, norb, n_alpha, n_beta, u, row0
        )

    # first-round draws are exactly the flips; collisions add about a third
    need = _kernels.flips_needed(alpha_words, beta_words, n_alpha, n_beta)
    run_with_uniforms(rng, step, alpha_words.shape[0], need + need // 2)
    return out_a, out_b


def recover_configurations(
    bitstring_matrix: np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    avg_occupancies: tuple[np.ndarray, np.ndarray],
    num_elec_a: int,
    num_elec_b: int,
    rand_seed: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Correct the electron counts of bitstrings using average orbital occupancies.

    Drop-in for ``qiskit_addon_sqd.configuration_recovery.recover_configurations``:
    same arguments, and with the same ``rand_seed`` (or a generator in the same
    state) the same output: the corrected bitstrings, unique, in order of first
    appearance, with their summed probabilities normalised to one. A row whose
    halves already hold ``num_elec_b`` (left) and ``num_elec_a`` (right) ones is
    returned unchanged and consumes no random numbers.

    Differences from qiskit-addon-sqd, all where it fails:

    - Where it would raise (fewer positive flip weights than bits to flip, or all
      weights zero), or leave a half uncorrected (every flip probability of the half
      zero, possible with occupancies of exactly 0 and 1 that do not sum to the
      electron count), we flip every positive-weight candidate and choose the rest
      uniformly among the zero-weight ones, so the output always has the right
      electron counts.
    - ``avg_occupancies`` must be the pair ``(occ_a, occ_b)``; the flat 2*norb form
      that qiskit-addon-sqd deprecated is rejected.
    - Electron counts above norb raise ValueError; an empty input gives an empty
      ``(0, 2*norb)`` matrix and an empty probability vector.

    Args:
        bitstring_matrix: ``(n, 2*norb)`` bools, ``[b_{N-1} .. b_0 a_{N-1} .. a_0]``.
        probabilities: one weight per row (negative quasi-probabilities are
            allowed; each output row gets the absolute value of its summed weight).
        avg_occupancies: ``(occ_a, occ_b)``, arrays of length norb indexed by orbital.
        num_elec_a: alpha electrons (right half).
        num_elec_b: beta electrons (left half).
        rand_seed: seed or generator (a generator is advanced in place).

    Returns:
        ``(bitstring_matrix, probabilities)`` of the corrected, de-duplicated rows.
    """
    bm = as_bitstring_matrix(bitstring_matrix)
    n, ncols = bm.shape
    norb = ncols // 2
    # quasi-probabilities are allowed: qiskit-addon-sqd takes |sum| per output row
    probs = check_weights(probabilities, n, "probabilities", allow_negative=True).astype(
        np.float64, copy=False
    )
    na, nb = check_electrons(num_elec_a, num_elec_b, norb, "num_elec_a, num_elec_b")
    occ_a, occ_b = check_occupancies(avg_occupancies, norb)
    rng = np.random.default_rng(rand_seed)
    if n == 0:
        return np.zeros((0, ncols), dtype=np.bool_), np.zeros(0)
    alpha, beta = bitstrings_to_words(bm)
    ra, rb = recover_words(alpha, beta, norb, (occ_a, occ_b), (na, nb), rng)
    first, inverse = _rows.unique_first_appearance(_rows.row_keys(ra, rb, norb))
    # bincount adds in row order, as qiskit-addon-sqd's dict accumulation does
    freqs = np.bincount(inverse, weights=probs, minlength=first.size)
    freqs = np.abs(freqs) / np.sum(np.abs(freqs))
    return words_to_bitstrings(ra[first], rb[first], norb), freqs


def recover_strings(
    alpha: np.ndarray,
    beta: np.ndarray,
    norb: int,
    avg_occupancies: tuple[np.ndarray, np.ndarray],
    nelec: tuple[int, int],
    *,
    seed: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Packed-integer form of the recovery: one corrected ``(alpha, beta)`` per input pair.

    ``alpha``/``beta`` are int64 strings (norb <= 64). Rows are neither merged nor
    reordered; the random stream is that of :func:`recover_configurations` on the
    same rows.
    """
    a, b = _paired_strings(alpha, beta, norb)
    na, nb = check_electrons(nelec[0], nelec[1], norb)
    occ = check_occupancies(avg_occupancies, norb)
    if norb < 64 and a.size and (
        min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >> norb != 0
    ):
        raise ValueError(f"alpha/beta hold bits at or above norb={norb}; pass the right norb.")
    rng = np.random.default_rng(seed)
    ra, rb = recover_words(
        _kernels.int64_to_words(a), _kernels.int64_to_words(b), norb, occ, (na, nb), rng
    )
    return _kernels.words_to_int64(ra), _kernels.words_to_int64(rb)


def hamming_mask(
    alpha_words: np.ndarray, beta_words: np.ndarray, n_alpha: int, n_beta: int
) -> np.ndarray:
    """Rows whose alpha and beta halves hold n_alpha and n_beta electrons."""
    return (_kernels.weights(alpha_words) == n_alpha) & (_kernels.weights(beta_words) == n_beta)


def postselect_by_hamming(
    bitstring_matrix: np.ndarray,
    probabilities: np.ndarray,
    *,
    hamming_right: int,
    hamming_left: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the rows with the wanted Hamming weight on each half; renormalise.

    Mirrors ``qiskit_addon_sqd.subsampling.postselect_by_hamming_right_and_left``:
    ``hamming_right`` is the alpha electron count, ``hamming_left`` the beta one;
    rows keep their order and the kept probabilities are divided by their sum.
    """
    bm = as_bitstring_matrix(bitstring_matrix)
    n, ncols = bm.shape
    norb = ncols // 2
    na, nb = check_electrons(hamming_right, hamming_left, norb, "hamming_right, hamming_left")
    probs = check_weights(probabilities, n, "probabilities", allow_negative=True).astype(
        np.float64
    )
    alpha, beta = bitstrings_to_words(bm)
    mask = hamming_mask(alpha, beta, na, nb)
    probs_post = probs[mask]
    probs_post /= np.sum(probs_post)
    return bm[mask], probs_post


__all__ = [
    "hamming_mask",
    "postselect_by_hamming",
    "recover_configurations",
    "recover_strings",
    "recover_words",
]
