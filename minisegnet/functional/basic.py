"""Elementwise arithmetic, reductions, matmul and shape ops.

Each op is a ``Function`` subclass whose ``forward`` and ``backward`` sit
together, followed by the small function users call. Broadcasting rule for
gradients: if an operand was broadcast in the forward pass, its gradient is
summed back down to its own shape (``unbroadcast``).
"""
import builtins

import numpy as np

from .. import backend
from ..autograd import Function, Tensor

__all__ = [
    "add", "sub", "mul", "div", "pow", "neg", "matmul", "exp", "log", "sqrt", "abs",
    "sum", "mean", "max", "reshape", "flatten", "permute", "transpose", "getitem",
    "cat", "stack", "astype", "unbroadcast",
]


def raw(x):
    """The array inside a Tensor; anything else unchanged."""
    return x.data if isinstance(x, Tensor) else x


def _operands(a, b):
    """Make both operands Tensors. A Python scalar takes the dtype of the tensor
    beside it (so ``2 * x`` stays float32); NumPy arrays and scalars keep theirs."""
    def convert(x, like):
        if isinstance(x, Tensor):
            return x
        if isinstance(x, (bool, int, float)):
            xp = backend.get_array_module(like.data)
            return Tensor._wrap(xp.asarray(x, dtype=like.dtype))
        return Tensor(x)
    if isinstance(a, Tensor):
        return a, convert(b, a)
    return convert(a, b), b


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing NumPy broadcasting.

    Broadcasting copies an operand along new leading axes and along axes of
    length 1; the gradient of a copy is the sum over the copies.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


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
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = unbroadcast(g * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b;  da = g / b, db = -g * a / b**2."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = unbroadcast(g / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = unbroadcast(-g * self.a / (self.b * self.b), self.b.shape)
        return ga, gb


class Pow(Function):
    """y = a ** b;  da = g * b * a**(b-1), db = g * y * log(a) (needs a > 0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, g):
        xp = backend.get_array_module(g)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g * self.b * self.a ** (self.b - 1), self.a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(g * self.y * xp.log(self.a), self.b.shape)
        return ga, gb


class Neg(Function):
    """y = -x;  dx = -g."""

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


def add(a, b):
    return Add()(*_operands(a, b))


def sub(a, b):
    return Sub()(*_operands(a, b))


def mul(a, b):
    return Mul()(*_operands(a, b))


def div(a, b):
    return Div()(*_operands(a, b))


def pow(a, b):
    return Pow()(*_operands(a, b))


def neg(x):
    return Neg()(x)


# ---- matrix product --------------------------------------------------------------
class MatMul(Function):
    """Y = A @ B (batched, broadcasting);  dA = G @ B^T, dB = A^T @ G.

    1-D operands are promoted as ``matmul`` promotes them (a row vector on
    the left, a column on the right) so one formula serves every case.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        xp = backend.get_array_module(g)
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = xp.expand_dims(g, -1) if b.ndim == 1 else g      # column axis first,
        g2 = xp.expand_dims(g2, -2) if a.ndim == 1 else g2    # then the row axis
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g2 @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(xp.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b):
    a, b = _operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs operands with at least one dimension; use * for scalars")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul shapes {a.shape} and {b.shape} do not align: "
                         "the last axis of the first must equal the second-to-last of the second")
    return MatMul()(a, b)


# ---- elementwise functions --------------------------------------------------------
class Exp(Function):
    """y = exp(x);  dx = g * y."""

    def forward(self, x):
        self.y = backend.get_array_module(x).exp(x)
        return self.y

    def backward(self, g):
        return g * self.y


class Log(Function):
    """y = log(x);  dx = g / x."""

    def forward(self, x):
        self.x = x
        return backend.get_array_module(x).log(x)

    def backward(self, g):
        return g / self.x


class Sqrt(Function):
    """y = sqrt(x);  dx = g / (2 y)."""

    def forward(self, x):
        self.y = backend.get_array_module(x).sqrt(x)
        return self.y

    def backward(self, g):
        return g / (2 * self.y)


class Abs(Function):
    """y = |x|;  dx = g * sign(x) (0 at x = 0, as PyTorch)."""

    def forward(self, x):
        self.x = x
        return backend.get_array_module(x).abs(x)

    def backward(self, g):
        return g * backend.get_array_module(g).sign(self.x)


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
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def astype(x, dtype):
    return AsType(np.dtype(dtype))(x)


# ---- reductions -------------------------------------------------------------------
def normalize_dims(dim, ndim, name="dim"):
    """``dim`` (None, int or tuple) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not isinstance(d, (int, np.integer)) or not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise ValueError(f"{name}={dim!r} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={dim!r} names a dimension twice")
    return tuple(sorted(out))


def _expand_reduced(g, axes, keepdim):
    """Put the reduced axes back (as length 1) so ``g`` broadcasts against the input."""
    if keepdim:
        return g
    xp = backend.get_array_module(g)
    return xp.expand_dims(g, axes) if axes else g


class Sum(Function):
    """y = sum of x over ``axes``;  dx = g copied back along those axes."""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.shape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdim)

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
        return xp.broadcast_to(_expand_reduced(g, self.axes, self.keepdim) / self.count, self.shape)


class Max(Function):
    """y = max of x over ``axes``;  dx = g at the maxima, split evenly between ties
    (like ``torch.amax``), 0 elsewhere."""

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.axes, keepdims=True)
        return self.y if self.keepdim else self.y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, g):
        mask = (self.x == self.y).astype(g.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return _expand_reduced(g, self.axes, self.keepdim) * mask


def sum(x, dim=None, keepdim=False):
    return Sum(normalize_dims(dim, x.ndim), keepdim)(x)


def mean(x, dim=None, keepdim=False):
    return Mean(normalize_dims(dim, x.ndim), keepdim)(x)


def max(x, dim=None, keepdim=False):
    """Largest value over ``dim`` (values only, like ``torch.amax``)."""
    axes = normalize_dims(dim, x.ndim)
    if builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"max over dim={dim!r} of an empty axis (shape {x.shape})")
    return Max(axes, keepdim)(x)


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
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(n) for n in shape)
    known = int(np.prod([n for n in shape if n != -1]))
    if shape.count(-1) > 1 or builtins.any(n < -1 for n in shape) or \
            (-1 not in shape and known != x.size) or (-1 in shape and (known == 0 or x.size % known)):
        raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) to {shape}")
    return Reshape(shape)(x)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = normalize_dims(start_dim, x.ndim, "start_dim")[0], normalize_dims(end_dim, x.ndim, "end_dim")[0]
    if start > end:
        raise ValueError(f"flatten needs start_dim <= end_dim, got {start_dim} and {end_dim}")
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


def permute(x, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != x.ndim or sorted(normalize_dims(dims, x.ndim)) != list(range(x.ndim)):
        raise ValueError(f"permute dims {dims} must be an ordering of all {x.ndim} axes")
    return Permute(tuple(d % x.ndim for d in dims))(x)


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    a, b = normalize_dims(dim0, x.ndim, "dim0")[0], normalize_dims(dim1, x.ndim, "dim1")[0]
    dims[a], dims[b] = dims[b], dims[a]
    return Permute(tuple(dims))(x)


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
        return x[self.index]

    def backward(self, g):
        xp = backend.get_array_module(g)
        gx = xp.zeros(self.shape, dtype=self.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = g
        else:
            backend.scatter_add(gx, self.index, g)
        return gx


def getitem(x, index):
    if isinstance(index, tuple):
        index = tuple(raw(i) for i in index)
    else:
        index = raw(index)
    return GetItem(index)(x)


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


def cat(tensors, dim=0):
    """Concatenate along an existing axis, like ``torch.cat``."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    d = normalize_dims(dim, tensors[0].ndim)[0]
    _check_same_shapes(tensors, d, "cat")
    return Cat(d)(*tensors)


def stack(tensors, dim=0):
    """Stack along a new axis, like ``torch.stack``."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    _check_same_shapes(tensors, None, "stack")
    d = normalize_dims(dim, tensors[0].ndim + 1)[0]
    return Stack(d)(*tensors)
