"""Panoptic quality (Kirillov, He, Girshick, Rother and Dollar, CVPR 2019).

A panoptic segmentation gives every pixel a **category** and, for countable
*things* (cars, cells), an **instance id**; uncountable *stuff* (road, sky)
has one segment per category per image. A *segment* is the set of pixels of
one ``(category, instance)`` pair in one image.

Per category, a predicted segment ``p`` and a true segment ``g`` **match**
when ``IoU(p, g) > 0.5``. Two true segments do not overlap, so at most one of
them can cover more than half of ``p``'s union with it: matching is unique,
no assignment problem to solve. Then, with TP the matched pairs, FP the
unmatched predicted segments and FN the unmatched true ones::

    PQ = sum_{(p, g) in TP} IoU(p, g) / (|TP| + |FP|/2 + |FN|/2)

       = sum IoU / |TP|                   x   |TP| / (|TP| + |FP|/2 + |FN|/2)
         SQ: segmentation quality             RQ: recognition quality
             (how well matched segments          (an F1 score: how many
              fit)                                objects were found)

Per-category scores are averaged over the categories that occur (``TP + FP +
FN > 0``); the things and the stuff categories are also averaged
separately. A category with ``TP = 0`` but errors has ``SQ = RQ = PQ = 0``.

**Void pixels** (the paper's section 4.1): pixels whose true category is
``ignore_index`` (not labelled, ambiguous) do not count. They are removed
from a predicted segment before its IoU is computed, and an unmatched
predicted segment more than half of which is void is not a false positive.
A prediction may also leave pixels **unlabelled** (category
``ignore_index``): they belong to no predicted segment, so a true segment
left unlabelled is still a false negative (as in the paper's reference code;
torchmetrics instead drops true pixels under unlabelled predictions, and the
two agree whenever the prediction labels every pixel).

Inputs are ``(N, *spatial, 2)`` integer arrays, ``[..., 0]`` the category and
``[..., 1]`` the instance id (torchmetrics' layout); make one from two maps
with ``np.stack([category, instance], axis=-1)``. Stuff pixels' instance ids
are ignored. On a thing pixel, id 0 is an instance like any other (as in
torchmetrics): all of an image's id-0 pixels of a thing category are one
segment. (The instance and panoptic tasks therefore make a true thing
pixel without an id void, and leave a predicted one unlabelled,
``tasks.instance.scored_truth``.) Images are scored separately and their
counts summed. Not implemented: COCO's "crowd" regions.

Cost: one sort (``unique``) of the pixels' segment keys and one of the
overlapping pairs, O(pixels log pixels), no loop over segments; it runs on
the inputs' backend (NumPy or CuPy) and brings back only the per-category
counts.
"""
import math
from collections.abc import Mapping

import numpy as np

from .. import backend, checks

__all__ = ["panoptic_counts", "panoptic_scores", "panoptic_quality", "describe_pq"]

# Rows of the counts array returned by panoptic_counts.
IOU_SUM, TP, FP, FN = range(4)
INT64_MAX = 2**63 - 1     # the segment keys are int64


def _category_ids(values, name, op):
    """A sorted tuple of distinct non-negative Python ints, or a clear error."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{op}: {name} must be a collection of integer category ids, got {checks.describe(values)}")
    values = [checks.integer(v, f"{name}[{i}]", op, minimum=0) for i, v in enumerate(values)]
    if len(set(values)) != len(values):
        raise ValueError(f"{op}: {name} lists category ids more than once: {checks.repeated(values)}")
    return tuple(sorted(values))


def check_categories(things, stuff, ignore_index=-1, op="check_categories", names=("things", "stuff")):
    """Validate the category split and return ``(things, stuff, categories)``
    as sorted tuples, ``categories = sorted(things + stuff)``: the columns of
    :func:`panoptic_counts`. ``op``: the function named in the error messages;
    ``names``: what it calls the two arguments."""
    things = _category_ids(things, names[0], op)
    stuff = _category_ids(stuff, names[1], op)
    both = sorted(set(things) & set(stuff))
    if both:
        raise ValueError(f"{op}: categories {both} are claimed as both thing and stuff "
                         f"({names[0]}={list(things)}, {names[1]}={list(stuff)}); each category is one or the "
                         f"other")
    if not things and not stuff:
        raise ValueError(f"{op}: {names[0]} and {names[1]} are both empty: name at least one category")
    ignore_index = checks.integer(ignore_index, "ignore_index", op)
    if ignore_index in things or ignore_index in stuff:
        raise ValueError(f"{op}: ignore_index={ignore_index} is also listed as a "
                         f"{'thing' if ignore_index in things else 'stuff'} category; void must be its own id")
    return things, stuff, tuple(sorted(things + stuff))


def _check_maps(pred, target, op):
    """``pred`` and ``target`` as arrays: ``(N, *spatial, 2)`` integer maps of one shape."""
    pred, target = checks.array(pred, "pred", op), checks.array(target, "target", op)
    for name, a in (("pred", pred), ("target", target)):
        if a.ndim < 3 or a.shape[-1] != 2:
            raise ValueError(f"{op}: {name} must have shape (N, *spatial, 2) holding (category, instance id) "
                             f"per pixel, got shape {tuple(a.shape)}")
        if a.dtype.kind not in "iu":
            raise TypeError(f"{op}: {name} must hold integer (category, instance id) pairs, got dtype {a.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"{op}: pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    return pred, target


def panoptic_counts(pred, target, things, stuff, ignore_index=-1):
    """PQ's per-category counts for a batch: a ``(4, K)`` float64 NumPy array.

    Rows: the sum of matched IoUs, TP, FP, FN (``IOU_SUM, TP, FP, FN``);
    columns: the categories in increasing id order,
    ``sorted(things + stuff)``. Counts of several batches add up; turn them
    into scores with :func:`panoptic_scores`.

    ``pred`` and ``target``: ``(N, *spatial, 2)`` integer arrays (or Tensors)
    of ``(category, instance id)``. ``things`` and ``stuff``: the category ids
    of each kind (disjoint). ``ignore_index``: the category of void pixels in
    the target and of unlabelled pixels in the prediction (see the module
    docstring). Any other category id outside ``things`` and ``stuff`` is an
    error, in either map.
    """
    return _panoptic_counts(pred, target, things, stuff, ignore_index, "panoptic_counts")


def _panoptic_counts(pred, target, things, stuff, ignore_index, op):
    """``panoptic_counts``, its errors named ``op`` (``panoptic_quality`` calls it too)."""
    things, stuff, categories = check_categories(things, stuff, ignore_index, op)
    pred, target = _check_maps(pred, target, op)
    xp = backend.get_array_module(pred, target)
    n = pred.shape[0]
    K = len(categories)
    if pred.size == 0:                     # no images, or images without pixels: nothing to count
        return np.zeros((4, K), dtype=np.float64)
    cats = xp.asarray(np.array(categories, dtype=np.int64))
    is_thing = xp.asarray(np.array([c in things for c in categories]))

    def segment_keys(panoptic, name):
        """One int64 key per pixel naming its segment, -1 for void: (image, column, instance)."""
        largest = int(panoptic.max()) if panoptic.dtype == xp.uint64 else 0
        if largest > INT64_MAX:                  # int64 would make it negative
            raise ValueError(f"{op}: {name} holds the value {largest}, above {INT64_MAX} (2**63 - 1): "
                             f"categories and instance ids are computed in int64")
        panoptic = panoptic.reshape(n, -1, 2).astype(xp.int64)
        category, instance = panoptic[..., 0], panoptic[..., 1]
        void = category == ignore_index
        column = xp.minimum(xp.searchsorted(cats, category), K - 1)
        unknown = ~void & (cats[column] != category)
        if bool(unknown.any()):
            bad = sorted(int(v) for v in backend.to_numpy(xp.unique(category[unknown])))
            raise ValueError(f"{op}: {name} holds category ids {bad}, which are neither things {list(things)} nor "
                             f"stuff {list(stuff)} (nor ignore_index={ignore_index}); name every category")
        thing_pixel = ~void & is_thing[column]
        if bool((thing_pixel & (instance < 0)).any()):
            raise ValueError(f"{op}: {name} holds a negative instance id on a thing pixel; ids must be >= 0")
        instance = xp.where(thing_pixel, instance, 0)        # stuff: one segment per category per image
        width = int(instance.max()) + 1 if instance.size else 1
        if n * K * width - 1 > INT64_MAX:          # the largest key below would wrap around
            raise ValueError(f"{op}: {name} holds the instance id {width - 1}: with {n} image(s) and {K} "
                             f"categories the segment keys (image * {K} + column) * (largest id + 1) + id "
                             f"would pass {INT64_MAX} (2**63 - 1); renumber the ids (instances.renumber)")
        image = xp.arange(n, dtype=xp.int64)[:, None]
        keys = (image * K + column) * width + instance
        return xp.where(void, -1, keys).reshape(-1), width

    pkey, pwidth = segment_keys(pred, "pred")
    tkey, twidth = segment_keys(target, "target")
    pvalid, tvalid = pkey >= 0, tkey >= 0

    # Segments: their keys, areas, and each pixel's segment index.
    pseg, pinv, parea = xp.unique(pkey[pvalid], return_inverse=True, return_counts=True)
    tseg, tinv, tarea = xp.unique(tkey[tvalid], return_inverse=True, return_counts=True)
    pindex = xp.full(pkey.shape, -1, dtype=xp.int64)
    pindex[pvalid] = pinv.reshape(-1)
    tindex = xp.full(tkey.shape, -1, dtype=xp.int64)
    tindex[tvalid] = tinv.reshape(-1)
    P, T = len(pseg), len(tseg)
    pcolumn = (pseg // pwidth) % K               # key // width = image * K + column
    tcolumn = (tseg // twidth) % K

    # Void pixels inside each predicted segment (true category = ignore_index).
    pvoid = backend.bincount(pindex[pvalid & ~tvalid], P)

    # Intersections of every overlapping (predicted, true) pair of the same category.
    both = pvalid & tvalid
    pair = xp.unique(pindex[both] * T + tindex[both], return_counts=True)
    pair_key, inter = pair
    pi, ti = pair_key // T, pair_key % T
    same = pcolumn[pi] == tcolumn[ti]
    pi, ti, inter = pi[same], ti[same], inter[same]
    union = (parea[pi] - pvoid[pi]) + tarea[ti] - inter
    iou = inter / union
    match = iou > 0.5

    pmatched = xp.zeros(P, dtype=bool)
    pmatched[pi[match]] = True
    tmatched = xp.zeros(T, dtype=bool)
    tmatched[ti[match]] = True
    false_positive = ~pmatched & (pvoid / parea <= 0.5)   # a mostly-void prediction is no error

    counts = xp.stack([
        backend.bincount(pcolumn[pi[match]], K, weights=iou[match]),
        backend.bincount(pcolumn[pi[match]], K).astype(xp.float64),
        backend.bincount(pcolumn[false_positive], K).astype(xp.float64),
        backend.bincount(tcolumn[~tmatched], K).astype(xp.float64),
    ])
    return backend.to_numpy(counts).astype(np.float64)


def _mean(values):
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def panoptic_scores(counts, things, stuff):
    """PQ, SQ and RQ from :func:`panoptic_counts`' ``(4, K)`` counts.

    Returns a dict: ``pq``, ``sq``, ``rq`` (averages over the categories that
    occur), the same over things only (``pq_things`` ...) and stuff only
    (``pq_stuff`` ...), and ``per_class``: ``{category: {"pq", "sq", "rq",
    "tp", "fp", "fn"}}`` for every category, NaN scores for one that occurs
    in neither map. An average over no category is NaN.
    """
    op = "panoptic_scores"
    things, stuff, categories = check_categories(things, stuff, op=op)
    counts = np.asarray(backend.to_numpy(checks.array(counts, "counts", op)), dtype=np.float64)
    if counts.shape != (4, len(categories)):
        raise ValueError(f"{op}: counts must have shape (4, {len(categories)}) for {len(categories)} categories "
                         f"(rows iou_sum, tp, fp, fn), got {counts.shape}")
    if not (np.isfinite(counts).all() and (counts >= 0).all() and (counts[1:] == np.round(counts[1:])).all()):
        raise ValueError(f"{op}: counts must be finite and >= 0, with whole numbers of segments in rows tp, fp, "
                         f"fn (panoptic_counts' output, or a sum of them), got {counts.tolist()}")
    iou_sum, tp, fp, fn = counts
    denominator = tp + fp / 2 + fn / 2
    occurs = denominator > 0
    sq = np.full(len(categories), np.nan)
    rq = np.full(len(categories), np.nan)
    sq[occurs] = np.where(tp[occurs] > 0, iou_sum[occurs] / np.maximum(tp[occurs], 1), 0.0)
    rq[occurs] = tp[occurs] / denominator[occurs]
    pq = sq * rq
    out = {}
    for suffix, keep in (("", categories), ("_things", things), ("_stuff", stuff)):
        columns = [categories.index(c) for c in keep]
        for name, values in (("pq", pq), ("sq", sq), ("rq", rq)):
            out[name + suffix] = _mean(values[columns])
    out["per_class"] = {c: {"pq": float(pq[k]), "sq": float(sq[k]), "rq": float(rq[k]),
                            "tp": int(tp[k]), "fp": int(fp[k]), "fn": int(fn[k])}
                        for k, c in enumerate(categories)}
    return out


def panoptic_quality(pred, target, things, stuff, ignore_index=-1):
    """``panoptic_scores(panoptic_counts(pred, target, ...))``: PQ, SQ, RQ of one batch.

    >>> import numpy as np
    >>> target = np.array([[[[1, 1], [1, 1], [0, 0], [1, 2]]]])   # car 1 (2 px), road, car 2
    >>> pred = np.array([[[[1, 7], [1, 7], [0, 0], [0, 0]]]])     # car 1 found, car 2 missed
    >>> s = panoptic_quality(pred, target, things=[1], stuff=[0])
    >>> s["per_class"][1]["pq"], round(s["per_class"][0]["pq"], 3)  # car: 1 TP, 1 FN; road IoU 1/2 is no match
    (0.6666666666666666, 0.0)
    """
    counts = _panoptic_counts(pred, target, things, stuff, ignore_index, "panoptic_quality")
    return panoptic_scores(counts, things, stuff)


def describe_pq(s):
    """One category's scores (an entry of ``panoptic_scores(...)["per_class"]``) in
    words: ``"PQ 0.750 = SQ 0.830 x RQ 0.904 (42 matched, 2 false, 7 missed)"``."""
    op, keys = "describe_pq", ("pq", "sq", "rq", "tp", "fp", "fn")
    if not isinstance(s, Mapping):
        raise TypeError(f"{op}: s must be one category's scores, a dict with the keys {', '.join(keys)} (an entry "
                        f"of panoptic_scores(...)['per_class']), got {checks.describe(s)}")
    missing = [k for k in keys if k not in s]
    if missing:
        raise ValueError(f"{op}: s has no {', '.join(missing)}: it must be one category's scores, an entry of "
                         f"panoptic_scores(...)['per_class'] (not the whole result), got keys {list(s)}")
    for k in keys[:3]:
        if not (isinstance(s[k], float) and math.isnan(s[k])):     # NaN: a category that never occurs
            checks.real(s[k], f"s[{k!r}]", op, finite=False)
    for k in keys[3:]:
        checks.integer(s[k], f"s[{k!r}]", op, minimum=0)
    return (f"PQ {s['pq']:.3f} = SQ {s['sq']:.3f} x RQ {s['rq']:.3f} "
            f"({s['tp']} matched, {s['fp']} false, {s['fn']} missed)")
