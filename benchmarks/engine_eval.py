"""A model's counts through the engine (ONNX Runtime) on the original images of a prepared split.

`streamcount evaluate` measures a checkpoint in torch on the prepared (scaled) images; this
measures what users run: the ONNX file, on the original images, at the model's own input scale
and precision. The prepared split gives the image names and their true counts; the originals
are found by name in the given folders.

    python benchmarks/engine_eval.py streamcount/models/crowd.onnx \\
        --split data/shb-half-s4/val.h5 --images ../shared/data/shanghaitech-b/train_data/images
    python benchmarks/engine_eval.py crowd --precision int8 --split data/mall-half-2b/val.h5 \\
        --images ../shared/data/mall/frames --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from streamcount.engine import Counter
from streamcount.images import IMAGE_SUFFIXES
from streamcount.training.store import _attr, _open


def _truth(split: Path) -> dict[str, int]:
    out = {}
    with _open(split) as f:
        for key in f["samples"]:
            g = f["samples"][key]
            out[Path(str(_attr(g.attrs["name"]))).stem] = int(g.attrs["count"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="bundled name or .onnx")
    ap.add_argument("--split", type=Path, required=True, help="prepared split (val.h5)")
    ap.add_argument("--images", type=Path, nargs="+", required=True,
                    help="folders holding the original images")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--input-scale", type=float,
                    help="override the model's input scale (as `streamcount count --input-scale`)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    truth = _truth(args.split)
    files = {p.stem: p for d in args.images for p in d.rglob("*")
             if p.stem in truth and p.suffix.lower() in IMAGE_SUFFIXES}
    missing = sorted(set(truth) - set(files))
    if missing:
        raise SystemExit(f"{len(missing)} images of {args.split} not found in --images "
                         f"(first: {missing[0]})")
    counter = Counter(args.model, device="cpu", precision=args.precision,
                      input_scale=args.input_scale)
    names = sorted(truth)
    pred = np.array([counter.count(cv2.imread(str(files[n]))).count for n in names])
    true = np.array([truth[n] for n in names], float)
    err = pred - true
    out = {"model": args.model, "precision": counter.precision, "split": str(args.split),
           "input_scale": counter.pre.scale,
           "n": len(names), "mae": round(float(np.abs(err).mean()), 2),
           "rmse": round(float(np.sqrt((err ** 2).mean())), 2),
           "bias": round(float(err.mean()), 2)}
    print(json.dumps(out) if args.json else
          f"{out['model']} [{out['precision']}] on {out['n']} images of {args.split}: "
          f"MAE {out['mae']}, RMSE {out['rmse']}, bias {out['bias']:+}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
