"""Tensors that remember how they were made, and the walk that differentiates them.

The whole engine in three ideas:

1. A ``Tensor`` wraps a backend array (``.data``). If it ``requires_grad``,
   every op applied to it records a ``Function`` node: the op object, which
   kept whatever its backward pass needs, plus links to its inputs.
2. A ``Function`` is a forward/backward pair on plain arrays, written side by
   side. ``forward(*arrays) -> array``; ``backward(grad_out) -> grads``, one
   per input (``None`` where an input needs no gradient). Non-tensor settings
   (stride, dim, ...) are given to the constructor.
3. ``Tensor.backward()`` sorts the recorded nodes topologically (iteratively,
   so a 1000-layer chain cannot hit Python's recursion limit) and applies the
   chain rule from the output back to the leaves.

Gradients *accumulate*: each ``backward()`` adds into ``.grad`` of the leaf
tensors, as in PyTorch; call ``zero_grad()`` on the model or the optimizer
(or set ``t.grad = None``) between steps. Only leaves (tensors not produced by
an op) receive ``.grad``; intermediate gradients are freed during the walk, and
so is what each node saved, once the walk has passed it (as in PyTorch; a graph
is walked once unless ``retain_graph=True``). The feature maps of a step are
thus gone when its backward ends, not when the next step's graph replaces it.
"""
import collections
import numbers
import warnings

import numpy as np

from . import backend, grad_mode, saved_values
from .array_data import _as_array, _preview
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .saved_values import _memory_owner, mark_written

__all__ = ["Tensor", "Function", "tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled", "inference_mode",
           "set_grad_enabled"]

class Tensor:
    """An n-dimensional array with an optional gradient.

    ``Tensor(data, requires_grad=False, dtype=None)``; see ``tensor()``.
    Attributes: ``data`` (backend array), ``grad`` (Tensor or None),
    ``requires_grad``, ``creator`` (the Function that made it, None for leaves).
    """

    # Make NumPy hand mixed expressions such as ``np.float64(2) * t`` or
    # ``array + t`` to our reflected operators instead of looping itself.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False, dtype=None):
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"Tensor: requires_grad must be True or False, got {_preview(requires_grad)}")
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: requires_grad=True needs a floating-point tensor, got dtype {self.data.dtype}"
            )
        self._requires_grad = bool(requires_grad)
        self._grad = None
        self.creator = None

    @classmethod
    def _wrap(cls, array):
        """A new leaf around an existing backend array, with no conversion or copy."""
        t = cls.__new__(cls)
        t.data = array
        t._requires_grad = False
        t._grad = None
        t.creator = None
        return t

    # ---- plain attributes -------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        """The number of elements, as NumPy's ``size``. Where we differ from PyTorch: there
        ``size()`` is a method giving the shape; here the shape is ``shape`` and the count
        is also ``numel()``."""
        return self.data.size

    @property
    def is_leaf(self):
        return self.creator is None

    @property
    def requires_grad(self):
        """Whether gradients are recorded for this tensor. Set it (``x.requires_grad = True``)
        under ``requires_grad_``'s rules, as PyTorch checks the attribute too: only a
        floating-point tensor can require gradients, and only a leaf's flag can be turned off."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, requires_grad):
        self.requires_grad_(requires_grad)

    @property
    def grad(self):
        """The gradient accumulated by ``backward`` (a Tensor of this tensor's shape and dtype),
        or None. Assigned by hand, it must be None or such a Tensor, as PyTorch checks.

        Only leaves get one: read on a computed tensor that requires grad, it is None with
        a ``UserWarning``, as PyTorch warns (PyTorch's ``retain_grad`` has no twin here)."""
        if self._grad is None and self.creator is not None and self._requires_grad:
            warnings.warn("The .grad attribute of a Tensor that is not a leaf Tensor is being accessed: "
                          "backward() fills .grad for leaves only (tensors made by the user, such as "
                          "parameters), as in PyTorch, so it is None here. minisegnet has no retain_grad(); "
                          "to see this gradient, make the tensor a leaf (.detach().requires_grad_()) and "
                          "continue the computation from it", UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, grad):
        if grad is not None:
            if not isinstance(grad, Tensor):
                raise TypeError(f"grad must be a Tensor or None (as in PyTorch), got {_preview(grad)}")
            if grad.shape != self.shape or grad.dtype != self.dtype:
                raise RuntimeError(f"assigned grad of shape {grad.shape} and dtype {grad.dtype} to a tensor of shape "
                                   f"{self.shape} and dtype {self.dtype}; they must match (as in PyTorch)")
        self._grad = grad

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        """The truth of a one-element tensor, as PyTorch's; any other is ambiguous (an error).
        (Without this, Python would take ``len``: ``tensor([False])`` would be true.)"""
        if self.data.size != 1:
            what = "no values" if self.data.size == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of Tensor with {what} is ambiguous (shape {self.shape}); "
                               f"use .any() or .all() on its array, or .item()")
        return bool(self.data.reshape(-1)[0])

    def numel(self):
        """The number of elements, as ``torch.Tensor.numel``."""
        return self.data.size

    def dim(self):
        """The number of dimensions, as ``torch.Tensor.dim`` (also ``ndim``)."""
        return self.data.ndim

    def __repr__(self):
        body = repr(backend.to_numpy(self.data)).replace("array(", "tensor(", 1)
        if self.requires_grad:
            body = body[:-1] + ", requires_grad=True)"
        return body

    def numpy(self):
        """The values as a NumPy array (copied from the GPU if needed). Also of a tensor that
        requires grad, where PyTorch asks for ``t.detach().numpy()`` (or ``numpy(force=True)``)."""
        return backend.to_numpy(self.data)

    def __float__(self):
        """``float(t)`` of a one-element tensor (``float(loss)``), as PyTorch."""
        return float(self.item())

    def __int__(self):
        """``int(t)`` of a one-element tensor, truncated toward zero, as PyTorch."""
        return int(self.item())

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise RuntimeError(f"item() needs a tensor with one element (PyTorch's error kind), this one has "
                               f"shape {self.shape}")
        return self.data.reshape(-1)[0].item()

    def detach(self):
        """The same values, cut from the graph (shares memory, needs no grad)."""
        return Tensor._wrap(self.data)

    def to_backend(self, name=None):
        """A leaf tensor on backend ``name`` (``"numpy"`` or ``"cupy"``; default: the
        current one), whatever the current backend is. Moving copies the values
        between host and device; a tensor already there keeps its array (as
        ``detach()``). ``requires_grad`` is kept."""
        t = Tensor._wrap(backend.asarray(self.data, backend=name or backend.get_backend()))
        t.requires_grad = self.requires_grad
        return t

    def zero_grad(self):
        self.grad = None

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return the tensor, as ``torch.Tensor.requires_grad_``
        (freezing a weight: ``p.requires_grad_(False)``). Only a floating-point tensor can
        require gradients (a TypeError here, PyTorch's RuntimeError there), and only a leaf's
        flag can be turned off (a computed tensor's comes from its inputs), as in PyTorch."""
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"requires_grad_: requires_grad must be True or False, got {_preview(requires_grad)}")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only a floating-point tensor can require gradients, "
                            f"got dtype {self.data.dtype}")
        if not requires_grad and self.creator is not None:
            raise RuntimeError("requires_grad_: only a leaf's requires_grad can be turned off (this tensor "
                               "was computed; use detach() for a copy cut from the graph)")
        self._requires_grad = bool(requires_grad)
        return self

    # ---- the graph walk ----------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` is the gradient of some scalar with respect to ``self``; it may
        be omitted only when ``self`` has a single element (then it is 1). A Tensor,
        an array or nested lists of numbers, of ``self``'s shape; it is taken in
        ``self``'s dtype (as PyTorch's) and, if it is on the other backend, moved to
        ``self``'s (as ``msn.tensor`` moves data; PyTorch refuses another device). As
        ``torch.Tensor.backward``, without its ``create_graph`` and ``inputs``
        (no graph of the backward pass is built).

        As in PyTorch, the walk frees what each op saved for its backward as soon
        as that op is done (the feature maps go while the walk is still running),
        so the graph can be walked once; a second ``backward`` through it is an
        error (also where no node saved anything, which PyTorch lets through).
        ``retain_graph=True`` keeps it for another walk, whose gradients add to
        these, in place: a reference to a leaf's ``.grad`` sees the sum.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input "
                "had requires_grad=True, or it was computed under no_grad()"
            )
        xp = backend.get_array_module(self.data)
        caller_grad = gradient is not None
        grad = gradient
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs the "
                    "argument `gradient` (the gradient of the final scalar with respect to it)"
                )
            grad = xp.ones_like(self.data)
        else:
            if isinstance(grad, Tensor):
                grad = grad.data
            if backend.is_array(grad) and not isinstance(grad, np.generic) and \
                    backend.get_array_module(grad) is not xp:
                # on the other device: moved to the tensor's, as msn.tensor moves its data (the
                # caller's own array, once per call; a .grad never mixes the two)
                grad = backend.to_numpy(grad) if xp is np else xp.asarray(grad)
            try:
                grad = xp.asarray(grad, dtype=self.dtype)       # in the tensor's dtype, as PyTorch's
            except (ValueError, TypeError):
                raise TypeError(f"argument `gradient` must be a Tensor or an array of numbers, "
                                f"got {_preview(gradient)}") from None
            if tuple(grad.shape) != self.shape:
                raise ValueError(f"argument `gradient` has shape {tuple(grad.shape)}, expected {self.shape}")
        handed = {}                                        # id -> the memory owner given away (kept alive)
        if caller_grad:                                    # the caller's array is theirs, not a .grad
            owner = _memory_owner(grad)
            handed[id(owner)] = owner
        if self.creator is None:
            _accumulate_leaf(self, grad, handed)
            return

        grads = {id(self.creator): grad}
        for fn in reversed(_topological_order(self.creator)):
            grad_out = grads.pop(id(fn), None)
            if grad_out is not None:
                if saved_values.writes > fn.recorded_at:    # something was written in place since fn ran:
                    saved_values.check_unchanged(fn)        # did fn save it? (saved_values.py)
                for t, g in zip(fn.inputs, _checked(fn, fn.backward(grad_out))):
                    if g is None or t is None or not t.requires_grad:
                        continue
                    if g.dtype != t.dtype:
                        g = g.astype(t.dtype)
                    if t.creator is None:
                        _accumulate_leaf(t, g, handed)
                    else:
                        key = id(t.creator)
                        grads[key] = g if key not in grads else grads[key] + g
            if not retain_graph:
                _free(fn)

    # ---- operators: thin calls into functional.basic ----------------------
    def __add__(self, other):
        return _basic.add(self, other)

    def __radd__(self, other):
        return _basic.add(other, self)

    def __sub__(self, other):
        return _basic.sub(self, other)

    def __rsub__(self, other):
        return _basic.sub(other, self)

    def __mul__(self, other):
        return _basic.mul(self, other)

    def __rmul__(self, other):
        return _basic.mul(other, self)

    def __truediv__(self, other):
        return _basic.div(self, other)

    def __rtruediv__(self, other):
        return _basic.div(other, self)

    def __pow__(self, other):
        return _basic.pow(self, other)

    def pow(self, exponent):
        """``self ** exponent``, as ``torch.Tensor.pow``."""
        return _basic.pow(self, exponent)

    def clamp(self, min=None, max=None):
        """Each value limited to ``[min, max]`` (numbers), as ``torch.Tensor.clamp``."""
        return _basic.clamp(self, min, max)

    clip = clamp

    def __rpow__(self, other):
        return _basic.pow(other, self)

    def __neg__(self):
        return _basic.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _basic.abs(self)

    def __matmul__(self, other):
        return _basic.matmul(self, other)

    def __rmatmul__(self, other):
        return _basic.matmul(other, self)

    def __getitem__(self, index):
        return _indexing.getitem(self, index)

    # ---- in place: x += y changes x's values, as in PyTorch ------------------
    def __setitem__(self, index, value):
        """``x[index] = value``: written into ``x``'s array in place, as in PyTorch, under the
        rules of ``x += y`` (below): refused while recording when either side requires grad,
        and no cast down to a lower category (PyTorch would truncate 1.5 into an integer tensor;
        refused here), nor a number out of an integer dtype's range. ``value`` is a number (written to every indexed
        element) or a Tensor or array of exactly the indexed part's shape (nothing else is
        broadcast). ``w[0] -= 1`` inside ``no_grad()`` is this after ``w[0]``'s in-place ``-=``."""
        if grad_mode.state.enabled and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
            raise RuntimeError("x[index] = y on a tensor that requires grad is not recorded by autograd here: "
                               "inside `with msn.no_grad():` it changes x in place (an update by hand)")
        _check_not_a_no_grad_view(self, "x[index] = y")
        index = _indexing.normalize_index(self, index)   # once: checked, lists as arrays, 0-d as ints
        target = self[index]
        number = isinstance(value, (numbers.Number, np.bool_))
        if number:
            value = value.item() if isinstance(value, np.generic) else value       # np.int64(300) too
            # 300 into uint8, 1e300 into float32: refused, not wrapped or made inf (PyTorch's rule)
            from .checks import fits                     # (checks imports this module)
            fits(value, self.dtype, "y", "x[index] = y")
            values = np.asarray(value)                   # (its dtype, for the category rule below)
        elif isinstance(value, Tensor) or hasattr(value, "shape"):
            values = value.data if isinstance(value, Tensor) else value
            if tuple(values.shape) != target.shape:
                raise ValueError(f"x[index] = y: y has shape {tuple(values.shape)} but x[index] has {target.shape}; "
                                 "give a number or a tensor of exactly that shape (nothing is broadcast)")
        else:
            raise TypeError(f"x[index] = y: y must be a number, a Tensor or an array, got {_preview(value)}")
        if values.dtype.kind not in "biuf":
            raise TypeError(f"x[index] = y: y must hold numbers (bool, integer or floating point), got dtype "
                            f"{values.dtype}")
        if _promotion._category(values.dtype) > _promotion._category(self.dtype):
            raise RuntimeError(f"x[index] = y: y's dtype {values.dtype} cannot be written into x's dtype {self.dtype} "
                               "without truncating (PyTorch truncates silently; cast y first if that is meant)")
        *first, last = _indexing.torch_steps(index, self.ndim)
        written = self.data
        for step in first:                               # PyTorch's order of the index's parts: basic first
            written = written[step]                      # (a view)
        # a number travels as it is (on a GPU, a kernel argument: no copy to the device)
        written[last] = value if number else backend.get_array_module(self.data).asarray(values)
        mark_written(self)

    def _in_place(self, other, op, symbol):
        """``self <symbol>= other``: the result written into ``self.data``, so every alias of
        the tensor sees it, as PyTorch's in-place operators. The autograd here records no
        in-place op: while it records, a tensor that requires grad (on either side) is
        refused. Inside ``no_grad()`` this is how an update by hand is written
        (``p -= lr * p.grad``); elsewhere write ``x = x - y``. As in PyTorch, the result
        must keep ``self``'s shape, and its dtype must cast to ``self``'s within its
        category (a float result into an integer tensor is refused)."""
        if grad_mode.state.enabled and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            raise RuntimeError(f"x {symbol}= y on a tensor that requires grad is not recorded by autograd here: "
                               f"inside `with msn.no_grad():` it changes x in place (an update by hand), "
                               f"otherwise write x = x {symbol} y")
        _check_not_a_no_grad_view(self, f"x {symbol}= y")
        with no_grad():
            result = op(self, other)
        if result.shape != self.shape:
            raise RuntimeError(f"x {symbol}= y: the result has shape {result.shape} but x has {self.shape}; "
                               f"an in-place op cannot change x's shape")
        if _promotion._category(result.dtype) > _promotion._category(self.dtype):
            raise RuntimeError(f"x {symbol}= y: the result's dtype {result.dtype} cannot be cast to x's dtype "
                               f"{self.dtype} (as in PyTorch, an in-place op never casts down to a lower "
                               f"category: float to integer, integer to bool)")
        self.data[...] = result.data
        mark_written(self)
        return self

    def __iadd__(self, other):
        return self._in_place(other, _basic.add, "+")

    def __isub__(self, other):
        return self._in_place(other, _basic.sub, "-")

    def __imul__(self, other):
        return self._in_place(other, _basic.mul, "*")

    def __itruediv__(self, other):
        return self._in_place(other, _basic.div, "/")

    def __ipow__(self, other):
        return self._in_place(other, _basic.pow, "**")

    # Comparisons give boolean tensors that carry no gradient, element by element, as in
    # PyTorch; hashing stays by identity (as PyTorch's), so tensors can live in sets and dicts.
    __hash__ = object.__hash__

    def __eq__(self, other):
        if not _comparable(other):
            return NotImplemented                       # Python then compares identities: False
        return _basic.compare(self, other, "eq")

    def __ne__(self, other):
        if not _comparable(other):
            return NotImplemented
        return _basic.compare(self, other, "ne")

    # the ordering comparisons: Python's TypeError for anything else, as PyTorch's (a list too)
    def __lt__(self, other):
        return _basic.compare(self, other, "lt") if _comparable(other) else NotImplemented

    def __le__(self, other):
        return _basic.compare(self, other, "le") if _comparable(other) else NotImplemented

    def __gt__(self, other):
        return _basic.compare(self, other, "gt") if _comparable(other) else NotImplemented

    def __ge__(self, other):
        return _basic.compare(self, other, "ge") if _comparable(other) else NotImplemented

    # bitwise operators (logical ones on masks), no gradient, as PyTorch's (functional/basic.py)
    def __invert__(self):
        return _basic.invert(self)

    def __and__(self, other):
        return _basic.bitwise(self, other, "and")

    def __or__(self, other):
        return _basic.bitwise(self, other, "or")

    def __xor__(self, other):
        return _basic.bitwise(self, other, "xor")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __iter__(self):
        """The entries along the first axis; a 0-d tensor is a TypeError, as PyTorch's (Python
        would iterate it as empty by indexing)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    # ---- methods mirroring torch.Tensor ----------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None):
        """As ``torch.Tensor.sum``; with ``dtype`` the tensor is cast to it first (and an integer
        sum, added up in int64, is given in that dtype: wrapped, as PyTorch's)."""
        total = _basic.sum(self if dtype is None else self.astype(dtype), dim, keepdim)
        return total if dtype is None or total.dtype == dtype else total.astype(dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        """As ``torch.Tensor.mean``; with ``dtype`` the tensor is cast to it first."""
        return _basic.mean(self if dtype is None else self.astype(dtype), dim, keepdim)

    def max(self, dim=None, keepdim=False):
        """As ``torch.Tensor.max``: the largest value (``dim=None``), or along one ``dim`` the
        named pair ``(values, indices)``: the first maximum's index, as ``argmax``, and the
        gradient goes to it alone (``amax`` shares it between ties, and reduces several dims)."""
        if dim is None:
            if keepdim:
                raise TypeError("max: keepdim needs a dim (as in PyTorch); use amax(dim=None, keepdim=True)")
            return _basic.max_all(self)
        return MaxResult(*_basic.max_along(self, dim, keepdim))

    def amax(self, dim=(), keepdim=False):
        """The largest values over ``dim`` (an int, a tuple, or ``()`` for all), as ``torch.amax``."""
        return _basic.max(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        """Indices of the maxima (no gradient), like ``torch.argmax``."""
        return _basic.argmax(self, dim, keepdim)

    def _reversed(self):
        """The values with their order reversed: ``-x`` for floats (exact; the gradient flows),
        ``~x = -x - 1`` for integers and booleans, where ``-x`` would wrap (an unsigned 0, the
        most negative signed value) and ``~`` cannot."""
        return -self if self.dtype.kind == "f" else Tensor._wrap(~self.data)

    def min(self, dim=None, keepdim=False):
        """As ``torch.Tensor.min``: the maximum of the order reversed, reversed back (``max``'s
        rules: with ``dim``, the named pair ``(values, indices)`` of the first minimum, which
        alone gets the gradient)."""
        if dim is None:
            if keepdim:
                raise TypeError("min: keepdim needs a dim (as in PyTorch); use amin(dim=None, keepdim=True)")
            return self._reversed().max()._reversed()
        _basic.normalize_dims(dim, self.ndim, op="min")          # its errors named min, not max
        values, indices = self._reversed().max(dim, keepdim)
        return MaxResult(values._reversed(), indices)

    def amin(self, dim=(), keepdim=False):
        """The smallest values over ``dim``, as ``torch.amin``: ``amax`` of the order reversed."""
        if dim != ():
            _basic.normalize_dims(dim, self.ndim, op="amin")     # its errors named amin, not amax
        return self._reversed().amax(dim, keepdim)._reversed()

    def argmin(self, dim=None, keepdim=False):
        """Indices of the minima (no gradient), like ``torch.argmin``: the first maximum of the
        order reversed."""
        return _basic.argmax(self.detach()._reversed(), dim, keepdim, op="argmin")

    def clone(self):
        """A copy of the values that stays in the graph (its gradient flows back), as ``torch.clone``."""
        return _basic.astype(self, self.dtype) if self.dtype.kind == "f" else Tensor._wrap(self.data.copy())

    def tolist(self):
        """The values as nested Python lists of numbers, as ``torch.Tensor.tolist``."""
        return backend.to_numpy(self.data).tolist()

    def unsqueeze(self, dim):
        """A new axis of size 1 at ``dim`` (``-ndim - 1 <= dim <= ndim``), as ``torch.unsqueeze``."""
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, (bool, np.bool_)):
            raise TypeError(f"unsqueeze: dim must be an int, got {_preview(dim)}")
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor of {self.ndim} dims "
                             f"(from {-self.ndim - 1} to {self.ndim})")
        at = int(dim) % (self.ndim + 1)
        return self.reshape(self.shape[:at] + (1,) + self.shape[at:])

    def squeeze(self, dim=None):
        """Without its axes of size 1 (``dim=None``), or without axis ``dim`` if that has size 1
        (else unchanged), as ``torch.squeeze``."""
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axis = _basic.normalize_dims(dim, self.ndim, op="squeeze")
        return self.reshape(tuple(n for a, n in enumerate(self.shape) if not (a in axis and n == 1)))

    def reshape(self, *shape):
        """``x.reshape(2, -1)`` or ``x.reshape((2, -1))``; not by keyword (PyTorch also takes
        ``shape=``), as ``view`` and ``permute`` (PyTorch's ``dims=``)."""
        return _basic.reshape(self, *shape)

    def view(self, *shape):
        """``reshape`` under PyTorch's other name. Unlike torch's ``view`` it also takes a
        non-contiguous tensor (e.g. after ``permute``), which it copies, as ``reshape``
        does; torch refuses that (its view must share memory)."""
        return _basic._reshape(self, shape, "view")

    def flatten(self, start_dim=0, end_dim=-1):
        return _basic.flatten(self, start_dim, end_dim)

    def permute(self, *dims):
        return _basic.permute(self, *dims)

    def transpose(self, dim0, dim1):
        return _basic.transpose(self, dim0, dim1)

    def exp(self):
        return _basic.exp(self)

    def log(self):
        return _basic.log(self)

    def sqrt(self):
        return _basic.sqrt(self)

    def abs(self):
        return _basic.abs(self)

    def relu(self):
        return _activation.relu(self)

    def sigmoid(self):
        return _activation.sigmoid(self)

    def tanh(self):
        return _activation.tanh(self)

    def softmax(self, dim):
        return _activation.softmax(self, dim)

    def log_softmax(self, dim):
        return _activation.log_softmax(self, dim)

    def astype(self, dtype):
        return _basic.astype(self, dtype)

    # as torch's: the tensor itself when it has the dtype already, else a cast copy (``astype``)
    def float(self):
        return _basic.cast(self, np.float32)

    def double(self):
        return _basic.cast(self, np.float64)

    def long(self):
        """int64 (a cast carries no gradient, as any integer cast), as ``torch.Tensor.long``."""
        return _basic.cast(self, np.int64)

    def int(self):
        return _basic.cast(self, np.int32)

    def bool(self):
        return _basic.cast(self, np.bool_)


MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])
"""What ``Tensor.max(dim)`` returns, as PyTorch's ``torch.return_types.max``."""


def _comparable(other):
    """Whether ``tensor == other`` compares values: a Tensor, an array or a number (else identity)."""
    return isinstance(other, (Tensor, numbers.Number)) or backend.is_array(other)


def tensor(data, *, requires_grad=False, dtype=None):
    """Make a leaf tensor: ``msn.tensor([[1., 2.], [3., 4.]], requires_grad=True)``.

    ``requires_grad`` and ``dtype`` are keyword-only, as in ``torch.tensor``.

    Python floats become float32 (the default dtype), Python ints int64;
    arrays keep their dtype unless ``dtype`` is given. Like ``torch.tensor``,
    it copies: a later change to the array (or Tensor) it was made from does
    not change it, and an optimizer updating it in place leaves that array
    alone. ``as_tensor`` shares the array instead, as ``torch.as_tensor``.
    """
    source = data.data if isinstance(data, Tensor) else data
    t = Tensor(data, requires_grad=requires_grad, dtype=dtype)
    if t.data is source or getattr(t.data, "base", None) is not None:
        t.data = t.data.copy(order="K")        # the same layout (a transposed array stays one)
    return t


def as_tensor(data, dtype=None):
    """A tensor on the same memory as the array ``data`` where it can (same backend and
    dtype), as ``torch.as_tensor``: changing one changes the other. Otherwise a copy."""
    return Tensor(data, dtype=dtype)


def _views_a_grad_input(result, inputs):
    """Whether ``result``, made with grad mode off, is a view of an input that requires grad (or
    of such a view): PyTorch refuses to write such a view in place once grad mode is on again."""
    owner = _memory_owner(result)
    return owner is not result and any(
        x is not None and (x.requires_grad or getattr(x, "_no_grad_view", False)) and _memory_owner(x.data) is owner
        for x in inputs)


def _check_not_a_no_grad_view(t, what):
    if grad_mode.state.enabled and getattr(t, "_no_grad_view", False):
        raise RuntimeError(f"{what}: x is a view of a tensor that requires grad, made inside no_grad(), and grad "
                           f"mode is on now: refused, as PyTorch refuses it (write it inside no_grad(), or write "
                           f"into x.clone())")


def _accumulate_leaf(t, g, handed):
    """``t.grad += g``, as PyTorch: into the leaf's ``.grad`` array in place once it has one (a
    reference to ``.grad`` sees the sum), else ``.grad`` becomes ``g``. ``handed``: the memory
    (``_memory_owner``, by id) this walk has already given away, to another leaf or as the caller's
    ``gradient``. ``g`` is copied first where keeping it would let one ``.grad`` change another
    array: memory handed already (an addition passes one array to both operands, a reshape a
    view of it), or memory that ``g`` cannot be written through alone (a ``broadcast_to`` view,
    whose elements are one value, read-only on NumPy)."""
    if t.grad is not None:
        current = t.grad.data
        if current.shape == g.shape and current.dtype == g.dtype and _writable_alone(current):
            current += g
            mark_written(t.grad)                    # (a graph that saved this .grad would see the change)
        else:                                       # a .grad set by hand that cannot take it in place
            t.grad = Tensor._wrap(current + g)
        return
    if id(_memory_owner(g)) in handed or not _writable_alone(g):
        g = g.copy()
    owner = _memory_owner(g)
    handed[id(owner)] = owner       # held, so that no other array takes its id during the walk
    t.grad = Tensor._wrap(g)


def _writable_alone(a):
    """Whether an in-place write into ``a`` changes each element once: writeable, and no axis of
    more than one element with stride 0 (a broadcast, whose elements share one value)."""
    writeable = getattr(getattr(a, "flags", None), "writeable", True)
    return writeable and all(stride != 0 for stride, n in zip(a.strides, a.shape) if n > 1)


def _checked(fn, grad_inputs):
    """What ``fn.backward`` returned, as a tuple of one gradient (or None) per input of ``fn``,
    each of its input's shape: a custom Function's mistake named here, not found later as a
    wrong ``.grad``."""
    name = type(fn).__name__
    if isinstance(grad_inputs, list):
        grad_inputs = tuple(grad_inputs)
    elif not isinstance(grad_inputs, tuple):
        grad_inputs = (grad_inputs,)
    if len(grad_inputs) != len(fn.inputs):
        raise RuntimeError(f"{name}.backward returned {len(grad_inputs)} gradient(s) for its "
                           f"{len(fn.inputs)} input(s); return one per input (None for no gradient)")
    grad_inputs = tuple(g.data if isinstance(g, Tensor) else g for g in grad_inputs)   # a Tensor: its array
    for i, (t, g) in enumerate(zip(fn.inputs, grad_inputs)):
        if g is None or t is None:
            continue
        if not hasattr(g, "shape") or not hasattr(g, "dtype"):
            raise TypeError(f"{name}.backward returned {type(g).__name__} for input {i}; a gradient is an "
                            "array (or None)")
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(f"{name}.backward returned a gradient of shape {tuple(g.shape)} for input {i}, "
                               f"whose shape is {tuple(t.shape)}; a gradient has its input's shape")
    return grad_inputs


def _free(fn):
    """Drop what ``fn`` saved for its backward and its links to its inputs (a walked node)."""
    vars(fn).clear()
    fn.freed = True


def _topological_order(root):
    """Functions reachable from ``root``, each after all the Functions it consumes.

    An explicit stack replaces recursion; a node is emitted when popped for
    the second time, once everything below it has been emitted.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        fn, children_done = stack.pop()
        if children_done:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        if getattr(fn, "freed", False):
            raise RuntimeError(f"backward through a graph a second time: {type(fn).__name__}'s saved values were "
                               "freed by an earlier backward(); pass retain_graph=True to it to walk "
                               "the graph again (the gradients then add up), or compute the forward again")
        visited.add(id(fn))
        stack.append((fn, True))
        for t in fn.inputs:
            if t is not None and t.creator is not None and id(t.creator) not in visited:
                stack.append((t.creator, False))
    return order


class _Edge:
    """What a Function keeps of an input made by another op: the link to that op,
    and the input's shape and dtype, but not its values.

    Keeping the input Tensor itself would keep every intermediate feature map
    alive until the whole graph is dropped, although most backward passes need
    few of them (ReLU keeps a mask, ``cat`` nothing); an op whose backward
    needs an input's values saves that array itself in ``forward``, as in
    PyTorch. Each Function makes exactly one output, so ``creator`` also
    identifies the tensor.
    """

    __slots__ = ("creator", "requires_grad", "shape", "dtype")

    def __init__(self, t):
        self.creator, self.requires_grad, self.shape, self.dtype = t.creator, t.requires_grad, t.shape, t.dtype

    @property
    def ndim(self):
        return len(self.shape)


class Function:
    """One differentiable op. Subclasses define ``forward`` and ``backward`` on arrays.

    ``fn(*inputs)`` accepts Tensors (or ``None`` for absent optional inputs such
    as a missing bias), runs ``forward`` on their arrays and, when gradients
    are being recorded, links the result to this node. ``backward`` may read
    ``self.needs_input_grad`` to skip gradients nobody asked for.
    """

    def __call__(self, *inputs):
        for i, x in enumerate(inputs):
            if not (x is None or isinstance(x, Tensor)):
                # The public functions check their arguments by name first; this
                # catches the rest (e.g. a Function subclass called directly).
                raise TypeError(f"{type(self).__name__}: input {i} must be a Tensor or None, got "
                                f"{type(x).__name__} {_preview(x)} (wrap arrays with msn.tensor)")
        if len(inputs) > 1:
            # NumPy and CuPy arrays in one op: a clear error here, not a library's cryptic one inside.
            backend.get_array_module(*(x.data for x in inputs if x is not None))
        if "inputs" in vars(self) or getattr(self, "freed", False):
            # its saved values belong to the node it already is in a graph: a second call would overwrite them
            raise RuntimeError(f"{type(self).__name__}: this Function object was already called and recorded in a "
                               f"graph; make a new one per call ({type(self).__name__}(...)(x)), as each keeps what "
                               "its own backward needs")
        self.needs_input_grad = tuple(x is not None and x.requires_grad for x in inputs)
        result = self.forward(*(None if x is None else x.data for x in inputs))
        if isinstance(result, np.generic):              # NumPy's scalar from a full reduction: a 0-d array,
            result = np.asarray(result)                 # as CuPy's, so that x -= 1 can write into it
        out = Tensor._wrap(result)
        if grad_mode.state.enabled and any(self.needs_input_grad):
            out._requires_grad = True
            out.creator = self
            self.recorded_at = saved_values.writes      # the clock of in-place writes (saved_values.py)
            # Leaves are kept (their .grad is filled in); of an intermediate
            # input only the link to its creator (see _Edge).
            self.inputs = tuple(x if x is None or x.creator is None else _Edge(x) for x in inputs)
        elif _views_a_grad_input(result, inputs):
            out._no_grad_view = True            # its in-place writes with grad mode on: refused, as PyTorch
        return out

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError


# Imported last: these modules define the ops and import Tensor/Function from here.
from .functional import basic as _basic  # noqa: E402
from .functional import promotion as _promotion  # noqa: E402
from .functional import indexing as _indexing  # noqa: E402
from .functional import activation as _activation  # noqa: E402
