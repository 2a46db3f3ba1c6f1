"""Fixtures shared across test folders."""

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

MOLECULES = Path(__file__).parents[1] / "molecules"


def _molecule_yaml(folder: Path, base: str, name: str, sampler: dict, sqd: dict) -> Path:
    """A copy of molecules/<base> named <name>, with sampler and sqd fields overridden, written to folder."""
    data = yaml.safe_load((MOLECULES / base).read_text())
    data["sampler"].update(sampler)
    data["sqd"] = {**data.get("sqd", {}), **sqd}
    data["name"] = name
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def molecule_yaml() -> Callable[..., Path]:
    return _molecule_yaml
