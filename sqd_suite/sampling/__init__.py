"""Samplers: where the bitstrings come from.

Every sampler returns a :class:`Samples` (unique bitstrings + counts, the
qiskit-addon-sqd column convention documented in
:mod:`sqd_suite.sampling.samples` and docs/samplers.md). :func:`sample`
dispatches on ``SamplerConfig.kind``: ``exact`` (ffsim state vector, default),
``aer`` (noisy fake backend), ``ibm_runtime`` (a real QPU, or local testing
mode for ``fake_*`` backend names), ``qrmi`` (a QPU granted to a Slurm job),
``file`` (replay bitstrings).
"""

from sqd_suite.sampling.api import sample, target_backend
from sqd_suite.sampling.exact import exact_memory_bytes, sample_exact, uniform_bitstrings
from sqd_suite.sampling.samples import Samples

__all__ = [
    "Samples",
    "exact_memory_bytes",
    "sample",
    "sample_exact",
    "target_backend",
    "uniform_bitstrings",
]
