"""Output-size arithmetic for every layer, in pure Python integers.

The ops call these functions to compute (and validate) their output sizes, so
the formulas below are the single source of truth, and the tests check the
ops' real outputs against them. Every function takes a size as an ``int`` or
an ``(h, w)`` pair and returns the same kind. Notation per spatial axis:
``i`` input size, ``k`` kernel, ``s`` stride, ``p`` padding, ``d`` dilation;
``d*(k-1)+1`` is the effective (dilated) kernel.
"""
import functools
import math
import numbers
from fractions import Fraction
from typing import NamedTuple

__all__ = [
    "as_pair",
    "conv2d_output_size",
    "conv_transpose2d_output_size",
    "max_pool2d_output_size",
    "avg_pool2d_output_size",
    "max_unpool2d_output_size",
    "adaptive_avg_pool2d_output_size",
    "pad_output_size",
    "center_crop_offset",
    "interpolate_output_size",
    "grid_sample_output_shape",
    "affine_grid_output_shape",
    "conv2d_input_sizes",
    "conv_transpose2d_output_padding",
    "UNetStep",
    "unet_output_size",
    "unet_valid_input_sizes",
    "unet_trace",
    "unet_receptive_fields",
    "Layer",
    "ReceptiveField",
    "receptive_field",
]


def _is_int(v):
    """An int or a NumPy integer of any width (NumPy registers them as ``numbers.Integral``),
    not a bool (NumPy's bool is not Integral)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


# Bounds on arguments whose cost grows with them (a list per size, a walk per level):
# beyond them a ValueError says so, instead of minutes of work or a MemoryError.
MAX_LISTED_SIZES = 10**6    # conv2d_input_sizes and unet_valid_input_sizes list at most this many
MAX_UNET_DEPTH = 32         # 2**32 pixels per side already: nothing real is that deep


def _check_flag(value, name):
    if not isinstance(value, bool) and type(value).__name__ not in ("bool", "bool_"):     # NumPy's bool too
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def as_pair(value, name, minimum=None):
    """``value`` (an int or a pair of ints) as a tuple ``(h, w)``; checks ``>= minimum``."""
    if type(value) is int:   # the common case first: every conv call passes here several times
        pair = (value, value)
    elif type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        pair = value
    elif _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if minimum is not None and min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def _per_axis(size, compute):
    """Apply ``compute(i, axis)`` to an int size or to each of an (h, w) pair."""
    if _is_int(size):
        if size < 1:
            raise ValueError(f"the input size must be >= 1, got {size}")
        return compute(int(size), 0)
    h, w = as_pair(size, "the input size (H, W)", minimum=1)
    return (_on_axis(compute, h, 0), _on_axis(compute, w, 1))


def _on_axis(compute, i, axis):
    """``compute(i, axis)``; a ValueError says which axis of an (h, w) size it was about."""
    try:
        return compute(i, axis)
    except ValueError as error:
        raise ValueError(f"in {('height', 'width')[axis]}, {error}") from None


def _conv_args(kernel_size, stride, padding, dilation):
    """A conv's settings as (h, w) pairs; ``padding`` may be ``"valid"`` (0) or
    ``"same"`` (returned as the string; stride 1 only)."""
    k = as_pair(kernel_size, "kernel_size", 1)
    s = as_pair(stride, "stride", 1)
    d = as_pair(dilation, "dilation", 1)
    if padding == "same":
        if s != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride={stride!r}")
        return k, s, "same", d
    p = (0, 0) if padding == "valid" else as_pair(padding, "padding", 0)
    return k, s, p, d


def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """``o = floor((i + 2p - d(k-1) - 1) / s) + 1``.

    ``padding`` may also be ``"valid"`` (0) or ``"same"`` (output = input;
    stride 1 only). For ``s > 1`` several input sizes give the same ``o``:
    see ``conv2d_input_sizes``.
    """
    k, s, p, d = _conv_args(kernel_size, stride, padding, dilation)
    if p == "same":
        return _per_axis(size, lambda i, a: i)            # the size checked as any other (>= 1)

    def compute(i, a):
        span = d[a] * (k[a] - 1) + 1
        if span > i + 2 * p[a]:
            raise ValueError(
                f"a kernel of {k[a]} with dilation {d[a]} spans {span} pixels, more than "
                f"the padded input ({i} + 2*{p[a]} = {i + 2 * p[a]})")
        return (i + 2 * p[a] - span) // s[a] + 1

    return _per_axis(size, compute)


def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """``o = (i - 1)s - 2p + d(k-1) + output_padding + 1``, ``0 <= output_padding < max(s, d)``.

    The inverse of ``conv2d_output_size``: output_padding ``0 .. s-1`` picks which
    of the ``s`` input sizes that share one conv output to produce. (PyTorch also
    accepts ``s .. d-1`` when ``d > s``, and so does this formula; those sizes only
    append rows, and no conv maps them back to ``size``.)
    """
    k = as_pair(kernel_size, "kernel_size", 1)
    s = as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    op = as_pair(output_padding, "output_padding", 0)
    d = as_pair(dilation, "dilation", 1)

    def compute(i, a):
        if op[a] >= max(s[a], d[a]):
            raise ValueError(f"output_padding={output_padding!r} must be smaller than max(stride, dilation) "
                             f"= {max(s[a], d[a])}")
        o = (i - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1
        if o < 1:
            raise ValueError(f"padding={padding!r} is too large: the output size would be {o}")
        return o

    return _per_axis(size, compute)


def _pool_size(i, k, s, p, d, ceil_mode):
    if 2 * p > k:
        raise ValueError(f"padding={p} must be at most half of kernel_size={k}")
    span = d * (k - 1) + 1
    # Integer floor/ceil division (exact for any size, negative numerators included).
    o = ((i + 2 * p - span) // s if not ceil_mode else -(-(i + 2 * p - span) // s)) + 1
    # PyTorch's rule: with ceil_mode, a window may not start in the right padding.
    if ceil_mode and (o - 1) * s >= i + p:
        o -= 1
    # Checked on o, not on the span: in ceil_mode PyTorch accepts one window that
    # is wider than the padded input (e.g. i=1, k=3, s=3 gives o=1).
    if o < 1:
        raise ValueError(f"the window spans {span} pixels, more than the padded input "
                         f"({i} + 2*{p} = {i + 2 * p}): the output size would be {o}")
    return o


def max_pool2d_output_size(size, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """As conv, with ceil instead of floor when ``ceil_mode``, minus the last window
    if it would start in the right padding. ``stride`` defaults to ``kernel_size``;
    ``padding`` is at most ``kernel_size / 2``."""
    k = as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    d = as_pair(dilation, "dilation", 1)
    ceil_mode = _check_flag(ceil_mode, "ceil_mode")
    return _per_axis(size, lambda i, a: _pool_size(i, k[a], s[a], p[a], d[a], ceil_mode))


def avg_pool2d_output_size(size, kernel_size, stride=None, padding=0, ceil_mode=False):
    """``max_pool2d_output_size`` with dilation 1."""
    k = as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    ceil_mode = _check_flag(ceil_mode, "ceil_mode")
    return _per_axis(size, lambda i, a: _pool_size(i, k[a], s[a], p[a], 1, ceil_mode))


def max_unpool2d_output_size(size, kernel_size, stride=None, padding=0):
    """``o = (i - 1)s - 2p + k``: the default size max_unpool2d restores.
    A pooled odd size is ambiguous; pass ``output_size`` to the op then."""
    k = as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)

    def compute(i, a):
        o = (i - 1) * s[a] - 2 * p[a] + k[a]
        if o < 1:
            raise ValueError(f"padding={padding!r} is too large: the unpooled size would be {o}")
        return o

    return _per_axis(size, compute)


def adaptive_avg_pool2d_output_size(size, output_size):
    """``o = output_size``, whatever the input size: the bins adapt instead.

    Bin ``r`` of an axis of ``i`` pixels averages ``[floor(r*i/o), ceil((r+1)*i/o))``,
    so neighbouring bins overlap by at most one pixel when ``o`` does not divide ``i``,
    and ``o > i`` repeats pixels in several bins. A ``None`` entry of an ``(h, w)``
    ``output_size`` keeps that input size (as PyTorch)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2 and any(v is None for v in output_size):
        if _is_int(size):
            raise TypeError(f"a None entry of output_size={output_size!r} keeps an axis of an (h, w) size; "
                            f"size {size!r} is one axis")
        o = tuple(None if v is None else as_pair(v, "output_size", 1)[0] for v in output_size)
    else:
        o = as_pair(output_size, "output_size", 1)
        if _is_int(size) and not _is_int(output_size):
            raise TypeError(f"size {size!r} is one axis, so output_size must be an int, got {output_size!r}")
    return _per_axis(size, lambda i, a: i if o[a] is None else o[a])


def pad_output_size(size, pad):
    """``o = before + i + after`` on each padded axis, with ``pad`` in ``torch.nn.functional.pad``'s
    order, the last axis first: ``(left, right)`` pads the width, ``(left, right, top, bottom)``
    the width and the height.

    ``size`` is the width alone (an int) or ``(h, w)``; a size may be 0 (a constant pad of an
    empty axis). The mode does not change the size; it limits the pads (reflect: each smaller
    than its axis; replicate: a non-empty axis), which ``F.pad`` checks."""
    if not isinstance(pad, (tuple, list)) or len(pad) not in (2, 4) or not all(_is_int(p) for p in pad):
        raise TypeError(f"pad must be (left, right) or (left, right, top, bottom), ints, got {pad!r}")
    if min(pad) < 0:
        raise ValueError(f"pad={tuple(pad)!r} has a negative width")
    if _is_int(size):
        if len(pad) == 4:
            raise ValueError(f"pad={tuple(pad)!r} pads two axes; size {size!r} is one axis: give (h, w)")
        sizes = (int(size),)
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(_is_int(v) for v in size):
        sizes = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"size must be an int (the width) or a pair of ints (h, w), got {size!r}")
    if min(sizes) < 0:
        raise ValueError(f"size must be >= 0, got {size!r}")
    left, right = int(pad[0]), int(pad[1])
    top, bottom = (int(pad[2]), int(pad[3])) if len(pad) == 4 else (0, 0)
    if len(sizes) == 1:
        return left + sizes[0] + right
    return (top + sizes[0] + bottom, left + sizes[1] + right)


def center_crop_offset(size, crop):
    """Where a centred window of ``crop`` pixels starts in ``size``: ``t = (i - c) // 2``; the
    window ``[t, t + c)`` is the output, of size ``c`` (``1 <= c <= i``). U-Net's copy and crop
    cuts an encoder map to its decoder's size so. When ``i - c`` is odd, the far side (bottom,
    right) loses one pixel more than the near side: ``i = 5, c = 2`` keeps rows 1 and 2."""
    c, was_int = _int_or_pair(crop, "crop", 1)
    if _is_int(size) and not was_int:
        raise TypeError(f"size {size!r} is one axis, so crop must be an int, got {crop!r}")

    def compute(i, a):
        if c[a] > i:
            raise ValueError(f"crop {c[a]} is larger than the size {i}: cropping cannot enlarge")
        return (i - c[a]) // 2

    return _per_axis(size, compute)


def interpolate_output_size(size, out_size=None, scale_factor=None):
    """Exactly one of ``out_size`` (returned as given) and ``scale_factor``:
    ``o = floor(i * scale_factor)``, as PyTorch."""
    if (out_size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    _per_axis(size, lambda i, a: i)          # the input size is checked even when out_size decides
    if out_size is not None:
        target = out_size if _is_int(out_size) else as_pair(out_size, "size", 1)
        if _is_int(target) and target < 1:
            raise ValueError(f"size must be >= 1, got {out_size!r}")
        if _is_int(size):
            return target
        return target if not _is_int(target) else (target, target)
    factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    if len(factors) != 2 or not all(isinstance(f, numbers.Real) and not isinstance(f, bool) for f in factors):
        raise TypeError(f"scale_factor must be a number or a pair of numbers, got {scale_factor!r}")
    sf = tuple(float(f) for f in factors)
    if not all(0 < f < math.inf for f in sf):
        raise ValueError(f"scale_factor must be positive and finite, got {scale_factor!r}")

    def compute(i, a):
        try:
            scaled = i * sf[a]
        except OverflowError:                        # a size past any float (10**400)
            scaled = math.inf
        if math.isinf(scaled):                       # past the largest float: math.floor cannot take it
            raise ValueError(f"scale_factor={scale_factor!r} makes size {i} into {scaled:.4g} pixels, "
                             f"more than any array holds")
        o = math.floor(scaled)
        if o < 1:
            raise ValueError(f"scale_factor={scale_factor!r} shrinks size {i} to {o}")
        return o

    return _per_axis(size, compute)


def _shape(value, name, op):
    """A shape argument (a tuple or list of ints, such as ``x.shape``) as a tuple of ints."""
    if not isinstance(value, (tuple, list)) or not all(_is_int(n) for n in value):
        raise TypeError(f"{op}: {name} must be a shape, a tuple of ints, got {value!r}")
    return tuple(int(n) for n in value)


def grid_sample_output_shape(input_shape, grid_shape):
    """``grid_sample``: input ``(N, C, H, W)`` and grid ``(N, H_out, W_out, 2)`` give
    ``(N, C, H_out, W_out)``; the output has the grid's size, whatever the input's. The batch
    may be empty (N = 0, as in PyTorch); every other size must be at least 1."""
    input_shape = _shape(input_shape, "input_shape", "grid_sample_output_shape")
    grid_shape = _shape(grid_shape, "grid_shape", "grid_sample_output_shape")
    if len(input_shape) != 4 or min(input_shape[1:]) < 1:
        raise ValueError(f"grid_sample: input must be (N, C, H, W) with C, H, W >= 1, got shape {input_shape}")
    if len(grid_shape) != 4 or grid_shape[3] != 2 or min(grid_shape[1:3]) < 1:
        raise ValueError(f"grid_sample: grid must have shape (N, H_out, W_out, 2), one (x, y) pair per output "
                         f"pixel and H_out, W_out >= 1, got shape {grid_shape}")
    if grid_shape[0] != input_shape[0]:
        raise ValueError(f"grid_sample: grid and input must have the same batch size N, got grid.shape[0] = "
                         f"{grid_shape[0]} and input.shape[0] = {input_shape[0]}")
    return input_shape[:2] + grid_shape[1:3]


def affine_grid_output_shape(size):
    """``affine_grid``: an output ``size`` of ``(N, C, H, W)`` gives a grid ``(N, H, W, 2)``."""
    if not isinstance(size, (tuple, list)) or not all(_is_int(s) for s in size):
        raise TypeError(f"affine_grid_output_shape: size must be (N, C, H, W), a tuple of four ints, got {size!r}")
    if len(size) != 4 or min(size) < 1:
        raise ValueError(f"affine_grid: size must be (N, C, H, W), four ints >= 1, got {size!r}")
    return (int(size[0]), int(size[2]), int(size[3]), 2)


# ---- inverses --------------------------------------------------------------
def _int_or_pair(value, name, minimum):
    """``(pair, was_int)`` for a size argument that may be an int or an (h, w) pair."""
    if _is_int(value):
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
        return (int(value), int(value)), True
    return as_pair(value, name, minimum), False


def conv2d_input_sizes(out, kernel_size, stride=1, padding=0, dilation=1):
    """Every input size that a conv with these settings maps to ``out``.

    Solving ``o = floor((i + 2p - d(k-1) - 1) / s) + 1`` for ``i``: the floor
    hides the remainder ``(i + 2p - d(k-1) - 1) mod s``, so the ``s`` sizes

        ``i = (o - 1)s - 2p + d(k-1) + 1 + r``,  ``r = 0 .. s-1``

    all give ``o`` (the stride ambiguity; sizes below 1 are left out). An int
    ``out`` gives a sorted list of ints; an ``(h, w)`` pair gives a pair of
    lists ``([heights], [widths])``, each axis on its own. ``padding="same"``
    (stride 1) gives ``[out]``. A ValueError if no input size gives ``out``
    (the padding alone is larger than the output).
    """
    o, was_int = _int_or_pair(out, "out", 1)
    k, s, p, d = _conv_args(kernel_size, stride, padding, dilation)
    if p == "same":
        return [o[0]] if was_int else ([o[0]], [o[1]])

    def compute(a):
        smallest = (o[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + 1
        if s[a] > MAX_LISTED_SIZES:
            raise ValueError(f"stride={stride!r} makes {s[a]} input sizes (every size from {max(smallest, 1)} "
                             f"to {smallest + s[a] - 1}) give out={out!r}; conv2d_input_sizes lists at most "
                             f"MAX_LISTED_SIZES = {MAX_LISTED_SIZES}")
        sizes = [i for i in range(smallest, smallest + s[a]) if i >= 1]
        if not sizes:
            raise ValueError(f"no input size gives out={out!r}: with padding={padding!r} even an input of "
                             f"size 1 gives a larger output")
        return sizes

    return compute(0) if was_int else (compute(0), compute(1))


def conv_transpose2d_output_padding(size, target, kernel_size, stride=1, padding=0, dilation=1):
    """The ``output_padding`` that makes a transposed conv of input ``size`` produce ``target``.

    Without output_padding the transposed conv gives
    ``m = (i - 1)s - 2p + d(k-1) + 1``; output_padding adds ``0 .. s-1`` to
    pick which of the ``s`` conv inputs sharing one conv output to restore,
    so the answer is ``target - m``. This is the rule of PyTorch's
    ``ConvTranspose2d.forward(x, output_size=...)``: the reachable range is
    ``m .. m + s - 1``; a target outside it is a ValueError stating the range.
    Returns an int when ``size`` and ``target`` are ints, else an ``(h, w)`` pair.
    """
    i, size_int = _int_or_pair(size, "size", 1)
    t, target_int = _int_or_pair(target, "target", 1)
    k = as_pair(kernel_size, "kernel_size", 1)
    s = as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    d = as_pair(dilation, "dilation", 1)

    def compute(a):
        smallest = (i[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + 1
        largest = smallest + s[a] - 1
        if not smallest <= t[a] <= largest:
            axis = "" if size_int and target_int else f" ({'height' if a == 0 else 'width'})"
            raise ValueError(
                f"target={target!r} is unreachable{axis}: a transposed conv of size {i[a]} with "
                f"kernel_size={kernel_size!r}, stride={stride!r}, padding={padding!r}, dilation={dilation!r} "
                f"restores sizes {smallest} to {largest} (output_padding 0 to stride - 1)")
        return t[a] - smallest

    return compute(0) if size_int and target_int else (compute(0), compute(1))


# ---- U-Net ---------------------------------------------------------------
class UNetStep(NamedTuple):
    """One row of ``unet_trace``: the stage, the operation, the size before and after it, the level.

    Levels are numbered as everywhere in minisegnet (the docs, ``minisegnet shapes unet``,
    the model's module names): level ``l`` works at ``2**-l`` of the input's scale,
    level 0 at full size, level ``depth`` is the bottleneck. ``stage`` is the
    ``UNet`` module that runs the step: ``encoder.<l>`` (two convs, then the pool
    down to level ``l+1``), ``bottleneck``, ``decoder.<l>`` (the up-conv from
    level ``l+1``, the skip from ``encoder.<l>``, two convs), ``head``.
    """
    stage: str        # "input", "encoder.0" .. "encoder.<depth-1>", "bottleneck", "decoder.<depth-1>" .. "decoder.0", "head"
    operation: str    # "conv 3x3", "max-pool 2x2", "up-conv 2x2", "crop skip from encoder.3", "conv 1x1"
    size_in: object   # int, or (h, w) for a pair input
    size: object      # the size after the step
    level: int = 0    # the level of ``size``: 0 (full scale) .. depth (the bottleneck)


class _InvalidSize(Exception):
    """Raised inside the one-axis walk; turned into a ValueError with the nearest valid sizes."""


def _check_unet_args(depth, padding):
    if not _is_int(depth):
        raise TypeError(f"depth must be an int >= 1, got {depth!r}")
    if depth < 1:
        raise ValueError(f"depth must be an int >= 1, got {depth!r}")
    if depth > MAX_UNET_DEPTH:
        raise ValueError(f"depth={depth} is deeper than MAX_UNET_DEPTH = {MAX_UNET_DEPTH}: every level halves "
                         f"the size, so the input would need more than 2**{depth} pixels per side")
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def _unet_axis(i, depth, padding):
    """Walk one axis of size ``i`` through the U-Net; a list of
    ``(stage, operation, size_in, size, level)`` or ``_InvalidSize`` saying why not.

    Every level ``l`` on the way down (``encoder.<l>``): two 3x3 convs (valid:
    -2 each; same: kept), then a 2x2 max pool to level ``l+1`` that must see an
    even size so the way up can restore it exactly. The bottleneck (level
    ``depth``): two 3x3 convs. Back up (``decoder.<l>``, from ``depth-1`` to 0):
    a 2x2 up-conv doubles the size, the skip from ``encoder.<l>`` is
    center-cropped to it and concatenated, two 3x3 convs follow.
    """
    shrink = 2 if padding == "valid" else 0
    steps = [("input", "input", i, i, 0)]

    def conv(stage, level):
        size = steps[-1][3]
        if size - shrink < 1:
            raise _InvalidSize(f"{stage}'s 3x3 conv (level {level}) would get size {size}, smaller than its kernel")
        steps.append((stage, "conv 3x3", size, size - shrink, level))

    skips = []
    for level in range(depth):
        stage = f"encoder.{level}"
        conv(stage, level)
        conv(stage, level)
        size = steps[-1][3]
        skips.append(size)
        if size % 2:
            raise _InvalidSize(f"{stage} (level {level}) would max-pool an odd size {size}")
        steps.append((stage, "max-pool 2x2", size, size // 2, level + 1))
    conv("bottleneck", depth)
    conv("bottleneck", depth)
    for level in reversed(range(depth)):
        stage = f"decoder.{level}"
        size = steps[-1][3]
        steps.append((stage, "up-conv 2x2", size, 2 * size, level))
        skip = skips[level]
        operation = f"{'crop' if padding == 'valid' else 'copy'} skip from encoder.{level}"
        steps.append((stage, operation, skip, 2 * size, level))
        conv(stage, level)
        conv(stage, level)
    size = steps[-1][3]
    steps.append(("head", "conv 1x1", size, size, 0))
    return steps


@functools.lru_cache(maxsize=None)
def _smallest_valid(depth, padding):
    """The smallest valid input size.

    Every valid input reaches the bottleneck with some whole size ``b``, and
    walking the contracting path backwards from ``b`` (double, then add back
    what the two convs took) gives that input; larger ``b`` give larger inputs.
    So try ``b = 1, 2, ...`` and keep the first input that passes the whole walk:
    a handful of walks of ``depth`` levels each, instead of a search over sizes
    that grows as ``2**depth``.
    """
    shrink = 4 if padding == "valid" else 0        # pixels two 3x3 convs take per level
    b = 1
    while True:
        i = b
        for _ in range(depth):
            i = 2 * i + shrink
        try:
            _unet_axis(i, depth, padding)
            return i
        except _InvalidSize:
            b += 1


def _is_valid(i, depth, padding):
    """Valid sizes are one residue class modulo 2**depth, from the smallest valid size up."""
    first = _smallest_valid(depth, padding)
    return i >= first and (i - first) % 2 ** depth == 0


def _unet_axis_or_error(i, depth, padding, name):
    try:
        return _unet_axis(i, depth, padding)
    except _InvalidSize as why:
        first, period = _smallest_valid(depth, padding), 2 ** depth
        if i < first:
            nearest = f"the smallest valid size is {first}"
        else:
            below = first + (i - first) // period * period
            nearest = f"nearest valid sizes are {below} and {below + period}"
        raise ValueError(f"U-Net input {name} is invalid ({padding} padding, depth {depth}): {why}; "
                         f"{nearest}") from None


def unet_trace(size, depth=4, padding="valid"):
    """Every step of the U-Net's size walk, as a list of ``UNetStep`` rows.

    The original U-Net (valid 3x3 convs, ``depth=4``) on 572: 572 -> 570 ->
    568 -> pool 284 -> ... -> 28 at the bottleneck, then up 56 (skip 64
    cropped to 56) -> 54 -> 52 -> 104 ... -> 388. ``size`` is an int or an
    ``(h, w)`` pair (then every size in the rows is a pair). An invalid size
    is a ValueError naming it, the level that would pool an odd size (or the
    stage that runs out of pixels), and the nearest valid sizes.
    """
    _check_unet_args(depth, padding)
    pair, was_int = _int_or_pair(size, "size", 1)
    if was_int:
        return [UNetStep(*row) for row in _unet_axis_or_error(pair[0], depth, padding, f"{size}")]
    if pair[0] == pair[1]:   # a square input: one axis speaks for both
        name_h = name_w = f"{pair[0]}x{pair[1]}"
    else:
        name_h, name_w = f"{pair[0]}x{pair[1]} (height {pair[0]})", f"{pair[0]}x{pair[1]} (width {pair[1]})"
    rows_h = _unet_axis_or_error(pair[0], depth, padding, name_h)
    rows_w = _unet_axis_or_error(pair[1], depth, padding, name_w)
    return [UNetStep(h[0], h[1], (h[2], w[2]), (h[3], w[3]), h[4]) for h, w in zip(rows_h, rows_w)]


def unet_output_size(size, depth=4, padding="valid"):
    """The U-Net's output size for input ``size`` (int or ``(h, w)``).

    Valid padding, depth 4: ``o = i - 184`` (572 -> 388) on the valid sizes
    ``i % 16 == 12, i >= 188``; in general each level's two convs lose 4 pixels
    on the way down and again on the way up, scaled by 2**level. Same padding:
    the size is kept, for sizes divisible by ``2**depth``. Any other size is a
    ValueError (see ``unet_trace``).
    """
    return unet_trace(size, depth, padding)[-1].size


def unet_receptive_fields(size, depth=4, padding="valid"):
    """The input rows each output pixel of the U-Net can read: a list of
    ``(first, last)`` pairs, one per output pixel along one axis (``size`` an int).

    Walks ``unet_trace`` with one interval per pixel: a 3x3 conv joins the
    intervals of the 3 pixels under it (clipped at the border with same padding),
    a 2x2 pool those of its 2, a 2x2 up-conv copies its one input pixel's, and a
    skip joins the cropped encoder pixel's interval to the decoder pixel's.
    Unlike ``receptive_field`` (one number for a regular chain) this is exact for
    every pixel: the valid U-Net on 572 gives fields of 188 or 204 rows depending
    on a pixel's position modulo 16, while it loses only 184 rows.
    """
    if not _is_int(size):
        raise TypeError(f"size must be an int (one axis), got {size!r}")
    rows = unet_trace(size, depth, padding)
    span = [(i, i) for i in range(size)]
    skips = {}
    for r in rows[1:]:
        if r.operation == "conv 3x3" and padding == "valid":
            span = [(span[j][0], span[j + 2][1]) for j in range(r.size)]
        elif r.operation == "conv 3x3":
            span = [(span[max(j - 1, 0)][0], span[min(j + 1, r.size - 1)][1]) for j in range(r.size)]
        elif r.operation == "max-pool 2x2":
            skips[r.stage] = span                        # the skip copies the map before the pool
            span = [(span[2 * j][0], span[2 * j + 1][1]) for j in range(r.size)]
        elif r.operation == "up-conv 2x2":
            span = [span[j // 2] for j in range(r.size)]
        elif r.operation.endswith(tuple(skips)):         # crop (or copy) the skip, then concatenate
            skip = skips[r.operation.split()[-1]]
            top = (len(skip) - r.size) // 2
            span = [(min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(span, skip[top:top + r.size])]
    return span


def unet_valid_input_sizes(low, high, depth=4, padding="valid"):
    """The valid U-Net input sizes in ``low .. high`` (inclusive), ascending.

    Every 2x2 pool must see an even size, so the valid sizes are one residue
    class modulo ``2**depth`` above a smallest size: ``16b + 124``, ``b >= 4``
    (i.e. 188, 204, ..., 572, ...) for the original U-Net; multiples of
    ``2**depth`` for same padding.
    """
    _check_unet_args(depth, padding)
    for name, value in (("low", low), ("high", high)):
        if not _is_int(value):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if low < 1:
        raise ValueError(f"low must be an int >= 1, got {low!r}")
    if high < low:
        raise ValueError(f"high must be an int >= low={low!r}, got {high!r}")
    first, period = _smallest_valid(depth, padding), 2 ** depth
    start = first if low <= first else first + -(-(low - first) // period) * period
    sizes = range(start, high + 1, period)
    if len(sizes) > MAX_LISTED_SIZES:
        raise ValueError(f"low={low!r} .. high={high!r} holds {len(sizes)} valid sizes ({start}, {start + period}, "
                         f"... every {period}); unet_valid_input_sizes lists at most MAX_LISTED_SIZES = "
                         f"{MAX_LISTED_SIZES}")
    return list(sizes)


# ---- receptive field --------------------------------------------------------
class Layer(NamedTuple):
    """A conv-like layer for ``receptive_field``: conv or pool (max or average)."""
    name: str
    kernel_size: object
    stride: object = 1
    padding: object = 0
    dilation: object = 1


class ReceptiveField(NamedTuple):
    """The receptive field after one layer, in input pixels.

    ``size``: how many input pixels (per axis) one output pixel sees.
    ``jump``: the input-pixel distance between two neighbouring outputs (the
    product of the strides so far). ``start``: the input coordinate of the
    centre of the first output's field (pixel centres at 0, 1, ...; negative
    when padding reaches outside the image; ``x.5`` for even kernels).
    """
    name: str
    size: object
    jump: object
    start: object


def _plain(x):
    """A Fraction as an int when whole, else a float (for printing and comparing)."""
    return int(x) if x.denominator == 1 else float(x)


def _rf_conv(rf, k, s, p, d):
    """``r_out = r_in + (k-1) d j_in``, ``j_out = j_in s``,
    ``start_out = start_in + ((k-1)/2 d - p) j_in`` (one axis, exact fractions)."""
    r, j, start = rf
    return (r + (k - 1) * d * j, j * s, start + (Fraction((k - 1) * d, 2) - p) * j)


def receptive_field(layers):
    """Receptive field size, jump and start offset after each layer of a chain.

    ``layers``: a sequence of ``Layer`` records or plain tuples
    ``(name, kernel_size, stride=1, padding=0, dilation=1)`` (the name may be
    left out: ``(kernel_size, stride, padding, dilation)``, then rows are named
    "0", "1", ...). Each value may be an int or an ``(h, w)`` pair; padding may
    be ``"valid"`` or ``"same"``. Starting from one input pixel
    (``r=1, j=1, start=0``), per axis::

        r_out = r_in + (k-1) d j_in          j_out = j_in s
        start_out = start_in + ((k-1)/2 d - p) j_in

    Returns one ``ReceptiveField`` per layer; its numbers are ints (or pairs
    when any layer used a pair). Two 3x3 convs see 5x5; VGG16's conv5_3 sees 196.
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be a sequence of (name, kernel_size, stride, padding, dilation), "
                        f"got {layers!r}")
    rf = [(Fraction(1), Fraction(1), Fraction(0))] * 2
    any_pair = False
    fields = []                                     # (name, per-axis (r, j, start)) of each layer
    for index, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)) or not layer:
            raise TypeError(f"layers[{index}] must be a tuple (name, kernel_size, stride, padding, dilation), "
                            f"got {layer!r}")
        if isinstance(layer[0], str):
            name, values = layer[0], tuple(layer[1:])
        else:
            name, values = str(index), tuple(layer)
        if not 1 <= len(values) <= 4:
            raise TypeError(f"layers[{index}] must give kernel_size and at most stride, padding, dilation, "
                            f"got {layer!r}")
        k, s, p, d = values + (1, 0, 1)[len(values) - 1:]
        any_pair = any_pair or not all(_is_int(v) or isinstance(v, str) for v in (k, s, p, d))
        k = as_pair(k, f"layers[{index}] kernel_size", 1)
        s = as_pair(s, f"layers[{index}] stride", 1)
        d = as_pair(d, f"layers[{index}] dilation", 1)
        if p == "valid":
            p = (0, 0)
        elif p == "same":
            if s != (1, 1):
                raise ValueError(f"layers[{index}]: padding='same' needs stride 1 (as conv2d: PyTorch refuses "
                                 f"it for strided convolutions), got stride {s}")
            # the top/left padding: as the conv pads, the odd pixel of an odd d(k-1) goes bottom/right
            p = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
        else:
            p = as_pair(p, f"layers[{index}] padding", 0)
        rf = [_rf_conv(rf[a], k[a], s[a], p[a], d[a]) for a in (0, 1)]
        fields.append((name, rf))
    if any_pair:                                    # every row in pairs, the rows before the first pair too
        return [ReceptiveField(name, *((_plain(rf[0][f]), _plain(rf[1][f])) for f in range(3)))
                for name, rf in fields]
    return [ReceptiveField(name, *(_plain(rf[0][f]) for f in range(3))) for name, rf in fields]
