"""Panoptic segmentation with Panoptic-DeepLab: a class for every pixel, an id for every object.

* **Model**: ``PanopticDeepLab`` (``minisegnet/models/panoptic_deeplab.py``),
  a DeepLabV3+ whose second branch predicts a centre heatmap and per-pixel
  offsets to object centres. A model without that branch is refused.
* **Targets** (``minisegnet/panoptic.py``), made on the device from the
  batch's class map and instance ids (checked on the host first): Gaussians
  at object centres, offsets on object pixels, and which pixels count. An
  object is a (class, id) pair of a thing class, as PQ counts them; ids on
  stuff pixels are ignored (``instance.object_ids``, on the host).
* **Loss**: the paper's three terms::

      cross_entropy(semantic, masks)                   (plain: mean over labelled pixels)
      + center_loss_weight * mse(center, heatmap)      (mean over labelled pixels; 0 if none)
      + offset_loss_weight * l1(offset, offsets)       (mean over object pixels and both components)

  with the weights stated below (the paper's are 200 and 0.01 on Cityscapes;
  see ``CENTER_LOSS_WEIGHT``). The paper's semantic term is a weighted
  bootstrapped cross-entropy instead (the mean over the hardest 15% of
  pixels, those of small instances weighing 3); ours is the plain one. The
  L1 is summed over ``dy`` and ``dx`` and divided by twice the number of
  object pixels (as the paper's code does): a mean per component, half
  the L1 length of a pixel's offset error. Which pixels count are the
  targets' ``center_weight`` and ``offset_weight`` masks (0 or 1 per pixel),
  not to be confused with the two loss weights.
* **Prediction**: centres by max-pool NMS, each thing pixel to the nearest
  centre from ``pixel + offset``, instance classes by majority vote, small
  stuff regions void (``panoptic_inference``).
* **Scores**: panoptic quality PQ = SQ x RQ over all categories, over things
  and over stuff (``metrics.panoptic_quality``), and the semantic branch's
  FCN scores.

See ``minisegnet/tasks/__init__.py`` for the interface every task follows.
"""
import numpy as np

from .. import backend, metrics, panoptic
from ..autograd import Tensor
from ..functional import l1_loss, mse_loss
from ..functional.promotion import in_opmath
from ..functional.loss import cross_entropy_of_checked_labels
from .instance import _check_labels, is_thing, object_ids, scored_truth, thing_and_stuff_classes
from .semantic import ConfusionScores, keep_dataset_info, loss_ignore_index

__all__ = ["PanopticTask", "PanopticScores", "CENTER_LOSS_WEIGHT", "OFFSET_LOSS_WEIGHT"]

# Loss weights. The paper's 200 for the centre MSE suits Cityscapes, where many large
# objects make the Gaussians a sizeable share of the pixels; on the toy scenes (a few
# small objects in 4,000-6,000 pixels) a heatmap of zeros is nearly as good. What we
# measured in an early exploration (on Roads, the dataset then used; seed 0, 6-8 epochs, busy machine; not
# re-run by a script here, so these figures are history, not results): with the paper's 200 and 0.01
# and sigma 2 the heatmap stayed flat (no peak above 0.1; car PQ 0.02), and 2000 with
# sigma 2 and offset weight 0.1 did no better; 2000 with sigma 3, offset weight 1.0 and
# the model's x4 offset scale learned peaks and offsets (offset L1, per component as above,
# 3.9 -> 2.8 pixels on Roads, 3.5 -> 1.5 on Shapes). The changes were not tried one at a time.
CENTER_LOSS_WEIGHT = 2000.0
OFFSET_LOSS_WEIGHT = 1.0


def _instance_branch(model):
    """True for a model whose outputs include the centre heatmap and offsets."""
    return hasattr(model, "center_head") and hasattr(model, "offset_head")


class PanopticScores:
    """Held-out scores of a panoptic model: PQ/SQ/RQ (all, things, stuff) and the FCN scores.

    ``update`` adds the class map to the confusion matrix (``ConfusionScores``, on
    the device) and, on the held-out pass, keeps that class map, the heatmap, the
    offsets and the truth (no copy, no sync);
    ``summary`` groups the pixels into objects and counts PQ's matches once,
    at the end of the pass. ``training=True``: the confusion matrix only.
    """

    def __init__(self, task, training=False):
        self.task = task
        self.training = training
        self.confusion = ConfusionScores(task.num_classes, task.class_names)   # the FCN scores' counts
        self.batches = []
        self._scores = None

    def update(self, outputs, targets):
        masks = targets["masks"]
        classes = outputs["semantic"].data.argmax(1)
        self.confusion.add(classes, masks)
        if not self.training:
            # the class map, not the (N, C, H, W) logits: the grouping needs only their argmax
            # (as int32: 4 bytes a pixel, one channel of logits' worth)
            xp = backend.get_array_module(classes)
            kept = {"semantic": classes.astype(xp.int32), "center": outputs["center"].data,
                    "offset": outputs["offset"].data}
            self.batches.append((kept, masks, targets["instances"]))
        self._scores = None

    def matrix(self):
        return self.confusion.matrix()

    def panoptic(self):
        """``metrics.panoptic_scores`` over the pass, or None when training."""
        if self.training or not self.batches:
            return None
        if self._scores is None:
            task = self.task
            counts = 0
            for outputs, masks, ids in self.batches:
                pred = task.inference(outputs)
                counts = counts + metrics.panoptic_counts(pred, task.panoptic_truth(masks, ids),
                                                          task.thing_classes, task.stuff_classes,
                                                          ignore_index=panoptic.VOID)
            self._scores = metrics.panoptic_scores(counts, task.thing_classes, task.stuff_classes)
        return self._scores

    def summary(self):
        out = self.confusion.summary()
        scores = self.panoptic()
        if scores is not None:
            out.update({k: scores[k] for k in ("pq", "sq", "rq", "pq_things", "sq_things", "rq_things",
                                               "pq_stuff", "sq_stuff", "rq_stuff")})
        return out

    def report(self):
        names = self.task.class_names
        lines = self.confusion.report()
        scores = self.panoptic()
        if scores is not None:
            for kind, classes in (("thing", self.task.thing_classes), ("stuff", self.task.stuff_classes)):
                for c in classes:
                    lines.append(f"{names[c]} ({kind}): {metrics.describe_pq(scores['per_class'][c])}")
        return lines


class PanopticTask:
    """Panoptic-DeepLab: semantic logits + centre heatmap + offsets; scored by PQ."""

    name = "panoptic"
    # Shapes: circles, squares and triangles (things) that touch and overlap, on a background
    # (stuff); examples/panoptic_deeplab_shapes.py measures what this default reaches.
    defaults = dict(model="panoptic-deeplab", data="shapes")
    models = {
        # Toy images of 64 pixels give 8x8 feature maps at output stride 8: ASPP rates 1, 2, 3.
        "panoptic-deeplab": dict(output_stride=8, atrous_rates=(1, 2, 3)),
    }
    datasets = ("shapes", "roads", "cells")
    instances = True
    score_names = {"pq": "PQ", "sq": "SQ", "rq": "RQ", "pq_things": "PQ things", "pq_stuff": "PQ stuff",
                   "mean_iou": "mean IU"}
    best_score = "pq"
    most_classes_written = 65                # ids PNG: category * 1000 + id in 16 bits

    center_loss_weight = CENTER_LOSS_WEIGHT
    offset_loss_weight = OFFSET_LOSS_WEIGHT
    sigma = panoptic.SIGMA

    def __init__(self, info):
        keep_dataset_info(self, info)
        self.thing_classes, self.stuff_classes = thing_and_stuff_classes(info, self.name)

    def build_model(self, name, model_args):
        from ..models import build_model

        model = build_model(name, self.in_channels, self.num_classes, **model_args)
        if not _instance_branch(model):
            raise ValueError(f"--task panoptic needs a model with an instance branch (a centre heatmap and "
                             f"offsets), such as panoptic-deeplab; {name} predicts classes only "
                             "(train it with --task semantic, or --task instance for objects from its classes)")
        return model

    def targets(self, labels):
        """Masks and instance ids on the device, and Panoptic-DeepLab's targets made there.

        The labels are checked, and the ids made one per object, here on the host where
        they arrive (as the instance task does), so the targets on the device need no
        read back: the step syncs only its loss. One per object (``object_ids``): an
        object is a (class, id) pair of a thing class, as PQ counts it, numbered
        ``1 .. K`` per image (the targets have a row per id: a file's ids may run to
        65535 for three objects); ids on stuff and "don't care" pixels become 0, so they
        make no centre and no offset loss."""
        if len(labels) != 2:
            raise ValueError("the panoptic task needs batches (images, masks, instances): "
                             f"got {len(labels)} label map(s) per sample")
        masks, ids = (backend.to_numpy(a) for a in labels)
        _check_labels(masks, ids, self.num_classes, loss_ignore_index(self))
        ids = object_ids(masks, ids, self.thing_classes)
        largest = int(ids.max()) if ids.size else 0
        masks, ids = backend.asarray(masks), backend.asarray(ids)
        # the "don't care" label counts nowhere, nor does a thing pixel without an object id
        valid = (masks >= 0) & (masks < self.num_classes) & ~(is_thing(masks, self.thing_classes) & (ids == 0))
        out = panoptic._panoptic_targets(ids, largest, self.sigma, valid)
        out.update(masks=masks, instances=ids)
        return out

    def loss(self, outputs, targets):
        if not isinstance(outputs, dict) or "center" not in outputs:
            raise ValueError("the panoptic task needs a model with an instance branch (outputs 'semantic', "
                             f"'center', 'offset'), got {type(outputs).__name__}")
        ignore = loss_ignore_index(self)
        xp = backend.get_array_module(targets["masks"])
        semantic = cross_entropy_of_checked_labels(outputs["semantic"], Tensor(targets["masks"]), ignore_index=ignore)
        # Each term the weighted mean over the pixels that count for it, as the weighted sum divided
        # by their count, at least 1: a batch with no such pixel adds 0 (not 0/0). For the offsets,
        # a batch without objects; for the centres, one whose every pixel is void for them (say,
        # all thing pixels without an object id), while the cross-entropy still counts its pixels.
        # Summed and divided in float32 at least, rounded once to the outputs' dtype: in float16 a
        # count past 65504 pixels is inf (the term silently 0), and a sum may pass it as well.
        def weighted_mean(loss, name):
            weight = targets[f"{name}_weight"]
            count = xp.maximum(weight.sum(), 1.0)
            return in_opmath(lambda out: loss(out, Tensor(targets[name]), weight=weight, reduction="sum")
                             / Tensor(count.astype(out.dtype)), outputs[name])

        center, offset = weighted_mean(mse_loss, "center"), weighted_mean(l1_loss, "offset")
        return semantic + self.center_loss_weight * center + self.offset_loss_weight * offset

    def new_scores(self, training=False):
        return PanopticScores(self, training)

    def inference(self, outputs):
        """``panoptic_inference`` with this task's classes: ``(N, H, W, 2)`` on the outputs' device."""
        return panoptic.panoptic_inference(outputs, self.thing_classes, self.stuff_classes)

    def panoptic_truth(self, masks, ids):
        """The truth as ``(N, H, W, 2)`` (``scored_truth``: "don't care" pixels and thing pixels
        without an id void)."""
        return scored_truth(masks, ids, self.num_classes, self.thing_classes)

    def postprocess(self, outputs):
        """``dict(panoptic=(N, H, W, 2), classes=(N, H, W))`` host arrays."""
        data = {k: (v.data if isinstance(v, Tensor) else v) for k, v in outputs.items()}
        return dict(panoptic=backend.to_numpy(self.inference(data)),
                    classes=backend.to_numpy(data["semantic"].argmax(1)))

    def plot_curves(self, history, file):
        from ..viz.panoptic import plot_panoptic_curves

        plot_panoptic_curves(history, file)

    def plot_predictions(self, images, labels, predictions, file):
        from ..viz.panoptic import plot_panoptic_predictions

        masks, ids = labels
        truth = backend.to_numpy(self.panoptic_truth(np.asarray(masks), np.asarray(ids)))
        scores = []
        for t, p in zip(truth, predictions["panoptic"]):
            s = metrics.panoptic_quality(p[None], t[None], self.thing_classes, self.stuff_classes,
                                         ignore_index=panoptic.VOID)
            scores.append(f"PQ {s['pq']:.2f}")
        plot_panoptic_predictions(images, truth, predictions["panoptic"], self.palette, file,
                                  class_names=self.class_names, scores=scores)

    def write_prediction(self, image, prediction, out, stem):
        """``STEM_instances.png`` (each object its own colour, outlined, over the
        image), ``STEM_panoptic.png`` (the same with stuff tinted by its class
        colour) and ``STEM_panoptic_ids.png`` (16-bit: ``category * 1000 +
        instance id``, 65535 for void; Cityscapes-style: ``id // 1000`` is the
        category, but stuff is ``category * 1000``, not the bare class id)."""
        import os

        from PIL import Image

        from ..runfolder import atomic_file
        from ..viz.instances import instance_overlay
        from ..viz.panoptic import panoptic_overlay

        pan = prediction["panoptic"]
        category, ids = pan[..., 0], pan[..., 1]
        if ids.max(initial=0) > 999 or category.max(initial=0) > 64:
            raise ValueError("category * 1000 + id must fit a 16-bit PNG: at most 65 categories and 999 objects")
        encoded = np.where(category < 0, 65535, category * 1000 + ids).astype(np.uint16)
        paths = [os.path.join(out, f"{stem}_{suffix}.png") for suffix in ("instances", "panoptic", "panoptic_ids")]
        as_png = lambda rgb: Image.fromarray((rgb * 255 + 0.5).astype(np.uint8))
        pictures = (as_png(instance_overlay(image, ids, alpha=0.5)),
                    as_png(panoptic_overlay(image, pan, self.palette, alpha=0.5)), Image.fromarray(encoded))
        for path, picture in zip(paths, pictures):
            with atomic_file(path) as f:
                picture.save(f, format="PNG")
        counts = [len(np.unique(ids[(ids > 0) & (category == c)])) for c in self.thing_classes]
        note = ", ".join(f"{n} {self.class_names[c]} object{'s' if n != 1 else ''}"
                         for c, n in zip(self.thing_classes, counts))
        return paths, note
