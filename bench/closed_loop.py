"""Closed-loop SQD vs the open loop, generation by generation.

Runs :func:`sqd_suite.loop.closed_loop.run_closed_loop` on a molecule YAML with
the subspace capped (``--max-dim`` strings per spin) so that SQD is not exact,
and prints:

- the per-generation history: best and mean energy of the generation, best so
  far, error against the exact reference, mean/max subspace dimension, time;
- the open loop (generation 0, walker 0: the CCSD-initialised ansatz at the
  same shots per evaluation and the same cap), the closed loop's best, and a
  plain SQD run given the closed loop's *total* shot budget in one sample
  (the fair baseline for the extra shots the closed loop spends).

Examples::

    .venv/bin/python bench/closed_loop.py molecules/lih.yaml --max-dim 5
    .venv/bin/python bench/closed_loop.py molecules/h8_chain.yaml --max-dim 20 --generations 4
    .venv/bin/mpiexec -n 2 .venv/bin/python bench/closed_loop.py molecules/h8_chain.yaml  # walkers in parallel

On a shared machine, set OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1: multi-threaded
BLAS in the small dense eigensolves then stops waiting for busy cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from sqd_suite.circuits import build_lucj_ansatz
from sqd_suite.config import load_config
from sqd_suite.hamiltonian import build_hamiltonian
from sqd_suite.loop.closed_loop import WalkerEvaluation, evaluation_seeds, run_closed_loop
from sqd_suite.loop.sqd import SQD
from sqd_suite.sampling import sample


def _comm():
    try:
        from mpi4py import MPI
    except ImportError:  # pragma: no cover - mpi4py is a dependency
        return None
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("molecule", nargs="?", default="molecules/h8_chain.yaml", type=Path)
    p.add_argument("--optimizer", choices=["differential_evolution", "cobyla", "spsa"], default="differential_evolution")
    p.add_argument("--population", type=int, default=6)
    p.add_argument("--generations", type=int, default=4)
    p.add_argument("--max-evaluations", type=int, default=30, help="cobyla/spsa budget")
    p.add_argument("--init-noise", type=float, default=0.1)
    p.add_argument("--mutation", type=float, default=0.6)
    p.add_argument("--crossover", type=float, default=0.9)
    p.add_argument("--carryover-fraction", type=float, default=None, help="closed_loop.carryover_fraction")
    p.add_argument("--shots", type=int, default=2000, help="shots per evaluation")
    p.add_argument("--noise", type=float, default=0.0, help="exact sampler global_depolarizing")
    p.add_argument("--max-dim", type=int, default=20, help="strings per spin cap (sqd.max_dim)")
    p.add_argument("--samples-per-batch", type=int, default=200)
    p.add_argument("--num-batches", type=int, default=2)
    p.add_argument("--max-iterations", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-budget-baseline", action="store_true", help="skip the plain SQD run with the total shot budget")
    p.add_argument("--json", type=Path, help="also write the history here")
    args = p.parse_args(argv)

    comm = _comm()
    rank = 0 if comm is None else comm.Get_rank()
    say = print if rank == 0 else (lambda *a, **k: None)

    cfg = load_config(args.molecule).with_updates({
        "sampler.kind": "exact",
        "sampler.global_depolarizing": args.noise,
        "sampler.shots": args.shots,
        "sqd.max_dim": args.max_dim,
        "sqd.samples_per_batch": args.samples_per_batch,
        "sqd.num_batches": args.num_batches,
        "sqd.max_iterations": args.max_iterations,
        "closed_loop.enabled": True,
        "closed_loop.optimizer": args.optimizer,
        "closed_loop.population": args.population,
        "closed_loop.generations": args.generations,
        "closed_loop.max_evaluations": args.max_evaluations,
        "closed_loop.init_noise": args.init_noise,
        "closed_loop.mutation": args.mutation,
        "closed_loop.crossover": args.crossover,
        "closed_loop.seed": args.seed,
        **({} if args.carryover_fraction is None else {"closed_loop.carryover_fraction": args.carryover_fraction}),
    })
    t0 = time.perf_counter()
    ham = build_hamiltonian(cfg)
    ansatz = build_lucj_ansatz(ham, cfg.circuit)
    say(f"{ham.label or args.molecule.stem}: norb={ham.norb} nelec={ham.nelec} params={ansatz.n_params} "
        f"HF {ham.e_hf:.8f} CCSD {ham.e_ccsd} exact {ham.e_exact}  ({time.perf_counter() - t0:.1f} s)")
    say(f"optimizer={args.optimizer} shots/eval={args.shots} noise={args.noise} max_dim={args.max_dim} "
        f"carryover_fraction={cfg.closed_loop.carryover_fraction} "
        f"samples_per_batch={args.samples_per_batch} x {args.num_batches} batches, {args.max_iterations} SQD iterations, "
        f"ranks={1 if comm is None else comm.Get_size()}")

    def progress(e: WalkerEvaluation) -> None:
        say(f"  gen {e.generation:>3} walker {e.walker:>2}: E = {e.energy:.8f}  dim {e.subspace_shape[0]}x{e.subspace_shape[1]}"
            f"  distinct outcomes {e.distinct_bitstrings}  carry-in {e.carryover_in[0]}"
            f"  {e.timings['total']:.2f} s (cpu {e.timings['cpu']:.2f} s)",
            flush=True)

    t0 = time.perf_counter()
    res = run_closed_loop(ham, ansatz, cfg.sampler, cfg.sqd, cfg.closed_loop, comm=comm, callback=progress)
    wall = time.perf_counter() - t0

    baseline = None
    total_shots = args.shots * res.n_evaluations
    if not args.no_budget_baseline and rank == 0:
        s_seed, q_seed = evaluation_seeds(args.seed, 0, 0)
        tb = time.perf_counter()
        samples = sample(ansatz, total_shots, cfg.sampler, seed=s_seed)
        plain = SQD(ham, samples, cfg.sqd, seed=q_seed).kernel()
        baseline = (plain.energy, plain.subspace_shape, time.perf_counter() - tb)

    say()
    say(res.table())
    say()
    ref = ham.e_exact

    def err(e: float) -> str:
        return "" if ref is None else f"{1e3 * (e - ref):>10.3f}"

    say(f"{'':<38} {'energy':>16} {'err (mHa)':>10} {'dim':>10}")
    ol = res.open_loop
    say(f"{'open loop (gen 0 walker 0)':<38} {ol.energy:>16.8f} {err(ol.energy)} {ol.subspace_shape[0]:>4}x{ol.subspace_shape[1]:<5}")
    if baseline is not None:
        label = f"plain SQD, {total_shots} shots (same budget)"
        say(f"{label:<38} {baseline[0]:>16.8f} {err(baseline[0])} {baseline[1][0]:>4}x{baseline[1][1]:<5}")
    b = res.best
    say(f"{'closed loop best (gen %d walker %d)' % (b.generation, b.walker):<38} {res.energy:>16.8f} {err(res.energy)} "
        f"{b.subspace_shape[0]:>4}x{b.subspace_shape[1]:<5}")
    if ham.e_ccsd is not None:
        say(f"{'CCSD':<38} {ham.e_ccsd:>16.8f} {err(ham.e_ccsd)}")
    if ref is not None:
        say(f"{'exact':<38} {ref:>16.8f}")
    cpu = sum(e.timings.get("cpu", 0.0) for e in res.evaluations)
    say(f"closed loop lowers the open-loop energy by {1e3 * res.improvement:.3f} mHa "
        f"({res.n_evaluations} evaluations, {wall:.1f} s wall, {cpu:.1f} s cpu in evaluations)")
    if args.json and rank == 0:
        args.json.write_text(json.dumps({
            "molecule": str(args.molecule), "args": {k: str(v) for k, v in vars(args).items()},
            "e_exact": ref, "open_loop": ol.energy, "closed_loop": res.energy,
            "budget_baseline": None if baseline is None else baseline[0],
            "generations": [g.__dict__ for g in res.generations],
            "evaluations": [{"generation": e.generation, "walker": e.walker, "energy": e.energy,
                             "dim": list(e.subspace_shape), "seconds": e.timings["total"]} for e in res.evaluations],
            "wall_s": wall,
        }, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
