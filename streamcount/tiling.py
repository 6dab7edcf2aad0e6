"""Tiling of large inputs: overlapping tiles for context, each output pixel owned by one tile.

Neighbouring tiles overlap by ``overlap`` pixels so every tile sees context around its border;
the seam between two tiles is placed in the middle of their overlap and each tile contributes
only the pixels on its side of the seams, so no density is lost or counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """One tile: the input window ``[y0:y1, x0:x1]`` and the region it owns in the output."""

    y0: int
    y1: int
    x0: int
    x1: int
    oy0: int
    oy1: int
    ox0: int
    ox1: int


def _axis(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Windows (start, end) along one axis and the owned (start, end) of each."""
    if length <= tile:
        return [(0, length, 0, length)]
    step = max(1, tile - overlap)
    starts = sorted({*range(0, length - tile, step), length - tile})
    spans = [(s, s + tile) for s in starts]
    out = []
    for i, (s, e) in enumerate(spans):
        own0 = 0 if i == 0 else (spans[i - 1][1] + s) // 2
        own1 = length if i == len(spans) - 1 else (e + spans[i + 1][0]) // 2
        out.append((s, e, own0, own1))
    return out


def plan_tiles(h: int, w: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles covering an ``h x w`` input with windows of at most ``tile`` pixels a side.

    Example:
        >>> tiles = plan_tiles(100, 50, 64, 16)
        >>> sum((t.oy1 - t.oy0) * (t.ox1 - t.ox0) for t in tiles)
        5000
    """
    if overlap >= tile:
        overlap = tile // 4
    return [
        Tile(y0, y1, x0, x1, oy0, oy1, ox0, ox1)
        for (y0, y1, oy0, oy1) in _axis(h, tile, overlap)
        for (x0, x1, ox0, ox1) in _axis(w, tile, overlap)
    ]
