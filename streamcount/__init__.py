"""streamcount: count people and objects in live video by density-map estimation.

The runtime package: numpy, OpenCV, ONNX Runtime and rich; it never imports torch.

Example:
    >>> from streamcount import Counter  # doctest: +SKIP
    >>> counter = Counter(model="crowd")  # doctest: +SKIP
    >>> result = counter.count(frame)  # doctest: +SKIP
    >>> result.count  # doctest: +SKIP
    23.4
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# OpenCV's own warnings (e.g. "backend is generally available but can't be used to capture by
# name") would print stream URLs and duplicate our one-line errors; users can still override.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# FFmpeg's own messages may print stream URLs and decoder noise; read when OpenCV first
# initialises FFmpeg, so set before anything imports cv2.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

if TYPE_CHECKING:  # pragma: no cover
    from streamcount.engine import Counter, CountResult

__all__ = ["CountResult", "Counter", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import streamcount` stays cheap (no onnxruntime) for the CLI's --help.
    if name in ("Counter", "CountResult"):
        from streamcount import engine

        return getattr(engine, name)
    raise AttributeError(name)
