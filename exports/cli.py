"""``streamcount export``: checkpoint -> ONNX (fp32, fp16 or int8), verified."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from streamcount.errors import InputError, require
from streamcount.settings import within

HELP = "export a checkpoint to ONNX with metadata; --verify, --fp16, --int8 (needs train extra)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``streamcount export``."""
    p.add_argument("checkpoint", type=Path, help="best.pt from `streamcount train`")
    p.add_argument("--out", type=Path, required=True, help="destination .onnx")
    p.add_argument("--name", default="", help="model name stored in the metadata")
    p.add_argument("--verify", action="store_true",
                   help="compare torch and ONNX Runtime on several sizes (1e-4 relative)")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true", help="fp16 weights (for GPUs)")
    prec.add_argument("--int8", action="store_true", help="static int8 QDQ (needs --calibration)")
    p.add_argument("--calibration", action="append",
                   help="folder or glob of real images for --int8 (repeatable: varied scenes, "
                        "each an equal share)")
    p.add_argument("--calibration-images", type=int, default=64, metavar="N",
                   help="calibration images used, spread over the --calibration sources (64)")
    p.add_argument("--check", action="append",
                   help="other images to measure the int8 drift on (repeatable; default: the "
                        "calibration images)")
    p.add_argument("--max-drift", type=float, default=0.01,
                   help="refuse int8 when its mean relative count drift vs fp32 is above this "
                        "(0.01)")
    p.add_argument("--max-drift-max", type=float, default=0.03,
                   help="refuse int8 when one image drifts more than this (0.03)")
    p.add_argument("--fp32-edges", default="1,2", metavar="FIRST,LAST",
                   help="first and last convolutions kept in fp32 (1,2: stem and density head)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Export, optionally verify and quantize."""
    require("torch", "train")
    require("onnx", "train")
    from rich.console import Console

    from streamcount.exports.onnx import export_checkpoint
    from streamcount.exports.quantize import convert_fp16, quantize_int8

    if args.int8 and not args.calibration:
        raise InputError("--int8 needs --calibration DIR (a folder of real images)")
    if args.out.suffix.lower() != ".onnx":
        raise InputError(f"--out {args.out}: use a path ending in .onnx")
    try:
        edges = tuple(int(v) for v in args.fp32_edges.split(","))
    except ValueError:
        edges = ()
    if len(edges) != 2 or min(edges) < 0:
        raise InputError(f"--fp32-edges {args.fp32_edges!r}: give FIRST,LAST as two "
                         "non-negative integers, e.g. 1,2")
    if not 1 <= args.calibration_images <= 100_000:
        raise InputError(f"--calibration-images must be from 1 to 100000, got "
                         f"{args.calibration_images}")
    for flag, value in (("--max-drift", args.max_drift), ("--max-drift-max", args.max_drift_max)):
        if not within(value, 0, 1, above=True):
            raise InputError(f"{flag} must be a share above 0 and at most 1 (0.01 is 1 %), "
                             f"got {value}")
    report: dict[str, object] = {"out": str(args.out)}
    with tempfile.TemporaryDirectory() as d:
        fp32 = args.out if not (args.fp16 or args.int8) else Path(d) / "fp32.onnx"
        res = export_checkpoint(args.checkpoint, fp32, name=args.name, do_verify=args.verify)
        report["precision"] = "fp32"
        if res.max_rel_diff is not None:
            report["verify_max_rel_diff"] = res.max_rel_diff
        if args.fp16:
            convert_fp16(fp32, args.out)
            report["precision"] = "fp16"
        if args.int8:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            with Progress(TextColumn("int8: {task.description}"), BarColumn(),
                          MofNCompleteColumn(), console=Console(stderr=True), transient=True,
                          disable=args.json) as progress:
                drift = quantize_int8(fp32, args.out, args.calibration,
                                      max_drift=args.max_drift, check=args.check,
                                      fp32_edges=edges, limit=args.calibration_images,
                                      max_drift_max=args.max_drift_max, progress=progress)
            report["precision"] = "int8"
            report["int8_drift"] = drift.__dict__
    if args.json:
        print(json.dumps(report))
        return 0
    c = Console()
    c.print(f"wrote [bold]{args.out}[/] ({report['precision']}, {res.metadata.architecture})")
    if "verify_max_rel_diff" in report:
        c.print(f"verified against torch: max relative count difference "
                f"{report['verify_max_rel_diff']:.2e} (limit 1e-4)")
    if args.int8:
        dr = report["int8_drift"]
        assert isinstance(dr, dict)  # drift.__dict__, set above
        c.print(f"int8 vs fp32 on {dr['n_images']} images: mean drift {dr['mean_rel']:.2%}, "
                f"max {dr['max_rel']:.2%}")
    return 0
