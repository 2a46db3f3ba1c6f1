"""MPI distribution: `mpiexec -n 2` gives the serial energies, and the pieces it is built from."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sqd_suite.diag import TileLayout, alpha_work_weights, choose_grid, excitation_counts, partition_rows, solve
from sqd_suite.diag.distributed import receive_buffer_bytes, resolve_panels

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
@pytest.mark.parametrize(("nroots", "grid"), [(1, (2, 1)), (1, (1, 2)), (2, (2, 1)), (2, (1, 2))])
def test_two_ranks_match_serial(nroots: int, grid: tuple[int, int], problem_file: Path) -> None:
    # Alpha-row blocks (2 x 1) and beta-column blocks (1 x 2, two panels per sigma).
    par = _run(2, "--npz", str(problem_file), "--nroots", str(nroots), "--grid", *map(str, grid))
    ref = _serial(problem_file, nroots)
    assert par["ranks"] == 2 and par["converged"] and tuple(par["grid"]) == grid
    np.testing.assert_allclose(par["energies"], ref["energies"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(par["occ_a"], ref["occ_a"], atol=1e-7)
    assert abs(par["ci_norm"] - 1.0) < 1e-10
    ci0 = ref["ci"] if nroots == 1 else ref["ci"][0]
    np.testing.assert_allclose(par["ci_first"], ci0.ravel()[:20], atol=1e-6)
    # Every sigma moved rows between the two ranks.
    assert par["comm_bytes"] > 0 and par["timings"]["communication"] > 0


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_four_ranks_two_by_two_tiles_match_serial(problem_file: Path) -> None:
    # A real 2-D grid: each rank owns one (alpha block x beta block) tile.
    par = _run(4, "--npz", str(problem_file), "--grid", "2", "2", "--spin-penalty", "0.3")
    ref = _serial(problem_file, spin_penalty=0.3)
    assert par["grid"] == [2, 2] and par["converged"]
    assert abs(par["energies"][0] - ref["energies"][0]) < 1e-9
    assert abs(par["spin_square"] - ref["s2"]) < 1e-8
    np.testing.assert_allclose(par["occ_a"], ref["occ_a"], atol=1e-7)
    np.testing.assert_allclose(par["ci_first"], ref["ci"].ravel()[:20], atol=1e-6)
    assert abs(par["ci_norm"] - 1.0) < 1e-10
    tiles = {(tuple(a), tuple(b)) for a, b in zip(par["alpha_ranges"], par["beta_ranges"])}
    assert len(tiles) == 4 and sum((a1 - a0) * (b1 - b0) for (a0, a1), (b0, b1) in tiles) == 60 * 60


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_sigma_tiles_exchange_formula(problem_file: Path) -> None:
    # One sigma on 2 x 1 and 1 x 2 grids: same vector norm as one rank, and the
    # bytes moved equal the panel rows each tile reads, 8 D (P - 1) at most.
    one = _run(None, "--npz", str(problem_file), "--sigma-repeats", "1")
    for grid in (("2", "1"), ("1", "2")):
        par = _run(2, "--npz", str(problem_file), "--sigma-repeats", "1", "--grid", *grid)
        assert abs(par["sigma_norm"] - one["sigma_norm"]) < 1e-9 * one["sigma_norm"]
        assert 0 < par["bytes_per_sigma"] <= 8 * 3600 * 1
        assert sum(par["work"]) == one["work"][0]


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
@pytest.mark.parametrize("grid", [("2", "1"), ("1", "2")])
def test_two_ranks_dense_path_returns_tiles(grid: tuple[str, str], problem_file: Path) -> None:
    # Below the dense threshold every rank diagonalizes the whole matrix but
    # still returns only its own tile.
    par = _run(2, "--npz", str(problem_file), "--dense-threshold", "100", "--truncate", "9", "--grid", *grid)
    ref = _serial(problem_file, truncate=9)
    assert abs(par["energies"][0] - ref["energies"][0]) < 1e-9
    split = par["alpha_ranges"] if grid == ("2", "1") else par["beta_ranges"]
    (a0, a1), (b0, b1) = split
    assert a0 == 0 and a1 == b0 and b1 == 9 and a1 > 0
    assert abs(par["ci_norm"] - 1.0) < 1e-10
    assert par["comm_bytes"] == 0


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
@pytest.mark.parametrize("grid", [("2", "1"), ("1", "2")])
def test_two_ranks_quadratic_spin_penalty(grid: tuple[str, str], problem_file: Path) -> None:
    # (S^2 - t)^2 needs a second panel exchange inside each matvec.
    par = _run(2, "--npz", str(problem_file), "--spin-penalty", "0.5", "--spin-target", "2.0", "--grid", *grid)
    ref = _serial(problem_file, spin_penalty=0.5, spin_target=2.0)
    # The lowest root of H + P is a triplet of another spatial symmetry than the
    # lowest determinants: found only with guesses of the wanted spin (once, a
    # layout found it by round-off and another did not).
    assert abs(ref["s2"] - 2.0) < 0.01
    assert abs(par["spin_square"] - ref["s2"]) < 1e-8
    assert abs(par["energies"][0] - ref["energies"][0]) < 1e-9


@pytest.mark.mpi
@pytest.mark.slow  # JAX start-up in every process
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_sci_solver_in_qiskit_addon_sqd_spmd_mode(problem_file: Path) -> None:
    # qiskit-addon-sqd's collective mode: every rank runs the loop, our solver
    # distributes each subspace over beta-column tiles, rank 0 gets the full amplitudes.
    par = _run(2, "--npz", str(problem_file), "--addon-loop", "--tol", "1e-11", "--grid", "1", "2")
    ser = _run(None, "--npz", str(problem_file), "--addon-loop", "--tol", "1e-11")
    assert abs(par["energy"] - ser["energy"]) < 1e-9
    assert par["shape"] == ser["shape"]
    np.testing.assert_allclose(par["occ_a"], ser["occ_a"], atol=1e-8)


@pytest.mark.mpi
@pytest.mark.slow  # JAX start-up in every process
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_scisolver_warm_starts_across_ranks(problem_file: Path) -> None:
    # SCISolver under MPI warm-starts from the previous state's largest
    # determinants, each rank placing those of its tile.
    par = _run(2, "--npz", str(problem_file), "--scisolver-twice", "--grid", "1", "2", "--tol", "1e-10")
    assert par["warm_iter"] < par["cold_iter"]
    assert abs(par["warm_energy"] - par["cold_energy"]) < 1e-9


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
@pytest.mark.parametrize("grid", [("3", "1"), ("1", "3")])
def test_more_ranks_than_strings(grid: tuple[str, str], problem_file: Path) -> None:
    # 3 ranks, 2 strings per spin: one rank owns nothing and still takes part.
    par = _run(3, "--npz", str(problem_file), "--truncate", "2", "--grid", *grid)
    ref = _serial(problem_file, truncate=2)
    assert abs(par["energies"][0] - ref["energies"][0]) < 1e-9
    split = par["alpha_ranges"] if grid == ("3", "1") else par["beta_ranges"]
    assert sorted(b - a for a, b in split) == [0, 1, 1]


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


def test_grid_choice_keeps_receive_buffers_beside_the_vectors() -> None:
    # Speed (bench/diag.py --tiles): P_b near sqrt(P) / 2 where memory allows.
    assert choose_grid(2, 1000, 1000) == (2, 1) and choose_grid(4, 1000, 1000) == (4, 1)
    assert choose_grid(8, 1000, 1000) == (4, 2) and choose_grid(16, 3000, 3000) == (8, 2)
    # Memory: receive buffers never outgrow the rank's Davidson vectors, so P_b rises with P.
    for size in (32, 64, 1024):
        p_a, p_b = choose_grid(size, 10**5, 10**5)
        assert p_a * p_b == size and p_b >= math.sqrt(size) / 2 / math.sqrt(2)
        assert receive_buffer_bytes(10**5, 10**5, p_b) <= 8 * 26 * 1e10 / size
    assert choose_grid(1024, 10**5, 10**5) == (8, 128)  # the smallest P_b that fits
    assert choose_grid(64, 10**5, 2) == (32, 2)  # P_b never exceeds the beta strings


def test_tile_layout_covers_the_matrix_once() -> None:
    rng = np.random.default_rng(4)
    from pyscf.fci import cistring

    strings = np.sort(rng.choice(np.asarray(cistring.make_strings(range(10), 4)), 90, replace=False))
    layout = TileLayout.balanced(strings, strings[:50], 10, (3, 2))
    assert layout.grid == (3, 2)
    seen = np.zeros((90, 50), dtype=int)
    for rank in range(6):
        (a0, a1), (b0, b1) = layout.tile(rank)
        assert layout.rank_of(*layout.coords(rank)) == rank
        seen[a0:a1, b0:b1] += 1
    assert np.all(seen == 1)
    bounds, own = resolve_panels(50, layout.tile(3)[1], layout.beta_bounds)
    assert own == 1 and bounds.tolist() == layout.beta_bounds.tolist()
