"""``cupyx`` for the CPU stand-in: only ``scatter_add``, deprecated as in CuPy 14.

CuPy 14 implements ``cupyx.scatter_add(a, slices, value)`` through
``ndarray.scatter_add``, which warns "`ndarray.scatter_add` is deprecated.
Please use `cupy.add.at` instead." once per call; ``cupy.add.at`` is the
portable spelling (NumPy has ``numpy.add.at``).
"""
import warnings

import cupy


def scatter_add(a, slices, value):
    warnings.warn("`ndarray.scatter_add` is deprecated. Please use `cupy.add.at` instead.",
                  DeprecationWarning, stacklevel=2)
    cupy.add.at(a, slices, value)


def __getattr__(name):
    raise AttributeError(f"cupyx.{name} is not modelled by the CPU stand-in (tests/cupy_standin)")
