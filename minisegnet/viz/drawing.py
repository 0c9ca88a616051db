"""The course figures' drawing kit: colours and a few primitives (cells, matrices, figures).

The style follows Dumoulin and Visin's guide to convolution arithmetic: blue
input, white dashed padding, a dark kernel footprint, a green output. The
figure modules (``conv_figures``, ``model_figures``, ``course_training_figures``)
draw with these; ``teaching`` lists the figures the docs show.
"""
import numpy as _np

_INPUT = "#9ecae1"
_PAD = "#ffffff"
_KERNEL = "#2171b5"
_OUTPUT = "#a1d99b"
_OUTPUT_HI = "#31a354"
_ZERO = "#f0f0f0"
_WARN = "#de2d26"


def _new_figure(width, height):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=100)


def _grid_axes(ax):
    """Square cells, row 0 at the top, no ticks."""
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.axis("off")


def _cell(ax, x, y, face, edge="#333333", lw=0.8, ls="-", text=None, fontsize=8, color="black", alpha=1.0):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((x, y), 1, 1, facecolor=face, edgecolor=edge, lw=lw, ls=ls, alpha=alpha))
    if text is not None:
        ax.text(x + 0.5, y + 0.5, text, ha="center", va="center", fontsize=fontsize, color=color)


def _matrix(ax, x0, y0, values, face, fmt="{:g}", fontsize=8, edge="#333333", highlight=None, hi_face=None):
    """Draw a 2-D array as a grid of numbered cells with its top-left corner at (x0, y0)."""
    values = _np.asarray(values)
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            f = face(r, c) if callable(face) else face
            if highlight is not None and highlight[r, c]:
                f = hi_face
            _cell(ax, x0 + c, y0 + r, f, edge=edge, text=fmt.format(values[r, c]), fontsize=fontsize)


def _fit(ax, x0, y0, x1, y1, margin=0.4):
    ax.set_xlim(x0 - margin, x1 + margin)
    ax.set_ylim(y1 + margin, y0 - margin)


def _ops():
    """The real ops, imported when a figure needs them (viz stays importable on its own)."""
    import minisegnet as msn
    from minisegnet import functional as F

    return msn, F
