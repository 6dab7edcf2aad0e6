"""Reading still images from paths, folders and globs, with one clear error for each bad file."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from streamcount.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts",
                  ".wmv", ".flv")
MAX_PIXELS = 12000 * 12000  # a bigger still image costs gigabytes to decode and count


def list_images(spec: str) -> list[Path]:
    """The images a source spec names: a folder's images (sorted), one file, or a glob's images.

    Returns an empty list when a folder or pattern holds no image.

    Raises:
        InputError: Nothing exists at ``spec`` and it is not a pattern.

    Example:
        >>> list_images("/nonexistent/*.jpg")
        []
    """
    p = Path(spec).expanduser()
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if p.is_file():
        return [p]
    if any(ch in spec for ch in "*?["):
        return sorted(Path(f) for f in glob.glob(spec, recursive=True)
                      if Path(f).is_file() and Path(f).suffix.lower() in IMAGE_SUFFIXES)
    raise InputError(f"no such file or folder: {spec}")


def expand_paths(items: Sequence[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths.

    Raises:
        InputError: an item matches nothing.
    """
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                kinds = ", ".join(IMAGE_SUFFIXES)
                raise InputError(f"no images in folder {p} (looked for {kinds})")
            out.extend(files)
        elif p.is_file():
            if p.suffix.lower() in VIDEO_SUFFIXES:
                raise InputError(f"{p} is a video: `count` takes images; use "
                                 f"`streamcount run {p}` for videos")
            out.append(p)
        elif any(ch in item for ch in "*?["):
            files = sorted(Path(f) for f in glob.glob(item, recursive=True) if Path(f).is_file())
            if not files:
                raise InputError(f"the pattern {item} matches no file")
            out.extend(files)
        else:
            raise InputError(f"no such file or folder: {item}")
    # one entry per real file: `**` follows symlinked folders, loops included
    seen: set[str] = set()
    unique = []
    for f in out:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            unique.append(f)
    return unique


def read_image(path: Path) -> np.ndarray:
    """Read an image as OpenCV does (BGR, grey, BGRA; 8 or 16 bit), or raise one clear line."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise InputError(f"{path} is empty (0 bytes)")
    small = cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8)  # 1/64 of the pixels: the size
    if small is not None and small.shape[0] * small.shape[1] * 64 > MAX_PIXELS * 1.05:
        h, w = small.shape[0] * 8, small.shape[1] * 8
        raise InputError(f"{path} is about {w}x{h}: larger than 12000x12000 pixels; resize it")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError(f"{path} is not a readable image (corrupt, truncated or unknown format)")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise InputError(f"{path} is {img.shape[1]}x{img.shape[0]}: larger than 12000x12000 "
                         "pixels; resize it")
    return img


def iter_images(paths: Sequence[Path]) -> Iterator[tuple[Path, np.ndarray | InputError]]:
    """``(path, image)`` per path; a bad file yields its error instead of stopping the loop."""
    for p in paths:
        try:
            yield p, read_image(p)
        except InputError as exc:
            yield p, exc
