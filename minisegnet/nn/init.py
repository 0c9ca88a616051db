"""Weight initialisation, drawing from the library's seeded generator.

Two kinds of functions:

* ``kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu")``,
  ``uniform_(tensor, a=0.0, b=1.0)`` and ``zeros_(tensor)`` are
  ``torch.nn.init``'s: they fill a Tensor (a Parameter) in place and return
  it, with torch's arguments and defaults (no ``generator`` argument: they
  draw from ``minisegnet.random.generator()``, which ``manual_seed`` seeds).
* ``kaiming_uniform_array(shape, a=sqrt(5))`` and ``uniform_array(shape, bound)``
  are this library's own: they take a shape and return a new backend array.
  Their names differ from torch's on purpose: ``kaiming_uniform_array``'s
  default ``a = sqrt(5)`` is the one conv layers use, not torch's ``a = 0``.

The default initialisation of ``Conv2d`` and ``ConvTranspose2d`` is
PyTorch's: the weight from Kaiming-uniform with ``a = sqrt(5)``, which works
out to ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and the bias from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` too (``fan_in`` from
``fan_in_and_fan_out(weight.shape)``). Torch's own default ``a = 0`` gives
the larger He bound ``sqrt(6 / fan_in)``.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..random import generator

__all__ = ["kaiming_uniform_", "uniform_", "zeros_", "calculate_gain", "uniform_array", "kaiming_uniform_array",
           "default_conv_bound", "fan_in_and_fan_out"]


def fan_in_and_fan_out(shape):
    """For a weight of shape (out, in, kh, kw): fan_in = in*kh*kw, fan_out = out*kh*kw
    (torch's ``_calculate_fan_in_and_fan_out``; 2-D shapes have no receptive field)."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out can not be computed for a shape with fewer than 2 dimensions, "
                         f"got {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """torch's gain for ``"linear"``, ``"conv2d"``, ``"sigmoid"`` (1), ``"tanh"`` (5/3),
    ``"relu"`` (sqrt 2) and ``"leaky_relu"`` (``sqrt(2 / (1 + param^2))``, param
    default 0.01); other names are a ValueError."""
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: nonlinearity must be one of 'linear', 'conv2d', 'sigmoid', 'tanh', "
                     f"'relu', 'leaky_relu', got {nonlinearity!r}")


def uniform_array(shape, bound, dtype=np.float32):
    """A new array of ``shape`` drawn from U(-bound, bound) on the current backend."""
    values = generator().uniform(-bound, bound, size=shape).astype(dtype)
    return backend.asarray(values)


def kaiming_uniform_array(shape, a=math.sqrt(5), dtype=np.float32):
    """A new Kaiming-uniform array: bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)).

    Not torch's ``kaiming_uniform_``: this takes a shape and returns an array,
    and its default ``a = sqrt(5)`` (the bound ``1/sqrt(fan_in)`` of conv layers)
    is not torch's ``a = 0`` (the bound ``sqrt(6 / fan_in)``)."""
    fan_in, _ = fan_in_and_fan_out(shape)
    gain = math.sqrt(2.0 / (1 + a * a))
    return uniform_array(shape, gain * math.sqrt(3.0 / fan_in), dtype)


def _fill(tensor, values):
    """Write ``values`` (a NumPy array) into ``tensor.data`` in place, on its backend."""
    xp = backend.get_array_module(tensor.data)
    tensor.data[...] = xp.asarray(values.astype(tensor.data.dtype, copy=False))
    return tensor


def _check_tensor(tensor, name):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: tensor must be a Tensor (a Parameter), got {type(tensor).__name__}")


def uniform_(tensor, a=0.0, b=1.0):
    """Fill ``tensor`` in place from U(a, b) and return it, as ``torch.nn.init.uniform_``."""
    _check_tensor(tensor, "uniform_")
    return _fill(tensor, generator().uniform(a, b, size=tensor.shape))


def zeros_(tensor):
    """Fill ``tensor`` with zeros in place and return it, as ``torch.nn.init.zeros_``."""
    _check_tensor(tensor, "zeros_")
    tensor.data[...] = 0
    return tensor


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """Fill ``tensor`` in place from U(-bound, bound), bound = gain * sqrt(3 / fan), and
    return it, as ``torch.nn.init.kaiming_uniform_``: ``fan`` is ``fan_in`` or
    ``fan_out`` (``mode``), ``gain = calculate_gain(nonlinearity, a)``. With the
    defaults (``a = 0``, leaky ReLU) the bound is ``sqrt(6 / fan_in)``."""
    _check_tensor(tensor, "kaiming_uniform_")
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_uniform_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    if 0 in tensor.shape:
        return tensor                    # torch warns and leaves a zero-element tensor as it is
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return _fill(tensor, generator().uniform(-bound, bound, size=tensor.shape))


def default_conv_bound(fan_in):
    """PyTorch's bias bound for conv and linear layers: 1 / sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
