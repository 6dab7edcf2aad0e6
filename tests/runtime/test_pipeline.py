"""Pipeline: every frame in file mode (batched), newest-wins in live mode, zones, smoothing,
alerts, stop/drain, and a failing source that does not stop the others."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streamcount.engine import Counter
from streamcount.frames import Frame, Result
from streamcount.pipeline import Channel, Pipeline, PipelineConfig
from streamcount.sinks import Sink
from streamcount.smoothing import parse_smoothing
from streamcount.sources import Source, SourceOptions, open_source
from streamcount.zones import ZoneSet
from tests.runtime.helpers import write_video


class Collect(Sink):
    def __init__(self) -> None:
        self.results: list[Result] = []

    def write(self, result: Result) -> None:
        self.results.append(result)


class ListSource(Source):
    """Frames from a list; optional delay per frame, optional error after some frames."""

    def __init__(self, name: str, images: list[np.ndarray], live: bool = False,
                 delay: float = 0.0, fail_after: int | None = None) -> None:
        super().__init__(name, SourceOptions(mode="live" if live else "file"))
        self.images, self.delay, self.fail_after = images, delay, fail_after
        self.total = None if live else len(images)
        self.fps = 10.0

    @property
    def inherently_live(self) -> bool:
        return self.live

    def frames(self, stop: threading.Event):
        for i, img in enumerate(self.images):
            if stop.is_set():
                return
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("camera unplugged")
            time.sleep(self.delay)
            yield Frame(self.name, i, i / self.fps, time.time(), img)


@pytest.mark.parametrize("batch", [1, 4])
def test_file_mode_processes_every_frame_in_order(tmp_path: Path, tiny_model: Path,
                                                  batch: int) -> None:
    src = open_source(str(write_video(tmp_path / "v.mp4", n=23)))
    sink = Collect()
    pipe = Pipeline([src], Counter(tiny_model, device="cpu"), [sink], PipelineConfig(batch=batch))
    pipe.run()
    assert [r.index for r in sink.results] == list(range(23))
    assert pipe.stats[src.name].processed == 23 and pipe.stats[src.name].skipped == 0
    assert pipe.engine_frames == 23 and pipe.engine_fps > 0
    r = sink.results[3]
    assert r.wall_time > 0 and r.stream_time == pytest.approx(0.3, abs=1e-3)


def test_counts_match_the_tiny_model(tiny_model: Path) -> None:
    img = np.full((24, 32, 3), 255, np.uint8)
    sink = Collect()
    Pipeline([ListSource("a", [img] * 3)], Counter(tiny_model, device="cpu"), [sink]).run()
    assert sink.results[0].count == pytest.approx(1e-3 * 24 * 32, rel=1e-3)


def test_live_mode_newest_frame_wins_and_counts_skipped(tiny_model: Path) -> None:
    class SlowCounter:
        def __init__(self) -> None:
            self.inner = Counter(tiny_model, device="cpu")

        def count_batch(self, frames):
            time.sleep(0.03)
            return self.inner.count_batch(frames)

    imgs = [np.zeros((16, 16, 3), np.uint8)] * 60
    src = ListSource("cam", imgs, live=True, delay=0.002)
    sink = Collect()
    pipe = Pipeline([src], SlowCounter(), [sink])
    pipe.run()
    st = pipe.stats["cam"]
    assert st.processed + st.skipped == 60 and st.skipped > 0
    idx = [r.index for r in sink.results]
    assert idx == sorted(idx) and idx[-1] == 59


def test_max_frames_and_max_fps(tmp_path: Path, tiny_model: Path) -> None:
    src = open_source(str(write_video(tmp_path / "v.mp4", n=20)))
    sink = Collect()
    t0 = time.monotonic()
    Pipeline([src], Counter(tiny_model, device="cpu"), [sink],
             PipelineConfig(max_frames=6, max_fps=50)).run()
    assert len(sink.results) == 6
    assert time.monotonic() - t0 >= 5 / 50 * 0.9


def test_zones_roi_smoothing_and_alerts(tiny_model: Path) -> None:
    zones = ZoneSet.from_dict({
        "roi": [[0, 0], [16, 0], [16, 16], [0, 16]],
        "zones": [{"name": "left", "polygon": [[0, 0], [8, 0], [8, 16], [0, 16]],
                   "alerts": [{"above": 0.01, "for": 0.2, "clear": 0}]}],
    })  # fmt: skip
    imgs = [np.full((16, 32, 3), 255 if i < 6 else 0, np.uint8) for i in range(10)]
    sink = Collect()
    events = []
    Pipeline([ListSource("a", imgs)], Counter(tiny_model, device="cpu"), [sink],
             PipelineConfig(smooth="none"), zones, events.append).run()
    r0 = sink.results[0]
    assert r0.count == pytest.approx(1e-3 * 16 * 16, rel=0.1)  # ROI: left ~16 columns only
    assert r0.zones["left"] == pytest.approx(1e-3 * 16 * 8, rel=0.15)
    assert [(e.event, e.stream_time) for e in events] == [("start", 0.2), ("end", 0.6)]


def test_smoothing_is_reported_beside_raw(tiny_model: Path) -> None:
    imgs = [np.full((8, 8, 3), v, np.uint8) for v in (0, 255, 255)]
    sink = Collect()
    Pipeline([ListSource("a", imgs)], Counter(tiny_model, device="cpu"), [sink],
             PipelineConfig(smooth="ema:0.5")).run()
    raw = [r.count for r in sink.results]
    assert [r.smoothed for r in sink.results] == pytest.approx(
        [raw[0], raw[1] / 2, raw[1] * 0.75], rel=1e-4)


def test_failing_source_does_not_stop_the_others(tiny_model: Path) -> None:
    imgs = [np.zeros((8, 8, 3), np.uint8)] * 8
    sink = Collect()
    pipe = Pipeline([ListSource("bad", imgs, fail_after=3), ListSource("good", imgs)],
                    Counter(tiny_model, device="cpu"), [sink])
    pipe.run()
    assert pipe.stats["bad"].processed == 3 and "unplugged" in (pipe.stats["bad"].error or "")
    assert pipe.stats["good"].processed == 8


def test_stop_drains_queued_frames(tiny_model: Path) -> None:
    imgs = [np.zeros((8, 8, 3), np.uint8)] * 1000
    sink = Collect()
    pipe = Pipeline([ListSource("a", imgs, delay=0.001)], Counter(tiny_model, device="cpu"),
                    [sink], PipelineConfig(batch=2))
    pipe.start()
    time.sleep(0.2)
    pipe.stop()
    assert pipe.wait(10)
    pipe.join()
    st = pipe.stats["a"]
    assert 0 < st.processed < 1000 and st.processed == len(sink.results)
    assert [r.index for r in sink.results] == list(range(st.processed))


def test_channel_file_mode_blocks_until_stop() -> None:
    ch = Channel(live=False, maxsize=2, wake=threading.Event())
    stop = threading.Event()
    assert ch.put(1, stop) and ch.put(2, stop)
    stop.set()
    assert not ch.put(3, stop)
    assert ch.take(5) == [1, 2]


@pytest.mark.parametrize("spec", ["ema:0", "median:0", "mean:3", "ema:x"])
def test_bad_smoothing_spec(spec: str) -> None:
    from streamcount.errors import InputError

    with pytest.raises(InputError):
        parse_smoothing(spec)
