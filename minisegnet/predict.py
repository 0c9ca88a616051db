"""Prediction on images of any size, behind ``minisegnet predict``.

A trained model sees ``S x S`` training images; a photo is any size. Same-padding
models take the image mirror-padded to a multiple of 32 (every pooling then
halves exactly; further, for an image smaller than a DeepLab's atrous rates
need) and cropped back. A valid-padding U-Net (the paper's) outputs
less than it takes in, so the image is cut into tiles the paper's way
(overlap-tile): each output tile is computed from a larger input tile, mirrored
at the image's border, and the tiles, started on one pooling grid, are
stitched together into what one pass over the whole image would give.
"""
import os
import warnings

import numpy as np

from . import backend, checks, nn, tasks
from .autograd import Tensor, no_grad
from .data.folder import check_image_mode, conversion_note, image_array
from .model_geometry import crop_outputs, is_valid_unet, valid_unet_input
from .train import UserError, _checkpoint_path, _choose_backend, _model_from_state, _on_backend, _read
from .run_config import check_out_folder, make_out_folder

__all__ = ["image_outputs", "predict_image", "predict_images"]


def _stitch(rows):
    """One output from a grid of tile outputs (each a Tensor or a dict of Tensors)."""
    first = rows[0][0]
    if isinstance(first, dict):
        return {key: _stitch([[tile[key] for tile in row] for row in rows]) for key in first}
    xp = backend.get_array_module(first.data)
    return Tensor(xp.concatenate([xp.concatenate([tile.data for tile in row], axis=3) for row in rows], axis=2))


def image_outputs(model, image, multiple=32):
    """The model's outputs for one ``(C, H, W)`` image of any size, as ``(1, ., H, W)``.

    Same-padding models: mirror-pad to a multiple of ``multiple`` (raised to
    ``2**depth`` for a deeper U-Net or SegNet: every pooling then halves
    exactly), run once, crop back.
    Valid-padding U-Net: the paper's overlap-tile strategy. The image is
    mirrored outwards by the U-Net's margin; output tiles of a valid size
    cover it, each computed from its larger input tile, so every pixel is
    predicted with full context. For the tiles to agree with one pass over
    the whole image, each must also put its poolings on the same grid: tiles
    start a multiple of ``2**depth`` pixels apart. A valid output is 4 more
    than such a multiple (the paper's 388 = 24 * 16 + 4), so neighbours
    overlap by those few pixels, and each tile keeps the part up to the next.

    The model runs in eval mode (BatchNorm's running statistics, no dropout),
    whatever its mode, and is left in the mode it was in; nothing in it changes.
    ``image``: a NumPy array ``(C, H, W)`` of floats, C the model's input channels.
    """
    _check_image_args(model, image, multiple, "image_outputs")
    return _eval_outputs(model, image, multiple, "image_outputs")


def _eval_outputs(model, image, multiple, op):
    """``image_outputs`` for arguments already checked: in eval mode, each module's mode restored;
    ``op`` names the caller in an error."""
    c, h, w = image.shape
    modes = [(m, m.training) for m in model.modules()]    # each module's own: a frozen BatchNorm stays frozen
    model.eval()
    try:
        return _outputs(model, image, multiple, h, w)
    except ValueError as error:        # the model's size rule, stated for the padded input: name the image too
        raise ValueError(f"{op}: the {h}x{w} image, mirror-padded to a multiple of {multiple} (of 2**depth for a "
                         f"deeper U-Net or SegNet), does not fit {type(model).__name__}: {error} (the padding "
                         f"reaches the next multiple of `multiple`: pass one at least the size named there)") from None
    finally:
        for m, training in modes:
            m.training = training


def _check_image_args(model, image, multiple, op):
    """The arguments of ``image_outputs``, checked before any work (which argument, what value, which rule)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{op}: model must be a minisegnet nn.Module, got {checks.describe(model)}")
    if isinstance(image, Tensor) or not isinstance(image, np.ndarray):
        hint = " (a Tensor: pass its array, image.numpy())" if isinstance(image, Tensor) else ""
        raise TypeError(f"{op}: image must be a NumPy array (C, H, W){hint}, got {checks.describe(image)}")
    if image.ndim != 3:
        hint = "; a batch? pass one image at a time" if image.ndim == 4 else ""
        raise ValueError(f"{op}: image must be 3-D (C, H, W), got shape {image.shape}{hint}")
    if image.dtype.kind != "f":
        raise TypeError(f"{op}: image must be floating point, got dtype {image.dtype} (scale it to floats first, "
                        f"e.g. image.astype(np.float32) / 255)")
    channels = getattr(model, "in_channels", None)
    if channels is not None and image.shape[0] != channels:
        hint = ("; channels last? use image.transpose(2, 0, 1)" if image.shape[2] == channels else "")
        raise ValueError(f"{op}: image must be (C, H, W) with C = {channels}, the model's in_channels, got shape "
                         f"{image.shape}{hint}")
    checks.positive_int(multiple, "multiple", op)


def _outputs(model, image, multiple, h, w):
    with no_grad():
        if is_valid_unet(model):
            tile_in, tile_out = valid_unet_input(model, max(64, 2 ** model.depth))
            step = tile_out - tile_out % 2 ** model.depth        # the pooling grid's period
            margin = (tile_in - tile_out) // 2
            ny, nx = -(-h // step), -(-w // step)
            padded = np.pad(image, ((0, 0), (margin, margin + (ny - 1) * step + tile_out - h),
                                    (margin, margin + (nx - 1) * step + tile_out - w)), mode="reflect")
            rows = [[crop_outputs(model(Tensor(backend.asarray(np.ascontiguousarray(
                        padded[None, :, ty * step:ty * step + tile_in, tx * step:tx * step + tile_in])))),
                           0, 0, step, step)
                     for tx in range(nx)] for ty in range(ny)]
            return crop_outputs(_stitch(rows), 0, 0, h, w)
        multiple = max(multiple, 2 ** getattr(model, "depth", 0))
        height, width = _fitting_size(model, h, w, multiple)
        ph, pw = height - h, width - w
        padded = np.pad(image, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), mode="reflect")
        outputs = model(Tensor(backend.asarray(padded[None])))
        return crop_outputs(outputs, ph // 2, pw // 2, h, w)


def _fitting_size(model, h, w, multiple):
    """The size ``(H, W)`` a same-padding model is run at for an ``h x w`` image: the next multiple
    of ``multiple`` on each axis, grown by further multiples while the model's own size rule
    (``check_input_size``: a DeepLab's atrous rates need a feature map larger than themselves)
    refuses it or warns that a branch degenerates, so a small image is predicted with the model
    whole rather than refused."""
    height, width = h + -h % multiple, w + -w % multiple
    check = getattr(model, "check_input_size", None)
    if check is None:
        return height, width
    for _ in range(1024):                            # (a bound: a rate r needs about r * 16 pixels)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)
                check((height, width))
            return height, width
        except (ValueError, UserWarning):
            grow_h, grow_w = height <= width, width <= height      # the shorter axis (both if square)
            height, width = height + multiple * grow_h, width + multiple * grow_w
    return height, width                             # (the model's own error will say why)


def predict_image(model, image, task=None, multiple=32):
    """The prediction for one ``(C, H, W)`` image of any size (see ``image_outputs``: the model
    runs in eval mode and is left as it was): ``task.postprocess`` of the outputs for that
    image; without a task, the class map ``(H, W)`` (of the ``"semantic"`` logits, for a model
    whose outputs are a dict of maps, as ``PanopticDeepLab``'s: its objects need the task)."""
    _check_image_args(model, image, multiple, "predict_image")
    outputs = _eval_outputs(model, image, multiple, "predict_image")
    if task is None:
        if isinstance(outputs, dict):
            if "semantic" not in outputs:
                raise TypeError(f"predict_image: {type(model).__name__}'s outputs are the maps "
                                f"{sorted(outputs)}, none of them class logits ('semantic'); pass the task "
                                "that reads them (task=...)")
            outputs = outputs["semantic"]
        return tasks.semantic.class_map(outputs)[0]
    predictions = task.postprocess(outputs)
    return {k: v[0] for k, v in predictions.items()} if isinstance(predictions, dict) else predictions[0]


def _open_image(path, read):
    """``read(im)`` of the image at ``path``; ``(result, None)``, or ``(None, what is wrong)``:
    missing, unreadable (PIL's decompression-bomb limit included), or of a mode of unknown range."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return read(im), None
    except FileNotFoundError:
        return None, f"image {path!r} does not exist"
    except ValueError as error:                       # a mode of unknown range: the message names the image
        return None, str(error)
    except (OSError, Image.DecompressionBombError) as error:     # UnidentifiedImageError is an OSError
        return None, f"cannot read image {path!r}: {error}"


def _read_image(path, in_channels):
    """The image as ``image_array`` reads it for the model (an animated image's first frame), and
    the notes on it: ``conversion_note``'s words on how its channels were fitted to
    ``in_channels``, and the frame count of an animated image (a list, empty when neither)."""
    def read(im):
        notes = [conversion_note(im, in_channels)]
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            notes.append(f"is animated ({frames} frames): predicted its first frame")
        return image_array(im, in_channels, path), [note for note in notes if note]

    result, problem = _open_image(path, read)
    if problem:
        raise UserError(problem)
    return result


def _check_images(paths):
    """Every image exists and decodes (a file cut short too), is of a known range, is no larger
    than PIL accepts, and no two would write the same output files; all of it before any
    prediction is written."""
    problems, stems = [], {}

    def check(im, path):
        check_image_mode(im, path)
        im.load()               # decoded to the end: a file cut short is found now (PIL opens lazily)

    for path in paths:
        _, problem = _open_image(path, lambda im: check(im, path))
        if problem:
            problems.append(problem)
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            problems.append(f"images {stems[stem]!r} and {path!r} would both write {stem}_*.png into --out; "
                            "rename one, or predict them into different folders")
        stems.setdefault(stem, path)
    if problems:
        raise UserError("; ".join(problems))


def predict_images(checkpoint, image_paths, out, backend_name=None, log=print):
    """Write what the run's task predicts for each image into the folder ``out``
    (semantic: ``NAME_overlay.png``, class colours over the image, and
    ``NAME_mask.png``, an index PNG usable as a folder dataset's mask). Returns the paths.
    ``backend_name`` as for ``evaluate_checkpoint``."""
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out!r} is a file; predict writes its PNGs into a folder")
    check_out_folder(out)
    path = _checkpoint_path(os.fspath(checkpoint))
    state, meta = _read(path)
    _check_images(image_paths)
    written = []
    with _on_backend(_choose_backend(backend_name)):
        task, model = _model_from_state(state, meta, path)
        most = getattr(task, "most_classes_written", None)          # (optional: tasks/__init__.py)
        if most is not None and meta["info"]["num_classes"] > most:
            raise UserError(f"{path}: a {task.name} run with {meta['info']['num_classes']} classes; its prediction "
                            f"files hold at most {most} (see `minisegnet predict --help`)")
        make_out_folder(out)                              # once the images and the model are known to be good
        for image_path in image_paths:
            image, notes = _read_image(image_path, meta["info"]["in_channels"])
            for note in notes:
                log(f"note: {image_path} {note}")
            try:
                prediction = predict_image(model, image, task)
            except MemoryError:
                raise UserError(f"image {image_path!r} ({image.shape[1]}x{image.shape[2]} pixels) needs more memory "
                                "than this machine has; predict a smaller image, or tiles of it") from None
            stem = os.path.splitext(os.path.basename(image_path))[0]
            try:
                paths, note = task.write_prediction(image, prediction, out, stem)
            except ValueError as error:                  # a prediction its PNGs cannot hold
                done = f" (the {len(written)} files before it are written)" if written else ""
                raise UserError(f"image {image_path!r}: {error}{done}") from None
            log(f"{image_path}: {image.shape[1]}x{image.shape[2]} -> {', '.join(paths)}  ({note})")    # H x W
            written += paths
    return written
