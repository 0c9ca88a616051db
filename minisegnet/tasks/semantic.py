"""Semantic segmentation: one class per pixel, scored by the FCN paper's metrics.

The model returns logits ``(N, C, H, W)``; the loss is the pixel-wise
cross-entropy against the class map; the prediction is ``argmax`` over
classes; the scores come from one confusion matrix summed over the whole
pass (``minisegnet/metrics/semantic.py``). See ``minisegnet/tasks/__init__.py`` for
the interface every task follows.
"""
import numpy as np

from .. import backend, metrics
from ..autograd import Tensor
from ..functional.loss import cross_entropy_of_checked_labels

__all__ = ["SemanticTask", "ConfusionScores", "class_map"]


def class_map_png(classes, palette):
    """A class map as a PIL image for an index PNG that a folder dataset reads back as its mask:
    8-bit with the class colours as its palette for up to 256 classes, else 16-bit grey (no
    palette holds more; an 8-bit cast would wrap class 300 to 44)."""
    from PIL import Image

    if len(palette) <= 256:
        image = Image.fromarray(classes.astype(np.uint8), mode="P")
        image.putpalette(np.asarray(palette).reshape(-1).tolist())
        return image
    return Image.fromarray(classes.astype(np.uint16))


def share_text(share):
    """A class's share of an image as a whole percentage, never rounded to "0%" when present
    or to "100%" when not alone: "<1%" and ">99%" there."""
    if 0 < share < 0.01:
        return "<1%"
    if 0.99 < share < 1:
        return ">99%"
    return f"{100 * share:.0f}%"


def class_map(logits):
    """``(N, C, H, W)`` logits -> ``(N, H, W)`` class indices, as a host NumPy array."""
    return backend.to_numpy(logits.data.argmax(1))


class ConfusionScores:
    """A confusion matrix summed over batches, on the device; FCN scores at the end.

    ``update`` adds one batch by counting each pixel's ``C * truth +
    prediction`` into ``C * C`` bins (a scatter-add: ``bincount`` would size
    its output from the data, which on a GPU means a sync) and leaves the sum
    where the logits are: no copy to the host and no sync. Pixels whose truth
    is outside ``[0, C)`` (the dataset's "don't care" label, e.g. 255) all go
    to one extra bin that is dropped, so they count nowhere, as
    ``metrics.confusion_matrix(..., ignore_index)``.
    """

    def __init__(self, num_classes, class_names):
        self.num_classes = num_classes
        self.class_names = class_names
        self.cm = None                       # created on the first batch's device

    def update(self, outputs, targets):
        self.add(outputs.data.argmax(1), targets)

    def add(self, pred, targets):
        """Count a batch's predicted class map ``pred`` against its truth ``targets``
        (both ``(N, H, W)`` on the device); other tasks' scores count their class maps here.
        Unlike ``metrics.confusion_matrix`` nothing is checked (no value is read back from a
        GPU): a target outside ``[0, C)`` (the task's ignored label) is skipped, and ``pred``
        must lie in ``[0, C)``, as an argmax over the C classes does."""
        c = self.num_classes
        xp = backend.get_array_module(targets)
        counted = (targets >= 0) & (targets < c)
        index = xp.where(counted, targets * c + pred, c * c).reshape(-1)
        if self.cm is None:
            self.cm = xp.zeros(c * c + 1, dtype=xp.int64)
        backend.scatter_add(self.cm, index, xp.ones((), dtype=xp.int64))      # one each, broadcast

    def matrix(self):
        """The summed ``(C, C)`` matrix as a host array (rows = truth)."""
        c = self.num_classes
        if self.cm is None:
            return np.zeros((c, c), dtype=np.int64)
        return backend.to_numpy(self.cm[:c * c]).astype(np.int64).reshape(c, c)

    def summary(self):
        return metrics.scores(self.matrix())

    def report(self):
        iou = metrics.iou_per_class(self.matrix())
        return ["IU per class: " + ", ".join(f"{name} {v:.3f}" for name, v in zip(self.class_names, iou))]


def check_class_labels(masks, num_classes, ignore_index):
    """A batch's class labels, checked where they arrive: an integer map, each label in
    ``[0, num_classes)`` or ``ignore_index`` (on the host: no sync; a device array is checked
    on the device, one read back)."""
    if masks.dtype.kind not in "iu":
        raise TypeError(f"masks must be an integer map, got dtype {masks.dtype}")
    bad = (masks != ignore_index) & ((masks < 0) | (masks >= num_classes))
    if bool(bad.any()):
        raise ValueError(f"masks hold the label {int(masks[bad][0])}, outside [0, {num_classes}) "
                         f"and not ignore_index={ignore_index}")


def loss_ignore_index(task):
    """The label the loss and the label check skip: the dataset's ``ignore_index``, or
    PyTorch's default -100 when it names none."""
    return -100 if task.ignore_index is None else task.ignore_index


def keep_dataset_info(task, info):
    """What every task keeps of the dataset's ``info`` (``train.build_datasets``):
    ``num_classes``, ``in_channels``, ``class_names``, ``palette`` and ``ignore_index``."""
    task.num_classes = int(info["num_classes"])
    task.in_channels = int(info["in_channels"])
    task.class_names = list(info["class_names"])
    task.palette = np.asarray(info["palette"], dtype=np.uint8)
    task.ignore_index = info.get("ignore_index")


class SemanticTask:
    """Per-pixel classification (FCN, SegNet, U-Net, DeepLabV3+)."""

    name = "semantic"
    defaults = dict(model="unet", data="shapes")
    models = {
        # The default run's U-Net: small enough that a CPU trains it in a minute or two.
        "unet": dict(base_channels=8, depth=3, padding="same"),
        "fcn8s": {}, "fcn16s": {}, "fcn32s": {}, "segnet": {},
        # The paper's rates 6/12/18 need feature maps larger than 18 pixels (inputs of
        # 289 at output stride 16); toy images of 64 pixels give 8x8 maps at stride 8.
        "deeplabv3plus": dict(output_stride=8, atrous_rates=(1, 2, 3)),
    }
    datasets = ("shapes", "roads", "cells")
    instances = False
    score_names = {"pixel_acc": "pixel acc", "mean_acc": "mean acc", "mean_iou": "mean IU", "fw_iou": "f.w. IU"}
    best_score = "mean_iou"
    most_classes_written = 2 ** 16           # the mask PNG: 8-bit palette, 16-bit grey past 256 classes

    def __init__(self, info):
        keep_dataset_info(self, info)

    def build_model(self, name, model_args):
        from ..models import build_model

        return build_model(name, self.in_channels, self.num_classes, **model_args)

    def targets(self, labels):
        """The masks on the device, their labels checked first where they arrive, on the host
        (``check_class_labels``), so that the loss need not read a check back from the device."""
        (masks,) = labels
        check_class_labels(masks, self.num_classes, loss_ignore_index(self))
        return backend.asarray(masks)

    def loss(self, outputs, targets):
        return cross_entropy_of_checked_labels(outputs, Tensor(targets), ignore_index=loss_ignore_index(self))

    def new_scores(self, training=False):
        return ConfusionScores(self.num_classes, self.class_names)

    def postprocess(self, outputs):
        return class_map(outputs)

    def plot_curves(self, history, file):
        from ..viz import plot_curves

        plot_curves(history, file)

    def plot_predictions(self, images, labels, predictions, file):
        from ..viz import plot_predictions

        (masks,) = labels
        void = -1          # any label outside [0, C) is the ignored one (checked with the batch)
        masks = np.where((masks >= 0) & (masks < self.num_classes), masks, void)
        plot_predictions(images, masks, predictions, self.palette, file, class_names=self.class_names,
                         ignore_index=void)

    def write_prediction(self, image, prediction, out, stem):
        """``STEM_overlay.png`` (class colours over the image) and ``STEM_mask.png``
        (an index PNG, usable as a folder dataset's mask)."""
        import os

        from PIL import Image

        from ..viz import overlay
        from ..runfolder import atomic_file

        background = 0 if self.class_names[0] == "background" else None
        rgb = overlay(image, prediction, self.palette, alpha=0.5, background=background)
        overlay_path = os.path.join(out, f"{stem}_overlay.png")
        with atomic_file(overlay_path) as f:
            Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).save(f, format="PNG")
        mask_path = os.path.join(out, f"{stem}_mask.png")
        mask_image = class_map_png(prediction, self.palette)
        with atomic_file(mask_path) as f:
            mask_image.save(f, format="PNG")
        shares = np.bincount(prediction.reshape(-1), minlength=self.num_classes) / prediction.size
        note = ", ".join(f"{n} {share_text(s)}" for n, s in zip(self.class_names, shares) if s > 0)
        return [overlay_path, mask_path], note
