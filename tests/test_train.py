"""train.py on its own: the trainer's epochs, resume, best epoch, held-out loss and divergence (cases from a mutation review, stop 38: each fails on a mutant that every test before let through; whole runs through the CLI are in test_train_cli.py)."""
import json
import os

import numpy as np
import pytest

from minisegnet import data, data_parallel, optim, run_config, train
from minisegnet.nn import Parameter
from minisegnet.viz import training as viz_training
from helpers import saved_figures

CONFIG = dict(train.DEFAULTS, size=32, num_train=16, num_val=8, batch_size=8, epochs=2,
              model_args=dict(base_channels=4, depth=2), backend="numpy", processes=1)
QUIET = dict(progress=False, log=lambda *a: None)


class _Recorded(data_parallel.OneProcess):
    """A one-process step that notes the process count it was asked for and every set_epoch."""
    calls = []

    def set_epoch(self, epoch):
        _Recorded.calls.append(("set_epoch", epoch))


@pytest.fixture
def recorded(monkeypatch):
    _Recorded.calls = []

    def training_step(model, loss_of, processes, seed=0, forward_of=None):
        _Recorded.calls.append(("processes", processes))
        return _Recorded(model, loss_of, forward_of)

    monkeypatch.setattr(data_parallel, "training_step", training_step)
    return _Recorded.calls


def test_each_epoch_reseeds_the_workers_for_that_epoch(tmp_path, recorded):
    # guards `stepper.set_epoch(epoch)`: the workers' dropout numbers follow the epoch, a resume's too
    out = train.run(dict(CONFIG, epochs=2), out=str(tmp_path / "r"), **QUIET)
    train.run({"epochs": 3, "backend": "numpy", "processes": 1}, out=out, resume=True, **QUIET)
    assert [epoch for kind, epoch in recorded if kind == "set_epoch"] == [0, 1, 2]


def test_a_resume_uses_this_machines_process_count_not_the_runs(tmp_path, recorded):
    # guards _resume_point taking --processes from the resuming command (like the backend)
    out = train.run(dict(CONFIG, epochs=1), out=str(tmp_path / "r"), **QUIET)
    train.run({"epochs": 2, "backend": "numpy", "processes": 2}, out=out, resume=True, **QUIET)
    assert [n for kind, n in recorded if kind == "processes"] == [1, 2]
    assert json.load(open(os.path.join(out, "config.json")))["config"]["processes"] == 2


def test_an_epoch_without_a_score_is_never_the_best(tmp_path, monkeypatch):
    # guards _rank: an undefined held-out score (None) ranks below every number, not above
    real_evaluate, calls = train.evaluate, []

    def evaluate(model, task, *args, **kwargs):
        scores, accumulator = real_evaluate(model, task, *args, **kwargs)
        calls.append(task.best_score)
        if len(calls) == 1:                         # epoch 1's score cannot be computed
            scores = dict(scores, **{task.best_score: None})
        return scores, accumulator

    monkeypatch.setattr(train, "evaluate", evaluate)
    out = train.run(dict(CONFIG, epochs=2), out=str(tmp_path / "r"), **QUIET)
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["epochs"][0][calls[0]] is None and metrics["epochs"][1][calls[0]] is not None
    assert metrics["best"]["epoch"] == 2


def _held_out(num_val=3):
    """A fresh model, its task and geometry, and the held-out split of a tiny run."""
    import minisegnet as msn
    from minisegnet import data as data_module
    config = train.resolve_config(dict(CONFIG, num_val=num_val))
    task_cls = train.task_class(config["task"])
    _, val_ds, info = train.build_datasets(config, task_cls)
    msn.manual_seed(0)
    task = task_cls(info)
    model = train.build_model_from(config, info)
    size = config["size"]
    return model, task, val_ds, train.geometry_for(model, size), size, data_module


def test_the_held_out_loss_weighs_each_batch_by_its_images_and_restores_the_mode():
    # guards evaluate's loss (a mean over images, not over batches) and model.train(was_training)
    model, task, val_ds, geometry, size, data_module = _held_out(num_val=3)
    model.train()
    whole, _ = train.evaluate(model, task, data_module.DataLoader(val_ds, 3), geometry, size)
    assert model.training                                  # put back in the mode it was in
    uneven, _ = train.evaluate(model, task, data_module.DataLoader(val_ds, 2), geometry, size)   # 2 + 1
    assert uneven["val_loss"] == pytest.approx(whole["val_loss"], rel=1e-5)


class _DivergesAt(data_parallel.OneProcess):
    """A one-process step whose loss value becomes infinite at the ``at``-th step of the run."""
    at, count = None, 0

    def step(self, images, targets):
        outputs, value = super().step(images, targets)
        _DivergesAt.count += 1
        return outputs, float("inf") if _DivergesAt.count == _DivergesAt.at else value


@pytest.mark.parametrize("at, words", [
    (1, r"the loss became inf at epoch 1, step 1; no checkpoint had been written yet"),
    (3, r"the loss became inf at epoch 2, step 1; the last good checkpoint .*checkpoint\.npz \(epoch 1\) is kept")])
def test_an_infinite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, at, words):
    # guards `math.isfinite(value)` (inf too, not only NaN) and the message's account of the checkpoint
    from minisegnet import runfolder
    _DivergesAt.at, _DivergesAt.count = at, 0
    monkeypatch.setattr(data_parallel, "training_step",
                        lambda model, loss_of, processes, seed=0, forward_of=None:
                        _DivergesAt(model, loss_of, forward_of))
    out = str(tmp_path / "r")
    with pytest.raises(train.TrainingDiverged, match=words):
        train.run(dict(CONFIG, epochs=2), out=out, **QUIET)        # 2 steps an epoch
    checkpoint = os.path.join(out, "checkpoint.npz")
    if at == 1:
        assert not os.path.exists(checkpoint)
    else:
        assert runfolder.checkpoint_epoch(checkpoint) == 1


def _folder(root, n, labels=(0, 1, 2, 255), size=8):
    """A dataset folder of ``n`` RGB images and index-PNG masks holding ``labels``."""
    import numpy as np
    from PIL import Image
    os.makedirs(root / "images"), os.makedirs(root / "masks")
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        mask = np.resize(np.array(labels, dtype=np.uint8), size * size).reshape(size, size)
        Image.fromarray(mask, mode="L").save(root / "masks" / f"{i}.png")
    return root


def test_the_void_label_255_is_not_counted_as_a_class(tmp_path):
    # guards infer_num_classes dropping 255: labels 0, 1, 2 and void make 3 classes, not 256
    folder = _folder(tmp_path / "d", 2)
    assert data.infer_num_classes(str(folder / "masks"))[0] == 3


def test_a_large_val_fraction_still_leaves_one_image_to_train_on(tmp_path):
    # guards build_datasets's cap n_val <= len - 1: two images split one and one at any fraction
    folder = _folder(tmp_path / "d", 2)
    config = train.resolve_config(dict(train.DEFAULTS, data=str(folder), size=8, val_fraction=0.9, backend="numpy"))
    train_ds, val_ds, info = train.build_datasets(config)
    assert (len(train_ds), len(val_ds)) == (1, 1)
    assert info["num_classes"] == 3


def test_resuming_a_run_whose_data_folder_is_gone_says_the_run_names_it(tmp_path):
    # guards _train's resume wrapping of build_datasets's error: the --data came from the run's config.json
    import shutil
    folder = _folder(tmp_path / "d", 4, size=32)
    config = dict(train.DEFAULTS, data=str(folder), size=32, batch_size=2, epochs=1, backend="numpy", processes=1,
                  model_args=dict(base_channels=4, depth=2))
    out = train.run(config, out=str(tmp_path / "r"), **QUIET)
    shutil.rmtree(folder)
    with pytest.raises(train.UserError, match=r"--resume: the run's config\.json in .* names this --data"):
        train.run({"epochs": 2, "backend": "numpy", "processes": 1}, out=out, resume=True, **QUIET)


def test_curves_png_draws_what_the_training_page_says(tmp_path, monkeypatch):
    drawn = {}
    save = viz_training.save_curves

    def keep(fig, epochs, path):
        drawn["fig"] = fig
        return save(fig, epochs, path)

    monkeypatch.setattr(viz_training, "save_curves", keep)
    history = [dict(epoch=e, train_loss=1.0 / e, val_loss=1.2 / e, pixel_acc=0.8, mean_acc=0.5 + e / 20,
                    mean_iou=iou, fw_iou=0.7) for e, iou in ((1, 0.3), (2, 0.6), (3, 0.5))]
    viz_training.plot_curves(history, str(tmp_path / "curves.png"))
    loss_ax, score_ax = drawn["fig"].axes
    assert {line.get_label() for line in loss_ax.lines} == {"train", "held-out"}
    assert loss_ax.get_yscale() == "log"
    widths = {line.get_label(): line.get_linewidth() for line in score_ax.lines}
    assert widths["mean IU"] > max(w for label, w in widths.items() if label != "mean IU")
    marks = [t for t in score_ax.texts if t.get_text().startswith("best mean IU")]
    assert len(marks) == 1 and marks[0].get_text() == "best mean IU 0.600" and marks[0].xy == (2, 0.6)


def test_the_default_schedule_is_poly_over_every_batch_of_the_run():
    # docs/training.md: the default run's learning rate follows DeepLab's poly schedule, power 0.9,
    # stepped after every batch: T = epochs x batches per epoch
    sgd = optim.SGD([Parameter(np.zeros(1))], lr=1.0)
    schedule = train._make_schedule(dict(run_config.DEFAULTS), sgd, steps_per_epoch=64)
    assert isinstance(schedule, optim.PolyLR) and schedule.total_iters == 12 * 64 and schedule.power == 0.9



def _lines(ax):
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.lines}


def test_curves_draw_each_record_under_its_own_label_and_a_gap_for_an_undefined_score(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    history = [dict(epoch=e, train_loss=1.0 / e, val_loss=3.0 / e, pixel_acc=0.9 - 0.01 * e, mean_acc=0.2 + 0.1 * e,
                    mean_iou=None if e == 2 else 0.1 * e, fw_iou=0.7 + 0.01 * e) for e in (1, 2, 3)]
    viz_training.plot_curves(history, tmp_path / "curves.png")
    loss_ax, score_ax = saved[0].axes
    losses, scores = _lines(loss_ax), _lines(score_ax)
    np.testing.assert_allclose(losses["train"], [1.0, 0.5, 1 / 3])
    np.testing.assert_allclose(losses["held-out"], [3.0, 1.5, 1.0])
    np.testing.assert_allclose(scores["pixel accuracy"], [0.89, 0.88, 0.87])
    np.testing.assert_allclose(scores["mean accuracy"], [0.3, 0.4, 0.5])
    np.testing.assert_allclose(scores["f.w. IU"], [0.71, 0.72, 0.73])
    np.testing.assert_allclose(scores["mean IU"], [0.1, np.nan, 0.3])          # a gap, not a drop to 0
    assert score_ax.get_ylim()[0] == 0                                          # every score in view
    (mark,) = [t for t in score_ax.texts if t.get_text().startswith("best mean IU")]
    assert mark.get_text() == "best mean IU 0.300" and mark.xy == (3, history[2]["mean_iou"])     # on the mean IU line


@pytest.mark.parametrize("ious, best", [((0.5, 0.7, 0.7), 2), ((float("nan"), 0.4, 0.6), 3)])
def test_the_best_mark_is_the_first_best_defined_epoch(tmp_path, monkeypatch, ious, best):
    """best_record: "the first record with the highest score, undefined scores (None or NaN) left out"."""
    saved = saved_figures(monkeypatch)
    history = [dict(epoch=e, train_loss=1.0, mean_iou=iou) for e, iou in zip((1, 2, 3), ious)]
    viz_training.plot_curves(history, tmp_path / "curves.png")
    (mark,) = [t for t in saved[0].axes[1].texts if t.get_text().startswith("best mean IU")]
    assert mark.xy == (best, ious[best - 1])


def test_predictions_png_shows_truth_prediction_per_row_accuracy_and_the_class_legend(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    palette = np.array([[10, 20, 30], [200, 100, 0], [0, 0, 255]], np.uint8)
    images = np.full((2, 3, 2, 2), 0.5, np.float32)
    masks = np.array([[[0, 1], [2, 2]], [[1, 1], [1, 1]]])
    preds = np.array([[[0, 1], [2, 0]], [[1, 1], [0, 0]]])
    viz_training.plot_predictions(images, masks, preds, palette, tmp_path / "p.png", class_names=["sky", "car", "road"])
    axes = np.array(saved[0].axes).reshape(2, 3)
    for i in range(2):
        np.testing.assert_allclose(axes[i, 1].images[0].get_array(), palette[masks[i]] / 255.0)
        np.testing.assert_allclose(axes[i, 2].images[0].get_array(), palette[preds[i]] / 255.0)
    assert [axes[i, 2].get_title() for i in range(2)] == ["prediction (75.0% px)", "prediction (50.0% px)"]
    legend = saved[0].legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["sky", "car", "road"]
    np.testing.assert_allclose([h.get_facecolor()[:3] for h in legend.legend_handles], palette / 255.0)


def test_predictions_png_leaves_void_pixels_out_of_the_accuracy_and_draws_them_in_the_void_colour(tmp_path,
                                                                                                   monkeypatch):
    """A void truth pixel is no class: its prediction is neither right nor wrong (the scores skip
    it), so the title's accuracy counts labelled pixels only; it was counted, and drawn as class 0."""
    saved = saved_figures(monkeypatch)
    palette = np.array([[10, 20, 30], [200, 100, 0]], np.uint8)
    masks = np.array([[[0, 255], [255, 1]], [[255, 255], [255, 255]]])
    preds = np.array([[[0, 1], [0, 0]], [[1, 1], [1, 1]]])
    viz_training.plot_predictions(np.full((2, 3, 2, 2), 0.5, np.float32), masks, preds, palette,
                                  tmp_path / "p.png", ignore_index=255)
    axes = np.array(saved[0].axes).reshape(2, 3)
    assert [axes[i, 2].get_title() for i in range(2)] == ["prediction (50.0% px)", "prediction (no labelled px)"]
    truth = axes[0, 1].images[0].get_array()
    np.testing.assert_allclose(truth[0, 1], np.array(viz_training.VOID_COLOUR) / 255.0)
    np.testing.assert_allclose(truth[1, 1], palette[1] / 255.0)
    assert [t.get_text() for t in saved[0].legends[0].get_texts()] == ["class 0", "class 1", "void"]
    with pytest.raises(TypeError, match="ignore_index must be an int or None"):
        viz_training.plot_predictions(np.full((2, 3, 2, 2), 0.5, np.float32), masks, preds, palette,
                                      tmp_path / "p.png", ignore_index=255.0)


def test_the_semantic_tasks_predictions_figure_counts_labelled_pixels_only(tmp_path, monkeypatch):
    from minisegnet.tasks.semantic import SemanticTask

    saved = saved_figures(monkeypatch)
    task = SemanticTask(dict(num_classes=2, in_channels=3, class_names=["a", "b"], ignore_index=255,
                             palette=[[10, 20, 30], [200, 100, 0]]))
    masks = np.array([[[0, 255], [255, 1]]])
    task.plot_predictions(np.full((1, 3, 2, 2), 0.5, np.float32), (masks,), np.zeros((1, 2, 2), np.int64),
                          tmp_path / "p.png")                 # void drawn as class 0 and counted: 75.0%
    assert np.array(saved[0].axes).reshape(1, 3)[0, 2].get_title() == "prediction (50.0% px)"


def test_overlay_mixes_alpha_of_the_class_colour_leaves_the_background_and_clips_the_image():
    image = np.array([[[0.2, 1.3]]] * 3, np.float32)                           # (3, 1, 2), one value above 1
    palette = np.array([[0, 0, 0], [255, 0, 51]], np.uint8)
    out = viz_training.overlay(image, np.array([[1, 1]]), palette, alpha=0.25)
    np.testing.assert_allclose(out[0, 0], 0.75 * 0.2 + 0.25 * np.array([1.0, 0.0, 0.2]))
    np.testing.assert_allclose(out[0, 1], 0.75 * 1.0 + 0.25 * np.array([1.0, 0.0, 0.2]))   # the image clipped to 1
    kept = viz_training.overlay(image, np.array([[0, 1]]), palette, alpha=0.25, background=0)
    np.testing.assert_allclose(kept[0, 0], 0.2)                                 # background: the image itself
    np.testing.assert_allclose(kept[0, 1], out[0, 1])


def test_save_overlay_writes_the_overlay_with_its_background_as_drawn(tmp_path):
    from PIL import Image

    image = np.linspace(0, 1, 3 * 2 * 3, dtype=np.float32).reshape(3, 2, 3)
    mask = np.array([[0, 1, 1], [0, 0, 1]])
    palette = np.array([[255, 255, 0], [0, 0, 255]], np.uint8)
    path = viz_training.save_overlay(image, mask, palette, tmp_path / "o.png", alpha=0.5, background=0)
    written = np.asarray(Image.open(path))
    expected = viz_training.overlay(image, mask, palette, 0.5, background=0)
    np.testing.assert_array_equal(written, (expected * 255 + 0.5).astype(np.uint8))


def test_predictions_png_refuses_unequal_counts_by_name(tmp_path):
    one, two = np.zeros((1, 2, 2), np.int64), np.zeros((2, 2, 2), np.int64)
    with pytest.raises(ValueError, match=r"need the same positive number of images, masks and predictions, got 2, 1, 2"):
        viz_training.plot_predictions(np.zeros((2, 3, 2, 2), np.float32), one, two, np.zeros((1, 3), np.uint8),
                                      tmp_path / "p.png")


def test_label_254_read_from_the_masks_makes_255_classes(tmp_path):
    folder = _folder(tmp_path / "d", 4, labels=(0, 254, 255))
    config = train.resolve_config({"data": str(folder), "size": 8})
    train_ds, val_ds, info = train.build_datasets(config)
    assert info["num_classes"] == 255
    assert info["held_out"] == val_ds.digest() != train_ds.digest()
