"""The training loop, evaluation and prediction behind ``minisegnet train|evaluate|predict``.

One epoch reads straight down the design's data flow::

    for images, masks in loader:                 # data/: (N, C, H, W), (N, H, W)
        logits = model(x)                        # models/ -> nn/ -> functional/, recorded by autograd
        loss = F.cross_entropy(logits, target)   # mean over pixels
        optimizer.zero_grad(); loss.backward()   # the graph walk fills p.grad
        optimizer.step(); schedule.step()        # optim.py: in-place update, poly learning rate
    scores = evaluate(model, held_out)           # metrics.py: summed confusion matrix -> FCN scores

A run writes into ``runs/NAME/`` (or ``--out DIR``):

* ``config.json``: model, data and arguments, enough to rebuild everything;
* ``metrics.json``: one record per epoch (losses, pixel acc., mean acc., mean IU, f.w. IU);
* ``checkpoint.npz``: the last epoch (model, optimizer, schedule, history, random state),
  the file ``--resume`` continues from; ``best.npz``: the model of the best held-out mean IU;
* ``curves.png`` and ``predictions.png`` (image | truth | prediction).

Every file is written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint. A NaN or infinite loss stops the run with a message and
leaves the last good checkpoint in place. The same seed gives the same numbers:
the weights come from ``msn.manual_seed(seed)``, the data from ``(seed, index)``,
and each epoch's shuffling and augmentation from ``(seed, epoch)``.

Valid-padding U-Nets (the paper's) output less than they take in. Training then
mirror-pads each image (the paper's overlap-tile trick) so that the output covers
the whole mask; prediction on large images slides such tiles over the image.
"""
import json
import math
import os
import sys
import time

import numpy as np

from . import backend, data as data_module, io, metrics, optim, shapes
from .autograd import Tensor, no_grad
from .functional import cross_entropy
from .random import generator, manual_seed

__all__ = ["DEFAULTS", "UserError", "TrainingDiverged", "run", "evaluate_checkpoint", "predict_images",
           "load_checkpoint", "predict_image", "Geometry"]

# The default run: a small same-padding U-Net on Shapes, sized so that a 2-core
# CPU finishes within about three minutes (README has the measured figures).
DEFAULTS = dict(
    model="unet", data="shapes", size=64, num_train=512, num_val=64, epochs=12, batch_size=8,
    optimizer="adam", lr=3e-3, weight_decay=0.0, momentum=0.9, schedule="poly",
    seed=0, backend="numpy", augment=True, num_classes=None, val_fraction=0.2,
)
# Model options used when the user gives none (``--model-arg KEY=VALUE`` overrides).
MODEL_DEFAULTS = {
    "unet": dict(base_channels=8, depth=3, padding="same"),
    # The paper's rates 6/12/18 need feature maps larger than 18 pixels (inputs of
    # 289 at output stride 16); toy images of 64 pixels give 8x8 maps at stride 8.
    "deeplabv3plus": dict(output_stride=8, atrous_rates=(1, 2, 3)),
}
TOY_DATASETS = {"shapes": data_module.Shapes, "roads": data_module.Roads, "cells": data_module.Cells}
CHECKPOINT_FORMAT = "minisegnet-checkpoint-1"


class UserError(ValueError):
    """A problem with the user's input (arguments, files): the CLI prints it and exits 2."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says what was kept and what to try."""


# ---- data ----------------------------------------------------------------------
class _InMemory:
    """A dataset drawn once and kept: the toy scenes cost milliseconds each, and an
    epoch would otherwise redraw every one of them."""

    def __init__(self, dataset):
        self.items = [dataset[i] for i in range(len(dataset))]
        for name in ("num_classes", "in_channels", "class_names", "palette"):
            setattr(self, name, getattr(dataset, name))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def _dataset_info(ds):
    return dict(num_classes=int(ds.num_classes), in_channels=int(ds.in_channels),
                class_names=list(ds.class_names), palette=np.asarray(ds.palette).tolist())


def _infer_num_classes(masks_dir):
    from PIL import Image
    top = 0
    for name in sorted(os.listdir(masks_dir)):
        if name.lower().endswith(".png"):
            with Image.open(os.path.join(masks_dir, name)) as m:
                values = np.unique(np.asarray(m))
            values = values[values != 255]        # VOC's "don't care" label is not a class
            if values.size:
                top = max(top, int(values.max()))
    return top + 1


def build_datasets(config):
    """The training and held-out datasets for ``config``, and their info dict
    (num_classes, in_channels, class_names, palette)."""
    name, size = config["data"], config["size"]
    if name in TOY_DATASETS:
        cls = TOY_DATASETS[name]
        try:
            train = cls(config["num_train"], size, seed=config["seed"], split="train")
        except ValueError as error:     # e.g. a --size too small to draw the scenes in
            raise UserError(f"--data {name}: {error}") from None
        val = cls(config["num_val"], size, seed=config["seed"], split="val")
        return train, val, _dataset_info(train)
    root = os.path.abspath(name)
    images, masks = os.path.join(root, "images"), os.path.join(root, "masks")
    if not os.path.isdir(images) or not os.path.isdir(masks):
        raise UserError(f"--data {name!r} is neither a built-in dataset ({', '.join(TOY_DATASETS)}) nor a "
                        "folder holding images/ and masks/ subfolders")
    num_classes = config["num_classes"] or _infer_num_classes(masks)
    try:
        full = data_module.FolderDataset(images, masks, num_classes, ignore_index=255)
    except (ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    if len(full) < 2:
        raise UserError(f"--data {name!r} holds {len(full)} image; at least 2 are needed "
                        "(one to train on, one held out)")
    n_val = min(max(1, int(round(len(full) * config["val_fraction"]))), len(full) - 1)
    order = np.random.default_rng([config["seed"], 7]).permutation(len(full))
    val = data_module.Subset(full, sorted(order[:n_val].tolist()))
    train = data_module.Subset(full, sorted(order[n_val:].tolist()))
    return train, val, _dataset_info(full)


# ---- model geometry --------------------------------------------------------------
class Geometry:
    """How an ``S x S`` training image meets the model.

    ``pad`` = (top, bottom, left, right): mirror padding added to the image;
    ``crop`` = (top, left): where the ``S x S`` window sits in the model's output.
    Same-padding models: no padding, no crop. A valid-padding U-Net: the image is
    mirror-padded to the smallest valid input whose output covers it.
    """

    def __init__(self, pad=(0, 0, 0, 0), crop=(0, 0)):
        self.pad, self.crop = tuple(pad), tuple(crop)

    @property
    def padded(self):
        return any(self.pad)


def _is_valid_unet(model):
    return type(model).__name__ == "UNet" and getattr(model, "padding", None) == "valid"


def _valid_unet_input(model, size):
    """The smallest valid input of a valid-padding U-Net whose output is at least ``size``."""
    for i in shapes.unet_valid_input_sizes(size, size + 64 * 2 ** model.depth + 400, depth=model.depth):
        out = shapes.unet_output_size(i, depth=model.depth)
        if out >= size:
            return i, out
    raise UserError(f"no valid U-Net input found for size {size}")  # pragma: no cover - unreachable


def geometry_for(model, size):
    """The ``Geometry`` for training/evaluating ``model`` on ``size x size`` images."""
    if _is_valid_unet(model):
        i, out = _valid_unet_input(model, size)
        margin = (i - out) // 2                 # the U-Net's output starts `margin` pixels in
        before = (i - size) // 2
        after = i - size - before
        offset = before - margin                # the image's first row, in output rows
        return Geometry((before, after, before, after), (offset, offset))
    return Geometry()


def _check_model_fits(model, size, in_channels):
    """Run one tiny forward pass so a size the model cannot take fails now, clearly."""
    geometry = geometry_for(model, size)
    t, b, l, r = geometry.pad
    x = Tensor(backend.asarray(np.zeros((1, in_channels, size + t + b, size + l + r), np.float32)))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = model(x)
    except ValueError as error:
        raise UserError(f"--size {size} does not fit this model: {error}") from None
    finally:
        model.train(was_training)
    oh, ow = out.shape[2:]
    top, left = geometry.crop
    if top < 0 or left < 0 or oh < top + size or ow < left + size:
        raise UserError(f"the model's output {oh}x{ow} does not cover a {size}x{size} image")
    return geometry


def _forward(model, images, geometry, size):
    """Logits for a batch of ``size x size`` images, cropped to ``size x size``."""
    if geometry.padded:
        t, b, l, r = geometry.pad
        images = np.pad(images, ((0, 0), (0, 0), (t, b), (l, r)), mode="reflect")
    logits = model(Tensor(backend.asarray(images)))
    if logits.shape[2:] != (size, size):
        top, left = geometry.crop
        logits = logits[:, :, top:top + size, left:left + size]
    return logits


def build_model_from(config, info):
    from .models import build_model

    kwargs = dict(MODEL_DEFAULTS.get(config["model"], {}))
    kwargs.update(config.get("model_args") or {})
    try:
        return build_model(config["model"], info["in_channels"], info["num_classes"], **kwargs)
    except TypeError as error:
        raise UserError(f"--model-arg: {error}") from None
    except ValueError as error:
        raise UserError(str(error)) from None


def _make_optimizer(config, params):
    name = config["optimizer"]
    if name == "adam":
        return optim.Adam(params, lr=config["lr"], weight_decay=config["weight_decay"])
    if name == "adamw":
        return optim.AdamW(params, lr=config["lr"], weight_decay=config["weight_decay"] or 1e-2)
    if name == "sgd":
        return optim.SGD(params, lr=config["lr"], momentum=config["momentum"],
                         weight_decay=config["weight_decay"])
    raise UserError(f"--optimizer must be adam, adamw or sgd, got {name!r}")


def _make_schedule(config, optimizer, steps_per_epoch):
    total = max(1, config["epochs"] * steps_per_epoch)
    name = config["schedule"]
    if name == "poly":
        return optim.PolyLR(optimizer, total_iters=total, power=0.9)
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=total)
    if name == "step":
        return optim.StepLR(optimizer, step_size=max(1, total // 3), gamma=0.1)
    if name == "none":
        return None
    raise UserError(f"--schedule must be poly, cosine, step or none, got {name!r}")


# ---- files --------------------------------------------------------------------
def _write_json(obj, path):
    """JSON written atomically (temporary file, then rename), like the checkpoints."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _save_checkpoint(path, model, meta, optimizer=None, schedule=None):
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        state.update({f"optimizer.{k}": v for k, v in optimizer.state_dict().items()})
    if schedule is not None:
        state.update({f"schedule.{k}": v for k, v in schedule.state_dict().items()})
    state["meta"] = np.array(json.dumps(meta))
    io.save(state, path)


def _checkpoint_path(path):
    """A run directory means its best.npz (else checkpoint.npz); a file means itself."""
    if os.path.isdir(path):
        for name in ("best.npz", "checkpoint.npz"):
            candidate = os.path.join(path, name)
            if os.path.exists(candidate):
                return candidate
        raise UserError(f"{path!r} holds no best.npz or checkpoint.npz")
    if not os.path.exists(path):
        raise UserError(f"checkpoint {path!r} does not exist")
    return path


def load_checkpoint(path):
    """``(model, meta, state)`` from a checkpoint file or a run directory. The model
    is rebuilt from the configuration stored inside and its weights loaded."""
    path = _checkpoint_path(os.fspath(path))
    try:
        state = io.load(path)
    except ValueError as error:
        raise UserError(str(error)) from None
    if "meta" not in state:
        raise UserError(f"{path!r} is an .npz file but not a minisegnet training checkpoint (no 'meta' entry)")
    meta = json.loads(str(state["meta"]))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path!r} has checkpoint format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    model = build_model_from(meta["config"], meta["info"])
    model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
    model.eval()
    return model, meta, state


# ---- evaluation -------------------------------------------------------------------
def evaluate(model, loader, num_classes, geometry, size):
    """Mean cross-entropy and the FCN scores over a whole loader (one summed confusion matrix)."""
    model.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    loss_sum, pixels = 0.0, 0
    with no_grad():
        for images, masks in loader:
            logits = _forward(model, images, geometry, size)
            target = backend.asarray(masks)
            loss_sum += cross_entropy(logits, Tensor(target), reduction="sum").item()
            pixels += masks.size
            cm += backend.to_numpy(metrics.confusion_matrix(logits.data.argmax(1), target, num_classes))
    model.train()
    return dict(val_loss=loss_sum / pixels, **metrics.scores(cm)), cm


def _plain(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


# ---- the run ----------------------------------------------------------------------
def _choose_out(config):
    base = os.path.join("runs", f"{config['model']}_{os.path.basename(os.path.normpath(config['data']))}"
                                f"_seed{config['seed']}")
    out, n = base, 1
    while os.path.exists(out):
        n += 1
        out = f"{base}_{n}"
    return out


def _describe(config, model, info, n_train, n_val):
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    extra = dict(MODEL_DEFAULTS.get(config["model"], {}), **(config.get("model_args") or {}))
    options = ", ".join(f"{k}={v}" for k, v in extra.items())
    return (f"{config['model']}({options}) with {n_params / 1e6:.2f} M parameters on "
            f"{config['data']} {config['size']}x{config['size']} ({info['num_classes']} classes): "
            f"{n_train} training / {n_val} held-out images, {config['epochs']} epochs of batch "
            f"{config['batch_size']}, {config['optimizer']} lr {config['lr']:g} ({config['schedule']}), "
            f"seed {config['seed']}, backend {config['backend']}")


def run(config, out=None, resume=False, progress=True, log=print):
    """Train according to ``config`` (keys of ``DEFAULTS`` plus ``model_args``), writing into ``out``.

    Returns the run directory. ``resume=True`` continues ``out``'s checkpoint.npz
    up to ``config["epochs"]`` (the stored configuration is used otherwise).
    Raises ``UserError`` for bad input and ``TrainingDiverged`` for a NaN/inf loss.
    """
    from tqdm import tqdm

    meta = None
    if resume:
        if out is None:
            raise UserError("--resume needs --out DIR naming the run to continue")
        ckpt = os.path.join(out, "checkpoint.npz")
        if not os.path.exists(ckpt):
            raise UserError(f"--resume: {ckpt!r} does not exist")
        try:
            state = io.load(ckpt)
        except ValueError as error:
            raise UserError(str(error)) from None
        meta = json.loads(str(state["meta"]))
        saved = meta["config"]
        config = dict(saved, epochs=config.get("epochs", saved["epochs"]),
                      backend=config.get("backend", saved["backend"]))
    config = dict(DEFAULTS, **config)
    out = out or _choose_out(config)

    try:
        backend.set_backend(config["backend"])
    except (ValueError, RuntimeError) as error:
        raise UserError(str(error)) from None
    for key in ("epochs", "batch_size", "size", "num_train", "num_val"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise UserError(f"--{key.replace('_', '-')} must be a positive integer, got {config[key]!r}")
    if not (config["lr"] > 0 and math.isfinite(config["lr"])):
        raise UserError(f"--lr must be a positive number, got {config['lr']!r}")
    for key in ("weight_decay", "momentum"):
        if not (config[key] >= 0 and math.isfinite(config[key])):
            raise UserError(f"--{key.replace('_', '-')} must be a non-negative number, got {config[key]!r}")
    try:
        manual_seed(config["seed"])
    except ValueError as error:
        raise UserError(f"--seed: {error}") from None

    train_ds, val_ds, info = build_datasets(config)
    model = build_model_from(config, info)
    size = config["size"]
    geometry = _check_model_fits(model, size, info["in_channels"])
    if config["data"] in TOY_DATASETS:
        train_ds, val_ds = _InMemory(train_ds), _InMemory(val_ds)
        augment = [data_module.RandomFlip(horizontal=True, vertical=True), data_module.RandomRot90()]
        val_transform = None
    else:
        augment = [data_module.RandomCrop(size), data_module.RandomFlip(horizontal=True)]
        val_transform = data_module.CenterCrop(size)
    if config["augment"]:
        transform = data_module.Compose(*augment)
    else:   # folder images still need cropping to one size; toy images need nothing
        transform = None if config["data"] in TOY_DATASETS else augment[0]
    loader = data_module.DataLoader(train_ds, config["batch_size"], shuffle=True, seed=config["seed"],
                                    drop_last=len(train_ds) >= config["batch_size"], transform=transform)
    val_loader = data_module.DataLoader(val_ds, config["batch_size"], transform=val_transform)
    optimizer = _make_optimizer(config, model.parameters())
    schedule = _make_schedule(config, optimizer, len(loader))

    history, start_epoch, best = [], 0, None
    if meta is not None:
        model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
        optimizer.load_state_dict({k[len("optimizer."):]: v for k, v in state.items()
                                   if k.startswith("optimizer.")})
        if schedule is not None and "schedule.last_epoch" in state:
            schedule.load_state_dict({k[len("schedule."):]: v for k, v in state.items()
                                      if k.startswith("schedule.")})
        history, start_epoch, best = meta["history"], meta["epoch"], meta.get("best")
        generator().bit_generator.state = meta["rng_state"]
        loader.set_epoch(start_epoch)
        if start_epoch >= config["epochs"]:
            log(f"{out}: already trained for {start_epoch} epochs; pass a larger --epochs to continue")
            return out

    os.makedirs(out, exist_ok=True)
    config_record = dict(config, out=out)
    _write_json({"config": config_record, "info": info}, os.path.join(out, "config.json"))
    log(("Resuming " if resume else "Training ") + _describe(config, model, info, len(train_ds), len(val_ds)))
    log(f"Writing {out}/")

    num_classes = info["num_classes"]
    checkpoint = os.path.join(out, "checkpoint.npz")
    started = time.perf_counter()
    try:
        for epoch in range(start_epoch, config["epochs"]):
            model.train()
            t0 = time.perf_counter()
            cm = np.zeros((num_classes, num_classes), dtype=np.int64)
            loss_sum, steps = 0.0, 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config['epochs']}", unit="batch",
                       disable=not progress, leave=True, file=sys.stderr, dynamic_ncols=True)
            for images, masks in bar:
                logits = _forward(model, images, geometry, size)
                target = backend.asarray(masks)
                loss = cross_entropy(logits, Tensor(target))
                value = loss.item()
                if not math.isfinite(value):
                    kept = (f"the last good checkpoint {checkpoint} (epoch {epoch}) is kept"
                            if epoch > 0 else "no checkpoint had been written yet")
                    raise TrainingDiverged(
                        f"training stopped: the loss became {value} at epoch {epoch + 1}, step {steps + 1}; "
                        f"{kept}. Try a smaller --lr (this run used {config['lr']:g}).")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                loss_sum += value
                steps += 1
                cm += backend.to_numpy(metrics.confusion_matrix(logits.data.argmax(1), target, num_classes))
                bar.set_postfix(loss=f"{loss_sum / steps:.4f}", mIU=f"{metrics.mean_iou(cm):.3f}")
            bar.close()
            scores, _ = evaluate(model, val_loader, num_classes, geometry, size)
            record = dict(epoch=epoch + 1, train_loss=loss_sum / steps,
                          train_mean_iou=_plain(metrics.mean_iou(cm)),
                          **{k: _plain(v) for k, v in scores.items()},
                          lr=optimizer.lr, seconds=round(time.perf_counter() - t0, 2))
            history.append(record)
            is_best = best is None or (record["mean_iou"] or 0) > best["mean_iou"]
            if is_best:
                best = dict(epoch=record["epoch"], mean_iou=record["mean_iou"] or 0.0)
            meta = dict(format=CHECKPOINT_FORMAT, epoch=epoch + 1, history=history, best=best,
                        config=config_record, info=info, rng_state=generator().bit_generator.state)
            _save_checkpoint(checkpoint, model, meta, optimizer, schedule)
            if is_best:
                _save_checkpoint(os.path.join(out, "best.npz"), model, meta)
            _write_json({"best": best, "epochs": history}, os.path.join(out, "metrics.json"))
            log(f"epoch {epoch + 1}/{config['epochs']}: train loss {record['train_loss']:.4f}, held-out "
                f"loss {record['val_loss']:.4f}, pixel acc {record['pixel_acc']:.3f}, mean acc "
                f"{record['mean_acc']:.3f}, mean IU {record['mean_iou']:.3f}, f.w. IU {record['fw_iou']:.3f}"
                + ("  (best)" if is_best else ""))
    except KeyboardInterrupt:
        log(f"\ninterrupted; {checkpoint} holds the last finished epoch. Continue with: "
            f"minisegnet train --resume --out {out} --epochs {config['epochs']}")
        raise
    finally:
        if history:
            _figures(out, model, history, val_ds, info, geometry, size)

    log(f"done in {time.perf_counter() - started:.0f} s: best held-out mean IU {best['mean_iou']:.3f} "
        f"(epoch {best['epoch']}); files in {out}/")
    return out


def _figures(out, model, history, val_ds, info, geometry, size, n=4):
    from . import viz

    viz.plot_curves(history, os.path.join(out, "curves.png"))
    items = [val_ds[i] for i in range(min(n, len(val_ds)))]
    if any(im.shape[1:] != (size, size) for im, _ in items):
        items = [data_module.CenterCrop(size)(im, m) for im, m in items]
    images = np.stack([im for im, _ in items])
    masks = np.stack([m for _, m in items])
    with no_grad():
        model.eval()
        preds = backend.to_numpy(_forward(model, images, geometry, size).data.argmax(1))
        model.train()
    viz.plot_predictions(images, np.where(masks == 255, 0, masks), preds, np.asarray(info["palette"], np.uint8),
                         os.path.join(out, "predictions.png"), class_names=info["class_names"])


def evaluate_checkpoint(path, batch_size=None, log=print):
    """Re-score a checkpoint (or a run directory's best.npz) on its held-out split.
    Returns ``(scores, recorded)``: fresh scores and the ones saved for that epoch."""
    model, meta, _ = load_checkpoint(path)
    config, info = meta["config"], meta["info"]
    try:
        backend.set_backend(config["backend"])
    except (ValueError, RuntimeError):
        backend.set_backend("numpy")
    if backend.get_backend() != "numpy":
        model = load_checkpoint(path)[0]     # rebuild on the chosen backend
    _, val_ds, _ = build_datasets(config)
    size = config["size"]
    transform = None if config["data"] in TOY_DATASETS else data_module.CenterCrop(size)
    loader = data_module.DataLoader(val_ds, batch_size or config["batch_size"], transform=transform)
    geometry = geometry_for(model, size)
    scores, cm = evaluate(model, loader, info["num_classes"], geometry, size)
    recorded = next((h for h in meta["history"] if h["epoch"] == meta["epoch"]), {})
    log(f"{_checkpoint_path(os.fspath(path))}: epoch {meta['epoch']} of {config['model']} on {config['data']}, "
        f"{len(val_ds)} held-out images")
    log(f"{'score':<16}{'now':>10}{'recorded':>10}")
    for key, label in (("val_loss", "loss"), ("pixel_acc", "pixel acc"), ("mean_acc", "mean acc"),
                       ("mean_iou", "mean IU"), ("fw_iou", "f.w. IU")):
        rec = recorded.get(key)
        log(f"{label:<16}{scores[key]:>10.4f}{'' if rec is None else format(rec, '>10.4f')}")
    iou = metrics.iou_per_class(cm)
    log("IU per class: " + ", ".join(f"{name} {v:.3f}" for name, v in zip(info["class_names"], iou)))
    return scores, recorded


# ---- prediction on images of any size ---------------------------------------------
def predict_image(model, image, multiple=32):
    """Class map ``(H, W)`` for one ``(C, H, W)`` image of any size.

    Same-padding models: mirror-pad to a multiple of ``multiple`` (every
    model's poolings then halve exactly), predict once, crop back.
    Valid-padding U-Net: the paper's overlap-tile strategy. The image is
    mirrored outwards by the U-Net's margin; output tiles of a valid size
    cover it, each computed from its larger input tile, so every pixel is
    predicted with full context and the seams match.
    """
    c, h, w = image.shape
    with no_grad():
        if _is_valid_unet(model):
            tile_in, tile_out = _valid_unet_input(model, 64)
            margin = (tile_in - tile_out) // 2
            ny, nx = -(-h // tile_out), -(-w // tile_out)
            padded = np.pad(image, ((0, 0), (margin, margin + ny * tile_out - h),
                                    (margin, margin + nx * tile_out - w)), mode="reflect")
            pred = np.zeros((ny * tile_out, nx * tile_out), dtype=np.int64)
            for ty in range(ny):
                for tx in range(nx):
                    y0, x0 = ty * tile_out, tx * tile_out
                    tile = padded[None, :, y0:y0 + tile_in, x0:x0 + tile_in]
                    logits = model(Tensor(backend.asarray(np.ascontiguousarray(tile))))
                    pred[y0:y0 + tile_out, x0:x0 + tile_out] = backend.to_numpy(logits.data.argmax(1))[0]
            return pred[:h, :w]
        ph, pw = -h % multiple, -w % multiple
        padded = np.pad(image, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), mode="reflect")
        logits = model(Tensor(backend.asarray(padded[None])))
        pred = backend.to_numpy(logits.data.argmax(1))[0]
        return pred[ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]


def _read_image(path, in_channels):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            array = np.asarray(im.convert("RGB" if in_channels == 3 else "L"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise UserError(f"image {path!r} does not exist") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"cannot read image {path!r}: {error}") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def predict_images(checkpoint, image_paths, out, log=print):
    """Write ``NAME_overlay.png`` (class colours over the image) and ``NAME_mask.png``
    (an index PNG, usable as a FolderDataset mask) for each image. Returns the paths."""
    from PIL import Image

    from . import viz

    model, meta, _ = load_checkpoint(checkpoint)
    info = meta["info"]
    palette = np.asarray(info["palette"], dtype=np.uint8)
    background = 0 if info["class_names"][0] == "background" else None
    os.makedirs(out, exist_ok=True)
    written = []
    for path in image_paths:
        image = _read_image(path, info["in_channels"])
        pred = predict_image(model, image)
        stem = os.path.splitext(os.path.basename(path))[0]
        overlay_path = os.path.join(out, f"{stem}_overlay.png")
        viz.save_overlay(image, pred, palette, overlay_path, alpha=0.5, background=background)
        mask_path = os.path.join(out, f"{stem}_mask.png")
        mask_image = Image.fromarray(pred.astype(np.uint8), mode="P")
        mask_image.putpalette(palette.reshape(-1).tolist())
        mask_image.save(mask_path)
        counts = np.bincount(pred.reshape(-1), minlength=len(palette)) / pred.size
        log(f"{path}: {image.shape[2]}x{image.shape[1]} -> {overlay_path}, {mask_path}  ("
            + ", ".join(f"{n} {100 * f:.0f}%" for n, f in zip(info["class_names"], counts) if f > 0) + ")")
        written += [overlay_path, mask_path]
    return written
