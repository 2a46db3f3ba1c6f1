"""`sqd run`, `sqd resume`, `sqd report` as a user runs them: files, exit codes, resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from sqd_suite.cli import main
from sqd_suite.config import load_config
from sqd_suite.store import read_run, run_file_status

SQD = [sys.executable, "-m", "sqd_suite.cli"]


@pytest.fixture(scope="module")
def lih_run(tmp_path_factory, molecule_yaml):
    tmp = tmp_path_factory.mktemp("lih")
    cfg = molecule_yaml(tmp, "lih.yaml", "lih", {"shots": 2000}, {"samples_per_batch": 100, "max_iterations": 2})
    out = tmp / "lih.h5"
    assert main(["run", str(cfg), "--output", str(out)]) == 0
    return cfg, out


def test_run_writes_a_complete_file_and_prints_the_summary(lih_run, capsys):
    cfg, out = lih_run
    assert run_file_status(out) == "complete"
    run = read_run(out)
    assert len(run.iterations) >= 1 and run.result is not None
    assert yaml.safe_load(run.config_yaml)["name"] == "lih"
    assert run.circuit_parameters is not None and run.circuit_parameters.size > 0
    assert not list(out.parent.glob(".*.tmp"))


def test_report_json_fields(lih_run, capsys):
    _, out = lih_run
    assert main(["report", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("final_energy", "e_exact", "error", "iterations", "subspace_dimension", "subspace_shape",
                "distinct_strings", "wall_time_s", "converged", "warnings", "status", "ok"):
        assert key in summary, key
    assert summary["status"] == "complete"
    assert summary["error"] == pytest.approx(summary["final_energy"] - summary["e_exact"])
    assert summary["subspace_dimension"] == summary["subspace_shape"][0] * summary["subspace_shape"][1]
    assert summary["wall_time_s"] > 0
    # LiH/STO-3G: 2000 noisy shots cover the whole 15 x 15 space, and the report says so
    assert any("full space" in w for w in summary["warnings"])
    assert summary["ok"] is False


def test_report_table_and_plot(lih_run, tmp_path, capsys):
    _, out = lih_run
    png = tmp_path / "conv.png"
    assert main(["report", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "error vs exact (mHa)" in text and "dimension" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_refuses_to_overwrite_a_complete_file(lih_run, capsys):
    cfg, out = lih_run
    assert main(["run", str(cfg), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0] and "complete run file" in err[0]


def test_resume_of_a_complete_run_is_refused(lih_run, capsys):
    _, out = lih_run
    assert main(["resume", str(out)]) == 2
    assert "already complete" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["report", "resume"])
def test_corrupt_run_file_exits_2_with_one_line(tmp_path, command):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(300))
    proc = subprocess.run([*SQD, command, str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.h5" in lines[0] and "Traceback" not in proc.stderr


def test_killed_run_resumes_to_the_uninterrupted_energy(tmp_path, molecule_yaml):
    from sqd_suite.runner import run

    # energy_tol tiny: the loop runs all its iterations, a few seconds each
    cfg = molecule_yaml(tmp_path, "h8_chain.yaml", "h8kill", {"shots": 5000},
                {"samples_per_batch": 60, "num_batches": 2, "max_iterations": 5, "energy_tol": 1e-14})
    reference = run(load_config(cfg), output=tmp_path / "ref.h5")

    out = tmp_path / "killed.h5"
    proc = subprocess.Popen([*SQD, "run", str(cfg), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            # the file is always readable (copy-on-write), so polling it is safe
            if out.exists() and read_run(out).iterations:
                break
            assert proc.poll() is None, "run ended before its first iteration was seen"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    killed = read_run(out)
    assert killed.status == "running", "the run finished before the kill; make it longer"
    done = len(killed.iterations)
    assert 1 <= done < 5

    # an unfinished file is not overwritten by a new run
    again = subprocess.run([*SQD, "run", str(cfg), "--output", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "sqd resume" in again.stderr

    proc = subprocess.run([*SQD, "resume", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    resumed = read_run(out)
    assert resumed.complete
    # the same random draws in every iteration, hence the same subspaces ...
    assert len(resumed.iterations) == len(reference.iterations)
    for got, want in zip(resumed.iterations, reference.iterations):
        assert np.array_equal(got.alpha_strings, want.alpha_strings)
        assert np.array_equal(got.carryover[0], want.carryover[0])
        assert got.energy == pytest.approx(want.energy, abs=1e-11)
    # ... and the same energy (two processes may sum in another order: last bits only)
    assert resumed.result["energy"] == pytest.approx(reference.energy, abs=1e-11)
