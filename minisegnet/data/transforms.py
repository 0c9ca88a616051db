"""Augmentations: image ``(C, H, W)`` and labels move together.

An augmentation is a callable ``t(image, mask, rng) -> (image, mask)``.
``mask`` is a label map ``(H, W)``, or several label maps stacked
``(K, H, W)`` (say, class and instance id) that must move as one; every
transform here indexes the last two axes only, so both work. ``rng`` is a
NumPy ``Generator``: the loader seeds it per epoch, so augmentation is
repeatable.
"""
import numpy as np

__all__ = ["Compose", "RandomFlip", "RandomRot90", "RandomCrop", "CenterCrop", "MirrorPad"]


def _as_size(size, name="size"):
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        raise TypeError(f"{name} must be an int or a pair (height, width) of ints, got {size!r}")
    if min(size) < 1:
        raise ValueError(f"{name} must be >= 1, got {size!r}")
    return int(size[0]), int(size[1])



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
            image, mask = image[..., ::-1], mask[..., ::-1]
        if self.vertical and rng.random() < self.p:
            image, mask = image[..., ::-1, :], mask[..., ::-1, :]
        return image, mask


class RandomRot90:
    """Rotate by a random multiple of 90 degrees (only 0 or 180 for non-square
    images, so every sample of a batch keeps its shape)."""

    def __call__(self, image, mask, rng):
        k = int(rng.integers(4)) if image.shape[-1] == image.shape[-2] else 2 * int(rng.integers(2))
        return np.rot90(image, k, axes=(-2, -1)), np.rot90(mask, k, axes=(-2, -1))


def _reflect_to(image, mask, size):
    """Mirror-pad image and mask (the same pixels) up to at least ``size``."""
    h, w = mask.shape[-2:]
    ph, pw = max(size[0] - h, 0), max(size[1] - w, 0)
    if ph or pw:
        pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
        image = np.pad(image, ((0, 0),) + pads, mode="reflect")
        mask = np.pad(mask, ((0, 0),) * (mask.ndim - 2) + pads, mode="reflect")
    return image, mask


def _window(image, mask, top, left, size):
    """The ``size`` window at ``(top, left)`` of image and labels."""
    rows, cols = slice(top, top + size[0]), slice(left, left + size[1])
    return image[:, rows, cols], mask[..., rows, cols]


class RandomCrop:
    """A random ``size`` window of image and mask; smaller images are first
    mirror-padded (reflect, as ``F.pad(mode="reflect")``) up to ``size``."""

    def __init__(self, size):
        self.size = _as_size(size)

    def __call__(self, image, mask, rng):
        image, mask = _reflect_to(image, mask, self.size)
        h, w = mask.shape[-2:]
        top = int(rng.integers(h - self.size[0] + 1))
        left = int(rng.integers(w - self.size[1] + 1))
        return _window(image, mask, top, left, self.size)


class CenterCrop:
    """The central ``size`` window (mirror-padding smaller images): deterministic, for evaluation."""

    def __init__(self, size):
        self.size = _as_size(size)

    def __call__(self, image, mask, rng=None):
        image, mask = _reflect_to(image, mask, self.size)
        h, w = mask.shape[-2:]
        top, left = (h - self.size[0]) // 2, (w - self.size[1]) // 2
        return _window(image, mask, top, left, self.size)


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
