"""The fleet's two actor classes, plain Python (the runner wraps them with ``ray.remote``).

A :class:`SourceWorker` decodes one source on its node in a capture thread. File sources keep
every frame, in order, a few ahead; live sources keep only the newest (older ones are dropped
and counted), so a slow cluster never builds a backlog of stale frames.

An :class:`InferenceWorker` owns one :class:`~streamcount.engine.Counter`. Ray runs its
:meth:`~InferenceWorker.count` calls concurrently (a threaded actor), and one engine thread takes
whatever frames are waiting from every stream, up to ``batch``, into one engine call. ROI and
zone counts are computed next to the engine, so only numbers travel back to the driver.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamcount import defaults
from streamcount.channel import Channel
from streamcount.errors import StreamcountError
from streamcount.sources import Source, SourceOptions, open_source
from streamcount.zones import ZoneSet, measure

logger = logging.getLogger(__name__)

FrameTuple = tuple[int, float, float, np.ndarray]  # index, stream time, wall time, BGR image
RowTuple = tuple[int, float, float, float, dict[str, float], float]  # ..., count, zones, ms


def _message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, StreamcountError) else f"{type(exc).__name__}: {exc}"


class SourceWorker:
    """Decodes one source; hands out batches of frames.

    Args:
        spec: The source (file, folder, glob, webcam index or URL).
        name: Its display name (credentials never appear in it).
        options: How to read it.
        prefetch: Frames decoded ahead in file mode.
        max_fps: At most this many frames per second (live: drop; file: pace).
        max_frames: Stop after this many delivered frames (counted from frame 0).
    """

    def __init__(self, spec: str, name: str, options: SourceOptions | None = None,
                 prefetch: int = 16, max_fps: float | None = None,
                 max_frames: int | None = None) -> None:
        self.spec = spec
        self.name = name
        self.options = options or SourceOptions()
        self.prefetch = prefetch
        self.max_fps = max_fps
        self.max_frames = max_frames
        self.src: Source | None = None
        self.channel: Channel | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: str | None = None
        self.generation = 0

    def open(self, start: int = 0) -> dict[str, Any]:
        """(Re)open the source and start decoding; file sources skip frames before ``start``.

        Returns:
            ``name``, ``live``, ``fps``, ``total``, ``node`` and ``host``.

        Raises:
            StreamcountError: the source cannot be opened (one line).
        """
        self.close()
        self.error = None
        self.generation += 1
        src = open_source(self.spec, self.options)
        src.name = self.name
        self.src = src
        self.stop = threading.Event()
        self.channel = Channel(src.live, self.prefetch, threading.Event())
        self.thread = threading.Thread(target=self._capture, args=(src, self.channel, start,
                                       self.stop), name=f"capture-{self.name}", daemon=True)
        self.thread.start()
        return {"name": self.name, "live": src.live, "fps": src.fps, "total": src.total,
                "node": _node_id(), "host": socket.gethostname(), "pid": os.getpid()}

    def _capture(self, src: Source, ch: Channel, start: int, stop: threading.Event) -> None:
        period = 1.0 / self.max_fps if self.max_fps else 0.0
        if src.live and not src.inherently_live and src.fps > 0:  # a file played "live"
            period = max(period, 1.0 / src.fps)
        pace = period and (not src.live or not src.inherently_live)
        next_t = time.monotonic()
        try:
            for frame in src.frames(stop):
                if self.max_frames is not None and frame.index >= self.max_frames * max(
                        1, self.options.stride):
                    break
                if not src.live and frame.index < start:
                    continue  # resuming: already counted
                if period:
                    now = time.monotonic()
                    if not pace and now < next_t:
                        ch.dropped += 1
                        continue
                    if now < next_t and stop.wait(next_t - now):
                        break
                    next_t = max(next_t + period, time.monotonic() - period)
                if not ch.put((frame.index, frame.stream_time, frame.wall_time, frame.image),
                              stop):
                    break
        except Exception as exc:  # reported to the driver with the next batch
            self.error = _message(exc)
        finally:
            src.close()
            ch.close()

    def next(self, n: int, timeout: float = 0.5) -> dict[str, Any]:
        """Up to ``n`` frames (live: the newest one), waiting at most ``timeout`` seconds.

        Returns:
            ``frames`` (index, stream time, wall time, image), ``ended`` (no more will come),
            ``dropped`` (live frames replaced by newer ones since the last call), ``state``,
            ``corrupt``, ``reconnects``, ``error`` and ``generation`` (bumped by each open).
        """
        ch, src = self.channel, self.src
        if ch is None or src is None:
            return {"frames": [], "ended": True, "dropped": 0, "state": "closed", "corrupt": 0,
                    "reconnects": 0, "error": self.error or "not open",
                    "generation": self.generation}
        deadline = time.monotonic() + timeout
        while not len(ch) and not ch.closed:
            ch.wake.clear()
            if len(ch) or ch.closed:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ch.wake.wait(left)
        frames = ch.take(1 if src.live else n)
        return {"frames": frames, "ended": ch.done, "dropped": ch.take_dropped(),
                "state": src.state, "corrupt": src.corrupt, "reconnects": src.reconnects,
                "error": self.error, "generation": self.generation}

    def close(self) -> None:
        """Stop decoding and release the source."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None
        if self.src is not None:
            self.src.close()
        self.src = None
        self.channel = None

    def ping(self) -> int:
        """The worker's process id (a liveness probe)."""
        return os.getpid()


@dataclass
class _Job:
    source: str
    frames: list[FrameTuple]
    done: threading.Event = field(default_factory=threading.Event)
    rows: list[RowTuple] = field(default_factory=list)
    error: BaseException | None = None


class InferenceWorker:
    """One engine serving many streams, batching their frames together.

    Args:
        model: Model name or path.
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt``.
        threads: Engine threads (0: default).
        batch: Most frames per engine call.
        metrics_port: Serve this node's engine metrics for Prometheus here (None: off).
        metrics_host: Address to bind it (127.0.0.1 unless told otherwise).
    """

    def __init__(self, model: str, device: str = defaults.DEVICE, threads: int = defaults.THREADS,
                 batch: int = defaults.BATCH, metrics_port: int | None = None,
                 metrics_host: str = defaults.METRICS_HOST) -> None:
        from streamcount.engine import Counter

        self.counter = Counter(model, device=device, threads=threads)
        self.batch = max(1, batch)
        self.zones: dict[str, ZoneSet] = {}
        self.jobs: deque[_Job] = deque()
        self.cond = threading.Condition()
        self.frames = 0
        self.calls = 0
        self.engine_s = 0.0
        self.started = time.monotonic()
        self.metrics = _NodeMetrics(metrics_port, metrics_host) if metrics_port is not None \
            else None
        threading.Thread(target=self._loop, name="engine", daemon=True).start()

    def register(self, source: str, zones: dict[str, Any] | None) -> None:
        """Use these zones (the zone file's content; None: whole frame) for ``source``."""
        self.zones[source] = ZoneSet.from_dict(zones, source) if zones else ZoneSet.empty()

    def count(self, source: str, batch: dict[str, Any]) -> dict[str, Any]:
        """Count a batch from :meth:`SourceWorker.next`; returns it with ``rows`` instead of
        ``frames``: (index, stream time, wall time, count, zone counts, engine ms)."""
        if source not in self.zones:  # this actor was restarted and lost its registrations
            raise LookupError(f"source {source!r} is not registered with this inference actor")
        frames = batch.get("frames") or []
        out = {k: v for k, v in batch.items() if k != "frames"}
        if not frames:
            out["rows"] = []
            return out
        job = _Job(source, frames)
        with self.cond:
            self.jobs.append(job)
            self.cond.notify_all()
        job.done.wait()
        if job.error is not None:
            raise job.error
        out["rows"] = job.rows
        return out

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.jobs:
                    self.cond.wait()
                jobs = [self.jobs.popleft()]
                n = len(jobs[0].frames)
                while self.jobs and n + len(self.jobs[0].frames) <= self.batch:
                    n += len(self.jobs[0].frames)
                    jobs.append(self.jobs.popleft())
            try:
                images = [f[3] for job in jobs for f in job.frames]
                t0 = time.perf_counter()
                results = self.counter.count_batch(images)
                dt = time.perf_counter() - t0
                self.frames += len(images)
                self.calls += 1
                self.engine_s += dt
                if self.metrics is not None:
                    self.metrics.observe(len(images), dt)
                k = 0
                for job in jobs:
                    zones = self.zones.get(job.source) or ZoneSet.empty()
                    for idx, st, wt, _img in job.frames:
                        r = results[k]
                        k += 1
                        c, zc, _ = measure(zones, r.density, r.count)
                        job.rows.append((idx, st, wt, c, zc, r.latency_ms))
            except BaseException as exc:  # handed to the callers, the loop goes on
                for job in jobs:
                    job.error = exc
            for job in jobs:
                job.done.set()

    def health(self) -> dict[str, Any]:
        """Node, provider and engine throughput of this actor."""
        up = time.monotonic() - self.started
        return {"node": _node_id(), "host": socket.gethostname(), "pid": os.getpid(),
                "provider": self.counter.device, "model": self.counter.name,
                "frames": self.frames, "calls": self.calls,
                "mean_batch": self.frames / self.calls if self.calls else 0.0,
                "engine_ms": 1000.0 * self.engine_s / self.calls if self.calls else 0.0,
                "fps": self.frames / up if up > 0 else 0.0, "uptime_s": up,
                "metrics_port": self.metrics.port if self.metrics else None}


class _NodeMetrics:
    """Per-node Prometheus endpoint of an inference actor."""

    def __init__(self, port: int, host: str) -> None:
        import prometheus_client as pc

        self.registry = pc.CollectorRegistry()
        self.frames = pc.Counter("streamcount_node_frames", "frames counted on this node",
                                 registry=self.registry)
        self.batch = pc.Histogram("streamcount_node_batch_frames", "frames per engine call",
                                  buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.latency = pc.Histogram("streamcount_node_engine_seconds", "engine time per call",
                                    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
                                    registry=self.registry)
        started = pc.start_http_server(port, addr=host, registry=self.registry)
        server = started[0] if isinstance(started, tuple) else None
        self.port = int(server.server_address[1]) if server is not None else port

    def observe(self, frames: int, seconds: float) -> None:
        self.frames.inc(frames)
        self.batch.observe(frames)
        self.latency.observe(seconds)


def _node_id() -> str:
    """The Ray node id of this process (empty outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # pragma: no cover - outside a Ray worker
        return ""
