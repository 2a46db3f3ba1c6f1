"""Run files to pandas DataFrames, and the plots an SQD study needs.

:func:`load_runs` gives one row per completed iteration of one or many run
files; :func:`load_results` one row per run (the final, tight-tolerance
energy). Both carry the molecule, its geometry variables (one column each,
e.g. ``bond_length``), the references (HF, CCSD, exact) and the subspace
each energy came from. The plotting helpers return a
:class:`matplotlib.figure.Figure` and never touch pyplot's global state, so
they work the same in scripts, tests and notebooks.

Files are read through :func:`sqd_suite.store.read_run` (docs/results.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sqd_suite.errors import SQDInputError
from sqd_suite.store import RunRecord, read_run

__all__ = [
    "CHEMICAL_ACCURACY_HA",
    "find_run_files",
    "load_results",
    "load_runs",
    "load_walkers",
    "plot_closed_loop",
    "plot_convergence",
    "plot_error_vs_dimension",
    "plot_potential_energy_curve",
]

CHEMICAL_ACCURACY_HA = 1.6e-3

PathsLike = str | Path | Iterable[str | Path]


def find_run_files(paths: PathsLike) -> list[Path]:
    """Run files from paths, folders (their ``*.h5``, sorted) and glob patterns."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    found: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found += sorted(p.glob("*.h5"))
        elif any(ch in str(item) for ch in "*?["):
            anchor = Path(p.anchor) if p.is_absolute() else Path()
            found += sorted(anchor.glob(str(p.relative_to(anchor))))
        else:
            found.append(p)
    if not found:
        raise SQDInputError(str(paths), "no run files found", fix="give run files, a folder of them or a glob such as runs/n2/*.h5")
    return found


def _config(record: RunRecord) -> dict[str, Any]:
    try:
        data = yaml.safe_load(record.config_yaml) or {}
    except yaml.YAMLError:
        data = {}
    return data if isinstance(data, dict) else {}


def _run_columns(record: RunRecord) -> dict[str, Any]:
    """What is constant over a run: identity, geometry, references, settings."""
    cfg = _config(record)
    molecule = cfg.get("molecule") or {}
    sqd = cfg.get("sqd") or {}
    ham = record.hamiltonian
    e_exact = record.e_exact
    cols: dict[str, Any] = {
        "path": str(record.path),
        "name": record.attrs.get("run_name") or cfg.get("name") or record.path.stem,
        "molecule": ham.get("label"),
        "basis": molecule.get("basis"),
        "status": record.status,
        "norb": _int(ham.get("norb")),
        "nelec_alpha": _int(ham.get("nelec_alpha")),
        "nelec_beta": _int(ham.get("nelec_beta")),
        "fci_dimension": _int(ham.get("fci_dimension")),
        "e_hf": _float(ham.get("e_hf")),
        "e_ccsd": _float(ham.get("e_ccsd")),
        "e_exact": e_exact,
        "exact_method": ham.get("exact_method"),
        "shots": _int(record.samples.get("shots")),
        "samples_per_batch": _int(sqd.get("samples_per_batch")),
        "num_batches": _int(sqd.get("num_batches")),
        "mpi_ranks": _int(record.attrs.get("mpi_ranks")),
        "seed": _int(record.attrs.get("seed")),
    }
    for var, value in (molecule.get("variables") or {}).items():
        cols[str(var)] = float(value)
    return cols


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _float(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _error(energy: float | None, e_exact: float | None) -> float:
    return np.nan if energy is None or e_exact is None else energy - e_exact


def load_runs(paths: PathsLike) -> pd.DataFrame:
    """One row per completed iteration of every run file.

    Columns: ``path, name, molecule, basis, status``, the geometry variables,
    ``iteration, energy, error`` (Ha, vs the exact reference; NaN without
    one), ``error_mha, dimension, n_alpha, n_beta`` (the best batch's
    subspace), ``distinct_alpha, distinct_beta`` (over all batches),
    ``spin_square, energy_change, converged, davidson_iterations``,
    ``time_<phase>`` (seconds per phase, e.g. ``time_total``), the
    references ``e_hf, e_ccsd, e_exact`` and the settings ``shots,
    samples_per_batch, num_batches, mpi_ranks, seed``.
    """
    rows = []
    for path in find_run_files(paths):
        record = read_run(path)
        base = _run_columns(record)
        for it in record.iterations:
            err = _error(it.energy, base["e_exact"])
            row = {
                **base,
                "iteration": int(it.iteration),
                "energy": float(it.energy),
                "error": err,
                "error_mha": 1e3 * err,
                "dimension": int(it.dimension),
                "n_alpha": int(it.subspace_shape[0]),
                "n_beta": int(it.subspace_shape[1]),
                "distinct_alpha": int(it.distinct_strings[0]),
                "distinct_beta": int(it.distinct_strings[1]),
                "spin_square": float(it.spin_square),
                "energy_change": float(it.energy_change),
                "converged": bool(it.converged),
                "davidson_iterations": int(it.davidson_iterations),
            }
            row.update({f"time_{k}": float(v) for k, v in it.timings.items() if isinstance(v, int | float)})
            rows.append(row)
    return pd.DataFrame(rows)


def load_results(paths: PathsLike) -> pd.DataFrame:
    """One row per run file: the final energy and what it came from.

    Columns as :func:`load_runs` (without the per-iteration ones) plus
    ``energy`` (the tight-tolerance final energy, or the last iteration's for
    an unfinished run), ``energy_is_final, error, error_mha, dimension,
    n_alpha, n_beta, distinct_alpha, distinct_beta, iterations, converged,
    wall_time_s, warnings``. Sorted by name and geometry.
    """
    rows = []
    variables: list[str] = []
    for path in find_run_files(paths):
        record = read_run(path)
        base = _run_columns(record)
        variables += [k for k in (_config(record).get("molecule") or {}).get("variables", {}) if k not in variables]
        s = record.summary()
        shape = s["subspace_shape"] or [None, None]
        distinct = s["distinct_strings"] or [None, None]
        err = _error(s["final_energy"], base["e_exact"])
        rows.append({
            **base,
            "energy": s["final_energy"],
            "energy_is_final": bool(s["energy_is_final"]),
            "error": err,
            "error_mha": 1e3 * err,
            "dimension": s["subspace_dimension"],
            "n_alpha": shape[0],
            "n_beta": shape[1],
            "distinct_alpha": distinct[0],
            "distinct_beta": distinct[1],
            "iterations": s["iterations"],
            "converged": bool(s["converged"]),
            "wall_time_s": s["wall_time_s"],
            "warnings": list(s["warnings"]),
        })
    df = pd.DataFrame(rows)
    return df.sort_values(["name", *variables]).reset_index(drop=True) if len(df) else df


def load_walkers(paths: PathsLike) -> pd.DataFrame:
    """One row per closed-loop evaluation (walker) of every run file that has them.

    Columns: the run columns of :func:`load_runs` plus ``generation, walker,
    energy, error, error_mha, dimension, n_alpha, n_beta, distinct_alpha,
    distinct_beta, distinct_bitstrings, sqd_iterations, best_so_far`` (the
    lowest energy up to and including that generation) and ``time_<phase>``
    (``sample``, ``sqd``, ``total``). Plain SQD runs contribute no rows.
    """
    from sqd_suite.loop.closed_loop import read_run_evaluations

    rows = []
    for path in find_run_files(paths):
        record = read_run(path)
        base = _run_columns(record)
        evaluations = sorted(read_run_evaluations(path), key=lambda e: (e.generation, e.walker))
        best = math.inf
        best_by_generation: dict[int, float] = {}
        for ev in evaluations:
            best = min(best, ev.energy)
            best_by_generation[ev.generation] = best
        for ev in evaluations:
            err = _error(ev.energy, base["e_exact"])
            row = {
                **base,
                "generation": int(ev.generation),
                "walker": int(ev.walker),
                "energy": float(ev.energy),
                "error": err,
                "error_mha": 1e3 * err,
                "dimension": int(ev.dimension),
                "n_alpha": int(ev.subspace_shape[0]),
                "n_beta": int(ev.subspace_shape[1]),
                "distinct_alpha": int(ev.distinct_strings[0]),
                "distinct_beta": int(ev.distinct_strings[1]),
                "distinct_bitstrings": int(ev.distinct_bitstrings),
                "sqd_iterations": int(ev.sqd_iterations),
                "best_so_far": best_by_generation[ev.generation],
            }
            row.update({f"time_{k}": float(v) for k, v in ev.timings.items()})
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------


def _figure(ax: Axes | None, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _label(group: pd.DataFrame, by: Sequence[str]) -> str:
    first = group.iloc[0]
    return ", ".join(f"{k}={first[k]:g}" if isinstance(first[k], float) else f"{first[k]}" for k in by)


def _run_key(df: pd.DataFrame) -> list[str]:
    """Columns that tell runs apart in a legend: the geometry variables that vary, else the name."""
    geometry = [c for c in df.columns if c not in _KNOWN_COLUMNS and df[c].nunique() > 1]
    return geometry or ["name"]


_KNOWN_COLUMNS = {
    "path", "name", "molecule", "basis", "status", "norb", "nelec_alpha", "nelec_beta", "fci_dimension",
    "e_hf", "e_ccsd", "e_exact", "exact_method", "shots", "samples_per_batch", "num_batches", "mpi_ranks",
    "seed", "iteration", "energy", "error", "error_mha", "dimension", "n_alpha", "n_beta", "distinct_alpha",
    "distinct_beta", "spin_square", "energy_change", "converged", "davidson_iterations", "energy_is_final",
    "iterations", "wall_time_s", "warnings", "generation", "walker", "distinct_bitstrings", "sqd_iterations",
    "best_so_far",
}


def plot_convergence(iterations: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Energy convergence per run: |error| vs exact (log scale, with chemical
    accuracy) when every run has a reference, else the energy."""
    if iterations.empty:
        raise SQDInputError("iterations", "no iterations to plot", fix="load run files with completed iterations")
    fig, ax = _figure(ax)
    with_error = iterations["error"].notna().all()
    key = _run_key(iterations.drop(columns=[c for c in iterations.columns if c.startswith("time_")]))
    for _, group in iterations.groupby("path", sort=False):
        group = group.sort_values("iteration")
        y = group["error"].abs() * 1e3 if with_error else group["energy"]
        ax.plot(group["iteration"], y, marker="o", label=_label(group, key))
    if with_error:
        ax.set_yscale("log")
        ax.axhline(CHEMICAL_ACCURACY_HA * 1e3, color="grey", ls="--", lw=1, label="chemical accuracy")
        ax.set_ylabel("|E - E_exact| (mHa)")
    else:
        ax.set_ylabel("energy (Ha)")
    ax.set_xlabel("SQD iteration")
    ax.set_title("SQD convergence")
    ax.legend(fontsize="small")
    return fig


def plot_error_vs_dimension(iterations: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """|error| vs subspace dimension (log-log), one marker per iteration."""
    data = iterations.dropna(subset=["error"])
    if data.empty:
        raise SQDInputError("iterations", "no iteration has an exact reference", fix="use runs small enough for FCI/CASCI")
    fig, ax = _figure(ax)
    key = _run_key(data.drop(columns=[c for c in data.columns if c.startswith("time_")]))
    for _, group in data.groupby("path", sort=False):
        ax.plot(group["dimension"], group["error"].abs().clip(lower=1e-10) * 1e3, marker="o", ls=":", label=_label(group, key))
    ax.axhline(CHEMICAL_ACCURACY_HA * 1e3, color="grey", ls="--", lw=1, label="chemical accuracy")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("subspace dimension (determinants)")
    ax.set_ylabel("|E - E_exact| (mHa)")
    ax.set_title("Error vs subspace dimension")
    ax.legend(fontsize="small")
    return fig


def plot_potential_energy_curve(results: pd.DataFrame, variable: str = "bond_length", *, errors: bool = True) -> Figure:
    """SQD energies along a geometry variable with HF, CCSD and exact references;
    with ``errors`` a lower panel shows each method's error vs exact in mHa."""
    if variable not in results.columns:
        have = [c for c in results.columns if c not in _KNOWN_COLUMNS]
        raise SQDInputError("variable", f"the runs have no variable {variable!r} (they have: {', '.join(have) or 'none'})",
                            fix="pass one of those")
    data = results.sort_values(variable)
    has_exact = data["e_exact"].notna().any()
    two = errors and has_exact
    fig = Figure(figsize=(6.0, 6.5 if two else 4.0), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1]) if two else [fig.add_subplot()]
    ax = axes[0]
    x = data[variable].to_numpy(float)
    refs = [("e_hf", "HF", "tab:grey", ":"), ("e_ccsd", "CCSD", "tab:green", "--"), ("e_exact", "exact (FCI/CASCI)", "black", "-")]
    for col, name, color, ls in refs:
        y = data[col].to_numpy(float)
        if np.isfinite(y).any():
            ax.plot(x, y, color=color, ls=ls, label=name)
    ax.plot(x, data["energy"].to_numpy(float), "o", color="tab:red", label="SQD")
    ax.set_ylabel("energy (Ha)")
    ax.set_title(f"{data['molecule'].iloc[0]}: potential-energy curve")
    ax.legend(fontsize="small")
    if two:
        lower = axes[1]
        exact = data["e_exact"].to_numpy(float)
        for col, name, color, ls in refs[:2]:
            y = data[col].to_numpy(float)
            if np.isfinite(y).any():
                lower.plot(x, 1e3 * (y - exact), color=color, ls=ls, label=name)
        lower.plot(x, 1e3 * (data["energy"].to_numpy(float) - exact), "o-", color="tab:red", label="SQD")
        lower.axhspan(-CHEMICAL_ACCURACY_HA * 1e3, CHEMICAL_ACCURACY_HA * 1e3, color="grey", alpha=0.2, label="chemical accuracy")
        lower.set_yscale("symlog", linthresh=1.0)
        lower.set_ylabel("E - E_exact (mHa)")
        lower.set_xlabel(variable)
    else:
        ax.set_xlabel(variable)
    return fig


def plot_closed_loop(walkers: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Closed-loop optimisation: every walker's energy per generation (dots),
    the best so far (line) and the open-loop SQD energy (generation 0, walker 0)."""
    if walkers.empty:
        raise SQDInputError("walkers", "no closed-loop evaluations to plot", fix="load run files of closed-loop runs")
    fig, ax = _figure(ax)
    for path, group in walkers.groupby("path", sort=False):
        label = Path(str(path)).stem
        ax.scatter(group["generation"], group["energy"], s=14, alpha=0.6, label=f"{label}: walkers")
        best = group.groupby("generation")["best_so_far"].min()
        ax.plot(best.index, best.to_numpy(), marker="o", label=f"{label}: best so far")
        open_loop = group[(group["generation"] == 0) & (group["walker"] == 0)]["energy"]
        if len(open_loop):
            ax.axhline(float(open_loop.iloc[0]), color="tab:grey", ls=":", lw=1, label="open loop (CCSD parameters)")
    exact = walkers["e_exact"].dropna()
    if len(exact):
        ax.axhline(float(exact.iloc[0]), color="black", lw=1, label="exact")
    ax.set_xlabel("generation")
    ax.set_ylabel("energy (Ha)")
    ax.set_title("Closed-loop SQD")
    ax.legend(fontsize="small")
    return fig
