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
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streamcount import defaults
from streamcount.alerts import AlertEvent
from streamcount.analyzer import Analyzer
from streamcount.channel import Channel
from streamcount.frames import Frame
from streamcount.overlay import Overlay
from streamcount.sinks import Sink, write_all
from streamcount.smoothing import parse_smoothing
from streamcount.sources import Source
from streamcount.stats import SourceStats
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
        smoother = self._smoother = parse_smoothing(self.cfg.smooth)
        self._next_zones: ZoneSet | None = None
        self._zones_lock = threading.Lock()
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

    def set_zones(self, zones: ZoneSet) -> None:
        """Count with ``zones`` from the next frame on, without a restart (any thread).

        The output thread swaps them in between two frames: each source gets a fresh
        :class:`Analyzer` (smoothing and alert state start over for the new zones).
        """
        with self._zones_lock:
            self._next_zones = zones

    def _swap_zones(self) -> None:
        with self._zones_lock:
            zones, self._next_zones = self._next_zones, None
        if zones is None:
            return
        self.zones = zones
        self.analyzers = {name: Analyzer(name, zones, self._smoother) for name in self.analyzers}
        logger.info("zones changed: %s", ", ".join(zones.names) or "none")

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
        if self._next_zones is not None:
            self._swap_zones()
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
