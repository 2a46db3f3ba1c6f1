"""Benchmark sqd_suite.recovery against qiskit-addon-sqd on the same data, same run.

    .venv/bin/python bench/recovery.py                 # defaults: 1e7 shots, 26 orbitals, (5, 5)
    .venv/bin/python bench/recovery.py --shots 1e6 --qiskit-rows 2e4

Data: synthetic samples of a 26-orbital (5, 5) problem, Hartree-Fock plus single
and double excitations per spin, with a fraction ``--noise`` of the shots
replaced by uniformly random bitstrings (a global-depolarising stand-in for
hardware noise). Rows of the table:

1. recover_configurations on ``--qiskit-rows`` unique noisy bitstrings (both
   libraries, same seed; the outputs are compared bit for bit);
2. subsample of the recovered set (both);
3. configuration_batches on all the unique outcomes of ``--shots`` shots
   (recovery + subsampling + per-batch strings), and qiskit-addon-sqd's
   recover_configurations + subsample + batch_to_ci_strings on the same data
   when ``--qiskit-full`` is given (minutes), else extrapolated from row 1.

Timings are wall-clock and process CPU time (the fairer one on a shared, busy
machine: both libraries run on one core); compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np

from sqd_suite.recovery import (
    configuration_batches,
    count_distinct,
    recover_configurations,
    strings_to_bitstrings,
    subsample,
)


def _excite(rng: np.random.Generator, n: int, norb: int, nocc: int) -> np.ndarray:
    """Spin strings: HF with prob 0.85, else a single or double excitation."""
    hf = (1 << nocc) - 1
    s = np.full(n, hf, dtype=np.int64)
    nvir = norb - nocc
    exc = rng.random(n) < 0.15
    m = int(exc.sum())
    h1 = rng.integers(0, nocc, m)
    p1 = rng.integers(0, nvir, m) + nocc
    x = np.full(m, hf, dtype=np.int64) ^ (1 << h1) ^ (1 << p1)
    double = rng.random(m) < 0.4
    h2 = (h1 + 1 + rng.integers(0, nocc - 1, m)) % nocc
    p2 = (p1 - nocc + 1 + rng.integers(0, nvir - 1, m)) % nvir + nocc
    x[double] ^= (1 << h2[double]) ^ (1 << p2[double])
    s[exc] = x
    return s


def synthetic_samples(
    shots: int, norb: int, nelec: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unique bitstrings (bool matrix) and int64 counts of ``shots`` synthetic shots."""
    rng = np.random.default_rng(seed)
    keys = np.empty(shots, dtype=np.int64)
    block = 1 << 21
    for start in range(0, shots, block):
        n = min(block, shots - start)
        a = _excite(rng, n, norb, nelec)
        b = _excite(rng, n, norb, nelec)
        k = (b << norb) | a
        noisy = rng.random(n) < noise
        k[noisy] = rng.integers(0, 1 << (2 * norb), int(noisy.sum()))
        keys[start : start + n] = k
    uniq, counts = np.unique(keys, return_counts=True)
    mask = (1 << norb) - 1
    bm = strings_to_bitstrings(uniq & mask, uniq >> norb, norb)
    return bm, counts.astype(np.int64)


def _time(fn, *args, **kwargs):
    """(wall, cpu) seconds and result; cpu time is the fairer one on a busy machine."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return (time.perf_counter() - t, time.process_time() - c), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shots", type=float, default=1e7)
    ap.add_argument("--norb", type=int, default=26)
    ap.add_argument("--nelec", type=int, default=5, help="electrons per spin")
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--qiskit-rows", type=float, default=1e5)
    ap.add_argument("--samples-per-batch", type=int, default=1000)
    ap.add_argument("--num-batches", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--qiskit-full", action="store_true", help="run qiskit-addon-sqd on row 3 too")
    args = ap.parse_args()

    from qiskit_addon_sqd.configuration_recovery import recover_configurations as q_recover
    from qiskit_addon_sqd.fermion import batch_to_ci_strings
    from qiskit_addon_sqd.subsampling import subsample as q_subsample

    warnings.simplefilter("ignore", DeprecationWarning)
    norb, ne = args.norb, args.nelec
    nelec = (ne, ne)
    spb, nbat = args.samples_per_batch, args.num_batches
    occ_vec = np.where(np.arange(norb) < ne, 0.95, 0.5 / (norb - ne))
    occ = (occ_vec, occ_vec.copy())

    (t_gen, _), (bm, counts) = _time(
        synthetic_samples, int(args.shots), norb, ne, args.noise, args.seed
    )
    stats = count_distinct(bm, counts, nelec=nelec)
    print(
        f"data: {stats.shots:.3g} shots, {stats.bitstrings} unique bitstrings "
        f"({bm.nbytes / 2**20:.0f} MiB as bools), valid fraction {stats.valid_fraction:.3f}, "
        f"{stats.valid_alpha_strings} valid alpha strings; generated in {t_gen:.1f} s"
    )

    # warm the numba kernels (compiled or loaded from cache) outside the timings
    small = slice(0, 200)
    p_small = counts[small] / counts[small].sum()
    recover_configurations(bm[small], p_small, occ, ne, ne, rand_seed=0)
    subsample(bm[small], p_small, 10, 2, rand_seed=0)
    configuration_batches(
        bm[small], counts[small], occ, nelec, samples_per_batch=10, num_batches=2, seed=0
    )

    # 1. recovery on the noisy (wrong-count) rows only: the work recovery exists for
    wrong = np.flatnonzero(
        (bm[:, norb:].sum(1) != ne) | (bm[:, :norb].sum(1) != ne)
    )
    n_q = min(int(args.qiskit_rows), wrong.size)
    sub_bm = bm[wrong[:n_q]]
    sub_p = counts[wrong[:n_q]] / counts[wrong[:n_q]].sum()
    t_ours_rec, (o_bm, o_p) = _time(recover_configurations, sub_bm, sub_p, occ, ne, ne, rand_seed=1)
    t_q_rec, (q_bm, q_p) = _time(q_recover, sub_bm, sub_p, occ, ne, ne, rand_seed=1)
    same_rec = np.array_equal(o_bm, q_bm) and np.array_equal(o_p, q_p)

    # 2. subsampling of the recovered set
    t_ours_sub, o_b = _time(subsample, o_bm, o_p, spb, nbat, rand_seed=2)
    t_q_sub, q_b = _time(q_subsample, q_bm, q_p, spb, nbat, rand_seed=2)
    same_sub = all(np.array_equal(x, y) for x, y in zip(o_b, q_b))

    # 3. the loop's fast path on every unique outcome of all the shots
    tracemalloc.start()
    t_ours_all, batches = _time(
        configuration_batches,
        bm,
        counts,
        occ,
        nelec,
        samples_per_batch=spb,
        num_batches=nbat,
        seed=np.random.default_rng(3),
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if args.qiskit_full:

        def q_pipeline():
            rng = np.random.default_rng(3)
            b, p = q_recover(bm, counts / counts.sum(), occ, ne, ne, rand_seed=rng)
            return [
                batch_to_ci_strings(x, norb) for x in q_subsample(b, p, spb, nbat, rand_seed=rng)
            ]

        t_q_all, q_batches = _time(q_pipeline)
        same_all = all(
            np.array_equal(a, np.sort(np.unique(qa))) and np.array_equal(b, np.sort(np.unique(qb)))
            for (a, b), (qa, qb) in zip(batches, q_batches)
        )
        q_all = f"{t_q_all[0]:10.2f} {t_q_all[1]:10.2f}"
    else:
        # qiskit-addon-sqd's recovery is a Python loop over rows: linear in them
        scale = bm.shape[0] / max(n_q, 1)
        t_q_all = tuple(r * scale + s for r, s in zip(t_q_rec, t_q_sub))
        same_all = None
        q_all = f"{'~' + format(t_q_all[0], '.0f'):>10} {'~' + format(t_q_all[1], '.0f'):>10}"

    rows = [
        (
            f"recover_configurations, {n_q} noisy rows",
            t_ours_rec,
            f"{t_q_rec[0]:10.2f} {t_q_rec[1]:10.2f}",
            t_q_rec,
            same_rec,
        ),
        (
            f"subsample {nbat} x {spb} of {len(o_p)} rows",
            t_ours_sub,
            f"{t_q_sub[0]:10.3f} {t_q_sub[1]:10.3f}",
            t_q_sub,
            same_sub,
        ),
        (
            f"configuration_batches, {stats.shots:.0e} shots / {bm.shape[0]} unique",
            t_ours_all,
            q_all,
            t_q_all,
            same_all,
        ),
    ]
    print()
    print(
        f"{'task':<52} {'ours wall':>10} {'ours cpu':>10} {'qiskit wall':>11} {'qiskit cpu':>10}"
        f" {'ratio wall':>10} {'ratio cpu':>10}  identical"
    )
    for name, ours, q_str, q_val, same in rows:
        ident = "n/a" if same is None else str(same)
        print(
            f"{name:<52} {ours[0]:10.3f} {ours[1]:10.3f} {q_str:>22}"
            f" {q_val[0] / ours[0]:10.1f} {q_val[1] / ours[1]:10.1f}  {ident}"
        )
    dims = [len(a) * len(b) for a, b in batches]
    print()
    print(
        f"row 3: peak traced memory {peak / 2**20:.0f} MiB for {bm.shape[0]} unique rows "
        f"(input {bm.nbytes / 2**20:.0f} MiB); batch dimensions {min(dims)}..{max(dims)}"
    )
    if same_all is None:
        print("row 3 qiskit time extrapolated from row 1 (~); run with --qiskit-full to measure it")


if __name__ == "__main__":
    main()
