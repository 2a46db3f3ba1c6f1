"""The job scripts under a real scheduler: a one-node Slurm cluster (munged,
slurmctld, slurmd on localhost) started for this module, jobs submitted with
sbatch, waited on, and the cluster stopped again.

Skipped only where Slurm cannot be had: not root, or slurm-wlm/munge neither
installed nor installable with apt-get (jobs/ci/start_slurm.sh exits 3).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sqd_suite.store import read_run, run_file_status

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"
LIH = REPO / "molecules" / "lih.yaml"
PYTHON = sys.executable

pytestmark = [pytest.mark.slow, pytest.mark.mpi]


def _env(conf: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not re.match(r"(SLURM_|PBS_|PMI_|PMIX_|OMPI_|SQD_)", k)}
    env.update(SLURM_CONF=str(conf), SQD_PYTHON=PYTHON, PATH=f"{Path(PYTHON).parent}:{env.get('PATH', '')}")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """SLURM_CONF of a running one-node cluster; stopped at the end of the module."""
    if os.geteuid() != 0 or shutil.which("bash") is None:
        pytest.skip("the test cluster needs root (slurmd runs jobs as their user)")
    cluster = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(
        ["bash", str(JOBS / "ci" / "start_slurm.sh"), str(cluster)],
        env={**os.environ, "SQD_SLURM_INSTALL": "1"}, capture_output=True, text=True, timeout=1200, check=False,
    )
    try:
        if start.returncode == 3:
            pytest.skip(f"Slurm is not available here: {start.stderr.strip()}")
        assert start.returncode == 0, f"the test cluster did not start:\n{start.stdout}\n{start.stderr}"
        yield cluster / "slurm.conf"
    finally:
        subprocess.run(["bash", str(JOBS / "ci" / "stop_slurm.sh"), str(cluster)], timeout=60, check=False)


def _sbatch(conf: Path, args: list[str], **env: str) -> str:
    out = subprocess.run(["sbatch", "--parsable", *args], cwd=REPO, env=_env(conf, **env),
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip().split(";")[0]


def _wait(conf: Path, job_ids: list[str], timeout: float = 300) -> dict[str, str]:
    """Final state of every job (array tasks included), polling squeue/scontrol."""
    deadline = time.monotonic() + timeout
    env = _env(conf)
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-o", "%i %r", "-j", ",".join(job_ids)], env=env,
                                capture_output=True, text=True, timeout=30, check=False).stdout.splitlines()
        if not queued:
            break
        # Pending for a reason that waiting cannot cure (time or size limits): fail now.
        stuck = [line for line in queued if re.search(r"Limit|Invalid|ReqNodeNotAvail|BadConstraints", line)]
        if stuck:
            subprocess.run(["scancel", *job_ids], env=env, timeout=30, check=False)
            pytest.fail(f"jobs cannot start: {stuck}")
        time.sleep(2)
    else:
        subprocess.run(["scancel", *job_ids], env=env, timeout=30, check=False)
        pytest.fail(f"jobs {job_ids} still queued after {timeout} s")
    states = {}
    for jid in job_ids:
        show = subprocess.run(["scontrol", "-o", "show", "job", jid], env=env, capture_output=True, text=True,
                              timeout=30, check=False).stdout
        for line in show.splitlines():
            task = re.search(r"JobId=(\d+)", line)
            array = re.search(r"ArrayTaskId=(\d+)", line)
            key = f"{jid}_{array.group(1)}" if array else task.group(1)
            states[key] = re.search(r"JobState=(\w+)", line).group(1)
    return states


def test_scripts_under_slurm(slurm: Path, tmp_path: Path) -> None:
    """sqd_run.sbatch on 2 tasks, a 2-task PES array, and the serial guard in a batch step."""
    run_out = tmp_path / "lih.h5"
    run_job = _sbatch(slurm, ["--ntasks=2", "--time=10", "--mem-per-cpu=1G", "-o", str(tmp_path / "run.log"),
                              str(JOBS / "slurm" / "sqd_run.sbatch"), str(LIH)], SQD_OUTPUT=str(run_out))

    points = tmp_path / "points"
    subprocess.run([PYTHON, "-m", "sqd_suite.cli", "scan", str(LIH), "--param", "bond_length=1.5,1.6",
                    "--emit-yaml", str(points), "--output-dir", str(tmp_path / "pes")],
                   cwd=REPO, env=_env(slurm), capture_output=True, text=True, timeout=120, check=True)
    array_job = _sbatch(slurm, ["--array=0-1", "--ntasks=1", "--time=10", "--mem-per-cpu=1G",
                                "-o", str(tmp_path / "pes_%a.log"), str(JOBS / "slurm" / "pes_array.sbatch"), str(points)])

    guard = tmp_path / "guard.sh"
    guard.write_text(
        "#!/bin/bash\n#SBATCH --ntasks=2\n"
        f'"{PYTHON}" -c "from qiskit_addon_sqd import processes; print(\'plain\', processes.is_mpi_execution())"\n'
        f'"{PYTHON}" -c "from sqd_suite.hpc import guard_serial_slurm; guard_serial_slurm(); '
        f'from qiskit_addon_sqd import processes; print(\'guarded\', processes.is_mpi_execution())"\n'
    )
    guard_job = _sbatch(slurm, ["--time=5", "-o", str(tmp_path / "guard.log"), str(guard)])

    states = _wait(slurm, [run_job, array_job, guard_job])
    logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    assert set(states.values()) == {"COMPLETED"}, (states, logs)

    # srun runs mpi4py ranks here only with PMI-2; the launcher probe finds that.
    log = logs["run.log"]
    assert re.search(r"== srun (--mpi=pmi2 )?-n 2 ", log) or re.search(r"== \S*mpiexec -n 2 ", log), log
    assert run_file_status(run_out) == "complete"
    assert int(read_run(run_out).attrs["mpi_ranks"]) == 2
    assert abs(read_run(run_out).summary()["error"]) < 1e-6

    for value in ("1.500", "1.600"):
        path = tmp_path / "pes" / f"bond_length={value}.h5"
        assert run_file_status(path) == "complete", logs
    # Each array task ran its own point only.
    assert "bond_length=1.500" in logs["pes_0.log"] and "bond_length=1.600" not in logs["pes_0.log"]

    # In a batch step SLURM_NTASKS=2 switches qiskit-addon-sqd to MPI mode; the guard undoes it.
    assert "plain True" in logs["guard.log"] and "guarded False" in logs["guard.log"], logs["guard.log"]
