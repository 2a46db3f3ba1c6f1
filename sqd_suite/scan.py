"""Parameter scans: one run file per geometry point (``sqd scan``).

``--param bond_length=0.9:1.5:0.1`` varies ``molecule.variables.bond_length``
over 0.9, 1.0, ..., 1.5 (the stop is included when it lies on the grid within
a tolerance); ``--param bond_length=0.9,1.1,1.4`` lists the values. A dotted
name (``sqd.samples_per_batch=100,200``) varies any config field. Several
``--param`` options give their Cartesian product. Every point is the base
config with those values substituted and ``output.path`` set to
``<output_dir>/<name>=<value>[_<name>=<value>...].h5``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from sqd_suite.config import RunConfig
from sqd_suite.errors import SQDInputError

__all__ = [
    "ScanParameter",
    "ScanPoint",
    "emit_point_yamls",
    "parse_param",
    "run_scan",
    "scan_command",
    "scan_points",
]

# Relative tolerance (in steps) within which the stop value counts as on the grid.
_GRID_TOL = 1e-6
# Points above this are almost surely a typo (a step of 0.001 instead of 0.1).
_MAX_POINTS = 10_000


@dataclass(frozen=True)
class ScanParameter:
    """One scanned quantity: ``name`` as written, its config path and its values."""

    name: str
    path: str
    values: tuple[float, ...]
    decimals: int

    def label(self, value: float) -> str:
        return f"{self.name}={value:.{self.decimals}f}"


@dataclass(frozen=True)
class ScanPoint:
    """One point of a scan: its index, the values set and the config that runs it."""

    index: int
    values: dict[str, float]
    config: RunConfig
    output: Path
    label: str


def _decimals(text: str) -> int:
    try:
        exponent = Decimal(text.strip()).as_tuple().exponent
    except InvalidOperation:
        return 0
    return max(0, -int(exponent)) if isinstance(exponent, int) else 0


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SQDInputError(
            "--param", f"{spec!r}: {text.strip()!r} is not a number",
            fix="write NAME=START:STOP:STEP or NAME=V1,V2,...",
        ) from None
    if not math.isfinite(value):
        raise SQDInputError("--param", f"{spec!r}: {text.strip()!r} is not finite", fix="use finite numbers")
    return value


def _range_values(start: float, stop: float, step: float, spec: str) -> list[float]:
    if step == 0:
        raise SQDInputError("--param", f"{spec!r}: the step is 0", fix="use a nonzero step, e.g. 0.9:1.5:0.1")
    span = (stop - start) / step
    if span < -_GRID_TOL:
        raise SQDInputError(
            "--param", f"{spec!r}: the step goes away from the stop value",
            fix="swap start and stop or change the sign of the step",
        )
    count = math.floor(span + _GRID_TOL) + 1
    if count > _MAX_POINTS:
        raise SQDInputError("--param", f"{spec!r} gives {count} points", fix=f"use a larger step (at most {_MAX_POINTS} points)")
    # start + i*step, not repeated addition: no drift; rounding removes 0.30000000000000004.
    return [round(start + i * step, 12) for i in range(count)]


def parse_param(spec: str, config: RunConfig) -> ScanParameter:
    """Parse ``NAME=START:STOP:STEP`` or ``NAME=V1,V2,...`` against a config.

    A plain NAME must be one of ``molecule.variables``; a dotted NAME is a
    config field path.
    """
    name, sep, rhs = spec.partition("=")
    name, rhs = name.strip(), rhs.strip()
    if not sep or not name or not rhs:
        raise SQDInputError("--param", f"{spec!r} is not NAME=START:STOP:STEP or NAME=V1,V2,...", fix="e.g. --param bond_length=0.9:1.5:0.1")
    if "." in name:
        path = name
        _check_field_path(path, config)
    else:
        if config.molecule is None:
            raise SQDInputError("--param", f"{name!r}: the config has no `molecule` section to vary", fix="scan a molecule YAML")
        known = sorted(config.molecule.variables)
        if name not in known:
            have = ", ".join(known) if known else "none"
            raise SQDInputError(
                "--param", f"unknown variable {name!r} (molecule.variables defines: {have})",
                fix="use one of those or add it to molecule.variables and a {" + name + "} placeholder in molecule.atom",
            )
        path = f"molecule.variables.{name}"
    if ":" in rhs:
        parts = rhs.split(":")
        if len(parts) != 3:
            raise SQDInputError("--param", f"{spec!r}: a range needs START:STOP:STEP", fix="e.g. bond_length=0.9:1.5:0.1")
        start, stop, step = (_number(p, spec) for p in parts)
        values = _range_values(start, stop, step, spec)
        decimals = max(_decimals(p) for p in parts)
    else:
        items = [p for p in rhs.split(",") if p.strip()]
        if not items:
            raise SQDInputError("--param", f"{spec!r} lists no values", fix="e.g. bond_length=0.9,1.1,1.4")
        values = [_number(p, spec) for p in items]
        decimals = max(_decimals(p) for p in items)
        if len(set(values)) != len(values):
            raise SQDInputError("--param", f"{spec!r} repeats a value", fix="list each value once")
    # Geometry variables get three decimals at least, so the file names of a curve line up and sort.
    if "." not in name:
        decimals = max(3, decimals)
    return ScanParameter(name=name, path=path, values=tuple(values), decimals=decimals)


def _check_field_path(path: str, config: RunConfig) -> None:
    node: Any = config.to_dict()
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise SQDInputError("--param", f"{path!r} is not a config field", fix="use a dotted path such as sqd.samples_per_batch")
        node = node[key]
    if isinstance(node, dict | list):
        raise SQDInputError("--param", f"{path!r} is a section, not a number", fix="name a numeric field")


def default_output_dir(config: RunConfig) -> Path:
    return Path("runs") / config.run_name


def scan_points(
    config: RunConfig,
    params: Sequence[str | ScanParameter],
    *,
    output_dir: str | Path | None = None,
) -> list[ScanPoint]:
    """Every point of the scan, in order (the last parameter varies fastest)."""
    if not params:
        raise SQDInputError("--param", "no parameter to scan", fix="give --param NAME=START:STOP:STEP")
    parsed = [p if isinstance(p, ScanParameter) else parse_param(p, config) for p in params]
    names = [p.name for p in parsed]
    if len(set(names)) != len(names):
        raise SQDInputError("--param", "the same parameter is given twice", fix="give each parameter once")
    out_dir = Path(output_dir) if output_dir is not None else default_output_dir(config)
    points = []
    for index, combo in enumerate(itertools.product(*(p.values for p in parsed))):
        label = "_".join(p.label(v) for p, v in zip(parsed, combo, strict=True))
        output = out_dir / f"{label}.h5"
        updates: dict[str, Any] = {p.path: v for p, v in zip(parsed, combo, strict=True)}
        updates["output.path"] = str(output)
        point_config = config.with_updates(updates)
        values = {p.name: v for p, v in zip(parsed, combo, strict=True)}
        points.append(ScanPoint(index=index, values=values, config=point_config, output=output, label=label))
    return points


def _absolute_paths(config: RunConfig) -> dict[str, Any]:
    """The config as data with every file path absolute, so it runs from any folder."""
    data = config.to_dict()
    resolved = {
        ("molecule", "xyz"): config.molecule.xyz if config.molecule is not None else None,
        ("active_space", "fcidump"): config.active_space.fcidump,
        ("sampler", "path"): config.sampler.path,
    }
    for (section, key), path in resolved.items():
        if path is not None and data.get(section) is not None:
            data[section][key] = str(Path(config.resolve(path)).absolute())
    if config.output.path is not None:
        data["output"]["path"] = str(config.output.path.absolute())
    return data


def emit_point_yamls(points: Sequence[ScanPoint], directory: str | Path) -> list[Path]:
    """Write one YAML per point (``<index>_<label>.yaml``) for job arrays.

    Paths inside are absolute, so an array task may run from any folder.
    Also writes ``points.txt``: index, YAML and run file per line.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(points) - 1)))
    written = []
    lines = []
    for point in points:
        path = directory / f"{point.index:0{width}d}_{point.label}.yaml"
        header = f"# sqd scan point {point.index}: {point.label}\n"
        path.write_text(header + yaml.safe_dump(_absolute_paths(point.config), sort_keys=False))
        written.append(path)
        lines.append(f"{point.index}\t{path}\t{point.output.absolute()}")
    (directory / "points.txt").write_text("\n".join(lines) + "\n")
    return written


RunFunction = Callable[[RunConfig], Any]


def _default_run_function() -> RunFunction:
    # Imported on use: the SQD loop pulls in Qiskit, ffsim and numba.
    from sqd_suite.runner import run

    return run


def run_scan(
    points: Sequence[ScanPoint],
    *,
    run: RunFunction | None = None,
    only: Sequence[int] | None = None,
    skip_existing: bool = False,
    resume: Callable[[Path], Any] | None = None,
    on_point: Callable[[ScanPoint, str], None] | None = None,
) -> list[tuple[ScanPoint, Any]]:
    """Run the points in order; returns (point, result) for each point run.

    ``only`` restricts to those indices (a job-array task runs one).
    ``skip_existing`` leaves points whose run file is complete and, when a
    ``resume`` function is given, continues unfinished ones with it (a
    requeued array task picks up where it was killed); without one an
    existing file is left as it is.
    """
    run = run or _default_run_function()
    chosen = list(points)
    if only is not None:
        known = {p.index for p in points}
        bad = [i for i in only if i not in known]
        if bad:
            raise SQDInputError("--only", f"no point {bad[0]} (the scan has points 0..{len(points) - 1})", fix="use an index the dry run lists")
        chosen = [p for p in points if p.index in set(only)]
    results = []
    for point in chosen:
        if skip_existing and point.output.exists():
            if resume is None or _status(point.output) == "complete":
                if on_point:
                    on_point(point, "exists, skipped")
                continue
            if on_point:
                on_point(point, "unfinished, resuming")
            results.append((point, resume(point.output)))
            continue
        if on_point:
            on_point(point, "running")
        point.output.parent.mkdir(parents=True, exist_ok=True)
        results.append((point, run(point.config)))
        if on_point:
            on_point(point, "done")
    return results


def _status(path: Path) -> str | None:
    from sqd_suite.store import run_file_status

    return run_file_status(path)


def scan_command(args: Any, console: Any) -> int:
    """``sqd scan``: dry run, YAMLs for a job array, or run every (or one) point.

    Under MPI every rank takes part in each point's run; rank 0 prints.
    """
    from sqd_suite.config import load_config
    from sqd_suite.hpc import world_comm

    config = load_config(args.config)
    points = scan_points(config, args.param, output_dir=args.output_dir)
    if args.dry_run or args.emit_yaml is not None:
        # Plain lines, never truncated: the paths are meant to be copied or parsed.
        names = list(points[0].values)
        console.print(f"{config.run_name}: {len(points)} points", soft_wrap=True)
        console.print("\t".join(["index", *names, "run file"]), soft_wrap=True)
        for p in points:
            console.print("\t".join([str(p.index), *(f"{v:g}" for v in p.values.values()), str(p.output)]), soft_wrap=True)
        if args.emit_yaml is not None:
            written = emit_point_yamls(points, args.emit_yaml)
            console.print(f"wrote {len(written)} YAMLs and points.txt to {args.emit_yaml}", soft_wrap=True)
            console.print(f"submit: sbatch --array=0-{len(points) - 1} jobs/slurm/pes_array.sbatch {args.emit_yaml}", soft_wrap=True)
        return 0
    comm = world_comm()
    root = comm is None or comm.Get_rank() == 0
    from sqd_suite.runner import resume, run

    def run_one(point_config: RunConfig) -> Any:
        return run(point_config, force=args.force, comm=comm)

    def resume_one(path: Path) -> Any:
        return resume(path, comm=comm)

    def report(point: ScanPoint, what: str) -> None:
        if root:
            console.print(f"[{point.index}] {point.label}: {what} ({point.output})", soft_wrap=True, markup=False)

    results = run_scan(points, run=run_one, only=args.only, skip_existing=args.skip_existing,
                       resume=resume_one, on_point=report)
    if root:
        for point, result in results:
            console.print(f"{point.label}: E = {result.energy:.8f} Ha", soft_wrap=True)
    return 0
