"""Panoptic figures: stuff in its class colour, each thing in its own, outlined.

* ``panoptic_overlay(image, panoptic, palette)``: the picture ``minisegnet
  predict --task panoptic`` writes, also used by the figures below;
* ``plot_panoptic_curves(history, file)``: ``curves.png`` of a panoptic run
  (losses; PQ, SQ, RQ, PQ of things and of stuff, mean IU);
* ``plot_panoptic_predictions(images, truth, predictions, palette, file)``:
  ``predictions.png``, truth against prediction for a few held-out images;
* the docs' figures, drawn from a trained Panoptic-DeepLab (``figure_grouping``,
  ``figure_segmentation_types``; see ``PANOPTIC_FIGURES``).
"""
import numpy as np
from matplotlib.figure import Figure as _Figure
from matplotlib.patches import Patch as _Patch

from .. import checks
from ..backend import to_numpy
from .instances import instance_colors, match_to_truth, outlines
from .training import (_as_rgb, best_record, check_png_path, curves_figure, legend_patches, save_curves,
                       score_values)

__all__ = ["panoptic_overlay", "plot_panoptic_curves", "plot_panoptic_predictions"]


def _check_panoptic(rgb, panoptic, palette):
    p = to_numpy(panoptic)
    if p.ndim != 3 or p.shape[-1] != 2 or p.dtype.kind not in "iu":
        raise ValueError(f"panoptic must be an integer (H, W, 2) map of (category, instance id), "
                         f"got {p.dtype} {p.shape}")
    if p.shape[:2] != rgb.shape[:2]:
        raise ValueError(f"panoptic has size {p.shape[:2]} but the image is {rgb.shape[:2]}")
    category = p[..., 0]
    if category.size and category.max() >= len(palette):
        raise ValueError(f"panoptic holds category {int(category.max())} but the palette has {len(palette)} colours")
    return category, p[..., 1]


def panoptic_overlay(image, panoptic, palette, alpha=0.5, outline=(1.0, 1.0, 1.0)):
    """The image tinted by a panoptic map: stuff pixels by their class colour
    (``palette``, ``(C, 3)`` uint8), each thing instance by its own colour
    (``instance_colors``; an instance is a (category, id) pair, so a car 1 and a
    person 1 are two), instances outlined in ``outline`` (None: no outline);
    void pixels (category < 0) are left as they are.

    ``image``: ``(C, H, W)`` in [0, 1]; ``panoptic``: ``(H, W, 2)`` integer
    ``(category, instance id)``; ``alpha`` in [0, 1]. Returns an ``(H, W, 3)``
    float array in [0, 1].
    """
    alpha = checks.real(alpha, "alpha", "panoptic_overlay", minimum=0, maximum=1)
    rgb = _as_rgb(image, "panoptic_overlay")
    palette = np.asarray(palette, dtype=np.float64) / 255.0
    category, _ = _check_panoptic(rgb, panoptic, palette)
    return _tinted(rgb, category, _objects(to_numpy(panoptic)), palette, alpha, outline)


def _tinted(rgb, category, objects, palette, alpha, outline):
    """``panoptic_overlay`` of a map whose objects are numbered already (``objects`` ``(H, W)``,
    1..K, 0 for stuff): each object in colour ``instance_colors`` of its number."""
    thing = (objects > 0) & (category >= 0)
    colors = instance_colors(int(objects.max()) if objects.size and objects.max() > 0 else 0)
    tint = np.where(thing[..., None], colors[np.where(thing, objects, 0)], palette[np.maximum(category, 0)])
    out = np.where((category >= 0)[..., None], (1 - alpha) * rgb + alpha * tint, rgb)
    if outline is not None:
        out = np.where(outlines(np.where(thing, objects, 0))[..., None], np.asarray(outline, dtype=np.float64), out)
    return out


def plot_panoptic_curves(history, file):
    """``curves.png`` of a panoptic run from ``metrics.json``'s per-epoch records:
    the losses on the left; on the right the held-out PQ, SQ and RQ, PQ over
    things and over stuff, and the semantic branch's mean IU. ``file``: a path or
    an open binary file."""
    check_png_path(file, "plot_panoptic_curves")
    fig, ax_score, epochs = curves_figure(history, "CE + centre MSE + offset L1 (weighted)", "plot_panoptic_curves")
    for key, label, style in (("pq", "PQ", dict(lw=2.5)), ("sq", "SQ", dict(lw=1.2)), ("rq", "RQ", dict(lw=1.2)),
                              ("pq_things", "PQ things", dict(lw=1.2, ls="--")),
                              ("pq_stuff", "PQ stuff", dict(lw=1.2, ls="--")),
                              ("mean_iou", "mean IU (semantic)", dict(lw=1.2, ls=":"))):
        if key in history[0]:
            ax_score.plot(epochs, score_values(history, key), marker="o", ms=3, label=label, **style)
    best = best_record(history, "pq")
    if best is not None:
        ax_score.annotate(f"best PQ {best['pq']:.3f}", (best["epoch"], best["pq"]), xytext=(0, -28),
                          textcoords="offset points", fontsize=8,
                          ha="right" if best["epoch"] == epochs[-1] and len(epochs) > 1 else "center",
                          arrowprops=dict(arrowstyle="->", lw=0.8))
    ax_score.set(xlabel="epoch", ylabel="score on the held-out split", title="Held-out panoptic quality",
                 ylim=(0, 1.02))
    ax_score.legend(loc="best", fontsize=8, framealpha=0.8)
    return save_curves(fig, epochs, file)


def _objects(panoptic):
    """``(H, W)`` ids numbering each (category, id) pair of a panoptic map's objects 1..K (ids
    start per category, so a car 1 and a person 1 are two objects), 0 elsewhere."""
    category, ids = panoptic[..., 0].astype(np.int64), panoptic[..., 1].astype(np.int64)
    thing = (ids > 0) & (category >= 0)
    pairs = np.stack([category[thing], ids[thing]])
    objects = np.zeros(category.shape, np.int64)
    if pairs.size:
        objects[thing] = np.unique(pairs, axis=1, return_inverse=True)[1].reshape(-1) + 1
    return objects


def _matched_objects(truth, found):
    """Truth and prediction with their objects renumbered for drawing: the truth's (category,
    id) pairs 1..K, a predicted object that PQ matches with a true one (same category, IoU >
    0.5 with void pixels left out: ``match_to_truth``) that one's number, so its colour; and
    the counts ``(objects, found, matched)``."""
    true_objects, found_objects = _objects(truth), _objects(found)
    relabelled, matched = match_to_truth(true_objects, found_objects, truth[..., 0], found[..., 0],
                                         void=truth[..., 0] < 0)
    drawn = lambda p, objects: np.stack([p[..., 0], objects], axis=-1)
    return (drawn(truth, true_objects), drawn(found, relabelled), int(true_objects.max()),
            int(found_objects.max()), matched)


def plot_panoptic_predictions(images, truth, predictions, palette, file, class_names=None, scores=None):
    """One row per image: image | truth | prediction, each a ``panoptic_overlay``; a predicted
    object that PQ matches with a true one is drawn in that one's colour (``_matched_objects``).

    ``images`` ``(N, C, H, W)``; ``truth`` and ``predictions`` ``(N, H, W, 2)``
    panoptic maps; ``palette`` ``(C, 3)`` uint8; ``scores``: optional list of a
    short text per image (e.g. its PQ) for the prediction's title.
    """
    check_png_path(file, "plot_panoptic_predictions")
    images, truth, predictions = (to_numpy(a) for a in (images, truth, predictions))
    n = len(images)
    if n == 0 or len(truth) != n or len(predictions) != n:
        raise ValueError(f"plot_panoptic_predictions: need the same positive number of images, truths and "
                         f"predictions, got {len(images)}, {len(truth)}, {len(predictions)}")
    fig = _Figure(figsize=(7.5, 2.4 * n + 0.6), dpi=100)
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        rgb = _as_rgb(images[i], "plot_panoptic_predictions")
        colours = np.asarray(palette, dtype=np.float64) / 255.0
        for panoptic in (truth[i], predictions[i]):
            _check_panoptic(rgb, panoptic, colours)
        true_map, found_map, objects, found, matched = _matched_objects(truth[i], predictions[i])
        # two lines: one would run past a column this wide
        title = f"prediction: {found} objects,\n{matched} matched" + (f", {scores[i]}" if scores else "")
        # the maps' objects are numbered already (a matched prediction takes its truth's number)
        panels = ((rgb, "image"),
                  (_tinted(rgb, true_map[..., 0], true_map[..., 1], colours, 0.5, (1.0, 1.0, 1.0)),
                   f"truth: {objects} objects"),
                  (_tinted(rgb, found_map[..., 0], found_map[..., 1], colours, 0.5, (1.0, 1.0, 1.0)), title))
        for ax, (picture, text) in zip(axes[i], panels):
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(text, fontsize=9)
    handles = legend_patches(palette, class_names, "plot_panoptic_predictions")
    fig.legend(handles=handles + [_Patch(facecolor="white", edgecolor="#555555",
                                         label="things: one colour per object, outlined")],
               loc="lower center", ncol=min(len(handles) + 1, 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.6 / (2.4 * n + 0.6), 1, 1))
    fig.savefig(file, format="png")
    return file


# ---- the docs' figures, drawn from a trained model's stored outputs ------------------------------
# examples/panoptic_deeplab_shapes.py --figure-outputs writes this file: a trained Panoptic-DeepLab's
# outputs on a few held-out images (its class map, centre heatmap and offsets), with the images and
# their truth. The figures below run the library's own grouping on them, so regenerating a figure
# needs no training, and retraining regenerates the file.
FIGURE_OUTPUTS = "panoptic_outputs.npz"


def load_figure_outputs(path=None):
    """The stored outputs as a dict of NumPy arrays: ``images`` (float in [0, 1]),
    ``classes`` (the predicted class map), ``semantic`` (one-hot logits of it: its
    arg-max is the class map, which is all the grouping reads), ``center``,
    ``offset``, ``masks``, ``instances``, ``palette``, ``thing_classes``,
    ``stuff_classes``, ``class_names``, ``indices`` (held-out image numbers), ``seed``."""
    import os

    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), FIGURE_OUTPUTS)
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    data["images"] = data["images"].astype(np.float32) / 255.0
    data["classes"] = data["classes"].astype(np.int64)
    data["semantic"] = np.eye(len(data["palette"]), dtype=np.float32)[data["classes"]].transpose(0, 3, 1, 2)
    for key in ("center", "offset"):
        data[key] = data[key].astype(np.float32)
    for key in ("masks", "instances"):
        data[key] = data[key].astype(np.int64)
    return data


def _inference(data):
    from ..panoptic import panoptic_inference

    outputs = {k: data[k] for k in ("semantic", "center", "offset")}
    return panoptic_inference(outputs, data["thing_classes"].tolist(), data["stuff_classes"].tolist())


def touching_objects(data, index):
    """In stored image ``index``: the number of predicted objects that share one connected
    region of their own class in the predicted class map with another object, each of
    them matching a true object (IoU > 0.5). More than 0: an image where the class map
    alone merges objects that the grouping keeps apart."""
    from ..instances import instances_from_semantic
    from ..metrics import mask_iou

    pan = _inference(data)[index]
    category, ids = pan[..., 0], pan[..., 1]
    classes = data["classes"][index]
    blobs = instances_from_semantic(classes, data["thing_classes"].tolist())
    truth = data["instances"][index]
    found = 0
    for blob in np.unique(blobs[blobs > 0]):
        inside = (blobs == blob) & (ids > 0) & (category == classes)
        objects = np.unique(ids[inside])
        if len(objects) < 2:
            continue
        true_ids = np.unique(truth[truth > 0])
        iou = mask_iou(ids[None] == objects[:, None, None], truth[None] == true_ids[:, None, None])
        if len(true_ids) and (iou.max(axis=1) > 0.5).all():
            found += len(objects)
    return found


def _figure_index(data):
    return next((i for i in range(len(data["images"])) if touching_objects(data, i) > 0), 0)


def figure_segmentation_types(data=None, index=None):
    """One held-out scene, three answers from one trained Panoptic-DeepLab:
    semantic (its class map), instance (its objects, stuff left out), panoptic (both).
    ``index=None``: the first stored image where touching objects of one class
    form one blob of the class map (``touching_objects``), the case that tells
    the three apart."""
    data = load_figure_outputs() if data is None else data
    index = _figure_index(data) if index is None else index
    palette = data["palette"]
    image = data["images"][index]
    pan = _inference(data)[index]
    category, ids = pan[..., 0], pan[..., 1]
    semantic = data["classes"][index]
    things_only = np.stack([np.where(ids > 0, category, -1), ids], axis=-1)
    colors = palette.astype(np.float64) / 255.0
    blob = "\n(touching objects of one class are one blob)" if touching_objects(data, index) else ""
    panels = [(_as_rgb(image), "image"),
              (colors[semantic], "semantic: a class per pixel" + blob),
              (panoptic_overlay(image, things_only, palette, alpha=0.85), "instance: an id per object\n"
                                                                           "(stuff left unlabelled)"),
              (panoptic_overlay(image, pan, palette, alpha=0.85), "panoptic: stuff by class,\n"
                                                                  "things by id (a colour each)")]
    fig = _Figure(figsize=(12, 2.9), dpi=100)
    axes = fig.subplots(1, 4)
    for ax, (picture, title) in zip(axes, panels):
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = legend_patches(palette, [str(n) for n in data["class_names"]], "figure_segmentation_types")
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(f"One trained Panoptic-DeepLab, three kinds of answer (held-out image {int(data['indices'][index])})",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


def figure_grouping(data=None, index=None, step=2):
    """Panoptic-DeepLab's grouping on one held-out image: (a) the predicted centre
    heatmap and its peaks, (b) the predicted offsets of thing pixels (every
    ``step``-th pixel), (c) where each thing pixel points (pixel + offset),
    coloured by the centre it joins, (d) the panoptic result. ``index=None``:
    the image ``figure_segmentation_types`` shows."""
    from ..panoptic import NMS_KERNEL, THRESHOLD, find_centers

    data = load_figure_outputs() if data is None else data
    index = _figure_index(data) if index is None else index
    image, heat, off = data["images"][index], data["center"][index, 0], data["offset"][index]
    pan = _inference(data)[index]
    coords, valid = find_centers(data["center"][index:index + 1], THRESHOLD, NMS_KERNEL)
    peaks = coords[0][valid[0]]
    ids = pan[..., 1]
    colors = instance_colors(max(int(ids.max()), len(peaks)))
    h, w = ids.shape
    fig = _Figure(figsize=(13, 3.3), dpi=100)
    axes = fig.subplots(1, 4)
    shown = axes[0].imshow(heat, cmap="magma", vmin=0, vmax=max(1.0, float(heat.max())), interpolation="nearest")
    axes[0].plot(peaks[:, 1], peaks[:, 0], "c+", ms=10, mew=2)
    axes[0].set_title(f"(a) centre heatmap; + = {len(peaks)} peaks\n(= {NMS_KERNEL}x{NMS_KERNEL} max-pool, "
                      f"> {THRESHOLD})", fontsize=9)
    fig.colorbar(shown, ax=axes[0], fraction=0.03, pad=0.02)
    yy, xx = np.mgrid[0:h:step, 0:w:step]
    sub = ids[::step, ::step] > 0
    axes[1].imshow(_as_rgb(image) * 0.6 + 0.4, interpolation="nearest")
    axes[1].quiver(xx[sub], yy[sub], off[1, ::step, ::step][sub], off[0, ::step, ::step][sub],
                   color=colors[ids[::step, ::step][sub]], angles="xy", scale_units="xy", scale=1, width=0.006)
    axes[1].set_title("(b) offsets of thing pixels\n(arrows: pixel -> pixel + offset)", fontsize=9)
    thing = ids > 0
    py, px = np.nonzero(thing)
    axes[2].imshow(_as_rgb(image) * 0.3 + 0.7, interpolation="nearest")
    axes[2].scatter(px + off[1][thing], py + off[0][thing], s=4, c=colors[ids[thing]], alpha=0.6, linewidths=0)
    axes[2].plot(peaks[:, 1], peaks[:, 0], "k+", ms=10, mew=2)
    axes[2].set_title("(c) votes: pixel + offset, coloured by\nthe nearest peak they join", fontsize=9)
    axes[3].imshow(panoptic_overlay(image, pan, data["palette"], alpha=0.85), interpolation="nearest")
    axes[3].set_title("(d) panoptic result: classes by\nmajority vote, stuff from the class map", fontsize=9)
    for ax in axes:
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


PANOPTIC_FIGURES = {"segmentation_types.png": figure_segmentation_types, "panoptic_grouping.png": figure_grouping}


def save_panoptic_figures(directory):
    """Write every figure in ``PANOPTIC_FIGURES`` into ``directory``; returns the paths."""
    import os

    os.makedirs(directory, exist_ok=True)
    data = load_figure_outputs()
    written = []
    for name, draw in PANOPTIC_FIGURES.items():
        path = os.path.join(directory, name)
        draw(data).savefig(path, dpi=100)
        written.append(path)
    return written
