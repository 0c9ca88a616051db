"""A strided depthwise convolution, run directly: no columns, no col2im.

A depthwise conv (``groups == C_in == C_out``, MobileNetV2's blocks, the
backbone of DeepLabV3+) gives each channel its own ``kh x kw`` kernel.
Through im2col (``conv.py``) that is one GEMM of a single row per channel;
directly it is ``kh*kw`` multiply-adds of a strided slice of the padded input
by a per-channel weight, tap by tap, like the loop of ``reference.conv2d_loops``
with the channel sum gone. ``conv_fast`` sends a conv here when its
``depthwise`` lever is on and the stride is more than 1 (``_is_depthwise``).
The lever is off by default: measured, the im2col path is faster at every
stride (docs/benchmarks.md's lever tables, layer j). This module stays as
the direct form of the idea, switchable, and as the record of what did not
pay; docs/depthwise.md teaches the idea.
"""
from .. import backend
from . import conv as core          # _tap: the strided slice one kernel tap reads
from . import conv_fast as fast     # a cycle: conv_fast imports this module; names are looked up at call time

__all__ = ["conv2d", "grads"]


def conv2d(x, w, stride, pads, dilation):
    """y[n, c] = sum_{i,j} w[c, 0, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw].

    Why it is slower than im2col, even at stride 2: each tap's multiply-add
    reads a strided slice a row at a time (inner loops of ``W_out`` elements,
    every other one at stride 2), in twice the passes of im2col's copy, and
    NumPy's batched matmul handles the one-row GEMMs well. Interleaved on
    (8, 32, 64, 64), 3x3, stride 2, forward and backward: im2col took 0.63x
    this path's time at one thread and 0.48x at two.
    """
    xp = backend.get_array_module(x, w)
    n, c = x.shape[:2]
    kh, kw = w.shape[2:]
    out_hw = fast._out_hw(x.shape[2:], pads, (kh, kw), stride, dilation)
    x_pad = fast._pad_scratch(x, pads)
    y = xp.zeros((n, c) + out_hw, x.dtype)
    term = fast._scratch(xp, y.shape, x.dtype, "depthwise")
    for i in range(kh):
        for j in range(kw):
            xp.multiply(x_pad[core._tap(i, j, stride, dilation, out_hw)], w[:, :, i, j].reshape(1, c, 1, 1),
                        out=term)
            y += term
    return y


def grads(x, w, g, stride, pads, dilation, need_x, need_w):
    """The two gradients of ``conv2d``, tap by tap:
    ``dx_pad[tap(i, j)] += g * w[c, 0, i, j]`` (then the padding is cropped off) and
    ``dW[c, 0, i, j] = sum_{n, oh, ow} g * x_pad[tap(i, j)]``. Returns ``(dx, dW)``
    (None where not needed)."""
    xp = backend.get_array_module(x, g)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    top, bottom, left, right = pads
    out_hw = g.shape[2:]
    term = fast._scratch(xp, g.shape, g.dtype, "depthwise")
    gx_pad = xp.zeros((n, c, h + top + bottom, wd + left + right), g.dtype) if need_x else None
    x_pad = fast._pad_scratch(x, pads) if need_w else None
    gw = xp.empty(w.shape, g.dtype) if need_w else None
    for i in range(kh):
        for j in range(kw):
            tap = core._tap(i, j, stride, dilation, out_hw)
            if need_x:
                xp.multiply(g, w[:, :, i, j].reshape(1, c, 1, 1), out=term)
                gx_pad[tap] += term
            if need_w:
                xp.multiply(g, x_pad[tap], out=term)
                gw[:, 0, i, j] = term.sum(axis=(0, 2, 3))
    gx = None
    if need_x:
        gx = gx_pad if pads == (0, 0, 0, 0) else xp.ascontiguousarray(gx_pad[:, :, top:top + h, left:left + wd])
    return gx, gw
