"""Model registry: a new architecture is one file that calls :func:`register`.

Example:
    >>> from streamcount.training.models import build_model  # doctest: +SKIP
    >>> net = build_model("unet", filters=32, in_channels=3)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamcount.errors import InputError

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class decorator that makes an architecture buildable by name."""

    def deco(cls: Callable[..., Any]) -> Callable[..., Any]:
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> list[str]:
    """Names of the registered architectures."""
    _load_builtin()
    return sorted(_REGISTRY)


def architecture(name: str) -> Callable[..., Any]:
    """The registered constructor of ``name`` (its signature lists the settings it takes)."""
    _load_builtin()
    if name not in _REGISTRY:
        raise InputError(
            f"unknown architecture '{name}': choose one of {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def build_model(name: str, **kwargs: Any) -> Any:
    """Build a registered architecture.

    Args:
        name: Registered name (``"unet"``, ``"fcrn_a"``).
        **kwargs: The architecture's constructor arguments.

    Returns:
        A ``torch.nn.Module``.
    """
    return architecture(name)(**kwargs)


def _load_builtin() -> None:
    from streamcount.training.models import fcrn, unet, unet_effl0  # noqa: F401  (registers on import)
