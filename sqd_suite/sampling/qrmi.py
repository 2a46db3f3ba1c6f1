"""Sampling on a QPU granted to a Slurm job by the QRMI SPANK plugin.

A job script asks for a QPU with ``#SBATCH --qpu=<resource>``; the plugin
exports the granted resources and their types in ``QRMI_JOB_QPU_RESOURCES`` /
``QRMI_JOB_QPU_TYPES`` (legacy names ``SLURM_JOB_QPU_RESOURCES`` /
``SLURM_JOB_QPU_TYPES``; list separator ``QRMI_LIST_DELIMITER``, default
``,``) plus per-resource settings such as
``<resource>_QRMI_IBM_QCS_ENDPOINT``. ``qrmi.QRMIService()`` reads them and
returns the accessible :class:`qrmi.QuantumResource` objects; the ``qrmi``
package's IBM ``SamplerV2`` runs the circuit on one of them
(``sampler.backend`` picks which; default the first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import _primitives
from sqd_suite.sampling.samples import Samples

if TYPE_CHECKING:
    from qiskit.providers import BackendV2

    from sqd_suite.circuits import LUCJAnsatz

__all__ = ["granted_qpu_resources", "qrmi_backend", "qrmi_resource", "sample_qrmi"]

logger = logging.getLogger(__name__)

RESOURCE_ENV = ("QRMI_JOB_QPU_RESOURCES", "SLURM_JOB_QPU_RESOURCES")
_NO_QPU_FIX = (
    "run inside a Slurm job that requests a QPU with '#SBATCH --qpu=<resource>' "
    "(QRMI SPANK plugin), or use sampler.kind: ibm_runtime / exact"
)


def granted_qpu_resources() -> list[str]:
    """Resource names granted to this job by the SPANK plugin (empty when none)."""
    for name in RESOURCE_ENV:
        value = os.environ.get(name)
        if value is not None:
            sep = os.environ.get("QRMI_LIST_DELIMITER", ",")
            return [r for r in value.split(sep) if r]
    return []


def _import_qrmi() -> Any:
    """The optional ``qrmi`` package, or a one-line error saying how to install it."""
    try:
        import qrmi
    except ImportError:
        raise SQDInputError(
            "sampler.kind", "qrmi: the qrmi package is not installed", fix="pip install 'sqd-suite[qrmi]'"
        ) from None
    return qrmi


def qrmi_resource(settings: SamplerConfig) -> Any:
    """The granted :class:`qrmi.QuantumResource` named by ``sampler.backend`` (default: the first)."""
    granted = granted_qpu_resources()
    if not granted:
        where = "outside a Slurm job" if "SLURM_JOB_ID" not in os.environ else f"in Slurm job {os.environ['SLURM_JOB_ID']}"
        raise SQDInputError(
            "sampler.kind",
            f"qrmi: no QPU resource was granted {where} ({' / '.join(RESOURCE_ENV)} unset or empty)",
            fix=_NO_QPU_FIX,
        )
    if settings.backend and settings.backend not in granted:
        raise SQDInputError(
            "sampler.backend",
            f"qrmi: resource {settings.backend!r} was not granted to this job (granted: {', '.join(granted)})",
            fix=f"set sampler.backend to one of {', '.join(granted)} or request it with #SBATCH --qpu",
        )
    qrmi = _import_qrmi()
    try:
        service = qrmi.QRMIService()
    except qrmi.EnvVarNotSetError as err:
        raise SQDInputError(
            "sampler.kind",
            f"qrmi: the QPU configuration is incomplete ({err})",
            fix="check the QRMI SPANK plugin configuration (qrmi_config.json) that exports the resource's variables",
        ) from None
    except qrmi.QrmiError as err:
        raise SQDInputError("sampler.kind", f"qrmi: cannot open the granted QPUs ({err})", fix=_NO_QPU_FIX) from None
    name = settings.backend or granted[0]
    resource = service.resource(name)
    if resource is None:
        accessible = [r.resource_id() for r in service.resources()]
        raise SQDInputError(
            "sampler.backend",
            f"qrmi: resource {name!r} is not accessible (accessible: {', '.join(accessible) or 'none'})",
            fix="check the QPU status and the plugin configuration",
        )
    kind = str(resource.resource_type())
    if "IBM" not in kind:
        raise SQDInputError(
            "sampler.backend",
            f"qrmi: resource {name!r} is of type {kind}; this sampler drives IBM QPUs (Qiskit SamplerV2)",
            fix="request an IBM Quantum resource with #SBATCH --qpu",
        )
    return resource


def qrmi_backend(settings: SamplerConfig) -> BackendV2:
    """The granted QPU as a Qiskit backend (its target drives the LUCJ layout)."""
    from qrmi.primitives.ibm import get_backend

    return get_backend(qrmi_resource(settings))


def sampler_options(settings: SamplerConfig, shots: int) -> dict[str, Any]:
    """Options of qrmi's IBM SamplerV2: default shots and the server-side run options."""
    return {
        "default_shots": int(shots),
        "run_options": _primitives.error_suppression_options(settings.dynamical_decoupling, settings.twirling),
    }


def sample_qrmi(
    ansatz: LUCJAnsatz,
    shots: int,
    settings: SamplerConfig,
    *,
    seed: np.random.Generator | int | None,
    on_submit: Callable[[str], Any] | None = None,
    job_id: str | None = None,
    backend: BackendV2 | None = None,
    optimization_level: int = 3,
) -> Samples:
    """Sample the ansatz on the QPU granted to this Slurm job."""
    from sqd_suite.circuits import transpile_ansatz
    from sqd_suite.sampling.ibm_runtime import int_seed

    # The grant is checked first: outside a QPU job, say so, whether or not qrmi is installed.
    resource = qrmi_resource(settings)
    from qrmi.primitives import RuntimeJobV2
    from qrmi.primitives.ibm import SamplerV2, get_backend

    name = resource.resource_id()
    metadata: dict[str, Any] = {
        "sampler": "qrmi",
        "backend": name,
        "shots_requested": int(shots),
        "dynamical_decoupling": settings.dynamical_decoupling,
        "twirling": settings.twirling,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    transient = (ConnectionError, TimeoutError)
    if job_id is not None:
        job = RuntimeJobV2(resource, job_id)
        metadata.update(job_ids=[job_id], resumed=True)
    else:
        backend = backend if backend is not None else get_backend(resource)
        transpiled = transpile_ansatz(ansatz, backend, optimization_level=optimization_level, seed=int_seed(seed))
        metadata["transpile_stats"] = transpiled.stats
        sampler = SamplerV2(resource, options=sampler_options(settings, shots))
        job = _primitives.with_retries(
            lambda: sampler.run([transpiled.circuit], shots=shots),
            what="submitting the QRMI sampler task",
            max_retries=settings.max_retries,
            transient=transient,
        )
        metadata["job_ids"] = [str(job.job_id())]
        if on_submit is not None:
            on_submit(str(job.job_id()))
        logger.info("submitted QRMI task %s on %s", job.job_id(), name)
    result = _primitives.with_retries(
        job.result, what=f"waiting for QRMI task {metadata['job_ids'][0]}", max_retries=settings.max_retries, transient=transient
    )
    return _primitives.samples_from_pub_result(result[0], ansatz.norb, metadata)
