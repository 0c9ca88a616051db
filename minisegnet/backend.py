"""The one place that knows NumPy from CuPy.

Every op asks ``xp = get_array_module(x)`` and then uses ``xp.`` only, so the
same source runs on the CPU (NumPy) and on an NVIDIA GPU (CuPy). The handful of
places where the two libraries differ are the named helpers at the bottom.

Choose the backend with ``set_backend("numpy" | "cupy")`` or, before import,
the environment variable ``MINISEGNET_BACKEND``. Importing minisegnet never
fails for lack of CuPy: asking for it where it is missing (or sees no GPU)
raises one ``RuntimeError`` line saying so and what to do, at the call that
asked (``set_backend("cupy")``), or, for the environment variable, at the
first array the library creates. A misspelt ``MINISEGNET_BACKEND`` is a
``ValueError`` at import; the ``minisegnet`` command reports it in one line
and exits with status 2, as its other user errors.
"""
import os
from collections import OrderedDict

import numpy as np

__all__ = [
    "set_backend",
    "get_backend",
    "restore_backend",
    "get_array_module",
    "default_module",
    "to_numpy",
    "asarray",
    "scatter_add",
    "take_valid",
    "bincount",
    "constant",
    "cupy_available",
]

_BACKENDS = ("numpy", "cupy")
_backend = "numpy"
_cupy = None  # the cupy module once it has been imported successfully
_INSTALL = ("install the CuPy wheel for your CUDA version: pip install 'minisegnet[cuda12]' "
            "(or 'minisegnet[cuda13]')")


def _import_cupy(asked_by="set_backend('cupy')"):
    """Import CuPy and check a GPU is visible; else one clear RuntimeError naming ``asked_by``."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(f"{asked_by}: CuPy is not installed ({exc}); on a machine with an NVIDIA GPU "
                           f"{_INSTALL}, or use the 'numpy' backend") from None
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        n_devices, reason = 0, f"{type(exc).__name__}: {exc}"
    else:
        reason = "0 devices"
    if n_devices < 1:
        raise RuntimeError(f"{asked_by}: CuPy {cupy.__version__} is installed but sees no CUDA GPU ({reason}); "
                           "check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, or use the 'numpy' "
                           "backend") from None
    _cupy = cupy
    return cupy


def cupy_available():
    """True when CuPy imports and sees at least one GPU (never raises)."""
    try:
        _import_cupy()
    except RuntimeError:
        return False
    return True


def set_backend(name):
    """Select where new tensors live: ``"numpy"`` (CPU) or ``"cupy"`` (GPU).

    Existing tensors keep their arrays; only tensors created afterwards (and
    parameters of models built afterwards) use the new backend. ``"cupy"``
    without CuPy or without a visible GPU raises a ``RuntimeError`` saying
    which, and the backend stays as it was.
    """
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    if name == "cupy":
        _import_cupy(f"set_backend({name!r})")
    _backend = name


def get_backend():
    """The name of the current backend, ``"numpy"`` or ``"cupy"``."""
    return _backend


def restore_backend(name):
    """Put back ``name``, the backend ``get_backend()`` gave before a block switched it, as it
    was: unchecked, so a ``MINISEGNET_BACKEND=cupy`` that a block overrode on a machine without
    CuPy is restored without importing CuPy (and says so at the first array, as before)."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"restore_backend: name must be one of {_BACKENDS}, got {name!r}")
    _backend = name


def default_module():
    """The array module (``numpy`` or ``cupy``) new arrays are created with."""
    if _backend == "cupy":
        return _import_cupy("MINISEGNET_BACKEND=cupy")
    return np


def is_array(a):
    """Whether ``a`` is a NumPy or a CuPy array (or a NumPy scalar): what the ops compute on."""
    return isinstance(a, (np.ndarray, np.generic)) or _is_cupy_array(a)


def _is_cupy_array(a):
    if _cupy is None:
        # a CuPy array made before minisegnet imported CuPy itself (say, on the numpy backend)
        if not type(a).__module__.startswith("cupy"):
            return False
        _import_cupy("a CuPy array")
    return isinstance(a, _cupy.ndarray)


def get_array_module(*arrays):
    """Return ``numpy`` or ``cupy``, whichever holds ``arrays``.

    Python scalars and ``None`` are ignored; NumPy scalars (what NumPy's
    reductions return, e.g. ``x.sum()``) count as NumPy. Mixing a NumPy and a
    CuPy array in one op is an error: silently copying between devices would
    hide a slow bug.
    """
    found_numpy = found_cupy = False
    for a in arrays:
        a = getattr(a, "data", a) if hasattr(a, "requires_grad") else a
        if isinstance(a, (np.ndarray, np.generic)):
            found_numpy = True
        elif _is_cupy_array(a):
            found_cupy = True
    if found_numpy and found_cupy:
        raise TypeError(
            "an op received both NumPy (CPU) and CuPy (GPU) arrays; move them to "
            "one backend first (minisegnet.backend.asarray or Tensor.to_backend)"
        )
    if found_cupy:
        return _cupy
    if found_numpy:
        return np
    return default_module()


def to_numpy(a):
    """A NumPy copy (or view) of a NumPy or CuPy array, a Tensor's values, or a
    (nested) list: what code that talks to the host (plots, files, JSON) converts with."""
    if hasattr(a, "requires_grad") and hasattr(a, "data"):     # a Tensor
        a = a.data
    if _is_cupy_array(a):
        return _cupy.asnumpy(a)
    return np.asarray(a)


def asarray(data, dtype=None, backend=None):
    """``data`` as an array of the given backend (default: the current one).

    Moving between NumPy and CuPy copies (host to device or back); an array
    already on that backend is returned as it is (cast if ``dtype`` says so).
    """
    name = backend or _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    if name == "cupy":
        return _import_cupy(f"asarray(..., backend={name!r})" if backend else "MINISEGNET_BACKEND=cupy"
                            ).asarray(data, dtype=dtype)
    return np.asarray(to_numpy(data) if _is_cupy_array(data) else data, dtype=dtype)


def scatter_add(target, indices, values):
    """``target[indices] += values`` where repeated indices accumulate, in place; returns ``target``.

    Plain ``target[indices] += values`` keeps only one write per repeated
    index. The accumulating form is the ufunc method ``add.at``, spelled the
    same in NumPy and CuPy (``cupyx.scatter_add`` is deprecated since CuPy 14).
    """
    get_array_module(target, values).add.at(target, indices, values)
    return target


def take_valid(a, indices, axis):
    """``take(a, indices, axis)`` for indices already known to be valid (in ``[0, a.shape[axis])``).

    NumPy's ``take`` checks every index by default (``mode="raise"``); with
    ``mode="clip"`` it clamps them instead: the same result for valid indices,
    and faster (NumPy's documentation of ``take`` recommends the other modes
    for performance). Only for valid indices, then. CuPy's ``take`` has no ``mode``.
    """
    xp = get_array_module(a)
    if xp is np:
        return np.take(a, indices, axis=axis, mode="clip")
    return xp.take(a, indices, axis=axis)


def bincount(x, length, weights=None):
    """How often each value ``0 .. length-1`` occurs in the 1-D int array ``x``
    (every value must lie in that range), as an int64 array of ``length``; with
    ``weights`` (as long as ``x``), the sum of the weights of each value, in float64.

    NumPy's ``bincount``. On CuPy, a scatter-add instead: ``cupy.bincount``
    reads the input's maximum back to the host to size its output (a device
    synchronisation, and an error on an empty input before CuPy 14.2), which a
    length known in advance makes unnecessary.
    """
    xp = get_array_module(x)
    if xp is np:
        counts = np.bincount(x, weights=weights, minlength=length)
        return counts.astype(np.float64 if weights is not None else np.int64, copy=False)
    if weights is not None:
        sums = xp.zeros(length, dtype=xp.float64)
        xp.add.at(sums, x, weights.astype(xp.float64, copy=False))
        return sums
    counts = xp.zeros(length, dtype=xp.int64)
    xp.add.at(counts, x, xp.ones((), dtype=xp.int64))    # a device 1 (CuPy would upload a Python 1 each call)
    return counts


_CONSTANTS_KEPT = 256
_constants = OrderedDict()   # (module name, device, key) -> array or tuple of arrays


def constant(xp, key, build):
    """A constant table (indices, weights) on array module ``xp``, built on the host once.

    Some ops need small tables that depend only on sizes and settings (resize's
    gather tables, adaptive pooling's averaging matrices). ``build()`` makes
    them with NumPy, as an array or a tuple of arrays; the first call for a
    given ``(xp, key)`` moves them to ``xp`` (one upload on CuPy), and later
    calls return the very same arrays, so an op that runs in every training
    step moves no table between host and device. The result is shared: never
    write into it. The most recently used 256 entries are kept.
    """
    place = (xp.__name__, xp.cuda.Device().id if xp is not np else None)
    full_key = place + (key,)
    found = _constants.get(full_key)
    if found is None:
        built = build()
        found = tuple(xp.asarray(a) for a in built) if isinstance(built, tuple) else xp.asarray(built)
        _constants[full_key] = found
        if len(_constants) > _CONSTANTS_KEPT:
            _constants.popitem(last=False)
    else:
        _constants.move_to_end(full_key)
    return found


def _backend_from_environment():
    """``MINISEGNET_BACKEND``, checked for spelling. CuPy itself is imported only
    when the first array is made, so importing minisegnet never fails for lack of it."""
    value = os.environ.get("MINISEGNET_BACKEND", "").strip().lower()
    if value and value not in _BACKENDS:
        raise ValueError(f"MINISEGNET_BACKEND must be one of {_BACKENDS} (or unset), got "
                         f"{os.environ['MINISEGNET_BACKEND']!r}")
    return value or "numpy"


_backend = _backend_from_environment()
