"""Fault injection for streams, served from this machine and bounded in time.

A local HTTP MJPEG server misbehaves on purpose, one behaviour per connection: it stalls
(holds the connection open and sends nothing), drops, sends garbage instead of JPEG, or goes
away and comes back. Next to it a healthy video file is counted. The runner must keep the file
going, reconnect to the stream, skip the garbage, and write one row per processed frame.
"""

from __future__ import annotations

import contextlib
import csv
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamcount.cli import main
from tests.runtime.helpers import write_video

JPEG = cv2.imencode(".jpg", np.full((48, 64, 3), 120, np.uint8))[1].tobytes()


class FaultyServer:
    """Serves ``behaviours[k]`` to the k-th connection; after the list, 503 (so it ends)."""

    def __init__(self, behaviours: list[str]) -> None:
        self.behaviours = list(behaviours)
        self.connections = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.lock:
                    k = outer.connections
                    outer.connections += 1
                if k >= len(outer.behaviours):
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                with contextlib.suppress(OSError):
                    outer.serve(self.wfile, outer.behaviours[k])

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @staticmethod
    def part(body: bytes) -> bytes:
        return (b"--frame\r\nContent-Type: image/jpeg\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body + b"\r\n")

    def serve(self, out, behaviour: str) -> None:
        rng = np.random.default_rng(0)
        good = [self.part(JPEG)] * 8
        if behaviour == "ok":
            parts = good
        elif behaviour == "garbage":
            parts = good[:3] + [self.part(rng.bytes(len(JPEG)))] * 3 + good[:3]
        elif behaviour == "stall":
            parts = good[:4]
        else:
            raise ValueError(behaviour)
        for p in parts:
            out.write(p)
            out.flush()
            time.sleep(0.02)
        if behaviour == "stall":
            time.sleep(4.0)  # longer than --timeout: the reader must give up and reconnect

    @property
    def url(self) -> str:
        return f"http://cam:pw-s3cret@127.0.0.1:{self.port}/video.mjpg"


@pytest.fixture
def faulty() -> Iterator[type[FaultyServer]]:
    made: list[FaultyServer] = []

    def make(behaviours: list[str]) -> FaultyServer:
        s = FaultyServer(behaviours)
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        s.stop()


def _run(tmp_path: Path, model: Path, url: str, clip: Path) -> tuple[int, dict, dict, float]:
    t0 = time.monotonic()
    rc = main(["run", url, str(clip), "--model", str(model), "--no-dashboard", "--quiet",
               "--csv", str(tmp_path / "rows.csv"), "--summary-json", str(tmp_path / "s.json"),
               "--timeout", "1", "--reconnect-max", "3", "--reconnect-backoff", "0.2"])
    took = time.monotonic() - t0
    summary = json.loads((tmp_path / "s.json").read_text())["sources"]
    rows: dict[str, int] = {}
    with (tmp_path / "rows.csv").open() as fh:
        for r in csv.DictReader(fh):
            rows[r["source"]] = rows.get(r["source"], 0) + 1
    return rc, summary, rows, took


# FFmpeg's MJPEG demuxer cannot resynchronise after a part that is not JPEG: the read fails,
# so garbage is handled like a dropped connection (reopen, go on), not as a skipped frame.
@pytest.mark.parametrize("behaviours, min_reconnects, min_frames", [
    (["ok", "ok", "ok"], 2, 3 * 8 - 3),             # drops after every 8 frames
    (["stall", "ok"], 1, 8),                        # stalls: read time-out, then reconnect
    (["garbage", "ok"], 1, 8),                      # garbage: reopened, the next connection
    (["stall", "garbage", "ok", "ok"], 3, 16),      # all of it in a row
], ids=["drops", "stalls", "garbage", "everything"])
def test_stream_faults_lose_no_row(tmp_path: Path, tiny_model: Path, faulty,
                                   behaviours: list[str], min_reconnects: int,
                                   min_frames: int, capsys: pytest.CaptureFixture) -> None:
    server = faulty(behaviours)
    clip = write_video(tmp_path / "steady.mp4", n=40)
    rc, summary, rows, took = _run(tmp_path, tiny_model, server.url, clip)
    err = capsys.readouterr().err
    assert rc == 0 and took < 45
    stream = next(n for n in summary if n.startswith("http"))
    assert "pw-s3cret" not in stream and "pw-s3cret" not in err
    s = summary[stream]
    assert s["reconnects"] >= min_reconnects
    assert server.connections == len(behaviours) + 3  # every behaviour, then 3 refused tries
    # live mode keeps the newest frame, so a few may be skipped, never lost without a count
    assert s["frames"] + s["skipped"] >= min_frames
    assert rows[stream] == s["frames"]  # every processed frame has its row
    assert rows[str(clip)] == summary[str(clip)]["frames"] == 40  # the file went on


def test_stream_goes_away_and_comes_back(tmp_path: Path, tiny_model: Path, faulty) -> None:
    server = faulty(["ok", "ok"])
    clip = write_video(tmp_path / "steady.mp4", n=40)

    def outage() -> None:
        while server.connections < 1:
            time.sleep(0.02)
        time.sleep(0.1)
        server.stop()          # connection refused for a while...
        time.sleep(1.0)
        server.start()         # ...then back on the same port

    t = threading.Thread(target=outage, daemon=True)
    t.start()
    rc, summary, rows, took = _run(tmp_path, tiny_model, server.url, clip)
    t.join(5)
    stream = next(n for n in summary if n.startswith("http"))
    assert rc == 0 and took < 45
    assert server.connections >= 2 and summary[stream]["reconnects"] >= 1
    assert rows[stream] == summary[stream]["frames"] >= 9
    assert rows[str(clip)] == 40
