"""Weight initialisation, drawing from the library's seeded generator.

PyTorch's default for Conv2d/ConvTranspose2d/Linear is Kaiming-uniform with
``a = sqrt(5)``, which works out to ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
for the weight, and the same bound for the bias.
"""
import math

import numpy as np

from .. import backend
from ..random import generator

__all__ = ["uniform", "kaiming_uniform", "default_conv_bound", "fan_in_and_fan_out"]


def fan_in_and_fan_out(shape):
    """For a weight of shape (out, in, kh, kw): fan_in = in*kh*kw, fan_out = out*kh*kw."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform(shape, bound, dtype=np.float32):
    """An array of ``shape`` drawn from U(-bound, bound) on the current backend."""
    values = generator().uniform(-bound, bound, size=shape).astype(dtype)
    return backend.asarray(values)


def kaiming_uniform(shape, a=math.sqrt(5), dtype=np.float32):
    """Kaiming-uniform: bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2))."""
    fan_in, _ = fan_in_and_fan_out(shape)
    gain = math.sqrt(2.0 / (1 + a * a))
    return uniform(shape, gain * math.sqrt(3.0 / fan_in), dtype)


def default_conv_bound(fan_in):
    """PyTorch's bias bound for conv and linear layers: 1 / sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
