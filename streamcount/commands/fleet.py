"""``streamcount fleet FLEET.yaml``: many cameras over the nodes of a Ray cluster.

Needs the cluster extra (``pip install "streamcount[cluster]"``); ``run`` never imports Ray.

Example:
    streamcount fleet fleet.yaml                        # a local Ray instance on this machine
    streamcount fleet fleet.yaml --address auto         # the cluster this node belongs to
    streamcount fleet fleet.yaml --resume               # continue after the rows already written
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamcount.errors import EXIT_INTERRUPTED, OutputError, SourceError

if TYPE_CHECKING:
    from streamcount.fleet.runner import FleetRunner

HELP = "count a fleet of cameras on a Ray cluster (needs the cluster extra)"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount fleet``."""
    p.add_argument("fleet", type=Path, metavar="FLEET.yaml",
                   help="fleet file: sources (with zones and settings), sinks, cluster settings "
                        "(see docs/deployment.md)")
    p.add_argument("--address", help="Ray address (auto, host:6379, ray://host:10001); default: "
                                     "the file's 'address', else a local instance")
    p.add_argument("--num-cpus", type=int, help="CPUs of a local instance (default: all)")
    p.add_argument("--output", type=Path, help="folder for per-source CSV/JSONL (overrides file)")
    p.add_argument("--resume", action="store_true",
                   help="append to existing per-source files; file sources continue after "
                        "their last written frame")
    p.add_argument("--summary-json", type=Path, help="write per-source and per-node figures")
    p.add_argument("--no-dashboard", action="store_true", help="no live terminal dashboard")
    p.add_argument("--web", metavar="[HOST:]PORT",
                   help="live monitor in the browser: counts, zones, chart, fps, alerts (no "
                        "pictures: actors ship numbers); [web] extra; any host but 127.0.0.1 "
                        "needs --web-token")
    p.add_argument("--web-token", default=os.environ.get("STREAMCOUNT_WEB_TOKEN"),
                   help="token browsers and tools must send (default: $STREAMCOUNT_WEB_TOKEN)")
    p.add_argument("-q", "--quiet", action="store_true", help="no dashboard and no summary")


def run(args: argparse.Namespace) -> int:
    """Run the fleet; returns the exit code."""
    from streamcount.fleet.config import FleetConfig

    cfg = FleetConfig.load(args.fleet)
    if args.address:
        cfg.address = args.address
    if args.num_cpus is not None:
        cfg.num_cpus = args.num_cpus
        cfg.validate("--num-cpus")
    if args.output:
        cfg.output = args.output
    if args.summary_json is not None:
        from streamcount.sinks import check_writable

        check_writable(args.summary_json, "summary")
    web = None
    if getattr(args, "web", None) is not None:
        from streamcount.errors import require
        from streamcount.web import check_exposure, parse_address

        host, port = parse_address(args.web)
        check_exposure(host, args.web_token)
        require("starlette", "web")
        require("uvicorn", "web")
        from streamcount.web.monitor import WebSink

        web = WebSink(host, port, args.web_token,
                      {s.name: s.file_stem for s in cfg.sources})
    from streamcount.fleet.runner import FleetRunner

    runner = FleetRunner(cfg, resume=args.resume)
    if web is not None:
        web.attach(FleetView(runner))
        web.open()
        runner.shared_sinks.append(web)  # written with every row, closed by the runner
    interrupted = threading.Event()
    restore = _install_signals(runner, interrupted)
    live = None
    use_dash = not args.no_dashboard and not args.quiet and sys.stdout.isatty()

    def on_step(r: FleetRunner) -> None:
        nonlocal live
        if use_dash and live is None:
            from rich.live import Live

            from streamcount.fleet.dashboard import FleetDashboard

            dash = FleetDashboard(r.stats_map(), r.engines, model=cfg.model)
            live = Live(dash, refresh_per_second=4, redirect_stderr=True)
            live.start()

    try:
        runner.run(on_step)
    finally:
        if live is not None:
            live.refresh()
            live.stop()
        restore()
    summary = runner.summary()
    if not args.quiet:
        _print_summary(summary)
    if args.summary_json is not None:
        try:
            args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
        except OSError as exc:
            raise OutputError(f"cannot write {args.summary_json}: {exc.strerror}") from None
    if interrupted.is_set():
        return EXIT_INTERRUPTED
    failed = [n for n, s in summary["sources"].items() if s["error"]]
    if failed and len(failed) == len(summary["sources"]):
        raise SourceError(f"every source failed; last: {failed[-1]}: "
                          f"{summary['sources'][failed[-1]]['error']}")
    return 0


class FleetView:
    """What the web monitor reads of a running fleet (figures only; zones live on the actors).

    Example:
        >>> from types import SimpleNamespace
        >>> view = FleetView(SimpleNamespace(stats_map=lambda: {}, started=0.0, engines=[]))
        >>> view.stats, view.e2e_fps
        ({}, 0.0)
    """

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    @property
    def stats(self) -> dict[str, Any]:
        """Source name -> statistics."""
        return dict(self.runner.stats_map())

    @property
    def e2e_fps(self) -> float:
        """Rows written per second since the start, all sources."""
        import time

        started = self.runner.started
        n = sum(st.processed for st in self.stats.values())
        return n / (time.monotonic() - started) if started and n else 0.0

    @property
    def engine_fps(self) -> float:
        """Not measured apart on a fleet: the same as end to end."""
        return self.e2e_fps


def _install_signals(runner: FleetRunner, interrupted: threading.Event) -> Callable[[], None]:
    """First SIGINT/SIGTERM: stop requesting frames, write what is in flight; second: stop."""
    from streamcount.commands.signals import install_stop_signals

    def now() -> None:
        raise KeyboardInterrupt

    return install_stop_signals(interrupted, runner.stop, now,
                                "writing the frames in flight, then stopping")


def _print_summary(summary: dict, console: Any = None) -> None:
    """The end-of-run table: whole source names at any width (a long name folds, never cut)."""
    from rich.console import Console
    from rich.table import Table

    names = list(summary["sources"])
    t = Table(title="fleet summary", title_justify="left", pad_edge=False)
    t.add_column("source", overflow="fold",
                 min_width=min(max((len(n) for n in names), default=6), 32))
    for col in ("host", "frames", "last", "skipped", "restarts", "mean", "state"):
        t.add_column(col, justify="left" if col in ("host", "state") else "right",
                     overflow="fold")
    for name, s in summary["sources"].items():
        t.add_row(name, s["host"], str(s["frames"]), str(s["last_frame"]), str(s["skipped"]),
                  str(s["restarts"]), f"{s['mean_count']:.2f}", s["error"] or s["state"])
    con = console or Console()
    con.print(t)
    for n in summary["nodes"]:
        con.print(f"node {n['host']}: {n['provider']}, {n['frames']} frames in {n['calls']} "
                  f"engine calls (mean batch {n['mean_batch'] or 0:.1f}, "
                  f"{n['engine_ms'] or 0:.1f} ms a call)")
    con.print(f"{summary['frames']} frames in {summary['seconds']:.1f} s "
              f"({summary['fps']:.1f} fps, all sources; 'last': last frame index, "
              "'mean': mean count)")
