"""Evaluate a checkpoint on a prepared split: MAE, RMSE, bias, GAME(0-3), plots."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamcount.errors import InputError
from streamcount.training.checkpoint import effective_density_scale, model_from_checkpoint
from streamcount.training.data import normalize_image
from streamcount.training.density import DensityConfig
from streamcount.training.metrics import (
    by_true_count,
    count_metrics,
    game,
    mass_by_neighbour,
    neighbour_groups,
)
from streamcount.training.splits_io import load_split

logger = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Per-image predictions and the summary metrics."""

    metrics: dict[str, float]
    names: list[str] = field(default_factory=list)
    true: list[float] = field(default_factory=list)
    pred: list[float] = field(default_factory=list)
    agreement: list[float] = field(default_factory=list)
    example: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # image, gt, predicted
    blocks: dict[str, dict[str, float]] = field(default_factory=dict)
    bands: list[dict[str, float]] = field(default_factory=list)
    grid: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    by_count: list[dict[str, float]] = field(default_factory=list)
    by_neighbour: list[dict[str, float]] = field(default_factory=list)


def frame_blocks(names: list[str]) -> list[tuple[str, list[int]]]:
    """Runs of consecutive frame numbers among sample names (``seq_000301`` ... ``seq_000400``).

    Returns:
        ``[(label, indices)]``, one per run, labelled ``first-last``; ``[]`` when the names
        carry no frame numbers or form a single run.

    Example:
        >>> frame_blocks(["f1", "f2", "f7", "f8"])
        [('1-2', [0, 1]), ('7-8', [2, 3])]
    """
    import re

    nums = []
    for name in names:
        m = re.search(r"(\d+)\D*$", name)
        if m is None:
            return []
        nums.append(int(m.group(1)))
    order = sorted(range(len(nums)), key=nums.__getitem__)
    runs: list[list[int]] = []
    for i in order:
        if runs and nums[i] == nums[runs[-1][-1]] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    if len(runs) < 2 or len(runs) > 10:
        return []
    return [(f"{nums[r[0]]}-{nums[r[-1]]}", r) for r in runs]


#: Test-time view sets of ``evaluate --views``: how many of the eight flips and rotations.
#: 2 adds the left-right mirror; 4 the flips training uses (mirrors and the half turn); 8 adds
#: the transposed four (the quarter turns and their mirrors).
VIEW_SETS: dict[int, tuple[str, ...]] = {
    1: ("id",),
    2: ("id", "h"),
    4: ("id", "h", "v", "hv"),
    8: ("id", "h", "v", "hv", "t", "th", "tv", "thv"),
}


def check_views(views: int) -> None:
    """Raise one clear line unless ``views`` is a key of :data:`VIEW_SETS`."""
    if views not in VIEW_SETS:
        raise InputError(f"--views must be one of {', '.join(map(str, VIEW_SETS))}, got {views}")


def view(x: Any, name: str, inverse: bool = False) -> Any:
    """One of the eight flips/rotations of a ``... x H x W`` tensor, or its inverse.

    ``name``: ``id``; ``h``/``v``/``hv`` (mirror left-right, top-bottom, both); ``t`` (transpose)
    and ``th``/``tv``/``thv`` (transpose, then those flips). The inverse maps a density map
    computed on the view back onto the original image.

    Example:
        >>> import torch
        >>> x = torch.arange(6.0).reshape(1, 2, 3)
        >>> all(torch.equal(view(view(x, n), n, inverse=True), x) for n in VIEW_SETS[8])
        True
    """
    flips = {"h": (-1,), "v": (-2,), "hv": (-2, -1)}
    if name == "id":
        return x
    if not name.startswith("t"):
        return x.flip(flips[name])
    rest = name[1:]
    if inverse:
        return (x.flip(flips[rest]) if rest else x).transpose(-1, -2)
    y = x.transpose(-1, -2)
    return y.flip(flips[rest]) if rest else y


def evaluate_checkpoint(
    checkpoint: Path, split_path: Path, game_levels: int = 3, progress: bool = True,
    bands: int = 0,
    grid: int = 0,
    count_edges: list[float] | None = None,
    neighbour_edges: list[float] | None = None,
    views: int = 1,
) -> Evaluation:
    """Run a checkpoint over every image of a split.

    Args:
        checkpoint: ``best.pt`` or ``last.pt`` from ``streamcount train``.
        split_path: An HDF5 split from ``streamcount prepare``.
        game_levels: Compute GAME(0..L).
        progress: Show a progress bar.
        bands: Also report the mean true and predicted count in this many horizontal bands,
            top to bottom (where in the frame a camera's error sits: far or near).
        grid: Also report the mean true count and the mean bias (predicted minus true) in each
            cell of a ``grid`` x ``grid`` division of the image, over all images (``"all"``)
            and over each block of frames (see :func:`frame_blocks`).
        count_edges: Also report the metrics of the images grouped by true count at these
            edges (see :func:`~streamcount.training.metrics.by_true_count`).
        neighbour_edges: Also report the predicted mass per annotated object, the objects
            grouped by the distance to their nearest neighbour at these edges in pixels (see
            :func:`~streamcount.training.metrics.mass_by_neighbour`); each pixel within 3
            kernel sigmas of the split (its ``sigma``, the median one for perspective
            kernels) goes to its nearest object.
        views: Test-time views (a key of :data:`VIEW_SETS`: 1, 2, 4 or 8): each image is
            counted as each view, the density maps mapped back and averaged (``views`` times
            the compute).
    """
    import torch
    from rich.progress import track

    check_views(views)
    model, cfg = model_from_checkpoint(checkpoint)
    data = load_split(split_path)
    if not data.images:
        raise InputError(f"{split_path} is empty: nothing to evaluate; pick another --split")
    if data.images[0].shape[2] != cfg["model"]["in_channels"]:
        raise InputError(
            f"{split_path} has {data.images[0].shape[2]}-channel images but the checkpoint "
            f"expects {cfg['model']['in_channels']}"
        )
    mean = np.asarray(cfg["mean"], np.float32)
    std = np.asarray(cfg["std"], np.float32)
    scale = effective_density_scale(cfg)
    games: list[list[float]] = [[] for _ in range(game_levels + 1)]
    ev = Evaluation(metrics={})
    best_example = None
    band_true = np.zeros(max(bands, 0))
    band_pred = np.zeros(max(bands, 0))
    cell_true: list[np.ndarray] = []
    cell_pred: list[np.ndarray] = []
    radius = 3.0 * float(data.attrs.get("sigma", DensityConfig.sigma))
    near_sums = np.zeros((len(neighbour_edges or []) + 2, 3))
    for img, den, cnt, name, pts in track(
        list(zip(data.images, data.densities, data.counts, data.names, data.points,
                 strict=True)),
        description="evaluate", disable=not progress, transient=True,
    ):  # fmt: skip
        x = torch.from_numpy(normalize_image(img, mean, std))
        with torch.no_grad():
            maps = [view(model(view(x, v)), v, inverse=True) for v in VIEW_SETS[views]]
            d = torch.stack(maps).mean(0)[0, 0].numpy() / scale
        p = float(d.sum())
        ev.names.append(name)
        ev.true.append(cnt)
        ev.pred.append(p)
        ev.agreement.append(spatial_agreement(d, den))
        for level in range(game_levels + 1):
            games[level].append(game(d, den, level))
        if bands > 0:
            band_true += _cell_sums(den, bands, 1)[:, 0]
            band_pred += _cell_sums(d, bands, 1)[:, 0]
        if grid > 0:
            cell_true.append(_cell_sums(den, grid, grid))
            cell_pred.append(_cell_sums(d, grid, grid))
        if neighbour_edges:
            near_sums += mass_by_neighbour(d, den, pts, neighbour_edges, radius)
        if best_example is None:
            best_example = (img, den, d)
    ev.metrics = count_metrics(np.array(ev.pred), np.array(ev.true))
    for level, vals in enumerate(games):
        ev.metrics[f"game{level}"] = float(np.mean(vals))
    ev.example = best_example
    n_img = max(len(ev.pred), 1)
    ev.bands = [{"band": b, "true": band_true[b] / n_img, "pred": band_pred[b] / n_img,
                 "bias": (band_pred[b] - band_true[b]) / n_img} for b in range(max(bands, 0))]
    if count_edges:
        ev.by_count = by_true_count(np.array(ev.pred), np.array(ev.true), count_edges)
    if neighbour_edges:
        ev.by_neighbour = neighbour_groups(near_sums, neighbour_edges, len(ev.pred))
    blocks = frame_blocks(ev.names)
    for label, idx in blocks:
        ev.blocks[label] = count_metrics(np.array(ev.pred)[idx], np.array(ev.true)[idx])
    if grid > 0:
        for label, idx in [("all", list(range(len(cell_true)))), *blocks]:
            t = np.mean([cell_true[i] for i in idx], axis=0)
            b = np.mean([cell_pred[i] - cell_true[i] for i in idx], axis=0)
            ev.grid[label] = {"true": t.round(4).tolist(), "bias": b.round(4).tolist()}
    return ev


def spatial_agreement(pred: np.ndarray, true: np.ndarray, cell: int = 16) -> float:
    """Pearson correlation of two density maps summed over ``cell`` x ``cell`` blocks and
    smoothed by one block: whether the predicted objects lie where the annotated ones do,
    whatever the counts. A trained model on its own camera's held-back images gives about
    0.9; an image whose annotations belong to another picture gives near 0 (ShanghaiTech B
    IMG_108: 0.14). NaN where either map is flat.

    Example:
        >>> a = np.zeros((128, 128), np.float32); a[8, 8] = a[20, 40] = 1.0
        >>> b = np.zeros((128, 128), np.float32); b[100, 90] = b[120, 110] = 1.0
        >>> round(spatial_agreement(a, a), 3), spatial_agreement(a, b) < 0
        (1.0, True)
    """
    import cv2

    rows, cols = max(1, pred.shape[0] // cell), max(1, pred.shape[1] // cell)
    p = cv2.GaussianBlur(_cell_sums(pred, rows, cols).astype(np.float32), (0, 0), 1.0)
    t = cv2.GaussianBlur(_cell_sums(true, rows, cols).astype(np.float32), (0, 0), 1.0)
    if p.std() == 0 or t.std() == 0:
        return float("nan")
    return float(np.corrcoef(p.ravel(), t.ravel())[0, 1])


def worst_images(ev: Evaluation, n: int) -> list[dict[str, Any]]:
    """The ``n`` images with the largest absolute count error, largest first, with their
    :func:`spatial_agreement`: a large error where the prediction lies on the annotations is
    the model's blind spot; one with an agreement near 0 is an annotation to look at.

    Example:
        >>> ev = Evaluation({}, names=["a", "b", "c"], true=[10, 20, 30], pred=[11, 12, 30],
        ...                 agreement=[0.9, 0.1, 0.95])
        >>> [(w["name"], w["error"], w["agreement"]) for w in worst_images(ev, 2)]
        [('b', -8.0, 0.1), ('a', 1.0, 0.9)]
    """
    order = sorted(range(len(ev.names)), key=lambda i: -abs(ev.pred[i] - ev.true[i]))[:n]
    return [{"name": ev.names[i], "true": float(ev.true[i]), "pred": float(ev.pred[i]),
             "error": float(ev.pred[i]) - float(ev.true[i]),
             "agreement": float(ev.agreement[i])} for i in order]


def _cell_sums(d: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sums of a density map over a ``rows`` x ``cols`` grid of near-equal cells.

    ``cols = 1`` gives horizontal bands, top to bottom.

    Example:
        >>> _cell_sums(np.ones((4, 6)), 2, 2).tolist()
        [[6.0, 6.0], [6.0, 6.0]]
        >>> _cell_sums(np.ones((4, 6)), 4, 1).tolist()
        [[6.0], [6.0], [6.0], [6.0]]
    """
    hs = np.linspace(0, d.shape[0], rows + 1).round().astype(int)
    ws = np.linspace(0, d.shape[1], cols + 1).round().astype(int)
    return np.array([[float(d[hs[i]:hs[i + 1], ws[j]:ws[j + 1]].sum()) for j in range(cols)]
                     for i in range(rows)])


def plot_evaluation(ev: Evaluation, path: Path, title: str = "") -> None:
    """True-vs-predicted scatter beside an example density map and its ground truth."""
    from streamcount.errors import require

    require("matplotlib", "train")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    ax = axes[0]
    ax.scatter(ev.true, ev.pred, s=12, alpha=0.7)
    lo = min(min(ev.true), min(ev.pred))
    hi = max(max(ev.true), max(ev.pred))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("true count")
    ax.set_ylabel("predicted count")
    m = ev.metrics
    ax.set_title(f"MAE {m['mae']:.2f}  RMSE {m['rmse']:.2f}  bias {m['bias']:+.2f}")
    if ev.example is not None:
        img, gt, pr = ev.example
        axes[1].imshow(img.squeeze(), cmap="gray" if img.shape[2] == 1 else None)
        axes[1].set_title("image")
        vmax = max(gt.max(), pr.max(), 1e-6)
        axes[2].imshow(gt, cmap="jet", vmin=0, vmax=vmax)
        axes[2].set_title(f"ground truth ({gt.sum():.1f})")
        axes[3].imshow(pr, cmap="jet", vmin=0, vmax=vmax)
        axes[3].set_title(f"predicted ({pr.sum():.1f})")
        for a in axes[1:]:
            a.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary_row(ev: Evaluation) -> dict[str, Any]:
    """The metrics rounded for display."""
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in ev.metrics.items()}
