"""Panoptic quality: equal to torchmetrics' PanopticQuality on drawn panoptic maps
(with void pixels in the truth), equal to a segment-by-segment reference written
from the paper (also with unlabelled predicted pixels), hand-worked examples of
each rule, counts that add up over batches, bad input."""
import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import metrics
from minisegnet.metrics.panoptic import FN, FP, IOU_SUM, TP

VOID = -1


def _blocky(rng, n, h, w, categories, max_instance, cell):
    """(n, h, w, 2) maps made of cell x cell blocks, so segments are large enough to match."""
    gh, gw = -(-h // cell), -(-w // cell)
    cat = rng.choice(categories, size=(n, gh, gw))
    inst = rng.integers(0, max_instance + 1, size=(n, gh, gw))
    up = lambda a: np.repeat(np.repeat(a, cell, 1), cell, 2)[:, :h, :w]
    return np.stack([up(cat), up(inst)], axis=-1)


def _perturbed(rng, target, categories, max_instance, p):
    """target with a fraction p of pixels relabelled at random (some segments survive, some do not)."""
    pred = target.copy()
    flip = rng.random(target.shape[:-1]) < p
    pred[..., 0][flip] = rng.choice(categories, size=int(flip.sum()))
    pred[..., 1][flip] = rng.integers(0, max_instance + 1, size=int(flip.sum()))
    return pred


def _reference_counts(pred, target, things, stuff, void=VOID):
    """The paper's rules, one segment at a time with dictionaries (slow, plain)."""
    categories = sorted(list(things) + list(stuff))
    counts = np.zeros((4, len(categories)))
    for p_img, t_img in zip(pred.reshape(len(pred), -1, 2), target.reshape(len(target), -1, 2)):
        def seg(c, i):
            return (int(c), 0 if c in stuff else int(i))
        p_area, t_area, inter, p_void = {}, {}, {}, {}
        for (pc, pi), (tc, ti) in zip(p_img, t_img):
            ps = None if pc == void else seg(pc, pi)
            ts = None if tc == void else seg(tc, ti)
            if ps is not None:
                p_area[ps] = p_area.get(ps, 0) + 1
                if ts is None:
                    p_void[ps] = p_void.get(ps, 0) + 1
            if ts is not None:
                t_area[ts] = t_area.get(ts, 0) + 1
            if ps is not None and ts is not None:
                inter[ps, ts] = inter.get((ps, ts), 0) + 1
        p_matched, t_matched = set(), set()
        for (ps, ts), n in inter.items():
            if ps[0] != ts[0]:
                continue
            iou = n / (p_area[ps] - p_void.get(ps, 0) + t_area[ts] - n)
            if iou > 0.5:
                k = categories.index(ps[0])
                counts[IOU_SUM, k] += iou
                counts[TP, k] += 1
                p_matched.add(ps)
                t_matched.add(ts)
        for ps in p_area:
            if ps not in p_matched and p_void.get(ps, 0) / p_area[ps] <= 0.5:
                counts[FP, categories.index(ps[0])] += 1
        for ts in t_area:
            if ts not in t_matched:
                counts[FN, categories.index(ts[0])] += 1
    return counts


def _torchmetrics(torch, pred, target, things, stuff):
    """torchmetrics' per-class (pq, sq, rq) and averages; void target pixels become
    a category it does not know, which it ignores."""
    PanopticQuality = pytest.importorskip("torchmetrics.detection").PanopticQuality   # (as test_metrics.py's)
    unknown = max(list(things) + list(stuff)) + 5
    target = np.where(target[..., :1] == VOID, [unknown, 0], target)
    per_class = PanopticQuality(things=set(things), stuffs=set(stuff), return_sq_and_rq=True,
                                return_per_class=True)(torch.tensor(pred), torch.tensor(target))
    average = PanopticQuality(things=set(things), stuffs=set(stuff), return_sq_and_rq=True)(
        torch.tensor(pred), torch.tensor(target))
    # its per-class order: things sorted, then stuff sorted
    order = sorted(things) + sorted(stuff)
    return {c: per_class.numpy().reshape(-1, 3)[k] for k, c in enumerate(order)}, average.numpy()


_maps = st.fixed_dictionaries(dict(
    seed=st.integers(0, 2**16), n=st.integers(1, 3), h=st.integers(4, 24), w=st.integers(4, 24),
    cell=st.integers(1, 6), num_things=st.integers(0, 3), num_stuff=st.integers(0, 3),
    max_instance=st.integers(0, 4), p=st.sampled_from([0.0, 0.05, 0.2, 0.6]),
    void_fraction=st.sampled_from([0.0, 0.1, 0.4])))


def _draw(d, pred_void=0.0):
    rng = np.random.default_rng(d["seed"])
    num_things, num_stuff = d["num_things"], d["num_stuff"]
    if num_things + num_stuff == 0:
        num_stuff = 1
    ids = rng.permutation(12)[:num_things + num_stuff]      # arbitrary, non-contiguous ids
    things, stuff = sorted(ids[:num_things].tolist()), sorted(ids[num_things:].tolist())
    categories = things + stuff
    target = _blocky(rng, d["n"], d["h"], d["w"], categories, d["max_instance"], d["cell"])
    pred = _perturbed(rng, target, categories, d["max_instance"], d["p"])
    void = rng.random(target.shape[:-1]) < d["void_fraction"]
    target[..., 0][void] = VOID
    if pred_void:
        pred[..., 0][rng.random(pred.shape[:-1]) < pred_void] = VOID
    return pred, target, things, stuff


@given(d=_maps)
@settings(max_examples=25)
def test_equals_torchmetrics_on_drawn_panoptic_maps(torch, d):
    # rtol 1e-6: torchmetrics divides integer areas, which PyTorch does in float32, so
    # each of its IoUs carries a relative error near 1e-7 (seen: 1.4e-7); our sums are exact.
    pred, target, things, stuff = _draw(d)
    ours = metrics.panoptic_quality(msn.backend.asarray(pred), msn.backend.asarray(target), things, stuff)
    theirs, average = _torchmetrics(torch, pred, target, things, stuff)
    counts = metrics.panoptic_counts(pred, target, things, stuff)
    for k, c in enumerate(sorted(things + stuff)):
        if counts[TP:, k].sum() == 0:      # occurs nowhere: NaN here, 0 there
            assert math.isnan(ours["per_class"][c]["pq"])
            continue
        got = [ours["per_class"][c][s] for s in ("pq", "sq", "rq")]
        np.testing.assert_allclose(got, theirs[c], rtol=1e-6, atol=1e-12, err_msg=f"category {c}")
    np.testing.assert_allclose([ours["pq"], ours["sq"], ours["rq"]], average, rtol=1e-6, atol=1e-12)


@given(d=_maps, pred_void=st.sampled_from([0.0, 0.1, 0.5]))
@settings(max_examples=25)
def test_equals_a_segment_by_segment_reference(d, pred_void):
    pred, target, things, stuff = _draw(d, pred_void)
    counts = metrics.panoptic_counts(msn.backend.asarray(pred), msn.backend.asarray(target), things, stuff)
    np.testing.assert_allclose(counts, _reference_counts(pred, target, things, stuff), atol=1e-12)


@given(d=_maps)
@settings(max_examples=10)
def test_counts_of_parts_add_up_and_a_perfect_prediction_scores_one(d):
    pred, target, things, stuff = _draw(d)
    whole = metrics.panoptic_counts(pred, target, things, stuff)
    parts = sum(metrics.panoptic_counts(pred[i:i + 1], target[i:i + 1], things, stuff) for i in range(len(pred)))
    np.testing.assert_allclose(parts, whole, atol=1e-12)
    perfect = target.copy()
    perfect[..., 0][perfect[..., 0] == VOID] = (things + stuff)[0]   # void pixels may hold anything
    s = metrics.panoptic_quality(perfect, target, things, stuff)
    if not math.isnan(s["pq"]):
        assert s["pq"] == s["sq"] == s["rq"] == 1.0


def _map(category, instance):
    return np.stack([np.array(category), np.array(instance)], axis=-1)[None]


def test_worked_example_by_hand():
    # truth: road (0) | car 1 (4 px) | car 2 (2 px); prediction: car 1 slightly too big, car 2 missed,
    # a phantom car 3.
    target = _map([[0, 0, 1, 1, 1, 1, 0, 0],
                   [0, 0, 1, 1, 0, 0, 0, 0]],
                  [[0, 0, 1, 1, 2, 2, 0, 0],
                   [0, 0, 1, 1, 0, 0, 0, 0]])
    pred = _map([[0, 1, 1, 1, 0, 0, 1, 1],
                 [0, 0, 1, 1, 0, 0, 0, 0]],
                [[0, 5, 5, 5, 0, 0, 3, 3],
                 [0, 0, 5, 5, 0, 0, 0, 0]])
    s = metrics.panoptic_quality(pred, target, things=[1], stuff=[0])
    car, road = s["per_class"][1], s["per_class"][0]
    # car 1: IoU 4/5, matched; car 2: predicted as road (FN); car 3 lies on road (FP)
    assert (car["tp"], car["fp"], car["fn"]) == (1, 1, 1)
    assert car["sq"] == pytest.approx(4 / 5) and car["rq"] == pytest.approx(1 / (1 + 0.5 + 0.5))
    # road: truth 10 px, pred 9 px, intersection 7 -> IoU 7/12
    assert (road["tp"], road["fp"], road["fn"]) == (1, 0, 0) and road["pq"] == pytest.approx(7 / 12)
    assert s["pq"] == pytest.approx((0.8 * 0.5 + 7 / 12) / 2)
    assert s["pq_things"] == pytest.approx(0.4) and s["pq_stuff"] == pytest.approx(7 / 12)


def test_iou_of_exactly_one_half_is_not_a_match():
    target = _map([[1, 1, 0, 0]], [[1, 1, 0, 0]])
    pred = _map([[1, 1, 1, 1]], [[1, 1, 1, 1]])        # IoU 2/4
    car = metrics.panoptic_quality(pred, target, things=[1], stuff=[0])["per_class"][1]
    assert (car["tp"], car["fp"], car["fn"]) == (0, 1, 1)


def test_void_pixels_leave_the_predicted_segment_before_iou():
    target = _map([[1, 1, VOID, VOID, 0]], [[1, 1, 0, 0, 0]])
    pred = _map([[1, 1, 1, 1, 0]], [[7, 7, 7, 7, 0]])      # 2 of its 4 pixels are void
    car = metrics.panoptic_quality(pred, target, things=[1], stuff=[0])["per_class"][1]
    assert car["tp"] == 1 and car["sq"] == 1.0              # IoU 2/2, not 2/4


def test_a_mostly_void_prediction_is_not_a_false_positive():
    target = _map([[0, VOID, VOID, VOID, 0, 0]], [[0] * 6])
    pred = _map([[0, 1, 1, 1, 1, 0]], [[0, 3, 3, 3, 3, 0]])    # 3 of 4 void: ignored
    car = metrics.panoptic_quality(pred, target, things=[1], stuff=[0])["per_class"][1]
    assert car["fp"] == 0 and math.isnan(car["pq"])         # the car category does not occur at all
    pred2 = _map([[0, 1, 1, 0, 1, 1]], [[0, 3, 3, 0, 3, 3]])   # 1 of 4 void: a false positive
    assert metrics.panoptic_quality(pred2, target, things=[1], stuff=[0])["per_class"][1]["fp"] == 1


def test_unlabelled_prediction_pixels_still_count_against_the_truth():
    target = _map([[1, 1, 1, 1, 0]], [[1, 1, 1, 1, 0]])
    pred = _map([[1, 1, VOID, VOID, 0]], [[1, 1, 0, 0, 0]])     # IoU 2/4: no match
    car = metrics.panoptic_quality(pred, target, things=[1], stuff=[0])["per_class"][1]
    assert (car["tp"], car["fn"]) == (0, 1)


def test_stuff_is_one_segment_per_category_per_image_and_images_are_separate():
    # stuff instance ids are ignored: the two "road instances" are one segment
    target = _map([[0, 0, 0, 0]], [[0, 0, 0, 0]])
    pred = _map([[0, 0, 0, 0]], [[1, 1, 2, 2]])
    assert metrics.panoptic_quality(pred, target, things=[1], stuff=[0])["pq"] == 1.0
    # the same instance id in two images is two objects
    target = np.concatenate([_map([[1, 1, 0]], [[1, 1, 0]])] * 2)
    pred = target.copy()
    car = metrics.panoptic_quality(pred, target, things=[1], stuff=[0])["per_class"][1]
    assert car["tp"] == 2


def test_counts_layout_and_scores_of_absent_categories():
    target = _map([[0, 0]], [[0, 0]])
    counts = metrics.panoptic_counts(target, target, things=[3], stuff=[0, 5])
    np.testing.assert_array_equal(counts, [[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]])  # columns 0, 3, 5
    s = metrics.panoptic_scores(counts, things=[3], stuff=[0, 5])
    assert s["pq"] == 1.0 and s["pq_stuff"] == 1.0 and math.isnan(s["pq_things"])
    assert math.isnan(s["per_class"][5]["sq"])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(things=[1, 2], stuff=[0, 2]), ValueError, r"categories \[2\] are claimed as both thing and stuff"),
    (dict(things=[1], stuff=[0, 0]), ValueError, "more than once"),
    (dict(things=[], stuff=[]), ValueError, "both empty"),
    (dict(things=[1.5], stuff=[0]), TypeError, r"panoptic_quality: things\[0\] must be an int"),
    (dict(things=[-1], stuff=[0]), ValueError, r"things\[0\] must be >= 0"),
    (dict(things=1, stuff=[0]), TypeError, "collection"),
    (dict(things=[1], stuff=[0], ignore_index=0), ValueError, "ignore_index=0 is also listed as a stuff"),
])
def test_bad_categories(kwargs, error, match):
    m = _map([[0, 1]], [[0, 1]])
    with pytest.raises(error, match=match):
        metrics.panoptic_quality(m, m, **kwargs)


def test_unknown_category_ids_are_named():
    target = _map([[0, 1, 1]], [[0, 1, 1]])
    pred = _map([[0, 7, 9]], [[0, 1, 1]])
    with pytest.raises(ValueError, match=r"pred holds category ids \[7, 9\], which are neither things \[1\]"):
        metrics.panoptic_quality(pred, target, things=[1], stuff=[0])
    with pytest.raises(ValueError, match=r"target holds category ids \[9\]"):
        metrics.panoptic_quality(target, _map([[0, 1, 9]], [[0, 1, 1]]), things=[1], stuff=[0])


@pytest.mark.parametrize("pred, target, error, match", [
    (np.zeros((1, 2, 2, 2), int), np.zeros((1, 2, 3, 2), int), ValueError, "same shape"),
    (np.zeros((1, 2, 2, 3), int), np.zeros((1, 2, 2, 3), int), ValueError, r"\(N, \*spatial, 2\)"),
    (np.zeros((2, 2), int), np.zeros((2, 2), int), ValueError, r"\(N, \*spatial, 2\)"),
    (np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), int), TypeError, "integer"),
    (np.array([[[1, -2]]]), np.array([[[1, 0]]]), ValueError, "negative instance id"),
])
def test_bad_maps(pred, target, error, match):
    with pytest.raises(error, match=match):
        metrics.panoptic_quality(pred, target, things=[1], stuff=[0])


def test_bad_counts():
    with pytest.raises(ValueError, match=r"counts must have shape \(4, 2\)"):
        metrics.panoptic_scores(np.zeros((3, 2)), things=[1], stuff=[0])
    # NaN raised "cannot convert float NaN to integer"; a negative count gave scores of NaN
    for bad in (np.full((4, 2), np.nan), np.array([[1.0, 0], [-1, 0], [0, 0], [0, 0]]),
                np.array([[0.5, 0], [0.5, 0], [0, 0], [0, 0]])):
        with pytest.raises(ValueError, match="panoptic_scores: counts must be finite and >= 0, with whole numbers"):
            metrics.panoptic_scores(bad, things=[1], stuff=[0])


def test_describe_pq_states_the_product_and_the_counts():
    s = metrics.panoptic_quality(np.stack([np.ones((1, 2, 4), np.int64), np.ones((1, 2, 4), np.int64)], -1),
                                 np.stack([np.ones((1, 2, 4), np.int64), np.ones((1, 2, 4), np.int64)], -1),
                                 things=[1], stuff=[0])["per_class"][1]
    assert metrics.describe_pq(s) == "PQ 1.000 = SQ 1.000 x RQ 1.000 (1 matched, 0 false, 0 missed)"


def test_an_empty_batch_counts_nothing():
    empty = np.zeros((0, 4, 4, 2), np.int64)
    np.testing.assert_array_equal(metrics.panoptic_counts(empty, empty, [1], [0]), np.zeros((4, 2)))


def test_huge_instance_ids_match_or_are_refused_never_lost():
    """The segment key (image * K + column) * (largest id + 1) + id is int64: ids up to the
    largest that keeps it in range still match themselves; larger ones are a clear error
    (they used to wrap around and the segment vanished: PQ of a perfect prediction 0)."""
    fits = _map([[1, 1, 0]], [[2**61, 2**61, 0]])             # 1 image, 2 categories: keys < 2**62 + 2
    assert metrics.panoptic_quality(fits, fits, things=[1], stuff=[0])["per_class"][1]["tp"] == 1
    wraps = _map([[1, 1, 0]], [[2**62, 2**62, 0]])
    with pytest.raises(ValueError, match=r"panoptic_quality: pred holds the instance id 4611686018427387904: "
                                         r"with 1 image\(s\) and 2 categories the segment keys"):
        metrics.panoptic_quality(wraps, wraps, things=[1], stuff=[0])
    unsigned = _map([[1, 0]], [[0, 0]]).astype(np.uint64)
    unsigned[0, 0, 0, 1] = 2**63                               # int64 would read it as negative
    with pytest.raises(ValueError, match=r"pred holds the value 9223372036854775808, above 9223372036854775807"):
        metrics.panoptic_quality(unsigned, unsigned, things=[1], stuff=[0])


def test_a_missed_one_pixel_segment_is_a_false_negative():
    """The docstring's example: the one-pixel car (1, 2) is missed."""
    target = np.array([[[[1, 1], [1, 1], [0, 0], [1, 2]]]])
    pred = np.array([[[[1, 7], [1, 7], [0, 0], [0, 0]]]])
    s = metrics.panoptic_quality(pred, target, things=[1], stuff=[0])
    assert (s["per_class"][1]["tp"], s["per_class"][1]["fn"]) == (1, 1)
    assert s["per_class"][1]["pq"] == pytest.approx(2 / 3)


def test_the_torchmetrics_comparison_skips_without_torchmetrics(monkeypatch, torch):
    for name in [n for n in sys.modules if n.split(".")[0] == "torchmetrics"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchmetrics", None)        # "not installed"
    monkeypatch.setitem(sys.modules, "torchmetrics.detection", None)
    pred = target = np.zeros((1, 2, 2, 2), dtype=np.int64)
    with pytest.raises(pytest.skip.Exception):
        _torchmetrics(torch, pred, target, [1], [0])
