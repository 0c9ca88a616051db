"""Shape arithmetic (minisegnet.shapes): the conv-arithmetic relationships as
Hypothesis properties, the inverses, U-Net sizes, receptive fields, and the
error messages. Pure integers, so hundreds of examples cost milliseconds."""
import pytest
from hypothesis import given, settings, strategies as st

from minisegnet import shapes

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
    with pytest.raises(ValueError, match=r"target=65 .*produces sizes 63 to 64"):
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
