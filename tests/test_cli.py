"""The `sqd` command as a user runs it: exit codes, one-line errors, files written."""

import subprocess
import sys
from pathlib import Path

import pytest

from sqd_suite.cli import main
from sqd_suite.store import read_hamiltonian_h5

ROOT = Path(__file__).parents[1]


def test_hamiltonian_command_writes_fcidump_and_h5(tmp_path, capsys):
    fcidump, h5 = tmp_path / "lih.fcidump", tmp_path / "lih.h5"
    assert main(["hamiltonian", str(ROOT / "molecules/lih.yaml"), "--fcidump", str(fcidump), "--h5", str(h5)]) == 0
    out = capsys.readouterr().out
    assert "exact energy" in out and "FCI" in out
    assert fcidump.read_text().startswith(" &FCI")
    ham = read_hamiltonian_h5(h5)
    assert ham.norb == 6 and ham.nelec == (2, 2) and ham.e_exact is not None
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("molecule:\n  atom: 'N 0 0 0; N 0 0 1.1'\n  basis: cc-pvdz\nactive_space:\n  frozen_core: 2\n  norb: 40\n")
    proc = subprocess.run([sys.executable, "-m", "sqd_suite.cli", "hamiltonian", str(bad), "--fcidump", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "active_space.norb: 40 exceeds the 26 orbitals of N2/cc-pvdz" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_corrupt_hamiltonian_h5(tmp_path):
    from sqd_suite.errors import SQDInputError

    path = tmp_path / "broken.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(SQDInputError, match="not a readable"):
        read_hamiltonian_h5(path)


def test_serial_run_inside_slurm_hides_ntasks_from_qiskit_addon_sqd(monkeypatch, tmp_path):
    # qiskit-addon-sqd turns MPI mode on whenever SLURM_NTASKS is set; a serial `sqd` must not.
    import os

    from sqd_suite.hpc import _RANK_VARS

    for var in (*_RANK_VARS, "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SQD_SLURM_NTASKS", "stale")  # so monkeypatch removes what the guard writes
    assert main(["hamiltonian", str(ROOT / "molecules/lih.yaml"), "--fcidump", str(tmp_path / "f")]) == 0
    assert "SLURM_NTASKS" not in os.environ
    assert os.environ.get("SQD_SLURM_NTASKS") == "4"
