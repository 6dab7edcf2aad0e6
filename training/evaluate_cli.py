"""``streamcount evaluate``: metrics of a checkpoint on a prepared split."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from streamcount.errors import InputError, require

HELP = "MAE, RMSE, bias and GAME of a checkpoint on a prepared split (needs the train extra)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount evaluate``."""
    p.add_argument("checkpoint", type=Path, help="best.pt or last.pt from `streamcount train`")
    p.add_argument("--data", type=Path, required=True, help="folder made by `streamcount prepare`")
    p.add_argument("--split", default="val", help="split to evaluate (train, val, test)")
    p.add_argument("--plot", type=Path, help="write the true-vs-predicted figure (PNG)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--game-levels", type=int, default=3, help="GAME(0..L)")
    p.add_argument("--bands", type=int, default=0, metavar="N",
                   help="also the bias in N horizontal bands, top to bottom (far to near)")
    p.add_argument("--grid", type=int, default=0, metavar="N",
                   help="also the true count and the bias in each cell of an NxN grid, "
                        "over all images and per block of frames")
    p.add_argument("--count-bins", default="", metavar="EDGES",
                   help="also MAE, RMSE and bias of the images grouped by true count at these "
                        "comma-separated edges, e.g. 100,200 (where a crowd model's error sits)")
    p.add_argument("--neighbours", default="", metavar="EDGES",
                   help="also the predicted count per annotated object, the objects grouped by "
                        "the distance to their nearest neighbour at these comma-separated edges "
                        "in pixels of the prepared images, e.g. 2,4,8 (whether touching or "
                        "overlapping objects are counted short)")
    p.add_argument("--views", type=int, default=1,  # checked against VIEW_SETS
                   help="test-time views, densities averaged: 1 (as the engine counts), 2 (with "
                        "the left-right mirror), 4 (the four flips), 8 (and the quarter turns); "
                        "N times the compute")
    p.add_argument("--worst", type=int, default=0, metavar="N",
                   help="also the N images with the largest errors and how well the predicted "
                        "density lies on the annotations (near 0: annotations that do not "
                        "match their image; look at them)")


def run(args: argparse.Namespace) -> int:
    """Evaluate and print a table (or JSON)."""
    require("torch", "train")
    require("h5py", "train")
    from rich.console import Console
    from rich.table import Table

    from streamcount.training.evaluate import (
        check_views,
        evaluate_checkpoint,
        plot_evaluation,
        summary_row,
        worst_images,
    )
    from streamcount.training.splits_io import split_file

    if not 0 <= args.bands <= 20:
        raise InputError(f"--bands must be from 0 to 20, got {args.bands}")
    if not 0 <= args.grid <= 8:
        raise InputError(f"--grid must be from 0 to 8, got {args.grid}")
    if not 0 <= args.worst <= 1000:
        raise InputError(f"--worst must be from 0 to 1000 images, got {args.worst}")
    if not 0 <= args.game_levels <= 6:
        raise InputError(f"--game-levels must be from 0 to 6, got {args.game_levels}")
    check_views(args.views)
    edges = parse_edges(args.count_bins, "--count-bins", "100,200")
    near_edges = parse_edges(args.neighbours, "--neighbours", "2,4,8")
    split_path = split_file(args.data, args.split)
    ev = evaluate_checkpoint(
        args.checkpoint, split_path, game_levels=args.game_levels, progress=not args.json,
        bands=args.bands, grid=args.grid, count_edges=edges, neighbour_edges=near_edges,
        views=args.views,
    )
    if args.plot:
        plot_evaluation(ev, args.plot, title=f"{args.checkpoint} on {split_path}")
    row = summary_row(ev)
    worst = worst_images(ev, args.worst)
    if args.json:
        blocks = {"blocks": ev.blocks} if ev.blocks else {}
        if ev.bands:
            blocks["bands"] = ev.bands
        if ev.grid:
            blocks["grid"] = ev.grid
        if ev.by_count:  # the open last group and empty groups' metrics are null
            blocks["by_count"] = [_strict(g) for g in ev.by_count]
        if ev.by_neighbour:  # the background row's bounds and per-object figures are null
            blocks["by_neighbour"] = [_strict(g) for g in ev.by_neighbour]
        if worst:  # a flat map's agreement is null
            blocks["worst"] = [_strict(w) for w in worst]
        print(json.dumps({"checkpoint": str(args.checkpoint), "split": str(split_path),
                          "views": args.views, **row, **blocks}))
        return 0
    table = Table(title=f"{args.checkpoint} on {split_path}"
                  + (f", {args.views} views averaged" if args.views > 1 else ""))
    for key in row:
        table.add_column(key)
    table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)
    if ev.blocks:  # video splits held out in several blocks: each block's figures
        bt = Table(title="per block of frames")
        for col in ("frames", "n", "MAE", "RMSE", "bias"):
            bt.add_column(col)
        for label, m in ev.blocks.items():
            bt.add_row(label, str(m["n"]), f"{m['mae']:.3f}", f"{m['rmse']:.3f}",
                       f"{m['bias']:+.3f}")
        Console().print(bt)
    if ev.bands:
        bt = Table(title="mean count per horizontal band (top = far)")
        for col in ("band", "true", "predicted", "bias"):
            bt.add_column(col)
        for b in ev.bands:
            bt.add_row(f"{b['band'] + 1}/{len(ev.bands)}", f"{b['true']:.2f}", f"{b['pred']:.2f}",
                       f"{b['bias']:+.2f}")
        Console().print(bt)
    if ev.by_count:
        ct = Table(title="images grouped by true count")
        for col in ("true count", "n", "MAE", "RMSE", "bias", "share of error"):
            ct.add_column(col)
        for g in ev.by_count:
            rng = (f">= {g['low']:g}" if g["high"] == float("inf")
                   else f"{g['low']:g} to < {g['high']:g}")
            if g["n"] == 0:
                ct.add_row(rng, "0", "-", "-", "-", "-")
                continue
            ct.add_row(rng, str(g["n"]), f"{g['mae']:.2f}", f"{g['rmse']:.2f}",
                       f"{g['bias']:+.2f}", f"{g['share']:.0%}")
        Console().print(ct)
    if ev.by_neighbour:
        nt = Table(title="annotated objects grouped by the distance to their nearest neighbour")
        for col in ("nearest neighbour (px)", "objects an image", "predicted per object",
                    "annotated per object", "error an image"):
            nt.add_column(col)
        for g in ev.by_neighbour:
            if not math.isfinite(g["low"]):
                nt.add_row("background", "-", "-", "-", f"{g['error']:+.2f}")
                continue
            rng = (f">= {g['low']:g}" if g["high"] == float("inf")
                   else f"{g['low']:g} to < {g['high']:g}")
            per = (f"{g['predicted']:.3f}", f"{g['annotated']:.3f}") if g["objects"] else \
                ("-", "-")
            nt.add_row(rng, f"{g['objects']:.1f}", *per, f"{g['error']:+.2f}")
        Console().print(nt)
    if worst:
        wt = Table(title=f"the {len(worst)} largest errors")
        for col in ("image", "true", "predicted", "error", "agreement"):
            wt.add_column(col)
        for w in worst:
            wt.add_row(w["name"], f"{w['true']:.1f}", f"{w['pred']:.1f}", f"{w['error']:+.1f}",
                       f"{w['agreement']:.2f}")
        Console().print(wt)
    for label, cells in ev.grid.items():
        gt = Table(title=f"{label}: mean true count / bias per cell (top row = far)")
        gt.add_column("row")
        for j in range(len(cells["true"])):
            gt.add_column(f"column {j + 1}")
        for i, (trow, brow) in enumerate(zip(cells["true"], cells["bias"], strict=True)):
            gt.add_row(str(i + 1), *(f"{t:.2f} / {b:+.2f}" for t, b in zip(trow, brow,
                                                                           strict=True)))
        Console().print(gt)
    if args.plot:
        Console().print(f"plot written to {args.plot}")
    return 0


def _strict(row: dict) -> dict:
    """``row`` for strict JSON: infinite and NaN numbers become null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in row.items()}


def parse_edges(text: str, flag: str, example: str) -> list[float]:
    """``"100,200"`` -> ``[100.0, 200.0]``; one clear error naming ``flag`` for anything else.

    Example:
        >>> parse_edges("2,2.5,3", "--distances", "2,2.5,3")
        [2.0, 2.5, 3.0]
    """
    if not text.strip():
        return []
    try:
        edges = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(
            f"{flag} takes comma-separated numbers such as {example}, got {text!r}"
        ) from None
    if any(not e > 0 or e == float("inf") for e in edges) or edges != sorted(set(edges)):
        raise InputError(f"{flag} edges must be positive, finite and increasing, got {text!r}")
    return edges
