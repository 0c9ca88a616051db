"""Mask IoU and box IoU: against pixel counting on drawn masks and drawn boxes
(integer and half-pixel corners), by hand, symmetry, empty objects, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import metrics

to_numpy = msn.backend.to_numpy


def _draw_boxes(boxes, size, scale=1):
    """Each (x1, y1, x2, y2) box as a boolean mask on a grid ``scale`` times finer than a pixel."""
    masks = np.zeros((len(boxes), size * scale, size * scale), dtype=bool)
    for k, (x1, y1, x2, y2) in enumerate(np.round(np.asarray(boxes) * scale).astype(int)):
        masks[k, y1:y2, x1:x2] = True
    return masks


def _pixel_iou(a, b):
    """IoU by counting pixels, one pair at a time."""
    out = np.full((len(a), len(b)), np.nan)
    for i, m in enumerate(a):
        for j, n in enumerate(b):
            union = np.logical_or(m, n).sum()
            if union:
                out[i, j] = np.logical_and(m, n).sum() / union
    return out


@st.composite
def _boxes(draw, size, step):
    """(n, 4) boxes with corners on a grid of ``step`` pixels inside [0, size]."""
    n = draw(st.integers(0, 5))
    cells = int(size / step)
    out = []
    for _ in range(n):
        x = sorted(draw(st.integers(0, cells)) for _ in range(2))
        y = sorted(draw(st.integers(0, cells)) for _ in range(2))
        out.append([x[0] * step, y[0] * step, x[1] * step, y[1] * step])
    return np.array(out, dtype=np.float64).reshape(n, 4)


@given(a=_boxes(16, 1.0), b=_boxes(16, 1.0))
def test_box_iou_equals_pixel_counting_on_drawn_integer_boxes(a, b):
    ours = to_numpy(metrics.box_iou(msn.backend.asarray(a), msn.backend.asarray(b)))
    np.testing.assert_allclose(ours, _pixel_iou(_draw_boxes(a, 16), _draw_boxes(b, 16)), atol=1e-12)
    # integer corners as integers: the same numbers, as float64
    ints = metrics.box_iou(a.astype(np.int64), b.astype(np.int64))
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(to_numpy(ints), ours)


@given(a=_boxes(8, 0.25), b=_boxes(8, 0.25))
def test_box_iou_equals_pixel_counting_on_a_finer_grid_for_fractional_corners(a, b):
    """Corners at quarter pixels: drawn 4x finer, each quarter-pixel square counted."""
    ours = to_numpy(metrics.box_iou(a, b))
    np.testing.assert_allclose(ours, _pixel_iou(_draw_boxes(a, 8, 4), _draw_boxes(b, 8, 4)), atol=1e-12)


@given(a=_boxes(16, 1.0), b=_boxes(16, 1.0))
def test_mask_iou_of_drawn_boxes_equals_box_iou_and_is_symmetric(a, b):
    ma, mb = _draw_boxes(a, 16), _draw_boxes(b, 16)
    ours = to_numpy(metrics.mask_iou(msn.backend.asarray(ma), msn.backend.asarray(mb)))
    np.testing.assert_allclose(ours, to_numpy(metrics.box_iou(a, b)), atol=1e-12)
    np.testing.assert_allclose(ours, to_numpy(metrics.mask_iou(mb, ma)).T, atol=1e-12)


@given(seed=st.integers(0, 2**16), n=st.integers(0, 4), m=st.integers(0, 4))
def test_mask_iou_equals_pixel_counting_on_random_masks(seed, n, m):
    rng = np.random.default_rng(seed)
    a, b = rng.random((n, 5, 7)) < 0.4, rng.random((m, 5, 7)) < 0.4
    np.testing.assert_allclose(to_numpy(metrics.mask_iou(a, b)), _pixel_iou(a, b), atol=1e-12)


def test_by_hand():
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [2, 0, 4, 2], [5, 5, 5, 8]])
    iou = to_numpy(metrics.box_iou(boxes, boxes))
    # 1 pixel shared of 4 + 4 - 1; touching edges share nothing; a zero-width box has area 0
    assert iou[0, 1] == pytest.approx(1 / 7) and iou[0, 2] == 0.0 and iou[0, 0] == 1.0
    assert math.isnan(iou[3, 3]) and iou[3, 0] == 0.0
    np.testing.assert_array_equal(to_numpy(metrics.box_area(boxes)), [4, 4, 4, 0])
    instances = np.array([[1, 1, 0], [2, 2, 2]])
    masks = instances[None] == np.array([1, 2])[:, None, None]
    np.testing.assert_allclose(to_numpy(metrics.mask_iou(masks, masks[:1] | masks[1:])), [[2 / 5], [3 / 5]])


@pytest.mark.parametrize("a, b, error, match", [
    (np.zeros((2, 3)), np.zeros((1, 4)), ValueError, r"boxes1 must have shape \(num_boxes, 4\)"),
    (np.array([[2, 0, 1, 1]]), np.zeros((1, 4)), ValueError, r"boxes1\[0\] = \[2, 0, 1, 1\] is not"),
    (np.zeros((1, 4)), np.array([[0, 0, 1, 1], [0, 3, 1, 2.0]]), ValueError, r"boxes2\[1\]"),
    (np.zeros((1, 4)), np.array([[0, 0, np.nan, 1]]), ValueError, r"boxes2\[0\]"),
    (np.zeros((1, 4), dtype=bool), np.zeros((1, 4)), TypeError, "numbers"),
    ("boxes", np.zeros((1, 4)), TypeError, "array or a Tensor"),        # a list is read as an array, as everywhere
])
def test_bad_boxes(a, b, error, match):
    with pytest.raises(error, match=match):
        metrics.box_iou(a, b)


@pytest.mark.parametrize("a, b, error, match", [
    (np.zeros((2, 3), bool), np.zeros((1, 2, 3), bool), ValueError, r"masks1 must have shape \(num_masks, H, W\)"),
    (np.zeros((1, 2, 3), bool), np.zeros((1, 3, 2), bool), ValueError, "same size"),
    (np.zeros((1, 2, 3), int), np.zeros((1, 2, 3), bool), TypeError, "boolean"),
])
def test_bad_masks(a, b, error, match):
    with pytest.raises(error, match=match):
        metrics.mask_iou(a, b)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16])
def test_box_area_of_narrow_integer_boxes_does_not_wrap(dtype):
    """A 100 x 100 box: 10000 does not fit 8 bits (uint8 gave 10000 mod 256 = 16); box_iou of the
    same boxes was right (it computes in float64)."""
    boxes = np.array([[0, 0, 100, 100], [10, 20, 30, 60]], dtype)
    assert metrics.box_area(boxes).tolist() == [10000, 800]
    assert metrics.box_area(boxes).dtype == np.int64


@pytest.mark.parametrize("a, b, expected", [
    ([0, 0, 300, 300], [0, 0, 300, 300], 1.0),                          # area 90000 > 65504: inf
    ([0, 0, 200, 200], [100, 100, 300, 300], 100 * 100 / (2 * 200 * 200 - 100 * 100)),   # union 70000
])
def test_box_iou_of_float16_boxes_does_not_overflow(a, b, expected):
    """float16 boxes of a few hundred pixels: areas and unions pass float16's 65504 and became inf,
    so the IoU of a box with itself was NaN and of two overlapping boxes 0. torchvision's box_iou,
    whose layout this follows, upcasts float16 to float32 (_upcast) for exactly this."""
    iou = metrics.box_iou(np.array([a], np.float16), np.array([b], np.float16))
    assert np.isclose(float(iou[0, 0]), expected, rtol=1e-3)


def test_box_area_of_float16_boxes_does_not_overflow():
    area = metrics.box_area(np.array([[0, 0, 300, 300]], np.float16))
    assert np.isfinite(area).all() and np.isclose(float(area[0]), 90000, rtol=1e-3)


def test_float16_boxes_give_float32_areas_and_ious_as_documented():
    """box_area's docstring: 'float16 boxes float32 ones' (torchvision's _upcast), not float64."""
    boxes = np.array([[0, 0, 300, 300], [10, 10, 20, 30]], np.float16)
    area = metrics.box_area(boxes)
    assert area.dtype == np.float32
    assert area.tolist() == [90000.0, 200.0]
    iou = metrics.box_iou(boxes, boxes)
    assert iou.dtype == np.float32
    np.testing.assert_allclose(np.diag(iou), 1.0)
