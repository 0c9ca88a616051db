"""Row taps: a stride-1 convolution's columns built for one kernel row, the others as views.

A lever of the speed path (``conv_fast.py``'s ``row_taps``; NumPy, stride 1,
one group, a kernel more than one row high), in its own module as its own idea:

At stride 1, tap row ``i`` of output row ``r`` reads padded input row
``r + i*dh``: the same row that tap row 0 reads for output row
``r + i*dh``. So the columns are built for one kernel row only (im2col
with a (1, kw) kernel over every padded input row the outputs read:
about ``kw`` copies of the input instead of ``kh*kw``; a band of ``r``
output rows reads ``dh*(kh-1)`` rows more than its own, so a piece goes
by row taps only when ``r > dh``, where they copy less), and the columns of
tap row ``i`` are a block of them, ``W_out * i*dh`` elements further on,
which BLAS reads in place (a matrix whose rows lie a fixed distance
apart). The product becomes ``kh`` GEMMs, each over ``C*kw`` instead of
``C*kh*kw``, added up: ``y = sum_i W[:, :, i, :] @ cols_i`` and
``dW[:, :, i, :] = g @ cols_i^T``. The input gradient (the flipped
conv, ``flip``) is a stride-1 conv too and goes the same way.

``applies`` and ``pay`` decide (per conv, then per piece), ``columns`` builds
a piece's one-row columns, ``block`` views tap row ``i``'s part of them, and
``forward`` and ``weight_grad`` are the ``kh`` products added up.

The forward's ``kh`` products all read the same columns, each a block of
them. With the ``stacked_rows`` lever (``stacked``) they are one product
instead: the ``kh`` weight matrices stacked into one (kh*C_out, C*kw) matrix
times *all* the row-tap columns, ``P = [W_0; W_1; ...] @ cols``, and then
``y = sum_i P_i[:, i*dh*W_out : i*dh*W_out + L]``: the same sums, each row
block of ``P`` shifted by its tap row. BLAS first copies ("packs") the
columns it multiplies into its own layout, a pass over them as long as the
multiplication itself when C_out is small; one product packs them once
instead of ``kh`` times.
"""
import numpy as np

from .. import backend
from . import conv as core          # _im2col: the one-row kernel's columns when ``unpadded`` is off
from . import conv_fast as fast     # a cycle: conv_fast imports this module; names are looked up at call time

__all__ = ["applies", "pay", "columns", "block", "weights", "forward", "weight_grad"]


def applies(xp, kernel, stride, groups, keep=False):
    """Whether a conv may go by row taps (the ``row_taps`` lever): on NumPy, at stride 1, with
    one group, a kernel more than one row high, and no forward columns to keep (kept
    columns are the full im2col columns, ``keep_columns``). Each piece then checks
    ``pay``."""
    return (fast._levers["row_taps"] and xp is np and stride == (1, 1) and groups == 1 and kernel[0] > 1
            and not keep)


def pay(piece, dh):
    """A band of ``r`` output rows reads ``r + dh*(kh-1)`` padded rows, so its row-tap columns
    are smaller than its full columns (``r*kh`` rows' worth) only when ``r > dh``; then they
    also fit the memory limit that the full columns were cut to. A shorter band (a narrow
    band of a widely dilated conv) goes by full columns."""
    return piece[3] - piece[2] > dh


def columns(x, piece, kernel, pads, dilation, wo):
    """The row-tap columns (n1-n0, C*kw, R*W_out) of one piece at stride 1: im2col with the
    one-row kernel (1, kw) over the R = (r1-r0) + dh*(kh-1) padded input rows that output
    rows r0:r1 read. The columns of tap row i are rows' block ``[i*dh*W_out, i*dh*W_out + L)``,
    L = (r1-r0)*W_out, of each of the C*kw rows (``block``)."""
    n0, n1, r0, r1 = piece
    xp = backend.get_array_module(x)
    (kh, kw), (dh, dw) = kernel, dilation
    band_hw = (r1 - r0 + dh * (kh - 1), wo)
    cols = fast._scratch(xp, (n1 - n0, x.shape[1] * kw, band_hw[0] * wo), x.dtype, "cols")
    x_band, band_pads = fast._band_input(x, piece, pads, kernel, (1, 1), dilation)
    one_row = ((1, kw), (1, 1), (1, dw))                 # kernel, stride, dilation of one kernel row
    if fast._levers["unpadded"]:
        return fast._im2col_unpadded(x_band, band_pads, *one_row, band_hw, cols)
    return core._im2col(fast._pad_scratch(x_band, band_pads), *one_row, band_hw, cols)


def block(cols, i, dh, wo, length):
    """Tap row ``i``'s columns (n, C*kw, L): a view into the row-tap columns (no copy)."""
    return cols[:, :, i * dh * wo:i * dh * wo + length]


def weights(w):
    """``W[:, :, i, :]`` as a (C_out, C*kw) matrix for each tap row ``i``: (kh, C_out, C*kw)."""
    c_out, c, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(kh, c_out, c * kw)


SMALL_PRODUCT = 10**6
"""OpenBLAS multiplies a product of at most this many multiply-adds (M*N*K) by its small-matrix
kernel, which packs nothing, on AVX-512 processors (its ``sgemm_small_kernel_permit`` for
SkylakeX): there the ``kh`` separate products are already fast, and ``stacked`` leaves them."""

STACK_ROWS_MAX = 96
"""The most rows (kh*C_out) of a stacked weight matrix: with more output channels, packing the
columns is a smaller part of each product, and one large product no longer paid. A development
measurement, not reproduced by a benchmark (one thread on the Xeon of docs/benchmarks-xeon-avx512.md, 3x3 layers of 3-128 input
channels on 16x16 to 64x64 images, products not small): the stacked product took 0.44-0.97x the
three separate ones' time for every layer with C_out <= 32 (29 layers), 0.77-1.17x with
C_out = 64 (slower for 7 of 13 layers)."""


def stacked(w_rows, length):
    """Whether ``forward`` makes one stacked product (the ``stacked_rows`` lever): at most
    ``STACK_ROWS_MAX`` stacked rows, and each of the ``kh`` products, (C_out, C*kw) @ (C*kw, L)
    for one image, too large for OpenBLAS's small-matrix kernel."""
    kh, c_out, k = w_rows.shape
    return fast._levers["stacked_rows"] and kh * c_out <= STACK_ROWS_MAX and c_out * k * length > SMALL_PRODUCT


def forward(w_rows, cols, out, dh, wo):
    """``out = sum_i W_i @ cols_i``: ``kh`` GEMMs (n, C_out, C*kw) @ (n, C*kw, L), added up, or
    one stacked GEMM whose row blocks are added shifted (``stacked``)."""
    length = out.shape[-1]
    if stacked(w_rows, length):
        kh, c_out, k = w_rows.shape
        product = fast._scratch(np, (cols.shape[0], kh * c_out, cols.shape[-1]), out.dtype, "row_product")
        np.matmul(w_rows.reshape(kh * c_out, k), cols, out=product)      # P = [W_0; W_1; ...] @ cols
        blocks = product.reshape(cols.shape[0], kh, c_out, cols.shape[-1])
        np.add(blocks[:, 0, :, :length], block(blocks[:, 1], 1, dh, wo, length), out=out)
        for i in range(2, kh):                                            # y = sum_i P_i shifted by i*dh rows
            out += block(blocks[:, i], i, dh, wo, length)
        return
    product = fast._scratch(np, out.shape, out.dtype, "row_product")
    for i, w_i in enumerate(w_rows):
        np.matmul(w_i, block(cols, i, dh, wo, out.shape[-1]), out=out if i == 0 else product)
        if i:
            out += product


def weight_grad(g_piece, cols, kernel, dh, wo):
    """``dW[:, :, i, :] = sum_n g[n] @ cols_i[n]^T`` for each tap row: (1, C_out, C*kh*kw), the
    layout of ``conv._gemm_weight_grad``'s result for one group."""
    (kh, kw), c_out, length = kernel, g_piece.shape[1], g_piece.shape[-1]
    per_row = [fast._weight_grad_gemm(g_piece, block(cols, i, dh, wo, length), 1)[0]
               for i in range(kh)]                       # each (C_out, C*kw)
    c = per_row[0].shape[1] // kw
    return np.stack(per_row, axis=1).reshape(c_out, kh, c, kw).transpose(0, 2, 1, 3).reshape(1, c_out, -1)
