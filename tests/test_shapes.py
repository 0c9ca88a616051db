"""Shape arithmetic (minisegnet.shapes): the conv-arithmetic relationships as
Hypothesis properties, the inverses, U-Net sizes, receptive fields, and the
error messages. Pure integers, so hundreds of examples cost milliseconds."""
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import functional as F, nn, shapes

# Pure-integer properties are cheap: draw many more examples than the default profile.
many = settings(max_examples=300, deadline=None)

kernels = st.integers(1, 7)
strides = st.integers(1, 5)
dilations = st.integers(1, 4)
paddings = st.integers(0, 6)
sizes = st.integers(1, 200)


# ---- conv-arithmetic relationships ---------------------------------------
@many
@given(i=sizes, k=kernels, d=dilations)
def test_same_padding_keeps_size_at_stride_1(i, k, d):
    # 'same' needs an odd effective kernel to pad symmetrically: d(k-1) even.
    if d * (k - 1) % 2:
        k += 1
    p = d * (k - 1) // 2
    assert shapes.conv2d_output_size(i, k, 1, p, d) == i
    assert shapes.conv2d_output_size(i, k, 1, "same", d) == i


@many
@given(i=sizes, k=kernels, d=dilations)
def test_full_padding_adds_d_times_k_minus_1(i, k, d):
    p = d * (k - 1)
    assert shapes.conv2d_output_size(i, k, 1, p, d) == i + d * (k - 1)


@many
@given(i=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_stride_ambiguity_groups_of_s_inputs(i, k, s, p, d):
    """i .. i+s-1 all give one conv output exactly when i + 2p - d(k-1) - 1 is a multiple of s."""
    span = d * (k - 1) + 1
    if span > i + 2 * p:
        return  # the kernel does not fit; covered by the error tests
    outs = {shapes.conv2d_output_size(j, k, s, p, d) for j in range(i, i + s)}
    aligned = (i + 2 * p - d * (k - 1) - 1) % s == 0
    assert (len(outs) == 1) == aligned
    if aligned:
        assert shapes.conv2d_input_sizes(outs.pop(), k, s, p, d) == [j for j in range(i, i + s) if j >= 1]


@many
@given(i=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_input_sizes_are_exactly_the_preimage(i, k, s, p, d):
    if d * (k - 1) + 1 > i + 2 * p:
        return
    o = shapes.conv2d_output_size(i, k, s, p, d)
    found = shapes.conv2d_input_sizes(o, k, s, p, d)
    assert i in found and len(found) <= s
    assert all(shapes.conv2d_output_size(j, k, s, p, d) == o for j in found)
    # and nothing just outside the list maps to o
    for j in (min(found) - 1, max(found) + 1):
        if j >= 1 and d * (k - 1) + 1 <= j + 2 * p:
            assert shapes.conv2d_output_size(j, k, s, p, d) != o


@many
@given(i=sizes, k=kernels, s=strides, p=paddings, d=dilations)
def test_transpose_with_right_output_padding_inverts_conv(i, k, s, p, d):
    if d * (k - 1) + 1 > i + 2 * p:
        return
    o = shapes.conv2d_output_size(i, k, s, p, d)
    op = shapes.conv_transpose2d_output_padding(o, i, k, s, p, d)
    assert 0 <= op < s
    assert shapes.conv_transpose2d_output_size(o, k, s, p, op, d) == i


@many
@given(h=sizes, w=sizes, k=kernels, s=strides, p=paddings)
def test_inverses_on_pairs_work_per_axis(h, w, k, s, p):
    if k > min(h, w) + 2 * p:
        return
    oh, ow = shapes.conv2d_output_size((h, w), k, s, p)
    heights, widths = shapes.conv2d_input_sizes((oh, ow), k, s, p)
    assert h in heights and w in widths
    op = shapes.conv_transpose2d_output_padding((oh, ow), (h, w), k, s, p)
    assert shapes.conv_transpose2d_output_size((oh, ow), k, s, p, op) == (h, w)


def test_output_padding_out_of_range_states_the_reachable_range():
    with pytest.raises(ValueError, match=r"target=65 .*restores sizes 63 to 64"):
        shapes.conv_transpose2d_output_padding(32, 65, 3, stride=2, padding=1)


def test_output_padding_range_matches_pytorch(torch):
    """PyTorch's ConvTranspose2d(output_size=...) accepts exactly m .. m+s-1."""
    for k, s, p, d in [(3, 2, 1, 1), (3, 1, 0, 3), (4, 3, 1, 2), (2, 2, 0, 1)]:
        m = torch.nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, dilation=d)
        x = torch.zeros(1, 1, 5, 5)
        for target in range(1, 40):
            try:
                torch_op = m._output_padding(x, [target, target], [s, s], [p, p], [k, k], 2, [d, d])[0]
            except ValueError:
                torch_op = None
            try:
                ours = shapes.conv_transpose2d_output_padding(5, target, k, s, p, d)
            except ValueError:
                ours = None
            assert ours == torch_op, (k, s, p, d, target)


def test_input_sizes_errors_name_the_argument():
    with pytest.raises(ValueError, match="out must be >= 1"):
        shapes.conv2d_input_sizes(0, 3)
    with pytest.raises(TypeError, match="kernel_size"):
        shapes.conv2d_input_sizes(4, "3")
    with pytest.raises(ValueError, match="no input size gives out=1"):
        shapes.conv2d_input_sizes(1, 1, padding=5)
    with pytest.raises(ValueError, match="target must be >= 1"):
        shapes.conv_transpose2d_output_padding(4, 0, 3)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        shapes.conv_transpose2d_output_padding(4, 8, 3, stride=0)


# ---- U-Net -------------------------------------------------------------------
PAPER_DOWN = [572, 570, 568, 284, 282, 280, 140, 138, 136, 68, 66, 64, 32, 30, 28]
PAPER_UP = [56, 54, 52, 104, 102, 100, 200, 198, 196, 392, 390, 388]
PAPER_CROPS = [(64, 56), (136, 104), (280, 200), (568, 392)]


def test_unet_572_trace_matches_the_paper_number_by_number():
    rows = shapes.unet_trace(572)
    assert rows[0] == ("input", "input", 572, 572, 0)
    path = [r.size for r in rows if not r.operation.startswith("crop")]
    assert path[:len(PAPER_DOWN)] == PAPER_DOWN
    assert path[len(PAPER_DOWN):-1] == PAPER_UP
    assert rows[-1] == ("head", "conv 1x1", 388, 388, 0)
    assert [(r.size_in, r.size) for r in rows if r.operation.startswith("crop")] == PAPER_CROPS
    # each crop sits right after the up-conv it matches, and takes its skip from the same level
    for r, before in zip(rows[1:], rows):
        if r.operation.startswith("crop"):
            assert before.operation == "up-conv 2x2" and before.size == r.size
            level = int(r.stage.split(".")[1])
            assert r.stage == f"decoder.{level}" and r.level == level
            assert r.operation == f"crop skip from encoder.{level}"
    # each row's input is the previous row's output (except the crops, which read the skip)
    chain = [r for r in rows if not r.operation.startswith("crop")]
    assert all(b.size_in == a.size for a, b in zip(chain, chain[1:]))
    pools = [r for r in rows if r.operation == "max-pool 2x2"]
    assert [r.stage for r in pools] == ["encoder.0", "encoder.1", "encoder.2", "encoder.3"]
    assert [r.level for r in pools] == [1, 2, 3, 4]          # the level each pool goes down to
    # level l works at 2**-l of the input's scale (up to the border the convs eat)
    for r in rows:
        assert 572 // 2 ** r.level - 2 * 92 // 2 ** r.level <= r.size <= 572 // 2 ** r.level


@many
@given(i=st.integers(1, 3000))
def test_unet_output_is_input_minus_184_exactly_on_valid_sizes(i):
    if i % 16 == 12 and i >= 188:
        assert shapes.unet_output_size(i) == i - 184
    else:
        with pytest.raises(ValueError, match=f"U-Net input {i} is invalid"):
            shapes.unet_output_size(i)


@many
@given(h=st.integers(1, 600), w=st.integers(1, 600), depth=st.integers(1, 5),
       padding=st.sampled_from(["valid", "same"]))
def test_unet_sizes_agree_with_a_brute_force_walk(h, w, depth, padding):
    """Independent reference: conv2d_output_size and max_pool2d_output_size step by step."""
    def walk(i):
        p = 1 if padding == "same" else 0
        skips = []
        for _ in range(depth):
            for _ in range(2):
                if i + 2 * p < 3:
                    return None
                i = shapes.conv2d_output_size(i, 3, padding=p)
            if i % 2:
                return None
            skips.append(i)
            i = shapes.max_pool2d_output_size(i, 2)
        for _ in range(2):
            if i + 2 * p < 3:
                return None
            i = shapes.conv2d_output_size(i, 3, padding=p)
        for skip in reversed(skips):
            i = shapes.conv_transpose2d_output_size(i, 2, stride=2)
            assert skip >= i
            for _ in range(2):
                if i + 2 * p < 3:
                    return None
                i = shapes.conv2d_output_size(i, 3, padding=p)
        return i

    expected = (walk(h), walk(w))
    valid = shapes.unet_valid_input_sizes(1, 600, depth, padding)
    assert (h in valid, w in valid) == (expected[0] is not None, expected[1] is not None)
    if None in expected:
        with pytest.raises(ValueError, match="U-Net input"):
            shapes.unet_output_size((h, w), depth, padding)
    else:
        assert shapes.unet_output_size((h, w), depth, padding) == expected
        if padding == "same":
            assert expected == (h, w) and h % 2 ** depth == 0


def test_unet_valid_sizes_of_the_original():
    assert shapes.unet_valid_input_sizes(1, 600) == list(range(188, 601, 16))
    assert shapes.unet_valid_input_sizes(560, 580) == [572]
    assert shapes.unet_valid_input_sizes(573, 587) == []
    assert shapes.unet_valid_input_sizes(1, 100, padding="same") == [16, 32, 48, 64, 80, 96]


def test_unet_invalid_size_message():
    with pytest.raises(ValueError) as e:
        shapes.unet_output_size(570)
    msg = str(e.value)
    assert "U-Net input 570 is invalid" in msg
    assert "encoder.1 (level 1) would max-pool an odd size 279" in msg
    assert "nearest valid sizes are 556 and 572" in msg
    with pytest.raises(ValueError, match=r"input 100 is invalid.*the smallest valid size is 188"):
        shapes.unet_output_size(100)
    with pytest.raises(ValueError, match=r"572x570 \(width 570\) is invalid.*556 and 572"):
        shapes.unet_output_size((572, 570))
    with pytest.raises(ValueError, match=r"input 40 is invalid \(same padding.*encoder.3 \(level 3\) .*odd size 5.*32 and 48"):
        shapes.unet_output_size(40, padding="same")


def test_unet_pair_trace_and_same_padding():
    rows = shapes.unet_trace((572, 588))
    assert rows[-1].size == (388, 404)
    assert shapes.unet_output_size(64, padding="same") == 64
    assert shapes.unet_output_size((32, 48), depth=4, padding="same") == (32, 48)
    same = shapes.unet_trace(64, depth=2, padding="same")
    assert [r.size for r in same if r.operation == "max-pool 2x2"] == [32, 16]
    assert all(r.size_in == r.size for r in same if "skip" in r.operation)


def test_unet_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="depth must be an int >= 1, got 0"):
        shapes.unet_output_size(572, depth=0)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        shapes.unet_output_size(572, padding="full")
    with pytest.raises(ValueError, match="size must be >= 1"):
        shapes.unet_output_size(0)
    with pytest.raises(TypeError, match="size must be an int or a pair"):
        shapes.unet_trace("572")
    with pytest.raises(ValueError, match="high must be an int >= low=10"):
        shapes.unet_valid_input_sizes(10, 5)
    with pytest.raises(ValueError, match="low must be an int >= 1"):
        shapes.unet_valid_input_sizes(0, 5)


# ---- receptive field ------------------------------------------------------
def _vgg16():
    layers = []
    for block, convs in enumerate([2, 2, 3, 3, 3], start=1):
        layers += [(f"conv{block}_{c}", 3, 1, 1) for c in range(1, convs + 1)]
        layers.append((f"pool{block}", 2, 2))
    return layers


def test_two_3x3_convs_see_5_and_three_see_7():
    rows = shapes.receptive_field([("a", 3), ("b", 3), ("c", 3)])
    assert [(r.name, r.size, r.jump) for r in rows] == [("a", 3, 1), ("b", 5, 1), ("c", 7, 1)]
    assert [r.start for r in rows] == [1, 2, 3]           # valid convs: the first output is centred further in
    assert [r.start for r in shapes.receptive_field([(3, 1, 1), (3, 1, 1)])] == [0, 0]   # 'same' stays put


def test_vgg16_receptive_fields():
    rows = {r.name: r for r in shapes.receptive_field(_vgg16())}
    expected = {"conv1_2": 5, "pool1": 6, "conv2_2": 14, "pool2": 16, "conv3_3": 40, "pool3": 44,
                "conv4_3": 92, "pool4": 100, "conv5_3": 196, "pool5": 212}
    assert {name: rows[name].size for name in expected} == expected
    assert [rows[f"pool{b}"].jump for b in range(1, 6)] == [2, 4, 8, 16, 32]
    assert rows["pool5"].start == 15.5   # centre of the first 2x2 window of windows: (0 + 31) / 2


def test_alexnet_receptive_fields():
    layers = [("conv1", 11, 4, 2), ("pool1", 3, 2), ("conv2", 5, 1, 2), ("pool2", 3, 2),
              ("conv3", 3, 1, 1), ("conv4", 3, 1, 1), ("conv5", 3, 1, 1), ("pool5", 3, 2)]
    assert [r.size for r in shapes.receptive_field(layers)] == [11, 19, 51, 67, 99, 131, 163, 195]
    assert shapes.receptive_field(layers)[-1].jump == 32


@many
@given(layers=st.lists(st.tuples(kernels, strides, paddings, dilations), min_size=1, max_size=6),
       data=st.data())
def test_receptive_field_is_the_span_of_a_brute_force_dependency_walk(layers, data):
    """Independent reference: map an output index back through each layer's window by hand."""
    rows = shapes.receptive_field(layers)
    for depth in range(1, len(layers) + 1):
        lo = hi = 0   # output pixel 0 of layer `depth`, walked back to input coordinates
        for k, s, p, d in reversed(layers[:depth]):
            lo, hi = lo * s - p, hi * s - p + d * (k - 1)
        assert rows[depth - 1].size == hi - lo + 1
        assert rows[depth - 1].start == (lo + hi) / 2


def test_receptive_field_pairs_and_same_padding():
    # ('same' needs stride 1, as in conv2d and PyTorch: the stride is a layer of its own here)
    rows = shapes.receptive_field([("a", (3, 1)), ("s", 1, (2, 1)), ("b", 3, 1, "same", (1, 2))])
    assert rows[-1].size == (7, 5) and rows[-1].jump == (2, 1)
    # 'same' padding moves only the start: h valid 3 puts the centre at 1, 'same' 3 keeps it;
    # w 1 then 'same' (k=3, d=2, p=2) keeps 0 (a padding from the other axis's dilation gave (1, 1))
    assert rows[-1].start == (1, 0)
    dilated = shapes.receptive_field([("d", 3, 1, "same", 4)])
    assert dilated[0].size == 9 and dilated[0].start == 0


def test_receptive_field_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"layers\[1\] stride must be >= 1"):
        shapes.receptive_field([("a", 3), ("b", 3, 0)])
    with pytest.raises(TypeError, match=r"layers\[0\] must be a tuple"):
        shapes.receptive_field([3])
    with pytest.raises(TypeError, match="layers must be a sequence"):
        shapes.receptive_field(3)
    with pytest.raises(TypeError, match=r"layers\[0\] must give kernel_size"):
        shapes.receptive_field([("a", 3, 1, 0, 1, 9)])


def test_square_pair_error_names_the_size_once():
    with pytest.raises(ValueError, match=r"U-Net input 570x570 is invalid \(valid padding, depth 4\): "
                                         r"encoder.1 \(level 1\) would max-pool an odd size 279; nearest valid sizes are 556 and 572"):
        shapes.unet_trace((570, 570))


@pytest.mark.parametrize("k, d", [(2, 1), (4, 1), (2, 3), (4, 2), (3, 1), (3, 2), (5, 1)])
def test_same_padding_start_is_where_the_conv_puts_the_field(k, d):
    """receptive-field.md: ``start`` is "the input coordinate of the first output's field centre",
    and padding may be "same". Independent reference: the rows a gradient reaches from one interior
    output pixel (all-ones weights, so nothing cancels). The conv pads d(k-1)//2 on top, the odd
    pixel at the bottom, so for even d(k-1) the centre is half a pixel below the output's index.
    BUG REPRODUCTION: fails on the current code for (2, 1), (4, 1), (2, 3) (start 0, measured 0.5)."""
    n, at = 15, 7
    x = msn.tensor(np.ones((1, 1, n, n)), requires_grad=True)
    y = F.conv2d(x, msn.tensor(np.ones((1, 1, k, k))), padding="same", dilation=d)
    y[0, 0, at, at].backward()
    rows = np.flatnonzero(x.grad.numpy()[0, 0].any(axis=1))
    row = shapes.receptive_field([("c", k, 1, "same", d)])[0]
    assert rows.max() - rows.min() + 1 == row.size
    assert (rows.min() + rows.max()) / 2 - at == row.start


@pytest.mark.parametrize("size", [0, -5, (5, 0)])
def test_same_padding_checks_the_input_size_as_any_padding(size):
    """padding='same' returned an int size unchecked (0 -> 0, -5 -> -5); any other padding, and a
    pair, refuse a size below 1."""
    with pytest.raises(ValueError, match="must be >= 1"):
        shapes.conv2d_output_size(size, 3, padding="same")
    assert shapes.conv2d_output_size(7, 3, padding="same") == 7


def test_receptive_field_refuses_same_padding_with_a_stride():
    """As conv2d (and PyTorch) refuse padding='same' for a strided convolution; the old code
    returned numbers for a layer that cannot exist."""
    with pytest.raises(ValueError, match=r"layers\[0\]: padding='same' needs stride 1"):
        shapes.receptive_field([("a", 3, 2, "same")])


def test_receptive_field_gives_every_row_in_pairs_when_any_layer_uses_a_pair():
    """The docstring's rule; the rows before the first pair-valued layer used to stay ints."""
    rows = shapes.receptive_field([("c", 3), ("p", (2, 2), 2)])
    assert rows[0] == ("c", (3, 3), (1, 1), (1, 1)) and rows[1].size == (4, 4)


def test_a_scale_factor_past_any_array_is_a_clear_error():
    """1e308 made math.floor's bare 'cannot convert float infinity to integer'."""
    with pytest.raises(ValueError, match=r"scale_factor=1e\+308 makes size 5 into inf pixels"):
        shapes.interpolate_output_size(5, scale_factor=1e308)
    with pytest.raises(ValueError, match="^interpolate: .*more than any array holds"):
        F.interpolate(msn.tensor(np.ones((1, 1, 5, 5), np.float32)), scale_factor=1e308)


NUMPY_INTS = [np.int8, np.int16, np.uint8, np.uint16, np.uint32, np.uint64, np.longlong, np.intc]


@pytest.mark.parametrize("kind", NUMPY_INTS, ids=lambda t: t.__name__)
def test_every_numpy_integer_is_a_size(kind):
    expected = 120                                  # fits every kind, int8 included
    size = kind(expected)
    assert shapes.conv2d_output_size(size, 3) == expected - 2
    assert shapes.conv2d_output_size(32, kind(3), stride=kind(2), padding=kind(1)) == 16
    assert shapes.max_pool2d_output_size(size, kind(2)) == expected // 2
    assert shapes.receptive_field([(kind(3), kind(1), kind(1))])[-1].size == 3
    assert shapes.unet_output_size(kind(44), depth=kind(2)) == 4
    assert shapes.unet_valid_input_sizes(kind(40), kind(60), depth=kind(2)) == [44, 48, 52, 56, 60]
    assert shapes.unet_receptive_fields(kind(44), depth=kind(2)) == shapes.unet_receptive_fields(44, depth=2)


@pytest.mark.parametrize("kind", NUMPY_INTS, ids=lambda t: t.__name__)
def test_layers_take_every_numpy_integer_as_a_size(kind):
    x = msn.tensor(np.zeros((1, 1, 8, 8), np.float32))
    assert nn.Conv2d(1, 1, kind(3), padding=kind(1))(x).shape == (1, 1, 8, 8)
    assert F.max_pool2d(x, kind(2)).shape == (1, 1, 4, 4)
    assert F.interpolate(x, size=kind(4)).shape == (1, 1, 4, 4)
    assert F.center_crop(x, kind(4)).shape == (1, 1, 4, 4)


@pytest.mark.parametrize("bad", [True, False, (True, 2), (3, False)])
def test_a_bool_is_not_a_size(bad):
    with pytest.raises(TypeError):
        shapes.as_pair(bad, "size", 1)
    assert not shapes._is_int(True) and shapes._is_int(np.uint16(3))


@pytest.mark.parametrize("call", [
    lambda: shapes.unet_trace(572, depth="4"),
    lambda: shapes.unet_trace(572, depth=4.0),
    lambda: shapes.unet_output_size(572, depth=None),
    lambda: shapes.unet_receptive_fields(572, depth="4"),
    lambda: shapes.unet_valid_input_sizes("1", 600),
    lambda: shapes.unet_valid_input_sizes(1, 600.0),
    lambda: shapes.unet_valid_input_sizes(1, None),
], ids=["trace-depth-str", "trace-depth-float", "output-depth-none", "fields-depth-str", "valid-low-str",
        "valid-high-float", "valid-high-none"])
def test_unet_arguments_of_the_wrong_kind_are_type_errors(call):
    with pytest.raises(TypeError):
        call()


def test_unet_arguments_of_the_right_kind_out_of_range_stay_value_errors():
    with pytest.raises(ValueError, match="depth must be an int >= 1, got 0"):
        shapes.unet_trace(572, depth=0)
    with pytest.raises(ValueError, match="low must be an int >= 1"):
        shapes.unet_valid_input_sizes(0, 5)
    with pytest.raises(ValueError, match="high must be an int >= low=10"):
        shapes.unet_valid_input_sizes(10, 5)


@pytest.mark.parametrize("size", [(1, 1, 2.0, 2), (1, 1, 2.5, 2), (1, "a", 2, 2)],
                         ids=["float", "fraction", "str"])
def test_affine_grid_output_shape_of_non_int_sizes_is_a_type_error(size):
    # grid_sample_output_shape((1, 1, 4, 4), (1, "a", 2, 2)) is already a TypeError; PyTorch's
    # affine_grid refuses a float size with a TypeError too. Today: ValueError.
    with pytest.raises(TypeError, match=r"affine_grid"):
        shapes.affine_grid_output_shape(size)
    with pytest.raises(ValueError, match=r"four ints >= 1"):     # the right kind, out of range: unchanged
        shapes.affine_grid_output_shape((1, 1, 0, 2))


def test_a_size_past_any_float_with_a_scale_factor_is_a_clear_error():
    """As test_a_scale_factor_past_any_array_is_a_clear_error, from the size's side: an int size
    beyond the largest float made Python's bare 'OverflowError: int too large to convert to float'
    (i * scale_factor overflows before the isinf check at shapes.py:229)."""
    with pytest.raises(ValueError, match="scale_factor"):
        shapes.interpolate_output_size(10**400, scale_factor=0.5)
    with pytest.raises(ValueError, match="in width"):
        shapes.interpolate_output_size((4, 10**400), scale_factor=(1, 0.5))


@pytest.mark.parametrize("call, message", [
    (lambda: shapes.unet_trace(572, depth="4"), r"^depth must be an int >= 1, got '4'"),
    (lambda: shapes.unet_trace(572, depth=4.0), r"^depth must be an int >= 1, got 4\.0"),
    (lambda: shapes.unet_output_size(572, depth=None), r"^depth must be an int >= 1, got None"),
    (lambda: shapes.unet_valid_input_sizes("1", 600), r"^low must be an int, got '1'"),
    (lambda: shapes.unet_valid_input_sizes(1, 600.0), r"^high must be an int, got 600\.0"),
    (lambda: shapes.unet_valid_input_sizes(1, None), r"^high must be an int, got None"),
], ids=["trace-depth-str", "trace-depth-float", "output-depth-none", "valid-low-str", "valid-high-float",
        "valid-high-none"])
def test_unet_arguments_of_the_wrong_kind_are_type_errors_naming_the_argument(call, message):
    """The library's own TypeError naming the argument, not whatever TypeError a later comparison or
    range() happens to raise ('<' not supported between 'str' and 'int')."""
    with pytest.raises(TypeError, match=message):
        call()


def test_unet_valid_input_sizes_of_a_one_size_range():
    """high == low is a range of one size (high must be >= low, not > low)."""
    assert shapes.unet_valid_input_sizes(572, 572) == [572]
    assert shapes.unet_valid_input_sizes(570, 570) == []


# ---- adaptive pooling, pad and center_crop: their formulas against the ops and PyTorch ----------
size_or_none = st.one_of(st.none(), st.integers(1, 12))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), out=st.one_of(st.integers(1, 12), st.tuples(size_or_none, size_or_none)))
def test_adaptive_avg_pool2d_output_size_is_the_ops_and_torchs(torch, h, w, out):
    expected = shapes.adaptive_avg_pool2d_output_size((h, w), out)
    if isinstance(out, tuple):
        assert expected == tuple(i if o is None else o for i, o in zip((h, w), out))
    x = np.zeros((1, 2, h, w), np.float32)
    assert F.adaptive_avg_pool2d(msn.tensor(x), out).shape == (1, 2) + expected
    assert tuple(torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), out).shape) == (1, 2) + expected


@settings(max_examples=80, deadline=None)
@given(h=st.integers(0, 9), w=st.integers(0, 9), pad=st.one_of(st.tuples(*[st.integers(0, 4)] * 2),
                                                                  st.tuples(*[st.integers(0, 4)] * 4)),
       mode=st.sampled_from(["constant", "reflect", "replicate"]))
def test_pad_output_size_is_the_ops_and_torchs(torch, h, w, pad, mode):
    """o = before + i + after per padded axis, PyTorch's order (last axis first); where a mode's
    limit refuses the pads, both libraries refuse them."""
    size = shapes.pad_output_size((h, w), pad)
    assert size == ((pad[2] + h + pad[3]) if len(pad) == 4 else h, pad[0] + w + pad[1])
    if len(pad) == 2:
        assert shapes.pad_output_size(w, pad) == size[1]           # an int size is the width alone
    x = np.zeros((1, 2, h, w), np.float32)
    # (PyTorch pads one axis of a 4-D input only in constant mode; a 3-D input in every mode)
    x_torch = x if len(pad) == 4 or mode == "constant" else x[0]
    try:
        torch_shape = tuple(torch.nn.functional.pad(torch.tensor(x_torch), pad, mode=mode).shape)
    except (RuntimeError, ValueError, IndexError):
        with pytest.raises(ValueError):
            F.pad(msn.tensor(x), pad, mode=mode)
        return
    assert torch_shape[-2:] == size
    assert F.pad(msn.tensor(x), pad, mode=mode).shape == (1, 2) + size


@settings(max_examples=80, deadline=None)
@given(H=st.integers(1, 12), W=st.integers(1, 12), data=st.data())
def test_center_crop_offset_is_the_centred_window_the_op_keeps(H, W, data):
    h, w = data.draw(st.integers(1, H)), data.draw(st.integers(1, W))
    top, left = shapes.center_crop_offset((H, W), (h, w))
    for i, c, near in ((H, h, top), (W, w, left)):
        far = i - c - near                           # what the window leaves on the far side
        assert near >= 0 and far - near in (0, 1)    # centred; an odd difference cuts the far side more
    assert shapes.center_crop_offset(H, h) == top
    x = np.arange(2 * H * W, dtype=np.float32).reshape(2, H, W)
    np.testing.assert_array_equal(F.center_crop(msn.tensor(x), (h, w)).numpy(), x[:, top:top + h, left:left + w])


@pytest.mark.parametrize("call, error, words", [
    (lambda: shapes.adaptive_avg_pool2d_output_size((4, 4), 0), ValueError, "output_size must be >= 1"),
    (lambda: shapes.adaptive_avg_pool2d_output_size((4, 4), (2, 2, 2)), TypeError, "output_size"),
    (lambda: shapes.adaptive_avg_pool2d_output_size(4, (2, 2)), TypeError, "one axis"),
    (lambda: shapes.adaptive_avg_pool2d_output_size(4, (None, 2)), TypeError, "one axis"),
    (lambda: shapes.adaptive_avg_pool2d_output_size(0, 2), ValueError, "input size must be >= 1"),
    (lambda: shapes.pad_output_size((4, 4), (1, -1)), ValueError, "negative"),
    (lambda: shapes.pad_output_size((4, 4), (1, 1, 1)), TypeError, "(left, right)"),
    (lambda: shapes.pad_output_size((4, 4), (1.0, 1)), TypeError, "ints"),
    (lambda: shapes.pad_output_size(4, (1, 1, 1, 1)), ValueError, "give (h, w)"),
    (lambda: shapes.pad_output_size((4, -1), (1, 1)), ValueError, "size must be >= 0"),
    (lambda: shapes.pad_output_size("4", (1, 1)), TypeError, "size must be an int"),
    (lambda: shapes.center_crop_offset((4, 4), (5, 2)), ValueError, "in height, crop 5 is larger than the size 4"),
    (lambda: shapes.center_crop_offset((4, 4), 0), ValueError, "crop must be >= 1"),
    (lambda: shapes.center_crop_offset(4, (2, 2)), TypeError, "one axis"),
])
def test_adaptive_pad_and_crop_formulas_refuse_bad_arguments_by_name(call, error, words):
    with pytest.raises(error, match=re.escape(words)):
        call()
