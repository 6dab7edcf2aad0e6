"""The training loop: seeded, resumable, EMA weights, best-on-validation checkpoints."""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamcount import __version__
from streamcount.errors import InputError
from streamcount.training import distributed
from streamcount.training.checkpoint import load_checkpoint, save_checkpoint
from streamcount.training.config import TrainConfig
from streamcount.training.data import PatchDataset, collate_points, normalize_image
from streamcount.training.losses import bayesian_loss
from streamcount.training.metrics import count_metrics
from streamcount.training.splits_io import SplitArrays, load_split

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run reports."""

    best_epoch: int
    best_val: dict[str, float]
    last_val: dict[str, float]
    baseline_mae: float
    seconds: float
    run_dir: Path
    #: Where the run's time went, in seconds: ``loader_start`` (waiting for each epoch's first
    #: batch), ``data_wait`` (waiting for the later batches), ``train`` (the whole training
    #: epochs, both waits included), ``val``, ``save`` (checkpoints).
    timing: dict[str, float] = field(default_factory=dict)


def pick_device(name: str) -> str:
    """Resolve ``auto`` to ``cuda``, ``mps`` or ``cpu``."""
    import torch

    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but torch sees no CUDA device")
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def ema_with_warmup(decay: float) -> Any:
    """EMA update whose decay ramps up as ``(1 + n) / (10 + n)`` (so short runs still move)."""
    import torch

    def update(ema_params: list[Any], params: list[Any], num_averaged: Any) -> None:
        n = int(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        floats = [(e, p) for e, p in zip(ema_params, params, strict=True) if e.is_floating_point()]
        if floats:
            torch._foreach_lerp_([e for e, _ in floats], [p for _, p in floats], 1.0 - d)
        for e, p in zip(ema_params, params, strict=True):
            if not e.is_floating_point():
                e.copy_(p)

    return update


def block_sums(x: Any, s: int) -> Any:
    """Sums over ``s x s`` blocks of an ``N x C x H x W`` map (zero-padded to a multiple of s).

    A model whose density is native at stride ``s`` is compared at that stride: its block sums
    are exactly its native map, and the target's are the counts in each block.
    """
    if s <= 1:
        return x
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    x = F.pad(x, (0, (-w) % s, 0, (-h) % s))
    return F.avg_pool2d(x, s) * float(s * s)


def patch_loss(pred: Any, y: Any, cfg: TrainConfig) -> Any:
    """The training loss of a batch of block sums (``N x 1 x h x w``, scaled targets).

    Pixel MSE, plus ``cfg.count_loss`` times the squared count error per patch; with
    ``cfg.loss_count_norm`` each patch's terms are divided by ``1 + count / loss_count_norm``.

    Example:
        >>> import torch
        >>> cfg = TrainConfig(density_scale=1.0, loss_count_norm=10.0)
        >>> y = torch.full((2, 1, 2, 2), 5.0)  # 20 people per patch: weight 1 / 3
        >>> float(patch_loss(torch.zeros_like(y), y, cfg))
        8.333333015441895
    """
    per_patch = ((pred - y) ** 2).mean((1, 2, 3))
    true = y.sum((1, 2, 3)) / cfg.density_scale
    if cfg.count_loss:
        err = (pred.sum((1, 2, 3)) / cfg.density_scale) - true
        per_patch = per_patch + cfg.count_loss * err * err
    if cfg.loss_count_norm > 0:
        per_patch = per_patch / (1.0 + true / cfg.loss_count_norm)
    return per_patch.mean()


def _params(fn: Any) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters)


def predict_density(model: Any, x: Any) -> Any:
    """Run ``model`` on a normalized batch in fp32, as the exported model runs; returns float32."""
    import torch

    with torch.no_grad():
        return model(x).float()


class Trainer:
    """Trains one model from a :class:`TrainConfig`.

    Example:
        >>> cfg = TrainConfig(data="data/cells", out="runs/cells", epochs=5)  # doctest: +SKIP
        >>> Trainer(cfg).fit()  # doctest: +SKIP
    """

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool = True) -> None:
        self.cfg = cfg
        self.resume = resume
        self.progress = progress
        self.run_dir = Path(cfg.out)
        self.timing: defaultdict[str, float] = defaultdict(float)

    # -- set-up ---------------------------------------------------------------------------
    def _setup(self) -> None:
        import torch

        from streamcount.training.models import architecture, build_model

        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.dist = distributed.from_env()
        self.device = distributed.init(self.dist, pick_device(cfg.device), cfg.batch_size)
        self._load_data()
        in_ch = self.train.images[0].shape[2]
        arch = architecture(cfg.arch)
        norm = getattr(arch, "input_norm", None)
        if norm is not None:  # a pretrained encoder dictates its input normalization
            self.mean = np.asarray(norm[0][:in_ch], np.float32)
            self.std = np.asarray(norm[1][:in_ch], np.float32)
        else:
            pix = np.concatenate([im.reshape(-1, in_ch)[::97] for im in self.train.images])
            self.mean = (pix.mean(0) / 255.0).astype(np.float32)
            self.std = np.maximum(pix.std(0) / 255.0, 1e-3).astype(np.float32)
        n = cfg.samples_per_epoch or len(self.train.images)
        self.dataset = PatchDataset(
            self.train.images, self.train.densities, cfg.patch, n, cfg.aug,
            self.mean, self.std, cfg.density_scale, self.sample_weights,
            self.train.points if cfg.loss == "bayes" or cfg.aug.occlude_prob > 0 else None,
            return_points=cfg.loss == "bayes", spread=cfg.count_weighting > 0,
        )  # fmt: skip
        extra = {"pretrained": True} if cfg.pretrained and "pretrained" in _params(arch) else {}
        self.model = build_model(cfg.arch, in_channels=in_ch, **cfg.model_kwargs(), **extra)
        if cfg.init and not self.resume:
            from streamcount.training.checkpoint import resolve_init

            self._load_init(resolve_init(cfg.init))
        self._freeze(cfg.freeze_stages)
        if self.device == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.to(self.device)
        self.net = distributed.wrap(self.model, self.dist, self.device)  # what training runs
        self.ema = None
        if cfg.ema_decay > 0:
            from torch.optim.swa_utils import AveragedModel

            self.ema = AveragedModel(
                self.model, multi_avg_fn=ema_with_warmup(cfg.ema_decay), use_buffers=True
            )
        params = self._param_groups()
        lrs = [g["lr"] for g in params]
        self.opt: torch.optim.Optimizer
        if cfg.optimizer == "adamw":
            self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD(
                params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True
            )
        else:
            raise InputError(f"unknown optimizer '{cfg.optimizer}': use adamw or sgd")
        self.steps_per_epoch = math.ceil(n / cfg.batch_size)
        total = self.steps_per_epoch * cfg.epochs
        self.sched: torch.optim.lr_scheduler.LRScheduler
        if cfg.schedule == "onecycle":
            self.sched = torch.optim.lr_scheduler.OneCycleLR(
                self.opt, max_lr=lrs, total_steps=total, pct_start=0.15
            )
        elif cfg.schedule == "cosine":
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=total)
        elif cfg.schedule == "constant":
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda _: 1.0)
        else:
            raise InputError(f"unknown schedule '{cfg.schedule}': use onecycle, cosine, constant")
        self.autocast, self.scaler = self._precision()
        stride = int(getattr(self.model, "output_stride", 1))
        if cfg.loss_block and cfg.loss_block % stride:
            raise InputError(f"loss_block = {cfg.loss_block} is not a multiple of {cfg.arch}'s "
                             f"output stride {stride}: use a multiple, or 0 for the stride")
        self.loss_stride = cfg.loss_block or stride  # block side the loss compares at
        self.start_epoch = 0
        self.clipped = 0  # steps whose gradient norm was clipped (cfg.grad_clip)
        self.best_mae = float("inf")
        self.best_epoch = -1
        self.best_val: dict[str, float] = {}
        if self.resume:
            self._load_resume()

    def _load_data(self) -> None:
        """Training split(s) merged, each folder's validation split kept apart."""
        cfg = self.cfg
        dirs = cfg.data_dirs()
        if not dirs:
            raise InputError("no training data: pass --data DIR (made by `streamcount prepare`)")
        shares = cfg.weights()
        self.train = SplitArrays()
        self.vals: list[tuple[str, SplitArrays]] = []
        weights: list[float] = []
        for d, share in zip(dirs, shares, strict=True):
            part = load_split(d / "train.h5")
            if not part.images:
                raise InputError(f"{d / 'train.h5'} has no images to train on")
            if self.train.images:
                scales = (float(self.train.attrs.get("scale", 1.0)),
                          float(part.attrs.get("scale", 1.0)))
                if abs(scales[0] - scales[1]) > 1e-6:
                    raise InputError(f"{d} was prepared at scale {scales[1]}, {dirs[0]} at "
                                     f"{scales[0]}: prepare all data folders at one --scale")
                if part.images[0].shape[2] != self.train.images[0].shape[2]:
                    raise InputError(f"{d} and {dirs[0]} differ in colour channels")
            else:
                self.train.attrs = dict(part.attrs)
            self.train.images += part.images
            self.train.densities += part.densities
            self.train.counts += part.counts
            self.train.points += part.points
            self.train.names += part.names
            if cfg.count_weighting > 0:
                by_count = (np.asarray(part.counts, np.float64) + 1.0) ** cfg.count_weighting
                weights += list(share * by_count / by_count.sum())
            else:
                weights += [share / len(part.images)] * len(part.images)
            val_path = d / "val.h5"
            if val_path.exists():
                val = load_split(val_path)
                if val.images:
                    self.vals.append((d.name, val))
        if len(dirs) > 1:
            self.train.attrs["source"] = ",".join(d.name for d in dirs)
        weighted = len(dirs) > 1 or cfg.count_weighting > 0
        self.sample_weights = np.asarray(weights) if weighted else None
        self.val: SplitArrays | None = self.vals[0][1] if self.vals else None

    def _load_init(self, path: Path) -> None:
        """Fine-tuning: take the (EMA) weights of an earlier run of the same architecture."""
        from streamcount.errors import ModelError

        state = load_checkpoint(path)
        arch = dict(state["config"]["model"])
        if arch.pop("architecture") != self.cfg.arch:
            raise InputError(f"--init {path} is a {state['config']['model']['architecture']} "
                             f"checkpoint, but --arch is {self.cfg.arch}: use the same one")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ModelError(f"--init {path}: its weights do not fit this model "
                             f"({str(exc).splitlines()[0][:120]}); train with its settings "
                             f"({arch})") from exc
        logger.info("initialised from %s", path)

    def _freeze(self, n_stages: int) -> None:
        """Fix the first ``n_stages`` encoder stages (their weights get no gradient)."""
        if n_stages <= 0:
            return
        encoder = getattr(self.model, "encoder", None)
        if encoder is None:
            raise InputError(f"--freeze-stages needs a pretrained-encoder architecture, "
                             f"not {self.cfg.arch}")
        for stage in encoder.stages()[:n_stages]:
            for p in stage.parameters():
                p.requires_grad_(False)

    def _param_groups(self) -> list[dict[str, Any]]:
        """Encoder at ``lr * encoder_lr``, the rest at ``lr``."""
        cfg = self.cfg
        encoder = getattr(self.model, "encoder", None)
        if encoder is None:
            return [{"params": [p for p in self.model.parameters() if p.requires_grad],
                     "lr": cfg.lr}]
        enc = {id(p) for p in encoder.parameters()}
        groups = [
            {"params": [p for p in encoder.parameters() if p.requires_grad],
             "lr": cfg.lr * cfg.encoder_lr},
            {"params": [p for p in self.model.parameters()
                        if id(p) not in enc and p.requires_grad], "lr": cfg.lr},
        ]
        return [g for g in groups if g["params"]]

    def _precision(self) -> tuple[Any, Any]:
        import contextlib

        import torch

        p = self.cfg.precision
        if p == "fp32":
            return contextlib.nullcontext, None
        if self.device == "cuda":
            if torch.cuda.is_bf16_supported():  # Ampere and later: bf16, no loss scaling
                return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
            scaler = torch.amp.GradScaler("cuda")
            return (lambda: torch.autocast("cuda", dtype=torch.float16)), scaler
        if self.device == "cpu" and (p == "bf16" or (p == "auto" and cpu_supports_bf16())):
            return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None
        return contextlib.nullcontext, None

    # -- checkpoints ----------------------------------------------------------------------
    def _eval_model(self) -> Any:
        return self.ema.module if self.ema is not None else self.model

    def _config_dict(self, metrics: dict[str, float]) -> dict[str, Any]:
        attrs = self.train.attrs
        in_ch = int(self.train.images[0].shape[2])
        return {
            "model": {"architecture": self.cfg.arch, "in_channels": in_ch,
                      **self.cfg.model_kwargs()},
            "name": self.cfg.name,
            "color_order": "RGB" if in_ch == 3 else "GRAY",
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "density_scale": float(self.cfg.density_scale),
            "size_multiple": int(getattr(self.model, "size_multiple", 8)),
            "input_scale": float(attrs.get("scale", 1.0)),
            "dataset": {k: (v if isinstance(v, (int, float, str)) else str(v))
                        for k, v in attrs.items()},
            "metrics": metrics,
            "train": self.cfg.to_dict(),
            "version": __version__,
        }  # fmt: skip

    def _state(self, epoch: int, metrics: dict[str, float], full: bool) -> dict[str, Any]:
        state: dict[str, Any] = {
            "model": self._eval_model().state_dict(),
            "config": self._config_dict(metrics),
            "epoch": epoch,
        }
        if full:
            state.update(
                raw_model=self.model.state_dict(),
                optimizer=self.opt.state_dict(),
                scheduler=self.sched.state_dict(),
                ema=self.ema.state_dict() if self.ema is not None else {},
                best_mae=self.best_mae,
                best_epoch=self.best_epoch,
                best_val=self.best_val,
            )
            if self.scaler is not None:
                state["scaler"] = self.scaler.state_dict()
        return state

    def _load_resume(self) -> None:
        path = self.run_dir / "last.pt"
        if not path.exists():
            raise InputError(f"--resume: no {path} to resume from; start without --resume")
        state = load_checkpoint(path)
        saved, now = state["config"]["train"], self.cfg.to_dict()
        default = TrainConfig().to_dict()
        # settings added to TrainConfig after the run started count as unchanged at their default
        changed = sorted(k for k in set(saved) | set(now)
                         if saved.get(k, default.get(k)) != now.get(k, default.get(k)))
        if changed:
            logger.warning("resuming %s with changed settings (%s): no longer one recipe", path,
                           ", ".join(changed))
        self.model.load_state_dict(state["raw_model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        self.best_mae = float(state["best_mae"])
        self.best_epoch = int(state["best_epoch"])
        self.best_val = dict(state["best_val"])
        self.start_epoch = int(state["epoch"]) + 1
        logger.info("resumed from %s at epoch %d", path, self.start_epoch)

    # -- loop -----------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Count metrics of the (EMA) model on the validation split(s), always in fp32.

        Whatever the training precision (bf16 autocast on capable CPUs, AMP on CUDA), the
        figures are those of the weights as exported and run by the engine in fp32, so the
        best epoch is picked on what ships and ``streamcount evaluate`` gives the same numbers.
        (Measured on a U-Net-16 trained in bf16 on Mall: bf16 validation MAE 2.07, the same
        weights in fp32 2.45.)

        With several data folders, ``mae``/``rmse``/``bias`` are the first folder's, each
        folder's MAE and bias are added as ``mae@NAME``/``bias@NAME``, and ``score`` (what
        picks the best epoch) is the mean over folders of MAE relative to the mean count.
        """
        results = [(name, self._validate_one(split)) for name, split in self.vals]
        out = dict(results[0][1])
        if len(results) == 1:
            out["score"] = out["mae"]
            return out
        rel = []
        for (name, m), (_, split) in zip(results, self.vals, strict=True):
            out[f"mae@{name}"] = m["mae"]
            out[f"rmse@{name}"] = m["rmse"]
            out[f"bias@{name}"] = m["bias"]
            rel.append(m["mae"] / max(float(np.mean(split.counts)), 1.0))
        out["score"] = float(np.mean(rel))
        return out

    def _validate_one(self, split: SplitArrays) -> dict[str, float]:
        import torch

        model = self._eval_model()
        model.eval()
        preds = []
        for img in split.images:
            x = torch.from_numpy(normalize_image(img, self.mean, self.std)).to(self.device)
            if self.device == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            y = predict_density(model, x)
            preds.append(float(y.sum()) / self.cfg.density_scale)
        return count_metrics(np.array(preds), np.array(split.counts, dtype=np.float64))

    def fit(self) -> TrainResult:
        """Train for ``cfg.epochs``; returns the best and last validation metrics."""
        self._setup()
        try:
            return self._fit()
        finally:
            distributed.shutdown(self.dist)

    def _fit(self) -> TrainResult:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )  # fmt: skip

        cfg = self.cfg
        main = self.dist.is_main  # only rank 0 validates, logs and writes checkpoints
        log_path = self.run_dir / "log.csv"
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not self.resume or not log_path.exists():
                log_path.write_text("epoch,train_loss,val_mae,val_rmse,val_bias,lr,seconds\n")
        baseline = self._baseline_mae()
        t_start = time.perf_counter()
        last_val: dict[str, float] = {}
        columns = (
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        )  # fmt: skip
        total_steps = self.steps_per_epoch * (cfg.epochs - self.start_epoch)
        with Progress(*columns, disable=not (self.progress and main), transient=False) as progress:
            task = progress.add_task("train", total=total_steps, info="")
            for epoch in range(self.start_epoch, cfg.epochs):
                t0 = time.perf_counter()
                loss = self._train_epoch(epoch, progress, task)
                self.timing["train"] += time.perf_counter() - t0
                is_last = epoch == cfg.epochs - 1
                val: dict[str, float] = {}
                if not main:
                    continue
                if self.val is not None and ((epoch + 1) % cfg.val_every == 0 or is_last):
                    t_val = time.perf_counter()
                    val = self.validate()
                    self.timing["val"] += time.perf_counter() - t_val
                    last_val = val
                    with (self.run_dir / "val.jsonl").open("a") as fh:  # every figure, per set
                        fh.write(json.dumps({"epoch": epoch, **val}) + "\n")
                    if val["score"] < self.best_mae:
                        self.best_mae, self.best_epoch, self.best_val = val["score"], epoch, val
                        save_checkpoint(self._state(epoch, val, full=False),
                                        self.run_dir / "best.pt")
                elif self.val is None and is_last:
                    self.best_epoch = epoch
                    save_checkpoint(self._state(epoch, {}, full=False), self.run_dir / "best.pt")
                t_save = time.perf_counter()
                save_checkpoint(self._state(epoch, val, full=True), self.run_dir / "last.pt")
                self.timing["save"] += time.perf_counter() - t_save
                secs = time.perf_counter() - t0
                with log_path.open("a", newline="") as fh:
                    csv.writer(fh).writerow([
                        epoch, f"{loss:.6f}", f"{val.get('mae', float('nan')):.4f}",
                        f"{val.get('rmse', float('nan')):.4f}",
                        f"{val.get('bias', float('nan')):.4f}",
                        f"{self.sched.get_last_lr()[0]:.3g}", f"{secs:.1f}",
                    ])  # fmt: skip
                info = f"epoch {epoch + 1}/{cfg.epochs} loss {loss:.4g}"
                if cfg.grad_clip > 0:
                    info += f" clipped {self.clipped}/{self.steps_per_epoch}"
                if val:
                    info += f" val MAE {val['mae']:.2f} (best score {self.best_mae:.3g})"
                    for key in val:
                        if key.startswith("mae@"):
                            info += f" {key[4:]} {val[key]:.2f}"
                progress.update(task, info=info)
                logger.debug(info)
        return TrainResult(
            best_epoch=self.best_epoch, best_val=self.best_val, last_val=last_val,
            baseline_mae=baseline, seconds=time.perf_counter() - t_start, run_dir=self.run_dir,
            timing={k: round(v, 2) for k, v in self.timing.items()},
        )  # fmt: skip

    def _train_epoch(self, epoch: int, progress: Any, task: Any) -> float:
        import torch
        from torch.utils.data import DataLoader

        cfg = self.cfg
        self.dataset.set_epoch(cfg.seed * 100_003 + epoch)
        data: Any = self.dataset
        if self.dist.enabled:  # rank r takes items r, r + W, ...: together one process's batches
            from torch.utils.data import Subset

            data = Subset(self.dataset, range(self.dist.rank, len(self.dataset), self.dist.world))
        loader = DataLoader(
            data, batch_size=cfg.batch_size // self.dist.world, shuffle=False,
            num_workers=cfg.workers, drop_last=False, persistent_workers=False,
            collate_fn=collate_points if cfg.loss == "bayes" else None,
        )  # fmt: skip
        self.model.train()
        if cfg.frozen_bn:  # the encoder's batch norms keep their (ImageNet) statistics
            encoder = getattr(self.model, "encoder", None)
            if encoder is None:
                raise InputError(f"--frozen-bn needs a pretrained-encoder architecture, "
                                 f"not {cfg.arch}")
            for mod in encoder.modules():
                if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                    mod.eval()
        total, n = 0.0, 0
        self.clipped = 0
        batches = iter(loader)
        first = True
        while True:
            t_wait = time.perf_counter()
            try:
                x, y, *pts = next(batches)
            except StopIteration:
                break
            # each step ends in a device sync (the loss is read), so this is time spent waiting
            # for the data, not for the accelerator
            self.timing["loader_start" if first else "data_wait"] += time.perf_counter() - t_wait
            first = False
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if self.device == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                pred = self.net(x)
            loss = self._loss(pred.float(), y, pts[0] if cfg.loss == "bayes" else None)
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                if cfg.grad_clip > 0:
                    self.scaler.unscale_(self.opt)
                    self._clip()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip > 0:
                    self._clip()
                self.opt.step()
            self.sched.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            total += float(loss.detach()) * len(x)
            n += len(x)
            progress.update(task, advance=1)
        return distributed.mean_over_ranks(total / max(n, 1), self.dist, self.device)

    def _loss(self, pred: Any, y: Any, points: list[Any] | None) -> Any:
        """The training loss of a batch: ``pred`` and ``y`` are ``N x 1 x H x W`` scaled
        densities at the input's resolution, ``points`` the batch's points (``bayes`` only).

        Both are compared in ``self.loss_stride`` x ``self.loss_stride`` block sums: the
        model's output stride, or the coarser ``loss_block``.
        """
        cfg = self.cfg
        pred = block_sums(pred, self.loss_stride)
        if cfg.loss == "bayes":
            if points is None:
                raise ValueError("the Bayesian loss needs the batch's points")
            return bayesian_loss(pred / cfg.density_scale, points, self.loss_stride,
                                 cfg.bayes_sigma, cfg.bayes_background)
        return patch_loss(pred, block_sums(y, self.loss_stride), cfg)

    def _clip(self) -> None:
        """Clips the gradient's global norm to ``cfg.grad_clip``; counts the clipped steps."""
        import torch

        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.clipped += int(float(norm) > self.cfg.grad_clip)

    def _baseline_mae(self) -> float:
        """MAE on validation of always predicting the training mean count."""
        if self.val is None:
            return float("nan")
        mean = float(np.mean(self.train.counts))
        return float(np.mean(np.abs(np.asarray(self.val.counts) - mean)))

