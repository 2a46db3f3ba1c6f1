"""The HDF5 run file: round trips, copy-on-write crash safety, one-line errors."""

import math

import h5py
import numpy as np
import pytest

from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import hamiltonian_from_integrals
from sqd_suite.loop import SQDIteration
from sqd_suite.sampling import Samples
from sqd_suite.store import (
    append_iteration,
    create_run_file,
    read_run,
    read_run_hamiltonian,
    read_run_samples,
    record_job_id,
    run_file_status,
    update_run_file,
    write_run_samples,
)

NORB = 4


@pytest.fixture
def ham():
    rng = np.random.default_rng(0)
    h1 = rng.normal(size=(NORB, NORB))
    h1 = h1 + h1.T
    h2 = rng.normal(size=(NORB,) * 4) * 0.1
    h2 = h2 + h2.transpose(1, 0, 2, 3)
    h2 = h2 + h2.transpose(0, 1, 3, 2)
    h2 = h2 + h2.transpose(2, 3, 0, 1)
    return hamiltonian_from_integrals(h1, h2, NORB, (2, 2), ecore=1.5, e_hf=-1.0, exact_max_dim=0, label="toy")


def _record(k: int) -> SQDIteration:
    rng = np.random.default_rng(k)
    strings = np.array([3, 5, 6, 9, 10, 12], dtype=np.int64)
    return SQDIteration(
        iteration=k,
        energy=-1.0 - 0.1 * k - 1e-13 * k,
        batch_energies=np.array([-1.0 - 0.1 * k, -0.9]),
        best_batch=0,
        subspace_shape=(6, 6),
        distinct_strings=(6, 6),
        batch_shapes=np.array([[6, 6], [5, 5]]),
        occupancies=(rng.random(NORB), rng.random(NORB)),
        carryover=(strings[:2], strings[:2]),
        alpha_strings=strings,
        beta_strings=strings,
        top_alpha=strings[:3],
        top_beta=strings[1:4],
        top_coef=rng.normal(size=3),
        spin_square=1e-12,
        davidson_converged=True,
        davidson_iterations=7,
        energy_change=math.nan if k == 0 else 0.1,
        occupancy_change=math.nan if k == 0 else 0.01,
        converged=False,
        timings={"total": 0.5},
    )


def _new_file(tmp_path, ham):
    path = tmp_path / "run.h5"
    create_run_file(path, config_yaml="name: toy\n", hamiltonian=ham, seed=42,
                    circuit_parameters=np.arange(5.0), circuit_structure={"norb": NORB},
                    transpile_stats={"depth": 3}, attrs={"run_name": "toy"})
    return path


def test_round_trip_is_exact(tmp_path, ham):
    path = _new_file(tmp_path, ham)
    assert run_file_status(path) == "sampling"
    assert read_run_samples(path) is None
    record_job_id(path, "job-1")
    bits = np.zeros((2, 2 * NORB), dtype=bool)
    bits[0, [2, 3, 6, 7]] = True
    bits[1, [1, 3, 6, 7]] = True
    write_run_samples(path, Samples(bits, np.array([7, 3]), NORB, {"sampler": "exact"}))
    assert run_file_status(path) == "running"
    records = [_record(0), _record(1)]
    for r in records:
        append_iteration(path, r, job_ids=["job-1"], elapsed_s=3.0)
    run = read_run(path)
    assert run.status == "running" and not run.complete and run.result is None
    assert run.config_yaml == "name: toy\n"
    assert run.attrs["seed"] == 42 and run.job_ids == ("job-1",)
    assert np.array_equal(run.circuit_parameters, np.arange(5.0))
    assert run.transpile_stats == {"depth": 3}
    assert run.iteration_job_ids == (("job-1",), ("job-1",))
    for got, want in zip(run.iterations, records):
        assert got.energy == want.energy  # bit for bit: resume depends on it
        assert np.array_equal(got.occupancies[0], want.occupancies[0])
        assert np.array_equal(got.top_coef, want.top_coef)
        assert got.subspace_shape == want.subspace_shape
        assert got.timings == want.timings
    assert math.isnan(run.iterations[0].energy_change)
    samples = read_run_samples(path)
    assert np.array_equal(samples.bitstrings, bits) and list(samples.counts) == [7, 3]
    back = read_run_hamiltonian(path)
    assert np.array_equal(back.h2, ham.h2) and back.ecore == ham.ecore
    summary = run.summary()
    assert summary["iterations"] == 2 and summary["final_energy"] == records[1].energy
    assert summary["energy_is_final"] is False and summary["converged"] is False
    assert summary["wall_time_s"] == 3.0 and summary["shots"] == 10


def test_failed_update_leaves_the_previous_file(tmp_path, ham):
    path = _new_file(tmp_path, ham)
    append_iteration(path, _record(0))
    before = path.read_bytes()
    with pytest.raises(RuntimeError), update_run_file(path) as f:
        f["iterations"].create_group("00001").attrs["energy"] = 1.0
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == before
    assert len(read_run(path).iterations) == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_group_without_complete_flag_is_ignored(tmp_path, ham):
    path = _new_file(tmp_path, ham)
    append_iteration(path, _record(0))
    with h5py.File(path, "r+") as f:
        f["iterations"].create_group("00001").attrs["energy"] = -5.0
    assert [r.iteration for r in read_run(path).iterations] == [0]


@pytest.mark.parametrize("content", [b"", b"\x89HDF\r\n\x1a\n" + b"\0" * 100, b"garbage" * 50])
def test_corrupt_file_is_one_line(tmp_path, content):
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    with pytest.raises(SQDInputError) as err:
        read_run(path)
    assert "\n" not in str(err.value) and "bad.h5" in str(err.value)


def test_foreign_hdf5_and_missing_file(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(SQDInputError, match="not an sqd-suite run file"):
        read_run(other)
    assert run_file_status(tmp_path / "none.h5") is None
    with pytest.raises(SQDInputError, match="no such run file"):
        read_run(tmp_path / "none.h5")


def test_truncated_file_is_one_line(tmp_path, ham):
    path = _new_file(tmp_path, ham)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SQDInputError) as err:
        read_run(path)
    assert "\n" not in str(err.value)
