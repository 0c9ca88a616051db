"""Padding and cropping of the last two (spatial) axes.

``pad`` grows a tensor at its borders, ``center_crop`` cuts it down to a
central window. U-Net uses both: the original paper mirrors (``"reflect"``)
the image borders so its valid convolutions can see context there, and its
skip connections *copy and crop* the encoder's feature map to the smaller
decoder map before concatenating them.

Along one axis of size ``n`` padded by ``a`` before and ``b`` after
(output size ``a + n + b``), output position ``j`` reads, for ``-a <= j < n + b``:

    constant:   value                 if j < 0 or j >= n, else x[j]
    reflect:    x[-j]         if j < 0;  x[2(n-1) - j]  if j >= n   (edge not repeated; a, b < n)
    replicate:  x[0]          if j < 0;  x[n-1]         if j >= n

Example, x = [1 2 3 4], a = b = 2:
constant 0 -> [0 0 1 2 3 4 0 0], reflect -> [3 2 1 2 3 4 3 2], replicate -> [1 1 1 2 3 4 4 4].

Every mode is linear in ``x`` (plus a constant), so the gradient is the
transpose: each input position collects the output gradients of all the
positions that read it. For reflect that is the centre plus the two border
strips folded back (mirrored) onto the pixels they copied; for replicate the
strips are summed onto the edge pixel.
"""
import numbers

import numpy as np

from .. import backend, checks, shapes
from ..autograd import Function
from .indexing import getitem

__all__ = ["pad", "center_crop"]

_MODES = ("constant", "reflect", "replicate")


def _along(axis, index):
    """An index tuple selecting ``index`` along ``axis`` (-1: width, -2: height)."""
    return (Ellipsis, index) if axis == -1 else (Ellipsis, index, slice(None))


def _pad_axis(x, before, after, mode, axis):
    """Reflect- or replicate-pad ``x`` along one axis (forward)."""
    xp = backend.get_array_module(x)
    n = x.shape[axis]
    if mode == "reflect":
        # x[a], ..., x[1] before and x[n-2], ..., x[n-1-b] after: mirrored, edge not repeated.
        left = xp.flip(x[_along(axis, slice(1, before + 1))], axis=axis)
        right = xp.flip(x[_along(axis, slice(n - 1 - after, n - 1))], axis=axis)
    else:
        shape_l, shape_r = list(x.shape), list(x.shape)
        shape_l[axis], shape_r[axis] = before, after
        left = xp.broadcast_to(x[_along(axis, slice(0, 1))], shape_l)
        right = xp.broadcast_to(x[_along(axis, slice(n - 1, n))], shape_r)
    return xp.concatenate([left, x, right], axis=axis)


def _unpad_axis(g, before, after, n, mode, axis):
    """The transpose of ``_pad_axis``: fold the border gradients back onto the pixels they copied."""
    xp = backend.get_array_module(g)
    gx = g[_along(axis, slice(before, before + n))].copy()
    left = g[_along(axis, slice(0, before))]
    right = g[_along(axis, slice(before + n, before + n + after))]
    if mode == "reflect":
        gx[_along(axis, slice(1, before + 1))] += xp.flip(left, axis=axis)
        gx[_along(axis, slice(n - 1 - after, n - 1))] += xp.flip(right, axis=axis)
    else:
        gx[_along(axis, slice(0, 1))] += left.sum(axis=axis, keepdims=True)
        gx[_along(axis, slice(n - 1, n))] += right.sum(axis=axis, keepdims=True)
    return gx


class Pad(Function):
    """y = x padded by ``widths`` = ((top, bottom), (left, right)) on the last two axes
    (only the last axis when ``widths`` has one pair); see the module docstring."""

    def __init__(self, widths, mode, value):
        self.widths, self.mode, self.value = widths, mode, value

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.shape = x.shape
        axes = (-2, -1)[-len(self.widths):]
        if self.mode == "constant":
            out_shape = list(x.shape)
            centre = [Ellipsis]
            for axis, (a, b) in zip(axes, self.widths):
                out_shape[axis] += a + b
                centre.append(slice(a, a + x.shape[axis]))
            y = xp.full(out_shape, self.value, dtype=x.dtype)
            y[tuple(centre)] = x
            self.centre = tuple(centre)
            return y
        for axis, (a, b) in zip(axes, self.widths):
            x = _pad_axis(x, a, b, self.mode, axis)
        return x

    def backward(self, g):
        if self.mode == "constant":
            return g[self.centre]   # the padding constants do not depend on x
        axes = (-2, -1)[-len(self.widths):]
        for axis, (a, b) in reversed(list(zip(axes, self.widths))):
            g = _unpad_axis(g, a, b, self.shape[axis], self.mode, axis)
        return g


def pad(input, pad, mode="constant", value=None):
    """Pad the last axis (``pad = (left, right)``) or the last two axes
    (``pad = (left, right, top, bottom)``), as ``torch.nn.functional.pad``.

    ``mode``: ``"constant"`` (fill with ``value``; ``None``, the default as in
    PyTorch, fills with 0), ``"reflect"`` (mirror
    without repeating the edge; each pad must be smaller than that axis) or
    ``"replicate"`` (repeat the edge pixel). Shapes: ``(..., H, W)`` ->
    ``(..., H + top + bottom, W + left + right)``.

    Differences from PyTorch: every mode works on any tensor with enough axes
    (PyTorch's reflect/replicate insist on 2-D to 4-D inputs), and negative
    pads (PyTorch's way of cropping) are refused: use ``center_crop`` or slicing.
    Not implemented: the ``"circular"`` mode, and padding more than the last
    two axes (PyTorch's constant mode takes 6 or more values).
    """
    checks.tensor(input, "input", "pad")
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {_MODES}, got {mode!r}")
    if not isinstance(pad, (tuple, list)) or len(pad) not in (2, 4) or not all(checks.is_int(p) for p in pad):
        raise TypeError(f"pad: pad must be a tuple of 2 ints (left, right) or 4 ints "
                        f"(left, right, top, bottom), got {pad!r}")
    if min(pad) < 0:
        raise ValueError(f"pad: pad={tuple(pad)!r} has a negative width; cropping by negative "
                         "padding is not supported (use center_crop or slicing)")
    if value is None:
        value = 0.0
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"pad: value must be a number, got {value!r}")
    if mode != "constant" and value != 0:
        raise ValueError(f"pad: mode={mode!r} takes no fill value, got value={value!r}")
    checks.fits(value, input.dtype, "value", "pad")
    if input.ndim < len(pad) // 2:
        raise ValueError(f"pad: pad={tuple(pad)!r} pads {len(pad) // 2} axes, but input has shape {input.shape}")
    # torch lists the last axis first; we keep (top, bottom), (left, right) in axis order.
    widths = ((int(pad[0]), int(pad[1])),) if len(pad) == 2 else \
        ((int(pad[2]), int(pad[3])), (int(pad[0]), int(pad[1])))
    axes = (-2, -1)[-len(widths):]
    out_last = shapes.pad_output_size(input.shape[-1] if len(pad) == 2 else tuple(input.shape[-2:]), pad)
    out_shape = list(input.shape[:-len(widths)]) + ([out_last] if len(pad) == 2 else list(out_last))
    checks.check_bytes(out_shape, input.dtype.itemsize, "pad", f"pad={tuple(pad)!r}")
    for axis, (a, b) in zip(axes, widths):
        n = input.shape[axis]
        if mode == "reflect" and max(a, b) >= n:
            raise ValueError(f"pad: reflect padding {(a, b)} must be smaller than the size {n} of "
                             f"axis {input.ndim + axis} (input has shape {input.shape}), pad={tuple(pad)!r}")
        if mode == "replicate" and n == 0 and a + b > 0:
            raise ValueError(f"pad: replicate padding needs a non-empty axis {input.ndim + axis}, "
                             f"input has shape {input.shape}")
    if mode != "constant" and input.dtype == np.bool_:
        raise TypeError(f"pad: mode={mode!r} of a bool tensor is refused, as PyTorch refuses it (its reflect "
                        "and replicate kernels take numbers); mode='constant' pads bools")
    if mode != "constant" and input.ndim >= 3 and 0 in input.shape[1:]:
        raise ValueError(f"pad: mode={mode!r} needs every axis but the batch non-empty (as PyTorch), got shape "
                         f"{input.shape}")
    return Pad(widths, mode, value)(input)


def center_crop(input, size):
    """The central ``size`` window of the last two axes: U-Net's copy-and-crop.

    ``size`` is an int (square) or ``(h, w)``. Shapes: ``(..., H, W)`` ->
    ``(..., h, w)`` with ``h <= H``, ``w <= W``. The window starts at
    ``top = (H - h) // 2`` and ``left = (W - w) // 2``: when a difference is odd,
    one more pixel is cut from the bottom (right) than from the top (left).
    Example: H = 5, h = 2 keeps rows 1 and 2, dropping row 0 and rows 3, 4. (torchvision's
    ``CenterCrop``, and ``minisegnet.data.CenterCrop`` with it, round ``(H - h) / 2`` half to
    even instead: rows 2 and 3 there.)
    The gradient is ``g`` placed back in that window, zero elsewhere.
    """
    checks.tensor(input, "input", "center_crop")
    if input.ndim < 2:
        raise ValueError(f"center_crop: input needs at least 2 axes (..., H, W), got shape {input.shape}")
    if checks.is_int(size):
        h = w = int(size)
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(checks.is_int(s) for s in size):
        h, w = int(size[0]), int(size[1])
    else:
        raise TypeError(f"center_crop: size must be an int or a pair of ints (h, w), got {size!r}")
    H, W = input.shape[-2:]
    if min(h, w) < 1:
        raise ValueError(f"center_crop: size must be >= 1, got {size!r}")
    if h > H or w > W:
        raise ValueError(f"center_crop: size={(h, w)} is larger than the input's ({H}, {W}); "
                         "cropping cannot enlarge (use pad)")
    top, left = shapes.center_crop_offset((H, W), (h, w))       # (H - h) // 2, (W - w) // 2
    return getitem(input, (Ellipsis, slice(top, top + h), slice(left, left + w)))
