"""The shipped recipe files: each parses, and each matches what its model card says."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamcount.training.config import TrainConfig

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"
MODELS = Path(__file__).resolve().parents[2] / "streamcount" / "models"


@pytest.mark.parametrize("name", ["cells", "mall", "crowd"])
def test_recipe_parses_and_names_its_model(name: str) -> None:
    cfg = TrainConfig.from_toml(RECIPES / f"{name}.toml")
    assert cfg.name == name and cfg.out == f"runs/{name}"
    assert cfg.seed == 0  # reproducible: a fixed seed
    assert (MODELS / f"{name}.onnx").exists() and (MODELS / f"{name}.md").exists()
    assert f"training/recipes/{name}.toml" in (MODELS / f"{name}.md").read_text()


def test_crowd_accurate_is_the_wide_u_net_on_shanghaitech_b() -> None:
    """The retired crowd-accurate keeps the recipe it was trained with (U-Net-16x2, ShanghaiTech B
    only), and no longer ships."""
    accurate = TrainConfig.from_toml(RECIPES / "crowd-accurate.toml")
    assert (accurate.arch, accurate.filters, accurate.growth) == ("unet", 16, 2)
    assert accurate.data == "data/shb-half-s4" and accurate.patch == 192
    assert not (MODELS / "crowd-accurate.onnx").exists()


def test_crowd_and_mall_are_the_pretrained_u_net_without_decoder_norm() -> None:
    crowd = TrainConfig.from_toml(RECIPES / "crowd.toml")
    mall = TrainConfig.from_toml(RECIPES / "mall-effl0.toml")  # tried, not shipped
    for cfg in (crowd, mall):
        assert cfg.arch == "unet_effl0" and cfg.decoder_norm == "none" and cfg.frozen_bn
    assert len(crowd.data_dirs()) == 3 and mall.init == "runs/crowd/best.pt"


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_recipe_parses(path: Path) -> None:
    cfg = TrainConfig.from_toml(path)
    assert cfg.arch and cfg.epochs > 0 and cfg.seed == 0


def test_finetune_recipe_starts_from_the_bundled_crowd(blob_dataset: Path, tmp_path: Path) -> None:
    """The few-frame recipe as a user runs it: --init crowd, early stages fixed, best kept."""
    from dataclasses import replace

    import torch

    from streamcount.training.checkpoint import load_checkpoint, resolve_init
    from streamcount.training.trainer import Trainer

    cfg = TrainConfig.from_toml(RECIPES / "finetune.toml")
    assert cfg.init == "crowd" and cfg.freeze_stages == 2 and cfg.frozen_bn
    cfg = replace(cfg, data=str(blob_dataset), out=str(tmp_path), epochs=2, samples_per_epoch=8,
                  patch=64, val_every=1)
    t = Trainer(cfg, progress=False)
    t.fit()
    start = load_checkpoint(resolve_init("crowd"))["model"]
    tuned = load_checkpoint(tmp_path / "best.pt")["model"]
    stem = [k for k in tuned if k.startswith("net.encoder._conv_stem")]
    head = [k for k in tuned if k.startswith("net.decoder.head")]
    assert stem and head
    assert all(torch.allclose(tuned[k].float(), start[k].float(), atol=1e-3) for k in stem)
    assert any(not torch.allclose(tuned[k].float(), start[k].float(), atol=1e-4) for k in head)
