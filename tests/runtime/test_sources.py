"""Sources: kinds, redaction, files, folders, corrupt frames, reconnection with backoff."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from streamcount.errors import InputError, SourceError
from streamcount.sources import (
    CaptureSource,
    SourceOptions,
    classify,
    open_source,
    redact,
    slug,
)
from tests.runtime.helpers import write_images, write_video


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:hunter2@10.0.0.5:554/s1", "rtsp://***@10.0.0.5:554/s1"),
        ("http://user@host/v.mjpg", "http://***@host/v.mjpg"),
        ("https://host/live?token=abc&channel=1", "https://host/live?token=***&channel=1"),
        ("https://host/live?password=p%40ss", "https://host/live?password=***"),
        ("http://cam/v?user=admin&pw=S3CRET", "http://cam/v?user=***&pw=***"),  # allow-list
        ("rtsp://admin:a#b/c?d@cam:554/s1", "rtsp://***@cam:554/s1"),  # unencoded # / ?
        ("rtsp://cam/s1#secret", "rtsp://cam/s1#***"),
        ("clip.mp4", "clip.mp4"),
        ("0", "0"),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected
    assert "hunter2" not in slug(redact(url))


@pytest.mark.parametrize(
    ("spec", "kind"),
    [("0", "webcam"), ("rtsp://x/y", "url"), ("https://x/y.m3u8", "url"), ("a/*.jpg", "images"),
     ("clip.mp4", "video"), ("photo.png", "images")],
)
def test_classify(spec: str, kind: str) -> None:
    assert classify(spec) == kind


def test_video_file_every_frame_with_stream_time(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", n=12, fps=10)
    src = open_source(str(path))
    assert not src.live and src.total == 12 and src.size == (64, 48)
    frames = list(src.frames(threading.Event()))
    assert [f.index for f in frames] == list(range(12))
    assert frames[5].stream_time == pytest.approx(0.5, abs=1e-3)
    assert frames[0].image.shape == (48, 64, 3)


def test_stride_and_mode_override(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", n=10)
    src = open_source(str(path), SourceOptions(stride=3, mode="live"))
    assert src.live
    assert [f.index for f in src.frames(threading.Event())] == [0, 3, 6, 9]


def test_image_folder_skips_unreadable(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", n=4)
    src = open_source(str(folder))
    frames = list(src.frames(threading.Event()))
    assert len(frames) == 4 and src.corrupt == 1
    assert len(list(open_source(str(folder / "img00*.png")).frames(threading.Event()))) == 4


@pytest.mark.parametrize(
    ("content", "error"),
    [(None, InputError), (b"", SourceError), (b"this is not a video" * 50, SourceError)],
)
def test_bad_files_fail_in_one_line(tmp_path: Path, content: bytes | None, error: type) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error) as exc:
        open_source(str(path))
    assert "\n" not in str(exc.value)


class FakeCapture:
    """A capture that yields ``n`` frames then fails (as a dropped stream does)."""

    def __init__(self, n: int, start: int) -> None:
        self.n, self.i = n, start

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.n <= 0:
            return False, None
        self.n -= 1
        self.i += 1
        return True, np.full((8, 8, 3), self.i % 255, np.uint8)

    def grab(self) -> bool:
        return self.read()[0]

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        pass


class FlakyStream(CaptureSource):
    """A 'URL' whose connection drops after every 5 frames, and is refused once in between."""

    def __init__(self, opts: SourceOptions) -> None:
        super().__init__("rtsp://user:secret@127.0.0.1:1/stream", opts)
        self.opens = 0

    def _capture(self) -> FakeCapture:  # type: ignore[override]
        self.opens += 1
        if self.opens == 3:  # one refused attempt: backoff continues

            class Refused(FakeCapture):
                def isOpened(self) -> bool:
                    return False

            return Refused(0, 0)
        return FakeCapture(5, 100 * self.opens)


def test_live_source_reconnects_with_backoff() -> None:
    src = FlakyStream(SourceOptions(reconnect_max=3, backoff_base=0.01, backoff_cap=0.02))
    assert src.live and "secret" not in src.name
    src.open()
    frames = []
    for f in src.frames(threading.Event()):
        frames.append(f)
        if len(frames) == 15:
            break
    assert src.reconnects == 2 and src.opens == 4
    assert all("secret" not in f.source for f in frames)


def test_live_source_gives_up_after_reconnect_max() -> None:
    class Dead(FlakyStream):
        def _capture(self) -> FakeCapture:  # type: ignore[override]
            self.opens += 1
            return FakeCapture(3 if self.opens == 1 else 0, 0) if self.opens == 1 else _closed()

    def _closed() -> FakeCapture:
        c = FakeCapture(0, 0)
        c.isOpened = lambda: False  # type: ignore[method-assign]
        return c

    src = Dead(SourceOptions(reconnect_max=2, backoff_base=0.01))
    src.open()
    assert len(list(src.frames(threading.Event()))) == 3
    assert src.state == "failed"


def test_mjpeg_http_stream_disconnects_and_reconnects(mjpeg_server: str) -> None:
    """A real HTTP MJPEG stream served from this machine drops every connection after a few
    frames; the source reopens it and goes on."""
    src = open_source(mjpeg_server, SourceOptions(reconnect_max=5, backoff_base=0.05,
                                                  open_timeout_s=3))
    assert src.live and "secret" not in src.name
    got = []
    stop = threading.Event()
    timer = threading.Timer(20, stop.set)
    timer.start()
    try:
        for f in src.frames(stop):
            got.append(f)
            if src.reconnects >= 1 and len(got) >= 8:
                break
    finally:
        timer.cancel()
        src.close()
    assert src.reconnects >= 1 and len(got) >= 8


@pytest.mark.parametrize("kind,expected", [("video", list(range(12))), ("images", [0, 1, 2, 3])])
def test_plain_frame_generator_for_library_users(tmp_path: Path, kind: str,
                                                 expected: list[int]) -> None:
    """No threading.Event needed: ``read_frames`` and ``with open_source(...)``."""
    from streamcount.sources import read_frames

    spec = str(write_video(tmp_path / "v.mp4", n=12) if kind == "video"
               else write_images(tmp_path / "imgs", n=4))
    assert [f.index for f in read_frames(spec)] == expected
    with open_source(spec) as src:
        first = next(iter(src.frames()))
        assert first.image.ndim == 3 and first.image.dtype == np.uint8
    assert [f.index for f in open_source(spec).frames()] == expected
