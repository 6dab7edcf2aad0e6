"""Dashboard rendered to a string."""

from __future__ import annotations

from streamcount.alerts import AlertEvent
from streamcount.dashboard import Dashboard, render_text, sparkline
from streamcount.pipeline import SourceStats


def test_dashboard_shows_sources_zones_alerts_and_progress() -> None:
    cam = SourceStats("rtsp://***@cam/1", live=True, reconnects=2, skipped=7, state="ok")
    cam.count, cam.smoothed, cam.fps, cam.queue_depth = 12.0, 11.5, 24.8, 1
    cam.zones, cam.zones_smoothed = {"door": 4.0}, {"door": 3.9}
    cam.history.extend([1, 2, 3, 4, 5])
    cam.latencies.extend([10, 20, 30])
    ev = AlertEvent("start", cam.name, "door", "above", 3, 1, 4.0, 5.0, 0.0)
    cam.active_alerts[("door", "above", 3.0)] = ev
    clip = SourceStats("clip.mp4", live=False, total=100, processed=40, last_index=39)
    text = render_text(Dashboard({cam.name: cam, clip.name: clip}, "cpu", "tiny"), width=140)
    for needle in ("rtsp://***@cam/1", "12.0", "11.5", "24.8", "door", "ALERT", "2 reconnects",
                   "clip.mp4", "40/100", "ETA", "cpu", "20/"):
        assert needle in text, needle


def test_sparkline_flat_and_empty() -> None:
    assert sparkline([]) == "" and sparkline([2, 2]) == "▁▁"
