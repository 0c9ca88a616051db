"""Activations and dropout: gradcheck, PyTorch parity on Hypothesis-drawn shapes,
dropout statistics and seeding, module forms, bad arguments."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64


def _away_from(values, kinks, gap=0.05):
    """Move values that sit within ``gap`` of a kink to ``kink +- 2*gap`` (no ties at kinks)."""
    v = np.array(values, dtype=np.float64)
    for k in kinks:
        near = np.abs(v - k) < gap
        v[near] = k + np.where(v[near] >= k, 2 * gap, -2 * gap)
    return v


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5), seed=st.integers(0, 2**16),
       slope=st.one_of(st.sampled_from([0.0, 0.01, 0.2, 1.0, -0.5, 3.0]), st.floats(-2, 2)))
def test_leaky_relu_matches_torch(torch, shape, seed, slope):
    rng = np.random.default_rng(seed)
    x_np = _away_from(rng.standard_normal(shape) * 3, [0.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    out, tout = F.leaky_relu(x, slope), torch.nn.functional.leaky_relu(tx, slope)
    assert_close(out, tout)
    g = rng.standard_normal(shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad")


@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5), seed=st.integers(0, 2**16))
def test_relu6_matches_torch_away_from_kinks(torch, shape, seed):
    rng = np.random.default_rng(seed)
    x_np = _away_from(rng.uniform(-3, 9, shape), [0.0, 6.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    out, tout = F.relu6(x), torch.nn.functional.relu6(tx)
    assert_close(out, tout)
    g = rng.standard_normal(shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad")


@pytest.mark.parametrize("zeros_array", [True, False])
@pytest.mark.parametrize("name", ["relu", "leaky_relu", "relu6"])
def test_special_values_give_torchs_outputs(torch, monkeypatch, name, zeros_array):
    """-inf, infinities, NaN and signed zeros: the same outputs and input gradients as PyTorch
    (relu(-inf) is 0, not -inf * 0 = NaN; a NaN input passes its gradient on), with ReLU's 0 a
    number or an array (the RELU_ZEROS_ARRAY lever)."""
    from minisegnet.functional import activation

    monkeypatch.setattr(activation, "RELU_ZEROS_ARRAY", zeros_array)
    x_np = np.array([[-np.inf, -3.0, -0.0, 0.0], [2.0, 7.0, np.inf, np.nan]], dtype=np.float32)
    fn = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.1), "relu6": F.relu6}[name]
    tfn = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.1),
           "relu6": torch.nn.functional.relu6}[name]
    for x in (x_np, x_np.reshape(2, 1, 2, 2)):          # a row of zeros, or a plane of them
        np.testing.assert_array_equal(fn(msn.tensor(x)).numpy(), tfn(torch.tensor(x)).numpy())
        t, tt = msn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        g = np.arange(1.0, x.size + 1, dtype=np.float32).reshape(x.shape)
        fn(t).backward(g)
        tfn(tt).backward(torch.tensor(g))
        np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())     # NaN's gradient passes on


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "relu6"])
def test_kink_gradients_take_torchs_side(torch, name):
    # At exactly 0 (and 6) PyTorch picks a side; so do we.
    x_np = np.array([-1.0, 0.0, 3.0, 6.0, 7.0])
    fn = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.1), "relu6": F.relu6}[name]
    tfn = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.1),
           "relu6": torch.nn.functional.relu6}[name]
    x, tx = t64(x_np), as_torch(torch, x_np)
    fn(x).sum().backward(); tfn(tx).sum().backward()
    assert_close(x.grad, tx.grad)


def test_gradcheck_piecewise_linear_activations():
    rng = np.random.default_rng(0)
    x_np = _away_from(rng.uniform(-2, 8, (3, 5)), [0.0, 6.0])
    assert gradcheck(lambda t: F.leaky_relu(t, 0.2), [t64(x_np)])
    assert gradcheck(lambda t: F.leaky_relu(t, -1.5), [t64(x_np)])
    assert gradcheck(F.relu6, [t64(x_np)])
    assert gradcheck(F.relu, [t64(x_np)])


def test_gradcheck_dropout_with_a_fixed_mask():
    x_np = np.random.default_rng(1).standard_normal((2, 3, 4, 4))
    for fn in (F.dropout, F.dropout2d):
        # Reseed before every call so each evaluation inside gradcheck sees the same mask.
        def seeded(t, fn=fn):
            msn.manual_seed(7)
            return fn(t, 0.4, True)
        assert gradcheck(seeded, [t64(x_np)])


@given(p=st.sampled_from([0.1, 0.3, 0.5, 0.8]), seed=st.integers(0, 1000))
def test_dropout_zeros_and_scales(p, seed):
    msn.manual_seed(seed)
    x_np = np.random.default_rng(seed).uniform(1, 2, (40, 50))
    x = t64(x_np)
    y = F.dropout(x, p, training=True)
    out = y.numpy()
    kept = out != 0
    np.testing.assert_allclose(out[kept], x_np[kept] / (1 - p), rtol=1e-12)
    # The kept fraction is Binomial(2000, 1-p)/2000: 5 standard deviations is a loose bound.
    sd = np.sqrt(p * (1 - p) / out.size)
    assert abs(kept.mean() - (1 - p)) < 5 * sd
    # Gradient: the same mask and scale.
    g = np.random.default_rng(seed + 1).standard_normal(x_np.shape)
    y.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, g / (1 - p), 0), rtol=1e-12)


def test_dropout_keeps_the_expectation():
    msn.manual_seed(3)
    x = msn.tensor(np.ones((200, 500)))
    for p in (0.2, 0.5, 0.9):
        mean = F.dropout(x, p).numpy().mean()
        # Each element is 1/(1-p) w.p. 1-p else 0: var = p/(1-p), 100000 samples.
        assert abs(mean - 1) < 5 * np.sqrt(p / (1 - p) / x.size)


def test_dropout2d_zeros_whole_channels():
    msn.manual_seed(0)
    x_np = np.random.default_rng(0).uniform(1, 2, (6, 20, 5, 7))
    out = F.dropout2d(t64(x_np), 0.5, training=True).numpy()
    planes = out.reshape(6, 20, -1)
    dropped = (planes == 0).all(axis=2)
    kept = (planes != 0).all(axis=2)
    assert np.all(dropped | kept), "a channel was partly dropped"
    assert 0 < dropped.sum() < dropped.size
    np.testing.assert_allclose(out[kept], (x_np * 2)[kept], rtol=1e-12)


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_dropout_is_repeatable_with_manual_seed(fn):
    x = t64(np.ones((2, 8, 3, 3)), requires_grad=False)
    msn.manual_seed(42)
    a = fn(x, 0.5).numpy()
    b = fn(x, 0.5).numpy()
    msn.manual_seed(42)
    c = fn(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b), "consecutive calls should draw different masks"


@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d])
def test_dropout_edge_probabilities_and_eval(fn):
    x = t64(np.random.default_rng(0).uniform(1, 2, (2, 3, 4, 4)))
    assert fn(x, 0.5, training=False) is x
    assert fn(x, 0.0) is x
    y = fn(x, 1.0)
    np.testing.assert_array_equal(y.numpy(), 0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


def test_dropout_keeps_float32():
    x = msn.tensor(np.ones((4, 4), dtype=np.float32))
    assert F.dropout(x, 0.3).dtype == np.float32
    assert F.dropout2d(x.reshape(1, 4, 2, 2), 0.3).dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
@pytest.mark.parametrize("fn", [F.dropout, F.dropout2d, nn.Dropout, nn.Dropout2d])
def test_dropout_rejects_bad_p(fn, p):
    with pytest.raises(ValueError, match=rf"^{fn.__name__}: p must be "):
        if fn in (nn.Dropout, nn.Dropout2d):
            fn(p)
        else:
            fn(t64(np.ones((1, 2, 2, 2))), p)


def test_dropout_p_type_and_dropout2d_shape_errors():
    with pytest.raises(TypeError, match=r"^dropout: p must be a number, got '0.5'"):
        F.dropout(t64(np.ones(3)), "0.5")
    with pytest.raises(ValueError, match=r"^dropout2d: p must be >= 0 and <= 1, got 1.5"):
        F.dropout2d(t64(np.ones((1, 2, 2, 2))), 1.5)
    with pytest.raises(ValueError, match=r"^dropout2d: input must be 4-D \(N, C, H, W\), got shape \(2, 3, 4\)"):
        F.dropout2d(t64(np.ones((2, 3, 4))), 0.5)
    with pytest.raises(TypeError, match="^leaky_relu: negative_slope must be a number, got '0.1'"):
        F.leaky_relu(t64(np.ones(3)), "0.1")
    with pytest.raises(TypeError, match="^LeakyReLU: negative_slope must be a number, got None"):
        nn.LeakyReLU(None)
    with pytest.raises(TypeError, match="dim must be an int"):
        nn.Softmax(None)
    with pytest.raises(TypeError, match="dim must be an int"):
        nn.LogSoftmax(1.0)


MODULES = [
    (lambda: nn.ReLU(), lambda torch: torch.nn.ReLU()),
    (lambda: nn.LeakyReLU(0.2), lambda torch: torch.nn.LeakyReLU(0.2)),
    (lambda: nn.LeakyReLU(), lambda torch: torch.nn.LeakyReLU()),
    (lambda: nn.ReLU6(), lambda torch: torch.nn.ReLU6()),
    (lambda: nn.Sigmoid(), lambda torch: torch.nn.Sigmoid()),
    (lambda: nn.Tanh(), lambda torch: torch.nn.Tanh()),
    (lambda: nn.Softmax(1), lambda torch: torch.nn.Softmax(1)),
    (lambda: nn.LogSoftmax(-1), lambda torch: torch.nn.LogSoftmax(-1)),
    (lambda: nn.Identity(3, foo=1), lambda torch: torch.nn.Identity(3, foo=1)),
]


@pytest.mark.parametrize("i", range(len(MODULES)))
def test_activation_modules_match_torch(torch, i):
    ours, theirs = MODULES[i][0](), MODULES[i][1](torch)
    x_np = _away_from(np.random.default_rng(i).uniform(-4, 8, (2, 3, 4, 5)), [0.0, 6.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    out, tout = ours(x), theirs(tx)
    assert_close(out, tout)
    g = np.random.default_rng(i + 1).standard_normal(x_np.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_dropout_modules_follow_train_and_eval(cls):
    layer = cls(0.5)
    x = t64(np.ones((2, 16, 3, 3)), requires_grad=False)
    y = layer(x).numpy()
    assert (y == 0).any() and (y == 2).any()
    layer.eval()
    assert layer(x) is x
    layer.train()
    assert (layer(x).numpy() == 0).any()
    assert layer.p == 0.5 and repr(layer) == f"{cls.__name__}(p=0.5, inplace=False)"       # torch's print


@pytest.mark.parametrize("shape, dim", [((0, 3, 4, 4), 0), ((2, 0), 1), ((2, 0, 4), 1)])
def test_softmax_along_an_empty_axis_is_empty_like_torch(torch, shape, dim):
    x = msn.tensor(np.zeros(shape), requires_grad=True)
    y = F.softmax(x, dim)
    assert y.shape == tuple(torch.softmax(torch.zeros(shape, dtype=torch.float64), dim).shape)
    y.sum().backward()
    assert x.grad.shape == shape


def test_leaky_relu_accepts_an_infinite_slope_like_torch(torch):
    x_np = np.array([-2.0, -0.5, 0.5, 3.0])
    x, tx = msn.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    for slope in (np.inf, -np.inf):
        np.testing.assert_array_equal(F.leaky_relu(x, slope).numpy(),
                                      torch.nn.functional.leaky_relu(tx, slope).detach().numpy())


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_dropout2d_layer_drops_whole_feature_maps():
    # guards: nn.Dropout2d zeroes whole (n, c) maps (channel dropout), not single elements
    x = msn.tensor(np.ones((4, 32, 5, 5)))
    y = nn.Dropout2d(0.5)(x).numpy()
    per_map = y.reshape(4 * 32, 25)
    assert set(np.unique(per_map)) <= {0.0, 2.0}
    assert (per_map == per_map[:, :1]).all(), "a feature map was partly dropped"
    kept = (per_map[:, 0] == 2).sum()
    assert 0 < kept < 4 * 32


@pytest.mark.parametrize("dim", [0, 1, 2, -2])
def test_log_softmax_layer_uses_its_dim(torch, dim):
    # guards: nn.LogSoftmax(dim) normalises along dim (a layer that used the last axis passed for dim=-1 only)
    x_np = np.random.default_rng(5).standard_normal((2, 3, 4, 5))
    ours = nn.LogSoftmax(dim)(msn.tensor(x_np)).numpy()
    theirs = torch.nn.LogSoftmax(dim)(torch.tensor(x_np)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


def test_dropout2d_layer_uses_its_p():
    # guards: nn.Dropout2d(p) drops with its own p: the kept maps are scaled by 1 / (1 - p)
    y = nn.Dropout2d(0.75)(msn.tensor(np.ones((8, 64, 2, 2)))).numpy()
    assert set(np.unique(y)) == {0.0, 4.0}
    assert 0.55 < (y == 0).mean() < 0.95


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("name", ["relu", "relu6"])
def test_relu_selects_an_infinite_or_nan_gradient_as_pytorch(torch, dtype, name):
    """PyTorch's ReLU backward selects: an inf or NaN gradient where x <= 0 (or x >= 6) gives 0,
    and passes unchanged where x > 0 or x is NaN. ``g * mask`` gave NaN (inf * 0)."""
    x = np.array([-1, 0, 1, np.nan, 7, -0.0, 3, -np.inf, np.inf], dtype)
    g = np.array([np.inf, np.nan, 1, 2, np.inf, np.nan, -0.0, -np.inf, np.nan], dtype)
    ours = msn.tensor(x, requires_grad=True)
    getattr(F, name)(ours).backward(g)
    theirs = torch.tensor(x, requires_grad=True)
    getattr(torch.nn.functional, name)(theirs).backward(torch.tensor(g))
    assert ours.grad.dtype == dtype
    ours, theirs = ours.grad.numpy(), theirs.grad.numpy()
    assert ours[3] == g[3]              # a NaN input passes its gradient on (as PyTorch's relu; its
    keep = np.arange(len(x)) != 3       # relu6 in float64 gives 0 or 1 there by the vector's length)
    np.testing.assert_array_equal(ours[keep], theirs[keep])
    assert (np.signbit(ours[keep]) == np.signbit(theirs[keep])).all()


@pytest.mark.parametrize("slope", [0.1, 0.01, 0.2])
def test_leaky_relu_float16_multiplies_in_float32_as_torch(torch, slope):
    x_np = np.array([-2.492, -0.875, -4.984, -1.0, 0.5, 3.0], np.float16)
    g_np = np.array([3.0, -7.0, 0.3, 1.0, 2.0, -1.0], np.float16)
    x, tx = msn.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    out, tout = F.leaky_relu(x, slope), torch.nn.functional.leaky_relu(tx, slope)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    # what both should be: the float32 product rounded once to float16
    where = x_np > 0
    exact = np.where(where, x_np, (x_np.astype(np.float32) * np.float32(slope)).astype(np.float16))
    np.testing.assert_array_equal(out.numpy(), exact)
    out.backward(g_np)
    tout.backward(torch.tensor(g_np))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_leaky_relu_float16_matches_torch_on_many_values(torch):
    x_np = (np.random.default_rng(0).standard_normal(4096) * 4).astype(np.float16).reshape(1, 1, 64, 64)
    ours = F.leaky_relu(msn.tensor(x_np), 0.1).numpy()
    theirs = torch.nn.functional.leaky_relu(torch.tensor(x_np), 0.1).numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, dim", [((1, 3000, 2, 2), 1), ((5000, 3), 0)])
def test_float16_softmax_adds_up_in_float32_as_pytorch(torch, name, shape, dim):
    """PyTorch normalises float16 in float32 and rounds once. Summed in float16 along an axis
    that is not the last, the count of 3000 equal exps stopped at 2048: softmax 1/2048 = 0.000488
    instead of 1/3000 = 0.000333 (log_softmax -7.625 instead of -8.008)."""
    x = np.zeros(shape, np.float16)
    ours = getattr(F, name)(msn.tensor(x), dim).numpy()
    theirs = getattr(torch.nn.functional, name)(torch.tensor(x), dim).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=2e-3)


def test_float16_sigmoid_gradient_near_saturation_matches_torch(torch):
    """sigmoid(6) in float16: PyTorch computes in float32 and rounds once (0.9976); computed in
    float16 it is one ulp off (0.997), and y * (1 - y) makes that a 20% error in the gradient
    (0.002922 where PyTorch and the exact value give 0.00244, 0.00247)."""
    x = np.array([3, 4, 5, 6, 7], np.float16)
    ours = msn.tensor(x, requires_grad=True)
    F.sigmoid(ours).backward(np.ones(5, np.float16))
    theirs = torch.tensor(x, requires_grad=True)
    torch.sigmoid(theirs).backward(torch.ones(5, dtype=torch.float16))
    y = 1 / (1 + np.exp(-x.astype(np.float64)))
    exact = y * (1 - y)
    # ours is y(1 - y) of the float32 y, rounded once; PyTorch's of its output rounded to
    # float16 first: ours is at least as near the exact gradient, within a float16 step of it
    ours_error = np.abs(ours.grad.numpy().astype(np.float64) - exact)
    theirs_error = np.abs(theirs.grad.numpy().astype(np.float64) - exact)
    assert (ours_error <= theirs_error).all()
    assert (ours_error <= np.spacing(exact.astype(np.float16)).astype(np.float64)).all()


def test_float16_leaky_relu_multiplies_in_float32_as_pytorch(torch):
    """PyTorch multiplies a float16 input by the slope in float32 and rounds once; the slope
    rounded to float16 first (0.01 -> 0.010002) changes about 12% of all float16 outputs."""
    x = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    x = x[np.isfinite(x)]
    ours = F.leaky_relu(msn.tensor(x), 0.01).numpy()
    theirs = torch.nn.functional.leaky_relu(torch.tensor(x), 0.01).numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["foo", 3])
def test_softmax_bad_dtype_names_the_function_and_argument(name, dtype):
    """docs/guarantees.md: a bad argument's message names the function and the argument;
    np.dtype's own 'data type 'foo' not understood' names neither."""
    x = msn.tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match=f"{name}: dtype"):
        getattr(F, name)(x, 1, dtype=dtype)


def test_leaky_relu_float16_takes_a_slope_beyond_float16_as_torch(torch):
    """a*x is computed in float32 for float16 input: a slope of 1e5 (over float16's 65504) fits
    float32, and PyTorch takes it; the product of a small x still fits float16."""
    x_np = np.array([-1e-3, -2e-4, 0.5, -0.0], np.float16)
    g_np = np.array([1e-4, -2e-4, 0.1, 0.1], np.float16)        # every a*g fits float16 too
    x, tx = msn.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    out, tout = F.leaky_relu(x, 1e5), torch.nn.functional.leaky_relu(tx, 1e5)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    out.backward(g_np)
    tout.backward(torch.tensor(g_np))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_float16_leaky_relu_with_a_large_slope_does_not_warn_about_the_positive_values(torch):
    """Every element is scaled by the slope, the positive ones too (``where`` drops them): 3 * 30000
    is beyond float16, and the cast warned (an error under this suite's settings), where PyTorch
    is quiet. The negative values' products, kept, are PyTorch's."""
    x_np = np.array([3.0, -0.5, 0.25], np.float16)
    x = msn.tensor(x_np, requires_grad=True)
    out = F.leaky_relu(x, 30000.0)
    out.backward(np.array([1.0, 1.0, 1.0], np.float16))
    tx = torch.tensor(x_np, requires_grad=True)
    tout = torch.nn.functional.leaky_relu(tx, 30000.0)
    tout.backward(torch.ones(3, dtype=torch.float16))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_float16_tanh_and_its_gradient_equal_torch_number_for_number(torch):
    """PyTorch computes a float16 tanh's gradient g * (1 - y^2) in float32 from the rounded
    output and rounds once; in float16 each step rounded (about half of all gradients a step off)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(20000) * 2).astype(np.float16)
    g = rng.standard_normal(20000).astype(np.float16)
    ours = msn.tensor(x, requires_grad=True)
    y = F.tanh(ours)
    y.backward(g)
    theirs = torch.tensor(x, requires_grad=True)
    ty = torch.tanh(theirs)
    ty.backward(torch.tensor(g))
    assert y.dtype == ours.grad.dtype == np.float16
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def _torch_kept_value(torch, p, tdtype):
    """The value torch's F.dropout gives a kept 1.0 (its 1 / (1 - p), in the input's dtype)."""
    torch.manual_seed(0)
    y = torch.nn.functional.dropout(torch.ones(4096, dtype=tdtype), p, True)
    kept = y[y != 0].unique()
    assert kept.numel() == 1
    return kept


@pytest.mark.parametrize("fn", ["dropout", "dropout2d"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("p", [0.1, 0.15, 0.2, 0.3, 0.45, 0.5, 0.8])
def test_dropout_values_and_gradient_are_torchs_for_the_same_mask(torch, fn, dtype, p):
    np_dtype, tdtype = np.dtype(dtype), getattr(torch, dtype)
    rng = np.random.default_rng(3)
    x_np = (rng.uniform(0.5, 2.0, (2, 3, 4, 5)) * rng.choice([-1, 1], (2, 3, 4, 5))).astype(np_dtype)  # no zeros
    msn.manual_seed(11)
    x = msn.tensor(x_np, requires_grad=True)
    y = getattr(F, fn)(x, p, True)
    keep = y.numpy() != 0
    if fn == "dropout2d":                          # one draw per (n, c) plane
        assert (keep == keep[:, :, :1, :1]).all()
    tx = as_torch(torch, x_np)
    noise = torch.tensor(keep).to(tdtype) * _torch_kept_value(torch, p, tdtype)
    ty = tx * noise                                # torch's _dropout_impl: input * noise
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy(), err_msg=f"{fn} p={p} {dtype} values")
    g = rng.standard_normal(x_np.shape).astype(np_dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy(), err_msg=f"{fn} p={p} {dtype} gradient")


def test_float16_softmax_over_more_than_65504_values_sums_to_1_as_pytorch(torch):
    """exp(0) summed over 70000 values is inf in float16, so every probability was 1/inf = 0.
    PyTorch's float16 softmax accumulates in float32: 1/70000 = 1.43e-5 each."""
    x = np.zeros((1, 70000), np.float16)
    with np.errstate(over="ignore"):
        ours = F.softmax(msn.tensor(x), 1).numpy()
    theirs = torch.nn.functional.softmax(torch.tensor(x), 1).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("fn", ["dropout", "dropout2d"])
def test_float16_dropout_whose_scale_overflows_zeros_the_dropped_values(torch, fn):
    """p = 0.99999: 1 / (1 - p) = 100000 is inf in float16. PyTorch divides its 0/1 noise by
    1 - p, so a dropped value stays 0 (and a kept one is inf); the mask made as keep * scale
    was 0 * inf = NaN for every dropped value, and the whole output and gradient were NaN."""
    msn.manual_seed(0)
    x = msn.tensor(np.full((2, 3, 4, 5), 0.5, np.float16), requires_grad=True)
    with np.errstate(over="ignore", invalid="ignore"):
        y = getattr(F, fn)(x, 0.99999, training=True)
        y.sum().backward()
    theirs = getattr(torch.nn.functional, fn)(torch.full((2, 3, 4, 5), 0.5, dtype=torch.float16), 0.99999,
                                              training=True)
    assert not torch.isnan(theirs).any()
    assert y.dtype == np.float16
    assert not np.isnan(y.numpy()).any()
    assert ((y.numpy() == 0) | np.isinf(y.numpy())).all()
    assert not np.isnan(x.grad.numpy()).any()
