"""Count calibration: one gain that removes a count bias.

Two ways:

- **A checkpoint and its training split** (``streamcount calibrate best.pt --data DIR``): runs
  the checkpoint over its *training* split, fits ``gain = sum(true) / sum(predicted)`` and
  stores it in a copy of the checkpoint (``count_gain``); evaluation and export then divide by
  ``density_scale / gain``. The validation split is never used for the fit.
- **A model and a few hand counts from your camera** (``streamcount calibrate crowd --counts
  counts.csv``, no torch): a CSV of ``path,count`` rows (or ``--count PATH=N`` flags), the same
  fit, and a copy of the ONNX model with the gain in its metadata, which ``run`` and ``count``
  then use. A gain far from 1 says the model is out of its depth on that camera: fine-tuning
  (``streamcount train --init``) is the better fix there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamcount.errors import InputError, require
from streamcount.settings import within

HELP = "fit a count gain on the training split and store it in the checkpoint (train extra)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount calibrate``."""
    p.add_argument("checkpoint", help="best.pt from `streamcount train`, or with --counts a "
                                      "bundled model name or .onnx")
    p.add_argument("--data", type=Path, help="folder made by `streamcount prepare` (checkpoint)")
    p.add_argument("--counts", type=Path,
                   help="CSV of path,count: hand counts of frames from your camera (model)")
    p.add_argument("--count", action="append", metavar="PATH=N", default=[],
                   help="one hand count (repeatable; with or instead of --counts)")
    p.add_argument("--split", default="train", help="split to fit on (default: train)")
    p.add_argument("--out", type=Path,
                   help="calibrated copy (default: NAME-cal.pt or NAME-cal.onnx)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def fit_gain(checkpoint: Path, split_path: Path, progress: bool = True) -> tuple[float, int]:
    """``(gain, images)``: sum of true over sum of predicted counts, gain 1 excluded."""
    import numpy as np

    from streamcount.training.checkpoint import load_checkpoint
    from streamcount.training.evaluate import evaluate_checkpoint

    if load_checkpoint(checkpoint)["config"].get("count_gain", 1.0) != 1.0:
        raise InputError(f"{checkpoint} is already calibrated; calibrate the uncalibrated one")
    ev = evaluate_checkpoint(checkpoint, split_path, game_levels=0, progress=progress)
    pred = float(np.sum(ev.pred))
    if pred <= 0:
        raise InputError(f"{checkpoint} predicts no objects on {split_path}: nothing to calibrate")
    return float(np.sum(ev.true)) / pred, len(ev.pred)


#: Gains outside this range mean the model does not fit the camera: say so.
FAR_FROM_ONE = (0.67, 1.5)


def read_hand_counts(csv_path: Path | None, pairs: list[str]) -> list[tuple[Path, float]]:
    """``(image, count)`` from a ``path,count`` CSV (relative paths: from the CSV's folder)
    and ``PATH=N`` pairs.

    Raises:
        InputError: a missing file, a bad row or count (one line naming it).
    """
    import csv as csvmod

    out: list[tuple[Path, float]] = []
    rows: list[tuple[str, str, str]] = []
    if csv_path is not None:
        try:
            text = csv_path.read_text()
        except OSError as exc:
            raise InputError(f"cannot read hand counts {csv_path}: {exc.strerror}") from None
        for i, row in enumerate(csvmod.reader(text.splitlines()), 1):
            if not row or row[0].strip().lower() in ("path", "image", "file") or \
                    row[0].startswith("#"):
                continue
            if len(row) != 2:
                raise InputError(f"{csv_path} line {i}: expected path,count, got {row}")
            rows.append((row[0].strip(), row[1].strip(), f"{csv_path} line {i}"))
    for pair in pairs:
        path, sep, n = pair.rpartition("=")
        if not sep:
            raise InputError(f"--count {pair!r}: write PATH=N")
        rows.append((path, n, f"--count {pair}"))
    base = csv_path.parent if csv_path is not None else Path(".")
    for path, n, where in rows:
        try:
            value = float(n)
        except ValueError:
            raise InputError(f"{where}: count {n!r} is not a number") from None
        if not within(value, 0):
            raise InputError(f"{where}: count must be a number >= 0, got {n}")
        p = Path(path) if Path(path).is_absolute() or csv_path is None else base / path
        if not p.is_file():
            raise InputError(f"{where}: image {p} not found")
        out.append((p, value))
    if not out:
        raise InputError("no hand counts: give --counts FILE.csv (path,count rows) or --count "
                         "PATH=N")
    return out


def calibrate_model(model: str, counts: list[tuple[Path, float]], out: Path | None,
                    device: str = "auto") -> dict[str, float | str | int]:
    """Fit a count gain of an ONNX model to hand counts and write a calibrated copy.

    Returns:
        gain, before/after MAE and bias on those frames, and where the model went.
    """
    import numpy as np

    from streamcount.engine import Counter
    from streamcount.images import read_image

    counter = Counter(model, device=device, precision="fp32")
    pred = np.array([counter.count(read_image(p)).count for p, _ in counts])
    true = np.array([c for _, c in counts])
    if pred.sum() <= 0:
        raise InputError(f"{counter.name} counts nothing on these frames: nothing to calibrate; "
                         "check the frames, or fine-tune with `streamcount train --init`")
    gain = float(true.sum() / pred.sum())
    require("onnx", "train")
    import onnx

    from streamcount.exports.atomic import save_model_atomic
    from streamcount.exports.onnx import add_metadata

    src = counter.model_path
    dst = out or Path(f"{counter.name}-cal.onnx")
    proto = onnx.load(str(src))
    meta = counter.metadata
    meta.density_scale = float(meta.density_scale) / gain
    meta.metrics = {**meta.metrics, "calibration_gain": gain,
                    "calibration_frames": float(len(counts))}
    add_metadata(proto, meta)
    save_model_atomic(proto, dst)
    return {
        "model": str(dst), "gain": gain, "frames": len(counts),
        "mae_before": float(np.abs(pred - true).mean()),
        "bias_before": float((pred - true).mean()),
        "mae_after": float(np.abs(pred * gain - true).mean()),
        "bias_after": float((pred * gain - true).mean()),
    }


def run(args: argparse.Namespace) -> int:
    """Fit the gain and write the calibrated checkpoint (or model)."""
    if args.counts is not None or args.count:
        return _run_hand_counts(args)
    if args.data is None:
        raise InputError("calibrate needs --data DIR (a checkpoint's prepared data) or "
                         "--counts FILE.csv (hand counts for a model)")
    args.checkpoint = Path(args.checkpoint)
    require("torch", "train")
    from streamcount.training.checkpoint import load_checkpoint, save_checkpoint
    from streamcount.training.splits_io import split_file

    split_path = split_file(args.data, args.split)
    gain, n = fit_gain(args.checkpoint, split_path, progress=not args.json)
    out = args.out or args.checkpoint.with_name(args.checkpoint.stem + "-cal.pt")
    state = load_checkpoint(args.checkpoint)
    state["config"]["count_gain"] = gain
    state["config"]["count_gain_fit"] = {"split": args.split, "images": n}
    save_checkpoint(state, out)
    val_path = args.data / "val.h5"
    if val_path.is_file():  # the metrics stored in the checkpoint describe the calibrated model
        from streamcount.training.evaluate import evaluate_checkpoint

        ev = evaluate_checkpoint(out, val_path, game_levels=0, progress=not args.json)
        state["config"]["metrics"] = {k: v for k, v in ev.metrics.items() if k != "game0"}
        save_checkpoint(state, out)
    if args.json:
        print(json.dumps({"checkpoint": str(out), "count_gain": gain, "images": n}))
    else:
        print(f"count gain {gain:.4f} fitted on {n} {args.split} images; wrote {out}")
    return 0


def _run_hand_counts(args: argparse.Namespace) -> int:
    counts = read_hand_counts(args.counts, args.count)
    out = Path(args.out) if args.out else None
    res = calibrate_model(args.checkpoint, counts, out)
    lo, hi = FAR_FROM_ONE
    far = not lo <= float(res["gain"]) <= hi
    if args.json:
        print(json.dumps({**res, "far_from_one": far}))
        return 0
    print(f"count gain {res['gain']:.3f} from {res['frames']} hand-counted frames; wrote "
          f"{res['model']} (use it: streamcount run SOURCE --model {res['model']})")
    print(f"on those frames: MAE {res['mae_before']:.2f} -> {res['mae_after']:.2f}, bias "
          f"{res['bias_before']:+.2f} -> {res['bias_after']:+.2f} (fitted on the same frames: "
          "check on others)")
    if far:
        print(f"warning: a gain of {res['gain']:.2f} is far from 1: the model does not see this "
              "camera's objects well; fine-tuning on a few annotated frames "
              "(streamcount train --init) is the better fix")
    return 0
