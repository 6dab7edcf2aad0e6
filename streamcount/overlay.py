"""Annotated frames: the density heatmap blended on the frame, count, zones and fps.

The heatmap goes through a colour lookup table (``cv2.applyColorMap``); every buffer is kept
and reused across frames of one size, so drawing allocates nothing per frame in the steady
state. The returned image is the overlay's own buffer: use it (write, show) before the next
:meth:`Overlay.draw`, or pass ``out=``.

Example:
    >>> import numpy as np
    >>> ov = Overlay()
    >>> img = ov.draw(np.zeros((48, 64, 3), np.uint8), np.ones((48, 64), np.float32), 12.0)
    >>> img.shape, img.dtype
    ((48, 64, 3), dtype('uint8'))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from streamcount.zones import ZoneSet

_ZONE_COLOURS = [(255, 255, 255), (0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 128, 0)]


class Overlay:
    """Draws annotated frames.

    Args:
        alpha: Heatmap opacity (0: frame only, 1: heatmap only).
        colormap: An OpenCV colormap (``cv2.COLORMAP_*``) used as the lookup table.
        decay: Per-frame decay of the running peak that scales the heatmap (no flicker).
        min_level: Heat levels (0-255) below this leave the frame untinted.
    """

    def __init__(self, alpha: float = 0.45, colormap: int = cv2.COLORMAP_JET,
                 decay: float = 0.98, min_level: int = 20) -> None:
        self.alpha = float(alpha)
        self.min_level = int(min_level)
        self.colormap = colormap
        self.decay = decay
        self.peak = 0.0
        self._u8: np.ndarray | None = None
        self._heat: np.ndarray | None = None
        self._out: np.ndarray | None = None
        self._pos: np.ndarray | None = None
        self._mask: np.ndarray | None = None

    def _buffers(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._out is None or self._out.shape[:2] != (h, w):
            self._u8 = np.empty((h, w), np.uint8)
            self._heat = np.empty((h, w, 3), np.uint8)
            self._out = np.empty((h, w, 3), np.uint8)
            self._pos = np.empty((h, w), np.float32)
            self._mask = np.empty((h, w), np.uint8)
        assert self._u8 is not None and self._heat is not None
        return self._u8, self._heat, self._out

    def heatmap(self, density: np.ndarray) -> np.ndarray:
        """The colour heatmap (BGR) of ``density``, scaled by a slowly decaying peak."""
        h, w = density.shape
        u8, heat, _ = self._buffers(h, w)
        peak = float(density.max()) if density.size else 0.0
        self.peak = max(peak, self.peak * self.decay, 1e-12)
        assert self._pos is not None
        np.maximum(density, 0.0, out=self._pos)  # negative density is not drawn as heat
        cv2.convertScaleAbs(self._pos, dst=u8, alpha=255.0 / self.peak)
        cv2.applyColorMap(u8, self.colormap, dst=heat)
        return heat

    def draw(
        self,
        frame: np.ndarray,
        density: np.ndarray,
        count: float,
        zones: ZoneSet | None = None,
        zone_counts: dict[str, float] | None = None,
        fps: float | None = None,
        label: str | None = None,
        smoothed: float | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The annotated frame.

        Args:
            frame: BGR uint8 frame.
            density: Density map of the same height and width.
            count: The count to print.
            zones: Zones to outline (with their counts).
            zone_counts: Counts per zone; computed from ``density`` when missing.
            fps: Processing rate to print.
            label: Text for the top line (e.g. the source name).
            smoothed: Smoothed count, printed beside the raw one.
            out: Optional destination buffer (``H x W x 3`` uint8).
        """
        h, w = frame.shape[:2]
        if density.shape != (h, w):
            density = cv2.resize(density, (w, h), interpolation=cv2.INTER_LINEAR)
        heat = self.heatmap(density)
        u8, _, own = self._buffers(h, w)
        dst = own if out is None else out
        cv2.addWeighted(frame, 1.0 - self.alpha, heat, self.alpha, 0.0, dst=dst)
        # Where the density is negligible, keep the frame as it is (no blue cast).
        assert self._mask is not None
        # cv2 takes a scalar for src2; its stubs only list arrays
        cv2.compare(u8, self.min_level, cv2.CMP_LT, dst=self._mask)  # type: ignore[call-overload]
        cv2.copyTo(frame, self._mask, dst)
        scale = max(0.4, min(h, w) / 600.0)
        if zones is not None and (zones.zones or zones.roi is not None):
            if zone_counts is None:
                zone_counts = zones.counts(density)
            for i, (name, poly) in enumerate(zones.outlines(h, w)):
                colour = (128, 128, 128) if name == "roi" else _ZONE_COLOURS[i % len(_ZONE_COLOURS)]
                cv2.polylines(dst, [poly], True, colour, max(1, int(2 * scale)), cv2.LINE_AA)
                if name != "roi":
                    x, y = poly.min(0)
                    text = f"{name}: {zone_counts.get(name, 0.0):.1f}"
                    _text(dst, text, (int(x) + 4, int(y) + int(22 * scale)), scale * 0.6, colour)
        top = f"count {count:.1f}"
        if smoothed is not None:
            top += f" (smoothed {smoothed:.1f})"
        if fps is not None:
            top += f"  {fps:.1f} fps"
        y = int(26 * scale)
        if label:
            _text(dst, label, (6, y), scale * 0.55)
            y += int(32 * scale)
        _text(dst, top, (6, y), scale * 0.7)
        return dst


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float,
          colour: tuple[int, int, int] = (255, 255, 255)) -> None:
    """Text with a dark outline, readable on any background.

    The outline is the same glyphs at the same thickness drawn one pixel off in each direction:
    a thicker outline pass has other glyph widths in OpenCV 5, which doubles the letters.
    """
    thick = max(1, round(scale * 2))
    x, y = org
    for dx, dy in _OUTLINE:
        cv2.putText(img, text, (x + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thick, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def text_box(text: str, scale: float) -> tuple[int, int]:
    """Width and height (above the baseline) that :func:`_text` draws ``text`` in, outline
    excluded: what ``cv2.getTextSize`` says for its font, scale and thickness."""
    thick = max(1, round(scale * 2))
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    return w, h


_OUTLINE = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))
