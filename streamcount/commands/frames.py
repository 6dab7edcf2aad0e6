"""``streamcount frames``: grab frames from a source to annotate (``streamcount annotate``).

Example:
    streamcount frames clip.mp4 --every 10s --count 30 --out frames/
    streamcount frames rtsp://cam/stream --every 1m --count 60 --out frames/
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from streamcount.errors import InputError, OutputError

HELP = "save frames of a video, stream or webcam every N seconds (to annotate them)"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount frames``."""
    p.add_argument("source", metavar="SOURCE",
                   help="video file, image folder, webcam index or stream URL")
    p.add_argument("--every", default="10s", metavar="DURATION",
                   help="time between saved frames: stream time for files, wall time for "
                        "live sources (e.g. 500ms, 10s, 1m; default 10s)")
    p.add_argument("--count", type=int, default=30, help="frames to save (default 30)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the JPEGs (created)")
    p.add_argument("--prefix", default="frame", help="file names PREFIX_0001.jpg... ")


def run(args: argparse.Namespace) -> int:
    """Save the frames; one line per problem."""
    import threading
    import time

    import cv2

    from streamcount.sinks.aggregate import parse_duration
    from streamcount.sources import SourceOptions, open_source

    every = parse_duration(args.every)
    if not 1 <= args.count <= 100_000:
        raise InputError(f"--count must be from 1 to 100000, got {args.count}")
    if not args.prefix or any(c in args.prefix for c in "/\\") or not args.prefix.isprintable():
        raise InputError("--prefix must be a plain file-name prefix (no slashes)")
    out: Path = args.out
    names = [out / f"{args.prefix}_{i + 1:04d}.jpg" for i in range(args.count)]
    taken = [p for p in names if p.exists()]
    if taken:
        raise OutputError(f"{taken[0]} exists: choose another --out or --prefix")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}") from None
    src = open_source(args.source, SourceOptions(reconnect_max=2))
    stop = threading.Event()
    saved = 0
    next_t: float | None = None
    try:
        for frame in src.frames(stop):
            t = time.monotonic() if src.live else frame.stream_time
            if next_t is not None and t < next_t - 1e-9:
                continue
            next_t = t + every
            path = names[saved]
            if not cv2.imwrite(str(path), frame.image, [int(cv2.IMWRITE_JPEG_QUALITY), 95]):
                raise OutputError(f"cannot write {path}")
            saved += 1
            logger.info("saved %s (%.1f s)", path, frame.stream_time)
            if saved >= args.count:
                break
    finally:
        stop.set()
        src.close()
    if not saved:
        raise InputError(f"{args.source}: no readable frame")
    if saved < args.count:
        logger.warning("the source ended after %d of %d frames (--every %s)", saved, args.count,
                       args.every)
    logger.info("%d frame(s) in %s: annotate them with `streamcount annotate %s`", saved, out,
                out)
    return 0
