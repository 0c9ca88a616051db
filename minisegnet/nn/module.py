"""``Module``, ``Parameter`` and the containers (``Sequential``, ``ModuleList``, ``ModuleDict``):
how layers hold weights.

A Module finds its parameters and sub-modules by looking at its own
attributes, in the order they were assigned (Python dicts keep insertion
order), so ``named_parameters()`` has a stable order and ``state_dict`` keys
read like PyTorch's: ``"down1.conv1.weight"``.
"""
from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .. import backend, checks
from ..autograd import Tensor
from ..saved_values import mark_written

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "ModuleDict"]

# While ``minisegnet.summary`` walks a model shape-only, it sets this to its
# recorder and every module call goes there instead (see summary.py).
_call_recorder = None


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: the model's keys the state lacked, and the state's
    keys the model has not (PyTorch's ``_IncompatibleKeys``)."""
    missing_keys: list
    unexpected_keys: list


class Parameter(Tensor):
    """A tensor that is a learnable weight: ``requires_grad`` is on by default.

    It uses the memory of ``data`` (a Tensor, as ``torch.nn.Parameter`` uses a
    tensor's, or an array), so an optimizer step changes that array too: pass
    ``w.copy()`` to keep ``w`` as it was."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)


def clear_grads(params, set_to_none):
    """Each parameter's ``.grad`` set to None, or (``set_to_none`` False) an existing one
    to new zeros of its shape and dtype: ``Module.zero_grad`` and ``Optimizer.zero_grad``."""
    if not isinstance(set_to_none, (bool, np.bool_)):
        raise TypeError(f"zero_grad: set_to_none must be True or False, got {set_to_none!r}")
    for p in params:
        if set_to_none or p.grad is None:
            p.grad = None
        else:
            grad = p.grad.data if isinstance(p.grad, Tensor) else p.grad
            p.grad = Tensor._wrap(backend.get_array_module(grad).zeros_like(grad))


class Module:
    """Base class of every layer and model. Subclasses set attributes in
    ``__init__`` and define ``forward``; call the module, not ``forward``."""

    training = True

    def __setattr__(self, name, value):
        """Attributes as usual, with PyTorch's two guards: a parameter's place takes a
        Parameter or None, a buffer's a Tensor or None. (Any other value there would drop it
        silently from ``parameters()``, ``state_dict()`` and an optimizer made later.) A
        parameter's place is a name that has held a Parameter, or that ``register_parameter``
        gave None (``Conv2d(..., bias=False).bias``), kept in ``_parameter_places``. Likewise a
        sub-module's place takes a Module or None (``m.conv = 5`` would drop the conv from
        ``children()``, ``parameters()`` and ``state_dict()``), and a Parameter assigned to a
        buffer's name makes it a parameter, no longer a buffer (both PyTorch's rules)."""
        if isinstance(value, Parameter):
            self._mark_parameter_place(name)
            self._forget_buffer(name)
        if value is not None:
            if isinstance(self.__dict__.get(name), Module) and not isinstance(value, Module):
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} of "
                                f"{type(self).__name__} (a Module or None, as in PyTorch)")
            if name in self.__dict__.get("_parameter_places", ()) and not isinstance(value, Parameter):
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} of "
                                f"{type(self).__name__} (a Parameter or None, as in PyTorch): wrap it, "
                                f"nn.Parameter(...), or change the values in place, {name}.data[...] = ...")
            if name in self.__dict__.get("_buffers", ()) and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} of "
                                f"{type(self).__name__} (a Tensor or None, as in PyTorch): wrap it, msn.tensor(...)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        """As PyTorch's: deleting a buffer or a parameter unregisters it, and its name is free
        again (for a plain attribute, a buffer, a parameter)."""
        object.__delattr__(self, name)
        self._forget_buffer(name)
        places = self.__dict__.get("_parameter_places", ())
        if name in places:
            object.__setattr__(self, "_parameter_places", tuple(p for p in places if p != name))

    def _forget_buffer(self, name):
        """``name`` no longer a buffer (if it was one)."""
        if name in self.__dict__.get("_buffers", ()):
            object.__setattr__(self, "_buffers", tuple(b for b in self._buffers if b != name))
            object.__setattr__(self, "_non_persistent_buffers",
                               set(self.__dict__.get("_non_persistent_buffers", ())) - {name})

    def _mark_parameter_place(self, name):
        """Remember ``name`` as a parameter's place (the guard above keeps it one)."""
        places = self.__dict__.get("_parameter_places", ())
        if name not in places:
            object.__setattr__(self, "_parameter_places", places + (name,))

    def __call__(self, *args, **kwargs):
        if _call_recorder is not None:
            return _call_recorder(self, args, kwargs)
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ---- walking the tree ------------------------------------------------
    def named_children(self):
        """(name, module) of each direct sub-module, in attribute order; a module held under
        two names is listed once, under its first (as PyTorch's), so ``apply`` and ``train``
        reach it once."""
        seen = set()
        for name, value in self._entries():
            if id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def _entries(self):
        """Every (name, sub-module) attribute in order, a module held under two names listed
        twice (``named_modules(remove_duplicate=False)`` and the state dict walk them all)."""
        return [(name, value) for name, value in vars(self).items() if isinstance(value, Module)]

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) pairs, this module first (name ``prefix``), then its
        children's trees depth first, in attribute order. A module reached twice
        (shared by two parents, or assigned under two names) is listed once, under
        its first name, unless ``remove_duplicate`` is False; ``memo`` is the set
        of modules already listed, as in PyTorch."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, child in self._entries():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def _named_members(self, own_members, method, prefix, recurse, remove_duplicate):
        """(name, tensor) pairs of ``own_members(module)`` over this module (and with
        ``recurse``, its sub-modules, as ``named_modules`` walks them): PyTorch's
        ``_named_members``. ``method`` names the caller in an error."""
        if not isinstance(prefix, str):
            raise TypeError(f"{method}: prefix must be a str, got {prefix!r}")
        for name, value in (("recurse", recurse), ("remove_duplicate", remove_duplicate)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{method}: {name} must be True or False, got {value!r}")
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, value in own_members(module):
                if id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    @staticmethod
    def _own_parameters(module):
        return [(name, value) for name, value in vars(module).items() if isinstance(value, Parameter)]

    @staticmethod
    def _own_buffers(module):
        named = [(name, getattr(module, name)) for name in getattr(module, "_buffers", ())]
        return [(name, value) for name, value in named if value is not None]

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, Parameter) pairs in PyTorch's order: each module's own parameters
        (in attribute order) before its children's, depth first; with
        ``recurse=False``, this module's own only. A Parameter shared by several
        modules (or a module shared by several parents) is listed once, under its
        first name, so an optimizer updates it once; with ``remove_duplicate=False``,
        under every name. Names start with ``prefix``. As PyTorch's, a generator."""
        return self._named_members(self._own_parameters, "named_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """The parameters of ``named_parameters(recurse=recurse)``, each once. Unlike
        PyTorch's (an iterator), a list: it can be walked twice and measured with ``len``."""
        return [p for _, p in self._named_members(self._own_parameters, "parameters", "", recurse, True)]

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """Non-learnable state saved with the model (e.g. BatchNorm's running mean),
        as (name, array) pairs in the order of ``named_parameters``, with the same
        keywords. A module lists its buffer attribute names in ``_buffers``; one set
        to None is not listed (nor saved), as in PyTorch."""
        return self._named_members(self._own_buffers, "named_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        """The buffers of ``named_buffers(recurse=recurse)``, each once; a list (PyTorch: an iterator)."""
        return [b for _, b in self._named_members(self._own_buffers, "buffers", "", recurse, True)]

    # ---- adding to the tree ------------------------------------------------
    def _check_new_name(self, name, method, kind):
        """A new child or buffer name: a non-empty str without '.', not already another
        attribute of this module (PyTorch's rules)."""
        if not isinstance(name, str):
            raise TypeError(f"{method}: name must be a str, got {name!r}")
        if not name or "." in name:
            raise KeyError(f"{method}: name must be non-empty and contain no '.', got {name!r}")
        if hasattr(self, name) and not (kind == "buffer" and name in getattr(self, "_buffers", ())) \
                and not (kind == "module" and isinstance(getattr(self, name), Module)) \
                and not (kind == "parameter" and isinstance(getattr(self, name), Parameter)):
            raise KeyError(f"{method}: {type(self).__name__} already has an attribute {name!r}")

    def add_module(self, name, module):
        """Add ``module`` as the child ``name`` (``setattr`` with PyTorch's checks; None leaves a
        named empty place, which lists and saves nothing). Returns None, as PyTorch's."""
        self._check_new_name(name, "add_module", "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: module must be a Module or None, got {type(module).__name__}")
        setattr(self, name, module)

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: state that is saved with the model and cast by ``to`` but not learnt
        (BatchNorm's running mean is one), a Tensor or None, as PyTorch's ``register_buffer``.
        ``persistent=False``: listed by ``buffers()`` but left out of ``state_dict``."""
        self._check_new_name(name, "register_buffer", "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: buffer {name!r} must be a Tensor or None, got "
                            f"{type(tensor).__name__} (wrap an array with msn.tensor)")
        if isinstance(tensor, Parameter):
            raise TypeError(f"register_buffer: {name!r} is a Parameter (learnable); assign it as an "
                            "attribute instead")
        persistent = checks.flag(persistent, "persistent", "register_buffer")
        if name not in getattr(self, "_buffers", ()):
            self._buffers = tuple(getattr(self, "_buffers", ())) + (name,)
        unsaved = set(getattr(self, "_non_persistent_buffers", ())) - {name}
        self._non_persistent_buffers = unsaved | ({name} if not persistent else set())
        setattr(self, name, tensor)

    def register_parameter(self, name, param):
        """Add a parameter under ``name``: a Parameter, or None (a named empty place, listed and
        saved nowhere), with PyTorch's checks (the same as assigning the attribute)."""
        self._check_new_name(name, "register_parameter", "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__} (wrap it: nn.Parameter(...))")
        self._mark_parameter_place(name)        # a parameter's place, even while it holds None
        setattr(self, name, param)

    def get_parameter(self, target):
        """The Parameter at dotted path ``target`` (``"encoder.0.conv1.weight"``), as PyTorch's."""
        return self._get_member(target, "get_parameter", Parameter, "Parameter")[2]

    def get_buffer(self, target):
        """The buffer at dotted path ``target`` (``"bn.running_mean"``), as PyTorch's."""
        module, name, buffer = self._get_member(target, "get_buffer", Tensor, "buffer")
        if name not in getattr(module, "_buffers", ()):
            raise AttributeError(f"get_buffer: {name!r} is not a buffer (in {target!r})")
        return buffer

    def _get_member(self, target, method, kind, what):
        """``(module, name, value)`` of the attribute at dotted path ``target``, a ``kind``."""
        if not isinstance(target, str):
            raise TypeError(f"{method}: target must be a dotted str, got {target!r}")
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        value = getattr(module, name, None)
        if not isinstance(value, kind):
            raise AttributeError(f"{method}: {type(module).__name__} has no {what} {name!r} (in {target!r})")
        return module, name, value

    def get_submodule(self, target):
        """The module at dotted path ``target`` (``"encoder.0.conv1"``; ``""`` is this one), as
        PyTorch's; an AttributeError names the first part that is not a module."""
        if not isinstance(target, str):
            raise TypeError(f"get_submodule: target must be a dotted str, got {target!r}")
        module = self
        for part in target.split(".") if target else ():
            child = getattr(module, part, None)
            if not isinstance(child, Module):
                what = "has no attribute" if child is None else "has an attribute that is not a Module:"
                raise AttributeError(f"get_submodule: {type(module).__name__} {what} {part!r} (in {target!r})")
            module = child
        return module

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module, children first, then on this one, and return
        this module, as PyTorch's (``model.apply(init_weights)``)."""
        if not callable(fn):
            raise TypeError(f"apply: fn must be a function of one module, got {fn!r}")
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------
    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` of every parameter (``False`` freezes the module: its
        weights get no gradient, so an optimizer leaves them as they are), as PyTorch's."""
        requires_grad = checks.flag(requires_grad, "requires_grad", "requires_grad_")
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def train(self, mode=True):
        """Set training mode (``False``: evaluation) on this module, then call each child's
        ``train(mode)``, as PyTorch does: a child that overrides ``train`` (to keep a frozen
        BatchNorm in evaluation mode, say) is asked, not bypassed."""
        if not isinstance(mode, (bool, np.bool_)):
            raise ValueError(f"train: mode must be True or False, got {mode!r}")     # PyTorch's error kind
        self.training = bool(mode)
        for child in self.children():
            child.train(bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient before the next backward: set it to None
        (the default, as PyTorch's), or with ``set_to_none=False`` make each existing
        gradient zeros. PyTorch zeroes that tensor in place; here it is a new zero
        array, as ``backward`` never adds into a gradient in place either (and some
        ops hand back read-only views as gradients)."""
        clear_grads(self.parameters(), set_to_none)

    # ---- saving ---------------------------------------------------------
    def _named_state(self):
        """(key, parameter or buffer) in PyTorch's state-dict order: per module,
        its parameters then its buffers, then its children, depth first.
        Unlike ``named_parameters``, a shared tensor appears under every name."""
        for prefix, module in self.named_modules(remove_duplicate=False):
            dot = f"{prefix}." if prefix else ""
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    yield dot + name, value
            unsaved = getattr(module, "_non_persistent_buffers", ())
            for name in getattr(module, "_buffers", ()):
                value = getattr(module, name)
                if value is not None and name not in unsaved:      # not an unset optional buffer
                    yield dot + name, value

    def state_dict(self):
        """Name -> NumPy array for every parameter and buffer (copies, on the CPU)."""
        return {name: backend.to_numpy(t.data if isinstance(t, Tensor) else t).copy()
                for name, t in self._named_state()}

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters and buffers. Missing or unexpected keys
        (when ``strict``) and shape mismatches are errors (``RuntimeError``, as PyTorch's)
        naming the key. Returns ``(missing_keys, unexpected_keys)``, as PyTorch (both empty
        after a strict load; the missing in the model's order, the unexpected in the state's).
        A buffer that a module lists in ``_optional_buffers`` may be absent (BatchNorm's
        ``num_batches_tracked``, which older PyTorch checkpoints lack): it keeps its value.

        Any numeric array is cast to the target's dtype, as torch's ``copy_`` casts (float64
        or an integer array into a float32 weight); an array that does not hold numbers
        (text, objects) is a ``TypeError``. Reading a training checkpoint is stricter: there
        an int or bool array for a float weight is a broken file and refused
        (``minisegnet.train.load_checkpoint``).

        PyTorch's ``assign=False`` keyword is not implemented: values are always
        copied into the existing arrays and cast to their dtype (``assign=True``
        would adopt the state's tensors, which torch needs for modules built on
        its "meta" device; there is no such device here)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: state_dict must be a dict of name -> array (from state_dict() "
                            f"or msn.load), got {type(state_dict).__name__}")
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"load_state_dict: strict must be True or False, got {strict!r}")
        targets = dict(self._named_state())
        optional = {f"{prefix}.{name}" if prefix else name for prefix, module in self.named_modules()
                    for name in getattr(module, "_optional_buffers", ())}
        missing = [key for key in targets if key not in state_dict and key not in optional]   # model order
        unexpected = [key for key in state_dict if key not in targets]                       # the state's
        if strict and (missing or unexpected):
            raise RuntimeError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        # Check every shape before copying anything: a failed load leaves the model as it was.
        pairs = []
        for name, value in state_dict.items():
            if name not in targets:
                continue
            target = targets[name]
            target_data = target.data if isinstance(target, Tensor) else target
            value = np.asarray(backend.to_numpy(value.data if isinstance(value, Tensor) else value))
            if value.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: key {name!r} holds dtype {value.dtype}, not numbers")
            if tuple(value.shape) != tuple(target_data.shape):          # PyTorch's kind of error
                raise RuntimeError(f"load_state_dict: key {name!r} has shape {tuple(value.shape)}, "
                                   f"the model expects {tuple(target_data.shape)}")
            pairs.append((target, target_data, value))
        for target, target_data, value in pairs:
            target_data[...] = backend.asarray(value.astype(target_data.dtype),
                                               backend="cupy" if type(target_data).__module__.startswith("cupy")
                                               else "numpy")
            if isinstance(target, Tensor):
                mark_written(target)        # as torch's copy_: a graph recorded before cannot walk back
        return IncompatibleKeys(missing, unexpected)

    def to(self, dtype):
        """Cast every parameter (and its gradient, if any) and floating buffer to ``dtype``
        (e.g. ``np.float64``), a floating-point dtype (as in PyTorch: an integer weight cannot learn)."""
        try:
            kind = np.dtype(dtype).kind
        except TypeError:
            kind = None
        if kind != "f" or np.dtype(dtype).itemsize > 8:                 # (not NumPy's long double)
            hint = (" (the device is chosen by the backend: msn.set_backend('cupy'))"
                    if isinstance(dtype, str) and dtype.lower().startswith(("cpu", "cuda", "gpu")) else "")
            raise TypeError(f"Module.to: dtype must be a floating-point dtype such as np.float32, got "
                            f"{dtype!r}{hint}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:                 # the gradient is cast too, as in PyTorch
                grad = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                p.grad = Tensor._wrap(grad.astype(dtype))
        for m in self.modules():
            for name in getattr(m, "_buffers", ()):
                buf = getattr(m, name)
                if isinstance(buf, Tensor) and buf.dtype.kind == "f":
                    buf.data = buf.data.astype(dtype)
        return self

    def float(self):
        """``to(np.float32)``, as PyTorch's ``Module.float``."""
        return self.to(np.float32)

    def double(self):
        """``to(np.float64)``, as PyTorch's ``Module.double``."""
        return self.to(np.float64)

    def extra_repr(self):
        return ""

    def __repr__(self):
        children = self._entries()           # a module held under two names shown under both, as PyTorch's
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            lines.append("  (" + name + "): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters are registered (named "0", "1", ...).

    As PyTorch's: indexing (negative too), slices (a new ``ModuleList``), ``len`` and
    iteration count every entry, a module held twice included; ``l[i] = m`` replaces an
    entry; ``del l[i]`` and ``pop(i)`` remove one and renumber the rest; ``+`` joins and
    ``+=`` extends.
    """

    def __init__(self, modules=None):
        for m in modules or ():
            self.append(m)

    def _checked(self, m, where):
        if not isinstance(m, Module):
            raise TypeError(f"{type(self).__name__} holds Modules, got a {type(m).__name__} {where}")
        return m

    def _name_at(self, i):
        """The name of entry ``i`` (an int, negative from the end), with PyTorch's IndexError."""
        entries = self._entries()
        if not checks.is_int(i):
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, got {i!r}")
        if not -len(entries) <= i < len(entries):
            raise IndexError(f"{type(self).__name__}: index {i} is out of range for {len(entries)} modules")
        return entries[int(i)][0]

    def _renumber(self, modules):
        """Hold exactly ``modules``, named "0", "1", ... in order."""
        for name, _ in self._entries():
            delattr(self, name)
        for k, m in enumerate(modules):
            setattr(self, str(k), m)

    def extend(self, modules):
        """Append each module of ``modules`` in order, as PyTorch's ``extend``."""
        for m in modules:
            self.append(m)
        return self

    def append(self, m):
        setattr(self, str(len(self)), self._checked(m, f"as item {len(self)}"))
        return self

    def insert(self, index, module):
        """Insert ``module`` before entry ``index`` (-len <= index <= len), renumbering those
        after it, as PyTorch's ``insert`` (which returns None for a ModuleList, the
        Sequential itself for a Sequential)."""
        entries = self._entries()
        if [name for name, _ in entries] != [str(k) for k in range(len(entries))]:
            raise ValueError(f"insert: {type(self).__name__}'s modules must be named 0, 1, ... to be "
                             f"renumbered (got {[name for name, _ in entries]})")
        if not checks.is_int(index):
            raise TypeError(f"insert: index must be an int, got {index!r}")
        if not -len(entries) <= index <= len(entries):
            raise IndexError(f"insert: index {index} is out of range for {len(entries)} modules")
        modules = [m for _, m in entries]
        modules.insert(int(index), self._checked(module, "to insert"))    # negative: from the end, as a list
        self._renumber(modules)
        return self if isinstance(self, Sequential) else None

    def pop(self, index=-1):
        """Remove entry ``index`` and return it; the rest are renumbered."""
        module = self[index]
        del self[index]
        return module

    def __len__(self):
        return len(self._entries())

    def __getitem__(self, i):
        """Entry ``i``; a slice gives a new container of those entries, as in PyTorch."""
        if isinstance(i, slice):
            return ModuleList([m for _, m in self._entries()[i]])
        return getattr(self, self._name_at(i))

    def __setitem__(self, i, module):
        """Replace entry ``i`` (``model.head[-1] = nn.Conv2d(...)``); its name stays."""
        setattr(self, self._name_at(i), self._checked(module, f"as item {i}"))

    def __delitem__(self, i):
        """Remove entry ``i`` (or a slice of them); the rest are renumbered "0", "1", ..., as in PyTorch."""
        entries = self._entries()
        gone = {name for name, _ in entries[i]} if isinstance(i, slice) else {self._name_at(i)}
        self._renumber([m for name, m in entries if name not in gone])

    def __iter__(self):
        return iter([m for _, m in self._entries()])

    def __add__(self, other):
        """A new container of this one's modules, then ``other``'s."""
        return type(self)(list(self) + [self._checked(m, "to add") for m in other])

    def __iadd__(self, other):
        return self.extend(other)

    def __repr__(self):
        """As PyTorch's ``ModuleList``: a run of entries that print alike is printed once,
        ``(0-2): 3 x ReLU()``. (``Sequential`` prints each, as PyTorch's.)"""
        runs = []                                          # [first, last, text] of each run
        for k, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = k
            else:
                runs.append([k, k, text])
        if not runs:
            return f"{type(self).__name__}()"
        lines = [f"{type(self).__name__}("]
        for first, last, text in runs:
            label = f"({first}): " if first == last else f"({first}-{last}): {last - first + 1} x "
            lines.append("  " + label + text.replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"


class Sequential(ModuleList):
    """Apply modules in order. Children are named "0", "1", ... as in PyTorch, or, given one
    ``OrderedDict`` of name -> module (PyTorch's other spelling), by its names."""

    __repr__ = Module.__repr__                 # each entry under its name, as PyTorch's Sequential

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            super().__init__()
            for name, m in modules[0].items():
                if not isinstance(name, str) or not name or "." in name:
                    raise ValueError(f"Sequential: a child's name must be a non-empty string without '.', "
                                     f"got {name!r}")
                if hasattr(self, name):
                    raise ValueError(f"Sequential: a child cannot be named {name!r}, an attribute of Sequential")
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential holds Modules, got a {type(m).__name__} as {name!r}")
                setattr(self, name, m)
            return
        super().__init__(modules)

    def __getitem__(self, i):
        """Entry ``i``; a slice gives a new ``Sequential`` of those entries under their names, as in
        PyTorch (``model[:2]`` of a model built from an ``OrderedDict`` keeps ``stem``, ``act``)."""
        if isinstance(i, slice):
            return Sequential(OrderedDict(self._entries()[i]))
        return super().__getitem__(i)

    def __add__(self, other):
        _check_sequential(other)
        return Sequential(*(list(self) + list(other)))

    def __iadd__(self, other):
        _check_sequential(other)
        return self.extend(other)

    def forward(self, input):
        for m in self:
            input = m(input)
        return input


def _check_sequential(other):
    """``+`` and ``+=`` of a Sequential take another Sequential (PyTorch's rule and error kind)."""
    if not isinstance(other, Sequential):
        raise ValueError(f"Sequential: only a Sequential can be added to a Sequential, got {type(other).__name__}")


class ModuleDict(Module):
    """Sub-modules by name, in the order they were added, as ``torch.nn.ModuleDict`` (the
    heads of a multi-task model, chosen by key): ``d["semantic"]``, ``d[name] = module``
    (a new name goes last, an existing one keeps its place), ``del d[name]``, ``in``, ``len``,
    iteration over the names, ``keys``/``items``/``values``, ``pop``, ``clear`` and
    ``update`` from a mapping or from (name, module) pairs. Each entry is a child, so its
    parameters and state are saved under ``"name."``. Names follow ``add_module``'s rules (a
    non-empty str without '.', not another attribute such as ``"keys"``); the values must be
    Modules (PyTorch also takes None). No ``forward``: call the entries."""

    def __init__(self, modules=None):
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        if key not in self:
            raise KeyError(key)
        return vars(self)[key]

    def __setitem__(self, key, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict holds Modules, got a {type(module).__name__} for {key!r}")
        self.add_module(key, module)

    def __delitem__(self, key):
        if key not in self:
            raise KeyError(key)
        delattr(self, key)

    def __contains__(self, key):
        return isinstance(key, str) and isinstance(vars(self).get(key), Module)

    def __len__(self):
        return len(self._entries())

    def __iter__(self):
        return iter(self.keys())

    def keys(self):
        return [name for name, _ in self._entries()]

    def items(self):
        return self._entries()

    def values(self):
        return [m for _, m in self._entries()]

    def pop(self, key):
        """Remove the entry ``key`` and return its module."""
        module = self[key]
        del self[key]
        return module

    def clear(self):
        for key in self.keys():
            delattr(self, key)

    def update(self, modules):
        """Add or replace entries from a mapping (``dict``, ``OrderedDict``, ``ModuleDict``), in
        its order, or from an iterable of (name, module) pairs."""
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs = list(modules.items())
        elif isinstance(modules, (str, bytes, Module)) or not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleDict.update: modules must be a mapping or an iterable of (name, module) "
                            f"pairs, got {type(modules).__name__}")
        else:
            pairs = []
            for k, pair in enumerate(modules):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ValueError(f"ModuleDict.update: element {k} must be a (name, module) pair, got {pair!r}")
                pairs.append(tuple(pair))
        for key, module in pairs:
            self[key] = module
