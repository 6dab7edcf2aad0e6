"""Calibration alone on the Mall camera: a count gain from K hand counts, before and after.

The hand counts are Mall's own ground truth for K frames spread over frames 301-400; the gain
comes from ``streamcount calibrate MODEL --counts CSV`` (run as a user runs it) and is checked
through the engine on frames 701-800. Needs ../shared/data/mall and scipy.

    python benchmarks/calibration_mall.py crowd > docs/calibration-crowd-mall.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from streamcount.engine import Counter

MALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "mall"
TEST = range(701, 801)


def _frame(i: int) -> str:
    return str(MALL / "frames" / f"seq_{i:06d}.jpg")


def _evaluate(model: str, counts: np.ndarray) -> tuple[float, float]:
    c = Counter(model, device="cpu", precision="fp32")
    err = np.array([c.count(cv2.imread(_frame(i))).count - counts[i - 1] for i in TEST])
    return round(float(np.abs(err).mean()), 2), round(float(err.mean()), 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="bundled name or .onnx")
    ap.add_argument("--hand-counts", type=int, nargs="+", default=[1, 5, 10])
    args = ap.parse_args()
    import scipy.io

    counts = np.asarray(scipy.io.loadmat(MALL / "mall_gt.mat")["count"]).ravel().astype(float)
    mae, bias = _evaluate(args.model, counts)
    out: dict = {"model": args.model, "test": "frames 701-800",
                 "before": {"mae": mae, "bias": bias}}
    tmp = Path(tempfile.mkdtemp())
    for k in args.hand_counts:
        picks = np.linspace(301, 400, k + 2)[1:-1].round().astype(int)
        table = tmp / f"hand{k}.csv"
        table.write_text("path,count\n" + "".join(f"{_frame(i)},{int(counts[i - 1])}\n"
                                                  for i in picks))
        dst = tmp / f"cal{k}.onnx"
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "streamcount", "calibrate", args.model,
                            "--counts", str(table), "--out", str(dst), "--json"],
                           capture_output=True, text=True, check=True)
        secs = time.perf_counter() - t
        mae, bias = _evaluate(str(dst), counts)
        out[f"{k} hand counts"] = {"frames": [int(i) for i in picks],
                                   "gain": round(json.loads(r.stdout)["gain"], 3), "mae": mae,
                                   "bias": bias, "seconds": round(secs, 1)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
