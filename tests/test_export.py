"""``to_torch``: each model's PyTorch twin (written independently in
``minisegnet.torch_models``) has the same state-dict keys, and with the copied
weights gives the same logits, the same gradients for the same loss and the
same BatchNorm running statistics, in float64 and float32, in train and eval
mode. Also the full-size U-Net's parameter count against the twin's."""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import functional as F, models, shapes
from minisegnet.export import to_torch, torch_twin
from minisegnet.models import FCN, DeepLabV3Plus, SegNet, UNet
from minisegnet.models.fcn import bilinear_kernel
from helpers import assert_close_scaled, assert_twin_gradients_and_buffers


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These models are tiny: PyTorch's thread pool only adds contention (10x slower
    on a busy 2-core machine). Restored after the module."""
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _deeplab(output_stride, rates):
    return DeepLabV3Plus(2, 3, output_stride=output_stride, atrous_rates=rates, width_mult=0.25,
                         aspp_channels=8, low_level_channels=4, decoder_channels=8, dropout=0.0)


# name -> (constructor, input shape); small widths, odd sizes where the model takes them.
CONFIGS = {
    "unet-valid": (lambda: UNet(2, 3, base_channels=2, depth=2, padding="valid"), (2, 2, 44, 52)),
    "unet-same-bn-bilinear": (lambda: UNet(2, 3, base_channels=2, depth=2, padding="same", batch_norm=True,
                                           up_mode="bilinear"), (2, 2, 16, 24)),
    "fcn32s": (lambda: FCN(3, "32s", in_channels=2, width=2, dropout=0.0), (2, 2, 37, 50)),
    "fcn16s": (lambda: FCN(3, "16s", in_channels=2, width=2, dropout=0.0), (2, 2, 37, 50)),
    "fcn8s": (lambda: FCN(3, "8s", in_channels=2, width=2, dropout=0.0), (2, 2, 37, 50)),
    "segnet": (lambda: SegNet(2, 3, base_channels=2, depth=3), (2, 2, 29, 35)),
    "deeplab-os16": (lambda: _deeplab(16, (1, 1)), (2, 2, 49, 66)),
    "deeplab-os8": (lambda: _deeplab(8, (1, 2)), (2, 2, 33, 47)),
}


def _jitter(model, seed=0):
    """Move every weight and BatchNorm statistic off its initial value, so that
    zero-initialised skips, identity BatchNorms and bilinear kernels cannot hide
    a wrong twin."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        xp = msn.backend.get_array_module(p.data)          # the host noise goes where the weight lives
        p.data = p.data + xp.asarray((0.05 * rng.standard_normal(p.shape)).astype(p.dtype))
    for name, buf in model.named_buffers():
        xp = msn.backend.get_array_module(buf.data)
        if name.endswith("running_mean"):
            buf.data = xp.asarray((0.1 * rng.standard_normal(buf.shape)).astype(buf.dtype))
        elif name.endswith("running_var"):
            buf.data = xp.asarray(rng.uniform(0.5, 1.5, buf.shape).astype(buf.dtype))
    return model


def _build(name, dtype, train):
    make, shape = CONFIGS[name]
    model = _jitter(make().to(dtype))
    model.train(train)
    return model, shape


def _compare(torch, model, shape, tol, seed=1):
    """Forward, cross-entropy, backward in both; compare logits, every gradient
    (parameters and input) and every buffer."""
    dtype = next(iter(model.parameters())).dtype
    twin = to_torch(model)
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape).astype(dtype)
    x = msn.tensor(x_np, requires_grad=True)
    tx = torch.tensor(x_np, requires_grad=True)
    logits, tlogits = model(x), twin(tx)
    assert_close_scaled(logits, tlogits, tol, "logits")
    target = rng.integers(0, logits.shape[1], (logits.shape[0],) + logits.shape[2:])
    F.cross_entropy(logits, msn.tensor(target)).backward()
    torch.nn.functional.cross_entropy(tlogits, torch.tensor(target)).backward()
    assert_twin_gradients_and_buffers(model, twin, x, tx, tol)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_logits_gradients_and_buffers_float64(torch, name, train):
    model, shape = _build(name, np.float64, train)
    _compare(torch, model, shape, tol=1e-10)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_logits_and_gradients_float32(torch, name):
    """float32: the same up to rounding. The DeepLabs get 1e-3: their stem's gradient passes back
    through some twenty BatchNorms in training mode, the deepest normalising a few dozen values
    (a batch of 2 on a 4x5 map), and float32 rounding there reaches 5e-4 of the gradient's size;
    the float64 test above holds them to 1e-10."""
    model, shape = _build(name, np.float32, train=True)
    _compare(torch, model, shape, tol=1e-3 if name.startswith("deeplab") else 1e-4)


@given(kind=st.sampled_from(["fcn8s", "segnet", "unet-same", "deeplab"]),
       h=st.integers(17, 40), w=st.integers(17, 40), seed=st.integers(0, 2**16))
@settings(max_examples=6)
def test_parity_on_drawn_input_sizes(torch, kind, h, w, seed):
    """Odd and asymmetric sizes, drawn: any size each model accepts (>= 17, so that
    the DeepLab feature map at output stride 8 is at least 3 x 3 for rate 1)."""
    if kind == "fcn8s":
        model = FCN(2, "8s", in_channels=1, width=2, dropout=0.0)
    elif kind == "segnet":
        model = SegNet(1, 2, base_channels=2, depth=3)
    elif kind == "unet-same":
        model = UNet(1, 2, base_channels=2, depth=2, padding="same", batch_norm=True)
        h, w = h // 4 * 4, w // 4 * 4
    else:
        model = DeepLabV3Plus(1, 2, output_stride=8, atrous_rates=(1,), width_mult=0.25, aspp_channels=4,
                              low_level_channels=4, decoder_channels=4, dropout=0.0)
    _compare(torch, _jitter(model.to(np.float64), seed), (2, 1, h, w), tol=1e-10, seed=seed)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_twin_has_identical_state_dict_keys_and_shapes(torch, name):
    model = CONFIGS[name][0]()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in torch_twin(model).state_dict().items()}
    assert ours == theirs


def test_to_torch_copies_weights_and_keeps_dtype_and_mode(torch):
    model = _jitter(SegNet(1, 2, base_channels=2, depth=2))   # BatchNorm moved off 1 and 0: a twin that
    twin = to_torch(model)                                     # kept its own fresh BatchNorm would show
    assert all(p.dtype == torch.float32 for p in twin.parameters()) and twin.training
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), model.state_dict()[name], err_msg=name)
    model.to(np.float64).eval()
    twin = to_torch(model)
    assert all(p.dtype == torch.float64 for p in twin.parameters())
    assert not twin.training and not any(m.training for m in twin.modules())
    assert twin.encoder[0][0].bn.num_batches_tracked.dtype == torch.int64


def test_trained_model_moves_to_torch(torch):
    """A few optimizer steps in minisegnet, then the twin predicts the same."""
    model = FCN(2, "16s", in_channels=1, width=2, dropout=0.0)
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32))
    target = msn.tensor(np.random.default_rng(1).integers(0, 2, (2, 32, 32)))
    optimizer = msn.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(x), target).backward()
        optimizer.step()
    assert model.score_pool4.weight.numpy().any()     # moved off its zero init
    model.eval()
    with msn.no_grad():
        ours = model(x)
    assert_close_scaled(ours, to_torch(model)(torch.from_numpy(x.numpy())), 1e-4, "logits after training")


def test_to_torch_errors(torch):
    with pytest.raises(TypeError, match="no PyTorch twin for Conv2d"):
        to_torch(msn.nn.Conv2d(1, 1, 3))
    model = UNet(1, 2, base_channels=2, depth=1, padding="same")
    model.head.weight.data = model.head.weight.data.astype(np.float64)
    with pytest.raises(ValueError, match="mix dtypes"):
        to_torch(model)


@pytest.mark.parametrize("factor", [2, 8, 16, 32])
def test_bilinear_kernels_agree_between_the_two_implementations(torch, factor):
    from minisegnet.torch_models import bilinear_upsampling_weight
    np.testing.assert_allclose(bilinear_kernel(3, 2 * factor), bilinear_upsampling_weight(3, factor).numpy(),
                               atol=1e-15)


def _unet_paper_parameter_count(in_channels, num_classes, base=64, depth=4):
    """Count by hand: two 3x3 convs per level, 2x2 up-convs, 1x1 head, biases everywhere."""
    def conv(cin, cout, k):
        return cin * cout * k * k + cout
    widths = [base * 2 ** i for i in range(depth + 1)]
    total, previous = 0, in_channels
    for c in widths:                       # encoder levels and the bottleneck
        total += conv(previous, c, 3) + conv(c, c, 3)
        previous = c
    for i in reversed(range(depth)):       # up-conv halves, then two convs on the concatenation
        total += conv(widths[i + 1], widths[i], 2) + conv(2 * widths[i], widths[i], 3) + conv(widths[i], widths[i], 3)
    return total + conv(base, num_classes, 1)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_full_size_unet_parameter_count_equals_the_twin_and_the_paper(torch, in_channels):
    """The paper's network (1 input channel, 2 classes): 31,030,658 parameters.
    Construction only, no forward."""
    ours = sum(p.size for p in UNet(in_channels=in_channels, num_classes=2).parameters())
    from minisegnet import torch_models
    theirs = sum(p.numel() for p in torch_models.UNet(in_channels=in_channels, num_classes=2).parameters())
    assert ours == theirs == _unet_paper_parameter_count(in_channels, 2)
    if in_channels == 1:
        assert ours == 31_030_658


def test_unet_valid_twin_crops_like_shapes_says(torch):
    """The twin and the model agree on the 188 -> 4 chain too (float32, tiny width)."""
    model = UNet(1, 2, base_channels=1, depth=4)
    _compare(torch, model, (1, 1, 188, 188), tol=1e-4)
    assert shapes.unet_output_size(188) == 4


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
@pytest.mark.parametrize("convs_per_stage", [1, 3])
def test_segnet_twin_keeps_convs_per_stage(torch, convs_per_stage):
    # guards torch_twin passing SegNet's convs_per_stage (the tests' SegNets all use the default 2)
    model = SegNet(1, 2, base_channels=2, depth=2, convs_per_stage=convs_per_stage).to(np.float64).eval()
    twin = to_torch(model)
    x = np.random.default_rng(0).standard_normal((1, 1, 12, 12))
    with msn.no_grad():
        ours = model(msn.tensor(x)).numpy()
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), ours, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("direction", ["extra", "missing"])
def test_state_dict_key_mismatch_names_the_keys_either_way(torch, monkeypatch, direction):
    # guards to_torch's `ours != theirs`: a key only in minisegnet AND a key only in torch are both refused
    model = SegNet(1, 2, base_channels=2, depth=2)
    state = dict(model.state_dict())
    if direction == "extra":
        state["stray.weight"] = np.zeros(2, np.float32)
        words = r"only in minisegnet \['stray.weight'\], only in torch \[\]"
    else:
        dropped = sorted(state)[0]
        del state[dropped]
        words = rf"only in minisegnet \[\], only in torch \['{dropped}'\]"
    monkeypatch.setattr(model, "state_dict", lambda: state)
    with pytest.raises(KeyError, match=words):
        to_torch(model)


@pytest.mark.parametrize("name", ["UNet", "FCN", "SegNet", "DeepLabV3Plus", "PanopticDeepLab"])
def test_twin_constructors_take_the_models_arguments_with_the_same_defaults(torch, name):
    """"The same constructor arguments" (torch_models' docstring): names, order and defaults,
    so that a twin built directly is the model built with the same call (torch_twin passes
    every argument, so no test above reaches a twin's defaults)."""
    from minisegnet import torch_models
    ours = inspect.signature(getattr(models, name)).parameters
    theirs = inspect.signature(getattr(torch_models, name)).parameters
    assert [(p.name, p.default) for p in ours.values()] == [(p.name, p.default) for p in theirs.values()]


@pytest.mark.parametrize("name, kwargs", [
    ("UNet", dict(in_channels=1, base_channels=2)),                # default depth 4
    ("FCN", dict(num_classes=3, width=2)),                         # fc_channels=None: 8 * width
    ("SegNet", dict(base_channels=2, depth=5)),                    # widths stop growing at 8 * base
    ("DeepLabV3Plus", dict(width_mult=0.35)),                      # _make_divisible's +8 where rounding lost >10%
    ("PanopticDeepLab", dict(width_mult=0.25)),
])
def test_twin_built_directly_has_the_models_state_dict_shapes(torch, name, kwargs):
    """The shapes a twin's own defaults and rules give, without torch_twin: the tests above
    build every twin from a model's stored arguments, at widths where the channel rounding
    and SegNet's width cap never apply."""
    from minisegnet import torch_models
    ours = {k: tuple(v.shape) for k, v in getattr(models, name)(**kwargs).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in getattr(torch_models, name)(**kwargs).state_dict().items()}
    assert ours == theirs


@pytest.mark.parametrize("name", ["DeepLabV3Plus", "PanopticDeepLab"])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_twin_default_atrous_rates_follow_the_output_stride_like_the_model(torch, name, output_stride):
    """atrous_rates=None: (6, 12, 18) at output stride 16, doubled at 8, in every ASPP of a
    directly built twin as in the model."""
    from minisegnet import torch_models
    model = getattr(models, name)(output_stride=output_stride, width_mult=0.25)
    twin = getattr(torch_models, name)(output_stride=output_stride, width_mult=0.25)
    for aspp in [twin.aspp] if name == "DeepLabV3Plus" else [twin.deeplab.aspp, twin.instance_aspp]:
        assert tuple(branch[0].dilation[0] for branch in aspp.atrous) == tuple(model.atrous_rates)


@pytest.mark.parametrize("make", [
    lambda: FCN(3, "8s", in_channels=2, width=2, dropout=0.5),
    lambda: DeepLabV3Plus(2, 3, atrous_rates=(1,), width_mult=0.25, aspp_channels=8, low_level_channels=4,
                          decoder_channels=8, dropout=0.5)], ids=["fcn8s", "deeplab"])
def test_twin_in_eval_mode_drops_nothing_like_the_model(torch, make):
    """Dropout only in training: with p = 0.5 the eval-mode twin gives the model's logits, the
    same twice (the parity tests above build every model with dropout 0, where a twin that
    always drops would pass)."""
    model = _jitter(make().to(np.float64)).eval()
    x = np.random.default_rng(0).standard_normal((1, 2, 37, 45))
    twin = to_torch(model)
    assert not twin.training
    with torch.no_grad():
        first, second = twin(torch.tensor(x)), twin(torch.tensor(x))
    assert torch.equal(first, second)
    assert_close_scaled(model(msn.tensor(x)), first, 1e-10, "eval logits")


def test_fresh_fcn_twin_starts_from_the_models_bilinear_and_zero_layers(torch):
    """torch_twin is "freshly initialised": like the model (the FCN paper's start), its
    upsamplers hold the bilinear kernel and its score_pool layers are zero, so the twin trained
    from scratch starts where the model does."""
    model = FCN(3, "8s", in_channels=2, width=2)
    theirs = torch_twin(model).state_dict()
    fixed = {k: v for k, v in model.state_dict().items() if k.startswith(("upscore", "score_pool"))}
    assert len(fixed) == 7, sorted(fixed)          # three upsamplers; two score_pool convs and their biases
    for key, value in fixed.items():
        np.testing.assert_array_equal(msn.backend.to_numpy(value), theirs[key].numpy(), err_msg=key)


@pytest.mark.parametrize("make", [
    lambda: SegNet(1, 2, base_channels=2, depth=2),
    lambda: UNet(1, 2, base_channels=2, depth=1, padding="same", batch_norm=True),
    lambda: DeepLabV3Plus(1, 2, output_stride=16, atrous_rates=(1,), width_mult=0.25, aspp_channels=4,
                          low_level_channels=2, decoder_channels=4, dropout=0.0),
], ids=["segnet", "unet-bn", "deeplab"])
def test_to_torch_keeps_each_submodules_mode(torch, make):
    """Fine-tuning with frozen BatchNorm: the model trains, its BatchNorms evaluate (running
    statistics). The twin put every module in the root's mode, so its BatchNorms normalised with
    the batch's statistics: other logits, and running statistics that moved."""
    model = make()
    model.train()
    for module in model.modules():
        if isinstance(module, msn.nn.BatchNorm2d):
            module.eval()
    twin = to_torch(model)
    ours = {name: m.training for name, m in model.named_modules()}
    theirs = {name: m.training for name, m in twin.named_modules()}
    assert {n: ours[n] for n in ours if n in theirs} == {n: theirs[n] for n in ours if n in theirs}
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    with msn.no_grad():
        expected = model(msn.tensor(x)).numpy()
    with torch.no_grad():
        got = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_to_torch_keeps_batchnorm_momentum_and_eps(torch):
    """A BatchNorm's eps and momentum are settings of the layer, not of the model's constructor
    (DeepLab fine-tuning commonly sets momentum = 0.01 or less): the twin took PyTorch's defaults
    (1e-5, 0.1), so its logits and its running statistics after a training step differed."""
    model = SegNet(1, 2, base_channels=2, depth=2)
    for module in model.modules():
        if isinstance(module, msn.nn.BatchNorm2d):
            module.eps, module.momentum = 1e-3, 0.01
    twin = to_torch(model)
    for module in twin.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert (module.eps, module.momentum) == (1e-3, 0.01)
    x = np.random.default_rng(0).standard_normal((2, 1, 16, 16)).astype(np.float32)
    model(msn.tensor(x))
    twin(torch.from_numpy(x))
    ours, theirs = model.state_dict(), twin.state_dict()
    for name in ours:
        if name.endswith("running_mean") or name.endswith("running_var"):
            np.testing.assert_allclose(theirs[name].numpy(), ours[name], rtol=1e-5, atol=1e-6, err_msg=name)
