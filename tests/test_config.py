"""Config validation: good files load, bad files give one line naming file, field and fix."""

from pathlib import Path

import pytest

from sqd_suite.config import config_from_dict, load_config
from sqd_suite.errors import SQDInputError

MOLECULES = sorted((Path(__file__).parents[1] / "molecules").glob("*.yaml"))


@pytest.mark.parametrize("path", MOLECULES, ids=lambda p: p.stem)
def test_bundled_molecules_load(path):
    cfg = load_config(path)
    assert cfg.molecule is not None
    assert cfg.run_name == path.stem
    assert cfg.output_path == Path("runs") / f"{path.stem}.h5"


def test_defaults_fill_every_section():
    cfg = config_from_dict({"molecule": {"atom": "H 0 0 0; H 0 0 0.74"}})
    assert cfg.sampler.kind == "exact"
    assert cfg.sqd.samples_per_batch > 0 and cfg.sqd.max_iterations > 0
    assert cfg.circuit.ansatz == "lucj"
    assert cfg.closed_loop.enabled is False


def test_variables_substitute_into_geometry():
    cfg = config_from_dict({"molecule": {"atom": "N 0 0 0; N 0 0 {r}", "variables": {"r": 1.25}}})
    assert cfg.molecule.geometry() == "N 0 0 0; N 0 0 1.25"
    moved = cfg.with_updates({"molecule.variables.r": 1.5})
    assert moved.molecule.geometry() == "N 0 0 0; N 0 0 1.5"
    assert cfg.molecule.geometry() == "N 0 0 0; N 0 0 1.25"  # frozen original


def test_moving_the_molecule_drops_a_recorded_reference():
    cfg = config_from_dict(
        {"molecule": {"atom": "N 0 0 0; N 0 0 {r}", "variables": {"r": 1.1}}, "active_space": {"reference_energy": -109.1}}
    )
    assert cfg.with_updates({"sqd.num_batches": 2}).active_space.reference_energy == -109.1
    assert cfg.with_updates({"molecule.variables.r": 1.3}).active_space.reference_energy is None


def test_xyz_file_relative_to_yaml(tmp_path):
    (tmp_path / "h2.xyz").write_text("2\nhydrogen\nH 0 0 0\nH 0 0 0.74\n")
    (tmp_path / "h2.yaml").write_text("molecule:\n  xyz: h2.xyz\n")
    cfg = load_config(tmp_path / "h2.yaml")
    assert cfg.molecule.geometry(cfg.base_dir) == "H 0 0 0; H 0 0 0.74"


def test_round_trip_through_dict():
    cfg = load_config(MOLECULES[0])
    again = config_from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()


BAD = [
    ("molecule:\n  atom: 'H 0 0 0; H 0 0 0.7'\n  bassis: sto-3g\n", "molecule.bassis: unknown field"),
    ("molecule:\n  atom: 'H 0 0 0; H 0 0 0.7'\nsqd:\n  samples_per_batch: 0\n", "sqd.samples_per_batch"),
    ("molecule:\n  atom: 'H 0 0 0; H 0 0 0.7'\nsampler:\n  kind: qpu\n", "sampler.kind"),
    ("molecule:\n  atom: 'H 0 0 0; H 0 0 0.7'\nsampler:\n  kind: file\n", "needs `path`"),
    ("molecule:\n  atom: 'H 0 0 0; H 0 0 {r}'\n", "variables"),
    ("sqd:\n  num_batches: 2\n", "molecule"),
    ("molecule:\n  atom: 'H 0 0 0'\n   basis: [\n", "YAML syntax error"),
    ("", "empty"),
    ("- just\n- a list\n", "mapping"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_files_give_one_line(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SQDInputError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_missing_file():
    with pytest.raises(SQDInputError, match="no such file"):
        load_config("does/not/exist.yaml")
