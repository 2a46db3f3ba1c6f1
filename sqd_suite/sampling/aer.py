"""Noisy simulation of the transpiled ansatz on qiskit-aer with a fake backend's noise model.

Runs qiskit-ibm-runtime's ``SamplerV2`` in local testing mode
(``SamplerV2(mode=fake_backend)``): the circuit is transpiled for the fake
device with the LUCJ layout, then simulated by qiskit-aer with that device's
noise model. Noisy simulation is only feasible for tiny circuits (the 12-qubit
LiH LUCJ on FakeSherbrooke took about 3 minutes for 1000 shots), so it is
refused above ``sampler.max_qubits``. No error suppression is applied: this
is the raw noisy device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import _primitives
from sqd_suite.sampling.ibm_runtime import fake_backend, int_seed
from sqd_suite.sampling.samples import Samples

if TYPE_CHECKING:
    from qiskit.providers import BackendV2

    from sqd_suite.circuits import LUCJAnsatz

__all__ = ["fake_backend", "sample_aer"]


def sample_aer(
    ansatz: LUCJAnsatz,
    shots: int,
    settings: SamplerConfig,
    *,
    seed: np.random.Generator | int | None,
    backend: BackendV2 | None = None,
    optimization_level: int = 3,
) -> Samples:
    """Sample the ansatz on a noisy fake backend (default FakeSherbrooke)."""
    from qiskit_ibm_runtime.executor_sampler import SamplerV2

    from sqd_suite.circuits import transpile_ansatz

    if ansatz.n_qubits > settings.max_qubits:
        raise SQDInputError(
            "sampler.max_qubits",
            f"noisy simulation of {ansatz.n_qubits} qubits (norb={ansatz.norb}) exceeds the limit of "
            f"{settings.max_qubits}; its cost grows exponentially (12 qubits already take minutes)",
            fix="use the exact sampler with global_depolarizing as a noise stand-in, a smaller active space, "
            "or raise sampler.max_qubits",
        )
    backend = backend if backend is not None else fake_backend(settings.backend)
    isa_seed = int_seed(seed)
    transpiled = transpile_ansatz(ansatz, backend, optimization_level=optimization_level, seed=isa_seed)
    sampler = SamplerV2(mode=backend)
    sampler.options.dynamical_decoupling.enable = False
    sampler.options.twirling.enable_gates = False
    sampler.options.twirling.enable_measure = False
    sampler.options.simulator.seed_simulator = isa_seed
    job = sampler.run([transpiled.circuit], shots=shots)
    result = job.result()
    metadata = {
        "sampler": "aer",
        "backend": str(backend.name),
        "shots_requested": int(shots),
        "job_ids": [str(job.job_id())],
        "transpile_stats": transpiled.stats,
    }
    return _primitives.samples_from_pub_result(result[0], ansatz.norb, metadata)
