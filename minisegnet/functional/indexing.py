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

__all__ = ["getitem", "normalize_index", "torch_steps"]


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
        if part.dtype == np.uint8:
            raise TypeError(f"getitem: tensor index {checks.describe(index)}: a uint8 index is a mask to "
                            "PyTorch (deprecated) and positions to NumPy; cast it, .bool() for a mask or "
                            ".long() for positions")
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
        if part is None or part is Ellipsis or isinstance(part, (bool, np.bool_)):
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


def _is_advanced(part):
    """An integer or boolean array part (``normalize_index`` made lists arrays), or a bool:
    NumPy's and PyTorch's advanced indexing."""
    return isinstance(part, (bool, np.bool_)) or (hasattr(part, "dtype") and hasattr(part, "shape"))


def torch_steps(index, ndim):
    """``index`` as PyTorch reads it, as NumPy indexing steps (one, or two applied one after the other).

    PyTorch applies the ints (selecting), slices, ``None`` and ``...`` first and only then the
    integer and boolean tensors, whose axes go where they stand when they are adjacent in what
    is left, else first. NumPy instead counts an int as one more advanced index beside an array
    (``x[0, :, [1, 2]]`` of shape (2, 3, 4): NumPy (2, 3), PyTorch (3, 2)), and an empty ``...``
    as a separation. So where an array meets an int, ``None`` or ``...``, the basic parts are
    applied first (a view) and the arrays second, against explicit slices."""
    parts = list(index) if isinstance(index, tuple) else [index]
    if not builtins.any(_is_advanced(p) for p in parts) or \
            not builtins.any(p is None or p is Ellipsis or checks.is_int(p) for p in parts):
        return [index]

    def axes_taken(part):                 # how many of x's axes a part walks over
        if part is None or part is Ellipsis or isinstance(part, (bool, np.bool_)):
            return 0
        return part.ndim if getattr(part, "dtype", None) == np.bool_ else 1

    basic, advanced = [], []
    for part in parts:
        if part is Ellipsis:                  # the axes no other part takes, as explicit slices
            basic.append(Ellipsis)
            advanced += [slice(None)] * (ndim - builtins.sum(axes_taken(p) for p in parts))
        elif _is_advanced(part):
            basic += [slice(None)] * axes_taken(part)
            advanced.append(part)
        elif checks.is_int(part):
            basic.append(part)                   # selected: no axis left for the second step
        else:                                    # a slice, or None (a new axis of one)
            basic.append(part)
            advanced.append(slice(None))
    return [tuple(basic), tuple(advanced)]


def normalize_index(x, index):
    """``index`` with Tensors as their arrays, a 0-d integer tensor as an int (PyTorch's select:
    a view) and a list as an array of the positions it holds now (a later change to the list
    is not seen by the backward pass); every part checked."""
    xp = backend.get_array_module(x.data)
    parts = [raw(i) for i in (index if isinstance(index, tuple) else (index,))]
    for i, part in enumerate(parts):
        if hasattr(part, "dtype") and hasattr(part, "shape") and part.ndim == 0 and part.dtype.kind in "iu":
            parts[i] = int(part)     # (of a GPU's 0-d tensor: one read, as PyTorch's select makes)
        elif isinstance(part, list):
            _check_index_part(part, index)
            parts[i] = xp.asarray(part)
    index = tuple(parts) if isinstance(index, tuple) else parts[0]
    for part in parts:
        _check_index_part(part, index)
    return index


def getitem(x, index):
    checks.tensor(x, "input", "getitem")
    xp = backend.get_array_module(x.data)
    index = normalize_index(x, index)
    try:
        out = x
        for step in torch_steps(index, x.ndim):
            if xp is not np:
                _check_positions_in_range(out.shape, step)
            out = GetItem(step)(out)
        return out
    except IndexError as error:      # out of range, too many indices, boolean mask of another shape
        raise IndexError(f"getitem: tensor index {checks.describe(index)} does not fit a tensor of shape "
                         f"{x.shape}: {error}") from None
