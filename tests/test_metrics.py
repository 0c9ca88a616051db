"""Metrics: hand-computed confusion matrices and the FCN paper's four scores,
absent classes, ignore_index, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minisegnet import metrics


def test_confusion_matrix_by_hand():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    cm = metrics.confusion_matrix(pred, target, 3)
    # rows = truth, columns = prediction
    expected = np.array([[1, 1, 0],
                         [0, 2, 0],
                         [1, 0, 1]])
    np.testing.assert_array_equal(metrics.backend.to_numpy(cm), expected)
    assert cm.dtype == np.int64


def test_the_four_scores_by_hand():
    cm = np.array([[1, 1, 0],
                   [0, 2, 0],
                   [1, 0, 1]])
    # t = [2, 2, 2], predicted per class = [2, 3, 1], n_ii = [1, 2, 1]
    assert metrics.pixel_accuracy(cm) == pytest.approx(4 / 6)
    assert metrics.mean_accuracy(cm) == pytest.approx((1 / 2 + 2 / 2 + 1 / 2) / 3)
    iou = [1 / (2 + 2 - 1), 2 / (2 + 3 - 2), 1 / (2 + 1 - 1)]
    np.testing.assert_allclose(metrics.iou_per_class(cm), iou)
    assert metrics.mean_iou(cm) == pytest.approx(sum(iou) / 3)
    assert metrics.frequency_weighted_iou(cm) == pytest.approx(sum(2 * v for v in iou) / 6)
    np.testing.assert_allclose(metrics.dice_per_class(cm), [2 / 4, 4 / 5, 2 / 3])
    s = metrics.scores(cm)
    assert s["mean_iou"] == pytest.approx(sum(iou) / 3) and set(s) == {"pixel_acc", "mean_acc", "mean_iou", "fw_iou"}


def test_class_absent_from_truth_and_prediction_is_left_out():
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    cm = metrics.confusion_matrix(pred, target, 4)   # classes 2 and 3 never occur
    iou = metrics.iou_per_class(cm)
    assert np.isnan(iou[2]) and np.isnan(iou[3])
    np.testing.assert_allclose(iou[:2], [1 / 2, 2 / 3])
    assert metrics.mean_iou(cm) == pytest.approx((1 / 2 + 2 / 3) / 2)       # n_cl = 2, not 4
    assert metrics.mean_accuracy(cm) == pytest.approx((1 / 2 + 1) / 2)
    assert np.isnan(metrics.dice_per_class(cm)[3])


def test_class_predicted_but_absent_from_truth_counts_as_zero_iou():
    target = np.array([0, 0, 0, 1])
    pred = np.array([0, 2, 0, 1])      # class 2 is predicted once, never true
    cm = metrics.confusion_matrix(pred, target, 3)
    iou = metrics.iou_per_class(cm)
    assert iou[2] == 0.0
    assert metrics.mean_iou(cm) == pytest.approx((2 / 3 + 1 + 0) / 3)
    # mean accuracy: n_22 / t_2 is 0/0, left out
    assert metrics.mean_accuracy(cm) == pytest.approx((2 / 3 + 1) / 2)
    # f.w. IU: class 2 has weight t_2 = 0
    assert metrics.frequency_weighted_iou(cm) == pytest.approx((3 * 2 / 3 + 1 * 1) / 4)


def test_ignore_index_pixels_are_not_counted():
    target = np.array([[0, 255, 1], [255, 1, 0]])
    pred = np.array([[0, 1, 1], [0, 0, 0]])
    cm = metrics.confusion_matrix(pred, target, 2, ignore_index=255)
    np.testing.assert_array_equal(cm, [[2, 0], [1, 1]])
    assert cm.sum() == 4
    # ignore_index may also be negative (PyTorch's -100)
    cm2 = metrics.confusion_matrix(pred, np.where(target == 255, -100, target), 2, ignore_index=-100)
    np.testing.assert_array_equal(cm, cm2)


def test_empty_matrix_gives_nan():
    cm = np.zeros((3, 3), dtype=np.int64)
    for f in (metrics.pixel_accuracy, metrics.mean_accuracy, metrics.mean_iou, metrics.frequency_weighted_iou):
        assert math.isnan(f(cm))


@given(n=st.integers(1, 60), c=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_matches_a_loop_and_perfect_prediction_scores_one(n, c, seed):
    rng = np.random.default_rng(seed)
    target, pred = rng.integers(0, c, n), rng.integers(0, c, n)
    cm = metrics.confusion_matrix(pred, target, c)
    loop = np.zeros((c, c), dtype=np.int64)
    for t, p in zip(target, pred):
        loop[t, p] += 1
    np.testing.assert_array_equal(cm, loop)
    assert metrics.pixel_accuracy(cm) == pytest.approx(np.mean(pred == target))
    perfect = metrics.confusion_matrix(target, target, c)
    for f in (metrics.pixel_accuracy, metrics.mean_accuracy, metrics.mean_iou, metrics.frequency_weighted_iou):
        assert f(perfect) == pytest.approx(1.0)
    # matrices of parts add up to the matrix of the whole
    half = n // 2
    parts = metrics.confusion_matrix(pred[:half], target[:half], c) + \
        metrics.confusion_matrix(pred[half:], target[half:], c)
    np.testing.assert_array_equal(parts, cm)


def test_accepts_tensors():
    import minisegnet as msn
    t = msn.tensor(np.array([0, 1, 1]))
    cm = metrics.confusion_matrix(t, t, 2)
    np.testing.assert_array_equal(metrics.backend.to_numpy(cm), [[1, 0], [0, 2]])


@pytest.mark.parametrize("seed, c, ignore", [(0, 4, None), (1, 3, 255), (2, 5, -100), (3, 2, None)])
def test_agrees_with_torchmetrics_where_the_definitions_agree(torch, seed, c, ignore):
    tm = pytest.importorskip("torchmetrics.classification")
    rng = np.random.default_rng(seed)
    truth, pred = rng.integers(0, c, (2, 9, 11)), rng.integers(0, c, (2, 9, 11))
    pred[0, 0] = (truth[0, 0] + 1) % c                 # some errors in any case
    if ignore is not None:
        truth[rng.random(truth.shape) < 0.2] = ignore
    kw = {} if ignore is None else {"ignore_index": ignore}
    cm = metrics.confusion_matrix(pred, truth, c, ignore_index=ignore)
    p, t = torch.tensor(pred), torch.tensor(truth)
    iou = tm.MulticlassJaccardIndex(c, average="none", **kw)(p, t).numpy()
    np.testing.assert_allclose(metrics.iou_per_class(cm), iou, rtol=1e-6)
    np.testing.assert_allclose(metrics.mean_iou(cm), tm.MulticlassJaccardIndex(c, **kw)(p, t).item(), rtol=1e-6)
    np.testing.assert_allclose(metrics.pixel_accuracy(cm),
                               tm.MulticlassAccuracy(c, average="micro", **kw)(p, t).item(), rtol=1e-6)
    np.testing.assert_allclose(metrics.mean_accuracy(cm),             # every class has true pixels here
                               tm.MulticlassAccuracy(c, average="macro", **kw)(p, t).item(), rtol=1e-6)
    # where they differ (docs/metrics.md): a class predicted but never true
    stray_p, stray_t = np.array([0, 0, 2]), np.array([0, 0, 1])
    stray = metrics.confusion_matrix(stray_p, stray_t, 3)
    theirs = tm.MulticlassAccuracy(3, average="macro")(torch.tensor(stray_p), torch.tensor(stray_t)).item()
    assert metrics.mean_accuracy(stray) == 0.5 and np.isclose(theirs, 1 / 3)
    # a class in neither truth nor prediction both leave out
    absent = tm.MulticlassAccuracy(3, average="macro")(torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1])).item()
    assert metrics.mean_accuracy(metrics.confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), 3)) == 1.0
    assert absent == 1.0
    # every pixel ignored: all of ours are NaN (0/0); torchmetrics' accuracies and per-class IoU say 0,
    # its mean IoU is NaN too
    none_p, none_t = np.array([0, 1, 2, 1]), np.full(4, 255)
    nothing = metrics.confusion_matrix(none_p, none_t, 3, ignore_index=255)
    assert nothing.sum() == 0
    assert np.isnan([metrics.pixel_accuracy(nothing), metrics.mean_accuracy(nothing), metrics.mean_iou(nothing),
                     metrics.frequency_weighted_iou(nothing), *metrics.iou_per_class(nothing),
                     *metrics.dice_per_class(nothing), *metrics.accuracy_per_class(nothing)]).all()
    tp, tt = torch.tensor(none_p), torch.tensor(none_t)
    # a class that never occurs: ours NaN (0/0), torchmetrics' per-class IoU 0 (metrics.md says so)
    ours = metrics.iou_per_class(metrics.confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 3))
    theirs = tm.MulticlassJaccardIndex(3, average="none")(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])).numpy()
    assert np.allclose(ours[:2], theirs[:2]) and np.isnan(ours[2]) and theirs[2] == 0
    assert tm.MulticlassAccuracy(3, average="micro", ignore_index=255)(tp, tt).item() == 0
    assert tm.MulticlassAccuracy(3, average="macro", ignore_index=255)(tp, tt).item() == 0
    assert (tm.MulticlassJaccardIndex(3, average="none", ignore_index=255)(tp, tt).numpy() == 0).all()
    assert np.isnan(tm.MulticlassJaccardIndex(3, ignore_index=255)(tp, tt).item())
    # and torch tensors are taken as arrays
    np.testing.assert_array_equal(metrics.confusion_matrix(p, t, c, ignore_index=ignore), cm)


def test_fw_iou_is_at_most_pixel_accuracy_but_not_always_above_mean_iou():
    rng = np.random.default_rng(4)
    for _ in range(200):
        cm = rng.integers(0, 20, (4, 4))
        assert metrics.frequency_weighted_iou(cm) <= metrics.pixel_accuracy(cm) + 1e-12
    skewed = np.array([[40, 0, 40], [0, 10, 0], [0, 0, 10]])
    assert metrics.frequency_weighted_iou(skewed) < metrics.mean_iou(skewed)


@pytest.mark.parametrize("pred, target, c, match", [
    (np.array([0, 1]), np.array([0, 1, 1]), 2, "same shape"),
    (np.array([0, 3]), np.array([0, 1]), 2, "pred holds label 3"),
    (np.array([0, 1]), np.array([0, -1]), 2, "target holds label -1"),
    (np.array([0.0, 1.0]), np.array([0, 1]), 2, "integer labels"),
    (np.array([0, 1]), np.array([0, 1]), 0, "num_classes"),
])
def test_bad_input(pred, target, c, match):
    with pytest.raises((ValueError, TypeError), match=match):
        metrics.confusion_matrix(pred, target, c)


def test_bad_matrix():
    with pytest.raises(ValueError, match="square"):
        metrics.mean_iou(np.zeros((2, 3)))


def test_an_ignore_index_that_is_a_class_is_refused(torch):
    """ignore_index=0 with 4 classes emptied row 0 but still counted predictions of 0, so class 0 entered
    the mean IoU as 0 (0.112 where torchmetrics, which drops that class from its mean, says 0.150)."""
    rng = np.random.default_rng(0)
    p, t = rng.integers(0, 4, (2, 8, 8)), rng.integers(0, 4, (2, 8, 8))
    for ignore in (0, 3):
        with pytest.raises(ValueError, match=rf"confusion_matrix: ignore_index={ignore} is one of the classes 0..3"):
            metrics.confusion_matrix(p, t, 4, ignore_index=ignore)
    # what the message says to do gives torchmetrics' number
    tm = pytest.importorskip("torchmetrics.classification")
    cm = metrics.confusion_matrix(p, np.where(t == 0, 255, t), 4, ignore_index=255)
    theirs = tm.MulticlassJaccardIndex(4, ignore_index=0)(torch.tensor(p), torch.tensor(t)).item()
    assert np.isclose(metrics.iou_per_class(cm)[1:].mean(), theirs, rtol=1e-6)
    assert not np.isclose(metrics.mean_iou(cm), theirs)     # the class's 0 in the mean: why it is refused


def test_an_ignore_index_just_past_the_classes_is_taken():
    """ignore_index == num_classes lies outside the classes (a mutation moved the refusal's bound)."""
    cm = metrics.confusion_matrix(np.array([0, 1, 2, 1]), np.array([0, 1, 3, 3]), 3, ignore_index=3)
    assert cm.sum() == 2 and cm[0, 0] == 1 and cm[1, 1] == 1


def test_a_predicted_label_equal_to_num_classes_is_refused():
    """The edge of the range: label C (not only C + 1) would land in another cell of the matrix."""
    with pytest.raises(ValueError, match=r"pred holds label 3, outside \[0, 3\)"):
        metrics.confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_scores_mean_accuracy_leaves_out_classes_absent_from_the_truth():
    cm = np.array([[3, 0, 1], [0, 2, 0], [0, 0, 0]])       # class 2 predicted once, never true
    assert metrics.scores(cm)["mean_acc"] == pytest.approx((0.75 + 1.0) / 2)
    assert metrics.scores(cm)["mean_acc"] == metrics.mean_accuracy(cm)


def test_torchmetrics_per_class_accuracy_is_0_where_ours_is_nan(torch):
    tm = pytest.importorskip("torchmetrics.classification")
    cases = {"predicted, never true": (np.array([0, 0, 2]), np.array([0, 0, 1])),
             "in neither": (np.array([0, 1, 1]), np.array([0, 0, 1]))}
    for name, (pred, truth) in cases.items():
        ours = metrics.accuracy_per_class(metrics.confusion_matrix(pred, truth, 3))
        theirs = tm.MulticlassAccuracy(3, average="none")(torch.tensor(pred), torch.tensor(truth)).numpy()
        assert np.isnan(ours[2]) and theirs[2] == 0, name
        assert np.allclose(ours[:2], theirs[:2]), name          # they agree on the classes that occur


def test_confusion_matrix_names_an_out_of_range_uint64_label_as_it_is():
    """2**64 - 1 as int64 is -1: the old message quoted label -1."""
    with pytest.raises(ValueError, match="confusion_matrix: pred holds label 18446744073709551615, outside"):
        metrics.confusion_matrix(np.array([2**64 - 1], np.uint64), np.array([0]), 3)
