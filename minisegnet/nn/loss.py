"""Loss layers: ``F.cross_entropy``, ``F.binary_cross_entropy_with_logits``,
``F.mse_loss`` and ``F.l1_loss`` as modules, as in ``torch.nn``.

A loss module holds its settings, and its constant tensors (class weights,
``pos_weight``) as buffers, so they appear in the state dict under PyTorch's
keys. Its ``forward(input, target)`` calls the functional form, where the
formulas and the gradients live.

PyTorch's deprecated ``size_average`` and ``reduce`` arguments are left out.
In PyTorch they come right after ``weight`` (or first, for the regression
losses), so the arguments that follow are keyword-only here: a call written
positionally for one library fails in the other instead of meaning something
else.
"""
from .. import checks
from .. import functional as F
from ..functional.loss import _check_label_smoothing, _check_reduction, _class_weights, bce_constant
from .module import Module

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss"]


class CrossEntropyLoss(Module):
    """``F.cross_entropy`` as a module: ``CrossEntropyLoss(weight, ignore_index=255)(logits, target)``.

    ``weight`` (optional (C,) class weights) is kept as a buffer, so it appears
    in the state dict under the key ``weight`` as in PyTorch. The settings are
    checked when the loss is made, with ``F.cross_entropy``'s checks (the
    number of classes once the input comes); PyTorch checks them at the first call.
    """

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        op = type(self).__name__
        _check_reduction(reduction, op)
        _check_label_smoothing(label_smoothing, op)
        checks.integer(ignore_index, "ignore_index", op)        # F.cross_entropy's rule
        self.label_smoothing = label_smoothing
        self.weight = _class_weights(weight, op)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self._buffers = ("weight",)          # saved when set (None is not saved), as in PyTorch

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class BCEWithLogitsLoss(Module):
    """``F.binary_cross_entropy_with_logits`` as a module: one sigmoid and binary
    cross-entropy per element, for a mask per object or per class (e.g. a
    foreground map). ``weight`` and ``pos_weight`` are buffers, saved under
    those keys when given, as in PyTorch; their kinds are checked when the loss
    is made, their shapes against the input at the first call."""

    def __init__(self, weight=None, *, reduction="mean", pos_weight=None):
        op = type(self).__name__
        _check_reduction(reduction, op)
        self.weight, self.pos_weight = (None if value is None else bce_constant(value, name, op)
                                        for value, name in ((weight, "weight"), (pos_weight, "pos_weight")))
        self.reduction = reduction
        self._buffers = ("weight", "pos_weight")     # each saved when set, as in PyTorch

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class MSELoss(Module):
    """``F.mse_loss`` as a module: the mean (or sum) of ``(input - target)^2``.
    (Per-element weights are an argument of ``F.mse_loss`` only, as in PyTorch.)"""

    def __init__(self, *, reduction="mean"):
        _check_reduction(reduction, "MSELoss")
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(Module):
    """``F.l1_loss`` as a module: the mean (or sum) of ``|input - target|``."""

    def __init__(self, *, reduction="mean"):
        _check_reduction(reduction, "L1Loss")
        self.reduction = reduction

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)
