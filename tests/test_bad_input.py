"""The bad-input suite: every failure a user can cause is one line and a non-zero exit.

Each case runs the real CLI (``main(argv)``) on a broken file, value or path made by the
``bad`` fixture, and checks the exit code, that stderr names the problem in one ``error:``
line, and that no traceback leaks. Cases span prepare, train, evaluate, calibrate, export,
count, run, zones and fleet.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamcount.cli import main
from tests.conftest import make_tiny_model
from tests.runtime.helpers import write_video


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Broken inputs of every kind, made once."""
    d = tmp_path_factory.mktemp("bad")
    f: dict[str, Path | str] = {"dir": d}
    good = write_video(d / "good.mp4", n=20)
    f["good_video"] = good
    f["model"] = make_tiny_model(d / "tiny.onnx")
    (d / "empty.mp4").write_bytes(b"")
    f["empty_video"] = d / "empty.mp4"
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    f["garbage_video"] = d / "garbage.mp4"
    (d / "truncated.mp4").write_bytes(good.read_bytes()[:600])
    f["truncated_video"] = d / "truncated.mp4"
    (d / "text.avi").write_text("this is not a video\n")
    f["text_video"] = d / "text.avi"
    w = cv2.VideoWriter(str(d / "noframes.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    w.release()  # a container with no frames
    f["noframes_video"] = d / "noframes.avi"
    (d / "empty.png").write_bytes(b"")
    f["empty_image"] = d / "empty.png"
    png = cv2.imencode(".png", np.full((40, 40, 3), 90, np.uint8))[1].tobytes()
    (d / "truncated.png").write_bytes(png[: len(png) // 3])
    f["truncated_image"] = d / "truncated.png"
    (d / "text.jpg").write_text("hello")
    f["text_image"] = d / "text.jpg"
    (d / "empty_dir").mkdir()
    f["empty_dir"] = d / "empty_dir"
    (d / "notonnx.onnx").write_text("not a model")
    f["notonnx"] = d / "notonnx.onnx"
    (d / "truncated.onnx").write_bytes(Path(f["model"]).read_bytes()[:40])
    f["truncated_onnx"] = d / "truncated.onnx"
    (d / "garbage.pt").write_bytes(b"\x80\x04garbage")
    f["garbage_pt"] = d / "garbage.pt"
    (d / "empty.pt").write_bytes(b"")
    f["empty_pt"] = d / "empty.pt"
    (d / "bad.json").write_text("{ not json")
    f["zones_malformed"] = d / "bad.json"
    (d / "empty_zones.json").write_text("")
    f["zones_empty"] = d / "empty_zones.json"
    bowtie = [[0, 0], [40, 40], [40, 0], [0, 40]]
    (d / "bowtie.json").write_text(json.dumps({"zones": [{"name": "x", "polygon": bowtie}]}))
    f["zones_selfintersect"] = d / "bowtie.json"
    far = [[1000, 1000], [2000, 1000], [2000, 2000], [1000, 2000]]
    (d / "outside.json").write_text(json.dumps({"frame_size": [64, 48],
                                                "zones": [{"name": "x", "polygon": far}]}))
    f["zones_outside"] = d / "outside.json"
    (d / "nopoly.json").write_text(json.dumps({"zones": [{"name": "x"}]}))
    f["zones_nopolygon"] = d / "nopoly.json"
    (d / "train.h5").write_text("not hdf5")
    (d / "bad_h5").mkdir()
    (d / "bad_h5" / "train.h5").write_text("not hdf5")
    (d / "bad_h5" / "val.h5").write_text("not hdf5")
    f["bad_h5"] = d / "bad_h5"
    (d / "bad.toml").write_text("epochs = [unclosed\n")
    f["bad_recipe"] = d / "bad.toml"
    (d / "points.csv").write_text("x,y\n1,2\n")
    f["url"] = f"http://user:hunter2@127.0.0.1:{_closed_port()}/stream.mjpg"
    return f


@pytest.fixture(scope="module")
def mismatched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint whose config claims another width than its weights (needs torch)."""
    torch = pytest.importorskip("torch")
    from streamcount.training.models import build_model

    model = build_model("unet", in_channels=3, filters=4, n_convs=2)
    cfg = {"model": {"architecture": "unet", "in_channels": 3, "filters": 8, "n_convs": 2},
           "name": "x", "color_order": "RGB", "mean": [0.0] * 3, "std": [1.0] * 3,
           "density_scale": 100.0, "size_multiple": 8, "input_scale": 1.0}
    path = tmp_path_factory.mktemp("ckpt") / "mismatched.pt"
    torch.save({"model": model.state_dict(), "config": cfg, "epoch": 0}, path)
    return path


@pytest.mark.parametrize("command", ["export", "calibrate"])
def test_checkpoint_not_matching_its_architecture(mismatched: Path, blob_dataset: Path,
                                                  bad: dict, command: str,
                                                  capsys: pytest.CaptureFixture) -> None:
    argv = [command, str(mismatched)] + (["--out", str(Path(bad["dir"]) / "m.onnx")]
                                         if command == "export" else ["--data", str(blob_dataset)])
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert rc == 4 and len(lines) == 1 and "Traceback" not in err
    assert "mismatched.pt" in lines[0] and "do not match architecture" in lines[0]


def P(key: str):
    return lambda f: str(f[key])


def J(key: str, name: str):
    return lambda f: str(Path(f[key]) / name)


def PREP(out: str, *flags: str) -> list:
    """``prepare cells`` of an empty folder with ``flags``: a bad flag is refused before the
    folder is read."""
    return ["prepare", "cells", "--root", P("empty_dir"), "--out", J("dir", out), *flags]


M = P("model")
V = P("good_video")

# (id, argv (callables get the fixture), allowed exit codes, needle in the error line)
CASES = [
    # count: images and models
    ("count-missing-file", ["count", J("dir", "nope.png"), "--model", M], {2}, "nope.png"),
    ("count-empty-image", ["count", P("empty_image"), "--model", M], {2, 6}, "empty.png"),
    ("count-truncated-image", ["count", P("truncated_image"), "--model", M], {2, 6},
     "truncated.png"),
    ("count-text-as-image", ["count", P("text_image"), "--model", M], {2, 6}, "text.jpg"),
    ("count-empty-folder", ["count", P("empty_dir"), "--model", M], {2}, "empty_dir"),
    ("count-not-onnx", ["count", V, "--model", P("notonnx")], {2, 4}, "notonnx.onnx"),
    ("count-truncated-onnx", ["count", V, "--model", P("truncated_onnx")], {2, 4},
     "truncated.onnx"),
    ("count-unknown-model", ["count", V, "--model", "nosuchmodel"], {2, 4}, "nosuchmodel"),
    ("count-device-cuda", ["count", V, "--model", M, "--device", "cuda"], {5}, "cuda"),
    ("count-input-scale-zero", ["count", V, "--model", M, "--input-scale", "0"], {2},
     "--input-scale"),
    ("count-input-scale-nan", ["count", V, "--model", M, "--input-scale", "nan"], {2},
     "--input-scale"),
    ("count-negative-threads", ["count", V, "--model", M, "--threads", "-1"], {2}, "--threads"),
    ("run-negative-threads", ["run", V, "--model", M, "--threads", "-2", "--no-dashboard"], {2},
     "--threads"),
    ("run-snapshot-every-zero", ["run", V, "--model", M, "--snapshot-every", "0",
                                 "--snapshot-dir", J("dir", "snaps"), "--no-dashboard"], {2},
     "--snapshot-every"),
    ("run-metrics-port-too-high", ["run", V, "--model", M, "--metrics-port", "70000",
                                   "--no-dashboard"], {2}, "--metrics-port"),
    ("run-timeout-nan", ["run", V, "--model", M, "--timeout", "nan", "--no-dashboard"], {2},
     "--timeout"),
    ("run-negative-backoff", ["run", V, "--model", M, "--reconnect-backoff", "-1",
                              "--no-dashboard"], {2}, "--reconnect-backoff"),
    ("bench-seconds-nan", ["bench", "--model", M, "--seconds", "nan"], {2}, "--seconds"),
    ("annotate-negative-threads", ["annotate", P("dir"), "--threads", "-1"], {2}, "--threads"),
    ("bench-negative-host-threads", ["bench", "--model", M, "--host-threads", "-1"], {2},
     "host-threads"),
    # run: videos, URLs, zones, outputs, values
    ("run-missing-video", ["run", J("dir", "nope.mp4"), "--model", M, "--no-dashboard"], {2, 6},
     "nope.mp4"),
    ("run-empty-video", ["run", P("empty_video"), "--model", M, "--no-dashboard"], {2, 6},
     "empty.mp4"),
    ("run-garbage-video", ["run", P("garbage_video"), "--model", M, "--no-dashboard"], {2, 6},
     "garbage.mp4"),
    ("run-truncated-video", ["run", P("truncated_video"), "--model", M, "--no-dashboard"],
     {2, 6}, "truncated.mp4"),
    ("run-text-video", ["run", P("text_video"), "--model", M, "--no-dashboard"], {2, 6},
     "text.avi"),
    ("run-no-decodable-frame", ["run", P("noframes_video"), "--model", M, "--no-dashboard"],
     {2, 6}, "noframes.avi"),
    ("run-unreachable-url", ["run", P("url"), "--model", M, "--no-dashboard",
                             "--reconnect-max", "0"], {6}, "127.0.0.1"),
    ("run-zones-malformed", ["run", V, "--model", M, "--zones", P("zones_malformed")], {2},
     "bad.json"),
    ("run-zones-empty", ["run", V, "--model", M, "--zones", P("zones_empty")], {2}, "empty"),
    ("run-zones-self-intersecting", ["run", V, "--model", M, "--zones",
                                     P("zones_selfintersect")], {2}, "intersect"),
    ("run-zones-outside-frame", ["run", V, "--model", M, "--zones", P("zones_outside")], {2},
     "outside"),
    ("run-zones-no-polygon", ["run", V, "--model", M, "--zones", P("zones_nopolygon")], {2},
     "polygon"),
    ("run-csv-missing-folder", ["run", V, "--model", M, "--csv", J("dir", "no/such/c.csv")],
     {7}, "does not exist"),
    ("run-video-is-folder", ["run", V, "--model", M, "--video", P("empty_dir")], {7}, "folder"),
    ("run-bad-batch", ["run", V, "--model", M, "--batch", "0"], {2}, "--batch"),
    ("run-bad-smoothing", ["run", V, "--model", M, "--smooth", "wobble:3"], {2}, "wobble"),
    # prepare
    ("prepare-missing-root", ["prepare", "cells", "--root", J("dir", "nope"), "--out",
                              J("dir", "out1")], {2}, "nope"),
    ("prepare-empty-root", ["prepare", "cells", "--root", P("empty_dir"), "--out",
                            J("dir", "out2")], {2}, "empty_dir"),
    ("prepare-points-bad-csv", ["prepare", "points", "--root", P("dir"), "--out",
                                J("dir", "out3")], {2}, "header image,x,y"),
    ("prepare-scale-nan", PREP("o0", "--scale", "nan"), {2}, "--scale"),
    ("prepare-sigma-nan", PREP("o1", "--sigma", "nan"), {2}, "--sigma"),
    ("prepare-k-zero", PREP("o2", "--k", "0"), {2}, "--k"),
    ("prepare-beta-negative", PREP("o3", "--beta", "-1"), {2}, "--beta"),
    ("prepare-sigma-min-above-max", PREP("o4", "--sigma-min", "5", "--sigma-max", "1"), {2},
     "--sigma-min"),
    ("prepare-val-blocks-negative", PREP("o5", "--val-blocks", "-1"), {2}, "--val-blocks"),
    ("prepare-seed-negative", PREP("o6", "--seed", "-1"), {2}, "--seed"),
    # train
    ("train-missing-data", ["train", "--data", J("dir", "nodata"), "--out", J("dir", "r1"),
                            "--epochs", "1"], {2}, "nodata"),
    ("train-not-hdf5", ["train", "--data", P("bad_h5"), "--out", J("dir", "r2"), "--epochs",
                        "1"], {2}, "train.h5"),
    ("train-bad-recipe", ["train", "--recipe", P("bad_recipe")], {2}, "bad.toml"),
    ("train-unknown-arch", ["train", "--data", P("bad_h5"), "--arch", "resnet9000", "--epochs",
                            "1"], {2}, "resnet9000"),
    ("train-ensemble-arch", ["train", "--data", P("bad_h5"), "--arch", "ensemble", "--epochs",
                             "1"], {2}, "average --outputs"),
    ("train-scale-prob-above-1", ["train", "--data", P("bad_h5"), "--scale-prob", "1.5",
                                  "--epochs", "1"], {2}, "scale_prob = 1.5"),
    ("train-negative-brightness", ["train", "--data", P("bad_h5"), "--brightness", "-0.2",
                                   "--epochs", "1"], {2}, "brightness = -0.2"),
    ("train-jpeg-quality-zero", ["train", "--data", P("bad_h5"), "--jpeg-quality", "0",
                                 "--epochs", "1"], {2}, "jpeg_quality = 0"),
    ("train-unknown-loss", ["train", "--data", P("bad_h5"), "--loss", "l1", "--epochs", "1"],
     {2}, "loss = 'l1'"),
    ("train-bayes-sigma-zero", ["train", "--data", P("bad_h5"), "--loss", "bayes",
                                "--bayes-sigma", "0", "--epochs", "1"], {2}, "bayes_sigma = 0"),
    ("train-val-every-zero", ["train", "--data", P("bad_h5"), "--val-every", "0"], {2},
     "val_every = 0"),
    ("train-batch-size-zero", ["train", "--data", P("bad_h5"), "--batch-size", "0"], {2},
     "batch_size = 0"),
    ("train-lr-nan", ["train", "--data", P("bad_h5"), "--lr", "nan"], {2}, "lr = nan"),
    ("train-ema-decay-above-1", ["train", "--data", P("bad_h5"), "--ema-decay", "1.5"], {2},
     "ema_decay = 1.5"),
    # evaluate, calibrate, export: checkpoints
    ("evaluate-missing-ckpt", ["evaluate", J("dir", "nope.pt"), "--data", P("bad_h5")], {2, 4},
     "nope.pt"),
    ("evaluate-garbage-ckpt", ["evaluate", P("garbage_pt"), "--data", P("bad_h5")], {2, 4},
     "garbage.pt"),
    ("evaluate-bands-too-many", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"), "--bands",
                                 "21"], {2}, "--bands"),
    ("evaluate-game-levels-negative", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"),
                                       "--game-levels", "-1"], {2}, "--game-levels"),
    ("evaluate-grid-too-fine", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"), "--grid",
                                "9"], {2}, "--grid"),
    ("evaluate-views-three", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"), "--views",
                              "3"], {2}, "--views"),
    ("evaluate-count-bins-words", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"),
                                   "--count-bins", "many"], {2}, "--count-bins"),
    ("evaluate-neighbours-words", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"),
                                   "--neighbours", "close"], {2}, "--neighbours"),
    ("evaluate-neighbours-decreasing", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"),
                                        "--neighbours", "8,2"], {2}, "--neighbours"),
    ("evaluate-worst-negative", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"),
                                 "--worst", "-1"], {2}, "--worst"),
    ("evaluate-count-bins-decreasing", ["evaluate", P("garbage_pt"), "--data", P("bad_h5"),
                                        "--count-bins", "200,100"], {2}, "--count-bins"),
    ("calibrate-empty-ckpt", ["calibrate", P("empty_pt"), "--data", P("bad_h5")], {2, 4},
     "empty.pt"),
    ("export-calibration-images-zero", ["export", P("garbage_pt"), "--out", J("dir", "c.onnx"),
                                        "--int8", "--calibration", P("dir"),
                                        "--calibration-images", "0"], {2}, "--calibration-images"),
    ("export-max-drift-nan", ["export", P("garbage_pt"), "--out", J("dir", "d.onnx"), "--int8",
                              "--calibration", P("dir"), "--max-drift", "nan"], {2}, "--max-drift"),
    ("export-garbage-ckpt", ["export", P("garbage_pt"), "--out", J("dir", "m.onnx")], {2, 4},
     "garbage.pt"),
    ("export-missing-ckpt", ["export", J("dir", "nope.pt"), "--out", J("dir", "m.onnx")], {2, 4},
     "nope.pt"),
    # zones and fleet
    ("zones-missing-source", ["zones", J("dir", "nope.mp4"), "--out", J("dir", "z.json")],
     {2, 6}, "nope.mp4"),
    ("zones-grid-zero", ["zones", V, "--out", J("dir", "z0.json"), "--grid", "0"], {2}, "--grid"),
    ("fleet-missing-file", ["fleet", J("dir", "nope.yaml")], {2}, "nope.yaml"),
]


@pytest.mark.parametrize("argv, codes, needle", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(bad: dict, argv: list, codes: set[int], needle: str,
                               capsys: pytest.CaptureFixture) -> None:
    args = [a(bad) if callable(a) else a for a in argv]
    if args[0] in ("train", "evaluate", "calibrate", "export"):
        pytest.importorskip("torch")
    rc = main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert rc in codes, (rc, err)
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err
    assert "hunter2" not in err


def test_the_suite_is_big_enough() -> None:
    assert len(CASES) >= 30  # plus the two mismatched-checkpoint cases above
    assert {c[1][0] for c in CASES} >= {"prepare", "train", "evaluate", "export", "count", "run"}



def test_checkpoint_as_model_says_export_it_first(tmp_path: Path, capsys) -> None:
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"not really")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((16, 16, 3), np.uint8))
    assert main(["count", str(img), "--model", str(ckpt)]) == 4
    err = capsys.readouterr().err
    assert "export it first" in err and "Traceback" not in err


def test_count_on_a_video_says_use_run(capsys) -> None:
    clip = Path(__file__).resolve().parents[1] / "examples" / "pets2009_s2l1.mp4"
    assert main(["count", str(clip)]) == 2
    assert "use `streamcount run" in capsys.readouterr().err


def test_glob_through_a_symlink_loop_counts_each_image_once(tmp_path: Path, capsys) -> None:
    d = tmp_path / "loop"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), np.zeros((16, 16, 3), np.uint8))
    (d / "again").symlink_to(d, target_is_directory=True)
    assert main(["count", f"{d}/**/*.png", "--json", "--model", "cells"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_run_help_names_every_bundled_model(capsys) -> None:
    from streamcount.models import bundled_models

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in bundled_models():
        assert name in text


def test_a_missing_webcam_is_our_line_only() -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "streamcount", "run", "7", "--no-dashboard",
                        "--timeout", "3"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "webcam 7" in lines[0]


@pytest.mark.parametrize("case", ["csv-is-input", "video-is-input", "symlink-to-input",
                                  "csv-is-jsonl", "zones-file-is-output", "model-is-output"])
def test_outputs_never_overwrite_inputs_or_each_other(tmp_path: Path, case: str,
                                                      capsys) -> None:
    v = write_video(tmp_path / "clip.mp4", n=10)
    model = make_tiny_model(tmp_path / "m.onnx")
    zones = tmp_path / "z.json"
    zones.write_text(json.dumps({"zones": [{"name": "a", "polygon": [[0, 0], [9, 0],
                                                                     [9, 9]]}]}))
    (tmp_path / "link.csv").symlink_to(v)
    before = {p: p.read_bytes() for p in (v, model, zones)}
    extra = {
        "csv-is-input": ["--csv", str(v)],
        "video-is-input": ["--video", str(v)],
        "symlink-to-input": ["--csv", str(tmp_path / "link.csv")],
        "csv-is-jsonl": ["--csv", str(tmp_path / "o.txt"), "--jsonl", str(tmp_path / "o.txt")],
        "zones-file-is-output": ["--zones", str(zones), "--jsonl", str(zones)],
        "model-is-output": ["--events", str(model)],
    }[case]
    rc = main(["run", str(v), "--model", str(model), "--no-dashboard", *extra])
    err = capsys.readouterr().err
    assert rc == 7 and err.count("error:") == 1 and "Traceback" not in err
    assert all(p.read_bytes() == data for p, data in before.items())  # nothing was touched
    assert not (tmp_path / "o.txt").exists()


def test_two_sources_with_one_base_name_get_two_videos(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_video(tmp_path / "a" / "cam.mp4", n=6)
    b = write_video(tmp_path / "b" / "cam.mp4", n=8)
    model = make_tiny_model(tmp_path / "m.onnx")
    rc = main(["run", str(a), str(b), "--model", str(model), "--no-dashboard", "--quiet",
               "--video", str(tmp_path / "out.mp4")])
    assert rc == 0
    from tests.runtime.helpers import video_frames

    assert video_frames(tmp_path / "out_cam.mp4") == 6
    assert video_frames(tmp_path / "out_cam_2.mp4") == 8


def test_zones_out_never_replaces_the_input_frame(tmp_path: Path, capsys) -> None:
    frame = tmp_path / "cam1.png"
    cv2.imwrite(str(frame), np.full((48, 64, 3), 90, np.uint8))
    data = frame.read_bytes()
    assert main(["zones", str(frame), "--out", str(tmp_path / "cam1.json")]) == 7
    assert frame.read_bytes() == data and "source" in capsys.readouterr().err


@pytest.mark.parametrize("args,match", [
    (["--batch", "100000"], "--batch must be from 1 to 64"),
    (["--fps", "-5"], "--fps must be"), (["--fps", "nan"], "--fps must be"),
    (["--max-fps", "1e-300"], "--max-fps must be"), (["--max-fps", "inf"], "--max-fps must be"),
])  # fmt: skip
def test_run_values_out_of_range_are_one_line(tmp_path: Path, args: list, match: str,
                                              capsys) -> None:
    v = write_video(tmp_path / "v.mp4", n=3)
    assert main(["run", str(v), "--model", "cells", "--no-dashboard", *args]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and "internal error" not in err


def test_a_huge_image_is_refused_before_it_is_decoded_whole(tmp_path: Path, capsys) -> None:
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((13000, 13000), np.uint8))  # compresses to a few hundred KB
    assert main(["count", str(big), "--model", "cells"]) == 2
    assert "larger than 12000x12000" in capsys.readouterr().err


def test_frames_larger_than_8k_stop_the_source_with_one_line(tmp_path: Path, capsys) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "a.jpg"), np.zeros((4400, 7700, 3), np.uint8))
    rc = main(["run", str(imgs), "--model", "cells", "--no-dashboard", "--quiet"])
    err = capsys.readouterr().err
    assert rc != 0 and "larger than 8K" in err


@pytest.mark.parametrize("url", ["ftp://admin:S3CRET@cam/v", "mms://u:S3CRET@cam/s",
                                 "rtp://cam:5004?pw=S3CRET", "rtmpt://cam/app?key=S3CRET"])
def test_unknown_schemes_are_refused_without_echoing_secrets(url: str, capsys) -> None:
    assert main(["run", url, "--model", "cells", "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert "unsupported stream scheme" in err and "S3CRET" not in err


def test_query_secrets_never_reach_rows_or_logs(tmp_path: Path, capsys) -> None:
    """Every query value outside an allow-list is redacted in CSV, JSONL and the log."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    frame = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()

    class MJPEG(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
            self.end_headers()
            try:
                for _ in range(30):
                    self.wfile.write(b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(frame)).encode() + b"\r\n\r\n" + frame + b"\r\n")
            except OSError:
                pass

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), MJPEG)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://admin:pa55@127.0.0.1:{srv.server_port}/v.mjpg?user=admin&pw=S3CRET"
        rc = main(["run", url, "--model", "cells", "--no-dashboard", "--max-frames", "5",
                   "--csv", str(tmp_path / "c.csv"), "--jsonl", str(tmp_path / "r.jsonl"),
                   "--summary-json", str(tmp_path / "s.json"), "-v"])
    finally:
        srv.shutdown()
    out = capsys.readouterr()
    assert rc == 0, out.err
    for text in (out.out, out.err, *(p.read_text() for p in tmp_path.iterdir())):
        assert "S3CRET" not in text and "pa55" not in text and "admin" not in text
