"""``BatchNorm2d``: batch normalization as a layer with running statistics.

The arithmetic is ``functional.batch_norm``; this module owns the state:
the learnable ``weight`` (gamma, ones) and ``bias`` (beta, zeros), and the
buffers ``running_mean`` (zeros), ``running_var`` (ones) and
``num_batches_tracked`` that are saved in the state dict under PyTorch's keys.
"""
import numpy as np

from .. import checks
from ..autograd import Tensor
from ..functional.normalization import _batch_norm
from .module import Module, Parameter

__all__ = ["BatchNorm2d"]


class BatchNorm2d(Module):
    """Normalise each channel of an (N, C, H, W) input, like ``torch.nn.BatchNorm2d``.

    In ``train()`` mode the batch's own statistics are used and the running
    statistics move towards them by ``momentum`` (``momentum=None`` gives the
    cumulative average over all batches seen, using ``num_batches_tracked``).
    In ``eval()`` mode the running statistics are used, so the output of one
    image no longer depends on the rest of the batch. With
    ``track_running_stats=False`` there are no buffers and batch statistics are
    used in both modes. With ``affine=False`` there is no weight and bias;
    with ``bias=False`` (keyword-only, PyTorch 2.13's) a weight but no bias.
    ``momentum`` lies in [0, 1] (or None) and ``eps`` >= 0: PyTorch takes any
    number there. ``dtype`` (keyword-only) is the parameters' and buffers' dtype.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, dtype=None,
                 bias=True):
        op = type(self).__name__                # F.batch_norm's rules for eps and momentum, checked here
        dtype = checks.weight_dtype(dtype, op)  # keyword-only, as Conv2d's: no device argument before it
        self.num_features = checks.integer(num_features, "num_features", op, minimum=1)
        self.eps = checks.real(eps, "eps", op, minimum=0)
        self.momentum = None if momentum is None else checks.real(momentum, "momentum", op, minimum=0, maximum=1)
        self.affine = checks.flag(affine, "affine", op)
        self.has_bias = checks.flag(bias, "bias", op)
        self.track_running_stats = checks.flag(track_running_stats, "track_running_stats", op)
        c = self.num_features
        # parameters' places, empty (None) without affine or bias, as PyTorch's
        self.register_parameter("weight", Parameter(np.ones(c, dtype=dtype)) if self.affine else None)
        self.register_parameter("bias", Parameter(np.zeros(c, dtype=dtype)) if self.affine and self.has_bias else None)
        if self.track_running_stats:
            self.running_mean = Tensor(np.zeros(c, dtype=dtype))
            self.running_var = Tensor(np.ones(c, dtype=dtype))
            self.num_batches_tracked = Tensor(np.zeros((), dtype=np.int64))
            self._buffers = ("running_mean", "running_var", "num_batches_tracked")
            # a state without it (older PyTorch checkpoints) loads, keeping the count, as in PyTorch
            self._optional_buffers = ("num_batches_tracked",)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
            self._buffers = ()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def check_input(self, x):
        """The input's shape must be (N, num_features, H, W); ``summary`` checks it here too."""
        if x.ndim != 4:
            raise ValueError(f"BatchNorm2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) got input with {x.shape[1]} channels "
                             f"(shape {x.shape})")

    def forward(self, input):
        self.check_input(input)
        factor = 0.0 if self.momentum is None else float(self.momentum)
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:       # cumulative moving average: weight 1/k for batch k,
                factor = 1.0 / self.num_batches_tracked.data    # on the device (no read back)
        use_batch_stats = self.training or not self.track_running_stats
        return _batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                           use_batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")
