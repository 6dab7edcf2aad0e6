"""Where on the Mall camera a model's count goes wrong: predicted and true counts per frame in
fixed regions of the picture, per block of frames, through the engine on the original frames.

The regions (640x480 pixels of the original frames): ``palm``, the fronds of the palm tree in
the middle of the far half, behind which people sit whose heads the fronds hide (annotated
all the same); ``far-left``, the far end of the concourse beyond it, small and often seated
people; ``rest``, everything else. Frames 301-400 and 701-800 are the held-back blocks of the
`crowd` and `mall` recipes' split (``prepare mall --val-blocks 2``); the others trained them.

    python benchmarks/mall_regions.py crowd --root ../shared/data/mall
    python benchmarks/mall_regions.py runs/mall-x/model.onnx --root ../shared/data/mall --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamcount.engine import Counter

#: (x0, y0, x1, y1) in the original 640x480 frames; ``rest`` is the frame less the others.
REGIONS: dict[str, tuple[int, int, int, int]] = {
    "palm": (225, 15, 390, 150),
    "far-left": (130, 15, 225, 70),
}
#: (first, last, step): the frames read of each block (every 10th of the training blocks).
BLOCKS = ((1, 300, 10), (301, 400, 2), (401, 700, 10), (701, 800, 2))


def region_counts(density: np.ndarray, points: np.ndarray) -> dict[str, tuple[float, int]]:
    """Predicted and true count of each region, ``rest`` included.

    Example:
        >>> d = np.zeros((480, 640), np.float32); d[100, 300] = 1.0; d[400, 20] = 0.5
        >>> region_counts(d, np.array([[300.0, 100.0], [10.0, 10.0]]))
        {'palm': (1.0, 1), 'far-left': (0.0, 0), 'rest': (0.5, 1)}
    """
    out: dict[str, tuple[float, int]] = {}
    for name, (x0, y0, x1, y1) in REGIONS.items():
        inside = ((points[:, 0] >= x0) & (points[:, 0] < x1)
                  & (points[:, 1] >= y0) & (points[:, 1] < y1))
        out[name] = (float(density[y0:y1, x0:x1].sum()), int(inside.sum()))
    out["rest"] = (float(density.sum()) - sum(p for p, _ in out.values()),
                   len(points) - sum(t for _, t in out.values()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="bundled name or .onnx")
    ap.add_argument("--root", type=Path, required=True,
                    help="the Mall folder (frames/, mall_gt.mat)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from scipy.io import loadmat

    gt_file = args.root / "mall_gt.mat"
    if not gt_file.is_file():
        print(f"error: {gt_file} not found: --root must be the Mall folder "
              "(frames/, mall_gt.mat)", file=sys.stderr)
        return 2
    gt = loadmat(str(gt_file))
    if "frame" not in gt:
        print(f"error: {gt_file} has no 'frame' array: not the Mall dataset's ground truth",
              file=sys.stderr)
        return 2
    frames = gt["frame"][0]
    from streamcount.errors import StreamcountError

    try:
        counter = Counter(args.model, device="cpu")
    except StreamcountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    for first, last, step in BLOCKS:
        sums = {k: [0.0, 0.0] for k in (*REGIONS, "rest")}
        n = 0
        for i in range(first, last + 1, step):
            img = cv2.imread(str(args.root / "frames" / f"seq_{i:06d}.jpg"))
            if img is None:
                print(f"error: frame {i} not readable under {args.root / 'frames'}",
                      file=sys.stderr)
                return 2
            pts = np.asarray(frames[i - 1]["loc"][0, 0], np.float64).reshape(-1, 2) - 1.0
            for k, (p, t) in region_counts(counter.count(img).density, pts).items():
                sums[k][0] += p
                sums[k][1] += t
            n += 1
        rows.append({"frames": f"{first}-{last}", "n": n, **{
            k: {"pred": round(p / n, 3), "true": round(t / n, 3), "bias": round((p - t) / n, 3)}
            for k, (p, t) in sums.items()}})
    if args.json:
        print(json.dumps({"model": args.model, "blocks": rows}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.model}: mean per frame, predicted / true (bias)")
    for col in ("frames", "n", *REGIONS, "rest"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["frames"], str(r["n"]), *(
            f"{r[k]['pred']:.2f} / {r[k]['true']:.2f} ({r[k]['bias']:+.2f})"
            for k in (*REGIONS, "rest")))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
