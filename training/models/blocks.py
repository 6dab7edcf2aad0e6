"""Building blocks shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(in_ch: int, out_ch: int, n_convs: int, norm: str = "bn") -> nn.Sequential:
    """``n_convs`` times (3x3 conv, BatchNorm, ReLU); ``norm="none"``: conv with a bias, ReLU.

    Example:
        >>> conv_block(3, 8, 2, norm="none")(torch.zeros(1, 3, 16, 16)).shape
        torch.Size([1, 8, 16, 16])
    """
    layers: list[nn.Module] = []
    for i in range(n_convs):
        layers.append(nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=1,
                                bias=norm == "none"))
        if norm == "bn":
            layers.append(nn.BatchNorm2d(out_ch))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class PadToMultiple(nn.Module):
    """Wraps a network that needs sizes divisible by ``multiple``: pad, run, crop back.

    Any input size works and the output has the input's height and width. Padding is
    zero (after normalization), on the bottom and right only, so pixel coordinates keep.
    """

    def __init__(self, net: nn.Module, multiple: int) -> None:
        super().__init__()
        self.net = net
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        m = self.multiple
        ph = (m - h % m) % m
        pw = (m - w % m) % m
        x = F.pad(x, (0, pw, 0, ph))
        y = self.net(x)
        return y[..., :h, :w]
