"""A convolution three ways: nested loops, im2col + one GEMM, and ``F.conv2d``.

    y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] * x_pad[n, c, oh*s + i*d, ow*s + j*d]

The loops are the definition; im2col (``F.unfold``) copies every window into a
column so the sum becomes ``W.reshape(C_out, -1) @ cols``; ``F.conv2d`` is the
library's op. All three agree for every (stride, padding, dilation, groups)
tried, and the input gradient equals ``F.conv_transpose2d`` of the output
gradient (with the ``output_padding`` that restores the input size). Run: ``python examples/conv_by_hand.py`` (``--fast`` or
``MINISEGNET_FAST=1`` for fewer cases). See docs/im2col.md.
"""
import os
import sys

import numpy as np

import minisegnet as msn
from minisegnet import functional as F, shapes

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


def conv_loops(x, w, b, stride, padding, dilation, groups):
    """The definition, one multiply-add at a time (float64, slow, obviously right)."""
    n, c_in, h, wd = x.shape
    c_out, c_per_group, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = shapes.conv2d_output_size(h, k, stride, padding, dilation)
    ow = shapes.conv2d_output_size(wd, k, stride, padding, dilation)
    y = np.zeros((n, c_out, oh, ow))
    out_per_group = c_out // groups
    for b_ in range(n):
        for o in range(c_out):
            first = (o // out_per_group) * c_per_group          # this output's group of input channels
            for r in range(oh):
                for q in range(ow):
                    total = b[o]
                    for c in range(c_per_group):
                        for i in range(k):
                            for j in range(k):
                                total += w[o, c, i, j] * xp[b_, first + c, r * stride + i * dilation,
                                                            q * stride + j * dilation]
                    y[b_, o, r, q] = total
    return y


def conv_im2col(x, w, b, stride, padding, dilation, groups):
    """im2col + one GEMM per group."""
    n = x.shape[0]
    c_out, c_per_group, k, _ = w.shape
    cols = F.unfold(msn.tensor(x), k, dilation, padding, stride).numpy()     # (N, C_in*k*k, L)
    oh = shapes.conv2d_output_size(x.shape[2], k, stride, padding, dilation)
    ow = shapes.conv2d_output_size(x.shape[3], k, stride, padding, dilation)
    rows = c_per_group * k * k
    outs = []
    for g in range(groups):
        w_g = w[g * (c_out // groups):(g + 1) * (c_out // groups)].reshape(-1, rows)
        outs.append(w_g @ cols[:, g * rows:(g + 1) * rows])                  # (N, C_out/g, L)
    return np.concatenate(outs, axis=1).reshape(n, c_out, oh, ow) + b[None, :, None, None]


def main():
    rng = np.random.default_rng(0)
    cases = [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (2, 1, 1, 2), (3, 2, 2, 4)]
    if FAST:
        cases = cases[:3]
    for stride, padding, dilation, groups in cases:
        x = rng.standard_normal((2, 4, 9, 8))
        w = rng.standard_normal((4, 4 // groups, 3, 3))
        b = rng.standard_normal(4)
        loops = conv_loops(x, w, b, stride, padding, dilation, groups)
        gemm = conv_im2col(x, w, b, stride, padding, dilation, groups)
        op = F.conv2d(msn.tensor(x), msn.tensor(w), msn.tensor(b), stride, padding, dilation, groups).numpy()
        assert np.allclose(loops, gemm) and np.allclose(loops, op), (stride, padding, dilation, groups)

        # backward: the input gradient is the transposed convolution of the output gradient
        t = msn.tensor(x, requires_grad=True)
        g = rng.standard_normal(op.shape)
        F.conv2d(t, msn.tensor(w), None, stride, padding, dilation, groups).backward(msn.tensor(g))
        # output_padding picks which of the input sizes that share this output size to restore
        op_pad = shapes.conv_transpose2d_output_padding(op.shape[2:], x.shape[2:], 3, stride, padding, dilation)
        back = F.conv_transpose2d(msn.tensor(g), msn.tensor(w), None, stride, padding,
                                  output_padding=op_pad, groups=groups, dilation=dilation)
        assert np.allclose(t.grad.numpy(), back.numpy())
        print(f"stride={stride} padding={padding} dilation={dilation} groups={groups}: "
              f"loops == im2col GEMM == F.conv2d, output {op.shape}; input grad == conv_transpose2d")
    print("all agree")


if __name__ == "__main__":
    main()
