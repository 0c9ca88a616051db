"""Losses: cross_entropy, binary_cross_entropy_with_logits and dice_loss.
gradcheck, PyTorch parity on Hypothesis-drawn configs, a NumPy reference for
Dice, label and shape validation."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import functional as F, nn
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64
import inspect


@st.composite
def _ce_case(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    spatial = draw(st.sampled_from([(), (3,), (2, 3), (4, 1), (1, 5), (3, 3)]))
    return dict(n=n, c=c, spatial=spatial, weighted=draw(st.booleans()),
                ignore_index=draw(st.sampled_from([-100, 255, 0, None])),
                ignore_fraction=draw(st.sampled_from([0.0, 0.3, 1.0])),
                reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                scale=draw(st.sampled_from([1.0, 30.0])), seed=draw(st.integers(0, 2**16)),
                label_smoothing=draw(st.sampled_from([0.0, 0.0, 0.1, 0.35, 1.0])))


def _logits_and_labels(case):
    rng = np.random.default_rng(case["seed"])
    n, c, spatial = case["n"], case["c"], case["spatial"]
    x = rng.standard_normal((n, c) + spatial) * case["scale"]
    t = rng.integers(0, c, (n,) + spatial)
    ii = case["ignore_index"]
    if ii is not None:
        t[rng.random(t.shape) < case["ignore_fraction"]] = ii
    w = rng.uniform(0.2, 3.0, c) if case["weighted"] else None
    return x, t, w


@given(case=_ce_case())
def test_cross_entropy_matches_torch(torch, case):
    x_np, t_np, w_np = _logits_and_labels(case)
    ii = -100 if case["ignore_index"] is None else case["ignore_index"]
    x, tx = t64(x_np), as_torch(torch, x_np)
    eps = case["label_smoothing"]
    out = F.cross_entropy(x, t_np, weight=w_np, ignore_index=ii, reduction=case["reduction"], label_smoothing=eps)
    tout = torch.nn.functional.cross_entropy(
        tx, torch.tensor(t_np), weight=None if w_np is None else torch.tensor(w_np),
        ignore_index=ii, reduction=case["reduction"], label_smoothing=eps)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-10, equal_nan=True)
    g = np.random.default_rng(case["seed"] + 1).standard_normal(out.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad logits")


def test_cross_entropy_weighted_mean_rule_by_hand():
    # Two pixels, classes 0 and 1 with weights 1 and 3, one more pixel ignored.
    x_np = np.array([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    t = np.array([0, 1, 255])
    w = np.array([1.0, 3.0])
    nll = -np.log(np.exp(x_np[[0, 1], [0, 1]]) / np.exp(x_np[:2]).sum(1))
    expected = (1 * nll[0] + 3 * nll[1]) / (1 + 3)
    out = F.cross_entropy(t64(x_np), t, weight=w, ignore_index=255)
    np.testing.assert_allclose(out.item(), expected, rtol=1e-12)
    none = F.cross_entropy(t64(x_np), t, weight=w, ignore_index=255, reduction="none").numpy()
    np.testing.assert_allclose(none, [nll[0], 3 * nll[1], 0.0], rtol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits(torch):
    x_np = np.array([[1000.0, -1000.0, 0.0], [-800.0, 800.0, 799.0]])
    t = np.array([1, 2])
    out = F.cross_entropy(t64(x_np), t, reduction="none")
    tout = torch.nn.functional.cross_entropy(torch.tensor(x_np), torch.tensor(t), reduction="none")
    assert np.all(np.isfinite(out.numpy()))
    assert_close(out, tout)


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient(torch):
    x = t64(np.random.default_rng(0).standard_normal((2, 3, 2, 2)))
    out = F.cross_entropy(x, np.full((2, 2, 2), -100))
    assert np.isnan(out.item())
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_whose_counted_classes_weigh_0_is_nan_with_a_nan_gradient(torch, label_smoothing):
    """'mean' over pixels whose classes all weigh 0 is 0/0: PyTorch's loss and gradient are NaN.
    (The old code gave a zero gradient, and with label smoothing a finite, non-zero one.)"""
    x_np = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    t, w = np.ones((2, 4, 5), np.int64), np.array([0.5, 0.0, 2.0])
    x, tx = t64(x_np), torch.tensor(x_np, requires_grad=True)
    out = F.cross_entropy(x, t, weight=w, label_smoothing=label_smoothing)
    tout = torch.nn.functional.cross_entropy(tx, torch.tensor(t), weight=torch.tensor(w),
                                             label_smoothing=label_smoothing)
    out.backward()
    tout.backward()
    assert np.isnan(out.item()) and np.isnan(tout.item())
    assert np.isnan(tx.grad.numpy()).all() and np.isnan(x.grad.numpy()).all()
    # with ignored pixels beside them: those keep a zero gradient, as in PyTorch (they were NaN too)
    t[0, 0] = -100
    x, tx = t64(x_np), torch.tensor(x_np, requires_grad=True)
    F.cross_entropy(x, t, weight=w, label_smoothing=label_smoothing).backward()
    torch.nn.functional.cross_entropy(tx, torch.tensor(t), weight=torch.tensor(w),
                                      label_smoothing=label_smoothing).backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())          # NaN where torch's is, 0 elsewhere
    assert (x.grad.numpy()[0, :, 0] == 0).all() and np.isnan(x.grad.numpy()[1]).all()


def test_gradcheck_cross_entropy_every_reduction():
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((2, 3, 2, 3))
    t = rng.integers(0, 3, (2, 2, 3))
    t[0, 0, 0] = 255
    w = np.array([0.5, 1.0, 2.0])
    for reduction in ("mean", "sum", "none"):
        assert gradcheck(lambda x: F.cross_entropy(x, t, weight=w, ignore_index=255, reduction=reduction),
                         [t64(x_np)])
    assert gradcheck(lambda x: F.cross_entropy(x, t[:, 1, 1]), [t64(x_np[:, :, 1, 1])])


def test_label_smoothing_by_hand_gradcheck_and_zero_weight_class(torch):
    # one pixel, 3 classes, target 0, eps 0.3: the target distribution is (0.8, 0.1, 0.1)
    x_np = np.array([[2.0, -1.0, 0.5]])
    log_p = x_np - np.log(np.exp(x_np).sum())
    expected = -(0.8 * log_p[0, 0] + 0.1 * log_p[0, 1] + 0.1 * log_p[0, 2])
    np.testing.assert_allclose(F.cross_entropy(t64(x_np), np.array([0]), label_smoothing=0.3).item(), expected,
                               rtol=1e-12)
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((2, 3, 2, 3))
    t = rng.integers(0, 3, (2, 2, 3))
    t[0, 0, 0] = 255
    w = np.array([0.5, 0.0, 2.0])           # a class of weight 0 still gets its share of the smoothing
    for reduction in ("mean", "sum", "none"):
        assert gradcheck(lambda x: F.cross_entropy(x, t, weight=w, ignore_index=255, reduction=reduction,
                                                   label_smoothing=0.2), [t64(x_np)])
    t[0, 0, 1] = 1                           # a pixel whose target class weighs 0
    x, tx = t64(x_np), as_torch(torch, x_np)
    out = F.cross_entropy(x, t, weight=w, ignore_index=255, label_smoothing=0.2)
    tout = torch.nn.functional.cross_entropy(tx, torch.tensor(t), weight=torch.tensor(w), ignore_index=255,
                                             label_smoothing=0.2)
    assert_close(out, tout)
    out.backward(); tout.backward()
    assert_close(x.grad, tx.grad, what="grad logits")
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\], got"):
            F.cross_entropy(x, t, ignore_index=255, label_smoothing=bad)
    for bad in ("0.1", True):                       # not a number: a TypeError
        with pytest.raises(TypeError, match=r"label_smoothing must be a number in \[0, 1\], got"):
            F.cross_entropy(x, t, ignore_index=255, label_smoothing=bad)


def test_cross_entropy_float32_stays_float32():
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32), requires_grad=True)
    for eps in (0.0, 0.1):
        x.grad = None
        out = F.cross_entropy(x, np.zeros((2, 3, 3), dtype=np.int32), label_smoothing=eps)
        out.backward()
        assert out.dtype == np.float32 and x.grad.dtype == np.float32


def test_cross_entropy_errors_name_the_problem():
    x = t64(np.zeros((2, 3, 4, 4)))
    good = np.zeros((2, 4, 4), dtype=np.int64)
    bad = good.copy(); bad[1, 2, 3] = 3
    with pytest.raises(ValueError, match=r"target contains label 3, outside the class range \[0, 3\) or ignore_index=-100"):
        F.cross_entropy(x, bad)
    bad[1, 2, 3] = -1
    with pytest.raises(ValueError, match="target contains label -1"):
        F.cross_entropy(x, bad)
    with pytest.raises(ValueError, match=r"target contains label 255"):
        F.cross_entropy(x, good + 255, ignore_index=-100)
    F.cross_entropy(x, good + 255, ignore_index=255)          # fine: every pixel ignored
    with pytest.raises(ValueError, match=r"target has shape \(2, 4, 5\).*\(2, 4, 4\)"):
        F.cross_entropy(x, np.zeros((2, 4, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"target has shape \(2, 3, 4, 4\)"):
        F.cross_entropy(x, np.zeros((2, 3, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="target must hold integer class labels"):
        F.cross_entropy(x, good.astype(np.float64))
    with pytest.raises(TypeError, match="input must be floating point"):
        F.cross_entropy(msn.tensor(np.zeros((2, 3), dtype=np.int64)), np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match=r"input must have shape \(N, C\)"):
        F.cross_entropy(t64(np.zeros(3)), np.zeros((), dtype=np.int64))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, good, reduction="average")
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.cross_entropy(x, good, weight=np.ones(4))
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        F.cross_entropy(x, good, ignore_index=1.5)


def test_cross_entropy_loss_module(torch):
    rng = np.random.default_rng(3)
    x_np, t_np, w_np = rng.standard_normal((2, 3, 4, 4)), rng.integers(0, 3, (2, 4, 4)), rng.uniform(1, 2, 3)
    t_np[0, 0] = 255
    ours = nn.CrossEntropyLoss(weight=w_np, ignore_index=255)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w_np), ignore_index=255)
    x, tx = t64(x_np), as_torch(torch, x_np)
    out, tout = ours(x, t_np), theirs(tx, torch.tensor(t_np))
    assert_close(out, tout)
    out.backward(); tout.backward()
    assert_close(x.grad, tx.grad)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: label_smoothing must be a number in \[0, 1\]"):
        nn.CrossEntropyLoss(label_smoothing=2)
    smooth, tsmooth = nn.CrossEntropyLoss(label_smoothing=0.1), torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    ones = np.ones((2, 4, 4), dtype=np.int64)
    assert_close(smooth(t64(x_np), ones), tsmooth(as_torch(torch, x_np), torch.tensor(ones)))
    assert repr(smooth) == repr(tsmooth) == "CrossEntropyLoss()"          # torch prints no settings


def test_loss_modules_match_torch(torch):
    """BCEWithLogitsLoss, MSELoss and L1Loss: values, input gradients, reductions and
    state-dict keys as torch.nn's; the arguments after weight are keyword-only."""
    rng = np.random.default_rng(5)
    x_np, t_np = rng.standard_normal((2, 3, 4, 4)), rng.random((2, 3, 4, 4))
    w_np, pw_np = rng.uniform(0.5, 2, (4,)), rng.uniform(0.5, 3, (3, 1, 1))
    pairs = [(nn.BCEWithLogitsLoss(w_np, reduction="sum", pos_weight=pw_np),
              torch.nn.BCEWithLogitsLoss(torch.tensor(w_np), reduction="sum", pos_weight=torch.tensor(pw_np)),
              ["weight", "pos_weight"]),
             (nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), []),
             (nn.MSELoss(), torch.nn.MSELoss(), []),
             (nn.MSELoss(reduction="none"), torch.nn.MSELoss(reduction="none"), []),
             (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), [])]
    for ours, theirs, keys in pairs:
        x, tx = t64(x_np), as_torch(torch, x_np)
        out, tout = ours(x, t_np), theirs(tx, torch.tensor(t_np))
        assert_close(out, tout)
        out.sum().backward(); tout.sum().backward()
        assert_close(x.grad, tx.grad)
        assert list(ours.state_dict()) == list(theirs.state_dict()) == keys
        assert repr(ours).startswith(type(ours).__name__ + "(")
    for make in (nn.MSELoss, nn.L1Loss):
        with pytest.raises(TypeError):
            make("sum")                       # torch reads a positional argument as size_average
        with pytest.raises(ValueError, match=f"{make.__name__}: reduction must be one of"):
            make(reduction="avg")
    with pytest.raises(TypeError):
        nn.BCEWithLogitsLoss(None, "sum")
    with pytest.raises(TypeError):
        nn.CrossEntropyLoss(None, 255)        # torch: size_average=255
    # the functions too: what torch reads by position as size_average or reduce is keyword-only here
    logits, labels = t64(x_np), np.zeros((2, 4, 4), np.int64)
    for call in (lambda: F.cross_entropy(logits, labels, None, 255),
                 lambda: F.binary_cross_entropy_with_logits(logits, np.zeros(x_np.shape), None, "sum"),
                 lambda: F.mse_loss(logits, logits, "sum"), lambda: F.l1_loss(logits, logits, "sum")):
        with pytest.raises(TypeError, match="positional argument"):
            call()
    # a buffer set to None is not saved, one set later is, as in torch
    for ours, theirs in ((nn.CrossEntropyLoss(np.ones(3)), torch.nn.CrossEntropyLoss(torch.ones(3))),
                         (nn.BCEWithLogitsLoss(pos_weight=np.ones(3)),
                          torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(3)))):
        ours.weight = theirs.weight = None
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
        ours.weight, theirs.weight = msn.tensor(np.ones(3)), torch.ones(3)
        assert list(ours.state_dict()) == list(theirs.state_dict())


# ---- binary cross-entropy with logits ------------------------------------------------------
@given(shape=st.sampled_from([(5,), (3, 4), (2, 3, 2, 2)]), reduction=st.sampled_from(["mean", "sum", "none"]),
       use_weight=st.booleans(), use_pos_weight=st.booleans(), soft=st.booleans(),
       scale=st.sampled_from([1.0, 50.0]), seed=st.integers(0, 2**16))
def test_bce_with_logits_matches_torch(torch, shape, reduction, use_weight, use_pos_weight, soft, scale, seed):
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape) * scale
    t_np = rng.random(shape) if soft else (rng.random(shape) < 0.5).astype(np.float64)
    w_np = rng.uniform(0.2, 2, shape[-1:]) if use_weight else None
    c = shape[1] if len(shape) > 1 else shape[0]
    pw_np = rng.uniform(0.2, 5, (c,) + (1,) * (len(shape) - 2)) if use_pos_weight else None
    x, tx = t64(x_np), as_torch(torch, x_np)
    t, tt = t64(t_np), as_torch(torch, t_np)
    out = F.binary_cross_entropy_with_logits(x, t, weight=w_np, reduction=reduction, pos_weight=pw_np)
    tout = torch.nn.functional.binary_cross_entropy_with_logits(
        tx, tt, weight=None if w_np is None else torch.tensor(w_np), reduction=reduction,
        pos_weight=None if pw_np is None else torch.tensor(pw_np))
    assert np.all(np.isfinite(out.numpy()))
    assert_close(out, tout, atol=1e-9)
    g = rng.standard_normal(out.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, atol=1e-9, what="grad input")
    assert_close(t.grad, tt.grad, atol=1e-9, what="grad target")


def test_bce_with_logits_is_finite_where_exp_overflows(torch):
    """Logits past +-709 overflow exp: the stable form gives PyTorch's finite loss and gradient
    (the random logits above stay near +-150, where an unstable form passed too)."""
    x_np, t_np, pw = np.array([-1000., -800., 0., 800., 1000.]), np.array([1., .3, 1., 0., .7]), np.full(5, 2.0)
    x, tx = t64(x_np), as_torch(torch, x_np)
    out = F.binary_cross_entropy_with_logits(x, t_np, reduction="none", pos_weight=pw)
    tout = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(t_np), reduction="none",
                                                                pos_weight=torch.tensor(pw))
    assert np.all(np.isfinite(out.numpy()))
    assert_close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    assert_close(x.grad, tx.grad, what="grad input")


def test_gradcheck_bce_with_logits():
    rng = np.random.default_rng(0)
    x_np, t_np = rng.standard_normal((2, 3, 2)) * 3, rng.random((2, 3, 2))
    pw, w = rng.uniform(0.5, 3, (3, 1)), rng.uniform(0.5, 2, (2,))
    for reduction in ("mean", "sum", "none"):
        assert gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(
            x, t, weight=w, reduction=reduction, pos_weight=pw), [t64(x_np), t64(t_np)])


def test_bce_with_logits_errors():
    x = t64(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target has shape \(2, 1\), but it must have the input's shape \(2, 3\)"):
        F.binary_cross_entropy_with_logits(x, t64(np.zeros((2, 1))))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(x, t64(np.zeros((2, 3))), pos_weight=np.ones(2))
    with pytest.raises(ValueError, match=r"weight of shape \(2, 3, 1\) does not broadcast"):
        F.binary_cross_entropy_with_logits(x, t64(np.zeros((2, 3))), weight=np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.binary_cross_entropy_with_logits(x, t64(np.zeros((2, 3))), reduction="batchmean")


# ---- Dice ------------------------------------------------------------------------------------
def _dice_reference(logits, target, smooth, ignore_index):
    """The docstring's formula, written directly in NumPy with explicit loops over classes."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    valid = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    scores = []
    for c in range(logits.shape[1]):
        p_c = p[:, c][valid]
        t_c = (target[valid] == c).astype(np.float64)
        scores.append((2 * np.sum(p_c * t_c) + smooth) / (np.sum(p_c) + np.sum(t_c) + smooth))
    return 1 - np.mean(scores)


@given(n=st.integers(1, 2), c=st.integers(1, 4), spatial=st.sampled_from([(), (3,), (2, 3), (3, 3)]),
       smooth=st.sampled_from([1.0, 0.5, 1e-3]), ignore_index=st.sampled_from([None, 255, 1]),
       seed=st.integers(0, 2**16))
def test_dice_loss_matches_numpy_reference(n, c, spatial, smooth, ignore_index, seed):
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal((n, c) + spatial) * 2
    t_np = rng.integers(0, c, (n,) + spatial)
    if ignore_index is not None:
        t_np[rng.random(t_np.shape) < 0.3] = ignore_index
    out = F.dice_loss(t64(x_np), t_np, smooth=smooth, ignore_index=ignore_index)
    assert out.shape == ()
    np.testing.assert_allclose(out.item(), _dice_reference(x_np, t_np, smooth, ignore_index), rtol=1e-12)


def test_dice_loss_extremes_and_gradcheck():
    # A perfect, confident prediction gives a loss near 0. The opposite one has no
    # overlap: each class scores smooth / (2 + 2 + smooth), 1/5 with smooth = 1.
    t = np.array([[[0, 1], [1, 0]]])
    onehot = np.stack([t == 0, t == 1], axis=1).astype(np.float64)
    assert F.dice_loss(t64(onehot * 40 - 20), t).item() < 1e-6
    np.testing.assert_allclose(F.dice_loss(t64(20 - onehot * 40), t).item(), 1 - 1 / 5, rtol=1e-12)
    assert F.dice_loss(t64(20 - onehot * 40), t, smooth=0.0).item() > 1 - 1e-12
    rng = np.random.default_rng(0)
    x_np, t_np = rng.standard_normal((2, 3, 2, 3)), rng.integers(0, 3, (2, 2, 3))
    t_np[1, 1, 1] = 255
    assert gradcheck(lambda x: F.dice_loss(x, t_np, smooth=0.5, ignore_index=255), [t64(x_np)])
    assert gradcheck(lambda x: F.dice_loss(x, t_np[:, 0, 0]), [t64(x_np[:, :, 0, 0])])


def test_dice_loss_errors():
    x = t64(np.zeros((1, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"target contains label 2, outside the class range \[0, 2\)$"):
        F.dice_loss(x, np.full((1, 2, 2), 2))
    with pytest.raises(ValueError, match=r"target has shape \(1, 2\)"):
        F.dice_loss(x, np.zeros((1, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="smooth must be >= 0"):
        F.dice_loss(x, np.zeros((1, 2, 2), dtype=np.int64), smooth=-1.0)
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        F.dice_loss(t64(np.zeros(2)), np.zeros((), dtype=np.int64))


# ---- regression: mse_loss and l1_loss -------------------------------------------------------
@given(kind=st.sampled_from(["mse", "l1"]), shape=st.sampled_from([(5,), (3, 4), (2, 1, 3, 2)]),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(),
       ties=st.booleans(), seed=st.integers(0, 2**16))
def test_regression_losses_match_torch(torch, kind, shape, reduction, weighted, ties, seed):
    rng = np.random.default_rng(seed)
    x_np, t_np = rng.standard_normal(shape), rng.standard_normal(shape)
    if ties:                                     # x == t somewhere: L1's kink, gradient 0 there
        x_np[rng.random(shape) < 0.3] = 0.0
        t_np[x_np == 0.0] = 0.0
    w_np = rng.uniform(0, 2, shape) * (rng.random(shape) < 0.7) if weighted else None
    x, tx, t, tt = t64(x_np), as_torch(torch, x_np), t64(t_np), as_torch(torch, t_np)
    ours = (F.mse_loss if kind == "mse" else F.l1_loss)(x, t, reduction=reduction, weight=w_np)
    theirs = getattr(torch.nn.functional, kind + "_loss")(
        tx, tt, reduction=reduction, weight=None if w_np is None else torch.tensor(w_np))
    assert_close(ours, theirs)
    g = rng.standard_normal(ours.shape)
    ours.backward(g); theirs.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad, what="grad input")
    assert_close(t.grad, tt.grad, what="grad target")


@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss])
def test_gradcheck_regression_losses(fn):
    rng = np.random.default_rng(0)
    x_np, t_np, w = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2)), rng.uniform(0, 2, (2, 3, 2))
    for reduction in ("mean", "sum", "none"):
        for weight in (None, w):
            assert gradcheck(lambda x, t: fn(x, t, reduction=reduction, weight=weight), [t64(x_np), t64(t_np)])


def test_regression_losses_by_hand_and_errors():
    x, t = t64([[1.0, 2.0], [3.0, 4.0]]), t64([[0.0, 0.0], [0.0, 0.0]], requires_grad=False)
    w = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert F.mse_loss(x, t).item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert F.mse_loss(x, t, weight=w).item() == pytest.approx((1 + 2 * 16) / 3)      # sum(w e) / sum(w)
    assert F.l1_loss(x, t, weight=w, reduction="sum").item() == pytest.approx(1 + 8)
    assert F.l1_loss(x, np.zeros((2, 2), np.int64)).item() == pytest.approx(2.5)   # integer target: cast
    with pytest.raises(ValueError, match=r"target has shape \(2,\), but it must have the input's shape \(2, 2\)"):
        F.mse_loss(x, t64([0.0, 0.0]))
    with pytest.raises(ValueError, match=r"weight has shape \(2,\), but it must have the input's shape"):
        F.l1_loss(x, t, weight=np.ones(2))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.l1_loss(x, t, reduction="avg")
    with pytest.raises(TypeError, match="floating-point"):
        F.mse_loss(msn.tensor(np.zeros((2, 2), np.int64)), t)
    assert F.mse_loss(x, msn.tensor(np.zeros((2, 2), np.float32))).dtype == np.float64    # promoted


def test_regression_losses_need_a_tensor_input_and_name_a_bad_weight():
    x = np.zeros(3)
    for fn in (F.mse_loss, F.l1_loss):
        with pytest.raises(TypeError, match=f"{fn.__name__}: input must be a Tensor"):
            fn(x, x)                                           # an array would silently get no gradient
        with pytest.raises(TypeError, match=f"{fn.__name__}: weight must be a Tensor or an array"):
            fn(t64(x), x, weight="abc")
        assert fn(t64(x), x).item() == 0.0                     # the target may be an array


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "binary_cross_entropy_with_logits"])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float64), (np.float64, np.float32)])
def test_mixed_float_dtypes_promote_as_torch(torch, name, dtypes):
    """A float32 model's output against a float64 target (NumPy's default) is promoted to float64, as
    PyTorch's losses do; each gradient comes back in its own tensor's dtype (it was a TypeError)."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((2, 3, 4)).astype(dtypes[0]), rng.random((2, 3, 4)).astype(dtypes[1])
    xo, to = msn.tensor(x, requires_grad=True), msn.tensor(t, requires_grad=True)
    xt, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    ours = getattr(F, name)(xo, to)
    if name == "binary_cross_entropy_with_logits":
        # torch 2.13 takes the target's dtype here and computes part in the input's; promoted,
        # as torch's mse_loss and l1_loss do, ours equals its float64 loss
        xt, tt = (torch.tensor(v.astype(np.float64), requires_grad=True) for v in (x, t))
    theirs = getattr(torch.nn.functional, name)(xt, tt)
    assert ours.dtype == np.float64 and str(theirs.dtype) == "torch.float64"
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
    ours.backward()
    theirs.backward()
    for mine, other, dtype in ((xo, xt, dtypes[0]), (to, tt, dtypes[1])):
        assert mine.grad.dtype == dtype
        np.testing.assert_allclose(mine.grad.numpy(), other.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_bce_module_keeps_tensor_weights_as_torch(torch):
    """BCEWithLogitsLoss(pos_weight=Tensor) dropped the Tensor (the loss came out unweighted)."""
    logits, target = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    kwargs = dict(weight=np.array([1.0, 2.0, 0.5]), pos_weight=np.array([3.0]))
    ours = nn.BCEWithLogitsLoss(**{k: msn.tensor(v) for k, v in kwargs.items()})
    theirs = torch.nn.BCEWithLogitsLoss(**{k: torch.tensor(v) for k, v in kwargs.items()})
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "pos_weight"]
    np.testing.assert_allclose(ours(msn.tensor(logits), msn.tensor(target)).item(),
                               theirs(torch.tensor(logits), torch.tensor(target)).item(), rtol=1e-12)


@pytest.mark.parametrize("dtypes", [(np.float32, np.float64), (np.float64, np.float32)])
def test_bce_weights_are_taken_in_the_promoted_dtype(torch, dtypes):
    """Weights of 0.1 are not exact in float32: built before the promotion, a float64 loss came out
    of float32 weights (a mutation the dtype test let through)."""
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((2, 3)).astype(dtypes[0]), rng.random((2, 3)).astype(dtypes[1])
    w, pw = np.full(3, 0.1), np.array([0.3, 0.7, 1.1])
    ours = F.binary_cross_entropy_with_logits(msn.tensor(x), msn.tensor(t), w, pos_weight=pw)
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x.astype(np.float64)), torch.tensor(t.astype(np.float64)), torch.tensor(w),
        pos_weight=torch.tensor(pw))
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-12)
    loss = nn.BCEWithLogitsLoss(weight=np.array([1.0, 2.0]), pos_weight=np.array([3.0]))
    assert isinstance(loss.weight, msn.Tensor) and list(loss.state_dict()) == ["weight", "pos_weight"]


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_cross_entropy_loss_default_ignore_index_is_torchs(torch):
    # guards: CrossEntropyLoss() ignores -100 by default, as torch's, and counts label 255 as a class
    assert nn.CrossEntropyLoss().ignore_index == torch.nn.CrossEntropyLoss().ignore_index == -100
    assert inspect.signature(nn.CrossEntropyLoss).parameters["ignore_index"].default == -100
    logits = np.random.default_rng(0).standard_normal((2, 256, 3, 3))
    target = np.random.default_rng(1).integers(0, 256, (2, 3, 3))
    target[0, 0, :] = 255
    target[1, 2, 1] = -100
    ours = nn.CrossEntropyLoss()(msn.tensor(logits), msn.tensor(target)).item()
    theirs = torch.nn.CrossEntropyLoss()(torch.tensor(logits), torch.tensor(target)).item()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("settings", [{"reduction": "none"}, {"reduction": "mean"}, {"reduction": "sum"},
                                      {"label_smoothing": 0.2}, {"label_smoothing": 0.2, "reduction": "none"},
                                      {"weight": [1.0, 2.0, 0.5]}])
def test_a_non_finite_logit_at_an_ignored_pixel_leaves_the_loss_alone(torch, bad, settings):
    """PyTorch leaves ignored pixels out; the old code multiplied their loss by 0, and NaN * 0
    (or the inf of an infinite logit's logsumexp, times 0) made the whole loss NaN."""
    x = np.array([[1, 2, 3], [bad, 0, 0], [0.5, -1, 2]], np.float32)
    t = np.array([0, -100, 2])
    kwargs = dict(settings)
    weight = kwargs.pop("weight", None)
    with np.errstate(invalid="ignore"):
        ours = F.cross_entropy(msn.tensor(x), msn.tensor(t), weight=None if weight is None else
                               msn.tensor(np.array(weight, np.float32)), **kwargs).numpy()
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t), weight=None if weight is None else
                                               torch.tensor(weight), **kwargs).numpy()
    assert np.isfinite(theirs).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_float16_regression_losses_add_up_in_float32_as_pytorch(torch, name, reduction):
    """PyTorch adds a float16 loss up in float32 and rounds once; the old code summed in float16,
    overflowing to inf for a mean of 100 over 1000 values (MSE of 10s)."""
    x = np.linspace(0, 12, 1000).astype(np.float16)
    t = np.zeros(1000, np.float16)
    ours = getattr(F, name)(msn.tensor(x), msn.tensor(t), reduction=reduction).numpy()
    theirs = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(t), reduction=reduction).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours, theirs)


def test_l1_loss_slope_is_0_where_the_difference_is_nan(torch):
    """PyTorch's L1 gradient is 0 where x - t is NaN (a NaN input, or inf - inf); NumPy's sign
    gives NaN there."""
    x = np.array([np.nan, np.inf, 1, -2, 0, -np.inf], np.float32)
    t = np.array([0, np.inf, 0, 0, 0, 0], np.float32)
    ours = msn.tensor(x, requires_grad=True)
    with np.errstate(invalid="ignore"):
        F.l1_loss(ours, msn.tensor(t), reduction="sum").backward()
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.l1_loss(theirs, torch.tensor(t), reduction="sum").backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


# ---- mutation review of stop 40's changes
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_a_float16_mean_whose_sum_passes_65504_is_finite_as_pytorchs(torch, name):
    """The sum of 1000 squares of 0..20 is past float16's 65504 (inf), its mean (133) is not."""
    x, t = np.linspace(0, 20, 1000).astype(np.float16), np.zeros(1000, np.float16)
    ours = getattr(F, name)(msn.tensor(x), msn.tensor(t)).numpy()
    theirs = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(t)).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours, theirs)


def test_float16_weighted_mean_counts_its_weights_in_float32():
    """70000 weights of 1 add up to 70000 in float32 (inf in float16, which made the mean 0)."""
    x, w = np.full(70000, 0.5, np.float16), np.ones(70000, np.float16)
    loss = F.l1_loss(msn.tensor(x), msn.tensor(np.zeros_like(x)), weight=msn.tensor(w))
    assert loss.dtype == np.float16 and loss.item() == 0.5


def test_float16_bce_with_logits_mean_adds_up_in_float32_as_pytorch(torch):
    """100000 losses of 2.127: their float16 sum is inf and the count 100000 is inf in float16,
    so the mean was inf / inf = NaN; PyTorch adds up in float32: 2.127."""
    x, t = np.full(100000, 2.0, np.float16), np.zeros(100000, np.float16)
    with np.errstate(all="ignore"):
        ours = F.binary_cross_entropy_with_logits(msn.tensor(x), msn.tensor(t)).numpy()
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t)).numpy()
    assert ours.dtype == np.float16
    np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=1e-3)


def test_float16_cross_entropy_is_computed_in_float32_and_rounded_once(torch):
    """float16 cross_entropy computed in float16 had 1807 of 5000 pixel losses 1-2 ulp off and
    a mean of 1.4033 for PyTorch's 1.4014. Now computed in float32 and rounded once: each pixel's
    loss is the exact loss rounded to float16 (PyTorch's float16 log-softmax rounds a step
    before that, and is the exact loss rounded in 70% of the pixels only), and the mean is
    PyTorch's."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 3)).astype(np.float16)
    t = rng.integers(0, 3, 5000)
    ours = F.cross_entropy(msn.tensor(x), t, reduction="none").numpy()
    exact = torch.nn.functional.cross_entropy(torch.tensor(x).double(), torch.tensor(t), reduction="none").numpy()
    assert (ours == exact.astype(np.float16)).mean() > 0.99
    ours = F.cross_entropy(msn.tensor(x), t).numpy()
    theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t)).numpy()
    np.testing.assert_allclose(ours.astype(np.float64), theirs.astype(np.float64), rtol=5e-4)


def test_cross_entropy_weighted_mean_over_weights_summing_to_0_is_total_over_0(torch):
    """Counted pixels whose class weights (one negative) add up to 0: PyTorch divides, giving
    +-inf (NaN only for 0/0); the docstring's NaN is for every pixel ignored or every weight 0."""
    x = np.array([[0.3, -1.2, 0.5], [1.0, 0.1, -0.4]])
    t, w = np.array([0, 1]), np.array([1.0, -1.0, 2.0])
    ours = msn.tensor(x, requires_grad=True)
    with np.errstate(all="ignore"):
        out = F.cross_entropy(ours, t, weight=w)
        out.backward()
    theirs = torch.tensor(x, requires_grad=True)
    tout = torch.nn.functional.cross_entropy(theirs, torch.tensor(t), weight=torch.tensor(w))
    tout.backward()
    assert np.isinf(tout.item())
    assert out.item() == tout.item()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_dice_loss_leaves_a_nan_logit_at_an_ignored_pixel_out():
    """The docstring: ignored pixels are left out of all three sums. A NaN (or +inf, whose
    softmax is NaN) logit there made the whole loss NaN through probs * 0 = NaN."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 2, 2))
    t = np.array([[[255, 1], [2, 0]]])
    clean = F.dice_loss(msn.tensor(x), t, ignore_index=255).item()
    for bad in (np.nan, np.inf):
        x_bad = x.copy()
        x_bad[0, :, 0, 0] = bad
        ours = msn.tensor(x_bad, requires_grad=True)
        with np.errstate(all="ignore"):
            loss = F.dice_loss(ours, t, ignore_index=255)
            loss.backward()
        assert loss.item() == clean
        assert np.isfinite(ours.grad.numpy()[..., 1:, :]).all() and np.isfinite(ours.grad.numpy()[..., 0, 1]).all()


def test_bce_with_logits_takes_an_integer_pos_weight_as_torch(torch):
    """PyTorch accepts an integer pos_weight (and weight); guarantees.md lists no exception."""
    x = np.array([[0.3, -1.2, 0.5], [1.0, 0.1, -0.4]])
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    pw = np.array([1, 2, 3])
    ours = F.binary_cross_entropy_with_logits(msn.tensor(x), t, pos_weight=pw).item()
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t),
                                                                  pos_weight=torch.tensor(pw)).item()
    assert ours == theirs


@pytest.mark.parametrize("call", [
    lambda x, w: F.mse_loss(x, np.zeros(3), weight=w), lambda x, w: F.l1_loss(x, np.zeros(3), weight=w),
    lambda x, w: F.cross_entropy(x.reshape(1, 3), np.array([1]), weight=w),
    lambda x, w: F.binary_cross_entropy_with_logits(x, np.zeros(3), weight=w),
    lambda x, w: F.binary_cross_entropy_with_logits(x, np.zeros(3), pos_weight=w)])
def test_a_weight_that_requires_grad_is_refused_not_silently_left_without_one(call):
    """The losses take their weights as constants: a weight that requires grad got no gradient,
    silently (PyTorch's mse_loss and l1_loss would give it one). Refused, naming the argument and
    the way to a differentiated weight."""
    x = msn.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    w = msn.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(ValueError, match=r"weight requires grad, but it is a constant here.*detach\(\)"):
        call(x, w)
    call(x, w.detach()).sum().backward()                  # detached: taken as before


def _f16_dice_grad(logits, labels):
    x = msn.tensor(logits, requires_grad=True)
    F.dice_loss(x, msn.tensor(labels)).backward()
    return x.grad.numpy()


def test_float16_dice_gradient_keeps_the_denominators_path():
    """Two classes, every pixel class 0, logits 0 (p = 1/2): class 0's denominator is
    512 + 1024 + 1 = 1537 over 1024 pixels. d dice / d den = -num / den**2, and den**2 is inf in
    float16 (Div's backward squared the divisor), so that path was dropped and the gradient came
    out 50% too large (-1.63e-4 where the float64 one is -1.09e-4)."""
    logits = np.zeros((1, 2, 32, 32), np.float16)
    labels = np.zeros((1, 32, 32), np.int64)
    exact = _f16_dice_grad(logits.astype(np.float64), labels)
    ours = _f16_dice_grad(logits, labels)
    assert ours.dtype == np.float16
    np.testing.assert_allclose(ours.astype(np.float64), exact, rtol=2e-3, atol=2.0 ** -24)


@pytest.mark.parametrize("which", ["weight", "pos_weight"])
def test_float16_bce_with_logits_takes_float32_weights_unrounded(torch, which):
    """float16 is computed in float32 and rounded once: a float32 weight that float16 cannot
    hold must enter the product as it is. Rounded to float16 first, the result rounds twice and
    lands up to a whole float16 step from the exact loss (the bound below is half a step)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 16)) * 2).astype(np.float16)
    t = rng.random((64, 16)).astype(np.float16)
    w = rng.uniform(0.5, 2.0, 16).astype(np.float32)             # most are not float16 numbers
    assert (w.astype(np.float16).astype(np.float32) != w).mean() > 0.9
    kwargs = {which: msn.tensor(w)}
    ours = F.binary_cross_entropy_with_logits(msn.tensor(x), msn.tensor(t), reduction="none", **kwargs)
    assert ours.dtype == np.float16
    exact = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x.astype(np.float64)), torch.tensor(t.astype(np.float64)), reduction="none",
        **{which: torch.tensor(w.astype(np.float64))}).numpy()
    error = np.abs(ours.numpy().astype(np.float64) - exact)
    # correctly rounded to float16 (normal range): at most half a step, 2**-11 relative; float32's
    # own rounding adds a few parts in 10**7
    assert (error <= np.abs(exact) * 2.0 ** -11 * (1 + 1e-3) + 1e-7).all(), error.max()


def test_bce_with_logits_refuses_a_bool_pos_weight(torch):
    """pos_weight must hold numbers: integers are cast (as PyTorch promotes them), but PyTorch
    refuses a bool pos_weight (its ``pos_weight - 1`` is not defined for bool), and so do we."""
    x, t = np.array([0.5, -1.0]), np.array([1.0, 0.0])
    with pytest.raises(RuntimeError):
        torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t),
                                                             pos_weight=torch.tensor([True, False]))
    with pytest.raises(TypeError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(msn.tensor(x), msn.tensor(t), pos_weight=np.array([True, False]))


def test_keep_where_gradient_and_what_it_keeps_out():
    """dice_loss's selection of the pixels it counts, on its own: float64 gradcheck, and a NaN
    where the mask is False reaches neither the value nor the gradient (a product by the mask would
    pass it on: NaN * 0 is NaN)."""
    from minisegnet.functional.loss import KeepWhere

    rng = np.random.default_rng(0)
    mask = rng.random((3, 4)) < 0.5
    on_backend = msn.backend.asarray(mask)                 # the input's array module, as dice_loss makes it
    assert gradcheck(lambda x: KeepWhere(on_backend)(x) * KeepWhere(on_backend)(x),
                     [t64(rng.standard_normal((3, 4)))])
    x_np = rng.standard_normal((3, 4))
    x_np[~mask] = np.nan
    x = t64(x_np)
    y = KeepWhere(on_backend)(x)
    y.backward(np.ones((3, 4)))
    np.testing.assert_array_equal(y.numpy(), np.where(mask, x_np, 0))
    np.testing.assert_array_equal(x.grad.numpy(), mask.astype(np.float64))


def _torch_dice(torch, logits, target, smooth, ignore_index):
    p = torch.softmax(logits, 1)
    t = torch.tensor(target)
    valid = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    scores = []
    for c in range(logits.shape[1]):
        p_c = p[:, c][valid]
        t_c = (t[valid] == c).to(logits.dtype)
        scores.append((2 * (p_c * t_c).sum() + smooth) / (p_c.sum() + t_c.sum() + smooth))
    return 1 - torch.stack(scores).mean()


@given(n=st.integers(1, 2), c=st.integers(1, 4), spatial=st.sampled_from([(), (3,), (2, 3), (3, 3)]),
       smooth=st.sampled_from([1.0, 0.5, 1e-3]), ignore_index=st.sampled_from([None, 255, 1]),
       seed=st.integers(0, 2**16))
def test_dice_loss_value_and_gradient_match_torch_written_formula(torch, n, c, spatial, smooth, ignore_index, seed):
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal((n, c) + spatial) * 2
    t_np = rng.integers(0, c, (n,) + spatial)
    if ignore_index is not None:
        t_np[rng.random(t_np.shape) < 0.3] = ignore_index
    x, tx = t64(x_np), as_torch(torch, x_np)
    out = F.dice_loss(x, t_np, smooth=smooth, ignore_index=ignore_index)
    tout = _torch_dice(torch, tx, t_np, smooth, ignore_index)
    assert out.shape == tuple(tout.shape) == ()
    assert_close(out, tout, atol=1e-12, rtol=1e-12)
    out.backward()
    tout.backward()
    assert_close(x.grad, tx.grad, atol=1e-12, rtol=1e-10, what="grad")


@pytest.mark.parametrize("kwargs, error", [
    (dict(pos_weight=5.0), TypeError),                       # F refuses a number; so does torch's layer
    (dict(pos_weight=np.array(["1", "2"])), TypeError),      # F refuses text at the first call
    (dict(weight="a"), TypeError),                           # named: 'tensor: cannot make a tensor ...' before
])
def test_bce_with_logits_loss_checks_its_constants_when_made(kwargs, error):
    """Layers check their settings when they are made, with their functional form's checks, and
    the message names the layer and the argument (docs/guarantees.md)."""
    name = next(iter(kwargs))
    with pytest.raises(error, match=rf"BCEWithLogitsLoss: {name} "):
        nn.BCEWithLogitsLoss(**kwargs)


@pytest.mark.parametrize("bad", ["0.1", None, [0.1]])
def test_label_smoothing_of_the_wrong_kind_is_a_type_error(torch, bad):
    """A string where a number belongs is a TypeError (docs/guarantees.md), as PyTorch's
    ('argument label_smoothing must be float, not str'); a number out of [0, 1] stays a ValueError."""
    x, t = msn.tensor(np.zeros((2, 3))), np.zeros(2, np.int64)
    with pytest.raises(TypeError):
        torch.nn.functional.cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), label_smoothing=bad)
    with pytest.raises(TypeError, match="cross_entropy: label_smoothing"):
        F.cross_entropy(x, t, label_smoothing=bad)
    with pytest.raises(TypeError, match="CrossEntropyLoss: label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=bad)
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\]"):
        F.cross_entropy(x, t, label_smoothing=1.5)


@pytest.mark.parametrize("pixels", [(200, 200), (300, 300)])
def test_float16_dice_loss_over_more_than_32752_pixels_of_a_class_is_finite(pixels):
    """One class on 40000 pixels, predicted with probability 0.98: 2 * intersection (78560) and
    sum p + sum t (79280) are inf in float16, and the dice inf / inf = NaN made the loss NaN. The
    docs promise every loss adds up in float32 and rounds once: the loss is the float32 loss
    rounded (about 0.504), its gradient finite."""
    h, w = pixels
    logits = np.zeros((1, 2, h, w), np.float16)
    logits[:, 0] = 4
    labels = msn.tensor(np.zeros((1, h, w), np.int64))
    x16 = msn.tensor(logits, requires_grad=True)
    with np.errstate(all="ignore"):
        loss16 = F.dice_loss(x16, labels)
        loss16.backward()
    x32 = msn.tensor(logits.astype(np.float32), requires_grad=True)
    loss32 = F.dice_loss(x32, labels)
    loss32.backward()
    assert loss16.dtype == np.float16
    assert np.isfinite(loss16.item())
    np.testing.assert_allclose(loss16.item(), loss32.item(), rtol=1e-3)
    assert np.isfinite(x16.grad.numpy()).all()
    np.testing.assert_allclose(x16.grad.numpy().astype(np.float64), x32.grad.numpy(), rtol=1e-2, atol=6e-8)   # float16 subnormal step


def test_float16_mse_gradient_scales_the_difference_before_doubling_it(torch):
    """PyTorch's mse_loss backward is (x - t) * (2 / numel) * g: for x - t = 40000 over 4 values,
    20000. 2 * (x - t) = 80000 is inf in float16, and the gradient was inf."""
    x, t = np.array([40000, 0, 0, 0], np.float16), np.zeros(4, np.float16)
    ours = msn.tensor(x, requires_grad=True)
    with np.errstate(over="ignore"):
        F.mse_loss(ours, msn.tensor(t)).backward()
    theirs = torch.tensor(x, requires_grad=True)
    torch.nn.functional.mse_loss(theirs, torch.tensor(t)).backward()
    assert np.isfinite(theirs.grad.numpy()).all()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
