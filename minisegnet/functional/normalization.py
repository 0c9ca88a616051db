"""Batch normalization (Ioffe and Szegedy 2015), forward and backward side by side.

For an input x of shape (N, C, *) (usually (N, C, H, W)) each channel c is
normalised over the M = N * H * W values it has in the batch:

    mean_c = (1/M) sum x                 var_c = (1/M) sum (x - mean_c)^2   (biased)
    xhat   = (x - mean_c) / sqrt(var_c + eps)
    y      = weight_c * xhat + bias_c

Training mode uses the batch statistics above and updates the running
statistics in place, as PyTorch does, with the *unbiased* variance:

    running_mean <- (1 - momentum) * running_mean + momentum * mean_c
    running_var  <- (1 - momentum) * running_var  + momentum * var_c * M / (M - 1)

Evaluation mode uses the running statistics instead, so y is an affine
function of x and each sample is treated independently of the batch.
"""
from .. import backend, checks
from ..autograd import Function, Tensor
from .basic import empty_batch, raw
from .promotion import opmath

__all__ = ["batch_norm"]


class BatchNorm(Function):
    """y = weight * (x - mean) / sqrt(var + eps) + bias, per channel (axis 1).

    Backward with dxhat = g * weight, sums over the M values of a channel:

    * training (mean and var depend on x):
      dx = (1/M) * inv_std * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
      -- the two subtracted terms are the paths through mean and var.
    * evaluation (mean and var are constants): dx = dxhat * inv_std.
    * both: dweight = sum(g * xhat), dbias = sum(g).

    float16 is computed in float32 and each result rounded once, as PyTorch's CPU batch
    norm does (in float16 the variance of values near 400 overflows, and a channel's sum
    stops counting at 2048).
    """

    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, weight, bias):
        xp = backend.get_array_module(x)
        self.dtype, self.wide = x.dtype, opmath(x.dtype)
        if self.wide != x.dtype:                             # float16: in float32 (the docstring)
            x, weight, bias = (None if a is None else a.astype(self.wide) for a in (x, weight, bias))
        self.axes = (0,) + tuple(range(2, x.ndim))           # every axis but the channel axis
        per_channel = (1, -1) + (1,) * (x.ndim - 2)         # (C,) -> broadcastable against x
        if self.training:
            mean = x.mean(axis=self.axes)
            centred = x - mean.reshape(per_channel)
            var = (centred * centred).mean(axis=self.axes)   # biased: normalise by M
            if self.running_mean is not None:
                m = x.size // x.shape[1]
                self._update(self.running_mean, mean)
                self._update(self.running_var, var * (m / (m - 1)))
        else:
            mean, var = self.running_mean.astype(x.dtype), self.running_var.astype(x.dtype)
            centred = x - mean.reshape(per_channel)
        self.inv_std = (1.0 / xp.sqrt(var + self.eps)).reshape(per_channel).astype(x.dtype, copy=False)
        self.xhat = centred * self.inv_std
        self.weight = None if weight is None else weight.reshape(per_channel)
        y = self.xhat if weight is None else self.xhat * self.weight
        y = y if bias is None else y + bias.reshape(per_channel)
        return y.astype(self.dtype, copy=False)

    def _update(self, running, batch_value):
        # In place, so the module's buffer (and anything holding it) sees the new value; a float16
        # statistic mixed in float32 and rounded once, as PyTorch (not twice before a cancellation)
        wide = opmath(running.dtype)
        if wide != running.dtype:
            running[...] = ((1 - self.momentum) * running.astype(wide) + self.momentum * batch_value.astype(wide))
            return
        running *= 1 - self.momentum
        running += (self.momentum * batch_value).astype(running.dtype, copy=False)

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        gx = gw = gb = None
        g = g.astype(self.wide, copy=False)                  # float16: summed in float32
        if need_w:
            gw = (g * self.xhat).sum(axis=self.axes)
        if need_b:
            gb = g.sum(axis=self.axes)
        if need_x:
            dxhat = g if self.weight is None else g * self.weight
            if self.training:
                m = g.size // g.shape[1]
                per_channel = self.inv_std.shape
                sum_dxhat = dxhat.sum(axis=self.axes).reshape(per_channel)
                sum_dxhat_xhat = (dxhat * self.xhat).sum(axis=self.axes).reshape(per_channel)
                gx = (self.inv_std / m) * (m * dxhat - sum_dxhat - self.xhat * sum_dxhat_xhat)
            else:
                gx = dxhat * self.inv_std
        return tuple(None if a is None else a.astype(self.dtype, copy=False) for a in (gx, gw, gb))


def _per_channel(value, name, channels, allow_none, learnable=False):
    """``value`` as a (C,) Tensor, or None; anything else is an error naming ``name``.

    A learnable argument (weight, bias) must be a Tensor: an array would get no
    gradient. A running statistic may be an array too, but not a list, which
    would be copied and its in-place update lost.
    """
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"batch_norm: {name} is required here (evaluation mode normalises with the "
                         "running statistics)")
    if learnable:
        checks.tensor(value, name, "batch_norm")
    elif not hasattr(value, "shape"):           # a list: copied, so its in-place update would be lost
        raise TypeError(f"batch_norm: {name} must be a Tensor or an array (updated in place; a list "
                        f"would be copied and its update lost), got {checks.describe(value)}")
    t = value if isinstance(value, Tensor) else Tensor(value)
    if t.shape != (channels,):
        raise ValueError(f"batch_norm: {name} must have shape ({channels},) (one value per channel), got {t.shape}")
    if t.dtype.kind != "f":
        raise TypeError(f"batch_norm: {name} must be floating point, got dtype {t.dtype}")
    return t


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over the channel axis, like ``torch.nn.functional.batch_norm``.

    ``input``: (N, C, *), e.g. (N, C, H, W) or (N, C). ``running_mean``,
    ``running_var``: (C,) Tensors (or arrays of the input's backend), updated
    *in place* when ``training`` is true (they may then be None: batch
    statistics only). A list is refused (it would be copied and its update
    lost), and in training so is an array of the other backend (a copy would
    take the update; in evaluation it is converted).
    ``weight``, ``bias``: optional (C,) learnable scale and shift, Tensors.
    ``momentum`` in [0, 1] (the running statistics' update; PyTorch takes any
    number), ``eps`` >= 0 (> 0 when normalising by batch statistics). Returns a tensor of
    the input's shape.
    See the module docstring for the formulas.
    """
    momentum = checks.real(momentum, "momentum", "batch_norm", minimum=0, maximum=1)
    return _batch_norm(input, running_mean, running_var, weight, bias, training, float(momentum), eps)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps):
    """``batch_norm`` with ``momentum`` already checked: a number in [0, 1], or a 0-d array of the
    input's backend (``BatchNorm2d``'s cumulative average, 1 / batches seen, made on the device:
    reading the count back would stall a GPU every training step)."""
    x = checks.tensor(input, "input", "batch_norm")
    training = checks.flag(training, "training", "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must have shape (N, C, *), got shape {x.shape}")
    checks.float_tensor(x, "input", "batch_norm")
    c = x.shape[1]
    eps = checks.real(eps, "eps", "batch_norm", minimum=0)
    if training and eps == 0:
        # a constant channel (a dead ReLU's) would divide 0 by 0; PyTorch refuses it too
        raise ValueError("batch_norm: eps must be > 0 when normalising by batch statistics, got 0.0")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must be given together (or both None)")
    if training:   # updated in place: a copy onto the input's device would take the update instead
        for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
            if hasattr(stat, "shape") and backend.get_array_module(stat) is not backend.get_array_module(x):
                raise TypeError(f"batch_norm: {name} is a {backend.get_array_module(stat).__name__} array but "
                                f"input is on {backend.get_array_module(x).__name__}; training updates it in "
                                f"place, and a copy onto the input's device would take the update (pass "
                                f"running statistics of the input's backend)")
    running_mean = _per_channel(running_mean, "running_mean", c, allow_none=training)
    running_var = _per_channel(running_var, "running_var", c, allow_none=training)
    weight = _per_channel(weight, "weight", c, allow_none=True, learnable=True)
    bias = _per_channel(bias, "bias", c, allow_none=True, learnable=True)
    # one dtype for all, as PyTorch ("mixed dtype (CPU): all inputs must share same datatype") and conv2d
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"batch_norm: {name} has dtype {t.dtype} but input has dtype {x.dtype}; all must share "
                            f"one dtype (as in PyTorch; make the input in the module's dtype: "
                            f"msn.tensor(array.astype(np.{t.dtype})))")
    if training:               # updated in place below: refuse a read-only one before touching either
        for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
            flags = getattr(raw(stat), "flags", None) if stat is not None else None
            if not getattr(flags, "writeable", True):        # NumPy's flag (CuPy arrays have none)
                raise ValueError(f"batch_norm: {name} is read-only, but training updates it in place")
    if x.shape[0] == 0:       # an empty batch: an empty output, running statistics untouched (PyTorch)
        return empty_batch(x.shape, x, weight, bias)
    if training and x.size // max(c, 1) < 2:
        raise ValueError(f"batch_norm: training mode needs more than 1 value per channel, "
                         f"got input of shape {x.shape}")
    fn = BatchNorm(raw(running_mean), raw(running_var), bool(training), momentum, float(eps))
    return fn(x, weight, bias)
