"""``nn.init``'s torch-style in-place initialisers, checked against PyTorch and against the maths.

* ``calculate_gain`` and the fan computation give torch's numbers.
* Each fill's values follow its distribution on a large tensor: bounds, mean,
  std and (for the normal ones) the share within one std, with tolerances
  that a formula off by sqrt(2), or fan_in and fan_out swapped, fails.
* ``trunc_normal_`` follows the truncated density (its CDF, not just its
  range), also far in the tail.
* Each fills in place, returns its argument, repeats under ``manual_seed``,
  gives the same numbers on NumPy and CuPy, and refuses bad arguments with
  errors naming the function and the argument.
"""
import math

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import backend, nn
from minisegnet.autograd import Tensor

init = nn.init

NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]

# A conv weight (out=256, in=128, 3x3) of 294912 values: the sample std is within 0.13% (one sigma)
# of the true one; fan_in = 1152 and fan_out = 2304 differ by 2, so a swap shows.
BIG = (256, 128, 3, 3)


def _param(shape=BIG, fill=0.0, dtype=np.float32):
    return nn.Parameter(np.full(shape, fill, dtype=dtype))


def _values(t):
    return backend.to_numpy(t.data).astype(np.float64).ravel()


def _phi(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cdf(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


# ---- calculate_gain and the fans -----------------------------------------------------------------

@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_calculate_gain_equals_torchs_for_every_nonlinearity(torch, nonlinearity):
    assert init.calculate_gain(nonlinearity) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity),
                                                              rel=1e-12)


@pytest.mark.parametrize("param", [None, 0, 0.2, 1, 3, -0.5, 0.01])
def test_calculate_gain_leaky_relu_slope_equals_torchs(torch, param):
    assert init.calculate_gain("leaky_relu", param) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", param), rel=1e-12)


def test_calculate_gain_values_are_the_documented_ones():
    assert init.calculate_gain("conv_transpose2d") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


def test_calculate_gain_refuses_unknown_names_and_bad_slopes(torch):
    with pytest.raises(ValueError, match=r"calculate_gain: nonlinearity must be one of .*'selu'.* got 'gelu'"):
        init.calculate_gain("gelu")
    for bad in ("0.2", True, [0.2]):
        with pytest.raises(ValueError, match="calculate_gain: param .*negative slope"):
            init.calculate_gain("leaky_relu", bad)
        with pytest.raises(ValueError):                 # torch refuses them too
            torch.nn.init.calculate_gain("leaky_relu", bad)


@pytest.mark.parametrize("shape", [
    (16, 8, 3, 3),          # Conv2d weight (out, in, kh, kw)
    (8, 4, 2, 2),           # ConvTranspose2d weight (in, out, kh, kw): torch reads dim 1 as fan_in all the same
    (32, 20),               # Linear weight (out, in)
    (12, 7, 3),             # Conv1d
    (4, 6, 2, 3, 5),        # Conv3d
    (3, 5, 1, 1),           # 1x1 conv
    (1, 1),
])
def test_fan_in_and_fan_out_equal_torchs(torch, shape):
    assert init.fan_in_and_fan_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fans_of_a_real_conv_transpose_weight_equal_torchs(torch):
    ours, theirs = nn.ConvTranspose2d(8, 4, 3), torch.nn.ConvTranspose2d(8, 4, 3)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    assert init.fan_in_and_fan_out(ours.weight.shape) == \
        torch.nn.init._calculate_fan_in_and_fan_out(theirs.weight)


# ---- the distributions ---------------------------------------------------------------------------

def _torch_sample(torch, fill, shape, *args, **kwargs):
    """torch's own fill of a new tensor, seeded so that the comparison cannot flake."""
    torch.manual_seed(0)
    return fill(torch.empty(shape), *args, **kwargs).numpy().astype(np.float64).ravel()


def _check_uniform(v, bound):
    """All of U(-bound, bound): inside it, reaching its ends, with its std bound / sqrt(3)."""
    assert np.abs(v).max() <= bound * (1 + 1e-6)
    assert np.abs(v).max() > 0.999 * bound                 # 300k draws reach within 0.1% of the ends
    assert abs(v.mean()) < 0.01 * bound
    assert v.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def _check_normal(v, mean, std):
    """N(mean, std^2): its mean, its std, and 68.3% of it within one std (not uniform's 57.7%)."""
    assert abs(v.mean() - mean) < 5 * std / math.sqrt(v.size) + 1e-6 * abs(mean)
    assert v.std() == pytest.approx(std, rel=0.01)
    assert np.mean(np.abs(v - mean) <= std) == pytest.approx(0.6827, abs=0.005)


@pytest.mark.parametrize("shape", [BIG, (600, 500), (40, 30, 15, 15)])
@pytest.mark.parametrize("gain", [1.0, 0.5, math.sqrt(2)])
def test_xavier_uniform_bound_is_gain_sqrt_6_over_fan_sum(torch, shape, gain):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    _check_uniform(_values(init.xavier_uniform_(_param(shape), gain)), bound)
    _check_uniform(_torch_sample(torch, torch.nn.init.xavier_uniform_, shape, gain), bound)             # the same check passes on torch's


@pytest.mark.parametrize("shape", [BIG, (600, 500), (40, 30, 15, 15)])
@pytest.mark.parametrize("gain", [1.0, 0.5, math.sqrt(2)])
def test_xavier_normal_std_is_gain_sqrt_2_over_fan_sum(torch, shape, gain):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    _check_normal(_values(init.xavier_normal_(_param(shape), gain)), 0.0, std)
    _check_normal(_torch_sample(torch, torch.nn.init.xavier_normal_, shape, gain), 0.0, std)


@pytest.mark.parametrize("call", [
    {},
    {"mode": "fan_out", "nonlinearity": "relu"},
    {"a": 0.2},
    {"a": math.sqrt(5), "mode": "fan_out"},
    {"nonlinearity": "tanh"},
    {"nonlinearity": "selu", "mode": "fan_out"},
    {"nonlinearity": "conv_transpose2d"},
])
@pytest.mark.parametrize("shape", [BIG, (500, 700)])
def test_kaiming_normal_std_is_gain_over_sqrt_fan(torch, shape, call):
    fan = torch.nn.init._calculate_correct_fan(torch.empty(shape), call.get("mode", "fan_in"))
    std = torch.nn.init.calculate_gain(call.get("nonlinearity", "leaky_relu"), call.get("a", 0)) / math.sqrt(fan)
    _check_normal(_values(init.kaiming_normal_(_param(shape), **call)), 0.0, std)
    _check_normal(_torch_sample(torch, torch.nn.init.kaiming_normal_, shape, **call), 0.0, std)


def test_kaiming_defaults_are_torchs_he_init():
    """a = 0, fan_in, leaky_relu: std sqrt(2 / fan_in), bound sqrt(6 / fan_in)."""
    _check_normal(_values(init.kaiming_normal_(_param())), 0.0, math.sqrt(2 / 1152))
    _check_uniform(_values(init.kaiming_uniform_(_param())), math.sqrt(6 / 1152))


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (1.5, 0.5), (-3.0, 0.02)])
def test_normal_has_the_mean_and_std_asked_for(torch, mean, std):
    _check_normal(_values(init.normal_(_param(), mean, std)), mean, std)
    _check_normal(_torch_sample(torch, torch.nn.init.normal_, BIG, mean, std), mean, std)


def test_normal_defaults_and_zero_std():
    _check_normal(_values(init.normal_(_param())), 0.0, 1.0)
    assert (_values(init.normal_(_param((3, 4)), 2.5, 0.0)) == 2.5).all()         # std 0: the mean, as torch


def _truncated_moments(mean, std, a, b):
    """Mean and std of N(mean, std^2) truncated to [a, b] (the textbook formulas)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    mass = _cdf(beta) - _cdf(alpha)
    shift = (_phi(alpha) - _phi(beta)) / mass
    var = 1 + (alpha * _phi(alpha) - beta * _phi(beta)) / mass - shift ** 2
    return mean + std * shift, std * math.sqrt(var)


TRUNCATED = [
    (0.0, 1.0, -2.0, 2.0),      # torch's defaults: most of the mass, drawn from the normal and redrawn
    (0.5, 2.0, -1.0, 3.0),
    (0.0, 0.02, -2.0, 2.0),     # the common trunc_normal_(w, std=.02): as good as untruncated
    (0.0, 1.0, 2.5, 4.0),       # a sliver in the tail: drawn by rejection from U(a, b)
    (1.0, 1.0, -0.2, 0.2),      # narrow, mean outside
    (0.0, 1.0, 5.0, 1e6),       # far in the tail with an enormous b: must still finish
]


@pytest.mark.parametrize("mean, std, a, b", TRUNCATED)
def test_trunc_normal_follows_the_truncated_density(mean, std, a, b):
    v = _values(init.trunc_normal_(_param(), mean, std, a, b))
    assert v.min() >= np.float32(a) and v.max() <= np.float32(b)
    want_mean, want_std = _truncated_moments(mean, std, a, b)
    assert abs(v.mean() - want_mean) < 5 * want_std / math.sqrt(v.size)
    assert v.std() == pytest.approx(want_std, rel=0.01)
    # The CDF at nine points inside the range, against (Phi(x) - Phi(alpha)) / mass: a clamp (a pile-up
    # at a and b), a plain normal or a plain uniform all miss it by far more than 0.005.
    lo, hi = max(a, want_mean - 4 * want_std), min(b, want_mean + 4 * want_std)
    alpha, mass = _cdf((a - mean) / std), _cdf((b - mean) / std) - _cdf((a - mean) / std)
    for x in np.linspace(lo, hi, 11)[1:-1]:
        assert np.mean(v <= x) == pytest.approx((_cdf((x - mean) / std) - alpha) / mass, abs=0.005), x
    assert np.mean((v == np.float32(a)) | (v == np.float32(b))) < 1e-3          # no pile-up at the ends


@pytest.mark.filterwarnings("ignore:mean is more than 2 std")     # torch's, for its own draw in the tail
@pytest.mark.parametrize("mean, std, a, b", TRUNCATED[:5])
def test_trunc_normal_moments_match_torchs_samples(torch, mean, std, a, b):
    ours = _values(init.trunc_normal_(_param(), mean, std, a, b))
    theirs = _torch_sample(torch, torch.nn.init.trunc_normal_, BIG, mean, std, a, b)
    assert ours.mean() == pytest.approx(theirs.mean(), abs=6 * theirs.std() / math.sqrt(theirs.size))
    assert ours.std() == pytest.approx(theirs.std(), rel=0.015)


def test_trunc_normal_defaults_are_torchs():
    v = _values(init.trunc_normal_(_param()))
    assert v.min() >= -2 and v.max() <= 2 and v.min() < -1.99 and v.max() > 1.99
    assert v.std() == pytest.approx(_truncated_moments(0.0, 1.0, -2.0, 2.0)[1], rel=0.01)


def test_constant_ones_zeros_fill_every_element():
    w = _param((5, 3), fill=7.0)
    assert (_values(init.constant_(w, -0.25)) == -0.25).all()
    assert (_values(init.ones_(w)) == 1).all()
    assert (_values(init.zeros_(w)) == 0).all()
    ints = Tensor(np.zeros((2, 3), dtype=np.int64))             # torch fills integer tensors too
    assert (backend.to_numpy(init.constant_(ints, 3).data) == 3).all()
    assert (backend.to_numpy(init.constant_(ints, 4.0).data) == 4).all()
    assert (backend.to_numpy(init.ones_(ints).data) == 1).all()


# ---- in place, returned, reproducible, on either backend -----------------------------------------

FILLS = {
    "constant_": lambda w: init.constant_(w, 0.3),
    "ones_": init.ones_,
    "zeros_": init.zeros_,
    "uniform_": init.uniform_,
    "normal_": init.normal_,
    "trunc_normal_": init.trunc_normal_,
    "trunc_normal_ (tail)": lambda w: init.trunc_normal_(w, 0.0, 1.0, 2.5, 4.0),
    "xavier_uniform_": init.xavier_uniform_,
    "xavier_normal_": init.xavier_normal_,
    "kaiming_uniform_": init.kaiming_uniform_,
    "kaiming_normal_": init.kaiming_normal_,
}
RANDOM = [name for name in FILLS if name not in ("constant_", "ones_", "zeros_")]


@pytest.mark.parametrize("name", FILLS)
def test_fills_in_place_and_returns_its_argument(name):
    w = _param((6, 4, 3, 3), fill=123.0)
    before = w.data
    assert FILLS[name](w) is w
    assert w.data is before and w.dtype == np.float32 and w.shape == (6, 4, 3, 3)
    assert backend.get_array_module(w.data) is backend.default_module()          # stays on its backend
    assert not (_values(w) == 123.0).any()
    assert w.requires_grad and w.grad is None


@pytest.mark.parametrize("name", RANDOM)
def test_random_fills_repeat_under_manual_seed(name):
    msn.manual_seed(7)
    first = _values(FILLS[name](_param((6, 4, 3, 3))))
    msn.manual_seed(7)
    again = _values(FILLS[name](_param((6, 4, 3, 3))))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, _values(FILLS[name](_param((6, 4, 3, 3)))))     # the next draw differs


@pytest.mark.parametrize("name", RANDOM)
def test_random_fills_give_the_same_numbers_on_numpy_and_cupy(cupy, name):
    results = []
    for name_of_backend in ("numpy", "cupy"):
        msn.set_backend(name_of_backend)
        msn.manual_seed(11)
        w = _param((6, 4, 3, 3))
        FILLS[name](w)
        assert backend.get_array_module(w.data) is (np if name_of_backend == "numpy" else cupy)
        results.append(_values(w))
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
@pytest.mark.parametrize("name", RANDOM)
def test_random_fills_keep_the_tensors_dtype(name, dtype):
    w = nn.Parameter(np.zeros((8, 6), dtype=dtype))
    assert FILLS[name](w).dtype == dtype
    assert np.isfinite(_values(w)).all() and _values(w).std() > 0


def test_empty_tensors_are_left_as_they_are():
    for fill in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
                 init.normal_, init.trunc_normal_):
        w = _param((0, 3))
        assert fill(w) is w and w.shape == (0, 3)


def test_model_apply_idiom_from_a_torch_script():
    """The usual ``model.apply(init_fn)`` of a PyTorch script runs unchanged."""
    def init_fn(m):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    model = nn.Sequential(nn.Conv2d(16, 256, 3), nn.BatchNorm2d(256), nn.ReLU(),
                          nn.ConvTranspose2d(256, 64, 2, stride=2))
    assert model.apply(init_fn) is model
    conv, bn, _, up = model
    # fan_out is dim 0 times the kernel's size: out_channels for a conv, in_channels for a transposed one
    assert _values(conv.weight).std() == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.03)
    assert _values(up.weight).std() == pytest.approx(math.sqrt(2 / (256 * 4)), rel=0.03)
    assert not _values(conv.bias).any() and not _values(up.bias).any()
    assert (_values(bn.weight) == 1).all() and not _values(bn.bias).any()


# ---- bad arguments ---------------------------------------------------------------------------------

BAD = [
    (lambda w: init.normal_(w, std=-1.0), ValueError, r"normal_: std must be >= 0, got -1.0"),
    (lambda w: init.normal_(w, mean=float("nan")), TypeError, r"normal_: mean must be a finite real number"),
    (lambda w: init.normal_(w, std="1"), TypeError, r"normal_: std must be a finite real number"),
    (lambda w: init.trunc_normal_(w, std=-1.0), ValueError, r"trunc_normal_: std must be > 0, got -1.0"),
    (lambda w: init.trunc_normal_(w, std=0.0), ValueError, r"trunc_normal_: std must be > 0"),
    (lambda w: init.trunc_normal_(w, a=2.0, b=1.0), ValueError, r"trunc_normal_: .*a <= b, got a=2.0 > b=1.0"),
    (lambda w: init.trunc_normal_(w, b=float("inf")), TypeError, r"trunc_normal_: b must be a finite"),
    (lambda w: init.uniform_(w, 2.0, 1.0), ValueError, r"uniform_: .*a <= b, got a=2.0 > b=1.0"),
    (lambda w: init.uniform_(w, None), TypeError, r"uniform_: a must be a finite real number, got None"),
    (lambda w: init.xavier_uniform_(w, gain=-1.0), ValueError, r"xavier_uniform_: gain must be >= 0"),
    (lambda w: init.xavier_normal_(w, gain="2"), TypeError, r"xavier_normal_: gain must be a finite real number"),
    (lambda w: init.kaiming_normal_(w, mode="fan_avg"), ValueError,
     r"kaiming_normal_: mode must be 'fan_in' or 'fan_out', got 'fan_avg'"),
    (lambda w: init.kaiming_uniform_(w, mode="in"), ValueError, r"kaiming_uniform_: mode must be"),
    (lambda w: init.kaiming_normal_(w, nonlinearity="gelu"), ValueError,
     r"kaiming_normal_: nonlinearity must be one of .*'conv_transpose2d'.* got 'gelu'"),
    (lambda w: init.kaiming_uniform_(w, nonlinearity="swish"), ValueError, r"kaiming_uniform_: nonlinearity"),
    (lambda w: init.kaiming_normal_(w, a="0.2"), ValueError, r"kaiming_normal_: a \(the negative slope"),
    (lambda w: init.constant_(w, "1"), TypeError, r"constant_: val must be a real number, got '1'"),
    (lambda w: init.constant_(w, None), TypeError, r"constant_: val must be a real number"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_arguments_are_clear_errors(call, error, message):
    w = _param((4, 3), fill=5.0)
    with pytest.raises(error, match=message):
        call(w)
    assert (_values(w) == 5.0).all()                   # refused before touching the tensor


@pytest.mark.parametrize("name", FILLS)
@pytest.mark.parametrize("not_a_tensor", [np.zeros((4, 3), dtype=np.float32), [[0.0] * 3] * 4, 3.0])
def test_every_fill_wants_a_tensor(name, not_a_tensor):
    function_name = name.split()[0]
    with pytest.raises(TypeError, match=rf"{function_name}: tensor must be a Tensor \(a Parameter\), got"):
        FILLS[name](not_a_tensor)


def test_an_array_gets_a_hint_about_torchs_weight_data():
    """A torch script's ``init_fn(m.weight.data)``: here ``.data`` is the array, so say what to pass."""
    w = _param((4, 3))
    with pytest.raises(TypeError, match=r"xavier_uniform_: tensor must be a Tensor.*pass the Parameter"):
        init.xavier_uniform_(w.data)


@pytest.mark.parametrize("name", RANDOM)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_random_fills_refuse_integer_tensors(name, dtype):
    t = Tensor(np.zeros((4, 3), dtype=dtype))
    with pytest.raises(TypeError, match=rf"{name.split()[0]}: tensor must have a floating-point dtype"):
        FILLS[name](t)


def test_constant_refuses_a_fraction_for_an_integer_tensor():
    t = Tensor(np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"constant_: val must be a whole number for a tensor of dtype int64"):
        init.constant_(t, 0.7)
    assert not backend.to_numpy(t.data).any()


@pytest.mark.parametrize("fill", [init.xavier_uniform_, init.xavier_normal_, init.kaiming_normal_])
def test_fans_need_two_dimensions_as_in_torch(torch, fill):
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        fill(_param((5,)))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        getattr(torch.nn.init, fill.__name__)(torch.empty(5))


@pytest.mark.parametrize("mode", ["FAN_OUT", "Fan_In"])
@pytest.mark.parametrize("fill", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_takes_mode_in_any_case_as_torch(torch, fill, mode):
    """torch lowercases mode; the old check refused 'FAN_OUT'."""
    from minisegnet.nn import init
    w = msn.tensor(np.zeros((64, 16, 3, 3), np.float32))
    getattr(init, fill)(w, mode=mode)
    t = torch.zeros(64, 16, 3, 3)
    getattr(torch.nn.init, fill)(t, mode=mode)
    # the fan chosen shows in the spread: fan_in 144 and fan_out 576 give stds a factor 2 apart
    assert abs(float(w.numpy().std()) / float(t.numpy().std()) - 1) < 0.1
