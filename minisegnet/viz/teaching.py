"""Teaching figures: conv arithmetic, pooling, resizing, U-Net, drawn from the real code.

Each ``figure_*`` function returns a matplotlib Figure; ``TEACHING_FIGURES``
maps the file names used in docs/ to them, and ``save_teaching_figures(directory)``
writes them all. Geometry comes from ``minisegnet.shapes`` and numbers from
the real ops, so a figure cannot drift from the code it explains. The style
follows Dumoulin and Visin's guide to convolution arithmetic: blue input,
white dashed padding, a dark kernel footprint, a green output.
"""
import numpy as _np

from .. import shapes as _shapes

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


def _kernel_taps(out_yx, kernel_size, stride, dilation):
    """Padded-input coordinates (row, col) that output pixel ``out_yx`` reads:
    ``out * s + k_index * d`` on each axis, the conv's index formula."""
    (oy, ox), (k, s, d) = out_yx, (kernel_size, stride, dilation)
    return [(oy * s + ky * d, ox * s + kx * d) for ky in range(k) for kx in range(k)]


def draw_conv(ax, size, kernel_size=3, stride=1, padding=0, dilation=1, at=(0, 0), title=None):
    """One panel: the padded input (blue, padding white and dashed) with the kernel's
    taps for output pixel ``at`` (dark), and the output grid to its right (green)
    with that pixel highlighted. Sizes from ``shapes.conv2d_output_size``."""
    i, k, s, p, d = size, kernel_size, stride, padding, dilation
    o = _shapes.conv2d_output_size(i, k, s, p, d)
    n = i + 2 * p
    taps = set(_kernel_taps(at, k, s, d))
    for r in range(n):
        for c in range(n):
            inside = p <= r < p + i and p <= c < p + i
            face = _KERNEL if (r, c) in taps else (_INPUT if inside else _PAD)
            _cell(ax, c, r, face, ls="-" if inside else "--", lw=0.8 if inside else 0.6,
                  edge="#333333" if inside else "#888888")
    # the effective kernel d(k-1)+1 as an outline
    from matplotlib.patches import Rectangle

    span = d * (k - 1) + 1
    ax.add_patch(Rectangle((at[1] * s, at[0] * s), span, span, fill=False, edgecolor=_KERNEL, lw=2.2))
    gap = 1.5
    x0 = n + gap
    y0 = (n - o) / 2
    for r in range(o):
        for c in range(o):
            _cell(ax, x0 + c, y0 + r, _OUTPUT_HI if (r, c) == tuple(at) else _OUTPUT)
    ax.annotate("", xy=(x0 + at[1] + 0.5, y0 + at[0] + 0.5), xytext=(at[1] * s + span / 2, at[0] * s + span / 2),
                arrowprops=dict(arrowstyle="->", color="#555555", lw=1.0, connectionstyle="arc3,rad=-0.25"))
    _grid_axes(ax)
    _fit(ax, 0, 0, x0 + o, n)
    formula = f"o = floor(({i} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {o}"
    ax.set_title((title + ": " if title else "") + f"i={i} k={k} s={s} p={p} d={d}\n{formula}", fontsize=10)
    return o


def figure_conv_arithmetic():
    """Four cases from the guide: no padding; 'same' padding; stride 2; dilation 2."""
    cases = [
        dict(size=5, kernel_size=3, stride=1, padding=0, dilation=1, at=(1, 2), title="no padding, unit stride"),
        dict(size=5, kernel_size=3, stride=1, padding=1, dilation=1, at=(0, 0), title="'same' padding p=(k-1)/2"),
        dict(size=5, kernel_size=3, stride=2, padding=1, dilation=1, at=(1, 2), title="stride 2, padding 1"),
        dict(size=7, kernel_size=3, stride=1, padding=0, dilation=2, at=(0, 1), title="dilation 2"),
    ]
    fig = _new_figure(9, 7)
    for n, case in enumerate(cases):
        draw_conv(fig.add_subplot(2, 2, n + 1), **case)
    fig.tight_layout()
    return fig


def figure_stride_ambiguity():
    """Sizes 5 and 6 both give 2 outputs for k=3, s=2: the last column of the 6 is never read."""
    fig = _new_figure(8, 3.4)
    colours = ["#2171b5", "#e6550d"]
    for n, i in enumerate((5, 6)):
        ax = fig.add_subplot(1, 2, n + 1)
        o = _shapes.conv2d_output_size(i, 3, 2)
        read = set()
        for oy in range(o):
            for ox in range(o):
                read |= set(_kernel_taps((oy, ox), 3, 2, 1))
        for r in range(i):
            for c in range(i):
                unread = (r, c) not in read
                _cell(ax, c, r, "#fcbba1" if unread else _INPUT, text="unread" if unread and r == i // 2 and c == i - 1
                      else None, fontsize=7, color=_WARN)
        from matplotlib.patches import Rectangle

        for ox in range(o):  # the windows of the first output row
            ax.add_patch(Rectangle((ox * 2 + 0.06 * ox, 0.06), 3 - 0.12, 3 - 0.12, fill=False,
                                   edgecolor=colours[ox % 2], lw=2.2))
        _grid_axes(ax)
        _fit(ax, 0, 0, 6, 6)
        ax.set_title(f"i={i}, k=3, s=2: o = floor(({i}-3)/2)+1 = {o}", fontsize=10)
    fig.suptitle("Stride s>1 maps s input sizes to one output size; output_padding picks one back",
                 fontsize=10)
    fig.tight_layout()
    return fig


def figure_dilation():
    """A 3x3 kernel at dilations 1, 2, 3: the same 9 taps spread over d(k-1)+1 pixels."""
    fig = _new_figure(9, 3.4)
    n = 9
    for j, d in enumerate((1, 2, 3)):
        ax = fig.add_subplot(1, 3, j + 1)
        span = d * 2 + 1
        start = (n - span) // 2
        taps = {(r + start, c + start) for r, c in _kernel_taps((0, 0), 3, 1, d)}
        for r in range(n):
            for c in range(n):
                _cell(ax, c, r, _KERNEL if (r, c) in taps else _INPUT)
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((start, start), span, span, fill=False, edgecolor=_WARN, lw=2, ls="--"))
        _grid_axes(ax)
        _fit(ax, 0, 0, n, n)
        ax.set_title(f"d={d}: 9 weights span {span}x{span}", fontsize=10)
    fig.tight_layout()
    return fig


def _ops():
    """The real ops, imported when a figure needs them (viz stays importable on its own)."""
    import minisegnet as msn
    from minisegnet import functional as F

    return msn, F


def figure_im2col():
    """``F.unfold`` of a 2-channel 3x3 image with a 2x2 kernel: each column of the
    8x4 matrix is one window; its rows run over ``(c, i, j)`` (channel, kernel row,
    kernel column), channel 0's taps first, the order of ``W.reshape(C_out, -1)``."""
    from matplotlib.patches import Rectangle

    msn, F = _ops()
    x = _np.stack([_np.arange(1, 10), _np.arange(11, 20)]).reshape(1, 2, 3, 3).astype(_np.float64)
    cols = F.unfold(msn.tensor(x), 2).numpy()[0]          # (8, 4)
    faces = [_INPUT, "#fdd0a2"]                           # channel 0 blue, channel 1 orange
    edges = ["#e6550d", "#3182bd", "#31a354", "#756bb1"]
    fig = _new_figure(10, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    for ch in range(2):
        y0 = 0.6 + ch * 4.2
        for r in range(3):
            for c in range(3):
                _cell(ax, c, y0 + r, faces[ch], text=f"{int(x[0, ch, r, c])}", fontsize=10)
        for n, (oy, ox) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            off = 0.06 + 0.07 * n
            ax.add_patch(Rectangle((ox + off, y0 + oy + off), 2 - 2 * off, 2 - 2 * off, fill=False,
                                   edgecolor=edges[n], lw=2))
        ax.text(1.5, y0 - 0.2, f"channel c={ch}", ha="center", fontsize=10)
    x0 = 6.8
    for r in range(cols.shape[0]):
        ch, i, j = r // 4, (r // 2) % 2, r % 2
        ax.text(x0 - 0.2, r + 0.5, f"(c={ch}, i={i}, j={j})", ha="right", va="center", fontsize=9,
                color="#08519c" if ch == 0 else "#a63603")
        for c in range(cols.shape[1]):
            _cell(ax, x0 + c, r, faces[ch], text=f"{int(cols[r, c])}", fontsize=10)
    for c in range(cols.shape[1]):
        ax.add_patch(Rectangle((x0 + c + 0.05, 0.05), 0.9, cols.shape[0] - 0.1, fill=False, edgecolor=edges[c],
                               lw=2))
        ax.text(x0 + c + 0.5, 8.5, f"({c // 2},{c % 2})", ha="center", fontsize=9, color=edges[c])
    ax.text(x0 + 2, -0.45, "F.unfold(x, 2): (C*kh*kw) x L = 8 x 4", ha="center", fontsize=10)
    ax.text(x0 + 2, 9.2, "column l = oh*W_out + ow, the window of output (oh, ow)", ha="center", fontsize=9)
    ax.text(x0 + 4.7, 3.5, "row = (c*kh + i)*kw + j:\nchannel 0's four taps, then\nchannel 1's, the order of\n"
            "W.reshape(C_out, C*kh*kw)\n\nW (C_out x 8) @ columns\n= (C_out x 4) -> (C_out, 2, 2)",
            ha="left", va="center", fontsize=10)
    _grid_axes(ax)
    _fit(ax, -0.2, -1, x0 + 9.6, 9.6)
    fig.tight_layout()
    return fig


def figure_transposed_conv():
    """A 2x2 input, 3x3 kernel of ones, stride 2 -> 5x5, two ways with the same numbers:
    zero insertion + padding + stride-1 conv, and each input pixel scattering a
    kernel-sized stamp (the backward of a stride-2 conv)."""
    msn, F = _ops()
    x = _np.array([[1.0, 2.0], [3.0, 4.0]])
    w = _np.ones((1, 1, 3, 3))
    y = F.conv_transpose2d(msn.tensor(x[None, None]), msn.tensor(w), stride=2).numpy()[0, 0]
    s, k, p = 2, 3, 0
    zins = _np.zeros((2 * s - 1, 2 * s - 1))
    zins[::s, ::s] = x
    q = k - 1 - p
    padded = _np.pad(zins, q)
    conv = F.conv2d(msn.tensor(padded[None, None]), msn.tensor(w[:, :, ::-1, ::-1].copy())).numpy()[0, 0]
    assert _np.allclose(conv, y)
    fig = _new_figure(11, 4.4)
    colours = {1.0: "#fdae6b", 2.0: "#9ecae1", 3.0: "#a1d99b", 4.0: "#bcbddc"}
    edges = {1.0: "#e6550d", 2.0: "#3182bd", 3.0: "#31a354", 4.0: "#756bb1"}
    ax = fig.add_subplot(1, 3, 1)
    for r in range(2):
        for c in range(2):
            _cell(ax, c + 1, r + 1, colours[x[r, c]], text=f"{x[r, c]:g}", fontsize=12)
    _grid_axes(ax)
    _fit(ax, 0, 0, 4, 4)
    ax.set_title("input 2x2\nkernel 3x3 of ones, stride 2", fontsize=10)
    ax = fig.add_subplot(1, 3, 2)
    n = padded.shape[0]
    for r in range(n):
        for c in range(n):
            v = padded[r, c]
            inside = q <= r < n - q and q <= c < n - q
            face = colours.get(v, _ZERO if inside else _PAD)
            _cell(ax, c, r, face, ls="-" if inside else "--", edge="#333333" if inside else "#999999",
                  text=f"{v:g}", fontsize=9, color="black" if v else "#aaaaaa")
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((1, 1), 3, 3, fill=False, edgecolor=_KERNEL, lw=2.5))
    _grid_axes(ax)
    _fit(ax, 0, 0, n, n)
    ax.set_title(f"(a) insert s-1={s - 1} zeros, pad k-1-p={q},\nconv stride 1 (flipped kernel)", fontsize=10)
    ax = fig.add_subplot(1, 3, 3)
    for r in range(y.shape[0]):
        for c in range(y.shape[1]):
            _cell(ax, c, r, "#f2f9ef", text=f"{y[r, c]:g}", fontsize=11)
    for (r, c), v in _np.ndenumerate(x):
        off = 0.07 * (2 * r + c)
        ax.add_patch(Rectangle((c * s + off, r * s + off), k - 2 * off, k - 2 * off, fill=False,
                               edgecolor=edges[v], lw=2.5))
    _grid_axes(ax)
    _fit(ax, 0, 0, 5, 5)
    ax.set_title("(b) scatter: pixel v adds v*kernel at 2*(r, c)\nF.conv_transpose2d output 5x5", fontsize=10)
    fig.tight_layout()
    return fig


def conv_matrix(weight, in_hw, stride=1, padding=0, dilation=1):
    """The matrix ``C`` of a single-channel conv: ``conv2d(x).ravel() == C @ x.ravel()``.
    Column ``m`` is the conv of the ``m``-th basis image (one pixel set to 1)."""
    msn, F = _ops()
    h, w = in_hw
    columns = []
    for m in range(h * w):
        basis = _np.zeros((1, 1, h, w))
        basis.flat[m] = 1.0
        columns.append(F.conv2d(msn.tensor(basis), msn.tensor(_np.asarray(weight, dtype=_np.float64)), None,
                                stride, padding, dilation).numpy().ravel())
    return _np.stack(columns, axis=1)


def figure_conv_matrix():
    """The guide's example as a matrix: a 3x3 kernel on a 4x4 input (stride 1, no
    padding) is ``y = C x`` with ``C`` 4 x 16, each row the kernel's 9 weights at the
    input pixels one output reads; the transposed conv is ``C^T`` (16 x 4)."""
    names = _np.array([[f"w{i}{j}" for j in range(3)] for i in range(3)])
    weight = _np.arange(1, 10, dtype=_np.float64).reshape(1, 1, 3, 3)      # weight w_ij = 3i + j + 1, all distinct
    c = conv_matrix(weight, (4, 4))
    fig = _new_figure(11, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    palette = ["#fdae6b", "#9ecae1", "#a1d99b", "#bcbddc", "#fdd0a2", "#c6dbef", "#c7e9c0", "#dadaeb", "#fcbba1"]
    for r in range(c.shape[0]):
        for m in range(c.shape[1]):
            v = int(c[r, m])
            if v:
                _cell(ax, m, r, palette[v - 1], text=names.flat[v - 1], fontsize=9)
            else:
                _cell(ax, m, r, "#f7f7f7", text="0", fontsize=8, color="#bbbbbb")
        ax.text(-0.3, r + 0.5, f"y[{r // 2},{r % 2}]", ha="right", va="center", fontsize=9)
    for m in range(c.shape[1]):
        ax.text(m + 0.5, -0.2, f"x{m // 4}{m % 4}", ha="center", va="bottom", fontsize=8, rotation=0)
    ax.text(8, 5.0, "y (2x2, flattened: 4) = C (4 x 16) @ x (4x4, flattened: 16).   Each row: the 9 weights at the "
            "pixels one output reads.\nThe transposed conv multiplies by C^T (16 x 4): each output value goes back, "
            "times the kernel, to those 9 pixels.", ha="center", va="top", fontsize=9.5)
    _grid_axes(ax)
    _fit(ax, -1.6, -0.9, 16, 6.2)
    ax.set_title("a 3x3 conv on a 4x4 input (stride 1, no padding) as a sparse matrix C", fontsize=11)
    fig.tight_layout()
    return fig


def figure_max_unpool():
    """``F.max_pool2d(..., return_indices=True)`` then ``F.max_unpool2d``: values go back
    to where their maxima came from; everything else becomes 0."""
    msn, F = _ops()
    x = _np.array([[1, 6, 2, 0], [5, 3, 7, 4], [2, 9, 1, 3], [0, 8, 6, 5]], dtype=_np.float64)
    t = msn.tensor(x[None, None])
    pooled, idx = F.max_pool2d(t, 2, return_indices=True)
    un = F.max_unpool2d(pooled, idx, 2).numpy()[0, 0]
    pooled, idx = pooled.numpy()[0, 0], idx.numpy()[0, 0]
    windows = ["#fdae6b", "#9ecae1", "#a1d99b", "#bcbddc"]

    def window(r, c):
        return windows[(r // 2) * 2 + c // 2]

    is_max = _np.zeros((4, 4), bool)
    is_max.flat[idx.ravel()] = True
    fig = _new_figure(11, 3.4)
    panels = [("input 4x4 (maxima bold)", x, window, is_max),
              ("max_pool2d 2x2 -> values", pooled, lambda r, c: windows[r * 2 + c], None),
              ("indices (flat h*W + w)", idx, lambda r, c: windows[r * 2 + c], None),
              ("max_unpool2d -> 4x4", un, lambda r, c: window(r, c) if is_max[r, c] else _ZERO, is_max)]
    for j, (title, values, face, bold) in enumerate(panels):
        ax = fig.add_subplot(1, 4, j + 1)
        n = values.shape[0]
        off = (4 - n) / 2
        for r in range(n):
            for c in range(n):
                _cell(ax, c + off, r + off, face(r, c))
                strong = bold is not None and bold[r, c]
                ax.text(c + off + 0.5, r + off + 0.5, f"{values[r, c]:g}", ha="center", va="center",
                        fontsize=12 if strong or bold is None else 10,
                        fontweight="bold" if strong else "normal", color="black" if values[r, c] or bold is None
                        else "#999999")
        _grid_axes(ax)
        _fit(ax, 0, 0, 4, 4)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def figure_align_corners():
    """Where bilinear upsampling 2 -> 4 samples the input, for both ``align_corners``
    values, with the values ``F.interpolate`` returns for the input [1, 2]. Each arrow
    goes straight down from an output pixel's centre to its source coordinate; where
    that falls outside the span between the two input centres (both ends, with
    ``False``), a dashed arrow shows the clamp to the edge value that is read."""
    msn, F = _ops()
    from matplotlib.patches import Rectangle

    n_in, n_out = 2, 4
    values = _np.array([1.0, 2.0])
    fig = _new_figure(9, 4.8)
    for j, align in enumerate((False, True)):
        ax = fig.add_subplot(2, 1, j + 1)
        out = F.interpolate(msn.tensor(_np.tile(values, (1, 1, 1, 1)).astype(_np.float64)),
                            size=(1, n_out), mode="bilinear", align_corners=align).numpy()[0, 0, 0]
        for c in range(n_in):               # input pixel c spans [2c, 2c+2]; its centre is 2c+1
            ax.add_patch(Rectangle((2 * c, 0), 2, 1, facecolor=_INPUT, edgecolor="#333333"))
            ax.plot([2 * c + 1], [0.5], "o", color=_KERNEL, ms=7)
            ax.text(2 * c + 1, -0.2, f"x[{c}] = {values[c]:g}", ha="center", fontsize=10)
        # output pixel widths: in/out of an input pixel (False); centre spacing (in-1)/(out-1) (True)
        width = 2 * n_in / n_out if not align else 2 * (n_in - 1) / (n_out - 1)
        for d in range(n_out):
            raw = d * (n_in - 1) / (n_out - 1) if align else (d + 0.5) * n_in / n_out - 0.5
            read = min(max(raw, 0.0), n_in - 1.0)     # the value read: an edge pixel's, outside the centres
            centre = 2 * raw + 1
            ax.add_patch(Rectangle((centre - width / 2, 2), width, 1, facecolor=_OUTPUT, edgecolor="#333333"))
            ax.text(centre, 2.5, f"{out[d]:.4g}", ha="center", va="center", fontsize=10)
            ax.annotate("", xy=(centre, 0.75), xytext=(centre, 2.0),
                        arrowprops=dict(arrowstyle="->", color=_WARN, lw=1))
            label = f"src={raw:.3g}"
            if read != raw:
                ax.plot([centre], [0.5], "o", mfc="none", mec=_WARN, ms=9, mew=1.5)
                ax.annotate("", xy=(2 * read + 1, 0.5), xytext=(centre, 0.5),
                            arrowprops=dict(arrowstyle="->", color=_WARN, lw=1.2, ls="--"))
                label += f": reads x[{int(read)}]"
            ax.plot([2 * read + 1], [0.5], "x", color=_WARN, ms=9, mew=2)
            ax.text(centre, 3.3, label, ha="center", fontsize=9, color=_WARN)
        rule = ("src = (dst + 0.5) * in/out - 0.5; outside the end centres the edge value is read" if not align
                else "src = dst * (in-1)/(out-1): the corner pixels' centres line up")
        ax.set_title(f"align_corners={align}:  {rule}", fontsize=10)
        ax.axis("off")
        ax.set_xlim(-1.0, 2 * n_in + 1.0)
        ax.set_ylim(3.7, -0.6)
    fig.tight_layout()
    return fig


def figure_unet_trace(size=572, depth=4):
    """The original U-Net's sizes from ``shapes.unet_trace``: valid 3x3 convs lose 2,
    pools halve, up-convs double, and each skip is center-cropped to fit."""
    rows = _shapes.unet_trace(size, depth)
    fig = _new_figure(11, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    x, pos, skips = 0.0, [], {}
    for row in rows:
        if row.operation.startswith("crop") or row.operation.startswith("copy"):
            continue
        x += 1.0 if row.operation != "input" else 0.0
        pos.append((x, -row.level, row))
    colours = {"conv 3x3": _KERNEL, "max-pool 2x2": _WARN, "up-conv 2x2": _OUTPUT_HI, "conv 1x1": "#756bb1"}
    for (x0, y0, _), (x1, y1, row) in zip(pos, pos[1:]):
        ax.annotate("", xy=(x1 - 0.3, y1), xytext=(x0 + 0.3, y0),
                    arrowprops=dict(arrowstyle="->", color=colours.get(row.operation, "#333"), lw=2))
    for x0, y0, row in pos:
        ax.text(x0, y0, f"{row.size}", ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.25", fc=_INPUT if y0 > -depth else "#fdd0a2", ec="#555"))
        if row.stage.startswith("encoder") and row.operation == "conv 3x3":
            skips[row.stage] = (x0, y0, row.size)
    for row in rows:
        if row.operation.startswith("crop"):
            stage = row.operation.split()[-1]
            sx, sy, ssize = skips[stage]
            ux = next(px for px, py, r in pos if r.stage == row.stage and r.operation == "up-conv 2x2")
            ax.annotate("", xy=(ux - 0.35, sy), xytext=(sx + 0.4, sy),
                        arrowprops=dict(arrowstyle="->", color="#888", lw=1.2, ls="--"))
            ax.text((sx + ux) / 2, sy + 0.18, f"copy and crop {ssize} -> {row.size}", ha="center",
                    fontsize=9, color="#555")
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], color=c, lw=2, label=n) for n, c in colours.items()] +
              [Line2D([], [], color="#888", ls="--", label="skip: center_crop + concat")],
              loc="lower right", fontsize=9, frameon=False)
    for level in range(depth + 1):
        name = "bottleneck" if level == depth else f"encoder.{level} / decoder.{level}"
        ax.text(-0.9, -level, f"level {level}\n{name}", ha="right", va="center", fontsize=8, color="#555")
    ax.set_xlim(-3.2, x + 0.7)
    ax.set_ylim(-depth - 0.6, 0.6)
    ax.axis("off")
    ax.set_title(f"U-Net (valid 3x3 convs, depth {depth}): {size} -> {rows[-1].size}; "
                 f"every pool must see an even size", fontsize=11)
    fig.tight_layout()
    return fig


def figure_overlap_tile(size=572):
    """Overlap-tile: each output tile of the valid U-Net needs an input window larger by
    the border it loses (92 pixels a side at 572 -> 388); at the image border the
    missing context is mirrored."""
    from matplotlib.patches import Rectangle

    out = _shapes.unet_output_size(size)
    border = (size - out) // 2
    image = 2 * out
    fig = _new_figure(6.5, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.add_patch(Rectangle((-border, -border), image + 2 * border, image + 2 * border, facecolor="#f2f0f7",
                           edgecolor="#756bb1", ls="--", lw=1.2))
    ax.add_patch(Rectangle((0, 0), image, image, facecolor=_INPUT, edgecolor="#333", lw=1.5))
    for r in range(2):
        for c in range(2):
            face = _OUTPUT if (r, c) == (0, 0) else "none"
            ax.add_patch(Rectangle((c * out, r * out), out, out, facecolor=face, edgecolor="#333", lw=1, alpha=0.8))
    ax.add_patch(Rectangle((-border, -border), size, size, fill=False, edgecolor=_KERNEL, lw=2.5))
    ax.add_patch(Rectangle((out - border, out - border), size, size, fill=False, edgecolor=_WARN, lw=2, ls=":"))
    ax.text(out / 2, out / 2, f"output tile\n{out} x {out}", ha="center", va="center", fontsize=10)
    ax.text(-border + 8, -border + 30, f"input window {size} x {size}", fontsize=10, color=_KERNEL)
    ax.text(image / 2, image + border / 2, f"mirrored border: {border} px", ha="center", va="center",
            fontsize=10, color="#756bb1")
    ax.text(out + out / 2, out + out / 2, f"tile (1,1)'s window\n(dotted) overlaps\nits neighbours'",
            ha="center", va="center", fontsize=9, color=_WARN)
    ax.set_xlim(-border - 20, image + border + 20)
    ax.set_ylim(image + border + 20, -border - 20)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"Overlap-tile on a {image} x {image} image: {size} in, {out} out, border {border}", fontsize=10)
    fig.tight_layout()
    return fig


def figure_receptive_field():
    """``shapes.receptive_field`` for three stacks of 3x3 layers: plain convs grow
    linearly, pooling multiplies the jump, dilation doubling grows exponentially."""
    n = 8
    chains = {
        "3x3 convs, stride 1": [("conv", 3, 1, 1)] * n,
        "3x3 conv + 2x2 pool, alternating": [("conv", 3, 1, 1) if i % 2 == 0 else ("pool", 2, 2) for i in range(n)],
        "3x3 convs, dilation 1, 2, 4, ...": [("conv", 3, 1, 2 ** i, 2 ** i) for i in range(n)],
    }
    fig = _new_figure(7, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for (label, layers), marker in zip(chains.items(), "osd"):
        sizes = [1] + [row.size for row in _shapes.receptive_field(layers)]
        ax.plot(range(n + 1), sizes, marker=marker, label=label)
        ax.annotate(f"{sizes[-1]}", (n, sizes[-1]), textcoords="offset points", xytext=(6, -3), fontsize=9)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("layers")
    ax.set_ylabel("receptive field (input pixels per axis)")
    ax.set_title("r_out = r_in + (k-1) d j_in,   j_out = j_in s", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


def _shapes_sample(size=128, index=3):
    from ..data import Shapes

    return Shapes(num_samples=8, size=size, seed=0)[index]


def figure_fcn_strides():
    """The best a score map at stride 32, 16 or 8 can do: the true mask one-hot encoded,
    average-pooled to the stride (``F.avg_pool2d``), upsampled bilinearly back
    (``F.interpolate``) and arg-maxed, scored with ``metrics.mean_iou``."""
    msn, F = _ops()
    from .. import metrics

    image, mask = _shapes_sample()
    classes = 4
    onehot = _np.eye(classes)[mask].transpose(2, 0, 1)[None]
    from matplotlib.colors import ListedColormap
    from ..data import Shapes

    cmap = ListedColormap(_np.array(Shapes.colors) / 255.0)
    fig = _new_figure(11, 3.4)
    ax = fig.add_subplot(1, 4, 1)
    ax.imshow(mask, cmap=cmap, vmin=0, vmax=classes - 1, interpolation="nearest")
    ax.set_title(f"true mask {mask.shape[0]}x{mask.shape[1]}", fontsize=10)
    ax.axis("off")
    for j, stride in enumerate((32, 16, 8)):
        coarse = F.avg_pool2d(msn.tensor(onehot), stride)
        up = F.interpolate(coarse, size=mask.shape, mode="bilinear", align_corners=False)
        pred = up.numpy()[0].argmax(0)
        miou = metrics.mean_iou(metrics.confusion_matrix(pred, mask, classes))
        ax = fig.add_subplot(1, 4, j + 2)
        ax.imshow(pred, cmap=cmap, vmin=0, vmax=classes - 1, interpolation="nearest")
        ax.contour(mask > 0, levels=[0.5], colors="white", linewidths=1)
        ax.set_title(f"stride {stride} ({mask.shape[0] // stride}x{mask.shape[1] // stride} map)\n"
                     f"best mean IU {miou:.3f}", fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return fig


def segnet_round_trip(size=64):
    """The data of ``figure_segnet_unpool``: ``(x, mask, pooled, unpooled, bilinear)``,
    2-D arrays. ``x`` is bright shapes (``mask > 0``) on a faint ramp (the ramp breaks
    ties, so each window has one maximum); it is max-pooled twice with indices, then
    brought back to full size by max-unpooling twice, and by bilinear x4."""
    msn, F = _ops()
    _, mask = _shapes_sample(size)
    yy, xx = _np.mgrid[0:size, 0:size] / float(size)
    x = msn.tensor((0.15 * (xx + yy) + 0.65 * (mask > 0))[None, None])
    p1, i1 = F.max_pool2d(x, 2, return_indices=True)
    p2, i2 = F.max_pool2d(p1, 2, return_indices=True)
    un = F.max_unpool2d(F.max_unpool2d(p2, i2, 2), i1, 2)
    bil = F.interpolate(p2, scale_factor=4, mode="bilinear", align_corners=False)
    return tuple(a.numpy()[0, 0] if hasattr(a, "numpy") else a for a in (x, mask, p2, un, bil))


def figure_segnet_unpool():
    """Pool twice with indices, then upsample back two ways. Top: the whole image.
    Bottom: a 16x16 crop across the shape's edge, the true outline drawn in red.
    SegNet's max-unpool puts each maximum back where it was: sparse, and every kept
    pixel of a window that straddles the edge lies inside the shape (the bright
    side). Bilinear spreads the pooled values: dense, and the edge smears over
    several pixels on both sides of the outline."""
    from matplotlib.patches import Rectangle

    x, mask, pooled, un, bil = segnet_round_trip(64)
    ys, xs = _np.nonzero(mask > 0)
    cy, cx = int(ys.min()), int(xs[ys == ys.min()].mean())          # the top edge of the shape
    top, left = max(min(cy - 8, 64 - 16), 0), max(min(cx - 8, 64 - 16), 0)
    crop = (slice(top, top + 16), slice(left, left + 16))
    pooled_up = _np.kron(pooled, _np.ones((4, 4)))                   # shown at the input's scale
    panels = [("input 64x64", x), ("max_pool2d twice: 16x16", pooled_up),
              ("max_unpool2d twice: 64x64\n(zeros except the maxima)", un), ("bilinear x4: 64x64", bil)]
    fig = _new_figure(11, 6.4)
    for j, (title, img) in enumerate(panels):
        ax = fig.add_subplot(2, 4, j + 1)
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), 16, 16, fill=False, edgecolor=_WARN, lw=1.2))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        ax = fig.add_subplot(2, 4, j + 5)
        ax.imshow(img[crop], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.contour((mask[crop] > 0).astype(float), levels=[0.5], colors=[_WARN], linewidths=1.2)
        ax.set_title("the red crop, zoomed;\nred line: the true edge", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def figure_depthwise(channels=8, kernel_size=3, cost_channels=64, cost_size=64):
    """Top: which input channels each output channel reads (``nn.Conv2d`` weight shape
    ``(C_out, C_in/groups, k, k)``) for groups = 1, 2 and C, and the pointwise 1x1.
    Bottom: a depthwise-separable conv is the depthwise conv *then* the pointwise
    one; its multiply-adds (from ``summary``) against a standard conv's."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from .. import nn
    from ..summary import summary

    cases = [(f"groups=1 (standard)", kernel_size, 1), ("groups=2", kernel_size, 2),
             (f"groups={channels} (depthwise)", kernel_size, channels), ("1x1 pointwise", 1, 1)]
    fig = _new_figure(11, 6.6)
    for j, (title, k, g) in enumerate(cases):
        conv = nn.Conv2d(channels, channels, k, groups=g, bias=False)
        per_group = channels // g
        mask = _np.zeros((channels, channels))
        for o in range(channels):
            group = o // per_group
            mask[o, group * per_group:(group + 1) * per_group] = 1
        ax = fig.add_subplot(2, 4, j + 1)
        ax.imshow(mask, cmap="Blues", vmin=0, vmax=1.3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("input channel")
        ax.set_ylabel("output channel")
        ax.set_title(f"{title}\nweight {tuple(conv.weight.shape)}: {conv.weight.size} params", fontsize=9)

    # bottom left: the two steps
    ax = fig.add_subplot(2, 2, 3)
    colours = ["#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc"]
    for c in range(4):                                   # 4 input maps, each filtered on its own
        ax.add_patch(Rectangle((0, 3 - c), 0.9, 0.8, facecolor=colours[c], edgecolor="#333"))
        ax.add_patch(Rectangle((2.2, 3 - c), 0.9, 0.8, facecolor=colours[c], edgecolor="#333", hatch="//"))
        ax.add_patch(FancyArrowPatch((0.95, 3.4 - c), (2.15, 3.4 - c), arrowstyle="->", color="#555",
                                     mutation_scale=10))
    for o in range(3):                                   # every pointwise output reads every map
        ax.add_patch(Rectangle((4.6, 2.6 - o), 0.9, 0.8, facecolor="#dadaeb", edgecolor="#333"))
        for c in range(4):
            ax.plot([3.15, 4.55], [3.4 - c, 3.0 - o], color="#999", lw=0.6)
    ax.text(0.45, 4.15, "C_in maps", ha="center", fontsize=9)
    ax.text(1.55, -0.15, f"depthwise {kernel_size}x{kernel_size} (groups=C_in):\none filter a map", ha="center",
            va="top", fontsize=9)
    ax.text(4.5, -0.15, "pointwise 1x1:\nmixes the maps", ha="center", va="top", fontsize=9)
    ax.text(5.05, 3.6, "C_out maps", ha="center", fontsize=9)
    ax.set_xlim(-0.3, 6.0)
    ax.set_ylim(-1.1, 4.5)
    ax.axis("off")
    ax.set_title("depthwise-separable = depthwise, then pointwise", fontsize=10)

    # bottom right: multiply-adds, counted by summary() from the layers themselves
    shape = (1, cost_channels, cost_size, cost_size)
    standard = summary(nn.Conv2d(cost_channels, cost_channels, kernel_size, padding=kernel_size // 2), shape,
                       print_table=False).total_macs
    rows = {r.name: r.macs for r in summary(nn.DepthwiseSeparableConv2d(cost_channels, cost_channels, kernel_size,
                                                                          padding=kernel_size // 2),
                                            shape, print_table=False).rows}
    ax = fig.add_subplot(2, 2, 4)
    ax.bar([0], [standard / 1e6], color=_KERNEL, width=0.6)
    ax.bar([1], [rows["depthwise"] / 1e6], color="#fdae6b", width=0.6, label="depthwise")
    ax.bar([1], [rows["pointwise"] / 1e6], bottom=[rows["depthwise"] / 1e6], color="#bcbddc", width=0.6,
           label="pointwise")
    separable = rows["depthwise"] + rows["pointwise"]
    ax.text(0, standard / 1e6, f"{standard / 1e6:.1f} M", ha="center", va="bottom", fontsize=9)
    ax.text(1, separable / 1e6, f"{separable / 1e6:.1f} M\n({standard / separable:.1f}x fewer)", ha="center",
            va="bottom", fontsize=9)
    ax.set_xticks([0, 1])
    ax.set_xticklabels([f"standard {kernel_size}x{kernel_size}", "depthwise-separable"])
    ax.set_ylabel("multiply-adds (millions)")
    ax.set_ylim(0, standard / 1e6 * 1.2)
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    ax.set_title(f"{cost_channels} -> {cost_channels} channels on a {cost_size}x{cost_size} map", fontsize=10)
    fig.tight_layout()
    return fig


def street_scene(h=60, w=96):
    """A toy street scene (the segmentation-types page's exercises): ``(semantic, instance)`` maps.
    Classes 0 sky, 1 road ("stuff"), 2 car (a "thing"); three cars, the first two
    touching (ids 1, 2, 3; 0 where there is no car)."""
    yy, xx = _np.mgrid[0:h, 0:w]
    semantic = _np.where(yy < 24, 0, 1)
    instance = _np.zeros((h, w), int)
    cars = [(30, 8, 16, 26), (32, 30, 14, 24), (36, 62, 18, 28)]  # (top, left, height, width)
    for n, (t, l, hh, ww) in enumerate(cars, 1):
        inside = (yy >= t) & (yy < t + hh) & (xx >= l) & (xx < l + ww)
        semantic = _np.where(inside, 2, semantic)
        instance = _np.where(inside, n, instance)
    return semantic, instance


def figure_encoder_decoder(size=64):
    """Feature-map sizes through a small encoder-decoder (same-padding 3x3 convs,
    2x2 pools, 2x2 up-convs), each box ``size x size x channels``, from ``shapes``;
    below, a classifier whose fully connected head ends at 1x1."""
    from matplotlib.patches import Rectangle

    steps, s, c = [("input", size, 3)], size, 3
    for ch in (16, 32, 64):
        s = _shapes.conv2d_output_size(s, 3, padding=1)
        steps.append(("conv", s, ch))
        s = _shapes.max_pool2d_output_size(s, 2)
        steps.append(("pool", s, ch))
    for ch in (32, 16, 8):
        s = _shapes.conv_transpose2d_output_size(s, 2, stride=2)
        steps.append(("up-conv", s, ch))
    steps.append(("1x1: scores", s, 4))
    fig = _new_figure(11, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    x = 0.0
    for name, s, ch in steps:
        wdt = 0.25 + 0.12 * _np.log2(ch)
        ax.add_patch(Rectangle((x, -s / 2), wdt, s, facecolor=_INPUT if name != "pool" else "#fdd0a2",
                               edgecolor="#333"))
        ax.text(x + wdt / 2, s / 2 + 3, f"{s}x{s}\nx{ch}", ha="center", va="bottom", fontsize=8)
        ax.text(x + wdt / 2, -s / 2 - 3, name, ha="center", va="top", fontsize=8, rotation=0)
        x += wdt + 0.75
    ax.text(x / 2, 52, "encoder: where -> what (size shrinks, channels grow);  decoder: back to every pixel",
            ha="center", fontsize=10)
    ax.set_xlim(-0.3, x)
    ax.set_ylim(-size / 2 - 14, size / 2 + 26)
    ax.axis("off")
    fig.tight_layout()
    return fig


def figure_autograd_graph():
    """The graph ``autograd`` records for ``loss = relu(x * w + b).sum()``: each op a
    ``Function`` node linked to its inputs; ``backward`` walks it right to left."""
    msn, F = _ops()
    # the shapes of the code on the autograd page: x, w (1, 3) and b (3,)
    x = msn.tensor(_np.array([[1.0, -2.0, 3.0]]), requires_grad=True)
    w = msn.tensor(_np.array([[0.5, 0.5, -1.0]]), requires_grad=True)
    b = msn.tensor(_np.array([0.25, 0.25, 0.25]), requires_grad=True)
    loss = (x * w + b).relu().sum()
    names = {id(t): f"{label} {tuple(t.shape)}" for t, label in ((x, "x"), (w, "w"), (b, "b"))}
    level, order = {}, []

    def depth(fn):                      # longest path from a leaf, memoised
        if id(fn) not in level:
            level[id(fn)] = 1 + max([depth(t.creator) for t in fn.inputs if t is not None and t.creator]
                                    or [0])
            order.append(fn)
        return level[id(fn)]

    depth(loss.creator)
    fig = _new_figure(10, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    where = {}
    leaves = [t for fn in order for t in fn.inputs if t is not None and t.creator is None]
    seen = []
    for t in leaves:
        if id(t) not in [id(u) for u in seen]:
            seen.append(t)
    for n, t in enumerate(seen):
        where[id(t)] = (0, 1 - n)
        ax.text(0, 1 - n, names[id(t)], ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round", fc=_INPUT, ec="#333"))
    for fn in order:
        ys = [where[id(t.creator) if t.creator else id(t)][1] for t in fn.inputs if t is not None]
        pos = (1.6 * level[id(fn)], sum(ys) / len(ys))
        where[id(fn)] = pos
        for t in fn.inputs:
            src = where[id(t.creator) if t.creator else id(t)]
            ax.annotate("", xy=(pos[0] - 0.45, pos[1]), xytext=(src[0] + 0.45, src[1]),
                        arrowprops=dict(arrowstyle="->", color="#555", lw=1.2))
        ax.text(*pos, type(fn).__name__, ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round", fc="#fdd0a2", ec="#333"))
    end = where[id(loss.creator)]
    ax.annotate("loss ()", xy=(end[0] + 1.2, end[1]), xytext=(end[0] + 0.45, end[1]), va="center",
                fontsize=10, arrowprops=dict(arrowstyle="->", color="#555", lw=1.2))
    ax.annotate("", xy=(0.3, -1.75), xytext=(end[0] + 0.6, -1.75),
                arrowprops=dict(arrowstyle="->", color=_WARN, lw=1.5))
    ax.text(end[0] / 2, -1.6, "loss.backward(): each Function's backward, in reverse topological order",
            ha="center", fontsize=9, color=_WARN)
    ax.set_xlim(-0.6, end[0] + 1.6)
    ax.set_ylim(-2.0, 1.5)
    ax.axis("off")
    fig.tight_layout()
    return fig


def figure_confusion_matrix():
    """A 3-class confusion matrix from ``metrics.confusion_matrix`` (rows truth,
    columns prediction) with the parts of class 1's IU marked."""
    from .. import metrics

    truth = _np.array([0] * 50 + [1] * 30 + [2] * 20)
    pred = truth.copy()
    pred[:5] = 1          # 5 background pixels called class 1
    pred[50:56] = 0       # 6 class-1 pixels missed
    pred[80:84] = 1       # 4 class-2 pixels called class 1
    cm = metrics.confusion_matrix(pred, truth, 3)
    iou = metrics.iou_per_class(cm)
    fig = _new_figure(8, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    for r in range(3):
        for c in range(3):
            face = _OUTPUT_HI if r == c == 1 else (_INPUT if r == 1 else ("#fdd0a2" if c == 1 else "#f7f7f7"))
            _cell(ax, c, r, face, text=f"{cm[r, c]}", fontsize=12)
        ax.text(-0.2, r + 0.5, f"truth {r}", ha="right", va="center", fontsize=10)
    for c in range(3):
        ax.text(c + 0.5, -0.2, f"pred {c}", ha="center", fontsize=10)
    tp, t1, p1 = cm[1, 1], cm[1].sum(), cm[:, 1].sum()
    ax.text(3.5, 0.6, "class 1:", fontsize=11)
    ax.text(3.5, 1.2, f"t_1 = row sum = {t1}  (blue row)", fontsize=10, color="#3182bd")
    ax.text(3.5, 1.7, f"predicted as 1 = column sum = {p1}  (orange column)", fontsize=10, color="#e6550d")
    ax.text(3.5, 2.2, f"IU = n_11 / (t_1 + col - n_11) = {tp} / ({t1} + {p1} - {tp}) = {iou[1]:.3f}",
            fontsize=10)
    ax.text(3.5, 2.7, f"mean IU = {metrics.mean_iou(cm):.3f}, pixel acc = {metrics.pixel_accuracy(cm):.3f}",
            fontsize=10)
    _grid_axes(ax)
    _fit(ax, -1.3, -0.6, 9.5, 3)
    fig.tight_layout()
    return fig


def figure_aspp(feature=33, rates=(6, 12, 18)):
    """ASPP's parallel 3x3 branches on a 33x33 feature map (DeepLabv3+'s 513 crop at
    output stride 16): the same 9 weights at rates 6, 12, 18 sample ever wider
    context, with ``padding = rate`` keeping the size. Right: the share of taps that
    read the map rather than the zero padding (``aspp_valid_tap_fraction``) as the
    rate grows; at ``rate >= 33`` only the centre tap is left and the branch is a
    1x1 conv (the DeepLabv3 paper's observation, and why ASPP adds image pooling)."""
    from matplotlib.patches import Rectangle

    from ..models.deeplab import aspp_valid_tap_fraction

    fig = _new_figure(11, 5.4)
    ax = fig.add_subplot(1, 2, 1)
    pad = max(rates)
    ax.add_patch(Rectangle((-pad, -pad), feature + 2 * pad, feature + 2 * pad, facecolor="white",
                           edgecolor="#999", ls="--"))
    ax.add_patch(Rectangle((0, 0), feature, feature, facecolor="#e5e5e5", edgecolor="#333"))
    ax.text(feature / 2, -pad + 1.5, f"zero padding ({pad})", ha="center", fontsize=9, color="#777")
    colours = ["#3182bd", "#e6550d", "#756bb1"]
    c = feature // 2
    for rate, colour in reversed(list(zip(rates, colours))):
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ax.add_patch(Rectangle((c + dx * rate, c + dy * rate), 1, 1, facecolor=colour, edgecolor="none"))
        ax.add_patch(Rectangle((c - rate, c - rate), 2 * rate + 1, 2 * rate + 1, fill=False, edgecolor=colour,
                               lw=1.3, ls="--"))
        ax.text(c + rate + 1.5, c - rate + 0.2, f"rate {rate}: spans {2 * rate + 1}", color=colour, fontsize=9,
                va="top")
    ax.add_patch(Rectangle((c, c), 1, 1, facecolor="black"))
    ax.text(feature / 2, feature + pad - 1, f"feature map {feature}x{feature} (grey);\nthe taps of its centre pixel",
            ha="center", va="bottom", fontsize=9)
    ax.set_xlim(-pad - 1, feature + pad + 1)
    ax.set_ylim(feature + pad + 1, -pad - 1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("one 3x3 kernel, three atrous rates", fontsize=11)

    ax = fig.add_subplot(1, 2, 2)
    all_rates = _np.arange(1, 2 * feature + 1)
    ax.plot(all_rates, [aspp_valid_tap_fraction(int(r), feature) for r in all_rates], color="#333", lw=1.5)
    ax.axhline(1 / 9, color=_WARN, ls=":", lw=1)
    ax.axvspan(feature, all_rates[-1], color=_WARN, alpha=0.08)
    ax.text(feature + 1, 1 / 9 + 0.03, "1/9: only the centre tap,\na 1x1 conv (refused)", color=_WARN, fontsize=9)
    for rate, colour in zip(rates, colours):
        f = aspp_valid_tap_fraction(rate, feature)
        ax.plot([rate], [f], "o", color=colour)
        ax.annotate(f"rate {rate}: {f:.0%}", (rate, f), textcoords="offset points", xytext=(8, 4), color=colour,
                    fontsize=9)
    ax.set_xlabel(f"atrous rate (feature map {feature}x{feature})")
    ax.set_ylabel("share of taps that read the map")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, all_rates[-1])
    ax.grid(alpha=0.3)
    ax.set_title("valid taps, over all output positions", fontsize=11)
    fig.tight_layout()
    return fig


def figure_im2col_memory(size=572, depth=4, base=64, itemsize=4):
    """Bytes of the im2col matrix ``C_in*k*k * H_out*W_out * itemsize`` for every 3x3
    conv of the original U-Net on one 572x572 float32 image (sizes from ``unet_trace``)."""
    rows = [r for r in _shapes.unet_trace(size, depth) if r.operation == "conv 3x3"]
    labels, mbytes, c_in = [], [], 1
    for n, r in enumerate(rows):
        c_out = base * 2 ** r.level
        if r.stage.startswith("decoder") and n % 2 == 0:
            c_in = 2 * c_out                 # after concatenating the skip
        mbytes.append(c_in * 9 * r.size * r.size * itemsize / 1e6)
        labels.append(f"{r.stage} {r.size_in}")
        c_in = c_out
    fig = _new_figure(9, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(len(mbytes)), mbytes, color=_KERNEL)
    ax.set_xticks(range(len(mbytes)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("im2col matrix (MB)")
    top = max(range(len(mbytes)), key=mbytes.__getitem__)
    ax.annotate(f"{mbytes[top]:.0f} MB", (top, mbytes[top]), textcoords="offset points", xytext=(8, -4),
                fontsize=9)
    ax.set_title(f"im2col memory per 3x3 conv, U-Net {size}x{size}, float32, batch 1: "
                 f"C_in*9*H_out*W_out*4 bytes", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def tiny_training_run(weighted, epochs=4, seed=0):
    """The training page's experiment: a same-padding U-Net (8 channels, depth 2) on 64
    ``Shapes`` images of 32x32, Adam at 3e-3, batch 8, with a plain or a median-frequency
    weighted cross-entropy. Returns ``(model, history, (images, masks))``: ``history`` has
    the trainer's per-epoch keys (train_loss, val_loss, pixel_acc, mean_acc, mean_iou,
    fw_iou), scored on 32 held-out images, which are returned too."""
    import minisegnet as msn
    from minisegnet import functional as F, metrics, optim
    from ..data import DataLoader, Shapes
    from ..models import UNet

    train = Shapes(num_samples=64, size=32, seed=seed)
    val = Shapes(num_samples=32, size=32, seed=seed, split="val")
    masks = _np.stack([train[i][1] for i in range(len(train))])
    freq = _np.bincount(masks.ravel(), minlength=4) / masks.size
    weight = msn.tensor((_np.median(freq) / freq).astype(_np.float32)) if weighted else None
    images = _np.stack([val[i][0] for i in range(len(val))])
    truth = _np.stack([val[i][1] for i in range(len(val))])
    msn.manual_seed(seed)
    model = UNet(3, 4, base_channels=8, depth=2, padding="same")
    opt = optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for epoch in range(epochs):
        losses = []
        for x, y in DataLoader(train, batch_size=8, shuffle=True, seed=epoch):
            loss = F.cross_entropy(model(msn.tensor(x)), msn.tensor(y), weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with msn.no_grad():
            logits = model(msn.tensor(images))
            val_loss = F.cross_entropy(logits, msn.tensor(truth), weight=weight).item()
        model.train()
        scores = metrics.scores(metrics.confusion_matrix(logits.numpy().argmax(1), truth, 4))
        history.append(dict(epoch=epoch + 1, train_loss=float(_np.mean(losses)), val_loss=val_loss,
                            **{k: float(v) for k, v in scores.items()}))
    return model, history, (images, truth)


def save_training_figures(directory, epochs=4):
    """``training_curves.png`` and ``training_predictions.png``: what the trainer's
    ``curves.png`` and ``predictions.png`` look like (drawn by the same functions),
    for the weighted run of ``tiny_training_run``."""
    import os

    import minisegnet as msn
    from ..data import Shapes
    from .training import plot_curves, plot_predictions

    model, history, (images, truth) = tiny_training_run(weighted=True, epochs=epochs)
    model.eval()
    with msn.no_grad():
        preds = model(msn.tensor(images[:3])).numpy().argmax(1)
    curves = plot_curves(history, os.path.join(directory, "training_curves.png"))
    shapes_data = Shapes(num_samples=1, size=32)
    predictions = plot_predictions(images[:3], truth[:3], preds, shapes_data.palette,
                                   os.path.join(directory, "training_predictions.png"),
                                   class_names=list(Shapes.class_names))
    return [curves, predictions]


# The files the docs show, and the functions that draw them.
TEACHING_FIGURES = {
    "encoder_decoder.png": figure_encoder_decoder,
    "autograd_graph.png": figure_autograd_graph,
    "im2col.png": figure_im2col,
    "conv_arithmetic.png": figure_conv_arithmetic,
    "stride_ambiguity.png": figure_stride_ambiguity,
    "dilation.png": figure_dilation,
    "receptive_field.png": figure_receptive_field,
    "depthwise.png": figure_depthwise,
    "transposed_conv.png": figure_transposed_conv,
    "conv_matrix.png": figure_conv_matrix,
    "max_unpool.png": figure_max_unpool,
    "align_corners.png": figure_align_corners,
    "fcn_strides.png": figure_fcn_strides,
    "segnet_unpool.png": figure_segnet_unpool,
    "unet_trace.png": figure_unet_trace,
    "overlap_tile.png": figure_overlap_tile,
    "aspp.png": figure_aspp,
    "confusion_matrix.png": figure_confusion_matrix,
    "im2col_memory.png": figure_im2col_memory,
}


def conv_animation(path, size=5, kernel_size=3, stride=2, padding=1, dilation=1, fps=2):
    """An animated GIF of the kernel visiting every output pixel (Pillow writer)."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    o = _shapes.conv2d_output_size(size, kernel_size, stride, padding, dilation)
    positions = [(r, c) for r in range(o) for c in range(o)]
    fig = _new_figure(6.4, 4.4)      # drawn at 100 dpi: 640 x 440 pixels, readable as it is
    ax = fig.add_subplot(1, 1, 1)

    def frame(n):
        ax.clear()
        draw_conv(ax, size, kernel_size, stride, padding, dilation, at=positions[n])
        ax.text(size + 2 * padding + 1.5, size + 2 * padding + 0.6, f"output pixel {positions[n]}", fontsize=10,
                va="top")
        fig.tight_layout()

    anim = FuncAnimation(fig, frame, frames=len(positions))
    anim.save(path, writer=PillowWriter(fps=fps), dpi=100)
    plt.close(fig)


def save_teaching_figures(directory, gifs=True):
    """Write every figure in ``TEACHING_FIGURES`` (and the GIF) into ``directory``; returns the paths."""
    import os

    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    written = []
    for name, draw in TEACHING_FIGURES.items():
        fig = draw()
        path = os.path.join(directory, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    written += save_training_figures(directory)
    if gifs:
        path = os.path.join(directory, "conv_stride2.gif")
        conv_animation(path)
        written.append(path)
    return written
