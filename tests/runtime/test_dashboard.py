"""Dashboard rendered to a string."""

from __future__ import annotations

import pytest

from streamcount.alerts import AlertEvent
from streamcount.dashboard import Dashboard, render_text, sparkline
from streamcount.stats import SourceStats


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
    for needle in ("rtsp://***@cam/1", "12.0", "11.5", "25/", "door", "ALERT", "2 reconnects",
                   "clip.mp4", "40/100", "ETA", "cpu", "20/", " 1-5"):
        assert needle in text, needle


@pytest.mark.parametrize("width", [80, 100, 140])
def test_every_column_fits_the_terminal(width: int) -> None:
    """At 80 columns too: queue, skip and state stay, names are whole, no line is too long."""
    long = "/data/recordings/entrance_camera_2026-11-27.mp4"
    st = SourceStats(long, live=False, total=500, processed=100, last_index=99, state="ok")
    st.count, st.smoothed, st.fps, st.skipped, st.queue_depth = 31.2, 30.8, 25.0, 3, 2
    st.started -= 4.0  # 100 frames in 4 s
    st.history.extend(range(40))
    st.latencies.extend([20, 22, 30])
    st.zones, st.zones_smoothed = {"escalator": 4.0}, {"escalator": 3.9}
    text = render_text(Dashboard({long: st}, "cpu, fp32", "crowd-accurate"), width=width)
    assert "crowd-accurate" in text and "skip" in text and "state" in text and "22/29" in text
    assert "ok" in text.split("state")[1] and "escalator" in text
    assert max(len(line) for line in text.splitlines()) <= width


def test_latency_is_engine_time_per_frame() -> None:
    """A batch of 8 frames that took 160 ms is 20 ms a frame, not 160."""
    import numpy as np

    from streamcount.frames import Frame, Result

    st = SourceStats("cam", live=False)
    img = np.zeros((4, 4, 3), np.uint8)
    for i in range(8):
        res = Result(Frame("cam", i, 0.0, 0.0, img), 1.0, np.zeros((4, 4), np.float32), 160.0)
        res.batch = 8
        st.tick(res, float(i))
    assert st.latency_pct(50) == 20.0


def test_sparkline_flat_and_empty() -> None:
    assert sparkline([]) == "" and sparkline([2, 2]) == "▁▁"
