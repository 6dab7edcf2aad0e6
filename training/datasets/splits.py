"""Validation splits carved from training data.

Video datasets (consecutive frames are near-duplicates) hold out one contiguous block, by
default the last ``fraction`` of the frames (Mall: the last 160 of frames 1-800), so no
validation frame has a neighbour in training. Image datasets hold out a seeded random subset.

K-fold cross-validation (``fold``): the keys are cut into ``K = round(1 / fraction)`` folds
(contiguous stretches of time for video, a seeded shuffle for images) and fold ``i`` is held
out, so K runs, one per fold, validate on every key exactly once. The folds are a partition of
their own: the default split (``fold=None``) is not one of them.

Example:
    >>> train, val = carve_validation([f"f{i}" for i in range(10)], 0.2, kind="video")
    >>> val
    ['f8', 'f9']
"""

from __future__ import annotations

import numpy as np

from streamcount.errors import InputError


def carve_validation(
    keys: list[str],
    fraction: float,
    kind: str = "images",
    seed: int = 0,
    position: str = "end",
    blocks: int = 1,
    fold: int | None = None,
) -> tuple[list[str], list[str]]:
    """Split ``keys`` into training and validation keys.

    Args:
        keys: Training keys in their natural (time) order.
        fraction: Share held out for validation, in ``[0, 1)``.
        kind: ``"video"`` (contiguous block) or ``"images"`` (seeded random subset).
        seed: Random seed for images.
        position: For video, ``"end"`` or ``"start"``.
        blocks: For video, hold out this many equal contiguous blocks, each ending at
            ``i / blocks`` of the frame range (2 blocks of Mall 1-800 at fraction 0.25: frames
            301-400 and 701-800), so validation sees more than one stretch of time.
        fold: Hold out fold ``fold`` (from 0) of ``round(1 / fraction)`` folds instead (see the
            module docstring); ``position`` and ``blocks`` do not apply.

    Returns:
        ``(train, val)``, each in the original order.

    Raises:
        InputError: Fraction outside ``[0, 1)`` or nothing left for training.
    """
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"--val-fraction must be in [0, 1), got {fraction}")
    if fold is not None:
        return _carve_fold(keys, fraction, kind, seed, fold)
    n = len(keys)
    n_val = round(n * fraction)
    if fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1) if n else 0
    if n_val <= 0:
        return list(keys), []
    if kind == "video":
        if blocks > 1:
            return _carve_blocks(keys, n_val, blocks)
        if position == "start":
            return list(keys[n_val:]), list(keys[:n_val])
        if position != "end":
            raise InputError(f"validation position must be 'start' or 'end', got {position!r}")
        return list(keys[: n - n_val]), list(keys[n - n_val:])
    rng = np.random.default_rng(seed)
    held = set(rng.choice(n, size=n_val, replace=False).tolist())
    return _split_by(keys, held)


def _carve_blocks(keys: list[str], n_val: int, blocks: int) -> tuple[list[str], list[str]]:
    """``blocks`` blocks of ``n_val / blocks`` keys, block i ending at ``(i+1)/blocks``."""
    n = len(keys)
    if blocks * 2 > n:
        raise InputError(f"--val-blocks {blocks} is too many for {n} frames")
    size = max(1, n_val // blocks)
    held: set[int] = set()
    for i in range(blocks):
        end = round(n * (i + 1) / blocks)
        held.update(range(end - size, end))
    return _split_by(keys, held)


def _carve_fold(
    keys: list[str], fraction: float, kind: str, seed: int, fold: int
) -> tuple[list[str], list[str]]:
    """Fold ``fold`` of ``round(1 / fraction)`` near-equal folds as validation.

    Example:
        >>> [carve_validation(list("abcdef"), 1 / 3, kind="video", fold=i)[1] for i in range(3)]
        [['a', 'b'], ['c', 'd'], ['e', 'f']]
    """
    k = round(1.0 / fraction) if 0 < fraction <= 0.5 else 0
    if k < 2:
        raise InputError(f"--fold needs --val-fraction of at most 0.5 (2 or more folds), got "
                         f"{fraction}")
    if not 0 <= fold < k:
        raise InputError(f"--fold must be from 0 to {k - 1} ({k} folds at --val-fraction "
                         f"{fraction:g}), got {fold}")
    n = len(keys)
    if n < k:
        raise InputError(f"{k} folds need at least {k} samples, got {n}")
    order = np.arange(n) if kind == "video" else np.random.default_rng(seed).permutation(n)
    held = set(np.array_split(order, k)[fold].tolist())
    return _split_by(keys, held)


def _split_by(keys: list[str], held: set[int]) -> tuple[list[str], list[str]]:
    """``(train, val)``: the keys whose positions are not / are in ``held``, in order."""
    return ([k for i, k in enumerate(keys) if i not in held],
            [k for i, k in enumerate(keys) if i in held])
