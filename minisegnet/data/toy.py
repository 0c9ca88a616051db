"""Toy datasets drawn from a seed: ``Shapes``, ``Roads``, ``Cells``.

Each sample is drawn on the fly by a random generator seeded with
``(seed, split, index)``: no download, the same picture on every machine.

* ``Shapes``: circles, squares and triangles (a class each, plus background)
  of random size and rotation on noisy, textured backgrounds; each class has a
  jittered paint colour (``random_colors=True``: any colour, so the network
  must learn the outlines alone).
* ``Roads``: a toy driving scene in perspective: sky, road, lane markings,
  cars and the roadside.
* ``Cells``: grey-level "microscopy" of touching cells, with a boundary class
  between them: the setting of the U-Net paper, where separating touching
  objects is the point.

Instance truth is opt-in: ``return_instances=True`` makes each sample
``(image, mask, instances)``, ``instances`` an int64 ``(H, W)`` map of object
ids ``1 .. K`` (0 where no object is), numbered in drawing order. The image
and the mask are the very same arrays as without it (the ids come from the
drawing, not from extra random numbers). Every dataset says which of its
classes are countable objects (``thing_classes``, which get ids) and which
are amorphous regions (``stuff_classes``, id 0); a pixel's panoptic target is
the pair ``(mask, instances)``, and ``instances > 0`` exactly on thing pixels.
"""
import numpy as np

from .. import checks
from .transforms import _as_size

__all__ = ["Shapes", "Roads", "Cells", "default_palette", "MIN_SIZE"]

MIN_SIZE = 16       # the smallest height and width the scenes are drawn at (their shapes need the room)

_SPLITS = ("train", "val", "test")


def default_palette(num_classes):
    """``(num_classes, 3)`` uint8 colours: the PASCAL VOC colour map (class 0 black).

    Class ``c``'s colour spreads the bits of ``c`` over the high bits of R, G
    and B, so neighbouring indices get clearly different colours.
    """
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for c in range(num_classes):
        r = g = b = 0
        value = c
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[c] = (r, g, b)
    return palette



# ---- drawing helpers (NumPy, small images) ------------------------------------------
def _smooth_noise(rng, h, w, cells):
    """Smooth random field in [0, 1]: a ``cells x cells`` grid of random values,
    bilinearly interpolated up to ``h x w`` (a cheap "value noise" texture)."""
    grid = rng.random((cells + 1, cells + 1))
    y = np.linspace(0, cells, h)
    x = np.linspace(0, cells, w)
    y0 = np.minimum(y.astype(int), cells - 1)
    x0 = np.minimum(x.astype(int), cells - 1)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _blur(image):
    """One pass of a 3x3 binomial blur ([1 2 1]/4 per axis) on (C, H, W), edges repeated:
    softens the hard edges of the drawn shapes the way a camera would."""
    p = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
    p = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4
    return (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) / 4


def _finish(image, rng, noise):
    """Blur, add Gaussian sensor noise, clip to [0, 1], float32."""
    image = _blur(image)
    image = image + rng.normal(0.0, noise, image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _consecutive(ids):
    """Object ids renumbered ``1 .. K`` in their order (0 stays 0): an object the
    later ones covered entirely leaves no gap in the numbering."""
    present, inverse = np.unique(ids, return_inverse=True)
    if present[0] == 0:
        return inverse.reshape(ids.shape).astype(np.int64)
    return (inverse + 1).reshape(ids.shape).astype(np.int64)


def _rotated(yy, xx, cy, cx, angle):
    """Coordinates relative to (cy, cx), rotated by ``angle`` (radians)."""
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    return c * dx + s * dy, -s * dx + c * dy


class _ToyDataset:
    """Shared plumbing of the generated datasets: size, seed, split, indexing."""

    num_classes = 0
    in_channels = 3
    class_names = ()
    thing_classes = ()   # classes whose objects are counted: they get instance ids
    stuff_classes = ()   # amorphous regions: instance id 0
    # Bytes a pixel that drawing one scene takes at its peak (its float64 coordinate grids and
    # layers), measured with tracemalloc at 300 and 800 pixels, instance ids included; a few
    # hundred KiB of fixed cost come on top, which only counts at small sizes.
    draw_bytes = 0

    def __init__(self, num_samples=256, size=64, seed=0, split="train", return_instances=False):
        op = type(self).__name__
        self.num_samples = checks.positive_int(num_samples, "num_samples", op)
        seed = checks.integer(seed, "seed", op, minimum=0)
        if split not in _SPLITS:
            raise ValueError(f"{op}: split must be one of {_SPLITS}, got {split!r}")
        # one rule for 0 and for 8, the scenes' own (not ">= 1")
        self.size = _as_size(size, f"{op}: size", minimum=MIN_SIZE,
                             rule=f"at least {MIN_SIZE} pixels for the toy scenes")
        if not isinstance(return_instances, (bool, np.bool_)):
            raise TypeError(f"{op}: return_instances must be True or False, got {return_instances!r}")
        self.seed = int(seed)
        self.split = split
        self.return_instances = bool(return_instances)
        self.palette = np.array(self.colors, dtype=np.uint8)

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        index = checks.sample_index(index, self.num_samples, type(self).__name__)
        rng = np.random.default_rng([self.seed, _SPLITS.index(self.split), index])
        image, mask, instances = self._draw(rng, *self.size)
        if self.return_instances:
            return image, mask.astype(np.int64), _consecutive(instances)
        return image, mask.astype(np.int64)

    def __repr__(self):
        extra = ", return_instances=True" if self.return_instances else ""
        return (f"{type(self).__name__}(num_samples={self.num_samples}, size={self.size}, "
                f"seed={self.seed}, split={self.split!r}{extra})")


class Shapes(_ToyDataset):
    """Circles, squares and triangles on a noisy, textured background.

    Classes: 0 background, 1 circle, 2 square, 3 triangle. Each image holds
    2-4 shapes of random size and rotation (later ones may overlap earlier
    ones), painted in their class's colour with a random shift; the
    background is a greyish colour with a smooth texture and stripes; Gaussian
    noise covers everything.

    Instances: every shape is a thing (background is the one stuff class).
    Shapes of one class often touch or overlap, so one blob of the mask can
    be two objects, and a shape cut in two by a later one is one object in
    two pieces: connected components of the mask are not the instances.
    """

    num_classes = 4
    in_channels = 3
    draw_bytes = 175          # measured 173
    class_names = ("background", "circle", "square", "triangle")
    thing_classes = (1, 2, 3)
    stuff_classes = (0,)
    colors = ((0, 0, 0), (230, 80, 60), (70, 170, 240), (250, 210, 60))
    # Paint colours per class (RGB), each shape jittered around its class's colour.
    _paint = {1: (0.85, 0.3, 0.25), 2: (0.25, 0.55, 0.9), 3: (0.9, 0.8, 0.2)}

    def __init__(self, num_samples=256, size=64, seed=0, split="train", random_colors=False,
                 return_instances=False):
        """``random_colors=False``: each class has its own paint colour (jittered
        shape by shape) on a greyish background, so colour and outline both tell
        the class. ``random_colors=True``: any colour on any background, so only
        the outline does: a much harder task. ``return_instances=True``: samples
        are ``(image, mask, instances)`` (see the module docstring)."""
        if not isinstance(random_colors, (bool, np.bool_)):        # before any work, as return_instances
            raise TypeError(f"Shapes: random_colors must be True or False, got {random_colors!r}")
        super().__init__(num_samples, size, seed, split, return_instances)
        self.random_colors = bool(random_colors)

    def _draw(self, rng, h, w):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        if self.random_colors:
            base = rng.uniform(0.15, 0.85, 3)
        else:   # a desaturated background, so the class colours stand out from it
            base = rng.uniform(0.25, 0.7) + rng.uniform(-0.06, 0.06, 3)
        texture = _smooth_noise(rng, h, w, 4) - 0.5
        angle = rng.uniform(0, np.pi)
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * rng.uniform(0.3, 0.8))
        image = base[:, None, None] + 0.25 * texture + 0.06 * stripes
        mask = np.zeros((h, w), dtype=np.int64)
        instances = np.zeros((h, w), dtype=np.int64)
        side = min(h, w)
        for number in range(1, rng.integers(2, 5) + 1):
            cls = int(rng.integers(1, 4))
            r = rng.uniform(0.10, 0.2) * side
            cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
            u, v = _rotated(yy, xx, cy, cx, rng.uniform(0, 2 * np.pi))
            if cls == 1:
                inside = u * u + v * v <= r * r
            elif cls == 2:
                half = 0.85 * r
                inside = (np.abs(u) <= half) & (np.abs(v) <= half)
            else:
                # equilateral triangle with circumradius 1.2 r: three half-planes
                inside = np.ones_like(u, dtype=bool)
                for k in range(3):
                    t = 2 * np.pi * k / 3
                    inside &= u * np.cos(t) + v * np.sin(t) <= 0.6 * r
            if self.random_colors:
                color = rng.uniform(0, 1, 3)
                while np.abs(color - base).sum() < 0.6:   # keep every shape visible on its background
                    color = rng.uniform(0, 1, 3)
            else:
                color = np.clip(np.array(self._paint[cls]) + rng.uniform(-0.12, 0.12, 3), 0, 1)
            shade = color[:, None, None] + 0.08 * (_smooth_noise(rng, h, w, 3) - 0.5)
            image = np.where(inside[None], shade, image)
            mask[inside] = cls
            instances[inside] = number
        return _finish(image, rng, 0.05), mask, instances


class Roads(_ToyDataset):
    """A toy driving scene in perspective.

    Classes: 0 sky, 1 road, 2 lane marking, 3 car, 4 roadside. The road
    narrows towards a vanishing point on the horizon; the centre line is
    dashed and the edge lines solid; cars are boxes with a darker window
    band, smaller the further away they are.

    Instances: cars are the things (0-3 per image; a nearer car hides part of
    a farther one); sky, road, lane marking and roadside are stuff.
    """

    num_classes = 5
    in_channels = 3
    draw_bytes = 220          # measured 218
    class_names = ("sky", "road", "lane marking", "car", "roadside")
    thing_classes = (3,)
    stuff_classes = (0, 1, 2, 4)
    colors = ((70, 130, 180), (128, 64, 128), (255, 255, 255), (0, 0, 142), (107, 142, 35))

    def _draw(self, rng, h, w):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        horizon = rng.uniform(0.3, 0.45) * h
        vanish_x = rng.uniform(0.35, 0.65) * w
        bottom_x = rng.uniform(0.4, 0.6) * w
        bottom_half = rng.uniform(0.35, 0.6) * w
        # t: 0 at the horizon, 1 at the bottom row; the road's centre and half-width scale with t
        t = np.clip((yy - horizon) / (h - 1 - horizon), 0, 1)
        centre = vanish_x + (bottom_x - vanish_x) * t
        half = bottom_half * t
        below = yy > horizon
        road = below & (np.abs(xx - centre) < half)

        mask = np.where(below, 4, 0)
        mask[road] = 1
        line = np.maximum(0.025 * w * t, 0.6)
        # dashes of equal length on the ground: depth ~ 1/t, so dash on/off in 1/t
        depth = 1.0 / np.maximum(t, 1e-3)
        dashed = (np.mod(depth * rng.uniform(1.5, 2.5) + rng.uniform(0, 1), 1.0) < 0.5) & (t > 0.08)
        markings = road & (((np.abs(xx - centre) < line) & dashed)
                           | (np.abs(np.abs(xx - centre) - 0.92 * half) < line))
        mask[markings] = 2

        sky = np.stack([0.45 + 0.3 * yy / h, 0.6 + 0.2 * yy / h, np.full_like(yy, 0.9)])
        sky += 0.15 * (_smooth_noise(rng, h, w, 5) - 0.5)
        grass_tint = rng.uniform(-0.08, 0.08, 3)
        side = np.array([0.35, 0.55, 0.2])[:, None, None] + grass_tint[:, None, None] \
            + 0.2 * (_smooth_noise(rng, h, w, 8) - 0.5)
        asphalt = rng.uniform(0.3, 0.45) + 0.08 * (_smooth_noise(rng, h, w, 10) - 0.5)
        image = np.where(below[None], side, sky)
        image = np.where(road[None], asphalt[None].repeat(3, 0), image)
        image = np.where(markings[None], 0.92, image)

        instances = np.zeros((h, w), dtype=np.int64)
        cars = sorted(rng.uniform(0.3, 1.0, rng.integers(0, 4)))   # far ones first, near ones on top
        for k, ct in enumerate(cars):
            y_bottom = horizon + ct * (h - 1 - horizon)
            lane = rng.choice([-0.5, 0.5])
            c_x = vanish_x + (bottom_x - vanish_x) * ct + lane * bottom_half * ct
            car_w = 0.55 * bottom_half * ct
            car_h = 0.7 * car_w
            body = (np.abs(xx - c_x) <= car_w / 2) & (yy <= y_bottom) & (yy >= y_bottom - car_h)
            window = body & (yy < y_bottom - 0.55 * car_h) & (np.abs(xx - c_x) <= 0.38 * car_w)
            color = rng.uniform(0, 1, 3)
            image = np.where(body[None], color[:, None, None], image)
            image = np.where(window[None], 0.15, image)
            mask[body] = 3
            instances[body] = k + 1
        image = image * rng.uniform(0.8, 1.15)   # exposure
        return _finish(image, rng, 0.04), mask, instances


class Cells(_ToyDataset):
    """Grey-level "microscopy": touching cells separated by a boundary class.

    Classes: 0 background, 1 cell, 2 boundary. Cells are random ellipses;
    where two overlap, each pixel belongs to the nearer one (in units of its
    size), so touching cells share a wall. The boundary class is every cell
    pixel with a 4-neighbour of another cell or of the background; it is
    drawn dark, like a membrane, over bright textured cytoplasm with a darker
    nucleus. One channel, as in the U-Net paper's electron microscopy data.

    Instances: a cell is its interior (class 1), the thing to count; the
    membranes (class 2) and the background are stuff, as the membranes of the
    U-Net paper's data are. Two touching cells are thus two objects a wall of
    membrane two pixels thick apart: the thin gap the paper's weight map is
    made to keep open. A cell too small to have an interior has no id.
    """

    num_classes = 3
    in_channels = 1
    draw_bytes = 135          # measured 133
    class_names = ("background", "cell", "boundary")
    thing_classes = (1,)
    stuff_classes = (0, 2)
    colors = ((0, 0, 0), (60, 180, 75), (255, 225, 25))

    def _draw(self, rng, h, w):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        side = min(h, w)
        n = int(rng.integers(5, 11))
        best = np.full((h, w), np.inf)
        owner = np.full((h, w), -1)
        nucleus = np.zeros((h, w), dtype=bool)
        brightness = rng.uniform(0.55, 0.8, n)
        for k in range(n):
            a = rng.uniform(0.09, 0.16) * side
            b = a * rng.uniform(0.65, 1.0)
            cy, cx = rng.uniform(0.1 * h, 0.9 * h), rng.uniform(0.1 * w, 0.9 * w)
            u, v = _rotated(yy, xx, cy, cx, rng.uniform(0, np.pi))
            d = np.sqrt((u / a) ** 2 + (v / b) ** 2)
            closer = (d < best) & (d <= 1.0)
            owner[closer] = k
            best = np.where(closer, d, best)
            nucleus |= d <= 0.35
        label = owner + 1                      # 0 = background, k+1 = cell k
        padded = np.pad(label, 1, mode="edge")
        edge = np.zeros((h, w), dtype=bool)
        for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            edge |= padded[dy:dy + h, dx:dx + w] != label
        cell = label > 0
        mask = np.where(cell, np.where(edge, 2, 1), 0)

        image = 0.25 + 0.12 * (_smooth_noise(rng, h, w, 6) - 0.5)
        cytoplasm = brightness[np.maximum(owner, 0)] + 0.15 * (_smooth_noise(rng, h, w, 12) - 0.5)
        image = np.where(cell, cytoplasm, image)
        image = np.where(cell & nucleus & ~edge, image - 0.2, image)
        image = np.where(mask == 2, 0.12, image)
        return _finish(image[None], rng, 0.05), mask, np.where(mask == 1, label, 0)
