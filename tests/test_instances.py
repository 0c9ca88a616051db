"""From pixels to objects: connected components and distances equal SciPy's (test-only
oracle) on drawn masks; the U-Net weight map equals a loop-by-loop reference and a
hand-worked gap; the per-pixel weighted loss has PyTorch's numbers and gradients."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import ndimage

import minisegnet as msn
from minisegnet import backend, functional as F
from minisegnet.data import Cells
from minisegnet.instances import (connected_components, distance_transform_edt, instances_from_semantic,
                                  renumber,
                                  two_nearest_distances, unet_weight_map)
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64


def _np(a):
    return backend.to_numpy(a)


def _dev(a):
    """A NumPy array moved to the current backend."""
    return backend.asarray(a)


@st.composite
def masks(draw, batch=False, max_side=18):
    """A boolean mask (H, W) or (N, H, W) of drawn size and density."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    n = draw(st.integers(1, 3)) if batch else None
    density = draw(st.sampled_from([0.2, 0.45, 0.6, 0.8, 1.0]))
    seed = draw(st.integers(0, 2**31 - 1))
    shape = (h, w) if n is None else (n, h, w)
    return np.random.default_rng(seed).random(shape) < density


def _scipy_label(mask, connectivity):
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    if mask.ndim == 2:
        return ndimage.label(mask, structure)[0]
    return np.stack([ndimage.label(m, structure)[0] for m in mask])


def _same_partition(a, b):
    """True when two label maps are equal up to a one-to-one relabelling of the nonzero ids."""
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = set(zip(a[a > 0].tolist(), b[b > 0].tolist()))
    return len(pairs) == len({p for p, _ in pairs}) == len({q for _, q in pairs})


# ---- connected components ----------------------------------------------------------------
@settings(max_examples=40)
@given(mask=masks(batch=True), connectivity=st.sampled_from([4, 8]))
def test_components_equal_scipy_label(mask, connectivity):
    ours = connected_components(_dev(mask), connectivity)
    assert ours.dtype == np.int64 and ours.shape == mask.shape          # the shape rule: unchanged
    ref = _scipy_label(mask, connectivity)
    assert _same_partition(_np(ours), ref)        # what the task asks: equal up to relabelling ...
    np.testing.assert_array_equal(_np(ours), ref)  # ... and in fact the same numbering (raster order)


@settings(max_examples=20)
@given(mask=masks(), connectivity=st.sampled_from([4, 8]))
def test_components_of_one_image_and_integer_masks(mask, connectivity):
    ids = mask.astype(np.int64) * 7                # any nonzero value is foreground
    np.testing.assert_array_equal(_np(connected_components(_dev(ids), connectivity)),
                                  _scipy_label(mask, connectivity))


def _geodesic_diameter(mask, connectivity):
    """The largest shortest-path length (in steps) between two pixels of one region of ``mask``
    (2-D), by a breadth-first search from every pixel: slow, plain, for small masks."""
    from collections import deque

    steps = ((-1, 0), (1, 0), (0, -1), (0, 1)) + (((-1, -1), (-1, 1), (1, -1), (1, 1)) if connectivity == 8 else ())
    h, w = mask.shape
    longest = 0
    for start in zip(*np.nonzero(mask)):
        seen, queue = {start: 0}, deque([start])
        while queue:
            y, x = queue.popleft()
            for dy, dx in steps:
                q = (y + dy, x + dx)
                if 0 <= q[0] < h and 0 <= q[1] < w and mask[q] and q not in seen:
                    seen[q] = seen[(y, x)] + 1
                    queue.append(q)
        longest = max(longest, max(seen.values()))
    return longest


@settings(max_examples=30, deadline=None)
@given(mask=masks(max_side=10), connectivity=st.sampled_from([4, 8]))
def test_label_propagation_takes_at_most_the_geodesic_diameter_plus_one_rounds(mask, connectivity):
    """The page's bound on the rounds of connected_components' loop: the smallest label of a
    region travels at most the region's geodesic diameter, a pixel (or more) a round, and one
    more round finds nothing changed."""
    from minisegnet.instances import _propagate

    _, rounds = _propagate(_dev(mask[None]), connectivity)
    assert rounds <= _geodesic_diameter(mask, connectivity) + 1


def test_components_corner_contact_and_long_paths():
    diagonal = np.eye(4, dtype=bool)
    assert int(_np(connected_components(_dev(diagonal), 8)).max()) == 1
    np.testing.assert_array_equal(_np(connected_components(_dev(diagonal), 4)), np.diag([1, 2, 3, 4]))
    # a serpentine: one region 1000+ pixels long whose smallest index is at one end
    snake = np.zeros((31, 33), bool)
    snake[::2] = True
    snake[1::4, -1] = True
    snake[3::4, 0] = True
    np.testing.assert_array_equal(_np(connected_components(_dev(snake), 4)), snake.astype(np.int64))
    assert int(_np(connected_components(_dev(np.zeros((3, 0, 4), bool)))).size) == 0


def test_components_errors():
    with pytest.raises(TypeError, match="mask must be an integer or boolean map, got dtype float"):
        connected_components(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"mask must have shape \(H, W\) or \(N, H, W\)"):
        connected_components(np.zeros(5, bool))
    with pytest.raises(ValueError, match="connectivity must be 4.*or 8.*got 6"):
        connected_components(np.zeros((3, 3), bool), connectivity=6)


def test_instances_from_semantic():
    pred = np.array([[1, 1, 2, 0, 1],
                     [0, 0, 2, 0, 1],
                     [1, 0, 0, 0, 0],
                     [3, 3, 0, 1, 0]])
    out = _np(instances_from_semantic(_dev(pred), thing_classes=(1, 2), connectivity=4))
    # class 1 regions in raster order (ids 1-4), then class 2's (5); class 3 is not a thing
    np.testing.assert_array_equal(out, [[1, 1, 5, 0, 2],
                                        [0, 0, 5, 0, 2],
                                        [3, 0, 0, 0, 0],
                                        [0, 0, 0, 4, 0]])
    # touching regions of two classes stay two objects even with 8-connectivity
    assert len(np.unique(_np(instances_from_semantic(_dev(pred), (1, 2))))) == 6
    # min_size drops the single pixels and renumbers 1..K per image
    big = _np(instances_from_semantic(_dev(np.stack([pred, pred[::-1]])), (1, 2), connectivity=4, min_size=2))
    np.testing.assert_array_equal(big[0], np.where(np.isin(out, (1, 2, 5)), out, 0) - np.where(out == 5, 2, 0))
    assert big[1].max() == 3 and set(np.unique(big[1])) == {0, 1, 2, 3}


@settings(max_examples=20)
@given(mask=masks(batch=True), classes=st.integers(1, 4))
def test_instances_from_semantic_matches_per_class_scipy(mask, classes):
    rng = np.random.default_rng(int(mask.sum()))
    pred = np.where(mask, rng.integers(1, classes + 1, mask.shape), 0)
    ours = _np(instances_from_semantic(_dev(pred), range(1, classes + 1)))
    for image, ids in zip(pred, ours):
        total = 0
        for c in range(1, classes + 1):   # restricted to one class, the ids are that class's components
            assert _same_partition(np.where(image == c, ids, 0), _scipy_label(image == c, 8))
            total += _scipy_label(image == c, 8).max()
        np.testing.assert_array_equal(np.unique(ids[ids > 0]), np.arange(1, total + 1))   # no id shared


def test_instances_from_semantic_errors():
    with pytest.raises(TypeError, match="pred must be an integer map"):
        instances_from_semantic(np.zeros((2, 2), np.float32), (1,))
    with pytest.raises(ValueError, match="min_size"):
        instances_from_semantic(np.zeros((2, 2), np.int64), (1,), min_size=0)
    with pytest.raises(TypeError, match="thing_classes"):
        instances_from_semantic(np.zeros((2, 2), np.int64), (1.5,))
    with pytest.raises(ValueError, match=r"thing_classes lists \[1\] more than once"):
        instances_from_semantic(np.array([[1, 1, 0, 1]]), [1, 1])      # once gave ids 3 and 4, a gap


def test_renumber_makes_ids_consecutive_per_image_and_drops_small_objects():
    ids = np.array([[[0, 65000, 65000, 17], [400, 0, 0, 17]],
                    [[0, 9, 9, 9], [0, 0, 0, 0]]])
    np.testing.assert_array_equal(renumber(ids), [[[0, 3, 3, 1], [2, 0, 0, 1]], [[0, 1, 1, 1], [0, 0, 0, 0]]])
    np.testing.assert_array_equal(renumber(ids, min_size=2), [[[0, 2, 2, 1], [0, 0, 0, 1]],
                                                              [[0, 1, 1, 1], [0, 0, 0, 0]]])
    np.testing.assert_array_equal(renumber(ids[1]), [[0, 1, 1, 1], [0, 0, 0, 0]])      # one image (H, W)
    with pytest.raises(ValueError, match="renumber: instances holds the negative id -2"):
        renumber(np.array([[0, -2]]))
    with pytest.raises(ValueError, match="renumber: min_size must be >= 1"):
        renumber(ids, min_size=0)


@pytest.mark.parametrize("call", [renumber, two_nearest_distances,
                                  lambda ids: unet_weight_map(np.zeros(ids.shape, np.int64), ids)])
def test_uint64_ids_beyond_int64_are_refused_by_range(call):
    """int64 would make them negative: the message said 'negative id' (or 'list' argument must have
    no negative elements) about an id that is not negative."""
    with pytest.raises(ValueError, match=r"instances holds the id 9223372036854775813, above 2\*\*63 - 1"):
        call(np.array([[0, 2**63 + 5]], np.uint64))


def _renumber_by_id_table(ids, min_size=1):
    """The former renumber: a table with a column per possible id (N x (largest id + 1))."""
    n, top = ids.shape[0], int(ids.max()) + 1
    flat = (ids + np.arange(n)[:, None, None] * top).reshape(-1)
    keep = np.bincount(flat, minlength=n * top).reshape(n, top) >= min_size
    keep[:, 0] = False
    number = np.cumsum(keep, axis=1).reshape(-1)
    return np.where(keep.reshape(-1)[flat], number[flat], 0).reshape(ids.shape)


@given(seed=st.integers(0, 2**16), n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       largest=st.sampled_from([1, 3, 40]), min_size=st.integers(1, 3))
def test_renumber_equals_the_former_table_by_id(seed, n, h, w, largest, min_size):
    ids = np.random.default_rng(seed).integers(0, largest + 1, (n, h, w))
    got = _np(renumber(_dev(ids), min_size=min_size))
    np.testing.assert_array_equal(got, _renumber_by_id_table(ids, min_size))


def test_renumber_costs_the_objects_not_the_largest_id():
    """One object numbered 2**40 used to ask for 8 TiB (a column per possible id); ids near
    2**22 in an 8 x 16 x 16 batch, 800 MiB."""
    import tracemalloc

    np.testing.assert_array_equal(_np(renumber(_dev(np.array([[0, 2**40], [2**40, 7]])))), [[0, 2], [2, 1]])
    ids = np.zeros((8, 16, 16), np.int64)
    ids[:, 2:5, 2:5], ids[:, 9:12, 9:12] = 2**22, 2**22 + 1
    tracemalloc.start()
    try:
        got = renumber(ids)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.max() == 2 and peak < 64 * ids.nbytes, f"{peak / 2**20:.0f} MiB"


# ---- distances ---------------------------------------------------------------------------
@settings(max_examples=30)
@given(mask=masks(batch=True, max_side=24))
def test_distance_transform_equals_scipy(mask):
    mask[:, 0, 0] = False            # every plane has a zero pixel (else the distance is inf)
    ours = _np(distance_transform_edt(_dev(mask)))
    assert ours.shape == mask.shape and ours.dtype == np.float64
    ref = np.stack([ndimage.distance_transform_edt(m) for m in mask])
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_two_nearest_distances_are_the_same_in_chunks_of_one_row(monkeypatch):
    """The two-nearest pass works through the rows in chunks: one row a chunk gives the same
    distances (a chunk that read the first chunk's ids instead of its own passed every other test)."""
    from minisegnet import instances
    from minisegnet.instances import connected_components, two_nearest_distances
    rng = np.random.default_rng(0)
    ids = np.stack([connected_components(rng.random((9, 11)) < 0.3) for _ in range(3)])
    whole = [d.copy() for d in two_nearest_distances(ids)]
    assert np.isfinite(whole[1]).any()                   # a second object is near somewhere
    chunked = instances._nearest_two
    monkeypatch.setattr(instances, "_nearest_two", lambda *args: chunked(*args, chunk_elements=1))
    for got, want in zip(two_nearest_distances(ids), whole):
        np.testing.assert_array_equal(got, want)


def test_distance_transform_chunks_and_no_zero_pixel():
    from minisegnet.instances import _min_plus_parabola
    rng = np.random.default_rng(0)
    f = np.where(rng.random((5, 7, 9)) < 0.3, 0.0, np.inf)
    np.testing.assert_array_equal(_np(_min_plus_parabola(_dev(f), chunk_elements=1)),
                                  _np(_min_plus_parabola(_dev(f))))
    d = _np(distance_transform_edt(_dev(np.ones((2, 3, 4)))))
    assert np.isinf(d).all()
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        distance_transform_edt(np.ones(4))


@settings(max_examples=30)
@given(mask=masks(batch=True, max_side=20), connectivity=st.sampled_from([4, 8]))
def test_two_nearest_distances_equal_one_transform_per_object(mask, connectivity):
    """The two-pass shortcut (two nearest objects per row) equals the definition:
    SciPy's distance transform to every object, the two smallest per pixel."""
    ids = _scipy_label(mask, connectivity)
    d1, d2 = (_np(d) for d in two_nearest_distances(_dev(ids)))
    assert d1.shape == d2.shape == ids.shape and d1.dtype == np.float64
    for image, a, b in zip(ids, d1, d2):
        objects = [k for k in np.unique(image) if k > 0]
        per_object = np.stack([ndimage.distance_transform_edt(image != k) for k in objects]
                              + [np.full(image.shape, np.inf)] * 2)
        per_object.sort(axis=0)
        np.testing.assert_allclose(a, per_object[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(b, per_object[1], rtol=0, atol=1e-12)


def test_two_nearest_distances_refuses_negative_ids():
    with pytest.raises(ValueError, match="two_nearest_distances: instances holds the negative id -1"):
        two_nearest_distances(np.array([[-1, 0, 2]]))          # once: -1 quietly counted as no object


def test_two_nearest_distances_of_three_objects_in_a_row():
    ids = np.zeros((1, 9), np.int64)
    ids[0, [0, 4, 8]] = [1, 2, 3]
    d1, d2 = (_np(d) for d in two_nearest_distances(_dev(ids)))
    np.testing.assert_array_equal(d1[0], [0, 1, 2, 1, 0, 1, 2, 1, 0])
    np.testing.assert_array_equal(d2[0], [4, 3, 2, 3, 4, 3, 2, 3, 4])   # the *other* neighbour, not the pixel
    assert np.isinf(_np(two_nearest_distances(_dev(np.eye(3, dtype=np.int64)))[1])).all()   # one object


# ---- the U-Net weight map ----------------------------------------------------------------
def _reference_weight_map(target, ids, w0=10.0, sigma=5.0):
    """Loop by loop, with SciPy's distances: one image."""
    n = target.size
    classes, counts = np.unique(target, return_counts=True)
    wc = np.zeros(target.shape)
    for c, k in zip(classes, counts):
        wc[target == c] = n / (len(classes) * k)
    objects = [k for k in np.unique(ids) if k > 0]
    border = np.zeros(target.shape)
    if len(objects) >= 2:
        d = np.stack([ndimage.distance_transform_edt(ids != k) for k in objects])
        d.sort(axis=0)
        border = w0 * np.exp(-(d[0] + d[1]) ** 2 / (2 * sigma ** 2)) * (ids == 0)
    return wc + border


def test_weight_map_hand_worked_gap():
    """Two 3x3 squares two pixels apart on a 5x10 image: a gap pixel one pixel from
    the first square and two from the second weighs w_c + 10 exp(-9/50)."""
    ids = np.zeros((5, 10), np.int64)
    ids[1:4, 1:4] = 1
    ids[1:4, 6:9] = 2
    target = (ids > 0).astype(np.int64)
    w = _np(unet_weight_map(_dev(target), _dev(ids)))
    assert w.dtype == np.float32 and w.shape == (5, 10)
    wc_background = 50 / (2 * 32)                   # 32 background pixels of 50, 2 classes present
    np.testing.assert_allclose(w[2, 4], wc_background + 10 * np.exp(-9 / 50), rtol=1e-6)
    np.testing.assert_allclose(w[2, 2], 50 / (2 * 18), rtol=1e-6)     # inside an object: w_c only
    np.testing.assert_allclose(w[0, 0], wc_background + 10 * np.exp(-(2 ** 0.5 + 37 ** 0.5) ** 2 / 50),
                               rtol=1e-6)
    assert abs(float(_np(unet_weight_map(_dev(target), _dev(ids), w0=0)).mean()) - 1) < 1e-6   # w_c averages 1


@settings(max_examples=15)
@given(mask=masks(batch=True, max_side=16), w0=st.sampled_from([0.0, 10.0, 3.0]),
       sigma=st.sampled_from([5.0, 1.5]))
def test_weight_map_equals_reference(mask, w0, sigma):
    ids = _scipy_label(mask, 4)              # objects: the components of the drawn mask
    rng = np.random.default_rng(int(mask.size))
    target = np.where(ids > 0, rng.integers(1, 3, ids.shape), 0)
    w = _np(unet_weight_map(_dev(target), _dev(ids), w0=w0, sigma=sigma))
    ref = np.stack([_reference_weight_map(t, i, w0, sigma) for t, i in zip(target, ids)])
    np.testing.assert_allclose(w, ref, rtol=1e-5, atol=1e-6)


def test_weight_map_ignore_index():
    target = np.array([[0, 0, 1, 255]])
    w = _np(unet_weight_map(_dev(target), _dev(np.zeros((1, 4), np.int64)), ignore_index=255))
    np.testing.assert_allclose(w, [[0.75, 0.75, 1.5, 0.0]])


def test_weight_map_bad_input():
    t = np.zeros((4, 5), np.int64)
    with pytest.raises(TypeError, match="instances must be an integer map, got dtype float32"):
        unet_weight_map(t, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"instances has shape \(4, 4\) but target has shape \(4, 5\)"):
        unet_weight_map(t, np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match="negative id -1"):
        unet_weight_map(t, -np.ones((4, 5), np.int64))
    with pytest.raises(ValueError, match="negative class -3"):
        unet_weight_map(t - 3, np.zeros((4, 5), np.int64))
    with pytest.raises(ValueError, match="sigma"):
        unet_weight_map(t, t, sigma=0)
    with pytest.raises(ValueError, match="w0"):
        unet_weight_map(t, t, w0=float("nan"))


# ---- the weighted loss: PyTorch's way, reduction="none" then weights ---------------------
def _weighted_loss(logits, target, weights):
    return (F.cross_entropy(logits, target, reduction="none") * weights).mean()


def test_weighted_cross_entropy_gradcheck():
    rng = np.random.default_rng(0)
    x = t64(rng.standard_normal((2, 3, 5, 4)))
    target = _dev(rng.integers(0, 3, (2, 5, 4)))
    ids = _dev(np.stack([_scipy_label(rng.random((5, 4)) < 0.5, 4) for _ in range(2)]))
    w = msn.tensor(unet_weight_map(target, ids).astype(np.float64))
    assert gradcheck(lambda x: _weighted_loss(x, target, w), [x])


def test_weighted_cross_entropy_matches_torch(torch):
    rng = np.random.default_rng(1)
    cells = Cells(2, 24, return_instances=True)
    _, target, ids = (np.stack(p) for p in zip(*(cells[i] for i in range(2))))
    w = unet_weight_map(_dev(target), _dev(ids)).astype(np.float64)
    x = t64(rng.standard_normal((2, cells.num_classes, 24, 24)))
    ours = _weighted_loss(x, _dev(target), msn.tensor(w))
    ours.backward()
    xt = as_torch(torch, x)
    theirs = (torch.nn.functional.cross_entropy(xt, torch.tensor(target), reduction="none")
              * torch.tensor(_np(w))).mean()
    theirs.backward()
    assert_close(ours, theirs, what="loss")
    assert_close(x.grad, xt.grad, what="gradient")


# ---- the instance overlay ------------------------------------------------------------------
def test_instance_overlay_colours_each_object_and_outlines_it():
    from minisegnet.viz.instances import instance_colors, instance_overlay, outlines
    ids = np.zeros((6, 8), np.int64)
    ids[1:5, 1:4] = 1
    ids[1:5, 4:7] = 2                   # touching objects
    image = np.full((1, 6, 8), 0.5, np.float32)
    out = instance_overlay(image, ids, alpha=1.0, outline=None)
    assert out.shape == (6, 8, 3)
    np.testing.assert_allclose(out[0, 0], 0.5)                         # background untouched
    np.testing.assert_allclose(out[2, 2], instance_colors(2)[1])
    assert np.abs(out[2, 2] - out[2, 5]).sum() > 0.3                   # two objects, two colours
    edge = outlines(ids)
    assert edge[2, 3] and edge[2, 4] and not edge[2, 2] and not edge[0, 0]   # the shared wall is drawn
    white = instance_overlay(image, ids)
    np.testing.assert_allclose(white[edge], 1.0)
    colors = instance_colors(50)
    assert colors.shape == (51, 3) and len({tuple(np.round(c, 3)) for c in colors}) == 51
    with pytest.raises(TypeError, match="integer id map"):
        instance_overlay(image, ids.astype(np.float32))
    with pytest.raises(ValueError, match=r"instances has shape \(6, 7\)"):
        instance_overlay(image, ids[:, :7])


def test_found_objects_take_the_colour_of_the_true_object_they_match():
    """predictions.png: a matched object (IoU > 0.5) takes its true object's id, so its colour;
    the unmatched ones ids no true object has; IoU exactly 0.5 is no match (PQ's rule)."""
    from minisegnet.viz.instances import match_to_truth
    truth = np.zeros((6, 8), np.int64)
    truth[0:3, 0:4] = 1                         # 12 pixels
    truth[3:6, 0:4] = 2                         # 12 pixels
    truth[0:2, 4:8] = 5                         # 8 pixels
    found = np.zeros_like(truth)
    found[0:3, 0:4] = 9                         # truth 1 exactly
    found[3:6, 0:3] = 4                         # 9 of truth 2's 12: IoU 0.75
    found[0:2, 4:6] = 2                         # 4 of truth 5's 8: IoU exactly 0.5, no match
    found[4:6, 6:8] = 3                         # nothing there
    relabelled, matched = match_to_truth(truth, found)
    assert matched == 2
    assert (relabelled[found == 9] == 1).all() and (relabelled[found == 4] == 2).all()
    assert (relabelled[found == 2] == 6).all() and (relabelled[found == 3] == 7).all()   # above 5, in order
    assert (relabelled[found == 0] == 0).all()
    permuted = np.array([0, 3, 1, 0, 0, 2])[truth]               # the truth under other ids
    same, count = match_to_truth(truth, permuted)
    assert count == 3 and np.array_equal(same, truth)
    with pytest.raises(ValueError, match="one shape"):
        match_to_truth(truth, found[:, :7])


# ---- on the GPU: nothing goes up, only a few scalars come down ------------------------------
def test_no_uploads_and_only_scalar_syncs(transfers, cupy):
    msn.set_backend("cupy")          # also in a NumPy run: the stand-in takes the GPU's place
    cells = Cells(4, 32, return_instances=True)
    masks = cupy.asarray(np.stack([cells[i][1] for i in range(4)]))
    ids = cupy.asarray(np.stack([cells[i][2] for i in range(4)]))
    calls = {"connected_components": lambda: connected_components(masks == 1, 4),
             "instances_from_semantic": lambda: instances_from_semantic(masks, (1,), 4, min_size=3),
             "distance_transform_edt": lambda: distance_transform_edt(masks),
             "two_nearest_distances": lambda: two_nearest_distances(ids),
             "unet_weight_map": lambda: unet_weight_map(masks, ids)}
    for name, call in calls.items():
        with transfers() as log:
            call()
        assert log.count("H2D") == 0, f"{name} uploaded host data:\n{log.report()}"
        assert log.nbytes("D2H") <= 64, f"{name} downloaded more than scalars:\n{log.report()}"


def test_two_nearest_distances_stay_exact_past_float32s_integers():
    """Squared distances above 2**24 are not all float32 integers: 4097**2 came back as
    4096.99988**2. A row of 4100 pixels (two objects at its ends) is computed in float64."""
    ids = np.zeros((1, 4100), np.int64)
    ids[0, 0], ids[0, -1] = 1, 2
    d1, d2 = (_np(d) for d in two_nearest_distances(_dev(ids)))
    j = np.arange(4100)
    np.testing.assert_array_equal(d1[0], np.minimum(j, 4099 - j))
    np.testing.assert_array_equal(d2[0], np.maximum(j, 4099 - j))


@pytest.mark.parametrize("shape", [(0, 0), (3, 0), (0, 4), (2, 0, 4), (2, 3, 0), (0, 3, 4)])
def test_images_without_pixels_give_empty_results(shape):
    """As connected_components does: an empty result of the input's shape, not a crash
    (they raised reshape, reduction and division-by-zero errors)."""
    zeros = _dev(np.zeros(shape, np.int64))
    results = {"distance_transform_edt": (distance_transform_edt(zeros), np.float64),
               "two_nearest_distances d1": (two_nearest_distances(zeros)[0], np.float64),
               "two_nearest_distances d2": (two_nearest_distances(zeros)[1], np.float64),
               "unet_weight_map": (unet_weight_map(zeros, zeros), np.float32),
               "instances_from_semantic": (instances_from_semantic(zeros, [1]), np.int64),
               "instances_from_semantic, min_size 2": (instances_from_semantic(zeros, [1], min_size=2), np.int64),
               "renumber": (renumber(zeros), np.int64)}
    for name, (got, dtype) in results.items():
        assert got.shape == shape and got.dtype == dtype, name

