"""Annotated video sink (``--video OUT``): one mp4v file per source, always finalized.

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
        self.fourcc = cv2.VideoWriter_fourcc(*fourcc)
        self.writers: dict[str, cv2.VideoWriter] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.frames: dict[str, int] = {}

    def open(self) -> None:
        """Check that every output path can be written."""
        for p in self.paths.values():
            check_writable(p, "video")

    def write(self, result: Result) -> None:
        """Append the annotated frame (resized when the source changed size)."""
        img = result.annotated if result.annotated is not None else result.frame.image
        name = result.source
        w = self.writers.get(name)
        if w is None:
            path = self.paths[name]
            h_, w_ = img.shape[:2]
            w = cv2.VideoWriter(str(path), self.fourcc, self.fps[name], (w_, h_))
            if not w.isOpened():
                raise OutputError(f"cannot write video {path}: OpenCV could not open a writer "
                                  "(check the folder and use .mp4 or .avi)")
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
                logger.info("%s: %d frames", self.paths[name], self.frames[name])
        self.writers.clear()
