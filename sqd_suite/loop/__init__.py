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

# Closed-loop SQD (issue 6 part B): optimisers and the driver.
from sqd_suite.loop.closed_loop import (  # noqa: E402
    ClosedLoopResult,
    GenerationSummary,
    WalkerEvaluation,
    evaluate_walker,
    run_closed_loop,
    run_closed_loop_file,
)
from sqd_suite.loop.optimizers import cobyla, differential_evolution, spsa  # noqa: E402

__all__ += [
    "ClosedLoopResult",
    "GenerationSummary",
    "WalkerEvaluation",
    "cobyla",
    "differential_evolution",
    "evaluate_walker",
    "run_closed_loop",
    "run_closed_loop_file",
    "spsa",
]
