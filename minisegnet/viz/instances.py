"""Instance figures: one colour per object with outlines, and the U-Net weight map.

* ``instance_colors(num)`` and ``instance_overlay(image, instances)``: the
  picture ``minisegnet predict`` writes for an instance model;
* ``plot_instance_curves`` and ``plot_instance_predictions``: the instance
  task's ``curves.png`` and ``predictions.png`` (a found object matched to a
  true one, ``match_to_truth``, drawn in that object's colour);
* ``figure_weight_map()``: the U-Net paper's figure 3 redrawn on ``Cells``:
  image, truth with touching objects, the class map, the weight map;
* ``save_instance_figures(directory)``: the docs' figures of this module.
"""
import numpy as np
from matplotlib.figure import Figure as _Figure

from .. import checks
from ..backend import to_numpy
from .training import _as_rgb, best_record, check_png_path, curves_figure, save_curves, score_values

__all__ = ["instance_colors", "id_colors", "instance_overlay", "outlines", "save_instance_overlay",
           "plot_instance_curves", "plot_instance_predictions", "match_to_truth", "figure_weight_map",
           "INSTANCE_FIGURES", "save_instance_figures"]


def instance_colors(num):
    """``(num + 1, 3)`` float colours in [0, 1]: black for id 0, then hues a golden
    angle apart, so neighbouring ids get clearly different colours."""
    return id_colors(np.arange(num + 1))


def id_colors(ids):
    """The colour of each id of ``ids`` (any shape) by ``instance_colors``' rule, computed per id:
    a map holding id 2**40 needs no table that long."""
    from matplotlib.colors import hsv_to_rgb

    k = np.asarray(to_numpy(ids)).astype(np.float64)
    hsv = np.stack([(k * 0.6180339887) % 1.0, np.where(k % 2, 0.75, 0.55), np.where(k % 3, 0.95, 0.8)], axis=-1)
    return np.where((k > 0)[..., None], hsv_to_rgb(hsv), 0.0)


def outlines(instances):
    """Boolean ``(H, W)``: object pixels with a 4-neighbour of another id (or of none)."""
    ids = to_numpy(instances)
    h, w = ids.shape
    if ids.size == 0:                             # (np.pad cannot extend an empty axis)
        return np.zeros((h, w), dtype=bool)
    padded = np.pad(ids, 1, mode="edge")
    edge = np.zeros((h, w), dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dy:dy + h, dx:dx + w] != ids
    return edge & (ids > 0)


def _check_instances(image_rgb, instances):
    ids = to_numpy(instances)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"instances must be an integer id map, got dtype {ids.dtype}")
    if ids.shape != image_rgb.shape[:2]:
        raise ValueError(f"instances has shape {ids.shape} but the image is {image_rgb.shape[:2]}")
    if ids.size and ids.min() < 0:
        raise ValueError(f"instances holds the negative id {int(ids.min())}; ids are >= 0 (0 = no object)")
    return ids


def instance_overlay(image, instances, alpha=0.5, outline=(1.0, 1.0, 1.0)):
    """The image with each object tinted its own colour and outlined.

    ``image``: ``(C, H, W)`` in [0, 1]; ``instances``: integer ``(H, W)`` ids,
    0 = no object (left untinted). ``outline``: RGB of the outline pixels, or
    None for none. Returns an ``(H, W, 3)`` float array in [0, 1].
    """
    alpha = checks.real(alpha, "alpha", "instance_overlay", minimum=0, maximum=1)
    rgb = _as_rgb(image, "instance_overlay")
    ids = _check_instances(rgb, instances)
    present, where = np.unique(ids, return_inverse=True)     # colours of the ids present only
    colors = id_colors(present)[where.reshape(ids.shape)]
    out = np.where((ids > 0)[..., None], (1 - alpha) * rgb + alpha * colors, rgb)
    if outline is not None:
        out = np.where(outlines(ids)[..., None], np.asarray(outline, dtype=np.float64), out)
    return out


def save_instance_overlay(image, instances, path, alpha=0.5, scale=1):
    """Write ``instance_overlay(image, instances)`` as a PNG (each pixel ``scale`` x ``scale``)."""
    from PIL import Image

    check_png_path(path, "save_instance_overlay")
    rgb = instance_overlay(image, instances, alpha)
    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def plot_instance_curves(history, path):
    """Training curves of an instance model from ``metrics.json``'s records: losses on
    the left; held-out PQ, SQ, RQ of the things and mean IU on the right."""
    check_png_path(path, "plot_instance_curves")
    fig, ax_score, epochs = curves_figure(history, "weighted cross-entropy", "plot_instance_curves")
    for key, label, width in (("pq_things", "PQ", 2.5), ("sq_things", "SQ", 1.2), ("rq_things", "RQ", 1.2),
                              ("mean_iou", "mean IU (classes)", 1.2)):
        if any(h.get(key) is not None for h in history):
            ax_score.plot(epochs, score_values(history, key), marker="o", ms=3, label=label,
                          lw=width, ls="--" if key == "mean_iou" else "-")
    best = best_record(history, "pq_things")
    if best is not None:
        ax_score.annotate(f"best PQ {best['pq_things']:.3f}", (best["epoch"], best["pq_things"]),
                          xytext=(0, -28), textcoords="offset points", fontsize=8, ha="center",
                          arrowprops=dict(arrowstyle="->", lw=0.8))
    ax_score.set(xlabel="epoch", ylabel="held-out score", title="Objects found (PQ = SQ x RQ)", ylim=(0, 1.02))
    if ax_score.get_legend_handles_labels()[0]:               # no score defined yet: no lines, no legend
        ax_score.legend(loc="lower right", fontsize=8, framealpha=0.8)
    return save_curves(fig, epochs, path)


def match_to_truth(truth, found, truth_classes=None, found_classes=None, void=None):
    """``(relabelled, matched)``: the found objects of one image renumbered so that each one
    matching a true object (IoU > 0.5, PQ's rule: at most one match each) takes that
    object's id, and the others ids above every true id (in the order of their own).

    ``truth`` and ``found``: ``(H, W)`` object ids, 0 = no object. With
    ``truth_classes`` and ``found_classes`` (``(H, W)`` class maps) a pair
    matches only if its classes agree, as in PQ; ``void`` (``(H, W)`` bool):
    pixels whose truth is unknown, left out of the found objects' areas (PQ's
    union). Colours come from ids
    (``instance_colors``), so a matched object is drawn in its true object's
    colour. ``matched``: how many found objects matched.
    """
    truth, found = (np.asarray(to_numpy(a)).astype(np.int64) for a in (truth, found))
    if truth.shape != found.shape or truth.ndim != 2:
        raise ValueError(f"match_to_truth: truth and found must be (H, W) maps of one shape, got "
                         f"{truth.shape} and {found.shape}")
    ids = np.unique(found[found > 0])
    counted = found > 0 if void is None else (found > 0) & ~np.asarray(to_numpy(void), dtype=bool)
    area = np.bincount(np.searchsorted(ids, found[counted]), minlength=len(ids))
    true_ids, true_area = np.unique(truth[truth > 0], return_counts=True)
    both = (found > 0) & (truth > 0)
    if truth_classes is not None:           # a pair of two classes never matches
        both &= np.asarray(to_numpy(truth_classes)) == np.asarray(to_numpy(found_classes))
    pairs, inter = np.unique(np.stack([found[both], truth[both]]), axis=1, return_counts=True)
    new_id = {}
    for (f, t), n in zip(pairs.T, inter):
        union = area[np.searchsorted(ids, f)] + true_area[np.searchsorted(true_ids, t)] - n
        if n / union > 0.5:
            new_id[int(f)] = int(t)
    matched = len(new_id)
    next_id = int(truth.max(initial=0)) + 1
    for f in ids:
        if int(f) not in new_id:
            new_id[int(f)], next_id = next_id, next_id + 1
    table = np.zeros(int(found.max(initial=0)) + 1, dtype=np.int64)
    for f, t in new_id.items():
        table[f] = t
    return table[found], matched


def plot_instance_predictions(images, truth, predictions, path, classes=None, void=None):
    """One row per image: image | true objects | found objects, one colour per object,
    with the object counts. A found object that matches a true one (IoU > 0.5,
    ``match_to_truth``) takes its colour; the others take colours no true object
    has. ``images`` ``(N, C, H, W)``; ``truth`` and ``predictions`` ``(N, H, W)``
    object ids; optional ``classes`` = (true, found) ``(N, H, W)`` class maps (a match
    needs one class) and ``void`` ``(N, H, W)`` pixels of unknown truth (out of a found
    object's area), as PQ counts. Saves to ``path``."""
    check_png_path(path, "plot_instance_predictions")
    images, truth, predictions = (to_numpy(a) for a in (images, truth, predictions))
    n = len(images)
    if n == 0 or len(truth) != n or len(predictions) != n:
        raise ValueError(f"plot_instance_predictions: need the same positive number of images, truths and "
                         f"predictions, got {len(images)}, {len(truth)}, {len(predictions)}")
    fig = _Figure(figsize=(7.5, 2.4 * n + 0.3), dpi=100)
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        true_count = len(np.unique(truth[i][truth[i] > 0]))
        found = len(np.unique(predictions[i][predictions[i] > 0]))
        per_image = {} if classes is None else dict(truth_classes=classes[0][i], found_classes=classes[1][i])
        if void is not None:
            per_image["void"] = void[i]
        relabelled, matched = match_to_truth(truth[i], predictions[i], **per_image)
        panels = ((_as_rgb(images[i]), "image"),
                  (instance_overlay(images[i], truth[i], alpha=0.6), f"truth: {true_count} objects"),
                  (instance_overlay(images[i], relabelled, alpha=0.6),
                   f"found: {found} objects, {matched} matched"))
        for ax, (picture, title) in zip(axes[i], panels):
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def figure_weight_map(size=128, index=1, seed=0):
    """The U-Net paper's figure 3 on a ``Cells`` image: (a) the image, (b) the truth,
    one colour per cell, (c) the class map, (d) the weight map ``w(x)`` (w0 = 10,
    sigma = 5 px).

    ``index=None`` picks, among the first 16 images, the one whose cells
    touch most (the largest total weight in the gaps): image 1 of seed 0."""
    from ..data import Cells
    from ..instances import unet_weight_map

    ds = Cells(16, size, seed=seed, return_instances=True)
    candidates = range(len(ds)) if index is None else [index]
    best = None
    for i in candidates:
        image, mask, ids = ds[i]
        w = unet_weight_map(mask, ids)
        gap = float((w - unet_weight_map(mask, ids, w0=0)).sum())
        if best is None or gap > best[0]:
            best = (gap, i, image, mask, ids, w)
    _, i, image, mask, ids, w = best
    fig = _Figure(figsize=(13, 3.6), dpi=100)
    axes = fig.subplots(1, 4)
    palette = np.asarray(ds.palette, dtype=np.float64) / 255.0
    panels = ((_as_rgb(image), "(a) image"),
              (instance_overlay(image, ids, alpha=0.7), f"(b) truth: {int(ids.max())} cells, one colour each"),
              (palette[mask], "(c) classes: background, cell, membrane"))
    for ax, (picture, title) in zip(axes, panels):
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    shown = axes[3].imshow(w, cmap="jet", interpolation="nearest")
    axes[3].set_title(f"(d) weight map w(x), max {w.max():.1f}", fontsize=9)
    fig.colorbar(shown, ax=axes[3], fraction=0.046, pad=0.04)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"The U-Net weight map (w0 = 10, sigma = 5 px) on Cells (seed {seed}, image {i}): "
                 "the narrow gaps between touching cells weigh most", fontsize=10)
    fig.tight_layout()
    return fig


INSTANCE_FIGURES = {"unet_weight_map.png": figure_weight_map}


def save_instance_figures(directory):
    """Write every figure in ``INSTANCE_FIGURES`` into ``directory``; returns the paths."""
    import os

    os.makedirs(directory, exist_ok=True)
    written = []
    for name, draw in INSTANCE_FIGURES.items():
        path = os.path.join(directory, name)
        draw().savefig(path, dpi=100)
        written.append(path)
    return written
