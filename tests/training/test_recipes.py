"""The shipped recipe files: each parses, and each matches what its model card says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from training.config import TrainConfig

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"
MODELS = Path(__file__).resolve().parents[2] / "streamcount" / "models"


@pytest.mark.parametrize("name", ["cells", "mall", "crowd", "crowd-accurate"])
def test_recipe_parses_and_names_its_model(name: str) -> None:
    cfg = TrainConfig.from_toml(RECIPES / f"{name}.toml")
    assert cfg.name == name and cfg.out == f"runs/{name}"
    assert cfg.seed == 0  # reproducible: a fixed seed
    assert (MODELS / f"{name}.onnx").exists() and (MODELS / f"{name}.md").exists()
    assert f"training/recipes/{name}.toml" in (MODELS / f"{name}.md").read_text()


def test_crowd_accurate_is_crowd_widened() -> None:
    """The shipped crowd-accurate was trained as crowd.toml plus four flags; the file says so."""
    crowd = TrainConfig.from_toml(RECIPES / "crowd.toml")
    accurate = TrainConfig.from_toml(RECIPES / "crowd-accurate.toml")
    expected = replace(crowd, growth=2, patch=192, samples_per_epoch=384, epochs=50,
                       out="runs/crowd-accurate", name="crowd-accurate")
    assert accurate == expected
