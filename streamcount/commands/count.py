"""``streamcount count``: count objects in images, folders and globs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path

import numpy as np

from streamcount.commands.signals import install_stop_signals
from streamcount.errors import EXIT_INTERRUPTED, InputError, OutputError
from streamcount.models import DEFAULT_MODEL, model_help
from streamcount.precision import PRECISIONS

HELP = "count objects in images, folders or globs with a bundled or exported model"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount count``."""
    p.add_argument("paths", nargs="+", metavar="PATH", help="images, folders or glob patterns")
    p.add_argument("--model", default=DEFAULT_MODEL, help=model_help())
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    p.add_argument("--threads", type=int, default=0, help="inference threads (0: all cores)")
    p.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                   help="auto: int8 where the CPU has VNNI/AMX and the model ships an int8 "
                        "variant, else fp32")
    p.add_argument("--input-scale", type=float, metavar="S",
                   help="resize images by S before the model (default: the model's own)")
    p.add_argument("--gain", type=float, default=1.0,
                   help="multiply every count by this (`streamcount calibrate` fits one)")
    p.add_argument("--batch", type=int, default=1, help="images per engine call (same sizes)")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--zones", type=Path, help="zone file (JSON/YAML): counts per zone")
    p.add_argument("--save-density", type=Path, metavar="DIR",
                   help="write heatmap overlays (PNG) into DIR")


def run(args: argparse.Namespace) -> int:
    """Count each image; a table (or JSON lines) and the total."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from streamcount.engine import Counter
    from streamcount.images import expand_paths, iter_images
    from streamcount.zones import ZoneSet, measure

    counter = Counter(args.model, device=args.device, threads=args.threads,
                      precision=args.precision, input_scale=args.input_scale,
                      gain=args.gain)
    paths = expand_paths(args.paths)
    zones = ZoneSet.load(args.zones) if args.zones else ZoneSet.empty()
    overlay = None
    if args.save_density:
        from streamcount.overlay import Overlay

        try:
            args.save_density.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {args.save_density}: {exc.strerror}") from None
        overlay = Overlay()
    err = Console(stderr=True)
    table = Table(title=f"{counter.name} ({counter.device})")
    table.add_column("image")
    table.add_column("count", justify="right")
    for name in zones.names:
        table.add_column(name, justify="right")
    total, n_ok, n_bad = 0.0, 0, 0
    first_bad = ""
    pending: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        nonlocal total, n_ok
        results = counter.count_batch([img for _, img in pending])
        for (path, img), res in zip(pending, results, strict=True):
            count, zc, density = measure(zones, res.density, res.count)
            total += count
            n_ok += 1
            if args.json:
                rec = {"path": str(path), "count": round(count, 3)}
                if zc:
                    rec["zones"] = {k: round(v, 3) for k, v in zc.items()}
                print(json.dumps(rec), flush=True)
            else:
                table.add_row(str(path), f"{count:.1f}", *(f"{v:.1f}" for v in zc.values()))
            if overlay is not None:
                import cv2

                from streamcount.preprocess import to_bgr8

                out = args.save_density / f"{path.stem}_density.png"
                vis = overlay.draw(to_bgr8(img, 3), density, count, zones=zones)
                if not cv2.imwrite(str(out), vis):
                    raise OutputError(f"cannot write {out}")
        pending.clear()

    interrupted = threading.Event()
    stopped_now = threading.Event()  # a second Ctrl-C, raised wherever the main thread was

    def stop_now() -> None:
        stopped_now.set()
        raise KeyboardInterrupt

    restore = install_stop_signals(interrupted, first=lambda: None, second=stop_now,
                                   what="finishing the current image, then stopping")
    progress = Progress(TextColumn("counting"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
                        disable=len(paths) < 2)
    try:
        with progress:
            task = progress.add_task("count", total=len(paths))
            for path, img in iter_images(paths):
                if interrupted.is_set():  # checked between images: no library is cut mid-call
                    break
                if isinstance(img, InputError):
                    n_bad += 1
                    first_bad = first_bad or img.message
                    if args.json:
                        print(json.dumps({"path": str(path), "error": img.message}), flush=True)
                    else:
                        progress.console.print(f"skipped: {img.message}", markup=False)
                    progress.advance(task)
                    continue
                if pending and pending[0][1].shape != img.shape:
                    flush()
                pending.append((path, img))
                if len(pending) >= max(1, args.batch):
                    flush()
                progress.advance(task)
            if pending:
                flush()
    except KeyboardInterrupt:  # a second Ctrl-C: keep what was counted, then exit 130
        interrupted.set()
    except Exception:
        if not stopped_now.is_set():
            raise
        interrupted.set()  # a library turned the second Ctrl-C into its own error
    finally:
        restore()
    if not args.json:
        Console().print(table)
        Console().print(f"[bold]{n_ok}[/] images, total count [bold]{total:.1f}[/]"
                        + (f", {n_bad} unreadable" if n_bad else ""))
    if interrupted.is_set():
        print(f"interrupted after {n_ok + n_bad} of {len(paths)} images", file=sys.stderr)
        return EXIT_INTERRUPTED
    if n_ok == 0:
        print(f"error: none of the {n_bad} image(s) could be read; first: {first_bad}",
              file=sys.stderr)
        return InputError.exit_code
    return 0
