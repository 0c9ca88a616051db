"""Training figures, shared with the CLI: loss and score curves, prediction overlays.

Images, masks and predictions may be NumPy or CuPy arrays or Tensors: they are
copied to the host once, where each function receives them (``backend.to_numpy``).
"""
import numpy as np
from matplotlib.figure import Figure as _Figure
from matplotlib.patches import Patch as _Patch

from .. import checks
from ..backend import to_numpy


def check_png_path(path, op):
    """``path`` must name a ``.png`` file in a folder that exists (or be an open file): checked
    before any drawing (a missing folder was a bare ``No such file or directory`` after the
    figure was drawn)."""
    import os

    if hasattr(path, "write"):                 # an open file (the trainer writes through a temporary one)
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{op}: path must be a file path (str or os.PathLike), got {type(path).__name__}")
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"{op}: path must name a .png file, got {path!r}")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{op}: the folder {folder!r} (for {path!r}) does not exist")
    return path


def _as_rgb(image, op="image"):
    """A (C, H, W) float image in [0, 1] (C = 1 or 3) as an (H, W, 3) float array for display
    (values a little outside [0, 1] are clipped, as matplotlib does); ``op`` names the caller."""
    image = to_numpy(image)
    if image.dtype.kind != "f":
        raise TypeError(f"{op}: image must be floating point in [0, 1], got dtype {image.dtype} (bytes 0..255: "
                        f"image.astype(np.float32) / 255)")
    image = image.astype(np.float64)
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"{op}: image must be (C, H, W) with C = 1 or 3, got shape {image.shape}")
    if image.shape[0] == 1:
        image = np.repeat(image, 3, axis=0)
    return np.clip(image.transpose(1, 2, 0), 0.0, 1.0)


def _colorize(mask, palette, op="colorize"):
    """Each pixel's colour, ``palette[mask] / 255``: ``palette`` (K, 3) integer colours 0..255,
    ``mask`` integer labels 0..K-1 (nothing wrapped or clipped: a bad value is an error)."""
    palette = np.asarray(palette)
    if palette.dtype.kind not in "iu":
        raise TypeError(f"{op}: palette must hold integer colours 0..255 (uint8), got dtype {palette.dtype}")
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"{op}: palette must be (num_classes, 3) RGB colours, got shape {palette.shape}")
    if palette.size and (palette.min() < 0 or palette.max() > 255):
        raise ValueError(f"{op}: palette colours must lie in 0..255, got {int(palette.min())}..{int(palette.max())}")
    mask = to_numpy(mask)
    if mask.dtype.kind not in "iu":
        raise TypeError(f"{op}: mask must hold integer class labels, got dtype {mask.dtype} (logits? take "
                        f"argmax over the class axis first)")
    if mask.size and (mask.min() < 0 or mask.max() >= len(palette)):
        raise ValueError(f"{op}: mask holds labels {int(mask.min())}..{int(mask.max())}, but the palette has "
                         f"{len(palette)} colours (labels 0..{len(palette) - 1})")
    return palette.astype(np.float64)[mask] / 255.0


def overlay(image, mask, palette, alpha=0.5, background=None):
    """The image with each pixel tinted by its class colour: ``(1 - alpha) * image + alpha * colour``.

    ``image`` is ``(C, H, W)`` in ``[0, 1]``, ``mask`` ``(H, W)`` class indices,
    ``palette`` ``(num_classes, 3)`` integer colours 0..255. Pixels of class ``background``
    (e.g. 0) are left untinted. Returns an ``(H, W, 3)`` float array in ``[0, 1]``.
    """
    alpha = checks.real(alpha, "alpha", "overlay", minimum=0, maximum=1)
    rgb = _as_rgb(image, "overlay")
    mask = to_numpy(mask)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"overlay: mask has shape {mask.shape} but the image is {rgb.shape[:2]}")
    out = (1 - alpha) * rgb + alpha * _colorize(mask, palette, "overlay")
    if background is not None:
        out = np.where((mask == background)[..., None], rgb, out)
    return out


def curves_figure(history, loss_name, op):
    """``(figure, score axes, epochs)`` of a task's ``curves.png``: the losses of
    ``metrics.json``'s records (train and held-out, log scale) on the left, named
    ``loss_name``; the right-hand axes are the task's to fill, then ``save_curves``."""
    if not isinstance(history, (list, tuple)) or not all(isinstance(h, dict) for h in history):
        raise TypeError(f"{op}: history must be a list of per-epoch dicts (metrics.json's records), "
                        f"got {type(history).__name__}")
    if not history:
        raise ValueError(f"{op}: history is empty: nothing to plot")
    epochs = [h["epoch"] for h in history]
    fig = _Figure(figsize=(10, 4), dpi=100)
    ax_loss, ax_score = fig.subplots(1, 2)
    for key, label in (("train_loss", "train"), ("val_loss", "held-out")):
        if key in history[0]:
            ax_loss.plot(epochs, [h[key] for h in history], marker="o", ms=3, label=label)
    ax_loss.set(xlabel="epoch", ylabel=loss_name, title="Loss")
    if all((h.get("train_loss") or 1) > 0 for h in history):
        ax_loss.set_yscale("log")
    ax_loss.legend()
    return fig, ax_score, epochs


def score_values(history, key):
    """``key``'s score per epoch record, an undefined one (None: the trainer's record of a
    score that is not a number) as NaN, which the plotted line leaves as a gap."""
    return [np.nan if h.get(key) is None else h[key] for h in history]


def best_record(history, key):
    """The first record with the highest ``key`` score, undefined scores (None or NaN) left
    out; None when no record has one."""
    scored = [h for h in history if h.get(key) is not None and h[key] == h[key]]
    return max(scored, key=lambda h: h[key]) if scored else None


def legend_patches(palette, class_names, op):
    """One legend patch per colour of ``palette``, named by ``class_names`` (one name per colour;
    None: "class 0", "class 1", ...)."""
    names = [f"class {c}" for c in range(len(palette))] if class_names is None else list(class_names)
    if len(names) != len(palette):           # zip would drop the colours past the names
        raise ValueError(f"{op}: class_names has {len(names)} names for the palette's {len(palette)} colours")
    return [_Patch(facecolor=np.asarray(c) / 255.0, edgecolor="#555555", label=name)
            for c, name in zip(palette, names)]


def save_curves(fig, epochs, path):
    """Grid lines, a tick per epoch (up to 14 epochs), and the figure saved to ``path``."""
    for ax in fig.axes:
        ax.grid(alpha=0.3)
        if len(epochs) < 15:
            ax.set_xticks(epochs)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_curves(history, path):
    """Training curves from ``metrics.json``'s per-epoch records: losses on the left,
    the FCN scores (pixel acc., mean acc., mean IU, f.w. IU) on the right. Saves to ``path``."""
    check_png_path(path, "plot_curves")
    fig, ax_score, epochs = curves_figure(history, "cross-entropy loss", "plot_curves")
    for key, label in (("pixel_acc", "pixel accuracy"), ("mean_acc", "mean accuracy"),
                       ("mean_iou", "mean IU"), ("fw_iou", "f.w. IU")):
        if key in history[0]:
            ax_score.plot(epochs, score_values(history, key), marker="o", ms=3, label=label,
                          lw=2.5 if key == "mean_iou" else 1.2)
    best = best_record(history, "mean_iou")
    if best is not None:
        ax_score.annotate(f"best mean IU {best['mean_iou']:.3f}", (best["epoch"], best["mean_iou"]),
                          xytext=(0, -28), textcoords="offset points", fontsize=8,
                          ha="right" if best["epoch"] == epochs[-1] and len(epochs) > 1 else "center",
                          arrowprops=dict(arrowstyle="->", lw=0.8))
    ax_score.set(xlabel="epoch", ylabel="score on the held-out split", title="Held-out scores (FCN paper)",
                 ylim=(0, 1.02))
    ax_score.legend(loc="best", fontsize=8, framealpha=0.8)
    return save_curves(fig, epochs, path)


VOID_COLOUR = (224, 224, 192)       # PASCAL VOC's colour for its "void" (unlabelled) pixels


def plot_predictions(images, masks, preds, palette, path, class_names=None, ignore_index=None):
    """One row per sample: image | truth | prediction (class colours), with a colour legend.

    ``images`` ``(N, C, H, W)`` in ``[0, 1]``; ``masks`` and ``preds`` ``(N, H, W)``
    class indices; ``palette`` ``(num_classes, 3)`` uint8. Saves to ``path``. Each
    prediction's title gives its pixel accuracy. Truth pixels labelled ``ignore_index``
    (a dataset's "void") are drawn in PASCAL VOC's void colour and left out of that
    accuracy, as the scores leave them out.
    """
    check_png_path(path, "plot_predictions")
    images, masks, preds = (to_numpy(a) for a in (images, masks, preds))
    n = len(images)
    if n == 0 or len(masks) != n or len(preds) != n:
        raise ValueError(f"need the same positive number of images, masks and predictions, "
                         f"got {len(images)}, {len(masks)}, {len(preds)}")
    if ignore_index is not None and not checks.is_int(ignore_index):
        raise TypeError(f"plot_predictions: ignore_index must be an int or None, got {ignore_index!r}")
    fig = _Figure(figsize=(7.5, 2.4 * n + 0.6), dpi=100)
    axes = fig.subplots(n, 3, squeeze=False)
    any_void = False
    for i in range(n):
        rgb = _as_rgb(images[i], "plot_predictions")
        for name, labels in (("masks", masks), ("preds", preds)):
            if labels[i].shape != rgb.shape[:2]:
                raise ValueError(f"plot_predictions: {name}[{i}] has shape {labels[i].shape} but images[{i}] "
                                 f"is {rgb.shape[:2]}")
        void = masks[i] == ignore_index if ignore_index is not None else np.zeros(masks[i].shape, bool)
        any_void |= bool(void.any())
        truth = _colorize(np.where(void, 0, masks[i]), palette)
        truth[void] = np.asarray(VOID_COLOUR) / 255.0
        labelled = int((~void).sum())
        accuracy = f"{100 * float((masks[i] == preds[i])[~void].mean()):.1f}% px" if labelled else "no labelled px"
        panels = ((rgb, "image"), (truth, "truth"), (_colorize(preds[i], palette), f"prediction ({accuracy})"))
        for ax, (picture, title) in zip(axes[i], panels):
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0 or title.startswith("prediction"):
                ax.set_title(title, fontsize=9)
    handles = legend_patches(palette, class_names, "plot_predictions")
    if any_void:
        handles.append(_Patch(facecolor=np.asarray(VOID_COLOUR) / 255.0, edgecolor="#555555", label="void"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.6 / (2.4 * n + 0.6), 1, 1))
    fig.savefig(path)
    return path


def save_overlay(image, mask, palette, path, alpha=0.5, background=None):
    """Write ``overlay(image, mask, palette)`` as a PNG at the image's own resolution."""
    from PIL import Image

    check_png_path(path, "save_overlay")
    rgb = overlay(image, mask, palette, alpha, background)
    Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).save(path)
    return path
