"""The run folder: its files, how they are written, and why a kill never breaks it.

A training run writes into one folder (``runs/NAME/`` or ``--out DIR``)::

    config.json       the configuration and the dataset's description (written first)
    checkpoint.npz    the last finished epoch: weights, optimizer, schedule, history,
                      best epoch, random state. THE COMMIT POINT of an epoch.
    best.npz          the weights of the epoch with the best held-out score
    metrics.json      one record per finished epoch, and the best epoch
    curves.png        losses and scores per epoch (drawn when the run stops)
    predictions.png   image | truth | prediction on held-out images (drawn when the run stops)

Every file is written whole or not at all: its bytes go to a temporary
``.NAME.XXXX.tmp`` in the same folder, are flushed to disk, and the
temporary file is then renamed over ``NAME`` (``os.replace``, atomic within
a folder; ``io.atomic_file``). A reader sees the old file or the new one,
never a mix, and a new file gets the permissions a plain ``open`` would give it.

An epoch ends with, in this order: ``checkpoint.npz`` (the commit), then
``best.npz`` if this epoch is the best so far, then ``metrics.json``. All of
``best.npz`` and ``metrics.json`` follows from the committed checkpoint: a
kill between the commit and the last of them leaves them one epoch behind,
and ``--resume`` rewrites them from the checkpoint before it trains on (and
even when no epoch is left to train), then redraws the figures. A kill before
the commit loses only the unfinished epoch, which resume redoes with the same
random numbers, so the run ends exactly as an uninterrupted one. Temporary
files of saves a kill interrupted are removed when the next run or resume in
the folder starts.
"""
import json
import os

import numpy as np

from . import checks, io
from .autograd import Tensor
from .io import atomic_file
from .run_config import UserError

__all__ = ["RUN_FILES", "CHECKPOINT_FORMAT", "atomic_file", "write_json", "remove_stale_temporaries",
           "save_checkpoint", "read_checkpoint", "read_meta", "checkpoint_epoch", "CheckpointError",
           "check_checkpoint_dtypes"]

RUN_FILES = ("config.json", "checkpoint.npz", "best.npz", "metrics.json", "curves.png", "predictions.png")
CHECKPOINT_FORMAT = "minisegnet-checkpoint-1"


class CheckpointError(ValueError):
    """A file that is not a readable minisegnet training checkpoint; the message names it and why."""


def write_json(obj, path):
    """``obj`` as indented JSON at ``path``, atomically."""
    with atomic_file(path) as f:
        f.write((json.dumps(obj, indent=2) + "\n").encode())


def remove_stale_temporaries(folder):
    """Delete the ``.NAME.XXXX.tmp`` files that killed saves of run files left in
    ``folder``; returns their names. Other files are never touched."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".tmp") and any(entry.startswith(f".{name}.") for name in RUN_FILES):
            path = os.path.join(folder, entry)
            if os.path.isfile(path):
                os.remove(path)
                removed.append(entry)
    return removed


def save_checkpoint(path, model, meta, optimizer=None, schedule=None):
    """Weights (``model.*``), optimizer (``optimizer.*``) and schedule (``schedule.*``)
    state and ``meta`` (a JSON text in the ``meta`` entry) in one ``.npz``, atomically."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        state.update({f"optimizer.{k}": v for k, v in optimizer.state_dict().items()})
    if schedule is not None:
        state.update({f"schedule.{k}": v for k, v in schedule.state_dict().items()})
    state["meta"] = np.array(json.dumps(meta))
    io.save(state, path)


def read_checkpoint(path, resume=False):
    """``(state, meta)`` of a training checkpoint, checked: ``state`` maps names to
    arrays, ``meta`` is the run's record (format, epoch, history, config, info, ...).

    Raises ``CheckpointError`` naming ``path`` for a file that cannot be read,
    has no ``meta`` entry, whose ``meta`` is not JSON, or lacks a field
    resuming or evaluating needs, or has one of the wrong kind. ``resume=True``
    also checks ``meta["rng_state"]``, which only resuming reads.
    """
    try:
        state = io.load(path)
    except (ValueError, OSError) as error:
        raise CheckpointError(str(error)) from None
    if not isinstance(state, dict) or "meta" not in state:
        raise CheckpointError(f"{path!r} is an .npz file but not a minisegnet training checkpoint "
                              "(no 'meta' entry)")
    meta = _checked_meta(state["meta"], path)
    if resume:
        _check_rng_state(meta, path)
    return state, meta


def read_meta(path):
    """The checked ``meta`` of the checkpoint at ``path`` alone, without reading its arrays
    (a big model's checkpoint is hundreds of megabytes; its record is a few kilobytes).
    Raises ``CheckpointError`` as ``read_checkpoint`` does."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            meta_array = io.read_member(archive, "meta.npy", path)   # its header checked before any allocation
    except KeyError:
        raise CheckpointError(f"{path!r} is an .npz file but not a minisegnet training checkpoint "
                              "(no 'meta' entry)") from None
    except io.BadMember as error:                    # its message names the checkpoint already
        raise CheckpointError(str(error)) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"cannot read checkpoint {path!r}: {error}") from None
    return _checked_meta(meta_array, path)


def _checked_meta(meta_array, path):
    if not isinstance(meta_array, np.ndarray) or meta_array.dtype.kind != "U" or meta_array.ndim != 0:
        raise CheckpointError(f"{path!r}: its 'meta' entry should be a JSON text, got "
                              f"{getattr(meta_array, 'dtype', type(meta_array).__name__)} "
                              f"of shape {getattr(meta_array, 'shape', '?')}")
    try:
        meta = json.loads(str(meta_array))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path!r}: its 'meta' entry is not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path!r}: its 'meta' entry should be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path!r} has checkpoint format {meta.get('format')!r}, "
                              f"expected {CHECKPOINT_FORMAT!r}")
    missing = [k for k in ("config", "info", "epoch", "history") if k not in meta]
    if missing:
        raise CheckpointError(f"{path!r}: its 'meta' lacks {', '.join(repr(k) for k in missing)}, "
                              "needed to rebuild the model and the data")
    for key, kind in (("config", dict), ("info", dict), ("history", list), ("epoch", int)):
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise CheckpointError(f"{path!r}: its meta[{key!r}] should be a JSON "
                                  f"{ {dict: 'object', list: 'list', int: 'integer'}[kind] }, "
                                  f"got {type(meta[key]).__name__}")
    for key in ("model", "data", "size"):
        if key not in meta["config"]:
            raise CheckpointError(f"{path!r}: its meta['config'] lacks {key!r}")
    for key in ("num_classes", "in_channels", "class_names", "palette"):
        if key not in meta["info"]:
            raise CheckpointError(f"{path!r}: its meta['info'] lacks {key!r}")
    if meta["epoch"] < 0:
        raise CheckpointError(f"{path!r}: its meta['epoch'] (the epochs it has trained) should be "
                              f"0 or more, got {meta['epoch']}")
    for i, item in enumerate(meta["history"]):
        if not isinstance(item, dict):
            raise CheckpointError(f"{path!r}: its meta['history'] should hold one JSON object per epoch; "
                                  f"item {i} is {item!r:.60}")
    best = meta.get("best")
    if best is not None and not (isinstance(best, dict) and checks.is_int(best.get("epoch"))
                                 and 1 <= best["epoch"] <= meta["epoch"]):
        raise CheckpointError(f"{path!r}: its meta['best'] should be null or a JSON object whose 'epoch' is an "
                              f"integer from 1 to the checkpoint's epoch ({meta['epoch']}), got {best!r:.80}")
    info = meta["info"]
    if not (checks.is_int(info["num_classes"]) and info["num_classes"] >= 1):
        raise CheckpointError(f"{path!r}: its meta['info']['num_classes'] should be a positive integer, "
                              f"got {info['num_classes']!r}")
    palette = info["palette"]
    if not (isinstance(palette, list) and len(palette) >= info["num_classes"]
            and all(isinstance(c, list) and len(c) == 3 and all(checks.is_int(v) and 0 <= v <= 255 for v in c)
                    for c in palette)):
        raise CheckpointError(f"{path!r}: its meta['info']['palette'] should be a list of at least "
                              f"num_classes ({info['num_classes']}) [R, G, B] colours of integers 0 to 255, "
                              f"got {palette!r:.80}")
    return meta


def _check_rng_state(meta, path):
    """``meta["rng_state"]``, the random generator's state a resumed run continues from, must be one
    NumPy's PCG64 (``random.generator()``'s) accepts."""
    if "rng_state" not in meta:
        raise CheckpointError(f"{path!r}: its meta lacks 'rng_state', the random state resuming continues from")
    try:
        np.random.PCG64().state = meta["rng_state"]
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path!r}: its meta['rng_state'] is not a random state this run can continue "
                              f"from ({type(error).__name__}: {error}); got {meta['rng_state']!r:.80}") from None


def checkpoint_epoch(path):
    """The epoch recorded in the checkpoint at ``path``, or None when it is missing or unreadable."""
    if not os.path.exists(path):
        return None
    try:
        return read_meta(path)["epoch"]
    except CheckpointError:
        return None


_KINDS = {"f": "floating-point", "i": "integer", "u": "integer", "b": "bool"}


def check_checkpoint_dtypes(path, state, model, optimizer=None):
    """Refuse a checkpoint whose arrays are not of the kind of what they are loaded into.

    The rule: a floating-point weight, buffer or optimizer moment takes a floating-point
    array of any width (float16 or float64 is cast to the model's dtype, as torch's
    ``load_state_dict`` copies with a cast); an integer buffer (BatchNorm's
    ``num_batches_tracked``) takes an integer array. Anything else (an int or bool array
    for a float weight, a float count, text) is a broken or foreign file: a ``UserError``
    naming the file, the entry, the dtype found and the dtype expected. So is a model weight or
    buffer holding NaN or an infinity (what a diverged run leaves: predictions from it would be
    meaningless). ``Module.load_state_dict``
    itself casts any numeric array, as torch does; this is the stricter rule for checkpoint files,
    which ``msn.save`` wrote from the model's own arrays.
    """
    expected = {f"model.{name}": (t.data if isinstance(t, Tensor) else t).dtype
                for name, t in model._named_state()}
    if optimizer is not None:
        for key in state:
            parts = key.split(".")
            if key.startswith("optimizer.state.") and len(parts) == 4 and parts[2].isdigit() \
                    and parts[3] != "step" and int(parts[2]) < len(optimizer.params):
                expected[key] = optimizer.params[int(parts[2])].data.dtype
    for key, target in expected.items():
        if key not in state:
            continue                          # load_state_dict names the missing keys
        found = np.asarray(state[key]).dtype
        if _KINDS.get(found.kind) != _KINDS.get(target.kind):
            kind = _KINDS.get(target.kind, str(target))
            rule = (f"a {kind} weight takes {kind} values (float16 or float64 are cast to it)"
                    if target.kind == "f" else f"an {kind} buffer takes {kind} values")
            raise UserError(f"{path!r}: its entry {key!r} holds {found} values where the model has {target}: "
                            f"{rule}; the file is broken or was not written by minisegnet")
        if key.startswith("model.") and found.kind == "f" and not np.isfinite(state[key]).all():
            raise UserError(f"{path!r}: its entry {key!r} holds NaN or infinite values (a diverged run's "
                            f"weights); train again, e.g. with a lower --lr")
