"""Output-size arithmetic for every layer, in pure Python integers.

The ops call these functions to compute (and validate) their output sizes, so
the formulas below are the single source of truth, and the tests check the
ops' real outputs against them. Every function takes a size as an ``int`` or
an ``(h, w)`` pair and returns the same kind. Notation per spatial axis:
``i`` input size, ``k`` kernel, ``s`` stride, ``p`` padding, ``d`` dilation;
``d*(k-1)+1`` is the effective (dilated) kernel.
"""
import math

__all__ = [
    "as_pair",
    "conv2d_output_size",
    "conv_transpose2d_output_size",
    "max_pool2d_output_size",
    "avg_pool2d_output_size",
    "max_unpool2d_output_size",
    "interpolate_output_size",
    "conv2d_input_sizes",
    "conv_transpose2d_output_padding",
]


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool) or type(v).__name__ in ("int64", "int32")


def as_pair(value, name, minimum=None):
    """``value`` (an int or a pair of ints) as a tuple ``(h, w)``; checks ``>= minimum``."""
    if _is_int(value):
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
            raise ValueError(f"size must be >= 1, got {size}")
        return compute(int(size), 0)
    h, w = as_pair(size, "size", minimum=1)
    return (compute(h, 0), compute(w, 1))


def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """``o = floor((i + 2p - d(k-1) - 1) / s) + 1``.

    ``padding`` may also be ``"valid"`` (0) or ``"same"`` (output = input;
    stride 1 only). For ``s > 1`` several input sizes give the same ``o``:
    see ``conv2d_input_sizes``.
    """
    k = as_pair(kernel_size, "kernel_size", 1)
    s = as_pair(stride, "stride", 1)
    d = as_pair(dilation, "dilation", 1)
    if padding == "same":
        if s != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride={stride!r}")
        return size if _is_int(size) else tuple(as_pair(size, "size", 1))
    p = (0, 0) if padding == "valid" else as_pair(padding, "padding", 0)

    def compute(i, a):
        span = d[a] * (k[a] - 1) + 1
        if span > i + 2 * p[a]:
            raise ValueError(
                f"kernel_size={kernel_size!r} with dilation={dilation!r} spans {span} pixels, more than "
                f"the padded input ({i} + 2*{p[a]} = {i + 2 * p[a]})")
        return (i + 2 * p[a] - span) // s[a] + 1

    return _per_axis(size, compute)


def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """``o = (i - 1)s - 2p + d(k-1) + output_padding + 1``, ``0 <= output_padding < max(s, d)``.

    The inverse of ``conv2d_output_size``: output_padding picks which of the
    ``s`` input sizes that share one conv output to produce.
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


def _pool_size(i, k, s, p, d, ceil_mode, name):
    if 2 * p > k:
        raise ValueError(f"padding={p} must be at most half of kernel_size={k} ({name})")
    span = d * (k - 1) + 1
    if span > i + 2 * p:
        raise ValueError(f"{name}: the window spans {span} pixels, more than the padded input "
                         f"({i} + 2*{p} = {i + 2 * p})")
    rounder = math.ceil if ceil_mode else math.floor
    o = rounder((i + 2 * p - span) / s) + 1
    # PyTorch's rule: with ceil_mode, a window may not start in the right padding.
    if ceil_mode and (o - 1) * s >= i + p:
        o -= 1
    return o


def max_pool2d_output_size(size, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """As conv, with ceil instead of floor when ``ceil_mode``, minus the last window
    if it would start in the right padding. ``stride`` defaults to ``kernel_size``;
    ``padding`` is at most ``kernel_size / 2``."""
    k = as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    d = as_pair(dilation, "dilation", 1)
    return _per_axis(size, lambda i, a: _pool_size(i, k[a], s[a], p[a], d[a], ceil_mode, "max_pool2d"))


def avg_pool2d_output_size(size, kernel_size, stride=None, padding=0, ceil_mode=False):
    """``max_pool2d_output_size`` with dilation 1."""
    k = as_pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    return _per_axis(size, lambda i, a: _pool_size(i, k[a], s[a], p[a], 1, ceil_mode, "avg_pool2d"))


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


def interpolate_output_size(size, out_size=None, scale_factor=None):
    """Exactly one of ``out_size`` (returned as given) and ``scale_factor``:
    ``o = floor(i * scale_factor)``, as PyTorch."""
    if (out_size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor")
    if out_size is not None:
        target = out_size if _is_int(out_size) else as_pair(out_size, "size", 1)
        if _is_int(target) and target < 1:
            raise ValueError(f"size must be >= 1, got {out_size!r}")
        if _is_int(size):
            return target if _is_int(target) else target
        return target if not _is_int(target) else (target, target)
    if isinstance(scale_factor, (tuple, list)):
        if len(scale_factor) != 2:
            raise TypeError(f"scale_factor must be a number or a pair, got {scale_factor!r}")
        sf = tuple(float(f) for f in scale_factor)
    else:
        sf = (float(scale_factor), float(scale_factor))
    if min(sf) <= 0:
        raise ValueError(f"scale_factor must be positive, got {scale_factor!r}")

    def compute(i, a):
        o = math.floor(i * sf[a])
        if o < 1:
            raise ValueError(f"scale_factor={scale_factor!r} shrinks size {i} to {o}")
        return o

    return _per_axis(size, compute)


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
    k = as_pair(kernel_size, "kernel_size", 1)
    s = as_pair(stride, "stride", 1)
    d = as_pair(dilation, "dilation", 1)
    if padding == "same":
        if s != (1, 1):
            raise ValueError(f"padding='same' needs stride 1, got stride={stride!r}")
        return [o[0]] if was_int else ([o[0]], [o[1]])
    p = (0, 0) if padding == "valid" else as_pair(padding, "padding", 0)

    def compute(a):
        smallest = (o[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + 1
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
                f"produces sizes {smallest} to {largest}")
        return t[a] - smallest

    return compute(0) if size_int and target_int else (compute(0), compute(1))
