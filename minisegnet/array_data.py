"""From Python data to a tensor's array: ``_as_array`` converts, with PyTorch's dtype rules,
after the checks and messages below."""
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
    if dtype.kind == "f" and dtype.itemsize > 8:
        raise TypeError(f"{op}: dtype {dtype} (NumPy's long double) is not supported: floats are float16, "
                        "float32 or float64, as PyTorch's (and CuPy's)")
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


def _as_array(data, dtype=None):
    """Turn ``data`` into an array of the current backend (``Tensor(data)`` does, and ``tensor()``).

    Python floats (and lists of them) become float32, the library default;
    Python ints become int64; arrays keep their dtype unless ``dtype`` says
    otherwise. This mirrors ``torch.tensor``. Lists may hold Tensors and
    arrays of either backend (e.g. losses): items already on the GPU are
    assembled there, as NumPy cannot read them.
    """
    from .autograd import Tensor        # (autograd imports this module: imported here, at the call)

    if isinstance(data, Tensor):
        data = data.data
    given = data                        # (for the messages)
    if dtype is not None:
        dtype = check_dtype(dtype, "tensor")
    from_list = isinstance(data, (list, tuple))
    if from_list:
        data = listed = _unwrap_nested(data)          # (``listed``: the Python values, for the checks)
        device = _device_module(data)
        if device is not None:
            data = device.asarray(_leaves_on(device, data))
    is_array = not from_list and (isinstance(data, (np.ndarray, np.generic))
                                  or type(data).__module__.startswith("cupy"))
    if is_array and dtype is None:
        check_dtype(data.dtype, "tensor")
    if dtype is not None and not is_array and not type(data).__module__.startswith("cupy"):
        # a requested cast of Python values converts as the same values in an array do (-1 to
        # 255 in uint8, as torch.tensor([-1], dtype=torch.uint8)), where NumPy refuses a Python
        # int out of the dtype's range
        data = _probe(data)
    if dtype is None and not is_array:
        if type(data).__module__.startswith("cupy"):
            probe = data                    # assembled on the GPU above
        else:
            probe = _probe(data)
        if probe.dtype.kind in "uf" and _beyond_int64(listed if from_list else data, probe):
            raise OverflowError(f"tensor: an int beyond int64's range ({-2**63} to {2**63 - 1}) in {_preview(data)}; "
                                f"PyTorch refuses it too (NumPy would make it uint64, which int64 wraps "
                                f"around, or float64)")
        typed = _typed_leaves_dtype(listed) if from_list else None
        if typed is not None:
            dtype = typed
        elif probe.dtype.kind == "f":
            dtype = np.float32
        elif probe.dtype.kind in "iu":
            dtype = np.int64
        elif probe.dtype.kind != "b":
            beyond = " (an int beyond int64's range?)" if probe.dtype == object and _has_big_int(data) else ""
            raise TypeError(f"tensor: cannot make a tensor from data of dtype {probe.dtype} "
                            f"({type(data).__name__}){beyond}")
        data = probe
    try:
        return backend.asarray(data, dtype=dtype)
    except (OverflowError, ValueError) as error:       # NumPy's own words name neither tensor nor dtype
        raise type(error)(f"tensor: cannot make a tensor of dtype {np.dtype(dtype)} from {_preview(given)} "
                          f"({error})") from None


def _typed_leaves_dtype(listed):
    """The dtype of a list holding NumPy scalars or arrays (Tensors' arrays), as ``torch.tensor``
    gives it: each such leaf keeps its dtype, a Python float counts as float32, an int as int64
    (``[np.float64(1.5), 2.0]`` is float64, ``[np.float16(1), 2.0]`` float32), all promoted by
    PyTorch's rule. None for a list of Python numbers only (then the float32 / int64 default)."""
    from .functional.promotion import _promote      # (functional imports autograd, which imports this module)

    dtypes, typed = [], False

    def walk(item):
        nonlocal typed
        if isinstance(item, (list, tuple)):
            for inner in item:
                walk(inner)
        elif hasattr(item, "dtype"):
            typed = True
            dtypes.append(np.dtype(item.dtype))
        elif isinstance(item, (bool, np.bool_)):
            dtypes.append(np.dtype(bool))
        elif isinstance(item, int):
            dtypes.append(np.dtype(np.int64))
        elif isinstance(item, float):
            dtypes.append(np.dtype(np.float32))

    walk(listed)
    if not typed:
        return None
    dtype = None
    for d in dtypes:
        dtype = _promote(dtype, d)
    return check_dtype(dtype, "tensor")


def _unwrap_nested(data):
    """Nested lists/tuples with every Tensor replaced by its array."""
    from .autograd import Tensor

    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, (list, tuple)):
        return [_unwrap_nested(item) for item in data]
    return data
