"""``streamcount run``: count people in video streams, files and image folders, live.

Example:
    streamcount run                                   # the bundled example clip
    streamcount run clip.mp4 --csv counts.csv --video annotated.mp4
    streamcount run 0 rtsp://user:pass@cam/stream --zones zones.json --smooth median:15
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from streamcount import defaults
from streamcount.errors import EXIT_INTERRUPTED, InputError, OutputError, SourceError
from streamcount.models import model_help
from streamcount.precision import PRECISIONS
from streamcount.settings import within
from streamcount.sinks import table
from streamcount.sinks.metrics import METRICS_TOKEN_ENV

if TYPE_CHECKING:  # imported where used: a CLI start-up stays light
    from streamcount.alerts import AlertEvent
    from streamcount.engine import Counter
    from streamcount.pipeline import Pipeline
    from streamcount.zones import ZoneSet

HELP = "count live: webcams, video files, RTSP/HTTP streams, image folders (dashboard, outputs)"
logger = logging.getLogger(__name__)


def example_clip() -> Path:
    """The bundled example clip used when no SOURCE is given."""
    import streamcount

    return Path(streamcount.__file__).resolve().parents[1] / "examples" / "pets2009_s2l1.mp4"


@dataclass
class RunConfig:
    """Everything ``streamcount run`` does, filled from the CLI flags (defaults = flag defaults)."""

    sources: list[str] = field(default_factory=list)
    model: str = defaults.MODEL
    device: str = defaults.DEVICE
    threads: int = defaults.THREADS
    precision: str = defaults.PRECISION
    input_scale: float | None = None
    gain: float = 1.0
    mode: str | None = None
    realtime: bool = False
    batch: int = defaults.BATCH
    max_fps: float | None = None
    stride: int = defaults.STRIDE
    max_frames: int | None = None
    fps: float | None = None
    zones: Path | None = None
    smooth: str = defaults.SMOOTH
    events: Path | None = None
    on_alert: str | None = None
    alert_shell: bool = False
    outputs: dict[str, Path] = field(default_factory=dict)
    snapshot_every: int | None = None
    snapshot_dir: Path = Path("snapshots")
    aggregate: str | None = None
    summary_json: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = defaults.METRICS_HOST
    metrics_token: str | None = None
    web: str | None = None
    web_token: str | None = None
    web_zones: Path | None = None
    web_fps: float = defaults.WEB_FPS
    show: bool = False
    dashboard: bool = True
    quiet: bool = False
    reconnect_max: int = defaults.RECONNECT_MAX
    reconnect_backoff: float = defaults.RECONNECT_BACKOFF_S
    timeout: float = defaults.OPEN_TIMEOUT_S

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunConfig:
        """Build from parsed flags."""
        names = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in vars(args).items() if k in names}
        kw["dashboard"] = not args.no_dashboard
        kw["outputs"] = {k: getattr(args, k) for k in table.outputs()
                         if getattr(args, k, None) is not None}
        return cls(**kw)

    def output(self, key: str) -> Path | None:
        """The path of a file output (a key of :func:`streamcount.sinks.table.outputs`)."""
        return self.outputs.get(key)

    @property
    def writes_stdout(self) -> bool:
        """True when an output goes to standard output (``-``): no dashboard there."""
        names = {"-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"}
        return any(str(p) in names for p in self.outputs.values())

    def validate(self) -> None:
        """Raise :class:`InputError` for impossible combinations, one line each."""
        if not 1 <= self.batch <= 64:
            raise InputError(f"--batch must be from 1 to 64, got {self.batch} (the queue holds "
                             "2 x batch frames per source)")
        if self.fps is not None and not within(self.fps, 0, 1000, above=True):
            raise InputError(f"--fps must be a frame rate above 0 and at most 1000, got "
                             f"{self.fps}")
        if self.stride < 1:
            raise InputError(f"--stride must be >= 1, got {self.stride}")
        if self.max_fps is not None and not within(self.max_fps, 0.001, 10000):
            raise InputError(f"--max-fps must be from 0.001 to 10000, got {self.max_fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"--max-frames must be >= 1, got {self.max_frames}")
        if self.reconnect_max < 0:
            raise InputError("--reconnect-max must be >= 0")
        if not within(self.timeout, 0, 3600, above=True):
            raise InputError(f"--timeout must be from above 0 to 3600 seconds, got {self.timeout}")
        if not within(self.reconnect_backoff, 0, 3600):
            raise InputError(f"--reconnect-backoff must be from 0 to 3600 seconds, got "
                             f"{self.reconnect_backoff}")
        if self.snapshot_every is not None and self.snapshot_every < 1:
            raise InputError(f"--snapshot-every must be >= 1 frame, got {self.snapshot_every}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise InputError(f"--metrics-port must be from 0 to 65535, got {self.metrics_port}")
        from streamcount.preprocess import check_input_scale
        from streamcount.providers import check_threads

        check_input_scale(self.input_scale)
        check_threads(self.threads)
        unknown = sorted(set(self.outputs) - set(table.outputs()))
        if unknown:
            raise InputError(f"unknown output {unknown[0]!r}; known: "
                             f"{', '.join(table.outputs())}")
        piped = [o.flag for k, o in table.outputs().items()
                 if str(self.outputs.get(k)) == "-"]
        stdout_ok = {o.flag for o in table.outputs().values() if o.stdout}
        for name in [*(f for f in piped if f not in stdout_ok),
                     *(f for f, p in (("--events", self.events),
                                      ("--summary-json", self.summary_json)) if str(p) == "-")]:
            raise InputError(f"{name} cannot write to standard output: give a file name")
        if len(piped) > 1:
            raise InputError(f"{' and '.join(piped)} both write to standard output ('-'): "
                             "send one of them to a file")
        csv = self.output("csv")
        if self.aggregate and not self.output("aggregate_out"):
            if csv is None or str(csv) == "-":
                raise InputError("--aggregate needs --aggregate-out FILE.csv for its rows "
                                 "(or --csv FILE, beside which they go)")
            self.outputs["aggregate_out"] = csv.with_name(f"{csv.stem}_aggregate.csv")
        if self.output("aggregate_out") and not self.aggregate:
            self.aggregate = defaults.AGGREGATE_WINDOW


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount run``."""
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="webcam index (0), video file, rtsp:// or http(s):// URL, image folder "
                        "or glob; several run side by side (default: the bundled example clip)")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=defaults.MODEL, help=model_help())
    g.add_argument("--device", default=defaults.DEVICE, choices=["auto", "cpu", "cuda", "tensorrt"])
    g.add_argument("--threads", type=int, default=defaults.THREADS,
                   help="inference threads (0: all cores)")
    g.add_argument("--precision", default=defaults.PRECISION, choices=list(PRECISIONS),
                   help="auto: int8 where the CPU has VNNI/AMX and the model ships an int8 "
                        "variant, else fp32")
    g.add_argument("--input-scale", type=float, metavar="S",
                   help="resize frames by S before the model (default: the model's own; "
                        "larger for cameras whose people look small, smaller for large ones)")
    g.add_argument("--gain", type=float, default=1.0,
                   help="multiply every count by this (a quick fix for a camera the model "
                        "under- or over-counts; `streamcount calibrate` fits one)")
    g = p.add_argument_group("pipeline")
    g.add_argument("--mode", choices=["live", "file"],
                   help="live: newest frame wins (webcams, URLs); file: every frame, batched "
                        "(files, folders). Default: by source type")
    g.add_argument("--realtime", action="store_true",
                   help="play files at their own frame rate, as a camera would deliver them (the "
                        "default for the example clip on a terminal); frames the engine cannot "
                        "keep up with are skipped")
    g.add_argument("--batch", type=int, default=defaults.BATCH,
                   help="frames per engine call in file mode")
    g.add_argument("--max-fps", type=float, help="process at most N frames/s per source")
    g.add_argument("--stride", type=int, default=defaults.STRIDE, help="process every Nth frame")
    g.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames per source")
    g.add_argument("--fps", type=float, help="frame rate for sources without one (image folders)")
    g.add_argument("--reconnect-max", type=int, default=defaults.RECONNECT_MAX, metavar="N",
                   help="reconnect attempts in a row before a live source is given up")
    g.add_argument("--reconnect-backoff", type=float,
                   default=defaults.RECONNECT_BACKOFF_S, metavar="S",
                   help="first reconnect delay in seconds (doubles each attempt, max 30 s)")
    g.add_argument("--timeout", type=float, default=defaults.OPEN_TIMEOUT_S, metavar="S",
                   help="give up opening or reading a network stream after S seconds without "
                        "data (then reconnect)")
    g = p.add_argument_group("counting")
    g.add_argument("--zones", type=Path,
                   help="zone file (JSON/YAML; `streamcount zones` makes one)")
    g.add_argument("--smooth", default=defaults.SMOOTH, help="ema:ALPHA, median:N or none")
    g.add_argument("--events", type=Path, metavar="FILE", help="alert event log (JSONL)")
    g.add_argument("--on-alert", metavar="CMD",
                   help="run CMD on each alert (STREAMCOUNT_* environment variables)")
    g.add_argument("--alert-shell", action="store_true", help="run --on-alert through the shell")
    g = p.add_argument_group("outputs")
    table.add_flags(g)
    g.add_argument("--snapshot-every", type=int, metavar="N", help="annotated JPEG every N frames")
    g.add_argument("--snapshot-dir", type=Path, default=Path("snapshots"))
    g.add_argument("--aggregate", metavar="WINDOW",
                   help=f"min/mean/max per window, e.g. {defaults.AGGREGATE_WINDOW}")
    g.add_argument("--summary-json", type=Path, metavar="FILE",
                   help="write the end-of-run summary (frames, fps, engine fps) as JSON")
    g.add_argument("--metrics-port", type=int, help="serve Prometheus metrics ([metrics] extra)")
    g.add_argument("--metrics-host", default=defaults.METRICS_HOST,
                   help="address for --metrics-port (default 127.0.0.1; any other needs a token)")
    g.add_argument("--metrics-token", default=os.environ.get(METRICS_TOKEN_ENV),
                   help=f"bearer token scrapers must send (default: ${METRICS_TOKEN_ENV})")
    g.add_argument("--web", metavar="[HOST:]PORT",
                   help="live monitor and zone editor in the browser ([web] extra; host "
                        "default 127.0.0.1, any other needs --web-token)")
    g.add_argument("--web-token", default=os.environ.get("STREAMCOUNT_WEB_TOKEN"),
                   help="token browsers and tools must send (default: $STREAMCOUNT_WEB_TOKEN)")
    g.add_argument("--web-zones", type=Path, metavar="FILE",
                   help="where the zone editor saves (default: the --zones file, else "
                        "zones.json)")
    g.add_argument("--web-fps", type=float, default=defaults.WEB_FPS, metavar="N",
                   help="at most N monitor pictures per second per source (default 4)")
    g = p.add_argument_group("display")
    g.add_argument("--show", action="store_true", help="OpenCV window (needs a display)")
    g.add_argument("--no-dashboard", action="store_true", help="no live terminal dashboard")
    g.add_argument("--quiet", action="store_true", help="only warnings and errors; no summary")


def _display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run(args: argparse.Namespace) -> int:
    """Run the pipeline until every source ends, or Ctrl-C / SIGTERM."""
    cfg = RunConfig.from_args(args)
    if cfg.quiet:
        logging.getLogger("streamcount").setLevel(logging.WARNING)
    return run_config(cfg)


def run_config(cfg: RunConfig) -> int:
    """Run with a :class:`RunConfig`; returns the exit code."""
    from streamcount.sinks import check_writable

    cfg.validate()
    for key in cfg.outputs:  # before any file exists: a missing extra must not leave empty files
        extra = table.outputs()[key].extra
        if extra is not None:
            from streamcount.errors import require

            require(*extra)
    if cfg.metrics_port is not None:
        from streamcount import exposure
        from streamcount.errors import require

        require("prometheus_client", "metrics")
        exposure.check_exposure(cfg.metrics_host, cfg.metrics_token, "--metrics-host",
                                "--metrics-token", METRICS_TOKEN_ENV)
    web = None
    if cfg.web is not None:
        from streamcount.errors import require
        from streamcount.web import check_exposure, parse_address

        web = parse_address(cfg.web)
        check_exposure(web[0], cfg.web_token)
        if not 0.1 <= cfg.web_fps <= 30:
            raise InputError(f"--web-fps must be from 0.1 to 30, got {cfg.web_fps}")
        require("starlette", "web")
        require("uvicorn", "web")
        from streamcount.web.monitor import check_zone_file

        try:  # not fatal: counting and the monitor do not need it
            check_zone_file(cfg.web_zones or cfg.zones or Path("zones.json"))
        except OutputError as exc:
            logger.warning("the zone editor will not be able to save: %s (give --web-zones)",
                           exc.message)
    for key, out in cfg.outputs.items():
        check_writable(out, table.outputs()[key].what)
    for extra_out, what in ((cfg.events, "event log"), (cfg.summary_json, "summary")):
        if extra_out is not None:
            check_writable(extra_out, what)

    from streamcount.sinks import unique_slugs
    from streamcount.smoothing import parse_smoothing
    from streamcount.sources import SourceOptions, open_source, slug, unique_names
    from streamcount.zones import ZoneSet

    parse_smoothing(cfg.smooth)
    window = None
    if cfg.aggregate:
        from streamcount.sinks.aggregate import parse_duration

        window = parse_duration(cfg.aggregate)
    zones = ZoneSet.load(cfg.zones) if cfg.zones else ZoneSet.empty()
    specs = cfg.sources
    if not specs:
        clip = example_clip()
        if not clip.is_file():
            raise InputError(f"no SOURCE given and the example clip {clip} is missing; give a "
                             "video file, folder, webcam index or URL")
        specs = [str(clip)]
        if cfg.mode is None and sys.stdout.isatty():  # the demo: something a person can watch
            cfg.realtime = True
    mode = cfg.mode
    if cfg.realtime:
        if cfg.mode == "file":
            raise InputError("--realtime and --mode file contradict each other: pick one")
        mode = "live"
    opts = SourceOptions(mode=mode, stride=cfg.stride, reconnect_max=cfg.reconnect_max,
                         backoff_base=cfg.reconnect_backoff, fps=cfg.fps,
                         open_timeout_s=cfg.timeout)
    sources = []
    try:
        for spec in specs:
            sources.append(open_source(spec, opts))
    except BaseException:
        for s in sources:
            s.close()
        raise
    unique_names(sources)

    from streamcount.engine import Counter

    try:
        counter = Counter(cfg.model, device=cfg.device, threads=cfg.threads,
                          precision=cfg.precision, input_scale=cfg.input_scale,
                          gain=cfg.gain)
    except BaseException:
        for s in sources:
            s.close()
        raise
    logger.info("model %s on %s, %s (%s)", counter.name, counter.device, counter.precision,
                counter.precision_reason)

    from streamcount.pipeline import Pipeline, PipelineConfig

    show = cfg.show
    if show and not _display_available():
        logger.warning("--show: no display ($DISPLAY / $WAYLAND_DISPLAY unset); going on without "
                       "a window")
        show = False
    pcfg = PipelineConfig(batch=cfg.batch, max_fps=cfg.max_fps, max_frames=cfg.max_frames,
                          smooth=cfg.smooth, keep_view=show)
    stack = ExitStack()
    interrupted = threading.Event()
    with stack:
        for s in sources:
            stack.callback(s.close)
        slugs = unique_slugs({s.name: slug(s.name) for s in sources})
        _check_outputs(cfg, sources, counter, slugs)
        sinks = _build_sinks(cfg, sources, zones, window, slugs)
        on_alert = _alert_handler(cfg, stack)
        pipe = Pipeline(sources, counter, sinks, pcfg, zones, on_alert)
        for sink in sinks:
            if hasattr(sink, "stats"):
                sink.stats = lambda: pipe.stats
            if hasattr(sink, "attach"):
                sink.attach(pipe)
            try:
                stack.enter_context(sink)
            except OSError as exc:
                where = getattr(sink, "path", type(sink).__name__)
                raise OutputError(f"cannot write {where}: {exc.strerror or exc}") from None
        restore = _install_signals(pipe, interrupted)
        try:
            pipe.start()
            _main_loop(pipe, cfg, counter, show)
        finally:
            pipe.stop()
            pipe.wait(30)
            restore()
            if show:
                import cv2

                cv2.destroyAllWindows()
        pipe.join()
    if not cfg.quiet:
        _summary(pipe, counter, to_stderr=cfg.writes_stdout)
    if cfg.summary_json:
        _write_summary_json(cfg.summary_json, pipe, counter)
    if interrupted.is_set():
        return EXIT_INTERRUPTED
    failed = [st for st in pipe.stats.values() if st.error or st.state == "failed"]
    if failed and len(failed) == len(pipe.stats):
        raise SourceError(f"every source failed; last: {failed[-1].name}: "
                          f"{failed[-1].error or 'gave up reconnecting'}")
    return 0


def _check_outputs(cfg: RunConfig, sources: list, counter: Counter,
                   slugs: dict[str, str]) -> None:
    """No output may be an input (a source, the zone file, the model) or another output."""
    from streamcount.sinks import check_outputs, suffixed

    inputs: list[tuple[str, Path]] = []
    for spec in cfg.sources:
        p = Path(spec).expanduser()
        if p.is_file():
            inputs.append(("source", p))
        elif p.is_dir():  # an image folder: every file in it is an input
            inputs += [(f"image of source {spec}:", f) for f in sorted(p.iterdir())[:10000]]
    if cfg.zones:
        inputs.append(("zone file", cfg.zones))
    inputs.append(("model", counter.model_path))
    outputs: dict[str, Path] = {}
    for flag, path in (("--events", cfg.events), ("--summary-json", cfg.summary_json)):
        if path is not None:
            outputs[flag] = path
    for key, path in cfg.outputs.items():
        flag = table.outputs()[key].flag
        if table.outputs()[key].per_source and len(sources) > 1:  # one file per source
            for s in sources:
                outputs[f"{flag} ({s.name})"] = suffixed(path, slugs[s.name])
        else:
            outputs[flag] = path
    check_outputs(inputs, outputs)


def _build_sinks(cfg: RunConfig, sources: list, zones: ZoneSet, window: float | None,
                 slug: dict[str, str]) -> list:
    info = {}
    for s in sources:
        fps = s.fps / cfg.stride if s.fps else 0.0
        if cfg.max_fps:
            fps = min(fps, cfg.max_fps) if fps else cfg.max_fps
        info[s.name] = (slug[s.name], fps)
    ctx = table.SinkContext(zones.names, info, window)
    sinks: list = table.build(cfg.outputs, ctx)
    if cfg.snapshot_every:
        from streamcount.sinks.snapshots import SnapshotSink

        sinks.append(SnapshotSink(cfg.snapshot_dir, cfg.snapshot_every,
                                  dict(slug)))
    if cfg.metrics_port is not None:
        from streamcount.sinks.metrics import MetricsSink

        sinks.append(MetricsSink(cfg.metrics_port, cfg.metrics_host,
                                 token=cfg.metrics_token, labels=slug))
    if cfg.web is not None:
        from streamcount.web import parse_address
        from streamcount.web.monitor import WebSink

        host, port = parse_address(cfg.web)
        sinks.append(WebSink(host, port, cfg.web_token, {s.name: slug[s.name] for s in sources},
                             zones, cfg.web_zones or cfg.zones or Path("zones.json"),
                             jpeg_fps=cfg.web_fps))
    return sinks


def _alert_handler(cfg: RunConfig, stack: ExitStack):
    from streamcount.alerts import AlertCommand, EventLog

    log = stack.enter_context(EventLog(cfg.events)) if cfg.events else None
    cmd = AlertCommand(cfg.on_alert, cfg.alert_shell) if cfg.on_alert else None
    if cmd is not None:
        stack.callback(cmd.close)
    if log is None and cmd is None:
        return None

    def handle(ev: AlertEvent) -> None:
        if log is not None:
            log.write(ev)
        if cmd is not None:
            cmd(ev)

    return handle


def _install_signals(pipe: Pipeline, interrupted: threading.Event) -> Callable[[], None]:
    """First SIGINT/SIGTERM: drain and close; second: drop what is queued."""
    from streamcount.commands.signals import install_stop_signals

    return install_stop_signals(interrupted, pipe.stop, pipe.abort,
                                "finishing queued frames and closing outputs")


def _main_loop(pipe: Pipeline, cfg: RunConfig, counter: Counter, show: bool) -> None:
    use_dash = (cfg.dashboard and not cfg.quiet and sys.stdout.isatty()
                and not cfg.writes_stdout)
    period = 0.03 if show else 0.25
    live = None
    if use_dash:
        from rich.live import Live

        from streamcount.dashboard import Dashboard

        dash = Dashboard(pipe.stats, f"{counter.device}, {counter.precision}", counter.name)
        live = Live(dash, refresh_per_second=4, transient=False, redirect_stderr=True)
        live.start()
    try:
        while not pipe.wait(period):
            if show:
                _show(pipe)
    finally:
        if live is not None:
            live.refresh()
            live.stop()


def _show(pipe: Pipeline) -> None:
    import cv2

    for name, img in list(pipe.views.items()):
        cv2.imshow(f"streamcount: {name}", img)
    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
        pipe.stop()


def _write_summary_json(path: Path, pipe: Pipeline, counter: Counter) -> None:
    import json

    data = {
        "model": counter.name,
        "provider": counter.device,
        "precision": counter.precision,
        "precision_reason": counter.precision_reason,
        "wall_seconds": round(pipe.wall_seconds, 3),
        "e2e_fps": round(pipe.e2e_fps, 2),
        "engine_fps": round(pipe.engine_fps, 2),
        "sources": {
            st.name: {"frames": st.processed, "skipped": st.skipped, "corrupt": st.corrupt,
                      "reconnects": st.reconnects, "mean_count": round(st.mean_count, 3),
                      "max_count": round(st.count_max, 3), "fps": round(st.overall_fps, 2)}
            for st in pipe.stats.values()
        },
    }
    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None


def _summary(pipe: Pipeline, counter: Counter, to_stderr: bool = False) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"summary — {counter.name} on {counter.device}, {counter.precision}",
              title_justify="left", box=box.SIMPLE_HEAD, collapse_padding=True)
    from streamcount.dashboard import short_name

    names = [short_name(st.name, 24) for st in pipe.stats.values()]
    t.add_column("source", no_wrap=True, min_width=max(len(n) for n in names))
    for col in ("frames", "skipped", "corrupt", "reconnects", "mean count", "max count", "fps"):
        t.add_column(col, justify="right")
    for name, st in zip(names, pipe.stats.values(), strict=True):
        t.add_row(name, str(st.processed), str(st.skipped), str(st.corrupt),
                  str(st.reconnects), f"{st.mean_count:.2f}", f"{st.count_max:.2f}",
                  f"{st.overall_fps:.1f}")
    con = Console(stderr=to_stderr)  # rows on stdout stay clean for a pipe
    con.print(t)
    con.print(f"end-to-end {pipe.e2e_fps:.1f} fps, engine alone {pipe.engine_fps:.1f} fps "
              f"({pipe.wall_seconds:.1f} s)")
