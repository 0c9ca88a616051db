"""Bilinear upsampling vs a transposed convolution, before and after learning.

A transposed conv with kernel ``2f``, stride ``f`` and padding ``f/2`` enlarges
a map ``f`` times. With FCN's bilinear "tent" as weights it *is* bilinear
interpolation (``align_corners=False``) away from a 1-pixel border. Then it
can learn: trained to restore ``Shapes`` images from their 2x average-pooled
versions, it improves on its start, and away from the border it beats fixed
bilinear upsampling on held-out images.

Run: ``python examples/bilinear_vs_transposed.py`` (``--fast`` or ``MINISEGNET_FAST=1``: a
smoke test of the learning part, which says so).
See docs/bilinear.md and docs/transposed-conv.md.
"""
import os
import sys

import numpy as np

import minisegnet as msn
from minisegnet import functional as F, nn, optim
from minisegnet.data import Shapes
from minisegnet.models.fcn import bilinear_kernel

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


def mse(a, b):
    return float(((a - b) ** 2).mean())


def main():
    msn.manual_seed(0)
    f = 2
    if FAST:
        print("FAST MODE: a smoke test for the learning part (16 images, 30 steps): its error ratio means "
              "nothing yet; part 1 (the tent kernel is bilinear) holds exactly in any mode.")
    train = Shapes(num_samples=16 if FAST else 64, size=32, seed=0)
    held_out = Shapes(num_samples=8, size=32, seed=0, split="val")
    images = np.stack([train[i][0] for i in range(len(train))])          # (N, 3, 32, 32) float32
    val = np.stack([held_out[i][0] for i in range(len(held_out))])

    # 1. The tent kernel reproduces bilinear interpolation away from the border.
    up = nn.ConvTranspose2d(3, 3, 2 * f, stride=f, padding=f // 2, bias=False)
    up.load_state_dict({"weight": bilinear_kernel(3, 2 * f)})     # a NumPy array, copied to up's backend
    small_val = F.avg_pool2d(msn.tensor(val), f)
    with msn.no_grad():
        by_conv = up(small_val).numpy()
    by_interp = F.interpolate(small_val, scale_factor=f, mode="bilinear", align_corners=False).numpy()
    assert np.allclose(by_conv[..., 1:-1, 1:-1], by_interp[..., 1:-1, 1:-1], atol=1e-6)
    bilinear_error = mse(by_interp, val)
    print(f"bilinear x{f}: held-out MSE {bilinear_error:.5f}; the tent transposed conv matches it inside the border")

    # 2. Learn: start from bilinear, minimise the reconstruction error.
    with msn.no_grad():
        start_error = mse(up(small_val).numpy(), val)
    print(f"tent transposed conv before learning: held-out MSE {start_error:.5f} (zero padding darkens the border)")
    opt = optim.Adam(up.parameters(), lr=3e-3)
    target = msn.tensor(images)
    small = F.avg_pool2d(target, f)
    steps = 30 if FAST else 150
    for step in range(steps):
        opt.zero_grad()
        loss = ((up(small) - target) ** 2).mean()
        loss.backward()
        opt.step()
    with msn.no_grad():
        learned = up(small_val).numpy()
    learned_error = mse(learned, val)
    print(f"learned transposed conv after {steps} steps: held-out MSE {learned_error:.5f}")
    assert learned_error < start_error, "learning should improve on its bilinear start"
    inner = (Ellipsis, slice(1, -1), slice(1, -1))
    ratio = mse(learned[inner], val[inner]) / mse(by_interp[inner], val[inner])
    print(f"away from the border, learned / bilinear error: {ratio:.3f}")
    if not FAST:
        assert ratio < 1.0, "the learned upsampler should beat fixed bilinear inside the image"


if __name__ == "__main__":
    main()
