"""Resizing: ``interpolate`` with ``"nearest"`` and ``"bilinear"`` modes, PyTorch's rules.

Each output pixel ``(i, j)`` is computed from a *source coordinate* per axis,
which is where the output pixel falls in the input's pixel grid. Per axis,
with input size ``in`` and output size ``out``, ``scale = in / out`` (or
``1 / scale_factor`` when a scale factor was given and not recomputed, which
differs from ``in / out`` when ``in * scale_factor`` is not a whole number):

nearest (PyTorch's legacy ``"nearest"``, not ``"nearest-exact"``)::

    src = min(floor(dst * scale), in - 1)    (dst // 2 when out == 2 * in)

bilinear, ``align_corners=True`` (the corner pixels' centres line up)::

    src = dst * (in - 1) / (out - 1)            (0 when out == 1)

bilinear, ``align_corners=False`` (the default: the pixels' *edges* line up)::

    src = max((dst + 0.5) * scale - 0.5, 0)

then ``i0 = floor(src)``, ``i1 = min(i0 + 1, in - 1)``, ``lam = src - i0``,
and the value is ``(1 - lam) * x[i0] + lam * x[i1]``. An axis whose size
does not change is copied in both modes, whatever the scale factor. Bilinear is this
linear interpolation along the width, then along the height. Example:
``[[1, 2], [3, 4]]`` upsampled x2 has first row ``[1, 1.25, 1.75, 2]``
(align_corners=False) and ``[1, 4/3, 5/3, 2]`` (True).

Like PyTorch, the coordinates are computed in float32 for float32 inputs
(float64 for float64; ``nearest`` on small outputs in float32 always, as
PyTorch's CPU kernel does: ``NEAREST_SMALL_OUTPUT``), so the chosen
neighbours agree with PyTorch's even where a product lands within rounding of
a whole number.

Both modes are linear in ``x``: each output is a weighted sum of one or two
inputs per axis. The backward pass is the transpose: every output gradient
is added, with the same weight, to the input pixel(s) it read. Several
outputs read the same input, so the adds must accumulate. Rather than a
scatter-add with repeated indices (``backend.scatter_add``, slow on the CPU),
each axis's map is transposed once into a small gather table
(``transpose_table``): input ``j`` gathers the few outputs that read it.
"""
import numbers

import numpy as np

from .. import backend, checks, shapes
from ..autograd import Function
from .promotion import opmath
from .sampling import fused_multiply_add      # the rounding of PyTorch's FMA (sampling at any point needs it too)

__all__ = ["interpolate"]

_MODES = ("nearest", "bilinear")


def _scale(n_in, n_out, scale_factor, ftype):
    """``1 / scale_factor`` if given, else ``in / out``, rounded to ``ftype`` as PyTorch does."""
    if scale_factor is not None:
        return ftype(1.0 / scale_factor)
    return ftype(n_in) / ftype(n_out)


NEAREST_SMALL_OUTPUT = 128
"""PyTorch 2.13's CPU ``nearest`` takes one of two paths, by the output's height plus width
(measured; the fuzz review's 3,000 random cases and ours follow it):

* at most this ("small"): out == in copies and out == 2 * in takes ``dst // 2`` whatever the
  scale factor, and the source index is computed in float32 whatever the dtype;
* above it: the formula everywhere (a scale factor of 1.06 on 5 rows moves rows there), in
  the input's own precision (float64 for float64).

Example: a float64 input of 31 rows scaled by 2.3 reads row 29 at output row 69 for outputs up
to 57 wide, and row 30 from 58 on (float32 reads row 29 at any width)."""


def nearest_indices(n_in, n_out, scale_factor=None, dtype=np.float32, small_output=True):
    """Source index of each output position along one axis (legacy ``nearest``):
    ``floor(dst * scale)``, with ``scale = 1 / scale_factor`` if given, else ``in / out``.

    ``small_output``: PyTorch's path for small outputs (``NEAREST_SMALL_OUTPUT``), which
    special-cases two sizes first, ``out == in`` copies and ``out == 2 * in`` takes
    ``dst // 2``, and computes in float32; otherwise the formula in ``dtype``'s precision.
    """
    if small_output:
        if n_out == n_in:
            return np.arange(n_out)
        if n_out == 2 * n_in:
            return np.arange(n_out) // 2
        ftype = np.float32
    else:
        ftype = opmath(dtype).type
    src = np.arange(n_out).astype(ftype) * _scale(n_in, n_out, scale_factor, ftype)
    # PyTorch floors with floorf, i.e. after rounding the coordinate to float32 (a no-op for
    # float32). Measured on torch 2.13: with the two paths above this reproduces its indices.
    src = np.floor(src.astype(np.float32))
    return np.minimum(src.astype(np.int64), n_in - 1)


def linear_weights(n_in, n_out, align_corners, scale_factor=None, dtype=np.float32):
    """``(i0, i1, lam)`` per output position along one axis: output = (1-lam) x[i0] + lam x[i1].

    An axis whose size does not change is copied (PyTorch skips it), even when
    a scale factor such as 1.1 would give ``1 / scale_factor != 1``.
    """
    ftype = opmath(dtype).type
    if n_out == n_in:
        return np.arange(n_in), np.arange(n_in), np.zeros(n_in, dtype=ftype)
    dst = np.arange(n_out).astype(ftype)
    if align_corners:
        scale = ftype(n_in - 1) / ftype(n_out - 1) if n_out > 1 else ftype(0)
        src = dst * scale
    else:
        # scale * (dst + 0.5) - 0.5 with one rounding, as PyTorch's vectorised CPU kernel computes it
        # (an FMA; two roundings put some coordinates one ulp off, and weights up to 4e-6 apart)
        src = np.maximum(fused_multiply_add(dst + ftype(0.5), _scale(n_in, n_out, scale_factor, ftype),
                                            -0.5), ftype(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(ftype), 0, 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, lam


def _along(axis, index):
    return (Ellipsis, index) if axis == 3 else (Ellipsis, index, slice(None))


def _weights_shape(axis, w):
    """Weights broadcast along ``axis`` of an (N, C, H, W) array."""
    return w if axis == 3 else w[:, None]


def transpose_table(n_in, reads, dtype):
    """The transpose of a 1-D resampling map, as a gather table.

    ``reads`` lists ``(index, weight)`` array pairs: output ``o`` is
    ``sum over pairs of weight[o] * x[index[o]]``. Returns ``(outputs, weights,
    unused_0, ..., unused_{m-1})``: ``outputs`` and ``weights`` are ``(n_in, m)``,
    input ``j`` collects ``weights[j, k] * g[outputs[j, k]]`` for ``k < m``, i.e.
    the adjoint map. An input read by fewer than ``m`` outputs has unused slots
    (output 0, weight 0); ``unused_k`` lists the inputs whose slot ``k`` is
    unused, whose term ``_collect`` sets to 0 (not ``0 * g``: an infinite or NaN
    gradient at output 0 times 0 would be NaN, in a pixel no output read). Every
    input is read by a handful of outputs, so the backward pass becomes ``m``
    gathers instead of a scatter-add with repeated indices: the same sums, far
    faster. Built with NumPy on the host (``interpolate`` keeps it on the
    input's backend).
    """
    n_out = len(reads[0][0])
    src = np.concatenate([np.asarray(index) for index, _ in reads])
    wts = np.concatenate([np.asarray(weight, dtype=dtype) for _, weight in reads])
    dst = np.tile(np.arange(n_out), len(reads))
    keep = wts != 0                              # zero-weight reads contribute nothing
    src, wts, dst = src[keep], wts[keep], dst[keep]
    order = np.argsort(src, kind="stable")
    src, wts, dst = src[order], wts[order], dst[order]
    counts = np.bincount(src, minlength=n_in)
    slot = np.arange(len(src)) - np.repeat(np.cumsum(counts) - counts, counts)
    outputs = np.zeros((n_in, max(int(counts.max(initial=0)), 1)), dtype=np.int64)
    weights = np.zeros(outputs.shape, dtype=dtype)
    outputs[src, slot] = dst
    weights[src, slot] = wts
    unused = tuple(np.flatnonzero(counts <= k) for k in range(outputs.shape[1]))
    return (outputs, weights) + unused


def _collect(g, table, axis):
    """Apply a ``transpose_table`` along ``axis``: gx[..., j] = sum_k w[j, k] g[..., outputs[j, k]]."""
    outputs, weights, *unused = table
    gx = None
    for k in range(outputs.shape[1]):
        term = g[_along(axis, outputs[:, k])] * _weights_shape(axis, weights[:, k])
        if unused[k].size:                      # inputs with no read in slot k: nothing, not 0 * g
            term[_along(axis, unused[k])] = 0
        gx = term if gx is None else gx + term
    return gx


class Nearest(Function):
    """y[..., i, j] = x[..., src_h[i], src_w[j]];  dx[..., a, b] = sum of g over the
    outputs that copied (a, b), collected one axis at a time."""

    def __init__(self, src, tables):
        self.src_h, self.src_w = src          # source index per output row / column
        self.tables = tables                  # {axis: transpose_table}

    def forward(self, x):
        return x[..., self.src_h[:, None], self.src_w[None, :]]

    def backward(self, g):
        return _collect(_collect(g, self.tables[2], 2), self.tables[3], 3)


class Bilinear(Function):
    """Linear interpolation along the width, then along the height (PyTorch's order):
    t = (1 - lw) x[..., i0w] + lw x[..., i1w];  y = (1 - lh) t[..., i0h, :] + lh t[..., i1h, :].
    Backward: the same two steps transposed, in reverse order (height, then width):
    each input row/column collects its weighted share of the output gradients."""

    def __init__(self, axes, tables):
        self.axes = axes        # {axis: (i0, i1, lam)} for axis 3 (width) and 2 (height)
        self.tables = tables    # {axis: transpose_table of that axis}

    def forward(self, x):
        for axis in (3, 2):
            i0, i1, lam = self.axes[axis]
            lam = _weights_shape(axis, lam)
            x = x[_along(axis, i0)] * (1 - lam) + x[_along(axis, i1)] * lam
        return x

    def backward(self, g):
        return _collect(_collect(g, self.tables[2], 2), self.tables[3], 3)


def _per_axis_scale(scale_factor):
    if isinstance(scale_factor, (tuple, list)):
        return tuple(float(s) for s in scale_factor)
    return (float(scale_factor),) * 2


def _check_settings(op, size, scale_factor, mode, align_corners, recompute_scale_factor):
    """interpolate's settings, checked without an input (``nn.Upsample`` checks them when
    made); ``op`` starts the messages."""
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}, got {mode!r}")
    if align_corners is not None:
        if mode != "bilinear":
            raise ValueError(f"{op}: align_corners={align_corners!r} can only be set with "
                             f"mode='bilinear', got mode={mode!r}")
        if not isinstance(align_corners, (bool, np.bool_)):
            raise TypeError(f"{op}: align_corners must be True, False or None, got {align_corners!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    if recompute_scale_factor is not None and not isinstance(recompute_scale_factor, (bool, np.bool_)):
        # not "in (None, False, True)": 1 == True and 0 == False would let a number through
        raise TypeError(f"{op}: recompute_scale_factor must be None, True or False, "
                        f"got {recompute_scale_factor!r}")
    if recompute_scale_factor and size is not None:
        raise ValueError(f"{op}: recompute_scale_factor=True is meaningless with an explicit size")
    if size is not None:
        with checks.naming(op):
            shapes.as_pair(size, "size", 1)
    if scale_factor is not None:
        factors = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
        if len(factors) != (2 if isinstance(scale_factor, (tuple, list)) else 1) or not all(
                isinstance(f, numbers.Real) and not isinstance(f, bool) for f in factors):
            raise TypeError(f"{op}: scale_factor must be a number or a pair of numbers, "
                            f"got {scale_factor!r}")
        if min(factors) <= 0 or not all(np.isfinite(f) for f in factors):
            raise ValueError(f"{op}: scale_factor must be positive and finite, got {scale_factor!r}")


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize ``(N, C, H, W) -> (N, C, h, w)``, as ``torch.nn.functional.interpolate``.

    Give exactly one of ``size`` (int or (h, w)) and ``scale_factor`` (number or
    pair; then ``h = floor(H * scale_factor)``). ``mode``: ``"nearest"`` or
    ``"bilinear"``; ``align_corners`` (bilinear only; None means False) picks the
    coordinate rule in the module docstring. With ``scale_factor`` the
    coordinates use ``1 / scale_factor`` unless ``recompute_scale_factor=True``,
    which uses ``in / out`` of the computed size instead (PyTorch's flag).
    ``"nearest"`` picks PyTorch's pixels also where ``dst * in / out`` lands
    within rounding of a whole number, and for a scale factor on an axis whose
    size stays (or doubles): PyTorch's CPU kernel has two paths, by the output's
    size, which ``nearest_indices`` follows (``NEAREST_SMALL_OUTPUT``).
    ``antialias=True`` (PyTorch's anti-aliased downsampling) is not
    implemented and refused; ``False``, the default, is accepted. Known
    difference: PyTorch 2.13's nearest *backward* takes the small path's
    indices at every size, so where the two paths pick different pixels its
    gradient is not the transpose of its own forward (the dot-product identity
    fails); ours is the transpose of the forward, and equals PyTorch's
    wherever PyTorch's is. Another, for an infinite or NaN output gradient
    only: PyTorch's bilinear backward also multiplies each gradient by the
    weights that are 0 (a point exactly on a pixel; an axis whose size stays,
    whose rows it still mixes with a weight of 0 for the next), and ``inf * 0``
    is NaN, so a few more of its pixels become NaN; ours leaves out reads of
    weight 0, as both forwards do, so those pixels keep PyTorch's finite
    value or the gradient's inf.
    """
    checks.tensor(input, "input", "interpolate")
    if checks.flag(antialias, "antialias", "interpolate"):
        raise ValueError("interpolate: antialias=True (PyTorch's anti-aliased downsampling, a wider filter "
                         "than bilinear's two pixels) is not implemented; antialias=False is the default")
    if input.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"interpolate: input must be floating point, got dtype {input.dtype}")
    _check_settings("interpolate", size, scale_factor, mode, align_corners, recompute_scale_factor)
    if input.shape[1] == 0:
        raise ValueError(f"interpolate: input of shape {input.shape} has no channels (C = 0); PyTorch refuses "
                         f"it too")
    if min(input.shape[2:]) == 0:
        raise ValueError(f"interpolate: input of shape {input.shape} has an empty spatial axis; "
                         "there is no pixel to resample")
    with checks.naming("interpolate"):
        out_hw = shapes.interpolate_output_size(input.shape[2:], size, scale_factor)
    if shapes._is_int(out_hw):
        out_hw = (out_hw, out_hw)
    checks.check_bytes(input.shape[:2] + tuple(out_hw), input.dtype.itemsize, "interpolate",
                       f"size={size!r}" if size is not None else f"scale_factor={scale_factor!r}")
    if opmath(input.dtype) != input.dtype:
        # float16: resampled in float32 and rounded once, as PyTorch does (its opmath); in
        # float16 the weights, the width pass and the gradient's sums would each round
        return interpolate(input.astype(opmath(input.dtype)), size, scale_factor, mode, align_corners,
                           recompute_scale_factor).astype(input.dtype)
    scales = (None, None)
    if scale_factor is not None and not recompute_scale_factor:
        scales = _per_axis_scale(scale_factor)

    xp = backend.get_array_module(input.data)
    small = sum(out_hw) <= NEAREST_SMALL_OUTPUT                 # PyTorch's two nearest paths
    tables = {axis: _axis_tables(xp, mode, input.shape[axis], out_hw[axis - 2], bool(align_corners),
                                 scales[axis - 2], input.dtype, small) for axis in (2, 3)}
    if mode == "nearest":
        return Nearest((tables[2][0], tables[3][0]), {axis: t[1:] for axis, t in tables.items()})(input)
    return Bilinear({axis: t[:3] for axis, t in tables.items()}, {axis: t[3:] for axis, t in tables.items()})(input)


def _axis_tables(xp, mode, n_in, n_out, align_corners, scale, dtype, small_output):
    """One axis's forward reads and backward gather table: ``(src, outputs, weights)``
    for nearest (``nearest_indices``, on PyTorch's path for the output's size),
    ``(i0, i1, lam, outputs, weights)`` for bilinear.

    They depend only on the sizes and settings, so they are built on the host
    once and kept on the input's backend (``backend.constant``): a resize in
    every training step moves no table between host and device.
    """
    def build():
        if mode == "nearest":
            src = nearest_indices(n_in, n_out, scale, dtype, small_output)
            return (src,) + transpose_table(n_in, [(src, np.ones(len(src)))], dtype)
        i0, i1, lam = linear_weights(n_in, n_out, align_corners, scale, dtype)
        lam = lam.astype(dtype)
        return (i0, i1, lam) + transpose_table(n_in, [(i0, 1 - lam), (i1, lam)], dtype)
    key = ("interpolate", mode, n_in, n_out, align_corners, scale, np.dtype(dtype).str, small_output)
    return backend.constant(xp, key, build)
