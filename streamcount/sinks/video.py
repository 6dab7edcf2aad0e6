"""Annotated video sink (``--video OUT``): one H.264 file per source, always finalized.

``.mp4``, ``.mkv`` and ``.mov`` files are H.264 (yuv420p, what browsers and players expect),
encoded with PyAV's bundled FFmpeg and libx264. Without PyAV (or an H.264 encoder in it), and
for ``.avi``, OpenCV writes MPEG-4 Part 2 instead, with one warning that many players and
browsers will not play it.

Writers open on the first frame of their source (its size) and are released in :meth:`close`,
which the runner calls in a ``finally`` (also on Ctrl-C and SIGTERM), so the file is playable.
With several sources each gets its own file: ``out_<source>.mp4``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from streamcount.errors import OutputError
from streamcount.frames import Result
from streamcount.sinks import Sink, check_writable, suffixed

logger = logging.getLogger(__name__)


H264_SUFFIXES = (".mp4", ".mkv", ".mov")


class _H264Writer:
    """H.264 through PyAV (FFmpeg + libx264), from BGR frames; odd sizes are padded to even."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        from fractions import Fraction

        import av

        w, h = size
        self.size = (w + w % 2, h + h % 2)
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream(
            "libx264", rate=Fraction(fps).limit_denominator(1001),
            options={"crf": "23", "preset": "veryfast"},
        )  # fmt: skip
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self._av = av

    def write(self, img: object) -> None:
        import numpy as np

        a = np.asarray(img)
        if (a.shape[1], a.shape[0]) != self.size:
            a = cv2.copyMakeBorder(a, 0, self.size[1] - a.shape[0], 0, self.size[0] - a.shape[1],
                                   cv2.BORDER_REPLICATE)
        frame = self._av.VideoFrame.from_ndarray(a, format="bgr24")
        self.container.mux(self.stream.encode(frame))

    def release(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))  # flush delayed frames
        finally:
            self.container.close()


def h264_available() -> bool:
    """True when PyAV with an H.264 encoder is importable."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception:
        return False
    return True


class VideoSink(Sink):
    """Writes annotated frames with ``cv2.VideoWriter``.

    Args:
        path: Output file (``.mp4``; ``.avi`` works too).
        sources: Source name -> (file suffix, frames per second of the output).
        fourcc: Four-character codec code.

    Example:
        >>> sink = VideoSink(Path("out.mp4"), {"cam": ("cam0", 10.0)})
        >>> sink.paths["cam"].name
        'out.mp4'
    """

    needs_overlay = True

    def __init__(self, path: str | Path, sources: dict[str, tuple[str, float]],
                 fourcc: str = "mp4v") -> None:
        self.path = Path(path)
        multi = len(sources) > 1
        self.paths = {n: suffixed(self.path, sfx) if multi else self.path
                      for n, (sfx, _) in sources.items()}  # fmt: skip
        self.fps = {n: (fps if fps and fps > 0 else 10.0) for n, (_, fps) in sources.items()}
        self.fourcc = cv2.VideoWriter.fourcc(*fourcc)
        self.writers: dict[str, _H264Writer | cv2.VideoWriter] = {}
        self.codecs: dict[str, str] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.frames: dict[str, int] = {}

    def open(self) -> None:
        """Check that every output path can be written."""
        for p in self.paths.values():
            check_writable(p, "video")
        if any(p.suffix.lower() in H264_SUFFIXES for p in self.paths.values()):
            self._h264 = h264_available()
            if not self._h264:
                logger.warning("no H.264 encoder (the av package is missing): writing MPEG-4 "
                               "Part 2, which browsers and many players do not play; "
                               "pip install av")

    def write(self, result: Result) -> None:
        """Append the annotated frame (resized when the source changed size)."""
        img = result.annotated if result.annotated is not None else result.frame.image
        name = result.source
        w = self.writers.get(name)
        if w is None:
            path = self.paths[name]
            h_, w_ = img.shape[:2]
            if getattr(self, "_h264", False) and path.suffix.lower() in H264_SUFFIXES:
                try:
                    w = _H264Writer(path, self.fps[name], (w_, h_))
                except OSError as exc:
                    raise OutputError(f"cannot write video {path}: {exc}") from None
                self.codecs[name] = "h264"
            else:
                w = cv2.VideoWriter(str(path), self.fourcc, self.fps[name], (w_, h_))
                if not w.isOpened():
                    raise OutputError(f"cannot write video {path}: OpenCV could not open a "
                                      "writer (check the folder and use .mp4 or .avi)")
                self.codecs[name] = "mpeg4"
            self.writers[name] = w
            self.sizes[name] = (w_, h_)
            self.frames[name] = 0
            logger.info("writing %s (%dx%d, %.1f fps)", path, w_, h_, self.fps[name])
        size = self.sizes[name]
        if (img.shape[1], img.shape[0]) != size:
            img = cv2.resize(img, size)
        w.write(img)
        self.frames[name] += 1

    def close(self) -> None:
        """Release every writer (finalizes the files)."""
        for name, w in list(self.writers.items()):
            try:
                w.release()
            finally:
                logger.info("%s: %d frames (%s)", self.paths[name], self.frames[name],
                            self.codecs.get(name, "?"))
        self.writers.clear()
