"""The self-consistent SQD loop and the closed-loop optimiser on top of it.

:func:`kernel` / :class:`SQD` run the loop on one set of samples;
:func:`run_closed_loop` optimises the circuit parameters with the SQD energy
as objective, using the gradient-free optimisers below.
"""

from sqd_suite.loop.closed_loop import (
    ClosedLoopResult,
    GenerationSummary,
    WalkerEvaluation,
    evaluate_walker,
    run_closed_loop,
    run_closed_loop_file,
)
from sqd_suite.loop.optimizers import cobyla, differential_evolution, spsa
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
    "ClosedLoopResult",
    "GenerationSummary",
    "SQDIteration",
    "SQDResult",
    "WalkerEvaluation",
    "cobyla",
    "differential_evolution",
    "evaluate_walker",
    "iteration_rng",
    "kernel",
    "quality_warnings",
    "run_closed_loop",
    "run_closed_loop_file",
    "spsa",
]
