"""Activations and dropout: each a forward/backward pair on arrays.

Softmax and log-softmax subtract the maximum first, so large logits never
overflow ``exp``. The piecewise-linear activations (ReLU, leaky ReLU, ReLU6)
keep a mask of where the input was, which is all their backward needs. At a
kink the gradient takes PyTorch's side: ReLU and ReLU6 pass no gradient at
exactly 0 (and at exactly 6 for ReLU6); leaky ReLU uses the slope at 0.

Dropout masks are made where the input lives (on the GPU for CuPy) from a key
drawn from the library's seeded generator (``minisegnet.random.uniform``), so
``msn.manual_seed(s)`` repeats them, with the same numbers on NumPy and CuPy.
"""
import numpy as np

from .. import backend, checks, parallel
from ..autograd import Function
from ..random import uniform
from .basic import empty_batch
from .promotion import in_opmath, opmath

__all__ = ["relu", "leaky_relu", "relu6", "sigmoid", "tanh", "softmax", "log_softmax",
           "dropout", "dropout2d"]


class ReLU(Function):
    """y = max(x, 0);  dx = g where x > 0, else 0 (PyTorch's choice at x = 0).

    That is ``y = maximum(x, 0)`` (so -inf gives 0 and NaN stays NaN, as in
    PyTorch; a -0.0 input gives +0.0 in float32 and float64, where PyTorch
    keeps -0.0, the same number), a mask of where ``not (x <= 0)`` (x > 0, and
    also NaN, whose gradient PyTorch passes on) and ``dx = g`` there, 0
    elsewhere, computed a slab of images at a time so that the slabs can share
    the CPU cores (``parallel.over_batch``; one slab for small arrays and on
    the GPU).

    ``dx`` *selects* ``g`` (``select_by_mask``), as PyTorch does: ``g * mask``
    would be NaN where ``g`` is infinite or NaN and the mask 0.
    """

    def forward(self, x):
        xp = backend.get_array_module(x)
        below, y = xp.empty(x.shape, dtype=bool), xp.empty_like(x)
        self.mask = xp.empty(x.shape, dtype=np.int8)
        zero = _zeros_for_maximum(x)

        def slab(i):
            xp.less_equal(x[i], 0, out=below[i])
            xp.subtract(below[i].view(np.int8), 1, out=self.mask[i])      # x <= 0: 0, else -1 (all bits 1)
            xp.maximum(x[i], zero, out=y[i])

        parallel.over_batch(slab, x)
        return y

    def backward(self, g):
        xp = backend.get_array_module(g)
        dx = xp.empty_like(g)
        parallel.over_batch(lambda i: select_by_mask(g[i], self.mask[i], out=dx[i]), g)
        return dx


def select_by_mask(g, mask, out):
    """``out = g`` where ``mask`` is -1, ``+0.0`` where it is 0 (an int8 mask): ``where(mask, g, 0)``.

    Done on the bits: ``g``'s bits AND ``mask``'s (int8 -1 widens to all bits 1,
    0 to none), which keeps or clears every bit of a value. It is exact for any
    ``g``, an infinite or NaN one included (``g * mask`` would give ``inf * 0 =
    NaN``), and faster on NumPy than ``where`` with a mask of random pattern
    (65 536 values, one thread: about 16 us against 250 us, and 20 us for the
    multiply; measured while developing).
    """
    xp = backend.get_array_module(g)
    bits = np.dtype(f"i{g.dtype.itemsize}")
    xp.bitwise_and(g.view(bits), mask, out=out.view(bits))
    return out


RELU_ZEROS_ARRAY = True
"""Speed lever: ReLU's ``maximum(x, 0)`` on NumPy takes its 0 as a plane of zeros (the
last two axes, a cached constant) broadcast over batch and channels, instead of the
number 0: NumPy (2.4) computes ``maximum`` of two arrays faster than of an array and a
number (measured while developing, the op alone at (8, 16, 64, 64), one thread: 301
against 406 us). The same values either way. ``benchmarks/bench_train_step.py --levers``
times what it gives a whole step."""


def _zeros_for_maximum(x):
    """0 for ``maximum(x, 0)``: the number, or (``RELU_ZEROS_ARRAY``, NumPy, at least 2-D)
    a shared array of zeros shaped like one plane of ``x`` (one row for 2-D); never write
    into it."""
    if not RELU_ZEROS_ARRAY or backend.get_array_module(x) is not np or x.ndim < 2:
        return 0
    trailing = x.shape[-2:] if x.ndim >= 3 else x.shape[-1:]
    shape = (1,) * (x.ndim - len(trailing)) + trailing
    return backend.constant(np, ("zeros", shape, x.dtype.str), lambda: np.zeros(shape, x.dtype))


class LeakyReLU(Function):
    """y = x where x > 0, else a*x (a = negative_slope);  dx = g where x > 0, else a*g.

    ``a*x`` is computed in PyTorch's opmath dtype (float16 in float32, rounded once:
    NumPy would round ``a`` to float16 first, a step off PyTorch's product in 1 of 6)."""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def _scaled(self, v):
        wide = opmath(v.dtype)
        if wide == v.dtype:
            return v * self.negative_slope
        # every element is scaled, the positive ones too (``where`` drops them): one beyond
        # float16's range rounds to inf without a warning, as PyTorch's does
        with np.errstate(over="ignore"):
            return (v.astype(wide) * self.negative_slope).astype(v.dtype)

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.mask = x > 0
        return xp.where(self.mask, x, self._scaled(x))

    def backward(self, g):
        xp = backend.get_array_module(g)
        return xp.where(self.mask, g, self._scaled(g))


class ReLU6(Function):
    """y = min(max(x, 0), 6) (MobileNetV2's activation, bounded for low precision);
    dx = g where 0 < x < 6, else 0 (written ``not (x <= 0 or x >= 6)``, so that a
    NaN input passes its gradient on, as in PyTorch; selected, as ReLU's)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        outside = (x <= 0) | (x >= 6)
        self.mask = xp.subtract(outside.view(np.int8), 1)                  # outside: 0, else -1
        return xp.clip(x, 0, 6)

    def backward(self, g):
        return select_by_mask(g, self.mask, backend.get_array_module(g).empty_like(g))


class Dropout(Function):
    """y = x * m / (1 - p),  m ~ Bernoulli(1 - p) drawn once per element
    (``dropout``) or once per (sample, channel) plane (``dropout2d``, m of shape
    (N, C, 1, 1) broadcast over H x W);  dx = g * m / (1 - p).

    Dividing by the keep probability at training time keeps E[y] = x, so the
    layer is the identity at evaluation time with no rescaling.
    """

    def __init__(self, p, mask_shape):
        self.p, self.mask_shape = p, mask_shape

    def forward(self, x):
        xp = backend.get_array_module(x)
        keep = uniform(xp, self.mask_shape) >= self.p
        # p = 1 drops everything; 1/(1-p) would be inf, and inf*0 is nan. The scale as PyTorch's:
        # 1 / (1 - p) divided in the input's opmath dtype, then rounded to the input's dtype (for
        # float32 not 1/(1-p) in double rounded to float32: one ulp apart for p = 0.15)
        wide = np.dtype(opmath(x.dtype)).type
        scale = 0.0 if self.p == 1 else wide(1) / wide(1.0 - self.p)
        with np.errstate(over="ignore"):          # a float16 scale past 65504 is inf, as PyTorch's
            scale = x.dtype.type(scale)
        self.mask = xp.where(keep, scale, x.dtype.type(0))   # 0 where dropped even then (not 0 * inf = NaN)
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
    """y = tanh(x);  dx = g * (1 - y^2).

    float16: each computed in float32 and rounded once, the gradient from the rounded
    output ``y``, as PyTorch's CPU kernels (the same numbers; in float16 each step rounds)."""

    def forward(self, x):
        wide = opmath(x.dtype)
        self.y = backend.get_array_module(x).tanh(x.astype(wide, copy=False)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, g):
        wide = opmath(g.dtype)
        y = self.y.astype(wide, copy=False)
        return (g.astype(wide, copy=False) * (1 - y * y)).astype(g.dtype, copy=False)


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


def _input(x, op, inplace=False):
    """Every activation's input check: a floating-point Tensor (integers and booleans
    are refused, not promoted: see minisegnet.checks), and ``inplace`` a flag."""
    checks.flag(inplace, "inplace", op)
    return checks.float_tensor(x, "input", op)


def relu(input, inplace=False):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility and ignored."""
    return ReLU()(_input(input, "relu", inplace))


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else ``negative_slope * x``. ``inplace`` is accepted for
    PyTorch compatibility and ignored."""
    input = _input(input, "leaky_relu", inplace)
    slope = checks.fits(_check_negative_slope(negative_slope, "leaky_relu"), opmath(input.dtype), "negative_slope",
                        "leaky_relu")                      # the dtype a*x is computed in (LeakyReLU)
    return LeakyReLU(slope)(input)


def _check_negative_slope(negative_slope, op):
    """A real number (infinite allowed, as in PyTorch; not NaN); ``op`` starts the message."""
    return checks.real(negative_slope, "negative_slope", op, finite=False)


def relu6(input, inplace=False):
    """min(max(x, 0), 6). ``inplace`` is accepted for PyTorch compatibility and ignored."""
    return ReLU6()(_input(input, "relu6", inplace))


def _check_dropout_p(p, op):
    """The drop probability, a number in [0, 1]; ``op`` starts the message."""
    return checks.real(p, "p", op, minimum=0, maximum=1)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    ``input``: any shape. With ``training=False`` (or p = 0) it returns ``input`` itself.
    The mask comes from ``minisegnet.random.uniform``: ``msn.manual_seed``
    repeats it. ``inplace`` is accepted for PyTorch compatibility and ignored.
    """
    p = _check_dropout_p(p, "dropout")
    _input(input, "dropout", inplace)
    if not checks.flag(training, "training", "dropout") or p == 0:
        return input
    return Dropout(p, input.shape)(input)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels: each (n, c) plane of ``input`` (N, C, H, W) is dropped
    with probability ``p``; kept planes are scaled by 1/(1-p).

    Neighbouring pixels of a feature map are strongly correlated, so dropping
    single pixels barely regularises a conv net; dropping a whole feature map
    does (Tompson et al. 2015). Unlike PyTorch, a 3-D input is an error rather
    than a guess between (C, H, W) and (N, C, L).
    """
    p = _check_dropout_p(p, "dropout2d")
    _input(input, "dropout2d", inplace)
    if input.ndim != 4:
        raise ValueError(f"dropout2d: input must be 4-D (N, C, H, W), got shape {input.shape}")
    if not checks.flag(training, "training", "dropout2d") or p == 0:
        return input
    return Dropout(p, input.shape[:2] + (1, 1))(input)


def sigmoid(input):
    return in_opmath(Sigmoid(), _input(input, "sigmoid"))


def tanh(input):
    return Tanh()(_input(input, "tanh"))


def _cast_first(input, dtype, op):
    """PyTorch's ``dtype`` of softmax and log_softmax: the input cast to it first (e.g. float16
    logits normalised in float32); None keeps the input's."""
    if dtype is None:
        return input
    checks.tensor(input, "input", op)
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        raise TypeError(f"{op}: dtype must be a floating-point dtype or None, got {dtype!r}") from None
    if kind != "f":
        raise TypeError(f"{op}: dtype must be a floating-point dtype, got {np.dtype(dtype)}")
    return input.astype(dtype)


def softmax(input, dim, *, dtype=None):
    """exp(x) normalised to sum 1 along ``dim``, one int (PyTorch's implicit choice of
    dim when it is None is deprecated there and refused here). ``dtype``: cast the input
    to it first, as PyTorch."""
    input = _cast_first(input, dtype, "softmax")
    _input(input, "softmax")
    dim = checks.dim(dim, input.ndim, "dim", "softmax")
    if input.size == 0:                 # nothing to normalise (an empty batch, or an empty axis): empty, as PyTorch
        return empty_batch(input.shape, input)
    return in_opmath(Softmax(dim), input)


def log_softmax(input, dim, *, dtype=None):
    """log(softmax(x, dim)), computed stably; ``dim`` and ``dtype`` as for ``softmax``."""
    input = _cast_first(input, dtype, "log_softmax")
    _input(input, "log_softmax")
    dim = checks.dim(dim, input.ndim, "dim", "log_softmax")
    if input.size == 0:                 # as softmax
        return empty_batch(input.shape, input)
    return in_opmath(LogSoftmax(dim), input)
