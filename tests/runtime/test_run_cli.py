"""`streamcount run` and `streamcount zones` end to end: outputs, SIGINT, bad inputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamcount.cli import main
from tests.runtime.helpers import video_frames, write_images, write_video

REPO = Path(__file__).resolve().parents[2]


def test_run_writes_one_row_and_one_video_frame_per_frame(tmp_path: Path, tiny_model: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    v = write_video(tmp_path / "v.mp4", n=30, w=320, h=240)
    zones = tmp_path / "z.json"
    zones.write_text(json.dumps({"zones": [{"name": "left", "polygon": [[0, 0], [160, 0],
                                 [160, 240], [0, 240]], "alerts": [{"above": 0.0, "for": 0}]}]}))
    out = tmp_path / "o.mp4"
    rc = main(["run", str(v), "--model", str(tiny_model), "--csv", str(tmp_path / "c.csv"),
               "--jsonl", str(tmp_path / "r.jsonl"), "--video", str(out), "--no-dashboard",
               "--zones", str(zones), "--events", str(tmp_path / "ev.jsonl"), "--batch", "4",
               "--aggregate", "1s", "--aggregate-out", str(tmp_path / "agg.csv")])
    assert rc == 0
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert len(rows) == 30 and rows[0]["source"] == str(v) and "zone:left" in rows[0]
    assert video_frames(out) == 30
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 30
    assert json.loads((tmp_path / "ev.jsonl").read_text().splitlines()[0])["event"] == "start"
    assert (tmp_path / "agg.csv").read_text().count("\n") > 3
    assert "end-to-end" in capsys.readouterr().out


def test_several_sources_one_video_each(tmp_path: Path, tiny_model: Path) -> None:
    a = write_video(tmp_path / "a.mp4", n=8)
    imgs = write_images(tmp_path / "imgs", n=3)
    rc = main(["run", str(a), str(imgs), "--model", str(tiny_model), "--no-dashboard", "--quiet",
               "--csv", str(tmp_path / "c.csv"), "--video", str(tmp_path / "o.mp4")])
    assert rc == 0
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert {r["source"] for r in rows} == {str(a), str(imgs)} and len(rows) == 11
    assert video_frames(tmp_path / "o_a.mp4") == 8 and video_frames(tmp_path / "o_imgs.mp4") == 3


def test_sigint_closes_outputs(tmp_path: Path, tiny_model: Path) -> None:
    v = write_video(tmp_path / "v.mp4", n=60, w=64, h=48, fps=20)
    csv_path, out = tmp_path / "c.csv", tmp_path / "o.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamcount", "run", str(v), "--model", str(tiny_model),
         "--csv", str(csv_path), "--video", str(out), "--no-dashboard", "--mode", "live"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until a few rows are written
        if csv_path.exists() and csv_path.read_text().count("\n") > 5:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rows = list(csv.DictReader(csv_path.open()))
    assert 5 <= len(rows) < 60
    assert video_frames(out) == len(rows)


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [("missing", 2, "not found"), ("text", 6, "cannot open"), ("empty", 6, "empty"),
     ("garbage", 6, ""), ("bad_zones", 2, "zone file"), ("bad_out", 7, "does not exist"),
     ("bad_smooth", 2, "--smooth"), ("bad_model", 2, "model file not found")],
)
def test_bad_inputs_one_line(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture,
                             case: str, code: int, needle: str) -> None:
    v = write_video(tmp_path / "v.mp4", n=3)
    args = ["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--quiet"]
    if case == "missing":
        args[1] = str(tmp_path / "nope.mp4")
    elif case == "text":
        (tmp_path / "notes.txt").write_text("hello\n" * 100)
        args[1] = str(tmp_path / "notes.txt")
    elif case == "empty":
        (tmp_path / "e.mp4").write_bytes(b"")
        args[1] = str(tmp_path / "e.mp4")
    elif case == "garbage":
        (tmp_path / "g.mp4").write_bytes(os.urandom(5000))
        args[1] = str(tmp_path / "g.mp4")
    elif case == "bad_zones":
        (tmp_path / "z.json").write_text("{not json")
        args += ["--zones", str(tmp_path / "z.json")]
    elif case == "bad_out":
        args += ["--csv", str(tmp_path / "no" / "dir" / "c.csv")]
    elif case == "bad_smooth":
        args += ["--smooth", "kalman"]
    elif case == "bad_model":
        args[3] = str(tmp_path / "missing.onnx")
    rc, err = _cli(args, capsys)
    assert rc == code, err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


def test_no_source_uses_example_clip_or_says_it_is_missing(
        tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from streamcount.commands import run as run_cmd

    monkeypatch.setattr(run_cmd, "example_clip", lambda: tmp_path / "missing.mp4")
    rc, err = _cli(["run", "--model", str(tiny_model), "--no-dashboard"], capsys)
    assert rc == 2 and "example clip" in err
    monkeypatch.setattr(run_cmd, "example_clip", lambda: write_video(tmp_path / "ex.mp4", n=4))
    rc, _ = _cli(["run", "--model", str(tiny_model), "--no-dashboard", "--quiet"], capsys)
    assert rc == 0


def test_show_without_display_goes_on(tmp_path: Path, tiny_model: Path,
                                      capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    v = write_video(tmp_path / "v.mp4", n=3)
    rc = main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--show"])
    assert rc == 0


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_zones_template(tmp_path: Path, capsys: pytest.CaptureFixture, suffix: str) -> None:
    from streamcount.zones import ZoneSet

    v = write_video(tmp_path / "v.mp4", n=3, w=320, h=240)
    out = tmp_path / f"zones{suffix}"
    assert main(["zones", str(v), "--out", str(out)]) == 0
    zs = ZoneSet.load(out)
    assert zs.frame_size == (320, 240) and zs.names == ["left", "right"]
    assert (tmp_path / "zones.png").stat().st_size > 0
    rc, err = _cli(["zones", str(v), "--out", str(out)], capsys)
    assert rc == 2 and "--force" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("flag", ["--csv", "--jsonl"])
def test_full_disk_is_one_line_exit_7(tiny_model: Path, flag: str, capsys) -> None:
    from streamcount.cli import main

    clip = Path(__file__).resolve().parents[2] / "examples" / "pets2009_s2l1.mp4"
    rc = main(["run", str(clip), "--model", str(tiny_model), flag, "/dev/full",
               "--no-dashboard", "--max-frames", "3", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 7 and "No space left on device" in err and "Traceback" not in err


@pytest.mark.parametrize("flag,target", [("--jsonl", "-"), ("--csv", "-"),
                                         ("--csv", "/dev/stdout")])
def test_rows_go_to_standard_output_for_pipes(tmp_path: Path, tiny_model: Path, flag: str,
                                              target: str) -> None:
    v = write_video(tmp_path / "v.mp4", n=12, w=160, h=120)
    out = subprocess.run(
        [sys.executable, "-m", "streamcount", "run", str(v), "--model", str(tiny_model), flag,
         target, "--batch", "4"], capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # stdout is a pipe here, as in `streamcount run ... | jq`
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    if flag == "--jsonl":
        assert [json.loads(x)["frame"] for x in lines] == list(range(12))
    else:
        rows = list(csv.DictReader(lines))
        assert [int(r["frame"]) for r in rows] == list(range(12))
    assert "end-to-end" in out.stderr and "end-to-end" not in out.stdout


def test_a_closed_pipe_ends_the_run_quietly(tmp_path: Path, tiny_model: Path) -> None:
    v = write_video(tmp_path / "v.mp4", n=200, w=160, h=120)
    cmd = (f"{sys.executable} -m streamcount run {v} --model {tiny_model} --jsonl - --quiet "
           "| head -n 2")
    out = subprocess.run(["bash", "-c", f"set -o pipefail; {cmd}"], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2
    assert "error" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("args,match", [
    (["--csv", "-", "--jsonl", "-"], "both write to standard output"),
    (["--video", "-"], "cannot write to standard output"),
    (["--aggregate", "5s"], "needs --aggregate-out"),
    (["--input-scale", "40"], "between 0.05 and 4"),
])  # fmt: skip
def test_impossible_output_combinations_are_one_line(tmp_path: Path, tiny_model: Path,
                                                     args: list, match: str, capsys) -> None:
    v = write_video(tmp_path / "v.mp4", n=3, w=64, h=48)
    assert main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", *args]) == 2
    assert match in capsys.readouterr().err


def test_aggregate_rows_default_beside_the_csv(tmp_path: Path, tiny_model: Path) -> None:
    v = write_video(tmp_path / "v.mp4", n=30, w=64, h=48)
    rc = main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--quiet",
               "--csv", str(tmp_path / "c.csv"), "--aggregate", "1s"])
    assert rc == 0 and (tmp_path / "c_aggregate.csv").read_text().count("\n") >= 2


def test_realtime_plays_a_file_at_its_own_frame_rate(tmp_path: Path, tiny_model: Path) -> None:
    v = write_video(tmp_path / "v.mp4", n=15, w=64, h=48)  # 10 fps: 1.4 s of video
    fps = __import__("cv2").VideoCapture(str(v)).get(5)
    t0 = time.perf_counter()
    rc = main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--quiet",
               "--realtime", "--csv", str(tmp_path / "c.csv")])
    took = time.perf_counter() - t0
    assert rc == 0 and took >= 0.9 * 14 / fps  # never faster than the video itself
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert 1 <= len(rows) <= 15
    assert main(["run", str(v), "--model", str(tiny_model), "--realtime", "--mode", "file"]) == 2


def test_missing_plot_extra_fails_before_any_output_exists(tmp_path: Path, tiny_model: Path,
                                                          monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plot extra were absent
    v = write_video(tmp_path / "v.mp4", n=3, w=64, h=48)
    rc = main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--plot",
               str(tmp_path / "p.png"), "--csv", str(tmp_path / "c.csv"), "--video",
               str(tmp_path / "o.mp4")])
    assert rc == 3 and "plot" in capsys.readouterr().err
    assert not list(tmp_path.glob("c.csv")) and not list(tmp_path.glob("o.mp4"))


def test_plot_has_zones_and_short_legend(tmp_path: Path, tiny_model: Path) -> None:
    pytest.importorskip("matplotlib")
    from streamcount.sinks.plot import PlotSink

    v = write_video(tmp_path / "v.mp4", n=10, w=64, h=48)
    zones = tmp_path / "z.json"
    zones.write_text(json.dumps({"zones": [{"name": "left", "polygon": [[0, 0], [32, 0],
                                                                        [32, 48], [0, 48]]}]}))
    seen = {}
    real_close = PlotSink.close

    def spy(self):  # keep what the legend is made of
        seen.update(self.zones)
        real_close(self)

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(PlotSink, "close", spy)
    try:
        rc = main(["run", str(v), "--model", str(tiny_model), "--no-dashboard", "--quiet",
                   "--zones", str(zones), "--plot", str(tmp_path / "p.png")])
    finally:
        monkeypatch.undo()
    assert rc == 0 and (tmp_path / "p.png").stat().st_size > 0
    assert "left" in seen[str(v)]


def test_non_finite_counts_are_skipped_not_written(tmp_path: Path, capsys) -> None:
    from tests.conftest import make_tiny_model

    model = make_tiny_model(tmp_path / "nan.onnx", weight=float("nan"))
    v = write_video(tmp_path / "v.mp4", n=10, w=64, h=48)
    rc = main(["run", str(v), "--model", str(model), "--no-dashboard", "--quiet", "--csv",
               str(tmp_path / "c.csv"), "--summary-json", str(tmp_path / "s.json"),
               "--aggregate", "1s"])
    assert rc == 0
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert rows == []  # no NaN row, no NaN smoothing carried on
    agg = (tmp_path / "c_aggregate.csv").read_text()
    assert "nan" not in agg.lower()
    summary = json.loads((tmp_path / "s.json").read_text())
    assert "non-finite count" in capsys.readouterr().err
    assert json.dumps(summary).lower().count("nan") == 0
