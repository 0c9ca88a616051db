"""grid_sample speed and memory: minisegnet (NumPy) vs torch.nn.functional.grid_sample (CPU), float32.

    python benchmarks/bench_grid_sample.py              # the table (wall time, default threads)
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_grid_sample.py --threads 1 --clock cpu
                                                        # one thread each, CPU time: steadier on a busy machine
    python benchmarks/bench_grid_sample.py --quick      # a smoke run, not a measurement

Two sizes, (8, 32, 64, 64) and (4, 3, 256, 256), each sampled bilinearly
(zeros padding, align_corners=False) on a grid of the input's size: a
rotation by 0.3 rad with scales 0.9 and 1.1 and a small shift, so some
points fall outside the image, as an augmentation or a spatial transformer
would ask. Forward+backward means the output, then the gradients with
respect to both the input and the grid. Ours and torch's runs are
interleaved in one process (``benchmarks/timing.py``); the figures are
medians and ``ratio`` is ours / torch's (lower is better; the target is 2 or
less). Memory: the peak resident size of a fresh process doing two
forward+backward passes at each size, ours and torch's in separate
processes (each includes its interpreter and library imports), and the
largest block our forward allocates, in multiples of the output's size
(``tracemalloc``, which sees NumPy's allocations): a small constant means
memory per call proportional to the output.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import timing  # noqa: E402

SIZES = [(8, 32, 64, 64), (4, 3, 256, 256)]


def make_case(shape, seed=0):
    """Input and grid (float32) for one size: the rotated, scaled, shifted grid of the docstring."""
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    angle = 0.3
    theta = np.array([[0.9 * np.cos(angle), -np.sin(angle), 0.1],
                      [np.sin(angle), 1.1 * np.cos(angle), -0.05]], dtype=np.float32)
    xs = (np.arange(w, dtype=np.float32) * 2 + 1) / w - 1          # pixel centres, align_corners=False
    ys = (np.arange(h, dtype=np.float32) * 2 + 1) / h - 1
    base = np.stack([np.broadcast_to(xs, (h, w)), np.broadcast_to(ys[:, None], (h, w)), np.ones((h, w), np.float32)],
                    axis=-1)
    grid = np.broadcast_to(base @ theta.T, (n, h, w, 2)).astype(np.float32)
    return x, np.ascontiguousarray(grid)


def step_functions(shape):
    import torch

    import minisegnet as msn
    from minisegnet import functional as F

    x, grid = make_case(shape)
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ours_x, ours_grid = msn.tensor(x, requires_grad=True), msn.tensor(grid, requires_grad=True)
    torch_x, torch_grid = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    torch_g = torch.tensor(g)

    def ours():
        ours_x.grad = ours_grid.grad = None
        F.grid_sample(ours_x, ours_grid).backward(g)

    def theirs():
        torch_x.grad = torch_grid.grad = None
        torch.nn.functional.grid_sample(torch_x, torch_grid, align_corners=False).backward(torch_g)

    def ours_forward():
        with msn.no_grad():
            F.grid_sample(ours_x, ours_grid)

    def theirs_forward():
        with torch.no_grad():
            torch.nn.functional.grid_sample(torch_x, torch_grid, align_corners=False)

    # parity first: a benchmark of a wrong answer measures nothing
    ours()
    theirs()
    y = F.grid_sample(ours_x, ours_grid).numpy()
    ty = torch.nn.functional.grid_sample(torch_x, torch_grid, align_corners=False).detach().numpy()
    np.testing.assert_allclose(y, ty, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(ours_x.grad.numpy(), torch_x.grad.numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(ours_grid.grad.numpy(), torch_grid.grad.numpy(), atol=1e-2, rtol=1e-3)
    return (ours_forward, theirs_forward), (ours, theirs)


def largest_forward_block(shape):
    """Peak bytes traced during one forward with a grid that needs grad, over the output's bytes."""
    import tracemalloc

    import minisegnet as msn
    from minisegnet import functional as F

    x, grid = make_case(shape)
    ours_x, ours_grid = msn.tensor(x, requires_grad=True), msn.tensor(grid, requires_grad=True)
    tracemalloc.start()
    y = F.grid_sample(ours_x, ours_grid)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / y.data.nbytes


_MEMORY_CODE = """
import sys
sys.path[:0] = {paths!r}
import numpy as np
from bench_grid_sample import make_case
x, grid = make_case({shape!r})
g = np.ones(x.shape, np.float32)
if {torch!r}:
    import torch
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    for _ in range(2):
        torch.nn.functional.grid_sample(tx, tg, align_corners=False).backward(torch.tensor(g))
else:
    import minisegnet as msn
    from minisegnet import functional as F
    mx, mg = msn.tensor(x, requires_grad=True), msn.tensor(grid, requires_grad=True)
    for _ in range(2):
        F.grid_sample(mx, mg).backward(g)
"""


def peak_rss(shape, torch):
    code = _MEMORY_CODE.format(paths=[HERE, os.path.dirname(HERE)], shape=shape, torch=torch)
    return timing.python_peak_rss_mib(code)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats, no memory: a smoke run, not a measurement")
    parser.add_argument("--repeats", type=int, default=15)
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
    load = os.getloadavg()
    print(f"{timing.machine_summary()}; {repeats} interleaved repeats, medians of {args.clock} time; "
          f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    rows = []
    for shape in SIZES:
        (fw_ours, fw_theirs), (fb_ours, fb_theirs) = step_functions(shape)
        fw = timing.compare(fw_ours, fw_theirs, repeats, warmup, clock)
        fb = timing.compare(fb_ours, fb_theirs, repeats, warmup, clock)
        row = [str(shape), f"{fw['ours'] * 1e3:.1f}", f"{fw['theirs'] * 1e3:.1f}", f"{fw['ratio']:.2f}",
               f"{fb['ours'] * 1e3:.1f}", f"{fb['theirs'] * 1e3:.1f}", f"{fb['ratio']:.2f}",
               f"{fb['spread']:.2f}", f"{largest_forward_block(shape):.1f}"]
        if not args.quick:
            row += [f"{peak_rss(shape, False):.0f}", f"{peak_rss(shape, True):.0f}"]
        rows.append(row)
    header = ["input (N, C, H, W)", "fwd ours ms", "fwd torch ms", "fwd ratio", "fwd+bwd ours ms",
              "fwd+bwd torch ms", "fwd+bwd ratio", "spread", "fwd peak / output"]
    if not args.quick:
        header += ["peak RSS ours MiB", "peak RSS torch MiB"]
    print(timing.markdown_table(header, rows))
    load = os.getloadavg()
    print(f"\nload average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + ("  (a busy machine: these figures are unreliable)" if load[0] > 1.5 else ""))


if __name__ == "__main__":
    main()
