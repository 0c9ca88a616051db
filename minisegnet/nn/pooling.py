"""Pooling, unpooling and upsampling layers: thin wrappers around ``functional``.

None of them has parameters or buffers; they hold their settings under
PyTorch's attribute names, so a model's ``repr`` and code read like PyTorch's.
Each checks its settings when it is made, with the functional form's own
checks (the same rules and messages, named after the layer): a bad kernel size
fails where the model is built, not at its first batch. PyTorch checks most of
them only at the first call.
"""
from .. import functional as F
from ..functional.pooling import _adaptive_output_size, _avg_pool_args, _max_pool_args, _unpool_args
from ..functional.resize import _check_settings as _check_interpolate_settings
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "MaxUnpool2d", "Upsample"]


class MaxPool2d(Module):
    """``F.max_pool2d`` as a layer. With ``return_indices=True`` the call returns
    ``(output, indices)``, to be fed to a ``MaxUnpool2d`` (SegNet)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        _max_pool_args(type(self).__name__, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """``F.avg_pool2d`` as a layer."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        _avg_pool_args(type(self).__name__, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """``F.adaptive_avg_pool2d`` as a layer; ``AdaptiveAvgPool2d(1)`` is global average pooling."""

    def __init__(self, output_size):
        _adaptive_output_size(type(self).__name__, output_size)
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class MaxUnpool2d(Module):
    """``F.max_unpool2d`` as a layer: ``unpool(x, indices, output_size=None)``.

    Pass the pre-pooling size as ``output_size`` when it was odd (SegNet on
    odd inputs): the default size ``(h - 1)s - 2p + k`` restores only even sizes.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size, self.stride, self.padding = _unpool_args(type(self).__name__, kernel_size, stride, padding)

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Upsample(Module):
    """``F.interpolate`` as a layer (FCN/U-Net/DeepLab decoders): give ``size`` or ``scale_factor``."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        _check_interpolate_settings(type(self).__name__, size, scale_factor, mode, align_corners,
                                    recompute_scale_factor)
        self.size = size
        if scale_factor is not None:            # kept as floats, as PyTorch keeps them
            scale_factor = tuple(float(f) for f in scale_factor) if isinstance(scale_factor, (tuple, list)) \
                else float(scale_factor)
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
