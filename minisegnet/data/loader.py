"""Batching: ``DataLoader`` shuffles, augments and stacks samples."""
import inspect

import numpy as np

from .. import checks
from ..random import generator

__all__ = ["DataLoader"]


_LABEL_NAMES = ("mask", "instances")


def _check_sample(index, sample, after=""):
    """A sample is ``(image, label map, ...)``: a floating-point ``(C, H, W)`` image (the loader
    makes float32 of it, so a uint8 image would arrive as values 0..255) and integer label maps
    of the image's size (casting a float map to int64 would silently truncate it, and a map of
    another size would not line up). ``after``: the transform's name when checking its output,
    where the image may be larger than the labels (``MirrorPad``); the maps must still agree."""
    if not isinstance(sample, (tuple, list)) or len(sample) < 1:
        raise TypeError(f"sample {index}{after}: a sample must be a tuple (image, mask, ...), got "
                        f"{checks.describe(sample)}")
    image, *labels = sample
    if np.ndim(image) != 3 or np.asarray(image).dtype.kind != "f":
        raise TypeError(f"sample {index}{after}: its image must be a floating-point (C, H, W) array (scale "
                        f"integer pixels to [0, 1] first, e.g. image / 255), got {checks.describe(image)}")
    size = tuple(np.shape(labels[0] if after and labels else image)[-2:])
    for k, label in enumerate(labels):
        name = _LABEL_NAMES[k] if k < len(_LABEL_NAMES) else f"label map {k + 1}"
        label = np.asarray(label)
        if label.dtype.kind not in "iub":
            raise TypeError(f"sample {index}{after}: its {name} has dtype {label.dtype}; label maps must hold "
                            "integers (class indices or object ids)")
        if tuple(label.shape) != size:
            raise ValueError(f"sample {index}{after}: its {name} has shape {tuple(label.shape)} but its "
                             f"{'first label map' if after else 'image'} is {size[0]}x{size[1]} (height x width); "
                             f"each label map needs one value per pixel")
        if label.dtype == np.uint64 and label.size and int(label.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"sample {index}{after}: its {name} holds {int(label.max())}, past int64's largest; "
                             f"the loader gives int64 label maps, and the cast would wrap it")


def _check_transform(transform):
    """A transform is called as ``transform(image, mask, rng)``: a torchvision-style one of the image
    alone (or of image and mask) is named here, before the first batch, not by the first call."""
    if isinstance(transform, type):          # callable too: it would be made, with the image as its argument
        raise TypeError(f"DataLoader: transform is the class {transform.__name__}, not an augmentation: "
                        f"write transform={transform.__name__}(...)")
    if not callable(transform):
        raise TypeError(f"DataLoader: transform must be callable as transform(image, mask, rng), "
                        f"got {transform!r}")
    try:
        signature = inspect.signature(transform)
    except (TypeError, ValueError):        # a callable without a signature to read (some builtins): its call says
        return
    try:
        signature.bind(None, None, None)
    except TypeError:
        raise TypeError(f"DataLoader: transform must take three arguments, transform(image, mask, rng) (the "
                        f"augmentations of minisegnet.data do; a torchvision transform of the image alone does "
                        f"not move the mask), got {transform!r} with the signature {signature}") from None


class DataLoader:
    """Batches of samples: ``(images, masks)``, float32 ``(N, C, H, W)`` and int64 ``(N, H, W)``
    NumPy arrays, or ``(images, masks, instances)`` when the dataset's samples have three parts.

    A batch has the parts of a sample, each stacked along a new first axis.
    ``shuffle`` draws a new order every pass. The random numbers (order and
    augmentation) come from ``np.random.default_rng([seed, epoch])`` when a
    ``seed`` is given, so pass ``e`` is repeatable on its own (``set_epoch``
    replays pass ``e`` from its start), or else from the library's ``minisegnet.random.generator()``.
    ``transform(image, mask, rng)`` augments each sample; when a sample has
    several label maps they reach the transform stacked ``(K, H, W)``, so that
    one crop or flip moves them all.

    Where PyTorch's differs: there is no ``sampler``, ``num_workers`` or
    ``collate_fn`` (the batch is stacked here, in this process), the transform
    belongs to the loader rather than the dataset, and an empty dataset, or
    ``drop_last=True`` with fewer samples than a batch, is an error (PyTorch's
    loader without shuffle has ``len() == 0`` and yields nothing).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, seed=None, drop_last=False, transform=None):
        batch_size = checks.positive_int(batch_size, "batch_size", "DataLoader")
        seed = checks.integer(seed, "seed", "DataLoader", minimum=0, allow_none=True)
        if transform is not None:
            _check_transform(transform)
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty (len(dataset) == 0)")
        self.shuffle = checks.flag(shuffle, "shuffle", "DataLoader")
        self.drop_last = checks.flag(drop_last, "drop_last", "DataLoader")
        if self.drop_last and len(dataset) < batch_size:
            raise ValueError(f"DataLoader: drop_last=True with {len(dataset)} samples and batch_size={batch_size} "
                             f"leaves no batch; use a smaller batch_size or drop_last=False")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = seed
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch):
        """Make the next pass draw the numbers of pass ``epoch`` (counted from 0)."""
        self.epoch = checks.integer(epoch, "epoch", "DataLoader.set_epoch", minimum=0)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _sample(self, index, rng):
        """Sample ``index`` as ``(image, label_1, ...)``, augmented."""
        sample = self.dataset[index]
        _check_sample(index, sample)
        sample = tuple(np.asarray(part) for part in sample)      # (nested lists as the arrays they spell)
        if self.transform is None:
            return sample
        image, *labels = sample
        if not labels:
            raise ValueError(f"sample {index} has an image only; a transform moves an image with its labels "
                             f"(transform(image, mask, rng)), so it needs at least one label map")
        # several maps stacked in int64, the batch's dtype (np.stack would make int64 beside uint64 float64)
        stacked = labels[0] if len(labels) == 1 else np.stack([label.astype(np.int64, copy=False) for label in labels])
        result = self.transform(image, stacked, rng)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError(f"DataLoader: transform {self.transform!r} must return a pair (image, mask), "
                            f"returned {checks.describe(result)}")
        image, stacked = result
        out = (image, stacked) if len(labels) == 1 else (image, *stacked)
        _check_sample(index, out, after=f" after {type(self.transform).__name__}")
        return out

    def __iter__(self):
        rng = generator() if self.seed is None else np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        n = len(self.dataset)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            samples = [self._sample(int(i), rng) for i in order[start:start + self.batch_size]]
            shapes = {tuple(part.shape for part in sample) for sample in samples}
            if len(shapes) > 1:
                raise ValueError(f"cannot stack a batch of differently sized samples {sorted(shapes)}; "
                                 "add a RandomCrop/CenterCrop transform or use batch_size=1")
            images, *labels = zip(*samples)
            yield (np.stack(images).astype(np.float32, copy=False),
                   *(np.stack(part).astype(np.int64, copy=False) for part in labels))
