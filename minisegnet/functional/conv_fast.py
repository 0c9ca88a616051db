"""The convolution's speed machinery: ``conv.py``'s pieces and products, run faster.

``conv.py`` teaches the convolution as pad -> im2col -> GEMM (and GEMM ->
col2im the other way) on a whole batch at once. Its Functions call this
module instead, which computes the same numbers with the same pieces
(``conv._im2col``, ``conv._col2im``, ``conv._gemm_*``), organised for speed
and memory. Every lever has a name and a switch, ``set_lever(name, on)``, so
that ``benchmarks/bench_conv.py --levers`` can measure what each one buys
(docs/benchmarks.md has the figures, including the levers that did not pay):

``fast_path``
    Off: conv.py's plain whole-batch functions run, and nothing below.
``pieces`` (always on; the memory limit)
    The columns are ``kh*kw`` times the input, about 750 MB per image for
    the original U-Net's widest layer. So they are built a piece at a time,
    each under ``get_im2col_limit()`` (by default 32 MiB on NumPy, 256 MiB
    on CuPy, where memory is plentiful and each piece costs a round of
    kernel launches): a few whole
    images, or, when one image's columns alone exceed the limit, one image a
    band of output rows at a time (of input rows in the transposed direction:
    a transposed conv, and a strided conv's input gradient). On NumPy a batch is also cut into at
    least ``parallel.SPLIT`` pieces (when each keeps
    ``parallel.MIN_PIECE_BYTES``), so that the threads have work to share; on
    CuPy there are no threads to share it, and every piece is one more round
    of kernel launches, so the pieces are as large as the limit allows.
``cache_pieces``
    A piece's columns are also kept under ``CACHE_PIECE_BYTES`` (4 MiB), so
    that they are still in the processor's cache when the GEMM reads them,
    right after im2col wrote them: the columns of a whole batch would be
    written out to main memory and read back (the step's lever table in
    docs/benchmarks.md measures what it buys). Off: pieces as large as the
    memory limit allows.
``threads``
    The pieces are shared over ``minisegnet.parallel``'s threads: each
    thread builds its piece's columns and multiplies them, with OpenBLAS
    held to one thread inside (so two cores never serve four threads). Off:
    one thread works through the pieces, and OpenBLAS uses its own threads
    inside each product (the only parallel part then).
``reuse_buffers``
    Scratch arrays (columns, padded inputs, col2im images) come from a
    per-thread cache of one flat buffer per role, viewed in whatever shape a
    call needs: a fresh multi-megabyte array can be fresh pages from the
    operating system, each page a fault on first touch. (Measured, it buys
    little either way now: the C library reuses freed blocks of the sizes a
    step frees again, and the trainer keeps freed memory, ``allocator.py``.)
    Arrays handed back (outputs, gradients) are always new, never a view of
    a cached buffer. ``clear_buffer_cache()`` frees the buffers.
``unpadded``
    The columns are read straight from the unpadded input, each kernel tap
    copying the part of the image it sees and zeroing only the border it
    hangs over, instead of first copying the whole input into a padded one.
    (On CuPy only when ``window`` is off.)
``window`` (CuPy only)
    A GPU runs a small layer's copies in microseconds, but each kernel
    launch costs CuPy about as much time on the host, and im2col by taps is
    ``kh*kw`` copies plus the border strips: 13 launches for a 3x3 kernel
    with padding 1, 17 with padding 2. With this lever, on CuPy, the
    columns are one copy of a *window view* of the padded input
    (``as_strided``: shape (n, C, kh, kw, H_out, W_out), strides
    (s_n, s_c, dh*s_h, dw*s_w, sh*s_h, sw*s_w) from the padded input's
    (s_n, s_c, s_h, s_w), every window read in place, nothing copied until
    the columns are written), and the padding is one fill and one copy:
    three launches whatever the kernel. On NumPy the taps stay: on the
    2-core CPU of docs/benchmarks.md the window copy took 1.16-1.37x the
    taps' time for one piece of the benchmark U-Net's 3x3 layers (one
    thread, interleaved medians; a development measurement).
``one_gemm`` (CuPy only, with ``window``; groups == 1, not a pointwise conv read in place)
    The columns of a piece are laid out (C*kh*kw, n, L) instead of
    (n, C*kh*kw, L), so that the whole piece is one matrix and each product
    one 2-D GEMM: ``y = W @ cols`` for all its images at once, then one
    copy that puts the images first (with the bias added on the way), and
    ``dW = g @ cols^T`` with ``g`` copied to (C_out, n, L) first. CuPy
    runs a batched product whose weights are broadcast over the images by
    building an array of matrix pointers on the device for each of the
    three operands (``_mat_ptrs`` in CuPy's ``_core/_routines_linalg.pyx``)
    and calling cuBLAS's pointer-array batched GEMM; a plain GEMM is one
    call. The product and the copied gradient are the piece's output size
    (C_out / (C*kh*kw) times its columns), reused between calls as scratch
    buffers while they fit the memory limit, where the batched product
    wrote straight into the output.
``pointwise``
    A 1x1 conv at stride 1 without padding needs no column buffer at all:
    its columns are its input, viewed as (N, C, H*W).
``flip``
    At stride 1 the input gradient of a conv (a transposed conv) is itself a
    plain conv of the output gradient with the kernel rotated 180 degrees
    and the in/out channels swapped, padded by ``d(k-1) - p``: im2col +
    GEMM instead of GEMM + col2im (``kh*kw`` read-modify-write passes).
    Used when C_in <= 2 C_out of the transposed conv: the flipped conv's
    columns are C_in / C_out times the columns that col2im would fold, and
    past twice their size the buffer is not worth the passes it saves.
``keep_columns`` (off by default: it did not pay)
    The forward pass keeps its columns for the weight gradient
    (``dW = g @ cols^T``) instead of building them again, as long as all
    columns kept at once stay within ``get_keep_budget()`` (64 MiB by
    default); a layer whose columns do not fit rebuilds them. Measured, it
    made the step slower: kept columns are fresh memory read back from RAM
    long after they were written, while rebuilt ones land in a cached
    scratch buffer the GEMM reads straight from the processor's cache.
``depthwise`` (off by default: it did not pay)
    A strided depthwise conv (groups == C_in == C_out) is ``kh*kw``
    multiply-adds of a strided slice by a per-channel weight, with no column
    buffer and, in the backward pass, no col2im (``conv_depthwise.py``).
    Measured, the im2col path is faster: each tap's multiply-add reads a
    strided slice a row at a time, and the backward pass adds into strided
    slices of the input's gradient, where im2col's copies and its one-row
    GEMMs run longer inner loops (the lever tables of docs/benchmarks.md).
``fused_bias``
    The bias is added to each piece right after its GEMM, while that part
    of the output is still in cache, and its gradient is summed piece by
    piece beside the weight gradient's: in the threads, instead of one more
    pass over the whole output (or its gradient) in the calling thread.
``row_taps`` (NumPy; stride 1, one group, a kernel more than one row high)
    The columns built for one kernel row only, the other rows read as views
    of them: ``kh`` smaller GEMMs instead of one, about ``kw`` copies of the
    input instead of ``kh*kw``. Its own concept, in ``conv_row_taps.py``.
``stacked_rows`` (with ``row_taps``)
    The forward's ``kh`` row-tap products as one: the weight rows stacked,
    the columns multiplied (and packed by BLAS) once, the row blocks of the
    product added shifted (``conv_row_taps.stacked`` says when).

``transposed_weight_grad`` (NumPy)
    The weight gradient's product ``dW = g @ cols^T`` (a few output
    channels by a few column rows, summed over a long inner dimension: every
    output position) is computed the other way round, ``dW^T = cols @ g^T``,
    and the small result transposed: the same sums, which OpenBLAS runs
    1.3-1.5x faster in this orientation on the benchmark U-Net's shapes (one
    thread, on the Xeon of ``docs/benchmarks-xeon-avx512.md``; a development
    measurement, the step's lever table has what it buys). Off: ``conv.py``'s
    ``g @ cols^T`` as written.

Same numbers at any thread count: how a batch is cut depends only on its
shapes, the limit and ``parallel.SPLIT``, and the weight gradient adds the pieces'
products in piece order, so one thread and several give bitwise identical
results (tests check this, and the parity of every lever with the plain path
and with PyTorch).
"""
import functools
import math
import threading
import weakref

import numpy as np

from .. import backend, checks, parallel
from . import conv as core   # a cycle: conv imports this module; the names are looked up at call time
from . import conv_depthwise as depthwise   # the direct depthwise path (its own concept); it uses this module's scratch
from . import conv_row_taps as row_taps     # stride-1 columns of one kernel row (its own concept); likewise

__all__ = ["set_lever", "lever", "levers", "set_im2col_limit", "get_im2col_limit", "set_keep_budget",
           "get_keep_budget", "clear_buffer_cache", "cached_buffers"]

_levers = dict(fast_path=True, cache_pieces=True, threads=True, reuse_buffers=True, unpadded=True, window=True,
               one_gemm=True, pointwise=True, flip=True, keep_columns=False, depthwise=False, fused_bias=True,
               row_taps=True, stacked_rows=True, transposed_weight_grad=True)

_im2col_limits = {"numpy": 32 * 2**20, "cupy": 256 * 2**20}     # one per backend; see set_im2col_limit
CACHE_PIECE_BYTES = 4 * 2**20
"""With the ``cache_pieces`` lever: the most bytes of columns in one piece (a size that
stays in a core's share of the processor's cache between im2col and the GEMM)."""
_keep_budget = 64 * 2**20
_kept_bytes = 0


def set_lever(name, on):
    """Switch the lever ``name`` (see the module docstring) on or off; returns its previous state."""
    if name not in _levers:
        raise ValueError(f"unknown lever {name!r}; the levers are {sorted(_levers)}")
    on = checks.flag(on, "on", "set_lever")          # True or False (NumPy's bool too)
    previous, _levers[name] = _levers[name], on
    if name == "reuse_buffers" and not on:
        clear_buffer_cache()
    return previous


def lever(name):
    """Whether the lever ``name`` is on."""
    return _levers[name]


def levers():
    """A copy of every lever's state, ``{name: on}``."""
    return dict(_levers)


def set_im2col_limit(nbytes):
    """Bound each piece of columns (and each cached scratch buffer) of the current backend
    to ``nbytes`` bytes.

    The columns of a batch need ``N * C*kh*kw * H_out*W_out * itemsize``
    bytes; above the limit the batch is processed a few images at a time,
    and an image whose own columns exceed the limit a band of output rows at
    a time (at least one row). Smaller limits save memory and cost a little
    speed; each thread holds one piece at a time. Each backend has its own
    limit (32 MiB on NumPy, 256 MiB on CuPy by default: a GPU has the memory,
    and every piece is another round of kernel launches, which is what a
    small layer's time on a GPU is made of); this sets the one of
    ``msn.get_backend()``. Returns its previous limit.
    """
    if not isinstance(nbytes, (int, np.integer)) or isinstance(nbytes, bool) or nbytes < 1:
        raise ValueError(f"nbytes must be a positive integer number of bytes, got {nbytes!r}")
    name = backend.get_backend()
    previous, _im2col_limits[name] = _im2col_limits[name], int(nbytes)
    for cache in _every_cache():
        # list(): another thread's conv may add a buffer to its cache meanwhile
        for key in [k for k, buf in list(cache.buffers.items()) if k[0] == name and buf.nbytes > nbytes]:
            del cache.buffers[key]
    return previous


def get_im2col_limit():
    """The current backend's column-piece limit in bytes (by default 32 MiB on NumPy, 256 MiB on CuPy)."""
    return _im2col_limits[backend.get_backend()]


def _limit(xp):
    """The column-piece limit for arrays of the module ``xp`` (``numpy`` or ``cupy``)."""
    return _im2col_limits[xp.__name__]


def set_keep_budget(nbytes):
    """Bound the forward columns kept for weight gradients (all layers together) to ``nbytes``;
    0 keeps none. Returns the previous budget."""
    global _keep_budget
    if not isinstance(nbytes, (int, np.integer)) or isinstance(nbytes, bool) or nbytes < 0:
        raise ValueError(f"nbytes must be a non-negative integer number of bytes, got {nbytes!r}")
    previous, _keep_budget = _keep_budget, int(nbytes)
    return previous


def get_keep_budget():
    """The budget for kept forward columns in bytes (default 64 MiB)."""
    return _keep_budget


# ---- scratch buffers: one cache per thread ---------------------------------------------
class _Cache:
    """One thread's scratch buffers: ``buffers[(backend, role, dtype)]`` is a flat array.
    (A small class rather than a bare dict, so that a weak set can list every thread's.)"""

    def __init__(self):
        self.buffers = {}


_caches = weakref.WeakSet()     # every thread's cache (it goes when its thread ends)
_caches_lock = threading.Lock()  # a set may not change while listed: a new thread's first conv adds to it
_local = threading.local()


def _thread_cache():
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = _Cache()
        with _caches_lock:
            _caches.add(cache)
    return cache


def _every_cache():
    with _caches_lock:
        return list(_caches)


def clear_buffer_cache():
    """Drop every cached scratch buffer, in every thread (frees their memory)."""
    for cache in _every_cache():
        cache.buffers.clear()


def cached_buffers():
    """The cached scratch buffers of every thread (for tests and memory accounting)."""
    return [buf for cache in _every_cache() for buf in list(cache.buffers.values())]


def _scratch(xp, shape, dtype, role):
    """A work array of ``shape`` whose contents are undefined.

    With ``reuse_buffers`` on, every call in one thread with the same
    ``role`` (and dtype) gets a view of one flat buffer, grown when a larger
    shape asks for it but never past the limit (larger requests get a fresh
    array). So the array must never be returned to a caller, and two arrays
    of one role must not be in use at the same time in one thread.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    size = math.prod(shape)
    if not _levers["reuse_buffers"] or size * dtype.itemsize > _limit(xp):
        return xp.empty(shape, dtype)
    buffers = _thread_cache().buffers
    key = (xp.__name__, role, dtype.str)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buffers.pop(key, None)          # free the smaller one before allocating
        buf = buffers[key] = xp.empty(size, dtype)
    return buf[:size].reshape(shape)


# ---- cutting the work into pieces ---------------------------------------------------------
def _piece_limit(xp=np):
    """The most bytes of columns in one piece: the memory limit, and, on the CPU with
    the ``cache_pieces`` lever, no more than ``CACHE_PIECE_BYTES`` (a GPU wants few,
    large pieces: each is a round of kernel launches)."""
    if _levers["cache_pieces"] and xp is np:
        return min(_limit(xp), CACHE_PIECE_BYTES)
    return _limit(xp)


def _image_pieces(n_img, per_image, xp=np):
    """``(n0, n1)`` runs of whole images: as many as fit the piece limit (at least one); on
    NumPy spread over at least ``parallel.SPLIT`` runs as long as each keeps
    ``parallel.MIN_PIECE_BYTES`` (``parallel.pieces``), so that the threads share them."""
    return parallel.pieces(n_img, per_image, _piece_limit(xp), split=parallel.SPLIT if xp is np else 1)


def _pieces(n_img, out_h, bytes_per_row, xp=np):
    """``(n0, n1, r0, r1)`` pieces: images ``n0:n1``, output rows ``r0:r1``.

    Whole images (``_image_pieces``) while one image's columns fit the
    limit; otherwise bands of output rows of one image, as many rows as fit
    (at least one). Nothing here depends on the thread count.
    """
    per_image = out_h * bytes_per_row
    limit = _piece_limit(xp)
    if per_image <= limit:
        return [(n0, n1, 0, out_h) for n0, n1 in _image_pieces(n_img, per_image, xp)]
    rows = max(1, limit // max(1, bytes_per_row))
    return [(n, n + 1, r0, min(r0 + rows, out_h)) for n in range(n_img) for r0 in range(0, out_h, rows)]


def _run(xp, task, pieces):
    """``[task(p) for p in pieces]``, over the thread pool when that lever is on (NumPy only)."""
    if _levers["threads"] and xp is np:
        return parallel.run(task, pieces)
    return [task(piece) for piece in pieces]


def _out_hw(x_hw, pads, kernel, stride, dilation):
    """Conv output size (the formula of ``shapes.conv2d_output_size``; the arguments were checked)."""
    return tuple((x_hw[a] + pads[2 * a] + pads[2 * a + 1] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                 for a in (0, 1))


# ---- columns of one piece -------------------------------------------------------------------
def _band_input(x, piece, pads, kernel, stride, dilation):
    """The input rows that output rows ``r0:r1`` of images ``n0:n1`` read, and the padding
    (top, bottom, left, right) that completes them (negative: crop)."""
    n0, n1, r0, r1 = piece
    top, bottom, left, right = pads
    h = x.shape[2]
    first = r0 * stride[0] - top                                       # input row of the band's first tap
    last = (r1 - 1) * stride[0] + dilation[0] * (kernel[0] - 1) - top   # ... and of its last
    lo, hi = min(max(first, 0), h), min(max(last + 1, 0), h)
    if hi <= lo:                  # the band reads padding only
        return x[n0:n1, :, 0:0], (last + 1 - first, 0, left, right)
    return x[n0:n1, :, lo:hi], (lo - first, last + 1 - hi, left, right)


def _pad_scratch(x, pads, fill=False):
    """``conv._pad`` into a scratch buffer: zeroing only the border strips (four writes, the
    fewest bytes), or with ``fill`` the whole buffer (one write, the fewest launches)."""
    top, bottom, left, right = pads
    h, w = x.shape[2:]
    x = x[:, :, max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]
    top, bottom, left, right = (max(p, 0) for p in pads)
    if top == bottom == left == right == 0:
        return x
    n, c, h, w = x.shape
    out = _scratch(backend.get_array_module(x), (n, c, top + h + bottom, left + w + right), x.dtype, "pad")
    if fill:
        out.fill(0)
    out[:, :, top:top + h, left:left + w] = x
    if not fill:
        out[:, :, :top] = 0
        out[:, :, top + h:] = 0
        out[:, :, top:top + h, :left] = 0
        out[:, :, top:top + h, left + w:] = 0
    return out


def _inside(size, pad, offset, stride, out):
    """Output positions ``o`` in ``[lo, hi)`` whose input ``o*stride + offset - pad`` lies in ``[0, size)``."""
    lo = min(out, max(0, -((offset - pad) // stride)))
    hi = min(out, -((offset - pad - size) // stride))
    return lo, max(lo, hi)


@functools.lru_cache(maxsize=512)
def _unpadded_plan(hw, pads, kernel, stride, dilation, out_hw):
    """What ``_im2col_unpadded`` does for these shapes: ``(copies, zeros)``.

    ``copies``: for each tap (i, j) that reads the image, the index of the
    output rectangle that reads it (into the (n, C, kh, kw, H_out, W_out)
    view of the columns) and the strided rectangle of the image it reads.
    ``zeros``: the indices of the border strips that read padding. No copy
    writes into a strip, so the strips can be zeroed in any order and
    several taps at once: the top rows of all taps in tap-row i in one go,
    the left columns of all taps in tap-column j in another.

    Pure integer arithmetic on the shapes, the same for every call with the
    same shapes, so it is worked out once (a small cache) instead of in every
    call; ``_im2col_unpadded`` then only copies and zeroes.
    """
    (h, w), (kh, kw), (sh, sw), (dh, dw), (ho, wo) = hw, kernel, stride, dilation, out_hw
    top, left = pads[0], pads[2]
    rows = [_inside(h, top, i * dh, sh, ho) for i in range(kh)]
    cols = [_inside(w, left, j * dw, sw, wo) for j in range(kw)]
    copies, zeros = [], []
    for i, (r_lo, r_hi) in enumerate(rows):
        for j, (c_lo, c_hi) in enumerate(cols):
            if r_lo < r_hi and c_lo < c_hi:
                r, q = r_lo * sh + i * dh - top, c_lo * sw + j * dw - left
                copies.append(((slice(None), slice(None), i, j, slice(r_lo, r_hi), slice(c_lo, c_hi)),
                               (Ellipsis, slice(r, r + sh * (r_hi - r_lo - 1) + 1, sh),
                                slice(q, q + sw * (c_hi - c_lo - 1) + 1, sw))))
            elif r_lo < r_hi:          # every column of this tap reads padding
                zeros.append((slice(None), slice(None), i, j))
    whole = slice(None)
    for i, (r_lo, r_hi) in enumerate(rows):
        if r_lo == r_hi:               # every row of this tap-row reads padding
            zeros.append((whole, whole, i))
            continue
        if r_lo > 0:
            zeros.append((whole, whole, i, whole, slice(0, r_lo)))
        if r_hi < ho:
            zeros.append((whole, whole, i, whole, slice(r_hi, ho)))
    for j, (c_lo, c_hi) in enumerate(cols):
        if c_lo == c_hi:
            continue                   # already zeroed tap by tap above
        if c_lo > 0:
            zeros.append((whole, whole, whole, j, whole, slice(0, c_lo)))
        if c_hi < wo:
            zeros.append((whole, whole, whole, j, whole, slice(c_hi, wo)))
    return tuple(copies), tuple(zeros)


def _im2col_unpadded(x, pads, kernel, stride, dilation, out_hw, cols):
    """``conv._im2col(conv._pad(x, pads), ...)`` without the padded copy: each tap copies
    the rectangle of outputs that read the image, and the border strips that read
    padding are zeroed (a few taps at a time)."""
    n, c = x.shape[:2]
    view = cols.reshape((n, c) + tuple(kernel) + tuple(out_hw))
    copies, zeros = _unpadded_plan(x.shape[2:], pads, kernel, stride, dilation, out_hw)
    for target, source in copies:
        view[target] = x[source]
    for strip in zeros:
        view[strip] = 0
    return cols


def _im2col_window(x, pads, kernel, stride, dilation, out_hw, cols, images_inside=False):
    """``conv._im2col(conv._pad(x, pads), ...)`` as one copy: the padded input viewed as its
    windows, ``windows[n, c, i, j, oh, ow] = x_pad[n, c, oh*sh + i*dh, ow*sw + j*dw]`` (strides
    only, no data moved), copied into the columns at once (the ``window`` lever). With
    ``images_inside`` the columns are laid out (C*kh*kw, n, L) (the ``one_gemm`` lever)."""
    xp = backend.get_array_module(x)
    x_pad = _pad_scratch(x, pads, fill=True)
    n, c = x_pad.shape[:2]
    (sh, sw), (dh, dw) = stride, dilation
    for a in (0, 1):            # as_strided reads whatever memory the strides reach: check the reach
        if (out_hw[a] - 1) * stride[a] + (kernel[a] - 1) * dilation[a] >= x_pad.shape[2 + a]:
            raise ValueError(f"_im2col_window: an output size of {out_hw} reaches past the padded input "
                             f"{x_pad.shape[2:]} (kernel {kernel}, stride {stride}, dilation {dilation})")
    s_n, s_c, s_h, s_w = x_pad.strides
    windows = xp.lib.stride_tricks.as_strided(x_pad, shape=(n, c) + tuple(kernel) + tuple(out_hw),
                                              strides=(s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w))
    if images_inside:
        cols.reshape((c,) + tuple(kernel) + (n,) + tuple(out_hw))[...] = windows.transpose(1, 2, 3, 0, 4, 5)
    else:
        cols.reshape(windows.shape)[...] = windows
    return cols


def _window_columns(xp):
    """Whether columns are built by ``_im2col_window`` (the ``window`` lever, CuPy only)."""
    return _levers["window"] and xp is not np


def _images_inside(xp, kernel, stride, pads, groups):
    """Whether a piece's columns are one (C*kh*kw, n*L) matrix and its products 2-D GEMMs (the
    ``one_gemm`` lever: CuPy, the ``window`` columns, one group, not a pointwise conv whose
    columns are its input, read in place)."""
    return (_levers["one_gemm"] and _window_columns(xp) and groups == 1
            and not (_levers["pointwise"] and _is_pointwise(kernel, stride, pads)))


def _is_pointwise(kernel, stride, pads):
    """A 1x1 conv at stride 1 without padding: its columns are its input."""
    return kernel == (1, 1) and stride == (1, 1) and pads == (0, 0, 0, 0)


def _piece_columns(x, piece, kernel, stride, pads, dilation, wo, fresh=False, images_inside=False):
    """The columns (n1-n0, C*kh*kw, (r1-r0)*W_out) of one piece: a scratch buffer (a new
    array if ``fresh``), or, with the ``pointwise`` lever, a view of ``x`` for a 1x1 conv.
    With ``images_inside`` they are laid out (C*kh*kw, n1-n0, (r1-r0)*W_out)."""
    n0, n1, r0, r1 = piece
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    if _levers["pointwise"] and _is_pointwise(kernel, stride, pads):
        return x[n0:n1].reshape(n1 - n0, c, h * w)[:, :, r0 * wo:r1 * wo]
    shape = (n1 - n0, c * kernel[0] * kernel[1], (r1 - r0) * wo)
    if images_inside:
        shape = (shape[1], shape[0], shape[2])
    cols = xp.empty(shape, x.dtype) if fresh else _scratch(xp, shape, x.dtype, "cols")
    x_band, band_pads = _band_input(x, piece, pads, kernel, stride, dilation)
    band_hw = (r1 - r0, wo)
    if _window_columns(xp):
        return _im2col_window(x_band, band_pads, kernel, stride, dilation, band_hw, cols, images_inside)
    if _levers["unpadded"]:
        return _im2col_unpadded(x_band, band_pads, kernel, stride, dilation, band_hw, cols)
    return core._im2col(_pad_scratch(x_band, band_pads), kernel, stride, dilation, band_hw, cols)


def _weight_grad_gemm(grad_y, cols, groups):
    """``conv._gemm_weight_grad``: ``sum_n grad_y[n, g] @ cols[n, g]^T`` per group, (g, C_out/g, rows/g).

    With the ``transposed_weight_grad`` lever (NumPy) the product is taken as
    ``(sum_n cols[n, g] @ grad_y[n, g]^T)^T``: the same sums, BLAS faster this way round.
    """
    if not (_levers["transposed_weight_grad"] and backend.get_array_module(grad_y, cols) is np):
        return core._gemm_weight_grad(grad_y, cols, groups)
    n, rows, length = cols.shape
    gy_t = grad_y.reshape(n, groups, grad_y.shape[1] // groups, length).transpose(0, 1, 3, 2)
    return np.matmul(cols.reshape(n, groups, rows // groups, length), gy_t).sum(axis=0).transpose(0, 2, 1)


# ---- kept columns ------------------------------------------------------------------------------
class Saved:
    """What a conv's forward leaves for its backward: the ``route`` it took
    ("im2col" or "depthwise"), and, when kept, the columns of each piece."""

    def __init__(self, route, pieces=None, columns=None, nbytes=0, images_inside=False):
        self.route, self.pieces, self.columns, self.nbytes = route, pieces, columns, nbytes
        self.images_inside = images_inside          # the columns' layout (``_images_inside``)

    def release(self):
        """Drop the kept columns (a later backward builds them again) and free their budget."""
        if self.nbytes:
            _give_back(self.nbytes)
        self.columns, self.nbytes = None, 0

    def __del__(self):
        self.release()


def _take_budget(nbytes):
    """Whether ``nbytes`` more of kept columns fit the budget (and if so, count them)."""
    global _kept_bytes
    if not _levers["keep_columns"] or _kept_bytes + nbytes > _keep_budget:
        return False
    _kept_bytes += nbytes
    return True


def _give_back(nbytes):
    global _kept_bytes
    _kept_bytes -= nbytes


def kept_bytes():
    """Bytes of forward columns kept for weight gradients right now."""
    return _kept_bytes


# ---- the products, piece by piece ---------------------------------------------------------------
def _gemm_images_inside(w, cols, out, bias):
    """``out = W @ cols (+ bias)`` for columns laid out (C*kh*kw, n, L) (the ``one_gemm``
    lever): one 2-D GEMM (C_out, C*kh*kw) @ (C*kh*kw, n*L) into a scratch buffer, then one
    copy into ``out`` (n, 1, C_out, L) that puts the images first, adding the bias on the way."""
    xp = backend.get_array_module(w, cols)
    rows, n = cols.shape[:2]
    c_out = w.shape[0]
    product = _scratch(xp, (c_out, cols.size // rows), cols.dtype, "product")
    xp.matmul(w.reshape(c_out, rows), cols.reshape(rows, -1), out=product)
    images_first = product.reshape(c_out, n, 1, -1).transpose(1, 2, 0, 3)
    if bias is None:
        out[...] = images_first
    else:
        xp.add(images_first, bias, out=out)


def _conv2d_pieces(x, w, b, stride, pads, dilation, groups, keep):
    """``y = W @ cols + b`` piece by piece; returns ``(y, Saved)``, the columns kept if
    ``keep`` and they fit the budget."""
    xp = backend.get_array_module(x, w)
    n_img, c = x.shape[:2]
    c_out, _, kh, kw = w.shape
    ho, wo = _out_hw(x.shape[2:], pads, (kh, kw), stride, dilation)
    rows = c * kh * kw
    pieces = _pieces(n_img, ho, rows * wo * x.dtype.itemsize, xp)
    nbytes = n_img * rows * ho * wo * x.dtype.itemsize
    # a 1x1 conv's columns are a view of its input: nothing to keep
    keep = keep and not (_levers["pointwise"] and _is_pointwise((kh, kw), stride, pads)) and _take_budget(nbytes)
    y = xp.empty((n_img, groups, c_out // groups, ho * wo), x.dtype)
    bias = None if b is None else b.reshape(1, groups, c_out // groups, 1)
    inside = _images_inside(xp, (kh, kw), stride, pads, groups)
    fused = None if bias is None or not _levers["fused_bias"] else bias
    w_rows = row_taps.weights(w) if row_taps.applies(xp, (kh, kw), stride, groups, keep) else None

    def task(piece):
        n0, n1, r0, r1 = piece
        out = y[n0:n1, :, :, r0 * wo:r1 * wo]
        if w_rows is not None and row_taps.pay(piece, dilation[0]):
            row_taps.forward(w_rows, row_taps.columns(x, piece, (kh, kw), pads, dilation, wo), out[:, 0],
                             dilation[0], wo)
            if fused is not None:
                out += fused
            return None
        cols = _piece_columns(x, piece, (kh, kw), stride, pads, dilation, wo, fresh=keep, images_inside=inside)
        if inside:
            _gemm_images_inside(w, cols, out, fused)
        else:
            core._gemm_forward(w, cols, groups, out=out)
            if fused is not None:
                out += fused
        return cols if keep else None

    try:
        columns = _run(xp, task, pieces)
    except BaseException:
        if keep:
            _give_back(nbytes)
        raise
    if bias is not None and not _levers["fused_bias"]:
        y += bias
    saved = Saved("im2col", pieces, columns, nbytes, inside) if keep else Saved("im2col")
    return y.reshape(n_img, c_out, ho, wo), saved


def _weight_grad_pieces(x, g, kernel, stride, pads, dilation, groups, saved, need_b):
    """``dW = sum over pieces of g_piece @ cols_piece^T``, added in piece order (the columns
    from ``saved`` when the forward kept them, else built again); with ``need_b`` and the
    ``fused_bias`` lever, also the bias gradient, summed per piece. Returns ``(dW, db)``,
    ``db`` None unless computed here."""
    xp = backend.get_array_module(x, g)
    n_img, c = x.shape[:2]
    c_out, (ho, wo) = g.shape[1], g.shape[2:]
    rows = c * kernel[0] * kernel[1]
    inside = _images_inside(xp, kernel, stride, pads, groups)
    kept = saved is not None and saved.columns is not None and saved.images_inside == inside
    pieces = saved.pieces if kept else _pieces(n_img, ho, rows * wo * x.dtype.itemsize, xp)
    g_flat = g.reshape(n_img, c_out, ho * wo)
    bias_here = need_b and _levers["fused_bias"]
    by_row_taps = not kept and row_taps.applies(xp, kernel, stride, groups)

    def task(k):
        n0, n1, r0, r1 = pieces[k]
        g_piece = g_flat[n0:n1, :, r0 * wo:r1 * wo]
        by_rows = by_row_taps and row_taps.pay(pieces[k], dilation[0])
        if by_rows:
            cols = row_taps.columns(x, pieces[k], kernel, pads, dilation, wo)
        else:
            cols = saved.columns[k] if kept else _piece_columns(x, pieces[k], kernel, stride, pads, dilation, wo,
                                                                images_inside=inside)
        if inside:          # (C_out, n*L) @ (n*L, rows): the sum over images is inside the GEMM
            g_rows = _scratch(xp, (c_out, n1 - n0, (r1 - r0) * wo), g.dtype, "grad_rows")
            g_rows[...] = g_piece.transpose(1, 0, 2)
            g_rows = g_rows.reshape(c_out, -1)
            grad_b = g_rows.sum(axis=1) if bias_here else None
            return xp.matmul(g_rows, cols.reshape(rows, -1).T).reshape(1, c_out, rows), grad_b
        grad_b = g_piece.sum(axis=(0, 2)) if bias_here else None
        if by_rows:
            return row_taps.weight_grad(g_piece, cols, kernel, dilation[0], wo), grad_b
        return _weight_grad_gemm(g_piece, cols, groups), grad_b

    partials = _run(xp, task, list(range(len(pieces))))
    grad_w, grad_b = partials[0]
    for part_w, part_b in partials[1:]:
        grad_w = grad_w + part_w
        if bias_here:
            grad_b = grad_b + part_b
    return grad_w.reshape((c_out, c // groups) + tuple(kernel)), grad_b


def _conv_transpose2d_pieces(x, w, b, stride, pads, dilation, groups, out_hw):
    """``y = col2im(W^T @ x) + b`` a few whole images at a time; an image whose own columns
    exceed the piece limit, a band of *input* rows at a time: each band's columns are
    folded into the image's padded output from the band's first output row on (bands'
    windows overlap across rows, and the overlaps add, so one image's bands run in order,
    in one thread)."""
    xp = backend.get_array_module(x, w)
    n_img, c_in, h, wd = x.shape
    c_og, kh, kw = w.shape[1:]
    c_out = c_og * groups
    top, bottom, left, right = pads
    y = xp.empty((n_img, c_out) + tuple(out_hw), x.dtype)
    rows = c_out * kh * kw
    bytes_per_row = rows * wd * x.dtype.itemsize                # the columns of one input row
    pieces = _image_pieces(n_img, h * bytes_per_row, xp)
    band = h if h * bytes_per_row <= _piece_limit(xp) else max(1, _piece_limit(xp) // bytes_per_row)
    bias = None if b is None else b.reshape(1, c_out, 1, 1)

    def task(piece):
        n0, n1 = piece
        out_pad = _scratch(xp, (n1 - n0, c_out, top + out_hw[0] + bottom, left + out_hw[1] + right), x.dtype,
                           "col2im")
        out_pad[...] = 0
        for r0 in range(0, h, band):                           # one band: the whole image, unless too large
            r1 = min(r0 + band, h)
            cols = _scratch(xp, (n1 - n0, groups, c_og * kh * kw, (r1 - r0) * wd), x.dtype, "cols")
            core._gemm_transposed(w, x[n0:n1, :, r0:r1], groups, out=cols)
            core._col2im(cols.reshape(n1 - n0, rows, (r1 - r0) * wd), out_pad[:, :, r0 * stride[0]:], (kh, kw),
                         stride, dilation, (r1 - r0, wd))
        out = y[n0:n1]
        out[...] = out_pad[:, :, top:top + out_hw[0], left:left + out_hw[1]]
        if bias is not None and _levers["fused_bias"]:
            out += bias

    _run(xp, task, pieces)
    if bias is not None and not _levers["fused_bias"]:
        y += bias
    return y


def _flip_for_transpose(w, groups):
    """Turn a transposed-conv weight (C_in, C_out/g, kh, kw) into the conv weight
    (C_out, C_in/g, kh, kw) that computes the same map at stride 1: swap the
    channel roles within each group and rotate the kernel by 180 degrees."""
    xp = backend.get_array_module(w)
    c_in, c_og, kh, kw = w.shape
    swapped = w.reshape(groups, c_in // groups, c_og, kh, kw).transpose(0, 2, 1, 3, 4)
    return xp.ascontiguousarray(swapped.reshape(groups * c_og, c_in // groups, kh, kw)[:, :, ::-1, ::-1])


def _flipped_pads(x_hw, w, pads, dilation, out_hw):
    """The padding of the flipped-kernel conv: ``d(k-1) - p`` at the top/left, and
    at the bottom/right whatever makes the output ``out_hw`` (negative: crop)."""
    reach_h, reach_w = dilation[0] * (w.shape[2] - 1), dilation[1] * (w.shape[3] - 1)
    top, left = reach_h - pads[0], reach_w - pads[2]
    return (top, out_hw[0] + reach_h - x_hw[0] - top, left, out_hw[1] + reach_w - x_hw[1] - left)


def _transpose(x, w, b, stride, pads, dilation, groups, out_hw):
    """The transposed conv, by the flipped kernel at stride 1 (when that lever is on and the
    flipped conv's columns are not the larger buffer), else by GEMM + col2im."""
    c_in, c_out = x.shape[1], w.shape[1] * groups
    if stride == (1, 1) and _levers["flip"] and c_in <= 2 * c_out:
        flipped = _flipped_pads(x.shape[2:], w, pads, dilation, out_hw)
        y, _ = _conv2d_pieces(x, _flip_for_transpose(w, groups), b, stride, flipped, dilation, groups, False)
        return y
    return _conv_transpose2d_pieces(x, w, b, stride, pads, dilation, groups, out_hw)


# ---- depthwise convolution: a direct path, in conv_depthwise.py -------------------------------
def _is_depthwise(x, w, groups, stride):
    """Whether the direct path runs: a strided depthwise conv (groups == C_in == C_out)."""
    return _levers["depthwise"] and groups > 1 and groups == x.shape[1] == w.shape[0] and stride != (1, 1)


# ---- what conv.py's Functions call ------------------------------------------------------------
def conv2d(x, w, b, stride, pads, dilation, groups, keep):
    """``y = conv2d(x, w) + b``; returns ``(y, Saved)`` for ``conv2d_grads``.

    ``keep``: the weight gradient will be wanted, so keep the columns if they
    fit the budget.
    """
    if _is_depthwise(x, w, groups, stride):
        y = depthwise.conv2d(x, w, stride, pads, dilation)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y, Saved("depthwise")
    return _conv2d_pieces(x, w, b, stride, pads, dilation, groups, keep)


def conv2d_grads(x, w, g, stride, pads, dilation, groups, saved, need_x, need_w, need_b):
    """``(dx, dW, db)`` of ``conv2d`` (None where not needed), by the route its forward took;
    the kept columns are released after."""
    gx = gw = gb = None
    if saved.route == "depthwise":
        gx, gw = depthwise.grads(x, w, g, stride, pads, dilation, need_x, need_w)
    else:
        if need_x:
            gx = _transpose(g, w, None, stride, pads, dilation, groups, x.shape[2:])
        if need_w:
            gw, gb = _weight_grad_pieces(x, g, w.shape[2:], stride, pads, dilation, groups, saved, need_b)
    saved.release()
    if need_b and gb is None:
        gb = g.sum(axis=(0, 2, 3))
    return gx, gw, gb


def conv_transpose2d(x, w, b, stride, pads, dilation, groups, out_hw):
    """``y = conv_transpose2d(x, w) + b`` of size ``out_hw``."""
    return _transpose(x, w, b, stride, pads, dilation, groups, out_hw)


def conv_transpose2d_grads(x, w, g, stride, conv_pads, dilation, groups, need_x, need_w, need_b):
    """``(dx, dW, db)`` of ``conv_transpose2d``: ``dx = conv2d(g, W)`` and ``dW`` from the
    same columns ``unfold(g)`` (kept from the first for the second when they fit)."""
    gx = saved = gw = gb = None
    if need_x:
        gx, saved = _conv2d_pieces(g, w, None, stride, conv_pads, dilation, groups, need_w)
    if need_w:
        gw, _ = _weight_grad_pieces(g, x, w.shape[2:], stride, conv_pads, dilation, groups, saved, False)
    if saved is not None:
        saved.release()
    if need_b:
        gb = g.sum(axis=(0, 2, 3))
    return gx, gw, gb
