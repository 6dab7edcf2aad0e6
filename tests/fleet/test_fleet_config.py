"""Fleet file, ledger and workers without Ray (fast; run everywhere)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from streamcount.errors import InputError
from streamcount.fleet.config import FleetConfig
from streamcount.fleet.ledger import Ledger, recover
from streamcount.fleet.workers import InferenceWorker, SourceWorker
from streamcount.sources import SourceOptions
from tests.conftest import make_tiny_model
from tests.runtime.helpers import write_video


def test_relative_paths_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "z.json").write_text(json.dumps(
        {"zones": [{"name": "a", "polygon": [[0, 0], [10, 0], [10, 10], [0, 10]]}]}))
    f = tmp_path / "fleet.yaml"
    f.write_text("output: out\ndefaults: {smooth: 'median:5', stride: 2}\nsources:\n"
                 "  - source: clips/a.mp4\n    zones: z.json\n"
                 "  - {source: 'rtsp://u:pw@cam/s', name: door, stride: 1}\n")
    cfg = FleetConfig.load(f)
    a, door = cfg.sources
    assert Path(a.source) == tmp_path / "clips" / "a.mp4" and a.zones == tmp_path / "z.json"
    assert a.smooth == "median:5" and a.stride == 2 and door.stride == 1
    assert door.source == "rtsp://u:pw@cam/s" and door.name == "door"
    assert cfg.output == tmp_path / "out"


def test_names_never_hold_credentials() -> None:
    cfg = FleetConfig.from_dict({"sources": ["rtsp://admin:hunter2@10.0.0.5/s1"]})
    assert "hunter2" not in cfg.sources[0].name and "hunter2" not in cfg.sources[0].file_stem


@pytest.mark.parametrize("text, needle", [
    ("", "mapping"),
    ("sources: []", "non-empty"),
    ("sources: [a.mp4]\nbatch: 0", "batch"),
    ("sources: [a.mp4]\nbogus: 1", "unknown key 'bogus'"),
    ("sources: [{path: a.mp4}]", "'source' key"),
    ("sources: [{source: a.mp4, colour: red}]", "unknown key 'colour'"),
    ("sources: [{source: a.mp4, mode: fast}]", "mode must be live or file"),
    ("sources: [{source: a.mp4, stride: 0}]", "stride"),
    ("sources: [{source: a.mp4, max_fps: -1}]", "max_fps"),
    ("sources: [a.mp4, b/a.mp4]", "two sources are named"),
    ("sources: [a.mp4]\ncsv: false", "nothing would be written"),
    ("sources: [a.mp4\n", "not valid YAML"),
])
def test_bad_fleet_files_give_one_line(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text(text)
    with pytest.raises(InputError, match=needle) as info:
        FleetConfig.load(f)
    assert "\n" not in str(info.value)


def test_missing_fleet_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="fleet file not found"):
        FleetConfig.load(tmp_path / "nope.yaml")


def test_ledger_is_at_most_once() -> None:
    led = Ledger()
    written = [i for i in [0, 1, 2, 1, 2, 3, 0, 4] if led.fresh("a", i) and
               led.commit("a", i) is None]
    assert written == [0, 1, 2, 3, 4] and led.resume_at("a") == 5 and led.resume_at("b") == 0


@pytest.mark.parametrize("suffix, body, last", [
    (".csv", "source,frame,count\na,0,1\na,1,2\n", 1),
    (".csv", "source,frame,count\na,0,1\na,1,2\na,2,", 1),  # torn last line is cut
    (".csv", "source,frame,count\n", -1),
    (".jsonl", '{"frame": 7}\n{"frame": 8}\n', 8),
    (".jsonl", '{"frame": 7}\n{"fr', 7),
    (".jsonl", "", -1),
])
def test_recover_reads_the_commit_point(tmp_path: Path, suffix: str, body: str,
                                        last: int) -> None:
    p = tmp_path / f"rows{suffix}"
    p.write_text(body)
    assert recover(p) == last
    assert p.read_text().endswith("\n") or p.read_text() == ""


def test_recover_missing_file(tmp_path: Path) -> None:
    assert recover(tmp_path / "none.csv") == -1


def _drain(w: SourceWorker, n: int = 4) -> list[int]:
    out: list[int] = []
    while True:
        b = w.next(n, timeout=2.0)
        out += [f[0] for f in b["frames"]]
        if b["ended"]:
            return out


def test_source_worker_resumes_after_the_ledger(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "a.mp4", n=25)
    w = SourceWorker(str(clip), "a", SourceOptions(mode="file"), prefetch=4)
    info = w.open(start=0)
    assert info["total"] == 25 and info["live"] is False
    assert _drain(w) == list(range(25))
    w.open(start=17)
    assert _drain(w) == list(range(17, 25))
    w.close()


def test_source_worker_max_frames_and_stride(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "a.mp4", n=30)
    w = SourceWorker(str(clip), "a", SourceOptions(mode="file", stride=3), max_frames=4)
    w.open()
    assert _drain(w) == [0, 3, 6, 9]
    w.close()


def test_source_worker_live_keeps_the_newest(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "a.mp4", n=40, fps=200.0)
    w = SourceWorker(str(clip), "a", SourceOptions(mode="live"))
    w.open()
    threading.Event().wait(0.5)  # the whole clip plays while nobody asks
    b = w.next(8, timeout=1.0)
    assert len(b["frames"]) <= 1 and b["dropped"] > 0
    w.close()


def test_source_worker_reports_open_errors(tmp_path: Path) -> None:
    w = SourceWorker(str(tmp_path / "missing.mp4"), "missing")
    with pytest.raises(Exception, match=r"missing\.mp4"):
        w.open()
    assert w.next(4)["ended"] is True


def test_inference_worker_batches_across_streams(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny.onnx", weight=1.0)
    eng = InferenceWorker(str(model), device="cpu", batch=8)
    eng.register("a", None)
    eng.register("b", {"zones": [{"name": "left", "polygon": [[0, 0], [4, 0], [4, 8], [0, 8]]}]})
    img = np.full((8, 8, 3), 255, np.uint8)
    outs: dict[str, dict] = {}

    def call(src: str) -> None:
        outs[src] = eng.count(src, {"frames": [(i, i / 10, 0.0, img) for i in range(4)],
                                    "ended": False})

    threads = [threading.Thread(target=call, args=(s,)) for s in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [r[0] for r in outs["a"]["rows"]] == [0, 1, 2, 3]
    assert outs["a"]["rows"][0][3] == pytest.approx(64.0, rel=1e-4)
    assert outs["b"]["rows"][0][4]["left"] == pytest.approx(40.0, rel=1e-4)  # columns 0-4
    h = eng.health()
    assert h["frames"] == 8 and h["provider"] == "cpu" and 4 <= h["mean_batch"] <= 8
    with pytest.raises(LookupError):
        eng.count("never-registered", {"frames": [(0, 0.0, 0.0, img)]})


def test_inference_worker_serves_node_metrics_on_loopback(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    import urllib.request

    model = make_tiny_model(tmp_path / "tiny.onnx")
    eng = InferenceWorker(str(model), device="cpu", metrics_port=0)
    eng.register("a", None)
    eng.count("a", {"frames": [(0, 0.0, 0.0, np.zeros((8, 8, 3), np.uint8))] * 3})
    port = eng.health()["metrics_port"]
    assert port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "streamcount_node_frames_total 3.0" in text



class _FakeRay:
    """Stands in for ``ray`` (no instance started)."""

    def is_initialized(self) -> bool:
        return False

    def init(self, address: str | None = None, **kw: object) -> None:
        pass


@pytest.mark.parametrize("message,shown", [
    ("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled", False),
    ("Token authentication is disabled for this Ray cluster. Anyone with network access", True),
])  # fmt: skip
def test_ray_token_auth_notice_is_quiet_but_its_absence_is_not(
    tmp_path: Path, message: str, shown: bool,
) -> None:
    import logging

    from streamcount.fleet.runner import _RAY_AUTH_LOGGER, FleetRunner

    cfg = FleetConfig.from_dict({"model": "crowd", "output": str(tmp_path),
                                 "sources": [{"source": "a.mp4"}]})
    FleetRunner(cfg)._init_ray(_FakeRay())
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    ray_logger = logging.getLogger(_RAY_AUTH_LOGGER)  # Ray's loggers may not propagate
    ray_logger.addHandler(handler)
    try:
        ray_logger.warning(message)
    finally:
        ray_logger.removeHandler(handler)
    assert (message in seen) == shown


@pytest.mark.parametrize("width", [60, 80, 120])
def test_fleet_summary_shows_whole_source_names(width: int) -> None:
    import io

    from rich.console import Console

    from streamcount.commands.fleet import _print_summary

    row = {"host": "vm", "frames": 100, "last_frame": 198, "skipped": 0, "restarts": 0,
           "mean_count": 6.39, "error": None, "state": "ended"}
    names = ["pets-zones", "pets-every-2nd"]
    summary = {"sources": dict.fromkeys(names, row), "frames": 200, "seconds": 2.0,
               "fps": 100.0, "nodes": [{"host": "vm", "provider": "cpu", "frames": 200,
                                        "calls": 25, "mean_batch": 8.0, "engine_ms": 30.0}]}
    con = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    _print_summary(summary, con)
    text = con.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in text
    assert all(n in text for n in names) and "200 frames in 25 engine calls" in text
