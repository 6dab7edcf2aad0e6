"""From an OpenCV frame to the model's input, and from its output back to frame coordinates."""

from __future__ import annotations

import cv2
import numpy as np

from streamcount.errors import InputError
from streamcount.metadata import ModelMetadata
from streamcount.settings import within


def to_bgr8(frame: np.ndarray, channels: int) -> np.ndarray:
    """Any OpenCV image (grey, BGR, BGRA; 8 or 16 bit; float) to uint8 with ``channels``.

    Args:
        frame: ``H x W``, ``H x W x 1``, ``H x W x 3`` or ``H x W x 4``.
        channels: 3 (BGR out) or 1 (grey out, ``H x W``).

    Raises:
        InputError: the array is not an image.
    """
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.size == 0:
        shape = getattr(frame, "shape", None)
        raise InputError(f"not an image: expected an H x W (x C) array, got shape {shape}")
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        elif np.issubdtype(frame.dtype, np.floating):
            hi = 1.0 if float(np.nanmax(frame)) <= 1.0 else 255.0
            frame = np.clip(np.nan_to_num(frame) * (255.0 / hi), 0, 255).astype(np.uint8)
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    c = 1 if frame.ndim == 2 else frame.shape[2]
    if c not in (1, 3, 4):
        raise InputError(f"unsupported image with {c} channels: use grey, BGR or BGRA")
    if channels == 3:
        if c == 1:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if c == 4:
            return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        return frame
    if c == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if c == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return frame.reshape(frame.shape[0], frame.shape[1])


def check_input_scale(scale: float | None) -> None:
    """Raise one clear error for an ``--input-scale`` override out of 0.05-4 (``None``: none).

    Example:
        >>> check_input_scale(0.5)
        >>> check_input_scale(0.0)
        Traceback (most recent call last):
        ...
        streamcount.errors.InputError: --input-scale must be between 0.05 and 4, got 0.0
    """
    if scale is not None and not within(scale, 0.05, 4.0):
        raise InputError(f"--input-scale must be between 0.05 and 4, got {scale}")


class Preprocessor:
    """Turns BGR uint8 frames into normalized ``C x H x W`` float32 arrays for one model.

    One resize per frame (by ``input_scale``); colour conversion, scaling and normalization are
    fused into one multiply-add with precomputed per-channel constants.

    Args:
        meta: The model's metadata.
        input_scale: Override of ``meta.input_scale``.
    """

    def __init__(self, meta: ModelMetadata, input_scale: float | None = None) -> None:
        self.meta = meta
        self.channels = int(meta.in_channels)
        check_input_scale(input_scale)
        self.scale = float(meta.input_scale if input_scale is None else input_scale)
        if not within(self.scale, 0, above=True):
            raise InputError(f"the model's metadata has input scale {self.scale}: re-export it")
        std = np.asarray(meta.std, np.float32)[: self.channels]
        mean = np.asarray(meta.mean, np.float32)[: self.channels]
        # x_norm = (x / 255 - mean) / std = x * a + b
        self._a = (1.0 / (255.0 * std)).astype(np.float32)
        self._b = (-mean / std).astype(np.float32)
        self._rgb = meta.color_order.upper() == "RGB"

    def model_size(self, h: int, w: int) -> tuple[int, int]:
        """Size (h, w) at which a ``h x w`` frame is given to the model."""
        if self.scale == 1.0:
            return h, w
        return max(1, round(h * self.scale)), max(1, round(w * self.scale))

    def __call__(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """One frame -> ``C x h x w`` float32 (``out`` is filled when given)."""
        img = to_bgr8(frame, self.channels)
        h, w = img.shape[:2]
        mh, mw = self.model_size(h, w)
        if (mh, mw) != (h, w):
            interp = cv2.INTER_AREA if mh < h else cv2.INTER_LINEAR
            img = cv2.resize(img, (mw, mh), interpolation=interp)
        if self.channels == 3 and self._rgb:
            img = img[..., ::-1]
        if img.ndim == 2:
            img = img[..., None]
        if out is None:
            out = np.empty((self.channels, mh, mw), np.float32)
        # HWC uint8 -> CHW float32 with the fused affine map, channel by channel (no temporaries
        # beyond one plane).
        for c in range(self.channels):
            np.multiply(img[..., c], self._a[c], out=out[c], casting="unsafe")
            out[c] += self._b[c]
        return out


def density_to_frame(density: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Model-space density -> frame coordinates; the integral is kept (to resampling error).

    Bilinear resampling keeps the mean, so multiplying by the area ratio keeps the sum.
    """
    h, w = frame_hw
    dh, dw = density.shape
    if (dh, dw) == (h, w):
        return density
    out = cv2.resize(density, (w, h), interpolation=cv2.INTER_LINEAR)
    out *= (dh * dw) / (h * w)
    return out
