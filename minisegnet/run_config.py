"""A training run's configuration: the defaults, checking every option, and the backend.

``resolve_config(config)`` fills each ``None`` of ``DEFAULTS`` in (from the
task, the data, the environment) and checks every value, raising
``UserError`` with the option's name: what ``minisegnet train`` and
``train.run`` do before any work. ``train.py`` runs what it describes.
"""
import contextlib
import math
import os

import numpy as np

from . import backend, checks, data as data_module, tasks

__all__ = ["DEFAULTS", "TOY_DATASETS", "DEFAULT_AUGMENT", "UserError", "TrainingDiverged", "task_class",
           "resolve_config"]

# The default run: a small same-padding U-Net on Shapes (the semantic task's
# defaults), sized so that a 2-core CPU finishes within a couple of minutes.
# None means "the task's (or the data's, or the environment's) choice".
DEFAULTS = dict(
    task="semantic", model=None, data=None, size=64, num_train=512, num_val=64, epochs=12, batch_size=8,
    optimizer="adam", lr=3e-3, weight_decay=None, momentum=0.9, schedule="poly",
    seed=0, backend=None, augment=None, num_classes=None, thing_classes=None, val_fraction=0.2,
    processes=None,
)
TOY_DATASETS = {"shapes": data_module.Shapes, "roads": data_module.Roads, "cells": data_module.Cells}
# Augmentations used when --augment is not given (names of data.AUGMENTATIONS).
# Generated scenes have no up or down; photos in a folder do.
DEFAULT_AUGMENT = {"toy": ["hflip", "vflip", "rot90"], "folder": ["hflip"]}


class UserError(ValueError):
    """A problem with the user's input (arguments, files): the CLI prints it and exits 2."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says what was kept and what to try."""


# ---- configuration ------------------------------------------------------------------
def _positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _number(value):
    """A real number, not a bool (``True`` is an int to Python, not a learning rate) or a string."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


OPTIONS = tuple(DEFAULTS) + ("model_args",)
"""What a run's configuration may hold: ``DEFAULTS``' options and ``model_args`` (the model's
constructor arguments past the task's defaults)."""


def recorded_options(saved):
    """The options of a run's recorded configuration (``config.json``, a checkpoint's) that
    ``resolve_config`` takes: the record also holds ``out``, and an older version's may hold an
    option since removed, neither of which is an option of this run."""
    return {k: v for k, v in saved.items() if k in OPTIONS}


def task_class(name):
    """The task class for ``--task name`` (a ``UserError`` names the choices)."""
    if name not in tasks.TASK_NAMES:
        raise UserError(f"--task must be one of {', '.join(tasks.TASK_NAMES)}, got {name!r}")
    if name not in tasks.TASKS:
        raise UserError(f"--task {name} is not available yet in this version "
                        f"(available: {', '.join(tasks.TASKS)})")
    return tasks.TASKS[name]


def _augment_names(value, data):
    """``--augment``: None (the data's default), True/False (older runs), a list or "a,b" -> a list of names.
    An empty list is none (``--no-augment``, a saved run's resolved "none")."""
    kind = "toy" if data in TOY_DATASETS else "folder"
    if value is None or value is True:
        return list(DEFAULT_AUGMENT[kind])
    if value is False or (isinstance(value, (list, tuple)) and not value):
        return []
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names]
    if names == ["none"]:
        return []
    return check_augment_names(names, value)


def check_augment_names(names, given, or_none=True):
    """``names`` (stripped) if each is one of ``data.AUGMENTATIONS``; else a ``UserError``
    quoting ``given`` (what the user typed) and saying what is wrong: an empty name (two
    commas in a row, or one at an end) or unknown ones. ``or_none``: "none" is also taken."""
    unknown = [n for n in names if n not in data_module.AUGMENTATIONS]
    twice = [n for n in checks.repeated(names) if n not in unknown]
    if unknown or twice:
        problem = ("an empty name: two commas in a row, or one at either end" if "" in unknown
                   else f"unknown: {', '.join(unknown)}" if unknown else f"named twice: {', '.join(twice)}")
        raise UserError(f"--augment takes names from {', '.join(data_module.AUGMENTATIONS)} separated by "
                        f"commas, each once{', or none' if or_none else ''}; got {given!r} ({problem})")
    return names


def _thing_classes(value, data):
    """``--thing-classes``: None, a list of class numbers or "1,2" -> a sorted list, or None.
    Which classes a folder's ``instances/`` PNGs number; the built-in data name their own."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    classes = [int(p) if isinstance(p, str) and p.strip().isdigit() else p for p in parts]
    if not classes or not all(checks.is_int(c) and c >= 0 for c in classes):
        raise UserError(f"--thing-classes takes class numbers separated by commas (e.g. 1,2), got {value!r}")
    text = ",".join(str(c) for c in classes)
    twice = checks.repeated([int(c) for c in classes])
    if twice:
        raise UserError(f"--thing-classes {text} names class {twice[0]} twice")
    classes = sorted(int(c) for c in classes)
    toy = TOY_DATASETS.get(data)
    if toy is not None and tuple(classes) != tuple(toy.thing_classes):
        raise UserError(f"--thing-classes {text}: the built-in {data} data's thing classes are "
                        f"{','.join(map(str, toy.thing_classes)) or 'none'} (--thing-classes is for folder data)")
    return classes


def resolve_config(config):
    """``config`` with every ``None`` default filled in (from the task, the data, the
    environment) and every value checked; raises ``UserError`` naming the option (an
    unknown one too: a misspelt ``epoch`` would otherwise train the default epochs)."""
    unknown = [key for key in config if key not in OPTIONS]
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r}: the options are {', '.join(OPTIONS)}")
    config = dict(DEFAULTS, **config)
    task = task_class(config["task"])
    config["model"] = config["model"] or task.defaults["model"]
    if config["model"] not in task.models:
        raise UserError(f"--model {config['model']!r} is not a model of --task {task.name} "
                        f"(its models: {', '.join(task.models)})")
    config["data"] = config["data"] or task.defaults["data"]
    if config["data"] not in TOY_DATASETS:
        # a folder: kept as an absolute path, so that evaluate, predict and --resume find it from anywhere
        config["data"] = os.path.abspath(os.fspath(config["data"]))
    if config["data"] in TOY_DATASETS and config["data"] not in task.datasets:
        raise UserError(f"--data {config['data']} has no truth for --task {task.name} "
                        f"(its built-in data: {', '.join(task.datasets)}, or a folder)")
    if config["data"] in TOY_DATASETS and isinstance(config["size"], int) and not isinstance(config["size"], bool) \
            and config["size"] < data_module.toy.MIN_SIZE:   # one rule for 0 and 8: the scenes' own
        raise UserError(f"--size must be at least {data_module.toy.MIN_SIZE} pixels for the built-in "
                        f"--data {config['data']} (its scenes need the room), got {config['size']}")
    for key in ("epochs", "batch_size", "size", "num_train", "num_val"):
        if not _positive_int(config[key]):
            raise UserError(f"--{key.replace('_', '-')} must be a positive integer, got {config[key]!r}")
    if config["num_classes"] is not None:
        if not _positive_int(config["num_classes"]):
            raise UserError(f"--num-classes must be a positive integer, got {config['num_classes']!r}")
        toy = TOY_DATASETS.get(config["data"])
        if toy is not None and config["num_classes"] != toy.num_classes:
            raise UserError(f"--num-classes {config['num_classes']}: the built-in {config['data']} data has "
                            f"{toy.num_classes} classes (--num-classes is for folder data)")
    if not (_number(config["lr"]) and config["lr"] > 0 and math.isfinite(config["lr"])):
        raise UserError(f"--lr must be a positive number, got {config['lr']!r}")
    if config["weight_decay"] is None:          # the optimizer's own default, as in torch.optim
        config["weight_decay"] = 1e-2 if config["optimizer"] == "adamw" else 0.0
    for key in ("weight_decay", "momentum"):
        if not (_number(config[key]) and config[key] >= 0 and math.isfinite(config[key])):
            raise UserError(f"--{key.replace('_', '-')} must be a non-negative number, got {config[key]!r}")
    if config["momentum"] >= 1:
        raise UserError(f"--momentum must be below 1 (SGD's running sum of gradients decays by that factor "
                        f"each step; at 1 or more it never decays and the steps grow), got {config['momentum']!r}")
    if isinstance(config["seed"], bool) or not isinstance(config["seed"], (int, np.integer)) \
            or not 0 <= config["seed"] < 2**64:
        raise UserError(f"--seed must be an integer from 0 to 2**64 - 1, got {config['seed']!r}")
    config["seed"] = int(config["seed"])              # (a NumPy integer too; config.json holds plain ints)
    if not (_number(config["val_fraction"]) and 0 < config["val_fraction"] < 1):
        raise UserError(f"val_fraction must be between 0 and 1, got {config['val_fraction']!r}")
    if config["optimizer"] not in ("adam", "adamw", "sgd"):
        raise UserError(f"--optimizer must be adam, adamw or sgd, got {config['optimizer']!r}")
    if config["schedule"] not in ("poly", "cosine", "step", "none"):
        raise UserError(f"--schedule must be poly, cosine, step or none, got {config['schedule']!r}")
    config["backend"] = config["backend"] or _choose_backend(None)
    if config["backend"] not in ("numpy", "cupy"):
        raise UserError(f"--backend must be numpy or cupy, got {config['backend']!r}")
    processes = config["processes"]
    if processes is not None:
        if not _positive_int(processes):
            raise UserError(f"--processes must be a positive integer, got {processes!r}")
        if processes > config["batch_size"]:
            raise UserError(f"--processes {processes}: each process takes a share of a batch's images, "
                            f"so at most --batch-size ({config['batch_size']}) processes")
        if processes > (os.cpu_count() or 1):
            raise UserError(f"--processes {processes}: more than this machine's {os.cpu_count() or 1} "
                            f"CPUs (the processes would take turns on them)")
    if config["data"] not in TOY_DATASETS and os.path.isdir(config["data"]):   # (no folder: build_datasets says so)
        for key in ("num_train", "num_val"):
            if config[key] != DEFAULTS[key]:
                raise UserError(f"--{key.replace('_', '-')} {config[key]}: the built-in datasets are generated "
                                f"to that size; a folder's images are all used, "
                                f"{config['val_fraction']:.0%} of them held out")
    config["augment"] = _augment_names(config["augment"], config["data"])
    config["thing_classes"] = _thing_classes(config["thing_classes"], config["data"])
    return config


def check_out_folder(out, option="--out"):
    """Before any work: ``out`` names a folder that is there or can be made (no file on its path)
    and that the nearest existing folder on its path lets this process write into; else a
    ``UserError`` naming ``option``. Nothing is created (``make_out_folder`` does that)."""
    if not os.fspath(out).strip():
        raise UserError(f"{option} is empty: name a folder (or leave {option} out for the default)")
    place = os.path.abspath(out)
    while not os.path.exists(place) and os.path.dirname(place) != place:
        place = os.path.dirname(place)
    if not os.path.isdir(place):
        raise UserError(f"{option} {os.fspath(out)!r}: {place!r} is a file, so no folder can be made there")
    if not os.access(place, os.W_OK | os.X_OK):
        raise UserError(f"{option} {os.fspath(out)!r}: this process may not write into {place!r}")


def make_out_folder(out, option="--out"):
    """Make the folder ``out`` (and its parents) and check that a file can be written in it
    (a read-only file system passes ``check_out_folder``'s test); else a ``UserError``."""
    import tempfile

    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise UserError(f"{option} {os.fspath(out)!r}: cannot write into this folder "
                        f"({error.strerror or error})") from None


def _choose_backend(requested, saved=None):
    """``--backend`` if given, else ``MINISEGNET_BACKEND``, else the run's own (resuming),
    else the current backend (numpy unless ``set_backend`` chose another)."""
    env = os.environ.get("MINISEGNET_BACKEND", "").strip().lower()
    return requested or env or saved or backend.get_backend()


@contextlib.contextmanager
def _on_backend(name):
    """Make ``name`` the backend for everything built inside the block, then restore the previous one.
    It is switched before the model or the data exist, never after."""
    previous = backend.get_backend()
    try:
        backend.set_backend(name)
    except (ValueError, RuntimeError) as error:
        raise UserError(f"backend {name} (from --backend, else MINISEGNET_BACKEND, else the run's "
                        f"config.json): {error}") from None
    try:
        yield
    finally:
        backend.restore_backend(previous)       # as it was, even a MINISEGNET_BACKEND=cupy without CuPy
