"""Panoptic-DeepLab: the PyTorch twin gives the same three outputs, the same
gradients of the panoptic loss (cross-entropy + centre MSE + offset L1) for
every parameter and the input, and the same BatchNorm statistics (float64
and float32, train and eval); output shapes on drawn sizes; the composed
DeepLabV3+ is a plain one; every parameter learns; bad arguments."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import checks, functional as F, nn
from minisegnet.export import to_torch, torch_twin
from minisegnet.models import DeepLabV3Plus, PanopticDeepLab, build_model
from helpers import assert_close_scaled, assert_twin_gradients_and_buffers


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: PyTorch's thread pool only adds contention on a busy machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _small(**kwargs):
    config = dict(in_channels=2, num_classes=3, output_stride=8, atrous_rates=(1, 2), width_mult=0.25,
                  aspp_channels=8, low_level_channels=4, decoder_channels=8, dropout=0.0,
                  instance_aspp_channels=4, instance_low_level_channels=4, instance_decoder_channels=4,
                  head_channels=4)
    config.update(kwargs)
    return PanopticDeepLab(**config)


def _jitter(model, seed=0):
    """Move weights and BatchNorm statistics off their initial values, so identity
    BatchNorms and symmetric inits cannot hide a wrong twin."""
    rng = np.random.default_rng(seed)
    on_backend = msn.backend.asarray
    for p in model.parameters():
        p.data = p.data + on_backend((0.05 * rng.standard_normal(p.shape)).astype(p.dtype))
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.data = on_backend((0.1 * rng.standard_normal(buf.shape)).astype(buf.dtype))
        elif name.endswith("running_var"):
            buf.data = on_backend(rng.uniform(0.5, 1.5, buf.shape).astype(buf.dtype))
    return model


def _compare(torch, model, shape, tol, seed=1):
    """Forward both; the panoptic loss in both; compare outputs, gradients, buffers."""
    dtype = next(iter(model.parameters())).dtype
    twin = to_torch(model)
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape).astype(dtype)
    x, tx = msn.tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    ours, theirs = model(x), twin(tx)
    assert set(ours) == set(theirs) == {"semantic", "center", "offset"}
    for key in ours:
        assert_close_scaled(ours[key], theirs[key], tol, key)
    n, _, h, w = shape
    labels = rng.integers(0, model.num_classes, (n, h, w))
    heat = rng.random((n, 1, h, w)).astype(dtype)
    offsets = (5 * rng.standard_normal((n, 2, h, w))).astype(dtype)
    weight = (rng.random((n, 2, h, w)) < 0.5).astype(dtype)
    loss = (F.cross_entropy(ours["semantic"], msn.tensor(labels)) + F.mse_loss(ours["center"], msn.tensor(heat))
            + F.l1_loss(ours["offset"], msn.tensor(offsets), weight=weight))
    tf = torch.nn.functional
    tloss = (tf.cross_entropy(theirs["semantic"], torch.tensor(labels)) + tf.mse_loss(theirs["center"], torch.tensor(heat))
             + tf.l1_loss(theirs["offset"], torch.tensor(offsets), weight=torch.tensor(weight)))
    assert_close_scaled(loss, tloss, tol, "loss")
    loss.backward()
    tloss.backward()
    assert_twin_gradients_and_buffers(model, twin, x, tx, tol)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("output_stride, rates, size", [(8, (1, 2), (33, 47)), (16, (1,), (49, 66))])
def test_same_outputs_gradients_and_buffers_as_the_torch_twin_float64(torch, train, output_stride, rates, size):
    model = _jitter(_small(output_stride=output_stride, atrous_rates=rates).to(np.float64)).train(train)
    _compare(torch, model, (2, 2) + size, tol=1e-10)


def test_same_outputs_and_gradients_float32(torch):
    """Eval mode. In train mode the float32 gradients of both libraries drift apart by
    a few percent in the backbone: BatchNorm over a batch of 2 divides by the standard
    deviation of nearly constant channels (after ReLU6), which magnifies float32 rounding.
    Float64 agrees to 1e-10 in train mode (above), so the formulas are the same."""
    model = _jitter(_small()).eval()
    _compare(torch, model, (2, 2, 40, 48), tol=1e-4)


@given(h=st.integers(17, 40), w=st.integers(17, 40), seed=st.integers(0, 2**16))
@settings(max_examples=4)
def test_parity_on_drawn_input_sizes(torch, h, w, seed):
    model = _jitter(_small(atrous_rates=(1,)).to(np.float64), seed)
    _compare(torch, model, (2, 2, h, w), tol=1e-10, seed=seed)


@given(h=st.integers(17, 70), w=st.integers(17, 70), n=st.integers(1, 2), classes=st.integers(1, 4))
@settings(max_examples=8)
def test_output_shapes_follow_the_input(h, w, n, classes):
    """Every output has the input's size; the backbone's maps follow its size arithmetic."""
    model = _small(num_classes=classes, atrous_rates=(1,)).eval()
    with msn.no_grad():
        out = model(msn.tensor(np.zeros((n, 2, h, w), np.float32)))
    assert out["semantic"].shape == (n, classes, h, w)
    assert out["center"].shape == (n, 1, h, w) and out["offset"].shape == (n, 2, h, w)
    low, feat = model.deeplab.backbone.sizes((h, w))
    assert low == (-(-h // 4), -(-w // 4)) and feat == (-(-h // 8), -(-w // 8))


def test_the_semantic_branch_is_a_plain_deeplab():
    """deeplab.* holds exactly a DeepLabV3Plus's weights: its semantic output is that model's logits."""
    model = _jitter(_small()).eval()
    plain = DeepLabV3Plus(2, 3, output_stride=8, atrous_rates=(1, 2), width_mult=0.25, aspp_channels=8,
                          low_level_channels=4, decoder_channels=8, dropout=0.0).eval()
    state = {k[len("deeplab."):]: v for k, v in model.state_dict().items() if k.startswith("deeplab.")}
    assert set(state) == set(plain.state_dict())
    plain.load_state_dict(state)
    x = msn.tensor(np.random.default_rng(0).standard_normal((1, 2, 40, 48)).astype(np.float32))
    with msn.no_grad():
        np.testing.assert_allclose(model(x)["semantic"].numpy(), plain(x).numpy(), atol=1e-6)
    others = {k.split(".")[0] for k in model.state_dict() if not k.startswith("deeplab.")}
    assert others == {"instance_aspp", "instance_decoder", "center_head", "offset_head"}


def test_state_dict_keys_and_shapes_equal_the_twins(torch):
    model = _small()
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in torch_twin(model).state_dict().items()}


def test_every_parameter_gets_a_gradient_and_a_tiny_batch_is_learned():
    """Adam on one batch: each of the three losses falls to a third of its start."""
    rng = np.random.default_rng(0)
    model = _small(in_channels=3, num_classes=2, atrous_rates=(1,), aspp_channels=16, decoder_channels=16,
                   instance_decoder_channels=8, head_channels=8)
    h = w = 32
    yy, xx = np.mgrid[:h, :w]
    labels = ((yy - 16) ** 2 + (xx - 12) ** 2 < 50).astype(np.int64)[None].repeat(2, 0)
    image = (0.3 * rng.standard_normal((2, 3, h, w)) + labels[:, None]).astype(np.float32)
    heat = np.exp(-((yy - 16) ** 2 + (xx - 12) ** 2) / 8.0)[None, None].repeat(2, 0).astype(np.float32)
    offsets = np.stack([16 - yy, 12 - xx]).astype(np.float32)[None].repeat(2, 0)
    thing = labels[:, None].repeat(2, 1).astype(np.float32)
    optimizer = msn.optim.Adam(model.parameters(), lr=1e-2)
    first = last = None
    for step in range(150):
        out = model(msn.tensor(image))
        losses = [F.cross_entropy(out["semantic"], msn.tensor(labels)), F.mse_loss(out["center"], msn.tensor(heat)),
                  F.l1_loss(out["offset"], msn.tensor(offsets), weight=thing)]
        optimizer.zero_grad()
        (losses[0] + 10 * losses[1] + 0.1 * losses[2]).backward()
        if step == 0:
            first = [l.item() for l in losses]
            for name, p in model.named_parameters():
                assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
        optimizer.step()
        last = [l.item() for l in losses]
        if all(b < a / 3 for a, b in zip(first, last)):
            break
    assert all(b < a / 3 for a, b in zip(first, last)), f"losses {first} -> {last} in {step + 1} steps"


def test_build_model_and_errors():
    model = build_model("panoptic-deeplab", 3, 5, output_stride=8, atrous_rates=(1, 2, 3))
    assert type(model) is PanopticDeepLab and model.num_classes == 5 and model.in_channels == 3
    with pytest.raises(ValueError, match="PanopticDeepLab: head_channels must be >= 1, got 0"):
        _small(head_channels=0)
    with pytest.raises(TypeError, match="PanopticDeepLab: instance_aspp_channels must be an int, got 2.5"):
        _small(instance_aspp_channels=2.5)
    assert _small(head_channels=np.int64(4)).head_channels == 4        # a NumPy int is an int (was refused)
    with pytest.raises(ValueError, match="^PanopticDeepLab: output_stride must be 16 or 8"):
        _small(output_stride=4)
    with pytest.raises(ValueError, match=r"PanopticDeepLab: input must be a Tensor of shape \(N, 2, H, W\)"):
        _small()(msn.tensor(np.zeros((1, 3, 32, 32), np.float32)))
    with pytest.raises(ValueError, match=r"^PanopticDeepLab: atrous rate \d"):
        _small()(msn.tensor(np.zeros((1, 2, 16, 16), np.float32)))


def test_training_on_one_image_is_refused_by_name():
    """It was batch_norm's generic 'more than 1 value per channel'; now the model's own rule, as
    DeepLabV3Plus's (the trainer reads min_train_batch to refuse --batch-size 1 before any work)."""
    model = _small()
    assert model.min_train_batch == 2
    x = msn.tensor(np.random.default_rng(0).random((1, 2, 64, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="PanopticDeepLab: training needs a batch of at least 2 images, got 1"):
        model(x)
    model.eval()
    assert model(x)["semantic"].shape[0] == 1


def test_predict_image_without_a_task_gives_the_class_map_of_the_semantic_logits():
    """It was "'dict' object has no attribute 'data'"; the docstring promises the class map."""
    from minisegnet.predict import image_outputs, predict_image

    model = _small()
    _jitter(model)
    image = np.random.default_rng(1).random((2, 37, 53), dtype=np.float32)
    classes = predict_image(model, image)
    assert classes.shape == (37, 53)
    expected = msn.backend.to_numpy(image_outputs(model, image)["semantic"].data.argmax(1))[0]
    np.testing.assert_array_equal(classes, expected)


def test_predict_image_reads_the_semantic_logits_and_names_a_dict_without_them():
    """A class other than 0 must win (the first test's argmax was 0 everywhere, as center's would be)."""
    from minisegnet.predict import predict_image

    model = _small()
    bias = np.zeros(3, np.float32)
    bias[2] = 100
    model.deeplab.classifier.bias.data = msn.backend.asarray(bias)
    assert (predict_image(model, np.random.default_rng(1).random((2, 19, 23), dtype=np.float32)) == 2).all()
    forward = model.forward
    model.forward = lambda x: {k: v for k, v in forward(x).items() if k != "semantic"}
    with pytest.raises(TypeError, match=r"predict_image: PanopticDeepLab's outputs are the maps \['center', "
                                        r"'offset'\], none of them class logits"):
        predict_image(model, np.zeros((2, 16, 16), np.float32))


# ---- Cases from a mutation review (stop 38): each fails on a mutant that every test before let through
def test_instance_aspp_uses_the_models_dropout_only_in_training():
    # guards "the instance ASPP uses the same ... dropout": the centre map (instance branch only) varies in training
    model = PanopticDeepLab(1, 2, atrous_rates=(1,), width_mult=0.25, aspp_channels=4, low_level_channels=4,
                            decoder_channels=4, dropout=0.5, instance_aspp_channels=4,
                            instance_low_level_channels=4, instance_decoder_channels=4, head_channels=4)
    assert model.instance_aspp.dropout == 0.5
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32))
    with msn.no_grad():
        model.train()
        assert not np.array_equal(model(x)["center"].data, model(x)["center"].data)
        model.eval()
        assert np.array_equal(model(x)["center"].data, model(x)["center"].data)


def test_check_input_size_returns_the_valid_tap_fractions_like_deeplab():
    """Its docstring says it is ``DeepLabV3Plus.check_input_size``, which returns
    ``{rate: valid-tap fraction}``; PanopticDeepLab's returned None."""
    model = PanopticDeepLab()
    fractions = model.check_input_size((513, 513))
    assert fractions == model.deeplab.check_input_size((513, 513)) == DeepLabV3Plus().check_input_size(513)
    assert sorted(fractions) == [6, 12, 18] and fractions[18] == pytest.approx(0.405, abs=1e-3)


def test_check_input_size_warns_at_the_callers_line():
    """The 1x3-branch warning should point at the code that called check_input_size, not at
    the wrapper inside panoptic_deeplab.py."""
    model = PanopticDeepLab()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.check_input_size((97, 300))           # a 7x19 map: rates 12 and 18 >= 7 rows
    assert caught and all(w.filename == __file__ for w in caught)


def test_deeplab_check_input_size_warns_at_the_callers_line():
    model = DeepLabV3Plus()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.check_input_size((97, 300))           # a 7x19 map: rates 12 and 18 >= 7 rows
    assert caught and all(w.filename == __file__ for w in caught)


@pytest.mark.parametrize("model, name", [(lambda: _small(output_stride=16, atrous_rates=(6, 12)), "PanopticDeepLab"),
                                         (lambda: DeepLabV3Plus(width_mult=0.25, atrous_rates=(6, 12)),
                                          "DeepLabV3Plus")], ids=["panoptic", "deeplab"])
def test_check_input_size_warnings_and_errors_name_the_model_they_check(model, name):
    model = model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.check_input_size((97, 300))           # a 7x19 map: rate 12 >= 7 rows
    assert caught and all(str(w.message).startswith(f"{name}: atrous rate 12") for w in caught), \
        [str(w.message) for w in caught]
    with pytest.raises(ValueError, match=rf"^{name}: atrous rate \d+"):
        model.check_input_size(16)                  # a 1x1 map


@pytest.mark.parametrize("kwargs, message", [
    (dict(output_stride=8.0), r"^PanopticDeepLab: output_stride must be an int, got 8\.0$"),
    (dict(width_mult="x"), r"^PanopticDeepLab: width_mult must be a number"),
    (dict(output_stride=4), r"^PanopticDeepLab: output_stride must be 16 or 8"),
], ids=["int", "number", "value"])
def test_the_inner_deeplabs_argument_errors_keep_their_kind_and_name_panoptic_deeplab(kwargs, message):
    kind = ValueError if kwargs.get("output_stride") == 4 else TypeError
    with pytest.raises(kind, match=message) as info:
        _small(**kwargs)
    assert type(info.value) is kind
    assert info.value.__cause__ is None and info.value.__suppress_context__     # no DeepLabV3Plus error behind it


def _conv_weights(model):
    """The weights of every Conv2d (biases and BatchNorm aside)."""
    return sum(m.weight.data.size for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


@pytest.mark.parametrize("kwargs", [
    dict(instance_aspp_channels=128, instance_decoder_channels=64, head_channels=32),
    dict(atrous_rates=(1, 2, 3, 4), instance_aspp_channels=64, instance_low_level_channels=32),
], ids=["wide-instance-branch", "many-rates"])
def test_memory_precheck_counts_the_instance_branch_too(monkeypatch, kwargs):
    # the count the pre-check refuses by must be the whole model's, not only its DeepLabV3+'s (the
    # last count: the whole model's; within 0.1%: the DeepLabV3+'s own count is an estimate)
    counts = []
    real = checks.check_weights
    monkeypatch.setattr(checks, "check_weights", lambda count, *a: counts.append(count) or real(count, *a))
    model = _small(**kwargs)
    built = _conv_weights(model)
    assert counts[-1] == pytest.approx(built, rel=1e-3), (counts, built)


def test_a_model_whose_instance_branch_does_not_fit_is_refused_before_building_it(monkeypatch):
    # 32 MiB of "memory". Semantic and instance ASPPs of 1,024 channels each: the DeepLabV3+ alone is
    # about 6 million weights (23 MiB: fits), no single layer is over 16 MiB (so no layer refuses
    # itself), but the whole model is about 11.8 million weights (45 MiB): it must be refused at
    # once, by the model's own count, naming the model (today it is built)
    monkeypatch.setattr(checks, "memory_bytes", lambda: 32 * 2**20)
    _small(aspp_channels=1024)                                   # the DeepLabV3+ part alone fits
    with pytest.raises(checks.TooLargeError, match=r"^PanopticDeepLab: .*instance_aspp_channels=1024"):
        _small(aspp_channels=1024, instance_aspp_channels=1024)
