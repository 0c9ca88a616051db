"""Claims the course and the model docstrings make that need more than a doc block:
each test measures the number the text states."""
import ast
import types
from pathlib import Path

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, shapes
from minisegnet.models import UNet
from minisegnet.models import unet as unet_module


def _input_rows_read(model, x_shape, pixel):
    """Which input rows output ``pixel`` (row, col) depends on, from the gradient
    (all weights positive, so no path cancels)."""
    x = msn.tensor(np.ones(x_shape, dtype=np.float32), requires_grad=True)
    model(x)[(0, 0) + pixel].backward()
    rows = np.flatnonzero(x.grad.numpy()[0, 0].any(axis=1))
    return int(rows.min()), int(rows.max())


@pytest.mark.parametrize("depth, size, padding", [(2, 44, "valid"), (4, 188, "valid"), (2, 24, "same")])
def test_unet_receptive_fields_are_what_the_gradient_reaches(monkeypatch, depth, size, padding):
    # A max-pool sends the gradient to one pixel of its window; the field is every pixel that can
    # matter, so measure through average pooling (the same windows).
    ops = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("_")})
    ops.max_pool2d = lambda x, kernel_size, stride: F.avg_pool2d(x, kernel_size, stride)
    monkeypatch.setattr(unet_module, "F", ops)
    msn.manual_seed(0)
    model = UNet(1, 1, base_channels=1, depth=depth, padding=padding)
    for p in model.parameters():
        p.data = (np.abs(p.data) + 0.1).astype(np.float32)
    fields = shapes.unet_receptive_fields(size, depth, padding)
    out = len(fields)
    assert out == shapes.unet_output_size(size, depth, padding)
    for row in sorted({0, 1, out // 2, out - 1}):
        assert _input_rows_read(model, (1, 1, size, size), (row, out // 2)) == fields[row]


def test_unet_572_fields_are_larger_than_the_184_it_loses():
    fields = shapes.unet_receptive_fields(572)
    assert len(fields) == 388
    sizes = [last - first + 1 for first, last in fields]
    assert sorted(set(sizes)) == [188, 204]
    # output pixel j sits over input pixel j + 92 and sees at least 92 rows on either side
    assert min(min(j + 92 - first, last - (j + 92)) for j, (first, last) in enumerate(fields)) == 92


def test_pytorch_default_init_has_a_sixth_of_hes_variance_and_shrinks_the_signal_6x_per_layer():
    """models/unet.py and models/fcn.py: Var(w) = 1/(3 fan_in) against He's 2/fan_in, and
    each conv + ReLU multiplies the mean square by fan_in Var(w) / 2 (1/6 against 1)."""
    from minisegnet import nn
    from minisegnet.models.unet import _he_init

    msn.manual_seed(0)
    fan_in = 64 * 9
    default = nn.Conv2d(64, 64, 3, padding=1).weight.numpy()
    he = _he_init(nn.Conv2d(64, 64, 3, padding=1)).weight.numpy()
    assert abs(default.var() * fan_in - 1 / 3) < 0.02 and abs(he.var() * fan_in - 2) < 0.1
    shrink = {}
    for name in ("default", "he"):
        x = msn.tensor(np.random.default_rng(0).standard_normal((2, 64, 24, 24)).astype(np.float32))
        steps = []
        for _ in range(6):
            conv = nn.Conv2d(64, 64, 3, padding=1)
            if name == "he":
                _he_init(conv)
            conv.bias.data = np.zeros_like(conv.bias.data)       # the weights' effect alone
            with msn.no_grad():
                y = F.relu(conv(x))
            steps.append(float((y.numpy() ** 2).mean() / (x.numpy() ** 2).mean()))
            x = y
        shrink[name] = float(np.exp(np.mean(np.log(steps))))     # per layer, geometric mean over 6
    # one draw of weights fluctuates by ~10% a layer; the zero-padded border shaves a few % more
    assert 0.12 < shrink["default"] < 0.19, shrink                # mean square / 6 ...
    assert 2.3 < shrink["default"] ** -0.5 < 2.9, shrink         # ... RMS / ~2.4, per layer
    assert 0.8 < shrink["he"] < 1.25, shrink                      # He keeps the scale


def test_figures_show_what_their_code_and_captions_say():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from minisegnet.instances import connected_components
    from minisegnet.viz import teaching

    # autograd page: the figure labels the shapes of the page's code, x and w (1, 3), b (3,)
    fig = teaching.figure_autograd_graph()
    labels = {t.get_text() for ax in fig.axes for t in ax.texts}
    at = {t.get_text(): t.get_position() for t in fig.axes[0].texts if t.get_text()}
    arrows = [(a.xyann, a.xy) for a in fig.axes[0].texts if not a.get_text() and hasattr(a, "xyann")]
    plt.close(fig)
    assert {"x (1, 3)", "w (1, 3)", "b (3,)"} <= labels
    # ... and an arrow runs from Sum to the loss, ending before the loss's label (it once started after it)
    (sum_x, y), (loss_x, loss_y) = at["Sum"], at["loss ()"]
    assert loss_y == y and any(sum_x < start[0] < end[0] < loss_x and start[1] == end[1] == y
                               for start, end in arrows)
    # unet page, overlap-tile: four 388-pixel tiles stepped by 384 on a 772 x 772 image, 4-pixel overlaps
    fig = teaching.figure_overlap_tile()
    tiling = fig.axes[0]
    tiles = [p for p in tiling.patches if p.get_label() == "output tile"]
    overlaps = [p for p in tiling.patches if p.get_label() == "overlap"]
    title = tiling.get_title()
    zoom_titles = [ax.get_title() for ax in fig.axes[1:]]
    plt.close(fig)
    assert sorted((p.get_x(), p.get_y()) for p in tiles) == [(0, 0), (0, 384), (384, 0), (384, 384)]
    assert {(p.get_width(), p.get_height()) for p in tiles} == {(388, 388)}
    assert sorted(min(p.get_width(), p.get_height()) for p in overlaps) == [4, 4]
    assert "772 x 772" in title and "step 384" in title
    assert zoom_titles == ["step 384 = 24 x 16: one grid, 4-px overlap", "step 388: tile (0,1)'s grid shifts by 4 px"]
    # segmentation types exercise: three cars, of which two touch, so the semantic map has two car blobs
    semantic, instance = teaching.street_scene()
    assert instance.max() == 3
    assert connected_components(semantic == 2, connectivity=4).max() == 2


def _col2im_calls(monkeypatch, run):
    """How many times the library's col2im runs during ``run()``."""
    from minisegnet.functional import conv as conv_module
    calls = []
    real = conv_module._col2im

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_module, "_col2im", counting)
    run()
    monkeypatch.setattr(conv_module, "_col2im", real)
    return len(calls)


@pytest.mark.parametrize("stride, c_in, c_out, runs_col2im", [
    (1, 3, 4, False),    # stride 1: a flipped-kernel conv of g, im2col + GEMM, no col2im
    (2, 3, 4, True),     # stride 2: W^T @ g, then col2im
    (1, 1, 4, True),     # stride 1 but C_out > 2 C_in: the flipped conv's columns would be larger
])
def test_what_the_conv_input_gradient_runs(monkeypatch, stride, c_in, c_out, runs_col2im):
    """docs/transposed-conv.md, "What the library runs"."""
    rng = np.random.default_rng(0)
    x = msn.tensor(rng.standard_normal((2, c_in, 9, 8)), requires_grad=True)
    w = msn.tensor(rng.standard_normal((c_out, c_in, 3, 3)))
    y = F.conv2d(x, w, stride=stride, padding=1)
    g = msn.tensor(rng.standard_normal(y.shape))
    assert (_col2im_calls(monkeypatch, lambda: y.backward(g)) > 0) == runs_col2im
    # and the transposed conv's forward is the same code
    up = lambda: F.conv_transpose2d(g, w, stride=stride, padding=1, output_padding=stride - 1)   # noqa: E731
    assert (_col2im_calls(monkeypatch, up) > 0) == runs_col2im
    # the shortcut is the "flip" lever: switched off, col2im runs at stride 1 too
    from minisegnet.functional import conv_fast
    previous = conv_fast.set_lever("flip", False)
    try:
        assert _col2im_calls(monkeypatch, up) > 0
    finally:
        conv_fast.set_lever("flip", previous)


def test_the_conv_animation_is_readable_at_its_native_size(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from PIL import Image

    from minisegnet.viz import teaching

    teaching.conv_animation(tmp_path / "conv.gif")
    with Image.open(tmp_path / "conv.gif") as gif:
        assert gif.size[0] >= 600 and gif.size[1] >= 400          # 10-point text at 100 dpi
        assert gif.n_frames == 9                                   # one frame per output pixel of 5 -> 3x3


def test_the_training_pages_figure_run_shows_what_its_caption_says():
    """docs/training.md, "Reading the curves": in the weighted 4-epoch run the figures draw,
    pixel accuracy dips in the last epoch while mean accuracy still climbs."""
    from minisegnet.viz.teaching import tiny_training_run

    history = tiny_training_run(weighted=True, epochs=4)[1]
    assert history[3]["pixel_acc"] < history[2]["pixel_acc"]
    assert history[3]["mean_acc"] > history[2]["mean_acc"]


def _library_imports(path):
    """What of minisegnet a source file imports, as absolute dotted names (``from .. import nn``
    in minisegnet/functional/x.py is "minisegnet.nn")."""
    root = Path(msn.__file__).parent
    package = path.relative_to(root.parent).with_suffix("").parts[:-1]       # e.g. ("minisegnet", "functional")
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [n for n in names if n == "minisegnet" or n.startswith("minisegnet.")]


def test_no_layer_reaches_upward():
    """docs/design.md: functional never imports nn, nn never imports models, and shapes
    imports nothing of the library."""
    root = Path(msn.__file__).parent
    rules = {"functional": ("minisegnet.nn", "minisegnet.models"), "nn": ("minisegnet.models",)}
    for folder, banned in rules.items():
        for path in sorted((root / folder).glob("*.py")):
            bad = [n for n in _library_imports(path) if n.startswith(banned)]
            assert not bad, f"{path.name} in {folder}/ imports {bad}"
    assert _library_imports(root / "shapes.py") == []
    # relative imports are resolved (nn/conv.py's "from .. import functional" is seen)
    assert any(n.startswith("minisegnet.functional") for n in _library_imports(root / "nn" / "conv.py"))
