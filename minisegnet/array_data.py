"""From Python data to a tensor's array: the checks and messages ``tensor()`` applies before
it converts (``autograd._as_array`` does the conversion, with PyTorch's dtype rules)."""
import numpy as np

from . import backend

__all__ = ["check_dtype"]


def _has_big_int(data):
    """Whether ``data`` (an int or NumPy integer, or nested lists and tuples) holds an int beyond
    int64's range (a NumPy uint64 past it too: int64 would wrap it)."""
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        return not -2**63 <= int(data) < 2**63
    if isinstance(data, (list, tuple)):
        return any(_has_big_int(item) for item in data)
    return False


def _beyond_int64(data, probe):
    """Whether Python ``data`` of only ints (no floats) holds one beyond int64, which NumPy's
    ``asarray`` (``probe``) made uint64 or float64: a float list is a float tensor, as in PyTorch."""
    if probe.dtype.kind == "f" and (probe.size == 0 or not float(np.abs(probe).max()) >= 2**63):
        return False
    return _has_big_int(data) and not _has_float(data)


def _probe(data):
    """NumPy's reading of Python ``data`` (numbers in nested lists), to learn its kind: a ragged
    list is a clear error; floats beside an int past uint64 are floats (NumPy makes an object
    array of them), as PyTorch's ``tensor([1.5, 2**64])``."""
    try:
        probe = np.asarray(data)
    except ValueError:      # NumPy's "inhomogeneous shape" for ragged nested lists
        raise ValueError(f"tensor: cannot make a tensor from a ragged nested list: every row at one depth "
                         f"needs the same length, got {_preview(data)}") from None
    if probe.dtype == object and _has_float(data) and _has_big_int(data):
        probe = np.asarray(data, dtype=np.float64)
    return probe


def _has_float(data):
    if isinstance(data, (list, tuple)):
        return any(_has_float(item) for item in data)
    return isinstance(data, (float, np.floating))


def _preview(data, limit=60):
    """``repr(data)`` cut to ``limit`` characters, for error messages."""
    text = repr(data)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_dtype(dtype, op):
    """A tensor holds booleans, integers or floats; anything else (complex, strings,
    Python objects) is a TypeError naming ``op``. Returns the NumPy dtype. None is refused
    (NumPy reads it as float64; PyTorch has no such default)."""
    if dtype is None:
        raise TypeError(f"{op}: dtype must be a NumPy dtype such as np.float32, got None")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: dtype must be a NumPy dtype such as np.float32, got {_preview(dtype)}") from None
    if dtype.kind not in "biuf":
        raise TypeError(f"{op}: dtype {dtype} is not supported: a tensor holds booleans, integers or "
                        "floats (not complex numbers, strings or Python objects)")
    return dtype


def _leaves_on(device, data):
    """A nested list with every leaf a ``device`` array (numbers uploaded): CuPy assembles a
    list on the device only when all its leaves are there; a list mixing GPU arrays and
    numbers it hands to NumPy, which cannot read the GPU arrays."""
    if isinstance(data, (list, tuple)):
        return [_leaves_on(device, v) for v in data]
    return data if type(data).__module__.startswith("cupy") else device.asarray(data)


def _device_module(data):
    """The CuPy module if any item of the nested lists ``data`` is a CuPy array, else None."""
    if isinstance(data, list):
        for item in data:
            found = _device_module(item)
            if found is not None:
                return found
        return None
    return backend.get_array_module(data) if type(data).__module__.startswith("cupy") else None
