"""Values an op saved for its backward, changed in place before it: PyTorch's version check.

An op saves arrays in its forward pass for its backward (``Mul`` keeps each operand for the
other's gradient). If one of them is changed in place before the backward runs (``w -= lr *
w.grad`` inside ``no_grad()`` too early, an optimizer's step), the backward would read the new
values and compute a wrong gradient without a word. PyTorch keeps a version counter on every
tensor, shared by its views, to refuse that; this module is the same rule, written with a clock:
``mark_written`` states it. ``autograd`` calls it: ``Tensor``'s in-place operators and
``__setitem__`` stamp what they write, every recorded ``Function`` notes ``writes`` as its
``recorded_at``, and ``Tensor.backward`` calls ``check_unchanged`` before a node's backward when
anything was written since that node ran.
"""
import weakref

from . import backend

__all__ = ["mark_written", "check_unchanged"]

writes = 0          # a clock: the in-place writes into tensors so far
_written = {}       # id of a written array's memory owner -> (weak reference to it, the clock at its last write)


def mark_written(t):
    """Record that ``t``'s values were just changed in place (``x -= y`` or ``x[i] = y`` in
    ``no_grad()``, an optimizer's step, an ``nn.init`` function, ``load_state_dict``).

    The rule, as PyTorch's: an op's backward must not run on saved values that were changed
    after its forward. A clock, ``writes``, counts the in-place writes; each write stamps the
    memory it wrote, that is the array owning it (``_memory_owner``: a view's base, so ``w[0]``,
    ``w.reshape(...)`` and ``w.detach()`` stamp ``w``'s memory, as PyTorch's views share their
    base's version counter), and each recorded op notes the clock when it runs
    (``Function.recorded_at``). Before an op's backward, if memory stamped after the op was
    recorded holds an array the op saved, ``backward`` raises instead of computing a wrong
    gradient. An ordinary training step never looks: the optimizer writes after the backward,
    and the next forward is recorded after that. Not seen: writes through ``.data`` (PyTorch
    does not track those either). The owners are referenced weakly: a stamp goes with its
    memory."""
    global writes
    writes += 1
    owner = _memory_owner(t.data)
    key = id(owner)
    ref = _written.get(key, (None,))[0]
    if ref is None or ref() is not owner:           # new, or another array now at that id
        ref = weakref.ref(owner, lambda _, key=key: _written.pop(key, None))
    _written[key] = (ref, writes)


def _memory_owner(array):
    """The array at the root of ``array``'s chain of views (itself if it owns its memory)."""
    while isinstance(array.base, type(array)):
        array = array.base
    return array


def check_unchanged(fn):
    """``mark_written``'s rule for ``fn``, about to run its backward: memory written after ``fn``
    was recorded that holds an array ``fn`` saved is an error. The written tensor need not be an
    input of ``fn`` (a view of a weight saved by a later op, ``w.reshape(...)`` or ``w[0]``, shares
    its memory); an op that saved nothing of it (an addition) is unaffected, as in PyTorch."""
    for owner_ref, written_at in list(_written.values()):
        owner = owner_ref()
        if owner is not None and written_at > fn.recorded_at and _saves(fn, owner):
            raise RuntimeError(
                f"backward: {type(fn).__name__}'s backward needs values it saved in the forward pass, but "
                f"the memory holding them (an array of shape {tuple(owner.shape)}, a tensor or a view of it) was "
                "changed in place since (x -= ... inside no_grad(), an optimizer's step(), load_state_dict); "
                "PyTorch raises here too (\"modified by an inplace operation\"). Change it after backward(), or "
                "compute the loss again after the change")


def _saves(fn, array):
    """Whether an array ``fn`` keeps for its backward (an attribute, or one inside a tuple, list
    or dict) may share memory with ``array``."""
    xp = backend.get_array_module(array)
    pending = list(vars(fn).values())
    while pending:
        value = pending.pop()
        if isinstance(value, (tuple, list)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, type(array)) and xp.may_share_memory(value, array):
            return True
    return False
