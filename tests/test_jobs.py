"""The batch scripts in jobs/ run as they are with plain bash on 2 MPI ranks,
and sqd_suite.hpc (serial-in-Slurm guard, job sizing, launcher) does what
they rely on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sqd_suite import analysis
from sqd_suite.config import load_config
from sqd_suite.diag.davidson import davidson_memory_bytes
from sqd_suite.diag.distributed import choose_grid, receive_buffer_bytes
from sqd_suite.errors import SQDInputError
from sqd_suite.hpc import (
    SAVED_NTASKS_VAR,
    check_mpi_world,
    estimate_resources,
    guard_serial_slurm,
    launched_by_mpi,
    launcher_command,
)
from sqd_suite.store import read_run, run_file_status

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"
LIH = REPO / "molecules" / "lih.yaml"
SCRIPTS = sorted([*JOBS.glob("slurm/*.sbatch"), *JOBS.glob("pbs/*.pbs")])
PYTHON = sys.executable


def _clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any scheduler or MPI variables of the caller."""
    env = {k: v for k, v in os.environ.items() if not re.match(r"(SLURM_|PBS_|PMI_|PMIX_|OMPI_|SQD_)", k)}
    env["PATH"] = f"{Path(PYTHON).parent}:{env.get('PATH', '')}"
    env["SQD_PYTHON"] = PYTHON
    env.update(extra)
    return env


def _run_script(script: Path, args: list[str], cwd: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *args], cwd=cwd, env=_clean_env(**env),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def _assert_complete(path: Path, ranks: int) -> None:
    assert run_file_status(path) == "complete", path
    record = read_run(path)
    assert record.iterations, "no iteration recorded"
    assert int(record.attrs["mpi_ranks"]) == ranks
    # LiH/STO-3G: the sampled subspace reaches the full space, so SQD is FCI.
    summary = record.summary()
    assert abs(summary["error"]) < 1e-6


# --- the scripts as documents ------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_valid_bash_with_documented_resources(script: Path) -> None:
    text = script.read_text()
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    directive = "#PBS" if script.suffix == ".pbs" else "#SBATCH"
    lines = [line for line in text.splitlines() if line.startswith(directive)]
    assert lines, f"{script.name} has no {directive} directives"
    # Directives must come before the first command, or the scheduler ignores them.
    first_command = next(i for i, line in enumerate(text.splitlines()) if line and not line.startswith("#"))
    assert all(text.splitlines().index(line) < first_command for line in lines)
    # Each script says what it needs and how to size it for another config.
    assert "Resources" in text and "sqd_suite.hpc resources" in text


def test_qpu_script_asks_for_a_qpu_and_refuses_to_run_without_one(tmp_path: Path) -> None:
    script = JOBS / "slurm" / "sqd_run_qpu.sbatch"
    assert re.search(r"^#SBATCH --qpu=\S+", script.read_text(), re.M)
    out = _run_script(script, [str(LIH)], tmp_path, timeout=60)
    assert out.returncode == 2
    assert "SLURM_JOB_QPU_RESOURCES" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_closed_loop_script_refuses_a_config_without_the_loop(tmp_path: Path) -> None:
    out = _run_script(JOBS / "slurm" / "closed_loop.sbatch", [str(LIH)], tmp_path, timeout=60)
    assert out.returncode == 2
    assert "closed_loop.enabled is false" in out.stderr


# --- the scripts run with plain bash on 2 ranks --------------------------------


@pytest.mark.slow
@pytest.mark.mpi
def test_run_scripts_under_plain_bash_on_two_ranks(tmp_path: Path) -> None:
    """sqd_run.sbatch (mpiexec), the PBS script (mpiexec -f nodefile) and the QPU
    script with the simulator, each a complete 2-rank run of LiH."""
    slurm = _run_script(JOBS / "slurm" / "sqd_run.sbatch", [str(LIH)], tmp_path, SQD_RANKS="2",
                        SQD_OUTPUT=str(tmp_path / "slurm.h5"))
    assert slurm.returncode == 0, slurm.stdout[-3000:] + slurm.stderr[-3000:]
    assert re.search(r"== \S*mpiexec -n 2 ", slurm.stdout)
    _assert_complete(tmp_path / "slurm.h5", 2)

    # A resubmitted job finds the complete file and does nothing.
    again = _run_script(JOBS / "slurm" / "sqd_run.sbatch", [str(LIH)], tmp_path, SQD_RANKS="2",
                        SQD_OUTPUT=str(tmp_path / "slurm.h5"), timeout=120)
    assert again.returncode == 0 and "is complete; nothing to do" in again.stdout

    nodefile = tmp_path / "nodes"
    nodefile.write_text("localhost\nlocalhost\n")
    pbs = _run_script(JOBS / "pbs" / "sqd_run.pbs", [str(LIH)], tmp_path, PBS_NODEFILE=str(nodefile),
                      PBS_O_WORKDIR=str(tmp_path), PBS_JOBID="1.test", SQD_OUTPUT=str(tmp_path / "pbs.h5"))
    assert pbs.returncode == 0, pbs.stdout[-3000:] + pbs.stderr[-3000:]
    assert f"-f {nodefile}" in pbs.stdout
    _assert_complete(tmp_path / "pbs.h5", 2)

    qpu = _run_script(JOBS / "slurm" / "sqd_run_qpu.sbatch", [str(LIH)], tmp_path, SQD_RANKS="2",
                      SQD_SAMPLER_KIND="exact", SQD_OUTPUT=str(tmp_path / "qpu.h5"))
    assert qpu.returncode == 0, qpu.stdout[-3000:] + qpu.stderr[-3000:]
    _assert_complete(tmp_path / "qpu.h5", 2)
    rewritten = load_config(tmp_path / "qpu.exact.yaml")
    assert rewritten.sampler.kind == "exact" and rewritten.molecule == load_config(LIH).molecule


@pytest.mark.slow
@pytest.mark.mpi
def test_pes_array_script_runs_one_task_per_point(tmp_path: Path) -> None:
    """Grid mode with an array index runs that point only; the file is named by the value."""
    out = _run_script(JOBS / "slurm" / "pes_array.sbatch", [str(LIH), "bond_length=1.5,1.6"], tmp_path,
                      SQD_RANKS="2", SQD_ARRAY_TASK_ID="1", SQD_OUTPUT_DIR=str(tmp_path / "pes"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "pes").glob("*.h5"))
    assert files == ["bond_length=1.600.h5"]
    _assert_complete(tmp_path / "pes" / "bond_length=1.600.h5", 2)
    recorded = yaml.safe_load(read_run(tmp_path / "pes" / "bond_length=1.600.h5").config_yaml)
    assert recorded["molecule"]["variables"]["bond_length"] == 1.6


@pytest.mark.slow
@pytest.mark.mpi
def test_closed_loop_script_runs_walkers_on_two_ranks(tmp_path: Path) -> None:
    """Three walkers (the fewest differential evolution takes), one generation after the
    initial one, on 2 ranks: two walker groups, so walkers take turns and the log says so."""
    config = load_config(LIH).with_updates({
        "sampler.shots": 2000, "sqd.max_iterations": 2, "sqd.max_dim": 10,
        "closed_loop.enabled": True, "closed_loop.population": 3, "closed_loop.generations": 1,
    })
    yaml_path = tmp_path / "lih_loop.yaml"
    yaml_path.write_text(config.to_yaml())
    out = _run_script(JOBS / "slurm" / "closed_loop.sbatch", [str(yaml_path)], tmp_path, SQD_RANKS="2",
                      SQD_OUTPUT=str(tmp_path / "loop.h5"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"== \S*mpiexec -n 2 ", out.stdout)
    assert "2 rank(s) for 3 walkers" in out.stdout
    assert run_file_status(tmp_path / "loop.h5") == "complete"
    assert int(read_run(tmp_path / "loop.h5").attrs["mpi_ranks"]) == 2
    # Every walker of both generations is in the file, and the analysis reads them.
    walkers = analysis.load_walkers(tmp_path / "loop.h5")
    assert sorted(set(walkers["generation"])) == [0, 1] and len(walkers) == 6
    assert (walkers.groupby("generation")["best_so_far"].min().diff().dropna() <= 0).all()
    fig = analysis.plot_closed_loop(walkers)
    assert {"open loop (CCSD parameters)", "exact"} <= {line.get_label() for line in fig.axes[0].get_lines()}


# --- sqd_suite.hpc -------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"SLURM_NTASKS": "4", "SLURM_JOB_ID": "7"},  # the batch step
        {"SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "1", "SLURM_PROCID": "0"},  # `srun -n 1 python ...`
    ],
)
def test_guard_hides_slurm_ntasks_from_a_serial_process(env: dict[str, str]) -> None:
    assert not launched_by_mpi(env)
    assert guard_serial_slurm(env) is True
    assert "SLURM_NTASKS" not in env and env[SAVED_NTASKS_VAR] == "4"
    assert guard_serial_slurm(env) is False  # idempotent


@pytest.mark.parametrize(
    "env",
    [
        {"SLURM_NTASKS": "2", "PMI_RANK": "0", "PMI_SIZE": "2"},  # mpiexec (Hydra) rank
        {"SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1"},  # srun task
        {"SLURM_NTASKS": "2", "OMPI_COMM_WORLD_SIZE": "2"},
    ],
)
def test_guard_leaves_launched_ranks_alone(env: dict[str, str]) -> None:
    assert launched_by_mpi(env)
    assert guard_serial_slurm(dict(env)) is False


def test_guard_keeps_qiskit_addon_sqd_serial_in_a_slurm_batch_step() -> None:
    """The real effect: qiskit-addon-sqd, imported after the guard, stays serial."""
    code = (
        "import sys\n"
        "if sys.argv[1] == 'guard':\n"
        "    from sqd_suite.hpc import guard_serial_slurm; guard_serial_slurm()\n"
        "from qiskit_addon_sqd import processes\n"
        "print(processes.is_mpi_execution())\n"
    )
    env = _clean_env(SLURM_NTASKS="2", SLURM_JOB_ID="1")
    results = {}
    for mode in ("guard", "none"):
        out = subprocess.run([PYTHON, "-c", code, mode], env=env, capture_output=True, text=True, timeout=180, check=True)
        results[mode] = out.stdout.split()[-1]
    assert results == {"guard": "False", "none": "True"}


def test_guard_resets_an_already_imported_one_rank_mpi_mode() -> None:
    code = (
        "from qiskit_addon_sqd import processes\n"
        "before = processes.is_mpi_execution()\n"
        "from sqd_suite.hpc import guard_serial_slurm; guard_serial_slurm()\n"
        "print(before, processes.is_mpi_execution())\n"
    )
    env = _clean_env(SLURM_NTASKS="2", SLURM_JOB_ID="1")
    out = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=180, check=True)
    assert out.stdout.split()[-2:] == ["True", "False"]


def test_check_mpi_world_catches_srun_without_a_common_pmi() -> None:
    env = {"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2"}
    with pytest.raises(SQDInputError, match="world of 1"):
        check_mpi_world(1, env)
    check_mpi_world(4, env)
    check_mpi_world(1, {})


def test_resources_grow_with_the_subspace_and_walkers() -> None:
    base = load_config(REPO / "molecules" / "n2_631g.yaml")
    small = estimate_resources(base.with_updates({"sqd.samples_per_batch": 100}), norb=16, nelec=(5, 5))
    large = estimate_resources(base, norb=16, nelec=(5, 5))
    # 1000 samples per batch, spin-symmetrised, plus carry-over: 3000 strings per spin.
    assert large.strings_per_spin == 3000 and large.dimension == 9_000_000
    assert small.dimension == 300**2 and small.ranks == 1
    assert large.ranks > small.ranks
    assert large.bytes_per_determinant == davidson_memory_bytes(1) + 8 == 208
    capped = estimate_resources(base.with_updates({"sqd.max_dim": 500}), norb=16, nelec=(5, 5))
    assert capped.dimension == 500**2
    # The full string space bounds it too: C(6, 2) = 15 for LiH.
    lih = estimate_resources(load_config(LIH))
    assert lih.strings_per_spin == 15 and lih.dimension == 225
    loop = estimate_resources(base.with_updates({"closed_loop.enabled": True, "closed_loop.population": 6}), norb=16, nelec=(5, 5))
    assert loop.walkers == 6 and loop.ranks == 6 * loop.ranks_per_walker == 6 * large.ranks
    # Memory: a rank holds its share of the solver vectors, its receive buffers and the libraries.
    p_b = choose_grid(large.ranks, 3000, 3000)[1]
    assert large.mem_per_rank_mb * 1e6 >= 1e9 + receive_buffer_bytes(3000, 3000, p_b) + 208 * 9e6 / large.ranks
    assert f"--ntasks={large.ranks}" in large.sbatch_flags()


def test_resources_for_a_subspace_larger_than_a_rank() -> None:
    # D = 9e8: one vector (7.2 GB) exceeds a rank's 4 GB, so the 1-D layout
    # (whole vector received) could not run it; beta-block tiles can.
    big = load_config(REPO / "molecules" / "n2_631g.yaml").with_updates({"sqd.samples_per_batch": 10_000})
    res = estimate_resources(big, norb=26, nelec=(5, 5))
    assert res.dimension == 30_000**2
    grid = choose_grid(res.ranks, 30_000, 30_000)
    assert grid[1] > 1 and grid[0] * grid[1] == res.ranks
    assert res.mem_per_rank_mb <= 192e3 / 48
    assert res.mem_per_rank_mb * 1e6 >= 1e9 + 208 * 9e8 / res.ranks + receive_buffer_bytes(30_000, 30_000, grid[1])


def test_resources_refuse_a_subspace_that_cannot_fit() -> None:
    base = load_config(REPO / "molecules" / "n2_631g.yaml").with_updates({"sqd.samples_per_batch": 200_000})
    with pytest.raises(SQDInputError, match="per rank"):
        estimate_resources(base, norb=40, nelec=(10, 10), mem_per_node_gb=8, ranks_per_node=8)


def test_resources_command_prints_shell_assignments() -> None:
    out = subprocess.run([PYTHON, "-m", "sqd_suite.hpc", "resources", str(LIH), "--format", "shell"],
                         capture_output=True, text=True, timeout=120, check=True)
    values = dict(line.split("=", 1) for line in out.stdout.split())
    assert values["SQD_DIMENSION"] == "225" and values["SQD_RANKS"] == "1"


def test_launcher_choice(tmp_path: Path) -> None:
    assert launcher_command(3, environ={"SQD_LAUNCHER": "srun --mpi=pmi2"}) == ["srun", "--mpi=pmi2", "-n", "3"]
    fake_python = tmp_path / "python"
    (tmp_path / "mpiexec").write_text("#!/bin/sh\n")
    (tmp_path / "mpiexec").chmod(0o755)
    # No mpiexec on PATH: the one beside the interpreter (the mpich wheel's).
    cmd = launcher_command(2, environ={"PATH": "/nonexistent"}, python=str(fake_python))
    assert cmd == [str(tmp_path / "mpiexec"), "-n", "2"]
    cmd = launcher_command(2, environ={"PATH": "/nonexistent", "PBS_NODEFILE": "/x/nodes"}, python=str(fake_python))
    assert cmd[-2:] == ["-f", "/x/nodes"]
    with pytest.raises(SQDInputError, match="no mpiexec"):
        launcher_command(2, environ={"PATH": "/nonexistent"}, python="/nonexistent/python")
    with pytest.raises(SQDInputError):
        launcher_command(0, environ={})
