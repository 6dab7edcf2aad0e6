"""``streamcount zones``: write a template zone file for a frame or source, plus a PNG of the
frame with a coordinate grid to read polygon corners from.

Example:
    streamcount zones clip.mp4 --out zones.json     # also writes zones.png
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from streamcount.errors import InputError, OutputError

HELP = "write a template zone file (and a gridded PNG) for a frame, video or stream"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount zones``."""
    p.add_argument("source", metavar="FRAME_OR_SOURCE",
                   help="an image, video file, image folder, webcam index or stream URL")
    p.add_argument("--out", type=Path, default=Path("zones.json"),
                   help="zone file to write (.json, .yaml or .yml)")
    p.add_argument("--png", type=Path, help="gridded frame (default: OUT with .png)")
    p.add_argument("--grid", type=int, default=50, help="grid spacing in pixels (10 to 10000)")
    p.add_argument("--force", action="store_true", help="overwrite an existing zone file")


def grab_frame(spec: str) -> np.ndarray:
    """The first frame of an image, video, folder, webcam or URL (BGR uint8)."""
    import threading

    from streamcount.sources import SourceOptions, open_source

    src = open_source(spec, SourceOptions(reconnect_max=0))
    try:
        for frame in src.frames(threading.Event()):
            return frame.image
    finally:
        src.close()
    raise InputError(f"{spec}: no readable frame")


def grid_image(img: np.ndarray, step: int = 50) -> np.ndarray:
    """``img`` with a labelled coordinate grid every ``step`` pixels.

    Example:
        >>> grid_image(np.zeros((120, 160, 3), np.uint8)).shape
        (120, 160, 3)
    """
    import cv2

    out = img.copy()
    h, w = out.shape[:2]
    step = max(10, step)
    for x in range(0, w, step):
        cv2.line(out, (x, 0), (x, h - 1), (0, 255, 255), 1)
        cv2.putText(out, str(x), (x + 2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 255), 1)
    for y in range(step, h, step):
        cv2.line(out, (0, y), (w - 1, y), (0, 255, 255), 1)
        cv2.putText(out, str(y), (2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 255), 1)
    return out


def run(args: argparse.Namespace) -> int:
    """Write the template and the PNG."""
    import cv2

    from streamcount.sinks import check_writable
    from streamcount.zones import template

    if not 10 <= args.grid <= 10000:
        raise InputError(f"--grid must be from 10 to 10000 pixels, got {args.grid}")
    out: Path = args.out
    png: Path = args.png or out.with_suffix(".png")
    if out.exists() and not args.force:
        raise InputError(f"{out} exists; use --force to overwrite or choose another --out")
    check_writable(out, "zone file")
    check_writable(png, "PNG")
    from streamcount.sinks import check_outputs

    src = Path(str(args.source)).expanduser()
    check_outputs([("source", src)] if src.is_file() else [],
                  {"--out": out, "--png" if args.png else "--png (from --out)": png})
    img = grab_frame(args.source)
    h, w = img.shape[:2]
    data = template(w, h)
    if out.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=2) + "\n"
    try:
        out.write_text(text)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror}") from None
    if not cv2.imwrite(str(png), grid_image(img, args.grid)):
        raise OutputError(f"cannot write {png}; use a .png name in a writable folder")
    print(f"wrote {out} ({w}x{h} frame, zones 'left' and 'right') and {png}; edit the polygons "
          f"and use: streamcount run ... --zones {out}")
    return 0
