"""Tests of the speed and memory paths: the direct depthwise conv (a lever, off by
default), columns built in bands of output rows, the graph keeping no intermediate
arrays, and max-pool's one-byte winner offsets. Each path is checked against PyTorch on
Hypothesis configs that reach it (and asserted to have been taken), plus gradcheck."""
import contextlib
import gc
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import functional as F, shapes
from minisegnet.functional import conv as core, conv_fast
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, current_xp, t64


def _randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _our_pass(x, w, b, args, g_seed):
    """``F.conv2d(x, w, b, *args)`` in float64 and its backward from the output gradient drawn
    with ``g_seed``: ``(y, X, W, B)``, the leaves holding their gradients (the graph kept: a test
    may read the node's route)."""
    X, W, B = t64(x), t64(w), None if b is None else t64(b)
    y = F.conv2d(X, W, B, *args)
    y.backward(_randn(y.shape, g_seed), retain_graph=True)
    return y, X, W, B


def _torch_pass(torch, x, w, b, args, g_seed):
    """The same pass through ``torch.nn.functional.conv2d``: ``(ty, tX, tW, tB)``."""
    tX, tW, tB = as_torch(torch, x), as_torch(torch, w), None if b is None else as_torch(torch, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # torch: even 'same' kernels copy the input
        ty = torch.nn.functional.conv2d(tX, tW, tB, *args)
    ty.backward(torch.tensor(_randn(tuple(ty.shape), g_seed)))
    return ty, tX, tW, tB


@st.composite
def depthwise_configs(draw):
    c = draw(st.integers(1, 4))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    # large enough for the dilated kernel, odd and even sizes
    size = tuple(d[a] * (k[a] - 1) + 1 + draw(st.integers(0, 5)) for a in (0, 1))
    return dict(n=draw(st.integers(1, 2)), c=c, k=k, s=s, d=d, p=p, size=size, bias=draw(st.booleans()))


@contextlib.contextmanager
def direct_depthwise(on=True):
    """The ``depthwise`` lever of conv_fast set to ``on`` inside the block."""
    previous = conv_fast.set_lever("depthwise", on)
    try:
        yield
    finally:
        conv_fast.set_lever("depthwise", previous)


def test_a_strided_depthwise_conv_goes_through_im2col_by_default():
    """The direct path did not pay (docs/benchmarks.md's lever tables): off unless switched on."""
    y = F.conv2d(t64(_randn((1, 4, 9, 9), 0)), t64(_randn((4, 1, 3, 3), 1)), None, 2, 1, 1, 4)
    assert not conv_fast.lever("depthwise") and y.creator.saved.route == "im2col"


def _depthwise_pair(torch, cfg, seed):
    x = _randn((cfg["n"], cfg["c"]) + cfg["size"], seed)
    w = _randn((cfg["c"], 1) + cfg["k"], seed + 1)
    b = _randn((cfg["c"],), seed + 2) if cfg["bias"] else None
    g_seed = seed + 3
    X, W = t64(x), t64(w)
    B = t64(b) if b is not None else None
    y = F.conv2d(X, W, B, cfg["s"], cfg["p"], cfg["d"], cfg["c"])
    y.backward(_randn(y.shape, g_seed), retain_graph=True)        # kept: the tests read the node's route
    tX, tW = as_torch(torch, x), as_torch(torch, w)
    tB = as_torch(torch, b) if b is not None else None
    ty = torch.nn.functional.conv2d(tX, tW, tB, cfg["s"], cfg["p"], cfg["d"], cfg["c"])
    ty.backward(torch.tensor(_randn(tuple(ty.shape), g_seed)))
    return (y, X, W, B), (ty, tX, tW, tB)


# ---- depthwise convolution ---------------------------------------------------------------
@given(cfg=depthwise_configs(), seed=st.integers(0, 2**16))
def test_depthwise_matches_torch(torch, cfg, seed):
    with direct_depthwise():
        (y, X, W, B), (ty, tX, tW, tB) = _depthwise_pair(torch, cfg, seed)
    # the direct path runs exactly for strided depthwise convs with more than one channel
    assert (y.creator.saved.route == "depthwise") == (cfg["c"] > 1 and cfg["s"] != (1, 1))
    assert_close(y, ty, what=f"output {cfg}")
    assert_close(X.grad, tX.grad, what=f"grad input {cfg}")
    assert_close(W.grad, tW.grad, what=f"grad weight {cfg}")
    if B is not None:
        assert_close(B.grad, tB.grad, what=f"grad bias {cfg}")


@given(cfg=depthwise_configs(), seed=st.integers(0, 2**16))
def test_depthwise_direct_path_equals_im2col_path(cfg, seed):
    cfg = dict(cfg, c=max(cfg["c"], 2), s=(2, cfg["s"][1]))
    x, w = _randn((cfg["n"], cfg["c"]) + cfg["size"], seed), _randn((cfg["c"], 1) + cfg["k"], seed + 1)
    results = []
    for direct in (True, False):
        with direct_depthwise(direct):
            X, W = t64(x), t64(w)
            y = F.conv2d(X, W, None, cfg["s"], cfg["p"], cfg["d"], cfg["c"])
            assert (y.creator.saved.route == "depthwise") == direct
            y.backward(_randn(y.shape, seed + 2))
            results.append((y.numpy(), X.grad.numpy(), W.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("s, p, d", [((2, 2), (1, 1), (1, 1)), ((2, 3), (0, 2), (2, 1)), ((3, 2), (2, 0), (1, 2))])
def test_depthwise_gradcheck(s, p, d):
    x, w, b = t64(_randn((2, 3, 7, 8), 0)), t64(_randn((3, 1, 3, 2), 1)), t64(_randn((3,), 2))
    with direct_depthwise():
        y = F.conv2d(x, w, b, s, p, d, 3)
        assert y.creator.saved.route == "depthwise"
        assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, s, p, d, 3), [x, w, b])


def test_depthwise_float32_matches_torch(torch):
    x, w = _randn((2, 8, 16, 16), 0).astype(np.float32), _randn((8, 1, 3, 3), 1).astype(np.float32)
    X, W = msn.tensor(x, requires_grad=True), msn.tensor(w, requires_grad=True)
    tX, tW = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    with direct_depthwise():
        y = F.conv2d(X, W, None, 2, 1, 1, 8)
        assert y.creator.saved.route == "depthwise"
        y.sum().backward()
    ty = torch.nn.functional.conv2d(tX, tW, None, 2, 1, 1, 8)
    ty.sum().backward()
    for a, t in ((y, ty), (X.grad, tX.grad), (W.grad, tW.grad)):
        assert a.dtype == np.float32
        assert_close(a, t, atol=1e-4, rtol=1e-4)


# ---- columns in bands of output rows ----------------------------------------------------
def test_row_bands_respect_the_limit():
    previous = conv_fast.set_im2col_limit(1000)
    try:
        assert conv_fast._pieces(1, 7, 300, current_xp()) == [(0, 1, 0, 3), (0, 1, 3, 6), (0, 1, 6, 7)]
        assert conv_fast._pieces(2, 3, 5000, current_xp()) == [(n, n + 1, r, r + 1) for n in range(2) for r in range(3)]
        assert conv_fast._pieces(1, 4, 100, current_xp()) == [(0, 1, 0, 4)]
    finally:
        conv_fast.set_im2col_limit(previous)


@given(c_in=st.integers(1, 3), c_out=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 2),
       p=st.integers(0, 2), d=st.integers(1, 2), rows_per_band=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_banded_columns_match_torch(torch, c_in, c_out, k, s, p, d, rows_per_band, seed):
    """A limit below one image's columns: each image is unfolded a few output rows at a time."""
    x, w, b = _randn((2, c_in, 9, 7), seed), _randn((c_out, c_in, k, k), seed + 1), _randn((c_out,), seed + 2)
    wo = (7 + 2 * p - d * (k - 1) - 1) // s + 1
    previous = conv_fast.set_im2col_limit(rows_per_band * c_in * k * k * wo * 8)   # float64 columns
    try:
        ho = (9 + 2 * p - d * (k - 1) - 1) // s + 1
        if ho > rows_per_band:
            assert len(conv_fast._pieces(2, ho, c_in * k * k * wo * 8, current_xp())) == 2 * -(-ho // rows_per_band)
        y, X, W, B = _our_pass(x, w, b, (s, p, d), seed + 3)
    finally:
        conv_fast.set_im2col_limit(previous)
    ty, tX, tW, tB = _torch_pass(torch, x, w, b, (s, p, d), seed + 3)
    for what, a, t in (("output", y, ty), ("grad input", X.grad, tX.grad), ("grad weight", W.grad, tW.grad),
                       ("grad bias", B.grad, tB.grad)):
        assert_close(a, t, what=what)


def test_cached_buffers_stay_under_the_limit():
    previous = conv_fast.set_im2col_limit(4096)
    keep = conv_fast.set_lever("keep_columns", False)     # kept columns are not scratch
    try:
        x, w = t64(_randn((3, 4, 12, 12), 0)), t64(_randn((5, 4, 3, 3), 1))
        F.conv2d(x, w, padding=1).sum().backward()
        mine = [buf for buf in conv_fast.cached_buffers() if type(buf) is type(x.data)]   # this backend's limit
        assert mine and all(buf.nbytes <= 4096 for buf in mine)
    finally:
        conv_fast.set_im2col_limit(previous)
        conv_fast.set_lever("keep_columns", keep)


# ---- the graph keeps what backward needs, not every intermediate array --------------------
def test_graph_frees_arrays_no_backward_needs():
    """conv -> relu -> conv: ReLU keeps a mask, so the first conv's output array is
    freed once the forward code drops it; the gradients are unchanged."""
    x, w1, w2 = t64(_randn((1, 2, 6, 6), 0)), t64(_randn((3, 2, 3, 3), 1)), t64(_randn((2, 3, 3, 3), 2))
    a = F.conv2d(x, w1, padding=1)
    a_array = weakref.ref(a.data)
    h = F.relu(a)
    loss = F.conv2d(h, w2, padding=1).sum()
    del a
    gc.collect()
    assert a_array() is None, "the graph still holds the first conv's output"
    loss.backward()
    expected = [t.grad.numpy() for t in (x, w1, w2)]
    for t in (x, w1, w2):
        t.grad = None
    F.conv2d(F.relu(F.conv2d(x, w1, padding=1)), w2, padding=1).sum().backward()
    for t, e in zip((x, w1, w2), expected):
        np.testing.assert_array_equal(t.grad.numpy(), e)


# ---- max-pool: winner offsets in one byte, indices in int64 --------------------------------
@pytest.mark.parametrize("k, s, p, d", [(2, 2, 0, 1), (3, 2, 1, 2), (17, 1, 0, 1)])
def test_max_pool_offsets_and_indices_match_torch(torch, k, s, p, d):
    x = _randn((2, 3, 21, 20), 0)
    X = t64(x)
    y, idx = F.max_pool2d(X, k, s, p, d, return_indices=True)
    assert y.creator.winner.dtype == (np.uint8 if k * k <= 256 else np.int32)
    assert idx.dtype == np.int64
    y.backward(_randn(y.shape, 1))
    tX = as_torch(torch, x)
    ty, tidx = torch.nn.functional.max_pool2d(tX, k, s, p, d, return_indices=True)
    ty.backward(torch.tensor(_randn(tuple(ty.shape), 1)))
    assert_close(y, ty)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert_close(X.grad, tX.grad)


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_direct_depthwise_lever_leaves_a_channel_multiplier_to_im2col(torch):
    # guards: the depthwise route needs C_out == C_in too (groups == C_in with 2 filters per channel is not it)
    x, w, b = _randn((2, 3, 7, 8), 0), _randn((6, 1, 3, 3), 1), _randn((6,), 2)
    previous = conv_fast.set_lever("depthwise", True)
    try:
        y, X, W, B = _our_pass(x, w, b, (2, 1, 1, 3), 3)
        assert y.creator.saved.route == "im2col"
    finally:
        conv_fast.set_lever("depthwise", previous)
    ty, tX, tW, tB = _torch_pass(torch, x, w, b, (2, 1, 1, 3), 3)
    for what, a, t in (("output", y, ty), ("grad input", X.grad, tX.grad), ("grad weight", W.grad, tW.grad),
                       ("grad bias", B.grad, tB.grad)):
        assert_close(a, t, what=what)


@pytest.mark.parametrize("flip", [True, False])
def test_same_padding_input_grad_through_col2im_matches_torch(torch, flip):
    # guards: the col2im route of the input gradient crops (top, left) of asymmetric 'same' pads;
    # it runs when C_out > 2 C_in (the flipped conv would have the larger columns) or flip is off
    x, w, b = _randn((2, 1, 6, 7), 0), _randn((3, 1, 2, 4), 1), _randn((3,), 2)
    previous = conv_fast.set_lever("flip", flip)
    try:
        y, X, W, B = _our_pass(x, w, b, (1, "same"), 3)
    finally:
        conv_fast.set_lever("flip", previous)
    ty, tX, tW, tB = _torch_pass(torch, x, w, b, (1, "same"), 3)
    for what, a, t in (("output", y, ty), ("grad input", X.grad, tX.grad), ("grad weight", W.grad, tW.grad)):
        assert_close(a, t, what=what)


@pytest.mark.parametrize("stride", [(1, 2), (2, 1)])
def test_row_taps_need_stride_1_on_both_axes(torch, stride):
    # guards: row taps build stride-1 columns, so a stride of (1, 2) must not take them (a check of the
    # height's stride alone gave wrong outputs and gradients)
    x, w, b = _randn((2, 2, 7, 9), 0), _randn((3, 2, 3, 3), 1), _randn((3,), 2)
    y, X, W, B = _our_pass(x, w, b, (stride, 1), 3)
    ty, tX, tW, tB = _torch_pass(torch, x, w, b, (stride, 1), 3)
    for what, a, t in (("output", y, ty), ("grad input", X.grad, tX.grad), ("grad weight", W.grad, tW.grad),
                       ("grad bias", B.grad, tB.grad)):
        assert_close(a, t, what=what)


def test_unpadded_columns_zero_a_tap_row_that_reads_bottom_padding_only():
    # guards: a tap row that starts below the image (offset > top + H) is zeroed in full, not only
    # its last rows; here tap row 1 of a dilation-2 kernel reads rows 2..4 of a 1-row image
    x = _randn((1, 2, 1, 3), 0)
    pads, k, s, d = (0, 4, 1, 1), (2, 3), (1, 1), (2, 1)
    out_hw = conv_fast._out_hw((1, 3), pads, k, s, d)
    assert out_hw == (3, 3)
    expected = core._im2col(core._pad(x, pads), k, s, d, out_hw, np.empty((1, 2 * 6, 9)))
    cols = np.full(expected.shape, np.nan)          # a stale buffer: every entry must be written
    conv_fast._im2col_unpadded(x, pads, k, s, d, out_hw, cols)
    np.testing.assert_array_equal(cols, expected)


@pytest.mark.parametrize("channels, k", [(1, 7), (3, 7), (64, 3), (64, 7), (128, 5)])
@pytest.mark.parametrize("stacked_rows", [True, False])
def test_float16_row_taps_forward_rounds_once_as_pytorch(torch, channels, k, stacked_rows):
    """Max error against the float64 conv of the same float16 numbers: ours at most 1.5x
    PyTorch's (it was 2.1-3.8x: one float16 rounding per kernel row)."""
    rng = np.random.default_rng(channels * 10 + k)
    x = (1 + rng.standard_normal((1, channels, 24, 24))).astype(np.float16)
    w = (0.2 + rng.standard_normal((8, channels, k, k))).astype(np.float16)
    previous = conv_fast.set_lever("stacked_rows", stacked_rows)
    try:
        ours = F.conv2d(msn.tensor(x), msn.tensor(w), padding=k // 2).numpy()
    finally:
        conv_fast.set_lever("stacked_rows", previous)
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding=k // 2).numpy()
    exact = torch.nn.functional.conv2d(torch.tensor(x).double(), torch.tensor(w).double(), padding=k // 2).numpy()
    assert ours.dtype == np.float16
    our_error = np.abs(ours.astype(np.float64) - exact).max()
    their_error = np.abs(theirs.astype(np.float64) - exact).max()
    assert our_error <= 1.5 * their_error, (our_error, their_error)


@given(n=st.integers(0, 2), c=st.integers(2, 4), k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)).filter(lambda s: s != (1, 1)),
       p=st.tuples(st.integers(0, 2), st.integers(0, 2)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       extra=st.tuples(st.integers(0, 6), st.integers(0, 6)))
def test_direct_depthwise_output_shape_is_the_shapes_formula(n, c, k, s, p, d, extra):
    size = tuple(d[a] * (k[a] - 1) + 1 + extra[a] - min(2 * p[a], extra[a]) for a in (0, 1))
    x = msn.tensor(np.zeros((n, c) + size), requires_grad=True)
    w = msn.tensor(np.zeros((c, 1) + k), requires_grad=True)
    with direct_depthwise():
        y = F.conv2d(x, w, None, s, p, d, c)
    if n:
        assert y.creator.saved.route == "depthwise"
    assert y.shape == (n, c) + shapes.conv2d_output_size(size, k, s, p, d)
    y.backward(np.ones(y.shape))
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


@given(n=st.integers(1, 2), c=st.integers(2, 4), k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)).filter(lambda s: s != (1, 1)),
       p=st.tuples(st.integers(0, 2), st.integers(0, 2)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       extra=st.tuples(st.integers(0, 5), st.integers(0, 5)), seed=st.integers(0, 2**16))
def test_direct_depthwise_backward_is_the_adjoint_in_x_and_in_w(n, c, k, s, p, d, extra, seed):
    """The direct depthwise conv is linear in x and in w: <conv(x, w), y> == <x, dx(y)> == <w, dw(y)>,
    dx and dw taken by its own backward (conv_depthwise.grads), without going through im2col."""
    size = tuple(d[a] * (k[a] - 1) + 1 + extra[a] for a in (0, 1))
    rng = np.random.default_rng(seed)
    x_np, w_np = rng.standard_normal((n, c) + size), rng.standard_normal((c, 1) + k)
    x, w = msn.tensor(x_np, requires_grad=True), msn.tensor(w_np, requires_grad=True)
    with direct_depthwise():
        out = F.conv2d(x, w, None, s, p, d, c)
        assert out.creator.saved.route == "depthwise"
        y_np = rng.standard_normal(out.shape)
        out.backward(y_np)
    lhs = float((out.numpy() * y_np).sum())
    np.testing.assert_allclose(lhs, float((x_np * x.grad.numpy()).sum()), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lhs, float((w_np * w.grad.numpy()).sum()), rtol=1e-10, atol=1e-10)
