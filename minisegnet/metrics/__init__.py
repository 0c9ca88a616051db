"""How good is a segmentation? One module per kind of answer:

* ``semantic.py``: a class per pixel. The confusion matrix and the FCN
  paper's four scores (pixel accuracy, mean accuracy, mean IU, f.w. IU),
  per-class IoU and Dice.
* ``panoptic.py``: a class per pixel *and* an id per object. Panoptic
  quality PQ = SQ x RQ (Kirillov et al., 2019), per category and averaged,
  things and stuff separately.
* ``objects.py``: overlap between objects: IoU of instance masks
  (``mask_iou``) and of boxes (``box_iou``, the detection metric).

Every function is importable from ``minisegnet.metrics`` directly, e.g.
``metrics.confusion_matrix`` or ``metrics.panoptic_quality``. Counts add up
over batches (a confusion matrix, PQ's per-category counts), so a whole
validation set is scored by summing its batches' counts first.
"""
from .. import backend  # noqa: F401  (metrics.backend.to_numpy in user code and tests)
from .objects import box_area, box_iou, mask_iou
from .panoptic import describe_pq, panoptic_counts, panoptic_quality, panoptic_scores
from .semantic import (accuracy_per_class, confusion_matrix, dice_per_class, frequency_weighted_iou,
                       iou_per_class, mean_accuracy, mean_iou, pixel_accuracy, scores)

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
    "panoptic_counts",
    "panoptic_quality",
    "panoptic_scores",
    "describe_pq",
    "mask_iou",
    "box_iou",
    "box_area",
]
