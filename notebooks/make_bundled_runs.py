"""Regenerate the run files bundled for notebooks/analysis.ipynb.

    .venv/bin/python notebooks/make_bundled_runs.py

Runs ``sqd scan notebooks/n2_curve.yaml --param bond_length=0.9:1.7:0.2``
(five points of the N2/6-31G curve, a few seconds each), writing
``notebooks/data/n2_curve/bond_length=<value>.h5``, then repacks each file
with gzip + shuffle (readers see the same datasets and attributes; the
stored top-determinant blocks shrink several-fold) so that all of them stay
well under 1 MB in git.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "n2_curve.yaml"
OUT = HERE / "data" / "n2_curve"
PARAM = "bond_length=0.9:1.7:0.2"
MAX_TOTAL_BYTES = 1_000_000


def _copy(src: h5py.Group, dst: h5py.Group) -> None:
    dst.attrs.update(dict(src.attrs))
    for name, item in src.items():
        if isinstance(item, h5py.Group):
            _copy(item, dst.create_group(name))
        elif item.shape == () or item.nbytes < 4096:
            # Small arrays stay contiguous: a chunk index costs more than gzip saves.
            dst.create_dataset(name, data=item[()])
            dst[name].attrs.update(dict(item.attrs))
        else:
            dst.create_dataset(name, data=item[()], compression="gzip", compression_opts=9, shuffle=True)
            dst[name].attrs.update(dict(item.attrs))


def repack(path: Path) -> None:
    """Rewrite a run file with every array compressed; contents unchanged."""
    tmp = path.with_name(f".{path.name}.repack")
    # libver="latest": compact object headers, a fraction of the default's per-object overhead.
    with h5py.File(path, "r") as src, h5py.File(tmp, "w", libver="latest") as dst:
        _copy(src, dst)
    tmp.replace(path)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.h5"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "sqd_suite.cli", "scan", str(CONFIG), "--param", PARAM, "--output-dir", str(OUT)],
        check=True,
    )
    files = sorted(OUT.glob("*.h5"))
    for path in files:
        repack(path)
    total = sum(p.stat().st_size for p in files)
    print(f"{len(files)} run files, {total / 1e3:.0f} kB in {OUT}")
    if total > MAX_TOTAL_BYTES:
        print(f"error: bundled runs exceed {MAX_TOTAL_BYTES / 1e6:.0f} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
