"""Ctrl-C at each long-running stage: exit 130, one line, nothing half-written left behind.

(`train` and `run` have their own SIGINT tests next to them: tests/training/test_trainer.py and
tests/runtime/test_run_cli.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, make_tiny_model


def _interrupt(cmd: list[str], ready, timeout: float = 120) -> tuple[int, str]:
    """Start ``cmd``, wait until ``ready()`` is true, send SIGINT, return (code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "streamcount", *cmd], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted: make the input bigger"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _cells(folder: Path, n: int) -> Path:
    """A VGG-cells-style folder: NNNcell.png and NNNdots.png (red dots)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        img = rng.integers(0, 60, (256, 256, 3), np.uint8)
        dots = np.zeros((256, 256, 3), np.uint8)
        for x, y in rng.integers(5, 250, (30, 2)):
            dots[y, x] = (0, 0, 255)
        cv2.imwrite(str(folder / f"{i:03d}cell.png"), img)
        cv2.imwrite(str(folder / f"{i:03d}dots.png"), dots)
    return folder


def test_ctrl_c_during_prepare_leaves_no_split(tmp_path: Path) -> None:
    root = _cells(tmp_path / "cells", 400)
    out = tmp_path / "prepared"
    rc, err = _interrupt(["prepare", "cells", "--root", str(root), "--out", str(out)],
                         lambda: any(out.glob("*.tmp")))
    assert rc == 130 and "Traceback" not in err and "interrupted" in err
    assert not list(out.glob("*.tmp"))  # the temporary split is removed...
    assert not list(out.glob("*.h5"))  # ...and no half-written split took its name


def test_ctrl_c_during_count_is_one_line(tmp_path: Path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    big = np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), np.uint8)
    for i in range(60):
        cv2.imwrite(str(imgs / f"{i:03d}.jpg"), big)
    model = make_tiny_model(tmp_path / "tiny.onnx")
    log = tmp_path / "out.jsonl"
    proc_out = log.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "streamcount", "count", str(imgs), "--model",
                             str(model), "--json"], cwd=REPO, stdout=proc_out,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while log.stat().st_size == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    proc_out.close()
    assert proc.returncode == 130 and "Traceback" not in err
    lines = log.read_text().splitlines()
    assert 1 <= len(lines) < 60 and all(ln.startswith("{") for ln in lines)  # whole lines only


def test_ctrl_c_during_export_leaves_no_model(tiny_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    out = tmp_path / "m.onnx"
    started = time.time()
    rc, err = _interrupt(["export", str(tiny_checkpoint), "--out", str(out), "--verify"],
                         lambda: time.time() - started > 1.5)
    assert rc == 130 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))
