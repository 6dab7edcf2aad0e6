"""Prediction ensemble: several trained networks of one architecture, their densities averaged.

Weight averaging (``streamcount average``) needs runs that share a basin of the loss, which
runs from scratch do not (the cells card: two U-Net-16 runs average to a network that counts
nothing). Averaging their *outputs* works for any runs: each member runs on the same input and
the density is the mean of theirs, so the count is the mean of their counts. It costs N times
the compute of one member; the exported ONNX graph holds all members, so the runtime needs
nothing new. Built by ``streamcount average --outputs``, never trained.

Example:
    >>> import torch
    >>> from streamcount.training.models import build_model
    >>> net = build_model("ensemble", members=2, in_channels=3,
    ...                   member={"architecture": "unet", "filters": 4, "n_convs": 1})
    >>> net(torch.zeros(1, 3, 20, 30)).shape
    torch.Size([1, 1, 20, 30])
    >>> Ensemble.label({"architecture": "ensemble", "members": 2,
    ...                 "member": {"architecture": "unet", "filters": 16, "n_convs": 2}})
    '2x unet-16'
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from streamcount.errors import InputError
from streamcount.training.models import build_model, register
from streamcount.training.models import label as member_label


def _member_config(member: Any) -> dict[str, Any]:
    """The member's constructor arguments, checked to be an architecture config."""
    if not isinstance(member, dict) or "architecture" not in member:
        raise InputError(f"ensemble member {member!r}: not an architecture config")
    return dict(member)


@register("ensemble")
class Ensemble(nn.Module):
    """The mean density of ``members`` networks built from one ``member`` config.

    Args:
        member: The members' architecture config (as stored in a checkpoint's ``model``:
            ``architecture`` plus its constructor arguments).
        members: How many networks (2 or more).
        in_channels: Input channels; must equal the member config's.

    Example:
        >>> net = Ensemble({"architecture": "unet", "filters": 4, "n_convs": 1}, members=3)
        >>> len(net.nets)
        3
    """

    #: Built from trained checkpoints by ``streamcount average --outputs``; ``train`` refuses it.
    trainable = False

    def __init__(self, member: dict[str, Any], members: int = 2,
                 in_channels: int = 3) -> None:
        super().__init__()
        cfg = _member_config(member)
        if cfg.get("architecture") == "ensemble":
            raise InputError("an ensemble's members cannot be ensembles: list their checkpoints")
        if members < 2:
            raise InputError(f"an ensemble needs 2 or more members, not {members}")
        kwargs = {k: v for k, v in cfg.items() if k != "architecture"}
        kwargs.setdefault("in_channels", in_channels)
        if kwargs["in_channels"] != in_channels:
            raise InputError(f"ensemble in_channels {in_channels} != its members' "
                             f"{kwargs['in_channels']}")
        self.nets = nn.ModuleList(build_model(str(cfg["architecture"]), **kwargs)
                                  for _ in range(members))
        self.config = {"architecture": "ensemble", "member": cfg, "members": members,
                       "in_channels": in_channels}

    @staticmethod
    def label(model: dict[str, Any]) -> str:
        """``4x unet-16``: the member count and the member's own label."""
        return f"{int(model['members'])}x {member_label(_member_config(model['member']))}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.nets[0](x)
        for net in self.nets[1:]:
            out = out + net(x)
        return out / len(self.nets)
