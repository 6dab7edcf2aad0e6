"""How much a model's count moves when the same image is a little softer, resampled or compressed.

A counting model should give the same count for an image and for that image resized by 1%,
blurred by half a pixel or saved as a lower-quality JPEG: the people are the same. A model that
learned to count texture rather than people does not, and then its counts on a real camera
(softer optics, H.264 compression, another resize) are off in a way no validation on the
training images shows. This runs a checkpoint (torch, the prepared images of a split, as
`streamcount evaluate` does) on each image as prepared and on perturbed copies, and reports per
perturbation the mean predicted/true count ratio, MAE and bias.

    python benchmarks/robustness.py streamcount/models/crowd.pt --data data/shb-half-s4
    python benchmarks/robustness.py runs/crowd/best.pt --data data/mall-half-2b --json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

Perturbation = Callable[[np.ndarray], np.ndarray]


def _resize(f: float) -> Perturbation:
    def run(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        return cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_LINEAR)

    return run


def _blur(sigma: float) -> Perturbation:
    return lambda img: cv2.GaussianBlur(img, (0, 0), sigma)


def _jpeg(quality: int) -> Perturbation:
    from streamcount.training.data import jpeg_round_trip

    return lambda img: jpeg_round_trip(img, quality)


PERTURBATIONS: dict[str, Perturbation] = {
    "as prepared": lambda img: img,
    "resized x0.99": _resize(0.99),
    "resized x1.01": _resize(1.01),
    "blur 0.5 px": _blur(0.5),
    "blur 1.0 px": _blur(1.0),
    "JPEG q40": _jpeg(40),
}


def main() -> int:
    import torch

    from streamcount.training.checkpoint import effective_density_scale, model_from_checkpoint
    from streamcount.training.data import normalize_image
    from streamcount.training.splits_io import load_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="folder made by streamcount prepare")
    ap.add_argument("--split", default="val")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, cfg = model_from_checkpoint(args.checkpoint)
    data = load_split(args.data / f"{args.split}.h5")
    mean = np.asarray(cfg["mean"], np.float32)
    std = np.asarray(cfg["std"], np.float32)
    scale = effective_density_scale(cfg)
    true = np.asarray(data.counts, float)
    rows = []
    for name, fn in PERTURBATIONS.items():
        pred = []
        for img in data.images:
            x = torch.from_numpy(normalize_image(fn(img), mean, std))
            with torch.no_grad():
                pred.append(float(model(x)[0, 0].sum()) / scale)
        err = np.asarray(pred) - true
        rows.append({"perturbation": name, "ratio": round(float(np.sum(pred) / true.sum()), 3),
                     "mae": round(float(np.abs(err).mean()), 2),
                     "bias": round(float(err.mean()), 2)})
    out = {"checkpoint": str(args.checkpoint), "split": str(args.data / f"{args.split}.h5"),
           "n": len(true), "rows": rows}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['checkpoint']} on {out['n']} images of {out['split']}")
        print("| image | predicted/true | MAE | bias |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['perturbation']} | {r['ratio']:.3f} | {r['mae']} | {r['bias']:+} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
