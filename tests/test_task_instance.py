"""The instance task: weight-map loss as PyTorch users write it, objects as components,
PQ of the things on the held-out pass, the figures, and clear errors."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet import backend, functional as F
from minisegnet.data import Cells, Shapes
from minisegnet.instances import unet_weight_map
from minisegnet.tasks.instance import InstanceTask, object_ids, scored_truth
from minisegnet.viz import instances as vi

from helpers import saved_figures, traffic_per_step


def _info(ds, **changes):
    info = dict(num_classes=ds.num_classes, in_channels=ds.in_channels, class_names=list(ds.class_names),
                palette=ds.palette.tolist(), thing_classes=ds.thing_classes, stuff_classes=ds.stuff_classes)
    info.update(changes)
    return info


def _batch(ds, n):
    return tuple(np.stack(part) for part in zip(*(ds[i] for i in range(n))))


def _perfect_logits(masks, num_classes, dtype=np.float32):
    """Logits whose argmax is the truth."""
    onehot = np.eye(num_classes, dtype=dtype)[masks].transpose(0, 3, 1, 2)
    return msn.tensor(backend.asarray(5 * onehot))


def test_loss_is_cross_entropy_times_the_weight_map():
    ds = Cells(3, 32, return_instances=True)
    images, masks, ids = _batch(ds, 3)
    task = InstanceTask(_info(ds))
    targets = task.targets((masks, ids))
    assert set(targets) == {"masks", "instances", "weights"}
    logits = msn.tensor(backend.asarray(np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)))
    w = backend.to_numpy(unet_weight_map(masks, ids))
    expected = (F.cross_entropy(logits, backend.asarray(masks), reduction="none").numpy() * w).mean()
    np.testing.assert_allclose(task.loss(logits, targets).item(), expected, rtol=1e-5)
    assert task.loss(logits, targets).dtype == np.float32           # the weights take the logits' dtype
    task.weight_map = False
    plain = task.targets((masks, ids))
    assert "weights" not in plain
    np.testing.assert_allclose(task.loss(logits, plain).item(),
                               F.cross_entropy(logits, backend.asarray(masks)).item(), rtol=1e-6)


def test_perfect_prediction_finds_the_cells():
    """With the true class map as prediction the objects are the cells: PQ 1 on images whose
    every cell interior is one 4-connected piece (a cell cut in two by a neighbour is found as
    two objects, so the images are picked), and the found objects are the interiors' components."""
    from scipy import ndimage
    ds = Cells(12, 48, return_instances=True)
    images, masks, ids = _batch(ds, 12)
    whole = [i for i in range(12)
             if all(ndimage.label(ids[i] == k)[1] == 1 for k in np.unique(ids[i][ids[i] > 0]))]
    assert len(whole) >= 6
    masks, ids = masks[whole], ids[whole]
    task = InstanceTask(_info(ds))
    scores = task.new_scores()
    for part in (slice(0, 4), slice(4, None)):
        scores.update(_perfect_logits(masks[part], 3), task.targets((masks[part], ids[part])))
    summary = scores.summary()
    assert set(task.score_names) <= set(summary)
    assert summary["pq_things"] == summary["sq_things"] == summary["rq_things"] == 1.0
    assert summary["mean_iou"] == 1.0
    assert any("cell: PQ 1.000" in line for line in scores.report())
    found = task.postprocess(_perfect_logits(masks, 3))
    assert found["classes"].shape == found["instances"].shape == masks.shape
    for a, image in zip(found["instances"], masks):
        np.testing.assert_array_equal(a, ndimage.label(image == 1)[0])


def test_summary_then_report_labels_the_objects_once(monkeypatch):
    """minisegnet evaluate calls summary() then report(): the objects are labelled and scored
    once (twice before), and again only after another update."""
    import minisegnet.tasks.instance as instance_task
    ds = Cells(2, 32, return_instances=True)
    _, masks, ids = _batch(ds, 2)
    task = InstanceTask(_info(ds))
    calls = []
    labelling = instance_task.instances_from_semantic
    monkeypatch.setattr(instance_task, "instances_from_semantic", lambda *a, **k: calls.append(1) or labelling(*a, **k))
    scores = task.new_scores()
    scores.update(_perfect_logits(masks, 3), task.targets((masks, ids)))
    first = scores.summary()["pq_things"]
    scores.report()
    assert len(calls) == 1
    scores.update(_perfect_logits(np.zeros_like(masks), 3), task.targets((masks, ids)))
    assert scores.summary()["pq_things"] < first and len(calls) == 3     # both batches, scored anew


def test_merged_cells_cost_pq():
    """Fill the membrane between touching cells with 'cell': they merge into one object."""
    ds = Cells(4, 48, return_instances=True)
    images, masks, ids = _batch(ds, 4)
    task = InstanceTask(_info(ds))
    merged = np.where(masks == 2, 1, masks)             # every membrane predicted as cell
    scores = task.new_scores()
    scores.update(_perfect_logits(merged, 3), task.targets((masks, ids)))
    assert scores.summary()["pq_things"] < 0.5


def test_speckle_dropped_by_min_size_is_unlabelled_not_an_object():
    """The review's reproducer: a predicted cell split in two 2-pixel pieces, over one true cell.
    With min_size 3 both pieces are dropped; they must not come back as one merged "object 0"
    that matches the cell (PQ 1.0 before), but leave the cell found by nothing (PQ 0)."""
    ds = Cells(2, 48, return_instances=True)
    task = InstanceTask(_info(ds))
    task.min_size = 3
    masks = np.array([[[1, 1, 0, 1, 1]]])               # class 1: cell, one object of 4 pixels
    ids = np.array([[[1, 1, 0, 1, 1]]])
    pred = np.array([[[1, 1, 0, 1, 1]]])                # the same pixels, 4-connected: two pieces of 2
    scores = task.new_scores()
    scores.update(_perfect_logits(pred, 3), task.targets((masks, ids)))
    assert scores.summary()["pq_things"] == 0.0
    counts = scores.panoptic()["per_class"][1]
    assert (counts["tp"], counts["fp"], counts["fn"]) == (0, 0, 1)


def test_a_true_thing_pixel_without_an_id_is_void():
    """A folder's instance map may leave a thing pixel at id 0: it is not one more object (PQ
    would merge all of them into one), it is void."""
    truth = scored_truth(np.array([[[1, 1, 0, 2]]]), np.array([[[5, 0, 0, 0]]]), 3, (1,))
    assert truth.tolist() == [[[[1, 5], [-1, 0], [0, 0], [2, 0]]]]


def test_void_is_minus_one_whatever_the_label_dtypes():
    """uint8 masks (as a PNG gives them) made void 255 instead of -1: a category PQ refuses."""
    truth = scored_truth(np.array([[[0, 1, 255]]], np.uint8), np.array([[[0, 0, 0]]], np.uint16), 3, (1,))
    assert truth.dtype == np.int64 and truth.tolist() == [[[[0, 0], [-1, 0], [-1, 0]]]]


def test_object_ids_number_the_class_and_id_pairs_and_zero_the_rest(cupy):
    """An object is a (class, id) pair of a thing class, as PQ counts it: each pair gets its
    own id, 1 .. K per image; stuff, "don't care" (255) and thing pixels without an id get 0.
    NumPy and CuPy alike, on the input's backend."""
    masks = np.array([[[1, 1, 2, 2, 0, 255, 1, 2]],
                      [[2, 2, 1, 0, 0, 0, 0, 0]]])
    ids = np.array([[[1, 1, 1, 1, 5, 3, 0, 65000]],
                    [[9, 9, 9, 4, 4, 0, 0, 0]]], np.uint16)
    want = [[[1, 1, 2, 2, 0, 0, 0, 3]],        # (1, 1), (2, 1), (2, 65000): three objects
            [[2, 2, 1, 0, 0, 0, 0, 0]]]        # (1, 9) before (2, 9): class first
    got = object_ids(masks, ids, (1, 2))
    assert got.dtype == np.int64 and got.tolist() == want
    on_device = object_ids(cupy.asarray(masks), cupy.asarray(ids), (1, 2))
    assert isinstance(on_device, cupy.ndarray) and backend.to_numpy(on_device).tolist() == want
    assert object_ids(masks[:, :, :0], ids[:, :, :0], (1, 2)).shape == (2, 1, 0)
    one_class = np.where(masks == 1, ids, 0)                 # Cells: one thing class, ids only on it
    assert (object_ids(masks, one_class, (1,)) > 0).tolist() == (one_class > 0).tolist()


def test_the_weight_map_keeps_apart_objects_of_two_classes_with_one_id():
    """The review's reproducer, for the weight map: a circle with id 1 and a square with id 1,
    two pixels apart, are two objects for PQ, so the gap between them gets the border term
    (none before: one id was one object). A background pixel carrying an id is no object."""
    ds = Shapes(1, 16, return_instances=True)
    task = InstanceTask(_info(ds))
    masks = np.zeros((1, 5, 10), np.int64)
    masks[0, 1:4, 1:4], masks[0, 1:4, 6:9] = 1, 2            # a circle and a square
    ids = (masks > 0).astype(np.int64)                       # both id 1
    ids[0, 0, 4] = 3                                         # background with an id
    weights = backend.to_numpy(task.targets((masks, ids))["weights"])
    expected = unet_weight_map(masks, masks)                 # the two objects, numbered by their class
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    # the gap pixel next to the circle: w_c (50 pixels, 3 classes, 32 of background) + the border term
    assert weights[0, 2, 4] == pytest.approx(50 / (3 * 32) + 10 * np.exp(-(1 + 2) ** 2 / 50), rel=1e-6)


def test_a_diagonal_leak_through_a_membrane_does_not_merge_two_cells():
    """4-connectivity (docs/instances.md): two cells behind a membrane two pixels thick, the
    prediction leaking one cell pixel into each side of the membrane, diagonally adjacent.
    Under 4-connectivity they stay two objects, each matching its cell; under 8 they are one,
    matching neither (1 false positive, 2 missed)."""
    ds = Cells(1, 16, return_instances=True)
    task = InstanceTask(_info(ds))
    masks = np.ones((1, 6, 12), np.int64)                    # class 1: cell
    masks[0, :, 5:7] = 2                                     # class 2: the membrane, columns 5 and 6
    ids = np.where(masks[0] == 1, np.where(np.arange(12) < 5, 1, 2), 0)[None]
    pred = masks.copy()
    pred[0, 2, 5] = pred[0, 3, 6] = 1                        # the leak: two cell pixels, corner to corner
    targets = task.targets((masks, ids))

    def cell_counts():
        scores = task.new_scores()
        scores.update(_perfect_logits(pred, 3), targets)
        cell = scores.panoptic()["per_class"][1]
        return cell["tp"], cell["fp"], cell["fn"], round(cell["pq"], 3)

    assert cell_counts() == (2, 0, 0, round(30 / 31, 3))     # the task's default: each cell, IoU 30/31
    task.connectivity = 8
    assert cell_counts() == (0, 1, 2, 0.0)                   # 8-connected: the leak merges them


def test_training_scores_stay_on_the_device(transfers, cupy):
    msn.set_backend("cupy")
    ds = Cells(2, 32, return_instances=True)
    _, masks, ids = _batch(ds, 2)
    task = InstanceTask(_info(ds))
    targets = task.targets((masks, ids))
    logits = _perfect_logits(masks, 3)
    for training in (True, False):
        scores = task.new_scores(training=training)
        with transfers() as log:
            scores.update(logits, targets)
        assert log.count() == 0, log.report()
    assert np.isnan(task.new_scores(training=True).summary()["pq_things"])   # objects are counted held out


def test_other_datasets_and_bad_input():
    shapes = Shapes(2, 32, return_instances=True)
    task = InstanceTask(_info(shapes))
    assert task.thing_classes == (1, 2, 3) and task.stuff_classes == (0,)
    with pytest.raises(ValueError, match="needs thing classes"):
        InstanceTask(_info(shapes, thing_classes=()))
    with pytest.raises(ValueError, match=r"categories \[1\] are claimed as both thing and stuff"):
        InstanceTask(_info(shapes, stuff_classes=(0, 1)))
    _, masks, ids = _batch(shapes, 2)
    with pytest.raises(ValueError, match="needs batches \\(images, masks, instances\\)"):
        task.targets((masks,))
    with pytest.raises(ValueError, match="instances has shape"):
        task.targets((masks, ids[:, :5]))
    with pytest.raises(TypeError, match="instances must be an integer map"):
        task.targets((masks, ids.astype(np.float32)))
    with pytest.raises(ValueError, match=r"masks hold the label 7, outside \[0, 4\)"):
        task.targets((np.where(masks == 0, 7, masks), ids))
    with pytest.raises(ValueError, match="negative id -2"):
        task.targets((masks, ids - 2))


@pytest.mark.parametrize("changes, error, match", [
    # each was accepted: a class the model cannot predict, a truncated 1.7, a class named twice,
    # classes neither thing nor stuff (PQ then refused the prediction at the end of the pass)
    (dict(thing_classes=[5]), ValueError, r"the instance task: classes \[5\] are named as thing or stuff, but the "
                                          r"dataset's classes are 0 .. 3"),
    (dict(thing_classes=[1.7]), TypeError, r"the instance task: thing_classes\[0\] must be an int, got 1.7"),
    (dict(thing_classes=[-1]), ValueError, r"thing_classes\[0\] must be >= 0, got -1"),
    (dict(thing_classes=[1, 1]), ValueError, r"thing_classes lists category ids more than once: \[1\]"),
    (dict(thing_classes=[1], stuff_classes=[0]), ValueError,
     r"the instance task: classes \[2, 3\] are neither thing_classes \[1\] nor stuff_classes \[0\]"),
])
def test_thing_and_stuff_classes_are_checked_against_the_dataset(changes, error, match):
    with pytest.raises(error, match=match):
        InstanceTask(_info(Shapes(1, 16, return_instances=True), **changes))


def test_figures(tmp_path):
    from minisegnet.viz.instances import plot_instance_curves
    ds = Cells(2, 32, return_instances=True)
    images, masks, ids = _batch(ds, 2)
    task = InstanceTask(_info(ds))
    predictions = task.postprocess(_perfect_logits(masks, 3))
    with open(tmp_path / "p.png", "wb") as f:
        task.plot_predictions(images, (masks, ids), predictions, f)
    history = [dict(epoch=e, train_loss=1.0 / e, val_loss=1.2 / e, pq_things=0.1 * e, sq_things=0.5,
                    rq_things=0.2 * e, mean_iou=0.3) for e in (1, 2, 3)]
    with open(tmp_path / "c.png", "wb") as f:
        task.plot_curves(history, f)
    for name in ("p.png", "c.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="history is empty"):
        plot_instance_curves([], tmp_path / "x.png")


def test_confusion_matrix_is_summed_over_batches():
    from minisegnet import metrics
    ds = Cells(4, 24, return_instances=True)
    _, masks, ids = _batch(ds, 4)
    task = InstanceTask(_info(ds))
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 3, 24, 24)).astype(np.float32)
    scores = task.new_scores(training=True)
    for part in (slice(0, 1), slice(1, 4)):
        scores.update(msn.tensor(backend.asarray(logits[part])), task.targets((masks[part], ids[part])))
    np.testing.assert_array_equal(scores.matrix(), metrics.confusion_matrix(logits.argmax(1), masks, 3))


def test_the_class_map_is_counted_by_the_semantic_tasks_accumulator():
    """One confusion-matrix accumulator in the library: the instance scores hold a ConfusionScores."""
    from minisegnet.tasks.semantic import ConfusionScores
    ds = Cells(2, 16, return_instances=True)
    task = InstanceTask(_info(ds))
    for training in (True, False):
        assert isinstance(task.new_scores(training=training).confusion, ConfusionScores)


# ---- through the command line ----------------------------------------------------------------
def test_cli_trains_evaluates_and_predicts_an_instance_model(tmp_path, capsys):
    import json
    import os

    from PIL import Image

    from minisegnet.cli import main
    out = str(tmp_path / "run")
    tiny = ["--size", "32", "--num-train", "16", "--num-val", "8", "--batch-size", "8", "--epochs", "2",
            "--model-arg", "base_channels=4", "--model-arg", "depth=2", "--quiet"]
    assert main(["train", "--task", "instance", *tiny, "--out", out]) == 0
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["config"]["data"] == "cells" and config["info"]["thing_classes"] == [1]
    record = json.load(open(os.path.join(out, "metrics.json")))
    for h in record["epochs"]:
        for key in ("pq_things", "sq_things", "rq_things", "mean_iou"):
            assert h[key] is not None and 0 <= h[key] <= 1, (key, h[key])
        assert 0 <= h["val_loss"] < float("inf")
    capsys.readouterr()
    assert main(["evaluate", out]) == 0
    printed = capsys.readouterr().out
    assert "PQ" in printed and "RQ" in printed and "mean IU" in printed and "cell: PQ" in printed
    image = Cells(1, 40, seed=3, split="test")[0][0]
    Image.fromarray((image[0] * 255).astype(np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", out, str(tmp_path / "x.png"), "--out", str(tmp_path / "pred")]) == 0
    assert sorted(os.listdir(tmp_path / "pred")) == ["x_ids.png", "x_instances.png", "x_mask.png"]
    with Image.open(tmp_path / "pred" / "x_ids.png") as ids:
        assert ids.mode == "I;16" and ids.size == (40, 40)
    with Image.open(tmp_path / "pred" / "x_instances.png") as overlay:
        assert overlay.mode == "RGB" and overlay.size == (40, 40)


def test_a_training_step_sends_the_batch_and_brings_back_the_loss(tmp_path, transfers, cupy):
    """Per training step of the instance task on the GPU (the stand-in): up go the images,
    masks and ids; the weight map is made on the device without a sync; down comes the
    loss, and nothing else (the labels are checked on the host; the cross-entropy's own
    check on the device was a second read each step)."""
    import os

    from minisegnet import train
    config = dict(train.DEFAULTS, task="instance", size=32, num_train=16, num_val=8, batch_size=8, epochs=1,
                  model_args=dict(base_channels=4, depth=2), backend="cupy")
    per_step, shown = traffic_per_step(
        transfers, lambda steps: train.run(dict(config, num_train=8 * steps), out=str(tmp_path / f"s{steps}"),
                                           progress=False, log=lambda *a: None))
    assert not any("instances.py" in site or "instance.py" in site for (d, site, _) in per_step if d == "D2H"), shown
    downloads = [(n, b) for (d, _, _), (n, b) in per_step.items() if d == "D2H"]
    assert downloads == [(1, 4)], shown
    labels_up = sum(b for (d, site, _), (n, b) in per_step.items()
                    if d == "H2D" and os.path.join("tasks", "instance.py") in site)
    assert labels_up == 2 * 8 * 32 * 32 * 8, shown                 # masks and ids, int64, nothing more


# ---- your own folder of instance truth ---------------------------------------------------------
def _write_instance_folder(root, n=6, size=32):
    """images/, masks/ (background 0, cell 1, membrane 2) and 16-bit instances/ PNGs, from Cells."""
    from PIL import Image
    cells = Cells(n, size, seed=5, return_instances=True)
    for name in ("images", "masks", "instances"):
        (root / name).mkdir(parents=True)
    for i in range(n):
        image, mask, ids = cells[i]
        Image.fromarray((image[0] * 255).astype(np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{i}.png")
        Image.fromarray(ids.astype(np.uint16)).save(root / "instances" / f"{i}.png")
    return root


def test_cli_trains_an_instance_model_on_a_folder_given_its_thing_classes(tmp_path, capsys):
    import json
    import os

    from minisegnet.cli import main
    root = _write_instance_folder(tmp_path / "my_folder")
    tiny = ["--size", "32", "--batch-size", "2", "--epochs", "1", "--model-arg", "base_channels=4",
            "--model-arg", "depth=2", "--quiet"]
    out = str(tmp_path / "run")
    assert main(["train", "--task", "instance", "--data", str(root), "--thing-classes", "1", *tiny,
                 "--out", out]) == 0
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["config"]["thing_classes"] == [1]
    assert config["info"]["thing_classes"] == [1] and config["info"]["stuff_classes"] == [0, 2]
    capsys.readouterr()
    assert main(["evaluate", out]) == 0                 # the folder and its things come back from config.json
    assert "class 1: PQ" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    ([], "--thing-classes"),                                        # a folder names no things by itself
    (["--thing-classes", "1,3"], "--thing-classes 1,3: class 3 is not a class of"),
    (["--thing-classes", "1,1"], "--thing-classes 1,1 names class 1 twice"),
    (["--thing-classes", "a"], "--thing-classes"),
])
def test_thing_classes_of_a_folder_are_required_and_checked(tmp_path, capsys, extra, message):
    from minisegnet.cli import main
    root = _write_instance_folder(tmp_path / "my_folder", n=2, size=16)
    out = tmp_path / "run"
    assert main(["train", "--task", "instance", "--data", str(root), *extra, "--size", "16", "--quiet",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_thing_classes_are_for_folder_data(capsys):
    from minisegnet.cli import main
    assert main(["train", "--task", "instance", "--thing-classes", "1,2", "--quiet"]) == 2
    assert "--thing-classes is for folder data" in capsys.readouterr().err


def test_the_predictions_picture_matches_objects_as_pq_does(tmp_path, monkeypatch):
    """predictions.png of the instance task: a found object of another thing class is no match
    (its colour is not the true object's), and "don't care" pixels inside a found object are
    out of its area (a match of IoU 0.5 counting them, 1 without). It matched ids alone."""
    from minisegnet.viz import instances as vi

    info = dict(num_classes=3, in_channels=1, class_names=["bg", "a", "b"], palette=np.zeros((3, 3)),
                ignore_index=255, thing_classes=(1, 2))
    task = InstanceTask(info)
    masks, ids = np.zeros((1, 8, 8), np.int64), np.zeros((1, 8, 8), np.int64)
    masks[0, 0:4, 0:4], ids[0, 0:4, 0:4] = 1, 1             # object A, class a
    masks[0, 4:8, 0:4] = 255                                  # don't care below it
    masks[0, 0:4, 4:8], ids[0, 0:4, 4:8] = 2, 2               # object B, class b
    classes, found = np.zeros((1, 8, 8), np.int64), np.zeros((1, 8, 8), np.int64)
    classes[0, 0:8, 0:4], found[0, 0:8, 0:4] = 1, 1           # A and the don't-care pixels: a match
    classes[0, 0:4, 4:8], found[0, 0:4, 4:8] = 1, 2           # B's pixels, the wrong class: none
    counts, match = [], vi.match_to_truth
    monkeypatch.setattr(vi, "match_to_truth", lambda *a, **k: counts.append(match(*a, **k)) or counts[-1])
    task.plot_predictions(np.zeros((1, 1, 8, 8), np.float32), (masks, ids),
                          dict(classes=classes, instances=found), tmp_path / "p.png")
    relabelled, matched = counts[0]
    assert matched == 1
    truth = object_ids(masks, ids, (1, 2))[0]
    assert (relabelled[0:4, 0:4] == truth[0, 0]).all() and (relabelled[0:4, 4:8] > truth.max()).all()



def test_instance_curves_mark_the_best_pq_on_the_pq_line(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    history = [dict(epoch=e, train_loss=1.0 / e, val_loss=1.2 / e, pq_things=pq, sq_things=sq, rq_things=0.5,
                    mean_iou=0.3) for e, pq, sq in ((1, 0.2, 0.9), (2, 0.6, 0.5), (3, 0.4, 0.7))]
    vi.plot_instance_curves(history, tmp_path / "c.png")
    score_ax = saved[0].axes[1]
    lines = {line.get_label(): list(line.get_ydata()) for line in score_ax.lines}
    assert lines["PQ"] == [0.2, 0.6, 0.4] and lines["SQ"] == [0.9, 0.5, 0.7]
    (mark,) = score_ax.texts
    assert mark.get_text() == "best PQ 0.600" and mark.xy == (2, 0.6)


def test_instance_predictions_count_objects_by_id_and_colour_a_match_as_its_true_object(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    truth = np.zeros((1, 6, 6), np.int64)
    truth[0, 0:3, 0:3], truth[0, 3:6, 3:6] = 3, 7           # two objects, ids 3 and 7
    found = np.zeros_like(truth)
    found[0, 0:3, 0:3] = 5                                   # truth 3 exactly, under another id
    vi.plot_instance_predictions(np.zeros((1, 1, 6, 6), np.float32), truth, found, tmp_path / "p.png")
    _, truth_ax, found_ax = saved[0].axes
    assert truth_ax.get_title() == "truth: 2 objects"
    assert found_ax.get_title() == "found: 1 objects, 1 matched"
    np.testing.assert_allclose(found_ax.images[0].get_array()[1, 1], truth_ax.images[0].get_array()[1, 1])


def test_save_instance_overlay_writes_its_alpha_at_its_scale(tmp_path):
    from PIL import Image

    image = np.full((1, 5, 6), 0.5, np.float32)
    ids = np.zeros((5, 6), np.int64)
    ids[1:4, 1:4] = 1                                       # (2, 2) inside it: tinted, not outlined
    path = vi.save_instance_overlay(image, ids, tmp_path / "o.png", alpha=0.9, scale=3)
    written = np.asarray(Image.open(path))
    expected = vi.instance_overlay(image, ids, alpha=0.9)
    assert written.shape == (15, 18, 3)
    np.testing.assert_array_equal(written[::3, ::3], (expected * 255 + 0.5).astype(np.uint8))


def test_a_float16_weight_map_loss_is_finite_where_its_mean_fits_float16():
    """A one-pixel cell in a 64 x 64 image weighs 4096 / 2 = 2048 (w_c); a confident wrong
    logit there costs 40, and 40 * 2048 = 81920 passes float16's largest value. The loss is a
    mean, about 20: in float16 it was inf, because the weights were cast to float16 and
    multiplied by the per-pixel losses in float16. PyTorch's ``(ce * weights).mean()`` with
    float16 ``ce`` and the float32 weight map gives 20.0."""
    task = InstanceTask(_info(Cells(1, 32, return_instances=True)))
    masks = np.zeros((1, 64, 64), np.int64)
    ids = np.zeros((1, 64, 64), np.int64)
    masks[0, 5, 5] = ids[0, 5, 5] = 1
    targets = task.targets((masks, ids))
    logits = np.zeros((1, task.num_classes, 64, 64), np.float32)
    logits[:, 0] = 40.0                                     # background everywhere, the circle too
    as32 = task.loss(msn.tensor(backend.asarray(logits)), targets).item()
    as16 = task.loss(msn.tensor(backend.asarray(logits.astype(np.float16))), targets).item()
    assert np.isfinite(as16)                                # was inf
    np.testing.assert_allclose(as16, as32, rtol=1e-3)
