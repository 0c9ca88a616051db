"""Instance segmentation the U-Net paper's way: a class per pixel, trained with the
weight map that keeps touching objects apart, and objects as connected components.

* **Model**: any semantic model (U-Net by default) predicting the dataset's
  classes; on ``Cells`` these are background, cell and boundary (the membranes).
* **Loss**: the per-pixel cross-entropy weighted by the U-Net paper's map
  ``w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``
  (``minisegnet/instances.py``), written as PyTorch users write it::

      (F.cross_entropy(logits, masks, reduction="none") * weights).mean()

  The weights are made per batch from the augmented truth (``targets``),
  whose objects are PQ's: (class, id) pairs of the thing classes, ids on
  stuff pixels ignored (``object_ids``).
  ``w0 = 0`` gives the plain class-balanced loss; ``weight_map = False`` the
  plain cross-entropy (the baseline the example compares with).
* **Objects**: ``argmax`` over classes, then each 4-connected region of each
  thing class is one object (``instances_from_semantic``). 4-connectivity: a
  one-pixel diagonal leak through a wall does not merge two objects.
* **Scores**: panoptic quality over the thing classes (PQ = SQ x RQ, a
  predicted and a true object match when their IoU exceeds 0.5), and the
  semantic FCN scores of the class map.

See ``minisegnet/tasks/__init__.py`` for the interface every task follows.
"""
import math

import numpy as np

from .. import backend, metrics
from ..autograd import Tensor
from ..functional.promotion import in_opmath
from ..functional.loss import cross_entropy_of_checked_labels
from ..instances import _check_ids, _renumber, _unet_weight_map, instances_from_semantic
from ..metrics.panoptic import check_categories
from .semantic import (ConfusionScores, SemanticTask, check_class_labels, class_map_png, keep_dataset_info,
                       loss_ignore_index)

__all__ = ["InstanceTask", "InstanceScores", "thing_and_stuff_classes", "is_thing", "object_ids", "scored_truth"]


def thing_and_stuff_classes(info, task_name):
    """``(things, stuff)`` of a dataset's ``info``: sorted tuples of class indices, disjoint,
    together the classes ``0 .. num_classes - 1`` (PQ scores every predicted class as one or
    the other). Stuff defaults to every class that is not a thing; a task that counts objects
    needs at least one thing class. Anything else is a ``TypeError``/``ValueError`` naming it."""
    op = f"the {task_name} task"
    num_classes = int(info["num_classes"])
    things, given_stuff = info.get("thing_classes"), info.get("stuff_classes")
    if things is None or (hasattr(things, "__len__") and len(things) == 0):
        raise ValueError(f"{op} needs thing classes (the classes whose objects are counted): "
                         "this dataset names none (a folder: FolderDataset(thing_classes=...), or "
                         "minisegnet train --thing-classes)")
    # distinct non-negative ints, none both thing and stuff (the rules of PQ's categories)
    things, stuff, _ = check_categories(things, () if given_stuff is None else given_stuff, op=op,
                                        names=("thing_classes", "stuff_classes"))
    if given_stuff is None:
        stuff = tuple(c for c in range(num_classes) if c not in things)
    classes = things + stuff
    outside = sorted(c for c in classes if c >= num_classes)
    if outside:
        raise ValueError(f"{op}: classes {outside} are named as thing or stuff, but the dataset's classes are "
                         f"0 .. {num_classes - 1}")
    unnamed = [c for c in range(num_classes) if c not in classes]
    if unnamed:
        raise ValueError(f"{op}: classes {unnamed} are neither thing_classes {list(things)} nor stuff_classes "
                         f"{list(stuff)}; each class must be one or the other")
    return things, stuff


def is_thing(labels, thing_classes):
    """Where ``labels`` (a class map on any backend) holds a thing class: one comparison per
    class, on the device (no table to upload)."""
    xp = backend.get_array_module(labels)
    thing = xp.zeros(labels.shape, dtype=bool)
    for c in thing_classes:
        thing |= labels == c
    return thing


def object_ids(masks, ids, thing_classes):
    """The ids the training targets group pixels by: one id per object, as PQ counts objects.

    An object is a ``(class, id)`` pair of a thing class: PQ (``metrics.panoptic``) keys
    segments by category and id, so a car with id 1 and a person with id 1 are two objects,
    while the targets (centres, offsets, the weight map) group pixels by the id alone.
    So first: every ``(class, id)`` pair of a thing class with an id above 0 gets its own id,
    ``1 .. K`` per image (in the order of class, then old id); every other pixel gets 0:
    stuff pixels (ids there are ignored, as PQ ignores them: a Cityscapes-style PNG that
    numbers road regions makes no object), "don't care" pixels and thing pixels without an id.
    Where ids were already unique across classes and 0 off the things, only the numbers
    change (the targets do not depend on them).

    ``masks``, ``ids``: integer ``(N, H, W)`` maps of one backend, ids >= 0. Returns int64
    ids of that shape, on that backend. Two sorts (``unique``) of the batch's pixels.
    """
    xp = backend.get_array_module(masks, ids)
    masks, ids = masks.astype(xp.int64), ids.astype(xp.int64)
    if ids.size == 0:
        return ids
    on_object = is_thing(masks, thing_classes) & (ids > 0)
    # One integer per (class, id) pair: class * D + the id's rank among the batch's D distinct
    # ids (a rank, not the id itself, keeps the number small whatever the ids: no overflow).
    values, rank = xp.unique(ids.reshape(-1), return_inverse=True)
    pair = masks * len(values) + rank.reshape(ids.shape) + 1
    return _renumber(xp.where(on_object, pair, 0))        # 1 .. K per image; 0 stays 0


def scored_truth(masks, ids, num_classes, thing_classes):
    """The truth as PQ scores it: ``(N, H, W, 2)`` (category, instance id), void (-1) where
    the mask says "don't care" and where a thing pixel has no object id (0): an object needs
    an id, and PQ would otherwise count all of an image's id-0 pixels of a class as one object."""
    xp = backend.get_array_module(masks)
    masks, ids = masks.astype(xp.int64), ids.astype(xp.int64)      # room for -1 (uint8 would make it 255)
    void = (masks < 0) | (masks >= num_classes) | (is_thing(masks, thing_classes) & (ids == 0))
    return xp.stack([xp.where(void, -1, masks), xp.where(void, 0, ids)], axis=-1)


def _check_labels(masks, ids, num_classes, ignore_index):
    """The host labels of a batch: integer maps of one shape, classes in range, ids >= 0."""
    check_class_labels(masks, num_classes, ignore_index)        # an integer map, labels in range
    if ids.dtype.kind not in "iu":
        raise TypeError(f"instances must be an integer map, got dtype {ids.dtype}")
    if ids.shape != masks.shape:
        raise ValueError(f"instances has shape {ids.shape} but masks has shape {masks.shape}: "
                         "an instance map needs one id per pixel of its image")
    _check_ids(ids, "targets")            # ids >= 0, none past int64 (a uint64 id would wrap negative)


class InstanceScores:
    """Held-out scores of an instance model: PQ/SQ/RQ of the things and the FCN scores.

    ``update`` keeps each batch's predicted class map and truth on the device
    (no copy, no sync); ``summary`` labels the objects and scores them once
    at the end of the pass, when a few syncs no longer matter (``report``
    reuses those scores until the next ``update``). With ``training=True``
    only the confusion matrix is kept (the cheap part).
    """

    def __init__(self, task, training=False):
        self.task = task
        self.training = training
        self.confusion = ConfusionScores(task.num_classes, task.class_names)   # the FCN scores' counts
        self.batches = []
        self._scores = None          # panoptic()'s result, kept until the next update

    def update(self, outputs, targets):
        pred = outputs.data.argmax(1)
        self.confusion.add(pred, targets["masks"])
        if not self.training:
            self.batches.append((pred, targets["masks"], targets["instances"]))
        self._scores = None

    def matrix(self):
        return self.confusion.matrix()

    def panoptic(self):
        """PQ's per-category scores (``metrics.panoptic_scores``) over the pass, or None in training."""
        if self.training or not self.batches:
            return None
        if self._scores is None:
            task = self.task
            counts = 0
            for pred, masks, ids in self.batches:
                xp = backend.get_array_module(pred)
                found = instances_from_semantic(pred, task.thing_classes, connectivity=task.connectivity,
                                                min_size=task.min_size)
                # thing pixels in no object (a region under min_size) are left unlabelled (-1), not one
                # merged "object 0"
                category = xp.where(is_thing(pred, task.thing_classes) & (found == 0), -1, pred)
                truth = scored_truth(masks, ids, task.num_classes, task.thing_classes)
                counts = counts + metrics.panoptic_counts(xp.stack([category, found], axis=-1), truth,
                                                          task.thing_classes, task.stuff_classes, ignore_index=-1)
            self._scores = metrics.panoptic_scores(counts, task.thing_classes, task.stuff_classes)
        return self._scores

    def summary(self):
        """The FCN scores and, held out, PQ/SQ/RQ of the things (NaN on training
        batches: counting objects there would cost a labelling per batch)."""
        out = self.confusion.summary()
        scores = self.panoptic()
        for key in ("pq_things", "sq_things", "rq_things"):
            out[key] = math.nan if scores is None else scores[key]
        return out

    def report(self):
        names = self.task.class_names
        lines = self.confusion.report()
        scores = self.panoptic()
        if scores is not None:
            for c in self.task.thing_classes:
                lines.append(f"{names[c]}: {metrics.describe_pq(scores['per_class'][c])}")
        return lines


class InstanceTask:
    """Semantic model + U-Net weight map + connected components; scored by PQ."""

    name = "instance"
    defaults = dict(model="unet", data="cells")
    models = SemanticTask.models        # any semantic model, with the same defaults
    datasets = ("cells", "shapes", "roads")
    instances = True
    score_names = {"pq_things": "PQ", "sq_things": "SQ", "rq_things": "RQ", "pixel_acc": "pixel acc",
                   "mean_iou": "mean IU"}
    best_score = "pq_things"
    most_classes_written = 2 ** 16           # the class map's PNG, as the semantic task's

    # The U-Net paper's weight map (w0 = 10, sigma = 5 pixels); weight_map=False: plain cross-entropy.
    weight_map = True
    w0 = 10.0
    sigma = 5.0
    # Objects: 4-connected regions of each thing class, of at least min_size pixels.
    connectivity = 4
    min_size = 1

    def __init__(self, info):
        keep_dataset_info(self, info)
        self.thing_classes, self.stuff_classes = thing_and_stuff_classes(info, self.name)

    build_model = SemanticTask.build_model    # any semantic model, built the same way

    def targets(self, labels):
        """Masks and instance ids on the device, and the batch's weight map made there.

        The labels are checked here, on the host where they arrive, so that the
        weight map on the device needs no check and no sync. The ids are made
        one per object first (``object_ids``: an object is a (class, id) pair of a
        thing class; ids on stuff and "don't care" pixels are ignored), so the
        weight map keeps apart exactly the objects PQ scores."""
        if len(labels) != 2:
            raise ValueError("the instance task needs batches (images, masks, instances): "
                             f"got {len(labels)} label map(s) per sample")
        masks, ids = (backend.to_numpy(a) for a in labels)
        ignore = loss_ignore_index(self)
        _check_labels(masks, ids, self.num_classes, ignore)
        ids = object_ids(masks, ids, self.thing_classes)
        masks, ids = backend.asarray(masks), backend.asarray(ids)
        out = dict(masks=masks, instances=ids)
        if self.weight_map:
            out["weights"] = _unet_weight_map(masks, ids, self.num_classes, w0=self.w0, sigma=self.sigma,
                                              ignore_index=ignore)
        return out

    def loss(self, outputs, targets):
        ignore = loss_ignore_index(self)
        if not self.weight_map:
            return cross_entropy_of_checked_labels(outputs, Tensor(targets["masks"]), ignore_index=ignore)
        per_pixel = cross_entropy_of_checked_labels(outputs, Tensor(targets["masks"]), ignore_index=ignore,
                                                    reduction="none")
        weights = targets["weights"]
        # weighted and averaged in float32 at least, rounded once to the logits' dtype: a float16
        # product passes 65504 (a weight of 2048 times a loss of 40) where the mean fits
        return in_opmath(lambda ce: (ce * Tensor(weights.astype(ce.dtype, copy=False))).mean(), per_pixel)

    def new_scores(self, training=False):
        return InstanceScores(self, training)

    def postprocess(self, outputs):
        """``dict(classes=(N, H, W), instances=(N, H, W))`` host arrays."""
        classes = outputs.data.argmax(1)
        found = instances_from_semantic(classes, self.thing_classes, connectivity=self.connectivity,
                                        min_size=self.min_size)
        return dict(classes=backend.to_numpy(classes), instances=backend.to_numpy(found))

    def plot_curves(self, history, file):
        from ..viz.instances import plot_instance_curves

        plot_instance_curves(history, file)

    def plot_predictions(self, images, labels, predictions, file):
        """image | true objects | found ones; a found object is drawn in the colour of the true
        one PQ matches it with: same class, IoU > 0.5, "don't care" pixels out of the union."""
        from ..viz.instances import plot_instance_predictions

        masks, ids = (np.asarray(backend.to_numpy(a)) for a in labels)
        truth = object_ids(masks, ids, self.thing_classes)        # PQ's objects: (class, id) pairs
        void = (masks < 0) | (masks >= self.num_classes)
        plot_instance_predictions(images, truth, predictions["instances"], file,
                                  classes=(masks, predictions["classes"]), void=void)

    def write_prediction(self, image, prediction, out, stem):
        """``STEM_instances.png`` (one colour per object, outlined, over the image),
        ``STEM_ids.png`` (16-bit object ids, usable as a folder dataset's instance
        map) and ``STEM_mask.png`` (the class map as an index PNG)."""
        import os

        from PIL import Image

        from ..runfolder import atomic_file
        from ..viz.instances import instance_overlay

        classes, ids = prediction["classes"], prediction["instances"]
        paths = [os.path.join(out, f"{stem}_{suffix}.png") for suffix in ("instances", "ids", "mask")]
        rgb = instance_overlay(image, ids, alpha=0.5)
        mask_image = class_map_png(classes, self.palette)
        if ids.max(initial=0) > 65535:
            raise ValueError(f"{int(ids.max())} objects do not fit a 16-bit PNG")
        pictures = (Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)), Image.fromarray(ids.astype(np.uint16)),
                    mask_image)
        for path, picture in zip(paths, pictures):
            with atomic_file(path) as f:
                picture.save(f, format="PNG")
        counts = [int(len(np.unique(ids[(ids > 0) & (classes == c)]))) for c in self.thing_classes]
        note = ", ".join(f"{n} {self.class_names[c]} object{'s' if n != 1 else ''}"
                         for c, n in zip(self.thing_classes, counts))
        return paths, note
