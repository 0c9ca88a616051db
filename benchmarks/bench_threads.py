"""What a second thread buys NumPy work in minisegnet's thread pool, by kind of work and by size.

    python benchmarks/bench_threads.py           # the table
    python benchmarks/bench_threads.py --quick   # a smoke run, not a measurement

``minisegnet.parallel`` shares work out over plain Python threads, which
overlap only while NumPy has let go of the interpreter lock, inside an
operation's loop (docs/performance.md, "Using both cores", says why that
limits them). This script measures what is left of a second core: for each kind of
work the pool runs (a chain of elementwise ufuncs, the strided copies im2col
is made of, a gather with ``np.take``, a scatter-add with ``np.add.at``, and
a small matrix product) and each size of one operation (4096 to 1048576
float32 elements), the same total amount of work is cut into tasks whose
operations have that size and run through ``parallel.run`` at one thread and
at two. Wall time, one and two threads back to back in every round (their
order alternating); each cell is ``one thread / two threads`` (above 1: the
second thread helped; below 1: it made the work slower), the median over the
rounds and the interquartile range of the rounds' ratios.

Each task writes only its own thread's output arrays (``threading.local``),
as the pool's rule asks; OpenBLAS is held to one thread inside the pool, so
the matrix products measure the pool's threads, not OpenBLAS's. Changing the
thread count starts a new pool, so each timing follows an untimed warm-up
run at its thread count (the new thread started, its arrays made).
"""
import argparse
import os
import statistics
import sys
import threading

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import timing  # noqa: E402

SIZES = [4096, 16384, 65536, 262144, 1048576]
TOTAL = 1 << 23          # elements of work per cell, whatever the size of one operation
ROW = 64                 # the length of a row in the strided copy: one image row of 64 pixels


def kinds(rng):
    """name -> ``make(size)``, which returns ``task(k)`` doing about ``size`` elements' worth of work
    per operation (and ``TOTAL // size`` tasks covering the cell's work)."""
    local = threading.local()

    def own(name, shape, dtype=np.float32):
        """This thread's output array ``name`` of ``shape`` (made on first use)."""
        key = (name, shape)
        arrays = local.__dict__.setdefault("arrays", {})
        if key not in arrays:
            arrays[key] = np.zeros(shape, dtype)
        return arrays[key]

    def elementwise(size):
        a = rng.standard_normal(size).astype(np.float32)

        def task(_):
            for _ in range(4):          # fresh results, as an op's forward pass makes them
                b = a * 1.5
                a + b
        return task

    def strided_copy(size):
        rows = size // ROW              # one im2col tap: rows of 64 pixels out of a wider padded image
        source = rng.standard_normal((rows, ROW + 2)).astype(np.float32)

        def task(_):
            out = own("copy", (rows, ROW))
            for _ in range(4):
                out[...] = source[:, 1:ROW + 1]
        return task

    def gather(size):
        table = rng.standard_normal(65536).astype(np.float32)
        index = rng.integers(0, table.size, size)

        def task(_):
            for _ in range(4):          # fresh results, as grid_sample's corner reads make them
                np.take(table, index)
        return task

    def scatter_add(size):
        index = rng.integers(0, 65536, size)
        values = rng.standard_normal(size).astype(np.float32)

        def task(_):
            target = own("add.at", (65536,))
            np.add.at(target, index, values)
        return task

    def matmul(size):
        weights = rng.standard_normal((16, 72)).astype(np.float32)   # 16 filters of 8 channels x 3x3
        columns = rng.standard_normal((72, size // 16)).astype(np.float32)

        def task(_):
            out = own("matmul", (16, size // 16))
            np.matmul(weights, columns, out=out)
        return task

    return {"elementwise (4 x two ufuncs, fresh results)": elementwise,
            "strided copy (4 x im2col-like rows of 64)": strided_copy,
            "gather (4 x np.take, fresh results)": gather,
            "scatter-add (np.add.at)": scatter_add,
            "matrix product (16 x 72 weights)": matmul}


def measure(make, size, repeats):
    """``one / two`` for each of ``repeats`` rounds: the cell's wall time at one thread over its
    time at two, the two timed back to back (their order alternating) in every round."""
    from minisegnet import parallel

    task = make(size)
    items = list(range(max(2, TOTAL // size)))
    ratios = []
    for r in range(repeats + 1):
        seconds = {}
        for n in ((1, 2) if r % 2 else (2, 1)):
            parallel.set_num_threads(n)         # a new thread count starts a new pool ...
            parallel.run(task, items[:8])       # ... so warm it (its thread, their arrays) untimed
            seconds[n] = timing.time_once(lambda: parallel.run(task, items))
        if r:                                   # the first round warms up the rest
            ratios.append(seconds[1] / seconds[2])
    return ratios


def cell(ratios):
    """The median ratio and its interquartile range, e.g. ``1.25 (1.10-1.38)``."""
    q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{median:.2f} ({q1:.2f}-{q3:.2f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two sizes, three rounds: a smoke run")
    args = parser.parse_args(argv)
    from minisegnet import parallel

    sizes, repeats = (SIZES[:2], 3) if args.quick else (SIZES, 21)
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    previous = parallel.get_num_threads()
    rows = []
    try:
        for name, make in kinds(np.random.default_rng(0)).items():
            rows.append([name] + [cell(measure(make, size, repeats)) for size in sizes])
    finally:
        parallel.set_num_threads(previous)
    load = monitor.stop()
    reasons = timing.verdict(load)
    print(timing.report_header(
        info, load, reasons,
        f"{TOTAL} float32 elements of work per cell, cut into tasks whose operations have the column's size, "
        f"run through minisegnet.parallel.run; wall time, one and two threads back to back in each of "
        f"{repeats} rounds.")
        + "\n")
    print(timing.markdown_table(["work (one task)"] + [f"{size} elements" for size in sizes], rows, reasons))
    print("\nEach cell: one thread's time / two threads' time, the median over the rounds (and the middle "
          "half of the rounds' ratios, their interquartile range).")
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
