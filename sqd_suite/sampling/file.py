"""Replay bitstrings sampled elsewhere.

``sampler.path`` may be

- a counts JSON ``{"0101...": n, ...}`` (``.json``);
- a text list, one bitstring per line (blank lines and ``#`` comments skipped);
- an HDF5 dataset ``file.h5:name`` of bool/uint8 rows ``(shots, 2*norb)``
  or of strings, or a group written by :meth:`Samples.save_to_h5` (e.g. the
  samples of an earlier run file).

Bitstrings use the convention of :mod:`sqd_suite.sampling.samples` (beta half
left, alpha half right); their width must be ``2*norb``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling.samples import Samples

__all__ = ["read_bitstring_file", "sample_file"]

_H5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def _width_error(path: str, found: int, norb: int) -> SQDInputError:
    return SQDInputError(
        "sampler.path",
        f"{path}: bitstrings have {found} bits, expected {2 * norb} (2*norb for norb={norb})",
        fix="replay samples of the same active space, or set active_space so that 2*norb matches the file",
    )


def _split_h5(path: str) -> tuple[Path, str | None]:
    """``file.h5:dataset`` -> (file, dataset); ``None`` when the path names no HDF5 file."""
    head, sep, tail = path.rpartition(":")
    if sep and head.lower().endswith(_H5_SUFFIXES):
        return Path(head), tail
    if path.lower().endswith(_H5_SUFFIXES):
        return Path(path), ""
    return Path(path), None


def _matrix_from_text(lines: list[str], path: str, norb: int) -> np.ndarray:
    if not lines:
        return np.zeros((0, 2 * norb), dtype=bool)
    widths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    if widths.min() != widths.max():
        bad = int(widths[np.flatnonzero(widths != 2 * norb)[0]]) if np.any(widths != 2 * norb) else int(widths.max())
        raise _width_error(path, bad, norb)
    if widths[0] != 2 * norb:
        raise _width_error(path, int(widths[0]), norb)
    raw = np.frombuffer("".join(lines).encode("ascii", errors="replace"), dtype=np.uint8).reshape(len(lines), -1)
    if not np.all((raw == ord("0")) | (raw == ord("1"))):
        row = int(np.flatnonzero(~np.all((raw == ord("0")) | (raw == ord("1")), axis=1))[0])
        raise SQDInputError(
            "sampler.path", f"{path}: {lines[row][:80]!r} is not a bitstring of 0 and 1",
            fix="write one bitstring of 0/1 characters per entry",
        )
    return raw == ord("1")


def _read_h5(file: Path, name: str, path: str, norb: int) -> tuple[Samples, str]:
    import h5py

    with h5py.File(file, "r") as f:
        if not name or name not in f:
            names = sorted(f.keys())
            raise SQDInputError(
                "sampler.path",
                f"{path}: {'no dataset given' if not name else f'no dataset {name!r}'} (top-level entries: {', '.join(names) or 'none'})",
                fix="write the path as file.h5:dataset",
            )
        obj = f[name]
        if isinstance(obj, h5py.Group):
            if "bitstrings_packed" not in obj:
                raise SQDInputError(
                    "sampler.path", f"{path}: {name!r} is a group without samples",
                    fix="point at a dataset of bitstrings or a group written by Samples.save_to_h5",
                )
            samples = Samples.from_h5(obj)
            if samples.norb != norb:
                raise _width_error(path, 2 * samples.norb, norb)
            return samples, "h5_samples"
        data = obj[()]
    if data.dtype.kind in "SUO":
        lines = [x.decode() if isinstance(x, bytes) else str(x) for x in np.ravel(data)]
        return Samples.from_bitstring_matrix(_matrix_from_text(lines, path, norb), norb), "h5_strings"
    if data.ndim != 2:
        raise SQDInputError(
            "sampler.path", f"{path}: dataset has shape {data.shape}, expected (shots, {2 * norb})",
            fix="store one row of 0/1 values per shot",
        )
    if data.shape[1] != 2 * norb:
        raise _width_error(path, int(data.shape[1]), norb)
    if data.dtype != bool and not np.all((data == 0) | (data == 1)):
        raise SQDInputError("sampler.path", f"{path}: rows hold values other than 0 and 1", fix="store bool or 0/1 uint8 rows")
    return Samples.from_bitstring_matrix(data.astype(bool), norb), "h5_rows"


def read_bitstring_file(path: str | Path, norb: int) -> Samples:
    """Read a counts JSON, a text list or an HDF5 dataset of ``2*norb``-bit strings."""
    text_path = str(path)
    file, h5_name = _split_h5(text_path)
    if not file.exists():
        raise SQDInputError("sampler.path", f"{file}: no such file", fix="check the path (relative paths resolve against the YAML)")
    if h5_name is not None:
        samples, fmt = _read_h5(file, h5_name, text_path, norb)
    elif file.suffix.lower() == ".json":
        try:
            counts = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise SQDInputError("sampler.path", f"{file}: not valid JSON ({err.msg}, line {err.lineno})", fix="write {\"0101...\": count, ...}") from None
        if not isinstance(counts, dict) or not all(isinstance(v, int) and v > 0 for v in counts.values()):
            raise SQDInputError("sampler.path", f"{file}: expected a mapping of bitstring to positive count", fix="write {\"0101...\": count, ...}")
        keys = list(counts)
        matrix = _matrix_from_text(keys, text_path, norb)
        samples = Samples.from_bitstring_matrix(matrix, norb, counts=np.fromiter(counts.values(), dtype=np.int64, count=len(keys)))
        fmt = "counts_json"
    else:
        lines = [ln.strip() for ln in file.read_text().splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        samples = Samples.from_bitstring_matrix(_matrix_from_text(lines, text_path, norb), norb)
        fmt = "text"
    if samples.shots == 0:
        raise SQDInputError("sampler.path", f"{text_path}: holds no bitstrings", fix="point at a file with samples")
    metadata = {**samples.metadata, "sampler": "file", "backend": "file", "path": text_path, "format": fmt}
    return Samples(samples.bitstrings, samples.counts, norb, metadata)


def sample_file(norb: int, settings: SamplerConfig, *, base_dir: Path | None = None) -> Samples:
    """The ``file`` sampler: replay ``settings.path`` (relative to ``base_dir`` if given)."""
    if settings.path is None:
        raise SQDInputError("sampler.path", "kind 'file' needs a path", fix="set sampler.path")
    path = str(settings.path)
    file, name = _split_h5(path)
    if base_dir is not None and not file.is_absolute():
        path = str(base_dir / file) + ("" if name is None or name == "" else f":{name}")
    return read_bitstring_file(path, norb)
