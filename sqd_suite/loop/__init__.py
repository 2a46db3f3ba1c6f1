"""The self-consistent SQD loop and the closed-loop optimiser on top of it."""

from sqd_suite.loop.sqd import (
    SQD,
    SQDIteration,
    SQDResult,
    iteration_rng,
    kernel,
    quality_warnings,
)

__all__ = [
    "SQD",
    "SQDIteration",
    "SQDResult",
    "iteration_rng",
    "kernel",
    "quality_warnings",
]
