"""The file sampler: counts JSON, text lists and HDF5 round trips; width errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from sqd_suite.config import SamplerConfig
from sqd_suite.errors import SQDInputError
from sqd_suite.sampling import Samples, sample, sample_file


@pytest.fixture()
def original(lih_ansatz) -> Samples:
    return sample(lih_ansatz, 20_000, SamplerConfig(global_depolarizing=0.5), seed=2)


def _same(a: Samples, b: Samples) -> None:
    np.testing.assert_array_equal(a.bitstrings, b.bitstrings)
    np.testing.assert_array_equal(a.counts, b.counts)


def test_counts_json_round_trip(tmp_path, lih_ansatz, original):
    path = tmp_path / "counts.json"
    path.write_text(json.dumps(original.to_counts()))
    replay = sample(lih_ansatz, 0, SamplerConfig(kind="file", path=path), seed=None)
    _same(replay, original)
    assert replay.metadata["format"] == "counts_json" and replay.metadata["sampler"] == "file"


def test_text_list_round_trip_with_relative_path(tmp_path, lih_ansatz, original):
    lines = [k for k, n in original.to_counts().items() for _ in range(n)]
    (tmp_path / "shots.txt").write_text("# one bitstring per line\n" + "\n".join(lines[::-1]) + "\n\n")
    replay = sample(lih_ansatz, 0, SamplerConfig(kind="file", path="shots.txt"), seed=None, base_dir=tmp_path)
    _same(replay, original)


@pytest.mark.parametrize("layout", ["bool_rows", "uint8_rows", "strings", "samples_group"])
def test_hdf5_round_trip(tmp_path, lih_ansatz, original, layout):
    path = tmp_path / "shots.h5"
    with h5py.File(path, "w") as f:
        if layout == "bool_rows":
            f["data"] = original.to_shot_matrix()
        elif layout == "uint8_rows":
            f["data"] = original.to_shot_matrix().astype(np.uint8)
        elif layout == "strings":
            f["data"] = np.array([k.encode() for k, n in original.to_counts().items() for _ in range(n)])
        else:
            original.save_to_h5(f.create_group("data"))
    replay = sample_file(lih_ansatz.norb, SamplerConfig(kind="file", path=f"{path}:data"))
    _same(replay, original)


def test_wrong_width_is_one_line_naming_the_field(tmp_path, lih_ansatz):
    path = tmp_path / "counts.json"
    path.write_text(json.dumps({"0101": 3, "0011": 1}))
    with pytest.raises(SQDInputError) as err:
        sample(lih_ansatz, 0, SamplerConfig(kind="file", path=path), seed=None)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("sampler.path:") and "4 bits" in msg and "expected 12" in msg and "fix:" in msg
    h5 = tmp_path / "rows.h5"
    with h5py.File(h5, "w") as f:
        f["data"] = np.zeros((5, 10), dtype=bool)
    with pytest.raises(SQDInputError, match="10 bits, expected 12"):
        sample_file(6, SamplerConfig(kind="file", path=f"{h5}:data"))


def test_bad_files_are_input_errors(tmp_path):
    with pytest.raises(SQDInputError, match="no such file"):
        sample_file(2, SamplerConfig(kind="file", path=tmp_path / "missing.json"))
    (tmp_path / "x.txt").write_text("0101\n01a1\n")
    with pytest.raises(SQDInputError, match="not a bitstring"):
        sample_file(2, SamplerConfig(kind="file", path=tmp_path / "x.txt"))
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f["shots"] = np.zeros((2, 4), dtype=bool)
    with pytest.raises(SQDInputError, match="top-level entries: shots"):
        sample_file(2, SamplerConfig(kind="file", path=tmp_path / "y.h5"))
