"""The one place that knows NumPy from CuPy.

Every op asks ``xp = get_array_module(x)`` and then uses ``xp.`` only, so the
same source runs on the CPU (NumPy) and on an NVIDIA GPU (CuPy). The handful of
places where the two libraries differ are the named helpers at the bottom.

Choose the backend with ``set_backend("numpy" | "cupy")`` or, before import,
the environment variable ``MINISEGNET_BACKEND``.
"""
import os

import numpy as np

__all__ = [
    "set_backend",
    "get_backend",
    "get_array_module",
    "default_module",
    "to_numpy",
    "asarray",
    "scatter_add",
    "cupy_available",
]

_BACKENDS = ("numpy", "cupy")
_backend = "numpy"
_cupy = None  # the cupy module once it has been imported successfully


def _import_cupy():
    """Import CuPy and check a GPU is visible; raise a clear error if not."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "backend 'cupy' was requested but CuPy is not importable "
            f"({exc}); install it with `pip install minisegnet[gpu]` on a machine "
            "with an NVIDIA GPU, or use set_backend('numpy')"
        ) from exc
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            f"backend 'cupy' was requested but no CUDA device is usable ({exc}); "
            "use set_backend('numpy')"
        ) from exc
    if n_devices < 1:  # pragma: no cover - depends on the machine
        raise RuntimeError("backend 'cupy' was requested but no CUDA device is present")
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
    parameters of models built afterwards) use the new backend.
    """
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    if name == "cupy":
        _import_cupy()
    _backend = name


def get_backend():
    """The name of the current backend, ``"numpy"`` or ``"cupy"``."""
    return _backend


def default_module():
    """The array module (``numpy`` or ``cupy``) new arrays are created with."""
    return _cupy if _backend == "cupy" else np


def _is_cupy_array(a):
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(*arrays):
    """Return ``numpy`` or ``cupy``, whichever holds ``arrays``.

    Python scalars and ``None`` are ignored. Mixing a NumPy and a CuPy array
    in one op is an error: silently copying between devices would hide a
    slow bug.
    """
    found_numpy = found_cupy = False
    for a in arrays:
        a = getattr(a, "data", a) if hasattr(a, "requires_grad") else a
        if isinstance(a, np.ndarray):
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
    """A NumPy copy (or view) of a NumPy or CuPy array."""
    if _is_cupy_array(a):
        return _cupy.asnumpy(a)
    return np.asarray(a)


def asarray(data, dtype=None, backend=None):
    """``data`` as an array of the given backend (default: the current one)."""
    name = backend or _backend
    if name == "cupy":
        return _import_cupy().asarray(data, dtype=dtype)
    return np.asarray(to_numpy(data) if _is_cupy_array(data) else data, dtype=dtype)


def scatter_add(target, indices, values):
    """``target[indices] += values`` where repeated indices accumulate.

    Plain ``target[indices] += values`` keeps only one write per repeated
    index; NumPy spells the accumulating form ``np.add.at`` and CuPy
    ``cupyx.scatter_add``. Works in place and returns ``target``.
    """
    if _is_cupy_array(target):
        import cupyx

        cupyx.scatter_add(target, indices, values)
    else:
        np.add.at(target, indices, values)
    return target


_env = os.environ.get("MINISEGNET_BACKEND")
if _env:
    set_backend(_env.strip().lower())
