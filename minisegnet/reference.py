"""The algorithms of the course, written plainly: read these first.

Each function here is the textbook form of an op in ``minisegnet.functional``:
loops and one matrix product, no chunking, no scratch buffers, no special
paths. They are slow (Python loops over every pixel) and meant for small
arrays, but they compute the *same numbers* as the fast ops, values and
gradients, and the tests check that (``tests/test_reference.py``). The course
teaches from them, then says what the fast path changes:

* ``conv2d_loops`` / ``conv2d_loops_backward``: the definition, a sum per output
  pixel, and its gradients as the same loops run backwards;
* ``unfold`` / ``fold`` and ``conv2d_unfold`` / ``conv2d_unfold_backward``: im2col,
  one GEMM, and the backward as ``dW = g @ cols^T`` and ``dx = fold(W^T @ g)``;
* ``conv_transpose2d_zero_insertion`` / ``conv_transpose2d_backward``: the
  transposed conv as zero insertion, padding and a flipped-kernel conv; its
  gradients are the conv it transposes;
* ``max_pool2d_loops`` / ``max_pool2d_loops_backward``, ``max_unpool2d_loops`` /
  ``max_unpool2d_loops_backward``: a max per window, remembered by its index, and
  the scatter (and gather) that use it;
* ``interpolate_bilinear`` / ``interpolate_bilinear_backward``: the source
  coordinate formula, then two taps per axis.

Arrays in, arrays out: ``x`` is ``(N, C, H, W)``; weights use PyTorch's layouts.
Integer arguments are an int or an ``(h, w)`` pair; sizes come from ``shapes``.
Arrays are made with the input's array module, as everywhere in minisegnet.
"""
import math

from . import backend, shapes

__all__ = ["conv2d_loops", "conv2d_loops_backward", "unfold", "fold", "conv2d_unfold", "conv2d_unfold_backward",
           "conv_transpose2d_zero_insertion", "conv_transpose2d_backward", "max_pool2d_loops",
           "max_pool2d_loops_backward", "max_unpool2d_loops", "max_unpool2d_loops_backward", "interpolate_bilinear",
           "interpolate_bilinear_backward"]


def _pad(x, top, bottom, left, right):
    """Zero rows and columns added on each side (a negative amount crops instead)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    x = x[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    top, bottom, left, right = (max(v, 0) for v in (top, bottom, left, right))
    out = xp.zeros((n, c, x.shape[2] + top + bottom, x.shape[3] + left + right), x.dtype)
    out[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
    return out


def _settings(stride, padding, dilation):
    return (shapes.as_pair(stride, "stride", 1), shapes.as_pair(padding, "padding", 0),
            shapes.as_pair(dilation, "dilation", 1))


# ---- convolution as its definition --------------------------------------------
def conv2d_loops(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """``y[n, o, oh, ow] = b[o] + sum_{c,i,j} w[o, c, i, j] * x_pad[n, grp*(C_in/groups) + c, oh*sh + i*dh, ow*sw + j*dw]``,
    with ``grp = o // (C_out/groups)`` the group of output channel ``o``: seven loops, one multiply-add each."""
    (sh, sw), (ph, pw), (dh, dw) = _settings(stride, padding, dilation)
    n_img, c_in, h, wd = x.shape
    c_out, c_group, kh, kw = w.shape
    ho, wo = shapes.conv2d_output_size((h, wd), (kh, kw), stride, padding, dilation)
    x_pad = _pad(x, ph, ph, pw, pw)
    y = backend.get_array_module(x).zeros((n_img, c_out, ho, wo), x.dtype)
    for n in range(n_img):
        for o in range(c_out):
            first = o // (c_out // groups) * c_group           # the group's first input channel
            for oh in range(ho):
                for ow in range(wo):
                    total = 0.0 if b is None else b[o]
                    for c in range(c_group):
                        for i in range(kh):
                            for j in range(kw):
                                total += w[o, c, i, j] * x_pad[n, first + c, oh * sh + i * dh, ow * sw + j * dw]
                    y[n, o, oh, ow] = total
    return y


def conv2d_loops_backward(x, w, g, stride=1, padding=0, dilation=1, groups=1):
    """``(dx, dw, db)`` for ``g = dL/dy``: the loops of ``conv2d_loops`` once more. Each
    multiply-add ``y += w * x`` sends ``g * x`` to ``dw`` and ``g * w`` to ``dx``."""
    xp = backend.get_array_module(x)
    (sh, sw), (ph, pw), (dh, dw) = _settings(stride, padding, dilation)
    n_img, c_out, ho, wo = g.shape
    _, c_group, kh, kw = w.shape
    x_pad = _pad(x, ph, ph, pw, pw)
    dx_pad, dw_ = xp.zeros(x_pad.shape, x.dtype), xp.zeros(w.shape, x.dtype)
    for n in range(n_img):
        for o in range(c_out):
            first = o // (c_out // groups) * c_group
            for oh in range(ho):
                for ow in range(wo):
                    for c in range(c_group):
                        for i in range(kh):
                            for j in range(kw):
                                r, s = oh * sh + i * dh, ow * sw + j * dw
                                dw_[o, c, i, j] += g[n, o, oh, ow] * x_pad[n, first + c, r, s]
                                dx_pad[n, first + c, r, s] += g[n, o, oh, ow] * w[o, c, i, j]
    dx = dx_pad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]   # padding is not part of the input
    return dx, dw_, g.sum(axis=(0, 2, 3))


# ---- im2col, one GEMM, col2im ---------------------------------------------------
def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: ``cols (N, C*kh*kw, L)``, column ``l = oh*W_out + ow`` is the window under
    output pixel ``(oh, ow)``, its rows in ``(c, i, j)`` order: ``x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    Arguments in ``F.unfold``'s (and ``torch.nn.functional.unfold``'s) order."""
    (kh, kw), ((sh, sw), (ph, pw), (dh, dw)) = shapes.as_pair(kernel_size, "kernel_size", 1), \
        _settings(stride, padding, dilation)
    n_img, c, h, wd = x.shape
    ho, wo = shapes.conv2d_output_size((h, wd), (kh, kw), stride, padding, dilation)
    x_pad = _pad(x, ph, ph, pw, pw)
    cols = backend.get_array_module(x).zeros((n_img, c * kh * kw, ho * wo), x.dtype)
    for oh in range(ho):
        for ow in range(wo):
            window = x_pad[:, :, oh * sh:oh * sh + dh * (kh - 1) + 1:dh, ow * sw:ow * sw + dw * (kw - 1) + 1:dw]
            cols[:, :, oh * wo + ow] = window.reshape(n_img, c * kh * kw)     # (c, i, j) row order
    return cols


def fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im, the adjoint of ``unfold``: add every column back into the window it came
    from (overlapping windows sum); the padded border is dropped. ``F.fold``'s argument order."""
    (kh, kw), ((sh, sw), (ph, pw), (dh, dw)) = shapes.as_pair(kernel_size, "kernel_size", 1), \
        _settings(stride, padding, dilation)
    (h, wd), (n_img, rows, _) = shapes.as_pair(output_size, "output_size", 1), cols.shape
    c = rows // (kh * kw)
    ho, wo = shapes.conv2d_output_size((h, wd), (kh, kw), stride, padding, dilation)
    x_pad = backend.get_array_module(cols).zeros((n_img, c, h + 2 * ph, wd + 2 * pw), cols.dtype)
    for oh in range(ho):
        for ow in range(wo):
            window = (slice(None), slice(None), slice(oh * sh, oh * sh + dh * (kh - 1) + 1, dh),
                      slice(ow * sw, ow * sw + dw * (kw - 1) + 1, dw))
            x_pad[window] += cols[:, :, oh * wo + ow].reshape(n_img, c, kh, kw)
    return x_pad[:, :, ph:ph + h, pw:pw + wd]


def conv2d_unfold(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """The conv as im2col + one GEMM per group: ``y[n] = W (C_out, C/g*kh*kw) @ cols[n]``."""
    xp = backend.get_array_module(x)
    n_img, c_out, kh, kw = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    ho, wo = shapes.conv2d_output_size(x.shape[2:], (kh, kw), stride, padding, dilation)
    cols = unfold(x, (kh, kw), dilation, padding, stride)          # (N, C*kh*kw, L), rows grouped by channel
    rows, outs = cols.shape[1] // groups, c_out // groups
    y = xp.zeros((n_img, c_out, ho * wo), x.dtype)
    for g in range(groups):                                         # group g: its channels' rows, its outputs
        w_g = w[g * outs:(g + 1) * outs].reshape(outs, rows)
        y[:, g * outs:(g + 1) * outs] = xp.matmul(w_g, cols[:, g * rows:(g + 1) * rows])
    y = y.reshape(n_img, c_out, ho, wo)
    return y if b is None else y + b.reshape(1, c_out, 1, 1)


def conv2d_unfold_backward(x, w, g, stride=1, padding=0, dilation=1, groups=1):
    """``(dx, dw, db)``: the forward's two matrices again. ``dW = g @ cols^T`` (summed
    over the batch), ``dcols = W^T @ g``, then ``dx = fold(dcols)``: each column's
    gradient goes back into the window it came from."""
    xp = backend.get_array_module(x)
    n_img, c_out = g.shape[:2]
    kh, kw = w.shape[2:]
    cols = unfold(x, (kh, kw), dilation, padding, stride)
    rows, outs = cols.shape[1] // groups, c_out // groups
    g_flat = g.reshape(n_img, c_out, -1)                            # (N, C_out, L)
    dw, dcols = xp.zeros((c_out, rows), x.dtype), xp.zeros(cols.shape, x.dtype)
    for k in range(groups):
        g_k, w_k = g_flat[:, k * outs:(k + 1) * outs], w[k * outs:(k + 1) * outs].reshape(outs, rows)
        dw[k * outs:(k + 1) * outs] = xp.matmul(g_k, cols[:, k * rows:(k + 1) * rows].transpose(0, 2, 1)).sum(0)
        dcols[:, k * rows:(k + 1) * rows] = xp.matmul(w_k.T, g_k)
    dx = fold(dcols, x.shape[2:], (kh, kw), dilation, padding, stride)
    return dx, dw.reshape(w.shape), g.sum(axis=(0, 2, 3))


# ---- transposed convolution ----------------------------------------------------
def conv_transpose2d_zero_insertion(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1):
    """The picture from the guide to convolution arithmetic: put ``s - 1`` zeros between
    input pixels, pad by ``d(k-1) - p`` (plus ``output_padding`` at the bottom/right; a
    negative amount crops), and run a stride-1 conv with the kernel flipped in both
    axes and its channel axes swapped. ``w`` is ``(C_in, C_out, kh, kw)`` (groups=1)."""
    xp = backend.get_array_module(x)
    (sh, sw), (ph, pw), (dh, dw) = _settings(stride, padding, dilation)
    oph, opw = shapes.as_pair(output_padding, "output_padding", 0)
    n_img, c_in, h, wd = x.shape
    kh, kw = w.shape[2:]
    z = xp.zeros((n_img, c_in, (h - 1) * sh + 1, (wd - 1) * sw + 1), x.dtype)
    z[:, :, ::sh, ::sw] = x                                        # zero insertion
    top, left = dh * (kh - 1) - ph, dw * (kw - 1) - pw              # d(k-1) - p on every side,
    z = _pad(z, top, top + oph, left, left + opw)                  # output_padding more at the bottom/right
    flipped = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]            # (C_out, C_in, kh, kw), rotated 180 degrees
    return conv2d_unfold(z, flipped, b, stride=1, padding=0, dilation=dilation)


def conv_transpose2d_backward(x, w, g, stride=1, padding=0, output_padding=0, dilation=1):
    """``(dx, dw, db)`` of the transposed conv: it *is* the input gradient of a conv
    with ``w``, so its input gradient is that conv's forward on ``g`` and its weight
    gradient that conv's weight gradient (``g`` as the conv's input, ``x`` as its
    output gradient). The output was the full result cropped by ``p`` at the top/left
    and ``p - output_padding`` at the bottom/right: undo that crop first (rows past
    the full result were written by no input pixel and are cropped away)."""
    (ph, pw), (oph, opw) = shapes.as_pair(padding, "padding", 0), shapes.as_pair(output_padding, "output_padding", 0)
    full = _pad(g, ph, ph - oph, pw, pw - opw)
    dx = conv2d_unfold(full, w, stride=stride, padding=0, dilation=dilation)
    _, dw, _ = conv2d_unfold_backward(full, w, x, stride, 0, dilation)
    return dx, dw, g.sum(axis=(0, 2, 3))


# ---- max pooling and unpooling ------------------------------------------------
def max_pool2d_loops(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``(y, indices)``: the largest value of each window (padding reads ``-inf``) and
    where it was, as the flat position ``h * W + w`` in its ``(n, c)`` plane; ties go
    to the first maximum in row-major order."""
    xp = backend.get_array_module(x)
    kh, kw = shapes.as_pair(kernel_size, "kernel_size", 1)
    (sh, sw), (ph, pw), (dh, dw) = _settings((kh, kw) if stride is None else stride, padding, dilation)
    n_img, c, h, wd = x.shape
    ho, wo = shapes.max_pool2d_output_size((h, wd), (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode)
    y = xp.zeros((n_img, c, ho, wo), x.dtype)
    indices = xp.zeros((n_img, c, ho, wo), dtype=xp.int64)
    for n in range(n_img):
        for ch in range(c):
            for oh in range(ho):
                for ow in range(wo):
                    best, where = -math.inf, -1
                    for i in range(kh):
                        for j in range(kw):
                            r, s = oh * sh - ph + i * dh, ow * sw - pw + j * dw     # unpadded coordinates
                            if not (0 <= r < h and 0 <= s < wd):
                                continue                                           # padding: never wins
                            v = x[n, ch, r, s]
                            # the first tap inside the input starts the search (an all -inf window
                            # then points at it); a NaN beats every number, and a later NaN beats an
                            # earlier one (PyTorch's rule: val > max or isnan(val): the last NaN wins)
                            if where == -1 or v > best or v != v:
                                best, where = v, r * wd + s
                    y[n, ch, oh, ow], indices[n, ch, oh, ow] = best, where
    return y, indices


def max_pool2d_loops_backward(g, indices, input_shape):
    """``dx``: each window's gradient goes to the one input that won it; all others get 0.
    ``+=`` because overlapping windows can share a winner."""
    dx = backend.get_array_module(g).zeros(input_shape, g.dtype)
    n_img, c, ho, wo = g.shape
    for n in range(n_img):
        for ch in range(c):
            plane = dx[n, ch].reshape(-1)                              # a view: writes land in dx
            for oh in range(ho):
                for ow in range(wo):
                    plane[indices[n, ch, oh, ow]] += g[n, ch, oh, ow]
    return dx


def max_unpool2d_loops(y, indices, output_size):
    """SegNet's upsampling: each pooled value goes back to the position its maximum came
    from, zeros elsewhere (``output_size`` is ``(H, W)``). The loop of max-pool's backward,
    with one difference: where overlapping windows share a winner, its value arrives twice,
    the same both times, and is *placed*, not added (gradients add up; values do not)."""
    out = backend.get_array_module(y).zeros(y.shape[:2] + tuple(output_size), y.dtype)
    n_img, c, ho, wo = y.shape
    for n in range(n_img):
        for ch in range(c):
            plane = out[n, ch].reshape(-1)                             # a view: writes land in out
            for oh in range(ho):
                for ow in range(wo):
                    plane[indices[n, ch, oh, ow]] = y[n, ch, oh, ow]
    return out


def max_unpool2d_loops_backward(g, indices):
    """``dy``: the unpool is a scatter, so its backward is the gather ``g[index]``."""
    n_img, c = g.shape[:2]
    dy = backend.get_array_module(g).zeros(indices.shape, g.dtype)
    for n in range(n_img):
        for ch in range(c):
            plane = g[n, ch].reshape(-1)
            for oh in range(indices.shape[2]):
                for ow in range(indices.shape[3]):
                    dy[n, ch, oh, ow] = plane[indices[n, ch, oh, ow]]
    return dy


# ---- bilinear interpolation -----------------------------------------------------
def _source(dst, n_in, n_out, align_corners):
    """``(i0, i1, lam)`` for output index ``dst`` on one axis: the course's formula."""
    if align_corners:
        src = dst * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        src = max((dst + 0.5) * n_in / n_out - 0.5, 0.0)           # pixel edges line up; clamped at 0
    i0 = min(int(math.floor(src)), n_in - 1)
    return i0, min(i0 + 1, n_in - 1), src - i0


def interpolate_bilinear(x, size, align_corners=False):
    """``out[oh, ow] = sum over the two rows and two columns around (src_h, src_w)`` of
    ``x`` times ``(1 - lam)`` or ``lam`` per axis; ``size`` is ``(H_out, W_out)``."""
    ho, wo = shapes.as_pair(size, "size", 1)
    h, wd = x.shape[2:]
    out = backend.get_array_module(x).zeros(x.shape[:2] + (ho, wo), x.dtype)
    for oh in range(ho):
        r0, r1, ly = _source(oh, h, ho, align_corners)
        for ow in range(wo):
            c0, c1, lx = _source(ow, wd, wo, align_corners)
            out[:, :, oh, ow] = ((1 - ly) * ((1 - lx) * x[:, :, r0, c0] + lx * x[:, :, r0, c1])
                                 + ly * ((1 - lx) * x[:, :, r1, c0] + lx * x[:, :, r1, c1]))
    return out


def interpolate_bilinear_backward(g, input_size, align_corners=False):
    """``dx``: the same four taps, each adding its weight times the output's gradient
    (the transpose of the linear map above)."""
    h, wd = input_size
    ho, wo = g.shape[2:]
    dx = backend.get_array_module(g).zeros(g.shape[:2] + (h, wd), g.dtype)
    for oh in range(ho):
        r0, r1, ly = _source(oh, h, ho, align_corners)
        for ow in range(wo):
            c0, c1, lx = _source(ow, wd, wo, align_corners)
            for r, c, weight in ((r0, c0, (1 - ly) * (1 - lx)), (r0, c1, (1 - ly) * lx),
                                 (r1, c0, ly * (1 - lx)), (r1, c1, ly * lx)):
                dx[:, :, r, c] += weight * g[:, :, oh, ow]
    return dx
