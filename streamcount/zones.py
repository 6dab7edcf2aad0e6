"""Named counting zones and a region of interest, as polygons in frame pixels.

A zone file is JSON or YAML::

    {
      "frame_size": [640, 480],            # the size the coordinates refer to (optional)
      "roi": [[0, 100], [640, 100], [640, 480], [0, 480]],   # optional: count only here
      "zones": [
        {"name": "entrance", "polygon": [[10, 200], [200, 200], [200, 470], [10, 470]],
         "alerts": [{"above": 10, "for": 5}]}
      ]
    }

A zone's count is the integral of the density map over its polygon. When frames are not of
``frame_size`` the polygons are scaled to the frame.

Example:
    >>> square = [[0, 0], [4, 0], [4, 4], [0, 4]]
    >>> zs = ZoneSet.from_dict({"zones": [{"name": "all", "polygon": square}]})
    >>> zs.counts(np.ones((8, 8), np.float32))["all"]
    25.0
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamcount.errors import InputError
from streamcount.settings import within

#: Limits that keep a zone file's cost bounded (memory and time are per zone and per point).
MAX_ZONES = 256
MAX_POINTS = 1000
MAX_COORD = 100_000
MAX_NAME = 64

_FILE_KEYS = ("frame_size", "roi", "zones")
_ZONE_KEYS = ("name", "polygon", "alerts")
_ALERT_KEYS = ("above", "below", "for", "clear")


def _zone_name(raw: Any, i: int, source: str) -> str:
    """A zone name that is safe in a terminal, a CSV header and a log line."""
    name = str(raw)
    if not name or len(name) > MAX_NAME or not name.isprintable() or name != name.strip():
        shown = name[:MAX_NAME].encode("unicode_escape").decode("ascii")
        raise InputError(f"{source}: zone #{i + 1} name '{shown}' must be 1-{MAX_NAME} printable "
                         "characters (no control characters, newlines or outer spaces)")
    return name


def _number(rule: dict[str, Any], key: str, source: str, zone: str) -> float | None:
    """A finite number from an alert rule, None when absent; anything else is an error."""
    if key not in rule:
        return None
    v = rule[key]
    if not within(v):
        raise InputError(f"{source}: zone '{zone}': alert '{key}' must be a finite number, "
                         f"got {v!r}")
    return float(v)


@dataclass
class AlertRule:
    """Raise an alert when a zone's (smoothed) count stays above/below a value for N seconds.

    Attributes:
        above: Fire while the count is above this.
        below: Fire while the count is below this (both: outside the band).
        seconds: How long the condition must hold before the alert starts.
        clear: How long it must stop holding before the alert ends (no flapping on a count
            that hovers at the threshold).
    """

    above: float | None = None
    below: float | None = None
    seconds: float = 0.0
    clear: float = 1.0


@dataclass
class Zone:
    """A named polygon (frame pixels) and its alert rules."""

    name: str
    polygon: np.ndarray
    alerts: list[AlertRule] = field(default_factory=list)


def self_intersects(poly: np.ndarray) -> bool:
    """True when two non-adjacent edges of the closed polygon cross (all pairs at once, numpy).

    Example:
        >>> self_intersects(np.array([[0, 0], [4, 4], [4, 0], [0, 4]], float))  # a bow tie
        True
    """
    p1 = poly
    p2 = np.roll(poly, -1, axis=0)
    n = len(poly)

    def orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - \
            (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])

    a, b = p1[:, None], p2[:, None]  # edge i (rows)
    c, d = p1[None, :], p2[None, :]  # edge j (columns)
    cross = (orient(c, d, a) * orient(c, d, b) < 0) & (orient(a, b, c) * orient(a, b, d) < 0)
    i, j = np.triu_indices(n, k=2)
    keep = ~((i == 0) & (j == n - 1))  # adjacent through the closing edge
    return bool(cross[i[keep], j[keep]].any())


def _polygon(raw: Any, what: str, source: str) -> np.ndarray:
    try:
        poly = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{source}: {what} polygon is not a list of [x, y] numbers") from None
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
        raise InputError(f"{source}: {what} polygon needs at least 3 [x, y] points")
    if not np.isfinite(poly).all():
        raise InputError(f"{source}: {what} polygon has non-finite coordinates")
    if len(poly) > MAX_POINTS:
        raise InputError(f"{source}: {what} polygon has {len(poly)} points: at most "
                         f"{MAX_POINTS}; simplify it")
    if np.abs(poly).max() > MAX_COORD:
        raise InputError(f"{source}: {what} polygon has a coordinate beyond +-{MAX_COORD} px")
    if self_intersects(poly):
        raise InputError(f"{source}: {what} polygon intersects itself; list its corners in order")
    area = 0.5 * abs(float(np.dot(poly[:, 0], np.roll(poly[:, 1], 1))
                            - np.dot(poly[:, 1], np.roll(poly[:, 0], 1))))  # fmt: skip
    if area < 1.0:
        raise InputError(f"{source}: {what} polygon is empty (area {area:.1f} px)")
    return poly


@dataclass
class _SparseMask:
    """A polygon's pixels in one frame size: its bounding box and a boolean mask of the box."""

    y0: int
    x0: int
    mask: np.ndarray

    @classmethod
    def of(cls, poly: np.ndarray, h: int, w: int) -> _SparseMask:
        pts = np.round(poly).astype(np.int64)
        x0, y0 = np.clip(pts.min(0), 0, [w, h])
        x1, y1 = np.clip(pts.max(0) + 1, 0, [w, h])
        box = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)
        if box.size:
            cv2.fillPoly(box, [(pts - [x0, y0]).astype(np.int32)], 1)
        return cls(int(y0), int(x0), box.astype(bool))

    def integrate(self, density: np.ndarray) -> float:
        h, w = self.mask.shape
        if not self.mask.size:
            return 0.0
        box = density[self.y0 : self.y0 + h, self.x0 : self.x0 + w]
        return float(box[self.mask].sum(dtype=np.float64))


class ZoneSet:
    """Zones and an optional ROI; integrates density maps over them.

    Masks are rasterised once per frame size and reused.
    """

    def __init__(
        self,
        zones: list[Zone],
        roi: np.ndarray | None = None,
        frame_size: tuple[int, int] | None = None,
        source: str = "zones",
    ) -> None:
        self.zones = zones
        self.roi = roi
        self.frame_size = frame_size  # (w, h) the coordinates refer to
        self.source = source
        self._cache: dict[tuple[int, int], tuple[np.ndarray | None, list[_SparseMask]]] = {}

    @property
    def names(self) -> list[str]:
        """Zone names in file order."""
        return [z.name for z in self.zones]

    @classmethod
    def empty(cls) -> ZoneSet:
        """No zones, no ROI."""
        return cls([])

    @classmethod
    def from_dict(cls, data: Any, source: str = "zones") -> ZoneSet:
        """Build from the parsed file content; every problem is one clear :class:`InputError`."""
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected an object with 'zones' (and optional 'roi')")
        unknown = sorted(str(k) for k in data if k not in _FILE_KEYS)
        if unknown:
            raise InputError(f"{source}: unknown key(s) {', '.join(unknown)} in a zone file "
                             f"(allowed: {', '.join(_FILE_KEYS)}); see docs/zones.md")
        if not data.get("zones") and data.get("roi") is None:
            raise InputError(f"{source}: no zones and no roi: nothing to count in; add a "
                             "'zones' list (see docs/zones.md)")
        raw_zones = data.get("zones", [])
        if not isinstance(raw_zones, list):
            raise InputError(f"{source}: 'zones' must be a list")
        if len(raw_zones) > MAX_ZONES:
            raise InputError(f"{source}: {len(raw_zones)} zones: at most {MAX_ZONES}")
        zones: list[Zone] = []
        for i, z in enumerate(raw_zones):
            if not isinstance(z, dict) or "polygon" not in z:
                raise InputError(f"{source}: zone #{i + 1} needs a 'polygon'")
            bad = sorted(str(k) for k in z if k not in _ZONE_KEYS)
            if bad:
                raise InputError(f"{source}: zone #{i + 1}: unknown key(s) {', '.join(bad)} "
                                 f"(allowed: {', '.join(_ZONE_KEYS)})")
            name = _zone_name(z.get("name", f"zone{i + 1}"), i, source)
            if name in {q.name for q in zones}:
                raise InputError(f"{source}: zone name '{name}' is used twice")
            rules = []
            for a in z.get("alerts", []) or []:
                if not isinstance(a, dict) or ("above" not in a and "below" not in a):
                    raise InputError(f"{source}: zone '{name}': an alert needs 'above' or 'below'")
                bad = sorted(str(k) for k in a if k not in _ALERT_KEYS)
                if bad:
                    raise InputError(f"{source}: zone '{name}': unknown alert key(s) "
                                     f"{', '.join(bad)} (allowed: {', '.join(_ALERT_KEYS)})")
                above, below, hold, clear = (_number(a, k, source, name)
                                             for k in ("above", "below", "for", "clear"))
                for key, v in (("for", hold), ("clear", clear)):
                    if v is not None and v < 0:
                        raise InputError(f"{source}: zone '{name}': alert '{key}' must be >= 0 "
                                         "seconds")
                rules.append(AlertRule(above, below, hold or 0.0,
                                       1.0 if clear is None else clear))
            zones.append(Zone(name, _polygon(z["polygon"], f"zone '{name}'", source), rules))
        roi = _polygon(data["roi"], "roi", source) if data.get("roi") is not None else None
        size = data.get("frame_size")
        if size is not None:
            if not (isinstance(size, list | tuple) and len(size) == 2 and min(size) > 0):
                raise InputError(f"{source}: frame_size must be [width, height]")
            size = (int(size[0]), int(size[1]))
            for z in zones:
                _check_inside(z.polygon, size, f"zone '{z.name}'", source)
            if roi is not None:
                _check_inside(roi, size, "roi", source)
        return cls(zones, roi, size, source)

    @classmethod
    def load(cls, path: str | Path) -> ZoneSet:
        """Read a JSON or YAML zone file."""
        return cls.from_dict(read_zone_file(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The zone file content (what :meth:`from_dict` reads back).

        Example:
            >>> sq = [[0, 0], [4, 0], [4, 4], [0, 4]]
            >>> d = {"frame_size": [8, 8], "zones": [{"name": "a", "polygon": sq,
            ...      "alerts": [{"above": 2.0, "for": 1.0, "clear": 1.0}]}]}
            >>> ZoneSet.from_dict(d).to_dict() == d
            True
        """

        def pts(poly: np.ndarray) -> list[list[float | int]]:
            return [[int(v) if float(v).is_integer() else float(v) for v in p] for p in poly]

        out: dict[str, Any] = {}
        if self.frame_size is not None:
            out["frame_size"] = list(self.frame_size)
        if self.roi is not None:
            out["roi"] = pts(self.roi)
        zones = []
        for z in self.zones:
            rules = []
            for r in z.alerts:
                rule: dict[str, float] = {}
                if r.above is not None:
                    rule["above"] = r.above
                if r.below is not None:
                    rule["below"] = r.below
                rule["for"], rule["clear"] = r.seconds, r.clear
                rules.append(rule)
            zone: dict[str, Any] = {"name": z.name, "polygon": pts(z.polygon)}
            if rules:
                zone["alerts"] = rules
            zones.append(zone)
        out["zones"] = zones
        return out

    def _scaled(self, poly: np.ndarray, w: int, h: int) -> np.ndarray:
        if self.frame_size is None or self.frame_size == (w, h):
            return poly
        return poly * np.array([w / self.frame_size[0], h / self.frame_size[1]])

    def masks(self, h: int, w: int) -> tuple[np.ndarray | None, list[_SparseMask]]:
        """(ROI mask ``H x W`` float32 or None, one sparse mask per zone) for a frame size.

        Zone masks are kept as their bounding box plus a boolean mask of that box: memory
        grows with the zones' area, not with the number of zones times the frame.
        """
        key = (h, w)
        if key not in self._cache:
            roi = None
            if self.roi is not None:
                roi = np.zeros((h, w), np.uint8)
                cv2.fillPoly(roi, [np.round(self._scaled(self.roi, w, h)).astype(np.int32)], 1)
                roi = roi.astype(np.float32)
            zm = [_SparseMask.of(self._scaled(z.polygon, w, h), h, w) for z in self.zones]
            self._cache = {key: (roi, zm)}  # one size at a time per source
        return self._cache[key]

    def apply_roi(self, density: np.ndarray) -> np.ndarray:
        """The density with everything outside the ROI set to zero (a copy only when needed)."""
        roi, _ = self.masks(*density.shape)
        return density if roi is None else density * roi

    def counts(self, density: np.ndarray) -> dict[str, float]:
        """Integral of ``density`` (frame coordinates, ROI applied) over each zone."""
        if not self.zones:
            return {}
        _, zm = self.masks(*density.shape)
        return {z.name: max(0.0, m.integrate(density))  # never negative
                for z, m in zip(self.zones, zm, strict=True)}

    def outlines(self, h: int, w: int) -> list[tuple[str, np.ndarray]]:
        """Zone polygons in frame pixels (for drawing), ROI first as ``"roi"``."""
        out = []
        if self.roi is not None:
            out.append(("roi", np.round(self._scaled(self.roi, w, h)).astype(np.int32)))
        for z in self.zones:
            out.append((z.name, np.round(self._scaled(z.polygon, w, h)).astype(np.int32)))
        return out


def read_zone_file(path: str | Path) -> Any:
    """The parsed content of a JSON or YAML zone file (validate it with
    :meth:`ZoneSet.from_dict`).

    Raises:
        InputError: missing, unreadable, empty or unparsable file (one line).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"zone file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read zone file {path}: {exc}") from None
    if not text.strip():
        raise InputError(f"zone file {path} is empty; make one with `streamcount zones`")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            from streamcount.safeyaml import load_yaml

            return load_yaml(text, f"zone file {path}")
        return json.loads(text)
    except InputError:
        raise
    except Exception as exc:  # json and yaml raise different types
        line = str(exc).splitlines()[0]
        raise InputError(f"zone file {path} is not valid {path.suffix[1:]}: {line}") from None


def _check_inside(poly: np.ndarray, size: tuple[int, int], what: str, source: str) -> None:
    w, h = size
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    if x1 < 0 or y1 < 0 or x0 > w or y0 > h:
        raise InputError(f"{source}: {what} lies entirely outside the {w}x{h} frame")
    # Partly outside is fine: the mask is clipped to the frame.


def template(width: int, height: int) -> dict[str, Any]:
    """A starting zone file for a ``width x height`` frame: left and right halves, whole ROI."""
    half = width // 2
    return {
        "frame_size": [width, height],
        "roi": [[0, 0], [width, 0], [width, height], [0, height]],
        "zones": [
            {"name": "left", "polygon": [[0, 0], [half, 0], [half, height], [0, height]],
             "alerts": [{"above": 20, "for": 5}]},
            {"name": "right", "polygon": [[half, 0], [width, 0], [width, height], [half, height]]},
        ],
    }  # fmt: skip


def measure(zones: ZoneSet, density: np.ndarray, count: float
            ) -> tuple[float, dict[str, float], np.ndarray]:
    """Apply the ROI and integrate each zone: ``(count, zone counts, density)``.

    Stateless, so it can run wherever the density map is (the fleet runs it next to the engine
    and ships only the numbers).

    Example:
        >>> sq = [[0, 0], [2, 0], [2, 2], [0, 2]]
        >>> zs = ZoneSet.from_dict({"zones": [{"name": "a", "polygon": sq}]})
        >>> c, zc, _ = measure(zs, np.ones((4, 4), np.float32), 16.0)
        >>> c, zc
        (16.0, {'a': 9.0})
    """
    if zones.roi is not None:
        density = zones.apply_roi(density)
        count = max(0.0, float(density.sum(dtype=np.float64)))
    return count, zones.counts(density), density
