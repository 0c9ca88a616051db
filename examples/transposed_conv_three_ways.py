"""Transposed convolution three ways, the same numbers each time:

1. zero insertion: put ``s - 1`` zeros between input pixels, pad by
   ``d(k-1) - p`` (plus ``output_padding`` at the bottom/right), and run a
   stride-1 convolution with the kernel flipped and its channel axes swapped;
2. the backward pass of a stride-``s`` convolution (autograd's input gradient);
3. ``F.conv_transpose2d``.

Output size ``o = (i - 1)s - 2p + d(k-1) + output_padding + 1``. Run:
``python examples/transposed_conv_three_ways.py`` (``--fast`` for fewer
configurations). See docs/transposed-conv.md.
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


def by_zero_insertion(x, w, stride, padding, output_padding, dilation):
    n, c_in, h, wd = x.shape
    k = w.shape[2]
    z = np.zeros((n, c_in, (h - 1) * stride + 1, (wd - 1) * stride + 1))
    z[:, :, ::stride, ::stride] = x
    q = dilation * (k - 1) - padding
    assert q >= 0, "this route needs padding <= d(k-1)"
    z = np.pad(z, ((0, 0), (0, 0), (q, q + output_padding), (q, q + output_padding)))
    w_conv = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].copy()       # (C_out, C_in, k, k), rotated 180
    return F.conv2d(msn.tensor(z), msn.tensor(w_conv), dilation=dilation).numpy()


def by_conv_backward(x, w, stride, padding, output_padding, dilation):
    n, c_in, h, wd = x.shape
    k = w.shape[2]
    size = shapes.conv_transpose2d_output_size((h, wd), k, stride, padding, output_padding, dilation)
    a = msn.tensor(np.zeros((n, w.shape[1]) + size), requires_grad=True)
    y = F.conv2d(a, msn.tensor(w), stride=stride, padding=padding, dilation=dilation)
    assert y.shape == x.shape                    # the conv maps the big size back to x's size
    y.backward(msn.tensor(x))
    return a.grad.numpy()


def main():
    rng = np.random.default_rng(0)
    configs = [  # (stride, kernel, padding, output_padding, dilation)
        (2, 3, 0, 0, 1), (2, 3, 1, 1, 1), (2, 4, 1, 0, 1), (3, 3, 1, 2, 1), (1, 3, 2, 0, 2), (2, 3, 2, 1, 2)]
    if FAST:
        configs = configs[:3]
    for s, k, p, op, d in configs:
        x = rng.standard_normal((1, 2, 4, 5))
        w = rng.standard_normal((2, 3, k, k))         # (C_in, C_out, k, k): the transposed-conv layout
        a = by_zero_insertion(x, w, s, p, op, d)
        b = by_conv_backward(x, w, s, p, op, d)
        c = F.conv_transpose2d(msn.tensor(x), msn.tensor(w), stride=s, padding=p, output_padding=op,
                               dilation=d).numpy()
        assert c.shape[2:] == shapes.conv_transpose2d_output_size((4, 5), k, s, p, op, d)
        assert np.allclose(a, c) and np.allclose(b, c), (s, k, p, op, d)
        print(f"s={s} k={k} p={p} output_padding={op} d={d}: 4x5 -> {c.shape[2]}x{c.shape[3]}, "
              "zero insertion == conv backward == F.conv_transpose2d")
    print("all three agree")


if __name__ == "__main__":
    main()
