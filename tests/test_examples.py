"""The examples in examples/ run as documented."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamcount.cli import main
from streamcount.zones import ZoneSet
from tests.conftest import REPO, blob_image

EXAMPLES = REPO / "examples"


def test_example_clip_is_short_and_readable() -> None:
    clip = EXAMPLES / "pets2009_s2l1.mp4"
    assert clip.stat().st_size <= 4 * 1024 * 1024
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    n = 0
    while cap.read()[0]:
        n += 1
    assert n > 0 and n / fps <= 20.0


def test_zones_file_fits_the_clip() -> None:
    zones = ZoneSet.load(EXAMPLES / "pets2009_zones.json")
    assert zones.names == ["path", "lawn"] and zones.frame_size == (480, 360)
    density = np.ones((360, 480), np.float32)
    counts = zones.counts(zones.apply_roi(density))
    assert all(v > 1000 for v in counts.values())


def test_count_video_script(tiny_model: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "count_video.py"), "--model", str(tiny_model),
         "--max-frames", "5", "--every", "2"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "frame     0" in out.stdout and "5 frames on cpu" in out.stdout


def test_train_your_camera_walkthrough(tmp_path: Path, monkeypatch) -> None:
    """Runs the walk-through's commands on a small synthetic camera (tiny training settings)."""
    pytest.importorskip("torch")
    text = (EXAMPLES / "train_your_camera.md").read_text()
    block = re.search(r"## 3\..*?```bash\n(.*?)```", text, re.S).group(1)
    commands = [shlex.split(line) for line in block.strip().splitlines()]
    assert [c[1] for c in commands] == ["prepare", "train", "evaluate", "export", "count", "run"]
    # A synthetic camera: 12 frames with dots, annotated as the CSV in the walk-through.
    images = tmp_path / "mycam" / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["image,x,y"]
    for i in range(12):
        img, pts = blob_image(rng, 96, 128, int(rng.integers(3, 12)))
        name = f"frame_{i:05d}.jpg"
        cv2.imwrite(str(images / name), img)
        rows += [f"{name},{x:.1f},{y:.1f}" for x, y in pts]
    (tmp_path / "mycam" / "points.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    tiny = ["--epochs", "1", "--filters", "4", "--samples-per-epoch", "8", "--patch", "32",
            "--no-progress"]  # fmt: skip
    for cmd in commands[:5]:
        args = cmd[1:] + (tiny if cmd[1] == "train" else [])
        assert main(args) == 0, cmd
    assert (tmp_path / "mycam.onnx").is_file() and (tmp_path / "runs/mycam/eval.png").is_file()
