"""The model zoo: output shapes (odd sizes where the model allows them), the
size rules and their errors, float32 forward + backward, build_model, and
overfitting one fixed toy batch. PyTorch parity lives in test_export.py."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import checks, nn, shapes
from minisegnet import functional as F
from minisegnet.models import FCN, DeepLabV3Plus, PanopticDeepLab, SegNet, UNet, build_model, model_options
from minisegnet.models.deeplab import MobileNetV2Backbone, aspp_valid_tap_fraction, make_divisible
from minisegnet.models.fcn import bilinear_kernel
from minisegnet.models.unet import weight_count


def _input(shape, seed=0, dtype=np.float32):
    return msn.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _output_shape(model, shape):
    with msn.no_grad():
        return model(_input(shape)).shape


# ---------------------------------------------------------------- U-Net ----
@pytest.mark.parametrize("size, expected", [(572, 388), (188, 4)])
def test_unet_valid_paper_sizes_through_the_real_model(size, expected):
    """The paper's size chain, depth 4, with a narrow network so it runs quickly (< 1 s)."""
    model = UNet(in_channels=1, num_classes=2, base_channels=2, depth=4, padding="valid")
    assert _output_shape(model, (1, 1, size, size)) == (1, 2, expected, expected)


def test_unet_valid_smallest_input_depth4():
    """188 is the smallest valid size at depth 4 and gives a 4 x 4 output (default run)."""
    model = UNet(in_channels=1, num_classes=3, base_channels=1, depth=4, padding="valid")
    assert _output_shape(model, (1, 1, 188, 204)) == (1, 3, 4, 20)


@given(depth=st.integers(1, 3), steps=st.tuples(st.integers(0, 3), st.integers(0, 3)),
       up_mode=st.sampled_from(["transpose", "bilinear"]), batch_norm=st.booleans())
@settings(max_examples=8)
def test_unet_valid_output_matches_shapes(depth, steps, up_mode, batch_norm):
    first = shapes.unet_valid_input_sizes(1, 400, depth=depth)[0]
    h, w = (first + s * 2 ** depth for s in steps)
    model = UNet(2, 3, base_channels=2, depth=depth, padding="valid", up_mode=up_mode, batch_norm=batch_norm)
    assert _output_shape(model, (1, 2, h, w)) == (1, 3) + shapes.unet_output_size((h, w), depth=depth)


@pytest.mark.parametrize("size", [570, 190, 187, 100, (188, 190)])
def test_unet_valid_rejects_invalid_sizes_with_the_shapes_message(size):
    model = UNet(in_channels=1, num_classes=2, base_channels=1, depth=4)
    pair = (size, size) if isinstance(size, int) else size
    with pytest.raises(ValueError) as expected:
        shapes.unet_output_size(pair, depth=4)
    with pytest.raises(ValueError) as ours:
        model(_input((1, 1) + pair))
    assert str(ours.value) == str(expected.value)
    assert "nearest valid sizes" in str(ours.value) or "smallest valid size" in str(ours.value)


@given(depth=st.integers(1, 3), mults=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       up_mode=st.sampled_from(["transpose", "bilinear"]))
@settings(max_examples=8)
def test_unet_same_padding_keeps_the_size(depth, mults, up_mode):
    h, w = (m * 2 ** depth for m in mults)
    model = UNet(3, 4, base_channels=2, depth=depth, padding="same", up_mode=up_mode)
    assert _output_shape(model, (2, 3, h, w)) == (2, 4, h, w)


@pytest.mark.parametrize("size", [(30, 32), (32, 36), (33, 33)])
def test_unet_same_padding_rejects_sizes_not_divisible(size):
    model = UNet(3, 2, base_channels=2, depth=3, padding="same")
    with pytest.raises(ValueError, match="U-Net input .* is invalid \\(same padding, depth 3\\)"):
        model(_input((1, 3) + size))


def test_unet_bilinear_and_batch_norm_structure():
    model = UNet(3, 2, base_channels=4, depth=2, padding="same", batch_norm=True, up_mode="bilinear")
    names = dict(model.named_parameters())
    assert names["decoder.1.up.weight"].shape == (8, 16, 1, 1)     # 1x1 conv halving the channels
    assert names["decoder.0.up.weight"].shape == (4, 8, 1, 1)      # decoder.l lands on level l
    assert "encoder.0.conv1.bias" not in names                     # BatchNorm replaces the bias
    assert names["encoder.0.bn1.weight"].shape == (4,)
    assert names["bottleneck.conv2.weight"].shape == (16, 16, 3, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(padding="reflect"), "padding must be 'valid' or 'same'"),
    (dict(up_mode="nearest"), "up_mode must be"),
    (dict(depth=0), "depth must be a positive integer"),
    (dict(base_channels=2.5), "base_channels must be a positive integer"),
])
def test_unet_constructor_errors(kwargs, match):
    kind = TypeError if isinstance(kwargs.get("base_channels"), float) else ValueError    # the wrong kind: TypeError
    with pytest.raises(kind, match=match):
        UNet(**kwargs)


@pytest.mark.parametrize("build", [
    lambda n: UNet(n, n + 1, base_channels=n, depth=n - 1),
    lambda n: SegNet(n, n + 1, base_channels=n, depth=n - 1, convs_per_stage=n - 1),
    lambda n: FCN(n + 1, in_channels=n, width=n, fc_channels=n),
])
def test_models_take_numpy_integers(build):
    """``masks.max() + 1`` is a NumPy integer; docs/guarantees.md promises ints or NumPy integers
    (UNet, SegNet and FCN refused them as not positive integers)."""
    with pytest.raises(TypeError, match="must be a positive integer, got True"):     # a bool is not a count
        build(True)
    ours, twin = build(np.int64(2)), build(2)
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in twin.parameters()]
    assert not any(isinstance(v, np.integer) for v in vars(ours).values())      # stored as Python ints


def test_models_name_the_input_dtype_and_the_cast():
    """An integer image reached conv2d's 'input must be floating point' (no model, no cast); a
    float64 one names the cast to the weights' dtype."""
    for model in (UNet(3, 2, base_channels=2, depth=1, padding="same"), FCN(2, width=2),
                  SegNet(3, 2, base_channels=2, depth=1)):
        name = type(model).__name__
        with pytest.raises(TypeError, match=rf"^{name}: input must be floating point, got dtype uint8 \(images of "
                                            r"bytes: msn.tensor\(images.astype\(np.float32\) / 255\)\)"):
            model(msn.tensor(np.zeros((1, 3, 32, 32), np.uint8)))
        with pytest.raises(TypeError, match=r"got float64 and float32 \(make the input in the weight's dtype: "
                                            r"msn.tensor\(array.astype\(np.float32\)\)\)"):
            model(msn.tensor(np.zeros((1, 3, 32, 32))))


def test_models_reject_wrong_input_channels():
    for model in (UNet(3, 2, base_channels=2, depth=1, padding="same"), FCN(2, width=2),
                  SegNet(3, 2, base_channels=2, depth=1)):
        with pytest.raises(ValueError, match="input must be a Tensor of shape \\(N, 3, H, W\\)"):
            model(_input((1, 2, 16, 16)))


def test_models_reject_a_plain_array_with_a_type_error():
    for model in (UNet(3, 2, base_channels=2, depth=1, padding="same"), FCN(2, width=2),
                  SegNet(3, 2, base_channels=2, depth=1), DeepLabV3Plus(3, 2)):
        with pytest.raises(TypeError, match=f"{type(model).__name__}: input must be a Tensor .* got ndarray"):
            model(np.zeros((1, 3, 16, 16), np.float32))


# ------------------------------------------------------------------ FCN ----
@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("size", [(1, 1), (31, 33), (37, 50), (64, 64)])
def test_fcn_output_has_the_input_size(variant, size):
    model = FCN(3, variant=variant, in_channels=2, width=2, dropout=0.0)
    assert _output_shape(model, (2, 2) + size) == (2, 3) + size


def test_bilinear_kernel_values():
    k = bilinear_kernel(2, 4)
    tent = np.array([0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(k[0, 0], np.outer(tent, tent))
    np.testing.assert_allclose(k[1, 1], np.outer(tent, tent))
    assert not k[0, 1].any() and not k[1, 0].any()
    # Odd kernel: the tent peaks at the centre tap with weight 1.
    np.testing.assert_allclose(bilinear_kernel(1, 3)[0, 0, 1], [0.5, 1.0, 0.5])


@pytest.mark.parametrize("factor", [2, 8])
def test_fcn_upsampler_starts_as_bilinear_interpolation(factor):
    """Away from the border, the x``f`` transposed conv (kernel 2f, stride f, padding
    f/2) with the bilinear init equals interpolate(bilinear, align_corners=False)."""
    model = FCN(2, variant="8s", width=2)
    layer = model.upscore2 if factor == 2 else model.upscore8
    x = _input((1, 2, 5, 6), seed=3, dtype=np.float32)
    ours = layer(x).numpy()
    reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False).numpy()
    assert ours.shape == reference.shape == (1, 2, 5 * factor, 6 * factor)
    inner = slice(factor, -factor)      # the outer half-pixel ring sees zero padding instead of clamping
    np.testing.assert_allclose(ours[..., inner, inner], reference[..., inner, inner], atol=1e-5)
    assert not np.allclose(ours, 0)


def test_fcn_skip_score_layers_start_at_zero_and_variants_have_their_layers():
    names = {v: {n for n, _ in FCN(2, variant=v, width=2).named_parameters()} for v in ("32s", "16s", "8s")}
    assert "upscore.weight" in names["32s"] and "score_pool4.weight" not in names["32s"]
    assert {"upscore2.weight", "upscore16.weight", "score_pool4.weight"} <= names["16s"]
    assert {"upscore2.weight", "upscore_pool4.weight", "upscore8.weight", "score_pool3.weight"} <= names["8s"]
    model = FCN(2, variant="8s", width=2)
    for layer in (model.score_pool4, model.score_pool3):
        assert not layer.weight.numpy().any() and not layer.bias.numpy().any()
    assert model.fc6.weight.shape == (16, 16, 7, 7)      # fc_channels defaults to 8 * width


def test_fcn_dropout_only_in_training():
    model = FCN(2, width=2, dropout=0.5)
    x = _input((2, 3, 32, 32))
    model.eval()
    with msn.no_grad():
        first, second = model(x).numpy(), model(x).numpy()
    np.testing.assert_array_equal(first, second)
    model.train()
    with msn.no_grad():
        third = model(x).numpy()
    assert not np.allclose(first, third)


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="4s"), "variant must be"),
    (dict(width=0), "width must be a positive integer"),
    (dict(dropout=1.0), "dropout must be a probability"),
    (dict(fc_channels=-1), "fc_channels must be a positive integer"),
])
def test_fcn_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FCN(2, **kwargs)


# --------------------------------------------------------------- SegNet ----
@pytest.mark.parametrize("size, depth", [((45, 60), 4), ((37, 37), 3), ((17, 20), 4), ((16, 16), 4), ((3, 5), 1)])
def test_segnet_output_has_the_input_size_odd_sizes_included(size, depth):
    model = SegNet(2, 3, base_channels=2, depth=depth)
    assert _output_shape(model, (2, 2) + size) == (2, 3) + size


def test_segnet_rejects_inputs_smaller_than_two_to_the_depth():
    with pytest.raises(ValueError, match="at least 16 x 16, got 15 x 40"):
        SegNet(3, 2, base_channels=2, depth=4)(_input((1, 3, 15, 40)))


def test_segnet_channels_and_names():
    model = SegNet(3, 5, base_channels=4, depth=5, convs_per_stage=3)
    params = dict(model.named_parameters())
    assert params["encoder.0.0.conv.weight"].shape == (4, 3, 3, 3)
    assert params["encoder.4.2.conv.weight"].shape == (32, 32, 3, 3)     # capped at 8 * base
    assert params["decoder.0.2.conv.weight"].shape == (32, 32, 3, 3)
    assert params["decoder.4.2.conv.weight"].shape == (4, 4, 3, 3)
    assert params["classifier.weight"].shape == (5, 4, 3, 3)
    assert "encoder.0.0.conv.bias" not in params


def test_segnet_decoder_sees_only_indices():
    """The forward equals a hand-built pipeline in which only the pooled maxima, their
    indices and the pre-pool size reach the decoder (no encoder feature map is
    concatenated or added, as U-Net and FCN would)."""
    model = SegNet(1, 2, base_channels=2, depth=1, convs_per_stage=1)
    model.eval()
    x = _input((1, 1, 6, 6), seed=5)
    with msn.no_grad():
        reference = model(x).numpy()
        # Rebuild the same forward by hand: pool, keep indices, unpool at those indices.
        features = model.encoder[0](x)
        pooled, where = F.max_pool2d(features, 2, 2, return_indices=True)
        by_hand = model.classifier(model.decoder[0](F.max_unpool2d(pooled, where, 2, 2,
                                                                   output_size=features.shape[2:])))
    np.testing.assert_allclose(reference, by_hand.numpy(), atol=1e-6)


# ------------------------------------------------------------ DeepLabV3+ ----
def _small_deeplab(**kwargs):
    config = dict(in_channels=3, num_classes=3, width_mult=0.25, aspp_channels=8, low_level_channels=4,
                  decoder_channels=8, dropout=0.0)
    config.update(kwargs)
    return DeepLabV3Plus(**config)


@pytest.mark.parametrize("output_stride, rates, size", [
    (16, (1, 2, 2), (80, 112)),
    (16, (1, 1, 1), (33, 47)),
    (8, (1, 2, 3), (64, 96)),
    (8, (1, 2, 3), (57, 63)),
])
def test_deeplab_output_has_the_input_size(output_stride, rates, size):
    model = _small_deeplab(output_stride=output_stride, atrous_rates=rates)
    assert _output_shape(model, (2, 3) + size) == (2, 3) + size


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("size", [(64, 96), (33, 47)])
def test_deeplab_backbone_strides_match_the_size_arithmetic(output_stride, size):
    model = _small_deeplab(output_stride=output_stride, atrous_rates=(1,))
    with msn.no_grad():
        low, features = model.backbone(_input((1, 3) + size))
    expected_low, expected_features = model.backbone.sizes(size)
    assert low.shape[2:] == expected_low == tuple(-(-s // 4) for s in size)
    assert features.shape[2:] == expected_features == tuple(-(-s // output_stride) for s in size)
    assert low.shape[1] == model.backbone.low_level_channels
    assert features.shape[1] == model.backbone.out_channels


def test_the_dilated_backbone_sees_what_the_strided_one_sees():
    """The page's claim "same weights, same field": the receptive field of the backbone's last
    layer (the stem and every block's 3x3 depthwise conv, the only layers wider than 1x1) is the
    stride-32 network's at output strides 16 and 8, on a map 2x and 4x finer. (Dilating the block
    that gave up its stride too, as this code once did, gave 523 and 539 instead of 491.)"""
    def field(backbone):
        layers = [(3, 2, 1)] + [(3, b.depthwise[0].stride[0], b.depthwise[0].padding[0], b.depthwise[0].dilation[0])
                                for b in backbone.blocks]
        return shapes.receptive_field(layers)[-1]

    fields = {os_: field(MobileNetV2Backbone(3, 0.25, os_)) for os_ in (32, 16, 8)}
    assert {os_: f.size for os_, f in fields.items()} == {32: 491, 16: 491, 8: 491}
    assert {os_: f.jump for os_, f in fields.items()} == {32: 32, 16: 16, 8: 8}


def test_deeplab_dilations_and_residuals():
    os16 = _small_deeplab(output_stride=16, atrous_rates=(1,))
    os8 = _small_deeplab(output_stride=8, atrous_rates=(1,))

    def dilations(model):
        return [block.depthwise[0].dilation[0] for block in model.backbone.blocks]

    def strides(model):
        return [block.depthwise[0].stride[0] for block in model.backbone.blocks]
    # Stages (blocks): 16 (1), 24 (2), 32 (3), 64 (4), 96 (3), 160 (3), 320 (1).
    # the block that gave up its stride keeps the dilation before it; the blocks after get the new one
    assert dilations(os16) == [1] * 14 + [2] * 3
    assert dilations(os8) == [1] * 7 + [2] * 7 + [4] * 3
    assert strides(os16) == [1, 2, 1, 2, 1, 1, 2] + [1] * 10
    assert strides(os8) == [1, 2, 1, 2] + [1] * 13
    # Residual wherever stride is 1 and channels are kept: at full width, n - 1 blocks
    # per stage; at width 0.25 also the first block (8 -> 8 channels after rounding).
    full = DeepLabV3Plus(width_mult=1.0)
    assert [block.use_residual for block in full.backbone.blocks] == [
        False, False, True, False, True, True, False, True, True, True, False, True, True, False, True, True, False]
    assert os16.backbone.blocks[0].use_residual
    assert [m.expand_ratio for m in os16.backbone.blocks][:2] == [1, 6]
    assert not hasattr(os16.backbone.blocks[0], "expand")


def test_deeplab_default_rates_and_widths():
    assert DeepLabV3Plus(output_stride=16).atrous_rates == (6, 12, 18)
    assert DeepLabV3Plus(output_stride=8).atrous_rates == (12, 24, 36)
    model = DeepLabV3Plus()
    assert [b[0].dilation for b in model.aspp.atrous] == [(6, 6), (12, 12), (18, 18)]
    assert model.backbone.out_channels == make_divisible(320 * 0.5) == 160
    assert make_divisible(24 * 0.25) == 8 and make_divisible(96 * 0.75) == 72


def test_deeplab_accepts_the_papers_setting_and_reports_the_valid_taps():
    # DeepLabv3+: a 513 crop at output stride 16 gives a 33x33 map; rates 6, 12, 18 all stay in use.
    model = _small_deeplab(output_stride=16)
    assert model.atrous_rates == (6, 12, 18) and model.backbone.sizes((513, 513))[1] == (33, 33)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fractions = model.check_input_size((513, 513))
    assert {r: round(f, 3) for r, f in fractions.items()} == {6: 0.772, 12: 0.574, 18: 0.405}
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with msn.no_grad():
            assert model(_input((1, 3, 513, 513))).shape == (1, 3, 513, 513)     # and it runs there


@settings(max_examples=25, deadline=None)
@given(rate=st.integers(1, 12), h=st.integers(1, 14), w=st.integers(1, 14))
def test_aspp_valid_tap_fraction_counts_the_taps_a_real_conv_reads(rate, h, w):
    # A dilated 3x3 conv of ones over a map of ones, padded with zeros by the rate:
    # each output sums the taps that land inside the map.
    ones = msn.tensor(np.ones((1, 1, h, w)))
    inside = F.conv2d(ones, msn.tensor(np.ones((1, 1, 3, 3))), padding=rate, dilation=rate).numpy().sum()
    assert np.isclose(aspp_valid_tap_fraction(rate, (h, w)), inside / (9 * h * w))


@pytest.mark.parametrize("output_stride, rates, size, bad_rate", [
    (16, None, (64, 64), 6),          # default rates: a 4 x 4 map, rate 6 reaches past it
    (16, None, (272, 288), 18),       # a 17 x 18 map: 6 and 12 fit, 18 does not on either axis
    (8, (1, 2, 8), (64, 96), 8),      # an 8 x 12 map: rate 8 >= 8 on the height, 12 on the width is fine...
])
def test_deeplab_refuses_a_rate_that_makes_its_branch_a_1x1_conv(output_stride, rates, size, bad_rate):
    model = _small_deeplab(output_stride=output_stride, atrous_rates=rates)
    feature = tuple(-(-s // output_stride) for s in size)
    if bad_rate < max(feature):
        # ... so it degenerates on one axis only: a warning, not an error
        with pytest.warns(UserWarning, match=f"atrous rate {bad_rate} .* is a 1x3 convolution"):
            model.check_input_size(size)
        return
    with pytest.raises(ValueError, match=f"atrous rate {bad_rate} .* on the {feature[0]}x{feature[1]} feature map"
                                         ".* degenerates into a 1x1 convolution \\(valid taps 11%"):
        model.check_input_size(size)
    with pytest.raises(ValueError, match=f"atrous rate {bad_rate}"):
        model(_input((1, 3) + size))


def test_deeplab_rate_error_names_the_smallest_input_that_fits():
    model = _small_deeplab(output_stride=16)
    with pytest.raises(ValueError, match="at least 289x289, or atrous rates <= 3"):
        model.check_input_size((64, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.check_input_size((289, 289))   # the bound it names is enough: a 19x19 map
    with pytest.warns(UserWarning, match="rate 18 .* the 18x19 feature map .* 1x3 convolution"):
        model.check_input_size((288, 289))
    with pytest.raises(ValueError, match="atrous rate 18"):
        model.check_input_size((288, 288))


@pytest.mark.parametrize("kwargs, match", [
    (dict(output_stride=32), "output_stride must be 16 or 8"),
    (dict(atrous_rates=(6, 0)), r"atrous_rates\[1\] must be >= 1, got 0"),
    (dict(output_stride=16.0), "output_stride must be an int, got 16.0"),
    (dict(dropout=False), "dropout must be a number, got False"),
    (dict(atrous_rates=()), "atrous_rates must be a non-empty tuple"),
    (dict(width_mult=0), "width_mult must be a positive finite number"),
    (dict(dropout=-0.1), "dropout must be a probability"),
])
def test_deeplab_constructor_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DeepLabV3Plus(**kwargs)


def test_deeplab_parts_name_what_is_wrong():
    """A reviewer's finds: each of these once failed with a Python-internal message."""
    from minisegnet.models.deeplab import ASPP, InvertedResidual

    with pytest.raises(ValueError, match="ASPP: atrous_rates must be a non-empty tuple"):
        ASPP(8, 8, 6)
    with pytest.raises(TypeError, match="InvertedResidual: expand_ratio must be an int, got 1.5"):
        InvertedResidual(8, 8, 1, 1, 1.5)
    with pytest.raises(ValueError, match="MobileNetV2Backbone: output_stride must be 8, 16 or 32"):
        MobileNetV2Backbone(3, 0.5, 12)
    model = _small_deeplab(atrous_rates=(1, 2, 3))
    assert model.check_input_size(64) == model.check_input_size((64, 64))          # an int is a square
    with pytest.raises(ValueError, match="training needs a batch of at least 2 images, got 1"):
        model(_input((1, 3, 64, 64)))
    model.eval()
    assert model(_input((1, 3, 64, 64))).shape == (1, 3, 64, 64)


# ------------------------------------------------------------ build_model ----
@pytest.mark.parametrize("name, cls, variant", [
    ("unet", UNet, None), ("fcn8s", FCN, "8s"), ("fcn16s", FCN, "16s"), ("fcn32s", FCN, "32s"),
    ("segnet", SegNet, None), ("deeplabv3plus", DeepLabV3Plus, None),
])
def test_build_model_maps_names_to_constructors(name, cls, variant):
    model = build_model(name, 1, 5)
    assert type(model) is cls
    assert model.in_channels == 1 and model.num_classes == 5
    if variant is not None:
        assert model.variant == variant


def test_build_model_passes_keyword_arguments_and_rejects_unknown_names():
    assert build_model("unet", 3, 2, base_channels=8, padding="same").base_channels == 8
    with pytest.raises(ValueError, match="unknown model name 'resnet'; choose one of unet, fcn8s"):
        build_model("resnet", 3, 2)


# ---------------------------------------------- forward + backward, overfit ----
def _tiny_models():
    """name -> (model, input size, Adam learning rate for the overfit test); tiny
    widths so that 300 CPU steps take seconds. The BatchNorm-free FCNs get a lower
    rate: at 1e-2 their ReLUs occasionally all die and the loss stalls."""
    return {
        "unet-same": (UNet(3, 2, base_channels=8, depth=2, padding="same"), (32, 32), 1e-2),
        "unet-valid": (UNet(3, 2, base_channels=4, depth=1, padding="valid", batch_norm=True), (36, 36), 1e-2),
        "unet-bilinear": (UNet(3, 2, base_channels=8, depth=2, padding="same", up_mode="bilinear"), (32, 32), 1e-2),
        "fcn8s": (FCN(2, "8s", width=4, dropout=0.0), (32, 32), 3e-3),
        "fcn16s": (FCN(2, "16s", width=4, dropout=0.0), (32, 32), 3e-3),
        # FCN-32s paints in 32-pixel strokes: its toy target is two 32 x 32 cells (see _toy_batch).
        "fcn32s": (FCN(2, "32s", width=4, dropout=0.0), (64, 32), 3e-3),
        "segnet": (SegNet(3, 2, base_channels=4, depth=2), (32, 32), 1e-2),
        "deeplabv3plus": (_small_deeplab(num_classes=2, output_stride=8, atrous_rates=(1, 2, 2),
                                         aspp_channels=16, decoder_channels=16), (48, 48), 1e-2),
    }


@pytest.mark.parametrize("name", sorted(_tiny_models()))
def test_float32_forward_and_backward_reach_every_parameter(name):
    model, size, _ = _tiny_models()[name]
    x = _input((2, 3) + size)
    logits = model(x)
    assert logits.dtype == np.float32
    target = msn.tensor(np.random.default_rng(1).integers(0, 2, (2,) + logits.shape[2:]))
    F.cross_entropy(logits, target).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.dtype == np.float32 and p.grad.shape == p.shape, pname
        assert np.isfinite(p.grad.numpy()).all(), pname
    assert any(np.abs(p.grad.numpy()).max() > 0 for p in model.parameters())


def _toy_batch(size, seed=0, cells=False):
    """Two images of noise (class 0) with a coloured disc each (class 1), or with
    ``cells`` two 32 x 32 cells of opposite classes, swapped in the second image."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    target = np.zeros((2, h, w), np.int64)
    for i in range(2):
        if cells:
            target[i] = (yy // 32 + xx // 32 + i) % 2
        else:
            cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.2, 0.35) * min(h, w)
            target[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    image = 0.3 * rng.standard_normal((2, 3, h, w)) + (target[:, None] == 1) * np.array([1.0, -0.5, 0.2])[:, None, None]
    return image.astype(np.float32), target


@pytest.mark.parametrize("name", sorted(_tiny_models()))
def test_overfits_one_fixed_batch(name):
    """Adam on one batch: the loss must fall to 10% of its first value within 300 steps."""
    model, size, lr = _tiny_models()[name]
    image, target = _toy_batch(size, cells=name == "fcn32s")
    out_size = model.output_size(size) if isinstance(model, UNet) else size
    top, left = (size[0] - out_size[0]) // 2, (size[1] - out_size[1]) // 2   # valid U-Net: the centre
    target = target[:, top:top + out_size[0], left:left + out_size[1]]
    x, t = msn.tensor(image), msn.tensor(target)
    optimizer = msn.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), t)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if losses[-1] <= 0.1 * losses[0]:
            break
    assert losses[-1] <= 0.1 * losses[0], f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses)} steps"


@pytest.mark.parametrize("make, name", [
    (lambda: FCN(2, width=2, dropout=0.0), "FCN"), (lambda: UNet(3, 2, base_channels=2, depth=2, padding="same"),
                                                     "UNet"),
    (lambda: SegNet(3, 2, base_channels=2, depth=2), "SegNet"), (lambda: _small_deeplab(), "DeepLabV3Plus"),
])
def test_an_image_without_pixels_is_refused_by_name(make, name):
    """A reviewer's find: FCN answered a 0x5 image with 'size must be >= 1, got (0, 32)', a padded
    size the user never passed."""
    with pytest.raises(ValueError, match=rf"{name}: input images must be at least 1x1 pixels, got 0x5"):
        make()(_input((1, 3, 0, 5)))


def test_the_helpers_take_numpy_integers_too():
    np.testing.assert_array_equal(bilinear_kernel(np.int64(2), np.int64(4)), bilinear_kernel(2, 4))
    assert aspp_valid_tap_fraction(np.int64(18), 33) == aspp_valid_tap_fraction(18, 33)
    with pytest.raises(TypeError, match="aspp_valid_tap_fraction: rate must be a positive integer"):
        aspp_valid_tap_fraction(18.0, 33)



def test_fcn_dropout_of_a_wrong_kind_is_a_type_error():
    from minisegnet.models import FCN
    with pytest.raises(TypeError, match=r"FCN: dropout must be a probability in \[0, 1\), got True"):
        FCN(2, dropout=True)
    with pytest.raises(ValueError, match=r"FCN: dropout must be a probability in \[0, 1\), got 1"):
        FCN(2, dropout=1)


def test_predict_pads_a_small_image_until_the_model_takes_it_or_names_the_image():
    """A DeepLab states its size rule (check_input_size): a 1x1 image is mirror-padded past the
    33x33 its rates need, and predicted (it was an error before). A model whose rule shows only
    when it runs: its error names the image's own size and the padding, not the padded input."""
    from minisegnet.predict import image_outputs, predict_image

    model = _small_deeplab(atrous_rates=(1, 2))
    image = np.random.default_rng(0).random((3, 1, 1)).astype(np.float32)
    assert image_outputs(model, image).shape[-2:] == (1, 1)

    class Picky(nn.Module):
        in_channels = 3

        def forward(self, x):
            raise ValueError("it needs 100 pixels")

    with pytest.raises(ValueError, match=r"^predict_image: the 1x2 image, mirror-padded to a multiple of 16 .* "
                                         r"does not fit Picky: it needs 100 pixels"):
        predict_image(Picky(), np.zeros((3, 1, 2), np.float32), multiple=16)     # its own name, H x W
    model.eval()
    model.forward = lambda x: (_ for _ in ()).throw(TypeError("broken inside"))
    with pytest.raises(TypeError, match="^broken inside$"):                    # not re-worded as a size error
        predict_image(model, np.zeros((3, 64, 64), np.float32))


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def _weights_counted_for_the_memory_check(monkeypatch, build):
    """The model ``build()`` makes, and the weight counts it handed to ``checks.check_weights``."""
    counts = []
    real = checks.check_weights
    monkeypatch.setattr(checks, "check_weights", lambda count, *a: counts.append(count) or real(count, *a))
    return build(), counts


def _conv_weights(model):
    """The weights of every Conv2d / ConvTranspose2d (biases and BatchNorm aside)."""
    return sum(m.weight.data.size for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


# -- unet.py
@pytest.mark.parametrize("in_channels, num_classes, base, depth, up_mode", [
    (1, 2, 4, 1, "transpose"), (3, 5, 2, 3, "transpose"), (2, 3, 3, 2, "bilinear"), (1, 1, 1, 4, "bilinear")])
def test_weight_count_is_the_built_models_conv_weights(in_channels, num_classes, base, depth, up_mode):
    # guards the memory pre-check's count: it must be exactly what UNet then builds (its docstring says so)
    model = UNet(in_channels, num_classes, base_channels=base, depth=depth, padding="same", up_mode=up_mode)
    assert weight_count(in_channels, num_classes, base, depth, up_mode) == _conv_weights(model)


def test_unet_3x3_convs_start_with_zero_bias():
    # guards _he_init's "zero bias" (the paper's initialisation), not PyTorch's random default
    model = UNet(1, 2, base_channels=4, depth=2, padding="same")
    biases = [m.conv1.bias.data for m in model.modules() if hasattr(m, "conv1")]
    biases += [m.conv2.bias.data for m in model.modules() if hasattr(m, "conv2")]
    assert len(biases) == 2 * (2 + 1 + 2)
    assert all(np.all(b == 0) for b in biases)


def test_unet_3x3_convs_start_with_he_variance():
    # guards He initialisation (variance 2 / fan_in) against PyTorch's default (1 / (3 fan_in), a sixth)
    model = UNet(1, 2, base_channels=64, depth=1, padding="same")
    w = model.encoder[0].conv2.weight.numpy()       # 64 x 64 x 3 x 3: fan_in 576, 36864 draws
    assert np.var(w) == pytest.approx(2 / 576, rel=0.05)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_unet_batch_norm_must_be_a_bool(value):
    # guards the batch_norm type check: a truthy string or 1 must not silently pick a variant
    with pytest.raises(TypeError, match="batch_norm must be True or False"):
        UNet(batch_norm=value)


# -- segnet.py
@pytest.mark.parametrize("kwargs", [dict(), dict(in_channels=1, num_classes=3, base_channels=4, depth=2,
                                                  convs_per_stage=3), dict(base_channels=2, depth=5, convs_per_stage=1)])
def test_segnet_memory_precheck_counts_its_conv_weights(monkeypatch, kwargs):
    # guards the count the memory pre-check refuses by: encoder and decoder, within 10% of what is built
    model, counts = _weights_counted_for_the_memory_check(monkeypatch, lambda: SegNet(**kwargs))
    built = _conv_weights(model)
    assert counts and counts[0] == pytest.approx(built, rel=0.1)


def test_segnet_takes_the_deepest_depth_allowed():
    # guards the depth limit's boundary: depth == MAX_UNET_DEPTH is allowed (the widths are capped, so it builds)
    model = SegNet(1, 2, base_channels=1, depth=shapes.MAX_UNET_DEPTH)
    assert len(model.encoder) == shapes.MAX_UNET_DEPTH
    with pytest.raises(ValueError, match="deeper than shapes.MAX_UNET_DEPTH"):
        SegNet(1, 2, base_channels=1, depth=shapes.MAX_UNET_DEPTH + 1)


# -- fcn.py
@pytest.mark.parametrize("kwargs", [dict(num_classes=3), dict(num_classes=2, variant="32s", in_channels=1, width=2),
                                    dict(num_classes=5, width=4, fc_channels=64),
                                    dict(num_classes=40, variant="16s", width=2)])
def test_fcn_memory_precheck_counts_every_conv_weight(monkeypatch, kwargs):
    # guards the memory pre-check's count: exactly every conv's weights, the class-dependent score
    # layers and learned upsamplers too (they were left out: FCN-32s's upscore alone is 4096 C^2)
    model, counts = _weights_counted_for_the_memory_check(monkeypatch, lambda: FCN(**kwargs))
    assert counts == [_conv_weights(model)]


def test_fcn_with_many_classes_is_refused_by_its_whole_weight_count(monkeypatch):
    # 66 MiB of "memory". FCN-32s with 64 classes: the VGG blocks and fc6/fc7 are 1.7 million
    # weights (7 MiB), the upscore layer 64 * 64 * 64 * 64 = 16.8 million (64 MiB, under the limit
    # on its own, so no layer refuses itself), together 18.5 million (71 MiB): refused at once,
    # naming the model, before building a layer (it was built)
    monkeypatch.setattr(checks, "memory_bytes", lambda: 66 * 2**20)
    FCN(2, "32s")                                                # two classes fit
    with pytest.raises(checks.TooLargeError, match=r"^FCN: num_classes=64, variant='32s'"):
        FCN(64, "32s")


# -- deeplab.py
def test_make_divisible_rounds_as_mobilenet_v2():
    # guards both halves of the rounding: to the nearest multiple of 8 (at least 8), then up by 8
    # where that lost more than 10% of the width (values worked out by hand from that rule)
    cases = {100: 104, 32 * 0.35: 16, 16 * 0.35: 8, 24 * 0.35: 8, 24 * 0.5: 16, 96 * 0.75: 72,
             20: 24, 19.9: 24, 43.9: 40, 44: 48, 160 * 1.3: 208, 3: 8}
    for width, expected in cases.items():
        assert make_divisible(width) == expected, width


def test_deeplab_twin_agrees_where_relu6_clips(torch):
    # guards ReLU6 (not ReLU) after the expand convs: large eval-mode activations exceed 6
    from minisegnet.export import to_torch
    model = DeepLabV3Plus(1, 2, atrous_rates=(1,), width_mult=0.25, aspp_channels=4, low_level_channels=4,
                          decoder_channels=4, dropout=0.0).to(np.float64).eval()
    x = 30 * np.random.default_rng(0).standard_normal((1, 1, 48, 48))
    ours = model(msn.tensor(x)).numpy()
    theirs = to_torch(model).eval()(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9 * np.abs(theirs).max())


def test_deeplab_aspp_dropout_only_in_training():
    # guards the ASPP dropout's training flag: eval is deterministic, training with p = 0.5 is not
    model = DeepLabV3Plus(1, 2, atrous_rates=(1,), width_mult=0.25, aspp_channels=4, low_level_channels=4,
                          decoder_channels=4, dropout=0.5)
    features = msn.tensor(np.random.default_rng(0).standard_normal(
        (2, model.backbone.out_channels, 4, 4)).astype(np.float32))
    with msn.no_grad():
        model.eval()
        assert np.abs(model.aspp(features).data).max() > 0.1          # something to drop
        assert np.array_equal(model.aspp(features).data, model.aspp(features).data)
        model.train()
        assert not np.array_equal(model.aspp(features).data, model.aspp(features).data)


@pytest.mark.parametrize("dropout", [1, 1.0])
def test_deeplab_refuses_dropout_one(dropout):
    # guards the upper bound of [0, 1): dropout 1 would zero the ASPP features in training
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\)"):
        DeepLabV3Plus(dropout=dropout)


@pytest.mark.parametrize("kwargs", [dict(), dict(in_channels=3, num_classes=5, width_mult=0.25, aspp_channels=8,
                                                  low_level_channels=4, decoder_channels=8),
                                    dict(in_channels=1, width_mult=1.0, aspp_channels=256, low_level_channels=48,
                                         decoder_channels=256)])
def test_deeplab_memory_precheck_counts_its_conv_weights(monkeypatch, kwargs):
    # guards the weight count the memory pre-check refuses by: within 1% of the conv weights built
    model, counts = _weights_counted_for_the_memory_check(monkeypatch, lambda: DeepLabV3Plus(**kwargs))
    built = _conv_weights(model)
    assert counts and counts[0] == pytest.approx(built, rel=0.01)


# -- the documented default widths
def test_segnet_default_widths():
    # guards SegNet's defaults (base_channels 16, depth 4, 2 convs per stage; the module docstring's example)
    model = SegNet()
    assert (model.base_channels, model.depth, model.convs_per_stage) == (16, 4, 2)
    assert [stage[0].conv.out_channels for stage in model.encoder] == [16, 32, 64, 128]


def test_panoptic_deeplab_default_instance_widths():
    # guards the instance branch's documented defaults: half the semantic widths (32, 8, 32), heads of 16
    model = PanopticDeepLab()
    assert (model.instance_aspp_channels, model.instance_low_level_channels, model.instance_decoder_channels,
            model.head_channels) == (32, 8, 32, 16)
    assert model.instance_decoder.reduce[0].out_channels == 8


# -- models/__init__.py
def test_fcn_variant_is_not_an_option_build_model_passes_on():
    # guards model_options' "filled" list: the variant comes from the name (fcn8s), never from an option
    assert model_options("fcn8s") == ["width", "fc_channels", "dropout"]
    with pytest.raises(TypeError, match="fcn8s has no option 'variant'; its options: width, fc_channels, dropout"):
        build_model("fcn8s", 3, 2, variant="32s")


def test_fcn8s_at_initialisation_is_its_scores_upsampled_in_stages_which_one_x32_step_only_approximates():
    """fcn.md, "The model in this library": "The skip score layers start at zero, so at
    initialisation the skips add nothing ... (FCN-8s then upsamples its parent's scores in
    stages, x2, x2 and x8, which bilinear kernels only approximate against one x32 step)"."""
    msn.manual_seed(0)
    model = FCN(3, variant="8s", width=2, fc_channels=4)
    model.eval()
    x = msn.tensor(np.random.default_rng(0).standard_normal((1, 3, 128, 96)).astype(np.float32))
    with msn.no_grad():
        h = F.max_pool2d(model.block2(F.max_pool2d(model.block1(x), 2, 2)), 2, 2)
        h = F.max_pool2d(model.block5(F.max_pool2d(model.block4(F.max_pool2d(model.block3(h), 2, 2)), 2, 2)), 2, 2)
        score = model.score_fr(F.relu(model.fc7(F.relu(model.fc6(h)))))
        staged = model.upscore8(model.upscore_pool4(model.upscore2(score))).numpy()
        assert np.allclose(model(x).numpy(), staged, atol=1e-5)          # the skips add nothing yet
        one_step = FCN(3, variant="32s", width=2, fc_channels=4).upscore(score).numpy()   # the bilinear x32 kernel
    inner = (Ellipsis, slice(32, -32), slice(32, -32))                     # away from the zero-padded border
    assert np.abs(staged[inner] - one_step[inner]).max() > 1e-2                       # not the same map ...
    assert np.corrcoef(staged[inner].ravel(), one_step[inner].ravel())[0, 1] > 0.9     # ... but close to it


def test_fcn_takes_a_numpy_float_dropout_as_deeplab_and_nn_dropout_do():
    """docs/guarantees.md: numbers (``p``) are real numbers; DeepLabV3Plus(dropout=np.float32(0.1))
    and nn.Dropout(np.float32(0.5)) take one, FCN refused it as 'not a probability'."""
    assert DeepLabV3Plus(dropout=np.float32(0.5)).dropout == 0.5
    model = FCN(2, width=1, fc_channels=2, dropout=np.float32(0.5))
    assert model.dropout == 0.5 and type(model.dropout) is float
    with pytest.raises(TypeError, match=r"FCN: dropout must be a probability in \[0, 1\), got np.True_"):
        FCN(2, dropout=np.True_)                     # a NumPy bool is still not a probability


@pytest.mark.parametrize("value", [np.True_, np.False_])
def test_unet_batch_norm_takes_a_numpy_bool(value):
    """docs/guarantees.md: flags are True or False, 'a NumPy bool too' (checks.flag)."""
    model = UNet(1, 2, base_channels=2, depth=1, padding="same", batch_norm=value)
    assert model.batch_norm is bool(value)
    assert hasattr(model.encoder[0], "bn1") == bool(value)
    assert model(msn.tensor(np.zeros((2, 1, 4, 4), np.float32))).shape == (2, 2, 4, 4)
