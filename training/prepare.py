"""``streamcount prepare``: turn a point-annotated dataset into HDF5 train/val/test splits.

Reads any registered format (see :func:`streamcount.training.datasets.formats`), optionally
rescales the images (points move with them, counts stay exact), builds a density map per image
and writes ``OUT/train.h5``, ``OUT/val.h5`` and ``OUT/test.h5`` (see
:mod:`streamcount.training.store`). Empty splits (for example the test part of a partial copy)
are reported and not written; a stale file of an empty split left by an earlier run is removed
so the folder stays consistent.

Example:
    $ streamcount prepare mall --root data/mall --out prepared/mall --scale 0.5
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamcount.errors import InputError
from streamcount.settings import within
from streamcount.training.datasets import formats

logger = logging.getLogger(__name__)

HELP = "turn a point-annotated dataset into HDF5 training splits (train/val/test)"


@dataclass
class PrepareConfig:
    """Everything ``prepare`` needs; filled from the CLI flags.

    Attributes:
        format: Dataset format name (see ``formats()``).
        root: Dataset folder.
        out: Output folder for ``{split}.h5``.
        scale: Resize factor for images and points.
        kernel: Density kernel (None: the format's default).
        sigma: Sigma in output pixels (None: the format's default times ``scale``).
        k: Neighbours for the adaptive kernel.
        beta: Factor for the adaptive kernel.
        sigma_min: Lower clip for adaptive/perspective sigmas.
        sigma_max: Upper clip for adaptive/perspective sigmas.
        val_fraction: Share of the training data held out for validation.
        val_blocks: Video formats: hold out this many contiguous blocks (spread over time).
        fold: Hold out this fold (from 0) of ``round(1 / val_fraction)`` folds instead, for
            K-fold cross-validation (None: the usual split).
        n_train: Cells only: training images drawn from the pool.
        seed: Seed for random draws.
        annotations: Points only: the annotation file.
        label: Points only: keep only this label.
        limit: At most this many samples per split (quick looks and tests).
        splits: Which splits to write.
        exclude: Samples left out (names as the reader gives them, e.g. ``IMG_108``), for
            annotations known not to match their image. Taken out after the validation split
            is drawn, so every other sample stays in the split it had.
    """

    format: str
    root: Path
    out: Path
    scale: float = 1.0
    kernel: str | None = None
    sigma: float | None = None
    k: int = 3
    beta: float = 0.3
    sigma_min: float = 0.5
    sigma_max: float = 50.0
    val_fraction: float = 0.2
    val_blocks: int = 1
    fold: int | None = None
    n_train: int | None = None
    seed: int = 0
    annotations: Path | None = None
    label: str | None = None
    limit: int | None = None
    splits: tuple[str, ...] = ("train", "val", "test")
    exclude: tuple[str, ...] = ()


@dataclass
class SplitSummary:
    """What was written for one split."""

    split: str
    images: int = 0
    total: int = 0
    min_count: int | None = None
    max_count: int | None = None
    max_rel_error: float = 0.0
    dropped: int = 0
    path: Path | None = None
    counts: list[int] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``prepare`` flags."""
    parser.add_argument("format", choices=list(formats()), metavar="FORMAT",
                        help="dataset format: " + ", ".join(
                            f"{k} ({v.description})" for k, v in formats().items()))
    parser.add_argument("--root", type=Path, required=True, help="the dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder for {split}.h5")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="resize images by this factor (points follow; default 1)")
    parser.add_argument("--kernel", choices=["fixed", "adaptive", "perspective"],
                        help="density kernel (default per format: cells fixed, mall/ucsd "
                             "perspective, shanghaitech adaptive, points fixed)")
    parser.add_argument("--sigma", type=float,
                        help="sigma in output pixels: the fixed sigma, the typical (median-"
                             "perspective) sigma, or the adaptive fallback (default per format "
                             "x --scale: cells 2, mall 4, ucsd 3, shanghaitech 8, points 4)")
    parser.add_argument("--k", type=int, default=3, help="adaptive kernel: neighbours (3)")
    parser.add_argument("--beta", type=float, default=0.3, help="adaptive kernel: beta (0.3)")
    parser.add_argument("--sigma-min", type=float, default=0.5,
                        help="lower clip of adaptive/perspective sigmas (0.5)")
    parser.add_argument("--sigma-max", type=float, default=50.0,
                        help="upper clip of adaptive/perspective sigmas (50)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="share of the training data held out for validation (0.2; videos: "
                             "the last frames, images: a seeded random subset)")
    parser.add_argument("--val-blocks", type=int, default=1,
                        help="videos: hold out this many contiguous blocks spread over time "
                             "instead of one at the end (1)")
    parser.add_argument("--fold", type=int,
                        help="K-fold cross-validation: hold out fold I (from 0) of "
                             "K = 1 / --val-fraction folds (5 at 0.2); run once per fold to "
                             "validate on every sample (videos: contiguous stretches)")
    parser.add_argument("--n-train", type=int,
                        help="cells: draw N training images (32 or 64) from the pool 1-100; "
                             "the rest of the pool becomes the validation split")
    parser.add_argument("--seed", type=int, default=0, help="seed for random draws (0)")
    parser.add_argument("--annotations", type=Path,
                        help="points: annotation file (CSV image,x,y; JSON; CVAT XML; Label "
                             "Studio JSON); default: found in --root")
    parser.add_argument("--label", help="points: keep only points with this label")
    parser.add_argument("--limit", type=int,
                        help="at most N samples per split (a quick look; default: all)")
    parser.add_argument("--splits", default="train,val,test",
                        help="comma-separated splits to write (default train,val,test)")
    parser.add_argument("--exclude", default="",
                        help="comma-separated sample names to leave out (e.g. IMG_108: "
                             "annotations that do not match their image); the other samples "
                             "keep their splits")


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    """Build a :class:`PrepareConfig` from parsed flags, validating values."""
    splits = tuple(s.strip() for s in str(args.splits).split(",") if s.strip())
    bad = [s for s in splits if s not in ("train", "val", "test")]
    if bad or not splits:
        raise InputError(f"--splits takes train, val and/or test, got {args.splits!r}")
    if not within(args.scale, 0.0, 8.0, above=True):
        raise InputError(f"--scale must be in (0, 8], got {args.scale}")
    if args.sigma is not None and not within(args.sigma, 0.0, 1000.0, above=True):
        raise InputError(f"--sigma must be positive (pixels, at most 1000), got {args.sigma}")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be at least 1, got {args.limit}")
    if not 1 <= args.k <= 64:
        raise InputError(f"--k must be from 1 to 64 neighbours, got {args.k}")
    if not within(args.beta, 0.0, 10.0, above=True):
        raise InputError(f"--beta must be in (0, 10], got {args.beta}")
    if not (within(args.sigma_min, 0.0, 1000.0, above=True)
            and within(args.sigma_max, args.sigma_min, 1000.0)):
        raise InputError(f"--sigma-min and --sigma-max must be positive pixels with min <= max, "
                         f"got {args.sigma_min} and {args.sigma_max}")
    if not 1 <= args.val_blocks <= 100:
        raise InputError(f"--val-blocks must be from 1 to 100, got {args.val_blocks}")
    if args.fold is not None and args.val_blocks != 1:
        raise InputError("--fold and --val-blocks exclude each other: folds are their own "
                         "contiguous blocks")
    if not 0 <= args.seed < 2**32:
        raise InputError(f"--seed must be from 0 to 2**32 - 1, got {args.seed}")
    return PrepareConfig(
        format=args.format, root=args.root, out=args.out, scale=args.scale, kernel=args.kernel,
        sigma=args.sigma, k=args.k, beta=args.beta, sigma_min=args.sigma_min,
        sigma_max=args.sigma_max, val_fraction=args.val_fraction,
        val_blocks=args.val_blocks, fold=args.fold, n_train=args.n_train,
        seed=args.seed, annotations=args.annotations, label=args.label, limit=args.limit,
        splits=splits,
        exclude=tuple(s.strip() for s in str(args.exclude).split(",") if s.strip()),
    )


def _reader_options(cfg: PrepareConfig) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if cfg.n_train is not None:
        if cfg.format != "cells":
            raise InputError("--n-train applies to the cells format only")
        opts.update(n_train=cfg.n_train, seed=cfg.seed)
    for name in ("annotations", "label"):
        value = getattr(cfg, name)
        if value is not None:
            if cfg.format != "points":
                raise InputError(f"--{name} applies to the points format only")
            opts[name] = value
    return opts


def plan(cfg: PrepareConfig) -> dict[str, tuple[str, list[str]]]:
    """Decide which samples go to which split, without loading images.

    Returns:
        ``{split: (reader_split, keys)}`` for train, val and test.
    """
    from streamcount.training.datasets.splits import carve_validation

    info = formats()[cfg.format]
    reader = info.load()
    opts = _reader_options(cfg)
    train = reader.keys(cfg.root, "train", **opts)
    if not train:
        raise InputError(
            f"the {cfg.format} training split under {cfg.root} is empty: nothing to prepare"
        )
    own_val = reader.keys(cfg.root, "val", **opts) if "val" in reader.SPLITS else []
    if own_val and cfg.fold is not None:
        raise InputError(f"--fold: the {cfg.format} data under {cfg.root} has its own validation "
                         f"split{' (from --n-train)' if cfg.n_train is not None else ''}, so "
                         f"there is nothing to fold; leave --fold out")
    if own_val:
        val_src, val = "val", own_val
    else:
        train, val = carve_validation(train, cfg.val_fraction, info.kind, cfg.seed,
                                      blocks=cfg.val_blocks, fold=cfg.fold)
        val_src = "train"
    test = reader.keys(cfg.root, "test", **opts)
    out = {"train": ("train", train), "val": (val_src, val), "test": ("test", test)}
    if cfg.exclude:
        unknown = sorted(set(cfg.exclude) - {k for _, keys in out.values() for k in keys})
        if unknown:
            raise InputError(f"--exclude {', '.join(unknown)}: no such sample in the "
                             f"{cfg.format} data under {cfg.root} (names look like "
                             f"{(train + val + test)[0]})")
        out = {k: (src, [key for key in keys if key not in cfg.exclude])
               for k, (src, keys) in out.items()}
    if cfg.limit is not None:
        out = {k: (src, keys[: cfg.limit]) for k, (src, keys) in out.items()}
    return out


def density_config(cfg: PrepareConfig) -> Any:
    """The :class:`~streamcount.training.density.DensityConfig` of a run (format defaults in)."""
    from streamcount.training.density import DensityConfig

    info = formats()[cfg.format]
    sigma = cfg.sigma if cfg.sigma is not None else info.sigma * cfg.scale
    return DensityConfig(kernel=cfg.kernel or info.kernel, sigma=sigma, k=cfg.k, beta=cfg.beta,
                         sigma_min=cfg.sigma_min, sigma_max=cfg.sigma_max)


def prepare(cfg: PrepareConfig, progress: Any = None) -> list[SplitSummary]:
    """Write the split files for ``cfg``.

    Args:
        cfg: What to prepare.
        progress: Optional ``rich.progress.Progress`` to report into.

    Returns:
        One summary per requested split (empty splits have ``path=None``).

    Raises:
        InputError: Bad input (see the readers) or a kernel the data cannot support.
    """
    import numpy as np

    from streamcount.training.density import density_map, rescale_sample
    from streamcount.training.store import SplitWriter, split_info

    root = Path(cfg.root)
    opts = _reader_options(cfg)
    dcfg = density_config(cfg)
    reader = formats()[cfg.format].load()
    planned = plan(cfg)
    total = sum(len(planned[s][1]) for s in cfg.splits)
    task = progress.add_task("preparing", total=total) if progress is not None else None
    summaries = []
    for split in cfg.splits:
        src, keys = planned[split]
        summary = SplitSummary(split)
        path = Path(cfg.out) / f"{split}.h5"
        if not keys:
            logger.info("%s split is empty: %s not written", split, path.name)
            if path.exists():
                try:
                    split_info(path)
                    path.unlink()
                    logger.info("removed stale %s from an earlier run", path)
                except InputError:
                    pass
            summaries.append(summary)
            continue
        attrs = {"source": cfg.format, "root": str(root.resolve()), "split": split,
                 "scale": float(cfg.scale), "density_scale": 1.0,
                 "val_fraction": float(cfg.val_fraction), "val_blocks": int(cfg.val_blocks),
                 "seed": int(cfg.seed), "excluded": ",".join(cfg.exclude),
                 **dcfg.describe()}
        if cfg.n_train is not None:
            attrs["n_train"] = int(cfg.n_train)
        if cfg.fold is not None:
            attrs["fold"] = int(cfg.fold)
        if progress is not None:
            progress.update(task, description=f"{split:5s}")
        with SplitWriter(path, attrs) as writer:
            for sample in reader.read(root, src, keys=keys, **opts):
                sample = rescale_sample(sample, cfg.scale)
                if dcfg.kernel == "perspective" and sample.perspective is None:
                    raise InputError(
                        f"{sample.name} has no perspective map, which --kernel perspective "
                        "needs; use --kernel fixed or adaptive"
                    )
                density = density_map(sample.points, sample.image.shape[:2], dcfg,
                                      sample.perspective)
                n = sample.count
                err = abs(float(density.astype(np.float64).sum()) - n) / max(n, 1)
                summary.max_rel_error = max(summary.max_rel_error, err)
                summary.counts.append(n)
                writer.add(sample, density)
                if progress is not None:
                    progress.advance(task)
        summary.images = len(summary.counts)
        summary.total = int(sum(summary.counts))
        summary.min_count = min(summary.counts)
        summary.max_count = max(summary.counts)
        summary.path = path
        summaries.append(summary)
    return summaries


def summary_table(summaries: list[SplitSummary], title: str) -> Any:
    """A rich table of the split summaries."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("split", "images", "total count", "min", "max", "max rel err", "file"):
        table.add_column(col, justify="left" if col in ("split", "file") else "right")
    for s in summaries:
        if s.images == 0:
            table.add_row(s.split, "0", "-", "-", "-", "-", "empty, not written")
            continue
        table.add_row(s.split, str(s.images), str(s.total), str(s.min_count), str(s.max_count),
                      f"{s.max_rel_error:.2e}", str(s.path))
    return table


def run(args: argparse.Namespace) -> int:
    """Run ``streamcount prepare``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cfg = config_from_args(args)
    console = Console()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        summaries = prepare(cfg, progress)
    d = density_config(cfg).describe()
    params = ", ".join(f"{k}={v}" for k, v in d.items())
    console.print(summary_table(summaries, f"{cfg.format} -> {cfg.out} (scale {cfg.scale}, "
                                           f"{params})"))
    return 0
