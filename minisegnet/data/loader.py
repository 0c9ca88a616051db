"""Batching: ``DataLoader`` shuffles, augments and stacks samples."""
import numpy as np

from ..random import generator

__all__ = ["DataLoader"]


_LABEL_NAMES = ("mask", "instances")


def _check_labels(index, image, labels):
    """Each label map of a sample is integer and the image's size: casting a float map to
    int64 would silently truncate it, and a map of another size would not line up."""
    size = tuple(np.shape(image)[-2:])
    for k, label in enumerate(labels):
        name = _LABEL_NAMES[k] if k < len(_LABEL_NAMES) else f"label map {k + 1}"
        label = np.asarray(label)
        if label.dtype.kind not in "iub":
            raise TypeError(f"sample {index}: its {name} has dtype {label.dtype}; label maps must hold "
                            "integers (class indices or object ids)")
        if tuple(label.shape) != size:
            raise ValueError(f"sample {index}: its {name} has shape {tuple(label.shape)} but its image is "
                             f"{size[0]}x{size[1]} (height x width); each label map needs one value per pixel")


class DataLoader:
    """Batches of samples: ``(images, masks)``, float32 ``(N, C, H, W)`` and int64 ``(N, H, W)``
    NumPy arrays, or ``(images, masks, instances)`` when the dataset's samples have three parts.

    A batch has the parts of a sample, each stacked along a new first axis.
    ``shuffle`` draws a new order every pass. The random numbers (order and
    augmentation) come from ``np.random.default_rng([seed, epoch])`` when a
    ``seed`` is given, so pass ``e`` is repeatable on its own (``set_epoch``
    resumes mid-way), or else from the library's ``minisegnet.random.generator()``.
    ``transform(image, mask, rng)`` augments each sample; when a sample has
    several label maps they reach the transform stacked ``(K, H, W)``, so that
    one crop or flip moves them all.
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

    def _sample(self, index, rng):
        """Sample ``index`` as ``(image, label_1, ...)``, augmented."""
        image, *labels = self.dataset[index]
        _check_labels(index, image, labels)
        if self.transform is None:
            return (image, *labels)
        stacked = labels[0] if len(labels) == 1 else np.stack(labels)
        image, stacked = self.transform(image, stacked, rng)
        return (image, stacked) if len(labels) == 1 else (image, *stacked)

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
