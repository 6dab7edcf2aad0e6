"""Weight averaging ("model soup"): one checkpoint whose weights are the mean of several.

Runs of one recipe that start from the same pretrained encoder stay in one basin of the loss,
so the mean of their weights is a working network that often counts better than any of them
(Wortsman et al., "Model soups", ICML 2022). ``streamcount average`` builds it with
``torch.optim.swa_utils.AveragedModel`` (the same running mean SWA uses, parameters and
buffers) after checking that every checkpoint has the same architecture and the same input and
output conventions. The result is a normal checkpoint: evaluate, calibrate and export it as any
``best.pt``; it has no optimizer state, so it cannot be resumed, only used as ``--init``. With
``--data`` it is validated and the figures stored, so ``export`` puts them in the metadata.

Measured (session 12, crowd card): the `crowd` recipe's 32-epoch run and its 64-epoch run
(best epoch 48) average to a model that counts ShanghaiTech B and the Mall camera better than
either; two from-scratch U-Net-16 runs of the `mall` recipe do not average at all, although
they started from the same random weights (seed 0): MAE 19.9, counting almost nothing. Average
runs that start from one pretrained network.

Runs that do not share a basin (from scratch, other seeds) can still be combined by their
predictions: ``--outputs`` keeps every network in one ``ensemble`` checkpoint (see
``training/models/ensemble.py``) whose density is the mean of theirs, at N times the compute.

Example:
    >>> runs = [Path("runs/crowd/best.pt"), Path("runs/crowd-64/best.pt")]
    >>> state = average_checkpoints(runs)  # doctest: +SKIP
    >>> save_checkpoint(state, Path("runs/crowd-avg/best.pt"))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamcount.errors import InputError, ModelError

HELP = ("average checkpoints of one architecture: their weights (a model soup) or, with "
        "--outputs, their predictions (an ensemble); train extra")

logger = logging.getLogger(__name__)

#: Config entries that must agree: the network and how its input and output are read.
MUST_MATCH = ("model", "color_order", "mean", "std", "density_scale", "count_gain",
              "size_multiple", "input_scale")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount average``."""
    p.add_argument("checkpoints", nargs="+", type=Path, metavar="CKPT",
                   help="two or more best.pt/last.pt of the same architecture")
    p.add_argument("--out", type=Path, required=True, help="where the averaged checkpoint goes")
    p.add_argument("--data", type=Path, action="append", default=[], metavar="DIR",
                   help="folder made by `streamcount prepare` (repeatable): validate the average "
                        "on its val split and store the figures, which `export` writes into the "
                        "model's metadata (as `train` does for its best epoch)")
    p.add_argument("--outputs", action="store_true",
                   help="average the networks' density outputs instead of their weights: an "
                        "ensemble that keeps every network (N times the compute), for runs that "
                        "do not share a basin, e.g. from-scratch runs with different seeds")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _checked(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The checkpoints of ``paths``, after checking they can be combined."""
    from streamcount.training.checkpoint import load_checkpoint

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise InputError("give two or more checkpoints to average")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise InputError("the same checkpoint is given twice: an average weighs each file once")
    states = [load_checkpoint(p) for p in paths]
    first_cfg = states[0]["config"]
    for path, state in zip(paths, states, strict=True):
        cfg = state["config"]
        for key in MUST_MATCH:
            if cfg.get(key) != first_cfg.get(key):
                raise ModelError(f"{path}: {key} is {cfg.get(key)!r}, {paths[0]} has "
                                 f"{first_cfg.get(key)!r}; only checkpoints of one architecture "
                                 "and one input/output convention can be averaged")
    return states


def _sources(paths: Sequence[Path], states: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"path": str(p), "epoch": int(s.get("epoch", -1)),
             "run": str(s["config"].get("train", {}).get("out", ""))}
            for p, s in zip(paths, states, strict=True)]


def ensemble_checkpoints(paths: Sequence[Path]) -> dict[str, Any]:
    """One checkpoint of the ``ensemble`` architecture: every network of ``paths`` kept, their
    density outputs averaged (so their counts are).

    Args:
        paths: Two or more checkpoints of one architecture and input/output convention.

    Returns:
        A checkpoint dict whose ``model`` config is ``{"architecture": "ensemble", "member":
        ..., "members": N}`` and whose weights are each member's under ``nets.I.``; the rest of
        the config is the first checkpoint's, without its ``metrics``, plus ``averaged_from``.

    Raises:
        InputError: fewer than two checkpoints, or the same file twice.
        ModelError: the checkpoints disagree on the architecture or a convention, or are
            ensembles themselves.
    """
    states = _checked(paths)
    first_cfg = states[0]["config"]
    member = dict(first_cfg["model"])
    if member.get("architecture") == "ensemble":
        raise ModelError(f"{paths[0]} is an ensemble already: list its members' checkpoints")
    weights = {f"nets.{i}.{k}": v for i, s in enumerate(states) for k, v in s["model"].items()}
    config = {k: v for k, v in first_cfg.items() if k != "metrics"}
    config["model"] = {"architecture": "ensemble", "member": member, "members": len(states),
                       "in_channels": member["in_channels"]}
    config["averaged_from"] = _sources(paths, states)
    return {"model": weights, "config": config, "epoch": -1}


def average_checkpoints(paths: Sequence[Path]) -> dict[str, Any]:
    """The uniform mean of the weights (and buffers) of ``paths``.

    Args:
        paths: Two or more checkpoints written by ``streamcount train`` (or by this function).

    Returns:
        A checkpoint dict (``model``, ``config``, ``epoch`` -1): the first checkpoint's config
        without its validation ``metrics`` (they were measured on other weights), plus
        ``averaged_from``: each ingredient's path, epoch and run folder.

    Raises:
        InputError: fewer than two checkpoints, or the same file twice.
        ModelError: a file is not a checkpoint, or the checkpoints disagree on the architecture
            or on an input/output convention (named in the message).
    """
    from torch.optim.swa_utils import AveragedModel

    from streamcount.training.checkpoint import model_from_checkpoint

    states = _checked(paths)
    averaged: AveragedModel | None = None
    for path in paths:
        model, _ = model_from_checkpoint(Path(path))
        if averaged is None:
            averaged = AveragedModel(model, use_buffers=True)
        averaged.update_parameters(model)
    assert averaged is not None
    config = {k: v for k, v in states[0]["config"].items() if k != "metrics"}
    config["averaged_from"] = _sources(paths, states)
    weights = {k: v.detach().clone() for k, v in averaged.module.state_dict().items()}
    return {"model": weights, "config": config, "epoch": -1}


def validation_metrics(checkpoint: Path, folders: Sequence[Path],
                       progress: bool = True) -> dict[str, float]:
    """The checkpoint's figures on each folder's ``val.h5``, in the form ``train`` stores.

    ``mae``/``rmse``/``bias`` are the first folder's; with several folders each one's figures
    are added as ``mae@NAME`` (``rmse@``, ``bias@``) and ``score`` is the mean MAE relative to
    the mean count, as :meth:`Trainer.validate` computes it.
    """
    import numpy as np

    from streamcount.training.evaluate import evaluate_checkpoint

    out: dict[str, float] = {}
    rel = []
    for i, folder in enumerate(folders):
        split = Path(folder) / "val.h5"
        if not split.is_file():
            raise InputError(f"--data {folder}: no val.h5 there; give a folder made by "
                             "`streamcount prepare`")
        ev = evaluate_checkpoint(checkpoint, split, game_levels=0, progress=progress)
        m = {k: float(v) for k, v in ev.metrics.items() if k != "game0"}
        if i == 0:
            out.update(m)
        if len(folders) > 1:
            name = Path(folder).name
            out.update({f"mae@{name}": m["mae"], f"rmse@{name}": m["rmse"],
                        f"bias@{name}": m["bias"]})
        rel.append(m["mae"] / max(float(np.mean(ev.true)), 1.0))
    out["score"] = out["mae"] if len(folders) == 1 else float(np.mean(rel))
    return out


def run(args: argparse.Namespace) -> int:
    """``streamcount average``: write the averaged checkpoint."""
    from streamcount.errors import require

    require("torch", "train")
    from streamcount.training.checkpoint import save_checkpoint

    for folder in args.data:  # before the averaging: a typo costs no time
        if not (folder / "val.h5").is_file():
            raise InputError(f"--data {folder}: no val.h5 there; give a folder made by "
                             "`streamcount prepare`")
    combine = ensemble_checkpoints if args.outputs else average_checkpoints
    state = combine(args.checkpoints)
    save_checkpoint(state, args.out)
    result: dict[str, Any] = {"out": str(args.out),
                              "averaged": [s["path"] for s in state["config"]["averaged_from"]]}
    if args.data:
        metrics = validation_metrics(args.out, args.data, progress=not args.json)
        state["config"]["metrics"] = metrics
        save_checkpoint(state, args.out)
        result["metrics"] = metrics
        logger.info("validation: MAE %.2f, RMSE %.2f, bias %+.2f on %s", metrics["mae"],
                    metrics["rmse"], metrics["bias"], args.data[0])
    if args.json:
        print(json.dumps(result))
    else:
        logger.info("averaged %d checkpoints into %s; evaluate it with `streamcount evaluate "
                    "%s --data DIR`", len(result["averaged"]), args.out, args.out)
    return 0
