"""Activation, dropout and loss layers: thin module forms of ``functional``.

They hold no parameters, only their settings, so a model can be written as a
``Sequential`` of layers. Dropout layers look at ``self.training``: they drop
in ``train()`` mode and pass the input through unchanged in ``eval()`` mode.
"""
from .. import checks
from .. import functional as F
from ..autograd import Tensor
from ..functional.activation import _check_dropout_p, _check_negative_slope
from ..functional.loss import _check_label_smoothing, _check_reduction
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "ReLU6", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Dropout", "Dropout2d", "Identity", "CrossEntropyLoss"]


class ReLU(Module):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility and ignored."""

    def __init__(self, inplace=False):
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope * x``."""

    def __init__(self, negative_slope=0.01, inplace=False):
        self.negative_slope, self.inplace = _check_negative_slope(negative_slope), inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ReLU6(Module):
    """min(max(x, 0), 6), MobileNetV2's activation."""

    def __init__(self, inplace=False):
        self.inplace = inplace

    def forward(self, x):
        return F.relu6(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Softmax(Module):
    """softmax along ``dim`` (required: PyTorch's implicit choice of dim is deprecated)."""

    def __init__(self, dim):
        self.dim = checks.integer(dim, "dim", type(self).__name__)

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably (``dim`` required, as for Softmax)."""

    def __init__(self, dim):
        self.dim = checks.integer(dim, "dim", type(self).__name__)

    def forward(self, x):
        return F.log_softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Dropout(Module):
    """Elementwise dropout with probability ``p`` in training; the identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        self.p = _check_dropout_p(p)
        self.inplace = inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Dropout):
    """Channel dropout: whole (n, c) feature maps of an (N, C, H, W) input are
    zeroed with probability ``p`` in training; the identity in eval."""

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training)


class Identity(Module):
    """Returns its input; any constructor arguments are ignored (as in PyTorch).
    Handy as a placeholder, e.g. ``norm = BatchNorm2d(c) if batch_norm else Identity()``."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, x):
        return x


class CrossEntropyLoss(Module):
    """``F.cross_entropy`` as a module: ``CrossEntropyLoss(weight, ignore_index=255)(logits, target)``.

    ``weight`` (optional (C,) class weights) is kept as a buffer, so it appears
    in the state dict under the key ``weight`` as in PyTorch.
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        _check_reduction(reduction, "CrossEntropyLoss")
        _check_label_smoothing(label_smoothing, "CrossEntropyLoss")
        self.label_smoothing = label_smoothing
        self.weight = None if weight is None else (weight if isinstance(weight, Tensor) else Tensor(weight))
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError(f"CrossEntropyLoss: weight must be a 1-D tensor of class weights, got shape "
                             f"{self.weight.shape}")
        self.ignore_index = ignore_index
        self.reduction = reduction
        self._buffers = ("weight",) if self.weight is not None else ()

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)

    def extra_repr(self):
        return (f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
                + (f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""))
