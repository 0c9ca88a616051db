"""Tasks: what a model learns to say about each pixel, and how that is trained and scored.

The training loop (``minisegnet/train.py``) is the same for every task. It
reads, top to bottom::

    task = TASKS[config["task"]](info)                 # info: the dataset's classes, palette, ...
    model = task.build_model(config["model"], model_args)
    for images, *labels in loader:                     # labels: (masks,) or (masks, instances)
        outputs = model(images)                        # a Tensor, or a dict of Tensors
        targets = task.targets(labels)                 # host labels -> what the loss needs, on the device
        loss = task.loss(outputs, targets)             # a scalar Tensor
        loss.backward(); optimizer.step()
        scores.update(outputs, targets)                # scores = task.new_scores(): kept on the device
    record = scores.summary()                          # once per epoch: a few numbers come to the host

Everything that differs between tasks lives in one small class per task,
in its own module, and ``TASKS`` (below) names them. A task is a plain class,
not a subclass of anything; it has these attributes and methods.

Class attributes (read before any data is loaded):

``name``
    The ``--task`` name, e.g. ``"semantic"``.
``defaults``
    ``dict(model=..., data=...)``: the model and data used when the user gives
    none (``minisegnet train --task NAME`` must run as it is).
``models``
    ``{model name: default model args}``: the models this task can train, each
    with the constructor options used unless ``--model-arg KEY=VALUE`` says
    otherwise (e.g. ``{"unet": dict(base_channels=8, depth=3, padding="same")}``).
``datasets``
    Names of the built-in datasets (``train.TOY_DATASETS``) this task can
    train on; a folder (``--data PATH``) is always accepted.
``instances``
    ``True`` when the task needs instance truth. The driver then builds the
    datasets with it (toy datasets: ``return_instances=True``; a folder: its
    ``instances/`` subfolder) and the loader's batches are
    ``(images, masks, instances)`` instead of ``(images, masks)``.
``score_names``
    ``{score key: label}``, in display order, for the held-out scores that
    ``summary()`` returns (``"mean_iou": "mean IU"``); every key here must be
    in ``summary()``. They are printed each epoch and by ``evaluate``.
``best_score``
    The key of ``score_names`` that picks ``best.npz`` (higher is better).
``most_classes_written`` (optional)
    The largest class count that ``write_prediction`` can encode in its
    PNGs; ``minisegnet predict`` refuses a run with more before it writes
    anything (panoptic ids ``category * 1000 + id`` in 16 bits: 65). A task
    without it has no such limit.

Methods (``info`` is the dataset's description, also stored in
``config.json``: ``num_classes``, ``in_channels``, ``class_names``,
``palette`` (a list of RGB triples), ``ignore_index`` (a "don't care" label
or None) and, where the dataset has them, ``thing_classes``/``stuff_classes``):

``__init__(self, info)``
    Keep what the other methods need (class count, palette, ...).
``build_model(self, name, model_args)``
    The model ``name`` (a key of ``models``) built with ``model_args`` (the
    defaults already merged with the user's). Raise ``TypeError`` for an
    unknown option and ``ValueError`` for a bad value: the CLI turns them into
    a clear message.
``targets(self, labels)``
    ``labels`` is the tuple of a batch's host arrays after the images:
    ``(masks,)``, or ``(masks, instances)``, each ``(N, H, W)`` int64. Return
    what ``loss`` and the scores need, on the device (``backend.asarray``);
    anything derived from the labels (weight maps, centre heatmaps) is made
    here. This and the image batch are the only arrays sent to the device
    per step.
``loss(self, outputs, targets)``
    A scalar Tensor: the mean loss of the batch, to minimise. ``outputs`` is
    what the model returned, already cropped to the labels' size (a Tensor,
    or a dict of Tensors, each ``(N, ., H, W)``).
``new_scores(self, training=False)``
    A fresh score accumulator: an object with
    ``update(outputs, targets)``, called once per batch, which must keep its
    sums on the device and never copy to the host (no ``.item()``, no
    ``to_numpy``, no Python ``if`` on a device value), so a training step
    syncs only its loss; ``summary()`` -> dict of Python floats (NaN allowed),
    called once at the end of a pass, holding every key of ``score_names``
    (``training=True``: the cheaper subset worth watching on the training
    batches; the driver stores them as ``train_KEY``); and ``report()`` ->
    a list of text lines with details (``evaluate`` prints them, e.g. IU per
    class).
``postprocess(self, outputs)``
    Model outputs for a batch -> predictions as host NumPy arrays, one per
    image along the first axis (semantic: the class map ``(N, H, W)``; a
    task may return a dict of such arrays, e.g. class and instance maps).
``plot_curves(self, history, file)``
    Draw ``curves.png`` from ``metrics.json``'s records (a list of dicts:
    ``epoch``, ``train_loss``, ``val_loss``, ``train_KEY``, the held-out
    scores, ``lr``, ``seconds``) into ``file`` (an open binary file: pass it
    to ``Figure.savefig``, which writes PNG).
``plot_predictions(self, images, labels, predictions, file)``
    Draw ``predictions.png``: ``images`` ``(N, C, H, W)``, ``labels`` as in
    ``targets``, ``predictions`` from ``postprocess``; into ``file`` as above.
``write_prediction(self, image, prediction, out, stem)``
    What ``minisegnet predict`` writes for one image ``(C, H, W)`` and its
    prediction (``postprocess``'s result for that image alone): files named
    ``stem + suffix`` in the folder ``out``. Returns ``(paths, note)``, note
    being a short text for the log (e.g. the classes found and their share).
    A ``ValueError`` for a prediction its files cannot hold (more objects
    than an id PNG's bits): the driver names the image.

Files are the driver's business: it opens ``file`` on a temporary name and
renames it when the method returns, so a kill never leaves half a PNG.
``minisegnet/tasks/semantic.py`` is the worked example: each method is a few
lines. To add a task: write ``tasks/NAME.py`` with its class and add one line
to ``TASKS``; the driver, the CLI's ``--task`` and the run folder need no
change.
"""
from .instance import InstanceTask
from .panoptic import PanopticTask
from .semantic import SemanticTask

__all__ = ["TASKS", "TASK_NAMES", "SemanticTask", "InstanceTask", "PanopticTask"]

# The tasks ``minisegnet train --task NAME`` can train: name -> class.
TASKS = {
    "semantic": SemanticTask,
    "instance": InstanceTask,
    "panoptic": PanopticTask,
}
# Every task name the command line knows, including those still being written.
TASK_NAMES = ("semantic", "instance", "panoptic")
