"""Ctrl-C at each long-running stage: exit 130, one line, nothing half-written left behind.

(`train` and `run` have their own SIGINT tests next to them: tests/training/test_trainer.py and
tests/runtime/test_run_cli.py.)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, make_tiny_model


def _catches_sigint(pid: int) -> bool:
    """True once the process has a SIGINT handler (Python installs one early in start-up).

    A SIGINT sent before that kills the interpreter outright (exit -2), which says nothing about
    our handling; on a loaded CI machine start-up alone can take over a second.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # no procfs: fall back to the caller's own readiness test
        return True
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(caught & (1 << (signal.SIGINT - 1)))


def _has_loaded(pid: int, library: str) -> bool:
    """True once ``library`` is mapped into the process (or when procfs is missing)."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return True


def _interrupt(cmd: list[str], ready, timeout: float = 120) -> tuple[int, str]:
    """Start ``cmd``, wait until ``ready(pid)`` is true, send SIGINT, return (code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "streamcount", *cmd], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while (not (_catches_sigint(proc.pid) and ready(proc.pid)) and proc.poll() is None
           and time.time() < deadline):
        time.sleep(0.005)  # the window (a split being written) can be short
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
    pytest.importorskip("h5py", reason="prepare needs the train extra (h5py)")
    root = _cells(tmp_path / "cells", 1600)
    # On a fast machine the run can end in the few milliseconds between our check and the
    # signal (exit 0, complete splits): then try again; one of three tries must be interrupted.
    for attempt in range(3):
        out = tmp_path / f"prepared{attempt}"
        rc, err = _interrupt(["prepare", "cells", "--root", str(root), "--out", str(out)],
                             lambda pid, out=out: (out / "train.h5.tmp").exists())
        if rc == 0:
            assert (out / "train.h5").is_file() and not list(out.glob("*.tmp"))
            continue
        assert rc == 130 and "Traceback" not in err and "interrupted" in err
        assert not list(out.glob("*.tmp"))  # the temporary split is removed...
        assert not list(out.glob("*.h5"))  # ...and no half-written split took its name
        return
    pytest.fail("prepare was never interrupted in three tries")


@pytest.mark.parametrize("signals", [
    pytest.param([signal.SIGINT], id="ctrl-c"),
    pytest.param([signal.SIGTERM], id="sigterm"),
    pytest.param([signal.SIGINT, signal.SIGINT], id="ctrl-c-twice"),  # the second stops at once
])
def test_ctrl_c_during_count_is_one_line(tmp_path: Path, signals: list[int]) -> None:
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
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.01)
    _, err = proc.communicate(timeout=60)
    proc_out.close()
    assert proc.returncode == 130 and "Traceback" not in err, err
    # says how far it got (a second Ctrl-C after the count ended adds a plain "interrupted")
    assert any(ln.startswith("interrupted after ") for ln in err.splitlines()), err
    lines = log.read_text().splitlines()
    assert 1 <= len(lines) < 60 and all(ln.startswith("{") for ln in lines)  # whole lines only


def test_ctrl_c_during_export_leaves_no_model(tiny_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    out = tmp_path / "m.onnx"
    loaded: list[float] = []  # when torch was first seen in the process

    def exporting(pid: int) -> bool:  # torch is loaded (the export has begun), plus a moment
        if not loaded and _has_loaded(pid, "libtorch"):
            loaded.append(time.time())
        return bool(loaded) and time.time() - loaded[0] > 0.5

    rc, err = _interrupt(["export", str(tiny_checkpoint), "--out", str(out), "--verify"],
                         exporting)
    assert rc == 130 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


def _sigint_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # Python runs the handler at the next bytecode boundary


def test_held_interrupt_raises_after_the_block() -> None:
    from streamcount.interrupts import held_interrupt

    done = []
    with pytest.raises(KeyboardInterrupt), held_interrupt():
        _sigint_self()
        done.append("rest of the block")  # not cut short
    assert done == ["rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


@pytest.mark.parametrize("swallow", [True, False])
def test_interrupt_wins_over_a_library_error(swallow: bool) -> None:
    from streamcount.interrupts import interrupt_wins

    def library_call() -> None:  # like torch.onnx.export: any exception becomes its own error
        try:
            _sigint_self()
        except KeyboardInterrupt as exc:
            if swallow:
                raise RuntimeError("export failed") from exc
            raise

    with pytest.raises(KeyboardInterrupt), interrupt_wins():
        library_call()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(ValueError), interrupt_wins():  # no SIGINT: errors pass through
        raise ValueError("a real error")


def test_ctrl_c_during_count_keeps_the_table(tmp_path: Path) -> None:
    """The images counted before Ctrl-C are printed, then exit 130 with one line."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    big = np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), np.uint8)
    for i in range(60):
        cv2.imwrite(str(imgs / f"{i:03d}.jpg"), big)
    model = make_tiny_model(tmp_path / "tiny.onnx")
    out = tmp_path / "table.txt"
    with out.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "streamcount", "count", str(imgs),
                                 "--model", str(model)], cwd=REPO, stdout=fh,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "COLUMNS": "200"})
        time.sleep(0.2)
        deadline = time.time() + 60
        while not _catches_sigint(proc.pid) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # some images counted
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    table = out.read_text()
    assert proc.returncode == 130 and "Traceback" not in err
    assert re.search(r"interrupted after \d+ of 60 images", err)
    rows = re.findall(r"\d{3}\.jpg", table)
    assert 1 <= len(rows) < 60 and "images, total count" in table
