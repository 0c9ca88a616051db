"""The convolution family's figures: conv arithmetic, stride and dilation, im2col,
the transposed conv and its matrix, depthwise-separable cost, im2col's memory,
and the animated kernel.

Geometry comes from ``minisegnet.shapes`` and numbers from the real ops, so a
figure cannot drift from the code it explains.
"""
import numpy as _np

from .. import shapes as _shapes
from .drawing import _INPUT, _KERNEL, _OUTPUT, _OUTPUT_HI, _PAD, _WARN, _ZERO, _cell, _fit, _grid_axes, _new_figure, _ops


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


def figure_depthwise(channels=8, kernel_size=3, cost_channels=64, cost_size=64):
    """Top: which input channels each output channel reads (``nn.Conv2d`` weight shape
    ``(C_out, C_in/groups, k, k)``) for groups = 1, 2 and C, and the pointwise 1x1.
    Bottom: a depthwise-separable conv is the depthwise conv *then* the pointwise
    one; its multiply-adds (from ``summary``) against a standard conv's."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from .. import nn
    from ..summary import summary

    cases = [("groups=1 (standard)", kernel_size, 1), ("groups=2", kernel_size, 2),
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
