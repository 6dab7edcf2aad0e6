"""Small generated inputs for the runtime tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, n: int = 20, w: int = 64, h: int = 48, fps: float = 10.0) -> Path:
    """An mp4v video of ``n`` frames: a bright disc moving on a grey background."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        img = np.full((h, w, 3), 60, np.uint8)
        cv2.circle(img, (int(5 + i * (w - 10) / max(1, n)), h // 2), max(3, h // 8),
                   (255, 255, 255), -1)
        writer.write(img)
    writer.release()
    return path


def video_frames(path: Path) -> int:
    """Number of frames OpenCV can decode from ``path``."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def write_images(folder: Path, n: int = 5, w: int = 32, h: int = 24) -> Path:
    """``n`` PNG images with different brightness, plus one unreadable ``.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"img{i:03d}.png"), np.full((h, w, 3), 20 * i, np.uint8))
    (folder / "img999.png").write_bytes(b"not a png")
    return folder
