"""One entry point for every sampler: :func:`sample` dispatches on ``settings.kind``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sqd_suite.config import SamplerConfig
from sqd_suite.sampling.samples import Samples

if TYPE_CHECKING:
    from qiskit.providers import BackendV2

    from sqd_suite.circuits import LUCJAnsatz

__all__ = ["sample", "target_backend"]


def target_backend(settings: SamplerConfig) -> BackendV2 | None:
    """The device a sampler will run on (None for exact and file).

    Build the ansatz with it (``build_lucj_ansatz(ham, cfg, backend=...)``) so
    its opposite-spin pairs fit the device layout and routing adds no SWAPs.
    """
    kind = settings.kind
    if kind == "aer":
        from sqd_suite.sampling.aer import fake_backend

        return fake_backend(settings.backend)
    if kind == "ibm_runtime":
        from sqd_suite.sampling.ibm_runtime import runtime_backend

        return runtime_backend(settings)
    if kind == "qrmi":
        from sqd_suite.sampling.qrmi import qrmi_backend

        return qrmi_backend(settings)
    return None


def sample(
    ansatz: LUCJAnsatz,
    shots: int,
    settings: SamplerConfig,
    *,
    seed: np.random.Generator | int | None,
    on_submit: Callable[[str], Any] | None = None,
    job_id: str | None = None,
    backend: BackendV2 | None = None,
    optimization_level: int = 3,
    base_dir: Path | None = None,
) -> Samples:
    """Bitstrings of ``ansatz`` from the sampler named by ``settings.kind``.

    Args:
        ansatz: the LUCJ ansatz (its ``norb`` sets the bitstring width).
        shots: number of shots.
        settings: the ``sampler`` config section.
        seed: seeds the exact sampler, the noise, the simulator and the transpiler.
        on_submit: called with each job id as soon as a job is submitted,
            before waiting for it (so a run file can record it).
        job_id: fetch this finished hardware job instead of submitting a new one.
        backend: the device from :func:`target_backend`, to avoid resolving it twice.
        optimization_level: Qiskit transpiler level for device samplers
            (``circuit.optimization_level``).
        base_dir: folder that a relative ``settings.path`` is resolved against
            (the YAML's folder, ``RunConfig.base_dir``).
    """
    kind = settings.kind
    if kind == "exact":
        from sqd_suite.sampling.exact import sample_exact

        return sample_exact(ansatz, shots, settings, seed=seed)
    if kind == "file":
        from sqd_suite.sampling.file import sample_file

        return sample_file(ansatz.norb, settings, base_dir=base_dir)
    if kind == "aer":
        from sqd_suite.sampling.aer import sample_aer

        return sample_aer(ansatz, shots, settings, seed=seed, backend=backend, optimization_level=optimization_level)
    if kind == "ibm_runtime":
        from sqd_suite.sampling.ibm_runtime import sample_ibm_runtime

        return sample_ibm_runtime(
            ansatz, shots, settings, seed=seed, on_submit=on_submit, job_id=job_id,
            backend=backend, optimization_level=optimization_level,
        )
    if kind == "qrmi":
        from sqd_suite.sampling.qrmi import sample_qrmi

        return sample_qrmi(
            ansatz, shots, settings, seed=seed, on_submit=on_submit, job_id=job_id,
            backend=backend, optimization_level=optimization_level,
        )
    raise ValueError(f"unknown sampler kind {kind!r}")
