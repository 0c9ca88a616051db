"""The panoptic task's parts (minisegnet/tasks/panoptic.py): targets made on the device,
the three-term loss against its formula, scores equal to metrics.panoptic_quality of
the post-processed outputs, a model without an instance branch refused, the files
predict writes; and the panoptic figures."""
import io

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from matplotlib.figure import Figure

import minisegnet as msn
from minisegnet import functional as F, metrics, panoptic
from minisegnet.data import Shapes
from minisegnet.models import PanopticDeepLab
from minisegnet.tasks.panoptic import PanopticTask
from minisegnet.cli import main
from minisegnet.viz import panoptic as vp
from helpers import saved_figures

to_numpy = msn.backend.to_numpy


def _info(ds=Shapes):
    return dict(num_classes=ds.num_classes, in_channels=ds.in_channels, class_names=list(ds.class_names),
                palette=[list(c) for c in ds.colors], ignore_index=None, thing_classes=list(ds.thing_classes),
                stuff_classes=list(ds.stuff_classes))


def _batch(n=2, size=48):
    ds = Shapes(n, size, seed=3, return_instances=True)
    images, masks, ids = (np.stack(parts) for parts in zip(*(ds[i] for i in range(n))))
    return images, masks, ids


def _small_model():
    return PanopticDeepLab(3, 4, output_stride=8, atrous_rates=(1, 2), width_mult=0.25, aspp_channels=8,
                           low_level_channels=4, decoder_channels=8, dropout=0.0, instance_aspp_channels=8,
                           instance_low_level_channels=4, instance_decoder_channels=8, head_channels=4)


def test_loss_is_the_sum_of_the_three_terms():
    task = PanopticTask(_info())
    images, masks, ids = _batch()
    targets = task.targets((masks, ids))
    assert set(targets) >= {"masks", "instances", "center", "offset", "center_weight", "offset_weight"}
    model = _small_model()
    out = model(msn.tensor(images))
    t = panoptic.panoptic_targets(ids, sigma=task.sigma)
    thing = float(t["offset_weight"].sum())
    expected = (F.cross_entropy(out["semantic"], msn.tensor(masks)).item()
                + task.center_loss_weight * F.mse_loss(out["center"], msn.tensor(t["center"])).item()
                + task.offset_loss_weight * np.abs(out["offset"].numpy() - t["offset"])[t["offset_weight"] > 0].sum() / thing)
    loss = task.loss(out, targets)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_batch_without_objects_has_a_finite_loss():
    task = PanopticTask(_info())
    images, masks, ids = _batch()
    empty = np.zeros_like(ids)
    out = _small_model()(msn.tensor(images))
    assert np.isfinite(task.loss(out, task.targets((np.zeros_like(masks), empty))).item())


def test_scores_equal_panoptic_quality_of_the_postprocessed_outputs():
    task = PanopticTask(_info())
    images, masks, ids = _batch(3)
    model = _small_model().eval()
    with msn.no_grad():
        out = model(msn.tensor(images))
    scores = task.new_scores()
    scores.update(out, task.targets((masks, ids)))
    summary = scores.summary()
    pred = task.postprocess(out)["panoptic"]
    expected = metrics.panoptic_quality(pred, np.stack([masks, ids], -1), task.thing_classes, task.stuff_classes)
    for key in ("pq", "sq", "rq", "pq_things", "pq_stuff"):
        assert summary[key] == pytest.approx(expected[key], nan_ok=True), key
    kept = scores.batches[0][0]["semantic"]                 # the class map, not the logits: 4x less here
    assert kept.shape == masks.shape and kept.nbytes * 4 == out["semantic"].data.nbytes
    cm = metrics.confusion_matrix(to_numpy(out["semantic"].data.argmax(1)), masks, 4)
    assert summary["mean_iou"] == pytest.approx(metrics.mean_iou(cm))
    assert any("PQ" in line for line in scores.report())
    training = task.new_scores(training=True)
    training.update(out, task.targets((masks, ids)))
    assert "pq" not in training.summary() and "mean_iou" in training.summary()
    assert set(task.score_names) <= set(summary) and task.best_score in summary


def test_scores_over_two_updates_with_real_matches():
    """Matches that exist, misses that are not false positives, two batches: the scores are PQ of
    all of it (an untrained model matched nothing, so scoring only the last batch, or swapping
    prediction and truth, passed the test above)."""
    task = PanopticTask(_info())
    images, masks, ids = _batch(4)
    t = task.targets((masks, ids))
    drawn = np.where(np.isin(ids, [1]), 0, masks)           # object 1 of each image missed: FN, not FP
    sem = msn.tensor((10.0 * np.eye(4)[drawn].transpose(0, 3, 1, 2)).astype(np.float32))
    out = {"semantic": sem, "center": msn.tensor(t["center"]), "offset": msn.tensor(t["offset"])}
    scores = task.new_scores()
    for s in (slice(0, 2), slice(2, 4)):
        scores.update({k: v[s] for k, v in out.items()}, {k: v[s] for k, v in t.items()})
    pred = task.postprocess(out)["panoptic"]
    expected = metrics.panoptic_quality(pred, np.stack([masks, ids], -1), task.thing_classes, task.stuff_classes)
    assert 0 < expected["pq"] <= 1
    assert sum(expected["per_class"][c]["tp"] for c in task.thing_classes) > 0
    assert any(v["fp"] != v["fn"] for v in expected["per_class"].values())
    for key in ("pq", "sq", "rq", "pq_things", "sq_things", "rq_things", "pq_stuff", "sq_stuff", "rq_stuff"):
        assert scores.summary()[key] == pytest.approx(expected[key], nan_ok=True), key
    assert scores.panoptic()["per_class"] == expected["per_class"]


def test_loss_weights_pixels_by_validity():
    """A thing pixel without an id is void: no centre or offset loss there (the Shapes data give
    every thing pixel an id, so dropping the validity mask, or the centre's weight, passed)."""
    task = PanopticTask(_info())
    images, masks, ids = _batch()
    ids = ids.copy()
    ids[ids == ids.max()] = 0                                # a thing object without an id: void
    targets = task.targets((masks, ids))
    valid = ~(np.isin(masks, task.thing_classes) & (ids == 0))
    assert not valid.all()
    np.testing.assert_array_equal(to_numpy(targets["center_weight"])[:, 0], valid)
    np.testing.assert_array_equal(to_numpy(targets["offset_weight"])[:, 0], valid & (ids > 0))
    out = _small_model()(msn.tensor(images))
    t = panoptic.panoptic_targets(ids, sigma=task.sigma, valid=valid)
    w = t["offset_weight"] > 0
    expected = (F.cross_entropy(out["semantic"], msn.tensor(masks)).item()
                + task.center_loss_weight * ((to_numpy(out["center"].data) - t["center"])[:, 0][valid] ** 2).mean()
                + task.offset_loss_weight * np.abs(to_numpy(out["offset"].data) - t["offset"])[w].sum() / w.sum())
    assert task.loss(out, targets).item() == pytest.approx(expected, rel=1e-5)


def test_targets_check_and_renumber_the_ids_on_the_host():
    """File-style ids (17, 65000) give the targets of ids 1 .. K, renumbered on the host before
    the upload; bad labels are refused there, naming the rule, before anything goes up."""
    task = PanopticTask(_info())
    _, masks, ids = _batch()
    large = np.where(ids > 0, ids + 65000, 0)
    got, want = task.targets((masks, large)), task.targets((masks, ids))
    for key in ("center", "offset", "center_weight", "offset_weight", "instances"):
        np.testing.assert_array_equal(to_numpy(got[key]), to_numpy(want[key]), err_msg=key)
    with pytest.raises(ValueError, match="instances holds the negative id -2"):
        task.targets((masks, ids - 2))
    with pytest.raises(ValueError, match=r"masks hold the label 7, outside \[0, 4\)"):
        task.targets((np.where(masks == 0, 7, masks), ids))


def _perfect_outputs(masks, targets):
    """Outputs whose argmax is ``masks`` and whose heatmap and offsets are the targets'."""
    sem = (10.0 * np.eye(4)[masks].transpose(0, 3, 1, 2)).astype(np.float32)
    return {"semantic": msn.tensor(msn.backend.asarray(sem)), "center": msn.tensor(targets["center"]),
            "offset": msn.tensor(targets["offset"])}


def test_an_object_is_a_class_and_id_pair_and_ids_on_stuff_are_ignored():
    """The review's reproducer: a circle with id 1 and a square with id 1 are two objects for PQ
    (it keys segments by (category, id)), so the targets must make two centres, not one between
    them: fed back as perfect outputs they score PQ 1 (0.333 when the targets grouped pixels by
    the id alone). Ids on stuff pixels (Cityscapes-style PNGs number stuff regions too) make no
    centre and no offset loss."""
    task = PanopticTask(_info())
    masks = np.zeros((1, 16, 24), np.int64)
    ids = np.zeros_like(masks)
    masks[0, 2:7, 2:7], ids[0, 2:7, 2:7] = 1, 1              # a circle (class 1), id 1: centre (4, 4)
    masks[0, 9:14, 15:20], ids[0, 9:14, 15:20] = 2, 1        # a square (class 2), id 1 too: centre (11, 17)
    ids[0, 14:, :] = 7                                       # background (stuff) carrying an id
    t = task.targets((masks, ids))
    coords, valid = (to_numpy(a) for a in panoptic.find_centers(t["center"]))
    assert sorted(coords[0][valid[0]].tolist()) == [[4, 4], [11, 17]]       # two centres, none on stuff
    np.testing.assert_array_equal(to_numpy(t["offset_weight"])[0, 0], masks[0] > 0)   # offsets on things only
    assert to_numpy(t["instances"])[0][masks[0] == 0].max() == 0
    scores = task.new_scores()
    scores.update(_perfect_outputs(masks, t), t)
    assert scores.summary()["pq"] == 1.0
    assert [scores.panoptic()["per_class"][c]["tp"] for c in (1, 2)] == [1, 1]


def test_scores_void_the_truth_as_the_docs_say():
    """PQ scores the truth with "don't care" pixels (ignore_index) and thing pixels without an
    id void (docs/instances.md, ``scored_truth``), not the raw (masks, ids): scoring the raw
    stack, which counts the id-0 pixels of a class as one more object and the ignore label as
    a category, passed every other test."""
    task = PanopticTask(dict(_info(), ignore_index=255))
    _, masks, ids = _batch(2)
    perfect = _perfect_outputs(masks, task.targets((masks, ids)))
    labels, truth_ids = masks.copy(), ids.copy()
    labels[:, :6, :] = 255                                   # the top rows: "don't care"
    truth_ids[0][ids[0] == ids[0].max()] = 0                 # a shape of image 0 without an id
    scores = task.new_scores()
    scores.update(perfect, task.targets((labels, truth_ids)))
    void = (labels == 255) | (np.isin(labels, task.thing_classes) & (truth_ids == 0))
    truth = np.stack([np.where(void, -1, labels), np.where(void, 0, truth_ids)], -1)
    pred = task.postprocess(perfect)["panoptic"]
    expected = metrics.panoptic_quality(pred, truth, task.thing_classes, task.stuff_classes)
    assert scores.panoptic()["per_class"] == expected["per_class"]
    assert scores.summary()["pq"] == pytest.approx(expected["pq"])
    # the voiding matters here: the unvoided id-0 shape would be one more true positive
    unvoided = np.stack([np.where(labels == 255, -1, labels), truth_ids], -1)
    raw = metrics.panoptic_quality(pred, unvoided, task.thing_classes, task.stuff_classes)
    assert sum(raw["per_class"][c]["tp"] for c in task.thing_classes) == \
        sum(expected["per_class"][c]["tp"] for c in task.thing_classes) + 1


def test_a_model_without_an_instance_branch_is_refused_by_name():
    task = PanopticTask(_info())
    with pytest.raises(ValueError, match="--task panoptic needs a model with an instance branch .* deeplabv3plus "
                                         "predicts classes only"):
        task.build_model("deeplabv3plus", dict(output_stride=8, atrous_rates=(1, 2, 3)))
    model = task.build_model("panoptic-deeplab", PanopticTask.models["panoptic-deeplab"])
    assert isinstance(model, PanopticDeepLab) and model.num_classes == 4
    with pytest.raises(ValueError, match="instance branch"):
        task.loss(msn.tensor(np.zeros((1, 4, 8, 8), np.float32)), task.targets(
            (np.zeros((1, 8, 8), np.int64), np.zeros((1, 8, 8), np.int64))))


def test_data_without_things_is_refused():
    info = dict(_info(), thing_classes=[], stuff_classes=None)
    with pytest.raises(ValueError, match="needs thing classes"):
        PanopticTask(info)
    with pytest.raises(ValueError, match=r"categories \[1\] are claimed as both thing and stuff"):
        PanopticTask(dict(_info(), thing_classes=[1, 2], stuff_classes=[0, 1]))
    with pytest.raises(ValueError, match="needs batches \\(images, masks, instances\\)"):
        PanopticTask(_info()).targets((np.zeros((1, 8, 8), np.int64),))


def test_write_prediction_and_figures(tmp_path):
    from PIL import Image

    task = PanopticTask(_info())
    images, masks, ids = _batch(2)
    pan = np.stack([masks, ids], -1)
    pan[0, 0, 0] = [panoptic.VOID, 0]
    paths, note = task.write_prediction(images[0], dict(panoptic=pan[0], classes=masks[0]), str(tmp_path), "img")
    instances, overlay, encoded = (np.asarray(Image.open(p)) for p in paths)
    assert overlay.shape == instances.shape == (48, 48, 3)
    assert not (instances[ids[0] == 0] != (images[0].transpose(1, 2, 0)[ids[0] == 0] * 255 + 0.5).astype(
        np.uint8)).any()                                  # the instance overlay leaves stuff untinted
    assert encoded.dtype == np.uint16 and encoded[0, 0] == 65535
    np.testing.assert_array_equal(encoded.ravel()[1:], (masks[0] * 1000 + ids[0]).ravel()[1:])
    assert "object" in note
    for plot, args in ((task.plot_curves, ([dict(epoch=1, train_loss=2.0, val_loss=1.5, pq=0.3, sq=0.7, rq=0.4,
                                                  pq_things=0.2, pq_stuff=0.6, mean_iou=0.5)],)),
                       (task.plot_predictions, (images, (masks, ids), dict(panoptic=pan)))):
        buffer = io.BytesIO()
        plot(*args, buffer)
        assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_panoptic_overlay_colours():
    from minisegnet.viz.panoptic import panoptic_overlay

    image = np.zeros((3, 4, 4))
    pan = np.zeros((4, 4, 2), np.int64)
    pan[1:3, 1:3] = [1, 1]           # one object
    pan[0, 0] = [panoptic.VOID, 0]   # void: the image itself
    palette = np.array([[255, 0, 0], [0, 255, 0]], np.uint8)
    rgb = panoptic_overlay(image, pan, palette, alpha=1.0, outline=None)
    np.testing.assert_allclose(rgb[0, 1], [1, 0, 0])      # stuff: its class colour
    np.testing.assert_allclose(rgb[0, 0], [0, 0, 0])      # void: untouched
    from minisegnet.viz.instances import instance_colors
    np.testing.assert_allclose(rgb[1, 1], instance_colors(1)[1])   # a thing: its own colour, not the class's
    with pytest.raises(ValueError, match="palette has 2 colours"):
        panoptic_overlay(image, np.full((4, 4, 2), 5), palette)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_predictions_plot_matches_objects_as_pq_does(seed):
    """predictions.png colours a predicted object like the true one PQ matches it with: the
    plot's match count equals PQ's true positives (same category, IoU > 0.5, void pixels out
    of the union), and a matched object carries its true object's number."""
    from minisegnet.viz.panoptic import _matched_objects

    rng = np.random.default_rng(seed)
    things, stuff = (1, 2), (0,)

    def random_map():
        pan = np.zeros((12, 12, 2), np.int64)
        for _ in range(rng.integers(1, 6)):
            y, x, h, w = rng.integers(0, 10, 2).tolist() + rng.integers(2, 7, 2).tolist()
            pan[y:y + h, x:x + w] = [rng.choice(things), rng.integers(1, 3)]   # ids repeat across categories
        return pan

    truth, found = random_map(), random_map()
    if rng.random() < 0.5:
        found = truth.copy()
        found[rng.random((12, 12)) < 0.3] = [0, 0]
    truth[rng.random((12, 12)) < 0.1] = [panoptic.VOID, 0]
    true_map, found_map, objects, count, matched = _matched_objects(truth, found)
    tp = metrics.panoptic_counts(found[None], truth[None], things, stuff)[1]
    assert matched == int(tp[1:].sum())                      # columns: stuff 0, then things 1, 2
    pq_objects = {(c, i) for c, i in truth[truth[..., 1] > 0].tolist() if c >= 0}
    assert objects == len(pq_objects) and count == len({tuple(p) for p in found[found[..., 1] > 0].tolist()})
    for k in np.unique(found_map[..., 1][found_map[..., 1] > 0]):      # a match is drawn as its true object
        if k <= objects:
            where = found_map[..., 1] == k
            assert (found[where][:, 0] == true_map[true_map[..., 1] == k][0, 0]).all()


def test_a_predicted_object_of_another_category_is_no_match():
    """PQ matches segments of one category only: a 'car' found exactly where a 'person' is
    matches nothing, and is drawn in a colour no true object has."""
    from minisegnet.viz.panoptic import _matched_objects

    truth = np.zeros((6, 6, 2), np.int64)
    truth[1:4, 1:4] = [1, 1]
    found = truth.copy()
    found[1:4, 1:4] = [2, 1]
    _, found_map, objects, count, matched = _matched_objects(truth, found)
    assert (objects, count, matched) == (1, 1, 0)
    assert (found_map[1:4, 1:4, 1] > objects).all()
    same = _matched_objects(truth, truth.copy())
    assert same[4] == 1 and (same[1][1:4, 1:4, 1] == 1).all()


TINY_PANOPTIC = dict(num_train=8, num_val=4, size=32, epochs=2, batch_size=4,
                     model_args=dict(atrous_rates=(1, 2), width_mult=0.25, aspp_channels=8, low_level_channels=4,
                                     decoder_channels=8, instance_aspp_channels=8, instance_low_level_channels=4,
                                     instance_decoder_channels=8, head_channels=4))


def test_train_evaluate_predict_from_the_command_line(tmp_path, capsys):
    """``minisegnet train --task panoptic`` with the task's default model and data
    (tiny sizes), then ``evaluate`` prints PQ, SQ, RQ and the semantic scores and
    ``predict`` writes the panoptic overlay and the 16-bit panoptic map."""
    import json
    import os

    from PIL import Image

    from minisegnet import train
    from minisegnet.cli import main

    out = train.run(dict(train.DEFAULTS, task="panoptic", **TINY_PANOPTIC), out=str(tmp_path / "run"),
                    progress=False, log=lambda *a: None)
    config = json.load(open(os.path.join(out, "config.json")))["config"]
    assert (config["task"], config["model"], config["data"]) == ("panoptic", "panoptic-deeplab", "shapes")
    record = json.load(open(os.path.join(out, "metrics.json")))["epochs"][-1]
    assert {"pq", "sq", "rq", "pq_things", "pq_stuff", "mean_iou", "train_mean_iou"} <= set(record)
    assert Image.open(os.path.join(out, "curves.png")).size[0] > 100
    assert main(["evaluate", out]) == 0
    printed = capsys.readouterr().out
    for label in ("PQ", "SQ", "RQ", "PQ things", "PQ stuff", "mean IU", "circle (thing): PQ"):
        assert label in printed, label
    image = (np.random.default_rng(0).random((32, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "street.png")
    assert main(["predict", out, str(tmp_path / "street.png"), "--out", str(tmp_path / "pred")]) == 0
    assert sorted(os.listdir(tmp_path / "pred")) == ["street_instances.png", "street_panoptic.png",
                                                     "street_panoptic_ids.png"]
    assert np.asarray(Image.open(tmp_path / "pred" / "street_panoptic_ids.png")).shape == (32, 40)


def test_a_semantic_model_for_the_panoptic_task_is_a_clear_error(capsys):
    from minisegnet.cli import main

    assert main(["train", "--task", "panoptic", "--model", "deeplabv3plus", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--model 'deeplabv3plus' is not a model of --task panoptic" in err and "panoptic-deeplab" in err


def test_a_training_step_sends_the_batch_and_brings_back_the_loss(tmp_path, transfers, cupy):
    """On the CuPy stand-in: per step the images, masks and instance ids go up and the
    targets are made on the device; only the loss (and at most a few scalars) comes down."""
    import os

    from minisegnet import train

    logs = {}
    for steps in (1, 2):
        with transfers() as log:
            train.run(dict(train.DEFAULTS, task="panoptic", backend="cupy", augment="none",
                           **dict(TINY_PANOPTIC, epochs=1, num_train=4 * steps)),
                      out=str(tmp_path / f"s{steps}"), progress=False, log=lambda *a: None)
        logs[steps] = log.by_site()
    per_step = {}
    for key in set(logs[1]) | set(logs[2]):
        n = logs[2].get(key, (0, 0))[0] - logs[1].get(key, (0, 0))[0]
        size = logs[2].get(key, (0, 0))[1] - logs[1].get(key, (0, 0))[1]
        if n:
            per_step[key] = (n, size)
    shown = "\n".join(f"{d} {s} {w}: {n:g} x, {b:g} B" for (d, s, w), (n, b) in sorted(per_step.items()))
    # The driver and the task: the batch goes up (images; masks and ids), nothing else.
    ours = (os.path.join("minisegnet", "train.py"), os.path.join("minisegnet", "tasks"),
            os.path.join("minisegnet", "panoptic.py"))
    def by_file(direction, keep=lambda site: True):
        totals = {}
        for (d, site, _), (n, size) in per_step.items():
            if d == direction and keep(site):
                name = site.split(":")[0].split("minisegnet" + os.sep)[-1]
                count, total = totals.get(name, (0, 0))
                totals[name] = (count + n, total + size)
        return totals

    uploads = by_file("H2D", lambda site: any(o in site for o in ours))
    assert uploads == {"train.py": (1, 4 * 3 * 32 * 32 * 4),
                       os.path.join("tasks", "panoptic.py"): (2, 2 * 4 * 32 * 32 * 8)}, shown
    # Down: the loss alone. The labels and ids are checked on the host, where they arrive, so
    # neither the targets nor the cross-entropy read anything back (its own label check did).
    downloads = by_file("D2H")
    assert downloads == {"autograd.py": (1, 4)}, shown


def test_the_docs_figures_come_from_stored_model_outputs():
    """The stored outputs (examples/panoptic_deeplab_shapes.py --figure-outputs) hold a
    held-out image where touching objects of one class are one blob of the class map but
    two objects after grouping, which the segmentation-types figure shows and says."""
    import matplotlib.pyplot as plt

    from minisegnet.viz import panoptic as vp

    data = vp.load_figure_outputs()
    assert data["semantic"].shape[1] == len(data["class_names"]) == len(data["palette"])
    chosen = next(i for i in range(len(data["images"])) if vp.touching_objects(data, i) > 0)
    fig = vp.figure_segmentation_types(data)
    titles = [ax.get_title() for ax in fig.axes]
    plt.close(fig)
    assert "touching objects of one class are one blob" in titles[1]
    assert f"held-out image {int(data['indices'][chosen])}" in fig.get_suptitle()
    # segmentation-types.md says the figure's objects are circles
    pan = vp._inference(data)[chosen]
    names = [str(n) for n in data["class_names"]]
    assert {names[c] for c in np.unique(pan[..., 0][pan[..., 1] > 0])} == {"circle"}
    fig = vp.figure_grouping(data)
    assert "peaks" in fig.axes[0].get_title()
    plt.close(fig)



def test_panoptic_overlay_draws_each_stuff_class_in_its_own_colour():
    image = np.zeros((3, 2, 3))
    pan = np.zeros((2, 3, 2), np.int64)
    pan[:, 0, 0], pan[:, 1, 0], pan[:, 2, 0] = 0, 1, 2
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    rgb = vp.panoptic_overlay(image, pan, palette, alpha=1.0, outline=None)
    np.testing.assert_allclose(rgb[0], np.eye(3))


def test_panoptic_curves_label_each_score_and_mark_the_best_pq(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    history = [dict(epoch=e, train_loss=1.0 / e, val_loss=1.2 / e, pq=pq, sq=0.9 - 0.1 * e, rq=0.5,
                    pq_things=0.1 * e, pq_stuff=0.05 * e, mean_iou=0.4) for e, pq in ((1, 0.2), (2, 0.5), (3, 0.3))]
    vp.plot_panoptic_curves(history, tmp_path / "c.png")
    score_ax = saved[0].axes[1]
    lines = {line.get_label(): np.asarray(line.get_ydata()) for line in score_ax.lines}
    np.testing.assert_allclose(lines["PQ things"], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(lines["PQ stuff"], [0.05, 0.1, 0.15])
    (mark,) = score_ax.texts
    assert mark.get_text() == "best PQ 0.500" and mark.xy == (2, 0.5)


def test_panoptic_predictions_titles_legend_and_a_match_in_its_true_objects_colour(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    truth = np.zeros((1, 6, 6, 2), np.int64)
    truth[0, 0:3, 0:3] = [1, 4]                             # a thing of class 1, instance id 4
    pred = np.zeros_like(truth)
    pred[0, 0:3, 0:3] = [1, 9]                              # the same object, another id: PQ matches it
    palette = np.array([[40, 40, 40], [200, 0, 0]], np.uint8)
    vp.plot_panoptic_predictions(np.zeros((1, 3, 6, 6), np.float32), truth, pred, palette, tmp_path / "p.png",
                                 class_names=["ground", "car"], scores=["PQ 1.00"])
    fig = saved[0]
    _, truth_ax, pred_ax = fig.axes
    assert pred_ax.get_title() == "prediction: 1 objects,\n1 matched, PQ 1.00"
    np.testing.assert_allclose(pred_ax.images[0].get_array()[1, 1], truth_ax.images[0].get_array()[1, 1])
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["ground", "car"]


def test_a_batch_with_no_pixel_for_the_centre_loss_has_a_finite_loss():
    """Every pixel a thing pixel without an object id (a crop inside an unnumbered region): all
    of them are void for the centre and the offsets (center_weight is 0 everywhere), while the
    cross-entropy still counts them. The centre term must add 0, as the offset term does and as
    the reference Panoptic-DeepLab's safe division does, not 0/0 = NaN for the whole loss."""
    task = PanopticTask(_info())
    images, masks, ids = _batch()
    masks, ids = np.ones_like(masks), np.zeros_like(ids)     # class 1 (a thing) everywhere, no id
    targets = task.targets((masks, ids))
    assert float(to_numpy(targets["center_weight"]).sum()) == 0
    out = _small_model()(msn.tensor(images))
    expected = F.cross_entropy(out["semantic"], msn.tensor(masks)).item()
    loss = task.loss(out, targets)
    assert np.isfinite(loss.item())                          # was NaN
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()


def test_panoptic_overlay_tells_apart_objects_of_two_categories_that_share_an_id():
    # a segment is one (category, instance id) pair (metrics/panoptic.py; viz.panoptic._objects: "ids
    # start per category, so a car 1 and a person 1 are two objects"); panoptic_overlay promises "each
    # thing instance ... its own colour ... instances outlined", but coloured and outlined by the id
    # alone: a car 1 touching a person 1 came out one colour with no outline between them
    from minisegnet.viz.panoptic import panoptic_overlay

    image = np.full((3, 4, 6), 0.5)
    pan = np.zeros((4, 6, 2), np.int64)
    pan[:, :3] = [1, 1]                                  # car 1
    pan[:, 3:] = [2, 1]                                  # person 1, touching it
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    rgb = panoptic_overlay(image, pan, palette, alpha=1.0, outline=None)
    assert not np.allclose(rgb[0, 0], rgb[0, 5])         # two objects, two colours
    white = (1.0, 1.0, 1.0)
    outlined = panoptic_overlay(image, pan, palette, alpha=1.0, outline=white)
    np.testing.assert_allclose(outlined[1, 2], white)    # the border between them is drawn
    np.testing.assert_allclose(outlined[1, 3], white)


def test_the_prediction_titles_of_predictions_png_fit_in_the_figure(tmp_path, monkeypatch):
    """predictions.png of a panoptic run titles each prediction 'prediction: N objects, M matched,
    PQ 0.xx' (tasks/panoptic.py:242, viz/panoptic.py:140) at fontsize 9 over a 7.5-inch-wide figure
    of three columns: the title runs past the figure's right edge, so its last characters are
    cut off (the PNG reads 'PQ 0.0' for 'PQ 0.04')."""
    saved, save = [], Figure.savefig

    def keep(fig, *args, **kwargs):
        saved.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    assert main(["train", "--task", "panoptic", "--size", "32", "--num-train", "16", "--num-val", "8",
                 "--batch-size", "8", "--epochs", "1", "--model-arg", "width_mult=0.125", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    figure = next(f for f in saved if any(ax.get_title().startswith("prediction") for ax in f.axes))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(figure).get_renderer()       # the canvas savefig drew on (Agg, for a PNG)
    right = figure.bbox.x1
    for ax in figure.axes:
        title = ax.title
        if title.get_text().startswith("prediction"):
            extent = title.get_window_extent(renderer)
            assert extent.x1 <= right + 0.5, (title.get_text(), extent.x1, right)


def test_panoptic_prediction_title_counts_found_then_matched_objects(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    truth = np.zeros((1, 6, 6, 2), np.int64)
    truth[0, 0:3, 0:3] = [1, 4]                             # one true object
    pred = np.zeros_like(truth)
    pred[0, 0:3, 0:3] = [1, 9]                              # it, matched
    pred[0, 4:6, 4:6] = [1, 2]                              # and one more, matching nothing
    palette = np.array([[40, 40, 40], [200, 0, 0]], np.uint8)
    vp.plot_panoptic_predictions(np.zeros((1, 3, 6, 6), np.float32), truth, pred, palette, tmp_path / "p.png")
    _, _, pred_ax = saved[0].axes
    assert pred_ax.get_title() == "prediction: 2 objects,\n1 matched"


def test_a_float16_loss_counts_more_pixels_than_float16_holds():
    """256 x 256 = 65536 labelled pixels: the centre MSE's count passes float16's largest
    value (65504). Cast to the outputs' float16 it became inf, and the centre term
    (sum / inf) silently 0: 8.19 instead of 507.3. The count must stay a float32 number,
    as PyTorch users divide by ``center_weight.sum()`` (float32)."""
    task = PanopticTask(_info())
    h = w = 256
    masks = np.zeros((1, h, w), np.int64)
    ids = np.zeros((1, h, w), np.int64)
    masks[0, 10:40, 10:40] = 1
    ids[0, 10:40, 10:40] = 1
    targets = task.targets((masks, ids))
    on = msn.backend.asarray

    def loss(dtype):
        outputs = {"semantic": msn.tensor(on(np.zeros((1, task.num_classes, h, w), dtype))),
                   "center": msn.tensor(on(np.full((1, 1, h, w), 0.5, dtype))),
                   "offset": msn.tensor(on(np.zeros((1, 2, h, w), dtype)))}
        return task.loss(outputs, targets).item()

    assert loss(np.float16) == pytest.approx(loss(np.float32), rel=1e-3)     # was 8.19 against 507.3
