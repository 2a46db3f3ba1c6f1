"""Closed-loop SQD on LiH/STO-3G with a capped subspace (so SQD is not exact)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from sqd_suite.circuits import build_lucj_ansatz
from sqd_suite.config import load_config
from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import build_hamiltonian
from sqd_suite.loop.closed_loop import (
    EVALUATIONS_GROUP,
    _heaviest_first,
    limit_carryover,
    evaluation_seeds,
    params_hash,
    read_evaluations,
    read_run_evaluations,
    run_closed_loop,
    run_closed_loop_file,
    write_evaluation,
)
from sqd_suite.loop.sqd import SQD
from sqd_suite.sampling import sample
from sqd_suite.store import create_run_file, read_run, update_run_file

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")

# Noiseless samples of the CCSD-initialised LUCJ state are nearly all
# Hartree-Fock, and the cap (5 of the 15 strings per spin) keeps SQD from
# being exact, so the open loop has room to improve.
UPDATES = {
    "sampler.kind": "exact",
    "sampler.global_depolarizing": 0.0,
    "sampler.shots": 1000,
    "sqd.samples_per_batch": 100,
    "sqd.num_batches": 2,
    "sqd.max_iterations": 3,
    "sqd.max_dim": 5,
    "closed_loop.enabled": True,
    "closed_loop.population": 5,
    "closed_loop.generations": 2,
    "closed_loop.init_noise": 0.1,
    "closed_loop.seed": 7,
}


@pytest.fixture(scope="module")
def lih():
    cfg = load_config(ROOT / "molecules" / "lih.yaml").with_updates(UPDATES)
    ham = build_hamiltonian(cfg)
    ansatz = build_lucj_ansatz(ham, cfg.circuit)
    return cfg, ham, ansatz


@pytest.fixture(scope="module")
def de_run(lih):
    cfg, ham, ansatz = lih
    seen = []
    res = run_closed_loop(ham, ansatz, cfg.sampler, cfg.sqd, cfg.closed_loop, callback=seen.append)
    return res, seen


def test_closed_loop_beats_open_loop_at_same_shots_and_cap(lih, de_run) -> None:
    cfg, ham, ansatz = lih
    res, _ = de_run
    # The open loop is the CCSD-initialised ansatz with no carry-over.
    ol = res.open_loop
    assert (ol.generation, ol.walker) == (0, 0)
    np.testing.assert_array_equal(ol.params, ansatz.to_parameters())
    assert ol.carryover_in == (0, 0)
    # The closed loop lowers the energy (by ~0.5 mHa here), stays variational
    # and never exceeds the cap.
    assert res.energy < ol.energy - 1e-4
    assert res.energy > ham.e_exact - 1e-9
    assert all(max(e.subspace_shape) <= cfg.sqd.max_dim for e in res.evaluations)
    assert res.best.energy == min(e.energy for e in res.evaluations)
    assert res.n_evaluations == 5 * 3
    assert [g.generation for g in res.generations] == [0, 1, 2]
    best = [g.best_so_far for g in res.generations]
    assert all(b1 <= b0 for b0, b1 in zip(best, best[1:]))
    # Later generations start from the best walker's carry-over strings.
    assert all(e.carryover_in[0] > 0 for e in res.evaluations if e.generation > 0)
    assert "gen" in res.table() and "err (mHa)" in res.table()


def test_open_loop_is_plain_sqd_on_the_same_samples(lih, de_run) -> None:
    cfg, ham, ansatz = lih
    ol = de_run[0].open_loop
    s_seed, q_seed = evaluation_seeds(cfg.closed_loop.seed, 0, 0)
    assert (ol.sampler_seed, ol.sqd_seed) == (s_seed, q_seed)
    samples = sample(ansatz, cfg.sampler.shots, cfg.sampler, seed=s_seed)
    plain = SQD(ham, samples, cfg.sqd, seed=q_seed).kernel()
    assert plain.energy == pytest.approx(ol.energy, abs=1e-10)
    assert plain.subspace_shape == ol.subspace_shape


def test_callback_sees_every_evaluation_in_order(de_run) -> None:
    res, seen = de_run
    assert [(e.generation, e.walker) for e in seen] == [(e.generation, e.walker) for e in res.evaluations]
    assert all(e.params_hash == params_hash(e.params) for e in seen)
    assert all(set(e.timings) == {"sample", "sqd", "total", "cpu"} for e in seen)


def test_evaluation_seeds_depend_on_seed_generation_walker_only() -> None:
    assert evaluation_seeds(7, 1, 2) == evaluation_seeds(7, 1, 2)
    seeds = {evaluation_seeds(s, g, w) for s in (7, 8) for g in range(3) for w in range(4)}
    assert len(seeds) == 2 * 3 * 4


def test_run_file_roundtrip_and_resume_after_crash(lih, de_run, tmp_path) -> None:
    cfg, ham, ansatz = lih
    res, _ = de_run
    path = tmp_path / "run.h5"
    # A crashed run recorded generations 0 and 1, walkers 0..1 of generation 2,
    # and began writing walker 2 (no 'complete' mark).
    done = [e for e in res.evaluations if (e.generation, e.walker) < (2, 2)]
    with h5py.File(path, "w") as f:
        group = f.create_group("closed_loop/evaluations")
        for e in done:
            write_evaluation(group, e)
        group.create_group("g00002_w0002").attrs["energy"] = 0.0
    with h5py.File(path, "r") as f:
        loaded = read_evaluations(f["closed_loop/evaluations"])
    assert [(e.generation, e.walker) for e in loaded] == [(e.generation, e.walker) for e in done]
    for a, b in zip(loaded, done):
        assert a.energy == b.energy and a.subspace_shape == b.subspace_shape
        np.testing.assert_array_equal(a.params, b.params)
        np.testing.assert_array_equal(a.carryover[0], b.carryover[0])

    calls = []

    def counting_sample(ansatz, shots, settings, *, seed):
        calls.append(seed)
        return sample(ansatz, shots, settings, seed=seed)

    with h5py.File(path, "a") as f:
        group = f["closed_loop/evaluations"]
        resumed = run_closed_loop(
            ham, ansatz, cfg.sampler, cfg.sqd, cfg.closed_loop,
            completed=loaded, callback=lambda e: write_evaluation(group, e), sample_fn=counting_sample,
        )
        assert len(read_evaluations(group)) == res.n_evaluations
    # Only the missing evaluations ran, and the run ends where the uninterrupted one did.
    assert len(calls) == res.n_evaluations - len(done)
    assert resumed.energy == pytest.approx(res.energy, abs=1e-10)
    np.testing.assert_array_equal(resumed.params, res.params)
    assert [e.params_hash for e in resumed.evaluations] == [e.params_hash for e in res.evaluations]
    assert resumed.generations[1].resumed and not resumed.generations[2].resumed


def test_run_file_final_result_reproduces_the_best_walker(lih, de_run, tmp_path) -> None:
    cfg, ham, ansatz = lih
    res, _ = de_run
    path = tmp_path / "cl.h5"
    create_run_file(path, config_yaml=cfg.to_yaml(), hamiltonian=ham, seed=cfg.sampler.seed,
                    circuit_parameters=ansatz.to_parameters(), circuit_structure=ansatz.structure())
    # Every evaluation is on file (a run that died before its final step):
    # the resume only re-runs the best walker for the result.
    with update_run_file(path) as f:
        group = f.require_group(EVALUATIONS_GROUP)
        for e in res.evaluations:
            write_evaluation(group, e)
    stages = []

    class Observer:
        def stage(self, message: str) -> None:
            stages.append(message)

        def iteration(self, record, elapsed_s: float) -> None:
            stages.append(record.iteration)

    out = run_closed_loop_file(cfg, ham, ansatz, path, observer=Observer())
    assert out.energy == pytest.approx(res.energy, abs=1e-10)
    assert out.final.energy == pytest.approx(res.energy, abs=1e-10)
    assert "resuming with 15 recorded evaluations" in stages[0]
    record = read_run(path)
    assert record.complete
    assert record.result["energy"] == pytest.approx(res.energy, abs=1e-10)
    assert len(record.iterations) == res.best.sqd_iterations
    with h5py.File(path, "r") as f:
        cl = f["closed_loop"]
        assert cl.attrs["open_loop_energy"] == res.open_loop.energy
        assert (cl.attrs["best_generation"], cl.attrs["best_walker"]) == (res.best.generation, res.best.walker)
        np.testing.assert_array_equal(cl["params"][()], res.params)
    assert len(read_run_evaluations(path)) == 15


def test_resume_refuses_records_of_other_parameters(lih, de_run) -> None:
    cfg, ham, ansatz = lih
    first = de_run[0].evaluations[0]
    other = dataclasses.replace(first, params_hash="0" * 16)
    with pytest.raises(SQDInputError, match="other parameters"):
        run_closed_loop(ham, ansatz, cfg.sampler, cfg.sqd, cfg.closed_loop, completed=[other])


@pytest.mark.parametrize("optimizer, n_eval", [("cobyla", 4), ("spsa", 5)])
def test_local_optimizers_drive_the_same_objective(lih, de_run, optimizer: str, n_eval: int) -> None:
    cfg, ham, ansatz = lih
    cl = cfg.closed_loop.model_copy(update={"optimizer": optimizer, "max_evaluations": n_eval})
    res = run_closed_loop(ham, ansatz, cfg.sampler, cfg.sqd, cl)
    assert res.n_evaluations == n_eval
    # Generation 0 is the same open-loop evaluation as differential evolution's.
    assert res.open_loop.energy == pytest.approx(de_run[0].open_loop.energy, abs=1e-10)
    assert res.energy <= res.open_loop.energy
    if optimizer == "spsa":
        assert [g.n_evaluations for g in res.generations] == [1, 2, 2]


def test_carryover_is_heaviest_first_and_limited_under_a_cap(lih) -> None:
    cfg, _, _ = lih
    result = SimpleNamespace(
        top_alpha=np.array([3, 5, 3, 9]), top_beta=np.array([3, 3, 6, 3]), top_coef=np.array([0.9, 0.3, 0.2, 0.1]),
    )
    a, b = _heaviest_first((np.array([9, 5, 3, 17]), np.array([6, 3, 10])), result, symmetric=False)
    np.testing.assert_array_equal(a, [3, 5, 9, 17])  # weights .85, .09, .01, 0
    np.testing.assert_array_equal(b, [3, 6, 10])
    u = np.array([3, 5, 6, 9])
    a, b = _heaviest_first((u, u), result, symmetric=True)
    np.testing.assert_array_equal(a, [3, 5, 6, 9])  # both spins: 3: .85+.91, 5: .09, 6: .04, 9: .01
    np.testing.assert_array_equal(a, b)
    # max_dim 5 and fraction 0.5 keep the two heaviest strings per spin, sorted
    kept = limit_carryover((np.array([9, 3, 5]), np.array([6, 3])), cfg.sqd, cfg.closed_loop)
    np.testing.assert_array_equal(kept[0], [3, 9])
    np.testing.assert_array_equal(kept[1], [3, 6])
    uncapped = limit_carryover((np.array([9, 3, 5]), np.array([6, 3])), cfg.sqd.model_copy(update={"max_dim": None}),
                               cfg.closed_loop)
    np.testing.assert_array_equal(uncapped[0], [3, 5, 9])


def test_population_below_three_and_file_sampler_are_user_errors(lih) -> None:
    cfg, ham, ansatz = lih
    cl = cfg.closed_loop.model_copy(update={"population": 2})
    with pytest.raises(SQDInputError, match="closed_loop.population"):
        run_closed_loop(ham, ansatz, cfg.sampler, cfg.sqd, cl)
    replay = cfg.sampler.model_copy(update={"kind": "file", "path": Path("counts.json")})
    with pytest.raises(SQDInputError, match="sampler.kind"):
        run_closed_loop(ham, ansatz, replay, cfg.sqd, cfg.closed_loop)


_MPI_SCRIPT = """
import json, sys
from mpi4py import MPI
from sqd_suite.circuits import build_lucj_ansatz
from sqd_suite.config import load_config
from sqd_suite.hamiltonian import build_hamiltonian
from sqd_suite.loop.closed_loop import run_closed_loop
comm = MPI.COMM_WORLD
cfg = load_config(sys.argv[1]).with_updates(json.loads(sys.argv[2]))
# One Hamiltonian for all ranks: CCSD amplitudes may differ in the last digits between processes.
ham = comm.bcast(build_hamiltonian(cfg) if comm.Get_rank() == 0 else None, root=0)
ansatz = build_lucj_ansatz(ham, cfg.circuit)
par = run_closed_loop(ham, ansatz, cfg.sampler, cfg.sqd, cfg.closed_loop, comm=comm)
if comm.Get_rank() == 0:
    ser = run_closed_loop(ham, ansatz, cfg.sampler, cfg.sqd, cfg.closed_loop)
    print(json.dumps({r: {"energies": [e.energy for e in x.evaluations], "hashes": [e.params_hash for e in x.evaluations]}
                      for r, x in (("par", par), ("ser", ser))}))
"""


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found")
def test_two_ranks_evaluate_walkers_in_parallel_with_serial_results() -> None:
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-c", _MPI_SCRIPT,
           str(ROOT / "molecules" / "lih.yaml"), json.dumps(UPDATES)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["par"]["hashes"]) == 15
    assert out["par"]["hashes"] == out["ser"]["hashes"]
    np.testing.assert_allclose(out["par"]["energies"], out["ser"]["energies"], atol=1e-9, rtol=0)
