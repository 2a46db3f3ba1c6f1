"""Benchmarks of the subspace diagonalizer (sqd_suite.diag) on N2/cc-pVDZ, frozen core (26 orbitals, 5+5).

Sections are separate functions so that more tables can be added next to them:

* ``sigma_section``: table build, one matrix-free sigma against PySCF
  ``selected_ci.contract_2e`` on the same vector, useful multiply-adds W
  (docs/diag.md, diag-design.md) and their rate, bytes per determinant.

Per-core rates need one thread for both codes::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python bench/diag.py
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python bench/diag.py --big   # adds 10000 x 10000 (D = 1e8)

String sets: :func:`sample_strings` draws each spin string by choosing the
occupied orbitals without replacement with weights ``exp(-decay * p)``
(Gumbel top-k), always includes the Hartree-Fock string, keeps the first
``n`` distinct strings in draw order and sorts them; alpha and beta use
different seeds. ``decay = 0.3`` gives about 26, 37, 54 in-set singles per
string at 1000, 3000, 10000 strings.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import numba
import numpy as np

from sqd_suite.diag.hamiltonian import SubspaceHamiltonian


@dataclasses.dataclass(frozen=True)
class N2Problem:
    h1: np.ndarray
    h2: np.ndarray
    ecore: float
    norb: int
    nelec: tuple[int, int]


def n2_problem(bond_length: float = 1.1) -> N2Problem:
    """RHF N2/cc-pVDZ, 2 frozen core orbitals: 26 active orbitals, (5, 5) electrons."""
    from pyscf import ao2mo, gto, mcscf, scf

    mol = gto.M(atom=f"N 0 0 0; N 0 0 {bond_length}", basis="cc-pvdz", verbose=0)
    mf = scf.RHF(mol).run()
    norb = mol.nao - 2
    cas = mcscf.CASCI(mf, norb, (5, 5))
    h1, ecore = cas.get_h1eff()
    h2 = ao2mo.restore(1, cas.get_h2eff(), norb)
    return N2Problem(h1=np.ascontiguousarray(h1), h2=np.ascontiguousarray(h2), ecore=float(ecore), norb=norb, nelec=(5, 5))


def sample_strings(norb: int, nelec: int, n: int, *, decay: float = 0.3, seed: int) -> np.ndarray:
    """``n`` distinct strings biased toward low orbitals (see module docstring), sorted int64."""
    rng = np.random.default_rng(seed)
    logw = -decay * np.arange(norb)
    draws = [np.array([(1 << nelec) - 1], dtype=np.int64)]
    while True:
        keys = logw + rng.gumbel(size=(4 * n, norb))
        occ = np.argpartition(-keys, nelec - 1, axis=1)[:, :nelec].astype(np.int64)
        draws.append(np.sum(np.int64(1) << occ, axis=1))
        allv = np.concatenate(draws)
        uniq, first = np.unique(allv, return_index=True)
        if uniq.size >= n:
            return np.sort(allv[np.sort(first)[:n]])


def _clock() -> float:
    """CPU time when both codes run on one thread (robust on a shared machine), else wall time."""
    single = numba.get_num_threads() == 1 and os.environ.get("OMP_NUM_THREADS") == "1"
    return time.process_time() if single else time.perf_counter()


def _clock_name() -> str:
    single = numba.get_num_threads() == 1 and os.environ.get("OMP_NUM_THREADS") == "1"
    return "process CPU time (one thread)" if single else "wall time"


def _best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = _clock()
        fn()
        best = min(best, _clock() - t0)
    return best


def _pyscf_sigma(prob: N2Problem, sa: np.ndarray, sb: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    """PySCF selected_ci sigma and its time (its link tables are built outside the timing)."""
    from pyscf.fci import direct_spin1, selected_ci

    eri = direct_spin1.absorb_h1e(prob.h1, prob.h2, prob.norb, prob.nelec, 0.5)
    link = selected_ci._all_linkstr_index((sa, sb), prob.norb, prob.nelec)
    civec = selected_ci._as_SCIvector(c.copy(), (sa, sb))
    t0 = _clock()
    ref = selected_ci.contract_2e(eri, civec, prob.norb, prob.nelec, link_index=link)
    return np.asarray(ref).reshape(c.shape), _clock() - t0


def sigma_section(
    prob: N2Problem, sizes: list[int], *, pyscf_max: int = 1000, repeats: int = 3, decay: float = 0.3
) -> list[dict]:
    """One row per string-set size: build time, sigma times, ratio, accuracy, W, rate, memory."""
    # Compile / load the numba cache outside the timings.
    warm_a = sample_strings(prob.norb, prob.nelec[0], 20, decay=decay, seed=1)
    SubspaceHamiltonian.from_integrals(prob.h1, prob.h2, prob.norb, prob.nelec, warm_a, warm_a).matvec(
        np.ones((warm_a.size, warm_a.size))
    )
    rows = []
    for n in sizes:
        sa = sample_strings(prob.norb, prob.nelec[0], n, decay=decay, seed=1)
        sb = sample_strings(prob.norb, prob.nelec[1], n, decay=decay, seed=2)
        t0 = _clock()
        ham = SubspaceHamiltonian.from_integrals(prob.h1, prob.h2, prob.norb, prob.nelec, sa, sb)
        t_build = _clock() - t0
        c = np.random.default_rng(3).standard_normal(ham.shape)
        c /= np.linalg.norm(c)
        out = np.empty_like(c)
        ham.matvec(c, out=out)
        t_ours = _best_time(lambda: ham.matvec(c, out=out), repeats if n < 10_000 else 1)
        dim = sa.size * sb.size
        work = ham.work_per_sigma()
        row = {
            "n": n,
            "D": dim,
            "s_a": ham.alpha_singles.nnz / sa.size,
            "d_a": ham.alpha_doubles.nnz / sa.size,
            "build_s": t_build,
            "ours_s": t_ours,
            "pyscf_s": None,
            "ratio": None,
            "max_rel": None,
            "W": work,
            "rate": work / t_ours,
            "table_B_per_det": ham.nbytes() / dim,
            "scratch_B_per_det": ham.scratch_nbytes() / dim,
        }
        if n <= pyscf_max:
            ref, t_pyscf = _pyscf_sigma(prob, sa, sb, c)
            row["pyscf_s"] = t_pyscf
            row["ratio"] = t_pyscf / t_ours
            row["max_rel"] = float(np.abs(out - ref).max() / np.abs(ref).max())
        rows.append(row)
        print_sigma_table([row], header=len(rows) == 1)
    return rows


def print_sigma_table(rows: list[dict], *, header: bool = True) -> None:
    if header:
        print(
            f"threads: numba {numba.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
            f"times are {_clock_name()}"
        )
        print(
            f"{'n/spin':>7} {'D':>10} {'s_a':>5} {'d_a':>6} {'build s':>8} {'ours s':>8} {'pyscf s':>8} "
            f"{'ratio':>6} {'max rel diff':>12} {'W':>9} {'madd/s':>8} {'B/det tab':>9} {'B/det scr':>9}"
        )
    for r in rows:
        pyscf = f"{r['pyscf_s']:8.2f}" if r["pyscf_s"] is not None else f"{'-':>8}"
        ratio = f"{r['ratio']:6.1f}" if r["ratio"] is not None else f"{'-':>6}"
        rel = f"{r['max_rel']:12.1e}" if r["max_rel"] is not None else f"{'-':>12}"
        print(
            f"{r['n']:>7} {r['D']:>10.2e} {r['s_a']:5.1f} {r['d_a']:6.1f} {r['build_s']:8.2f} {r['ours_s']:8.3f} "
            f"{pyscf} {ratio} {rel} {r['W']:9.2e} {r['rate']:8.2e} {r['table_B_per_det']:9.2f} "
            f"{r['scratch_B_per_det']:9.2f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 3000], help="strings per spin")
    parser.add_argument("--big", action="store_true", help="add 10000 strings per spin (D = 1e8, ~2 GB)")
    parser.add_argument("--pyscf-max", type=int, default=1000, help="largest size that also runs PySCF")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many sigma timings")
    args = parser.parse_args(argv)
    try:
        from pyscf import lib

        lib.num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ImportError:
        pass
    sizes = list(args.sizes) + ([10_000] if args.big and 10_000 not in args.sizes else [])
    prob = n2_problem()
    print(f"N2/cc-pVDZ frozen core: norb {prob.norb}, nelec {prob.nelec}")
    print("\n## sigma (H_el c), one matvec")
    sigma_section(prob, sizes, pyscf_max=args.pyscf_max, repeats=args.repeats)
    print("(W: useful multiply-adds, diag-design.md; B/det tab: table bytes per determinant;")
    print(" B/det scr: per-thread scratch per determinant; each CI vector adds 8 B/det)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
