"""Segmentation scores; ``semantic.py``: the confusion matrix and the FCN paper's scores."""
from .. import backend  # noqa: F401  (metrics.backend.to_numpy in user code and tests)
from .semantic import (accuracy_per_class, confusion_matrix, dice_per_class, frequency_weighted_iou,
                       iou_per_class, mean_accuracy, mean_iou, pixel_accuracy, scores)
from .semantic import __all__  # noqa: F401
