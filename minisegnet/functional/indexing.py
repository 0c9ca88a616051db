"""Indexing, ``x[index]``, as PyTorch's: its checks, and the op with its scatter-add backward.

An index is ints, slices of ints (a step of at least 1), ``None``, ``...``,
and integer or boolean arrays; anything else is refused by name. On CuPy an
integer position out of range would wrap around, so it is checked first
(NumPy checks it itself). ``Tensor.__getitem__`` (and ``x[index] = y``, which
indexes first) come here.
"""
import builtins

import numpy as np

from .. import backend, checks
from ..autograd import Function
from .basic import raw

__all__ = ["getitem"]


def _is_basic_index(index):
    """True if ``index`` only slices (no integer/boolean arrays): no element is read twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts)


class GetItem(Function):
    """y = x[index];  dx = zeros with g added back at the indexed places.

    Integer-array indexing may read one element several times; the adds must
    then accumulate, which is what ``backend.scatter_add`` does.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.shape, self.dtype = x.shape, x.dtype
        out = x[self.index]
        if isinstance(out, np.generic):
            # every axis indexed by an int: NumPy gives a scalar, a copy; with a trailing ``...``
            # a 0-d view, as CuPy and PyTorch give (so that w[0] -= 1 in no_grad() writes into w)
            out = x[(self.index if isinstance(self.index, tuple) else (self.index,)) + (Ellipsis,)]
        return out

    def backward(self, g):
        xp = backend.get_array_module(g)
        gx = xp.zeros(self.shape, dtype=self.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = g
        else:
            backend.scatter_add(gx, self.index, g)
        return gx


def _check_index_part(part, index):
    """One entry of an index: int, slice of ints, None, Ellipsis, or an integer/boolean array."""
    if part is None or part is Ellipsis or checks.is_int(part) or isinstance(part, (bool, np.bool_)):
        return
    if isinstance(part, slice):
        if builtins.all(v is None or checks.is_int(v) for v in (part.start, part.stop, part.step)):
            if part.step is not None and part.step < 1:
                raise ValueError(f"getitem: tensor index {checks.describe(index)}: a slice step must be >= 1, "
                                 f"got {part.step} (PyTorch refuses steps below 1; to reverse an axis, index it "
                                 f"with a reversed array of positions)")
            return
    elif hasattr(part, "dtype") and hasattr(part, "shape"):
        if part.dtype.kind in "iub":
            return
    elif isinstance(part, list):
        if builtins.all(checks.is_int(v) or isinstance(v, (bool, np.bool_)) for v in part):
            return
    raise TypeError(f"getitem: tensor index {checks.describe(index)}: {checks.describe(part)} is not a valid "
                    "index; use ints, slices of ints, None, ..., or integer or boolean tensors/arrays")


def _check_positions_in_range(shape, index):
    """Each integer array of ``index`` within its axis of ``shape`` (``-size <= i < size``), as NumPy
    checks by itself: CuPy does not, and wraps a position around (index 5 of 3 reads 2). One wait
    for the device per integer array on it (its smallest and largest value); anything out of range
    is the IndexError NumPy gives."""
    parts = [np.asarray(p) if isinstance(p, list) else p for p in (index if isinstance(index, tuple) else (index,))]

    def axes_taken(part):              # how many axes of x an index part walks over
        if part is None or part is Ellipsis:
            return 0
        return part.ndim if getattr(part, "dtype", None) == np.bool_ else 1

    axis = 0
    for part in parts:
        if part is Ellipsis:           # the axes that no other part takes
            axis += len(shape) - builtins.sum(axes_taken(p) for p in parts)
            continue
        if hasattr(part, "dtype") and part.dtype.kind in "iu" and part.size and axis < len(shape):
            size = shape[axis]
            low, high = int(backend.to_numpy(part.min())), int(backend.to_numpy(part.max()))
            if low < -size or high >= size:
                raise IndexError(f"index {high if high >= size else low} is out of bounds for axis {axis} "
                                 f"with size {size}")
        axis += axes_taken(part)


def getitem(x, index):
    checks.tensor(x, "input", "getitem")
    if isinstance(index, tuple):
        index = tuple(raw(i) for i in index)
    else:
        index = raw(index)
    for part in index if isinstance(index, tuple) else (index,):
        _check_index_part(part, index)
    try:
        if backend.get_array_module(x.data) is not np:
            _check_positions_in_range(x.shape, index)
        return GetItem(index)(x)
    except IndexError as error:      # out of range, too many indices, boolean mask of another shape
        raise IndexError(f"getitem: tensor index {checks.describe(index)} does not fit a tensor of shape "
                         f"{x.shape}: {error}") from None
