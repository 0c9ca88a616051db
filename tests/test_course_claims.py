"""Claims the course and the model docstrings make that need more than a doc block:
each test measures the number the text states."""
import types

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, shapes
from minisegnet.models import UNet
from minisegnet.models import unet as unet_module


def _input_rows_read(model, x_shape, pixel):
    """Which input rows output ``pixel`` (row, col) depends on, from the gradient
    (all weights positive, so no path cancels)."""
    x = msn.tensor(np.ones(x_shape, dtype=np.float32), requires_grad=True)
    model(x)[(0, 0) + pixel].backward()
    rows = np.flatnonzero(x.grad.numpy()[0, 0].any(axis=1))
    return int(rows.min()), int(rows.max())


@pytest.mark.parametrize("depth, size, padding", [(2, 44, "valid"), (4, 188, "valid"), (2, 24, "same")])
def test_unet_receptive_fields_are_what_the_gradient_reaches(monkeypatch, depth, size, padding):
    # A max-pool sends the gradient to one pixel of its window; the field is every pixel that can
    # matter, so measure through average pooling (the same windows).
    ops = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("_")})
    ops.max_pool2d = lambda x, kernel_size, stride: F.avg_pool2d(x, kernel_size, stride)
    monkeypatch.setattr(unet_module, "F", ops)
    msn.manual_seed(0)
    model = UNet(1, 1, base_channels=1, depth=depth, padding=padding)
    for p in model.parameters():
        p.data = (np.abs(p.data) + 0.1).astype(np.float32)
    fields = shapes.unet_receptive_fields(size, depth, padding)
    out = len(fields)
    assert out == shapes.unet_output_size(size, depth, padding)
    for row in sorted({0, 1, out // 2, out - 1}):
        assert _input_rows_read(model, (1, 1, size, size), (row, out // 2)) == fields[row]


def test_unet_572_fields_are_larger_than_the_184_it_loses():
    fields = shapes.unet_receptive_fields(572)
    assert len(fields) == 388
    sizes = [last - first + 1 for first, last in fields]
    assert sorted(set(sizes)) == [188, 204]
    # output pixel j sits over input pixel j + 92 and sees at least 92 rows on either side
    assert min(min(j + 92 - first, last - (j + 92)) for j, (first, last) in enumerate(fields)) == 92
