"""Pooling and unpooling: PyTorch parity of values, indices and gradients on
Hypothesis-drawn configurations, float64 gradcheck, output shapes equal to the
shapes.py formulas, the pool/unpool adjoint identity, errors, module forms."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minisegnet as msn
from minisegnet import functional as F, nn, shapes
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64


def _values(shape, seed, style):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if style == "ties":
        x = np.round(x)                 # many equal values: ties go to the first maximum
    elif style == "negative":
        x = -np.abs(x) - 1.0            # -inf padding, not 0, must win nothing
    return x


@st.composite
def _pool_config(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))),
        kernel_size=k if draw(st.booleans()) else k[0],
        stride=draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))),
        padding=(draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2))),
        dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else 1,
        ceil_mode=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def _kernel_pair(cfg):
    k = cfg["kernel_size"]
    return (k, k) if isinstance(k, int) else k


def _fix_padding(cfg):
    """Padding drawn against the pair; when kernel_size is one int it applies to both axes."""
    k = _kernel_pair(cfg)
    cfg["padding"] = (min(cfg["padding"][0], k[0] // 2), min(cfg["padding"][1], k[1] // 2))
    return cfg


# ---- max_pool2d ------------------------------------------------------------------------
@given(cfg=_pool_config(), style=st.sampled_from(["normal", "ties", "negative"]))
def test_max_pool2d_matches_torch(torch, cfg, style):
    cfg = _fix_padding(cfg)
    x_np = _values(cfg["shape"], cfg["seed"], style)
    args = dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"],
                dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    tx = as_torch(torch, x_np)
    try:
        ty, ti = torch.nn.functional.max_pool2d(tx, return_indices=True, **args)
    except RuntimeError:
        with pytest.raises(ValueError):          # PyTorch refuses it: so must we
            F.max_pool2d(t64(x_np), **args)
        return
    try:
        x = t64(x_np)
        y, idx = F.max_pool2d(x, return_indices=True, **args)
    except ValueError as e:
        # The one configuration we refuse and PyTorch accepts: a window lying wholly
        # in the padding, where PyTorch returns -inf and an index outside the plane.
        assert "reads only padding" in str(e)
        assert torch.isinf(ty).any()
        return
    assert_close(y, ty, what="values")
    assert idx.dtype == np.int64 and not idx.requires_grad
    np.testing.assert_array_equal(idx.numpy(), ti.numpy(), err_msg="indices")
    assert y.shape[2:] == shapes.max_pool2d_output_size(x_np.shape[2:], cfg["kernel_size"], cfg["stride"],
                                                        cfg["padding"], cfg["dilation"], cfg["ceil_mode"])
    g = np.random.default_rng(cfg["seed"] + 1).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad")


def test_max_pool2d_negative_inputs_with_padding():
    """A zero-padded pool would output 0 at the borders; -inf padding keeps the true maxima."""
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    y = F.max_pool2d(msn.tensor(x), 3, stride=1, padding=1).numpy()
    assert (y < 0).all()
    assert y[0, 0, 0, 0] == -1.0 and y[0, 0, 3, 3] == -11.0


def test_max_pool2d_ties_go_to_first_maximum(torch):
    x = np.zeros((1, 1, 4, 4))
    _, idx = F.max_pool2d(msn.tensor(x), 2, return_indices=True)
    assert idx.numpy()[0, 0].tolist() == [[0, 2], [8, 10]]
    _, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_max_pool2d_nan_propagates_like_torch(torch):
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
    x[0, 0, 1, 2] = np.nan
    y, idx = F.max_pool2d(msn.tensor(x), 2, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())       # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    # two NaNs in one window: PyTorch reports the last (a first-NaN-wins rule passed the one above)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = np.nan
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        y, idx = F.max_pool2d(msn.tensor(x), return_indices=True, **kw)
        ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kw)
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_max_pool2d_of_a_window_of_minus_infinity_reports_its_first_real_pixel(torch):
    """A window whose real pixels are all -inf reports the first of them, not a padding position."""
    x = np.full((1, 1, 4, 4), -np.inf)
    x[0, 0, 3, 3] = 1.0
    y, idx = F.max_pool2d(msn.tensor(x), 3, 2, 1, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("args", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), ceil_mode=True),
])
def test_max_pool2d_gradcheck(args):
    # unique maxima, spaced by 1 >> eps: the argmax cannot flip under the perturbation
    x = np.random.default_rng(3).permutation(np.arange(2 * 5 * 6, dtype=np.float64)).reshape(1, 2, 5, 6)
    assert gradcheck(lambda t: F.max_pool2d(t, **args), [t64(x - 30.0)])


def _awkward(shape, seed, dtype):
    """Values with every special case the shortcuts must keep: ties, signed zeros, NaN, +-inf."""
    rng = np.random.default_rng(seed)
    x = rng.choice(np.array([0.0, -0.0, 1.0, -1.0, 2.0, np.nan, np.inf, -np.inf]), size=shape,
                   p=[0.2, 0.2, 0.15, 0.15, 0.1, 0.06, 0.07, 0.07])
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.uint8])
def test_assign_where_by_bits_is_copyto(dtype):
    """The bit-arithmetic masked assignment picks exactly copyto's bits: NaN payloads, -0.0,
    infinities, a broadcast scalar, a strided target."""
    from minisegnet.functional import pooling

    rng = np.random.default_rng(0)
    if dtype == np.uint8:
        target, value = rng.integers(0, 256, (6, 10)).astype(dtype), dtype(7)
    else:
        target, value = _awkward((6, 10), 1, dtype), _awkward((6, 10), 2, dtype)[:, ::2]
    mask = rng.random((6, 5)) < 0.5
    expected = target.copy()
    np.copyto(expected[:, 1::2], value, where=mask)
    got = target.copy()
    pooling.assign_where(got[:, 1::2], value, mask)
    np.testing.assert_array_equal(got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}"))


@pytest.mark.parametrize("args", [
    dict(kernel_size=2),                                             # disjoint windows, no padding
    dict(kernel_size=(3, 2)),                                        # disjoint windows that tile 9x10
    dict(kernel_size=(2, 3), stride=(3, 3)),                         # disjoint, not tiling
    dict(kernel_size=3, stride=2, padding=1),                        # overlapping, padded
    dict(kernel_size=2, stride=2, dilation=2, ceil_mode=True),       # overlapping through dilation
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_shortcuts_give_bitwise_the_plain_answer(monkeypatch, args, dtype):
    """START_AT_FIRST, COPY_IF_DISJOINT and MASKS_BY_BITS on give the same output, indices and
    input gradient as all three off (the formula as written), on values full of ties, signed
    zeros, NaN and infinities: output and indices bit for bit, the gradient number for number
    (copying a -0.0 keeps it -0.0 where adding it to 0.0 gives +0.0)."""
    from minisegnet.functional import pooling

    x = _awkward((2, 3, 9, 10), 3, dtype)
    g = np.random.default_rng(4).standard_normal(F.max_pool2d(msn.tensor(x), **args).shape).astype(dtype)
    g.flat[::7] = -0.0

    def run(on):
        for lever in ("START_AT_FIRST", "COPY_IF_DISJOINT", "MASKS_BY_BITS"):
            monkeypatch.setattr(pooling, lever, on)
        t = msn.tensor(x, requires_grad=True)
        y, idx = F.max_pool2d(t, **args, return_indices=True)
        y.backward(g)
        return y.numpy(), idx.numpy(), t.grad.numpy()

    (y, idx, grad), (plain_y, plain_idx, plain_grad) = run(True), run(False)
    np.testing.assert_array_equal(y.view(f"u{y.itemsize}"), plain_y.view(f"u{y.itemsize}"))
    np.testing.assert_array_equal(idx, plain_idx)
    np.testing.assert_array_equal(grad, plain_grad)          # -0.0 == 0.0, NaN == NaN


@given(cfg=_pool_config(), dtype=st.sampled_from([np.float32, np.float64]))
def test_max_pool2d_output_shape_is_the_formula(cfg, dtype):
    cfg = _fix_padding(cfg)
    args = (cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["ceil_mode"])
    try:
        expect = shapes.max_pool2d_output_size(cfg["shape"][2:], *args)
    except ValueError:
        assume(False)
    try:
        y = F.max_pool2d(msn.tensor(np.zeros(cfg["shape"], dtype=dtype)), *args)
    except ValueError as e:
        assert "reads only padding" in str(e)
        return
    assert y.shape == cfg["shape"][:2] + expect and y.dtype == dtype


def test_max_pool2d_ceil_mode_drops_a_window_that_would_start_in_the_padding():
    """The rule worked by hand, not read from shapes (which max_pool2d itself calls): 5 wide,
    k=2, s=2, p=1, ceil: ceil(5/2) + 1 = 4 windows, but the 4th would start at 5, in the right
    padding, so 3."""
    assert F.max_pool2d(msn.tensor(np.zeros((1, 1, 5, 5))), 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3)


# ---- avg_pool2d -----------------------------------------------------------------------
@given(cfg=_pool_config(dilation=False), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, None, 3]))
def test_avg_pool2d_matches_torch(torch, cfg, count_include_pad, divisor_override):
    cfg = _fix_padding(cfg)
    x_np = _values(cfg["shape"], cfg["seed"], "normal")
    args = dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"],
                ceil_mode=cfg["ceil_mode"], count_include_pad=count_include_pad,
                divisor_override=divisor_override)
    tx = as_torch(torch, x_np)
    try:
        ty = torch.nn.functional.avg_pool2d(tx, **args)
    except RuntimeError:
        with pytest.raises(ValueError):
            F.avg_pool2d(t64(x_np), **args)
        return
    x = t64(x_np)
    y = F.avg_pool2d(x, **args)
    assert_close(y, ty)
    assert y.shape[2:] == shapes.avg_pool2d_output_size(x_np.shape[2:], cfg["kernel_size"], cfg["stride"],
                                                        cfg["padding"], cfg["ceil_mode"])
    g = np.random.default_rng(cfg["seed"] + 1).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad")


def test_avg_pool2d_ceil_mode_divisor_excludes_the_overhang(torch):
    """6 wide, k=3, s=2, p=1, ceil: the last window [5, 8) passes the padded end 6 + 1 = 7, and
    its divisor counts only up to 7 (2 with count_include_pad: the pixel and the pad, not the
    overhang); the window [-1, 2) counts its pad pixel only when count_include_pad."""
    x = np.arange(1.0, 7.0).reshape(1, 1, 1, 6)
    for cip, expect in ((True, [1, 3, 5, 3]), (False, [1.5, 3, 5, 6])):
        y = F.avg_pool2d(msn.tensor(x), (1, 3), (1, 2), (0, 1), ceil_mode=True, count_include_pad=cip)
        ty = torch.nn.functional.avg_pool2d(torch.tensor(x), (1, 3), (1, 2), (0, 1), ceil_mode=True,
                                            count_include_pad=cip)
        assert_close(y, ty)
        assert y.numpy().ravel().tolist() == expect


def test_avg_pool2d_gradcheck():
    x = t64(np.random.default_rng(4).standard_normal((1, 2, 5, 6)))
    assert gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False), [x])


# ---- adaptive_avg_pool2d ------------------------------------------------------------------
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 11), st.integers(1, 11)),
       out=st.tuples(st.one_of(st.none(), st.integers(1, 12)), st.integers(1, 12)),
       as_int=st.booleans(), seed=st.integers(0, 2**16))
def test_adaptive_avg_pool2d_matches_torch(torch, shape, out, as_int, seed):
    output_size = out[1] if as_int else out
    x_np = np.random.default_rng(seed).standard_normal(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    y = F.adaptive_avg_pool2d(x, output_size)
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, output_size)
    assert_close(y, ty)
    assert y.shape[2:] == ((out[1], out[1]) if as_int else (shape[2] if out[0] is None else out[0], out[1]))
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad")


def test_adaptive_avg_pool2d_keeps_a_nan_in_the_bins_that_hold_it(torch):
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = np.nan                                     # 5 -> 3: bins of unequal length
    y = F.adaptive_avg_pool2d(msn.tensor(x), 3).numpy()
    np.testing.assert_array_equal(y, torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), 3).numpy())
    assert np.isnan(y).sum() == 1


def test_adaptive_avg_pool2d_one_is_global_mean_and_gradcheck():
    x_np = np.random.default_rng(5).standard_normal((2, 3, 5, 7))
    y = F.adaptive_avg_pool2d(t64(x_np), 1)
    np.testing.assert_allclose(y.numpy(), x_np.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 2)), [t64(x_np[:1, :2])])
    # sizes that divide evenly take the block path (a reshape and a mean)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 2)), [t64(x_np[:1, :2, :3, :4].repeat(2, axis=2))])


# ---- max_unpool2d -----------------------------------------------------------------------
@st.composite
def _unpool_case(draw):
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    H, W = draw(st.integers(max(k, 2), 9)), draw(st.integers(max(k, 2), 9))
    pooled = shapes.max_pool2d_output_size((H, W), k, s, p)
    default = shapes.max_unpool2d_output_size(pooled, k, s, p) if min(
        (pooled[a] - 1) * s - 2 * p + k for a in range(2)) >= 1 else None
    size_kind = draw(st.sampled_from(["default", "input", "full"]))
    return k, s, p, (2, 3, H, W), size_kind, default, draw(st.integers(0, 2**16))


@given(case=_unpool_case())
def test_max_unpool2d_matches_torch(torch, case):
    k, s, p, shape, size_kind, default, seed = case
    x_np = np.random.default_rng(seed).standard_normal(shape)
    y_np, idx = F.max_pool2d(msn.tensor(x_np), k, s, p, return_indices=True)
    output_size = {"default": None, "input": shape[2:], "full": shape}[size_kind]
    if size_kind == "default" and default is None:
        # the default size would be 0: PyTorch returns an empty tensor, minisegnet refuses clearly
        with pytest.raises(ValueError, match="the unpooled size would be"):
            F.max_unpool2d(t64(y_np.numpy()), idx, k, s, p)
        return
    ty = as_torch(torch, y_np.numpy())
    tidx = torch.tensor(idx.numpy())
    try:
        tu = torch.nn.functional.max_unpool2d(ty, tidx, k, s, p, output_size=output_size)
    except (ValueError, RuntimeError):
        with pytest.raises(ValueError):
            F.max_unpool2d(t64(y_np.numpy()), idx, k, s, p, output_size=output_size)
        return
    y = t64(y_np.numpy())
    u = F.max_unpool2d(y, idx, k, s, p, output_size=output_size)
    assert_close(u, tu)
    if output_size is None:
        assert u.shape[2:] == default
    g = np.random.default_rng(seed + 1).standard_normal(u.shape)
    u.backward(g)
    tu.backward(torch.tensor(g))
    assert_close(y.grad, ty.grad, what="grad")


@given(N=st.integers(1, 2), C=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5),
       k=st.integers(1, 3), extra=st.tuples(st.integers(0, 2), st.integers(0, 2)), seed=st.integers(0, 2**16))
def test_pool_unpool_adjoint_identity(N, C, h, w, k, extra, seed):
    """<unpool(y, idx), z> == <y, gather(z, idx)> for non-overlapping windows
    (each index written once), with gather computed independently by NumPy,
    and the op's backward equal to that gather."""
    H, W = h * k + extra[0] % k, w * k + extra[1] % k          # odd sizes included
    rng = np.random.default_rng(seed)
    _, idx = F.max_pool2d(msn.tensor(rng.standard_normal((N, C, H, W))), k, return_indices=True)
    y_np = rng.standard_normal(idx.shape)
    z_np = rng.standard_normal((N, C, H, W))
    y = t64(y_np)
    u = F.max_unpool2d(y, idx, k, output_size=(H, W))
    gathered = np.take_along_axis(z_np.reshape(N, C, -1), idx.numpy().reshape(N, C, -1), axis=2).reshape(idx.shape)
    np.testing.assert_allclose((u.numpy() * z_np).sum(), (y_np * gathered).sum(), rtol=1e-12, atol=1e-12)
    u.backward(z_np)
    np.testing.assert_array_equal(y.grad.numpy(), gathered)


def test_segnet_odd_size_round_trip():
    """5x7 -> pool 2 -> 2x3 -> unpool with output_size -> 5x7, maxima back in place."""
    x_np = np.random.default_rng(6).standard_normal((1, 2, 5, 7))
    y, idx = F.max_pool2d(msn.tensor(x_np), 2, return_indices=True)
    u = F.max_unpool2d(y, idx, 2, output_size=(5, 7)).numpy()
    assert u.shape == (1, 2, 5, 7)
    kept = u != 0
    assert kept.sum() == y.size
    np.testing.assert_array_equal(u[kept], x_np[kept])
    with pytest.raises(ValueError, match="output_size"):
        F.max_unpool2d(y, idx, 2, output_size=(6, 7))


def test_max_unpool2d_gradcheck():
    x_np = np.random.default_rng(7).permutation(np.arange(30.0)).reshape(1, 1, 5, 6)
    y, idx = F.max_pool2d(msn.tensor(x_np), 2, return_indices=True)
    assert gradcheck(lambda t: F.max_unpool2d(t, idx, 2, output_size=(5, 6)), [t64(y.numpy())])


# ---- errors ---------------------------------------------------------------------------
def _x(shape=(1, 1, 4, 4)):
    return msn.tensor(np.zeros(shape))


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.max_pool2d(_x(), 2, padding=2), ValueError, "padding"),
    (lambda: F.max_pool2d(_x(), 3, padding=(0, 2)), ValueError, "padding"),
    (lambda: F.avg_pool2d(_x(), 2, padding=2), ValueError, "padding"),
    (lambda: F.max_pool2d(_x((4, 4)), 2), ValueError, "4-D"),
    (lambda: F.avg_pool2d(_x((1, 4, 4)), 2), ValueError, "4-D"),
    (lambda: F.adaptive_avg_pool2d(_x((1, 1, 1, 4, 4)), 2), ValueError, "4-D"),
    (lambda: F.max_pool2d(msn.tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), 2), TypeError, "floating"),
    (lambda: F.max_pool2d(np.zeros((1, 1, 4, 4)), 2), TypeError, "Tensor"),
    (lambda: F.max_pool2d(_x(), 0), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), 2, stride=0), ValueError, "stride"),
    (lambda: F.max_pool2d(_x(), 2.5), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), 5), ValueError, "window"),
    (lambda: F.max_pool2d(_x((1, 1, 4, 1)), 2, padding=1, dilation=2), ValueError, "reads only padding"),
    (lambda: F.max_pool2d(_x(), 2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (lambda: F.avg_pool2d(_x(), 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: F.avg_pool2d(_x(), 2, divisor_override=2.5), TypeError, "^avg_pool2d: divisor_override must be an int"),
    (lambda: F.adaptive_avg_pool2d(_x(), 0), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(_x(), (1, 2, 3)), TypeError, "output_size"),
])
def test_pooling_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


def _pooled():
    y, idx = F.max_pool2d(msn.tensor(np.random.default_rng(0).standard_normal((1, 1, 4, 4))), 2,
                          return_indices=True)
    return y, idx


@pytest.mark.parametrize("mutate, kwargs, error, words", [
    (lambda i: i + 16, {}, ValueError, "indices must lie in"),        # 4x4 plane: 16 is out
    (lambda i: i - 20, {}, ValueError, "indices must lie in"),
    (lambda i: i.astype(np.float64), {}, TypeError, "int64"),
    (lambda i: i[..., :1], {}, ValueError, "shape"),
    (lambda i: i, {"output_size": (6, 4)}, ValueError, "strictly between 2 and 6"),
    (lambda i: i, {"output_size": (2, 4)}, ValueError, "output_size"),
    (lambda i: i, {"output_size": (4, 4, 4)}, TypeError, "output_size"),
    (lambda i: i, {"output_size": (4.0, 4)}, TypeError, "output_size"),
])
def test_max_unpool2d_errors(mutate, kwargs, error, words):
    y, idx = _pooled()
    bad = msn.tensor(mutate(idx.numpy()))
    with pytest.raises(error, match=words):
        F.max_unpool2d(y, bad, 2, **kwargs)


def test_max_unpool2d_rejects_index_outside_a_smaller_output():
    """Indices valid for a 6x6 plane are out of range for the default 5x5 output."""
    x = np.zeros((1, 1, 6, 6))
    x[0, 0, 5, 5] = 1.0
    y, idx = F.max_pool2d(msn.tensor(x), 3, stride=2, padding=1, return_indices=True)
    assert idx.numpy().max() == 35
    assert F.max_unpool2d(y, idx, 3, 2, 1, output_size=(6, 6)).numpy()[0, 0, 5, 5] == 1.0
    with pytest.raises(ValueError, match="indices must lie in"):
        F.max_unpool2d(y, idx, 3, 2, 1)


# ---- modules --------------------------------------------------------------------------
def test_modules_match_torch_modules(torch):
    x_np = np.random.default_rng(8).standard_normal((2, 3, 7, 6))
    x, tx = t64(x_np), as_torch(torch, x_np)
    pairs = [
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AdaptiveAvgPool2d((2, None)), torch.nn.AdaptiveAvgPool2d((2, None))),
        (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)),
    ]
    for ours, theirs in pairs:
        assert_close(ours(x), theirs(tx), what=type(ours).__name__)
        assert list(ours.parameters()) == [] and ours.state_dict() == {}
    pool, tpool = nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    y, idx = pool(x)
    ty, tidx = tpool(tx)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    unpool, tunpool = nn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2)
    assert_close(unpool(y, idx, output_size=(7, 6)), tunpool(ty, tidx, output_size=(7, 6)))
    for name in ("kernel_size", "stride", "padding"):
        assert getattr(unpool, name) == getattr(tunpool, name)
    for name in ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"):
        assert getattr(pool, name) == getattr(tpool, name)
    avg, tavg = nn.AvgPool2d(2), torch.nn.AvgPool2d(2)
    for name in ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"):
        assert getattr(avg, name) == getattr(tavg, name)


def test_max_unpool2d_names_the_axis_and_both_rules_of_output_size():
    """"axis 1 must be strictly between -2 and 2" refused a width of 0, which lies there."""
    x, idx = msn.tensor(np.zeros((1, 1, 1, 1))), msn.tensor(np.zeros((1, 1, 1, 1), np.int64))
    with pytest.raises(ValueError, match=r"its width must be at least 1 and strictly between -2 and 2 "
                                         r"\(default width 0, stride 2\)"):
        F.max_unpool2d(x, idx, 2, 2, 1, output_size=(1, 0))


def test_max_unpool2d_of_pooled_is_max_unpool2d_without_the_index_check():
    from minisegnet.functional.pooling import max_unpool2d_of_pooled
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 3, 5, 7)))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(max_unpool2d_of_pooled(y, idx, 2, output_size=(5, 7)).numpy(),
                                  F.max_unpool2d(y, idx, 2, output_size=(5, 7)).numpy())
    with pytest.raises(ValueError, match="indices must lie in"):
        F.max_unpool2d(y, idx, 2)                     # the default 4 x 6 output: index 34 outside


@pytest.mark.parametrize("shape, args", [
    ((1, 2, 6, 6), dict(kernel_size=3, stride=3, padding=1)),      # padded: not tiled
    ((1, 2, 6, 6), dict(kernel_size=2, stride=3)),                 # gaps between windows
    ((1, 2, 9, 3), dict(kernel_size=(3, 2))),                      # a column left over
    ((1, 2, 4, 5), dict(kernel_size=2)),                           # odd width
    ((1, 2, 5, 4), dict(kernel_size=2)),                           # odd height
    ((1, 2, 6, 4), dict(kernel_size=2)),                           # tiled
])
def test_max_pool2d_backward_writes_every_pixel(monkeypatch, shape, args):
    """The backward's gradient buffer starts from ``empty`` only where the windows tile the input;
    with ``empty`` filled with NaN, a pixel no window writes would show: the gradient is the
    plain loop's bit for bit."""
    from minisegnet.functional import pooling

    x = np.random.default_rng(0).standard_normal(shape)

    def grad(copy_if_disjoint):
        monkeypatch.setattr(pooling, "COPY_IF_DISJOINT", copy_if_disjoint)
        t = msn.tensor(x, requires_grad=True)
        y = F.max_pool2d(t, **args)
        nan_empty = lambda shape, dtype=float, *a, **k: np.full(shape, np.nan, dtype)   # noqa: E731
        with monkeypatch.context() as m:
            m.setattr(np, "empty", nan_empty)
            y.backward(np.ones(y.shape))
        return t.grad.numpy()

    np.testing.assert_array_equal(grad(True), grad(False))


def test_copy_if_disjoint_false_adds_even_where_windows_tile(monkeypatch):
    """Off, the lever leaves no shortcut: tiling windows add their gradient too (-0.0 + 0.0 is
    +0.0, where a copy keeps -0.0)."""
    from minisegnet.functional import pooling

    monkeypatch.setattr(pooling, "COPY_IF_DISJOINT", False)
    t = msn.tensor(np.random.default_rng(0).standard_normal((1, 1, 4, 4)), requires_grad=True)
    y = F.max_pool2d(t, 2)
    y.backward(np.full(y.shape, -0.0))
    assert not np.signbit(t.grad.numpy()).any()


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def _pair(torch):
    x_np = np.random.default_rng(3).standard_normal((2, 3, 9, 8))
    return msn.tensor(x_np), torch.tensor(x_np)


def _same(ours, theirs):
    a, b = ours.numpy(), theirs.detach().numpy()
    assert a.shape == b.shape, f"shape {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_max_pool2d_layer_passes_dilation_on(torch):
    # guards: MaxPool2d(dilation=2) dilates its windows (a layer that dropped it pools 3x3 blocks)
    x, tx = _pair(torch)
    _same(nn.MaxPool2d(3, 1, 1, dilation=2)(x), torch.nn.MaxPool2d(3, 1, 1, dilation=2)(tx))


def test_avg_pool2d_layer_passes_ceil_mode_on(torch):
    # guards: AvgPool2d(ceil_mode=True) keeps the last partial window (9 -> 5 rows, not 4)
    x, tx = _pair(torch)
    ours, theirs = nn.AvgPool2d(2, ceil_mode=True)(x), torch.nn.AvgPool2d(2, ceil_mode=True)(tx)
    assert ours.shape == (2, 3, 5, 4)
    _same(ours, theirs)


def test_max_pool2d_positional_arguments_in_torchs_order(torch):
    # guards: MaxPool2d's positional order (..., dilation, return_indices, ceil_mode) is torch's
    x, tx = _pair(torch)
    ours, theirs = nn.MaxPool2d(2, 2, 0, 1, True, False), torch.nn.MaxPool2d(2, 2, 0, 1, True, False)
    assert ours.return_indices is True and ours.ceil_mode is False
    (y, idx), (ty, tidx) = ours(x), theirs(tx)
    _same(y, ty)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


def test_upsample_layer_passes_align_corners_on(torch):
    # guards: Upsample(align_corners=True) reaches F.interpolate (the corners' grid, not the centres')
    x, tx = _pair(torch)
    ours = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(x)
    _same(ours, torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(tx))


def test_upsample_layer_passes_recompute_scale_factor_on(torch):
    # guards: Upsample(recompute_scale_factor=True) samples with the scale the output size implies
    x, tx = _pair(torch)
    ours = nn.Upsample(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)(x)
    theirs = torch.nn.Upsample(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)(tx)
    _same(ours, theirs)


@pytest.mark.parametrize("kernel, dtype", [((16, 16), np.uint8), ((16, 17), np.int32), ((1, 257), np.int32)])
def test_max_pool_keeps_one_byte_per_output_for_up_to_256_taps(torch, kernel, dtype):
    """pooling.md: "one byte per output for kernels of up to 256 taps": a 16x16 window (offsets
    0..255) still fits a uint8 and its largest offsets decode right; one tap more does not."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 18, 260))
    x[0, 0, 15, 15] = x[0, 1, 15, 16] = 50.0        # winners at the window's last offsets
    t = msn.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(t, kernel, stride=1, return_indices=True)
    assert y.creator.winner.dtype == dtype
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), kernel, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    if kernel == (16, 16):
        assert int(y.creator.winner.max()) == 255            # the last offset, 255, decoded right above


@pytest.mark.parametrize("case", ["avg 64", "avg 300", "avg 3x3 of 5000s", "adaptive 5000 -> 3", "adaptive 7 -> 3"])
def test_float16_pooling_adds_up_in_float32_as_pytorch(torch, case):
    """PyTorch's float16 average adds up in float32 (its opmath). The old code added up in float16,
    whose count stops at 2048 (a 64x64 mean of ones gave 0.5, 300x300 gave 0: its divisor
    90000 was inf in float16) and whose sums overflow past 65504 (5000 values of 100 gave inf)."""
    rng = np.random.default_rng(0)
    x, call = {"avg 64": (np.ones((1, 1, 64, 64)), ("avg_pool2d", 64)),
               "avg 300": (rng.standard_normal((1, 2, 300, 300)), ("avg_pool2d", 300)),
               "avg 3x3 of 5000s": (np.full((1, 1, 6, 6), 5000.0), ("avg_pool2d", 3)),
               "adaptive 5000 -> 3": (np.full((1, 1, 1, 5000), 100.0), ("adaptive_avg_pool2d", (1, 3))),
               "adaptive 7 -> 3": (np.abs(rng.standard_normal((1, 1, 7, 7))) * 1.5e4, ("adaptive_avg_pool2d", 3))}[case]
    x = x.astype(np.float16)
    name, arg = call
    ours = getattr(F, name)(msn.tensor(x), arg).numpy()
    theirs = getattr(torch.nn.functional, name)(torch.tensor(x), arg).numpy()
    assert ours.dtype == np.float16 and np.isfinite(ours).all()
    np.testing.assert_array_equal(ours, theirs)


def test_float16_average_pooling_gradient_is_the_float64_one_rounded():
    """The backward pass computes in float32 too: 1/90000 of a 300x300 window is a float16
    subnormal, kept (PyTorch 2.13 gives 0 there, its divisor rounded to inf first)."""
    x = msn.tensor(np.zeros((1, 1, 300, 300), np.float16), requires_grad=True)
    F.avg_pool2d(x, 300).backward(np.ones((1, 1, 1, 1), np.float16))
    assert x.grad.dtype == np.float16
    assert (x.grad.numpy() == np.float16(1 / 90000)).all()


# ---- mutation review of stop 40's changes
@pytest.mark.parametrize("call", [("avg_pool2d", {"kernel_size": 3, "stride": 1}),
                                  ("adaptive_avg_pool2d", {"output_size": 3})])
def test_float16_pooling_gradient_adds_up_in_float32(call):
    """Overlapping windows (avg 3x3 stride 1) and bins (adaptive 7 -> 3) add their shares in
    float32 and round once: the float16 gradient is the float32 one rounded, bit for bit."""
    name, kwargs = call
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((1, 2, 7, 7)), rng.uniform(0.1, 100, (1, 2, 5, 5) if kwargs.get("stride") else (1, 2, 3, 3))
    grads = {}
    for dtype in (np.float16, np.float32):
        t = msn.tensor(x.astype(dtype), requires_grad=True)
        getattr(F, name)(t, **kwargs).backward(g.astype(np.float16).astype(dtype))
        grads[dtype] = t.grad.numpy()
    assert grads[np.float16].dtype == np.float16
    np.testing.assert_array_equal(grads[np.float16], grads[np.float32].astype(np.float16))


def test_float16_adaptive_average_pooling_gradient_of_a_large_bin_is_not_zero(torch):
    """Global pooling of 300x300 (equal blocks, the reshape path): dx = g / 90000. The divisor was
    made float16 first (inf), so the gradient was 0; PyTorch 2.13 gives 1/90000 rounded once (a
    float16 subnormal), as our avg_pool2d already does."""
    x = msn.tensor(np.zeros((1, 2, 300, 300), np.float16), requires_grad=True)
    F.adaptive_avg_pool2d(x, 1).backward(np.ones((1, 2, 1, 1), np.float16))
    tx = torch.zeros((1, 2, 300, 300), dtype=torch.float16, requires_grad=True)
    torch.nn.functional.adaptive_avg_pool2d(tx, 1).backward(torch.ones((1, 2, 1, 1), dtype=torch.float16))
    assert x.grad.dtype == np.float16
    assert (x.grad.numpy() == np.float16(1 / 90000)).all()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_pool_layers_gradients_match_torch_layers(torch):
    x_np = np.random.default_rng(8).standard_normal((2, 3, 7, 6))
    pairs = [
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (nn.MaxPool2d(2, dilation=2), torch.nn.MaxPool2d(2, dilation=2)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=4),
         torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=4)),
        (nn.AdaptiveAvgPool2d((2, None)), torch.nn.AdaptiveAvgPool2d((2, None))),
        (nn.AdaptiveAvgPool2d(4), torch.nn.AdaptiveAvgPool2d(4)),
    ]
    for i, (ours, theirs) in enumerate(pairs):
        x, tx = t64(x_np), as_torch(torch, x_np)
        y, ty = ours(x), theirs(tx)
        assert_close(y, ty, what=f"{i} values")
        g = np.random.default_rng(i).standard_normal(y.shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        assert_close(x.grad, tx.grad, what=f"{i} {type(ours).__name__} grad")
    pool, tpool = nn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)
    y, idx = pool(t64(x_np, requires_grad=False))
    ty, tidx = tpool(as_torch(torch, x_np, requires_grad=False))
    y, ty = t64(y.numpy()), as_torch(torch, ty.numpy())
    u = nn.MaxUnpool2d(2)(y, idx, output_size=(7, 6))
    tu = torch.nn.MaxUnpool2d(2)(ty, tidx, output_size=(7, 6))
    assert_close(u, tu)
    g = np.random.default_rng(9).standard_normal(u.shape)
    u.backward(g)
    tu.backward(torch.tensor(g))
    assert_close(y.grad, ty.grad, what="MaxUnpool2d grad")
