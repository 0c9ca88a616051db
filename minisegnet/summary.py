"""``summary(model, input_size)``: every layer's output shape, parameters,
multiply-adds and receptive field, from the formulas in ``shapes``, without
running the convolutions.

How it works. While the summary runs, ``nn.Module.__call__`` hands each call
to a recorder (the one hook in ``nn/module.py``):

* a **leaf layer with a size formula** (Conv2d, ConvTranspose2d, MaxPool2d,
  AvgPool2d, AdaptiveAvgPool2d, MaxUnpool2d, Upsample) is *not* run: the
  recorder computes its output shape from ``shapes``, writes a row, and
  returns a placeholder tensor of that shape (a broadcast view of one zero,
  so it costs no memory);
* an **elementwise leaf** (ReLU, BatchNorm2d, Dropout, ...) returns its input;
* a **composite module** runs its own ``forward``, so the functional glue in
  a model (``cat``, ``center_crop``, ``+``, ``interpolate``) really runs, on
  the placeholders; only that glue costs time;
* any **other leaf** runs for real on the placeholders (correct, just slower).

The receptive-field column follows ``shapes.receptive_field`` along the data
flow: ``r_out = r_in + (k-1) d j_in``, ``j_out = j_in s``. Where branches meet
(``cat``, ``+``) the largest field and jump are taken; the recorder finds the
branches by walking the autograd graph the glue recorded (the placeholders
require grad for this). The row of a module that returns several tensors (a
tuple, such as the DeepLab backbone's ``(low_level, features)``, or a dict)
shows the largest field and jump among them, in the form of every other row.
Upsampling layers divide the jump by their factor and add the extra input
pixels one output reads (``ceil(k/s) - 1`` for a transposed conv, one for
bilinear): the usual convention. It is exact for
chains of convolutions and pools; after upsampling the outputs no longer sit on
a regular grid, and the worst-case field can be a little larger (the 572 U-Net
shows 200 here, while its output pixels see 188 or 204 input rows:
``shapes.unet_receptive_fields`` gives each pixel's exact field). Crops and
pads move the field but do not change its size, so no start offset is shown.

Multiply-adds: a conv ``C_out*H_out*W_out*(C_in/groups)*kh*kw`` per image, a
transposed conv ``C_in*H_in*W_in*(C_out/groups)*kh*kw``, times the batch;
other layers count 0 (they are a rounding error next to the convolutions).
"""
import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from . import backend, checks, nn, shapes
from .autograd import Tensor, enable_grad
from .functional import conv as _conv, indexing as _indexing, padding as _padding, pooling as _pooling, resize as _resize
from .nn import module as _module

__all__ = ["summary", "Summary", "SummaryRow"]


# The receptive field of a tensor that passed through an op this module cannot size.
_UNKNOWN = "?"


class SummaryRow(NamedTuple):
    """One module call. ``params`` and ``macs`` are 0 for containers (their
    children have the rows); ``rf``/``jump`` are None where unknown."""
    name: str            # dotted path in the model ("" for the model itself)
    layer: str           # class name
    depth: int           # call nesting: 0 for the model
    output_shape: tuple  # a tuple of shapes when the module returns several tensors, a dict
                         # name -> shape when it returns a dict of them (PanopticDeepLab)
    params: int
    macs: int
    rf: object           # receptive-field size: int, or (h, w) when the axes differ
    jump: object


class Summary:
    """What ``summary`` returns: ``rows``, totals, and ``str()`` the table."""

    def __init__(self, model, input_size, rows, model_params):
        self.model_name = type(model).__name__
        self.input_size = input_size
        self.rows = rows
        self.total_params = sum(r.params for r in rows)
        self.total_macs = sum(r.macs for r in rows)
        self.model_params = model_params   # sum(p.size for p in model.parameters())

    def __str__(self):
        return format_table(self)

    def __repr__(self):
        return str(self)


def _elementwise_layers():
    """Leaf layers that keep their input's shape (and receptive field)."""
    return (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax, nn.Dropout, nn.Identity,
            nn.BatchNorm2d)


def summary(model, input_size, print_table=True):
    """Shapes, parameters, multiply-adds and receptive field of every layer.

    ``input_size``: ``(N, C, H, W)``, or ``(C, H, W)`` for one image. The
    model's ``forward`` runs with the convolutions and pools replaced by their
    size formulas (see the module docstring), so the full 572x572 U-Net takes
    well under a second. Prints the table unless ``print_table=False``;
    returns a ``Summary`` (``.rows``, ``.total_params``, ``.total_macs``,
    ``str()`` is the table). Shape errors surface as the layers' own errors,
    e.g. the U-Net's message about invalid input sizes, or a conv's (or
    BatchNorm's) about an input with other channels than its weights take:
    the channels are checked at every Conv2d, ConvTranspose2d and BatchNorm2d
    as the shapes are traced, as their forward would.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if (not isinstance(input_size, (tuple, list)) or len(input_size) not in (3, 4)
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in input_size)):
        raise TypeError(f"input_size must be (N, C, H, W) or (C, H, W) ints, got {input_size!r}")
    if min(input_size) < 1:
        raise ValueError(f"input_size must be positive, got {input_size!r}")
    shape = tuple(int(v) for v in input_size)
    if len(shape) == 3:
        shape = (1,) + shape
    params = model.parameters()
    dtype = params[0].dtype if params else np.float32
    modes = [(m, m.training) for m in model.modules()]
    model.eval()   # as torchinfo: no dropout draws, BatchNorm reads its running statistics
    try:
        try:
            recorder = _run(model, shape, dtype, zero_batch=True)
        except Exception:
            recorder = None
        if recorder is None:
            # Some glue op cannot take an empty batch (or the input is bad): run on the
            # real shape, slower but the same table, or the model's own error.
            recorder = _run(model, shape, dtype, zero_batch=False)
    finally:
        for m, mode in modes:
            m.training = mode
    result = Summary(model, shape, [SummaryRow(**row) for row in recorder.rows],
                     sum(int(p.size) for p in params))
    if print_table:
        print(result)
    return result


def _run(model, shape, dtype, zero_batch):
    """One shape-only pass of ``model`` on a placeholder input; returns the recorder.

    With ``zero_batch`` the placeholders have batch size 0: every shape the
    model's glue reads is right except N, and NumPy does no work on empty
    arrays, so the glue costs nothing. The rows show the real N.
    """
    recorder = _Recorder(model, dtype, shape[0])
    x = recorder.placeholder(((0,) if zero_batch else shape[:1]) + shape[1:])
    recorder.tag(x, [(Fraction(1), Fraction(1))] * 2)
    previous = _module._call_recorder
    _module._call_recorder = recorder
    try:
        with enable_grad():   # the glue must record its graph: it is how branches are found
            model(x)
    finally:
        _module._call_recorder = previous
    return recorder


def _key(t):
    """A tensor's identity for the receptive-field walk: the op that made it (the
    graph links an op's inputs to their creators, not to the tensors), or the
    tensor itself for a leaf."""
    return id(t.creator) if t.creator is not None else id(t)


class _Recorder:
    """Receives every module call while ``summary`` runs (see the module docstring)."""

    def __init__(self, model, dtype, batch):
        self.batch = batch   # the real N: placeholders may carry 0 (see _run)
        self.names = {id(m): name for name, m in model.named_modules()}
        self.dtype = dtype
        params = model.parameters()     # placeholders live where the weights do, whatever the backend
        self.xp = backend.get_array_module(params[0].data) if params else backend.default_module()
        self.rows = []
        self.depth = 0
        self.fields = {}     # _key(tensor) -> [(r, j) for height, (r, j) for width]
        self.keep = []       # keeps tagged tensors alive, so their ids stay unique
        self.counted = set()  # ids of parameters already in some row (shared layers count once)

    # ---- placeholders and their receptive fields ---------------------------
    def placeholder(self, shape, dtype=None):
        xp = self.xp
        t = Tensor._wrap(xp.broadcast_to(xp.zeros((), dtype=dtype or self.dtype), shape))
        if t.dtype.kind == "f":
            t.requires_grad = True
        return t

    def shown(self, t):
        """The shape to print for ``t``: the real batch size in front."""
        return (self.batch,) + tuple(t.shape[1:]) if t.ndim else ()

    def tag(self, t, field):
        self.fields[_key(t)] = field
        self.keep.append(t)

    def field_of(self, t):
        """The receptive field of tensor ``t``: its tag, or worked out by walking
        back through the graph the glue recorded to tagged tensors (see ``_through``).
        ``None`` for tensors that do not depend on the image (parameters, constants)."""
        stack = [t]
        while stack:
            u = stack[-1]
            if _key(u) in self.fields:
                stack.pop()
            elif u.creator is None:
                self.tag(u, None)
            else:
                pending = [v for v in u.creator.inputs if v is not None and _key(v) not in self.fields]
                if pending:
                    stack.extend(pending)
                else:
                    stack.pop()
                    self.tag(u, self._through(u.creator, u))
        return self.fields[_key(t)]

    def _through(self, fn, out):
        """The field of ``out``, made by glue op ``fn`` from tagged inputs.

        Ops that keep the spatial size (elementwise, ``cat``, normalisation)
        take the widest input field; crops (``getitem``) keep the field;
        functional max/avg pools step it like their modules; functional
        unpooling and interpolation divide the jump by their factor (and
        bilinear adds one input pixel). Any other op that
        changes the spatial size makes the field unknown ("?") from there on,
        rather than wrong.
        """
        inputs = [(v, self.fields[_key(v)]) for v in fn.inputs if v is not None]
        fields = [f for _, f in inputs if f is not None]
        if not fields:
            return None
        widest = _widest(fields)
        if widest is _UNKNOWN:
            return _UNKNOWN
        if out.ndim < 2:
            return _UNKNOWN
        if isinstance(fn, _pooling.MaxPool2d):
            return [_conv_step(widest[a], fn.k[a], fn.s[a], fn.d[a]) for a in (0, 1)]
        if isinstance(fn, _pooling.AvgPool2d):
            return [_conv_step(widest[a], fn.k[a], fn.s[a], 1) for a in (0, 1)]
        if isinstance(fn, (_indexing.GetItem, _padding.Pad)):        # crops and pads move the field only
            return widest
        if isinstance(fn, _pooling.AdaptiveAvgPool2d):
            source = fn.inputs[0].shape[-2:]
            return [_adaptive_step(widest[a], source[a], out.shape[-2 + a]) for a in (0, 1)]
        unpooling = getattr(fn, "stands_for", None) is _pooling.MaxUnpool2d     # on an empty batch
        if unpooling or isinstance(fn, (_pooling.MaxUnpool2d, _resize.Nearest, _resize.Bilinear)):
            # each output reads one input (two for bilinear); the jump shrinks by the factor
            extra = 1 if isinstance(fn, _resize.Bilinear) else 0
            source = fn.inputs[0].shape[-2:]
            return [(widest[a][0] + extra * widest[a][1], widest[a][1] * Fraction(source[a], out.shape[-2 + a]))
                    for a in (0, 1)]
        same_size = all(v.ndim >= 2 and v.shape[-2:] == out.shape[-2:] for v, f in inputs if f is not None)
        return widest if same_size else _UNKNOWN

    # ---- the call hook -------------------------------------------------------
    def __call__(self, module, args, kwargs):
        row = {"name": self.names.get(id(module), "?"), "layer": type(module).__name__, "depth": self.depth,
               "output_shape": (), "params": 0, "macs": 0, "rf": None, "jump": None}
        self.rows.append(row)   # before the children, so the table reads top-down
        x = args[0] if args else None
        field = self.field_of(x) if isinstance(x, Tensor) else None
        is_leaf = next(module.children(), None) is None
        own = [p for p in (module.parameters() if is_leaf else _direct_parameters(module))
               if id(p) not in self.counted]
        self.counted.update(id(p) for p in own)
        row["params"] = sum(int(p.size) for p in own)

        if is_leaf and isinstance(x, Tensor):
            out, macs, step = self.shape_only(module, x, args, kwargs)
        else:
            out, macs, step = None, 0, None
        if out is None:
            self.depth += 1
            try:
                out = module.forward(*args, **kwargs)
            finally:
                self.depth -= 1
        first = out[0] if isinstance(out, tuple) else out
        if step is not None:
            if field is not None and field is not _UNKNOWN:
                field = [step(field[a], a) for a in (0, 1)]
            self.tag(first, field)
        elif isinstance(out, (tuple, dict)):    # several outputs: each one's shape, the widest field
            values = {key: v for key, v in (out.items() if isinstance(out, dict) else enumerate(out))
                      if isinstance(v, Tensor)}
            fields = [f for f in (self.field_of(v) for v in values.values()) if f is not None]
            field = _widest(fields) if fields else None
        elif isinstance(first, Tensor):
            field = self.field_of(first)
        row["macs"] = macs
        row["output_shape"] = (tuple(self.shown(o) for o in out if isinstance(o, Tensor)) if isinstance(out, tuple)
                               else {key: self.shown(v) for key, v in values.items()} if isinstance(out, dict)
                               else self.shown(out) if isinstance(out, Tensor) else ())
        if field is _UNKNOWN:
            row["rf"] = row["jump"] = _UNKNOWN
        elif field is not None:
            row["rf"] = _show(field[0][0], field[1][0])
            row["jump"] = _show(field[0][1], field[1][1])
        return out

    def shape_only(self, m, x, args, kwargs):
        """``(placeholder output, multiply-adds, receptive-field step)`` for a layer
        with a size formula; ``(None, 0, None)`` if the layer must really run."""
        if x.ndim != 4:
            return None, 0, None
        n, c, h, w = x.shape
        batch = self.batch
        if isinstance(m, nn.BatchNorm2d):
            m.check_input(x)                    # its channels, as its forward checks them
        if isinstance(m, _elementwise_layers()):
            return x, 0, lambda f, a: f
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            # the input's channels against the weight's (and groups), with the errors the forward raises
            transposed = isinstance(m, nn.ConvTranspose2d)
            with checks.naming("conv_transpose2d" if transposed else "conv2d"):
                _conv._check_weight_and_bias(x, m.weight, m.bias, m.groups, transposed)
        # Where a layer checks more than its size formula (a reflect pad's limits, a requested
        # output_size, a dilated pool window that reads only padding), it really runs: its own
        # checks and errors, as its forward's.
        if isinstance(m, nn.Conv2d):
            size = shapes.conv2d_output_size((h, w), m.kernel_size, m.stride, m.padding, m.dilation)
            k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
            macs = batch * m.out_channels * size[0] * size[1] * (m.in_channels // m.groups) * k[0] * k[1]
            out = self.placeholder((n, m.out_channels) + size) if m.padding_mode == "zeros" else m.forward(x)
            return out, macs, lambda f, a: _conv_step(f, k[a], s[a], d[a])
        if isinstance(m, nn.ConvTranspose2d):
            k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
            target = kwargs.get("output_size", args[1] if len(args) > 1 else None)
            if target is None:
                size = shapes.conv_transpose2d_output_size((h, w), m.kernel_size, m.stride, m.padding,
                                                           m.output_padding, m.dilation)
                out = self.placeholder((n, m.out_channels) + size)
            else:
                out = m.forward(*args, **kwargs)
            macs = batch * c * h * w * (m.out_channels // m.groups) * k[0] * k[1]
            # one output reads up to ceil((d(k-1)+1)/s) neighbouring inputs
            return (out, macs,
                    lambda f, a: (f[0] + (math.ceil((d[a] * (k[a] - 1) + 1) / s[a]) - 1) * f[1], f[1] / s[a]))
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            dilation = getattr(m, "dilation", 1) if isinstance(m, nn.MaxPool2d) else 1
            stride = m.stride if m.stride is not None else m.kernel_size
            k, s, d = _pair(m.kernel_size), _pair(stride), _pair(dilation)
            if d != (1, 1):
                out = m.forward(*args, **kwargs)
            else:
                size = shapes.max_pool2d_output_size((h, w), m.kernel_size, stride, m.padding, dilation, m.ceil_mode)
                out = self.placeholder((n, c) + size)
                if getattr(m, "return_indices", False):
                    out = (out, self.placeholder((n, c) + size, np.int64))
            return out, 0, lambda f, a: _conv_step(f, k[a], s[a], d[a])
        if isinstance(m, nn.AdaptiveAvgPool2d):
            size = shapes.adaptive_avg_pool2d_output_size((h, w), m.output_size)
            inputs = (h, w)
            return self.placeholder((n, c) + size), 0, lambda f, a: _adaptive_step(f, inputs[a], size[a])
        if isinstance(m, nn.MaxUnpool2d):
            target = kwargs.get("output_size", args[2] if len(args) > 2 else None)
            if target is not None:
                out = m.forward(*args, **kwargs)
            else:
                out = self.placeholder((n, c) + shapes.max_unpool2d_output_size((h, w), m.kernel_size, m.stride,
                                                                                m.padding))
            k = _pair(m.kernel_size)
            s = _pair(m.stride if m.stride is not None else m.kernel_size)
            return out, 0, lambda f, a: (f[0] + (math.ceil(k[a] / s[a]) - 1) * f[1], f[1] / s[a])
        if isinstance(m, nn.Upsample):
            size = shapes.interpolate_output_size((h, w), m.size, m.scale_factor)
            inputs = (h, w)
            taps = 1 if m.mode == "nearest" else 2   # bilinear reads two neighbours per axis
            return (self.placeholder((n, c) + tuple(size)), 0,
                    lambda f, a: (f[0] + (taps - 1) * f[1], f[1] * Fraction(inputs[a], size[a])))
        return None, 0, None


def _widest(fields):
    """Where tensors meet (a join, a module's several outputs): per axis the largest field and
    jump of ``fields`` (a non-empty list), or unknown if one of them is."""
    if any(f is _UNKNOWN for f in fields):
        return _UNKNOWN
    return [(max(f[a][0] for f in fields), max(f[a][1] for f in fields)) for a in (0, 1)]


def _conv_step(field, k, s, d):
    """``r_out = r_in + (k-1) d j_in``, ``j_out = j_in s`` (as ``shapes.receptive_field``)."""
    r, j = field
    return (r + (k - 1) * d * j, j * s)


def _adaptive_step(field, i, o):
    """Adaptive average pooling from ``i`` to ``o``: output ``a`` averages inputs
    ``floor(a*i/o) .. ceil((a+1)*i/o) - 1``; the widest such window acts as the kernel."""
    r, j = field
    widest = max(-(-(a + 1) * i // o) - a * i // o for a in range(o))
    return (r + (widest - 1) * j, j * Fraction(i, o))


def _direct_parameters(module):
    """Parameters held by ``module`` itself, not by its children."""
    return [p for p in vars(module).values() if isinstance(p, nn.Parameter)]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _show(h, w):
    """One number when both axes agree, else ``(h, w)``; Fractions as int or float."""
    h, w = shapes._plain(Fraction(h)), shapes._plain(Fraction(w))
    return h if h == w else (h, w)


# ---- the table ---------------------------------------------------------------
def _cell(value):
    if value is None:
        return "--"
    if isinstance(value, tuple):
        return "x".join(_cell(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_table(result):
    """The table as text: one line per module call, indented by nesting, then totals."""
    header = ("Layer (type)", "Output shape", "Param #", "Mult-adds", "RF", "Jump")
    lines = []
    parents = {}
    for index, row in enumerate(result.rows):
        parent = parents.get(row.depth - 1, "")
        short = row.name[len(parent) + 1:] if parent and row.name.startswith(parent + ".") else row.name
        parents[row.depth] = row.name
        label = "  " * row.depth + (f"{short} ({row.layer})" if short else row.layer)
        shape = row.output_shape
        shape_text = (" ".join(f"{key} {list(s)}" for key, s in shape.items()) if isinstance(shape, dict)
                      else " ".join(str(list(s)) for s in shape) if shape and isinstance(shape[0], tuple)
                      else str(list(shape)))
        following = result.rows[index + 1] if index + 1 < len(result.rows) else None
        is_container = row.params == 0 and row.macs == 0 and following is not None and following.depth > row.depth
        lines.append((label, shape_text, "--" if is_container else f"{row.params:,}",
                      "--" if is_container else f"{row.macs:,}", _cell(row.rf), _cell(row.jump)))
    widths = [max(len(line[i]) for line in lines + [header]) for i in range(len(header))]

    def render(cells):
        return "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cells))

    rule = "-" * len(render(header))
    out = [rule, render(header), rule] + [render(line) for line in lines] + [rule]
    out.append(f"Input size: {list(result.input_size)}")
    out.append(f"Total params: {result.total_params:,}")
    if result.model_params != result.total_params:
        out.append(f"Parameters never used by forward: {result.model_params - result.total_params:,}")
    out.append(f"Total mult-adds: {result.total_macs:,} ({result.total_macs / 1e9:.2f} G)")
    out.append(rule)
    return "\n".join(out)
