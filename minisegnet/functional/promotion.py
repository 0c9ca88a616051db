"""PyTorch's type promotion: the dtype of ``a + b`` for operands of two dtypes (``result_type``),
and the dtype a float16 sum or mean is computed in (``opmath``).

PyTorch's rule for the dtype of ``a + b`` (and -, *, /, **), which NumPy's differs from:
dtypes fall in three categories, bool < integer < floating point, and the operands in three
groups, tensors with dimensions, zero-dimensional tensors, and Python numbers. Each group's
dtype is its operands' promoted one (a Python float counts as float32, the default dtype, an
int as int64); a later group's dtype counts only if its category is higher. So
``float32 + float64 of zero dimensions`` stays float32 and ``int64 + 0.5`` is float32, where
NumPy gives float64 for both.

NumPy's rule within one category, the smallest dtype that holds both, is PyTorch's too, except
for the unsigned integers wider than 8 bits: PyTorch 2.13 promotes uint16, uint32 and uint64 with
no other dtype (its error: "Promotion for uint16, uint32, uint64 types is not supported"), and
neither do we (NumPy would make uint64 and int64 float64: an integer sum rounded).
"""
import numpy as np

from .. import checks
from ..autograd import Tensor

__all__ = ["opmath", "in_opmath", "result_type"]


def opmath(dtype):
    """The dtype PyTorch computes a sum or a mean of ``dtype`` in (its ``opmath`` type): float16
    in float32 (float16 stops counting at 2048 and overflows past 65504), others as they are."""
    return np.promote_types(dtype, np.float32) if np.dtype(dtype).kind == "f" else np.dtype(dtype)


def in_opmath(fn, *tensors):
    """``fn(*tensors)`` computed in PyTorch's opmath dtype of the first tensor's and rounded once
    back to it: float16 goes through float32 (the casts carry the gradients both ways), as
    PyTorch's CPU kernels compute it (in float16 a sum stops counting at 2048, and each step
    rounds); other dtypes as they are. None entries (an absent bias) pass through."""
    dtype = tensors[0].dtype
    wide = opmath(dtype)
    if wide == dtype:
        return fn(*tensors)
    return fn(*(None if t is None else t.astype(wide) for t in tensors)).astype(dtype)


def _category(dtype):
    """0 for bool, 1 for integers (signed or not), 2 for floating point."""
    return {"b": 0, "i": 1, "u": 1, "f": 2}[dtype.kind]


_WIDE_UNSIGNED = (np.uint16, np.uint32, np.uint64)


def _promote(d1, d2):
    """The dtype of two operands of one group (``None``: no operand yet): the higher
    category's dtype; within one category, the smallest that holds both (as NumPy). A uint16,
    uint32 or uint64 beside another bool or integer dtype is refused, as PyTorch refuses it."""
    if d1 is None or d2 is None:
        return d1 if d2 is None else d2
    if d1 != d2 and (d1 in _WIDE_UNSIGNED or d2 in _WIDE_UNSIGNED) and max(_category(d1), _category(d2)) < 2:
        raise TypeError(f"{d1} and {d2} do not promote: as in PyTorch, uint16, uint32 and uint64 mix with "
                        f"no other bool or integer dtype (NumPy would make uint64 and int64 float64); cast "
                        f"one first")
    if _category(d1) != _category(d2):
        return d1 if _category(d1) > _category(d2) else d2
    return np.promote_types(d1, d2)


def _over(higher, lower):
    """Group ``higher``'s dtype, unless group ``lower``'s is of a higher category (then the two
    meet as ``_promote``'s do: a bool tensor with a 0-d uint16 one is refused, as PyTorch)."""
    if higher is None or (lower is not None and _category(lower) > _category(higher)):
        if higher is not None:
            _promote(higher, lower)
        return lower
    return higher


def result_type(a, b):
    """The dtype of ``a op b`` under PyTorch's type promotion, as ``torch.result_type``;
    each of ``a``, ``b`` is a Tensor or a Python number."""
    groups = {"dims": None, "zero": None, "number": None}
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, (Tensor, bool, int, float)):
            raise TypeError(f"result_type: {name} must be a Tensor or a Python number (bool, int, float), "
                            f"got {checks.describe(x)}")
        if isinstance(x, Tensor):
            key, dtype = ("dims" if x.ndim else "zero"), x.dtype
        else:
            key = "number"
            dtype = np.dtype(bool if isinstance(x, bool) else np.int64 if isinstance(x, int) else np.float32)
        groups[key] = _promote(groups[key], dtype)
    return _over(groups["dims"], _over(groups["zero"], groups["number"]))
