"""Segmentation losses: pixel-wise cross-entropy, binary cross-entropy, soft Dice,
and the two regression losses dense heads use (mean squared error, L1).

Shapes follow PyTorch: logits are (N, C, H, W) (or (N, C), or (N, C, d1, ..., dk))
with the class axis 1, and integer targets drop that axis: (N, H, W) (or (N,),
or (N, d1, ..., dk)). Every target label must lie in [0, C) unless it equals
``ignore_index`` (the "void"/"don't care" label of VOC-style masks, often 255).

Where we differ from PyTorch: the arguments after ``weight`` (after ``target``
for ``mse_loss`` and ``l1_loss``) are keyword-only. PyTorch's functions still
take the deprecated ``size_average`` and ``reduce`` in those positions, so a
positional call written for PyTorch (``cross_entropy(x, t, None, 255)``) would
set another argument here than there; keyword-only, it is a TypeError instead.
"""
import numbers

import numpy as np

from .. import backend, checks
from ..autograd import Function, Tensor
from .activation import softmax
from .basic import astype
from .promotion import in_opmath, opmath

__all__ = ["cross_entropy", "binary_cross_entropy_with_logits", "dice_loss", "mse_loss", "l1_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _constant(value, name, op):
    """A constant argument (a target, class weights): a Tensor or an array (it gets no
    gradient, so an array loses nothing), or a list of numbers; returned as a Tensor."""
    if isinstance(value, Tensor):
        return value
    if value is None or isinstance(value, (str, bytes, numbers.Number)) or \
            not (hasattr(value, "shape") or isinstance(value, (list, tuple))):
        raise TypeError(f"{op}: {name} must be a Tensor or an array, got {checks.describe(value)}")
    try:
        return Tensor(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{op}: {name} must hold numbers, got {checks.describe(value)} ({error})") from None


def _weights(value, name, op):
    """``_constant`` for weights: a Tensor that requires grad is refused, since no gradient
    reaches a weight here (it would be silently lost; PyTorch's mse_loss and l1_loss would
    differentiate theirs)."""
    w = _constant(value, name, op)
    if w.requires_grad:
        raise ValueError(f"{op}: {name} requires grad, but it is a constant here (no gradient would reach it); "
                         f"pass {name}.detach(), or weigh the loss of reduction='none' yourself, which "
                         f"autograd differentiates")
    return w


def _check_logits_and_labels(input, target, ignore_index, name="input", op="cross_entropy", labels_checked=False):
    """Validate (N, C, *) logits against an (N, *) integer target; return both as Tensors.
    ``labels_checked``: the labels' range was checked already (``cross_entropy_of_checked_labels``)."""
    x = checks.tensor(input, name, op)
    t = _constant(target, "target", op)
    if x.ndim < 2:
        raise ValueError(f"{op}: {name} must have shape (N, C) or (N, C, H, W) (class axis 1), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point (logits), got dtype {x.dtype}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class labels, got dtype {t.dtype}")
    expected = (x.shape[0],) + x.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{op}: target has shape {t.shape}, but {name} of shape {x.shape} needs "
                         f"target of shape {expected} (the input's shape without the class axis 1)")
    checks.integer(ignore_index, "ignore_index", op, allow_none=op == "dice_loss")
    if labels_checked:
        return x, t
    labels = t.data
    c = x.shape[1]
    bad = (labels < 0) | (labels >= c)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bool(bad.any()):
        first = int(labels[bad].reshape(-1)[0])
        allowed = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(f"{op}: target contains label {first}, outside the class range [0, {c}){allowed}")
    return x, t


def _flat_target_index(labels, shape):
    """Flat indices into an (N, C, *) array of the entries [n, labels[n, ...], ...].

    One index per pixel: with them the loss gathers the target logits and the
    backward subtracts the one-hot without ever building an (N, C, *) one-hot.
    For x of shape (N, C, S) flattened, element (n, c, s) is at n*C*S + c*S + s.
    """
    xp = backend.get_array_module(labels)
    n, c = shape[0], shape[1]
    s = int(np.prod(shape[2:], dtype=np.int64))
    base = (xp.arange(n, dtype=xp.int64) * (c * s))[:, None] + xp.arange(s, dtype=xp.int64)[None, :]
    return base + labels.reshape(n, s).astype(xp.int64) * s


class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood over the class axis 1.

    Per pixel i with target class t_i and class weight w_{t_i} (1 if no weight):

        loss_i = w_{t_i} * (logsumexp_c x_{i,c} - x_{i,t_i})      (0 for ignored pixels)

    logsumexp is computed as m + log(sum exp(x - m)) with m = max_c x (no overflow).
    Reductions: 'none' -> loss_i;  'sum' -> sum_i loss_i;  'mean' -> sum_i loss_i /
    sum_i w_{t_i} over the non-ignored pixels (PyTorch's weighted mean; nan if
    every pixel is ignored, or every counted pixel's class has weight 0, as in
    PyTorch: the gradient is then 0 in the first case and NaN in the second;
    counted weights adding up to 0 otherwise, a negative weight among them, give
    +-inf, and an infinite gradient, as PyTorch's).

    Backward: d loss_i / d x_{i,c} = w_{t_i} * (softmax(x_i)_c - [c == t_i]), so
    dx = (softmax - onehot) * w_t * g / denom   (denom = sum of w_t for 'mean', else 1).

    Label smoothing ``eps`` (PyTorch's rule): the target is the mixture
    (1 - eps) * onehot(t_i) + eps / C of the one-hot and the uniform
    distribution over the C classes, each class's term carrying its own weight::

        loss_i = (1 - eps) * w_{t_i} * (lse_i - x_{i,t_i}) + (eps / C) * sum_c w_c * (lse_i - x_{i,c})

    (0 for ignored pixels; 'mean' still divides by sum_i w_{t_i}). With
    W = sum_c w_c (C without weights) its gradient is

        d loss_i / d x_{i,c} = softmax(x_i)_c * ((1 - eps) w_{t_i} + (eps / C) W)
                               - (1 - eps) w_{t_i} [c == t_i] - (eps / C) w_c,

    the first line's rule with the one-hot replaced by the weighted mixture.
    """

    def __init__(self, labels, valid, weight, reduction, label_smoothing=0.0):
        self.labels, self.valid, self.weight, self.reduction = labels, valid, weight, reduction
        self.eps = label_smoothing

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.shape = x.shape
        self.spatial = spatial = int(np.prod(x.shape[2:], dtype=np.int64))   # S (not -1: an empty batch has none)
        m = x.max(axis=1, keepdims=True)
        e = xp.exp(x - m)
        sum_e = e.sum(axis=1, keepdims=True)
        logsumexp = (m + xp.log(sum_e)).reshape(x.shape[0], spatial)          # (N, S)
        self.index = _flat_target_index(self.labels, x.shape)                  # (N, S)
        loss = logsumexp - x.reshape(-1)[self.index]
        # Per-pixel weight w_t, 0 where ignored: one array carries both rules.
        self.valid_f = self.valid.reshape(loss.shape).astype(x.dtype)           # 1, or 0 where ignored
        if self.weight is None:
            self.w_t = self.valid_f
        else:
            self.w_t = self.weight.astype(x.dtype)[self.labels.reshape(loss.shape)] * self.valid_f
        # An ignored pixel's loss is 0 by selection, not by * 0: a NaN or inf logit there would
        # make NaN * 0 = NaN and spoil the whole sum (PyTorch leaves ignored pixels out).
        valid = self.valid.reshape(loss.shape)
        loss = xp.where(valid, loss * self.w_t, 0)
        if self.eps:
            c = x.shape[1]
            w_c = xp.ones(c, dtype=x.dtype) if self.weight is None else self.weight.astype(x.dtype)
            # sum_c w_c * (lse - x_c) = W * lse - sum_c w_c x_c
            weighted_x = xp.tensordot(w_c, x.reshape(x.shape[0], c, spatial), axes=([0], [1]))  # (N, S)
            uniform = xp.where(valid, w_c.sum() * logsumexp - weighted_x, 0)
            parts = loss, uniform                          # 'mean' divides each, as PyTorch (below)
            loss = (1 - self.eps) * loss + (self.eps / c) * uniform
            self.w_c = w_c
        if self.needs_input_grad[0]:
            e /= sum_e                                                         # now softmax(x)
            self.probs = e
        if self.reduction == "none":
            return loss.reshape(self.labels.shape)
        if self.reduction == "sum":
            return loss.sum()
        self.denom = self.w_t.sum()
        # divided as PyTorch divides, without a division warning: 0/0 (every pixel ignored, or
        # every counted weight 0) is NaN; counted weights that add up to 0 (a negative weight)
        # give +-inf
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.eps:              # each part over denom, then mixed: 0/0 in the first stays NaN
                return xp.asarray((1 - self.eps) * (parts[0].sum() / self.denom)
                                  + (self.eps / x.shape[1]) * (parts[1].sum() / self.denom))
            return xp.asarray(loss.sum() / self.denom)

    def backward(self, g):
        xp = backend.get_array_module(g)
        n = self.shape[0]
        # what each pixel's loss is multiplied by on its way to the output
        if self.reduction == "none":
            scale = g.reshape(n, self.spatial)
        elif self.reduction == "sum":
            scale = g
        else:
            # 'mean' divides by denom = sum of w_t. Every pixel ignored: w_t is all 0, and so is the
            # gradient (PyTorch's too). Pixels counted, but denom 0 (all of classes weighted 0, or
            # weights adding up to 0): g/0, an inf times each weight, NaN where the weight is 0, as
            # PyTorch's (a finite one would let an optimizer step on a NaN loss).
            # Only the counted pixels': an ignored pixel's gradient stays 0 (``* valid_f`` would
            # make it inf * 0 = NaN), as PyTorch's.
            counted = self.valid_f.sum() != 0
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = xp.where(self.valid_f != 0, g / xp.where(counted, self.denom, 1), 0)
        # inf times a weight of 0 is NaN (a denominator of 0, above), without a warning
        with np.errstate(invalid="ignore"):
            coef = (scale * self.w_t).astype(self.probs.dtype, copy=False)
            pixels = (n, 1) + self.shape[2:]                   # a per-pixel array against (N, C, *)
            if self.eps:
                # the one-hot's share, and the uniform share eps / C of every class (by its weight)
                spread = ((self.eps / self.shape[1]) * scale * self.valid_f).astype(coef.dtype, copy=False)
                coef = (1 - self.eps) * coef
                gx = xp.ascontiguousarray(self.probs * (coef + spread * self.w_c.sum()).reshape(pixels))
                gx -= spread.reshape(pixels) * self.w_c.reshape((1, -1) + (1,) * (len(self.shape) - 2))
            else:
                # C order: for a non-contiguous input (e.g. interpolate's output) the product
                # keeps that layout, and reshape(-1) would then be a copy, not a view.
                gx = xp.ascontiguousarray(self.probs * coef.reshape(pixels))
            # Subtract the one-hot: one entry per pixel, all distinct, so plain
            # fancy indexing suffices (no accumulation needed).
            flat = gx.reshape(-1)
            flat[self.index] -= coef
        return gx


def _check_label_smoothing(value, op):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: label_smoothing must be a number in [0, 1], got {checks.describe(value)}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be a number in [0, 1], got {value!r}")


def _class_weights(weight, op, classes=None):
    """Optional (C,) floating-point class weights as a Tensor (None stays None). ``classes``
    is C once the input is known; without it (``nn.CrossEntropyLoss`` checks its weights when
    made) any length passes. ``op`` starts the messages."""
    if weight is None:
        return None
    w = _weights(weight, "weight", op)
    if w.ndim != 1 or (classes is not None and w.shape[0] != classes):
        raise ValueError(f"{op}: weight must have shape ({'C' if classes is None else classes},) (one weight per "
                         f"class), got {tuple(w.shape)}")
    if w.dtype.kind != "f":
        raise TypeError(f"{op}: weight must be floating point, got dtype {w.dtype}")
    return w


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Pixel-wise softmax cross-entropy, like ``torch.nn.functional.cross_entropy``.

    ``input``: logits (N, C, H, W) or (N, C) (any (N, C, *) works), float.
    ``target``: integer labels (N, H, W) or (N,), each in [0, C) or equal to
    ``ignore_index`` (those pixels contribute nothing, not even to the mean's
    denominator). ``weight``: optional (C,) class weights (a constant, no gradient).
    ``reduction``: 'mean' (weighted mean: sum w_t * loss / sum w_t), 'sum' or
    'none' (per-pixel losses of the target's shape, 0 at ignored pixels).
    ``label_smoothing`` in [0, 1]: the target becomes (1 - eps) * one-hot + eps / C
    (``CrossEntropy`` gives the formula), as PyTorch's. Class-probability targets
    are not supported.
    """
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing, labels_checked=False)


def cross_entropy_of_checked_labels(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                                    label_smoothing=0.0):
    """``cross_entropy`` for labels whose range the caller has checked (a task checks each batch's
    labels on the host before they go up). ``cross_entropy`` checks every label against
    ``[0, C)`` itself, which on a GPU reads the answer back: a sync that stalls each step until
    its forward pass has run. A label out of range here is not caught: a small negative one
    (-1) silently reads another pixel's logits; past the array NumPy raises an IndexError,
    while a GPU reads whatever lies there."""
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing, labels_checked=True)


def _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing, labels_checked):
    _check_reduction(reduction, "cross_entropy")
    _check_label_smoothing(label_smoothing, "cross_entropy")
    x, t = _check_logits_and_labels(input, target, ignore_index, labels_checked=labels_checked)
    c = x.shape[1]
    w = _class_weights(weight, "cross_entropy", c)
    w = None if w is None else w.data
    xp = backend.get_array_module(x.data, t.data, w)
    valid = t.data != ignore_index
    labels = xp.where(valid, t.data, 0)     # a safe class for ignored pixels; their weight is 0
    # float16 in float32, rounded once, as PyTorch's log-softmax
    return in_opmath(CrossEntropy(labels, valid, w, reduction, float(label_smoothing)), x)


class BinaryCrossEntropyWithLogits(Function):
    """Sigmoid + binary cross-entropy in one stable formula, elementwise.

    With sigma the logistic function, pos_weight p and weight w:

        loss = -w * (p * t * log sigma(x) + (1 - t) * log(1 - sigma(x)))
             =  w * ((1 - t) * x + (1 + (p - 1) * t) * softplus(-x))

    using log sigma(x) = -softplus(-x) and log(1 - sigma(x)) = -x - softplus(-x);
    softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|)) never overflows.

    Backward (softplus(-x)' = sigma(x) - 1):
        dx = w * ((1 - t) - (1 + (p - 1) * t) * (1 - sigma(x)))     (= w * (sigma(x) - t) for p = 1)
        dt = w * (-x + (p - 1) * softplus(-x))
    """

    def __init__(self, weight, pos_weight, reduction):
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction

    def forward(self, x, t):
        xp = backend.get_array_module(x)
        self.x, self.t = x, t
        self.softplus_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        self.log_weight = 1 if self.pos_weight is None else 1 + (self.pos_weight - 1) * t
        loss = (1 - t) * x + self.log_weight * self.softplus_neg
        if self.weight is not None:
            loss = loss * self.weight
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        with np.errstate(invalid="ignore", divide="ignore"):     # an empty batch: 0/0, NaN, as in PyTorch
            return loss.sum() / loss.size

    def backward(self, g):
        xp = backend.get_array_module(g)
        with np.errstate(invalid="ignore", divide="ignore"):     # an empty batch: nothing to scale
            scale = g if self.reduction != "mean" else g / self.x.size
        if self.weight is not None:
            scale = scale * self.weight
        gx = gt = None
        if self.needs_input_grad[0]:
            e = xp.exp(-xp.abs(self.x))
            one_minus_sigma = xp.where(self.x >= 0, e / (1 + e), 1 / (1 + e))
            gx = scale * ((1 - self.t) - self.log_weight * one_minus_sigma)
        if self.needs_input_grad[1]:
            pos = 0 if self.pos_weight is None else (self.pos_weight - 1) * self.softplus_neg
            gt = scale * (-self.x + pos)
        return gx, gt


def bce_constant(value, name, op):
    """``weight`` or ``pos_weight`` of ``binary_cross_entropy_with_logits`` (``nn.BCEWithLogitsLoss``
    checks them when made): a constant of numbers, floating point or integer (cast, as PyTorch
    promotes them)."""
    w = _weights(value, name, op)
    if w.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {name} must hold numbers (floating point or integer), got dtype {w.dtype}")
    return w


def _broadcastable_constant(value, name, shape, dtype):
    """An optional weight that must broadcast to ``shape`` without changing it."""
    if value is None:
        return None
    arr = bce_constant(value, name, "binary_cross_entropy_with_logits").data      # on the current backend
    try:
        result = np.broadcast_shapes(tuple(arr.shape), shape)
    except ValueError:
        result = None
    if result != shape:
        raise ValueError(f"binary_cross_entropy_with_logits: {name} of shape {tuple(arr.shape)} does not "
                         f"broadcast to the input's shape {shape}")
    return arr.astype(dtype, copy=False)


def _promoted(x, t):
    """Floating ``x`` and ``t`` cast to their common dtype (float32 with float64: float64), as
    PyTorch's losses promote; a cast of a tensor that needs a gradient is differentiable
    (its gradient comes back in its own dtype)."""
    common = np.result_type(x.dtype, t.dtype)
    return tuple(v if v.dtype == common else astype(v, common) if v.requires_grad
                 else Tensor._wrap(v.data.astype(common)) for v in (x, t))


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean", pos_weight=None):
    """Binary cross-entropy on logits, like ``torch.nn.functional.binary_cross_entropy_with_logits``.

    ``input``: logits of any shape; ``target``: probabilities in [0, 1] of the
    same shape (float; soft targets get a gradient too). ``weight``: optional
    per-element rescaling, broadcast to the input's shape. ``pos_weight``:
    optional weight of the positive term, broadcast along the trailing axes
    (shape (C,) for (N, C) input, (C, 1, 1) for (N, C, H, W)); p > 1 raises
    recall. 'mean' is the plain mean over all elements. An input and a target of
    different float dtypes are computed in the wider one (PyTorch 2.13 takes the
    target's dtype there, computing part in the input's; its ``mse_loss`` promotes).
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, op)
    x = checks.tensor(input, "input", op)
    t = _constant(target, "target", op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point (logits), got dtype {x.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"{op}: target has shape {t.shape}, but it must have the input's shape {x.shape}")
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: target must hold floating-point probabilities in [0, 1] (as in PyTorch), "
                        f"got dtype {t.dtype}; cast it first: target.float()")
    x, t = _promoted(x, t)
    wide = opmath(x.dtype)              # float16: computed in float32 and rounded once, as PyTorch
    w = _broadcastable_constant(weight, "weight", x.shape, wide)
    pw = _broadcastable_constant(pos_weight, "pos_weight", x.shape, wide)
    return in_opmath(BinaryCrossEntropyWithLogits(w, pw, reduction), x, t)


class KeepWhere(Function):
    """y = x where ``mask``, else 0;  dx = g where ``mask``, else 0. Selected, not multiplied by
    the mask: a NaN or infinite value where the mask is False reaches neither y nor dx
    (NaN * 0 is NaN)."""

    def __init__(self, mask):
        self.mask = mask

    def forward(self, x):
        return backend.get_array_module(x).where(self.mask, x, 0)

    def backward(self, g):
        return backend.get_array_module(g).where(self.mask, g, 0)


def dice_loss(logits, target, smooth=1.0, ignore_index=None):
    """Soft multi-class Dice loss (Milletari et al. 2016, V-Net; multi-class as in
    Sudre et al. 2017), computed over the whole batch.

    With p = softmax(logits) over the class axis, t the one-hot target, and
    sums running over every non-ignored pixel of every image in the batch:

        dice_c = (2 * sum p_c * t_c + smooth) / (sum p_c + sum t_c + smooth)
        loss   = 1 - (1/C) * sum_c dice_c

    ``logits``: (N, C, H, W) (any (N, C, *)); ``target``: integer labels
    (N, H, W). ``smooth`` > 0 makes a class absent from the truth, and
    predicted nowhere, score dice close to 1 (with ``smooth = 0`` its softmax
    probabilities, never exactly 0, make its dice 0: a perfect prediction of
    an image with 2 of 3 classes absent would still lose 2/3), and softens the
    gradient of small classes. Only when every pixel is ignored is a dice 0/0
    (NaN) with ``smooth = 0``.
    Pixels equal to ``ignore_index`` are left out of all three sums. Not part of
    PyTorch; built from differentiable ops (softmax, products, sums), so its
    backward comes from theirs. Returns a scalar.
    """
    smooth = checks.real(smooth, "smooth", "dice_loss", minimum=0)
    x, t = _check_logits_and_labels(logits, target, ignore_index, name="logits", op="dice_loss")
    checks.fits(smooth, x.dtype, "smooth", "dice_loss")
    # float16 in float32, rounded once at the end, as every loss here: 2 * a class's
    # intersection passes 65504 from 32 752 pixels on (inf / inf: NaN)
    return in_opmath(lambda x32: _dice(x32, t, smooth, ignore_index), x)


def _dice(x, t, smooth, ignore_index):
    xp = backend.get_array_module(x.data, t.data)
    c = x.shape[1]
    classes = xp.arange(c).reshape((1, c) + (1,) * (x.ndim - 2))
    labels = xp.expand_dims(t.data, 1)
    onehot = labels == classes
    probs = softmax(x, 1)
    if ignore_index is not None:
        valid = labels != ignore_index
        onehot &= valid                                          # ignored pixels: all zero
        probs = KeepWhere(valid)(probs)           # selected: a NaN probability there stays out
    onehot = Tensor._wrap(onehot.astype(x.dtype))
    axes = (0,) + tuple(range(2, x.ndim))
    intersection = (probs * onehot).sum(axes)
    dice = (2 * intersection + smooth) / (probs.sum(axes) + onehot.sum(axes) + smooth)
    return 1 - dice.mean()


# ---- regression: mean squared error and L1 ---------------------------------------------------
class _ElementwiseRegression(Function):
    """Shared reduction of ``mse_loss`` and ``l1_loss``: an elementwise error ``e(x - t)``,
    optionally times a weight ``w``, then

        'none'  w * e               (same shape as the input)
        'sum'   sum(w * e)
        'mean'  sum(w * e) / sum(w)   (sum(e) / numel without a weight: PyTorch's rule)

    Backward: d/dx = g * w * e'(x - t) / (sum(w) or numel for 'mean'), and
    d/dt = -d/dx. The weight is a constant (no gradient).
    """

    def __init__(self, weight, reduction):
        self.weight, self.reduction = weight, reduction

    def forward(self, x, t):
        self.diff = x - t
        loss = self.error(self.diff)
        if self.weight is not None:
            loss = loss * self.weight
        if self.reduction == "none":
            return loss
        work = opmath(loss.dtype)                  # float16 adds up in float32, as PyTorch's
        if self.reduction == "sum":
            return loss.sum(dtype=work).astype(loss.dtype)
        self.count = self.weight.sum(dtype=work) if self.weight is not None else x.size
        with np.errstate(invalid="ignore", divide="ignore"):     # every weight 0: NaN, as in PyTorch
            return (loss.sum(dtype=work) / self.count).astype(loss.dtype)

    def backward(self, g):
        work = opmath(g.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):     # every weight 0: NaN, as in PyTorch
            scale = g.astype(work, copy=False)
            scale = scale / self.count if self.reduction == "mean" else scale
            if self.weight is not None:
                scale = scale * self.weight
            gx = (scale * self.slope(self.diff.astype(work, copy=False))).astype(self.diff.dtype, copy=False)
        return (gx if self.needs_input_grad[0] else None), (-gx if self.needs_input_grad[1] else None)


class MSELoss(_ElementwiseRegression):
    """Squared error ``e(d) = d^2``, ``e'(d) = 2 d`` with ``d = x - t``."""

    def error(self, d):
        return d * d

    def slope(self, d):
        return 2 * d


class L1Loss(_ElementwiseRegression):
    """Absolute error ``e(d) = |d|``, ``e'(d) = sign(d)`` (0 at ``d = 0``, and 0 where ``d`` is
    NaN, as in PyTorch: ``(d > 0) - (d < 0)``, where NumPy's ``sign`` would give NaN)."""

    def error(self, d):
        return backend.get_array_module(d).abs(d)

    def slope(self, d):
        return (d > 0).astype(d.dtype) - (d < 0)


def _regression_args(input, target, weight, reduction, op):
    _check_reduction(reduction, op)
    x = checks.tensor(input, "input", op)               # an array here would silently get no gradient
    t = _constant(target, "target", op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating-point, got dtype {x.dtype}")
    if t.shape != x.shape:
        raise ValueError(f"{op}: target has shape {t.shape}, but it must have the input's shape {x.shape} "
                         "(no broadcasting: a mismatch is almost always a bug)")
    if t.dtype.kind != "f":
        t = Tensor._wrap(t.data.astype(x.dtype))     # integer targets: constants
    x, t = _promoted(x, t)
    if weight is None:
        return x, t, None
    w = _weights(weight, "weight", op).data
    if tuple(w.shape) != x.shape:
        raise ValueError(f"{op}: weight has shape {tuple(w.shape)}, but it must have the input's shape {x.shape}")
    return x, t, w.astype(x.dtype, copy=False)


def mse_loss(input, target, *, reduction="mean", weight=None):
    """Mean squared error ``(x - t)^2``, like ``torch.nn.functional.mse_loss``.

    ``input`` and ``target``: float arrays of the same shape (of different float
    dtypes, computed in the wider one, as PyTorch promotes). ``weight``:
    optional per-element weights of that shape (e.g. 0 on pixels that do not
    count); with it, 'mean' is ``sum(w (x - t)^2) / sum(w)``, a weighted
    average, as in PyTorch (NaN when every weight is 0). Panoptic-DeepLab
    trains its centre heatmap with it.
    """
    x, t, w = _regression_args(input, target, weight, reduction, "mse_loss")
    return MSELoss(w, reduction)(x, t)


def l1_loss(input, target, *, reduction="mean", weight=None):
    """Mean absolute error ``|x - t|``, like ``torch.nn.functional.l1_loss``.

    Same arguments and reductions as :func:`mse_loss`. Its gradient is
    ``sign(x - t)``: every pixel pulls with the same force whatever its error,
    which suits regression targets with outliers (Panoptic-DeepLab's offsets).
    """
    x, t, w = _regression_args(input, target, weight, reduction, "l1_loss")
    return L1Loss(w, reduction)(x, t)
