"""Panoptic-DeepLab (Cheng et al., CVPR 2020) on our DeepLabV3+.

Panoptic segmentation asks for a class per pixel *and* an id per countable
object. Panoptic-DeepLab answers with one network and no boxes: next to the
semantic segmentation, a **class-agnostic instance branch** predicts, for
every pixel,

* a **centre heatmap**: how likely the pixel is an object's centre (the
  training target is a 2-D Gaussian around each object's centre of mass,
  learned with a mean squared error), and
* an **offset** ``(dy, dx)``: the vector from the pixel to the centre of the
  object it belongs to (learned with an L1 loss on the pixels of objects).

Grouping is then simple geometry (``minisegnet/panoptic.py``): keep the
heatmap's peaks as object centres; send each object pixel to the centre
nearest to ``pixel + offset``; give each object the majority class of its
pixels in the semantic map. "Class-agnostic" means the instance branch never
learns classes: cars and people share one heatmap; the semantic branch says
which is which.

The model composes an unchanged ``DeepLabV3Plus`` (backbone, ASPP, decoder,
classifier: the semantic branch) with a second ASPP and decoder reading the
same backbone features, the paper's dual-ASPP, dual-decoder design::

    image -> MobileNetV2 backbone --features--> deeplab.aspp -> deeplab.decoder -> deeplab.classifier -> semantic
                       |   \\--low-level----------------------^
                       |    \\--features--> instance_aspp -> instance_decoder -+-> center_head -> center (1 ch)
                       \\--low-level-------------------------^                 +-> offset_head -> offset (2 ch)

Each instance head is the paper's: a 5x5 depthwise-separable convolution
(BatchNorm, ReLU) then a 1x1 convolution. All three outputs are bilinearly
upsampled from stride 4 to the input size. The offset head works in cells of
its stride-4 map: its output is multiplied by ``OFFSET_SCALE = 4`` to give
input pixels (as the paper's reference code does). Without that factor the
1x1 convolution must grow four times larger weights to reach offsets of a
car's half-width, and with Adam's bounded steps it takes that much longer.
Widths: the paper's reference configuration gives both ASPPs 256 channels,
the instance decoder 128 (half the semantic decoder's 256) and the heads 32
(a quarter of the instance decoder). The defaults here start from
``DeepLabV3Plus``'s CPU-sized widths (ASPP 64, low-level 16, decoder 64) and
make every width of the instance branch half the semantic one's (ASPP 32,
low-level 8, decoder 32), with heads of 16 (half the instance decoder): the
decoder ratio is the paper's, the ASPP and head ratios are not.
(Simplified from the paper: one low-level skip at stride 4, where the paper
also adds stride 8.)

``forward(x)`` returns a dict of Tensors, each ``(N, ., H, W)``:
``"semantic"`` (class logits, ``num_classes`` channels), ``"center"`` (1
channel, raw: the MSE target lies in [0, 1]) and ``"offset"`` (2 channels,
``dy`` then ``dx``, in input pixels). Module names: ``deeplab.*`` (exactly a
``DeepLabV3Plus``'s), ``instance_aspp``, ``instance_decoder``,
``center_head``, ``offset_head``.
"""
from .. import checks
from .. import functional as F
from .. import nn
from .checks import check_image_batch
from .deeplab import (ASPP, DeepLabV3Plus, DeepLabV3PlusDecoder, _count_weights, aspp_and_decoder_weights,
                      check_train_batch)

__all__ = ["PanopticDeepLab", "OFFSET_SCALE"]

OFFSET_SCALE = 4.0     # offsets come out of the head in stride-4 cells; x4 gives input pixels


def _head(in_channels, head_channels, out_channels):
    """The paper's prediction head: 5x5 depthwise-separable conv + BN + ReLU, then a 1x1 conv.
    Keys ``0.depthwise.weight``, ``0.pointwise.weight``, ``1.*`` (BatchNorm), ``3.weight``, ``3.bias``."""
    return nn.Sequential(nn.DepthwiseSeparableConv2d(in_channels, head_channels, 5, padding=2, bias=False),
                         nn.BatchNorm2d(head_channels), nn.ReLU(), nn.Conv2d(head_channels, out_channels, 1))


class PanopticDeepLab(nn.Module):
    """A ``DeepLabV3Plus`` plus a class-agnostic instance branch; see the module docstring.

    Arguments: those of ``DeepLabV3Plus`` (``in_channels``, ``num_classes``,
    ``output_stride``, ``atrous_rates``, ``width_mult``, ``aspp_channels``,
    ``low_level_channels``, ``decoder_channels``, ``dropout``), passed to it
    unchanged, and the instance branch's widths: ``instance_aspp_channels``,
    ``instance_low_level_channels``, ``instance_decoder_channels``,
    ``head_channels`` (the hidden width of the centre and offset heads).
    The instance ASPP uses the same atrous rates and dropout.

    ``forward(x)``: ``(N, in_channels, H, W)`` -> ``{"semantic": (N, num_classes, H, W),
    "center": (N, 1, H, W), "offset": (N, 2, H, W)}``.
    """

    min_train_batch = 2          # as DeepLabV3Plus: its ASPPs pool each image to one value per channel

    def __init__(self, in_channels=3, num_classes=2, output_stride=16, atrous_rates=None, width_mult=0.5,
                 aspp_channels=64, low_level_channels=16, decoder_channels=64, dropout=0.1,
                 instance_aspp_channels=32, instance_low_level_channels=8, instance_decoder_channels=32,
                 head_channels=16):
        # ints (NumPy's too) >= 1, checked as DeepLabV3Plus checks its widths
        instance_aspp_channels, instance_low_level_channels, instance_decoder_channels, head_channels = (
            checks.integer(value, name, "PanopticDeepLab", minimum=1) for name, value in (
                ("instance_aspp_channels", instance_aspp_channels),
                ("instance_low_level_channels", instance_low_level_channels),
                ("instance_decoder_channels", instance_decoder_channels), ("head_channels", head_channels)))
        # The semantic branch, and the backbone both branches read: a DeepLabV3+ as it is.
        try:
            self.deeplab = DeepLabV3Plus(in_channels, num_classes, output_stride, atrous_rates, width_mult,
                                         aspp_channels, low_level_channels, decoder_channels, dropout)
        except (TypeError, ValueError) as error:        # its checks, named by the model being made
            raise type(error)(str(error).replace("DeepLabV3Plus", "PanopticDeepLab", 1)) from None
        for name in ("in_channels", "num_classes", "output_stride", "atrous_rates", "width_mult",
                     "aspp_channels", "low_level_channels", "decoder_channels", "dropout"):
            setattr(self, name, getattr(self.deeplab, name))
        self.instance_aspp_channels = instance_aspp_channels
        self.instance_low_level_channels = instance_low_level_channels
        self.instance_decoder_channels = instance_decoder_channels
        self.head_channels = head_channels

        backbone = self.deeplab.backbone
        # The whole model's weights, counted before the instance branch is built (the DeepLabV3+
        # counted its own before building itself): its ASPP and decoder, and two 5x5 separable heads.
        heads = 2 * (25 + head_channels) * instance_decoder_channels + 3 * head_channels
        checks.check_weights(
            _count_weights(self.in_channels, self.num_classes, self.width_mult, len(self.atrous_rates),
                           self.aspp_channels, self.low_level_channels, self.decoder_channels)
            + aspp_and_decoder_weights(backbone.out_channels, backbone.low_level_channels, len(self.atrous_rates),
                                       instance_aspp_channels, instance_low_level_channels,
                                       instance_decoder_channels) + heads, "PanopticDeepLab",
            f"aspp_channels={self.aspp_channels}, decoder_channels={self.decoder_channels}, instance_aspp_channels="
            f"{instance_aspp_channels}, instance_low_level_channels={instance_low_level_channels}, "
            f"instance_decoder_channels={instance_decoder_channels}, head_channels={head_channels}")
        self.instance_aspp = ASPP(backbone.out_channels, instance_aspp_channels, self.atrous_rates, self.dropout)
        self.instance_decoder = DeepLabV3PlusDecoder(backbone.low_level_channels, instance_aspp_channels,
                                                     instance_low_level_channels, instance_decoder_channels)
        self.center_head = _head(instance_decoder_channels, head_channels, 1)
        self.offset_head = _head(instance_decoder_channels, head_channels, 2)

    def check_input_size(self, size):
        """``DeepLabV3Plus.check_input_size``: both ASPPs read the same feature map."""
        return self.deeplab.check_input_size(size, _stacklevel=3, _model="PanopticDeepLab")   # warnings: our caller

    def forward(self, x):
        check_image_batch(x, self.in_channels, "PanopticDeepLab")
        size = tuple(x.shape[2:])
        self.check_input_size(size)
        check_train_batch(self, x, "PanopticDeepLab")
        low_level, features = self.deeplab.backbone(x)          # computed once, read by both branches
        semantic = self.deeplab.classifier(self.deeplab.decoder(self.deeplab.aspp(features), low_level))
        instance = self.instance_decoder(self.instance_aspp(features), low_level)
        center, offset = self.center_head(instance), self.offset_head(instance) * OFFSET_SCALE
        return {name: F.interpolate(out, size=size, mode="bilinear", align_corners=False)
                for name, out in (("semantic", semantic), ("center", center), ("offset", offset))}
