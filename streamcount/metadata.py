"""Model metadata stored in an ONNX file's ``metadata_props``.

The exporter writes it; the engine reads it. Everything the runtime needs to turn a BGR OpenCV
frame into a count lives here, so a model file needs no side-car.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from streamcount.settings import within

logger = logging.getLogger(__name__)

PREFIX = "streamcount."


@dataclass
class ModelMetadata:
    """How to feed a density-counting model and read its output.

    Attributes:
        architecture: Model family and width, e.g. ``"unet-32"``.
        in_channels: 1 (grey) or 3 (colour).
        color_order: ``"RGB"``, ``"BGR"`` or ``"GRAY"``: what the network expects.
        mean: Per-channel mean subtracted after scaling pixels to [0, 1].
        std: Per-channel standard deviation divided by after subtracting the mean.
        density_scale: The network predicts ``density * density_scale``; count = sum / scale.
        size_multiple: Input height and width are padded to a multiple of this.
        input_scale: Frames are resized by this factor before inference (0.5: 640x480 -> 320x240).
        max_side: Frames whose longer side (after ``input_scale``) exceeds this are tiled.
        tile_overlap: Overlap in model pixels between neighbouring tiles.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        training_data: Free text: what the model was trained on.
        metrics: Validation metrics, e.g. ``{"mae": 1.2, "rmse": 1.6}``.
        version: The streamcount version that exported the model.
        name: Short model name (``"crowd"``).
        model: The architecture's constructor arguments (``{"architecture": "unet_effl0",
            "decoder_channels": 64, ...}``): what rebuilds the network in torch, no label parsing.
    """

    architecture: str = "unknown"
    in_channels: int = 3
    color_order: str = "RGB"
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    density_scale: float = 1.0
    size_multiple: int = 8
    input_scale: float = 1.0
    max_side: int = 2048
    tile_overlap: int = 32
    precision: str = "fp32"
    training_data: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    version: str = ""
    name: str = ""
    model: dict[str, Any] = field(default_factory=dict)

    def to_props(self) -> dict[str, str]:
        """Serialise to ONNX ``metadata_props`` (string keys and values)."""
        out = {}
        for key, value in asdict(self).items():
            out[PREFIX + key] = value if isinstance(value, str) else json.dumps(value)
        return out

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMetadata:
        """Parse ``metadata_props``; missing keys take their defaults with one warning.

        Args:
            props: The model's metadata as a string dict.
            source: Where it came from, for the warning.

        Returns:
            The metadata, with documented defaults for absent keys.
        """
        kwargs: dict[str, Any] = {}
        missing = []
        for f in fields(cls):
            raw = props.get(PREFIX + f.name)
            if raw is None:
                missing.append(f.name)
                continue
            if f.type in ("str",):
                kwargs[f.name] = raw
            else:
                try:
                    kwargs[f.name] = json.loads(raw)
                except json.JSONDecodeError:
                    missing.append(f.name)
        essential = {"in_channels", "color_order", "mean", "std", "density_scale"}
        if essential & set(missing):
            logger.warning(
                "%s has no streamcount metadata for %s: using defaults (RGB, pixels/255, "
                "density scale 1, multiple of 8). Export with `streamcount export` to embed it.",
                source,
                ", ".join(sorted(essential & set(missing))),
            )
        meta = cls(**kwargs)
        if meta.in_channels == 1:
            meta.color_order = "GRAY"
        meta.validate(source)
        return meta

    def validate(self, source: str = "model") -> None:
        """Refuse metadata that would give NaN, negative or absurdly costly counts.

        Raises:
            ModelError: one line naming the key and its value.
        """
        from streamcount.errors import ModelError

        def bad(key: str, why: str) -> ModelError:
            return ModelError(f"{source}: metadata {key} = {getattr(self, key)!r} {why}; "
                              "re-export the model with `streamcount export`")

        if self.in_channels not in (1, 3):
            raise bad("in_channels", "must be 1 or 3")
        if not within(self.density_scale, 0, above=True):
            raise bad("density_scale", "must be a positive number")
        for key in ("mean", "std"):
            vals = getattr(self, key)
            if (not isinstance(vals, list) or len(vals) < self.in_channels
                    or not all(within(v) for v in vals)):
                raise bad(key, f"must be {self.in_channels} finite numbers")
        if min(self.std[: self.in_channels]) <= 0:
            raise bad("std", "must be positive")
        if not within(self.input_scale, 0.05, 4.0):
            raise bad("input_scale", "must be between 0.05 and 4")
        if not isinstance(self.size_multiple, int) or not 1 <= self.size_multiple <= 256:
            raise bad("size_multiple", "must be an integer from 1 to 256")
        if not isinstance(self.max_side, int) or not 64 <= self.max_side <= 16384:
            raise bad("max_side", "must be an integer from 64 to 16384")
        overlap = self.tile_overlap
        if not isinstance(overlap, int) or not 0 <= overlap < self.max_side // 2:
            raise bad("tile_overlap", "must be an integer from 0 to max_side / 2")
        if str(self.color_order).upper() not in ("RGB", "BGR", "GRAY"):
            raise bad("color_order", "must be RGB, BGR or GRAY")
