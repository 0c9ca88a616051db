"""FCN-32s, FCN-16s and FCN-8s trained the same way on ``Shapes``: a small
replica of the FCN paper's Table 2 comparison.

The three variants share everything (seed, data, optimiser, steps) except
the skips: 32s upsamples the stride-32 scores in one step, 16s adds scores
from pool4 (stride 16), 8s also from pool3 (stride 8). On 64x64 images a
stride-32 map is 2x2, so the skips matter even more than on VOC. The
paper's numbers (VOC 2011 val; pixel acc. / mean acc. / mean IU / f.w. IU):

    FCN-32s  89.1 / 73.3 / 59.4 / 81.4
    FCN-16s  90.0 / 75.7 / 62.4 / 83.0
    FCN-8s   90.3 / 75.9 / 62.7 / 83.2

The full run (a few minutes on a CPU) checks the ordering of the paper's
table on held-out mean IU: FCN-32s < FCN-16s < FCN-8s, with the pool4 skip
(32s -> 16s) gaining more than the pool3 skip (16s -> 8s). ``--record``
writes its numbers to ``docs/figures/fcn_variants_on_shapes.json``, which
docs/fcn.md checks its table against. ``--fast`` is a smoke test that says
so: 32x32 images (a 1x1 score map for FCN-32s) and a few steps, checking
only that the table is well formed.

Run: ``python examples/fcn_variants_on_shapes.py`` (``--fast`` or ``MINISEGNET_FAST=1``;
``--record``). See docs/fcn.md and docs/metrics.md.
"""
import json
import os
import sys
import time

import numpy as np

import minisegnet as msn
from minisegnet import functional as F, metrics, optim
from minisegnet.data import DataLoader, Shapes
from minisegnet.models import FCN

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


def train_and_score(variant, train, val, epochs):
    msn.manual_seed(0)                       # the same initial weights for the shared layers
    model = FCN(4, variant=variant, width=8, fc_channels=64, dropout=0.0)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for images, masks in DataLoader(train, batch_size=8, shuffle=True, seed=0):
            loss = F.cross_entropy(model(msn.tensor(images)), msn.tensor(masks))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    cm = np.zeros((4, 4), dtype=np.int64)
    with msn.no_grad():
        for images, masks in DataLoader(val, batch_size=8):
            cm += metrics.confusion_matrix(model(msn.tensor(images)).numpy().argmax(1), masks, 4)
    return metrics.scores(cm)


def main():
    size, n_train, epochs = (32, 16, 1) if FAST else (64, 256, 8)
    if FAST:
        print("FAST MODE: a smoke test (16 images of 32x32, one epoch; at 32x32 FCN-32s's score map is 1x1), "
              "so the numbers below mean nothing. Run without --fast for the comparison.\n")
    train = Shapes(num_samples=n_train, size=size, seed=0)
    val = Shapes(num_samples=8 if FAST else 64, size=size, seed=0, split="val")
    print(f"Shapes {size}x{size}, {n_train} training images, {epochs} epochs each\n")
    print("| model | pixel acc. | mean acc. | mean IU | f.w. IU | time |")
    print("|---|---|---|---|---|---|")
    results, seconds = {}, {}
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for variant in ("32s", "16s", "8s"):
        start = time.time()
        s = train_and_score(variant, train, val, epochs)
        results[variant], seconds[variant] = s, time.time() - start
        print(f"| FCN-{variant} | {100 * s['pixel_acc']:.1f} | {100 * s['mean_acc']:.1f} | "
              f"{100 * s['mean_iou']:.1f} | {100 * s['fw_iou']:.1f} | {seconds[variant]:.0f} s |")
    for s in results.values():
        assert all(0.0 <= v <= 1.0 for v in s.values())
    if "--record" in sys.argv and not FAST:
        record = dict(settings=dict(size=size, train_images=n_train, val_images=len(val), epochs=epochs, width=8,
                                    fc_channels=64, dropout=0.0, seed=0),
                      cpus=os.cpu_count(), load_start=round(load_start, 2),
                      load_end=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
                      runs={variant: dict({k: float(v) for k, v in s.items()}, seconds=round(seconds[variant], 1))
                            for variant, s in results.items()})
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "figures",
                            "fcn_variants_on_shapes.json")
        with open(path, "w") as f:
            json.dump(record, f, indent=1)
        print(f"recorded {os.path.normpath(path)}")
    if not FAST:
        iu = {variant: s["mean_iou"] for variant, s in results.items()}
        assert iu["32s"] < iu["16s"] < iu["8s"], f"each skip should help, as in the paper's Table 2: {iu}"
        assert iu["16s"] - iu["32s"] > iu["8s"] - iu["16s"], f"the pool4 skip should gain the most: {iu}"
        print("\nFCN-32s < FCN-16s < FCN-8s on held-out mean IU, as in the paper's Table 2; "
              "the pool4 skip gains the most.")


if __name__ == "__main__":
    main()
