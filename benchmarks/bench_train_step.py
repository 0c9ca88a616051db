"""One training step of a small U-Net: minisegnet against PyTorch CPU, same weights.

The network: 3 -> 16 -> 32 -> 64 channels, two 3x3 conv + ReLU per level
(padding 1), 2x2 max-pool down, 2x2 stride-2 transposed convs up,
concatenated skips, a 1x1 head to 4 classes; that is
``UNet(3, 4, base_channels=16, depth=2, padding="same")`` and its PyTorch twin
(``minisegnet.export.to_torch``, identical weights). A step is forward,
cross-entropy, zero_grad, backward and an SGD (momentum 0.9) update, on a
batch of 8 images of 64x64. ``--model default`` times the network of the
default ``minisegnet train`` run instead (base 8, depth 3, Adam).

* Speed, in two regimes: one thread everywhere (PyTorch, minisegnet's pool,
  OpenBLAS) timed in CPU time, and the default threads timed in wall time.
  Ours and torch's steps interleaved in one process, medians, ratio
  (``benchmarks/timing.py``). A parity check first: one step from the same
  weights must give the same loss and the same updated weights.
* Honesty: the load before and after and the CPU other processes used; in
  the default regime PyTorch is also timed at one thread and at two, and a
  run where two threads were not faster is flagged unreliable.
* Memory: peak RSS of a fresh process doing two steps at batch 4, 256x256,
  one process for ours and one for torch.
* ``--levers``: our step with each speed lever of ``functional/conv_fast.py``,
  of max pooling (``functional/pooling.py``), of ReLU
  (``activation.RELU_ZEROS_ARRAY``) and of the thread pool's cutting
  (``parallel.EVEN_RUNS``) switched from its default in turn, against the
  defaults, interleaved (one thread, CPU time, and default threads, wall time). At one thread the
  ``threads`` row measures only the pool's bookkeeping (there is nothing to
  share). Two rows are timed in fresh processes instead, three with the lever
  as set and three switched, alternately (``timing.in_fresh_processes``):
  ``threads`` (with the pool off, OpenBLAS's own two-thread products slow the
  pool's next calls in the same process, ``IN_FRESH_PROCESSES``) and, last,
  ``allocator.KEEP_FREED`` (freed memory kept in the process,
  ``minisegnet/allocator.py``), which changes the whole process.
* The process keeps its freed memory (``allocator.keep_freed_memory``), as
  ``minisegnet train`` does; that holds for PyTorch's arrays too.

    python benchmarks/bench_train_step.py              # both regimes, memory
    python benchmarks/bench_train_step.py --levers     # plus the lever table
    python benchmarks/bench_train_step.py --quick      # smoke run, not a measurement
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import timing  # noqa: E402

NUM_CLASSES = 4
LR, MOMENTUM = 0.01, 0.9
LEVERS = ["cache_pieces", "threads", "reuse_buffers", "unpadded", "pointwise", "flip", "keep_columns", "fused_bias",
          "row_taps", "stacked_rows", "transposed_weight_grad"]
# levers that are module constants, as "module.NAME" under minisegnet
CONSTANT_LEVERS = ["functional.pooling.START_AT_FIRST", "functional.pooling.COPY_IF_DISJOINT",
                   "functional.pooling.MASKS_BY_BITS", "functional.activation.RELU_ZEROS_ARRAY",
                   "parallel.EVEN_RUNS"]
# levers that change the whole process: timed in fresh processes (process_row)
PROCESS_LEVERS = ["allocator.KEEP_FREED"]
# conv_fast levers timed in fresh processes too: with the pool off, OpenBLAS runs its own threads,
# and one of its two-thread products slows the pool's next calls in the same process even after
# the settle (bench_conv.IN_FRESH_PROCESSES has the figures), so switching it back and forth in
# one process times the pool after the switch
IN_FRESH_PROCESSES = ["threads"]


def build_ours(batch, size, seed=0, model="bench"):
    """Our U-Net, its optimizer and one batch ``(x, y)``, without PyTorch.

    ``model="bench"``: base 16, depth 2, SGD with momentum (the table's network);
    ``model="default"``: base 8, depth 3, Adam 3e-3 (``minisegnet train``'s).
    """
    import minisegnet as msn
    from minisegnet.models import UNet

    msn.manual_seed(seed)
    if model == "default":
        ours = UNet(3, NUM_CLASSES, base_channels=8, depth=3, padding="same")
        opt = msn.optim.Adam(ours.parameters(), lr=3e-3)
    else:
        ours = UNet(3, NUM_CLASSES, base_channels=16, depth=2, padding="same")
        opt = msn.optim.SGD(ours.parameters(), lr=LR, momentum=MOMENTUM)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, (batch, size, size))
    return ours, opt, x, y


def build_pair(batch, size, seed=0, model="bench"):
    """``build_ours``'s network, optimizer and batch, plus its PyTorch twin (the same weights)
    and the twin's optimizer: ``(ours, theirs, opt, topt, x, y)``."""
    import torch

    from minisegnet.export import to_torch

    ours, opt, x, y = build_ours(batch, size, seed, model)
    theirs = to_torch(ours)
    if model == "default":
        topt = torch.optim.Adam(theirs.parameters(), lr=3e-3)
    else:
        topt = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM)
    return ours, theirs, opt, topt, x, y


def ours_step_function(ours, opt, x, y):
    """One training step of ``ours`` on ``(x, y)``: forward, loss, backward, optimizer; returns the loss."""
    import minisegnet as msn
    from minisegnet import functional as F

    xo, yo = msn.tensor(x), msn.tensor(y)

    def ours_step():
        loss = F.cross_entropy(ours(xo), yo)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return ours_step


def step_functions(ours, theirs, opt, topt, x, y):
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    ours_step = ours_step_function(ours, opt, x, y)

    def torch_step():
        loss = torch.nn.functional.cross_entropy(theirs(xt), yt)
        topt.zero_grad()
        loss.backward()
        topt.step()
        return loss.item()

    return ours_step, torch_step


def parity_check(model="bench"):
    """One step of the timed network and optimizer (``model``) from identical weights: losses and
    updated weights agree (float32)."""
    ours, theirs, opt, topt, x, y = build_pair(2, 32, seed=1, model=model)
    ours_step, torch_step = step_functions(ours, theirs, opt, topt, x, y)
    a, b = ours_step(), torch_step()
    worst = 0.0
    twin_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        worst = max(worst, float(np.abs(value - twin_state[name].detach().numpy()).max()))
    if abs(a - b) > 1e-4 * max(1.0, abs(b)) or worst > 1e-4:
        raise SystemExit(f"parity check failed: loss {a} vs {b}, max weight difference {worst:g}")
    return abs(a - b), worst


MEMORY_CODE = """
import sys
sys.path[:0] = [{root!r}, {here!r}]
import bench_train_step as b
from minisegnet import allocator
allocator.keep_freed_memory()
ours, theirs, opt, topt, x, y = b.build_pair({batch}, {size})
ours_step, torch_step = b.step_functions(ours, theirs, opt, topt, x, y)
del {drop}
for _ in range(2):
    {which}_step()
"""


def peak_rss(which, batch=4, size=256):
    """Peak RSS (MiB) of a fresh process running two steps of ``which`` ("ours" or "torch").

    Both processes import both libraries (the twin is built from our model), so
    the import overhead is the same on both sides; the other library's model is
    deleted before the steps.
    """
    drop = "theirs, topt" if which == "ours" else "ours, opt"
    code = MEMORY_CODE.format(root=ROOT, here=HERE, batch=batch, size=size, drop=drop, which=which)
    mib, _ = timing.python_peak_rss_mib(code, env=dict(os.environ))
    return mib


def baseline_rss():
    """Peak RSS of a process that only imports both libraries and builds the models."""
    code = MEMORY_CODE.format(root=ROOT, here=HERE, batch=1, size=16, drop="x", which="").split("for _ in")[0]
    mib, _ = timing.python_peak_rss_mib(code, env=dict(os.environ))
    return mib


def with_lever_switched(step, name):
    """``step`` run with the lever ``name`` (of conv_fast, or one of ``CONSTANT_LEVERS``) in
    its other state (restored after)."""
    import importlib

    from minisegnet.functional import conv_fast

    def run():
        if name in CONSTANT_LEVERS:
            module_name, constant = name.rsplit(".", 1)
            module = importlib.import_module("minisegnet." + module_name)
            with timing.constants_set(module, **{constant: not getattr(module, constant)}):
                return step()
        with timing.lever_set(name, not conv_fast.lever(name)):
            return step()

    return run


PROCESS_CODE = """
import json, resource, sys, time
sys.path[:0] = [{root!r}, {here!r}]
import numpy as np
import bench_train_step as b, timing
from minisegnet import allocator
from minisegnet.functional import conv_fast
{setup}
allocator.keep_freed_memory()
ours, opt, x, y = b.build_ours({batch}, {size}, model={model!r})
step = b.ours_step_function(ours, opt, x, y)
medians = {{}}
for regime, n, clock in (("one", 1, time.process_time), ("default", None, time.perf_counter)):
    if {regime!r} not in ("both", regime):
        continue
    with timing.threads(n):
        for _ in range({warmup} + 1):
            step()
        times = []
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range({repeats}):
            start = clock()
            step()
            times.append(clock() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
    medians[regime] = float(np.median(times))
    medians[regime + "_faults"] = (after.ru_minflt - before.ru_minflt) / {repeats}
    medians[regime + "_kernel"] = (after.ru_stime - before.ru_stime) / {repeats}
print(json.dumps(medians))
"""


def process_row(args, name, processes=3):
    """The lever ``name`` (``allocator.KEEP_FREED``, or a conv_fast lever of
    ``IN_FRESH_PROCESSES``), which cannot be switched back and forth within one process
    without the switch itself changing what is timed: fresh processes, alternately with
    the lever as set by default and switched (``processes`` of each), each timing
    ``args.repeats`` steps back to back; the medians of their medians. Returns
    ``(row, sentence)``; the sentence (page faults and kernel time) for the allocator only."""
    from minisegnet import allocator
    from minisegnet.functional import conv_fast

    default = allocator.KEEP_FREED if name == "allocator.KEEP_FREED" else conv_fast.lever(name)
    codes = {}
    for as_set in (True, False):
        value = default if as_set else not default
        setup = (f"allocator.KEEP_FREED = {value}" if name == "allocator.KEEP_FREED"
                 else f"conv_fast.set_lever({name!r}, {value})")
        codes[as_set] = PROCESS_CODE.format(root=ROOT, here=HERE, setup=setup, batch=args.batch, size=args.size,
                                            model=args.model, regime=args.regime, warmup=args.warmup,
                                            repeats=args.repeats)
    times = timing.in_fresh_processes(codes, processes)
    row, notes = [f"{name} (fresh processes)"], []
    for regime in ("one", "default"):
        if args.regime not in ("both", regime):
            row += ["", "", ""]
            continue
        on, off = (float(np.median([t[regime] for t in times[as_set]])) for as_set in (True, False))
        row += [f"{1e3 * on:.1f}", f"{1e3 * off:.1f}", f"{off / on:.2f}"]
        faults, kernel = ({as_set: float(np.median([t[regime + key] for t in times[as_set]]))
                           for as_set in (True, False)} for key in ("_faults", "_kernel"))
        notes.append(f"{'one thread' if regime == 'one' else 'default threads'}: {faults[True]:.0f} page faults "
                     f"and {1e3 * kernel[True]:.1f} ms of kernel time a step with it on, {faults[False]:.0f} and "
                     f"{1e3 * kernel[False]:.1f} ms off")
    print(f"  lever {name}: {row[1:]}", file=sys.stderr)
    sentence = (f"`{name}` (medians of the processes): " + "; ".join(notes) + "."
                if name == "allocator.KEEP_FREED" else None)
    return row, sentence


def time_steps(args, ours_step, torch_step, result):
    """The speed table rows: one thread (CPU time) and default threads (wall time); the
    ratios also go into ``result``."""
    rows, scaling = [], None
    label = f"U-Net step, batch {args.batch}, 3x{args.size}x{args.size}"
    if args.regime in ("both", "one"):
        with timing.threads(1):
            one = timing.compare(ours_step, torch_step, args.repeats, args.warmup, time.process_time)
        rows.append([label, "1 thread, CPU time", f"{1e3 * one['ours']:.1f}", f"{1e3 * one['theirs']:.1f}",
                     f"{one['ratio']:.2f}", f"{one['spread']:.2f}"])
        result["one"] = dict(ours_ms=1e3 * one["ours"], torch_ms=1e3 * one["theirs"], ratio=one["ratio"])
    if args.regime == "one":
        return rows, scaling
    with timing.threads(None):
        default = timing.compare(ours_step, torch_step, args.repeats, args.warmup, time.perf_counter)
        import torch

        n = torch.get_num_threads()
        if n > 1:
            scaling = timing.torch_scaling(torch_step, n, repeats=max(3, args.repeats // 2))
    rows.append([label, "default threads, wall time", f"{1e3 * default['ours']:.1f}",
                 f"{1e3 * default['theirs']:.1f}", f"{default['ratio']:.2f}", f"{default['spread']:.2f}"])
    result["default"] = dict(ours_ms=1e3 * default["ours"], torch_ms=1e3 * default["theirs"],
                             ratio=default["ratio"])
    return rows, scaling


def lever_rows(args, ours_step):
    """Our step with each lever switched (off, or on if it is off by default) against the
    default levers, interleaved, in both regimes (the levers that cannot be switched within one
    process in fresh processes, ``process_row``); and a sentence on the allocator's page
    faults: ``(rows, sentence)``."""
    rows = []
    for name in LEVERS + CONSTANT_LEVERS:
        if name in IN_FRESH_PROCESSES:
            continue
        off = with_lever_switched(ours_step, name)
        row = [name.replace("functional.", "")]
        for regime, n, clock in (("one", 1, time.process_time), ("default", None, time.perf_counter)):
            if args.regime not in ("both", regime):
                row += ["", "", ""]
                continue
            with timing.threads(n):
                r = timing.compare(ours_step, off, args.repeats, args.warmup, clock)
            row += [f"{1e3 * r['ours']:.1f}", f"{1e3 * r['theirs']:.1f}", f"{1 / r['ratio']:.2f}"]
        rows.append(row)
        print(f"  lever {name}: {row[1:]}", file=sys.stderr)
    rows += [process_row(args, name)[0] for name in IN_FRESH_PROCESSES]
    row, note = process_row(args, "allocator.KEEP_FREED")
    return rows + [row], note


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed pairs (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed pairs first (default 2)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", choices=("bench", "default"), default="bench",
                        help="bench: base 16, depth 2, SGD (default); default: minisegnet train's network")
    parser.add_argument("--regime", choices=("both", "one", "default"), default="both",
                        help="one thread with CPU time, default threads with wall time, or both (default)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--levers", action="store_true",
                        help="also time each conv_fast, max-pooling, ReLU and parallel lever switched from its default")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1

    from minisegnet import allocator

    allocator.keep_freed_memory()          # as minisegnet train does; it holds for PyTorch too, in this process
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    loss_gap, weight_gap = parity_check(args.model)
    ours, theirs, opt, topt, x, y = build_pair(args.batch, args.size, model=args.model)
    ours_step, torch_step = step_functions(ours, theirs, opt, topt, x, y)
    result = {}
    rows, scaling = time_steps(args, ours_step, torch_step, result)
    levers, lever_note = lever_rows(args, ours_step) if args.levers else (None, None)
    load = monitor.stop()
    reasons = timing.verdict(load, scaling)

    extra = (f"{args.repeats} interleaved repeats, medians. Parity before timing: one step from the same "
             f"weights, |loss difference| {loss_gap:.1e}, max |weight difference| {weight_gap:.1e}.")
    if scaling is not None:
        extra += (f" PyTorch alone: {1e3 * scaling[0]:.1f} ms at one thread, {1e3 * scaling[1]:.1f} ms at its "
                  f"default threads (wall).")
    print(timing.report_header(info, load, reasons, extra) + "\n")
    print(timing.markdown_table(["step", "regime", "ours ms", "torch ms", "ratio (ours / torch)", "noise"],
                                rows, reasons))
    if levers is not None:
        print("\nOur step with one lever (of functional/conv_fast.py, pooling.py, activation.py, parallel.py or "
              "allocator.py) "
              "switched from its default (\"switched / default\" > 1: the default setting pays; keep_columns is "
              "off by default, so its row switches it on):\n")
        print(timing.markdown_table(["lever switched", "1 thread: default ms", "switched ms", "switched / default",
                                     "default threads: default ms", "switched ms", "switched / default"],
                                    levers, reasons))
        print("\n" + lever_note)
    if not args.no_memory:
        base = baseline_rss()
        ours_mib, torch_mib = peak_rss("ours"), peak_rss("torch")
        print()
        print(timing.markdown_table(
            ["peak RSS, two steps at batch 4, 3x256x256", "ours MiB", "torch MiB", "ratio (ours / torch)"],
            [["whole process (both libraries imported)", f"{ours_mib:.0f}", f"{torch_mib:.0f}",
              f"{ours_mib / torch_mib:.2f}"],
             ["above the import-only baseline " + f"({base:.0f} MiB)", f"{ours_mib - base:.0f}",
              f"{torch_mib - base:.0f}", f"{(ours_mib - base) / max(torch_mib - base, 1):.2f}"]], reasons))
        result["peak_rss_mib"] = dict(ours=ours_mib, torch=torch_mib)
    print(timing.result_line(result, reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
