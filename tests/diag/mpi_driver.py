"""Run `solve` (or timed sigmas) under MPI on a test problem; rank 0 prints one JSON line.

Launched by tests/diag/test_mpi.py and bench/diag.py as
``mpiexec -n P python tests/diag/mpi_driver.py --npz problem.npz`` (arrays
h1, h2, ecore, norb, nelec, alpha, beta, e.g. from :func:`save_problem`) or
``--problem NAME``. A named problem is built on rank 0 and broadcast: SCF
orbitals of degenerate shells (N2's pi) can come out rotated differently in
different processes, and a string subspace is not invariant to that.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from mpi4py import MPI


def problem(name: str, n_strings: int, seed: int) -> tuple[np.ndarray, np.ndarray, float, int, tuple[int, int], np.ndarray, np.ndarray]:
    """Integrals and (alpha, beta) strings of a named test problem."""
    from pyscf import ao2mo, gto, mcscf, scf
    from pyscf.fci import cistring

    if name == "n2-sto3g":
        mol = gto.M(atom="N 0 0 0; N 0 0 1.1", basis="sto-3g", verbose=0)
        mf = scf.RHF(mol).run()
        c = mf.mo_coeff
        h1 = c.T @ mf.get_hcore() @ c
        h2 = ao2mo.restore(1, ao2mo.kernel(mol, c), mol.nao)
        norb, nelec, ecore = mol.nao, mol.nelec, mol.energy_nuc()
    elif name == "n2-ccpvdz":
        mol = gto.M(atom="N 0 0 0; N 0 0 1.1", basis="cc-pvdz", verbose=0)
        mf = scf.RHF(mol).run()
        mc = mcscf.CASCI(mf, 26, (5, 5))
        h1, ecore = mc.get_h1eff()
        h2 = ao2mo.restore(1, mc.get_h2eff(), 26)
        norb, nelec = 26, (5, 5)
    else:
        raise ValueError(f"unknown problem {name}")
    rng = np.random.default_rng(seed)
    strings = []
    for n in nelec:
        full = np.asarray(cistring.make_strings(range(norb), n), dtype=np.int64)
        if n_strings >= len(full):
            strings.append(full)
            continue
        # Biased toward low orbitals, as sampled strings are; HF string always in.
        weight = np.exp(-0.35 * np.array([sum((int(s) >> p & 1) * p for p in range(norb)) for s in full]))
        pick = rng.choice(len(full), size=n_strings, replace=False, p=weight / weight.sum())
        strings.append(np.union1d(full[:1], full[pick]))
    return h1, h2, float(ecore), norb, tuple(nelec), strings[0], strings[1]


def save_problem(path: str, h1, h2, ecore, norb, nelec, alpha, beta) -> None:  # noqa: ANN001
    np.savez(path, h1=h1, h2=h2, ecore=ecore, norb=norb, nelec=np.asarray(nelec), alpha=alpha, beta=beta)


def load_problem(path: str) -> tuple:
    with np.load(path) as f:
        return (f["h1"], f["h2"], float(f["ecore"]), int(f["norb"]), tuple(int(n) for n in f["nelec"]),
                f["alpha"], f["beta"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problem", default="n2-sto3g")
    ap.add_argument("--npz", default=None, help="load the problem from this file instead")
    ap.add_argument("--strings", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nroots", type=int, default=1)
    ap.add_argument("--tol", type=float, default=1e-12)
    ap.add_argument("--dense-threshold", type=int, default=0)
    ap.add_argument("--truncate", type=int, default=0, help="keep only the first k strings of each spin")
    ap.add_argument("--spin-penalty", type=float, default=0.0)
    ap.add_argument("--spin-target", type=float, default=None)
    ap.add_argument("--sigma-repeats", type=int, default=0, help="time this many sigmas instead of solving")
    ap.add_argument("--grid", type=int, nargs=2, default=None, metavar=("P_A", "P_B"),
                    help="rank grid (alpha blocks, beta blocks); default choose_grid")
    ap.add_argument("--addon-loop", action="store_true",
                    help="run qiskit-addon-sqd's diagonalize_fermionic_hamiltonian with our sci_solver instead")
    ap.add_argument("--scisolver-twice", action="store_true",
                    help="SCISolver on the strings, then on all but the last 3 of each spin (warm) and cold")
    args = ap.parse_args(argv)

    from sqd_suite.diag import solve
    from sqd_suite.diag.distributed import PanelExchange, TileLayout, choose_grid, set_threads_per_rank
    from sqd_suite.diag.hamiltonian import SubspaceHamiltonian

    comm = MPI.COMM_WORLD
    if args.npz:
        h1, h2, ecore, norb, nelec, alpha, beta = load_problem(args.npz)
    else:
        built = problem(args.problem, args.strings, args.seed) if comm.Get_rank() == 0 else None
        h1, h2, ecore, norb, nelec, alpha, beta = comm.bcast(built, root=0)
    if args.truncate:
        alpha, beta = alpha[: args.truncate], beta[: args.truncate]
    out: dict[str, object] = {"ranks": comm.Get_size(), "n_a": len(alpha), "n_b": len(beta)}
    if args.addon_loop:
        import functools

        from qiskit_addon_sqd.fermion import diagonalize_fermionic_hamiltonian

        from sqd_suite.diag import sci_solver

        # Noisy samples around Hartree-Fock (beta half on the left); every rank the same.
        n_a_el, n_b_el = nelec
        p_occ = np.r_[np.full(norb - n_b_el, 0.1), np.full(n_b_el, 0.9), np.full(norb - n_a_el, 0.1),
                      np.full(n_a_el, 0.9)]
        bits = np.random.default_rng(11).random((3000, 2 * norb)) < p_occ
        grid = tuple(args.grid) if args.grid else None
        solver = functools.partial(sci_solver, tol=args.tol, comm=comm if comm.Get_size() > 1 else None, grid=grid)
        res = diagonalize_fermionic_hamiltonian(h1, h2, bits, samples_per_batch=100, norb=norb, nelec=nelec,
                                                num_batches=2, max_iterations=2, seed=3, sci_solver=solver)
        out.update(energy=res.energy, shape=list(res.sci_state.amplitudes.shape),
                   occ_a=np.asarray(res.orbital_occupancies[0]).tolist())
    elif args.scisolver_twice:
        from sqd_suite.diag import SCISolver

        grid = tuple(args.grid) if args.grid else None
        pcomm = comm if comm.Get_size() > 1 else None
        solver = SCISolver(tol=args.tol, comm=pcomm, grid=grid)
        solver([(alpha, beta)], h1, h2, norb, nelec)
        # The next SQD iteration's strings overlap the previous ones.
        nxt = (alpha[:-3], beta[:-3])
        warm = solver([nxt], h1, h2, norb, nelec)
        cold = solve(h1, h2, norb, nelec, *nxt, tol=args.tol, comm=comm, grid=grid)
        out.update(warm_iter=solver.results[0].n_iter, cold_iter=cold.n_iter, warm_energy=warm[0].energy,
                   cold_energy=cold.energy)
    elif args.sigma_repeats:
        threads = set_threads_per_rank(comm) if comm.Get_size() > 1 else None
        grid = tuple(args.grid) if args.grid else choose_grid(comm.Get_size(), len(alpha), len(beta))
        layout = TileLayout.balanced(alpha, beta, norb, grid)
        (a0, a1), (b0, b1) = layout.tile(comm.Get_rank())
        ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, alpha, beta, alpha_range=(a0, a1),
                                                 beta_range=(b0, b1), beta_bounds=layout.beta_bounds)
        x_full = np.random.default_rng(1).normal(size=(len(alpha), len(beta)))
        x = x_full[a0:a1, b0:b1].copy()
        y = np.empty_like(x)
        exchange = None
        if comm.Get_size() > 1:
            exchange = PanelExchange(comm, layout, [ham.needed_alpha_rows(k) for k in range(layout.grid[1])])

        def sigma() -> None:
            if exchange is None:
                ham.matvec(x_full, out=y)
            else:
                exchange.run(x, lambda k, panel: ham.apply_panel(panel, k, y))

        sigma()  # warm-up (JIT)
        comm.Barrier()
        t0 = time.perf_counter()
        c0 = time.process_time()
        for _ in range(args.sigma_repeats):
            sigma()
        # CPU seconds of the busiest rank: on a shared machine wall time also
        # measures how much CPU the scheduler gave us.
        cpu = comm.allreduce((time.process_time() - c0) / args.sigma_repeats, op=MPI.MAX)
        comm.Barrier()
        dt = (time.perf_counter() - t0) / args.sigma_repeats
        norm = comm.allreduce(float(np.vdot(y, y)))
        out.update(sigma_seconds=dt, sigma_cpu_seconds=cpu, sigma_norm=norm, threads=threads, grid=list(grid),
                   bytes_per_sigma=comm.allreduce(exchange.bytes_per_sigma if exchange else 0),
                   buffer_bytes=comm.allgather(exchange.buffer_bytes if exchange else 0),
                   tiles=comm.allgather(layout.tile(comm.Get_rank())),
                   work=comm.allgather(ham.work_per_sigma()))
    else:
        res = solve(h1, h2, norb, nelec, alpha, beta, ecore=ecore, nroots=args.nroots, tol=args.tol,
                    comm=comm, dense_threshold=args.dense_threshold, grid=tuple(args.grid) if args.grid else None,
                    spin_penalty=args.spin_penalty, spin_target=args.spin_target)
        blocks = comm.gather(res.ci if res.ci.ndim == 2 else res.ci[0], root=0)
        out.update(
            energies=res.energies.tolist(),
            spin_square=res.spin_square,
            occ_a=res.occupancies[0].tolist(),
            occ_b=res.occupancies[1].tolist(),
            n_iter=res.n_iter,
            alpha_ranges=comm.allgather(res.alpha_range),
            beta_ranges=comm.allgather(res.beta_range),
            grid=list(res.grid),
            converged=res.converged,
            comm_bytes=comm.allreduce(res.comm_bytes),
            timings=res.timings,
        )
        tiles = comm.gather((res.alpha_range, res.beta_range), root=0)
        if comm.Get_rank() == 0:
            ci = np.zeros((len(alpha), len(beta)))
            for ((a0, a1), (b0, b1)), block in zip(tiles, blocks):
                ci[a0:a1, b0:b1] = block
            out["ci_first"] = ci.ravel()[:20].tolist()
            out["ci_norm"] = float(np.vdot(ci, ci))
    if comm.Get_rank() == 0:
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
