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
    p.add_argument("--skip-existing", action="store_true", help="leave points whose run file exists")
    p.add_argument("--force", action="store_true", help="overwrite existing complete run files")
    p.set_defaults(func=cmd_scan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SQDInputError as err:
        print(f"sqd: error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("sqd: interrupted; completed iterations are saved (continue with `sqd resume RUN.h5`)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
