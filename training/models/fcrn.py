"""FCRN-A (Xie, Noble & Zisserman 2015): 32-64-128-512-128-64-1, no skips."""

from __future__ import annotations

import torch
from torch import nn

from streamcount.training.models import register
from streamcount.training.models.blocks import PadToMultiple, conv_block


class _FCRNCore(nn.Module):
    def __init__(self, n_convs: int, in_channels: int) -> None:
        super().__init__()
        up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        pool = nn.MaxPool2d(2)
        self.body = nn.Sequential(
            conv_block(in_channels, 32, n_convs), pool,
            conv_block(32, 64, n_convs), pool,
            conv_block(64, 128, n_convs), pool,
            conv_block(128, 512, n_convs),
            up, conv_block(512, 128, n_convs),
            up, conv_block(128, 64, n_convs),
            up, conv_block(64, 32, n_convs),
            nn.Conv2d(32, 1, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register("fcrn_a")
class FCRN_A(PadToMultiple):
    """FCRN-A: 3 down / 3 up blocks without skips, 3x3 convs, BatchNorm + ReLU.

    Args:
        n_convs: conv layers per block (the seed design used 2).
        in_channels: 3 for colour, 1 for grey.

    Example:
        >>> net = FCRN_A(n_convs=1)
        >>> net(torch.zeros(2, 3, 33, 17)).shape
        torch.Size([2, 1, 33, 17])
    """

    size_multiple = 8

    def __init__(self, n_convs: int = 2, in_channels: int = 3) -> None:
        super().__init__(_FCRNCore(n_convs, in_channels), self.size_multiple)
        self.config = {"architecture": "fcrn_a", "n_convs": n_convs, "in_channels": in_channels}
