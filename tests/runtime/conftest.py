"""Runtime fixtures: a local HTTP MJPEG server that drops connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest


class _MjpegHandler(BaseHTTPRequestHandler):
    frames_per_connection = 6

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(self.frames_per_connection):
            img = np.full((48, 64, 3), 40 * (i % 6), np.uint8)
            jpg = cv2.imencode(".jpg", img)[1].tobytes()
            try:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                 + f"Content-Length: {len(jpg)}\r\n\r\n".encode() + jpg + b"\r\n")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.02)
        # then the connection drops

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mjpeg_server() -> Iterator[str]:
    """URL (with credentials, to check redaction) of a local MJPEG stream that drops."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MjpegHandler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://user:secret@127.0.0.1:{server.server_address[1]}/stream.mjpg"
    finally:
        server.shutdown()
        server.server_close()
