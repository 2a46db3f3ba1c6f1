"""HDF5 files: crash-safe writes and the Hamiltonian record.

Nothing is ever half-written: a file appears under its final name only once
it is complete (:func:`atomic_path`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from sqd_suite.errors import SQDInputError
from sqd_suite.hamiltonian import ActiveSpaceHamiltonian, hamiltonian_from_integrals

__all__ = ["atomic_path", "read_hamiltonian_h5", "write_hamiltonian_h5", "write_hamiltonian_group", "read_hamiltonian_group"]


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
