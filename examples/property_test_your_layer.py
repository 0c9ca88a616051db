"""Property-test your own layer's output shape with Hypothesis.

The library's own tests do this for every op: draw random sizes and
settings, run the layer, compare the real output shape with the formula in
``minisegnet.shapes``. Here the layer is a small block you might write
yourself (conv -> ReLU -> max-pool -> up-conv), and its predicted shape is
composed from the shapes functions. Hypothesis shrinks any failure to the
smallest counter-example. Run: ``python examples/property_test_your_layer.py``
(``--fast`` for fewer examples) or ``python -m pytest examples/property_test_your_layer.py``.
"""
import os
import sys

import numpy as np
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import nn, shapes

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"


class DownUp(nn.Module):
    """conv(k, s, p, d) -> ReLU -> 2x2 max-pool -> 2x2 up-conv (stride 2)."""

    def __init__(self, channels, kernel_size, stride, padding, dilation):
        self.conv = nn.Conv2d(channels, channels, kernel_size, stride, padding, dilation)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)

    def forward(self, x):
        return self.up(self.pool(self.relu(self.conv(x))))


def predicted_size(size, kernel_size, stride, padding, dilation):
    size = shapes.conv2d_output_size(size, kernel_size, stride, padding, dilation)
    size = shapes.max_pool2d_output_size(size, 2)
    return shapes.conv_transpose2d_output_size(size, 2, stride=2)


@settings(max_examples=10 if FAST else 60, deadline=None)
@given(h=st.integers(2, 40), w=st.integers(2, 40), k=st.integers(1, 5), s=st.integers(1, 3),
       p=st.integers(0, 2), d=st.integers(1, 3))
def test_down_up_shape_matches_the_formula(h, w, k, s, p, d):
    try:
        expected = predicted_size((h, w), k, s, p, d)
    except ValueError:
        return          # the formula says this input is too small; the layer must refuse it too
    layer = DownUp(2, k, s, p, d)
    with msn.no_grad():
        y = layer(msn.tensor(np.zeros((1, 2, h, w), dtype=np.float32)))
    assert y.shape == (1, 2) + expected


@settings(max_examples=10 if FAST else 40, deadline=None)
@given(h=st.integers(1, 6), k=st.integers(4, 9))
def test_too_small_inputs_are_refused(h, k):
    layer = DownUp(1, k, 1, 0, 1)
    try:
        layer(msn.tensor(np.zeros((1, 1, h, h), dtype=np.float32)))
    except ValueError:
        return
    # it ran: then the formula must say it fits
    assert shapes.conv2d_output_size(h, k) >= 2


if __name__ == "__main__":
    test_down_up_shape_matches_the_formula()
    test_too_small_inputs_are_refused()
    print("the layer's output shape equals the shapes formula on every drawn case")
