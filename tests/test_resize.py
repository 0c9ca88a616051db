"""interpolate (nearest, bilinear): PyTorch parity of values and gradients on
Hypothesis-drawn sizes, scale factors and flags, the paper example, float64
gradcheck, adjoint identity, output shape == shapes formula, errors, nn.Upsample."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import functional as F, nn, shapes
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64

SCALES = [0.3, 0.5, 2 / 3, 0.9, 1.0, 1.1, 1.3, 1.5, 1.7, 2.0, 2.2, 2.5, 3.0, 1 / 3, 4.0]


@st.composite
def _resize_case(draw):
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    align_corners = None if mode == "nearest" else draw(st.sampled_from([None, False, True]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    if draw(st.booleans()):
        size = draw(st.one_of(st.integers(1, 20), st.tuples(st.integers(1, 20), st.integers(1, 20))))
        scale_factor, recompute = None, None
    else:
        size = None
        scale_factor = draw(st.one_of(st.sampled_from(SCALES), st.tuples(st.sampled_from(SCALES),
                                                                          st.sampled_from(SCALES))))
        recompute = draw(st.sampled_from([None, False, True]))
    kwargs = dict(size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                  recompute_scale_factor=recompute)
    return shape, kwargs, draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**16))


@given(case=_resize_case())
def test_interpolate_matches_torch(torch, case):
    shape, kwargs, dtype, seed = case
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape).astype(dtype)
    tx = as_torch(torch, x_np)
    try:
        ty = torch.nn.functional.interpolate(tx, **kwargs)
    except (RuntimeError, ValueError):
        with pytest.raises(ValueError):       # an output size of 0: refused by both
            F.interpolate(msn.tensor(x_np), **kwargs)
        return
    x = msn.tensor(x_np, requires_grad=True)
    y = F.interpolate(x, **kwargs)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert y.dtype == dtype
    assert_close(y, ty, atol=tol, rtol=tol)
    assert y.shape[2:] == shapes.interpolate_output_size(shape[2:], kwargs["size"] if not isinstance(
        kwargs["size"], int) else (kwargs["size"],) * 2, kwargs["scale_factor"])
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, atol=10 * tol, rtol=tol, what="grad")


def test_nearest_indices_match_torch_on_awkward_float32_ratios(torch):
    """Sizes where dst * in / out lands within float32 rounding of a whole number:
    the float32 coordinate arithmetic must pick PyTorch's neighbour."""
    for n_in, n_out in [(40, 108), (16, 166), (120, 194), (50, 345), (105, 25), (7, 3), (13, 29)]:
        x = np.arange(n_in, dtype=np.float32).reshape(1, 1, 1, n_in)
        y = F.interpolate(msn.tensor(x), size=(1, n_out)).numpy()
        ty = torch.nn.functional.interpolate(torch.tensor(x), size=(1, n_out)).numpy()
        np.testing.assert_array_equal(y, ty, err_msg=f"{n_in} -> {n_out}")
    # float64 too, where the coordinate's rounding to float32 before the floor decides these
    # (a floor without it passed the float32 cases above)
    for n_in, n_out in [(2, 98), (6, 94), (18, 66), (26, 46), (30, 22)]:
        x = np.arange(n_in, dtype=np.float64).reshape(1, 1, 1, n_in)
        np.testing.assert_array_equal(F.interpolate(msn.tensor(x), size=(1, n_out)).numpy(),
                                      torch.nn.functional.interpolate(torch.tensor(x), size=(1, n_out)).numpy(),
                                      err_msg=f"{n_in} -> {n_out}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, kwargs", [
    ((31, 57), dict(scale_factor=(2.3, 1.0))),        # output 71 + 57 = 128: PyTorch's small path
    ((31, 58), dict(scale_factor=(2.3, 1.0))),        # 71 + 58 = 129: the other path (float64 differs)
    ((5, 54), dict(scale_factor=(1.06, 3.88))),       # 5 rows stay 5, moved by the formula when large
    ((5, 20), dict(scale_factor=(1.06, 3.88))),       # ... copied when small
    ((2, 48), dict(scale_factor=(2.26, 2.89))),       # 2 rows become 4: not dst // 2 when large
    ((40, 80), dict(scale_factor=(1.01, 2.0))),
    ((2, 41), dict(size=(82, 1))),
    ((2, 10), dict(scale_factor=(2.26, 1.0))),        # 2 rows become 4: dst // 2 on the small path
    ((3, 10), dict(scale_factor=(2.3, 1.0))),
])
def test_nearest_follows_torchs_two_paths_by_output_size(torch, dtype, shape, kwargs):
    """PyTorch's CPU nearest special-cases out == in and out == 2 * in and computes in float32
    only for outputs of height plus width <= 128 (``resize.NEAREST_SMALL_OUTPUT``); a fuzz
    review found both rules missing (float64 picking the other row, a scale factor on a kept
    axis). The forward is PyTorch's. Its backward takes the small path's indices at every size,
    so where the paths differ its gradient is not the adjoint of its forward (the dot-product
    identity fails for torch); ours is, and agrees with torch's wherever torch's is."""
    x_np = np.arange(np.prod(shape), dtype=dtype).reshape((1, 1) + shape)
    x = msn.tensor(x_np, requires_grad=True)
    y = F.interpolate(x, **kwargs)
    tx = torch.tensor(x_np, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, **kwargs)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    g = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    tol = 1e-9 if dtype == np.float64 else 1e-3
    adjoint = lambda grad, out: np.isclose((g * out).sum(), (grad * x_np).sum(), rtol=tol)
    assert adjoint(x.grad.numpy(), y.numpy())                               # ours: the transpose
    if adjoint(tx.grad.numpy(), ty.detach().numpy()):
        assert_close(x.grad, tx.grad, what="grad")                          # torch's too: the same
    else:
        assert sum(y.shape[2:]) > F.resize.NEAREST_SMALL_OUTPUT             # only on the large path


@given(h=st.integers(1, 70), w=st.integers(1, 70), dtype=st.sampled_from([np.float32, np.float64]),
       size=st.one_of(st.none(), st.tuples(st.integers(1, 160), st.integers(1, 160))),
       scale=st.tuples(st.sampled_from([1.01, 1.06, 1.5, 2.0, 2.3, 2.89, 3.88, 0.7]),
                       st.sampled_from([1.01, 1.06, 1.5, 2.0, 2.3, 2.89, 3.88, 0.7])),
       recompute=st.sampled_from([None, True]))
def test_nearest_indices_match_torch_at_any_output_size(torch, h, w, dtype, size, scale, recompute):
    kwargs = dict(size=size) if size else dict(scale_factor=scale, recompute_scale_factor=recompute)
    x_np = np.arange(h * w, dtype=dtype).reshape(1, 1, h, w)
    try:
        ty = torch.nn.functional.interpolate(torch.tensor(x_np), **kwargs)
    except (RuntimeError, ValueError):
        return                                           # an empty output: the test above covers refusals
    np.testing.assert_array_equal(F.interpolate(msn.tensor(x_np), **kwargs).numpy(), ty.numpy())


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_copies_an_axis_whose_size_does_not_change(torch, mode):
    """floor(5 * 1.1) = 5: the height keeps its size under a scale factor of 1.1, and is copied
    as PyTorch copies it (a random draw reached this case too rarely to catch its removal)."""
    x_np = np.random.default_rng(0).standard_normal((1, 1, 5, 4))
    y = F.interpolate(t64(x_np), scale_factor=(1.1, 2), mode=mode)
    assert_close(y, torch.nn.functional.interpolate(torch.tensor(x_np), scale_factor=(1.1, 2), mode=mode))


def test_bilinear_paper_example():
    x = msn.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).numpy()[0, 0]
    np.testing.assert_allclose(y[0], [1, 1.25, 1.75, 2])
    np.testing.assert_allclose(y[:, 0], [1, 1.5, 2.5, 3])
    y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True).numpy()[0, 0]
    np.testing.assert_allclose(y[0], [1, 4 / 3, 5 / 3, 2])
    np.testing.assert_allclose(y[-1], [3, 10 / 3, 11 / 3, 4])


def test_nearest_example_and_output_size_one():
    x = msn.tensor(np.arange(1.0, 4.0).reshape(1, 1, 1, 3))
    assert F.interpolate(x, size=(1, 6)).numpy().ravel().tolist() == [1, 1, 2, 2, 3, 3]
    assert F.interpolate(x, size=(1, 7)).numpy().ravel().tolist() == [1, 1, 1, 2, 2, 3, 3]
    # output size 1: align_corners=True takes the first pixel, False the centre's left neighbour mix
    assert F.interpolate(x, size=(1, 1), mode="bilinear", align_corners=True).numpy().ravel().tolist() == [1]
    assert F.interpolate(x, size=(1, 1), mode="bilinear", align_corners=False).numpy().ravel().tolist() == [2]


@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2, mode="nearest"),
    dict(size=(5, 2), mode="nearest"),
    dict(scale_factor=(1.7, 0.6), mode="bilinear"),
    dict(size=(7, 3), mode="bilinear", align_corners=True),
    dict(size=(1, 4), mode="bilinear", align_corners=False),
])
def test_interpolate_gradcheck(kwargs):
    x = t64(np.random.default_rng(2).standard_normal((1, 2, 4, 3)))
    assert gradcheck(lambda t: F.interpolate(t, **kwargs), [x])


@given(case=_resize_case())
def test_interpolate_adjoint_identity(case):
    """<interp(x), y> == <x, interp^T(y)>, the transpose taken by autograd; and the
    transpose is the matrix built column by column from interp on basis images."""
    shape, kwargs, _, seed = case
    shape = (1, 1) + shape[2:]
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape)
    try:
        y = F.interpolate(t64(x_np, requires_grad=False), **kwargs)
    except ValueError:
        return                                 # output size 0 for this draw
    z_np = rng.standard_normal(y.shape)
    x = t64(np.zeros(shape))
    F.interpolate(x, **kwargs).backward(z_np)
    np.testing.assert_allclose((y.numpy() * z_np).sum(), (x_np * x.grad.numpy()).sum(), rtol=1e-10, atol=1e-10)
    # the dense operator from basis images: column j is interp(e_j)
    n = x_np.size
    basis = np.eye(n).reshape((n, 1) + shape[2:])
    with msn.no_grad():
        A = F.interpolate(msn.tensor(basis), **kwargs).numpy().reshape(n, -1).T
    np.testing.assert_allclose(x.grad.numpy().ravel(), A.T @ z_np.ravel(), rtol=1e-10, atol=1e-10)


# ---- errors ----------------------------------------------------------------------------
def _x(shape=(1, 1, 4, 4), dtype=np.float64):
    return msn.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.interpolate(_x(), size=4, scale_factor=2), ValueError, "exactly one of size and scale_factor"),
    (lambda: F.interpolate(_x()), ValueError, "exactly one of size and scale_factor"),
    (lambda: F.interpolate(_x(), scale_factor=2, align_corners=True), ValueError, "align_corners"),
    (lambda: F.interpolate(_x(), scale_factor=2, align_corners=False), ValueError, "align_corners"),
    (lambda: F.interpolate(_x(), scale_factor=2, mode="bilinear", align_corners=1), TypeError, "align_corners"),
    (lambda: F.interpolate(_x((4, 4)), scale_factor=2), ValueError, "4-D"),
    (lambda: F.interpolate(_x((1, 1, 1, 4, 4)), scale_factor=2), ValueError, "4-D"),
    (lambda: F.interpolate(_x(dtype=np.int64), scale_factor=2), TypeError, "floating"),
    (lambda: F.interpolate(np.zeros((1, 1, 4, 4)), scale_factor=2), TypeError, "Tensor"),
    (lambda: F.interpolate(_x(), scale_factor=2, mode="bicubic"), ValueError, "mode"),
    (lambda: F.interpolate(_x(), scale_factor=-2), ValueError, "scale_factor"),
    (lambda: F.interpolate(_x(), scale_factor="2"), TypeError, "scale_factor"),
    (lambda: F.interpolate(_x(), scale_factor=(2, 2, 2)), TypeError, "scale_factor"),
    (lambda: F.interpolate(_x(), scale_factor=0.1), ValueError, "scale_factor"),
    (lambda: F.interpolate(_x(), size=0), ValueError, "size"),
    (lambda: F.interpolate(_x(), size=(2, 2, 2)), TypeError, "size"),
    (lambda: F.interpolate(_x(), size=4, recompute_scale_factor=True), ValueError, "recompute_scale_factor"),
])
def test_interpolate_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---- module ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2), dict(size=(5, 9)), dict(scale_factor=1.5, mode="bilinear"),
    dict(scale_factor=(2, 3), mode="bilinear", align_corners=True),
])
def test_upsample_module_matches_torch(torch, kwargs):
    x_np = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    x, tx = t64(x_np), as_torch(torch, x_np)
    ours, theirs = nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    y, ty = ours(x), theirs(tx)
    assert_close(y, ty)
    g = np.random.default_rng(4).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)
    for name in ("size", "scale_factor", "mode", "align_corners"):
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize("n_in, n_out", [(2, 196), (3, 147), (4, 206), (6, 188)])
def test_nearest_float64_large_path_rounds_coordinate_to_float32(torch, n_in, n_out):
    """Past 128 output pixels nearest takes its source coordinate through float32, as PyTorch."""
    x = np.arange(n_in, dtype=np.float64).reshape(1, 1, 1, n_in)      # 1 + n_out > 128: the large path
    np.testing.assert_array_equal(F.interpolate(msn.tensor(x), size=(1, n_out)).numpy(),
                                  torch.nn.functional.interpolate(torch.tensor(x), size=(1, n_out)).numpy())


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_keeps_float16(torch, mode):
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 5)).astype(np.float16)
    y = F.interpolate(msn.tensor(x), size=(4, 7), mode=mode)
    ty = torch.nn.functional.interpolate(torch.tensor(x), size=(4, 7), mode=mode)
    assert y.dtype == np.float16 == ty.numpy().dtype
    np.testing.assert_allclose(y.numpy(), ty.numpy(), atol=2e-3)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [(1, 7), (3, 7), (1, 2), (5, 3), (2, 9)])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_gradient_reaches_no_pixel_that_did_not_read_it(torch, mode, size, bad):
    """An infinite or NaN output gradient: nearest's input gradient is PyTorch's exactly; no pixel
    becomes non-finite unless PyTorch's does too (PyTorch's bilinear backward also multiplies by
    weights of 0, making NaN in a few more pixels, which the docstring states), and the finite
    pixels equal PyTorch's. The old gather table read output 0 with weight 0 in its unused slots:
    0 * inf made NaN in pixels no output read (nearest 4 -> 7: [inf, 0, 0, nan])."""
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    g = np.zeros((1, 1) + size, np.float32)
    g[0, 0, 0, 0] = bad
    ours = msn.tensor(x, requires_grad=True)
    with np.errstate(invalid="ignore"):
        F.interpolate(ours, size=size, mode=mode).backward(g)
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.interpolate(theirs, size=size, mode=mode).backward(torch.tensor(g))
    ours, theirs = ours.grad.numpy(), theirs.grad.numpy()
    if mode == "nearest":
        np.testing.assert_array_equal(ours, theirs)
    assert np.isfinite(theirs[~np.isfinite(ours)]).sum() == 0
    np.testing.assert_array_equal(ours[np.isfinite(theirs)], theirs[np.isfinite(theirs)])


@pytest.mark.parametrize("mode, kwargs", [
    ("bilinear", dict(size=(13, 17), align_corners=False)),
    ("bilinear", dict(scale_factor=2.0)),
    ("bilinear", dict(scale_factor=0.5)),
    ("nearest", dict(size=(13, 17))),
])
def test_interpolate_float16_rounds_once_as_torch(torch, mode, kwargs):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((2, 3, 9, 11)).astype(np.float16)
    x, tx = msn.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    y = F.interpolate(x, mode=mode, **kwargs)
    ty = torch.nn.functional.interpolate(tx, mode=mode, **kwargs)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    g = rng.standard_normal(y.shape).astype(np.float16)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolate_float16_honours_recompute_scale_factor_as_torch(torch, mode):
    x_np = np.random.default_rng(0).standard_normal((1, 2, 7, 9)).astype(np.float16)
    kwargs = dict(scale_factor=1.7, recompute_scale_factor=True)
    y = F.interpolate(msn.tensor(x_np), mode=mode, **kwargs)
    ty = torch.nn.functional.interpolate(torch.tensor(x_np), mode=mode, **kwargs)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    y64 = F.interpolate(msn.tensor(x_np.astype(np.float32)), mode=mode, **kwargs).numpy().astype(np.float16)
    np.testing.assert_array_equal(y.numpy(), y64)


@pytest.mark.parametrize("n_in, n_out", [(74, 182), (77, 137), (67, 105), (50, 66), (3, 9)])
def test_bilinear_float32_weights_are_pytorchs_bit_for_bit(torch, n_in, n_out):
    """align_corners=False: PyTorch 2.13's CPU kernel (its AVX2/AVX512 builds, the dispatch on any
    x86 of the last decade) computes the source coordinate ``scale * (dst + 0.5) - 0.5`` with a
    fused multiply-add, one rounding; ours rounds the product and then the difference. The weights
    then differ in the coordinate's last bit (up to 3.8e-6 at coordinate 64, values 1.3e-5 apart
    for 74 -> 182; 262 of 299 random size pairs had such a column), and where PyTorch's
    coordinate lands just past a pixel and ours exactly on it, an inf in the next row becomes NaN
    in ours and stays inf in PyTorch's ((3, 7) -> (9, 5), an inf at (1, 2): output row 1)."""
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("PyTorch's scalar build (ATEN_CPU_CAPABILITY=default) rounds twice, as ours")
    eye = np.eye(n_in, dtype=np.float32).reshape(1, n_in, 1, n_in)       # channel i: pixel i alone
    ours = F.interpolate(msn.tensor(eye), size=(1, n_out), mode="bilinear", align_corners=False).numpy()
    theirs = torch.nn.functional.interpolate(torch.tensor(eye), size=(1, n_out), mode="bilinear",
                                             align_corners=False).numpy()
    np.testing.assert_array_equal(ours, theirs, err_msg=f"the weights of {n_in} -> {n_out}")


def test_bilinear_non_finite_input_spreads_as_in_pytorch(torch):
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("PyTorch's scalar build (ATEN_CPU_CAPABILITY=default) rounds twice, as ours")
    x = np.arange(21, dtype=np.float32).reshape(1, 1, 3, 7)
    x[0, 0, 1, 2] = np.inf
    with np.errstate(invalid="ignore"):        # inf * 0 in both forwards, as in PyTorch's
        ours = F.interpolate(msn.tensor(x), size=(9, 5), mode="bilinear", align_corners=False).numpy()
    theirs = torch.nn.functional.interpolate(torch.tensor(x), size=(9, 5), mode="bilinear",
                                             align_corners=False).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
