"""Train every bundled model's recipe on a GPU within a time budget, export, summarize.

    python training/gpu/run.py --pack data/gpu-pack.h5 --out "$OUT" --budget-s 480

Unpacks the pack (:mod:`streamcount.training.gpu.pack`) into prepared splits, then for each model
in order (``crowd``; ``mall``, fine-tuned from the new crowd; ``cells``) takes its recipe with
the GPU overrides below, probes the steps per second, sets the epochs to fill the model's share
of the budget, trains, exports ``OUT/models/NAME.onnx`` (verified against torch) and keeps a slim
checkpoint. ``OUT/summary.json`` holds each model's validation figures, epochs, seconds and the
device. With ``--device cpu --budget-s 20`` the same path runs in CI on tiny data.

GPU overrides: batch 64 (the learning rate scaled by sqrt(64 / recipe batch)), 8 loader
workers, fp16 autocast (bf16 on CPUs that have it), at least the recipe's epochs when the budget
allows.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

if not __package__:  # run as a file from a checkout that pip never installed (the GPU machine)

    from checkout import mount  # training/gpu/checkout.py, this script's folder

    mount(Path(__file__).resolve().parents[2])

from streamcount.errors import InputError

logger = logging.getLogger(__name__)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
#: Order and share of the budget (of the models asked for): mall starts from the crowd model just
#: trained. ``crowd-accurate`` is not in the default set: all four would write nine files, over the
#: eight a device call brings back, so a window trains it with ``--models crowd-accurate,...``.
PLAN = (("crowd", 0.6), ("crowd-accurate", 0.6), ("mall", 0.15), ("cells", 0.25))
DEFAULT_MODELS = ("crowd", "mall", "cells")


def check_models(models: tuple[str, ...]) -> tuple[str, ...]:
    """The models asked for, in plan order; an unknown or empty list is an error.

    Examples:
        >>> check_models(("cells", "crowd"))
        ('crowd', 'cells')
    """
    known = [m for m, _ in PLAN]
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        what = f"unknown {', '.join(unknown)}" if unknown else "no model named"
        raise InputError(f"--models {','.join(models)}: {what}; choose from {', '.join(known)}")
    return tuple(m for m in known if m in models)


def unpack(pack: Path, out: Path) -> dict[str, Path]:
    """Prepared splits (``OUT/NAME/{train,val}.h5``) from the pack; each EfficientNet-Lite
    variant's weights it carries to a file that ``STREAMCOUNT_LITEN_WEIGHTS`` names.

    Returns:
        data folder name -> its path.
    """
    import cv2
    import h5py

    from streamcount.training.datasets.base import Sample
    from streamcount.training.density import DensityConfig, density_map
    from streamcount.training.models.encoders.efficientnet_lite import LITE_SCALING
    from streamcount.training.store import SplitWriter

    folders: dict[str, Path] = {}
    with h5py.File(pack, "r") as h5:
        for name in h5:
            if name in LITE_SCALING:  # ImageNet weights, written out below
                continue
            for split in h5[name]:
                g = h5[name][split]
                attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in g.attrs.items()}
                attrs["kernel"] = "fixed"
                dest = out / name / f"{split}.h5"
                dest.parent.mkdir(parents=True, exist_ok=True)
                with SplitWriter(dest, attrs) as w:
                    for key in sorted(g):
                        s = g[key]
                        flag = cv2.IMREAD_COLOR if s.attrs["channels"] == 3 else \
                            cv2.IMREAD_GRAYSCALE
                        img = cv2.imdecode(s["image"][()], flag)
                        assert img is not None  # encoded by us when the bundle was built
                        img = img[..., ::-1].copy() if img.ndim == 3 else img[..., None]
                        pts = s["points"][()]
                        cfg = DensityConfig(kernel="fixed", sigma=float(s.attrs["sigma"]))
                        den = density_map(pts, img.shape[:2], cfg)
                        w.add(Sample(name=str(s.attrs["name"]), image=img, points=pts), den)
            folders[name] = out / name
        for variant in (v for v in LITE_SCALING if v in h5):
            import torch

            g = h5[variant]
            state = {k: torch.from_numpy(np.asarray(g[k][()])).float()
                     if g[k].dtype == np.float16 else torch.from_numpy(np.asarray(g[k][()]))
                     for k in g}
            wpath = out / f"{variant}.pth"
            torch.save(state, wpath)
            # where lite_weights_path() looks first: no wheel needed on the GPU machine
            os.environ[f"STREAMCOUNT_{variant.upper()}_WEIGHTS"] = str(wpath)
    return folders


def gpu_config(name: str, folders: dict[str, Path], work: Path, device: str, batch: int,
               workers: int, overrides: dict[str, Any] | None = None) -> Any:
    """The recipe of ``name`` with its data folders from the pack and the GPU overrides."""
    from streamcount.training.config import TrainConfig

    cfg = TrainConfig.from_toml(RECIPES / f"{name}.toml")
    dirs = []
    for d in cfg.data_dirs():
        if d.name not in folders:
            raise InputError(f"the pack has no {d.name} (needed by the {name} recipe)")
        dirs.append(str(folders[d.name]))
    lr = cfg.lr * math.sqrt(batch / cfg.batch_size)
    init = str(work / "runs" / "crowd" / "best.pt") if cfg.init else ""
    cfg = replace(cfg, data=",".join(dirs), out=str(work / "runs" / name), device=device,
                  batch_size=batch, lr=lr, workers=workers, threads=0, precision="auto",
                  samples_per_epoch=max(cfg.samples_per_epoch, batch), init=init)
    return replace(cfg, **(overrides or {}))


def probe_seconds_per_epoch(cfg: Any, steps: int = 6) -> float:
    """Time a few training steps of ``cfg`` and scale to one epoch."""
    from streamcount.training.trainer import Trainer

    n = cfg.batch_size * steps
    probe = replace(cfg, epochs=1, samples_per_epoch=n, out=cfg.out + "-probe",
                    val_every=10**6)
    t = Trainer(probe, progress=False)
    t._setup()
    t0 = time.perf_counter()
    t._train_epoch(0, _NoProgress(), None)
    per_sample = (time.perf_counter() - t0) / n
    return per_sample * cfg.samples_per_epoch


class _NoProgress:
    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


def run(pack: Path, out: Path, budget_s: float, device: str = "auto", batch: int = 64,
        workers: int = 8, models: tuple[str, ...] = DEFAULT_MODELS,
        overrides: dict[str, Any] | None = None, max_epochs: int | None = None,
        work: Path | None = None) -> dict:
    """Unpack, train, export; returns (and writes) the summary.

    Only ``OUT/models/*`` and ``OUT/summary.json`` are written under ``out`` (what a device call
    brings back is a handful of files); the unpacked splits and the run folders go to ``work``
    (default: a new temporary folder).
    """
    from streamcount.exports.onnx import export_checkpoint
    from streamcount.training.checkpoint import slim_copy
    from streamcount.training.trainer import Trainer, pick_device

    models = check_models(models)
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if work is None:
        work = Path(tempfile.mkdtemp(prefix="streamcount-gpu-"))
    folders = unpack(pack, work / "data")
    dev = pick_device(device)
    summary: dict[str, Any] = {"device": _device_name(dev), "budget_s": budget_s, "models": {}}
    unpack_s = time.perf_counter() - t_start
    left = budget_s - unpack_s
    shares = {m: s for m, s in PLAN if m in models}
    total_share = sum(shares.values())
    # every recipe's data checked against the pack before the first model trains
    configs = {m: gpu_config(m, folders, work, dev, batch, workers, overrides) for m in models}
    for name in models:
        t0 = time.perf_counter()
        budget = left * shares[name] / total_share
        cfg = configs[name]
        if cfg.init and not Path(cfg.init).is_file():
            cfg = replace(cfg, init="")  # crowd not trained in this run: mall from ImageNet
        per_epoch = probe_seconds_per_epoch(cfg)
        epochs = max(1, int(0.8 * (budget - (time.perf_counter() - t0)) / max(per_epoch, 1e-3)))
        if max_epochs is not None:
            epochs = min(epochs, max_epochs)
        cfg = replace(cfg, epochs=epochs, val_every=max(1, epochs // 6))
        logger.info("%s: %d epochs of %d samples (%.1f s each, budget %.0f s)", name, epochs,
                    cfg.samples_per_epoch, per_epoch, budget)
        result = Trainer(cfg, progress=False).fit()
        run_dir = Path(cfg.out)
        model_path = out / "models" / f"{name}.onnx"
        model_path.parent.mkdir(parents=True, exist_ok=True)
        export_checkpoint(run_dir / "best.pt", model_path, name=name, do_verify=True)
        slim_copy(run_dir / "best.pt", out / "models" / f"{name}.pt")
        summary["models"][name] = {
            "epochs": epochs, "samples_per_epoch": cfg.samples_per_epoch,
            "batch": cfg.batch_size, "lr": cfg.lr, "seconds": round(time.perf_counter() - t0, 1),
            "best_epoch": result.best_epoch, "best_val": result.best_val,
            "timing": result.timing,
            "onnx": str(model_path),
        }  # fmt: skip
        left = budget_s - (time.perf_counter() - t_start)
        total_share -= shares[name]
    summary["seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _device_name(dev: str) -> str:
    if dev == "cuda":
        import torch

        return f"cuda: {torch.cuda.get_device_name(0)}"
    return dev


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, default=Path("data/gpu-pack.h5"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget-s", type=float, default=480.0, help="wall seconds for all (480)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help=f"comma-separated, of {', '.join(m for m, _ in PLAN)} "
                         f"(default {','.join(DEFAULT_MODELS)})")
    ap.add_argument("--work", type=Path,
                    help="folder for the unpacked data and the runs (default: a temporary one)")
    ap.add_argument("--samples-per-epoch", type=int, help="override (tiny CPU runs)")
    ap.add_argument("--patch", type=int, help="override (tiny CPU runs)")
    args = ap.parse_args(argv)
    over = {k: v for k, v in (("samples_per_epoch", args.samples_per_epoch),
                              ("patch", args.patch)) if v is not None}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.pack.is_file():
        raise SystemExit(f"error: pack {args.pack} not found: make it with "
                         "python training/gpu/pack.py (see docs/gpu-runbook.md)")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    try:  # a bad --models stops before unpacking; a pack short of a folder, before training
        s = run(args.pack, args.out, args.budget_s, args.device, args.batch, args.workers, models,
                over, work=args.work)
    except InputError as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(s, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
