"""Convolution through im2col: ``unfold``, ``fold``, ``conv2d``, ``conv_transpose2d``.

The whole family rests on one rearrangement. **im2col** (``unfold``) copies
every kernel-sized window of the (padded) input into a column::

    x (N, C, H, W)  ->  cols (N, C*kh*kw, L),   L = H_out * W_out
    cols[n, (c, i, j), (oh, ow)] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

after which a convolution is a single matrix product (a GEMM)::

    y[n] = W (C_out, C*kh*kw)  @  cols[n] (C*kh*kw, L)   ->  (C_out, L) = (C_out, H_out, W_out)

**col2im** (``fold``) is the adjoint of im2col: it adds every column back
into the window it came from (overlapping windows sum). The gradients are
two more GEMMs with the same pieces:

* the weight gradient ``dW = sum_n grad_y[n] @ cols[n]^T``;
* the input gradient ``dx = col2im(W^T @ grad_y[n])``, which is exactly
  ``conv_transpose2d`` of ``grad_y``; and ``conv_transpose2d``'s own input
  gradient is therefore a plain conv2d.

With ``groups`` the channels split into independent groups, each with its
own slice of ``W``: the GEMMs are batched over groups.

This file reads in that order: the pieces (pad, im2col, col2im, the three
GEMMs), the convolutions built from them on a whole batch, then the autograd
Functions and the public functions. Both loops (im2col and col2im) run over
the ``kh * kw`` kernel offsets with one strided slice each, so the same code
runs on NumPy and CuPy, and there is no scatter-add.

What runs by default is ``conv_fast.py``: the same pieces and the same
products, but built a few images (or rows) at a time under a memory limit
(the columns are ``kh*kw`` times the input: about 750 MB per image for the
original U-Net's widest layer), spread over threads, with reused scratch
buffers, and with a few shortcuts that compute the same numbers with fewer
passes over memory (its docstring lists them, each with a switch; the
measurements are in docs/benchmarks.md). ``conv_fast.set_lever("fast_path",
False)`` runs the plain functions below instead; the tests check that both
give the same numbers.
"""
import numpy as np

from .. import backend, checks, shapes
from ..autograd import Function, is_grad_enabled
from . import conv_fast as fast
from .basic import empty_batch
from .promotion import in_opmath

__all__ = ["unfold", "fold", "conv2d", "conv_transpose2d", "set_im2col_limit", "get_im2col_limit"]

# The memory limit is a setting of the fast path; these two are public (F.set_im2col_limit).
set_im2col_limit = fast.set_im2col_limit
get_im2col_limit = fast.get_im2col_limit


# ---- 1. pad ---------------------------------------------------------------------------
def _pad(x, pads):
    """``x`` (n, C, H, W) with ``pads = (top, bottom, left, right)`` zero rows/columns added.

    A negative entry crops instead (a transposed conv's backward needs that
    when its ``output_padding`` exceeds the padding). Returns ``x`` itself
    when there is nothing to do.
    """
    top, bottom, left, right = pads
    h, w = x.shape[2:]
    x = x[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]   # the crops
    top, bottom, left, right = (max(p, 0) for p in pads)
    if top == bottom == left == right == 0:
        return x
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    out = xp.zeros((n, c, top + h + bottom, left + w + right), x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out


def _padded_out_hw(x_hw, pads, kernel, stride, dilation):
    """Conv output size for an input of ``x_hw`` with (possibly asymmetric) ``pads``."""
    padded = (x_hw[0] + pads[0] + pads[1], x_hw[1] + pads[2] + pads[3])
    return shapes.conv2d_output_size(padded, kernel, stride, 0, dilation)


# ---- 2. im2col and 3. col2im ------------------------------------------------------------
def _tap(i, j, stride, dilation, out_hw):
    """Index of the padded-input pixels under kernel tap (i, j) for every output
    position at once: ``x_pad[..., i*dh + oh*sh, j*dw + ow*sw]``, one strided slice."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    top, left = i * dh, j * dw
    return (Ellipsis, slice(top, top + sh * (ho - 1) + 1, sh), slice(left, left + sw * (wo - 1) + 1, sw))


def _im2col(x_pad, kernel, stride, dilation, out_hw, cols):
    """im2col: fill ``cols`` (n, C*kh*kw, L) with the windows of ``x_pad`` (n, C, Hp, Wp); returns ``cols``.

    One strided slice per kernel offset (i, j): the pixel under kernel tap
    (i, j) for every output position at once.
    """
    n, c = x_pad.shape[:2]
    (kh, kw), (ho, wo) = kernel, out_hw
    view = cols.reshape(n, c, kh, kw, ho, wo)
    for i in range(kh):
        for j in range(kw):
            view[:, :, i, j] = x_pad[_tap(i, j, stride, dilation, out_hw)]
    return cols


def _col2im(cols, x_pad, kernel, stride, dilation, out_hw):
    """col2im: add ``cols`` (n, C*kh*kw, L) into ``x_pad`` (n, C, Hp, Wp), which must start at zero.

    The adjoint of ``_im2col``: the same loop with ``+=``. Windows overlap
    when stride < effective kernel, and the overlaps sum. Returns ``x_pad``.
    """
    n, c = x_pad.shape[:2]
    (kh, kw), (ho, wo) = kernel, out_hw
    view = cols.reshape(n, c, kh, kw, ho, wo)
    for i in range(kh):
        for j in range(kw):
            x_pad[_tap(i, j, stride, dilation, out_hw)] += view[:, :, i, j]
    return x_pad


# ---- 4. the three GEMMs -------------------------------------------------------------------
# The columns of n images, viewed per group: (n, g, C/g*kh*kw, L). Batched over images
# and groups, each product writes its result straight in the layout it is wanted in.
def _gemm_forward(w, cols, groups, out=None):
    """``out[n, g] = W_g @ cols[n, g]``: the conv output (n, g, C_out/g, L) from the columns.

    ``w`` (C_out, C/g, kh, kw), ``cols`` (n, C*kh*kw, L); ``out`` (n, g, C_out/g, L),
    if given, is written in place and returned. Either way the result is
    already the (N, C_out, H_out, W_out) layout: no transpose.
    """
    xp = backend.get_array_module(w, cols)
    n, rows, length = cols.shape
    w_g = w.reshape(groups, w.shape[0] // groups, rows // groups)
    return xp.matmul(w_g, cols.reshape(n, groups, rows // groups, length), out=out)


def _gemm_weight_grad(grad_y, cols, groups):
    """``sum_n grad_y[n, g] @ cols[n, g]^T`` per group: (g, C_out/g, C/g*kh*kw).

    ``grad_y`` (n, C_out, L), ``cols`` (n, C*kh*kw, L). The transposed
    columns are a view: BLAS reads them as they lie.
    """
    xp = backend.get_array_module(grad_y, cols)
    n, rows, length = cols.shape
    gy = grad_y.reshape(n, groups, grad_y.shape[1] // groups, length)
    cols_t = cols.reshape(n, groups, rows // groups, length).transpose(0, 1, 3, 2)
    return xp.matmul(gy, cols_t).sum(axis=0)


def _gemm_transposed(w, x, groups, out=None):
    """``cols[n, g] = W_g^T @ x[n, g]``: the columns (n, g, C_out/g*kh*kw, H*W) a transposed conv folds back.

    ``w`` (C_in, C_out/g, kh, kw) is the transposed conv's weight, which is
    the weight of the conv it is the input gradient of; ``x`` (n, C_in, H, W).
    """
    xp = backend.get_array_module(w, x)
    n, c_in, h, wd = x.shape
    c_og, kh, kw = w.shape[1:]
    w_t = w.reshape(groups, c_in // groups, c_og * kh * kw).transpose(0, 2, 1)   # (g, C_out/g*kh*kw, C_in/g)
    return xp.matmul(w_t, x.reshape(n, groups, c_in // groups, h * wd), out=out)


# ---- 5. the convolutions on a whole batch --------------------------------------------------
def _unfold_batch(x, kernel, stride, pads, dilation):
    """The columns of the whole batch: pad, then im2col. Returns (cols, out_hw)."""
    xp = backend.get_array_module(x)
    n, c = x.shape[:2]
    out_hw = _padded_out_hw(x.shape[2:], pads, kernel, stride, dilation)
    cols = xp.empty((n, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1]), x.dtype)
    return _im2col(_pad(x, pads), kernel, stride, dilation, out_hw, cols), out_hw


def _conv2d(x, w, stride, pads, dilation, groups):
    """y (N, C_out, H_out, W_out) = conv of ``x`` (N, C, H, W) with ``w`` (C_out, C/g, kh, kw):
    ``y[n] = W @ im2col(pad(x))[n]``. ``pads`` may be asymmetric or negative (crop)."""
    cols, (ho, wo) = _unfold_batch(x, w.shape[2:], stride, pads, dilation)
    y = _gemm_forward(w, cols, groups)
    return y.reshape(x.shape[0], w.shape[0], ho, wo)


def _conv2d_weight_grad(x, grad_y, kernel, stride, pads, dilation, groups):
    """dW (C_out, C/g, kh, kw) = sum_n grad_y[n] (C_out, L) @ unfold(x)[n]^T (L, C*kh*kw), per group.

    Also serves conv_transpose2d, whose weight gradient is this with the
    roles of input and output swapped.
    """
    cols, _ = _unfold_batch(x, kernel, stride, pads, dilation)
    n, c_out = grad_y.shape[:2]
    grad_w = _gemm_weight_grad(grad_y.reshape(n, c_out, -1), cols, groups)
    return grad_w.reshape((c_out, x.shape[1] // groups) + tuple(kernel))


def _fold(cols, out_hw, kernel, stride, pads, dilation, conv_hw):
    """col2im of ``cols`` (n, C*kh*kw, L) into a new (n, C, H, W) image of size ``out_hw``;
    what lands in the padding is dropped."""
    xp = backend.get_array_module(cols)
    n, rows = cols.shape[:2]
    top, bottom, left, right = pads
    out_pad = xp.zeros((n, rows // (kernel[0] * kernel[1]), top + out_hw[0] + bottom, left + out_hw[1] + right),
                       cols.dtype)
    _col2im(cols, out_pad, kernel, stride, dilation, conv_hw)
    if pads == (0, 0, 0, 0):
        return out_pad
    return out_pad[:, :, top:top + out_hw[0], left:left + out_hw[1]].copy()


def _conv_transpose2d(x, w, stride, pads, dilation, groups, out_hw):
    """The transposed conv of ``x`` (N, C_in, H, W) with ``w`` (C_in, C_out/g, kh, kw), of size ``out_hw``.

    This is the input gradient of ``_conv2d(., w, stride, pads, dilation,
    groups)`` for an input of size ``out_hw``: ``cols = W^T @ x`` per group,
    then col2im adds each column back into its window of the padded output,
    and the padding is cut off (it is not part of the output).
    """
    n, c_in, h, wd = x.shape
    c_out, kernel = w.shape[1] * groups, w.shape[2:]
    cols = _gemm_transposed(w, x, groups).reshape(n, c_out * kernel[0] * kernel[1], h * wd)
    return _fold(cols, out_hw, kernel, stride, pads, dilation, (h, wd))


# ---- 6. autograd Functions --------------------------------------------------------
class Unfold(Function):
    """cols[n, (c,i,j), l] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw];  dx = fold(g)."""

    def __init__(self, kernel, stride, pads, dilation):
        self.kernel, self.stride, self.pads, self.dilation = kernel, stride, pads, dilation

    def forward(self, x):
        self.x_hw = x.shape[2:]
        cols, self.out_hw = _unfold_batch(x, self.kernel, self.stride, self.pads, self.dilation)
        return cols

    def backward(self, g):
        return _fold(g, self.x_hw, self.kernel, self.stride, self.pads, self.dilation, self.out_hw)


class Fold(Function):
    """out = col2im(cols) (overlaps sum);  dcols = unfold(g)."""

    def __init__(self, out_hw, kernel, stride, pads, dilation, conv_hw):
        self.out_hw, self.kernel, self.stride = out_hw, kernel, stride
        self.pads, self.dilation, self.conv_hw = pads, dilation, conv_hw

    def forward(self, cols):
        return _fold(cols, self.out_hw, self.kernel, self.stride, self.pads, self.dilation, self.conv_hw)

    def backward(self, g):
        return _unfold_batch(g, self.kernel, self.stride, self.pads, self.dilation)[0]


class Conv2d(Function):
    """y = W * x + b (cross-correlation): ``y[n] = W @ im2col(x)[n] + b``.

    dx = conv_transpose2d(g, W) = col2im(W^T @ g[n]) (same stride, padding,
    dilation, groups; sized like x), dW = sum_n g[n] @ im2col(x)[n]^T,
    db = sum of g over (N, H_out, W_out).

    ``conv_fast`` computes the same (see its docstring for how, e.g. the
    input gradient at stride 1 as a conv with the flipped kernel); with its
    ``fast_path`` lever off, the whole-batch functions above run.
    """

    def __init__(self, stride, pads, dilation, groups):
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups

    def forward(self, x, w, b):
        self.x, self.w = x, w
        self.fast = fast.lever("fast_path")
        if self.fast:
            keep = self.needs_input_grad[1] and is_grad_enabled()
            y, self.saved = fast.conv2d(x, w, b, self.stride, self.pads, self.dilation, self.groups, keep)
            return y
        y = _conv2d(x, w, self.stride, self.pads, self.dilation, self.groups)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        if self.fast:
            return fast.conv2d_grads(self.x, self.w, g, self.stride, self.pads, self.dilation, self.groups,
                                     self.saved, need_x, need_w, need_b)
        gx = gw = gb = None
        if need_x:
            gx = _conv_transpose2d(g, self.w, self.stride, self.pads, self.dilation, self.groups, self.x.shape[2:])
        if need_w:
            gw = _conv2d_weight_grad(self.x, g, self.w.shape[2:], self.stride, self.pads, self.dilation,
                                     self.groups)
        if need_b:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


class ConvTranspose2d(Function):
    """y = W^T * x + b (the input gradient of conv2d): ``y = col2im(W^T @ x[n]) + b``.

    dx = conv2d(g, W) (same stride, padding, dilation, groups),
    dW = sum_n x[n] @ unfold(g)[n]^T,  db = sum of g over (N, H_out, W_out).
    """

    def __init__(self, stride, pads, output_padding, dilation, groups, out_hw):
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.output_padding, self.out_hw = output_padding, out_hw

    def forward(self, x, w, b):
        self.x, self.w = x, w
        self.fast = fast.lever("fast_path")
        if self.fast:
            return fast.conv_transpose2d(x, w, b, self.stride, self.pads, self.dilation, self.groups, self.out_hw)
        y = _conv_transpose2d(x, w, self.stride, self.pads, self.dilation, self.groups, self.out_hw)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        # The conv that maps g back to x's size: its bottom/right padding is p - output_padding
        # (the output_padding rows lengthen the output, so the conv back needs that much less);
        # a negative value crops rows past the full result, which no input wrote.
        top, bottom, left, right = self.pads
        conv_pads = (top, bottom - self.output_padding[0], left, right - self.output_padding[1])
        if self.fast:
            return fast.conv_transpose2d_grads(self.x, self.w, g, self.stride, conv_pads, self.dilation,
                                               self.groups, need_x, need_w, need_b)
        gx = gw = gb = None
        if need_x:
            gx = _conv2d(g, self.w, self.stride, conv_pads, self.dilation, self.groups)
        if need_w:
            gw = _conv2d_weight_grad(g, self.x, self.w.shape[2:], self.stride, conv_pads, self.dilation,
                                     self.groups)
        if need_b:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


# ---- 7. validation ------------------------------------------------------------------
def _check_float_array(x, name, layout="(N, C, H, W)", op="conv2d"):
    """``x`` must be a floating-point Tensor with as many axes as ``layout`` names
    (a raw array is refused, as in PyTorch: as a weight it would get no gradient)."""
    checks.tensor(x, name, op)
    ndim = layout.count(",") + 1
    if len(x.shape) != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout}, got shape {tuple(x.shape)}")
    if np.dtype(x.dtype).kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {x.dtype}")


def _check_weight_and_bias(x, weight, bias, groups, transposed):
    """Shapes and dtypes of a conv's operands; returns (groups, C_out)."""
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"groups must be a positive int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    op = "conv_transpose2d" if transposed else "conv2d"
    _check_float_array(weight, "weight", layout="(C_in, C_out/groups, kh, kw)" if transposed
                       else "(C_out, C_in/groups, kh, kw)", op=op)
    if min(weight.shape) < 1:
        raise ValueError(f"weight must have every size >= 1 (at least one channel and a 1x1 kernel), got "
                         f"shape {tuple(weight.shape)}")
    if weight.dtype != x.dtype:
        raise TypeError(f"input and weight must have the same dtype, got {x.dtype} and {weight.dtype} "
                        f"(make the input in the weight's dtype: msn.tensor(array.astype(np.{weight.dtype})))")
    c_in = x.shape[1]
    if c_in % groups:
        raise ValueError(f"input channels ({c_in}) must be divisible by groups={groups}")
    if transposed:
        if weight.shape[0] != c_in:
            raise ValueError(f"weight of shape {tuple(weight.shape)} must have shape (C_in={c_in}, C_out/groups, "
                             "kh, kw) for conv_transpose2d")
        c_out = weight.shape[1] * groups
    else:
        c_out = weight.shape[0]
        if c_out % groups:
            raise ValueError(f"output channels (weight.shape[0] = {c_out}) must be divisible by groups={groups}")
        if weight.shape[1] != c_in // groups:
            raise ValueError(f"weight of shape {tuple(weight.shape)} must have shape (C_out, C_in/groups = "
                             f"{c_in // groups}, kh, kw) for an input with {c_in} channels and groups={groups}")
    if bias is not None:
        checks.tensor(bias, "bias", op)
        if tuple(bias.shape) != (c_out,):
            raise ValueError(f"bias must have shape ({c_out},), got "
                             f"{tuple(bias.shape) if hasattr(bias, 'shape') else type(bias).__name__}")
        if bias.dtype != x.dtype:
            raise TypeError(f"input and bias must have the same dtype, got {x.dtype} and {bias.dtype}")
    return groups, c_out


def _check_memory(op, x, pads, out_shape, cause):
    """Refuse, before any work, a padded input or an output larger than memory."""
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    checks.check_bytes((n, c, h + top + bottom, w + left + right), x.dtype.itemsize, op, cause)
    checks.check_bytes(out_shape, x.dtype.itemsize, op, cause)


def _conv_pads(padding, kernel, stride, dilation):
    """``padding`` (int, pair, 'valid' or 'same') as ``(top, bottom, left, right)``.

    'same' pads ``d(k-1)`` in total per axis; when that is odd the extra
    pixel goes at the bottom/right, as PyTorch does.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            total_h, total_w = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
            return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = shapes.as_pair(padding, "padding", 0)
    return (ph, ph, pw, pw)


# ---- 8. public functions ----------------------------------------------------------------
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: every kernel-sized window of ``input`` as a column, like ``torch.nn.functional.unfold``.

    ``input`` (N, C, H, W) -> (N, C*kh*kw, L) with ``L = H_out * W_out``
    (``shapes.conv2d_output_size``) and
    ``out[n, (c*kh + i)*kw + j, oh*W_out + ow] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    Every argument is an int or an (h, w) pair. Only 4-D input is accepted.
    """
    _check_float_array(input, "input", op="unfold")
    with checks.naming("unfold"):
        k = shapes.as_pair(kernel_size, "kernel_size", 1)
        d = shapes.as_pair(dilation, "dilation", 1)
        p = shapes.as_pair(padding, "padding", 0)
        s = shapes.as_pair(stride, "stride", 1)
        out_hw = shapes.conv2d_output_size(tuple(input.shape[2:]), kernel_size, stride, padding, dilation)
    _check_memory("unfold", input, (p[0], p[0], p[1], p[1]),
                  (input.shape[0], input.shape[1] * k[0] * k[1], out_hw[0] * out_hw[1]),
                  f"kernel_size={kernel_size!r}, padding={padding!r}, stride={stride!r}")
    return Unfold(k, s, (p[0], p[0], p[1], p[1]), d)(input)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: add the columns of ``input`` back into an image, like ``torch.nn.functional.fold``.

    ``input`` (N, C*kh*kw, L) -> (N, C, H, W) with ``(H, W) = output_size``;
    overlapping windows sum, so ``fold(unfold(x))`` is ``x`` times how many
    windows cover each pixel. ``L`` must equal the number of windows,
    ``H_out * W_out`` from ``shapes.conv2d_output_size(output_size, ...)``.
    ``fold`` is the adjoint of ``unfold``: ``<unfold(x), c> == <x, fold(c)>``.
    """
    _check_float_array(input, "input", layout="(N, C*kh*kw, L)", op="fold")
    with checks.naming("fold"):
        size = shapes.as_pair(output_size, "output_size", 1)
        k = shapes.as_pair(kernel_size, "kernel_size", 1)
        d = shapes.as_pair(dilation, "dilation", 1)
        p = shapes.as_pair(padding, "padding", 0)
        s = shapes.as_pair(stride, "stride", 1)
    with checks.naming("fold"):
        conv_hw = shapes.conv2d_output_size(size, k, s, p, d)
    n, rows, length = input.shape
    if rows % (k[0] * k[1]):
        raise ValueError(f"fold: input.shape[1] = {rows} must be divisible by kh*kw = {k[0] * k[1]} "
                         f"(kernel_size={kernel_size!r})")
    if length != conv_hw[0] * conv_hw[1]:
        raise ValueError(f"fold: input.shape[2] = {length} must equal the number of windows "
                         f"{conv_hw[0]}*{conv_hw[1]} = {conv_hw[0] * conv_hw[1]} for output_size={output_size!r}")
    checks.check_bytes((n, rows // (k[0] * k[1]), size[0] + 2 * p[0], size[1] + 2 * p[1]), input.dtype.itemsize,
                       "fold", f"output_size={output_size!r}, padding={padding!r}")
    return Fold(size, k, s, (p[0], p[0], p[1], p[1]), d, conv_hw)(input)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), like ``torch.nn.functional.conv2d``.

    ``y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] * x_pad[n, grp*(C_in/groups) + c, oh*sh + i*dh, ow*sw + j*dw]``
    where ``grp = o // (C_out/groups)`` is the group of output channel ``o`` (``c`` runs over its
    ``C_in/groups`` input channels).

    Shapes: ``input`` (N, C_in, H, W), ``weight`` (C_out, C_in/groups, kh, kw),
    ``bias`` (C_out,) or None -> (N, C_out, H_out, W_out), sizes from
    ``shapes.conv2d_output_size``. ``padding``: an int, an (h, w) pair,
    ``"valid"`` (no padding) or ``"same"`` (output size = input size; stride 1
    only; total padding ``d(k-1)``, the odd pixel at the bottom/right).
    ``groups == C_in`` is a depthwise convolution.

    Computed as im2col + one GEMM; see the module docstring for the
    gradients and for the memory limit.
    """
    with checks.naming("conv2d"):                           # every message below starts "conv2d: "
        _check_float_array(input, "input")
        groups, _ = _check_weight_and_bias(input, weight, bias, groups, transposed=False)
        k = tuple(weight.shape[2:])
        s = shapes.as_pair(stride, "stride", 1)
        d = shapes.as_pair(dilation, "dilation", 1)
        pads = _conv_pads(padding, k, s, d)
        out_hw = shapes.conv2d_output_size(tuple(input.shape[2:]), k, stride, padding, dilation)   # it must fit
    _check_memory("conv2d", input, pads, (input.shape[0], weight.shape[0]) + tuple(out_hw),
                  f"padding={padding!r}")
    if input.shape[0] == 0:
        return empty_batch((0, weight.shape[0]) + tuple(out_hw), input, weight, bias)
    return in_opmath(Conv2d(s, pads, d, groups), input, weight, bias)     # float16: as PyTorch, in float32


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution, like ``torch.nn.functional.conv_transpose2d``.

    The input gradient of ``conv2d`` with the same ``weight``, stride,
    padding, dilation and groups: each input pixel spreads ``x[n, c] * W[c]``
    into a kernel-sized window of the output, windows ``s`` pixels apart, and
    overlaps sum. Size per axis
    ``o = (i - 1)s - 2p + d(k-1) + output_padding + 1``
    (``shapes.conv_transpose2d_output_size``); ``output_padding`` in ``0 .. s-1``
    picks which of the conv inputs that share one conv output size to make,
    adding rows/columns at the bottom/right only (PyTorch's bound, also here, is
    ``output_padding < max(s, d)``; values ``s .. d-1`` only append rows). Rows
    beyond the full result (``output_padding > padding``) are written by no
    input pixel: 0, plus the bias.

    Shapes: ``input`` (N, C_in, H, W), ``weight`` (C_in, C_out/groups, kh, kw),
    ``bias`` (C_out,) or None -> (N, C_out, H_out, W_out).
    Note PyTorch's argument order: ``groups`` before ``dilation``.
    """
    with checks.naming("conv_transpose2d"):                 # every message below starts "conv_transpose2d: "
        _check_float_array(input, "input", op="conv_transpose2d")
        groups, _ = _check_weight_and_bias(input, weight, bias, groups, transposed=True)
        k = tuple(weight.shape[2:])
        s = shapes.as_pair(stride, "stride", 1)
        d = shapes.as_pair(dilation, "dilation", 1)
        p = shapes.as_pair(padding, "padding", 0)
        op = shapes.as_pair(output_padding, "output_padding", 0)
        out_hw = shapes.conv_transpose2d_output_size(tuple(input.shape[2:]), k, stride, padding, output_padding,
                                                     dilation)
    # col2im adds into the output with its padding still around it (cut off after): that padded
    # image, at least as large as the output, is what must fit
    padded = (out_hw[0] + 2 * p[0], out_hw[1] + 2 * p[1])
    checks.check_bytes((input.shape[0], weight.shape[1] * groups) + padded, input.dtype.itemsize,
                       "conv_transpose2d", f"stride={stride!r}, padding={padding!r}, dilation={dilation!r}, "
                                           f"kernel {k}")
    if input.shape[0] == 0:
        return empty_batch((0, weight.shape[1] * groups) + tuple(out_hw), input, weight, bias)
    return in_opmath(ConvTranspose2d(s, (p[0], p[0], p[1], p[1]), op, d, groups, out_hw), input, weight, bias)
