"""Panoptic-DeepLab's targets and its grouping: from object centres and offsets to a panoptic map.

The model (``models/panoptic_deeplab.py``) predicts three maps per image: class
logits, a centre heatmap and a per-pixel offset ``(dy, dx)``. This module
holds everything around it that is not a network:

**Targets** (``panoptic_targets``), from an instance-id map (0 = no object).
Pixels are grouped by their id alone, while PQ counts a (class, id) pair as an
object: the panoptic task first gives each (class, id) pair of a thing class
its own id and stuff pixels id 0 (``tasks.instance.object_ids``); do the same
before calling these on your own labels.

* ``center``: for each object a 2-D Gaussian ``exp(-((y - cy)^2 + (x - cx)^2) / (2 sigma^2))``
  around its centre of mass ``(cy, cx)`` (rounded to the nearest pixel, so
  the target peaks at exactly 1 on a pixel); where two objects' Gaussians
  overlap, the larger value. Background is 0.
* ``offset``: on every object pixel ``(y, x)``, the vector ``(cy - y, cx - x)``
  to its own object's centre; 0 elsewhere.
* the weights saying which pixels count: the centre MSE is taken over every
  labelled pixel (background teaches "no centre here"), the offset L1 only
  over object pixels (background has no centre to point to).

**Grouping** (``panoptic_inference``), with the engine's own ops and no loop
over pixels:

1. *Centres* (``find_centers``): a pixel is a peak when it equals the
   max-pool of the heatmap around it (a ``nms_kernel x nms_kernel`` window,
   stride 1: no larger value nearby) and exceeds ``threshold``; the ``top_k``
   strongest peaks are kept.
2. *Votes* (``group_pixels``): every thing pixel (its predicted class is a
   thing class) moves by its predicted offset and joins the nearest centre:
   ``id(p) = 1 + argmin_k ||(p + offset(p)) - centre_k||``.
3. *Classes* (``merge_semantic_and_instances``): each instance takes the
   majority class of its thing-class pixels in the semantic prediction (the
   votes of step 2 come from thing pixels only, so that is all of them); stuff pixels
   keep their predicted class; stuff regions (connected components, from
   ``minisegnet/instances.py``) smaller than ``min_stuff_area`` pixels and
   thing pixels that found no centre become void (category ``VOID``).

The result uses ``metrics.panoptic_quality``'s layout: ``(N, H, W, 2)``
int64, ``[..., 0]`` the category (``VOID`` = -1 for void), ``[..., 1]`` the
instance id (0 for stuff and void).

**Defaults, and why.** The paper (Cheng et al., CVPR 2020) trains on
Cityscapes crops of 1025 x 2049 pixels with ``sigma = 8``, a 7 x 7 NMS
window, threshold 0.1 and ``top_k = 200``. Our toy scenes are 64 pixels
high, 16 times smaller, but scaling sigma by 1/16 would squeeze each
Gaussian into one pixel, sharper than a decoder working at stride 4 can
draw, and leave the heatmap almost all zeros (a flat prediction then costs
nearly nothing). We keep the Gaussian about as wide as a decoder cell, a
quarter to a half of a toy shape's radius (6-13 pixels): ``SIGMA = 3``.
``NMS_KERNEL = 7`` is the paper's window: a peak must have no larger value
within 3 pixels of it (Chebyshev distance, ``max(|dy|, |dx|) <= 3``), so of
two local maxima that close only the larger is kept: a bump that close to a
Gaussian's top goes, and so does a second object's centre that close (the two
objects merge); peaks further apart both stay. (This does not depend on
sigma: a Gaussian has one top at any window size.)
``THRESHOLD = 0.1`` is the paper's (the heatmap is
on the same 0-1 scale). ``TOP_K = 32`` is far above the objects a toy image
holds (``Shapes``: 2-4), so it never drops a real object, and bounds the
``(N, top_k, H, W)`` distance array of step 2. ``MIN_STUFF_AREA = 4``
pixels removes each connected stuff region smaller than that, speckle of a
noisy class map (a rule of ours: the paper drops a stuff class whose whole
area in the image is under 2048 pixels, 0.1% of an image's pixels).
``examples/panoptic_deeplab_shapes.py`` measures the window on 48 held-out
``Shapes`` images (docs/instances.md has the latest run's figures, checked
against its record): the 3x3 window loses up to 0.03 PQ against 7x7, and 9x9
is within 0.001 of 7x7 on most seeds (once 0.006 better); we keep the
paper's 7.
"""
import math
import numbers

import numpy as np

from . import backend, checks
from .autograd import Tensor, no_grad
from .functional import max_pool2d
from .instances import _check_ids, _check_sigma, instances_from_semantic, renumber
from .metrics.panoptic import check_categories

__all__ = ["VOID", "SIGMA", "NMS_KERNEL", "THRESHOLD", "TOP_K", "MIN_STUFF_AREA",
           "instance_centers", "panoptic_targets", "find_centers", "group_pixels",
           "merge_semantic_and_instances", "panoptic_inference"]

VOID = -1              # the category of void pixels in a panoptic map (metrics' default ignore_index)
SIGMA = 3.0            # centre Gaussian, pixels
NMS_KERNEL = 7         # max-pool window of the peak test, pixels (odd)
THRESHOLD = 0.1        # a centre's heatmap value must exceed this
TOP_K = 32             # centres kept per image, strongest first
MIN_STUFF_AREA = 4     # stuff regions of fewer pixels become void
RENUMBER_ABOVE = 64    # panoptic_targets renumbers ids larger than this 1 .. K first (a few more device reads)


def _array(x, name, op):
    return checks.array(x, name, op)


def _id_map(instances, name, op, what="id"):
    """``(map as int64, largest value)`` of an instance id map (``what="id"``, 0 = no
    object) or a class map (``what="class"``), or a clear error. One read from the device
    gives both the smallest value (for the check) and the largest (to size per-object arrays)."""
    ids = _array(instances, name, op)
    kind = "id map (0 = no object)" if what == "id" else f"{what} map"
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must be an integer {kind}, got dtype {ids.dtype}")
    if ids.ndim != 3:
        raise ValueError(f"{op}: {name} must have shape (N, H, W), got {tuple(ids.shape)}")
    high = _check_ids(ids, op, name, what)
    return ids.astype(backend.get_array_module(ids).int64), high


def _positive(value, name, op, kind=numbers.Real):
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise ValueError(f"{op}: {name} must be a positive {'integer' if kind is numbers.Integral else 'number'}, "
                         f"got {value!r}")


# ---- targets ----------------------------------------------------------------------------------
def instance_centers(instances):
    """Each object's centre of mass, rounded to the nearest pixel.

    ``instances``: ``(N, H, W)`` integer ids (0 = no object). Returns
    ``(centers, present)``: ``centers`` float64 ``(N, K + 1, 2)`` holding
    ``(cy, cx)`` of id ``k`` at ``[:, k]`` (``K`` the largest id; row 0, the
    background, is unused) and ``present`` bool ``(N, K + 1)``, True where
    the image has that id. One scatter-add per sum (area, rows, columns), for
    all objects of all images at once.
    """
    ids, largest = _id_map(instances, "instances", "instance_centers")
    checks.check_bytes((3, ids.shape[0] * (largest + 1)), 8, "instance_centers",
                       f"the largest id {largest} (the result has a row per id up to it)")
    return _centers(ids, largest)


def _centers(ids, largest):
    xp = backend.get_array_module(ids)
    n, h, w = ids.shape
    slots = largest + 1
    key = (xp.arange(n, dtype=xp.int64)[:, None, None] * slots + ids).reshape(-1)
    yy, xx = xp.meshgrid(xp.arange(h, dtype=xp.float64), xp.arange(w, dtype=xp.float64), indexing="ij")
    # scatter-add into arrays of known size: bincount would size its output from the data (a GPU sync)
    sums = xp.zeros((3, n * slots), dtype=xp.float64)
    backend.scatter_add(sums[0], key, xp.ones(key.shape, dtype=xp.float64))
    backend.scatter_add(sums[1], key, xp.broadcast_to(yy, ids.shape).reshape(-1))
    backend.scatter_add(sums[2], key, xp.broadcast_to(xx, ids.shape).reshape(-1))
    area = sums[0]
    present = area > 0
    safe = xp.where(present, area, 1.0)
    # floor(v + 0.5): halves round up (np.round would round them to even)
    centers = xp.floor(xp.stack([sums[1] / safe, sums[2] / safe], axis=1) + 0.5)
    present = present.reshape(n, slots)
    present[:, 0] = False
    return centers.reshape(n, slots, 2), present


def panoptic_targets(instances, sigma=SIGMA, valid=None):
    """Panoptic-DeepLab's instance-branch targets and weights for a batch of instance maps.

    ``instances``: ``(N, H, W)`` integer ids, 0 = no object (thing pixels
    carry their object's id; one id is one object, whatever the classes of its
    pixels: see ``tasks.instance.object_ids``). ``sigma``: the centre Gaussian's standard
    deviation in pixels. ``valid``: optional boolean ``(N, H, W)``, False on
    pixels that do not count at all (void in the truth).

    Returns a dict of float32 arrays on the input's backend:
    ``center`` ``(N, 1, H, W)``, ``center_weight`` ``(N, 1, H, W)`` (1 on
    valid pixels), ``offset`` ``(N, 2, H, W)`` (``dy``, ``dx``) and
    ``offset_weight`` ``(N, 2, H, W)`` (1 on valid object pixels).

    Cost: one Gaussian map per object, an ``(N, K + 1, H, W)`` float64 array
    for ids up to ``K``; ids above ``RENUMBER_ABOVE`` are first renumbered
    ``1 .. K`` per image (``instances.renumber``), so the cost follows the
    number of objects, not how a file happened to number them.
    """
    op = "panoptic_targets"
    ids, largest = _id_map(instances, "instances", op)
    sigma = _check_sigma(sigma, op)
    xp = backend.get_array_module(ids)
    if valid is None:
        valid = xp.ones(ids.shape, dtype=bool)
    else:
        valid = _array(valid, "valid", op)
        if valid.dtype != bool or tuple(valid.shape) != tuple(ids.shape):
            raise ValueError(f"{op}: valid must be a boolean map of the instances' shape {tuple(ids.shape)}, "
                             f"got {valid.dtype} {tuple(valid.shape)}")
    if largest > RENUMBER_ABOVE:
        # the arrays below have a row per id: number the objects 1 .. K per image first (a file's
        # ids may run to 65535 for three objects); the targets do not depend on the numbers
        ids = renumber(ids)
        largest = int(ids.max())
    return _panoptic_targets(ids, largest, sigma, valid)


def _panoptic_targets(ids, largest, sigma, valid):
    """``panoptic_targets`` after its checks, for a training step that checked and renumbered
    its ids on the host (where they come from) and so knows ``largest``: no read from the
    device. ``ids``: int64 ``(N, H, W)``, ids in ``0 .. largest``; ``valid``: bool, same shape."""
    xp = backend.get_array_module(ids)
    n, h, w = ids.shape
    centers, present = _centers(ids, largest)
    yy = xp.arange(h, dtype=xp.float64)[None, None, :, None]
    xx = xp.arange(w, dtype=xp.float64)[None, None, None, :]
    cy, cx = centers[..., 0, None, None], centers[..., 1, None, None]     # (N, K+1, 1, 1)
    with np.errstate(over="ignore"):            # a tiny sigma: the exponent is -inf away from the centre, 0
        gauss = xp.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * sigma ** 2))  # (N, K+1, H, W)
    gauss = xp.where(present[..., None, None], gauss, 0.0)
    center = gauss.max(axis=1, keepdims=True)

    # Offsets: gather each pixel's own centre (row 0 for background pixels, masked out below).
    own = centers[xp.arange(n)[:, None, None], ids]                         # (N, H, W, 2)
    thing = ids > 0
    offset = xp.stack([own[..., 0] - yy[0, 0], own[..., 1] - xx[0, 0]], axis=1)
    offset = xp.where(thing[:, None], offset, 0.0)
    f32 = xp.float32
    return {"center": center.astype(f32), "center_weight": valid[:, None].astype(f32),
            "offset": offset.astype(f32),
            "offset_weight": xp.broadcast_to((thing & valid)[:, None], (n, 2, h, w)).astype(f32)}


# ---- grouping -------------------------------------------------------------------------------
def _check_peak_search(heat, threshold, nms_kernel, top_k, op):
    """find_centers' arguments (also checked by panoptic_inference before its first step)."""
    if heat.ndim != 4 or heat.shape[1] != 1:
        raise ValueError(f"{op}: center must be a heatmap of shape (N, 1, H, W), got {tuple(heat.shape)}")
    if heat.dtype.kind != "f":
        raise TypeError(f"{op}: center must be a floating-point heatmap, got dtype {heat.dtype}")
    _positive(nms_kernel, "nms_kernel", op, numbers.Integral)
    if nms_kernel % 2 == 0:
        raise ValueError(f"{op}: nms_kernel must be odd (a window centred on the pixel), got {nms_kernel}")
    _positive(top_k, "top_k", op, numbers.Integral)
    checks.real(threshold, "threshold", op)          # finite: every value is above -inf, none above nan


def find_centers(center, threshold=THRESHOLD, nms_kernel=NMS_KERNEL, top_k=TOP_K):
    """The heatmap's peaks: ``(coords, valid)`` with ``coords`` int64 ``(N, k, 2)`` ``(y, x)``
    and ``valid`` bool ``(N, k)``, strongest first, ``k = min(top_k, H * W)``.

    ``center``: ``(N, 1, H, W)`` heatmap (array or Tensor). A pixel is a peak
    when it equals the ``nms_kernel x nms_kernel`` max-pool (stride 1, padded
    so every pixel has a window) and is above ``threshold``. Images with fewer
    than ``k`` peaks fill the rest with ``valid = False``.

    A flat top is not thinned: every pixel of a plateau equals its window's
    maximum, so each is a peak (an exactly symmetric bump with a 2x2 top gives
    4 adjacent centres, ties in raster order), as in the reference
    Panoptic-DeepLab, whose max-pool NMS keeps ties (docs/instances.md).

    Where we differ from the reference code: it keeps the peaks *strictly above*
    the ``top_k``-th strongest score, so at most ``top_k - 1`` and none of those
    tied at the ``top_k``-th value; we keep exactly the ``top_k`` strongest (ties
    in raster order). And ``group_pixels`` breaks a tie of distances for the
    stronger centre, where the reference's centres come in raster order.
    """
    op = "find_centers"
    heat = _array(center, "center", op)
    _check_peak_search(heat, threshold, nms_kernel, top_k, op)
    xp = backend.get_array_module(heat)
    n, _, h, w = heat.shape
    if h * w == 0:                               # no pixels: no peaks (k = 0)
        return xp.zeros((n, 0, 2), dtype=xp.int64), xp.zeros((n, 0), dtype=bool)
    with no_grad():
        pooled = max_pool2d(Tensor._wrap(heat), nms_kernel, stride=1, padding=nms_kernel // 2).data
    peak = (heat == pooled) & _above(heat, threshold)
    score = xp.where(peak, heat, -xp.inf).reshape(n, h * w)
    k = min(int(top_k), h * w)
    order = xp.argsort(-score, axis=1, kind="stable")[:, :k]     # strongest first; ties in raster order
    valid = xp.take_along_axis(score, order, axis=1) > -xp.inf
    coords = xp.stack([order // w, order % w], axis=2).astype(xp.int64)
    return coords, valid


def _above(heat, threshold):
    """``heat > threshold`` compared as PyTorch's ``F.threshold`` compares: in float32 at least
    (a float16 heatmap value just above the threshold stays above it; NumPy would round the
    threshold to float16 first), the threshold rounded to that dtype. A threshold past the
    dtype's range is taken at its largest finite value (only inf is above that) or -inf."""
    wide = np.promote_types(heat.dtype, np.float32)
    largest = float(np.finfo(wide).max)
    bar = min(float(threshold), largest) if threshold >= -largest else -math.inf
    return heat.astype(wide, copy=False) > wide.type(bar)


def group_pixels(offset, thing, coords, valid):
    """Instance ids ``(N, H, W)`` int64: each thing pixel joins the centre nearest to where
    its offset points; 0 on other pixels, where an image has no centre, and on a pixel
    whose offset is NaN or infinite (no centre is at a finite distance from where it points).

    ``offset``: ``(N, 2, H, W)`` ``(dy, dx)``; ``thing``: bool ``(N, H, W)``, the
    pixels to group; ``coords``, ``valid``: from :func:`find_centers` (a valid
    centre must be a pixel of the image). The id
    is the centre's rank plus one (1 = the strongest peak). Costs one
    ``(N, k, H, W)`` array of squared distances.
    """
    op = "group_pixels"
    off = _array(offset, "offset", op)
    thing = _array(thing, "thing", op)
    if off.ndim != 4 or off.shape[1] != 2:
        raise ValueError(f"{op}: offset must have shape (N, 2, H, W), got {tuple(off.shape)}")
    n, _, h, w = off.shape
    if thing.dtype != bool or tuple(thing.shape) != (n, h, w):
        raise ValueError(f"{op}: thing must be a boolean map of the offset's (N, H, W) = {(n, h, w)}, "
                         f"got {thing.dtype} {tuple(thing.shape)}")
    coords, valid = _array(coords, "coords", op), _array(valid, "valid", op)
    if coords.ndim != 3 or coords.shape[0] != n or coords.shape[2] != 2 or coords.dtype.kind not in "iu":
        raise ValueError(f"{op}: coords must be integer (y, x) pairs of shape (N, k, 2) with the offset's "
                         f"N = {n}, got {coords.dtype} {tuple(coords.shape)}")
    if valid.dtype != bool or tuple(valid.shape) != tuple(coords.shape[:2]):
        raise ValueError(f"{op}: valid must be a boolean array of shape (N, k) = {tuple(coords.shape[:2])}, "
                         f"got {valid.dtype} {tuple(valid.shape)}")
    xp = backend.get_array_module(off)
    y, x = coords[..., 0], coords[..., 1]
    outside = valid & ((y < 0) | (y >= h) | (x < 0) | (x >= w))
    if bool(outside.any()):                      # one read; find_centers' peaks are always inside
        raise ValueError(f"{op}: coords holds a valid centre outside the (H, W) = {(h, w)} image: "
                         f"{backend.to_numpy(coords[outside][0]).tolist()}; centres are pixels of the image")
    if coords.shape[1] == 0:                     # no centres to join (k = 0)
        return xp.zeros((n, h, w), dtype=xp.int64)
    # in float32 at least: float16's squared distances overflow to inf past 256 pixels (65504),
    # and a pixel whose distances were all inf would find no centre
    off = off.astype(xp.promote_types(off.dtype, xp.float32), copy=False)
    yy = xp.arange(h, dtype=off.dtype)[:, None]
    xx = xp.arange(w, dtype=off.dtype)[None, :]
    vote_y = _near(yy + off[:, 0])[:, None]                             # (N, 1, H, W): where each pixel points
    vote_x = _near(xx + off[:, 1])[:, None]
    cy = coords[..., 0].astype(off.dtype)[:, :, None, None]             # (N, k, 1, 1)
    cx = coords[..., 1].astype(off.dtype)[:, :, None, None]
    distance = (vote_y - cy) ** 2 + (vote_x - cx) ** 2                  # (N, k, H, W)
    distance = xp.where(valid[:, :, None, None], distance, xp.inf)
    nearest = xp.argmin(distance, axis=1) + 1
    # a finite nearest distance: the image has a centre and the offset is a number (argmin of
    # distances that are all NaN or inf would name centre 1, even an invalid one)
    found = xp.isfinite(distance.min(axis=1))
    return xp.where(thing & found, nearest, 0).astype(xp.int64)


def _near(vote):
    """A finite vote farther than ``2**(maxexp/2 - 2)`` pixels (2**62 in float32) taken at that
    distance, so that its squared distances stay finite (a vote at 1e20 squared is inf in
    float32: it would find no centre); inf and NaN stay as they are. At such distances every
    centre of an image is as far as the others in the dtype's precision anyway."""
    xp = backend.get_array_module(vote)
    far = 2.0 ** (np.finfo(vote.dtype).maxexp // 2 - 2)
    return xp.where(xp.isinf(vote), vote, xp.clip(vote, -far, far))


def _thing_and_stuff(thing_classes, stuff_classes, op):
    """The two class lists as tuples of distinct non-negative ints, disjoint, not both
    empty; else a clear error (``metrics.panoptic.check_categories``)."""
    things, stuff, _ = check_categories(thing_classes, stuff_classes, VOID, op,
                                        names=("thing_classes", "stuff_classes"))
    return things, stuff


def _lookup(xp, size, members):
    """Boolean table ``(size,)``, True at ``members``: built on the device by comparisons
    (no host array uploaded)."""
    table = xp.zeros(size, dtype=bool)
    everyone = xp.arange(size)
    for m in members:
        table |= everyone == m
    return table


def merge_semantic_and_instances(semantic, instances, thing_classes, stuff_classes,
                                 min_stuff_area=MIN_STUFF_AREA):
    """The panoptic map ``(N, H, W, 2)`` int64 from a class map and instance ids.

    ``semantic``: ``(N, H, W)`` predicted classes; ``instances``: ``(N, H, W)``
    ids from :func:`group_pixels` (0 = none). Each instance's category is the
    majority class of its *thing-class* pixels (a tie goes to the smaller class
    id; stuff pixels carrying the id do not vote, and take that category too;
    an instance with no thing pixel at all is void); thing
    pixels without an instance are void; stuff pixels keep their class unless
    their connected region of that class has fewer than ``min_stuff_area``
    pixels, which makes them void. Categories other than ``thing_classes``
    and ``stuff_classes`` are an error.
    """
    op = "merge_semantic_and_instances"
    sem, top_class = _id_map(semantic, "semantic", op, what="class")
    ids, largest = _id_map(instances, "instances", op)
    if sem.shape != ids.shape:
        raise ValueError(f"{op}: semantic {tuple(sem.shape)} and instances {tuple(ids.shape)} must have the "
                         f"same shape")
    things, stuff = _thing_and_stuff(thing_classes, stuff_classes, op)
    _positive(min_stuff_area, "min_stuff_area", op, numbers.Integral)
    xp = backend.get_array_module(sem)
    if sem.size == 0:                            # no pixels: an empty panoptic map
        return xp.zeros(tuple(sem.shape) + (2,), dtype=xp.int64)
    num_classes = max(things + stuff) + 1
    checks.check_bytes((num_classes,), 8, op, f"the largest class {num_classes - 1} in thing_classes/stuff_classes")
    known, is_thing = _lookup(xp, num_classes, things + stuff), _lookup(xp, num_classes, things)
    if top_class >= num_classes or not bool(known[sem].all()):
        bad = backend.to_numpy(xp.unique(sem[(sem >= num_classes) | ~known[xp.minimum(sem, num_classes - 1)]]))
        raise ValueError(f"{op}: semantic holds classes {bad.tolist()}, which are neither thing_classes "
                         f"{list(things)} nor stuff_classes {list(stuff)}")
    n = sem.shape[0]
    thing_pixel = is_thing[sem]

    # Majority vote: count (image, instance, class) triples in one bincount.
    slots = largest + 1
    checks.check_bytes((n * slots, num_classes), 8, op, f"the largest id {largest} with {num_classes} classes")
    key = (xp.arange(n, dtype=xp.int64)[:, None, None] * slots + ids) * num_classes + sem
    votes = backend.bincount(key.reshape(-1), n * slots * num_classes).reshape(n * slots, num_classes)
    votes = votes * is_thing[None, :]                     # only thing classes may name an object
    winner = votes.argmax(axis=1)                          # first maximum: ties go to the smaller id
    winner = xp.where(votes.max(axis=1) > 0, winner, VOID)  # no thing pixel at all: no class to name it
    instance_class = winner[(xp.arange(n, dtype=xp.int64)[:, None, None] * slots + ids)]

    category = xp.where(ids > 0, instance_class, sem)
    category = xp.where(thing_pixel & (ids == 0), VOID, category)
    if stuff:
        regions = instances_from_semantic(sem, stuff, min_size=int(min_stuff_area))
        category = xp.where(~thing_pixel & (regions == 0), VOID, category)
    instance = xp.where((ids > 0) & (category != VOID), ids, 0)     # void pixels carry no instance id
    return xp.stack([category, instance], axis=-1).astype(xp.int64)


def panoptic_inference(outputs, thing_classes, stuff_classes, threshold=THRESHOLD, nms_kernel=NMS_KERNEL,
                       top_k=TOP_K, min_stuff_area=MIN_STUFF_AREA):
    """Panoptic-DeepLab's outputs -> the panoptic map ``(N, H, W, 2)`` (category, instance id).

    ``outputs``: the model's dict with ``"semantic"`` logits ``(N, C, H, W)``,
    ``"center"`` ``(N, 1, H, W)`` and ``"offset"`` ``(N, 2, H, W)`` (Tensors
    or arrays). ``"semantic"`` may instead be the integer class map ``(N, H, W)``,
    the logits' argmax over ``C``: the grouping uses nothing else of them (the
    panoptic task's scores keep that, not the logits). Each of the logits' ``C``
    channels must be a thing or a stuff class. The three steps of the module
    docstring: centres, votes, classes. Every argument is checked before any
    work. Runs on the outputs' backend; the result stays there.
    """
    op = "panoptic_inference"
    if not isinstance(outputs, dict) or not {"semantic", "center", "offset"} <= set(outputs):
        got = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
        raise ValueError(f"{op}: outputs must be a dict with 'semantic', 'center' and 'offset' (a "
                         f"PanopticDeepLab's output), got {got}")
    maps = {key: _array(outputs[key], f"outputs['{key}']", op) for key in ("semantic", "center", "offset")}
    semantic, center, offset = maps["semantic"], maps["center"], maps["offset"]
    class_map = semantic.ndim == 3 and semantic.dtype.kind in "iu"       # the logits' argmax, already taken
    sizes = {tuple(semantic.shape) if class_map else (semantic.shape[0],) + tuple(semantic.shape[2:])}
    sizes |= {(m.shape[0],) + tuple(m.shape[2:]) for m in (center, offset)}
    if (not class_map and semantic.ndim != 4) or center.ndim != 4 or offset.ndim != 4 or len(sizes) != 1:
        shapes = ", ".join(f"{key} {tuple(m.shape)}" for key, m in maps.items())
        raise ValueError(f"{op}: the outputs must be (N, channels, H, W) maps of one N, H and W (or, for "
                         f"semantic, an (N, H, W) integer class map), got {shapes}")
    things, stuff = _thing_and_stuff(thing_classes, stuff_classes, op)
    if not class_map:
        beyond = sorted(c for c in things + stuff if c >= semantic.shape[1])
        if beyond:
            raise ValueError(f"{op}: thing_classes and stuff_classes name classes {beyond}, but outputs['semantic'] "
                             f"has {semantic.shape[1]} channels (classes 0 .. {semantic.shape[1] - 1})")
        named = [c for c in range(semantic.shape[1]) if c not in things + stuff]
        if named:
            raise ValueError(f"{op}: outputs['semantic'] has {semantic.shape[1]} channels (classes 0 .. "
                             f"{semantic.shape[1] - 1}), but classes {named} are neither thing_classes "
                             f"{list(things)} nor stuff_classes {list(stuff)}; name every class")
    _check_peak_search(center, threshold, nms_kernel, top_k, op)
    if offset.shape[1] != 2:
        raise ValueError(f"{op}: outputs['offset'] must have 2 channels (dy, dx), got {tuple(offset.shape)}")
    _positive(min_stuff_area, "min_stuff_area", op, numbers.Integral)

    classes = semantic if class_map else semantic.argmax(axis=1)
    thing = backend.get_array_module(classes).zeros(classes.shape, dtype=bool)
    for c in things:
        thing = thing | (classes == c)
    coords, valid = find_centers(center, threshold, nms_kernel, top_k)
    instances = group_pixels(offset, thing, coords, valid)
    return merge_semantic_and_instances(classes, instances, thing_classes, stuff_classes, min_stuff_area)
