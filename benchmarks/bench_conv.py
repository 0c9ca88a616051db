"""Convolution speed and memory: minisegnet (NumPy) vs torch.nn.functional (CPU), float32.

    python benchmarks/bench_conv.py              # layers a-k, one thread (CPU time) and default threads (wall)
    python benchmarks/bench_conv.py --regime one # only one regime: "one" or "default"
    python benchmarks/bench_conv.py --quick      # fewer repeats, a smoke run
    python benchmarks/bench_conv.py --levers     # also: each speed lever switched from its default in turn (fwd+bwd)
    python benchmarks/bench_conv.py --memory     # peak RSS of the original U-Net's big layers

Each layer is timed forward only (no graph) and forward+backward (input,
weight and bias gradients), ours and torch's interleaved in one process
(``benchmarks/timing.py``); the figures are medians and ``ratio`` is ours /
torch's (lower is better). Two regimes: one thread everywhere (PyTorch,
minisegnet's pool, OpenBLAS) with CPU time, and the default threads with
wall time. The load is recorded around the whole run and the output says
whether the run is reliable. ``--backend cupy`` times CuPy against torch
CUDA on a GPU machine.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minisegnet as msn  # noqa: E402
from minisegnet import functional as F  # noqa: E402
from minisegnet.functional import conv_fast  # noqa: E402
import timing  # noqa: E402
from timing import compare, markdown_table, python_peak_rss_mib  # noqa: E402

# name: (N, C_in, H, W, C_out, k, stride, padding, dilation, transposed[, groups])
LAYERS = {
    "a": (8, 3, 64, 64, 16, 3, 1, 1, 1, False),
    "b": (8, 16, 64, 64, 16, 3, 1, 1, 1, False),
    "c": (8, 32, 32, 32, 64, 3, 1, 1, 1, False),
    "d": (4, 64, 64, 64, 64, 3, 1, 1, 1, False),
    "e": (8, 32, 32, 32, 32, 3, 1, 2, 2, False),
    "f": (8, 32, 64, 64, 32, 3, 2, 1, 1, False),
    "g": (8, 64, 32, 32, 32, 2, 2, 0, 1, True),
    "h": (8, 64, 32, 32, 32, 4, 2, 1, 1, True),
    # depthwise (groups = C_in = C_out), as in MobileNetV2 and the separable blocks
    "i": (8, 32, 64, 64, 32, 3, 1, 1, 1, False, 32),
    "j": (8, 32, 64, 64, 32, 3, 2, 1, 1, False, 32),
    "k": (8, 32, 64, 64, 32, 3, 1, 2, 2, False, 32),
}


def make_layer(spec, torch, device, xp):
    """Our step functions and torch's for one layer, on identical float32 data."""
    n, c_in, h, w, c_out, k, s, p, d, transposed = spec[:10]
    groups = spec[10] if len(spec) > 10 else 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c_in, h, w)).astype(np.float32)
    wshape = (c_in, c_out, k, k) if transposed else (c_out, c_in // groups, k, k)
    wt = (rng.standard_normal(wshape) / np.sqrt(c_in // groups * k * k)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    if transposed:
        def ours_op(a, ww, bb):
            return F.conv_transpose2d(a, ww, bb, stride=s, padding=p, dilation=d)

        def torch_op(a, ww, bb):
            return torch.nn.functional.conv_transpose2d(a, ww, bb, stride=s, padding=p, dilation=d)
    else:
        def ours_op(a, ww, bb):
            return F.conv2d(a, ww, bb, stride=s, padding=p, dilation=d, groups=groups)

        def torch_op(a, ww, bb):
            return torch.nn.functional.conv2d(a, ww, bb, stride=s, padding=p, dilation=d, groups=groups)

    X, W, B = (msn.Tensor(xp.asarray(a), requires_grad=True) for a in (x, wt, b))
    tX, tW, tB = (torch.tensor(a, device=device, requires_grad=True) for a in (x, wt, b))
    with msn.no_grad():
        out_shape = ours_op(X, W, B).shape
    g = rng.standard_normal(out_shape).astype(np.float32)
    G, tG = xp.asarray(g), torch.tensor(g, device=device)
    sync = (lambda: xp.cuda.Device().synchronize()) if xp is not np else (lambda: None)
    tsync = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)

    def ours_fwd():
        with msn.no_grad():
            ours_op(X, W, B)
        sync()

    def torch_fwd():
        with torch.no_grad():
            torch_op(tX, tW, tB)
        tsync()

    def ours_step():
        for t in (X, W, B):
            t.grad = None
        ours_op(X, W, B).backward(G)
        sync()

    def torch_step():
        for t in (tX, tW, tB):
            t.grad = None
        torch_op(tX, tW, tB).backward(tG)
        tsync()

    return ours_fwd, torch_fwd, ours_step, torch_step


def describe(name, spec):
    n, c_in, h, w, c_out, k, s, p, d, transposed = spec[:10]
    kind = "convT" if transposed else ("depthwise" if len(spec) > 10 else "conv")
    return f"{name}: {kind} {n}x{c_in}x{h}x{w} -> {c_out}, k{k} s{s} p{p} d{d}"


def run_table(torch, device, xp, repeats, warmup, names, clock, reasons=None):
    rows, fb_ratios, fwd_ratios = [], [], []
    for name in names:
        ours_fwd, torch_fwd, ours_step, torch_step = make_layer(LAYERS[name], torch, device, xp)
        fwd = compare(ours_fwd, torch_fwd, repeats, warmup, clock)
        step = compare(ours_step, torch_step, repeats, warmup, clock)
        fb_ratios.append(step["ratio"])
        fwd_ratios.append(fwd["ratio"])
        rows.append([describe(name, LAYERS[name]),
                     f"{fwd['ours'] * 1e3:.2f}", f"{fwd['theirs'] * 1e3:.2f}", f"{fwd['ratio']:.2f}",
                     f"{step['ours'] * 1e3:.2f}", f"{step['theirs'] * 1e3:.2f}", f"{step['ratio']:.2f}",
                     f"{step['spread']:.2f}"])
        print(f"  {rows[-1][0]}: fwd x{fwd['ratio']:.2f}, fwd+bwd x{step['ratio']:.2f}", file=sys.stderr)
    return rows, fwd_ratios, fb_ratios


TABLE_HEADER = ["layer (N x C x H x W -> C_out)", "fwd ours ms", "fwd torch ms", "fwd ratio",
                "fwd+bwd ours ms", "fwd+bwd torch ms", "fwd+bwd ratio", "noise (IQR/median of ratios)"]

LEVERS = {
    "pieces up to the memory limit (cache_pieces off)": "cache_pieces",
    "threads off (OpenBLAS threads only)": "threads",
    "no buffer reuse": "reuse_buffers",
    "padded copy first (unpadded off)": "unpadded",
    "1x1 convs through im2col (pointwise off)": "pointwise",
    "no flipped-kernel stride-1 gradient (col2im instead)": "flip",
    "forward columns kept for the weight gradient (keep_columns on)": "keep_columns",
    "strided depthwise convs run directly (depthwise on)": "depthwise",
    "bias in a separate pass (fused_bias off)": "fused_bias",
    "every tap row's columns copied (row_taps off)": "row_taps",
    "one row-tap product per kernel row (stacked_rows off)": "stacked_rows",
    "weight gradient as g @ cols^T (transposed_weight_grad off)": "transposed_weight_grad",
}


def switched(step, name):
    """``step`` run with the lever ``name`` in its other state (restored after)."""
    def run():
        with timing.lever_set(name, not conv_fast.lever(name)):
            step()
    return run


def run_levers(torch, repeats, warmup, names, clock, threads):
    """Per layer, our fwd+bwd with each lever switched the other way / with the levers as set
    by default, the two interleaved. PyTorch is not in these ratios: a lever can change the
    machine under the next timed call (OpenBLAS's own threads, when the pool is off, keep
    spinning after a product), and a ratio to PyTorch's time would then move with PyTorch's.
    The levers of ``IN_FRESH_PROCESSES`` are timed in fresh processes instead (``fresh_ratios``)."""
    header = ["lever switched"] + names + ["median"]
    rows = []
    steps = {layer: make_layer(LAYERS[layer], torch, "cpu", np)[2] for layer in names}
    for label, name in LEVERS.items():
        if name in IN_FRESH_PROCESSES:
            ratios = fresh_ratios(name, names, repeats, warmup, clock, threads)
            label += ", fresh processes"
        else:
            ratios = [compare(switched(steps[layer], name), steps[layer], repeats, warmup, clock)["ratio"]
                      for layer in names]
        rows.append([label] + [f"{r:.2f}" for r in ratios] + [f"{statistics.median(ratios):.2f}"])
        print(f"  {label}: median x{statistics.median(ratios):.2f}", file=sys.stderr)
    return header, rows


IN_FRESH_PROCESSES = ["threads"]
"""Levers timed in fresh processes, one setting per process: with the pool off, OpenBLAS runs
its own threads, and one of its two-thread products slows the pool's next calls in the same
process even after ``timing.settle`` (layer b's fwd+bwd with the pool: 9.3-10.5 ms after one
such product against 6.1-7.2 ms after none, two development measurements of two trials each,
on the Xeon of docs/benchmarks-xeon-avx512.md; docs/benchmarks.md, "How the measuring works",
has them call by call). Interleaved in one process, the pool was timed after the switch, and
looked slower than it is."""

LEVER_CODE = """
import json, sys, time
sys.path[:0] = [{root!r}, {here!r}]
import numpy as np
import torch
import bench_conv as b, timing
from minisegnet.functional import conv_fast
conv_fast.set_lever({name!r}, {value})
medians = {{}}
with timing.threads({threads}):
    for layer in {names!r}:
        step = b.make_layer(b.LAYERS[layer], torch, "cpu", np)[2]
        for _ in range({warmup}):
            step()
        medians[layer] = float(np.median([timing.time_once(step, {clock}) for _ in range({repeats})]))
print(json.dumps(medians))
"""


def fresh_ratios(name, names, repeats, warmup, clock, threads, processes=3):
    """Per layer, our fwd+bwd with lever ``name`` switched / as set by default, each setting
    in its own fresh processes (``processes`` of each, alternately), each timing every layer
    ``repeats`` times as the tables do; the medians of the processes' medians."""
    here = os.path.dirname(os.path.abspath(__file__))
    clock_name = "time.process_time" if clock is time.process_time else "time.perf_counter"
    codes = {as_set: LEVER_CODE.format(root=os.path.dirname(here), here=here, name=name,
                                       value=conv_fast.lever(name) if as_set else not conv_fast.lever(name),
                                       threads=threads, names=names, warmup=warmup, clock=clock_name,
                                       repeats=repeats)
             for as_set in (True, False)}
    times = timing.in_fresh_processes(codes, processes)
    return [statistics.median(t[layer] for t in times[False]) / statistics.median(t[layer] for t in times[True])
            for layer in names]


MEMORY_CODE = """
import sys, time, resource
sys.path.insert(0, {root!r})
import numpy as np, minisegnet as msn
from minisegnet import functional as F
base = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
rng = np.random.default_rng(0)
x = msn.tensor(rng.standard_normal((1, {c_in}, {size}, {size}), dtype=np.float32), requires_grad={grad_x})
w = msn.tensor(rng.standard_normal(({c_out}, {c_in}, 3, 3), dtype=np.float32) * 0.05, requires_grad=True)
b = msn.tensor(np.zeros({c_out}, np.float32), requires_grad=True)
start = time.perf_counter()
y = F.conv2d(x, w, b)
y.backward(np.ones(y.shape, np.float32))
print(base, time.perf_counter() - start, y.shape)
"""


def run_memory():
    """The memory table's ``(header, rows)``; main prints it with the run's verdict."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    rows = []
    for c_in, c_out, size, grad_x in ((3, 64, 572, False), (64, 64, 570, True)):
        code = MEMORY_CODE.format(root=root, c_in=c_in, c_out=c_out, size=size, grad_x=grad_x)
        peak, out = python_peak_rss_mib(code)
        base, seconds, shape = out.split(maxsplit=2)
        k_rows = c_in * 9
        cols_mib = k_rows * (size - 2) ** 2 * 4 / 2**20
        rows.append([f"{c_in} -> {c_out}, 3x3, 1x{c_in}x{size}x{size}" + (" (+ input grad)" if grad_x else ""),
                     f"{cols_mib:.0f}", f"{float(base):.0f}", f"{peak:.0f}", f"{float(seconds):.1f}"])
        print(f"  {rows[-1]}", file=sys.stderr)
    header = ["layer (one image, float32)", "column buffer MiB (N*C*kh*kw*H_out*W_out*4)",
              "RSS after imports MiB", "peak RSS MiB (fwd+bwd)", "fwd+bwd s"]
    return header, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats: a smoke run, not a measurement")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--layers", default="abcdefghijk", help="which layers, e.g. 'ad' (i-k: depthwise)")
    parser.add_argument("--regime", choices=("both", "one", "default"), default="both",
                        help="one thread with CPU time, default threads with wall time, or both (default)")
    parser.add_argument("--levers", action="store_true", help="also time with each lever switched from its default")
    parser.add_argument("--memory", action="store_true", help="also measure the U-Net layers' peak RSS")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    args = parser.parse_args(argv)
    import torch

    repeats, warmup = (3, 1) if args.quick else (args.repeats, 2)
    names = [c for c in args.layers if c in LAYERS]
    if args.backend == "cupy":
        msn.set_backend("cupy")
        import cupy as xp
        device = "cuda"
    else:
        xp, device = np, "cpu"
    regimes = {"one": (1, time.process_time, "one thread each, CPU time"),
               "default": (None, time.perf_counter, "default threads, wall time")}
    chosen = ["one", "default"] if args.regime == "both" else [args.regime]
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    sections, scaling, result = [], None, {}
    for regime in chosen:
        n, clock, label = regimes[regime]
        with timing.threads(n):
            if names:
                rows, fwd, fb = run_table(torch, device, xp, repeats, warmup, names, clock)
                summary = (f"Median forward ratio {statistics.median(fwd):.2f}, median fwd+bwd ratio "
                           f"{statistics.median(fb):.2f} (largest {max(fb):.2f}) over {len(fb)} layers; "
                           f"stride-1 convs (a-e, i, k) forward median "
                           f"{statistics.median([r for c, r in zip(names, fwd) if c in 'abcdeik'] or [0]):.2f}.")
                sections.append((f"{label}, {repeats} interleaved repeats", TABLE_HEADER, rows, summary))
                stride1 = [r for c, r in zip(names, fwd) if c in "abcdeik"]
                result[regime] = dict(fwd_median=statistics.median(fwd), fwd_bwd_median=statistics.median(fb),
                                      stride1_fwd_median=statistics.median(stride1) if stride1 else None)
            if args.levers and args.backend == "numpy":
                header, rows = run_levers(torch, repeats, warmup, names, clock, n)
                sections.append((f"our fwd+bwd with one lever switched from its default / with every lever "
                                 f"as set by default, the two interleaved (> 1: the default setting pays); "
                                 f"{label}", header, rows, ""))
            if regime == "default" and device == "cpu" and torch.get_num_threads() > 1 and names:
                _, _, _, torch_step = make_layer(LAYERS[names[0]], torch, device, xp)
                scaling = timing.torch_scaling(torch_step, torch.get_num_threads())
    memory = run_memory() if args.memory else None     # (inside the watched window: it has a time column)
    load = monitor.stop()
    reasons = timing.verdict(load, scaling)
    extra = "" if scaling is None else (f"PyTorch alone on layer {names[0]}: {1e3 * scaling[0]:.2f} ms at one "
                                        f"thread, {1e3 * scaling[1]:.2f} ms at its default threads (wall).")
    print(timing.report_header(info, load, reasons, extra))
    for title, header, rows, summary in sections:
        print(f"\n{title}:\n")
        print(markdown_table(header, rows, reasons))
        if summary:
            print(f"\n{summary}")
    if memory is not None:
        print("\nmemory: the original U-Net's widest layers, forward+backward, in a fresh process\n")
        print(markdown_table(*memory, reasons))
    print(timing.result_line(result, reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
