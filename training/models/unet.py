"""U-Net (after objects_counting_dmap / Falk et al.): constant filters, or growing per level."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from streamcount.training.models import register
from streamcount.training.models.blocks import PadToMultiple, conv_block


class _UNetCore(nn.Module):
    def __init__(self, filters: int, n_convs: int, in_channels: int, growth: int = 1,
                 norm: str = "bn") -> None:
        super().__init__()
        f1, f2, f3, f4 = (filters * growth**k for k in range(4))
        self.down1 = conv_block(in_channels, f1, n_convs, norm)
        self.down2 = conv_block(f1, f2, n_convs, norm)
        self.down3 = conv_block(f2, f3, n_convs, norm)
        self.bottom = conv_block(f3, f4, n_convs, norm)
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.up3 = conv_block(f4 + f3, f3, n_convs, norm)
        self.up2 = conv_block(f3 + f2, f2, n_convs, norm)
        self.up1 = conv_block(f2 + f1, f1, n_convs, norm)
        self.head = nn.Conv2d(f1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(self.pool(d1))
        d3 = self.down3(self.pool(d2))
        b = self.bottom(self.pool(d3))
        u3 = self.up3(torch.cat([self.up(b), d3], 1))
        u2 = self.up2(torch.cat([self.up(u3), d2], 1))
        u1 = self.up1(torch.cat([self.up(u2), d1], 1))
        return self.head(u1)


@register("unet")
class UNet(PadToMultiple):
    """U-Net: 3 down / 3 up blocks, skip concatenation, 1-channel density.

    Args:
        filters: Channels of the full-resolution blocks (the seed design used 64 everywhere).
        n_convs: 3x3 conv + BatchNorm + ReLU layers per block.
        in_channels: 3 for colour, 1 for grey.
        growth: Channel factor per level down (1: constant filters, the seed design; 2:
            16-32-64-128 for ``filters=16``, more context capacity for about twice the FLOPs).
        norm: ``"bn"`` (BatchNorm after each conv) or ``"none"`` (convs with a bias: no batch
            statistics, so the count never depends on the batch or on running averages; the
            same graph after export, where BatchNorm is folded into the convs). A model
            argument: ``--model-arg norm=none`` or ``[model_args]`` in a recipe.

    Example:
        >>> net = UNet(filters=16)
        >>> net(torch.zeros(1, 3, 50, 70)).shape
        torch.Size([1, 1, 50, 70])
        >>> UNet(filters=8, growth=2)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
        >>> UNet(filters=8, norm="none")(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    size_multiple = 8

    @staticmethod
    def label(model: dict[str, Any]) -> str:
        """Short name for metadata and cards: ``unet-16``, ``unet-16x2`` with growth."""
        growth = int(model.get("growth", 1))
        return (f"unet-{model['filters']}" + (f"x{growth}" if growth != 1 else "")
                + ("-nonorm" if model.get("norm", "bn") == "none" else ""))

    def __init__(self, filters: int = 64, n_convs: int = 2, in_channels: int = 3,
                 growth: int = 1, norm: str = "bn") -> None:
        from streamcount.errors import InputError

        if norm not in ("bn", "none"):
            raise InputError(f"norm must be 'bn' or 'none', got {norm!r}")
        super().__init__(_UNetCore(filters, n_convs, in_channels, growth, norm),
                         self.size_multiple)
        self.config = {
            "architecture": "unet",
            "filters": filters,
            "n_convs": n_convs,
            "in_channels": in_channels,
        }
        if growth != 1:  # older checkpoints have no key: constant filters
            self.config["growth"] = growth
        if norm != "bn":  # older checkpoints have no key: BatchNorm
            self.config["norm"] = norm
