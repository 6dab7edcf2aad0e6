"""Training configuration: a dataclass with defaults, filled from CLI flags or a TOML recipe."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from streamcount.errors import InputError
from streamcount.settings import check_types, within
from streamcount.training.data import AugmentConfig

LOSSES = ("mse", "bayes")

# Numeric settings and their allowed ranges (inclusive; ``None`` for "no limit"), with the
# reason shown when a value falls outside: an epoch count of 0 or an EMA decay above 1 would
# otherwise run and give a model that is silently wrong, or fail deep inside torch.
_RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "filters": (1, 1024, "channels: 1 to 1024"),
    "growth": (1, 4, "a channel factor: 1 to 4"),
    "n_convs": (1, 8, "convolutions per block: 1 to 8"),
    "decoder_channels": (1, 1024, "channels: 1 to 1024"),
    "encoder_lr": (0.0, 10.0, "a factor of lr: 0 to 10"),
    "freeze_stages": (0, 64, "stages: 0 to 64"),
    "epochs": (1, None, "at least 1"),
    "samples_per_epoch": (0, None, "0 for one per training image, or more"),
    "batch_size": (1, 4096, "items per step: 1 to 4096"),
    "lr": (1e-9, 10.0, "a learning rate: above 0, at most 10"),
    "weight_decay": (0.0, 10.0, "0 to 10"),
    "count_weighting": (0.0, 4.0, "a power: 0 (off) to 4"),
    "density_scale": (1e-6, 1e9, "a factor above 0"),
    "count_loss": (0.0, 1e6, "a weight: 0 or more"),
    "loss_count_norm": (0.0, 1e9, "a count: 0 or more"),
    "loss_block": (0, 64, "pixels: 0 (the output stride) to 64"),
    "grad_clip": (0.0, 1e9, "a gradient norm: 0 (off) or more"),
    "ema_decay": (0.0, 0.999999, "0 (off) or a decay below 1"),
    "seed": (0, 2**32 - 1, "0 to 2**32 - 1"),
    "workers": (0, 256, "processes: 0 to 256"),
    "threads": (0, 1024, "0 (torch's default) to 1024"),
    "val_every": (1, None, "epochs: at least 1"),
}


@dataclass
class TrainConfig:
    """Everything that defines a training run (and so its recipe).

    Attributes:
        data: Folder with ``train.h5`` and ``val.h5`` from ``streamcount prepare``; several
            folders separated by commas train one model on all of them (each validated
            separately).
        data_weights: Share of each ``data`` folder in the training samples, comma-separated
            (empty: equal shares, whatever the folders' sizes).
        count_weighting: Within each ``data`` folder, draw each image in proportion to
            ``(count + 1) ** p`` (p = 0: every image equally often; 1: in proportion to its
            count, so dense scenes are seen more). Each epoch holds every image its share of
            the samples (rounded), in a shuffled order.
        out: Run folder for checkpoints (``last.pt``, ``best.pt``) and ``log.csv``.
        arch: Registered architecture (``unet``, ``fcrn_a``).
        filters: U-Net width (of the full-resolution blocks).
        decoder_channels: Decoder width of pretrained-encoder U-Nets (``unet_effl0``).
        encoder_depth: Strides of a pretrained encoder used (3: to 16, 4: to 32).
        decoder_norm: Their decoder's normalisation: ``bn`` or ``none``.
        pretrained: Start the encoder of a pretrained-encoder architecture from ImageNet.
        encoder_lr: Encoder learning rate as a factor of ``lr`` (pretrained encoders).
        freeze_stages: Keep the first N encoder stages (the stem is stage 1) fixed.
        frozen_bn: Keep the encoder's batch-norm statistics (ImageNet's) fixed: the encoder
            then computes the same in training and at test time, whatever the batch.
        init: Start from these weights (fine-tuning; same architecture): a checkpoint, or the
            name of a bundled model that ships them (``crowd``); ``""`` for none.
        growth: U-Net channel factor per level (1: constant width).
        n_convs: Convolutions per block.
        epochs: Passes of ``samples_per_epoch`` items.
        samples_per_epoch: Items per epoch (0: one per training image).
        batch_size: Items per step.
        patch: Random patch side; 0 trains on whole images.
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay (AdamW) or L2 (SGD).
        optimizer: ``adamw`` or ``sgd``.
        schedule: ``onecycle``, ``cosine`` or ``constant``.
        density_scale: Network target is density times this (count = sum / scale).
        loss: ``mse``: squared error of the predicted against the target density in blocks of
            the model's output stride or of ``loss_block`` (plus ``count_loss``); ``bayes``:
            the Bayesian loss on the annotated points themselves (Ma et al., ICCV 2019; no
            density kernel involved, ``count_loss`` and ``loss_count_norm`` unused).
        bayes_sigma: Bayesian loss: the Gaussian likelihood's standard deviation around a
            point, in pixels at the training scale (the authors' 8 at full resolution).
        bayes_background: Bayesian loss: the background's distance factor (0: no background,
            the plain Bayesian loss; 1: the authors' "Bayesian+" default).
        loss_block: Side in pixels of the blocks whose sums the loss compares (``mse``) or
            shares among the points (``bayes``); 0 uses the model's output stride, and a
            larger side must be a multiple of it. Coarser blocks ask the network for the
            right number of objects in each block rather than for the exact shape of each
            object's kernel.
        count_loss: Weight of a count term added to the pixel loss: the squared difference of
            predicted and true counts per patch (0: pixel MSE only). It works against a
            systematic under- or over-count.
        loss_count_norm: When above 0, each patch's loss is divided by
            ``1 + count / loss_count_norm`` (count: the patch's true count), a Poisson-like
            weighting: without it the squared errors of a few dense crowds (hundreds of people
            per patch) outweigh every sparse scene in a mixed run. 0 weights patches equally.
        grad_clip: Clip the gradient's global norm to this before each step (0: no clipping).
            Mixed sparse and dense crops give heavy-tailed gradients (a dense crop's norm can
            be 10x the median): clipping keeps those steps from knocking the model off.
        ema_decay: Exponential moving average of the weights; 0 disables it.
        seed: Seeds data order, augmentation and initialisation.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        precision: ``auto`` (bf16 autocast on capable CPUs, fp16 AMP on CUDA), ``fp32``.
        workers: DataLoader worker processes.
        threads: torch intra-op threads (0: torch's default).
        val_every: Validate every N epochs (and always at the last).
        name: Short model name written into the checkpoint (``cells``, ``crowd``).
        model_args: Constructor arguments of the architecture that are not settings here (a
            new architecture's own options: ``[model_args]`` in a recipe, ``--model-arg K=V``).
        aug: Augmentations.
    """

    data: str = ""
    data_weights: str = ""
    count_weighting: float = 0.0
    out: str = "runs/train"
    arch: str = "unet"
    filters: int = 32
    growth: int = 1
    n_convs: int = 2
    decoder_channels: int = 64
    decoder_norm: str = "bn"
    encoder_depth: int = 3
    pretrained: bool = True
    encoder_lr: float = 0.1
    freeze_stages: int = 0
    frozen_bn: bool = False
    init: str = ""
    epochs: int = 30
    samples_per_epoch: int = 0
    batch_size: int = 8
    patch: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    density_scale: float = 100.0
    loss: str = "mse"
    bayes_sigma: float = 4.0
    bayes_background: float = 1.0
    loss_block: int = 0
    count_loss: float = 0.0
    loss_count_norm: float = 0.0
    grad_clip: float = 0.0
    ema_decay: float = 0.998
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    workers: int = 0
    threads: int = 0
    val_every: int = 1
    name: str = ""
    model_args: dict[str, Any] = field(default_factory=dict)
    aug: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        check_types(self, "training setting")
        bad = [f"{k} = {getattr(self, k)} ({why})" for k, (lo, hi, why) in _RANGES.items()
               if not within(getattr(self, k), lo, hi)]
        if self.patch != 0 and not 8 <= self.patch <= 4096:
            bad.append(f"patch = {self.patch} (0 for whole images, or pixels: 8 to 4096)")
        if (self.patch == 0 and self.batch_size > 1 and self.aug.scale_jitter > 0
                and self.aug.scale_prob > 0):
            bad.append(f"scale_jitter = {self.aug.scale_jitter} with patch = 0 and batch_size = "
                       f"{self.batch_size} (resized whole images differ in size and cannot be "
                       f"batched: set a patch size, or scale_jitter = 0)")
        if self.loss not in LOSSES:
            bad.append(f"loss = {self.loss!r} (one of {', '.join(LOSSES)})")
        if not 0.5 <= self.bayes_sigma <= 64.0:
            bad.append(f"bayes_sigma = {self.bayes_sigma} (pixels: 0.5 to 64)")
        if not 0.0 <= self.bayes_background <= 10.0:
            bad.append(f"bayes_background = {self.bayes_background} (a factor: 0 to 10)")
        if bad:
            raise InputError(f"training setting out of range: {'; '.join(bad)}")

    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the architecture (without ``in_channels``).

        Read from the registered constructor's signature: every parameter that is also a
        setting here is passed, so a new architecture needs no change in this class.
        ``pretrained`` is left out (it matters for the first build only, not for a rebuild
        from a checkpoint), and so is ``growth=1`` (older checkpoints have no such key).
        """
        import inspect

        from streamcount.training.models import architecture

        own = {f.name for f in fields(self)} - {"model_args"}
        params = inspect.signature(architecture(self.arch)).parameters
        kw = {name: getattr(self, name) for name in params
              if name in own and name not in ("in_channels", "pretrained")}
        if kw.get("growth") == 1:
            del kw["growth"]
        bad = sorted(set(self.model_args) - set(params) | set(self.model_args) & own)
        if bad:
            raise InputError(f"model_args {', '.join(bad)}: not an argument of {self.arch} "
                             f"(or a setting of its own: pass it as one)")
        return {**kw, **self.model_args}

    def data_dirs(self) -> list[Path]:
        """The ``data`` folders."""
        return [Path(d.strip()) for d in self.data.split(",") if d.strip()]

    def weights(self) -> list[float]:
        """Share of each data folder in the training samples (normalized)."""
        n = len(self.data_dirs())
        if not self.data_weights:
            return [1.0 / n] * n
        try:
            w = [float(v) for v in self.data_weights.split(",")]
        except ValueError as exc:
            raise InputError(f"data_weights must be numbers separated by commas, got "
                             f"{self.data_weights!r}") from exc
        if len(w) != n or min(w) < 0 or sum(w) <= 0:
            raise InputError(f"data_weights needs {n} non-negative numbers (one per data "
                             f"folder), got {self.data_weights!r}")
        return [v / sum(w) for v in w]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for checkpoints and logs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown training settings: {', '.join(sorted(unknown))}")
        aug = d.pop("aug", {}) or {}
        aug_known = {f.name for f in fields(AugmentConfig)}
        if set(aug) - aug_known:
            raise InputError(f"unknown augmentation settings: {', '.join(set(aug) - aug_known)}")
        return cls(**d, aug=AugmentConfig(**aug))

    @classmethod
    def from_toml(cls, path: Path) -> TrainConfig:
        """Read a recipe file (TOML, keys as the attributes; ``[aug]`` table)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise InputError(f"recipe not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"recipe {path} is not valid TOML: {exc}") from exc
        try:
            return cls.from_dict(data)
        except (InputError, TypeError) as exc:
            raise InputError(f"recipe {path}: {exc}; fix it there") from exc
