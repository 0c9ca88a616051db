"""Panoptic-DeepLab's targets and grouping (minisegnet/panoptic.py): targets against
an object-by-object loop; centre peaks against the same rule written with PyTorch's
max_pool2d and topk; pixel votes and majority classes against loops; perfect
outputs give back the truth (PQ 1); shapes; bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minisegnet as msn
from minisegnet import metrics, panoptic as P

to_numpy = msn.backend.to_numpy
on = msn.backend.asarray


def _boxes_map(rng, n, h, w, max_objects, gap=0):
    """(n, h, w) ids of random rectangles (later ones on top: occlusion, some ids vanish)."""
    ids = np.zeros((n, h, w), np.int64)
    for i in range(n):
        for k in range(1, rng.integers(0, max_objects + 1) + 1):
            y, x = rng.integers(0, h), rng.integers(0, w)
            ids[i, y:y + rng.integers(1, h // 2 + 2), x:x + rng.integers(1, w // 2 + 2)] = k
    return ids


def _reference_targets(ids, sigma):
    n, h, w = ids.shape
    center = np.zeros((n, 1, h, w))
    offset = np.zeros((n, 2, h, w))
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        for k in np.unique(ids[i]):
            if k == 0:
                continue
            ys, xs = np.nonzero(ids[i] == k)
            cy, cx = np.floor(ys.mean() + 0.5), np.floor(xs.mean() + 0.5)
            center[i, 0] = np.maximum(center[i, 0], np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2)))
            offset[i, 0][ids[i] == k] = cy - ys
            offset[i, 1][ids[i] == k] = cx - xs
    return center, offset


@given(seed=st.integers(0, 2**16), n=st.integers(1, 3), h=st.integers(1, 20), w=st.integers(1, 20),
       objects=st.integers(0, 5), sigma=st.sampled_from([0.7, 2.0, 5.0]))
def test_targets_equal_an_object_by_object_loop(seed, n, h, w, objects, sigma):
    rng = np.random.default_rng(seed)
    ids = _boxes_map(rng, n, h, w, objects)
    valid = rng.random((n, h, w)) < 0.8
    t = P.panoptic_targets(on(ids), sigma=sigma, valid=on(valid))
    center, offset = _reference_targets(ids, sigma)
    assert {k: v.shape for k, v in t.items()} == {"center": (n, 1, h, w), "center_weight": (n, 1, h, w),
                                                  "offset": (n, 2, h, w), "offset_weight": (n, 2, h, w)}
    assert all(v.dtype == np.float32 for v in t.values())
    np.testing.assert_allclose(to_numpy(t["center"]), center, atol=1e-6)
    np.testing.assert_allclose(to_numpy(t["offset"]), offset, atol=1e-6)
    np.testing.assert_array_equal(to_numpy(t["center_weight"])[:, 0], valid)
    np.testing.assert_array_equal(to_numpy(t["offset_weight"]), np.stack([(ids > 0) & valid] * 2, axis=1))


def test_targets_by_hand():
    ids = np.zeros((1, 5, 6), np.int64)
    ids[0, 1:4, 0:2] = 3             # centre of mass (2, 0.5): rounds to (2, 1)
    t = P.panoptic_targets(ids, sigma=1.0)
    assert t["center"][0, 0, 2, 1] == 1.0 and t["center"][0, 0, 2, 2] == pytest.approx(np.exp(-0.5))
    np.testing.assert_array_equal(t["offset"][0, :, 1, 0], [1, 1])       # (1, 0) -> (2, 1)
    np.testing.assert_array_equal(t["offset"][0, :, 3, 1], [-1, 0])
    assert not t["offset"][0][:, ids[0] == 0].any()
    centers, present = P.instance_centers(ids)
    assert present.tolist() == [[False, False, False, True]] and centers[0, 3].tolist() == [2.0, 1.0]


def _torch_peaks(torch, heat, threshold, kernel, top_k):
    """The peak rule in PyTorch: equal to the max-pool, above the threshold, topk."""
    t = torch.tensor(heat)
    pooled = torch.nn.functional.max_pool2d(t, kernel, stride=1, padding=kernel // 2)
    score = torch.where((t == pooled) & (t > threshold), t, torch.tensor(-np.inf, dtype=t.dtype)).flatten(1)
    values, order = torch.topk(score, min(top_k, score.shape[1]), dim=1)
    w = heat.shape[3]
    return torch.stack([order // w, order % w], dim=2).numpy(), (values > -np.inf).numpy()


@given(seed=st.integers(0, 2**16), n=st.integers(1, 3), h=st.integers(1, 24), w=st.integers(1, 24),
       kernel=st.sampled_from([1, 3, 5, 7]), top_k=st.integers(1, 40), threshold=st.sampled_from([0.1, 0.5, 0.9]),
       smooth=st.booleans())
def test_centre_peaks_equal_the_rule_in_pytorch(torch, seed, n, h, w, kernel, top_k, threshold, smooth):
    rng = np.random.default_rng(seed)
    heat = rng.random((n, 1, h, w))
    if smooth:          # blobs rather than noise: fewer, rounder peaks
        heat = np.cumsum(np.cumsum(heat, 2), 3)
        heat = heat / heat.max()
    coords, valid = P.find_centers(on(heat), threshold, kernel, top_k)
    theirs, their_valid = _torch_peaks(torch, heat, threshold, kernel, top_k)
    np.testing.assert_array_equal(to_numpy(valid), their_valid)
    np.testing.assert_array_equal(to_numpy(coords)[their_valid], theirs[their_valid])


def test_a_peak_must_be_the_window_maximum_and_above_the_threshold():
    heat = np.zeros((1, 1, 5, 7))
    heat[0, 0, 1, 1] = 0.9
    heat[0, 0, 2, 2] = 0.5          # inside 0.9's 3x3 window: suppressed
    heat[0, 0, 2, 5] = 0.3          # its own window: kept
    heat[0, 0, 4, 0] = 0.1          # not above the threshold 0.1
    coords, valid = map(to_numpy, P.find_centers(on(heat), threshold=0.1, nms_kernel=3, top_k=4))
    assert valid.tolist() == [[True, True, False, False]]
    assert coords[0, :2].tolist() == [[1, 1], [2, 5]]
    coords, valid = map(to_numpy, P.find_centers(on(heat), threshold=0.1, nms_kernel=1, top_k=4))  # no suppression
    assert valid.sum() == 3 and coords[0, 1].tolist() == [2, 2]        # strongest first


def test_a_flat_top_keeps_every_pixel_as_a_peak(torch):
    """Not thinned, as documented (docstring, docs/instances.md): a symmetric bump's 2x2 top gives 4
    adjacent centres, as PyTorch's max-pool rule (the reference implementation's) does."""
    yy, xx = np.mgrid[0:8, 0:8]
    heat = np.exp(-((yy - 3.5) ** 2 + (xx - 3.5) ** 2) / 8)[None, None]
    assert (heat[0, 0, 3:5, 3:5] == heat.max()).all()
    coords, valid = map(to_numpy, P.find_centers(on(heat)))
    assert coords[0][valid[0]].tolist() == [[3, 3], [3, 4], [4, 3], [4, 4]]
    theirs, their_valid = _torch_peaks(torch, heat, P.THRESHOLD, P.NMS_KERNEL, P.TOP_K)
    assert sorted(theirs[their_valid].tolist()) == [[3, 3], [3, 4], [4, 3], [4, 4]]


def test_the_window_keeps_one_of_two_peaks_within_3_pixels():
    """What panoptic.py and docs/instances.md say of the 7 x 7 window: of two local maxima at
    Chebyshev distance max(|dy|, |dx|) <= 3 only the larger is a peak; 4 apart, both are."""
    for (dy, dx), kept in (((3, 3), 1), ((3, 0), 1), ((0, 4), 2), ((4, 1), 2)):
        heat = np.zeros((1, 1, 16, 16), np.float32)
        heat[0, 0, 5, 5], heat[0, 0, 5 + dy, 5 + dx] = 0.9, 0.8
        coords, valid = map(to_numpy, P.find_centers(on(heat)))
        assert valid.sum() == kept and coords[0, 0].tolist() == [5, 5], (dy, dx)


@given(seed=st.integers(0, 2**16), n=st.integers(1, 2), h=st.integers(1, 12), w=st.integers(1, 12),
       k=st.integers(1, 6))
def test_each_pixel_joins_the_nearest_centre_to_where_it_points(seed, n, h, w, k):
    rng = np.random.default_rng(seed)
    offset = rng.uniform(-6, 6, (n, 2, h, w))
    thing = rng.random((n, h, w)) < 0.6
    coords = np.stack([rng.integers(0, h, (n, k)), rng.integers(0, w, (n, k))], axis=2)
    valid = rng.random((n, k)) < 0.7
    ours = to_numpy(P.group_pixels(on(offset), on(thing), on(coords), on(valid)))
    for i in range(n):
        for y in range(h):
            for x in range(w):
                if not thing[i, y, x] or not valid[i].any():
                    assert ours[i, y, x] == 0
                    continue
                vy, vx = y + offset[i, 0, y, x], x + offset[i, 1, y, x]
                d = [(vy - cy) ** 2 + (vx - cx) ** 2 if ok else np.inf for (cy, cx), ok in zip(coords[i], valid[i])]
                assert ours[i, y, x] == int(np.argmin(d)) + 1


def test_a_pixel_whose_offset_is_not_a_number_joins_no_centre():
    """NaN or infinite offsets are at no finite distance from any centre: id 0. They used to
    join centre 1, even when centre 1 was not a valid peak."""
    offset = np.zeros((1, 2, 2, 3), np.float32)
    offset[0, :, 0, 0] = np.nan
    offset[0, 1, 0, 1] = np.inf
    thing = np.ones((1, 2, 3), bool)
    coords, valid = np.array([[[0, 0], [1, 2]]]), np.array([[False, True]])      # centre 1 is invalid
    ids = to_numpy(P.group_pixels(on(offset), on(thing), on(coords), on(valid)))
    assert ids.tolist() == [[[0, 0, 2], [2, 2, 2]]]


@given(seed=st.integers(0, 2**16), n=st.integers(1, 2), h=st.integers(2, 14), w=st.integers(2, 14),
       min_area=st.integers(1, 6))
def test_merge_equals_a_loop(seed, n, h, w, min_area):
    """Majority vote per instance (ties to the smaller class), void for lonely thing
    pixels, small stuff regions (8-connected) void."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    things, stuff = [1, 4], [0, 2, 3]
    semantic = rng.choice([0, 1, 2, 3, 4], size=(n, h, w), p=[0.3, 0.2, 0.2, 0.1, 0.2])
    semantic = np.repeat(np.repeat(semantic, 2, 1), 2, 2)[:, :h, :w]        # some regions larger than a pixel
    is_thing = np.isin(semantic, things)
    ids = np.where(is_thing, rng.integers(0, 4, (n, h, w)), 0)
    ours = to_numpy(P.merge_semantic_and_instances(on(semantic), on(ids), things, stuff, min_area))
    for i in range(n):
        for k in range(1, 4):
            where = ids[i] == k
            if where.any():
                votes = np.bincount(semantic[i][where], minlength=5)
                assert (ours[i][where] == [int(np.argmax(votes)), k]).all()
        assert (ours[i][is_thing[i] & (ids[i] == 0)] == [P.VOID, 0]).all()
        for c in stuff:
            labels, count = ndimage.label(semantic[i] == c, structure=np.ones((3, 3)))
            for r in range(1, count + 1):
                region = labels == r
                expected = c if region.sum() >= min_area else P.VOID
                assert (ours[i][region] == [expected, 0]).all()


@given(seed=st.integers(0, 2**16), n=st.integers(1, 3), objects=st.integers(0, 4))
@settings(max_examples=15)
def test_perfect_outputs_give_back_the_truth(seed, n, objects):
    """Targets used as predictions: the panoptic map equals the truth up to instance
    numbering, so PQ = 1. Objects are kept apart (their centres farther than the
    NMS window) and are convex, so each has one peak."""
    rng = np.random.default_rng(seed)
    h, w = 40, 48
    ids = np.zeros((n, h, w), np.int64)
    semantic = np.zeros((n, h, w), np.int64)
    semantic[:, h // 2:] = 2                                   # two stuff classes: 0 above, 2 below
    for i in range(n):
        for k in range(1, objects + 1):                        # one object per 12-pixel column band
            x0 = 12 * (k - 1) + int(rng.integers(0, 3))
            y0 = int(rng.integers(0, h - 10))
            ids[i, y0:y0 + rng.integers(4, 10), x0:x0 + rng.integers(3, 9)] = k
    cls = np.where(rng.random((n, objects + 1)) < 0.5, 1, 3)    # thing classes 1 and 3
    semantic = np.where(ids > 0, np.take_along_axis(cls, ids.reshape(n, -1), 1).reshape(ids.shape), semantic)
    t = P.panoptic_targets(on(ids), sigma=2.0)
    logits = on(np.eye(4, dtype=np.float32)[semantic].transpose(0, 3, 1, 2))
    outputs = {"semantic": logits, "center": t["center"], "offset": t["offset"]}
    pred = to_numpy(P.panoptic_inference(outputs, [1, 3], [0, 2]))
    truth = np.stack([semantic, ids], axis=-1)
    np.testing.assert_array_equal(pred[..., 0], semantic)
    for i in range(n):      # the same partition into objects
        pairs = {(a, b) for a, b in zip(pred[i, ..., 1].ravel(), ids[i].ravel())}
        assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    s = metrics.panoptic_quality(pred, truth, things=[1, 3], stuff=[0, 2])
    assert s["pq"] == 1.0


def test_a_thing_pixel_without_a_centre_is_void_and_speckle_of_stuff_too():
    semantic = np.zeros((1, 4, 6), np.int64)
    semantic[0, :, 3:] = 2
    semantic[0, 0, 0] = 2                      # a one-pixel island of class 2 in class 0
    semantic[0, 3, 5] = 1                      # a thing pixel
    logits = np.eye(3, dtype=np.float32)[semantic].transpose(0, 3, 1, 2)
    outputs = {"semantic": on(logits), "center": on(np.zeros((1, 1, 4, 6), np.float32)),
               "offset": on(np.zeros((1, 2, 4, 6), np.float32))}
    pred = to_numpy(P.panoptic_inference(outputs, [1], [0, 2], min_stuff_area=2))
    assert pred[0, 0, 0].tolist() == [P.VOID, 0] and pred[0, 3, 5].tolist() == [P.VOID, 0]
    assert (pred[0, 1:, :3, 0] == 0).all() and (pred[0, :3, 3:, 0] == 2).all()


def _outputs(channels, n=1, h=4, w=4):
    """Model outputs of zeros: logits of ``channels`` classes, heatmap, offsets."""
    return {"semantic": np.zeros((n, channels, h, w), np.float32), "center": np.zeros((n, 1, h, w), np.float32),
            "offset": np.zeros((n, 2, h, w), np.float32)}


@pytest.mark.parametrize("call, error, match", [
    (lambda: P.panoptic_targets(np.zeros((4, 4), np.int64)), ValueError, r"instances must have shape \(N, H, W\)"),
    (lambda: P.panoptic_targets(np.zeros((1, 4, 4))), TypeError, "integer id map"),
    (lambda: P.panoptic_targets(-np.ones((1, 4, 4), np.int64)), ValueError, "negative id -1"),
    (lambda: P.panoptic_targets(np.zeros((1, 4, 4), np.int64), sigma=0), ValueError, "sigma must be a positive"),
    (lambda: P.panoptic_targets(np.zeros((1, 4, 4), np.int64), valid=np.ones((1, 4, 5), bool)), ValueError,
     "valid must be a boolean map"),
    (lambda: P.find_centers(np.zeros((1, 2, 4, 4))), ValueError, r"\(N, 1, H, W\)"),
    (lambda: P.find_centers(np.zeros((1, 1, 4, 4)), nms_kernel=4), ValueError, "nms_kernel must be odd"),
    (lambda: P.find_centers(np.zeros((1, 1, 4, 4)), top_k=0), ValueError, "top_k must be a positive integer"),
    (lambda: P.find_centers(np.zeros((1, 1, 4, 4), np.int64)), TypeError, "floating-point"),
    (lambda: P.group_pixels(np.zeros((1, 3, 4, 4)), np.zeros((1, 4, 4), bool), None, None), ValueError,
     r"offset must have shape \(N, 2, H, W\)"),
    (lambda: P.merge_semantic_and_instances(np.full((1, 2, 2), 5), np.zeros((1, 2, 2), np.int64), [1], [0]),
     ValueError, r"semantic holds classes \[5\], which are neither thing_classes \[1\]"),
    (lambda: P.merge_semantic_and_instances(np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.int64), [1, 0],
                                            [0]), ValueError, r"categories \[0\] are claimed as both thing and stuff"),
    (lambda: P.panoptic_inference({"semantic": np.zeros((1, 2, 2, 2))}, [1], [0]), ValueError,
     "outputs must be a dict with 'semantic', 'center' and 'offset'"),
    # the review's finds: each names its function, the argument and the rule
    (lambda: P.panoptic_inference({"semantic": np.zeros((1, 3, 4, 4)), "center": np.zeros((1, 1, 8, 8)),
                                   "offset": np.zeros((1, 2, 4, 4))}, [1], [0]), ValueError,
     r"panoptic_inference: the outputs must be \(N, channels, H, W\) maps of one N, H and W \(or, for semantic, "
     r"an \(N, H, W\) integer class map\), got semantic \(1, 3, 4, 4\), center \(1, 1, 8, 8\)"),
    (lambda: P.panoptic_inference({"semantic": np.zeros((3, 3, 4)), "center": np.zeros((1, 1, 3, 4)),
                                   "offset": np.zeros((1, 2, 3, 4))}, [1], [0]), ValueError,
     r"panoptic_inference: the outputs must be \(N, channels, H, W\)"),
    (lambda: P.group_pixels(np.zeros((1, 2, 3, 3)), np.zeros((1, 3, 3), bool), np.zeros((2, 4, 2), np.int64),
                            np.ones((2, 4), bool)), ValueError, r"group_pixels: coords must be .* with the offset's N = 1"),
    (lambda: P.group_pixels(np.zeros((1, 2, 3, 3)), np.zeros((1, 3, 3), bool), np.zeros((1, 4, 2), np.int64),
                            np.ones((1, 3), bool)), ValueError, r"group_pixels: valid must be a boolean array of shape"),
    (lambda: P.merge_semantic_and_instances(np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.int64), 1, [0]),
     TypeError, "merge_semantic_and_instances: thing_classes must be a collection"),
    (lambda: P.merge_semantic_and_instances(np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.int64), [], []),
     ValueError, "thing_classes and stuff_classes are both empty: name at least one category"),
    (lambda: P.merge_semantic_and_instances(np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.int64), [1, 1],
                                            [0]), ValueError, r"thing_classes lists category ids more than once: \[1\]"),
    (lambda: P.find_centers(np.zeros((1, 1, 4, 4)), threshold="a"), TypeError, "find_centers: threshold must be a number"),
    (lambda: P.panoptic_targets(np.zeros((1, 4, 4), np.int64), sigma=-1), ValueError, "panoptic_targets: sigma"),
    # checked before any work (they were checked by the step that used them, after the argmax, or not at all)
    (lambda: P.panoptic_inference(_outputs(3), [1], [0]), ValueError,
     r"panoptic_inference: outputs\['semantic'\] has 3 channels \(classes 0 .. 2\), but classes \[2\] are neither "
     r"thing_classes \[1\] nor stuff_classes \[0\]"),
    # a class beyond the semantic channels was accepted (helper review): its pixels can never exist
    (lambda: P.panoptic_inference(_outputs(2), [1, 2], [0]), ValueError,          # the boundary: class 2 of 0..1
     r"panoptic_inference: thing_classes and stuff_classes name classes \[2\], but outputs\['semantic'\] has 2 "
     r"channels \(classes 0 .. 1\)"),
    (lambda: P.panoptic_inference(_outputs(2), [1], [0], min_stuff_area=0), ValueError,
     "panoptic_inference: min_stuff_area must be a positive integer, got 0"),
    (lambda: P.panoptic_inference(_outputs(2), [1], [0], threshold=float("nan")), ValueError,
     "panoptic_inference: threshold must be a finite number, got nan"),
    (lambda: P.panoptic_inference(_outputs(2), [1], [0], nms_kernel=4), ValueError,
     "panoptic_inference: nms_kernel must be odd"),
    (lambda: P.panoptic_inference(dict(_outputs(2), offset=np.zeros((1, 3, 4, 4), np.float32)), [1], [0]),
     ValueError, r"panoptic_inference: outputs\['offset'\] must have 2 channels \(dy, dx\)"),
    (lambda: P.find_centers(np.zeros((1, 1, 4, 4), np.float32), threshold=float("nan")), ValueError,
     "find_centers: threshold must be a finite number, got nan"),
    # a centre outside the image was used as it was
    (lambda: P.group_pixels(np.zeros((1, 2, 2, 2), np.float32), np.ones((1, 2, 2), bool), np.array([[[50, -7]]]),
                            np.array([[True]])), ValueError,
     r"group_pixels: coords holds a valid centre outside the \(H, W\) = \(2, 2\) image: \[50, -7\]"),
    # sigma inf made every centre pixel 1; 1e-200 squared to 0 and made NaN
    (lambda: P.panoptic_targets(np.ones((1, 2, 2), np.int64), sigma=float("inf")), ValueError,
     "panoptic_targets: sigma must be a finite number, got inf"),
    (lambda: P.panoptic_targets(np.ones((1, 2, 2), np.int64), sigma=1e-200), ValueError,
     r"panoptic_targets: sigma must be a positive number of pixels, from 1e-161 to 1e\+153"),
    # a class map speaks of classes, not of object ids
    (lambda: P.merge_semantic_and_instances(np.array([[[-1, 0]]]), np.zeros((1, 1, 2), np.int64), [1], [0]),
     ValueError, "merge_semantic_and_instances: semantic holds the negative class -1; classes are >= 0$"),
    (lambda: P.merge_semantic_and_instances(np.zeros((1, 1, 2)), np.zeros((1, 1, 2), np.int64), [1], [0]),
     TypeError, "semantic must be an integer class map, got dtype float64"),
    # uint64 beyond int64: was "negative id" (wrapped around) or a bincount error
    (lambda: P.panoptic_targets(np.array([[[0, 2**63 + 5]]], np.uint64)), ValueError,
     "panoptic_targets: instances holds the id 9223372036854775813, above 2\\*\\*63 - 1"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_targets_do_not_depend_on_how_the_objects_are_numbered():
    """Ids as a file may hold them (17 and 65000) give the targets of ids 1 and 2, without an
    array per possible id: panoptic_targets renumbers large ids first (the review's find: 250 MiB
    for ids up to 2000 on a 2x64x64 batch, before)."""
    import tracemalloc

    small = np.zeros((2, 64, 64), np.int64)
    small[0, 5:20, 5:20], small[0, 30:50, 10:40], small[1, 40:60, 40:60] = 1, 2, 1
    large = np.where(small == 1, 65000, np.where(small == 2, 17, 0))
    large[1] = np.where(small[1] == 1, 400, 0)
    tracemalloc.start()
    try:
        got = P.panoptic_targets(large)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    want = P.panoptic_targets(small)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert peak < 64 * small.nbytes, f"{peak / 2**20:.0f} MiB for a 2x64x64 batch of three objects"


def test_an_instance_on_stuff_pixels_only_is_void_not_class_zero():
    """Only thing-class pixels vote for an instance's class; an instance without any is void
    (it used to take category 0, which need not be a class at all)."""
    semantic = np.full((1, 2, 3), 2, np.int64)
    semantic[0, 0, 0] = 1
    ids = np.zeros((1, 2, 3), np.int64)
    ids[0, 1, :] = 1                                   # id 1 sits on stuff (class 2) pixels only
    ids[0, 0, 0] = 2                                   # id 2 on the thing pixel
    pred = to_numpy(P.merge_semantic_and_instances(semantic, ids, [1], [2], min_stuff_area=1))
    assert (pred[0, 1, :, 0] == P.VOID).all() and pred[0, 0, 0].tolist() == [1, 2]
    # ... and void with id 0, as the layout promises (the id 1 stayed on those void pixels)
    assert (pred[0, 1, :, 1] == 0).all()


@pytest.mark.parametrize("n, h, w", [(1, 0, 0), (2, 0, 5), (1, 4, 0), (0, 3, 3)])
def test_images_without_pixels_give_empty_results(n, h, w):
    """No pixels: no peaks, no votes, an empty panoptic map (find_centers, group_pixels with
    no centre, merge_semantic_and_instances and so panoptic_inference used to raise)."""
    outputs = {"semantic": on(np.zeros((n, 2, h, w), np.float32)), "center": on(np.zeros((n, 1, h, w), np.float32)),
               "offset": on(np.zeros((n, 2, h, w), np.float32))}
    coords, valid = P.find_centers(outputs["center"])
    k = min(P.TOP_K, h * w)
    assert coords.shape == (n, k, 2) and valid.shape == (n, k) and not to_numpy(valid).any()
    classes = on(np.zeros((n, h, w), np.int64))
    assert P.merge_semantic_and_instances(classes, classes, [1], [0]).shape == (n, h, w, 2)
    pan = P.panoptic_inference(outputs, [1], [0])
    assert pan.shape == (n, h, w, 2) and pan.dtype == np.int64


def test_no_centres_means_no_object():
    """k = 0 centres (an argmin over nothing used to raise): every pixel gets id 0."""
    ids = P.group_pixels(on(np.zeros((2, 2, 3, 4), np.float32)), on(np.ones((2, 3, 4), bool)),
                         on(np.zeros((2, 0, 2), np.int64)), on(np.zeros((2, 0), bool)))
    assert ids.shape == (2, 3, 4) and ids.dtype == np.int64 and not to_numpy(ids).any()



def test_the_majority_vote_does_not_size_its_counts_from_the_data(transfers, cupy):
    """The votes are counted with backend.bincount, whose length is known: CuPy's own bincount
    reads the input's maximum back to size its output (two syncs, on the stand-in too)."""
    msn.set_backend("cupy")
    semantic = cupy.asarray(np.array([[[1, 1, 0], [1, 0, 0]]]))
    ids = cupy.asarray(np.array([[[1, 1, 0], [2, 0, 0]]]))
    with transfers() as log:
        pred = P.merge_semantic_and_instances(semantic, ids, [1], [0], min_stuff_area=1)
    assert not any("bincount" in what for (_, _, what) in log.by_site()), log.report()
    assert to_numpy(pred)[0, :, :, 0].tolist() == [[1, 1, 0], [1, 0, 0]]


def test_inference_from_the_class_map_equals_inference_from_the_logits():
    """The scores keep the logits' argmax, not the logits: the same panoptic map."""
    rng = np.random.default_rng(0)
    outputs = {"semantic": rng.standard_normal((2, 3, 12, 10)).astype(np.float32),
               "center": rng.random((2, 1, 12, 10)).astype(np.float32),
               "offset": rng.uniform(-3, 3, (2, 2, 12, 10)).astype(np.float32)}
    outputs = {k: on(v) for k, v in outputs.items()}
    want = P.panoptic_inference(outputs, [1, 2], [0], min_stuff_area=2)
    classes = dict(outputs, semantic=outputs["semantic"].argmax(axis=1).astype(np.int32))
    np.testing.assert_array_equal(to_numpy(P.panoptic_inference(classes, [1, 2], [0], min_stuff_area=2)),
                                  to_numpy(want))



def test_float16_offsets_far_from_every_centre_still_join_the_nearest():
    """A thing pixel more than 256 pixels from every centre: its squared distance passes
    float16's largest value (65504) and becomes inf for every centre. Its offset is a number,
    so it must still join the nearest centre (the docstring keeps id 0 for NaN or infinite
    offsets, and for images without a centre), as it does with float32 offsets."""
    w = 400
    offset = np.zeros((1, 2, 1, w), np.float16)              # every pixel points at itself
    thing = np.ones((1, 1, w), bool)
    coords, valid = np.array([[[0, 0], [0, 10]]]), np.array([[True, True]])
    expected = np.where(np.arange(w) <= 5, 1, 2)             # x = 5 is a tie: the first (strongest) centre
    as32 = to_numpy(P.group_pixels(on(offset.astype(np.float32)), on(thing), on(coords), on(valid)))
    np.testing.assert_array_equal(as32[0, 0], expected)
    as16 = to_numpy(P.group_pixels(on(offset), on(thing), on(coords), on(valid)))
    np.testing.assert_array_equal(as16[0, 0], expected)     # was 0 from x = 266 on


@pytest.mark.parametrize("threshold", [0.09997, np.float64(0.09997)])
def test_a_float16_peak_above_the_threshold_is_kept_as_in_float32(threshold):
    """0.0999755859375 (a float16 value) is above 0.09997. A float16 heatmap compared it with
    the Python float 0.09997 rounded to float16, which is that same value: no peak, where the
    same value in a float32 or float64 heatmap (or a NumPy float64 threshold) is one. PyTorch's
    F.threshold, which the reference Panoptic-DeepLab applies, compares float16 in float32
    and keeps it."""
    value = float(np.float16(0.09997))
    assert value > 0.09997 and value == 0.0999755859375
    found = {}
    for dtype in (np.float16, np.float32, np.float64):
        heat = np.zeros((1, 1, 5, 5), dtype)
        heat[0, 0, 2, 2] = value
        coords, valid = P.find_centers(on(heat), threshold=threshold, nms_kernel=3, top_k=2)
        found[dtype.__name__] = to_numpy(coords)[to_numpy(valid)].tolist()
    assert found == {"float16": [[2, 2]], "float32": [[2, 2]], "float64": [[2, 2]]}   # float16 was []


def test_a_finite_float32_offset_far_away_still_joins_a_centre():
    """An offset of 1e20 is a number: the docstring keeps id 0 only for NaN or infinite offsets
    (and images without a centre). Its squared distance (1e40) overflows float32 to inf for
    every centre, and the pixel found none (id 0), where the same float64 offset joins
    centre 1 (every centre is equally far at that scale: the tie goes to the strongest)."""
    offset = np.zeros((1, 2, 1, 4), np.float64)
    offset[0, 1, 0, 3] = 1e20
    thing = np.ones((1, 1, 4), bool)
    coords, valid = np.array([[[0, 0], [0, 3]]]), np.array([[True, True]])
    as64 = to_numpy(P.group_pixels(on(offset), on(thing), on(coords), on(valid)))
    assert as64.tolist() == [[[1, 1, 2, 1]]]
    as32 = to_numpy(P.group_pixels(on(offset.astype(np.float32)), on(thing), on(coords), on(valid)))
    np.testing.assert_array_equal(as32, as64)               # was [[[1, 1, 2, 0]]]
    offset[0, 1, 0, 3] = 1e200                              # float64's squares overflow past 1.3e154
    assert to_numpy(P.group_pixels(on(offset), on(thing), on(coords), on(valid))).tolist() == [[[1, 1, 2, 1]]]
    offset[0, 1, 0, 3] = np.inf                             # an infinite offset still joins no centre
    assert to_numpy(P.group_pixels(on(offset), on(thing), on(coords), on(valid))).tolist() == [[[1, 1, 2, 0]]]


def test_a_threshold_past_float16s_range_is_not_rounded_to_infinity():
    """A finite threshold beyond 65504 was cast to float16 for the comparison: a cast overflow
    (RuntimeWarning) and the threshold inf, so an infinite float16 heatmap value (above
    1e5) was no peak, where the same float32 heatmap has one."""
    heat = np.zeros((1, 1, 3, 3), np.float16)
    heat[0, 0, 1, 1] = np.inf
    for dtype in (np.float32, np.float16):
        coords, valid = P.find_centers(on(heat.astype(dtype)), threshold=1e5, nms_kernel=3, top_k=1)
        assert to_numpy(valid).tolist() == [[True]] and to_numpy(coords).tolist() == [[[1, 1]]], dtype
