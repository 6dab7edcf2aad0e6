"""Sinks: CSV/JSONL rows, aggregates, video, snapshots, event log, alert command, metrics."""

from __future__ import annotations

import csv
import json
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from streamcount.alerts import AlertCommand, AlertEvent, EventLog
from streamcount.errors import OutputError
from streamcount.frames import Frame, Result
from streamcount.sinks import check_writable
from streamcount.sinks.aggregate import AggregateSink, parse_duration
from streamcount.sinks.csv import CsvSink
from streamcount.sinks.jsonl import JsonlSink
from streamcount.sinks.snapshots import SnapshotSink
from streamcount.sinks.video import VideoSink
from tests.runtime.helpers import video_frames


def result(i: int, count: float, source: str = "a", t: float | None = None) -> Result:
    img = np.full((48, 64, 3), i % 255, np.uint8)
    f = Frame(source, i, i * 0.5 if t is None else t, 1000.0 + i, img)
    return Result(f, count, np.zeros((48, 64), np.float32), 2.0, count, {"z": count / 2},
                  {"z": count / 2})


def test_csv_rows_flushed_per_frame(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "c.csv", ["z"])
    sink.open()
    sink.write(result(0, 1.0))
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))  # readable before close
    assert rows == [{"source": "a", "frame": "0", "stream_time": "0.0", "wall_time": "1000.0",
                     "count": "1.0", "smoothed": "1.0", "latency_ms": "2.0", "zone:z": "0.5",
                     "zone:z:smoothed": "0.5"}]
    sink.close()


def test_jsonl(tmp_path: Path) -> None:
    with JsonlSink(tmp_path / "r.jsonl") as s:
        for i in range(3):
            s.write(result(i, float(i)))
    recs = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in recs] == [0, 1, 2] and recs[2]["zones"]["z"]["count"] == 1.0


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("5m", 300), ("1h", 3600), ("2", 2)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_aggregate_windows(tmp_path: Path) -> None:
    with AggregateSink(tmp_path / "agg.csv", 2.0) as s:
        for i, c in enumerate([1, 3, 5, 7, 2]):  # t = 0, .5, 1, 1.5 | 2
            s.write(result(i, float(c)))
    rows = list(csv.DictReader((tmp_path / "agg.csv").open()))
    total = [r for r in rows if r["zone"] == "total"]
    assert [(r["window_start"], r["frames"], r["min"], r["mean"], r["max"]) for r in total] == [
        ("0.0", "4", "1.0", "4.0", "7.0"), ("2.0", "1", "2.0", "2.0", "2.0")]
    assert {r["zone"] for r in rows} == {"total", "z"}


def test_video_one_file_per_source(tmp_path: Path) -> None:
    sink = VideoSink(tmp_path / "o.mp4", {"a": ("a", 10.0), "b": ("b", 5.0)})
    with sink:
        for i in range(4):
            sink.write(result(i, 1.0, "a"))
            sink.write(result(i, 1.0, "b"))
        sink.write(result(9, 1.0, "b"))
    assert video_frames(tmp_path / "o_a.mp4") == 4 and video_frames(tmp_path / "o_b.mp4") == 5


def test_snapshots(tmp_path: Path) -> None:
    with SnapshotSink(tmp_path / "snaps", 3, {"a": "cam"}) as s:
        for i in range(7):
            s.write(result(i, 1.0))
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [
        "cam_000000.jpg", "cam_000003.jpg", "cam_000006.jpg"]


@pytest.mark.parametrize("make", ["missing_dir", "is_dir", "read_only"])
def test_unwritable_outputs(tmp_path: Path, make: str) -> None:
    target = tmp_path / "missing" / "c.csv"
    if make == "is_dir":
        target = tmp_path
    elif make == "read_only":
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "c.csv"
        import os

        if os.access(ro, os.W_OK):  # root ignores permissions
            pytest.skip("running as root")
    with pytest.raises(OutputError):
        check_writable(target)


def test_event_log_and_alert_command(tmp_path: Path) -> None:
    ev = AlertEvent("start", "cam", "door", "above", 5, 2, 7.5, 12.0, 1000.0)
    with EventLog(tmp_path / "ev.jsonl") as log:
        log.write(ev)
    assert json.loads((tmp_path / "ev.jsonl").read_text())["zone"] == "door"
    out = tmp_path / "hook.txt"
    code = ("import os, sys; open(sys.argv[1], 'w').write(os.environ['STREAMCOUNT_ZONE'] + ' ' "
            "+ os.environ['STREAMCOUNT_COUNT'])")
    cmd = AlertCommand(f"{sys.executable} -c \"{code}\" '{out}'")
    cmd(ev)
    cmd.close()
    assert out.read_text() == "door 7.500"


def test_metrics_endpoint(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    from types import SimpleNamespace

    from streamcount.sinks.metrics import MetricsSink

    stats = {"a": SimpleNamespace(processed=3, skipped=1, corrupt=0, reconnects=2)}
    with MetricsSink(0, stats=lambda: stats) as m:
        m.write(result(0, 4.0))
        body = urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5).read()
    text = body.decode()
    assert 'streamcount_objects{source="a",zone="total"} 4.0' in text
    assert 'streamcount_reconnects_total{source="a"} 2.0' in text


def _codec(path: Path) -> str:
    av = pytest.importorskip("av")
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.name


@pytest.mark.parametrize("size", [(64, 48), (63, 47)])  # odd sizes are padded for yuv420p
def test_mp4_output_is_h264_that_players_read(tmp_path: Path, size: tuple[int, int]) -> None:
    pytest.importorskip("av")
    sink = VideoSink(tmp_path / "o.mp4", {"a": ("a", 10.0)})
    w, h = size
    with sink:
        for i in range(12):
            img = np.full((h, w, 3), 20 * i, np.uint8)
            sink.write(Result(Frame("a", i, i / 10, 0.0, img), 1.0,
                              np.zeros((h, w), np.float32), 1.0, 1.0, {}, {}))
    assert _codec(tmp_path / "o.mp4") == "h264" and sink.codecs["a"] == "h264"
    assert video_frames(tmp_path / "o.mp4") == 12  # OpenCV reads every frame back


def test_without_h264_the_fallback_says_so(tmp_path: Path, monkeypatch, caplog) -> None:
    import streamcount.sinks.video as video

    monkeypatch.setattr(video, "h264_available", lambda: False)
    sink = VideoSink(tmp_path / "o.mp4", {"a": ("a", 10.0)})
    with caplog.at_level("WARNING"), sink:
        img = np.zeros((48, 64, 3), np.uint8)
        for i in range(3):
            sink.write(Result(Frame("a", i, 0.0, 0.0, img), 1.0, np.zeros((48, 64), np.float32),
                              1.0, 1.0, {}, {}))
    assert sink.codecs["a"] == "mpeg4" and "no H.264 encoder" in caplog.text
    assert video_frames(tmp_path / "o.mp4") == 3


def test_alert_commands_are_bounded_and_share_one_shutdown_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    cmd = AlertCommand(f"{sys.executable} -c 'import time; time.sleep(30)'", max_running=3)
    ev = AlertEvent("start", "cam", "door", "above", 1.0, 0.0, 2.0, 0.0, 0.0)
    for _ in range(20):  # a flapping rule
        cmd(ev)
    assert len(cmd.running) == 3 and cmd.dropped == 17
    procs = list(cmd.running)
    # A simulated clock: every wait advances it, so the test measures how long close() would
    # wait in all, not how fast this machine is.
    now = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    cmd.close(timeout=1.0)
    monkeypatch.undo()
    # one deadline for all three (3 s if each command got its own), then every one killed
    assert 1.0 <= now[0] < 1.1, now[0]
    assert not cmd.running and all(p.returncode is not None and p.returncode < 0 for p in procs)


def test_metrics_off_loopback_need_a_token() -> None:
    pytest.importorskip("prometheus_client")
    import urllib.error

    from streamcount.errors import InputError
    from streamcount.sinks.metrics import MetricsSink

    with pytest.raises(InputError, match="--metrics-token"):
        MetricsSink(0, host="0.0.0.0")
    with MetricsSink(0, host="0.0.0.0", token="s3cret-token") as m:
        m.write(result(0, 4.0))
        url = f"http://127.0.0.1:{m.port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=5)
        assert e.value.code == 401
        req = urllib.request.Request(url, headers={"Authorization": "Bearer wrong"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=5)
        req = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret-token"})
        assert b"streamcount_objects" in urllib.request.urlopen(req, timeout=5).read()


def test_metrics_names_pass_the_prometheus_linter() -> None:
    """No gauge ends in _count/_sum/_bucket (reserved); promtool checks it where installed."""
    pytest.importorskip("prometheus_client")
    import shutil
    import subprocess

    from streamcount.sinks.metrics import MetricsSink

    with MetricsSink(0) as m:
        m.write(result(0, 4.0))
        text = urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5).read()
    for line in text.decode().splitlines():
        if line.startswith("# TYPE") and line.endswith("gauge"):
            assert not line.split()[2].endswith(("_count", "_sum", "_bucket", "_total")), line
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_metrics_label_sources_by_name_not_path() -> None:
    pytest.importorskip("prometheus_client")
    from types import SimpleNamespace

    from streamcount.sinks.metrics import MetricsSink

    stats = {"a": SimpleNamespace(processed=3, skipped=0, corrupt=0, reconnects=0)}
    with MetricsSink(0, stats=lambda: stats, labels={"a": "entrance"}) as m:
        m.write(result(0, 4.0))
        text = urllib.request.urlopen(f"http://127.0.0.1:{m.port}/metrics", timeout=5).read()
    assert b'streamcount_objects{source="entrance",zone="total"} 4.0' in text
    assert b'streamcount_frames_processed_total{source="entrance"} 3.0' in text
