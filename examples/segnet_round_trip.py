"""SegNet's pool/unpool round trip on a ``Shapes`` image.

Max-pool with indices ``depth`` times, then max-unpool with the same indices:
every surviving value returns to the exact pixel it came from, everything else
is zero, and pooling the unpooled map gives the pooled map back. The same
pooled map upsampled bilinearly is dense but blurred. Odd sizes need
``output_size``. Run: ``python examples/segnet_round_trip.py`` (``--fast``
for a smaller image). See docs/pooling.md and docs/segnet.md.
"""
import os
import sys

import numpy as np

import minisegnet as msn
from minisegnet import functional as F
from minisegnet.data import Shapes
from minisegnet.models import SegNet

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


def main():
    size = 45 if FAST else 99               # odd on purpose: 99 -> 49 -> 24 -> 12
    image, _ = Shapes(num_samples=1, size=size, seed=0)[0]
    x = msn.tensor(image[None].astype(np.float64))   # (1, 3, H, W), values in [0, 1]

    pooled, sizes, indices = x, [], []
    for _ in range(3):
        sizes.append(pooled.shape[2:])
        pooled, where = F.max_pool2d(pooled, 2, return_indices=True)
        indices.append(where)
    print("pool sizes:", [s[0] for s in sizes], "->", pooled.shape[2])

    up = pooled
    for where, s in zip(reversed(indices), reversed(sizes)):
        up = F.max_unpool2d(up, where, 2, output_size=s)
    assert up.shape == x.shape

    kept = up.numpy() != 0
    assert np.array_equal(up.numpy()[kept], x.numpy()[kept])       # values back at their own pixels
    print(f"unpooled map: {kept.mean():.1%} of pixels non-zero (1/64 = {1 / 64:.1%} at most)")
    assert kept.mean() <= 1 / 64 + 1e-12

    again = up
    for _ in range(3):
        again = F.max_pool2d(again, 2)
    assert np.array_equal(again.numpy(), pooled.numpy())           # pool(unpool(y)) == y for y >= 0

    bilinear = F.interpolate(pooled, size=x.shape[2:], mode="bilinear", align_corners=False).numpy()
    print(f"bilinear x8: dense; mean |error| vs the image {np.abs(bilinear - x.numpy()).mean():.3f}")

    model = SegNet(in_channels=3, num_classes=4, base_channels=4, depth=3)
    model.eval()
    with msn.no_grad():
        logits = model(msn.tensor(image[None]))
    assert logits.shape == (1, 4, size, size)
    print(f"SegNet on {size}x{size}: logits {logits.shape}, odd sizes restored through output_size")


if __name__ == "__main__":
    main()
