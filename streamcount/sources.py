"""Video sources: webcam indexes, video files, RTSP/HTTP(S) URLs, image folders and globs.

Every source yields :class:`~streamcount.frames.Frame` records from a generator. Live sources
(webcams, URLs) are reopened with exponential backoff when they fail; files end cleanly at
their end. Corrupt frames are skipped and counted. Credentials in URLs never leave this module:
names are built with :func:`redact`.

Example:
    >>> redact("rtsp://admin:secret@10.0.0.5:554/stream1")
    'rtsp://***@10.0.0.5:554/stream1'
    >>> classify("0"), classify("rtsp://cam/x"), classify("clips/*.png")
    ('webcam', 'url', 'images')
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# FFmpeg's own messages may print stream URLs (with credentials) and decoder noise; keep them
# quiet unless the user asked otherwise. Read when OpenCV first initialises FFmpeg.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2
import numpy as np

from streamcount import defaults
from streamcount.errors import InputError, SourceError
from streamcount.frames import Frame
from streamcount.images import IMAGE_SUFFIXES, list_images

logger = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
#: Query keys whose values are shown in logs and outputs; every other value is ``***``
#: (an allow-list: camera vendors name their credentials in too many ways to list).
_PUBLIC_KEYS = frozenset({
    "channel", "subtype", "stream", "streamtype", "profile", "resolution", "fps", "width",
    "height", "codec", "transport", "unicast", "camera", "cam", "video", "audio", "media",
    "quality", "compression", "tcp", "rtsp_transport", "format", "mode", "id",
})  # fmt: skip


def redact(url: str) -> str:
    """``url`` with its user info and every query value not known to be harmless as ``***``.

    The user info is cut up to the last ``@`` without trusting the URL parser, so passwords with
    an unencoded ``#``, ``/`` or ``?`` stay hidden too; a fragment is hidden whole.

    Example:
        >>> redact("http://u:p@host/v.mjpg?user=x&pw=S3CRET&channel=1")
        'http://***@host/v.mjpg?user=***&pw=***&channel=1'
        >>> redact("rtsp://admin:pa#ss/w?rd@10.0.0.5:554/stream1")
        'rtsp://***@10.0.0.5:554/stream1'
        >>> redact("video.mp4")
        'video.mp4'
    """
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    rest, hash_, _ = rest.partition("#")
    try:
        parts = urlsplit(f"{scheme}://{rest}")
    except ValueError:
        return f"{scheme}://{rest.split('?', 1)[0]}" + ("?***" if "?" in rest else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, v if k.lower() in _PUBLIC_KEYS else "***") for k, v in pairs],
                          safe="*")
    out = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return out + ("#***" if hash_ else "")


def classify(spec: str) -> str:
    """The kind of a source spec: ``webcam``, ``url``, ``images`` or ``video``."""
    if spec.isdigit():
        return "webcam"
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in URL_SCHEMES:
        return "url"
    if scheme:
        raise InputError(f"unsupported stream scheme '{scheme}' in {redact(spec)}: use one of "
                          f"{', '.join(URL_SCHEMES)}, a file, a folder or a webcam index")
    if any(c in spec for c in "*?[") and not Path(spec).exists():
        return "images"
    p = Path(spec)
    if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES:
        return "images"
    return "video"


def slug(name: str) -> str:
    """A file-name-safe short form of a source name (for per-source output suffixes).

    Example:
        >>> slug("rtsp://***@10.0.0.5:554/stream1"), slug("0"), slug("clips/a b.mp4")
        ('10.0.0.5_554_stream1', 'cam0', 'a_b')
    """
    if name.isdigit():
        return f"cam{name}"
    if "://" in name:
        rest = name.split("://", 1)[1].split("?")[0].split("@")[-1]
    else:
        rest = Path(name.rstrip("/*")).stem or "images"
    return re.sub(r"[^A-Za-z0-9.-]+", "_", rest).strip("_") or "source"


@dataclass
class SourceOptions:
    """How sources are read.

    Attributes:
        mode: ``live``, ``file`` or None (chosen by source type).
        stride: Deliver every Nth decoded frame (files skip decoding the others).
        reconnect_max: Reconnect attempts in a row before a live source is given up.
        backoff_base: First reconnect delay in seconds; doubles each attempt.
        backoff_cap: Longest reconnect delay in seconds.
        max_bad: Corrupt frames in a row after which a file is considered ended.
        fps: Frame rate for sources that have none (image folders) or to override.
        open_timeout_s: Timeout for opening and reading network streams.
    """

    mode: str | None = None
    stride: int = defaults.STRIDE
    reconnect_max: int = defaults.RECONNECT_MAX
    backoff_base: float = defaults.RECONNECT_BACKOFF_S
    backoff_cap: float = defaults.RECONNECT_BACKOFF_CAP_S
    max_bad: int = 25
    fps: float | None = None
    open_timeout_s: float = defaults.OPEN_TIMEOUT_S


class Source:
    """Base class: a named producer of frames with counters the dashboard shows.

    Attributes:
        name: Display name (redacted).
        live: True for live mode (newest frame wins), False for file mode (every frame).
        fps: Nominal frame rate (0 when unknown).
        total: Number of frames when known (files), else None.
        corrupt: Corrupt frames skipped.
        reconnects: Successful reopenings after a failure.
        state: ``ok``, ``reconnecting (n/N)``, ``ended`` or ``failed``.
    """

    kind = "base"

    def __init__(self, spec: str, options: SourceOptions | None = None) -> None:
        self.spec = spec
        self.name = redact(spec)
        self.options = options or SourceOptions()
        self.live = self.default_live if self.options.mode is None else self.options.mode == "live"
        self.fps = 0.0
        self.total: int | None = None
        self.corrupt = 0
        self.reconnects = 0
        self.state = "ok"
        self.size: tuple[int, int] | None = None  # (w, h)

    @property
    def default_live(self) -> bool:
        """Whether the source runs live when no mode is given (False: every frame)."""
        return False

    @property
    def inherently_live(self) -> bool:
        """True for webcams and network streams (they run at their own pace)."""
        return False

    def open(self) -> None:  # pragma: no cover - overridden
        """Open the source; raise :class:`SourceError`/:class:`InputError` when impossible."""

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:  # pragma: no cover
        """Yield frames until the end, a stop request (``stop`` set by another thread), or a
        live source is given up. A plain ``for frame in source.frames()`` reads to the end."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources."""

    def __enter__(self) -> Source:
        return self  # opened by open_source() or on the first frames() call

    def __exit__(self, *exc: object) -> None:
        self.close()


def _looks_like_text(path: Path) -> bool:
    """True for files whose start is NUL-free UTF-8 (FFmpeg would 'decode' them as tty art)."""
    try:
        head = path.open("rb").read(4096)
        head.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return b"\0" not in head


#: Largest frame accepted (8K UHD): a bigger one costs gigabytes a frame in the queues.
MAX_FRAME_PIXELS = 7680 * 4320


def _check_size(name: str, img: np.ndarray) -> None:
    h, w = img.shape[:2]
    if h * w > MAX_FRAME_PIXELS:
        raise SourceError(f"{name}: frames are {w}x{h}, larger than 8K (7680x4320); resize the "
                          "stream or file")


def _check_frame(img: object) -> TypeGuard[np.ndarray]:
    return (isinstance(img, np.ndarray) and img.ndim in (2, 3) and img.size > 0
            and img.dtype == np.uint8)  # fmt: skip


def _to_bgr(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


class CaptureSource(Source):
    """A source read with ``cv2.VideoCapture``: video file, webcam index or stream URL."""

    def __init__(self, spec: str, options: SourceOptions | None = None) -> None:
        self.kind = classify(spec)
        super().__init__(spec, options)
        self.cap: cv2.VideoCapture | None = None
        self._first: np.ndarray | None = None

    @property
    def inherently_live(self) -> bool:
        """Webcams and URLs are live."""
        return self.kind in ("webcam", "url")

    @property
    def default_live(self) -> bool:
        """Live mode by default for webcams and URLs."""
        return self.kind in ("webcam", "url")

    def _capture(self) -> cv2.VideoCapture:
        if self.kind == "webcam":
            return cv2.VideoCapture(int(self.spec))
        if self.kind == "url":
            ms = int(self.options.open_timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            return cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG)

    def _open_once(self) -> bool:
        cap = self._capture()
        if not cap.isOpened():
            cap.release()
            return False
        self.cap = cap
        return True

    def open(self) -> None:
        """Open and read the first frame (so a broken file fails here, in one clear line)."""
        if self.kind == "video":
            p = Path(self.spec)
            if not p.exists():
                raise InputError(f"video file not found: {self.spec}; give a video file, image "
                                 "folder, glob, webcam index or stream URL")
            if p.stat().st_size == 0:
                raise SourceError(f"{self.spec} is empty (0 bytes); give a video file")
            if p.is_file() and _looks_like_text(p):
                raise SourceError(f"cannot open {self.spec} as a video: it is a text file; "
                                  "give a video file, image folder, webcam index or URL")
        if not self._open_once():
            what = {"webcam": f"webcam {self.spec}", "url": f"stream {self.name}"}.get(
                self.kind, f"{self.spec} as a video")
            raise SourceError(f"cannot open {what}: check that it exists and that FFmpeg can "
                              "decode it")  # fmt: skip
        assert self.cap is not None
        ok, img = self.cap.read()
        if not ok or not _check_frame(img):
            self.close()
            raise SourceError(f"{self.name} has no decodable frames (empty, truncated or not "
                              "a video); check the file or stream")
        try:
            _check_size(self.name, img)
        except SourceError:
            self.close()
            raise
        self._first = _to_bgr(img)
        self.size = (int(img.shape[1]), int(img.shape[0]))
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = self.options.fps or (fps if 0 < fps < 1000 else 0.0)
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = n if self.kind == "video" and n > 0 else None
        logger.info("opened %s (%dx%d, %.1f fps%s, %s mode)", self.name, *self.size, self.fps,
                    f", {n} frames" if self.total else "", "live" if self.live else "file")

    def _reconnect(self, stop: threading.Event) -> bool:
        """Reopen with exponential backoff; False when given up or stopped."""
        o = self.options
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        for attempt in range(1, o.reconnect_max + 1):
            delay = min(o.backoff_cap, o.backoff_base * 2 ** (attempt - 1))
            self.state = f"reconnecting {attempt}/{o.reconnect_max}"
            logger.warning("%s: stream lost; reconnect %d/%d in %.1f s", self.name, attempt,
                           o.reconnect_max, delay)
            if stop.wait(delay):
                return False
            if self._open_once():
                self.reconnects += 1
                self.state = "ok"
                logger.info("%s: reconnected (%d so far)", self.name, self.reconnects)
                return True
        self.state = "failed"
        logger.error("%s: gave up after %d reconnect attempts; the other sources go on",
                     self.name, o.reconnect_max)
        return False

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Yield frames; live sources reconnect, files end at their end."""
        stop = stop or threading.Event()  # nobody else stops a plain loop
        if self.cap is None and self._first is None:
            self.open()
        stride = max(1, self.options.stride)
        t0 = time.monotonic()
        index, bad, last_t = -1, 0, -1.0
        pending = self._first
        self._first = None
        while not stop.is_set():
            if pending is not None:
                ok, img, pending = True, pending, None
            else:
                if self.cap is None and not self._reconnect(stop):
                    break
                assert self.cap is not None
                if not self.inherently_live and (index + 1) % stride:
                    ok = self.cap.grab()  # strided: skip decoding
                    img = None
                else:
                    ok, img = self.cap.read()
            if not ok:
                if self.inherently_live:
                    if not self._reconnect(stop):
                        break
                    continue
                index += 1
                if self.total and index < self.total - 1 and bad < self.options.max_bad:
                    bad += 1
                    self.corrupt += 1
                    logger.debug("%s: corrupt frame %d skipped", self.name, index)
                    continue
                break  # end of file
            index += 1
            if index % stride:
                continue
            if not _check_frame(img):
                bad += 1
                self.corrupt += 1
                if bad > self.options.max_bad and not self.inherently_live:
                    break
                continue
            bad = 0
            _check_size(self.name, img)  # a stream can change size mid-way
            wall = time.time()
            if self.inherently_live:
                st = time.monotonic() - t0
            else:
                pos = float(self.cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0 if self.cap else 0
                st = pos if pos > last_t and (pos > 0 or index == 0) else (
                    index / self.fps if self.fps else float(index))
                last_t = st
            yield Frame(self.name, index, st, wall, _to_bgr(img))
        if self.state == "ok":
            self.state = "ended"

    def close(self) -> None:
        """Release the capture."""
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class ImageSource(Source):
    """Frames from an image folder (sorted), a glob pattern, or a single image file."""

    kind = "images"

    def open(self) -> None:
        """List the images; fail in one line when there are none."""
        try:
            files = list_images(self.spec)
        except InputError:
            raise InputError(f"image file not found: {self.spec}") from None
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.spec}")
        self.files = files
        self.total = len(files)
        self.fps = self.options.fps or 1.0
        logger.info("opened %s (%d images)", self.name, len(files))

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Yield each readable image; unreadable ones are skipped and counted as corrupt."""
        stop = stop or threading.Event()  # nobody else stops a plain loop
        if not hasattr(self, "files"):
            self.open()
        stride = max(1, self.options.stride)
        for index, f in enumerate(self.files):
            if stop.is_set():
                break
            if index % stride:
                continue
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if not _check_frame(img):
                self.corrupt += 1
                logger.warning("%s: unreadable image skipped", f)
                continue
            _check_size(str(f), img)
            if self.size is None:
                self.size = (int(img.shape[1]), int(img.shape[0]))
            yield Frame(self.name, index, index / self.fps, time.time(), img)
        self.state = "ended"


def open_source(spec: str, options: SourceOptions | None = None) -> Source:
    """Create and open the source for ``spec`` (webcam index, file, folder, glob or URL).

    Use it as a context manager to close it afterwards:
    ``with open_source("clip.mp4") as src: for frame in src.frames(): ...``

    Raises:
        InputError: a file or folder does not exist or holds no images.
        SourceError: it exists but cannot be decoded, or a stream cannot be opened.
    """
    src: Source = ImageSource(spec, options) if classify(spec) == "images" else CaptureSource(
        spec, options)
    src.open()
    return src


def read_frames(spec: str, options: SourceOptions | None = None) -> Iterator[Frame]:
    """Frames of a webcam, file, folder, glob or stream URL, as a plain generator.

    The source is opened first (errors come before the first frame) and closed when the loop
    ends or is left early.

    Example:
        >>> for frame in read_frames("examples/pets2009_s2l1.mp4"):  # doctest: +SKIP
        ...     print(frame.index, frame.image.shape)
    """
    with open_source(spec, options) as src:
        yield from src.frames()


def unique_names(sources: list[Source]) -> None:
    """Make source names unique by appending ``#2``, ``#3``... to repeats."""
    seen: dict[str, int] = {}
    for s in sources:
        n = seen.get(s.name, 0) + 1
        seen[s.name] = n
        if n > 1:
            s.name = f"{s.name}#{n}"
