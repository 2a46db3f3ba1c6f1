"""sqd_suite.analysis on run files written by the current code (a two-point LiH
scan made here) and on the bundled N2 curve."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from sqd_suite import analysis
from sqd_suite.config import load_config
from sqd_suite.errors import SQDInputError
from sqd_suite.runner import run
from sqd_suite.scan import run_scan, scan_points
from sqd_suite.store import read_run

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "notebooks" / "data" / "n2_curve"


@pytest.fixture(scope="module")
def lih_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two LiH geometries, written by sqd scan's run path (serial)."""
    out = tmp_path_factory.mktemp("lih_scan")
    config = load_config(REPO / "molecules" / "lih.yaml").with_updates({"sqd.max_iterations": 2})
    run_scan(scan_points(config, ["bond_length=1.4,1.8"], output_dir=out), run=run)
    return out


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_load_runs_one_row_per_iteration(lih_scan: Path) -> None:
    df = analysis.load_runs(lih_scan)
    records = [read_run(p) for p in sorted(lih_scan.glob("*.h5"))]
    assert len(df) == sum(len(r.iterations) for r in records)
    assert sorted(df["bond_length"].unique()) == [1.4, 1.8]
    first = records[0].iterations[0]
    row = df[(df["path"] == str(records[0].path)) & (df["iteration"] == 0)].iloc[0]
    assert row["energy"] == first.energy and row["dimension"] == first.dimension
    assert (row["n_alpha"], row["n_beta"]) == tuple(first.subspace_shape)
    assert (row["distinct_alpha"], row["distinct_beta"]) == tuple(first.distinct_strings)
    assert row["error"] == pytest.approx(first.energy - records[0].e_exact)
    assert row["error_mha"] == pytest.approx(1e3 * row["error"])
    assert row["molecule"] == "HLi/sto-3g" or "Li" in row["molecule"]
    assert row["time_total"] == pytest.approx(first.timings["total"])
    assert {"e_hf", "e_ccsd", "e_exact", "shots", "samples_per_batch", "seed", "mpi_ranks"} <= set(df.columns)


def test_load_results_one_row_per_run_sorted_by_geometry(lih_scan: Path) -> None:
    files = list(reversed(sorted(lih_scan.glob("*.h5"))))
    df = analysis.load_results(files)
    assert list(df["bond_length"]) == [1.4, 1.8]
    for _, row in df.iterrows():
        record = read_run(row["path"])
        assert row["energy"] == record.result["energy"] and row["energy_is_final"]
        assert row["error"] == pytest.approx(record.result["energy"] - record.e_exact)
        assert row["iterations"] == len(record.iterations)
    # LiH/STO-3G at these settings reaches the full space: SQD is exact there.
    assert np.all(np.abs(df["error"]) < 1e-6)


def test_find_run_files(lih_scan: Path) -> None:
    assert len(analysis.find_run_files(lih_scan)) == 2
    assert len(analysis.find_run_files(str(lih_scan / "bond_length=1.*.h5"))) == 2
    with pytest.raises(SQDInputError, match="no run files"):
        analysis.find_run_files(str(lih_scan / "nothing*.h5"))
    with pytest.raises(SQDInputError):
        analysis.load_runs(lih_scan / "missing.h5")


def test_plots_on_the_bundled_curve() -> None:
    results = analysis.load_results(BUNDLED)
    iterations = analysis.load_runs(BUNDLED)
    assert len(results) >= 4 and results["e_exact"].notna().all()

    pes = analysis.plot_potential_energy_curve(results, "bond_length")
    upper, lower = pes.axes
    labels = [line.get_label() for line in upper.get_lines()]
    assert labels == ["HF", "CCSD", "exact (FCI/CASCI)", "SQD"]
    sqd = upper.get_lines()[-1]
    assert np.allclose(sqd.get_xdata(), np.sort(results["bond_length"]))
    assert np.allclose(sqd.get_ydata(), results.sort_values("bond_length")["energy"])
    sqd_err = [line for line in lower.get_lines() if line.get_label() == "SQD"][0]
    assert np.all(np.asarray(sqd_err.get_ydata()) >= -1e-5)  # variational
    assert lower.get_xlabel() == "bond_length"

    conv = analysis.plot_convergence(iterations)
    ax = conv.axes[0]
    runs = [line for line in ax.get_lines() if line.get_label().startswith("bond_length=")]
    assert len(runs) == len(results) and ax.get_yscale() == "log"

    dim = analysis.plot_error_vs_dimension(iterations)
    assert dim.axes[0].get_xscale() == "log"
    assert sum(len(line.get_xdata()) for line in dim.axes[0].get_lines()[:-1] if line.get_label() != "chemical accuracy") == len(iterations)
    for fig in (pes, conv, dim):
        assert _png(fig).startswith(b"\x89PNG")


def test_plots_without_exact_reference_and_bad_input() -> None:
    results = analysis.load_results(BUNDLED)
    no_exact = results.assign(e_exact=np.nan, error=np.nan)
    fig = analysis.plot_potential_energy_curve(no_exact, "bond_length")
    assert len(fig.axes) == 1 and "exact (FCI/CASCI)" not in [line.get_label() for line in fig.axes[0].get_lines()]
    iterations = analysis.load_runs(BUNDLED).assign(error=np.nan)
    assert analysis.plot_convergence(iterations).axes[0].get_ylabel() == "energy (Ha)"
    with pytest.raises(SQDInputError, match="no iteration has an exact reference"):
        analysis.plot_error_vs_dimension(iterations)
    with pytest.raises(SQDInputError, match="no variable 'r'"):
        analysis.plot_potential_energy_curve(results, "r")
