"""minisegnet.reference computes the same numbers as the fast ops: values and gradients.

Each reference function is compared with the op the course says it explains,
on Hypothesis-drawn small configurations (odd and even sizes, (h, w) pairs,
stride, padding, dilation, groups, output_padding, ceil_mode, both
align_corners), in float64. The fast ops' gradients come from autograd.
"""
import numpy as np
from hypothesis import assume, given, settings, strategies as st

import minisegnet as msn
from minisegnet import functional as F, reference as ref, shapes

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


def t(a, grad=False):
    return msn.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def rand(draw, shape):
    seed = draw(st.integers(0, 2**16))
    return np.random.default_rng(seed).standard_normal(shape)


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)


@st.composite
def conv_case(draw, grouped=True):
    k, s, d = draw(pairs), draw(pairs), draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    p = draw(st.tuples(st.integers(0, 2), st.integers(0, 2)))
    groups = draw(st.sampled_from([1, 2])) if grouped else 1
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    try:
        out = shapes.conv2d_output_size((h, w), k, s, p, d)
    except ValueError:
        assume(False)
    x = rand(draw, (draw(st.integers(1, 2)), c_in, h, w))
    wt = rand(draw, (c_out, c_in // groups) + k)
    b = rand(draw, (c_out,))
    g = rand(draw, (x.shape[0], c_out) + out)
    return x, wt, b, g, dict(stride=s, padding=p, dilation=d, groups=groups)


def fast_conv_and_grads(x, wt, b, g, settings_):
    tx, tw, tb = t(x, True), t(wt, True), t(b, True)
    y = F.conv2d(tx, tw, tb, **settings_)
    y.backward(t(g))
    return y.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@settings(max_examples=25, deadline=None)
@given(case=conv_case())
def test_conv2d_loops_is_the_conv_values_and_gradients(case):
    x, wt, b, g, kw = case
    y, dx, dw, db = fast_conv_and_grads(x, wt, b, g, kw)
    close(ref.conv2d_loops(x, wt, b, **kw), y)
    for mine, fast in zip(ref.conv2d_loops_backward(x, wt, g, **kw), (dx, dw, db)):
        close(mine, fast)


@settings(max_examples=30, deadline=None)
@given(case=conv_case())
def test_conv2d_unfold_is_the_conv_values_and_gradients(case):
    x, wt, b, g, kw = case
    y, dx, dw, db = fast_conv_and_grads(x, wt, b, g, kw)
    close(ref.conv2d_unfold(x, wt, b, **kw), y)
    for mine, fast in zip(ref.conv2d_unfold_backward(x, wt, g, **kw), (dx, dw, db)):
        close(mine, fast)


@settings(max_examples=30, deadline=None)
@given(case=conv_case(grouped=False))
def test_unfold_and_fold_are_the_library_ops(case):
    x, wt, _, _, kw = case
    k, s, p, d = wt.shape[2:], kw["stride"], kw["padding"], kw["dilation"]
    cols = ref.unfold(x, k, d, p, s)                       # F.unfold's order: kernel, dilation, padding, stride
    close(cols, F.unfold(t(x), k, d, p, s).numpy())
    c = np.random.default_rng(0).standard_normal(cols.shape)
    close(ref.fold(c, x.shape[2:], k, d, p, s), F.fold(t(c), x.shape[2:], k, d, p, s).numpy())


@st.composite
def transpose_case(draw):
    k, s, d = draw(pairs), draw(pairs), draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    p = draw(st.tuples(st.integers(0, 3), st.integers(0, 3)))       # may exceed d(k-1): the output is cropped
    op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    try:
        out = shapes.conv_transpose2d_output_size((h, w), k, s, p, op, d)
    except ValueError:
        assume(False)
    c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    x = rand(draw, (draw(st.integers(1, 2)), c_in, h, w))
    return x, rand(draw, (c_in, c_out) + k), rand(draw, (c_out,)), rand(draw, (x.shape[0], c_out) + out), \
        dict(stride=s, padding=p, output_padding=op, dilation=d)


@settings(max_examples=40, deadline=None)
@given(case=transpose_case())
def test_conv_transpose2d_by_zero_insertion_is_the_transposed_conv_values_and_gradients(case):
    x, wt, b, g, kw = case
    tx, tw, tb = t(x, True), t(wt, True), t(b, True)
    y = F.conv_transpose2d(tx, tw, tb, **kw)
    y.backward(t(g))
    close(ref.conv_transpose2d_zero_insertion(x, wt, b, **kw), y.numpy())
    mine = ref.conv_transpose2d_backward(x, wt, g, kw["stride"], kw["padding"], kw["output_padding"], kw["dilation"])
    for a, fast in zip(mine, (tx.grad, tw.grad, tb.grad)):
        close(a, fast.numpy())


@st.composite
def pool_case(draw):
    k = draw(pairs)
    s = draw(st.one_of(st.none(), pairs))
    p = tuple(draw(st.integers(0, k[a] // 2)) for a in range(2))
    d = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    ceil_mode = draw(st.booleans())
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    try:
        out = shapes.max_pool2d_output_size((h, w), k, s, p, d, ceil_mode)
    except ValueError:
        assume(False)
    x = rand(draw, (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w))
    return x, rand(draw, x.shape[:2] + out), dict(kernel_size=k, stride=s, padding=p, dilation=d,
                                                  ceil_mode=ceil_mode)


@settings(max_examples=40, deadline=None)
@given(case=pool_case())
def test_max_pool_and_unpool_by_loops_are_the_library_ops(case):
    x, g, kw = case
    tx = t(x, True)
    try:
        y, idx = F.max_pool2d(tx, **kw, return_indices=True)
    except ValueError:       # the library refuses a window that reads only padding; the loops would give -inf
        assume(False)
    y.backward(t(g))
    mine, mine_idx = ref.max_pool2d_loops(x, **kw)
    close(mine, y.numpy())
    assert np.array_equal(mine_idx, idx.numpy())
    close(ref.max_pool2d_loops_backward(g, mine_idx, x.shape), tx.grad.numpy())
    # unpool: values, and the gradient of the unpool (a gather); where overlapping windows picked
    # the same input twice, the same value lands there twice (placed, not added)
    if kw["dilation"] == (1, 1):
        ty = t(y.numpy(), True)
        un = F.max_unpool2d(ty, idx, kw["kernel_size"], kw["stride"], kw["padding"], output_size=x.shape[2:])
        close(ref.max_unpool2d_loops(y.numpy(), mine_idx, x.shape[2:]), un.numpy())
        gu = np.random.default_rng(1).standard_normal(un.shape)
        un.backward(t(gu))
        close(ref.max_unpool2d_loops_backward(gu, mine_idx), ty.grad.numpy())


def test_max_pool_ties_go_to_the_first_maximum_in_both():
    x = np.zeros((1, 1, 4, 5))
    x[0, 0, 1, 1] = x[0, 0, 1, 0] = 1.0                                    # a tie inside the first window
    y, idx = ref.max_pool2d_loops(x, 2, ceil_mode=True)
    _, fast_idx = F.max_pool2d(t(x), 2, ceil_mode=True, return_indices=True)
    assert idx.tolist() == fast_idx.numpy().tolist() == [[[[5, 2, 4], [10, 12, 14]]]]


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), ho=st.integers(1, 9), wo=st.integers(1, 9),
       align=st.booleans(), seed=st.integers(0, 2**16))
def test_bilinear_from_its_formula_is_interpolate_values_and_gradients(h, w, ho, wo, align, seed):
    rng = np.random.default_rng(seed)
    x, g = rng.standard_normal((2, 2, h, w)), rng.standard_normal((2, 2, ho, wo))
    tx = t(x, True)
    y = F.interpolate(tx, size=(ho, wo), mode="bilinear", align_corners=align)
    y.backward(t(g))
    close(ref.interpolate_bilinear(x, (ho, wo), align), y.numpy())
    close(ref.interpolate_bilinear_backward(g, (h, w), align), tx.grad.numpy())


def test_the_reference_functions_stay_short():
    """The point of the module is to be read: every function under ~40 lines."""
    import inspect
    for name in ref.__all__:
        lines = inspect.getsource(getattr(ref, name)).splitlines()
        assert len(lines) <= 40, f"reference.{name} has {len(lines)} lines"


def test_the_reference_runs_on_the_cupy_backend_too(cupy):
    """Arrays are made with the input's array module: the loops give the same numbers on CuPy
    (the stand-in on a CPU) as on NumPy, and hand back device arrays."""
    rng = np.random.default_rng(0)
    x, w, g = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((1, 2, 5, 4))
    on = {name: msn.backend.asarray(a, backend="cupy") for name, a in (("x", x), ("w", w), ("g", g))}
    cases = [
        (ref.conv2d_loops, (x, w), (on["x"], on["w"]), dict(padding=1)),
        (lambda *a, **k: ref.conv2d_unfold_backward(*a, **k)[0], (x, w, g), (on["x"], on["w"], on["g"]),
         dict(padding=1)),
        (ref.conv_transpose2d_zero_insertion, (x, w), (on["x"], on["w"]), dict(stride=2, padding=1)),
        (lambda *a: ref.max_pool2d_loops(*a, 2, ceil_mode=True)[0], (x,), (on["x"],), {}),
        (ref.interpolate_bilinear, (x, (7, 3)), (on["x"], (7, 3)), {}),
    ]
    for fn, host_args, device_args, kwargs in cases:
        device = fn(*device_args, **kwargs)
        assert isinstance(device, cupy.ndarray)
        close(msn.backend.to_numpy(device), fn(*host_args, **kwargs))


def test_the_loops_agree_with_the_library_on_nan_all_minus_inf_windows_and_shared_winners():
    """A reviewer's finds: the loops dropped a NaN, sent an all -inf window's gradient to the
    plane's last pixel, and added an overlapping unpool's shared value twice (81 for 9)."""
    for x in (np.array([[[[1.0, np.nan], [0.0, 2.0]]]]), np.full((1, 1, 2, 4), -np.inf)):
        y, idx = F.max_pool2d(t(x), 2, return_indices=True)
        mine, mine_idx = ref.max_pool2d_loops(x, 2)
        np.testing.assert_array_equal(mine, y.numpy())
        np.testing.assert_array_equal(mine_idx, idx.numpy())
    x = np.array([[[[0.0, 1, 2], [3, 9, 4], [5, 6, 7]]]])
    y, idx = F.max_pool2d(t(x), 3, 1, 1, return_indices=True)          # every window's winner is the 9
    np.testing.assert_array_equal(ref.max_unpool2d_loops(y.numpy(), idx.numpy(), (3, 3)),
                                  F.max_unpool2d(y, idx, 3, 1, 1, output_size=(3, 3)).numpy())
    assert ref.max_unpool2d_loops(y.numpy(), idx.numpy(), (3, 3))[0, 0, 1, 1] == 9


def test_the_backward_loops_and_the_unpool_run_on_the_cupy_backend_too(cupy):
    """The gradients and the unpool make their arrays with the input's module too (the forward
    test above checks conv2d_loops, conv2d_unfold_backward, the transposed conv, the pool and
    the bilinear forward): same numbers as on NumPy, device arrays back."""
    rng = np.random.default_rng(0)
    x, w, g = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((1, 2, 4, 4))
    y, idx = ref.max_pool2d_loops(x, 2)
    gp = rng.standard_normal(y.shape)
    dev = lambda a: msn.backend.asarray(a, backend="cupy")
    cases = {
        "conv2d_loops_backward": (lambda a, b, c: ref.conv2d_loops_backward(a, b, c, padding=1), (x, w, g)),
        "max_pool2d_loops_backward": (lambda a, i: ref.max_pool2d_loops_backward(a, i, x.shape), (gp, idx)),
        "max_unpool2d_loops": (lambda a, i: ref.max_unpool2d_loops(a, i, (4, 4)), (y, idx)),
        "max_unpool2d_loops_backward": (ref.max_unpool2d_loops_backward, (g, idx)),
        "interpolate_bilinear_backward": (lambda a: ref.interpolate_bilinear_backward(a, (3, 5)), (g,)),
    }
    for name, (fn, args) in cases.items():
        on_host, on_device = fn(*args), fn(*(dev(a) for a in args))
        for host, device in zip(*((r if isinstance(r, tuple) else (r,)) for r in (on_host, on_device))):
            assert isinstance(device, cupy.ndarray), f"reference.{name} handed back {type(device).__name__}"
            close(msn.backend.to_numpy(device), host)


def test_the_loops_keep_float32_as_the_fast_ops_do():
    """float32 in, float32 out (int64 indices, as F.max_pool2d's): the loops must not widen to
    the default float64, or a float32 course example would print other numbers than the ops."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 4)).astype(np.float32), rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    g = rng.standard_normal((1, 2, 5, 4)).astype(np.float32)
    y, idx = ref.max_pool2d_loops(x, 2, ceil_mode=True)
    _, fast_idx = F.max_pool2d(msn.tensor(x), 2, ceil_mode=True, return_indices=True)
    outputs = {
        "conv2d_loops": ref.conv2d_loops(x, w, padding=1),
        "conv2d_loops_backward": ref.conv2d_loops_backward(x, w, g, padding=1),
        "unfold": ref.unfold(x, 3, padding=1),
        "conv2d_unfold": ref.conv2d_unfold(x, w, padding=1),
        "conv2d_unfold_backward": ref.conv2d_unfold_backward(x, w, g, padding=1),
        "conv_transpose2d_zero_insertion": ref.conv_transpose2d_zero_insertion(x, w, stride=2, padding=1),
        "max_pool2d_loops": y,
        "max_pool2d_loops_backward": ref.max_pool2d_loops_backward(y, idx, x.shape),
        "max_unpool2d_loops": ref.max_unpool2d_loops(y, idx, (5, 4)),
        "interpolate_bilinear": ref.interpolate_bilinear(x, (7, 3)),
        "interpolate_bilinear_backward": ref.interpolate_bilinear_backward(g, (3, 2)),
    }
    for name, out in outputs.items():
        for a in out if isinstance(out, tuple) else (out,):
            assert a.dtype == np.float32, f"reference.{name}: {a.dtype}"
    assert idx.dtype == fast_idx.numpy().dtype == np.int64


def test_with_two_nans_in_a_window_the_loops_pick_the_one_pytorch_and_the_library_pick(torch):
    """reference.max_pool2d_loops keeps the *first* NaN of a window ("a NaN beats every number,
    and the first NaN stays"); PyTorch (`val > maxval || isnan(val)`) and F.max_pool2d keep the
    *last*, so the index and the pixel that gets the gradient differ."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    x[0, 0, 0, 1] = x[0, 0, 1, 2] = np.nan                      # flat 1 and flat 5
    _, torch_idx = torch.nn.functional.max_pool2d(torch.tensor(x), 3, return_indices=True)
    _, idx = F.max_pool2d(t(x), 3, return_indices=True)
    mine, mine_idx = ref.max_pool2d_loops(x, 3)
    assert idx.numpy().item() == torch_idx.item() == 5
    assert np.isnan(mine).all()
    assert mine_idx.item() == idx.numpy().item()
    tx = t(x, True)
    F.max_pool2d(tx, 3).backward(t(np.ones((1, 1, 1, 1))))
    np.testing.assert_array_equal(ref.max_pool2d_loops_backward(np.ones((1, 1, 1, 1)), mine_idx, x.shape),
                                  tx.grad.numpy())
