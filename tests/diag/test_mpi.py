"""MPI distribution: `mpiexec -n 2` gives the serial energies, and the pieces it is built from."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sqd_suite.diag import alpha_work_weights, excitation_counts, partition_rows, solve

DRIVER = Path(__file__).with_name("mpi_driver.py")
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def _run(nproc: int | None, *args: str) -> dict:
    cmd = [sys.executable, str(DRIVER), *args]
    if nproc is not None:
        cmd = [MPIEXEC, "-n", str(nproc), *cmd]
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def problem_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """H2O/6-31G with 60 biased strings per spin (D = 3600), saved for the driver."""
    from pyscf import ao2mo, gto, scf
    from pyscf.fci import cistring

    mol = gto.M(atom="O 0 0 0; H 0 0.757 0.587; H 0 -0.757 0.587", basis="6-31g", verbose=0)
    mf = scf.RHF(mol).run()
    c = mf.mo_coeff
    h1 = c.T @ mf.get_hcore() @ c
    h2 = ao2mo.restore(1, ao2mo.kernel(mol, c), mol.nao)
    full = np.asarray(cistring.make_strings(range(mol.nao), 5), dtype=np.int64)
    rng = np.random.default_rng(0)
    strings = [np.union1d(full[:1], rng.choice(full[: len(full) // 3], 59, replace=False)) for _ in range(2)]
    path = tmp_path_factory.mktemp("mpi") / "h2o.npz"
    sys.path.insert(0, str(DRIVER.parent))
    try:
        from mpi_driver import save_problem
    finally:
        sys.path.pop(0)
    save_problem(str(path), h1, h2, mol.energy_nuc(), mol.nao, mol.nelec, strings[0], strings[1])
    return path


def _serial(path: Path, nroots: int = 1, truncate: int | None = None, **kwargs: float) -> dict:
    """The same problem solved in this process without MPI (comm=None)."""
    with np.load(path) as f:
        args = (f["h1"], f["h2"], int(f["norb"]), tuple(int(n) for n in f["nelec"]), f["alpha"][:truncate],
                f["beta"][:truncate])
        ecore = float(f["ecore"])
    res = solve(*args, ecore=ecore, tol=1e-12, nroots=nroots, dense_threshold=0, **kwargs)
    return {"energies": res.energies.tolist(), "ci": res.ci, "occ_a": res.occupancies[0], "s2": res.spin_square}


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
@pytest.mark.parametrize("nroots", [1, 2])
def test_two_ranks_match_serial(nroots: int, problem_file: Path) -> None:
    par = _run(2, "--npz", str(problem_file), "--nroots", str(nroots))
    ref = _serial(problem_file, nroots)
    assert par["ranks"] == 2 and par["converged"]
    np.testing.assert_allclose(par["energies"], ref["energies"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(par["occ_a"], ref["occ_a"], atol=1e-7)
    assert abs(par["ci_norm"] - 1.0) < 1e-10
    ci0 = ref["ci"] if nroots == 1 else ref["ci"][0]
    np.testing.assert_allclose(par["ci_first"], ci0.ravel()[:20], atol=1e-6)
    # Every sigma moved rows between the two ranks.
    assert par["comm_bytes"] > 0 and par["timings"]["communication"] > 0


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_two_ranks_dense_path_returns_blocks(problem_file: Path) -> None:
    # Below the dense threshold every rank diagonalizes the whole matrix but
    # still returns only its own block of rows.
    par = _run(2, "--npz", str(problem_file), "--dense-threshold", "100", "--truncate", "9")
    ref = _serial(problem_file, truncate=9)
    assert abs(par["energies"][0] - ref["energies"][0]) < 1e-9
    (a0, a1), (b0, b1) = par["alpha_ranges"]
    assert a0 == 0 and a1 == b0 and b1 == ref["ci"].shape[0] and a1 > 0
    assert abs(par["ci_norm"] - 1.0) < 1e-10
    assert par["comm_bytes"] == 0


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_two_ranks_quadratic_spin_penalty(problem_file: Path) -> None:
    # (S^2 - t)^2 needs a second row exchange inside each matvec.
    par = _run(2, "--npz", str(problem_file), "--spin-penalty", "0.5", "--spin-target", "2.0")
    ref = _serial(problem_file, spin_penalty=0.5, spin_target=2.0)
    assert abs(par["spin_square"] - ref["s2"]) < 1e-8
    assert abs(par["energies"][0] - ref["energies"][0]) < 1e-9


@pytest.mark.mpi
@pytest.mark.slow  # JAX start-up in every process
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_sci_solver_in_qiskit_addon_sqd_spmd_mode(problem_file: Path) -> None:
    # qiskit-addon-sqd's collective mode: every rank runs the loop, our solver
    # distributes each subspace, rank 0 gets the full amplitudes.
    par = _run(2, "--npz", str(problem_file), "--addon-loop", "--tol", "1e-11")
    ser = _run(None, "--npz", str(problem_file), "--addon-loop", "--tol", "1e-11")
    assert abs(par["energy"] - ser["energy"]) < 1e-9
    assert par["shape"] == ser["shape"]
    np.testing.assert_allclose(par["occ_a"], ser["occ_a"], atol=1e-8)


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_more_ranks_than_alpha_strings(problem_file: Path) -> None:
    # 3 ranks, 2 alpha rows: one rank owns nothing and still takes part.
    par = _run(3, "--npz", str(problem_file), "--truncate", "2")
    ref = _serial(problem_file, truncate=2)
    assert abs(par["energies"][0] - ref["energies"][0]) < 1e-9
    assert sorted(b - a for a, b in par["alpha_ranges"]) == [0, 1, 1]


@pytest.mark.mpi
def test_one_rank_without_mpiexec(problem_file: Path) -> None:
    # COMM_WORLD of size 1 takes the serial path unchanged.
    out = _run(None, "--npz", str(problem_file))
    ref = _serial(problem_file)
    assert out["ranks"] == 1 and out["comm_bytes"] == 0
    assert abs(out["energies"][0] - ref["energies"][0]) < 1e-9


def test_partition_balances_work() -> None:
    w = np.array([1.0, 1.0, 1.0, 1.0, 4.0, 1.0, 1.0, 1.0, 1.0])
    b = partition_rows(w, 3)
    assert b[0] == 0 and b[-1] == len(w) and np.all(np.diff(b) >= 0)
    loads = [w[b[i] : b[i + 1]].sum() for i in range(3)]
    assert max(loads) <= 5.0
    # More parts than rows: empty blocks, never out of range.
    b = partition_rows(np.ones(2), 4)
    assert b[0] == 0 and b[-1] == 2 and np.all(np.diff(b) >= 0)


def test_excitation_counts_by_brute_force() -> None:
    from pyscf.fci import cistring

    rng = np.random.default_rng(1)
    norb = 9
    strings = np.sort(rng.choice(np.asarray(cistring.make_strings(range(norb), 4)), 70, replace=False))
    s, d = excitation_counts(strings, norb)
    dist = np.bitwise_count(strings[:, None] ^ strings[None, :]) // 2
    np.testing.assert_array_equal(s, (dist == 1).sum(axis=1))
    np.testing.assert_array_equal(d, (dist == 2).sum(axis=1))
    w = alpha_work_weights(strings, strings, norb)
    n = len(strings)
    expected = s * s.sum() + n * (s + d) + (s + d).sum() + n
    np.testing.assert_allclose(w, expected)
