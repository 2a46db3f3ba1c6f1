"""The ``sqd`` command.

Sub-commands: ``hamiltonian`` (build and inspect the active-space
Hamiltonian), ``run``, ``resume``, ``report`` and ``scan``. Bad input ends
with one line on stderr and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sqd_suite.errors import SQDInputError

__all__ = ["main"]

EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _fmt_energy(e: float | None) -> str:
    return "-" if e is None else f"{e:.8f}"


def cmd_hamiltonian(args: argparse.Namespace) -> int:
    """Build the Hamiltonian of a molecule YAML, print its energies, write it out."""
    from rich.table import Table

    from sqd_suite.config import load_config
    from sqd_suite.hamiltonian import build_hamiltonian
    from sqd_suite.store import atomic_path

    config = load_config(args.config)
    if args.exact_max_dim is not None:
        config = config.with_updates({"active_space.exact_max_dim": args.exact_max_dim})
    console = _console()
    with console.status("SCF, active space, CCSD and exact reference ..."):
        ham = build_hamiltonian(config)
    table = Table(title=f"{config.run_name}: {ham.label}", show_header=True)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("active orbitals (norb)", str(ham.norb))
    table.add_row("active electrons (alpha, beta)", f"{ham.nelec[0]}, {ham.nelec[1]}")
    table.add_row("qubits", str(ham.n_qubits))
    table.add_row("full-space determinants", f"{ham.fci_dimension:,}")
    table.add_row("core energy (Ha)", _fmt_energy(ham.ecore))
    table.add_row("HF energy (Ha)", _fmt_energy(ham.e_hf))
    ccsd = _fmt_energy(ham.e_ccsd) + ("" if ham.ccsd_converged in (None, True) else " (not converged)")
    table.add_row("CCSD energy (Ha)", ccsd)
    exact = (
        f"{_fmt_energy(ham.e_exact)} ({ham.exact_method})"
        if ham.e_exact is not None
        else f"- (full space {ham.fci_dimension:.2e} > exact_max_dim {config.active_space.exact_max_dim:.2e})"
    )
    table.add_row("exact energy (Ha)", exact)
    console.print(table)
    fcidump = args.fcidump
    if fcidump is None and args.h5 is None:
        fcidump = config.output_path.with_suffix(".fcidump")
    if fcidump is not None:
        fcidump = Path(fcidump)
        fcidump.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(fcidump) as tmp:
            ham.to_fcidump(tmp)
        console.print(f"wrote {fcidump}")
    if args.h5 is not None:
        from sqd_suite.store import write_hamiltonian_h5

        h5 = Path(args.h5)
        h5.parent.mkdir(parents=True, exist_ok=True)
        write_hamiltonian_h5(h5, ham)
        console.print(f"wrote {h5}")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """One run file per point of a geometry (or any config field) scan."""
    from sqd_suite.scan import scan_command

    return scan_command(args, _console())


def _rank() -> int:
    """This process's MPI rank from the launcher's environment (0 when serial)."""
    import os

    for var in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _mha(x: float | None) -> str:
    return "-" if x is None else f"{1e3 * x:+.3f}"


class _Progress:
    """The `sqd run` display: a spinner per stage, a line per iteration, an iteration bar."""

    def __init__(self, console, max_iterations: int, e_exact: float | None = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console
        self.e_exact = e_exact
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        )
        self.task = self.progress.add_task("preparing", total=max_iterations)
        self.header = False

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def stage(self, message: str) -> None:
        self.progress.console.print(f"[dim]{message}[/dim]")
        self.progress.update(self.task, description=message.split(":")[0])
        if message.startswith("resuming after iteration"):
            done = int(message.rsplit(" ", 1)[1]) + 1
            self.progress.update(self.task, completed=done)

    def hamiltonian(self, hamiltonian) -> None:
        self.e_exact = hamiltonian.e_exact

    def iteration(self, record, elapsed_s: float) -> None:
        if not self.header:
            self.progress.console.print(
                f"{'iter':>4} {'energy (Ha)':>14} {'dE (Ha)':>8} {'err (mHa)':>9} "
                f"{'n_a x n_b':>11} {'dimension':>10} {'distinct':>10} {'sec':>6}",
                soft_wrap=True,
            )
            self.header = True
        err = None if self.e_exact is None else record.energy - self.e_exact
        de = "-" if record.energy_change != record.energy_change else f"{record.energy_change:.1e}"
        shape = f"{record.subspace_shape[0]} x {record.subspace_shape[1]}"
        distinct = f"{record.distinct_strings[0]}/{record.distinct_strings[1]}"
        self.progress.console.print(
            f"{record.iteration:>4} {record.energy:>14.8f} {de:>8} {_mha(err):>9} {shape:>11} "
            f"{record.dimension:>10,} {distinct:>10} {record.timings.get('total', 0.0):>6.1f}",
            soft_wrap=True,
        )
        self.progress.update(self.task, advance=1, description=f"SQD loop, E = {record.energy:.6f}")


def _summary_table(summary: dict, title: str):
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    energy = summary["final_energy"]
    label = "SQD energy (Ha)" if summary["energy_is_final"] else "SQD energy, last iteration (Ha)"
    table.add_row(label, _fmt_energy(energy))
    for key, name in (("e_hf", "Hartree-Fock (Ha)"), ("e_ccsd", "CCSD (Ha)")):
        if summary.get(key) is not None:
            table.add_row(name, f"{_fmt_energy(summary[key])}  ({_mha(energy - summary[key]) if energy is not None else '-'} mHa)")
    if summary["e_exact"] is not None:
        table.add_row(f"exact, {summary.get('exact_method') or 'reference'} (Ha)", _fmt_energy(summary["e_exact"]))
        table.add_row("error vs exact (mHa)", _mha(summary["error"]))
    else:
        table.add_row("exact reference", "none (space too large); the error is unknown")
    shape = summary["subspace_shape"]
    if shape is not None:
        frac = summary["subspace_dimension"] / summary["fci_dimension"] if summary.get("fci_dimension") else None
        table.add_row(
            "subspace n_alpha x n_beta = dimension",
            f"{shape[0]} x {shape[1]} = {summary['subspace_dimension']:,}"
            + (f" ({100 * frac:.3g} % of {summary['fci_dimension']:,})" if frac is not None else ""),
        )
    if summary.get("distinct_strings") is not None:
        table.add_row("distinct alpha / beta strings (all batches)", "{} / {}".format(*summary["distinct_strings"]))
    table.add_row("iterations", str(summary["iterations"]))
    table.add_row("shots", f"{summary['shots']:,}" if summary.get("shots") else "-")
    table.add_row("wall time (s)", f"{summary['wall_time_s']:.1f}")
    if summary["status"] != "complete":
        status = f"[yellow]incomplete ({summary['status']}); continue with `sqd resume`[/yellow]"
    elif summary["ok"]:
        status = "[green]converged[/green]"
    elif summary["converged"] and any(("tiny" in w or "not below" in w) for w in summary["warnings"]):
        status = "[red]self-consistent, but POOR (warnings below)[/red]"
    elif summary["converged"]:
        status = "[yellow]converged, with warnings (below)[/yellow]"
    else:
        status = "[red]NOT converged[/red]"
    table.add_row("status", status)
    return table


def _print_warnings(console, summary: dict) -> None:
    for w in summary["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


def cmd_run(args: argparse.Namespace) -> int:
    """Run SQD for a molecule YAML and write the run file."""
    from sqd_suite.config import load_config
    from sqd_suite.hpc import world_comm
    from sqd_suite.runner import run
    from sqd_suite.store import read_run

    config = load_config(args.config)
    comm = world_comm()
    root = comm is None or comm.Get_rank() == 0
    output = Path(args.output) if args.output is not None else config.output_path
    console = _console()
    if root:
        console.print(f"[bold]{config.run_name}[/bold] -> {output}"
                      + (f" ({comm.Get_size()} MPI ranks)" if comm is not None else ""))
    display = _Progress(console, config.sqd.max_iterations) if root else None
    if display is not None:
        with display:
            run(config, output=output, force=args.force, comm=comm, observer=display)
    else:
        run(config, output=output, force=args.force, comm=comm)
    if root:
        summary = read_run(output).summary()
        console.print(_summary_table(summary, f"{config.run_name}: {summary['molecule']}"))
        _print_warnings(console, summary)
        console.print(f"wrote {output}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue an interrupted run from its last complete iteration."""
    from sqd_suite.hpc import world_comm
    from sqd_suite.runner import resume
    from sqd_suite.store import read_run

    comm = world_comm()
    root = comm is None or comm.Get_rank() == 0
    console = _console()
    display = None
    if root:
        record = read_run(args.run)  # one-line error for a corrupt file, before any work
        import yaml

        cfg = yaml.safe_load(record.config_yaml) or {}
        max_it = int((cfg.get("sqd") or {}).get("max_iterations", 10))
        display = _Progress(console, max_it, e_exact=record.e_exact)
        console.print(f"resuming {args.run}: {len(record.iterations)} complete iteration(s) on disk")
    if display is not None:
        with display:
            resume(args.run, comm=comm, observer=display)
    else:
        resume(args.run, comm=comm)
    if root:
        summary = read_run(args.run).summary()
        console.print(_summary_table(summary, f"{summary['name']}: {summary['molecule']}"))
        _print_warnings(console, summary)
    return 0


def _plot_run(record, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = record.iterations
    x = [r.iteration for r in its]
    e = [r.energy for r in its]
    dims = [r.dimension for r in its]
    e_exact = record.e_exact
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True)
    if e_exact is not None:
        err = [max(v - e_exact, 1e-10) * 1e3 for v in e]
        ax1.set_yscale("log")
        ax1.set_ylim(min(err + [1.6]) / 3, max(err + [1.6]) * 3)
        ax1.plot(x, err, "o-", label="best batch, inner tolerance")
        if record.result is not None:
            ax1.plot([x[-1]], [max(record.result["energy"] - e_exact, 1e-10) * 1e3], "s", label="final")
        ax1.axhline(1.6, color="gray", ls="--", lw=0.8, label="chemical accuracy (1.6 mHa)")
        ax1.set_ylabel(f"E - E_{record.hamiltonian.get('exact_method') or 'exact'} (mHa)")
    else:
        ax1.plot(x, e, "o-", label="best batch")
        ax1.set_ylabel("energy (Ha)")
        for key, name in (("e_hf", "HF"), ("e_ccsd", "CCSD")):
            v = record.hamiltonian.get(key)
            if v is not None:
                ax1.axhline(v, ls="--", lw=0.8, color="gray")
                ax1.annotate(name, (x[0], v), fontsize=8)
    ax1.legend(fontsize=8)
    ax1.set_title(f"{record.attrs.get('run_name', '')}: {record.hamiltonian.get('label', '')}")
    ax2.set_yscale("log")
    ax2.set_ylim(min(dims) / 2, max(dims) * 2)
    ax2.plot(x, dims, "o-")
    ax2.set_ylabel("subspace dimension")
    ax2.set_xlabel("iteration")
    ax2.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_report(args: argparse.Namespace) -> int:
    """Summarise a run file: iteration table, summary, convergence plot, or JSON."""
    import json

    from sqd_suite.store import read_run

    record = read_run(args.run)
    summary = record.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    from rich.table import Table

    console = _console()
    e_exact = record.e_exact
    table = Table(title=f"{args.run}: iterations", show_header=True)
    for col in ("iter", "energy (Ha)", "dE (Ha)", "vs exact (mHa)", "n_a x n_b", "dimension", "distinct a/b",
                "<S^2>", "time (s)"):
        table.add_column(col, justify="right")
    for r in record.iterations:
        table.add_row(
            str(r.iteration), f"{r.energy:.8f}",
            "-" if r.energy_change != r.energy_change else f"{r.energy_change:.1e}",
            _mha(None if e_exact is None else r.energy - e_exact),
            f"{r.subspace_shape[0]} x {r.subspace_shape[1]}", f"{r.dimension:,}",
            f"{r.distinct_strings[0]}/{r.distinct_strings[1]}", f"{r.spin_square:.4f}",
            f"{r.timings.get('total', 0.0):.1f}",
        )
    console.print(table)
    console.print(_summary_table(summary, f"{summary['name']}: {summary['molecule']}"))
    _print_warnings(console, summary)
    if record.result is not None and len(record.result["top_coef"]):
        top = Table(title="largest determinants of the final vector", show_header=True)
        top.add_column("alpha occupation (orbital 0 first)")
        top.add_column("beta occupation")
        top.add_column("coefficient", justify="right")
        norb = int(record.hamiltonian["norb"])
        for a, b, c in list(zip(record.result["top_alpha"], record.result["top_beta"], record.result["top_coef"]))[:args.top]:
            top.add_row(format(int(a), f"0{norb}b")[::-1], format(int(b), f"0{norb}b")[::-1], f"{c:+.6f}")
        console.print(top)
    if record.iterations and not args.no_plot:
        plot = Path(args.plot) if args.plot else Path(args.run).with_suffix(".png")
        _plot_run(record, plot)
        console.print(f"wrote {plot}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqd",
        description="Sample-based quantum diagonalization (SQD) for molecules: "
        "from a molecule YAML to energies in an HDF5 run file.",
        epilog="Examples: `sqd hamiltonian molecules/h2o.yaml`, `sqd run molecules/h2o.yaml`. "
        "See `sqd COMMAND --help`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "hamiltonian",
        help="build the active-space Hamiltonian and print HF, CCSD and exact energies",
        description="Run SCF and CCSD in PySCF, build the active-space integrals, compute the exact "
        "(FCI/CASCI) energy when the space is small enough, and write the integrals as an FCIDUMP "
        "(default: next to the run file) and/or HDF5.",
    )
    p.add_argument("config", type=Path, help="molecule/run YAML (see molecules/)")
    p.add_argument("--fcidump", type=Path, help="write the integrals to this FCIDUMP file")
    p.add_argument("--h5", type=Path, help="write the integrals and energies to this HDF5 file")
    p.add_argument("--exact-max-dim", type=float, help="override active_space.exact_max_dim")
    p.set_defaults(func=cmd_hamiltonian)

    p = sub.add_parser(
        "run",
        help="run SQD for a molecule YAML and write an HDF5 run file",
        description="Build the Hamiltonian, the CCSD-initialised LUCJ circuit, sample it, run the "
        "self-consistent SQD loop and write every iteration to the run file as it completes. "
        "Works under `mpiexec -n N` (rank 0 writes and prints).",
        epilog="Example: `sqd run molecules/h2o.yaml`; then `sqd report runs/h2o.h5`.",
    )
    p.add_argument("config", type=Path, help="molecule/run YAML (see molecules/)")
    p.add_argument("--output", "-o", type=Path, help="run file (default: output.path or runs/<name>.h5)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run file")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "resume",
        help="continue an interrupted run from its last complete iteration",
        description="Continue a killed or interrupted run: the final energy equals that of an "
        "uninterrupted run (every iteration's randomness depends only on the seed and its index).",
    )
    p.add_argument("run", type=Path, help="run file written by `sqd run`")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser(
        "report",
        help="summarise a run file: iteration table, errors, convergence plot, or --json",
        description="Print the iterations and the result of a run file (complete or not) and write a "
        "convergence plot (PNG).",
    )
    p.add_argument("run", type=Path, help="run file written by `sqd run`")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary only")
    p.add_argument("--plot", type=Path, help="PNG path (default: the run file with .png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.add_argument("--top", type=int, default=10, help="largest determinants to list (default 10)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "scan",
        help="run a potential-energy curve: one run file per value of a geometry variable",
        description="Vary molecule.variables (or a dotted config field) over a grid and run SQD at every "
        "point, writing <output-dir>/<name>=<value>.h5. Several --param options give their product.",
        epilog="Example: `sqd scan molecules/n2_631g.yaml --param bond_length=0.9:1.5:0.1 --dry-run`.",
    )
    p.add_argument("config", type=Path, help="molecule/run YAML whose atom uses {name} placeholders")
    p.add_argument("--param", action="append", required=True, metavar="NAME=START:STOP:STEP|V1,V2,...",
                   help="values of a variable; the stop is included when it lies on the grid")
    p.add_argument("--output-dir", type=Path, help="folder of the run files (default runs/<name>)")
    p.add_argument("--dry-run", action="store_true", help="print the points and run files, run nothing")
    p.add_argument("--emit-yaml", type=Path, metavar="DIR",
                   help="write one YAML per point (and points.txt) for a job array, run nothing")
    p.add_argument("--only", type=int, action="append", metavar="INDEX",
                   help="run only this point (repeatable; a job-array task passes its index)")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave points whose run file is complete; resume unfinished ones")
    p.add_argument("--force", action="store_true", help="overwrite existing complete run files")
    p.set_defaults(func=cmd_scan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sqd_suite.hpc import guard_serial_slurm

    # Before anything imports qiskit-addon-sqd: a serial run inside a Slurm job stays serial.
    guard_serial_slurm()
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SQDInputError as err:
        if _rank() == 0:
            print(f"sqd: error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        if _rank() == 0:
            print("sqd: interrupted; completed iterations are saved (continue with `sqd resume RUN.h5`)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
