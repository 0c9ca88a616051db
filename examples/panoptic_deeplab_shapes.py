"""Panoptic-DeepLab on the ``Shapes`` toy scenes: every pixel a class, every shape its own id.

The whole loop in view::

    targets = panoptic_targets(instances)                  # centre Gaussians, offsets, weights
    out = model(images)                                    # semantic, center, offset
    loss = (cross_entropy(out["semantic"], masks)
            + 2000 * mse_loss(out["center"], targets["center"])
            + 1.0 * l1_loss(out["offset"], targets["offset"], weight=targets["offset_weight"]))
    ...
    pred = panoptic_inference(out, thing_classes, stuff_classes)   # peaks, votes, majority classes
    metrics.panoptic_quality(pred, truth, things, stuff)           # PQ = SQ x RQ

Circles, squares and triangles are *things* (an id each; shapes of one class
often touch or overlap, so one blob of the class map can be two objects);
the background is *stuff*. The full run (512 images of 64 x 64, 8 epochs,
batch 4, Adam with a cosine schedule) prints the training time with the
machine's load, the held-out PQ, SQ and RQ (all categories, things, stuff,
per class) and, for comparison, the PQ of the same class map cut into
objects by connected components instead of centres and offsets; it asserts
PQ >= 0.70 and that the grouping beats the components. ``--seeds 0,1,2``
repeats it with other seeds; ``--record`` writes the numbers to
``docs/figures/panoptic_deeplab_shapes.json``, which docs/instances.md
checks its table against. ``--figure-outputs PATH`` stores the trained
model's raw outputs on a few held-out images, from which ``python -m
minisegnet.viz`` draws the docs' figures. ``--fast`` (or
``MINISEGNET_FAST=1``) is a smoke test: a few steps on a few images,
checking that the three losses fall and that the pipeline produces a
panoptic map and a PQ; its PQ means nothing.

Run: ``python examples/panoptic_deeplab_shapes.py`` (``--fast``, ``--seeds``).
See docs/instances.md.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import minisegnet as msn
from minisegnet import functional as F, metrics, optim, panoptic
from minisegnet.data import DataLoader, Shapes
from minisegnet.instances import instances_from_semantic
from minisegnet.models import PanopticDeepLab
from minisegnet.tasks.panoptic import CENTER_LOSS_WEIGHT, OFFSET_LOSS_WEIGHT

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
THINGS, STUFF = Shapes.thing_classes, Shapes.stuff_classes
SIZE = 64


def losses(out, masks, targets):
    """The three terms: semantic cross-entropy, centre MSE (every pixel), offset L1 (object pixels)."""
    semantic = F.cross_entropy(out["semantic"], msn.tensor(masks))
    center = F.mse_loss(out["center"], msn.tensor(targets["center"]))
    weight = targets["offset_weight"]
    offset = F.l1_loss(out["offset"], msn.tensor(targets["offset"]), weight=weight, reduction="sum") \
        * (1.0 / max(1.0, float(weight.sum())))
    return semantic, center, offset


NMS_KERNELS = (3, 5, 7, 9)       # the peak window, measured: the default is panoptic.NMS_KERNEL


def held_out(model, dataset):
    """PQ of Panoptic-DeepLab's grouping (with each NMS window of ``NMS_KERNELS``), PQ
    of connected components of the same class map, and the class map's mean IU."""
    model.eval()
    grouped = {k: 0 for k in NMS_KERNELS}
    components = 0
    cm = np.zeros((Shapes.num_classes, Shapes.num_classes), np.int64)
    with msn.no_grad():
        for images, masks, ids in DataLoader(dataset, batch_size=8):
            out = {k: v.data for k, v in model(msn.tensor(images)).items()}
            truth = np.stack([masks, ids], axis=-1)
            for kernel in NMS_KERNELS:
                pred = panoptic.panoptic_inference(out, THINGS, STUFF, nms_kernel=kernel)
                grouped[kernel] = grouped[kernel] + metrics.panoptic_counts(pred, truth, THINGS, STUFF)
            classes = out["semantic"].argmax(1)
            cm += metrics.confusion_matrix(classes, masks, Shapes.num_classes)
            cc = panoptic.merge_semantic_and_instances(classes, instances_from_semantic(classes, THINGS),
                                                       THINGS, STUFF)
            components = components + metrics.panoptic_counts(cc, truth, THINGS, STUFF)
    model.train()
    by_kernel = {k: metrics.panoptic_scores(c, THINGS, STUFF) for k, c in grouped.items()}
    return by_kernel, metrics.panoptic_scores(components, THINGS, STUFF), metrics.mean_iou(cm)


def train(seed, epochs, n_train, n_val, batch_size, log=print):
    msn.manual_seed(seed)
    train_set = Shapes(n_train, SIZE, seed=seed, return_instances=True)
    val_set = Shapes(n_val, SIZE, seed=seed, split="val", return_instances=True)
    # Toy images of 64 pixels give 8x8 feature maps at output stride 8: ASPP rates 1, 2, 3.
    model = PanopticDeepLab(3, Shapes.num_classes, output_stride=8, atrous_rates=(1, 2, 3))
    opt = optim.Adam(model.parameters(), lr=3e-3)
    schedule = optim.CosineAnnealingLR(opt, epochs * (n_train // batch_size))
    start, history = time.time(), []
    for epoch in range(epochs):
        for images, masks, ids in DataLoader(train_set, batch_size=batch_size, shuffle=True, seed=seed + epoch,
                                             drop_last=True):
            targets = panoptic.panoptic_targets(ids)
            semantic, center, offset = losses(model(msn.tensor(images)), masks, targets)
            loss = semantic + CENTER_LOSS_WEIGHT * center + OFFSET_LOSS_WEIGHT * offset
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            history.append((semantic.item(), center.item(), offset.item()))
        recent = np.mean(history[-(n_train // batch_size):], axis=0)
        log(f"  epoch {epoch + 1}: CE {recent[0]:.3f}, centre MSE {recent[1]:.4f}, offset L1 {recent[2]:.2f} px "
            f"({time.time() - start:.0f} s)")
    seconds = time.time() - start
    return model, val_set, seconds, np.array(history)


def touching_in_truth(mask, ids):
    """True when two objects of one class touch: one connected region of the class map holds both."""
    blobs = instances_from_semantic(mask, THINGS)
    pairs = {(b, i) for b, i in zip(blobs.ravel().tolist(), ids.ravel().tolist()) if b > 0}
    return len(pairs) > len({b for b, _ in pairs})


def save_figure_outputs(model, dataset, path, count=4):
    """The model's outputs on the first ``count`` held-out images where two objects of one
    class touch (the case the figures are about), with the images and their truth: what
    ``minisegnet.viz.panoptic`` draws the docs' figures from. The class map (not the
    logits: the grouping reads only its arg-max), the heatmap and the offsets in float16,
    the images in 8 bits: about a hundred kilobytes."""
    chosen = [i for i in range(len(dataset)) if touching_in_truth(*dataset[i][1:])][:count]
    images, masks, ids = (np.stack(parts) for parts in zip(*(dataset[i] for i in chosen)))
    model.eval()
    with msn.no_grad():
        out = {k: v.numpy() for k, v in model(msn.tensor(images)).items()}
    np.savez_compressed(path, images=(images * 255 + 0.5).astype(np.uint8), masks=masks.astype(np.int8),
                        instances=ids.astype(np.int8), indices=np.array(chosen), seed=dataset.seed,
                        classes=out["semantic"].argmax(1).astype(np.int8), center=out["center"].astype(np.float16),
                        offset=out["offset"].astype(np.float16), palette=dataset.palette,
                        class_names=np.array(dataset.class_names), thing_classes=np.array(THINGS),
                        stuff_classes=np.array(STUFF))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="smoke test: a few steps, no PQ claim")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, one full run each (default 0)")
    parser.add_argument("--figure-outputs", help="store the (last) model's outputs for the docs' figures here")
    parser.add_argument("--record", action="store_true",
                        help="write the numbers to docs/figures/panoptic_deeplab_shapes.json")
    args = parser.parse_args()
    if FAST:
        print("FAST MODE: a smoke test of the pipeline (a few steps on 8 images); the PQ printed means nothing")
        epochs, n_train, n_val, batch_size = 3, 8, 4, 4
    else:
        epochs, n_train, n_val, batch_size = 8, 512, 48, 4
    results = []
    record = dict(settings=dict(size=SIZE, train_images=n_train, val_images=n_val, epochs=epochs,
                                batch_size=batch_size), cpus=os.cpu_count(), runs=[])
    for seed in [int(s) for s in args.seeds.split(",")]:
        print(f"seed {seed}: Panoptic-DeepLab on Shapes {SIZE}x{SIZE}, {n_train} images, {epochs} epochs, "
              f"batch {batch_size}", flush=True)
        model, val_set, seconds, history = train(seed, epochs, n_train, n_val, batch_size,
                                                 log=lambda text: print(text, flush=True))
        by_kernel, components, miou = held_out(model, val_set)
        scores = by_kernel[panoptic.NMS_KERNEL]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"  trained in {seconds:.0f} s (1-minute load average at the end {load:.1f}, {os.cpu_count()} CPUs)")
        print(f"  held-out PQ {scores['pq']:.3f} (SQ {scores['sq']:.3f}, RQ {scores['rq']:.3f}; averages over "
              f"classes); things PQ {scores['pq_things']:.3f}, stuff PQ {scores['pq_stuff']:.3f}")
        for c, s in scores["per_class"].items():
            print(f"    {Shapes.class_names[c]:>10}: {metrics.describe_pq(s)}")
        print("  PQ by NMS window: " + ", ".join(f"{k}x{k} {s['pq']:.3f}" for k, s in by_kernel.items())
              + f" (default {panoptic.NMS_KERNEL}x{panoptic.NMS_KERNEL})")
        print(f"  the same class map (mean IU {miou:.3f}) cut by connected components instead: "
              f"PQ {components['pq']:.3f}, things PQ {components['pq_things']:.3f}")
        results.append((seed, scores["pq"], components["pq"], seconds))
        record["runs"].append(dict(
            seed=seed, pq=float(scores["pq"]), sq=float(scores["sq"]), rq=float(scores["rq"]),
            pq_things=float(scores["pq_things"]), pq_stuff=float(scores["pq_stuff"]),
            pq_by_window={str(k): float(s["pq"]) for k, s in by_kernel.items()},
            components_pq=float(components["pq"]), components_pq_things=float(components["pq_things"]),
            mean_iou=float(miou),
            seconds=round(seconds, 1), load_end=round(load, 2)))
        first, last = history[:2].mean(0), history[-2:].mean(0)
        assert (last < first).all(), f"every loss should fall: {first} -> {last}"
        assert np.isfinite(scores["pq"]), "the held-out images should produce a PQ"
    if len(results) > 1:
        pq = np.array([r[1] for r in results])
        cc = np.array([r[2] for r in results])
        print(f"seeds {[r[0] for r in results]}: PQ mean {pq.mean():.3f} (min {pq.min():.3f}, max {pq.max():.3f}); "
              f"components PQ mean {cc.mean():.3f}; training time mean {np.mean([r[3] for r in results]):.0f} s")
    if args.record and not FAST:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "figures",
                            "panoptic_deeplab_shapes.json")
        with open(path, "w") as f:
            json.dump(record, f, indent=1)
        print(f"recorded {os.path.normpath(path)}")
    if args.figure_outputs:
        save_figure_outputs(model, val_set, args.figure_outputs)
        print(f"outputs for the figures written to {args.figure_outputs}")
    if not FAST:
        assert min(r[1] for r in results) >= 0.70, "Panoptic-DeepLab should reach PQ >= 0.70 on Shapes"
        assert all(r[1] > r[2] for r in results), "centres and offsets should beat connected components"


if __name__ == "__main__":
    main()
