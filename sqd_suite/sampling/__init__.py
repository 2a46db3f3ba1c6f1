"""Samplers: where the bitstrings come from.

Every sampler returns a :class:`Samples` (unique bitstrings + counts, the
qiskit-addon-sqd column convention documented in
:mod:`sqd_suite.sampling.samples` and docs/samplers.md). :func:`sample`
dispatches on ``SamplerConfig.kind``:

- ``exact``: ffsim state vector, optional global depolarizing noise (default);
- ``aer``: the transpiled circuit on a noisy fake backend (qiskit-aer);
- ``ibm_runtime``: a real QPU through qiskit-ibm-runtime (Batch, SamplerV2),
  or local testing mode when ``sampler.backend`` starts with ``fake_``/``Fake``;
- ``qrmi``: a QPU granted to a Slurm job by the QRMI SPANK plugin;
- ``file``: replay bitstrings from a counts JSON, a text list or HDF5.

Device samplers need the ansatz built for the device layout:
``build_lucj_ansatz(ham, cfg.circuit, backend=target_backend(cfg.sampler))``.
"""

from sqd_suite.sampling.aer import sample_aer
from sqd_suite.sampling.api import sample, target_backend
from sqd_suite.sampling.exact import exact_memory_bytes, sample_exact, uniform_bitstrings
from sqd_suite.sampling.file import read_bitstring_file, sample_file
from sqd_suite.sampling.ibm_runtime import (
    RuntimeTarget,
    fake_backend,
    is_local_testing_name,
    runtime_service,
    runtime_target,
    sample_ibm_runtime,
)
from sqd_suite.sampling.qrmi import granted_qpu_resources, qrmi_resource, sample_qrmi
from sqd_suite.sampling.samples import Samples

__all__ = [
    "RuntimeTarget",
    "Samples",
    "exact_memory_bytes",
    "fake_backend",
    "granted_qpu_resources",
    "is_local_testing_name",
    "qrmi_resource",
    "read_bitstring_file",
    "runtime_service",
    "runtime_target",
    "sample",
    "sample_aer",
    "sample_exact",
    "sample_file",
    "sample_ibm_runtime",
    "sample_qrmi",
    "target_backend",
    "uniform_bitstrings",
]
