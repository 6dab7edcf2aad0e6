"""``streamcount info``: versions, providers and bundled models."""

from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Any

HELP = "versions, ONNX Runtime providers (and the one that really works), bundled models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount info``."""
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--cards", action="store_true", help="print each bundled model's card")


def gather() -> dict[str, Any]:
    """Everything ``info`` shows, as a dict."""
    import cv2
    import numpy as np
    import onnxruntime as ort

    from streamcount import __version__
    from streamcount.models import DEFAULT_MODEL, bundled_models, int8_variant
    from streamcount.precision import choose_precision, cpu_flags, cpu_model, int8_dot_flag
    from streamcount.providers import create_session, gpu_providers_present, usable_device

    models: dict[str, dict[str, Any]] = {}
    for name, path in bundled_models().items():
        info = create_session(path, "cpu")
        meta = dict(info.session.get_modelmeta().custom_metadata_map)
        models[name] = {
            "path": str(path),
            "size_mb": round(path.stat().st_size / 1e6, 2),
            "architecture": meta.get("streamcount.architecture", "?"),
            "precision": meta.get("streamcount.precision", "?"),
            "input_scale": meta.get("streamcount.input_scale", "?"),
            "metrics": json.loads(meta.get("streamcount.metrics", "{}")),
            "int8_variant": int8_variant(name) is not None,
        }
    from importlib.metadata import PackageNotFoundError, version

    def installed(dist: str, why: str) -> str:
        try:
            return version(dist)  # without importing it (torch and ray are slow to import)
        except PackageNotFoundError:
            return f"not installed ({why})"

    torch_v = installed("torch", "needed only for prepare/train/evaluate/export")
    ray_v = installed("ray", "needed only for `streamcount fleet`: the cluster extra")
    flags = cpu_flags()
    in_use = usable_device("auto")
    choice = choose_precision("auto", int8_variant(DEFAULT_MODEL) is not None, in_use == "cpu",
                              flags)
    shown = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8",
             "amx_bf16")
    return {
        "streamcount": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": ort.__version__,
        "torch": torch_v,
        "ray": ray_v,
        "providers_installed": ort.get_available_providers(),
        "gpu_libraries": gpu_providers_present(),
        "provider_in_use": in_use,
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(),
                "flags": [f for f in shown if f in flags], "int8_dot": int8_dot_flag(flags)},
        "precision_auto": f"{DEFAULT_MODEL}: {choice.precision} ({choice.reason})",
        "models": models,
    }


def run(args: argparse.Namespace) -> int:
    """Print the information."""
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.table import Table

    from streamcount.models import model_card

    data = gather()
    if args.json:
        print(json.dumps(data))
        return 0
    c = Console()
    t = Table(show_header=False, title="streamcount")
    for k, v in data.items():
        if k != "models":
            t.add_row(k, str(v))
    c.print(t)
    mt = Table(title="bundled models")
    names = list(data["models"])
    # the names are what one types: never cut them; other columns wrap instead
    mt.add_column("name", no_wrap=True, min_width=max((len(n) for n in names), default=4))
    for col in ("architecture", "precision", "input scale", "MB", "validation"):
        mt.add_column(col, overflow="fold")
    for name, m in data["models"].items():
        metrics = ", ".join(f"{k} {v:.2f}" for k, v in m["metrics"].items() if k in ("mae", "rmse"))
        prec = m["precision"] + (" + int8" if m["int8_variant"] else "")
        mt.add_row(name, m["architecture"], prec, str(m["input_scale"]),
                   str(m["size_mb"]), metrics)
    c.print(mt)
    if args.cards:
        for name in data["models"]:
            c.print(Markdown(model_card(name)))
    return 0
