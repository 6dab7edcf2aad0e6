"""The Bayesian loss on point annotations, and training with it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from streamcount.errors import InputError  # noqa: E402
from streamcount.training.config import TrainConfig  # noqa: E402
from streamcount.training.losses import bayesian_loss  # noqa: E402


def _two_people() -> list:
    return [torch.tensor([[1.5, 1.5], [13.5, 9.5]])]  # block centres (0, 0) and (3, 2)


@pytest.mark.parametrize("background", [0.0, 1.0])
def test_one_unit_on_each_point_costs_nothing(background: float) -> None:
    counts = torch.zeros(1, 1, 4, 4)
    counts[0, 0, 0, 0] = counts[0, 0, 2, 3] = 1.0
    assert float(bayesian_loss(counts, _two_people(), 4, 2.0, background)) < 1e-3


@pytest.mark.parametrize(("where", "background", "cost"), [
    ("nowhere", 0.0, 2.0),       # both points expect one and get none
    ("between", 0.0, 0.0),       # shared between the two: no loss without a background...
    ("far", 1.0, 2.0 + 2.0),     # ...far from both, it is the background's: a count of 2 there
])
def test_misplaced_counts_cost(where: str, background: float, cost: float) -> None:
    counts = torch.zeros(1, 1, 4, 4)
    if where == "between":  # at an equal distance from both points
        counts[0, 0, 1, 1] = counts[0, 0, 1, 2] = 1.0
    elif where == "far":
        counts[0, 0, 3, 0] = 2.0
    loss = float(bayesian_loss(counts, _two_people(), 4, 2.0, background))
    if where == "between":
        assert loss < 0.05
    else:
        assert loss == pytest.approx(cost, abs=0.05)


def test_negative_counts_do_not_cancel_positive_ones() -> None:
    counts = torch.zeros(1, 1, 4, 4)
    counts[0, 0, 0, 0] = counts[0, 0, 2, 3] = 1.0
    counts[0, 0, 0, 1] = 1.0  # one too many near the first point...
    counts[0, 0, 1, 0] = -1.0  # ...is not paid for with a negative count beside it
    assert float(bayesian_loss(counts, _two_people(), 4, 2.0, 0.0)) == pytest.approx(2.0, abs=0.05)


def test_an_empty_patch_should_count_zero() -> None:
    counts = torch.full((2, 1, 3, 3), 0.5, requires_grad=True)
    loss = bayesian_loss(counts, [torch.zeros(0, 2), torch.zeros(0, 2)], 4, 4.0, 1.0)
    assert float(loss.detach()) == pytest.approx(4.5)
    loss.backward()
    assert (counts.grad > 0).all()  # every block is pushed down


def test_gradient_moves_counts_onto_the_points() -> None:
    """A few steps of gradient descent on a flat density gather it where the people are."""
    counts = torch.full((1, 1, 4, 4), 2.0 / 16, requires_grad=True)
    opt = torch.optim.SGD([counts], lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step / 20))
    first = None
    for _ in range(300):
        loss = bayesian_loss(counts, _two_people(), 4, 2.0, 1.0)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert float(loss.detach()) < 0.2 * first
    c = counts.detach()[0, 0]
    assert float(c.sum()) == pytest.approx(2.0, abs=0.2)  # the count is right...
    assert float(c[3, 0]) < 0.05 and float(c[0, 3]) < 0.05  # ...and far corners hold little
    assert float(c.min()) > -0.05  # negative counts are pushed up, not used to cancel others


@pytest.mark.parametrize("setting", [{"loss": "l1"}, {"bayes_sigma": 0.0},
                                     {"bayes_background": -1.0}])
def test_bad_loss_settings_are_one_clear_error(setting: dict) -> None:
    with pytest.raises(InputError, match=next(iter(setting))):
        TrainConfig(**setting)


def test_training_with_the_bayesian_loss_learns_to_count(blob_dataset: Path,
                                                         tmp_path: Path) -> None:
    from streamcount.training.data import AugmentConfig
    from streamcount.training.trainer import Trainer

    cfg = TrainConfig(data=str(blob_dataset), out=str(tmp_path), filters=8, epochs=12,
                      samples_per_epoch=96, batch_size=8, patch=32, lr=5e-3, seed=1,
                      name="blobs", threads=2, ema_decay=0.9, loss="bayes", bayes_sigma=2.0,
                      aug=AugmentConfig(hflip=True, vflip=True, scale_jitter=0.2))
    result = Trainer(cfg, progress=False).fit()
    assert result.best_val["mae"] < 0.5 * result.baseline_mae
    assert TrainConfig.from_dict(replace(cfg, bayes_sigma=3.0).to_dict()).bayes_sigma == 3.0
