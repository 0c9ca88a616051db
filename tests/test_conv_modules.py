"""nn.Conv2d, nn.ConvTranspose2d, nn.DepthwiseSeparableConv2d: parity with torch.nn after
copying the weights (all padding modes, output_size=), PyTorch's init bounds, errors."""
import inspect
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import nn
from helpers import as_torch, assert_close


def _copy_into_torch(torch, ours, theirs):
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr_path = theirs
            for part in name.split("."):
                getattr_path = getattr(getattr_path, part)
            getattr_path.copy_(torch.tensor(p.numpy()))


def _check_module(torch, ours, theirs, x_np, seed, **call):
    """Forward and input/parameter gradients of ``ours`` and ``theirs`` agree (float64)."""
    ours.to(np.float64)
    theirs.double()
    _copy_into_torch(torch, ours, theirs)
    x = msn.tensor(x_np, requires_grad=True)
    tx = as_torch(torch, x_np)
    y, ty = ours(x, **call), theirs(tx, **call)
    assert_close(y, ty, what="output")
    g = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad input")
    for name, p in ours.named_parameters():
        tp = dict(theirs.named_parameters())[name]
        assert_close(p.grad, tp.grad, what=f"grad {name}")


def _pairs(low, high):
    """(height, width) pairs that may differ: a mix-up of the two axes shows."""
    return st.tuples(st.integers(low, high), st.integers(low, high))


@given(mode=st.sampled_from(["zeros", "reflect", "replicate"]), k=_pairs(1, 4),
       s=_pairs(1, 2), p=_pairs(0, 2), d=_pairs(1, 2), groups=st.sampled_from([1, 2]),
       bias=st.booleans(), h=st.integers(7, 9), w=st.integers(7, 9), seed=st.integers(0, 2**16))
def test_conv2d_module_matches_torch(torch, mode, k, s, p, d, groups, bias, h, w, seed):
    ours = nn.Conv2d(4, 6, k, s, p, d, groups, bias, padding_mode=mode)
    theirs = torch.nn.Conv2d(4, 6, k, s, p, d, groups, bias, padding_mode=mode)
    x = np.random.default_rng(seed).standard_normal((2, 4, h, w))
    _check_module(torch, ours, theirs, x, seed + 1)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("k, d", [(3, 1), (4, 1), (2, 3), ((2, 3), (1, 2))])
def test_conv2d_same_padding_module_matches_torch(torch, mode, k, d):
    ours = nn.Conv2d(2, 3, k, padding="same", dilation=d, padding_mode=mode)
    theirs = torch.nn.Conv2d(2, 3, k, padding="same", dilation=d, padding_mode=mode)
    x = np.random.default_rng(0).standard_normal((1, 2, 7, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch: even 'same' kernels copy the input
        _check_module(torch, ours, theirs, x, 1)


@given(k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 1), d=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), bias=st.booleans(), h=st.integers(2, 5), w=st.integers(2, 5),
       extra=st.tuples(st.integers(0, 2), st.integers(0, 2)), seed=st.integers(0, 2**16))
def test_conv_transpose2d_module_with_output_size_matches_torch(torch, k, s, p, d, groups, bias, h, w, extra, seed):
    ours = nn.ConvTranspose2d(4, 6, k, s, p, groups=groups, bias=bias, dilation=d)
    theirs = torch.nn.ConvTranspose2d(4, 6, k, s, p, groups=groups, bias=bias, dilation=d)
    smallest = [(i - 1) * s - 2 * p + d * (k - 1) + 1 for i in (h, w)]
    if min(smallest) < 1:
        return
    target = [smallest[a] + min(extra[a], s - 1) for a in (0, 1)]   # every reachable size
    x = np.random.default_rng(seed).standard_normal((2, 4, h, w))
    _check_module(torch, ours, theirs, x, seed + 1, output_size=target)
    assert ours(msn.tensor(x), output_size=target).shape[2:] == tuple(target)


def test_conv_transpose2d_module_without_output_size_matches_torch(torch):
    ours = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
    _check_module(torch, ours, theirs, np.random.default_rng(0).standard_normal((1, 3, 4, 5)), 1)


def test_conv_transpose2d_output_size_full_shape_and_unreachable():
    up = nn.ConvTranspose2d(2, 1, 2, stride=2)
    x = msn.tensor(np.zeros((1, 2, 5, 5), np.float32))
    assert up(x, output_size=(1, 1, 10, 11)).shape == (1, 1, 10, 11)
    with pytest.raises(ValueError, match="unreachable"):
        up(x, output_size=(12, 10))
    with pytest.raises(ValueError, match="unreachable"):
        up(x, output_size=(9, 10))
    with pytest.raises(TypeError, match="output_size"):
        up(x, output_size=10)


@pytest.mark.parametrize("size", [(1, 10, 10), (1, 1, 1, 10, 10)])
def test_conv_transpose2d_output_size_has_2_or_4_entries_as_in_torch(torch, size):
    """3 or 5 entries were accepted (their last two read as H, W); torch refuses them."""
    up, twin = nn.ConvTranspose2d(2, 1, 2, stride=2), torch.nn.ConvTranspose2d(2, 1, 2, stride=2)
    with pytest.raises(ValueError, match=r"^ConvTranspose2d: output_size must have 2 elements \(H, W\) or 4"):
        up(msn.tensor(np.zeros((1, 2, 5, 5), np.float32)), output_size=size)
    with pytest.raises((ValueError, RuntimeError)):
        twin(torch.zeros(1, 2, 5, 5), output_size=size)


def test_conv_transpose2d_unreachable_output_size_names_the_layer_and_the_argument():
    up = nn.ConvTranspose2d(2, 1, 2, stride=2)
    with pytest.raises(ValueError, match=r"^ConvTranspose2d: output_size=\(12, 10\) is unreachable \(height\)"):
        up(msn.tensor(np.zeros((1, 2, 5, 5), np.float32)), output_size=(12, 10))


def test_depthwise_separable_matches_torch_and_counts_parameters(torch):
    ours = nn.DepthwiseSeparableConv2d(4, 6, 3, padding=1)
    theirs = torch.nn.Sequential()
    theirs.add_module("depthwise", torch.nn.Conv2d(4, 4, 3, padding=1, groups=4))
    theirs.add_module("pointwise", torch.nn.Conv2d(4, 6, 1))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert sum(p.size for p in ours.parameters()) == 4 * 9 + 4 + 4 * 6 + 6
    assert sum(p.numel() for p in theirs.parameters()) == 4 * 9 + 4 + 4 * 6 + 6
    _check_module(torch, ours, theirs, np.random.default_rng(0).standard_normal((2, 4, 6, 5)), 1)
    assert sum(p.size for p in nn.DepthwiseSeparableConv2d(64, 64).parameters()) == 4800


# ---- initialisation, attributes, state dicts ---------------------------------------------
@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(8, 16, 3), 8 * 9),
    (lambda: nn.Conv2d(8, 16, (3, 5), groups=4), 2 * 15),
    (lambda: nn.ConvTranspose2d(8, 6, 4, groups=2), 3 * 16),   # PyTorch reads fan_in from weight.shape[1]
])
def test_init_bounds_match_pytorch(make, fan_in):
    bound = 1 / math.sqrt(fan_in)   # kaiming_uniform_array(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    layer = make()
    w, b = layer.weight.numpy(), layer.bias.numpy()
    assert w.dtype == np.float32 and b.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.9 * bound          # the whole range is used, not a narrower one
    assert abs(w.std() - bound / math.sqrt(3)) < 0.15 * bound   # uniform: std = bound / sqrt(3)


@pytest.mark.parametrize("make, fan_in", [
    (lambda: nn.Conv2d(8, 512, 3), 8 * 9),
    (lambda: nn.Conv2d(8, 512, (3, 5), groups=4), 2 * 15),
    (lambda: nn.ConvTranspose2d(8, 512, 4, groups=2), 256 * 16),
])
def test_bias_init_bound_matches_pytorch(make, fan_in):
    """Enough biases to fill their range: a bias drawn from a narrower one (a bound from another
    fan-in) fails the lower check, which the few biases above cannot show."""
    bound = 1 / math.sqrt(fan_in)
    b = make().bias.numpy()
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound


def test_init_is_seeded():
    msn.manual_seed(3)
    a = nn.Conv2d(2, 3, 3).weight.numpy()
    msn.manual_seed(3)
    b = nn.Conv2d(2, 3, 3).weight.numpy()
    np.testing.assert_array_equal(a, b)


def test_init_names_do_not_collide_with_torchs(torch):
    """torch.nn.init.kaiming_uniform/uniform (deprecated) fill a tensor, with a = 0 by default; ours
    take a shape and return an array with a = sqrt(5), so they carry other names."""
    for name in ("kaiming_uniform", "uniform"):
        assert hasattr(torch.nn.init, name) and not hasattr(nn.init, name), name
    assert nn.init.kaiming_uniform_array((4, 3, 3, 3)).shape == (4, 3, 3, 3)


@pytest.mark.parametrize("shape, call", [
    ((16, 8, 3, 3), {}),
    ((16, 8, 3, 3), {"a": math.sqrt(5)}),
    ((6, 4, 2, 5), {"mode": "fan_out", "nonlinearity": "relu"}),
    ((32, 20), {"a": 0.2, "mode": "fan_in"}),
    ((12, 7, 3), {"nonlinearity": "tanh"}),
])
def test_torch_style_inplace_init_matches_torchs_bounds(torch, shape, call):
    theirs = torch.empty(shape)
    mode = call.get("mode", "fan_in")
    fan = torch.nn.init._calculate_correct_fan(theirs, mode)          # torch's own fan computation
    bound = torch.nn.init.calculate_gain(call.get("nonlinearity", "leaky_relu"), call.get("a", 0)) \
        * math.sqrt(3.0 / fan)
    w = nn.Parameter(np.zeros(shape, dtype=np.float32))
    before = w.data
    assert nn.init.kaiming_uniform_(w, **call) is w and w.data is before       # in place, returns it
    values = w.numpy()
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    torch.nn.init.kaiming_uniform_(theirs, **call)
    assert np.abs(theirs.numpy()).max() <= bound and np.abs(theirs.numpy()).max() > 0.9 * bound
    assert nn.init.calculate_gain("leaky_relu", call.get("a")) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", call.get("a")))


def test_torch_style_uniform_and_zeros_fill_in_place(torch):
    w = nn.Parameter(np.ones((1000,), dtype=np.float32))
    assert nn.init.uniform_(w, -0.5, 2.0) is w
    vals = w.numpy()
    assert vals.min() >= -0.5 and vals.max() < 2.0 and vals.min() < -0.45 and vals.max() > 1.95   # all of it
    v = nn.init.uniform_(nn.Parameter(np.ones((1000,), dtype=np.float32))).numpy()   # torch's defaults: a=0, b=1
    assert v.min() >= 0.0 and v.max() < 1.0 and v.min() < 0.01 and v.max() > 0.99
    assert nn.init.zeros_(w) is w and not w.numpy().any()
    with pytest.raises(TypeError, match="Tensor"):
        nn.init.zeros_(np.ones(3))
    with pytest.raises(ValueError, match="fewer than 2"):
        nn.init.kaiming_uniform_(nn.Parameter(np.ones(3, dtype=np.float32)))


def test_dtype_is_keyword_only_where_torch_has_device(torch):
    """torch's 10th (ConvTranspose2d: 11th) positional argument is device; ours has no device, so
    dtype must not take its place."""
    positional = (2, 3, 3, 1, 0, 1, 1, True, "zeros")
    with pytest.raises(TypeError):
        nn.Conv2d(*positional, np.float64)
    with pytest.raises(TypeError):
        nn.ConvTranspose2d(2, 3, 3, 1, 0, 0, 1, True, 1, "zeros", np.float64)
    assert nn.Conv2d(*positional, dtype=np.float64).weight.dtype == np.float64
    assert nn.ConvTranspose2d(2, 3, 3, dtype=np.float64).weight.dtype == np.float64
    for ours, theirs in ((nn.Conv2d, torch.nn.Conv2d), (nn.ConvTranspose2d, torch.nn.ConvTranspose2d)):
        names = list(inspect.signature(theirs).parameters)
        assert list(inspect.signature(ours).parameters) == [n for n in names if n != "device"]
        assert [n for n, p in inspect.signature(ours).parameters.items() if p.kind == p.KEYWORD_ONLY] == ["dtype"]


def test_attributes_and_state_dict_like_torch(torch):
    ours = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    theirs = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False)
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                 "padding_mode"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.bias is None and list(ours.state_dict()) == ["weight"]
    assert ours.weight.shape == tuple(theirs.weight.shape)
    t_ours = nn.ConvTranspose2d(4, 6, 3, groups=2)
    t_theirs = torch.nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert t_ours.weight.shape == tuple(t_theirs.weight.shape)
    assert list(t_ours.state_dict()) == list(t_theirs.state_dict())
    assert nn.Conv2d(1, 1, 3, padding="same").padding == "same"


@pytest.mark.parametrize("make, error, words", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels=3 must be divisible by groups=2"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), ValueError, "out_channels=3 must be divisible by groups=2"),
    (lambda: nn.Conv2d(0, 3, 3), ValueError, "Conv2d: in_channels must be >= 1, got 0"),
    (lambda: nn.Conv2d(3, 3, 0), ValueError, "kernel_size must be >= 1"),
    (lambda: nn.Conv2d(3, 3, 3, stride=2, padding="same"), ValueError, "padding='same' needs stride 1"),
    (lambda: nn.Conv2d(3, 3, 3, padding="full"), ValueError, "'valid' or 'same'"),
    (lambda: nn.Conv2d(3, 3, 3, padding_mode="circular"), ValueError, "padding_mode must be one of"),
    (lambda: nn.ConvTranspose2d(3, 3, 3, stride=2, output_padding=2), ValueError, "must be smaller than max"),
    (lambda: nn.ConvTranspose2d(3, 3, 3, padding_mode="reflect"), ValueError, "only padding_mode='zeros'"),
])
def test_module_bad_arguments(make, error, words):
    with pytest.raises(error) as info:
        make()
    assert words in str(info.value)


def test_a_dtype_numpy_cannot_read_is_named(torch):
    """torch.float64 gave NumPy's bare 'Cannot interpret ... as a data type'."""
    with pytest.raises(TypeError, match=r"^Conv2d: dtype must be a NumPy floating-point dtype such as np.float32"):
        nn.Conv2d(3, 4, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"msn.set_backend\('cupy'\)"):
        nn.Conv2d(3, 4, 3).to("cuda")


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_conv_transpose2d_output_padding_below_dilation_is_accepted_as_in_torch(torch):
    # guards: output_padding is bounded by max(stride, dilation), not by the stride alone
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=1, dilation=2, output_padding=1)
    ours = nn.ConvTranspose2d(2, 3, 3, stride=1, dilation=2, output_padding=1)
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 5)).astype(np.float32)
    assert ours(msn.tensor(x)).shape == tuple(theirs(torch.tensor(x)).shape) == (1, 3, 9, 10)
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(2, 3, 3, stride=1, dilation=2, output_padding=2)


def test_depthwise_separable_bias_false_leaves_both_convs_without_bias():
    # guards: bias=False reaches the pointwise conv too, not only the depthwise one
    layer = nn.DepthwiseSeparableConv2d(4, 6, bias=False)
    assert layer.depthwise.bias is None and layer.pointwise.bias is None
    assert sorted(layer.state_dict()) == ["depthwise.weight", "pointwise.weight"]
    assert sum(p.size for p in layer.parameters()) == 4 * 9 + 4 * 6


def test_depthwise_separable_defaults_keep_the_size():
    # guards: the documented defaults kernel_size=3, stride=1, padding=1 (a 3x3 that keeps H, W)
    defaults = {name: p.default for name, p in inspect.signature(nn.DepthwiseSeparableConv2d).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == dict(kernel_size=3, stride=1, padding=1, dilation=1, bias=True, padding_mode="zeros")
    layer = nn.DepthwiseSeparableConv2d(2, 5)
    assert layer(msn.tensor(np.zeros((1, 2, 7, 6), np.float32))).shape == (1, 5, 7, 6)


def test_depthwise_separable_padding_mode_reaches_the_depthwise_conv(torch):
    # guards: padding_mode="reflect" pads the depthwise conv's input (the pointwise 1x1 has no padding)
    ours = nn.DepthwiseSeparableConv2d(3, 4, 3, padding=1, padding_mode="reflect")
    assert ours.depthwise.padding_mode == "reflect"
    depthwise = torch.nn.Conv2d(3, 3, 3, padding=1, groups=3, padding_mode="reflect").double()
    pointwise = torch.nn.Conv2d(3, 4, 1).double()
    with torch.no_grad():
        for mine, theirs in ((ours.depthwise, depthwise), (ours.pointwise, pointwise)):
            theirs.weight.copy_(torch.tensor(mine.weight.numpy()))
            theirs.bias.copy_(torch.tensor(mine.bias.numpy()))
    ours.to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 5))
    np.testing.assert_allclose(ours(msn.tensor(x)).numpy(), pointwise(depthwise(torch.tensor(x))).detach().numpy(),
                               rtol=1e-10, atol=1e-10)


# ---- A bug found by that review: ConvTranspose2d printed output_padding before dilation (torch prints it after)
def test_conv_transpose2d_prints_output_padding_after_dilation_as_torch(torch):
    # guards: the repr order of torch's _ConvNd.extra_repr (padding, dilation, output_padding, groups, bias)
    args, kwargs = (2, 4, 3, 2, 1, 1), dict(groups=2, dilation=2, bias=False)
    assert repr(nn.ConvTranspose2d(*args, **kwargs)) == repr(torch.nn.ConvTranspose2d(*args, **kwargs))
