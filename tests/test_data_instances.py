"""Instance truth in the data: the toy datasets' opt-in instance maps, things and
stuff, FolderDataset's instance PNGs, and the loader carrying all three parts."""
import numpy as np
import pytest
from scipy import ndimage

from minisegnet import data

TOY = [data.Shapes, data.Roads, data.Cells]


@pytest.mark.parametrize("cls", TOY)
def test_instances_leave_the_picture_unchanged(cls):
    """Opting in adds a third part; the image and the mask are the same arrays, bit for bit."""
    plain = cls(6, (40, 56), seed=3)
    withi = cls(6, (40, 56), seed=3, return_instances=True)
    for i in range(6):
        a, b = plain[i], withi[i]
        assert len(a) == 2 and len(b) == 3
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert b[2].dtype == np.int64 and b[2].shape == (40, 56)
    assert "return_instances=True" in repr(withi) and "return_instances" not in repr(plain)


@pytest.mark.parametrize("cls", TOY)
def test_things_and_stuff_partition_the_classes_and_ids_sit_on_things(cls):
    ds = cls(12, 64, seed=1, return_instances=True)
    things, stuff = set(ds.thing_classes), set(ds.stuff_classes)
    assert things and stuff and not things & stuff
    assert things | stuff == set(range(ds.num_classes))
    for i in range(len(ds)):
        _, mask, ids = ds[i]
        np.testing.assert_array_equal(ids > 0, np.isin(mask, ds.thing_classes))
        present = np.unique(ids[ids > 0])
        np.testing.assert_array_equal(present, np.arange(1, len(present) + 1))   # 1..K, no gaps
        for k in present:                      # one class per object
            assert len(np.unique(mask[ids == k])) == 1


def test_shapes_have_several_objects_of_a_class_some_merged_in_the_mask():
    """Over 40 images: objects of one class share images, and some touch or overlap so
    that one connected blob of the mask holds two objects (components are not instances)."""
    ds = data.Shapes(40, 64, return_instances=True)
    several = merged = 0
    for i in range(len(ds)):
        _, mask, ids = ds[i]
        for c in ds.thing_classes:
            objects = len(np.unique(ids[mask == c]))
            _, blobs = ndimage.label(mask == c, structure=np.ones((3, 3)))
            several += objects >= 2
            merged += objects > blobs
    assert several >= 10 and merged >= 5


def test_cells_touch_but_their_interiors_are_apart():
    """Cells touch (their membranes meet) yet every cell id is its own region of class 1:
    ids never meet across a 4- or 8-neighbour step."""
    ds = data.Cells(10, 64, return_instances=True)
    touching = 0
    for i in range(len(ds)):
        _, mask, ids = ds[i]
        h, w = ids.shape
        pad = np.pad(ids, 1)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                nb = pad[dy:dy + h, dx:dx + w]
                assert not np.any((ids > 0) & (nb > 0) & (nb != ids))
        # touching cells: a membrane pixel with interiors of two different cells within 2 px
        near = [ndimage.grey_dilation(np.where(ids == k, 1, 0), size=(5, 5)) for k in np.unique(ids[ids > 0])]
        touching += int((np.sum(near, axis=0)[mask == 2] >= 2).sum() > 0)
    assert touching >= 8


def test_a_few_cells_in_a_thousand_are_cut_in_two_by_a_neighbour():
    """docs/segmentation-types.md: the 4-connected components of "cell" are nearly always
    the cells; a cell that a neighbour cuts in two is two 4-connected components: 3 of the
    741 cells of 100 generated images, 2 of them 8-connected."""
    ds = data.Cells(100, 64, return_instances=True)
    cells = split = split_8 = 0
    for i in range(len(ds)):
        ids = ds[i][2]
        for k in np.unique(ids[ids > 0]):
            cells += 1
            split += ndimage.label(ids == k)[1] > 1          # scipy's default: 4-connected
            split_8 += ndimage.label(ids == k, structure=np.ones((3, 3)))[1] > 1
    assert (split, split_8, cells) == (3, 2, 741)


def test_roads_cars_are_the_things():
    ds = data.Roads(30, 64, return_instances=True)
    counts = [len(np.unique(ds[i][2][ds[i][2] > 0])) for i in range(len(ds))]
    assert max(counts) >= 2 and min(counts) == 0
    assert ds.class_names[ds.thing_classes[0]] == "car"


def test_return_instances_must_be_a_bool():
    with pytest.raises(TypeError, match="return_instances"):
        data.Cells(4, 32, return_instances="yes")


def test_loader_batches_instance_samples():
    ds = data.Cells(5, 32, return_instances=True)
    batches = list(data.DataLoader(ds, batch_size=2, transform=data.RandomFlip(p=1.0)))
    images, masks, ids = batches[0]
    assert images.shape == (2, 1, 32, 32) and masks.shape == ids.shape == (2, 32, 32)
    np.testing.assert_array_equal(ids[1], ds[1][2][:, ::-1])
    np.testing.assert_array_equal(masks[1], ds[1][1][:, ::-1])


def test_subset_keeps_things_and_stuff():
    sub = data.Subset(data.Roads(4, 32, return_instances=True), [1, 2])
    assert sub.thing_classes == (3,) and sub.stuff_classes == (0, 1, 2, 4)
    assert len(sub[0]) == 3


# ---- FolderDataset ---------------------------------------------------------------
def _write(root, name, h=6, w=5, ids=None):
    from PIL import Image
    for sub in ("images", "masks", "instances"):
        (root / sub).mkdir(exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(root / "images" / f"{name}.png")
    mask = np.zeros((h, w), np.uint8)
    mask[:, 2:] = 1
    Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    if ids is None:
        ids = np.zeros((h, w), np.uint16)
        ids[:3, 2:] = 700          # beyond 8 bits: needs the 16-bit PNG
        ids[3:, 2:] = 65535
    Image.fromarray(ids).save(root / "instances" / f"{name}.png")
    return mask, ids


def test_folder_reads_16_bit_instance_pngs(tmp_path):
    mask, ids = _write(tmp_path, "a")
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2,
                            instances_dir=tmp_path / "instances", thing_classes=[1])
    image, m, got = ds[0]
    assert got.dtype == np.int64 and set(np.unique(got)) == {0, 700, 65535}
    np.testing.assert_array_equal(got, ids.astype(np.int64))
    assert ds.thing_classes == (1,) and ds.stuff_classes == (0,)
    plain = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2)
    assert len(plain[0]) == 2 and plain.thing_classes == ()


def test_folder_instance_errors(tmp_path):
    from PIL import Image
    _write(tmp_path, "a")
    kw = dict(instances_dir=tmp_path / "instances")
    (tmp_path / "instances" / "a.png").rename(tmp_path / "instances" / "b.png")
    with pytest.raises(ValueError, match="no instance PNG.*a"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, **kw)
    (tmp_path / "instances" / "b.png").unlink()
    # another size than the image
    _write(tmp_path, "a")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "instances" / "a.png")
    with pytest.raises(ValueError, match="instance map.*4x4.*image is 5x6"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, **kw)[0]
    # a non-integer map (32-bit float)
    Image.fromarray(np.zeros((6, 5), np.float32)).save(tmp_path / "instances" / "a.tif")
    (tmp_path / "instances" / "a.tif").replace(tmp_path / "instances" / "a.png")
    with pytest.raises(ValueError, match="instance map.*of mode 'F'.*integer"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, **kw)[0]
    # an RGB picture is not an id map
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(tmp_path / "instances" / "a.png")
    with pytest.raises(ValueError, match="of mode 'RGB'.*integer object ids"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, **kw)[0]
    # a negative id in a 32-bit image (PNG has no signed mode: a TIFF under the PNG's name)
    Image.fromarray(np.full((6, 5), -3, np.int32)).save(tmp_path / "instances" / "a.tif")
    (tmp_path / "instances" / "a.tif").replace(tmp_path / "instances" / "a.png")
    with pytest.raises(ValueError, match="negative id -3"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, **kw)[0]
    with pytest.raises(ValueError, match="thing_classes"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, thing_classes=[2])
    with pytest.raises(ValueError, match="twice"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, thing_classes=[1, 1])


def test_ids_of_fully_covered_objects_leave_no_gap():
    from minisegnet.data.toy import _consecutive
    ids = np.array([[0, 2, 2], [5, 5, 0]])          # objects 1, 3, 4 were painted over
    np.testing.assert_array_equal(_consecutive(ids), [[0, 1, 1], [2, 2, 0]])
    np.testing.assert_array_equal(_consecutive(np.array([[3, 7]])), [[1, 2]])   # no background at all
    # in the data: Shapes(seed=0)[156] draws 4 shapes and the second is painted over
    # entirely; Roads(seed=0)[15]'s nearest car hides the farthest
    for ds, index, count in ((data.Shapes(200, 64, return_instances=True), 156, 3),
                             (data.Roads(20, 64, return_instances=True), 15, 2)):
        ids = ds[index][2]
        np.testing.assert_array_equal(np.unique(ids), np.arange(count + 1))


def test_loader_refuses_float_or_misfit_instance_maps():
    class Bad:
        def __init__(self, ids):
            self.ids = ids

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.zeros((1, 4, 5), np.float32), np.zeros((4, 5), np.int64), self.ids
    with pytest.raises(TypeError, match="sample 0: its instances has dtype float64; label maps must hold integers"):
        next(iter(data.DataLoader(Bad(np.ones((4, 5))))))
    with pytest.raises(ValueError, match=r"sample 0: its instances has shape \(5, 4\) but its image is 4x5"):
        next(iter(data.DataLoader(Bad(np.ones((5, 4), np.int64)))))
    images, masks, ids = next(iter(data.DataLoader(Bad(np.ones((4, 5), np.uint16)), batch_size=2)))
    assert ids.dtype == np.int64 and ids.shape == (2, 4, 5)


def test_folder_refuses_a_transposed_instance_map(tmp_path):
    """A 5x6 map for a 6x5 image has the right pixel count and the wrong shape (the 4x4 map above
    could not tell a check that ignored orientation)."""
    from PIL import Image
    _write(tmp_path, "a")                                      # image 6 high, 5 wide
    Image.fromarray(np.zeros((5, 6), np.uint16)).save(tmp_path / "instances" / "a.png")
    with pytest.raises(ValueError, match="instance map.*6x5.*image is 5x6"):
        data.FolderDataset(tmp_path / "images", tmp_path / "masks", 2, instances_dir=tmp_path / "instances")[0]


def test_folder_sorts_thing_classes(tmp_path):
    _write(tmp_path, "a")
    ds = data.FolderDataset(tmp_path / "images", tmp_path / "masks", 3, thing_classes=[2, 1])
    assert ds.thing_classes == (1, 2) and ds.stuff_classes == (0,)
