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

HELP = "average the weights of checkpoints of one architecture (a model soup; train extra)"

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
    p.add_argument("--json", action="store_true", help="print the result as JSON")


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

    from streamcount.training.checkpoint import load_checkpoint, model_from_checkpoint

    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise InputError("give two or more checkpoints to average")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise InputError("the same checkpoint is given twice: an average weighs each file once")
    first_cfg = load_checkpoint(paths[0])["config"]
    averaged: AveragedModel | None = None
    sources = []
    for path in paths:
        state = load_checkpoint(path)
        cfg = state["config"]
        for key in MUST_MATCH:
            if cfg.get(key) != first_cfg.get(key):
                raise ModelError(f"{path}: {key} is {cfg.get(key)!r}, {paths[0]} has "
                                 f"{first_cfg.get(key)!r}; only checkpoints of one architecture "
                                 "and one input/output convention can be averaged")
        model, _ = model_from_checkpoint(path)
        if averaged is None:
            averaged = AveragedModel(model, use_buffers=True)
        averaged.update_parameters(model)
        sources.append({"path": str(path), "epoch": int(state.get("epoch", -1)),
                        "run": str(cfg.get("train", {}).get("out", ""))})
    assert averaged is not None
    config = {k: v for k, v in first_cfg.items() if k != "metrics"}
    config["averaged_from"] = sources
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
    state = average_checkpoints(args.checkpoints)
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
