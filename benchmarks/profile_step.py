"""Where the time of a U-Net training step goes, ours next to PyTorch's.

Three views of the same step (``bench_train_step.py``'s network and batch):

1. **Phases**, both libraries, timed with a clock around each call: forward,
   loss, backward, optimizer (zero_grad + step). Medians of interleaved steps.
2. **Our step by category**, from ``cProfile``: the time spent *inside* each
   function (its own time, not its callees'), summed by what the function
   does: im2col copies, col2im, padding, GEMMs, depthwise, pooling,
   activations and other elementwise or shape ops, loss, optimizer, waiting
   for the thread pool, and the rest (autograd bookkeeping, argument checks,
   glue), which is Python overhead. The profiler adds its own cost to every
   Python call (the table says how much); the fixed cost of a step is also
   measured directly by running the same network on 8x8 images, where the
   arrays are tiny and what is left is overhead.
3. **PyTorch's step by operator**, from ``torch.profiler`` (self CPU time of
   each aten operator, summed into the same categories).

Each view at one thread (CPU time; cProfile counts only the calling thread,
which is all of it then) and at the default threads (wall time; our worker
threads are not profiled, so their share of the conv appears as the calling
thread's "waiting for the thread pool").

    python benchmarks/profile_step.py            # both regimes
    python benchmarks/profile_step.py --quick    # fewer steps, a smoke run
"""
import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import bench_train_step as bts  # noqa: E402
import timing  # noqa: E402

CATEGORIES = ["im2col copies", "col2im", "padding", "GEMMs", "depthwise", "pooling", "activations",
              "other elementwise and shape ops", "loss", "optimizer", "waiting for the thread pool",
              "Python overhead (autograd, checks, glue)"]


OVERHEAD = "Python overhead (autograd, checks, glue)"
WAITING = "waiting for the thread pool"


def our_category(filename, function):
    """The category of one profiled Python function of ours (by module and name), or
    None for code that is not ours (NumPy's Python wrappers, builtins) and for a list
    comprehension, generator expression or lambda of ours: their time goes to whichever
    of our functions called them."""
    name = filename.replace("\\", "/")
    if "minisegnet/" not in name or function.startswith("<"):
        return None           # a list comprehension, generator or lambda: its caller's category
    if name.endswith("functional/conv_row_taps.py"):
        if function == "columns":
            return "im2col copies"
        return "GEMMs" if function in ("forward", "weight_grad") else OVERHEAD
    if name.endswith("functional/conv_fast.py") or name.endswith("functional/conv.py"):
        if function in ("_im2col", "_im2col_unpadded", "_im2col_window", "_piece_columns"):
            return "im2col copies"
        if function == "_col2im":
            return "col2im"
        if function in ("_pad", "_pad_scratch"):
            return "padding"
        if function.startswith("_gemm") or function == "_weight_grad_gemm":
            return "GEMMs"
        return OVERHEAD
    if name.endswith("functional/conv_depthwise.py"):
        return "depthwise"
    if name.endswith("functional/pooling.py"):
        return "pooling"
    if name.endswith("functional/activation.py"):
        return "activations"
    if name.endswith("functional/basic.py") or name.endswith("functional/padding.py"):
        return "other elementwise and shape ops"
    if name.endswith("functional/loss.py"):
        return "loss"
    if name.endswith("minisegnet/optim.py"):
        return "optimizer"
    return OVERHEAD


def profile_ours(step, steps, clock):
    """Seconds per step by category (cProfile's own time), and the profiled step time.

    The own time of a function that is not ours (a NumPy method or ufunc
    reduction, a NumPy Python wrapper) is passed up to its callers, in
    proportion to the time each caller spent in it, until it reaches one of
    ours; so ``.sum()`` inside the weight gradient counts as GEMM work, and a
    lock the calling thread waits on counts as waiting for the pool.
    """
    profiler = cProfile.Profile(clock)
    start = clock()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    total = (clock() - start) / steps
    stats = pstats.Stats(profiler).stats
    totals = dict.fromkeys(CATEGORIES, 0.0)

    def spread(func, amount, depth):
        filename, _, function = func
        if "acquire" in function and "lock" in function:
            totals[WAITING] += amount
            return
        category = our_category(filename, function)
        callers = stats[func][4] if func in stats else {}
        weight = sum(v[2] for v in callers.values())
        if category is not None or depth > 8 or not callers or weight <= 0:
            totals[category or OVERHEAD] += amount
            return
        for caller, v in callers.items():
            spread(caller, amount * v[2] / weight, depth + 1)

    for func, (_, _, own, _, _) in stats.items():
        spread(func, own / steps, 0)
    return totals, total


def thread_split(step, steps):
    """Seconds per step that each thread spends building columns (im2col) and in matrix
    products (``np.matmul``, which every conv product calls), wall and CPU time of its own calls.

    A thread's wall time above its CPU time is time it waited inside those calls (for
    the interpreter lock, which a NumPy call takes back when its loop ends, or for the
    operating system). Keys: ``(work, thread name, "wall" | "cpu")``; each thread adds
    only to its own keys."""
    import collections
    import threading

    import numpy as np

    from minisegnet.functional import conv, conv_fast

    spent = collections.defaultdict(float)

    def timed(fn, work):
        def call(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                name = threading.current_thread().name
                spent[work, name, "wall"] += time.perf_counter() - wall
                spent[work, name, "cpu"] += time.thread_time() - cpu
        return call

    originals = conv_fast._im2col_unpadded, conv._im2col, np.matmul
    conv_fast._im2col_unpadded = timed(originals[0], "im2col copies")
    conv._im2col = timed(originals[1], "im2col copies")
    np.matmul = timed(originals[2], "GEMMs")
    try:
        for _ in range(steps):
            step()
    finally:
        conv_fast._im2col_unpadded, conv._im2col, np.matmul = originals
    return {key: value / steps for key, value in spent.items()}


def thread_rows(one, two):
    """Table rows comparing ``thread_split`` at one thread (``one``) and at two (``two``)."""
    rows = []
    for work in ("im2col copies", "GEMMs"):
        def total(split, clock, calling=None):
            return sum(v for (w, name, c), v in split.items() if w == work and c == clock
                       and (calling is None or (name == "MainThread") == calling))
        alone = total(one, "cpu")
        rows.append([work, f"{1e3 * alone:.1f}",
                     f"{1e3 * total(two, 'wall', True):.1f} / {1e3 * total(two, 'cpu', True):.1f}",
                     f"{1e3 * total(two, 'wall', False):.1f} / {1e3 * total(two, 'cpu', False):.1f}",
                     f"{total(two, 'wall') / alone:.2f}", f"{total(two, 'cpu') / alone:.2f}"])
    return rows


def torch_category(name):
    if "convolution_backward" in name or "conv" in name and "backward" in name:
        return "conv backward"
    if "conv" in name:
        return "conv forward"
    if "pool" in name:
        return "pooling"
    if "threshold" in name or "relu" in name or "clamp" in name:
        return "activations"
    if "softmax" in name or "nll" in name or "cross_entropy" in name:
        return "loss"
    if "Optimizer" in name or "sgd" in name.lower() or "adam" in name.lower():
        return "optimizer"
    if name.startswith("aten::") or name.startswith("autograd::"):
        return "other aten ops (copies, cat, add, fill, autograd glue)"
    return "other"


def profile_torch(step, steps):
    """Seconds per step by category (self CPU time of each operator)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    totals = {}
    for event in prof.key_averages():
        category = torch_category(event.key)
        totals[category] = totals.get(category, 0.0) + event.self_cpu_time_total / 1e6 / steps
    return totals


def phase_times(ours, theirs, opt, topt, x, y, repeats, clock):
    """Median seconds of forward, loss, backward and optimizer, ours and torch's, interleaved."""
    import torch

    import minisegnet as msn
    from minisegnet import functional as F

    xo, yo = msn.tensor(x), msn.tensor(y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def timed(model, loss_fn, optimizer, xi, yi):
        timing.settle()                   # the other library's spinning threads stop first
        t0 = clock()
        logits = model(xi)
        t1 = clock()
        loss = loss_fn(logits, yi)
        t2 = clock()
        optimizer.zero_grad()
        loss.backward()
        t3 = clock()
        optimizer.step()
        t4 = clock()
        return [t1 - t0, t2 - t1, t3 - t2, t4 - t3]

    samples = {"ours": [], "torch": []}
    for _ in range(2):
        timed(ours, F.cross_entropy, opt, xo, yo)
        timed(theirs, torch.nn.functional.cross_entropy, topt, xt, yt)
    for _ in range(repeats):
        samples["ours"].append(timed(ours, F.cross_entropy, opt, xo, yo))
        samples["torch"].append(timed(theirs, torch.nn.functional.cross_entropy, topt, xt, yt))
    return {who: [statistics.median(s[k] for s in rows) for k in range(4)] for who, rows in samples.items()}


def overhead(repeats, clock, model):
    """Median time of our step on the same network with 8x8 images (batch 1): its fixed cost."""
    ours, theirs, opt, topt, x, y = bts.build_pair(1, 8, model=model)
    ours_step, torch_step = bts.step_functions(ours, theirs, opt, topt, x, y)
    result = timing.compare(ours_step, torch_step, repeats, 3, clock)
    return result["ours"], result["theirs"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="profiled steps (default 10)")
    parser.add_argument("--repeats", type=int, default=9, help="timed steps for the phases (default 9)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", choices=("bench", "default"), default="bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats = 2, 3

    from minisegnet import allocator

    allocator.keep_freed_memory()          # as minisegnet train does; it holds for PyTorch too, in this process
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    ours, theirs, opt, topt, x, y = bts.build_pair(args.batch, args.size, model=args.model)
    ours_step, torch_step = bts.step_functions(ours, theirs, opt, topt, x, y)
    regimes = [("1 thread, CPU time", 1, time.process_time), ("default threads, wall time", None, time.perf_counter)]
    results, scaling, splits = [], None, []
    for label, n, clock in regimes:
        with timing.threads(n):
            for _ in range(2):
                ours_step()
                torch_step()
            phases = phase_times(ours, theirs, opt, topt, x, y, args.repeats, clock)
            cats, profiled = profile_ours(ours_step, args.steps, clock)
            tcats = profile_torch(torch_step, args.steps)
            fixed = overhead(args.repeats, clock, args.model)
            splits.append(thread_split(ours_step, args.steps))
            if n is None:
                import torch

                if torch.get_num_threads() > 1:
                    scaling = timing.torch_scaling(torch_step, torch.get_num_threads())
        results.append((label, phases, cats, profiled, tcats, fixed))
    load = monitor.stop()
    reasons = timing.verdict(load, scaling)
    print(timing.report_header(info, load, reasons,
                               f"Network: {args.model}; batch {args.batch}, 3x{args.size}x{args.size}."))
    for label, phases, cats, profiled, tcats, fixed in results:
        ours_total, torch_total = sum(phases["ours"]), sum(phases["torch"])
        print(f"\n#### {label}\n")
        rows = [[name, f"{1e3 * a:.1f}", f"{1e3 * b:.1f}", f"{a / b:.2f}"]
                for name, a, b in zip(["forward", "loss", "backward (with zero_grad)", "optimizer step"],
                                      phases["ours"], phases["torch"])]
        rows.append(["**step**", f"{1e3 * ours_total:.1f}", f"{1e3 * torch_total:.1f}",
                     f"{ours_total / torch_total:.2f}"])
        print(timing.markdown_table(["phase", "ours ms", "torch ms", "ratio"], rows, reasons))
        print(f"\nOurs by category (cProfile, own time; profiled step {1e3 * profiled:.1f} ms against "
              f"{1e3 * ours_total:.1f} ms unprofiled, so the profiler adds about "
              f"{100 * (profiled / ours_total - 1):.0f}%, nearly all of it to Python overhead):\n")
        rows = [[name, f"{1e3 * cats[name]:.1f}", f"{100 * cats[name] / profiled:.0f}%"]
                for name in CATEGORIES if cats[name] > 0]
        print(timing.markdown_table(["category", "ms per step", "share"], rows, reasons))
        print(f"\nFixed cost of a step (the same network on one 8x8 image): ours {1e3 * fixed[0]:.1f} ms, "
              f"torch {1e3 * fixed[1]:.1f} ms.\n")
        ttotal = sum(tcats.values())
        rows = [[name, f"{1e3 * v:.1f}", f"{100 * v / ttotal:.0f}%"]
                for name, v in sorted(tcats.items(), key=lambda kv: -kv[1])]
        print("PyTorch by operator category (torch.profiler, self CPU time of the operators, all threads):\n")
        print(timing.markdown_table(["category", "ms per step", "share"], rows, reasons))
    print("\n#### Column building and products, thread by thread\n")
    print("Each thread's own calls to the column building (im2col) and to `np.matmul` (every conv "
          "product), wall / CPU ms per step; the last columns add up both threads and divide by the "
          "one-thread CPU time (1.00: the work costs no more for being shared).\n")
    print(timing.markdown_table(["work", "1 thread, CPU ms", "2 threads: calling thread, wall / CPU ms",
                                 "worker, wall / CPU ms", "both threads' wall / 1 thread",
                                 "both threads' CPU / 1 thread"], thread_rows(*splits), reasons))
    print(timing.result_line({}, reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
