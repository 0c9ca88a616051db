"""nn.Module itself: parameter names and order like PyTorch's, state_dict round
trips and errors, train/eval propagation, zero_grad, Sequential and ModuleList."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import nn
from helpers import t64


class Block(nn.Module):
    """Conv -> BN -> ReLU -> Dropout2d, then a learnable per-channel scale assigned
    *after* the children: PyTorch still lists it first (own parameters before children's)."""

    def __init__(self, c_in, c_out):
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()
        self.drop = nn.Dropout2d(0.5)
        self.scale = nn.Parameter(np.ones((1, c_out, 1, 1), dtype=np.float32))

    def forward(self, x):
        return self.drop(self.act(self.bn(self.conv(x)))) * self.scale


class Net(nn.Module):
    def __init__(self):
        self.stem = nn.Sequential(Block(2, 4), nn.Identity(), Block(4, 4))
        self.heads = nn.ModuleList([nn.Conv2d(4, 3, 1), nn.Sequential(nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))])
        self.temperature = nn.Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x):
        x = self.stem(x)
        return [head(x) * self.temperature for head in self.heads]


def _torch_net(torch):
    tnn = torch.nn

    class TBlock(tnn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv = tnn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            self.bn = tnn.BatchNorm2d(c_out)
            self.act = tnn.ReLU()
            self.drop = tnn.Dropout2d(0.5)
            self.scale = tnn.Parameter(torch.ones(1, c_out, 1, 1))

        def forward(self, x):
            return self.drop(self.act(self.bn(self.conv(x)))) * self.scale

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = tnn.Sequential(TBlock(2, 4), tnn.Identity(), TBlock(4, 4))
            self.heads = tnn.ModuleList([tnn.Conv2d(4, 3, 1), tnn.Sequential(tnn.BatchNorm2d(4), tnn.Conv2d(4, 2, 1))])
            self.temperature = tnn.Parameter(torch.ones(1))

        def forward(self, x):
            x = self.stem(x)
            return [head(x) * self.temperature for head in self.heads]

    return TNet()


def test_named_parameters_and_state_dict_keys_match_torch(torch):
    ours, theirs = Net(), _torch_net(torch)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert p.shape == tuple(tp.shape), name
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert len(ours.parameters()) == len(list(theirs.parameters()))


def test_named_parameters_order_is_stable():
    msn.manual_seed(0)
    a = [(n, p.numpy().copy()) for n, p in Net().named_parameters()]
    msn.manual_seed(0)
    b = [(n, p.numpy().copy()) for n, p in Net().named_parameters()]
    assert [n for n, _ in a] == [n for n, _ in b]
    for (_, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_shared_parameter_is_listed_once_but_saved_under_both_names(torch):
    conv = nn.Conv2d(2, 2, 1)
    model = nn.Sequential(conv, nn.ReLU(), conv)
    tconv = torch.nn.Conv2d(2, 2, 1)
    tmodel = torch.nn.Sequential(tconv, torch.nn.ReLU(), tconv)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in tmodel.named_parameters()] \
        == ["0.weight", "0.bias"]
    assert list(model.state_dict()) == list(tmodel.state_dict())
    model.load_state_dict(model.state_dict())


def test_shared_module_is_walked_once_as_torch(torch):
    """A module reached twice is listed once by named_modules and modules (under its
    first name), its buffers once by named_buffers; remove_duplicate=False lists it twice."""
    bn, tbn = nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    model = nn.Sequential(bn, nn.Sequential(bn, nn.ReLU()))
    tmodel = torch.nn.Sequential(tbn, torch.nn.Sequential(tbn, torch.nn.ReLU()))
    names = [n for n, _ in model.named_modules()]
    assert names == [n for n, _ in tmodel.named_modules()] == ["", "0", "1", "1.1"]
    assert len(list(model.modules())) == 4
    assert [n for n, _ in model.named_modules(remove_duplicate=False)] == \
        [n for n, _ in tmodel.named_modules(remove_duplicate=False)] == ["", "0", "1", "1.0", "1.1"]
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in tmodel.named_buffers()]
    assert list(model.state_dict()) == list(tmodel.state_dict())     # saved under both names, as torch
    assert [n for n, _ in model.named_modules(prefix="net")][:2] == ["net", "net.0"]
    relus, trelus = nn.Sequential(nn.ReLU(), nn.ReLU()), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.ReLU())
    assert [n for n, _ in relus.named_modules(memo={relus[0]})] == \
        [n for n, _ in trelus.named_modules(memo={trelus[0]})] == ["", "1"]       # memo holds modules


def test_state_dict_round_trip_restores_outputs():
    msn.manual_seed(1)
    a = Net()
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32))
    a.train()
    a(x)                                    # move BN running statistics away from their defaults
    a.eval()
    state = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    msn.manual_seed(2)
    b = Net().eval()
    assert not np.allclose(b(x)[0].numpy(), a(x)[0].numpy())
    b.load_state_dict(state)
    for ya, yb in zip(a(x), b(x)):
        np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    # The state dict is a copy: changing it afterwards does not touch the model.
    state["temperature"][...] = 5
    assert a.temperature.numpy()[0] == 1
    assert int(a.state_dict()["stem.0.bn.num_batches_tracked"]) == 1


def test_load_state_dict_from_torch(torch):
    ours, theirs = Net(), _torch_net(torch)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for name, p in ours.named_parameters():
        np.testing.assert_array_equal(p.numpy(), dict(theirs.named_parameters())[name].detach().numpy())


def test_load_state_dict_errors_name_the_key():
    model = Net()
    state = model.state_dict()
    missing = dict(state)
    del missing["stem.2.bn.running_var"]
    with pytest.raises(RuntimeError, match=r"missing keys \['stem.2.bn.running_var'\]"):   # PyTorch's type
        model.load_state_dict(missing)
    extra = dict(state, **{"heads.0.gamma": np.ones(3)})
    with pytest.raises(RuntimeError, match=r"unexpected keys \['heads.0.gamma'\]"):
        model.load_state_dict(extra)
    model.load_state_dict(missing, strict=False)
    model.load_state_dict(extra, strict=False)
    wrong = {k: v for k, v in state.items() if k != "heads.1.1.weight"}
    wrong["temperature"] = np.full(1, 7.0, dtype=np.float32)
    wrong["heads.1.1.weight"] = np.zeros((2, 4, 3, 3), dtype=np.float32)     # the last key is the bad one
    with pytest.raises(RuntimeError, match=r"key 'heads.1.1.weight' has shape \(2, 4, 3, 3\), "
                                         r"the model expects \(2, 4, 1, 1\)"):
        model.load_state_dict(wrong, strict=False)
    # Nothing was copied by the failed load.
    assert model.temperature.numpy()[0] == 1


def test_train_and_eval_propagate_to_every_module():
    model = Net()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not model.stem[0].drop.training and not model.heads[1][0].training


def test_eval_mode_makes_outputs_deterministic_and_batch_independent():
    msn.manual_seed(0)
    model = Net()
    x = msn.tensor(np.random.default_rng(0).standard_normal((3, 2, 4, 4)).astype(np.float32))
    assert not np.array_equal(model(x)[0].numpy(), model(x)[0].numpy())     # dropout in training
    model.eval()
    full = model(x)[0].numpy()
    np.testing.assert_array_equal(full, model(x)[0].numpy())
    # rtol: a GEMM library may sum in another order for another batch size (cuBLAS picks its
    # algorithm by shape; 1.5e-6 apart on an H200), which a few float32 roundings cover
    np.testing.assert_allclose(model(x[1:2])[0].numpy(), full[1:2], rtol=1e-5)


def test_zero_grad_clears_every_parameter():
    model = Net()
    x = t64(np.random.default_rng(0).standard_normal((2, 2, 4, 4)), requires_grad=False)
    model.to(np.float64)
    out = model(x)
    (out[0].sum() + out[1].sum()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def _names(pairs):
    return [name for name, _ in pairs]


def test_parameter_and_buffer_keywords_match_torch(torch):
    conv, tconv = nn.Conv2d(2, 2, 1), torch.nn.Conv2d(2, 2, 1)
    bn, tbn = nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    shared = nn.Sequential(conv, bn, nn.Sequential(conv, bn))       # a module and its parameters reached twice
    tshared = torch.nn.Sequential(tconv, tbn, torch.nn.Sequential(tconv, tbn))
    for ours, theirs in ((Net(), _torch_net(torch)), (Net().stem[0], _torch_net(torch).stem[0]), (shared, tshared)):
        for recurse in (True, False):
            assert len(ours.parameters(recurse=recurse)) == len(list(theirs.parameters(recurse=recurse)))
            assert len(ours.buffers(recurse)) == len(list(theirs.buffers(recurse)))
            for prefix in ("", "model"):
                for remove_duplicate in (True, False):
                    keywords = dict(prefix=prefix, recurse=recurse, remove_duplicate=remove_duplicate)
                    assert _names(ours.named_parameters(**keywords)) == _names(theirs.named_parameters(**keywords))
                    assert _names(ours.named_buffers(**keywords)) == _names(theirs.named_buffers(**keywords))
    assert _names(Net().named_parameters(recurse=False)) == ["temperature"]          # its own only
    assert _names(Net().stem[0].named_parameters("b", False)) == ["b.scale"]        # torch's argument order
    assert _names(shared.named_parameters(remove_duplicate=False)) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                                                       "2.0.weight", "2.0.bias", "2.1.weight",
                                                                       "2.1.bias"]
    for call, message in ((lambda: Net().parameters(recurse="no"), "parameters: recurse must be True or False"),
                          (lambda: list(Net().named_buffers(remove_duplicate=None)),
                           "named_buffers: remove_duplicate must be True or False"),
                          (lambda: list(Net().named_parameters(prefix=None)), "named_parameters: prefix must be a str")):
        with pytest.raises(TypeError, match=message):
            call()


def test_zero_grad_sets_to_none_or_zeros_as_torch(torch):
    ours, theirs = Net(), _torch_net(torch)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval(), theirs.eval()
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    for set_to_none in (False, True):
        sum(o.sum() for o in ours(msn.tensor(x))).backward()
        sum(o.sum() for o in theirs(torch.tensor(x))).backward()
        ours.zero_grad(set_to_none=set_to_none)
        theirs.zero_grad(set_to_none=set_to_none)
        for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            if set_to_none:
                assert p.grad is None and tp.grad is None, name
            else:
                assert tp.grad is not None and not tp.grad.any(), name
                np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy(), err_msg=name)
                assert p.grad.dtype == p.dtype, name
    ours.zero_grad(set_to_none=False)                        # a gradient that is None stays None, as torch's
    assert all(p.grad is None for p in ours.parameters())
    w = nn.Parameter(np.ones((2, 3), np.float32))
    w.sum().backward()                                       # a read-only broadcast view as its gradient
    optimizer = msn.optim.SGD([w], lr=0.1)
    optimizer.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((2, 3), np.float32))
    optimizer.zero_grad()
    assert w.grad is None
    with pytest.raises(TypeError, match="zero_grad: set_to_none must be True or False, got 'no'"):
        nn.Sequential().zero_grad(set_to_none="no")


def test_sequential_and_module_list_containers():
    seq = nn.Sequential(nn.ReLU(), nn.Tanh())
    assert len(seq) == 2 and isinstance(seq[1], nn.Tanh) and isinstance(seq[-1], nn.Tanh)
    assert [type(m).__name__ for m in seq] == ["ReLU", "Tanh"]
    np.testing.assert_allclose(seq(t64([-1.0, 1.0])).numpy(), [0.0, np.tanh(1.0)])
    ml = nn.ModuleList([nn.ReLU()]).append(nn.BatchNorm2d(2))
    assert len(ml) == 2 and [n for n, _ in ml.named_parameters()] == ["1.weight", "1.bias"]
    with pytest.raises(TypeError, match="Sequential holds Modules, got a ufunc as item 1"):
        nn.Sequential(nn.ReLU(), np.tanh)
    with pytest.raises(TypeError, match="ModuleList holds Modules"):
        nn.ModuleList([3])
    with pytest.raises(NotImplementedError, match="Module does not define forward"):
        nn.Module()(1)


def test_load_state_dict_reports_what_did_not_fit_as_torch(torch):
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
    twin = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.ReLU())
    state = net.state_dict()
    del state["0.bias"]
    state["extra"] = np.zeros(1)
    missing, unexpected = net.load_state_dict(state, strict=False)
    theirs = twin.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, strict=False)
    assert (missing, unexpected) == (["0.bias"], ["extra"]) == (theirs.missing_keys, theirs.unexpected_keys)
    assert net.load_state_dict(net.state_dict()) == ([], [])


def test_load_state_dict_takes_torchs_keywords(torch):
    net, twin = nn.Conv2d(1, 2, 1), torch.nn.Conv2d(1, 2, 1)
    state = {"weight": np.full((2, 1, 1, 1), 0.5, dtype=np.float32), "bias": np.zeros(2, dtype=np.float32)}
    assert net.load_state_dict(state_dict=state, strict=True) == ([], [])
    twin.load_state_dict(state_dict={k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    np.testing.assert_array_equal(net.weight.numpy(), twin.weight.detach().numpy())


def test_train_mode_must_be_a_flag():
    net = nn.Sequential(nn.Conv2d(1, 2, 1))
    for bad in ("eval", None, 1):
        with pytest.raises(ValueError, match="train: mode must be True or False"):
            net.train(bad)
    assert net.train(np.bool_(False)).training is False


def test_a_slice_of_a_container_is_a_container_as_in_pytorch():
    from minisegnet import nn
    seq = nn.Sequential(nn.ReLU(), nn.Identity(), nn.ReLU())
    part = seq[0:2]
    assert isinstance(part, nn.Sequential) and len(part) == 2 and part[1] is seq[1]
    x = msn.tensor(np.array([-1.0, 2.0]))
    assert part(x).numpy().tolist() == [0.0, 2.0]
    listed = nn.ModuleList([nn.ReLU(), nn.Identity()])[1:]
    assert type(listed) is nn.ModuleList and len(listed) == 1


def test_sequential_takes_an_ordered_dict_as_torch_does(torch):
    """``Sequential(OrderedDict(...))`` was refused ('got a OrderedDict as item 0'); its children
    are named by the dict's keys, so the state-dict keys are torch's."""
    from collections import OrderedDict

    ours = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), act=nn.ReLU()))
    twin = torch.nn.Sequential(OrderedDict(conv=torch.nn.Conv2d(3, 4, 3), act=torch.nn.ReLU()))
    assert list(ours.state_dict()) == list(twin.state_dict()) == ["conv.weight", "conv.bias"]
    assert len(ours) == 2 and isinstance(ours[0], nn.Conv2d)
    x = np.random.default_rng(0).standard_normal((1, 3, 5, 5)).astype(np.float32)
    twin.load_state_dict({k: torch.tensor(np.array(v)) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(ours(msn.tensor(x)).numpy(), twin(torch.tensor(x)).detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="a child cannot be named 'forward'"):
        nn.Sequential(OrderedDict(forward=nn.ReLU()))
    with pytest.raises(TypeError, match="Sequential holds Modules, got a int as 'a'"):
        nn.Sequential(OrderedDict(a=3))


def test_module_list_takes_none_and_extends(torch):
    """``ModuleList(None)`` (torch's default) was a raw 'NoneType is not iterable'; ``extend`` did not exist."""
    ours = nn.ModuleList(None).extend([nn.ReLU(), nn.Conv2d(1, 1, 1)])
    twin = torch.nn.ModuleList(None).extend([torch.nn.ReLU(), torch.nn.Conv2d(1, 1, 1)])
    assert len(ours) == len(twin) == 2
    assert list(ours.state_dict()) == list(twin.state_dict()) == ["1.weight", "1.bias"]


def _pair(torch):
    """The same small net in both libraries: a conv, a BatchNorm, a container."""
    ours = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ModuleList([nn.ReLU(), nn.Conv2d(3, 1, 1)]))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3),
                                 torch.nn.ModuleList([torch.nn.ReLU(), torch.nn.Conv2d(3, 1, 1)]))
    return ours, theirs


def test_apply_visits_children_first_then_the_module_as_torch(torch):
    ours, theirs = _pair(torch)
    seen_ours, seen_theirs = [], []
    assert ours.apply(lambda m: seen_ours.append(type(m).__name__)) is ours
    theirs.apply(lambda m: seen_theirs.append(type(m).__name__))
    assert seen_ours == seen_theirs and len(seen_ours) == 6
    ours.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Conv2d) else None)   # the idiom
    assert all((m.weight.numpy() == 0).all() for m in ours.modules() if isinstance(m, nn.Conv2d))
    with pytest.raises(TypeError, match="apply: fn must be a function"):
        ours.apply(3)


def test_requires_grad_freezes_parameters_and_the_optimizer_leaves_them(torch):
    ours = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 1, 1))
    frozen = ours[0]
    assert frozen.requires_grad_(False) is frozen
    assert [p.requires_grad for p in ours.parameters()] == [False, False] + [True] * 4
    before = frozen.weight.numpy().copy()
    opt = msn.optim.SGD(ours.parameters(), lr=0.1)
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32))
    ours(x).sum().backward()
    opt.step()
    assert frozen.weight.grad is None and (frozen.weight.numpy() == before).all()
    assert ours[1].weight.grad is not None and (ours[1].weight.numpy() != 1).any()     # the others learn
    ours.requires_grad_()
    assert all(p.requires_grad for p in ours.parameters())


def test_tensor_requires_grad_as_torch():
    t = msn.tensor(np.ones(3, np.float32))
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(TypeError, match="only a floating-point tensor"):
        msn.tensor(np.ones(3, np.int64)).requires_grad_()
    with pytest.raises(RuntimeError, match="only a leaf's requires_grad can be turned off"):
        (t * 2).requires_grad_(False)
    with pytest.raises(TypeError, match="requires_grad must be True or False"):
        t.requires_grad_(1)


def test_register_buffer_is_saved_cast_and_listed_as_torch(torch):
    ours, theirs = nn.Conv2d(1, 1, 1), torch.nn.Conv2d(1, 1, 1)
    ours.register_buffer("scale", msn.tensor(np.full(2, 3.0, np.float32)))
    theirs.register_buffer("scale", torch.full((2,), 3.0))
    ours.register_buffer("cache", msn.tensor(np.zeros(2, np.float32)), persistent=False)
    theirs.register_buffer("cache", torch.zeros(2), persistent=False)
    ours.register_buffer("unset", None)
    theirs.register_buffer("unset", None)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias", "scale"]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()] == ["scale", "cache"]
    ours.load_state_dict({k: v.numpy() * 2 for k, v in theirs.state_dict().items()})
    np.testing.assert_array_equal(ours.scale.numpy(), [6.0, 6.0])
    assert ours.to(np.float64).scale.dtype == np.float64 and ours.cache.dtype == np.float64
    ours.register_buffer("cache", msn.tensor(np.ones(2)))                  # again, persistent now
    assert list(ours.state_dict())[-1] == "cache"


@pytest.mark.parametrize("call, kind, message", [
    (lambda m: m.register_buffer("a.b", None), KeyError, "contain no '.'"),
    (lambda m: m.register_buffer(3, None), TypeError, "name must be a str"),
    (lambda m: m.register_buffer("weight", None), KeyError, "already has an attribute 'weight'"),
    (lambda m: m.register_buffer("b", np.ones(2)), TypeError, "must be a Tensor or None, got ndarray"),
    (lambda m: m.register_buffer("b", nn.Parameter(np.ones(2))), TypeError, "is a Parameter"),
    (lambda m: m.register_buffer("b", None, persistent=0), TypeError, "persistent must be True or False"),
    (lambda m: m.add_module("", nn.ReLU()), KeyError, "non-empty"),
    (lambda m: m.add_module("stride", nn.ReLU()), KeyError, "already has an attribute 'stride'"),
    (lambda m: m.add_module("act", np.ones(2)), TypeError, "must be a Module or None"),
    (lambda m: m.get_submodule("act"), AttributeError, "Conv2d has no attribute 'act'"),
    (lambda m: m.get_submodule("weight"), AttributeError, "not a Module: 'weight'"),
])
def test_adding_to_the_tree_refuses_what_torch_refuses(call, kind, message):
    with pytest.raises(kind, match=message):
        call(nn.Conv2d(1, 1, 1))


def test_add_module_and_get_submodule_as_torch(torch):
    ours, theirs = _pair(torch)
    ours.add_module("head", nn.Conv2d(1, 2, 1))
    theirs.add_module("head", torch.nn.Conv2d(1, 2, 1))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.get_submodule("2.1") is ours[2][1] and ours.get_submodule("") is ours
    assert type(theirs.get_submodule("2.1")).__name__ == type(ours.get_submodule("2.1")).__name__
    ours.add_module("head", nn.ReLU())                                     # replaces, as torch
    assert isinstance(ours.head, nn.ReLU)


@pytest.mark.parametrize("index", [0, 1, 2, -1, -2])
def test_insert_renumbers_the_children_as_torch(torch, index):
    ours = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.ReLU())
    ours.insert(index, nn.Sigmoid())
    theirs.insert(index, torch.nn.Sigmoid())
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    listed = nn.ModuleList([nn.ReLU()])
    assert listed.insert(0, nn.Tanh()) is None and torch.nn.ModuleList([]).insert(0, torch.nn.Tanh()) is None
    assert ours.insert(0, nn.ReLU()) is ours and theirs.insert(0, torch.nn.ReLU()) is theirs   # a Sequential: itself
    assert [type(m).__name__ for m in listed] == ["Tanh", "ReLU"] and [n for n, _ in listed.named_children()] == ["0", "1"]
    with pytest.raises(IndexError, match="index 3 is out of range for 2 modules"):
        nn.Sequential(nn.ReLU(), nn.ReLU()).insert(3, nn.ReLU())
    with pytest.raises(ValueError, match="modules must be named 0, 1"):
        from collections import OrderedDict
        nn.Sequential(OrderedDict(a=nn.ReLU())).insert(0, nn.ReLU())


def test_train_asks_each_child_so_an_overridden_train_is_kept(torch):
    """The fine-tuning idiom: a block whose train() keeps its BatchNorm frozen. PyTorch calls each
    child's train(); setting every module's flag directly bypassed the override."""
    def make(lib):
        class Block(lib.Module):
            def __init__(self):
                super().__init__()
                self.bn = lib.BatchNorm2d(2)

            def train(self, mode=True):
                super().train(mode)
                self.bn.eval()
                return self

        class Net(lib.Module):
            def __init__(self):
                super().__init__()
                self.block, self.head = Block(), lib.Conv2d(2, 2, 1)
        return Net()
    ours, theirs = make(nn), make(torch.nn)
    for mode in (True, False, True):
        ours.train(mode)
        theirs.train(mode)
        assert [m.training for m in ours.modules()] == [m.training for m in theirs.modules()]
    assert ours.training and not ours.block.bn.training


def test_a_module_held_twice_is_one_child_but_two_entries_as_torch(torch):
    """children() and apply() reach a module held under two names once (an init that is not
    idempotent ran twice); a container still counts and iterates every entry."""
    def make(lib):
        class M(lib.Module):
            def __init__(self):
                super().__init__()
                self.a = lib.Conv2d(1, 1, 1)
                self.b = self.a
                self.r = lib.ReLU()
        return M()
    ours, theirs = make(nn), make(torch.nn)
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()] == ["a", "r"]
    calls, tcalls = [], []
    ours.apply(lambda m: calls.append(type(m).__name__))
    theirs.apply(lambda m: tcalls.append(type(m).__name__))
    assert calls == tcalls == ["Conv2d", "ReLU", "M"]
    assert list(ours.state_dict()) == list(theirs.state_dict())           # saved under both names
    relu, trelu = nn.ReLU(), torch.nn.ReLU()
    listed, tlisted = nn.ModuleList([relu, relu]), torch.nn.ModuleList([trelu, trelu])
    assert len(listed) == len(tlisted) == 2 and len(list(listed)) == len(list(tlisted)) == 2
    assert len(list(listed.children())) == len(list(tlisted.children())) == 1


def _entry_names(container):
    return [(name, type(m).__name__) for name, m in container._modules.items()] if hasattr(container, "_modules") \
        else [(name, type(m).__name__) for name, m in container._entries()]


def test_container_item_assignment_deletion_pop_and_addition_as_torch(torch):
    def pair(*kinds):
        return (nn.Sequential(*(getattr(nn, k)() for k in kinds)),
                torch.nn.Sequential(*(getattr(torch.nn, k)() for k in kinds)))
    for edit in (lambda s, lib: s.__setitem__(-1, lib.Sigmoid()),     # model.head[-1] = ...
                 lambda s, lib: s.__delitem__(1),
                 lambda s, lib: s.__delitem__(slice(0, 2)),
                 lambda s, lib: s.pop(0),
                 lambda s, lib: s.pop(-1)):
        ours, theirs = pair("ReLU", "Tanh", "ReLU6")
        edit(ours, nn)
        edit(theirs, torch.nn)
        assert _entry_names(ours) == _entry_names(theirs)
    ours, theirs = pair("ReLU", "Tanh")
    assert _entry_names(ours + nn.Sequential(nn.Sigmoid())) == _entry_names(theirs + torch.nn.Sequential(torch.nn.Sigmoid()))
    listed, tlisted = nn.ModuleList([nn.ReLU()]), torch.nn.ModuleList([torch.nn.ReLU()])
    listed += [nn.Tanh()]
    tlisted += [torch.nn.Tanh()]
    assert _entry_names(listed) == _entry_names(tlisted) == [("0", "ReLU"), ("1", "Tanh")]
    assert _entry_names(listed + [nn.Sigmoid()]) == _entry_names(tlisted + [torch.nn.Sigmoid()])
    assert isinstance(listed[1:], nn.ModuleList) and _entry_names(listed[1:]) == [("0", "Tanh")]


def test_a_slice_of_a_sequential_keeps_its_names_as_torch(torch):
    from collections import OrderedDict
    ours = nn.Sequential(OrderedDict(stem=nn.Conv2d(3, 4, 3), act=nn.ReLU(), head=nn.Conv2d(4, 2, 1)))
    theirs = torch.nn.Sequential(OrderedDict(stem=torch.nn.Conv2d(3, 4, 3), act=torch.nn.ReLU(),
                                             head=torch.nn.Conv2d(4, 2, 1)))
    for part in (slice(None, 2), slice(1, None), slice(None, None, -1)):
        assert list(ours[part].state_dict()) == list(theirs[part].state_dict())
        assert _entry_names(ours[part]) == _entry_names(theirs[part])
    numbered = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    assert list(numbered[1:].state_dict()) == ["2.weight", "2.bias"]


@pytest.mark.parametrize("call, kind, message", [
    (lambda s: s[5], IndexError, "Sequential: index 5 is out of range for 2 modules"),
    (lambda s: s[-3], IndexError, "index -3 is out of range"),
    (lambda s: s["conv"], TypeError, "Sequential indices must be integers or slices, got 'conv'"),
    (lambda s: s.__setitem__(0, np.ones(2)), TypeError, "Sequential holds Modules, got a ndarray as item 0"),
    (lambda s: s + [nn.ReLU()], ValueError, "only a Sequential can be added"),
    (lambda s: s.pop(7), IndexError, "index 7 is out of range"),
])
def test_container_errors_name_the_container_and_the_index(call, kind, message):
    with pytest.raises(kind, match=message):
        call(nn.Sequential(nn.ReLU(), nn.Tanh()))


def test_load_state_dict_reports_keys_in_torchs_order_and_takes_an_old_batchnorm_state(torch):
    """Missing keys in the model's order and unexpected ones in the state's (they were sorted); a
    BatchNorm state without num_batches_tracked (older torch checkpoints) loads, as in PyTorch."""
    ours = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Conv2d(3, 1, 1))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Conv2d(3, 1, 1))
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    partial = {"zz.extra": np.ones(1), **{k: v for k, v in state.items() if k.startswith("1.")}, "aa.extra": np.ones(1)}
    result = ours.load_state_dict(partial, strict=False)
    expected = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in partial.items()}, strict=False)
    assert result.missing_keys == expected.missing_keys == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert result.unexpected_keys == expected.unexpected_keys == ["zz.extra", "aa.extra"]
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    ours[1].num_batches_tracked.data[...] = 5
    ours.load_state_dict(old)                                   # strict: no error, as torch
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in old.items()})
    assert int(ours[1].num_batches_tracked.item()) == 5
    np.testing.assert_array_equal(ours[0].weight.numpy(), state["0.weight"])
    with pytest.raises(RuntimeError, match=r"missing keys \['1.running_mean'\]"):
        ours.load_state_dict({k: v for k, v in state.items() if k != "1.running_mean"})


def test_register_parameter_get_parameter_get_buffer_float_double_as_torch(torch):
    ours, theirs = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2)), \
        torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    ours[0].register_parameter("scale", nn.Parameter(np.ones(2, np.float32)))
    theirs[0].register_parameter("scale", torch.nn.Parameter(torch.ones(2)))
    ours[0].register_parameter("unset", None)
    theirs[0].register_parameter("unset", None)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours.get_parameter("0.scale") is ours[0].scale and ours.get_buffer("1.running_var") is ours[1].running_var
    for call, kind, message in (
            (lambda: ours.get_parameter("1.running_var"), AttributeError, "BatchNorm2d has no Parameter .running_var."),
            (lambda: ours.get_buffer("1.weight"), AttributeError, "'weight' is not a buffer"),
            (lambda: ours.get_parameter("2.weight"), AttributeError, "Sequential has no attribute '2'"),
            (lambda: ours[0].register_parameter("w", np.ones(2)), TypeError, "must be a Parameter or None"),
            (lambda: ours[0].register_parameter("stride", None), KeyError, "already has an attribute 'stride'")):
        with pytest.raises(kind, match=message):
            call()
    assert ours.double() is ours and all(p.dtype == np.float64 for p in ours.parameters())
    assert ours[1].running_mean.dtype == np.float64 and ours.float()[0].weight.dtype == np.float32
    bn = nn.BatchNorm2d(3, dtype=np.float64)
    assert bn.weight.dtype == bn.running_var.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    with pytest.raises(TypeError, match="BatchNorm2d: dtype must be a NumPy floating-point dtype"):
        nn.BatchNorm2d(3, dtype=np.int32)


@pytest.mark.parametrize("name, args, kwargs", [
    ("Conv2d", (3, 4, 3), {}), ("Conv2d", (3, 4, 3), dict(padding=1, bias=False)),
    ("Conv2d", (4, 4, 3), dict(padding="same", dilation=2, groups=2, padding_mode="reflect")),
    ("ConvTranspose2d", (4, 2, 2), dict(stride=2)),
    ("ConvTranspose2d", (4, 2, 3), dict(stride=2, padding=1, output_padding=1, bias=False)),
    ("MaxPool2d", (2,), {}), ("MaxPool2d", (3,), dict(stride=2, padding=1, return_indices=True, ceil_mode=True)),
    ("MaxUnpool2d", (2,), {}), ("AvgPool2d", (2,), {}), ("AdaptiveAvgPool2d", (1,), {}),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear", align_corners=False)),
    ("ReLU", (), {}), ("ReLU", (), dict(inplace=True)), ("LeakyReLU", (0.2,), dict(inplace=True)),
    ("ReLU6", (), dict(inplace=True)), ("Dropout", (0.2,), {}), ("Dropout2d", (), dict(inplace=True)),
    ("Sigmoid", (), {}), ("Softmax", (1,), {}), ("Identity", (), {}),
    ("CrossEntropyLoss", (), dict(ignore_index=255)), ("BCEWithLogitsLoss", (), {}), ("MSELoss", (), {}),
    ("BatchNorm2d", (3,), {}), ("BatchNorm2d", (3,), dict(affine=False, momentum=None, bias=False)),
])
def test_a_layer_prints_as_torchs_does(torch, name, args, kwargs):
    """print(model) reads as PyTorch's: defaults left out, strings unquoted, flags that were set shown."""
    assert repr(getattr(nn, name)(*args, **kwargs)) == repr(getattr(torch.nn, name)(*args, **kwargs))


def test_the_tree_and_container_rules_a_mutation_review_found_untested(torch):
    """Each assertion here caught a mutation that the tests above let through."""
    s = nn.Sequential(nn.ReLU())
    for register in (lambda: s.register_buffer("0", msn.tensor(np.zeros(1))),
                     lambda: s.register_parameter("0", nn.Parameter(np.zeros(1, np.float32)))):
        with pytest.raises(KeyError, match="already has an attribute '0'"):      # no replacing a child
            register()
    assert nn.Sequential().add_module("a", nn.ReLU()) is None                      # as torch's
    m = nn.Conv2d(1, 1, 1)
    m.register_buffer("x", msn.tensor(np.zeros(1)))
    m.register_buffer("x", msn.tensor(np.ones(1)))
    assert m._buffers == ("x",) and [n for n, _ in m.named_buffers(remove_duplicate=False)] == ["x"]
    with pytest.raises(TypeError, match="must be a Parameter or None"):
        nn.Conv2d(1, 1, 1).register_parameter("w", msn.tensor(np.zeros(1, np.float32)))
    with pytest.raises(TypeError, match="requires_grad must be True or False"):
        nn.ReLU().requires_grad_(1)
    s = nn.Sequential(nn.ReLU(), nn.Tanh())
    assert isinstance(s[-2], nn.ReLU)
    s[-2] = nn.Sigmoid()
    assert isinstance(s[0], nn.Sigmoid)
    with pytest.raises(TypeError, match="holds Modules.*to insert"):
        nn.ModuleList([nn.ReLU()]).insert(0, np.ones(2))
    s = nn.Sequential(nn.ReLU(), nn.Tanh())
    assert isinstance(s.pop(), nn.Tanh) and len(s) == 1                          # pop's default: the last
    with pytest.raises(TypeError, match="to add"):
        nn.ModuleList([nn.ReLU()]) + [np.ones(2)]
    listed = nn.ModuleList([nn.ReLU()])
    same = listed
    listed += [nn.Tanh()]
    assert listed is same and len(same) == 2                                     # += in place, as torch's
    for combine in (lambda a, b: a + b, lambda a, b: a.__iadd__(b)):
        with pytest.raises(ValueError, match="only a Sequential"):                # torch's kind of error
            combine(nn.Sequential(nn.ReLU()), nn.ModuleList([nn.Tanh()]))
        with pytest.raises(ValueError):
            combine(torch.nn.Sequential(torch.nn.ReLU()), torch.nn.ModuleList([torch.nn.Tanh()]))
    joined = nn.Sequential(nn.ReLU())
    joined += nn.Sequential(nn.Tanh())
    assert len(joined) == 2
    r, x = nn.Tanh(), np.linspace(-2, 2, 5).astype(np.float32)
    np.testing.assert_allclose(nn.Sequential(r, r)(msn.tensor(x)).numpy(), np.tanh(np.tanh(x)), rtol=1e-6)


def test_a_parameter_or_buffer_place_takes_only_its_kind_as_torch(torch):
    """``conv.weight = tensor`` silently unregistered the weight (gone from parameters(),
    state_dict() and any optimizer made later); torch refuses it, and a non-Tensor buffer."""
    c = nn.Conv2d(1, 1, 1)
    with pytest.raises(TypeError, match=r"cannot assign Tensor as parameter 'weight' of Conv2d"):
        c.weight = msn.tensor(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(TypeError):
        torch.nn.Conv2d(1, 1, 1).weight = torch.zeros(1, 1, 1, 1)
    assert [n for n, _ in c.named_parameters()] == ["weight", "bias"]
    c.weight = nn.Parameter(np.ones((1, 1, 1, 1), np.float32))          # a Parameter, or None, is fine
    c.bias = None
    assert [n for n, _ in c.named_parameters()] == ["weight"]
    for layer in (c, nn.Conv2d(1, 1, 1, bias=False), nn.BatchNorm2d(2, affine=False)):    # an empty place too
        with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'bias'"):
            layer.bias = msn.tensor(np.zeros(1, np.float32))
    with pytest.raises(TypeError):
        torch.nn.Conv2d(1, 1, 1, bias=False).bias = torch.zeros(1)
    c.bias = nn.Parameter(np.zeros(1, np.float32))                       # filled again: listed again
    assert [n for n, _ in c.named_parameters()] == ["weight", "bias"]
    bn = nn.BatchNorm2d(2)
    with pytest.raises(TypeError, match=r"cannot assign ndarray as buffer 'running_mean' of BatchNorm2d"):
        bn.running_mean = np.zeros(2, np.float32)
    with pytest.raises(TypeError):
        torch.nn.BatchNorm2d(2).running_mean = np.zeros(2, np.float32)
    bn.running_mean = msn.tensor(np.ones(2, np.float32))
    assert bn.state_dict()["running_mean"].tolist() == [1.0, 1.0]


def test_to_casts_the_gradients_too_as_torch(torch):
    c = nn.Conv2d(1, 2, 3)
    c(msn.tensor(np.ones((1, 1, 5, 5), np.float32))).sum().backward()
    before = c.weight.grad.numpy().copy()
    c.double()
    assert c.weight.grad is not None and c.weight.grad.dtype == np.float64     # it was dropped
    np.testing.assert_array_equal(c.weight.grad.numpy(), before)
    t = torch.nn.Conv2d(1, 2, 3)
    t(torch.ones(1, 1, 5, 5)).sum().backward()
    assert t.double().weight.grad.dtype == torch.float64


@pytest.mark.parametrize("kwargs", [dict(bias=False), dict(affine=False, bias=False), dict(bias=True)])
def test_batch_norm_without_a_bias_as_torch(torch, kwargs):
    """torch 2.13's keyword-only ``bias``: a weight but no bias (state keys as torch's), and the
    forward and weight gradient of a copy of torch's layer."""
    ours, theirs = nn.BatchNorm2d(3, **kwargs), torch.nn.BatchNorm2d(3, **kwargs).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    ours.double()
    y, ty = ours(msn.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), atol=1e-12)
    with pytest.raises(TypeError, match="bias must be True or False"):
        nn.BatchNorm2d(3, bias=None)


def test_module_dict_as_torch(torch):
    """ModuleDict: order (a replaced entry keeps its place, a new one goes last), state keys,
    repr, the dict methods, update from a mapping or pairs, and torch's refusals."""
    ours = nn.ModuleDict({"b": nn.Conv2d(1, 2, 3), "a": nn.ReLU()})
    theirs = torch.nn.ModuleDict({"b": torch.nn.Conv2d(1, 2, 3), "a": torch.nn.ReLU()})
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    for d, conv, sig in ((ours, nn.Conv2d(2, 1, 1), nn.Sigmoid()), (theirs, torch.nn.Conv2d(2, 1, 1), torch.nn.Sigmoid())):
        d["b"] = conv                                        # replaced: keeps its place
        d.update([("c", sig)])
        d.update({"a": d["a"]})
    assert list(ours) == list(theirs) == ["b", "a", "c"] and len(ours) == 3
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [k for k, _ in ours.items()] == list(ours.keys()) and ours.values()[2] is ours["c"]
    assert "a" in ours and "z" not in ours and 3 not in ours
    assert isinstance(ours.pop("a"), nn.ReLU) and list(ours) == ["b", "c"]
    del ours["c"]
    assert list(ours) == ["b"] and sum(int(p.size) for p in ours.parameters()) == 3
    ours.clear()
    assert len(ours) == 0 and list(ours.parameters()) == []
    with pytest.raises(KeyError):
        ours["missing"]
    with pytest.raises(KeyError, match="already has an attribute 'keys'"):
        ours["keys"] = nn.ReLU()
    with pytest.raises(KeyError):
        theirs["keys"] = torch.nn.ReLU()
    with pytest.raises(TypeError, match="ModuleDict holds Modules, got a int"):
        ours["x"] = 3
    with pytest.raises(ValueError, match="element 0 must be a \\(name, module\\) pair"):
        nn.ModuleDict([("a", nn.ReLU(), 1)])
    with pytest.raises(TypeError, match="must be a mapping or an iterable"):
        nn.ModuleDict(nn.ReLU())


# ---- from a mutation review: checks no test made before ----
def test_a_parameter_shared_by_two_modules_is_listed_once_as_torch(torch):
    """One Parameter held by two different (not shared) modules: named_parameters and
    parameters list it once, under its first name; state_dict keeps both names."""
    a, b = nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 1)
    b.weight = a.weight
    ours = nn.Sequential(a, b)
    ta, tb = torch.nn.Conv2d(2, 2, 1), torch.nn.Conv2d(2, 2, 1)
    tb.weight = ta.weight
    theirs = torch.nn.Sequential(ta, tb)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] \
        == ["0.weight", "0.bias", "1.bias"]
    assert len(ours.parameters()) == len(list(theirs.parameters())) == 3
    assert [n for n, _ in ours.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_parameters(remove_duplicate=False)]
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("shape", [(1, 2), (2, 1), (3,)])
def test_load_state_dict_refuses_a_shape_that_numpy_would_broadcast_or_reshape(torch, shape):
    """A bias of shape (2,) takes no (1, 2) or (2, 1) array, even one numpy could assign:
    a RuntimeError naming the key (as torch's), and the model is left as it was."""
    ours = nn.Conv2d(2, 2, 1)
    before = ours.state_dict()
    state = dict(before, bias=np.ones(shape, np.float32))
    with pytest.raises(RuntimeError, match="'bias' has shape"):
        ours.load_state_dict(state)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    theirs = torch.nn.Conv2d(2, 2, 1)
    with pytest.raises(RuntimeError, match="size mismatch for bias"):
        theirs.load_state_dict(dict(theirs.state_dict(), bias=torch.ones(shape)))


def test_load_state_dict_refuses_a_weight_of_shape_transposed():
    ours = nn.Conv2d(2, 3, 1)                                  # weight (3, 2, 1, 1)
    state = dict(ours.state_dict(), weight=np.ones((2, 3, 1, 1), np.float32))
    with pytest.raises(RuntimeError, match="'weight' has shape"):
        ours.load_state_dict(state)


def test_to_leaves_an_integer_buffer_integer_as_torch(torch):
    """double()/float()/to() cast floating buffers only: BatchNorm's num_batches_tracked stays int64."""
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    ours.double()
    theirs.double()
    assert ours.running_mean.dtype == np.float64 and str(theirs.running_mean.dtype) == "torch.float64"
    assert ours.num_batches_tracked.dtype == np.int64 and str(theirs.num_batches_tracked.dtype) == "torch.int64"
    ours.to(np.float32)
    assert ours.num_batches_tracked.dtype == np.int64
    assert ours.state_dict()["num_batches_tracked"].dtype == np.int64


def test_a_module_list_index_just_past_the_end_is_torchs_index_error(torch):
    ours = nn.ModuleList([nn.ReLU(), nn.Identity()])
    theirs = torch.nn.ModuleList([torch.nn.ReLU(), torch.nn.Identity()])
    for lst in (ours, theirs):
        with pytest.raises(IndexError, match="index 2 is out of range"):
            lst[2]
        with pytest.raises(IndexError, match="index 2 is out of range"):
            lst[2] = nn.ReLU() if lst is ours else torch.nn.ReLU()
    assert len(ours) == 2


@pytest.mark.parametrize("index", [slice(None, None, 2), slice(None, None, -1), slice(1, None, 2), slice(-1, 0, -1)])
def test_a_module_list_slice_with_a_step_as_torch(torch, index):
    mods = [nn.ReLU(), nn.Identity(), nn.Sigmoid(), nn.Dropout(0.1)]
    tmods = [torch.nn.ReLU(), torch.nn.Identity(), torch.nn.Sigmoid(), torch.nn.Dropout(0.1)]
    ours, theirs = nn.ModuleList(mods)[index], torch.nn.ModuleList(tmods)[index]
    assert isinstance(ours, nn.ModuleList)
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert [m is mods[k] for k, m in zip(range(len(mods))[index], ours)] == [True] * len(theirs)


@pytest.mark.parametrize("value", [5, "conv", msn.tensor(np.ones(2, np.float32))])
def test_a_child_modules_place_refuses_anything_but_a_module_or_none(value):
    """PyTorch: "cannot assign 'int' as child module". The old code replaced the child silently,
    dropping it from children(), parameters() and state_dict()."""
    seq = nn.Sequential(nn.Conv2d(1, 1, 1))
    with pytest.raises(TypeError, match="cannot assign .* as child module '0' of Sequential"):
        setattr(seq, "0", value)
    assert len(list(seq.parameters())) == 2
    setattr(seq, "0", nn.ReLU())                 # another module: fine
    setattr(seq, "0", None)                      # None: fine, as in PyTorch
    assert list(seq.parameters()) == []


def test_a_parameter_assigned_to_a_buffers_name_becomes_a_parameter(torch):
    """PyTorch moves the name from the buffers to the parameters; the old code listed it as both."""
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    ours.running_mean = nn.Parameter(np.zeros(3, np.float32))
    theirs.running_mean = torch.nn.Parameter(torch.zeros(3))
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_repr_shows_a_module_held_under_two_names_under_both(torch):
    class Ours(nn.Module):
        def __init__(self):
            self.a = nn.ReLU()
            self.c = self.a

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.ReLU()
            self.c = self.a

    assert repr(Ours()).replace("Ours", "M") == repr(Theirs()).replace("Theirs", "M")


def test_deleting_a_buffer_unregisters_it_as_torch(torch):
    """``del bn.running_mean`` left the name in ``_buffers``: state_dict(), named_buffers(), buffers(),
    to() and load_state_dict() then died of a bare AttributeError; PyTorch drops the buffer."""
    ours, theirs = nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    del ours.running_mean
    del theirs.running_mean
    assert list(ours.state_dict()) == list(theirs.state_dict()) \
        == ["weight", "bias", "running_var", "num_batches_tracked"]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert len(ours.buffers()) == 2
    ours.to(np.float64)
    assert ours.running_var.dtype == np.float64
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    # the name is free again: a plain attribute (not saved), or a buffer registered anew
    ours.running_mean = np.zeros(2)
    theirs.running_mean = [0, 0]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_deleting_a_parameter_frees_its_name_as_torch(torch):
    """``del conv.bias`` kept 'bias' a parameter's place: a plain tensor (weight norm's recomputed
    weight) or a buffer there was refused, where PyTorch takes both."""
    ours, theirs = nn.Conv2d(1, 1, 1), torch.nn.Conv2d(1, 1, 1)
    del ours.bias
    del theirs.bias
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == ["weight"]
    ours.register_buffer("bias", msn.tensor(np.zeros(1, np.float32)))
    theirs.register_buffer("bias", torch.zeros(1))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    del ours.weight
    del theirs.weight
    ours.weight = msn.tensor(np.ones((1, 1, 1, 1), np.float32))      # a plain attribute, as torch's
    theirs.weight = torch.ones(1, 1, 1, 1)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias"]


def test_a_module_list_of_repeated_modules_prints_as_torchs_does(torch):
    """PyTorch's ModuleList prints a run of equal entries once, '(0-2): 3 x ReLU()'; ours listed each."""
    ours = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.Conv2d(1, 1, 1)])
    theirs = torch.nn.ModuleList([torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.Conv2d(1, 1, 1)])
    assert repr(ours) == repr(theirs)


def test_module_list_and_sequential_print_as_torchs_in_the_other_cases(torch):
    """An empty ModuleList is 'ModuleList()'; a multi-line entry is indented under its label; a
    Sequential of equal entries prints each (only ModuleList groups runs), all as PyTorch's."""
    cases = [
        (nn.ModuleList(), torch.nn.ModuleList()),
        (nn.ModuleList([nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), nn.ReLU()]),
         torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU()), torch.nn.ReLU()])),
        (nn.Sequential(nn.ReLU(), nn.ReLU(), nn.ReLU()),
         torch.nn.Sequential(torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.ReLU())),
    ]
    for ours, theirs in cases:
        assert repr(ours) == repr(theirs)
