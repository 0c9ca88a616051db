"""Argument checks shared by the whole library, written once.

Every public function checks its arguments at its top, before any work, with
these helpers; a bad argument is a ``TypeError`` (wrong kind) or ``ValueError``
(right kind, value outside the rule) whose message names the function, the
argument, the value and the rule, e.g.::

    dropout: training must be True or False, got 'yes'
    softmax: dim must be an int, got 1.5
    sigmoid: input must be floating point, got dtype uint8 (cast it first: x.float())

The rules, PyTorch's where PyTorch has one (``docs/guarantees.md`` lists them):

* **Tensors.** An op's input, weight and bias must be Tensors. A NumPy array
  in their place would silently get no gradient (a weight that never trains),
  so it is refused, as PyTorch refuses it; wrap arrays with ``msn.tensor``.
  Constants that never get a gradient (targets, class weights, running
  statistics) may also be arrays.
* **Floating point.** Every op that computes real numbers (activations,
  softmax, dropout, mean, exp/log/sqrt, convolutions, pooling, resizing,
  normalization, losses) needs a floating-point input. Integer and boolean
  tensors are refused rather than promoted, so no op quietly computes in
  float16 or float64 behind the user's back. Tensors hold only booleans,
  integers and floats: complex, string and object arrays are refused when
  the tensor is made.
* **Flags** are ``True`` or ``False`` (a NumPy bool too), never ``'yes'``,
  ``None`` or ``2``. **Integers** (dims, sizes, labels) are ints or NumPy
  integers, never bools, floats or strings. **Numbers** are real and, unless
  the rule says otherwise, finite.
* **Sizes.** An op that would allocate more bytes than this machine has
  raises ``TooLargeError`` naming the argument and the size, instead of
  trying (NumPy's raw ``MemoryError``, or minutes of swapping).

These checks look only at types, shapes and dtypes: none of them reads the
values of a tensor, so they cost the same for any size of input.
"""
import contextlib
import numbers
import os

import numpy as np

from .autograd import Tensor

__all__ = ["TooLargeError", "describe", "tensor", "float_tensor", "flag", "integer", "real", "fits", "array",
           "dim", "is_int", "tensor_sequence", "memory_bytes", "check_bytes", "check_weights", "human_bytes"]


class TooLargeError(MemoryError, ValueError):
    """An argument asks for more memory than the machine has; raised before allocating.

    It is a ``MemoryError`` (what the allocation would have raised) and a
    ``ValueError`` (an argument is out of range), so either ``except`` catches it.
    """


def describe(value, limit=60):
    """A short description of ``value`` for messages: repr for small things,
    type, shape and dtype for arrays and Tensors."""
    if isinstance(value, Tensor):
        return f"a Tensor of shape {value.shape} and dtype {value.dtype}"
    if type(value).__module__.startswith("torch"):          # not an array of ours, whatever it looks like
        return f"a torch.Tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if hasattr(value, "shape") and hasattr(value, "dtype") and getattr(value, "ndim", 0) > 0:
        kind = "CuPy" if type(value).__module__.startswith("cupy") else "NumPy"
        return f"a {kind} array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_int(value):
    """An int or a NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def repeated(values):
    """The values that occur more than once in ``values`` (a list), sorted: what a "given twice"
    message names."""
    return sorted({v for v in values if values.count(v) > 1})


def sample_index(index, length, owner):
    """``index`` into a dataset of ``length`` samples as a non-negative int (negative ones count
    from the end, as a list's); a ``TypeError`` or ``IndexError`` naming ``owner`` otherwise."""
    if not is_int(index):
        raise TypeError(f"{owner}: index must be an integer, got {index!r}")
    if not -length <= index < length:
        raise IndexError(f"{owner}: index {index} is out of range for a dataset of {length} samples")
    return int(index) % length


def tensor(x, name, op):
    """``x`` must be a Tensor: the argument an op differentiates (input, weight, bias)."""
    if not isinstance(x, Tensor):
        if type(x).__module__.startswith("torch"):
            hint = " (convert it: msn.tensor(t.detach().numpy()))"
        elif hasattr(x, "shape") or isinstance(x, (list, tuple)):
            hint = " (wrap an array with msn.tensor: an array would get no gradient)"
        else:
            hint = ""
        raise TypeError(f"{op}: {name} must be a Tensor{hint}, got {describe(x)}")
    return x


def float_tensor(x, name, op):
    """``x`` must be a floating-point Tensor."""
    tensor(x, name, op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {x.dtype} "
                        f"(cast it first: {name}.float())")
    return x


def flag(value, name, op):
    """``value`` must be True or False (or a NumPy bool); returns a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {describe(value)}")
    return bool(value)


def integer(value, name, op, minimum=None, allow_none=False):
    """``value`` must be an int (or NumPy integer; not a bool, float or string), ``>= minimum``."""
    if value is None and allow_none:
        return None
    if not is_int(value):
        kind = "an int or None" if allow_none else "an int"
        raise TypeError(f"{op}: {name} must be {kind}, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def positive_int(value, name, op):
    """``value`` must be an int >= 1 (or NumPy integer: ``masks.max() + 1`` is one); the same
    words either way, a TypeError for the wrong kind (2.5, "3"), a ValueError for 0 or less."""
    if not is_int(value):
        raise TypeError(f"{op}: {name} must be a positive integer, got {describe(value)}")
    if value < 1:
        raise ValueError(f"{op}: {name} must be a positive integer, got {value!r}")
    return int(value)


def real(value, name, op, minimum=None, maximum=None, finite=True):
    """``value`` must be a real number (not a bool or string), finite unless ``finite=False``,
    within ``[minimum, maximum]``; returns a Python float."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a number, got {describe(value)}")
    value = float(value)
    if value != value or (finite and value in (float("inf"), float("-inf"))):
        raise ValueError(f"{op}: {name} must be a finite number, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        rule = " and ".join(part for part in (f">= {minimum}" if minimum is not None else "",
                                              f"<= {maximum}" if maximum is not None else "") if part)
        raise ValueError(f"{op}: {name} must be {rule}, got {value!r}")
    return value


def array(x, name, op=None):
    """The array an argument holds: a minisegnet Tensor's, a NumPy or CuPy array as it is,
    anything else that NumPy can read (a nested list, a PyTorch CPU tensor) through
    ``np.asarray``; otherwise a TypeError naming ``op`` and ``name``. For label maps, ids,
    masks and matrices: arguments that carry no gradient."""
    from . import backend

    if isinstance(x, Tensor):
        return x.data
    if backend.is_array(x):
        return x
    where = f"{op}: " if op else ""
    if x is None or isinstance(x, (str, bytes, numbers.Number)):
        raise TypeError(f"{where}{name} must be an array or a Tensor, got {describe(x)}")
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{where}{name} must be an array or a Tensor, got {type(x).__name__} ({error})") from None


def weight_dtype(dtype, op):
    """A layer's ``dtype`` keyword: None (float32, the library's default) or a NumPy
    floating-point dtype (a weight must be able to learn); returns the NumPy dtype."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        kind = np.dtype(dtype).kind
    except TypeError:                       # not a NumPy dtype at all (torch.float64, "float")
        kind = None
    if kind != "f":
        raise TypeError(f"{op}: dtype must be a NumPy floating-point dtype such as np.float32 (a weight must "
                        f"be able to learn), got {dtype!r}")
    return np.dtype(dtype)


def fits(value, dtype, name, op):
    """The number ``value`` must be representable in the ``dtype`` it will be computed in, or it is
    an OverflowError, as PyTorch's "value cannot be converted to type ... without overflow": in a
    floating-point dtype, a finite number that would become ``inf`` (1e300 in float32); in an
    integer dtype, NaN, an infinity, or a number outside the dtype's range (a float within it is
    truncated toward zero there, 1.5 -> 1, as in PyTorch; -0.5 is outside uint8's, as there) (NumPy would wrap it
    around or make it the smallest integer). Bool and other dtypes pass. Returns ``value``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and abs(value) != float("inf") and abs(value) > float(np.finfo(dtype).max):
        raise OverflowError(f"{op}: {name}={value!r} cannot be converted to {dtype}, the dtype it is "
                            f"computed in, without overflow (largest {float(np.finfo(dtype).max):.4g})")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (isinstance(value, numbers.Integral) or abs(value) != float("inf") and value == value) \
                or not info.min <= value <= info.max:        # (-0.5 is out of uint8's range: PyTorch's rule)
            raise OverflowError(f"{op}: {name}={value!r} cannot be converted to {dtype}, the dtype it is "
                                f"computed in, without overflow ({info.min} to {info.max})")
    return value


def dim(value, ndim, name, op):
    """``value`` must be one int in ``[-ndim, ndim)`` (0 allowed for a 0-d tensor); returns it
    made non-negative. Out of range is an IndexError, as in PyTorch."""
    if not is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {describe(value)}")
    size = max(ndim, 1)
    if not -size <= value < size:
        raise IndexError(f"{op}: {name}={value!r} is out of range for a tensor with {ndim} dimensions "
                         f"(valid: {-size} to {size - 1})")
    return int(value) % size


def tensor_sequence(tensors, name, op):
    """``tensors`` must be a list or tuple of Tensors (not one Tensor, which PyTorch refuses too:
    iterating over it would split it along its first axis)."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: {name} must be a list or tuple of Tensors, got {describe(tensors)}")
    for i, t in enumerate(tensors):
        tensor(t, f"{name}[{i}]", op)
    return list(tensors)


@contextlib.contextmanager
def naming(op):
    """A ``TypeError`` or ``ValueError`` from the block (a ``shapes`` formula refusing a size,
    ``shapes.as_pair`` refusing a stride) names ``op`` first, as the library's other messages
    do: ``with checks.naming("conv2d"): ...``. Other errors pass unchanged."""
    try:
        yield
    except (TypeError, ValueError) as error:
        if type(error) not in (TypeError, ValueError) or str(error).startswith(f"{op}:"):
            raise
        raise type(error)(f"{op}: {error}") from None


def memory_bytes():
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):      # pragma: no cover - not on Linux/macOS
        return None


def human_bytes(n):
    """``1536 -> '1.5 KiB'``; from 1024 PiB on, whole PiB (integer division: a float
    could not hold the number of bytes a huge shape asks for)."""
    if n >= 1024 ** 6:                      # huge: whole PiB by integer division (a float would overflow)
        return f"{int(n) // 1024 ** 5:,} PiB"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"       # pragma: no cover - unreachable


def check_bytes(shape, itemsize, op, cause):
    """Refuse an array of ``shape`` and ``itemsize`` bytes per element that would not fit in
    memory, before allocating it; ``cause`` names the argument(s) that made it so large."""
    count = 1
    for n in shape:
        count *= int(n)
    nbytes = count * int(itemsize)
    limit = memory_bytes()
    if limit is not None and nbytes > limit:
        raise TooLargeError(f"{op}: {cause} makes an array of shape {tuple(int(n) for n in shape)} "
                            f"({human_bytes(nbytes)}), more than this machine's memory "
                            f"({human_bytes(limit)})")
    return nbytes


def check_weights(count, model, cause):
    """Refuse, before building any layer, a model whose ``count`` float32 weights alone
    would not fit in memory (building it would take minutes and then fail)."""
    nbytes = int(count) * 4
    limit = memory_bytes()
    if limit is not None and nbytes > limit:
        raise TooLargeError(f"{model}: {cause} gives the model about {int(count):,} weights "
                            f"({human_bytes(nbytes)} as float32), more than this machine's memory "
                            f"({human_bytes(limit)}); use fewer channels or levels")
    return nbytes
