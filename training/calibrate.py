"""Count calibration: one gain, fitted on the training split, that removes a count bias.

Density networks trained with a pixel-wise loss tend to under-count (their peaks come out a
little low). ``streamcount calibrate`` runs a checkpoint over its *training* split, fits
``gain = sum(true counts) / sum(predicted counts)`` and stores it in a copy of the checkpoint
(``count_gain`` in its config); evaluation and export then divide by ``density_scale / gain``.
The validation split is never used for the fit, so validation figures stay honest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamcount.errors import InputError, require

HELP = "fit a count gain on the training split and store it in the checkpoint (train extra)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount calibrate``."""
    p.add_argument("checkpoint", type=Path, help="best.pt from `streamcount train`")
    p.add_argument("--data", type=Path, required=True, help="folder made by `streamcount prepare`")
    p.add_argument("--split", default="train", help="split to fit on (default: train)")
    p.add_argument("--out", type=Path, help="calibrated checkpoint (default: NAME-cal.pt)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def fit_gain(checkpoint: Path, split_path: Path, progress: bool = True) -> tuple[float, int]:
    """``(gain, images)``: sum of true over sum of predicted counts, gain 1 excluded."""
    import numpy as np

    from training.checkpoint import load_checkpoint
    from training.evaluate import evaluate_checkpoint

    if load_checkpoint(checkpoint)["config"].get("count_gain", 1.0) != 1.0:
        raise InputError(f"{checkpoint} is already calibrated; calibrate the uncalibrated one")
    ev = evaluate_checkpoint(checkpoint, split_path, game_levels=0, progress=progress)
    pred = float(np.sum(ev.pred))
    if pred <= 0:
        raise InputError(f"{checkpoint} predicts no objects on {split_path}: nothing to calibrate")
    return float(np.sum(ev.true)) / pred, len(ev.pred)


def run(args: argparse.Namespace) -> int:
    """Fit the gain and write the calibrated checkpoint."""
    require("torch", "train")
    from training.checkpoint import load_checkpoint, save_checkpoint
    from training.splits_io import split_file

    split_path = split_file(args.data, args.split)
    gain, n = fit_gain(args.checkpoint, split_path, progress=not args.json)
    out = args.out or args.checkpoint.with_name(args.checkpoint.stem + "-cal.pt")
    state = load_checkpoint(args.checkpoint)
    state["config"]["count_gain"] = gain
    state["config"]["count_gain_fit"] = {"split": args.split, "images": n}
    save_checkpoint(state, out)
    val_path = args.data / "val.h5"
    if val_path.is_file():  # the metrics stored in the checkpoint describe the calibrated model
        from training.evaluate import evaluate_checkpoint

        ev = evaluate_checkpoint(out, val_path, game_levels=0, progress=not args.json)
        state["config"]["metrics"] = {k: v for k, v in ev.metrics.items() if k != "game0"}
        save_checkpoint(state, out)
    if args.json:
        print(json.dumps({"checkpoint": str(out), "count_gain": gain, "images": n}))
    else:
        print(f"count gain {gain:.4f} fitted on {n} {args.split} images; wrote {out}")
    return 0
