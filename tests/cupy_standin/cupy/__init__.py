"""``cupy``, played on the CPU by a strict stand-in (tests only; not CuPy's code).

Real CuPy keeps its arrays in GPU memory. Code written for NumPy mostly runs
on it unchanged, but it breaks at a handful of seams, and a machine without a
GPU never shows them. This module is a fake ``cupy`` whose ``ndarray`` keeps
a *private* NumPy array (``_a``) and enforces CuPy's rules at those seams, so
the test suite can run "on the GPU" on any CPU:

* **No implicit conversion to the host.** ``np.asarray(x)``, ``np.array(x)``,
  and anything built on them (matplotlib, ``torch.from_numpy``...) raise
  CuPy's own ``TypeError``: "Implicit conversion to a NumPy array is not
  allowed. Please use `.get()` to construct a NumPy array explicitly."
  Explicit copies are ``x.get()`` and ``cupy.asnumpy(x)``.
* **No host arrays in device ops.** A NumPy array (even 0-d) or a list as an
  operand of an elementwise op or a routine raises "Unsupported type
  <class 'numpy.ndarray'>", as CuPy's kernels do. Python and NumPy *scalars*
  are fine (they travel as kernel arguments).
* **Basic-slice assignment of a host array is refused**: ``x[1:3] = host``
  goes through CuPy's ``fill`` and raises "non-scalar numpy.ndarray cannot be
  used for fill". (An *advanced* index or value is uploaded implicitly, as
  CuPy does: counted as a transfer.)
* **Reductions return 0-d device arrays**, never NumPy scalars; reading one on
  the host (``float(x)``, ``x.item()``, ``bool(x)``) is a counted download.
* **Only CuPy's namespace.** ``cupy.<name>`` exists only if CuPy documents it
  (``_names.py``); ``xp.errstate`` or ``xp.random.default_rng`` fail here as
  they fail on a GPU. ndarray methods are CuPy's (no ``__index__``,
  ``resize``, ``itemset``; ``max(initial=...)`` is not a CuPy argument).
* **``asarray`` copies** a host array into separate "device" memory: writing
  to the NumPy original afterwards changes nothing, and ``np.shares_memory``
  between a host and a device array is an error.
* **Integer-array indices wrap around** instead of raising ``IndexError``
  (CuPy's documented difference): a NumPy-only bounds error cannot be relied on.
* ``cupyx.scatter_add`` warns (deprecated in CuPy 14: use ``cupy.add.at``).

Every host-device copy and every hidden synchronisation is recorded with the
line of code that caused it (``cupy._transfers``; ``count_transfers()`` in
``tests/cupy_standin``). ``cupy.cuda`` is a stub with one device (none when
``CUDA_VISIBLE_DEVICES`` is set empty, like a machine without a GPU).

Not modelled: anything not listed above (kernels, streams that overlap, memory
pools, the ``random``, ``fft`` and ``testing`` modules...). A name CuPy has
but the stand-in lacks raises ``AttributeError`` saying exactly that, so a
gap shows up as a clear message rather than as a pass.
"""
import builtins
import sys as _sys
import weakref as _weakref

import numpy as _np

from . import _names, _transfers, cuda
from ._transfers import record as _record

__version__ = "14.2.0+cpu-standin"      # the CuPy the project asks for (pyproject)
__standin__ = True          # real CuPy has no such attribute

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
             "Please use `.get()` to construct a NumPy array explicitly.")
_SCALARS = (bool, int, float, complex, _np.generic)
# Careful: CuPy's namespace, filled in below, has its own bool, abs, all, any, max,
# min, round and sum; this module calls Python's through ``builtins``.
_DEVICE_KINDS = "biufc"     # CuPy arrays hold numbers only (no objects, strings)


_owners = _weakref.WeakValueDictionary()   # id of a NumPy array owning its memory -> its device array


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


# ---- moving between NumPy values and device arrays ----------------------------------
def _wrap(out):
    """A NumPy result as device arrays (NumPy scalars become 0-d arrays, as CuPy returns)."""
    if isinstance(out, _np.ndarray):
        return ndarray._from(out)
    if isinstance(out, _np.generic):
        return ndarray._from(_np.asarray(out))
    if isinstance(out, tuple):
        return tuple(_wrap(o) for o in out)
    if isinstance(out, list):
        return [_wrap(o) for o in out]
    return out


def _operand(x):
    """An operand of an elementwise kernel: a device array or a scalar, nothing else."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _SCALARS):
        return x
    raise _unsupported(x)


def _arg(x):
    """An argument of a routine: device arrays are unwrapped, host arrays refused."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise _unsupported(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_arg(v) for v in x)
    return x


def _check_dtype(dtype):
    if dtype is not None and _np.dtype(dtype).kind not in _DEVICE_KINDS:
        raise ValueError(f"Unsupported dtype {_np.dtype(dtype)}")


def _holds_device_arrays(obj):
    if isinstance(obj, ndarray):
        return True
    return isinstance(obj, (list, tuple)) and builtins.any(_holds_device_arrays(v) for v in obj)


def _all_device_leaves(obj):
    if isinstance(obj, (list, tuple)):
        return builtins.all(_all_device_leaves(v) for v in obj)
    return isinstance(obj, ndarray)


def _upload(obj, dtype=None, what="upload"):
    """Host data (NumPy array, nested lists, scalars) copied into a new device array."""
    if _holds_device_arrays(obj):
        # CuPy assembles a nested sequence on the device only when every leaf is a device array;
        # otherwise it hands the sequence to NumPy, which cannot read the device arrays in it.
        if not _all_device_leaves(obj):
            raise TypeError(_IMPLICIT)
        host = _np.array(_arg(obj), dtype=dtype)
    else:
        host = _np.array(obj, dtype=dtype, copy=True)
        if host.ndim:                # a number (0-d) CuPy makes by a fill kernel, its value an argument:
            _record("H2D", host.nbytes, what)        # no copy (core.array: ``if a_cpu.ndim == 0: a.fill``)
    _check_dtype(host.dtype)
    return ndarray._from(host)


# ---- the array ---------------------------------------------------------------------
class _MemoryPointer:
    """``ndarray.data``: where the buffer starts (``ptr``), as CuPy's MemoryPointer."""

    def __init__(self, a):
        self.ptr = a.__array_interface__["data"][0]
        self.device_id = 0


class _Flags:
    def __init__(self, a):
        self.c_contiguous = builtins.bool(a.flags.c_contiguous)
        self.f_contiguous = builtins.bool(a.flags.f_contiguous)
        self.owndata = builtins.bool(a.flags.owndata)

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


class ndarray:
    """A device array: ``_a`` is private; the host sees it only through ``get()``."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        _check_dtype(dtype)
        self._a = _np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _from(cls, a):
        obj = cls.__new__(cls)
        obj._a = a if isinstance(a, _np.ndarray) else _np.asarray(a)
        if obj._a.base is None:         # it owns its memory: its views' .base is this very object
            _owners[id(obj._a)] = obj
        return obj

    # -- the host boundary ---------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def get(self, stream=None, order="C", out=None, blocking=True):
        _record("D2H", self._a.nbytes, "get")
        if out is not None:
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, _np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self._a.shape or arr.dtype != self._a.dtype:
            raise ValueError("Shape or dtype mismatch")
        _record("H2D", arr.nbytes, "set")
        self._a[...] = arr

    def item(self):
        _record("D2H", self._a.itemsize, "item")
        return self._a.item()

    def tolist(self):
        _record("D2H", self._a.nbytes, "tolist")
        return self._a.tolist()

    def tobytes(self, order="C"):
        _record("D2H", self._a.nbytes, "tobytes")
        return self._a.tobytes(order)

    def __bool__(self):
        _record("D2H", self._a.itemsize, "bool()")
        return builtins.bool(self._a)

    def __int__(self):
        _record("D2H", self._a.itemsize, "int()")
        return int(self._a)

    def __float__(self):
        _record("D2H", self._a.itemsize, "float()")
        return float(self._a)

    def __complex__(self):
        _record("D2H", self._a.itemsize, "complex()")
        return complex(self._a)

    def __repr__(self):
        _record("D2H", self._a.nbytes, "repr()")
        return repr(self._a)

    def __str__(self):
        _record("D2H", self._a.nbytes, "str()")
        return str(self._a)

    def __format__(self, spec):
        _record("D2H", self._a.nbytes, "format()")
        return format(self._a, spec)

    def __reduce__(self):
        return array, (self.get(),)

    # -- NumPy's protocols: dispatch to the device implementation ------------------------
    def __array_ufunc__(self, np_ufunc, method, *inputs, **kwargs):
        mine = globals().get(np_ufunc.__name__)
        if not isinstance(mine, ufunc):
            return NotImplemented
        if "out" in kwargs:
            out = kwargs["out"]
            kwargs["out"] = out[0] if isinstance(out, tuple) else out
        for x in inputs:
            if not isinstance(x, (ndarray, _np.ndarray) + _SCALARS):
                return NotImplemented
        return (mine if method == "__call__" else getattr(mine, method))(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        namespace = {"numpy": globals(), "numpy.linalg": vars(linalg)}.get(func.__module__)
        mine = namespace.get(func.__name__) if namespace is not None else None
        if mine is None or mine is func or not builtins.all(issubclass(t, (ndarray, _np.ndarray)) for t in types):
            return NotImplemented
        return mine(*args, **kwargs)

    # -- attributes ---------------------------------------------------------------------
    @property
    def shape(self):
        return self._a.shape

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: ndarray._from(self._a.T))
    mT = property(lambda self: ndarray._from(self._a.mT))
    flags = property(lambda self: _Flags(self._a))
    data = property(lambda self: _MemoryPointer(self._a))
    device = property(lambda self: cuda.Device(0))

    @property
    def base(self):
        """The array owning this view's memory: the same object every time while it lives, as
        CuPy's (a fresh wrapper would be a different object each call)."""
        if self._a.base is None:
            return None
        owner = _owners.get(id(self._a.base))
        return owner if owner is not None and owner._a is self._a.base else ndarray._from(self._a.base)

    @property
    def real(self):
        return ndarray._from(self._a.real)

    @property
    def imag(self):
        return ndarray._from(self._a.imag)

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # -- indexing -----------------------------------------------------------------------
    def _index(self, key):
        """``key`` for the private array, and whether it is an advanced index.

        NumPy or list indices are uploaded (CuPy does so implicitly: counted);
        a boolean mask costs a download (CuPy reads the number of True values
        to size the result); integer-array indices wrap around.
        """
        parts = list(key) if isinstance(key, tuple) else [key]
        advanced = False
        for i, p in enumerate(parts):
            if isinstance(p, ndarray):
                parts[i] = p._a
            elif isinstance(p, (_np.ndarray, list, builtins.bool, _np.bool_)):
                host = _np.asarray(p)
                if host.dtype.kind not in "biu" and host.size:
                    raise IndexError("arrays used as indices must be of integer or boolean type "
                                     f"(actual: {host.dtype.type})")
                _record("H2D", host.nbytes, "index upload")
                parts[i] = host.astype(_np.int32) if host.size == 0 and isinstance(p, list) else host
            elif isinstance(p, tuple):
                raise IndexError("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis "
                                 "(`None`) and integer or boolean arrays are valid indices")
            if isinstance(parts[i], _np.ndarray):
                advanced = True
                if parts[i].dtype.kind == "b":
                    _record("D2H", 4, "boolean mask (sync)")
        return tuple(_wrap_around(parts, self._a.shape)), advanced

    def __getitem__(self, key):
        index, advanced = self._index(key)
        out = self._a[index]
        if isinstance(out, _np.generic) and not advanced:
            out = self._a[tuple(index) + (Ellipsis,)]      # an int for every axis: CuPy gives a 0-d view
        return _wrap(out)

    def __setitem__(self, key, value):
        index, advanced = self._index(key)
        if isinstance(value, ndarray):
            value = value._a
        elif not isinstance(value, _SCALARS):
            if advanced:
                value = _upload(value, what="setitem upload")._a
            else:
                # CuPy's basic-slice assignment of a non-device value calls fill().
                host = _np.asarray(value)
                if host.shape != ():
                    raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
                value = host[()]
        self._a[index] = value

    # -- methods (CuPy's signatures) ------------------------------------------------------
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        _check_dtype(dtype)
        if not copy and _np.dtype(dtype) == self._a.dtype:
            return self
        kwargs = {} if casting is None else {"casting": casting}
        return ndarray._from(self._a.astype(dtype, order=order, copy=True, **kwargs))

    def copy(self, order="C"):
        return ndarray._from(self._a.copy(order=order))

    def view(self, dtype=None, array_class=None):
        return ndarray._from(self._a.view() if dtype is None else self._a.view(dtype))

    def fill(self, value):
        if isinstance(value, ndarray):
            if value.shape != ():
                raise ValueError("non-scalar cupy.ndarray cannot be used for fill")
            value = value._a[()]
        elif _np.asarray(value).shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        self._a.fill(value)

    def reshape(self, *shape, order="C"):
        return ndarray._from(self._a.reshape(*shape, order=order))

    def transpose(self, *axes):
        return ndarray._from(self._a.transpose(*axes))

    def swapaxes(self, axis1, axis2):
        return ndarray._from(self._a.swapaxes(axis1, axis2))

    def flatten(self, order="C"):
        return ndarray._from(self._a.flatten(order))

    def ravel(self, order="C"):
        return ndarray._from(self._a.ravel(order))

    def squeeze(self, axis=None):
        return ndarray._from(self._a.squeeze(axis))

    def take(self, indices, axis=None, out=None):
        return take(self, indices, axis, out)

    def put(self, indices, values, mode="wrap"):
        index = indices._a if isinstance(indices, ndarray) else _upload(indices, what="index upload")._a
        _np.put(self._a, index, _operand(values) if isinstance(values, ndarray) else values, mode=mode)

    def repeat(self, repeats, axis=None):
        return ndarray._from(self._a.repeat(_arg(repeats), axis))

    def sort(self, axis=-1, kind=None):
        self._a.sort(axis=axis, kind=_sort_kind(kind))

    def argsort(self, axis=-1, kind=None):
        return ndarray._from(self._a.argsort(axis=axis, kind=_sort_kind(kind)))

    def nonzero(self):
        _record("D2H", 8, "sync (nonzero)")
        return _wrap(self._a.nonzero())

    def compress(self, condition, axis=None, out=None):
        _record("D2H", 8, "sync (compress)")
        return _wrap(self._a.compress(_arg(condition), axis))

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return ndarray._from(self._a.diagonal(offset, axis1, axis2))

    def searchsorted(self, v, side="left", sorter=None):
        return _wrap(self._a.searchsorted(_operand(v), side, _arg(sorter)))

    def dot(self, b, out=None):
        return _reduce_out(self._a.dot(_operand(b)), out)

    def conj(self):
        return ndarray._from(self._a.conj())

    conjugate = conj

    def max(self, axis=None, out=None, keepdims=False):
        return _reduce_out(self._a.max(axis=axis, keepdims=keepdims), out)

    def min(self, axis=None, out=None, keepdims=False):
        return _reduce_out(self._a.min(axis=axis, keepdims=keepdims), out)

    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        result = self._a.argmax(axis=axis, keepdims=keepdims)
        return _reduce_out(result if dtype is None else result.astype(dtype), out)

    def argmin(self, axis=None, out=None, dtype=None, keepdims=False):
        result = self._a.argmin(axis=axis, keepdims=keepdims)
        return _reduce_out(result if dtype is None else result.astype(dtype), out)

    def ptp(self, axis=None, out=None, keepdims=False):
        return _reduce_out(_np.ptp(self._a, axis=axis, keepdims=keepdims), out)

    def clip(self, min=None, max=None, out=None):
        return _reduce_out(_np.clip(self._a, _operand_or_none(min), _operand_or_none(max)), out)

    def round(self, decimals=0, out=None):
        return _reduce_out(self._a.round(decimals), out)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return _reduce_out(self._a.trace(offset, axis1, axis2, dtype), out)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return _reduce_out(self._a.sum(axis=axis, dtype=dtype, keepdims=keepdims), out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return _reduce_out(self._a.mean(axis=axis, dtype=dtype, keepdims=keepdims), out)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _reduce_out(self._a.var(axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims), out)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _reduce_out(self._a.std(axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims), out)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        return _reduce_out(self._a.prod(axis=axis, dtype=dtype, keepdims=keepdims), out)

    def cumsum(self, axis=None, dtype=None, out=None):
        return _reduce_out(self._a.cumsum(axis=axis, dtype=dtype), out)

    def cumprod(self, axis=None, dtype=None, out=None):
        return _reduce_out(self._a.cumprod(axis=axis, dtype=dtype), out)

    def all(self, axis=None, out=None, keepdims=False):
        return _reduce_out(self._a.all(axis=axis, keepdims=keepdims), out)

    def any(self, axis=None, out=None, keepdims=False):
        return _reduce_out(self._a.any(axis=axis, keepdims=keepdims), out)

    # -- operators: elementwise kernels ----------------------------------------------------
    def _binary(self, name, other, reflected=False):
        # CuPy defers to an operand that opted out of NumPy's ufuncs (a minisegnet Tensor).
        if getattr(other, "__array_ufunc__", _MISSING) is None:
            return NotImplemented
        fn = globals()[name]
        return fn(other, self) if reflected else fn(self, other)

    def _inplace(self, name, other):
        globals()[name](self, other, out=self)
        return self

    def __add__(self, other): return self._binary("add", other)
    def __radd__(self, other): return self._binary("add", other, True)
    def __iadd__(self, other): return self._inplace("add", other)
    def __sub__(self, other): return self._binary("subtract", other)
    def __rsub__(self, other): return self._binary("subtract", other, True)
    def __isub__(self, other): return self._inplace("subtract", other)
    def __mul__(self, other): return self._binary("multiply", other)
    def __rmul__(self, other): return self._binary("multiply", other, True)
    def __imul__(self, other): return self._inplace("multiply", other)
    def __truediv__(self, other): return self._binary("true_divide", other)
    def __rtruediv__(self, other): return self._binary("true_divide", other, True)
    def __itruediv__(self, other): return self._inplace("true_divide", other)
    def __floordiv__(self, other): return self._binary("floor_divide", other)
    def __rfloordiv__(self, other): return self._binary("floor_divide", other, True)
    def __ifloordiv__(self, other): return self._inplace("floor_divide", other)
    def __mod__(self, other): return self._binary("remainder", other)
    def __rmod__(self, other): return self._binary("remainder", other, True)
    def __imod__(self, other): return self._inplace("remainder", other)
    def __pow__(self, other): return self._binary("power", other)
    def __rpow__(self, other): return self._binary("power", other, True)
    def __ipow__(self, other): return self._inplace("power", other)
    def __matmul__(self, other): return self._binary("matmul", other)
    def __rmatmul__(self, other): return self._binary("matmul", other, True)
    def __and__(self, other): return self._binary("bitwise_and", other)
    def __rand__(self, other): return self._binary("bitwise_and", other, True)
    def __iand__(self, other): return self._inplace("bitwise_and", other)
    def __or__(self, other): return self._binary("bitwise_or", other)
    def __ror__(self, other): return self._binary("bitwise_or", other, True)
    def __ior__(self, other): return self._inplace("bitwise_or", other)
    def __xor__(self, other): return self._binary("bitwise_xor", other)
    def __rxor__(self, other): return self._binary("bitwise_xor", other, True)
    def __ixor__(self, other): return self._inplace("bitwise_xor", other)
    def __lshift__(self, other): return self._binary("left_shift", other)
    def __rshift__(self, other): return self._binary("right_shift", other)
    def __lt__(self, other): return self._binary("less", other)
    def __le__(self, other): return self._binary("less_equal", other)
    def __gt__(self, other): return self._binary("greater", other)
    def __ge__(self, other): return self._binary("greater_equal", other)
    def __eq__(self, other): return self._binary("equal", other)
    def __ne__(self, other): return self._binary("not_equal", other)
    def __neg__(self): return negative(self)
    def __pos__(self): return positive(self)
    def __abs__(self): return absolute(self)
    def __invert__(self): return invert(self)


_MISSING = object()


def _operand_or_none(x):
    return None if x is None else _operand(x)


def _reduce_out(result, out):
    if out is None:
        return _wrap(result)
    out._a[...] = result
    return out


def _wrap_around(parts, shape):
    """Integer-array indices taken modulo their axis length (CuPy wraps; NumPy raises)."""
    consumed = builtins.sum(p.ndim if isinstance(p, _np.ndarray) and p.dtype.kind == "b" else 1
                            for p in parts if p is not None and p is not Ellipsis)
    axis, out = 0, []
    for p in parts:
        if p is None:
            out.append(p)
            continue
        if p is Ellipsis:
            axis += len(shape) - consumed
            out.append(p)
            continue
        if isinstance(p, _np.ndarray) and p.dtype.kind == "b":
            axis += p.ndim
        else:
            if isinstance(p, _np.ndarray) and p.dtype.kind in "iu" and axis < len(shape) and shape[axis]:
                p = p % shape[axis]
            axis += 1
        out.append(p)
    return out


# ---- elementwise kernels --------------------------------------------------------------
class ufunc:
    """An elementwise kernel: device arrays and scalars in, a device array out."""

    # The dtypes each ``ufunc.at`` takes in CuPy 14.2 (its scatter kernels are CUDA atomics,
    # which exist for these alone: ``_scatter_op_single`` in cupy/_core/_routines_indexing.pyx)
    _INTS = ("int32", "int64", "uint32", "uint64")
    _AT = {"add": _INTS + ("float16", "float32", "float64"), "subtract": ("int32", "uint32"),
           "maximum": _INTS + ("float32", "float64"), "minimum": _INTS + ("float32", "float64"),
           "bitwise_and": _INTS, "bitwise_or": _INTS, "bitwise_xor": _INTS}

    def __init__(self, np_ufunc):
        self._u = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout = np_ufunc.nin, np_ufunc.nout

    def __repr__(self):
        return f"<ufunc 'cupy_{self.__name__}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind"):
        operands = [_operand(a) for a in args]
        kwargs = {"casting": casting}
        if dtype is not None:
            kwargs["dtype"] = dtype
        if out is not None:
            if not isinstance(out, ndarray):
                raise TypeError(f"Output argument type must be cupy.ndarray, got {type(out)}")
            self._u(*operands, out=out._a, **kwargs)
            return out
        return _wrap(self._u(*operands, **kwargs))

    def _not_supported(self, method):
        return NotImplementedError(f"`cupy_{self.__name__}.{method}` is not supported yet")

    def at(self, a, indices, b=None):
        """Unbuffered in-place ``a[indices] op= b``: repeated indices accumulate."""
        if self.__name__ not in self._AT:
            raise self._not_supported("at")
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        if a.dtype.name not in self._AT[self.__name__]:
            raise TypeError(f"cupy.{self.__name__}.at only supports {', '.join(self._AT[self.__name__])} "
                            f"as data type")
        index, _ = a._index(indices)
        # (a host number: CuPy's scatter makes a device array of it by ``core.array(value)``, a fill
        # kernel with the number as its argument: no copy, as in ``_upload``)
        value = b._a if isinstance(b, ndarray) else (
            b if b is None or isinstance(b, _SCALARS) else _upload(b, what="setitem upload")._a)
        self._u.at(a._a, index, value)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        if self.__name__ == "add":
            return array.sum(axis, dtype, out, keepdims)
        if self.__name__ == "multiply":
            return array.prod(axis, dtype, out, keepdims)
        raise self._not_supported("reduce")

    def accumulate(self, array, axis=0, dtype=None, out=None):
        if self.__name__ == "add":
            return array.cumsum(axis, dtype, out)
        if self.__name__ == "multiply":
            return array.cumprod(axis, dtype, out)
        raise self._not_supported("accumulate")

    def outer(self, A, B):
        return _wrap(self._u.outer(_operand(A), _operand(B)))


# ---- creating arrays ---------------------------------------------------------------------
def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    _check_dtype(dtype)
    if isinstance(obj, ndarray):
        return ndarray._from(_np.array(obj._a, dtype=dtype, copy=True, order=order, ndmin=ndmin))
    out = _upload(obj, dtype)
    return ndarray._from(_np.array(out._a, copy=False, order=order, ndmin=ndmin)) if ndmin else out


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    _check_dtype(dtype)
    if isinstance(a, ndarray):
        if copy or (dtype is not None and _np.dtype(dtype) != a.dtype):
            return ndarray._from(_np.array(a._a, dtype=dtype, copy=True))
        return a
    return _upload(a, dtype)


asanyarray = asarray


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy._core.core._ndarray_base, "
                        f"got {type(a).__name__})")
    if a._a.flags.c_contiguous and (dtype is None or _np.dtype(dtype) == a.dtype):
        return a
    return ndarray._from(_np.ascontiguousarray(a._a, dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A NumPy copy of a device array (a counted download); host data unchanged."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    if out is not None:
        out[...] = a
        return out
    return _np.asarray(a, order=order)


def get_array_module(*args):
    """``cupy`` if any argument is a device array, else ``numpy``."""
    if builtins.any(isinstance(a, ndarray) for a in args):
        return _sys.modules[__name__]
    return _np


def get_default_memory_pool():
    return cuda.MemoryPool()


def take(a, indices, axis=None, out=None):
    if not isinstance(a, ndarray):
        raise _unsupported(a)
    index = indices._a if isinstance(indices, ndarray) else _upload(indices, what="index upload")._a
    size = a._a.size if axis is None else a._a.shape[axis]
    return _reduce_out(_np.take(a._a, index % size if size else index, axis=axis), out)


def _like(np_function):
    """``zeros_like`` and friends only read the prototype's shape and dtype."""
    def create(a, *args, **kwargs):
        prototype = a._a if isinstance(a, ndarray) else a
        return ndarray._from(np_function(prototype, *args, **kwargs))
    create.__name__ = np_function.__name__
    return create


def _sort_kind(kind):
    """CuPy sorts one way (``_check_kind_sort``): ``kind`` None or "stable", NumPy's others refused."""
    if kind not in (None, "stable"):
        raise ValueError(f"kind must be None or 'stable', got {kind!r}")
    return kind


# NumPy keywords CuPy's routines of these names do not take (a TypeError there)
_NUMPY_ONLY_KEYWORDS = {name: ("initial", "where") for name in ("max", "min", "amax", "amin", "sum", "prod",
                                                                 "mean", "all", "any", "nanmax", "nanmin")}
_NUMPY_ONLY_KEYWORDS.update(unique=("sorted",), sort=("stable", "order"), argsort=("stable", "order"))


def _routine(name, np_function):
    """A CuPy routine run by NumPy on the private arrays; host arrays refused."""
    host_metadata = _HOST_METADATA.get(name, ())
    synchronizes = name in _names.SYNCHRONIZING
    numpy_only = _NUMPY_ONLY_KEYWORDS.get(name, ())

    def routine(*args, **kwargs):
        for key in kwargs:
            if key in numpy_only:
                raise TypeError(f"{name}() got an unexpected keyword argument '{key}' (NumPy's, not CuPy's)")
        if name in ("sort", "argsort"):
            kwargs["kind"] = _sort_kind(kwargs.get("kind"))
        args = [a.tolist() if i in host_metadata and isinstance(a, _np.ndarray) else _arg(a)
                for i, a in enumerate(args)]
        kwargs = {k: _arg(v) for k, v in kwargs.items()}
        for _ in range(_SYNCS_PER_CALL.get(name, 1) if synchronizes else 0):
            _record("D2H", 8, f"sync ({name})")
        return _wrap(np_function(*args, **kwargs))
    routine.__name__ = routine.__qualname__ = name
    routine.__doc__ = f"cupy.{name} (stand-in: numpy.{name} on the private arrays)"
    return routine


# CuPy's bincount reads two values on the host: whether any input is negative, and the maximum.
_SYNCS_PER_CALL = {"bincount": 2}
# Positional arguments that CuPy reads on the host (sizes, split points, pad
# widths): a NumPy array there is metadata, not data to upload.
_HOST_METADATA = {"split": (1,), "array_split": (1,), "hsplit": (1,), "vsplit": (1,), "dsplit": (1,),
                  "pad": (1,), "tile": (1,), "reshape": (1,), "broadcast_to": (1,)}
# NumPy objects CuPy re-exports unchanged (types, constants, dtype helpers).
_NUMPY_ALIASES = {"dtype", "finfo", "iinfo", "promote_types", "issubdtype", "isdtype", "mintypecode",
                  "typename", "ndindex", "index_exp", "s_", "broadcast_shapes", "printoptions",
                  "get_printoptions", "set_printoptions", "iterable", "format_parser", "can_cast",
                  "result_type", "min_scalar_type", "common_type", "isscalar", "e", "euler_gamma",
                  "inf", "nan", "newaxis", "pi"}
_EXPLICIT = {"ndarray", "ufunc", "array", "asarray", "asanyarray", "ascontiguousarray", "asnumpy",
             "get_array_module", "take", "cuda", "linalg", "random", "is_available",
             "get_default_memory_pool"}


def _build_namespace():
    """Fill this module with CuPy's names that NumPy can play: ufuncs, routines, aliases."""
    space = globals()
    for name in sorted(_names.ROUTINES - _EXPLICIT):
        if not hasattr(_np, name):
            continue                        # CuPy-only (kernels, memory pools): not modelled
        target = getattr(_np, name)
        if isinstance(target, _np.ufunc):
            space[name] = ufunc(target)
        elif isinstance(target, type) or name in _NUMPY_ALIASES or not callable(target):
            if name in ("c_", "r_", "mgrid", "ogrid"):
                continue                    # index tricks that build host arrays: not modelled
            space[name] = target
        elif name.endswith("_like"):
            space[name] = _like(target)
        else:
            space[name] = _routine(name, target)


class _Namespace:
    """A sub-module (``cupy.linalg``, ``cupy.random``) limited to CuPy's documented names."""

    def __init__(self, name, names, np_module):
        self.__name__, self._names = name, names
        for n in names:
            target = getattr(np_module, n, None) if np_module is not None else None
            if callable(target):
                setattr(self, n, _routine(n, target))

    def __getattr__(self, name):
        if name in self._names:
            raise AttributeError(f"{self.__name__}.{name} exists in CuPy but the CPU stand-in does not "
                                 "model it (tests/cupy_standin)")
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def is_available():
    return cuda.is_available()


_build_namespace()
linalg = _Namespace("cupy.linalg", _names.LINALG, _np.linalg)
# cupy.random exists but draws other numbers than NumPy for the same seed;
# the stand-in models none of it (minisegnet draws from its own seeded stream).
random = _Namespace("cupy.random", _names.RANDOM, None)
# cupy.lib.stride_tricks: views with other strides (the stand-in's are views of the private array too).
lib = _Namespace("cupy.lib", frozenset(("stride_tricks",)), None)
lib.stride_tricks = _Namespace("cupy.lib.stride_tricks", _names.STRIDE_TRICKS, _np.lib.stride_tricks)


def __getattr__(name):
    if name in _names.ROUTINES:
        raise AttributeError(f"cupy.{name} exists in CuPy but the CPU stand-in does not model it "
                             "(tests/cupy_standin)")
    raise AttributeError(f"module 'cupy' has no attribute {name!r}")

