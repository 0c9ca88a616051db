"""Does the U-Net paper's weight map help separate touching cells? Train the same
U-Net on ``Cells`` with and without it, over several seeds, and count the cells.

Each run trains a same-padding U-Net (8 base channels, depth 3) to label
background, cell and membrane, then calls every 4-connected region of "cell"
one object and scores the objects with panoptic quality against the true
cells (PQ = SQ x RQ; a found and a true cell match when their IoU exceeds
0.5). The two arms differ only in the loss:

* weighted: ``(F.cross_entropy(logits, masks, reduction="none") * w).mean()``
  with the paper's ``w(x) = w_c(x) + 10 exp(-(d1(x) + d2(x))^2 / (2 * 5^2))``;
* plain: ``F.cross_entropy(logits, masks)``.

Same data, same initial weights, same batches, same schedule per seed. The
loop is the instance task's (``minisegnet/tasks/instance.py``), in view::

    for images, masks, ids in loader:
        targets = task.targets((masks, ids))          # masks, ids, weight map
        loss = task.loss(model(x), targets)
        opt.zero_grad(); loss.backward(); opt.step()

The full run (3 seeds x 2 arms, 256 training images of 64x64, 8 epochs,
64 held-out images) asserts the weighted PQ of the cells is at least 0.80 on
every seed and above the plain one on average. Measured: cell PQ 0.899 +-
0.030 weighted against 0.782 +- 0.005 plain, a margin of +0.117 (+0.139,
+0.073, +0.139 per seed), almost all of it RQ: the plain model merges
touching cells. About 3 minutes of training on a quiet 2-core machine (a
weighted run 35-37 s, a plain one 23-24 s); the table is in docs/instances.md.
``--fast`` (or ``MINISEGNET_FAST=1``) is a smoke test: one seed, a few
batches, and it says so. ``--record`` writes the numbers to
``docs/figures/unet_weight_map_cells.json``, which docs/instances.md checks
its table against.

Run: ``python examples/unet_weight_map_cells.py`` (``--fast`` for the smoke test).
"""
import json
import os
import sys
import time

import numpy as np

import minisegnet as msn
from minisegnet import optim
from minisegnet.data import Cells, Compose, DataLoader, RandomFlip, RandomRot90
from minisegnet.tasks.instance import InstanceTask

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


def info_of(dataset):
    return dict(num_classes=dataset.num_classes, in_channels=dataset.in_channels,
                class_names=list(dataset.class_names), palette=dataset.palette.tolist(),
                thing_classes=dataset.thing_classes, stuff_classes=dataset.stuff_classes)


def run(seed, weighted, size, n_train, n_val, epochs):
    """Train one arm on one seed; return (held-out scores, seconds)."""
    msn.manual_seed(seed)
    train = Cells(n_train, size, seed=seed, return_instances=True)
    val = Cells(n_val, size, seed=seed, split="val", return_instances=True)
    train_items = [train[i] for i in range(len(train))]       # drawn once, kept in memory
    task = InstanceTask(info_of(train))
    task.weight_map = weighted
    model = task.build_model("unet", task.models["unet"])
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train_items, batch_size=8, shuffle=True, seed=seed, drop_last=True,
                        transform=Compose(RandomFlip(horizontal=True, vertical=True), RandomRot90()))
    schedule = optim.PolyLR(opt, total_iters=epochs * len(loader), power=0.9)
    start, cpu_start = time.time(), time.process_time()
    losses = []
    for epoch in range(epochs):
        for images, masks, ids in loader:
            targets = task.targets((masks, ids))
            loss = task.loss(model(msn.tensor(images)), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            losses.append(loss.item())
    seconds = dict(wall=time.time() - start, cpu=time.process_time() - cpu_start)
    model.eval()
    scores = task.new_scores()
    with msn.no_grad():
        for images, masks, ids in DataLoader([val[i] for i in range(len(val))], batch_size=16):
            scores.update(model(msn.tensor(images)), task.targets((masks, ids)))
    return scores.summary(), scores.report(), scores.panoptic()["per_class"][1], losses, seconds


def main():
    if FAST:
        print("smoke test (--fast / MINISEGNET_FAST=1): one seed, a few batches; "
              "the numbers below mean nothing, the full run measures")
        seeds, size, n_train, n_val, epochs = [0], 48, 64, 8, 2
    else:
        seeds, size, n_train, n_val, epochs = [0, 1, 2], 64, 256, 64, 8
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Cells {size}x{size}: {n_train} training / {n_val} held-out images, {epochs} epochs, "
          f"seeds {seeds}; load average at start {load:.1f}")
    results = {True: [], False: []}
    record = dict(settings=dict(size=size, train_images=n_train, val_images=n_val, epochs=epochs, seeds=seeds),
                  runs={"weighted": [], "plain": []}, load_start=round(load, 2))
    for seed in seeds:
        for weighted in (True, False):
            scores, report, cells, losses, seconds = run(seed, weighted, size, n_train, n_val, epochs)
            results[weighted].append(scores["pq_things"])
            record["runs"]["weighted" if weighted else "plain"].append(dict(
                seed=seed, pq=float(scores["pq_things"]), sq=float(scores["sq_things"]),
                rq=float(scores["rq_things"]), mean_iou=float(scores["mean_iou"]),
                matched=cells["tp"], false=cells["fp"], missed=cells["fn"],
                wall_seconds=round(seconds["wall"], 1), cpu_seconds=round(seconds["cpu"], 1)))
            arm = "weighted" if weighted else "plain   "
            print(f"seed {seed} {arm}: cell PQ {scores['pq_things']:.3f} (SQ {scores['sq_things']:.3f}, "
                  f"RQ {scores['rq_things']:.3f}), mean IU {scores['mean_iou']:.3f}, "
                  f"loss {np.mean(losses[:3]):.3f} -> {np.mean(losses[-3:]):.3f}, {seconds['wall']:.0f} s "
                  f"({seconds['cpu']:.0f} s CPU)", flush=True)
            print("    " + report[-1])
            assert np.mean(losses[-3:]) < np.mean(losses[:3]), "the loss should fall"
    weighted, plain = np.array(results[True]), np.array(results[False])
    margin = weighted - plain
    print(f"cell PQ, weighted: {weighted.mean():.3f} +- {weighted.std():.3f}; plain: {plain.mean():.3f} +- "
          f"{plain.std():.3f}; margin {margin.mean():+.3f} (per seed {', '.join(f'{m:+.3f}' for m in margin)})")
    print(f"load average at the end {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    if "--record" in sys.argv and not FAST:
        record["load_end"] = round(os.getloadavg()[0], 2)
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "figures",
                            "unet_weight_map_cells.json")
        with open(path, "w") as f:
            json.dump(record, f, indent=1)
        print(f"recorded {os.path.normpath(path)}")
    if not FAST:
        assert weighted.min() >= 0.80, f"the weighted U-Net should reach cell PQ 0.80 on every seed: {weighted}"
        assert margin.mean() > 0, f"the weight map should help on average: margins {margin}"


if __name__ == "__main__":
    main()
