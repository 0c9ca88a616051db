"""pad and center_crop: PyTorch parity of values and gradients on Hypothesis-drawn
shapes and widths, float64 gradcheck, adjoint identity, hand examples, errors."""
import inspect

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import functional as F
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64


@st.composite
def _pad_case(draw):
    mode = draw(st.sampled_from(["constant", "reflect", "replicate"]))
    two = draw(st.booleans())       # (left, right) on a 3-D input, or (l, r, t, b) on a 4-D one
    shape = (draw(st.integers(1, 2)),) * (1 if two else 2) + (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    h, w = shape[-2:]
    limit_h, limit_w = (h - 1, w - 1) if mode == "reflect" else (4, 4)
    pads = [draw(st.integers(0, limit_w)), draw(st.integers(0, limit_w))]
    if not two:
        pads += [draw(st.integers(0, limit_h)), draw(st.integers(0, limit_h))]
    value = draw(st.sampled_from([0.0, -1.5, 2.0])) if mode == "constant" else 0.0
    return shape, tuple(pads), mode, value, draw(st.integers(0, 2**16))


@given(case=_pad_case())
def test_pad_matches_torch(torch, case):
    shape, pads, mode, value, seed = case
    x_np = np.random.default_rng(seed).standard_normal(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    kwargs = {"value": value} if mode == "constant" else {}
    y = F.pad(x, pads, mode=mode, **kwargs)
    ty = torch.nn.functional.pad(tx, pads, mode=mode, **kwargs)
    assert_close(y, ty)
    # shape formula
    expect = list(shape)
    expect[-1] += pads[0] + pads[1]
    if len(pads) == 4:
        expect[-2] += pads[2] + pads[3]
    assert y.shape == tuple(expect)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad")


@given(case=_pad_case())
def test_pad_adjoint_identity(case):
    """<pad(x), y> == <x, pad^T(y)>, the transpose taken by autograd (value 0: linear)."""
    shape, pads, mode, _, seed = case
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape)
    y = F.pad(t64(x_np, requires_grad=False), pads, mode=mode)
    z_np = rng.standard_normal(y.shape)
    x = t64(np.zeros(shape))
    F.pad(x, pads, mode=mode).backward(z_np)       # x.grad = pad^T(z)
    np.testing.assert_allclose((y.numpy() * z_np).sum(), (x_np * x.grad.numpy()).sum(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_gradcheck(mode):
    x = t64(np.random.default_rng(0).standard_normal((1, 2, 3, 4)))
    assert gradcheck(lambda t: F.pad(t, (2, 1, 1, 2), mode=mode, value=0.5 if mode == "constant" else 0.0), [x])


def test_pad_hand_examples():
    x = msn.tensor(np.array([[1.0, 2.0, 3.0, 4.0]]))
    assert F.pad(x, (2, 2)).numpy().tolist() == [[0, 0, 1, 2, 3, 4, 0, 0]]
    assert F.pad(x, (2, 2), mode="reflect").numpy().tolist() == [[3, 2, 1, 2, 3, 4, 3, 2]]
    assert F.pad(x, (2, 2), mode="replicate").numpy().tolist() == [[1, 1, 1, 2, 3, 4, 4, 4]]


def test_pad_keeps_dtype_and_fill_value():
    x = msn.tensor(np.ones((1, 1, 2, 2), dtype=np.float32))
    y = F.pad(x, (1, 0, 0, 1), value=-7.0)
    assert y.dtype == np.float32
    assert y.numpy()[0, 0].tolist() == [[-7, 1, 1], [-7, 1, 1], [-7, -7, -7]]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_value_none_is_zero_as_torch(torch, mode):
    """torch's default is value=None, meaning 0; passing it explicitly works in every mode."""
    assert inspect.signature(F.pad).parameters["value"].default is None
    assert inspect.signature(torch.nn.functional.pad).parameters["value"].default is None
    x_np = np.random.default_rng(1).standard_normal((1, 2, 3, 4))
    ours = F.pad(msn.tensor(x_np), (1, 2, 2, 1), mode, None).numpy()
    theirs = torch.nn.functional.pad(torch.from_numpy(x_np), (1, 2, 2, 1), mode, None).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(F.pad(msn.tensor(x_np), (1, 2, 2, 1), mode).numpy(), theirs)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"pad": (1, 1), "mode": "circular"}, ValueError, "mode"),
    ({"pad": (1, 1, 1)}, TypeError, "pad"),
    ({"pad": 1}, TypeError, "pad"),
    ({"pad": (1.0, 1)}, TypeError, "pad"),
    ({"pad": (-1, 0)}, ValueError, "negative"),
    ({"pad": (3, 0), "mode": "reflect"}, ValueError, "smaller than the size 3"),
    ({"pad": (0, 0, 0, 2), "mode": "reflect"}, ValueError, "smaller than the size 2"),
    ({"pad": (1, 1), "mode": "reflect", "value": 1.0}, ValueError, "value"),
    ({"pad": (1, 1), "value": "a"}, TypeError, "value"),
])
def test_pad_errors(kwargs, error, words):
    x = msn.tensor(np.zeros((1, 1, 2, 3)))
    with pytest.raises(error, match=words):
        F.pad(x, **kwargs)


def test_pad_needs_enough_axes():
    with pytest.raises(ValueError, match="pads 2 axes"):
        F.pad(msn.tensor(np.zeros(3)), (1, 1, 1, 1))


# ---- center_crop ------------------------------------------------------------------
@given(H=st.integers(1, 9), W=st.integers(1, 9), data=st.data())
def test_center_crop_window_shape_and_gradient(H, W, data):
    h, w = data.draw(st.integers(1, H)), data.draw(st.integers(1, W))
    size = h if (h == w and data.draw(st.booleans())) else (h, w)
    x_np = np.arange(2 * H * W, dtype=np.float64).reshape(2, H, W)
    x = t64(x_np)
    y = F.center_crop(x, size)
    assert y.shape == (2, h, w)
    top, left = (H - h) // 2, (W - w) // 2
    # the window is centred, the odd pixel going to the bottom/right
    assert top == (H - h) - (H - h + 1) // 2 and left == (W - w) - (W - w + 1) // 2
    np.testing.assert_array_equal(y.numpy(), x_np[:, top:top + h, left:left + w])
    y.backward(np.ones(y.shape))
    expect = np.zeros_like(x_np)
    expect[:, top:top + h, left:left + w] = 1
    np.testing.assert_array_equal(x.grad.numpy(), expect)


def test_center_crop_odd_difference_crops_bottom_right_more():
    x = msn.tensor(np.arange(25.0).reshape(5, 5))
    # U-Net-like 5 -> 2: rows/cols 1..2 survive (1 cut on top/left, 2 on bottom/right)
    assert F.center_crop(x, 2).numpy().tolist() == [[6.0, 7.0], [11.0, 12.0]]
    assert F.center_crop(x, (3, 5)).numpy().tolist() == x.numpy()[1:4].tolist()


def test_center_crop_unet_sizes():
    """The original U-Net's skip crops: 64->56, 136->104, 280->200, 568->392 (all even)."""
    for big, small in [(64, 56), (136, 104), (280, 200), (568, 392)]:
        x = msn.tensor(np.zeros((1, 1, big, big), dtype=np.float32))
        assert F.center_crop(x, small).shape == (1, 1, small, small)


def test_center_crop_gradcheck():
    assert gradcheck(lambda t: F.center_crop(t, (2, 3)), [t64(np.random.default_rng(1).standard_normal((1, 2, 5, 4)))])


@pytest.mark.parametrize("size, error, words", [
    ((4, 2), ValueError, "larger"),
    ((2, 5), ValueError, "larger"),
    (0, ValueError, ">= 1"),
    ((1, 2, 3), TypeError, "size"),
    (1.5, TypeError, "size"),
])
def test_center_crop_errors(size, error, words):
    with pytest.raises(error, match=words):
        F.center_crop(msn.tensor(np.zeros((1, 3, 4))), size)


def test_center_crop_needs_two_axes():
    with pytest.raises(ValueError, match="at least 2 axes"):
        F.center_crop(msn.tensor(np.zeros(4)), 2)


@pytest.mark.parametrize("shape, pad", [((2, 0, 3), (0, 0, 1, 1)), ((2, 3, 0), (1, 0)), ((2, 3, 0), (0, 1))])
def test_replicate_of_an_empty_axis_is_refused_by_name(shape, pad):
    with pytest.raises(ValueError, match="^pad: replicate padding needs a non-empty axis"):
        F.pad(msn.tensor(np.zeros(shape)), pad, mode="replicate")


@pytest.mark.parametrize("kind", [np.int64, np.int32, np.int16, np.uint8])
def test_pad_takes_numpy_integers(kind):
    x = msn.tensor(np.arange(12.0).reshape(1, 1, 3, 4))
    ours = F.pad(x, tuple(kind(v) for v in (1, 2, 0, 1))).numpy()
    np.testing.assert_array_equal(ours, F.pad(x, (1, 2, 0, 1)).numpy())
    np.testing.assert_array_equal(F.center_crop(x, (kind(2), kind(2))).numpy(), F.center_crop(x, (2, 2)).numpy())


@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), H=st.integers(1, 9), W=st.integers(1, 9),
       data=st.data())
def test_center_crop_matches_torch_slicing_values_and_gradient(torch, lead, H, W, data):
    h, w = data.draw(st.integers(1, H)), data.draw(st.integers(1, W))
    shape = tuple(lead) + (H, W)
    x_np = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    y = F.center_crop(x, (h, w))
    top, left = (H - h) // 2, (W - w) // 2
    ty = tx[..., top:top + h, left:left + w]
    assert y.shape == tuple(ty.shape) == tuple(lead) + (h, w)
    assert_close(y, ty)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("dtype, value", [(np.uint8, -0.5), (np.uint8, 255.5), (np.int8, 127.5),
                                          (np.int8, -128.9)])
def test_a_fractional_fill_just_outside_an_integer_range_is_refused_as_pytorch(torch, dtype, value):
    """PyTorch compares the number itself with the dtype's range ("value cannot be converted to
    type uint8_t without overflow" for -0.5 and 255.5); checks.fits compared its integer part
    (int(-0.5) = 0 fits), so we padded 0 or 255 where guarantees.md says we refuse as PyTorch."""
    x = np.ones((1, 2), dtype)
    with pytest.raises(RuntimeError, match="without overflow"):
        torch.nn.functional.pad(torch.tensor(x), (1, 1), value=value)
    with pytest.raises(OverflowError, match="pad: value="):
        F.pad(msn.tensor(x), (1, 1), value=value)


def test_a_fractional_fill_inside_an_integer_range_is_truncated_as_pytorch(torch):
    x = np.ones((1, 2), np.uint8)
    theirs = torch.nn.functional.pad(torch.tensor(x), (1, 1), value=0.99).numpy()
    np.testing.assert_array_equal(F.pad(msn.tensor(x), (1, 1), value=0.99).numpy(), theirs)


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_reflect_and_replicate_padding_of_a_bool_tensor_is_refused_as_pytorch(torch, mode):
    """PyTorch: '"reflection_pad2d" not implemented for 'Bool'' (and replication_pad2d); ours padded
    the mask. Either refuse it, or document the acceptance in pad's docstring."""
    x = np.zeros((1, 1, 3, 3), bool)
    with pytest.raises(NotImplementedError):
        torch.nn.functional.pad(torch.tensor(x), (1, 1, 1, 1), mode=mode)
    with pytest.raises(TypeError, match="pad"):
        F.pad(msn.tensor(x), (1, 1, 1, 1), mode=mode)
