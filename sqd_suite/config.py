"""The molecule/run YAML schema, validated with pydantic.

A run file has the sections ``molecule`` (or an FCIDUMP in ``active_space``),
``active_space``, ``circuit``, ``sampler``, ``sqd``, ``closed_loop`` and
``output``. Every field has a default that runs a small molecule with no
tuning; unknown fields are errors (a typo must not be silently ignored).
:func:`load_config` turns any problem into one :class:`SQDInputError` line
that names the file, the field path and the fix.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sqd_suite.errors import SQDInputError

__all__ = [
    "ActiveSpaceConfig",
    "CircuitConfig",
    "ClosedLoopConfig",
    "MoleculeConfig",
    "OutputConfig",
    "RunConfig",
    "SQDConfig",
    "SamplerConfig",
    "config_from_dict",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class MoleculeConfig(_Section):
    """Geometry and basis, passed to PySCF."""

    atom: str | list[tuple[str, float, float, float]] | None = Field(
        None,
        description="Atoms as a PySCF string ('N 0 0 0; N 0 0 1.1') or a list of "
        "[symbol, x, y, z]. Strings may use {name} placeholders filled from `variables`.",
    )
    xyz: Path | None = Field(None, description="An .xyz file instead of `atom` (relative to the YAML).")
    variables: dict[str, float] = Field(
        default_factory=dict,
        description="Named geometry parameters, e.g. {bond_length: 1.1}, substituted into `atom`; "
        "`sqd scan` varies them.",
    )
    basis: str = Field("sto-3g", description="Any basis PySCF knows (sto-3g, 6-31g, cc-pvdz, ...).")
    charge: int = 0
    spin: int = Field(0, ge=0, description="2S = n_alpha - n_beta (PySCF convention), not 2S+1.")
    unit: Literal["angstrom", "bohr"] = "angstrom"
    symmetry: bool | str = False

    @model_validator(mode="after")
    def _one_geometry(self) -> MoleculeConfig:
        if (self.atom is None) == (self.xyz is None):
            raise ValueError("give exactly one of `atom` or `xyz`")
        if isinstance(self.atom, str):
            missing = set(re.findall(r"\{(\w+)\}", self.atom)) - set(self.variables)
            if missing:
                raise ValueError(
                    f"`atom` uses {{{sorted(missing)[0]}}} but `variables` does not define it"
                )
        return self

    def geometry(self, base_dir: Path | None = None) -> str | list:
        """The atom specification with variables substituted."""
        if self.xyz is not None:
            path = self.xyz if base_dir is None or self.xyz.is_absolute() else base_dir / self.xyz
            lines = path.read_text().splitlines()
            # Standard .xyz: count, comment, then atoms; also accept atoms only.
            body = lines[2:] if lines and lines[0].strip().isdigit() else lines
            return "; ".join(line.strip() for line in body if line.strip())
        if isinstance(self.atom, str):
            return self.atom.format(**self.variables)
        return [list(a) for a in self.atom]


class ActiveSpaceConfig(_Section):
    """Which orbitals and electrons the quantum computer sees."""

    frozen_core: int = Field(0, ge=0, description="Number of lowest doubly occupied orbitals to freeze.")
    orbitals: list[int] | None = Field(
        None, description="Explicit 0-based MO indices of the active space (overrides frozen_core/norb)."
    )
    norb: int | None = Field(None, ge=1, description="Active orbitals; default: all above the frozen core.")
    nelec: tuple[int, int] | None = Field(
        None, description="Active (n_alpha, n_beta); default: all electrons outside the frozen core."
    )
    fcidump: Path | None = Field(None, description="Read the Hamiltonian from an FCIDUMP instead of a molecule.")
    fcidump_orbitals: Literal["scf", "as_is"] = Field(
        "scf",
        description="For an FCIDUMP: 'scf' rotates to canonical SCF orbitals of the given integrals "
        "(the LUCJ ansatz starts from that Hartree-Fock state); 'as_is' keeps the file's orbitals.",
    )
    exact_max_dim: float = Field(
        2.0e6, ge=0, description="Compute the exact (FCI/CASCI) reference with PySCF when the full space has at most this many determinants."
    )
    reference_energy: float | None = Field(
        None,
        description="A known exact energy (Ha) of this active space, recorded as the reference when the full space "
        "is too large to diagonalize on every run (e.g. computed once with `sqd hamiltonian --exact-max-dim 2e7`).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ActiveSpaceConfig:
        if self.orbitals is not None:
            if len(set(self.orbitals)) != len(self.orbitals):
                raise ValueError("`orbitals` lists an orbital twice")
            if self.norb is not None and self.norb != len(self.orbitals):
                raise ValueError(f"norb={self.norb} but `orbitals` lists {len(self.orbitals)}")
        if self.nelec is not None and min(self.nelec) < 0:
            raise ValueError("`nelec` must be two non-negative counts [n_alpha, n_beta]")
        return self


class CircuitConfig(_Section):
    """The LUCJ ansatz and its compilation."""

    ansatz: Literal["lucj"] = "lucj"
    n_reps: int = Field(1, ge=1, description="LUCJ layers.")
    layout: Literal["heavy-hex", "square", "all-to-all"] = Field(
        "heavy-hex", description="Qubit connectivity that decides the opposite-spin interaction pairs."
    )
    final_orbital_rotation: bool = Field(True, description="Add the CCSD t1 orbital rotation at the end.")
    optimization_level: int = Field(3, ge=0, le=3, description="Qiskit transpiler level for device backends.")
    readout_error_threshold: float = Field(
        0.10, gt=0,
        description="Device layouts avoid qubits whose readout error is at least this (ffsim's LUCJ layout); "
        "raise it (e.g. 1.0) when too few alpha-beta pairs fit.",
    )
    two_qubit_error_threshold: float = Field(
        1.0, gt=0, description="Device layouts avoid couplers whose two-qubit error is at least this (1.0: only broken ones)."
    )


class SamplerConfig(_Section):
    """Where the bitstrings come from."""

    kind: Literal["exact", "aer", "ibm_runtime", "qrmi", "file"] = Field(
        "exact", description="exact: ffsim state vector (no account); aer: noisy fake backend; "
        "ibm_runtime: a real QPU; qrmi: a QPU granted to a Slurm job; file: replay bitstrings."
    )
    shots: int = Field(100_000, ge=1)
    seed: int = Field(12345, description="Seed of the sampler (exact/aer) and of everything downstream.")
    global_depolarizing: float = Field(
        0.0, ge=0.0, le=1.0,
        description="exact sampler: fraction of shots replaced by uniformly random bitstrings "
        "(a global depolarizing stand-in for hardware noise; widens the sampled subspace).",
    )
    max_memory_gb: float = Field(8.0, gt=0, description="exact sampler: refuse state vectors larger than this.")
    backend: str | None = Field(None, description="aer: a fake backend (default FakeSherbrooke; FakeTorino, ...); ibm_runtime: a device name (default: least busy).")
    max_qubits: int = Field(16, ge=1, description="aer: refuse noisy simulation above this many qubits.")
    channel: str | None = Field(None, description="ibm_runtime: QiskitRuntimeService channel.")
    instance: str | None = Field(None, description="ibm_runtime: instance (CRN or hub/group/project).")
    dynamical_decoupling: bool = True
    twirling: bool = False
    max_retries: int = Field(3, ge=0)
    path: Path | None = Field(None, description="file: counts JSON, text list, or HDF5 dataset (path.h5:dataset).")

    @model_validator(mode="after")
    def _kind_needs(self) -> SamplerConfig:
        if self.kind == "file" and self.path is None:
            raise ValueError("kind 'file' needs `path` (a counts JSON, a text list or an HDF5 dataset)")
        return self


class SQDConfig(_Section):
    """The self-consistent SQD loop."""

    samples_per_batch: int = Field(300, ge=1)
    num_batches: int = Field(3, ge=1)
    max_iterations: int = Field(10, ge=1)
    energy_tol: float = Field(1e-6, gt=0, description="Stop when the energy changes less than this (Ha).")
    occupancies_tol: float = Field(1e-4, gt=0, description="... and the occupancies less than this.")
    carryover_threshold: float = Field(
        1e-4, ge=0, description="Keep the strings of determinants whose CI amplitude |c| exceeds this between iterations "
        "(an amplitude, not a weight |c|^2, as in qiskit-addon-sqd)."
    )
    symmetrize_spin: bool = Field(True, description="Use the union of alpha and beta strings for both spins (singlets).")
    spin_penalty: float = Field(0.0, ge=0, description="lambda in H + lambda (S^2 - s(s+1)); 0 = off.")
    initial_occupancies: Literal["hf", "mp2", "ccsd"] = "hf"
    max_dim: int | None = Field(None, ge=1, description="Cap on strings per spin in a batch subspace.")
    davidson_tol: float = Field(1e-8, gt=0, description="Eigensolver tolerance of the final iteration.")
    inner_davidson_tol: float = Field(1e-5, gt=0, description="Eigensolver tolerance of inner iterations.")
    mpi_layout: Literal["auto", "alpha_blocks", "beta_blocks"] = Field(
        "auto", description="How a solve on P MPI ranks tiles the CI vector: 'alpha_blocks' (a P x 1 grid: a rank "
        "may receive the whole vector), 'beta_blocks' (1 x P: two column panels of 1/P of it), or 'auto' (P_a x P_b "
        "with P_b near sqrt(P)/2, the fastest measured, raised until the receive buffers fit beside the rank's "
        "Davidson vectors; docs/diag.md).",
    )


class ClosedLoopConfig(_Section):
    """Optimise the circuit parameters with the SQD energy as objective."""

    enabled: bool = False
    optimizer: Literal["differential_evolution", "cobyla", "spsa"] = "differential_evolution"
    population: int = Field(6, ge=1, description="Walkers per generation (differential evolution).")
    generations: int = Field(4, ge=1)
    mutation: float = Field(0.6, gt=0, le=2, description="Differential weight F.")
    crossover: float = Field(0.9, ge=0, le=1)
    init_noise: float = Field(0.05, ge=0, description="Uniform noise added to the CCSD parameters of walkers 1..n.")
    max_evaluations: int = Field(40, ge=1, description="cobyla/spsa evaluation budget.")
    shots: int | None = Field(None, ge=1, description="Shots per evaluation; default: sampler.shots.")
    carryover_fraction: float = Field(
        0.5, gt=0, le=1,
        description="With sqd.max_dim: carry at most this fraction of the cap (the heaviest strings of the best "
        "walker) into the next generation, leaving room for each walker's own samples; without a cap all are carried.",
    )
    seed: int = 7


class OutputConfig(_Section):
    """Where results go."""

    path: Path | None = Field(None, description="HDF5 run file; default runs/<name>.h5.")
    save_integrals: bool = True


class RunConfig(_Section):
    """A whole run: molecule (or FCIDUMP) to HDF5 results."""

    name: str | None = None
    molecule: MoleculeConfig | None = None
    active_space: ActiveSpaceConfig = ActiveSpaceConfig()
    circuit: CircuitConfig = CircuitConfig()
    sampler: SamplerConfig = SamplerConfig()
    sqd: SQDConfig = SQDConfig()
    closed_loop: ClosedLoopConfig = ClosedLoopConfig()
    output: OutputConfig = OutputConfig()
    # The YAML's folder: relative paths inside the file resolve against it.
    base_dir: Path | None = Field(None, exclude=True)
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _has_hamiltonian(self) -> RunConfig:
        if self.molecule is None and self.active_space.fcidump is None:
            raise ValueError("give a `molecule` section or `active_space.fcidump`")
        if self.molecule is not None and self.active_space.fcidump is not None:
            raise ValueError("give either a `molecule` section or `active_space.fcidump`, not both")
        return self

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        if self.source is not None:
            return self.source.stem
        return "run"

    def resolve(self, path: Path | None) -> Path | None:
        """A path from the file, resolved against the YAML's folder."""
        if path is None or path.is_absolute() or self.base_dir is None:
            return path
        return self.base_dir / path

    @property
    def output_path(self) -> Path:
        if self.output.path is not None:
            return self.output.path
        return Path("runs") / f"{self.run_name}.h5"

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain data (what the run file records)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_updates(self, updates: dict[str, Any]) -> RunConfig:
        """A copy with dotted-path updates, e.g. {'molecule.variables.bond_length': 1.2}."""
        data = self.model_dump(mode="json")
        if any(key.startswith("molecule.") for key in updates) and "active_space.reference_energy" not in updates:
            # A recorded reference belongs to one geometry: a moved molecule must not inherit it.
            data["active_space"]["reference_energy"] = None
        for dotted, value in updates.items():
            node = data
            keys = dotted.split(".")
            for key in keys[:-1]:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
            node[keys[-1]] = value
        return config_from_dict(data, source=self.source)


# Fixes for pydantic's error types, so each message says what to do.
_FIXES = {
    "extra_forbidden": "remove it or check the spelling",
    "missing": "add it",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "literal_error": "use one of the listed values",
    "int_parsing": "use an integer",
    "int_type": "use an integer",
    "float_parsing": "use a number",
    "bool_parsing": "use true or false",
    "string_type": "use a string",
    "tuple_type": "use a list of two integers, e.g. [5, 5]",
    "too_short": "give more items",
    "too_long": "give fewer items",
}


def _field_path(loc: tuple) -> str:
    # pydantic adds union-member tags (e.g. 'str', 'list[...]') to locations: keep real fields.
    parts = [str(p) for p in loc if isinstance(p, int) or not re.search(r"[\[\]\s]|^(str|int|float|bool)$", str(p))]
    return ".".join(parts) or "(top level)"


def _first_error(err: ValidationError) -> SQDInputError:
    e = err.errors()[0]
    field = _field_path(e["loc"])
    msg = e["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if e["type"] == "extra_forbidden":
        msg = "unknown field"
    elif "input" in e and e["type"] != "missing" and not isinstance(e["input"], dict):
        msg = f"{msg} (got {e['input']!r})"
    return SQDInputError(field, msg, fix=_FIXES.get(e["type"]))


def config_from_dict(data: dict[str, Any], *, source: str | Path | None = None) -> RunConfig:
    """Validate a config given as plain data; errors are :class:`SQDInputError`."""
    src = None if source is None else Path(source)
    if not isinstance(data, dict):
        raise SQDInputError("(top level)", "expected a mapping of sections", fix="see molecules/ for examples", source=src)
    try:
        cfg = RunConfig.model_validate(
            {**data, "base_dir": None if src is None else src.parent, "source": src}
        )
    except ValidationError as err:
        raise _first_error(err).with_source(src) if src else _first_error(err) from None
    _check_numbers(cfg, src)
    return cfg


def _check_numbers(cfg: RunConfig, src: Path | None) -> None:
    for name in ("energy_tol", "davidson_tol", "inner_davidson_tol"):
        if not math.isfinite(getattr(cfg.sqd, name)):
            raise SQDInputError(f"sqd.{name}", "must be finite", fix="use e.g. 1e-6", source=src)


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a molecule/run YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SQDInputError("", f"{path}: no such file", fix="check the path") from None
    except OSError as err:
        raise SQDInputError("", f"{path}: cannot read ({err.strerror})", fix="check the path and permissions") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        problem = getattr(err, "problem", None) or str(err)
        raise SQDInputError(where, f"YAML syntax error: {problem}", fix="correct the YAML syntax there", source=path) from None
    if data is None:
        raise SQDInputError("(top level)", "the file is empty", fix="add a `molecule` section (see molecules/)", source=path)
    return config_from_dict(data, source=path)
