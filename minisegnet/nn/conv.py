"""Convolution layers: ``Conv2d``, ``ConvTranspose2d`` and ``DepthwiseSeparableConv2d``.

Each holds a ``weight`` (and optionally a ``bias``) Parameter and calls
``functional.conv2d`` / ``conv_transpose2d``. Arguments, attribute names,
weight layouts and state-dict keys are PyTorch's:

* ``Conv2d.weight``: (out_channels, in_channels/groups, kh, kw)
* ``ConvTranspose2d.weight``: (in_channels, out_channels/groups, kh, kw)

Default initialisation is PyTorch's: Kaiming-uniform with ``a = sqrt(5)``
(``nn.init.kaiming_uniform_array``; torch's ``kaiming_uniform_`` defaults to
``a = 0``), i.e. ``weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with
``fan_in = weight.shape[1] * kh * kw``, and the bias from the same bound.
(For ConvTranspose2d that ``fan_in`` is ``out_channels/groups * kh * kw``,
because PyTorch reads it from the weight's second axis.)
"""
import numpy as np

from .. import functional as F
from .. import checks, shapes
from . import init
from .module import Module, Parameter

__all__ = ["Conv2d", "ConvTranspose2d", "DepthwiseSeparableConv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate")


def _check_channels(in_channels, out_channels, groups, op):
    """The channel counts and groups: ints (a TypeError otherwise, as in PyTorch) >= 1, the
    channels divisible by the groups; ``op``, the layer, starts the messages."""
    in_channels = checks.integer(in_channels, "in_channels", op, minimum=1)
    out_channels = checks.integer(out_channels, "out_channels", op, minimum=1)
    groups = checks.integer(groups, "groups", op, minimum=1)
    if in_channels % groups:
        raise ValueError(f"{op}: in_channels={in_channels} must be divisible by groups={groups}")
    if out_channels % groups:
        raise ValueError(f"{op}: out_channels={out_channels} must be divisible by groups={groups}")
    return in_channels, out_channels, groups


def _conv2d_settings(op, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode):
    """Conv2d's arguments checked and normalised (sizes as (h, w) pairs), errors named ``op``:
    ``(in_channels, out_channels, groups, kernel_size, stride, padding, dilation)``."""
    channels = _check_channels(in_channels, out_channels, groups, op)
    with checks.naming(op):
        k = shapes.as_pair(kernel_size, "kernel_size", 1)
        s = shapes.as_pair(stride, "stride", 1)
        d = shapes.as_pair(dilation, "dilation", 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
            if padding == "same" and s != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride={stride!r}")
            p = padding
        else:
            p = shapes.as_pair(padding, "padding", 0)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    return channels + (k, s, p, d)


def _init_parameters(module, weight_shape, bias, dtype):
    """PyTorch's reset_parameters for conv layers: Kaiming-uniform(a=sqrt(5)) weight,
    then a bias of ``out_channels`` from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    name = type(module).__name__
    checks.flag(bias, "bias", name)
    dtype = checks.weight_dtype(dtype, name)
    checks.check_bytes(weight_shape, np.dtype(dtype).itemsize, name,
                       f"in_channels={module.in_channels}, out_channels={module.out_channels}, "
                       f"kernel_size={weight_shape[2:]}")
    module.weight = Parameter(init.kaiming_uniform_array(weight_shape, dtype=dtype))
    if bias:
        fan_in, _ = init.fan_in_and_fan_out(weight_shape)
        bound = init.default_conv_bound(fan_in)
        module.bias = Parameter(init.uniform_array((module.out_channels,), bound, dtype=dtype))
    else:
        module.register_parameter("bias", None)         # a parameter's place, empty (as PyTorch's)


class Conv2d(Module):
    """2-D convolution layer, as ``torch.nn.Conv2d``.

    ``Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
    dilation=1, groups=1, bias=True, padding_mode="zeros", *, dtype=None)``.
    There is no ``device`` argument (the backend, ``msn.set_backend``, decides
    where the weights live), so ``dtype`` is keyword-only: a tenth positional
    argument would be torch's ``device``.

    ``padding``: an int, an (h, w) pair, ``"valid"`` or ``"same"`` (stride 1
    only). ``padding_mode``: ``"zeros"``, ``"reflect"`` (mirror the border
    without repeating the edge pixel: U-Net's mirroring of image borders) or
    ``"replicate"``; the non-zero modes pad with ``F.pad`` and then run an
    unpadded conv, as PyTorch does. PyTorch's ``"circular"`` (wrap around) is
    not implemented (``F.pad`` has no circular mode) and is refused. Input (N, in_channels, H, W) -> output
    (N, out_channels, H_out, W_out) with ``shapes.conv2d_output_size``.

    Parameters: ``out_channels * in_channels/groups * kh * kw`` weights plus
    ``out_channels`` biases.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", *, dtype=None):
        (self.in_channels, self.out_channels, self.groups, self.kernel_size, self.stride, self.padding,
         self.dilation) = _conv2d_settings(type(self).__name__, in_channels, out_channels, kernel_size, stride,
                                           padding, dilation, groups, padding_mode)
        self.padding_mode = padding_mode
        _init_parameters(self, (self.out_channels, self.in_channels // self.groups) + self.kernel_size,
                         bias, dtype)

    def _explicit_padding(self):
        """(left, right, top, bottom) for F.pad: 'same' puts the odd pixel at the right/bottom."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            (dh, dw), (kh, kw) = self.dilation, self.kernel_size
            th, tw = dh * (kh - 1), dw * (kw - 1)
            return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        ph, pw = self.padding
        return (pw, pw, ph, ph)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        input = F.pad(input, self._explicit_padding(), mode=self.padding_mode)
        return F.conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self):
        extra = f", padding_mode={self.padding_mode}" if self.padding_mode != "zeros" else ""
        return _conv_repr(self) + extra


class ConvTranspose2d(Module):
    """2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d``.

    ``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, output_padding=0, groups=1, bias=True, dilation=1,
    padding_mode="zeros", *, dtype=None)``; only ``"zeros"`` padding, as in
    PyTorch. No ``device`` argument (the backend decides), so ``dtype`` is
    keyword-only, as in ``Conv2d``. Input (N, in_channels, H, W) -> (N, out_channels, H_out, W_out)
    with ``shapes.conv_transpose2d_output_size``.

    ``forward(x, output_size=None)``: a strided conv maps several input sizes
    to one output size, so its transpose can produce any of them.
    ``output_size`` ((H, W), or (N, C, H, W) as PyTorch also accepts) picks
    one: the ``output_padding`` is derived from it
    (``shapes.conv_transpose2d_output_padding``) and replaces the
    constructor's; a size outside the reachable range is a ValueError that
    states the range. U-Net's up-convolutions use this to land exactly on
    the size of the skip connection.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", *, dtype=None):
        op = type(self).__name__
        self.in_channels, self.out_channels, self.groups = _check_channels(in_channels, out_channels, groups, op)
        with checks.naming(op):
            self.kernel_size = shapes.as_pair(kernel_size, "kernel_size", 1)
            self.stride = shapes.as_pair(stride, "stride", 1)
            self.padding = shapes.as_pair(padding, "padding", 0)
            self.dilation = shapes.as_pair(dilation, "dilation", 1)
            self.output_padding = shapes.as_pair(output_padding, "output_padding", 0)
        for a in (0, 1):
            if self.output_padding[a] >= max(self.stride[a], self.dilation[a]):
                raise ValueError(f"{op}: output_padding={output_padding!r} must be smaller than max(stride, "
                                 f"dilation) = {max(self.stride[a], self.dilation[a])}")
        if padding_mode != "zeros":
            raise ValueError(f"{op}: only padding_mode='zeros' is supported (as in PyTorch), got {padding_mode!r}")
        self.padding_mode = padding_mode
        _init_parameters(self, (self.in_channels, self.out_channels // self.groups) + self.kernel_size,
                         bias, dtype)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:
            op = type(self).__name__
            if not isinstance(output_size, (tuple, list)):
                raise TypeError(f"{op}: output_size must be (H, W) or (N, C, H, W), got {checks.describe(output_size)}")
            if len(output_size) not in (2, 4):          # PyTorch's rule: 2 or 4 elements
                raise ValueError(f"{op}: output_size must have 2 elements (H, W) or 4 (N, C, H, W), got "
                                 f"{output_size!r}")
            if len(input.shape) != 4:
                raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {tuple(input.shape)}")
            try:
                output_padding = shapes.conv_transpose2d_output_padding(
                    tuple(input.shape[2:]), tuple(output_size[-2:]), self.kernel_size, self.stride, self.padding,
                    self.dilation)
            except (TypeError, ValueError) as error:      # the formula calls it target: the caller's name
                raise type(error)(f"{op}: " + str(error).replace("target", "output_size", 1)) from None
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self):
        extra = f", output_padding={self.output_padding}" if self.output_padding != (0, 0) else ""
        return _conv_repr(self, after_dilation=extra)


class DepthwiseSeparableConv2d(Module):
    """A depthwise k x k conv (one filter per input channel, ``groups = in_channels``)
    followed by a pointwise 1x1 conv that mixes channels (MobileNet, Xception,
    DeepLabv3+'s decoder).

    ``DepthwiseSeparableConv2d(in_channels, out_channels, kernel_size=3,
    stride=1, padding=1, dilation=1, bias=True, padding_mode="zeros")``.
    Sub-modules ``depthwise`` and ``pointwise`` (state-dict keys
    ``depthwise.weight``, ``pointwise.weight``, ...). Not a PyTorch class:
    it equals ``nn.Sequential(Conv2d(C_in, C_in, k, groups=C_in), Conv2d(C_in, C_out, 1))``.

    Parameter count with bias: ``C_in*k*k + C_in`` (depthwise) plus
    ``C_in*C_out + C_out`` (pointwise), against ``C_in*C_out*k*k + C_out`` for
    a full conv: for 3x3 and 64 -> 64, 4,800 instead of 36,928 (7.7x fewer).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, dilation=1, bias=True,
                 padding_mode="zeros"):
        op = type(self).__name__                 # the two convs' arguments checked under this layer's name
        _conv2d_settings(op, in_channels, in_channels, kernel_size, stride, padding, dilation, in_channels,
                         padding_mode)
        _conv2d_settings(op, in_channels, out_channels, 1, 1, 0, 1, 1, "zeros")
        checks.flag(bias, "bias", op)
        self.depthwise = Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation,
                                groups=in_channels, bias=bias, padding_mode=padding_mode)
        self.pointwise = Conv2d(in_channels, out_channels, 1, bias=bias)
        self.in_channels, self.out_channels = self.depthwise.in_channels, self.pointwise.out_channels

    def forward(self, input):
        return self.pointwise(self.depthwise(input))


def _conv_repr(layer, after_dilation=""):
    """The ``repr`` arguments both conv layers share, PyTorch's order and spelling (strings
    unquoted), defaults left out: the same text as PyTorch's print of the layer."""
    text = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}, stride={layer.stride}"
    if layer.padding != (0, 0):
        text += f", padding={layer.padding}"
    if layer.dilation != (1, 1):
        text += f", dilation={layer.dilation}"
    text += after_dilation
    if layer.groups != 1:
        text += f", groups={layer.groups}"
    if layer.bias is None:
        text += ", bias=False"
    return text
