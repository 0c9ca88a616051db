"""One training step of a small U-Net: minisegnet against PyTorch CPU, same weights.

The network (issue 7): 3 -> 16 -> 32 -> 64 channels, two 3x3 conv + ReLU per
level (padding 1), 2x2 max-pool down, 2x2 stride-2 transposed convs up,
concatenated skips, a 1x1 head to 4 classes; that is
``UNet(3, 4, base_channels=16, depth=2, padding="same")`` and its PyTorch twin
(``minisegnet.export.to_torch``, identical weights). A step is forward,
cross-entropy, zero_grad, backward and an SGD (momentum 0.9) update, on a
batch of 8 images of 64x64.

* Speed: ours and torch's steps interleaved in one process, medians, ratio
  (``benchmarks/timing.py``). A parity check first: one step from the same
  weights must give the same loss and the same updated weights.
* Memory: peak RSS of a fresh process doing two steps at batch 4, 256x256,
  one process for ours and one for torch (each includes its interpreter and
  library imports: that is what a user's training process costs).

    python benchmarks/bench_train_step.py                 # wall time, default threads
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_train_step.py --threads 1 --clock cpu
    python benchmarks/bench_train_step.py --quick         # smoke run, not a measurement
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


def build_pair(batch, size, seed=0):
    """Our U-Net, its PyTorch twin with the same weights, both SGD optimizers, and one batch."""
    import torch

    import minisegnet as msn
    from minisegnet.export import to_torch
    from minisegnet.models import UNet

    msn.manual_seed(seed)
    ours = UNet(3, NUM_CLASSES, base_channels=16, depth=2, padding="same")
    theirs = to_torch(ours)
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 3, size, size), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, (batch, size, size))
    opt = msn.optim.SGD(ours.parameters(), lr=LR, momentum=MOMENTUM)
    topt = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM)
    return ours, theirs, opt, topt, x, y


def step_functions(ours, theirs, opt, topt, x, y):
    import torch

    import minisegnet as msn
    from minisegnet import functional as F

    xo, yo = msn.tensor(x), msn.tensor(y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def ours_step():
        loss = F.cross_entropy(ours(xo), yo)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def torch_step():
        loss = torch.nn.functional.cross_entropy(theirs(xt), yt)
        topt.zero_grad()
        loss.backward()
        topt.step()
        return loss.item()

    return ours_step, torch_step


def parity_check():
    """One step from identical weights: losses and updated weights agree (float32)."""
    ours, theirs, opt, topt, x, y = build_pair(2, 32, seed=1)
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
    env = dict(os.environ)
    mib, _ = timing.python_peak_rss_mib(code, env=env)
    return mib


def baseline_rss():
    """Peak RSS of a process that only imports both libraries and builds the models."""
    code = MEMORY_CODE.format(root=ROOT, here=HERE, batch=1, size=16, drop="x", which="").split("for _ in")[0]
    mib, _ = timing.python_peak_rss_mib(code, env=dict(os.environ))
    return mib


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed pairs (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed pairs first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time (default) or this process's CPU time")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    loss_gap, weight_gap = parity_check()
    ours, theirs, opt, topt, x, y = build_pair(8, 64)
    ours_step, torch_step = step_functions(ours, theirs, opt, topt, x, y)
    result = timing.compare(ours_step, torch_step, repeats=args.repeats, warmup=args.warmup, clock=clock)

    print(f"<!-- {timing.machine_summary()}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
          f"; clock {args.clock}; {args.repeats} repeats -->")
    print(f"Parity before timing: one step from the same weights, |loss difference| {loss_gap:.1e}, "
          f"max |weight difference| {weight_gap:.1e}.\n")
    print(timing.markdown_table(
        ["U-Net training step (batch 8, 3x64x64)", "ours ms", "torch ms", "ratio (ours / torch)", "noise"],
        [["forward + cross-entropy + backward + SGD", f"{1e3 * result['ours']:.1f}",
          f"{1e3 * result['theirs']:.1f}", f"{result['ratio']:.2f}", f"{result['spread']:.2f}"]]))
    if not args.no_memory:
        base = baseline_rss()
        ours_mib, torch_mib = peak_rss("ours"), peak_rss("torch")
        print()
        print(timing.markdown_table(
            ["peak RSS, two steps at batch 4, 3x256x256", "ours MiB", "torch MiB", "ratio (ours / torch)"],
            [["whole process (both libraries imported)", f"{ours_mib:.0f}", f"{torch_mib:.0f}",
              f"{ours_mib / torch_mib:.2f}"],
             ["above the import-only baseline " + f"({base:.0f} MiB)", f"{ours_mib - base:.0f}",
              f"{torch_mib - base:.0f}", f"{(ours_mib - base) / max(torch_mib - base, 1):.2f}"]]))


if __name__ == "__main__":
    main()
