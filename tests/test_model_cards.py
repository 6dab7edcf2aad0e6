"""The bundled models: each card's figures match the model's metadata and, where the data is
here, what the shipped ONNX model really does on the recipe's validation split."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from streamcount.engine import Counter
from streamcount.metadata import ModelMetadata
from streamcount.models import bundled_models

MODELS = ["cells", "mall", "crowd", "crowd-accurate"]
# name -> (prepare arguments as in the card's recipe, where the original images are)
DATA = {
    "cells": (["cells", "--root", "vgg-cells"], None),
    "mall": (["mall", "--root", "mall", "--scale", "0.5"], "mall/frames"),
    "crowd": (["shanghaitech", "--root", "shanghaitech-b", "--scale", "0.5", "--kernel", "fixed",
               "--sigma", "4"], "shanghaitech-b/train_data/images"),
}
DATA["crowd-accurate"] = DATA["crowd"]  # the same recipe data; its card's first row is B too


def card_row(name: str) -> dict[str, float]:
    """MAE, RMSE and bias of the card's 'shipped' validation row."""
    card = (Path(bundled_models()[name]).with_suffix(".md")).read_text()
    header = next(ln for ln in card.splitlines() if ln.startswith("| model | MAE"))
    row = next(ln for ln in card.splitlines() if ln.startswith("| shipped"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    vals = [c.strip() for c in row.strip("|").split("|")]
    return {k.lower(): float(re.sub(r"[^0-9.+-]", "", vals[cols.index(k)]))
            for k in ("MAE", "RMSE", "bias")}


@pytest.mark.parametrize("name", MODELS)
def test_card_matches_the_model_metadata(name: str) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(bundled_models()[name]), providers=["CPUExecutionProvider"])
    props = dict(sess.get_modelmeta().custom_metadata_map)
    meta = ModelMetadata.from_props(props)
    row = card_row(name)
    for k in ("mae", "rmse", "bias"):
        assert meta.metrics[k] == pytest.approx(row[k], abs=0.0051), k  # card: 2 decimals


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATA))
def test_shipped_model_reproduces_its_card(name: str, shared_data: Path, tmp_path: Path) -> None:
    """Prepare the recipe's data from ../shared/data and count its validation split with the
    shipped ONNX model through the engine (not the checkpoint): the card's MAE comes back."""
    for module in ("h5py", "scipy"):
        pytest.importorskip(module, reason=f"prepare needs the train extra ({module})")
    from streamcount.cli import main
    from streamcount.training.splits_io import load_split

    args, originals = DATA[name]
    args = [str(shared_data / a) if args[i - 1] == "--root" else a for i, a in enumerate(args)]
    out = tmp_path / name
    assert main(["prepare", *args, "--out", str(out)]) == 0
    val = load_split(out / "val.h5")
    counter = Counter(name, device="cpu", precision="fp32")  # the card's row is fp32
    if originals:  # the original full-size images, as a user feeds them
        import cv2

        frames = [cv2.imread(str(shared_data / originals / f"{n}.jpg")) for n in val.names]
    else:  # prepared at scale 1: the original images (RGB -> BGR)
        frames = [np.ascontiguousarray(img[..., ::-1]) for img in val.images]
    errs = [counter.count(f).count - cnt for f, cnt in zip(frames, val.counts, strict=True)]
    mae = float(np.mean(np.abs(errs)))
    assert mae == pytest.approx(card_row(name)["mae"], rel=0.10)
