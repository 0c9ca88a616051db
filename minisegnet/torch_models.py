"""PyTorch twins of ``minisegnet.models``: the same networks written directly
in ``torch.nn``, with the same constructor arguments, the same module names and
so the same state-dict keys.

This module imports ``torch`` at import time; the rest of minisegnet never
imports it (``minisegnet.export`` imports this module inside its functions).
Use ``minisegnet.export.to_torch(model)`` to get a twin holding a trained
model's weights. The twins are written independently of the minisegnet models
(only the architecture is shared), which is what lets the tests use them as an
oracle: same logits, same gradients, same parameter count.
"""
import torch
import torch.nn.functional as TF
from torch import nn

__all__ = ["UNet", "FCN", "SegNet", "DeepLabV3Plus", "PanopticDeepLab", "bilinear_upsampling_weight"]


# ---------------------------------------------------------------- U-Net ----
class _DoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels, padding, batch_norm):
        super().__init__()
        self.batch_norm = batch_norm
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=not batch_norm)
        if batch_norm:
            self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=padding, bias=not batch_norm)
        if batch_norm:
            self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = self.conv1(x)
        x = TF.relu(self.bn1(x) if self.batch_norm else x)
        x = self.conv2(x)
        return TF.relu(self.bn2(x) if self.batch_norm else x)


class _UpBlock(nn.Module):
    def __init__(self, in_channels, out_channels, padding, batch_norm, up_mode):
        super().__init__()
        self.up_mode = up_mode
        if up_mode == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.up = nn.Conv2d(in_channels, out_channels, 1)
        self.conv = _DoubleConv(2 * out_channels, out_channels, padding, batch_norm)

    def forward(self, x, skip):
        if self.up_mode == "transpose":
            x = self.up(x)
        else:
            x = self.up(TF.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        h, w = x.shape[2:]
        top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
        skip = skip[:, :, top:top + h, left:left + w]
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=2, base_channels=64, depth=4, padding="valid",
                 batch_norm=False, up_mode="transpose"):
        super().__init__()
        pad = 0 if padding == "valid" else 1
        widths = [base_channels * 2 ** level for level in range(depth + 1)]
        self.encoder = nn.ModuleList(
            [_DoubleConv(in_channels if i == 0 else widths[i - 1], widths[i], pad, batch_norm) for i in range(depth)])
        self.bottleneck = _DoubleConv(widths[depth - 1], widths[depth], pad, batch_norm)
        self.decoder = nn.ModuleList(
            [_UpBlock(widths[i + 1], widths[i], pad, batch_norm, up_mode) for i in range(depth)])
        self.head = nn.Conv2d(base_channels, num_classes, 1)

    def forward(self, x):
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
            x = TF.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for level in reversed(range(len(self.decoder))):
            x = self.decoder[level](x, skips[level])
        return self.head(x)


# ------------------------------------------------------------------ FCN ----
def bilinear_upsampling_weight(channels, factor):
    """(channels, channels, 2f, 2f) transposed-conv weight: bilinear upsampling by f
    per channel (tap t of 2f weighs 1 - |t - (f - 1/2)| / f along each axis)."""
    taps = torch.arange(2 * factor, dtype=torch.float64)
    tent = 1 - (taps - (factor - 0.5)).abs() / factor
    weight = torch.zeros(channels, channels, 2 * factor, 2 * factor, dtype=torch.float64)
    for c in range(channels):
        weight[c, c] = torch.outer(tent, tent)
    return weight


def _upsampler(channels, factor):
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_upsampling_weight(channels, factor))
    return layer


class FCN(nn.Module):
    def __init__(self, num_classes, variant="8s", in_channels=3, width=16, fc_channels=None, dropout=0.5):
        super().__init__()
        self.variant = variant
        self.dropout = dropout
        fc_channels = 8 * width if fc_channels is None else fc_channels
        channels = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        convs = (2, 2, 3, 3, 3)
        blocks = []
        previous = in_channels
        for c, n in zip(channels, convs):
            layers = []
            for i in range(n):
                layers += [nn.Conv2d(previous if i == 0 else c, c, 3, padding=1), nn.ReLU()]
            blocks.append(nn.Sequential(*layers))
            previous = c
        self.block1, self.block2, self.block3, self.block4, self.block5 = blocks
        self.fc6 = nn.Conv2d(channels[4], fc_channels, 7, padding=3)
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        if variant == "32s":
            self.upscore = _upsampler(num_classes, 32)
        else:
            self.score_pool4 = nn.Conv2d(channels[3], num_classes, 1)
            nn.init.zeros_(self.score_pool4.weight)
            nn.init.zeros_(self.score_pool4.bias)
            self.upscore2 = _upsampler(num_classes, 2)
            if variant == "16s":
                self.upscore16 = _upsampler(num_classes, 16)
            else:
                self.score_pool3 = nn.Conv2d(channels[2], num_classes, 1)
                nn.init.zeros_(self.score_pool3.weight)
                nn.init.zeros_(self.score_pool3.bias)
                self.upscore_pool4 = _upsampler(num_classes, 2)
                self.upscore8 = _upsampler(num_classes, 8)

    def forward(self, x):
        h, w = x.shape[2:]
        x = TF.pad(x, (0, -w % 32, 0, -h % 32))
        x = TF.max_pool2d(self.block1(x), 2)
        x = TF.max_pool2d(self.block2(x), 2)
        pool3 = TF.max_pool2d(self.block3(x), 2)
        pool4 = TF.max_pool2d(self.block4(pool3), 2)
        x = TF.max_pool2d(self.block5(pool4), 2)
        x = TF.dropout(TF.relu(self.fc6(x)), self.dropout, self.training)
        x = TF.dropout(TF.relu(self.fc7(x)), self.dropout, self.training)
        score = self.score_fr(x)
        if self.variant == "32s":
            score = self.upscore(score)
        elif self.variant == "16s":
            score = self.upscore16(self.upscore2(score) + self.score_pool4(pool4))
        else:
            score = self.upscore2(score) + self.score_pool4(pool4)
            score = self.upscore8(self.upscore_pool4(score) + self.score_pool3(pool3))
        return score[:, :, :h, :w]


# --------------------------------------------------------------- SegNet ----
class _ConvBNReLU(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return TF.relu(self.bn(self.conv(x)))


class SegNet(nn.Module):
    def __init__(self, in_channels=3, num_classes=2, base_channels=16, depth=4, convs_per_stage=2):
        super().__init__()
        widths = [base_channels * 2 ** min(i, 3) for i in range(depth)]
        encoder = []
        for i in range(depth):
            first_in = in_channels if i == 0 else widths[i - 1]
            encoder.append(nn.Sequential(*[_ConvBNReLU(first_in if j == 0 else widths[i], widths[i])
                                           for j in range(convs_per_stage)]))
        decoder = []
        for i in reversed(range(depth)):
            last_out = widths[max(i - 1, 0)]
            decoder.append(nn.Sequential(*[_ConvBNReLU(widths[i], last_out if j == convs_per_stage - 1 else widths[i])
                                           for j in range(convs_per_stage)]))
        self.encoder = nn.ModuleList(encoder)
        self.decoder = nn.ModuleList(decoder)
        self.classifier = nn.Conv2d(widths[0], num_classes, 3, padding=1)

    def forward(self, x):
        indices, sizes = [], []
        for stage in self.encoder:
            x = stage(x)
            sizes.append(x.shape[2:])
            x, where = TF.max_pool2d(x, 2, return_indices=True)
            indices.append(where)
        for stage, where, size in zip(self.decoder, reversed(indices), reversed(sizes)):
            x = stage(TF.max_unpool2d(x, where, 2, output_size=size))
        return self.classifier(x)


# --------------------------------------------------------- DeepLabV3+ ------
def _make_divisible(value, divisor=8):
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, act=None):
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False),
              nn.BatchNorm2d(out_channels)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class _InvertedResidual(nn.Module):
    def __init__(self, in_channels, out_channels, stride, dilation, expand_ratio):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.residual = stride == 1 and in_channels == out_channels
        self.expand = _conv_bn(in_channels, hidden, 1, act=nn.ReLU6) if expand_ratio != 1 else None
        self.depthwise = _conv_bn(hidden, hidden, 3, stride, dilation, dilation, hidden, act=nn.ReLU6)
        self.project = _conv_bn(hidden, out_channels, 1)

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class _Backbone(nn.Module):
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
              (6, 320, 1, 1))

    def __init__(self, in_channels, width_mult, output_stride):
        super().__init__()
        channels = _make_divisible(32 * width_mult)
        self.stem = _conv_bn(in_channels, channels, 3, 2, 1, act=nn.ReLU6)
        blocks, stride, dilation = [], 2, 1
        for stage, (t, c, n, s) in enumerate(self.STAGES):
            out = _make_divisible(c * width_mult)
            previous = dilation
            if stride * s > output_stride:
                dilation, s = dilation * s, 1
            else:
                stride *= s
            for i in range(n):
                blocks.append(_InvertedResidual(channels, out, s if i == 0 else 1, previous if i == 0 else dilation, t))
                channels = out
            if stage == 1:
                self.low_level_index, self.low_level_channels = len(blocks) - 1, out
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = channels

    def forward(self, x):
        x = self.stem(x)
        low = None
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.low_level_index:
                low = x
        return low, x


class _ASPP(nn.Module):
    def __init__(self, in_channels, out_channels, rates, dropout):
        super().__init__()
        self.dropout = dropout
        self.branch1x1 = _conv_bn(in_channels, out_channels, 1, act=nn.ReLU)
        self.atrous = nn.ModuleList([_conv_bn(in_channels, out_channels, 3, 1, r, r, act=nn.ReLU) for r in rates])
        self.image_pool = _conv_bn(in_channels, out_channels, 1, act=nn.ReLU)
        self.project = _conv_bn((2 + len(rates)) * out_channels, out_channels, 1, act=nn.ReLU)

    def forward(self, x):
        outs = [self.branch1x1(x)] + [branch(x) for branch in self.atrous]
        pooled = self.image_pool(TF.adaptive_avg_pool2d(x, 1))
        outs.append(TF.interpolate(pooled, size=x.shape[2:], mode="bilinear", align_corners=False))
        return TF.dropout(self.project(torch.cat(outs, dim=1)), self.dropout, self.training)


class _SeparableConv(nn.Module):
    """Depthwise k x k then pointwise 1x1, no bias: keys ``depthwise.weight``, ``pointwise.weight``."""

    def __init__(self, in_channels, out_channels, kernel_size=3):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Decoder(nn.Module):
    def __init__(self, backbone_low_channels, aspp_channels, low_level_channels, decoder_channels):
        super().__init__()
        self.reduce = _conv_bn(backbone_low_channels, low_level_channels, 1, act=nn.ReLU)
        self.fuse1 = nn.Sequential(_SeparableConv(aspp_channels + low_level_channels, decoder_channels),
                                   nn.BatchNorm2d(decoder_channels), nn.ReLU())
        self.fuse2 = nn.Sequential(_SeparableConv(decoder_channels, decoder_channels),
                                   nn.BatchNorm2d(decoder_channels), nn.ReLU())

    def forward(self, x, low):
        x = TF.interpolate(x, size=low.shape[2:], mode="bilinear", align_corners=False)
        return self.fuse2(self.fuse1(torch.cat([x, self.reduce(low)], dim=1)))


class DeepLabV3Plus(nn.Module):
    def __init__(self, in_channels=3, num_classes=2, output_stride=16, atrous_rates=None, width_mult=0.5,
                 aspp_channels=64, low_level_channels=16, decoder_channels=64, dropout=0.1):
        super().__init__()
        if atrous_rates is None:
            atrous_rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.backbone = _Backbone(in_channels, width_mult, output_stride)
        self.aspp = _ASPP(self.backbone.out_channels, aspp_channels, atrous_rates, dropout)
        self.decoder = _Decoder(self.backbone.low_level_channels, aspp_channels, low_level_channels,
                                decoder_channels)
        self.classifier = nn.Conv2d(decoder_channels, num_classes, 1)

    def forward(self, x):
        low, features = self.backbone(x)
        y = self.classifier(self.decoder(self.aspp(features), low))
        return TF.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


# ----------------------------------------------------- Panoptic-DeepLab ----
def _separable_head(in_channels, head_channels, out_channels):
    return nn.Sequential(_SeparableConv(in_channels, head_channels, 5), nn.BatchNorm2d(head_channels), nn.ReLU(),
                         nn.Conv2d(head_channels, out_channels, 1))


class PanopticDeepLab(nn.Module):
    def __init__(self, in_channels=3, num_classes=2, output_stride=16, atrous_rates=None, width_mult=0.5,
                 aspp_channels=64, low_level_channels=16, decoder_channels=64, dropout=0.1,
                 instance_aspp_channels=32, instance_low_level_channels=8, instance_decoder_channels=32,
                 head_channels=16):
        super().__init__()
        self.deeplab = DeepLabV3Plus(in_channels, num_classes, output_stride, atrous_rates, width_mult,
                                     aspp_channels, low_level_channels, decoder_channels, dropout)
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        rates = atrous_rates if atrous_rates is not None else rates
        backbone = self.deeplab.backbone
        self.instance_aspp = _ASPP(backbone.out_channels, instance_aspp_channels, rates, dropout)
        self.instance_decoder = _Decoder(backbone.low_level_channels, instance_aspp_channels,
                                         instance_low_level_channels, instance_decoder_channels)
        self.center_head = _separable_head(instance_decoder_channels, head_channels, 1)
        self.offset_head = _separable_head(instance_decoder_channels, head_channels, 2)

    def forward(self, x):
        low, features = self.deeplab.backbone(x)
        semantic = self.deeplab.classifier(self.deeplab.decoder(self.deeplab.aspp(features), low))
        instance = self.instance_decoder(self.instance_aspp(features), low)
        up = lambda y: TF.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)
        return {"semantic": up(semantic), "center": up(self.center_head(instance)),
                "offset": up(self.offset_head(instance) * 4.0)}
