"""A prepared split as in-memory arrays for training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class SplitArrays:
    """Images, density maps and counts of one split, in memory.

    Attributes:
        images: ``H x W x C`` uint8 (RGB or grey).
        densities: ``H x W`` float32, each integrating to its count.
        counts: Annotated counts (number of points).
        points: ``N x 2`` float32 (x, y) point annotations of each image.
        names: Sample names.
        attrs: The split file's attributes (source, scale, kernel...).
    """

    images: list[np.ndarray] = field(default_factory=list)
    densities: list[np.ndarray] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def split_file(data_dir: Path, split: str) -> Path:
    """``DATA_DIR/SPLIT.h5``, or one :class:`InputError` line when it is missing."""
    from streamcount.errors import InputError

    path = Path(data_dir) / f"{split}.h5"
    if not path.is_file():
        raise InputError(f"no split '{split}' in {data_dir} ({path} is missing)")
    return path


def load_split(path: Path) -> SplitArrays:
    """Load a ``streamcount prepare`` HDF5 split into memory."""
    from streamcount.training.store import read_split, split_info

    out = SplitArrays(attrs=dict(split_info(path)))
    for rec in read_split(path):
        img = rec["image"]
        out.images.append(img[..., None] if img.ndim == 2 else img)
        out.densities.append(np.asarray(rec["density"], dtype=np.float32))
        out.counts.append(float(len(rec["points"])))
        out.points.append(np.asarray(rec["points"], np.float32).reshape(-1, 2))
        out.names.append(str(rec["name"]))
    return out
