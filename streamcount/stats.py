"""Running statistics of a source, shared by the pipeline, the dashboards, metrics and summary.

Example:
    >>> st = SourceStats("cam", live=True)
    >>> st.processed, st.state
    (0, 'starting')
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streamcount.alerts import AlertEvent
from streamcount.frames import Result

logger = logging.getLogger(__name__)


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
