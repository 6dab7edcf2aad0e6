"""Counting metrics: MAE, RMSE, bias and GAME (Guerrero-Gomez-Olmedo et al. 2015)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np


def count_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, mean error (bias = mean(pred - true)) and relative MAE.

    Example:
        >>> count_metrics(np.array([1.0, 3.0]), np.array([2.0, 2.0]))["mae"]
        1.0
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.size == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "bias": float("nan"), "n": 0}
    err = pred - true
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "bias": float(err.mean()),
        "rel_mae": float((np.abs(err) / np.maximum(true, 1.0)).mean()),
        "n": int(pred.size),
    }


def by_true_count(
    pred: np.ndarray, true: np.ndarray, edges: list[float]
) -> list[dict[str, float]]:
    """Count metrics of the images grouped by their true count.

    Where a model's error sits: crowd models tend to be exact on sparse images and short on
    dense ones, which one MAE over the whole split hides.

    Args:
        pred: Predicted count per image.
        true: True count per image.
        edges: Increasing group edges; ``[100, 200]`` gives ``< 100``, ``100-199.9...`` and
            ``>= 200``.

    Returns:
        One dict per group (``low``, ``high`` with ``inf`` for the last, ``n``, ``mae``,
        ``rmse``, ``bias`` and ``share``, the group's part of the summed absolute error).

    Example:
        >>> groups = by_true_count(np.array([1.0, 90.0]), np.array([2.0, 100.0]), [50])
        >>> [(g["n"], g["bias"], round(g["share"], 3)) for g in groups]
        [(1, -1.0, 0.091), (1, -10.0, 0.909)]
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if list(edges) != sorted(set(edges)):
        raise ValueError(f"count edges must increase strictly, got {edges}")
    total = float(np.abs(pred - true).sum()) or 1.0
    bounds = [-np.inf, *edges, np.inf]
    groups = []
    for low, high in pairwise(bounds):
        sel = (true >= low) & (true < high)
        m = count_metrics(pred[sel], true[sel])
        m.pop("rel_mae", None)
        groups.append({"low": max(float(low), 0.0), "high": float(high), **m,
                       "share": float(np.abs(pred[sel] - true[sel]).sum()) / total})
    return groups


def game(pred: np.ndarray, true: np.ndarray, level: int) -> float:
    """Grid Average Mean absolute Error of one image at ``level`` (4**level cells).

    The image is cut into a ``2**level x 2**level`` grid; the error is the sum over cells of
    the absolute difference of the integrated densities. GAME(0) is the absolute count error.

    Args:
        pred: Predicted density ``H x W`` (integrating to the count).
        true: Ground-truth density of the same shape.
        level: Grid level L >= 0.
    """
    if pred.shape != true.shape:
        raise ValueError(f"density shapes differ: {pred.shape} vs {true.shape}")
    n = 2**level
    h, w = pred.shape
    ys = np.linspace(0, h, n + 1).round().astype(int)
    xs = np.linspace(0, w, n + 1).round().astype(int)
    diff = pred.astype(np.float64) - true.astype(np.float64)
    # Cell sums from the integral image: exact and O(HW).
    ii = np.pad(diff.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    cells = ii[np.ix_(ys[1:], xs[1:])] - ii[np.ix_(ys[:-1], xs[1:])]
    cells -= ii[np.ix_(ys[1:], xs[:-1])] - ii[np.ix_(ys[:-1], xs[:-1])]
    return float(np.abs(cells).sum())
