"""HDF5 files: crash-safe writes, the Hamiltonian record and the run file.

Nothing is ever half-written: a file appears under its final name only once
it is complete (:func:`atomic_path`). A run file grows by copy-on-write
(:func:`update_run_file`): each update copies the file, writes into the copy,
closes and syncs it, then renames it over the original, so a crash at any
moment leaves either the old or the new file, both readable. docs/results.md
describes the layout.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import ActiveSpaceHamiltonian, hamiltonian_from_integrals

if TYPE_CHECKING:
    from sqd_suite.loop.sqd import SQDIteration, SQDResult
    from sqd_suite.sampling.samples import Samples

__all__ = [
    "RUN_FORMAT",
    "RUN_FORMAT_VERSION",
    "RunRecord",
    "append_iteration",
    "atomic_path",
    "create_run_file",
    "read_hamiltonian_group",
    "read_hamiltonian_h5",
    "read_run",
    "read_run_hamiltonian",
    "read_run_samples",
    "record_job_id",
    "run_file_status",
    "update_run_file",
    "write_hamiltonian_group",
    "write_hamiltonian_h5",
    "write_result",
    "write_run_samples",
]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


_SCALARS = ("ecore", "norb", "e_hf", "e_ccsd", "e_exact", "exact_method", "label")


def write_hamiltonian_group(group: h5py.Group, ham: ActiveSpaceHamiltonian, *, integrals: bool = True) -> None:
    """Record a Hamiltonian (summary attributes; integrals optionally) in an HDF5 group."""
    for key, value in ham.summary().items():
        if value is not None:
            group.attrs[key] = value
    group.attrs["nelec"] = np.asarray(ham.nelec, dtype=np.int64)
    if integrals:
        group.create_dataset("h1", data=ham.h1)
        group.create_dataset("h2", data=ham.h2, compression="gzip", compression_opts=1)


def read_hamiltonian_group(group: h5py.Group) -> ActiveSpaceHamiltonian:
    """The Hamiltonian recorded by :func:`write_hamiltonian_group` (needs the integrals)."""
    if "h1" not in group or "h2" not in group:
        raise SQDInputError(group.file.filename, f"{group.name} holds no integrals", fix="write it with integrals=True")
    attrs = dict(group.attrs)
    fields = {k: (attrs[k].item() if hasattr(attrs[k], "item") else attrs[k]) for k in _SCALARS if k in attrs}
    nelec = tuple(int(n) for n in attrs["nelec"])
    return hamiltonian_from_integrals(
        group["h1"][()],
        group["h2"][()],
        int(fields.pop("norb")),
        nelec,
        ecore=float(fields.pop("ecore")),
        e_hf=float(fields.pop("e_hf")),
        exact_max_dim=0,  # the recorded reference is kept, not recomputed
        **fields,
    )


def write_hamiltonian_h5(path: str | Path, ham: ActiveSpaceHamiltonian) -> None:
    """Write a stand-alone Hamiltonian file (atomically)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        write_hamiltonian_group(f.create_group("hamiltonian"), ham)


def read_hamiltonian_h5(path: str | Path) -> ActiveSpaceHamiltonian:
    """Read a file written by :func:`write_hamiltonian_h5`; corrupt files give one line."""
    try:
        with h5py.File(path, "r") as f:
            return read_hamiltonian_group(f["hamiltonian"])
    except (OSError, KeyError) as err:
        raise SQDInputError(str(path), f"not a readable sqd-suite Hamiltonian file ({err})", fix="rewrite it with `sqd hamiltonian --h5`") from None


# ---------------------------------------------------------------------------
# The run file
# ---------------------------------------------------------------------------

RUN_FORMAT = "sqd-suite-run"
RUN_FORMAT_VERSION = 1
_RUN_FIX = "pass a run file written by `sqd run`, or start again with `sqd run CONFIG.yaml --force`"


def _json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.dumps(obj, default=default)


def _fsync_dir(path: Path) -> None:
    # the rename itself must reach the disk for a power cut to keep it
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def update_run_file(path: str | Path) -> Iterator[h5py.File]:
    """Change a run file by copy-on-write: yields the copy open for writing.

    On success the copy is closed, synced and renamed over ``path`` (atomic
    on POSIX); on any error, or if the process dies, ``path`` keeps its
    previous, complete content. Cost: one file copy per update (see
    docs/results.md for measured times).
    """
    path = Path(path)
    _check_run_file(path)
    with atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+") as f:
            yield f
            f.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _sync_file(tmp)
    _fsync_dir(path)


def create_run_file(
    path: str | Path,
    *,
    config_yaml: str,
    hamiltonian: ActiveSpaceHamiltonian,
    seed: int,
    save_integrals: bool = True,
    circuit_parameters: np.ndarray | None = None,
    circuit_structure: dict[str, Any] | None = None,
    transpile_stats: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
) -> None:
    """Write a new run file (atomically): config, Hamiltonian, circuit; no samples yet.

    ``seed`` is the run's seed: the sampler's and, per iteration, the loop's
    (see :func:`sqd_suite.loop.iteration_rng`).
    """
    from sqd_suite import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = RUN_FORMAT
            f.attrs["format_version"] = RUN_FORMAT_VERSION
            f.attrs["sqd_suite_version"] = __version__
            f.attrs["status"] = "sampling"
            f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            f.attrs["seed"] = int(seed)
            f.attrs["rng"] = "numpy PCG64; iteration k draws from SeedSequence(seed, spawn_key=(1, k))"
            f.attrs["elapsed_s"] = 0.0
            f.attrs["n_iterations"] = 0
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            f.create_group("config").attrs["yaml"] = config_yaml
            write_hamiltonian_group(f.create_group("hamiltonian"), hamiltonian, integrals=save_integrals)
            circ = f.create_group("circuit")
            if circuit_parameters is not None:
                circ.create_dataset("parameters", data=np.asarray(circuit_parameters, dtype=np.float64))
            circ.attrs["structure"] = _json(circuit_structure or {})
            circ.attrs["transpile_stats"] = _json(transpile_stats or {})
            f.create_group("iterations")
            f.create_group("samples").attrs["job_ids"] = "[]"
        _sync_file(tmp)
    _fsync_dir(path)


def record_job_id(path: str | Path, job_id: str) -> None:
    """Remember a submitted sampler job (so a resumed run can fetch its result)."""
    with update_run_file(path) as f:
        g = f["samples"]
        ids = json.loads(g.attrs.get("job_ids", "[]"))
        ids.append(str(job_id))
        g.attrs["job_ids"] = json.dumps(ids)


def write_run_samples(path: str | Path, samples: Samples) -> None:
    """Store the samples; the run moves from status 'sampling' to 'running'."""
    with update_run_file(path) as f:
        g = f["samples"]
        samples.save_to_h5(g)
        s = samples.summary()
        for key in ("shots", "n_unique", "n_unique_alpha", "n_unique_beta"):
            g.attrs[key] = int(s[key])
        g.attrs["complete"] = True
        f.attrs["status"] = "running"


_ITER_ARRAYS = ("batch_energies", "batch_shapes", "alpha_strings", "beta_strings", "top_alpha", "top_beta", "top_coef")
_ITER_SCALARS = ("energy", "best_batch", "spin_square", "davidson_converged", "davidson_iterations",
                 "energy_change", "occupancy_change", "converged")


def _write_iteration(g: h5py.Group, rec: SQDIteration, job_ids: Sequence[str]) -> None:
    for name in _ITER_SCALARS:
        g.attrs[name] = getattr(rec, name)
    g.attrs["iteration"] = rec.iteration
    g.attrs["subspace_shape"] = np.asarray(rec.subspace_shape, dtype=np.int64)
    g.attrs["dimension"] = rec.dimension
    g.attrs["distinct_strings"] = np.asarray(rec.distinct_strings, dtype=np.int64)
    g.attrs["timings"] = _json(rec.timings)
    g.attrs["job_ids"] = _json(list(job_ids))
    for name in _ITER_ARRAYS:
        g.create_dataset(name, data=np.asarray(getattr(rec, name)))
    g.create_dataset("occupancies", data=np.stack(rec.occupancies))
    g.create_dataset("carryover_alpha", data=np.asarray(rec.carryover[0], dtype=np.int64))
    g.create_dataset("carryover_beta", data=np.asarray(rec.carryover[1], dtype=np.int64))
    # written last: a group without it is ignored by readers
    g.attrs["complete"] = True


def _read_iteration(g: h5py.Group) -> SQDIteration:
    from sqd_suite.loop.sqd import SQDIteration

    a = g.attrs
    occ = g["occupancies"][()]
    return SQDIteration(
        iteration=int(a["iteration"]),
        energy=float(a["energy"]),
        batch_energies=g["batch_energies"][()],
        best_batch=int(a["best_batch"]),
        subspace_shape=tuple(int(x) for x in a["subspace_shape"]),  # type: ignore[arg-type]
        distinct_strings=tuple(int(x) for x in a["distinct_strings"]),  # type: ignore[arg-type]
        batch_shapes=g["batch_shapes"][()],
        occupancies=(occ[0], occ[1]),
        carryover=(g["carryover_alpha"][()], g["carryover_beta"][()]),
        alpha_strings=g["alpha_strings"][()],
        beta_strings=g["beta_strings"][()],
        top_alpha=g["top_alpha"][()],
        top_beta=g["top_beta"][()],
        top_coef=g["top_coef"][()],
        spin_square=float(a["spin_square"]),
        davidson_converged=bool(a["davidson_converged"]),
        davidson_iterations=int(a["davidson_iterations"]),
        energy_change=float(a["energy_change"]),
        occupancy_change=float(a["occupancy_change"]),
        converged=bool(a["converged"]),
        timings=json.loads(a["timings"]),
    )


def append_iteration(
    path: str | Path, record: SQDIteration, *, job_ids: Sequence[str] = (), elapsed_s: float | None = None
) -> None:
    """Add one completed loop iteration (group ``/iterations/NNNNN``)."""
    with update_run_file(path) as f:
        its = f["iterations"]
        name = f"{record.iteration:05d}"
        if name in its:
            # left by a run that died after this point in an older layout: replace
            del its[name]
        _write_iteration(its.create_group(name), record, job_ids)
        f.attrs["n_iterations"] = record.iteration + 1
        if elapsed_s is not None:
            f.attrs["elapsed_s"] = float(elapsed_s)


def write_result(path: str | Path, result: SQDResult, *, elapsed_s: float) -> None:
    """Store the final result and mark the run complete.

    ``result.ci`` must hold every row (rank 0 of an MPI run gathers it
    first, or passes the result of a single-rank solve); the file keeps its
    largest determinants, not the whole vector.
    """
    with update_run_file(path) as f:
        if "result" in f:
            del f["result"]
        g = f.create_group("result")
        g.attrs["energy"] = result.energy
        g.attrs["converged"] = result.converged
        g.attrs["davidson_converged"] = result.davidson_converged
        g.attrs["spin_square"] = result.spin_square
        g.attrs["subspace_shape"] = np.asarray(result.subspace_shape, dtype=np.int64)
        g.attrs["dimension"] = result.dimension
        g.attrs["n_iterations"] = len(result.iterations)
        g.attrs["warnings"] = _json(list(result.warnings))
        g.attrs["timings"] = _json(result.timings)
        if result.e_exact is not None:
            g.attrs["e_exact"] = result.e_exact
            g.attrs["error"] = result.energy - result.e_exact
        g.create_dataset("occupancies", data=np.stack(result.occupancies))
        g.create_dataset("alpha_strings", data=result.alpha_strings)
        g.create_dataset("beta_strings", data=result.beta_strings)
        g.create_dataset("top_alpha", data=result.top_alpha)
        g.create_dataset("top_beta", data=result.top_beta)
        g.create_dataset("top_coef", data=result.top_coef)
        g.attrs["complete"] = True
        f.attrs["status"] = "complete"
        f.attrs["elapsed_s"] = float(elapsed_s)


@dataclass(frozen=True)
class RunRecord:
    """What a run file holds (read by :func:`read_run`); arrays are loaded, integrals are not.

    ``status`` is 'sampling' (no samples yet), 'running' (samples and zero
    or more complete iterations) or 'complete' (``result`` present).
    """

    path: Path
    status: str
    attrs: dict[str, Any]
    config_yaml: str
    hamiltonian: dict[str, Any]
    circuit_parameters: np.ndarray | None
    circuit_structure: dict[str, Any]
    transpile_stats: dict[str, Any]
    samples: dict[str, Any]
    job_ids: tuple[str, ...]
    iterations: tuple[SQDIteration, ...]
    iteration_job_ids: tuple[tuple[str, ...], ...]
    result: dict[str, Any] | None = field(default=None)

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def e_exact(self) -> float | None:
        v = self.hamiltonian.get("e_exact")
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    def summary(self) -> dict[str, Any]:
        """The machine-readable summary `sqd report --json` prints."""
        last = self.iterations[-1] if self.iterations else None
        res = self.result
        energy = res["energy"] if res else (last.energy if last else None)
        shape = tuple(int(x) for x in res["subspace_shape"]) if res else (last.subspace_shape if last else None)
        e_exact = self.e_exact
        return {
            "path": str(self.path),
            "name": self.attrs.get("run_name"),
            "status": self.status,
            "molecule": self.hamiltonian.get("label"),
            "norb": self.hamiltonian.get("norb"),
            "nelec": [int(x) for x in self.hamiltonian.get("nelec", [])],
            "final_energy": energy,
            "energy_is_final": res is not None,
            "e_hf": self.hamiltonian.get("e_hf"),
            "e_ccsd": self.hamiltonian.get("e_ccsd"),
            "e_exact": e_exact,
            "exact_method": self.hamiltonian.get("exact_method"),
            "error": None if energy is None or e_exact is None else energy - e_exact,
            "iterations": len(self.iterations),
            "subspace_shape": None if shape is None else list(shape),
            "subspace_dimension": None if shape is None else int(shape[0] * shape[1]),
            "distinct_strings": None if last is None else list(last.distinct_strings),
            "fci_dimension": self.hamiltonian.get("fci_dimension"),
            "shots": self.samples.get("shots"),
            "wall_time_s": float(self.attrs.get("elapsed_s", 0.0)),
            "converged": bool(res["converged"]) if res else False,
            "warnings": list(res["warnings"]) if res else [],
            # converged and nothing flagged: the one field to gate on
            "ok": bool(res["converged"]) and not res["warnings"] if res else False,
            "seed": self.attrs.get("seed"),
        }


def _scalar(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _check_run_file(path: Path) -> None:
    """One line if ``path`` is not an sqd-suite run file."""
    if not path.exists():
        raise SQDInputError(str(path), "no such run file", fix="check the path")
    try:
        with h5py.File(path, "r") as f:
            fmt = _scalar(f.attrs.get("format"))
    except OSError as err:
        raise SQDInputError(str(path), f"not a readable HDF5 file ({str(err).splitlines()[0]})", fix=_RUN_FIX) from None
    if fmt != RUN_FORMAT:
        raise SQDInputError(str(path), "not an sqd-suite run file (no format attribute)", fix=_RUN_FIX)


@contextlib.contextmanager
def _reading_run(path: Path, part: str) -> Iterator[h5py.File]:
    """Open a checked run file read-only; a damaged ``part`` gives one :class:`SQDInputError` line."""
    _check_run_file(path)
    try:
        with h5py.File(path, "r") as f:
            yield f
    except SQDInputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SQDInputError(str(path), f"damaged {part} ({msg})", fix=_RUN_FIX) from None


def run_file_status(path: str | Path) -> str | None:
    """'sampling', 'running', 'complete', or None when there is no file."""
    path = Path(path)
    if not path.exists():
        return None
    _check_run_file(path)
    with h5py.File(path, "r") as f:
        return str(_scalar(f.attrs["status"]))


def read_run(path: str | Path) -> RunRecord:
    """Read a run file; a corrupt or foreign file gives one :class:`SQDInputError` line."""
    path = Path(path)
    with _reading_run(path, "sqd-suite run file") as f:
        attrs = {k: _scalar(v) for k, v in f.attrs.items()}
        ham = {k: _scalar(v) for k, v in f["hamiltonian"].attrs.items()}
        circ = f["circuit"]
        smp = f["samples"]
        samples = {k: _scalar(v) for k, v in smp.attrs.items() if k != "metadata"}
        its, its_jobs = [], []
        for name in sorted(f["iterations"]):
            g = f["iterations"][name]
            if not g.attrs.get("complete", False):
                continue
            its.append(_read_iteration(g))
            its_jobs.append(tuple(json.loads(g.attrs.get("job_ids", "[]"))))
        result = None
        if "result" in f and f["result"].attrs.get("complete", False):
            r = f["result"]
            result = {k: _scalar(v) for k, v in r.attrs.items()}
            result["warnings"] = json.loads(result["warnings"])
            result["timings"] = json.loads(result["timings"])
            for name in ("occupancies", "alpha_strings", "beta_strings", "top_alpha", "top_beta", "top_coef"):
                result[name] = r[name][()]
        return RunRecord(
            path=path,
            status=str(attrs["status"]),
            attrs=attrs,
            config_yaml=str(_scalar(f["config"].attrs["yaml"])),
            hamiltonian=ham,
            circuit_parameters=circ["parameters"][()] if "parameters" in circ else None,
            circuit_structure=json.loads(_scalar(circ.attrs.get("structure", "{}"))),
            transpile_stats=json.loads(_scalar(circ.attrs.get("transpile_stats", "{}"))),
            samples=samples,
            job_ids=tuple(json.loads(samples.get("job_ids", "[]"))),
            iterations=tuple(its),
            iteration_job_ids=tuple(its_jobs),
            result=result,
        )


def read_run_samples(path: str | Path) -> Samples | None:
    """The stored samples, or None when the run stopped before sampling finished."""
    from sqd_suite.sampling import Samples

    with _reading_run(Path(path), "samples in run file") as f:
        g = f["samples"]
        if not g.attrs.get("complete", False):
            return None
        return Samples.from_h5(g)


def read_run_hamiltonian(path: str | Path) -> ActiveSpaceHamiltonian | None:
    """The stored Hamiltonian, or None when the run was written without integrals."""
    with _reading_run(Path(path), "Hamiltonian in run file") as f:
        g = f["hamiltonian"]
        if "h1" not in g:
            return None
        return read_hamiltonian_group(g)
