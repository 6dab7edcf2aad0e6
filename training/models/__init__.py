"""Model registry: a new architecture is one file in this folder that calls :func:`register`.

Its constructor's parameters are its settings: ``TrainConfig.model_kwargs`` passes those that
are also training settings, the checkpoint and the ONNX metadata store them as given.

Example:
    >>> from streamcount.training.models import build_model  # doctest: +SKIP
    >>> net = build_model("unet", filters=32, in_channels=3)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
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


def label(model: dict[str, Any]) -> str:
    """A short name of a model from its stored constructor arguments (``unet-16``).

    The architecture's own ``label(model)`` decides; without one it is the registered name.

    Example:
        >>> label({"architecture": "unet", "filters": 16, "n_convs": 2, "in_channels": 3})
        'unet-16'
    """
    name = str(model["architecture"])
    fn = getattr(architecture(name), "label", None)
    return str(fn(model)) if callable(fn) else name


def build_model(name: str, **kwargs: Any) -> Any:
    """Build a registered architecture.

    Args:
        name: Registered name (``"unet"``, ``"fcrn_a"``).
        **kwargs: The architecture's constructor arguments.

    Returns:
        A ``torch.nn.Module``.
    """
    return architecture(name)(**kwargs)


@functools.cache
def _load_builtin() -> None:
    """Import every module of this folder once: each architecture registers itself, so a new
    one is a new file here and nothing else (cached: the folder is listed once per process)."""
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")
