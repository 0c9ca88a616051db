"""The deforming augmentations (RandomElastic, RandomAffine) and ColorJitter: image and labels move
as one, labels stay labels (class and instance ids stacked), seeded, composable with the loader,
the geometry's directions (rotation, shift, zoom) against NumPy, the bicubic field against
PyTorch's bicubic, and every bad parameter a clear error."""
import warnings

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import data
from minisegnet.data import (Cells, ColorJitter, Compose, DataLoader, RandomAffine, RandomCrop, RandomElastic,
                             RandomFlip, Shapes)
from minisegnet.data import transforms as T


def _sample(size=32, seed=0):
    image, mask, instances = Shapes(4, size, seed=seed, return_instances=True)[1]
    return image, mask, instances


DEFORMS = [RandomElastic(sigma=6), RandomAffine(degrees=25, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=10)]


@pytest.mark.parametrize("deform", DEFORMS, ids=repr)
def test_labels_stay_labels_and_move_with_the_image(deform):
    """Nearest sampling: every output (class, instance) pair existed in the input, and both maps
    moved exactly as each would alone. The image moved with them: sampling a one-hot image of the
    classes bilinearly and taking the argmax gives the moved class map almost everywhere."""
    image, mask, instances = _sample()
    stacked = np.stack([mask, instances])
    out_image, out = deform(image, stacked, np.random.default_rng(3))
    assert out.dtype == np.int64 and out.shape == stacked.shape and out_image.shape == image.shape
    # the class map moves as it would alone; the id map too, up to the new ids of mirrored copies
    # (i + c * (largest + 1), so ids modulo largest + 1 are the moved ids)
    alone = [deform(image, stacked[k], np.random.default_rng(3))[1] for k in range(2)]
    np.testing.assert_array_equal(alone[0], out[0])
    np.testing.assert_array_equal(out[1] % (alone[1].max() + 1), alone[1])
    pairs = set(zip(mask.ravel(), instances.ravel()))
    assert set(zip(out[0].ravel(), alone[1].ravel())) <= pairs
    one_hot = (mask[None] == np.arange(4)[:, None, None]).astype(np.float32)
    moved_hot, moved = deform(one_hot, mask, np.random.default_rng(3))
    agree = (moved_hot.argmax(0) == moved).mean()
    assert agree > 0.95, agree
    assert (moved != mask).mean() > 0.02, "the sample should have moved"


@pytest.mark.parametrize("deform", DEFORMS + [ColorJitter(0.3, 0.3, 0.3)], ids=repr)
def test_seeded_and_repeatable(deform):
    image, mask, _ = _sample()
    a = deform(image, mask, np.random.default_rng(5))
    b = deform(image, mask, np.random.default_rng(5))
    c = deform(image, mask, np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_identity_settings_leave_the_sample_alone():
    image, mask, _ = _sample()
    rng = np.random.default_rng(0)
    for t in (RandomElastic(sigma=0), RandomAffine(), RandomElastic(p=0.0), RandomAffine(degrees=40, p=0.0),
              ColorJitter()):
        out_image, out_mask = t(image, mask, rng)
        np.testing.assert_allclose(out_image, image, atol=1e-6)
        np.testing.assert_array_equal(out_mask, mask)


def test_affine_directions_match_numpy():
    """+90 degrees turns the content clockwise on the screen (np.rot90 with k=-1), as torchvision's
    RandomAffine; a shift of 0.25 of the width moves it right by 8 of 32 pixels; a zoom of 2 shows
    the central half twice as big."""
    image, mask, _ = _sample()
    rng = np.random.default_rng(0)
    out_image, out_mask = RandomAffine(degrees=(90, 90))(image, mask, rng)
    np.testing.assert_array_equal(out_mask, np.rot90(mask, k=-1))
    np.testing.assert_allclose(out_image, np.rot90(image, k=-1, axes=(1, 2)), atol=1e-5)
    # a shift of (8, -4) pixels: the content moves 8 right and 4 up
    positions = RandomAffine.positions((32, 32), np.eye(2), np.array([8.0, -4.0]))
    _, out_mask = T.warp(image, mask, positions, padding_mode="zeros")
    np.testing.assert_array_equal(out_mask[:28, 8:], mask[4:, :24])
    assert (out_mask[28:] == 0).all() and (out_mask[:, :8] == 0).all()
    _, out_mask = RandomAffine(scale=(2.0, 2.0))(image, mask, rng)
    np.testing.assert_array_equal(out_mask[::2, ::2][1:-1, 1:-1], mask[8:24, 8:24][1:-1, 1:-1])
    # the translate draw: a fraction of the width along x only, on a non-square image (an x/y mix-up
    # or a shift not scaled by the size shows here)
    h, w = 32, 48
    rows, cols = np.mgrid[0:h, 0:w]
    shifts = []
    for seed in range(50):
        p = RandomAffine(translate=(0.25, 0.0)).sample_positions((h, w), np.random.default_rng(seed))
        dx, dy = p[..., 0] - cols, p[..., 1] - rows
        np.testing.assert_allclose(dy, 0, atol=1e-9)
        np.testing.assert_allclose(dx, dx[0, 0], atol=1e-9)          # one shift for every pixel
        shifts.append(abs(dx[0, 0]))
    assert max(shifts) <= 0.25 * w and max(shifts) > 0.2 * w


def test_elastic_field_is_the_papers():
    """3x3 control vectors with the asked spread, bicubic (PyTorch's kernel, align_corners=True) in
    between: the field passes through the control vectors at the corners and the centre."""
    torch = pytest.importorskip("torch")
    for n in (1, 2, 11, 64):
        w = T.bicubic_weights(n, 3)
        eye = torch.eye(3, dtype=torch.float64).reshape(3, 1, 1, 3)
        ref = torch.nn.functional.interpolate(eye, size=(1, n), mode="bicubic", align_corners=True)
        np.testing.assert_allclose(w, ref[:, 0, 0, :].numpy().T, atol=1e-12)
    rng = np.random.default_rng(0)
    coarse = np.random.default_rng(0).normal(0, 10, (2, 3, 3))
    field = T.elastic_displacement((33, 41), 10.0, rng)
    np.testing.assert_allclose(field[:, ::16, ::20], coarse, atol=1e-9)
    draws = np.stack([T.elastic_displacement((9, 9), 10.0, np.random.default_rng(s))[:, 0, 0] for s in range(400)])
    assert 8.5 < draws.std() < 11.5


def test_elastic_moves_each_pixel_by_its_field_vector():
    """Output pixel (i, j) shows the input at (j + dx, i + dy): x is the field's first component."""
    image, mask, _ = _sample()
    replay = np.random.default_rng(9)
    replay.random()                                       # the p draw
    dx, dy = T.elastic_displacement((32, 32), 6.0, replay)
    rows, cols = np.mgrid[0:32, 0:32]
    expected = T.warp(image, mask, np.stack([cols + dx, rows + dy], axis=-1))
    got = RandomElastic(sigma=6)(image, mask, np.random.default_rng(9))
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    # and warp itself reads at (x, y): a field of (+3, 0) shows what was 3 pixels to the right
    _, shifted = T.warp(image, mask, np.stack([cols + 3.0, rows + 0.0], axis=-1), padding_mode="zeros")
    np.testing.assert_array_equal(shifted[:, :-3], mask[:, 3:])


@pytest.mark.parametrize("dtype, big", [(np.int64, 2 ** 53 + 1), (np.int64, -(2 ** 62) - 1), (np.uint64, 2 ** 64 - 1),
                                        (np.int32, 2 ** 24 + 1)])
@pytest.mark.parametrize("padding_mode", ["zeros", "border"])
def test_warp_copies_labels_a_float_cannot_hold(dtype, big, padding_mode):
    """Labels are copied, never sampled as numbers: ids past float32's 2**24 and float64's 2**53
    (and uint64's top) come out unchanged, under every padding."""
    mask = np.zeros((2, 6, 8), dtype)
    mask[0, 1:4, 2:6], mask[1, 3:, :3] = big, big - 2
    image = np.zeros((1, 6, 8), np.float32)
    rows, cols = np.mgrid[0:6, 0:8]
    _, out = T.warp(image, mask, np.stack([cols + 1.0, rows - 1.0], axis=-1), padding_mode=padding_mode)
    assert out.dtype == mask.dtype
    np.testing.assert_array_equal(out[:, 1:, :-1], mask[:, :-1, 1:])       # content moved 1 left, 1 down
    assert set(np.unique(out).tolist()) <= {0, big, big - 2}


def test_composes_with_the_loader_and_instances():
    """Loader batches from a Compose of the new and old transforms, instance truth included."""
    ds = Cells(6, 32, seed=0, return_instances=True)
    transform = Compose(RandomElastic(), RandomAffine(degrees=10), ColorJitter(0.2, 0.2, 0.2), RandomFlip())
    loader = DataLoader(ds, batch_size=3, shuffle=True, seed=0, transform=transform)
    first = [tuple(part.copy() for part in batch) for batch in loader]
    loader.set_epoch(0)
    again = list(loader)
    for (images, masks, instances), (images2, _, _) in zip(first, again):
        assert images.shape == (3, ds[0][0].shape[0], 32, 32) and masks.shape == instances.shape == (3, 32, 32)
        assert images.min() >= 0 and images.max() <= 1
        np.testing.assert_array_equal(images, images2)
        for m, i in zip(masks, instances):
            classes_of_cells = {int(a) for a, b in zip(m.ravel(), i.ravel()) if b != 0}
            assert classes_of_cells <= {1}, "a cell's id landed on a non-cell pixel: labels were mixed"


def test_the_reprs_say_every_setting():
    assert repr(RandomElastic(padding_mode="zeros")).endswith("padding_mode='zeros')")
    assert repr(RandomAffine(padding_mode="border")).endswith("padding_mode='border')")


def test_color_jitter_touches_the_image_only():
    image, mask, _ = _sample()
    out_image, out_mask = ColorJitter(brightness=(1.5, 1.5))(image, mask, np.random.default_rng(0))
    assert out_mask is mask
    np.testing.assert_allclose(out_image, np.clip(image * 1.5, 0, 1), rtol=1e-6)
    out_image, _ = ColorJitter(gamma=(2.0, 2.0))(image, mask, np.random.default_rng(0))
    np.testing.assert_allclose(out_image, image ** 2, rtol=1e-6)
    out_image, _ = ColorJitter(contrast=(0.0, 0.0))(image, mask, np.random.default_rng(0))
    grey = (0.2989 * image[0] + 0.587 * image[1] + 0.114 * image[2]).mean()      # 3 channels: torchvision's grey
    np.testing.assert_allclose(out_image, np.full_like(image, grey), rtol=1e-5)


MASK4 = np.zeros((4, 4), np.int64)


@pytest.mark.parametrize("make, error, words", [
    (lambda: RandomElastic(sigma=-1), ValueError, "sigma must be a finite, non-negative"),
    (lambda: RandomElastic(sigma=float("inf")), ValueError, "sigma"),
    (lambda: RandomElastic(points=1), ValueError, "points must be an int >= 2"),
    (lambda: RandomElastic(p=1.5), ValueError, r"p must be a probability in \[0, 1\]"),
    (lambda: RandomElastic(p=-0.1), ValueError, r"p must be a probability in \[0, 1\]"),
    (lambda: RandomElastic(padding_mode="wrap"), ValueError, "padding_mode must be one of"),
    (lambda: RandomAffine(degrees=-5), ValueError, "degrees must be >= 0"),
    (lambda: RandomAffine(degrees=(10, 5)), ValueError, "min <= max"),
    (lambda: RandomAffine(degrees="10"), TypeError, "degrees must be a number or a pair"),
    (lambda: RandomAffine(translate=(0.1, 1.5)), ValueError, r"translate must be a pair \(a, b\) of fractions"),
    (lambda: RandomAffine(translate=0.1), TypeError, "translate must be a pair"),
    (lambda: RandomElastic(sigma="3"), TypeError, "sigma must be a finite"),
    (lambda: RandomElastic(points=2.0), TypeError, "points must be an int >= 2"),
    (lambda: T.MirrorPad(1.0), TypeError, r"MirrorPad: padding must be .* got 1\.0"),
    (lambda: T.MirrorPad(-1), ValueError, r"MirrorPad: padding must be .* got -1$"),
    (lambda: RandomAffine(scale=1.2), TypeError, "scale must be a pair"),
    (lambda: RandomAffine(scale=(0.0, 1.2)), ValueError, "scale must stay >= "),
    (lambda: RandomAffine(shear=(-95, 0)), ValueError, "shear must stay between -90 and 90"),
    (lambda: RandomAffine(p=2), ValueError, "p must be a probability"),
    (lambda: RandomFlip(p=1.5), ValueError, r"p must be a probability in \[0, 1\]"),
    (lambda: RandomFlip(p="0.5"), TypeError, "p must be a probability"),      # a wrong kind
    (lambda: RandomFlip(horizontal="yes"), TypeError, "horizontal and vertical must be True or False"),
    (lambda: ColorJitter(brightness=-0.1), ValueError, "brightness must be >= 0"),
    (lambda: ColorJitter(gamma=1.0), ValueError, "gamma factors must stay > 0"),
    (lambda: ColorJitter(contrast=(-1, 1)), ValueError, "contrast factors must stay >= 0"),
    (lambda: RandomElastic()(np.zeros((1, 4, 4), np.uint8), np.zeros((4, 4), np.int64), np.random.default_rng()),
     TypeError, "floating point"),
    (lambda: RandomElastic(p=1)(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.int64), np.random.default_rng()),
     ValueError, r"RandomElastic: the image must be \(C, H, W\) .*, got image \(4, 4\) and labels \(4, 4\)"),
    (lambda: RandomAffine(p=1)(np.zeros((1, 4, 4), np.float32), np.zeros((4, 5), np.int64), np.random.default_rng()),
     ValueError, r"RandomAffine: the image is 4x4 but the labels are 4x5; they must match"),
    (lambda: ColorJitter(0.1)(np.full((1, 4, 4), 255.0, np.float32), MASK4, np.random.default_rng()),
     ValueError, r"ColorJitter needs an image in \[0, 1\].*from 255 to 255"),
    (lambda: ColorJitter(0.1)(np.full((1, 4, 4), -0.5, np.float32), MASK4, np.random.default_rng()),
     ValueError, r"ColorJitter needs an image in \[0, 1\]"),
])
def test_bad_parameters_are_refused(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_train_cli_takes_the_names_and_records_them(tmp_path):
    """``minisegnet train --augment elastic,affine,color`` trains with them and config.json says so."""
    import json
    import os

    from minisegnet.cli import main
    from minisegnet.data import AUGMENTATIONS

    assert {"elastic", "affine", "color"} <= set(AUGMENTATIONS)
    assert isinstance(AUGMENTATIONS["elastic"](), RandomElastic) and AUGMENTATIONS["elastic"]().sigma == 10
    out = str(tmp_path / "run")
    tiny = ["--size", "32", "--num-train", "8", "--num-val", "4", "--batch-size", "4", "--epochs", "1",
            "--model-arg", "base_channels=4", "--model-arg", "depth=2", "--quiet"]
    assert main(["train", *tiny, "--augment", "hflip,elastic,affine,color", "--out", out]) == 0
    config = json.load(open(os.path.join(out, "config.json")))["config"]
    assert config["augment"] == ["hflip", "elastic", "affine", "color"]


def test_augment_preview_command(tmp_path, capsys):
    from minisegnet.cli import main

    out = tmp_path / "preview.png"
    assert main(["augment-preview", "--augment", "elastic,color", "--draws", "1", "--size", "48",
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and "elastic, color" in capsys.readouterr().out
    assert main(["augment-preview", "--augment", "elastic,twirl", "--out", str(out)]) == 2
    assert "--augment takes names from" in capsys.readouterr().err
    assert main(["augment-preview", "--draws", "0", "--out", str(out)]) == 2
    assert main(["augment-preview", "--size", "8", "--out", str(out)]) == 2


def test_augment_preview_refuses_a_size_whose_drawing_would_not_fit_before_any_work(tmp_path, capsys, monkeypatch):
    from minisegnet import checks, data
    from minisegnet.cli import main
    from minisegnet.viz import sampling

    out = tmp_path / "p.png"
    # 7 panels (the original, 2 draws of elastic, affine, color) of 1-channel Cells, 4 of them deformations:
    # 100 + 7 * (4 + 8 + 24) + 4 * 16 = 416 bytes a pixel
    assert sampling.augment_preview_bytes(100, 100, 1, 7, 4) == 100 * 100 * 416
    monkeypatch.setattr(checks, "memory_bytes", lambda: 64 * 64 * 416)
    monkeypatch.setattr(data.Cells, "_draw", lambda *a: pytest.fail("drew the image"))
    assert main(["augment-preview", "--size", "65", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "minisegnet augment-preview: error: --size 65: 7 panels of 65x65 pixels (cells, 1 channel(s)) take about "
        "1.7 MiB to draw (416 bytes per pixel), more than this machine's memory (1.6 MiB); the largest --size "
        "that fits is 64 (or draw fewer panels: --draws, --augment)\n")
    assert not out.exists()
    # one panel fewer than the scene's own drawing needs: fewer panels would not help, so it is not suggested
    assert main(["augment-preview", "--size", "100", "--augment", "hflip", "--draws", "1", "--out", str(out)]) == 2
    assert capsys.readouterr().err.endswith("(220 bytes per pixel), more than this machine's memory (1.6 MiB); "
                                            "the largest --size that fits is 88\n")


def test_augment_preview_bytes_is_never_below_what_the_drawing_takes():
    """The estimate against tracemalloc's peak for a 3-channel Shapes preview of 5 panels."""
    import tracemalloc

    from minisegnet import data
    from minisegnet.viz.sampling import augment_preview_bytes, plot_augment_preview

    size, names = 400, ["elastic", "affine", "color", "hflip"]
    tracemalloc.start()
    try:
        dataset = data.Shapes(1, size, seed=0)
        image, mask = dataset[0]
        plot_augment_preview(image, mask, [(n, data.AUGMENTATIONS[n]()) for n in names],
                             np.random.default_rng(0), palette=dataset.palette)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - 30 * 2 ** 20 <= augment_preview_bytes(size, size, 3, 5, 2) <= 2 * peak      # never below; not wildly above


@pytest.mark.parametrize("size", ["0", "-3", "8", "15"])
def test_augment_preview_size_error_quotes_the_size_given_and_one_rule(size, tmp_path, capsys):
    from minisegnet.cli import main

    assert main(["augment-preview", "--size", size, "--out", str(tmp_path / "p.png")]) == 2
    assert capsys.readouterr().err == ("minisegnet augment-preview: error: --size must be at least 16 pixels for "
                                       f"the built-in --data cells (its scenes need the room), got {size}\n")
    assert main(["augment-preview", "--size", "16", "--draws", "1", "--augment", "hflip",
                 "--out", str(tmp_path / "p.png")]) == 0
    with pytest.raises(ValueError, match=r"^RandomCrop: size must be >= 1, got 0$"):
        T.RandomCrop(0)


# ---- mirrored copies of objects get ids of their own -------------------------------------------
def test_copy_number_follows_numpys_reflect_padding():
    """Within one copy each pixel of the axis appears at most once, copy 0 is the axis itself,
    and copies further out have larger numbers."""
    for size in range(1, 7):
        source = np.arange(-15, size + 15)
        values = np.pad(np.arange(size), 15, mode="reflect")
        copies = T.copy_number(source, size)
        assert (copies[15:15 + size] == 0).all() and (copies[:15] < 0).all() and (copies[15 + size:] > 0).all()
        assert (np.diff(copies) >= 0).all()
        for c in np.unique(copies):
            assert len(set(values[copies == c])) == (copies == c).sum()
        # and each whole copy is a whole mirror image: size pixels in copy 0, size - 1 in the others
        # (reflect repeats no edge pixel), the two at the ends cut short by the window
        if size > 1:
            numbers, counts = np.unique(copies, return_counts=True)
            inner = (numbers != numbers.min()) & (numbers != numbers.max())
            assert (counts[inner] == np.where(numbers[inner] == 0, size, size - 1)).all()


def _blobs(ids):
    """How many separate pieces (8-connected) each id > 0 of a map has."""
    from minisegnet.instances import connected_components
    return {int(i): int(connected_components(ids == i).max()) for i in np.unique(ids) if i}


@pytest.mark.parametrize("how", ["CenterCrop", "RandomCrop", "warp with reflection"])
def test_a_mirrored_copy_of_an_object_gets_an_id_of_its_own(how):
    """Mirroring brings in a reflected copy of an object near the border: in the id map (the maps
    after the first) that copy gets id i + c * (largest + 1), so one id never names two separate
    objects, and each object's centre (the panoptic target) lies on it. The class map keeps its
    classes. (On the old code a copy kept its id: two pieces, the centre between them.)"""
    from minisegnet import panoptic
    mask = np.zeros((10, 10), np.int64)
    ids = np.zeros((10, 10), np.int64)
    mask[1:3, 4:6], ids[1:3, 4:6] = 1, 7                 # near the top border, not touching it
    mask[5:8, 0:2], ids[5:8, 0:2] = 1, 3                 # touching the left border
    image = np.zeros((1, 10, 10), np.float32)
    stacked = np.stack([mask, ids])
    if how == "warp with reflection":                    # what RandomElastic and RandomAffine apply
        rows, cols = np.mgrid[0:10, 0:10]
        positions = np.stack([cols, rows], axis=-1) * 1.6 - 3.0      # reads [-3, 11.4]: copies all round
        _, out = T.warp(image, stacked, positions, "reflection")
        _, alone = T.warp(image, ids, positions, "reflection")
    else:
        crop = getattr(T, how)(16)
        _, out = crop(image, stacked, np.random.default_rng(0))
        _, alone = crop(image, ids, np.random.default_rng(0))
    assert all(pieces == 1 for pieces in _blobs(out[1]).values()), _blobs(out[1])
    assert len(_blobs(out[1])) > 2                       # copies came in, each an object of its own
    assert ((out[0] == 1) == (out[1] > 0)).all() and set(np.unique(out[0])) == {0, 1}
    centers, present = panoptic.instance_centers(out[1][None])
    for k in np.flatnonzero(present[0]):
        cy, cx = np.rint(centers[0, k]).astype(int)
        assert out[1][cy, cx] == k
    assert set(np.unique(alone)) <= {0, 3, 7}           # a single map is a class map: values kept


def test_warp_numbers_copies_along_the_right_axis_of_a_non_square_image():
    """Positions inside a 10x20 image read no copy: every id is kept (copy numbers taken along
    the wrong axis, x over the height, gave the object at columns 14-17 a new id)."""
    mask, ids = np.zeros((10, 20), np.int64), np.zeros((10, 20), np.int64)
    mask[2:5, 14:18], ids[2:5, 14:18] = 1, 4
    stacked = np.stack([mask, ids])
    rows, cols = np.mgrid[0:10, 0:20]
    _, out = T.warp(np.zeros((1, 10, 20), np.float32), stacked, np.stack([cols, rows], -1).astype(float),
                    "reflection")
    np.testing.assert_array_equal(out, stacked)


def test_a_transform_after_mirror_pad_is_refused():
    """MirrorPad makes the image larger than its labels, so a crop, flip or turn after it would
    move the two differently (the crop took the labels' size): a clear error instead."""
    image, mask = np.zeros((1, 8, 8), np.float32), np.zeros((8, 8), np.int64)
    for after in (T.RandomCrop(4), T.CenterCrop(4), RandomFlip(p=1.0), T.RandomRot90()):
        with pytest.raises(ValueError, match="MirrorPad.*must be the last transform"):
            Compose(T.MirrorPad(2), after)(image, mask, np.random.default_rng(0))
    padded, same = Compose(RandomFlip(p=1.0), T.MirrorPad(2))(image, mask, np.random.default_rng(0))
    assert padded.shape == (1, 12, 12) and same.shape == (8, 8)


def test_compose_refuses_what_is_not_an_augmentation():
    with pytest.raises(TypeError, match="item 0 is the class RandomFlip, not an augmentation: write RandomFlip"):
        Compose(RandomFlip)
    with pytest.raises(TypeError, match="item 1 must be an augmentation"):
        Compose(RandomFlip(), "hflip")


def test_deforming_a_float_label_map_is_refused():
    image = np.zeros((1, 4, 4), np.float32)
    with pytest.raises(TypeError, match="RandomElastic: mask must hold integer labels"):
        RandomElastic(sigma=0)(image, np.full((4, 4), 0.5), np.random.default_rng(0))


# ---- what every transform refuses, before any work ----------------------------------------------
EVERY = [RandomFlip(p=1.0), T.RandomRot90(), T.RandomCrop(4), T.CenterCrop(4), T.MirrorPad(2),
         RandomElastic(sigma=2), RandomAffine(degrees=10), ColorJitter(0.1)]
IMAGE, MASK = np.zeros((3, 8, 8), np.float32), np.zeros((8, 8), np.int64)


@pytest.mark.parametrize("t", EVERY, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("image, mask, error, words", [
    # a batch, or a map without channels: the crops used to crop the channel axis and one spatial axis
    (IMAGE[None], MASK, ValueError, r"the image must be \(C, H, W\) and the labels one map \(H, W\) or several "
                                    r"stacked \(K, H, W\), got image \(1, 3, 8, 8\) and labels \(8, 8\)"),
    (IMAGE[0], MASK, ValueError, r"got image \(8, 8\) and labels \(8, 8\)"),
    (IMAGE, MASK.ravel(), ValueError, r"got image \(3, 8, 8\) and labels \(64,\)"),
    (IMAGE, MASK[None, None], ValueError, r"got image \(3, 8, 8\) and labels \(1, 1, 8, 8\)"),
    # not NumPy: a Tensor came back as a Tensor or as an object array
    (msn.tensor(IMAGE), MASK, TypeError, r"image must be a NumPy array \(the transforms run on the host, in the "
                                         r"loader, on NumPy arrays\), got a Tensor .*; pass image.numpy\(\)"),
    (IMAGE, msn.tensor(MASK), TypeError, r"mask must be a NumPy array .*got a Tensor .*; pass mask.numpy\(\)"),
    (IMAGE.tolist(), MASK, TypeError, r"image must be a NumPy array .*got \[\[\["),
    (IMAGE, None, TypeError, r"mask must be a NumPy array .*got None"),
    (np.zeros((3, 0, 0), np.float32), np.zeros((0, 0), np.int64), ValueError,
     r"image must have at least one channel and pixel, got shape \(3, 0, 0\)"),
    (IMAGE, np.zeros((0, 8, 8), np.int64), ValueError, r"mask must not be empty, got shape \(0, 8, 8\)"),
    (IMAGE, MASK.astype(np.float64), TypeError, "mask must hold integer labels .*, got dtype float64"),
    (IMAGE.astype(complex), MASK, TypeError, "image must hold booleans, integers or floats, got dtype complex128"),
])
def test_every_transform_refuses_a_bad_sample_naming_itself(t, image, mask, error, words):
    with pytest.raises(error, match=f"^{type(t).__name__}: .*{words}"):
        t(image, mask, np.random.default_rng(0))


@pytest.mark.parametrize("t", [t for t in EVERY if not isinstance(t, (T.CenterCrop, T.MirrorPad))],
                         ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("rng", [None, 0, np.random.RandomState(0)], ids=repr)
def test_a_drawing_transform_needs_a_generator(t, rng):
    with pytest.raises(TypeError, match=f"^{type(t).__name__}: rng must be a numpy.random.Generator .*got "):
        t(IMAGE, MASK, rng)


def test_center_crop_and_mirror_pad_still_take_no_rng():
    assert [t(IMAGE, MASK)[0].shape for t in (T.CenterCrop(4), T.MirrorPad(2))] == [(3, 4, 4), (3, 12, 12)]


def test_compose_names_the_member_that_returns_no_pair():
    def forgetful(image, mask, rng):
        image * 2                                     # forgot to return

    with pytest.raises(TypeError, match=r"^Compose: item 1 \(<function .*forgetful.*\) must return a pair "
                                        r"\(image, mask\), returned None$"):
        Compose(RandomFlip(), forgetful)(IMAGE, MASK, np.random.default_rng(0))


@pytest.mark.parametrize("call, error, words", [
    (lambda: T.bicubic_weights(8, 0), ValueError, "^bicubic_weights: points must be >= 1, got 0$"),
    (lambda: T.bicubic_weights(-1, 3), ValueError, "^bicubic_weights: n must be >= 1, got -1$"),
    (lambda: T.bicubic_weights(8.0, 3), TypeError, "^bicubic_weights: n must be an int, got 8.0$"),
    (lambda: T.elastic_displacement("a", 1.0, np.random.default_rng(0)), TypeError,
     "^elastic_displacement: size must be an int or a pair"),
    (lambda: T.elastic_displacement((0, 8), 1.0, np.random.default_rng(0)), ValueError,
     r"^elastic_displacement: size must be >= 1, got \(0, 8\)$"),
    (lambda: T.elastic_displacement((8, 8), 1e300, np.random.default_rng(0)), ValueError,
     "^elastic_displacement: sigma must be a finite, non-negative number of pixels, at most 10000, got 1e"),
    (lambda: T.elastic_displacement((8, 8), float("nan"), np.random.default_rng(0)), ValueError, "sigma must be"),
    (lambda: T.elastic_displacement((8, 8), 1.0, None), TypeError,
     "^elastic_displacement: rng must be a numpy.random.Generator"),
    (lambda: T.elastic_displacement((8, 8), 1.0, np.random.default_rng(0), points=1), ValueError,
     "^elastic_displacement: points must be an int >= 2"),
    (lambda: T.copy_number(np.arange(3), 0), ValueError, "^copy_number: size must be >= 1, got 0$"),
    (lambda: T.copy_number(np.arange(3), -1), ValueError, "^copy_number: size must be >= 1, got -1$"),
    (lambda: T.copy_number(np.arange(3), 1.5), TypeError, "^copy_number: size must be an int, got 1.5$"),
    (lambda: T.copy_number(np.arange(3.0), 3), TypeError,
     "^copy_number: source must hold integer pixel coordinates, got dtype float64$"),
])
def test_the_public_helpers_check_their_arguments(call, error, words):
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("make, words", [
    (lambda: RandomElastic(sigma=1e300), "RandomElastic: sigma must be a finite, non-negative number of pixels, "
                                         "at most 10000, got 1e"),
    (lambda: RandomElastic(sigma=10001), "at most 10000, got 10001"),
    (lambda: RandomAffine(degrees=1e300), r"RandomAffine: degrees must stay >= -360, got the range"),
    (lambda: RandomAffine(degrees=(0, 400)), r"RandomAffine: degrees must stay <= 360, got the range \(0, 400\)"),
    (lambda: RandomAffine(degrees=(-1.7e308, 1.7e308)), "RandomAffine: degrees must stay >= -360"),
    (lambda: RandomAffine(scale=(0.5, 1e300)), r"RandomAffine: scale must stay <= 1e\+06"),
    (lambda: ColorJitter(brightness=1e300), r"ColorJitter: brightness must stay <= 10000"),
    (lambda: ColorJitter(contrast=(0, 1e5)), r"ColorJitter: contrast must stay <= 10000, got the range \(0, 100000\)"),
    (lambda: ColorJitter(gamma=(0.5, 1e300)), r"ColorJitter: gamma must stay <= 10000"),
])
def test_float_settings_that_would_overflow_are_refused(make, words):
    """On the old code sigma=1e300 made NaN positions (cast to int64 with only a warning) and a huge
    brightness made 0 * inf = NaN pixels."""
    with pytest.raises(ValueError, match=words):
        make()


@pytest.mark.parametrize("make", [lambda: RandomElastic(sigma=1e4), lambda: ColorJitter(1e4 - 1, 1e4 - 1),
                                  lambda: RandomAffine(degrees=360, scale=(1e-6, 1e6), shear=60)],
                         ids=["elastic", "color", "affine"])
def test_the_largest_allowed_settings_stay_finite(make):
    image = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(5):
            out, moved = make()(image, MASK, np.random.default_rng(seed))
            assert np.isfinite(out).all() and moved.shape == MASK.shape


# ---- warp, the public helper both deformations end in -------------------------------------------
W_IMAGE, W_MASK = np.zeros((1, 4, 4), np.float32), np.zeros((4, 4), np.int64)
W_AT = np.stack(np.mgrid[0:4, 0:4][::-1], axis=-1).astype(np.float64)         # (x, y) of every pixel


@pytest.mark.parametrize("args, error, words", [
    ((W_IMAGE.astype(np.uint8), W_MASK, W_AT), TypeError,
     "image must be floating point to be deformed, got dtype uint8"),
    ((W_IMAGE[0], W_MASK, W_AT), ValueError, r"the image must be \(C, H, W\) .*got image \(4, 4\) and labels \(4, 4\)"),
    ((W_IMAGE.tolist(), W_MASK, W_AT), TypeError, "image must be a NumPy array"),
    ((W_IMAGE, W_MASK[:, :3], W_AT), ValueError, "the image is 4x4 but the labels are 4x3; they must match"),
    ((W_IMAGE, W_MASK.astype(np.float32), W_AT), TypeError, "mask must hold integer labels"),
    ((W_IMAGE, W_MASK, W_AT.tolist()), TypeError, r"positions must be a NumPy array \(H, W, 2\)"),
    ((W_IMAGE, W_MASK, W_AT[..., 0]), ValueError,
     r"positions must be \(H, W, 2\), a point \(x, y\) for each of the image's 4x4 pixels, got shape \(4, 4\)$"),
    ((W_IMAGE, W_MASK, W_AT[:3]), ValueError, r"got shape \(3, 4, 2\)$"),
    ((W_IMAGE, W_MASK, W_AT > 1), TypeError, "positions must hold real pixel coordinates, got dtype bool"),
    ((W_IMAGE, W_MASK, np.full_like(W_AT, np.nan)), ValueError,
     r"positions must be finite pixel coordinates within \+-2\*\*53, got 32 value\(s\) that are not, the first nan$"),
    ((W_IMAGE, W_MASK, W_AT + 1e300), ValueError, "got 32 value.* the first 1e"),
    ((W_IMAGE, W_MASK, W_AT, "wrap"), ValueError, r"padding_mode must be one of \('zeros', 'border', 'reflection'\)"),
])
def test_warp_refuses_bad_input_naming_itself(args, error, words):
    """Called directly, warp's errors start with its name, as the transforms' do (on the old code
    they named nothing, and bad positions were a broadcasting error or a NaN cast's warning)."""
    with pytest.raises(error, match=f"^warp: .*{words}"):
        T.warp(*args)


def test_a_float16_image_is_warped_in_float32():
    """The grid is computed in float32 at least and the result cast back. In float16 the pixel
    coordinates past 1024 of a 2048-pixel row are a pixel apart (a shift of 0.3 read the neighbours' values),
    and on a one-pixel-wide image a displacement of 70,000 pixels (7 times the largest sigma)
    overflowed to infinity (normalised x = 2 * x_pixel)."""
    rng = np.random.default_rng(0)
    image = rng.random((2, 2, 2048)).astype(np.float16)
    mask = np.zeros((2, 2048), np.int64)
    rows, cols = np.mgrid[0:2, 0:2048]
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        positions = np.stack([cols + 0.3, rows + 0.0], axis=-1)
        out, _ = T.warp(image, mask, positions, "reflection")
        expected, _ = T.warp(image.astype(np.float32), mask, positions, "reflection")
        assert out.dtype == np.float16
        np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
        column = np.stack([np.full((2, 1), 7e4), rows[:, :1] + 0.0], axis=-1)
        out, _ = T.warp(image[..., :1], mask[..., :1], column, "reflection")
        np.testing.assert_array_equal(out, image[..., :1])     # one column: every read is that column


def test_mirrored_copies_refuses_ids_past_int64_instead_of_wrapping():
    """A copy so far away that its new id would pass int64 is an error (it wrapped to a
    negative id, silently); near copies get their ids as before."""
    mask = np.ones((2, 2, 2), np.int64)
    mask[1] = 5
    near = T.mirrored_copies(mask, np.array([[0], [1]]), np.array([[0, -1]]))
    assert near[1].tolist() == [[5, 5 + 1 * 6], [5 + 4 * 6, 5 + 5 * 6]]
    with pytest.raises(ValueError, match=r"^mirrored_copies: the copies reach 1099511627776 images away.*int64"):
        T.mirrored_copies(mask, np.array([[0], [2 ** 40]]), np.array([[0, 2 ** 30]]))


def test_compose_takes_torchvisions_list_too():
    """``Compose([...])`` (torchvision's spelling) was refused: 'item 0 must be an augmentation'."""
    image, mask = np.random.default_rng(0).random((3, 8, 10)).astype(np.float32), np.arange(80).reshape(8, 10) % 3
    listed = Compose([RandomFlip(p=1.0), T.MirrorPad(2)])(image, mask, np.random.default_rng(0))
    spread = Compose(RandomFlip(p=1.0), T.MirrorPad(2))(image, mask, np.random.default_rng(0))
    for a, b in zip(listed, spread):
        np.testing.assert_array_equal(a, b)
    assert listed[0].shape == (3, 12, 14)


@pytest.mark.parametrize("angle, shear, zoom", [(30.0, 0.0, 1.0), (-70.0, 0.0, 1.0), (0.0, 20.0, 1.0),
                                                (25.0, -15.0, 1.3), (120.0, 40.0, 0.8)])
def test_affine_matrix_is_torchvisions(angle, shear, zoom):
    """torchvision's F.affine (which its RandomAffine calls) maps the output back to the input with
    _get_inverse_affine_matrix; its forward matrix, written out here from that formula (x right, y
    down, shear along x only), is ours for the same angle, shear and zoom (the sign of both was
    torchvision's opposite: content turned counter-clockwise for a positive angle)."""
    rot, sx = np.deg2rad(angle), np.deg2rad(shear)
    # torchvision: RSS = [[a, b], [c, d]] with sy = 0, times the scale
    a, b = np.cos(rot), -np.cos(rot) * np.tan(sx) - np.sin(rot)
    c, d = np.sin(rot), -np.sin(rot) * np.tan(sx) + np.cos(rot)
    theirs = zoom * np.array([[a, b], [c, d]])
    transform = RandomAffine(degrees=(angle, angle), shear=(shear, shear), scale=(zoom, zoom))
    ours, shift = transform.sample_matrix((16, 16), np.random.default_rng(0))
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    np.testing.assert_array_equal(shift, [0.0, 0.0])


@pytest.mark.parametrize("size, crop", [((5, 1), (2, 1)), ((7, 1), (4, 1)), ((6, 1), (3, 1)), ((9, 1), (2, 1)),
                                        ((11, 1), (4, 1)), ((6, 1), (5, 1)), ((8, 1), (2, 1)), ((1, 9), (1, 4))])
def test_center_crop_places_its_window_as_torchvision(size, crop):
    """torchvision's CenterCrop: top = int(round((H - h) / 2)), Python's round (halves to even); the
    floor put the window one row higher whenever H - h is 3 mod 4 (5 -> 2 kept rows 1-2, not 2-3)."""
    h, w = size
    image = np.arange(h * w, dtype=np.float32).reshape(1, h, w)
    mask = np.arange(h * w).reshape(h, w)
    out_image, out_mask = T.CenterCrop(crop)(image, mask)
    top, left = int(round((h - crop[0]) / 2.0)), int(round((w - crop[1]) / 2.0))     # torchvision's formula
    np.testing.assert_array_equal(out_mask, mask[top:top + crop[0], left:left + crop[1]])
    np.testing.assert_array_equal(out_image, image[:, top:top + crop[0], left:left + crop[1]])


def test_color_jitter_contrast_is_taken_about_torchvisions_grey_mean():
    """torchvision's adjust_contrast blends with the mean of the greyscale image (0.2989 R + 0.587 G +
    0.114 B); the mean over all channels gave (0.633, 0.233, 0.233) for (0.9, 0.1, 0.1) at factor 0.5,
    where torchvision gives (0.620, 0.220, 0.220)."""
    image = np.broadcast_to(np.array([0.9, 0.1, 0.1], np.float32)[:, None, None], (3, 2, 2)).copy()
    out, _ = ColorJitter(contrast=(0.5, 0.5))(image, np.zeros((2, 2), np.int64), np.random.default_rng(0))
    grey = 0.2989 * 0.9 + 0.587 * 0.1 + 0.114 * 0.1
    np.testing.assert_allclose(out[:, 0, 0], grey + 0.5 * (np.array([0.9, 0.1, 0.1]) - grey), rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, 0], [0.620, 0.220, 0.220], atol=5e-4)
    single = np.full((1, 2, 2), 0.8, np.float32)
    single[0, 0, 0] = 0.2
    out, _ = ColorJitter(contrast=(0.5, 0.5))(single, np.zeros((2, 2), np.int64), np.random.default_rng(0))
    np.testing.assert_allclose(out, 0.65 + 0.5 * (single - 0.65), rtol=1e-6)        # one channel: its own mean


def test_color_jitter_contrast_of_other_channel_counts_is_about_their_mean():
    """torchvision refuses 2 or 4 channels; here the mean over every channel (as the docstring says)."""
    rng = np.random.default_rng(0)
    for channels in (2, 4):
        image = rng.random((channels, 3, 3)).astype(np.float32)
        out, _ = ColorJitter(contrast=(0.5, 0.5))(image, np.zeros((3, 3), np.int64), np.random.default_rng(0))
        np.testing.assert_allclose(out, image.mean() + 0.5 * (image - image.mean()), rtol=1e-6)


def test_center_crop_left_edge_and_contrast_after_brightness_a_mutation_review_found_untested():
    out_image, out_mask = T.CenterCrop((1, 2))(np.arange(5, dtype=np.float32).reshape(1, 1, 5), np.arange(5).reshape(1, 5))
    np.testing.assert_array_equal(out_mask, [[2, 3]])                      # left = round(3 / 2) = 2, halves to even
    image = np.broadcast_to(np.array([0.9, 0.1, 0.1], np.float32)[:, None, None], (3, 2, 2)).copy()
    out, _ = ColorJitter(brightness=(0.5, 0.5), contrast=(0.5, 0.5))(image, np.zeros((2, 2), np.int64),
                                                                   np.random.default_rng(0))
    bright = 0.5 * np.array([0.9, 0.1, 0.1])
    grey = 0.2989 * bright[0] + 0.587 * bright[1] + 0.114 * bright[2]        # of the brightened image
    np.testing.assert_allclose(out[:, 0, 0], grey + 0.5 * (bright - grey), rtol=1e-6)


def test_augment_preview_draws_the_image_and_transforms_its_options_name(tmp_path, monkeypatch, capsys):
    """What the figure is drawn from: the defaults the help gives (cells, --size 96, two draws of
    elastic, affine, color, seed 0), and --index/--seed/--draws picking the image, the draws and
    the layout (the figure itself is checked elsewhere; here it is only recorded)."""
    from minisegnet import data
    from minisegnet.cli import main
    from minisegnet.viz import sampling

    seen = {}

    def record(image, mask, transforms, rng, palette=None, path=None, columns=4, step=None):
        seen.update(image=np.asarray(image), names=[name for name, _ in transforms], columns=columns, path=path,
                    first_draw=rng.integers(2**30))

    monkeypatch.setattr(sampling, "plot_augment_preview", record)
    monkeypatch.chdir(tmp_path)
    assert main(["augment-preview"]) == 0
    assert capsys.readouterr().out == "wrote augment_preview.png: cells image 0 and 2 draw(s) of elastic, affine, color\n"
    assert seen["path"] == "augment_preview.png" and seen["columns"] == 4
    assert seen["names"] == ["elastic", "elastic", "affine", "affine", "color", "color"]
    np.testing.assert_array_equal(seen["image"], np.asarray(data.Cells(num_samples=1, size=96, seed=0)[0][0]))
    assert seen["first_draw"] == np.random.default_rng(0).integers(2**30)

    assert main(["augment-preview", "--data", "roads", "--size", "32", "--index", "2", "--seed", "3",
                 "--augment", "hflip", "--draws", "3", "--out", "p.png"]) == 0
    assert seen["names"] == ["hflip"] * 3 and seen["columns"] == 4       # one name: the image and its draws in a row
    np.testing.assert_array_equal(seen["image"], np.asarray(data.Roads(num_samples=3, size=32, seed=3)[2][0]))
    assert seen["first_draw"] == np.random.default_rng(3).integers(2**30)


@pytest.mark.parametrize("option, given", [("--index", ["--index", "-1"]), ("--seed", ["--seed", "-1"]),
                                           ("--draws", ["--draws", "0"])])
def test_augment_preview_refuses_a_negative_index_or_seed_naming_the_rule(tmp_path, capsys, option, given):
    """The one rule, with the values given, before any drawing (the test above gives --draws 0 only)."""
    from minisegnet.cli import main

    draws, index, seed = {"--draws": "0"}.get(option, "2"), {"--index": "-1"}.get(option, "0"), \
        {"--seed": "-1"}.get(option, "0")
    assert main(["augment-preview", *given, "--out", str(tmp_path / "p.png")]) == 2
    assert capsys.readouterr().err == ("minisegnet augment-preview: error: --draws must be >= 1 and --index, "
                                       f"--seed >= 0, got {draws}, {index}, {seed}\n")
    assert not (tmp_path / "p.png").exists()


def test_the_preview_draws_each_draw_with_its_labels_name_and_arrows():
    from minisegnet.viz.sampling import plot_augment_preview
    from minisegnet.viz.training import overlay

    dataset = data.Shapes(1, 32, seed=0)
    image, mask = dataset[0]
    elastic, color = RandomElastic(), ColorJitter(brightness=0.3, contrast=0.3, gamma=0.3)
    fig = plot_augment_preview(image, mask, [("elastic", elastic), ("color", color)], np.random.default_rng(5),
                               palette=dataset.palette)
    replay = np.random.default_rng(5)                       # the same draws, in the same order
    warped = T.warp(image, mask, elastic.sample_positions(image.shape[-2:], replay), elastic.padding_mode)
    jittered = color(image, mask, replay)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["original", "elastic", "color"]
    for ax, (out_image, out_mask) in zip(axes, [(image, mask), warped, jittered]):
        np.testing.assert_allclose(ax.images[0].get_array(),
                                   overlay(out_image, out_mask, dataset.palette, alpha=0.3, background=0))
    assert [len(ax.collections) > 0 for ax in axes] == [False, True, False]    # arrows: the deformation only


def test_the_docs_preview_tints_the_labels(monkeypatch):
    """sampling.md's preview shows each draw's labels: it is drawn with a palette."""
    from minisegnet.viz import sampling as viz_sampling

    seen = {}
    monkeypatch.setattr(viz_sampling, "plot_augment_preview", lambda *a, **kw: seen.update(kw))
    viz_sampling.figure_augment_preview()
    assert seen["palette"] is not None


@pytest.mark.parametrize("make", [lambda: RandomElastic(p=0.5), lambda: RandomAffine(degrees=10, p=0.5)])
def test_a_deformation_refuses_an_integer_image_whatever_it_draws(make):
    """Refused before the draw, naming the transform: the old code checked inside warp, after
    drawing whether to deform, so a uint8 image passed on some seeds and failed on others."""
    image, mask = np.zeros((1, 6, 6), np.uint8), np.zeros((6, 6), np.int64)
    transform = make()
    for seed in range(8):
        with pytest.raises(TypeError, match=f"^{type(transform).__name__}: image must be floating point"):
            transform(image, mask, np.random.default_rng(seed))


def test_a_deformed_stack_of_label_maps_is_int64_whatever_it_draws():
    """A stack's mirrored objects get new ids (int64: they need not fit its dtype). The old code
    made it int64 only when some pixel read a mirrored copy: uint16 or int64 by the seed."""
    rng = np.random.default_rng
    image = rng(0).random((1, 8, 8)).astype(np.float32)
    stack = np.stack([rng(1).integers(0, 3, (8, 8)), rng(2).integers(0, 5, (8, 8))]).astype(np.uint16)
    dtypes = {RandomAffine(degrees=20)(image, stack, rng(seed))[1].dtype for seed in range(10)}
    assert dtypes == {np.dtype(np.int64)}
    assert RandomAffine(degrees=20)(image, stack[0], rng(0))[1].dtype == np.uint16      # one map keeps its dtype


def test_mirror_pad_refuses_a_bool_in_its_padding():
    with pytest.raises(TypeError, match=r"MirrorPad: padding must be .* got \(True, 0, 0, 0\)"):
        T.MirrorPad((True, 0, 0, 0))


def test_color_jitter_quotes_the_range_it_refuses():
    """gamma=1.5 asks for factors in (-0.5, 2.5); the message said (0, 2.5), the range after
    clipping at 0, which would have been fine to a reader."""
    with pytest.raises(ValueError, match=r"gamma factors must stay > 0, got the range \(-0.5, 2.5\) from 1.5"):
        ColorJitter(gamma=1.5)


@pytest.mark.parametrize("make, maps", [(lambda: RandomAffine(), (0, 1)), (lambda: RandomElastic(sigma=0), (0, 1)),
                                        (lambda: RandomCrop(6), (0,))],
                         ids=["affine-identity", "elastic-sigma0", "crop-padded-first-map"])
def test_a_stack_of_uint64_ids_past_int64_is_refused_or_kept_never_wrapped(make, maps):
    """A uint64 stack comes back int64 (mirrored_copies), but ids past int64's largest wrapped to
    negative ids when no pixel read a mirrored copy (mirrored_copies' early return casts without the
    check the copies branch makes) and, in the first map (which that check skips), even when some
    did. Either keep the ids or refuse them, as mirrored_copies does for ids a copy would push
    past int64."""
    big = 2 ** 63 + 5
    stack = np.zeros((2, 4, 4), np.uint64)
    for k in maps:
        stack[k, 1:3, 1:3] = big
    stack[1, 0, 0] = 3
    image = np.zeros((1, 4, 4), np.float32)
    try:
        _, out = make()(image, stack, np.random.default_rng(0))
    except ValueError as error:
        assert "int64" in str(error)
        return
    assert int(out.max()) >= big and int(out.min()) >= 0, (out.dtype, out.min(), out.max())


def test_warp_of_a_uint64_stack_with_reflection_never_wraps_its_ids():
    """The same through warp itself: positions all inside the image, reflection padding."""
    big = 2 ** 64 - 1
    stack = np.zeros((2, 6, 8), np.uint64)
    stack[1, 3:, :3] = big
    image = np.zeros((1, 6, 8), np.float32)
    rows, cols = np.mgrid[0:6, 0:8]
    try:
        _, out = T.warp(image, stack, np.stack([cols + 0.0, rows + 0.0], axis=-1), padding_mode="reflection")
    except ValueError as error:
        assert "int64" in str(error)
        return
    assert int(out[1, 5, 0]) == big, (out.dtype, out[1, 5, 0])


@pytest.mark.parametrize("make", [lambda: RandomElastic(sigma=3, p=0.5), lambda: RandomAffine(degrees=20, p=0.5)],
                         ids=["elastic", "affine"])
def test_a_stack_of_label_maps_has_one_dtype_whatever_p_draws(make):
    """mirrored_copies: a stack comes back int64 'so that its dtype never depends on where a random
    transform happened to read'. With p < 1 it came back in its own dtype (uint16) when the draw
    skipped the deformation and int64 when it did: the dtype depended on the seed."""
    rng = np.random.default_rng
    image = rng(0).random((1, 8, 8)).astype(np.float32)
    stack = np.stack([rng(1).integers(0, 3, (8, 8)), rng(2).integers(0, 5, (8, 8))]).astype(np.uint16)
    transform = make()
    dtypes = {transform(image, stack, rng(seed))[1].dtype for seed in range(12)}
    assert len(dtypes) == 1, dtypes


def test_the_elastic_results_figure_draws_and_says_where_its_numbers_come_from(monkeypatch):
    from minisegnet.viz import sampling as vs

    fig = vs.figure_elastic_few_images()                 # the source checkout's recorded numbers
    assert len(fig.axes) == 2
    monkeypatch.setattr(vs, "RESULTS_FILE", "not_there.json")   # as an installed package: no docs folder
    with pytest.raises(FileNotFoundError, match=r"^figure_elastic_few_images: .*not_there\.json is not there"):
        vs.figure_elastic_few_images()


def test_mirrored_copies_keeps_a_uint64_id_of_int64s_largest_exactly():
    """2**63 - 1 fits int64: the stack comes back int64 with it, refused only past it."""
    stack = np.zeros((2, 3, 3), np.uint64)
    stack[1, 1, 1] = 2 ** 63 - 1
    out = T.mirrored_copies(stack, 0, 0)
    assert out.dtype == np.int64 and int(out[1, 1, 1]) == 2 ** 63 - 1


def test_mirrored_copies_of_an_empty_uint64_stack_is_an_empty_int64_stack():
    out = T.mirrored_copies(np.zeros((2, 0, 0), np.uint64), 0, 0)
    assert out.dtype == np.int64 and out.shape == (2, 0, 0)


@pytest.mark.parametrize("make", [lambda mode: RandomElastic(sigma=3, p=0.5, padding_mode=mode),
                                  lambda mode: RandomAffine(degrees=20, p=0.5, padding_mode=mode)],
                         ids=["elastic", "affine"])
@pytest.mark.parametrize("mode", ["zeros", "border"])
def test_a_stack_of_label_maps_has_one_dtype_whatever_p_draws_without_reflection(make, mode):
    """Without reflection no copies are numbered: warp keeps the stack's dtype, and so must a draw
    that skips the deformation (not int64 as with reflection)."""
    rng = np.random.default_rng
    image = rng(0).random((1, 8, 8)).astype(np.float32)
    stack = np.stack([rng(1).integers(0, 3, (8, 8)), rng(2).integers(0, 5, (8, 8))]).astype(np.uint16)
    transform = make(mode)
    dtypes = {transform(image, stack, rng(seed))[1].dtype for seed in range(12)}
    assert len(dtypes) == 1, dtypes
