"""Optimizers and schedules: parameter updates equal torch.optim's over several
steps (float64, Hypothesis-drawn hyper-parameters), state_dict round trips,
schedules equal torch.optim.lr_scheduler's, bad arguments."""
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import optim
from minisegnet.nn import Conv2d
from minisegnet.nn.module import Parameter
from helpers import assert_close, current_xp

SHAPES = [(3, 2, 3, 3), (3,), (4, 5)]


def _params(seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def _grads(seed, steps):
    rng = np.random.default_rng(seed + 1)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def _run_both(torch, ours_cls, torch_cls, kwargs, seed, steps=5, skip_grad_at=None):
    """Apply the same gradient sequence to the same parameters in both libraries."""
    init = _params(seed)
    ours = [Parameter(v.copy()) for v in init]
    theirs = [torch.tensor(v.copy(), requires_grad=True) for v in init]
    opt, topt = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    for step, grads in enumerate(_grads(seed, steps)):
        opt.zero_grad()
        topt.zero_grad()
        for i, (p, tp, g) in enumerate(zip(ours, theirs, grads)):
            if skip_grad_at == (step, i):
                continue   # a parameter without a gradient this step is left alone
            p.grad = msn.tensor(g)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(ours, theirs)):
            assert_close(p, tp, atol=1e-12, rtol=1e-10, what=f"param {i} after step {step + 1}")
    return opt, ours


@given(lr=st.floats(1e-3, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       dampening=st.sampled_from([0.0, 0.3]), weight_decay=st.sampled_from([0.0, 1e-2, 0.1]),
       nesterov=st.booleans(), seed=st.integers(0, 2**16))
def test_sgd_matches_torch(torch, lr, momentum, dampening, weight_decay, nesterov, seed):
    if nesterov and (momentum == 0 or dampening != 0):
        nesterov = False
    kwargs = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
    _run_both(torch, optim.SGD, torch.optim.SGD, kwargs, seed, skip_grad_at=(2, 1))


@given(lr=st.floats(1e-4, 0.1), beta1=st.sampled_from([0.0, 0.5, 0.9]), beta2=st.sampled_from([0.9, 0.999]),
       eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-2, 0.3]),
       decoupled=st.booleans(), seed=st.integers(0, 2**16))
def test_adam_and_adamw_match_torch(torch, lr, beta1, beta2, eps, weight_decay, decoupled, seed):
    kwargs = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    ours, theirs = (optim.AdamW, torch.optim.AdamW) if decoupled else (optim.Adam, torch.optim.Adam)
    _run_both(torch, ours, theirs, kwargs, seed, steps=6, skip_grad_at=(1, 0))


def test_defaults_match_torch(torch):
    p = [Parameter(np.ones(2))]
    a, w = optim.Adam(p), optim.AdamW(p)
    ta, tw = torch.optim.Adam([torch.ones(2, requires_grad=True)]), torch.optim.AdamW([torch.ones(2, requires_grad=True)])
    for ours, theirs in ((a, ta), (w, tw)):
        g = theirs.param_groups[0]
        assert (ours.lr, ours.betas, ours.eps, ours.weight_decay) == (g["lr"], g["betas"], g["eps"], g["weight_decay"])
    s = optim.SGD(p, lr=0.1)
    assert (s.momentum, s.dampening, s.weight_decay, s.nesterov) == (0, 0, 0, False)


@pytest.mark.parametrize("cls, kwargs", [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (optim.Adam, dict(lr=0.01)),
    (optim.AdamW, dict(lr=0.01, betas=(0.8, 0.99))),
])
def test_state_dict_resume_continues_identically(tmp_path, cls, kwargs):
    """Run 6 steps straight, or 3 steps + save + a fresh optimizer + load + 3 steps: same numbers."""
    grads = _grads(5, 6)

    def run(params, opt, gs):
        for g in gs:
            for p, gi in zip(params, g):
                p.grad = msn.tensor(gi)
            opt.step()

    a = [Parameter(v) for v in _params(5)]
    opt_a = cls(a, **kwargs)
    run(a, opt_a, grads)

    b = [Parameter(v) for v in _params(5)]
    opt_b = cls(b, **kwargs)
    run(b, opt_b, grads[:3])
    msn.save(opt_b.state_dict(), tmp_path / "opt.npz")
    opt_c = cls(b, lr=123.0) if cls is optim.SGD else cls(b)
    opt_c.load_state_dict(msn.load(tmp_path / "opt.npz"))
    assert opt_c.lr == opt_b.lr
    run(b, opt_c, grads[3:])
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())


def test_load_state_dict_rejects_mismatch():
    p = [Parameter(np.ones((2, 2)))]
    opt = optim.Adam(p)
    p[0].grad = msn.tensor(np.ones((2, 2)))
    opt.step()
    state = opt.state_dict()
    other = optim.Adam([Parameter(np.ones(3))])
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(state)
    with pytest.raises(KeyError, match="SGD"):
        optim.SGD(p, lr=0.1).load_state_dict({"lr": np.asarray(0.1)})


def test_updates_in_place_without_graph():
    p = Parameter(np.ones(3))
    array = p.data
    p.grad = msn.tensor(np.ones(3))
    optim.SGD([p], lr=0.5).step()
    assert p.data is array and p.creator is None
    np.testing.assert_allclose(p.numpy(), 0.5)


# ---- schedules -----------------------------------------------------------------
SCHEDULES = {
    "poly": (lambda o: optim.PolyLR(o, total_iters=7, power=0.9),
             lambda torch, o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=7, power=0.9)),
    "polynomial, PyTorch's defaults": (lambda o: optim.PolynomialLR(o),
                                       lambda torch, o: torch.optim.lr_scheduler.PolynomialLR(o)),
    "cosine": (lambda o: optim.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
               lambda torch, o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01)),
    "step": (lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
             lambda torch, o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_match_torch(torch, name):
    ours_fn, torch_fn = SCHEDULES[name]
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.2)
    topt = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=0.2)
    sched, tsched = ours_fn(opt), torch_fn(torch, topt)
    for step in range(12):
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), f"step {step}"
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr())
        topt.step()
        sched.step()
        tsched.step()


def test_schedule_state_dict():
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.2)
    sched = optim.PolyLR(opt, total_iters=10)
    for _ in range(4):
        sched.step()
    opt2 = optim.SGD([Parameter(np.ones(1))], lr=0.5)          # another base lr: the state brings 0.2 back
    sched2 = optim.PolyLR(opt2, total_iters=10)
    sched2.load_state_dict(sched.state_dict())
    assert opt2.lr == opt.lr and sched2.last_epoch == 4 and sched2.base_lr == 0.2
    assert opt.lr == pytest.approx(0.2 * (1 - 4 / 10) ** 0.9)
    sched.step()
    sched2.step()
    assert opt2.lr == opt.lr == pytest.approx(0.2 * (1 - 5 / 10) ** 0.9)


def test_closure_epoch_and_param_groups_are_refused_naming_the_rule():
    """torch's step(closure), scheduler step(epoch) and param groups (a list of dicts) are not
    implemented: each is an error that says so, not a generic signature error."""
    p = Parameter(np.ones(2))
    p.grad = msn.tensor(np.ones(2))
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(NotImplementedError, match="no closure"):
        opt.step(lambda: 0.0)
    with pytest.raises(NotImplementedError, match="no closure"):
        optim.Adam([p]).step(closure=lambda: 0.0)
    np.testing.assert_array_equal(p.numpy(), np.ones(2))         # nothing was updated
    opt.step(None)                                                # torch's default, accepted
    np.testing.assert_allclose(p.numpy(), np.full(2, 0.9))
    with pytest.raises(NotImplementedError, match="no epoch"):
        optim.StepLR(opt, step_size=2).step(3)
    with pytest.raises(TypeError, match="parameter groups"):
        optim.SGD([{"params": [p], "lr": 0.1}], lr=0.1)


@pytest.mark.parametrize("make, match", [
    (lambda p: optim.SGD(p, lr=-1), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), r"betas\[0\]"),
    (lambda p: optim.Adam(p, betas=0.9), "betas"),
    (lambda p: optim.Adam(p, eps=-1), "eps"),
    (lambda p: optim.SGD([], lr=0.1), "empty"),
    (lambda p: optim.SGD(p[0], lr=0.1), "iterable"),
    (lambda p: optim.SGD(Conv2d(1, 1, 1), lr=0.1), r"model.parameters\(\)\), got Conv2d"),
    (lambda p: optim.SGD([np.ones(2)], lr=0.1), "not a Tensor"),
    (lambda p: optim.SGD(p + p, lr=0.1), "more than once"),
    (lambda p: optim.StepLR(optim.SGD(p, lr=0.1), step_size=0), "step_size"),
    (lambda p: optim.PolyLR(optim.SGD(p, lr=0.1), total_iters=0), "total_iters"),
])
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([Parameter(np.ones(2))])


@pytest.mark.parametrize("make, kind, start", [
    (lambda p: msn.optim.SGD(p, lr=float("nan")), ValueError, "SGD: lr must be a finite number"),
    (lambda p: msn.optim.SGD(p, nesterov="yes"), TypeError, "SGD: nesterov must be True or False"),
    (lambda p: msn.optim.SGD(p, momentum=0, nesterov=True), ValueError, "SGD: nesterov=True requires"),
    (lambda p: msn.optim.Adam(p, betas=(0.9,)), TypeError, "Adam: betas must be a pair"),
    (lambda p: msn.optim.AdamW(p, eps=-1.0), ValueError, "AdamW: eps must be >= 0"),
    (lambda p: msn.optim.Adam([]), ValueError, "Adam: got an empty parameter list"),
    (lambda p: msn.optim.StepLR(msn.optim.SGD(p), step_size=0), ValueError, "StepLR: step_size must be"),
    (lambda p: msn.optim.PolyLR(msn.optim.SGD(p), total_iters=10, power="x"), TypeError, "PolyLR: power must be"),
    (lambda p: msn.optim.CosineAnnealingLR(msn.optim.SGD(p), T_max=5, eta_min=float("inf")), ValueError,
     "CosineAnnealingLR: eta_min must be a finite number"),
    (lambda p: msn.optim.StepLR("sgd", step_size=1), TypeError, "StepLR: optimizer must be"),
])
def test_optimizer_and_schedule_errors_name_their_class(make, kind, start):
    params = [msn.tensor(np.zeros(3, np.float32), requires_grad=True)]
    with pytest.raises(kind) as info:
        make(params)
    assert type(info.value) is kind and str(info.value).startswith(start), str(info.value)


def test_a_state_dict_that_does_not_fit_names_the_optimizers_load_state_dict():
    p = msn.tensor(np.zeros(3, np.float32), requires_grad=True)
    opt = msn.optim.Adam([p])
    p.grad = msn.tensor(np.ones(3, np.float32))
    opt.step()
    state = opt.state_dict()
    bad = dict(state, **{key: np.zeros(4, np.float32) for key in state if key.endswith("exp_avg")})
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: state 'state\.0\.exp_avg' has shape \(4,\)"):
        msn.optim.Adam([msn.tensor(np.zeros(3, np.float32), requires_grad=True)]).load_state_dict(bad)
    with pytest.raises(KeyError, match=r"Adam\.load_state_dict: the state_dict lacks \['eps'\]"):
        msn.optim.Adam([p]).load_state_dict({k: v for k, v in state.items() if k != "eps"})


def _param():
    return msn.tensor(np.zeros(3, np.float32), requires_grad=True)


@pytest.mark.parametrize("make, entry, value, kind, message", [
    (lambda: optim.SGD([_param()], lr=0.1), "lr", np.asarray(-5.0), ValueError,
     r"^SGD\.load_state_dict: lr must be >= 0.0, got -5\.0"),
    (lambda: optim.SGD([_param()], lr=0.1, momentum=0.9), "nesterov", np.asarray(2), TypeError,
     r"^SGD\.load_state_dict: nesterov must be True or False, got 2"),
    (lambda: optim.Adam([_param()]), "betas", np.asarray([0.9, 1.5]), ValueError,
     r"^Adam\.load_state_dict: betas\[1\] must be >= 0.0 and < 1.0, got 1\.5"),
    (lambda: optim.Adam([_param()]), "eps", np.asarray(np.nan), ValueError,
     r"^Adam\.load_state_dict: eps must be a finite number, got nan"),
    (lambda: optim.Adam([_param()]), "state.0.step", np.asarray(2.7), ValueError,
     r"^Adam\.load_state_dict: entry 'state\.0\.step' must be a count \(an integer >= 0\)"),
    (lambda: optim.Adam([_param()]), "state.0.step", np.asarray(-1), ValueError, "must be a count"),
    (lambda: optim.Adam([_param()]), "state.0.step", np.asarray(True), ValueError, "must be a count"),
    (lambda: optim.Adam([_param()]), "state.0.step", np.asarray([1, 2]), ValueError, "must be a count"),
])
def test_load_state_dict_obeys_the_constructors_rules(make, entry, value, kind, message):
    """A loaded lr of -5 was taken as it was (and a step count of 2.7 truncated to 2)."""
    opt = make()
    opt.params[0].grad = msn.tensor(np.ones(3, np.float32))      # on the backend in use
    opt.step()
    state = dict(opt.state_dict(), **{entry: value})
    # every other entry changed to a valid value, so that a partial load would show
    for key, other in opt.state_dict().items():
        if key == entry or key in ("nesterov", "decoupled_weight_decay", "param_count") or key.endswith(".step"):
            continue
        state[key] = (np.asarray((0.8, 0.9)) if key == "betas" else other + 0.25 if key.startswith("state.")
                      else np.asarray(0.5))
    before = opt.state_dict()
    with pytest.raises(kind, match=message):
        opt.load_state_dict(state)
    after = opt.state_dict()          # nothing changed: checked before anything is set
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)


def test_load_state_dict_takes_plain_numbers():
    """A hand-written state with Python numbers crashed with AttributeError: 'float' object has no attribute 'item'."""
    opt = optim.SGD([_param()], lr=0.1)
    opt.load_state_dict({"lr": 0.5, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False})
    assert (opt.lr, opt.momentum, opt.nesterov) == (0.5, 0.9, False)


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam])
def test_a_read_only_parameter_is_refused_before_training(make):
    """It failed only at the first step, after a forward and backward pass, with NumPy's bare
    'output array is read-only'. (NumPy only: on CuPy the Parameter is a device copy.)"""
    if current_xp() is not np:
        pytest.skip("read-only arrays are NumPy's")
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[1\] holds a read-only array, and a step updates parameters"):
        make([_param(), msn.nn.Parameter(ro)])


def test_a_frozen_parameter_is_accepted_and_left_as_torch_does(torch):
    """``model.encoder.requires_grad_(False)`` then ``Adam(model.parameters())``: PyTorch accepts a
    parameter that does not require grad and skips it (no gradient); so do we."""
    frozen, live = Parameter(np.ones(2, np.float32)), Parameter(np.ones(2, np.float32))
    frozen.requires_grad_(False)
    t_frozen, t_live = torch.nn.Parameter(torch.ones(2), requires_grad=False), torch.nn.Parameter(torch.ones(2))
    ours, theirs = optim.Adam([frozen, live], lr=0.1), torch.optim.Adam([t_frozen, t_live], lr=0.1)
    (msn.tensor(np.arange(2, dtype=np.float32)) * live).sum().backward()
    (torch.arange(2.0) * t_live).sum().backward()
    ours.step()
    theirs.step()
    np.testing.assert_array_equal(frozen.numpy(), [1, 1])
    np.testing.assert_allclose(live.numpy(), t_live.detach().numpy(), rtol=1e-6)
    assert (live.numpy() != 1).any()


def test_a_schedule_sets_the_lr_from_its_formula_and_does_not_chain(torch):
    """What LRScheduler's docstring says: an lr changed by hand lasts until the next step, and the
    last schedule to step sets the lr (PyTorch's chainable form differs there); alone and untouched,
    PyTorch's numbers."""
    opt = optim.SGD([Parameter(np.ones(2))], lr=0.1)
    schedule = optim.StepLR(opt, step_size=3, gamma=0.5)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    tschedule = torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5)
    for _ in range(7):
        topt.step()                                                 # torch warns of a schedule stepped first
        schedule.step()
        tschedule.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
    opt.lr = 1.0                                                    # by hand
    schedule.step()
    assert opt.lr == pytest.approx(0.1 * 0.5 ** (8 // 3))          # the formula again, not 1.0 * ...
    first, second = optim.StepLR(opt, step_size=1, gamma=0.5), optim.PolynomialLR(opt, total_iters=4)
    first.step()
    second.step()
    assert opt.lr == pytest.approx(second.lr_at(1))                 # the last to step


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_torchs_keywords_are_accepted_at_their_defaults_and_refused_otherwise(torch, name):
    """``Adam(params, amsgrad=False)`` was a TypeError; every keyword of torch's signature is
    accepted at torch's default, in torch's order, and any other value is refused by name."""
    import inspect
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    shared = [p for p in theirs if p in ours]
    assert shared == list(ours) and set(theirs) == set(ours), set(theirs) ^ set(ours)
    for p in ours:
        if p != "params":
            assert ours[p].default == theirs[p].default or p == "lr" and name != "SGD", p
            assert ours[p].kind == theirs[p].kind, p
    defaults = {p: theirs[p].default for p in theirs if p in ours and p != "params"}
    getattr(optim, name)([Parameter(np.ones(2))], **defaults)
    for keyword, value in (("maximize", True), ("fused", True), ("foreach", True)):
        with pytest.raises(NotImplementedError, match=rf"^{name}: {keyword}=True is not implemented here"):
            getattr(optim, name)([Parameter(np.ones(2))], **{keyword: value})


def test_adam_with_decoupled_weight_decay_is_adamw_as_torch(torch):
    x = np.random.default_rng(0).standard_normal(3)
    ours = [Parameter(x.copy()) for _ in range(2)]
    theirs = torch.nn.Parameter(torch.tensor(x))
    a = optim.Adam([ours[0]], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True)
    b = optim.AdamW([ours[1]], lr=0.1, weight_decay=0.5)
    t = torch.optim.Adam([theirs], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True)
    for _ in range(3):
        for p in ours:
            p.grad = msn.tensor(np.sin(p.numpy()))
        theirs.grad = torch.sin(theirs.detach())
        a.step(), b.step(), t.step()
    np.testing.assert_array_equal(ours[0].numpy(), ours[1].numpy())
    np.testing.assert_allclose(ours[0].numpy(), theirs.detach().numpy(), rtol=1e-12)
    assert not optim.Adam([Parameter(x.copy())]).decoupled_weight_decay


@pytest.mark.parametrize("key", ["state.-1.exp_avg", "state.x", "state.a.exp_avg", "state. 0.exp_avg", "state.1_0.exp_avg",
                                 "state.5.exp_avg", "state.2.exp_avg", "state.\u0661.exp_avg",
                                 "state.0.momentum_buffer"])
def test_a_state_key_that_is_not_state_dicts_is_named(key):
    """'state.-1.exp_avg' was applied to the last parameter (int() wraps nothing, but a negative index
    does); 'state.x' and 'state.a.exp_avg' were unpacking and int() errors naming nothing."""
    p = [Parameter(np.ones(2)), Parameter(np.ones(3))]
    opt = optim.Adam(p)
    (p[0] * p[0]).sum().backward()
    opt.step()
    state = dict(opt.state_dict(), **{key: np.zeros(3)})
    with pytest.raises(KeyError, match=rf"Adam.load_state_dict: entry '{re.escape(key)}' does not match this Adam "
                                       r"with 2 parameters"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_every_torch_switch_is_refused_on_and_taken_off(name):
    """Each switch torch's signature has is refused turned on; off (False, 0, np.False_) it is taken, as
    torch takes foreach=False or amsgrad=0 (they were refused)."""
    import inspect
    params = inspect.signature(getattr(optim, name)).parameters
    for keyword in ("amsgrad", "maximize", "capturable", "differentiable", "fused", "foreach"):
        if keyword not in params:
            continue
        with pytest.raises(NotImplementedError, match=rf"^{name}: {keyword}=True is not implemented"):
            getattr(optim, name)([Parameter(np.ones(2))], **{keyword: True})
        for off in (False, 0, np.False_):
            getattr(optim, name)([Parameter(np.ones(2))], **{keyword: off})
    if name == "Adam":
        assert not optim.Adam([Parameter(np.ones(2))], decoupled_weight_decay=np.False_).decoupled_weight_decay
        with pytest.raises(TypeError, match="decoupled_weight_decay must be True or False"):
            optim.Adam([Parameter(np.ones(2))], decoupled_weight_decay=1)


def test_load_state_dict_takes_the_backends_own_arrays():
    """A state dict whose moments are device arrays (a GPU optimizer's, kept on the GPU) loads:
    ``np.asarray`` of them raised on CuPy."""
    xp = current_xp()
    params = [Parameter(v) for v in _params(5)]
    opt = optim.Adam(params)
    for p, g in zip(params, _grads(5, 1)[0]):
        p.grad = msn.tensor(g)
    opt.step()
    state = {k: (xp.asarray(v) if isinstance(v, np.ndarray) and v.ndim else v) for k, v in opt.state_dict().items()}
    fresh = optim.Adam(params)
    fresh.load_state_dict(state)
    for key, value in opt.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)


def test_get_last_lr_is_the_schedules_not_a_hand_set_lr(torch):
    """It returned the optimizer's current lr: after a hand change, that value, where torch's
    returns the lr the schedule set."""
    p, tp = Parameter(np.zeros(2)), torch.zeros(2, requires_grad=True)
    opt, topt = optim.SGD([p], lr=0.1), torch.optim.SGD([tp], lr=0.1)
    sched, tsched = optim.StepLR(opt, 2), torch.optim.lr_scheduler.StepLR(topt, 2)
    for _ in range(3):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    opt.lr = 7.0
    topt.param_groups[0]["lr"] = 7.0
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr()) == [0.1 * 0.1]


def test_load_state_dict_casts_moments_to_the_parameters_dtype_and_takes_the_other_backend(cupy):
    """A float64 moment loads into a float32 parameter's state as float32; a device array loads
    into a NumPy optimizer (copied down), a host one into a device optimizer (copied up)."""
    params = [Parameter(np.zeros(3, np.float32))]
    opt = optim.Adam(params)
    state = {k: v for k, v in opt.state_dict().items()}
    state.update({"state.0.step": np.asarray(1), "state.0.exp_avg": np.full(3, 0.5),
                  "state.0.exp_avg_sq": np.full(3, 0.25)})
    opt.load_state_dict(state)
    assert opt.state_dict()["state.0.exp_avg"].dtype == np.float32
    on_device = dict(state, **{"state.0.exp_avg": cupy.asarray(np.full(3, 0.5))})
    host_opt = optim.Adam([Parameter(np.zeros(3, np.float32))])
    host_opt.load_state_dict(on_device)
    assert host_opt.state_dict()["state.0.exp_avg"].tolist() == [0.5] * 3


def test_sgd_momentum_buffer_is_not_the_gradient_array(torch):
    """Two steps on one gradient (no backward in between) as torch, the gradient unchanged: a
    buffer that shared the gradient's array would add into it."""
    xp = current_xp()
    p = Parameter(xp.asarray([1.0, 2.0]))
    tp = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt, topt = optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    p.grad = msn.tensor(xp.asarray([0.5, -1.0]))
    tp.grad = torch.tensor([0.5, -1.0], dtype=torch.float64)
    for _ in range(2):
        opt.step()
        topt.step()
    np.testing.assert_allclose(msn.backend.to_numpy(p.data), tp.detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(msn.backend.to_numpy(p.grad.data), [0.5, -1.0])


def test_state_dict_is_a_snapshot():
    """A state dict kept in memory does not move with later steps (its arrays are copies)."""
    xp = current_xp()
    p = Parameter(xp.asarray([1.0, 2.0]))
    opt = optim.Adam([p], lr=0.1)
    p.grad = msn.tensor(xp.asarray([0.5, -1.0]))
    opt.step()
    sd = opt.state_dict()
    saved = {k: v.copy() for k, v in sd.items()}
    opt.step()
    for k in saved:
        np.testing.assert_array_equal(sd[k], saved[k], err_msg=k)


@pytest.mark.parametrize("make, key", [(lambda p: optim.SGD([p], lr=0.1, momentum=0.9), "momentum_buffer"),
                                       (lambda p: optim.Adam([p], lr=0.1), "exp_avg")])
def test_load_state_dict_copies_the_state_it_is_given(make, key):
    """PyTorch deep-copies a loaded state; the old code used the dict's own arrays, so each
    step() of the loaded optimizer rewrote the dict (and another optimizer loaded from it)."""
    p = Parameter(np.ones(3))
    first = make(p)
    p.grad = msn.tensor(np.ones(3))
    first.step()
    state = first.state_dict()
    name = next(k for k in state if k.endswith(key))
    before = np.array(state[name])
    q = Parameter(np.ones(3))
    second = make(q)
    second.load_state_dict(state)
    q.grad = msn.tensor(np.ones(3))
    second.step()
    np.testing.assert_array_equal(np.asarray(state[name]), before)


@pytest.mark.parametrize("saved, loaded", [
    ((optim.AdamW, dict(), "AdamW", dict()), (optim.Adam, "Adam")),
    ((optim.Adam, dict(decoupled_weight_decay=True), "Adam", dict(decoupled_weight_decay=True)), (optim.Adam, "Adam")),
])
def test_load_state_dict_restores_decoupled_weight_decay_as_torch(torch, tmp_path, saved, loaded):
    (ours_cls, ours_kw, torch_name, torch_kw), (load_cls, load_torch_name) = saved, loaded
    x = np.random.default_rng(0).standard_normal(4)
    ours, theirs = Parameter(x.copy()), torch.nn.Parameter(torch.tensor(x.copy()))
    a = ours_cls([ours], lr=0.1, weight_decay=0.5, **ours_kw)
    t = getattr(torch.optim, torch_name)([theirs], lr=0.1, weight_decay=0.5, **torch_kw)

    def steps(opt, topt, n):
        for _ in range(n):
            ours.grad = msn.tensor(np.sin(ours.numpy()))
            theirs.grad = torch.sin(theirs.detach())
            opt.step(), topt.step()

    steps(a, t, 2)
    msn.save(a.state_dict(), tmp_path / "opt.npz")
    b = load_cls([ours])                                      # a fresh optimizer, its state loaded
    b.load_state_dict(msn.load(tmp_path / "opt.npz"))
    tb = getattr(torch.optim, load_torch_name)([theirs])
    tb.load_state_dict(t.state_dict())
    steps(b, tb, 3)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)


def test_a_state_dict_saved_before_the_decoupled_flag_keeps_the_optimizers_own():
    """Checkpoints written before decoupled_weight_decay was saved lack it: loading one into an
    AdamW keeps AdamW's decoupled decay (and into an Adam, Adam's), rather than failing."""
    p = Parameter(np.ones(2))
    old = {k: v for k, v in optim.AdamW([p]).state_dict().items() if k != "decoupled_weight_decay"}
    w = optim.AdamW([p])
    w.load_state_dict(old)
    assert w.decoupled_weight_decay
    a = optim.Adam([p])
    a.load_state_dict(old)
    assert not a.decoupled_weight_decay


@pytest.mark.parametrize("entry, value", [
    ("base_lr", np.asarray(np.nan)), ("base_lr", np.asarray(-1.0)), ("base_lr", np.asarray(np.inf)),
    ("last_epoch", np.asarray(2.7)), ("last_epoch", np.asarray(-4)),
])
def test_a_schedules_load_state_dict_obeys_the_constructors_rules(entry, value):
    """A loaded base_lr of NaN or -1 was taken, and set the optimizer's lr to NaN or -100 (an lr the
    optimizer itself refuses: 'lr must be a finite number', '>= 0.0'); a last_epoch of 2.7 was
    truncated to 2. Refused naming the schedule's load_state_dict, the schedule and lr unchanged."""
    opt = optim.SGD([Parameter(np.ones(2))], lr=0.2)
    schedule = optim.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        schedule.step()
    state = dict(schedule.state_dict(), **{entry: value})
    before = (opt.lr, schedule.last_epoch, schedule.base_lr)
    with pytest.raises((ValueError, TypeError), match=r"^StepLR\.load_state_dict"):
        schedule.load_state_dict(state)
    assert (opt.lr, schedule.last_epoch, schedule.base_lr) == before


@pytest.mark.parametrize("saved_count, stepped, loaded_count", [(2, 2, 3), (3, 2, 2)])
def test_load_state_dict_refuses_a_state_of_another_parameter_count_as_torch(torch, saved_count, stepped,
                                                                              loaded_count):
    """An Adam state of 2 parameters loaded into an Adam of 3 (a model grown by a layer), or one of 3
    whose last parameter had no gradient yet into an Adam of 2, was taken silently: the moments went to
    whichever parameters had those indices. PyTorch refuses both ('doesn't match the size of
    optimizer's group')."""
    def adam_state(lib_params, lib_opt, grad):
        opt = lib_opt(lib_params)
        for p in lib_params[:stepped]:
            p.grad = grad(p)
        opt.step()
        return opt.state_dict()

    ours = adam_state([Parameter(np.ones(3)) for _ in range(saved_count)], optim.Adam,
                      lambda p: msn.tensor(np.ones(3)))
    theirs = adam_state([torch.ones(3, requires_grad=True) for _ in range(saved_count)], torch.optim.Adam,
                        lambda p: torch.ones(3))
    with pytest.raises(ValueError):
        torch.optim.Adam([torch.ones(3, requires_grad=True) for _ in range(loaded_count)]).load_state_dict(theirs)
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict"):
        optim.Adam([Parameter(np.ones(3)) for _ in range(loaded_count)]).load_state_dict(ours)


def test_float16_adam_differs_from_torch_in_a_few_percent_of_the_values_as_documented(torch):
    """optim.py's docstring: float16 rounds each NumPy operation where PyTorch computes some in
    float32; after five steps a few percent of the values differ (and eps = 1e-8 is 0 in float16:
    both libraries step some values to inf)."""
    import warnings

    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(1000).astype(np.float16)
    ours, theirs = Parameter(p0.copy()), torch.tensor(p0.copy(), requires_grad=True)
    opt, topt = optim.Adam([ours], lr=1e-2), torch.optim.Adam([theirs], lr=1e-2)
    for _ in range(5):
        g = rng.standard_normal(1000).astype(np.float16)
        ours.grad, theirs.grad = msn.tensor(g), torch.tensor(g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)          # the division by eps = 0
            opt.step()
        topt.step()
    a, b = msn.backend.to_numpy(ours.data), theirs.detach().numpy()
    assert np.array_equal(np.isinf(a), np.isinf(b)) and np.isinf(a).any()
    finite = np.isfinite(a)
    assert 0.01 < (a[finite] != b[finite]).mean() < 0.2


@pytest.mark.parametrize("count", [np.asarray(2.0), np.asarray([2])])
def test_a_param_count_that_is_not_a_count_is_refused(count):
    """'param_count' must be a 0-d integer: 2.0 (a float) or [2] (an array) is refused, not read
    as 2."""
    params = [Parameter(np.ones(3)) for _ in range(2)]
    state = dict(optim.Adam(params).state_dict(), param_count=count)
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: entry 'param_count' must be a count"):
        optim.Adam(params).load_state_dict(state)


def test_a_schedule_state_dict_lacking_an_entry_is_a_key_error_naming_it():
    opt = optim.SGD([Parameter(np.ones(2))], lr=0.2)
    schedule = optim.StepLR(opt, step_size=2, gamma=0.1)
    for entry in ("last_epoch", "base_lr"):
        state = {k: v for k, v in schedule.state_dict().items() if k != entry}
        with pytest.raises(KeyError, match=rf"StepLR\.load_state_dict: the state_dict lacks \['{entry}'\]"):
            schedule.load_state_dict(state)


def test_a_fresh_schedules_state_dict_loads_back():
    """last_epoch 0 (a schedule not yet stepped) is a count >= 0, taken back."""
    opt = optim.SGD([Parameter(np.ones(2))], lr=0.2)
    schedule = optim.StepLR(opt, step_size=2, gamma=0.1)
    state = schedule.state_dict()
    assert int(state["last_epoch"]) == 0
    other = optim.StepLR(optim.SGD([Parameter(np.ones(2))], lr=0.2), step_size=2, gamma=0.1)
    other.load_state_dict(state)
    assert other.last_epoch == 0 and other.optimizer.lr == 0.2


@pytest.mark.parametrize("value", [np.asarray([3]), np.asarray([[3]])])
def test_a_schedules_last_epoch_must_be_a_single_count(value):
    opt = optim.SGD([Parameter(np.ones(2))], lr=0.2)
    schedule = optim.StepLR(opt, step_size=2, gamma=0.1)
    with pytest.raises(ValueError, match=r"^StepLR\.load_state_dict: last_epoch must be a count"):
        schedule.load_state_dict(dict(schedule.state_dict(), last_epoch=value))


def test_a_schedule_has_torchs_base_lrs(torch):
    """torch's schedules keep their starting learning rates as ``base_lrs`` (a list, one per
    group); ours keeps ``base_lr`` (one float) and has no ``base_lrs``, which no docstring says."""
    for name, kwargs in (("StepLR", {"step_size": 2}), ("PolynomialLR", {}), ("CosineAnnealingLR", {"T_max": 3})):
        ours = getattr(optim, name)(optim.SGD([Parameter(np.ones(2))], lr=0.1), **kwargs)
        theirs = getattr(torch.optim.lr_scheduler, name)(
            torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1), **kwargs)
        assert ours.base_lrs == theirs.base_lrs == [0.1], name
