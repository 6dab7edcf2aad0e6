"""The adaptation curve: fine-tune a model on 5, 10, 20, 50 annotated frames of a new camera.

The Mall camera plays the new camera for a model that never saw it (``crowd-nomall``, trained
by training/recipes/crowd-nomall.toml). For each N, N + 2 frames spread over Mall frames 1-400
are annotated with Mall's own ground truth (a points CSV,
as `streamcount annotate` writes it), prepared with `streamcount prepare points` (which holds
two of them back, drawn with its seed, for early stopping: N train), fine-tuned
with training/recipes/finetune.toml (`--init BASE`) and checked through the engine (fp32) on
frames 701-800, the original 640x480 frames: MAE, bias and the minutes the fine-tune took.
The same base with a gain from five hand counts (`streamcount calibrate`) is the row to beat.
Every step runs as a user runs it (the CLI, in a subprocess). Needs ../shared/data/mall.

    python benchmarks/adaptation_curve.py runs/crowd-nomall/best.pt > docs/adaptation-curve.json
    python benchmarks/adaptation_curve.py runs/crowd-nomall/best.pt --frames 20
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from streamcount.engine import Counter

REPO = Path(__file__).resolve().parents[1]
MALL = REPO.parent / "shared" / "data" / "mall"
POOL = (1, 400)  # frames the annotated ones come from
TEST = range(701, 801)  # frames the result is checked on


def _frame(i: int) -> Path:
    return MALL / "frames" / f"seq_{i:06d}.jpg"


def _cli(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "streamcount", *args], capture_output=True,
                       text=True, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"streamcount {' '.join(args[:2])} failed: {r.stderr.strip()[-400:]}")
    return r


def _check(model: Path, counts: np.ndarray) -> dict[str, float]:
    c = Counter(str(model), device="cpu", precision="fp32")
    err = np.array([c.count(cv2.imread(str(_frame(i)))).count - counts[i - 1] for i in TEST])
    return {"mae": round(float(np.abs(err).mean()), 2), "bias": round(float(err.mean()), 2),
            "rmse": round(float(np.sqrt((err ** 2).mean())), 2)}


def _points_set(frames: list[int], points: list[np.ndarray], folder: Path) -> Path:
    """The frames as a `prepare points` input: symlinked images and a points CSV."""
    images = folder / "images"
    images.mkdir(parents=True)
    table = folder / "points.csv"
    with table.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "x", "y"])
        for i in frames:
            name = f"seq_{i:06d}.jpg"
            (images / name).symlink_to(_frame(i))
            pts = points[i - 1]
            if not len(pts):
                w.writerow([name, "", ""])
            for x, y in pts:
                w.writerow([name, f"{x:.2f}", f"{y:.2f}"])
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path, help="checkpoint of a model that never saw Mall")
    ap.add_argument("--frames", type=int, nargs="+", default=[5, 10, 20, 50])
    ap.add_argument("--recipe", type=Path, default=REPO / "training" / "recipes" / "finetune.toml")
    ap.add_argument("--train-args", default="", help="extra `streamcount train` flags (a quick "
                    "smoke test: '--epochs 1 --samples-per-epoch 8')")
    ap.add_argument("--keep", type=Path, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    if not MALL.is_dir():
        raise SystemExit(f"Mall not found at {MALL}: see ../shared/data/README")
    import scipy.io

    from streamcount.training.datasets.mall import _ground_truth

    counts = np.asarray(scipy.io.loadmat(MALL / "mall_gt.mat")["count"]).ravel().astype(float)
    points = _ground_truth(MALL / "mall_gt.mat")
    tmp = args.keep or Path(tempfile.mkdtemp())
    tmp.mkdir(parents=True, exist_ok=True)
    base_onnx = tmp / "base.onnx"
    _cli("export", str(args.base), "--out", str(base_onnx))
    out: dict = {"base": str(args.base), "test": f"Mall frames {TEST.start}-{TEST.stop - 1}",
                 "pool": f"Mall frames {POOL[0]}-{POOL[1]}", "recipe": str(args.recipe),
                 "cpu": _cpu(), "base model": _check(base_onnx, counts), "curve": []}
    hand = np.linspace(POOL[0], POOL[1], 7)[1:-1].round().astype(int)
    table = tmp / "hand5.csv"
    table.write_text("path,count\n" + "".join(f"{_frame(i)},{int(counts[i - 1])}\n"
                                              for i in hand))
    _cli("calibrate", str(base_onnx), "--counts", str(table), "--out", str(tmp / "cal5.onnx"))
    out["gain from 5 hand counts"] = {"frames": [int(i) for i in hand],
                                      **_check(tmp / "cal5.onnx", counts)}
    for n in args.frames:
        frames = [int(i) for i in np.linspace(POOL[0], POOL[1], n + 2).round()]
        work = tmp / f"n{n}"
        pts = _points_set(frames, points, work / "src")
        val = 2 / len(frames)
        _cli("prepare", "points", "--root", str(work / "src" / "images"), "--annotations",
             str(pts), "--out", str(work / "data"), "--scale", "0.5", "--val-fraction",
             f"{val:.4f}")
        t = time.perf_counter()
        _cli("train", "--recipe", str(args.recipe), "--data", str(work / "data"), "--init",
             str(args.base), "--out", str(work / "run"), "--no-progress",
             *args.train_args.split())
        minutes = (time.perf_counter() - t) / 60
        _cli("export", str(work / "run" / "best.pt"), "--out", str(work / "model.onnx"))
        row = {"frames": n, "annotated": frames,
               "minutes": round(minutes, 1), **_check(work / "model.onnx", counts)}
        out["curve"].append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps(out, indent=1))
    return 0


def _cpu() -> str:
    import os

    from streamcount.precision import cpu_flags, cpu_model

    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16") if f in cpu_flags()]
    return f"{cpu_model()}, {os.cpu_count()} cores, {', '.join(simd)}"


if __name__ == "__main__":
    raise SystemExit(main())
