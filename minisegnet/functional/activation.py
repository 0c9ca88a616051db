"""Activations: each a forward/backward pair on arrays.

Softmax and log-softmax subtract the maximum first, so large logits never
overflow ``exp``.
"""
from .. import backend
from ..autograd import Function
from .basic import normalize_dims

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax"]


class ReLU(Function):
    """y = max(x, 0);  dx = g where x > 0, else 0 (PyTorch's choice at x = 0)."""

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, g):
        return g * self.mask


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x));  dx = g * y * (1 - y)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        # exp of a non-positive number only: stable for both signs of x.
        e = xp.exp(-xp.abs(x))
        self.y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.y

    def backward(self, g):
        return g * self.y * (1 - self.y)


class Tanh(Function):
    """y = tanh(x);  dx = g * (1 - y^2)."""

    def forward(self, x):
        self.y = backend.get_array_module(x).tanh(x)
        return self.y

    def backward(self, g):
        return g * (1 - self.y * self.y)


class Softmax(Function):
    """y_i = exp(x_i - m) / sum_j exp(x_j - m) along ``dim`` (m = max, for stability);
    dx = y * (g - sum(g * y))."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        xp = backend.get_array_module(x)
        e = xp.exp(x - x.max(axis=self.dim, keepdims=True))
        self.y = e / e.sum(axis=self.dim, keepdims=True)
        return self.y

    def backward(self, g):
        return self.y * (g - (g * self.y).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    """y = x - m - log(sum exp(x - m)) along ``dim``;  dx = g - softmax(x) * sum(g)."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        xp = backend.get_array_module(x)
        shifted = x - x.max(axis=self.dim, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=self.dim, keepdims=True))
        return self.y

    def backward(self, g):
        xp = backend.get_array_module(g)
        return g - xp.exp(self.y) * g.sum(axis=self.dim, keepdims=True)


def relu(x, inplace=False):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility and ignored."""
    return ReLU()(x)


def sigmoid(x):
    return Sigmoid()(x)


def tanh(x):
    return Tanh()(x)


def softmax(x, dim):
    return Softmax(normalize_dims(dim, x.ndim)[0])(x)


def log_softmax(x, dim):
    return LogSoftmax(normalize_dims(dim, x.ndim)[0])(x)
