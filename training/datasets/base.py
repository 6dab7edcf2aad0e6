"""The common record every dataset reader yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Sample:
    """One annotated image.

    Attributes:
        name: Stable identifier (file stem or frame number), unique within the dataset.
        image: ``H x W x 3`` uint8 RGB (grey images are stored ``H x W x 1``).
        points: ``N x 2`` float32 (x, y) in 0-based pixel coordinates of ``image``.
        roi: Optional ``H x W`` uint8 mask (1 = counted region).
        perspective: Optional ``H x W`` float32 perspective map (pixels per metre or similar).
        meta: Free-form extras (frame index, source file).
    """

    name: str
    image: np.ndarray
    points: np.ndarray
    roi: np.ndarray | None = None
    perspective: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """The number of annotated points."""
        return len(self.points)
