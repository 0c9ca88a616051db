"""Augmentations: image ``(C, H, W)`` and labels move together.

An augmentation is a callable ``t(image, mask, rng) -> (image, mask)``.
``mask`` is a label map ``(H, W)``, or several label maps stacked
``(K, H, W)`` that must move as one: the class map first, then object ids
(the loader stacks ``(mask, instances)`` so); every transform here indexes
the last two axes only, so both work. ``rng`` is a NumPy ``Generator``: the
loader seeds it per epoch, so augmentation is repeatable. Each transform checks
these first, from shapes and dtypes only (``_check_sample``): a batch, a Tensor
or labels of another size are an error naming the transform, not a wrong crop.

**Mirrored copies are other objects.** Mirroring (a crop of an image smaller
than the crop, a deformation with ``padding_mode="reflection"``) brings in a
reflected copy of what lies near the border. In a class map that is right as
it is; in an object-id map it would make one id name two separate objects
(an object and its reflection), and an instance or panoptic target would
then put that object's centre between them. So in the maps after the first,
an id ``i > 0`` that arrives from copy ``c`` of the image (``c = 0``: the
image itself) becomes ``i + c * (largest id + 1)``: an id of its own
(``mirrored_copies``).

The geometric ones move whole pixels (flips, 90-degree rotations, crops,
mirror padding). The deformations (``RandomElastic``, ``RandomAffine``)
move every pixel by its own amount: they build a sampling grid (where each
output pixel reads the input) and apply it with ``F.grid_sample``, bilinear
for the image and nearest for the labels, so that labels stay labels (each
output pixel copies the labels of the input pixel nearest its point: an
instance id is never averaged with its neighbour's, nor rounded through a
float, however large). ``ColorJitter`` changes
the image's values only.

**Where they run: on the host, in the loader, one sample at a time.** A
transform sees one NumPy sample and draws from the loader's seeded ``rng``, so
it composes with the others (``Compose(RandomElastic(), RandomFlip())``),
gives the same pictures on every backend and needs no change to the training
loop. The cost is small beside a training step: deforming a sample is two
small matrix products for the field and one bilinear and one nearest
``grid_sample`` of the sample's size, against a U-Net's forward and backward
pass through every layer (docs/benchmarks.md, "What the augmentations cost an epoch",
has the measured epoch times).
On a GPU the same ``F.grid_sample`` runs on CuPy arrays, so a batch-wide
device version is a few lines if the host ever becomes the bottleneck.
"""
import functools
import numbers

import numpy as np

from .. import checks
from ..autograd import Tensor, no_grad
from ..functional import affine_grid, grid_sample

__all__ = ["Compose", "RandomFlip", "RandomRot90", "RandomCrop", "CenterCrop", "MirrorPad",
           "RandomElastic", "RandomAffine", "ColorJitter", "bicubic_weights", "elastic_displacement",
           "copy_number", "mirrored_copies", "AUGMENTATIONS"]


def _as_size(size, name="size", minimum=1, rule=None):
    """An int or a pair (height, width) of ints, each at least ``minimum`` -> (height, width);
    errors quote ``size`` as given (``rule``: the words for a size below ``minimum``)."""
    given = size
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        raise TypeError(f"{name} must be an int or a pair (height, width) of ints, got {given!r}")
    if min(size) < minimum:
        raise ValueError(f"{name} must be {rule or f'>= {minimum}'}, got {given!r}")
    return int(size[0]), int(size[1])



class Compose:
    """Apply several augmentations in order: ``Compose(RandomFlip(), RandomRot90())``, or
    torchvision's spelling with one list, ``Compose([RandomFlip(), RandomRot90()])``."""

    def __init__(self, *transforms):
        if len(transforms) == 1 and isinstance(transforms[0], (list, tuple)):     # torchvision's Compose([...])
            transforms = tuple(transforms[0])
        for k, t in enumerate(transforms):
            if isinstance(t, type):
                raise TypeError(f"Compose: item {k} is the class {t.__name__}, not an augmentation: "
                                f"write {t.__name__}(...)")
            if not callable(t):
                raise TypeError(f"Compose: item {k} must be an augmentation, callable as t(image, mask, rng), "
                                f"got {t!r}")
        self.transforms = transforms

    def __call__(self, image, mask, rng):
        for k, t in enumerate(self.transforms):
            out = t(image, mask, rng)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(f"Compose: item {k} ({t!r}) must return a pair (image, mask), returned "
                                f"{checks.describe(out)}")
            image, mask = out
        return image, mask


class RandomFlip:
    """Mirror left-right (and optionally up-down), each with probability ``p``."""

    def __init__(self, horizontal=True, vertical=False, p=0.5):
        if not isinstance(horizontal, (bool, np.bool_)) or not isinstance(vertical, (bool, np.bool_)):
            raise TypeError(f"RandomFlip: horizontal and vertical must be True or False, "
                            f"got {horizontal!r} and {vertical!r}")
        self.horizontal, self.vertical = bool(horizontal), bool(vertical)
        self.p = _check_probability(p, "RandomFlip: p")

    def __call__(self, image, mask, rng):
        _check_sample("RandomFlip", image, mask, rng)
        if self.horizontal and rng.random() < self.p:
            image, mask = image[..., ::-1], mask[..., ::-1]
        if self.vertical and rng.random() < self.p:
            image, mask = image[..., ::-1, :], mask[..., ::-1, :]
        return image, mask


class RandomRot90:
    """Rotate by a random multiple of 90 degrees (only 0 or 180 for non-square
    images, so every sample of a batch keeps its shape)."""

    def __call__(self, image, mask, rng):
        _check_sample("RandomRot90", image, mask, rng)
        k = int(rng.integers(4)) if image.shape[-1] == image.shape[-2] else 2 * int(rng.integers(2))
        return np.rot90(image, k, axes=(-2, -1)), np.rot90(mask, k, axes=(-2, -1))


_NO_DRAW = object()      # a transform that draws nothing (CenterCrop, MirrorPad) takes any rng


def _check_sample(name, image, mask, rng=_NO_DRAW, same_size=True):
    """What every transform here needs, checked before any work from types, shapes and dtypes
    only (no value is read): a NumPy image ``(C, H, W)`` with at least one pixel, NumPy integer
    labels ``(H, W)`` or ``(K, H, W)`` covering the same pixels (``same_size``: the transform
    moves them together), and, where it draws, a ``numpy.random.Generator``."""
    for arg, value in (("image", image), ("mask", mask)):
        if not isinstance(value, np.ndarray):
            hint = f"; pass {arg}.numpy()" if isinstance(value, Tensor) else ""
            raise TypeError(f"{name}: {arg} must be a NumPy array (the transforms run on the host, in the loader, "
                            f"on NumPy arrays), got {checks.describe(value)}{hint}")
    if image.ndim != 3 or mask.ndim not in (2, 3):
        raise ValueError(f"{name}: the image must be (C, H, W) and the labels one map (H, W) or several stacked "
                         f"(K, H, W), got image {image.shape} and labels {mask.shape}")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"{name}: image must hold booleans, integers or floats, got dtype {image.dtype}")
    if image.size == 0:
        raise ValueError(f"{name}: image must have at least one channel and pixel, got shape {image.shape}")
    if mask.dtype.kind not in "iub":
        raise TypeError(f"{name}: mask must hold integer labels (class indices or object ids), got dtype "
                        f"{mask.dtype}")
    if same_size and image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"{name}: the image is {image.shape[-2]}x{image.shape[-1]} but the labels are "
                         f"{mask.shape[-2]}x{mask.shape[-1]}; they must match to move together (MirrorPad, which "
                         f"makes the image larger, must be the last transform)")
    if mask.size == 0:
        raise ValueError(f"{name}: mask must not be empty, got shape {mask.shape}")
    if rng is not _NO_DRAW:
        _check_rng(rng, name)


def _check_float_image(image, name):
    """A deformation samples the image bilinearly: it needs floating-point values."""
    if image.dtype.kind != "f":
        raise TypeError(f"{name}: image must be floating point to be deformed, got dtype {image.dtype}; "
                        f"cast it first (e.g. image.astype(np.float32) / 255)")


def _check_rng(rng, name):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: rng must be a numpy.random.Generator (the loader passes one; e.g. "
                        f"np.random.default_rng(0)), got {checks.describe(rng)}")


def copy_number(source, size):
    """Which copy of an axis of ``size`` pixels each pixel coordinate ``source`` lies in, when the
    axis is mirrored about its end pixels (``np.pad``'s "reflect"): 0 inside ``[0, size - 1]``,
    -1, -2, ... before it and 1, 2, ... after it, each copy ``size - 1`` pixels long (a
    1-pixel axis: every pixel outside is a copy of its own)."""
    size = checks.integer(size, "size", "copy_number", minimum=1)
    source = np.asarray(source)
    if source.dtype.kind not in "iu":
        raise TypeError(f"copy_number: source must hold integer pixel coordinates, got dtype {source.dtype}")
    if size == 1:
        return source.astype(np.int64)
    period = size - 1
    before = np.floor_divide(source, period)                     # -1 for -period .. -1, ...
    after = -np.floor_divide(-(source - period), period)         # ceil((s - period) / period): 1 for period+1 .. 2 period
    return np.where(source < 0, before, np.where(source > period, after, 0)).astype(np.int64)


def mirrored_copies(mask, copy_y, copy_x):
    """Give each mirrored copy of an object an id of its own (module docstring): in the maps
    after the first of a stacked ``(K, H, W)`` ``mask``, an id ``i > 0`` at a pixel of copy
    ``(copy_y, copy_x)`` (broadcasting to ``(H, W)``; ``(0, 0)`` is the image) becomes
    ``i + c * (largest id + 1)``, ``c`` a number for the copy (0 for the image). A single map:
    unchanged. A stack comes back int64 (room for the new ids) even when no pixel comes from a
    copy, so that its dtype never depends on where a random transform happened to read."""
    copy_y, copy_x = np.broadcast_arrays(copy_y, copy_x)
    if mask.ndim != 3 or mask.shape[0] < 2:
        return mask
    if mask.dtype.kind == "u" and mask.size and int(mask.max()) > np.iinfo(np.int64).max:   # would wrap
        raise ValueError(f"mirrored_copies: the stack of label maps holds id {int(mask.max())}, past int64's "
                         f"largest, but comes back int64 (room for the copies' ids)")
    if not (copy_y.any() or copy_x.any()):
        return mask.astype(np.int64, copy=False)
    # number the copies: 0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4 on each axis, then pair the two
    zigzag_y, zigzag_x = (np.where(c < 0, -2 * c - 1, 2 * c) for c in (copy_y, copy_x))
    most_x, largest = int(zigzag_x.max()), int(mask[1:].max())
    most = int(zigzag_y.max()) * (most_x + 1) + most_x           # in Python's integers: no wrap-around
    if most * (largest + 1) + largest > np.iinfo(np.int64).max:
        raise ValueError(f"mirrored_copies: the copies reach {max(int(np.abs(copy_y).max()), int(np.abs(copy_x).max()))} "
                         f"images away, and copy {most} of id {largest} would need an id past int64's largest; "
                         "positions that far outside the image have no labels to mirror")
    copy = zigzag_y * (most_x + 1) + zigzag_x
    mask = mask.astype(np.int64)                                 # room for the new ids
    ids = mask[1:]
    ids += np.where(ids > 0, copy * (largest + 1), 0)
    return mask


def _reflect_to(image, mask, size, name):
    """Mirror-pad image and mask (checked: ``_check_sample``) up to at least ``size``; reflected
    copies of objects get ids of their own (``mirrored_copies``)."""
    h, w = mask.shape[-2:]
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph or pw:
        cause = f"size={size!r} on a {h}x{w} image"
        checks.check_bytes(image.shape[:1] + (h + ph, w + pw), image.dtype.itemsize, name, cause)
        checks.check_bytes(mask.shape[:-2] + (h + ph, w + pw), 8, name, cause)     # as int64 (mirrored_copies)
        pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
        image = np.pad(image, ((0, 0),) + pads, mode="reflect")
        mask = np.pad(mask, ((0, 0),) * (mask.ndim - 2) + pads, mode="reflect")
        rows = copy_number(np.arange(h + ph) - pads[0][0], h)[:, None]
        cols = copy_number(np.arange(w + pw) - pads[1][0], w)[None, :]
        mask = mirrored_copies(mask, rows, cols)
    return image, mask


def _window(image, mask, top, left, size):
    """The ``size`` window at ``(top, left)`` of image and labels."""
    rows, cols = slice(top, top + size[0]), slice(left, left + size[1])
    return image[:, rows, cols], mask[..., rows, cols]


class RandomCrop:
    """A random ``size`` window of image and mask; smaller images are first
    mirror-padded up to ``size`` (reflected about the border pixels, repeatedly
    where the padding exceeds the image: ``np.pad``'s "reflect"; mirrored
    objects get ids of their own, see the module docstring, so a padded stack of
    label maps comes back int64: the new ids need not fit its dtype)."""

    def __init__(self, size):
        self.size = _as_size(size, "RandomCrop: size")

    def __call__(self, image, mask, rng):
        _check_sample("RandomCrop", image, mask, rng)
        image, mask = _reflect_to(image, mask, self.size, "RandomCrop")
        h, w = mask.shape[-2:]
        top = int(rng.integers(h - self.size[0] + 1))
        left = int(rng.integers(w - self.size[1] + 1))
        return _window(image, mask, top, left, self.size)


class CenterCrop:
    """The central ``size`` window (mirror-padding smaller images): deterministic, for evaluation.

    The window starts at ``top = round((H - h) / 2)``, halves to even (and ``left`` likewise),
    as torchvision's ``CenterCrop`` places it: H = 5, h = 2 keeps rows 2 and 3. (``F.center_crop``,
    U-Net's copy-and-crop, takes the floor instead: rows 1 and 2. torchvision pads a smaller
    image with zeros, where this mirrors it, as ``RandomCrop`` does: a padded stack of label
    maps comes back int64.)"""

    def __init__(self, size):
        self.size = _as_size(size, "CenterCrop: size")

    def __call__(self, image, mask, rng=None):
        _check_sample("CenterCrop", image, mask)
        image, mask = _reflect_to(image, mask, self.size, "CenterCrop")
        h, w = mask.shape[-2:]
        top, left = round((h - self.size[0]) / 2), round((w - self.size[1]) / 2)   # Python's: halves to even
        return _window(image, mask, top, left, self.size)


class MirrorPad:
    """Mirror the image's borders outwards by ``(top, bottom, left, right)`` pixels
    and leave the mask alone: the U-Net paper's input tiles for valid convolutions,
    whose output is smaller than their input by exactly that margin.

    ``padding`` is an int (all sides) or a 4-tuple. Reflection repeats as
    often as needed when a margin exceeds the image.
    """

    def __init__(self, padding):
        given = padding
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            padding = (int(padding),) * 4
        rule = "a non-negative int or (top, bottom, left, right)"
        if (not isinstance(padding, (tuple, list)) or len(padding) != 4
                or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding)):
            raise TypeError(f"MirrorPad: padding must be {rule}, got {given!r}")
        if any(p < 0 for p in padding):
            raise ValueError(f"MirrorPad: padding must be {rule}, got {given!r}")
        self.padding = tuple(int(p) for p in padding)

    def __call__(self, image, mask, rng=None):
        _check_sample("MirrorPad", image, mask)
        t, b, l, r = self.padding
        c, h, w = image.shape
        checks.check_bytes((c, h + t + b, w + l + r), image.dtype.itemsize, "MirrorPad",
                           f"padding={self.padding!r} on a {h}x{w} image")
        return np.pad(image, ((0, 0), (t, b), (l, r)), mode="reflect"), mask


# ---- deformations: a sampling grid, applied with grid_sample ------------------------------------
_PADDING_MODES = ("zeros", "border", "reflection")


def _check_probability(p, name="p"):
    if isinstance(p, bool) or not isinstance(p, numbers.Real):           # a wrong kind: TypeError
        raise TypeError(f"{name} must be a probability in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def _check_padding_mode(padding_mode, op):
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"{op}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    return padding_mode


def _range(value, name, centre, low=None, high=None):
    """``value`` as a closed range: a number ``v`` means ``[centre - v, centre + v]`` (``v >= 0``),
    a pair ``(lo, hi)`` is taken as it is (``lo <= hi``); ``low`` and ``high`` bound both ends."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0 (a spread around {centre}) or a pair (min, max), got {value!r}")
        lo, hi = centre - value, centre + value
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
        lo, hi = value
        if not lo <= hi:
            raise ValueError(f"{name} must be a pair (min, max) with min <= max, got {value!r}")
    else:
        raise TypeError(f"{name} must be a number or a pair (min, max) of numbers, got {value!r}")
    if low is not None and not lo >= low:
        raise ValueError(f"{name} must stay >= {low}, got the range ({lo:g}, {hi:g}) from {value!r}")
    if high is not None and not hi <= high:
        raise ValueError(f"{name} must stay <= {high:g}, got the range ({lo:g}, {hi:g}) from {value!r}")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(lo), float(hi)


# Positions beyond this many pixels are refused: a float64 no longer tells neighbouring pixels
# apart there, and the copy numbers of a mirrored read (positions / size) would leave int64.
_MAX_POSITION = 2 ** 53


def warp(image, mask, positions, padding_mode="reflection"):
    """Image ``(C, H, W)`` and labels ``(H, W)`` or ``(K, H, W)`` read at ``positions`` ``(H, W, 2)``:
    pixel coordinates ``(x, y)`` in the input for every output pixel. Bilinear for the image,
    nearest for the labels (which keep their dtype and values; with ``"reflection"``, mirrored
    objects get ids of their own, see the module docstring, so a stack of maps comes back int64,
    the new ids need not fit its dtype). Runs on NumPy, whatever the backend.
    The sampling runs in float32 at least (a float16 image is read in float32 and the result
    cast back): float16 pixel coordinates past 1024 are a whole pixel apart (on a 2048-pixel
    image the bilinear fraction would be lost), and they overflow beyond 65504."""
    _check_sample("warp", image, mask, same_size=False)
    _check_float_image(image, "warp")
    if mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"warp: the image is {image.shape[-2]}x{image.shape[-1]} but the labels are "
                         f"{mask.shape[-2]}x{mask.shape[-1]}; they must match (both are read at the same positions)")
    if not isinstance(positions, np.ndarray):
        raise TypeError(f"warp: positions must be a NumPy array (H, W, 2) of pixel coordinates (x, y), got "
                        f"{checks.describe(positions)}")
    if positions.shape != image.shape[-2:] + (2,):
        raise ValueError(f"warp: positions must be (H, W, 2), a point (x, y) for each of the image's "
                         f"{image.shape[-2]}x{image.shape[-1]} pixels, got shape {positions.shape}")
    if positions.dtype.kind not in "iuf":
        raise TypeError(f"warp: positions must hold real pixel coordinates, got dtype {positions.dtype}")
    _check_padding_mode(padding_mode, "warp")
    positions = positions.astype(np.float64, copy=False)
    outside = ~(np.abs(positions) <= _MAX_POSITION)                    # NaN is outside too
    if outside.any():
        raise ValueError(f"warp: positions must be finite pixel coordinates within +-2**53, got {outside.sum()} "
                         f"value(s) that are not, the first {float(positions[outside][0])!r}")
    h, w = image.shape[-2:]
    work = np.promote_types(image.dtype, np.float32)         # float32 or float64, never float16
    # pixel -> normalised coordinates of grid_sample (align_corners=False: pixel centres at (2k + 1) / W - 1)
    grid = Tensor._wrap(((2 * positions + 1) / np.array([w, h]) - 1)[None].astype(work))
    # the labels are not sampled as numbers (a float would round ids past 2**24 or 2**53): each output
    # pixel samples, with nearest, the number 1 + k of input pixel k, then copies that pixel's labels
    # (0 is outside the image, under "zeros" padding: label 0). Pixel numbers are exact in float32
    # below 2**24 pixels, else in float64.
    number_dtype = work if h * w < 2 ** 24 else np.float64
    numbers = np.arange(1, h * w + 1, dtype=number_dtype).reshape(1, 1, h, w)
    number_grid = grid if number_dtype == work else Tensor._wrap(grid.data.astype(number_dtype))
    with no_grad():
        out = grid_sample(Tensor._wrap(np.ascontiguousarray(image[None], dtype=work)), grid,
                          padding_mode=padding_mode).data[0].astype(image.dtype, copy=False)
        picked = grid_sample(Tensor._wrap(numbers), number_grid, mode="nearest", padding_mode=padding_mode).data
    picked = np.rint(picked).astype(np.intp).reshape(-1)
    moved = mask.reshape(-1, h * w).take(picked - 1, axis=1, mode="clip")       # number k: pixel k - 1
    moved[:, picked == 0] = 0                                                  # outside: label 0
    moved = moved.reshape(mask.shape)
    if padding_mode == "reflection":        # about the edges -0.5, W - 0.5: copy k covers [kW - 0.5, (k+1)W - 0.5)
        copy_x = np.floor((positions[..., 0] + 0.5) / w).astype(np.int64)
        copy_y = np.floor((positions[..., 1] + 0.5) / h).astype(np.int64)
        moved = mirrored_copies(moved, copy_y, copy_x)
    return out, moved


def _unwarped(mask, padding_mode):
    """``mask`` when a deformation is not drawn, in the dtype ``warp`` gives it: with reflection a
    stack is int64 whether or not the draw fires (``mirrored_copies``), so that its dtype does not
    depend on the seed."""
    return mirrored_copies(mask, 0, 0) if padding_mode == "reflection" else mask


def bicubic_weights(n, points):
    """``(n, points)`` matrix that interpolates ``points`` control values, spread evenly from the first
    pixel's centre to the last (align_corners=True), to ``n`` pixels with the cubic convolution kernel
    (Keys, a = -0.75; PyTorch's and OpenCV's "bicubic"), the end control values repeated beyond the ends.

    Kernel: ``k(t) = (a+2)|t|^3 - (a+3)|t|^2 + 1`` for ``|t| <= 1``,
    ``a|t|^3 - 5a|t|^2 + 8a|t| - 4a`` for ``1 < |t| < 2``, 0 beyond; each pixel mixes
    the four control values around it. Each row sums to 1. Cached per size (read-only).
    """
    n = checks.integer(n, "n", "bicubic_weights", minimum=1)
    points = checks.integer(points, "points", "bicubic_weights", minimum=1)
    checks.check_bytes((n, points), 8, "bicubic_weights", f"n={n} and points={points}")
    return _bicubic_weights(n, points)


@functools.lru_cache(maxsize=64)
def _bicubic_weights(n, points):
    a = -0.75
    src = np.arange(n) * ((points - 1) / (n - 1)) if n > 1 else np.zeros(1)
    base = np.floor(src).astype(np.int64)
    frac = src - base
    weights = np.zeros((n, points))
    for offset in (-1, 0, 1, 2):
        t = np.abs(frac - offset)
        k = np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a)
        np.add.at(weights, (np.arange(n), np.clip(base + offset, 0, points - 1)), k)
    weights.flags.writeable = False
    return weights


def elastic_displacement(size, sigma, rng, points=3):
    """The U-Net paper's random displacement field, ``(2, H, W)`` in pixels (x, then y): a
    ``points x points`` grid of displacement vectors drawn from N(0, sigma^2), interpolated
    smoothly (bicubic, ``bicubic_weights``) to every pixel."""
    h, w = _as_size(size, "elastic_displacement: size")
    sigma = _check_sigma(sigma, "elastic_displacement")
    _check_rng(rng, "elastic_displacement")
    points = _check_points(points, "elastic_displacement")
    _check_field_fits((h, w), points, "elastic_displacement")
    coarse = rng.normal(0.0, sigma, (2, points, points))
    rows, cols = bicubic_weights(h, points), bicubic_weights(w, points)
    return rows @ coarse @ cols.T


# Displacements are drawn in pixels; a spread beyond this moves every pixel far outside any image
# and the sampling positions (float32 for a float32 image) would lose their precision, and then
# overflow to infinity.
_MAX_SIGMA = 1e4


def _check_sigma(sigma, op):
    rule = f"a finite, non-negative number of pixels, at most {_MAX_SIGMA:g}"
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise TypeError(f"{op}: sigma must be {rule}, got {sigma!r}")
    if not 0 <= sigma <= _MAX_SIGMA:
        raise ValueError(f"{op}: sigma must be {rule}, got {sigma!r}")
    return float(sigma)


def _check_points(points, op):
    rule = "an int >= 2 (control points per axis)"
    if isinstance(points, bool) or not isinstance(points, numbers.Integral):
        raise TypeError(f"{op}: points must be {rule}, got {points!r}")
    if points < 2:
        raise ValueError(f"{op}: points must be {rule}, got {points!r}")
    return int(points)


def _check_field_fits(size, points, op):
    """Refuse a ``points x points`` control grid whose arrays (float64: the grid, the field
    interpolated along one axis) would not fit in memory."""
    cause = f"points={points} on a {size[0]}x{size[1]} image"
    checks.check_bytes((2, points, points), 8, op, cause)
    checks.check_bytes((2, max(size), points), 8, op, cause)


class RandomElastic:
    """Random elastic deformation, the U-Net paper's recipe: displacement vectors on a coarse
    ``points x points`` grid (3 x 3), each component drawn from a Gaussian of standard deviation
    ``sigma`` pixels (10), interpolated to a per-pixel field; output pixel ``(i, j)`` then reads
    the input at ``(j + dx, i + dy)``. Applied with probability ``p``.

    Smooth interpolation: bicubic, as in the paper (the cubic convolution kernel of
    ``bicubic_weights``): the field and its slope are continuous, so straight edges bend
    smoothly. A bilinear field would have kinks along the control grid's middle lines, where
    straight edges would bend at a corner, for no saving: the interpolation is two
    ``(H, 3) @ (3, 3) @ (3, W)`` products per sample either way.
    ``padding_mode`` says what points pushed outside the image read (``grid_sample``'s
    modes; ``"reflection"`` mirrors the image and its labels alike; ``"zeros"`` reads 0
    for both, so the labels there become class 0, whatever class 0 means).

    The paper's 10 pixels were for 512-pixel images; on a 64-pixel image they are a
    sixth of its width. ``docs/sampling.md`` measures both that and the paper's
    fraction of the image (``sigma = 10 * size / 512``) on a small training set.

    Not torchvision's ``ElasticTransform(alpha, sigma)``, although an argument shares its
    name: there random per-pixel displacements are smoothed by a Gaussian of standard
    deviation ``sigma`` and scaled by ``alpha`` (Simard et al.'s recipe); here ``sigma`` is
    the displacement's own spread in pixels, and the smoothness comes from the coarse grid.
    """

    def __init__(self, sigma=10.0, points=3, p=1.0, padding_mode="reflection"):
        self.sigma, self.points = _check_sigma(sigma, "RandomElastic"), _check_points(points, "RandomElastic")
        self.p = _check_probability(p, "RandomElastic: p")
        self.padding_mode = _check_padding_mode(padding_mode, "RandomElastic")

    def sample_positions(self, size, rng):
        """Where each output pixel reads the input, ``(H, W, 2)`` pixel coordinates ``(x, y)``."""
        h, w = size
        dx, dy = elastic_displacement((h, w), self.sigma, rng, self.points)
        rows, cols = np.mgrid[0:h, 0:w]
        return np.stack([cols + dx, rows + dy], axis=-1)

    def __call__(self, image, mask, rng):
        _check_sample("RandomElastic", image, mask, rng)
        _check_float_image(image, "RandomElastic")          # before the draw: refused whatever it draws
        _check_field_fits(image.shape[-2:], self.points, "RandomElastic")
        if rng.random() >= self.p:                          # not drawn: the mask as warp would type it
            return image, _unwarped(mask, self.padding_mode)
        return warp(image, mask, self.sample_positions(image.shape[-2:], rng), self.padding_mode)

    def __repr__(self):
        return (f"RandomElastic(sigma={self.sigma:g}, points={self.points}, p={self.p:g}, "
                f"padding_mode={self.padding_mode!r})")


class RandomAffine:
    """A random rotation, scaling, shear and shift of image and labels together, about the image's
    centre (torchvision's ``RandomAffine`` arguments), built with ``F.affine_grid``.

    ``degrees``: rotation in degrees, clockwise as seen on the screen for a positive angle (as
    torchvision's ``RandomAffine``, whose ``F.affine`` turns clockwise; its ``RandomRotation``
    turns the other way), a number ``d`` for ``[-d, d]`` or a pair; ``translate``:
    ``(a, b)``, shifts up to ``a`` of the width and ``b`` of the height (drawn as real numbers of
    pixels, where torchvision rounds them to whole pixels); ``scale``: a pair ``(lo, hi)`` of zoom
    factors; ``shear``: degrees along x, a number or a pair, with torchvision's sign (the matrix
    ``[[1, -tan s], [0, 1]]``, y pointing down). Each is drawn uniformly. The content moves by
    ``A = shift . rotate . scale . shear``, torchvision's order; the grid is its inverse (where
    each output pixel came from), in ``grid_sample``'s normalised coordinates.
    ``padding_mode`` as in ``RandomElastic`` (with ``"zeros"``, labels pushed in from outside
    are class 0).
    """

    def __init__(self, degrees=0.0, translate=None, scale=None, shear=None, p=1.0, padding_mode="reflection"):
        # bounded, so that no draw overflows: a turn beyond 360 degrees turns no further, and
        # zooms beyond a million (or below a millionth) move every pixel out of any image
        self.degrees = _range(degrees, "RandomAffine: degrees", 0.0, low=-360, high=360)
        if translate is None:
            translate = (0.0, 0.0)
        rule = "a pair (a, b) of fractions in [0, 1]"
        if (not isinstance(translate, (tuple, list)) or len(translate) != 2
                or not all(isinstance(t, numbers.Real) and not isinstance(t, bool) for t in translate)):
            raise TypeError(f"RandomAffine: translate must be {rule}, got {translate!r}")
        if not all(0 <= t <= 1 for t in translate):
            raise ValueError(f"RandomAffine: translate must be {rule}, got {translate!r}")
        self.translate = (float(translate[0]), float(translate[1]))
        if isinstance(scale, numbers.Real):
            raise TypeError(f"RandomAffine: scale must be a pair (min, max) of zoom factors, got {scale!r}")
        self.scale = (1.0, 1.0) if scale is None else _range(scale, "RandomAffine: scale", 1.0, low=1e-6, high=1e6)
        self.shear = (0.0, 0.0) if shear is None else _range(shear, "RandomAffine: shear", 0.0)
        if not all(-90 < s < 90 for s in self.shear):
            raise ValueError(f"RandomAffine: shear must stay between -90 and 90 degrees, got {shear!r}")
        self.p = _check_probability(p, "RandomAffine: p")
        self.padding_mode = _check_padding_mode(padding_mode, "RandomAffine")

    def sample_matrix(self, size, rng):
        """A random ``A`` (2, 2) and shift ``t`` (2,), in pixels about the centre, as drawn by ``__call__``."""
        h, w = size
        angle = np.deg2rad(rng.uniform(*self.degrees))
        zoom = rng.uniform(*self.scale)
        shear = np.tan(np.deg2rad(rng.uniform(*self.shear)))
        shift = np.array([rng.uniform(-1, 1) * self.translate[0] * w, rng.uniform(-1, 1) * self.translate[1] * h])
        # (x, y) with y pointing down: this turns a positive angle clockwise on the screen, and
        # shears as torchvision's F.affine does (its _get_inverse_affine_matrix, inverted)
        rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return rotate @ (zoom * np.array([[1.0, -shear], [0.0, 1.0]])), shift

    @staticmethod
    def positions(size, matrix, shift):
        """Where each output pixel reads the input, ``(H, W, 2)`` pixel coordinates, when the
        content moves by ``q = A p + t`` about the image's centre: ``p = A^-1 (q - t)``, as an
        ``affine_grid`` in normalised units (``x_norm = x_pix * 2 / W`` about the centre)."""
        h, w = size
        to_norm = np.diag([2.0 / w, 2.0 / h])
        inverse = np.linalg.inv(matrix)
        theta = np.concatenate([to_norm @ inverse @ np.linalg.inv(to_norm),
                                (-to_norm @ inverse @ shift)[:, None]], axis=1)
        with no_grad():
            grid = affine_grid(Tensor._wrap(theta[None]), (1, 1, h, w)).data[0]
        # back to pixel coordinates: the form RandomElastic also gives warp (which turns them into
        # grid_sample's normalised units again)
        return ((grid + 1) * np.array([w, h]) - 1) / 2

    def sample_positions(self, size, rng):
        """Where each output pixel reads the input, ``(H, W, 2)``, for a random draw of the map."""
        return self.positions(size, *self.sample_matrix(size, rng))

    def __call__(self, image, mask, rng):
        _check_sample("RandomAffine", image, mask, rng)
        _check_float_image(image, "RandomAffine")          # before the draw: refused whatever it draws
        if rng.random() >= self.p:                          # not drawn: the mask as warp would type it
            return image, _unwarped(mask, self.padding_mode)
        return warp(image, mask, self.sample_positions(image.shape[-2:], rng), self.padding_mode)

    def __repr__(self):
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale}, "
                f"shear={self.shear}, p={self.p:g}, padding_mode={self.padding_mode!r})")


class ColorJitter:
    """Random brightness, contrast and gamma of the image (the labels are untouched), each factor
    drawn uniformly, applied in that order, values clipped to [0, 1] after each step (images in
    [0, 1], as the datasets give them).

    ``brightness`` b: ``image * f``, ``f`` in ``[max(0, 1 - b), 1 + b]`` (torchvision's rule);
    ``contrast`` c: ``mean + f (image - mean)``, same range, about the mean of the image's
    grey levels (torchvision's rule: for 3 channels its luminance ``0.2989 R + 0.587 G + 0.114 B``,
    for one channel the image itself; torchvision refuses other channel counts, where this takes
    the mean over every channel);
    ``gamma`` g: ``image ** f``, ``f`` in ``[1 - g, 1 + g]`` (g < 1). Each may also be a pair (min, max).
    Unlike torchvision's ``ColorJitter`` (brightness, contrast, saturation, hue, in random
    order) the order is fixed and gamma replaces the colour terms: the toy images are
    mostly grey levels, and microscopy's usual variation is exposure and gamma.
    """

    def __init__(self, brightness=0.0, contrast=0.0, gamma=0.0):
        self.brightness = _factor_range(brightness, "ColorJitter: brightness")
        self.contrast = _factor_range(contrast, "ColorJitter: contrast")
        self.gamma = _factor_range(gamma, "ColorJitter: gamma", positive=True)

    def __call__(self, image, mask, rng):
        _check_sample("ColorJitter", image, mask, rng, same_size=False)     # the labels do not move
        if image.dtype.kind != "f":
            raise TypeError(f"ColorJitter needs a floating-point image in [0, 1], got dtype {image.dtype}")
        if image.size and not (image.min() >= 0 and image.max() <= 1):    # NaN fails both
            raise ValueError(f"ColorJitter needs an image in [0, 1] (it clips to that range), got values from "
                             f"{image.min():g} to {image.max():g}; scale the image first (e.g. divide by 255)")
        f_brightness, f_contrast, f_gamma = (rng.uniform(*r) for r in (self.brightness, self.contrast, self.gamma))
        out = np.clip(image * f_brightness, 0, 1)
        grey = np.tensordot(_LUMINANCE, out, axes=1) if out.shape[0] == 3 else out   # (3, H, W): torchvision's grey
        mean = grey.mean()
        out = np.clip(mean + f_contrast * (out - mean), 0, 1)
        out = out ** f_gamma
        return out.astype(image.dtype, copy=False), mask

    def __repr__(self):
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, gamma={self.gamma})"


_LUMINANCE = np.array([0.2989, 0.587, 0.114])   # torchvision's rgb_to_grayscale weights (ITU-R 601, rounded)

# A factor beyond this already turns any pixel above 1e-4 white (or, for contrast, 0 or 1),
# and keeps ``image * f`` finite even in float16.
_MAX_FACTOR = 1e4


def _factor_range(value, name, positive=False):
    asked, hi = _range(value, name, 1.0, high=_MAX_FACTOR)
    lo = max(asked, 0.0) if isinstance(value, numbers.Real) else asked
    if (positive and not lo > 0) or not lo >= 0:
        rule = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} factors must stay {rule}, got the range ({asked:g}, {hi:g}) from {value!r}")
    return lo, hi


# The augmentations ``minisegnet train --augment NAME,NAME`` can name: name -> a
# constructor taking no arguments (the settings used for training). One place, so
# a new augmentation is one line here and then exists on the command line.
AUGMENTATIONS = {
    "hflip": lambda: RandomFlip(horizontal=True),                    # mirror left-right, p = 0.5
    "vflip": lambda: RandomFlip(horizontal=False, vertical=True),    # mirror up-down, p = 0.5
    "rot90": RandomRot90,                                            # 0, 90, 180 or 270 degrees
    "elastic": RandomElastic,                                        # the U-Net paper's: 3x3 vectors, sd 10 px
    "affine": lambda: RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1), shear=5),
    "color": lambda: ColorJitter(brightness=0.2, contrast=0.2, gamma=0.2),   # the image only
}
