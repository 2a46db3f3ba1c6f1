"""The same bitstrings through our SQD loop and through qiskit-addon-sqd's.

For each molecule YAML: build the Hamiltonian and the CCSD-initialised LUCJ
ansatz, sample it once (the YAML's sampler; default the exact sampler with
``global_depolarizing`` 0.1), then run with identical settings
(``samples_per_batch``, ``num_batches``, ``max_iterations``, tolerances,
spin symmetrization, carry-over, HF initial occupancies):

- ``ours``: :class:`sqd_suite.loop.sqd.SQD` (our recovery, subsampling and
  matrix-free Davidson);
- ``addon``: ``qiskit_addon_sqd.fermion.diagonalize_fermionic_hamiltonian``
  with its default PySCF ``solve_sci_batch``;
- ``addon+ours`` (``--drop-in``): the addon's loop with our
  ``sqd_suite.diag.addon.sci_solver``, which separates loop from solver.

The two loops draw their batches from different random streams, so energies
agree statistically, not digit for digit. ``sqd.carryover_threshold`` is an
amplitude in both (``|c| > t``). Printed: energy, error vs the exact reference, subspace
dimension of the reported result, wall time, and the ratios to the addon.

Examples::

    .venv/bin/python bench/sqd_vs_addon.py molecules/h2o.yaml molecules/n2_631g.yaml
    .venv/bin/python bench/sqd_vs_addon.py molecules/n2_631g.yaml --max-iterations 2 --drop-in
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

from sqd_suite.circuits import build_lucj_ansatz
from sqd_suite.config import load_config
from sqd_suite.hamiltonian import build_hamiltonian
from sqd_suite.loop.sqd import SQD
from sqd_suite.sampling import sample


def _row(name: str, energy: float, dims: tuple[int, int], seconds: float, ref: float | None, base: dict | None) -> dict:
    return {
        "solver": name,
        "energy": float(energy),
        "error_mha": None if ref is None else 1e3 * (energy - ref),
        "dim_a": int(dims[0]),
        "dim_b": int(dims[1]),
        "seconds": float(seconds),
        "time_ratio": None if base is None else seconds / base["seconds"],
        "dim_ratio": None if base is None else dims[0] * dims[1] / (base["dim_a"] * base["dim_b"]),
    }


def run_molecule(path: Path, args: argparse.Namespace) -> list[dict]:
    updates: dict = {"sampler.kind": "exact"}
    if args.noise is not None:
        updates["sampler.global_depolarizing"] = args.noise
    for key in ("shots", "samples_per_batch", "num_batches", "max_iterations"):
        value = getattr(args, key)
        if value is not None:
            updates[("sampler." if key == "shots" else "sqd.") + key] = value
    cfg = load_config(path).with_updates(updates)
    t0 = time.perf_counter()
    ham = build_hamiltonian(cfg)
    ansatz = build_lucj_ansatz(ham, cfg.circuit)
    samples = sample(ansatz, cfg.sampler.shots, cfg.sampler, seed=cfg.sampler.seed)
    q = cfg.sqd
    print(f"\n== {ham.label or path.stem}: norb={ham.norb} nelec={ham.nelec}, {cfg.sampler.shots} shots "
          f"(global_depolarizing {cfg.sampler.global_depolarizing}), {samples.n_unique} distinct outcomes; "
          f"samples_per_batch={q.samples_per_batch} x {q.num_batches}, {q.max_iterations} iterations; "
          f"exact {ham.e_exact}  (setup {time.perf_counter() - t0:.1f} s)", flush=True)

    shots = samples.to_shot_matrix()
    occ = ham.initial_occupancies(q.initial_occupancies)
    sym = bool(q.symmetrize_spin and ham.nelec[0] == ham.nelec[1])
    addon_kwargs = dict(
        num_batches=q.num_batches,
        energy_tol=q.energy_tol,
        occupancies_tol=q.occupancies_tol,
        max_iterations=q.max_iterations,
        symmetrize_spin=sym,
        max_dim=q.max_dim,
        initial_occupancies=occ,
        carryover_threshold=q.carryover_threshold,
        seed=cfg.sampler.seed,
    )
    from qiskit_addon_sqd.fermion import diagonalize_fermionic_hamiltonian

    def addon(solver=None):
        kw = dict(addon_kwargs)
        if solver is not None:
            kw["sci_solver"] = solver
        t = time.perf_counter()
        r = diagonalize_fermionic_hamiltonian(ham.h1, ham.h2, shots, q.samples_per_batch, ham.norb, ham.nelec, **kw)
        dims = (len(r.sci_state.ci_strs_a), len(r.sci_state.ci_strs_b)) if r.sci_state is not None else (0, 0)
        return r.energy + ham.ecore, dims, time.perf_counter() - t

    ref = ham.e_exact
    rows = []
    e, d, s = addon()
    base = _row("addon", e, d, s, ref, None)
    base["time_ratio"] = base["dim_ratio"] = 1.0
    print(f"  addon      {e:.8f}  {d[0]}x{d[1]}  {s:.1f} s", flush=True)

    t = time.perf_counter()
    ours = SQD(ham, samples, q, seed=cfg.sampler.seed).kernel()
    s = time.perf_counter() - t
    rows.append(_row("ours", ours.energy, ours.subspace_shape, s, ref, base))
    print(f"  ours       {ours.energy:.8f}  {ours.subspace_shape[0]}x{ours.subspace_shape[1]}  {s:.1f} s", flush=True)
    rows.append(base)
    if args.drop_in:
        from sqd_suite.diag.addon import sci_solver

        e, d, s = addon(functools.partial(sci_solver, tol=q.davidson_tol))
        rows.append(_row("addon+ours", e, d, s, ref, base))
        print(f"  addon+ours {e:.8f}  {d[0]}x{d[1]}  {s:.1f} s", flush=True)
    for r in rows:
        r["molecule"] = ham.label or path.stem
        r["distinct_outcomes"] = int(samples.n_unique)
    return rows


def table(rows: list[dict]) -> str:
    head = (f"{'molecule':<10} {'solver':<11} {'energy (Ha)':>15} {'err (mHa)':>10} {'subspace':>13} "
            f"{'dim/addon':>9} {'time (s)':>9} {'time/addon':>10}")
    out = [head, "-" * len(head)]
    for r in rows:
        err = "" if r["error_mha"] is None else f"{r['error_mha']:.3f}"
        dims = f"{r['dim_a']}x{r['dim_b']}"
        out.append(f"{r['molecule']:<10} {r['solver']:<11} {r['energy']:>15.8f} {err:>10} {dims:>13} "
                   f"{r['dim_ratio']:>9.2f} {r['seconds']:>9.1f} {r['time_ratio']:>10.2f}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("molecules", nargs="*", type=Path, default=[Path("molecules/h2o.yaml"), Path("molecules/n2_631g.yaml")])
    p.add_argument("--noise", type=float, default=None, help="override sampler.global_depolarizing")
    p.add_argument("--shots", type=int, default=None)
    p.add_argument("--samples-per-batch", dest="samples_per_batch", type=int, default=None)
    p.add_argument("--num-batches", dest="num_batches", type=int, default=None)
    p.add_argument("--max-iterations", dest="max_iterations", type=int, default=None)
    p.add_argument("--drop-in", action="store_true", help="also run the addon's loop with our sci_solver")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    rows: list[dict] = []
    for path in args.molecules:
        rows.extend(run_molecule(path, args))
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
