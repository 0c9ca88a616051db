"""Your own data: ``FolderDataset`` pairs image files with index-PNG masks (and,
optionally, instance-id PNGs); ``Subset``; ``check_folder`` reads every sample once
and reports every bad file at once."""
import os
import sys

import numpy as np

from .. import checks
from .toy import default_palette

__all__ = ["FolderDataset", "Subset", "check_folder", "infer_num_classes", "image_array", "check_image_mode",
           "conversion_note"]

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


# 16-bit grey PNGs (microscopy, depth): PIL's convert to "L" or "RGB" would clip them to 255.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def image_array(im, in_channels, path):
    """An opened PIL image as a float32 ``(in_channels, H, W)`` array in ``[0, 1]``: 8-bit
    images divided by 255 (colour converted to grey, or grey repeated, as ``in_channels``
    asks), 16-bit grey ones by 65535. A ``ValueError`` naming ``path`` for a mode whose
    range is not known (32-bit integers, floats).

    A photo whose EXIF orientation says a viewer turns (or mirrors) it is turned so first:
    cameras store a portrait shot as landscape pixels with "rotate 90" in its EXIF, and
    viewers, browsers and annotation tools show it turned, so that is the picture its mask
    was drawn on (read as stored, a 90-degree turn would not fit its mask, a 180-degree one
    would fit upside down). Masks are read as stored."""
    check_image_mode(im, path)
    if exif_orientation(im) != 1:
        from PIL import ImageOps

        im = ImageOps.exif_transpose(im)
    if im.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(im, dtype=np.float32) / 65535.0
        return np.repeat(grey[None], in_channels, axis=0)
    array = np.asarray(im.convert("RGB" if in_channels == 3 else "L"), dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


_GREY_MODES = ("1", "L", "LA", "La") + _SIXTEEN_BIT_MODES
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_RGB_MODES = ("RGB", "RGBA", "RGBa", "RGBX")
_PALETTE_MODES = ("P", "PA")


def exif_orientation(im):
    """An opened image's EXIF orientation: 1 when stored as shown (or no tag, or one out of
    range), 2 to 8 when a viewer mirrors or turns it (3: 180 degrees, 6 and 8: 90)."""
    try:
        value = im.getexif().get(0x0112, 1)
    except (OSError, ValueError, TypeError, SyntaxError):     # unreadable EXIF: shown as stored
        return 1
    return value if value in range(2, 9) else 1


def _fitting(im, in_channels):
    """The steps, in words, by which ``image_array`` fits an opened PIL image to ``in_channels``
    (a tuple; empty when it reads it as it is): turned by its EXIF orientation, then channels."""
    done = []
    orientation = exif_orientation(im)
    if orientation != 1:
        done.append(f"turned as its EXIF orientation ({orientation}) says")
    if im.mode in _ALPHA_MODES:
        done.append("dropped the alpha channel")
    elif "transparency" in im.info:
        done.append("dropped the transparency")
    grey = im.mode in _GREY_MODES
    if in_channels == 3 and grey:
        done.append("repeated the grey channel")
    elif in_channels == 3 and im.mode not in _RGB_MODES + _PALETTE_MODES:
        done.append(f"converted {im.mode} to RGB")
    elif in_channels != 3 and not grey:
        source = ("the palette's colours" if im.mode in _PALETTE_MODES
                  else "RGB" if im.mode in _RGB_MODES else im.mode)
        done.append(f"converted {source} to grey")
    return tuple(done)


def conversion_note(im, in_channels):
    """What ``image_array`` does to an opened PIL image's channels to give ``in_channels``,
    in words ("has 1 channel (PIL mode L), the model takes 3: repeated the grey channel"),
    or None when it reads them as they are (a palette's colours read as RGB included)."""
    done = _fitting(im, in_channels)
    if not done:
        return None
    n = len(im.getbands())
    return (f"has {n} channel{'s' if n > 1 else ''} (PIL mode {im.mode}), the model takes {in_channels}: "
            + ", ".join(done))


def check_image_mode(im, path):
    """A ``ValueError`` naming ``path`` for an opened PIL image whose values have no known range
    (32-bit integers or floats), which ``image_array`` cannot scale into ``[0, 1]``."""
    if im.mode in ("I", "F"):
        raise ValueError(f"image {path!r} has PIL mode {im.mode!r} (32-bit {'integers' if im.mode == 'I' else 'floats'}), "
                         "whose range is unknown; save it as an 8- or 16-bit image")


def _index_files(directory, what, extensions):
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what} directory {directory!r} does not exist")
    found = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in extensions:
            if stem in found:                   # pairs are matched by stem: one of the two would be dropped
                raise ValueError(f"{what} directory {directory!r} holds {os.path.basename(found[stem])!r} and "
                                 f"{name!r}: two files named {stem!r}; pairs are matched by name, so keep one")
            found[stem] = os.path.join(directory, name)
    return found


def infer_num_classes(masks_dir):
    """``(count, (mask, label))``: 1 + the largest label in the index-PNG masks of ``masks_dir``
    (255, VOC's "don't care", is no class), and the file that holds that label. Files it cannot
    read are skipped here: ``check_folder`` reports them all."""
    top, where = 0, None
    for name in sorted(os.listdir(masks_dir)):
        if name.lower().endswith(".png"):
            try:
                with _open(os.path.join(masks_dir, name)) as m:
                    if m.mode not in ("L", "P", "I", "I;16", "1"):
                        continue
                    values = np.unique(np.asarray(m))
            except OSError:                      # (an image past PIL's size limit too: ``_open``)
                continue
            values = values[values != 255]
            if values.size and int(values.max()) >= top:
                top, where = int(values.max()), name
    return top + 1, (where, top)


def _open(path):
    """``PIL.Image.open(path)``; an image past PIL's size limit (or a corrupt header that claims
    one) is an OSError naming the file, as an unreadable one is (PIL's DecompressionBombError is
    neither, and names no file)."""
    from PIL import Image

    try:
        return Image.open(path)
    except Image.DecompressionBombError as error:
        raise OSError(f"{os.fspath(path)!r}: {error}") from None


class FolderDataset:
    """Pairs ``images_dir/NAME.png`` with ``masks_dir/NAME.png`` (matched by file stem).

    Masks are index images (PNG mode ``L`` or ``P``): each pixel's value is
    its class, ``0 .. num_classes-1``; ``ignore_index`` (e.g. 255, VOC's
    "don't care" border) is also allowed. Images are read as RGB
    (``in_channels=3``) or grey (``in_channels=1``), scaled to ``[0, 1]``.
    Missing pairs are reported when the dataset is made (``unpaired="keep"``:
    kept in ``self.unpaired`` for ``check_folder`` to report with every other
    problem, and the pairs that are complete used); a size mismatch or a
    label beyond ``num_classes`` when the pair is read.

    Instance truth (optional): ``instances_dir/NAME.png`` holds each pixel's
    object id, 0 where no object is, as a 16-bit greyscale PNG (mode ``I;16``,
    ids up to 65535; 8-bit ``L`` and 32-bit ``I`` PNGs are read too). Samples
    are then ``(image, mask, instances)``. ``thing_classes`` names the classes
    whose objects carry ids (the rest are ``stuff_classes``). An object is a
    (class, id) pair, as panoptic quality counts it: a car and a person may
    both have id 1, and ids on stuff pixels are ignored (the instance and
    panoptic tasks renumber the pairs and zero the stuff before making their
    targets: ``tasks.instance.object_ids``). A layout::

        data/images/0001.png     RGB or grey image
        data/masks/0001.png      class per pixel (8-bit index PNG)
        data/instances/0001.png  object id per pixel (16-bit PNG, 0 = none)

    A missing instance file is reported when the dataset is made; a
    non-integer image (say a float TIFF-like mode ``F``), a negative id or a
    size other than the image's when it is read.
    """

    def __init__(self, images_dir, masks_dir, num_classes, in_channels=3, ignore_index=None,
                 class_names=None, instances_dir=None, thing_classes=(), unpaired="raise"):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not (checks.is_int(in_channels) and in_channels in (1, 3)):
            raise ValueError(f"in_channels must be 1 (grey) or 3 (RGB), got {in_channels!r}")
        if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
                                         or 0 <= ignore_index < num_classes):
            raise ValueError(f"ignore_index must be None or an int outside the classes 0..{num_classes - 1} (a "
                             f"'don't care' label such as 255; a class index would turn that class into void), "
                             f"got {ignore_index!r}")
        images = _index_files(images_dir, "images", _IMAGE_EXTENSIONS)
        masks = _index_files(masks_dir, "masks", (".png",))
        if unpaired not in ("raise", "keep"):
            raise ValueError(f"unpaired must be 'raise' or 'keep', got {unpaired!r}")
        no_mask = sorted(set(images) - set(masks))
        no_image = sorted(set(masks) - set(images))
        self.unpaired = []          # with unpaired="keep": what check_folder reports with the rest
        if no_mask:
            self.unpaired.append(f"{len(no_mask)} image(s) in {images_dir!r} have no mask "
                                 f"(e.g. {', '.join(no_mask[:5])}); each image needs a mask PNG of the same name")
        if no_image:
            self.unpaired.append(f"{len(no_image)} mask(s) in {masks_dir!r} have no image "
                                 f"(e.g. {', '.join(no_image[:5])}); each mask needs an image of the same name")
        if self.unpaired and unpaired == "raise":
            raise ValueError("unpaired files: " + "; ".join(self.unpaired))
        images = {k: v for k, v in images.items() if k in masks}
        if not images and self.unpaired:
            raise ValueError("no image has a mask: " + "; ".join(self.unpaired))
        if not images:
            raise ValueError(f"no images found in {images_dir!r} (looked for {', '.join(_IMAGE_EXTENSIONS)})")
        self.pairs = [(images[k], masks[k]) for k in sorted(images)]
        self.instance_files = None
        if instances_dir is not None:
            found = _index_files(instances_dir, "instances", (".png",))
            missing = [k for k in sorted(images) if k not in found]
            if missing:
                raise ValueError(f"{len(missing)} image(s) in {images_dir!r} have no instance PNG in "
                                 f"{instances_dir!r} (e.g. {', '.join(missing[:5])}); with instances_dir "
                                 "every image needs one with the same name")
            self.instance_files = [found[k] for k in sorted(images)]
        things = tuple(thing_classes)
        for c in things:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < num_classes:
                raise ValueError(f"thing_classes must hold class indices in [0, {num_classes}), got {thing_classes!r}")
        if len(set(things)) != len(things):
            raise ValueError(f"thing_classes names a class twice: {thing_classes!r}")
        self.thing_classes = tuple(sorted(int(c) for c in things))
        self.stuff_classes = tuple(c for c in range(num_classes) if c not in self.thing_classes)
        self.num_classes = int(num_classes)
        self.in_channels = in_channels
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        if class_names is not None and (isinstance(class_names, str) or len(class_names) != num_classes):
            raise ValueError(f"FolderDataset: class_names must name each of the {num_classes} classes, "
                             f"a list of {num_classes} names, got {class_names!r}")
        self.class_names = tuple(class_names) if class_names else tuple(f"class {c}" for c in range(num_classes))
        self.palette = default_palette(num_classes)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        return self._read(index)[0]

    def _read(self, index):
        """``(sample, (PIL mode, steps))``: the sample and how its image's channels were fitted
        to ``in_channels`` (``_fitting``'s steps, empty when they were read as they are)."""
        index = checks.sample_index(index, len(self.pairs), "FolderDataset")
        image_path, mask_path = self.pairs[index]
        with _open(image_path) as im:
            image = image_array(im, self.in_channels, image_path)
            fitting = (im.mode, _fitting(im, self.in_channels))
        with _open(mask_path) as m:
            if m.mode not in ("L", "P", "I", "I;16", "1"):
                raise ValueError(f"mask {mask_path!r} is an image of mode {m.mode!r}; masks must be index images "
                                 "(PNG mode 'L' or 'P') whose pixel values are class numbers")
            mask = np.asarray(m).astype(np.int64)
        if image.shape[1:] != mask.shape:
            raise ValueError(f"image {image_path!r} is {image.shape[2]}x{image.shape[1]} but its mask "
                             f"{mask_path!r} is {mask.shape[1]}x{mask.shape[0]} (width x height)")
        valid = (mask >= 0) & (mask < self.num_classes)
        if self.ignore_index is not None:
            valid |= mask == self.ignore_index
        if not valid.all():
            bad = sorted(set(np.unique(mask[~valid]).tolist()))
            raise ValueError(f"mask {mask_path!r} holds label(s) {bad[:10]} outside [0, {self.num_classes}) "
                             f"for num_classes={self.num_classes}"
                             + ("" if self.ignore_index is not None else " (pass ignore_index for a 'don't care' label)"))
        if self.instance_files is None:
            return (np.ascontiguousarray(image), mask), fitting
        return (np.ascontiguousarray(image), mask, self._read_instances(index, mask.shape)), fitting

    def conversion_summary(self):
        """One line on the images whose channels are fitted to ``in_channels``, counted by
        ``check_folder`` as it read them ("3 of 40 images (PIL mode L): repeated the grey
        channel; 1 of 40 images (PIL mode RGBA): dropped the alpha channel (the model takes 3
        channels)"), or None when none is, or ``check_folder`` has not read the folder."""
        conversions = getattr(self, "conversions", None)
        if not conversions:
            return None
        groups = {}                                 # the same steps, whatever the mode: one group
        for (mode, steps), count in conversions.items():
            total, modes = groups.get(steps, (0, []))
            groups[steps] = (total + count, modes + [mode])
        parts = [f"{count} of {len(self)} images (PIL mode {', '.join(sorted(modes))}): {', '.join(steps)}"
                 for steps, (count, modes) in sorted(groups.items(), key=lambda item: -item[1][0])]
        return "; ".join(parts) + f" (the model takes {self.in_channels} channel{'s' if self.in_channels > 1 else ''})"

    def _read_instances(self, index, size):
        """The instance-id PNG of sample ``index`` as int64 ``(H, W)``, checked."""
        path = self.instance_files[index]
        with _open(path) as m:
            if m.mode not in ("L", "I", "I;16", "I;16B", "I;16L"):
                raise ValueError(f"instance map {path!r} is an image of mode {m.mode!r}; instance maps must hold "
                                 "integer object ids (16-bit greyscale PNG, mode 'I;16'; 0 = no object)")
            ids = np.asarray(m)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"instance map {path!r} has dtype {ids.dtype}; object ids must be integers")
        ids = ids.astype(np.int64)
        if ids.shape != size:
            raise ValueError(f"instance map {path!r} is {ids.shape[1]}x{ids.shape[0]} but its image is "
                             f"{size[1]}x{size[0]} (width x height)")
        if ids.size and ids.min() < 0:
            raise ValueError(f"instance map {path!r} holds the negative id {int(ids.min())}; ids are >= 0 "
                             "(0 = no object)")
        return ids

    def __repr__(self):
        return f"FolderDataset({len(self)} pairs, num_classes={self.num_classes})"


class Subset:
    """The samples of ``dataset`` at ``indices`` (e.g. a held-out split of a FolderDataset). As
    ``torch.utils.data.Subset``, an index may be negative (-1: the last sample)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        indices = list(indices)
        for i in indices:          # int() would cut 1.9 to 1, and read a boolean mask as indices 0 and 1
            if not checks.is_int(i):
                raise TypeError(f"Subset: indices must be integers (a boolean mask: np.flatnonzero(mask)), "
                                f"got {checks.describe(i)}")
        n = len(dataset)
        for i in indices:
            if not -n <= i < n:
                raise IndexError(f"Subset index {i} is out of range for a dataset of {n} samples "
                                 f"(-{n} to {n - 1})")
        self.indices = [int(i) % n for i in indices]
        for name in ("num_classes", "in_channels", "class_names", "palette", "thing_classes", "stuff_classes"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def digest(self):
        """A short fingerprint of which files of a ``FolderDataset`` this subset holds (their
        image names): a run records its held-out split's, so that a folder changed since (a file
        added reshuffles the whole split) is noticed."""
        import hashlib

        names = "\n".join(sorted(os.path.basename(self.dataset.pairs[i][0]) for i in self.indices))
        return hashlib.sha256(names.encode()).hexdigest()[:16]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[self.indices[checks.sample_index(index, len(self.indices), "Subset")]]


def check_folder(dataset, progress=False):
    """Read every sample of ``dataset`` (a ``FolderDataset``) once and raise one
    ``ValueError`` that lists every pair that cannot be used, one line each: a
    file that is not an image, a mask that is not an index image (e.g. RGB), a
    mask of another size than its image, a label outside ``[0, num_classes)``.

    Run it before training, so that a bad file is reported in seconds, with
    all the others, rather than as a traceback in the middle of an epoch.
    ``progress=True`` shows a progress bar on stderr for folders of 50 pairs
    or more. Returns the number of pairs checked. On the way it counts, from the
    images it opens anyway, those whose channels are fitted to the dataset's
    ``in_channels`` (grey repeated, alpha dropped, ...): ``dataset.conversions``, a
    ``Counter`` of ``(PIL mode, steps)``, which ``dataset.conversion_summary()`` puts in words,
    and the smallest height and width it saw, ``dataset.smallest`` (the trainer says when its
    crops are larger: those images are mirror-padded to the crop).
    """
    from collections import Counter

    from tqdm import tqdm

    problems = list(getattr(dataset, "unpaired", []))
    read = getattr(dataset, "_read", None)           # a FolderDataset: the sample and its fitting
    conversions, smallest = Counter(), None
    steps = tqdm(range(len(dataset)), desc="checking the data folder", unit="pair", leave=False,
                 disable=not progress or len(dataset) < 50, file=sys.stderr, dynamic_ncols=True)
    for index in steps:
        try:
            if read is None:
                dataset[index]
            else:
                sample, fitting = read(index)
                if fitting[1]:
                    conversions[fitting] += 1
                height, width = sample[0].shape[1:]
                smallest = (height, width) if smallest is None else (min(smallest[0], height),
                                                                     min(smallest[1], width))
        except ValueError as error:
            problems.append(str(error))
        except OSError as error:               # PIL: not an image it can read (a file cut short: its
            pair = getattr(dataset, "pairs", None)          # message names no file, so the pair is named)
            named = pair is None or any(os.fspath(p) in str(error) for p in pair[index])
            problems.append(f"unreadable file: {error}" + ("" if named else
                                                           f" (image {os.fspath(pair[index][0])!r}, mask "
                                                           f"{os.fspath(pair[index][1])!r})"))
    if problems:
        unpaired = len(getattr(dataset, "unpaired", []))
        raise ValueError(f"{len(problems) - unpaired} of {len(dataset)} image/mask pairs cannot be used"
                         + (" and some files have no partner" if unpaired else "") + ":\n  "
                         + "\n  ".join(problems))
    if read is not None:
        dataset.conversions, dataset.smallest = conversions, smallest
    return len(dataset)
