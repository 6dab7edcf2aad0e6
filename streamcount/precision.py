"""Which precision of a model to run: by what the CPU offers, never a slower path.

Bundled models may ship an int8 variant beside the fp32 file (``models/int8/NAME.onnx``).
ONNX Runtime's int8 convolutions (U8S8) are fast only where the CPU has an int8 dot-product
instruction: AVX-512 VNNI, AVX-VNNI or AMX. Elsewhere (AVX2 only) they are no faster than fp32
and count slightly differently, so ``auto`` keeps fp32 there.

Example:
    >>> choose_precision("auto", has_variant=True, on_cpu=True, flags={"avx2"}).precision
    'fp32'
    >>> choose_precision("auto", has_variant=True, on_cpu=True, flags={"avx512_vnni"}).precision
    'int8'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from streamcount.errors import InputError, ModelError

PRECISIONS = ("auto", "fp32", "int8")
#: CPU flags (as /proc/cpuinfo names them) of an int8 dot product that ONNX Runtime uses.
INT8_DOT_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")


@dataclass(frozen=True)
class PrecisionChoice:
    """What precision runs, and why.

    Attributes:
        precision: ``fp32`` or ``int8``.
        reason: One line for ``info``, the dashboard and the summary.
    """

    precision: str
    reason: str


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not readable)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def int8_dot_flag(flags: Iterable[str]) -> str | None:
    """The best int8 dot-product flag present, or None."""
    have = set(flags)
    return next((f for f in INT8_DOT_FLAGS if f in have), None)


def choose_precision(requested: str, has_variant: bool, on_cpu: bool,
                     flags: Iterable[str] | None = None) -> PrecisionChoice:
    """Pick fp32 or int8.

    Args:
        requested: ``auto``, ``fp32`` or ``int8``.
        has_variant: An int8 variant of the model exists.
        on_cpu: The session runs on the CPU (int8 is a CPU path; GPUs keep fp32).
        flags: CPU flags (default: this machine's).

    Raises:
        InputError: unknown precision.
        ModelError: ``int8`` asked for, and the model has no int8 variant.
    """
    if requested not in PRECISIONS:
        raise InputError(f"unknown precision '{requested}': use one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return PrecisionChoice("fp32", "asked for (--precision fp32)")
    if requested == "int8":
        if not has_variant:
            raise ModelError("this model has no int8 variant: use --precision fp32 or auto, or "
                             "make one with `streamcount export CKPT --int8 --calibration DIR`")
        return PrecisionChoice("int8", "asked for (--precision int8)")
    if not has_variant:
        return PrecisionChoice("fp32", "no int8 variant of this model")
    if not on_cpu:
        return PrecisionChoice("fp32", "running on a GPU: int8 is the CPU path")
    flag = int8_dot_flag(cpu_flags() if flags is None else flags)
    if flag is None:
        return PrecisionChoice("fp32", "CPU has no VNNI or AMX: int8 is not faster here")
    return PrecisionChoice("int8", f"CPU has {flag}: int8 convolutions are faster")
