"""Host-device traffic of a training step on the CuPy backend, counted by the CPU stand-in.

A step may upload its input batch (images and masks) and read back a few
scalars: the loss for the progress bar and the yes/no answers of the label
checks. Nothing the size of a feature map, a table or a mask may cross.
``docs/benchmarks.md`` reports these counts; ``benchmarks/transfers.py`` prints them.
"""
import numpy as np
import pytest

import cupy_standin
import minisegnet as msn
from minisegnet import backend, metrics
from minisegnet import functional as F
from minisegnet.models import FCN, DeepLabV3Plus, SegNet, UNet

# name -> (model factory, input size, output size, expected scalar reads per step)
MODELS = {
    "unet": (lambda: UNet(3, 3, base_channels=8, depth=3, padding="same"), 64, 64, 3),
    "unet-valid-bn-bilinear": (lambda: UNet(3, 3, base_channels=4, depth=2, batch_norm=True,
                                            up_mode="bilinear"), 92, 52, 3),
    "fcn8s": (lambda: FCN(3, in_channels=3, width=4), 64, 64, 3),
    # SegNet unpools its own pooling's indices, unchecked (max_unpool2d_of_pooled): no read per unpooling
    "segnet": (lambda: SegNet(3, 3, base_channels=4, depth=2), 64, 64, 3),
    "deeplabv3plus": (lambda: DeepLabV3Plus(3, 3, atrous_rates=(1, 2, 3)), 64, 64, 3),
}


def training_step(model, optimizer, images, masks, num_classes):
    """What the trainer does per batch: upload, forward, loss, backward, update, read the loss, score."""
    x, target = msn.tensor(images), msn.tensor(masks)
    logits = model(x)
    loss = F.cross_entropy(logits, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    value = loss.item()
    cm = metrics.confusion_matrix(logits.data.argmax(1), target.data, num_classes)
    return value, cm


def count_step_transfers(name, transfers, steps=2):
    """The transfer log of the last of ``steps`` training steps (the first may build constants)."""
    make, size, out, _ = MODELS[name]
    msn.set_backend("cupy")
    msn.manual_seed(0)
    model = make()
    optimizer = msn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, size, size), dtype=np.float32)
    masks = rng.integers(0, 3, (2, out, out))
    for _ in range(steps):
        with transfers() as log:
            training_step(model, optimizer, images, masks, 3)
    return log, images.nbytes + masks.nbytes


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_training_step_uploads_the_batch_and_reads_back_only_scalars(name, transfers):
    log, batch_bytes = count_step_transfers(name, transfers)
    assert log.count("H2D") == 2 and log.nbytes("H2D") == batch_bytes, log.report()
    assert log.count("D2H") == MODELS[name][3], log.report()
    assert all(e.nbytes <= 8 for e in log.events if e.direction == "D2H"), log.report()


def test_a_table_uploaded_in_every_call_is_caught(monkeypatch, transfers):
    """Planted bug: resize's tables built and moved on every call instead of once."""
    def every_time(xp, key, build):
        built = build()
        return tuple(xp.asarray(a) for a in built) if isinstance(built, tuple) else xp.asarray(built)

    monkeypatch.setattr(backend, "constant", every_time)
    log, _ = count_step_transfers("unet-valid-bn-bilinear", transfers)
    assert log.count("H2D") > 2, log.report()


def test_the_confusion_matrix_reads_back_one_scalar_even_with_ignored_pixels(transfers, cupy):
    rng = np.random.default_rng(0)
    pred = cupy.asarray(rng.integers(0, 4, (2, 16, 16)))
    target = cupy.asarray(np.where(rng.random((2, 16, 16)) < 0.2, 255, rng.integers(0, 4, (2, 16, 16))))
    with transfers() as log:
        cm = metrics.confusion_matrix(pred, target, 4, ignore_index=255)
    assert log.count() == 1 and log.nbytes() <= 8, log.report()
    expected = metrics.confusion_matrix(pred.get(), target.get(), 4, ignore_index=255)
    np.testing.assert_array_equal(cm.get(), expected)


def test_a_numpy_scalar_operand_is_not_uploaded(transfers, cupy):
    """``t * np.float32(2)`` made the scalar a Tensor, an upload per operation; it is made on the
    device now, as a Python number is, with the same dtype rules (a 0-d tensor of its dtype)."""
    msn.set_backend("cupy")
    t = msn.tensor(np.ones(3, np.float32))
    with transfers() as log:
        results = [t * np.float32(2), np.float64(3) + t, t - np.int64(1), t / np.float16(2)]
    assert log.count("H2D") == 0, log.report()
    assert [r.dtype for r in results] == [np.float32] * 4
    assert [r.tolist() for r in results] == [[2.0] * 3, [4.0] * 3, [0.0] * 3, [0.5] * 3]


def test_a_numpy_scalar_follows_torchs_python_number_rules(torch):
    """PyTorch takes a NumPy scalar as a Python number: a bool tensor times np.int8(3) is int64
    (it was int8 here), and a uint8 tensor times np.int64(300) is refused as times 300 is (it
    wrapped to 44)."""
    b = np.array([True, False])
    assert (msn.tensor(b) * np.int8(3)).dtype == np.int64 == (torch.tensor(b) * np.int8(3)).numpy().dtype
    with pytest.raises(OverflowError, match="the number 300 does not fit uint8"):
        msn.tensor(np.array([200], np.uint8)) * np.int64(300)
    assert (msn.tensor(np.ones(2, np.int64)) * np.float32(2.5)).dtype == np.float32


def test_cumulative_batch_norm_reads_nothing_back(transfers, cupy, torch):
    """BatchNorm2d(momentum=None) weighs batch k by 1/k: the factor is made on the device from
    num_batches_tracked (it read the count back, a sync per layer per training step), and the
    running statistics stay PyTorch's."""
    msn.set_backend("cupy")
    bn, tbn = msn.nn.BatchNorm2d(3, momentum=None), torch.nn.BatchNorm2d(3, momentum=None)
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((2, 3, 4, 4)).astype(np.float32) for _ in range(3)]
    inputs = [msn.tensor(b) for b in batches]
    with transfers() as log:
        for x in inputs:
            bn(x)
    assert log.count() == 0, log.report()
    for b in batches:
        tbn(torch.tensor(b))
    np.testing.assert_allclose(bn.running_var.numpy(), tbn.running_var.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn.running_mean.numpy(), tbn.running_mean.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make", [
    lambda cupy: cupy.asarray(3.0),
    lambda cupy: cupy.asarray(np.float32(3.0)),
    lambda cupy: cupy.array(np.array(7, dtype=np.int64)),
    lambda cupy: cupy.asarray(True),
], ids=["python-float", "numpy-scalar", "0-d-array", "python-bool"])
def test_a_number_made_a_device_array_is_not_counted_as_an_upload(make, transfers, cupy):
    if not cupy_standin.is_standin(cupy):
        pytest.skip("the stand-in's own record")
    with transfers() as log:
        x = make(cupy)
    assert x.shape == () and log.count("H2D") == 0, log.report()


def test_a_number_given_to_ufunc_at_is_not_counted_as_an_upload(transfers, cupy):
    if not cupy_standin.is_standin(cupy):
        pytest.skip("the stand-in's own record")
    a, idx = cupy.zeros(4, dtype=np.int64), cupy.asarray([0, 2, 2])
    with transfers() as log:
        cupy.add.at(a, idx, 1)
    assert log.count() == 0, log.report()
    assert a.get().tolist() == [1, 0, 2, 0]


def test_an_array_still_counts_as_an_upload(transfers, cupy):
    """The line the fix must keep: a host array of one element or more is a real copy."""
    if not cupy_standin.is_standin(cupy):
        pytest.skip("the stand-in's own record")
    with transfers() as log:
        cupy.asarray(np.array([1.0]))
        cupy.asarray([1, 2])
    assert log.count("H2D") == 2, log.report()
