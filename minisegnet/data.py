"""Data: toy segmentation datasets drawn from a seed, your own PNGs, batching, augmentation.

Every dataset is a sequence of ``(image, mask)`` pairs:

* ``image``: float32 array ``(C, H, W)`` with values in ``[0, 1]``;
* ``mask``: int64 array ``(H, W)`` of class indices ``0 .. num_classes-1``
  (where the model's ``logits.argmax(0)`` should end up).

The toy datasets need no download: each sample is drawn on the fly by a
random generator seeded with ``(seed, split, index)``, so ``Shapes(seed=0)[7]``
is the same picture on every machine and every call, and the ``"val"`` split
never repeats a ``"train"`` picture.

* ``Shapes``: circles, squares and triangles (a class each, plus background)
  of random size and rotation on noisy, textured backgrounds; each class has a
  jittered paint colour (``random_colors=True``: any colour, so the network
  must learn the outlines alone).
* ``Roads``: a toy driving scene in perspective: sky, road, lane markings,
  cars and the roadside.
* ``Cells``: grey-level "microscopy" of touching cells, with a boundary class
  between them: the setting of the U-Net paper, where separating touching
  objects is the point.
* ``FolderDataset``: your own images and index-PNG masks.

``DataLoader`` stacks samples into batches ``(N, C, H, W)`` / ``(N, H, W)``
(NumPy arrays; the training loop moves them to the backend), shuffles with a
seeded generator and applies augmentations to image and mask together.
Augmentations are callables ``t(image, mask, rng) -> (image, mask)``.
"""
import os

import numpy as np

from .random import generator

__all__ = [
    "Shapes", "Roads", "Cells", "FolderDataset", "Subset", "DataLoader", "default_palette",
    "Compose", "RandomFlip", "RandomRot90", "RandomCrop", "CenterCrop", "MirrorPad",
]

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


def _as_size(size, name="size"):
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        raise TypeError(f"{name} must be an int or a pair (height, width) of ints, got {size!r}")
    if min(size) < 1:
        raise ValueError(f"{name} must be >= 1, got {size!r}")
    return int(size[0]), int(size[1])


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

    def __init__(self, num_samples=256, size=64, seed=0, split="train"):
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        self.num_samples = int(num_samples)
        self.size = _as_size(size)
        if min(self.size) < 16:
            raise ValueError(f"size must be at least 16 pixels for the toy scenes, got {size!r}")
        self.seed = int(seed)
        self.split = split
        self.palette = np.array(self.colors, dtype=np.uint8)

    def __len__(self):
        return self.num_samples

    def __getitem__(self, index):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {index!r}")
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} is out of range for a dataset of {self.num_samples} samples")
        index = int(index) % self.num_samples
        rng = np.random.default_rng([self.seed, _SPLITS.index(self.split), index])
        image, mask = self._draw(rng, *self.size)
        return image, mask.astype(np.int64)

    def __repr__(self):
        return (f"{type(self).__name__}(num_samples={self.num_samples}, size={self.size}, "
                f"seed={self.seed}, split={self.split!r})")


class Shapes(_ToyDataset):
    """Circles, squares and triangles on a noisy, textured background.

    Classes: 0 background, 1 circle, 2 square, 3 triangle. Each image holds
    2-4 shapes of random size and rotation (later ones may overlap earlier
    ones), painted in their class's colour with a random shift; the
    background is a greyish colour with a smooth texture and stripes; Gaussian
    noise covers everything.
    """

    num_classes = 4
    in_channels = 3
    class_names = ("background", "circle", "square", "triangle")
    colors = ((0, 0, 0), (230, 80, 60), (70, 170, 240), (250, 210, 60))
    # Paint colours per class (RGB), each shape jittered around its class's colour.
    _paint = {1: (0.85, 0.3, 0.25), 2: (0.25, 0.55, 0.9), 3: (0.9, 0.8, 0.2)}

    def __init__(self, num_samples=256, size=64, seed=0, split="train", random_colors=False):
        """``random_colors=False``: each class has its own paint colour (jittered
        shape by shape) on a greyish background, so colour and outline both tell
        the class. ``random_colors=True``: any colour on any background, so only
        the outline does: a much harder task."""
        super().__init__(num_samples, size, seed, split)
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
        side = min(h, w)
        for _ in range(rng.integers(2, 5)):
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
        return _finish(image, rng, 0.05), mask


class Roads(_ToyDataset):
    """A toy driving scene in perspective.

    Classes: 0 sky, 1 road, 2 lane marking, 3 car, 4 roadside. The road
    narrows towards a vanishing point on the horizon; the centre line is
    dashed and the edge lines solid; cars are boxes with a darker window
    band, smaller the further away they are.
    """

    num_classes = 5
    in_channels = 3
    class_names = ("sky", "road", "lane marking", "car", "roadside")
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

        cars = sorted(rng.uniform(0.3, 1.0, rng.integers(0, 4)))   # far ones first, near ones on top
        for ct in cars:
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
        image = image * rng.uniform(0.8, 1.15)   # exposure
        return _finish(image, rng, 0.04), mask


class Cells(_ToyDataset):
    """Grey-level "microscopy": touching cells separated by a boundary class.

    Classes: 0 background, 1 cell, 2 boundary. Cells are random ellipses;
    where two overlap, each pixel belongs to the nearer one (in units of its
    size), so touching cells share a wall. The boundary class is every cell
    pixel with a 4-neighbour of another cell or of the background; it is
    drawn dark, like a membrane, over bright textured cytoplasm with a darker
    nucleus. One channel, as in the U-Net paper's electron microscopy data.
    """

    num_classes = 3
    in_channels = 1
    class_names = ("background", "cell", "boundary")
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
        return _finish(image[None], rng, 0.05), mask


# ---- your own images -----------------------------------------------------------
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _index_files(directory, what, extensions):
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what} directory {directory!r} does not exist")
    found = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions:
            found[stem] = os.path.join(directory, name)
    return found


class FolderDataset:
    """Pairs ``images_dir/NAME.png`` with ``masks_dir/NAME.png`` (matched by file stem).

    Masks are index images (PNG mode ``L`` or ``P``): each pixel's value is
    its class, ``0 .. num_classes-1``; ``ignore_index`` (e.g. 255, VOC's
    "don't care" border) is also allowed. Images are read as RGB
    (``in_channels=3``) or grey (``in_channels=1``), scaled to ``[0, 1]``.
    Missing pairs are reported when the dataset is made; a size mismatch or a
    label beyond ``num_classes`` when the pair is read.
    """

    def __init__(self, images_dir, masks_dir, num_classes, in_channels=3, ignore_index=None,
                 class_names=None):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (grey) or 3 (RGB), got {in_channels!r}")
        images = _index_files(images_dir, "images", _IMAGE_EXTENSIONS)
        masks = _index_files(masks_dir, "masks", (".png",))
        no_mask = sorted(set(images) - set(masks))
        no_image = sorted(set(masks) - set(images))
        if no_mask or no_image:
            parts = []
            if no_mask:
                parts.append(f"{len(no_mask)} image(s) in {images_dir!r} have no mask "
                             f"(e.g. {', '.join(no_mask[:5])})")
            if no_image:
                parts.append(f"{len(no_image)} mask(s) in {masks_dir!r} have no image "
                             f"(e.g. {', '.join(no_image[:5])})")
            raise ValueError("unpaired files: " + "; ".join(parts) +
                             ". Each image needs a mask PNG with the same name.")
        if not images:
            raise ValueError(f"no images found in {images_dir!r} (looked for {', '.join(_IMAGE_EXTENSIONS)})")
        self.pairs = [(images[k], masks[k]) for k in sorted(images)]
        self.num_classes = int(num_classes)
        self.in_channels = in_channels
        self.ignore_index = ignore_index
        self.class_names = tuple(class_names) if class_names else tuple(f"class {c}" for c in range(num_classes))
        self.palette = default_palette(num_classes)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        from PIL import Image

        image_path, mask_path = self.pairs[index]
        with Image.open(image_path) as im:
            image = np.asarray(im.convert("RGB" if self.in_channels == 3 else "L"), dtype=np.float32) / 255.0
        with Image.open(mask_path) as m:
            if m.mode not in ("L", "P", "I", "I;16", "1"):
                raise ValueError(f"mask {mask_path!r} is a {m.mode} image; masks must be index images "
                                 "(PNG mode 'L' or 'P') whose pixel values are class numbers")
            mask = np.asarray(m).astype(np.int64)
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image {image_path!r} is {image.shape[1]}x{image.shape[0]} but its mask "
                             f"{mask_path!r} is {mask.shape[1]}x{mask.shape[0]} (width x height)")
        valid = (mask >= 0) & (mask < self.num_classes)
        if self.ignore_index is not None:
            valid |= mask == self.ignore_index
        if not valid.all():
            bad = sorted(set(np.unique(mask[~valid]).tolist()))
            raise ValueError(f"mask {mask_path!r} holds label(s) {bad[:10]} outside [0, {self.num_classes}) "
                             f"for num_classes={self.num_classes}"
                             + ("" if self.ignore_index is not None else " (pass ignore_index for a 'don't care' label)"))
        image = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
        return np.ascontiguousarray(image), mask

    def __repr__(self):
        return f"FolderDataset({len(self)} pairs, num_classes={self.num_classes})"


class Subset:
    """The samples of ``dataset`` at ``indices`` (e.g. a held-out split of a FolderDataset)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]
        for i in self.indices:
            if not 0 <= i < len(dataset):
                raise IndexError(f"Subset index {i} is out of range for a dataset of {len(dataset)} samples")
        for name in ("num_classes", "in_channels", "class_names", "palette"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]


# ---- augmentation: image (C, H, W) and mask (H, W) move together -------------------
class Compose:
    """Apply several augmentations in order."""

    def __init__(self, *transforms):
        self.transforms = transforms

    def __call__(self, image, mask, rng):
        for t in self.transforms:
            image, mask = t(image, mask, rng)
        return image, mask


class RandomFlip:
    """Mirror left-right (and optionally up-down), each with probability ``p``."""

    def __init__(self, horizontal=True, vertical=False, p=0.5):
        self.horizontal, self.vertical, self.p = horizontal, vertical, p

    def __call__(self, image, mask, rng):
        if self.horizontal and rng.random() < self.p:
            image, mask = image[:, :, ::-1], mask[:, ::-1]
        if self.vertical and rng.random() < self.p:
            image, mask = image[:, ::-1], mask[::-1]
        return image, mask


class RandomRot90:
    """Rotate by a random multiple of 90 degrees (only 0 or 180 for non-square
    images, so every sample of a batch keeps its shape)."""

    def __call__(self, image, mask, rng):
        k = int(rng.integers(4)) if image.shape[-1] == image.shape[-2] else 2 * int(rng.integers(2))
        return np.rot90(image, k, axes=(1, 2)), np.rot90(mask, k, axes=(0, 1))


def _reflect_to(image, mask, size):
    """Mirror-pad image and mask (the same pixels) up to at least ``size``."""
    h, w = mask.shape
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph or pw:
        pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
        image = np.pad(image, ((0, 0),) + pads, mode="reflect")
        mask = np.pad(mask, pads, mode="reflect")
    return image, mask


class RandomCrop:
    """A random ``size`` window of image and mask; smaller images are first
    mirror-padded (reflect, as ``F.pad(mode="reflect")``) up to ``size``."""

    def __init__(self, size):
        self.size = _as_size(size)

    def __call__(self, image, mask, rng):
        image, mask = _reflect_to(image, mask, self.size)
        h, w = mask.shape
        top = int(rng.integers(h - self.size[0] + 1))
        left = int(rng.integers(w - self.size[1] + 1))
        return (image[:, top:top + self.size[0], left:left + self.size[1]],
                mask[top:top + self.size[0], left:left + self.size[1]])


class CenterCrop:
    """The central ``size`` window (mirror-padding smaller images): deterministic, for evaluation."""

    def __init__(self, size):
        self.size = _as_size(size)

    def __call__(self, image, mask, rng=None):
        image, mask = _reflect_to(image, mask, self.size)
        h, w = mask.shape
        top, left = (h - self.size[0]) // 2, (w - self.size[1]) // 2
        return (image[:, top:top + self.size[0], left:left + self.size[1]],
                mask[top:top + self.size[0], left:left + self.size[1]])


class MirrorPad:
    """Mirror the image's borders outwards by ``(top, bottom, left, right)`` pixels
    and leave the mask alone: the U-Net paper's input tiles for valid convolutions,
    whose output is smaller than their input by exactly that margin.

    ``padding`` is an int (all sides) or a 4-tuple. Reflection repeats as
    often as needed when a margin exceeds the image.
    """

    def __init__(self, padding):
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            padding = (int(padding),) * 4
        if (not isinstance(padding, (tuple, list)) or len(padding) != 4
                or not all(isinstance(p, (int, np.integer)) and p >= 0 for p in padding)):
            raise ValueError(f"padding must be a non-negative int or (top, bottom, left, right), got {padding!r}")
        self.padding = tuple(int(p) for p in padding)

    def __call__(self, image, mask, rng=None):
        t, b, l, r = self.padding
        return np.pad(image, ((0, 0), (t, b), (l, r)), mode="reflect"), mask


# ---- batching ---------------------------------------------------------------
class DataLoader:
    """Batches of ``(images, masks)``: float32 ``(N, C, H, W)`` and int64 ``(N, H, W)`` NumPy arrays.

    ``shuffle`` draws a new order every pass. The random numbers (order and
    augmentation) come from ``np.random.default_rng([seed, epoch])`` when a
    ``seed`` is given, so pass ``e`` is repeatable on its own (``set_epoch``
    resumes mid-way), or else from the library's ``minisegnet.random.generator()``.
    ``transform(image, mask, rng)`` augments each sample.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, seed=None, drop_last=False, transform=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable as transform(image, mask, rng), got {transform!r}")
        if len(dataset) == 0:
            raise ValueError("the dataset is empty")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch):
        """Make the next pass draw the numbers of pass ``epoch`` (counted from 0)."""
        self.epoch = int(epoch)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        rng = generator() if self.seed is None else np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            images, masks = [], []
            for i in order[start:start + self.batch_size]:
                image, mask = self.dataset[int(i)]
                if self.transform is not None:
                    image, mask = self.transform(image, mask, rng)
                images.append(image)
                masks.append(mask)
            shapes = {(im.shape, m.shape) for im, m in zip(images, masks)}
            if len(shapes) > 1:
                raise ValueError(f"cannot stack a batch of differently sized samples {sorted(shapes)}; "
                                 "add a RandomCrop/CenterCrop transform or use batch_size=1")
            yield np.stack(images).astype(np.float32, copy=False), np.stack(masks).astype(np.int64, copy=False)
