"""``streamcount train``: train a density-counting model on prepared HDF5 data."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import fields, replace
from pathlib import Path

from streamcount.errors import InputError, require

RECIPES = Path(__file__).resolve().parent / "recipes"  # the bundled recipes (package data)
HELP = "train a density-counting model on data made by `streamcount prepare` (train extra)"
logger = logging.getLogger(__name__)

_TYPES = {"str": str, "int": int, "float": float, "bool": bool}


def _settings(cls: type) -> dict[str, type]:
    """Plain settings of a config dataclass and their types (its fields are the one place
    where a setting is declared; a flag per field follows)."""
    return {f.name: _TYPES[str(f.type)] for f in fields(cls) if str(f.type) in _TYPES}


def _attribute_help(cls: type) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Attributes:`` section, as one line each."""
    helps: dict[str, str] = {}
    current = ""
    in_section = False
    for line in (cls.__doc__ or "").splitlines():
        stripped = line.strip()
        if stripped == "Attributes:":
            in_section = True
            continue
        if not in_section or not stripped:
            continue
        name, sep, text = stripped.partition(": ")
        if sep and name.isidentifier() and line.startswith(" " * 8) and line[8] != " ":
            current = name
            helps[name] = text
        elif current:
            helps[current] += " " + stripped
    return {k: v.replace("%", "%%") for k, v in helps.items()}


def parse_model_arg(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--model-arg``: VALUE read as TOML where it parses, else as text.

    Example:
        >>> parse_model_arg("decoder_channels=128")
        ('decoder_channels', 128)
        >>> parse_model_arg("norm=none")
        ('norm', 'none')
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import tomllib

    try:  # a TOML value: 3, 0.5, true, "bn"; anything else is a string
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


def bundled_recipes() -> list[str]:
    """Names of the recipes that ship with the package (``finetune``, ``crowd``...).

    Example:
        >>> "finetune" in bundled_recipes()
        True
    """
    return sorted(p.stem for p in RECIPES.glob("*.toml"))


def resolve_recipe(spec: str | Path) -> Path:
    """A recipe file, or the bundled recipe of that name.

    Raises:
        InputError: neither exists (one line naming the bundled ones).

    Example:
        >>> resolve_recipe("finetune").name
        'finetune.toml'
    """
    path = Path(spec)
    if path.is_file():
        return path
    bundled = RECIPES / f"{spec}.toml"
    if path.suffix == "" and bundled.is_file():
        return bundled
    raise InputError(f"recipe not found: {spec}; give a TOML file or one of "
                     f"{', '.join(bundled_recipes())}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags; every one overrides the same key of ``--recipe``."""
    p.add_argument("--recipe", help="TOML recipe with the settings (flags override): a file, or "
                   f"the name of a bundled one ({', '.join(bundled_recipes())})")
    p.add_argument("--resume", action="store_true", help="continue OUT/last.pt exactly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    from streamcount.training.config import TrainConfig
    from streamcount.training.data import AugmentConfig

    helps = {**_attribute_help(TrainConfig), **_attribute_help(AugmentConfig)}
    for name, typ in [*_settings(TrainConfig).items(), *_settings(AugmentConfig).items()]:
        flag = "--" + name.replace("_", "-")
        if typ is bool:
            p.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=helps.get(name))
        else:
            p.add_argument(flag, dest=name, type=typ, default=None, help=helps.get(name))
    p.add_argument("--model-arg", dest="model_args", type=parse_model_arg, action="append",
                   metavar="KEY=VALUE", help="an architecture's own constructor argument "
                   "(repeatable; recipe: [model_args])")


def config_from_args(args: argparse.Namespace):
    """Recipe (if any), then flags."""
    from streamcount.training.config import TrainConfig
    from streamcount.training.data import AugmentConfig

    cfg = TrainConfig.from_toml(resolve_recipe(args.recipe)) if args.recipe else TrainConfig()
    over = {k: getattr(args, k) for k in _settings(TrainConfig)
            if getattr(args, k, None) is not None}
    aug_over = {k: getattr(args, k) for k in _settings(AugmentConfig)
                if getattr(args, k, None) is not None}
    if getattr(args, "model_args", None):
        over["model_args"] = {**cfg.model_args, **dict(args.model_args)}
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
    from streamcount.training.models import architecture, available

    trainable = [a for a in available() if getattr(architecture(a), "trainable", True)]
    if cfg.arch not in available():
        raise InputError(f"unknown architecture '{cfg.arch}' (--arch): choose one of "
                         f"{', '.join(trainable)}")
    if cfg.arch not in trainable:
        raise InputError(f"architecture '{cfg.arch}' (--arch) is built from trained checkpoints "
                         f"by `streamcount average --outputs`, not trained: choose one of "
                         f"{', '.join(trainable)}")
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
