"""The U-Net size trace (572 -> 388), valid input sizes, and overlap-tile.

1. Print the original U-Net's size at every step, from ``shapes.unet_trace``,
   and check a real (narrow) U-Net returns ``unet_output_size`` pixels.
2. Overlap-tile: predict an image tile by tile, each output tile from the
   larger input window around it (mirror-padded at the image border), and
   check the stitched result equals predicting the whole mirrored image in one
   pass: valid convolutions make every output pixel depend only on its window.

Run: ``python examples/unet_572.py`` (``--fast``: 188 instead of 572 for the
real forward pass). See docs/unet.md.
"""
import os
import sys

import numpy as np

import minisegnet as msn
from minisegnet import functional as F, shapes
from minisegnet.models import UNet

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"


def main():
    msn.manual_seed(0)
    for row in shapes.unet_trace(572):
        print(f"  {row.stage:>10}  {row.operation:<22} {row.size_in:>4} -> {row.size}")
    assert shapes.unet_output_size(572) == 388
    print("valid sizes 180..600:", shapes.unet_valid_input_sizes(180, 600))

    size = 188 if FAST else 572
    model = UNet(in_channels=1, num_classes=2, base_channels=2, depth=4, padding="valid")
    with msn.no_grad():
        y = model(msn.tensor(np.zeros((1, 1, size, size), dtype=np.float32)))
    assert y.shape[2] == shapes.unet_output_size(size) == size - 184
    print(f"real U-Net(depth=4, base_channels=2): {size} -> {y.shape[2]}")

    # Overlap-tile with a shallower U-Net (depth 2) so the tiles are small and quick.
    depth = 2
    net = UNet(in_channels=1, num_classes=2, base_channels=4, depth=depth, padding="valid")
    net.eval()
    # a tile whose output is a multiple of 2**depth (so the whole image is a valid size too)
    # and larger than the margin (so mirroring needs only the image itself)
    tile_in = next(i for i in shapes.unet_valid_input_sizes(1, 400, depth=depth)
                   if shapes.unet_output_size(i, depth) % 2 ** depth == 0
                   and shapes.unet_output_size(i, depth) > (i - shapes.unet_output_size(i, depth)) // 2)
    tile_out = shapes.unet_output_size(tile_in, depth)
    margin = (tile_in - tile_out) // 2
    image = np.random.default_rng(0).standard_normal((1, 1, 2 * tile_out, 2 * tile_out)).astype(np.float32)
    padded = F.pad(msn.tensor(image), (margin,) * 4, mode="reflect").numpy()     # mirror the border
    with msn.no_grad():
        whole = net(msn.tensor(padded)).numpy()
        tiles = np.zeros_like(whole)
        for ty in range(2):
            for tx in range(2):
                window = padded[:, :, ty * tile_out:ty * tile_out + tile_in, tx * tile_out:tx * tile_out + tile_in]
                tiles[:, :, ty * tile_out:(ty + 1) * tile_out, tx * tile_out:(tx + 1) * tile_out] = \
                    net(msn.tensor(np.ascontiguousarray(window))).numpy()
    assert whole.shape[2:] == image.shape[2:]
    assert np.allclose(tiles, whole, atol=1e-5), np.abs(tiles - whole).max()
    print(f"overlap-tile (depth {depth}): 2x2 tiles of {tile_in} in -> {tile_out} out, margin {margin}: "
          f"stitched == whole image (max diff {np.abs(tiles - whole).max():.1e})")


if __name__ == "__main__":
    main()
