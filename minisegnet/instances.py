"""From pixels to objects: connected components, distances, the U-Net weight map.

A semantic map says *what* each pixel is; instance segmentation also says
*which object* it belongs to. The simplest way from one to the other: predict
the foreground, then call every connected region of it one object. That
works exactly as well as the prediction keeps touching objects apart, which
is why the U-Net paper trains with a weight map that makes the thin gaps
between objects expensive to get wrong.

* ``connected_components(mask, connectivity=8)``: the regions of a mask,
  numbered ``1 .. K`` (as ``scipy.ndimage.label`` numbers them);
* ``instances_from_semantic(pred, thing_classes)``: the components of each
  thing class of a predicted class map, as one instance map;
* ``renumber(instances)``: ids made ``1 .. K`` per image (whatever numbers
  an instance map came with), optionally dropping small objects;
* ``distance_transform_edt(input)``: exact Euclidean distance to the nearest
  zero pixel (as ``scipy.ndimage.distance_transform_edt``);
* ``two_nearest_distances(instances)``: each pixel's distances to the nearest
  and the second-nearest object, in the same two passes;
* ``unet_weight_map(target, instances)``: the U-Net paper's
  ``w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``.

Everything runs on the engine's arrays: NumPy or CuPy, whichever holds the
input, with ``xp.`` operations only (no Python loop over pixels). Maps are
``(H, W)`` or a batch ``(N, H, W)``; each image of a batch is labelled on its
own. None of these functions is differentiable (they read integer maps); the
weight map enters training as a constant factor of the per-pixel loss::

    loss = (F.cross_entropy(logits, target, reduction="none") * weights).mean()
"""
import numpy as np

from . import backend, checks

__all__ = ["connected_components", "instances_from_semantic", "renumber", "distance_transform_edt",
           "two_nearest_distances", "unet_weight_map"]

# The neighbours a pixel is connected to, as (dy, dx) steps.
_NEIGHBOURS = {
    4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
    8: ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)),
}


# sigma, in pixels, scales the Gaussians exp(-d^2 / (2 sigma^2)) of the weight map and of
# panoptic_targets, computed in float64, so 2 sigma^2 must be a float64 above 0 and finite: it
# rounds to 0 for sigma below about 1.6e-162 (a division by zero), and Python's sigma ** 2 raises
# OverflowError above about 1.3e154. The round bounds below keep inside; the Gaussian is flat over
# any image long before the upper one.
_MIN_SIGMA, _MAX_SIGMA = 1e-161, 1e153


def _check_sigma(sigma, op):
    """sigma of a Gaussian: a number of pixels in [_MIN_SIGMA, _MAX_SIGMA]; returns a float."""
    sigma = checks.real(sigma, "sigma", op)
    if not _MIN_SIGMA <= sigma <= _MAX_SIGMA:
        raise ValueError(f"{op}: sigma must be a positive number of pixels, from {_MIN_SIGMA:g} to "
                         f"{_MAX_SIGMA:g} (the Gaussian divides by 2 * sigma**2 in float64), got {sigma!r}")
    return sigma


def _label_map(x, name, op, allow_bool=False):
    """``x`` as a backend array of integer labels, (H, W) or (N, H, W); else a clear error."""
    a = checks.array(x, name, op)
    kinds = "iub" if allow_bool else "iu"
    if a.dtype.kind not in kinds:
        what = "integer or boolean" if allow_bool else "integer"
        raise TypeError(f"{op}: {name} must be an {what} map, got dtype {a.dtype}")
    if a.ndim not in (2, 3):
        raise ValueError(f"{op}: {name} must have shape (H, W) or (N, H, W), got shape {tuple(a.shape)}")
    return a


def _check_ids(ids, op, name="instances", what="id"):
    """Refuse a negative value, or one beyond int64 (a uint64 value >= 2**63: the maps are
    computed in int64, where it would turn negative); returns the largest value (0 for an
    empty map). One read from the device gives both bounds. ``what``: "id" for an object-id
    map (0 = no object), "class" for a class map, in the messages."""
    if not ids.size:
        return 0
    xp = backend.get_array_module(ids)
    low, high = (int(v) for v in backend.to_numpy(xp.stack([ids.min(), ids.max()])))
    plural = "ids" if what == "id" else "classes"
    if low < 0:
        zero = " (0 = no object)" if what == "id" else ""
        raise ValueError(f"{op}: {name} holds the negative {what} {low}; {plural} are >= 0{zero}")
    if high > np.iinfo(np.int64).max:
        raise ValueError(f"{op}: {name} holds the {what} {high}, above 2**63 - 1: {plural} are computed in int64")
    return high


def _check_connectivity(connectivity, op):
    if checks.integer(connectivity, "connectivity", op) not in _NEIGHBOURS:
        raise ValueError(f"{op}: connectivity must be 4 (edges) or 8 (edges and corners), got {connectivity!r}")


# ---- connected components ------------------------------------------------------------
def _propagate(foreground, connectivity):
    """The label-propagation loop: returns (label, rounds).

    Every foreground pixel starts with its own flat index as label. A round
    (1) takes the minimum label over the pixel and its foreground neighbours
    and (2) follows that label once as a pointer (a label is the index of a
    pixel of the same component, whose own label is no larger: "pointer
    jumping", which lets a small label cross a long component in a few
    rounds). Labels only decrease and stay inside their component, so the
    loop stops, and only when each component carries its smallest index.
    """
    xp = backend.get_array_module(foreground)
    n, h, w = foreground.shape
    none = n * h * w                          # "no label": larger than every pixel index
    index = xp.arange(none, dtype=xp.int64).reshape(n, h, w)
    label = xp.where(foreground, index, none)
    sentinel = xp.full(1, none, dtype=xp.int64)
    rounds = 0
    while True:
        rounds += 1
        padded = xp.pad(label, ((0, 0), (1, 1), (1, 1)), mode="constant", constant_values=none)
        new = label
        for dy, dx in _NEIGHBOURS[connectivity]:
            new = xp.minimum(new, padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w])
        new = xp.where(foreground, new, none)
        table = xp.concatenate([new.reshape(-1), sentinel])   # table[none] = none for background
        new = table[new]
        if not bool((new != label).any()):     # one host sync per round
            return label, rounds
        label = new


def connected_components(mask, connectivity=8):
    """The connected regions of ``mask``'s nonzero pixels, numbered ``1 .. K`` (0 elsewhere).

    ``mask``: boolean or integer ``(H, W)``, or a batch ``(N, H, W)`` whose
    images are labelled separately (each from 1). ``connectivity``: 4 (pixels
    sharing an edge are connected) or 8 (edges or corners; the default, as in
    OpenCV and scikit-image; ``scipy.ndimage.label``'s default is 4).
    Returns int64 labels of ``mask``'s shape; ``labels.max()`` is the number of
    regions of one image. Regions are numbered in the raster order of their
    first pixel, which is ``scipy.ndimage.label``'s numbering, so the two agree
    exactly, not only up to relabelling.

    The algorithm is label propagation with pointer jumping (see
    ``_propagate``): a round costs ``O(k N H W)`` work for ``k`` neighbours and
    one host sync; the rounds needed grow with the length of the longest
    component (at most its geodesic diameter plus one; pointer jumping makes
    it far fewer on compact shapes). There is no sequential scan and no
    union-find, so the same ``xp.`` code runs on the GPU.
    """
    op = "connected_components"
    m = _label_map(mask, "mask", op, allow_bool=True)
    _check_connectivity(connectivity, op)
    xp = backend.get_array_module(m)
    single = m.ndim == 2
    foreground = (m != 0)[None] if single else m != 0
    n = foreground.shape[0]
    if foreground.size == 0:
        return xp.zeros(m.shape, dtype=xp.int64)
    label, _ = _propagate(foreground, connectivity)
    # Number the components per image in the order of their smallest index (= first pixel).
    index = xp.arange(foreground.size, dtype=xp.int64).reshape(foreground.shape)
    roots = foreground & (label == index)
    number = xp.cumsum(roots.reshape(n, -1), axis=1).reshape(-1)
    # background's label is the sentinel N*H*W, one past the last index: clamp it for the gather
    # (where() then drops those values)
    labels = xp.where(foreground, number[xp.minimum(label, foreground.size - 1)], 0)
    return labels[0] if single else labels


def renumber(instances, min_size=1):
    """``instances`` with its ids made ``1 .. K`` per image, in the order of the old ids
    (0 stays 0), dropping objects of fewer than ``min_size`` pixels (they become 0).

    An instance map read from a file may number its objects 17, 400, 65535;
    whatever sizes an array by the largest id (one row per object, as the
    centre targets of ``panoptic.py``) then needs ``K`` rows, not 65536.
    ``instances``: non-negative integer ids ``(H, W)`` or ``(N, H, W)``.
    Returns int64 ids of the same shape. One sort (``unique``) of the ids and
    one bincount over (image, id) pairs: memory follows the number of distinct
    ids in the batch, not the largest id.
    """
    op = "renumber"
    ids = _label_map(instances, "instances", op)
    min_size = checks.integer(min_size, "min_size", op, minimum=1)
    xp = backend.get_array_module(ids)
    _check_ids(ids, op)
    single = ids.ndim == 2
    ids = (ids[None] if single else ids).astype(xp.int64)
    out = _renumber(ids, min_size)
    return out[0] if single else out


def _renumber(ids, keep_sizes_from=1):
    """``renumber`` on checked int64 ids ``(N, H, W)``.

    Each id is first replaced by its rank among the batch's distinct ids, so the
    ``(N, distinct ids)`` table of sizes has a column per object present, however
    large the ids (a table indexed by the ids themselves would need a column per
    possible id: 8 TiB for one object numbered 2**40)."""
    xp = backend.get_array_module(ids)
    n = ids.shape[0]
    values, rank = xp.unique(ids.reshape(-1), return_inverse=True)      # ids == values[rank], sorted
    top = len(values)
    flat = (rank.reshape(ids.shape) + xp.arange(n, dtype=xp.int64)[:, None, None] * top).reshape(-1)
    sizes = backend.bincount(flat, n * top).reshape(n, top)
    keep = (sizes >= keep_sizes_from) & (values != 0)[None, :]          # id 0 (no object) keeps 0
    number = xp.cumsum(keep, axis=1).reshape(-1)
    return xp.where(keep.reshape(-1)[flat], number[flat], 0).reshape(ids.shape)


def instances_from_semantic(pred, thing_classes, connectivity=8, min_size=1):
    """An instance map from a class map: each connected region of each thing class is one object.

    ``pred``: integer class map ``(H, W)`` or ``(N, H, W)`` (e.g. ``logits.argmax(1)``);
    ``thing_classes``: the classes whose regions are objects (others get id 0).
    Regions of different classes are different objects even where they touch.
    ``min_size``: regions of fewer pixels are dropped (speckle of a noisy
    prediction). Ids run ``1 .. K`` per image, class by class in the order
    given, each class's regions in raster order.
    """
    op = "instances_from_semantic"
    p = _label_map(pred, "pred", op)
    _check_connectivity(connectivity, op)
    min_size = checks.integer(min_size, "min_size", op, minimum=1)
    if not isinstance(thing_classes, (list, tuple, range)):
        raise TypeError(f"{op}: thing_classes must be a list or tuple of class indices, "
                        f"got {checks.describe(thing_classes)}")
    things = [checks.integer(c, f"thing_classes[{i}]", op, minimum=0) for i, c in enumerate(thing_classes)]
    twice = checks.repeated(things)
    if twice:
        raise ValueError(f"{op}: thing_classes lists {twice} more than once; each class's regions are "
                         f"labelled once")
    xp = backend.get_array_module(p)
    if p.size == 0:                              # no pixels: no objects (as connected_components)
        return xp.zeros(p.shape, dtype=xp.int64)
    single = p.ndim == 2
    p = p[None] if single else p
    out = xp.zeros(p.shape, dtype=xp.int64)
    offset = xp.zeros((p.shape[0], 1, 1), dtype=xp.int64)
    for c in things:
        labels = connected_components(p == c, connectivity)
        out = xp.where(labels > 0, labels + offset, out)
        offset = offset + labels.reshape(p.shape[0], -1).max(axis=1).reshape(-1, 1, 1)
    if min_size > 1:
        out = _renumber(out, min_size)
    return out[0] if single else out


# ---- distances -----------------------------------------------------------------------
def _min_plus_parabola(f, chunk_elements=1 << 22):     # 2**22 = 4M elements, 32 MiB in float64
    """``out[..., j] = min_l ((j - l)^2 + f[..., l])`` along the last axis, by brute force.

    ``O(W^2)`` per row: every ``(j, l)`` pair, in chunks of rows so the
    ``(rows, W, W)`` intermediate stays under ``chunk_elements`` (one row at a
    time once ``W^2`` passes it: then ``W^2``), besides the ``(W, W)`` table of
    squared offsets."""
    xp = backend.get_array_module(f)
    w = f.shape[-1]
    rows = f.reshape(-1, w)
    j = xp.arange(w, dtype=f.dtype)
    square = (j[:, None] - j[None, :]) ** 2                        # (j, l)
    out = xp.empty_like(rows)
    step = max(1, chunk_elements // (w * w))
    for start in range(0, rows.shape[0], step):
        out[start:start + step] = (rows[start:start + step, None, :] + square[None]).min(axis=-1)
    return out.reshape(f.shape)


def distance_transform_edt(input):
    """Exact Euclidean distance from every nonzero pixel to the nearest zero pixel (0 on zeros).

    ``input``: any array ``(..., H, W)``; each trailing ``(H, W)`` plane is
    transformed on its own, as ``scipy.ndimage.distance_transform_edt`` does
    for one plane. A plane without a zero pixel gets ``inf`` everywhere
    (scipy's answer there is not a distance). Returns float64.

    The squared distance separates over the two axes (Saito and Toriwaki's
    observation): with ``f = 0`` on zero pixels and ``inf`` elsewhere,

        D^2(i, j) = min_k [ (i - k)^2 + min_l ((j - l)^2 + f(k, l)) ],

    an inner pass along each row and an outer pass along each column. Each
    pass here is a brute-force minimum over all pairs: ``O(H W (H + W))``
    work per plane, exact in float64, with no sequential scan, so it runs
    unchanged on the GPU. (Linear-time algorithms exist, e.g. Felzenszwalb
    and Huttenlocher's lower envelope, but they walk each row in order.)
    Memory, besides a few arrays of the input's size: a pass along an axis
    of length ``L`` holds an ``(L, L)`` float64 table and works in chunks of
    at most ``max(2^22, L^2)`` elements, so about ``16 L^2`` bytes once
    ``L > 2048`` (1.6 GB for ``L = 10,000``), 32 MiB plus ``8 L^2`` below.
    """
    op = "distance_transform_edt"
    a = checks.array(input, "input", op)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: input must hold numbers (zero = background), got dtype {a.dtype}")
    if a.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dimensions (..., H, W), got shape {tuple(a.shape)}")
    xp = backend.get_array_module(a)
    if a.size == 0:                              # no pixels: nothing to measure
        return xp.zeros(a.shape, dtype=xp.float64)
    f = xp.where(a == 0, 0.0, xp.inf)
    rows = _min_plus_parabola(f)                                          # along W
    both = _min_plus_parabola(xp.ascontiguousarray(xp.swapaxes(rows, -1, -2)))   # along H
    return xp.sqrt(xp.swapaxes(both, -1, -2))


def _nearest_two(values, labels, positions, size, chunk_elements=1 << 22):    # 4M elements a chunk
    """Per output position ``j < size``: among candidates ``m`` (last axis of ``values``
    and ``labels``, at ``positions[m]``) with cost ``(j - positions[m])^2 + values[..., m]``,
    the smallest cost and its label, and the smallest cost of any *other* label.

    Returns ``(v1, l1, v2, l2)``, each ``(rows, size)``; brute force over all
    ``(j, m)`` pairs, in chunks of rows."""
    xp = backend.get_array_module(values)
    rows, m = values.shape
    j = xp.arange(size, dtype=values.dtype)
    square = (j[:, None] - positions[None, :].astype(values.dtype)) ** 2          # (size, m)
    out = [xp.empty((rows, size), dtype=dt) for dt in (values.dtype, labels.dtype, values.dtype, labels.dtype)]
    step = max(1, chunk_elements // (size * m))
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        cost = values[start:stop, None, :] + square[None]                         # (r, size, m)
        label = labels[start:stop]                                                # (r, m)
        row = xp.arange(stop - start)[:, None]
        first = cost.argmin(axis=-1)                                              # (r, size)
        l1 = label[row, first]
        out[0][start:stop] = xp.take_along_axis(cost, first[..., None], axis=-1)[..., 0]
        out[1][start:stop] = l1
        cost = xp.where(label[:, None, :] == l1[..., None], xp.inf, cost)          # only other objects
        second = cost.argmin(axis=-1)
        out[2][start:stop] = xp.take_along_axis(cost, second[..., None], axis=-1)[..., 0]
        out[3][start:stop] = label[row, second]
    return out


def two_nearest_distances(instances):
    """``(d1, d2)``: each pixel's Euclidean distance to the nearest and to the
    second-nearest object of ``instances`` (int ids ``(H, W)`` or ``(N, H, W)``,
    0 = no object; 0 inside an object for ``d1``; ``inf`` where there are not
    that many objects). float64, exact: the squared distances are integers,
    at most ``(H - 1)^2 + (W - 1)^2``, computed in float32 (which holds every
    integer up to ``2^24``) while that bound is at most ``2^24``, in float64
    above it (a side longer than about 2900 pixels).

    By definition this is one distance transform per object, then the two
    smallest per pixel: ``O(K H W (H + W))`` for ``K`` objects. The same
    separable two passes can carry just the two nearest *distinct* objects
    instead of all ``K``: along each row keep, per pixel, the nearest object
    pixel and the nearest of another object (with their ids); then along each
    column take the two smallest distinct-object costs ``(i - k)^2 + g(k, j)``
    over those ``2H`` candidates. Dropping a row's third-nearest object never
    changes the answer, since at that row two other objects are at least as
    near. Cost ``O(H W (W + 2H))`` per image, whatever the number of objects.
    """
    op = "two_nearest_distances"
    ids = _label_map(instances, "instances", op)
    _check_ids(ids, op)
    return _two_nearest(ids)


def _two_nearest(ids):
    """``two_nearest_distances`` of checked ids (no read from the device: ``unet_weight_map``
    checks its ids itself, with its other checks)."""
    xp = backend.get_array_module(ids)
    if ids.size == 0:                            # no pixels: nothing to measure
        return xp.zeros(ids.shape, dtype=xp.float64), xp.zeros(ids.shape, dtype=xp.float64)
    single = ids.ndim == 2
    ids = (ids[None] if single else ids).astype(xp.int64)
    n, h, w = ids.shape
    # along rows: candidates are the object pixels of the row
    rows = ids.reshape(n * h, w)
    # float32 (half the memory) holds the integer squared costs exactly while they stay <= 2**24
    cost_dtype = xp.float32 if (h - 1) ** 2 + (w - 1) ** 2 <= 2 ** 24 else xp.float64
    v1, l1, v2, l2 = _nearest_two(xp.where(rows > 0, 0.0, xp.inf).astype(cost_dtype), rows, xp.arange(w), w)
    # along columns: candidates are the two row-nearest objects of every pixel of the column
    def columns(a):
        return xp.ascontiguousarray(a.reshape(n, h, w).transpose(0, 2, 1)).reshape(n * w, h)
    values = xp.concatenate([columns(v1), columns(v2)], axis=1)
    labels = xp.concatenate([columns(l1), columns(l2)], axis=1)
    positions = xp.concatenate([xp.arange(h), xp.arange(h)])
    d1, _, d2, _ = _nearest_two(values, labels, positions, h)
    d1, d2 = (xp.sqrt(d.astype(xp.float64).reshape(n, w, h).transpose(0, 2, 1)) for d in (d1, d2))
    return (d1[0], d2[0]) if single else (d1, d2)


# ---- the U-Net weight map -----------------------------------------------------------
def unet_weight_map(target, instances, w0=10.0, sigma=5.0, ignore_index=-100):
    """The U-Net paper's loss weights: ``w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))``.

    Ronneberger, Fischer and Brox (2015), eq. 2, with the paper's ``w0 = 10``
    and ``sigma = 5`` pixels.

    * ``target``: the class map ``(H, W)`` or ``(N, H, W)`` the loss is taken
      against; ``instances``: the object ids, same shape, 0 = no object. One
      id is one object, whatever the classes of its pixels, and a pixel with
      an id is inside an object (no border term): give each (class, id) pair
      its own id and stuff pixels 0 first, as the instance task does
      (``tasks.instance.object_ids``).
    * ``w_c(x)`` balances the class frequencies, per image: a pixel of class
      ``c`` weighs ``n / (C n_c)`` with ``n`` the image's pixels, ``n_c`` those
      of class ``c`` and ``C`` the number of classes present, so every
      present class gets the same total weight and ``w_c`` averages 1.
    * ``d1(x)``, ``d2(x)``: the Euclidean distances from ``x`` to the nearest
      and the second-nearest object (``distance_transform_edt`` per object).
      The border term is added on pixels outside every object, the gaps
      between objects (the paper's "separating background labels"); it is
      near ``w0`` in a gap one or two pixels wide between two objects and
      fades within a few ``sigma``. An image with fewer than two objects has
      no border term.
    * Pixels whose target is ``ignore_index`` weigh 0 and are not counted.

    Returns float32 weights of the target's shape, ready to multiply
    ``F.cross_entropy(logits, target, reduction="none")``. Cost: that of
    ``two_nearest_distances``, ``O(H W (W + 2H))`` per image whatever the
    number of objects.
    """
    op = "unet_weight_map"
    t = _label_map(target, "target", op)
    ids = _label_map(instances, "instances", op)
    if tuple(ids.shape) != tuple(t.shape):
        raise ValueError(f"{op}: instances has shape {tuple(ids.shape)} but target has shape {tuple(t.shape)}: "
                         "an instance map needs one id per pixel of its image")
    w0 = checks.fits(checks.real(w0, "w0", op, minimum=0), np.float32, "w0", op)     # weights are float32
    sigma = _check_sigma(sigma, op)
    ignore_index = checks.integer(ignore_index, "ignore_index", op)
    xp = backend.get_array_module(t, ids)
    _check_ids(ids, op)
    valid = t != ignore_index
    if bool((valid & (t < 0)).any()):
        raise ValueError(f"{op}: target holds the negative class {int(t[valid].min())} "
                         f"(only ignore_index={ignore_index} may be outside [0, C))")
    num_classes = int(xp.where(valid, t, 0).max()) + 1 if t.size else 1
    return _unet_weight_map(t, ids, num_classes, w0, sigma, ignore_index)


def _unet_weight_map(target, instances, num_classes, w0=10.0, sigma=5.0, ignore_index=-100):
    """``unet_weight_map`` after its checks: for a training loop that checked its labels
    already (on the host, where they come from), so that a GPU never waits on it.

    ``target`` and ``instances``: backend int arrays of one shape, ids >= 0, every
    target label in ``[0, num_classes)`` or ``ignore_index``."""
    xp = backend.get_array_module(target, instances)
    if target.size == 0:                         # no pixels: no weights
        return xp.zeros(target.shape, dtype=xp.float32)
    single = target.ndim == 2
    t, ids = (target[None], instances[None]) if single else (target, instances)
    n = t.shape[0]
    valid = t != ignore_index
    classes = xp.where(valid, t, 0).astype(xp.int64)
    # w_c: per image, n / (C_present * n_c), looked up per pixel; counts by scatter-add
    # into a table of known size (bincount would size it from the data: a sync)
    key = (classes + xp.arange(n, dtype=xp.int64)[:, None, None] * num_classes).reshape(-1)
    counts = xp.zeros(n * num_classes, dtype=xp.float64)
    backend.scatter_add(counts, key, valid.reshape(-1).astype(xp.float64))
    counts = counts.reshape(n, num_classes)
    present = (counts > 0).sum(axis=1, keepdims=True)
    table = xp.where(counts > 0, valid.reshape(n, -1).sum(axis=1, keepdims=True)
                     / (xp.maximum(present, 1) * xp.maximum(counts, 1)), 0.0)
    weights = table.reshape(-1)[key].reshape(t.shape)
    # The border term from the two nearest objects (d2 = inf with fewer than two: no term).
    if w0 > 0:
        d1, d2 = _two_nearest(ids)
        with np.errstate(over="ignore"):        # a tiny sigma: the exponent is -inf, the term 0
            border = w0 * xp.exp(-((d1 + d2) ** 2) / (2.0 * sigma ** 2))
        weights = weights + xp.where(ids == 0, border, 0.0)
    weights = xp.where(valid, weights, 0.0).astype(xp.float32)
    return weights[0] if single else weights
