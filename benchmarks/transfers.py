"""Host-device traffic of one training step on the CuPy backend, per model, counted by the CPU stand-in.

    python benchmarks/transfers.py            # the table of docs/benchmarks.md, then each copy's call site

A step is what the trainer does per batch (``tests/test_transfers.py``):
upload the images and masks, forward, cross-entropy, backward, an SGD update,
read the loss for the progress bar, score the batch into a confusion matrix.
The counts come from ``tests/cupy_standin``, which records every copy between
host and device, and every value a CuPy routine would read back on its own;
they are counts, not times, so they do not depend on the machine. The second
of two steps is reported (the first also builds the resize tables once).
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import cupy_standin  # noqa: E402

cupy_standin.install()

from test_transfers import MODELS, count_step_transfers  # noqa: E402


def main():
    rows, reports = [], []
    for name in MODELS:
        log, batch = count_step_transfers(name, cupy_standin.count_transfers)
        down = [e for e in log.events if e.direction == "D2H"]
        rows.append(f"| {name} | {log.count('H2D')} ({log.nbytes('H2D')} B; the batch is {batch} B) "
                    f"| {len(down)} ({log.nbytes('D2H')} B, largest {max(e.nbytes for e in down)} B) |")
        reports.append(f"{name}: {log.report()}")
    print("| model | uploads per step | downloads per step |\n|---|---|---|")
    print("\n".join(rows))
    print()
    print("\n\n".join(reports))


if __name__ == "__main__":
    main()
