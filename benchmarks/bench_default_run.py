"""The default run, timed as a user meets it: ``minisegnet train`` with no arguments.

Runs the command in a fresh process (default threads, a temporary run
folder), takes the wall time of the whole command and the training time it
reports, and reads the held-out scores from the run's ``metrics.json``.
The load is recorded around the runs (the child's CPU time counts as ours).
The command runs ``--runs`` times (3 by default), one after the other, and
the median whole-command time is the result: on a shared machine the same
command's time moves by several seconds from one run to the next, more
than the load average shows (other tenants of the host share its memory
and caches), so one run is one sample, not a figure.

``--levers``: then the command with ``allocator.KEEP_FREED`` off (freed memory
given back to the system, the C library's default) and on, alternately,
``--lever-pairs`` times (2 by default): the lever changes whole processes, so
this is the one place it can be timed on the default run.

    python benchmarks/bench_default_run.py
    python benchmarks/bench_default_run.py --levers
    python benchmarks/bench_default_run.py --runs 1 -- --epochs 1     # extra arguments for the command (a smoke run)
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import timing  # noqa: E402

TARGET_SECONDS = 45
TARGET_MEAN_IU = 0.95


# the command with the lever allocator.KEEP_FREED switched off first
KEEP_FREED_OFF = ("import sys\nfrom minisegnet import allocator, cli\nallocator.KEEP_FREED = False\n"
                  "sys.exit(cli.main(['train', '--out', {out!r}] + {extra!r}))")


def run_once(extra, keep_freed=True):
    """``minisegnet train --out <temporary folder> *extra`` in a fresh process: ``(wall seconds,
    reported training seconds or None, metrics.json)``. ``keep_freed=False``: with
    ``allocator.KEEP_FREED`` off."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        command = ([sys.executable, "-m", "minisegnet", "train", "--out", out] + extra if keep_freed else
                   [sys.executable, "-c", KEEP_FREED_OFF.format(out=out, extra=extra)])
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"minisegnet train failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
    done = re.search(r"done in (\d+) s", proc.stdout)
    return seconds, (done.group(1) if done else None), metrics


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="how many times to run the command (default 3)")
    parser.add_argument("--levers", action="store_true",
                        help="also run the command with allocator.KEEP_FREED off and on, alternately")
    parser.add_argument("--lever-pairs", type=int, default=2, help="off/on pairs for --levers (default 2)")
    args = parser.parse_args(own)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.lever_pairs < 1:
        parser.error(f"--lever-pairs must be at least 1, got {args.lever_pairs}")
    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    runs = [run_once(extra) for _ in range(args.runs)]
    pairs = [(run_once(extra, keep_freed=False)[0], run_once(extra)[0]) for _ in range(args.lever_pairs)] \
        if args.levers else []
    load = monitor.stop()
    seconds = statistics.median(s for s, _, _ in runs)
    metrics = runs[0][2]                       # the same seed: the same scores every run
    reasons = timing.verdict(load)
    command = "minisegnet train" + (" " + " ".join(extra) if extra else "")
    print(timing.report_header(info, load, reasons, f"Command: `{command}` (plus `--out` a temporary folder), "
                                                    f"run {args.runs} times, one after the other."))
    print()
    rows = []
    for k, (wall, reported, m) in enumerate(runs, 1):
        last = m["epochs"][-1]
        rows.append([f"run {k}", f"{wall:.1f}", reported or "?",
                     f"{m['best']['mean_iou']:.3f} (epoch {m['best']['epoch']})",
                     f"{last['mean_iou']:.3f}", f"{last['pixel_acc']:.3f}"])
    if args.runs > 1:
        rows.append(["**median**", f"**{seconds:.1f}**", "", "", "", ""])
    print(timing.markdown_table(["`" + command + "`", "whole command s (wall)", "training s (as reported)",
                                 "best held-out mean IU", "last epoch mean IU", "last epoch pixel acc."],
                                rows, reasons))
    if pairs:
        off, on = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        print("\nThe command with the lever `allocator.KEEP_FREED` (freed memory kept in each process, "
              "`minisegnet/allocator.py`) switched off and on, alternately, after the runs above:\n")
        print(timing.markdown_table(["pair", "KEEP_FREED off: whole command s", "on: whole command s", "off / on"],
                                    [[f"pair {k}", f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}"]
                                     for k, (a, b) in enumerate(pairs, 1)]
                                    + [["**median**", f"**{off:.1f}**", f"**{on:.1f}**", f"**{off / on:.2f}**"]],
                                    reasons))
    if not extra:
        met = seconds <= TARGET_SECONDS and metrics["best"]["mean_iou"] >= TARGET_MEAN_IU
        print(f"\nTarget (<= {TARGET_SECONDS} s for the median run, mean IU >= {TARGET_MEAN_IU}): "
              + ("met" if met else "not met") + ("" if not reasons else " (on a busy machine: not a result)") + ".")
    print(timing.result_line(dict(seconds=seconds, runs=[round(s, 2) for s, _, _ in runs],
                                  mean_iou=metrics["best"]["mean_iou"], extra=extra,
                                  keep_freed_pairs=[[round(a, 2), round(b, 2)] for a, b in pairs]), reasons))
    return 0 if not reasons else 3

if __name__ == "__main__":
    sys.exit(main())
