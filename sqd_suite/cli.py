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
