"""Checks of settings: types of dataclasses filled from files, ranges of numbers.

A file gives values as they are written (``epochs = "ten"``, ``threads: x``); the dataclass does
not check them, so a wrong type would surface later as a traceback deep in the code. One call
names every such field at once. :func:`within` is the one range test of every numeric option
(flags and files alike): a NaN or an infinity is never within a range.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import fields
from pathlib import Path
from typing import Any

from streamcount.errors import InputError

# The annotation parts checked, with what they accept and how the error line names them.
_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "bool": ((bool,), "true or false"),
    "int": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "str": ((str,), "text"),
    "Path": ((str, Path), "a path"),
    "None": ((type(None),), "left out"),
}


def within(value: object, lo: float | None = None, hi: float | None = None, *,
           above: bool = False) -> bool:
    """Whether ``value`` is a finite number from ``lo`` to ``hi`` (``None``: unbounded).

    Args:
        value: What was given: any real number (numpy's too); a ``bool``, text or ``None`` is
            not a number.
        lo: Lowest value allowed (``None``: no lower bound).
        hi: Highest value allowed (``None``: no upper bound).
        above: ``lo`` itself is not allowed (for values that must be above it, e.g. above 0).

    Example:
        >>> within(0.5, 0, 1), within(0.0, 0, 1, above=True), within(float("nan"), 0, 1)
        (True, False, False)
        >>> import numpy as np
        >>> within(True, 0, 1), within("1", 0, 2), within(7), within(np.float32(2.5), 0, 4)
        (False, False, True, True)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    v = float(value)
    if not math.isfinite(v):
        return False
    return (lo is None or (v > lo if above else v >= lo)) and (hi is None or v <= hi)


def wrong_types(settings: Any) -> list[str]:
    """``"name = value (should be ...)"`` for each field of ``settings`` of the wrong type.

    Fields annotated with ``bool``, ``int``, ``float``, ``str``, ``Path`` or a union of them
    with ``None`` are checked; others are left alone. An ``int`` passes for a ``float``, a
    ``bool`` for nothing but ``bool``.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class S:
        ...     n: int = 1
        ...     x: float | None = None
        >>> wrong_types(S(n="2", x=0.5))
        ["n = '2' (should be a whole number)"]
    """
    bad = []
    for f in fields(settings):
        parts = [p.strip() for p in str(f.type).split("|")]
        if not all(p in _KINDS for p in parts):
            continue
        value = getattr(settings, f.name)
        kinds = tuple(k for p in parts for k in _KINDS[p][0])
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_KINDS[p][1] for p in parts)
            bad.append(f"{f.name} = {value!r} (should be {names})")
    return bad


def check_types(settings: Any, what: str) -> None:
    """Raise one :class:`InputError` naming every field of ``settings`` of the wrong type.

    Args:
        settings: A dataclass instance.
        what: How the error line starts (``"training setting"``, ``"fleet file x.yaml"``).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class S:
        ...     on: bool = True
        >>> check_types(S(on=3), "demo")
        Traceback (most recent call last):
        ...
        streamcount.errors.InputError: demo of the wrong type: on = 3 (should be true or false)
    """
    bad = wrong_types(settings)
    if bad:
        raise InputError(f"{what} of the wrong type: {'; '.join(bad)}")
