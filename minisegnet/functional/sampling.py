"""Sampling an image at arbitrary points: ``grid_sample`` and ``affine_grid``, PyTorch's rules.

``F.interpolate`` reads its input on a regular lattice of points. ``grid_sample``
reads it wherever a *grid* says: ``grid[n, i, j] = (x, y)`` is the point of
``input[n]`` that output pixel ``(i, j)`` shows, in normalised coordinates
(``x`` across the width first, then ``y`` down the height; -1 is the
left/top of the image, +1 the right/bottom). Per point, three steps:

1. **Normalised -> pixel coordinates** (``align_corners``; ``y`` likewise with ``H``)::

       align_corners=True:   x_pix = (x + 1) / 2 * (W - 1)     (+-1: the centres of the corner pixels)
       align_corners=False:  x_pix = (x + 1) * W / 2 - 0.5     (+-1: the outer edges of the image)

2. **padding_mode**: where a point outside the image reads::

       "zeros":       x_pix unchanged; pixels outside the image count as 0
       "border":      x_pix = clip(x_pix, 0, W - 1): the nearest edge pixel
       "reflection":  x_pix mirrored about the borders until it lands inside (about the
                      corner pixels' centres 0 and W - 1 with align_corners=True, about
                      the image's edges -0.5 and W - 0.5 with False), then clipped

3. **Interpolation** (``mode``). ``"bilinear"``: with ``x0 = floor(x_pix)``,
   ``a = x_pix - x0`` (and ``y0``, ``b`` likewise), the four pixels around the
   point are mixed, each weighted by the area of the rectangle opposite it::

       out = (1-a)(1-b) I[y0, x0]   + a(1-b) I[y0, x0+1]
           + (1-a) b    I[y0+1, x0] + a b    I[y0+1, x0+1]

   ``"nearest"``: ``out = I[round(y_pix), round(x_pix)]``, halves rounded to
   even (PyTorch's ``nearbyint``: 0.5 -> 0, 1.5 -> 2).

**Gradients.** ``out`` is linear in ``I``: the input gradient sends each
output gradient back to the pixels it read, with the same weights (a
scatter-add, since many points may read one pixel). With respect to the
point: inside one cell (``x0``, ``y0`` fixed) ``out`` is bilinear in ``(a, b)``::

    d out / d x_pix = (1-b) (I[y0, x0+1] - I[y0, x0]) + b (I[y0+1, x0+1] - I[y0+1, x0])
    d out / d y_pix = (1-a) (I[y0+1, x0] - I[y0, x0]) + a (I[y0+1, x0+1] - I[y0, x0+1])

differences of neighbouring pixels: ``d out / d x_pix`` does not change as
the point moves along ``x`` inside a cell and jumps where it crosses into the
next (it is piecewise constant; on a cell's edge, ``floor`` picks the cell to
the right or below). The chain rule then multiplies by step 1's slope
(``(W - 1) / 2`` or ``W / 2``) and step 2's: 1 for ``zeros``; for ``border``
1 inside and 0 outside and *on* the border (PyTorch's choice); for
``reflection`` +-1 (-1 where the mirror reverses direction), 0 on the border
and, with ``align_corners=False``, in the half-pixel strips that the final clip
into ``[0, W - 1]`` flattens.
``"nearest"`` output is constant between rounding boundaries, so its
gradient with respect to the grid is 0.

**How the code does it.** The input is copied once into a frame of zeros
two pixels wide on every side (``framed``). A corner outside the image then
reads 0 from the frame, the ``zeros`` rule, with no test per corner, and a
point farther out is moved into the frame (its cell start clipped into
``[-2, W]``), where both its neighbours are 0. In the framed image, flattened
row by row with rows of ``W + 4``, the four corners of a cell whose top-left
pixel ``nw`` has flat index ``k`` are at ``k``, ``k + 1``, ``k + (W + 4)`` and
``k + (W + 4) + 1``: one flat index per point serves all four, the corner
read at ``k`` plus its offset. The channels of an image share its points, so
each corner is one gather (``take``) per image, and the input gradient a 1-D
scatter-add per corner and image, through a view of the framed gradient
shifted by the corner's offset; the gradient's inside is then cut out (what
lands in the frame belonged to no pixel). The points are visited image by image,
a block at a time. When a gradient will be wanted, the forward pass keeps
what it found for each block (the cell index, weights, the point's place in
its cell, and the four corner values the grid gradient needs), so the
backward pass does not compute them again (``KEEP_READS``; PyTorch
recomputes them). Memory per call is therefore the framed copy of the input
(the input's size and its frame), the output, the gradients (the input's
in its frame), the kept numbers (a fixed count per output value: in float32
with both gradients wanted and an output the input's size, a forward's peak
allocation is about 9 times the output for 3 channels and 6.5 times for 32,
the framed copy included, as ``benchmarks/bench_grid_sample.py`` measures) and temporaries of one block; never an ``(H*W) x (H*W)`` matrix.

``affine_grid(theta, size)`` makes the grid of an affine map: output pixel
``(i, j)``, at normalised position ``(x_j, y_i)``, samples the point
``theta[n] @ (x_j, y_i, 1)``.
"""
import numbers
from fractions import Fraction

import numpy as np

from .. import backend, checks, parallel, shapes
from ..autograd import Function, is_grad_enabled
from .basic import empty_batch

__all__ = ["grid_sample", "affine_grid"]

_MODES = ("bilinear", "nearest")
_PADDING_MODES = ("zeros", "border", "reflection")


# ---- steps 1 and 2: from a normalised coordinate to a pixel coordinate (one axis) -----------
def unnormalize(coord, size, align_corners):
    """Step 1 along an axis of ``size`` pixels: ``(x_pix, d x_pix / d coord)``.

    The arithmetic is PyTorch's, in the coordinate's own dtype, so a point that
    lands exactly on a pixel centre or a cell edge lands there in both libraries
    (which cell it falls in decides its grid gradient). PyTorch's CPU kernel
    computes ``(x + 1) * W/2 - 0.5`` in two roundings: ``x + 1``, then the multiply
    and the subtraction with one (its compiler fuses them into one FMA instruction),
    hence ``fused_multiply_add``.
    """
    if align_corners:
        scale = (size - 1) / 2
        # a point near the float's limit: inf, as in PyTorch; an infinite one on a 1-pixel axis: NaN
        with np.errstate(over="ignore", invalid="ignore"):
            return (coord + 1) * scale, scale
    scale = size / 2
    return fused_multiply_add(coord + 1, scale, -0.5), scale


def fused_multiply_add(a, b, c):
    """``a * b + c`` for an array ``a`` and numbers ``b``, ``c``, rounded once, as an FMA instruction does.

    Below float64 the product and sum are exact in float64 (near the values that
    matter here), so one rounding back is the fused result. In float64, Dekker's
    splitting gives the product's rounding error ``e`` exactly (``a * b = p + e``),
    and ``(p + c) + e`` rounds once where ``p + c`` is exact, which it is near
    every integer and half-integer (the places where a rounding decides anything).
    Beyond about 1e300 the splitting itself overflows (``error`` is not finite):
    there ``p + c`` is the answer, as no rounding of such a point decides anything.
    """
    if a.dtype != np.float64:
        wide = a.astype(np.float64)
        wide *= b
        wide += c
        with np.errstate(over="ignore"):          # past the dtype's largest number: inf, as PyTorch's
            return wide.astype(a.dtype)
    xp = backend.get_array_module(a)
    with np.errstate(over="ignore", invalid="ignore"):
        p = a * b
        a_hi, a_lo = _split(a)
        b_hi, b_lo = _split(b)
        error = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
        return xp.where(xp.isfinite(error), (p + c) + error, p + c)


def _split(v):
    """``v = hi + lo`` with ``hi`` holding the top 26 bits: products of halves are exact (Veltkamp)."""
    scaled = 134217729.0 * v            # 2**27 + 1
    hi = scaled - (scaled - v)
    return hi, v - hi


def clip(pix, size, with_slope=True):
    """``"border"``: ``(clip(pix, 0, size-1), slope)``, slope 1 strictly inside, 0 outside or on the border.

    ``fmax``/``fmin`` send NaN to pixel 0. (PyTorch's clamp keeps NaN, and its CPU
    kernel has no defined answer there to compare with: torch 2.13 crashed on a NaN
    point with border or reflection padding.) ``with_slope=False``: slope None.
    """
    xp = backend.get_array_module(pix)
    slope = ((pix > 0) & (pix < size - 1)).astype(pix.dtype) if with_slope else None
    return xp.fmin(xp.fmax(pix, 0), size - 1), slope


def reflect(pix, size, align_corners, with_slope=True):
    """``"reflection"``: mirror ``pix`` into ``[lo, lo + span]``; returns ``(reflected, slope +-1)``.

    ``lo, span = 0, size - 1`` (about the corner pixels' centres) with
    ``align_corners``, else ``-0.5, size`` (about the image's edges). Mirroring
    repeats with period ``2 * span``: fold ``|pix - lo|`` into ``[0, 2 span)``,
    and a point in the second half comes back the other way (slope -1).
    ``with_slope=False``: slope None.
    """
    xp = backend.get_array_module(pix)
    lo, span = (0.0, size - 1) if align_corners else (-0.5, size)
    if span == 0:                              # a 1-pixel axis with align_corners: one point
        return xp.zeros_like(pix), (xp.zeros_like(pix) if with_slope else None)
    t = pix - lo
    slope = xp.where(t < 0, -1, 1).astype(pix.dtype) if with_slope else None
    t = xp.abs(t)
    with np.errstate(invalid="ignore"):          # an infinite point: inf - inf, NaN, as in PyTorch
        t = t - xp.trunc(t / (2 * span)) * (2 * span)
    back = t > 2 * span - t
    if with_slope:
        slope = xp.where(back, -slope, slope)
    return xp.where(back, 2 * span - t, t) + lo, slope


def source_pixels(coord, size, align_corners, padding_mode, with_slope=True):
    """Steps 1 and 2 for one axis: pixel coordinates and their slope d x_pix / d coord
    (a number for ``"zeros"``, one per point otherwise; None when ``with_slope`` is False:
    only the grid gradient needs it)."""
    pix, slope = unnormalize(coord, size, align_corners)
    if padding_mode == "reflection":
        pix, mirror = reflect(pix, size, align_corners, with_slope)
        slope = slope * mirror if with_slope else None
    if padding_mode != "zeros":
        pix, inside = clip(pix, size, with_slope)
        slope = slope * inside if with_slope else None
    return pix, slope


# ---- step 3: the pixels around each point, read from the input in a frame of zeros -------
FRAME = 2
"""Pixels of zeros around each side of the framed input: one for a corner just outside the
image, and a second so that a point farther out, moved to the frame's edge, reads 0 at both
of its neighbours. Two exactly: ``cell`` and ``nearest`` clip into ``[-2, size]``, the
frame's outer pixels."""


def framed(x):
    """``x`` (N, C, H, W) in a frame of ``FRAME`` zeros on every side, rows flattened:
    (N, C, (H + 4) * (W + 4)). The one copy of the input that a call makes (written once:
    the frame's strips zeroed, the inside copied)."""
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    f = FRAME
    out = xp.empty((n, c, h + 2 * f, w + 2 * f), dtype=x.dtype)
    out[:, :, :f], out[:, :, h + f:], out[:, :, f:h + f, :f], out[:, :, f:h + f, w + f:] = 0, 0, 0, 0
    inside(out)[...] = x
    return out.reshape(n, c, -1)


def inside(a):
    """The image inside the frame of a framed (N, C, H + 4, W + 4) array: a view."""
    return a[:, :, FRAME:a.shape[2] - FRAME, FRAME:a.shape[3] - FRAME]


def cell(pix, size):
    """Along one axis: the framed index of the first pixel of each point's cell, and the
    point's offset past it.

    ``lo = floor(pix)`` and ``frac = pix - lo``; ``lo`` is clipped into
    ``[-FRAME, size]`` (``fmax``/``fmin`` send NaN to ``-FRAME``) and shifted by
    ``FRAME``, so the cell ``lo, lo + 1`` lies in the framed axis of ``size + 4``
    pixels: a point outside the image reads the frame's zeros, and one farther
    out than a pixel reads zeros at both ends.
    """
    xp = backend.get_array_module(pix)
    lo = xp.floor(pix)
    with np.errstate(invalid="ignore"):          # an infinite point: inf - inf, NaN, as in PyTorch
        frac = pix - lo
    xp.fmax(lo, -FRAME, out=lo)
    xp.fmin(lo, size, out=lo)
    return lo.astype(np.int64) + FRAME, frac


def nearest(pix, size):
    """Along one axis: the framed index of the pixel nearest ``pix`` (halves to even; outside the
    image, a pixel of the frame)."""
    xp = backend.get_array_module(pix)
    i = xp.rint(pix)
    xp.fmax(i, -FRAME, out=i)
    xp.fmin(i, size, out=i)
    return i.astype(np.int64) + FRAME


def corner_offsets(mode, width):
    """Where each corner lies from the cell's first pixel, in the framed image's flat index:
    nw, ne, sw, se (PyTorch's order of the sum) for bilinear; the pixel itself for nearest."""
    row = width + 2 * FRAME
    return (0, 1, row, row + 1) if mode == "bilinear" else (0,)


def corners(points, height, width, mode, padding_mode, align_corners, with_slope=False):
    """Steps 1-3 for a block of points ``(P, 2)``: the pixels each point reads.

    Returns ``(index, weights, cell)``. ``index``: the framed flat index
    ``row * (W + 4) + col`` of each point's first corner (nw; the others are at
    ``corner_offsets``). ``weights``: one array per corner, its interpolation
    weight (None for nearest, whose one corner weighs 1). ``cell``: ``(a, b, sx,
    sy)`` for the grid gradient, the point's offsets in its cell and the slopes
    of steps 1-2 (None for nearest; the slopes None when ``with_slope`` is False:
    only the grid gradient needs them).
    """
    px, sx = source_pixels(points[:, 0], width, align_corners, padding_mode, with_slope)
    py, sy = source_pixels(points[:, 1], height, align_corners, padding_mode, with_slope)
    row = width + 2 * FRAME
    if mode == "nearest":
        index = nearest(py, height)
        index *= row
        index += nearest(px, width)
        return index, None, None
    (col, a), (index, b) = cell(px, width), cell(py, height)
    index *= row
    index += col
    a1, b1 = 1 - a, 1 - b
    return index, (b1 * a1, b1 * a, b * a1, b * a), (a, b, sx, sy)


def corner_values(image, index, offsets):
    """The value of each corner for every channel of the framed ``image`` (C, (H+4)(W+4)):
    a list of (C, P) arrays, one gather each at ``index + offset`` (the channels share
    the points; the indices are valid by construction, so ``take_valid`` skips the
    check of each)."""
    return [backend.take_valid(image, index + offset if offset else index, 1) for offset in offsets]


# ---- the op: forward and backward side by side ----------------------------------------
class GridSample(Function):
    """Bilinear (the four corners of each point's cell) or nearest sampling; see the module docstring.

    forward:   out[n, c, p] = sum_k w_k[n, p] I[n, c, corner_k(n, p)]      (I framed by zeros)
    backward:  dI[n, c, corner_k] += w_k g[n, c, p]                       (scatter-add)
               d grid_x = sx * sum_c g * ((1-b)(I_ne - I_nw) + b (I_se - I_sw))
               d grid_y = sy * sum_c g * ((1-a)(I_sw - I_nw) + a (I_se - I_ne))
    with corners nw, ne, sw, se = (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1)
    (a corner outside the image reads the frame's 0), ``sx``, ``sy`` the slopes
    of steps 1-2, and 0 as the grid gradient for nearest.

    Both passes walk the points image by image and a block at a time
    (``blocks``; on the CPU the blocks are shared over the threads,
    ``each_block``); the backward pass walks them twice, once for the grid's
    gradient and once for the input's scatter (``SERIAL_SCATTER``). What the
    forward pass found for each block (cell index, weights, cell offsets and
    corner values: a fixed count of numbers per output value) is kept for
    the backward pass when a gradient will be wanted (``KEEP_READS``);
    otherwise each backward walk recomputes it from the grid, as PyTorch does.
    """

    def __init__(self, mode, padding_mode, align_corners):
        self.mode, self.padding_mode, self.align_corners = mode, padding_mode, align_corners
        self.kept = {}

    def _reads(self, i, block, points, height, width, with_slope=False):
        """``(index, weights, cell, values)`` of ``corners`` for block ``block`` of image ``i``: what
        the forward pass kept for it, else computed now (``values`` None: not read yet)."""
        kept = self.kept.get((i, block.start, block.stop))
        if kept is not None:
            return kept
        return corners(points[i, block], height, width, self.mode, self.padding_mode, self.align_corners,
                       with_slope) + (None,)

    def forward(self, x, grid):
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        image, points = framed(x), grid.reshape(n, -1, 2)
        offsets = corner_offsets(self.mode, w)
        out = xp.empty((n, c, points.shape[1]), dtype=x.dtype)
        wanted = is_grad_enabled() and any(self.needs_input_grad)       # a backward pass will come
        keep = KEEP_READS and wanted
        want_grid = self.needs_input_grad[1]

        def sample(i, block):                                  # out[i, :, block], from its points
            index, weights, cell, _ = self._reads(i, block, points, h, w, with_slope=keep and want_grid)
            values = corner_values(image[i], index, offsets)
            if keep:                                           # one entry per block: threads never share one
                self.kept[i, block.start, block.stop] = index, weights, cell, (values if want_grid else None)
            o = out[i, :, block]
            if weights is None:                                # nearest: the pixel itself
                o[...] = values[0]
                return
            xp.multiply(values[0], weights[0], out=o)
            for term, weight in zip(values[1:], weights[1:]):
                o += term * weight

        work = list(blocks(points, c))
        each_block(sample, work, xp)
        if wanted:                    # the backward pass walks the same blocks: what was kept is found
            self.shape, self.grid, self.work = x.shape, grid, work
            self.image = None if keep else image         # kept: the grid gradient has its corner values
        return out.reshape(n, c, *grid.shape[1:3])

    def backward(self, g):
        xp = backend.get_array_module(g)
        n, c, h, w = self.shape
        points, g = self.grid.reshape(n, -1, 2), g.reshape(n, c, -1)
        offsets = corner_offsets(self.mode, w)
        size = (h + 2 * FRAME) * (w + 2 * FRAME)
        want_x, want_grid = self.needs_input_grad
        gx = xp.zeros((n, c * size), dtype=g.dtype) if want_x else None       # framed, channels flattened
        ggrid = xp.zeros(points.shape, dtype=g.dtype) if want_grid else None
        channel_start = xp.arange(c)[:, None] * size

        def input_gradient(i, block):                          # adds into gx[i]
            index, weights, _, _ = self._reads(i, block, points, h, w)
            gi = g[i, :, block]
            index = (channel_start + index).reshape(-1)        # the first corner, in each channel
            for k, offset in enumerate(offsets):              # dI[corner] += w g, repeats adding up
                # a corner outside the image adds into the frame, which is cut away below
                # (so a NaN or infinite point's NaN weights reach no pixel: PyTorch's 0)
                backend.scatter_add(gx[i, offset:], index, (gi if weights is None else gi * weights[k]).reshape(-1))

        def grid_gradient(i, block):                           # writes ggrid[i, block]
            index, _, cell, values = self._reads(i, block, points, h, w, with_slope=True)
            gi = g[i, :, block]
            if values is None:
                values = corner_values(self.image[i], index, offsets)
            # per corner: sum over channels of g times the corner's value (the frame's 0 outside)
            nw, ne, sw, se = (xp.einsum("cp,cp->p", gi, v) for v in values)
            a, b, sx, sy = cell
            ggrid[i, block, 0] = ((1 - b) * (ne - nw) + b * (se - sw)) * sx
            ggrid[i, block, 1] = ((1 - a) * (sw - nw) + a * (se - ne)) * sy

        def scatter():
            each_block(input_gradient, self.work, xp, by_image=True, threads=not SERIAL_SCATTER)

        want_grid = want_grid and self.mode == "bilinear"            # nearest: the grid's gradient is 0
        if want_grid and want_x and SCATTER_BESIDE and xp is np:
            # the scatter keeps the interpreter lock, the grid gradient mostly lets go of it
            parallel.run_beside(scatter, lambda item: grid_gradient(*item), self.work)
        else:
            if want_grid:
                each_block(grid_gradient, self.work, xp)
            if want_x:
                scatter()
        if gx is not None:                                     # the inside of the frame (a view)
            gx = inside(gx.reshape(n, c, h + 2 * FRAME, w + 2 * FRAME))
        return gx, None if ggrid is None else ggrid.reshape(self.grid.shape)


# ---- speed: the order in which points are visited ------------------------------------------
KEEP_READS = True
"""When a gradient will be wanted, keep each block's corners, weights and corner values from
the forward pass for the backward pass instead of recomputing them: faster (most with few
channels, where the per-point work dominates), at the price of memory in proportion to the
output. ``False``: keep nothing, as PyTorch. ``benchmarks/bench_grid_sample.py --levers`` times both."""

BLOCK_ELEMENTS = 1 << 17
"""Output values (channels x points) handled at a time on the CPU (2**17: half a MiB of
float32), so that a block's indices, weights and values are still in the cache when the
next corner reads them, while each call over all its channels is long enough to gain from
a second thread (the calls per point are ``channels`` times shorter: with 32 channels,
4096 points, a size at which calls run slower on two threads than on one, as
``benchmarks/bench_threads.py`` measures).
``None``: whole images at a time (fewer, larger array operations: what a GPU wants,
and what CuPy arrays always get). ``benchmarks/bench_grid_sample.py --levers`` times both."""


def blocks(points, channels):
    """``(image, slice of points)`` pairs covering ``points`` ``(N, P, 2)``, image by image."""
    n, p = points.shape[:2]
    per_block = p
    if BLOCK_ELEMENTS is not None and backend.get_array_module(points) is np:
        per_block = max(256, BLOCK_ELEMENTS // channels)
    for i in range(n):
        for start in range(0, p, per_block):
            yield i, slice(start, min(start + per_block, p))


SERIAL_SCATTER = True
"""Add the input gradient's scatter (``add.at``) in the calling thread, after the grid
gradient's pass over the threads. ``add.at`` keeps the interpreter lock for most of its work
(a second thread buys it 1.05-1.26x where a copy gains 1.4x: the thread table of
docs/benchmarks.md), so two threads scattering into their own images mostly take turns, and
handing the lock back and forth between them costs more than it buys. ``False``: images
shared over the threads, as in the forward pass. ``benchmarks/bench_grid_sample.py --levers``
times both."""


SCATTER_BESIDE = True
"""When both gradients are wanted, add the input gradient's scatter in the calling thread
while the other threads compute the grid gradient (``parallel.run_beside``), instead of one
after the other: the scatter's ``add.at`` keeps the interpreter lock, the grid gradient's
arithmetic mostly lets go of it, so the two overlap. The same numbers either way (each writes
its own array, in the same order). ``False``: the grid gradient over the threads, then the
scatter. ``benchmarks/bench_grid_sample.py --levers`` times both."""


def each_block(task, work, xp, by_image=False, threads=True):
    """``task(i, block)`` for every ``(i, block)`` of ``work`` (``blocks``' list), arrays of ``xp``.

    On the CPU the blocks are shared over minisegnet's threads (``parallel.run``;
    NumPy releases the GIL in ``take`` and the arithmetic). Each task writes only
    its own block of the output, so any thread count gives the same numbers.
    ``by_image=True`` keeps all of an image's blocks in one task, in order: the
    backward pass's scatter-adds into one image's gradient must not race.
    ``threads=False``, and on a GPU, the blocks run one after the other in the
    calling thread (CuPy queues the kernels anyway).
    """
    if xp is not np or not threads:
        for i, block in work:
            task(i, block)
        return
    if by_image:
        per_image = [[(i, block) for i, block in work if i == j] for j in sorted({i for i, _ in work})]
        parallel.run(lambda items: [task(i, block) for i, block in items], per_image)
    else:
        parallel.run(lambda item: task(*item), work)


def _check_align_corners(align_corners, fn):
    if align_corners is None:
        return False
    if not isinstance(align_corners, (bool, np.bool_)):
        raise TypeError(f"{fn}: align_corners must be True or False, got {align_corners!r}")
    return bool(align_corners)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """Sample ``input`` (N, C, H, W) at the points ``grid`` (N, H_out, W_out, 2) -> (N, C, H_out, W_out),
    as ``torch.nn.functional.grid_sample`` (2-D).

    ``grid[n, i, j] = (x, y)`` in normalised coordinates, ``(-1, -1)`` the
    top-left of the image and ``(1, 1)`` the bottom-right; the module docstring
    gives the formulas. ``mode``: ``"bilinear"`` or ``"nearest"``
    (PyTorch's ``"bicubic"`` is not implemented). ``padding_mode``:
    ``"zeros"``, ``"border"`` or ``"reflection"``. ``align_corners``: whether
    +-1 are the corner pixels' centres (True) or the image's outer edges
    (False, the default; None also means False, as in PyTorch). Differentiable
    with respect to ``input`` and ``grid``; ``grid`` must have the input's dtype.
    """
    checks.tensor(input, "input", "grid_sample")
    checks.tensor(grid, "grid", "grid_sample")
    if input.ndim != 4:
        raise ValueError(f"grid_sample: input must be 4-D (N, C, H, W), got shape {input.shape}")
    if input.dtype.kind != "f":
        raise TypeError(f"grid_sample: input must be floating point, got dtype {input.dtype}")
    if mode not in _MODES:
        raise ValueError(f"grid_sample: mode must be one of {_MODES}, got {mode!r}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"grid_sample: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    align_corners = _check_align_corners(align_corners, "grid_sample")
    if grid.dtype != input.dtype:
        raise TypeError(f"grid_sample: grid must have the input's dtype {input.dtype}, got {grid.dtype}")
    out_shape = shapes.grid_sample_output_shape(input.shape, grid.shape)       # checks the shapes
    if out_shape[0] == 0:                 # an empty batch: an empty output (PyTorch's answer), zero gradients
        return empty_batch(out_shape, input, grid)
    backend.get_array_module(input.data, grid.data)                  # one device for both
    return GridSample(mode, padding_mode, align_corners)(input, grid)


# ---- affine_grid ------------------------------------------------------------------------
def base_coordinates(n, align_corners, xp, dtype):
    """Normalised positions of ``n`` pixel centres along one axis, as the output grid of
    ``affine_grid``: ``linspace(-1, 1, n)``, scaled by ``(n - 1) / n`` without ``align_corners``
    (pixel centres of an image whose edges are +-1); ``[0]`` when ``n == 1``."""
    if n == 1:
        return xp.zeros(1, dtype=dtype)

    def build():
        coords = linspace_like_torch(n, np.dtype(dtype))
        return coords if align_corners else coords * (n - 1) / n      # two roundings, as PyTorch's
    return backend.constant(xp, ("affine_grid", n, bool(align_corners), np.dtype(dtype).str), build)


def linspace_like_torch(n, dtype):
    """``torch.linspace(-1, 1, n)`` bit for bit (``n >= 2``), on the host.

    The step is ``2 / (n - 1)`` rounded to ``dtype``; the first half of the
    points is ``-1 + step * i``, the second ``1 - step * (n - 1 - i)``, each
    rounded once (the multiply and add fused). NumPy's ``linspace`` rounds
    differently (by 1 ULP at many points), and a point that PyTorch puts
    exactly on a pixel centre would then fall just beside it, in the
    neighbouring cell, where the grid gradient is another pixel difference.
    Rounded once: in float32 the product and sum are exact in float64, then
    rounded to ``dtype``; in float64 they are computed exactly (fractions). In float16
    PyTorch rounds twice, the product and then the sum, and so does this.
    """
    step = np.dtype(dtype).type(2) / np.dtype(dtype).type(n - 1)
    i = np.arange(n)
    first = i < n // 2
    if dtype == np.float16:             # PyTorch's float16 kernel rounds the product, then the sum
        product = np.where(first, float(step) * i, float(step) * (n - 1 - i)).astype(np.float16)
        return np.where(first, np.float16(-1) + product, np.float16(1) - product)
    if dtype != np.float64:
        wide = np.where(first, -1 + float(step) * i, 1 - float(step) * (n - 1 - i))
        return wide.astype(dtype)
    exact = Fraction(float(step))
    return np.array([float(-1 + exact * k) if k < n // 2 else float(1 - exact * (n - 1 - k)) for k in range(n)])


class AffineGrid(Function):
    """grid[n, i, j] = theta[n] @ (x_j, y_i, 1);  d theta[n] = sum_ij outer(d grid[n, i, j], (x_j, y_i, 1)).

    With ``B`` the ``(H*W, 3)`` matrix of rows ``(x_j, y_i, 1)``: ``grid[n] = B theta[n]^T``
    and ``d theta[n] = d grid[n]^T B``, two matrix products.
    """

    def __init__(self, height, width, align_corners):
        self.size, self.align_corners = (height, width), align_corners

    def forward(self, theta):
        xp = backend.get_array_module(theta)
        h, w = self.size
        xs = base_coordinates(w, self.align_corners, xp, theta.dtype)
        ys = base_coordinates(h, self.align_corners, xp, theta.dtype)
        base = xp.empty((h, w, 3), dtype=theta.dtype)
        base[..., 0], base[..., 1], base[..., 2] = xs[None, :], ys[:, None], 1
        self.base = base.reshape(h * w, 3)
        return (self.base @ theta.transpose(0, 2, 1)).reshape(theta.shape[0], h, w, 2)

    def backward(self, g):
        return g.reshape(g.shape[0], -1, 2).transpose(0, 2, 1) @ self.base


def affine_grid(theta, size, align_corners=False):
    """The sampling grid ``(N, H, W, 2)`` of the affine maps ``theta`` ``(N, 2, 3)``, for an output
    of ``size = (N, C, H, W)``, as ``torch.nn.functional.affine_grid`` (2-D).

    Output pixel ``(i, j)`` samples ``theta[n] @ (x_j, y_i, 1)``, where ``(x_j, y_i)``
    is its own normalised position (``align_corners`` as in ``grid_sample``; use
    the same value for both). The identity ``[[1, 0, 0], [0, 1, 0]]`` gives the
    grid that makes ``grid_sample`` return its input. Differentiable with
    respect to ``theta``.
    """
    checks.tensor(theta, "theta", "affine_grid")
    if theta.dtype.kind != "f":
        raise TypeError(f"affine_grid: theta must be floating point, got dtype {theta.dtype}")
    align_corners = _check_align_corners(align_corners, "affine_grid")
    if (not isinstance(size, (tuple, list))
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)):
        raise TypeError(f"affine_grid: size must be (N, C, H, W), four ints, got {size!r}")
    if len(size) != 4:
        raise ValueError(f"affine_grid: size must be (N, C, H, W), four ints (only 2-D grids are "
                         f"implemented), got {size!r}")
    grid_shape = shapes.affine_grid_output_shape(size)
    checks.check_bytes((grid_shape[1] * grid_shape[2], 3), theta.dtype.itemsize, "affine_grid", f"size={tuple(size)!r}")
    checks.check_bytes(grid_shape, theta.dtype.itemsize, "affine_grid", f"size={tuple(size)!r}")
    if theta.shape != (size[0], 2, 3):
        raise ValueError(f"affine_grid: theta must have shape (N, 2, 3) = ({size[0]}, 2, 3) for size {tuple(size)}, "
                         f"got {theta.shape}")
    return AffineGrid(grid_shape[1], grid_shape[2], align_corners)(theta)
