"""Data: toy datasets give consistent image/mask pairs (shapes, dtypes, label
ranges, determinism), FolderDataset reads PNGs and refuses bad ones, the
DataLoader batches and shuffles repeatably, augmentations move image and mask together."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

import minisegnet as msn
from minisegnet import data
from helpers import png_header_only

TOY = [data.Shapes, data.Roads, data.Cells]


@pytest.mark.parametrize("cls", TOY)
def test_toy_pairs_are_consistent(cls):
    ds = cls(num_samples=6, size=(40, 56), seed=3)
    assert len(ds) == 6 and len(ds.class_names) == ds.num_classes == len(ds.palette)
    assert ds.palette.dtype == np.uint8 and ds.palette.shape == (ds.num_classes, 3)
    seen = set()
    for i in range(len(ds)):
        image, mask = ds[i]
        assert image.dtype == np.float32 and image.shape == (ds.in_channels, 40, 56)
        assert mask.dtype == np.int64 and mask.shape == (40, 56)
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert 0 <= mask.min() and mask.max() < ds.num_classes
        seen |= set(np.unique(mask).tolist())
    assert len(seen) >= ds.num_classes - 1    # (nearly) every class shows up in a few samples


@pytest.mark.parametrize("cls", TOY)
def test_toy_is_deterministic_per_seed_split_index(cls):
    a, b = cls(4, 32, seed=1), cls(4, 32, seed=1)
    for i in range(4):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        np.testing.assert_array_equal(a[i][1], b[i][1])
    np.testing.assert_array_equal(a[-1][0], a[3][0])
    assert not np.array_equal(a[0][0], a[1][0])
    assert not np.array_equal(a[0][0], cls(4, 32, seed=2)[0][0])
    assert not np.array_equal(a[0][0], cls(4, 32, seed=1, split="val")[0][0])


def test_shapes_labels_match_the_drawing():
    """Every image has both shapes and background, and the pixels the mask calls
    'shape' are coloured differently from those it calls 'background'."""
    ds = data.Shapes(8, 64)
    for i in range(8):
        image, mask = ds[i]
        fg, bg = mask > 0, mask == 0
        assert fg.sum() > 50 and bg.sum() > 50
        # shapes are painted in a colour far from the background: means differ
        assert np.abs(image[:, fg].mean(1) - image[:, bg].mean(1)).sum() > 0.05
        # and pixel by pixel: the saturated paint is where the mask says (a mask shifted by a few
        # pixels kept the means apart but agrees here on about 0.73 of the pixels)
        painted = image.max(0) - image.min(0) > 0.25
        assert (painted == fg).mean() > 0.95


def test_cells_boundaries_separate_touching_cells():
    ds = data.Cells(6, 64)
    with_ids = data.Cells(6, 64, return_instances=True)
    for i in range(6):
        image, mask = ds[i]
        ids = with_ids[i][2]
        # two different cells never touch: a boundary pixel (id 0) lies between them
        for a, b in ((ids[:, :-1], ids[:, 1:]), (ids[:-1], ids[1:])):
            assert not ((a > 0) & (b > 0) & (a != b)).any()
        cell = mask == 1
        # interior pixels never touch background directly: a boundary sits between
        pad = np.pad(mask, 1, mode="edge")
        for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            nb = pad[dy:dy + 64, dx:dx + 64]
            assert not np.any(cell & (nb == 0))
        # boundaries are dark (membranes), interiors bright on average
        assert image[0][mask == 2].mean() < image[0][cell].mean()


@pytest.mark.parametrize("bad, match", [
    (dict(num_samples=0), "num_samples"), (dict(size=8), "at least 16"), (dict(size="64"), "size"),
    (dict(seed=-1), "seed"), (dict(split="dev"), "split"),
])
def test_toy_bad_arguments(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        data.Shapes(**bad)


@pytest.mark.parametrize("cls", [data.Shapes, data.Roads, data.Cells])
@pytest.mark.parametrize("size", [0, -1, 8, (0, 32), (32, 15)])
def test_toy_sizes_below_the_smallest_report_one_rule(cls, size):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: size must be at least 16 pixels for the toy scenes, "
                                         rf"got {size!r}$"
                       .replace("(", r"\(").replace(")", r"\)")):
        cls(2, size)
    assert cls(1, 16)[0][0].shape[-2:] == (16, 16)


def test_toy_index_errors():
    ds = data.Shapes(3, 32)
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    with pytest.raises(TypeError, match="index"):
        ds[1.5]


# ---- FolderDataset -------------------------------------------------------------
def _write_pair(root, name, size=(12, 10), labels=3, mode="L", rgb=True, value=None, image_ext=".png",
                mask_ext=".png"):
    """An image and its mask named ``name``: random, or with ``value`` the mask all ``value`` and the
    image all ``40 * value`` (a pair recognisable after reading)."""
    from PIL import Image
    rng = np.random.default_rng(len(name))
    h, w = size
    (root / "images").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    if value is not None:
        Image.fromarray(np.full((h, w, 3), 40 * value, np.uint8)).save(root / "images" / f"{name}{image_ext}",
                                                                   format="PNG")
        Image.fromarray(np.full((h, w), value, np.uint8)).save(root / "masks" / f"{name}{mask_ext}", format="PNG")
        return None
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(img if rgb else img[..., 0]).save(root / "images" / f"{name}.png")
    mask = rng.integers(0, labels, (h, w)).astype(np.uint8)
    m = Image.fromarray(mask)
    if mode == "P":
        m = m.convert("P")
    elif mode == "RGB":
        m = m.convert("RGB")
    m.save(root / "masks" / f"{name}.png")
    return img, mask


def test_folder_dataset_reads_pairs(tmp_path):
    from PIL import Image
    img, mask = _write_pair(tmp_path, "b")
    _, p_mask = _write_pair(tmp_path, "a", mode="P")
    # an index PNG with a coloured palette: the labels are the palette indices, not grey levels
    coloured = Image.open(tmp_path / "masks" / "a.png")
    coloured.putpalette(data.default_palette(256).ravel().tolist())
    coloured.save(tmp_path / "masks" / "a.png")
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", num_classes=3)
    np.testing.assert_array_equal(ds[0][1], p_mask)
    assert len(ds) == 2 and ds.pairs[0][0].endswith("a.png")
    image, m = ds[1]
    assert image.shape == (3, 12, 10) and image.dtype == np.float32
    np.testing.assert_allclose(image, img.transpose(2, 0, 1) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(m, mask)
    assert m.dtype == np.int64
    grey = data.FolderDataset(tmp_path / "images", tmp_path / "masks", num_classes=3, in_channels=1)
    assert grey[0][0].shape == (1, 12, 10)


def test_folder_dataset_reads_16_bit_images_in_their_range(tmp_path):
    from PIL import Image
    _, mask = _write_pair(tmp_path, "a")
    ramp = np.linspace(0, 65535, 12 * 10).reshape(12, 10).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "images" / "a.png")             # 16-bit grey, mode I;16
    for channels in (1, 3):
        image, m = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3, in_channels=channels)[0]
        assert image.shape == (channels, 12, 10) and image.dtype == np.float32
        np.testing.assert_allclose(image, np.repeat((ramp / 65535.0)[None], channels, 0), rtol=1e-6)
        np.testing.assert_array_equal(m, mask)


def test_folder_dataset_errors(tmp_path):
    _write_pair(tmp_path, "a")
    from PIL import Image
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "images" / "lonely.png")
    with pytest.raises(ValueError, match="lonely"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    (tmp_path / "images" / "lonely.png").unlink()
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "masks" / "orphan.png")
    with pytest.raises(ValueError, match="orphan"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    (tmp_path / "masks" / "orphan.png").unlink()
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.FolderDataset(tmp_path / "nowhere", tmp_path / "masks", 3)
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", num_classes=2)
    with pytest.raises(ValueError, match=r"label\(s\) \[2\].*num_classes=2"):
        ds[0]
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match="10x12.*7x7"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)[0]
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match="index images"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)[0]


def test_folder_dataset_ignore_index(tmp_path):
    from PIL import Image
    _write_pair(tmp_path, "a", labels=2)
    m = np.array(Image.open(tmp_path / "masks" / "a.png"))
    m[0, 0] = 255
    Image.fromarray(m).save(tmp_path / "masks" / "a.png")
    with pytest.raises(ValueError, match="255"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2)[0]
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, ignore_index=255)
    assert ds[0][1][0, 0] == 255


# ---- DataLoader ----------------------------------------------------------------
def test_loader_batches_and_drop_last():
    ds = data.Shapes(10, 32)
    loader = data.DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert batches[0][0].shape == (4, 3, 32, 32) and batches[0][1].shape == (4, 32, 32)
    assert batches[-1][0].shape[0] == 2
    np.testing.assert_array_equal(batches[1][0][0], ds[4][0])   # no shuffle: in order
    assert len(data.DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert len(list(data.DataLoader(ds, batch_size=4, drop_last=True))) == 2


def test_loader_shuffle_is_seeded_and_differs_per_epoch():
    ds = data.Subset(data.Shapes(12, 16), range(12))

    def order(loader):
        return [tuple(int(np.round(b[0][i].sum() * 1000)) for i in range(len(b[0]))) for b in loader]

    a = data.DataLoader(ds, batch_size=12, shuffle=True, seed=5)
    b = data.DataLoader(ds, batch_size=12, shuffle=True, seed=5)
    e0, e1 = order(a), order(a)
    assert e0 == order(b) and e0 != e1
    b.set_epoch(1)
    assert order(b) == e1
    # without a seed: the library generator, repeatable through manual_seed
    msn.manual_seed(3)
    c0 = order(data.DataLoader(ds, batch_size=12, shuffle=True))
    msn.manual_seed(3)
    assert order(data.DataLoader(ds, batch_size=12, shuffle=True)) == c0


def test_loader_refuses_unstackable_and_bad_arguments():
    class Ragged:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.zeros((1, 4 + i, 4), np.float32), np.zeros((4 + i, 4), np.int64)
    with pytest.raises(ValueError, match="differently sized"):
        list(data.DataLoader(Ragged(), batch_size=2))
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(Ragged(), batch_size=0)
    with pytest.raises(TypeError, match="transform"):
        data.DataLoader(Ragged(), transform=3)


# ---- augmentation: image and mask stay aligned ---------------------------------
def _coded(h, w):
    """An image whose channel 0 equals the mask, so alignment is checkable."""
    mask = np.arange(h * w).reshape(h, w) % 7
    image = np.stack([mask.astype(np.float32), np.zeros((h, w), np.float32)])
    return image, mask


@settings(max_examples=30)
@given(seed=st.integers(0, 2**16), h=st.integers(3, 12), w=st.integers(3, 12), crop=st.integers(2, 16))
def test_augmentations_keep_image_and_mask_aligned(seed, h, w, crop):
    rng = np.random.default_rng(seed)
    image, mask = _coded(h, w)
    t = data.Compose(data.RandomFlip(horizontal=True, vertical=True), data.RandomRot90(), data.RandomCrop(crop))
    out_image, out_mask = t(image, mask, rng)
    assert out_mask.shape == (crop, crop) and out_image.shape == (2, crop, crop)
    np.testing.assert_array_equal(out_image[0], out_mask)
    c_image, c_mask = data.CenterCrop((crop, max(crop - 1, 1)))(image, mask)
    np.testing.assert_array_equal(c_image[0], c_mask)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**16), h=st.integers(3, 12), w=st.integers(3, 12), crop=st.integers(2, 16))
def test_stacked_label_maps_move_as_one(seed, h, w, crop):
    """A (K, H, W) stack of label maps gets exactly the moves a single (H, W) map gets."""
    image, mask = _coded(h, w)
    other = (mask * 3 + 1) % 11
    t = data.Compose(data.RandomFlip(horizontal=True, vertical=True), data.RandomRot90(), data.RandomCrop(crop))
    _, alone = t(image, mask, np.random.default_rng(seed))
    _, alone_other = t(image, other, np.random.default_rng(seed))
    out_image, stacked = t(image, np.stack([mask, other]), np.random.default_rng(seed))
    assert stacked.shape == (2, crop, crop)
    np.testing.assert_array_equal(stacked[0], alone)
    # the maps after the first are object ids: a mirrored copy (crop of a smaller image) gets ids
    # of its own, i + c * (largest + 1), so modulo largest + 1 they moved as the map alone
    np.testing.assert_array_equal(stacked[1] % (alone_other.max() + 1), alone_other)
    if crop <= min(h, w):                          # no mirroring: exactly the same moves
        np.testing.assert_array_equal(stacked[1], alone_other)
    np.testing.assert_array_equal(out_image[0], stacked[0])


def test_loader_keeps_the_parts_of_a_sample():
    """Samples (image, mask, instances) give batches of three parts, augmented together."""
    class ThreeParts:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            image, mask = _coded(6, 6)
            return image + i, mask, mask * 10 + i

    loader = data.DataLoader(ThreeParts(), batch_size=2, shuffle=True, seed=3,
                             transform=data.Compose(data.RandomFlip(vertical=True), data.RandomRot90()))
    batches = list(loader)
    assert [len(b) for b in batches] == [3, 3, 3]
    for images, masks, instances in batches:
        assert images.dtype == np.float32 and masks.dtype == instances.dtype == np.int64
        assert masks.shape == instances.shape == (images.shape[0], 6, 6)
        offset = images[:, 0, 0, 0] - masks[:, 0, 0]            # the sample index i
        np.testing.assert_array_equal(instances, masks * 10 + offset[:, None, None])


def test_rot90_and_flip_values():
    image, mask = _coded(4, 4)
    flip = data.RandomFlip(p=1.0)
    i2, m2 = flip(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(m2, mask[:, ::-1])
    seen = set()
    rot = data.RandomRot90()
    for s in range(20):
        i3, m3 = rot(image, mask, np.random.default_rng(s))
        seen.add(next(k for k in range(4) if np.array_equal(m3, np.rot90(mask, k))))
    assert seen == {0, 1, 2, 3}
    # non-square: only 0 or 180 degrees, the shape is kept, and both happen
    image, mask = _coded(3, 5)
    turned = set()
    for s in range(10):
        m3 = rot(image, mask, np.random.default_rng(s))[1]
        assert m3.shape == (3, 5)
        turned.add(next(k for k in (0, 2) if np.array_equal(m3, np.rot90(mask, k))))
    assert turned == {0, 2}


def test_mirror_pad_matches_reflect_padding(torch):
    image, mask = _coded(6, 5)
    out, m = data.MirrorPad((2, 1, 3, 0))(image, mask)
    assert m is mask and out.shape == (2, 9, 8)
    expected = torch.nn.functional.pad(torch.tensor(image[None]), (3, 0, 2, 1), mode="reflect")[0].numpy()
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="padding"):
        data.MirrorPad(-1)


def test_random_crop_mirror_pads_small_images():
    image, mask = _coded(4, 4)
    out_image, out_mask = data.RandomCrop(7)(image, mask, np.random.default_rng(0))
    assert out_mask.shape == (7, 7)
    np.testing.assert_array_equal(out_image[0], out_mask)
    # 4 -> 7 leaves one window: reflect padding (the edge pixel not repeated), 1 before, 2 after
    np.testing.assert_array_equal(out_mask, np.pad(mask, ((1, 2), (1, 2)), mode="reflect"))
    np.testing.assert_array_equal(out_image, np.pad(image, ((0, 0), (1, 2), (1, 2)), mode="reflect"))


def test_default_palette():
    p = data.default_palette(21)
    assert p.shape == (21, 3) and tuple(p[0]) == (0, 0, 0) and tuple(p[1]) == (128, 0, 0)
    assert len({tuple(c) for c in p}) == 21


# ---- what the loader refuses ---------------------------------------------------------------------
class _Items:
    """A dataset of the given items."""

    def __init__(self, *items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_loader_checks_each_sample_and_what_its_transform_returns():
    image, mask = np.zeros((1, 4, 4), np.float32), np.zeros((4, 4), np.int64)
    bad = {
        "a floating-point \\(C, H, W\\) array .* e.g. image / 255": (_Items((image.astype(np.uint8), mask)), None),
        "its image must be a floating-point \\(C, H, W\\)": (_Items((image[0], mask)), None),
        "a sample must be a tuple \\(image, mask, ...\\)": (_Items(image), None),
        "has an image only; a transform .* needs at least one label map": (_Items((image,)), data.RandomFlip()),
        "after _Blur: its mask has dtype float64": (_Items((image, mask)), None),
        "after _Shrink: its instances has shape \\(2, 4\\) but its first label map": (_Items((image, mask, mask)), None),
    }

    class _Blur:                                      # returns a float mask: it would be truncated
        def __call__(self, image, mask, rng):
            return image, mask + 0.5

    class _Shrink:                                    # returns maps of two sizes: they would not line up
        def __call__(self, image, mask, rng):
            return image, [mask[0], mask[1][:2]]

    for message, (dataset, transform) in bad.items():
        if "_Blur" in message:
            transform = _Blur()
        if "_Shrink" in message:
            transform = _Shrink()
        with pytest.raises((TypeError, ValueError), match=message):
            next(iter(data.DataLoader(dataset, transform=transform)))
    # MirrorPad's larger image is fine
    images, masks = next(iter(data.DataLoader(_Items((image, mask)), transform=data.MirrorPad(2))))
    assert images.shape == (1, 1, 8, 8) and masks.shape == (1, 4, 4)


def test_loader_refuses_an_epoch_with_no_batch_and_non_bool_flags():
    ds = data.Shapes(5, 16)
    with pytest.raises(ValueError, match="drop_last=True with 5 samples and batch_size=8 leaves no batch"):
        data.DataLoader(ds, batch_size=8, drop_last=True)
    for name in ("shuffle", "drop_last"):
        with pytest.raises(TypeError, match=f"DataLoader: {name} must be True or False"):
            data.DataLoader(ds, **{name: "False"})


def test_folder_dataset_ignore_index_must_lie_outside_the_classes(tmp_path):
    _write_pair(tmp_path, "a", labels=2)
    for bad in (True, 1, 0, 255.5, "255", -0.0):
        with pytest.raises(ValueError, match="ignore_index must be None or an int outside the classes 0..1"):
            data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, ignore_index=bad)
    assert data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, ignore_index=np.int64(255)).ignore_index == 255
    assert data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, ignore_index=-1).ignore_index == -1


@pytest.mark.parametrize("call, kind, message", [
    (lambda: data.DataLoader(data.Shapes(2, 16), 2, transform=lambda image, mask: (image, mask)), TypeError,
     r"DataLoader: transform must take three arguments, transform\(image, mask, rng\)"),
    (lambda: next(iter(data.DataLoader(data.Shapes(2, 16), 2, transform=lambda i, m, r: i))), TypeError,
     r"DataLoader: transform .* must return a pair \(image, mask\), returned"),
    (lambda: data.DataLoader(data.Shapes(2, 16), 2).set_epoch(1.7), TypeError, "DataLoader.set_epoch: epoch"),
    (lambda: data.DataLoader(data.Shapes(2, 16), 2).set_epoch(-1), ValueError, "DataLoader.set_epoch: epoch"),
    (lambda: data.DataLoader(data.Shapes(2, 16), 2).set_epoch("2"), TypeError, "DataLoader.set_epoch: epoch"),
    (lambda: data.Subset(data.Shapes(3, 16), [0.7, 1.9]), TypeError, "Subset: indices must be integers"),
    (lambda: data.Subset(data.Shapes(3, 16), np.array([True, False, True])), TypeError,
     r"Subset: indices must be integers \(a boolean mask: np.flatnonzero\(mask\)\)"),
])
def test_loader_and_subset_name_what_they_were_given(call, kind, message):
    """A torchvision-style transform was a bare '<lambda>() takes 2 positional arguments' at the first
    batch; set_epoch(1.7) became 1 and set_epoch(-1) failed inside NumPy; Subset cut 0.7 and 1.9 to
    0 and 1 and read a boolean mask as the indices 1, 0, 1."""
    with pytest.raises(kind, match=message):
        call()


def test_set_epoch_and_subset_still_take_numpy_integers():
    loader = data.DataLoader(data.Shapes(4, 16), 2, shuffle=True, seed=3)
    loader.set_epoch(np.int64(2))
    first = next(iter(loader))[0]
    loader.set_epoch(2)
    np.testing.assert_array_equal(next(iter(loader))[0], first)
    assert data.Subset(data.Shapes(3, 16), np.array([2, 0])).indices == [2, 0]


def test_loader_and_subset_details_a_mutation_review_found_untested(monkeypatch):
    from minisegnet.data import loader
    next(iter(data.DataLoader(data.Shapes(2, 16), 2, transform=lambda i, m, r: [i, m])))        # a list pair
    with pytest.raises(TypeError, match=r"must return a pair \(image, mask\)"):
        next(iter(data.DataLoader(data.Shapes(2, 16), 2, transform=lambda i, m, r: (i, m, r))))
    for indices in ([True, False, True], [0, 1.5]):
        with pytest.raises(TypeError, match="Subset: indices must be integers"):
            data.Subset(data.Shapes(3, 16), indices)

    def unreadable(obj):
        raise ValueError("no signature")
    monkeypatch.setattr(loader.inspect, "signature", unreadable)        # some builtins: the call will say
    batch = next(iter(data.DataLoader(data.Shapes(2, 16), 2, transform=lambda i, m, r: (i, m))))
    assert batch[0].shape[0] == 2


def test_a_loader_refuses_an_augmentation_class_for_its_instance():
    """``transform=RandomFlip`` (the class) is callable, and was taken: the first batch then made a
    RandomFlip of the image and failed on its arguments. Named when the loader is made."""
    with pytest.raises(TypeError, match=r"transform is the class RandomFlip, not an augmentation: "
                                        r"write transform=RandomFlip\(...\)"):
        data.DataLoader(data.Shapes(4, 32), 2, transform=data.RandomFlip)


def test_folder_dataset_refuses_class_names_that_do_not_name_each_class_and_odd_channels(tmp_path):
    _write_pair(tmp_path, "a")
    for names in (["a"], "abc", ["a", "b", "c", "d"]):
        with pytest.raises(ValueError, match="class_names must name each of the 3 classes"):
            data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3, class_names=names)
    assert data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3, class_names=["x", "y", "z"]
                              ).class_names == ("x", "y", "z")
    for channels in (True, 3.0):
        with pytest.raises(ValueError, match="in_channels must be 1"):
            data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3, in_channels=channels)


def test_folder_and_subset_indices_out_of_range_name_the_dataset(tmp_path):
    _write_pair(tmp_path, "a")
    _write_pair(tmp_path, "b")
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    assert np.array_equal(ds[-1][1], ds[1][1])
    with pytest.raises(IndexError, match="FolderDataset: index 2 is out of range for a dataset of 2 samples"):
        ds[2]
    with pytest.raises(IndexError, match="Subset: index 1 is out of range for a dataset of 1 samples"):
        data.Subset(ds, [1])[1]
    with pytest.raises(TypeError, match="FolderDataset: index must be an integer, got 0.5"):
        ds[0.5]


def test_a_sample_index_counts_from_the_end_and_is_no_bool():
    shapes = data.Shapes(3, 32)
    np.testing.assert_array_equal(shapes[-3][0], shapes[0][0])
    with pytest.raises(IndexError, match="index -4 is out of range"):
        shapes[-4]
    with pytest.raises(TypeError, match="index must be an integer, got True"):
        shapes[True]


# ---- edges found by a mutation review (each test fails on a changed line the others let pass) ----
def _numbered(h, w):
    """A one-channel image equal to its mask, every pixel a different number (where a crop or a flip
    took a pixel from can be read off it)."""
    mask = np.arange(h * w).reshape(h, w)
    return np.stack([mask.astype(np.float32)]), mask


def test_vertical_flip_mirrors_up_down():
    # the vertical flip must reverse the rows (axis -2), not the columns, of image and mask
    image, mask = _numbered(3, 4)
    out_image, out_mask = data.RandomFlip(horizontal=False, vertical=True, p=1.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(out_mask, mask[::-1, :])
    np.testing.assert_array_equal(out_image, image[:, ::-1, :])
    both = data.RandomFlip(horizontal=True, vertical=True, p=1.0)(image, mask, np.random.default_rng(0))[1]
    np.testing.assert_array_equal(both, mask[::-1, ::-1])
    m = data.AUGMENTATIONS["vflip"]()
    assert (m.horizontal, m.vertical) == (False, True)


def test_random_crop_reaches_every_offset_including_the_last():
    # each of the h - size + 1 rows and w - size + 1 columns can start the window
    image, mask = _numbered(5, 7)
    crop = data.RandomCrop((3, 4))
    seen = set()
    for s in range(60):
        _, m = crop(image, mask, np.random.default_rng(s))
        seen.add(divmod(int(m[0, 0]), 7))
    assert {t for t, _ in seen} == {0, 1, 2} and {l for _, l in seen} == {0, 1, 2, 3}


@pytest.mark.parametrize("deform", [lambda: data.RandomAffine(translate=(1.0, 1.0), padding_mode="zeros"),
                                    lambda: data.RandomElastic(sigma=500.0, padding_mode="zeros")])
def test_labels_read_from_outside_under_zeros_padding_are_class_0(deform):
    # a point outside the image reads 0 for the labels, not the clipped pixel 0's label
    image, mask = _numbered(6, 6)
    mask = mask + 1                                          # no label 0 inside the image
    out_image, out_mask = data.transforms.warp(image, mask, np.full((6, 6, 2), -40.0), "zeros")
    assert (out_mask == 0).all() and (out_image == 0).all()
    t = deform()
    hits = 0
    for s in range(10):
        im, m = t(image, mask, np.random.default_rng(s))
        hits += int((m == 0).sum())
    assert hits > 0                                          # the mask had no 0: they came from outside


def test_color_jitter_clips_after_brightness_and_after_contrast():
    # "values clipped to [0, 1] after each step", exactly, with fixed factors
    mask = np.zeros((1, 2), np.int64)
    image = np.array([[[0.2, 0.6]]], np.float32)
    out, _ = data.ColorJitter(brightness=(3, 3), contrast=(0.5, 0.5), gamma=(1, 1))(image, mask, np.random.default_rng(0))
    # brightness: 0.6, 1.8 -> 1; mean of the clipped 0.8; contrast 0.5 about it: 0.7, 0.9
    np.testing.assert_allclose(out, [[[0.7, 0.9]]], rtol=1e-6)
    image = np.array([[[0.1, 0.9]]], np.float32)
    out, _ = data.ColorJitter(contrast=(3, 3), gamma=(2, 2))(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(out, [[[0.0, 1.0]]])      # -0.7 and 1.7 clipped before the gamma


def test_loader_gives_float32_images_and_int64_labels_whatever_the_dataset_holds():
    # the batch is float32 (N, C, H, W) even from float64 images, int64 from int32 labels
    class Wide:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((1, 2, 2), 0.5, np.float64), np.ones((2, 2), np.int32)

    for images, masks in data.DataLoader(Wide(), batch_size=2):
        assert images.dtype == np.float32 and masks.dtype == np.int64


def test_loader_refuses_labels_of_another_size_than_the_image_without_a_transform():
    # before any transform the labels are checked against the image, not against each other
    class Off:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.zeros((1, 4, 4), np.float32), np.zeros((3, 3), np.int64), np.zeros((3, 3), np.int64)

    with pytest.raises(ValueError, match="mask has shape"):
        list(data.DataLoader(Off(), batch_size=2))


@pytest.mark.parametrize("size", [(16, 64), (64, 16)])
def test_non_square_shapes_draw_their_objects_inside_the_image(size):
    # a shape's centre lies inside the image on both axes, so the last one drawn is always seen
    ds = data.Shapes(24, size, return_instances=True)
    for i in range(len(ds)):
        image, mask, instances = ds[i]
        assert image.shape == (3, *size) and instances.max() >= 1 and (mask > 0).any()


def test_folder_dataset_takes_upper_case_extensions(tmp_path):
    # "A.PNG" is an image as "a.png" is
    _write_pair(tmp_path, "a", image_ext=".PNG", mask_ext=".Png", value=1, size=(4, 4))
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    assert len(ds) == 1 and (ds[0][1] == 1).all()


def test_folder_instances_pair_by_name_when_the_folder_holds_others(tmp_path):
    # instance files are matched to images by name, not by their place in a sorted listing
    from PIL import Image
    (tmp_path / "instances").mkdir()
    for name, value in (("a", 1), ("c", 2)):
        _write_pair(tmp_path, name, value=value, size=(4, 4))
    for name, value in (("a", 11), ("b", 99), ("c", 22)):       # "b" has no image: ignored
        Image.fromarray(np.full((4, 4), value, np.uint16)).save(tmp_path / "instances" / f"{name}.png")
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3, instances_dir=tmp_path / "instances",
                            thing_classes=(1, 2))
    assert [int(ds[i][2][0, 0]) for i in range(2)] == [11, 22]
    assert [int(ds[i][1][0, 0]) for i in range(2)] == [1, 2]


def test_subset_refuses_an_index_before_the_start_when_made():
    # out-of-range indices are refused when the Subset is made, negative ones included
    ds = data.Shapes(10, 16)
    with pytest.raises(IndexError, match="out of range"):
        data.Subset(ds, [0, -11])


def test_check_folder_records_the_smallest_height_and_width(tmp_path):
    # ``smallest`` is the least height and the least width over the pairs
    _write_pair(tmp_path, "a", size=(5, 9), value=1)
    _write_pair(tmp_path, "b", size=(8, 6), value=1)
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    assert data.check_folder(ds) == 2 and ds.smallest == (5, 6)


def test_folder_pairs_by_name_with_unpaired_files_kept(tmp_path):
    # with unpaired="keep", a mask without an image must not shift the pairing of the rest
    for name, value in (("a", 1), ("c", 2)):
        _write_pair(tmp_path, name, value=value, size=(4, 4))
    from PIL import Image
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / "b.png")
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3, unpaired="keep")
    assert len(ds) == 2 and ds.unpaired
    for i, value in enumerate((1, 2)):
        image, mask = ds[i]
        assert (mask == value).all() and np.allclose(image, 40 * value / 255)


@pytest.mark.parametrize("size, axis", [((64, 16), 0), ((16, 64), 1)])
def test_non_square_cells_spread_over_the_whole_image(size, axis):
    # cell centres are drawn over the height and over the width, each along its own axis
    far = 0
    for i in range(6):
        image, mask = data.Cells(6, size)[i]
        cells = np.nonzero(mask > 0)[axis]
        far += int((cells >= size[axis] * 3 // 4).sum())
    assert far > 0


def test_shapes_draws_every_class():
    # circles, squares and triangles all appear
    seen = set()
    for image, mask in data.Shapes(8, 32):
        seen |= set(np.unique(mask).tolist())
    assert seen == {0, 1, 2, 3}


@pytest.mark.parametrize("size", [(16, 64), (64, 16)])
def test_non_square_shapes_are_sized_by_the_shorter_side(size):
    # a shape's radius is 0.1 - 0.2 of the shorter side: no object covers more than a disc of
    # radius 1.2 * 0.2 * min(size) (the triangle's circumradius)
    ds = data.Shapes(12, size, return_instances=True)
    bound = np.pi * (1.2 * 0.2 * min(size)) ** 2
    for i in range(len(ds)):
        instances = ds[i][2]
        assert np.bincount(instances.ravel())[1:].max() <= bound


@pytest.mark.parametrize("value", ["no", 1, None])
def test_shapes_random_colors_is_a_flag(value):
    """As return_instances: True or False (the old code took bool('no'), True)."""
    with pytest.raises(TypeError, match="Shapes: random_colors must be True or False"):
        data.Shapes(num_samples=2, random_colors=value)


def test_subset_takes_negative_indices_as_pytorchs():
    """torch.utils.data.Subset indexes its dataset with the index as given, so -1 is the last
    sample; the old code refused it (undocumented)."""
    ds = data.Shapes(10, 16)
    sub = data.Subset(ds, [-1, 0, -10])
    assert sub.indices == [9, 0, 0]
    np.testing.assert_array_equal(sub[0][0], ds[9][0])
    with pytest.raises(IndexError, match=r"Subset index 10 is out of range for a dataset of 10 samples \(-10 to 9\)"):
        data.Subset(ds, [10])


def test_check_folder_reports_an_image_past_pils_size_limit_with_the_other_bad_files(tmp_path):
    # PIL refuses an image of more than 2 * Image.MAX_IMAGE_PIXELS pixels with DecompressionBombError,
    # which is neither an OSError nor a ValueError: check_folder let it escape as a traceback, and the
    # other bad pairs went unreported (a corrupt BMP header that claims a huge size does the same)
    from PIL import Image
    for name in ("images", "masks"):
        (tmp_path / name).mkdir()
    for name, label in (("a", 0), ("b", 7), ("huge", 0)):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / f"{name}.png")
        Image.fromarray(np.full((4, 4), label, np.uint8)).save(tmp_path / "masks" / f"{name}.png")
    png_header_only(tmp_path / "images" / "huge.png", 20000, 20000, 2)       # 400M pixels
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    with pytest.raises(ValueError) as error:
        data.check_folder(ds)
    message = str(error.value)
    assert "2 of 3 image/mask pairs cannot be used" in message
    assert "huge.png" in message and "b.png' holds label(s) [7]" in message


def test_loader_refuses_a_nested_list_image_or_mask_with_a_type_error():
    # the sample check let a nested list through (np.ndim and np.asarray read it), then the
    # stacking asked it for .shape: AttributeError: 'list' object has no attribute 'shape'
    class ListImage:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return [[[0.5] * 4] * 4], np.zeros((4, 4), np.int64)

    class ListMask:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.zeros((1, 4, 4), np.float32), [[0] * 4] * 4

    for dataset in (ListImage(), ListMask()):
        try:
            batches = [tuple(part.shape for part in batch) for batch in data.DataLoader(dataset, 2)]
        except TypeError as error:
            assert "sample 0" in str(error)          # refused, naming the sample, as other bad samples are
        else:                                        # or read as the arrays they spell
            assert batches == [((2, 1, 4, 4), (2, 4, 4))]


def _one_sample(image, *labels, copies=1):
    """A dataset of ``copies`` samples, each ``(image, *labels)``."""
    class Sample:
        def __len__(self):
            return copies

        def __getitem__(self, i):
            return (image, *labels)
    return Sample()


def test_a_transform_gets_the_label_maps_of_a_sample_the_loader_takes_without_one():
    # an int64 mask and uint64 object ids batch without a transform (each map is cast to int64);
    # with one the loader stacked them first, NumPy promoted int64 with uint64 to float64, and
    # RandomFlip refused 'dtype float64' labels the dataset never held
    sample = _one_sample(np.zeros((1, 4, 4), np.float32), np.zeros((4, 4), np.int64), np.ones((4, 4), np.uint64),
                         copies=2)
    plain = next(iter(data.DataLoader(sample, 2)))
    assert [part.dtype for part in plain] == [np.float32, np.int64, np.int64]
    flipped = next(iter(data.DataLoader(sample, 2, seed=0, transform=data.RandomFlip())))
    assert [part.dtype for part in flipped] == [np.float32, np.int64, np.int64]
    assert (flipped[1] == 0).all() and (flipped[2] == 1).all()


def test_loader_refuses_object_ids_past_int64_instead_of_wrapping_them():
    # the batch's label maps are int64: a uint64 id past int64's largest wrapped to a negative id
    ids = np.zeros((4, 4), np.uint64)
    ids[1, 1] = 2 ** 63 + 1
    with pytest.raises(ValueError, match=r"sample 0: its .* holds 9223372036854775809, past int64's largest"):
        next(iter(data.DataLoader(_one_sample(np.zeros((1, 4, 4), np.float32), np.zeros((4, 4), np.int64), ids), 1)))


def test_loader_takes_a_uint64_id_of_int64s_largest_exactly():
    """2**63 - 1 is int64's own largest: cast without wrapping, so taken (only past it is refused)."""
    ids = np.zeros((4, 4), np.uint64)
    ids[1, 1] = 2 ** 63 - 1
    image, mask, got = next(iter(data.DataLoader(_one_sample(np.zeros((1, 4, 4), np.float32),
                                                             np.zeros((4, 4), np.int64), ids), 1)))
    assert int(np.asarray(got.numpy() if hasattr(got, "numpy") else got)[0, 1, 1]) == 2 ** 63 - 1


def test_loader_takes_an_empty_uint64_label_map():
    """A sample with no pixels: the past-int64 check has no largest id to read (max of nothing)."""
    batch = next(iter(data.DataLoader(_one_sample(np.zeros((1, 0, 0), np.float32), np.zeros((0, 0), np.uint64)), 1)))
    assert tuple(batch[1].shape) == (1, 0, 0)


def _pairs(root, names, labels=3, seed=0):
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        os.makedirs(root / sub, exist_ok=True)
    for name in names:
        Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(root / "images" / name)
        Image.fromarray(rng.integers(0, labels, (16, 16)).astype(np.uint8)).save(root / "masks" / name)


def test_check_folder_names_the_pair_of_a_file_cut_short_image_then_mask(tmp_path):
    """PIL's 'image file is truncated' names no file: the pair is added, the image first and the
    mask second (an image and its mask share a name, so only the folders tell them apart)."""
    _pairs(tmp_path, ["a.png", "b.png", "c.png"])
    cut = tmp_path / "images" / "b.png"
    cut.write_bytes(cut.read_bytes()[:300])
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    image, mask = (os.fspath(p) for p in ds.pairs[1])
    with pytest.raises(ValueError) as info:
        data.check_folder(ds)
    message = str(info.value)
    assert "truncated" in message
    assert f"(image {image!r}, mask {mask!r})" in message, message


def test_check_folder_does_not_name_again_a_file_pils_message_names(tmp_path):
    """Not an image at all: PIL's message names the file, so no '(image ..., mask ...)' is added
    (the pair is named only where PIL's message names neither of its files); a pair past the first."""
    _pairs(tmp_path, ["a.png", "b.png", "c.png"])
    (tmp_path / "images" / "c.png").write_bytes(b"not a png at all" * 10)
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    image = os.fspath(ds.pairs[2][0])
    with pytest.raises(ValueError) as info:
        data.check_folder(ds)
    message = str(info.value)
    assert "unreadable file:" in message and image in message, message
    assert "(image " not in message, message


def test_infer_num_classes_names_the_mask_that_holds_the_largest_label(tmp_path):
    """(count, (mask, label)): the mask named is the one holding the label, not the last listed,
    nor None; a folder of label 0 alone still names a mask."""
    os.makedirs(tmp_path / "zero")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "zero" / "a.png")
    assert data.infer_num_classes(str(tmp_path / "zero")) == (1, ("a.png", 0))
    masks = tmp_path / "masks"
    os.makedirs(masks)
    Image.fromarray(np.array([[0, 1], [2, 255]], np.uint8)).save(masks / "a.png")
    Image.fromarray(np.array([[0, 300], [1, 2]], np.uint16)).save(masks / "b.png")     # I;16
    Image.fromarray(np.array([[0, 3], [1, 2]], np.uint8)).save(masks / "c.png")
    assert data.infer_num_classes(str(masks)) == (301, ("b.png", 300))


def test_infer_num_classes_skips_colour_masks_and_reads_upper_case_png(tmp_path):
    """A colour PNG is no index mask (check_folder reports it): its channel values are no labels;
    'B.PNG' is a PNG as FolderDataset reads it."""
    masks = tmp_path / "masks"
    os.makedirs(masks)
    Image.fromarray(np.array([[0, 1], [2, 0]], np.uint8)).save(masks / "a.png")
    Image.fromarray(np.full((2, 2, 3), 200, np.uint8)).save(masks / "rgb.png")
    assert data.infer_num_classes(str(masks)) == (3, ("a.png", 2))
    Image.fromarray(np.array([[0, 7], [1, 0]], np.uint8)).save(masks / "B.PNG")
    assert data.infer_num_classes(str(masks)) == (8, ("B.PNG", 7))


class _Named:
    """A dataset of image/mask pairs by name only: what Subset.digest reads."""

    def __init__(self, names):
        self.pairs = [(os.path.join("images", n), os.path.join("masks", n)) for n in names]

    def __len__(self):
        return len(self.pairs)


def test_subset_digest_is_a_fingerprint_of_the_set_of_image_names():
    ds = _Named(["a.png", "b.png", "c.png", "a.pngb.png"])
    assert data.Subset(ds, [0, 2]).digest() == data.Subset(ds, [2, 0]).digest()      # a set: order aside
    assert data.Subset(ds, [0, 2]).digest() != data.Subset(ds, [1, 2]).digest()      # the first file counts
    assert data.Subset(ds, [0, 1]).digest() != data.Subset(ds, [3]).digest()         # names kept apart
    assert len(data.Subset(ds, [0]).digest()) == 16


@pytest.mark.parametrize("orientation, turn", [(6, lambda a: np.rot90(a, -1)), (3, lambda a: a[::-1, ::-1]),
                                                (2, lambda a: a[:, ::-1])])
def test_a_photo_is_read_as_its_exif_orientation_shows_it(tmp_path, orientation, turn):
    """A camera stores a portrait shot as landscape pixels with "rotate 90" (6) in its EXIF; viewers,
    browsers and annotation tools show it turned, so its mask is drawn on the turned picture. It was
    read as stored: a 90-degree turn did not fit its mask, a 180-degree one fitted upside down."""
    from PIL import Image

    stored = (np.arange(4 * 6 * 3) % 251).astype(np.uint8).reshape(4, 6, 3)
    shown = turn(stored)                                             # what a viewer shows
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "images" / "a.png", exif=exif)
    Image.fromarray(np.zeros(shown.shape[:2], np.uint8)).save(tmp_path / "masks" / "a.png")
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", num_classes=2)
    image, mask = ds[0]
    np.testing.assert_allclose(image, shown.transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert data.check_folder(ds) == 1
    assert ds.conversion_summary() == (f"1 of 1 images (PIL mode RGB): turned as its EXIF orientation "
                                       f"({orientation}) says (the model takes 3 channels)")


def test_an_exif_orientation_out_of_range_or_of_one_reads_the_image_as_stored(tmp_path):
    from PIL import Image

    from minisegnet.data import folder

    stored = (np.arange(4 * 6 * 3) % 251).astype(np.uint8).reshape(4, 6, 3)
    for value in (1, 0, 9):
        exif = Image.Exif()
        exif[0x0112] = value
        Image.fromarray(stored).save(tmp_path / "a.png", exif=exif)
        with Image.open(tmp_path / "a.png") as im:
            np.testing.assert_allclose(folder.image_array(im, 3, "a.png"), stored.transpose(2, 0, 1) / 255.0,
                                       atol=1e-6)
            assert folder.conversion_note(im, 3) is None
