"""Subspace diagonalization on products of alpha x beta strings.

Matrix-free sigma (:class:`SubspaceHamiltonian`, :func:`sigma`), a block
Davidson (:func:`davidson`), the entry point :func:`solve` with its
:class:`DiagResult`, MPI distribution over (alpha block x beta block) tiles, CI-vector
properties, and a drop-in ``sci_solver`` for qiskit-addon-sqd (imported on
first use, since qiskit-addon-sqd pulls in JAX).
"""

from typing import Any

from .davidson import DavidsonResult, davidson
from .distributed import (
    PanelExchange,
    TileLayout,
    alpha_work_weights,
    choose_grid,
    excitation_counts,
    partition_rows,
)
from .hamiltonian import SubspaceHamiltonian, sigma
from .properties import (
    SpinSquareOperator,
    carryover_strings,
    largest_determinants,
    map_ci_vector,
    orbital_occupancies,
    place_determinants,
    spin_square,
)
from .solve import DiagResult, solve

__all__ = [
    "DavidsonResult",
    "DiagResult",
    "PanelExchange",
    "SCISolver",
    "SpinSquareOperator",
    "SubspaceHamiltonian",
    "TileLayout",
    "alpha_work_weights",
    "carryover_strings",
    "choose_grid",
    "davidson",
    "excitation_counts",
    "largest_determinants",
    "map_ci_vector",
    "orbital_occupancies",
    "partition_rows",
    "place_determinants",
    "sci_solver",
    "sigma",
    "solve",
    "spin_square",
]

_LAZY = {"SCISolver", "sci_solver"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import addon

        return getattr(addon, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
