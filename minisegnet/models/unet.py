"""U-Net (Ronneberger, Fischer and Brox, 2015): a contracting path that sees
context, an expanding path that localises, and skips that carry detail across.

With ``padding="valid"``, ``depth=4`` and ``base_channels=64`` this is the
paper's network (its layers and its 31,030,658 parameters; the paper's dropout
at the end of the contracting path is not built in): every 3x3 convolution is unpadded, so each one eats a
one-pixel border, and the encoder's feature maps are *cropped* before they are
concatenated with the (smaller) decoder maps. A 572x572 tile, single-channel
input and two classes as in the paper::

    input   1 x 572 x 572
    enc 0   conv3 -> 64 x 570, conv3 -> 64 x 568  ------------- crop 568 -> 392 ---+
    pool    64 x 284                                                               |
    enc 1   conv3 -> 128 x 282, conv3 -> 128 x 280  --------- crop 280 -> 200 ---+ |
    pool    128 x 140                                                            | |
    enc 2   conv3 -> 256 x 138, conv3 -> 256 x 136  ------- crop 136 -> 104 --+ | |
    pool    256 x 68                                                          | | |
    enc 3   conv3 -> 512 x 66, conv3 -> 512 x 64  ----------- crop 64 -> 56 -+ | | |
    pool    512 x 32                                                         | | | |
    bottom  conv3 -> 1024 x 30, conv3 -> 1024 x 28                           | | | |
    dec 3   up-conv 2x2 -> 512 x 56, cat -> 1024 x 56 <----------------------+ | | |
            conv3 -> 512 x 54, conv3 -> 512 x 52                               | | |
    dec 2   up-conv 2x2 -> 256 x 104, cat -> 512 x 104 <-----------------------+ | |
            conv3 -> 256 x 102, conv3 -> 256 x 100                               | |
    dec 1   up-conv 2x2 -> 128 x 200, cat -> 256 x 200 <-------------------------+ |
            conv3 -> 128 x 198, conv3 -> 128 x 196                                 |
    dec 0   up-conv 2x2 -> 64 x 392, cat -> 128 x 392 <----------------------------+
            conv3 -> 64 x 390, conv3 -> 64 x 388
    head    conv1 -> 2 x 388 x 388

Every 2x2 max-pool must see an even size, which only some inputs satisfy:
``shapes.unet_valid_input_sizes`` lists them (572 and 188 are, 570 is not) and
``shapes.unet_output_size`` gives the output (here ``i - 184``). Other sizes
are rejected before any work, with the message from ``shapes``. The output is
smaller than the input: the paper segments a large image tile by tile
(overlap-tile), each output tile seeing 92 pixels of context on every side.

With ``padding="same"`` (a common modern variant, not the paper) the 3x3
convolutions pad by 1, nothing is cropped and the output has the input's size;
the input must then be divisible by ``2**depth`` so the up-convolutions land
exactly on the encoder sizes. ``256 x 256`` at depth 4 runs
256 -> 128 -> 64 -> 32 -> 16 (bottom) -> 32 -> 64 -> 128 -> 256.

``up_mode="bilinear"`` replaces each 2x2 up-convolution by bilinear x2
upsampling (``align_corners=False``) followed by a 1x1 convolution that halves
the channels; the sizes are the same. ``batch_norm=True`` puts a BatchNorm2d
after every 3x3 convolution (the convolution then has no bias: BatchNorm's
shift replaces it). Neither is in the paper. The 3x3 convolutions start from the
paper's He initialisation (variance ``2 / fan_in``); the others from PyTorch's default.

Levels are numbered as in the diagram, the course and ``minisegnet shapes unet``:
level ``l`` works at ``2**-l`` of the input's scale, level 0 at full size, level
``depth`` is the bottleneck. The module names follow them, and so do the
state-dict keys: ``encoder.<l>.conv1``/``conv2`` (``bn1``/``bn2``) are level
``l``'s two convs on the way down; ``bottleneck``; ``decoder.<l>.up`` (from level
``l+1`` up to ``l``) and ``decoder.<l>.conv`` (the two convs after the skip from
``encoder.<l>``), so ``decoder.0`` is the last, full-size step; ``head``.
``minisegnet.export.to_torch`` builds a PyTorch twin with the same keys.
"""
from .. import backend, checks
from .. import functional as F
from .. import nn, shapes
from .checks import check_image_batch

__all__ = ["UNet", "DoubleConv", "UpBlock"]


def _he_init(conv):
    """The paper's initialisation for convolutions followed by ReLU: weights with
    variance ``2 / fan_in`` (He et al.; the paper draws them from a Gaussian, this
    uses the uniform distribution of the same variance), zero bias. PyTorch's
    default, ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, has variance ``1 / (3 fan_in)``:
    a sixth of He's. A conv + ReLU multiplies the mean square of its input by
    ``fan_in * Var(w) / 2``, so He keeps it (1) and the default divides it by 6 at
    every layer (the RMS by about 2.4; measured in tests/test_course_claims.py)."""
    conv.weight.data = nn.init.kaiming_uniform_array(conv.weight.shape, a=0, dtype=conv.weight.dtype)
    if conv.bias is not None:
        xp = backend.get_array_module(conv.bias.data)
        conv.bias.data = xp.zeros_like(conv.bias.data)
    return conv


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by (BatchNorm and) ReLU: one U-Net level.

    ``padding`` is 0 (the paper: each conv shrinks the map by 2) or 1 (size kept).
    """

    def __init__(self, in_channels, out_channels, padding, batch_norm):
        self.conv1 = _he_init(nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=not batch_norm))
        if batch_norm:
            self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _he_init(nn.Conv2d(out_channels, out_channels, 3, padding=padding, bias=not batch_norm))
        if batch_norm:
            self.bn2 = nn.BatchNorm2d(out_channels)
        self.batch_norm = batch_norm

    def forward(self, x):
        x = self.conv1(x)
        if self.batch_norm:
            x = self.bn1(x)
        x = F.relu(x)
        x = self.conv2(x)
        if self.batch_norm:
            x = self.bn2(x)
        return F.relu(x)


class UpBlock(nn.Module):
    """One expanding step: upsample x2 halving the channels, copy-and-crop the
    skip, concatenate (skip first, as in the paper's figure), two 3x3 convs."""

    def __init__(self, in_channels, out_channels, padding, batch_norm, up_mode):
        self.up_mode = up_mode
        if up_mode == "transpose":
            # The paper's "up-convolution": 2x2 kernel, stride 2, exactly doubles the size.
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            # Bilinear x2 has no weights; this 1x1 conv halves the channels instead.
            self.up = nn.Conv2d(in_channels, out_channels, 1)
        self.conv = DoubleConv(2 * out_channels, out_channels, padding, batch_norm)

    def forward(self, x, skip):
        if self.up_mode == "transpose":
            x = self.up(x)
        else:
            x = self.up(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        if skip.shape[2:] != x.shape[2:]:
            # Valid convolutions made the skip larger than x: keep its centre.
            skip = F.center_crop(skip, x.shape[2:])
        return self.conv(F.cat([skip, x], dim=1))


def weight_count(in_channels, num_classes, base_channels, depth, up_mode="transpose"):
    """The conv weights (biases aside) of a ``UNet`` of these arguments, counted without building
    it: encoder levels and bottleneck (two 3x3 convs each), decoder (up-conv, then 3x3 convs
    2w -> w -> w), head. ``UNet`` refuses, before building a layer, a count that would not fit
    in memory."""
    widths = [base_channels * 2 ** level for level in range(depth + 1)]
    up_taps = 4 if up_mode == "transpose" else 1
    weights = sum(9 * (a * b + b * b) for a, b in zip([in_channels] + widths[:-1], widths))
    weights += sum(up_taps * widths[level + 1] * widths[level] + 27 * widths[level] ** 2 for level in range(depth))
    return weights + base_channels * num_classes


class UNet(nn.Module):
    """U-Net with ``depth`` poolings; see the module docstring for the data flow.

    Arguments: ``in_channels`` (image channels), ``num_classes`` (output logits per
    pixel), ``base_channels`` (channels at the first level; doubled at each
    deeper level, so the bottom has ``base_channels * 2**depth``), ``depth``
    (number of 2x2 max-pools, >= 1), ``padding`` (``"valid"``: the paper, output
    smaller than input; ``"same"``: output size = input size), ``batch_norm``,
    ``up_mode`` (``"transpose"``: 2x2 up-convolution; ``"bilinear"``: bilinear x2
    then 1x1 conv).

    ``forward(x)``: ``x`` is ``(N, in_channels, H, W)``; returns logits
    ``(N, num_classes, H', W')`` with ``H' = shapes.unet_output_size(H, depth)``
    for valid padding and ``H' = H`` for same padding.
    """

    def __init__(self, in_channels=3, num_classes=2, base_channels=64, depth=4, padding="valid",
                 batch_norm=False, up_mode="transpose"):
        in_channels, num_classes, base_channels, depth = (
            checks.positive_int(value, name, "UNet") for name, value in (
                ("in_channels", in_channels), ("num_classes", num_classes), ("base_channels", base_channels),
                ("depth", depth)))
        if padding not in ("valid", "same"):
            raise ValueError(f"UNet: padding must be 'valid' or 'same', got {padding!r}")
        if up_mode not in ("transpose", "bilinear"):
            raise ValueError(f"UNet: up_mode must be 'transpose' or 'bilinear', got {up_mode!r}")
        batch_norm = checks.flag(batch_norm, "batch_norm", "UNet")        # a NumPy bool too
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.base_channels = base_channels
        self.depth = depth
        self.padding = padding
        self.batch_norm = batch_norm
        self.up_mode = up_mode

        if depth > shapes.MAX_UNET_DEPTH:
            raise ValueError(f"UNet: depth={depth} is deeper than shapes.MAX_UNET_DEPTH = {shapes.MAX_UNET_DEPTH} "
                             f"(the input would need more than 2**{depth} pixels per side)")
        pad = 0 if padding == "valid" else 1
        widths = [base_channels * 2 ** level for level in range(depth + 1)]
        checks.check_weights(weight_count(in_channels, num_classes, base_channels, depth, up_mode), "UNet",
                             f"in_channels={in_channels}, num_classes={num_classes}, base_channels={base_channels}, "
                             f"depth={depth}")
        self.encoder = nn.ModuleList(
            DoubleConv(in_channels if level == 0 else widths[level - 1], widths[level], pad, batch_norm)
            for level in range(depth))
        self.bottleneck = DoubleConv(widths[depth - 1], widths[depth], pad, batch_norm)
        # decoder[l] goes from level l+1 up to level l: decoder[depth-1] runs first, decoder[0] last.
        self.decoder = nn.ModuleList(
            UpBlock(widths[level + 1], widths[level], pad, batch_norm, up_mode)
            for level in range(depth))
        self.head = nn.Conv2d(base_channels, num_classes, 1)

    def output_size(self, size):
        """Spatial output size for an input ``size`` (int or ``(h, w)``), from
        ``shapes.unet_output_size``; a size this network cannot take is a
        ``ValueError`` naming the level that fails and the nearest valid sizes."""
        return shapes.unet_output_size(size, depth=self.depth, padding=self.padding)

    def forward(self, x):
        check_image_batch(x, self.in_channels, "UNet")
        self.output_size(tuple(x.shape[2:]))   # reject bad sizes before any work
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
            x = F.max_pool2d(x, 2, 2)
        x = self.bottleneck(x)
        for level in reversed(range(self.depth)):
            x = self.decoder[level](x, skips[level])
        return self.head(x)

