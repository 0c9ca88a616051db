"""Convolution speed and memory: minisegnet (NumPy) vs torch.nn.functional (CPU), float32.

    python benchmarks/bench_conv.py            # the eight layers, Markdown table
    python benchmarks/bench_conv.py --quick    # fewer repeats, a smoke run
    python benchmarks/bench_conv.py --levers   # also: each speed lever switched off in turn
    python benchmarks/bench_conv.py --memory   # peak RSS of the original U-Net's big layers
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_conv.py --threads 1 --clock cpu
                                               # one thread each, CPU time: steadier on a busy machine

Each layer is timed forward only (no graph) and forward+backward (input,
weight and bias gradients), ours and torch's interleaved in one process
(``benchmarks/timing.py``); the figures are medians and ``ratio`` is ours /
torch's (lower is better). ``--backend cupy`` times CuPy against torch CUDA
on a GPU machine.
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
from minisegnet.functional import conv as conv_module  # noqa: E402
from timing import compare, machine_summary, markdown_table, python_peak_rss_mib  # noqa: E402

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


def run_table(torch, device, xp, repeats, warmup, names, clock):
    rows, fb_ratios = [], []
    for name in names:
        ours_fwd, torch_fwd, ours_step, torch_step = make_layer(LAYERS[name], torch, device, xp)
        fwd = compare(ours_fwd, torch_fwd, repeats, warmup, clock)
        step = compare(ours_step, torch_step, repeats, warmup, clock)
        fb_ratios.append(step["ratio"])
        rows.append([describe(name, LAYERS[name]),
                     f"{fwd['ours'] * 1e3:.2f}", f"{fwd['theirs'] * 1e3:.2f}", f"{fwd['ratio']:.2f}",
                     f"{step['ours'] * 1e3:.2f}", f"{step['theirs'] * 1e3:.2f}", f"{step['ratio']:.2f}",
                     f"{step['spread']:.2f}"])
        print(f"  {rows[-1][0]}: fwd x{fwd['ratio']:.2f}, fwd+bwd x{step['ratio']:.2f}", file=sys.stderr)
    header = ["layer (N x C x H x W -> C_out)", "fwd ours ms", "fwd torch ms", "fwd ratio",
              "fwd+bwd ours ms", "fwd+bwd torch ms", "fwd+bwd ratio", "noise (IQR/median of ratios)"]
    return markdown_table(header, rows), fb_ratios


def run_levers(torch, repeats, warmup, names, clock):
    """fwd+bwd ratio per layer with everything on, then with each lever switched off."""
    levers = {
        "all levers on": {},
        "no buffer reuse": {"reuse": False},
        "no flipped-kernel stride-1 gradient (col2im instead)": {"flip": False},
        "no direct depthwise path (im2col instead)": {"depthwise": False},
    }
    header = ["setting"] + names + ["median"]
    rows = []
    for label, off in levers.items():
        previous_reuse = conv_module.set_buffer_reuse(off.get("reuse", True))
        previous_flip = conv_module._flip_at_stride_1
        conv_module._flip_at_stride_1 = off.get("flip", True)
        conv_module._direct_depthwise = off.get("depthwise", True)
        ratios = []
        for name in names:
            _, _, ours_step, torch_step = make_layer(LAYERS[name], torch, "cpu", np)
            ratios.append(compare(ours_step, torch_step, repeats, warmup, clock)["ratio"])
        conv_module.set_buffer_reuse(previous_reuse)
        conv_module._flip_at_stride_1 = previous_flip
        conv_module._direct_depthwise = True
        rows.append([label] + [f"{r:.2f}" for r in ratios] + [f"{statistics.median(ratios):.2f}"])
        print(f"  {label}: median x{statistics.median(ratios):.2f}", file=sys.stderr)
    return markdown_table(header, rows)


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
    return markdown_table(header, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats: a smoke run, not a measurement")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--layers", default="abcdefghijk", help="which layers, e.g. 'ad' (i-k: depthwise)")
    parser.add_argument("--levers", action="store_true", help="also time with each lever switched off")
    parser.add_argument("--memory", action="store_true", help="also measure the U-Net layers' peak RSS")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (set OPENBLAS_NUM_THREADS for NumPy's BLAS before starting)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time (default) or process CPU time")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    repeats, warmup = (3, 1) if args.quick else (args.repeats, 2)
    names = [c for c in args.layers if c in LAYERS]
    if args.backend == "cupy":
        msn.set_backend("cupy")
        import cupy as xp
        device = "cuda"
    else:
        xp, device = np, "cpu"
    print(f"{machine_summary()}; {repeats} interleaved repeats, medians of {args.clock} time; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}\n")
    if names:
        table, ratios = run_table(torch, device, xp, repeats, warmup, names, clock)
        print(table)
        print(f"\nmedian fwd+bwd ratio over {len(ratios)} layers: {statistics.median(ratios):.2f}; "
              f"largest: {max(ratios):.2f}")
    if args.levers and args.backend == "numpy":
        print("\nfwd+bwd ratio (ours / torch) with one lever switched off at a time\n")
        print(run_levers(torch, repeats, warmup, names, clock))
    if args.memory:
        print("\nmemory: the original U-Net's widest layers, forward+backward, in a fresh process\n")
        print(run_memory())


if __name__ == "__main__":
    main()
