"""Whether ops record a graph: ``no_grad`` and its kin, ``enable_grad``, ``inference_mode`` and
``set_grad_enabled``, as PyTorch's (context managers, and decorators).

One switch per thread, ``state.enabled``, as PyTorch's grad mode is per thread (one thread
evaluating inside ``no_grad`` leaves another thread's training recording): each ``Function``
call reads it (``autograd.py``) and records its node only when it is on and an input needs a
gradient. A block sets it on entry and puts the previous value back on exit, so blocks nest.
A new thread starts with it on. Evaluation and optimizer steps run inside ``no_grad()``:
nothing is kept for a backward pass.
"""
import functools
import inspect
import threading

import numpy as np

from .array_data import _preview

__all__ = ["no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "is_grad_enabled"]

class _State(threading.local):
    enabled = True          # each thread starts recording


state = _State()
"""``state.enabled``: whether this thread's ops record a graph now (False inside ``with
no_grad():``); ``Function`` reads it at each call."""


def is_grad_enabled():
    """False inside ``with no_grad():`` (in this thread)."""
    return state.enabled


class no_grad:
    """Context manager: ops inside record no graph (evaluation, optimizer steps).

    >>> with no_grad():
    ...     y = model(x)      # y.requires_grad is False, nothing is kept for backward

    As PyTorch's, also a decorator: ``@no_grad()`` (or bare ``@no_grad``) over a function runs
    it without recording. ``enable_grad``, ``inference_mode`` and ``set_grad_enabled`` are the
    same machine with another setting inside (``recording``).
    """

    recording = False                      # whether the block records a graph

    def __new__(cls, function=None):
        """``no_grad()``: the context manager; ``no_grad(f)``, the bare decorator: ``f`` wrapped."""
        self = super().__new__(cls)
        if function is None:
            return self
        if not callable(function):
            raise TypeError(f"{cls.__name__}: takes no argument (or, as the bare decorator @{cls.__name__}, "
                            f"the function to wrap), got {function!r}")
        return self(function)

    def _again(self):
        """A fresh block with this one's setting, for each call of a decorated function."""
        return type(self)()

    def __call__(self, function):
        if inspect.isgeneratorfunction(function):
            @functools.wraps(function)
            def generator(*args, **kwargs):
                # a generator's body runs at each next(), not at the call: the setting holds for
                # each step it takes, and not between them (as PyTorch's decorator does)
                inner, sent = function(*args, **kwargs), None
                while True:
                    try:
                        with self._again():
                            value = inner.send(sent)
                    except StopIteration as stop:
                        return stop.value
                    sent = yield value
            return generator

        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            with self._again():
                return function(*args, **kwargs)
        return wrapped

    def __enter__(self):
        self._previous = state.enabled
        state.enabled = self.recording
        return self

    def __exit__(self, *exc):
        state.enabled = self._previous
        return False


class enable_grad(no_grad):
    """Context manager (and decorator) that turns recording back on inside a ``no_grad`` block."""

    recording = True


class inference_mode(no_grad):
    """PyTorch's ``inference_mode`` for inference code: here ``no_grad`` (PyTorch also marks what
    it makes as inference tensors, which may not enter a graph later; here they are plain
    tensors without a graph). ``inference_mode(False)`` records, as PyTorch's does (even
    inside ``no_grad``)."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, (bool, np.bool_)):     # the bare decorator
            return no_grad.__new__(cls, mode)
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"inference_mode: mode must be True or False, got {_preview(mode)}")
        self = no_grad.__new__(cls)
        self.recording = not mode
        return self

    def _again(self):
        return inference_mode(not self.recording)


class set_grad_enabled(no_grad):
    """``set_grad_enabled(mode)``: turn graph recording on (``True``) or off at once, as a call;
    as a ``with`` block, the previous setting comes back at its end; as a decorator,
    ``@set_grad_enabled(False)``, the function runs with that setting and the setting around
    it is left as it was. As PyTorch's."""

    def __new__(cls, mode):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled: mode must be True or False, got {_preview(mode)}")
        self = object.__new__(cls)
        self.recording = bool(mode)
        self._previous, state.enabled = state.enabled, bool(mode)       # at once, as a plain call
        return self

    def __enter__(self):
        return self                        # already set when made; __exit__ restores

    def __call__(self, function):
        state.enabled = self._previous     # a decorator sets nothing until the function runs
        return super().__call__(function)

    def _again(self):
        return set_grad_enabled(self.recording)
