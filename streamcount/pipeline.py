"""The streaming pipeline: capture -> inference -> output stages in threads, bounded queues.

- One capture thread per source reads frames into that source's :class:`Channel`. Live mode
  keeps only the newest frame (older ones are dropped and counted as skipped); file mode
  keeps every frame and blocks the reader when the queue is full.
- One inference thread takes frames from every channel (file mode: up to ``batch`` at once)
  and runs them through ``Counter.count_batch``.
- One output thread applies ROI/zones, smoothing and alerts, builds :class:`Result` records,
  draws the overlay once when a sink needs it, and hands each Result to every sink in order.

:meth:`Pipeline.stop` (first Ctrl-C / SIGTERM) stops the readers and drains the queues; a
second request (:meth:`Pipeline.abort`) drops what is still queued. Either way the caller
closes every sink afterwards.

Example:
    >>> from streamcount.pipeline import Pipeline, PipelineConfig  # doctest: +SKIP
    >>> pipe = Pipeline([source], counter, sinks, PipelineConfig(batch=4))  # doctest: +SKIP
    >>> pipe.run()  # blocks; or pipe.start(); pipe.wait(0.25) in a UI loop  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from streamcount import defaults
from streamcount.alerts import AlertEvent, AlertMonitor
from streamcount.errors import OutputError
from streamcount.frames import Frame, Result
from streamcount.overlay import Overlay
from streamcount.sinks import Sink
from streamcount.smoothing import Smoother, parse_smoothing
from streamcount.sources import Source
from streamcount.zones import ZoneSet

logger = logging.getLogger(__name__)


class CountLike(Protocol):
    """What the pipeline reads of one engine result (a :class:`~streamcount.engine.CountResult`).

    A ``batch`` attribute (frames in the engine call) is read too when present.
    """

    @property
    def count(self) -> float:
        """Estimated number of objects in the frame."""
        ...

    @property
    def density(self) -> np.ndarray:
        """Density map in frame coordinates (``H x W``)."""
        ...

    @property
    def latency_ms(self) -> float:
        """Wall time of the engine call that produced it."""
        ...


class BatchCounter(Protocol):
    """The engine seam of :class:`Pipeline`: a :class:`~streamcount.engine.Counter` or a fake."""

    def count_batch(self, frames: Sequence[np.ndarray]) -> Sequence[CountLike]:
        """Count several BGR frames; one result per frame, in order."""
        ...


@dataclass
class PipelineConfig:
    """Pipeline settings.

    Attributes:
        batch: Frames per engine call in file mode.
        queue_size: Frames buffered per file-mode source (0: ``2 * batch``).
        max_fps: Process at most this many frames per second per source (live: drop the rest,
            counted as skipped; file: pace reading).
        max_frames: Stop each source after this many processed frames.
        smooth: Smoothing spec (``ema:0.3``, ``median:15``, ``none``).
        overlay_alpha: Heatmap opacity on annotated frames.
        keep_view: Keep the latest annotated frame per source (for ``--show``).
    """

    batch: int = defaults.BATCH
    queue_size: int = 0
    max_fps: float | None = None
    max_frames: int | None = None
    smooth: str = defaults.SMOOTH
    overlay_alpha: float = 0.45
    keep_view: bool = False


@dataclass
class SourceStats:
    """Running statistics of one source, read by the dashboard, metrics and summary."""

    name: str
    live: bool
    total: int | None = None
    fps_nominal: float = 0.0
    captured: int = 0
    processed: int = 0
    skipped: int = 0
    corrupt: int = 0
    reconnects: int = 0
    state: str = "starting"
    last_index: int = -1
    count: float = 0.0
    smoothed: float = 0.0
    zones: dict[str, float] = field(default_factory=dict)
    zones_smoothed: dict[str, float] = field(default_factory=dict)
    count_sum: float = 0.0
    count_max: float = 0.0
    queue_depth: int = 0
    nonfinite: int = 0
    fps: float = 0.0
    error: str | None = None
    history: deque = field(default_factory=lambda: deque(maxlen=120))
    latencies: deque = field(default_factory=lambda: deque(maxlen=300))
    times: deque = field(default_factory=lambda: deque(maxlen=30), repr=False)
    active_alerts: dict[tuple[str, str, float], AlertEvent] = field(default_factory=dict)
    recent_events: deque = field(default_factory=lambda: deque(maxlen=5))
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def latency_pct(self, q: float) -> float:
        """A percentile (0-100) of recent engine times per frame in ms (0 when none)."""
        with self.lock:
            lat = list(self.latencies)
        return float(np.percentile(lat, q)) if lat else 0.0

    def tick(self, res: Result, now: float) -> None:
        """Before the sinks: note the frame's count and latency, set ``res.fps``."""
        with self.lock:
            self.history.append(res.count)
            self.latencies.append(res.latency_ms / max(1, res.batch))
            t = self.times
            t.append(now)
            res.fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def track_alerts(self, events: Sequence[AlertEvent]) -> None:
        """Log alert events and keep the active ones (for the dashboard)."""
        for ev in events:
            (logger.warning if ev.event == "start" else logger.info)("%s", ev.describe())
            key = (ev.zone, ev.rule, ev.threshold)
            if ev.event == "start":
                self.active_alerts[key] = ev
            else:
                self.active_alerts.pop(key, None)
            self.recent_events.append(ev)

    def written(self, res: Result) -> None:
        """After the sinks: the frame counts as processed."""
        with self.lock:
            self.processed += 1
            self.last_index = res.index
            self.count, self.smoothed = res.count, res.smoothed
            self.zones, self.zones_smoothed = res.zones, res.zones_smoothed
            self.count_sum += res.count
            self.count_max = max(self.count_max, res.count) if self.processed > 1 else res.count
            self.fps = res.fps

    @property
    def mean_count(self) -> float:
        """Mean raw count over processed frames."""
        return self.count_sum / self.processed if self.processed else 0.0

    @property
    def elapsed(self) -> float:
        """Seconds since this source started (until it finished)."""
        return (self.finished or time.monotonic()) - self.started

    @property
    def overall_fps(self) -> float:
        """Processed frames per second over the whole run."""
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0


class Channel:
    """The bounded queue between a source's capture thread and the inference thread.

    Args:
        live: Newest frame wins (size 1, drops counted) instead of blocking when full.
        maxsize: Capacity in file mode.
        wake: Event set whenever a frame arrives or the channel closes.

    Example:
        >>> ch = Channel(live=True, maxsize=4, wake=threading.Event())
        >>> for i in range(3):
        ...     _ = ch.put(i, threading.Event())
        >>> ch.take(8), ch.dropped
        ([2], 2)
    """

    def __init__(self, live: bool, maxsize: int, wake: threading.Event) -> None:
        self.live = live
        self.maxsize = max(1, maxsize)
        self.wake = wake
        self.items: deque = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.dropped = 0

    def put(self, item: object, stop: threading.Event) -> bool:
        """Add a frame; False when ``stop`` was set while waiting for room."""
        with self.cond:
            if self.live:
                self.dropped += len(self.items)
                self.items.clear()
            else:
                while len(self.items) >= self.maxsize:
                    if stop.is_set():
                        return False
                    self.cond.wait(0.05)
            self.items.append(item)
        self.wake.set()
        return True

    def take(self, n: int) -> list:
        """Up to ``n`` queued frames, oldest first (never blocks)."""
        with self.cond:
            out = [self.items.popleft() for _ in range(min(n, len(self.items)))]
            self.cond.notify_all()
        return out

    def take_dropped(self) -> int:
        """Frames dropped (newest-wins) since the last call."""
        with self.cond:
            n, self.dropped = self.dropped, 0
        return n

    def clear(self) -> int:
        """Drop everything queued; returns how many."""
        with self.cond:
            n = len(self.items)
            self.items.clear()
            self.cond.notify_all()
        return n

    def close(self) -> None:
        """No more frames will come."""
        self.closed = True
        self.wake.set()

    def __len__(self) -> int:
        return len(self.items)

    @property
    def done(self) -> bool:
        """Closed and empty."""
        return self.closed and not self.items


def measure(zones: ZoneSet, density: np.ndarray, count: float
            ) -> tuple[float, dict[str, float], np.ndarray]:
    """Apply the ROI and integrate each zone: ``(count, zone counts, density)``.

    Stateless, so it can run wherever the density map is (the fleet runs it next to the engine
    and ships only the numbers).

    Example:
        >>> sq = [[0, 0], [2, 0], [2, 2], [0, 2]]
        >>> zs = ZoneSet.from_dict({"zones": [{"name": "a", "polygon": sq}]})
        >>> c, zc, _ = measure(zs, np.ones((4, 4), np.float32), 16.0)
        >>> c, zc
        (16.0, {'a': 9.0})
    """
    if zones.roi is not None:
        density = zones.apply_roi(density)
        count = max(0.0, float(density.sum(dtype=np.float64)))
    return count, zones.counts(density), density


_NO_DENSITY = np.zeros((0, 0), np.float32)


class Analyzer:
    """Per-source counting logic after the engine: ROI, zones, smoothing, alerts."""

    def __init__(self, source: str, zones: ZoneSet, smoother: Callable[[], Smoother]) -> None:
        self.zones = zones
        self.total = smoother()
        self.per_zone: dict[str, Smoother] = {z: smoother() for z in zones.names}
        self.monitor = AlertMonitor(source, {z.name: z.alerts for z in zones.zones})

    def __call__(self, frame: Frame, density: np.ndarray, count: float,
                 latency_ms: float) -> Result:
        """Build the frame's :class:`Result` from its density map."""
        count, zc, density = measure(self.zones, density, count)
        return self.update(frame, count, zc, latency_ms, density)

    def update(self, frame: Frame, count: float, zone_counts: dict[str, float],
               latency_ms: float, density: np.ndarray | None = None) -> Result:
        """Smooth and check alerts for counts already measured (ROI applied)."""
        zs = {z: self.per_zone[z].update(v) for z, v in zone_counts.items() if z in self.per_zone}
        res = Result(frame, count, _NO_DENSITY if density is None else density, latency_ms,
                     self.total.update(count), zone_counts, zs)
        res.alerts = self.monitor.update(zs, frame.stream_time, frame.wall_time)
        return res


def write_all(sinks: Sequence[Sink], res: Result) -> None:
    """Hand ``res`` to every sink; a failing write becomes one :class:`OutputError` line."""
    for sink in sinks:
        try:
            sink.write(res)
        except BrokenPipeError:  # the reader of a pipe went away (`| head`): stop quietly
            raise
        except OSError as exc:  # full disk, removed folder
            where = getattr(sink, "path", type(sink).__name__)
            raise OutputError(f"cannot write {where}: {exc.strerror or exc}") from exc


_END = object()


class Pipeline:
    """Runs sources through a counter into sinks.

    Args:
        sources: Opened sources (unique names).
        counter: A :class:`~streamcount.engine.Counter` (any :class:`BatchCounter`).
        sinks: Opened sinks; written in order from the output thread.
        config: Settings.
        zones: Zones/ROI applied to every source.
        on_alert: Called (output thread) with each alert event.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        counter: BatchCounter,
        sinks: Sequence[Sink] = (),
        config: PipelineConfig | None = None,
        zones: ZoneSet | None = None,
        on_alert: Callable[[AlertEvent], None] | None = None,
    ) -> None:
        self.sources = list(sources)
        self.counter = counter
        self.sinks = list(sinks)
        self.cfg = config or PipelineConfig()
        self.zones = zones or ZoneSet.empty()
        self.on_alert = on_alert
        smoother = parse_smoothing(self.cfg.smooth)
        self.stop_event = threading.Event()
        self.abort_event = threading.Event()
        self.done = threading.Event()
        self.wake = threading.Event()
        qsize = self.cfg.queue_size or 2 * max(1, self.cfg.batch)
        self.channels = {s.name: Channel(s.live, qsize, self.wake) for s in self.sources}
        self.source_stop = {s.name: threading.Event() for s in self.sources}
        self.stats = {s.name: SourceStats(s.name, s.live, s.total, s.fps) for s in self.sources}
        self.analyzers = {s.name: Analyzer(s.name, self.zones, smoother) for s in self.sources}
        self.needs_overlay = self.cfg.keep_view or any(k.needs_overlay for k in self.sinks)
        self.overlays = {s.name: Overlay(self.cfg.overlay_alpha) for s in self.sources}
        self.views: dict[str, np.ndarray] = {}
        self.out_queue: deque = deque()
        self.out_cond = threading.Condition()
        self.out_max = 4
        self.engine_seconds = 0.0
        self.engine_frames = 0
        self.error: BaseException | None = None
        self.started = 0.0
        self.finished = 0.0
        self.threads: list[threading.Thread] = []

    # -- control --------------------------------------------------------------------------
    def start(self) -> None:
        """Start all stage threads."""
        self.started = time.monotonic()
        for s in self.sources:
            self.threads.append(threading.Thread(target=self._capture, args=(s,),
                                                 name=f"capture-{s.name}", daemon=True))
        self.threads.append(threading.Thread(target=self._infer, name="inference", daemon=True))
        self.threads.append(threading.Thread(target=self._output, name="output", daemon=True))
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        """Stop reading; what is queued is still processed and written."""
        self.stop_event.set()
        for e in self.source_stop.values():
            e.set()
        self.wake.set()

    def abort(self) -> None:
        """Stop now: drop queued frames (sinks are still closed by the caller)."""
        self.abort_event.set()
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every stage finished; True when done."""
        return self.done.wait(timeout)

    def join(self) -> None:
        """Join the threads; re-raise a stage's error in the caller."""
        for t in self.threads:
            t.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        """Start, wait for the end, join."""
        self.start()
        self.wait()
        self.join()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.abort()

    @property
    def wall_seconds(self) -> float:
        """Seconds since start (until done)."""
        return (self.finished or time.monotonic()) - self.started if self.started else 0.0

    @property
    def engine_fps(self) -> float:
        """Frames per second of engine time alone."""
        return self.engine_frames / self.engine_seconds if self.engine_seconds else 0.0

    @property
    def e2e_fps(self) -> float:
        """Processed frames per wall-clock second, all sources together."""
        n = sum(s.processed for s in self.stats.values())
        return n / self.wall_seconds if self.wall_seconds else 0.0

    # -- stages ---------------------------------------------------------------------------
    def _capture(self, src: Source) -> None:
        st = self.stats[src.name]
        ch = self.channels[src.name]
        stop = self.source_stop[src.name]
        max_fps = self.cfg.max_fps
        pace = src.live and not src.inherently_live and src.fps > 0  # a file played "live"
        period = 1.0 / max_fps if max_fps else 0.0
        if pace:
            period = max(period, 1.0 / src.fps)
        next_t = time.monotonic()
        delivered = 0
        st.state = "ok"
        try:
            for frame in src.frames(stop):
                st.captured += 1
                st.corrupt, st.reconnects, st.state = src.corrupt, src.reconnects, src.state
                now = time.monotonic()
                if period:
                    if src.live and not pace and now < next_t:
                        st.skipped += 1  # live over --max-fps: drop
                        continue
                    if now < next_t and stop.wait(next_t - now):
                        break
                    next_t = max(next_t + period, time.monotonic() - period)
                if not ch.put(frame, stop):
                    break
                delivered += 1
                if not src.live and self.cfg.max_frames and delivered >= self.cfg.max_frames:
                    break
        except Exception as exc:  # a source failing must not stop the others
            from streamcount.errors import StreamcountError

            st.error = exc.message if isinstance(exc, StreamcountError) else repr(exc)
            logger.error("%s: %s", src.name, st.error)
        finally:
            st.corrupt, st.reconnects = src.corrupt, src.reconnects
            st.state = "failed" if src.state == "failed" or st.error else (
                "stopped" if stop.is_set() and src.state not in ("ended",) else "ended")
            src.close()
            ch.close()

    def _infer(self) -> None:
        chans = list(self.channels.items())
        batch_n = max(1, self.cfg.batch)
        rr = 0
        try:
            while True:
                if self.abort_event.is_set():
                    for _, ch in chans:
                        ch.clear()
                    break
                frames: list[Frame] = []
                for k in range(len(chans)):
                    name, ch = chans[(rr + k) % len(chans)]
                    room = batch_n - len(frames)
                    if room <= 0:
                        break
                    frames += ch.take(1 if ch.live else room)
                    self.stats[name].queue_depth = len(ch)
                rr += 1
                if not frames:
                    if all(ch.done for _, ch in chans):
                        break
                    self.wake.wait(0.05)
                    self.wake.clear()
                    continue
                t0 = time.perf_counter()
                results = self.counter.count_batch([f.image for f in frames])
                self.engine_seconds += time.perf_counter() - t0
                self.engine_frames += len(frames)
                with self.out_cond:
                    while len(self.out_queue) >= self.out_max and not self.abort_event.is_set():
                        self.out_cond.wait(0.05)
                    self.out_queue.append((frames, results))
                    self.out_cond.notify_all()
        except BaseException as exc:
            self._fail(exc)
        finally:
            with self.out_cond:
                self.out_queue.append(_END)
                self.out_cond.notify_all()

    def _output(self) -> None:
        try:
            while True:
                with self.out_cond:
                    while not self.out_queue:
                        self.out_cond.wait(0.1)
                    item = self.out_queue.popleft()
                    self.out_cond.notify_all()
                if item is _END:
                    break
                if self.abort_event.is_set():
                    continue
                for frame, cr in zip(*item, strict=True):
                    self._emit(frame, cr)
        except BaseException as exc:
            self._fail(exc)
        finally:
            self.finished = time.monotonic()
            for t in self.threads:
                if t.name.startswith("capture"):
                    t.join(timeout=5)
            for name, st in self.stats.items():
                st.finished = st.finished or self.finished
                st.skipped += self.channels[name].take_dropped()
            self.done.set()

    def _emit(self, frame: Frame, cr: CountLike) -> None:
        name = frame.source
        st = self.stats[name]
        limit = self.cfg.max_frames
        if limit and st.processed >= limit:
            return
        if not math.isfinite(float(cr.count)):
            # a non-finite count never reaches smoothing, alerts, aggregates or the outputs
            st.skipped += 1
            st.nonfinite += 1
            if st.nonfinite == 1:
                logger.warning("%s: frame %d gave a non-finite count; skipped (the model "
                               "output NaN or inf)", name, frame.index)
            return
        res = self.analyzers[name](frame, cr.density, cr.count, cr.latency_ms)
        res.batch = int(getattr(cr, "batch", 1))
        st.tick(res, time.monotonic())
        if self.needs_overlay:
            res.annotated = self.overlays[name].draw(
                frame.image, res.density, res.count, zones=self.zones, zone_counts=res.zones,
                fps=res.fps, label=name, smoothed=res.smoothed)
            if self.cfg.keep_view:
                self.views[name] = res.annotated.copy()
        write_all(self.sinks, res)
        st.track_alerts(res.alerts)
        if self.on_alert is not None:
            for ev in res.alerts:
                self.on_alert(ev)
        st.written(res)
        with st.lock:
            st.skipped += self.channels[name].take_dropped()
        if limit and st.processed >= limit:
            self.source_stop[name].set()
            self.wake.set()
