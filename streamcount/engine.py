"""The inference engine: an ONNX Runtime session plus everything model-specific.

Example:
    >>> import numpy as np
    >>> from streamcount import Counter
    >>> counter = Counter("crowd", device="cpu")  # doctest: +SKIP
    >>> result = counter.count(np.zeros((480, 640, 3), np.uint8))  # doctest: +SKIP
    >>> result.count, result.density.shape  # doctest: +SKIP
    (0.03, (480, 640))
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamcount import defaults
from streamcount.errors import ModelError
from streamcount.metadata import ModelMetadata
from streamcount.models import DEFAULT_MODEL, int8_variant, resolve_model
from streamcount.precision import choose_precision
from streamcount.preprocess import Preprocessor, density_to_frame
from streamcount.providers import create_session, gpu_providers_present
from streamcount.settings import within
from streamcount.tiling import plan_tiles

logger = logging.getLogger(__name__)


@dataclass
class CountResult:
    """The count of one frame.

    Attributes:
        count: Estimated number of objects (integral of the density).
        density: Density map in frame coordinates (``H x W`` float32), integrating to ``count``.
        latency_ms: Wall time of the engine call that produced it (the whole batch).
        batch: Frames in that call.
    """

    count: float
    density: np.ndarray
    latency_ms: float
    batch: int = 1


class Counter:
    """Counts objects in BGR uint8 frames with a density-map ONNX model.

    Args:
        model: A bundled model name (``streamcount info`` lists them) or a path to ``.onnx``.
        device: ``auto`` (TensorRT, CUDA, then CPU), ``cpu``, ``cuda`` or ``tensorrt``.
        threads: ONNX Runtime intra-op threads (0: one per core).
        input_scale: Override the model's input scale (frames are resized by it).
        gain: Multiply every density (and so every count) by this: a quick calibration for a
            camera where the model is systematically off (``streamcount calibrate`` stores a
            fitted one in a copy of the model instead).
        max_side: Override the tiling limit (longest model-input side before tiling).
        cache_dir: TensorRT engine cache.
        precision: ``auto`` (int8 where the CPU has VNNI/AMX and the bundled model ships an
            int8 variant; fp32 otherwise), ``fp32`` or ``int8``.
        host_threads: Threads for the per-frame work around the model (resize, normalisation,
            the fp16 cast, the density's sum and its resampling to frame size) in batches of
            several frames; 0: one per core, up to 8; 1: none (all in the calling thread).
            Batches of one frame always run in the calling thread.

    Attributes:
        device: The provider really in use (``cpu``, ``cuda`` or ``tensorrt``).
        precision: The precision really in use, with ``precision_reason`` saying why.
        metadata: The model's :class:`~streamcount.metadata.ModelMetadata`.
        session_ms: Time the last :meth:`count_batch` spent inside ONNX Runtime (its
            ``latency_ms`` less this is the host's work around the model).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        device: str = defaults.DEVICE,
        threads: int = defaults.THREADS,
        input_scale: float | None = None,
        gain: float = 1.0,
        max_side: int | None = None,
        cache_dir: Path | None = None,
        precision: str = "auto",
        host_threads: int = defaults.HOST_THREADS,
    ) -> None:
        if host_threads < 0:
            from streamcount.errors import InputError

            raise InputError(f"host threads must be 0 (automatic) or more, got {host_threads}")
        self.model_path = resolve_model(model)
        variant = int8_variant(model)
        on_cpu = device == "cpu" or (device == "auto" and not gpu_providers_present()["cuda"])
        choice = choose_precision(precision, variant is not None, on_cpu)
        if choice.precision == "int8" and variant is not None:
            self.model_path = variant
        info = create_session(self.model_path, device, threads, cache_dir)
        self.session = info.session
        self.device = info.device
        self.providers = info.providers
        self._props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata = ModelMetadata.from_props(self._props, source=str(self.model_path))
        self.precision = self.metadata.precision or choice.precision
        self.precision_reason = choice.reason
        if max_side:
            self.metadata.max_side = int(max_side)
        self._check_signature()
        self.pre = Preprocessor(self.metadata, input_scale)
        if not within(gain, 0.05, 20.0):
            from streamcount.errors import InputError

            raise InputError(f"--gain must be between 0.05 and 20, got {gain}")
        self.gain = float(gain)
        self._buffers: dict[tuple[int, int, int, str], np.ndarray] = {}
        self._io_binding = self.device in ("cuda", "tensorrt")
        self.host_threads = host_threads or min(8, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self.session_ms = 0.0

    @property
    def name(self) -> str:
        """Model name from its metadata, or the file stem."""
        return self.metadata.name or self.model_path.stem

    def _check_signature(self) -> None:
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        where = self.model_path
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [(i.name, i.shape) for i in inputs]
            raise ModelError(
                f"{where} is not a density-counting model: expected one N x C x H x W input, "
                f"found {shapes}"
            )
        if len(outputs) < 1 or len(outputs[0].shape) != 4:
            raise ModelError(
                f"{where}: expected an N x 1 x H x W density output, found "
                f"{[(o.name, o.shape) for o in outputs]}"
            )
        c = inputs[0].shape[1]
        if isinstance(c, int) and c != self.metadata.in_channels:
            if "streamcount.in_channels" in self._props:
                raise ModelError(f"{where}: input has {c} channels but metadata says otherwise")
            self.metadata.in_channels = c
            self.metadata.color_order = "GRAY" if c == 1 else self.metadata.color_order
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.input_dtype = np.float16 if "float16" in inputs[0].type else np.float32

    # -- public API -----------------------------------------------------------------------
    def count(self, frame: np.ndarray) -> CountResult:
        """Count one BGR (or grey/BGRA, 8/16-bit) frame."""
        return self.count_batch([frame])[0]

    def count_batch(self, frames: Sequence[np.ndarray]) -> list[CountResult]:
        """Count several frames; frames of one size run as one batch."""
        t0 = time.perf_counter()
        self.session_ms = 0.0
        results: list[CountResult | None] = [None] * len(frames)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, f in enumerate(frames):
            hw = (int(f.shape[0]), int(f.shape[1])) if getattr(f, "ndim", 0) >= 2 else (0, 0)
            groups.setdefault(hw, []).append(i)
        for (h, w), idx in groups.items():
            dens = self._densities([frames[i] for i in idx])

            def post(d: np.ndarray, hw: tuple[int, int] = (h, w)) -> CountResult:
                # a count is never negative (models without a clamp in their head can sum
                # slightly below zero on blank frames); the map itself is left as calibrated
                c = float(d.sum(dtype=np.float64))
                c = max(0.0, c) if np.isfinite(c) else c  # NaN stays NaN: the pipeline skips it
                return CountResult(c, density_to_frame(d, hw), 0.0)

            for i, r in zip(idx, self._map(post, dens), strict=True):
                results[i] = r
        ms = (time.perf_counter() - t0) * 1000.0
        done: list[CountResult] = []
        for r in results:
            assert r is not None
            r.latency_ms = ms
            r.batch = len(frames)
            done.append(r)
        return done

    # -- internals ------------------------------------------------------------------------
    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        """``[fn(x) for x in items]``, on the host threads when there are several items.

        OpenCV's resize and NumPy's element-wise loops release the GIL, so the per-frame work
        of a batch runs in parallel (a GPU's batch is otherwise waiting on one CPU core).
        """
        if len(items) < 2 or self.host_threads < 2:
            return [fn(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.host_threads, thread_name_prefix="engine-host")
            weakref.finalize(self, self._pool.shutdown, wait=False)
        return list(self._pool.map(fn, items))

    def _densities(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Model-space density maps (divided by the density scale) of same-size frames."""
        h, w = frames[0].shape[:2]
        mh, mw = self.pre.model_size(h, w)
        if max(mh, mw) > self.metadata.max_side:
            return [self._tiled(self.pre(f)) for f in frames]
        m = max(1, int(self.metadata.size_multiple))
        ph, pw = -(-mh // m) * m, -(-mw // m) * m
        buf = self._buffer(len(frames), ph, pw)
        cast = None if self.input_dtype == np.float32 else \
            self._buffer(len(frames), ph, pw, self.input_dtype)

        def pre(k: int) -> None:
            self.pre(frames[k], out=buf[k, :, :mh, :mw])
            if cast is not None:
                cast[k] = buf[k]  # the fp16 cast, frame by frame on the host threads

        self._map(pre, range(len(frames)))
        out = self._run(buf if cast is None else cast)
        scale = float(self.metadata.density_scale) / self.gain
        return [out[k, 0, :mh, :mw] / scale for k in range(len(frames))]

    def _buffer(self, n: int, h: int, w: int, dtype: Any = np.float32) -> np.ndarray:
        key = (n, h, w, np.dtype(dtype).name)
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) > 8:  # frame sizes changed a lot: do not grow without bound
                self._buffers.clear()
            buf = np.zeros((n, self.pre.channels, h, w), dtype)
            self._buffers[key] = buf
        return buf

    def _run(self, batch: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        x = batch if batch.dtype == self.input_dtype else batch.astype(self.input_dtype)
        if self._io_binding:
            binding = self.session.io_binding()
            binding.bind_cpu_input(self.input_name, x)
            binding.bind_output(self.output_name, "cuda")
            self.session.run_with_iobinding(binding)
            out = binding.copy_outputs_to_cpu()[0]
        else:
            out = self.session.run([self.output_name], {self.input_name: x})[0]
        self.session_ms += (time.perf_counter() - t0) * 1000.0
        return out.astype(np.float32, copy=False)

    def _tiled(self, x: np.ndarray) -> np.ndarray:
        """Density of one large ``C x H x W`` input, tile by tile."""
        _, h, w = x.shape
        side = int(self.metadata.max_side)
        m = max(1, int(self.metadata.size_multiple))
        side -= side % m
        out = np.zeros((h, w), np.float32)
        scale = float(self.metadata.density_scale) / self.gain
        for t in plan_tiles(h, w, side, int(self.metadata.tile_overlap)):
            th, tw = t.y1 - t.y0, t.x1 - t.x0
            buf = self._buffer(1, -(-th // m) * m, -(-tw // m) * m)
            buf[0, :, :th, :tw] = x[:, t.y0 : t.y1, t.x0 : t.x1]
            d = self._run(buf)[0, 0, :th, :tw] / scale
            out[t.oy0 : t.oy1, t.ox0 : t.ox1] = d[
                t.oy0 - t.y0 : t.oy1 - t.y0, t.ox0 - t.x0 : t.ox1 - t.x0
            ]
        return out
