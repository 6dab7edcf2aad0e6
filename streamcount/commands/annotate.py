"""``streamcount annotate``: click one point per object on each frame, in a browser.

Saves after every change to the points CSV that ``streamcount prepare points`` reads.

Example:
    streamcount frames clip.mp4 --every 10s --count 30 --out frames/
    streamcount annotate frames/                 # open http://127.0.0.1:8765/
    streamcount prepare points --root frames/ --out data/mine
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

HELP = "annotate a folder of frames with points in the browser (for `prepare points`)"
logger = logging.getLogger(__name__)
DEFAULT_ADDRESS = "8765"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount annotate``."""
    from streamcount.web import TOKEN_ENV

    p.add_argument("folder", type=Path, metavar="FRAMES_DIR",
                   help="the images to annotate (`streamcount frames` writes them)")
    p.add_argument("--csv", type=Path, metavar="FILE",
                   help="points file, read and rewritten after each change "
                        "(default: FRAMES_DIR/points.csv)")
    p.add_argument("--model", metavar="MODEL",
                   help="show this model's density faintly as a hint (key h; a bundled name "
                        "such as crowd, or an .onnx file); default: no hint")
    p.add_argument("--threads", type=int, default=1, help="inference threads for --model")
    p.add_argument("--web", default=DEFAULT_ADDRESS, metavar="[HOST:]PORT",
                   help=f"where to serve the page (default {DEFAULT_ADDRESS} on 127.0.0.1; "
                        "any other host needs --web-token)")
    p.add_argument("--web-token", default=os.environ.get(TOKEN_ENV),
                   help=f"token the browser must send (default: ${TOKEN_ENV}); open the page "
                        "once as /?token=TOKEN")


def run(args: argparse.Namespace) -> int:
    """Serve the annotator until Ctrl-C."""
    from streamcount.errors import require
    from streamcount.sinks import check_writable
    from streamcount.web import check_exposure, parse_address

    host, port = parse_address(args.web)
    check_exposure(host, args.web_token)
    require("starlette", "web")
    require("uvicorn", "web")
    from streamcount.providers import check_threads
    from streamcount.web.annotate import PointStore, annotate_app
    from streamcount.web.server import BackgroundServer, guarded

    check_threads(args.threads)
    store = PointStore(args.folder, args.csv)
    check_writable(store.csv_path, "points file")
    hints = None
    if args.model:
        from streamcount.engine import Counter
        from streamcount.web.annotate import DensityHints

        hints = DensityHints(Counter(args.model, threads=args.threads), store)
    server = BackgroundServer(guarded(annotate_app(store, hints), args.web_token), host, port,
                              "annotator")
    sock = server.bind()
    logger.info("annotating %d image(s) of %s into %s: open %s%s (Ctrl-C to stop)",
                len(store.files), store.folder, store.csv_path, server.url,
                "?token=YOUR_TOKEN" if args.web_token else "")
    import uvicorn

    try:
        uvicorn.Server(server.config()).run(sockets=[sock])
    finally:
        logger.info("%d point(s) on %d frame(s) are in %s", sum(map(len, store.points.values())),
                    len(store.points), store.csv_path)
    return 0
