"""Pooling, resizing and the models' figures: max-unpooling, ``align_corners``,
U-Net's size trace and overlap tiles, receptive fields, FCN's strides,
SegNet's unpooling, the encoder-decoder, DeepLab's ASPP, and the toy street scene.

Geometry comes from ``minisegnet.shapes`` and numbers from the real models.
"""
import numpy as _np

from .. import shapes as _shapes
from .drawing import _INPUT, _KERNEL, _OUTPUT, _OUTPUT_HI, _WARN, _ZERO, _cell, _fit, _grid_axes, _new_figure, _ops


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


def figure_overlap_tile(size=572, depth=4):
    """Overlap-tile: each output tile of the valid U-Net needs an input window larger by
    the border it loses (92 pixels a side at 572 -> 388); at the image border the
    missing context is mirrored. The tiles step by the largest multiple of ``2**depth``
    that fits in the output tile (384 for 388), so all windows share one pooling grid and
    neighbouring output tiles overlap by the remainder (4 pixels); the two small panels
    zoom on a seam, stepped by 384 and, wrongly, by 388."""
    from matplotlib.patches import Rectangle

    out = _shapes.unet_output_size(size)
    border = (size - out) // 2
    period = 2 ** depth
    step = out - out % period                      # 384: the pooling grid's period fits
    image = step + out                             # two tiles per axis: 772
    fig = _new_figure(11.5, 6.2)
    grid = fig.add_gridspec(2, 2, width_ratios=[1.45, 1], hspace=0.5, wspace=0.3, left=0.01, right=0.98,
                            top=0.92, bottom=0.1)
    ax = fig.add_subplot(grid[:, 0])
    ax.add_patch(Rectangle((-border, -border), image + 2 * border, image + 2 * border, facecolor="#f2f0f7",
                           edgecolor="#756bb1", ls="--", lw=1.2))
    ax.add_patch(Rectangle((0, 0), image, image, facecolor=_INPUT, edgecolor="#333", lw=1.5))
    for r in range(2):
        for c in range(2):
            face = _OUTPUT if (r, c) == (0, 0) else "none"
            ax.add_patch(Rectangle((c * step, r * step), out, out, facecolor=face, edgecolor="#333", lw=1,
                                   alpha=0.8, label="output tile"))
    overlap = out - step
    ax.add_patch(Rectangle((step, 0), overlap, image, facecolor=_WARN, edgecolor="none", label="overlap"))
    ax.add_patch(Rectangle((0, step), image, overlap, facecolor=_WARN, edgecolor="none", label="overlap"))
    ax.add_patch(Rectangle((-border, -border), size, size, fill=False, edgecolor=_KERNEL, lw=2.5))
    ax.add_patch(Rectangle((step - border, step - border), size, size, fill=False, edgecolor=_WARN, lw=2, ls=":"))
    ax.text(out / 2, out / 2, f"output tile\n{out} x {out}", ha="center", va="center", fontsize=10)
    ax.text(-border + 8, -border + 30, f"input window {size} x {size}", fontsize=10, color=_KERNEL)
    ax.text(image / 2, image + border / 2, f"mirrored border: {border} px", ha="center", va="center",
            fontsize=10, color="#756bb1")
    ax.text(step + out / 2, step + out / 2, "tile (1,1)'s window\n(dotted) overlaps\nits neighbours'",
            ha="center", va="center", fontsize=9, color=_WARN)
    ax.text(size - border + 12, out / 2 - 60, f"tiles step {step};\nred: {overlap}-px overlaps",
            fontsize=9, color=_WARN, va="center")
    ax.set_xlim(-border - 20, image + border + 20)
    ax.set_ylim(image + border + 20, -border - 20)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"Overlap-tile on a {image} x {image} image: {size} in, {out} out, border {border}, "
                 f"step {step}", fontsize=10)
    # the seam between tiles (0,0) and (0,1), for the right step and for the output size
    lo, hi = step - 3 * period, out + 3 * period
    for row, tile_step in enumerate((step, out)):
        zoom = fig.add_subplot(grid[row, 1])
        for band, start in enumerate((0, tile_step)):           # output tile (0,0), then (0,1)
            y = 1 - band
            window = start - border
            zoom.add_patch(Rectangle((start, y - 0.3), out, 0.6, facecolor=_OUTPUT if band == 0 else _INPUT,
                                     edgecolor="#333", lw=1))
            for tick in range(window, window + size + 1, period):
                if lo <= tick <= hi:
                    zoom.plot([tick, tick], [y - 0.42, y + 0.42], color="#333", lw=1.2)
        shift = tile_step % period
        verdict = (f"step {tile_step} = {tile_step // period} x {period}: one grid, {out - tile_step}-px overlap"
                   if shift == 0 else f"step {tile_step}: tile (0,1)'s grid shifts by {shift} px")
        zoom.set_title(verdict, fontsize=9, color="#333" if shift == 0 else _WARN)
        zoom.set_xlim(lo, hi)
        zoom.set_ylim(-0.6, 1.6)
        zoom.set_yticks([1, 0], [f"tile (0,{band})\nwindow from {start - border}"
                                 for band, start in enumerate((0, tile_step))], fontsize=8)
        zoom.tick_params(axis="y", length=0)
        zoom.tick_params(labelsize=8)
        for side in ("left", "right", "top"):
            zoom.spines[side].set_visible(False)
    fig.text(0.57, 0.02, f"ticks: every {period} px (2**depth) from each tile's window start; "
             "x: image pixels", fontsize=8, color="#555")
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
    """What an exact coarse score map gives at stride 32, 16 or 8: the true mask one-hot
    encoded, average-pooled to the stride (``F.avg_pool2d``: each class's share of each
    block), upsampled bilinearly back (``F.interpolate``) and arg-maxed, scored with
    ``metrics.mean_iou``. Not the best map of each stride (docs/fcn.md), the same recipe at each."""
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
                     f"mean IU {miou:.3f}", fontsize=10)
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
    2x2 pools, 2x2 up-convs), each box ``size x size x channels``, from ``shapes``."""
    from matplotlib.patches import Rectangle

    steps, s = [("input", size, 3)], size
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
