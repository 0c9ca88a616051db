"""Pooling and unpooling: max_pool2d (with indices), avg_pool2d, adaptive_avg_pool2d, max_unpool2d.

All work on ``(N, C, H, W)`` tensors, one ``(n, c)`` plane at a time, with
PyTorch's semantics. Per spatial axis, with input size ``i``, kernel ``k``,
stride ``s`` (default ``k``), padding ``p`` and dilation ``d``, output ``o``
looks at the input positions

    o*s - p + a*d,   a = 0 .. k-1                    (window ``o``, offset ``a``)

and ``o`` runs over ``shapes.max_pool2d_output_size`` (floor, or ceil with
the rule that a window may not start in the right padding).

How the windows are visited: instead of looping over output pixels, the code
loops over the ``k_h x k_w`` window *offsets* ``(a, b)``. For a fixed offset,
the input pixels read by all windows form one strided slice of the padded
input, ``x_pad[..., a*d :: s, b*d :: s]`` (``o_h x o_w`` of them), so each step
is one vectorised array operation, and no ``(N, C, o_h, o_w, k_h, k_w)``
buffer is ever built (the im2col idea, without the copy). The backward pass
walks the same offsets and adds each slice's share of the gradient back (copies
it, when no two windows overlap). Three switchable shortcuts at the end of the
max-pooling section make the loop faster without changing its answers.
"""
import numpy as np

from .. import backend, checks, parallel, shapes
from ..autograd import Function, Tensor
from .basic import empty_batch
from .promotion import opmath

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_unpool2d"]


def _window_slices(offset_h, offset_w, out_hw, stride):
    """The strided slice of the padded input read at window offset (offset_h, offset_w)."""
    (ho, wo), (sh, sw) = out_hw, stride
    return (Ellipsis, slice(offset_h, offset_h + sh * (ho - 1) + 1, sh),
            slice(offset_w, offset_w + sw * (wo - 1) + 1, sw))


def _padded_extent(i, o, k, s, p, d):
    """Rows (or columns) the padded buffer needs: the input with ``p`` on each side,
    plus, in ceil mode, the part of the last window that hangs past the right padding."""
    return max(i + 2 * p, (o - 1) * s + d * (k - 1) + 1)


def _pad_to(x, extent, padding, fill):
    """``x`` placed at (p_h, p_w) in an ``extent``-sized buffer filled with ``fill``."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    out = xp.full((n, c) + extent, fill, dtype=x.dtype)
    out[..., padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    return out


# ---- max pooling ------------------------------------------------------------------
class MaxPool2d(Function):
    """y[n, c, oh, ow] = max over the window of x padded with -inf.

    Padding is -inf, never 0, so a window of negative numbers keeps its true
    maximum. NaN wins (it propagates, as in PyTorch). Ties go to the first
    maximum in row-major window order: a later element replaces the running
    maximum only if it is strictly larger. The flat index ``h*W + w`` of the
    winner within its ``(n, c)`` plane is what ``return_indices`` gives
    (PyTorch's convention, and what ``max_unpool2d`` takes).

    Backward: dx = g routed to the winning element of each window (summed
    where overlapping windows share a winner); dx = 0 elsewhere.

    Only the winner's offset ``a*kw + b`` within its window is kept for
    backward (one byte per output for kernels up to 16x16); the int64 flat
    indices are built only when ``return_indices`` asks for them.
    """

    def __init__(self, kernel_size, stride, padding, dilation, out_hw, want_indices):
        self.k, self.s, self.p, self.d = kernel_size, stride, padding, dilation
        self.out_hw, self.want_indices = out_hw, want_indices

    def forward(self, x):
        xp = backend.get_array_module(x)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.k, self.s, self.p, self.d
        (ho, wo), (h, w) = self.out_hw, x.shape[2:]
        self.in_shape = x.shape
        self.extent = (_padded_extent(h, ho, kh, sh, ph, dh), _padded_extent(w, wo, kw, sw, pw, dw))
        no_padding = self.extent == (h, w)        # then the slices can read x itself, no copy
        x_pad = x if no_padding else _pad_to(x, self.extent, self.p, -np.inf)

        # Start like PyTorch: running max -inf, winner = the first window element
        # inside the input (so an all -inf window reports a real pixel). The small
        # index tables are computed with xp, where x lives: nothing crosses to a GPU.
        row0, col0 = xp.arange(ho) * sh - ph, xp.arange(wo) * sw - pw     # window origins
        first_a = xp.maximum(0, -(row0 // dh))        # smallest a with row0 + a*dh >= 0
        first_b = xp.maximum(0, -(col0 // dw))
        best = xp.full(x.shape[:2] + (ho, wo), -np.inf, dtype=x.dtype)
        winner = xp.broadcast_to(first_a[:, None] * kw + first_b[None, :],
                                 best.shape).astype(np.uint8 if kh * kw <= 256 else np.int32)

        # Without padding (x_pad is x), offset (0, 0) is inside every window: the running
        # maximum can start as that slice itself (what the comparison would give), one pass fewer.
        start_at_first = START_AT_FIRST and no_padding

        def slab(i):   # images i; parallel.over_batch shares the slabs over the CPU cores
            best_i, winner_i, x_i = best[i], winner[i], x_pad[i]
            for a in range(kh):
                for b in range(kw):
                    window = x_i[_window_slices(a * dh, b * dw, self.out_hw, self.s)]
                    if start_at_first and a == b == 0:
                        best_i[...] = window
                        continue
                    better = (window > best_i) | xp.isnan(window)
                    assign_where(best_i, window, better)
                    assign_where(winner_i, winner.dtype.type(a * kw + b), better)

        parallel.over_batch(slab, x)
        self.winner = winner          # window offset a*kw + b of each maximum
        if self.want_indices:
            a, b = winner.astype(np.int64) // kw, winner.astype(np.int64) % kw
            rows = row0.reshape(ho, 1) + a * dh
            cols = col0.reshape(1, wo) + b * dw
            self.indices = (rows * w + cols).astype(np.int64)
        return best

    def backward(self, g):
        xp = backend.get_array_module(g)
        (kh, kw), (dh, dw) = self.k, self.d
        # Windows that do not overlap (stride >= the window's extent, as in U-Net's 2x2
        # pooling): each input pixel is in one window at most, so the gradient is copied
        # to the winners instead of added (no ``where`` temporary, no addition). Windows
        # that also tile the input (stride = kernel, no dilation, no padding, no pixel
        # left over) write every pixel once: the gradient or 0, no zeros filled first.
        (sh, sw) = self.s
        disjoint = COPY_IF_DISJOINT and sh > dh * (kh - 1) and sw > dw * (kw - 1)
        (ho, wo), (h, w) = self.out_hw, self.in_shape[2:]
        tiled = (disjoint and self.s == self.k and self.d == (1, 1) and self.p == (0, 0)
                 and (ho * sh, wo * sw) == (h, w))
        g_pad = (xp.empty if tiled else xp.zeros)(self.in_shape[:2] + self.extent, dtype=g.dtype)

        def slab(i):
            g_i, winner_i, g_pad_i = g[i], self.winner[i], g_pad[i]
            for a in range(kh):
                for b in range(kw):
                    target = g_pad_i[_window_slices(a * dh, b * dw, self.out_hw, self.s)]
                    if tiled:
                        select_where(target, g_i, winner_i == a * kw + b)
                    elif disjoint:
                        assign_where(target, g_i, winner_i == a * kw + b)
                    else:   # within one offset the slice positions are distinct: plain += is exact
                        target += xp.where(winner_i == a * kw + b, g_i, 0)

        parallel.over_batch(slab, g_pad)
        ph, pw = self.p
        return g_pad[..., ph:ph + h, pw:pw + w]


# ---- speed: three shortcuts of max pooling, each switchable for its benchmark -----------
START_AT_FIRST = True
"""Forward when the padded buffer is ``x`` itself (no padding, no ceil-mode overhang):
the running maximum starts as the window offset (0, 0)'s slice instead of -inf (the
first comparison's result, without doing it). ``False``: every offset compares, as the
formula reads."""

COPY_IF_DISJOINT = True
"""Backward when no two windows overlap: copy the gradient to each window's winner
instead of adding it to zeros (the same numbers; only a -0.0 stays -0.0 instead of
becoming 0.0 + -0.0 = +0.0); where the windows also tile the input (U-Net's 2x2,
stride 2 on an even size), write each pixel once, the gradient or 0, instead of
filling zeros first. ``False``: add, which is right for any windows."""

MASKS_BY_BITS = True
"""``assign_where`` on NumPy as integer bit operations instead of NumPy's masked copy
``np.copyto(..., where=mask)``, which the forward pass calls twice per window offset
(the disjoint backward once), and ``select_where`` (the tiled backward) as one instead of
``np.where``. ``False``: copyto and where. ``benchmarks/bench_train_step.py
--levers`` times each of the three."""


def assign_where(target, value, mask):
    """``target[mask] = value[mask]`` (``value`` broadcast), in place: ``xp.copyto(target, value, where=mask)``.

    ``mask`` is a bool array, ``value`` of ``target``'s dtype (or a number it holds exactly).

    On NumPy (``MASKS_BY_BITS``) the same bits are chosen with integer arithmetic on the
    numbers' bit patterns: with ``m`` all ones where ``mask`` holds and all zeros elsewhere,
    ``target ^ ((target ^ value) & m)`` is ``value`` where ``m`` is ones and ``target``
    elsewhere, bit for bit (NaNs and signed zeros included).
    """
    xp = backend.get_array_module(target)
    if not (MASKS_BY_BITS and xp is np and target.itemsize in (1, 2, 4, 8)):   # an unsigned int that wide
        xp.copyto(target, value, where=mask)
        return
    bits = np.dtype(f"u{target.itemsize}")
    target_bits = target.view(bits)
    value_bits = np.asarray(value, dtype=target.dtype).view(bits)
    change = np.bitwise_xor(target_bits, value_bits)
    change &= _all_ones_where(mask, bits)
    target_bits ^= change


def _all_ones_where(mask, bits):
    """``mask`` as unsigned integers of dtype ``bits``: all ones where it holds, 0 elsewhere."""
    m = mask.astype(bits)
    np.negative(m, out=m)                       # 1 -> all ones (unsigned wrap-around), 0 -> 0
    return m


def select_where(target, value, mask):
    """``target[...] = where(mask, value, 0)``, in place, without reading ``target``.

    ``mask`` is a bool array, ``value`` of ``target``'s dtype. On NumPy
    (``MASKS_BY_BITS``) as one integer operation on the bit patterns: ``value & m``
    with ``m`` all ones where ``mask`` holds and all zeros elsewhere, which is
    ``value`` bit for bit (NaN included) or +0.0.
    """
    xp = backend.get_array_module(target)
    if not (MASKS_BY_BITS and xp is np and target.itemsize in (1, 2, 4, 8)):
        target[...] = xp.where(mask, value, 0)
        return
    bits = np.dtype(f"u{target.itemsize}")
    np.bitwise_and(value.view(bits), _all_ones_where(mask, bits), out=target.view(bits))


def _check_input(x, name, floating=True, channels=True):
    """A 4-D (N, C, H, W) tensor (floating point if ``floating``; with at least one channel if
    ``channels``, as PyTorch's pooling and unpooling ask: an empty batch is fine, no channels not)."""
    checks.tensor(x, "input", name)
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if floating and x.dtype.kind != "f":
        raise TypeError(f"{name}: input must be floating point, got dtype {x.dtype}")
    if channels and x.shape[1] == 0:
        raise ValueError(f"{name}: input of shape {x.shape} has no channels (C = 0); PyTorch refuses it too")


def _check_flag(value, name, fn):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be True or False, got {value!r}")


def _pool_args(op, kernel_size, stride, padding):
    """Kernel, stride (default: the kernel) and padding as (h, w) pairs; the
    padding may be at most half the kernel, so no window is mostly padding."""
    with checks.naming(op):
        k = shapes.as_pair(kernel_size, "kernel_size", 1)
        s = k if stride is None else shapes.as_pair(stride, "stride", 1)
        p = shapes.as_pair(padding, "padding", 0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding={padding!r} must be at most half of kernel_size={kernel_size!r}")
    return k, s, p


def _max_pool_args(op, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """max_pool2d's settings, checked without an input (``nn.MaxPool2d`` checks them when made):
    kernel, stride, padding and dilation as (h, w) pairs; ``op`` starts the messages."""
    _check_flag(ceil_mode, "ceil_mode", op)
    _check_flag(return_indices, "return_indices", op)
    k, s, p = _pool_args(op, kernel_size, stride, padding)
    with checks.naming(op):
        d = shapes.as_pair(dilation, "dilation", 1)
    return k, s, p, d


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling: ``(N, C, H, W) -> (N, C, H_out, W_out)``, as ``torch.nn.functional.max_pool2d``.

    ``H_out = floor((H + 2p - d(k-1) - 1) / s) + 1`` (ceil with ``ceil_mode``,
    dropping a last window that would start in the right padding); ``stride``
    defaults to ``kernel_size``; ``padding`` (filled with -inf) is at most
    ``kernel_size / 2``. With ``return_indices``, also returns the int64 flat
    index ``h*W + w`` of each maximum within its ``(n, c)`` plane (no gradient),
    the input ``max_unpool2d`` (SegNet's decoder) needs. Where we go further
    than PyTorch: a window that reads only padding (possible with dilation on a
    tiny input) is an error; PyTorch returns -inf there, with an index outside
    the plane.
    """
    _check_input(input, "max_pool2d")
    k, s, p, d = _max_pool_args("max_pool2d", kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    with checks.naming("max_pool2d"):
        out_hw = shapes.max_pool2d_output_size(input.shape[2:], k, s, p, d, ceil_mode)
    for axis in range(2):
        # With dilation a window can straddle a tiny input and read only padding;
        # PyTorch then returns -inf with an index outside the plane. Refuse instead.
        reads = (np.arange(out_hw[axis]) * s[axis] - p[axis])[:, None] + np.arange(k[axis]) * d[axis]
        inside = ((reads >= 0) & (reads < input.shape[2 + axis])).any(axis=1)
        if not inside.all():
            raise ValueError(
                f"max_pool2d: with kernel_size={kernel_size!r}, dilation={dilation!r}, padding={padding!r} "
                f"window {int(np.argmin(inside))} of axis {axis} (input size {input.shape[2 + axis]}) reads "
                "only padding")
    fn = MaxPool2d(k, s, p, d, out_hw, bool(return_indices))
    y = fn(input)
    if return_indices:
        return y, Tensor._wrap(fn.indices)
    return y


# ---- average pooling ----------------------------------------------------------------
def _avg_divisors(xp, i, o, k, s, p, count_include_pad):
    """PyTorch's divisor per output position along one axis (computed with ``xp``).

    The window ``[o*s - p, o*s - p + k)`` is first clipped to the padded input
    ``[-p, i + p)`` (a ceil-mode window may hang past the padding: that part
    never counts); with ``count_include_pad`` that is the divisor, otherwise
    the window is clipped further to the real input ``[0, i)``.
    """
    start = xp.arange(o) * s - p
    end = xp.minimum(start + k, i + p)
    if count_include_pad:
        return end - start
    return xp.minimum(end, i) - xp.maximum(start, 0)


class AvgPool2d(Function):
    """y = (sum of x over the window, zero padding) / divisor; dx = g / divisor
    spread over every window element (that lies in the input)."""

    def __init__(self, kernel_size, stride, padding, out_hw, divisor):
        self.k, self.s, self.p, self.out_hw = kernel_size, stride, padding, out_hw
        self.divisor = divisor        # (H_out, W_out) array

    def forward(self, x):
        (kh, kw), (sh, sw), (ph, pw) = self.k, self.s, self.p
        (ho, wo), (h, w) = self.out_hw, x.shape[2:]
        self.in_shape = x.shape
        self.extent = (_padded_extent(h, ho, kh, sh, ph, 1), _padded_extent(w, wo, kw, sw, pw, 1))
        x_pad = _pad_to(x, self.extent, self.p, 0)
        work = opmath(x.dtype)                        # float16 adds up in float32, as PyTorch's
        total = x_pad[_window_slices(0, 0, self.out_hw, self.s)].astype(work)       # a copy
        for a in range(kh):
            for b in range(kw):
                if a or b:
                    total += x_pad[_window_slices(a, b, self.out_hw, self.s)]
        return (total / self.divisor.astype(work)).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = backend.get_array_module(g)
        work = opmath(g.dtype)
        share = g.astype(work, copy=False) / self.divisor.astype(work)
        g_pad = xp.zeros(self.in_shape[:2] + self.extent, dtype=work)
        for a in range(self.k[0]):
            for b in range(self.k[1]):
                g_pad[_window_slices(a, b, self.out_hw, self.s)] += share
        (ph, pw), (h, w) = self.p, self.in_shape[2:]
        return g_pad[..., ph:ph + h, pw:pw + w].astype(g.dtype, copy=False)


def _avg_pool_args(op, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """avg_pool2d's settings, checked without an input (``nn.AvgPool2d`` checks them when made):
    kernel, stride and padding as (h, w) pairs; ``op`` starts the messages."""
    _check_flag(ceil_mode, "ceil_mode", op)
    _check_flag(count_include_pad, "count_include_pad", op)
    k, s, p = _pool_args(op, kernel_size, stride, padding)
    if checks.integer(divisor_override, "divisor_override", op, allow_none=True) == 0:
        raise ValueError(f"{op}: divisor_override must be a non-zero int or None, got 0")
    return k, s, p


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
    """Average pooling: ``(N, C, H, W) -> (N, C, H_out, W_out)``, as ``torch.nn.functional.avg_pool2d``.

    Output size as ``max_pool2d`` with dilation 1. Padding is zeros. The
    divisor of each window (PyTorch's rule): the window clipped to the padded
    input when ``count_include_pad`` (so a ceil-mode window hanging past the
    padding divides by fewer), else the number of real input pixels in it;
    ``divisor_override`` (a non-zero int) replaces both.
    """
    _check_input(input, "avg_pool2d")
    k, s, p = _avg_pool_args("avg_pool2d", kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override)
    with checks.naming("avg_pool2d"):
        out_hw = shapes.avg_pool2d_output_size(input.shape[2:], k, s, p, ceil_mode)
    xp = backend.get_array_module(input.data)
    if divisor_override is not None:
        divisor = xp.full(out_hw, divisor_override)
    else:
        div_h = _avg_divisors(xp, input.shape[2], out_hw[0], k[0], s[0], p[0], count_include_pad)
        div_w = _avg_divisors(xp, input.shape[3], out_hw[1], k[1], s[1], p[1], count_include_pad)
        divisor = div_h[:, None] * div_w[None, :]
    return AvgPool2d(k, s, p, out_hw, divisor)(input)


# ---- adaptive average pooling ----------------------------------------------------------
def _adaptive_bins(i, o, xp):
    """Start and length of the ``o`` bins of an axis of size ``i``: bin ``r`` is
    ``[floor(r*i/o), ceil((r+1)*i/o))`` (PyTorch's bins; neighbours overlap by at most one
    pixel when ``o`` does not divide ``i``)."""
    r = xp.arange(o)
    start = (r * i) // o
    return start, -((-(r + 1) * i) // o) - start


def _bins_of_pixel(i, o, xp):
    """The transpose of ``_adaptive_bins``: pixel ``j`` lies in bins ``first .. first+count-1``,
    ``first = floor(j*o/i)`` (the first bin ending after j) and
    ``last = ceil((j+1)*o/i) - 1`` (the last bin starting at or before j)."""
    j = xp.arange(i)
    first = (j * o) // i
    return first, -((-(j + 1) * o) // i) - first


def _gather_sum(a, axis, first, count, shortest, longest):
    """``out[..., r] = sum over m < count[r] of a[..., first[r] + m]`` along ``axis``;
    ``shortest`` and ``longest`` are ``count``'s minimum and maximum, worked out on
    the host by the caller (reading them from a GPU array would make the host wait).

    One gather per offset ``m``. Once ``m`` passes the shortest bin, entries
    beyond a bin's count are masked with ``where``, never multiplied by 0, so a
    NaN or inf stays in the bins that contain it (0 * nan would be nan everywhere).
    """
    xp = backend.get_array_module(a)
    shape = [1] * a.ndim
    shape[axis] = -1
    last = a.shape[axis] - 1
    total = xp.take(a, first, axis=axis)             # m = 0: every bin has an element
    for m in range(1, longest):
        term = xp.take(a, xp.minimum(first + m, last), axis=axis)
        if m >= shortest:
            term = xp.where((m < count).reshape(shape), term, 0)
        total += term
    return total


def _per_row_or_column(values, axis):
    """One value per row (axis 2) or per column (axis 3), shaped to broadcast against (N, C, H, W)."""
    return values.reshape(-1, 1) if axis == 2 else values


class AdaptiveAvgPool2d(Function):
    """y[..., r, c] = mean of x over bin r of the rows and bin c of the columns;
    averaging a rectangle = averaging its rows' bins, then its columns' bins.
    dx: each pixel collects g / (bin size) from every bin that contains it.

    When the output size divides the input size on both axes (global pooling,
    32 -> 4, ...) the bins are equal disjoint blocks, and a reshape to
    ``(N, C, h, H/h, w, W/w)`` and a mean over the block axes is the same
    computation in one pass."""

    def __init__(self, out_hw):
        self.out_hw = out_hw

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.in_hw = x.shape[2:]
        (h, w), (oh, ow) = self.in_hw, self.out_hw
        self.blocks = h % oh == 0 and w % ow == 0
        if self.blocks:                              # (NumPy's float16 mean adds up in float32)
            return x.reshape(x.shape[:2] + (oh, h // oh, ow, w // ow)).mean(axis=(3, 5))
        dtype = x.dtype
        x = x.astype(opmath(dtype), copy=False)          # float16 adds up in float32, as PyTorch's
        for axis in (2, 3):
            i, o = x.shape[axis], self.out_hw[axis - 2]
            start, length = _adaptive_bins(i, o, xp)
            host = _adaptive_bins(i, o, np)[1]                  # bin lengths, counted on the host
            x = _gather_sum(x, axis, start, length, int(host.min()), int(host.max()))
            x = x / _per_row_or_column(length.astype(x.dtype), axis)
        return x.astype(dtype, copy=False)

    def backward(self, g):
        xp = backend.get_array_module(g)
        (h, w), (oh, ow) = self.in_hw, self.out_hw
        if self.blocks:
            kh, kw = h // oh, w // ow
            # divided in opmath: a float16 bin of more than 65504 pixels would divide by inf
            share = (g.astype(opmath(g.dtype), copy=False) / (kh * kw)).astype(g.dtype, copy=False)
            share = share[:, :, :, None, :, None]
            return xp.broadcast_to(share, g.shape[:2] + (oh, kh, ow, kw)).reshape(g.shape[:2] + (h, w))
        dtype = g.dtype
        g = g.astype(opmath(dtype), copy=False)
        for axis in (2, 3):
            i, o = self.in_hw[axis - 2], self.out_hw[axis - 2]
            _, length = _adaptive_bins(i, o, xp)
            first, count = _bins_of_pixel(i, o, xp)
            host = _bins_of_pixel(i, o, np)[1]                  # bins per pixel, counted on the host
            share = g / _per_row_or_column(length.astype(g.dtype), axis)
            g = _gather_sum(share, axis, first, count, int(host.min()), int(host.max()))
        return g.astype(dtype, copy=False)


def _adaptive_output_size(op, output_size):
    """Checks ``output_size`` without an input, as ``nn.AdaptiveAvgPool2d`` does when made: an
    int or a pair of ints >= 1, whose entries may be None (keep that input size); ``op`` starts
    the messages."""
    with checks.naming(op):
        shapes.adaptive_avg_pool2d_output_size((1, 1), output_size)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    ``(N, C, H, W) -> (N, C, h, w)``; ``output_size`` is an int, or a pair whose
    entries may be ``None`` (keep that input size). Output bin ``r`` of an axis
    averages input ``[floor(r*H/h), ceil((r+1)*H/h))``. ``output_size=1`` is
    global average pooling (DeepLabV3+'s image-level branch). A NaN or inf in
    the input reaches only the outputs whose bins contain it, as in PyTorch.
    """
    _check_input(input, "adaptive_avg_pool2d", channels=False)          # (PyTorch's forward takes C = 0)
    if min(input.shape[2:]) == 0:
        raise ValueError(f"adaptive_avg_pool2d: input of shape {input.shape} has an empty spatial axis; "
                         "every output bin needs at least one pixel to average")
    with checks.naming("adaptive_avg_pool2d"):
        out_hw = shapes.adaptive_avg_pool2d_output_size(tuple(input.shape[2:]), output_size)
    checks.check_bytes(input.shape[:2] + out_hw, input.dtype.itemsize, "adaptive_avg_pool2d",
                       f"output_size={output_size!r}")
    return AdaptiveAvgPool2d(out_hw)(input)


# ---- max unpooling -----------------------------------------------------------------------
class MaxUnpool2d(Function):
    """y = zeros of the output size with x written at its indices (per plane):
    y.flat[indices[n, c, i, j]] = x[n, c, i, j]. dx = g gathered at the indices.

    Where several inputs name the same index (overlapping pooling windows),
    they came from the same maximum and hold the same value, so which write
    lands does not matter (PyTorch leaves it unspecified as well).
    """

    def __init__(self, out_hw):
        self.out_hw = out_hw

    def forward(self, x, indices):
        xp = backend.get_array_module(x)
        n, c = x.shape[:2]
        self.planes = xp.arange(n * c).reshape(-1, 1)
        self.flat_indices = indices.reshape(n * c, -1)
        self.in_shape = x.shape
        y = xp.zeros((n * c, self.out_hw[0] * self.out_hw[1]), dtype=x.dtype)
        y[self.planes, self.flat_indices] = x.reshape(n * c, -1)
        return y.reshape(x.shape[:2] + self.out_hw)

    def backward(self, g):
        n, c = self.in_shape[:2]
        return g.reshape(n * c, -1)[self.planes, self.flat_indices].reshape(self.in_shape), None


def _unpool_args(op, kernel_size, stride, padding):
    """max_unpool2d's kernel, stride (default: the kernel) and padding as (h, w) pairs, checked
    without an input (``nn.MaxUnpool2d`` checks them when made); ``op`` starts the messages."""
    with checks.naming(op):
        k = shapes.as_pair(kernel_size, "kernel_size", 1)
        s = k if stride is None else shapes.as_pair(stride, "stride", 1)
        p = shapes.as_pair(padding, "padding", 0)
    return k, s, p


def max_unpool2d_of_pooled(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """``max_unpool2d`` for indices straight from ``max_pool2d(..., return_indices=True)`` of an
    input of ``output_size``: in range by construction, so not checked again. The check reads
    its answer back from a GPU, a sync that stalls the host; SegNet's decoder unpools its own
    encoder's indices (one check per stage per step). Everything else is checked as there."""
    return _max_unpool2d(input, indices, kernel_size, stride, padding, output_size, indices_checked=True)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool2d`` (SegNet's decoder upsampling), as
    ``torch.nn.functional.max_unpool2d``.

    Puts each value of ``input`` ``(N, C, h, w)`` at the flat position ``indices``
    (from ``max_pool2d(..., return_indices=True)``) of a zero
    ``(N, C, H_out, W_out)`` output. Default ``H_out = (h - 1)s - 2p + k``
    (``stride`` defaults to ``kernel_size``). Pooling an odd size loses a row
    (5 -> 2 -> 4), so pass ``output_size`` ((H, W) or the full (N, C, H, W)),
    which must lie strictly between ``default - s`` and ``default + s`` per
    axis, as PyTorch requires. Indices outside ``[0, H_out * W_out)`` are an
    error (not wrapped).
    """
    return _max_unpool2d(input, indices, kernel_size, stride, padding, output_size, indices_checked=False)


def _max_unpool2d(input, indices, kernel_size, stride, padding, output_size, indices_checked):
    _check_input(input, "max_unpool2d")
    checks.tensor(indices, "indices", "max_unpool2d")
    if indices.dtype != np.int64:
        raise TypeError(f"max_unpool2d: indices must be int64, as max_pool2d returns them (PyTorch's rule), "
                        f"got dtype {indices.dtype}")
    if indices.shape != input.shape:
        raise ValueError(f"max_unpool2d: indices has shape {indices.shape}, "
                         f"expected the input's shape {input.shape}")
    k, s, p = _unpool_args("max_unpool2d", kernel_size, stride, padding)
    if output_size is None:
        with checks.naming("max_unpool2d"):
            out_hw = shapes.max_unpool2d_output_size(input.shape[2:], k, s, p)
    else:
        # shapes.max_unpool2d_output_size's formula, without its refusal of sizes < 1:
        # only the window around it matters here (PyTorch accepts e.g. default 0, size 2).
        default = tuple((input.shape[2 + a] - 1) * s[a] - 2 * p[a] + k[a] for a in range(2))
        if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, 4) or \
                not all(shapes._is_int(v) for v in output_size):
            raise TypeError(f"max_unpool2d: output_size must be (H, W) or (N, C, H, W) ints, "
                            f"got {output_size!r}")
        out_hw = tuple(int(v) for v in output_size[-2:])
        for axis, name in enumerate(("height", "width")):
            low, high = default[axis] - s[axis], default[axis] + s[axis]
            if not (low < out_hw[axis] < high) or out_hw[axis] < 1:
                raise ValueError(
                    f"max_unpool2d: output_size={tuple(output_size)!r} is not reachable: its {name} "
                    f"must be at least 1 and strictly between {low} and {high} (default {name} "
                    f"{default[axis]}, stride {s[axis]})")
    checks.check_bytes(input.shape[:2] + out_hw, input.dtype.itemsize, "max_unpool2d",
                       f"output_size={output_size!r}" if output_size is not None else
                       f"kernel_size={kernel_size!r}, stride={stride!r}")
    if input.shape[0] == 0:
        return empty_batch(input.shape[:2] + out_hw, input, stands_for=MaxUnpool2d)
    plane = out_hw[0] * out_hw[1]
    # One yes/no read from the device (a GPU would wrap a bad index silently); the
    # offending value is looked up only when there is one.
    if not indices_checked and indices.size and bool(((indices.data < 0) | (indices.data >= plane)).any()):
        lo, hi = int(indices.data.min()), int(indices.data.max())
        raise ValueError(f"max_unpool2d: indices must lie in [0, {plane}) for output size {out_hw}, "
                         f"found {lo if lo < 0 else hi}; after pooling an odd size, pass "
                         f"output_size=(H, W) of the pooled input")
    return MaxUnpool2d(out_hw)(input, indices)
