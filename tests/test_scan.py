"""`sqd scan`: grids, config rewriting, output paths, job-array YAMLs, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sqd_suite.cli import main
from sqd_suite.config import RunConfig, load_config
from sqd_suite.errors import SQDInputError
from sqd_suite.scan import emit_point_yamls, parse_param, run_scan, scan_points

REPO = Path(__file__).resolve().parents[1]
N2 = REPO / "molecules" / "n2_631g.yaml"
H8 = REPO / "molecules" / "h8_chain.yaml"


@pytest.fixture(scope="module")
def n2() -> RunConfig:
    return load_config(N2)


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("bond_length=0.9:1.5:0.1", [0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]),
        # The stop is included within tolerance of the grid, excluded when off it.
        ("bond_length=0.9:1.1000000001:0.1", [0.9, 1.0, 1.1]),
        ("bond_length=0.9:1.15:0.1", [0.9, 1.0, 1.1]),
        ("bond_length=1.5:0.9:-0.3", [1.5, 1.2, 0.9]),
        ("bond_length=1.1:1.1:0.1", [1.1]),
        ("bond_length=0.9,1.1, 1.4", [0.9, 1.1, 1.4]),
        ("bond_length=2", [2.0]),
    ],
)
def test_grid_values(n2: RunConfig, spec: str, values: list[float]) -> None:
    param = parse_param(spec, n2)
    assert param.path == "molecule.variables.bond_length"
    assert param.values == pytest.approx(values, abs=1e-12)
    # No floating-point residue such as 1.2000000000000002 reaches the file names.
    assert all(repr(v) == repr(round(v, 10)) for v in param.values)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bond_length", "is not NAME="),
        ("=0.9:1.5:0.1", "is not NAME="),
        ("bond_length=0.9:1.5", "START:STOP:STEP"),
        ("bond_length=0.9:1.5:0", "step is 0"),
        ("bond_length=1.5:0.9:0.1", "away from the stop"),
        ("bond_length=0.9:x:0.1", "'x' is not a number"),
        ("bond_length=0.9,0.9", "repeats"),
        ("bond_length=nan", "not finite"),
        ("bond_length=0:100:0.001", "points"),
        ("bondlength=0.9:1.5:0.1", "unknown variable 'bondlength' (molecule.variables defines: bond_length)"),
        ("sqd.no_such_field=1,2", "is not a config field"),
        ("sqd=1,2", "unknown variable"),
        ("molecule.variables=1", "section"),
    ],
)
def test_bad_param_is_one_line_input_error(n2: RunConfig, spec: str, message: str) -> None:
    with pytest.raises(SQDInputError) as err:
        parse_param(spec, n2)
    assert message in str(err.value)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_points_rewrite_the_geometry_and_the_output(n2: RunConfig, tmp_path: Path) -> None:
    points = scan_points(n2, ["bond_length=0.9:1.5:0.1"], output_dir=tmp_path)
    assert [p.index for p in points] == list(range(7))
    assert points[3].output == tmp_path / "bond_length=1.200.h5"
    assert points[3].config.molecule.geometry() == "N 0 0 0; N 0 0 1.2"
    assert points[3].config.output_path == tmp_path / "bond_length=1.200.h5"
    # Everything else is the base config.
    assert points[3].config.sqd == n2.sqd and points[3].config.run_name == n2.run_name
    assert load_config(N2).molecule.variables == {"bond_length": 1.1}


def test_default_output_dir_and_product_of_parameters(tmp_path: Path) -> None:
    cfg = load_config(H8)
    points = scan_points(cfg, ["r=0.9,1.0", "sqd.samples_per_batch=100,200"])
    assert len(points) == 4
    assert points[0].output == Path("runs") / "h8_chain" / "r=0.900_sqd.samples_per_batch=100.h5"
    assert points[3].values == {"r": 1.0, "sqd.samples_per_batch": 200}
    assert points[3].config.sqd.samples_per_batch == 200
    assert points[1].config.molecule.variables["r"] == 0.9
    with pytest.raises(SQDInputError, match="twice"):
        scan_points(cfg, ["r=1", "r=2"])
    with pytest.raises(SQDInputError, match="no parameter"):
        scan_points(cfg, [])


def test_emitted_yamls_run_from_any_folder(n2: RunConfig, tmp_path: Path) -> None:
    points = scan_points(n2, ["bond_length=1.0,1.2"], output_dir=Path("rel") / "out")
    files = emit_point_yamls(points, tmp_path / "points")
    assert [f.name for f in files] == ["000_bond_length=1.000.yaml", "001_bond_length=1.200.yaml"]
    again = load_config(files[1])
    assert again.molecule.geometry() == "N 0 0 0; N 0 0 1.2"
    assert again.output_path.is_absolute() and again.output_path.name == "bond_length=1.200.h5"
    assert again.sampler == n2.sampler
    # A recorded reference energy belongs to the file's own geometry: a moved point drops it.
    assert again.active_space.model_dump(exclude={"reference_energy"}) == n2.active_space.model_dump(exclude={"reference_energy"})
    assert again.active_space.reference_energy is None
    rows = [line.split("\t") for line in (tmp_path / "points" / "points.txt").read_text().splitlines()]
    assert [r[0] for r in rows] == ["0", "1"] and rows[1][1] == str(files[1])


def test_emitted_yaml_keeps_relative_files_reachable(tmp_path: Path) -> None:
    (tmp_path / "mol").mkdir()
    (tmp_path / "mol" / "h2.xyz").write_text("2\n\nH 0 0 0\nH 0 0 0.74\n")
    yaml_path = tmp_path / "mol" / "h2.yaml"
    yaml_path.write_text("molecule:\n  xyz: h2.xyz\nsqd:\n  samples_per_batch: 10\n")
    cfg = load_config(yaml_path)
    points = scan_points(cfg, ["sqd.samples_per_batch=10,20"], output_dir=tmp_path / "o")
    files = emit_point_yamls(points, tmp_path / "elsewhere")
    moved = load_config(files[0])
    assert moved.molecule.xyz == (tmp_path / "mol" / "h2.xyz")
    assert moved.molecule.geometry(moved.base_dir) == "H 0 0 0; H 0 0 0.74"


def test_run_scan_calls_the_run_function_per_point(n2: RunConfig, tmp_path: Path) -> None:
    points = scan_points(n2, ["bond_length=1.0:1.2:0.1"], output_dir=tmp_path)
    seen: list[tuple[str, Path]] = []

    def fake_run(cfg: RunConfig) -> float:
        seen.append((cfg.molecule.geometry(), cfg.output_path))
        cfg.output_path.write_bytes(b"x")
        return len(seen)

    results = run_scan(points, run=fake_run)
    assert [g for g, _ in seen] == ["N 0 0 0; N 0 0 1.0", "N 0 0 0; N 0 0 1.1", "N 0 0 0; N 0 0 1.2"]
    assert [r for _, r in results] == [1, 2, 3]
    seen.clear()
    assert run_scan(points, run=fake_run, only=[1]) and [g for g, _ in seen] == ["N 0 0 0; N 0 0 1.1"]
    seen.clear()
    (tmp_path / "bond_length=1.100.h5").unlink()
    run_scan(points, run=fake_run, skip_existing=True)
    assert [g for g, _ in seen] == ["N 0 0 0; N 0 0 1.1"]
    with pytest.raises(SQDInputError, match="no point 9"):
        run_scan(points, run=fake_run, only=[9])


def test_cli_dry_run_and_emit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(N2), "--param", "bond_length=0.9:1.5:0.1", "--dry-run", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "7 points" in out and str(tmp_path / "bond_length=1.500.h5") in out.replace("\n", "")
    assert not list(tmp_path.glob("*.h5"))
    assert main(["scan", str(N2), "--param", "bond_length=1.0,1.1", "--emit-yaml", str(tmp_path / "p")]) == 0
    assert "sbatch --array=0-1" in capsys.readouterr().out
    assert len(list((tmp_path / "p").glob("*.yaml"))) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["--param", "bond=1:2:0.5"],
        ["--param", "bond_length=1:2"],
        ["--param", "bond_length=1,2", "--only", "5"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "sqd_suite.cli", "scan", str(N2), "--dry-run" if "--only" not in args else "--skip-existing", *args],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2
    assert out.stderr.startswith("sqd: error: ") and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_skip_existing_resumes_unfinished_points(n2: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A requeued array task: complete files are left, unfinished ones resumed, missing ones run."""
    points = scan_points(n2, ["bond_length=1.0,1.1,1.2"], output_dir=tmp_path)
    (tmp_path / "bond_length=1.000.h5").write_bytes(b"complete")
    (tmp_path / "bond_length=1.100.h5").write_bytes(b"running")
    monkeypatch.setattr("sqd_suite.scan._status", lambda path: path.read_text())
    calls: list[str] = []
    results = run_scan(
        points, skip_existing=True,
        run=lambda cfg: calls.append(f"run {cfg.output_path.name}"),
        resume=lambda path: calls.append(f"resume {path.name}"),
    )
    assert calls == ["resume bond_length=1.100.h5", "run bond_length=1.200.h5"]
    assert [p.index for p, _ in results] == [1, 2]
