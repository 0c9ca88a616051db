"""Activation and dropout layers: thin module forms of ``functional``.

They hold no parameters, only their settings, so a model can be written as a
``Sequential`` of layers. Dropout layers look at ``self.training``: they drop
in ``train()`` mode and pass the input through unchanged in ``eval()`` mode.
"""
from .. import checks
from .. import functional as F
from ..functional.activation import _check_dropout_p, _check_negative_slope
from .module import Module

__all__ = ["ReLU", "LeakyReLU", "ReLU6", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Dropout", "Dropout2d", "Identity"]


class ReLU(Module):
    """max(x, 0). ``inplace`` (a flag) is accepted for PyTorch compatibility and
    ignored: the result is always a new tensor (so is every layer's here)."""

    def __init__(self, inplace=False):
        self.inplace = checks.flag(inplace, "inplace", "ReLU")

    def forward(self, input):
        return F.relu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope * x``."""

    def __init__(self, negative_slope=0.01, inplace=False):
        self.negative_slope = _check_negative_slope(negative_slope, "LeakyReLU")
        self.inplace = checks.flag(inplace, "inplace", "LeakyReLU")      # accepted and ignored, as ReLU's

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ReLU6(Module):
    """min(max(x, 0), 6), MobileNetV2's activation."""

    def __init__(self, inplace=False):
        self.inplace = checks.flag(inplace, "inplace", "ReLU6")          # accepted and ignored, as ReLU's

    def forward(self, input):
        return F.relu6(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Softmax(Module):
    """softmax along ``dim`` (required: PyTorch's implicit choice of dim is deprecated)."""

    def __init__(self, dim):
        self.dim = checks.integer(dim, "dim", type(self).__name__)

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably (``dim`` required, as for Softmax)."""

    def __init__(self, dim):
        self.dim = checks.integer(dim, "dim", type(self).__name__)

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Dropout(Module):
    """Elementwise dropout with probability ``p`` in training; the identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        self.p = _check_dropout_p(p, type(self).__name__)
        self.inplace = checks.flag(inplace, "inplace", type(self).__name__)    # accepted and ignored

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Channel dropout: whole (n, c) feature maps of an (N, C, H, W) input are
    zeroed with probability ``p`` in training; the identity in eval."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)


class Identity(Module):
    """Returns its input; any constructor arguments are ignored (as in PyTorch).
    Handy as a placeholder, e.g. ``norm = BatchNorm2d(c) if batch_norm else Identity()``."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, input):
        return input
