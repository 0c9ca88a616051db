"""The speed levers of ``functional/conv_fast.py`` and the thread pool of ``parallel.py``.

Every lever setting gives the numbers of the plain whole-batch path in
``conv.py`` and of PyTorch (values and all gradients) on Hypothesis-drawn
configurations, cut into small pieces and row bands so every route is
reached; the thread pool gives bitwise identical results at one, two and
three threads, also with two callers at once; kept columns are counted and
freed; columns read from the unpadded input equal pad-then-im2col.
"""
import contextlib
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minisegnet as msn
from minisegnet import functional as F, parallel
from minisegnet.functional import conv as core
from minisegnet.functional import conv_fast
from minisegnet.functional import conv_row_taps as row_taps
from helpers import as_torch, assert_close, current_xp, t64

LEVERS = sorted(conv_fast.levers())


def _randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@contextlib.contextmanager
def small_pieces():
    """Cut every batch as finely as possible and share it over two threads."""
    saved = parallel.MIN_PIECE_BYTES, parallel.SPLIT
    parallel.MIN_PIECE_BYTES, parallel.SPLIT = 0, 3
    previous = parallel.set_num_threads(2)
    try:
        yield
    finally:
        parallel.set_num_threads(previous)
        parallel.MIN_PIECE_BYTES, parallel.SPLIT = saved


def _with_levers(settings, fn):
    """Run ``fn()`` with the levers in ``settings`` ({name: on}) switched, then restore them."""
    previous = {name: conv_fast.set_lever(name, on) for name, on in settings.items()}
    try:
        return fn()
    finally:
        for name, on in previous.items():
            conv_fast.set_lever(name, on)


@st.composite
def lever_cases(draw):
    transposed = draw(st.booleans())
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    depthwise = not transposed and draw(st.booleans())
    if depthwise:
        groups = c_out = c_in
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))     # padding beyond the kernel's reach too
    size = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    op = (0, 0)
    if transposed:
        op = tuple(draw(st.integers(0, max(s[a], d[a]) - 1)) for a in (0, 1))   # may exceed p: a crop
        for a in (0, 1):
            assume((size[a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + op[a] + 1 >= 1)
    else:
        for a in (0, 1):
            assume(size[a] + 2 * p[a] >= d[a] * (k[a] - 1) + 1)
    return dict(transposed=transposed, n=draw(st.integers(1, 4)), c_in=c_in, c_out=c_out, groups=groups, k=k,
                s=s, d=d, p=p, op=op, size=size, off=draw(st.sampled_from([None] + LEVERS)),   # switched
                limit=draw(st.sampled_from([None, 8, 200, 2000])))


def _run_case(case, seed):
    """Output and the three gradients (float64) with the current lever settings."""
    x = _randn((case["n"], case["c_in"]) + case["size"], seed)
    if case["transposed"]:
        w = _randn((case["c_in"], case["c_out"] // case["groups"]) + case["k"], seed + 1)
    else:
        w = _randn((case["c_out"], case["c_in"] // case["groups"]) + case["k"], seed + 1)
    b = _randn((case["c_out"],), seed + 2)
    X, W, B = t64(x), t64(w), t64(b)
    if case["transposed"]:
        y = F.conv_transpose2d(X, W, B, case["s"], case["p"], case["op"], case["groups"], case["d"])
    else:
        y = F.conv2d(X, W, B, case["s"], case["p"], case["d"], case["groups"])
    y.backward(_randn(y.shape, seed + 3))
    return [y.numpy(), X.grad.numpy(), W.grad.numpy(), B.grad.numpy()], (x, w, b)


@given(case=lever_cases(), seed=st.integers(0, 2**16))
def test_each_lever_setting_matches_the_plain_path_and_torch(torch, case, seed):
    previous_limit = conv_fast.set_im2col_limit(case["limit"] or conv_fast.get_im2col_limit())
    try:
        settings = {} if case["off"] is None else {case["off"]: not conv_fast.lever(case["off"])}
        with small_pieces():
            fast, (x, w, b) = _with_levers(settings, lambda: _run_case(case, seed))
    finally:
        conv_fast.set_im2col_limit(previous_limit)
    plain, _ = _with_levers({"fast_path": False}, lambda: _run_case(case, seed))
    for what, a, p in zip(("output", "grad input", "grad weight", "grad bias"), fast, plain):
        np.testing.assert_allclose(a, p, rtol=1e-12, atol=1e-12, err_msg=f"{what}, fast vs plain, {case}")

    tX, tW, tB = as_torch(torch, x), as_torch(torch, w), as_torch(torch, b)
    if case["transposed"]:
        ty = torch.nn.functional.conv_transpose2d(tX, tW, tB, case["s"], case["p"], case["op"], case["groups"],
                                                  case["d"])
    else:
        ty = torch.nn.functional.conv2d(tX, tW, tB, case["s"], case["p"], case["d"], case["groups"])
    ty.backward(torch.tensor(_randn(tuple(ty.shape), seed + 3)))
    for what, a, t in zip(("output", "grad input", "grad weight", "grad bias"), fast, (ty, tX.grad, tW.grad,
                                                                                       tB.grad)):
        assert_close(a, t, what=f"{what} vs torch, {case}")


# ---- columns without the padded copy (NumPy), or in one copy (CuPy) ------------------------
@given(n=st.integers(1, 2), c=st.integers(1, 2), h=st.integers(0, 6), w=st.integers(1, 6),
       k=st.tuples(st.integers(1, 3), st.integers(1, 3)), s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       d=st.tuples(st.integers(1, 2), st.integers(1, 2)), pads=st.tuples(*[st.integers(-2, 4)] * 4),
       route=st.sampled_from(["unpadded", "window", "window, images inside"]), seed=st.integers(0, 2**16))
def test_fast_columns_equal_pad_then_im2col(n, c, h, w, k, s, d, pads, route, seed):
    """``unpadded`` (taps from the unpadded input) and ``window`` (one copy of a strided window
    view; a GPU takes it for every conv, run here on NumPy arrays) in both of its layouts:
    (n, C*kh*kw, L) and, for ``one_gemm``, (C*kh*kw, n, L). Including negative pads (crops)
    and inputs with no rows (a band of padding only)."""
    x = _randn((n, c, h, w), seed)
    assume(h + pads[0] + pads[1] >= d[0] * (k[0] - 1) + 1 and w + pads[2] + pads[3] >= d[1] * (k[1] - 1) + 1)
    assume(min(pads[0], pads[1]) > -h or h == 0)
    assume(-pads[2] < w and -pads[3] < w and -pads[2] - pads[3] < w)
    assume(-pads[0] - pads[1] < h or h == 0)
    out_hw = conv_fast._out_hw((h, w), pads, k, s, d)
    expected = core._im2col(core._pad(x, pads), k, s, d, out_hw, np.empty((n, c * k[0] * k[1], out_hw[0] * out_hw[1])))
    if route == "window, images inside":
        expected = expected.transpose(1, 0, 2)
    cols = np.full(expected.shape, np.nan)          # a stale buffer: every entry must be written
    if route == "unpadded":
        conv_fast._im2col_unpadded(x, pads, k, s, d, out_hw, cols)
    else:
        conv_fast._im2col_window(x, pads, k, s, d, out_hw, cols, images_inside=route != "window")
    np.testing.assert_array_equal(cols, expected)


def test_bands_that_read_only_padding(torch):
    """A 1x1 kernel with padding 3 on a 2-row image: the first and last output rows read padding
    only; with one output row per band, such bands have no input rows at all."""
    x, w = _randn((1, 2, 2, 3), 0), _randn((2, 2, 1, 1), 1)
    previous = conv_fast.set_im2col_limit(2 * 9 * 8)          # one output row (9 columns of 2 rows) per band
    try:
        assert len(conv_fast._pieces(1, 8, 2 * 9 * 8, current_xp())) == 8
        X, W = t64(x), t64(w)
        y = F.conv2d(X, W, None, 1, 3)
        y.backward(_randn(y.shape, 2))
    finally:
        conv_fast.set_im2col_limit(previous)
    tX, tW = as_torch(torch, x), as_torch(torch, w)
    ty = torch.nn.functional.conv2d(tX, tW, None, 1, 3)
    ty.backward(torch.tensor(_randn(tuple(ty.shape), 2)))
    for a, t in ((y, ty), (X.grad, tX.grad), (W.grad, tW.grad)):
        assert_close(a, t)


# ---- threads ---------------------------------------------------------------------------
def _float32_case(transposed, stride, groups, seed=0):
    # big enough (0.3-1 ms a piece) that the threads' pieces overlap in time
    x = _randn((8, 16, 32, 32), seed).astype(np.float32)
    w = (_randn((16, 16 // groups, 3, 3), seed + 1) * 0.2).astype(np.float32)
    b = _randn((16,), seed + 2).astype(np.float32)

    def run():
        X, W, B = (msn.tensor(a, requires_grad=True) for a in (x, w, b))
        if transposed:
            y = F.conv_transpose2d(X, W, B, stride, 1, stride - 1, groups)
        else:
            y = F.conv2d(X, W, B, stride, 1, 1, groups)
        y.backward(_randn(y.shape, seed + 3).astype(np.float32))
        return [y.numpy(), X.grad.numpy(), W.grad.numpy(), B.grad.numpy()]

    return run


def _pool_really_runs_in_parallel():
    if not parallel.blas_threads_controllable():
        pytest.skip("OpenBLAS's per-thread setting is not available here: the pool runs serially")
    previous = parallel.set_num_threads(2)
    try:
        barrier = threading.Barrier(2, timeout=10)

        def task(_):
            barrier.wait()          # both shares must be running at the same time to pass
            return threading.get_ident()

        assert len(set(parallel.run(task, [0, 1]))) == 2
    finally:
        parallel.set_num_threads(previous)


@pytest.mark.parametrize("transposed, stride, groups", [(False, 1, 1), (False, 2, 2), (True, 1, 1), (True, 2, 1),
                                                         (False, 2, 16)])
def test_threads_give_bitwise_identical_results(monkeypatch, transposed, stride, groups):
    _pool_really_runs_in_parallel()
    monkeypatch.setattr(parallel, "MIN_PIECE_BYTES", 0)
    monkeypatch.setattr(parallel, "SPLIT", 4)
    run = _float32_case(transposed, stride, groups)
    results = {}
    for n in (1, 2, 3):
        previous = parallel.set_num_threads(n)
        try:
            results[n] = run()
        finally:
            parallel.set_num_threads(previous)
    for n in (2, 3):
        for a, b in zip(results[1], results[n]):
            np.testing.assert_array_equal(a, b)


def test_two_callers_at_once_get_their_own_results(monkeypatch):
    """Two threads of the user's each run convolutions while the pool shares their pieces:
    the per-thread scratch buffers keep them apart."""
    _pool_really_runs_in_parallel()
    monkeypatch.setattr(parallel, "MIN_PIECE_BYTES", 0)
    runs = [_float32_case(False, 1, 1, seed=0), _float32_case(True, 2, 1, seed=10)]
    previous = parallel.set_num_threads(2)
    try:
        expected = [run() for run in runs]
        got, errors = [None, None], []

        def caller(k):
            try:
                for _ in range(5):
                    got[k] = runs[k]()
                    for a, b in zip(got[k], expected[k]):
                        np.testing.assert_array_equal(a, b)
            except Exception as error:      # reported below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=caller, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        parallel.set_num_threads(previous)
    assert not errors, errors[0]


def test_run_keeps_piece_order_and_reports_errors_once_nothing_runs():
    previous = parallel.set_num_threads(3)
    try:
        assert parallel.run(lambda p: p * p, list(range(10))) == [p * p for p in range(10)]
        started, finished = [], []

        def task(p):
            started.append(p)
            time.sleep(0.01)
            if p == 0:
                raise KeyError("piece 0")
            finished.append(p)
            return p

        with pytest.raises(KeyError, match="piece 0"):
            parallel.run(task, list(range(6)))
        # every piece that started had finished when the error reached the caller
        assert sorted(finished) == sorted(p for p in started if p != 0)
        time.sleep(0.05)
        assert sorted(finished) == sorted(p for p in started if p != 0)     # and none started later
        # a task that calls run again works through its pieces itself
        assert parallel.run(lambda p: parallel.run(lambda q: p + q, [1, 2]), [10, 20]) == [[11, 12], [21, 22]]
    finally:
        parallel.set_num_threads(previous)


def test_a_late_worker_finds_the_pieces_taken():
    """The calling thread claims pieces itself: with the only worker busy elsewhere, a job
    still finishes, in the calling thread alone."""
    if not parallel.blas_threads_controllable():
        pytest.skip("OpenBLAS's per-thread setting is not available here: the pool runs serially")
    previous = parallel.set_num_threads(2)
    try:
        gate = threading.Event()
        parallel._get_pool().submit(gate.wait, 10)          # occupy the one worker
        me = threading.get_ident()
        assert parallel.run(lambda p: threading.get_ident(), [0, 1, 2]) == [me, me, me]
        gate.set()
    finally:
        parallel.set_num_threads(previous)


def test_run_beside_overlaps_the_callers_work_with_the_pieces():
    """``own`` runs in the calling thread *while* a worker runs the pieces: here ``own`` waits for
    a piece to start, which a ``run_beside`` that ran one after the other would never see. Errors
    of a piece reach the caller; with one thread, ``own`` runs first and then the pieces."""
    if not parallel.blas_threads_controllable():
        pytest.skip("OpenBLAS's per-thread setting is not available here: the pool runs serially")
    previous = parallel.set_num_threads(2)
    try:
        piece_started, seen = threading.Event(), []

        def own():
            seen.append(("own", threading.get_ident(), piece_started.wait(10)))

        def task(p):
            piece_started.set()
            seen.append(("piece", threading.get_ident(), p))

        parallel.run_beside(own, task, [0, 1, 2])
        me = threading.get_ident()
        assert ("own", me, True) in seen                                        # own saw a piece start
        assert sorted(p for kind, _, p in seen if kind == "piece") == [0, 1, 2]
        assert any(kind == "piece" and ident != me for kind, ident, _ in seen)   # a worker took one

        def failing(p):
            raise KeyError(f"piece {p}")

        with pytest.raises(KeyError, match="piece"):
            parallel.run_beside(lambda: None, failing, [0, 1])
        parallel.set_num_threads(1)
        order = []
        parallel.run_beside(lambda: order.append("own"), order.append, [0, 1])
        assert order == ["own", 0, 1]
    finally:
        parallel.set_num_threads(previous)


@pytest.mark.parametrize("bad", [0, -1, np.int64(0)])
def test_set_num_threads_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        msn.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, True, "2", None])
def test_set_num_threads_refuses_what_is_not_an_integer(bad):
    with pytest.raises(TypeError, match="n must be an integer"):      # torch.set_num_threads(1.5): a TypeError too
        msn.set_num_threads(bad)


def test_levers_are_named():
    with pytest.raises(ValueError, match="unknown lever 'warp'"):
        conv_fast.set_lever("warp", False)
    with pytest.raises(TypeError, match="on must be True or False"):
        conv_fast.set_lever("flip", 0)


# ---- kept columns ---------------------------------------------------------------------------
@pytest.fixture
def keeping():
    previous = conv_fast.set_lever("keep_columns", True)
    yield
    conv_fast.set_lever("keep_columns", previous)


def test_kept_columns_are_counted_and_freed(keeping):
    x, w = t64(_randn((2, 3, 8, 8), 0)), t64(_randn((4, 3, 3, 3), 1))
    assert conv_fast.kept_bytes() == 0
    y = F.conv2d(x, w, padding=1)
    kept = 2 * 27 * 64 * 8
    assert conv_fast.kept_bytes() == kept and y.creator.saved.columns is not None
    y.backward(np.ones(y.shape), retain_graph=True)        # the node kept, to look at it
    assert conv_fast.kept_bytes() == 0 and y.creator.saved.columns is None
    F.conv2d(x, w, padding=1)                   # a graph dropped without backward
    assert conv_fast.kept_bytes() == 0
    with msn.no_grad():
        F.conv2d(x, w, padding=1)
    assert conv_fast.kept_bytes() == 0
    w_fixed = t64(w.numpy(), requires_grad=False)   # no weight gradient wanted: nothing kept
    F.conv2d(x, w_fixed, padding=1)
    assert conv_fast.kept_bytes() == 0


def test_kept_columns_respect_the_budget_and_give_the_same_numbers(keeping):
    x, w = _randn((2, 3, 8, 8), 0), _randn((4, 3, 3, 3), 1)

    w2 = _randn((2, 4, 3, 3), 2)

    def grads():
        X, W, W2 = t64(x), t64(w), t64(w2)
        y = F.conv2d(F.conv2d(X, W, padding=1), W2, padding=1)
        first_kept = y.creator.inputs[0].creator.saved.columns is not None
        y.backward(np.ones(y.shape))
        return first_kept, X.grad.numpy(), W.grad.numpy(), W2.grad.numpy()     # both layers' (kept columns
        # sharing a scratch buffer were overwritten in the second layer only)

    kept, *with_kept = grads()
    assert kept
    previous = conv_fast.set_keep_budget(2 * 27 * 64 * 8 - 1)    # one byte short for the first layer
    try:
        kept, *rebuilt = grads()
    finally:
        conv_fast.set_keep_budget(previous)
    assert not kept
    for a, b in zip(with_kept, rebuilt):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)   # the rebuilt layer 2 may go by row taps
    assert conv_fast.kept_bytes() == 0


def test_a_pointwise_conv_reads_its_input_as_its_columns():
    x = _randn((2, 3, 4, 5), 0)
    cols = conv_fast._piece_columns(x, (0, 2, 0, 4), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 5)
    assert np.shares_memory(cols, x) and cols.shape == (2, 3, 20)
    np.testing.assert_array_equal(cols, x.reshape(2, 3, 20))
    band = conv_fast._piece_columns(x, (1, 2, 1, 3), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 5)
    np.testing.assert_array_equal(band, x[1:2, :, 1:3].reshape(1, 3, 10))
    padded = conv_fast._piece_columns(x, (0, 2, 0, 6), (1, 1), (1, 1), (1, 1, 0, 0), (1, 1), 5)
    assert not np.shares_memory(padded, x)


# ---- row taps: one kernel row's columns, the other rows as views -------------------------------
def test_row_tap_blocks_are_the_full_columns_of_each_tap_row():
    """Tap row i's block of the row-tap columns is, row for row, the im2col columns of taps
    (i, 0..kw-1): the identity the ``row_taps`` lever rests on (dilation 2 down the rows)."""
    x = _randn((2, 3, 7, 6), 4)
    kernel, pads, dilation = (3, 2), (2, 1, 1, 0), (2, 1)
    ho, wo = conv_fast._out_hw(x.shape[2:], pads, kernel, (1, 1), dilation)
    full = core._im2col(core._pad(x, pads), kernel, (1, 1), dilation, (ho, wo), np.empty((2, 3 * 6, ho * wo)))
    rows = row_taps.columns(x, (0, 2, 0, ho), kernel, pads, dilation, wo)
    assert rows.shape == (2, 3 * 2, (ho + 2 * 2) * wo)
    for i in range(3):
        block = row_taps.block(rows, i, dilation[0], wo, ho * wo)
        np.testing.assert_array_equal(block.reshape(2, 3, 2, -1), full.reshape(2, 3, 3, 2, -1)[:, :, i])


def test_row_taps_step_aside_for_bands_no_taller_than_the_dilation(monkeypatch):
    """A band of r output rows reads r + d*(kh-1) padded rows: its row-tap columns are the
    smaller buffer only when r > d. With bands of 2 rows, a conv dilated by 2 goes by full
    columns, one dilated by 1 by row taps, and every row-tap buffer fits the memory limit."""
    if current_xp() is not np:
        pytest.skip("row taps are a NumPy lever (CuPy builds its columns from a window view)")
    built = []
    original = row_taps.columns
    monkeypatch.setattr(row_taps, "columns", lambda *a: built.append(original(*a)) or built[-1])
    x, w = msn.tensor(_randn((1, 4, 9, 8), 0)), msn.tensor(_randn((3, 4, 3, 3), 1))
    two_rows = 2 * 4 * 9 * 8 * 8                 # bytes of full float64 columns of two output rows
    previous = conv_fast.set_im2col_limit(two_rows)
    try:
        F.conv2d(x, w, padding=2, dilation=2)
        assert built == []
        F.conv2d(x, w, padding=1)
        assert built and all(cols.nbytes <= two_rows for cols in built)
    finally:
        conv_fast.set_im2col_limit(previous)


def _stride1_case(torch, transposed, k, d, p, size):
    """A stride-1 conv (or transposed conv) of 3 images, 2 -> 3 channels, and PyTorch's output and
    gradients for it: ``(case, [output, grad input, grad weight, grad bias])``."""
    case = dict(transposed=transposed, n=3, c_in=2, c_out=3, groups=1, k=k, s=(1, 1), d=d, p=p, op=(0, 0),
                size=size)
    tX, tW, tB = (as_torch(torch, a) for a in (_randn((3, 2) + size, 0),
                                               _randn((2, 3) + k if transposed else (3, 2) + k, 1),
                                               _randn((3,), 2)))
    conv = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
    ty = conv(tX, tW, tB, 1, p, 0, 1, d) if transposed else conv(tX, tW, tB, 1, p, d)
    ty.backward(torch.tensor(_randn(tuple(ty.shape), 3)))
    return case, [ty, tX.grad, tW.grad, tB.grad]


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("k, d, p, limit", [((3, 3), (1, 1), (1, 1), None), ((3, 2), (2, 1), (2, 0), None),
                                            ((2, 3), (1, 2), (0, 3), None), ((3, 3), (2, 2), (2, 2), 2592),
                                            ((3, 3), (1, 1), (1, 1), 1728)])
def test_row_taps_match_torch_at_stride_1(torch, monkeypatch, transposed, k, d, p, limit):
    """Stride-1 convs and transposed convs with the ``row_taps`` lever on and off, dilated down
    the rows or across, in whole images and (a small memory limit) in bands of rows, bands below
    the top included (bands of one row fall back to copying every tap: a band read from the wrong
    rows passed with those): PyTorch's output and gradients either way."""
    bands, row_tap_columns = [], row_taps.columns
    monkeypatch.setattr(row_taps, "columns",
                        lambda x, piece, *args: bands.append(piece) or row_tap_columns(x, piece, *args))
    case, expected = _stride1_case(torch, transposed, k, d, p, (7, 6))
    previous_limit = conv_fast.set_im2col_limit(limit or conv_fast.get_im2col_limit())
    try:
        for on in (True, False):
            with small_pieces():
                got, _ = _with_levers({"row_taps": on}, lambda: _run_case(case, 0))
            for what, a, t in zip(("output", "grad input", "grad weight", "grad bias"), got, expected):
                assert_close(a, t, what=f"{what}, row_taps {on}")
    finally:
        conv_fast.set_im2col_limit(previous_limit)
    if limit and msn.get_backend() == "numpy":                   # row taps are NumPy's (a GPU copies every tap)
        assert any(r0 > 0 for _, _, r0, _ in bands), bands     # a band below the top went by row taps


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("k, d, p, limit", [((3, 3), (1, 1), (1, 1), None), ((3, 2), (2, 1), (2, 0), None),
                                            ((5, 3), (1, 1), (2, 1), None), ((3, 3), (1, 1), (1, 1), 1728)])
def test_stacked_row_products_match_torch(torch, monkeypatch, transposed, k, d, p, limit):
    """The ``stacked_rows`` lever: one product of the stacked weight rows, its row blocks added
    shifted by i*dh output rows (kh = 2, 3 and 5, dilated down the rows, in bands): PyTorch's
    output and gradients, and the stacked product really ran (SMALL_PRODUCT 0 lets these small
    layers take it)."""
    monkeypatch.setattr(row_taps, "SMALL_PRODUCT", 0)
    ran, stacked = [], row_taps.stacked
    monkeypatch.setattr(row_taps, "stacked", lambda *a: ran.append(stacked(*a)) or ran[-1])
    case, expected = _stride1_case(torch, transposed, k, d, p, (9, 6))
    previous_limit = conv_fast.set_im2col_limit(limit or conv_fast.get_im2col_limit())
    try:
        with small_pieces():
            got, _ = _with_levers({"stacked_rows": True}, lambda: _run_case(case, 0))
    finally:
        conv_fast.set_im2col_limit(previous_limit)
    for what, a, t in zip(("output", "grad input", "grad weight", "grad bias"), got, expected):
        assert_close(a, t, what=f"{what}, stacked rows")
    if msn.get_backend() == "numpy":
        assert any(ran), "no stacked product ran"


def test_stacked_rows_decide_by_size():
    """Stacked for the benchmark U-Net's 16-channel 3x3 layers on 64x64 images, not where each
    product is small enough for OpenBLAS's small-matrix kernel, nor with many output channels."""
    w16 = np.zeros((3, 16, 48), np.float32)
    assert row_taps.stacked(w16, 64 * 64)                       # 16 * 48 * 4096 > 10**6
    assert not row_taps.stacked(w16, 32 * 32)                   # 786 432: the small kernel's
    assert not row_taps.stacked(np.zeros((3, 64, 192), np.float32), 64 * 64)    # 192 stacked rows
    assert not _with_levers({"stacked_rows": False}, lambda: row_taps.stacked(w16, 64 * 64))


@given(n=st.integers(1, 3), c_in=st.integers(1, 3), c_out=st.integers(1, 4), kh=st.integers(2, 4),
       kw=st.integers(1, 3), d=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       p=st.tuples(st.integers(0, 3), st.integers(0, 3)), size=st.tuples(st.integers(1, 8), st.integers(1, 8)),
       transposed=st.booleans(), stack=st.booleans(), limit=st.sampled_from([None, 200, 2000]),
       seed=st.integers(0, 2**16))
def test_row_taps_and_stacked_rows_match_torch_on_drawn_layers(torch, n, c_in, c_out, kh, kw, d, p, size,
                                                                transposed, stack, limit, seed):
    """Drawn stride-1 layers and transposed layers through the row taps (no kept columns, which
    would take the full columns instead), their products stacked (SMALL_PRODUCT 0, so that small
    layers stack) or not, in whole images or bands: the plain path's numbers and PyTorch's."""
    for a, k in enumerate((kh, kw)):
        if transposed:
            assume((size[a] - 1) - 2 * p[a] + d[a] * (k - 1) + 1 >= 1)
        else:
            assume(size[a] + 2 * p[a] >= d[a] * (k - 1) + 1)
    case = dict(transposed=transposed, n=n, c_in=c_in, c_out=c_out, groups=1, k=(kh, kw), s=(1, 1), d=d, p=p,
                op=(0, 0), size=size)
    previous_limit = conv_fast.set_im2col_limit(limit or conv_fast.get_im2col_limit())
    previous_small = row_taps.SMALL_PRODUCT
    try:
        row_taps.SMALL_PRODUCT = 0
        with small_pieces():
            got, (x, w, b) = _with_levers({"keep_columns": False, "stacked_rows": stack},
                                          lambda: _run_case(case, seed))
    finally:
        conv_fast.set_im2col_limit(previous_limit)
        row_taps.SMALL_PRODUCT = previous_small
    plain, _ = _with_levers({"fast_path": False}, lambda: _run_case(case, seed))
    for what, a, e in zip(("output", "grad input", "grad weight", "grad bias"), got, plain):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=f"{what}, row taps vs plain, {case}")
    tX, tW, tB = as_torch(torch, x), as_torch(torch, w), as_torch(torch, b)
    if transposed:
        ty = torch.nn.functional.conv_transpose2d(tX, tW, tB, 1, p, 0, 1, d)
    else:
        ty = torch.nn.functional.conv2d(tX, tW, tB, 1, p, d)
    ty.backward(torch.tensor(_randn(tuple(ty.shape), seed + 3)))
    for what, a, t in zip(("output", "grad input", "grad weight", "grad bias"), got, (ty, tX.grad, tW.grad, tB.grad)):
        assert_close(a, t, what=f"{what} vs torch, row taps, {case}")


# ---- ReLU and max-pool, a slab of images at a time --------------------------------------------
@pytest.mark.parametrize("k, s, p, d, ceil", [(2, 2, 0, 1, False), (3, 2, 1, 2, True), (3, 1, 1, 1, False)])
def test_relu_and_max_pool_in_slabs_match_torch_at_any_thread_count(torch, monkeypatch, k, s, p, d, ceil):
    """Cut into slabs of one or two images (several threads), the numbers are PyTorch's and
    do not change with the thread count."""
    monkeypatch.setattr(parallel, "MIN_PIECE_BYTES", 0)
    monkeypatch.setattr(parallel, "SPLIT", 4)
    x = _randn((5, 3, 11, 10), 0)
    assert len(parallel.pieces(5, x[0].nbytes)) == 3          # the slabs really are cut

    def run(n):
        previous = parallel.set_num_threads(n)
        try:
            X = t64(x)
            y = F.max_pool2d(F.relu(X), k, s, p, d, ceil_mode=ceil)
            y.backward(_randn(y.shape, 1))
            return y.numpy(), X.grad.numpy()
        finally:
            parallel.set_num_threads(previous)

    one, two = run(1), run(2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    tX = as_torch(torch, x)
    ty = torch.nn.functional.max_pool2d(torch.relu(tX), k, s, p, d, ceil_mode=ceil)
    ty.backward(torch.tensor(_randn(tuple(ty.shape), 1)))
    assert_close(one[0], ty)
    assert_close(one[1], tX.grad)


def test_pieces_depend_on_sizes_not_threads(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PIECE_BYTES", 1000)
    monkeypatch.setattr(parallel, "SPLIT", 3)
    previous = parallel.get_num_threads()
    try:
        for n in (1, 2, 4):
            parallel.set_num_threads(n)
            assert parallel.pieces(8, 2000) == [(0, 3), (3, 6), (6, 8)]     # at least SPLIT pieces
            assert parallel.pieces(8, 300) == [(0, 4), (4, 8)]             # ... of at least MIN_PIECE_BYTES
            assert parallel.pieces(8, 1) == [(0, 8)]                       # tiny items: one piece
            assert parallel.pieces(3, 100, max_bytes=150) == [(0, 1), (1, 2), (2, 3)]   # the limit wins
            # four runs of 3 on 3 threads would leave two threads waiting for the fourth:
            assert parallel.pieces(10, 1000, max_bytes=3000) == [(0, 1), (1, 3), (3, 5), (5, 6), (6, 8), (8, 10)]
            assert len(parallel.pieces(10, 400, max_bytes=1200)) == 4      # six would fall under MIN_PIECE_BYTES
            monkeypatch.setattr(parallel, "EVEN_RUNS", False)
            assert parallel.pieces(10, 1000, max_bytes=3000) == [(0, 3), (3, 6), (6, 9), (9, 10)]
            monkeypatch.setattr(parallel, "EVEN_RUNS", True)
    finally:
        parallel.set_num_threads(previous)


def test_openblas_holds_one_thread_while_a_job_runs_and_gets_its_threads_back():
    if not parallel.blas_threads_controllable():
        pytest.skip("OpenBLAS's thread count cannot be set here")
    get, set_ = parallel._openblas[0]
    before = get()
    set_(2)                       # a count other than 1, whatever earlier tests left (a mutation review's find:
    previous = parallel.set_num_threads(2)            # at 1, a second caller saving the 1 went unseen)
    try:
        seen = parallel.run(lambda p: get(), [0, 1, 2])
        assert seen == [1, 1, 1] and get() == 2
        # two callers at once: the count comes back only when both are done
        barrier = threading.Barrier(2, timeout=10)
        inside = []

        def caller():
            inside.extend(parallel.run(lambda p: (barrier.wait(), get())[1], [0]))

        threads = [threading.Thread(target=caller) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert inside == [1, 1] and get() == 2
    finally:
        parallel.set_num_threads(previous)
        set_(before)


@pytest.mark.parametrize("stride", [1, 2])        # by row taps (stride 1) and by full columns
def test_transposed_weight_grad_takes_its_route(monkeypatch, stride):
    """The numbers are the same either way (the lever tests above), so only a spy shows that the
    lever switches anything: conv.py's ``g @ cols^T`` runs with it off, never with it on (NumPy)."""
    if current_xp() is not np:
        pytest.skip("a NumPy lever")
    calls = []
    plain = core._gemm_weight_grad
    monkeypatch.setattr(core, "_gemm_weight_grad", lambda *args: calls.append(1) or plain(*args))
    x, w = t64(_randn((2, 3, 9, 8), 0)), t64(_randn((4, 3, 3, 3), 1))
    def backward():
        y = F.conv2d(x, w, stride=stride, padding=1)
        y.backward(np.ones(y.shape))

    for on in (True, False):
        calls.clear()
        _with_levers({"transposed_weight_grad": on}, backward)
        assert bool(calls) is (not on), (on, calls)


def _record_column_bytes(monkeypatch):
    """A list that collects the bytes of every column buffer conv_fast asks for from here on."""
    sizes = []
    scratch = conv_fast._scratch

    def recording(xp, shape, dtype, role):
        if role == "cols":
            sizes.append(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        return scratch(xp, shape, dtype, role)

    monkeypatch.setattr(conv_fast, "_scratch", recording)
    return sizes


def test_cpu_pieces_of_columns_stay_under_4_mib_below_the_32_mib_limit(monkeypatch):
    # docs/performance.md, "Its memory": on the CPU the pieces of columns are kept "also under 4 MiB"
    if current_xp() is not np:
        pytest.skip("the 4 MiB pieces are a CPU lever (on CuPy only the limit cuts the batch)")
    assert conv_fast.CACHE_PIECE_BYTES == 4 * 2**20 and conv_fast.lever("cache_pieces")
    monkeypatch.setattr(parallel, "SPLIT", 1)           # no cut for the threads: only the byte limits cut
    sizes = _record_column_bytes(monkeypatch)
    rng = np.random.default_rng(0)
    x = msn.tensor(rng.standard_normal((8, 16, 64, 64)).astype(np.float32))   # columns 590 KB an image
    w = msn.tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    F.conv2d(x, w, stride=2, padding=1)                 # stride 2: full columns, no row taps
    whole = 8 * 16 * 9 * 32 * 32 * 4
    assert whole > 4 * 2**20 and F.get_im2col_limit() == 32 * 2**20 > whole   # the 32 MiB limit alone would not cut
    assert sizes and max(sizes) <= 4 * 2**20 and len(sizes) > 1


def _randn_cr(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("transposed", [False, True])
def test_columns_of_the_transposed_direction_stay_under_the_im2col_limit(monkeypatch, transposed):
    """``set_im2col_limit``: "Bound each piece of columns ... to nbytes bytes"; an image whose own
    columns exceed it goes a band of rows at a time. The forward conv does (row bands); the
    transposed direction (conv_transpose2d's forward, and a strided conv2d's input gradient, both
    ``conv_fast._conv_transpose2d_pieces``) built the columns of a whole image at once: 20x the
    limit here."""
    monkeypatch.setattr(parallel, "SPLIT", 1)           # only the byte limit cuts
    sizes = _record_column_bytes(monkeypatch)
    limit = 256 * 1024

    def run():
        x = msn.tensor(_randn_cr((1, 16, 96, 96), 0), requires_grad=True)
        w = msn.tensor(_randn_cr((16, 16, 3, 3), 1), requires_grad=True)
        if transposed:
            y = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)     # columns 10.6 MB an image
        else:
            y = F.conv2d(x, w, stride=2, padding=1)                                  # its input gradient: 2.7 MB
        y.backward(np.cos(np.arange(y.numel())).reshape(y.shape))
        return y.numpy(), x.grad.numpy(), w.grad.numpy()

    before = conv_fast.set_lever("fast_path", False)           # conv.py's whole-batch path: no pieces at all
    try:
        whole = run()
    finally:
        conv_fast.set_lever("fast_path", before)
    sizes.clear()
    previous = conv_fast.set_im2col_limit(limit)
    try:
        banded = run()
    finally:
        conv_fast.set_im2col_limit(previous)
    assert sizes and max(sizes) <= limit, f"columns of {max(sizes)} bytes, limit {limit}"
    for a, b in zip(banded, whole):                  # the bands' overlapping windows add up as the whole image's
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_set_num_threads_takes_a_numpy_integer():
    """torch.set_num_threads(np.int64(2)) works; set_im2col_limit here takes NumPy integers too."""
    previous = msn.set_num_threads(np.int64(2))
    try:
        assert parallel.get_num_threads() == 2
    finally:
        parallel.set_num_threads(previous)


def test_set_im2col_limit_while_another_thread_adds_a_scratch_buffer():
    """``set_im2col_limit`` walks each thread's buffer dict in Python (a list comprehension over
    ``cache.buffers.items()``); another thread's conv adding a buffer meanwhile made it raise
    ``RuntimeError: dictionary changed size during iteration``, after the limit was already
    changed (seen with two real threads and ``sys.setswitchinterval(1e-6)``: 36 errors in 5 s).
    Here a buffer whose size, when read, adds another one stands for that thread, deterministically."""
    cache = conv_fast._thread_cache()
    name = msn.get_backend()

    class Arriving:
        @property
        def nbytes(self):
            cache.buffers[(name, f"arrived{len(cache.buffers)}", "<f8")] = np.empty(1)
            return 1

    cache.buffers[(name, "probe", "<f8")] = Arriving()
    previous = conv_fast.get_im2col_limit()
    try:
        conv_fast.set_im2col_limit(previous // 2)
        assert conv_fast.get_im2col_limit() == previous // 2
    finally:
        conv_fast.clear_buffer_cache()
        conv_fast.set_im2col_limit(previous)


def test_float16_conv_gradients_stay_within_pytorchs_error_at_any_piece_limit(torch):
    """The weight and bias gradients are summed piece by piece; in float16 each addition
    rounded, so the error grew with the number of pieces (with a 4 KB piece limit, 6x PyTorch's
    own float16 error against a float64 reference). A float16 convolution now runs in float32
    and rounds once (PyTorch's opmath): within PyTorch's error at any piece limit."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((8, 4, 64, 64)).astype(np.float16)
    w0 = (rng.standard_normal((8, 4, 3, 3)) * 0.3).astype(np.float16)
    b0 = rng.standard_normal(8).astype(np.float16)
    g0 = (rng.standard_normal((8, 8, 64, 64)) + 0.5).astype(np.float16)     # a mean away from 0: sums grow

    def grads(lib, make, dtype, limit=None):
        previous = conv_fast.set_im2col_limit(limit) if limit else None
        try:
            x = make(x0.astype(dtype), requires_grad=True)
            w, b = make(w0.astype(dtype), requires_grad=True), make(b0.astype(dtype), requires_grad=True)
            y = lib.nn.functional.conv2d(x, w, b, padding=1) if lib is torch else F.conv2d(x, w, b, padding=1)
            y.backward(make(g0.astype(dtype)) if lib is torch else g0.astype(dtype))
            as_numpy = (lambda t: t.detach().numpy()) if lib is torch else (lambda t: t.numpy())
            return [np.asarray(as_numpy(t.grad), np.float64) for t in (w, b)]
        finally:
            if limit:
                conv_fast.set_im2col_limit(previous)

    exact = grads(torch, torch.tensor, np.float64)
    scales = [np.abs(e).max() for e in exact]
    theirs = [np.abs(t - e).max() / sc for t, e, sc in zip(grads(torch, torch.tensor, np.float16), exact, scales)]
    for limit in (None, 4096):
        ours = [np.abs(o - e).max() / sc for o, e, sc in zip(grads(msn, msn.tensor, np.float16, limit), exact, scales)]
        for name, mine, torchs in zip(("weight", "bias"), ours, theirs):
            assert mine <= 1.5 * torchs, f"limit {limit}, {name}: relative error {mine:.1e}, PyTorch's {torchs:.1e}"


def test_transposed_bands_of_one_input_row_when_the_limit_holds_one_row_but_not_two(monkeypatch):
    """A limit between one and two input rows' columns: the transposed direction must go one
    row at a time (a band of two would be over the limit), and still equal the whole image."""
    monkeypatch.setattr(parallel, "SPLIT", 1)
    x = msn.tensor(_randn_cr((1, 4, 10, 8), 0))
    w = msn.tensor(_randn_cr((4, 2, 3, 3), 1))
    row_bytes = 2 * 3 * 3 * 8 * 8                        # c_out * kh * kw * width * float64: 1152
    before = conv_fast.set_lever("fast_path", False)
    try:
        whole = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).numpy()
    finally:
        conv_fast.set_lever("fast_path", before)
    sizes = _record_column_bytes(monkeypatch)
    limit = row_bytes * 3 // 2
    previous = conv_fast.set_im2col_limit(limit)
    try:
        banded = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).numpy()
    finally:
        conv_fast.set_im2col_limit(previous)
    assert sizes and max(sizes) <= limit, f"columns of {max(sizes)} bytes, limit {limit}"
    np.testing.assert_allclose(banded, whole, rtol=1e-12, atol=1e-12)


def test_set_num_threads_stores_a_numpy_integer_as_an_int():
    """torch.get_num_threads() returns an int; after set_num_threads(np.int64(2)) ours must too
    (a NumPy integer would leak into what reports and JSON-writes the count)."""
    previous = msn.set_num_threads(np.int64(2))
    try:
        assert type(parallel.get_num_threads()) is int
        assert type(msn.set_num_threads(3)) is int
    finally:
        parallel.set_num_threads(previous)


def test_walking_every_threads_buffers_while_threads_start_their_first_conv():
    """``clear_buffer_cache``, ``cached_buffers`` and ``set_im2col_limit`` walk ``_caches``, a
    ``weakref.WeakSet`` whose iteration is a Python generator, while a thread's first conv adds
    its cache to that set (``_thread_cache``): ``RuntimeError: Set changed size during
    iteration`` in the thread that walks (seen: 884 errors in 5 s with
    ``sys.setswitchinterval(1e-6)``; the dict walk beside it was fixed, the set walk not)."""
    x = msn.tensor(np.ones((1, 1, 6, 6)))
    w = msn.tensor(np.ones((1, 1, 3, 3)))
    stop, errors, threads = threading.Event(), [], []

    def newcomer():                      # a user's thread: its first conv makes its cache
        F.conv2d(x, w, padding=1)
        stop.wait(30)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    limit = conv_fast.get_im2col_limit()
    try:
        def spawn():
            while not stop.is_set() and len(threads) < 200:
                t = threading.Thread(target=newcomer, daemon=True)
                t.start()
                threads.append(t)
                time.sleep(0.001)

        spawner = threading.Thread(target=spawn)
        spawner.start()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not errors:
            try:
                conv_fast.cached_buffers()
                conv_fast.clear_buffer_cache()
                conv_fast.set_im2col_limit(limit)
            except RuntimeError as error:
                errors.append(error)
    finally:
        stop.set()
        spawner.join(30)
        for t in threads:
            t.join(30)
        sys.setswitchinterval(interval)
        conv_fast.set_im2col_limit(limit)
    assert not errors, errors[0]


def test_set_lever_takes_a_numpy_bool():
    """docs/guarantees.md: flags are True or False, "a NumPy bool too"; ``set_lever`` (documented
    in docs/im2col.md) refused ``np.True_`` with a TypeError (a lever read from a saved NumPy
    table of settings, say). It must take it and store a plain bool."""
    previous = conv_fast.set_lever("threads", np.False_)
    try:
        assert conv_fast.lever("threads") is False
        assert conv_fast.set_lever("threads", np.True_) is False
        assert conv_fast.lever("threads") is True
    finally:
        conv_fast.set_lever("threads", previous)
