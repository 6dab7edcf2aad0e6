"""The live monitor and zone editor of ``streamcount run --web``: a sink of Results.

:class:`WebSink` keeps, per source, the latest figures, a few minutes of counts and the recent
alerts, and at most ``jpeg_fps`` times a second hands a copy of the frame and its density to its
own thread, which draws the overlay and encodes the JPEG: the output stage never draws a frame
the browser will not see, and never waits for an encoder or a browser.

Pages: ``/`` (monitor), ``/zones`` (zone editor). API: ``GET /api/status`` (the figures as
JSON), ``GET /api/frame/{id}`` (latest annotated JPEG; ``?raw=1``: the plain frame),
``GET /api/zones`` and ``PUT /api/zones`` (validate, save to the zone file, apply to the
running pipeline).

Example:
    >>> sink = WebSink("127.0.0.1", 0, labels={"cam.mp4": "cam"})
    >>> sink.status()["sources"][0]["id"]
    'cam'
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from streamcount import defaults
from streamcount.errors import InputError, OutputError
from streamcount.frames import Result
from streamcount.sinks import Sink
from streamcount.zones import ZoneSet

logger = logging.getLogger(__name__)

HISTORY_SECONDS = 300.0
HISTORY_STEP = 0.5  # one chart point per half second of the stream
RAW_EVERY = 2.0  # seconds between plain frames (the zone editor's background)
WATCH_S = 5.0  # a picture request keeps a source's pictures encoded this long: none unwatched
FIRST_PICTURE_WAIT_S = 1.5  # how long a request for a source's first picture waits for it


class PipelineView(Protocol):
    """What the monitor reads of a running :class:`~streamcount.pipeline.Pipeline` (or of a
    fleet). A ``set_zones(ZoneSet)`` method, when present, lets the zone editor apply zones."""

    @property
    def stats(self) -> Mapping[str, Any]:
        """Source name -> its :class:`~streamcount.stats.SourceStats`."""
        ...

    @property
    def engine_fps(self) -> float:
        """Frames per second of engine time."""
        ...

    @property
    def e2e_fps(self) -> float:
        """Processed frames per wall-clock second, all sources."""
        ...


class _Feed:
    """One source's figures, chart and frames (guarded by :attr:`lock`)."""

    def __init__(self, sid: str, name: str) -> None:
        self.id = sid
        self.name = name
        self.lock = threading.Lock()
        self.frames = 0
        self.last: dict[str, Any] = {}
        self.history: deque = deque(maxlen=int(HISTORY_SECONDS / HISTORY_STEP))
        self.alerts: deque = deque(maxlen=50)
        self.jpeg: bytes | None = None
        self.raw: bytes | None = None
        self.size: list[int] | None = None
        self.next_jpeg = 0.0
        self.next_raw = 0.0
        self.watched_until = 0.0  # monotonic time until which pictures are encoded
        self.latest: Result | None = None  # the last result (a reference: for a first picture)
        self.raw_until = 0.0  # ... and plain frames

    def watch(self, raw: bool) -> None:
        """A page asked for a picture: keep encoding this kind for :data:`WATCH_S`."""
        until = time.monotonic() + WATCH_S
        with self.lock:
            if raw:
                self.raw_until = until
            else:
                self.watched_until = until


class _Job:
    """A picture for the encoder thread: the frame, and its overlay or what to draw it from."""

    def __init__(self, image: np.ndarray, raw: bool) -> None:
        self.image = image
        self.raw = raw  # encode the plain frame too (the zone editor's background)
        self.annotated: np.ndarray | None = None
        self.density: np.ndarray | None = None
        self.text: tuple[float, float, dict[str, float], float, str] = (0.0, 0.0, {}, 0.0, "")
        self.zones: ZoneSet | None = None


def _r(v: float) -> float:
    return round(float(v), 3)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and :func:`os.replace` (a reader
    or a crash never sees half a file).

    Example:
        >>> p = Path(tempfile.mkdtemp()) / "a.txt"
        >>> atomic_write(p, "x"); p.read_text()
        'x'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class WebSink(Sink):
    """Serves the live monitor and the zone editor while the pipeline runs.

    Args:
        host: Address to bind (127.0.0.1; any other needs ``token``).
        port: TCP port (0: a free one, see :attr:`port` after ``open``).
        token: Required from clients when set (bearer header or ``?token=`` once).
        labels: Source name -> its id in URLs (the file-name slug), in display order.
        zones: The zones counting starts with.
        zone_file: Where the zone editor saves (JSON, or YAML by suffix); None: not saved.
        jpeg_fps: At most this many JPEGs per second per source.
        quality: JPEG quality (1-100).
    """

    needs_overlay = False  # it draws its own, only for the frames it shows

    def __init__(self, host: str, port: int, token: str | None = None,
                 labels: Mapping[str, str] | None = None, zones: ZoneSet | None = None,
                 zone_file: Path | None = None, jpeg_fps: float = defaults.WEB_FPS,
                 quality: int = 75) -> None:
        from streamcount.web import check_exposure

        check_exposure(host, token)
        self.host, self.port, self.token = host, port, token
        self.labels = dict(labels or {})
        self.feeds = {name: _Feed(sid, name) for name, sid in self.labels.items()}
        self.by_id = {f.id: f for f in self.feeds.values()}
        self.zones = zones or ZoneSet.empty()
        self.zone_file = Path(zone_file) if zone_file is not None else None
        self.period = 1.0 / max(0.1, float(jpeg_fps))
        self.quality = int(quality)
        self.pipeline: PipelineView | None = None
        self.apply_zones: Callable[[ZoneSet], None] | None = None
        self.started = time.time()
        self._pending: dict[str, _Job] = {}
        self._overlays: dict[str, Any] = {}
        self._cond = threading.Condition()
        self._closing = False
        self._encoder: threading.Thread | None = None
        self.server: Any = None
        self._zones_lock = threading.Lock()

    # -- the pipeline side -----------------------------------------------------------------
    def attach(self, pipe: PipelineView) -> None:
        """Read fps and statistics from ``pipe`` and apply saved zones to it."""
        self.pipeline = pipe
        self.apply_zones = getattr(pipe, "set_zones", None)

    def open(self) -> None:
        """Start the encoder thread and the web server."""
        from streamcount.errors import require

        require("starlette", "web")
        require("uvicorn", "web")
        from streamcount.web.server import BackgroundServer, guarded

        self._closing = False
        self._encoder = threading.Thread(target=self._encode_loop, name="web-jpeg", daemon=True)
        self._encoder.start()
        self.server = BackgroundServer(guarded(self.app(), self.token), self.host, self.port,
                                       "web monitor")
        try:
            self.server.start()
        except BaseException:
            self.close()
            raise
        self.port = self.server.port
        logger.info("web monitor on %s (zone editor: %szones)%s", self.server.url,
                    self.server.url, "; open it once with ?token=YOUR_TOKEN" if self.token else "")

    def write(self, result: Result) -> None:
        """Note the figures; while a page shows the source, every ``1/jpeg_fps`` s queue a copy
        of the frame for encoding."""
        feed = self.feeds.get(result.source)
        if feed is None:
            feed = self.feeds[result.source] = _Feed(result.source, result.source)
            self.by_id[feed.id] = feed
        now = time.monotonic()
        with feed.lock:
            feed.frames += 1
            feed.size = [result.frame.width, result.frame.height]
            feed.last = {
                "frame": result.index, "count": _r(result.count),
                "smoothed": _r(result.smoothed), "fps": round(result.fps, 2),
                "zones": {k: _r(v) for k, v in result.zones.items()},
                "zones_smoothed": {k: _r(v) for k, v in result.zones_smoothed.items()},
                "wall_time": round(result.wall_time, 3),
                "stream_time": round(result.stream_time, 3),
            }
            t = result.stream_time  # a file counted faster than it plays still has a chart
            if feed.history and t < feed.history[-1][0]:
                feed.history.clear()  # the stream restarted its clock
            if not feed.history or t >= feed.history[-1][0] + HISTORY_STEP:
                feed.history.append((round(t, 2), _r(result.count), _r(result.smoothed)))
            for ev in result.alerts:
                feed.alerts.append({"time": round(ev.wall_time, 3), "event": ev.event,
                                    "zone": ev.zone, "text": ev.describe()})
            # pictures only while a page asks for them: an unwatched monitor costs no encoding
            due = now >= feed.next_jpeg and now < feed.watched_until
            raw_due = now >= feed.next_raw and now < feed.raw_until
            if due:
                feed.next_jpeg = now + self.period
            if raw_due:
                feed.next_raw = now + RAW_EVERY
            feed.latest = result
        if due or raw_due:
            self._queue(feed, result, raw_due)

    def _queue(self, feed: _Feed, result: Result, raw: bool) -> None:
        """Hand a copy of ``result``'s frame (and what its overlay needs) to the encoder."""
        img = result.annotated if result.annotated is not None else result.frame.image
        if img.size:  # a fleet ships numbers, not pictures
            job = _Job(result.frame.image.copy(), raw)
            if result.annotated is not None:  # another sink had it drawn: use that one
                job.annotated = result.annotated.copy()
            elif result.density.shape == img.shape[:2]:
                job.density = result.density.copy()
                job.text = (result.count, result.smoothed, dict(result.zones), result.fps,
                            result.source)
                job.zones = self.zones
            with self._cond:
                old = self._pending.get(feed.id)
                job.raw = job.raw or (old is not None and old.raw)  # a due plain frame stays due
                self._pending[feed.id] = job
                self._cond.notify()

    def close(self) -> None:
        """Stop the server and the encoder; safe to call twice."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._encoder is not None:
            self._encoder.join(5)
            self._encoder = None

    def _encode_loop(self) -> None:
        import cv2

        from streamcount.web.server import lower_thread_priority

        lower_thread_priority()
        params = [int(cv2.IMWRITE_JPEG_QUALITY), self.quality]
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait(0.5)
                if self._closing:
                    return
                jobs, self._pending = self._pending, {}
            for sid, job in jobs.items():
                try:
                    jpeg = cv2.imencode(".jpg", self._draw(sid, job), params)[1].tobytes()
                    plain = cv2.imencode(".jpg", job.image, params)[1].tobytes() \
                        if job.raw else None
                except cv2.error as exc:  # never let a frame stop the monitor
                    logger.debug("%s: JPEG encoding failed: %s", sid, exc)
                    continue
                feed = self.by_id[sid]
                with feed.lock:
                    feed.jpeg = jpeg
                    if plain is not None:
                        feed.raw = plain

    def _draw(self, sid: str, job: _Job) -> np.ndarray:
        """The picture of a job: the overlay another sink drew, or one drawn here."""
        if job.annotated is not None:
            return job.annotated
        if job.density is None:
            return job.image
        from streamcount.overlay import Overlay

        overlay = self._overlays.setdefault(sid, Overlay())
        count, smoothed, zone_counts, fps, label = job.text
        return np.asarray(overlay.draw(job.image, job.density, count, zones=job.zones,
                                       zone_counts=zone_counts, fps=fps, label=label,
                                       smoothed=smoothed))

    # -- what the pages read -----------------------------------------------------------------
    def status(self, history: bool = True) -> dict[str, Any]:
        """Everything the monitor shows, as JSON-ready data (``GET /api/status``)."""
        pipe = self.pipeline
        stats = pipe.stats if pipe is not None else {}
        sources = []
        for name, feed in list(self.feeds.items()):
            st = stats.get(name)
            with feed.lock:
                item: dict[str, Any] = {
                    "id": feed.id, "name": feed.name, "frames": feed.frames,
                    "size": feed.size, **feed.last,
                    "alerts": list(feed.alerts)[-20:],
                    "has_frame": feed.jpeg is not None or (
                        feed.latest is not None and feed.latest.frame.image.size > 0),
                }
                if history:
                    item["history"] = list(feed.history)
            if st is not None:
                item.update(state=st.state, skipped=st.skipped, corrupt=st.corrupt,
                            reconnects=st.reconnects, error=st.error,
                            engine_ms_p50=round(st.latency_pct(50), 2),
                            active_alerts=[ev.describe() for ev in
                                           list(st.active_alerts.values())])
            sources.append(item)
        return {
            "sources": sources,
            "engine_fps": round(pipe.engine_fps, 2) if pipe is not None else None,
            "e2e_fps": round(pipe.e2e_fps, 2) if pipe is not None else None,
            "zones": self.zones.names,
            "zone_file": str(self.zone_file) if self.zone_file is not None else None,
            "uptime_s": round(time.time() - self.started, 1),
            "picture_fps": round(1.0 / self.period, 3),
        }

    def feed(self, sid: str) -> _Feed:
        """The feed with URL id ``sid``.

        Raises:
            BadRequest: 404 naming the known ids.
        """
        from streamcount.web.server import BadRequest

        feed = self.by_id.get(sid)
        if feed is None:
            known = ", ".join(sorted(self.by_id)) or "none"
            raise BadRequest(404, f"unknown source '{sid[:80]}' (known: {known})")
        return feed

    def set_zones(self, data: Any) -> dict[str, Any]:
        """Validate a zone file's content, save it to :attr:`zone_file`, apply it.

        Raises:
            BadRequest: 400 with the validation's one line; 500 when the file cannot be written.
        """
        from streamcount.web.server import BadRequest

        if self.apply_zones is None and self.zone_file is None:
            raise BadRequest(409, "this run cannot change its zones here (a fleet: edit each "
                                  "source's zone file)")
        try:
            zones = ZoneSet.from_dict(data, source="zone editor")
        except InputError as exc:
            raise BadRequest(400, exc.message) from None
        content = zones.to_dict()
        with self._zones_lock:
            if self.zone_file is not None:
                try:
                    atomic_write(self.zone_file, _dump(content, self.zone_file))
                except OSError as exc:
                    raise BadRequest(500, f"cannot write {self.zone_file}: "
                                          f"{exc.strerror or exc}") from None
            self.zones = zones
            if self.apply_zones is not None:
                self.apply_zones(zones)
        logger.info("zone editor: %d zone(s)%s applied%s", len(zones.zones),
                    " and an roi" if zones.roi is not None else "",
                    f", saved to {self.zone_file}" if self.zone_file else "")
        return {"zones": content, "saved": str(self.zone_file) if self.zone_file else None}

    def app(self) -> Any:
        """The Starlette app of the monitor and zone editor."""
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import FileResponse, JSONResponse, Response
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles

        from streamcount.web import STATIC
        from streamcount.web.server import BadRequest, exception_handlers, read_json

        nocache = {"Cache-Control": "no-store"}

        def page(name: str) -> Callable[[Request], Any]:
            async def handler(request: Request) -> Response:
                return FileResponse(STATIC / name, headers=nocache)
            return handler

        async def status(request: Request) -> Response:
            history = request.query_params.get("history", "1") != "0"
            return JSONResponse(self.status(history), headers=nocache)

        async def frame(request: Request) -> Response:
            feed = self.feed(request.path_params["sid"])
            raw = request.query_params.get("raw") in ("1", "true")
            feed.watch(raw)
            with feed.lock:
                latest = feed.latest if (feed.raw if raw else feed.jpeg) is None else None
            if latest is not None:  # a source that went quiet (or ended) still has a picture
                self._queue(feed, latest, raw)
            deadline = time.monotonic() + FIRST_PICTURE_WAIT_S
            while True:  # the first request starts the encoding: wait a moment for it
                with feed.lock:
                    data = feed.raw if raw else feed.jpeg
                if data is not None or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.05)
            if data is None:
                raise BadRequest(404, f"no frame from '{feed.id}' yet")
            return Response(data, media_type="image/jpeg", headers=nocache)

        async def get_zones(request: Request) -> Response:
            return JSONResponse({"zones": self.zones.to_dict(),
                                 "zone_file": str(self.zone_file) if self.zone_file else None},
                                headers=nocache)

        async def put_zones(request: Request) -> Response:
            data = await read_json(request)
            return JSONResponse(self.set_zones(data))

        routes = [
            Route("/", page("monitor.html")),
            Route("/zones", page("zones.html")),
            Route("/api/status", status),
            Route("/api/frame/{sid}", frame),
            Route("/api/zones", get_zones, methods=["GET"]),
            Route("/api/zones", put_zones, methods=["PUT", "POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]
        return Starlette(routes=routes, exception_handlers=exception_handlers())


def _dump(content: dict[str, Any], path: Path) -> str:
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return str(yaml.safe_dump(content, sort_keys=False, default_flow_style=None))
    return json.dumps(content, indent=2) + "\n"


def check_zone_file(path: Path) -> None:
    """Raise :class:`OutputError` unless the zone editor could write ``path``."""
    from streamcount.sinks import check_writable

    check_writable(path, "zone file")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write zone file {path}: permission denied")
