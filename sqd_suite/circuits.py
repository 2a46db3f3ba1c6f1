"""The LUCJ ansatz from CCSD amplitudes, its parameters, its circuit and its compilation.

:func:`build_lucj_ansatz` turns an :class:`~sqd_suite.hamiltonian.ActiveSpaceHamiltonian`
and a :class:`~sqd_suite.config.CircuitConfig` into an :class:`LUCJAnsatz`:

- closed shell: ffsim's spin-balanced ``UCJOpSpinBalanced.from_t_amplitudes``
  from the RCCSD ``t2`` (and ``t1`` as the final orbital rotation);
- open shell (``nelec[0] != nelec[1]``): ffsim's ``UCJOpSpinUnbalanced`` from
  the UCCSD tuples.

Interaction pairs follow the qubit layout: same-spin pairs between
neighbouring orbitals ``(p, p+1)`` (the two linear chains), opposite-spin
pairs ``(p, p)`` where the layout can host them (every 4th orbital on
heavy-hex, where each alpha-beta link goes through an ancilla qubit; every
orbital on a square lattice; all pairs for ``all-to-all``). With a target
backend the layout is chosen first (ffsim's
:func:`ffsim.qiskit.generate_lucj_pass_manager`) and the ansatz is built with
only the opposite-spin pairs the device can host, so routing adds no SWAPs.

Reproducibility: recomputing CCSD can change the amplitudes (degenerate
orbitals), so a run stores ``ansatz.to_parameters()`` and
``ansatz.structure()`` and rebuilds with
``LUCJAnsatz.from_parameters(params, **structure)``.

Qubit convention (Jordan-Wigner, as ffsim and qiskit-addon-sqd): qubits
``0..norb-1`` are the alpha orbitals, ``norb..2*norb-1`` the beta orbitals;
``circuit.measure_all()`` puts qubit ``i`` into classical bit ``i``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import ffsim
import numpy as np
from qiskit import QuantumCircuit, QuantumRegister
from qiskit.providers import BackendV2
from qiskit.transpiler import generate_preset_pass_manager

from sqd_suite.config import CircuitConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import ActiveSpaceHamiltonian

__all__ = [
    "LUCJAnsatz",
    "TranspiledCircuit",
    "build_lucj_ansatz",
    "default_interaction_pairs",
    "transpile_ansatz",
]

Pairs = list[tuple[int, int]]
Layout = Literal["heavy-hex", "square", "all-to-all"]


def default_interaction_pairs(norb: int, layout: Layout) -> tuple[Pairs | None, Pairs | None]:
    """Requested (alpha-alpha, alpha-beta) pairs for a layout; ``None`` = all pairs.

    The alpha-beta list is in priority order: when a device cannot host all
    of them, pairs are dropped from the end.
    """
    if layout == "all-to-all":
        return None, None
    pairs_aa = [(p, p + 1) for p in range(norb - 1)]
    if layout == "heavy-hex":
        pairs_ab = [(p, p) for p in range(0, norb, 4)]
    elif layout == "square":
        pairs_ab = [(p, p) for p in range(norb)]
    else:
        raise SQDInputError("circuit.layout", f"unknown layout {layout!r}", fix="use heavy-hex, square or all-to-all")
    return pairs_aa, pairs_ab


def _as_pairs(pairs: Any) -> Pairs | None:
    """Pairs from JSON/HDF5 (lists of lists) back to a list of int tuples."""
    if pairs is None:
        return None
    return [(int(p), int(q)) for p, q in pairs]


@dataclass(frozen=True)
class LUCJAnsatz:
    """An LUCJ operator with the structure needed to rebuild it from a flat vector.

    ``interaction_pairs`` is ``(pairs_aa, pairs_ab)`` for the spin-balanced
    operator and ``(pairs_aa, pairs_ab, pairs_bb)`` for the spin-unbalanced
    one; ``None`` in a slot means all pairs.
    """

    operator: ffsim.UCJOpSpinBalanced | ffsim.UCJOpSpinUnbalanced
    norb: int
    nelec: tuple[int, int]
    interaction_pairs: tuple[Pairs | None, ...]
    layout: Layout = "all-to-all"
    # Name of the backend whose connectivity decided the pairs (None: layout rule only).
    backend_name: str | None = None
    dropped_pairs_ab: tuple[tuple[int, int], ...] = field(default=())
    # Qubits/couplers the device layout avoids (ffsim's LUCJ pass manager); transpile reuses them.
    readout_error_threshold: float = 0.10
    two_qubit_error_threshold: float = 1.0

    @property
    def spin_balanced(self) -> bool:
        return isinstance(self.operator, ffsim.UCJOpSpinBalanced)

    @property
    def n_reps(self) -> int:
        return int(self.operator.n_reps)

    @property
    def with_final_orbital_rotation(self) -> bool:
        return self.operator.final_orbital_rotation is not None

    @property
    def n_qubits(self) -> int:
        return 2 * self.norb

    @property
    def n_params(self) -> int:
        cls = ffsim.UCJOpSpinBalanced if self.spin_balanced else ffsim.UCJOpSpinUnbalanced
        return int(
            cls.n_params(
                self.norb,
                self.n_reps,
                interaction_pairs=self.interaction_pairs,
                with_final_orbital_rotation=self.with_final_orbital_rotation,
            )
        )

    def to_parameters(self) -> np.ndarray:
        """The flat real parameter vector (only the allowed interaction pairs)."""
        return self.operator.to_parameters(interaction_pairs=self.interaction_pairs)

    def structure(self) -> dict[str, Any]:
        """JSON-serialisable keyword arguments of :meth:`from_parameters`."""
        return {
            "norb": self.norb,
            "nelec": list(self.nelec),
            "n_reps": self.n_reps,
            "interaction_pairs": [None if p is None else [list(x) for x in p] for p in self.interaction_pairs],
            "with_final_orbital_rotation": self.with_final_orbital_rotation,
            "layout": self.layout,
            "backend_name": self.backend_name,
            "readout_error_threshold": self.readout_error_threshold,
            "two_qubit_error_threshold": self.two_qubit_error_threshold,
        }

    @staticmethod
    def from_parameters(
        params: np.ndarray,
        *,
        norb: int,
        nelec: tuple[int, int] | list[int],
        n_reps: int,
        interaction_pairs: tuple | list,
        with_final_orbital_rotation: bool,
        layout: Layout = "all-to-all",
        backend_name: str | None = None,
        readout_error_threshold: float = 0.10,
        two_qubit_error_threshold: float = 1.0,
    ) -> LUCJAnsatz:
        """Rebuild an ansatz from a flat vector and its :meth:`structure`."""
        pairs = tuple(_as_pairs(p) for p in interaction_pairs)
        params = np.asarray(params, dtype=float)
        cls = ffsim.UCJOpSpinBalanced if len(pairs) == 2 else ffsim.UCJOpSpinUnbalanced
        operator = cls.from_parameters(
            params,
            norb=norb,
            n_reps=n_reps,
            interaction_pairs=pairs,
            with_final_orbital_rotation=with_final_orbital_rotation,
        )
        return LUCJAnsatz(
            operator=operator,
            norb=int(norb),
            nelec=(int(nelec[0]), int(nelec[1])),
            interaction_pairs=pairs,
            layout=layout,
            backend_name=backend_name,
            readout_error_threshold=float(readout_error_threshold),
            two_qubit_error_threshold=float(two_qubit_error_threshold),
        )

    def with_parameters(self, params: np.ndarray) -> LUCJAnsatz:
        """The same structure with other parameters (closed-loop walkers)."""
        s = self.structure()
        return LUCJAnsatz.from_parameters(params, **s)

    def state_vector(self) -> np.ndarray:
        """The ansatz applied to Hartree-Fock, as an ffsim vector (dim_a * dim_b)."""
        vec = ffsim.hartree_fock_state(self.norb, self.nelec)
        return ffsim.apply_unitary(vec, self.operator, norb=self.norb, nelec=self.nelec)

    def circuit(self, *, measure: bool = True) -> QuantumCircuit:
        """Hartree-Fock preparation plus the ansatz on ``2*norb`` qubits, optionally measured."""
        qubits = QuantumRegister(2 * self.norb, name="q")
        circuit = QuantumCircuit(qubits)
        circuit.append(ffsim.qiskit.PrepareHartreeFockJW(self.norb, self.nelec), qubits)
        if self.spin_balanced:
            circuit.append(ffsim.qiskit.UCJOpSpinBalancedJW(self.operator), qubits)
        else:
            circuit.append(ffsim.qiskit.UCJOpSpinUnbalancedJW(self.operator), qubits)
        if measure:
            circuit.measure_all()
        return circuit


def _hamiltonian_amplitudes(hamiltonian: ActiveSpaceHamiltonian) -> tuple[Any, Any]:
    if hamiltonian.t2 is None:
        raise SQDInputError(
            "circuit",
            f"{hamiltonian.label or 'this Hamiltonian'} has no CCSD amplitudes to initialise the LUCJ ansatz",
            fix="build the Hamiltonian from a molecule (or an FCIDUMP with CCSD enabled)",
        )
    return hamiltonian.t1, hamiltonian.t2


def _lucj_pass_manager(
    backend: BackendV2,
    norb: int,
    layout: Literal["heavy-hex", "square"],
    pairs: tuple[Pairs | None, ...],
    *,
    optimization_level: int,
    seed: int | None,
    readout_error_threshold: float,
    two_qubit_error_threshold: float,
):
    """ffsim's layout-aware pass manager; returns it and the alpha-beta pairs the device hosts."""
    pairs_aa = pairs[0]
    pairs_bb = pairs[2] if len(pairs) == 3 else pairs_aa
    with warnings.catch_warnings():
        # ffsim warns once per dropped pair; we report them in the ansatz instead.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return ffsim.qiskit.generate_lucj_pass_manager(
                backend,
                norb,
                layout,
                (pairs_aa, list(pairs[1]), pairs_bb),
                two_qubit_error_threshold=two_qubit_error_threshold,
                readout_error_threshold=readout_error_threshold,
                optimization_level=optimization_level,
                seed_transpiler=seed,
            )
        except RuntimeError as err:
            raise SQDInputError(
                "circuit.layout",
                f"{backend.name} cannot host a {2 * norb}-qubit LUCJ layout of type {layout} ({err})",
                fix="use a larger device, fewer orbitals, a higher circuit.readout_error_threshold, "
                "or layout: all-to-all (routing adds SWAPs)",
            ) from None


def build_lucj_ansatz(
    hamiltonian: ActiveSpaceHamiltonian,
    config: CircuitConfig | None = None,
    *,
    backend: BackendV2 | None = None,
) -> LUCJAnsatz:
    """The CCSD-initialised LUCJ ansatz for a Hamiltonian.

    With ``backend`` (and a heavy-hex/square layout) the opposite-spin pairs
    are restricted to those that the device's coupling map can host in one
    embedding, so the transpiled circuit needs no SWAPs.
    """
    config = config or CircuitConfig()
    norb, nelec = hamiltonian.norb, tuple(int(n) for n in hamiltonian.nelec)
    t1, t2 = _hamiltonian_amplitudes(hamiltonian)
    layout: Layout = config.layout
    pairs_aa, pairs_ab = default_interaction_pairs(norb, layout)
    backend_name = None
    dropped: tuple[tuple[int, int], ...] = ()
    if backend is not None and layout != "all-to-all":
        requested = list(pairs_ab)
        pairs = (pairs_aa, requested) if nelec[0] == nelec[1] else (pairs_aa, requested, pairs_aa)
        _, allowed = _lucj_pass_manager(
            backend, norb, layout, pairs, optimization_level=config.optimization_level, seed=None,
            readout_error_threshold=config.readout_error_threshold,
            two_qubit_error_threshold=config.two_qubit_error_threshold,
        )
        pairs_ab = [tuple(p) for p in allowed]
        dropped = tuple(p for p in requested if p not in pairs_ab)
        backend_name = backend.name
    if nelec[0] == nelec[1]:
        pairs = (pairs_aa, pairs_ab)
        operator = ffsim.UCJOpSpinBalanced.from_t_amplitudes(
            np.asarray(t2),
            t1=np.asarray(t1) if config.final_orbital_rotation and t1 is not None else None,
            n_reps=config.n_reps,
            interaction_pairs=pairs,
        )
    else:
        if not (isinstance(t2, tuple) and len(t2) == 3):
            raise SQDInputError(
                "circuit",
                f"open-shell nelec={nelec} needs UCCSD amplitudes (t2aa, t2ab, t2bb)",
                fix="build the Hamiltonian with build_hamiltonian from a molecule with spin > 0",
            )
        # Opposite-spin pairs of the unbalanced operator are ordered (alpha, beta); (p, p) is its own transpose.
        pairs = (pairs_aa, pairs_ab if pairs_ab is not None else None, pairs_aa)
        operator = ffsim.UCJOpSpinUnbalanced.from_t_amplitudes(
            t2,
            t1=t1 if config.final_orbital_rotation and t1 is not None else None,
            n_reps=config.n_reps,
            interaction_pairs=pairs,
        )
    return LUCJAnsatz(
        operator=operator,
        norb=norb,
        nelec=nelec,  # type: ignore[arg-type]
        interaction_pairs=pairs,
        layout=layout,
        backend_name=backend_name,
        dropped_pairs_ab=dropped,
        readout_error_threshold=config.readout_error_threshold,
        two_qubit_error_threshold=config.two_qubit_error_threshold,
    )


@dataclass(frozen=True)
class TranspiledCircuit:
    """A circuit compiled for a backend, with the statistics a run record stores."""

    circuit: QuantumCircuit
    stats: dict[str, Any]


def _circuit_stats(circuit: QuantumCircuit, backend: BackendV2) -> dict[str, Any]:
    ops = {str(k): int(v) for k, v in circuit.count_ops().items()}
    two_qubit = [
        inst for inst in circuit.data if inst.operation.num_qubits == 2 and inst.operation.name != "barrier"
    ]
    used = sorted({circuit.find_bit(q).index for inst in circuit.data for q in inst.qubits if inst.operation.name != "barrier"})
    layout = circuit.layout
    physical: list[int] | None = None
    if layout is not None:
        physical = [int(q) for q in layout.final_index_layout()]
    return {
        "backend": backend.name,
        "depth": int(circuit.depth()),
        "two_qubit_depth": int(circuit.depth(lambda inst: inst.operation.num_qubits == 2 and inst.operation.name != "barrier")),
        "two_qubit_gates": len(two_qubit),
        "n_active_qubits": len(used),
        "count_ops": ops,
        "physical_qubits": physical,
    }


def transpile_ansatz(
    ansatz: LUCJAnsatz,
    backend: BackendV2,
    *,
    optimization_level: int = 3,
    seed: int | None = None,
) -> TranspiledCircuit:
    """Compile the measured ansatz circuit for ``backend`` with ffsim's pre-init passes.

    Heavy-hex/square ansatzes use ffsim's LUCJ pass manager (layout chosen to
    host the ansatz's opposite-spin pairs); ``all-to-all`` uses Qiskit's preset
    pass manager, still with ffsim's pre-init stage (it merges the
    Hartree-Fock preparation into the first orbital rotation).
    """
    circuit = ansatz.circuit(measure=True)
    # all-to-all ansatzes are routed by design; only layout ansatzes can have unhosted pairs.
    stats_extra: dict[str, Any] = {"unhosted_pairs_ab": []}
    if ansatz.layout != "all-to-all":
        pm, allowed = _lucj_pass_manager(
            backend,
            ansatz.norb,
            ansatz.layout,  # type: ignore[arg-type]
            ansatz.interaction_pairs,
            optimization_level=optimization_level,
            seed=seed,
            readout_error_threshold=ansatz.readout_error_threshold,
            two_qubit_error_threshold=ansatz.two_qubit_error_threshold,
        )
        missing = [p for p in ansatz.interaction_pairs[1] or [] if tuple(p) not in {tuple(a) for a in allowed}]
        # Pairs the layout cannot host are routed with SWAPs; build the ansatz with this backend to avoid that.
        stats_extra["unhosted_pairs_ab"] = [list(p) for p in missing]
    else:
        pm = generate_preset_pass_manager(
            optimization_level=optimization_level, backend=backend, seed_transpiler=seed
        )
        pm.pre_init = ffsim.qiskit.PRE_INIT
    transpiled = pm.run(circuit)
    stats = _circuit_stats(transpiled, backend)
    stats.update(stats_extra)
    stats["optimization_level"] = optimization_level
    stats["n_logical_qubits"] = ansatz.n_qubits
    return TranspiledCircuit(circuit=transpiled, stats=stats)

