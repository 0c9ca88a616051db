"""batch_norm and BatchNorm2d: gradcheck, PyTorch parity (train and eval, running
statistics over several steps, momentum), state-dict keys, bad arguments."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.backend import asarray as on_backend
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64


@st.composite
def _bn_case(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (3,), (2, 3), (4, 1), (1, 1), (3, 2)]))
    if n * int(np.prod(spatial, dtype=int)) < 2:       # training needs 2+ values per channel
        n = 2
    return dict(shape=(n, c) + spatial, affine=draw(st.booleans()), bias=draw(st.booleans()),
                momentum=draw(st.sampled_from([0.1, 0.0, 1.0, 0.37])),
                eps=draw(st.sampled_from([1e-5, 1e-3, 0.5])), seed=draw(st.integers(0, 2**16)))


@given(case=_bn_case())
def test_batch_norm_matches_torch_over_train_and_eval_steps(torch, case):
    rng = np.random.default_rng(case["seed"])
    shape, c = case["shape"], case["shape"][1]
    w_np, b_np = rng.standard_normal(c), rng.standard_normal(c)
    rm_np, rv_np = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    rm, rv = t64(rm_np, requires_grad=False), t64(rv_np, requires_grad=False)     # updated in place
    trm, trv = torch.tensor(rm_np), torch.tensor(rv_np)
    # Three training steps (running stats move each time), then an eval step.
    for step, training in enumerate([True, True, True, False]):
        x_np = rng.standard_normal(shape) * (step + 1) + step
        x, tx = t64(x_np), as_torch(torch, x_np)
        w, tw = (t64(w_np), as_torch(torch, w_np)) if case["affine"] else (None, None)
        b, tb = (t64(b_np), as_torch(torch, b_np)) if case["bias"] else (None, None)
        out = F.batch_norm(x, rm, rv, w, b, training, case["momentum"], case["eps"])
        tout = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training, case["momentum"], case["eps"])
        assert_close(out, tout, atol=1e-9, what=f"output, step {step}")
        np.testing.assert_allclose(rm.numpy(), trm.numpy(), atol=1e-12, err_msg="running_mean")
        np.testing.assert_allclose(rv.numpy(), trv.numpy(), atol=1e-12, err_msg="running_var")
        g = rng.standard_normal(shape)
        out.backward(g); tout.backward(torch.tensor(g))
        assert_close(x.grad, tx.grad, atol=1e-9, what="grad input")
        if w is not None:
            assert_close(w.grad, tw.grad, atol=1e-9, what="grad weight")
        if b is not None:
            assert_close(b.grad, tb.grad, atol=1e-9, what="grad bias")


def test_batch_norm_running_var_uses_the_unbiased_variance():
    x_np = np.array([[1.0], [2.0], [4.0]])           # (N=3, C=1): mean 7/3, biased var 14/9
    rm, rv = t64(np.zeros(1), requires_grad=False), t64(np.ones(1), requires_grad=False)
    F.batch_norm(t64(x_np), rm, rv, training=True, momentum=0.5)
    np.testing.assert_allclose(rm.numpy(), [0.5 * 7 / 3])
    np.testing.assert_allclose(rv.numpy(), [0.5 + 0.5 * np.var(x_np, ddof=1)])
    out = F.batch_norm(t64(x_np), None, None, training=True).numpy()
    np.testing.assert_allclose(out[:, 0], (x_np[:, 0] - 7 / 3) / np.sqrt(14 / 9 + 1e-5))


def test_gradcheck_batch_norm_train_and_eval():
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((3, 2, 3, 2))
    w_np, b_np = rng.standard_normal(2), rng.standard_normal(2)

    def train(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)

    def evaluate(x, w, b):
        return F.batch_norm(x, np.array([0.3, -0.2]), np.array([1.5, 0.7]), w, b, training=False)

    for fn in (train, evaluate):
        assert gradcheck(fn, [t64(x_np), t64(w_np), t64(b_np)])
    # Larger input: the random-direction check of gradcheck.
    assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True),
                     [t64(rng.standard_normal((4, 3, 5, 5)))])


def test_batch_norm_updates_running_stats_of_tensors_in_place():
    rm, rv = msn.tensor(np.zeros(2, dtype=np.float32)), msn.tensor(np.ones(2, dtype=np.float32))
    before = rm.data
    F.batch_norm(msn.tensor(np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)),
                 rm, rv, training=True)
    assert rm.data is before and rm.dtype == np.float32 and np.any(rm.numpy() != 0)


def test_batch_norm_bad_arguments():
    x = t64(np.ones((2, 3, 2, 2)))
    c3, ones3 = on_backend(np.zeros(3)), on_backend(np.ones(3))   # updated in place: the input's backend
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        F.batch_norm(x, np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.batch_norm(x, c3, ones3, weight=t64(np.ones(2)))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.batch_norm(x, c3, ones3, bias=t64(np.ones((3, 1))))
    with pytest.raises(ValueError, match="running_mean is required"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="given together"):
        F.batch_norm(x, c3, None, training=True)
    with pytest.raises(ValueError, match="momentum"):
        F.batch_norm(x, c3, ones3, training=True, momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm(x, c3, ones3, eps=-1.0)
    with pytest.raises(ValueError, match=r"more than 1 value per channel"):
        F.batch_norm(t64(np.ones((1, 3, 1, 1))), c3, ones3, training=True)
    with pytest.raises(ValueError, match=r"\(N, C, \*\)"):
        F.batch_norm(t64(np.ones(3)), c3, ones3)
    with pytest.raises(TypeError, match="floating point"):
        F.batch_norm(msn.tensor(np.ones((2, 3), dtype=np.int64)), c3, ones3)


@given(momentum=st.sampled_from([0.1, None, 0.5]), affine=st.booleans(), track=st.booleans(),
       seed=st.integers(0, 2**16))
def test_batchnorm2d_module_matches_torch(torch, momentum, affine, track, seed):
    rng = np.random.default_rng(seed)
    ours = nn.BatchNorm2d(3, momentum=momentum, affine=affine, track_running_stats=track).to(np.float64)
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum, affine=affine, track_running_stats=track).double()
    if affine:   # non-trivial parameters, the same in both
        w_np, b_np = rng.standard_normal(3), rng.standard_normal(3)
        ours.load_state_dict({**ours.state_dict(), "weight": w_np, "bias": b_np})
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w_np)); theirs.bias.copy_(torch.tensor(b_np))
    for step, mode in enumerate(["train", "train", "eval", "train", "eval"]):
        ours.train(mode == "train"); theirs.train(mode == "train")
        x_np = rng.standard_normal((2, 3, 4, 3)) * 2 + step
        x, tx = t64(x_np), as_torch(torch, x_np)
        out, tout = ours(x), theirs(tx)
        assert_close(out, tout, atol=1e-9, what=f"output at step {step} ({mode})")
        g = rng.standard_normal(out.shape)
        out.backward(g); tout.backward(torch.tensor(g))
        assert_close(x.grad, tx.grad, atol=1e-9, what="grad input")
        mine, ref = ours.state_dict(), theirs.state_dict()
        assert list(mine) == list(ref)
        for key in ref:
            np.testing.assert_allclose(mine[key], ref[key].numpy(), atol=1e-12, err_msg=key)
    for name, p in ours.named_parameters():
        assert_close(p.grad, dict(theirs.named_parameters())[name].grad, atol=1e-9, what=f"grad {name}")


def test_batchnorm2d_attributes_buffers_and_state_dict():
    bn = nn.BatchNorm2d(4)
    assert (bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (4, 1e-5, 0.1, True, True)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    state = bn.state_dict()
    np.testing.assert_array_equal(state["weight"], 1)
    np.testing.assert_array_equal(state["bias"], 0)
    np.testing.assert_array_equal(state["running_mean"], 0)
    np.testing.assert_array_equal(state["running_var"], 1)
    assert state["num_batches_tracked"].dtype == np.int64 and state["num_batches_tracked"].shape == ()
    assert state["weight"].dtype == np.float32
    bn(msn.tensor(np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)))
    assert int(bn.state_dict()["num_batches_tracked"]) == 1
    bn.eval()
    bn(msn.tensor(np.zeros((1, 4, 2, 2), dtype=np.float32)))        # eval: a batch of one is fine
    assert int(bn.state_dict()["num_batches_tracked"]) == 1
    assert np.all(bn.running_var.numpy() != 1)                       # moved, so the reset shows
    bn.reset_running_stats()
    np.testing.assert_array_equal(bn.running_mean.numpy(), 0)
    np.testing.assert_array_equal(bn.running_var.numpy(), 1)
    assert int(bn.state_dict()["num_batches_tracked"]) == 0
    plain = nn.BatchNorm2d(2, affine=False, track_running_stats=False)
    assert plain.state_dict() == {} and plain.weight is None and plain.running_mean is None


def test_batchnorm2d_bad_arguments():
    with pytest.raises(ValueError, match="^BatchNorm2d: num_features must be >= 1, got 0"):
        nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"^BatchNorm2d: momentum must be >= 0 and <= 1, got -0.1"):
        nn.BatchNorm2d(3, momentum=-0.1)
    with pytest.raises(TypeError, match="^BatchNorm2d: eps must be a number, got 'small'"):
        nn.BatchNorm2d(3, eps="small")
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"^BatchNorm2d: input must be 4-D \(N, C, H, W\), got shape \(2, 3\)"):
        bn(t64(np.ones((2, 3))))
    with pytest.raises(ValueError, match="got input with 4 channels"):
        bn(t64(np.ones((2, 4, 2, 2))))


def test_eps_zero_is_refused_where_batch_statistics_divide_by_it(torch):
    x = msn.tensor(np.zeros((2, 2, 2, 2), np.float32))     # a constant channel: variance 0
    with pytest.raises(ValueError, match="batch_norm: eps must be > 0 when normalising by batch statistics"):
        nn.BatchNorm2d(2, eps=0)(x)
    with pytest.raises((RuntimeError, ValueError), match="eps"):     # PyTorch refuses it too
        torch.nn.BatchNorm2d(2, eps=0)(torch.zeros(2, 2, 2, 2))
    norm = nn.BatchNorm2d(2, eps=0).eval()                   # running statistics (variance 1): fine
    assert np.isfinite(norm(x).numpy()).all()
    with pytest.raises(ValueError, match="BatchNorm2d: eps must be a finite number, got inf"):
        nn.BatchNorm2d(2, eps=float("inf"))


@pytest.mark.parametrize("which", ["running_mean", "weight", "bias"])
def test_batch_norm_refuses_mixed_dtypes_as_torch_and_conv2d_do(torch, which):
    """A float64 input through a float32 module came out float64 without a word (torch refuses:
    'mixed dtype (CPU)'; our conv2d refuses too)."""
    args = dict(running_mean=on_backend(np.zeros(3, np.float32)), running_var=on_backend(np.ones(3, np.float32)),
                weight=msn.tensor(np.ones(3, np.float32)), bias=msn.tensor(np.zeros(3, np.float32)))
    args[which] = (msn.tensor(np.ones(3)) if which in ("weight", "bias") else on_backend(np.zeros(3)))     # float64
    x = msn.tensor(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match=rf"^batch_norm: {which} has dtype float64 but input has dtype float32; "
                                        r"all must share one dtype"):
        F.batch_norm(x, training=True, **args)
    with pytest.raises(RuntimeError):
        torch.nn.BatchNorm2d(3)(torch.zeros(2, 3, 4, 4, dtype=torch.float64))


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
@pytest.mark.parametrize("channels", [2, 4])
def test_batchnorm2d_names_a_channel_mismatch_in_either_direction(channels):
    # guards: the layer's own check refuses fewer channels too, not only more (the message names the layer)
    with pytest.raises(ValueError, match=rf"^BatchNorm2d\(3\) got input with {channels} channels"):
        nn.BatchNorm2d(3)(msn.tensor(np.zeros((1, channels, 4, 4), np.float32)))


@pytest.mark.parametrize("affine, bias", [(False, True), (True, False), (True, True), (False, False)])
def test_batch_norm_repr_says_whether_it_has_a_bias_as_pytorchs(torch, affine, bias):
    """PyTorch prints bias=(self.bias is not None); with affine=False there is none, whatever the
    flag (the old repr printed the flag: bias=True)."""
    ours, theirs = nn.BatchNorm2d(8, affine=affine, bias=bias), torch.nn.BatchNorm2d(8, affine=affine, bias=bias)
    assert repr(ours) == repr(theirs)


def test_float16_batch_norm_variance_does_not_overflow(torch):
    """Values of about +-400: their squares pass float16's 65504, so a variance computed in
    float16 is inf, the output all 0 and running_var inf; PyTorch computes in float32."""
    x = (np.random.default_rng(0).standard_normal((2, 2, 4, 4)) * 400).astype(np.float16)
    ours_bn, theirs_bn = nn.BatchNorm2d(2, dtype=np.float16), torch.nn.BatchNorm2d(2).half()
    with np.errstate(all="ignore"):          # the float16 overflow, so that the assertion reports it
        ours = ours_bn(msn.tensor(x)).numpy()
    theirs = theirs_bn(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), atol=1e-2)
    np.testing.assert_allclose(ours_bn.running_var.numpy().astype(np.float64),
                               theirs_bn.running_var.numpy().astype(np.float64), rtol=1e-2)


def test_float16_batch_norm_gradient_sums_count_past_2048(torch):
    """4096 values per channel, gradient 1 each: the bias gradient is 4096 (PyTorch's); added
    up in float16 along the batch axis the count stops at 2048."""
    x = np.random.default_rng(1).standard_normal((4096, 2, 1, 1)).astype(np.float16)
    ours_bn, theirs_bn = nn.BatchNorm2d(2, dtype=np.float16), torch.nn.BatchNorm2d(2).half()
    ours_bn(msn.tensor(x, requires_grad=True)).backward(np.ones(x.shape, np.float16))
    theirs_bn(torch.tensor(x, requires_grad=True)).backward(torch.ones(x.shape, dtype=torch.float16))
    np.testing.assert_array_equal(theirs_bn.bias.grad.numpy(), [4096, 4096])
    np.testing.assert_array_equal(ours_bn.bias.grad.numpy(), theirs_bn.bias.grad.numpy())


def test_float16_running_mean_update_rounds_once_as_pytorch(torch):
    """running <- 0.9 * running + 0.1 * batch mean. Done as ``running *= 0.9`` then
    ``running += 0.1 * mean``, each in float16, the first product is rounded at its own scale
    (90.1 to a step of 1/16) before the cancellation: 100.1 and a batch mean of -900 gave 0.125
    where the exact value is 0.1125 (PyTorch: 0.1125, rounded once)."""
    x = np.full((2, 1, 2, 2), -900.0, np.float16)
    mean_t, var_t = msn.tensor(np.array([100.1], np.float16)), msn.tensor(np.array([1.0], np.float16))
    F.batch_norm(msn.tensor(x), mean_t, var_t, training=True, momentum=0.1)      # Tensors: on either backend
    running_mean, running_var = mean_t.numpy(), var_t.numpy()
    t_mean, t_var = torch.tensor(np.array([100.1], np.float16)), torch.tensor(np.array([1.0], np.float16))
    torch.nn.functional.batch_norm(torch.tensor(x), t_mean, t_var, training=True, momentum=0.1)
    exact = 0.9 * float(np.float16(100.1)) + 0.1 * -900.0
    assert running_mean.dtype == np.float16
    assert running_mean[0] == np.float16(exact)
    np.testing.assert_array_equal(running_mean, t_mean.numpy())
    np.testing.assert_array_equal(running_var, t_var.numpy())


def test_float16_running_statistics_match_pytorch_over_many_channels(torch):
    """Running means on either side of zero, batch means of the other sign: every channel's
    update is PyTorch's (the float64 update rounded once), not up to many float16 steps off."""
    rng = np.random.default_rng(0)
    channels = 500
    x = (rng.uniform(-500, 500, (1, channels, 1, 1)) + rng.standard_normal((4, channels, 4, 4))).astype(np.float16)
    start_mean = rng.uniform(-500, 500, channels).astype(np.float16)
    start_var = rng.uniform(0.5, 3, channels).astype(np.float16)
    mean_t, var_t = msn.tensor(start_mean.copy()), msn.tensor(start_var.copy())
    F.batch_norm(msn.tensor(x), mean_t, var_t, training=True, momentum=0.1)
    ours_mean = mean_t.numpy()
    t_mean, t_var = torch.tensor(start_mean), torch.tensor(start_var)
    torch.nn.functional.batch_norm(torch.tensor(x), t_mean, t_var, training=True, momentum=0.1)
    x64 = x.astype(np.float64)
    exact = 0.9 * start_mean.astype(np.float64) + 0.1 * x64.mean(axis=(0, 2, 3))
    step = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64)
    assert (np.abs(ours_mean - exact) <= step).all()         # at most one float16 step (PyTorch: half)
    assert (np.abs(t_mean.numpy() - exact) <= step / 2 * 1.001).all()


@pytest.mark.parametrize("training", [True, False])
def test_float16_batch_norm_output_is_float16_rounded_once_as_torch(torch, training):
    x = (np.random.default_rng(2).standard_normal((4, 3, 5, 5)) * 3 + 1).astype(np.float16)
    ours_bn, theirs_bn = nn.BatchNorm2d(3, dtype=np.float16), torch.nn.BatchNorm2d(3).half()
    ours_bn.train(training)
    theirs_bn.train(training)
    xs, tx = msn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, theirs = ours_bn(xs), theirs_bn(tx)
    assert ours.dtype == np.float16
    np.testing.assert_allclose(ours.numpy().astype(np.float64), theirs.detach().numpy().astype(np.float64),
                               rtol=2e-3, atol=2e-3)
    g = np.cos(np.arange(x.size)).reshape(x.shape).astype(np.float16)
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    assert xs.grad.dtype == np.float16
    np.testing.assert_allclose(xs.grad.numpy().astype(np.float64), tx.grad.numpy().astype(np.float64),
                               rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("stats_on", ["numpy", "cupy"])
def test_training_refuses_running_statistics_of_the_other_backend(stats_on, cupy):
    """The update happens in place: a copy onto the input's device would take it, silently lost."""
    msn.set_backend("cupy" if stats_on == "numpy" else "numpy")      # the input lives on the other one
    x = msn.tensor(np.random.default_rng(0).standard_normal((4, 2, 3, 3)))
    stats = np if stats_on == "numpy" else cupy
    mean, var = stats.zeros(2), stats.ones(2)
    with pytest.raises(TypeError, match=r"running_mean is a \w+ array but input is on \w+; training updates it"):
        F.batch_norm(x, mean, var, training=True)
    assert float(mean.sum()) == 0 and float(var.sum()) == 2           # untouched
    out = F.batch_norm(x, mean, var, training=False)                  # evaluation only reads them: converted
    assert out.shape == x.shape


@pytest.mark.parametrize("stats_on", ["numpy", "cupy"])
def test_training_refuses_a_running_var_alone_of_the_other_backend(stats_on, cupy):
    """Each statistic is checked: a running_mean of the input's backend beside a running_var of the
    other one is refused too (the variance's update would be lost), naming running_var."""
    msn.set_backend("cupy" if stats_on == "numpy" else "numpy")      # the input lives on the other one
    x = msn.tensor(np.random.default_rng(0).standard_normal((4, 2, 3, 3)))
    own = cupy if stats_on == "numpy" else np
    other = np if stats_on == "numpy" else cupy
    mean, var = own.zeros(2), other.ones(2)
    with pytest.raises(TypeError, match=r"running_var is a \w+ array but input is on \w+; training updates it"):
        F.batch_norm(x, mean, var, training=True)
    assert float(mean.sum()) == 0 and float(var.sum()) == 2           # neither updated


def test_float16_batch_norm_backward_over_more_than_65504_values_per_channel_is_finite(torch):
    """A channel of 256 x 256 = 65536 values: ``m * dxhat`` with m = 65536 made m inf in float16,
    so every input gradient was NaN. PyTorch's is finite."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 256, 256)).astype(np.float16)
    g = rng.standard_normal(x.shape).astype(np.float16)
    ours = msn.tensor(x, requires_grad=True)
    with np.errstate(over="ignore", invalid="ignore"):
        F.batch_norm(ours, None, None, training=True).backward(g)
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.batch_norm(theirs, None, None, training=True).backward(torch.tensor(g))
    assert ours.grad.dtype == np.float16
    assert np.isfinite(ours.grad.numpy()).all()
    np.testing.assert_allclose(ours.grad.numpy().astype(np.float64), theirs.grad.numpy().astype(np.float64),
                               atol=1e-2)
