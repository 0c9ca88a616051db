"""Segmentation scores from a confusion matrix, as defined in the FCN paper.

Long, Shelhamer and Darrell (2015), section 5. Let ``n_ij`` be the number of
pixels of true class ``i`` predicted as class ``j``, ``t_i = sum_j n_ij`` the
number of pixels of class ``i`` and ``n_cl`` the number of classes:

    pixel accuracy   sum_i n_ii / sum_i t_i
    mean accuracy    (1/n_cl) sum_i n_ii / t_i
    mean IU          (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)
    f.w. IU          (sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)

Everything starts from ``confusion_matrix(pred, target, num_classes)``, a
``(C, C)`` integer matrix whose **rows are the truth** and columns the
prediction. Confusion matrices of several batches simply add up, so a whole
validation set is scored by summing its batches' matrices first (scoring
each batch and averaging the scores would weight small batches wrongly).

Absent classes (our choice, stated because the paper leaves it implicit):

* A class absent from **both** the truth and the prediction has IU ``0/0``
  (and accuracy ``0/0``, Dice ``0/0``). It is reported as NaN by the
  per-class functions and **left out of the mean**, so ``n_cl`` counts only
  the classes that occur. Counting it as 0 would punish a model for a class
  the images never showed; counting it as 1 would reward it.
* A class absent from the truth but predicted somewhere has IU ``0`` (its
  union is the false positives) and counts in mean IU. Its accuracy
  ``n_ii / t_i`` is still ``0/0`` and is left out of mean accuracy.
* In f.w. IU such a class has weight ``t_i = 0`` and adds nothing.
* Pixels whose truth is ``ignore_index`` are not counted anywhere.
* A matrix with no pixels at all gives NaN for every score.

The functions accept NumPy or CuPy arrays (or Tensors) and return Python
floats (scores) or NumPy arrays (per-class values).
"""
import math

import numpy as np

from .. import backend, checks

__all__ = [
    "confusion_matrix",
    "pixel_accuracy",
    "mean_accuracy",
    "mean_iou",
    "frequency_weighted_iou",
    "iou_per_class",
    "dice_per_class",
    "accuracy_per_class",
    "scores",
]


def confusion_matrix(pred, target, num_classes, ignore_index=None):
    """The ``(num_classes, num_classes)`` int64 matrix ``n[i, j]`` = pixels of
    true class ``i`` predicted as ``j`` (rows = truth, columns = prediction).

    ``pred`` and ``target`` are integer arrays of the same shape, e.g.
    ``(N, H, W)`` label maps (take ``logits.argmax(1)`` first). Pixels whose
    target equals ``ignore_index`` are dropped; ``ignore_index`` must lie outside
    ``[0, num_classes)`` (torchmetrics also takes a class there and leaves it out of
    its mean, which a matrix cannot record). Any other label outside
    ``[0, num_classes)`` is an error, in the prediction or in the target.

    Counting is one ``bincount`` over the combined index ``C * truth + pred``,
    which runs at memory speed; the result stays on the inputs' backend, and on
    a GPU the only value read back to the host is whether any label is out of range.
    """
    num_classes = checks.integer(num_classes, "num_classes", "confusion_matrix", minimum=1)
    ignore_index = checks.integer(ignore_index, "ignore_index", "confusion_matrix", allow_none=True)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        # torchmetrics takes it and leaves that class out of its mean; a matrix cannot say so:
        # column ignore_index would still count predictions of that class, and its IoU be 0
        raise ValueError(f"confusion_matrix: ignore_index={ignore_index} is one of the classes 0..{num_classes - 1}: "
                         "predictions of that class would still be counted, and its IoU of 0 would enter "
                         "mean_iou. Give the ignored pixels a label outside the classes (255, say), pass that, "
                         "and to score the other classes only (torchmetrics' mean with this ignore_index) "
                         "average iou_per_class(cm) over them")
    checks.check_bytes((num_classes, num_classes), 8, "confusion_matrix", f"num_classes={num_classes}")
    op = "confusion_matrix"
    pred, target = checks.array(pred, "pred", op), checks.array(target, "target", op)
    xp = backend.get_array_module(pred, target)
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"{op}: pred and target must have the same shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    for name, a in (("pred", pred), ("target", target)):
        if a.dtype.kind not in "iub":
            raise TypeError(f"{op}: {name} must hold integer labels, got dtype {a.dtype} "
                            "(use logits.argmax(1) for predictions)")
    for name, a in (("target", target), ("pred", pred)):
        if a.dtype == np.uint64 and a.size and int(a.max()) > np.iinfo(np.int64).max:   # int64 would wrap it
            raise ValueError(f"{op}: {name} holds label {int(a.max())}, outside [0, {num_classes}) for "
                             f"num_classes={num_classes}")
    pred = pred.reshape(-1).astype(xp.int64)
    target = target.reshape(-1).astype(xp.int64)
    counted = None if ignore_index is None else target != ignore_index
    bad = (target < 0) | (target >= num_classes) | (pred < 0) | (pred >= num_classes)
    if counted is not None:
        bad &= counted
    # One yes/no read back from a GPU per call; the offending label is looked up only if there is one.
    if bad.size and bool(bad.any()):
        for name, a in (("target", target), ("pred", pred)):
            values = a if counted is None else a[counted]
            if values.size and (int(values.min()) < 0 or int(values.max()) >= num_classes):
                label = int(values.min()) if int(values.min()) < 0 else int(values.max())
                hint = "" if name == "pred" or ignore_index is not None else \
                    " (pass ignore_index for a 'don't care' label)"
                raise ValueError(f"{op}: {name} holds label {label}, outside [0, {num_classes}) for "
                                 f"num_classes={num_classes}{hint}")
    index = target * num_classes + pred
    if counted is not None:
        # Ignored pixels go to one extra bin, dropped below: selecting the counted
        # pixels with a boolean mask would make a GPU stop to count them first.
        index = xp.where(counted, index, num_classes * num_classes)
    counts = backend.bincount(index, num_classes * num_classes + 1)[:-1]
    return counts.reshape(num_classes, num_classes).astype(xp.int64)


def _cm(cm, op):
    """The matrix as float64 NumPy, after checking it holds counts: square, numeric,
    finite and non-negative (a C x C scan, cheap: C is the number of classes).
    ``op``, the public function called, starts the error messages."""
    cm = np.asarray(backend.to_numpy(checks.array(cm, "cm", op)))
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"{op}: cm must be a square (C, C) confusion matrix, got shape {cm.shape}")
    if cm.dtype.kind not in "biuf":
        raise TypeError(f"{op}: cm must hold counts, got dtype {cm.dtype}")
    if cm.dtype.kind == "f" and not np.isfinite(cm).all():
        raise ValueError(f"{op}: cm must hold counts, got a NaN or infinite entry "
                         f"(at row, column {tuple(int(i) for i in np.argwhere(~np.isfinite(cm))[0])})")
    if cm.size and cm.min() < 0:
        raise ValueError(f"{op}: cm must hold counts, got a negative entry")
    return cm.astype(np.float64)


def _ratio(num, den):
    """num / den elementwise, NaN where den == 0 (0/0: undefined, not an error)."""
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(values):
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


# Each public score checks ``cm`` under its own name, then computes from the checked
# float64 matrix with the private form below (which checks nothing).
def _iou_per_class(cm):
    tp = np.diag(cm)
    return _ratio(tp, cm.sum(1) + cm.sum(0) - tp)


def _accuracy_per_class(cm):
    return _ratio(np.diag(cm), cm.sum(1))


def _pixel_accuracy(cm):
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else math.nan


def _frequency_weighted_iou(cm):
    t = cm.sum(1)
    total = t.sum()
    if total == 0:
        return math.nan
    iou = np.nan_to_num(_iou_per_class(cm))  # NaN only where t_i = 0, whose weight is 0
    return float((t * iou).sum() / total)


def iou_per_class(cm):
    """``n_ii / (t_i + sum_j n_ji - n_ii)`` per class; NaN for a class that is
    neither in the truth nor in the prediction."""
    return _iou_per_class(_cm(cm, "iou_per_class"))


def dice_per_class(cm):
    """Dice (F1) per class, ``2 n_ii / (t_i + sum_j n_ji)``; NaN where both are 0.
    Dice = 2 IU / (1 + IU), so it ranks classes the same way IU does."""
    cm = _cm(cm, "dice_per_class")
    return _ratio(2 * np.diag(cm), cm.sum(1) + cm.sum(0))


def accuracy_per_class(cm):
    """``n_ii / t_i`` per class (recall); NaN for a class absent from the truth."""
    return _accuracy_per_class(_cm(cm, "accuracy_per_class"))


def pixel_accuracy(cm):
    """``sum_i n_ii / sum_i t_i``: the fraction of counted pixels labelled right."""
    return _pixel_accuracy(_cm(cm, "pixel_accuracy"))


def mean_accuracy(cm):
    """``(1/n_cl) sum_i n_ii / t_i`` over the classes present in the truth."""
    return _nanmean(_accuracy_per_class(_cm(cm, "mean_accuracy")))


def mean_iou(cm):
    """``(1/n_cl) sum_i IU_i`` over the classes present in the truth or the prediction."""
    return _nanmean(_iou_per_class(_cm(cm, "mean_iou")))


def frequency_weighted_iou(cm):
    """``(sum_k t_k)^-1 sum_i t_i IU_i``: IU weighted by how often each class is true."""
    return _frequency_weighted_iou(_cm(cm, "frequency_weighted_iou"))


def scores(cm):
    """The four FCN scores as a dict: ``pixel_acc``, ``mean_acc``, ``mean_iou``, ``fw_iou``."""
    cm = _cm(cm, "scores")
    return {
        "pixel_acc": _pixel_accuracy(cm),
        "mean_acc": _nanmean(_accuracy_per_class(cm)),
        "mean_iou": _nanmean(_iou_per_class(cm)),
        "fw_iou": _frequency_weighted_iou(cm),
    }
