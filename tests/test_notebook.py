"""notebooks/analysis.ipynb runs top to bottom on the bundled run files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"
BUNDLED = REPO / "notebooks" / "data" / "n2_curve"


def test_bundled_runs_are_small() -> None:
    files = sorted(BUNDLED.glob("*.h5"))
    assert len(files) >= 4
    assert sum(p.stat().st_size for p in files) < 1_000_000


@pytest.mark.slow
def test_analysis_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A kernel spec for this interpreter (the venv's), whatever kernels the machine has.
    spec = tmp_path / "kernels" / "sqd-suite"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sqd-suite", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="sqd-suite", timeout=300, resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # The three figures render as images.
    images = [o for o in outputs if o.output_type in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert len(images) >= 3
