"""Helpers shared by the primitive-based samplers (aer, ibm_runtime, qrmi)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from sqd_suite.errors import SQDInputError
from sqd_suite.sampling.samples import Samples

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Replaced in tests so retries do not sleep.
_sleep: Callable[[float], None] = time.sleep


def samples_from_pub_result(pub_result: Any, norb: int, metadata: dict[str, Any]) -> Samples:
    """A SamplerV2 pub result (``measure_all`` register) as :class:`Samples`.

    ``BitArray.array`` packs each shot big-endian with clbit 0 the lowest bit
    of the last byte, so the last ``2*norb`` unpacked columns are already
    ``[b_{N-1} ... b_0 a_{N-1} ... a_0]``.
    """
    data = pub_result.data
    names = list(data.keys()) if hasattr(data, "keys") else []
    if not names:
        raise RuntimeError("the sampler result holds no classical register")
    bit_array = data[names[0]] if "meas" not in names else data["meas"]
    width = 2 * norb
    if bit_array.num_bits != width:
        raise RuntimeError(f"the sampler returned {bit_array.num_bits}-bit outcomes, expected {width}")
    packed = np.asarray(bit_array.array, dtype=np.uint8).reshape(-1, bit_array.array.shape[-1])
    bits = np.unpackbits(packed, axis=1, bitorder="big")[:, -width:].astype(bool)
    return Samples.from_bitstring_matrix(bits, norb, metadata=metadata)


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    max_retries: int,
    transient: tuple[type[BaseException], ...],
    base_delay: float = 2.0,
) -> T:
    """Run ``action``; on a transient error wait ``base_delay * 2**k`` seconds and try again."""
    for attempt in range(max_retries + 1):
        try:
            return action()
        except transient as err:
            if attempt == max_retries:
                raise SQDInputError(
                    "sampler.max_retries",
                    f"{what} failed {attempt + 1} times; last error: {type(err).__name__}: {err}",
                    fix="check the service status and network, then rerun (the run file keeps submitted job ids)",
                ) from err
            delay = base_delay * 2**attempt
            logger.warning("%s failed (%s: %s); retrying in %.0f s", what, type(err).__name__, err, delay)
            _sleep(delay)
    raise AssertionError("unreachable")


def error_suppression_options(dynamical_decoupling: bool, twirling: bool) -> dict[str, Any]:
    """Sampler options (SamplerV2 schema) for dynamical decoupling and Pauli twirling."""
    return {
        "dynamical_decoupling": {"enable": bool(dynamical_decoupling)},
        "twirling": {"enable_gates": bool(twirling), "enable_measure": bool(twirling)},
    }
