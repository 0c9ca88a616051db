"""Overlap between objects: intersection over union of instance masks and of boxes.

``mask_iou(masks1, masks2)`` and ``box_iou(boxes1, boxes2)`` both return the
``(N, M)`` matrix of IoUs between every object of the first set and every
object of the second, the building block of instance matching (PQ matches
segments at IoU > 0.5; detection benchmarks match boxes at 0.5 or more).

    IoU(A, B) = |A n B| / |A u B| = |A n B| / (|A| + |B| - |A n B|)

Boxes are ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``, the layout
of ``torchvision.ops.box_iou``: a box covers the continuous region
``[x1, x2] x [y1, y2]``, so its area is ``(x2 - x1) (y2 - y1)`` (no ``+ 1``).
A box with integer corners therefore covers exactly the pixels
``mask[y1:y2, x1:x2]``, and its box IoU equals the pixel-counting IoU of the
drawn masks.

The IoU of two empty objects is ``0 / 0``: NaN, as in torchvision. Both
functions run on the inputs' backend (NumPy or CuPy) and return an array of
that backend, float64 for integer or boolean input.
"""
import numpy as np

from .. import backend, checks

__all__ = ["mask_iou", "box_iou", "box_area"]


def _float(a, xp):
    """Boxes in a floating dtype wide enough for areas: float16 in float32 (a 300 x 300 box's
    area is past float16's 65504, as torchvision's ``_upcast`` avoids), integers in float64."""
    if a.dtype == np.float16:
        return a.astype(xp.float32)
    return a if a.dtype.kind == "f" else a.astype(xp.float64)


def mask_iou(masks1, masks2):
    """``(N, M)`` IoUs between ``N`` boolean masks ``(N, H, W)`` and ``M`` masks ``(M, H, W)``.

    The intersections of all pairs at once are one matrix product of the
    flattened masks: ``(N, HW) @ (HW, M)`` counts the pixels both cover.
    Masks of several instances come from an instance-id map ``ids`` with
    ``ids[None] == labels[:, None, None]`` for the ``labels`` you want.
    """
    op = "mask_iou"
    masks1, masks2 = checks.array(masks1, "masks1", op), checks.array(masks2, "masks2", op)
    xp = backend.get_array_module(masks1, masks2)
    for name, m in (("masks1", masks1), ("masks2", masks2)):
        if m.ndim != 3:
            raise ValueError(f"{op}: {name} must have shape (num_masks, H, W), got {tuple(m.shape)}")
        if m.dtype != bool:
            raise TypeError(f"{op}: {name} must be boolean masks, got dtype {m.dtype} "
                            "(compare an instance map with its ids first)")
    if masks1.shape[1:] != masks2.shape[1:]:
        raise ValueError(f"{op}: masks1 and masks2 must be the same size, got H x W {tuple(masks1.shape[1:])} "
                         f"and {tuple(masks2.shape[1:])}")
    pixels = masks1.shape[1] * masks1.shape[2]
    a = masks1.reshape(masks1.shape[0], pixels).astype(xp.float64)
    b = masks2.reshape(masks2.shape[0], pixels).astype(xp.float64)
    inter = a @ b.T                                    # exact: integer counts below 2**53
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):   # 0/0 -> NaN for two empty objects (CuPy never warns)
        return inter / union


def _check_boxes(boxes, name, op):
    boxes = checks.array(boxes, name, op)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{op}: {name} must have shape (num_boxes, 4) holding (x1, y1, x2, y2), "
                         f"got {tuple(boxes.shape)}")
    if boxes.dtype.kind not in "iuf":
        raise TypeError(f"{op}: {name} must hold numbers, got dtype {boxes.dtype}")
    xp = backend.get_array_module(boxes)
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]) | xp.isnan(_float(boxes, xp)).any(1)
    if bool(bad.any()):
        k = int(xp.nonzero(bad)[0][0])
        raise ValueError(f"{op}: {name}[{k}] = {backend.to_numpy(boxes[k]).tolist()} is not an (x1, y1, x2, y2) box "
                         "with x1 <= x2 and y1 <= y2")
    return boxes


def box_area(boxes):
    """``(x2 - x1) (y2 - y1)`` of each ``(x1, y1, x2, y2)`` box of ``(N, 4)``: shape ``(N,)``.
    Integer boxes give int64 areas (a 200 x 200 box in uint8 would wrap around to 64; uint64
    boxes, which int64 may not hold, uint64 ones; as in PyTorch, a product past 2**63 wraps), float16
    boxes float32 ones (a 300 x 300 box's area is past float16's largest, as torchvision's), other
    float boxes keep their dtype."""
    boxes = _check_boxes(boxes, "boxes", "box_area")
    if boxes.dtype.kind in "iu" and boxes.dtype != np.uint64:
        boxes = boxes.astype(np.int64)
    elif boxes.dtype == np.float16:
        boxes = boxes.astype(np.float32)
    return _area(boxes)


def _area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2):
    """``(N, M)`` IoUs between boxes ``(N, 4)`` and ``(M, 4)``, each ``(x1, y1, x2, y2)``.

    The intersection of two boxes is the box from the larger top-left corner
    to the smaller bottom-right corner, empty (area 0) when those cross.
    """
    boxes1, boxes2 = _check_boxes(boxes1, "boxes1", "box_iou"), _check_boxes(boxes2, "boxes2", "box_iou")
    xp = backend.get_array_module(boxes1, boxes2)
    boxes1, boxes2 = _float(boxes1, xp), _float(boxes2, xp)
    area1, area2 = _area(boxes1), _area(boxes2)
    top_left = xp.maximum(boxes1[:, None, :2], boxes2[None, :, :2])        # (N, M, 2)
    bottom_right = xp.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = xp.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):   # 0/0 -> NaN for two empty objects (CuPy never warns)
        return inter / union

