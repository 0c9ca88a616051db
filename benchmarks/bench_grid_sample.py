"""grid_sample speed and memory: minisegnet (NumPy) vs torch.nn.functional.grid_sample (CPU), float32.

    python benchmarks/bench_grid_sample.py              # the table, both regimes, memory
    python benchmarks/bench_grid_sample.py --levers     # also: each speed lever switched off
    python benchmarks/bench_grid_sample.py --quick      # a smoke run, not a measurement

Two sizes, (8, 32, 64, 64) and (4, 3, 256, 256), each sampled bilinearly
(zeros padding, align_corners=False) on a grid of the input's size: a
rotation by 0.3 rad with scales 0.9 and 1.1 and a small shift, so some
points fall outside the image, as an augmentation or a spatial transformer
would ask. Forward+backward means the output, then the gradients with
respect to both the input and the grid. Ours and torch's runs are
interleaved in one process (``benchmarks/timing.py``), in two regimes: one
thread everywhere timed by CPU time, and each library's default threads
timed by wall time; the figures are medians and ``ratio`` is ours / torch's
(lower is better; the target is 2 or less). The header gives the machine
and its load and says when the run is unreliable. ``--levers`` times the
speed levers of ``functional/sampling.py`` one at a time: ``BLOCK_ELEMENTS``
(points visited a cache-sized block at a time, against whole images),
``KEEP_READS`` (the forward's corners kept for the backward, against
recomputed), ``SCATTER_BESIDE`` (the input gradient's scatter-add in the
calling thread while the workers compute the grid gradient, against one
after the other) and ``SERIAL_SCATTER`` (the scatter-add in the calling
thread, against shared over the threads by image). Memory: the peak resident size of a fresh process doing two
forward+backward passes at each size, ours and torch's in separate
processes (each includes its interpreter and library imports), and the
largest block our forward allocates, in multiples of the output's size
(``tracemalloc``, which sees NumPy's allocations): a small constant means
memory per call proportional to the output. A floor: the forward pass's
gathers alone (the four corners' ``np.take`` over the channels, the corners
found beforehand), one thread, against PyTorch's whole forward pass: our
forward cannot be faster than its gathers.
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


def levers_set(**values):
    """``functional/sampling.py``'s levers set to ``values`` for the block, then restored."""
    from minisegnet.functional import sampling

    return timing.constants_set(sampling, **values)


def largest_forward_block(shape, keep=True):
    """Peak bytes traced during one forward with a grid that needs grad (what the forward
    keeps for the backward included), over the output's bytes; ``keep``: ``KEEP_READS``."""
    import tracemalloc

    import minisegnet as msn
    from minisegnet import functional as F

    x, grid = make_case(shape)
    ours_x, ours_grid = msn.tensor(x, requires_grad=True), msn.tensor(grid, requires_grad=True)
    with levers_set(KEEP_READS=keep):
        tracemalloc.start()
        try:
            y = F.grid_sample(ours_x, ours_grid)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
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


LEVERS_OFF = {"BLOCK_ELEMENTS": {"BLOCK_ELEMENTS": None}, "KEEP_READS": {"KEEP_READS": False},
              "SCATTER_BESIDE": {"SCATTER_BESIDE": False},
              "SERIAL_SCATTER": {"SERIAL_SCATTER": False, "SCATTER_BESIDE": False}}
"""Each speed lever of ``functional/sampling.py`` and the settings that switch it off: whole images
at a time instead of cache-sized blocks; recompute the corners in the backward pass instead of
keeping them; the grid gradient, then the scatter, instead of side by side; the input gradient's
scatter shared over the threads by image instead of in the calling thread (which needs the scatter
on its own, not beside the grid gradient)."""


def gathers_alone(shape):
    """The forward pass's reads alone: for each block of points, the ``np.take`` of each corner
    over the channels of the framed image, with the corners' indices found beforehand and not
    timed. A floor under our forward pass made of NumPy's gathers: whatever the arithmetic
    around them costs, the forward cannot take less."""
    from minisegnet import backend
    from minisegnet.functional import sampling

    x, grid = make_case(shape)
    n, c, h, w = shape
    image, points = sampling.framed(x), grid.reshape(n, -1, 2)
    offsets = sampling.corner_offsets("bilinear", w)
    reads = [(i, [index + offset for offset in offsets])
             for i, block in sampling.blocks(points, c)
             for index in [sampling.corners(points[i, block], h, w, "bilinear", "zeros", False)[0]]]

    def gathers():
        for i, indices in reads:
            for index in indices:
                backend.take_valid(image[i], index, 1)

    return gathers


def floor_rows(args):
    """One thread, CPU time: the gathers alone against PyTorch's whole forward pass."""
    rows = []
    with timing.threads(1):
        for shape in SIZES:
            (_, theirs_forward), _ = step_functions(shape)
            timed = timing.compare(gathers_alone(shape), theirs_forward, args.repeats, args.warmup,
                                   time.process_time)
            rows.append([str(shape), f"{timed['ours'] * 1e3:.2f}", f"{timed['theirs'] * 1e3:.2f}",
                         f"{timed['ratio']:.2f}"])
    return rows


def time_sizes(args, lever=None):
    """Rows of the speed table: each size, forward and forward+backward, in both regimes
    (``lever``: a name of ``LEVERS_OFF``, switched off for this table)."""
    rows, scaling = [], None
    with levers_set(**({} if lever is None else LEVERS_OFF[lever])):
        for shape in SIZES:
            forward, both = step_functions(shape)
            for regime, n, clock in (("1 thread, CPU time", 1, time.process_time),
                                     ("default threads, wall time", None, time.perf_counter)):
                with timing.threads(n):
                    fw = timing.compare(*forward, args.repeats, args.warmup, clock)
                    fb = timing.compare(*both, args.repeats, args.warmup, clock)
                    if n is None and scaling is None:
                        import torch

                        if torch.get_num_threads() > 1:
                            scaling = timing.torch_scaling(both[1], torch.get_num_threads(),
                                                           repeats=max(3, args.repeats // 2))
                rows.append([str(shape), regime, f"{fw['ours'] * 1e3:.1f}", f"{fw['theirs'] * 1e3:.1f}",
                             f"{fw['ratio']:.2f}", f"{fb['ours'] * 1e3:.1f}", f"{fb['theirs'] * 1e3:.1f}",
                             f"{fb['ratio']:.2f}", f"{fb['spread']:.2f}"])
    return rows, scaling


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats, no memory: a smoke run, not a measurement")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--levers", action="store_true",
                        help="also time each lever off: whole images (BLOCK_ELEMENTS = None), "
                             "recomputed corners (KEEP_READS = False), the grid gradient and then the "
                             "scatter (SCATTER_BESIDE = False), the scatter over the threads "
                             "(SERIAL_SCATTER = False)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1

    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    rows, scaling = time_sizes(args)
    lever_rows = {lever: time_sizes(args, lever)[0] for lever in LEVERS_OFF} if args.levers else {}
    floor = floor_rows(args)
    memory = [[str(shape), f"{largest_forward_block(shape):.1f}", f"{largest_forward_block(shape, keep=False):.1f}"]
              for shape in SIZES]
    if not args.quick:
        for row, shape in zip(memory, SIZES):
            row += [f"{peak_rss(shape, False):.0f}", f"{peak_rss(shape, True):.0f}"]
    load = monitor.stop()
    reasons = timing.verdict(load, scaling)

    extra = (f"{args.repeats} interleaved repeats, medians; bilinear, zeros padding, align_corners=False, "
             f"a rotated and scaled grid of the input's size. Parity of values and both gradients checked first.")
    print(timing.report_header(info, load, reasons, extra) + "\n")
    header = ["input (N, C, H, W)", "regime", "fwd ours ms", "fwd torch ms", "fwd ratio", "fwd+bwd ours ms",
              "fwd+bwd torch ms", "fwd+bwd ratio", "noise"]
    print(timing.markdown_table(header, rows, reasons))
    titles = {"BLOCK_ELEMENTS": "With BLOCK_ELEMENTS = None (whole images at a time instead of cache-sized blocks)",
              "KEEP_READS": "With KEEP_READS = False (the backward pass recomputes the corners, as PyTorch)",
              "SCATTER_BESIDE": "With SCATTER_BESIDE = False (the grid gradient over the threads, then the "
                                "input gradient's scatter, instead of side by side)",
              "SERIAL_SCATTER": "With SERIAL_SCATTER = False (the input gradient's scatter shared over the "
                                "threads by image, after the grid gradient)"}
    for lever, lever_table in lever_rows.items():
        print(f"\n{titles[lever]}:\n")
        print(timing.markdown_table(header, lever_table, reasons))
    print("\nA floor: our forward pass's gathers alone (each corner's `np.take` over the channels, block by "
          "block, the corners found beforehand), against PyTorch's whole forward pass; one thread, CPU time:\n")
    print(timing.markdown_table(["input (N, C, H, W)", "our gathers alone ms", "torch forward ms",
                                 "gathers / torch forward"], floor, reasons))
    print()
    mem_header = ["input (N, C, H, W)", "forward's peak allocation / output size",
                  "the same with KEEP_READS = False"]
    if not args.quick:
        mem_header += ["peak RSS ours MiB (2 fwd+bwd)", "peak RSS torch MiB"]
    print(timing.markdown_table(mem_header, memory, reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
