"""Choosing an ONNX Runtime execution provider and telling which one really runs.

ONNX Runtime silently falls back to the CPU when the CUDA or TensorRT libraries are missing;
here a session is created and asked which providers it actually got.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamcount import defaults
from streamcount.errors import DeviceError, InputError, ModelError

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
_NAMES = {
    "TensorrtExecutionProvider": "tensorrt",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}


@dataclass
class SessionInfo:
    """A created session and what it runs on."""

    session: Any
    device: str  # "tensorrt", "cuda" or "cpu": the first provider really in use
    providers: list[str]


def _loadable(*names: str) -> bool:
    """True when one of these shared libraries can be loaded (a cheap presence check)."""
    import ctypes

    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def gpu_providers_present() -> dict[str, bool]:
    """Whether the NVIDIA driver (for CUDA) and TensorRT libraries can be loaded here.

    ONNX Runtime's GPU build lists the CUDA and TensorRT providers even on machines without a
    GPU and then prints errors and falls back; asking only for what can load keeps it quiet.
    """
    cuda = _loadable("libcuda.so.1", "libcuda.so", "nvcuda.dll")
    trt = cuda and _loadable("libnvinfer.so.10", "libnvinfer.so", "nvinfer_10.dll", "nvinfer.dll")
    return {"cuda": cuda, "tensorrt": trt}


def provider_chain(device: str, cache_dir: Path | None = None) -> list[Any]:
    """The providers to ask for, best first, for ``device``."""
    import onnxruntime as ort

    present = gpu_providers_present()
    avail = [
        p
        for p in ort.get_available_providers()
        if (p != "CUDAExecutionProvider" or present["cuda"])
        and (p != "TensorrtExecutionProvider" or present["tensorrt"])
    ]
    trt_opts: dict[str, bool | str] = {"trt_fp16_enable": True, "trt_engine_cache_enable": True}
    if cache_dir is not None:
        trt_opts["trt_engine_cache_path"] = str(cache_dir)
    chain: list[Any] = []
    if device in ("auto", "tensorrt") and "TensorrtExecutionProvider" in avail:
        chain.append(("TensorrtExecutionProvider", trt_opts))
    if device in ("auto", "cuda", "tensorrt") and "CUDAExecutionProvider" in avail:
        chain.append("CUDAExecutionProvider")
    chain.append("CPUExecutionProvider")
    return chain


def check_threads(threads: int) -> None:
    """Raise one clear error for an inference thread count out of 0-1024 (0: one per core).

    Example:
        >>> check_threads(2)
        >>> check_threads(-1)
        Traceback (most recent call last):
        ...
        streamcount.errors.InputError: --threads must be 0 (one per core) to 1024, got -1
    """
    if not 0 <= threads <= 1024:
        raise InputError(f"--threads must be 0 (one per core) to 1024, got {threads}")


def create_session(
    model_path: Path | bytes, device: str = defaults.DEVICE, threads: int = defaults.THREADS,
    cache_dir: Path | None = None
) -> SessionInfo:
    """Create an InferenceSession on the best usable provider for ``device``.

    Args:
        model_path: The ``.onnx`` file.
        device: ``auto`` (TensorRT, then CUDA, then CPU), ``cpu``, ``cuda`` or ``tensorrt``.
        threads: Intra-op threads (0: ONNX Runtime's default, one per core).
        cache_dir: TensorRT engine cache folder.

    Raises:
        DeviceError: ``cuda``/``tensorrt`` was asked for and is not usable here.
        ModelError: the file is not a loadable ONNX model.
    """
    import onnxruntime as ort

    if device not in DEVICES:
        raise DeviceError(f"unknown device '{device}': use one of {', '.join(DEVICES)}")
    ort.set_default_logger_severity(3)  # the fallback is detected below, not printed by ORT
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    check_threads(threads)
    if threads:
        so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    chain = provider_chain(device, cache_dir)
    try:
        model = model_path if isinstance(model_path, bytes) else str(model_path)
        sess = ort.InferenceSession(model, sess_options=so, providers=chain)
    except Exception as exc:  # ORT raises its own exception types for bad files
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        # in-memory bytes (the probe model) print as their repr, as str() of bytes always did
        where = repr(model_path) if isinstance(model_path, bytes) else str(model_path)
        if "escapes model directory" in msg:
            raise ModelError(
                f"{where} refused: its external weights point outside the model's folder"
            ) from exc
        raise ModelError(f"{where} is not a loadable ONNX model ({msg})") from exc
    got = sess.get_providers()
    real = _NAMES.get(got[0], got[0])
    if device in ("cuda", "tensorrt") and device != real:
        asked = "CUDAExecutionProvider" if device == "cuda" else "TensorrtExecutionProvider"
        raise DeviceError(
            f"--device {device} is not usable here: the session fell back to {got[0]} "
            f"({asked} needs an NVIDIA GPU with its CUDA and cuDNN libraries); "
            "use --device auto or cpu"
        )
    if device == "auto" and real == "cpu" and len(chain) > 1:
        logger.info("GPU providers are installed but not usable here; running on the CPU")
    return SessionInfo(session=sess, device=real, providers=got)


# A one-node ONNX model (Identity on a float[1]), serialized: probes providers without any model
# file and without the onnx package.
_PROBE = (
    "CAg6OwoQCgF4EgF5IghJZGVudGl0eRIFcHJvYmVaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAR"
)


def usable_device(device: str = defaults.DEVICE) -> str:
    """The provider ``device`` really gets on this machine (``cpu``, ``cuda`` or ``tensorrt``)."""
    import base64

    return create_session(base64.b64decode(_PROBE), device).device
