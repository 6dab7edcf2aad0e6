"""Counting metrics: MAE/RMSE/bias, the groups by true count, the mass around objects by
nearest-neighbour distance, and GAME."""

from __future__ import annotations

import numpy as np
import pytest

from streamcount.training.metrics import (
    by_true_count,
    count_metrics,
    game,
    mass_by_neighbour,
    neighbour_groups,
)


@pytest.mark.parametrize(
    ("pred", "true", "edges", "expected_n", "expected_bias"),
    [
        ([5.0, 150.0, 180.0, 250.0], [5.0, 160.0, 170.0, 300.0], [100, 200], [1, 2, 1],
         [0.0, 0.0, -50.0]),
        ([1.0, 2.0], [1.0, 3.0], [100], [2, 0], [-0.5, float("nan")]),
        ([10.0, 20.0], [9.0, 19.0], [], [2], [1.0]),
        ([99.0, 101.0], [100.0, 100.0], [100], [0, 2], [float("nan"), 0.0]),  # edge: upper group
    ],
)
def test_groups_by_true_count(pred, true, edges, expected_n, expected_bias) -> None:
    groups = by_true_count(np.array(pred), np.array(true), edges)
    assert [g["n"] for g in groups] == expected_n
    np.testing.assert_allclose([g["bias"] for g in groups], expected_bias)
    assert groups[-1]["high"] == float("inf") and groups[0]["low"] == 0.0
    shares = [g["share"] for g in groups if g["n"]]
    total = np.abs(np.array(pred) - np.array(true)).sum()
    assert sum(shares) == pytest.approx(1.0 if total else 0.0)
    for g in groups:  # each group's figures are those of its images alone
        if g["n"]:
            sel = (np.array(true) >= g["low"]) & (np.array(true) < g["high"])
            assert g["mae"] == pytest.approx(count_metrics(np.array(pred)[sel],
                                                           np.array(true)[sel])["mae"])


@pytest.mark.parametrize("edges", [[200, 100], [100, 100]])
def test_groups_need_increasing_edges(edges) -> None:
    with pytest.raises(ValueError, match="increase"):
        by_true_count(np.ones(2), np.ones(2), edges)


def _spots(points: list[tuple[int, int]], shape: tuple[int, int] = (32, 40),
           mass: list[float] | None = None) -> np.ndarray:
    out = np.zeros(shape)
    for (x, y), m in zip(points, mass or [1.0] * len(points), strict=True):
        out[y, x] += m
    return out


@pytest.mark.parametrize(
    ("points", "pred_mass", "edges", "expected"),
    [
        # a touching pair (1 px apart) counted as one, a lone object counted right
        ([(5, 5), (6, 5), (20, 20)], [1.0, 0.0, 1.0], [2.0],
         [[2, 1.0, 2.0], [1, 1.0, 1.0]]),
        # the same pair split across the edge at 1 px: both objects in the upper group
        ([(5, 5), (6, 5), (20, 20)], [1.0, 1.0, 1.0], [1.0], [[0, 0.0, 0.0], [3, 3.0, 3.0]]),
        # three groups; an over-count of the lone object shows in its group only
        ([(5, 5), (8, 5), (30, 10), (2, 28)], [1.0, 1.0, 1.5, 1.0], [2.0, 4.0],
         [[0, 0.0, 0.0], [2, 2.0, 2.0], [2, 2.5, 2.0]]),
        # one object alone: its nearest neighbour is infinitely far
        ([(10, 10)], [0.5], [3.0], [[0, 0.0, 0.0], [1, 0.5, 1.0]]),
    ],
)
def test_mass_by_neighbour_groups_objects_by_their_nearest_neighbour(
    points, pred_mass, edges, expected
) -> None:
    true = _spots(points)
    pred = _spots(points, mass=pred_mass)
    pred[0, 39] = 0.25  # far from every object: background
    rows = mass_by_neighbour(pred, true, np.array(points, np.float32), edges, radius=3.0)
    np.testing.assert_allclose(rows[:-1], expected)
    np.testing.assert_allclose(rows[-1], [0.0, 0.25, 0.0])
    # every pixel is counted once: the rows add up to the maps' sums
    assert rows[:, 1].sum() == pytest.approx(pred.sum())
    assert rows[:, 2].sum() == pytest.approx(true.sum())


def test_mass_by_neighbour_without_objects_is_all_background() -> None:
    pred = np.full((8, 8), 0.5)
    rows = mass_by_neighbour(pred, np.zeros((8, 8)), np.zeros((0, 2)), [2.0], radius=3.0)
    np.testing.assert_allclose(rows, [[0, 0, 0], [0, 0, 0], [0, 32.0, 0]])


@pytest.mark.parametrize(("shape", "edges", "match"), [
    ((8, 9), [2.0], "shapes differ"),
    ((8, 8), [4.0, 2.0], "increase"),
])
def test_mass_by_neighbour_refuses(shape, edges, match) -> None:
    with pytest.raises(ValueError, match=match):
        mass_by_neighbour(np.zeros(shape), np.zeros((8, 8)), np.ones((1, 2)), edges, 3.0)


def test_neighbour_groups_per_image_and_per_object() -> None:
    sums = np.array([[6.0, 3.0, 6.0], [0.0, 0.0, 0.0], [4.0, 4.4, 4.0], [0.0, 1.0, 0.2]])
    rows = neighbour_groups(sums, [2.0, 5.0], n_images=2)
    assert [(r["low"], r["high"]) for r in rows[:-1]] == [(0.0, 2.0), (2.0, 5.0),
                                                          (5.0, float("inf"))]
    assert [r["objects"] for r in rows] == [3.0, 0.0, 2.0, 0.0]
    assert rows[0]["predicted"] == pytest.approx(0.5) and rows[0]["annotated"] == 1.0
    assert np.isnan(rows[1]["predicted"]) and np.isnan(rows[-1]["low"])
    # the errors an image add up to the split's bias against the annotated maps
    assert sum(r["error"] for r in rows) == pytest.approx((8.4 - 10.2) / 2)


@pytest.mark.parametrize(("level", "expected"), [(0, 0.0), (1, 2.0), (2, 2.0)])
def test_game_counts_misplaced_density(level: int, expected: float) -> None:
    """One unit of density moved from the top-left to the bottom-right quarter: the count is
    right (GAME 0 = 0) but every finer grid sees it twice (once missing, once extra)."""
    true = np.zeros((8, 8))
    pred = np.zeros((8, 8))
    true[1, 1] = 1.0
    pred[6, 6] = 1.0
    assert game(pred, true, level) == pytest.approx(expected)
