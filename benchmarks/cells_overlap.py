"""How far overlapping cells limit a cell count: what the images show of them, and the count a
perfect blob counter would reach if it could not see how many cells a merged blob holds.

Two cells a few pixels apart make one blob. The first table compares such pairs with lone
cells on the brightest channel of the images (its light summed within ``--radius`` px of the
annotated point, and its peak): when a pair looks like a lone cell, the image does not say that
it holds two. The second table is a floor under the count's error for one cause alone: every
cell is found exactly, except that cells closer than T px (single linkage) merge into one blob;
the count is the number of blobs times the cells a blob holds on average (fitted on ``--fit``),
and, tighter, a quadratic in the number of blobs (denser images merge more). A network can
beat that floor only by reading what a merged blob looks like (its size, its light).

    python benchmarks/cells_overlap.py data/cells
    python benchmarks/cells_overlap.py data/cells --distances 1.5,2,3 --json

The folder is one made by ``streamcount prepare cells`` (``train.h5`` and ``val.h5``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: Nearest-neighbour distance bands (px) of the pairs compared with lone cells.
PAIR_BANDS = ((0.0, 2.0), (2.0, 3.0), (3.0, 5.0))


def merged_blobs(points: np.ndarray, distance: float) -> int:
    """Number of blobs when points closer than ``distance`` merge (single linkage).

    Example:
        >>> merged_blobs(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [9.0, 9.0]]), 1.5)
        2
        >>> merged_blobs(np.array([[0.0, 0.0], [1.0, 0.0]]), 1.0)
        2
    """
    n = len(points)
    if n < 2 or distance <= 0:
        return n
    # query_pairs takes pairs at distance <= r: just below ``distance`` keeps the bound strict
    pairs = cKDTree(points).query_pairs(np.nextafter(distance, 0.0), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return int(connected_components(graph, directed=False)[0])


def blob_floor(fit: list[np.ndarray], evaluate: list[np.ndarray],
               distance: float) -> dict[str, float]:
    """MAE of a blob counter blind to how many cells a merged blob holds.

    Args:
        fit: Point arrays (N x 2) of the images its coefficients are fitted on.
        evaluate: Point arrays of the images it is scored on.
        distance: Cells closer than this (px) merge into one blob.

    Returns:
        ``cells_per_blob`` (fitted), ``mae_ratio`` (count = blobs x cells_per_blob) and
        ``mae_quadratic`` (count = a x blobs + b x blobs^2, least squares on ``fit``).

    Example:
        >>> pts = [np.array([[0.0, 0.0], [1.0, 0.0], [9.0, 9.0]])] * 2
        >>> blob_floor(pts, pts, 2.0)["mae_ratio"]
        0.0
    """
    b_fit = np.array([merged_blobs(p, distance) for p in fit], np.float64)
    c_fit = np.array([len(p) for p in fit], np.float64)
    b_ev = np.array([merged_blobs(p, distance) for p in evaluate], np.float64)
    c_ev = np.array([len(p) for p in evaluate], np.float64)
    ratio = float(c_fit.sum() / max(b_fit.sum(), 1.0))
    coef = np.linalg.lstsq(np.stack([b_fit, b_fit**2], 1), c_fit, rcond=None)[0]
    quad = np.stack([b_ev, b_ev**2], 1) @ coef
    return {"cells_per_blob": round(ratio, 4),
            "mae_ratio": round(float(np.abs(b_ev * ratio - c_ev).mean()), 3),
            "mae_quadratic": round(float(np.abs(quad - c_ev).mean()), 3)}


def pair_look(images: list[np.ndarray], points: list[np.ndarray], radius: int = 6,
              alone: float = 14.0) -> list[dict[str, Any]]:
    """Light and peak of lone cells and of pairs, on each image's brightest channel.

    A lone cell has no other within ``alone`` px; a pair is two cells of a distance band of
    :data:`PAIR_BANDS` with no third within ``alone`` px. Each cell of a pair is measured (its
    window holds both). Cells nearer the border than ``radius`` are left out.

    Returns:
        One row a group: ``group``, ``n`` cells, mean and standard deviation of the light summed
        within ``radius`` px (``light``, ``light_sd``) and of the window's peak (``peak``,
        ``peak_sd``), and ``light_vs_lone``, the mean light over that of lone cells (None
        where a group has no cells).

    Example:
        >>> img = np.zeros((64, 64, 3), np.uint8); img[20, 20, 2] = 200
        >>> img[40, 40, 2] = 250; img[40, 41, 2] = 250
        >>> pts = np.array([[20.0, 20.0], [40.0, 40.0], [41.0, 40.0]])
        >>> [(r["group"], r["n"], r["light"]) for r in pair_look([img], [pts], radius=3)]
        [('lone', 1, 200.0), ('pair under 2 px', 2, 500.0), ('pair 2-3 px', 0, None), \
('pair 3-5 px', 0, None)]
    """
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disc = yy**2 + xx**2 <= radius**2
    names = ["lone"] + [f"pair under {hi:g} px" if lo == 0 else f"pair {lo:g}-{hi:g} px"
                        for lo, hi in PAIR_BANDS]
    feats: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for img, pts in zip(images, points, strict=True):
        if len(pts) < 3:
            continue
        plane = (img.max(axis=2) if img.ndim == 3 else img).astype(np.float64)
        h, w = plane.shape
        dist, _ = cKDTree(pts).query(pts, k=3)
        for (x, y), d in zip(np.rint(pts).astype(int), dist, strict=True):
            if not (radius <= x < w - radius and radius <= y < h - radius):
                continue
            win = plane[y - radius:y + radius + 1, x - radius:x + radius + 1]
            f = (float(win[disc].sum()), float(win.max()))
            if d[1] > alone:
                feats["lone"].append(f)
                continue
            if d[2] <= alone:
                continue
            for name, (lo, hi) in zip(names[1:], PAIR_BANDS, strict=True):
                if lo <= d[1] < hi:
                    feats[name].append(f)
    lone = np.array(feats["lone"]).reshape(-1, 2)
    lone_light = float(lone[:, 0].mean()) if len(lone) else float("nan")
    rows = []
    for name in names:
        a = np.array(feats[name]).reshape(-1, 2)
        if not len(a):
            rows.append({"group": name, "n": 0, **dict.fromkeys(
                ("light", "light_sd", "peak", "peak_sd", "light_vs_lone"))})
            continue
        rows.append({"group": name, "n": len(a), "light": round(float(a[:, 0].mean()), 1),
                     "light_sd": round(float(a[:, 0].std()), 1),
                     "peak": round(float(a[:, 1].mean()), 1),
                     "peak_sd": round(float(a[:, 1].std()), 1),
                     "light_vs_lone": round(float(a[:, 0].mean()) / lone_light, 3)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a folder made by `streamcount prepare cells`")
    ap.add_argument("--fit", default="train", help="split the blob counter is fitted on")
    ap.add_argument("--eval", default="val", help="split it is scored on (and the fit split)")
    ap.add_argument("--distances", default="2,2.5,3,4",
                    help="merge distances T (px), comma-separated, increasing")
    ap.add_argument("--radius", type=int, default=6, help="px around a cell whose light is summed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from streamcount.errors import StreamcountError
    from streamcount.training.evaluate_cli import parse_edges
    from streamcount.training.store import read_split

    try:
        distances = parse_edges(args.distances, "--distances", "2,2.5,3")
    except StreamcountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not distances:
        print("error: --distances is empty; give pixel distances such as 2,2.5,3",
              file=sys.stderr)
        return 2

    splits: dict[str, list[dict[str, Any]]] = {}
    for split in (args.fit, args.eval):
        path = args.data / f"{split}.h5"
        if not path.is_file():
            print(f"error: {path} not found: give a folder made by `streamcount prepare cells` "
                  f"(with {args.fit}.h5 and {args.eval}.h5)", file=sys.stderr)
            return 2
        try:
            splits[split] = read_split(path)
        except StreamcountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    fit = [np.asarray(s["points"], np.float64).reshape(-1, 2) for s in splits[args.fit]]
    ev = [np.asarray(s["points"], np.float64).reshape(-1, 2) for s in splits[args.eval]]
    both = [*splits[args.fit], *splits[args.eval]]
    look = pair_look([np.asarray(s["image"]) for s in both],
                     [np.asarray(s["points"], np.float64).reshape(-1, 2) for s in both],
                     radius=args.radius)
    floor = []
    for t in distances:
        on_eval, on_fit = blob_floor(fit, ev, t), blob_floor(fit, fit, t)
        floor.append({"distance": t, f"{args.eval}_cells_per_blob": on_eval["cells_per_blob"],
                      **{f"{args.eval}_{k}": on_eval[k] for k in ("mae_ratio", "mae_quadratic")},
                      **{f"{args.fit}_{k}": on_fit[k] for k in ("mae_ratio", "mae_quadratic")}})
    if args.json:
        print(json.dumps({"data": str(args.data), "fit": args.fit, "eval": args.eval,
                          "pairs": look, "floor": floor}))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t1 = Table(title=f"{args.data}: lone cells and pairs (brightest channel, {args.fit} and "
               f"{args.eval} images)")
    for col in ("group", "cells", f"light within {args.radius} px (sd)", "x lone", "peak (sd)"):
        t1.add_column(col)
    for r in look:
        if not r["n"]:
            t1.add_row(r["group"], "0", "-", "-", "-")
            continue
        t1.add_row(r["group"], str(r["n"]), f"{r['light']:.0f} ({r['light_sd']:.0f})",
                   f"{r['light_vs_lone']:.2f}", f"{r['peak']:.0f} ({r['peak_sd']:.0f})")
    console.print(t1)
    t2 = Table(title=f"blob counter blind below T px, fitted on {args.fit}: MAE")
    for col in ("T (px)", "cells a blob", f"{args.eval}: ratio", f"{args.eval}: quadratic",
                f"{args.fit}: ratio", f"{args.fit}: quadratic"):
        t2.add_column(col)
    for r in floor:
        e, f = args.eval, args.fit
        t2.add_row(f"{r['distance']:g}", f"{r[f'{e}_cells_per_blob']:.3f}",
                   f"{r[f'{e}_mae_ratio']:.2f}", f"{r[f'{e}_mae_quadratic']:.2f}",
                   f"{r[f'{f}_mae_ratio']:.2f}", f"{r[f'{f}_mae_quadratic']:.2f}")
    console.print(t2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
