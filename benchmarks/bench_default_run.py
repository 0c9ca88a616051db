"""The default run, timed as a user meets it: ``minisegnet train`` with no arguments.

Runs the command in a fresh process (default threads, a temporary run
folder), takes the wall time of the whole command and the training time it
reports, and reads the held-out scores from the run's ``metrics.json``.
The load is recorded around it (the child's CPU time counts as ours).

    python benchmarks/bench_default_run.py
    python benchmarks/bench_default_run.py -- --epochs 1     # extra arguments for the command (a smoke run)
"""
import json
import os
import re
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    info = timing.machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        monitor = timing.LoadMonitor().start()
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "minisegnet", "train", "--out", out] + extra, cwd=tmp,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        load = monitor.stop()
        if proc.returncode != 0:
            raise SystemExit(f"minisegnet train failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
    done = re.search(r"done in (\d+) s", proc.stdout)
    last = metrics["epochs"][-1]
    reasons = timing.verdict(load)
    command = "minisegnet train" + (" " + " ".join(extra) if extra else "")
    print(timing.report_header(info, load, reasons, f"Command: `{command}` (plus `--out` a temporary folder)."))
    print()
    rows = [[f"`{command}`", f"{seconds:.1f}", done.group(1) if done else "?",
             f"{metrics['best']['mean_iou']:.3f} (epoch {metrics['best']['epoch']})",
             f"{last['mean_iou']:.3f}", f"{last['pixel_acc']:.3f}"]]
    print(timing.markdown_table(["command", "whole command s (wall)", "training s (as reported)",
                                 "best held-out mean IU", "last epoch mean IU", "last epoch pixel acc."],
                                rows, reasons))
    if not extra:
        met = seconds <= TARGET_SECONDS and metrics["best"]["mean_iou"] >= TARGET_MEAN_IU
        print(f"\nTarget (<= {TARGET_SECONDS} s, mean IU >= {TARGET_MEAN_IU}): "
              + ("met" if met else "not met") + ("" if not reasons else " (on a busy machine: not a result)") + ".")
    print(timing.result_line(dict(seconds=seconds, mean_iou=metrics["best"]["mean_iou"], extra=extra), reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
