"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules (poly, cosine, step).

Each optimizer follows ``torch.optim``'s update rule, operation for
operation, so a model trained here and one trained in PyTorch from the same
weights and gradients take the same steps, up to float rounding: PyTorch's
CPU kernels fuse some multiply-adds into one rounding (SGD's ``p - lr * g``)
where NumPy rounds the product and the sum apart, so a float32 step can
differ in its last bit (the tests hold float64 steps to PyTorch's within
1e-10 relative). float16 parameters are updated in float16, every NumPy
operation rounding, where PyTorch's kernels compute some in float32 and round
once: after five Adam steps a few percent of the values differ from PyTorch's,
some by many float16 steps (and in both, Adam's ``eps`` of 1e-8 is 0 in
float16, so a value whose moments are 0 steps to inf); train in float32.
Updates happen **in place** on ``p.data`` (the backend array), outside the
autograd graph, on whichever backend the parameters live on. Parameters whose
``.grad`` is ``None`` are skipped, as in PyTorch.

We keep one parameter group (all parameters share the hyper-parameters); the
current learning rate is the attribute ``opt.lr``, which the schedules set.
Differences from ``torch.optim``, each an error rather than a silent change:
no ``param_groups`` (a list of dicts is refused), ``step()`` takes no closure,
and the schedules take no ``last_epoch`` argument (resume with
``load_state_dict``) and their ``step()`` no epoch. One silent difference: a
schedule sets the lr from its own formula, not by multiplying the current lr
(``LRScheduler``), so it does not chain with another schedule or a change by hand.

``state_dict()`` returns a flat dict of NumPy arrays (``"lr"``,
``"state.3.exp_avg"``, ...) so it can go straight into an ``.npz`` checkpoint
(``msn.save``); ``load_state_dict`` puts it back, onto the parameters' backend.
"""
import math
import numbers
from collections.abc import Mapping

import numpy as np

from . import backend, checks
from .autograd import Tensor
from .saved_values import mark_written
from .nn.module import clear_grads

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "PolynomialLR", "PolyLR", "CosineAnnealingLR", "StepLR"]


_TORCH_DEFAULTS = dict(amsgrad=False, maximize=False, foreach=None, capturable=False, differentiable=False,
                      fused=None)


def _only_defaults(op, **given):
    """torch's variants of an update (AMSGrad, maximizing) and its speed switches are accepted
    off, so that torch's calls run here: at their defaults, or False (``foreach=False``,
    ``amsgrad=0``: PyTorch takes any false value); any other value is refused, by name."""
    for name, value in given.items():
        default = _TORCH_DEFAULTS[name]
        off = value is default or (isinstance(value, (numbers.Number, np.bool_)) and value == 0)
        if not off:
            raise NotImplementedError(f"{op}: {name}={value!r} is not implemented here; only off is accepted "
                                      f"(PyTorch's default {name}={default!r}, or False)")


def _check(op, name, value, low=0.0, high=None, high_open=False):
    """``value`` as a float, or an error naming ``op`` (the optimizer's or schedule's class), ``name`` and the rule."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{op}: {name} must be a finite number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{op}: {name} must be a finite number, got {value!r}")
    if value < low or (high is not None and (value >= high if high_open else value > high)):
        rule = f">= {low}" + ("" if high is None else f" and {'<' if high_open else '<='} {high}")
        raise ValueError(f"{op}: {name} must be {rule}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: holds the parameter list, the hyper-parameters and per-parameter state.

    Subclasses define ``_update(i, p, grad)`` (one parameter), list their
    hyper-parameter names in ``hyperparameters`` and state-array names in
    ``state_names``, and check and set the hyper-parameters in
    ``_set_hyperparameters``, which ``load_state_dict`` calls too (a loaded
    state obeys the constructor's rules); a name in ``optional_hyperparameters``
    may be missing from a loaded state (one saved before it existed) and then
    keeps its value.

    One parameter group: no ``param_groups``, and ``params`` is a flat iterable
    of Parameters (torch's list of dicts is a TypeError); ``step()`` takes no
    closure (a NotImplementedError): compute the loss and call ``backward``
    before it.
    """

    hyperparameters = ("lr",)
    optional_hyperparameters = ()
    state_names = ()

    def __init__(self, params):
        """Check and keep ``params``; each subclass then sets its hyper-parameters
        through ``_set_hyperparameters``."""
        op = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{op}: params must be an iterable of Tensors (e.g. model.parameters()), "
                            "got a single Tensor")
        if not hasattr(params, "__iter__"):     # e.g. a Module passed instead of module.parameters()
            raise TypeError(f"{op}: params must be an iterable of Tensors (e.g. model.parameters()), "
                            f"got {type(params).__name__}")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{op}: got an empty parameter list (an already used generator gives nothing: "
                             f"pass model.parameters(), a list, or a fresh generator)")
        for i, p in enumerate(self.params):
            if isinstance(p, Mapping):
                raise TypeError(f"{op}: params[{i}] is a dict: parameter groups are not supported (one group; "
                                "every parameter shares the hyper-parameters), pass the Parameters themselves")
            if not isinstance(p, Tensor):
                raise TypeError(f"{op}: params[{i}] is a {type(p).__name__}, not a Tensor/Parameter")
            if not getattr(getattr(p.data, "flags", None), "writeable", True):      # NumPy's flag (CuPy has none)
                raise ValueError(f"{op}: params[{i}] holds a read-only array, and a step updates parameters in "
                                 f"place; make the parameter from a writeable copy (array.copy())")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{op}: some parameters appear more than once in params")
        self.state = [dict() for _ in self.params]  # per parameter: name -> array (or step count)

    def _set_hyperparameters(self, op, lr):
        """Check and set the hyper-parameters (``hyperparameters``): the constructor's rules, also
        for ``load_state_dict``; ``op`` names the caller in the messages."""
        self.lr = _check(op, "lr", lr)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients before the next backward: set ``.grad = None`` (the
        default, as PyTorch's), or with ``set_to_none=False`` make each existing one
        zeros (a new zero array; PyTorch zeroes the tensor in place): see
        ``Module.zero_grad``. A parameter whose gradient is zeros is still updated
        by ``step`` (weight decay, momentum), one whose gradient is None is not."""
        clear_grads(self.params, set_to_none)

    def step(self, closure=None):
        """One update of every parameter that has a gradient (a frozen one, whose
        ``requires_grad`` is off, has none and keeps its values). ``closure`` is there
        for torch's signature only: passing one is a NotImplementedError."""
        if closure is not None:
            raise NotImplementedError(f"{type(self).__name__}.step takes no closure here: compute the loss, "
                                      "call backward(), then step()")
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad.data if isinstance(p.grad, Tensor) else p.grad
            self._update(i, p.data, grad)
            mark_written(p)           # a graph recorded before this step can no longer walk back through p

    def _update(self, i, param, grad):
        raise NotImplementedError

    # ---- checkpoints -----------------------------------------------------------
    def state_dict(self):
        """Hyper-parameters, the number of parameters (``param_count``) and per-parameter state
        as a flat dict of NumPy arrays."""
        out = {name: np.asarray(getattr(self, name)) for name in self.hyperparameters}
        out["param_count"] = np.asarray(len(self.params))
        for i, state in enumerate(self.state):
            for key, value in state.items():
                out[f"state.{i}.{key}"] = np.array(backend.to_numpy(value))
        return out

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict()`` returned (hyper-parameters included, as PyTorch does)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{type(self).__name__}.load_state_dict: state_dict must be a dict of name -> "
                            f"array (from state_dict() or msn.load), got {type(state_dict).__name__}")
        for key, value in state_dict.items():
            dtype = np.asarray(backend.to_numpy(value)).dtype
            if dtype.kind not in "biuf":
                raise TypeError(f"{type(self).__name__}.load_state_dict: entry {key!r} holds dtype {dtype}, "
                                "not numbers")
        missing = [name for name in self.hyperparameters
                   if name not in state_dict and name not in self.optional_hyperparameters]
        if missing:
            raise KeyError(f"{type(self).__name__}.load_state_dict: the state_dict lacks {missing}; was it "
                           f"saved by {type(self).__name__}?")
        if "param_count" in state_dict:          # (an older state has none: its indices are checked below)
            count = np.asarray(backend.to_numpy(state_dict["param_count"]))
            if count.ndim != 0 or count.dtype.kind not in "iu":
                raise ValueError(f"{type(self).__name__}.load_state_dict: entry 'param_count' must be a count "
                                 f"(an integer >= 0), got {checks.describe(state_dict['param_count'])}")
            if int(count) != len(self.params):
                # PyTorch refuses it too: the moments would go to whichever parameters had those indices
                raise ValueError(f"{type(self).__name__}.load_state_dict: the state is of an optimizer of "
                                 f"{int(count)} parameters, this one has {len(self.params)} (a model of "
                                 f"another shape?)")
        new_state = [dict() for _ in self.params]
        for key, value in state_dict.items():
            if not key.startswith("state."):
                continue
            parts = key.split(".", 2)
            # "state.<parameter index>.<name>": an index as written by state_dict(), digits only
            # (int() would take "-1", " 1" or "1_0" and wrap or stretch them)
            if len(parts) != 3 or not parts[1].isdigit() or not parts[1].isascii() \
                    or int(parts[1]) >= len(self.params) or parts[2] not in self.state_names:
                raise KeyError(f"{type(self).__name__}.load_state_dict: entry {key!r} does not match this "
                               f"{type(self).__name__} with {len(self.params)} parameters (its entries are "
                               f"'state.<0..{len(self.params) - 1}>.<{'|'.join(self.state_names)}>')")
            i, name = int(parts[1]), parts[2]
            if name == "step":
                step = np.asarray(backend.to_numpy(value))
                if step.ndim != 0 or step.dtype.kind not in "iu" or step < 0:
                    raise ValueError(f"{type(self).__name__}.load_state_dict: entry {key!r} must be a "
                                     f"count (an integer >= 0), got {checks.describe(value)}")
                new_state[i][name] = int(step)
                continue
            target = self.params[i].data
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state {key!r} has shape "
                                 f"{tuple(value.shape)}, parameter {i} has shape {tuple(target.shape)}")
            xp = backend.get_array_module(target)
            # a device array stays on the device (a GPU optimizer's own state); a host one is uploaded.
            # Always a copy, as PyTorch's deep copy: each step() updates its state in place, which must
            # not change the dict loaded (nor another optimizer loaded from it)
            new_state[i][name] = xp.array(value if xp is not np else backend.to_numpy(value), dtype=target.dtype,
                                          copy=True)
        values = {}
        for name in self.hyperparameters:
            if name not in state_dict:                                    # optional: keep this one's
                values[name] = getattr(self, name)
                continue
            value = np.asarray(backend.to_numpy(state_dict[name]))       # an array, or a plain number
            values[name] = value.item() if value.ndim == 0 else tuple(value.tolist())
        previous = {name: getattr(self, name) for name in self.hyperparameters}
        try:
            self._set_hyperparameters(f"{type(self).__name__}.load_state_dict", **values)
        except (TypeError, ValueError):
            for name, value in previous.items():       # all or nothing: the optimizer is as it was
                setattr(self, name, value)
            raise
        self.state = new_state


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    With ``g = grad + weight_decay * p``::

        b = g                                   (first step)
        b = momentum * b + (1 - dampening) * g  (later steps)
        g = g + momentum * b  if nesterov  else  b      (when momentum != 0)
        p = p - lr * g

    Note the first step copies ``g`` into the buffer without dampening, as
    PyTorch does. Nesterov needs ``momentum > 0`` and ``dampening == 0``.
    """

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    state_names = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        _only_defaults("SGD", maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params)
        self._set_hyperparameters("SGD", lr, momentum, dampening, weight_decay, nesterov)

    def _set_hyperparameters(self, op, lr, momentum, dampening, weight_decay, nesterov):
        super()._set_hyperparameters(op, lr)
        self.momentum = _check(op, "momentum", momentum)
        self.dampening = _check(op, "dampening", dampening)
        self.weight_decay = _check(op, "weight_decay", weight_decay)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"{op}: nesterov must be True or False, got {nesterov!r}")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(f"{op}: nesterov=True requires momentum > 0 and dampening == 0, got "
                             f"momentum={momentum!r}, dampening={dampening!r}")

    def _update(self, i, param, grad):
        if self.weight_decay != 0:
            grad = grad + self.weight_decay * param
        if self.momentum != 0:
            state = self.state[i]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        param -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), as ``torch.optim.Adam``.

    With ``g = grad + weight_decay * p`` (L2 penalty folded into the gradient)
    and step count ``t``::

        m = m + (1 - beta1) * (g - m)          (= beta1 m + (1 - beta1) g)
        v = beta2 * v + (1 - beta2) * g * g
        p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The bias corrections undo the zero start of ``m`` and ``v``.
    """

    hyperparameters = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay")
    # a state_dict saved before the flag was one keeps the optimizer's own
    optional_hyperparameters = ("decoupled_weight_decay",)
    state_names = ("step", "exp_avg", "exp_avg_sq")
    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _only_defaults(type(self).__name__, amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                       capturable=capturable, differentiable=differentiable, fused=fused)
        # Adam's switch to AdamW's decay (torch 2.x); AdamW's is always on
        decoupled = checks.flag(decoupled_weight_decay, "decoupled_weight_decay", type(self).__name__)
        super().__init__(params)
        self._set_hyperparameters(type(self).__name__, lr, betas, eps, weight_decay,      # Adam or AdamW
                                  decoupled or type(self).decoupled_weight_decay)

    def _set_hyperparameters(self, op, lr, betas, eps, weight_decay, decoupled_weight_decay=None):
        super()._set_hyperparameters(op, lr)
        if decoupled_weight_decay is not None:      # a hyper-parameter, saved and restored, as PyTorch's
            self.decoupled_weight_decay = checks.flag(decoupled_weight_decay, "decoupled_weight_decay", op)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{op}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check(op, "betas[0]", betas[0], 0.0, 1.0, high_open=True),
                      _check(op, "betas[1]", betas[1], 0.0, 1.0, high_open=True))
        self.eps = _check(op, "eps", eps)
        self.weight_decay = _check(op, "weight_decay", weight_decay)

    def _update(self, i, param, grad):
        xp = backend.get_array_module(param)
        beta1, beta2 = self.betas
        state = self.state[i]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:  # AdamW: shrink the weights directly, not through the moments
                param *= 1 - self.lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)
        v *= beta2
        v += (1 - beta2) * grad * grad
        step_size = self.lr / (1 - beta1 ** t)
        denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        param -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as ``torch.optim.AdamW``:
    ``p = p * (1 - lr * weight_decay)`` before the Adam step, instead of adding
    ``weight_decay * p`` to the gradient. Default ``weight_decay=1e-2``."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused)


# ---- learning-rate schedules ---------------------------------------------------
class LRScheduler:
    """Base class, with ``torch.optim.lr_scheduler``'s protocol: construction sets
    ``last_epoch = 0`` and the lr for step 0; each ``step()`` advances one step
    (an epoch or an iteration, as you choose) and sets ``optimizer.lr``.

    Not torch's: there is no ``last_epoch`` constructor argument (a schedule
    always starts at 0; resume with ``load_state_dict``), and ``step()`` takes
    no epoch (torch's deprecated ``step(epoch)``: a NotImplementedError). Each
    step sets ``lr = lr_at(t)``, the schedule's formula of its step count and
    ``base_lr`` (the lr when it was made), so an lr changed by hand lasts until
    the next step, and two schedules on one optimizer do not combine: the last
    to step sets the lr. (PyTorch's ``step()`` multiplies the current lr by a
    factor, its "chainable" form, so there both combine.) One schedule, with
    the lr left to it, gives PyTorch's numbers."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a minisegnet Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self.optimizer.lr = self.lr_at(0)

    def lr_at(self, step):
        raise NotImplementedError

    def step(self, epoch=None):
        if epoch is not None:
            raise NotImplementedError(f"{type(self).__name__}.step takes no epoch here: each step() advances "
                                      "one step (resume with load_state_dict)")
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    @property
    def base_lrs(self):
        """``[base_lr]``: PyTorch's name, one lr per parameter group (here one group)."""
        return [self.base_lr]

    def get_last_lr(self):
        """The learning rate this schedule set at its last step, as a one-element list (as
        PyTorch; an lr changed by hand since is not it)."""
        return [self.lr_at(self.last_epoch)]

    def state_dict(self):
        return {"last_epoch": np.asarray(self.last_epoch), "base_lr": np.asarray(self.base_lr)}

    def load_state_dict(self, state_dict):
        """Restore what ``state_dict()`` returned, checked as the constructor checks (an lr the
        optimizer would refuse, or a step count of 2.7, is refused; nothing changes then)."""
        op = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{op}: state_dict must be a dict (from state_dict()), got {type(state_dict).__name__}")
        missing = [name for name in ("last_epoch", "base_lr") if name not in state_dict]
        if missing:
            raise KeyError(f"{op}: the state_dict lacks {missing}; was it saved by a schedule's state_dict()?")
        step = np.asarray(backend.to_numpy(state_dict["last_epoch"]))
        if step.ndim != 0 or step.dtype.kind not in "iu" or step < 0:
            raise ValueError(f"{op}: last_epoch must be a count (an integer >= 0), "
                             f"got {checks.describe(state_dict['last_epoch'])}")
        base_lr = np.asarray(backend.to_numpy(state_dict["base_lr"]))
        base_lr = _check(op, "base_lr", base_lr.item() if base_lr.ndim == 0 else state_dict["base_lr"])
        self.last_epoch, self.base_lr = int(step), base_lr
        self.optimizer.lr = self.lr_at(self.last_epoch)


def _check_int(op, name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{op}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class PolynomialLR(LRScheduler):
    """``lr = base_lr * (1 - min(t, total_iters) / total_iters) ** power``, as PyTorch's
    ``PolynomialLR`` (its defaults: ``total_iters=5``, ``power=1.0``, a straight line to 0)."""

    def __init__(self, optimizer, total_iters=5, power=1.0):
        self.total_iters = _check_int(type(self).__name__, "total_iters", total_iters)
        self.power = _check(type(self).__name__, "power", power)
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lr * (1 - min(step, self.total_iters) / self.total_iters) ** self.power


class PolyLR(PolynomialLR):
    """DeepLab's "poly" policy: ``PolynomialLR`` with ``power=0.9`` by default (DeepLab's
    choice; PyTorch's ``PolynomialLR`` defaults to 1.0), and ``total_iters`` given
    (usually all the iterations of a run, the schedule stepped once per iteration).
    """

    def __init__(self, optimizer, total_iters, power=0.9):
        super().__init__(optimizer, total_iters, power)


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``, as PyTorch's
    ``CosineAnnealingLR`` (closed form; after ``T_max`` the cosine continues)."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.T_max = _check_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _check("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (t // step_size)``, as PyTorch's ``StepLR``."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = _check_int("StepLR", "step_size", step_size)
        self.gamma = _check("StepLR", "gamma", gamma)
        super().__init__(optimizer)

    def lr_at(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)
