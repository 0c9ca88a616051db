"""Convolution family: unfold, fold, conv2d, conv_transpose2d.

PyTorch parity of outputs and every gradient on Hypothesis-drawn configs,
float64 gradcheck, the adjoint identities, the exact "conv's input gradient
is the transposed conv" identity, a naive nested-loop reference, output
shapes against ``shapes``, the chunked path, buffer reuse, and each error.
"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minisegnet as msn
from minisegnet import functional as F, shapes
from minisegnet.functional import conv as conv_module
from minisegnet.functional import conv_fast
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, current_xp, t64


def _randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def conv_configs(draw, transposed=False):
    """A valid conv (or transposed conv) configuration with possibly different h/w values."""
    groups = draw(st.integers(1, 3))
    # up to 3x more channels on one side: at stride 1 the transposed conv then
    # takes its col2im route instead of the flipped-kernel conv (C_in > 2 C_out)
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    n = draw(st.integers(1, 2))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if transposed:
        size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in (0, 1))
        for a in (0, 1):   # the output must have at least one pixel
            assume((size[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 >= 1)
        return dict(n=n, c_in=c_in, c_out=c_out, size=size, k=k, s=s, p=p, d=d, groups=groups, op=op)
    # the smallest input the dilated kernel fits into, plus 0..4 (odd and even sizes)
    size = tuple(max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]) + draw(st.integers(0, 4)) for a in (0, 1))
    return dict(n=n, c_in=c_in, c_out=c_out, size=size, k=k, s=s, p=p, d=d, groups=groups)


def _conv_arrays(cfg, seed, transposed=False):
    x = _randn((cfg["n"], cfg["c_in"]) + cfg["size"], seed)
    if transposed:
        w = _randn((cfg["c_in"], cfg["c_out"] // cfg["groups"]) + cfg["k"], seed + 1)
    else:
        w = _randn((cfg["c_out"], cfg["c_in"] // cfg["groups"]) + cfg["k"], seed + 1)
    b = _randn((cfg["c_out"],), seed + 2)
    return x, w, b


def _ours_and_torch(torch, cfg, seed, transposed, padding=None):
    """Run ours and torch's with the same float64 data; backprop the same random grad."""
    x, w, b = _conv_arrays(cfg, seed, transposed)
    X, W, B = t64(x), t64(w), t64(b)
    tX, tW, tB = as_torch(torch, x), as_torch(torch, w), as_torch(torch, b)
    pad = cfg["p"] if padding is None else padding
    if transposed:
        y = F.conv_transpose2d(X, W, B, cfg["s"], pad, cfg["op"], cfg["groups"], cfg["d"])
        ty = torch.nn.functional.conv_transpose2d(tX, tW, tB, cfg["s"], pad, cfg["op"], cfg["groups"], cfg["d"])
    else:
        y = F.conv2d(X, W, B, cfg["s"], pad, cfg["d"], cfg["groups"])
        ty = torch.nn.functional.conv2d(tX, tW, tB, cfg["s"], pad, cfg["d"], cfg["groups"])
    g = _randn(y.shape, seed + 3)
    y.backward(g)
    ty.backward(torch.tensor(g))
    return (y, X, W, B), (ty, tX, tW, tB)


# ---- PyTorch parity ----------------------------------------------------------------
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv2d_matches_torch(torch, cfg, seed):
    ours, theirs = _ours_and_torch(torch, cfg, seed, transposed=False)
    for what, a, b in zip(("output", "grad input", "grad weight", "grad bias"),
                          (ours[0], ours[1].grad, ours[2].grad, ours[3].grad),
                          (theirs[0], theirs[1].grad, theirs[2].grad, theirs[3].grad)):
        assert_close(a, b, atol=1e-10, rtol=1e-9, what=f"{what} {cfg}")


@given(cfg=conv_configs(transposed=True), seed=st.integers(0, 2**16))
def test_conv_transpose2d_matches_torch(torch, cfg, seed):
    ours, theirs = _ours_and_torch(torch, cfg, seed, transposed=True)
    for what, a, b in zip(("output", "grad input", "grad weight", "grad bias"),
                          (ours[0], ours[1].grad, ours[2].grad, ours[3].grad),
                          (theirs[0], theirs[1].grad, theirs[2].grad, theirs[3].grad)):
        assert_close(a, b, atol=1e-10, rtol=1e-9, what=f"{what} {cfg}")


@given(cfg=conv_configs(), seed=st.integers(0, 2**16), padding=st.sampled_from(["same", "valid"]))
def test_conv2d_string_padding_matches_torch(torch, cfg, seed, padding):
    """'same' with an even effective kernel pads one more pixel at the bottom/right, as PyTorch."""
    cfg = dict(cfg, s=(1, 1))
    if padding == "valid":
        cfg["size"] = tuple(max(cfg["size"][a], cfg["d"][a] * (cfg["k"][a] - 1) + 1) for a in (0, 1))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch warns that even 'same' kernels copy the input
        ours, theirs = _ours_and_torch(torch, cfg, seed, transposed=False, padding=padding)
    if padding == "same":
        assert ours[0].shape[2:] == cfg["size"]
    for what, a, b in zip(("output", "grad input", "grad weight", "grad bias"),
                          (ours[0], ours[1].grad, ours[2].grad, ours[3].grad),
                          (theirs[0], theirs[1].grad, theirs[2].grad, theirs[3].grad)):
        assert_close(a, b, atol=1e-10, rtol=1e-9, what=f"{what} {padding} {cfg}")


def test_float32_matches_torch(torch):
    x, w, b = (_randn(s, i).astype(np.float32) for i, s in enumerate([(2, 4, 9, 8), (6, 2, 3, 3), (6,)]))
    X, W, B = (msn.tensor(a, requires_grad=True) for a in (x, w, b))
    tX, tW, tB = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(X, W, B, stride=2, padding=1, groups=2)
    ty = torch.nn.functional.conv2d(tX, tW, tB, stride=2, padding=1, groups=2)
    assert y.dtype == np.float32
    y.sum().backward()
    ty.sum().backward()
    for a, t in ((y, ty), (X.grad, tX.grad), (W.grad, tW.grad), (B.grad, tB.grad)):
        assert a.dtype == np.float32
        assert_close(a, t, atol=1e-4, rtol=1e-4)


@given(n=st.integers(1, 2), c=st.integers(1, 3), k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       s=st.tuples(st.integers(1, 3), st.integers(1, 3)), p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       d=st.tuples(st.integers(1, 3), st.integers(1, 3)), extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
       seed=st.integers(0, 2**16))
def test_unfold_and_fold_match_torch(torch, n, c, k, s, p, d, extra, seed):
    size = tuple(max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]) + extra[a] for a in (0, 1))
    x = _randn((n, c) + size, seed)
    X, tX = t64(x), as_torch(torch, x)
    cols = F.unfold(X, k, d, p, s)
    tcols = torch.nn.functional.unfold(tX, k, d, p, s)
    assert_close(cols, tcols, what="unfold")
    g = _randn(cols.shape, seed + 1)
    cols.backward(g)
    tcols.backward(torch.tensor(g))
    assert_close(X.grad, tX.grad, what="unfold grad")

    C = t64(g)
    tC = as_torch(torch, g)
    img = F.fold(C, size, k, d, p, s)
    timg = torch.nn.functional.fold(tC, size, k, d, p, s)
    assert_close(img, timg, what="fold")
    gi = _randn(img.shape, seed + 2)
    img.backward(gi)
    timg.backward(torch.tensor(gi))
    assert_close(C.grad, tC.grad, what="fold grad")


# ---- gradcheck (float64, finite differences) ----------------------------------------
GRADCHECK_CONV = [
    # (x shape, C_out, k, stride, padding, dilation, groups, bias)
    ((2, 2, 5, 4), 3, (3, 2), 1, 1, 1, 1, True),
    ((1, 4, 6, 5), 2, 3, (2, 1), (0, 2), 1, 2, True),
    ((1, 3, 7, 6), 3, 2, 2, 1, (2, 1), 3, False),
    ((1, 2, 5, 6), 2, (2, 3), 1, "same", (1, 2), 1, True),
]


@pytest.mark.parametrize("xs, c_out, k, s, p, d, groups, bias", GRADCHECK_CONV)
def test_conv2d_gradcheck(xs, c_out, k, s, p, d, groups, bias):
    kh, kw = shapes.as_pair(k, "k")
    x = t64(_randn(xs, 0))
    w = t64(_randn((c_out, xs[1] // groups, kh, kw), 1))
    b = t64(_randn((c_out,), 2)) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    assert gradcheck(lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, s, p, d, groups), inputs)


GRADCHECK_TRANSPOSE = [
    # (x shape, C_out, k, stride, padding, output_padding, dilation, groups, bias)
    ((2, 2, 3, 4), 3, (3, 2), 2, 1, 1, 1, 1, True),
    ((1, 4, 3, 3), 2, 2, (1, 2), (0, 1), (0, 1), 2, 2, True),
    ((1, 3, 2, 3), 3, 3, 3, 2, (2, 0), (1, 2), 3, False),
    ((1, 2, 3, 2), 4, 4, 1, 2, 0, 1, 1, True),
]


@pytest.mark.parametrize("xs, c_out, k, s, p, op, d, groups, bias", GRADCHECK_TRANSPOSE)
def test_conv_transpose2d_gradcheck(xs, c_out, k, s, p, op, d, groups, bias):
    kh, kw = shapes.as_pair(k, "k")
    x = t64(_randn(xs, 0))
    w = t64(_randn((xs[1], c_out // groups, kh, kw), 1))
    b = t64(_randn((c_out,), 2)) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    assert gradcheck(lambda x, w, *b: F.conv_transpose2d(x, w, b[0] if b else None, s, p, op, groups, d), inputs)


@pytest.mark.parametrize("k, d, p, s", [((2, 3), 1, 0, 1), (3, (2, 1), 1, 2), (2, 2, (1, 0), (1, 3))])
def test_unfold_and_fold_gradcheck(k, d, p, s):
    x = t64(_randn((1, 2, 6, 5), 0))
    assert gradcheck(lambda x: F.unfold(x, k, d, p, s), [x])
    length = int(np.prod(shapes.conv2d_output_size((6, 5), k, s, p, d)))
    kh, kw = shapes.as_pair(k, "k")
    c = t64(_randn((1, 2 * kh * kw, length), 1))
    assert gradcheck(lambda c: F.fold(c, (6, 5), k, d, p, s), [c])


# ---- identities ----------------------------------------------------------------------
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_unfold_fold_adjoint(cfg, seed):
    """<unfold(x), c> == <x, fold(c)>: fold is the transpose of unfold."""
    x = _randn((cfg["n"], cfg["c_in"]) + cfg["size"], seed)
    with msn.no_grad():
        cols = F.unfold(t64(x, False), cfg["k"], cfg["d"], cfg["p"], cfg["s"])
        c = _randn(cols.shape, seed + 1)
        back = F.fold(t64(c, False), cfg["size"], cfg["k"], cfg["d"], cfg["p"], cfg["s"])
    lhs, rhs = float((cols.numpy() * c).sum()), float((x * back.numpy()).sum())
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-10), (lhs, rhs)


@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv2d_conv_transpose2d_adjoint(cfg, seed):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for the output_padding that restores x's size."""
    x, w, _ = _conv_arrays(cfg, seed)
    with msn.no_grad():
        out = F.conv2d(t64(x, False), t64(w, False), None, cfg["s"], cfg["p"], cfg["d"], cfg["groups"])
        y = _randn(out.shape, seed + 5)
        op = shapes.conv_transpose2d_output_padding(out.shape[2:], cfg["size"], cfg["k"], cfg["s"], cfg["p"],
                                                    cfg["d"])
        back = F.conv_transpose2d(t64(y, False), t64(w, False), None, cfg["s"], cfg["p"], op, cfg["groups"],
                                  cfg["d"])
    assert back.shape == x.shape
    lhs, rhs = float((out.numpy() * y).sum()), float((x * back.numpy()).sum())
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-10), (lhs, rhs)


@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv2d_input_gradient_is_conv_transpose2d_exactly(cfg, seed):
    """One mechanism, two faces: the autograd input gradient and the public transposed conv agree bit for bit."""
    x, w, _ = _conv_arrays(cfg, seed)
    X, W = t64(x), t64(w, False)
    y = F.conv2d(X, W, None, cfg["s"], cfg["p"], cfg["d"], cfg["groups"])
    g = _randn(y.shape, seed + 5)
    y.backward(g)
    op = shapes.conv_transpose2d_output_padding(y.shape[2:], cfg["size"], cfg["k"], cfg["s"], cfg["p"], cfg["d"])
    with msn.no_grad():
        direct = F.conv_transpose2d(t64(g, False), W, None, cfg["s"], cfg["p"], op, cfg["groups"], cfg["d"])
    assert np.array_equal(X.grad.numpy(), direct.numpy())


@given(cfg=conv_configs(transposed=True), seed=st.integers(0, 2**16))
def test_conv_transpose2d_input_gradient_is_conv2d_exactly(cfg, seed):
    x, w, _ = _conv_arrays(cfg, seed, transposed=True)
    X, W = t64(x), t64(w, False)
    y = F.conv_transpose2d(X, W, None, cfg["s"], cfg["p"], cfg["op"], cfg["groups"], cfg["d"])
    g = _randn(y.shape, seed + 5)
    y.backward(g)
    with msn.no_grad():
        # a plain conv2d of the output gradient; rows and columns past x's size
        # come only from the output_padding, which no input pixel reached
        direct = F.conv2d(t64(g, False), W, None, cfg["s"], cfg["p"], cfg["d"], cfg["groups"]).numpy()
    direct = direct[:, :, :x.shape[2], :x.shape[3]]
    np.testing.assert_allclose(X.grad.numpy(), direct, rtol=1e-12, atol=1e-12)


# ---- an independent reference: the definition as nested loops ---------------------------
def naive_conv2d(x, w, b, stride, padding, dilation, groups):
    n, c_in, h, wd = x.shape
    c_out, c_g, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c_out, ho, wo))
    per_group = c_out // groups
    for b_ in range(n):
        for o in range(c_out):
            g = o // per_group
            for i in range(ho):
                for j in range(wo):
                    total = b[o] if b is not None else 0.0
                    for c in range(c_g):
                        for u in range(kh):
                            for v in range(kw):
                                r, q = i * sh + u * dh - ph, j * sw + v * dw - pw
                                if 0 <= r < h and 0 <= q < wd:
                                    total += w[o, c, u, v] * x[b_, g * c_g + c, r, q]
                    out[b_, o, i, j] = total
    return out


@pytest.mark.parametrize("xs, c_out, k, s, p, d, groups", [
    ((1, 2, 5, 5), 2, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 6, 7), 4, (2, 3), (2, 1), (0, 2), (1, 2), 2),
    ((1, 3, 7, 5), 3, (3, 1), (3, 2), (2, 0), (2, 1), 3),
])
def test_conv2d_matches_nested_loops(xs, c_out, k, s, p, d, groups):
    x = _randn(xs, 0)
    w = _randn((c_out, xs[1] // groups) + k, 1)
    b = _randn((c_out,), 2)
    with msn.no_grad():
        ours = F.conv2d(t64(x, False), t64(w, False), t64(b, False), s, p, d, groups).numpy()
    np.testing.assert_allclose(ours, naive_conv2d(x, w, b, s, p, d, groups), rtol=1e-12, atol=1e-12)


def test_hand_worked_transposed_conv():
    """A 2x2 input, 2x2 ones kernel, stride 2: each pixel becomes a 2x2 block (nearest upsampling)."""
    x = t64([[[[1.0, 2.0], [3.0, 4.0]]]], False)
    w = t64(np.ones((1, 1, 2, 2)), False)
    out = F.conv_transpose2d(x, w, stride=2).numpy()[0, 0]
    np.testing.assert_array_equal(out, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])


# ---- shapes -----------------------------------------------------------------------------
@given(cfg=conv_configs())
def test_conv2d_and_unfold_shapes_follow_the_formula(cfg):
    x, w, b = _conv_arrays(cfg, 0)
    with msn.no_grad():
        y = F.conv2d(t64(x, False), t64(w, False), t64(b, False), cfg["s"], cfg["p"], cfg["d"], cfg["groups"])
        cols = F.unfold(t64(x, False), cfg["k"], cfg["d"], cfg["p"], cfg["s"])
    ho, wo = shapes.conv2d_output_size(cfg["size"], cfg["k"], cfg["s"], cfg["p"], cfg["d"])
    assert y.shape == (cfg["n"], cfg["c_out"], ho, wo)
    assert cols.shape == (cfg["n"], cfg["c_in"] * cfg["k"][0] * cfg["k"][1], ho * wo)


@given(cfg=conv_configs(transposed=True))
def test_conv_transpose2d_shape_follows_the_formula(cfg):
    x, w, b = _conv_arrays(cfg, 0, transposed=True)
    with msn.no_grad():
        y = F.conv_transpose2d(t64(x, False), t64(w, False), t64(b, False), cfg["s"], cfg["p"], cfg["op"],
                               cfg["groups"], cfg["d"])
    size = shapes.conv_transpose2d_output_size(cfg["size"], cfg["k"], cfg["s"], cfg["p"], cfg["op"], cfg["d"])
    assert y.shape == (cfg["n"], cfg["c_out"]) + size


# ---- the memory limit and the buffer cache ------------------------------------------------
@pytest.fixture
def tiny_limit():
    previous = conv_module.set_im2col_limit(1)   # every chunk is a single image
    yield
    conv_module.set_im2col_limit(previous)


@pytest.mark.parametrize("transposed, s, p, d, groups", [
    (False, 1, 1, 1, 1), (False, 2, 1, 2, 2), (True, 2, 1, 1, 1), (True, 1, 2, 2, 2)])
def test_chunked_path_gives_the_same_numbers(tiny_limit, transposed, s, p, d, groups):
    cfg = dict(n=3, c_in=4, c_out=4, size=(6, 5), k=(3, 2), s=(s, s), p=(p, p), d=(d, d), groups=groups,
               op=(0, 0))
    x, w, b = _conv_arrays(cfg, 7, transposed)

    def run():
        X, W, B = t64(x), t64(w), t64(b)
        if transposed:
            y = F.conv_transpose2d(X, W, B, s, p, 0, groups, d)
        else:
            y = F.conv2d(X, W, B, s, p, d, groups)
        y.backward(_randn(y.shape, 9))
        return [y.numpy(), X.grad.numpy(), W.grad.numpy(), B.grad.numpy()]

    chunked = run()
    assert conv_fast._image_pieces(3, 100, current_xp()) == [(0, 1), (1, 2), (2, 3)]   # the limit really bites
    conv_module.set_im2col_limit(2**30)
    whole = run()
    for a, b_ in zip(chunked, whole):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_chunks_respect_the_limit():
    previous = conv_module.set_im2col_limit(1000)
    try:
        assert conv_fast._image_pieces(10, 300, current_xp()) == [(0, 3), (3, 6), (6, 9), (9, 10)]
        assert conv_fast._image_pieces(2, 5000, current_xp()) == [(0, 1), (1, 2)]   # never fewer than one image
        assert conv_fast._image_pieces(4, 100, current_xp()) == [(0, 4)]
    finally:
        conv_module.set_im2col_limit(previous)
    assert conv_module.get_im2col_limit() == previous


def test_each_backend_has_its_own_limit(cupy):
    """32 MiB on NumPy and 256 MiB on CuPy by default; setting one leaves the other alone, its
    limit and its cached buffers."""
    defaults = {np: 32 * 2**20, cupy: 256 * 2**20}
    assert all(conv_fast._limit(xp) == limit for xp, limit in defaults.items())
    here = current_xp()
    other = np if here is not np else cupy
    conv_fast._scratch(here, (4096,), np.float32, "test")           # 16 KiB each
    conv_fast._scratch(other, (4096,), np.float32, "test")
    previous = conv_module.set_im2col_limit(1000)
    try:
        assert conv_fast._limit(here) == conv_module.get_im2col_limit() == 1000
        assert conv_fast._limit(other) == defaults[other]
        kept = {key[0] for key in conv_fast._thread_cache().buffers if key[1] == "test"}
        assert kept == {other.__name__}                             # only this backend's was pruned
    finally:
        conv_module.set_im2col_limit(previous)
        conv_fast.clear_buffer_cache()
    assert all(conv_fast._limit(xp) == limit for xp, limit in defaults.items())


def test_cupy_pieces_are_cut_by_the_limit_alone(monkeypatch, cupy):
    """On NumPy a batch is cut for the threads to share; on CuPy (no threads) only by the limit."""
    from minisegnet import parallel

    monkeypatch.setattr(parallel, "MIN_PIECE_BYTES", 0)
    monkeypatch.setattr(parallel, "SPLIT", 3)
    assert conv_fast._image_pieces(6, 100, np) == [(0, 2), (2, 4), (4, 6)]
    assert conv_fast._image_pieces(6, 100, cupy) == [(0, 6)]


def test_outputs_never_alias_reused_buffers():
    """A second call with the same shapes reuses the scratch buffers; earlier results must not change."""
    x1, x2 = _randn((2, 3, 6, 6), 0), _randn((2, 3, 6, 6), 1)
    w = _randn((4, 3, 3, 3), 2)
    results = []
    for x in (x1, x2):
        X, W = t64(x), t64(w)
        y = F.conv2d(X, W, padding=1)
        y.backward(np.ones(y.shape))
        results.append((y.data, X.grad.data, W.grad.data))     # the backend's arrays, not host copies
    first = [msn.backend.to_numpy(a).copy() for a in results[0]]
    with msn.no_grad():
        again = F.conv2d(t64(x1, False), t64(w, False), padding=1).numpy()
    np.testing.assert_array_equal(first[0], again)
    for before, now in zip(first, results[0]):
        np.testing.assert_array_equal(before, msn.backend.to_numpy(now))
    assert conv_fast.cached_buffers(), "the cache should hold scratch buffers after these calls"
    for arrays in results:
        for a in arrays:
            for buf in conv_fast.cached_buffers():
                if type(buf) is type(a):    # another backend's buffers (other tests') cannot alias
                    assert not msn.backend.get_array_module(a, buf).shares_memory(a, buf)


def test_buffer_reuse_can_be_switched_off():
    previous = conv_fast.set_lever("reuse_buffers", False)
    try:
        assert not conv_fast.cached_buffers()
        with msn.no_grad():
            F.conv2d(t64(_randn((1, 2, 5, 5), 0), False), t64(_randn((2, 2, 3, 3), 1), False), padding=1)
        assert not conv_fast.cached_buffers()
    finally:
        conv_fast.set_lever("reuse_buffers", previous)


# ---- bad arguments ---------------------------------------------------------------------------
X4 = np.zeros((1, 4, 6, 6))
W4 = np.zeros((2, 4, 3, 3))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(dilation=(1, -1)), ValueError, "dilation must be >= 1"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="full"), ValueError, "'valid' or 'same'"),
    (dict(padding="same", stride=2), ValueError, "padding='same' needs stride 1"),
    (dict(stride=1.5), TypeError, "stride must be an int or a pair"),
    (dict(groups=0), ValueError, "groups must be a positive int"),
    (dict(groups=3), ValueError, "divisible by groups=3"),
    (dict(weight=np.zeros((3, 2, 3, 3)), groups=2), ValueError, "output channels"),
    (dict(weight=np.zeros((2, 3, 3, 3))), ValueError, "C_in/groups = 4"),
    (dict(weight=np.zeros((2, 4, 7, 3))), ValueError, "more than the padded input"),
    (dict(weight=np.zeros((2, 4, 3, 3)), dilation=4), ValueError, "spans 9 pixels"),
    (dict(input=np.zeros((4, 6, 6))), ValueError, "input must be 4-D"),
    (dict(weight=np.zeros((2, 4, 3))), ValueError, "weight must be 4-D (C_out, C_in/groups, kh, kw)"),
    (dict(bias=np.zeros(3)), ValueError, "bias must have shape (2,)"),
    (dict(weight=W4.astype(np.float32)), TypeError, "same dtype"),
    (dict(input=X4.astype(np.int64)), TypeError, "floating point"),
    (dict(input=[[1.0]]), TypeError, "input must be a Tensor"),
])
def test_conv2d_bad_arguments(kwargs, error, words):
    args = dict(input=X4, weight=W4, bias=None)
    args.update(kwargs)
    args = {k: (msn.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    with pytest.raises(error) as info:
        F.conv2d(**args)
    assert words in str(info.value)


WT = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(output_padding=2, stride=2), ValueError, "output_padding=2 must be smaller than max(stride, dilation)"),
    (dict(output_padding=1), ValueError, "must be smaller than max(stride, dilation) = 1"),
    (dict(output_padding=-1), ValueError, "output_padding must be >= 0"),
    (dict(stride=(2, 0)), ValueError, "stride must be >= 1"),
    (dict(padding=-2), ValueError, "padding must be >= 0"),
    (dict(padding=5), ValueError, "padding=5 is too large"),
    (dict(weight=np.zeros((3, 3, 3, 3))), ValueError, "C_in=4"),
    (dict(groups=3), ValueError, "divisible by groups=3"),
    (dict(bias=np.zeros(3), groups=2, weight=np.zeros((4, 3, 3, 3))), ValueError, "bias must have shape (6,)"),
    (dict(input=np.zeros((1, 4, 3, 3, 1))), ValueError, "input must be 4-D"),
    (dict(weight=np.zeros((4, 3, 3))), ValueError, "weight must be 4-D (C_in, C_out/groups, kh, kw)"),
])
def test_conv_transpose2d_bad_arguments(kwargs, error, words):
    args = dict(input=np.zeros((1, 4, 3, 3)), weight=WT)
    args.update(kwargs)
    args = {k: (msn.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in args.items()}
    with pytest.raises(error) as info:
        F.conv_transpose2d(**args)
    assert words in str(info.value)


def test_unfold_fold_bad_arguments():
    x = msn.tensor(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="input must be 4-D"):
        F.unfold(msn.tensor(np.zeros((2, 4, 4))), 2)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.unfold(x, 2, stride=0)
    with pytest.raises(ValueError, match="more than the padded input"):
        F.unfold(x, 5)
    with pytest.raises(ValueError, match="input must be 3-D"):
        F.fold(x, (4, 4), 2)
    with pytest.raises(ValueError, match="divisible by kh\\*kw = 4"):
        F.fold(msn.tensor(np.zeros((1, 6, 9))), (4, 4), 2)
    with pytest.raises(ValueError, match="must equal the number of windows 3\\*3 = 9"):
        F.fold(msn.tensor(np.zeros((1, 8, 8))), (4, 4), 2)
    with pytest.raises(ValueError, match="nbytes must be a positive integer"):
        F.set_im2col_limit(0)


@pytest.mark.parametrize("transposed", [False, True])
def test_stride_1_routes_agree(transposed):
    """At stride 1 the transposed conv is either the flipped-kernel conv or GEMM + col2im: same numbers."""
    cfg = dict(n=2, c_in=3, c_out=6, size=(5, 6), k=(3, 2), s=(1, 1), p=(1, 2), d=(2, 1), groups=1, op=(1, 0))
    x, w, b = _conv_arrays(cfg, 3, transposed)
    results = []
    for flip in (True, False):
        previous = conv_fast.set_lever("flip", flip)
        try:
            X, W = t64(x), t64(w)
            if transposed:
                y = F.conv_transpose2d(X, W, None, 1, cfg["p"], cfg["op"], 1, cfg["d"])
            else:
                y = F.conv2d(X, W, None, 1, cfg["p"], cfg["d"])
            y.backward(_randn(y.shape, 4))
            results.append((y.numpy(), X.grad.numpy(), W.grad.numpy()))
        finally:
            conv_fast.set_lever("flip", previous)
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_fold_refuses_columns_that_do_not_fit_naming_itself():
    with pytest.raises(ValueError, match=r"^fold: input\.shape\[2\] = 1 must equal the number of windows 4\*4 = 16"):
        F.fold(msn.tensor(np.ones((1, 3, 1), np.float32)), (4, 4), 1)
    with pytest.raises(ValueError, match=r"^fold: input\.shape\[1\] = 3 must be divisible by kh\*kw = 4"):
        F.fold(msn.tensor(np.ones((1, 3, 9), np.float32)), (4, 4), 2)


@pytest.mark.parametrize("kernel, stride, padding", [(1, 1, 0),     # pointwise: columns are the input
                                                     (3, 2, 1),     # im2col
                                                     (3, 1, 1)])    # row taps
def test_float16_conv_bias_is_added_before_the_single_rounding(torch, kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = (3 + 0.1 * rng.standard_normal((2, 64, 16, 16))).astype(np.float16)
    w = ((2 + 0.01 * rng.standard_normal((8, 64, kernel, kernel))) / kernel ** 2).astype(np.float16)
    x64, w64 = torch.tensor(x).double(), torch.tensor(w).double()
    product = torch.nn.functional.conv2d(x64, w64, stride=stride, padding=padding).numpy()
    b = (-product.mean(axis=(0, 2, 3))).astype(np.float16)          # about -384: results near 0
    ours = F.conv2d(msn.tensor(x), msn.tensor(w), msn.tensor(b), stride=stride, padding=padding).numpy()
    theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=stride,
                                        padding=padding).numpy()
    exact = torch.nn.functional.conv2d(x64, w64, torch.tensor(b).double(), stride=stride, padding=padding).numpy()
    assert ours.dtype == np.float16
    our_error = np.abs(ours.astype(np.float64) - exact).max()
    their_error = np.abs(theirs.astype(np.float64) - exact).max()
    assert our_error <= 1.5 * their_error, (our_error, their_error)
