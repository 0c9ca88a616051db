"""The training loop and evaluation behind ``minisegnet train|evaluate`` (``predict``: predict.py).

One epoch reads straight down the design's data flow::

    for images, *labels in loader:               # data/: (N, C, H, W) and (N, H, W) label maps
        outputs = model(images)                  # models/ -> nn/ -> functional/, recorded by autograd
        targets = task.targets(labels)           # tasks/: the labels the loss needs, on the device
        loss = task.loss(outputs, targets)       # semantic: cross-entropy, the mean over pixels
        optimizer.zero_grad(); loss.backward()   # the graph walk fills p.grad
        optimizer.step(); schedule.step()        # optim.py: in-place update, poly learning rate
        scores.update(outputs, targets)          # summed on the device: no copy to the host
    record = evaluate(model, task, held_out)     # the same scores on the held-out split

The loop is the same for every task (``--task semantic``; see
``minisegnet/tasks/``): what a task's model outputs, its loss, its scores and
its figures come from one small task object, never from a branch here. The
forward, loss and backward lines are one call in the code,
``stepper.step(images, targets)``: in this process (``OneProcess``), or, where
two processes pay (``--processes``; ``data_parallel.py``), shared with a
worker process that takes half the batch, the gradients of the halves added up
before the one ``optimizer.step()``. The same seed gives the same numbers for
the same number of processes.

The run's options (``DEFAULTS``, ``resolve_config``) are checked in
``minisegnet/run_config.py`` before any work. A run writes into ``runs/NAME/`` (or ``--out DIR``), described in
``minisegnet/runfolder.py``: ``config.json``, ``checkpoint.npz`` (the last
finished epoch: what ``--resume`` continues), ``best.npz`` (the best
held-out score), ``metrics.json`` (one record per epoch), ``curves.png`` and
``predictions.png``. Every file is written to a temporary name and renamed,
and ``checkpoint.npz`` is each epoch's one commit point: a kill at any
moment leaves a folder that ``--resume`` completes to exactly the result of
an uninterrupted run. A NaN or infinite loss stops the run with a message
and leaves the last good checkpoint in place. The same seed gives the same
numbers: the weights come from ``msn.manual_seed(seed)``, the data from
``(seed, index)``, and each epoch's shuffling and augmentation from
``(seed, epoch)``.

The backend (``numpy`` or ``cupy``) is chosen once, before anything is
built: ``--backend``, else ``MINISEGNET_BACKEND``, else (resuming) the run's
own, else ``numpy``. Per training step only the batch goes to the device and
only the loss comes back.

Valid-padding U-Nets (the paper's) output less than they take in. Training then
mirror-pads each image (the paper's overlap-tile trick) so that the output covers
the whole mask; prediction on large images (``predict.py``) slides such tiles over
the image.
"""
import difflib
import functools
import json
import math
import os
import sys
import time

import numpy as np

from . import allocator, backend, checks, data as data_module, data_parallel, optim
from .autograd import Tensor, no_grad
from .model_geometry import Geometry, check_model_fits, check_unet_size, crop_outputs, geometry_for
from .random import generator, manual_seed
from .run_config import (DEFAULTS, TOY_DATASETS, TrainingDiverged, UserError, _choose_backend, _on_backend,
                         _positive_int, check_out_folder, make_out_folder, recorded_options, resolve_config,
                         task_class)
from .runfolder import (CHECKPOINT_FORMAT, CheckpointError, atomic_file, check_checkpoint_dtypes, checkpoint_epoch,
                        read_checkpoint, read_meta, remove_stale_temporaries, save_checkpoint, write_json)

__all__ = ["DEFAULTS", "TOY_DATASETS", "UserError", "TrainingDiverged", "run", "evaluate", "evaluate_checkpoint",
           "load_checkpoint", "build_model_from", "Geometry", "geometry_for"]

# ---- data ----------------------------------------------------------------------
class _InMemory:
    """A dataset drawn once and kept: the toy scenes cost milliseconds each, and an
    epoch would otherwise redraw every one of them."""

    def __init__(self, dataset):
        self.items = [dataset[i] for i in range(len(dataset))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def _dataset_info(ds, ignore_index=None):
    info = dict(num_classes=int(ds.num_classes), in_channels=int(ds.in_channels),
                class_names=list(ds.class_names), palette=np.asarray(ds.palette).tolist(),
                ignore_index=ignore_index)
    for name in ("thing_classes", "stuff_classes"):
        if hasattr(ds, name):
            info[name] = [int(c) for c in getattr(ds, name)]
    return info


def toy_data_bytes(dataset, count, size, instances=False):
    """About how many bytes ``count`` scenes of the toy ``dataset`` class at ``size x size`` take
    at the peak of drawing them, as a run draws and keeps them (``_InMemory``): the scenes kept
    (float32 images of ``in_channels``, an int64 class map and, with ``instances``, an int64 id
    map) and the drawing of one more (``dataset.draw_bytes`` a pixel). Never below what
    tracemalloc measures from 300 pixels on."""
    kept = 4 * dataset.in_channels + 8 * (2 if instances else 1)
    return int(size) * int(size) * (int(count) * kept + dataset.draw_bytes)


def _check_toy_data_fits(config, dataset, instances):
    """Refuse, before drawing a scene, built-in data whose drawing and keeping would not fit in memory."""
    size, count = config["size"], config["num_train"] + config["num_val"]
    needed, limit = toy_data_bytes(dataset, count, size, instances), checks.memory_bytes()
    if limit is None or needed <= limit:
        return
    kept = toy_data_bytes(dataset, 1, 1, instances) - dataset.draw_bytes
    largest = math.isqrt(limit // (count * kept + dataset.draw_bytes))
    raise UserError(f"--num-train {config['num_train']} and --num-val {config['num_val']} at --size {size}: the "
                    f"built-in data ({config['data']}) takes about {checks.human_bytes(needed)} to draw and keep in "
                    f"memory ({count} scenes of {size}x{size} pixels kept at {kept} bytes a pixel, and "
                    f"{dataset.draw_bytes} bytes a pixel while one is drawn), more than this machine's memory "
                    f"({checks.human_bytes(limit)}); "
                    + (f"the largest --size that fits is {largest}" if largest >= data_module.toy.MIN_SIZE
                       else "use fewer --num-train and --num-val"))


def build_datasets(config, task=None, progress=False, log=None):
    """The training and held-out datasets for ``config``, and their info dict
    (num_classes, in_channels, class_names, palette, ignore_index, ...). A folder
    is read through once first (``data.check_folder``): every bad file is
    reported before any training, and ``log`` (when given) gets one ``note:`` line
    on the images whose channels are fitted to the model's (grey repeated, alpha
    dropped), counted from that reading."""
    task = task or task_class(config.get("task", "semantic"))
    name, size = config["data"], config["size"]
    if name in TOY_DATASETS:
        cls = TOY_DATASETS[name]
        extra = dict(return_instances=True) if task.instances else {}
        _check_toy_data_fits(config, cls, task.instances)
        try:
            train = cls(config["num_train"], size, seed=config["seed"], split="train", **extra)
        except ValueError as error:     # e.g. a --size too small to draw the scenes in
            raise UserError(f"--data {name}: {error}") from None
        val = cls(config["num_val"], size, seed=config["seed"], split="val", **extra)
        return train, val, _dataset_info(train)
    root = os.path.abspath(name)
    images, masks = os.path.join(root, "images"), os.path.join(root, "masks")
    if not os.path.isdir(root):
        close = difflib.get_close_matches(os.path.basename(os.path.normpath(name)), TOY_DATASETS, n=1)
        raise UserError(f"--data {name!r} is neither a built-in dataset ({', '.join(TOY_DATASETS)}) nor an "
                        f"existing folder" + (f": did you mean --data {close[0]}?" if close else ""))
    if not os.path.isdir(images) or not os.path.isdir(masks):
        missing = " and ".join(sub + "/" for sub, path in (("images", images), ("masks", masks))
                               if not os.path.isdir(path))
        raise UserError(f"--data {name!r}: the folder has no {missing} subfolder; a dataset folder holds "
                        "images/ (the pictures) and masks/ (for each, an index PNG of the same name)")
    things = config.get("thing_classes") or []
    if task.instances and not things:
        raise UserError(f"--task {task.name} on a folder needs --thing-classes: the classes whose objects "
                        "its instances/ PNGs number (e.g. --thing-classes 1,2)")
    num_classes = config["num_classes"]
    if num_classes is None:
        num_classes, (mask, label) = data_module.infer_num_classes(masks)
        if label > 254:
            raise UserError(f"--data {name!r}: mask {mask!r} holds label {label}, but a folder's masks are "
                            f"8-bit index PNGs, classes 0 to 254, with 255 the void label")
    if num_classes > 255:
        raise UserError(f"--num-classes {num_classes}: a folder's masks are 8-bit index PNGs, classes "
                        f"0 to 254, with 255 the void label (pixels left out of the loss and the scores)")
    beyond = [c for c in things if c >= num_classes]
    if beyond:
        raise UserError(f"--thing-classes {','.join(map(str, things))}: class {beyond[0]} is not a class of "
                        f"{name!r}, which has {num_classes} (0 to {num_classes - 1})")
    extra = dict(instances_dir=os.path.join(root, "instances")) if task.instances else {}
    try:
        full = data_module.FolderDataset(images, masks, num_classes, ignore_index=255, thing_classes=things,
                                         unpaired="keep", **extra)
        data_module.check_folder(full, progress=progress)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(f"--data {name!r}: {error}") from None
    if len(full) < 2:
        raise UserError(f"--data {name!r} holds {len(full)} image; at least 2 are needed "
                        "(one to train on, one held out)")
    note = full.conversion_summary()
    if note and log is not None:
        log(f"note: --data {name!r}: {note}")
    smallest = getattr(full, "smallest", None)                  # check_folder's finding
    if smallest is not None and config["size"] > min(smallest) and log is not None:
        log(f"note: --size {config['size']} is larger than the smallest images of --data {name!r} "
            f"({smallest[0]} rows, {smallest[1]} columns): they are mirror-padded to "
            f"{config['size']}x{config['size']} before the crop")
    n_val = min(max(1, int(round(len(full) * config["val_fraction"]))), len(full) - 1)
    order = np.random.default_rng([config["seed"], 7]).permutation(len(full))
    val = data_module.Subset(full, sorted(order[:n_val].tolist()))
    train = data_module.Subset(full, sorted(order[n_val:].tolist()))
    return train, val, dict(_dataset_info(full, ignore_index=255), held_out=val.digest())


def _same_split(recorded, info, data, log):
    """A folder run's held-out split is drawn from the folder's files: one added or removed since
    draws another, training images among it; say so (``held_out``: ``Subset.digest``)."""
    if recorded.get("held_out", info.get("held_out")) != info.get("held_out"):
        log(f"note: --data {data!r} has changed since the run was trained: its held-out split is not the "
            f"run's (images it trained on among them), so the scores do not compare with the recorded ones")


def _transforms(config):
    """(training transform, held-out transform). A folder's images are cropped to
    ``--size`` (randomly for training, centrally for evaluation) so that a batch stacks."""
    augment = [data_module.AUGMENTATIONS[name]() for name in config["augment"]]
    if config["data"] in TOY_DATASETS:
        return (data_module.Compose(*augment) if augment else None), None
    return data_module.Compose(data_module.RandomCrop(config["size"]), *augment), \
        data_module.CenterCrop(config["size"])


def _loss_of(model, images, targets, task, geometry, size):
    """The outputs and the loss of a batch (or of a slice of one): what a training step differentiates."""
    outputs = _forward(model, images, geometry, size)
    return outputs, task.loss(outputs, targets)


def _forward(model, images, geometry, size):
    """The model's outputs for a host batch of ``size x size`` images, cropped to ``size x size``.
    The one upload of a step: the image batch."""
    if geometry.padded:
        t, b, l, r = geometry.pad
        images = np.pad(images, ((0, 0), (0, 0), (t, b), (l, r)), mode="reflect")
    outputs = model(Tensor(backend.asarray(images)))
    return crop_outputs(outputs, *geometry.crop, size, size)


def _check_train_batches(model, loader):
    """A model that needs several images a training batch (``min_train_batch``: DeepLab's image
    pooling and BatchNorm) must get them in every batch of ``loader``, the last included, before
    any work."""
    need, batch, num_train = getattr(model, "min_train_batch", 1), loader.batch_size, len(loader.dataset)
    smallest = batch if loader.drop_last else (num_train % batch or batch)
    if smallest < need:
        where = (f"--batch-size {batch}" if batch < need else
                 f"{num_train} training image{'s' * (num_train != 1)} (fewer than --batch-size {batch})")
        raise UserError(f"{where}: {type(model).__name__} trains on batches of at least {need} images "
                        "(its ASPP pools each image to one value per channel, and BatchNorm needs more than "
                        "one to normalise); use a larger batch or more images")


def _build_model(task, config):
    args = dict(task.models[config["model"]], **(config.get("model_args") or {}))
    try:
        return task.build_model(config["model"], args)
    except TypeError as error:
        raise UserError(f"--model-arg: {error}") from None
    except ValueError as error:        # a value given with --model-arg, else the task's default (always valid)
        raise UserError(f"--model-arg: {error}" if config.get("model_args") else str(error)) from None


def build_model_from(config, info):
    """The model ``config`` describes (its task's defaults plus ``model_args``), freshly initialised."""
    return _build_model(task_class(config.get("task", "semantic"))(info), config)


def _make_optimizer(config, params):
    name = config["optimizer"]
    if name == "adam":
        return optim.Adam(params, lr=config["lr"], weight_decay=config["weight_decay"])
    if name == "adamw":
        return optim.AdamW(params, lr=config["lr"], weight_decay=config["weight_decay"])
    return optim.SGD(params, lr=config["lr"], momentum=config["momentum"], weight_decay=config["weight_decay"])


def _make_schedule(config, optimizer, steps_per_epoch):
    total = max(1, config["epochs"] * steps_per_epoch)
    name = config["schedule"]
    if name == "poly":
        return optim.PolyLR(optimizer, total_iters=total, power=0.9)
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=total)
    if name == "step":      # / 10 after each third of the run (rounded up): at most twice within it
        return optim.StepLR(optimizer, step_size=max(1, math.ceil(total / 3)), gamma=0.1)
    return None


def _load_state(module_or_optimizer, state, prefix):
    module_or_optimizer.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


# ---- checkpoints --------------------------------------------------------------------
def _checkpoint_path(path):
    """A file means itself. A run folder means the model of its best epoch: ``best.npz``,
    or ``checkpoint.npz`` when a kill came between the two and only the checkpoint has it."""
    if os.path.isdir(path):
        best, last = os.path.join(path, "best.npz"), os.path.join(path, "checkpoint.npz")
        if os.path.exists(last):
            try:
                meta = read_meta(last)
            except CheckpointError:
                meta = None
            best_epoch = (meta or {}).get("best", {}) or {}
            if meta and best_epoch.get("epoch") == meta["epoch"] and checkpoint_epoch(best) != meta["epoch"]:
                return last
        for candidate in (best, last):
            if os.path.exists(candidate):
                return candidate
        raise UserError(f"{path!r} holds no best.npz or checkpoint.npz")
    if not os.path.exists(path):
        raise UserError(f"checkpoint {path!r} does not exist")
    return path


def _read(path, resume=False):
    try:
        return read_checkpoint(path, resume=resume)
    except CheckpointError as error:
        raise UserError(str(error)) from None


def _model_from_state(state, meta, path):
    """(task, model) rebuilt from a checkpoint's configuration, its weights loaded, in eval mode."""
    config = dict(DEFAULTS, **meta["config"])
    try:
        task = task_class(config["task"])(meta["info"])
        model = _build_model(task, config)
    except (KeyError, ValueError, TypeError) as error:           # UserError included: a ValueError
        raise UserError(f"{path!r}: its recorded configuration (task {config.get('task')!r}, model "
                        f"{config.get('model')!r}) does not describe a model this version builds "
                        f"({type(error).__name__}: {error})") from None
    check_checkpoint_dtypes(path, state, model)
    try:
        _load_state(model, state, "model.")
    except (KeyError, ValueError, TypeError, RuntimeError) as error:     # RuntimeError: keys (PyTorch's type)
        raise UserError(f"{path!r}: its weights do not fit the model its configuration describes ({error})") from None
    model.eval()
    return task, model


def load_checkpoint(path):
    """``(model, meta, state)`` from a checkpoint file or a run directory. The model
    is rebuilt, on the current backend, from the configuration stored inside and its
    weights loaded. A weight of another kind than the model's (int or bool for a float
    weight) is a ``UserError`` naming the file and the entry; float16 or float64 weights
    are cast to the model's float32 (see ``runfolder.check_checkpoint_dtypes``)."""
    path = _checkpoint_path(os.fspath(path))
    state, meta = _read(path)
    return _model_from_state(state, meta, path)[1], meta, state


# ---- evaluation -------------------------------------------------------------------
def evaluate(model, task, loader, geometry, size, forward=None):
    """The mean loss and the task's scores over a whole loader: ``(scores dict, accumulator)``.
    Sums stay on the device until the end of the pass. The loss is the mean of the batches'
    losses, each weighted by its number of images. The model is put back in the mode it was in.
    ``forward(images) -> outputs``: how a batch is run (a training run passes its stepper's,
    which shares the pass between its processes); default, ``_forward`` here."""
    was_training = model.training
    model.eval()
    scores = task.new_scores()
    loss_sum, count = 0.0, 0
    with no_grad():
        for images, *labels in loader:
            outputs = forward(images) if forward is not None else _forward(model, images, geometry, size)
            targets = task.targets(labels)
            loss_sum = loss_sum + task.loss(outputs, targets).data * len(images)
            count += len(images)
            scores.update(outputs, targets)
    model.train(was_training)
    if count == 0:
        raise UserError("evaluate: the held-out loader gave no batch (an empty split): there is nothing "
                        "to score")
    return dict(val_loss=float(loss_sum.item()) / count, **scores.summary()), scores


def _plain(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


# ---- the run ----------------------------------------------------------------------
def _choose_out(config, log):
    """``runs/MODEL_DATA_seedN``, or, when that holds an earlier run, the first free
    ``..._2``, ``..._3`` (saying so: the commands that follow must name it)."""
    base = os.path.join("runs", f"{config['model']}_{os.path.basename(os.path.normpath(config['data']))}"
                                f"_seed{config['seed']}")
    out, n = base, 1
    while os.path.exists(out):
        n += 1
        out = f"{base}_{n}"
    if out != base:
        log(f"{base}/ holds an earlier run, so this one goes to {out}/ (--out chooses the folder)")
    return out


def _short_epoch(batch_size, n_train):
    """A note when the training images do not fill one batch (each epoch is then one smaller
    batch), or do not fill the last one: that partial batch is left out (every batch of an
    epoch the same size, which BatchNorm and the two processes' slices want), and since the
    order is shuffled each epoch, a different few images each time."""
    if n_train < batch_size:
        return f" (fewer training images than that: one batch of {n_train} an epoch)"
    left = n_train % batch_size
    if left:
        full = n_train // batch_size
        return (f" ({full} full batch{'es' if full > 1 else ''} an epoch: {left} image{'s' if left > 1 else ''} "
                f"left over, different ones each epoch as the order is shuffled, wait for a later epoch)")
    return ""


def _describe(config, task, model, info, n_train, n_val):
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    extra = dict(task.models[config["model"]], **(config.get("model_args") or {}))
    options = ", ".join(f"{k}={v}" for k, v in extra.items())
    return (f"{config['model']}({options}) with {n_params / 1e6:.2f} M parameters, task {config['task']}, on "
            f"{config['data']} {config['size']}x{config['size']} ({info['num_classes']} classes): "
            f"{n_train} training / {n_val} held-out images, {config['epochs']} epoch{'s' if config['epochs'] > 1 else ''} of batch "
            f"{config['batch_size']}{_short_epoch(config['batch_size'], n_train)}, {config['optimizer']} lr {config['lr']:g} ({config['schedule']}), "
            f"augment {','.join(config['augment']) or 'none'}, seed {config['seed']}, backend {config['backend']}, "
            f"{config['processes']} process{'es' if config['processes'] > 1 else ''} per step")


def _resume_point(config, out):
    """What ``--resume`` continues: ``(config, state, meta)``. Without a finished epoch
    (a kill during the first) the run starts over from its ``config.json``."""
    if out is None:
        raise UserError("--resume needs --out DIR naming the run to continue")
    ckpt, record = os.path.join(out, "checkpoint.npz"), os.path.join(out, "config.json")
    state = meta = None
    if os.path.exists(ckpt):
        state, meta = _read(ckpt, resume=True)
        saved = meta["config"]
    elif os.path.exists(record):
        try:
            with open(record) as f:
                saved = json.load(f)["config"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"--resume: {record!r} is not a run's config.json ({error})") from None
    else:
        raise UserError(f"--resume: {out!r} holds no checkpoint.npz or config.json: there is no run to continue")
    resumed = dict(recorded_options(saved),
                   epochs=saved.get("epochs") if config.get("epochs") is None else config["epochs"],
                   backend=_choose_backend(config.get("backend"), saved.get("backend")),
                   processes=config.get("processes"))      # chosen here, as for a new run
    return resumed, state, meta


def run(config, out=None, resume=False, progress=True, log=print):
    """Train according to ``config`` (keys of ``DEFAULTS`` plus ``model_args``), writing into ``out``.

    Returns the run directory. ``resume=True`` continues ``out``'s run up to
    ``config["epochs"]`` (its stored configuration is used otherwise; no
    ``epochs`` means the run's own), first completing the files a kill left
    one epoch behind. Raises ``UserError`` for bad input and
    ``TrainingDiverged`` for a NaN/inf loss.
    """
    state = meta = None
    if resume:
        config, state, meta = _resume_point(config, out)
    config = resolve_config(config)
    out = out if out is not None else _choose_out(config, log)
    check_out_folder(out)                    # a file, an empty name, a folder it may not write into
    if not resume and os.path.exists(os.path.join(out, "checkpoint.npz")):
        raise UserError(f"--out {out!r} already holds a run (checkpoint.npz): continue it with "
                        f"--resume --out {out}, or choose another --out")
    with _on_backend(config["backend"]):
        return _train(config, out, state, meta, progress, log)


def _train(config, out, state, meta, progress, log):
    from tqdm import tqdm

    manual_seed(config["seed"])
    allocator.keep_freed_memory()          # the steps reuse their memory (allocator.py); workers do the same
    task_cls = task_class(config["task"])
    try:
        train_ds, val_ds, info = build_datasets(config, task_cls, progress=progress, log=log)
    except UserError as error:
        if meta is None:
            raise
        raise UserError(f"{error} (--resume: the run's config.json in {out!r} names this --data)") from None
    if meta is not None:                  # (the run's fingerprint kept: a later evaluate notes it too)
        _same_split(meta["info"], info, config["data"], log)
        if "held_out" in meta["info"]:
            info["held_out"] = meta["info"]["held_out"]
    task = task_cls(info)
    check_unet_size(config["model"], dict(task.models[config["model"]], **(config.get("model_args") or {})),
                    config["size"])
    model = _build_model(task, config)
    size = config["size"]
    geometry = check_model_fits(model, size, info["in_channels"])
    if config["data"] in TOY_DATASETS:
        train_ds, val_ds = _InMemory(train_ds), _InMemory(val_ds)
    transform, val_transform = _transforms(config)
    loader = data_module.DataLoader(train_ds, config["batch_size"], shuffle=True, seed=config["seed"],
                                    drop_last=len(train_ds) >= config["batch_size"], transform=transform)
    _check_train_batches(model, loader)
    val_loader = data_module.DataLoader(val_ds, config["batch_size"], transform=val_transform)
    optimizer = _make_optimizer(config, model.parameters())
    schedule = _make_schedule(config, optimizer, len(loader))
    config = dict(config, processes=data_parallel.processes_for(config, model, task))

    history, start_epoch, best = [], 0, None
    if meta is not None:                                       # resume: the last committed epoch
        check_checkpoint_dtypes(os.path.join(out, "checkpoint.npz"), state, model, optimizer)
        try:
            _load_state(model, state, "model.")
            _load_state(optimizer, state, "optimizer.")
            if schedule is not None and "schedule.last_epoch" in state:
                _load_state(schedule, state, "schedule.")
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            raise UserError(f"--resume: the checkpoint in {out!r} does not fit the run it describes "
                            f"({error})") from None
        history, start_epoch, best = meta["history"], meta["epoch"], meta.get("best")
        if best is not None and (task.best_score not in best or not (
                best[task.best_score] is None or isinstance(best[task.best_score], (int, float)))):
            raise UserError(f"--resume: the checkpoint in {out!r} records its best epoch without a number "
                            f"for {task.best_score!r} (meta['best'] is {best!r:.80})")
        generator().bit_generator.state = meta["rng_state"]
        loader.set_epoch(start_epoch)

    make_out_folder(out)
    for name in remove_stale_temporaries(out):
        log(f"removed {name}, left by an interrupted save")
    checkpoint = os.path.join(out, "checkpoint.npz")
    if meta is not None:
        _write_epoch_files(out, model, meta)                   # what a kill after the commit left undone
        if start_epoch >= config["epochs"]:                    # (its config.json stays: it ran these epochs)
            _figures(out, model, task, history, val_ds, val_transform, geometry, size)
            log(f"{out}: already trained for {start_epoch} epochs; its files are complete. "
                "Pass a larger --epochs to continue")
            return out
    config_record = dict(config, out=out)
    write_json({"config": config_record, "info": info}, os.path.join(out, "config.json"))
    log((f"Resuming at epoch {start_epoch + 1} of {config['epochs']}: " if meta is not None else "Training ")
        + _describe(config, task, model, info, len(train_ds), len(val_ds)))
    log(f"Writing {out}/")

    started = time.perf_counter()
    loss_of = functools.partial(_loss_of, task=task, geometry=geometry, size=size)
    forward_of = functools.partial(_forward, geometry=geometry, size=size)
    stepper = data_parallel.training_step(model, loss_of, config["processes"], seed=config["seed"],
                                          forward_of=forward_of)
    try:
        for epoch in range(start_epoch, config["epochs"]):
            t0 = time.perf_counter()
            # the workers' dropout numbers restart from (seed, epoch) each epoch; this process's
            # continue from the state the checkpoint saves: either way a resumed epoch draws the same
            stepper.set_epoch(epoch)
            model.train()
            scores = task.new_scores(training=True)
            loss_sum, steps = 0.0, 0
            # by hand: a bar iterating the loader would close before the epoch's score is shown
            bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{config['epochs']}", unit="batch",
                       disable=not progress, leave=True, file=sys.stderr, dynamic_ncols=True)
            try:
                for images, *labels in loader:
                    targets = task.targets(labels)
                    # forward, loss and backward, in one process or several (data_parallel.py); the
                    # loss value is the one number a step brings back
                    outputs, value = stepper.step(images, targets)
                    if not math.isfinite(value):
                        raise TrainingDiverged(_diverged(value, epoch, steps, checkpoint, config))
                    optimizer.step()
                    if schedule is not None:
                        schedule.step()
                    scores.update(outputs, targets)
                    loss_sum += value
                    steps += 1
                    bar.set_postfix(loss=f"{loss_sum / steps:.4f}", refresh=False)
                    bar.update()
                train_scores = scores.summary()
                shown = {"loss": f"{loss_sum / steps:.4f}"}
                if task.best_score in train_scores:        # training=True scores may be a cheaper subset
                    shown[task.best_score] = _show(train_scores[task.best_score])
                bar.set_postfix(shown)
            finally:
                bar.close()
            held_out, _ = evaluate(model, task, val_loader, geometry, size, forward=stepper.forward)
            record = dict(epoch=epoch + 1, train_loss=loss_sum / steps,
                          **{f"train_{k}": _plain(v) for k, v in train_scores.items()},
                          **{k: _plain(v) for k, v in held_out.items()},
                          lr=optimizer.lr, seconds=round(time.perf_counter() - t0, 2))
            history.append(record)
            is_best = best is None or _rank(record[task.best_score]) > _rank(best[task.best_score])
            if is_best:
                best = {"epoch": record["epoch"], task.best_score: record[task.best_score]}
            meta = dict(format=CHECKPOINT_FORMAT, epoch=epoch + 1, history=history, best=best,
                        config=config_record, info=info, rng_state=generator().bit_generator.state)
            save_checkpoint(checkpoint, model, meta, optimizer, schedule)     # the epoch's commit point
            _write_epoch_files(out, model, meta)
            log(f"epoch {epoch + 1}/{config['epochs']}: train loss {record['train_loss']:.4f}, held-out "
                f"loss {record['val_loss']:.4f}, "
                + ", ".join(f"{label} {_show(record[k])}" for k, label in task.score_names.items())
                + ("  (best)" if is_best else ""))
    except KeyboardInterrupt:
        again = f"minisegnet train --resume --out {out}{_processes_flag(config, model, task)}"
        if history:
            log(f"\ninterrupted; {checkpoint} holds the last finished epoch. Continue with: {again}")
        else:
            log(f"\ninterrupted before the first epoch finished: no checkpoint yet. Start over with: {again}")
        raise
    finally:
        stepper.close()                                        # stops the worker processes, if any
        if history:
            _figures(out, model, task, history, val_ds, val_transform, geometry, size)

    log(f"done in {time.perf_counter() - started:.0f} s: best held-out {task.score_names[task.best_score]} "
        f"{_show(best[task.best_score])} (epoch {best['epoch']}); files in {out}/")
    return out


def _processes_flag(config, model, task):
    """`` --processes N`` where a resume here would choose another count than the run's (a
    resumed run ends exactly as an uninterrupted one on the same count only), else nothing."""
    chosen = data_parallel.processes_for(dict(config, processes=None), model, task)
    return "" if chosen == config["processes"] else f" --processes {config['processes']}"


def _rank(score):
    """A score for comparison: an undefined one (None) is worse than any number."""
    return -math.inf if score is None else score


def _show(value):
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _diverged(value, epoch, steps, checkpoint, config):
    kept = (f"the last good checkpoint {checkpoint} (epoch {epoch}) is kept"
            if epoch > 0 else "no checkpoint had been written yet")
    return (f"training stopped: the loss became {value} at epoch {epoch + 1}, step {steps + 1}; "
            f"{kept}. Try a smaller --lr (this run used {config['lr']:g}); a NaN also comes from a "
            f"batch whose every pixel is an ignored label (a mean over no pixels).")


def _write_epoch_files(out, model, meta):
    """After the commit: ``best.npz`` when the committed epoch is the best so far, and
    ``metrics.json``. Both follow from the checkpoint, so resume can always redo them."""
    if meta.get("best") and meta["best"]["epoch"] == meta["epoch"]:
        save_checkpoint(os.path.join(out, "best.npz"), model, meta)
    write_json({"best": meta.get("best"), "epochs": meta["history"]}, os.path.join(out, "metrics.json"))


def _figures(out, model, task, history, val_ds, val_transform, geometry, size, n=4):
    """``curves.png`` and ``predictions.png`` (the first ``n`` held-out images), each written atomically."""
    with atomic_file(os.path.join(out, "curves.png")) as f:
        task.plot_curves(history, f)
    images, *labels = next(iter(data_module.DataLoader(val_ds, min(n, len(val_ds)), transform=val_transform)))
    was_training = model.training
    model.eval()
    with no_grad():
        predictions = task.postprocess(_forward(model, images, geometry, size))
    model.train(was_training)
    with atomic_file(os.path.join(out, "predictions.png")) as f:
        task.plot_predictions(images, tuple(labels), predictions, f)


def evaluate_checkpoint(path, batch_size=None, backend_name=None, log=print):
    """Re-score a checkpoint (or a run directory's best epoch) on its held-out split.
    Returns ``(scores, recorded)``: fresh scores and the ones saved for that epoch.
    ``backend_name``: where to evaluate (default: ``MINISEGNET_BACKEND``, else the
    current one); the model is built there, whatever backend it was trained on."""
    if batch_size is not None and not _positive_int(batch_size):
        raise UserError(f"--batch-size must be a positive integer, got {batch_size!r}")
    path = _checkpoint_path(os.fspath(path))
    state, meta = _read(path)
    where = _choose_backend(backend_name)
    with _on_backend(where):
        task, model = _model_from_state(state, meta, path)
        try:
            # the backend and the process count are this machine's choices, not the run's
            # (a run trained in 2 processes is evaluated on a 1-CPU machine too)
            config = resolve_config(dict(recorded_options(meta["config"]), backend=where, processes=None))
        except UserError as error:                  # the run's recorded options, not the user's
            raise UserError(f"{path!r}: the configuration it records is not one this version runs "
                            f"(as an option, {error})") from None
        try:
            _, val_ds, info = build_datasets(config, type(task), log=log)
        except UserError as error:
            raise UserError(f"{path}: the run's held-out images come from its --data {config['data']!r} "
                            f"(config.json), which cannot be read now: {error}") from None
        _same_split(meta["info"], info, config["data"], log)
        size = config["size"]
        loader = data_module.DataLoader(val_ds, batch_size or config["batch_size"], transform=_transforms(config)[1])
        scores, accumulator = evaluate(model, task, loader, geometry_for(model, size), size)
    recorded = next((h for h in meta["history"] if h.get("epoch") == meta["epoch"]), {})
    log(f"{path}: epoch {meta['epoch']} of {config['model']} ({config['task']}) on {config['data']}, "
        f"{len(val_ds)} held-out images")
    log(f"{'score':<16}{'now':>10}{'recorded':>10}")
    for key, label in (("val_loss", "loss"), *task.score_names.items()):
        rec = recorded.get(key)
        log(f"{label:<16}{scores[key]:>10.4f}{'' if rec is None else format(rec, '>10.4f')}")
    for line in accumulator.report():
        log(line)
    return scores, recorded
