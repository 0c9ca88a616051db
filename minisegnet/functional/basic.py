"""Elementwise arithmetic, reductions, matmul and shape ops.

Each op is a ``Function`` subclass whose ``forward`` and ``backward`` sit
together, followed by the small function users call. Broadcasting rule for
gradients: if an operand was broadcast in the forward pass, its gradient is
summed back down to its own shape (``unbroadcast``).
"""
import builtins
import numbers

import numpy as np

from .. import backend, checks
from ..array_data import check_dtype
from ..autograd import Function, Tensor, no_grad
from .promotion import _promote, opmath, result_type

__all__ = [
    "add", "sub", "mul", "div", "pow", "neg", "matmul", "exp", "log", "sqrt", "abs", "clamp",
    "sum", "mean", "max", "max_along", "reshape", "flatten", "permute", "transpose",
    "cat", "stack", "astype", "unbroadcast", "empty_batch", "result_type",
]


def raw(x):
    """The array inside a Tensor; anything else unchanged."""
    return x.data if isinstance(x, Tensor) else x


# ---- operands: PyTorch's type promotion (promotion.py), broadcasting -----------------------
def _operands(a, b, op, floating=False, promote=True):
    """Make both operands Tensors of one dtype, PyTorch's (``result_type``; float32 if
    ``floating`` and that is not floating point, as true division wants; with ``promote``
    False each keeps its own, a number takes its neighbour's). A Python number
    becomes a zero-dimensional array of that dtype; a NumPy array or scalar a Tensor first.
    At least one operand must be a Tensor, and their shapes must broadcast."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: at least one operand must be a Tensor, got {type(a).__name__} "
                        f"and {type(b).__name__}")

    def convert(x, name):
        if isinstance(x, Tensor) or isinstance(x, (bool, int, float)):
            return x
        if x is None or isinstance(x, str):
            raise TypeError(f"{op}: {name} must be a Tensor, an array or a number, got {checks.describe(x)}")
        if isinstance(x, (list, tuple)):
            raise TypeError(f"{op}: {name} must be a Tensor, an array or a number, got a {type(x).__name__} "
                            "(PyTorch refuses one too); make it a tensor first with msn.tensor")
        if isinstance(x, np.generic) and x.dtype.kind in "biuf":
            # a Python number, as PyTorch takes a NumPy scalar (its promotion rules and range check;
            # made on the device like one, no upload, where Tensor(x) would upload it)
            return x.item()
        return Tensor(x)
    a, b = convert(a, "the first operand"), convert(b, "the second operand")
    with checks.naming(op):
        dtype = result_type(a, b)
    if not promote:
        dtype = (a if isinstance(a, Tensor) else b).dtype
    if floating and dtype.kind != "f":
        dtype = np.dtype(np.float32)
    xp = backend.get_array_module((a if isinstance(a, Tensor) else b).data)

    def cast(x):
        if not isinstance(x, Tensor):
            _check_fits(x, dtype, op)
            # xp.full, not xp.asarray: on a GPU the number travels as a kernel argument, no copy.
            return Tensor._wrap(xp.full((), x, dtype=dtype))
        return x if x.dtype == dtype or not promote else astype(x, dtype)
    a, b = cast(a), cast(b)
    if a.shape != b.shape and op != "matmul":
        _check_broadcast(a.shape, b.shape, op)
    return a, b


def _check_fits(number, dtype, op):
    """A Python int must lie in the range of an integer dtype it is cast to. PyTorch wraps a
    number beyond a narrow dtype around (a uint8 tensor times 300 multiplies by 44) and refuses
    one beyond int64; we refuse both, as nothing is wrapped silently."""
    if isinstance(number, int) and not isinstance(number, bool) and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not info.min <= number <= info.max:
            raise OverflowError(f"{op}: the number {number} does not fit {dtype}, the dtype this operation "
                                f"computes in ({info.min} to {info.max}); we refuse to wrap it around: "
                                f"cast the tensor to a wider dtype first (e.g. x.astype(np.int64))")


def _check_broadcast(shape_a, shape_b, op):
    """NumPy's (and PyTorch's) rule, aligned from the last axis: two sizes match if
    they are equal or one of them is 1."""
    for n, m in zip(reversed(shape_a), reversed(shape_b)):
        if n != m and n != 1 and m != 1:
            raise ValueError(f"{op}: shapes {tuple(shape_a)} and {tuple(shape_b)} do not broadcast: "
                             f"aligned from the last axis, sizes {n} and {m} differ and neither is 1")


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    Broadcasting copies an operand along new leading axes and along axes of
    length 1; the gradient of a copy is the sum over the copies.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    dtype, work = grad.dtype, opmath(grad.dtype)              # float16 adds up in float32
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)), dtype=work)
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True, dtype=work)
    return grad.astype(dtype, copy=False)


# ---- arithmetic ----------------------------------------------------------------
class Add(Function):
    """y = a + b;  da = g, db = g (each summed to its operand's shape)."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])


class Sub(Function):
    """y = a - b;  da = g, db = -g."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        gb = -unbroadcast(g, self.shapes[1]) if self.needs_input_grad[1] else None
        return unbroadcast(g, self.shapes[0]), gb


class Mul(Function):
    """y = a * b;  da = g * b, db = g * a."""

    def forward(self, a, b):
        # Each operand is saved only for the other's gradient, as in PyTorch: w * c with a
        # constant c keeps c alone (w may then change in place before the backward).
        self.shapes = a.shape, b.shape
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return a * b

    def backward(self, g):
        ga = unbroadcast(g * self.b, self.shapes[0]) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * self.a, self.shapes[1]) if self.needs_input_grad[1] else None
        return ga, gb


def ieee():
    """IEEE's results (inf, -inf, NaN: log 0, sqrt(-1), 1 / 0, exp(1000)) without NumPy's
    RuntimeWarnings, as PyTorch gives them: silently."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


class Div(Function):
    """y = a / b;  da = g / b, db = -g * a / b**2 (computed as -g (a / b) / b)."""

    def forward(self, a, b):
        self.shapes, self.b = (a.shape, b.shape), b
        self.a = a if self.needs_input_grad[1] else None      # only db needs a (see Mul)
        with ieee():
            return a / b

    def backward(self, g):
        with ieee():
            ga = unbroadcast(g / self.b, self.shapes[0]) if self.needs_input_grad[0] else None
            gb = None
            if self.needs_input_grad[1]:
                # -g ((a / b) / b), as PyTorch: b * b would overflow (or underflow) long before the
                # quotient does, in float16 past |b| = 256; and g's product last (-g (a/b) first may overflow)
                gb = unbroadcast(-g * ((self.a / self.b) / self.b), self.shapes[1])
        return ga, gb


class Pow(Function):
    """y = a ** b;  da = g * (b * a**(b-1)), db = g * (y * log(a)) (g last, as PyTorch: g * b
    first may overflow float16 where the whole does not).

    At the edges, PyTorch's rules: da = 0 where b == 0 (y = 1 whatever a; the formula
    gives 0 * 0**-1 = 0 * inf = NaN at a = 0), and db = 0 where a == 0 and b >= 0 (y stays
    0 or 1 there; the formula gives 0 * log 0 = NaN). Elsewhere log(a) of a negative base
    is NaN, as in PyTorch."""

    def forward(self, a, b):
        self.a, self.b = a, b
        if a.dtype.kind in "iu" and b.dtype.kind == "i":
            return _integer_power(a, b)              # (integers: no gradient)
        with np.errstate(divide="ignore", invalid="ignore"):     # 0 ** -1 = inf, (-1) ** 0.5 = NaN, silently
            y = a ** b
        if y.dtype != a.dtype:             # NumPy raises bools to a power in int8; keep the operands' dtype
            y = y.astype(a.dtype)
        if self.needs_input_grad[1]:       # only the exponent's gradient needs y (x ** 2 keeps x alone, as
            self.y = y                     # PyTorch: a write into y after it is no business of its backward)
        return y

    def backward(self, g):
        xp = backend.get_array_module(g)
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):      # the edges below are replaced
            if self.needs_input_grad[0]:
                ga = unbroadcast(xp.where(self.b == 0, 0, g * (self.b * self.a ** (self.b - 1))), self.a.shape)
            if self.needs_input_grad[1]:
                edge = (self.a == 0) & (self.b >= 0)
                gb = unbroadcast(xp.where(edge, 0, g * (self.y * xp.log(self.a))), self.b.shape)
        return ga, gb


def _integer_power(a, b):
    """``a ** b`` of integers where ``b`` may be negative, PyTorch's way: ``a ** b`` for ``b >= 0``;
    for ``b < 0`` the integer part of ``1 / a ** -b``: 1 for ``a == 1``, +-1 for ``a == -1`` (by
    ``b``'s parity), else 0 (0 too for ``a == 0``). NumPy refuses a negative integer power."""
    xp = backend.get_array_module(a)
    y = a ** xp.maximum(b, 0).astype(b.dtype)
    unit = xp.where(a == 1, 1, xp.where(a == -1, 1 - 2 * (b % 2), 0)).astype(y.dtype)   # a ** b for b < 0
    return xp.where(b < 0, unit, y).astype(a.dtype, copy=False)


class Neg(Function):
    """y = -x;  dx = -g."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


def add(a, b):
    return Add()(*_operands(a, b, "add"))


_COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                "ge": "greater_equal"}


def compare(a, b, op):
    """``a == b`` (``op`` "eq"; "ne", "lt", "le", "gt", "ge" likewise), element by element: a bool
    tensor with no gradient. The operands meet in PyTorch's dtype first (``_operands``, the rules
    of ``a + b``): an int64 tensor and 16777216.0 compare in float32, a float32 tensor and a
    zero-dimensional float64 one in float32, and a number an integer tensor cannot hold (uint8
    against -1, which PyTorch would wrap to 255) is refused as in arithmetic."""
    with no_grad():                                     # a cast made here is no part of a graph
        a, b = _operands(a, b, op)
    xp = backend.get_array_module(a.data, b.data)      # one device (a clear error, not a copy)
    return Tensor._wrap(getattr(xp, _COMPARISONS[op])(a.data, b.data))


_BITWISE = {"and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor"}


def bitwise(a, b, op):
    """``a & b`` (``op`` "and"; "or" for ``|``, "xor" for ``^``), element by element, for bool
    or integer tensors (on masks: logical and, or, exclusive or), in ``a + b``'s dtype: no
    gradient, as PyTorch's; floating point is refused, as there."""
    with no_grad():
        a, b = _operands(a, b, op)
    for t in (a, b):
        if t.dtype.kind not in "biu":
            raise TypeError(f"{op}: the bitwise operators take bool or integer tensors (as in PyTorch), "
                            f"got dtype {t.dtype}")
    xp = backend.get_array_module(a.data, b.data)
    return Tensor._wrap(getattr(xp, _BITWISE[op])(a.data, b.data))


def invert(x):
    """``~x``: logical not of a bool tensor, bitwise not of an integer one (as PyTorch's); no gradient."""
    if x.dtype.kind not in "biu":
        raise TypeError(f"invert: ~ takes a bool or integer tensor (as in PyTorch), got dtype {x.dtype}")
    return Tensor._wrap(backend.get_array_module(x.data).invert(x.data))


def _is_bool(x):
    """A Python bool, or a Tensor, array or NumPy scalar of dtype bool."""
    return isinstance(x, bool) or getattr(getattr(x, "dtype", None), "kind", None) == "b"


def sub(a, b):
    if _is_bool(a) or _is_bool(b):
        raise TypeError("sub: the - operator is not defined for a bool operand (as in PyTorch); for a mask "
                        "use ~ (logical not) or ^ (logical exclusive or)")
    return Sub()(*_operands(a, b, "sub"))


def mul(a, b):
    return Mul()(*_operands(a, b, "mul"))


def div(a, b):
    return Div()(*_operands(a, b, "div", floating=True))


def pow(a, b):
    # PyTorch refuses a bool base raised to a bool tensor, but computes a bool tensor ** True
    if _is_bool(a) and _is_bool(b) and not isinstance(b, bool):
        raise TypeError("pow: not defined for a bool tensor exponent of a bool base (as in PyTorch); cast one first")
    if isinstance(a, Tensor) and a.dtype.kind in "biu" and isinstance(b, numbers.Integral) and b < 0:
        raise ValueError(f"pow: an integer tensor to the negative integer power {b} (as in PyTorch, refused: "
                         f"cast the tensor to float first, x.float() ** {b})")
    return Pow()(*_operands(a, b, "pow"))


def neg(x):
    checks.tensor(x, "input", "neg")
    if x.dtype.kind == "b":
        raise TypeError("neg: input must be a number tensor, got dtype bool (use ~ for logical not)")
    return Neg()(x)


# ---- matrix product --------------------------------------------------------------
class MatMul(Function):
    """Y = A @ B (batched, broadcasting);  dA = G @ B^T, dB = A^T @ G.

    1-D operands are promoted as ``matmul`` promotes them (a row vector on
    the left, a column on the right) so one formula serves every case.
    """

    def forward(self, a, b):
        # dA needs only B and dB only A: each is kept only for the other's gradient (see Mul)
        self.shapes = a.shape, b.shape
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        return a @ b

    def backward(self, g):
        xp = backend.get_array_module(g)
        a_shape, b_shape = self.shapes
        a2_shape = (1,) + a_shape if len(a_shape) == 1 else a_shape
        b2_shape = b_shape + (1,) if len(b_shape) == 1 else b_shape
        g2 = xp.expand_dims(g, -1) if len(b_shape) == 1 else g      # column axis first,
        g2 = xp.expand_dims(g2, -2) if len(a_shape) == 1 else g2    # then the row axis
        ga = gb = None
        if self.needs_input_grad[0]:
            b2 = self.b.reshape(b2_shape)
            ga = unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2_shape).reshape(a_shape)
        if self.needs_input_grad[1]:
            a2 = self.a.reshape(a2_shape)
            gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2_shape).reshape(b_shape)
        return ga, gb


def matmul(a, b):
    a, b = _operands(a, b, "matmul", promote=False)      # PyTorch refuses two dtypes here
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs operands with at least one dimension; use * for scalars")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul shapes {a.shape} and {b.shape} do not align: "
                         "the last axis of the first must equal the second-to-last of the second")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: both operands must have the same dtype (as in PyTorch), got {a.dtype} "
                        f"and {b.dtype}; cast one of them first")
    if a.dtype.kind == "b":
        raise TypeError("matmul: not defined for bool tensors (as in PyTorch); cast them first")
    if a.ndim > 2 and b.ndim > 2:
        _check_broadcast(a.shape[:-2], b.shape[:-2], "matmul (batch axes)")
    return MatMul()(a, b)


# ---- elementwise functions --------------------------------------------------------
class Exp(Function):
    """y = exp(x);  dx = g * y."""

    def forward(self, x):
        with ieee():
            self.y = backend.get_array_module(x).exp(x)
        return self.y

    def backward(self, g):
        with ieee():
            return g * self.y


class Log(Function):
    """y = log(x);  dx = g / x."""

    def forward(self, x):
        self.x = x
        with ieee():
            return backend.get_array_module(x).log(x)

    def backward(self, g):
        with ieee():
            return g / self.x


class Sqrt(Function):
    """y = sqrt(x);  dx = g / (2 y)."""

    def forward(self, x):
        with ieee():
            self.y = backend.get_array_module(x).sqrt(x)
        return self.y

    def backward(self, g):
        with ieee():
            return g / (2 * self.y)


class Abs(Function):
    """y = |x|;  dx = g * sign(x), 0 at x = 0 and at NaN (PyTorch's ``sgn``; NumPy's
    ``sign(NaN)`` is NaN, so the sign is selected, not taken)."""

    def forward(self, x):
        self.x = x
        return backend.get_array_module(x).abs(x)

    def backward(self, g):
        xp = backend.get_array_module(g)
        return xp.where(self.x > 0, g, xp.where(self.x < 0, -g, xp.zeros((), dtype=g.dtype)))


class Clamp(Function):
    """y = min(max(x, lo), hi);  dx = g where lo <= x <= hi, else 0 (the bounds themselves
    pass the gradient, and NaN passes none: PyTorch's ``clamp_backward``)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        y = x
        # the bounds as zero-dimensional arrays of x's dtype, made where x is (no upload)
        if self.lo is not None:
            self.inside &= x >= self.lo
            y = xp.maximum(y, xp.full((), self.lo, dtype=x.dtype))   # maximum keeps NaN, as torch.clamp
        if self.hi is not None:
            self.inside &= x <= self.hi
            y = xp.minimum(y, xp.full((), self.hi, dtype=x.dtype))
        return y

    def backward(self, g):
        return backend.get_array_module(g).where(self.inside, g, 0)   # selected: inf * 0 would be NaN


class AsType(Function):
    """A dtype cast; the gradient is cast back."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return g.astype(self.source)


def exp(x):
    return Exp()(checks.float_tensor(x, "input", "exp"))


def log(x):
    return Log()(checks.float_tensor(x, "input", "log"))


def sqrt(x):
    return Sqrt()(checks.float_tensor(x, "input", "sqrt"))


def abs(x):
    checks.tensor(x, "input", "abs")
    if x.dtype.kind == "b":
        raise TypeError("abs: input must be a number tensor, got dtype bool")
    return Abs()(x)


def clamp(input, min=None, max=None):
    """Each value limited to ``[min, max]``, as ``torch.clamp`` with number bounds (at least
    one given; ``min > max`` gives ``max`` everywhere, as in PyTorch). Tensor bounds are not
    supported here, and a bool tensor is refused (PyTorch clamps it as integers)."""
    checks.tensor(input, "input", "clamp")
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both (as in PyTorch: at least one must not be None)")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real)):
            raise TypeError(f"clamp: {name} must be a number or None, got {checks.describe(bound)}")
    if input.dtype.kind not in "iuf":
        raise TypeError(f"clamp: input must be a number tensor, got dtype {input.dtype}")
    if input.dtype.kind != "f" and any(isinstance(b, (float, np.floating)) for b in (min, max)):
        input = astype(input, np.float32)          # PyTorch's promotion: an int tensor and a float bound
    for name, bound in (("min", min), ("max", max)):
        if isinstance(bound, (int, np.integer)):
            _check_fits(int(bound), input.dtype, "clamp")  # a uint8 tensor, min=-1: PyTorch wraps it to 255
        elif bound is not None:
            checks.fits(float(bound), input.dtype, name, "clamp")     # 1e6 into float16: refused, as PyTorch
    return Clamp(min, max)(input)


def astype(x, dtype):
    """A copy cast to ``dtype``. A cast to an integer or boolean dtype carries no
    gradient (its result is a constant), as in PyTorch."""
    checks.tensor(x, "input", "astype")
    dtype = check_dtype(dtype, "astype")
    if dtype.kind != "f":
        return Tensor._wrap(x.data.astype(dtype))
    return AsType(dtype)(x)


def cast(x, dtype):
    """``x.float()``, ``x.long()``, ...: ``x`` itself when it has ``dtype`` already (as PyTorch's:
    no copy, the same tensor), else ``astype``'s copy."""
    return x if x.dtype == dtype else astype(x, dtype)


# ---- reductions -------------------------------------------------------------------
def normalize_dims(dim, ndim, name="dim", op=None):
    """``dim`` (None, an int or a tuple/list of ints) as a sorted tuple of non-negative axes;
    ``op`` (the calling function) starts the error messages."""
    where = f"{op}: " if op else ""
    if dim is None:
        return tuple(range(ndim))
    if checks.is_int(dim):
        dims = (dim,)
    elif isinstance(dim, (tuple, list)) and builtins.all(checks.is_int(d) for d in dim):
        dims = tuple(dim)
    else:
        raise TypeError(f"{where}{name} must be None, an int or a tuple of ints, got {checks.describe(dim)}")
    out = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"{where}{name}={dim!r} is out of range for a tensor with {ndim} dimensions "
                             f"(valid: {-builtins.max(ndim, 1)} to {builtins.max(ndim, 1) - 1})")   # torch's kind
        out.append(int(d) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{where}{name}={dim!r} names a dimension twice")
    return tuple(sorted(out))


def _expand_reduced(g, axes, keepdim):
    """Put the reduced axes back (as length 1) so ``g`` broadcasts against the input."""
    if keepdim:
        return g
    xp = backend.get_array_module(g)
    return xp.expand_dims(g, axes) if axes else g


class Sum(Function):
    """y = sum of x over ``axes``;  dx = g copied back along those axes.
    Integers and booleans sum in int64, as in PyTorch (NumPy would keep uint8's sum unsigned,
    as uint64, where a later subtraction wraps around), float16 in float32 (``opmath``)."""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.shape = x.shape
        dtype = np.int64 if x.dtype.kind in "biu" else opmath(x.dtype)
        total = x.sum(axis=self.axes, keepdims=self.keepdim, dtype=dtype)
        return total if x.dtype.kind != "f" else total.astype(x.dtype, copy=False)

    def backward(self, g):
        xp = backend.get_array_module(g)
        return xp.broadcast_to(_expand_reduced(g, self.axes, self.keepdim), self.shape)


class Mean(Function):
    """y = mean of x over ``axes``;  dx = g / n copied back (n = elements averaged)."""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.shape = x.shape
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        return x.mean(axis=self.axes, keepdims=self.keepdim)

    def backward(self, g):
        xp = backend.get_array_module(g)
        # divided in opmath: a float16 count past 65504 is inf (and its share 0)
        share = (_expand_reduced(g, self.axes, self.keepdim).astype(opmath(g.dtype), copy=False) / self.count)
        return xp.broadcast_to(share.astype(g.dtype, copy=False), self.shape)


class Max(Function):
    """y = max of x over ``axes``;  dx = g at the maxima, split evenly between ties
    (like ``torch.amax``), 0 elsewhere. A NaN maximum has no ties (NaN == NaN is false): NaN
    everywhere, as ``amax``'s; with ``nans_tie``, the NaNs are its ties and share g, as
    ``torch.Tensor.max()``'s (``max_all``)."""

    def __init__(self, axes, keepdim, nans_tie=False):
        self.axes, self.keepdim, self.nans_tie = axes, keepdim, nans_tie

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.axes, keepdims=True)
        return self.y if self.keepdim else self.y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, g):
        xp = backend.get_array_module(g)
        ties = self.x == self.y
        if self.nans_tie and self.x.dtype.kind == "f":
            ties |= xp.isnan(self.x) & xp.isnan(self.y)
        wide = opmath(g.dtype)              # float16 counts past 2048 ties wrong, and past 65504 not at all
        with ieee():                          # no ties (a NaN maximum): g / 0 * 0, NaN, as amax's
            share = _expand_reduced(g, self.axes, self.keepdim).astype(wide, copy=False) / \
                ties.sum(axis=self.axes, keepdims=True, dtype=wide)
            return (ties * share).astype(g.dtype, copy=False)


class MaxAlong(Function):
    """y = max of x along one axis, and i = where (the first maximum, NaN counting as the
    largest);  dx = g at position i only, 0 elsewhere (like ``torch.max(x, dim)``: unlike
    ``amax``, ties do not share the gradient; the chosen element takes it all)."""

    def __init__(self, axis, keepdim):
        self.axis, self.keepdim = axis, keepdim

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.shape = x.shape
        self.index = xp.expand_dims(x.argmax(axis=self.axis), self.axis)
        y = xp.take_along_axis(x, self.index, axis=self.axis)
        return y if self.keepdim else y.squeeze(self.axis)

    def backward(self, g):
        xp = backend.get_array_module(g)
        dx = xp.zeros(self.shape, dtype=g.dtype)
        xp.put_along_axis(dx, self.index, g if self.keepdim else xp.expand_dims(g, self.axis), axis=self.axis)
        return dx


def max_along(x, dim, keepdim=False):
    """``(values, indices)`` of the largest element along the one axis ``dim``, as
    ``torch.max(x, dim)`` (the indices, int64, carry no gradient)."""
    checks.tensor(x, "input", "max")
    keepdim = checks.flag(keepdim, "keepdim", "max")
    if not checks.is_int(dim):
        raise TypeError(f"max: dim must be one int (the axis to reduce, as in PyTorch), got {checks.describe(dim)}; "
                        f"amax takes several")
    (axis,) = normalize_dims(dim, x.ndim, op="max")
    if x.ndim == 0:                   # dim 0 or -1 of a 0-d tensor: its one value, at index 0 (PyTorch's)
        return max_along(reshape(x, (1,)), 0)
    if x.shape[axis] == 0:
        raise ValueError(f"max over dim={dim!r} of an empty axis (shape {x.shape})")
    fn = MaxAlong(axis, keepdim)
    values = fn(x)
    return values, Tensor._wrap((fn.index if keepdim else fn.index.squeeze(axis)).astype(np.int64))


def argmax(x, dim=None, keepdim=False, op="argmax"):
    """Indices of the maxima (int64, no gradient), as ``torch.argmax``: into the flattened values
    without ``dim``; the first maximum along ``dim`` with it. ``op`` names the caller in errors
    (``Tensor.argmin`` is ``argmax`` of the order reversed)."""
    xp = backend.get_array_module(x.data)
    keepdim = checks.flag(keepdim, "keepdim", op)
    if x.dtype.kind == "b":
        raise TypeError(f"{op}: not defined for a bool tensor (as in PyTorch); cast it first, x.long()")
    if dim is None:
        if x.data.size == 0:
            raise IndexError(f"{op}: the tensor of shape {x.shape} has no values (as in PyTorch, give a dim "
                             f"of non-zero size)")
        index = xp.asarray(x.data.argmax())              # into the flattened values
        return Tensor._wrap(index.reshape((1,) * x.ndim) if keepdim else index)
    axes = normalize_dims(dim, x.ndim, op=op)
    if len(axes) != 1:
        raise TypeError(f"{op}: dim must be one int or None, got a tuple {axes}")
    if x.ndim == 0:                      # dim 0 or -1 of a 0-d tensor: its one value, index 0
        return Tensor._wrap(xp.zeros((), dtype=np.int64))
    (axis,) = axes
    if x.shape[axis] == 0:
        raise IndexError(f"{op}: dim={axis} of the tensor of shape {x.shape} has size 0 (as in PyTorch)")
    out = x.data.argmax(axis=axis)
    return Tensor._wrap(xp.expand_dims(out, axis) if keepdim else out)


def _reduced_dims(dim, ndim, op):
    """The axes a reduction (sum, mean, max) runs over: ``normalize_dims``, except that an
    empty tuple or list means every axis, as in PyTorch's ``sum``, ``mean`` and ``amax``."""
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    axes = normalize_dims(dim, ndim, op=op)
    return () if ndim == 0 else axes      # a 0-d tensor: dim 0 or -1 (checked) reduces over nothing, as in PyTorch


def sum(x, dim=None, keepdim=False):
    checks.tensor(x, "input", "sum")
    return Sum(_reduced_dims(dim, x.ndim, "sum"), checks.flag(keepdim, "keepdim", "sum"))(x)


def mean(x, dim=None, keepdim=False):
    """Mean over ``dim``; needs a floating-point input (PyTorch's rule: the mean of
    integers has no integer dtype to live in)."""
    checks.float_tensor(x, "input", "mean")
    return Mean(_reduced_dims(dim, x.ndim, "mean"), checks.flag(keepdim, "keepdim", "mean"))(x)


def max(x, dim=None, keepdim=False):
    """Largest value over ``dim`` (values only, like ``torch.amax``)."""
    checks.tensor(x, "input", "max")
    keepdim = checks.flag(keepdim, "keepdim", "max")
    axes = _reduced_dims(dim, x.ndim, "max")
    if builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"max over dim={dim!r} of an empty axis (shape {x.shape})")
    return Max(axes, keepdim)(x)


def max_all(x):
    """The largest of all values, as ``torch.Tensor.max()``: ties share the gradient, as in
    ``max``; a NaN maximum gives it to the NaNs (``amax`` gives NaN to every element)."""
    checks.tensor(x, "input", "max")
    if x.size == 0:
        raise ValueError(f"max over dim=None of an empty axis (shape {x.shape})")
    return Max(tuple(range(x.ndim)), False, nans_tie=True)(x)


# ---- shape ops ---------------------------------------------------------------------
class Reshape(Function):
    """Same values, new shape; the gradient is reshaped back."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.source = x.shape
        return x.reshape(self.shape)

    def backward(self, g):
        return g.reshape(self.source)


class Permute(Function):
    """Reorder axes; the gradient is permuted by the inverse order."""

    def __init__(self, dims):
        self.dims = dims

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, g):
        return g.transpose(tuple(np.argsort(self.dims)))


def reshape(x, *shape):
    return _reshape(x, shape, "reshape")


def _reshape(x, shape, op):
    """``reshape`` (``Tensor.view`` too); ``op`` starts the error messages."""
    checks.tensor(x, "input", op)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not builtins.all(checks.is_int(n) for n in shape):
        raise TypeError(f"{op}: shape must be ints (one may be -1), got {shape!r}")
    shape = tuple(int(n) for n in shape)
    known = int(np.prod([n for n in shape if n != -1]))
    if shape.count(-1) > 1 or builtins.any(n < -1 for n in shape) or \
            (-1 not in shape and known != x.size) or (-1 in shape and (known == 0 or x.size % known)):
        raise ValueError(f"{op}: cannot reshape a tensor of shape {x.shape} ({x.size} elements) to {shape}")
    return Reshape(shape)(x)


def flatten(x, start_dim=0, end_dim=-1):
    checks.tensor(x, "input", "flatten")
    start = checks.dim(start_dim, x.ndim, "start_dim", "flatten")
    end = checks.dim(end_dim, x.ndim, "end_dim", "flatten")
    if x.ndim == 0:
        return reshape(x, 1)
    if start > end:
        raise ValueError(f"flatten: start_dim must not come after end_dim, got {start_dim} and {end_dim}")
    # the flattened length as a product, not -1: reshape cannot infer -1 beside a 0 (an empty batch)
    return reshape(x, x.shape[:start] + (int(np.prod(x.shape[start:end + 1], dtype=np.int64)),) + x.shape[end + 1:])


def permute(x, *dims):
    checks.tensor(x, "input", "permute")
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != x.ndim or sorted(normalize_dims(dims, x.ndim, "dims", "permute")) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} must be an ordering of all {x.ndim} axes")
    return Permute(tuple(d % x.ndim for d in dims))(x)


def transpose(x, dim0, dim1):
    checks.tensor(x, "input", "transpose")
    dims = list(range(x.ndim))
    a, b = checks.dim(dim0, x.ndim, "dim0", "transpose"), checks.dim(dim1, x.ndim, "dim1", "transpose")
    if x.ndim:                        # a 0-d tensor (dims 0 or -1, checked): nothing to swap
        dims[a], dims[b] = dims[b], dims[a]
    return Permute(tuple(dims))(x)


class Cat(Function):
    """y = concatenation along ``dim``;  each input gets its slice of g."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs]
        return backend.get_array_module(*xs).concatenate(xs, axis=self.dim)

    def backward(self, g):
        xp = backend.get_array_module(g)
        bounds = np.cumsum(self.sizes)[:-1]
        return tuple(xp.split(g, bounds, axis=self.dim))


class Stack(Function):
    """y = inputs stacked along a new axis ``dim``;  input i gets g[..., i, ...]."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        return backend.get_array_module(*xs).stack(xs, axis=self.dim)

    def backward(self, g):
        xp = backend.get_array_module(g)
        return tuple(xp.moveaxis(g, self.dim, 0))


def _check_same_shapes(tensors, skip_dim, name):
    if len(tensors) == 0:
        raise ValueError(f"{name} needs at least one tensor")
    first = tensors[0].shape
    for i, t in enumerate(tensors):
        if len(t.shape) != len(first) or builtins.any(
                a != b for d, (a, b) in enumerate(zip(t.shape, first)) if d != skip_dim):
            raise ValueError(f"{name}: tensor {i} has shape {t.shape}, incompatible with tensor 0's "
                             f"shape {first} (all axes except dim={skip_dim} must match)")


def _one_dtype(tensors, op):
    """The tensors cast to one dtype for ``cat`` and ``stack``: PyTorch's promotion among them
    (a float32 and an int64 tensor give float32, not NumPy's float64); each gradient goes back
    in its own tensor's dtype."""
    dtype = None
    for t in tensors:
        with checks.naming(op):
            dtype = _promote(dtype, t.dtype)
    return [t if t.dtype == dtype else astype(t, dtype) for t in tensors]


def cat(tensors, dim=0):
    """Concatenate along an existing axis, like ``torch.cat`` (mixed dtypes promote as there)."""
    tensors = checks.tensor_sequence(tensors, "tensors", "cat")
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    if tensors[0].ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated (use stack)")
    d = checks.dim(dim, tensors[0].ndim, "dim", "cat")
    _check_same_shapes(tensors, d, "cat")
    return Cat(d)(*_one_dtype(tensors, "cat"))


def stack(tensors, dim=0):
    """Stack along a new axis, like ``torch.stack`` (mixed dtypes promote as there)."""
    tensors = checks.tensor_sequence(tensors, "tensors", "stack")
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    _check_same_shapes(tensors, None, "stack")
    d = checks.dim(dim, tensors[0].ndim + 1, "dim", "stack")
    return Stack(d)(*_one_dtype(tensors, "stack"))


class EmptyBatch(Function):
    """An op applied to a batch of no images (N = 0): an empty output of the op's
    shape, and a zero gradient for every input (a weight's gradient is a sum over
    no images), as PyTorch returns them."""

    def __init__(self, out_shape, stands_for=None):
        self.out_shape = out_shape
        self.stands_for = stands_for        # the op's Function class, for summary's receptive fields

    def forward(self, *arrays):
        present = [a for a in arrays if a is not None]
        self.inputs_like = [None if a is None else (a.shape, a.dtype) for a in arrays]
        return backend.get_array_module(*present).zeros(self.out_shape, dtype=present[0].dtype)

    def backward(self, g):
        xp = backend.get_array_module(g)
        return tuple(None if like is None else xp.zeros(*like) for like in self.inputs_like)


def empty_batch(out_shape, *inputs, stands_for=None):
    """The result of an op whose batch is empty: see ``EmptyBatch``. The ops whose
    arithmetic assumes at least one image (convolutions, unpooling) call this instead;
    ``stands_for`` names the op's Function class (``minisegnet.summary`` reads it)."""
    return EmptyBatch(tuple(out_shape), stands_for)(*inputs)
