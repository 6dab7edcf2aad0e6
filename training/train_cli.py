"""``streamcount train``: train a density-counting model on prepared HDF5 data."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import fields, replace
from pathlib import Path

from streamcount.errors import InputError, require

HELP = "train a U-Net or FCRN-A on data made by `streamcount prepare` (needs the train extra)"
logger = logging.getLogger(__name__)

# CLI flag -> TrainConfig attribute, for the plain (non-augmentation) settings.
_FLAGS = {
    "data": str, "data_weights": str, "out": str, "arch": str, "filters": int, "growth": int,
    "n_convs": int, "decoder_channels": int, "decoder_norm": str, "encoder_depth": int,
    "encoder_lr": float,
    "freeze_stages": int,
    "init": str,
    "epochs": int, "samples_per_epoch": int, "batch_size": int, "patch": int, "lr": float,
    "weight_decay": float, "optimizer": str, "schedule": str, "density_scale": float,
    "count_loss": float, "loss_count_norm": float, "ema_decay": float, "seed": int,
    "device": str, "precision": str,
    "workers": int, "threads": int, "val_every": int, "name": str,
}  # fmt: skip
_AUG = {"hflip": bool, "vflip": bool, "scale_jitter": float, "brightness": float,
        "contrast": float, "gray_prob": float}  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags; every one overrides the same key of ``--recipe``."""
    p.add_argument("--recipe", type=Path, help="TOML recipe with the settings (flags override)")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt exactly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    for name, typ in _FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    p.add_argument("--pretrained", dest="pretrained", action=argparse.BooleanOptionalAction,
                   default=None, help="start a pretrained-encoder architecture from ImageNet")
    p.add_argument("--frozen-bn", dest="frozen_bn", action=argparse.BooleanOptionalAction,
                   default=None, help="keep the encoder's batch-norm statistics fixed")
    for name, typ in _AUG.items():
        flag = "--" + name.replace("_", "-")
        if typ is bool:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, dest=name, type=typ, default=None)


def config_from_args(args: argparse.Namespace):
    """Recipe (if any), then flags."""
    from streamcount.training.config import TrainConfig

    cfg = TrainConfig.from_toml(args.recipe) if args.recipe else TrainConfig()
    over = {k: getattr(args, k) for k in [*_FLAGS, "pretrained", "frozen_bn"]
            if getattr(args, k) is not None}
    aug_over = {k: getattr(args, k) for k in _AUG if getattr(args, k) is not None}
    cfg = replace(cfg, **over, aug=replace(cfg.aug, **aug_over))
    if not cfg.data:
        raise InputError("no training data: pass --data DIR (made by `streamcount prepare`)")
    valid = {f.name for f in fields(TrainConfig)}
    assert set(over) <= valid
    return cfg


def run(args: argparse.Namespace) -> int:
    """Train and print the best validation metrics."""
    require("torch", "train")
    require("h5py", "train")
    from rich.console import Console

    from streamcount.training.trainer import Trainer

    cfg = config_from_args(args)
    from streamcount.training.models import available

    if cfg.arch not in available():
        raise InputError(f"unknown architecture '{cfg.arch}' (--arch): choose one of "
                         f"{', '.join(available())}")
    for d in cfg.data_dirs():
        if not (d / "train.h5").is_file():
            raise InputError(f"{d} has no train.h5: make it with "
                             f"`streamcount prepare FORMAT --out {d}`")
    cfg.weights()  # a bad --data-weights fails here, before any work
    try:
        result = Trainer(cfg, resume=args.resume, progress=not args.no_progress).fit()
    except KeyboardInterrupt:
        last = Path(cfg.out) / "last.pt"
        if last.exists():
            logger.warning("interrupted: %s holds the last finished epoch; continue with the same "
                           "command plus --resume", last)
        raise
    summary = {
        "run_dir": str(result.run_dir),
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "last_val": result.last_val,
        "baseline_mae": result.baseline_mae,
        "seconds": round(result.seconds, 1),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        c = Console()
        c.print(f"checkpoints in [bold]{result.run_dir}[/] (best.pt, last.pt), log.csv")
        if result.best_val:
            v = result.best_val
            c.print(
                f"best epoch {result.best_epoch + 1}: val MAE {v['mae']:.3f} RMSE {v['rmse']:.3f} "
                f"bias {v['bias']:+.3f}  (predict-the-mean baseline MAE {result.baseline_mae:.3f})"
            )
    return 0
