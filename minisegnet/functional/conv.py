"""Convolution through im2col: ``unfold``, ``fold``, ``conv2d``, ``conv_transpose2d``.

The whole family rests on one rearrangement. **im2col** (``unfold``) copies
every kernel-sized window of the (padded) input into a column::

    x (N, C, H, W)  ->  cols (N, C*kh*kw, L),   L = H_out * W_out
    cols[n, (c, i, j), (oh, ow)] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]

after which a convolution is a single matrix product (a GEMM)::

    y[n] = W (C_out, C*kh*kw)  @  cols[n] (C*kh*kw, L)   ->  (C_out, L) = (C_out, H_out, W_out)

**col2im** (``fold``) is the adjoint of im2col: it adds every column back
into the window it came from (overlapping windows sum). Two faces of one
mechanism follow:

* the gradient of conv2d with respect to its input is ``W^T @ grad_y``
  folded back with col2im, and that is exactly ``conv_transpose2d``;
* ``conv_transpose2d``'s own input gradient is therefore a plain conv2d.

The weight gradient is the other GEMM with the same columns:
``dW = sum_n grad_y[n] @ cols[n]^T``.

Both loops below (im2col and col2im) run over the ``kh * kw`` kernel
offsets with one strided slice each, so the same code runs on NumPy and
CuPy, and there is no scatter-add.

Memory. The column buffer holds ``N * C*kh*kw * H_out*W_out * itemsize``
bytes: ``kh*kw`` times the input. For the original U-Net's 64-channel 3x3
layer at 570x570 that is about 750 MB per float32 image. The columns are
therefore built a piece at a time, each under ``get_im2col_limit()``
(default 32 MiB, set with ``set_im2col_limit``): as many whole images as
fit, or, when one image's columns alone exceed the limit, one image a band
of output rows at a time. Nothing column-sized is kept between forward and
backward: the weight gradient builds the input's columns again (one more
im2col, against ``kh*kw`` times every layer's input held until backward).
The col2im path (strided transposed convs, and the input gradient of
strided convs) is chunked by whole images only.

Speed. Scratch arrays (padded inputs, column buffers) come from a small
cache instead of being allocated afresh: a fresh multi-megabyte array is
fresh pages from the operating system, and touching them costs about as
much as the copy itself. The cache keeps one flat buffer per role
(columns, padded input, col2im image), each at most the limit, and every
call views the front of it in the shape it needs. Arrays handed back to
the caller (outputs and gradients) are always newly allocated, never a
cached buffer or a view of one. ``clear_buffer_cache()`` empties the cache
and ``set_buffer_reuse(False)`` turns it off (do that if you call these
ops from several threads at once).
"""
from collections import OrderedDict

import numpy as np

from .. import backend, shapes
from ..autograd import Function

__all__ = ["unfold", "fold", "conv2d", "conv_transpose2d", "set_im2col_limit", "get_im2col_limit"]


# ---- settings: the memory limit and the scratch buffers ----------------------------
_im2col_limit = 32 * 2**20
_reuse_buffers = True
# Off only to measure what the flipped-kernel lever buys (benchmarks/bench_conv.py --levers).
_flip_at_stride_1 = True
# Off only to measure the direct depthwise path against im2col (bench_conv.py --levers).
_direct_depthwise = True
_cache = OrderedDict()   # (backend, role, dtype) -> flat array, at most one per role


def set_im2col_limit(nbytes):
    """Bound the column buffer (and each cached scratch buffer) to ``nbytes`` bytes.

    The columns of a batch need ``N * C*kh*kw * H_out*W_out * itemsize``
    bytes; above the limit the batch is processed a few images at a time,
    and an image whose own columns exceed the limit a band of output rows at
    a time (at least one row). Smaller limits save memory and cost a little
    speed. Returns the previous limit.
    """
    global _im2col_limit
    if not isinstance(nbytes, (int, np.integer)) or isinstance(nbytes, bool) or nbytes < 1:
        raise ValueError(f"nbytes must be a positive integer number of bytes, got {nbytes!r}")
    previous, _im2col_limit = _im2col_limit, int(nbytes)
    for key in [k for k, buf in _cache.items() if buf.nbytes > _im2col_limit]:
        del _cache[key]
    return previous


def get_im2col_limit():
    """The current column-buffer limit in bytes (default 32 MiB)."""
    return _im2col_limit


def set_buffer_reuse(enabled):
    """Turn the scratch-buffer cache on (default) or off; returns the previous setting.

    The cache is not thread-safe: two threads running convolutions at once
    would share a buffer. Turn it off for that.
    """
    global _reuse_buffers
    previous, _reuse_buffers = _reuse_buffers, bool(enabled)
    if not _reuse_buffers:
        clear_buffer_cache()
    return previous


def clear_buffer_cache():
    """Drop every cached scratch buffer (frees their memory)."""
    _cache.clear()


def _scratch(xp, shape, dtype, role):
    """A work array of ``shape`` whose contents are undefined.

    With reuse on, every call with the same ``role`` (and dtype) gets a view
    of one flat buffer, grown when a larger shape asks for it but never past
    the limit (larger requests get a fresh array). So the array must never
    be returned to a caller, and two arrays of one role must not be in use
    at the same time.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    size = int(np.prod(shape))
    if not _reuse_buffers or size * dtype.itemsize > _im2col_limit:
        return xp.empty(shape, dtype)
    key = (xp.__name__, role, dtype.str)
    buf = _cache.get(key)
    if buf is None or buf.size < size:
        _cache.pop(key, None)            # free the smaller one before allocating
        buf = _cache[key] = xp.empty(size, dtype)
    return buf[:size].reshape(shape)


def _chunks(n_images, bytes_per_image):
    """``(start, stop)`` image ranges whose column buffers fit the limit (>= 1 image each)."""
    step = max(1, _im2col_limit // max(1, bytes_per_image))
    return [(n0, min(n0 + step, n_images)) for n0 in range(0, n_images, step)]


def _row_bands(out_h, bytes_per_row):
    """``(start, stop)`` ranges of output rows whose columns (for one image) fit the limit (>= 1 row)."""
    step = max(1, _im2col_limit // max(1, bytes_per_row))
    return [(r0, min(r0 + step, out_h)) for r0 in range(0, out_h, step)]


# ---- the three array-level pieces: pad, im2col, col2im -----------------------------
def _pad(x, pads):
    """``x`` (n, C, H, W) with ``pads = (top, bottom, left, right)`` zero rows/columns added.

    A negative entry crops instead (the backward passes need that when the
    forward padding exceeds the kernel's reach). Returns ``x`` itself, a view,
    or a scratch buffer: never hand the result to a caller.
    """
    if pads == (0, 0, 0, 0):
        return x
    top, bottom, left, right = pads
    n, c, h, w = x.shape
    x = x[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    top, bottom, left, right = (max(p, 0) for p in pads)
    if top == bottom == left == right == 0:
        return x
    h, w = x.shape[2:]
    xp = backend.get_array_module(x)
    out = _scratch(xp, (n, c, h + top + bottom, w + left + right), x.dtype, "pad")
    out[:, :, top:top + h, left:left + w] = x
    # the buffer is shared with other shapes: zero the four border strips each time
    out[:, :, :top] = 0
    out[:, :, top + h:] = 0
    out[:, :, top:top + h, :left] = 0
    out[:, :, top:top + h, left + w:] = 0
    return out


def _tap(i, j, stride, dilation, out_hw):
    """Index of the padded-input pixels under kernel tap (i, j) for every output
    position at once: ``x_pad[..., i*dh + oh*sh, j*dw + ow*sw]``, one strided slice."""
    (sh, sw), (dh, dw), (ho, wo) = stride, dilation, out_hw
    top, left = i * dh, j * dw
    return (Ellipsis, slice(top, top + sh * (ho - 1) + 1, sh), slice(left, left + sw * (wo - 1) + 1, sw))


def _im2col(x_pad, kernel, stride, dilation, out_hw, cols):
    """im2col: fill ``cols`` (n, C*kh*kw, L) with the windows of ``x_pad`` (n, C, Hp, Wp).

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
    when stride < effective kernel, and the overlaps sum.
    """
    n, c = x_pad.shape[:2]
    (kh, kw), (ho, wo) = kernel, out_hw
    view = cols.reshape(n, c, kh, kw, ho, wo)
    for i in range(kh):
        for j in range(kw):
            x_pad[_tap(i, j, stride, dilation, out_hw)] += view[:, :, i, j]
    return x_pad


def _padded_out_hw(x_hw, pads, kernel, stride, dilation):
    """Conv output size for an input of ``x_hw`` with (possibly asymmetric) ``pads``."""
    padded = (x_hw[0] + pads[0] + pads[1], x_hw[1] + pads[2] + pads[3])
    return shapes.conv2d_output_size(padded, kernel, stride, 0, dilation)


def _fold_into(cols, out, kernel, stride, pads, dilation, conv_hw):
    """col2im of ``cols`` (n, C*kh*kw, L) into ``out`` (n, C, H, W), overwriting it.

    The padded border receives contributions too; they are dropped, since
    padding is not part of the input.
    """
    n, c, h, w = out.shape
    top, bottom, left, right = pads
    if pads == (0, 0, 0, 0):
        out[...] = 0
        _col2im(cols, out, kernel, stride, dilation, conv_hw)
        return out
    xp = backend.get_array_module(cols)
    x_pad = _scratch(xp, (n, c, h + top + bottom, w + left + right), cols.dtype, "col2im")
    x_pad[...] = 0
    _col2im(cols, x_pad, kernel, stride, dilation, conv_hw)
    out[...] = x_pad[:, :, top:top + h, left:left + w]
    return out


# ---- convolution on arrays: forward GEMM, weight-gradient GEMM, transposed GEMM ----
def _columns(x, kernel, stride, pads, dilation, out_hw):
    """Yield ``(n0, n1, r0, r1, cols)``: ``cols`` (n1-n0, C*kh*kw, (r1-r0)*W_out) holds the
    columns of images ``n0:n1`` of ``x`` for output rows ``r0:r1``.

    The pieces keep the column buffer under the memory limit: as many whole
    images as fit (then ``r0, r1 = 0, H_out``), or, when one image's columns
    alone exceed the limit, one image a band of output rows at a time. The
    buffer is reused from piece to piece (and call to call), so use ``cols``
    before asking for the next piece and never return it.
    """
    xp = backend.get_array_module(x)
    n_img, c = x.shape[:2]
    (kh, kw), sh, dh, (ho, wo) = kernel, stride[0], dilation[0], out_hw
    bytes_per_row = c * kh * kw * wo * x.dtype.itemsize
    chunks = _chunks(n_img, ho * bytes_per_row)
    bands = _row_bands(ho, bytes_per_row) if chunks[0][1] == 1 else [(0, ho)]
    for n0, n1 in chunks:
        x_pad = _pad(x[n0:n1], pads)
        for r0, r1 in bands:
            # the padded input rows that output rows r0:r1 read
            rows_in = x_pad[:, :, r0 * sh:(r1 - 1) * sh + dh * (kh - 1) + 1]
            cols = _scratch(xp, (n1 - n0, c * kh * kw, (r1 - r0) * wo), x.dtype, "cols")
            yield n0, n1, r0, r1, _im2col(rows_in, kernel, stride, dilation, (r1 - r0, wo), cols)


def _conv2d(x, w, stride, pads, dilation, groups, weight_grad_of=None):
    """y (N, C_out, H_out, W_out) = conv of ``x`` (N, C, H, W) with ``w`` (C_out, C/g, kh, kw).

    im2col, then one GEMM per image batched over groups:
    ``(g, C_out/g, C/g*kh*kw) @ (n, g, C/g*kh*kw, L) -> (n, g, C_out/g, L)``,
    which is already the output layout: no transpose (a band of rows writes
    its slice of ``L``). ``pads`` may be asymmetric or negative (crop).

    ``weight_grad_of`` (N, C_out, H_out, W_out), if given, also computes
    ``_conv2d_weight_grad(x, weight_grad_of, ...)`` from the same columns
    and returns ``(y, grad_w)``: the transposed conv's backward needs both
    ``conv2d(g, W)`` and a weight gradient that reads ``unfold(g)``.
    """
    xp = backend.get_array_module(x, w)
    n_img, c, h, wd = x.shape
    c_out, c_g, kh, kw = w.shape
    ho, wo = _padded_out_hw((h, wd), pads, (kh, kw), stride, dilation)
    w_g = w.reshape(groups, c_out // groups, c_g * kh * kw)
    y = xp.empty((n_img, groups, c_out // groups, ho * wo), x.dtype)
    grad_w = None if weight_grad_of is None else xp.zeros(w_g.shape, x.dtype)
    for n0, n1, r0, r1, cols in _columns(x, (kh, kw), stride, pads, dilation, (ho, wo)):
        cols = cols.reshape(n1 - n0, groups, c_g * kh * kw, (r1 - r0) * wo)
        band = slice(r0 * wo, r1 * wo)
        xp.matmul(w_g, cols, out=y[n0:n1, :, :, band])
        if grad_w is not None:
            gy = weight_grad_of[n0:n1].reshape(n1 - n0, groups, c_out // groups, ho * wo)[..., band]
            grad_w += xp.matmul(gy, cols.transpose(0, 1, 3, 2)).sum(axis=0)
    y = y.reshape(n_img, c_out, ho, wo)
    return y if grad_w is None else (y, grad_w.reshape(w.shape))


def _conv2d_weight_grad(x, grad_y, kernel, stride, pads, dilation, groups):
    """dW (C_out, C/g, kh, kw) = sum_n grad_y[n] (C_out, L) @ unfold(x)[n]^T (L, C*kh*kw), per group.

    Also serves conv_transpose2d, whose weight gradient is this with the
    roles of input and output swapped. The columns of ``x`` are built again
    here rather than kept from the forward pass: keeping them would hold
    ``kh*kw`` times every layer's input until backward.
    """
    xp = backend.get_array_module(x, grad_y)
    n_img, c = x.shape[:2]
    c_out, (ho, wo) = grad_y.shape[1], grad_y.shape[2:]
    rows_g = c // groups * kernel[0] * kernel[1]
    gy = grad_y.reshape(n_img, groups, c_out // groups, ho * wo)
    grad_w = xp.zeros((groups, c_out // groups, rows_g), x.dtype)
    for n0, n1, r0, r1, cols in _columns(x, kernel, stride, pads, dilation, (ho, wo)):
        cols = cols.reshape(n1 - n0, groups, rows_g, (r1 - r0) * wo)
        grad_w += xp.matmul(gy[n0:n1, :, :, r0 * wo:r1 * wo], cols.transpose(0, 1, 3, 2)).sum(axis=0)
    return grad_w.reshape((c_out, c // groups) + tuple(kernel))


def _flip_for_transpose(w, groups):
    """Turn a transposed-conv weight (C_in, C_out/g, kh, kw) into the conv weight
    (C_out, C_in/g, kh, kw) that computes the same map at stride 1: swap the
    channel roles within each group and rotate the kernel by 180 degrees."""
    xp = backend.get_array_module(w)
    c_in, c_og, kh, kw = w.shape
    swapped = w.reshape(groups, c_in // groups, c_og, kh, kw).transpose(0, 2, 1, 3, 4)
    return xp.ascontiguousarray(swapped.reshape(groups * c_og, c_in // groups, kh, kw)[:, :, ::-1, ::-1])


def _conv_transpose2d(x, w, stride, pads, dilation, groups, out_hw):
    """The transposed conv of ``x`` (N, C_in, H, W) with ``w`` (C_in, C_out/g, kh, kw), of size ``out_hw``.

    This is the input gradient of ``_conv2d(., w, stride, pads, dilation,
    groups)`` for an input of size ``out_hw``: ``cols = W^T @ x`` per group,
    then col2im adds each column back into its window.

    At stride 1 the same map is a plain conv of ``x`` with the flipped
    kernel, padded by ``d(k-1) - pad`` (a negative amount crops): no col2im
    at all, just the forward path (used unless C_in > 2 C_out, where the
    flipped conv's columns would be the larger buffer).
    """
    xp = backend.get_array_module(x, w)
    n_img, c_in, h, wd = x.shape
    c_og, kh, kw = w.shape[1:]
    c_out = c_og * groups
    # The flipped conv unfolds x (C_in channels), col2im makes C_out*kh*kw
    # columns and then adds them up: flip unless C_in is much the larger.
    if stride == (1, 1) and _flip_at_stride_1 and c_in <= 2 * c_out:
        reach_h, reach_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        top, left = reach_h - pads[0], reach_w - pads[2]
        flipped_pads = (top, out_hw[0] + reach_h - h - top, left, out_hw[1] + reach_w - wd - left)
        return _conv2d(x, _flip_for_transpose(w, groups), stride, flipped_pads, dilation, groups)
    rows, length = c_out * kh * kw, h * wd
    w_t = w.reshape(groups, c_in // groups, c_og * kh * kw).transpose(0, 2, 1)   # (g, C_out/g*kh*kw, C_in/g)
    out = xp.empty((n_img, c_out) + tuple(out_hw), x.dtype)
    chunks = _chunks(n_img, rows * length * x.dtype.itemsize)
    buf = _scratch(xp, (chunks[0][1], groups, c_og * kh * kw, length), x.dtype, "cols")
    for n0, n1 in chunks:
        cols = buf[:n1 - n0]
        xp.matmul(w_t, x[n0:n1].reshape(n1 - n0, groups, c_in // groups, length), out=cols)
        _fold_into(cols.reshape(n1 - n0, rows, length), out[n0:n1], (kh, kw), stride, pads, dilation, (h, wd))
    return out


# ---- depthwise convolution: a direct path ------------------------------------------
def _is_depthwise(x, w, groups, stride):
    """Whether the direct path below runs: a strided depthwise conv (groups == C_in == C_out)."""
    return _direct_depthwise and groups > 1 and groups == x.shape[1] == w.shape[0] and stride != (1, 1)


def _depthwise_conv2d(x, w, stride, pads, dilation):
    """y[n, c] = sum_{i,j} w[c, 0, i, j] * x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw].

    A depthwise conv (groups == C_in == C_out, MobileNetV2's blocks) gives
    each channel its own kh x kw kernel, so there is no matrix product to
    speak of: through im2col it is C GEMMs of one row each. Directly it is
    ``kh*kw`` multiply-adds of a strided slice of the padded input by a
    per-channel weight, with no column buffer.

    Why only at stride > 1: measured on (8, 32, 64, 64), 3x3, one thread, the
    im2col path is faster at stride 1 (its column copy runs the same inner
    loops as the multiply here, in half the passes, and NumPy's batched
    matmul handles the one-row GEMMs well), but at stride 2 its input
    gradient needs col2im, where the direct scatter takes half the time
    (fwd+bwd about 13 ms against 18 ms). See docs/benchmarks.md.
    """
    xp = backend.get_array_module(x, w)
    n, c = x.shape[:2]
    kh, kw = w.shape[2:]
    out_hw = _padded_out_hw(x.shape[2:], pads, (kh, kw), stride, dilation)
    x_pad = _pad(x, pads)
    y = xp.zeros((n, c) + out_hw, x.dtype)
    term = _scratch(xp, y.shape, x.dtype, "depthwise")
    for i in range(kh):
        for j in range(kw):
            xp.multiply(x_pad[_tap(i, j, stride, dilation, out_hw)], w[:, :, i, j].reshape(1, c, 1, 1), out=term)
            y += term
    return y


def _depthwise_grads(x, w, g, stride, pads, dilation, need_x, need_w):
    """The two gradients of ``_depthwise_conv2d``, tap by tap:
    ``dx_pad[tap(i, j)] += g * w[c, 0, i, j]`` (then the padding is cropped off) and
    ``dW[c, 0, i, j] = sum_{n, oh, ow} g * x_pad[tap(i, j)]``."""
    xp = backend.get_array_module(x, g)
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    top, bottom, left, right = pads
    out_hw = g.shape[2:]
    term = _scratch(xp, g.shape, g.dtype, "depthwise")
    gx_pad = xp.zeros((n, c, h + top + bottom, wd + left + right), g.dtype) if need_x else None
    x_pad = _pad(x, pads) if need_w else None
    gw = xp.empty(w.shape, g.dtype) if need_w else None
    for i in range(kh):
        for j in range(kw):
            tap = _tap(i, j, stride, dilation, out_hw)
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


# ---- autograd Functions --------------------------------------------------------
class Unfold(Function):
    """cols[n, (c,i,j), l] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw];  dx = fold(g)."""

    def __init__(self, kernel, stride, pads, dilation):
        self.kernel, self.stride, self.pads, self.dilation = kernel, stride, pads, dilation

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.x_shape = x.shape
        self.out_hw = _padded_out_hw(x.shape[2:], self.pads, self.kernel, self.stride, self.dilation)
        n, c = x.shape[:2]
        cols = xp.empty((n, c * self.kernel[0] * self.kernel[1], self.out_hw[0] * self.out_hw[1]), x.dtype)
        return _im2col(_pad(x, self.pads), self.kernel, self.stride, self.dilation, self.out_hw, cols)

    def backward(self, g):
        xp = backend.get_array_module(g)
        out = xp.empty(self.x_shape, g.dtype)
        return _fold_into(g, out, self.kernel, self.stride, self.pads, self.dilation, self.out_hw)


class Fold(Function):
    """out = col2im(cols) (overlaps sum);  dcols = unfold(g)."""

    def __init__(self, out_shape, kernel, stride, pads, dilation, conv_hw):
        self.out_shape, self.kernel, self.stride = out_shape, kernel, stride
        self.pads, self.dilation, self.conv_hw = pads, dilation, conv_hw

    def forward(self, cols):
        xp = backend.get_array_module(cols)
        out = xp.empty(self.out_shape, cols.dtype)
        return _fold_into(cols, out, self.kernel, self.stride, self.pads, self.dilation, self.conv_hw)

    def backward(self, g):
        xp = backend.get_array_module(g)
        n, c = g.shape[:2]
        cols = xp.empty((n, c * self.kernel[0] * self.kernel[1], self.conv_hw[0] * self.conv_hw[1]), g.dtype)
        return _im2col(_pad(g, self.pads), self.kernel, self.stride, self.dilation, self.conv_hw, cols)


class Conv2d(Function):
    """y = W * x + b (cross-correlation).

    dx = conv_transpose2d(g, W) (same stride, padding, dilation, groups; sized like x),
    dW = sum_n g[n] @ unfold(x)[n]^T,  db = sum of g over (N, H_out, W_out).
    A strided depthwise conv (groups == C_in == C_out) takes the direct path
    instead (``_depthwise_conv2d``; same numbers, no GEMM, no col2im).
    """

    def __init__(self, stride, pads, dilation, groups):
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups

    def forward(self, x, w, b):
        self.x, self.w = x, w
        self.depthwise = _is_depthwise(x, w, self.groups, self.stride)
        if self.depthwise:
            y = _depthwise_conv2d(x, w, self.stride, self.pads, self.dilation)
        else:
            y = _conv2d(x, w, self.stride, self.pads, self.dilation, self.groups)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, g):
        gx = gw = gb = None
        if self.depthwise:
            gx, gw = _depthwise_grads(self.x, self.w, g, self.stride, self.pads, self.dilation,
                                      self.needs_input_grad[0], self.needs_input_grad[1])
        else:
            if self.needs_input_grad[0]:
                gx = _conv_transpose2d(g, self.w, self.stride, self.pads, self.dilation, self.groups,
                                       self.x.shape[2:])
            if self.needs_input_grad[1]:
                gw = _conv2d_weight_grad(self.x, g, self.w.shape[2:], self.stride, self.pads,
                                         self.dilation, self.groups)
        if self.needs_input_grad[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


class ConvTranspose2d(Function):
    """y = W^T * x + b (the input gradient of conv2d).

    dx = conv2d(g, W) (same stride, padding, dilation, groups),
    dW = sum_n x[n] @ unfold(g)[n]^T,  db = sum of g over (N, H_out, W_out).
    """

    def __init__(self, stride, pads, output_padding, dilation, groups, out_hw):
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.output_padding, self.out_hw = output_padding, out_hw

    def forward(self, x, w, b):
        self.x, self.w = x, w
        y = _conv_transpose2d(x, w, self.stride, self.pads, self.dilation, self.groups, self.out_hw)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, g):
        # output_padding rows/columns at the bottom/right are read by no input
        # pixel: the conv that maps g back to x's size stops short of them.
        top, bottom, left, right = self.pads
        conv_pads = (top, bottom - self.output_padding[0], left, right - self.output_padding[1])
        gx = gw = gb = None
        if self.needs_input_grad[0] and self.needs_input_grad[1]:
            # both read unfold(g): one pass over the columns
            gx, gw = _conv2d(g, self.w, self.stride, conv_pads, self.dilation, self.groups, weight_grad_of=self.x)
        elif self.needs_input_grad[0]:
            gx = _conv2d(g, self.w, self.stride, conv_pads, self.dilation, self.groups)
        elif self.needs_input_grad[1]:
            gw = _conv2d_weight_grad(g, self.x, self.w.shape[2:], self.stride, conv_pads,
                                     self.dilation, self.groups)
        if self.needs_input_grad[2]:
            gb = g.sum(axis=(0, 2, 3))
        return gx, gw, gb


# ---- validation ------------------------------------------------------------------
def _check_float_array(x, name, layout="(N, C, H, W)"):
    """``x`` must be a floating-point Tensor or array with as many axes as ``layout`` names."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be a Tensor or an array, got {type(x).__name__}")
    ndim = layout.count(",") + 1
    if len(x.shape) != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {tuple(x.shape)}")
    if np.dtype(x.dtype).kind != "f":
        raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")


def _check_weight_and_bias(x, weight, bias, groups, transposed):
    """Shapes and dtypes of a conv's operands; returns (groups, C_out)."""
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    _check_float_array(weight, "weight", layout="(C_in, C_out/groups, kh, kw)" if transposed
                       else "(C_out, C_in/groups, kh, kw)")
    if weight.dtype != x.dtype:
        raise TypeError(f"input and weight must have the same dtype, got {x.dtype} and {weight.dtype}")
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
        if not hasattr(bias, "shape") or tuple(bias.shape) != (c_out,):
            raise ValueError(f"bias must have shape ({c_out},), got "
                             f"{tuple(bias.shape) if hasattr(bias, 'shape') else type(bias).__name__}")
        if bias.dtype != x.dtype:
            raise TypeError(f"input and bias must have the same dtype, got {x.dtype} and {bias.dtype}")
    return groups, c_out


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


# ---- public functions ----------------------------------------------------------------
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """im2col: every kernel-sized window of ``input`` as a column, like ``torch.nn.functional.unfold``.

    ``input`` (N, C, H, W) -> (N, C*kh*kw, L) with ``L = H_out * W_out``
    (``shapes.conv2d_output_size``) and
    ``out[n, (c*kh + i)*kw + j, oh*W_out + ow] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]``.
    Every argument is an int or an (h, w) pair. Only 4-D input is accepted.
    """
    _check_float_array(input, "input")
    k = shapes.as_pair(kernel_size, "kernel_size", 1)
    d = shapes.as_pair(dilation, "dilation", 1)
    p = shapes.as_pair(padding, "padding", 0)
    s = shapes.as_pair(stride, "stride", 1)
    shapes.conv2d_output_size(tuple(input.shape[2:]), kernel_size, stride, padding, dilation)   # window fits
    return Unfold(k, s, (p[0], p[0], p[1], p[1]), d)(input)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """col2im: add the columns of ``input`` back into an image, like ``torch.nn.functional.fold``.

    ``input`` (N, C*kh*kw, L) -> (N, C, H, W) with ``(H, W) = output_size``;
    overlapping windows sum, so ``fold(unfold(x))`` is ``x`` times how many
    windows cover each pixel. ``L`` must equal the number of windows,
    ``H_out * W_out`` from ``shapes.conv2d_output_size(output_size, ...)``.
    ``fold`` is the adjoint of ``unfold``: ``<unfold(x), c> == <x, fold(c)>``.
    """
    _check_float_array(input, "input", layout="(N, C*kh*kw, L)")
    size = shapes.as_pair(output_size, "output_size", 1)
    k = shapes.as_pair(kernel_size, "kernel_size", 1)
    d = shapes.as_pair(dilation, "dilation", 1)
    p = shapes.as_pair(padding, "padding", 0)
    s = shapes.as_pair(stride, "stride", 1)
    conv_hw = shapes.conv2d_output_size(size, k, s, p, d)
    n, rows, length = input.shape
    if rows % (k[0] * k[1]):
        raise ValueError(f"input.shape[1] = {rows} must be divisible by kh*kw = {k[0] * k[1]} "
                         f"(kernel_size={kernel_size!r})")
    if length != conv_hw[0] * conv_hw[1]:
        raise ValueError(f"input.shape[2] = {length} must equal the number of windows "
                         f"{conv_hw[0]}*{conv_hw[1]} = {conv_hw[0] * conv_hw[1]} for output_size={output_size!r}")
    out_shape = (n, rows // (k[0] * k[1])) + size
    return Fold(out_shape, k, s, (p[0], p[0], p[1], p[1]), d, conv_hw)(input)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), like ``torch.nn.functional.conv2d``.

    ``y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] * x_pad[n, g*C/g + c, oh*sh + i*dh, ow*sw + j*dw]``
    where ``g`` is the group of output channel ``o``.

    Shapes: ``input`` (N, C_in, H, W), ``weight`` (C_out, C_in/groups, kh, kw),
    ``bias`` (C_out,) or None -> (N, C_out, H_out, W_out), sizes from
    ``shapes.conv2d_output_size``. ``padding``: an int, an (h, w) pair,
    ``"valid"`` (no padding) or ``"same"`` (output size = input size; stride 1
    only; total padding ``d(k-1)``, the odd pixel at the bottom/right).
    ``groups == C_in`` is a depthwise convolution.

    Computed as im2col + one GEMM; see the module docstring for the
    gradients and for the memory limit.
    """
    _check_float_array(input, "input")
    groups, _ = _check_weight_and_bias(input, weight, bias, groups, transposed=False)
    k = tuple(weight.shape[2:])
    s = shapes.as_pair(stride, "stride", 1)
    d = shapes.as_pair(dilation, "dilation", 1)
    pads = _conv_pads(padding, k, s, d)
    shapes.conv2d_output_size(tuple(input.shape[2:]), k, stride, padding, dilation)   # the kernel must fit
    return Conv2d(s, pads, d, groups)(input, weight, bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution, like ``torch.nn.functional.conv_transpose2d``.

    The input gradient of ``conv2d`` with the same ``weight``, stride,
    padding, dilation and groups: each input pixel spreads ``x[n, c] * W[c]``
    into a kernel-sized window of the output, windows ``s`` pixels apart, and
    overlaps sum. Size per axis
    ``o = (i - 1)s - 2p + d(k-1) + output_padding + 1``
    (``shapes.conv_transpose2d_output_size``); ``output_padding < max(s, d)``
    picks which of the conv inputs that share one conv output size to make,
    and adds rows/columns at the bottom/right only.

    Shapes: ``input`` (N, C_in, H, W), ``weight`` (C_in, C_out/groups, kh, kw),
    ``bias`` (C_out,) or None -> (N, C_out, H_out, W_out).
    Note PyTorch's argument order: ``groups`` before ``dilation``.
    """
    _check_float_array(input, "input")
    groups, _ = _check_weight_and_bias(input, weight, bias, groups, transposed=True)
    k = tuple(weight.shape[2:])
    s = shapes.as_pair(stride, "stride", 1)
    d = shapes.as_pair(dilation, "dilation", 1)
    p = shapes.as_pair(padding, "padding", 0)
    op = shapes.as_pair(output_padding, "output_padding", 0)
    out_hw = shapes.conv_transpose2d_output_size(tuple(input.shape[2:]), k, stride, padding, output_padding,
                                                 dilation)
    return ConvTranspose2d(s, (p[0], p[0], p[1], p[1]), op, d, groups, out_hw)(input, weight, bias)
