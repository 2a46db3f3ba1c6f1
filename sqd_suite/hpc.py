"""Running on a cluster: the serial-in-Slurm guard, job sizing and the MPI launcher.

Three things the batch scripts in ``jobs/`` need from Python:

* :func:`guard_serial_slurm` -- qiskit-addon-sqd switches itself to MPI mode
  at import time whenever ``SLURM_NTASKS`` (or ``PMI_SIZE``,
  ``OMPI_COMM_WORLD_SIZE``, ``MPI_LOCALNRANKS``) is in the environment
  (``qiskit_addon_sqd/processes.py: _detect_mpi``). Inside every Slurm job
  ``SLURM_NTASKS`` is set, also for a plain serial ``sqd run`` in the batch
  step, which then initialises MPI as a singleton and takes collective code
  paths. The guard hides the variable from processes that were not started by
  an MPI launcher. Call it before anything imports ``qiskit_addon_sqd``.
* :func:`estimate_resources` -- ranks, nodes and memory per rank derived from
  the largest batch subspace a config can produce.
* :func:`launcher_command` -- ``srun`` inside Slurm when it can start mpi4py
  ranks, otherwise ``mpiexec`` (the mpich wheel's Hydra; PyPI's mpich and a
  site's ``srun`` often do not share a PMI), or ``$SQD_LAUNCHER``.

``python -m sqd_suite.hpc resources FILE.yaml`` and
``python -m sqd_suite.hpc launcher --ranks N`` expose the last two to shell
scripts.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqd_suite.errors import SQDInputError

__all__ = [
    "JobResources",
    "check_mpi_world",
    "davidson_bytes_per_determinant",
    "world_comm",
    "estimate_resources",
    "guard_serial_slurm",
    "launched_by_mpi",
    "launcher_command",
    "main",
]

# Set by MPI launchers in every rank they start (Hydra/PMI, PMIx, Open MPI, Spectrum).
_RANK_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
# Where the guard keeps the value it hides, so job sizing can still read it.
SAVED_NTASKS_VAR = "SQD_SLURM_NTASKS"


def launched_by_mpi(environ: Mapping[str, str] | None = None) -> bool:
    """True when this process is a rank started by mpiexec/mpirun or an srun step."""
    env = os.environ if environ is None else environ
    if any(var in env for var in _RANK_VARS):
        return True
    # srun exports SLURM_STEP_NUM_TASKS into the tasks of a step; the batch step lacks it.
    # A one-task step (`srun python ...`) is a serial process as far as MPI is concerned.
    tasks = env.get("SLURM_STEP_NUM_TASKS", "")
    return "SLURM_PROCID" in env and tasks.isdigit() and int(tasks) > 1


def guard_serial_slurm(environ: MutableMapping[str, str] | None = None) -> bool:
    """Keep qiskit-addon-sqd serial in a serial process inside a Slurm job.

    Removes ``SLURM_NTASKS`` (saved as ``SQD_SLURM_NTASKS``) unless the process
    was started by an MPI launcher. If ``qiskit_addon_sqd.processes`` was
    already imported and chose MPI mode on a one-rank world, it is reset to
    serial too. Returns True when it changed anything. Idempotent.
    """
    env = os.environ if environ is None else environ
    if launched_by_mpi(env) or "SLURM_NTASKS" not in env:
        return False
    env[SAVED_NTASKS_VAR] = env.pop("SLURM_NTASKS")
    if environ is None:
        _reset_addon_process_group()
    return True


def _reset_addon_process_group() -> None:
    processes = sys.modules.get("qiskit_addon_sqd.processes")
    group = getattr(processes, "_process_group", None)
    # Only a one-rank "MPI mode" is wrong here; a real multi-rank world is left alone.
    if group is not None and group.mpi_enabled and group.process_count == 1:
        processes._process_group = type(group)()  # type: ignore[union-attr]


def check_mpi_world(size: int, environ: Mapping[str, str] | None = None) -> None:
    """Fail fast when srun started N tasks but MPI sees a world of one in each.

    That happens when the MPI library (e.g. mpich from PyPI) and Slurm's srun
    do not speak the same PMI: every task would run the whole job alone and
    they would all write the same run file.
    """
    env = os.environ if environ is None else environ
    step_tasks = env.get("SLURM_STEP_NUM_TASKS")
    if step_tasks and step_tasks.isdigit() and int(step_tasks) > 1 and size == 1 and "SLURM_PROCID" in env:
        raise SQDInputError(
            "srun",
            f"srun started {step_tasks} tasks but MPI sees a world of 1 in each "
            "(the MPI library and Slurm do not share a PMI)",
            fix="launch with mpiexec inside the allocation (SQD_LAUNCHER=mpiexec) or try srun --mpi=pmi2",
        )


def world_comm() -> Any | None:
    """``MPI.COMM_WORLD`` when this process is one of several launched ranks, else None.

    mpi4py is imported only for launched ranks, so a serial run never
    initialises MPI (no singleton start-up, nothing nested under a launcher).
    """
    if not launched_by_mpi():
        return None
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    check_mpi_world(comm.Get_size())
    return comm if comm.Get_size() > 1 else None


# ---------------------------------------------------------------------------
# Job sizing
# ---------------------------------------------------------------------------

def davidson_bytes_per_determinant() -> int:
    """Solver memory per local determinant: the Davidson's vectors plus the sigma output.

    Taken from :func:`sqd_suite.diag.davidson.davidson_memory_bytes` (one
    root, default basis size) so the sizing follows the solver (docs/diag.md).
    """
    from sqd_suite.diag.davidson import davidson_memory_bytes

    return davidson_memory_bytes(1) + 8


# Interpreter, NumPy/PySCF/Qiskit and the excitation tables of a few thousand strings.
_BASE_BYTES = 1_000_000_000


@dataclass(frozen=True)
class JobResources:
    """What one run needs, from the largest subspace its config can produce."""

    strings_per_spin: int
    dimension: int
    bytes_per_determinant: int
    ranks: int
    ranks_per_walker: int
    walkers: int
    nodes: int
    mem_per_rank_mb: int
    ranks_per_node: int

    def sbatch_flags(self) -> list[str]:
        return [
            f"--nodes={self.nodes}",
            f"--ntasks={self.ranks}",
            f"--ntasks-per-node={min(self.ranks, self.ranks_per_node)}",
            f"--mem-per-cpu={self.mem_per_rank_mb}M",
        ]

    def pbs_select(self) -> str:
        per_node = min(self.ranks, self.ranks_per_node)
        return f"select={self.nodes}:ncpus={per_node}:mpiprocs={per_node}:mem={per_node * self.mem_per_rank_mb}mb"

    def shell(self) -> str:
        """KEY=VALUE lines for ``eval`` in a job script."""
        return "\n".join(f"SQD_{k.upper()}={v}" for k, v in asdict(self).items())


def _max_strings_per_spin(norb: int, nelec: tuple[int, int], sqd: object) -> int:
    spb: int = sqd.samples_per_batch  # type: ignore[attr-defined]
    # A batch of spb bitstrings has at most spb distinct strings per spin; the
    # spin-symmetrised union doubles that, carry-over strings add at most as many again.
    per_spin = spb * (2 if sqd.symmetrize_spin else 1) + spb  # type: ignore[attr-defined]
    full = max(math.comb(norb, nelec[0]), math.comb(norb, nelec[1]))
    bound = min(per_spin, full)
    if sqd.max_dim is not None:  # type: ignore[attr-defined]
        bound = min(bound, sqd.max_dim)  # type: ignore[attr-defined]
    return bound


def _active_space_size(config: object) -> tuple[int, tuple[int, int]]:
    """(norb, nelec) of the active space without running SCF."""
    act = config.active_space  # type: ignore[attr-defined]
    if act.fcidump is not None:
        from pyscf.tools import fcidump

        data = fcidump.read(str(config.resolve(act.fcidump)), verbose=False)  # type: ignore[attr-defined]
        ntot, ms2 = int(data["NELEC"]), int(data.get("MS2", 0))
        return int(data["NORB"]), ((ntot + ms2) // 2, (ntot - ms2) // 2)
    from sqd_suite.hamiltonian import _active_orbitals, _make_mole

    mol = _make_mole(config)
    active, nelec = _active_orbitals(config, mol, int(mol.nao_nr()))
    return len(active), nelec


def estimate_resources(
    config: object,
    *,
    ranks_per_node: int = 48,
    mem_per_node_gb: float = 192.0,
    dets_per_rank: float = 2e6,
    max_ranks: int | None = None,
    norb: int | None = None,
    nelec: tuple[int, int] | None = None,
) -> JobResources:
    """Ranks, nodes and memory per rank for a :class:`~sqd_suite.config.RunConfig`.

    The largest batch subspace has D = n_strings**2 determinants, n_strings
    bounded by samples_per_batch (doubled by spin symmetrisation, plus
    carry-over), the full string count and ``sqd.max_dim``. Ranks are chosen
    so each holds about ``dets_per_rank`` determinants (a sigma of a few
    seconds per core) and, at least, so that the rank's Davidson vectors fit
    next to its worst-case receive buffer (both fall as ``1 / ranks`` with
    the tile layout that ``solve`` chooses, docs/diag.md). With ``closed_loop.enabled``
    every walker of a generation gets that many ranks and they run together.
    """
    if norb is None or nelec is None:
        norb, nelec = _active_space_size(config)
    n_str = _max_strings_per_spin(norb, nelec, config.sqd)  # type: ignore[attr-defined]
    dim = n_str * n_str
    from sqd_suite.diag.distributed import choose_grid, receive_buffer_bytes

    mem_per_rank = mem_per_node_gb * 1e9 / ranks_per_node
    per_det = davidson_bytes_per_determinant()

    def rank_bytes(ranks: int) -> float:
        # Davidson vectors of the rank's tile plus the panels it receives (choose_grid's layout).
        p_b = choose_grid(ranks, n_str, n_str)[1]
        return _BASE_BYTES + per_det * math.ceil(dim / ranks) + receive_buffer_bytes(n_str, n_str, p_b)

    free = mem_per_rank - _BASE_BYTES
    if free <= 0:
        raise SQDInputError(
            "sqd.samples_per_batch",
            f"{mem_per_rank / 1e9:.1f} GB per rank leaves no room beside the {_BASE_BYTES / 1e9:.0f} GB base",
            fix="use fewer ranks per node (more memory per rank)",
        )
    by_work = max(1, math.ceil(dim / dets_per_rank))
    # Memory per rank falls as 1 / ranks (tiles, docs/diag.md); take the fewest ranks that fit.
    by_memory = max(1, math.ceil(per_det * dim / free))
    while rank_bytes(by_memory) > mem_per_rank:
        by_memory += 1
    ranks = max(by_work, by_memory)
    if max_ranks is not None:
        ranks = max(by_memory, min(ranks, max_ranks))
    ranks = min(ranks, max(1, dim))
    walkers = config.closed_loop.population if config.closed_loop.enabled else 1  # type: ignore[attr-defined]
    per_rank_bytes = rank_bytes(ranks)
    total = ranks * walkers
    return JobResources(
        strings_per_spin=n_str,
        dimension=dim,
        bytes_per_determinant=per_det,
        ranks=total,
        ranks_per_walker=ranks,
        walkers=walkers,
        nodes=math.ceil(total / ranks_per_node),
        # Round up to 100 MB so the request is readable and never too tight.
        mem_per_rank_mb=int(math.ceil(per_rank_bytes / 1e8) * 100),
        ranks_per_node=ranks_per_node,
    )


# ---------------------------------------------------------------------------
# The MPI launcher
# ---------------------------------------------------------------------------

_PROBE = "from mpi4py import MPI; print(MPI.COMM_WORLD.Get_size())"


def _srun_speaks_mpi(srun: list[str], nranks: int, python: str, timeout: float) -> bool:
    """Start nranks tasks with this srun command and check that mpi4py sees them as one world."""
    try:
        out = subprocess.run(
            [*srun, "-n", str(nranks), python, "-c", _PROBE],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    sizes = out.stdout.split()
    return out.returncode == 0 and len(sizes) == nranks and all(s == str(nranks) for s in sizes)


def _find_mpiexec(python: str, environ: Mapping[str, str]) -> str:
    found = shutil.which("mpiexec", path=environ.get("PATH"))
    if found:
        return found
    # The mpich wheel installs mpiexec next to the venv's python.
    beside = Path(python).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    raise SQDInputError(
        "launcher", "no mpiexec on PATH or next to the Python interpreter",
        fix="install the mpich wheel into the venv or set SQD_LAUNCHER",
    )


def launcher_command(
    nranks: int,
    *,
    environ: Mapping[str, str] | None = None,
    python: str | None = None,
    probe_timeout: float = 120.0,
) -> list[str]:
    """The command prefix that starts ``nranks`` MPI ranks here.

    ``$SQD_LAUNCHER`` (e.g. ``"srun --mpi=pmi2"`` or ``"mpiexec"``) wins; the
    rank count is appended as ``-n N``. Inside a Slurm allocation ``srun`` (or
    ``srun --mpi=pmi2``) is used when a probe shows mpi4py ranks see each
    other; otherwise (and under PBS or no scheduler) ``mpiexec``, from PATH or
    beside ``python``; Hydra's mpiexec starts its proxies through Slurm or
    the PBS node file.
    """
    env = os.environ if environ is None else environ
    python = python or sys.executable
    if nranks < 1:
        raise SQDInputError("--ranks", f"must be at least 1 (got {nranks})", fix="give a positive rank count")
    chosen = env.get("SQD_LAUNCHER", "").strip()
    if chosen:
        return [*shlex.split(chosen), "-n", str(nranks)]
    if "SLURM_JOB_ID" in env and shutil.which("srun", path=env.get("PATH")):
        # The site's default MPI plugin first, then PMI-2, which MPICH's PMI-1 client also speaks.
        for srun in (["srun"], ["srun", "--mpi=pmi2"]):
            if _srun_speaks_mpi(srun, nranks, python, probe_timeout):
                return [*srun, "-n", str(nranks)]
    cmd = [_find_mpiexec(python, env), "-n", str(nranks)]
    nodefile = env.get("PBS_NODEFILE")
    if nodefile:
        cmd += ["-f", nodefile]
    return cmd


# ---------------------------------------------------------------------------
# Command line for job scripts
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sqd_suite.hpc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("resources", help="ranks, nodes and memory per rank for a run YAML")
    r.add_argument("config", type=Path)
    r.add_argument("--ranks-per-node", type=int, default=48)
    r.add_argument("--mem-per-node-gb", type=float, default=192.0)
    r.add_argument("--dets-per-rank", type=float, default=2e6)
    r.add_argument("--max-ranks", type=int)
    r.add_argument("--format", choices=["text", "shell", "sbatch", "pbs"], default="text")
    lp = sub.add_parser("launcher", help="print the MPI launcher prefix for N ranks")
    lp.add_argument("--ranks", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "launcher":
            print(shlex.join(launcher_command(args.ranks)))
            return 0
        from sqd_suite.config import load_config

        res = estimate_resources(
            load_config(args.config),
            ranks_per_node=args.ranks_per_node,
            mem_per_node_gb=args.mem_per_node_gb,
            dets_per_rank=args.dets_per_rank,
            max_ranks=args.max_ranks,
        )
    except SQDInputError as err:
        print(f"sqd: error: {err}", file=sys.stderr)
        return 2
    if args.format == "shell":
        print(res.shell())
    elif args.format == "sbatch":
        print(" ".join(res.sbatch_flags()))
    elif args.format == "pbs":
        print(f"-l {res.pbs_select()}")
    else:
        print(
            f"{args.config}: up to {res.strings_per_spin} strings per spin, D = {res.dimension:,} determinants, "
            f"{res.bytes_per_determinant} bytes per determinant in Davidson\n"
            f"ranks {res.ranks} ({res.walkers} walker(s) x {res.ranks_per_walker}), nodes {res.nodes}, "
            f"memory per rank {res.mem_per_rank_mb} MB\n"
            f"sbatch {' '.join(res.sbatch_flags())}\nqsub -l {res.pbs_select()}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
