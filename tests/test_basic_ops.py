"""Basic ops: float64 gradcheck, and forward + gradients equal to PyTorch's on
Hypothesis-drawn shapes, broadcasting included, both operand orders."""
import operator

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import minisegnet as msn
from minisegnet import functional as F
from minisegnet.testing import gradcheck
from helpers import as_torch, assert_close, t64

BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
}


def _values(shape, seed, positive=False):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    if not positive:
        v = v + np.sign(v) * 0.1   # keep away from 0 for division
    return v


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2**16))
def test_binary_ops_match_torch_with_broadcasting(torch, shapes, op, seed):
    sa, sb = shapes.input_shapes
    a_np, b_np = _values(sa, seed), _values(sb, seed + 1)
    a, b = t64(a_np), t64(b_np)
    out = BINARY[op](a, b)
    ta, tb = as_torch(torch, a_np), as_torch(torch, b_np)
    tout = BINARY[op](ta, tb)
    assert_close(out, tout)
    g = np.random.default_rng(seed + 2).standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    assert_close(a.grad, ta.grad, what="grad a")
    assert_close(b.grad, tb.grad, what="grad b")


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("left", ["python", "numpy_scalar", "numpy_array"])
def test_constant_on_either_side(torch, op, left):
    x_np = _values((2, 3), 0)
    const = {"python": 1.5, "numpy_scalar": np.float64(1.5), "numpy_array": np.full((3,), 1.5)}[left]
    for order in ("left", "right"):
        x = t64(x_np)
        tx = as_torch(torch, x_np)
        tc = torch.tensor(const) if isinstance(const, np.ndarray) else float(const)
        if order == "left":
            out, tout = BINARY[op](const, x), BINARY[op](tc, tx)
        else:
            out, tout = BINARY[op](x, const), BINARY[op](tx, tc)
        assert isinstance(out, msn.Tensor)
        assert_close(out, tout)
        out.sum().backward()
        tout.sum().backward()
        assert_close(x.grad, tx.grad, what=f"{op} {left} {order}")


def test_python_scalar_keeps_float32():
    x = msn.tensor([1.0, 2.0])
    assert (2 * x).dtype == np.float32 and (x / 3.0).dtype == np.float32 and (x ** 2).dtype == np.float32


# Mixed dtypes: an operand is a tensor with dimensions, a zero-dimensional tensor or a Python
# number; PyTorch's type promotion decides the result's dtype (F.result_type), not NumPy's.
PROMOTION_DTYPES = [np.bool_, np.uint8, np.int32, np.int64, np.float32, np.float64]
OPERAND = st.one_of(st.tuples(st.sampled_from(["dims", "zero"]), st.sampled_from(PROMOTION_DTYPES)),
                    st.tuples(st.just("number"), st.sampled_from([True, 3, 0.5])))


def _promotion_operand(spec, make):
    kind, value = spec
    if kind == "number":
        return value
    data = np.array([1, 2, 3]) if kind == "dims" else np.array(2)
    return make(data.astype(value) if value is not np.bool_ else data > 0)


@given(op=st.sampled_from(sorted(BINARY) + ["pow"]), a=OPERAND, b=OPERAND)
def test_mixed_dtypes_promote_as_in_pytorch(torch, op, a, b):
    if a[0] == b[0] == "number":
        return
    fn = operator.pow if op == "pow" else BINARY[op]
    try:
        theirs = fn(_promotion_operand(a, torch.tensor), _promotion_operand(b, torch.tensor))
    except (RuntimeError, NotImplementedError):     # - with a bool, bool ** bool: PyTorch refuses
        with pytest.raises(TypeError):
            fn(_promotion_operand(a, msn.tensor), _promotion_operand(b, msn.tensor))
        return
    ours = fn(_promotion_operand(a, msn.tensor), _promotion_operand(b, msn.tensor))
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (a, b)
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy().astype(np.float64), theirs.double().numpy(), rtol=1e-6)
    if op != "div":                                            # true division: float32 unless floating
        assert F.result_type(_promotion_operand(a, msn.tensor), _promotion_operand(b, msn.tensor)) == ours.dtype


def test_an_integer_tensor_and_a_float_number_give_float32_as_in_pytorch():
    x = msn.tensor(np.array([1, 2, 3]))                        # int64
    assert (x + 0.5).dtype == np.float32 and np.allclose((x + 0.5).numpy(), [1.5, 2.5, 3.5])
    assert np.allclose((x ** 0.5).numpy(), np.sqrt([1, 2, 3]))  # not x ** 0 (0.5 cast to int)
    assert (x / x).dtype == np.float32                         # true division: floats
    assert (msn.tensor(np.array([True, False])) + 1).dtype == np.int64
    for bool_operand in (np.array([True, False]), np.True_, True):         # a mask on either side
        with pytest.raises(TypeError, match="not defined for a bool operand"):
            bool_operand - x
        with pytest.raises(TypeError, match="not defined for a bool operand"):
            x - bool_operand


def test_a_zero_dimensional_float64_keeps_float32_and_its_gradient_float32():
    w = msn.tensor([1.0, 2.0], requires_grad=True)             # float32
    y = w * msn.tensor(np.array(3.0))                          # float64, no dimensions
    assert y.dtype == np.float32
    y.sum().backward()
    assert w.grad.dtype == np.float32 and np.allclose(w.grad.numpy(), 3.0)
    z = w * msn.tensor(np.array([3.0, 3.0]))                   # float64 with dimensions: float64
    assert z.dtype == np.float64
    z.sum().backward()
    assert w.grad.dtype == np.float32


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), seed=st.integers(0, 2**16),
       exponent=st.sampled_from([2.0, 3.0, 0.5, -1.0]))
def test_pow_both_orders_match_torch(torch, shape, seed, exponent):
    base_np = _values(shape, seed, positive=True)
    x, tx = t64(base_np), as_torch(torch, base_np)
    out, tout = x ** exponent, tx ** exponent
    assert_close(out, tout)
    out.sum().backward(); tout.sum().backward()
    assert_close(x.grad, tx.grad)
    x, tx = t64(base_np), as_torch(torch, base_np)
    out, tout = 2.0 ** x, 2.0 ** tx
    assert_close(out, tout)
    out.sum().backward(); tout.sum().backward()
    assert_close(x.grad, tx.grad)
    a, b = t64(base_np), t64(base_np[::-1].copy())
    ta, tb = as_torch(torch, base_np), as_torch(torch, base_np[::-1].copy())
    (a ** b).sum().backward(); (ta ** tb).sum().backward()
    assert_close(a.grad, ta.grad); assert_close(b.grad, tb.grad)


@pytest.mark.parametrize("name", ["exp", "log", "sqrt", "neg", "relu", "sigmoid", "tanh", "abs"])
def test_unary_ops_gradcheck_and_torch(torch, name):
    positive = name in ("log", "sqrt")
    x_np = _values((3, 4), 3, positive=positive)
    fn = {"neg": lambda t: -t, "exp": F.exp, "log": F.log, "sqrt": F.sqrt, "relu": F.relu,
          "sigmoid": F.sigmoid, "tanh": F.tanh, "abs": F.abs}[name]
    tfn = {"neg": lambda t: -t}.get(name, getattr(torch, name))
    assert gradcheck(fn, [t64(x_np)])
    x, tx = t64(x_np), as_torch(torch, x_np)
    out, tout = fn(x), tfn(tx)
    assert_close(out, tout)
    g = np.random.default_rng(0).standard_normal(x_np.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


def test_sigmoid_is_stable_for_large_inputs():
    y = F.sigmoid(msn.tensor([-1000.0, 0.0, 1000.0], dtype=np.float64))
    np.testing.assert_allclose(y.numpy(), [0.0, 0.5, 1.0])


@given(a_shape=st.sampled_from([((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                                ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 2))]),
       seed=st.integers(0, 2**16))
def test_matmul_matches_torch(torch, a_shape, seed):
    sa, sb = a_shape
    a_np, b_np = _values(sa, seed), _values(sb, seed + 1)
    a, b = t64(a_np), t64(b_np)
    ta, tb = as_torch(torch, a_np), as_torch(torch, b_np)
    out, tout = a @ b, ta @ tb
    assert_close(out, tout)
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(a.grad, ta.grad); assert_close(b.grad, tb.grad)
    assert gradcheck(lambda x, y: x @ y, [t64(a_np), t64(b_np)])


def test_matmul_rejects_misaligned_shapes():
    with pytest.raises(ValueError, match="do not align"):
        msn.tensor(np.zeros((2, 3))) @ msn.tensor(np.zeros((4, 2)))


@st.composite
def _shape_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    dims = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True)
                          .map(tuple)))
    return shape, dims, draw(st.booleans()), draw(st.integers(0, 2**16))


@given(case=_shape_and_dims(), reduction=st.sampled_from(["sum", "mean", "max"]))
def test_reductions_match_torch(torch, case, reduction):
    shape, dims, keepdim, seed = case
    x_np = np.random.default_rng(seed).permutation(np.arange(np.prod(shape), dtype=np.float64)).reshape(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    out = x.amax(dims, keepdim) if reduction == "max" else getattr(x, reduction)(dims, keepdim)
    if reduction == "max":
        tout = torch.amax(tx, dim=() if dims is None else dims, keepdim=keepdim)
    elif dims is None:
        tout = getattr(tx, reduction)()
        if keepdim:
            tout = tout.reshape((1,) * len(shape))
    else:
        tout = getattr(tx, reduction)(dim=dims, keepdim=keepdim)
    assert_close(out, tout)
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("method", ["max", "min"])
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_max_along_a_dim_is_torchs_values_and_indices(torch, method, shape, data):
    """Tensor.max(dim) (and min(dim), which had one fixed case) returns torch's (values, indices)
    pair, ties and NaN included: the first maximum's index, and the gradient goes to it alone
    (amax would share it between ties)."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    x_np = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 2.0, np.nan])))
    x, tx = t64(x_np), as_torch(torch, x_np)
    values, indices = getattr(x, method)(dim, keepdim)
    tvalues, tindices = getattr(tx, method)(dim, keepdim)
    assert_close(values, tvalues)
    assert indices.dtype == np.int64 and (indices.numpy() == tindices.numpy()).all()
    assert getattr(x, method)(dim, keepdim).values is not None
    assert getattr(x, method)(dim).indices.shape == tuple(getattr(tx, method)(dim).indices.shape)
    g = np.random.default_rng(0).standard_normal(values.shape)
    values.backward(g); tvalues.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


def test_max_takes_one_dim_and_amax_several():
    x = msn.tensor(np.arange(6.0).reshape(2, 3))
    assert x.max().item() == 5 and x.amax().item() == 5
    assert x.amax((0, 1)).item() == 5 and x.amax(1).numpy().tolist() == [2, 5]
    with pytest.raises(TypeError, match="max: dim must be one int"):
        x.max((0, 1))
    with pytest.raises(TypeError, match="keepdim needs a dim"):
        x.max(keepdim=True)


def test_comparisons_and_truth_follow_torch(torch):
    """== and != compare element by element (they were identity: `t != 255` was True, so a mask
    made with it masked nothing); a one-element tensor's truth is its value (bool(tensor([False]))
    was True, through len); tensors still hash by identity, as torch's."""
    t = msn.tensor(np.array([1, 255, 3]))
    assert (t != 255).numpy().tolist() == [True, False, True] and (t == 255).numpy().tolist() == [False, True, False]
    assert ((t == msn.tensor(np.array([1, 0, 3]))).numpy() == (torch.tensor([1, 255, 3]) == torch.tensor([1, 0, 3])).numpy()).all()
    assert (t == None) is False and (t != "x") is True                  # noqa: E711  (not an array: identity)
    assert not msn.tensor([False]) and msn.tensor([2.0]) and not msn.tensor(0.0)
    for bad in (msn.tensor([1.0, 2.0]), msn.tensor(np.zeros(0))):
        with pytest.raises(RuntimeError, match="Boolean value of Tensor with"):
            bool(bad)
    assert len({t, t, msn.tensor([1])}) == 2 and {t: 1}[t] == 1
    assert t.numel() == 3 and t.dim() == 1


def test_in_place_operators_change_the_tensor_as_torchs(torch):
    """x -= y changes x (every alias sees it), as in torch; it rebound the name before, so a
    hand-written SGD step under no_grad changed no weight. While autograd records, a tensor that
    requires grad is refused; the shape and a float-into-integer cast are refused as torch refuses them."""
    w = msn.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    alias = w
    (w * w).sum().backward()
    with msn.no_grad():
        w -= 0.1 * w.grad
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    (tw * tw).sum().backward()
    with torch.no_grad():
        tw -= 0.1 * tw.grad
    assert alias is w and (w.numpy() == tw.detach().numpy()).all()
    with pytest.raises(RuntimeError, match="requires grad is not recorded by autograd here"):
        w += 1
    x = msn.tensor(np.array([1, 2], np.int64))
    x *= 3
    x += msn.tensor(np.array([1, 1], np.uint8))
    assert x.numpy().tolist() == [4, 7] and x.dtype == np.int64
    for bad, message in ((lambda: x.__itruediv__(2), "cannot be cast"), (lambda: x.__iadd__(np.ones((2, 2))), "shape")):
        with pytest.raises(RuntimeError, match=message):
            bad()
    y = msn.tensor(np.ones(2, np.float32))
    y /= 4
    y **= 2
    assert y.numpy().tolist() == [0.0625, 0.0625]


def test_no_grad_is_also_a_decorator():
    @msn.no_grad()
    def doubled(t):
        return t * 2

    x = msn.tensor([1.0], requires_grad=True)
    assert not doubled(x).requires_grad and (x * 2).requires_grad and doubled.__name__ == "doubled"


def test_max_splits_gradient_between_ties_like_amax(torch):
    x = t64([1.0, 3.0, 3.0])
    x.max().backward()
    tx = torch.tensor([1.0, 3.0, 3.0], dtype=torch.float64, requires_grad=True)
    torch.amax(tx).backward()
    assert_close(x.grad, tx.grad)


def test_reduction_dim_out_of_range_is_clear():
    with pytest.raises(IndexError, match=r"dim=3 is out of range .*\(valid: -2 to 1\)"):
        msn.tensor(np.zeros((2, 2))).sum(dim=3)


@given(seed=st.integers(0, 2**16))
def test_shape_ops_match_torch(torch, seed):
    x_np = np.random.default_rng(seed).standard_normal((2, 3, 4))
    cases = [
        (lambda t: t.reshape(6, 4), lambda t: t.reshape(6, 4)),
        (lambda t: t.view(-1, 2), lambda t: t.view(-1, 2)),
        (lambda t: t.permute(2, 0, 1), lambda t: t.permute(2, 0, 1)),
        (lambda t: t.transpose(0, 2), lambda t: t.transpose(0, 2)),
        (lambda t: t.flatten(1), lambda t: t.flatten(1)),
        (lambda t: t[1, :, ::2], lambda t: t[1, :, ::2]),
        (lambda t: t[..., 1:3], lambda t: t[..., 1:3]),
        (lambda t: t[np.array([0, 1, 1])], lambda t: t[torch.tensor([0, 1, 1])]),
        (lambda t: t[:, np.array([2, 0, 2, 2])], lambda t: t[:, torch.tensor([2, 0, 2, 2])]),
        (lambda t: t[np.array([0, 1]), np.array([2, 2])], lambda t: t[torch.tensor([0, 1]), torch.tensor([2, 2])]),
    ]
    for ours, theirs in cases:
        x, tx = t64(x_np), as_torch(torch, x_np)
        out, tout = ours(x), theirs(tx)
        assert_close(out, tout)
        g = np.random.default_rng(seed).standard_normal(out.shape)
        out.backward(g); tout.backward(torch.tensor(g))
        assert_close(x.grad, tx.grad)


def test_getitem_with_repeated_indices_accumulates():
    x = t64([1.0, 2.0, 3.0])
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])


@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4), dim=st.integers(0, 2), seed=st.integers(0, 99))
def test_cat_and_stack_match_torch(torch, sizes, dim, seed):
    rng = np.random.default_rng(seed)
    parts = []
    for n in sizes:
        shape = [2, 3, 2]
        shape[dim] = n
        parts.append(rng.standard_normal(shape))
    xs, txs = [t64(p) for p in parts], [as_torch(torch, p) for p in parts]
    out, tout = msn.cat(xs, dim), torch.cat(txs, dim)
    assert_close(out, tout)
    g = rng.standard_normal(out.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    for x, tx in zip(xs, txs):
        assert_close(x.grad, tx.grad)
    same = [rng.standard_normal((2, 3)) for _ in sizes]
    xs, txs = [t64(p) for p in same], [as_torch(torch, p) for p in same]
    out, tout = msn.stack(xs, dim), torch.stack(txs, dim)
    assert_close(out, tout)
    g = rng.standard_normal(out.shape)
    out.backward(g); tout.backward(torch.tensor(g))
    for x, tx in zip(xs, txs):
        assert_close(x.grad, tx.grad)


def test_cat_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="tensor 1 has shape"):
        msn.cat([msn.tensor(np.zeros((2, 3))), msn.tensor(np.zeros((3, 3)))], dim=1)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), seed=st.integers(0, 2**16),
       fn=st.sampled_from(["softmax", "log_softmax"]), scale=st.sampled_from([1.0, 100.0]))
def test_softmax_family_matches_torch(torch, shape, seed, fn, scale):
    x_np = np.random.default_rng(seed).standard_normal(shape) * scale
    dim = seed % len(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    out, tout = getattr(F, fn)(x, dim), getattr(torch, fn)(tx, dim)
    assert np.all(np.isfinite(out.numpy()))
    assert_close(out, tout)
    g = np.random.default_rng(seed).standard_normal(shape)
    out.backward(g); tout.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


def test_gradcheck_for_every_basic_op():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2, (2, 3)), rng.uniform(0.5, 2, (3,))
    for fn in [lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: x / y,
               lambda x, y: x ** y, lambda x, y: msn.cat([x, y.reshape(1, 3)], 0),
               lambda x, y: msn.stack([x[0], y], 1), lambda x, y: (x * y).sum(1, keepdim=True),
               lambda x, y: (x + y).mean(0), lambda x, y: (x * y).max(1).values, lambda x, y: (x * y).amax(1),
               lambda x, y: F.softmax(x * y, 1), lambda x, y: F.log_softmax(x + y, 0),
               lambda x, y: x.permute(1, 0).reshape(-1) * 2, lambda x, y: -x * y,
               lambda x, y: x[np.array([1, 0, 1])] * y, lambda x, y: x[:, 1:] @ y[:2],
               lambda x, y: x.exp() + y.log() + y.sqrt(), lambda x, y: x.transpose(0, 1) / y[:, None]]:
        assert gradcheck(fn, [t64(a), t64(b)])


def test_a_python_int_outside_an_integer_dtype_is_refused_not_wrapped(torch):
    x = msn.tensor(np.array([1, 2], np.uint8))
    assert (torch.tensor([1, 2], dtype=torch.uint8) * 300).tolist() == [44, 88]    # PyTorch wraps
    for number in (300, -1, 256):
        for fn in (operator.add, operator.sub, operator.mul):
            with pytest.raises(OverflowError, match=rf"the number {number} does not fit uint8.*0 to 255"):
                fn(x, number)
            with pytest.raises(OverflowError, match="does not fit uint8"):
                fn(number, x)
    with pytest.raises(OverflowError, match="does not fit int64"):
        msn.tensor(np.array([1, 2])) + 2 ** 70
    assert (x + 255).numpy().tolist() == [0, 1]          # in range: uint8 arithmetic, as PyTorch's
    assert (x + 300.0).dtype == np.float32                # a float promotes: nothing to fit
    assert (msn.tensor(np.array([True])) + 300).dtype == np.int64


@pytest.mark.parametrize("dtypes", [(np.float32, np.int64), (np.float32, np.float64), (np.int32, np.int64),
                                    (np.bool_, np.uint8), (np.uint8, np.int32)])
def test_cat_and_stack_of_mixed_dtypes_promote_as_in_pytorch(torch, dtypes):
    """NumPy would make float64 of float32 and int64; PyTorch keeps float32 (the old code took NumPy's)."""
    arrays = [np.ones((2, 3)).astype(d) for d in dtypes]
    for ours_fn, torch_fn in ((F.cat, torch.cat), (F.stack, torch.stack)):
        ours = ours_fn([msn.tensor(a) for a in arrays])
        theirs = torch_fn([torch.tensor(a) for a in arrays])
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    x = msn.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = msn.tensor(np.ones((2, 3)), requires_grad=True)                  # float64
    F.cat([x, y]).sum().backward()
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float64


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
@pytest.mark.parametrize("empty", [(), []])
def test_an_empty_dim_reduces_every_axis_as_in_pytorch(torch, op, empty):
    x_np = np.arange(6.0).reshape(2, 3)
    ours = getattr(F, op)(t64(x_np), dim=empty)
    theirs = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax}[op](torch.tensor(x_np), dim=empty)
    assert ours.shape == tuple(theirs.shape) == () and ours.item() == theirs.item()


def test_a_slice_step_below_one_is_refused_as_in_pytorch(torch):
    x = t64(np.arange(6.0))
    with pytest.raises(ValueError):
        torch.arange(6.0)[::-1]
    for step in (-1, 0):
        with pytest.raises(ValueError, match=f"a slice step must be >= 1, got {step}"):
            x[::step]
    assert x[::2].numpy().tolist() == [0, 2, 4]


def test_softmax_family_is_finite_and_right_for_huge_logits():
    """Logits past the float64 limit of exp (about 709): the shift by the maximum keeps softmax and
    log-softmax finite and right (the random logits above stay near 400, where an unshifted exp
    passed too)."""
    x = t64(np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1001.0, -3000.0]]))
    e = np.exp([0.0, -1.0])
    np.testing.assert_allclose(F.softmax(x, 1).numpy()[:, :2], np.tile(e / e.sum(), (2, 1)), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, 1).numpy()[:, :2], np.tile(np.log(e / e.sum()), (2, 1)), rtol=1e-12)


@pytest.mark.parametrize("fn, arrays", [
    (lambda x: x ** 0, [[0.0, 4.0]]),
    (lambda x, e: x ** e, [[0.0, 2.0, 0.0, -1.0, 0.0], [0.0, 3.0, -1.0, 2.0, 0.5]]),
    (lambda x: x ** x, [[0.5, 2.0, 0.0]]),
    (lambda t: 0.0 ** t, [[0.0, 2.0, 1.0]]),
    (lambda t: 2.0 ** t, [[0.0, 2.0, 1.0]]),
])
def test_pow_gradients_at_a_zero_base_or_exponent_as_torch(torch, fn, arrays):
    """d(a**b)/da is 0 where b == 0 and d(a**b)/db is 0 where a == 0 and b >= 0 (PyTorch's
    rules): the formulas gave 0 * inf and 0 * log 0, NaN, so x ** 0 at x = 0 made a NaN
    gradient (a focal-loss-like (1 - p) ** gamma with gamma 0 and p = 1)."""
    ours = [msn.tensor(np.array(a), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(np.array(a), requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # and silently, as torch
        fn(*ours).sum().backward()
    fn(*theirs).sum().backward()
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("bounds", [dict(min=0.0), dict(max=2.0), dict(min=-1.0, max=1.0), dict(min=2.0, max=1.0),
                                    dict(min=0.5, max=3.0), dict(min=-2.0, max=7.0)])
def test_clamp_values_and_gradient_as_torch(torch, bounds):
    """Tensor.clamp / clip: the values (NaN kept, min > max giving max) and the gradient, which
    passes where min <= x <= max, the bounds included, as torch.clamp's."""
    x = np.array([[1.0, -2.0, 3.0], [0.5, np.nan, 7.0]])
    ours, theirs = msn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours.clamp(**bounds), theirs.clamp(**bounds)
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    assert gradcheck(lambda t: t.clip(**bounds), [t64(np.array([0.3, -1.7, 2.6, 5.1]))])


def test_clamp_argmax_keepdim_float_and_int_as_torch(torch):
    """The modules review's finds: no clamp, pow, float() or int() on a tensor; argmax and argmin
    with keepdim but no dim dropped keepdim."""
    i = np.array([1, 2, 3])
    assert msn.tensor(i).clamp(min=1.5).tolist() == torch.tensor(i).clamp(min=1.5).tolist()   # promoted
    assert msn.tensor(i).clamp(2).dtype == np.int64
    with pytest.raises(ValueError, match="clamp: give min, max or both"):
        msn.tensor(i).clamp()
    with pytest.raises(TypeError, match="clamp: min must be a number"):
        msn.tensor(i).clamp(min="0")
    u8 = np.array([1, 2], np.uint8)                    # torch wraps min=-1 to 255 (clamping all to 255)
    assert torch.tensor(u8).clamp(min=-1).tolist() == [255, 255]
    with pytest.raises(OverflowError, match="clamp: the number -1 does not fit uint8"):
        msn.tensor(u8).clamp(min=-1)
    assert msn.tensor(np.array([2.0, 3.0])).pow(2).tolist() == [4.0, 9.0]
    assert float(msn.tensor(2.5)) == 2.5 and int(msn.tensor(-2.7)) == int(torch.tensor(-2.7)) == -2
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for name in ("argmax", "argmin"):
        ours, theirs = getattr(msn.tensor(x), name)(keepdim=True), getattr(torch.tensor(x), name)(keepdim=True)
        assert ours.shape == tuple(theirs.shape) == (1, 1, 1) and ours.item() == theirs.item()


@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=5),
                    elements=st.floats(-5, 5, allow_nan=False)),
       lo=st.one_of(st.none(), st.floats(-4, 4)), hi=st.one_of(st.none(), st.floats(-4, 4)))
def test_clamp_matches_torch_on_drawn_tensors_and_bounds(torch, x, lo, hi):
    """Values, shape and gradient of clamp against torch.clamp on Hypothesis-drawn tensors and
    bounds (either missing, min > max, values on a bound)."""
    if lo is None and hi is None:
        return
    x = np.where(np.arange(x.size).reshape(x.shape) % 3 == 0, lo if lo is not None else hi, x)  # some on a bound
    ours, theirs = msn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours.clamp(lo, hi), theirs.clamp(lo, hi)
    assert y.shape == tuple(ty.shape) == x.shape
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    g = np.random.default_rng(0).standard_normal(x.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


# ---- from a mutation review: checks no test made before ----
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", [((1, 3), (2, 3)), ((1, 3, 1), (2, 3, 4)), ((2, 1, 4, 1), (3, 1, 5))])
def test_broadcast_gradients_on_fixed_shapes(torch, op, shapes):
    import operator
    fn = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}[op]
    rng = np.random.default_rng(0)
    a_np, b_np = (rng.uniform(0.5, 2.0, s) for s in shapes)
    a, b, ta, tb = t64(a_np), t64(b_np), as_torch(torch, a_np), as_torch(torch, b_np)
    fn(a, b).sum().backward()
    fn(ta, tb).sum().backward()
    assert_close(a.grad, ta.grad)
    assert_close(b.grad, tb.grad)


def test_bool_tensor_to_the_power_true_stays_bool(torch):
    ours, theirs = msn.tensor([True, False]) ** True, torch.tensor([True, False]) ** True
    assert ours.dtype == np.bool_ and theirs.dtype == torch.bool
    assert ours.numpy().tolist() == theirs.tolist()


def test_abs_gradient_at_zero_is_zero_as_torch(torch):
    x_np = np.array([-1.0, 0.0, 2.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    x.abs().sum().backward()
    tx.abs().sum().backward()
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("make, kind, message", [
    (lambda: msn.tensor(np.ones(3)) @ msn.tensor(np.array(2.0)), ValueError, "at least one dimension"),
    (lambda: msn.cat([msn.tensor(1.0), msn.tensor(2.0)]), ValueError, "zero-dimensional"),
    (lambda: msn.tensor([1, 2]).mean(), TypeError, "mean: input must be floating point"),
    (lambda: msn.tensor([True, False]).clamp(min=0), TypeError, "clamp: input must be a number tensor"),
    (lambda: msn.tensor(np.zeros((0, 3))).max(0), ValueError, "max over dim=0 of an empty axis"),
    (lambda: msn.tensor(np.zeros((0, 3))).amax(0), ValueError, "max over dim=0 of an empty axis"),
    (lambda: -msn.tensor([True]), TypeError, "neg: input must be a number tensor"),
    (lambda: msn.tensor(np.zeros(6)).reshape(-2, -3), ValueError, r"reshape: cannot reshape"),
])
def test_error_checks_that_had_no_test(make, kind, message):
    with pytest.raises(kind, match=message):
        make()


def test_a_zero_dim_tensor_and_a_number_keep_the_tensors_dtype(torch):
    for dtype, tdtype in ((np.int32, torch.int32), (np.uint8, torch.uint8)):
        ours = msn.tensor(np.array(1, dtype)) + 5
        theirs = torch.tensor(1, dtype=tdtype) + 5
        assert ours.dtype == dtype and theirs.dtype == tdtype


def test_a_numpy_scalar_counts_as_a_python_number(torch):
    assert (msn.tensor([1, 2]) * np.float32(1.5)).dtype == np.float32
    assert (torch.tensor([1, 2]) * np.float32(1.5)).dtype == torch.float32
    with pytest.raises(OverflowError, match="does not fit uint8"):   # torch wraps it to 44; we refuse
        msn.tensor(np.array([1, 2], np.uint8)) * np.int64(300)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.uint16])
@pytest.mark.parametrize("dim", [None, 0])
def test_an_integer_or_bool_sum_is_int64_as_pytorch(torch, dtype, dim):
    """PyTorch sums integers and booleans in int64. NumPy keeps an unsigned sum unsigned
    (uint8 -> uint64), where a later subtraction wraps around: the old code gave uint64 and
    ``sum - 5`` = 18446744073709551614 for a sum of 3."""
    values = np.array([1, 2, 0, 1], dtype)
    ours = msn.tensor(values).sum(dim)
    theirs = torch.tensor(values).sum() if dim is None else torch.tensor(values).sum(dim)
    assert ours.dtype == np.int64 and str(theirs.dtype) == "torch.int64"
    assert (ours - 5).item() == (theirs - 5).item()


@pytest.mark.parametrize("call", ["sum(0)", "sum(-1)", "sum((0,))", "mean(0)", "mean(-1)", "amax(0)", "amin(-1)",
                                  "max(0).values", "min(-1).values", "transpose(0, -1)", "transpose(0, 0)"])
def test_a_zero_dim_tensor_reduces_and_transposes_over_dim_0_or_minus_1(torch, call):
    """On a 0-d tensor PyTorch takes dim 0 or -1 (its one value: the value itself, gradient 1);
    the old code let NumPy fail (AxisError, IndexError)."""
    ours = msn.tensor(np.array(3.0), requires_grad=True)
    theirs = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    y, ty = eval("ours." + call), eval("theirs." + call)
    assert y.shape == tuple(ty.shape) == ()
    assert y.item() == ty.item()
    (y * 2).backward()
    (ty * 2).backward()
    assert ours.grad.item() == theirs.grad.item() == 2.0


def test_a_zero_dim_tensor_argmax_and_max_indices_along_dim_0(torch):
    s, ts = msn.tensor(np.array(3.0)), torch.tensor(3.0)
    assert s.argmax(0).item() == ts.argmax(0).item() == 0 and s.argmax(-1).dtype == np.int64
    assert s.max(0).indices.item() == ts.max(0).indices.item() == 0 and s.max(0).indices.shape == ()


@pytest.mark.parametrize("call", ["sum(1)", "mean(-2)", "transpose(0, 1)", "argmax(1)", "max(1)"])
def test_a_zero_dim_tensor_refuses_any_other_dim(call):
    with pytest.raises(IndexError, match="out of range for a tensor with 0 dimensions"):
        eval("msn.tensor(np.array(3.0))." + call)


def test_integer_powers_with_negative_exponents_are_pytorchs(torch):
    """PyTorch raises integers to negative integer exponents of a tensor (1 for a base of 1,
    +-1 for -1, else 0); NumPy refuses with an unnamed ValueError, which the old code let out."""
    a, b = np.array([1, 2, -1, -1, 0, 3, -2, 2]), np.array([-1, -1, -1, -2, -1, -3, -1, 3])
    np.testing.assert_array_equal((msn.tensor(a) ** msn.tensor(b)).numpy(), (torch.tensor(a) ** torch.tensor(b)).numpy())
    np.testing.assert_array_equal((2 ** msn.tensor(np.array([-1, 2]))).numpy(), [0, 4])
    assert (msn.tensor(np.array([1, 2], np.uint8)) ** msn.tensor(np.array([2, 3], np.uint8))).numpy().tolist() == [1, 8]


def test_an_integer_tensor_to_a_negative_number_power_is_refused_by_name():
    with pytest.raises(ValueError, match="pow: an integer tensor to the negative integer power -1"):
        msn.tensor(np.array([1, 2])) ** -1


@pytest.mark.parametrize("method", ["argmax", "argmin"])
def test_argmax_and_argmin_of_nothing_or_of_bools_are_refused_by_name(torch, method):
    """PyTorch: IndexError for no values (or a reduced dim of size 0), and no bool input; the old
    code let NumPy's 'attempt to get argmax of an empty sequence' out, for argmin too."""
    empty = msn.tensor(np.zeros((0, 3), np.float32))
    with pytest.raises(IndexError, match=f"^{method}: the tensor of shape \\(0, 3\\) has no values"):
        getattr(empty, method)()
    with pytest.raises(IndexError, match=f"^{method}: dim=0 of the tensor of shape \\(0, 3\\) has size 0"):
        getattr(empty, method)(0)
    assert getattr(empty, method)(1).shape == tuple(getattr(torch.zeros((0, 3)), method)(1).shape) == (0,)
    with pytest.raises(TypeError, match=f"^{method}: not defined for a bool tensor"):
        getattr(msn.tensor(np.array([True, False])), method)()


def test_matmul_refuses_bool_tensors():
    with pytest.raises(TypeError, match="matmul: not defined for bool tensors"):
        msn.tensor(np.array([True, False])) @ msn.tensor(np.array([True, True]))


def test_clamp_refuses_a_bound_its_float_dtype_cannot_hold_and_selects_the_gradient(torch):
    """PyTorch: 'value cannot be converted to type c10::Half without overflow' (the old code gave
    inf); and its backward selects, so an inf or NaN gradient outside [min, max] gives 0."""
    with pytest.raises(OverflowError, match="clamp: min=1000000.0 cannot be converted to float16"):
        msn.tensor(np.zeros(3, np.float16)).clamp(min=1e6)
    x = msn.tensor(np.array([0.0, 5.0, 1.5]), requires_grad=True)
    x.clamp(1, 2).backward(np.array([np.inf, np.nan, 3.0]))
    tx = torch.tensor([0.0, 5.0, 1.5], dtype=torch.float64, requires_grad=True)
    tx.clamp(1, 2).backward(torch.tensor([np.inf, np.nan, 3.0], dtype=torch.float64))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_float16_sums_over_any_axis_and_broadcast_gradients_add_up_in_float32(torch):
    """PyTorch sums float16 in float32 and rounds once; NumPy adds float16 along a non-last axis
    in float16, whose count stops at 2048: 5000 x 0.1 summed to 256, in sum(0) and in the
    gradient of a broadcast operand."""
    c = np.full((5000, 2), 0.1, np.float16)
    np.testing.assert_array_equal(msn.tensor(c).sum(0).numpy(), torch.tensor(c).sum(0).numpy())
    x = msn.tensor(np.ones(2, np.float16), requires_grad=True)
    (x * msn.tensor(c)).sum().backward()
    tx = torch.ones(2, dtype=torch.float16, requires_grad=True)
    (tx * torch.tensor(c)).sum().backward()
    assert x.grad.dtype == np.float16
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# ---- mutation review of stop 40's changes
def test_float16_gradient_of_an_operand_stretched_along_an_axis_adds_up_in_float32(torch):
    """unbroadcast's keepdims sum (a (1, 2) operand against (5000, 2)) in float32 too, as PyTorch;
    in float16 5000 x 0.1 stops at 256."""
    c = np.full((5000, 2), 0.1, np.float16)
    x = msn.tensor(np.ones((1, 2), np.float16), requires_grad=True)
    (x * msn.tensor(c)).sum().backward()
    tx = torch.ones((1, 2), dtype=torch.float16, requires_grad=True)
    (tx * torch.tensor(c)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_an_integer_to_the_power_zero_is_one(torch):
    a, b = np.array([2, 3, 0, -2, 1, -1]), np.zeros(6, np.int64)
    np.testing.assert_array_equal((msn.tensor(a) ** msn.tensor(b)).numpy(), (torch.tensor(a) ** torch.tensor(b)).numpy())
    assert (msn.tensor(a) ** 0).numpy().tolist() == [1] * 6


def test_clamp_keeps_a_float32_tensor_float32_for_numpy_float64_bounds():
    """The bounds are made in x's dtype: a NumPy float64 scalar (strong in NumPy 2's promotion) would make y float64."""
    for kwargs in ({"min": np.float64(0.5)}, {"max": np.float64(1.5)}):
        y = msn.tensor(np.array([0.0, 2.0], np.float32)).clamp(**kwargs)
        assert y.dtype == np.float32


def test_device_index_positions_are_checked_for_unsigned_arrays_and_after_a_boolean_mask(cupy):
    """The range check counts the axes a boolean mask takes, and checks unsigned positions too."""
    for xp in (np, cupy):
        x = msn.tensor(xp.arange(30.0).reshape(2, 3, 5))
        on = msn.backend.get_array_module(x.data)         # (a NumPy session makes x a host tensor)
        with pytest.raises(IndexError, match=r"does not fit a tensor of shape \(2, 3, 5\)"):
            x[on.asarray([5], dtype=np.uint16)]           # (a uint8 index is refused: a mask to PyTorch)
        mask = on.asarray([[True, False, True], [False, True, False]])
        assert x[mask, on.asarray([4, 4, 4])].numpy().tolist() == [4.0, 14.0, 24.0]


def _f16_ours_grad(fn, x, *others):
    """``x``'s float16 gradient of ``fn(x, *others)`` from an upstream gradient of ones."""
    t = msn.tensor(x, requires_grad=True)
    y = fn(t, *others)
    y.backward(np.ones(y.shape, np.float16) if y.ndim else None)
    assert t.grad.dtype == np.float16
    return t.grad.numpy()


def _f16_torch_grad(torch, fn, x, *others):
    t = torch.tensor(x, requires_grad=True)
    y = fn(t, *others)
    y.backward(torch.ones_like(y))
    return t.grad.numpy()


@pytest.mark.parametrize("a, b", [(300.0, 300.0),       # b*b = 90000: inf in float16, so db was -0
                                  (0.01, 0.001)])      # b*b = 1e-6: a float16 subnormal, 5% off
def test_float16_divisor_gradient_does_not_square_the_divisor_in_float16(torch, a, b):
    """db of a / b is -g * a / b**2 in exact arithmetic. Computed as -g * a / (b * b) in
    float16, b * b overflows past 256 (the gradient became -0) and loses precision below
    about 0.008 (subnormal); PyTorch computes -g * (a / b) / b."""
    a16, b16 = np.array([a], np.float16), np.array([b], np.float16)
    exact = -float(a16[0]) / float(b16[0]) ** 2
    ours = _f16_ours_grad(lambda bb, aa: msn.tensor(aa) / bb, b16, a16)
    theirs = _f16_torch_grad(torch, lambda bb, aa: torch.tensor(aa) / bb, b16, a16)
    np.testing.assert_allclose(theirs.astype(np.float64), exact, rtol=1e-3)
    np.testing.assert_allclose(ours.astype(np.float64), exact, rtol=1e-3)


def test_float16_gradient_of_a_number_divided_by_a_tensor_survives_a_large_divisor(torch):
    """1 / x for x = 600: dx = -1/360000, a float16 subnormal; x * x = 360000 is inf in float16."""
    x = np.array([600.0, 1000.0], np.float16)
    ours = _f16_ours_grad(lambda t: 1.0 / t, x)
    theirs = _f16_torch_grad(torch, lambda t: 1.0 / t, x)
    assert (ours != 0).all()
    np.testing.assert_allclose(ours.astype(np.float64), -1.0 / x.astype(np.float64) ** 2, rtol=0.05)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("axis", [None, 1])
def test_float16_mean_gradient_of_more_than_65504_values_is_not_zero(torch, axis):
    """dx = g / n with n = 70000: n is inf in float16, and the gradient became 0. PyTorch divides
    in float32 and rounds once: 1/70000, a float16 subnormal."""
    x = np.zeros((2, 70000), np.float16)
    ours = _f16_ours_grad(lambda t: t.mean(axis) if axis is not None else t.mean(), x)
    theirs = _f16_torch_grad(torch, lambda t: t.mean(axis) if axis is not None else t.mean(), x)
    n = 70000 if axis is not None else 140000
    assert (ours == np.float16(1 / n)).all()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("shape, axis", [((5000, 2), 0),      # ties counted along a non-last axis: stops at 2048
                                         ((70000,), None)])   # 70000 ties: the count is inf in float16
def test_float16_amax_gradient_shared_between_many_ties_counts_them_in_float32(torch, shape, axis):
    """amax splits g evenly between tied maxima: g / (number of ties). The tie count was a float16
    sum, which stops counting at 2048 along a non-last axis (each tie got 1/2048, not 1/5000)
    and is inf past 65504 (each got 0)."""
    x = np.full(shape, 3.0, np.float16)
    fn = (lambda t: t.amax(axis)) if axis is not None else (lambda t: t.amax())
    ours = _f16_ours_grad(fn, x)
    theirs = _f16_torch_grad(torch, fn, x)
    n = shape[0]
    np.testing.assert_allclose(ours.astype(np.float64), 1.0 / n, rtol=1e-3, atol=2.0 ** -25)   # (1/70000: subnormal)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("method", ["max", "min"])
@pytest.mark.parametrize("values", [[1.0, np.nan, 3.0], [np.nan, 2.0, np.nan], [[4.0, np.nan], [0.0, 5.0]]])
def test_max_and_min_of_all_values_give_the_gradient_to_the_nans_as_torch(torch, method, values):
    """Tensor.max() / Tensor.min() without dim are torch.Tensor.max() / min(): their backward
    (evenly_distribute_backward) gives the gradient to the NaN(s), the value they returned, and 0
    elsewhere. amax's backward (ties = x == y, none of them for a NaN) gave 0 * inf = NaN to every
    element, which guarantees.md rules out (a NaN reaches only the inputs PyTorch's reaches)."""
    x_np = np.array(values)
    x, tx = t64(x_np), as_torch(torch, x_np)
    getattr(x, method)().backward()
    getattr(tx, method)().backward()
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("shape, start, end", [((0, 2, 3), 1, -1), ((0, 3), 1, 1), ((0, 3), -1, -1),
                                               ((2, 0, 3), 1, 2), ((4, 0), 1, -1)])
def test_flatten_of_a_tensor_with_no_elements_as_torch(torch, shape, start, end):
    """An empty batch flows through every op (guarantees.md): x.flatten(1) of an (N=0, C, H) batch
    is (0, C*H) in PyTorch. flatten built reshape(..., -1, ...), which refuses a -1 beside a 0."""
    x_np = np.zeros(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    out, tout = x.flatten(start, end), tx.flatten(start, end)
    assert out.shape == tuple(tout.shape)
    out.backward(np.zeros(out.shape))
    assert x.grad.shape == shape


def test_abs_gradient_at_nan_is_zero_as_torch(torch):
    """torch's abs backward is grad * sgn(x), and sgn(NaN) is 0 there; NumPy's sign(NaN) is NaN."""
    x_np = np.array([-1.0, np.nan, 0.0, 2.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    x.abs().sum().backward()
    tx.abs().sum().backward()
    assert_close(x.grad, tx.grad)


def test_the_mask_operators_the_sub_error_recommends_work_as_torch(torch):
    """`mask - 1` is refused 'for a mask use ~ (logical not) or ^ (logical exclusive or)'
    (guarantees.md says the same), so ~ and ^ must work on bool tensors, as in PyTorch."""
    a_np, b_np = np.array([True, False, True]), np.array([True, True, False])
    a, b = msn.tensor(a_np), msn.tensor(b_np)
    with pytest.raises(TypeError, match="use ~"):
        a - b
    ta, tb = torch.tensor(a_np), torch.tensor(b_np)
    assert (~a).numpy().tolist() == (~ta).tolist()
    assert (a ^ b).numpy().tolist() == (ta ^ tb).tolist()


@pytest.mark.parametrize("dtypes", [(np.bool_, np.bool_), (np.int64, np.int64), (np.uint8, np.bool_),
                                    (np.int32, np.int64)])
def test_bitwise_operators_on_integers_and_masks_as_torch(torch, dtypes):
    rng = np.random.default_rng(0)
    a_np, b_np = (rng.integers(0, 7, 6).astype(d) for d in dtypes)
    a, b, ta, tb = msn.tensor(a_np), msn.tensor(b_np), torch.tensor(a_np), torch.tensor(b_np)
    for ours, theirs in ((a & b, ta & tb), (a | b, ta | tb), (a ^ b, ta ^ tb), (~a, ~ta), (b & 3, tb & 3)):
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        assert ours.numpy().tolist() == theirs.tolist()
    with pytest.raises(TypeError, match=r"^and: the bitwise operators take bool or integer tensors"):
        msn.tensor(np.ones(2)) & a[:2]
    with pytest.raises(TypeError, match=r"^invert: ~ takes a bool or integer tensor"):
        ~msn.tensor(np.ones(2))


def test_amax_of_a_nan_gives_nan_everywhere_as_torch_without_a_warning(torch):
    """amax's ties are x == y, none for a NaN maximum: g / 0 * 0, NaN everywhere as PyTorch's, and
    no divide-by-zero warning (max() gives the gradient to the NaNs instead, above)."""
    x_np = np.array([1.0, np.nan, 3.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.amax().backward()
    tx.amax().backward()
    assert np.isnan(x.grad.numpy()).all() and torch.isnan(tx.grad).all()


@pytest.mark.parametrize("name, fn", [("log", lambda x: x.log()), ("sqrt", lambda x: x.sqrt()),
                                      ("exp", lambda x: x.exp()), ("rdiv", lambda x: 1 / x),
                                      ("div", lambda x: x / 0.0)])
def test_ieee_edges_give_torchs_values_without_numpy_warnings(torch, name, fn):
    """log 0, sqrt(-1), exp(1000), 1 / 0 and their gradients: PyTorch's inf and NaN, silently (NumPy
    warned 'divide by zero encountered in log', which pow already kept quiet)."""
    x_np = np.array([0.0, -1.0, 1000.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(x)
        y.backward(np.ones(3))
    ty = fn(tx)
    ty.backward(torch.ones(3, dtype=torch.float64))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("method, dtype", [("float", np.float32), ("double", np.float64), ("long", np.int64),
                                           ("int", np.int32), ("bool", np.bool_)])
def test_a_cast_to_the_dtype_it_has_is_the_tensor_itself_as_torch(torch, method, dtype):
    """torch's x.float() of a float32 tensor is x (writes through it show); ours was a copy."""
    ours, theirs = msn.tensor(np.zeros(3, dtype)), torch.from_numpy(np.zeros(3, dtype))
    assert (getattr(ours, method)() is ours) == (getattr(theirs, method)() is theirs) == True  # noqa: E712
    other = np.float64 if dtype != np.float64 else np.float32
    ours, theirs = msn.tensor(np.zeros(3, other)), torch.from_numpy(np.zeros(3, other))
    assert (getattr(ours, method)() is ours) == (getattr(theirs, method)() is theirs) == False  # noqa: E712


SHAPE_OPS = {
    "flatten()": (lambda t: t.flatten(), lambda t: t.flatten()),
    "flatten(1)": (lambda t: t.flatten(1), lambda t: t.flatten(1)),
    "flatten(0, 1)": (lambda t: t.flatten(0, 1), lambda t: t.flatten(0, 1)),
    "view(-1, 2)": (lambda t: t.view(-1, 2), lambda t: t.view(-1, 2)),
    "view(4, 6)": (lambda t: t.view(4, 6), lambda t: t.view(4, 6)),
    "squeeze()": (lambda t: t.reshape(2, 1, 3, 4).squeeze(), lambda t: t.reshape(2, 1, 3, 4).squeeze()),
    "squeeze(1)": (lambda t: t.reshape(2, 1, 3, 4).squeeze(1), lambda t: t.reshape(2, 1, 3, 4).squeeze(1)),
    "unsqueeze(0)": (lambda t: t.unsqueeze(0), lambda t: t.unsqueeze(0)),
    "unsqueeze(-1)": (lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
    "transpose(-1, 0)": (lambda t: t.transpose(-1, 0), lambda t: t.transpose(-1, 0)),
}


def _values_and_gradient_as_torchs(torch, x, tx, y, ty, seed):
    """``y = f(x)`` and ``ty = f(tx)`` equal in shape and values, and so are ``x``'s and ``tx``'s
    gradients from one upstream gradient, drawn from ``seed`` (not symmetric: a backward that
    reorders it is caught)."""
    assert y.shape == tuple(ty.shape)
    assert_close(y, ty)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_methods_gradcheck_and_torch_gradient(torch, name):
    """flatten, view, squeeze and unsqueeze had no gradcheck (flatten, view) or no gradient parity
    with torch (squeeze, unsqueeze: only their shapes were compared). The upstream gradient is
    not symmetric, so a backward that reshapes in the wrong order is caught."""
    ours_fn, theirs_fn = SHAPE_OPS[name]
    x_np = np.random.default_rng(11).standard_normal((2, 3, 4))
    assert gradcheck(lambda t: ours_fn(t) * 1.0, [t64(x_np)])
    x, tx = t64(x_np), as_torch(torch, x_np)
    _values_and_gradient_as_torchs(torch, x, tx, ours_fn(x), theirs_fn(tx), seed=12)


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_boolean_mask_index_gradient_matches_torch_and_gradcheck(torch, shape, data):
    """x[mask] (a boolean array of x's leading shape) and x[mask, i]: values and gradient
    against torch's, and the float64 gradient check. No test took a gradient through a
    boolean index before (only integer arrays and slices)."""
    k = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape[:k]))
    x_np = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    _values_and_gradient_as_torchs(torch, x, tx, x[mask], tx[torch.tensor(mask)], seed=1)
    if x_np.size <= 64:
        assert gradcheck(lambda t: t[mask], [t64(x_np)])


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_amin_matches_torch_on_drawn_shapes(torch, shape, data):
    """amin (the gradient shared between ties) against torch on Hypothesis-drawn tensors with
    ties (min(dim) is in test_max_along_a_dim_is_torchs_values_and_indices)."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    x_np = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 2.0, 3.0])))
    x, tx = t64(x_np), as_torch(torch, x_np)
    y, ty = x.amin(dim, keepdim), torch.amin(tx, dim, keepdim)
    assert_close(y, ty)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


@pytest.mark.parametrize("method", ["float", "double", "half"])
def test_float_casts_pass_the_gradient_back_in_the_leafs_dtype_as_torch(torch, method):
    """astype / .float() / .double(): the gradient of a float64 leaf through a cast is the upstream
    gradient cast back (torch's ToCopyBackward). No test took a gradient through a cast."""
    x_np = np.random.default_rng(5).standard_normal((3, 4))
    x, tx = t64(x_np), as_torch(torch, x_np)
    cast = {"float": np.float32, "double": np.float64, "half": np.float16}[method]
    y = x.astype(cast) if method == "half" else getattr(x, method)()
    ty = getattr(tx, method)()
    assert str(y.dtype) == str(ty.dtype).replace("torch.", "")
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    g = np.random.default_rng(6).standard_normal(y.shape).astype(cast)
    (y * msn.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    # the cast is linear up to rounding: a coarse step makes the finite difference meaningful
    if method != "half":
        assert gradcheck(lambda t: t.astype(cast).astype(np.float64) * 3.0, [t64(x_np)], eps=1e-2, atol=1e-4)


@pytest.mark.parametrize("left_shape, right_shape", [((2, 3), (3, 4)), ((3,), (3, 2)), ((4, 2, 3), (3,))])
def test_matmul_with_an_array_on_either_side_matches_torch(torch, left_shape, right_shape):
    """array @ tensor (__rmatmul__) and tensor @ array: value and the tensor's gradient as torch's;
    the constant-on-either-side test covered + - * / only."""
    rng = np.random.default_rng(2)
    a_np, b_np = rng.standard_normal(left_shape), rng.standard_normal(right_shape)
    for tensor_side in ("left", "right"):
        x_np = a_np if tensor_side == "left" else b_np
        x, tx = t64(x_np), as_torch(torch, x_np)
        if tensor_side == "left":
            y, ty = x @ b_np, tx @ torch.tensor(b_np)
        else:
            y, ty = a_np @ x, torch.tensor(a_np) @ tx
        assert isinstance(y, msn.Tensor)
        assert_close(y, ty)
        g = rng.standard_normal(y.shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        assert_close(x.grad, tx.grad, what=tensor_side)


def test_reflected_bitwise_operators_with_a_python_bool_on_the_left_as_torch(torch):
    """`False | mask`, `True & mask`, `True ^ mask`: Python's bool defers to the tensor's __ror__,
    __rand__, __rxor__ (each must be its own operator, not another's)."""
    m_np = np.array([True, False, True, False])
    m, tm = msn.tensor(m_np), torch.tensor(m_np)
    for ours, theirs in ((False | m, False | tm), (True | m, True | tm), (True & m, True & tm),
                         (False & m, False & tm), (True ^ m, True ^ tm)):
        assert ours.numpy().tolist() == theirs.tolist()


def test_exp_of_an_overflow_times_a_zero_gradient_is_nan_without_a_warning(torch):
    """exp(1000) = inf, and a gradient of 0 reaching it gives 0 * inf = NaN, as PyTorch, silently
    (NumPy's 'invalid value encountered in multiply' would come out of minisegnet)."""
    x_np = np.array([1000.0, 0.0])
    x, tx = t64(x_np), as_torch(torch, x_np)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x.exp().backward(np.zeros(2))
    tx.exp().backward(torch.zeros(2, dtype=torch.float64))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_max_and_min_of_all_values_are_0d_as_torch(torch):
    """x.max() / x.min() (no dim) reduce every axis and keep none: shape (), as torch.Tensor.max()."""
    x_np = np.arange(6.0).reshape(2, 3)
    x, tx = msn.tensor(x_np), torch.tensor(x_np)
    for name in ("max", "min"):
        ours, theirs = getattr(x, name)(), getattr(tx, name)()
        assert ours.shape == tuple(theirs.shape) == ()
        assert ours.item() == theirs.item()


def test_max_of_all_values_of_an_empty_tensor_is_a_clear_error(torch):
    with pytest.raises(RuntimeError):
        torch.zeros(0).max()
    with pytest.raises(ValueError, match=r"max over dim=None of an empty axis"):
        msn.tensor(np.zeros(0)).max()


def test_float16_pow_gradient_multiplies_exponent_and_power_before_the_incoming_gradient(torch):
    """PyTorch's pow_backward is g * (b * a ** (b - 1)): for x ** 2 at x = 0.5 with g = 40000 that
    is 40000 * 1. Multiplied as (g * b) * a ** (b - 1), g * b = 80000 is inf in float16 first."""
    x = np.array([0.5, 0.25], np.float16)
    g = np.array([40000, 40000], np.float16)
    ours = msn.tensor(x, requires_grad=True)
    with np.errstate(over="ignore"):
        (ours ** 2).backward(msn.tensor(g))
    theirs = torch.tensor(x, requires_grad=True)
    (theirs ** 2).backward(torch.tensor(g))
    assert np.isfinite(theirs.grad.numpy()).all()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_float16_pow_gradient_of_the_exponent_multiplies_power_and_log_first(torch):
    """PyTorch: d b = g * (a ** b * log a). 1.5 ** 25 = 25251 and g = 4: (g * y) = 101004 is inf in
    float16, y * log(a) = 10238 is not, and the gradient (40956) fits."""
    a, b, g = np.array([1.5], np.float16), np.array([25.0], np.float16), np.array([4.0], np.float16)
    ours_a, ours_b = msn.tensor(a, requires_grad=True), msn.tensor(b, requires_grad=True)
    with np.errstate(over="ignore"):
        (ours_a ** ours_b).backward(msn.tensor(g))
    theirs_a, theirs_b = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (theirs_a ** theirs_b).backward(torch.tensor(g))
    assert np.isfinite(theirs_b.grad.numpy()).all()
    np.testing.assert_array_equal(ours_b.grad.numpy(), theirs_b.grad.numpy())


def test_float16_divisor_gradient_is_minus_g_times_the_quotient_over_b(torch):
    """PyTorch: d b = -g * ((a / b) / b). For 8 / 4 with g = 40000: -40000 * 0.5 = -20000.
    Grouped as (-g * (a / b)) / b, -g * 2 = -80000 is -inf in float16 before the division."""
    a, b, g = np.array([8.0], np.float16), np.array([4.0], np.float16), np.array([40000.0], np.float16)
    ours_a, ours_b = msn.tensor(a, requires_grad=True), msn.tensor(b, requires_grad=True)
    with np.errstate(over="ignore"):
        (ours_a / ours_b).backward(msn.tensor(g))
    theirs_a, theirs_b = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (theirs_a / theirs_b).backward(torch.tensor(g))
    assert theirs_b.grad.item() == -20000
    np.testing.assert_array_equal(ours_b.grad.numpy(), theirs_b.grad.numpy())
    np.testing.assert_array_equal(ours_a.grad.numpy(), theirs_a.grad.numpy())


def test_builtin_abs_and_unary_plus_work_as_on_torch_tensors(torch):
    """``t.abs()`` and ``F.abs`` exist, but ``abs(t)`` (Python's builtin, as torch's ``__abs__``)
    and ``+t`` were a bare TypeError: Tensor has no ``__abs__`` / ``__pos__``."""
    x = np.array([[-1.5, 0.0, 2.0]], np.float32)
    np.testing.assert_array_equal(abs(msn.tensor(x)).numpy(), abs(torch.tensor(x)).numpy())
    np.testing.assert_array_equal((+msn.tensor(x)).numpy(), (+torch.tensor(x)).numpy())
    # the gradient goes through the builtin as through the method
    t = msn.tensor(np.array([-2.0, 3.0]), requires_grad=True)
    abs(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [-1.0, 1.0])


def test_shape_methods_by_keyword_are_refused_as_their_docstring_says(torch):
    """torch's ``t.reshape(shape=...)`` and ``t.permute(dims=...)`` take the sizes by keyword too;
    ours take them by position only, which ``Tensor.reshape``'s docstring now says (it said nothing)."""
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert tuple(torch.tensor(x).reshape(shape=(6, -1)).shape) == (6, 4)
    with pytest.raises(TypeError):
        msn.tensor(x).reshape(shape=(6, -1))
    with pytest.raises(TypeError):
        msn.tensor(x).permute(dims=(2, 0, 1))
    assert "not by keyword" in msn.Tensor.reshape.__doc__ and "dims=" in msn.Tensor.reshape.__doc__


def test_sum_and_mean_take_torchs_dtype_keyword(torch):
    """``torch.Tensor.sum(dim=None, keepdim=False, dtype=None)`` and ``mean(..., *, dtype=None)``
    accumulate in ``dtype``; ours had no ``dtype`` (softmax's was added the same way)."""
    x = np.array([[1e4, 1.0, -1e4]], np.float16)
    s = msn.tensor(x).sum(dtype=np.float64)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s.numpy(), torch.tensor(x).sum(dtype=torch.float64).numpy())
    m = msn.tensor(x).mean(dim=1, dtype=np.float64)
    assert m.dtype == np.float64
    np.testing.assert_allclose(m.numpy(), torch.tensor(x).mean(dim=1, dtype=torch.float64).numpy())


WIDE_UNSIGNED = [np.uint16, np.uint32, np.uint64]
OTHER_INTEGERS = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64]


@pytest.mark.parametrize("wide", WIDE_UNSIGNED)
@pytest.mark.parametrize("other", OTHER_INTEGERS)
@pytest.mark.parametrize("op", [operator.add, operator.mul])
def test_wide_unsigned_mixed_with_another_integer_dtype_is_refused_as_in_pytorch(torch, wide, other, op):
    """PyTorch: "Promotion for uint16, uint32, uint64 types is not supported". Ours gave NumPy's
    answer (uint32 + int32 -> int64, uint64 + int64 -> float64)."""
    a, b = np.ones(2, wide), np.ones(2, other)
    with pytest.raises(RuntimeError):                      # the oracle refuses the pair
        op(torch.tensor(a), torch.tensor(b))
    with pytest.raises(TypeError):
        op(msn.tensor(a), msn.tensor(b))
    with pytest.raises(TypeError):
        F.result_type(msn.tensor(a), msn.tensor(b))


def test_two_integer_tensors_never_add_up_to_a_float():
    """Whatever the fix (refuse, or stay within the integer kind), an integer op must not round:
    uint64 [2**53 + 1] + int64 [0] gave float64 9007199254740992.0."""
    a = msn.tensor(np.array([2**53 + 1], np.uint64))
    b = msn.tensor(np.array([0], np.int64))
    try:
        total = a + b
    except TypeError:
        return                                             # refused, as PyTorch: fine
    assert total.dtype.kind in "iu"
    assert int(total.numpy()[0]) == 2**53 + 1


@pytest.mark.parametrize("shape, index", [
    ((2, 3, 4), (0, slice(None), [1, 2])),
    ((2, 3, 4), (0, None, [1, 2])),
    ((2, 3, 4), (None, 0, slice(None), [1, 2])),
    ((2, 3, 4), (0, Ellipsis, [1, 2])),
    ((2, 3, 4), (1, slice(None), np.array([[0, 1], [2, 3]]))),
    ((2, 3, 4, 2), (slice(None), 0, slice(None), [0, 1])),
    ((2, 3, 4), (0, slice(None), np.array([True, False, True, True]))),
    ((2, 3, 3), (0, slice(None), [0, 1, 2])),       # the same shape either way: only the values differ
])
def test_an_int_beside_advanced_indices_puts_their_axes_where_torch_does(torch, shape, index):
    x_np = np.random.default_rng(0).standard_normal(shape)
    x, tx = t64(x_np), as_torch(torch, x_np)
    y = x[index]
    ty = tx[tuple(torch.tensor(p) if isinstance(p, (list, np.ndarray)) else p for p in index)]
    assert_close(y, ty)
    g = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    y.backward(g)
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad)


def test_an_ellipsis_of_no_axes_between_advanced_indices_keeps_them_adjacent_as_torch(torch):
    x_np = np.arange(6.0).reshape(2, 3)
    x, tx = t64(x_np), as_torch(torch, x_np)
    y, ty = x[None, [0, 1], ..., [0, 2]], tx[None, torch.tensor([0, 1]), ..., torch.tensor([0, 2])]
    assert_close(y, ty)                             # torch (1, 2); the old code (2, 1)


def test_a_zero_dim_integer_tensor_index_is_an_int_a_view_as_in_torch(torch):
    """PyTorch reads a 0-d integer tensor index as an int: a view, and its place among advanced indices
    is an int's."""
    x_np = np.arange(24.0).reshape(2, 3, 4)
    x, tx = msn.tensor(x_np.copy()), torch.tensor(x_np.copy())
    y, ty = x[msn.tensor(np.array(1))], tx[torch.tensor(1)]
    y[0, 0] = -1.0
    ty[0, 0] = -1.0
    assert tx[1, 0, 0].item() == -1.0
    assert x.numpy()[1, 0, 0] == -1.0               # the write through the view reaches x (a copy before)
    assert_close(x[msn.tensor(np.array(1)), :, [0, 1]], tx[torch.tensor(1), :, torch.tensor([0, 1])])


def test_a_uint8_index_is_not_read_as_positions(torch):
    """PyTorch 2.13 reads a uint8 index as a boolean mask (with a deprecation warning); positions would
    give other values without a word. A mask's result, or a refusal, but not x[[1, 0]]."""
    x_np = np.arange(6.0).reshape(3, 2)
    x, tx = t64(x_np), as_torch(torch, x_np)
    index = np.array([1, 0, 1], np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ty = tx[torch.tensor(index)]
    try:
        y = x[index]
    except (TypeError, IndexError):
        return                                      # refused: fine
    assert_close(y, ty)                             # torch [[0, 1], [4, 5]]; the old code [[2, 3], [0, 1], [2, 3]]


def test_a_list_index_changed_after_the_forward_pass_does_not_move_the_gradient(torch):
    """torch turns a list index into a tensor when it indexes; GetItem kept the caller's list, and its
    backward read it again."""
    x_np = np.arange(12.0).reshape(4, 3)
    x, tx = t64(x_np), as_torch(torch, x_np)
    index = [0, 1]
    y, ty = x[index], tx[index]
    index[0] = 3
    y.sum().backward()
    ty.sum().backward()
    assert_close(x.grad, tx.grad)                   # rows 0 and 1; the old code gave rows 1 and 3


@pytest.mark.parametrize("index", [
    (0, slice(None), slice(None), [1, 2]),          # an int and a list separated by slices
    (1, slice(None), [0, 1]),
    (slice(None), 0, slice(None), [1, 2]),
    (0, slice(None), np.array([True, False, True, True])),   # an int and a boolean mask, slice between
])
def test_an_int_beside_an_advanced_index_selects_first_as_pytorch(torch, index):
    """PyTorch applies an int index as a plain selection before the advanced (list, array,
    mask) parts, so x[0, :, [1, 2]] of a (2, 3, 4) tensor has shape (3, 2). NumPy counts the int as
    an advanced index too, and two advanced indices separated by a slice put the broadcast axis
    first: (2, 3), the values transposed."""
    shape = (2, 3, 4, 4) if len(index) == 4 else (2, 3, 4)
    a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    torch_index = tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index)
    theirs = torch.tensor(a)[torch_index]
    x = msn.tensor(a, requires_grad=True)
    ours = x[index]
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    g = np.arange(ours.size, dtype=np.float64).reshape(ours.shape)
    ours.backward(g)
    t = torch.tensor(a, requires_grad=True)
    t[torch_index].backward(torch.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_an_int_beside_an_advanced_index_writes_as_pytorch(torch):
    """x[0, :, [1, 2]] = y takes y of PyTorch's shape (3, 2), not NumPy's (2, 3)."""
    values = np.arange(6.0).reshape(3, 2)
    theirs = torch.zeros(2, 3, 4, dtype=torch.float64)
    theirs[0, :, [1, 2]] = torch.tensor(values)
    ours = msn.tensor(np.zeros((2, 3, 4)))
    ours[0, :, [1, 2]] = msn.tensor(values)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_a_uint8_index_tensor_is_not_read_as_positions(torch):
    """PyTorch reads a uint8 index tensor as a boolean mask (deprecated, with a warning): x[[1, 0, 1]
    as uint8] is [1, 9]. Read as positions it silently gives [5, 1, 5]; either follow PyTorch or
    refuse it (naming the cast: .bool() or .long())."""
    values = np.array([1, 5, 9])
    index = np.array([1, 0, 1], np.uint8)
    with pytest.warns(UserWarning):
        theirs = torch.tensor(values)[torch.tensor(index)]
    for passed in (msn.tensor(index), index):
        try:
            ours = msn.tensor(values)[passed]
        except (TypeError, IndexError, ValueError):
            continue                                    # a refusal is fine
        assert ours.numpy().tolist() == theirs.numpy().tolist() == [1, 9]


@pytest.mark.parametrize("dtype, torch_dtype", [(np.int8, "int8"), (np.int16, "int16"), (np.int32, "int32"),
                                                (np.uint8, "uint8"), (np.bool_, "bool")])
@pytest.mark.parametrize("dim", [None, 1])
def test_sum_with_a_dtype_returns_that_dtype_as_pytorch(torch, dtype, torch_dtype, dim):
    """torch's x.sum(dtype=torch.int8) is int8 (it wraps: 100 + 100 is -56); ours is int64,
    as the cast-then-sum gives integer sums int64."""
    a = np.array([[100, 100, -7], [3, 120, 90]])
    theirs = torch.tensor(a).sum(dtype=getattr(torch, torch_dtype)) if dim is None else \
        torch.tensor(a).sum(dim, dtype=getattr(torch, torch_dtype))
    ours = msn.tensor(a).sum(dim, dtype=dtype)
    assert ours.dtype == np.dtype(dtype) and str(theirs.dtype) == f"torch.{torch_dtype}"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_a_bool_tensor_to_a_negative_number_power_is_refused_as_pytorch(torch):
    """PyTorch: 'Integers to negative integer powers are not allowed.' for a bool tensor too (it
    computes in int64); ours returned int64 [1, 0]."""
    with pytest.raises(RuntimeError, match="negative integer powers"):
        torch.tensor([True, False]) ** -1
    with pytest.raises(ValueError, match="pow: an integer tensor to the negative integer power -1"):
        msn.tensor(np.array([True, False])) ** -1


@pytest.mark.parametrize("wide", [np.uint16, np.uint32, np.uint64])
def test_a_bool_tensor_with_a_zero_dim_wide_unsigned_one_is_refused_as_pytorch(torch, wide):
    """The zero-dimensional operand's category (integer) is higher than the bool tensor's, so
    PyTorch promotes bool with uint16 and refuses ("Promotion for uint16, uint32, uint64 types is
    not supported"); result_type's _over took the 0-d dtype without _promote's check: uint16."""
    mask, scalar = np.array([True, False]), np.array(1, wide)
    for a, b in ((mask, scalar), (scalar, mask)):
        with pytest.raises(RuntimeError, match="Promotion for uint16, uint32, uint64"):
            torch.result_type(torch.tensor(a), torch.tensor(b))
        with pytest.raises(TypeError, match="do not promote"):
            msn.functional.result_type(msn.tensor(a), msn.tensor(b))
        with pytest.raises(TypeError, match="do not promote"):
            msn.tensor(a) + msn.tensor(b)
