"""The generated YAML reference is up to date with the schema."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sqd_suite.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_yaml_reference", REPO / "docs" / "gen_yaml_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_yaml_reference_is_up_to_date() -> None:
    gen = _generator()
    committed = (REPO / "docs" / "yaml-reference.md").read_text()
    assert committed == gen.render(), "docs/yaml-reference.md is stale: run python docs/gen_yaml_reference.py"
    assert gen.main(["--check"]) == 0


def test_yaml_reference_lists_every_field() -> None:
    text = _generator().render()
    for section, field in RunConfig.model_fields.items():
        if field.exclude:
            continue
        assert f"`{section}`" in text
        model = field.annotation if isinstance(field.annotation, type) else None
        for name in getattr(model, "model_fields", {}):
            assert f"| `{name}` |" in text, f"{section}.{name} missing"
    # Sections of optional type (molecule: MoleculeConfig | None) are documented too.
    assert "| `basis` |" in text and "| `samples_per_batch` |" in text
