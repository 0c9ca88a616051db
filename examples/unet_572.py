"""The U-Net size trace (572 -> 388), valid input sizes, and overlap-tile.

1. Print the original U-Net's size at every step, from ``shapes.unet_trace``,
   and check a real (narrow) U-Net returns ``unet_output_size`` pixels.
2. Overlap-tile: predict an image tile by tile, each output tile from the
   larger input window around it (mirror-padded at the image border), and
   check the stitched result equals predicting the whole mirrored image in one
   pass. Valid convolutions make every output pixel depend only on its window;
   the tiles must also start a multiple of ``2**depth`` pixels apart, so that
   each puts its 2x2 poolings on the whole image's grid. A valid output is 4
   more than such a multiple at depth 3 and deeper (the paper's 388 =
   24 * 16 + 4), so neighbouring tiles overlap by 4 pixels; stepped by their
   full output size instead, the tiles disagree with the whole pass.

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
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


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

    # Overlap-tile with a narrow depth-3 U-Net (three poolings: a grid period of 8 pixels).
    depth = 3
    net = UNet(in_channels=1, num_classes=2, base_channels=4, depth=depth, padding="valid")
    net.eval()
    tile_in = 156                                         # a valid input: 156 -> 68 out
    tile_out = shapes.unet_output_size(tile_in, depth)
    margin = (tile_in - tile_out) // 2
    step = tile_out - tile_out % 2 ** depth               # 68 -> 64: tiles start on the pooling grid
    assert (tile_out, margin, step) == (68, 44, 64)
    size = step + tile_out                                # 132: a valid whole-image output, 3 tiles per axis
    image = np.random.default_rng(0).standard_normal((1, 1, size, size)).astype(np.float32)
    padded = F.pad(msn.tensor(image), (margin,) * 4, mode="reflect").numpy()     # mirror the border
    with msn.no_grad():
        whole = net(msn.tensor(padded)).numpy()

        def tiled(stride):
            """Tiles starting ``stride`` apart, each keeping its outputs up to the next tile."""
            out = np.zeros_like(whole)
            for y in range(0, size, stride):
                for x in range(0, size, stride):
                    window = np.zeros((1, 1, tile_in, tile_in), np.float32)
                    part = padded[:, :, y:y + tile_in, x:x + tile_in]       # the last tiles may run past
                    window[:, :, :part.shape[2], :part.shape[3]] = part
                    out[:, :, y:y + stride, x:x + stride] = net(msn.tensor(window)).numpy()[
                        :, :, :min(stride, size - y), :min(stride, size - x)]
            return out
        aligned, shifted = tiled(step), tiled(tile_out)
    assert whole.shape[2:] == image.shape[2:]
    assert np.allclose(aligned, whole, atol=1e-5), np.abs(aligned - whole).max()
    assert not np.allclose(shifted, whole, atol=1e-3), "tiles off the pooling grid should disagree"
    print(f"overlap-tile (depth {depth}): tiles of {tile_in} in -> {tile_out} out, margin {margin}, "
          f"started {step} apart: stitched == whole image (max diff {np.abs(aligned - whole).max():.1e}); "
          f"started {tile_out} apart (off the grid): max diff {np.abs(shifted - whole).max():.2f}")

if __name__ == "__main__":
    main()
