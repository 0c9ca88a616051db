"""Edges of the data pipeline that no test reached before (found by a mutation review: each test
here fails on a changed line of transforms.py, loader.py, toy.py or folder.py that the other tests
let pass): flips and crops at their edges, labels read from outside, ColorJitter's clipping, the
loader's dtypes and sizes, non-square toy images, and folders paired by name."""
import numpy as np
import pytest

from minisegnet import data


def _coded(h, w):
    mask = np.arange(h * w).reshape(h, w)
    return np.stack([mask.astype(np.float32)]), mask


def test_vertical_flip_mirrors_up_down():
    # the vertical flip must reverse the rows (axis -2), not the columns, of image and mask
    image, mask = _coded(3, 4)
    out_image, out_mask = data.RandomFlip(horizontal=False, vertical=True, p=1.0)(image, mask, np.random.default_rng(0))
    np.testing.assert_array_equal(out_mask, mask[::-1, :])
    np.testing.assert_array_equal(out_image, image[:, ::-1, :])
    both = data.RandomFlip(horizontal=True, vertical=True, p=1.0)(image, mask, np.random.default_rng(0))[1]
    np.testing.assert_array_equal(both, mask[::-1, ::-1])
    m = data.AUGMENTATIONS["vflip"]()
    assert (m.horizontal, m.vertical) == (False, True)


def test_random_crop_reaches_every_offset_including_the_last():
    # each of the h - size + 1 rows and w - size + 1 columns can start the window
    image, mask = _coded(5, 7)
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
    image, mask = _coded(6, 6)
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


def _png_pair(root, name, image_ext=".png", mask_ext=".png", value=1, size=(4, 4)):
    from PIL import Image
    (root / "images").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    Image.fromarray(np.full(size + (3,), 40 * value, np.uint8)).save(root / "images" / f"{name}{image_ext}", format="PNG")
    Image.fromarray(np.full(size, value, np.uint8)).save(root / "masks" / f"{name}{mask_ext}", format="PNG")


def test_folder_dataset_takes_upper_case_extensions(tmp_path):
    # "A.PNG" is an image as "a.png" is
    _png_pair(tmp_path, "a", image_ext=".PNG", mask_ext=".Png", value=1)
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    assert len(ds) == 1 and (ds[0][1] == 1).all()


def test_folder_instances_pair_by_name_when_the_folder_holds_others(tmp_path):
    # instance files are matched to images by name, not by their place in a sorted listing
    from PIL import Image
    (tmp_path / "instances").mkdir()
    for name, value in (("a", 1), ("c", 2)):
        _png_pair(tmp_path, name, value=value)
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
    _png_pair(tmp_path, "a", size=(5, 9))
    _png_pair(tmp_path, "b", size=(8, 6))
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3)
    assert data.check_folder(ds) == 2 and ds.smallest == (5, 6)


def test_folder_pairs_by_name_with_unpaired_files_kept(tmp_path):
    # with unpaired="keep", a mask without an image must not shift the pairing of the rest
    for name, value in (("a", 1), ("c", 2)):
        _png_pair(tmp_path, name, value=value)
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
