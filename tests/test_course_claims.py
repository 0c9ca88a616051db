"""Claims the course and the model docstrings make that need more than a doc block:
each test measures the number the text states."""
import ast
import inspect
import collections
import json
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F, shapes
from minisegnet.functional import conv as conv_module, conv_fast, conv_row_taps, sampling
from minisegnet.models import UNet
from minisegnet.models import unet as unet_module
import re


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
    (1, 1, 2, False),    # exactly twice as many (the transposed conv's inputs): still flipped
    (1, 1, 3, True),     # one more: W^T @ g and col2im
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


# ---- numbers the pages state (each test quotes its sentence) --------------------------------
_DOCS = Path(__file__).resolve().parent.parent / "docs"
_FIGURES = _DOCS / "figures"


def test_the_commands_augmentations_have_the_settings_the_sampling_page_states():
    """sampling.md: "the command's defaults (`data.AUGMENTATIONS`: 15 degrees, 0.9-1.1, shear 5;
    0.2)", "the default `padding_mode="reflection"`", and the paper's "3x3 grid ... standard
    deviation of 10 pixels"."""
    from minisegnet import data
    from minisegnet.data import transforms as T

    affine = data.AUGMENTATIONS["affine"]()
    assert (affine.degrees, affine.scale, affine.shear) == ((-15.0, 15.0), (0.9, 1.1), (-5.0, 5.0))
    color = data.AUGMENTATIONS["color"]()
    assert color.brightness == color.contrast == color.gamma == (0.8, 1.2)
    elastic = data.AUGMENTATIONS["elastic"]()
    assert (elastic.sigma, elastic.points) == (10.0, 3)
    assert T.RandomElastic().padding_mode == T.RandomAffine().padding_mode == "reflection"


def test_the_preview_figure_is_drawn_with_the_stronger_settings_the_sampling_page_states(monkeypatch):
    """sampling.md: the preview "with a stronger affine map (20 degrees, scale 0.85-1.15, shear 10)
    and colour jitter (0.3)"."""
    from minisegnet.viz import sampling as viz_sampling

    seen = []
    monkeypatch.setattr(viz_sampling, "plot_augment_preview",
                        lambda image, mask, transforms, rng, **kw: seen.extend(transforms))
    viz_sampling.figure_augment_preview()
    assert [name for name, _ in seen] == ["elastic", "elastic", "affine", "affine", "color"]
    for name, t in seen:
        if name == "affine":
            assert (t.degrees, t.scale, t.shear) == ((-20.0, 20.0), (0.85, 1.15), (-10.0, 10.0))
        if name == "color":
            assert t.brightness == t.contrast == t.gamma == (0.7, 1.3)


def _kink_at_the_middle(weights):
    """The control values (0, 1, 0) interpolated to 65 pixels: the field's second difference at the
    middle control point (pixel 32) against the larger of those two pixels to either side (about 1
    where the slope turns gradually, large where it jumps at that pixel only)."""
    second = np.diff(weights @ np.array([0.0, 1.0, 0.0]), 2)        # second[i] is centred on pixel i + 1
    return abs(second[31]) / max(abs(second[29]), abs(second[33]), 1e-12)


def test_the_bicubic_field_has_a_continuous_slope_and_a_bilinear_one_a_kink():
    """sampling.md: bicubic, "the field and its slope are continuous ... Bilinear interpolation of
    the same nine vectors is continuous but its slope jumps along the control grid's middle row
    and column"."""
    from minisegnet.data import transforms as T

    src = np.arange(65) * 2 / 64
    tent = np.clip(1 - np.abs(src[:, None] - np.arange(3)[None, :]), 0, None)      # bilinear weights
    assert _kink_at_the_middle(np.asarray(T.bicubic_weights(65, 3))) < 1.5
    assert _kink_at_the_middle(tent) > 100


def test_float16_loses_the_bilinear_fraction_on_a_2048_pixel_row():
    """sampling.md (and ``warp``'s docstring): "past 1024 its pixel coordinates are a whole pixel
    apart (1500.3 is 1500), and the normalised ones near the edges half a pixel"."""
    pixel = 2 / 2048                                   # a pixel's width in normalised units
    assert np.spacing(np.float16(0.75)) / pixel == 0.5
    assert np.spacing(np.float16(1500.0)) == 1.0 and float(np.float16(1500.3)) == 1500.0


def test_the_elastic_tables_other_numbers_are_the_records():
    """sampling.md, "Does elastic deformation help with few images?": "96 held-out images", "batch
    5", final losses "0.12-0.15" (sigma 10) and "0.08" (sigma 1.25), "3.4 to 4.1 times as high at
    10", and "7.2% at 1.25 pixels, 7.8% at 10" (the page's block accepts either number for either)."""
    recorded = json.loads((_FIGURES / "elastic_few_images.json").read_text())
    runs = recorded["runs"]
    assert recorded["val_images"] == 96 and "batch 5" in recorded["setting"]
    loss = {key: [r["last_loss"] for r in runs[key]] for key in runs}
    assert (round(min(loss["sigma 10 px"]), 2), round(max(loss["sigma 10 px"]), 2)) == (0.12, 0.15)
    assert {round(v, 2) for v in loss["sigma 1.25 px"]} == {0.08}
    ratios = np.array(loss["sigma 10 px"]) / np.mean(loss["without"])
    assert (round(ratios.min(), 1), round(ratios.max(), 1)) == (3.4, 4.1)
    seconds = {key: np.mean([r["seconds"] for r in runs[key]]) for key in runs}
    more = {key: round(100 * (seconds[key] / seconds["without"] - 1), 1) for key in ("sigma 1.25 px", "sigma 10 px")}
    assert more == {"sigma 1.25 px": 7.2, "sigma 10 px": 7.8}


def test_a_cells_image_has_5_to_10_cells_walled_two_pixels_thick():
    """instances.md: "a `Cells` image draws 5 to 10 cells"; touching cells have "a wall of
    membrane between them, two pixels thick along rows and columns": along every row and
    column two cells' interiors are at least 2 pixels apart, and somewhere exactly 2."""
    from minisegnet import data

    ds = data.Cells(60, 64, return_instances=True)
    counts, thinnest = set(), np.inf
    for i in range(len(ds)):
        ids = ds[i][2]
        counts.add(len(np.unique(ids[ids > 0])))
        for line in np.concatenate([ids, ids.T]):
            where = np.flatnonzero(line > 0)
            other = line[where[1:]] != line[where[:-1]]          # consecutive interiors of two cells
            if other.any():
                thinnest = min(thinnest, int((np.diff(where)[other] - 1).min()))
    assert counts <= set(range(5, 11)) and {5, 10} <= counts
    assert thinnest == 2


def test_ids_above_64_are_renumbered_first(monkeypatch):
    """instances.md: "a map whose largest id exceeds `panoptic.RENUMBER_ABOVE` = 64 ... is first
    renumbered 1 .. K per image"."""
    from minisegnet import panoptic

    assert panoptic.RENUMBER_ABOVE == 64
    largest_seen = []
    renumber = panoptic.renumber
    monkeypatch.setattr(panoptic, "renumber", lambda ids: largest_seen.append(int(ids.max())) or renumber(ids))
    for largest in (64, 65):
        ids = np.zeros((1, 8, 8), np.int64)
        ids[0, 1:3, 1:3], ids[0, 5:7, 5:7] = 17, largest
        panoptic.panoptic_targets(ids)
    assert largest_seen == [65]


def test_the_numbers_the_instances_page_states_of_the_task_and_model():
    """instances.md: "We use `sigma = 3` pixels, ... raise the centre weight from the paper's 200
    to 2000 and the offset weight from 0.01 to 1", "the model's x4 offset scale", "the paper's 5x5
    depthwise-separable head"; "`top_k = 32`", "stuff regions under 4 pixels"."""
    from minisegnet import panoptic
    from minisegnet.models import PanopticDeepLab, panoptic_deeplab
    from minisegnet.tasks import panoptic as task

    assert panoptic.SIGMA == 3 and task.PanopticTask.sigma == 3
    assert (task.CENTER_LOSS_WEIGHT, task.OFFSET_LOSS_WEIGHT) == (2000, 1)
    assert panoptic_deeplab.OFFSET_SCALE == 4
    assert (panoptic.NMS_KERNEL, panoptic.THRESHOLD, panoptic.TOP_K, panoptic.MIN_STUFF_AREA) == (7, 0.1, 32, 4)
    model = PanopticDeepLab(3, 4, output_stride=8, atrous_rates=(1, 2, 3))
    for head in (model.center_head, model.offset_head):
        assert head[0].depthwise.kernel_size == (5, 5) and head[0].depthwise.groups == head[0].in_channels


def test_the_measured_runs_settings_are_the_instances_pages():
    """instances.md: the weight-map example on "256 training images of 64x64 ... 8 epochs ... 64
    held-out images", "load average 0.0 at the start, 1.5 at the end"; Panoptic-DeepLab "on 512
    `Shapes` images of 64 x 64 for 8 epochs (batch 4) and scores 48 held-out images", on "a quiet
    2-core CPU". The page's blocks check these records' scores, not their settings."""
    weight_map = json.loads((_FIGURES / "unet_weight_map_cells.json").read_text())
    assert weight_map["settings"] == {"size": 64, "train_images": 256, "val_images": 64, "epochs": 8,
                                      "seeds": [0, 1, 2]}
    assert (round(weight_map["load_start"], 1), round(weight_map["load_end"], 1)) == (0.0, 1.5)
    shapes_run = json.loads((_FIGURES / "panoptic_deeplab_shapes.json").read_text())
    assert shapes_run["settings"] == {"size": 64, "train_images": 512, "val_images": 48, "epochs": 8,
                                      "batch_size": 4}
    assert shapes_run["cpus"] == 2


def test_a_default_stride_1_conv_on_numpy_runs_row_taps_not_conv_pys_im2col_and_gemm(monkeypatch):
    """What the course's im2col code is, at run time, by default on NumPy: a 3x3 conv at stride 1
    (forward, input gradient, weight gradient) goes by conv_row_taps.py and never calls
    conv._im2col, conv._gemm_forward, conv._gemm_weight_grad or conv._col2im; at stride 2 the
    columns come from conv_fast._im2col_unpadded (not conv._im2col) and the products are conv.py's."""
    if msn.get_backend() != "numpy":
        pytest.skip("the row_taps and unpadded levers are NumPy's")
    calls = collections.Counter()
    for module, name in [(conv_module, "_im2col"), (conv_module, "_gemm_forward"), (conv_module, "_col2im"),
                         (conv_module, "_gemm_weight_grad"), (conv_module, "_gemm_transposed"),
                         (conv_row_taps, "forward"), (conv_row_taps, "weight_grad"),
                         (conv_fast, "_im2col_unpadded")]:
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _key=f"{module.__name__.rsplit('.', 1)[-1]}.{name}", **k:
                            calls.update([_key]) or _real(*a, **k))
    rng = np.random.default_rng(0)
    for stride in (1, 2):
        calls.clear()
        x = msn.tensor(rng.standard_normal((2, 3, 16, 16)).astype(np.float32), requires_grad=True)
        w = msn.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
        F.conv2d(x, w, padding=1, stride=stride).sum().backward()
        assert calls["conv._im2col"] == 0 and calls["conv_fast._im2col_unpadded"] > 0
        if stride == 1:
            assert calls["conv_row_taps.forward"] == 2 and calls["conv_row_taps.weight_grad"] == 1
            assert not (calls["conv._gemm_forward"] or calls["conv._gemm_weight_grad"] or calls["conv._col2im"])
        else:
            assert calls["conv._gemm_forward"] and calls["conv._gemm_transposed"] and calls["conv._col2im"]


_ROOT = Path(msn.__file__).resolve().parent
_DESIGN = _ROOT.parent / "docs" / "design.md"


def _module_map():
    """The names in design.md's code map (the first ``` block of section 1), as written there."""
    text = _DESIGN.read_text()
    block = text.split("## 1. Architecture", 1)[1].split("```", 2)[1]
    return block, set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*\.py|[A-Za-z_]+/", block))


def test_the_design_pages_module_map_lists_every_module_and_only_modules_that_exist():
    """design.md: "This page is the map of the code: which module holds which idea"; a module
    added to (or removed from) minisegnet/ or minisegnet/functional/ must be added to (removed
    from) the map."""
    block, names = _module_map()
    on_disk = {p.name for p in _ROOT.glob("*.py")} | {p.name for p in (_ROOT / "functional").glob("*.py")
                                                      if p.name != "__init__.py"}
    on_disk |= {p.name + "/" for p in _ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    missing = sorted(n for n in on_disk if n not in names)
    assert not missing, f"design.md's map does not name {missing}"
    listed_py = {n for n in names if n.endswith(".py")}
    known = on_disk | {p.name for p in _ROOT.rglob("*.py")}
    extra = sorted(n for n in listed_py if n not in known and n != "pyproject.py")
    assert not extra, f"design.md's map names {extra}, which do not exist"


def test_the_confusion_matrix_figure_shows_the_metrics_pages_matrix_and_class_1s_iu():
    """docs/metrics.md: cm == [[45, 5, 0], [6, 24, 0], [0, 4, 16]], IU_1 = 24 / (30 + 33 - 24)."""
    import matplotlib.pyplot as plt

    from minisegnet.viz.teaching import figure_confusion_matrix

    fig = figure_confusion_matrix()
    texts = [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
    assert [t for t in texts if t.isdigit()] == ["45", "5", "0", "6", "24", "0", "0", "4", "16"]
    assert "IU = n_11 / (t_1 + col - n_11) = 24 / (30 + 33 - 24) = 0.615" in texts


def test_the_receptive_field_figure_is_log_scale_and_ends_where_the_page_says():
    """docs/receptive-field.md: two 3x3 convs see 5; rates 1, 2, ..., 2**(n-1) reach 2**(n+1) - 1."""
    import matplotlib.pyplot as plt

    from minisegnet.viz.teaching import figure_receptive_field

    fig = figure_receptive_field()
    ax = fig.axes[0]
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.lines}
    scale = ax.get_yscale()
    plt.close(fig)
    assert scale == "log"
    assert lines["3x3 convs, stride 1"] == [1 + 2 * n for n in range(9)]
    assert lines["3x3 convs, dilation 1, 2, 4, ..."] == [2 ** (n + 1) - 1 for n in range(9)]


def test_the_fcn_strides_figure_runs_coarse_to_fine_and_finer_scores_higher():
    """docs/fcn.md: "block-average score maps at stride 32, 16, 8", and the ordering below."""
    import re

    import matplotlib.pyplot as plt

    from minisegnet.viz.teaching import figure_fcn_strides

    fig = figure_fcn_strides()
    titles = [ax.get_title() for ax in fig.axes[1:]]
    plt.close(fig)
    assert [t.split(" (")[0] for t in titles] == ["stride 32", "stride 16", "stride 8"]
    ious = [float(re.search(r"mean IU ([0-9.]+)", t).group(1)) for t in titles]
    assert ious[0] < ious[1] < ious[2]


@pytest.mark.parametrize("gifs", [False, True])
def test_save_teaching_figures_writes_every_file_it_lists_and_closes_each_figure(tmp_path, monkeypatch, gifs):
    import matplotlib.pyplot as plt

    from minisegnet.viz import teaching
    from minisegnet.viz.drawing import _new_figure

    animations = []
    monkeypatch.setattr(teaching, "TEACHING_FIGURES", {"a.png": lambda: _new_figure(1, 1)})
    monkeypatch.setattr(teaching, "save_training_figures", lambda d: [str(tmp_path / "training_curves.png")])
    monkeypatch.setattr(teaching, "conv_animation", lambda path: animations.append(str(path)))
    open_before = plt.get_fignums()
    written = teaching.save_teaching_figures(str(tmp_path), gifs=gifs)
    assert plt.get_fignums() == open_before
    gif = [str(tmp_path / "conv_stride2.gif")] if gifs else []
    assert written == [str(tmp_path / "a.png"), str(tmp_path / "training_curves.png")] + gif
    assert animations == gif and (tmp_path / "a.png").stat().st_size > 0


def test_conv_animation_closes_its_figure(tmp_path):
    import matplotlib.pyplot as plt

    from minisegnet.viz.teaching import conv_animation

    open_before = plt.get_fignums()
    conv_animation(tmp_path / "conv.gif", size=3, padding=0, stride=1)
    assert plt.get_fignums() == open_before and (tmp_path / "conv.gif").exists()


def test_the_training_figures_show_the_weighted_runs_predictions_of_the_images_shown(tmp_path, monkeypatch):
    """docs/training.md's figures: the weighted run, its predictions of the very images beside
    them, with Shapes' class names."""
    from minisegnet.data import Shapes
    from minisegnet.viz import course_training_figures as ctf
    from minisegnet.viz import training as viz_training

    class Guess:                          # predicts class i for every pixel of image i (its value i / 10)
        def eval(self):
            return self

        def __call__(self, x):
            index = np.rint(np.asarray(x.numpy())[:, 0, 0, 0] * 10).astype(int) % 4
            return msn.tensor(np.eye(4)[index][:, :, None, None] * np.ones((1, 1, 4, 4)))

    images = np.arange(6).reshape(6, 1, 1, 1) / 10 * np.ones((6, 3, 4, 4))
    truth = np.zeros((6, 4, 4), np.int64)
    history = [dict(epoch=1, train_loss=1.0, mean_iou=0.5)]
    runs, drawn = [], {}
    monkeypatch.setattr(ctf, "tiny_training_run",
                        lambda weighted, epochs: runs.append(weighted) or (Guess(), history, (images, truth)))
    monkeypatch.setattr(viz_training, "plot_curves", lambda h, path: drawn.update(history=h) or path)
    monkeypatch.setattr(viz_training, "plot_predictions", lambda *a, **kw: drawn.update(args=a, kw=kw) or a[4])
    written = ctf.save_training_figures(str(tmp_path))
    assert runs == [True] and drawn["history"] is history
    shown, masks, preds = drawn["args"][:3]
    np.testing.assert_array_equal(shown, images[:3])
    np.testing.assert_array_equal(masks, truth[:3])
    np.testing.assert_array_equal(preds, np.arange(3)[:, None, None] * np.ones((1, 4, 4)))
    assert drawn["kw"]["class_names"] == list(Shapes.class_names)
    assert [p.rsplit("/", 1)[-1] for p in written] == ["training_curves.png", "training_predictions.png"]


def test_draw_conv_draws_the_padded_input_the_taps_and_the_output_pixel_it_names():
    """conv_arithmetic.png: i=5, k=3, s=2, p=1 pads to 7x7 and gives a 3x3 output, one pixel highlighted."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from minisegnet.viz import drawing
    from minisegnet.viz.teaching import draw_conv

    fig = drawing._new_figure(4, 3)
    ax = fig.add_subplot(1, 1, 1)
    o = draw_conv(ax, 5, kernel_size=3, stride=2, padding=1, at=(1, 2))
    faces = [p.get_facecolor() for p in ax.patches if p.get_fill()]
    title = ax.get_title()
    plt.close(fig)
    assert o == 3 and len(faces) == 7 * 7 + 3 * 3
    assert faces.count(to_rgba(drawing._KERNEL)) == 9 and faces.count(to_rgba(drawing._OUTPUT_HI)) == 1
    assert title.endswith("o = floor((5 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 3")


def test_the_unet_trace_figure_quotes_the_papers_sizes():
    """The U-Net paper's figure 1: 572 -> 388, skips cropped 568 -> 392, 280 -> 200, 136 -> 104, 64 -> 56."""
    import matplotlib.pyplot as plt

    from minisegnet.viz.teaching import figure_unet_trace

    fig = figure_unet_trace()
    ax = fig.axes[0]
    texts, title = {t.get_text() for t in ax.texts}, ax.get_title()
    plt.close(fig)
    assert "572 -> 388" in title
    assert {"copy and crop 568 -> 392", "copy and crop 280 -> 200", "copy and crop 136 -> 104",
            "copy and crop 64 -> 56"} <= texts


def test_the_weight_map_figure_shows_the_class_map_and_the_weight_map_of_its_image():
    """unet_weight_map.png: (c) the classes of the image shown, (d) its w(x) with its maximum."""
    from minisegnet.data import Cells
    from minisegnet.instances import unet_weight_map
    from minisegnet.viz.instances import figure_weight_map

    fig = figure_weight_map(size=48, index=1)
    image, mask, ids = Cells(16, 48, seed=0, return_instances=True)[1]
    w = unet_weight_map(mask, ids)
    axes = fig.axes
    np.testing.assert_allclose(axes[2].images[0].get_array(), np.asarray(Cells(1, 48).palette)[mask] / 255.0)
    np.testing.assert_allclose(axes[3].images[0].get_array(), w)
    assert axes[3].get_title() == f"(d) weight map w(x), max {w.max():.1f}"


# ---- guarantees.md -------------------------------------------------------------------------
def test_the_messages_guarantees_md_quotes_are_the_messages():
    """guarantees.md:14 "add: shapes (3,) and (4,) do not broadcast: aligned from the last axis,
    sizes 3 and 4 differ and neither is 1"; :20 "`shapes.unet_trace(572, 33)` says `depth=33 is
    deeper than MAX_UNET_DEPTH = 32: ...`". (Only the sigmoid, dropout, softmax and pad lines are
    asserted by the page's own block.)"""
    a, b = msn.tensor(np.ones(3, np.float32)), msn.tensor(np.ones(4, np.float32))
    with pytest.raises(ValueError) as error:
        a + b
    assert str(error.value) == ("add: shapes (3,) and (4,) do not broadcast: aligned from the last axis, "
                                "sizes 3 and 4 differ and neither is 1")
    with pytest.raises(ValueError) as error:
        shapes.unet_trace(572, 33)
    assert str(error.value).startswith("depth=33 is deeper than MAX_UNET_DEPTH = 32: ")
    assert shapes.MAX_UNET_DEPTH == 32 and shapes.MAX_LISTED_SIZES == 10**6     # guarantees.md:248-253


def test_float16_times_1e5_is_inf_here_and_about_100_in_pytorch(torch):
    """guarantees.md:114-117: "float16 `x * 1e5` is inf here for every x, PyTorch's 100.0625 for
    x = 0.001, float16's 0.0010004 times 1e5 rounded once"."""
    with np.errstate(over="ignore"):
        assert (msn.tensor(np.array([0.001], np.float16)) * 1e5).item() == np.inf
    theirs = (torch.tensor([0.001], dtype=torch.float16) * 1e5).item()
    assert theirs == 100.0625


def test_pytorch_pads_an_integer_tensor_with_a_float_fill_truncated_toward_zero(torch):
    """guarantees.md:151-152: "A float fill is truncated toward zero there, as in PyTorch (1.5 pads 1)"."""
    ours = F.pad(msn.tensor(np.ones((1, 2), np.int32)), (1, 1), value=1.5).numpy().tolist()
    theirs = torch.nn.functional.pad(torch.ones(1, 2, dtype=torch.int32), (1, 1), value=1.5).tolist()
    assert ours == theirs == [[1, 1, 1, 1]]


# ---- autograd.md ---------------------------------------------------------------------------
def test_a_graph_that_saved_nothing_is_walked_once_here_twice_in_pytorch(torch):
    """autograd.md:182-184: "(here even through a graph whose nodes saved nothing, such as
    `(x + 1).sum()`, which PyTorch lets through twice: one rule is easier to learn)"."""
    x = msn.tensor(np.array([1.0]), requires_grad=True)
    loss = (x + 1).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()
    tx = torch.tensor([1.0], requires_grad=True)
    tloss = (tx + 1).sum()
    tloss.backward()
    tloss.backward()                                  # no error in PyTorch: the gradients add up
    assert tx.grad.tolist() == [2.0]


def test_a_write_through_data_is_not_caught_here_nor_in_pytorch(torch):
    """autograd.md:88-89: "Not caught: a write through `.data` (PyTorch does not track those
    either)": both use the written value, 2 * 5 = 10, where the forward saw 1."""
    v = msn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (v * v).sum()
    v.data[0] = 5.0
    loss.backward()
    tv = torch.tensor([1.0, 2.0], requires_grad=True)
    tloss = (tv * tv).sum()
    tv.data[0] = 5.0
    tloss.backward()
    assert v.grad.numpy().tolist() == tv.grad.tolist() == [10.0, 4.0]


def test_a_write_to_the_leaf_of_leaf_times_constant_is_not_an_error_but_to_the_constant_is(torch):
    """autograd.md:86-88: "An op that saved nothing of it is unaffected: ... `w * c` with a
    constant `c` (it keeps only `c`, as PyTorch does)"."""
    w = msn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = msn.tensor(np.array([3.0, 4.0]))
    loss = (w * c).sum()
    with msn.no_grad():
        w -= 1.0
    loss.backward()
    assert w.grad.numpy().tolist() == [3.0, 4.0]
    w.grad = None
    loss = (w * c).sum()
    with msn.no_grad():
        c -= 1.0                                     # what Mul did keep: refused
    with pytest.raises(RuntimeError, match="changed in place since"):
        loss.backward()


def test_gradchecks_eps_and_atol_are_pytorchs_and_its_rtol_ten_times_stricter(torch):
    """autograd.md:144-145: "`eps=1e-6` and `atol=1e-5` are PyTorch's; `rtol=1e-4` is ten times
    stricter than PyTorch's `1e-3`"; :148-149 "a float32 input is a `TypeError` (PyTorch warns,
    then fails the check)"."""
    from minisegnet.testing import gradcheck
    ours = inspect.signature(gradcheck).parameters
    theirs = inspect.signature(torch.autograd.gradcheck).parameters
    assert ours["eps"].default == theirs["eps"].default == 1e-6
    assert ours["atol"].default == theirs["atol"].default == 1e-5
    assert theirs["rtol"].default == 1e-3 and ours["rtol"].default == theirs["rtol"].default / 10
    x = torch.randn(3, 4, dtype=torch.float32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        passed = torch.autograd.gradcheck(lambda t: t ** 3, (x,), raise_exception=False)
    assert not passed and any("double precision" in str(w.message) for w in caught)


def test_reading_a_computed_tensors_grad_warns_as_pytorch(torch):
    """autograd.md:45-48: a computed tensor's `.grad` "is None, and reading it warns (a
    `UserWarning`, as PyTorch warns; PyTorch's `retain_grad()` has no twin here)"."""
    x = msn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning):
        assert y.grad is None
    assert not hasattr(y, "retain_grad")


# ---- transposed-conv.md --------------------------------------------------------------------
@pytest.mark.parametrize("stride, dilation, output_padding", [(2, 1, 1), (1, 2, 1), (2, 3, 2)])
def test_output_padding_below_max_of_stride_and_dilation_as_pytorch(torch, stride, dilation, output_padding):
    """transposed-conv.md:11 "0 <= output_padding < max(s, d)" and :200-201 "PyTorch also
    accepts `s .. d-1` when the dilation `d` is larger than the stride"; max(s, d) itself is refused."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 3, 3, 3))
    kw = dict(stride=stride, dilation=dilation)
    ours = F.conv_transpose2d(msn.tensor(x), msn.tensor(w), output_padding=output_padding, **kw).numpy()
    theirs = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w),
                                                  output_padding=output_padding, **kw).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"must be smaller than max\(stride, dilation\)"):
        F.conv_transpose2d(msn.tensor(x), msn.tensor(w), output_padding=max(stride, dilation), **kw)


def test_a_row_beyond_the_full_result_holds_the_bias_alone():
    """transposed-conv.md:199-200: "a row beyond the full result (`output_padding > padding`) is
    written by no input pixel and holds 0 (the bias alone, with one)"."""
    ones = msn.tensor(np.ones((1, 1, 3, 3)))
    out = F.conv_transpose2d(ones, ones, msn.tensor(np.array([0.5])), stride=2, output_padding=1).numpy()[0, 0]
    assert out.shape == (8, 8)
    assert (out[-1] == 0.5).all() and (out[:, -1] == 0.5).all() and (out[:-1, :-1] > 0.5).all()


def test_zero_insertion_at_a_dilation_pads_by_d_k_minus_1_minus_p():
    """transposed-conv.md:100-103: zero insertion "pad by `d(k-1) - p` on each side ... and run a
    stride-1 convolution at the same dilation `d` with the kernel flipped" (the page's block
    checks d = 1 only)."""
    rng = np.random.default_rng(0)
    s, k, p, d = 2, 3, 1, 2
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 3, k, k))
    y = F.conv_transpose2d(msn.tensor(x), msn.tensor(w), stride=s, padding=p, dilation=d).numpy()
    z = np.zeros((1, 2, 3 * s + 1, 3 * s + 1))
    z[:, :, ::s, ::s] = x
    q = d * (k - 1) - p
    z = np.pad(z, ((0, 0), (0, 0), (q, q), (q, q)))
    flipped = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].copy()
    assert np.allclose(F.conv2d(msn.tensor(z), msn.tensor(flipped), dilation=d).numpy(), y)


def test_kernel_2f_stride_f_padding_f_over_2_enlarges_exactly_f_times():
    """transposed-conv.md:226-227: "With kernel `2f`, stride `f` and padding `f/2` (`f` even ...),
    a transposed conv enlarges a map exactly `f` times"."""
    for f in (2, 4, 8, 16):
        for i in (1, 3, 7, 32):
            assert shapes.conv_transpose2d_output_size(i, 2 * f, f, f // 2) == f * i


# ---- im2col.md -----------------------------------------------------------------------------
def test_the_im2col_pages_levers_are_conv_fasts_and_two_are_off_by_default():
    """im2col.md:158-207: the page names each lever of `conv_fast.levers()`; "Two levers are off
    by default: `keep_columns` ... and `depthwise`"; "each piece also kept under 4 MiB"."""
    from minisegnet.functional import conv_fast
    page = (_DOCS / "im2col.md").read_text()
    levers = conv_fast.levers()
    named = set(re.findall(r"^- `(\w+)`", page, re.M)) | {"window", "one_gemm", "keep_columns", "depthwise",
                                                          "fast_path"}
    assert set(levers) == named
    assert all(f"`{name}`" in page for name in levers)
    assert sorted(name for name, on in levers.items() if not on) == ["depthwise", "keep_columns"]
    assert conv_fast.CACHE_PIECE_BYTES == 4 * 2**20


# ---- instances.md --------------------------------------------------------------------------
def test_the_panoptic_pages_margins_and_window_prose_are_the_record():
    """instances.md:598-606: "Centres and offsets beat connected components of the same class map
    by 0.008 to 0.036 PQ" and "9x9 (unrounded) equals 7x7 on seed 0 and is 0.001 better on seed 2
    and 0.006 on seed 1". The record's unrounded numbers (the page's block rounds first)."""
    runs = sorted(json.loads((_FIGURES / "panoptic_deeplab_shapes.json").read_text())["runs"],
                  key=lambda r: r["seed"])
    margins = [round(r["pq"] - r["components_pq"], 3) for r in runs]
    assert margins == [0.008, 0.036, 0.031]              # "0.008 to 0.036"
    nine_minus_seven = [round(r["pq_by_window"]["9"] - r["pq_by_window"]["7"], 4) for r in runs]
    assert nine_minus_seven == [0.0, 0.0064, 0.0012]     # equal, 0.006 (seed 1), 0.001 (seed 2)
    three_lost = [round(r["pq_by_window"]["7"] - r["pq_by_window"]["3"], 3) for r in runs]
    assert max(three_lost) == three_lost[1] == 0.025     # "loses up to 0.03 ... (most on seed 1)"


# ---- training.md ---------------------------------------------------------------------------
def test_polylr_defaults_to_deeplabs_power_and_polynomiallr_to_pytorchs(torch):
    """training.md:250-251: "`optim.PolyLR` is PyTorch's `PolynomialLR` (also here, under that
    name) with DeepLab's power 0.9 as its default instead of PyTorch's 1"."""
    from minisegnet import optim
    theirs = inspect.signature(torch.optim.lr_scheduler.PolynomialLR).parameters
    ours = inspect.signature(optim.PolynomialLR).parameters
    assert inspect.signature(optim.PolyLR).parameters["power"].default == 0.9
    assert ours["power"].default == theirs["power"].default == 1.0
    assert ours["total_iters"].default == theirs["total_iters"].default == 5


def test_each_optimizers_default_weight_decay_is_pytorchs(torch):
    """training.md:240: "each optimizer's default decay is PyTorch's: 0, and 0.01 for AdamW"."""
    from minisegnet import optim
    decay = lambda cls: inspect.signature(cls).parameters["weight_decay"].default
    assert [decay(getattr(optim, n)) for n in ("SGD", "Adam", "AdamW")] == \
        [decay(getattr(torch.optim, n)) for n in ("SGD", "Adam", "AdamW")] == [0, 0, 0.01]


def test_the_default_augmentations_are_the_training_pages():
    """training.md:17-18: "by default random flips and quarter turns for the toy data, left-right
    flips for a folder of images"."""
    from minisegnet import run_config
    assert run_config.DEFAULT_AUGMENT == {"toy": ["hflip", "vflip", "rot90"], "folder": ["hflip"]}


def test_the_readmes_layout_table_names_every_module():
    """README.md's Layout table maps the code for a reader, as design.md does for contributors: a
    module of minisegnet/ or minisegnet/functional/ it does not name (functional/indexing.py,
    grad_mode.py, saved_values.py and array_data.py were missing) is a stale table."""
    readme = (_ROOT.parent / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n\n", 2)[1]
    named = set(re.findall(r"`(?:minisegnet/)?(?:[a-z_]+/)?([a-z_]+)(?:\.py)?`", table))
    on_disk = {p.stem for p in _ROOT.glob("*.py")} | {p.stem for p in (_ROOT / "functional").glob("*.py")}
    missing = sorted(n for n in on_disk - {"__init__", "__main__"} if n not in named)
    assert not missing, f"README.md's Layout table does not name {missing}"


_REPO_DIR = _ROOT.parent


def _prose(name):
    """A page of the repository (``docs/x.md``, ``README.md``) with its whitespace collapsed."""
    return " ".join((_REPO_DIR / name).read_text().split())


# ---- sampling.md ---------------------------------------------------------------------------
def test_nearest_grid_sample_rounds_halves_to_even_as_pytorch(torch):
    """sampling.md:73-75: `mode="nearest"` reads `I[round(y_pix), round(x_pix)]`, "with halves
    rounded to even as PyTorch does (`0.5 -> 0`, `1.5 -> 2`)"."""
    row = np.array([[[[10.0, 11.0, 12.0, 13.0, 14.0]]]])
    x_pix = np.array([0.5, 1.5, 2.5, 3.5])                        # every tie on a 5-pixel row
    grid = np.stack([(x_pix + 0.5) * 2 / 5 - 1, np.zeros(4)], -1).reshape(1, 1, 4, 2)
    ours = F.grid_sample(msn.tensor(row), msn.tensor(grid), mode="nearest").numpy().ravel()
    theirs = torch.nn.functional.grid_sample(torch.tensor(row), torch.tensor(grid), mode="nearest",
                                             align_corners=False).numpy().ravel()
    assert ours.tolist() == theirs.tolist() == [10.0, 12.0, 12.0, 14.0]      # 0, 2, 2, 4: to even


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_on_a_pixel_centre_the_grid_gradient_is_the_right_cells_difference(torch, padding_mode):
    """sampling.md:160-163: the derivative "jumps when the point crosses a pixel centre into the next
    cell (where exactly on the centre, `floor` picks the cell to the right)"; and PyTorch agrees."""
    row = np.array([[[[1.0, 4.0, 2.0, 5.0]]]])
    for centre, right_difference in ((1, 2.0 - 4.0), (2, 5.0 - 2.0)):
        x = (centre + 0.5) / 2 - 1                                # exact in binary: -0.25, 0.25
        ours = msn.tensor(np.array([[[[x, 0.0]]]]), requires_grad=True)
        F.grid_sample(msn.tensor(row), ours, padding_mode=padding_mode).sum().backward()
        theirs = torch.tensor([[[[x, 0.0]]]], dtype=torch.float64, requires_grad=True)
        torch.nn.functional.grid_sample(torch.tensor(row), theirs, padding_mode=padding_mode,
                                        align_corners=False).sum().backward()
        assert ours.grad.numpy()[0, 0, 0, 0] == theirs.grad[0, 0, 0, 0].item() == right_difference * 4 / 2


def test_reflection_mirrored_once_flips_the_grid_gradient_as_pytorch(torch):
    """sampling.md:164-166: the chain rule multiplies by step 2's slope, "-1 where `reflection`
    mirrored it an odd number of times"."""
    row = np.array([[[[1.0, 4.0, 2.0, 5.0]]]])
    x_pix = 4.5                                                   # mirrors about 3.5 to 2.5: between 2 and 3
    x = (x_pix + 0.5) / 2 - 1
    ours = msn.tensor(np.array([[[[x, 0.0]]]]), requires_grad=True)
    F.grid_sample(msn.tensor(row), ours, padding_mode="reflection").sum().backward()
    theirs = torch.tensor([[[[x, 0.0]]]], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.grid_sample(torch.tensor(row), theirs, padding_mode="reflection",
                                    align_corners=False).sum().backward()
    assert ours.grad.numpy()[0, 0, 0, 0] == theirs.grad[0, 0, 0, 0].item() == -(5.0 - 2.0) * 4 / 2


def test_the_elastic_runs_final_losses_are_the_ratios_the_page_states():
    """sampling.md:358-360: "after the same 60 epochs the training loss ends about twice as high at
    1.25 pixels and 3.4 to 4.1 times as high at 10" (the page's block accepts 3 to 4.2 against 0.035)."""
    runs = json.loads((_DOCS / "figures" / "elastic_few_images.json").read_text())["runs"]
    base = np.mean([r["last_loss"] for r in runs["without"]])
    ten = sorted(r["last_loss"] / base for r in runs["sigma 10 px"])
    assert (round(ten[0], 1), round(ten[-1], 1)) == (3.4, 4.1)
    mild = np.mean([r["last_loss"] for r in runs["sigma 1.25 px"]]) / base
    assert 1.75 <= mild < 2.25                                   # "about twice"


# ---- bilinear.md ---------------------------------------------------------------------------
def test_2_to_3_is_the_only_size_change_where_both_align_corners_agree():
    """bilinear.md:198-200 (exercise 3): besides in == out and in == 1, the two conventions differ,
    "with one exception: 2 -> 3"."""
    rng = np.random.default_rng(0)
    agree = []
    for n_in in range(2, 25):
        x = msn.tensor(rng.standard_normal((1, 1, 1, n_in)))
        for n_out in range(1, 40):
            if n_out != n_in:
                a, b = (F.interpolate(x, size=(1, n_out), mode="bilinear", align_corners=c).numpy()
                        for c in (False, True))
                if np.allclose(a, b):
                    agree.append((n_in, n_out))
    assert agree == [(2, 3)]


# ---- deeplab.md ----------------------------------------------------------------------------
def test_mobilenet_v2_stages_are_the_papers_table_2():
    """deeplab.md:110-112: "The stages (expansion `t`, channels `c`, blocks `n`, first stride `s`)
    are the paper's table, `MOBILENET_V2_STAGES`" (Sandler et al. 2018, Table 2, after the 32-channel
    stride-2 stem)."""
    from minisegnet.models.deeplab import MOBILENET_V2_STAGES
    assert MOBILENET_V2_STAGES == ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                   (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def test_aspp_is_fused_by_a_1x1_conv_then_dropout_0_1_only_while_training(monkeypatch):
    """deeplab.md:164: "ASPP's output (fused by a 1x1 conv, then dropout 0.1 while training)"."""
    from minisegnet.models import DeepLabV3Plus
    from minisegnet.models import deeplab
    model = DeepLabV3Plus(in_channels=3, num_classes=3, output_stride=8, atrous_rates=(1, 2, 3))
    assert model.aspp.project[0].kernel_size == (1, 1)
    seen = []
    real = deeplab.F.dropout
    monkeypatch.setattr(deeplab.F, "dropout", lambda x, p, training: seen.append((p, training)) or real(x, p, training))
    x = msn.tensor(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    model.train()
    model(x)
    model.eval()
    with msn.no_grad():
        model(x)
    assert seen == [(0.1, True), (0.1, False)]


def _the_one_warning(model, size):
    """The message of the one warning ``model.check_input_size(size)`` gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.check_input_size(size)
    (warning,) = caught
    return str(warning.message)


def test_the_refusal_says_what_would_fit_and_the_warning_gives_the_share():
    """deeplab.md:137-140: a rate at least the map on both axes is refused, on one axis warned; "the
    message gives the share of valid taps and what would fit" (the warning gave the share only)."""
    from minisegnet.models import DeepLabV3Plus
    model = DeepLabV3Plus(in_channels=3, num_classes=3)
    with pytest.raises(ValueError) as info:
        model.check_input_size((64, 64))
    assert "valid taps 11%" in str(info.value) and "inputs of at least 289x289" in str(info.value)
    message = _the_one_warning(model, (289, 272))                # 19x17 map: rate 18 >= 17 on the width only
    assert "is a 3x1 convolution (valid taps" in message
    assert "inputs at least 289 pixels wide keep its 3x3 taps" in message


# ---- segnet.md -----------------------------------------------------------------------------
def test_segnets_widths_cap_at_eight_times_the_base_and_its_classifier_is_a_bare_conv():
    """segnet.md:98-106: "stage `i` with `base_channels * 2**min(i, 3)` channels ... (the widths
    capped at 512 as here at `8 * base_channels`)"; "a 3x3 conv `classifier` (no BatchNorm, no ReLU)"."""
    from minisegnet import nn
    from minisegnet.models import SegNet
    model = SegNet(in_channels=3, num_classes=4, base_channels=4, depth=5)
    assert [stage[0].conv.out_channels for stage in model.encoder] == [4, 8, 16, 32, 32]
    paper = SegNet(in_channels=3, num_classes=4, base_channels=64, depth=5, convs_per_stage=2)
    assert [stage[0].conv.out_channels for stage in paper.encoder] == [64, 128, 256, 512, 512]
    assert type(model.classifier) is nn.Conv2d and model.classifier.kernel_size == (3, 3)


# ---- receptive-field.md --------------------------------------------------------------------
@pytest.mark.parametrize("k, d", [(2, 1), (4, 1), (2, 3), (3, 1), (3, 2), (5, 1)])
def test_same_padding_puts_the_odd_pixel_of_an_odd_total_at_the_bottom(torch, k, d):
    """receptive-field.md:25-28: with "same" the top padding is `d(k-1)//2`, "the odd pixel ... goes
    to the bottom (right), so the field's centre sits half a pixel past the output pixel". There is an
    odd pixel only when d(k-1) is odd (the page says "an even d(k-1)": it means an even kernel)."""
    import warnings
    x = np.arange(81.0).reshape(1, 1, 9, 9)
    w = np.random.default_rng(0).standard_normal((1, 1, k, k))
    ours = F.conv2d(msn.tensor(x), msn.tensor(w), padding="same", dilation=d).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                           # PyTorch warns about even kernels
        theirs = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same", dilation=d).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-9)
    top = d * (k - 1) // 2
    by_hand = F.conv2d(F.pad(msn.tensor(x), (top, d * (k - 1) - top) * 2), msn.tensor(w), dilation=d).numpy()
    np.testing.assert_allclose(ours, by_hand, rtol=1e-12)       # top/left d(k-1)//2, the rest bottom/right
    start = shapes.receptive_field([(k, 1, "same", d)])[-1].start
    assert start == (0.5 if d * (k - 1) % 2 else 0)             # half a pixel past: only for an odd total


# ---- depthwise.md --------------------------------------------------------------------------
def test_the_depthwise_lever_takes_only_strided_convs_with_as_many_outputs_and_is_off(monkeypatch):
    """depthwise.md:70-77: the direct path runs "behind the `depthwise` lever of `conv_fast`, which
    takes it only at stride > 1 and with as many output channels as input", and "the library keeps
    im2col for every depthwise conv"."""
    from minisegnet.functional import conv_depthwise, conv_fast
    assert conv_fast.lever("depthwise") is False
    calls = []
    real = conv_depthwise.conv2d
    monkeypatch.setattr(conv_depthwise, "conv2d", lambda *a: calls.append(1) or real(*a))
    x = msn.tensor(np.random.default_rng(0).standard_normal((1, 4, 9, 9)))
    run = lambda c_out, stride: F.conv2d(x, msn.tensor(np.ones((c_out, 1, 3, 3))), stride=stride,  # noqa: E731
                                         padding=1, groups=4)
    run(4, 2)
    assert not calls                                              # off by default: im2col
    previous = conv_fast.set_lever("depthwise", True)
    try:
        for c_out, stride, taken in ((4, 2, True), (4, 1, False), (8, 2, False)):
            calls.clear()
            run(c_out, stride)
            assert bool(calls) == taken, (c_out, stride)
    finally:
        conv_fast.set_lever("depthwise", previous)


# ---- index.md ------------------------------------------------------------------------------
def test_every_course_page_but_three_shows_a_figure():
    """index.md:3-5: each page "shows figures that the library draws from its own code (all but three:
    skip connections, property testing and the guarantees page are told in code)"."""
    index = (_DOCS / "index.md").read_text()
    pages = re.findall(r"^\d+\. \[[^\]]*\]\(([\w-]+\.md)\)", index, re.M)
    without = sorted(p for p in pages if "](figures/" not in (_DOCS / p).read_text())
    assert without == ["guarantees.md", "property-testing.md", "skip-connections.md"]


def test_the_index_quotes_the_panoptic_examples_seconds_and_default_seed():
    """index.md:149-152: the Panoptic-DeepLab comparison "trains for 273-298 s per seed ... (one seed by
    default; the figures in instances.md come from `--seeds 1,2,0`)"."""
    quoted = re.search(r"trains for (\d+)-(\d+) s per seed", _prose("docs/index.md"))
    table = re.findall(r"^\| \d \| .* \| (\d+) s \|$", (_DOCS / "instances.md").read_text(), re.M)
    seconds = [int(s) for s in table]
    assert len(seconds) == 3 and (int(quoted.group(1)), int(quoted.group(2))) == (min(seconds), max(seconds))
    source = (_REPO_DIR / "examples" / "panoptic_deeplab_shapes.py").read_text()
    assert re.search(r'add_argument\("--seeds", default="0"', source)


# ---- README.md -----------------------------------------------------------------------------
def test_the_readmes_default_run_and_augmentations_are_the_defaults():
    """README.md:64-66: `minisegnet train` with no arguments trains "on 512 generated 64x64 `Shapes`
    images ... for 12 epochs"; README.md:99: augment "default hflip,vflip,rot90 (a folder: hflip)";
    README.md:100: `--epochs 20` on that run is "8 more epochs"."""
    from minisegnet import run_config
    d = run_config.DEFAULTS
    assert (d["num_train"], d["size"], d["epochs"]) == (512, 64, 12) and d["data"] in (None, "shapes")
    assert run_config.DEFAULT_AUGMENT == {"toy": ["hflip", "vflip", "rot90"], "folder": ["hflip"]}
    assert 20 - d["epochs"] == 8
    prose = _prose("README.md")
    assert "on 512 generated 64x64 `Shapes` images" in prose and "for 12 epochs" in prose


def test_the_readmes_cupy_extras_ask_for_14_2_or_later():
    """README.md:47-50: `.[cuda12]` (`cupy-cuda12x`) and `.[cuda13]` (`cupy-cuda13x`) "both ask for CuPy
    14.2 or later"."""
    text = (_REPO_DIR / "pyproject.toml").read_text()
    assert 'cuda12 = ["cupy-cuda12x>=14.2"]' in text and 'cuda13 = ["cupy-cuda13x>=14.2"]' in text


def test_the_readmes_h200_figures_are_the_benchmarks_pages():
    """README.md:55-60: on an H200, `minisegnet train --backend cupy` "runs the default training in about
    30 s", "the first step of a first process spent about 11 s compiling", "a training step is still
    3.7-4.8x slower than PyTorch's": benchmarks.md, "Measured on an NVIDIA H200"."""
    page = (_DOCS / "benchmarks.md").read_text().split("### Measured on an NVIDIA H200", 1)[1]
    first = float(re.search(r"^\| ours \| ([\d.]+) \|", page, re.M).group(1))
    steps = [float(r) for r in re.findall(r"^\| U-Net base \d+, depth \d, batch 8, \d+x\d+ \| [\d.]+ \| [\d.]+ \| "
                                          r"([\d.]+) \|", page, re.M)]
    done = int(re.search(r"done in (\d+) s", " ".join(page.split())).group(1))
    prose = _prose("README.md")
    assert round(first) == int(re.search(r"spent about (\d+) s compiling", prose).group(1))
    low, high = re.search(r"a training step is still ([\d.]+)-([\d.]+)x slower", prose).groups()
    assert (round(min(steps), 1), round(max(steps), 1)) == (float(low), float(high))
    assert abs(done - int(re.search(r"default training in about (\d+) s", prose).group(1))) <= 2


def test_the_readme_holds_out_a_fifth_of_a_folder():
    """README.md: "a fifth of its images, drawn by the seed, are held out" (evaluate's and
    --resume's note on a changed folder: test_train_cli.py)."""
    from minisegnet import run_config

    assert run_config.DEFAULTS["val_fraction"] == 0.2
    assert "a fifth of its images, drawn by the seed, are held out" in _prose("README.md")


def test_the_one_axis_warning_names_the_height_when_the_rate_passes_the_maps_height():
    """deeplab.md: on one axis warned, with what input keeps the 3x3 taps; the existing test takes
    the width case only, so a message that always said 'wide' passed."""
    from minisegnet.models import DeepLabV3Plus
    message = _the_one_warning(DeepLabV3Plus(in_channels=3, num_classes=3), (272, 289))  # 17x19: the height only
    assert "is a 1x3 convolution (valid taps" in message
    assert "not smaller than the map's height" in message
    assert "inputs at least 289 pixels high keep its 3x3 taps" in message


# ---- sampling.md ---------------------------------------------------------------------------
def test_pytorchs_unnormalize_rounds_x_plus_1_before_the_fused_multiply_add(torch):
    """sampling.md:186-190: "PyTorch's CPU kernel computes `(x + 1) * W/2 - 0.5` with a single
    rounding (a fused multiply-add)". It rounds twice: `x + 1` first, then the multiply and the
    subtraction once (the FMA), which is what `unnormalize` does. The whole expression rounded
    once would put the centre of pixel 16 of an 18-pixel row in another cell than PyTorch does."""
    width = 18
    x = np.float32(33 / 18 - 1)                                   # the centre of pixel 16, in float32
    assert float(x + np.float32(1)) != float(x) + 1                # x + 1 is a rounding of its own
    once = np.float32(float(x) * (width / 2) + (width / 2 - 0.5))  # the whole expression, one rounding
    ours = sampling.unnormalize(np.array([x]), width, False)[0][0]
    assert once == 16.0 and ours < 16.0                            # cell 16 against cell 15
    row = (np.arange(width, dtype=np.float32) ** 2).reshape(1, 1, 1, width)
    grid = torch.tensor([[[[x, 0.0]]]], requires_grad=True)
    torch.nn.functional.grid_sample(torch.tensor(row), grid, align_corners=False).sum().backward()
    assert grid.grad[0, 0, 0, 0].item() == (16 ** 2 - 15 ** 2) * width / 2    # PyTorch: cell 15, two roundings
    assert "with a single rounding" not in _prose("docs/sampling.md"), (
        "sampling.md says PyTorch computes (x + 1) * W/2 - 0.5 with a single rounding: x + 1 is rounded first")


# ---- bilinear.md ---------------------------------------------------------------------------
def test_with_align_corners_true_a_scale_factor_does_not_set_the_coordinates(torch):
    """bilinear.md:120-124: given a `scale_factor`, PyTorch (and `F.interpolate`) "maps coordinates
    with `1 / scale_factor`, which differs from `in / out` whenever the product is not whole". That
    holds for align_corners=False only: with True both use (in-1)/(out-1) of the computed size, so a
    scale factor of 1.5 on 5 pixels gives exactly what size=7 gives."""
    x5 = np.arange(5.0).reshape(1, 1, 1, 5)
    kw = dict(mode="bilinear", align_corners=True)
    ours = F.interpolate(msn.tensor(x5), scale_factor=(1, 1.5), **kw).numpy().ravel()
    by_size = F.interpolate(msn.tensor(x5), size=(1, 7), **kw).numpy().ravel()
    theirs = torch.nn.functional.interpolate(torch.tensor(x5), scale_factor=(1, 1.5), **kw).numpy().ravel()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours, by_size, rtol=1e-12, atol=1e-12)     # steps of (5-1)/(7-1), not 1/1.5
    np.testing.assert_allclose(ours, np.arange(7) * 4 / 6, rtol=1e-12, atol=1e-12)
    section = _prose("docs/bilinear.md").split("## `size` or `scale_factor`", 1)[1].split("```", 1)[0]
    assert "align_corners" in section, (
        "bilinear.md states the 1 / scale_factor rule for every align_corners; with True it does not hold")


# ---- transposed-conv.md --------------------------------------------------------------------
def test_a_grouped_stride_1_conv_input_gradient_does_not_go_by_row_taps(monkeypatch):
    """transposed-conv.md:159-165: at stride 1 the input gradient is the flipped-kernel conv, run
    "through the forward pass's own code (im2col and one GEMM; on NumPy, for a kernel taller than one
    row, the row-tap form of conv_row_taps.py ...)". Row taps need one group (`conv_row_taps.applies`):
    a grouped or depthwise 3x3 conv's input gradient at stride 1 goes by im2col and a batched GEMM."""
    if msn.get_backend() != "numpy":
        pytest.skip("the row_taps lever is NumPy's")
    calls = collections.Counter()
    real = conv_row_taps.forward
    monkeypatch.setattr(conv_row_taps, "forward", lambda *a, **k: calls.update(["row_taps"]) or real(*a, **k))
    rng = np.random.default_rng(0)
    for groups, by_row_taps in ((1, True), (2, False), (4, False)):
        x = msn.tensor(rng.standard_normal((2, 4, 16, 16)).astype(np.float32), requires_grad=True)
        w = msn.tensor(rng.standard_normal((4, 4 // groups, 3, 3)).astype(np.float32))
        y = F.conv2d(x, w, padding=1, groups=groups)
        calls.clear()
        y.backward(msn.tensor(np.ones(y.shape, np.float32)))      # the input gradient only
        assert (calls["row_taps"] > 0) == by_row_taps, groups
    sentence = _prose("docs/transposed-conv.md").split("The library runs exactly that", 1)[1]
    sentence = sentence.split("never reaches col2im", 1)[0]
    assert "group" in sentence, (
        "transposed-conv.md says a stride-1 input gradient with a kernel taller than one row goes by row taps on "
        "NumPy; a grouped conv's does not")


# ---- im2col.md -----------------------------------------------------------------------------
def test_not_every_stride_1_3x3_conv_skips_conv_pys_gemms(monkeypatch):
    """im2col.md:148-153: "a stride-1 conv with a kernel taller than one row, every 3x3 layer at
    stride 1, goes by row taps ... and calls none of `conv.py`'s GEMMs, forward or backward". Row
    taps need one group and a band taller than the dilation, and the input gradient is the
    flipped conv only while C_out <= 2 C_in (the page's own `row_taps` and `flip` bullets): a
    depthwise 3x3, a 3x3 that widens the channels more than twice, and a 3x3 at dilation 12 on
    an 8x8 map (an ASPP branch) all call conv.py's GEMMs at stride 1 by default."""
    if msn.get_backend() != "numpy":
        pytest.skip("the row_taps lever is NumPy's")
    calls = collections.Counter()
    for name in ("_gemm_forward", "_gemm_weight_grad", "_gemm_transposed", "_col2im"):
        real = getattr(conv_module, name)
        monkeypatch.setattr(conv_module, name,
                            lambda *a, _real=real, _key=name, **k: calls.update([_key]) or _real(*a, **k))
    rng = np.random.default_rng(0)
    for c_in, c_out, groups, dilation, size in ((8, 8, 1, 1, 16),     # the page's case: no GEMM of conv.py
                                                (8, 8, 8, 1, 16),     # depthwise 3x3, stride 1
                                                (4, 16, 1, 1, 16),    # C_out > 2 C_in: W^T @ g + col2im
                                                (8, 8, 1, 12, 8)):    # dilation 12 on an 8x8 map
        calls.clear()
        x = msn.tensor(rng.standard_normal((2, c_in, size, size)), requires_grad=True)
        w = msn.tensor(rng.standard_normal((c_out, c_in // groups, 3, 3)), requires_grad=True)
        F.conv2d(x, w, padding=dilation, dilation=dilation, groups=groups).sum().backward()
        assert bool(calls) == ((c_in, c_out, groups, dilation) != (8, 8, 1, 1)), (c_in, c_out, groups, dilation, calls)
    sentence = _prose("docs/im2col.md").split("On NumPy the columns come from", 1)[1]
    sentence = sentence.split("on CuPy the `window` lever builds the columns", 1)[0]
    assert not ("every 3x3 layer at stride 1" in sentence and "none of `conv.py`'s GEMMs, forward or backward"
                in sentence and "group" not in sentence), (
        "im2col.md says every stride-1 3x3 layer goes by row taps and calls none of conv.py's GEMMs; a grouped or "
        "depthwise one, one with C_out > 2 C_in (its input gradient) and one dilated past its band do")


def test_conv_tap_runs_by_default_in_a_strided_convs_backward(monkeypatch):
    """im2col.md:233, the comment "by default conv._tap never runs: the columns come from conv_fast":
    the columns do, but col2im is conv.py's (`conv._col2im`, one `conv._tap` per kernel offset), and
    a stride-2 conv's input gradient runs it by default."""
    taps = []
    real = conv_module._tap
    monkeypatch.setattr(conv_module, "_tap", lambda *a: taps.append(a) or real(*a))
    rng = np.random.default_rng(0)
    x = msn.tensor(rng.standard_normal((1, 2, 16, 16)), requires_grad=True)
    w = msn.tensor(rng.standard_normal((3, 2, 3, 3)))
    with msn.no_grad():
        F.conv2d(x, w, padding=1, stride=2)
    assert taps == []                                     # the forward's columns: not conv._tap
    F.conv2d(x, w, padding=1, stride=2).sum().backward()
    assert len(taps) == 9                                 # col2im of the input gradient: 9 taps
    page = (_REPO_DIR / "docs" / "im2col.md").read_text()
    assert "by default conv._tap never runs" not in page, (
        "im2col.md says conv._tap never runs by default; every default col2im (a strided conv's input "
        "gradient) runs it")


# ---- index.md / fcn.md ---------------------------------------------------------------------
def test_a_stride_32_score_map_places_a_straight_edge_on_any_pixel():
    """index.md:101-103: "FCN-32s predicts class scores on a grid 32 times coarser than the image and
    upsamples them in one step: no boundary can be placed more finely than that grid allows, however
    good the scores" (and fcn.md:21-22, "Boundaries can move only in steps the coarse map can
    express"). Bilinear upsampling reproduces a linear ramp exactly, so a 4x4 score map puts a
    straight edge on any interior column of a 128-pixel image; what the coarse grid cannot do is bend
    a boundary more than about once per block (thin objects, sharp corners)."""
    size, stride = 128, 32
    coarse_x = np.arange(size // stride)
    for edge in range(size // 4, 3 * size // 4):                  # the first column of class 1
        mask = np.zeros((size, size), np.int64)
        mask[:, edge:] = 1
        where = edge / stride - 0.5                                # the edge in coarse coordinates
        scores = np.zeros((1, 2, size // stride, size // stride))
        scores[0, 1] = coarse_x[None, :] - where                   # class 1 minus class 0: a ramp
        up = F.interpolate(msn.tensor(scores), size=(size, size), mode="bilinear", align_corners=False)
        assert (up.numpy()[0].argmax(0) == mask).all(), edge       # exact, on every column
    assert "no boundary can be placed more finely than that grid allows" not in _prose("docs/index.md")
    assert "Boundaries can move only in steps the coarse map can express" not in _prose("docs/fcn.md")


# ---- deeplab.md ----------------------------------------------------------------------------
def test_each_aspp_rate_is_its_own_3x3_conv_not_one_shared_kernel():
    """deeplab.md:121: "The rates see objects at several scales with the same 9 weights." Each rate is
    a separate 3x3 conv with its own weights (as in the paper, and in models/deeplab.py's ASPP): the
    same *number* of weights (9 per channel pair) for a field of 2r + 1, not the same weights."""
    from minisegnet.models import DeepLabV3Plus
    model = DeepLabV3Plus(in_channels=3, num_classes=3)
    kernels = [branch[0].weight for branch in model.aspp.atrous]
    assert [k.shape[2:] for k in kernels] == [(3, 3)] * 3
    assert len({id(k) for k in kernels}) == 3                                # three parameters
    assert not np.allclose(kernels[0].numpy(), kernels[1].numpy())          # with different values
    assert "with the same 9 weights" not in _prose("docs/deeplab.md")


def test_the_deeplab_diagram_gives_block_13_the_dilation_it_keeps():
    """models/deeplab.py:67, the 640 x 640 diagram: "blocks 13-15 (t6, stride 2 -> dilation 2)". At
    output stride 16 block 13 gave up its stride and keeps dilation 1 (the docstring's own rule,
    lines 23-27, and deeplab.md's exercise 2); only blocks 14-16 run at dilation 2."""
    from minisegnet.models import deeplab
    model = deeplab.DeepLabV3Plus(in_channels=3, num_classes=3)
    dilations = [b.depthwise[0].dilation[0] for b in model.backbone.blocks]
    assert dilations[13] == 1 and dilations[14:] == [2, 2, 2]
    diagram = inspect.getdoc(deeplab)
    line = next(l for l in diagram.splitlines() if l.strip().startswith("blocks 13-15"))
    assert "dilation 2" not in line, line


# ---- instances.md --------------------------------------------------------------------------
def test_panoptic_modules_window_numbers_are_the_record():
    """panoptic.py:65-69: "9x9 is within 0.001 of 7x7 on most seeds (once 0.007 better)". The record
    says 0.0064 (seed 1), which instances.md:605-606 and its test round to 0.006; 0.007 is the
    difference of the two rounded PQs (0.793 - 0.786)."""
    from minisegnet import panoptic
    runs = json.loads((_FIGURES / "panoptic_deeplab_shapes.json").read_text())["runs"]
    best = max(r["pq_by_window"]["9"] - r["pq_by_window"]["7"] for r in runs)
    doc = " ".join(inspect.getdoc(panoptic).split())
    quoted = float(re.search(r"once ([\d.]+) better", doc).group(1))
    assert quoted == round(best, 3), (quoted, best)


def test_the_weight_map_tables_spread_is_the_population_std_of_the_record():
    """instances.md: "mean +- std | 0.899 +- 0.030 | 0.782 +- 0.005" and "(The spread is the standard
    deviation of the three seeds' PQs, over 3; over 2, the sample estimate, it is 0.037 and 0.006.)"."""
    runs = json.loads((_FIGURES / "unet_weight_map_cells.json").read_text())["runs"]
    page = _prose("docs/instances.md")
    for kind, mean, spread, sample in (("weighted", "0.899", "0.030", "0.037"), ("plain", "0.782", "0.005", "0.006")):
        pq = [r["pq"] for r in runs[kind]]
        assert (f"{np.mean(pq):.3f}", f"{np.std(pq):.3f}", f"{np.std(pq, ddof=1):.3f}") == (mean, spread, sample)
    assert "0.899 +- 0.030 | 0.782 +- 0.005" in page and "it is 0.037 and 0.006" in page


def test_writing_into_a_relus_output_is_no_error_here_and_is_one_in_pytorch(torch):
    """autograd.md: "ReLU and clamp keep a mask of their input, not their output, so writing into a
    ReLU's output before its backward is no error here (the gradient is still right), where
    PyTorch, which saves the output, refuses it"."""
    for name in ("relu", "clamp"):
        x = msn.tensor(np.array([-1.0, 0.5]), requires_grad=True)
        y = x.relu() if name == "relu" else x.clamp(0, 1)
        with msn.no_grad():
            y += 1
        y.sum().backward()
        assert x.grad.numpy().tolist() == [0.0, 1.0], name
    tx = torch.tensor([-1.0, 0.5], requires_grad=True)
    ty = tx.relu()
    with torch.no_grad():
        ty += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.sum().backward()
    assert "writing into a ReLU's output before its backward is no error here" in _prose("docs/autograd.md")


def test_an_empty_batch_flows_through_every_op_affine_grid_included():
    """guarantees.md, Shapes: "**An empty batch** (`N = 0`) flows through every op and every
    model ... and comes out as an empty batch, as in PyTorch". F.affine_grid(theta (0, 2, 3),
    size (0, C, H, W)) is refused ("size must be (N, C, H, W), four ints >= 1"); PyTorch refuses it
    too, so the sentence should name the exception (then this test checks it does)."""
    prose = _prose("docs/guarantees.md")
    assert "flows through every op and every model" in prose, "the sentence has changed: update this test"
    theta = msn.tensor(np.zeros((0, 2, 3), np.float32))
    try:
        grid = F.affine_grid(theta, (0, 3, 4, 4), align_corners=False)
    except ValueError:
        assert "affine_grid" in prose.split("flows through every op", 1)[1].split("Batched input only")[0], \
            "affine_grid refuses an empty batch (as PyTorch): the page must say so"
        return
    assert grid.shape == (0, 4, 4, 2)


def test_a_refusal_of_what_pytorch_accepts_is_on_the_page_class_probability_targets(torch):
    """guarantees.md: "where we refuse something PyTorch accepts, this page says so and why", and
    "Targets follow PyTorch: `cross_entropy` and `dice_loss` take integer class labels". PyTorch's
    cross_entropy also takes class-probability targets (float, the input's shape); ours refuses
    them (its docstring says so, the page does not)."""
    logits = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    probs = np.full((5, 3), 1 / 3, np.float32)
    torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(probs))      # PyTorch accepts
    with pytest.raises(TypeError):
        F.cross_entropy(msn.tensor(logits), msn.tensor(probs))
    prose = _prose("docs/guarantees.md")
    targets = prose.split("Targets follow PyTorch", 1)[1].split("### Flags", 1)[0]
    assert "probabilit" in targets.split("binary_cross_entropy_with_logits", 1)[0], \
        "cross_entropy refuses class-probability targets that PyTorch takes: the Targets paragraph must say so"
