"""Figures of sampling at arbitrary points and of the deforming augmentations.

* ``figure_bilinear_weights()``: one point between four pixels and the four
  rectangles whose areas are the corners' weights;
* ``figure_padding_modes()``: an image zoomed out by ``grid_sample`` under
  ``zeros``, ``border`` and ``reflection``;
* ``figure_normalised_coordinates()``: where -1, 0 and +1 land in pixels for
  both ``align_corners`` values;
* ``figure_grid_gradient()``: the output and its derivative along a row, from
  autograd: piecewise constant for bilinear, zero for nearest;
* ``figure_elastic()``: the U-Net paper's deformation: control vectors, the
  per-pixel field, a deformed image and labels, bicubic against bilinear;
* ``plot_augment_preview(...)``: one image deformed several ways with the
  displacement field as arrows (``minisegnet augment-preview`` draws it);
* ``figure_elastic_few_images()``: the measured effect of elastic
  deformation on a small training set, redrawn from the numbers that
  ``examples/elastic_few_images.py`` recorded in ``docs/figures``.

Every number drawn comes from the library's own ops (``F.grid_sample``,
``F.affine_grid``, the transforms), so a figure cannot drift from the code.
``SAMPLING_FIGURES`` maps the docs' file names to the figure functions.
"""
import json
import os

import numpy as np
from matplotlib.figure import Figure as _Figure

from .. import checks
from ..data.toy import Cells, Roads, Shapes
from .training import _as_rgb, check_png_path, overlay

__all__ = ["figure_bilinear_weights", "figure_padding_modes", "figure_normalised_coordinates",
           "figure_grid_gradient", "figure_elastic", "plot_augment_preview", "figure_augment_preview",
           "figure_elastic_few_images", "SAMPLING_FIGURES", "save_sampling_figures", "RESULTS_FILE",
           "augment_preview_bytes"]

_CORNER_COLOURS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3")      # nw, ne, sw, se
RESULTS_FILE = "elastic_few_images.json"


def _ops():
    import minisegnet as msn
    from minisegnet import functional as F

    return msn, F


def _cells_sample(size=96, index=2):
    from ..data import Cells

    image, mask = Cells(num_samples=4, size=size, seed=0)[index]
    return image, mask


def _palette():
    from ..data import Cells

    return np.asarray(Cells.colors, dtype=np.uint8)


def figure_bilinear_weights():
    """A 2x2 patch of pixels, a point inside their cell, and each corner's weight as the area of the
    rectangle opposite it; the value ``F.grid_sample`` returns is the weighted sum."""
    msn, F = _ops()
    values = np.array([[2.0, 6.0], [4.0, 9.0]])
    a, b = 0.7, 0.35                                 # the point's offsets from the top-left centre
    # a 2x2 image, align_corners=True: pixel centres at -1 and +1, so x = -1 + 2a
    grid = msn.tensor(np.array([[[[-1 + 2 * a, -1 + 2 * b]]]]))
    out = F.grid_sample(msn.tensor(values[None, None]), grid, align_corners=True).item()
    weights = {(0, 0): (1 - a) * (1 - b), (0, 1): a * (1 - b), (1, 0): (1 - a) * b, (1, 1): a * b}
    fig = _Figure(figsize=(6.4, 5.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    from matplotlib.patches import Rectangle

    # rectangle opposite corner (r, c): from the point to the far corner
    for k, ((r, c), w) in enumerate(weights.items()):
        x0, x1 = sorted((a, 1 - c))
        y0, y1 = sorted((b, 1 - r))
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=_CORNER_COLOURS[k], alpha=0.28,
                               edgecolor=_CORNER_COLOURS[k]))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, f"{w:.3f}", ha="center", va="center", fontsize=11,
                color=_CORNER_COLOURS[k])
        ax.plot([c], [r], "s", ms=16, color=_CORNER_COLOURS[k])
        ax.text(c + (0.08 if c else -0.08), r + (0.1 if r else -0.1),
                f"I[y0+{r}, x0+{c}] = {values[r, c]:g}", ha="left" if c else "right", fontsize=10)
    ax.plot([a], [b], "o", ms=9, color="black")
    ax.text(a + 0.03, b - 0.04, f"point (a={a}, b={b})", fontsize=10)
    ax.plot([0, 1, 1, 0, 0], [0, 0, 1, 1, 0], color="#555555", lw=1)
    ax.set_title(f"weight of a corner = area of the rectangle opposite it\n"
                 f"out = sum of weight x value = {out:.4f} (F.grid_sample)", fontsize=11)
    ax.set_xlim(-0.9, 1.9)
    ax.set_ylim(1.35, -0.35)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


def figure_padding_modes():
    """A Cells image seen through a grid that covers 1.8 times its extent, for each padding mode
    (align_corners=False); the dashed square is the image itself."""
    msn, F = _ops()
    image, _ = _cells_sample()
    zoom = 1.8
    theta = msn.tensor(np.array([[[zoom, 0.0, 0.0], [0.0, zoom, 0.0]]], dtype=np.float32))
    grid = F.affine_grid(theta, (1,) + image.shape)
    fig = _Figure(figsize=(11, 3.3), dpi=100)
    panels = [("the image", image)] + [
        (f'padding_mode="{mode}"', F.grid_sample(msn.tensor(image[None]), grid, padding_mode=mode).numpy()[0])
        for mode in ("zeros", "border", "reflection")]
    h, w = image.shape[1:]
    for k, (title, picture) in enumerate(panels):
        ax = fig.add_subplot(1, 4, k + 1)
        ax.imshow(_as_rgb(picture), interpolation="nearest")
        if k:
            side = w / zoom                     # the image's extent inside the zoomed-out view
            lo = (w - side) / 2 - 0.5
            ax.plot([lo, lo + side, lo + side, lo, lo], [lo, lo, lo + side, lo + side, lo], "--", color="#ffcc00")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("outside the image: 0, the nearest edge pixel, or the mirror image", fontsize=11)
    fig.tight_layout()
    return fig


def figure_normalised_coordinates(width=4):
    """Pixels 0..W-1 as boxes and where normalised x = -1, -0.5, 0, 0.5, 1 land, for both
    ``align_corners`` values (the positions from ``sampling.unnormalize``)."""
    from matplotlib.patches import Rectangle

    from ..functional.sampling import unnormalize

    marks = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    fig = _Figure(figsize=(8, 3.4), dpi=100)
    for row, align in enumerate((False, True)):
        ax = fig.add_subplot(2, 1, row + 1)
        for c in range(width):
            ax.add_patch(Rectangle((c - 0.5, 0), 1, 1, facecolor="#9ecae1", edgecolor="#333333"))
            ax.plot([c], [0.5], "o", color="#2171b5", ms=5)
            ax.text(c, 0.15, str(c), ha="center", fontsize=9)
        pix, _ = unnormalize(marks, width, align)
        for x, p in zip(marks, pix):
            ax.plot([p, p], [1.0, 1.45], color="#de2d26", lw=1.5)
            ax.text(p, 1.55, f"{x:g}\n({p:g})", ha="center", va="bottom", fontsize=8, color="#de2d26")
        rule = ("x_pix = (x + 1) W/2 - 0.5: +-1 are the outer edges" if not align else
                "x_pix = (x + 1)/2 (W - 1): +-1 are the corner pixels' centres")
        ax.set_title(f"align_corners={align}:  {rule}", fontsize=10)
        ax.set_xlim(-1.0, width)
        ax.set_ylim(-0.1, 2.4)
        ax.axis("off")
    fig.tight_layout()
    return fig


def figure_grid_gradient():
    """Sweeping one point along a row [1, 4, 2, 5]: the sampled value (top) and its derivative with
    respect to the point's x (bottom, from ``backward``): a staircase for bilinear (constant within a
    cell, jumping at pixel centres), zero for nearest."""
    msn, F = _ops()
    row = np.array([1.0, 4.0, 2.0, 5.0])
    xs = np.linspace(-1.2, 1.2, 961)
    fig = _Figure(figsize=(8, 5), dpi=100)
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2, sharex=None)
    for mode, colour in (("bilinear", "#2171b5"), ("nearest", "#e6550d")):
        grid = msn.tensor(np.stack([xs, np.zeros_like(xs)], axis=-1)[None, None], requires_grad=True)
        out = F.grid_sample(msn.tensor(row[None, None, None]), grid, mode=mode)
        out.sum().backward()
        pix = (xs + 1) * len(row) / 2 - 0.5
        top.plot(pix, out.numpy().ravel(), color=colour, label=mode)
        bottom.plot(pix, grid.grad.numpy()[0, 0, :, 0], color=colour, label=mode)
    for ax in (top, bottom):
        for c in range(len(row)):
            ax.axvline(c, color="#bbbbbb", lw=0.8, zorder=0)
        ax.axvline(-0.5, color="#555555", lw=0.8, ls="--")
        ax.axvline(len(row) - 0.5, color="#555555", lw=0.8, ls="--")
        ax.legend(fontsize=9, loc="upper left")
    top.set_ylabel("out")
    top.set_title('row [1, 4, 2, 5], padding_mode="zeros"; grey: pixel centres, dashed: the image\'s edges',
                  fontsize=10)
    bottom.set_ylabel("d out / d x  (x normalised)")
    bottom.set_xlabel("x_pix")
    fig.tight_layout()
    return fig


def _line_grid_image(size, spacing=8):
    """A white image with dark lines every ``spacing`` pixels: deformations show as bent lines."""
    image = np.ones((1, size, size), np.float32)
    image[:, ::spacing, :] = 0.2
    image[:, :, ::spacing] = 0.2
    return image


def _quiver(ax, positions, step, colour="#ffcc00", scale=1.0):
    """Arrows from each output pixel to the input point it reads (every ``step`` pixels)."""
    h, w = positions.shape[:2]
    rows, cols = np.mgrid[0:h:step, 0:w:step]
    d = positions[::step, ::step] - np.stack([cols, rows], axis=-1)
    ax.quiver(cols, rows, d[..., 0], d[..., 1], color=colour, angles="xy", scale_units="xy", scale=scale,
              width=0.006)


def figure_elastic(seed=1, sigma=10.0):
    """The U-Net paper's elastic deformation on a 96x96 Cells image: the 3x3 control vectors, the
    per-pixel field (bicubic) as arrows, the deformed image and labels; and a grid of straight lines
    deformed by the same control vectors, interpolated bicubically and bilinearly."""
    from ..data import transforms as T

    image, mask = _cells_sample()
    size = image.shape[-1]
    rng = np.random.default_rng(seed)
    elastic = T.RandomElastic(sigma=sigma)
    positions = elastic.sample_positions((size, size), np.random.default_rng(seed))
    coarse = rng.normal(0.0, sigma, (2, 3, 3))          # the same draw, for the control-point arrows
    moved_image, moved_mask = T.warp(image, mask, positions)
    lines = _line_grid_image(size)
    rows, cols = np.mgrid[0:size, 0:size]
    # the bilinear field for comparison: the 3x3 vectors mixed linearly (a tent per control point)
    src = np.arange(size) * 2 / (size - 1)              # each pixel's position in control-grid units
    tent = np.clip(1 - np.abs(src[:, None] - np.arange(3)[None, :]), 0, None)
    linear_field = tent @ coarse @ tent.T
    bent_cubic, _ = T.warp(lines, mask, positions)
    bent_linear, _ = T.warp(lines, mask, np.stack([cols + linear_field[0], rows + linear_field[1]], axis=-1))
    fig = _Figure(figsize=(12, 6.4), dpi=100)
    axes = [fig.add_subplot(2, 3, k + 1) for k in range(6)]
    palette = _palette()
    axes[0].imshow(overlay(image, mask, palette, alpha=0.35, background=0))
    control = np.array([0, (size - 1) / 2, size - 1])
    cx, cy = np.meshgrid(control, control)
    axes[0].quiver(cx, cy, coarse[0], coarse[1], color="#ffcc00", angles="xy", scale_units="xy", scale=0.5,
                   width=0.012)
    axes[0].set_title(f"3x3 displacements ~ N(0, {sigma:g}^2) px\n(arrows drawn 2x long)", fontsize=10)
    axes[1].imshow(_as_rgb(image))
    _quiver(axes[1], positions, 8)
    axes[1].set_title("per-pixel field (bicubic):\neach output pixel reads its arrow's tip", fontsize=10)
    axes[2].imshow(overlay(moved_image, moved_mask, palette, alpha=0.35, background=0))
    axes[2].set_title("deformed image (bilinear) and\nlabels (nearest: still 3 classes)", fontsize=10)
    axes[3].imshow(_as_rgb(lines))
    axes[3].set_title("straight lines", fontsize=10)
    axes[4].imshow(_as_rgb(bent_cubic))
    axes[4].set_title("bent by the bicubic field:\nsmooth curves", fontsize=10)
    axes[5].imshow(_as_rgb(bent_linear))
    axes[5].set_title("bent by a bilinear field: kinks\nalong the middle row and column", fontsize=10)
    for ax in axes:
        ax.set_xlim(-0.5, size - 0.5)
        ax.set_ylim(size - 0.5, -0.5)
        ax.axis("off")
    fig.tight_layout()
    return fig


# What plot_augment_preview allocates per pixel of the image (measured with tracemalloc at 800 and
# 1600 pixels, where the fixed costs no longer count): drawing one generated scene peaks at the most
# of the toy datasets' draw_bytes (Roads' 220, its float64 layers); the figure's rendering at about 90
# (matplotlib turns each picture into float RGBA at full size before resampling it; 100 here, a
# margin); each panel keeps its image (4 bytes per channel), its int64 mask (8) and its float64 RGB
# overlay (24), and a deformation's panel also its float64 sampling positions (16).
_SCENE_BYTES = max(dataset.draw_bytes for dataset in (Shapes, Roads, Cells))
_RENDER_BYTES, _PANEL_BYTES, _POSITIONS_BYTES = 100, 8 + 24, 16


def augment_preview_bytes(height, width, channels, panels, deformations=0):
    """About how many bytes ``plot_augment_preview`` (and drawing its generated image) takes at
    its peak for ``panels`` panels (the original included), ``deformations`` of them drawn
    through sampling positions (elastic, affine), of ``channels``-channel images of
    ``height x width``: at most about a fifth above what tracemalloc measures, never below."""
    per_pixel = max(_SCENE_BYTES, _RENDER_BYTES + panels * (4 * channels + _PANEL_BYTES)
                    + deformations * _POSITIONS_BYTES)
    return int(height) * int(width) * per_pixel


def plot_augment_preview(image, mask, transforms, rng, palette=None, path=None, columns=4, step=None):
    """One image and several random draws of each transform: the transformed image with its labels,
    and, for a deformation, arrows from output pixels to the input points they read.

    ``transforms``: ``(name, transform)`` pairs; a transform with ``sample_positions`` (the
    deformations) is drawn through it, others are applied as they are. Returns the figure;
    saves it when ``path`` is given.
    """
    from ..data import transforms as T

    if path is not None:
        check_png_path(path, "plot_augment_preview")
    columns = checks.positive_int(columns, "columns", "plot_augment_preview")
    if not isinstance(transforms, (list, tuple)) or not all(
            isinstance(t, (list, tuple)) and len(t) == 2 and isinstance(t[0], str) for t in transforms):
        raise TypeError(f"plot_augment_preview: transforms must be (name, transform) pairs, e.g. "
                        f"[('flip', RandomFlip())], got {checks.describe(transforms)}")

    draws = [("original", image, mask, None)]
    for name, transform in transforms:
        if hasattr(transform, "sample_positions"):
            positions = transform.sample_positions(image.shape[-2:], rng)
            out_image, out_mask = T.warp(image, mask, positions, transform.padding_mode)
        else:
            positions = None
            out_image, out_mask = transform(image, mask, rng)
        draws.append((name, out_image, out_mask, positions))
    n = len(draws)
    cols = min(columns, n)
    rows = -(-n // cols)
    fig = _Figure(figsize=(3.1 * cols, 3.5 * rows + 0.3), dpi=100)
    h, w = image.shape[-2:]
    step = step or max(4, min(h, w) // 12)
    for k, (name, out_image, out_mask, positions) in enumerate(draws):
        ax = fig.add_subplot(rows, cols, k + 1)
        picture = overlay(out_image, out_mask, palette, alpha=0.3, background=0) if palette is not None \
            else _as_rgb(out_image)
        ax.imshow(picture, interpolation="nearest")
        if positions is not None:
            _quiver(ax, positions, step)
        ax.set_title(name, fontsize=10)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.axis("off")
    fig.suptitle("arrows: from each output pixel to the input point it shows", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def figure_augment_preview(seed=0):
    """The docs' preview: a Cells image under two elastic draws, two affine draws and a colour jitter."""
    from ..data import ColorJitter, RandomAffine, RandomElastic

    image, mask = _cells_sample()
    transforms = [("elastic", RandomElastic()), ("elastic", RandomElastic()),
                  ("affine", RandomAffine(degrees=20, translate=(0.1, 0.1), scale=(0.85, 1.15), shear=10)),
                  ("affine", RandomAffine(degrees=20, translate=(0.1, 0.1), scale=(0.85, 1.15), shear=10)),
                  ("color", ColorJitter(brightness=0.3, contrast=0.3, gamma=0.3))]
    return plot_augment_preview(image, mask, transforms, np.random.default_rng(seed), palette=_palette(), columns=3)


def figure_elastic_few_images(results=None):
    """Held-out mean IU per seed for each setting (without, and with elastic deformation of two
    strengths) and the training times, from the numbers ``examples/elastic_few_images.py`` recorded
    (``docs/figures/elastic_few_images.json`` of a source checkout; elsewhere pass ``results``,
    that file's contents)."""
    if results is None:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "docs", "figures", RESULTS_FILE)
        if not os.path.exists(path):          # an installed package has no docs folder beside it
            raise FileNotFoundError(f"figure_elastic_few_images: {os.path.normpath(path)} is not there (the docs "
                                    f"of a source checkout); pass results=, the JSON that "
                                    f"examples/elastic_few_images.py writes")
        with open(path) as f:
            results = json.load(f)
    fig = _Figure(figsize=(9.5, 3.8), dpi=100)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    colours = ("#969696", "#2171b5", "#6baed6", "#08306b")
    names = list(results["runs"])
    for k, key in enumerate(names):
        runs = results["runs"][key]
        ious = [r["mean_iou"] for r in runs]
        left.plot([k] * len(ious), ious, "o", color=colours[k % 4], alpha=0.7)
        left.errorbar([k + 0.18], [np.mean(ious)], yerr=[np.std(ious)], fmt="s", color=colours[k % 4], capsize=4)
        right.bar([k], [np.mean([r["seconds"] for r in runs])], color=colours[k % 4])
    labels = ["no elastic" if key == "without" else f"elastic\n{key}" for key in names]
    for ax in (left, right):
        ax.set_xticks(range(len(names)), labels, fontsize=9)
    left.set_xlim(-0.5, len(names) - 0.3)
    left.set_ylabel("held-out mean IU")
    left.set_title(f"{len(results['runs'][names[0]])} seeds each: dots per seed, squares mean +- sd", fontsize=9)
    right.set_ylabel("CPU seconds per training run")
    right.set_title(f"one thread; load average {results['load']}" +
                    (" (busy machine: times unreliable)" if results.get("busy") else ""), fontsize=9)
    fig.suptitle(results["setting"], fontsize=9)
    fig.tight_layout()
    return fig


SAMPLING_FIGURES = {
    "grid_sample_bilinear.png": figure_bilinear_weights,
    "grid_sample_padding.png": figure_padding_modes,
    "grid_sample_coordinates.png": figure_normalised_coordinates,
    "grid_sample_gradient.png": figure_grid_gradient,
    "elastic_deformation.png": figure_elastic,
    "augment_preview.png": figure_augment_preview,
    "elastic_few_images.png": figure_elastic_few_images,
}


def save_sampling_figures(directory):
    """Write every figure in ``SAMPLING_FIGURES`` into ``directory``; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, draw in SAMPLING_FIGURES.items():
        if name == "elastic_few_images.png" and not _results_exist():
            continue                           # drawn once the example's full run has recorded its numbers
        path = os.path.join(directory, name)
        draw().savefig(path, dpi=100)
        written.append(path)
    return written


def _results_exist():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.exists(os.path.join(here, "..", "..", "docs", "figures", RESULTS_FILE))
