"""Speed benchmark: the seed-style PyTorch path against streamcount's engine and runner.

Run from the repository root (needs the dev extra for the torch and FLOP-count parts):

    python benchmarks/bench_engine.py                 # all bundled models, ~3-4 minutes on CPU
    python benchmarks/bench_engine.py --quick         # fewer cases, ~1 minute
    python benchmarks/bench_engine.py --mask-avx512   # as an AVX2-only CPU (CPUID faulting)

It measures, on the same frames (the example clip resized to 640x480):

- the seed-style path: PyTorch eager U-Net-64 at full resolution, batch 1, frame by frame;
- PyTorch eager on each bundled model's own architecture at its input size;
- each bundled model through the engine (fp32 and, when present, its ``-int8`` / ``-fp16``
  variant) at 640x480 and 320x240 frames, on every usable provider;
- a plain 3x3 convolution in ONNX Runtime, as this machine's practical fp32 peak;
- end to end ``streamcount run`` on a 640x480 file (decode, pre-processing, inference,
  post-processing, overlay, CSV and video writing), without and with the dashboard.

Results go to docs/benchmarks.json and docs/benchmarks.md (with the machine described).

``--mask-avx512`` reruns the whole benchmark with AVX-512, AVX-VNNI and AMX hidden from the
CPUID instruction (``benchmarks/cpuid_mask.c``, built with the system's C compiler and loaded
with LD_PRELOAD), so ONNX Runtime, numpy and OpenCV pick the kernels they pick on an AVX2-only
CPU; it needs a CPU and kernel with CPUID faulting (``cpuid_fault`` in /proc/cpuinfo) and
writes docs/avx2/. The clock and caches stay this machine's: it measures the AVX2 code paths
here, not another CPU.
Nothing here is a timed test; stop other heavy jobs first or the numbers mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamcount.engine import Counter  # noqa: E402
from streamcount.models import bundled_models  # noqa: E402

#: Set in the re-executed process of ``--mask-avx512``: the flags the mask hid.
MASK_ENV = "STREAMCOUNT_BENCH_CPUID_MASK"
#: /proc/cpuinfo names of the flags that benchmarks/cpuid_mask.c hides.
MASKED_FLAGS = ("avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
#: glibc reads CPUID before any preloaded library runs: its tunable (glibc's names) makes its
#: string functions take their AVX2 versions too.
GLIBC_MASK = "glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL"


def build_cpuid_mask(folder: Path) -> Path:
    """``benchmarks/cpuid_mask.c`` built into ``folder/cpuid_mask.so`` with the system's C
    compiler; exits with one line where there is none or the build fails."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("--mask-avx512: no C compiler (cc or gcc) to build benchmarks/cpuid_mask.c; "
                 "install one (Debian: apt-get install gcc)")
    lib = folder / "cpuid_mask.so"
    built = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib),
                            str(REPO / "benchmarks" / "cpuid_mask.c")],
                           capture_output=True, text=True)
    if built.returncode != 0:
        sys.exit(f"--mask-avx512: building benchmarks/cpuid_mask.c failed: "
                 f"{built.stderr.strip().splitlines()[-1:]}")
    return lib


def rerun_masked(argv: list[str], out: Path) -> None:
    """Build ``cpuid_mask.so`` and replace this process by the same benchmark under it.

    Exits with one line where it cannot: no CPUID faulting, no C compiler, a failed build.
    """
    from streamcount.precision import cpu_flags

    if "cpuid_fault" not in cpu_flags():
        sys.exit("--mask-avx512: this CPU or kernel has no CPUID faulting (no cpuid_fault flag "
                 "in /proc/cpuinfo), so the AVX2 paths cannot be forced here; run the "
                 "benchmark on an AVX2-only machine instead")
    lib = build_cpuid_mask(Path(tempfile.mkdtemp(prefix="cpuid_mask-")))
    env = {**os.environ, "LD_PRELOAD": str(lib), MASK_ENV: "1", "GLIBC_TUNABLES": GLIBC_MASK}
    rest = [a for a in argv if a != "--mask-avx512"]
    if "--out" not in rest:
        rest += ["--out", str(out)]
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *rest], env)


def mask_check() -> dict | None:
    """In a ``--mask-avx512`` process: evidence that the mask works (CPUID instructions it
    answered, what numpy's own CPUID reading found); None otherwise."""
    if not os.environ.get(MASK_ENV):
        return None
    import ctypes

    trapped = getattr(ctypes.CDLL(None), "cpuid_mask_trapped", None)
    if trapped is None:
        sys.exit("--mask-avx512: cpuid_mask.so is not loaded in this process (LD_PRELOAD lost)")
    trapped.restype = ctypes.c_ulong
    features = np._core._multiarray_umath.__cpu_features__
    return {"hidden": list(MASKED_FLAGS), "cpuid_traps": int(trapped()),
            "numpy_sees": {k: bool(features.get(k)) for k in ("AVX2", "AVX512F",
                                                                "AVX512_SPR")}}


def machine() -> dict:
    """CPU model, cores, SIMD flags; GPU card if any."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "CPU max MHz"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")
    info["simd"] = [f for f in wanted if f" {f}" in flags]
    masked = mask_check()
    if masked is not None:
        info["simd"] = [f for f in info["simd"] if f not in MASKED_FLAGS]
        info["cpuid_mask"] = masked
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        gpu = subprocess.run(query, capture_output=True, text=True).stdout.strip()
        info["gpu"] = gpu or "none"
    else:
        info["gpu"] = "none"
    import onnxruntime as ort

    info["onnxruntime"] = ort.__version__
    info["opencv"] = cv2.__version__
    return info


def conv_gflop(model_path: Path, h: int, w: int, batch: int = 1) -> float | None:
    """Convolution FLOPs (2 x MACs) of one forward pass at ``h x w`` model input, in GFLOP."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return None
    m = onnx.load(str(model_path))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (batch, None, h, w), strict=True):
        if v is not None:
            d.Clear()
            d.dim_value = v
    try:
        m = shape_inference.infer_shapes(m, data_prop=True)
    except Exception:
        return None
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    # QDQ models: weights come through DequantizeLinear nodes.
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    total = 0.0
    for n in m.graph.node:
        if n.op_type != "Conv":
            continue
        wshape = inits.get(n.input[1])
        out = shapes.get(n.output[0])
        if not wshape or not out or 0 in out:
            return None
        cout, cin_g, kh, kw = wshape
        total += 2.0 * out[0] * cout * out[2] * out[3] * cin_g * kh * kw
    return total / 1e9


def conv_gflop_torch(meta, h: int, w: int) -> float | None:
    """Convolution FLOPs (2 x MACs) of the model's torch architecture at ``h x w``, in GFLOP.

    Used when ONNX shape inference cannot resolve the exported graph's symbolic shapes. The
    network is rebuilt from the constructor arguments in the metadata (or, for older files,
    from the architecture label).
    """
    try:
        import torch  # noqa: F401

        from streamcount.training.models import build_model
    except ImportError:
        return None
    if meta.model:
        arch = meta.model["architecture"]
        kwargs = {k: v for k, v in meta.model.items() if k != "architecture"}
    else:
        arch, _, width = meta.architecture.partition("-")  # "unet-16", or "unet-16x2"
        m = re.fullmatch(r"(\d+)(?:x(\d+))?", width)
        kwargs = {"in_channels": meta.in_channels}
        if arch == "unet" and m:
            kwargs.update(filters=int(m.group(1)), growth=int(m.group(2) or 1))
    try:
        net = build_model(arch, **kwargs).eval()
    except Exception:
        return None
    return _torch_conv_gflop(net, meta.in_channels, h, w)


def _torch_conv_gflop(net, in_channels: int, h: int, w: int) -> float:
    import torch

    total = [0.0]

    def hook(mod: torch.nn.Conv2d, _inp: object, out: torch.Tensor) -> None:
        kh, kw = mod.kernel_size
        cin = mod.in_channels // mod.groups
        total[0] += 2.0 * out.numel() * cin * kh * kw

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, in_channels, h, w))
    for hd in handles:
        hd.remove()
    return total[0] / 1e9


def time_fn(fn, seconds: float, min_runs: int = 3) -> list[float]:
    """Latencies (ms) of ``fn`` after one warm-up, for about ``seconds``."""
    fn()
    lat = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(lat) < min_runs:
        t0 = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def summary(lat: list[float], frames_per_call: int = 1) -> dict:
    med = statistics.median(lat)
    return {"median_ms": round(med, 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
            "fps": round(1000 * frames_per_call / med, 2), "runs": len(lat)}


def frames_640(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(REPO / "examples" / "pets2009_s2l1.mp4"))
    out = []
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        out.append(cv2.resize(f, (640, 480), interpolation=cv2.INTER_LINEAR))
    return out


def int8_variants(models: dict, tmp: Path, names: tuple[str, ...] = ("crowd",)) -> dict:
    """int8 variants to time: the shipped ones (``models/int8/NAME.onnx``), else made here.

    A model without a shipped variant is quantized by the benchmark itself (static QDQ, stem
    and head in fp32, calibrated on example-clip frames) to measure whether int8 would pay off
    on this CPU. Needs the onnx package (train extra) for that; skipped without it.
    """
    from streamcount.models import int8_variant

    out = {}
    for name in models:
        v = int8_variant(name)
        if v is not None:
            out[f"{name}-int8"] = v
    missing = [n for n in names if n in models and f"{n}-int8" not in out]
    if not missing:
        return out
    try:
        from streamcount.exports.quantize import quantize_int8
    except ImportError:
        return out
    calib = tmp / "calibration"
    calib.mkdir(exist_ok=True)
    for i, f in enumerate(frames_640(120)[::4]):
        cv2.imwrite(str(calib / f"{i:03d}.jpg"), f)
    for name in missing:
        dst = tmp / f"{name}-int8.onnx"
        report = quantize_int8(models[name], dst, calib, max_drift=1.0, limit=30)
        print(f"{name}-int8 (made here): count drift against fp32 {report.mean_rel:.2%} mean",
              flush=True)
        out[f"{name}-int8"] = dst
    return out


def session_sweep(model: Path, seconds: float) -> list[dict]:
    """ONNX Runtime session settings on one model at 320x240: threads, spinning, arena."""
    import onnxruntime as ort

    c = Counter(model, device="cpu", precision="fp32")
    x = np.zeros((1, c.metadata.in_channels, 240, 320), np.float32)
    rows = []
    cores = os.cpu_count() or 1
    for threads in sorted({1, cores}):
        for spin in ("1", "0"):
            for arena in (True, False):
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                so.enable_cpu_mem_arena = arena
                so.add_session_config_entry("session.intra_op.allow_spinning", spin)
                sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
                name = sess.get_inputs()[0].name
                lat = time_fn(lambda sess=sess, name=name: sess.run(None, {name: x}), seconds)
                rows.append({"threads": threads, "spinning": spin == "1", "arena": arena,
                             **summary(lat)})
    return rows


def plain_conv_peak(seconds: float, c: int = 64, h: int = 120, w: int = 160) -> dict:
    """GFLOP/s of ONNX Runtime on a stack of four plain 3x3 convolutions (c -> c, w x h).

    The default (64 channels, 160x120) is this machine's practical peak; with the shipped
    models' width (16 channels at 320x240) it is what the same convolutions reach alone.
    """
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return {}
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(4):
        wt = rng.normal(0, 0.05, (c, c, 3, 3)).astype(np.float32)
        inits.append(numpy_helper.from_array(wt, f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"y{i}"], pads=[1, 1, 1, 1]))
        prev = f"y{i}"
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])
    y_info = helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "convs", [x_info], [y_info], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.normal(0, 1, (1, c, h, w)).astype(np.float32)
    lat = time_fn(lambda: sess.run(None, {"x": x}), seconds)
    gflop = 4 * 2 * c * c * 9 * h * w / 1e9
    s = summary(lat)
    s["gflops"] = round(gflop / (s["median_ms"] / 1000), 1)
    s["shape"] = f"{c}->{c} channels, {w}x{h}"
    return s


def torch_cases(frames: list[np.ndarray], models: dict, seconds: float, quick: bool) -> list[dict]:
    try:
        import torch
    except ImportError:
        return []
    from streamcount.training.models import build_model

    rows = []
    torch.set_grad_enabled(False)
    x640 = torch.from_numpy(frames[0][..., ::-1].astype(np.float32).transpose(2, 0, 1)[None] / 255)
    seed = build_model("unet", filters=64, n_convs=2).eval()
    lat = time_fn(lambda: seed(x640), seconds if not quick else 1, min_runs=2)
    rows.append({"case": "seed-style torch eager U-Net-64, 640x480, batch 1", "path": "torch",
                 "model_input": "640x480", **summary(lat)})
    for name, path in models.items():
        c = Counter(path, device="cpu", precision="fp32")
        meta = c.metadata
        if meta.model:  # the constructor arguments, stored by the exporter
            kwargs = {k: v for k, v in meta.model.items() if k != "architecture"}
            net = build_model(meta.model["architecture"], **kwargs).eval()
        else:  # older files: parse the label ("unet-16")
            arch, _, width = meta.architecture.partition("-")
            kwargs = {"filters": int(width)} if arch == "unet" and width else {}
            net = build_model(arch, in_channels=meta.in_channels, **kwargs).eval()
        mh, mw = c.pre.model_size(480, 640)
        x = torch.nn.functional.interpolate(x640, size=(mh, mw), mode="area")
        lat = time_fn(lambda net=net, x=x: net(x), seconds)
        rows.append({"case": f"torch eager {meta.architecture} ({name}), frame 640x480",
                     "path": "torch", "model_input": f"{mw}x{mh}", **summary(lat)})
    return rows


def engine_cases(frames: list[np.ndarray], models: dict, seconds: float) -> list[dict]:
    from streamcount.providers import usable_device

    devices = ["cpu"]
    best = usable_device("auto")
    if best != "cpu":
        devices += ["cuda"] + (["tensorrt"] if best == "tensorrt" else [])
    rows = []
    for name, path in models.items():
        for dev in devices:
            c = Counter(path, device=dev, precision="fp32")
            for fw, fh in ((640, 480), (320, 240)):
                f = cv2.resize(frames[0], (fw, fh), interpolation=cv2.INTER_AREA)
                lat = time_fn(lambda c=c, f=f: c.count(f), seconds)
                mh, mw = c.pre.model_size(fh, fw)
                g = conv_gflop(path, mh, mw) or conv_gflop_torch(c.metadata, mh, mw)
                s = summary(lat)
                row = {"case": f"engine {name} ({c.metadata.precision})", "path": f"ort-{c.device}",
                       "frame": f"{fw}x{fh}", "model_input": f"{mw}x{mh}", **s}
                if g:
                    row["conv_gflop"] = round(g, 3)
                    row["gflops"] = round(g / (s["median_ms"] / 1000), 1)
                rows.append(row)
    return rows


def e2e_cases(model: str, n_frames: int, precisions: tuple[str, ...] = ("fp32", "auto")
              ) -> list[dict]:
    """``streamcount run`` on a 640x480 file, for each precision (``auto`` gives int8 on VNNI
    CPUs when the model ships a variant): counts to CSV (an analyst's run), and the same plus
    an annotated H.264 video, without and with the dashboard (pseudo-terminal)."""
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = d / "clip640.mp4"
        frames = frames_640(n_frames)
        vw = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
        for f in frames:
            vw.write(f)
        vw.release()
        cases = []
        for prec in precisions:
            base = [sys.executable, "-m", "streamcount", "run", str(src), "--model", model,
                    "--precision", prec, "--csv", str(d / "c.csv"), "--quiet",
                    "--summary-json", str(d / "s.json")]
            video = [*base, "--video", str(d / "o.mp4")]
            cases += [(f"{prec}, CSV, no dashboard", [*base, "--no-dashboard"], base),
                      (f"{prec}, CSV + video, no dashboard", [*video, "--no-dashboard"], video),
                      (f"{prec}, CSV + video, dashboard (pty)", None, video)]
        for label, cmd, base in cases:
            (d / "o.mp4").unlink(missing_ok=True)
            if cmd is None:
                if not shutil.which("script"):
                    continue
                cmd = ["script", "-qec", " ".join(base), "/dev/null"]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                                 env={**os.environ, "COLUMNS": "120", "LINES": "40"})
            if out.returncode != 0:
                rows.append({"case": f"e2e run ({label})", "error": out.stderr[-300:]})
                continue
            s = json.loads((d / "s.json").read_text())
            rows_csv = len((d / "c.csv").read_text().splitlines()) - 1
            nvid = None
            if (d / "o.mp4").exists():
                cap = cv2.VideoCapture(str(d / "o.mp4"))
                nvid = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            rows.append({"case": f"e2e streamcount run 640x480 ({label}), {model} "
                                 f"[{s.get('precision', '?')}]",
                         "path": f"run-{s['provider']}", "frames": len(frames),
                         "csv_rows": rows_csv, "video_frames": nvid,
                         "e2e_fps": s["e2e_fps"], "engine_fps": s["engine_fps"],
                         "pipeline_overhead": round(1 - s["e2e_fps"] / s["engine_fps"], 3)
                         if s["engine_fps"] else None})
    return rows


#: End-to-end targets (fps on 2 cores) of the model ``streamcount run`` timed, by CPU kind:
#: issue 18's for the default model, issue 12's for ``crowd-accurate``.
#: Each is ``(CPU kind, fps, whether that kind has an int8 dot product)``.
E2E_TARGETS = {"crowd": (("an AVX2 machine", 30.0, False), ("a VNNI machine", 60.0, True)),
               "crowd-accurate": (("an AVX2 machine", 15.0, False),)}


def targets(result: dict) -> list[tuple[str, str, str]]:
    """Issue 18's speed targets against this run: ``(target, measured, verdict)`` rows.

    The end-to-end targets are those of the model timed (``result["e2e_model"]``, default
    ``crowd``; :data:`E2E_TARGETS`); a model without targets gets none.

    A target this machine cannot test (the AVX2 one on a VNNI CPU, and the reverse) says so
    rather than passing; the int8 count targets are measured per model by
    ``streamcount export --int8`` and ``benchmarks/engine_eval.py`` (model cards), not here.

    Example:
        >>> r = {"machine": {"simd": ["avx2"]}, "latency": [], "e2e": [], "plain_conv_16": None}
        >>> [row[2] for row in targets(r)][:2]
        ['not measured', 'not testable here (this CPU has no VNNI or AMX)']
    """
    from streamcount.precision import int8_dot_flag

    vnni = int8_dot_flag(result["machine"]["simd"])
    csv = [r for r in result["e2e"] if "e2e_fps" in r and r["video_frames"] is None]
    best = max((r["e2e_fps"] for r in csv), default=None)
    seed = next((r["fps"] for r in result["latency"] if r["case"].startswith("seed-style")), None)
    rows: list[tuple[str, str, str]] = []
    fps_txt = "no end-to-end run" if best is None else f"{best:.1f} fps"
    model = result.get("e2e_model", "crowd")
    for kind, need, int8_dot in E2E_TARGETS.get(model, ()):
        here = int8_dot == (vnni is not None)
        label = "the default model" if model == "crowd" else f"`{model}`"
        target = f"`streamcount run`, {label}, 640x480, >= {need:.0f} fps on {kind}"
        if not here:
            other = "VNNI or AMX, not AVX2 only" if vnni else "no VNNI or AMX"
            rows.append((target, "", f"not testable here (this CPU has {other})"))
        elif best is None:
            rows.append((target, fps_txt, "not measured"))
        else:
            rows.append((target, fps_txt, "met" if best >= need else "missed"))
    rows.sort(key=lambda r: r[2].startswith("not testable"))
    if best is not None and seed:
        ratio = best / seed
        rows.append((">= 60x the seed-style path in the same run",
                     f"{best:.1f} / {seed:.2f} fps = {ratio:.0f}x",
                     "met" if ratio >= 60 else "missed"))
    narrow = result.get("plain_conv_16")
    for r in result["latency"]:
        if narrow and r.get("gflops") and r["path"] != "torch" and "(fp32)" in r["case"]:
            pct = r["gflops"] / narrow["gflops"]
            rows.append((f"engine >= 85% of plain 16-channel convolution: {r['case']}, "
                         f"{r.get('frame', '640x480')} frame",
                         f"{r['gflops']} / {narrow['gflops']} GFLOP/s = {pct:.0%}",
                         "met" if pct >= 0.85 else "missed"))
    return rows


def write_markdown(result: dict, path: Path) -> None:
    m = result["machine"]
    lines = ["# Benchmarks", "",
             f"Measured {result['date']} with `python benchmarks/bench_engine.py`"
             f"{' --quick' if result['quick'] else ''}.", "",
             f"Machine: {m.get('Model name', '?')}, {m.get('CPU(s)', '?')} cores, "
             f"SIMD {', '.join(m['simd']) or 'none'}; GPU: {m['gpu']}; "
             f"ONNX Runtime {m['onnxruntime']}, OpenCV {m['opencv']}, Python {m['python']}.", ""]
    if m.get("cpuid_mask"):
        mk = m["cpuid_mask"]
        lines += [f"**Run with `--mask-avx512`**: {', '.join(mk['hidden'])} hidden from CPUID "
                  f"(`benchmarks/cpuid_mask.c`; {mk['cpuid_traps']} CPUID instructions of this "
                  f"process answered masked; numpy's own reading: {mk['numpy_sees']}), so the "
                  "libraries ran the kernels they pick on an AVX2-only CPU. The clock, caches "
                  "and memory are this machine's, not an AVX2 CPU's.", ""]
    peak = result.get("plain_conv")
    narrow = result.get("plain_conv_16")
    if peak:
        lines += [f"ONNX Runtime on plain 3x3 convolutions (64->64 channels, 160x120): "
                  f"**{peak['gflops']} GFLOP/s** fp32, this machine's practical peak."]
    if narrow:
        lines += [f"The same at the shipped models' width ({narrow['shape']}): "
                  f"**{narrow['gflops']} GFLOP/s**; narrow convolutions reuse each loaded value "
                  "less, so no model of that width can reach the 64-channel peak."]
    lines += ["", "| case | path | frame | model input | median ms | p95 ms | fps | GFLOP/s "
              "| % of conv peak | % of 16-ch conv |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["latency"]:
        g = r.get("gflops")
        pct = f"{100 * g / peak['gflops']:.0f}%" if g and peak else ""
        pct16 = f"{100 * g / narrow['gflops']:.0f}%" if g and narrow and r["path"] != "torch" \
            else ""
        lines.append(f"| {r['case']} | {r['path']} | {r.get('frame', '640x480')} | "
                     f"{r['model_input']} | {r['median_ms']} | {r['p95_ms']} | {r['fps']} | "
                     f"{g or ''} | {pct} | {pct16} |")
    lines += ["", "End to end (`streamcount run` on a 640x480 mp4v file: decode, "
              "pre-processing, inference, post-processing, the CSV, and with `--video` the "
              "overlay and H.264 writing; `auto` is the precision the engine picks here):", "",
              "| case | frames | CSV rows | video frames | end-to-end fps | engine fps "
              "| pipeline overhead |", "|---|---|---|---|---|---|---|"]
    for r in result["e2e"]:
        if "error" in r:
            lines.append(f"| {r['case']} | error: {r['error'][:80]} | | | | | |")
            continue
        nvid = "–" if r["video_frames"] is None else r["video_frames"]
        lines.append(f"| {r['case']} | {r['frames']} | {r['csv_rows']} | {nvid} | "
                     f"{r['e2e_fps']} | {r['engine_fps']} | {r['pipeline_overhead']:.1%} |")
    sweep = result.get("session_sweep") or []
    if sweep:
        lines += ["", "ONNX Runtime session settings, the default model at 320x240 model input:",
                  "",
                  "| intra-op threads | spinning | memory arena | median ms | fps |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['threads']} | {r['spinning']} | {r['arena']} | {r['median_ms']} | "
                  f"{r['fps']} |" for r in sweep]
    seed = next((r for r in result["latency"] if r["case"].startswith("seed-style")), None)
    for what, keep in (("counts to CSV", lambda r: r["video_frames"] is None),
                       ("with the annotated video", lambda r: r["video_frames"] is not None)):
        best = max((r for r in result["e2e"] if "e2e_fps" in r and keep(r)),
                   key=lambda r: r["e2e_fps"], default=None)
        if seed and best:
            lines += ["", f"End to end {what} against the seed-style path: "
                      f"{best['e2e_fps']:.1f} fps ({best['case']}) / {seed['fps']:.2f} fps = "
                      f"**{best['e2e_fps'] / seed['fps']:.0f}x**."]
    lines += ["", "Targets of issue 18 (2 cores) on this machine; the int8 count targets are in "
              "the model cards:", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in targets(result)]
    old = path.read_text() if path.is_file() else ""
    rest = old[old.find("\n## ") + 1:] if "\n## " in old else ""  # other benchmarks' sections
    path.write_text("\n".join(lines) + "\n" + ("\n" + rest if rest else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", help="bundled names or .onnx paths (default: all)")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case")
    ap.add_argument("--e2e-frames", type=int, default=200)
    ap.add_argument("--e2e-model", default="crowd")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-int8", action="store_true",
                    help="do not quantize the crowd models to int8 and time them")
    ap.add_argument("--mask-avx512", action="store_true",
                    help="hide AVX-512, AVX-VNNI and AMX from CPUID (needs CPUID faulting and a "
                         "C compiler): the kernels an AVX2-only CPU runs; writes docs/avx2/")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    args = ap.parse_args()
    if args.mask_avx512:
        rerun_masked(sys.argv[1:], REPO / "docs" / "avx2")
    if args.quick:
        args.seconds = min(args.seconds, 1.0)
        args.e2e_frames = min(args.e2e_frames, 100)
    available = bundled_models()
    if args.models:
        models = {Path(m).stem: (Path(m) if m.endswith(".onnx") else available[m])
                  for m in args.models}
    else:
        models = available
    frames = frames_640(4)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": args.quick,
              "machine": machine(), "plain_conv": plain_conv_peak(args.seconds),
              "plain_conv_16": plain_conv_peak(args.seconds, 16, 240, 320)}
    result["latency"] = torch_cases(frames, {k: v for k, v in models.items() if "-" not in k},
                                    args.seconds, args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        quant = {} if args.no_int8 or args.models else int8_variants(models, Path(tmp))
        result["latency"] += engine_cases(frames, {**models, **quant}, args.seconds)
    # Under the mask, ``auto`` would read /proc/cpuinfo (still VNNI) and pick int8, which no
    # AVX2-only CPU's runner would: time fp32 there, the precision such a CPU runs.
    precisions = ("fp32",) if result["machine"].get("cpuid_mask") else ("fp32", "auto")
    result["e2e_model"] = args.e2e_model
    result["e2e"] = e2e_cases(args.e2e_model, args.e2e_frames, precisions)
    if not args.quick and args.e2e_model in available:
        result["session_sweep"] = session_sweep(available[args.e2e_model], args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "benchmarks.md")
    print((args.out / "benchmarks.md").read_text())


if __name__ == "__main__":
    main()
