"""How fast a network trains on this CPU in each precision: crops a minute of a training step.

One step is what the trainer does with a batch: forward, the loss, backward and an AdamW
update, channels-last on CPU as in ``streamcount train``. ``bf16`` runs the step under
``torch.autocast("cpu", dtype=torch.bfloat16)`` (what a recipe's ``precision = "bf16"`` does);
``bf16-weights`` casts the whole network and batch to bf16, an upper bound on what bf16 kernels
(AVX512-BF16, AMX) can give without autocast's casts. Precisions are interleaved over
``--rounds`` rounds and the median step time of each is kept, so a busy minute on the machine
does not land on one precision alone. Run it with nothing else on the CPU.

    python benchmarks/bench_train_step.py                       # the crowd recipe's network
    python benchmarks/bench_train_step.py --arch unet --model-arg filters=16 --patch 256 --batch 16
    python benchmarks/bench_train_step.py --precisions fp32,bf16 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from typing import Any

from streamcount.training.train_cli import parse_model_arg

#: What ``--precisions`` accepts.
PRECISIONS = ("fp32", "bf16", "bf16-weights")


def parse_precisions(text: str) -> list[str]:
    """Comma-separated precisions, each one of :data:`PRECISIONS`.

    Example:
        >>> parse_precisions("fp32,bf16")
        ['fp32', 'bf16']
    """
    out = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in out if p not in PRECISIONS]
    if bad or not out:
        raise argparse.ArgumentTypeError(
            f"unknown precision {', '.join(bad) or '(none)'}: choose from {', '.join(PRECISIONS)}")
    return out


def cpu_info() -> dict[str, Any]:
    """CPU model, core count and the SIMD flags that decide fp32/bf16 speed."""
    import os

    from streamcount.precision import cpu_flags, cpu_model

    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16")
    return {"cores": os.cpu_count(), "model": cpu_model(),
            "simd": [f for f in wanted if f in flags]}


def time_steps(model: Any, precision: str, batch: int, patch: int, steps: int,
               warmup: int) -> list[float]:
    """Seconds of each of ``steps`` training steps after ``warmup`` untimed ones.

    The model is trained in place (its weights move): the steps measure speed, not accuracy.
    """
    import torch

    x = torch.randn(batch, 3, patch, patch).contiguous(memory_format=torch.channels_last)
    net = model.to(torch.bfloat16 if precision == "bf16-weights" else torch.float32)
    x = x.to(torch.bfloat16) if precision == "bf16-weights" else x
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def ctx() -> Any:
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    times: list[float] = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with ctx():
            y = net(x)
        loss = y.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="unet_effl0", help="registered architecture")
    ap.add_argument("--model-arg", dest="model_args", type=parse_model_arg, action="append",
                    default=[], metavar="KEY=VALUE",
                    help="constructor argument (default for unet_effl0: the crowd recipe's "
                         "decoder_channels=64, decoder_norm=none)")
    ap.add_argument("--batch", type=int, default=8, help="crops a step (crowd recipe: 8)")
    ap.add_argument("--patch", type=int, default=320, help="crop side, px (crowd recipe: 320)")
    ap.add_argument("--precisions", type=parse_precisions, default=["fp32", "bf16"],
                    help=f"comma-separated, of {', '.join(PRECISIONS)}")
    ap.add_argument("--steps", type=int, default=4, help="timed steps a round and precision")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before each round")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = ap.parse_args()
    for name in ("batch", "patch", "steps", "rounds"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be at least 1, got {getattr(args, name)}",
                  file=sys.stderr)
            return 2
    if args.warmup < 0 or args.threads < 0:
        print("error: --warmup and --threads must be 0 or more", file=sys.stderr)
        return 2

    import torch

    from streamcount.training.models import available, build_model

    if args.arch not in available():
        print(f"error: unknown architecture {args.arch!r}: choose from "
              f"{', '.join(available())}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    kwargs: dict[str, Any] = {"in_channels": 3}
    if args.arch.startswith("unet_eff"):
        kwargs.update(decoder_channels=64, decoder_norm="none", pretrained=False)
    kwargs.update(dict(args.model_args))
    try:
        model = build_model(args.arch, **kwargs)
    except TypeError as exc:
        print(f"error: {args.arch} does not take these --model-arg values: {exc}",
              file=sys.stderr)
        return 2
    model = model.to(memory_format=torch.channels_last).train()
    times: dict[str, list[float]] = {p: [] for p in args.precisions}
    for _ in range(args.rounds):
        for p in args.precisions:
            times[p] += time_steps(model, p, args.batch, args.patch, args.steps, args.warmup)
    rows = []
    for p, ts in times.items():
        med = statistics.median(ts)
        rows.append({"precision": p, "step_s": round(med, 4),
                     "crops_per_minute": round(60.0 * args.batch / med, 1), "steps": len(ts)})
    result = {"arch": args.arch, "model_args": dict(kwargs),
              "batch": args.batch, "patch": args.patch, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "cpu": cpu_info(), "results": rows}
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console
    from rich.table import Table

    cpu = result["cpu"]
    table = Table(title=f"{args.arch} training step, batch {args.batch} of {args.patch}px, "
                        f"{result['threads']} threads; {cpu['model']} "
                        f"({', '.join(cpu['simd']) or 'no AVX2'})")
    for col in ("precision", "median step (s)", "crops a minute", "steps"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["precision"], f"{r['step_s']:.3f}", f"{r['crops_per_minute']:.0f}",
                      str(r["steps"]))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
