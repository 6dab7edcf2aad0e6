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


def _check_increasing(edges: list[float], what: str) -> None:
    """One ``ValueError`` naming ``what`` edges unless ``edges`` increase strictly."""
    if list(edges) != sorted(set(edges)):
        raise ValueError(f"{what} edges must increase strictly, got {edges}")


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
    _check_increasing(edges, "count")
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


def mass_by_neighbour(
    pred: np.ndarray, true: np.ndarray, points: np.ndarray, edges: list[float], radius: float
) -> np.ndarray:
    """One image's densities gathered around its annotated objects, grouped by how far each
    object is from its nearest neighbour.

    Every pixel within ``radius`` of an object goes to the nearest object; the rest is
    background. Objects that touch or overlap one another are where a density model loses
    count (two cells closer than their kernel's width look like one blob); summed over a split
    (:func:`neighbour_groups`), this shows it object by object, which the per-image count hides.

    Args:
        pred: Predicted density ``H x W``.
        true: Annotated density of the same shape (the target the model was trained on).
        points: ``N x 2`` (x, y) object positions, pixel centres at integers.
        edges: Increasing nearest-neighbour distances in pixels; ``[2, 4]`` gives ``< 2``,
            ``2-4`` and ``>= 4`` (a lone object's nearest neighbour is infinitely far).
        radius: How far from an object a pixel still counts as its (about 3 kernel sigmas).

    Returns:
        ``(len(edges) + 2) x 3``: one row per group and a last row for the background;
        columns: objects, predicted mass, annotated mass.

    Example:
        >>> true = np.zeros((9, 9)); true[2, 2] = true[2, 3] = true[6, 6] = 1.0
        >>> pred = true.copy(); pred[2, 3] = 0.0  # the close pair counted as one
        >>> pts = np.array([[2, 2], [3, 2], [6, 6]], np.float32)
        >>> mass_by_neighbour(pred, true, pts, [2.0], 2.0).tolist()
        [[2.0, 1.0, 2.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """
    from scipy.spatial import cKDTree

    if pred.shape != true.shape:
        raise ValueError(f"density shapes differ: {pred.shape} vs {true.shape}")
    _check_increasing(edges, "distance")
    width = pred.shape[1]
    pred = np.asarray(pred, np.float64).ravel()
    true = np.asarray(true, np.float64).ravel()
    out = np.zeros((len(edges) + 2, 3))
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        out[-1, 1:] = pred.sum(), true.sum()
        return out
    tree = cKDTree(pts)
    nearest = tree.query(pts, k=2)[0][:, 1] if len(pts) > 1 else np.array([np.inf])
    group = np.searchsorted(np.asarray(edges, np.float64), nearest, side="right")
    ys, xs = np.divmod(np.arange(pred.size), width)
    dist, owner = tree.query(np.column_stack([xs, ys]).astype(np.float64),
                             distance_upper_bound=radius)
    near = np.isfinite(dist)
    for col, m in ((1, pred), (2, true)):
        per_object = np.bincount(owner[near], weights=m[near], minlength=len(pts))
        out[:-1, col] = np.bincount(group, weights=per_object, minlength=len(edges) + 1)
        out[-1, col] = m[~near].sum()
    out[:-1, 0] = np.bincount(group, minlength=len(edges) + 1)
    return out


def neighbour_groups(sums: np.ndarray, edges: list[float], n_images: int) -> list[dict]:
    """Rows of :func:`mass_by_neighbour` summed over a split, as dicts: ``low``, ``high``
    (``inf`` for the last group), ``objects`` (per image), ``predicted`` and ``annotated``
    (mass per object: 1 is a model that counts such objects right), ``error`` (predicted minus
    annotated per image); then the background (``low`` and ``high`` NaN, per image).

    Example:
        >>> rows = neighbour_groups(np.array([[2, 1, 2], [1, 1, 1], [0, 0.5, 0]]), [2.0], 1)
        >>> [(r["objects"], r["predicted"], r["error"]) for r in rows]
        [(2.0, 0.5, -1.0), (1.0, 1.0, 0.0), (0.0, nan, 0.5)]
    """
    n = max(n_images, 1)
    bounds = [0.0, *edges, float("inf")]
    rows = []
    for (low, high), (k, p, t) in zip(pairwise(bounds), sums[:-1], strict=True):
        rows.append({"low": low, "high": high, "objects": float(k) / n,
                     "predicted": float(p / k) if k else float("nan"),
                     "annotated": float(t / k) if k else float("nan"),
                     "error": float(p - t) / n})
    _, p, t = sums[-1]
    rows.append({"low": float("nan"), "high": float("nan"), "objects": 0.0,
                 "predicted": float("nan"), "annotated": float("nan"), "error": float(p - t) / n})
    return rows


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
