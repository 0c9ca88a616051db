"""Model geometry: how an ``S x S`` training image meets the model, and its output the labels.

A same-padding model maps ``S x S`` to ``S x S``: nothing to do. A
valid-padding U-Net shrinks its input (572 -> 388 at depth 4), so the trainer
mirror-pads each image to the smallest valid input whose output covers it, and
crops the ``S x S`` window of the labels' pixels out of the output
(``geometry_for`` says where; ``train._forward`` applies it). ``check_model_fits``
runs one tiny forward pass first, so a size the model cannot take fails at
once, with the option named. ``predict`` uses the same pieces to tile an image.
"""
import numpy as np

from . import backend, checks, shapes
from .autograd import Tensor, no_grad
from .run_config import UserError

__all__ = ["Geometry", "geometry_for", "check_model_fits", "check_unet_size", "is_valid_unet", "valid_unet_input",
           "crop_outputs"]


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


def is_valid_unet(model):
    return type(model).__name__ == "UNet" and getattr(model, "padding", None) == "valid"


def valid_unet_input(model, size):
    """The smallest valid input of a valid-padding U-Net whose output is at least ``size``."""
    for i in shapes.unet_valid_input_sizes(size, size + 64 * 2 ** model.depth + 400, depth=model.depth):
        out = shapes.unet_output_size(i, depth=model.depth)
        if out >= size:
            return i, out
    raise UserError(f"no valid U-Net input found for size {size}")  # pragma: no cover - unreachable


def geometry_for(model, size):
    """The ``Geometry`` for training/evaluating ``model`` on ``size x size`` images."""
    if is_valid_unet(model):
        i, out = valid_unet_input(model, size)
        margin = (i - out) // 2                 # the U-Net's output starts `margin` pixels in
        before = (i - size) // 2
        after = i - size - before
        offset = before - margin                # the image's first row, in output rows
        return Geometry((before, after, before, after), (offset, offset))
    return Geometry()


def _output_tensors(outputs):
    """The Tensors of a model's outputs (a Tensor, or a dict of Tensors)."""
    return list(outputs.values()) if isinstance(outputs, dict) else [outputs]


def crop_outputs(outputs, top, left, height, width):
    """Each output cut to the ``height x width`` window at ``(top, left)`` (a no-op when it fits)."""
    if isinstance(outputs, dict):
        return {key: crop_outputs(value, top, left, height, width) for key, value in outputs.items()}
    if outputs.shape[2:] == (height, width):
        return outputs
    return outputs[:, :, top:top + height, left:left + width]


def check_unet_size(model_name, args, size):
    """A same-padding U-Net's depth against ``--size``, from the shape formula, before the model
    is built (``args``: its constructor's options; a deep U-Net's weights take long to make, and
    ``check_model_fits`` needs them). A valid-padding U-Net takes any size (its input is
    mirror-padded to a valid one); values the constructor refuses are left to it."""
    if model_name != "unet":
        return
    depth, padding = args.get("depth", 4), args.get("padding", "valid")
    if padding != "same" or not (checks.is_int(depth) and 1 <= depth <= shapes.MAX_UNET_DEPTH):
        return
    try:
        shapes.unet_output_size(size, depth, padding)
    except ValueError as error:
        raise UserError(f"--size {size} does not fit this model: {error}") from None


def check_model_fits(model, size, in_channels):
    """Run one tiny forward pass so a size the model cannot take fails now, clearly."""
    geometry = geometry_for(model, size)
    t, b, l, r = geometry.pad
    shape = (1, in_channels, size + t + b, size + l + r)
    try:
        checks.check_bytes(shape, 4, "train", f"--size {size}")
    except checks.TooLargeError as error:
        raise UserError(str(error)) from None
    x = Tensor(backend.asarray(np.zeros(shape, np.float32)))
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            outputs = model(x)
    except (ValueError, MemoryError) as error:       # TooLargeError is both
        raise UserError(f"--size {size} does not fit this model: {error}") from None
    finally:
        model.train(was_training)
    top, left = geometry.crop
    for out in _output_tensors(outputs):
        oh, ow = out.shape[2:]
        if top < 0 or left < 0 or oh < top + size or ow < left + size:
            raise UserError(f"the model's output {oh}x{ow} does not cover a {size}x{size} image")
    return geometry
