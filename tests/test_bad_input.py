"""Bad input, class by class: the rules of docs/guarantees.md hold across the API.

Each test draws its inputs with Hypothesis (an op from a list covering the API,
a bad value of the class) rather than checking one example, and where PyTorch
has an opinion it is the oracle: where torch refuses, we refuse too. The
messages must name the function, the argument and the rule.
"""
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import minisegnet as msn
from minisegnet import functional as F
from minisegnet import checks, instances, metrics, nn, optim, shapes
from minisegnet import data as msn_data
from minisegnet.cli import main as cli_main
from minisegnet.data import transforms
from minisegnet.models import FCN, DeepLabV3Plus, SegNet, UNet


def _x(shape=(2, 3, 6, 6), dtype=np.float32, seed=0):
    return msn.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _labels(shape=(2, 6, 6)):
    return msn.tensor(np.zeros(shape, dtype=np.int64))


def _torch_refuses(call):
    try:
        call()
    except Exception:
        return True
    return False


# ---- floating-point inputs ---------------------------------------------------------------
# (name, our op on a tensor x, torch's op on a tensor t): every op that computes real numbers.
FLOAT_OPS = [
    ("relu", lambda x: F.relu(x), lambda T, t: T.nn.functional.relu(t)),
    ("leaky_relu", lambda x: F.leaky_relu(x), lambda T, t: T.nn.functional.leaky_relu(t)),
    ("relu6", lambda x: F.relu6(x), lambda T, t: T.nn.functional.relu6(t)),
    ("sigmoid", lambda x: F.sigmoid(x), lambda T, t: T.sigmoid(t)),
    ("tanh", lambda x: F.tanh(x), lambda T, t: T.tanh(t)),
    ("softmax", lambda x: F.softmax(x, 1), lambda T, t: T.softmax(t, 1)),
    ("log_softmax", lambda x: F.log_softmax(x, 1), lambda T, t: T.log_softmax(t, 1)),
    ("dropout", lambda x: F.dropout(x, 0.5), lambda T, t: T.nn.functional.dropout(t, 0.5)),
    ("dropout2d", lambda x: F.dropout2d(x, 0.5), lambda T, t: T.nn.functional.dropout2d(t, 0.5)),
    ("exp", lambda x: F.exp(x), lambda T, t: T.exp(t)),
    ("log", lambda x: F.log(x), lambda T, t: T.log(t)),
    ("sqrt", lambda x: F.sqrt(x), lambda T, t: T.sqrt(t)),
    ("mean", lambda x: F.mean(x), lambda T, t: t.mean()),
    ("conv2d", lambda x: F.conv2d(x, msn.tensor(np.ones((2, 3, 3, 3), x.dtype))),
     lambda T, t: T.nn.functional.conv2d(t, T.ones((2, 3, 3, 3), dtype=t.dtype))),
    ("unfold", lambda x: F.unfold(x, 3), lambda T, t: T.nn.functional.unfold(t, 3)),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda T, t: T.nn.functional.max_pool2d(t, 2)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda T, t: T.nn.functional.avg_pool2d(t, 2)),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 2),
     lambda T, t: T.nn.functional.adaptive_avg_pool2d(t, 2)),
    ("interpolate", lambda x: F.interpolate(x, scale_factor=2), lambda T, t: T.nn.functional.interpolate(
        t, scale_factor=2)),
    ("batch_norm", lambda x: F.batch_norm(x, None, None, training=True),
     lambda T, t: T.nn.functional.batch_norm(t, None, None, training=True)),
    ("cross_entropy", lambda x: F.cross_entropy(x, _labels()),
     lambda T, t: T.nn.functional.cross_entropy(t, T.zeros((2, 6, 6), dtype=T.long))),
    ("dice_loss", lambda x: F.dice_loss(x, _labels()), None),
]


@given(op=st.sampled_from(FLOAT_OPS), dtype=st.sampled_from([np.bool_, np.uint8, np.int8, np.int32, np.int64]))
def test_integer_and_boolean_inputs_are_refused_by_every_float_op(op, dtype):
    name, ours, _ = op
    x = msn.tensor((np.arange(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) % 3).astype(dtype))
    with pytest.raises(TypeError) as info:
        ours(x)
    message = str(info.value)
    assert message.startswith(name) and "floating point" in message and str(np.dtype(dtype)) in message


# Where PyTorch does not refuse an integer input it either promotes it to float32
# (sigmoid, tanh, exp, log, sqrt) or computes in the integer dtype (relu, max-pooling,
# conv2d of integers ...); docs/guarantees.md says we refuse all three. This keeps that true.
TORCH_PROMOTES = {"sigmoid", "tanh", "exp", "log", "sqrt"}


@given(op=st.sampled_from([op for op in FLOAT_OPS if op[2] is not None]),
       dtype=st.sampled_from([np.bool_, np.uint8, np.int32, np.int64]))
def test_what_torch_does_with_integer_inputs(torch, op, dtype):
    name, _, theirs = op
    t = torch.tensor((np.arange(2 * 3 * 6 * 6).reshape(2, 3, 6, 6) % 3).astype(dtype))
    try:
        out = theirs(torch, t)
    except Exception:
        assert name not in TORCH_PROMOTES
    else:
        assert out.dtype == (torch.float32 if name in TORCH_PROMOTES else t.dtype), name


def test_what_the_guarantees_page_says_torch_does_with_integers(torch):
    """docs/guarantees.md: PyTorch refuses softmax, leaky_relu, dropout and mean of integers,
    promotes sigmoid, tanh, exp, log and sqrt to float32, and computes relu of uint8,
    max-pooling and conv2d of integers in the integer dtype (we refuse all three kinds)."""
    tf = torch.nn.functional
    pixels = torch.tensor([[[[0, 1], [2, 3]]]], dtype=torch.uint8)
    for refused in (lambda: torch.softmax(pixels, 1), lambda: tf.leaky_relu(pixels),
                    lambda: tf.dropout(pixels, 0.5, True), lambda: pixels.mean()):
        with pytest.raises((RuntimeError, NotImplementedError)):
            refused()
    for op in (torch.sigmoid, torch.tanh, torch.exp, torch.log, torch.sqrt):
        assert op(pixels).dtype == torch.float32
    assert tf.relu(pixels).dtype == tf.max_pool2d(pixels, 2).dtype == torch.uint8
    assert tf.conv2d(pixels.long(), torch.ones(1, 1, 1, 1, dtype=torch.long)).dtype == torch.int64
    x = msn.tensor(pixels.numpy())
    for ours in (lambda x: F.softmax(x, 1), F.leaky_relu, F.sigmoid, F.relu, lambda x: F.max_pool2d(x, 2),
                 lambda x: F.conv2d(x, msn.tensor(np.ones((1, 1, 1, 1), np.uint8)))):
        with pytest.raises(TypeError, match="floating point"):
            ours(x)


@given(op=st.sampled_from(FLOAT_OPS), dtype=st.sampled_from([np.float32, np.float64]))
def test_float_inputs_keep_their_dtype_through_every_float_op(op, dtype):
    name, ours, _ = op
    x = _x(dtype=dtype)
    if name in ("log", "sqrt"):
        x = msn.tensor(np.abs(x.numpy()) + 1)
    out = ours(x)
    assert out.dtype == dtype, f"{name} turned {np.dtype(dtype)} into {out.dtype}"


def test_integer_activations_of_the_report_are_refused_not_wrapped():
    """uint8 [0, 1, 2, 200] used to give sigmoid [0.5, 0, 0, 0] (float16 wrap-around)."""
    x = msn.tensor(np.array([0, 1, 2, 200], dtype=np.uint8))
    for op in (F.sigmoid, F.tanh, lambda t: F.softmax(t, 0), F.relu6):
        with pytest.raises(TypeError, match="uint8"):
            op(x)
    np.testing.assert_allclose(F.sigmoid(x.float()).numpy(), 1 / (1 + np.exp(-np.array([0, 1, 2, 200.]))),
                               rtol=1e-6)


@given(kind=st.sampled_from(["complex", "str", "object"]), shape=st.lists(st.integers(1, 3), max_size=3))
def test_tensors_hold_only_booleans_integers_and_floats(kind, shape):
    values = {"complex": np.ones(shape, np.complex128), "str": np.full(shape, "a"),
              "object": np.empty(shape, dtype=object)}[kind]
    with pytest.raises(TypeError, match="booleans, integers or floats"):
        msn.tensor(values)
    with pytest.raises(TypeError, match="booleans, integers or floats"):
        _x().astype(values.dtype)
    with pytest.raises(TypeError, match="floating-point dtype"):
        nn.Conv2d(1, 1, 1).to(values.dtype)


@given(dtype=st.sampled_from([np.int64, np.int32, np.uint8, np.bool_]))
def test_integer_casts_and_module_casts(dtype):
    x = msn.tensor(np.ones(3, np.float32), requires_grad=True)
    y = x.astype(dtype)                         # a constant, as torch's x.long()
    assert y.dtype == dtype and not y.requires_grad
    with pytest.raises(TypeError, match="Module.to"):
        nn.Conv2d(1, 1, 1).to(dtype)


@given(dtypes=st.permutations([np.float32, np.float64]), shape=st.sampled_from([(2, 2), (3, 2, 2)]))
def test_matmul_needs_one_dtype_like_torch(torch, dtypes, shape):
    a, b = (msn.tensor(np.ones(shape, dtype)) for dtype in dtypes)
    assert _torch_refuses(lambda: torch.tensor(a.numpy()) @ torch.tensor(b.numpy()))
    with pytest.raises(TypeError, match="matmul: both operands must have the same dtype"):
        a @ b


@given(target_dtype=st.sampled_from([np.int64, np.int32, np.uint8, np.bool_]),
       index_dtype=st.sampled_from([np.int32, np.uint8, np.int16, np.float64]))
def test_dtype_of_targets_and_indices_follows_torch(torch, target_dtype, index_dtype):
    logits = _x((4,))
    target = np.array([0, 1, 1, 0]).astype(target_dtype)
    assert _torch_refuses(lambda: torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(logits.numpy()), torch.tensor(target)))
    with pytest.raises(TypeError, match="target must hold floating-point"):
        F.binary_cross_entropy_with_logits(logits, msn.tensor(target))
    x = _x((1, 1, 4, 4))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    bad = msn.tensor(idx.numpy().astype(index_dtype))
    assert _torch_refuses(lambda: torch.nn.functional.max_unpool2d(
        torch.tensor(y.numpy()), torch.tensor(bad.numpy()), 2))
    with pytest.raises(TypeError, match="indices must be int64"):
        F.max_unpool2d(y, bad, 2)


# ---- Tensors, not arrays or None -----------------------------------------------------------
X4, W4, B2 = _x((1, 3, 5, 5)), _x((2, 3, 3, 3)), _x((2,))
TENSOR_ARGUMENTS = [
    ("relu", "input", lambda v: F.relu(v)),
    ("sigmoid", "input", lambda v: F.sigmoid(v)),
    ("tanh", "input", lambda v: F.tanh(v)),
    ("softmax", "input", lambda v: F.softmax(v, 1)),
    ("dropout", "input", lambda v: F.dropout(v, 0.5)),
    ("conv2d", "input", lambda v: F.conv2d(v, W4)),
    ("conv2d", "weight", lambda v: F.conv2d(X4, v)),
    ("conv2d", "bias", lambda v: F.conv2d(X4, W4, v)),
    ("conv_transpose2d", "weight", lambda v: F.conv_transpose2d(X4, v)),
    ("max_pool2d", "input", lambda v: F.max_pool2d(v, 2)),
    ("interpolate", "input", lambda v: F.interpolate(v, scale_factor=2)),
    ("pad", "input", lambda v: F.pad(v, (1, 1))),
    ("batch_norm", "input", lambda v: F.batch_norm(v, None, None, training=True)),
    ("batch_norm", "weight", lambda v: F.batch_norm(X4, None, None, v, training=True)),
    ("cross_entropy", "input", lambda v: F.cross_entropy(v, _labels((1, 5, 5)))),
    ("sum", "input", lambda v: F.sum(v)),
    ("reshape", "input", lambda v: F.reshape(v, -1)),
]


@given(where=st.sampled_from(TENSOR_ARGUMENTS),
       value=st.sampled_from(["array", "list", None, 3, "text"]))
def test_tensor_arguments_refuse_arrays_and_other_things(torch, where, value):
    op, argument, call = where
    if value == "array":
        value = np.ones((1, 3, 5, 5) if argument == "input" else (2, 3, 3, 3) if argument == "weight"
                        else (2,), np.float32)
    elif value == "list":
        value = [1.0, 2.0]
    assume(not (op == "batch_norm" and argument == "weight" and value is None))   # None: no weight
    assume(not (argument == "bias" and value is None))
    with pytest.raises(TypeError) as info:
        call(value)
    assert str(info.value).startswith(f"{op}: {argument} must be a Tensor")
    if op == "conv2d" and isinstance(value, np.ndarray):     # the case we decided: torch refuses too
        assert _torch_refuses(lambda: torch.nn.functional.conv2d(
            value if argument == "input" else torch.ones(1, 3, 5, 5),
            value if argument == "weight" else torch.ones(2, 3, 3, 3), value if argument == "bias" else None))


def test_running_statistics_may_be_arrays_but_not_lists():
    x = _x()
    xp = msn.backend.get_array_module(x.data)             # arrays of the input's backend
    mean, var = xp.zeros(3, np.float32), xp.ones(3, np.float32)
    F.batch_norm(x, mean, var, training=True)
    assert msn.backend.to_numpy(mean).any()               # updated in place
    with pytest.raises(TypeError, match=r"batch_norm: running_mean must be a Tensor or an array \(updated in place; a list"):
        F.batch_norm(x, [0.0, 0.0, 0.0], var, training=True)


@given(value=st.sampled_from([np.ones((2, 2)), [np.ones(2)], 2.0, "x"]))
def test_a_function_called_directly_refuses_non_tensors(value):
    from minisegnet.functional.activation import ReLU
    with pytest.raises(TypeError, match="ReLU: input 0 must be a Tensor"):
        ReLU()(value)


# ---- flags ---------------------------------------------------------------------------------
FLAGS = [
    ("dropout", "training", lambda v: F.dropout(_x(), 0.5, training=v),
     lambda T, v: T.nn.functional.dropout(T.ones(2), 0.5, training=v)),
    ("dropout2d", "training", lambda v: F.dropout2d(_x(), 0.5, training=v), None),
    ("dropout", "inplace", lambda v: F.dropout(_x(), 0.5, inplace=v), None),
    ("relu", "inplace", lambda v: F.relu(_x(), inplace=v), None),
    ("batch_norm", "training", lambda v: F.batch_norm(_x(), msn.tensor(np.zeros(3, np.float32)),
                                                      msn.tensor(np.ones(3, np.float32)), training=v),
     lambda T, v: T.nn.functional.batch_norm(T.ones(2, 3, 2, 2), None, None, training=v)),
    ("max_pool2d", "ceil_mode", lambda v: F.max_pool2d(_x(), 2, ceil_mode=v),
     lambda T, v: T.nn.functional.max_pool2d(T.ones(1, 1, 4, 4), 2, ceil_mode=v)),
    ("max_pool2d", "return_indices", lambda v: F.max_pool2d(_x(), 2, return_indices=v), None),
    ("avg_pool2d", "count_include_pad", lambda v: F.avg_pool2d(_x(), 2, count_include_pad=v),
     lambda T, v: T.nn.functional.avg_pool2d(T.ones(1, 1, 4, 4), 2, count_include_pad=v)),
    ("interpolate", "align_corners", lambda v: F.interpolate(_x(), scale_factor=2, mode="bilinear",
                                                            align_corners=v), None),
    ("sum", "keepdim", lambda v: F.sum(_x(), 1, keepdim=v), lambda T, v: T.ones(2, 3).sum(1, keepdim=v)),
    ("mean", "keepdim", lambda v: F.mean(_x(), 1, keepdim=v), lambda T, v: T.ones(2, 3).mean(1, keepdim=v)),
    ("max", "keepdim", lambda v: F.max(_x(), 1, keepdim=v), None),
    ("argmax", "keepdim", lambda v: _x().argmax(1, keepdim=v), None),
    ("", "ceil_mode", lambda v: shapes.max_pool2d_output_size(8, 2, ceil_mode=v), None),
    ("", "ceil_mode", lambda v: shapes.avg_pool2d_output_size(8, 2, ceil_mode=v), None),
    ("", "requires_grad", lambda v: msn.tensor([1.0], requires_grad=v),
     lambda T, v: T.tensor([1.0], requires_grad=v)),
    ("", "nesterov", lambda v: optim.SGD(nn.Conv2d(1, 1, 1).parameters(), 0.1, momentum=0.9, nesterov=v), None),
    ("Conv2d", "bias", lambda v: nn.Conv2d(1, 1, 1, bias=v), None),
    ("BatchNorm2d", "affine", lambda v: nn.BatchNorm2d(2, affine=v), None),
    ("BatchNorm2d", "track_running_stats", lambda v: nn.BatchNorm2d(2, track_running_stats=v), None),
    ("ReLU", "inplace", lambda v: nn.ReLU(inplace=v), None),
    ("LeakyReLU", "inplace", lambda v: nn.LeakyReLU(inplace=v), None),
    ("ReLU6", "inplace", lambda v: nn.ReLU6(inplace=v), None),
    ("Dropout", "inplace", lambda v: nn.Dropout(inplace=v), None),
    ("Dropout2d", "inplace", lambda v: nn.Dropout2d(inplace=v), None),
]


@given(where=st.sampled_from(FLAGS), value=st.sampled_from(["yes", "True", 2, 1.0, [True], "no"]))
def test_flags_must_be_true_or_false(torch, where, value):
    op, flag, ours, theirs = where
    with pytest.raises(TypeError) as info:
        ours(value)
    message = str(info.value)
    assert message.startswith(op) and f"{flag} must be True" in message and repr(value) in message
    if theirs is not None and isinstance(value, str):
        assert _torch_refuses(lambda: theirs(torch, value))


@given(where=st.sampled_from(FLAGS), value=st.sampled_from([True, False, np.bool_(True)]))
def test_flags_accept_booleans(where, value):
    where[2](value)


# ---- dims ----------------------------------------------------------------------------------
DIM_OPS = [
    ("softmax", lambda d: F.softmax(_x(), d), lambda T, d: T.softmax(T.ones(2, 3, 6, 6), d)),
    ("log_softmax", lambda d: F.log_softmax(_x(), d), lambda T, d: T.log_softmax(T.ones(2, 3, 6, 6), d)),
    ("sum", lambda d: F.sum(_x(), d), lambda T, d: T.ones(2, 3, 6, 6).sum(d)),
    ("mean", lambda d: F.mean(_x(), d), lambda T, d: T.ones(2, 3, 6, 6).mean(d)),
    ("max", lambda d: F.max(_x(), d), None),
    ("cat", lambda d: msn.cat([_x(), _x()], d), lambda T, d: T.cat([T.ones(2, 3, 6, 6)] * 2, d)),
    ("stack", lambda d: msn.stack([_x(), _x()], d), lambda T, d: T.stack([T.ones(2, 3, 6, 6)] * 2, d)),
    ("transpose", lambda d: F.transpose(_x(), d, 0), lambda T, d: T.ones(2, 3, 6, 6).transpose(d, 0)),
    ("flatten", lambda d: F.flatten(_x(), d), lambda T, d: T.ones(2, 3, 6, 6).flatten(d)),
    ("argmax", lambda d: _x().argmax(d), lambda T, d: T.ones(2, 3, 6, 6).argmax(d)),
]


@given(where=st.sampled_from(DIM_OPS),
       dim=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(min_size=1, max_size=3),
                     st.booleans(), st.just([1.5])))
def test_dims_of_the_wrong_kind_are_type_errors_naming_dim(torch, where, dim):
    op, ours, theirs = where
    with pytest.raises(TypeError) as info:
        ours(dim)
    assert op in str(info.value) and "dim" in str(info.value)
    if theirs is not None and not isinstance(dim, (bool, list)):
        assert _torch_refuses(lambda: theirs(torch, dim))


@pytest.mark.parametrize("where", DIM_OPS, ids=[op for op, _, _ in DIM_OPS])
def test_the_first_dims_out_of_range_are_index_errors(torch, where):
    """The edges: dim = ndim and -ndim - 1 (4 and -5 for the 4-D inputs; stack makes a 5-D
    result, so 5 and -6). ``checks.dim`` accepting ``dim == ndim`` would wrap it to axis 0."""
    op, ours, theirs = where
    ndim = 5 if op == "stack" else 4
    for dim in (ndim, -ndim - 1):
        with pytest.raises(IndexError, match="out of range"):
            ours(dim)
        if theirs is not None:
            with pytest.raises(IndexError):
                theirs(torch, dim)
    ours(ndim - 1)
    ours(-ndim)                                              # the last valid ones pass


@given(where=st.sampled_from(DIM_OPS), dim=st.one_of(st.integers(6, 10**12), st.integers(-10**12, -6)))
def test_dims_out_of_range_are_index_errors_as_in_torch(torch, where, dim):
    op, ours, theirs = where
    with pytest.raises(IndexError, match="out of range") as info:
        ours(dim)
    assert str(info.value).startswith(op) and "valid:" in str(info.value)
    if theirs is not None:
        with pytest.raises(IndexError):
            theirs(torch, dim)


@given(dim=st.sampled_from([None, (1, 2), [1], True]))
def test_softmax_takes_exactly_one_int_dim(dim):
    for op in (F.softmax, F.log_softmax):
        with pytest.raises(TypeError, match="dim must be an int"):
            op(_x(), dim)


# ---- integers and numbers in settings --------------------------------------------------------
INTEGER_SETTINGS = [
    ("cross_entropy", "ignore_index", lambda v: F.cross_entropy(_x(), _labels(), ignore_index=v), False),
    ("dice_loss", "ignore_index", lambda v: F.dice_loss(_x(), _labels(), ignore_index=v), True),
    ("confusion_matrix", "ignore_index",
     lambda v: metrics.confusion_matrix(np.zeros(3, int), np.zeros(3, int), 2, ignore_index=v), True),
    ("confusion_matrix", "num_classes",
     lambda v: metrics.confusion_matrix(np.zeros(3, int), np.zeros(3, int), v), False),
    ("reshape", "shape", lambda v: F.reshape(_x(), v, -1), False),
    ("connected_components", "connectivity",
     lambda v: instances.connected_components(np.ones((3, 3), bool), connectivity=v), False),
    ("instances_from_semantic", "connectivity",
     lambda v: instances.instances_from_semantic(np.ones((3, 3), int), (1,), connectivity=v), False),
    ("instances_from_semantic", "min_size",
     lambda v: instances.instances_from_semantic(np.ones((3, 3), int), (1,), min_size=v), False),
    ("instances_from_semantic", "thing_classes[1]",
     lambda v: instances.instances_from_semantic(np.ones((3, 3), int), (1, v)), False),
    ("unet_weight_map", "ignore_index",
     lambda v: instances.unet_weight_map(np.ones((3, 3), int), np.ones((3, 3), int), ignore_index=v), False),
    ("panoptic_counts", "things[0]",
     lambda v: metrics.panoptic_counts(np.zeros((1, 2, 2, 2), int), np.zeros((1, 2, 2, 2), int), [v], [0]), False),
    ("panoptic_scores", "stuff[0]", lambda v: metrics.panoptic_scores(np.zeros((4, 2)), [1], [v]), False),
    ("panoptic_quality", "ignore_index",
     lambda v: metrics.panoptic_quality(np.zeros((1, 2, 2, 2), int), np.zeros((1, 2, 2, 2), int), [1], [0],
                                        ignore_index=v), False),
]


@given(where=st.sampled_from(INTEGER_SETTINGS),
       value=st.one_of(st.floats(), st.text(max_size=3), st.booleans(), st.none()))
def test_integer_settings_refuse_floats_strings_bools(where, value):
    op, argument, call, none_allowed = where
    assume(not (value is None and none_allowed))
    with pytest.raises(TypeError) as info:
        call(value)
    assert str(info.value).startswith(f"{op}: {argument} must be") and "int" in str(info.value)


REAL_SETTINGS = [
    ("dice_loss", "smooth", lambda v: F.dice_loss(_x(), _labels(), smooth=v)),
    ("batch_norm", "momentum", lambda v: F.batch_norm(_x(), None, None, training=True, momentum=v)),
    ("batch_norm", "eps", lambda v: F.batch_norm(_x(), None, None, training=True, eps=v)),
    ("Upsample", "scale_factor", lambda v: nn.Upsample(scale_factor=v)),
    ("interpolate", "scale_factor", lambda v: F.interpolate(_x(), scale_factor=v)),
    ("DeepLabV3Plus", "width_mult", lambda v: DeepLabV3Plus(width_mult=v)),
    ("", "lr", lambda v: optim.SGD(nn.Conv2d(1, 1, 1).parameters(), lr=v)),
    ("unet_weight_map", "w0", lambda v: instances.unet_weight_map(np.ones((3, 3), int), np.ones((3, 3), int), w0=v)),
    ("unet_weight_map", "sigma",
     lambda v: instances.unet_weight_map(np.ones((3, 3), int), np.ones((3, 3), int), sigma=v)),
]


@given(where=st.sampled_from(REAL_SETTINGS),
       value=st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf")]), st.text(max_size=3),
                       st.sampled_from([[], {}, b"1"])))
def test_real_settings_refuse_nan_inf_and_strings(where, value):
    op, argument, call = where
    with pytest.raises((TypeError, ValueError)) as info:
        call(value)
    message = str(info.value)
    assert message.startswith(op) and argument in message
    assert isinstance(info.value, TypeError) == (not isinstance(value, float)), message


# The instance and panoptic helpers: arguments of the wrong kind, values outside the rule.
LABEL_HELPERS = [
    ("connected_components", "connectivity", lambda: instances.connected_components(np.ones((3, 3), bool), 6),
     ValueError, "must be 4 (edges) or 8"),
    ("instances_from_semantic", "min_size",
     lambda: instances.instances_from_semantic(np.ones((3, 3), int), (1,), min_size=0), ValueError, ">= 1"),
    ("instances_from_semantic", "thing_classes",
     lambda: instances.instances_from_semantic(np.ones((3, 3), int), 1), TypeError, "a list or tuple"),
    ("instances_from_semantic", "thing_classes[0]",
     lambda: instances.instances_from_semantic(np.ones((3, 3), int), (-1,)), ValueError, ">= 0"),
    ("instances_from_semantic", "pred",
     lambda: instances.instances_from_semantic(np.ones((3, 3)), (1,)), TypeError, "integer map"),
    ("distance_transform_edt", "input",
     lambda: instances.distance_transform_edt(np.array([["a", "b"]])), TypeError, "numbers"),
    ("distance_transform_edt", "input", lambda: instances.distance_transform_edt(np.ones(3)), ValueError,
     "at least 2 dimensions"),
    ("two_nearest_distances", "instances",
     lambda: instances.two_nearest_distances(np.ones((2, 2), np.float32)), TypeError, "integer map"),
    ("unet_weight_map", "sigma", lambda: instances.unet_weight_map(np.ones((3, 3), int), np.ones((3, 3), int),
                                                                   sigma="a"), TypeError, "a number"),
    ("unet_weight_map", "sigma", lambda: instances.unet_weight_map(np.ones((3, 3), int), np.ones((3, 3), int),
                                                                   sigma=0), ValueError, "a positive number"),
    ("unet_weight_map", "w0", lambda: instances.unet_weight_map(np.ones((3, 3), int), np.ones((3, 3), int),
                                                                w0=-1), ValueError, ">= 0"),
    ("unet_weight_map", "instances", lambda: instances.unet_weight_map(np.ones((3, 3), int), np.ones((3, 4), int)),
     ValueError, "shape"),
    ("panoptic_counts", "things", lambda: metrics.panoptic_counts(np.zeros((1, 2, 2, 2), int),
                                                                  np.zeros((1, 2, 2, 2), int), 1, [0]),
     TypeError, "a collection"),
    ("panoptic_counts", "things[0]", lambda: metrics.panoptic_counts(np.zeros((1, 2, 2, 2), int),
                                                                     np.zeros((1, 2, 2, 2), int), [-1], [0]),
     ValueError, ">= 0"),
    ("panoptic_counts", "pred", lambda: metrics.panoptic_counts(np.zeros((1, 2, 2, 3), int), np.zeros((1, 2, 2, 2), int),
                                                                [1], [0]), ValueError, "(N, *spatial, 2)"),
    ("panoptic_quality", "target", lambda: metrics.panoptic_quality(np.zeros((1, 2, 2, 2), int),
                                                                    np.zeros((1, 2, 2, 2)), [1], [0]),
     TypeError, "integer"),
    ("panoptic_scores", "counts", lambda: metrics.panoptic_scores(np.zeros((4, 3)), [1], [0]), ValueError,
     "shape (4, 2)"),
]


@given(where=st.sampled_from(LABEL_HELPERS))
def test_instance_and_panoptic_helpers_name_the_function_the_argument_and_the_rule(where):
    op, argument, call, kind, rule = where
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    message = str(info.value)
    assert type(info.value) is kind and message.startswith(f"{op}: {argument}") and rule in message, message


def test_class_weights_given_as_strings_name_the_argument():
    with pytest.raises(TypeError, match="cross_entropy: weight must hold numbers"):
        F.cross_entropy(_x(), _labels(), weight=["a", "b", "c"])
    with pytest.raises(TypeError, match="binary_cross_entropy_with_logits: pos_weight"):
        F.binary_cross_entropy_with_logits(_x(), _x(), pos_weight="a")


# ---- sequences and mappings --------------------------------------------------------------------
@given(op=st.sampled_from(["cat", "stack"]), value=st.sampled_from(["tensor", "array", None, "text"]))
def test_cat_and_stack_need_a_sequence_of_tensors(torch, op, value):
    value = {"tensor": _x(), "array": np.ones((2, 2))}.get(value, value)
    with pytest.raises(TypeError, match=f"{op}: tensors must be a list or tuple of Tensors"):
        getattr(msn, op)(value)
    if isinstance(value, msn.Tensor):
        assert _torch_refuses(lambda: getattr(torch, op)(torch.ones(2, 3)))


@given(value=st.sampled_from([None, [1, 2], "weights", 3, "tensor"]),
       target=st.sampled_from(["module", "sgd", "adam", "scheduler"]))
def test_load_state_dict_needs_a_mapping(torch, value, target):
    value = _x() if value == "tensor" else value
    model = nn.Conv2d(2, 2, 3)
    opt = optim.Adam(model.parameters())
    obj = {"module": model, "sgd": optim.SGD(model.parameters(), 0.1), "adam": opt,
           "scheduler": optim.StepLR(opt, 2)}[target]
    with pytest.raises(TypeError, match="load_state_dict: state"):
        obj.load_state_dict(value)
    if target == "module" and not isinstance(value, msn.Tensor):
        assert _torch_refuses(lambda: torch.nn.Conv2d(2, 2, 3).load_state_dict(value))


@given(key=st.sampled_from(["weight", "bias"]), text=st.text(max_size=3))
def test_load_state_dict_refuses_string_arrays_naming_the_key(key, text):
    model = nn.Conv2d(2, 2, 3)
    state = model.state_dict()
    state[key] = np.full(state[key].shape, text)
    before = model.weight.numpy().copy()
    with pytest.raises(TypeError, match=f"key '{key}' holds dtype <U"):
        model.load_state_dict(state)
    np.testing.assert_array_equal(model.weight.numpy(), before)


# ---- shapes that do not fit ------------------------------------------------------------------
@st.composite
def _non_broadcasting(draw):
    a = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    b = list(a)
    axis = draw(st.integers(0, len(a) - 1))
    b[axis] = draw(st.integers(2, 5).filter(lambda n: n != a[axis] and a[axis] != 1))
    assume(a[axis] != 1)
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    return tuple(a), tuple(extra + b)


@given(shapes_ab=_non_broadcasting(), op=st.sampled_from(["add", "sub", "mul", "div", "pow"]))
def test_shapes_that_do_not_broadcast_name_both_shapes(torch, shapes_ab, op):
    a, b = shapes_ab
    x, y = msn.tensor(np.ones(a, np.float32)), msn.tensor(np.ones(b, np.float32))
    assert _torch_refuses(lambda: getattr(torch, op)(torch.ones(a), torch.ones(b)))
    with pytest.raises(ValueError) as info:
        getattr(F, op)(x, y)
    assert str(info.value).startswith(f"{op}: shapes {a} and {b} do not broadcast")


@given(batch=_non_broadcasting())
def test_matmul_batch_axes_must_broadcast(torch, batch):
    a, b = batch
    x, y = msn.tensor(np.ones(a + (2, 3))), msn.tensor(np.ones(b + (3, 4)))
    assert _torch_refuses(lambda: torch.ones(a + (2, 3)) @ torch.ones(b + (3, 4)))
    with pytest.raises(ValueError, match=r"matmul \(batch axes\)"):
        x @ y


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_index_out_of_range_names_the_shape(torch, shape, data):
    axis = data.draw(st.integers(0, len(shape) - 1))
    bad = data.draw(st.one_of(st.integers(shape[axis], 10**6), st.integers(-10**6, -shape[axis] - 1)))
    index = (slice(None),) * axis + (bad,)
    x = msn.tensor(np.ones(shape))
    assert _torch_refuses(lambda: torch.ones(shape)[index])
    with pytest.raises(IndexError) as info:
        x[index]
    assert f"shape {tuple(shape)}" in str(info.value) and str(bad) in str(info.value)


@given(index=st.one_of(st.floats(), st.text(max_size=2), st.just(np.ones(2, np.float32)),
                       st.tuples(st.just(0), st.floats())))
def test_index_of_the_wrong_kind_is_a_type_error(torch, index):
    x = msn.tensor(np.ones((3, 3)))
    with pytest.raises(TypeError, match="is not a valid index"):
        x[index]


# ---- empty inputs ----------------------------------------------------------------------------------
@given(op=st.sampled_from(["adaptive_avg_pool2d", "interpolate"]),
       shape=st.sampled_from([(1, 1, 0, 4), (1, 1, 4, 0), (2, 3, 0, 0)]))
def test_an_empty_spatial_axis_is_refused_by_name(torch, op, shape):
    x = msn.tensor(np.zeros(shape, np.float32))
    call = (lambda f, t: f.adaptive_avg_pool2d(t, 2)) if op == "adaptive_avg_pool2d" else \
        (lambda f, t: f.interpolate(t, size=2))
    assert _torch_refuses(lambda: call(torch.nn.functional, torch.zeros(shape)))
    with pytest.raises(ValueError, match=f"{op}: input of shape .* has an empty spatial axis"):
        call(F, x)


EMPTY_BATCH_OPS = [
    ("conv2d", lambda f, x, w: f.conv2d(x, w, padding=1)),
    ("conv_transpose2d", lambda f, x, w: f.conv_transpose2d(x, w, stride=2)),
    ("max_pool2d", lambda f, x, w: f.max_pool2d(x, 2)),
    ("avg_pool2d", lambda f, x, w: f.avg_pool2d(x, 2)),
    ("adaptive_avg_pool2d", lambda f, x, w: f.adaptive_avg_pool2d(x, 3)),
    ("interpolate", lambda f, x, w: f.interpolate(x, scale_factor=2, mode="bilinear")),
    ("pad", lambda f, x, w: f.pad(x, (1, 2, 3, 4))),
    ("relu", lambda f, x, w: f.relu(x)),
    ("softmax", lambda f, x, w: f.softmax(x, 1)),
    ("log_softmax", lambda f, x, w: f.log_softmax(x, 0)),     # along the empty axis itself (NumPy's max raised)
]


@given(op=st.sampled_from(EMPTY_BATCH_OPS), channels=st.integers(1, 3), size=st.integers(4, 7))
def test_an_empty_batch_gives_an_empty_batch_like_torch(torch, op, channels, size):
    name, call = op
    x_np = np.zeros((0, channels, size, size))
    w_np = np.ones((channels, channels, 3, 3))
    x, w = msn.tensor(x_np, requires_grad=True), msn.tensor(w_np, requires_grad=True)
    ours = call(F, x, w)
    tx, tw = torch.tensor(x_np, requires_grad=True), torch.tensor(w_np, requires_grad=True)
    theirs = call(torch.nn.functional, tx, tw)
    assert ours.shape == tuple(theirs.shape), name
    ours.sum().backward()
    assert x.grad.shape == x.shape
    if name.startswith("conv"):
        np.testing.assert_array_equal(w.grad.numpy(), np.zeros(w.shape))


@given(training=st.booleans(), channels=st.integers(1, 4))
def test_batch_norm_of_an_empty_batch_leaves_the_running_statistics_like_torch(torch, training, channels):
    mean, var = msn.tensor(np.full(channels, 0.5)), msn.tensor(np.full(channels, 2.0))
    tmean, tvar = torch.full((channels,), 0.5, dtype=torch.float64), torch.full((channels,), 2.0, dtype=torch.float64)
    x = msn.tensor(np.zeros((0, channels, 3, 3)))
    out = F.batch_norm(x, mean, var, training=training)
    theirs = torch.nn.functional.batch_norm(torch.zeros(0, channels, 3, 3, dtype=torch.float64), tmean, tvar,
                                            training=training)
    assert out.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(mean.numpy(), tmean.numpy())
    np.testing.assert_array_equal(var.numpy(), tvar.numpy())
    if training:                              # the module's batch counter still counts the call, as torch's
        ours, twin = nn.BatchNorm2d(channels), torch.nn.BatchNorm2d(channels)
        ours(msn.tensor(np.zeros((0, channels, 3, 3), np.float32)))
        twin(torch.zeros(0, channels, 3, 3))
        assert int(ours.num_batches_tracked.numpy()) == int(twin.num_batches_tracked) == 1


@given(channels=st.integers(1, 3), out=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       align_corners=st.booleans())
def test_grid_sample_of_an_empty_batch_is_an_empty_batch_like_torch(torch, channels, out, align_corners):
    x = msn.tensor(np.zeros((0, channels, 4, 4)), requires_grad=True)
    grid = msn.tensor(np.zeros((0,) + out + (2,)), requires_grad=True)
    ours = F.grid_sample(x, grid, align_corners=align_corners)
    theirs = torch.nn.functional.grid_sample(torch.zeros(0, channels, 4, 4), torch.zeros((0,) + out + (2,)),
                                             align_corners=align_corners)
    assert ours.shape == tuple(theirs.shape)
    ours.sum().backward()
    assert x.grad.shape == x.shape and grid.grad.shape == grid.shape


@pytest.mark.parametrize("model, size", [
    (lambda: UNet(3, 2, base_channels=4, depth=2, padding="same"), 16),
    (lambda: UNet(3, 2, base_channels=4, depth=1), 26),
    (lambda: SegNet(3, 2, base_channels=4, depth=2), 8),
    (lambda: FCN(2, width=4), 32),
    (lambda: DeepLabV3Plus(3, 2, atrous_rates=(1,), width_mult=0.25, aspp_channels=8, decoder_channels=8), 64),
])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_every_model_maps_an_empty_batch_to_an_empty_batch(model, size, mode):
    m = getattr(model(), mode)()
    x = msn.tensor(np.zeros((0, 3, size, size), np.float32))
    y = m(x)
    assert y.shape[0] == 0 and y.shape[1] == 2
    y.sum().backward()
    assert all(p.grad is not None and not p.grad.numpy().any() for p in m.parameters())


# ---- sizes beyond memory ------------------------------------------------------------------------------
HUGE = [
    ("pad", "pad=", lambda n: F.pad(_x(), (n, n, n, n))),
    ("interpolate", "size=", lambda n: F.interpolate(_x(), size=n)),
    ("interpolate", "scale_factor=", lambda n: F.interpolate(_x(), scale_factor=float(n))),
    ("conv2d", "padding=", lambda n: F.conv2d(_x(), _x((2, 3, 3, 3)), padding=n)),
    ("conv_transpose2d", "stride=", lambda n: F.conv_transpose2d(_x(), _x((3, 2, 3, 3)), stride=n)),
    ("adaptive_avg_pool2d", "output_size=", lambda n: F.adaptive_avg_pool2d(_x(), n)),
    ("unfold", "padding=", lambda n: F.unfold(_x(), 3, padding=n)),
    ("fold", "output_size=", lambda n: F.fold(_x((1, 9, 1)), n, 3, stride=n)),
    ("max_unpool2d", "kernel_size=", lambda n: F.max_unpool2d(_x((1, 1, 2, 2)), msn.tensor(np.zeros((1, 1, 2, 2),
                                                                                            np.int64)), n)),
    ("Conv2d", "in_channels=", lambda n: nn.Conv2d(n, n, 3)),
    ("affine_grid", "size=", lambda n: F.affine_grid(_x((1, 2, 3)), (1, 1, n, n))),
    ("confusion_matrix", "num_classes=", lambda n: metrics.confusion_matrix(np.zeros(2, int), np.zeros(2, int), n)),
    ("UNet", "base_channels=", lambda n: UNet(base_channels=n)),
    ("SegNet", "base_channels=", lambda n: SegNet(base_channels=n)),
    ("FCN", "width=", lambda n: FCN(2, width=n)),
    ("DeepLabV3Plus", "aspp_channels=", lambda n: DeepLabV3Plus(aspp_channels=n)),
    ("MirrorPad", "padding=", lambda n: transforms.MirrorPad(n)(*_sample())),
    ("RandomCrop", "size=", lambda n: transforms.RandomCrop(n)(*_sample(), np.random.default_rng(0))),
    ("CenterCrop", "size=", lambda n: transforms.CenterCrop(n)(*_sample())),
    ("RandomElastic", "points=", lambda n: transforms.RandomElastic(points=n)(*_sample(), np.random.default_rng(0))),
    ("elastic_displacement", "points=",
     lambda n: transforms.elastic_displacement((8, 8), 1.0, np.random.default_rng(0), points=n)),
    ("bicubic_weights", "n=", lambda n: transforms.bicubic_weights(n, n)),
]


def _sample():
    """A small (image, mask) for the augmentations."""
    return np.zeros((3, 8, 8), np.float32), np.zeros((8, 8), np.int64)


@given(where=st.sampled_from(HUGE), n=st.integers(10**7, 10**12))
def test_sizes_beyond_memory_are_refused_before_allocating(where, n):
    op, argument, call = where
    with pytest.raises(checks.TooLargeError) as info:
        call(n)
    message = str(info.value)
    assert message.startswith(op) and argument in message and "more than this machine's memory" in message
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)


@given(depth=st.integers(10, 200), padding=st.sampled_from(["valid", "same"]))
def test_a_deep_unet_is_refused_before_building(depth, padding):
    with pytest.raises(ValueError, match="UNet: (in_channels=3, num_classes=2, base_channels=64, depth=|depth=)"):
        UNet(depth=depth, padding=padding)


# ---- shapes: bounds instead of hangs, flags, sizes ---------------------------------------------------------
@given(depth=st.integers(1, shapes.MAX_UNET_DEPTH), padding=st.sampled_from(["valid", "same"]),
       size=st.integers(1, 10**6))
def test_unet_trace_of_any_allowed_depth_answers(depth, padding, size):
    try:
        rows = shapes.unet_trace(size, depth, padding)
    except ValueError as error:
        assert "is invalid" in str(error) and "valid size" in str(error)
    else:
        assert rows[0].size == size and len(rows) == 7 * depth + 4


@given(depth=st.integers(1, 9), padding=st.sampled_from(["valid", "same"]))
def test_smallest_valid_unet_size_agrees_with_a_search(depth, padding):
    first = shapes.unet_valid_input_sizes(1, 10**4 * 2 ** depth, depth, padding)[0]
    i = 1
    while True:
        try:
            shapes.unet_trace(i, depth, padding)
            break
        except ValueError:
            i += 1
    assert first == i


@given(depth=st.integers(shapes.MAX_UNET_DEPTH + 1, 10**6))
def test_unet_depth_beyond_the_bound_is_refused(depth):
    for call in (lambda: shapes.unet_trace(572, depth), lambda: shapes.unet_output_size(572, depth),
                 lambda: shapes.unet_valid_input_sizes(1, 100, depth)):
        with pytest.raises(ValueError, match=f"depth={depth} is deeper than MAX_UNET_DEPTH"):
            call()


@given(stride=st.integers(shapes.MAX_LISTED_SIZES + 1, 10**15), out=st.integers(1, 100))
def test_listing_input_sizes_is_bounded(stride, out):
    with pytest.raises(ValueError, match="lists at most MAX_LISTED_SIZES"):
        shapes.conv2d_input_sizes(out, 3, stride)
    with pytest.raises(ValueError, match="lists at most MAX_LISTED_SIZES"):
        shapes.unet_valid_input_sizes(1, 16 * (shapes.MAX_LISTED_SIZES + stride), 4)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])     # capsys is read per example
@given(argv=st.one_of(
    st.integers(21, 10**6).map(lambda depth: ["shapes", "unet", "572", "--depth", str(depth)]),
    st.integers(10**6 + 1, 10**15).map(lambda s: ["shapes", "conv", "--size", "8", "--kernel", "3", "--stride", str(s)]),
    st.integers(12, 10**4).map(lambda depth: ["summary", "unet", "--depth", str(depth)])))
def test_the_cli_answers_huge_arguments_with_a_message(capsys, argv):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minisegnet {argv[0]}: error:") and "Traceback" not in err


@given(value=st.sampled_from(["8", 8.0, None, (8, "8"), 0, -3]),
       fn=st.sampled_from(["interpolate", "conv", "pool"]))
def test_shapes_sizes_must_be_positive_ints(value, fn):
    call = {"interpolate": lambda: shapes.interpolate_output_size(value, 4),
            "conv": lambda: shapes.conv2d_output_size(value, 3),
            "pool": lambda: shapes.max_pool2d_output_size(value, 1)}[fn]
    with pytest.raises((TypeError, ValueError), match=r"size( \(H, W\))? must be"):
        call()


# ---- NaN: kept where it belongs, refused where it cannot be -------------------------------------------------
@given(h=st.integers(1, 9), w=st.integers(1, 9), oh=st.integers(1, 9), ow=st.integers(1, 9),
       value=st.sampled_from([np.nan, np.inf, -np.inf]), data=st.data())
def test_adaptive_avg_pool2d_keeps_a_nan_in_its_own_bins(torch, h, w, oh, ow, value, data):
    x = np.random.default_rng(0).standard_normal((1, 2, h, w))
    x[0, data.draw(st.integers(0, 1)), data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))] = value
    ours = F.adaptive_avg_pool2d(msn.tensor(x), (oh, ow)).numpy()
    theirs = torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), (oh, ow)).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-12, atol=1e-12)


@given(c=st.integers(1, 5), value=st.sampled_from([np.nan, np.inf]), data=st.data(),
       score=st.sampled_from([metrics.pixel_accuracy, metrics.mean_accuracy, metrics.mean_iou,
                              metrics.frequency_weighted_iou, metrics.iou_per_class, metrics.dice_per_class,
                              metrics.accuracy_per_class, metrics.scores]))
def test_metrics_refuse_a_confusion_matrix_holding_nan(c, value, data, score):
    cm = np.ones((c, c))
    cm[data.draw(st.integers(0, c - 1)), data.draw(st.integers(0, c - 1))] = value
    with pytest.raises(ValueError, match="NaN or infinite"):
        score(cm)


# ---- checkpoints ---------------------------------------------------------------------------------------------------------
@given(name=st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8),
       suffix=st.sampled_from(["", ".pkl", ".txt", ".npy.bak", "/x"]), payload=st.binary(max_size=40))
def test_load_refuses_zip_members_that_are_not_npy(tmp_path_factory, name, suffix, payload):
    path = tmp_path_factory.mktemp("ckpt") / "model.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weight.npy", _npy_bytes(np.ones(2)))
        archive.writestr(name + suffix, payload)
    assume(not (name + suffix).endswith(".npy"))
    with pytest.raises(ValueError) as info:
        msn.load(path)
    assert str(path) in str(info.value) and repr(name + suffix) in str(info.value)



def _npy_bytes(array):
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


SIZE_ERRORS = [
    (lambda: F.conv2d(msn.tensor(np.zeros((1, 1, 8, 2))), msn.tensor(np.zeros((1, 1, 3, 3)))),
     r"^conv2d: in width, a kernel of 3 with dilation 1 spans 3 pixels, more than the padded input \(2 \+"),
    (lambda: F.max_pool2d(msn.tensor(np.zeros((1, 1, 2, 5))), 3),
     r"^max_pool2d: in height, the window spans 3 pixels"),
    (lambda: F.avg_pool2d(msn.tensor(np.zeros((1, 1, 5, 2))), 3),
     r"^avg_pool2d: in width, the window spans 3 pixels"),
    (lambda: F.conv_transpose2d(msn.tensor(np.zeros((1, 1, 2, 2))), msn.tensor(np.zeros((1, 1, 3, 3))), padding=3),
     r"^conv_transpose2d: in height, padding=3 is too large: the output size would be -2"),
    (lambda: F.interpolate(msn.tensor(np.zeros((1, 1, 4, 2))), scale_factor=(1, 0.1)),
     r"^interpolate: in width, scale_factor=\(1, 0.1\) shrinks size 2 to 0"),
    (lambda: F.max_unpool2d(msn.tensor(np.zeros((1, 1, 2, 2))), msn.tensor(np.zeros((1, 1, 2, 2), dtype=np.int64)),
                            2, padding=3),
     r"^max_unpool2d: in height, padding=\(3, 3\) is too large"),
    (lambda: F.unfold(msn.tensor(np.zeros((1, 1, 5, 2))), 3), r"^unfold: in width, a kernel of 3"),
    (lambda: F.fold(msn.tensor(np.zeros((1, 9, 1))), (2, 5), 3), r"^fold: in height, a kernel of 3"),
    (lambda: shapes.conv2d_output_size(2, 3), r"^a kernel of 3 with dilation 1 spans 3 pixels"),   # one axis
    (lambda: shapes.conv2d_output_size((8, 2), 3, dilation=(1, 2)), r"^in width, a kernel of 3 with dilation 2"),
]


@pytest.mark.parametrize("call, message", SIZE_ERRORS)
def test_a_size_that_does_not_fit_names_the_op_and_the_axis(call, message):
    with pytest.raises(ValueError, match=message):
        call()


_X4 = msn.tensor(np.zeros((1, 4, 6, 6)))
_W4 = msn.tensor(np.zeros((4, 2, 3, 3)))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(_X4, _W4, groups=2.0), TypeError, r"^conv2d: groups must be a positive int, got 2.0"),
    (lambda: F.conv2d(_X4, _W4, groups=True), TypeError, r"^conv2d: groups must be a positive int, got True"),
    (lambda: F.conv2d(_X4, _W4, groups=3), ValueError, r"^conv2d: input channels \(4\) must be divisible by groups=3"),
    (lambda: F.conv2d(_X4, msn.tensor(np.zeros((0, 4, 3, 3)))), ValueError,
     r"^conv2d: weight must have every size >= 1 .* got shape \(0, 4, 3, 3\)"),
    (lambda: F.conv_transpose2d(_X4, msn.tensor(np.zeros((4, 0, 3, 3)))), ValueError,
     r"^conv_transpose2d: weight must have every size >= 1"),
    (lambda: F.conv2d(_X4, _W4, groups=2, stride=0), ValueError, r"^conv2d: stride must be >= 1, got 0"),
    (lambda: F.conv2d(_X4, _W4, groups=2, stride=(1, 2, 3)), TypeError, r"^conv2d: stride must be an int or a pair"),
    (lambda: F.conv2d(_X4, _W4, groups=2, bias=msn.tensor(np.zeros(3))), ValueError,
     r"^conv2d: bias must have shape \(4,\), got \(3,\)"),
    (lambda: F.conv2d(msn.tensor(np.zeros((1, 4, 0, 5))), _W4, groups=2), ValueError,
     r"^conv2d: the input size \(H, W\) must be >= 1, got \(0, 5\)"),
    (lambda: F.conv_transpose2d(_X4, msn.tensor(np.zeros((4, 1, 3, 3))), output_padding=-1), ValueError,
     r"^conv_transpose2d: output_padding must be >= 0"),
])
def test_conv_arguments_are_refused_with_the_op_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- from a fuzz of the public functions: each failed late, unclearly or silently before ----
def test_a_dtype_of_none_and_operands_that_are_not_numbers_are_refused():
    with pytest.raises(TypeError, match="astype: dtype must be a NumPy dtype such as np.float32, got None"):
        _x().astype(None)                                       # NumPy reads None as float64
    for bad in ("a", None, [1.0]):
        with pytest.raises(TypeError, match="result_type: b must be a Tensor or a Python number"):
            F.result_type(_x(), bad)
    for bad in ([2], None, (1, 2)):
        with pytest.raises(TypeError, match="max: dim must be one int"):
            F.max_along(_x(), bad)


def test_numbers_that_overflow_the_dtype_they_are_computed_in_are_refused():
    """1e300 into float32 is inf: a padded border of inf, an infinite slope, a NaN dice loss,
    infinite loss weights. PyTorch refuses such values ('cannot be converted ... without overflow')."""
    cases = [(lambda: F.pad(_x(), (1, 1, 1, 1), value=1e300), "pad: value"),
             (lambda: F.leaky_relu(_x(), 1e300), "leaky_relu: negative_slope"),
             (lambda: F.dice_loss(_x(), _labels(), smooth=1e300), "dice_loss: smooth"),
             (lambda: instances.unet_weight_map(np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64), w0=1e300),
              "unet_weight_map: w0")]
    for call, start in cases:
        with pytest.raises(OverflowError, match=f"{start}=1e\\+300 cannot be converted to float32"):
            call()
    assert F.pad(_x(dtype=np.float64), (1, 1, 1, 1), value=1e300).numpy().max() == 1e300    # fits float64


def test_a_read_only_running_statistic_is_refused_before_either_is_updated():
    if msn.get_backend() != "numpy":
        pytest.skip("NumPy arrays can be read-only; CuPy's cannot (and NumPy statistics are refused beside a CuPy input)")
    mean, var = np.zeros(3, np.float32), np.ones(3, np.float32)
    var.flags.writeable = False
    with pytest.raises(ValueError, match="batch_norm: running_var is read-only"):
        F.batch_norm(_x(), mean, var, training=True)
    assert not mean.any()                                       # untouched (it was updated, then the error)


def test_sizes_from_huge_ids_or_classes_and_scales_are_a_too_large_error():
    from minisegnet import panoptic

    with pytest.raises(checks.TooLargeError, match="instance_centers: the largest id 68719476736"):
        panoptic.instance_centers(np.full((1, 2, 2), 2**36))
    with pytest.raises(checks.TooLargeError, match="merge_semantic_and_instances: the largest class"):
        panoptic.merge_semantic_and_instances(np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.int64),
                                              [1], [2**62])
    with pytest.raises(checks.TooLargeError, match="interpolate: scale_factor=1e\\+300"):
        F.interpolate(_x(), scale_factor=1e300)                 # the size guard's own message overflowed
    assert checks.human_bytes(10**400).endswith(" PiB") and checks.human_bytes(1536) == "1.5 KiB"


def test_torch_tensors_are_read_as_arrays_where_labels_are_taken(torch):
    """Label maps, ids and boxes given as PyTorch CPU tensors are read through np.asarray (a
    torch tensor has .data and .dtype too, so it passed for an array and failed on dtype.kind)."""
    from minisegnet import panoptic

    ids = torch.zeros((1, 4, 4), dtype=torch.int64)
    ids[0, 1:3, 1:3] = 1
    assert instances.connected_components(ids[0] > 0).max() == 1
    assert panoptic.instance_centers(ids)[0][0, 1].tolist() == [2.0, 2.0]
    assert metrics.box_area(torch.tensor([[0, 0, 2, 2]])).tolist() == [4]
    with pytest.raises(TypeError, match="instance_centers: instances must be an array or a Tensor, got None"):
        panoptic.instance_centers(None)


@pytest.mark.parametrize("op, call", [
    ("max_pool2d", lambda x: F.max_pool2d(x, "a")), ("max_pool2d", lambda x: F.max_pool2d(x, 2, dilation="a")),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2, stride=0)), ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, -1)),
    ("unfold", lambda x: F.unfold(x, "a")), ("fold", lambda x: F.fold(F.unfold(x, 2), (6, 6), "b")),
    ("max_unpool2d", lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), "k")),
])
def test_size_argument_errors_start_with_the_function(op, call):
    """The pooling, unfold and fold size checks name their function, as conv2d's did (they said
    only 'kernel_size must be an int or a pair of ints')."""
    with pytest.raises((TypeError, ValueError), match=f"^{op}: "):
        call(_x((1, 1, 6, 6)))


def test_load_state_dict_strict_is_a_flag():
    with pytest.raises(TypeError, match="load_state_dict: strict must be True or False, got 'a'"):
        nn.Conv2d(1, 1, 1).load_state_dict({}, strict="a")


@pytest.mark.parametrize("call, error, message", [
    (lambda: _x().reshape(5, 5), ValueError, r"^reshape: cannot reshape a tensor of shape \(2, 3, 6, 6\)"),
    (lambda: _x().view(5, 5), ValueError, r"^view: cannot reshape a tensor of shape \(2, 3, 6, 6\)"),
    (lambda: _x().view("a"), TypeError, r"^view: shape must be ints"),
    (lambda: _x().permute(0, 1), ValueError, r"^permute: dims \(0, 1\) must be an ordering of all 4 axes"),
    (lambda: _x().permute(0, 0, 1, 2), ValueError, r"^permute: dims=\(0, 0, 1, 2\) names a dimension twice"),
    (lambda: _x().permute("a", 0, 1, 2), TypeError, r"^permute: dims must be None, an int or a tuple of ints"),
    (lambda: _x().flatten(2, 1), ValueError, r"^flatten: start_dim must not come after end_dim, got 2 and 1"),
    (lambda: _x()[5], IndexError, r"^getitem: tensor index 5 does not fit a tensor of shape \(2, 3, 6, 6\)"),
    (lambda: _x()["a"], TypeError, r"^getitem: tensor index 'a': 'a' is not a valid index"),
    (lambda: _x()[::-1], ValueError, r"^getitem: tensor index slice\(None, None, -1\): a slice step must be >= 1"),
])
def test_tensor_shape_and_index_errors_start_with_the_method(call, error, message):
    """reshape, view, permute, flatten and indexing name themselves first, as every other op does
    (they said 'cannot reshape ...', 'permute dims ...', 'dim=... names a dimension twice',
    'tensor index ...')."""
    with pytest.raises(error, match=message):
        call()


_PANOPTIC = np.array([[[[0, 0], [1, 1]]]])
METRIC_ERRORS = [
    ("confusion_matrix", lambda: metrics.confusion_matrix([0, 1], [0, 1, 1], 2), ValueError,
     r"pred and target must have the same shape, got \(2,\) and \(3,\)"),
    ("confusion_matrix", lambda: metrics.confusion_matrix([0.0], [0], 2), TypeError, "pred must hold integer labels"),
    ("confusion_matrix", lambda: metrics.confusion_matrix([3], [0], 2), ValueError,
     r"pred holds label 3, outside \[0, 2\)"),
    ("confusion_matrix", lambda: metrics.confusion_matrix(None, [0], 2), TypeError,
     "pred must be an array or a Tensor, got None"),
    ("mean_iou", lambda: metrics.mean_iou(-np.ones((2, 2))), ValueError, "cm must hold counts, got a negative entry"),
    ("scores", lambda: metrics.scores(np.zeros((2, 2), bool).astype(str)), TypeError, "cm must hold counts, got dtype"),
    ("pixel_accuracy", lambda: metrics.pixel_accuracy(None), TypeError, "cm must be an array or a Tensor, got None"),
    ("mask_iou", lambda: metrics.mask_iou(np.zeros((1, 2, 2)), np.zeros((1, 2, 2), bool)), TypeError,
     "masks1 must be boolean masks"),
    ("mask_iou", lambda: metrics.mask_iou(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 3), bool)), ValueError,
     "masks1 and masks2 must be the same size"),
    ("mask_iou", lambda: metrics.mask_iou(None, np.zeros((1, 2, 2), bool)), TypeError,
     "masks1 must be an array or a Tensor"),
    ("box_iou", lambda: metrics.box_iou(np.zeros((1, 3)), np.zeros((1, 4))), ValueError,
     r"boxes1 must have shape \(num_boxes, 4\)"),
    ("box_iou", lambda: metrics.box_iou(np.zeros((1, 4)), [[0, 3, 1, 2]]), ValueError,
     r"boxes2\[0\] = \[0, 3, 1, 2\] is not an \(x1, y1, x2, y2\) box"),
    ("box_area", lambda: metrics.box_area(np.zeros((1, 4), bool)), TypeError, "boxes must hold numbers"),
    ("panoptic_quality", lambda: metrics.panoptic_quality(np.array([[[[0, 0], [7, 1]]]]), _PANOPTIC, [1], [0]),
     ValueError, r"pred holds category ids \[7\]"),                           # it said panoptic_counts
    ("panoptic_quality", lambda: metrics.panoptic_quality(None, _PANOPTIC, [1], [0]), TypeError,
     "pred must be an array or a Tensor, got None"),                          # it said 'the argument'
    ("panoptic_counts", lambda: metrics.panoptic_counts(_PANOPTIC, "a", [1], [0]), TypeError,
     "target must be an array or a Tensor, got 'a'"),
    ("panoptic_scores", lambda: metrics.panoptic_scores(None, [1], [0]), TypeError,
     "counts must be an array or a Tensor, got None"),
] + [(score.__name__, lambda score=score: score(np.zeros((2, 3))), ValueError,
      r"cm must be a square \(C, C\) confusion matrix, got shape \(2, 3\)")
     for score in (metrics.pixel_accuracy, metrics.mean_accuracy, metrics.mean_iou, metrics.frequency_weighted_iou,
                   metrics.iou_per_class, metrics.dice_per_class, metrics.accuracy_per_class, metrics.scores)]


@pytest.mark.parametrize("op, call, error, message", METRIC_ERRORS)
def test_metric_errors_start_with_the_function_called(op, call, error, message):
    """Every metric names itself first, and the argument: a score computed through another
    (mean_iou through iou_per_class, panoptic_quality through panoptic_counts) names the one
    the user called."""
    with pytest.raises(error, match=f"^{op}: {message}"):
        call()


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.Conv2d("a", 4, 3), TypeError, "^Conv2d: in_channels must be an int, got 'a'"),
    (lambda: nn.Conv2d(4, 4.0, 3), TypeError, "^Conv2d: out_channels must be an int, got 4.0"),
    (lambda: nn.Conv2d(4, 4, 3, groups=True), TypeError, "^Conv2d: groups must be an int, got True"),
    (lambda: nn.Conv2d(4, 4, "a"), TypeError, "^Conv2d: kernel_size must be an int or a pair of ints"),
    (lambda: nn.Conv2d(4, 4, 3, padding="full"), ValueError, "^Conv2d: padding must be an int, a pair, 'valid'"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "^Conv2d: out_channels=6 must be divisible by groups=4"),
    (lambda: nn.ConvTranspose2d(2, "b", 3), TypeError, "^ConvTranspose2d: out_channels must be an int, got 'b'"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=(1, 0)), ValueError, r"^ConvTranspose2d: stride must be >= 1"),
    (lambda: nn.DepthwiseSeparableConv2d(None, 4), TypeError,
     "^DepthwiseSeparableConv2d: in_channels must be an int, got None"),
    (lambda: nn.DepthwiseSeparableConv2d(4, 0), ValueError, "^DepthwiseSeparableConv2d: out_channels must be >= 1"),
    (lambda: nn.DepthwiseSeparableConv2d(4, 4, kernel_size=0), ValueError,
     "^DepthwiseSeparableConv2d: kernel_size must be >= 1"),
    (lambda: nn.BatchNorm2d("a"), TypeError, "^BatchNorm2d: num_features must be an int, got 'a'"),
    (lambda: nn.BatchNorm2d(2.0), TypeError, "^BatchNorm2d: num_features must be an int, got 2.0"),
    (lambda: nn.BatchNorm2d(2, momentum="a"), TypeError, "^BatchNorm2d: momentum must be a number, got 'a'"),
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "^Conv2d: in_channels must be >= 1, got 0"),     # a value: ValueError
])
def test_layer_sizes_of_the_wrong_type_are_type_errors_naming_the_layer(call, error, message):
    """An int size given as a string, float or None is a TypeError, as in PyTorch (they were
    ValueErrors, and Conv2d's messages did not name the layer); an int out of range stays a
    ValueError."""
    with pytest.raises(error, match=message):
        call()


_CE_TARGET = np.zeros((1, 6, 6), np.int64)
LAYER_SETTINGS = [   # (the layer, made with a bad setting; the functional call with the same setting)
    ("MaxPool2d", lambda: nn.MaxPool2d(2, padding=3), lambda x: F.max_pool2d(x, 2, padding=3),
     ValueError, "padding=3 must be at most half of kernel_size=2"),
    ("MaxPool2d", lambda: nn.MaxPool2d("a"), lambda x: F.max_pool2d(x, "a"),
     TypeError, "kernel_size must be an int or a pair"),
    ("MaxPool2d", lambda: nn.MaxPool2d(2, dilation=0), lambda x: F.max_pool2d(x, 2, dilation=0),
     ValueError, "dilation must be >= 1, got 0"),
    ("MaxPool2d", lambda: nn.MaxPool2d(2, ceil_mode="yes"), lambda x: F.max_pool2d(x, 2, ceil_mode="yes"),
     TypeError, "ceil_mode must be True or False"),
    ("AvgPool2d", lambda: nn.AvgPool2d(-1), lambda x: F.avg_pool2d(x, -1),
     ValueError, "kernel_size must be >= 1, got -1"),
    ("AvgPool2d", lambda: nn.AvgPool2d(2, count_include_pad=None),
     lambda x: F.avg_pool2d(x, 2, count_include_pad=None), TypeError, "count_include_pad must be True or False"),
    ("AvgPool2d", lambda: nn.AvgPool2d(2, divisor_override=0), lambda x: F.avg_pool2d(x, 2, divisor_override=0),
     ValueError, "divisor_override must be a non-zero int or None, got 0"),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(-1), lambda x: F.adaptive_avg_pool2d(x, -1),
     ValueError, "output_size must be >= 1, got -1"),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((None, 0)), lambda x: F.adaptive_avg_pool2d(x, (None, 0)),
     ValueError, "output_size must be >= 1, got 0"),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), lambda x: F.adaptive_avg_pool2d(x, (1, 2, 3)),
     TypeError, "output_size must be an int or a pair of ints"),
    ("MaxUnpool2d", lambda: nn.MaxUnpool2d("k"),
     lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), "k"),
     TypeError, "kernel_size must be an int or a pair of ints"),
    ("Upsample", lambda: nn.Upsample(scale_factor=2, mode="bicubic"),
     lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), ValueError, "mode must be one of"),
    ("Upsample", lambda: nn.Upsample(size=0), lambda x: F.interpolate(x, size=0),
     ValueError, "size must be >= 1, got 0"),
    ("Upsample", lambda: nn.Upsample(size=(2, "a")), lambda x: F.interpolate(x, size=(2, "a")),
     TypeError, "size must be an int or a pair of ints"),
    ("Upsample", lambda: nn.Upsample(), lambda x: F.interpolate(x),
     ValueError, "give exactly one of size and scale_factor"),
    ("Upsample", lambda: nn.Upsample(size=4, align_corners=True),
     lambda x: F.interpolate(x, size=4, align_corners=True),
     ValueError, "align_corners=True can only be set with mode='bilinear'"),
    ("Upsample", lambda: nn.Upsample(scale_factor=2, recompute_scale_factor="yes"),
     lambda x: F.interpolate(x, scale_factor=2, recompute_scale_factor="yes"),
     TypeError, "recompute_scale_factor must be None, True or False"),
    ("Upsample", lambda: nn.Upsample(scale_factor=-1), lambda x: F.interpolate(x, scale_factor=-1),
     ValueError, "scale_factor must be positive and finite"),
    ("CrossEntropyLoss", lambda: nn.CrossEntropyLoss(ignore_index="a"),
     lambda x: F.cross_entropy(x, _CE_TARGET, ignore_index="a"), TypeError, "ignore_index must be an int, got 'a'"),
    ("CrossEntropyLoss", lambda: nn.CrossEntropyLoss(weight=np.ones(1, int)),
     lambda x: F.cross_entropy(x, _CE_TARGET, weight=np.ones(1, int)),
     TypeError, "weight must be floating point, got dtype int64"),
]


@pytest.mark.parametrize("layer, make, call, error, message", LAYER_SETTINGS)
def test_layers_check_their_settings_when_made_as_their_function_does(layer, make, call, error, message):
    """A pooling, upsampling or loss layer refuses a bad setting when it is made (it did at the
    first forward), with its functional form's rule and message, named after the layer."""
    with pytest.raises(error, match=f"^{layer}: ") as made:
        make()
    with pytest.raises(error) as called:
        call(_x((1, 1, 6, 6)))
    rule = str(made.value).split(": ", 1)[1]
    assert message in rule and rule == str(called.value).split(": ", 1)[1], (made.value, called.value)


def test_describe_pq_and_the_sampling_shape_formulas_name_a_bad_argument():
    """describe_pq(None) was "'NoneType' object is not subscriptable", grid_sample_output_shape(None, ...)
    "'NoneType' object is not iterable", affine_grid_output_shape(None) "object of type 'NoneType' has no len()"."""
    scores = metrics.panoptic_quality(np.zeros((1, 2, 2, 2), int), np.zeros((1, 2, 2, 2), int), [1], [0])
    with pytest.raises(TypeError, match=r"^describe_pq: s must be one category's scores, a dict .* got None"):
        metrics.describe_pq(None)
    with pytest.raises(ValueError, match=r"^describe_pq: s has no tp, fp, fn: .*\(not the whole result\)"):
        metrics.describe_pq(scores)
    with pytest.raises(TypeError, match=r"^describe_pq: s\['tp'\] must be an int, got 1.5"):
        metrics.describe_pq(dict(scores["per_class"][0], tp=1.5))
    assert metrics.describe_pq(scores["per_class"][1]).startswith("PQ nan")     # a category that never occurs
    with pytest.raises(TypeError, match=r"^grid_sample_output_shape: input_shape must be a shape, a tuple of ints, "
                                        r"got None"):
        shapes.grid_sample_output_shape(None, (1, 2, 2, 2))
    with pytest.raises(TypeError, match=r"^grid_sample_output_shape: grid_shape must be a shape.* got \(1, 'a'"):
        shapes.grid_sample_output_shape((1, 1, 4, 4), (1, "a", 2, 2))
    with pytest.raises(TypeError, match=r"^affine_grid_output_shape: size must be \(N, C, H, W\).* got None"):
        shapes.affine_grid_output_shape(None)


@pytest.mark.parametrize("op", ["unet_weight_map", "panoptic_targets"])
def test_a_gaussian_sigma_beyond_float64_is_refused_up_front(op):
    """sigma=1e300 made Python's sigma ** 2 raise a raw OverflowError ('Numerical result out of
    range') from inside the Gaussian; one bound, one message, for both functions."""
    from minisegnet import panoptic

    ids = np.eye(4, dtype=np.int64)
    call = {"unet_weight_map": lambda sigma: instances.unet_weight_map(np.zeros_like(ids), ids, sigma=sigma),
            "panoptic_targets": lambda sigma: panoptic.panoptic_targets(ids[None], sigma=sigma)}[op]
    for sigma in (1e300, 1e154, 1e-162, 0):
        with pytest.raises(ValueError, match=rf"^{op}: sigma must be a positive number of pixels, from 1e-161 to "
                                             rf"1e\+153 \(the Gaussian divides by 2 \* sigma\*\*2 in float64\)"):
            call(sigma)
    call(1e153)                                                  # the largest allowed still computes
    call(1e-161)           # and the smallest, without an overflow warning (pytest makes a warning an error)


LOSSES_ON_EMPTY = [
    ("cross_entropy", {}),
    ("cross_entropy", {"weight": np.array([1.0, 2.0, 0.5])}),
    ("cross_entropy", {"label_smoothing": 0.1}),
    ("cross_entropy", {"ignore_index": 1}),
    ("binary_cross_entropy_with_logits", {}),
    ("mse_loss", {}),
    ("l1_loss", {}),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss, kwargs", LOSSES_ON_EMPTY)
def test_the_losses_of_an_empty_batch_are_torchs(torch, loss, kwargs, reduction):
    """NaN for 'mean' (0/0), 0 for 'sum', an empty map for 'none', and an empty gradient, as in
    PyTorch, without a warning (cross_entropy raised on an empty batch: a reshape with -1)."""
    x_np = np.zeros((0, 3, 4, 5))
    target = np.zeros((0, 4, 5), np.int64) if loss == "cross_entropy" else np.zeros((0, 3, 4, 5))
    ours_kwargs = {k: (msn.tensor(v) if k == "weight" else v) for k, v in kwargs.items()}
    theirs_kwargs = {k: (torch.tensor(v) if k == "weight" else v) for k, v in kwargs.items()}
    x = msn.tensor(x_np, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = getattr(F, loss)(x, msn.tensor(target), reduction=reduction, **ours_kwargs)
        out.backward(msn.tensor(np.zeros(out.shape)))
    tx = torch.tensor(x_np, requires_grad=True)
    theirs = getattr(torch.nn.functional, loss)(tx, torch.tensor(target), reduction=reduction, **theirs_kwargs)
    assert out.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(out.numpy(), theirs.detach().numpy())     # NaN equals NaN here
    assert x.grad.shape == x.shape


def test_the_data_follows_numpys_casts_and_wrapping_as_guarantees_md_says(torch):
    """docs/guarantees.md: arguments are never truncated or wrapped, the data follows the casts the
    user asks for and integer arithmetic wraps, as in PyTorch."""
    assert msn.tensor(np.array([-1]), dtype=np.uint8).numpy().tolist() == [255]
    assert msn.tensor([1.7, 2.5], dtype=np.int64).numpy().tolist() == [1, 2]
    ours = msn.tensor(np.array([200], np.uint8)) + msn.tensor(np.array([100], np.uint8))
    theirs = torch.tensor([200], dtype=torch.uint8) + torch.tensor([100], dtype=torch.uint8)
    assert ours.numpy().tolist() == theirs.tolist() == [44]
    with pytest.raises(TypeError, match="max_pool2d"):
        F.max_pool2d(msn.tensor(np.zeros((1, 1, 4, 4), np.float32)), 2.5)
    with pytest.raises(ValueError, match="cross_entropy"):
        F.cross_entropy(msn.tensor(np.zeros((1, 4, 2, 2), np.float32)), np.full((1, 2, 2), 300))


@pytest.mark.parametrize("call, kind, message", [
    (lambda: msn.tensor(2**70), TypeError, r"^tensor: .* \(an int beyond int64's range\?\)$"),
    (lambda: msn.tensor([1, [2]]), ValueError, r"^tensor: cannot make a tensor from a ragged nested list"),
    (lambda: msn_data.DataLoader(msn_data.Shapes(2, 32), batch_size="4"), TypeError,
     r"^DataLoader: batch_size must be a positive integer, got '4'$"),
    (lambda: msn_data.DataLoader([]), ValueError, r"^DataLoader: the dataset is empty"),
    (lambda: msn_data.DataLoader(msn_data.Shapes(2, 32), seed=-1), ValueError, r"^DataLoader: seed must be >= 0"),
    (lambda: msn_data.Cells(-1, 32), ValueError, r"^Cells: num_samples must be a positive integer, got -1$"),
    (lambda: msn_data.Roads(2, 32)[2], IndexError, r"^Roads: index 2 is out of range for a dataset of 2 samples$"),
    (lambda: msn.manual_seed(-1), ValueError, r"^manual_seed: seed must be an integer from 0 to 2\*\*64 - 1, got -1$"),
    (lambda: msn.manual_seed(2**64), ValueError, r"^manual_seed: seed must be an integer from 0 to 2\*\*64 - 1, "
                                                 r"got 18446744073709551616$"),
    (lambda: F.batch_norm(msn.tensor(np.zeros((2, 3, 4, 4), np.float32)), np.zeros(2, np.float32),
                          np.ones(2, np.float32)), ValueError, r"^batch_norm: running_mean must have shape \(3,\)"),
])
def test_data_and_tensor_messages_name_their_function(call, kind, message):
    """These said what was wrong but not where ('the dataset is empty', 'num_samples must be ...')."""
    with pytest.raises(kind, match=message):
        call()


@pytest.mark.parametrize("call, op, name", [
    (lambda t: F.interpolate(t, scale_factor=2), "interpolate", "input"),
    (lambda t: F.max_pool2d(t, 2), "max_pool2d", "input"),
    (lambda t: F.pad(t, (1, 1)), "pad", "input"),
    (lambda t: F.grid_sample(t, msn.tensor(np.zeros((1, 2, 2, 2), np.float32))), "grid_sample", "input"),
    (lambda t: nn.Conv2d(3, 4, 3)(t), "conv2d", "input"),
])
def test_a_torch_tensor_is_named_as_one_with_the_conversion(torch, call, op, name):
    """A torch.Tensor was described as 'a NumPy array ... dtype torch.float32' or 'got Tensor'."""
    with pytest.raises(TypeError, match=rf"^{op}: {name} must be a Tensor \(convert it: "
                                        r"msn.tensor\(t.detach\(\).numpy\(\)\)\), got a torch.Tensor of shape "
                                        r"\(1, 3, 5, 5\) and dtype torch.float32$"):
        call(torch.zeros(1, 3, 5, 5))


@pytest.mark.parametrize("image, mask, palette, kind, message", [
    # a colour of 300 blended past 1 and wrapped in uint8 to near black
    (np.ones((3, 2, 2), np.float32), np.zeros((2, 2), np.int64), np.array([[300, 300, 300]]), ValueError,
     r"^overlay: palette colours must lie in 0..255, got 300..300$"),
    # a float palette in [0, 1] was divided by 255 again: nearly black
    (np.ones((3, 2, 2), np.float32), np.zeros((2, 2), np.int64), np.array([[1.0, 0.5, 0.0]]), TypeError,
     r"^overlay: palette must hold integer colours 0..255 \(uint8\), got dtype float64$"),
    # a uint8 image 0..255 was clipped to [0, 1]: all white
    (np.full((3, 2, 2), 128, np.uint8), np.zeros((2, 2), np.int64), np.array([[0, 0, 0]]), TypeError,
     r"^overlay: image must be floating point in \[0, 1\], got dtype uint8"),
    # label -1 read as 'labels up to 0 but the palette has 1 colours'
    (np.ones((3, 2, 2), np.float32), -np.ones((2, 2), np.int64), np.array([[0, 0, 0]]), ValueError,
     r"^overlay: mask holds labels -1..-1, but the palette has 1 colours \(labels 0..0\)$"),
    (np.ones((3, 2, 2), np.float32), np.zeros((2, 2), np.float32), np.array([[0, 0, 0]]), TypeError,
     r"^overlay: mask must hold integer class labels, got dtype float32"),
])
def test_overlay_refuses_what_it_would_wrap_or_clip(image, mask, palette, kind, message):
    from minisegnet import viz

    with pytest.raises(kind, match=message):
        viz.overlay(image, mask, palette)


@pytest.mark.parametrize("call, kind, message", [
    (lambda v, p: v.save_overlay(np.ones((3, 2, 2), np.float32), np.zeros((2, 2), np.int64), np.zeros((1, 3), np.uint8),
                                 p / "no" / "such" / "o.png"), FileNotFoundError,
     r"^save_overlay: the folder .* does not exist"),
    (lambda v, p: v.plot_predictions(np.ones((1, 3, 2, 2), np.float32), np.zeros((1, 2, 2), np.int64),
                                     np.zeros((1, 2, 2), np.int64), np.zeros((1, 3), np.uint8), p / "no" / "p.png"),
     FileNotFoundError, r"^plot_predictions: the folder"),
    (lambda v, p: v.plot_curves([{"epoch": 1, "train_loss": 1.0}], p / "curves"), ValueError,
     r"^plot_curves: path must name a .png file"),
    (lambda v, p: v.plot_curves({"epoch": [1]}, p / "c.png"), TypeError,
     r"^plot_curves: history must be a list of per-epoch dicts"),
    (lambda v, p: v.plot_augment_preview(np.ones((3, 16, 16), np.float32), np.zeros((16, 16), np.int64),
                                         [transforms.RandomFlip()], np.random.default_rng(0)), TypeError,
     r"^plot_augment_preview: transforms must be \(name, transform\) pairs"),
    # the instance and panoptic figures (a mutation review's find: no check at all)
    (lambda v, p: v.instances.plot_instance_curves([{"epoch": 1, "train_loss": 1.0}], p / "no" / "c.png"), FileNotFoundError,
     r"^plot_instance_curves: the folder"),
    (lambda v, p: v.instances.plot_instance_predictions(np.ones((1, 3, 2, 2), np.float32),
                                                        np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.int64),
                                                        p / "p.txt"), ValueError,
     r"^plot_instance_predictions: path must name a .png file"),
    (lambda v, p: v.panoptic.plot_panoptic_curves([{"epoch": 1, "train_loss": 1.0}], p / "no" / "c.png"),
     FileNotFoundError,
     r"^plot_panoptic_curves: the folder"),
    (lambda v, p: v.panoptic.plot_panoptic_predictions(
        np.ones((1, 3, 2, 2), np.float32), np.zeros((1, 2, 2, 2), np.int64), np.zeros((1, 2, 2, 2), np.int64),
        np.zeros((2, 3), np.uint8), p / "p.txt"), ValueError,
     r"^plot_panoptic_predictions: path must name a .png file"),
])
def test_figures_check_their_path_and_arguments_before_drawing(tmp_path, call, kind, message):
    """A missing folder was a bare 'No such file or directory' after the figure was drawn; a dict of
    curves was 'string indices must be integers'; bare transforms 'cannot unpack'; the panoptic
    predictions wrote PNG bytes into a .txt file."""
    from minisegnet import viz

    with pytest.raises(kind, match=message):
        call(viz, tmp_path)


def test_what_guarantees_md_says_we_refuse_that_torch_accepts(torch):
    """docs/guarantees.md, "Shapes": unbatched images, a 1-tuple stride, an output of no pixels and
    a broadcast loss target are refused here and taken by PyTorch; integer targets of any dtype and
    a float64 class weight beside float32 logits are taken here and refused by PyTorch."""
    x3, w = np.zeros((3, 5, 6), np.float32), np.zeros((2, 3, 3, 3), np.float32)
    tF = torch.nn.functional
    refused_here = [
        (lambda: F.conv2d(msn.tensor(x3), msn.tensor(w)), lambda: tF.conv2d(torch.tensor(x3), torch.tensor(w)),
         ValueError, "must be 4-D"),
        (lambda: F.max_pool2d(msn.tensor(x3), 2), lambda: tF.max_pool2d(torch.tensor(x3), 2), ValueError, "4-D"),
        (lambda: F.conv2d(msn.tensor(x3[None]), msn.tensor(w), stride=(2,)),
         lambda: tF.conv2d(torch.tensor(x3[None]), torch.tensor(w), stride=(2,)), TypeError, "stride"),
        (lambda: F.adaptive_avg_pool2d(msn.tensor(x3[None]), 0),
         lambda: tF.adaptive_avg_pool2d(torch.tensor(x3[None]), 0), ValueError, ">= 1"),
        (lambda: F.mse_loss(msn.tensor(np.zeros((2, 3), np.float32)), msn.tensor(np.zeros(3, np.float32))),
         lambda: tF.mse_loss(torch.zeros(2, 3), torch.zeros(3)), ValueError, "no broadcasting"),
        (lambda: F.l1_loss(msn.tensor(np.zeros((2, 3), np.float32)), msn.tensor(np.zeros(3, np.float32))),
         lambda: tF.l1_loss(torch.zeros(2, 3), torch.zeros(3)), ValueError, "no broadcasting"),
        (lambda: F.conv_transpose2d(msn.tensor(x3), msn.tensor(np.zeros((3, 2, 3, 3), np.float32))),
         lambda: tF.conv_transpose2d(torch.tensor(x3), torch.zeros(3, 2, 3, 3)), ValueError, "4-D"),
        (lambda: F.unfold(msn.tensor(x3), 2), lambda: tF.unfold(torch.tensor(x3), 2), ValueError, "4-D"),
        (lambda: F.fold(msn.tensor(np.zeros((12, 4), np.float32)), (3, 3), 2),
         lambda: tF.fold(torch.zeros(12, 4), (3, 3), 2), ValueError, "fold"),
        (lambda: F.cross_entropy(msn.tensor(np.zeros(3, np.float32)), np.array(1)),
         lambda: tF.cross_entropy(torch.zeros(3), torch.tensor(1)), ValueError, "cross_entropy"),
        (lambda: F.max_unpool2d(msn.tensor(np.zeros((1, 1, 1, 1), np.float32)),
                                msn.tensor(np.zeros((1, 1, 1, 1), np.int64)), 2, 2, 1, output_size=(0, 0)),
         lambda: tF.max_unpool2d(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1, dtype=torch.int64), 2, 2, 1,
                                 output_size=(0, 0)), ValueError, "at least 1"),
    ]
    import warnings
    for ours, theirs, kind, words in refused_here:
        with pytest.raises(kind, match=words):
            ours()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs()                                        # PyTorch takes it
    logits = np.zeros((2, 3), np.float32)
    for target, weight in ((np.array([0, 1], np.int32), None), (np.array([0, 1]), np.ones(3))):
        assert F.cross_entropy(msn.tensor(logits), target, weight).dtype == np.float32
        with pytest.raises(RuntimeError):
            tF.cross_entropy(torch.tensor(logits), torch.tensor(target),
                             None if weight is None else torch.tensor(weight))


def test_settings_outside_their_range_are_refused_where_torch_takes_them(torch):
    """docs/guarantees.md, "Settings outside their meaningful range": each refused here, each
    taken by PyTorch (which builds the object)."""
    from minisegnet import nn as mnn, optim

    def sgd(**kw):
        return optim.SGD([mnn.Parameter(np.zeros(1))], lr=0.1, **kw)

    def tsgd(**kw):
        return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, **kw)
    pairs = [
        (lambda: mnn.Conv2d(0, 1, 3), lambda: torch.nn.Conv2d(0, 1, 3)),
        (lambda: mnn.Conv2d(1, 1, 3, padding=-1), lambda: torch.nn.Conv2d(1, 1, 3, padding=-1)),
        (lambda: mnn.BatchNorm2d(3, momentum=1.5), lambda: torch.nn.BatchNorm2d(3, momentum=1.5)),
        (lambda: optim.StepLR(sgd(), 2, gamma=-0.5), lambda: torch.optim.lr_scheduler.StepLR(tsgd(), 2, gamma=-0.5)),
        (lambda: optim.PolynomialLR(sgd(), total_iters=0),
         lambda: torch.optim.lr_scheduler.PolynomialLR(tsgd(), total_iters=0)),
        (lambda: optim.CosineAnnealingLR(sgd(), T_max=2.5),
         lambda: torch.optim.lr_scheduler.CosineAnnealingLR(tsgd(), T_max=2.5)),
        (lambda: optim.CosineAnnealingLR(sgd(), T_max=5, eta_min=-0.1),
         lambda: torch.optim.lr_scheduler.CosineAnnealingLR(tsgd(), T_max=5, eta_min=-0.1)),
        (lambda: sgd(momentum=0.9, dampening=-1), lambda: tsgd(momentum=0.9, dampening=-1)),
        (lambda: mnn.ReLU(inplace=1), lambda: torch.nn.ReLU(inplace=1)),
        (lambda: mnn.MaxPool2d(3, stride=[]), lambda: torch.nn.MaxPool2d(3, stride=[])(torch.zeros(1, 1, 6, 6))),
        (lambda: sgd(momentum=0.9, nesterov=1), lambda: tsgd(momentum=0.9, nesterov=1)),
        (lambda: optim.SGD(mnn.Conv2d(1, 1, 1).named_parameters(), lr=0.1),
         lambda: torch.optim.SGD(torch.nn.Conv2d(1, 1, 1).named_parameters(), lr=0.1)),
        (lambda: mnn.Conv2d(1, 1, 0), lambda: torch.nn.Conv2d(1, 1, 0)),
        (lambda: optim.Adam([mnn.Parameter(np.zeros(1))], betas=(0.9, 0.99, 0.9)),
         lambda: torch.optim.Adam([torch.zeros(1, requires_grad=True)], betas=(0.9, 0.99, 0.9))),
        (lambda: optim.PolynomialLR(sgd(), power=-1), lambda: torch.optim.lr_scheduler.PolynomialLR(tsgd(), power=-1)),
        (lambda: optim.CosineAnnealingLR(sgd(), T_max=-5),
         lambda: torch.optim.lr_scheduler.CosineAnnealingLR(tsgd(), T_max=-5)),
        (lambda: mnn.Conv2d(1, 1, 3, padding=1, padding_mode="circular"),
         lambda: torch.nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")),
    ]
    import warnings
    for ours, theirs in pairs:
        with pytest.raises((TypeError, ValueError)):
            ours()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")             # torch: "Initializing zero-element tensors is a no-op"
            theirs()


def test_view_copies_a_non_contiguous_tensor_where_torch_refuses(torch):
    """Tensor.view's docstring: it reshapes (copying) after a permute, where torch's view raises."""
    x = np.arange(6.0).reshape(2, 3)
    ours = msn.tensor(x).permute(1, 0).view(6)
    assert ours.tolist() == x.T.reshape(6).tolist()
    with pytest.raises(RuntimeError):
        torch.tensor(x).permute(1, 0).view(6)


# ---- checks.real at its edges (from a mutation review) ----
def test_real_finite_false_takes_infinities_but_still_refuses_nan():
    assert checks.real(float("inf"), "x", "op", finite=False) == float("inf")
    assert checks.real(float("-inf"), "x", "op", finite=False) == float("-inf")
    with pytest.raises(ValueError, match="finite"):
        checks.real(float("nan"), "x", "op", finite=False)
    x = msn.tensor(np.array([-1.0, 2.0], np.float32))
    assert F.leaky_relu(x, negative_slope=float("inf")) is not None      # PyTorch takes it too


def test_real_maximum_is_inclusive():
    # p=1 and momentum=1 are allowed
    assert checks.real(1, "p", "op", minimum=0, maximum=1) == 1.0
    assert checks.real(0, "p", "op", minimum=0, maximum=1) == 0.0
    x = msn.tensor(np.ones((2, 3), np.float32))
    assert np.all(F.dropout(x, p=1.0, training=True).data == 0)


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_real_refuses_booleans(value):
    with pytest.raises(TypeError, match="must be a number"):
        checks.real(value, "p", "dropout")
    with pytest.raises(TypeError, match="p must be a number"):
        F.dropout(msn.tensor(np.ones(3, np.float32)), p=True)


def _ints(dtype):
    return msn.tensor(np.ones((1, 1, 2, 2), dtype=dtype))


@pytest.mark.parametrize("dtype, value", [(np.uint8, 300), (np.uint8, -1), (np.int8, 1e300),
                                          (np.int64, float("nan")), (np.int64, float("inf")),
                                          (np.int32, 2**40)])
def test_pad_refuses_a_fill_value_that_does_not_fit_an_integer_tensor(dtype, value):
    """guarantees.md: a number that does not fit the dtype it is computed in is an OverflowError
    (PyTorch: 'value cannot be converted to type int8_t without overflow'), named after the op
    and the argument; nothing is silently wrapped. The old code filled int8 with 0 for 1e300,
    int64 with -2**63 for NaN or inf, and let NumPy's unnamed 'Python integer 300 out of bounds
    for uint8' through."""
    with pytest.raises(OverflowError, match="^pad: value="):
        F.pad(_ints(dtype), (1, 1, 1, 1), value=value)


def test_pad_fills_an_integer_tensor_with_a_value_that_fits():
    out = F.pad(_ints(np.uint8), (1, 1, 1, 1), value=255).numpy()
    assert out.dtype == np.uint8 and out[0, 0, 0, 0] == 255 and out[0, 0, 1, 1] == 1


@pytest.mark.parametrize("flag", [1, 0, 1.0, 0.0])
def test_recompute_scale_factor_is_a_flag_not_a_number(flag):
    """Flags are True or False (or None here), never 1 or 1.0: 1 in (None, False, True) is True
    in Python, so a membership test lets numbers through."""
    x = msn.tensor(np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(TypeError, match="interpolate: recompute_scale_factor must be None, True or False"):
        F.interpolate(x, scale_factor=2, recompute_scale_factor=flag)
    with pytest.raises(TypeError, match="Upsample: recompute_scale_factor must be None, True or False"):
        nn.Upsample(scale_factor=2, recompute_scale_factor=flag)


def test_an_int64_overflow_message_does_not_say_pytorch_wraps_it():
    """PyTorch refuses a Python int beyond int64 too (OverflowError: int too big to convert), so
    the message must not claim that PyTorch would wrap it around."""
    with pytest.raises(OverflowError) as info:
        msn.tensor(np.array([1], np.int64)) + 2**70
    assert "add: the number 1180591620717411303424 does not fit int64" in str(info.value)
    assert "PyTorch would wrap it around" not in str(info.value)


@pytest.mark.parametrize("other", [[1, 2], (1.0, 2.0), [[1.5]]])
@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "r*", "r+"])
def test_arithmetic_refuses_a_list_or_tuple_operand(other, op):
    """PyTorch refuses ``t * [1, 2]`` and ``t + [1, 2]`` (a TypeError); NumPy would make the list
    an array and broadcast it, which the old code did silently (a list of one row broadcast
    over every row)."""
    x = msn.tensor(np.array([[1.0, 2.0]], np.float32))
    calls = {"+": lambda: x + other, "-": lambda: x - other, "*": lambda: x * other,
             "/": lambda: x / other, "**": lambda: x ** other, "r*": lambda: other * x,
             "r+": lambda: other + x}
    with pytest.raises(TypeError, match=f"operand must be a Tensor, an array or a number, got a "
                                        f"{type(other).__name__}"):
        calls[op]()


@pytest.mark.parametrize("call", [("max_pool2d", (2,)), ("avg_pool2d", (2,)), ("interpolate", ()),
                                  ("max_unpool2d", (2,)), ("pad", ((1, 1, 1, 1), "reflect")),
                                  ("pad", ((1, 1, 1, 1), "replicate"))])
def test_no_channels_is_refused_where_pytorch_refuses_it(torch, call):
    """PyTorch refuses C = 0 here ('Expected 3D or 4D (batch mode) tensor with optional 0 dim batch
    size', 'Non-empty 4D data tensor expected'); the old code returned an empty output, and
    max_unpool2d let NumPy's 'cannot reshape array of size 0' out. An empty batch stays fine."""
    name, args = call

    def run(functional, x, index_of):
        if name == "interpolate":
            return functional.interpolate(x, scale_factor=2)
        if name == "max_unpool2d":
            return functional.max_unpool2d(x, index_of(x.shape), *args)
        return getattr(functional, name)(x, *args)

    with pytest.raises(RuntimeError):
        run(torch.nn.functional, torch.zeros(2, 0, 4, 4), lambda shape: torch.zeros(shape, dtype=torch.long))
    ours = lambda shape: msn.tensor(np.zeros(shape, np.int64))            # noqa: E731
    with pytest.raises(ValueError, match="no channels|every axis but the batch non-empty"):
        run(F, msn.tensor(np.zeros((2, 0, 4, 4), np.float32)), ours)
    assert run(F, msn.tensor(np.zeros((0, 3, 4, 4), np.float32)), ours).shape[:2] == (0, 3)


def _zeros_image(shape=(1, 1, 6, 6)):
    return msn.tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("scale_factor", [(2.0,), [2.0]])
def test_upsample_refuses_a_one_entry_scale_factor_when_made_as_interpolate_does(scale_factor):
    with pytest.raises(TypeError) as called:
        F.interpolate(_zeros_image(), scale_factor=scale_factor)
    with pytest.raises(TypeError, match="^Upsample: ") as made:
        nn.Upsample(scale_factor=scale_factor)
    rule = str(made.value).split(": ", 1)[1]
    assert "scale_factor must be a number or a pair of numbers" in rule
    assert rule == str(called.value).split(": ", 1)[1], (made.value, called.value)


def test_panoptic_overlay_refuses_an_alpha_outside_0_1():
    # overlay and instance_overlay refuse it; panoptic_overlay blended with alpha=5 and returned
    # values up to 3.0 (its docstring: "an (H, W, 3) float array in [0, 1]"), NaN for alpha=NaN
    from minisegnet import viz

    image = np.full((3, 2, 2), 0.5, np.float32)
    pan = np.zeros((2, 2, 2), np.int64)
    palette = np.array([[255, 255, 255]], np.uint8)
    for alpha in (5, -1, float("nan")):
        with pytest.raises(ValueError, match=r"alpha"):
            viz.panoptic_overlay(image, pan, palette, alpha=alpha)


@pytest.mark.parametrize("masks, preds", [
    (np.zeros((1, 7, 8), np.int64), np.zeros((1, 7, 8), np.int64)),     # both of another size: drawn silently
    (np.zeros((1, 5, 6), np.int64), np.zeros((1, 5, 3), np.int64)),     # NumPy's bare broadcast error
])
def test_plot_predictions_refuses_masks_of_another_size_than_the_images(masks, preds, tmp_path):
    # overlay checks "mask has shape ... but the image is ..."; plot_predictions drew a 7x8 truth and
    # prediction beside a 5x6 image without a word
    from minisegnet import viz

    images = np.zeros((1, 3, 5, 6), np.float32)
    palette = np.zeros((1, 3), np.uint8)
    with pytest.raises(ValueError, match=r"^plot_predictions: .*\(5, 6\)"):
        viz.plot_predictions(images, masks, preds, palette, tmp_path / "p.png")


@pytest.mark.parametrize("columns", [0, -1])
def test_plot_augment_preview_refuses_a_column_count_below_1(columns):
    # columns=0 was a bare ZeroDivisionError, -1 matplotlib's "figure size must be positive"
    from minisegnet import viz

    with pytest.raises(ValueError, match=r"^plot_augment_preview: columns"):
        viz.plot_augment_preview(np.ones((3, 16, 16), np.float32), np.zeros((16, 16), np.int64), [],
                                 np.random.default_rng(0), columns=columns)


def test_instance_overlay_checks_alpha_and_takes_any_ids_and_an_empty_image():
    from minisegnet import viz

    image = np.full((3, 6, 6), 0.5, np.float32)
    ids = np.zeros((6, 6), np.int64)
    ids[1:5, 1:5] = 2 ** 40                          # a colour table that long would be 8 TiB
    out = viz.instance_overlay(image, ids)
    assert out.shape == (6, 6, 3) and np.isfinite(out).all() and not np.allclose(out[2, 2], out[0, 0])
    small = ids.copy()
    small[small > 0] = 7
    np.testing.assert_allclose(viz.instance_overlay(image, small)[2, 2],       # one rule for every id
                               0.5 * 0.5 + 0.5 * viz.instances.instance_colors(7)[7])
    with pytest.raises(TypeError, match=r"^instance_overlay: alpha must be a number"):
        viz.instance_overlay(image, ids, alpha="0.5")
    assert viz.instance_overlay(np.zeros((3, 0, 0), np.float32), np.zeros((0, 0), np.int64)).shape == (0, 0, 3)


@pytest.mark.parametrize("plot", ["plot_instance_curves", "plot_panoptic_curves", "plot_curves"])
def test_every_curves_figure_checks_its_history(plot, tmp_path):
    from minisegnet.viz import instances, panoptic, training

    fn = {"plot_instance_curves": instances.plot_instance_curves, "plot_panoptic_curves":
          panoptic.plot_panoptic_curves, "plot_curves": training.plot_curves}[plot]
    with pytest.raises(TypeError, match=r"history must be a list of per-epoch dicts"):
        fn("abc", tmp_path / "c.png")


def test_prediction_figures_refuse_fewer_class_names_than_colours(tmp_path):
    from minisegnet import viz

    images = np.zeros((1, 3, 4, 4), np.float32)
    masks = np.zeros((1, 4, 4), np.int64)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0]], np.uint8)
    with pytest.raises(ValueError, match=r"^plot_predictions: class_names has 2 names for the palette's 3 colours"):
        viz.plot_predictions(images, masks, masks, palette, tmp_path / "p.png", class_names=["a", "b"])
    pan = np.zeros((1, 4, 4, 2), np.int64)
    with pytest.raises(ValueError, match=r"^plot_panoptic_predictions: class_names has 2 names"):
        viz.panoptic.plot_panoptic_predictions(images, pan, pan, palette, tmp_path / "q.png", class_names=["a", "b"])


def test_prediction_figures_refuse_more_class_names_than_colours(tmp_path):
    """One name per colour: a surplus name (a palette missing a colour) is refused too, not dropped."""
    from minisegnet import viz

    images = np.zeros((1, 3, 4, 4), np.float32)
    masks = np.zeros((1, 4, 4), np.int64)
    palette = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)
    with pytest.raises(ValueError, match=r"^plot_predictions: class_names has 3 names for the palette's 2 colours"):
        viz.plot_predictions(images, masks, masks, palette, tmp_path / "p.png", class_names=["a", "b", "c"])
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("history", [[1, 2], ["epoch"], [{"epoch": 1}, None]])
def test_a_curves_figure_names_a_history_of_non_dicts(history, tmp_path):
    """A list whose entries are not dicts is the library's TypeError, not 'int object is not
    subscriptable' from the first h['epoch']."""
    from minisegnet import viz

    with pytest.raises(TypeError, match=r"^plot_curves: history must be a list of per-epoch dicts"):
        viz.plot_curves(history, tmp_path / "c.png")


def test_id_0_is_black_by_the_colour_rule():
    """instance_colors: 'black for id 0'; id_colors computes the same rule per id."""
    from minisegnet.viz import instances

    assert instances.instance_colors(3)[0].tolist() == [0.0, 0.0, 0.0]
    colours = instances.id_colors(np.array([[0, 5], [5, 0]]))
    assert colours[0, 0].tolist() == [0.0, 0.0, 0.0] and colours[1, 1].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_array_equal(colours[0, 1], instances.instance_colors(5)[5])


@pytest.mark.parametrize("which", ["truth", "predictions"])
@pytest.mark.parametrize("bad, message", [
    (np.zeros((1, 5, 4, 2), np.int64), r"panoptic has size \(5, 4\) but the image is \(4, 4\)"),
    (np.zeros((1, 4, 4, 2), np.float32), r"panoptic must be an integer \(H, W, 2\) map"),
    (np.full((1, 4, 4, 2), 3, np.int64), r"panoptic holds category 3 but the palette has 2 colours"),
], ids=["size", "float", "category"])
def test_plot_panoptic_predictions_checks_each_map_as_panoptic_overlay(which, bad, message, tmp_path):
    """Each truth and prediction map is checked against its image and the palette (a map of another
    size was drawn, or failed in NumPy's broadcasting; a category past the palette in indexing)."""
    from minisegnet.viz import panoptic

    images = np.zeros((1, 3, 4, 4), np.float32)
    good = np.zeros((1, 4, 4, 2), np.int64)
    palette = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)
    truth, predictions = (bad, good) if which == "truth" else (good, bad)
    with pytest.raises(ValueError, match=message):
        panoptic.plot_panoptic_predictions(images, truth, predictions, palette, tmp_path / "q.png")


@pytest.mark.parametrize("plot", ["plot_instance_curves", "plot_panoptic_curves", "plot_curves"])
def test_every_curves_figure_refuses_an_empty_history_naming_itself(plot, tmp_path):
    from minisegnet.viz import instances, panoptic, training

    fn = {"plot_instance_curves": instances.plot_instance_curves, "plot_panoptic_curves":
          panoptic.plot_panoptic_curves, "plot_curves": training.plot_curves}[plot]
    with pytest.raises(ValueError, match=rf"^{plot}: history is empty: nothing to plot"):
        fn([], tmp_path / "c.png")


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 on this platform")
def test_a_long_double_array_is_refused_as_pytorch_refuses_it(torch):
    """np.longdouble (float128 on Linux/x86) made a float128 tensor that every op, Module.to and
    msn.save accepted; torch.tensor refuses it ("can't convert np.ndarray of type
    numpy.longdouble"), and CuPy has no such dtype, so a GPU run would fail later."""
    values = np.ones((1, 1, 4, 4), np.longdouble)
    with pytest.raises(TypeError):
        torch.tensor(values)                                 # the oracle refuses it
    with pytest.raises(TypeError, match="tensor"):
        msn.tensor(values)
    with pytest.raises(TypeError, match="as_tensor|tensor"):
        msn.as_tensor(values)
    with pytest.raises(TypeError, match="astype"):
        msn.tensor(np.ones(3, np.float32)).astype(np.longdouble)
    with pytest.raises(TypeError, match="floating-point dtype"):
        nn.Conv2d(1, 1, 1).to(np.longdouble)


def test_a_requested_cast_of_a_list_converts_as_the_same_array_does(torch):
    """The page's example casts an array, np.array([-1, 1.7]) -> [255, 1]; the same values as a
    list ended in NumPy's own "OverflowError: Python integer -1 out of bounds for uint8", a
    message naming neither tensor nor dtype. torch.tensor([-1], dtype=torch.uint8) is 255."""
    assert torch.tensor([-1], dtype=torch.uint8).tolist() == [255]
    assert msn.tensor(np.array([-1]), dtype=np.uint8).numpy().tolist() == [255]
    assert msn.tensor([-1], dtype=np.uint8).numpy().tolist() == [255]


def test_a_cast_that_numpy_refuses_names_tensor_and_the_dtype():
    """msn.tensor([2**70], dtype=np.int64) raised NumPy's bare "Python int too large to convert to C
    long", naming neither tensor nor the dtype."""
    with pytest.raises(OverflowError, match=r"^tensor: cannot make a tensor of dtype int64 from \[1180591620717411303424\]"):
        msn.tensor([2**70], dtype=np.int64)
