"""Benchmarks of the subspace diagonalizer (sqd_suite.diag) on N2/cc-pVDZ, frozen core (26 orbitals, 5+5).

Sections are separate functions so that more tables can be added next to them:

* ``sigma_section``: table build, one matrix-free sigma against PySCF
  ``selected_ci.contract_2e`` on the same vector, useful multiply-adds W
  (docs/diag.md, diag-design.md) and their rate, bytes per determinant.
* ``solve_section`` (``--solve``): full ``sqd_suite.diag.solve`` against
  qiskit-addon-sqd's default ``solve_sci_batch`` (PySCF ``kernel_fixed_space``)
  on the same strings: time, energy difference, Davidson iterations, peak RSS.
* ``mpi_section`` (``--mpi``): one sigma on 1 rank x 1 thread, 1 rank x 2
  threads and 2 ranks x 1 thread on both grids, 2 x 1 (alpha-row blocks)
  and 1 x 2 (beta-column blocks, two panels per sigma) (``mpiexec -n 2``
  running ``tests/diag/mpi_driver.py``), with the bytes exchanged per sigma
  and each rank's receive buffer.
* ``tile_section`` (``--tiles P ...``): for every grid of P ranks, the
  sigma of each tile timed in this process on one core (the compute of a
  distributed sigma without the network): the sum over tiles against one
  serial sigma (efficiency) and the busiest tile (the speed-up bound). This
  is what ``choose_grid`` is tuned on.
* ``large_section`` (``--large``): D = 1e7 (3200 x 3200 strings) solved to
  1e-6 Ha in a child process: time, iterations, peak RSS, bytes per
  determinant and what that means for D = 1e8.

Per-core rates need one thread for both codes::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python bench/diag.py
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python bench/diag.py --big   # adds 10000 x 10000 (D = 1e8)
    .venv/bin/python bench/diag.py --sizes --solve --mpi           # solver sections only
    .venv/bin/python bench/diag.py --sizes --mpi --mpi-ranks 4     # every 4-rank grid: bytes and buffers
    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python bench/diag.py --sizes --tiles 4 16 64 --tile-size 3000
    .venv/bin/python bench/diag.py --sizes --large                 # D = 1e7 solve (minutes)

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
    """RHF N2/cc-pVDZ, 2 frozen core orbitals: 26 active orbitals, (5, 5) electrons.

    The pi pairs are put in the suite's fixed gauge (``canonical_orbitals``):
    otherwise each process gets its own rotation and, on the same strings,
    its own subspace energy.
    """
    from pyscf import ao2mo, gto, mcscf, scf

    from sqd_suite.hamiltonian import canonical_orbitals

    mol = gto.M(atom=f"N 0 0 0; N 0 0 {bond_length}", basis="cc-pvdz", verbose=0)
    mf = scf.RHF(mol)
    mf.conv_tol = 1e-10
    mf.run()
    mf.mo_coeff = canonical_orbitals(mf.mo_coeff, mf.mo_energy, mf.mo_occ)
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
        # Numba is warm already; the best of `repeats` absorbs first-touch page faults.
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


# ---------------------------------------------------------------- solver sections


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def _peer_solve(prob: N2Problem, sa: np.ndarray, sb: np.ndarray) -> tuple[float, float, float, float]:
    """qiskit-addon-sqd 0.14 ``solve_sci`` step by step: (energy, eigensolver s, RDM s, CPU s).

    The same calls as ``qiskit_addon_sqd.fermion.solve_sci`` (default
    ``SelectedCI``, energy from the 1- and 2-RDMs), timed in two parts.
    """
    from pyscf import fci

    myci = fci.selected_ci.SelectedCI()
    t0, c0 = time.perf_counter(), time.process_time()
    e_eig, vec = fci.selected_ci.kernel_fixed_space(myci, prob.h1, prob.h2, prob.norb, prob.nelec, ci_strs=(sa, sb))
    t_eig = time.perf_counter() - t0
    t1 = time.perf_counter()
    myci.make_rdm1s(vec, prob.norb, prob.nelec)
    dm1 = myci.make_rdm1(vec, prob.norb, prob.nelec)
    dm2 = myci.make_rdm2(vec, prob.norb, prob.nelec)
    energy = np.einsum("pr,pr->", dm1, prob.h1) + 0.5 * np.einsum("prqs,prqs->", dm2, prob.h2)
    return float(energy), t_eig, time.perf_counter() - t1, time.process_time() - c0


def solve_section(prob: N2Problem, sizes: list[int], *, decay: float = 0.3, tol: float = 1e-8) -> list[dict]:
    """Our full solve vs qiskit-addon-sqd's default sci_solver on the same strings (energies without ecore)."""
    from sqd_suite.diag import solve

    warm = sample_strings(prob.norb, prob.nelec[0], 30, decay=decay, seed=1)
    solve(prob.h1, prob.h2, prob.norb, prob.nelec, warm, warm, dense_threshold=0)  # JIT / cache load
    rows = []
    print(f"{'n/spin':>7} {'D':>9} {'ours s':>8} {'iter':>5} {'peer s':>8} {'peer eig s':>10} {'speed-up':>8} "
          f"{'vs eig':>7} {'E ours':>16} {'E ours - E peer':>15} {'RSS GB':>7}")
    for n in sizes:
        sa = sample_strings(prob.norb, prob.nelec[0], n, decay=decay, seed=1)
        sb = sample_strings(prob.norb, prob.nelec[1], n, decay=decay, seed=2)
        t0, c0 = time.perf_counter(), time.process_time()
        res = solve(prob.h1, prob.h2, prob.norb, prob.nelec, sa, sb, tol=tol)
        t_ours, cpu_ours = time.perf_counter() - t0, time.process_time() - c0
        rss_ours = _peak_rss_gb()
        print(f"        ours: {t_ours:.2f} s wall, {cpu_ours:.2f} s CPU, {res.n_iter} iterations, "
              f"E = {res.energy:.10f}; peer running ...", flush=True)
        e_peer, t_eig, t_rdm, cpu_peer = _peer_solve(prob, sa, sb)
        t_peer = t_eig + t_rdm
        row = {"n": n, "D": sa.size * sb.size, "ours_s": t_ours, "iter": res.n_iter, "peer_s": t_peer,
               "peer_eig_s": t_eig, "speedup": t_peer / t_ours, "speedup_eig": t_eig / t_ours,
               "e_ours": res.energy, "de": res.energy - e_peer, "rss_gb": rss_ours, "timings": res.timings,
               "cpu_ours": cpu_ours, "cpu_peer": cpu_peer}
        rows.append(row)
        print(f"{n:>7} {row['D']:>9.2e} {t_ours:8.2f} {res.n_iter:>5} {t_peer:8.2f} {t_eig:10.2f} "
              f"{row['speedup']:8.1f} {row['speedup_eig']:7.1f} {res.energy:16.10f} {row['de']:15.2e} "
              f"{rss_ours:7.2f}", flush=True)
        print("        ours by phase (s): " + ", ".join(f"{k} {v:.2f}" for k, v in res.timings.items()), flush=True)
        print(f"        CPU seconds: ours {cpu_ours:.2f} (all threads), peer {cpu_peer:.2f}: "
              f"ratio {cpu_peer / cpu_ours:.1f}", flush=True)
    print("(peer: qiskit-addon-sqd's solve_sci, i.e. PySCF kernel_fixed_space plus the RDMs it computes for the")
    print(" energy and occupancies; peer eig s: kernel_fixed_space alone; vs eig: speed-up against that alone;")
    print(" RSS GB: peak resident set of this process after our solve, before the peer runs)")
    return rows


def _driver_json(cmd: list[str], env: dict[str, str]) -> dict:
    import json
    import subprocess

    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mpi_section(
    prob: N2Problem, n: int, *, ranks: int = 2, decay: float = 0.3, repeats: int = 5, solve: bool = False
) -> dict:
    """Sigma time on 1 rank (1 and 2 threads) and on ``ranks`` ranks (1 thread each, every grid) via mpiexec.

    Same strings and vector throughout. More ranks than cores oversubscribe
    them: then only the bytes, buffers and work columns mean anything. With
    ``solve``, also the full solve (tol 1e-8) on 1 rank and on every grid.
    """
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    driver = root / "tests" / "diag" / "mpi_driver.py"
    mpiexec = Path(sys.executable).parent / "mpiexec"
    sa = sample_strings(prob.norb, prob.nelec[0], n, decay=decay, seed=1)
    sb = sample_strings(prob.norb, prob.nelec[1], n, decay=decay, seed=2)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "problem.npz")
        np.savez(path, h1=prob.h1, h2=prob.h2, ecore=prob.ecore, norb=prob.norb, nelec=np.asarray(prob.nelec),
                 alpha=sa, beta=sb)
        base = [sys.executable, str(driver), "--npz", path, "--sigma-repeats", str(repeats)]
        env = dict(os.environ)
        runs = {
            "1 rank x 1 thread": ([], {"NUMBA_NUM_THREADS": "1"}),
            "1 rank x 2 threads": ([], {"NUMBA_NUM_THREADS": "2"}),
        }
        for p_b in (d for d in range(1, ranks + 1) if ranks % d == 0):
            runs[f"{ranks} ranks, grid {ranks // p_b} x {p_b}"] = (
                [str(mpiexec), "-n", str(ranks)], {"GRID": f"{ranks // p_b} {p_b}"}
            )
        solves: dict[str, dict] = {}
        for name, (prefix, extra) in runs.items():
            grid = ["--grid", *extra.pop("GRID").split()] if "GRID" in extra else []
            run_env = {**env, **extra, "OMP_NUM_THREADS": "1"}
            out[name] = _driver_json(prefix + base + grid, run_env)
            if solve and name != "1 rank x 2 threads":
                cmd = [*prefix, sys.executable, str(driver), "--npz", path, "--tol", "1e-8", *grid]
                solves[name] = _driver_json(cmd, run_env)
    t1 = out["1 rank x 1 thread"]["sigma_seconds"]
    c1 = out["1 rank x 1 thread"]["sigma_cpu_seconds"]
    print(f"strings per spin {n}, D = {sa.size * sb.size:.2e}; mean of {repeats} sigmas "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'layout':>20} {'wall s':>8} {'speed-up':>8} {'CPU s, busiest rank':>19} {'speed-up':>8} "
          f"{'MB exchanged/sigma':>18} {'buffer MB/rank':>14} {'tiles (a x b strings)':>22} {'W per rank':>16}")
    for name, r in out.items():
        cpu_speedup = f"{c1 / r['sigma_cpu_seconds']:8.2f}" if r["threads"] is not None or name.startswith("1 rank x 1") \
            else f"{'-':>8}"
        tiles = ", ".join(f"{a1 - a0}x{b1 - b0}" for (a0, a1), (b0, b1) in r["tiles"])
        buffers = ", ".join(f"{b / 1e6:.1f}" for b in r["buffer_bytes"])
        work = ", ".join(f"{w:.2e}" for w in r["work"])
        print(f"{name:>20} {r['sigma_seconds']:8.3f} {t1 / r['sigma_seconds']:8.2f} {r['sigma_cpu_seconds']:19.3f} "
              f"{cpu_speedup} {r['bytes_per_sigma'] / 1e6:18.1f} {buffers:>14} {tiles:>22} {work:>16}", flush=True)
    print("(CPU-time speed-up: one rank's CPU seconds over the busiest rank's, i.e. the speed-up on idle cores;")
    print(" meaningless for 2 threads in one process, where CPU time adds up over threads)")
    if solves:
        ref = solves["1 rank x 1 thread"]
        print(f"\nfull solve, tol 1e-8\n{'layout':>20} {'total s':>8} {'speed-up':>8} {'sigma s':>8} {'comm s':>8} "
              f"{'iterations':>10} {'E - E(1 rank) (Ha)':>19} {'MB received':>12}")
        for name, r in solves.items():
            t = r["timings"]
            print(f"{name:>20} {t['total']:8.2f} {ref['timings']['total'] / t['total']:8.2f} {t['sigma']:8.2f} "
                  f"{t['communication']:8.2f} {r['n_iter']:10d} {r['energies'][0] - ref['energies'][0]:19.1e} "
                  f"{r['comm_bytes'] / 1e6:12.1f}", flush=True)
        out["solves"] = solves
    return out


def tile_section(prob: N2Problem, n: int, ranks: list[int], *, decay: float = 0.3, repeats: int = 2) -> list[dict]:
    """Compute per grid: each tile's sigma (its panels applied in turn) timed on this core, same vector."""
    from sqd_suite.diag import TileLayout, choose_grid

    sa = sample_strings(prob.norb, prob.nelec[0], n, decay=decay, seed=1)
    sb = sample_strings(prob.norb, prob.nelec[1], n, decay=decay, seed=2)
    ham = SubspaceHamiltonian.from_integrals(prob.h1, prob.h2, prob.norb, prob.nelec, sa, sb)
    c = np.random.default_rng(0).standard_normal(ham.shape)
    y = ham.matvec(c)
    t_serial = _best_time(lambda: ham.matvec(c, out=y), repeats)
    print(f"strings per spin {n}, D = {sa.size * sb.size:.2e}; one serial sigma {t_serial:.3f} s ({_clock_name()}, "
          f"best of {repeats})")
    print(f"{'ranks':>5} {'grid':>7} {'sum of tiles s':>14} {'efficiency':>10} {'busiest tile s':>14} "
          f"{'speed-up bound':>14} {'choose_grid':>11}")
    rows = []
    for size in ranks:
        chosen = choose_grid(size, sa.size, sb.size)
        for p_b in (d for d in range(1, size + 1) if size % d == 0):
            grid = (size // p_b, p_b)
            layout = TileLayout.balanced(sa, sb, prob.norb, grid)
            bounds = layout.beta_bounds
            panels = [np.ascontiguousarray(c[:, bounds[k] : bounds[k + 1]]) for k in range(p_b)]
            times = []
            for rank in range(size):
                alpha_range, beta_range = layout.tile(rank)
                tile = ham.with_tile(alpha_range, beta_range, beta_bounds=bounds)
                out = np.empty(tile.tile_shape)
                order = [(tile.own_panel + s) % p_b for s in range(p_b)]

                def run(tile=tile, out=out, order=order) -> None:
                    for k in order:
                        tile.apply_panel(panels[k], k, out)

                run()
                times.append(_best_time(run, repeats))
            total, busiest = float(np.sum(times)), float(np.max(times))
            mark = "<-" if grid == chosen else ""
            print(f"{size:5d} {grid[0]:>3}x{grid[1]:<3} {total:14.3f} {t_serial / total:10.2f} {busiest:14.3f} "
                  f"{t_serial / busiest:14.2f} {mark:>11}", flush=True)
            rows.append({"ranks": size, "grid": grid, "sum": total, "busiest": busiest, "serial": t_serial})
    return rows


def large_section(prob: N2Problem, n: int = 3200, *, decay: float = 0.3, tol: float = 1e-6) -> dict:
    """D = n^2 solved to tol in a child process (clean peak RSS); bytes per determinant and the D = 1e8 projection."""
    import json
    import subprocess

    code = (
        "import json, sys, time, resource, numpy as np\n"
        "sys.path.insert(0, %r)\n"
        "import diag as b\n"
        "from sqd_suite.diag import solve\n"
        "from sqd_suite.diag.davidson import davidson_memory_bytes\n"
        "prob = b.n2_problem()\n"
        "sa = b.sample_strings(prob.norb, 5, %d, decay=%r, seed=1)\n"
        "sb = b.sample_strings(prob.norb, 5, %d, decay=%r, seed=2)\n"
        "rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "t0 = time.perf_counter()\n"
        "res = solve(prob.h1, prob.h2, prob.norb, prob.nelec, sa, sb, ecore=prob.ecore, tol=%r)\n"
        "t = time.perf_counter() - t0\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(json.dumps(dict(D=res.dimension, seconds=t, n_iter=res.n_iter, n_matvec=res.n_matvec,\n"
        "    converged=res.converged, energy=res.energy, rss=rss, rss_before=rss0, timings=res.timings,\n"
        "    solver_bytes=res.memory_bytes)))\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), n, decay, n, decay, tol)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    d = r["D"]
    per_det = (r["rss"] - r["rss_before"]) / d
    print(f"D = {d:.3e} ({n} x {n}), tol {tol}: {r['seconds']:.1f} s, {r['n_iter']} iterations "
          f"({r['n_matvec']} sigmas), converged {r['converged']}, E = {r['energy']:.8f}")
    print("  by phase (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()))
    print(f"  peak RSS {r['rss'] / 1e9:.2f} GB (integrals, tables and Python before the solve: "
          f"{r['rss_before'] / 1e9:.2f} GB); solver vectors {r['solver_bytes'] / d:.0f} B/det, "
          f"measured {per_det:.0f} B/det above the baseline")
    from sqd_suite.diag.davidson import davidson_memory_bytes

    # The measured figure counts only touched pages: a basis that never
    # filled (few iterations) is cheaper than the bound, so project with both.
    for m in (12, 10):
        bound = (davidson_memory_bytes(1, max_space=m) + 8)
        print(f"  D = 1e8, max_space {m}: solver bound {bound} B/det = {bound * 1e8 / 1e9:.1f} GB "
              f"(+ tables, which grow with the strings, not with D); fits in 24 GB: {bound * 1e8 < 24e9}")
    print(f"  D = 1e8 at the measured {per_det:.0f} B/det: {per_det * 1e8 / 1e9:.1f} GB")
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[300, 1000, 3000], help="strings per spin")
    parser.add_argument("--big", action="store_true", help="add 10000 strings per spin (D = 1e8, ~2 GB)")
    parser.add_argument("--pyscf-max", type=int, default=1000, help="largest size that also runs PySCF")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many sigma timings")
    parser.add_argument("--solve", action="store_true", help="full solve vs qiskit-addon-sqd (300, 1000 strings)")
    parser.add_argument("--solve-sizes", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--mpi", action="store_true", help="1- vs 2-rank sigma (mpiexec -n 2)")
    parser.add_argument("--mpi-size", type=int, default=1000, help="strings per spin for --mpi")
    parser.add_argument("--mpi-ranks", type=int, default=2, help="ranks for --mpi (every grid of them)")
    parser.add_argument("--mpi-solve", action="store_true", help="with --mpi: also the full solve on every grid")
    parser.add_argument("--tiles", type=int, nargs="*", default=[], metavar="P",
                        help="tile compute for every grid of these rank counts (one core)")
    parser.add_argument("--tile-size", type=int, default=1000, help="strings per spin for --tiles")
    parser.add_argument("--large", action="store_true", help="D = 1e7 solve to 1e-6 Ha (minutes)")
    args = parser.parse_args(argv)
    try:
        from pyscf import lib

        lib.num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ImportError:
        pass
    sizes = list(args.sizes) + ([10_000] if args.big and 10_000 not in args.sizes else [])
    prob = n2_problem()
    print(f"N2/cc-pVDZ frozen core: norb {prob.norb}, nelec {prob.nelec}")
    if sizes:
        print("\n## sigma (H_el c), one matvec")
        sigma_section(prob, sizes, pyscf_max=args.pyscf_max, repeats=args.repeats)
        print("(W: useful multiply-adds, diag-design.md; B/det tab: table bytes per determinant;")
        print(" B/det scr: per-thread scratch per determinant; each CI vector adds 8 B/det)")
    if args.solve:
        print("\n## full solve vs qiskit-addon-sqd solve_sci_batch (wall time)")
        solve_section(prob, args.solve_sizes)
    if args.mpi:
        print(f"\n## MPI: one sigma, 1 vs {args.mpi_ranks} ranks")
        mpi_section(prob, args.mpi_size, ranks=args.mpi_ranks, solve=args.mpi_solve)
    if args.tiles:
        print("\n## tiles: compute of one distributed sigma, per grid, on one core")
        tile_section(prob, args.tile_size, args.tiles)
    if args.large:
        print("\n## D = 1e7 solve")
        large_section(prob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
