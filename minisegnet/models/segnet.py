"""SegNet (Badrinarayanan, Kendall and Cipolla, 2017): an encoder-decoder that
upsamples with *pooling indices*.

The lesson is what crosses from the encoder to the decoder. U-Net copies whole
encoder feature maps across (memory: every skip map is kept and concatenated;
FCN adds score maps). SegNet passes **only the indices** of the maxima that
each 2x2 max-pool picked, one integer per pooled value. The decoder's
max-unpool puts each value back at the position its maximum came from and
fills the rest with zeros; the convolutions that follow densify that sparse
map. Boundaries come back where the encoder saw them, at the cost of a few
integers, and the upsampling itself has no weights to learn.

Each encoder stage is ``convs_per_stage`` x (3x3 conv, BatchNorm, ReLU), then a
2x2 max-pool that returns indices. The decoder mirrors it: max-unpool with the
stage's indices, then ``convs_per_stage`` x (3x3 conv, BatchNorm, ReLU), the
last of which narrows to the next shallower stage's width. A final 3x3
convolution (no BatchNorm, no ReLU) gives the class logits. The unpool is
given each stage's pre-pool size as ``output_size``, so odd sizes come back
exactly (a 45-row map pools to 22 rows, and 22 rows could unpool to 44 or 45).

A 45 x 60 image, ``base_channels=16``, ``depth=4`` (channels double per stage,
capped at ``8 * base_channels`` as VGG16's are at 512)::

    input     3 x 45 x 60
    enc 0     2 x conv-BN-ReLU -> 16 x 45 x 60,   pool -> 16 x 22 x 30   indices 0 --+
    enc 1     2 x conv-BN-ReLU -> 32 x 22 x 30,   pool -> 32 x 11 x 15   indices 1 -+|
    enc 2     2 x conv-BN-ReLU -> 64 x 11 x 15,   pool -> 64 x 5 x 7     indices 2 +||
    enc 3     2 x conv-BN-ReLU -> 128 x 5 x 7,    pool -> 128 x 2 x 3    indices 3 |||
    dec 3     unpool (indices 3, size 5 x 7) -> 128 x 5 x 7,                       |||
              conv-BN-ReLU -> 128, conv-BN-ReLU -> 64 x 5 x 7                      |||
    dec 2     unpool (indices 2, size 11 x 15) -> 64 x 11 x 15  <------------------+||
              conv-BN-ReLU -> 64, conv-BN-ReLU -> 32 x 11 x 15                      ||
    dec 1     unpool (indices 1, size 22 x 30) -> 32 x 22 x 30  <-------------------+|
              conv-BN-ReLU -> 32, conv-BN-ReLU -> 16 x 22 x 30                       |
    dec 0     unpool (indices 0, size 45 x 60) -> 16 x 45 x 60  <--------------------+
              conv-BN-ReLU -> 16, conv-BN-ReLU -> 16 x 45 x 60
    classifier conv3 -> num_classes x 45 x 60

The paper's network is VGG16's 13 convolutions (stages of 2, 2, 3, 3, 3) with
64 base channels; here the number of convolutions per stage is one number
(default 2) and the width is small so the model trains on a CPU. The
convolutions before BatchNorm have no bias (BatchNorm's shift replaces it).
Module names: ``encoder.<i>.<j>.conv`` / ``.bn``, ``decoder.<i>.<j>.conv`` /
``.bn``, ``classifier``. The decoder runs from deep to shallow, so ``decoder.0``
is the diagram's "dec 3" (it undoes enc 3's pool) and ``decoder.3`` is "dec 0"
(U-Net numbers its decoder by level instead).
"""
from .. import checks, shapes
from .. import functional as F
from ..functional.pooling import max_unpool2d_of_pooled
from .. import nn
from .checks import check_image_batch

__all__ = ["SegNet", "ConvBNReLU"]


class ConvBNReLU(nn.Module):
    """3x3 convolution (padding 1, no bias), BatchNorm2d, ReLU: size kept."""

    def __init__(self, in_channels, out_channels):
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class SegNet(nn.Module):
    """SegNet encoder-decoder; see the module docstring for the data flow.

    Arguments: ``in_channels``, ``num_classes``, ``base_channels`` (width of the
    first stage; stage ``i`` has ``base_channels * 2**min(i, 3)``), ``depth``
    (number of pool/unpool pairs), ``convs_per_stage`` (conv-BN-ReLU units per
    encoder and per decoder stage).

    ``forward(x)``: ``(N, in_channels, H, W)`` -> logits ``(N, num_classes, H, W)``;
    any ``H, W >= 2**depth`` (every pooled map keeps at least one pixel).
    """

    def __init__(self, in_channels=3, num_classes=2, base_channels=16, depth=4, convs_per_stage=2):
        in_channels, num_classes, base_channels, depth, convs_per_stage = (
            checks.positive_int(value, name, "SegNet") for name, value in (
                ("in_channels", in_channels), ("num_classes", num_classes), ("base_channels", base_channels),
                ("depth", depth), ("convs_per_stage", convs_per_stage)))
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.base_channels = base_channels
        self.depth = depth
        self.convs_per_stage = convs_per_stage

        if depth > shapes.MAX_UNET_DEPTH:
            raise ValueError(f"SegNet: depth={depth} is deeper than shapes.MAX_UNET_DEPTH = {shapes.MAX_UNET_DEPTH} "
                             f"(the input would need at least 2**{depth} pixels per side)")
        widths = [base_channels * 2 ** min(i, 3) for i in range(depth)]
        # Count the 3x3 conv weights before building anything (encoder and decoder alike).
        ins = [in_channels] + widths[:-1]
        weights = 2 * sum(9 * (a * w + (convs_per_stage - 1) * w * w) for a, w in zip(ins, widths))
        checks.check_weights(weights, "SegNet", f"in_channels={in_channels}, base_channels={base_channels}, depth={depth}, "
                                                f"convs_per_stage={convs_per_stage}")
        self.encoder = nn.ModuleList(
            nn.Sequential(*[ConvBNReLU((in_channels if i == 0 else widths[i - 1]) if j == 0 else widths[i],
                                       widths[i]) for j in range(convs_per_stage)])
            for i in range(depth))
        # decoder[0] undoes the deepest pool; its last unit narrows to the next stage's width.
        self.decoder = nn.ModuleList(
            nn.Sequential(*[ConvBNReLU(widths[i], widths[max(i - 1, 0)] if j == convs_per_stage - 1 else widths[i])
                            for j in range(convs_per_stage)])
            for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(widths[0], num_classes, 3, padding=1)

    def forward(self, x):
        check_image_batch(x, self.in_channels, "SegNet")
        height, width = x.shape[2:]
        if min(height, width) < 2 ** self.depth:
            raise ValueError(f"SegNet(depth={self.depth}) pools {self.depth} times by 2, so the input "
                             f"must be at least {2 ** self.depth} x {2 ** self.depth}, got {height} x {width}")
        indices, sizes = [], []
        for stage in self.encoder:
            x = stage(x)
            sizes.append(x.shape[2:])
            x, where = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(where)
        # Only `indices` (and the sizes) cross to the decoder; the feature maps do not.
        for stage, where, size in zip(self.decoder, reversed(indices), reversed(sizes)):
            x = stage(max_unpool2d_of_pooled(x, where, 2, 2, output_size=size))   # our own pool's indices
        return self.classifier(x)
