"""Overlay: heatmap through the colour LUT, zone outlines, buffers reused."""

from __future__ import annotations

import numpy as np
import pytest

from streamcount.overlay import Overlay
from streamcount.zones import ZoneSet


def test_heatmap_blend_and_buffer_reuse() -> None:
    ov = Overlay(alpha=0.5)
    frame = np.zeros((48, 64, 3), np.uint8)
    dens = np.zeros((48, 64), np.float32)
    dens[10:20, 10:20] = 1.0
    a = ov.draw(frame, dens, 100.0, fps=9.5)
    hot, cold = a[15, 15].astype(int), a[40, 60].astype(int)
    assert hot[2] > cold[2]  # JET: high density is red
    b = ov.draw(frame, dens, 100.0)
    assert b is a  # the same buffer, no per-frame allocation


def test_zone_outlines_drawn() -> None:
    zones = ZoneSet.from_dict({"zones": [{"name": "z", "polygon": [[5, 5], [40, 5], [40, 40]]}]})
    frame = np.zeros((48, 64, 3), np.uint8)
    ov = Overlay(alpha=0.0)
    img = ov.draw(frame, np.zeros((48, 64), np.float32), 0.0, zones=zones).copy()
    plain = ov.draw(frame, np.zeros((48, 64), np.float32), 0.0)
    assert (img != plain).any()


def test_density_of_another_size_is_resized() -> None:
    out = Overlay().draw(np.zeros((48, 64, 3), np.uint8), np.ones((12, 16), np.float32), 1.0)
    assert out.shape == (48, 64, 3)


@pytest.mark.parametrize("text,scale", [("count 12.3 (smoothed 11.9)  24.8 fps", 0.7),
                                        ("entrance: 4.2", 0.48), ("pets2009_s2l1", 1.1)])
def test_text_outline_has_the_glyph_widths_of_the_text(text: str, scale: float) -> None:
    """The outline and the fill are one set of glyphs: no double-printed letters.

    The outline is the fill's glyphs one pixel off each way, so its ink spans the fill's plus 2
    pixels (within 1 for anti-aliasing); glyphs of another width would drift apart along the
    text. The fill's ink lies inside the box :func:`text_box` reports, short of it by no more
    than the first and last glyphs' side bearings (OpenCV 5.1 draws "pets2009_s2l1" at 1.1 in
    242 of its 247 pixels of advance)."""
    from streamcount.overlay import _text, text_box

    img = np.full((120, 900, 3), 128, np.uint8)
    _text(img, text, (10, 60), scale, (255, 255, 255))
    w, _ = text_box(text, scale)
    thick = max(1, round(scale * 2))
    outline, fill = (np.nonzero(mask.any(axis=0))[0]
                     for mask in (img[..., 0] < 40, img[..., 0] > 215))
    outline_w, fill_w = (xs.max() - xs.min() + 1 for xs in (outline, fill))
    assert abs(outline_w - fill_w - 2) <= 1, (outline_w, fill_w)
    assert w - 4 - 2 * thick <= fill_w <= w, (fill_w, w)
