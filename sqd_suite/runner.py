"""A whole run: config -> Hamiltonian -> ansatz -> samples -> SQD loop -> run file.

:func:`run` starts a run from a :class:`~sqd_suite.config.RunConfig`;
:func:`resume` continues one from its run file. Under MPI every rank calls
them with the same communicator: rank 0 builds the Hamiltonian and the
samples and is the only one that touches the file; all ranks share the
eigensolves.

What makes resume exact: the samples, the Hamiltonian integrals, the initial
occupancies and every completed iteration are in the file, and an
iteration's random numbers depend only on ``(seed, iteration)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import yaml

from sqd_suite.config import RunConfig, config_from_dict
from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import ActiveSpaceHamiltonian
from sqd_suite.loop.sqd import SQD, SQDIteration, SQDResult
from sqd_suite.store import (
    append_iteration,
    create_run_file,
    read_run,
    read_run_hamiltonian,
    read_run_samples,
    record_job_id,
    run_file_status,
    update_run_file,
    write_result,
    write_run_samples,
)

__all__ = ["RunObserver", "resume", "run"]

T = TypeVar("T")


class RunObserver(Protocol):
    """What a front end (the CLI's progress display) hears from a run; rank 0 only."""

    def stage(self, message: str) -> None:
        """A new preparation step starts (Hamiltonian, ansatz, sampling, loop)."""

    def hamiltonian(self, hamiltonian: ActiveSpaceHamiltonian) -> None:
        """The Hamiltonian is ready (its reference energies can label the iterations)."""

    def iteration(self, record: SQDIteration, elapsed_s: float) -> None:
        """An iteration completed and is on disk."""


class _Silent:
    def stage(self, message: str) -> None:
        pass

    def hamiltonian(self, hamiltonian: ActiveSpaceHamiltonian) -> None:
        pass

    def iteration(self, record: SQDIteration, elapsed_s: float) -> None:
        pass


def _on_root(comm: Any | None, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 and give every rank its value, or raise its error everywhere."""
    if comm is None or comm.Get_size() == 1:
        return fn()
    payload: tuple[bool, Any] = (True, None)
    if comm.Get_rank() == 0:
        try:
            payload = (True, fn())
        except BaseException as err:  # noqa: BLE001 - re-raised on every rank below
            payload = (False, err)
    ok, value = comm.bcast(payload if comm.Get_rank() == 0 else None, root=0)
    if not ok:
        raise value
    return value


def _is_root(comm: Any | None) -> bool:
    return comm is None or comm.Get_rank() == 0


def _check_output(path: Path, force: bool) -> None:
    status = run_file_status(path) if path.exists() else None
    if status is None or force:
        return
    if status == "complete":
        raise SQDInputError(
            str(path), "a complete run file is already there",
            fix="pass --force to overwrite it, or --output to write elsewhere",
        )
    raise SQDInputError(
        str(path), f"an unfinished run is already there (status '{status}')",
        fix=f"continue it with `sqd resume {path}`, or pass --force to start over",
    )


def _sample(config: RunConfig, hamiltonian: ActiveSpaceHamiltonian, path: Path, obs: Any,
            *, ansatz: Any = None, job_id: str | None = None) -> Any:
    """Build the ansatz (unless given), sample it, store the samples."""
    from sqd_suite.circuits import build_lucj_ansatz
    from sqd_suite.sampling import sample, target_backend

    backend = target_backend(config.sampler)
    if ansatz is None:
        ansatz = build_lucj_ansatz(hamiltonian, config.circuit, backend=backend)
    obs.stage(f"sampling: {config.sampler.kind}, {config.sampler.shots:,} shots on {ansatz.n_qubits} qubits")
    samples = sample(
        ansatz, config.sampler.shots, config.sampler, seed=config.sampler.seed,
        on_submit=lambda jid: record_job_id(path, jid), job_id=job_id, backend=backend,
        optimization_level=config.circuit.optimization_level, base_dir=config.base_dir,
    )
    stats = samples.metadata.get("transpile_stats")
    write_run_samples(path, samples)
    if stats:
        with update_run_file(path) as f:
            f["circuit"].attrs["transpile_stats"] = json.dumps(stats, default=str)
    return samples


def _loop(
    config: RunConfig,
    hamiltonian: ActiveSpaceHamiltonian,
    samples: Any,
    path: Path,
    *,
    history: tuple[SQDIteration, ...],
    initial_occupancies: tuple[np.ndarray, np.ndarray],
    elapsed0: float,
    t_start: float,
    comm: Any | None,
    obs: Any,
) -> SQDResult:
    root = _is_root(comm)
    job_ids = list(samples.metadata.get("job_ids", []) or [])
    if samples.metadata.get("job_id"):
        job_ids.append(str(samples.metadata["job_id"]))

    def on_iteration(record: SQDIteration) -> None:
        if root:
            elapsed = elapsed0 + time.perf_counter() - t_start
            append_iteration(path, record, job_ids=job_ids, elapsed_s=elapsed)
            obs.iteration(record, elapsed)

    if root:
        obs.stage("SQD loop")
    solver = SQD(hamiltonian, samples, config.sqd, seed=config.sampler.seed, comm=comm)
    solver.initial_occupancies = initial_occupancies
    result = solver.kernel(history=history, callback=on_iteration)
    if root:
        write_result(path, result, elapsed_s=elapsed0 + time.perf_counter() - t_start)
    return result


def run(
    config: RunConfig,
    *,
    output: str | Path | None = None,
    force: bool = False,
    comm: Any | None = None,
    observer: RunObserver | None = None,
) -> SQDResult:
    """Run SQD for a config and write the run file (``output`` or ``config.output_path``).

    Refuses an existing complete run file (unless ``force``) and an
    unfinished one (suggesting :func:`resume`). Every rank of ``comm`` calls
    this; only rank 0 writes.
    """
    from sqd_suite.hamiltonian import build_hamiltonian

    obs = observer or _Silent()
    t_start = time.perf_counter()
    path = Path(output) if output is not None else config.output_path

    def prepare() -> tuple[ActiveSpaceHamiltonian, Any, tuple[np.ndarray, np.ndarray]]:
        _check_output(path, force)
        obs.stage("Hamiltonian: SCF, active space, CCSD, exact reference")
        ham = build_hamiltonian(config)
        obs.hamiltonian(ham)
        occ0 = ham.initial_occupancies(config.sqd.initial_occupancies)
        from sqd_suite.circuits import build_lucj_ansatz
        from sqd_suite.sampling import target_backend

        obs.stage("LUCJ ansatz from CCSD amplitudes")
        ansatz = build_lucj_ansatz(ham, config.circuit, backend=target_backend(config.sampler))
        create_run_file(
            path, config_yaml=config.to_yaml(), hamiltonian=ham, seed=config.sampler.seed,
            save_integrals=config.output.save_integrals, circuit_parameters=ansatz.to_parameters(),
            circuit_structure=ansatz.structure(),
            transpile_stats={"transpiled": False, "n_qubits": ansatz.n_qubits, "n_params": ansatz.n_params},
            attrs={"run_name": config.run_name, "mpi_ranks": 1 if comm is None else comm.Get_size()},
        )
        with update_run_file(path) as f:
            f.create_dataset("initial_occupancies", data=np.stack(occ0))
        if config.closed_loop.enabled:
            # the closed loop samples once per walker; it writes the samples itself
            return ham, ansatz, None, occ0
        samples = _sample(config, ham, path, obs, ansatz=ansatz)
        return ham, None, samples, occ0

    ham, ansatz, samples, occ0 = _on_root(comm, prepare)
    if config.closed_loop.enabled:
        return _closed_loop(config, ham, ansatz, path, elapsed0=0.0, comm=comm, obs=obs)
    return _loop(config, ham, samples, path, history=(), initial_occupancies=occ0, elapsed0=0.0,
                 t_start=t_start, comm=comm, obs=obs)


def _closed_loop(config: RunConfig, hamiltonian: ActiveSpaceHamiltonian, ansatz: Any, path: Path, *,
                 elapsed0: float, comm: Any | None, obs: Any) -> SQDResult:
    """Optimise the circuit with the SQD energy as objective (docs/closed_loop.md)."""
    from sqd_suite.loop.closed_loop import run_closed_loop_file

    return run_closed_loop_file(config, hamiltonian, ansatz, path, comm=comm,
                                observer=obs if _is_root(comm) else None, elapsed0=elapsed0).final


def resume(
    path: str | Path,
    *,
    comm: Any | None = None,
    observer: RunObserver | None = None,
) -> SQDResult:
    """Continue an interrupted run from its last complete iteration.

    The final energy equals that of an uninterrupted run with the same seed
    (bit for bit when the file holds the integrals, ``output.save_integrals``).
    """
    obs = observer or _Silent()
    t_start = time.perf_counter()
    path = Path(path)

    def prepare() -> tuple[RunConfig, ActiveSpaceHamiltonian, Any, tuple, tuple, float]:
        import h5py

        record = read_run(path)
        if record.complete:
            raise SQDInputError(str(path), "this run is already complete", fix=f"see it with `sqd report {path}`")
        try:
            config = config_from_dict(yaml.safe_load(record.config_yaml))
        except yaml.YAMLError:
            raise SQDInputError(str(path), "damaged config in run file", fix="start again with `sqd run`") from None
        ham = read_run_hamiltonian(path)
        if ham is None:
            from sqd_suite.hamiltonian import build_hamiltonian

            obs.stage("Hamiltonian (the run file has no integrals): SCF, active space, CCSD")
            ham = build_hamiltonian(config)
        obs.hamiltonian(ham)
        with h5py.File(path, "r") as f:
            occ0 = tuple(f["initial_occupancies"][()]) if "initial_occupancies" in f else None
        if occ0 is None:
            occ0 = ham.initial_occupancies(config.sqd.initial_occupancies)
        from sqd_suite.circuits import LUCJAnsatz

        ansatz = None
        if record.circuit_parameters is not None and record.circuit_structure:
            # the stored parameters, not a fresh CCSD (which may differ in degenerate orbitals)
            ansatz = LUCJAnsatz.from_parameters(record.circuit_parameters, **record.circuit_structure)
        elapsed0 = float(record.attrs.get("elapsed_s", 0.0))
        if config.closed_loop.enabled:
            if ansatz is None:
                raise SQDInputError(str(path), "the run file holds no circuit parameters", fix="start again with `sqd run`")
            return config, ham, ansatz, None, occ0, (), elapsed0
        samples = read_run_samples(path)
        if samples is None:
            job_id = record.job_ids[-1] if record.job_ids else None
            samples = _sample(config, ham, path, obs, ansatz=ansatz, job_id=job_id)
        if record.iterations:
            obs.stage(f"resuming after iteration {record.iterations[-1].iteration}")
        return config, ham, None, samples, occ0, record.iterations, elapsed0

    config, ham, ansatz, samples, occ0, history, elapsed0 = _on_root(comm, prepare)
    if config.closed_loop.enabled:
        return _closed_loop(config, ham, ansatz, path, elapsed0=elapsed0, comm=comm, obs=obs)
    return _loop(config, ham, samples, path, history=tuple(history), initial_occupancies=occ0,
                 elapsed0=elapsed0, t_start=t_start, comm=comm, obs=obs)
