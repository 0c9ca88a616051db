"""Edges of the convolution and pooling ops that no test reached before (found by a mutation review:
each test here fails on a changed line of conv.py, pooling.py or shapes.py that the other tests let
pass): asymmetric 'same' padding and output_padding beyond the stride on the plain path, a -inf
window with dilation and padding, and checks at their exact boundaries."""
import contextlib

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import checks, functional as F, nn, shapes
from minisegnet.functional import conv_fast
from helpers import as_torch, assert_close, t64


@contextlib.contextmanager
def plain_path():
    previous = conv_fast.set_lever("fast_path", False)
    try:
        yield
    finally:
        conv_fast.set_lever("fast_path", previous)


def _randn(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")     # torch's note on its own copy
@pytest.mark.parametrize("fast", [False, True])
def test_same_padding_with_even_kernel_gradients_match_torch(torch, fast):
    """'same' with an even kernel pads asymmetrically; the plain backward folds with those pads."""
    x, w, b, g = _randn((2, 3, 6, 7), 0), _randn((4, 3, 2, 4), 1), _randn((4,), 2), _randn((2, 4, 6, 7), 3)
    X, W, B = t64(x), t64(w), t64(b)
    with (contextlib.nullcontext() if fast else plain_path()):
        y = F.conv2d(X, W, B, padding="same")
        y.backward(msn.tensor(g))
    tX, tW, tB = as_torch(torch, x), as_torch(torch, w), as_torch(torch, b)
    ty = torch.nn.functional.conv2d(tX, tW, tB, padding="same")
    ty.backward(torch.tensor(g))
    for what, a, t in zip(("y", "dx", "dw", "db"), (y, X.grad, W.grad, B.grad), (ty, tX.grad, tW.grad, tB.grad)):
        assert_close(a, t, what=what)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("padding", [0, 1])
def test_conv_transpose2d_output_padding_beyond_stride_gradients_match_torch(torch, fast, padding):
    """output_padding >= stride (allowed when dilation > stride): the conv back needs p - output_padding."""
    x, w, b = _randn((2, 2, 4, 5), 0), _randn((2, 3, 3, 2), 1), _randn((3,), 2)
    X, W, B = t64(x), t64(w), t64(b)
    with (contextlib.nullcontext() if fast else plain_path()):
        y = F.conv_transpose2d(X, W, B, stride=1, padding=padding, output_padding=(1, 1), dilation=2)
        g = _randn(y.shape, 3)
        y.backward(msn.tensor(g))
    tX, tW, tB = as_torch(torch, x), as_torch(torch, w), as_torch(torch, b)
    ty = torch.nn.functional.conv_transpose2d(tX, tW, tB, 1, padding, (1, 1), 1, 2)
    ty.backward(torch.tensor(g))
    for what, a, t in zip(("y", "dx", "dw", "db"), (y, X.grad, W.grad, B.grad), (ty, tX.grad, tW.grad, tB.grad)):
        assert_close(a, t, what=what)


def test_conv_refuses_a_bias_of_another_dtype():
    x, w = t64(_randn((1, 2, 4, 4), 0)), t64(_randn((2, 2, 3, 3), 1))
    b32 = msn.tensor(np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="^conv2d: input and bias must have the same dtype"):
        F.conv2d(x, w, b32)
    with pytest.raises(TypeError, match="^conv_transpose2d: input and bias must have the same dtype"):
        F.conv_transpose2d(x, w, b32)


def test_conv2d_refuses_a_padded_input_larger_than_memory(monkeypatch):
    """Output (2x2) and input (4x4) are small; the padded input (44x44 float64) is not."""
    monkeypatch.setattr(checks, "memory_bytes", lambda: 10_000)
    x, w = t64(_randn((1, 1, 4, 4), 0)), t64(_randn((1, 1, 1, 1), 1))
    with pytest.raises(checks.TooLargeError, match="^conv2d: padding=20"):
        F.conv2d(x, w, padding=20, stride=40)


def test_max_pool2d_window_of_minus_inf_with_dilation_and_padding_reports_its_first_real_pixel(torch):
    """Window 0 starts at row -1; with dilation 2 its first real row is 1 (a=1), not a=0 (padding)."""
    x = np.full((1, 1, 5, 5), -np.inf)
    X = t64(x)
    y, idx = F.max_pool2d(X, 3, stride=2, padding=1, dilation=2, return_indices=True)
    tX = as_torch(torch, x)
    ty, tidx = torch.nn.functional.max_pool2d(tX, 3, 2, 1, 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    g = _randn(y.shape, 0)
    y.backward(msn.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(X.grad, tX.grad, what="grad")


def _pooled():
    return F.max_pool2d(msn.tensor(_randn((1, 1, 4, 4), 0)), 2, return_indices=True)


def test_max_unpool2d_refuses_an_index_equal_to_the_plane_size():
    y, idx = _pooled()
    bad = idx.numpy().copy()
    bad[0, 0, 0, 0] = 16                           # 4x4 plane: 0 .. 15
    with pytest.raises(ValueError, match="indices must lie in"):
        F.max_unpool2d(y, msn.tensor(bad), 2)


def test_max_unpool2d_refuses_an_output_size_at_the_lower_bound(torch):
    """Default 4, stride 2: the size must lie strictly between 2 and 6; 2 is out (PyTorch too)."""
    x, idx = msn.tensor(np.ones((1, 1, 2, 2))), msn.tensor(np.zeros((1, 1, 2, 2), np.int64))
    with pytest.raises(ValueError, match="strictly between 2 and 6"):
        F.max_unpool2d(x, idx, 2, output_size=(2, 4))
    with pytest.raises(Exception):
        torch.nn.functional.max_unpool2d(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.int64), 2,
                                         output_size=(2, 4))


def test_max_unpool2d_refuses_indices_of_another_shape_with_the_same_size():
    y, idx = _pooled()
    with pytest.raises(ValueError, match="indices has shape"):
        F.max_unpool2d(y, msn.tensor(idx.numpy().reshape(1, 1, 1, 4)), 2)


@pytest.mark.parametrize("make", [lambda: nn.MaxPool2d(3, padding=(0, 2)), lambda: nn.AvgPool2d(3, padding=(0, 2)),
                                  lambda: nn.MaxPool2d((2, 3), padding=(1, 2))])
def test_pool_layers_refuse_a_width_padding_over_half_the_kernel_when_made(make):
    with pytest.raises(ValueError, match="must be at most half of kernel_size"):
        make()


@pytest.mark.parametrize("fn", [shapes.max_pool2d_output_size, shapes.avg_pool2d_output_size])
def test_pool_output_size_refuses_padding_over_half_an_odd_kernel(fn):
    with pytest.raises(ValueError, match="at most half"):
        fn((5, 5), 3, padding=2)


@pytest.mark.parametrize("fast", [False, True])
def test_conv_transpose2d_refuses_a_padded_output_larger_than_memory(monkeypatch, fast):
    """Input and output are 1x1; the col2im image the output is cut from is (1 + 2*20)^2 float64
    = 13 KB, over a 10 KB memory. docs/guarantees.md: an op that would allocate more than memory
    raises TooLargeError before allocating (conv2d does, for its padded input). At the real
    scale (padding=5*10**5, dilation=10**6) the allocation is 7.3 TiB and NumPy's raw
    MemoryError came out (fast path at stride 2, and the plain path)."""
    monkeypatch.setattr(checks, "memory_bytes", lambda: 10_000)
    x, w = t64(_randn((1, 1, 1, 1), 0)), t64(_randn((1, 1, 2, 2), 1))
    context = contextlib.nullcontext() if fast else plain_path()
    with context, pytest.raises(checks.TooLargeError, match="^conv_transpose2d: stride=2, padding=20, dilation=40"):
        F.conv_transpose2d(x, w, stride=2, padding=20, dilation=40)
