"""Property-test your own layer's output shape with Hypothesis.

The library's own tests do this for every op: draw random sizes and
settings, run the layer, compare the real output shape with the formula in
``minisegnet.shapes``. Here the layer is a small block you might write
yourself (conv -> ReLU -> max-pool -> up-conv), and its predicted shape is
composed from the shapes functions. The property has two halves, and both
are checked on every drawn case:

* where the formula gives a size, the layer runs and returns exactly that shape;
* where the formula refuses (a ``ValueError``: the input is too small for a
  kernel or a pool), the layer refuses too, with a ``ValueError``, before any work.

A test that returned early on every refusal ("the formula says no, so skip")
would pass for a layer that silently accepts bad sizes; this one does not.
Hypothesis shrinks any failure to the smallest counter-example. Run:
``python examples/property_test_your_layer.py`` (``--fast`` or ``MINISEGNET_FAST=1``
for fewer examples) or ``python -m pytest examples/property_test_your_layer.py``.
See docs/property-testing.md.
"""
import os
import sys

import numpy as np
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import nn, shapes

FAST = "--fast" in sys.argv or os.environ.get("MINISEGNET_FAST") == "1"
if {"-h", "--help"} & set(sys.argv[1:]):      # what it does and its options, not a run
    print(__doc__)
    sys.exit(0)


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
    """The block's output size from the shapes formulas, or ValueError where they refuse."""
    size = shapes.conv2d_output_size(size, kernel_size, stride, padding, dilation)
    size = shapes.max_pool2d_output_size(size, 2)
    return shapes.conv_transpose2d_output_size(size, 2, stride=2)


def outcome(layer, h, w):
    """The layer's output shape, or "refused" if it raised a ValueError."""
    try:
        with msn.no_grad():
            return layer(msn.tensor(np.zeros((1, 2, h, w), dtype=np.float32))).shape
    except ValueError:
        return "refused"


@settings(max_examples=15 if FAST else 80, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), k=st.integers(1, 5), s=st.integers(1, 3),
       p=st.integers(0, 2), d=st.integers(1, 3))
def test_the_layer_does_exactly_what_the_formula_says(h, w, k, s, p, d):
    try:
        expected = (1, 2) + predicted_size((h, w), k, s, p, d)
    except ValueError:
        expected = "refused"             # the formula refuses: the layer must refuse too
    assert outcome(DownUp(2, k, s, p, d), h, w) == expected


def test_both_halves_of_the_property_are_exercised():
    """The drawn ranges reach both outcomes: a property checked only on valid sizes
    (or only on invalid ones) would be half a test."""
    assert predicted_size((12, 12), 3, 1, 1, 1) == (12, 12)
    try:
        predicted_size((1, 1), 3, 1, 0, 1)
    except ValueError:
        pass
    else:
        raise AssertionError("a 1x1 input is too small for a 3x3 kernel")
    assert outcome(DownUp(2, 3, 1, 0, 1), 1, 1) == "refused"


if __name__ == "__main__":
    test_both_halves_of_the_property_are_exercised()
    test_the_layer_does_exactly_what_the_formula_says()
    print("the layer's output shape equals the shapes formula on every drawn case, "
          "and it refuses exactly the sizes the formula refuses")
