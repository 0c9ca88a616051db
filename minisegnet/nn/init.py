"""Weight initialisation, drawing from the library's seeded generator.

Two kinds of functions:

* ``torch.nn.init``'s, with its names, argument order and defaults: they fill
  a Tensor (a Parameter) in place and return it, so a PyTorch script's
  ``model.apply(init_fn)`` runs unchanged when it passes the Parameters (not
  their ``.data``: see below). No ``generator`` argument: they
  draw from ``minisegnet.random.generator()``, which ``manual_seed`` seeds.

  - ``constant_(tensor, val)``, ``ones_(tensor)``, ``zeros_(tensor)``: every element
    ``val``, 1, 0;
  - ``uniform_(tensor, a=0.0, b=1.0)``: U(a, b);
  - ``normal_(tensor, mean=0.0, std=1.0)``: N(mean, std^2);
  - ``trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0)``: N(mean, std^2)
    restricted to [a, b];
  - ``xavier_uniform_(tensor, gain=1.0)``: U(-bound, bound),
    bound = gain * sqrt(6 / (fan_in + fan_out));
  - ``xavier_normal_(tensor, gain=1.0)``: N(0, std^2),
    std = gain * sqrt(2 / (fan_in + fan_out));
  - ``kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu")``:
    U(-bound, bound), bound = gain * sqrt(3 / fan);
  - ``kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu")``:
    N(0, std^2), std = gain / sqrt(fan).

  ``fan_in`` and ``fan_out`` come from ``fan_in_and_fan_out(tensor.shape)``,
  ``gain`` from ``calculate_gain``. Bad arguments (a negative std, ``a > b``,
  an integer tensor for a random fill) are errors naming the function and the
  argument (torch refuses these too, with terser messages); where we go
  further than torch: a fractional ``val`` for an integer tensor is refused
  (torch truncates it), and ``trunc_normal_`` refuses ``std <= 0``.
  The tensor must be a Tensor: a torch script's ``init_fn(m.weight.data)``
  passes a torch Tensor there, but ``.data`` is a backend array here, so pass
  ``m.weight`` itself (the error says so).
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

The random fills draw their numbers with NumPy on the host (in float64, then
cast to the tensor's dtype) and write them into the tensor's array on its own
backend, so a seed gives the same weights on NumPy and on CuPy.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..saved_values import mark_written
from ..random import generator

__all__ = ["constant_", "ones_", "zeros_", "uniform_", "normal_", "trunc_normal_",
           "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
           "calculate_gain", "uniform_array", "kaiming_uniform_array", "default_conv_bound",
           "fan_in_and_fan_out"]

# torch's names for layers with no nonlinearity: gain 1.
_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d")
_NONLINEARITIES = _LINEAR_FNS + ("sigmoid", "tanh", "relu", "leaky_relu", "selu")


def fan_in_and_fan_out(shape):
    """For a weight of shape (out, in, kh, kw): fan_in = in*kh*kw, fan_out = out*kh*kw
    (torch's ``_calculate_fan_in_and_fan_out``; 2-D shapes have no receptive field)."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out can not be computed for a shape with fewer than 2 dimensions, "
                         f"got {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The gain ``torch.nn.init.calculate_gain`` gives, which keeps the activations' variance steady:

    * 1 for ``"linear"``, ``"conv1d"``, ``"conv2d"``, ``"conv3d"``, ``"conv_transpose1d"``,
      ``"conv_transpose2d"``, ``"conv_transpose3d"`` and ``"sigmoid"``;
    * 5/3 for ``"tanh"``; sqrt(2) for ``"relu"``; 3/4 for ``"selu"``;
    * sqrt(2 / (1 + param^2)) for ``"leaky_relu"``, ``param`` its negative slope
      (default 0.01).

    Other names are a ValueError."""
    return _gain(nonlinearity, param, "calculate_gain", "param")


def _gain(nonlinearity, param, name, param_name):
    """``calculate_gain``'s work, its errors naming the function ``name`` and its argument."""
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"{name}: {param_name} (the negative slope of leaky_relu) must be a number, "
                             f"got {slope!r}")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4                   # found empirically by torch's authors, not derived
    raise ValueError(f"{name}: nonlinearity must be one of "
                     f"{', '.join(repr(n) for n in _NONLINEARITIES)}, got {nonlinearity!r}")


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


# ---- checks shared by the in-place functions ---------------------------------------------------

def _fill(tensor, values):
    """Write ``values`` (a NumPy array) into ``tensor.data`` in place, on its backend."""
    xp = backend.get_array_module(tensor.data)
    tensor.data[...] = xp.asarray(values.astype(tensor.data.dtype, copy=False))
    mark_written(tensor)
    return tensor


def _check_tensor(tensor, name, floating=False):
    """``tensor`` must be a Tensor; one that a random fill draws into must be floating point."""
    if not isinstance(tensor, Tensor):
        hint = (" (a torch script's `weight.data` is a Tensor there but a backend array here: "
                "pass the Parameter `weight` itself)") if backend.is_array(tensor) else ""
        raise TypeError(f"{name}: tensor must be a Tensor (a Parameter), got {type(tensor).__name__}{hint}")
    if floating and tensor.dtype.kind != "f":
        raise TypeError(f"{name}: tensor must have a floating-point dtype to hold random values, "
                        f"got dtype {tensor.dtype}")


def _check_number(value, name, arg, minimum=None):
    """``value`` must be a finite real number (not a bool), at least ``minimum`` if given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise TypeError(f"{name}: {arg} must be a finite real number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: {arg} must be >= {minimum}, got {value!r}")
    return float(value)


def _check_range(a, b, name):
    a, b = _check_number(a, name, "a"), _check_number(b, name, "b")
    if a > b:
        raise ValueError(f"{name}: the range [a, b] must have a <= b, got a={a!r} > b={b!r}")
    return a, b


def _check_mode(mode, name):
    """``mode`` in any case, as torch (which lowercases it): returns "fan_in" or "fan_out"."""
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return mode.lower()


# ---- constants -----------------------------------------------------------------------------------

def constant_(tensor, val):
    """Fill ``tensor`` with ``val`` in place and return it, as ``torch.nn.init.constant_``.

    Where we go further: an integer tensor takes only a whole ``val`` (torch
    would silently truncate 0.7 to 0), and a bool ``val`` is refused (torch
    fills 1 for True)."""
    _check_tensor(tensor, "constant_")
    if isinstance(val, (bool, np.bool_)) or not isinstance(val, (int, float, np.integer, np.floating)):
        raise TypeError(f"constant_: val must be a real number, got {val!r}")
    if tensor.dtype.kind in "iub" and not float(val).is_integer():
        raise ValueError(f"constant_: val must be a whole number for a tensor of dtype {tensor.dtype} "
                         f"(it would be truncated), got {val!r}")
    tensor.data[...] = val
    mark_written(tensor)
    return tensor


def ones_(tensor):
    """Fill ``tensor`` with ones in place and return it, as ``torch.nn.init.ones_``."""
    _check_tensor(tensor, "ones_")
    tensor.data[...] = 1
    mark_written(tensor)
    return tensor


def zeros_(tensor):
    """Fill ``tensor`` with zeros in place and return it, as ``torch.nn.init.zeros_``."""
    _check_tensor(tensor, "zeros_")
    tensor.data[...] = 0
    mark_written(tensor)
    return tensor


# ---- plain distributions -------------------------------------------------------------------------

def uniform_(tensor, a=0.0, b=1.0):
    """Fill ``tensor`` in place from U(a, b) and return it, as ``torch.nn.init.uniform_``."""
    _check_tensor(tensor, "uniform_", floating=True)
    a, b = _check_range(a, b, "uniform_")
    return _fill(tensor, generator().uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill ``tensor`` in place from the normal distribution N(mean, std^2) and return it,
    as ``torch.nn.init.normal_`` (``std = 0`` fills it with ``mean``)."""
    _check_tensor(tensor, "normal_", floating=True)
    mean = _check_number(mean, "normal_", "mean")
    std = _check_number(std, "normal_", "std", minimum=0)
    return _fill(tensor, generator().normal(mean, std, size=tensor.shape))


def _normal_cdf(z):
    """P(Z <= z) for a standard normal Z."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fill ``tensor`` in place from N(mean, std^2) truncated to [a, b] and return it, as
    ``torch.nn.init.trunc_normal_`` (``a`` and ``b`` are values, not multiples of ``std``).

    Drawn by rejection, as torch draws it, so the values follow the truncated
    density exactly (no clamping, no pile-up at ``a`` or ``b``):

    * when [a, b] holds more than 30% of N(mean, std^2)'s mass, each value is
      drawn from N(mean, std^2) and drawn again while it falls outside [a, b];
    * otherwise (a narrow range, or one far in the tail) each ``x`` is drawn
      from U(a, b) and kept with probability ``pdf(x) / pdf(peak)``, ``peak``
      the point of [a, b] nearest ``mean``: again until every value is kept.

    Where we go further: ``std`` must be > 0 and ``a <= b`` (torch accepts a
    negative ``std`` and samples as if it were ``|std|``); and in the second case the range
    is first narrowed to where ``pdf(x) / pdf(peak) > e^-69`` (about 1e-30),
    a cut no sample would ever notice, so that a bound such as ``b = 1e6``
    far in the tail cannot make the loop run for ever. Torch's warning for a
    ``mean`` more than 2 std outside [a, b] is not needed: the draw is exact."""
    _check_tensor(tensor, "trunc_normal_", floating=True)
    mean = _check_number(mean, "trunc_normal_", "mean")
    std = _check_number(std, "trunc_normal_", "std")
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be > 0, got {std!r}")
    a, b = _check_range(a, b, "trunc_normal_")
    rng, dtype = generator(), tensor.dtype
    lo, hi = np.asarray(a).astype(dtype), np.asarray(b).astype(dtype)   # the bounds as the tensor stores them
    values = np.empty(tensor.size, dtype=dtype)
    pending = np.arange(tensor.size)                                    # indices still to fill
    if _normal_cdf((b - mean) / std) - _normal_cdf((a - mean) / std) > 0.3:
        while pending.size:
            draws = rng.normal(mean, std, size=pending.size).astype(dtype)
            inside = (draws >= lo) & (draws <= hi)
            values[pending[inside]] = draws[inside]
            pending = pending[~inside]
    else:
        peak = (min(max(mean, a), b) - mean) / std                      # in units of std from mean
        reach = math.sqrt(peak ** 2 + 2 * 69)                           # |z| where pdf/pdf(peak) = e^-69
        a, b = max(a, mean - reach * std), min(b, mean + reach * std)
        while pending.size:
            x = rng.uniform(a, b, size=pending.size)
            keep = rng.uniform(size=pending.size) < np.exp(-0.5 * (((x - mean) / std) ** 2 - peak ** 2))
            values[pending[keep]] = x[keep].astype(dtype)
            pending = pending[~keep]
    return _fill(tensor, values.reshape(tensor.shape))


# ---- scaled by the layer's fans ------------------------------------------------------------------

def xavier_uniform_(tensor, gain=1.0):
    """Fill ``tensor`` in place from U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out)),
    and return it, as ``torch.nn.init.xavier_uniform_`` (Glorot and Bengio, 2010): the
    variance ``bound^2 / 3 = gain^2 * 2 / (fan_in + fan_out)``. ``gain`` must be >= 0."""
    _check_tensor(tensor, "xavier_uniform_", floating=True)
    gain = _check_number(gain, "xavier_uniform_", "gain", minimum=0)
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    if tensor.size == 0:
        return tensor                    # nothing to fill (torch divides by zero for a (0, 0) tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill(tensor, generator().uniform(-bound, bound, size=tensor.shape))


def xavier_normal_(tensor, gain=1.0):
    """Fill ``tensor`` in place from N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)), and
    return it, as ``torch.nn.init.xavier_normal_`` (Glorot and Bengio, 2010). ``gain``
    must be >= 0."""
    _check_tensor(tensor, "xavier_normal_", floating=True)
    gain = _check_number(gain, "xavier_normal_", "gain", minimum=0)
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    if tensor.size == 0:
        return tensor
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, generator().normal(0.0, std, size=tensor.shape))


def _kaiming_std(tensor, a, mode, nonlinearity, name):
    """He et al.'s standard deviation ``gain / sqrt(fan)`` for ``tensor``, after the checks both
    Kaiming fills share; None for a tensor with no elements (left as it is, as torch does)."""
    _check_tensor(tensor, name, floating=True)
    mode = _check_mode(mode, name)
    gain = _gain(nonlinearity, a, name, "a")
    if 0 in tensor.shape:
        return None
    fan_in, fan_out = fan_in_and_fan_out(tensor.shape)
    return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """Fill ``tensor`` in place from U(-bound, bound), bound = gain * sqrt(3 / fan), and
    return it, as ``torch.nn.init.kaiming_uniform_``: ``fan`` is ``fan_in`` or
    ``fan_out`` (``mode``), ``gain = calculate_gain(nonlinearity, a)``. With the
    defaults (``a = 0``, leaky ReLU) the bound is ``sqrt(6 / fan_in)``. (The bound is
    ``sqrt(3)`` times ``kaiming_normal_``'s std: U(-b, b) has standard deviation b / sqrt(3).)"""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    if std is None:
        return tensor                    # torch warns and leaves a zero-element tensor as it is
    bound = math.sqrt(3.0) * std
    return _fill(tensor, generator().uniform(-bound, bound, size=tensor.shape))


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """Fill ``tensor`` in place from N(0, std^2), std = gain / sqrt(fan), and return it, as
    ``torch.nn.init.kaiming_normal_`` (He et al., 2015): ``fan`` is ``fan_in`` or
    ``fan_out`` (``mode``), ``gain = calculate_gain(nonlinearity, a)``. With the
    defaults (``a = 0``, leaky ReLU) the std is ``sqrt(2 / fan_in)``."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    if std is None:
        return tensor
    return _fill(tensor, generator().normal(0.0, std, size=tensor.shape))


def default_conv_bound(fan_in):
    """PyTorch's bias bound for conv and linear layers: 1 / sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
