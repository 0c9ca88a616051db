"""The matrix products of our training step, each timed in NumPy and in PyTorch on the same operands.

    python benchmarks/bench_gemm.py            # one thread, CPU time, 15 interleaved repeats
    python benchmarks/bench_gemm.py --quick    # a smoke run, not a measurement

Most of our step's time is its matrix products (``profile_step.py``: the
GEMMs category), and NumPy hands each to the BLAS it was built with
(OpenBLAS for the wheels on PyPI); PyTorch's CPU build brings its own. How
much of our gap to PyTorch is the engine under the products, not our code
around them? This script records every ``np.matmul`` one step of the
benchmark U-Net (``bench_train_step.py``'s network, batch 8 of 3x64x64, at
one thread) makes, with its operands' shapes and whether each is a
transposed view, then times each distinct product on operands made afresh
with those shapes (contiguous arrays, or transposed views of contiguous
ones) in NumPy (``np.matmul``) and in PyTorch (``torch.matmul`` on tensors
that share the same memory), interleaved, one thread each, CPU time,
medians. Each sample is as many calls back to back as the step makes, on
the same operands (one product of 0.06 ms on the Xeon took 0.10 ms alone
after the 20 ms busy wait that comes before each timed sample,
``timing.settle``, and 0.06 ms in a run of calls: the first calls after a
pause run slower, and a step's products follow one another). So the figures
approximate the step's own products, which read their columns from slices
of a wider buffer, write some results into a buffer of their own
(``out=``) and find fresh operands in the cache at each call. A row is one
shape: its calls per step, the time a step spends in it in each library, the
rate in GFLOP/s and the ratio; the last row adds them up. Where the sum of
NumPy's times exceeds a multiple of PyTorch's whole step, no change to our
code around the products brings our step within that multiple.
"""
import argparse
import collections
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import bench_train_step as bts  # noqa: E402
import timing  # noqa: E402


def layout(a):
    """``(shape, transposed)``: a view whose last two axes are swapped is ``transposed``."""
    return a.shape, a.ndim >= 2 and a.strides[-1] != a.itemsize and a.strides[-2] == a.itemsize


def record_products(step, steps=1):
    """``{(a layout, b layout): calls per step}`` of the ``np.matmul`` calls ``step()`` makes."""
    original, seen = np.matmul, collections.Counter()

    def recording(a, b, *args, **kwargs):
        seen[layout(a), layout(b)] += 1
        return original(a, b, *args, **kwargs)

    np.matmul = recording
    try:
        for _ in range(steps):
            step()
    finally:
        np.matmul = original
    return {key: count / steps for key, count in seen.items()}


def operand(rng, shape, transposed):
    """A float32 array of ``shape``, a transposed view of a contiguous array when ``transposed``."""
    if not transposed:
        return rng.standard_normal(shape, dtype=np.float32)
    swapped = shape[:-2] + (shape[-1], shape[-2])
    return rng.standard_normal(swapped, dtype=np.float32).swapaxes(-1, -2)


def flops(a_shape, b_shape):
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    return 2 * int(np.prod(batch)) * a_shape[-2] * a_shape[-1] * b_shape[-1]


def describe(key):
    """``"A @ B"`` with each operand's stored shape; ``Xᵀ``: the transpose of a stored ``X``
    (its last two axes swapped, a view)."""
    def one(shape, transposed):
        return f"{shape[:-2] + (shape[-1], shape[-2])}ᵀ" if transposed else f"{shape}"
    (a_shape, a_t), (b_shape, b_t) = key
    return f"{one(a_shape, a_t)} @ {one(b_shape, b_t)}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 repeats: a smoke run")
    args = parser.parse_args(argv)
    import torch

    from minisegnet import allocator

    repeats, warmup = (3, 1) if args.quick else (args.repeats, 2)
    allocator.keep_freed_memory()
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    rng = np.random.default_rng(0)
    with timing.threads(1):
        ours, theirs, opt, topt, x, y = bts.build_pair(8, 64)
        ours_step, torch_step = bts.step_functions(ours, theirs, opt, topt, x, y)
        for _ in range(2):
            ours_step()
        products = record_products(ours_step)
        whole = timing.compare(ours_step, torch_step, repeats, warmup, time.process_time)
        rows, total_ours, total_torch, total_flops = [], 0.0, 0.0, 0.0
        for key, calls in sorted(products.items(), key=lambda kv: -kv[1] * flops(kv[0][0][0], kv[0][1][0])):
            (a_shape, a_t), (b_shape, b_t) = key
            a, b = operand(rng, a_shape, a_t), operand(rng, b_shape, b_t)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)          # the same memory, the same layout
            n = max(1, round(calls))
            timed = timing.compare(lambda: [np.matmul(a, b) for _ in range(n)],
                                   lambda: [torch.matmul(ta, tb) for _ in range(n)], repeats, warmup,
                                   time.process_time)
            work = flops(a_shape, b_shape)
            ours_ms, torch_ms = 1e3 * timed["ours"] * calls / n, 1e3 * timed["theirs"] * calls / n
            total_ours += ours_ms
            total_torch += torch_ms
            total_flops += calls * work
            rows.append([describe(key), f"{calls:g}", f"{ours_ms:.2f}", f"{torch_ms:.2f}",
                         f"{calls * work / ours_ms / 1e6:.0f}", f"{calls * work / torch_ms / 1e6:.0f}",
                         f"{timed['ratio']:.2f}"])
    rows.append(["**all of the step's products**", f"{sum(products.values()):g}", f"**{total_ours:.1f}**",
                 f"**{total_torch:.1f}**", f"{total_flops / total_ours / 1e6:.0f}",
                 f"{total_flops / total_torch / 1e6:.0f}", f"**{total_ours / total_torch:.2f}**"])
    load = monitor.stop()
    reasons = timing.verdict(load)
    print(timing.report_header(
        info, load, reasons,
        f"The products of one step of the benchmark U-Net (batch 8, 3x64x64), as our step makes them; "
        f"one thread each, CPU time, {repeats} interleaved repeats, medians. The whole step, timed the "
        f"same way: ours {1e3 * whole['ours']:.1f} ms, PyTorch's {1e3 * whole['theirs']:.1f} ms.") + "\n")
    print(timing.markdown_table(["product (Xᵀ: the transpose of a stored X)", "calls per step", "NumPy ms per step",
                                 "PyTorch ms per step", "NumPy GFLOP/s", "PyTorch GFLOP/s", "ratio"],
                                rows, reasons))
    share = total_ours / (1e3 * whole["theirs"])
    print(f"\nNumPy's products alone take {share:.2f}x PyTorch's whole step; PyTorch's `matmul` would do "
          f"the same products in {total_torch / (1e3 * whole['theirs']):.2f}x of it.")
    print(timing.result_line(dict(products_ms=total_ours, torch_products_ms=total_torch,
                                  torch_step_ms=1e3 * whole["theirs"], ours_step_ms=1e3 * whole["ours"],
                                  products_over_torch_step=share), reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
