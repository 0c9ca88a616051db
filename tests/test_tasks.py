"""Tasks: the interface every task follows, the semantic task's device-side scores, and a
driver that knows no task: a task written only from the interface (its model returns a dict
of Tensors) trains, resumes, evaluates and predicts through the unchanged driver."""
import json
import os

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minisegnet as msn
from minisegnet import backend, metrics, nn, predict, tasks, train
from minisegnet.cli import main
from minisegnet.tasks.semantic import ConfusionScores
from helpers import run_interrupted_in_epoch_2

TINY = dict(train.DEFAULTS, size=32, num_train=16, num_val=8, batch_size=8, epochs=2,
            model_args=dict(base_channels=4, depth=2))
QUIET = dict(progress=False, log=lambda *a: None)


def test_every_task_has_the_documented_interface():
    documented = ("name", "defaults", "models", "datasets", "instances", "score_names", "best_score",
                  "build_model", "targets", "loss", "new_scores", "postprocess", "plot_curves",
                  "plot_predictions", "write_prediction")
    assert set(tasks.TASKS) <= set(tasks.TASK_NAMES)
    for name, cls in tasks.TASKS.items():
        for attribute in documented:
            assert attribute in tasks.__doc__, attribute
            assert hasattr(cls, attribute), (name, attribute)
        assert cls.name == name
        assert cls.defaults["model"] in cls.models and cls.defaults["data"] in cls.datasets
        assert cls.best_score in cls.score_names
        assert set(cls.datasets) <= set(train.TOY_DATASETS)


@given(st.integers(1, 5), st.lists(st.integers(1, 3), min_size=1, max_size=3), st.integers(0, 2 ** 31),
       st.sampled_from([255, -1, -100]))
def test_confusion_scores_sum_batches_like_metrics_confusion_matrix(num_classes, batch_sizes, seed, ignored):
    rng = np.random.default_rng(seed)
    scores = ConfusionScores(num_classes, [f"c{i}" for i in range(num_classes)])
    expected = np.zeros((num_classes, num_classes), np.int64)
    for n in batch_sizes:
        logits = rng.normal(size=(n, num_classes, 5, 4)).astype(np.float32)
        target = rng.integers(0, num_classes, size=(n, 5, 4))
        target[rng.random(target.shape) < 0.2] = ignored        # "don't care" pixels count nowhere,
        scores.update(msn.tensor(logits), backend.asarray(target))   # a negative label included
        expected += backend.to_numpy(metrics.confusion_matrix(logits.argmax(1), target, num_classes,
                                                              ignore_index=ignored))
    np.testing.assert_array_equal(scores.matrix(), expected)
    assert scores.summary() == pytest.approx(metrics.scores(expected), nan_ok=True)


def test_confusion_scores_stay_on_the_device_until_summary(transfers, cupy):
    msn.set_backend("cupy")                      # on the stand-in, which counts host-device copies
    scores = ConfusionScores(3, ["a", "b", "c"])
    logits = msn.tensor(backend.asarray(np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)))
    target = backend.asarray(np.zeros((2, 4, 4), np.int64))
    with transfers() as log:
        scores.update(logits, target)
    assert log.count() == 0, log.report()
    assert backend.get_array_module(scores.cm) is cupy
    assert np.isnan(ConfusionScores(3, ["a", "b", "c"]).summary()["mean_iou"])   # nothing seen: NaN, not 0


# ---- a task written from the interface alone -------------------------------------------------
class _TwoHeads(nn.Module):
    """A U-Net whose output is a dict: the class logits and a second, 'offset' head."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet
        self.head = nn.Conv2d(unet.num_classes, 2, 1)

    def forward(self, x):
        logits = self.unet(x)
        return {"logits": logits, "offset": self.head(logits)}


class _MeanSquared:
    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, outputs, targets):
        masks, _ = targets
        self.total = self.total + ((outputs["offset"].data[:, 0] - masks) ** 2).mean()   # stays an array
        self.count += 1

    def summary(self):
        return {"offset_mse": float(self.total.item()) / self.count, "score": -float(self.total.item())}

    def report(self):
        return [f"{self.count} batches"]


class TwoHeadTask:
    """Predicts the class map and regresses it as a number: a toy of panoptic's two outputs."""

    name = "twohead"
    defaults = dict(model="unet", data="shapes")
    models = {"unet": dict(base_channels=4, depth=2, padding="same")}
    datasets = ("shapes",)
    instances = False
    score_names = {"offset_mse": "offset MSE", "score": "score"}
    best_score = "score"

    def __init__(self, info):
        self.info = info

    def build_model(self, name, model_args):
        from minisegnet.models import build_model
        return _TwoHeads(build_model(name, self.info["in_channels"], self.info["num_classes"], **model_args))

    def targets(self, labels):
        (masks,) = labels
        return backend.asarray(masks), backend.asarray(masks.astype(np.float32))

    def loss(self, outputs, targets):
        masks, numbers = targets
        ce = msn.functional.cross_entropy(outputs["logits"], msn.Tensor(masks))
        return ce + 0.01 * ((outputs["offset"][:, 0] - msn.Tensor(numbers)) ** 2).mean()

    def new_scores(self, training=False):
        return _MeanSquared()

    def postprocess(self, outputs):
        return {"classes": backend.to_numpy(outputs["logits"].data.argmax(1)),
                "offset": backend.to_numpy(outputs["offset"].data[:, 0])}

    def plot_curves(self, history, file):
        file.write(b"curves of " + ",".join(sorted(history[-1])).encode())

    def plot_predictions(self, images, labels, predictions, file):
        file.write(f"{images.shape} {labels[0].shape} {predictions['classes'].shape}".encode())

    def write_prediction(self, image, prediction, out, stem):
        path = os.path.join(out, f"{stem}.npy")
        np.save(path, prediction["classes"])
        return [path], f"{prediction['offset'].shape}"


@pytest.fixture
def twohead(monkeypatch):
    monkeypatch.setattr(tasks, "TASKS", dict(tasks.TASKS, twohead=TwoHeadTask))
    monkeypatch.setattr(tasks, "TASK_NAMES", tasks.TASK_NAMES + ("twohead",))


def test_a_task_written_from_the_interface_trains_resumes_evaluates_and_predicts(twohead, tmp_path, monkeypatch):
    config = dict(TINY, task="twohead", model_args={})
    straight = train.run(dict(config), out=str(tmp_path / "straight"), **QUIET)
    history = json.load(open(os.path.join(straight, "metrics.json")))["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"train_offset_mse", "train_score", "offset_mse", "score", "val_loss"} <= set(history[0])
    assert open(os.path.join(straight, "curves.png"), "rb").read().startswith(b"curves of ")
    assert open(os.path.join(straight, "predictions.png"), "rb").read() == b"(4, 3, 32, 32) (4, 32, 32) (4, 32, 32)"
    recorded = json.load(open(os.path.join(straight, "config.json")))["config"]
    assert recorded["task"] == "twohead" and recorded["model"] == "unet"

    half = str(tmp_path / "half")
    run_interrupted_in_epoch_2(config, half, monkeypatch, **QUIET)      # Ctrl-C in epoch 2
    train.run({}, out=half, resume=True, **QUIET)
    again = json.load(open(os.path.join(half, "metrics.json")))["epochs"]
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]   # noqa: E731
    assert strip(again) == strip(history)

    scores, rec = train.evaluate_checkpoint(straight, log=lambda *a: None)
    assert scores["offset_mse"] == pytest.approx(rec["offset_mse"], rel=1e-5)
    from PIL import Image
    image = (np.random.default_rng(0).random((21, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "x.png")
    written = predict.predict_images(straight, [str(tmp_path / "x.png")], str(tmp_path / "pred"), log=lambda *a: None)
    assert [os.path.basename(p) for p in written] == ["x.npy"]
    assert np.load(written[0]).shape == (21, 30)


def test_task_flag_is_recorded_and_unknown_or_unfinished_tasks_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = train.run(dict(TINY, epochs=1), out=str(tmp_path / "r"), **QUIET)
    assert json.load(open(os.path.join(out, "config.json")))["config"]["task"] == "semantic"
    for name in tasks.TASK_NAMES:
        if name not in tasks.TASKS:
            assert main(["train", "--task", name, "--quiet"]) == 2
            assert f"--task {name} is not available yet" in capsys.readouterr().err
    with pytest.raises(train.UserError, match="--task must be one of"):
        train.run(dict(TINY, task="depth"), **QUIET)
    with pytest.raises(train.UserError, match="not a model of --task semantic"):
        train.run(dict(TINY, model="panoptic_deeplab"), **QUIET)


def test_a_class_share_is_never_shown_as_0_or_100_percent_when_it_is_not():
    """predict's summary line said 'background 0%, circle 100%' for a class on a few pixels."""
    from minisegnet.tasks.semantic import share_text
    assert [share_text(s) for s in (0.003, 0.005, 0.01, 0.5, 0.99, 0.994, 1.0)] == \
        ["<1%", "<1%", "1%", "50%", "99%", ">99%", "100%"]


def test_the_semantic_task_checks_labels_on_the_host_before_they_go_up(transfers, cupy):
    """The loss no longer checks the labels' range (its check read a flag back from a GPU every
    step): the task's targets do, on the host, naming the label and the rule; an ignored label
    passes, and a good batch goes up once with nothing read back."""
    from minisegnet.tasks.semantic import SemanticTask

    task = SemanticTask(dict(num_classes=4, in_channels=3, class_names=["a", "b", "c", "d"], ignore_index=255,
                             palette=np.zeros((4, 3))))
    masks = np.random.default_rng(0).integers(0, 4, (2, 8, 8))
    with pytest.raises(ValueError, match=r"masks hold the label 7, outside \[0, 4\) and not ignore_index=255"):
        task.targets((np.where(masks == 0, 7, masks),))
    with pytest.raises(TypeError, match="masks must be an integer map"):
        task.targets((masks.astype(np.float32),))
    msn.set_backend("cupy")
    with transfers() as log:
        task.targets((np.where(masks == 0, 255, masks),))
    assert log.count("H2D") == 1 and log.count("D2H") == 0, log.report()


@pytest.mark.parametrize("task_name", ["semantic", "instance", "panoptic"])
def test_every_task_refuses_labels_just_outside_the_classes(task_name):
    """The loss no longer checks labels (a GPU read per step): the tasks' host check is the only
    guard, so its edges are pinned: -1 and num_classes are refused (either would read another
    pixel's logits), the ignored label passes, and with ignore_index None so does -100 (the
    loss's default)."""
    from minisegnet.tasks.instance import InstanceTask
    from minisegnet.tasks.panoptic import PanopticTask
    from minisegnet.tasks.semantic import SemanticTask

    def make(ignore_index):
        info = dict(num_classes=4, in_channels=3, class_names=list("abcd"), palette=np.zeros((4, 3)),
                    ignore_index=ignore_index, thing_classes=(1, 2))
        return {"semantic": SemanticTask, "instance": InstanceTask, "panoptic": PanopticTask}[task_name](info)

    masks = np.random.default_rng(0).integers(0, 4, (2, 8, 8))
    ids = np.where(masks > 0, 1, 0)
    labels = lambda m: (m,) if task_name == "semantic" else (m, ids)
    task = make(4)
    for bad in (-1, 5):
        with pytest.raises(ValueError, match=rf"masks hold the label {bad}, outside \[0, 4\)"):
            task.targets(labels(np.where(masks == 0, bad, masks)))
    task.targets(labels(np.where(masks == 0, 4, masks)))               # ignore_index=4 passes
    with pytest.raises(ValueError, match=r"masks hold the label 4, outside \[0, 4\)"):
        make(255).targets(labels(np.where(masks == 0, 4, masks)))
    make(None).targets(labels(np.where(masks == 0, -100, masks)))      # the loss's default ignore_index


@pytest.mark.parametrize("reduction", ["mean", "none", "sum"])
def test_the_checked_labels_loss_is_cross_entropy(torch, reduction):
    """``cross_entropy_of_checked_labels`` skips only the range check: with ignored pixels and
    class weights its value and gradient are ``cross_entropy``'s (and torch's)."""
    from minisegnet.functional import cross_entropy
    from minisegnet.functional.loss import cross_entropy_of_checked_labels

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 3, 3))
    t = rng.integers(0, 4, (2, 3, 3))
    t[0, 0] = 255
    w = np.array([0.5, 1.0, 2.0, 1.5])
    results = []
    for loss in (cross_entropy, cross_entropy_of_checked_labels):
        xt = msn.tensor(x, requires_grad=True)
        y = loss(xt, t, w, ignore_index=255, reduction=reduction)
        y.sum().backward()
        results.append((y.numpy(), xt.grad.numpy()))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.cross_entropy(tx, torch.tensor(t), torch.tensor(w), ignore_index=255, reduction=reduction)
    ty.sum().backward()
    for value, grad in results:
        np.testing.assert_allclose(value, ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("plot", ["semantic", "instance", "panoptic"])
def test_curves_leave_a_gap_where_a_score_is_undefined(tmp_path, monkeypatch, plot):
    """The trainer records a score that is not a number as None (a held-out split of void
    pixels only): each task's curves draw the other epochs and mark the best defined one (the
    semantic and panoptic curves raised TypeError comparing None; a mutation review's find)."""
    from matplotlib.axes import Axes

    from minisegnet.viz.instances import plot_instance_curves
    from minisegnet.viz.panoptic import plot_panoptic_curves
    from minisegnet.viz.training import plot_curves

    draw = dict(semantic=plot_curves, instance=plot_instance_curves, panoptic=plot_panoptic_curves)[plot]
    scores = ("pixel_acc", "mean_acc", "mean_iou", "fw_iou", "pq", "sq", "rq", "pq_things", "sq_things",
              "rq_things", "pq_stuff")
    annotated = []
    monkeypatch.setattr(Axes, "annotate", lambda self, text, *args, **kwargs: annotated.append(text))
    history = [dict(epoch=e, train_loss=1.0 / e, val_loss=1.2 / e, **{k: None if e == 2 else 0.1 * e for k in scores})
               for e in (1, 2, 3)]
    draw(history, tmp_path / "c.png")
    assert len(annotated) == 1 and annotated[0].endswith(" 0.300")         # epoch 3, past the gap
    undefined = [dict(record, **{k: None for k in scores}) for record in history]
    draw(undefined, tmp_path / "d.png")                                      # nothing to mark
    assert len(annotated) == 1 and (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
