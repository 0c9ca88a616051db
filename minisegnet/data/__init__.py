"""Data: toy segmentation datasets drawn from a seed, your own PNGs, augmentation, batching.

Every dataset is a sequence of samples ``(image, mask)``, or
``(image, mask, instances)`` where a dataset also gives instance truth:

* ``image``: float32 array ``(C, H, W)`` with values in ``[0, 1]``;
* ``mask``: int64 array ``(H, W)`` of class indices ``0 .. num_classes-1``
  (where the model's ``logits.argmax(0)`` should end up);
* ``instances`` (when present): int64 array ``(H, W)`` of object ids, 0 where
  no object is. The toy datasets give it with ``return_instances=True``, a
  ``FolderDataset`` with ``instances_dir``; ``thing_classes`` and
  ``stuff_classes`` say which classes are countable objects and which are not.

The toy datasets need no download: each sample is drawn on the fly by a
random generator seeded with ``(seed, split, index)``, so ``Shapes(seed=0)[7]``
is the same picture on every machine and every call, and the ``"val"`` split
never repeats a ``"train"`` picture.

The package, one concept per module:

* ``toy``: ``Shapes`` (circles, squares and triangles on textured
  backgrounds), ``Roads`` (a toy driving scene), ``Cells`` (touching cells,
  the U-Net paper's setting), and ``default_palette``;
* ``folder``: ``FolderDataset`` (your own images and index-PNG masks), ``Subset``,
  ``check_folder``, ``infer_num_classes``;
* ``transforms``: augmentations ``t(image, mask, rng) -> (image, mask)`` that
  move image and labels together; ``mask`` is one label map ``(H, W)`` or
  several stacked ``(K, H, W)`` (class and instance id) that move as one:
  flips, rotations, crops, and the deformations ``RandomElastic`` (the U-Net
  paper's) and ``RandomAffine`` through ``F.grid_sample``; ``ColorJitter``;
  ``AUGMENTATIONS`` names those ``minisegnet train --augment`` can use;
* ``loader``: ``DataLoader``, which shuffles with a seeded generator, applies
  a transform and stacks samples into batches ``(N, C, H, W)`` / ``(N, H, W)``
  (NumPy arrays; the training loop moves them to the backend).
"""
from .folder import FolderDataset, Subset, check_folder, infer_num_classes
from .loader import DataLoader
from .toy import Cells, Roads, Shapes, default_palette
from .transforms import (AUGMENTATIONS, CenterCrop, ColorJitter, Compose, MirrorPad, RandomAffine, RandomCrop,
                         RandomElastic, RandomFlip, RandomRot90)

__all__ = [
    "Shapes", "Roads", "Cells", "FolderDataset", "Subset", "check_folder", "infer_num_classes", "DataLoader",
    "default_palette",
    "Compose", "RandomFlip", "RandomRot90", "RandomCrop", "CenterCrop", "MirrorPad",
    "RandomElastic", "RandomAffine", "ColorJitter", "AUGMENTATIONS",
]
