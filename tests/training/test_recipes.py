"""The shipped recipe files: each parses, and each matches what its model card says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from streamcount.errors import InputError
from streamcount.training.config import TrainConfig

RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"
MODELS = Path(__file__).resolve().parents[2] / "streamcount" / "models"


@pytest.mark.parametrize("name", ["cells", "mall", "crowd", "crowd-accurate"])
def test_recipe_parses_and_names_its_model(name: str) -> None:
    cfg = TrainConfig.from_toml(RECIPES / f"{name}.toml")
    assert cfg.name == name and cfg.out == f"runs/{name}"
    assert cfg.seed == 0  # reproducible: a fixed seed
    assert (MODELS / f"{name}.onnx").exists() and (MODELS / f"{name}.md").exists()
    assert f"training/recipes/{name}.toml" in (MODELS / f"{name}.md").read_text()


def test_retired_u_net_16x2_keeps_its_recipe() -> None:
    """The U-Net-16x2 `crowd-accurate` retired in session 7 keeps the recipe it was trained with
    (ShanghaiTech B only) under another name."""
    retired = TrainConfig.from_toml(RECIPES / "crowd-accurate-unet16.toml")
    assert (retired.arch, retired.filters, retired.growth) == ("unet", 16, 2)
    assert retired.data == "data/shb-half-s4" and retired.patch == 192
    assert not (MODELS / "crowd-accurate-unet16.onnx").exists()


def test_crowd_accurate_is_crowd_with_a_wider_decoder() -> None:
    """`crowd-accurate` is `crowd` with a decoder twice as wide, trained twice as long."""
    crowd = TrainConfig.from_toml(RECIPES / "crowd.toml")
    accurate = TrainConfig.from_toml(RECIPES / "crowd-accurate.toml")
    assert (crowd.decoder_channels, accurate.decoder_channels) == (64, 128)
    assert (accurate.epochs, accurate.val_every) == (2 * crowd.epochs, 2 * crowd.val_every)
    same = dataclasses.replace(accurate, decoder_channels=64, name="crowd", out="runs/crowd",
                               epochs=crowd.epochs, val_every=crowd.val_every)
    assert same == crowd


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


@pytest.mark.parametrize(("setting", "value"), [
    ("epochs", 0), ("epochs", -3), ("batch_size", 0), ("patch", 7), ("patch", -1),
    ("samples_per_epoch", -1), ("lr", 0.0), ("lr", float("nan")), ("lr", -1e-3),
    ("weight_decay", -1.0), ("density_scale", 0.0), ("count_loss", -1.0), ("grad_clip", -1.0),
    ("grad_clip", float("inf")), ("ema_decay", 1.0), ("ema_decay", 1.5), ("seed", -1),
    ("workers", -1), ("threads", -1), ("val_every", 0), ("encoder_lr", -1.0),
    ("decoder_channels", 0), ("filters", 0), ("n_convs", 0), ("freeze_stages", -1),
])
def test_a_setting_out_of_range_is_one_clear_error(setting: str, value: float) -> None:
    with pytest.raises(InputError, match=rf"out of range: {setting} = "):
        TrainConfig(**{setting: value})


@pytest.mark.parametrize(("setting", "value"), [
    ("patch", 0), ("patch", 8), ("samples_per_epoch", 0), ("ema_decay", 0.0), ("grad_clip", 0.0),
    ("count_loss", 0.0), ("encoder_lr", 0.0), ("threads", 0), ("lr", 1),
])
def test_edge_values_that_mean_something_are_accepted(setting: str, value: float) -> None:
    assert getattr(TrainConfig(**{setting: value}), setting) == value


@pytest.mark.parametrize(("text", "named"), [
    ('epochs = "ten"\n', "epochs = 'ten' (should be a whole number)"),
    ("epochs = 2.5\n", "epochs = 2.5 (should be a whole number)"),
    ("hflip_is_not_here = 1\n", "unknown training settings: hflip_is_not_here"),
    ('[aug]\nhflip = 3\nbrightness = "x"\n', "hflip = 3 (should be true or false); brightness"),
    ("lr = true\n", "lr = True (should be a number)"),
    ("val_every = 0\n", "val_every = 0 (epochs: at least 1)"),
])
def test_a_bad_recipe_names_the_file_and_the_setting(tmp_path: Path, text: str,
                                                     named: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        TrainConfig.from_toml(path)
    assert str(path) in str(err.value) and named in str(err.value)
