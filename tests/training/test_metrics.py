"""Counting metrics: MAE/RMSE/bias, the groups by true count, and GAME."""

from __future__ import annotations

import numpy as np
import pytest

from streamcount.training.metrics import by_true_count, count_metrics, game


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


@pytest.mark.parametrize(("level", "expected"), [(0, 0.0), (1, 2.0), (2, 2.0)])
def test_game_counts_misplaced_density(level: int, expected: float) -> None:
    """One unit of density moved from the top-left to the bottom-right quarter: the count is
    right (GAME 0 = 0) but every finer grid sees it twice (once missing, once extra)."""
    true = np.zeros((8, 8))
    pred = np.zeros((8, 8))
    true[1, 1] = 1.0
    pred[6, 6] = 1.0
    assert game(pred, true, level) == pytest.approx(expected)
