"""DeepLabV3+ (Chen et al., 2018) on a MobileNetV2-style backbone (Sandler et al., 2018).

Three ideas stacked:

1. **A cheap backbone: inverted residual blocks.** Each block expands the
   channels ``t`` times with a 1x1 convolution (BatchNorm, ReLU6), filters each
   channel on its own with a 3x3 *depthwise* convolution (BatchNorm, ReLU6), and
   projects back down with a 1x1 convolution that has *no* activation (a
   "linear bottleneck": ReLU on a narrow layer would destroy information). When
   the block keeps the size and the channels, its input is added back
   (residual). MobileNetV2's stages (expansion t, channels c, blocks n, stride s)::

       stem conv3 s2 -> 32 | (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1)

   every channel count multiplied by ``width_mult`` (rounded to a multiple of 8).
2. **Atrous (dilated) convolution instead of the last strides.** A classifier
   reaches 1/32 of the input; segmentation wants finer maps. From the stage
   where the total stride would pass ``output_stride`` on, the stride becomes 1
   and the dilation of the 3x3 depthwise convolutions is multiplied by the
   removed stride instead: the receptive field keeps growing while the map
   stops shrinking. ``output_stride=16`` dilates the 160-channel stage (and the
   320 after it) by 2; ``output_stride=8`` dilates the 64 and 96 stages by 2
   and the 160 and 320 stages by 4. The first block of a stage that gave up
   its stride keeps the dilation before it (its input was not made coarser;
   only the maps after it would have been), as DeepLab's and torchvision's
   code do: the receptive field is then exactly the stride-32 network's
   (491 pixels at every output stride, whatever the width; a test checks it).
   (The paper's "multi-grid", unit rates within a block, is not used.)
3. **ASPP and the v3+ decoder.** Atrous Spatial Pyramid Pooling looks at the
   final features at several scales at once: a 1x1 branch, three 3x3 branches
   with atrous rates 6, 12, 18 (doubled at output stride 8, where the map is
   twice as large), and image pooling (global average, 1x1 conv, bilinear back
   to the map size: context from the whole image). The five branches are
   concatenated and fused by a 1x1 conv (then dropout, 0.1 by default, while
   training). The decoder upsamples that bilinearly to the size of the
   stride-4 "low-level" backbone features (x4 at output stride 16, x2 at 8), reduced by a 1x1
   convolution so they do not outvote the ASPP features, concatenates the two,
   refines with two 3x3 depthwise-separable convolutions, and upsamples the
   class scores bilinearly to the input size.

Atrous rates are checked against the feature map before any work. A 3x3
kernel at rate ``r`` with ``padding = r`` reads the map at offsets ``-r, 0, r``
on each axis; on an ``n``-pixel axis the off-centre taps land inside for
``n - r`` of the ``n`` outputs each, so a fraction
``(n + 2 max(0, n - r)) / 3n`` of the taps read the map, and the 2-D fraction
is the product over both axes (``aspp_valid_tap_fraction``). The DeepLabv3
paper's observation is that a branch *degenerates* as the rate approaches the
map size: once ``r >= n`` no off-centre tap ever lands inside, and the 3x3
kernel is a 1x1 convolution (along that axis). So: a rate that is at least the
map size on both axes (the branch is exactly a 1x1 conv, 1/9 of its taps in
use) is a ValueError naming the rate, the map, the fraction and the largest
rate or smallest input that works; a rate at least the map size on one axis
(a 1x3 or 3x1 conv) is a warning. Anything smaller is fine: the paper's own
setting (a 513 crop at output stride 16, a 33x33 map, rates 6, 12, 18) keeps
77%, 57% and 40% of the taps inside. Small toy images need small rates:
pass e.g. ``atrous_rates=(1, 2, 3)``.

A 640 x 640 image, ``width_mult=0.5``, ``output_stride=16``, default channels::

    input          3 x 640 x 640
    stem           conv3 s2 -> 16 x 320                                  stride 2
    blocks 0       (t1) -> 8 x 320
    blocks 1-2     (t6, s2) -> 16 x 160    = low-level features ----+    stride 4
    blocks 3-5     (t6, s2) -> 16 x 80                              |    stride 8
    blocks 6-9     (t6, s2) -> 32 x 40                              |    stride 16
    blocks 10-12   (t6) -> 48 x 40                                  |
    blocks 13-15   (t6, 13: s2 -> s1; 14-15: d2) -> 80 x 40         |    still 16
    block 16       (t6, dilation 2) -> 160 x 40                     |
    ASPP           1x1 | 3x3 r6 | 3x3 r12 | 3x3 r18 | image pool    |
                   -> 5 x 64 x 40 -> cat 320 -> 1x1 -> 64 x 40       |
    decoder        bilinear x4 -> 64 x 160                          |
                   low-level 1x1 -> 16 x 160  <---------------------+
                   cat -> 80 x 160, 2 x sep-conv3 -> 64 x 160
    classifier     1x1 -> num_classes x 160
    upsample       bilinear x4 -> num_classes x 640 x 640

Small images: 64 x 96 at ``output_stride=8`` gives an 8 x 12 map and takes
rates up to 3 (``atrous_rates=(1, 2, 3)``); the low-level map is 16 x 24.
Upsampling goes *to the size* of the low-level map and of the input (not by a
fixed factor), so odd sizes work too. The image-pooling branch and every
BatchNorm need more than one value per channel when training: train with
batches of 2 or more, as in PyTorch.

The paper's widths are ``aspp_channels=256``, ``low_level_channels=48``,
``decoder_channels=256`` on a full-width backbone; the defaults here are a
quarter of the ASPP's and the decoder's (64) and a third of the low-level
projection's (16), on a half-width MobileNetV2, so that it trains on a CPU.
Module names: ``backbone.stem``, ``backbone.blocks.<k>.expand`` (not in the
first block, whose expansion ratio is 1) / ``.depthwise`` / ``.project``
(Sequential conv, BN[, ReLU6]),
``aspp.branch1x1``, ``aspp.atrous.<j>``, ``aspp.image_pool``, ``aspp.project``,
``decoder.reduce``, ``decoder.fuse1`` / ``fuse2``, ``classifier``.
"""
import math

from .. import checks
from .. import functional as F
from .. import nn, shapes
from .checks import check_image_batch

__all__ = ["DeepLabV3Plus", "MobileNetV2Backbone", "InvertedResidual", "ASPP", "make_divisible",
           "MOBILENET_V2_STAGES", "aspp_valid_tap_fraction"]

# (expansion t, output channels c, blocks n, first stride s) for each stage, from the paper.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_LOW_LEVEL_STAGE = 1   # the 24-channel stage ends at stride 4: the decoder's low-level features


def make_divisible(value, divisor=8):
    """Round a scaled channel count to a multiple of ``divisor`` (at least
    ``divisor``), never more than 10% below ``value``: MobileNet's rounding."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, act=None):
    """``Sequential(Conv2d (no bias), BatchNorm2d[, act()])``; keys ``0.weight``, ``1.weight`` ..."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                        dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(out_channels)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand (x ``expand_ratio``) -> 3x3 depthwise (stride, dilation) -> 1x1 linear
    projection; the input is added back when ``stride == 1`` and the channels match."""

    def __init__(self, in_channels, out_channels, stride, dilation, expand_ratio):
        expand_ratio = checks.integer(expand_ratio, "expand_ratio", "InvertedResidual", minimum=1)
        hidden = in_channels * expand_ratio
        self.expand_ratio = expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        if expand_ratio != 1:
            self.expand = conv_bn(in_channels, hidden, 1, act=nn.ReLU6)
        # groups = channels: one 3x3 filter per channel, 9 weights each instead of 9 * hidden.
        self.depthwise = conv_bn(hidden, hidden, 3, stride=stride, padding=dilation, dilation=dilation,
                                 groups=hidden, act=nn.ReLU6)
        self.project = conv_bn(hidden, out_channels, 1)   # linear: no activation

    def forward(self, x):
        y = self.expand(x) if self.expand_ratio != 1 else x
        y = self.project(self.depthwise(y))
        return x + y if self.use_residual else y


class MobileNetV2Backbone(nn.Module):
    """MobileNetV2 feature extractor (no final 1280-channel conv, no classifier).

    ``forward(x)`` returns ``(low_level, features)``: the stride-4 map and the
    map at ``output_stride``. ``out_channels`` and ``low_level_channels`` give
    their channel counts.
    """

    def __init__(self, in_channels=3, width_mult=0.5, output_stride=16):
        if isinstance(output_stride, bool) or output_stride not in (8, 16, 32):
            raise ValueError(f"MobileNetV2Backbone: output_stride must be 8, 16 or 32 (the classifier's: no "
                             f"dilation), got {output_stride!r}")
        stem_channels = make_divisible(32 * width_mult)
        self.stem = conv_bn(in_channels, stem_channels, 3, stride=2, padding=1, act=nn.ReLU6)
        blocks = []
        stride_so_far, dilation = 2, 1
        self.strided_blocks = []   # indices of blocks that still halve the size (for sizes())
        channels = stem_channels
        for stage, (t, c, n, s) in enumerate(MOBILENET_V2_STAGES):
            out_channels = make_divisible(c * width_mult)
            previous = dilation
            if stride_so_far * s > output_stride:
                dilation *= s     # trade the stride for dilation from here on
                s = 1
            else:
                stride_so_far *= s
            for i in range(n):
                if i == 0 and s == 2:
                    self.strided_blocks.append(len(blocks))
                # the block that gave up its stride keeps the dilation before it; the blocks after
                # it, which the stride would have made coarser, get the new one (as DeepLab's code)
                blocks.append(InvertedResidual(channels, out_channels, s if i == 0 else 1,
                                               previous if i == 0 else dilation, t))
                channels = out_channels
            if stage == _LOW_LEVEL_STAGE:
                self.low_level_index = len(blocks) - 1
                self.low_level_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = channels

    def sizes(self, size):
        """``(low_level_size, feature_size)`` for an input ``(h, w)``, from ``shapes``:
        each stride-2 3x3 conv with padding 1 maps ``i`` to ``ceil(i / 2)``."""
        size = shapes.conv2d_output_size(size, 3, stride=2, padding=1)
        low = None
        for index in range(len(self.blocks)):
            if index in self.strided_blocks:
                size = shapes.conv2d_output_size(size, 3, stride=2, padding=1)
            if index == self.low_level_index:
                low = size
        return low, size

    def forward(self, x):
        x = self.stem(x)
        low_level = None
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index == self.low_level_index:
                low_level = x
        return low_level, x


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: 1x1, one 3x3 branch per atrous rate, image
    pooling; concatenated and fused by a 1x1 conv (each conv + BN + ReLU)."""

    def __init__(self, in_channels, out_channels, atrous_rates, dropout=0.1):
        self.atrous_rates = _atrous_rates(atrous_rates, "ASPP")
        self.dropout = dropout
        self.branch1x1 = conv_bn(in_channels, out_channels, 1, act=nn.ReLU)
        # padding = rate keeps the size: the 3x3 kernel spans 2 * rate + 1 pixels.
        self.atrous = nn.ModuleList(conv_bn(in_channels, out_channels, 3, padding=r, dilation=r, act=nn.ReLU)
                                    for r in self.atrous_rates)
        self.image_pool = conv_bn(in_channels, out_channels, 1, act=nn.ReLU)
        self.project = conv_bn((2 + len(self.atrous_rates)) * out_channels, out_channels, 1, act=nn.ReLU)

    def forward(self, x):
        size = x.shape[2:]
        branches = [self.branch1x1(x)] + [branch(x) for branch in self.atrous]
        # Image pooling: one vector per image, broadcast back over the map
        # (bilinear from a 1x1 map copies the value to every pixel).
        pooled = self.image_pool(F.adaptive_avg_pool2d(x, 1))
        branches.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        y = self.project(F.cat(branches, dim=1))
        return F.dropout(y, self.dropout, training=self.training)


def _atrous_rates(rates, op):
    """The ASPP rates as a tuple of positive ints, one per 3x3 branch, or a clear error.
    (A rate may repeat, as in torchvision: the tests use (1, 1, 1) on small maps.)"""
    if isinstance(rates, (str, bytes)) or not isinstance(rates, (tuple, list)) or not rates:
        raise ValueError(f"{op}: atrous_rates must be a non-empty tuple of positive integers, got {rates!r}")
    return tuple(checks.integer(r, f"atrous_rates[{i}]", op, minimum=1) for i, r in enumerate(rates))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ with a MobileNetV2-style backbone; see the module docstring.

    Arguments: ``in_channels``, ``num_classes``, ``output_stride`` (16 or 8: the
    backbone's total stride), ``atrous_rates`` (the ASPP 3x3 rates; default
    ``(6, 12, 18)`` at output stride 16 and ``(12, 24, 36)`` at 8), ``width_mult``
    (MobileNetV2 width multiplier), ``aspp_channels``, ``low_level_channels``
    (width of the reduced stride-4 features), ``decoder_channels``, ``dropout``
    (after the ASPP fusion).

    ``forward(x)``: ``(N, in_channels, H, W)`` -> logits ``(N, num_classes, H, W)``.
    """

    min_train_batch = 2          # images a training batch needs (``check_train_batch``); the trainer checks it

    def __init__(self, in_channels=3, num_classes=2, output_stride=16, atrous_rates=None, width_mult=0.5,
                 aspp_channels=64, low_level_channels=16, decoder_channels=64, dropout=0.1):
        op = "DeepLabV3Plus"
        in_channels, num_classes, aspp_channels, low_level_channels, decoder_channels = (
            checks.integer(value, name, op, minimum=1) for name, value in (
                ("in_channels", in_channels), ("num_classes", num_classes), ("aspp_channels", aspp_channels),
                ("low_level_channels", low_level_channels), ("decoder_channels", decoder_channels)))
        output_stride = checks.integer(output_stride, "output_stride", op)
        if output_stride not in (8, 16):
            raise ValueError(f"{op}: output_stride must be 16 or 8, got {output_stride!r}")
        if atrous_rates is None:
            atrous_rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        atrous_rates = _atrous_rates(atrous_rates, op)
        checks.real(width_mult, "width_mult", op, finite=False)
        if not 0 < width_mult < math.inf:
            raise ValueError(f"{op}: width_mult must be a positive finite number, got {width_mult!r}")
        dropout = checks.real(dropout, "dropout", op)
        if not 0 <= dropout < 1:
            raise ValueError(f"{op}: dropout must be a probability in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.atrous_rates = tuple(atrous_rates)
        self.width_mult = width_mult
        self.aspp_channels = aspp_channels
        self.low_level_channels = low_level_channels
        self.decoder_channels = decoder_channels
        self.dropout = float(dropout)
        checks.check_weights(
            _count_weights(in_channels, num_classes, width_mult, len(self.atrous_rates), aspp_channels,
                           low_level_channels, decoder_channels), "DeepLabV3Plus",
            f"in_channels={in_channels}, num_classes={num_classes}, "
            f"width_mult={width_mult}, aspp_channels={aspp_channels}, low_level_channels={low_level_channels}, "
            f"decoder_channels={decoder_channels}")

        self.backbone = MobileNetV2Backbone(in_channels, width_mult, output_stride)
        self.aspp = ASPP(self.backbone.out_channels, aspp_channels, self.atrous_rates, self.dropout)
        self.decoder = DeepLabV3PlusDecoder(self.backbone.low_level_channels, aspp_channels,
                                            low_level_channels, decoder_channels)
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)

    def check_input_size(self, size, _stacklevel=2, _model="DeepLabV3Plus"):
        """Check every atrous rate against the feature map of an input of ``size`` ``(h, w)``.

        A rate at least the feature map's size on both axes makes its 3x3 branch a
        1x1 convolution: a ``ValueError`` with the valid-tap fraction. At least the
        size on one axis: a ``UserWarning`` (the branch is a 1x3 or 3x1 conv).
        Returns ``{rate: valid-tap fraction}`` (see ``aspp_valid_tap_fraction``).
        ``size``: ``(h, w)`` or one int for a square input. (``_model``: the model the messages
        name, ``PanopticDeepLab`` for its DeepLab.)
        """
        size = shapes.as_pair(size, "size", 1)
        _, (fh, fw) = self.backbone.sizes(size)
        fractions = {}
        for rate in self.atrous_rates:
            fraction = aspp_valid_tap_fraction(rate, (fh, fw))
            fractions[rate] = fraction
            where = (f"atrous rate {rate} (atrous_rates={self.atrous_rates}) on the {fh}x{fw} feature map of a "
                     f"{size[0]}x{size[1]} input at output_stride {self.output_stride}")
            if rate >= fh and rate >= fw:
                # every rate r < ceil(i / output_stride) keeps its off-centre taps: i >= max_rate * os + 1
                smallest = max(self.atrous_rates) * self.output_stride + 1
                largest = min(fh, fw) - 1
                raise ValueError(
                    f"{_model}: {where}: the rate is not smaller than the map, so every off-centre tap of "
                    f"the 3x3 kernel reads zero padding and the branch degenerates into a 1x1 convolution "
                    f"(valid taps {fraction:.0%}, only the centre one). Use inputs of at least "
                    f"{smallest}x{smallest}, or "
                    + (f"atrous rates <= {largest} for this size" if largest >= 1 else
                       "no 3x3 atrous branch fits this size"))
            if rate >= fh or rate >= fw:
                import warnings

                shape = "1x3" if rate >= fh else "3x1"
                smallest = max(self.atrous_rates) * self.output_stride + 1
                warnings.warn(f"{_model}: {where}: the rate is not smaller than the map's "
                              f"{'height' if rate >= fh else 'width'}, so the 3x3 branch is a {shape} convolution "
                              f"(valid taps {fraction:.0%}); inputs at least {smallest} pixels "
                              f"{'high' if rate >= fh else 'wide'} keep its 3x3 taps", UserWarning,
                              stacklevel=_stacklevel)
        return fractions

    def forward(self, x):
        check_image_batch(x, self.in_channels, "DeepLabV3Plus")
        size = tuple(x.shape[2:])
        self.check_input_size(size)
        check_train_batch(self, x, "DeepLabV3Plus")
        low_level, features = self.backbone(x)
        y = self.decoder(self.aspp(features), low_level)
        return F.interpolate(self.classifier(y), size=size, mode="bilinear", align_corners=False)


def check_train_batch(model, x, name):
    """Training needs ``model.min_train_batch`` (2) images a batch: the ASPP's image-pooling branch
    has one value per channel and image, and BatchNorm needs more than one to normalise."""
    if model.training and 0 < x.shape[0] < model.min_train_batch:       # an empty batch maps to an empty one
        raise ValueError(f"{name}: training needs a batch of at least {model.min_train_batch} images, got "
                         f"{x.shape[0]}: the ASPP's image-pooling branch has one value per channel and image, "
                         "and BatchNorm needs more than one to normalise (model.eval() for one image)")


def aspp_valid_tap_fraction(rate, size):
    """The share of a 3x3 ASPP kernel's taps (at ``dilation = padding = rate``) that
    read the feature map rather than its zero padding, over all output positions
    of a map of ``size`` ``(h, w)`` (an int for a square map).

    Per axis of ``n`` pixels the centre tap always lands inside and each of the two
    off-centre taps for ``max(0, n - rate)`` outputs: ``(n + 2 max(0, n - rate)) / 3n``;
    the 2-D fraction is the product over both axes. 1 means every tap reads the map,
    1/9 that the kernel is a 1x1 convolution. The paper's 33x33 map at rate 18: 0.405.
    """
    h, w = shapes.as_pair(size, "size", 1)
    rate = checks.positive_int(rate, "rate", "aspp_valid_tap_fraction")
    per_axis = [(n + 2 * max(0, n - rate)) / (3 * n) for n in (h, w)]
    return per_axis[0] * per_axis[1]


def _count_weights(in_channels, num_classes, width_mult, n_rates, aspp, low, decoder):
    """About how many conv weights DeepLabV3Plus will hold, counted before building it:
    MobileNetV2 (3x3 stem, then per block 1x1 expand, 3x3 depthwise, 1x1 project),
    ASPP (1x1, one 3x3 per rate, image-pool 1x1, fusing 1x1), decoder, classifier."""
    c = make_divisible(32 * width_mult)
    weights = 9 * in_channels * c
    low_channels = None
    for stage, (t, c_stage, n, _) in enumerate(MOBILENET_V2_STAGES):
        c_out = make_divisible(c_stage * width_mult)
        for _ in range(n):
            weights += t * c * (c + 9 + c_out)
            c = c_out
        if stage == _LOW_LEVEL_STAGE:
            low_channels = c
    weights += aspp_and_decoder_weights(c, low_channels, n_rates, aspp, low, decoder)
    return weights + decoder * num_classes


def aspp_and_decoder_weights(backbone_channels, backbone_low_channels, n_rates, aspp, low, decoder):
    """The conv weights of an ASPP (1x1, one 3x3 per rate, image-pool 1x1, fusing 1x1) and a
    decoder (1x1 low-level reduction, two 3x3 depthwise-separable convs) on a backbone's maps:
    ``_count_weights``'s, and Panoptic-DeepLab's instance branch's."""
    weights = aspp * (backbone_channels * (2 + 9 * n_rates) + aspp * (n_rates + 2))
    return weights + backbone_low_channels * low + (aspp + low) * (9 + decoder) + decoder * (9 + decoder)


class DeepLabV3PlusDecoder(nn.Module):
    """Upsample the ASPP output to the low-level map, concatenate with the
    1x1-reduced low-level features, refine with two 3x3 depthwise-separable
    convolutions (each + BN + ReLU)."""

    def __init__(self, backbone_low_channels, aspp_channels, low_level_channels, decoder_channels):
        self.reduce = conv_bn(backbone_low_channels, low_level_channels, 1, act=nn.ReLU)
        self.fuse1 = _separable_bn_relu(aspp_channels + low_level_channels, decoder_channels)
        self.fuse2 = _separable_bn_relu(decoder_channels, decoder_channels)

    def forward(self, x, low_level):
        x = F.interpolate(x, size=low_level.shape[2:], mode="bilinear", align_corners=False)
        x = F.cat([x, self.reduce(low_level)], dim=1)
        return self.fuse2(self.fuse1(x))


def _separable_bn_relu(in_channels, out_channels):
    """``Sequential(DepthwiseSeparableConv2d 3x3 (no bias), BatchNorm2d, ReLU)``."""
    return nn.Sequential(nn.DepthwiseSeparableConv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())
