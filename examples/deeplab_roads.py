"""A small DeepLabV3+ trained on the ``Roads`` toy driving scenes.

Classes: sky, road, lane marking, car, roadside. The backbone stops at
output stride 8 and dilates its later depthwise convolutions instead; ASPP's
3x3 branches use rates (1, 2, 3), small enough for an 8x12 feature map of a
64x96 image (the default rates 6, 12, 18 are for the paper's 33x33 maps;
the model refuses a rate at least as large as its map, where the 3x3 branch
would be a 1x1 conv). The full run (a few minutes on a 2-core CPU) asserts
a held-out mean IU of at least 0.75 (predicting the majority class
everywhere scores under 0.1) and a lane-marking IoU of at least 0.45, with
room for the rounding of another machine; ``--record`` writes its numbers to
``docs/figures/deeplab_roads.json``, which docs/deeplab.md checks its figures
against. ``--fast`` is a smoke test that says so: it trains briefly and
checks only that the loss falls.

Run: ``python examples/deeplab_roads.py`` (``--fast`` or ``MINISEGNET_FAST=1``; ``--record``).
See docs/deeplab.md.
"""
import json
import os
import sys
import time

import numpy as np

import minisegnet as msn
from minisegnet import functional as F, metrics, optim
from minisegnet.data import DataLoader, Roads
from minisegnet.models import DeepLabV3Plus

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


def main():
    msn.manual_seed(0)
    size, n_train, epochs = ((64, 96), 16, 2) if FAST else ((64, 96), 192, 8)
    if FAST:
        print("FAST MODE: a smoke test (16 scenes, 2 epochs): the scores below mean nothing; "
              "run without --fast to see DeepLabV3+ learn the scene.")
    train = Roads(num_samples=n_train, size=size, seed=0)
    val = Roads(num_samples=8 if FAST else 48, size=size, seed=0, split="val")
    model = DeepLabV3Plus(in_channels=3, num_classes=5, output_stride=8, atrous_rates=(1, 2, 3))
    model.check_input_size(size)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start, losses = time.time(), []
    for epoch in range(epochs):
        for images, masks in DataLoader(train, batch_size=8, shuffle=True, seed=0, drop_last=True):
            loss = F.cross_entropy(model(msn.tensor(images)), msn.tensor(masks))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"epoch {epoch + 1}: train loss {np.mean(losses[-(n_train // 8):]):.3f} ({time.time() - start:.0f} s)")
    seconds = time.time() - start

    model.eval()
    cm = np.zeros((5, 5), dtype=np.int64)
    with msn.no_grad():
        for images, masks in DataLoader(val, batch_size=8):
            cm += metrics.confusion_matrix(model(msn.tensor(images)).numpy().argmax(1), masks, 5)
    truth = np.concatenate([val[i][1].ravel() for i in range(len(val))])
    majority = metrics.confusion_matrix(np.full_like(truth, np.bincount(truth).argmax()), truth, 5)
    print("held-out:", {k: round(v, 3) for k, v in metrics.scores(cm).items()},
          f"(majority-class mean IU {metrics.mean_iou(majority):.3f})")
    print("per-class IoU:", {n: round(float(v), 3) for n, v in zip(Roads.class_names, metrics.iou_per_class(cm))})
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), "the loss should fall"
    if "--record" in sys.argv and not FAST:
        record = dict(settings=dict(size=list(size), train_images=n_train, val_images=len(val), epochs=epochs,
                                    batch_size=8, output_stride=8, atrous_rates=[1, 2, 3], lr=3e-3, seed=0),
                      cpus=os.cpu_count(), load_start=round(load_start, 2),
                      load_end=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
                      train_seconds=round(seconds, 1),
                      scores={k: float(v) for k, v in metrics.scores(cm).items()},
                      iou_per_class={n: float(v) for n, v in zip(Roads.class_names, metrics.iou_per_class(cm))},
                      majority_mean_iou=float(metrics.mean_iou(majority)),
                      first_loss=float(np.mean(losses[:2])), last_loss=float(np.mean(losses[-2:])))
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "figures",
                            "deeplab_roads.json")
        with open(path, "w") as f:
            json.dump(record, f, indent=1)
        print(f"recorded {os.path.normpath(path)}")
    if not FAST:
        assert metrics.mean_iou(cm) >= 0.75, "DeepLabV3+ should learn the scene (docs/deeplab.md: the recorded run)"
        assert metrics.iou_per_class(cm)[2] >= 0.45, "the lane markings (docs/deeplab.md: the recorded run)"
        assert metrics.mean_iou(majority) < 0.1, "the majority-class baseline"


if __name__ == "__main__":
    main()
