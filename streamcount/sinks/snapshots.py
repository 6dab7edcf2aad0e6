"""Snapshot sink (``--snapshot-every N --snapshot-dir DIR``): every Nth processed frame of each
source as an annotated JPEG, ``<source>_<frame>.jpg``."""

from __future__ import annotations

from pathlib import Path

import cv2

from streamcount.errors import OutputError
from streamcount.frames import Result
from streamcount.sinks import Sink


class SnapshotSink(Sink):
    """Saves annotated snapshots.

    Args:
        folder: Output folder (created).
        every: Save every Nth processed frame per source (>= 1).
        slugs: Source name -> file-name prefix.

    Example:
        >>> SnapshotSink(Path("snaps"), 0, {})
        Traceback (most recent call last):
        ...
        streamcount.errors.InputError: --snapshot-every must be >= 1, got 0
    """

    needs_overlay = True

    def __init__(self, folder: str | Path, every: int, slugs: dict[str, str]) -> None:
        from streamcount.errors import InputError

        if every < 1:
            raise InputError(f"--snapshot-every must be >= 1, got {every}")
        self.folder = Path(folder)
        self.every = every
        self.slugs = slugs
        self.seen: dict[str, int] = {}
        self.saved = 0

    def open(self) -> None:
        """Create the folder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create snapshot folder {self.folder}: {exc.strerror}"
                              ) from None

    def write(self, result: Result) -> None:
        """Save the frame when its turn comes."""
        n = self.seen.get(result.source, 0)
        self.seen[result.source] = n + 1
        if n % self.every:
            return
        img = result.annotated if result.annotated is not None else result.frame.image
        prefix = self.slugs.get(result.source, "source")
        path = self.folder / f"{prefix}_{result.index:06d}.jpg"
        if not cv2.imwrite(str(path), img):
            raise OutputError(f"cannot write snapshot {path}; check the folder and free space")
        self.saved += 1
