"""How the cost of a training step grows: batch size and image size, ours and PyTorch's.

The network and step of ``bench_train_step.py`` (U-Net base 16, depth 2,
SGD), timed at batch sizes 1-32 (64x64 images) and image sizes 64-256
(batch 8), ours and torch's interleaved at every point, default threads and
wall time (``--regime one``: one thread, CPU time). The slope of
log(time) against log(pixels per step) is fitted by least squares for each
library and each sweep: 1.0 means the time grows in proportion to the
pixels, below 1 that a fixed cost per step is being spread thinner.

    python benchmarks/bench_scaling.py                      # table, slopes, docs/measured/step_scaling.png
    python benchmarks/bench_scaling.py --quick              # a smoke run (few points, few repeats)
    python benchmarks/bench_scaling.py --figure out.png     # the figure elsewhere
"""
import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import bench_train_step as bts  # noqa: E402
import timing  # noqa: E402

BATCHES = [1, 2, 4, 8, 16, 32]
SIZES = [64, 96, 128, 192, 256]


def slope(points):
    """Least-squares slope of log(seconds) against log(pixels); ``points`` = [(pixels, seconds)]."""
    xs = [math.log(p) for p, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def measure(batch, size, repeats, clock):
    ours, theirs, opt, topt, x, y = bts.build_pair(batch, size)
    ours_step, torch_step = bts.step_functions(ours, theirs, opt, topt, x, y)
    return timing.compare(ours_step, torch_step, repeats, 1, clock)


def plot(results, path, label):
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (sweep, rows) in zip(axes, results.items()):
        xs = [r["x"] for r in rows]
        for who, style in (("ours", "o-"), ("theirs", "s--")):
            ys = [1e3 * r[who] for r in rows]
            ax.loglog(xs, ys, style, label=("minisegnet" if who == "ours" else "PyTorch") +
                      f" (slope {r_slope(rows, who):.2f})")
        ax.set_xlabel("batch size (64x64 images)" if sweep == "batch" else "image size (batch 8)")
        ax.set_ylabel("ms per training step")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(v) for v in xs])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"U-Net training step (base 16, depth 2): {label}")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def r_slope(rows, who):
    return slope([(r["pixels"], r[who]) for r in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--regime", choices=("default", "one"), default="default")
    parser.add_argument("--figure", default=os.path.join(ROOT, "docs", "measured", "step_scaling.png"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    batches, sizes = (BATCHES, SIZES) if not args.quick else ([1, 4], [64, 96])
    repeats = 2 if args.quick else args.repeats
    n, clock, label = ((None, time.perf_counter, "default threads, wall time") if args.regime == "default"
                       else (1, time.process_time, "one thread, CPU time"))
    from minisegnet import allocator

    allocator.keep_freed_memory()          # as minisegnet train does; it holds for PyTorch too, in this process
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    results, scaling = {"batch": [], "size": []}, None
    with timing.threads(n):
        for batch in batches:
            r = measure(batch, 64, repeats, clock)
            results["batch"].append(dict(x=batch, pixels=batch * 64 * 64, ours=r["ours"], theirs=r["theirs"]))
            print(f"  batch {batch}: ours {1e3 * r['ours']:.1f} ms, torch {1e3 * r['theirs']:.1f} ms", file=sys.stderr)
        for size in sizes:
            r = measure(8, size, repeats, clock)
            results["size"].append(dict(x=size, pixels=8 * size * size, ours=r["ours"], theirs=r["theirs"]))
            print(f"  size {size}: ours {1e3 * r['ours']:.1f} ms, torch {1e3 * r['theirs']:.1f} ms", file=sys.stderr)
        import torch

        if n is None and torch.get_num_threads() > 1:
            ours, theirs, opt, topt, x, y = bts.build_pair(8, 64)
            scaling = timing.torch_scaling(bts.step_functions(ours, theirs, opt, topt, x, y)[1],
                                           torch.get_num_threads())
    load = monitor.stop()
    reasons = timing.verdict(load, scaling)
    plot(results, args.figure, label + (" (UNRELIABLE: busy machine)" if reasons else ""))
    print(timing.report_header(info, load, reasons, f"{label}, {repeats} interleaved repeats, medians."))
    for sweep, title in (("batch", "batch size (3x64x64 images)"), ("size", "image size (batch 8)")):
        rows = [[str(r["x"]), f"{1e3 * r['ours']:.1f}", f"{1e3 * r['theirs']:.1f}", f"{r['ours'] / r['theirs']:.2f}",
                 f"{1e6 * r['ours'] / r['pixels']:.2f}", f"{1e6 * r['theirs'] / r['pixels']:.2f}"]
                for r in results[sweep]]
        print(f"\nStep time against {title}:\n")
        print(timing.markdown_table([title.split(" (")[0], "ours ms", "torch ms", "ratio", "ours us/pixel",
                                     "torch us/pixel"], rows, reasons))
        print(f"\nSlope of log(time) against log(pixels): ours {r_slope(results[sweep], 'ours'):.2f}, "
              f"torch {r_slope(results[sweep], 'theirs'):.2f}.")
    print(f"\n![step time against batch and image size]({os.path.relpath(args.figure, os.path.join(ROOT, 'docs'))})")
    print(timing.result_line({sweep: dict(ours=r_slope(rows, "ours"), torch=r_slope(rows, "theirs"))
                              for sweep, rows in results.items()}, reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
