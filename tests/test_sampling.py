"""grid_sample and affine_grid: PyTorch parity of values and both gradients on
Hypothesis-drawn sizes, modes, padding modes and grids (points outside the
image, on pixel centres and exactly on cell borders and rounding ties), float64
gradchecks, the adjoint identity, output shapes == shapes formulas, interpolate
as grid_sample on the identity grid, memory that follows the output, errors."""
import os
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import checks, functional as F, shapes
from minisegnet.functional import sampling
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, current_xp, t64

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

MODES = ["bilinear", "nearest"]
PADDING_MODES = ["zeros", "border", "reflection"]


def special_coordinates(size, align_corners):
    """Normalised coordinates that land exactly on pixel centres, on cell borders / rounding
    ties (half-way between two centres), on the image's edges and far outside."""
    k = np.arange(-3, size + 3, dtype=np.float64)
    if align_corners:
        span = max(size - 1, 1)
        centres, halves = 2 * k / span - 1, (2 * k + 1) / span - 1
    else:
        centres, halves = (2 * k + 1) / size - 1, 2 * k / size - 1
    return np.concatenate([centres, halves, [-1.0, 1.0, 0.0, -3.5, 7.25, -40.0]])


@st.composite
def sampling_case(draw, modes=MODES):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    h_out, w_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    align_corners = draw(st.booleans())
    kwargs = dict(mode=draw(st.sampled_from(modes)), padding_mode=draw(st.sampled_from(PADDING_MODES)),
                  align_corners=align_corners)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    grid = rng.uniform(-1.6, 1.6, (n, h_out, w_out, 2))
    special = draw(st.floats(0, 1))                  # the share of points put on exact positions
    chosen = rng.random((n, h_out, w_out)) < special
    grid[..., 0] = np.where(chosen, rng.choice(special_coordinates(w, align_corners), chosen.shape), grid[..., 0])
    grid[..., 1] = np.where(chosen, rng.choice(special_coordinates(h, align_corners), chosen.shape), grid[..., 1])
    x = rng.standard_normal((n, c, h, w))
    return x.astype(dtype), grid.astype(dtype), kwargs, seed


@given(case=sampling_case())
def test_grid_sample_matches_torch(torch, case):
    x_np, grid_np, kwargs, seed = case
    x, grid = msn.tensor(x_np, requires_grad=True), msn.tensor(grid_np, requires_grad=True)
    tx, tgrid = as_torch(torch, x_np), as_torch(torch, grid_np)
    y = F.grid_sample(x, grid, **kwargs)
    ty = torch.nn.functional.grid_sample(tx, tgrid, **kwargs)
    f64 = x_np.dtype == np.float64
    tol = 1e-10 if f64 else 1e-5
    assert y.dtype == x_np.dtype
    assert_close(y, ty, atol=tol, rtol=tol)
    g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(x_np.dtype)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, atol=10 * tol, rtol=tol, what="input gradient")
    scale = 1 + np.abs(tgrid.grad.numpy()).max()             # d x_pix / d x is up to W / 2
    assert_close(grid.grad, tgrid.grad, atol=10 * tol * scale, rtol=10 * tol, what="grid gradient")


# Far and non-finite points, float64, against torch where torch 2.13's CPU kernel has an answer
# (it crashes on NaN with border or reflection, and on points that scale to infinity with reflection).
EXTREME_POINTS = {"zeros": [np.nan, np.inf, -np.inf, 2e300, 1e308, -1e308, 1e20],
                  "border": [np.inf, -np.inf, 2e300, 1e308, -1e308, 1e20],
                  "reflection": [2e300, -2e300, 1e20]}


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_far_and_non_finite_points_match_torch(torch, padding_mode, align_corners):
    x_np = np.arange(15.0).reshape(1, 1, 3, 5)
    for value in EXTREME_POINTS[padding_mode]:
        grid_np = np.array([[[[value, 0.3], [0.2, -0.4]]]])           # one far point beside an ordinary one
        x, grid = t64(x_np), t64(grid_np)
        tx, tgrid = as_torch(torch, x_np), as_torch(torch, grid_np)
        y = F.grid_sample(x, grid, padding_mode=padding_mode, align_corners=align_corners)
        ty = torch.nn.functional.grid_sample(tx, tgrid, padding_mode=padding_mode, align_corners=align_corners)
        y.backward(np.ones(y.shape))
        ty.backward(torch.ones(ty.shape, dtype=torch.float64))
        for ours, theirs, what in ((y, ty, "output"), (x.grad, tx.grad, "input gradient"),
                                   (grid.grad, tgrid.grad, "grid gradient")):
            np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12,
                                       equal_nan=True, err_msg=f"{what} at x = {value}")


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_non_finite_points_raise_no_numpy_warning(padding_mode, align_corners):
    """Where torch has no answer to compare with (infinite points with reflection), at least no
    NumPy RuntimeWarning leaks out ('invalid value encountered in subtract' did, from reflect)."""
    x = t64(np.arange(15.0).reshape(1, 1, 3, 5))
    grid = t64(np.array([[[[np.inf, 0.3], [0.2, -np.inf]], [[np.nan, 0.1], [1e308, -1e308]]]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.grid_sample(x, grid, padding_mode=padding_mode, align_corners=align_corners)
        y.backward(np.ones(y.shape))
    # float32 near its largest number (the rounding back from float64 overflows), a 1-pixel axis
    for dtype, shape in ((np.float32, (1, 1, 3, 5)), (np.float64, (1, 1, 1, 1))):
        x = msn.tensor(np.ones(shape, dtype), requires_grad=True)
        grid = msn.tensor(np.array([[[[3e38, -3e38], [np.inf, 0.5]]]], dtype), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = F.grid_sample(x, grid, padding_mode=padding_mode, align_corners=align_corners)
            y.backward(np.ones(y.shape, dtype))


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_gradcheck_bilinear(padding_mode, align_corners):
    rng = np.random.default_rng(3)
    x = t64(rng.standard_normal((2, 2, 4, 5)))
    grid = t64(rng.uniform(-1.4, 1.4, (2, 3, 4, 2)))           # some points outside the image
    assert gradcheck(lambda a, b: F.grid_sample(a, b, padding_mode=padding_mode, align_corners=align_corners),
                     [x, grid])


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_grid_sample_gradcheck_nearest(padding_mode):
    """Nearest: the input gradient is exact, and the grid's is 0 (the output is piecewise constant)."""
    rng = np.random.default_rng(4)
    x = t64(rng.standard_normal((1, 2, 4, 5)))
    grid = t64(rng.uniform(-1.4, 1.4, (1, 3, 3, 2)))
    assert gradcheck(lambda a, b: F.grid_sample(a, b, mode="nearest", padding_mode=padding_mode), [x, grid])
    F.grid_sample(x, grid, mode="nearest").sum().backward()
    assert np.all(grid.grad.numpy() == 0)


def test_grid_gradient_is_a_pixel_difference_inside_a_cell():
    """d out / d x_pix between two pixels is their difference, the same all across the cell."""
    x = t64(np.array([[[[1.0, 4.0, 9.0]]]]), requires_grad=False)
    for x_pix, slope in [(0.1, 3.0), (0.5, 3.0), (0.9, 3.0), (1.2, 5.0), (1.7, 5.0)]:
        grid = t64(np.array([[[[(2 * x_pix + 1) / 3 - 1, 0.0]]]]))      # align_corners=False, W = 3
        F.grid_sample(x, grid).backward(np.ones((1, 1, 1, 1)))
        np.testing.assert_allclose(grid.grad.numpy()[0, 0, 0, 0], slope * 3 / 2)   # times dx_pix/dx = W/2


@given(case=sampling_case())
def test_grid_sample_adjoint_identity(case):
    """grid_sample is linear in the input: <S x, y> == <x, S^T y> with S^T from autograd, and S^T is
    the transpose of the dense matrix whose column j samples the basis image e_j."""
    x_np, grid_np, kwargs, seed = case
    x_np, grid_np = x_np[:1, :1].astype(np.float64), grid_np[:1].astype(np.float64)
    grid = t64(grid_np, requires_grad=False)
    rng = np.random.default_rng(seed)
    y_np = rng.standard_normal((1, 1) + grid_np.shape[1:3])
    x = t64(np.zeros_like(x_np))
    F.grid_sample(x, grid, **kwargs).backward(y_np)
    with msn.no_grad():
        sx = F.grid_sample(t64(x_np, requires_grad=False), grid, **kwargs).numpy()
    np.testing.assert_allclose((sx * y_np).sum(), (x_np * x.grad.numpy()).sum(), rtol=1e-10, atol=1e-10)
    m = x_np.size
    basis = np.eye(m).reshape((m, 1) + x_np.shape[2:])
    with msn.no_grad():
        dense = F.grid_sample(msn.tensor(basis), msn.tensor(np.repeat(grid_np, m, axis=0)), **kwargs)
    dense = dense.numpy().reshape(m, -1).T                 # (points, pixels)
    np.testing.assert_allclose(x.grad.numpy().ravel(), dense.T @ y_np.ravel(), rtol=1e-10, atol=1e-10)


@given(n=st.integers(1, 3), c=st.integers(1, 4), hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       out=st.tuples(st.integers(1, 7), st.integers(1, 7)), mode=st.sampled_from(MODES))
def test_grid_sample_output_shape_is_the_shapes_formula(n, c, hw, out, mode):
    x = msn.tensor(np.zeros((n, c) + hw, np.float32))
    grid = msn.tensor(np.zeros((n,) + out + (2,), np.float32))
    assert F.grid_sample(x, grid, mode=mode).shape == shapes.grid_sample_output_shape(x.shape, grid.shape)
    assert shapes.grid_sample_output_shape(x.shape, grid.shape) == (n, c) + out


def test_the_blocks_cover_every_point_once():
    """Small blocks (many per image) give the same output and gradients as whole images."""
    rng = np.random.default_rng(5)
    x_np, grid_np = rng.standard_normal((2, 3, 6, 7)), rng.uniform(-1.2, 1.2, (2, 27, 31, 2))
    results = []
    for block, per_image in ((None, 1), (300 * 3, 3), (1, 4)):       # blocks of 837, 300 and 256 points
        previous = sampling.BLOCK_ELEMENTS
        sampling.BLOCK_ELEMENTS = block
        try:
            assert len(list(sampling.blocks(grid_np.reshape(2, -1, 2), 3))) == 2 * per_image
            x, grid = t64(x_np), t64(grid_np)
            y = F.grid_sample(x, grid, padding_mode="reflection")
            y.backward(np.cos(y.numpy()))
            results.append((y.numpy(), x.grad.numpy(), grid.grad.numpy()))
        finally:
            sampling.BLOCK_ELEMENTS = previous
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ---- points on borders, worked by hand ------------------------------------------------------
def test_padding_modes_by_hand():
    """One row [1, 2, 3, 4] (W = 4, align_corners=False: pixel centres at x = -0.75, -0.25, 0.25, 0.75,
    the image's edges at +-1; every coordinate here is exact in binary)."""
    x = t64(np.array([[[[1.0, 2.0, 3.0, 4.0]]]]), requires_grad=False)
    xs = np.array([-1.0, -0.75, 0.75, 1.0, 1.5])             # x_pix = -0.5, 0, 3, 3.5, 4.5
    grid = msn.tensor(np.stack([xs, np.zeros_like(xs)], -1)[None, None])
    got = {m: F.grid_sample(x, grid, padding_mode=m).numpy().ravel() for m in PADDING_MODES}
    np.testing.assert_allclose(got["zeros"], [0.5, 1, 4, 2, 0])           # half a pixel and half of 0
    np.testing.assert_allclose(got["border"], [1, 1, 4, 4, 4])
    np.testing.assert_allclose(got["reflection"], [1, 1, 4, 4, 3.5])      # 4.5 mirrors about 3.5 to 2.5
    # nearest rounds halves to even: x_pix = 0.5 -> 0, 1.5 -> 2
    grid = msn.tensor(np.array([[[[-0.5, 0.0], [0.0, 0.0]]]]))
    np.testing.assert_allclose(F.grid_sample(x, grid, mode="nearest").numpy().ravel(), [1, 3])


def test_border_slope_is_zero_on_the_border(torch):
    """PyTorch's choice: the clipped coordinate's slope is 0 outside *and on* the border.
    W = 4 (align_corners=False): x = -0.75 and 0.75 are exactly the centres of the end pixels."""
    x_np = np.array([[[[1.0, 4.0, 9.0, 16.0]]]])
    grid_np = np.array([[[[-0.75, 0.0], [0.75, 0.0], [0.0, 0.0], [-0.99, 0.0]]]])   # x_pix = 0, 3, 1.5, -0.48
    grid = t64(grid_np)
    F.grid_sample(t64(x_np, requires_grad=False), grid, padding_mode="border").backward(np.ones((1, 1, 1, 4)))
    tgrid = as_torch(torch, grid_np)
    torch.nn.functional.grid_sample(torch.tensor(x_np), tgrid, padding_mode="border",
                                    align_corners=False).sum().backward()
    assert_close(grid.grad, tgrid.grad)
    np.testing.assert_allclose(grid.grad.numpy()[0, 0, :, 0], [0, 0, (9 - 4) * 4 / 2, 0])


def test_points_near_pixel_centres_fall_in_pytorchs_cell(torch):
    """Normalised pixel centres such as (2k + 1) / W - 1 are not exact in binary, so x_pix lands a
    rounding error to one side of the centre; PyTorch computes x_pix with one rounding (a fused
    multiply-add), and so must we: the side decides which pixel difference the grid gradient is.
    On I = k**2 the gradient reveals the cell: (I[x0 + 1] - I[x0]) * W / 2 = (2 x0 + 1) * W / 2."""
    for dtype in (np.float32, np.float64):
        for w in (3, 5, 7, 10, 13, 25):
            k = np.arange(w)
            xs = ((2 * k + 1) / w - 1).astype(dtype)
            image = (k.astype(dtype) ** 2).reshape(1, 1, 1, w)
            grid_np = np.stack([xs, np.zeros_like(xs)], -1)[None, None]
            grid, tgrid = msn.tensor(grid_np, requires_grad=True), as_torch(torch, grid_np)
            F.grid_sample(msn.tensor(image), grid).sum().backward()
            torch.nn.functional.grid_sample(torch.tensor(image), tgrid, align_corners=False).sum().backward()
            cells = np.round(grid.grad.numpy()[0, 0, :, 0] / (w / 2) - 1) / 2
            torch_cells = np.round(tgrid.grad.numpy()[0, 0, :, 0] / (w / 2) - 1) / 2
            np.testing.assert_array_equal(cells, torch_cells, err_msg=f"W = {w}, {dtype.__name__}")


# ---- F.interpolate is grid_sample on the identity grid ----------------------------------------
@given(hw=st.tuples(st.integers(1, 8), st.integers(1, 8)), out=st.tuples(st.integers(1, 12), st.integers(1, 12)),
       align_corners=st.booleans())
def test_interpolate_bilinear_is_grid_sample_on_the_identity_grid(hw, out, align_corners):
    if align_corners and min(out) == 1:
        out = (max(out[0], 2), max(out[1], 2))     # a 1-pixel output: interpolate takes pixel 0, the grid the centre
    x = t64(np.random.default_rng(sum(hw + out)).standard_normal((2, 3) + hw), requires_grad=False)
    theta = msn.tensor(np.tile(np.eye(2, 3), (2, 1, 1)))
    grid = F.affine_grid(theta, (2, 3) + out, align_corners=align_corners)
    sampled = F.grid_sample(x, grid, padding_mode="border", align_corners=align_corners)
    resized = F.interpolate(x, size=out, mode="bilinear", align_corners=align_corners)
    np.testing.assert_allclose(sampled.numpy(), resized.numpy(), rtol=1e-12, atol=1e-12)


# ---- memory follows the output ----------------------------------------------------------------
def _peak_bytes(fn):
    """The most bytes allocated at once while ``fn`` runs: on a GPU the device memory CuPy's pool
    hands out (bench_gpu's memory hook), else host memory (tracemalloc sees NumPy's arrays, and
    the stand-in's, which are NumPy arrays; on a GPU it would see only CuPy's own host objects)."""
    xp = current_xp()
    if xp is not np and not getattr(xp, "__standin__", False):
        from bench_gpu import CupyPeak    # benchmarks/ is on the path (above)

        return CupyPeak(xp).measure(fn) * 2**20
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_one_framed_input_and_the_output():
    """Sampling 8x8 points of a 512x512 image allocates one copy of the input in its frame of
    zeros in the forward pass and nothing else input-sized (no (H*W) x (H*W) matrix, no second
    copy); the backward pass allocates the input's gradient (in its frame) and little else."""
    x = msn.tensor(np.zeros((1, 1, 512, 512), np.float32), requires_grad=True)
    grid = msn.tensor(np.random.default_rng(0).uniform(-1.2, 1.2, (1, 8, 8, 2)).astype(np.float32),
                      requires_grad=True)
    framed_bytes = (512 + 2 * sampling.FRAME) ** 2 * 4
    box = {}
    forward = _peak_bytes(lambda: box.update(y=F.grid_sample(x, grid, padding_mode="reflection")))
    assert forward < 1.05 * framed_bytes, f"forward allocated {forward} bytes for a 64-point output"
    backward = _peak_bytes(lambda: box["y"].backward(np.ones((1, 1, 8, 8), np.float32)))
    assert backward < 1.05 * framed_bytes, f"backward allocated {backward} bytes"


# ---- affine_grid -------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")
@given(n=st.integers(1, 2), hw=st.tuples(st.integers(1, 6), st.integers(1, 6)), align_corners=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_affine_grid_matches_torch(torch, n, hw, align_corners, dtype, seed):
    rng = np.random.default_rng(seed)
    theta_np = rng.standard_normal((n, 2, 3)).astype(dtype)
    size = (n, 3) + hw
    theta, ttheta = msn.tensor(theta_np, requires_grad=True), as_torch(torch, theta_np)
    grid = F.affine_grid(theta, size, align_corners=align_corners)
    tgrid = torch.nn.functional.affine_grid(ttheta, size, align_corners=align_corners)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert grid.dtype == dtype and grid.shape == shapes.affine_grid_output_shape(size)
    assert_close(grid, tgrid, atol=tol, rtol=tol)
    g = rng.standard_normal(grid.shape).astype(dtype)
    grid.backward(g)
    tgrid.backward(torch.tensor(g))
    assert_close(theta.grad, ttheta.grad, atol=10 * tol, rtol=10 * tol, what="theta grad")


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_gradcheck_through_grid_sample(align_corners):
    """A spatial transformer's path: theta -> affine_grid -> grid_sample, checked end to end."""
    rng = np.random.default_rng(6)
    theta = t64(np.array([[[0.9, -0.2, 0.1], [0.3, 1.1, -0.05]]]) + 0.01 * rng.standard_normal((1, 2, 3)))
    x = t64(rng.standard_normal((1, 2, 5, 6)))
    assert gradcheck(lambda t: F.affine_grid(t, (1, 2, 4, 3), align_corners=align_corners), [theta])
    assert gradcheck(lambda t, a: F.grid_sample(a, F.affine_grid(t, (1, 2, 4, 3), align_corners=align_corners),
                                                align_corners=align_corners), [theta, x])


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_identity_theta_returns_the_input(align_corners, mode):
    x = t64(np.random.default_rng(7).standard_normal((2, 3, 5, 4)), requires_grad=False)
    grid = F.affine_grid(msn.tensor(np.tile(np.eye(2, 3), (2, 1, 1))), x.shape, align_corners=align_corners)
    np.testing.assert_allclose(F.grid_sample(x, grid, mode=mode, align_corners=align_corners).numpy(), x.numpy(),
                               atol=1e-12)


# ---- errors --------------------------------------------------------------------------------------
def _x(shape=(2, 3, 4, 5), dtype=np.float32):
    return msn.tensor(np.zeros(shape, dtype=dtype))


def _grid(shape=(2, 3, 3, 2), dtype=np.float32):
    return msn.tensor(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.grid_sample(_x(), _grid((2, 3, 3))), ValueError, r"grid must have shape \(N, H_out, W_out, 2\)"),
    (lambda: F.grid_sample(_x(), _grid((2, 3, 3, 3))), ValueError, r"grid must have shape \(N, H_out, W_out, 2\)"),
    (lambda: F.grid_sample(_x(), _grid((2, 0, 3, 2))), ValueError, ">= 1"),
    (lambda: F.grid_sample(_x(), _grid((1, 3, 3, 2))), ValueError, "same batch size N"),
    (lambda: F.grid_sample(_x((0, 3, 4, 5)), _grid((0, 3, 3, 7))), ValueError,      # an empty batch too
     r"grid must have shape \(N, H_out, W_out, 2\)"),
    (lambda: F.grid_sample(_x((0, 3, 0, 5)), _grid((0, 3, 3, 2))), ValueError,
     r"input must be \(N, C, H, W\) with C, H, W >= 1, got shape \(0, 3, 0, 5\)"),
    (lambda: F.grid_sample(_x((0, 3, 4, 5)), _grid((0, 5, 6, 3))), ValueError, r"got shape \(0, 5, 6, 3\)"),
    (lambda: F.grid_sample(_x((0, 3, 4, 5)), _grid((1, 3, 3, 2))), ValueError, "same batch size N"),
    (lambda: F.grid_sample(_x(), _grid(dtype=np.float64)), TypeError, "grid must have the input's dtype float32"),
    (lambda: F.grid_sample(_x((3, 4, 5)), _grid()), ValueError, r"input must be 4-D \(N, C, H, W\)"),
    (lambda: F.grid_sample(_x(dtype=np.int64), _grid()), TypeError, "input must be floating point"),
    (lambda: F.grid_sample(np.zeros((2, 3, 4, 5)), _grid()), TypeError, "input must be a Tensor"),
    (lambda: F.grid_sample(_x(), np.zeros((2, 3, 3, 2))), TypeError, "grid must be a Tensor"),
    (lambda: F.grid_sample(_x(), _grid(), mode="bicubic"), ValueError, "mode must be one of"),
    (lambda: F.grid_sample(_x(), _grid(), padding_mode="reflect"), ValueError, "padding_mode must be one of"),
    (lambda: F.grid_sample(_x(), _grid(), align_corners=1), TypeError, "align_corners must be True or False"),
    (lambda: F.grid_sample(_x(), _grid(), align_corners="yes"), TypeError, "align_corners must be True or False"),
    (lambda: F.affine_grid(_x((2, 2, 2)), (2, 3, 4, 5)), ValueError, r"theta must have shape \(N, 2, 3\)"),
    (lambda: F.affine_grid(_x((3, 2, 3)), (2, 3, 4, 5)), ValueError, r"theta must have shape \(N, 2, 3\)"),
    (lambda: F.affine_grid(_x((2, 3, 4)), (2, 3, 4, 5)), ValueError, r"theta must have shape \(N, 2, 3\)"),
    (lambda: F.affine_grid(_x((2, 2, 3), np.int64), (2, 3, 4, 5)), TypeError, "theta must be floating point"),
    (lambda: F.affine_grid(np.zeros((2, 2, 3)), (2, 3, 4, 5)), TypeError, "theta must be a Tensor"),
    (lambda: F.affine_grid(_x((2, 2, 3)), (2, 3, 4, 5, 6)), ValueError, r"size must be \(N, C, H, W\)"),
    (lambda: F.affine_grid(_x((2, 2, 3)), (2, 3, 4.0, 5)), TypeError, r"size must be \(N, C, H, W\)"),
    (lambda: F.affine_grid(_x((2, 2, 3)), (2, 3, 0, 5)), ValueError, ">= 1"),
    (lambda: F.affine_grid(_x((2, 2, 3)), (2, 3, 4, 5), align_corners=0), TypeError, "align_corners"),
])
def test_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---- CuPy: arrays from the input's module, no host round trips ------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_on_cupy_without_host_copies(cupy, transfers, mode):
    """The whole spatial-transformer path on CuPy (the CPU stand-in here) makes every array with
    the inputs' module: not one host-device copy in forward or backward, and the same numbers.
    (affine_grid's base coordinates, PyTorch's linspace, are made on the host once per size and
    kept on the device, as resize's tables: the first call uploads them.)"""
    msn.set_backend("cupy")
    rng = np.random.default_rng(8)
    theta_np, x_np = rng.uniform(-1, 1, (2, 2, 3)), rng.standard_normal((2, 3, 5, 6))
    g_np = rng.standard_normal((2, 3, 4, 7))
    theta, x = msn.Tensor(cupy.asarray(theta_np), requires_grad=True), msn.Tensor(cupy.asarray(x_np), requires_grad=True)
    g = cupy.asarray(g_np)
    F.affine_grid(theta, (2, 3, 4, 7))                      # the constants made once
    with transfers() as log:
        y = F.grid_sample(x, F.affine_grid(theta, (2, 3, 4, 7)), mode=mode, padding_mode="reflection")
        y.backward(g)
    assert log.count("H2D") == 0 and log.count("D2H") == 0, log.report()
    msn.set_backend("numpy")
    theta_h, x_h = t64(theta_np), t64(x_np)
    y_h = F.grid_sample(x_h, F.affine_grid(theta_h, (2, 3, 4, 7)), mode=mode, padding_mode="reflection")
    y_h.backward(g_np)
    for ours, host in [(y, y_h), (x.grad, x_h.grad), (theta.grad, theta_h.grad)]:
        np.testing.assert_allclose(msn.backend.to_numpy(ours.data), host.numpy(), rtol=1e-12, atol=1e-12)


def _assert_same_results(first, second):
    """(output, input gradient, grid gradient) bitwise equal; on CuPy the input gradient only to
    rounding: a GPU's scatter-add adds colliding values with atomics, in no fixed order."""
    (out_a, gx_a, gg_a), (out_b, gx_b, gg_b) = first, second
    assert (out_a == out_b).all() and (gg_a == gg_b).all()
    if msn.get_backend() == "cupy":
        np.testing.assert_allclose(gx_a, gx_b, rtol=1e-5, atol=1e-6)
    else:
        assert (gx_a == gx_b).all()


def test_threads_give_bitwise_the_same_numbers(monkeypatch):
    """The blocks are shared over the thread pool (forward) and each image's blocks stay in one
    task (backward's scatter-add): 1 and 2 threads give identical outputs and gradients, with
    blocks small enough that every image has several."""
    from minisegnet import parallel

    monkeypatch.setattr(sampling, "BLOCK_ELEMENTS", 256)
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((3, 4, 20, 24)).astype(np.float32)
    grid0 = rng.uniform(-1.2, 1.2, (3, 18, 22, 2)).astype(np.float32)
    g = rng.standard_normal((3, 4, 18, 22)).astype(np.float32)
    results = []
    previous = parallel.set_num_threads(1)
    try:
        for n in (1, 2):
            parallel.set_num_threads(n)
            x, grid = msn.tensor(x0, requires_grad=True), msn.tensor(grid0, requires_grad=True)
            out = F.grid_sample(x, grid, padding_mode="border")
            out.backward(msn.tensor(g))
            results.append((out.numpy(), x.grad.numpy(), grid.grad.numpy()))
    finally:
        parallel.set_num_threads(previous)
    assert len(list(sampling.blocks(grid0.reshape(3, -1, 2), 4))) >= 3 * 2      # several blocks an image
    _assert_same_results(*results)


@pytest.fixture
def two_threads():
    from minisegnet import parallel

    previous = parallel.set_num_threads(2)
    yield
    parallel.set_num_threads(previous)


def _many_blocks_case(monkeypatch, seed):
    """``(x, grid, g)`` of a small case cut into many blocks an image (``BLOCK_ELEMENTS`` 256)."""
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(sampling, "BLOCK_ELEMENTS", 256)
    return (rng.standard_normal((3, 4, 20, 24)).astype(np.float32),
            rng.uniform(-1.2, 1.2, (3, 18, 22, 2)).astype(np.float32),
            rng.standard_normal((3, 4, 18, 22)).astype(np.float32))


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_the_scatter_in_one_thread_or_over_two_gives_the_same_bits(monkeypatch, two_threads, mode):
    """SERIAL_SCATTER (the input gradient's scatter-add in the calling thread) and the scatter
    shared over two threads by image give bitwise the same gradients (on a GPU, to rounding),
    with many blocks an image."""
    x0, grid0, g = _many_blocks_case(monkeypatch, 12)
    results = []
    for serial in (False, True):
        monkeypatch.setattr(sampling, "SERIAL_SCATTER", serial)
        x, grid = msn.tensor(x0, requires_grad=True), msn.tensor(grid0, requires_grad=True)
        out = F.grid_sample(x, grid, mode=mode)
        out.backward(msn.tensor(g))
        results.append((out.numpy(), x.grad.numpy(), grid.grad.numpy()))
    _assert_same_results(*results)


@pytest.mark.parametrize("wanted", ["both", "input", "grid"])
def test_the_scatter_beside_the_grid_gradient_gives_the_same_bits(monkeypatch, two_threads, wanted):
    """SCATTER_BESIDE (the input gradient's scatter in the calling thread while the workers compute
    the grid gradient) and the two one after the other give bitwise the same gradients, with many
    blocks an image, whichever gradients are wanted."""
    x0, grid0, g = _many_blocks_case(monkeypatch, 13)
    results = []
    for beside in (False, True):
        monkeypatch.setattr(sampling, "SCATTER_BESIDE", beside)
        x = msn.tensor(x0, requires_grad=wanted in ("both", "input"))
        grid = msn.tensor(grid0, requires_grad=wanted in ("both", "grid"))
        out = F.grid_sample(x, grid, padding_mode="reflection")
        out.backward(msn.tensor(g))
        results.append((out.numpy(),) + tuple(np.zeros(0) if t.grad is None else t.grad.numpy() for t in (x, grid)))
    _assert_same_results(*results)


@pytest.mark.parametrize("keep", [True, False])
def test_a_retained_graph_gives_the_same_gradients_again(monkeypatch, keep):
    """A second backward through a retained graph adds the same gradients again (both wanted):
    what the forward kept, or the framed image it recomputes from, survives the first."""
    monkeypatch.setattr(sampling, "KEEP_READS", keep)
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 3, 5, 6)), requires_grad=True)
    grid = msn.tensor(np.random.default_rng(1).uniform(-1.3, 1.3, (2, 4, 3, 2)), requires_grad=True)
    y = F.grid_sample(x, grid)
    g = np.random.default_rng(2).standard_normal(y.shape)
    y.backward(g, retain_graph=True)
    once = x.grad.numpy().copy(), grid.grad.numpy().copy()
    y.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), 2 * once[0], rtol=1e-12)
    np.testing.assert_allclose(grid.grad.numpy(), 2 * once[1], rtol=1e-12)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_kept_reads_give_the_recomputed_answer(monkeypatch, two_threads, mode, padding_mode):
    """KEEP_READS (the forward's corners, weights and values kept for the backward) changes no bit of
    the output or either gradient, with many blocks an image shared over two threads; what was kept is
    gone after the backward pass (freed with the node; a retained graph keeps it for the next
    backward), and nothing is kept when no gradient is wanted."""
    x0, grid0, g = _many_blocks_case(monkeypatch, 11)
    results = []
    for keep in (False, True):
        monkeypatch.setattr(sampling, "KEEP_READS", keep)
        x, grid = msn.tensor(x0, requires_grad=True), msn.tensor(grid0, requires_grad=True)
        out = F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode)
        n_blocks = len(list(sampling.blocks(grid.data.reshape(3, -1, 2), 4)))
        assert len(out.creator.kept) == (n_blocks if keep else 0)
        out.backward(msn.tensor(g))
        assert "kept" not in vars(out.creator)                          # freed with the node
        results.append((out.numpy(), x.grad.numpy(), grid.grad.numpy()))
    with msn.no_grad():
        function = sampling.GridSample(mode, padding_mode, False)
        # inputs that would want gradients outside no_grad: inside it nothing is kept all the same
        function(msn.tensor(x0, requires_grad=True), msn.tensor(grid0, requires_grad=True))
        assert not function.kept
    _assert_same_results(*results)


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_align_corners_none_means_false_like_torch(torch):
    # guards _check_align_corners: None must mean False (PyTorch's default), not True
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((1, 2, 4, 5))
    grid_np = rng.uniform(-1.2, 1.2, (1, 3, 3, 2))
    x, grid = msn.tensor(x_np), msn.tensor(grid_np)
    none = F.grid_sample(x, grid, align_corners=None).numpy()
    np.testing.assert_array_equal(none, F.grid_sample(x, grid, align_corners=False).numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.functional.grid_sample(torch.tensor(x_np), torch.tensor(grid_np), align_corners=None)
    np.testing.assert_allclose(none, theirs.numpy(), rtol=1e-12, atol=1e-12)
    theta = msn.tensor(np.array([[[0.9, 0.2, 0.1], [-0.3, 1.1, 0.0]]]))
    np.testing.assert_array_equal(F.affine_grid(theta, (1, 1, 3, 4), align_corners=None).numpy(),
                                  F.affine_grid(theta, (1, 1, 3, 4), align_corners=False).numpy())


@pytest.mark.parametrize("padding_mode", ["border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_a_nan_point_reads_pixel_0_with_border_and_reflection(padding_mode, align_corners):
    # guards clip's fmax/fmin (docstring: NaN goes to pixel 0; np.maximum/minimum would keep NaN)
    x_np = np.arange(15.0).reshape(1, 1, 3, 5)
    y0 = 0.3
    grid = msn.tensor(np.array([[[[np.nan, y0]]]]))
    first = -1.0 if align_corners else -1 + 1 / 5                # the centre of column 0
    at_pixel_0 = msn.tensor(np.array([[[[first, y0]]]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = F.grid_sample(msn.tensor(x_np), grid, padding_mode=padding_mode, align_corners=align_corners).numpy()
    want = F.grid_sample(msn.tensor(x_np), at_pixel_0, padding_mode=padding_mode, align_corners=align_corners).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_affine_grid_refuses_a_grid_too_large_for_memory_from_a_large_batch():
    # guards affine_grid's check_bytes of the grid itself (N*H*W*2), not only of the (H*W, 3) base:
    # a huge N with a small H, W passes the base's check
    theta = msn.tensor(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(checks.TooLargeError, match=r"affine_grid: size=.* makes an array of shape \(1099511627776, 4, 4, 2\)"):
        F.affine_grid(theta, (2**40, 1, 4, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_grids_base_coordinates_are_torchs_linspace_bit_for_bit(torch, dtype):
    """torch.linspace rounds each point once from its nearer end; NumPy's linspace differs by 1 ULP
    at many points (52 of the sizes 2-59), enough to move a point PyTorch puts on a pixel centre
    into the neighbouring cell."""
    from minisegnet.functional.sampling import linspace_like_torch
    tdtype = getattr(torch, np.dtype(dtype).name)
    for n in range(2, 300):
        np.testing.assert_array_equal(linspace_like_torch(n, np.dtype(dtype)),
                                      torch.linspace(-1, 1, n, dtype=tdtype).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(5, 7), (31, 17), (8, 8), (10, 11), (1, 6)])
@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid behavior has changed")   # torch's, on a 1-pixel axis
def test_an_identity_affine_grid_and_its_theta_gradient_are_torchs(torch, dtype, align_corners, size):
    """The identity is where a spatial transformer starts: its grid must be PyTorch's bit for bit,
    or the grid gradient (a difference of the pixels on either side of a cell edge) reads other
    pixels. The old grid gave d theta [3.48, 7.67, -7.41] against PyTorch's [8.18, -0.67, 0.81]
    for a (5, 7) image."""
    h, w = size
    theta = np.array([[[1.0, 0, 0], [0, 1, 0]]], dtype)
    x = np.random.default_rng(0).standard_normal((1, 2, h, w)).astype(dtype)
    ours = msn.tensor(theta, requires_grad=True)
    grid = F.affine_grid(ours, (1, 2, h, w), align_corners=align_corners)
    theirs = torch.tensor(theta, requires_grad=True)
    tgrid = torch.nn.functional.affine_grid(theirs, (1, 2, h, w), align_corners=align_corners)
    np.testing.assert_array_equal(grid.numpy(), tgrid.detach().numpy())
    F.grid_sample(msn.tensor(x), grid, align_corners=align_corners).sum().backward()
    torch.nn.functional.grid_sample(torch.tensor(x), tgrid, align_corners=align_corners).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("size", [None, "1123", (1, 1, 2.0, 2), (1, 1, 2.5, 2), (1, "a", 2, 2)],
                         ids=["none", "str", "float", "fraction", "str-element"])
def test_affine_grid_size_of_the_wrong_kind_is_a_type_error(size):
    theta = msn.tensor(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(TypeError, match=r"^affine_grid: size"):
        F.affine_grid(theta, size, align_corners=False)
    with pytest.raises(ValueError, match=r"^affine_grid: size"):              # the right kind, unsupported: unchanged
        F.affine_grid(theta, (1, 1, 2, 2, 2), align_corners=False)


def test_affine_grids_float16_base_coordinates_are_torchs_linspace_bit_for_bit(torch):
    """torch.linspace in float16 rounds twice (the step times the index to float16, then the sum
    from the nearer end): at n = 300 the point next to 0 is 0.003418, where one rounding of the
    float16 step gives 0.003607. linspace_like_torch promises PyTorch's points bit for bit; in
    float16 it differed at 2961 of the sizes 2..2999, from n = 7."""
    from minisegnet.functional.sampling import linspace_like_torch
    for n in range(2, 300):
        np.testing.assert_array_equal(linspace_like_torch(n, np.dtype(np.float16)),
                                      torch.linspace(-1, 1, n, dtype=torch.float16).numpy())


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(5, 7), (31, 17), (10, 11)])
def test_float16_affine_grid_equals_torchs(torch, size, align_corners):
    theta = np.array([[[1, 0, 0], [0, 1, 0]], [[0.5, -0.25, 0.125], [0.75, 1, -0.5]]], np.float16)
    shape = (2, 1) + size
    ours = F.affine_grid(msn.tensor(theta), shape, align_corners=align_corners).numpy()
    theirs = torch.nn.functional.affine_grid(torch.tensor(theta), shape, align_corners=align_corners).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours, theirs)
