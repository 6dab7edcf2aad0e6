"""A real RTSP camera: GStreamer's RTSP server with basic auth, on loopback.

Skipped where the system Python has no GStreamer RTSP server (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good; `.ci/run` installs them).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SYSTEM_PY = shutil.which("python3", path="/usr/bin") or "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_server.py")
USER, PASSWORD = "camuser", "S3cretPw"


def _has_gst() -> bool:
    if not Path(SYSTEM_PY).exists():
        return False
    probe = ("import gi; gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import GstRtspServer")
    return subprocess.run([SYSTEM_PY, "-c", probe], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _has_gst(), reason="no GStreamer RTSP server here")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _start(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([SYSTEM_PY, str(SERVER), str(port), USER, PASSWORD],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def camera():
    port = _free_port()
    proc = _start(port)
    box = {"proc": proc, "port": port}
    yield box
    box["proc"].kill()
    box["proc"].wait()


def _run(url: str, tmp_path: Path, *extra: str, timeout: float = 120):
    cmd = [sys.executable, "-m", "streamcount", "run", url, "--model", "cells",
           "--no-dashboard", "--csv", str(tmp_path / "c.csv"), "--summary-json",
           str(tmp_path / "s.json"), *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True), timeout


def test_counts_an_authenticated_rtsp_camera(camera, tmp_path: Path) -> None:
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{camera['port']}/test"
    proc, timeout = _run(url, tmp_path, "--max-frames", "15")
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    rows = (tmp_path / "c.csv").read_text().splitlines()
    assert len(rows) == 16
    for text in (out, err, *(p.read_text() for p in tmp_path.iterdir())):
        assert PASSWORD not in text and USER not in text


def test_wrong_password_is_one_line_without_the_secret(camera, tmp_path: Path) -> None:
    url = f"rtsp://{USER}:wrong{PASSWORD}@127.0.0.1:{camera['port']}/test"
    proc, timeout = _run(url, tmp_path, "--max-frames", "5", "--timeout", "5")
    _, err = proc.communicate(timeout=timeout)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert proc.returncode != 0 and len(lines) == 1 and "Traceback" not in err
    assert PASSWORD not in err and "***@127.0.0.1" in lines[0]


def test_a_dropped_camera_is_reconnected_and_counting_goes_on(camera, tmp_path: Path) -> None:
    url = f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{camera['port']}/test"
    proc, timeout = _run(url, tmp_path, "--max-frames", "60", "--timeout", "5",
                         "--reconnect-backoff", "0.3")

    def drop_and_restart() -> None:
        time.sleep(2.5)  # some frames counted
        camera["proc"].kill()
        camera["proc"].wait()
        time.sleep(1.5)  # the camera is away
        camera["proc"] = _start(camera["port"])

    t = threading.Thread(target=drop_and_restart)
    t.start()
    _, err = proc.communicate(timeout=timeout)
    t.join()
    assert proc.returncode == 0, err
    summary = json.loads((tmp_path / "s.json").read_text())
    src = next(iter(summary["sources"].values())) if isinstance(summary["sources"], dict) \
        else summary["sources"][0]
    assert src["reconnects"] >= 1
    rows = (tmp_path / "c.csv").read_text().splitlines()[1:]
    assert len(rows) == 60  # counting resumed after the outage
