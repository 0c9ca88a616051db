"""A lever tried and not kept: Winograd's F(2x2, 3x3) for the stride-1 3x3 convolution.

    python benchmarks/try_winograd.py            # one thread, CPU time, 15 interleaved repeats
    python benchmarks/try_winograd.py --quick    # a smoke run, not a measurement

The idea (Lavin and Gray, 2016). A 3x3 convolution makes each 2x2 tile of
its output from a 4x4 tile ``d`` of its (padded) input. Winograd's minimal
filtering algorithm computes that tile as

    Y = A^T [ (G w G^T) * (B^T d B) ] A          (* elementwise, 4x4)

with the fixed matrices below: the 36 multiplications per tile and channel
pair of the direct form become 16. Summed over input channels, the
elementwise product is, for each of the 16 positions, a matrix product
``M[k] = U[k] @ V[k]`` of the transformed weights ``U[k]`` (C_out x C_in)
and the transformed input tiles ``V[k]`` (C_in x tiles): 16 GEMMs whose
total work is 4/9 of im2col's single GEMM, and the input transform (four
values per input pixel) replaces the nine-fold im2col copy.

What this script measures: that idea written in NumPy (the transforms as
slice arithmetic, the 16 GEMMs as one batched ``matmul``), against our
convolution's forward pass (``F.conv2d``, im2col + GEMM with every default
lever) and PyTorch's, on the 3x3 layers of the benchmark U-Net (batch 8).
The outputs are checked equal first. Why it does not pay here: with 8-64
channels each of the 16 products has a short inner dimension (C_in), so
OpenBLAS runs them far below its speed on im2col's long one (9 C_in), and the
transforms are as many passes over memory as the im2col copy they replace.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import timing  # noqa: E402

# (N, C_in, H, C_out): the stride-1 3x3 convs of the benchmark U-Net's levels
LAYERS = [(8, 16, 64, 16), (8, 32, 32, 32), (8, 64, 16, 64), (8, 64, 32, 32), (8, 32, 64, 16)]

G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)   # weight transform
# B^T (input transform) rows: d0 - d2, d1 + d2, d2 - d1, d1 - d3;  A^T (output): m0 + m1 + m2, m1 - m2 - m3


def input_transform(x):
    """``V[k] = (B^T d B)[k]`` for every 4x4 tile ``d`` of ``x`` padded by 1: shape (16, C, N * tiles)."""
    n, c, h, w = x.shape
    th, tw = h // 2, w // 2
    padded = np.zeros((n, c, h + 2, w + 2), x.dtype)
    padded[:, :, 1:-1, 1:-1] = x
    r = [padded[:, :, k:k + 2 * th:2] for k in range(4)]            # row k of every tile
    rows = [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]]       # B^T d
    v = np.empty((4, 4, c, n, th, tw), x.dtype)
    for i in range(4):
        q = [rows[i][..., k:k + 2 * tw:2] for k in range(4)]         # column k of every tile
        out = v[i].transpose(0, 2, 1, 3, 4)                           # (4, N, C, th, tw) views
        np.subtract(q[0], q[2], out=out[0])                            # (B^T d) B
        np.add(q[1], q[2], out=out[1])
        np.subtract(q[2], q[1], out=out[2])
        np.subtract(q[1], q[3], out=out[3])
    return v.reshape(16, c, n * th * tw)


def output_transform(m, n, c_out, th, tw):
    """``Y = A^T M A`` for every tile: (16, C_out, N * tiles) -> (N, C_out, 2 th, 2 tw)."""
    m = m.reshape(4, 4, c_out, n, th, tw)
    y = np.empty((n, c_out, 2 * th, 2 * tw), m.dtype)
    rows = ([m[0, j] + m[1, j] + m[2, j] for j in range(4)], [m[1, j] - m[2, j] - m[3, j] for j in range(4)])
    for p in range(2):
        a = rows[p]
        np.add(a[0] + a[1], a[2], out=y[:, :, p::2, 0::2].transpose(1, 0, 2, 3))
        np.subtract(a[1] - a[2], a[3], out=y[:, :, p::2, 1::2].transpose(1, 0, 2, 3))
    return y


def winograd_conv2d(x, w):
    """``conv2d(x, w, padding=1)`` for a 3x3 ``w`` and even H, W, by F(2x2, 3x3)."""
    n, c, h, wd = x.shape
    c_out = w.shape[0]
    u = (G @ w @ G.T).transpose(2, 3, 0, 1).reshape(16, c_out, c)   # G w G^T, position-major
    m = np.matmul(u, input_transform(x))                              # the 16 GEMMs
    return output_transform(m, n, c_out, h // 2, wd // 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats: a smoke run, not a measurement")
    args = parser.parse_args(argv)
    repeats, warmup = (3, 1) if args.quick else (15, 2)

    import torch

    import minisegnet as msn
    from minisegnet import functional as F

    info = timing.machine_info()
    monitor = timing.LoadMonitor().start()
    rows = []
    rng = np.random.default_rng(0)
    with timing.threads(1):
        for n, c, h, c_out in LAYERS:
            x = rng.standard_normal((n, c, h, h)).astype(np.float32)
            w = (rng.standard_normal((c_out, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
            ours_x, ours_w = msn.tensor(x), msn.tensor(w)
            torch_x, torch_w = torch.from_numpy(x), torch.from_numpy(w)
            reference = F.conv2d(ours_x, ours_w, padding=1).numpy()
            np.testing.assert_allclose(winograd_conv2d(x, w), reference, rtol=1e-4, atol=1e-5)

            def im2col():
                with msn.no_grad():
                    F.conv2d(ours_x, ours_w, padding=1)

            def winograd():
                winograd_conv2d(x, w)

            def theirs():
                with torch.no_grad():
                    torch.nn.functional.conv2d(torch_x, torch_w, padding=1)

            a = timing.compare(winograd, im2col, repeats, warmup, time.process_time)
            b = timing.compare(winograd, theirs, repeats, warmup, time.process_time)
            rows.append([f"({n}, {c}, {h}, {h}) -> {c_out}", f"{a['ours'] * 1e3:.2f}", f"{a['theirs'] * 1e3:.2f}",
                         f"{b['theirs'] * 1e3:.2f}", f"{a['ratio']:.2f}"])
    load = monitor.stop()
    reasons = timing.verdict(load)
    extra = (f"Forward pass of a 3x3 conv, padding 1, float32; one thread, CPU time, {repeats} interleaved "
             f"repeats, medians. Winograd's output checked equal to F.conv2d's first.")
    print(timing.report_header(info, load, reasons, extra) + "\n")
    print(timing.markdown_table(["layer (N, C_in, H, W) -> C_out", "Winograd F(2x2,3x3) ms", "F.conv2d (im2col) ms",
                                 "torch ms", "Winograd / im2col"], rows, reasons))
    print(timing.result_line({}, reasons))
    return 0 if not reasons else 3


if __name__ == "__main__":
    sys.exit(main())
