"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer and Darrell, 2015): a
classification network made fully convolutional, then taught to upsample.

Three ideas, in the order the paper introduces them:

1. **Convolutionalise.** VGG16's fully connected layers become convolutions:
   ``fc6`` is a 7x7 convolution over pool5's channels, ``fc7`` a 1x1, and a
   1x1 ``score_fr`` gives one score map per class at 1/32 of the input size.
   The network now takes any input size and returns a coarse map of scores.
2. **Upsample in-network.** A transposed convolution with kernel ``2f``,
   stride ``f`` and padding ``f/2`` enlarges a map exactly ``f`` times. Its
   weights are *initialised* to bilinear interpolation (``bilinear_kernel``)
   and then learned. FCN-32s upsamples ``score_fr`` by 32 in one step.
3. **Skip.** 32x is too coarse for boundaries. FCN-16s upsamples the scores
   by 2, *adds* a 1x1 score layer on pool4 (1/16), then upsamples by 16.
   FCN-8s also adds a score layer on pool3 (1/8), then upsamples by 8. The
   skip score layers start at zero (as in the paper's staged training), so at
   initialisation the skips add nothing: FCN-8s's scores are its coarser
   parent's, upsampled in stages (x2, x2, x8) instead of at once (x32), which
   bilinear kernels only approximate (stacked tents are not one large tent).

Sizes and crop offsets. The paper pads the input by 100 pixels so that the
unpadded 7x7 ``fc6`` fits even small images, which shifts every map and forces
odd crop offsets (e.g. 19 and 27 pixels). This version is cleaner: the input is
zero-padded at the bottom and right to the next multiple of 32; every 3x3
convolution and ``fc6`` pads to keep the size ("same"), each 2x2 max-pool
halves it exactly, and each transposed convolution (padding ``f/2``) multiplies
it exactly by ``f``, with its output pixel centres aligned to the input's (the
bilinear kernel then matches ``interpolate(..., align_corners=False)`` away
from the border). So the skip maps never need cropping, and the final crop back
to ``H x W`` has offset (0, 0): keep the first ``H`` rows and ``W`` columns,
which drops exactly the padding. A 200 x 150 image, ``width=16`` (FCN-8s)::

    input        3 x 200 x 150  -> zero-pad bottom/right -> 3 x 224 x 160
    block1       2 x (conv3 + ReLU) -> 16 x 224 x 160,  pool -> 16 x 112 x 80
    block2       2 x (conv3 + ReLU) -> 32 x 112 x 80,   pool -> 32 x 56 x 40
    block3       3 x (conv3 + ReLU) -> 64 x 56 x 40,    pool3 -> 64 x 28 x 20   --+
    block4       3 x (conv3 + ReLU) -> 128 x 28 x 20,   pool4 -> 128 x 14 x 10  -+ |
    block5       3 x (conv3 + ReLU) -> 128 x 14 x 10,   pool5 -> 128 x 7 x 5     | |
    fc6, fc7     conv7 + ReLU (+ dropout), conv1 + ReLU (+ dropout) -> 128 x 7 x 5| |
    score_fr     conv1 -> C x 7 x 5                                               | |
    upscore2     x2 (4x4, stride 2) -> C x 14 x 10   + score_pool4 (C x 14 x 10) <-+ |
    upscore_pool4 x2 (4x4, stride 2) -> C x 28 x 20  + score_pool3 (C x 28 x 20) <---+
    upscore8     x8 (16x16, stride 8) -> C x 224 x 160
    crop         rows 0..199, columns 0..149 -> C x 200 x 150

FCN-16s stops after the pool4 sum and upsamples it with ``upscore16`` (32x32,
stride 16); FCN-32s upsamples ``score_fr`` with ``upscore`` (64x64, stride 32).
Module names follow the paper's Caffe models (``fc6``, ``score_fr``,
``score_pool4``, ``upscore2``, ...), and the blocks are ``block1``..``block5``.

Departures from the paper, all documented here: ``width`` scales VGG16's
channels (``width=64, fc_channels=4096`` is VGG16's size; the default
``width=16, fc_channels=128`` is ~1.7 M parameters with a few classes, more with
many: the score and upsampling layers grow with ``num_classes**2``; it trains on a CPU);
``fc6`` is padded ("same") instead of padding the input by 100; every
upsampling layer (also the last one, which the paper keeps fixed) is learnable;
the ReLU convolutions start from He initialisation, since there are no
ImageNet weights to start from.
"""
import numbers

import numpy as np

from .. import backend, checks
from .. import functional as F
from .. import nn
from .checks import check_image_batch

__all__ = ["FCN", "bilinear_kernel", "VGG_BLOCK_CONVS"]

# Convolutions per block in VGG16; block i has width * (1, 2, 4, 8, 8)[i] channels.
VGG_BLOCK_CONVS = (2, 2, 3, 3, 3)
_BLOCK_WIDTHS = (1, 2, 4, 8, 8)


def bilinear_kernel(channels, kernel_size):
    """Transposed-convolution weights that perform bilinear upsampling, one
    channel at a time: an array of shape ``(channels, channels, k, k)`` whose
    ``[c, c]`` slices are the bilinear "tent" and all others are zero.

    For an even upsampling factor ``f`` use ``k = 2f`` (with stride ``f`` and padding
    ``f/2``; FCN's factors are 2, 8, 16 and 32). Along one axis, tap ``t`` (0..k-1) has weight
    ``1 - |t - centre| / f`` with ``f = ceil(k / 2)`` and
    ``centre = f - 0.5`` for even ``k`` (``f - 1`` for odd ``k``); the 2-D kernel
    is the outer product of two such tents. Each output pixel then receives
    ``1 - distance`` from its two nearest input pixels per axis, which is
    bilinear interpolation. For ``k = 4`` the tent is ``[0.25, 0.75, 0.75, 0.25]``.
    """
    channels = checks.positive_int(channels, "channels", "bilinear_kernel")
    kernel_size = checks.positive_int(kernel_size, "kernel_size", "bilinear_kernel")
    factor = (kernel_size + 1) // 2
    centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    taps = np.arange(kernel_size)
    tent = 1 - np.abs(taps - centre) / factor
    weight = np.zeros((channels, channels, kernel_size, kernel_size))
    weight[np.arange(channels), np.arange(channels)] = np.outer(tent, tent)
    return weight


def _upsampler(channels, factor):
    """A learnable x``factor`` upsampling, initialised to bilinear interpolation.
    Kernel ``2f``, stride ``f``, padding ``f/2``: output size exactly ``f * i``."""
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    xp = backend.get_array_module(layer.weight.data)
    layer.weight.data = xp.asarray(bilinear_kernel(channels, 2 * factor), dtype=layer.weight.dtype)
    return layer


def _zero_init(conv):
    """Start a skip score layer at zero: the skip contributes nothing until learned."""
    xp = backend.get_array_module(conv.weight.data)
    conv.weight.data = xp.zeros_like(conv.weight.data)
    conv.bias.data = xp.zeros_like(conv.bias.data)
    return conv


def _he_init(conv):
    """He (Kaiming) initialisation for a conv followed by ReLU: weights with variance
    ``2 / fan_in`` (here uniform, ``a = 0``), zero bias. PyTorch's default
    (``a = sqrt(5)``, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``) has variance
    ``1 / (3 fan_in)``, a sixth of He's. A conv + ReLU multiplies the mean square of
    its input by ``fan_in * Var(w) / 2``: 1 with He, 1/6 with the default, so the
    signal's RMS would shrink about 2.4x per layer through VGG's 15 ReLU layers
    (measured in tests/test_course_claims.py) and a network trained from scratch
    (the paper starts from ImageNet weights instead) would barely learn."""
    xp = backend.get_array_module(conv.weight.data)
    conv.weight.data = nn.init.kaiming_uniform_array(conv.weight.shape, a=0, dtype=conv.weight.dtype)
    conv.bias.data = xp.zeros_like(conv.bias.data)
    return conv


def _vgg_block(in_channels, out_channels, num_convs):
    """``num_convs`` x (3x3 conv, padding 1, + ReLU); the max-pool is applied in forward."""
    layers = []
    for i in range(num_convs):
        layers += [_he_init(nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1)),
                   nn.ReLU()]
    return nn.Sequential(*layers)


class FCN(nn.Module):
    """Fully convolutional network with a VGG16-style backbone; see the module docstring.

    Arguments: ``num_classes``; ``variant`` ``"32s"``, ``"16s"`` or ``"8s"``;
    ``in_channels``; ``width`` (channels of the first block; the blocks have
    ``width * (1, 2, 4, 8, 8)``; VGG16 is 64); ``fc_channels`` (channels of fc6
    and fc7; default ``8 * width``; VGG16 is 4096); ``dropout`` (probability
    after fc6 and fc7, as in the paper).

    ``forward(x)``: ``(N, in_channels, H, W)`` -> logits ``(N, num_classes, H, W)``,
    for any ``H, W >= 1``.
    """

    def __init__(self, num_classes, variant="8s", in_channels=3, width=16, fc_channels=None, dropout=0.5):
        num_classes, in_channels, width = (
            checks.positive_int(value, name, "FCN")
            for name, value in (("num_classes", num_classes), ("in_channels", in_channels), ("width", width)))
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"FCN: variant must be '32s', '16s' or '8s', got {variant!r}")
        fc_channels = 8 * width if fc_channels is None else fc_channels
        fc_channels = checks.positive_int(fc_channels, "fc_channels", "FCN")
        if isinstance(dropout, (bool, np.bool_)) or not isinstance(dropout, numbers.Real):   # NumPy's floats too
            raise TypeError(f"FCN: dropout must be a probability in [0, 1), got {dropout!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"FCN: dropout must be a probability in [0, 1), got {dropout!r}")
        self.num_classes = num_classes
        self.variant = variant
        self.in_channels = in_channels
        self.width = width
        self.fc_channels = fc_channels
        self.dropout = float(dropout)

        channels = [width * m for m in _BLOCK_WIDTHS]
        # Count the conv weights before building anything: the VGG blocks, fc6 (7x7), fc7 (1x1),
        # score_fr (1x1), the skips' score layers (1x1) and the learned x f upsamplers (C x C x 2f x 2f:
        # FCN-32s's alone holds 4096 C^2 weights).
        weights = sum(9 * (a * c + (n - 1) * c * c)
                      for a, c, n in zip([in_channels] + channels[:-1], channels, VGG_BLOCK_CONVS))
        weights += fc_channels * (49 * channels[4] + fc_channels + num_classes)
        skips, factors = {"32s": ((), (32,)), "16s": ((3,), (2, 16)), "8s": ((3, 2), (2, 2, 8))}[variant]
        weights += num_classes * sum(channels[b] for b in skips) + num_classes ** 2 * sum(4 * f * f for f in factors)
        checks.check_weights(weights, "FCN", f"num_classes={num_classes}, variant={variant!r}, in_channels="
                                             f"{in_channels}, width={width}, fc_channels={fc_channels}")
        self.block1 = _vgg_block(in_channels, channels[0], VGG_BLOCK_CONVS[0])
        self.block2 = _vgg_block(channels[0], channels[1], VGG_BLOCK_CONVS[1])
        self.block3 = _vgg_block(channels[1], channels[2], VGG_BLOCK_CONVS[2])
        self.block4 = _vgg_block(channels[2], channels[3], VGG_BLOCK_CONVS[3])
        self.block5 = _vgg_block(channels[3], channels[4], VGG_BLOCK_CONVS[4])
        # The classifier's fully connected layers, recast as convolutions.
        self.fc6 = _he_init(nn.Conv2d(channels[4], fc_channels, 7, padding=3))
        self.fc7 = _he_init(nn.Conv2d(fc_channels, fc_channels, 1))
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        if variant == "32s":
            self.upscore = _upsampler(num_classes, 32)
        else:
            self.score_pool4 = _zero_init(nn.Conv2d(channels[3], num_classes, 1))
            self.upscore2 = _upsampler(num_classes, 2)
            if variant == "16s":
                self.upscore16 = _upsampler(num_classes, 16)
            else:
                self.score_pool3 = _zero_init(nn.Conv2d(channels[2], num_classes, 1))
                self.upscore_pool4 = _upsampler(num_classes, 2)
                self.upscore8 = _upsampler(num_classes, 8)

    def forward(self, x):
        check_image_batch(x, self.in_channels, "FCN")
        height, width = x.shape[2:]
        # Pad to a multiple of 32 so the five poolings halve exactly (crop offsets 0).
        pad_h, pad_w = -height % 32, -width % 32
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))

        x = F.max_pool2d(self.block1(x), 2, 2)
        x = F.max_pool2d(self.block2(x), 2, 2)
        pool3 = F.max_pool2d(self.block3(x), 2, 2)
        pool4 = F.max_pool2d(self.block4(pool3), 2, 2)
        x = F.max_pool2d(self.block5(pool4), 2, 2)
        x = F.dropout(F.relu(self.fc6(x)), self.dropout, training=self.training)
        x = F.dropout(F.relu(self.fc7(x)), self.dropout, training=self.training)
        score = self.score_fr(x)                                    # 1/32 of the padded input

        if self.variant == "32s":
            score = self.upscore(score)
        else:
            score = self.upscore2(score) + self.score_pool4(pool4)   # 1/16
            if self.variant == "16s":
                score = self.upscore16(score)
            else:
                score = self.upscore_pool4(score) + self.score_pool3(pool3)   # 1/8
                score = self.upscore8(score)
        if pad_h or pad_w:
            score = score[:, :, :height, :width]
        return score
