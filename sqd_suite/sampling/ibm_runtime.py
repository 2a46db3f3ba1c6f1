"""Sampling on IBM Quantum hardware through qiskit-ibm-runtime (SamplerV2 in Batch mode).

Uses the client-side ``SamplerV2`` of qiskit-ibm-runtime 0.51
(``qiskit_ibm_runtime.executor_sampler.SamplerV2``; the top-level
``qiskit_ibm_runtime.SamplerV2`` is deprecated since 0.50).

Where the backend comes from is the only difference between real hardware
and local testing:

- ``sampler.backend`` starting with ``fake_`` or ``Fake`` (``FakeSherbrooke``,
  ``fake_torino``, ...) selects qiskit-ibm-runtime's *local testing mode*:
  the fake backend is passed as the mode, the job runs on qiskit-aer with the
  backend's noise model, and no account or network is used;
- any other name (or none: the least busy device) opens a
  ``QiskitRuntimeService``. The token comes only from the environment
  (``QISKIT_IBM_TOKEN``, optionally ``QISKIT_IBM_INSTANCE``) or from an
  account saved with ``QiskitRuntimeService.save_account``; it is never
  logged or stored. ``sampler.channel`` / ``sampler.instance`` select the
  channel and instance.

Everything else (transpilation with the LUCJ layout, Batch, error-suppression
options, ``on_submit`` before waiting, resuming with ``job_id``, retries with
exponential backoff) is the same code path in both cases.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import _primitives
from sqd_suite.sampling.samples import Samples

if TYPE_CHECKING:
    from qiskit.providers import BackendV2

    from sqd_suite.circuits import LUCJAnsatz

__all__ = [
    "RuntimeTarget",
    "is_local_testing_name",
    "runtime_backend",
    "runtime_service",
    "runtime_target",
    "sample_ibm_runtime",
]

logger = logging.getLogger(__name__)

TOKEN_ENV = "QISKIT_IBM_TOKEN"

# Results of local testing jobs live only in this process; kept so that
# ``job_id=`` resumes them the way it fetches finished jobs from the service.
# (Results, not jobs: a LocalRuntimeJob post-processes its data in place, so a
# second ``result()`` call fails with twirling on.)
_LOCAL_RESULTS: dict[str, Any] = {}


@dataclass(frozen=True)
class _FinishedLocalJob:
    job_id_: str
    result_: Any

    def job_id(self) -> str:
        return self.job_id_

    def result(self) -> Any:
        return self.result_


def is_local_testing_name(name: str | None) -> bool:
    """Backend names that select qiskit-ibm-runtime's local testing mode."""
    return name is not None and (name.startswith("fake_") or name.startswith("Fake"))


def fake_backend(name: str | None) -> BackendV2:
    """A qiskit-ibm-runtime fake backend by class name (``FakeTorino``) or backend name (``fake_torino``)."""
    from qiskit_ibm_runtime import fake_provider

    name = name or "FakeSherbrooke"
    cls = getattr(fake_provider, name, None)
    if cls is None and name.lower().startswith("fake_"):
        wanted = name.lower().replace("_", "")
        # Backend names drop the class's "V2" suffix: fake_manila -> FakeManilaV2.
        cls = next((getattr(fake_provider, n) for n in dir(fake_provider) if n.lower() in (wanted, wanted + "v2")), None)
    if cls is None or not isinstance(cls, type):
        known = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and not n.startswith("FakeProvider"))
        raise SQDInputError(
            "sampler.backend",
            f"unknown fake backend {name!r}",
            fix=f"use one of qiskit_ibm_runtime.fake_provider's backends, e.g. {', '.join(known[:6])}",
        )
    return cls()


def _saved_account_file() -> Path:
    # Resolved at call time (the library resolves ~ at import time), so HOME decides.
    return Path(os.path.expanduser("~")) / ".qiskit" / "qiskit-ibm.json"


def _no_credentials_error(detail: str) -> SQDInputError:
    return SQDInputError(
        "sampler.kind",
        f"ibm_runtime needs IBM Quantum credentials: {detail}",
        fix=f"export {TOKEN_ENV}=<your API key> (and QISKIT_IBM_INSTANCE or sampler.instance), "
        "or save an account once with QiskitRuntimeService.save_account(token=..., instance=...); "
        "for a local test without an account use a fake backend (sampler.backend: FakeSherbrooke)",
    )


def runtime_service(settings: SamplerConfig) -> Any:
    """A ``QiskitRuntimeService`` from the environment token or the saved account."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    token = os.environ.get(TOKEN_ENV) or None
    account_file = _saved_account_file()
    if token is None and not account_file.exists():
        raise _no_credentials_error(f"{TOKEN_ENV} is not set and there is no saved account ({account_file})")
    kwargs: dict[str, Any] = {}
    if settings.channel:
        kwargs["channel"] = settings.channel
    instance = settings.instance or os.environ.get("QISKIT_IBM_INSTANCE") or None
    if instance:
        kwargs["instance"] = instance
    if token is not None:
        kwargs["token"] = token
    else:
        kwargs["filename"] = str(account_file)
    try:
        return QiskitRuntimeService(**kwargs)
    except Exception as err:  # noqa: BLE001 - any account/network failure becomes one line
        message = " ".join(str(err).split())
        if token:
            message = message.replace(token, "***")
        raise _no_credentials_error(f"the service refused the account ({type(err).__name__}: {message[:300]})") from None


@dataclass(frozen=True)
class RuntimeTarget:
    """Where jobs go: a backend and, for real hardware, the service that owns its jobs."""

    backend: Any
    service: Any | None
    local: bool

    @property
    def name(self) -> str:
        return str(self.backend.name)


def runtime_target(settings: SamplerConfig) -> RuntimeTarget:
    """The backend (and service) named by ``sampler.backend``; fake names -> local testing mode."""
    if is_local_testing_name(settings.backend):
        return RuntimeTarget(fake_backend(settings.backend), None, True)
    service = runtime_service(settings)
    try:
        if settings.backend:
            backend = service.backend(settings.backend)
        else:
            backend = service.least_busy(operational=True, simulator=False)
    except Exception as err:  # noqa: BLE001
        raise SQDInputError(
            "sampler.backend",
            f"cannot use backend {settings.backend or '(least busy)'}: {' '.join(str(err).split())[:300]}",
            fix="name a device your instance can access (service.backends())",
        ) from None
    return RuntimeTarget(backend, service, False)


def runtime_backend(settings: SamplerConfig) -> BackendV2:
    """The device of :func:`runtime_target` (to build the ansatz for its layout)."""
    return runtime_target(settings).backend


def _target_from_backend(backend: Any) -> RuntimeTarget:
    if is_local_testing_name(getattr(backend, "name", None)) and getattr(backend, "service", None) is None:
        return RuntimeTarget(backend, None, True)
    return RuntimeTarget(backend, getattr(backend, "service", None), False)


def _transient_errors() -> tuple[type[BaseException], ...]:
    from qiskit_ibm_runtime.api.exceptions import RequestsApiError
    from qiskit_ibm_runtime.exceptions import IBMApiError, RuntimeJobTimeoutError

    return (RequestsApiError, IBMApiError, RuntimeJobTimeoutError, ConnectionError, TimeoutError)


def int_seed(seed: np.random.Generator | int | None) -> int | None:
    """An int seed for simulators/transpilers from any accepted seed."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return None if seed is None else int(seed)
    return int(np.random.default_rng(seed).integers(2**31 - 1))


def _fetch_job(target: RuntimeTarget, job_id: str) -> Any | None:
    """The job to resume; None for a local job of another process (resampling it is free)."""
    if target.local:
        result = _LOCAL_RESULTS.get(job_id)
        if result is None:
            logger.warning("local testing job %s is not in this process; sampling again", job_id)
            return None
        return _FinishedLocalJob(job_id, result)
    try:
        return target.service.job(job_id)
    except Exception as err:  # noqa: BLE001
        raise SQDInputError(
            "job_id", f"cannot fetch job {job_id}: {' '.join(str(err).split())[:300]}",
            fix="check the job id and that the account/instance is the one that submitted it",
        ) from None


def sample_ibm_runtime(
    ansatz: LUCJAnsatz,
    shots: int,
    settings: SamplerConfig,
    *,
    seed: np.random.Generator | int | None,
    on_submit: Callable[[str], Any] | None = None,
    job_id: str | None = None,
    backend: BackendV2 | None = None,
    optimization_level: int = 3,
    target: RuntimeTarget | None = None,
) -> Samples:
    """Sample the ansatz on IBM hardware (or in local testing mode for a fake backend).

    ``on_submit(job_id)`` is called right after submission, before waiting.
    With ``job_id`` the finished (or still running) job is fetched instead of
    submitting a new one (in local testing mode, a job of another process
    cannot be fetched and is simply sampled again).
    """
    from qiskit_ibm_runtime import Batch
    from qiskit_ibm_runtime.executor_sampler import SamplerV2

    from sqd_suite.circuits import transpile_ansatz

    if target is None:
        target = _target_from_backend(backend) if backend is not None else runtime_target(settings)
    transient = _transient_errors()
    metadata: dict[str, Any] = {
        "sampler": "ibm_runtime",
        "backend": target.name,
        "local_testing_mode": target.local,
        "shots_requested": int(shots),
        "dynamical_decoupling": settings.dynamical_decoupling,
        "twirling": settings.twirling,
    }
    job = _fetch_job(target, job_id) if job_id is not None else None
    if job is not None:
        metadata["job_ids"] = [job_id]
        metadata["resumed"] = True
        result = _primitives.with_retries(
            job.result, what=f"fetching job {job_id}", max_retries=settings.max_retries, transient=transient
        )
        return _primitives.samples_from_pub_result(result[0], ansatz.norb, metadata)

    isa_seed = int_seed(seed)
    transpiled = transpile_ansatz(ansatz, target.backend, optimization_level=optimization_level, seed=isa_seed)
    metadata["transpile_stats"] = transpiled.stats
    options = _primitives.error_suppression_options(settings.dynamical_decoupling, settings.twirling)
    job_ids: list[str] = []
    with Batch(backend=target.backend) as batch:
        sampler = SamplerV2(mode=batch)
        sampler.options.dynamical_decoupling.enable = options["dynamical_decoupling"]["enable"]
        sampler.options.twirling.enable_gates = options["twirling"]["enable_gates"]
        sampler.options.twirling.enable_measure = options["twirling"]["enable_measure"]
        if target.local:
            sampler.options.simulator.seed_simulator = isa_seed
        job = _primitives.with_retries(
            lambda: sampler.run([transpiled.circuit], shots=shots),
            what="submitting the sampler job",
            max_retries=settings.max_retries,
            transient=transient,
        )
        new_id = str(job.job_id())
        job_ids.append(new_id)
        # Record the id before waiting: a crash or timeout must not lose a paid job.
        if on_submit is not None:
            on_submit(new_id)
        logger.info("submitted job %s on %s", new_id, target.name)
        metadata["batch_id"] = getattr(batch, "session_id", None)
        result = _primitives.with_retries(
            job.result, what=f"waiting for job {new_id}", max_retries=settings.max_retries, transient=transient
        )
        if target.local:
            _LOCAL_RESULTS[new_id] = result
    metadata["job_ids"] = job_ids
    return _primitives.samples_from_pub_result(result[0], ansatz.norb, metadata)
