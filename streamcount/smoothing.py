"""Temporal smoothing of counts: exponential moving average and rolling median.

Example:
    >>> s = parse_smoothing("ema:0.5")()
    >>> [s.update(x) for x in (0.0, 2.0, 2.0)]
    [0.0, 1.0, 1.5]
    >>> m = parse_smoothing("median:3")()
    >>> [m.update(x) for x in (1.0, 9.0, 2.0, 3.0)]
    [1.0, 5.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from streamcount.errors import InputError


class Smoother(Protocol):
    """Anything with ``update(value) -> smoothed value``."""

    def update(self, value: float) -> float:  # pragma: no cover - protocol
        """Feed one value, return the smoothed value."""
        ...


class NoSmoothing:
    """The identity smoother."""

    def update(self, value: float) -> float:
        """Return ``value`` unchanged."""
        return value


class EMA:
    """Exponential moving average: ``s = alpha * x + (1 - alpha) * s``.

    Args:
        alpha: Weight of the newest value, in (0, 1]; smaller is smoother.
    """

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise InputError(f"EMA alpha must be in (0, 1], got {alpha}; e.g. --smooth ema:0.3")
        self.alpha = alpha
        self.value: float | None = None

    def update(self, value: float) -> float:
        """Feed one value, return the average so far."""
        prev = self.value
        self.value = value if prev is None else self.alpha * value + (1 - self.alpha) * prev
        return self.value


class RollingMedian:
    """Median of the last ``window`` values (robust to single-frame spikes).

    Args:
        window: Number of values in the window (>= 1).
    """

    def __init__(self, window: int = 15) -> None:
        if window < 1:
            raise InputError(f"median window must be >= 1, got {window}; e.g. --smooth median:15")
        self.values: deque[float] = deque(maxlen=window)

    def update(self, value: float) -> float:
        """Feed one value, return the median of the window."""
        self.values.append(value)
        return float(np.median(np.fromiter(self.values, np.float64, len(self.values))))


def parse_smoothing(spec: str | None) -> Callable[[], Smoother]:
    """A factory of smoothers from ``ema:ALPHA``, ``median:N`` or ``none``.

    Raises:
        InputError: the spec is malformed.
    """
    if not spec or spec.lower() == "none":
        return NoSmoothing
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    try:
        if kind == "ema":
            alpha = float(arg) if arg else 0.3
            EMA(alpha)  # validate now
            return lambda: EMA(alpha)
        if kind == "median":
            window = int(arg) if arg else 15
            RollingMedian(window)
            return lambda: RollingMedian(window)
    except ValueError:
        pass
    raise InputError(f"bad --smooth value '{spec}': use ema:ALPHA (e.g. ema:0.3), median:N or none")
