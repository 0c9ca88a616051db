"""The Tensor, the graph walk, no_grad, seeding, and gradcheck itself."""
import operator
import threading
import warnings

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F
from minisegnet.testing import GradcheckError, gradcheck
from helpers import as_torch, assert_close, t64


def test_default_dtypes_follow_torch_tensor():
    assert msn.tensor([1.0, 2.0]).dtype == np.float32
    assert msn.tensor([1, 2]).dtype == np.int64
    assert msn.tensor(np.zeros(3)).dtype == np.float64
    assert msn.tensor([1.0], dtype=np.float64).dtype == np.float64


def test_ragged_or_non_numeric_data_is_refused_clearly():
    with pytest.raises(ValueError, match="ragged nested list"):
        msn.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="cannot make a tensor"):
        msn.tensor("abc")


def test_requires_grad_needs_float():
    with pytest.raises(TypeError, match="floating-point"):
        msn.tensor([1, 2], requires_grad=True)


def test_backward_non_scalar_needs_grad_argument():
    x = msn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="`gradient`"):
        (x * 2).backward()
    (x * 2).backward(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2])
    (x * 2).backward(gradient=np.ones(2, dtype=np.float32))             # torch's keyword
    np.testing.assert_array_equal(x.grad.numpy(), [4, 4])


def test_backward_grad_argument_shape_checked():
    x = msn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="`gradient` has shape"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(TypeError, match="`gradient` must be a Tensor or an array of numbers"):
        (x * 2).backward("ones")


def test_gradients_accumulate_until_zeroed():
    x = msn.tensor([3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [12.0])
    x.zero_grad()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0])


def test_shared_subexpression_gets_both_paths():
    x = t64([2.0])
    y = x * x          # used twice below
    z = y * 3 + y      # dz/dx = 4 * 2x
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [16.0])


def test_no_grad_records_nothing_and_restores():
    x = msn.tensor([1.0], requires_grad=True)
    with msn.no_grad():
        y = x * 2
        assert not msn.is_grad_enabled()
    assert msn.is_grad_enabled()
    assert not y.requires_grad and y.creator is None


def test_detach_cuts_the_graph_and_shares_memory():
    x = msn.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.creator is None
    y = x * 1
    assert y.detach().data is y.data


def test_long_chain_does_not_recurse():
    x = t64([1.0])
    y = x
    for _ in range(3000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_leaf_backward_sets_grad():
    x = msn.tensor([5.0], requires_grad=True)
    x.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0])


def test_backward_without_requires_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        msn.tensor([1.0]).sum().backward()


def test_manual_seed_repeats_parameter_init():
    msn.manual_seed(7)
    a = msn.nn.init.kaiming_uniform_array((4, 3, 3, 3))
    msn.manual_seed(7)
    b = msn.nn.init.kaiming_uniform_array((4, 3, 3, 3))
    np.testing.assert_array_equal(msn.backend.to_numpy(a), msn.backend.to_numpy(b))
    with pytest.raises(ValueError, match="seed"):
        msn.manual_seed(-1)


def test_gradcheck_catches_a_wrong_gradient():
    class WrongSquare(msn.Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return g * 3 * self.x   # should be 2x

    x = t64(np.random.default_rng(0).standard_normal(5))
    with pytest.raises(GradcheckError, match="input 0, element"):
        gradcheck(lambda t: WrongSquare()(t), [x])
    big = t64(np.random.default_rng(0).standard_normal(500))
    with pytest.raises(GradcheckError, match="random direction"):
        gradcheck(lambda t: WrongSquare()(t), [big])


def test_gradcheck_requires_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t * 2, [msn.tensor([1.0], requires_grad=True)])


def test_mixing_backends_is_a_clear_error(monkeypatch):
    # Stand in for CuPy with a fake module whose ndarray type is distinct from NumPy's.
    class FakeCupyArray:
        pass

    class FakeCupy:
        ndarray = FakeCupyArray

    monkeypatch.setattr(msn.backend, "_cupy", FakeCupy)
    assert msn.backend.get_array_module(np.zeros(1), 3.0) is np
    assert msn.backend.get_array_module(FakeCupyArray()) is FakeCupy
    with pytest.raises(TypeError, match="both NumPy"):
        msn.backend.get_array_module(np.zeros(1), FakeCupyArray())


def test_set_backend_validates_name():
    with pytest.raises(ValueError, match="backend must be one of"):
        msn.set_backend("jax")


def test_gradcheck_perturbs_non_contiguous_inputs():
    # A transposed (non-contiguous) input: the perturbations must still reach it.
    base = np.random.default_rng(0).standard_normal((3, 4)).T
    x = msn.tensor(base, requires_grad=True)
    assert not x.data.flags["C_CONTIGUOUS"]
    assert gradcheck(lambda t: t * t, [x])


# ---- one walk per graph, one node per Function, checked backward returns ----------------------
class _Cube(msn.autograd.Function):
    def forward(self, a):
        self.a = a
        return a ** 3

    def backward(self, g):
        return 3 * self.a ** 2 * g


def test_a_graph_is_walked_once_unless_retained_as_in_torch(torch):
    x = t64(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()                                    # kept by the first walk: the gradients add up
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * x.numpy())
    with pytest.raises(RuntimeError, match="backward through a graph a second time.*retain_graph=True"):
        y.backward()
    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ty = (tx * tx).sum()
    ty.backward()
    with pytest.raises(RuntimeError, match="second time"):      # PyTorch refuses too
        ty.backward()


def test_backward_frees_what_each_node_saved():
    x = t64(np.ones((2, 3)), requires_grad=True)
    h = (x * x).relu()
    loss = h.sum()
    mul = h.creator.inputs[0].creator                 # the Mul node under the ReLU
    assert "inputs" in vars(mul) and len(vars(mul)) > 2
    loss.backward()
    assert vars(loss.creator) == vars(mul) == {"freed": True}    # saved arrays and links gone


def test_a_function_object_is_one_node():
    a, b = (t64(np.array([v]), requires_grad=True) for v in (1.0, 2.0))
    cube = _Cube()
    cube(a)
    with pytest.raises(RuntimeError, match="_Cube: this Function object was already called.*new one per call"):
        cube(b)                                     # would overwrite the saved a: a.grad None, b.grad 24
    (_Cube()(a) + _Cube()(b)).sum().backward()
    assert a.grad.item() == 3.0 and b.grad.item() == 12.0
    with msn.no_grad():                             # recording nothing, a Function may be reused
        again = _Cube()
        again(a), again(b)


class _OneForTwo(msn.autograd.Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g


class _WrongShape(msn.autograd.Function):
    def forward(self, a):
        return 2 * a

    def backward(self, g):
        return g.sum(keepdims=True)


class _NotAnArray(msn.autograd.Function):
    def forward(self, a):
        return 2 * a

    def backward(self, g):
        return (float(g.sum()),)


def test_what_a_custom_backward_returns_is_checked():
    a, b = t64(np.ones(3), requires_grad=True), t64(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"_OneForTwo.backward returned 1 gradient\(s\) for its 2 input\(s\)"):
        _OneForTwo()(a, b).sum().backward()
    with pytest.raises(RuntimeError, match=r"_WrongShape.backward returned a gradient of shape \(1,\) for input 0, "
                                           r"whose shape is \(3,\)"):
        _WrongShape()(a).sum().backward()
    with pytest.raises(TypeError, match="_NotAnArray.backward returned float for input 0"):
        _NotAnArray()(a).sum().backward()


class _ListBack(msn.autograd.Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        return [g * 2, None]


def test_a_list_of_gradients_is_accepted_and_none_means_no_gradient():
    a, b = t64(np.ones(3), requires_grad=True), t64(np.ones(3), requires_grad=True)
    _ListBack()(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2.0)
    assert b.grad is None


def test_leaf_gradients_are_never_the_same_array():
    x, y = t64(np.ones(3), requires_grad=True), t64(np.ones(3), requires_grad=True)
    g = np.ones(3)
    (x + y).backward(g)                             # Add hands one array to both operands
    assert x.grad.data is not y.grad.data and x.grad.data is not g and y.grad.data is not g
    x.grad.data *= 5                                # an in-place change (say, clipping) stays on x
    np.testing.assert_allclose(y.grad.numpy(), 1.0)
    np.testing.assert_allclose(g, 1.0)
    z = t64(np.ones(3), requires_grad=True)
    z.backward(g)
    assert z.grad.data is not g


def test_tensor_copies_as_torch_tensor_and_as_tensor_shares(torch):
    array = np.ones(3)
    t = msn.tensor(array)
    array[0] = 5.0
    assert t.numpy()[0] == 1.0                       # a copy, as torch.tensor
    tt = torch.tensor(array)
    array[0] = 7.0
    assert tt[0].item() == 5.0
    shared = msn.as_tensor(array)
    array[1] = 9.0
    if msn.backend.get_backend() == "numpy":         # on a GPU backend the host array is uploaded: a copy
        assert shared.numpy()[1] == 9.0              # the same memory, as torch.as_tensor
    assert torch.as_tensor(array)[1].item() == 9.0
    again = msn.tensor(t)
    t.data[2] = 3.0
    assert again.numpy()[2] == 1.0                   # from a Tensor: a copy too
    view = msn.tensor(array[::2])
    array[0] = -1.0
    assert view.numpy()[0] == 7.0                    # from a view: a copy


def test_the_tensor_constructor_names_itself_refusing_requires_grad():
    with pytest.raises(TypeError, match=r"^Tensor: requires_grad must be True or False, got 1"):
        msn.tensor(np.ones(2, np.float32), requires_grad=1)
    with pytest.raises(TypeError, match=r"^Tensor: requires_grad=True needs a floating-point tensor"):
        msn.Tensor(np.ones(2, np.int64), requires_grad=True)


def test_nested_no_grad_restores_the_outer_state():
    """An inner no_grad (or enable_grad) gives back the state it found, not 'on' (one level of
    no_grad, where the state before was always on, could not tell the two apart)."""
    x = msn.tensor([1.0], requires_grad=True)
    with msn.no_grad():
        with msn.no_grad():
            pass
        assert not msn.is_grad_enabled() and not (x * 2).requires_grad
        with msn.enable_grad():
            assert (x * 2).requires_grad
        assert not msn.is_grad_enabled()
    assert msn.is_grad_enabled()


def test_no_grad_as_a_bare_decorator_and_set_grad_enabled_and_inference_mode_as_torch(torch):
    """``@no_grad`` without parentheses was 'no_grad() takes no arguments'; set_grad_enabled and
    inference_mode were missing. Each is compared with torch's on the same script."""
    def run(lib, tensor):
        x = tensor
        seen = []

        @lib.no_grad
        def bare():
            return (x * 2).requires_grad

        @lib.enable_grad
        def enabled():
            return (x * 2).requires_grad
        seen += [bare(), bare.__name__]
        with lib.no_grad():
            seen.append(enabled())
        lib.set_grad_enabled(False)
        seen.append((x * 2).requires_grad)
        lib.set_grad_enabled(True)
        with lib.set_grad_enabled(False):
            seen.append((x * 2).requires_grad)
        seen.append((x * 2).requires_grad)
        with lib.inference_mode():
            seen.append((x * 2).requires_grad)
        with lib.inference_mode(False):
            seen.append((x * 2).requires_grad)

        @lib.inference_mode()
        def inferred():
            return (x * 2).requires_grad
        seen += [inferred(), lib.is_grad_enabled()]
        return seen
    ours = run(msn, msn.tensor(np.ones(2, np.float32), requires_grad=True))
    theirs = run(torch, torch.ones(2, requires_grad=True))
    assert ours == theirs == [False, "bare", True, False, False, True, False, True, False, True]
    with pytest.raises(TypeError, match="set_grad_enabled: mode must be True or False"):
        msn.set_grad_enabled("no")
    with pytest.raises(TypeError, match="no_grad: takes no argument"):
        msn.no_grad(3)
    assert msn.is_grad_enabled()


def test_min_clone_squeeze_and_casts_as_torch(torch):
    """Tensor.min (values and the first minimum's index, its gradient there), amin, argmin, clone,
    tolist, unsqueeze, squeeze, long/int/bool, against torch on one tensor with ties."""
    x = np.array([[3.0, 1.0, 1.0], [0.0, 5.0, -2.0]])
    ours, theirs = msn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    values, indices = ours.min(1)
    t_values, t_indices = theirs.min(1)
    np.testing.assert_array_equal(values.numpy(), t_values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    (values.sum() + ours.min() + ours.amin(0).sum() + 2 * ours.clone().sum()).backward()
    (t_values.sum() + theirs.min() + theirs.amin(0).sum() + 2 * theirs.clone().sum()).backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    for dim in (None, 0, 1):
        assert ours.argmin(dim).tolist() == (theirs.argmin() if dim is None else theirs.argmin(dim)).tolist()
    assert ours.tolist() == theirs.tolist()
    for dim in (0, 1, 2, -1, -3):
        assert ours.unsqueeze(dim).shape == tuple(theirs.unsqueeze(dim).shape)
    y, ty = ours.reshape(1, 2, 1, 3), theirs.reshape(1, 2, 1, 3)
    for dim in (None, 0, 1, 2, -2):
        assert (y.squeeze() if dim is None else y.squeeze(dim)).shape == \
            tuple((ty.squeeze() if dim is None else ty.squeeze(dim)).shape)
    for cast in ("long", "int", "bool"):
        assert getattr(ours, cast)().tolist() == getattr(theirs, cast)().tolist()
        assert str(getattr(ours, cast)().dtype) == str(getattr(theirs, cast)().dtype).replace("torch.", "")
    with pytest.raises(IndexError, match="unsqueeze: dim 3 is out of range"):
        ours.unsqueeze(3)


def test_item_of_several_values_is_torchs_runtime_error(torch):
    with pytest.raises(RuntimeError, match=r"item\(\) needs a tensor with one element.*shape \(2,\)"):
        msn.tensor([1.0, 2.0]).item()
    with pytest.raises(RuntimeError):
        torch.tensor([1.0, 2.0]).item()


def test_grad_modes_as_blocks_and_decorators_as_torch(torch):
    """inference_mode(False) records even inside no_grad, and as a decorator too; @set_grad_enabled(False)
    runs its function without recording and leaves the setting around it; a block restores the setting
    on an error; bare @inference_mode wraps (each checked against torch on the same script)."""
    def run(lib, x):
        seen = []
        with lib.no_grad():
            with lib.inference_mode(False):
                seen.append((x * 2).requires_grad)

        @lib.inference_mode(False)
        def recorded():
            return (x * 2).requires_grad

        @lib.set_grad_enabled(False)
        def unrecorded():
            return (x * 2).requires_grad

        @lib.inference_mode
        def bare():
            return (x * 2).requires_grad
        with lib.no_grad():
            seen.append(recorded())
        seen += [lib.is_grad_enabled(), unrecorded(), lib.is_grad_enabled(), bare(), bare.__name__]
        with lib.no_grad():
            with lib.set_grad_enabled(True):
                seen.append(lib.is_grad_enabled())
            seen.append(lib.is_grad_enabled())
        try:
            with lib.set_grad_enabled(False):
                raise KeyError("inside")
        except KeyError:
            seen.append(lib.is_grad_enabled())
        return seen
    ours = run(msn, msn.tensor(np.ones(2, np.float32), requires_grad=True))
    theirs = run(torch, torch.ones(2, requires_grad=True))
    assert ours == theirs == [True, True, True, False, True, False, "bare", True, False, True]
    with pytest.raises(TypeError, match="inference_mode: mode must be True or False"):
        msn.inference_mode("no")


def test_min_and_clone_details_a_mutation_review_found_untested(torch):
    x = np.array([[3.0, 1.0, 1.0], [0.0, 5.0, -2.0]])
    ours, theirs = msn.tensor(x).min(1), torch.tensor(x).min(1)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())      # a named pair
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    with pytest.raises(TypeError, match="min: keepdim needs a dim"):
        msn.tensor(x).min(None, True)
    for dim in (0, 1):
        assert msn.tensor(x).amin(dim, keepdim=True).shape == tuple(torch.tensor(x).amin(dim, keepdim=True).shape)
        assert msn.tensor(x).argmin(dim, keepdim=True).tolist() == torch.tensor(x).argmin(dim, keepdim=True).tolist()
    for data in (np.arange(3), np.arange(3.0), np.array([True, False, True])):
        t = msn.tensor(data)
        copy = t.clone()
        copy.data[0] = (not copy.data[0]) if data.dtype == bool else 9
        np.testing.assert_array_equal(t.numpy(), data)                            # a copy for every dtype


@pytest.mark.parametrize("data", [np.array([0, 5, 3], np.uint8), np.array([[0, 200], [7, 0]], np.uint8),
                                  np.array([np.iinfo(np.int64).min, 0, 4]), np.array([[-128, 127], [0, -128]], np.int8),
                                  np.array([[3, 1, 1], [2, 2, 0]], np.int16), np.array([True, False, True])])
def test_min_of_integers_and_booleans_as_torch(torch, data):
    """min, amin and argmin reversed the order by negation, which wraps for integers: a uint8
    [0, 5, 3] had min 3 and argmin 2, an int64 holding its most negative value likewise."""
    ours, theirs = msn.tensor(data), torch.tensor(data)
    assert ours.min().item() == theirs.min().item() and ours.min().dtype == data.dtype
    values, indices = ours.min(0)
    np.testing.assert_array_equal(values.numpy(), theirs.min(0).values.numpy())
    np.testing.assert_array_equal(indices.numpy(), theirs.min(0).indices.numpy())
    if data.dtype != bool:                        # torch has no amin or argmin for booleans
        np.testing.assert_array_equal(ours.amin(0).numpy(), torch.amin(theirs, 0).numpy())
        assert ours.argmin().item() == theirs.argmin().item()


def test_min_amin_clone_squeeze_unsqueeze_pass_the_float64_gradient_check():
    """The new Tensor methods are compositions of checked ops; their gradients are checked here too
    (distinct values, so the minima are not ties and the function is smooth where it is probed)."""
    from minisegnet.testing import gradcheck

    x = msn.tensor(np.random.default_rng(3).permutation(12).reshape(3, 4).astype(np.float64) / 7,
                   requires_grad=True)
    for fn in (lambda t: t.min(1).values, lambda t: t.min(), lambda t: t.amin((0, 1)), lambda t: t.amin(0, True),
               lambda t: t.clone() * 3, lambda t: t.unsqueeze(1).squeeze(1) ** 2):
        assert gradcheck(fn, [x])


def test_min_amin_argmin_name_themselves_in_their_errors():
    t = msn.tensor(np.zeros((2, 3)))
    for name in ("min", "amin", "argmin"):
        with pytest.raises(IndexError, match=rf"^{name}: dim=5 is out of range"):
            getattr(t, name)(5)


# ---- from a mutation review: checks no test made before ----
def test_set_grad_enabled_true_as_a_decorator_records_inside_no_grad(torch):
    def run(lib, x):
        @lib.set_grad_enabled(True)
        def f():
            return (x * 2).requires_grad
        with lib.no_grad():
            inside = f()
            after = lib.is_grad_enabled()
        return inside, after, lib.is_grad_enabled()
    ours = run(msn, msn.tensor([1.0], requires_grad=True))
    assert ours == run(torch, torch.tensor([1.0], requires_grad=True)) == (True, False, True)


def test_requires_grad_underscore_refuses_integers_and_a_computed_tensors_off(torch):
    with pytest.raises(TypeError, match="only a floating-point tensor"):
        msn.tensor([1, 2]).requires_grad_()
    y = msn.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only a leaf's requires_grad"):
        y.requires_grad_(False)
    with pytest.raises(RuntimeError):                               # torch refuses both too
        (torch.tensor([1.0], requires_grad=True) * 2).requires_grad_(False)


def test_tensor_copies_an_array_that_shares_another_objects_memory(torch):
    source = torch.ones(3)                           # float32: no cast, so no copy on the way in
    t = msn.tensor(source)                           # np.asarray(source) is a view on torch's memory
    source[0] = 5.0
    assert t.numpy()[0] == 1.0


def test_to_backend_keeps_requires_grad():
    x = msn.tensor([1.0, 2.0], requires_grad=True)
    moved = x.to_backend()
    assert moved.requires_grad and moved.is_leaf


def test_one_gradient_array_handed_to_two_leaves_is_not_shared():
    x, y = t64(np.ones(3)), t64(np.ones(3))
    ((x + y) * 2).sum().backward()                   # Add hands Mul's new array to both operands
    assert x.grad.data is not y.grad.data
    x.grad.data *= 5
    np.testing.assert_allclose(y.grad.numpy(), 2.0)


def test_a_float64_gradient_tensor_gives_a_float32_leaf_a_float32_grad(torch):
    x = msn.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward(msn.tensor(np.ones(2)))         # a float64 Tensor as `gradient`
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    (tx * 2).backward(torch.ones(2, dtype=torch.float64))
    assert x.grad.dtype == np.float32 and tx.grad.dtype == torch.float32
    assert_close(x.grad, tx.grad)


def test_an_operand_that_needs_no_gradient_gets_none(torch):
    a, b, c = t64(np.ones(2)), t64(np.ones(2), requires_grad=False), t64(np.ones(2), requires_grad=False)
    ((a + b) - c).sum().backward()
    ta, tb = as_torch(torch, np.ones(2)), as_torch(torch, np.ones(2), requires_grad=False)
    (ta + tb).sum().backward()
    assert b.grad is None and c.grad is None and tb.grad is None
    assert_close(a.grad, ta.grad)


class _FirstOnly(msn.autograd.Function):
    def forward(self, a, b):
        return a * b

    def backward(self, g):
        return g * 2, None


def test_a_none_gradient_for_a_computed_input_stops_the_walk_there():
    a, b = t64(np.ones(3)), t64(np.ones(3))
    _FirstOnly()(a, b * 3).sum().backward()          # b * 3 gets no gradient: its node is skipped
    np.testing.assert_allclose(a.grad.numpy(), 2.0)
    assert b.grad is None


def test_in_place_with_an_operand_that_requires_grad_is_refused():
    x, w = msn.tensor([1.0, 2.0]), msn.tensor([1.0, 1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not recorded by autograd"):
        x += w


# ---- a leaf written in place between a forward and its backward (PyTorch's version check) ----
def _mul_then_write(lib, no_grad):
    v = lib.tensor([1.0, 2.0], requires_grad=True)
    loss = (v * v).sum()                              # Mul saves v's array
    with no_grad():
        v -= 1.0
    return v, loss


def test_a_leaf_written_in_place_before_the_backward_of_an_op_that_saved_it_is_an_error(torch):
    """Without the check the gradient was silently 2 * (new v) = [0, 2]; PyTorch raises."""
    v, loss = _mul_then_write(msn, msn.no_grad)
    with pytest.raises(RuntimeError, match="changed in place since"):
        loss.backward()
    tv, tloss = _mul_then_write(torch, torch.no_grad)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tloss.backward()


def test_an_op_that_saved_nothing_of_the_written_leaf_still_walks_back(torch):
    """Add keeps no input values: the write does not matter to it, in PyTorch either."""
    ours, theirs = msn.tensor(np.array([1.0, 2.0]), requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    for t, no_grad in ((ours, msn.no_grad), (theirs, torch.no_grad)):
        total = (t + 1).sum()
        with no_grad():
            t -= 1.0
        total.backward()
    assert ours.grad.numpy().tolist() == theirs.grad.tolist() == [1.0, 1.0]


def test_an_optimizer_step_or_an_init_stamps_the_weights(torch):
    """A graph kept with retain_graph cannot walk back through weights an optimizer has moved
    (PyTorch raises too); nor through weights re-initialised in place."""
    from minisegnet import nn, optim
    layer = nn.Conv2d(1, 1, 3)
    x = msn.tensor(np.ones((1, 1, 5, 5), np.float32))
    out = layer(x).sum()
    out.backward(retain_graph=True)
    optim.SGD(layer.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError, match="Conv2d's backward needs values it saved in the forward pass"):
        out.backward()
    again = layer(x).sum()                            # recorded after the step: walks back as usual
    nn.init.zeros_(layer.bias)                         # the bias: Conv2d keeps nothing of it
    again.backward()
    nn.init.ones_(layer.weight)                        # the weight: Conv2d kept it for the input gradient
    x.requires_grad = True
    third = layer(x).sum()
    nn.init.zeros_(layer.weight)
    with pytest.raises(RuntimeError, match="changed in place since"):
        third.backward()


def _written_after_forward(lib, no_grad, make_loss, write):
    """A leaf, a loss recorded from it, then ``write`` in place under no_grad; the backward's outcome."""
    w = lib.tensor([2.0, 4.0], requires_grad=True)
    loss = make_loss(w)
    with no_grad():
        write(w)
    try:
        loss.backward()
    except RuntimeError as error:
        return "raised", str(error)
    return "walked", np.asarray(w.grad.tolist())


def _both(torch, make_loss, write):
    return (_written_after_forward(msn, msn.no_grad, make_loss, write),
            _written_after_forward(torch, torch.no_grad, make_loss, write))


def _sub_one(w):
    w -= 1.0


def _backward_outcome(loss, leaf):
    """``loss.backward()``'s outcome: "raised", or ``leaf``'s gradient as a list."""
    try:
        loss.backward()
    except RuntimeError:
        return "raised"
    return leaf.grad.tolist()


@pytest.mark.parametrize("view", [lambda w: w.reshape(2, 1), lambda w: w[0:2], lambda w: w.unsqueeze(0)],
                         ids=["reshape", "slice", "unsqueeze"])
def test_a_leaf_saved_through_a_view_and_then_written_is_an_error(torch, view):
    """Mul saved a view of w's array (its input is the view, not w): the gradient was silently
    2 * (new w) = [2, 6], not [4, 8]. PyTorch's views share their base's version counter."""
    ours, theirs = _both(torch, lambda w: (view(w) * view(w)).sum(), _sub_one)
    assert theirs[0] == "raised" and "modified by an inplace operation" in theirs[1]
    assert ours[0] == "raised", f"walked back to {ours[1]} (right: [4, 8])"
    assert "changed in place since" in ours[1]


def test_a_leaf_written_through_a_detached_alias_is_an_error(torch):
    """d = w.detach() shares w's memory; writing d changes what Mul saved (PyTorch: views and
    detach() share the version counter). Here the alias is still alive at the backward."""
    results = []
    for lib in (msn, torch):
        w = lib.tensor([2.0, 4.0], requires_grad=True)
        d = w.detach()                              # e.g. a copy of the weights kept "without grad"
        loss = (w * w).sum()
        d -= 1.0
        results.append(_backward_outcome(loss, w))  # ours was [2, 6]: the new values, silently
        assert d.shape == (2,)                      # d lives until here
    assert results == ["raised", "raised"]


def test_an_intermediate_written_in_place_before_the_backward_of_an_op_that_saved_it_is_an_error(torch):
    """h = 2 w, then h * h saves h; h -= 1 in no_grad() changed it. PyTorch raises."""
    results = []
    for lib, no_grad in ((msn, msn.no_grad), (torch, torch.no_grad)):
        w = lib.tensor([2.0, 4.0], requires_grad=True)
        h = w * 2.0
        loss = (h * h).sum()
        with no_grad():
            h -= 1.0
        results.append(_backward_outcome(loss, w))
    assert results == ["raised", "raised"]


@pytest.mark.parametrize("op", ["mul", "div", "matmul"])
def test_a_leaf_times_a_constant_walks_back_after_the_leaf_is_written(torch, op):
    """d(w * c)/dw = c needs c, not w: PyTorch saves w only when c requires grad, so writing w
    before the backward is no error there, and the gradient is right. Here it was refused."""
    make = {"mul": lambda lib, w: (w * lib.tensor([[3.0, 5.0]])).sum(),
            "div": lambda lib, w: (w / lib.tensor([[2.0, 4.0]])).sum(),
            "matmul": lambda lib, w: (lib.tensor([[1.0], [3.0]]) @ w).sum()}[op]
    got = {}
    for name, lib, no_grad in (("ours", msn, msn.no_grad), ("torch", torch, torch.no_grad)):
        w = lib.tensor([[2.0, 4.0]], requires_grad=True)      # an input of the op itself
        loss = make(lib, w)
        with no_grad():
            w -= 1.0
        loss.backward()
        got[name] = np.asarray(w.grad.tolist())
    np.testing.assert_allclose(got["ours"], got["torch"])


def test_load_state_dict_stamps_the_weights(torch):
    """torch's load_state_dict copies with copy_, which bumps the version: a graph recorded
    before the load cannot walk back through the weights it replaced."""
    layer = msn.nn.Conv2d(1, 1, 1)
    x = msn.tensor(np.ones((1, 1, 2, 2), np.float32), requires_grad=True)
    loss = layer(x).sum()                       # Conv2d saved the weight for x's gradient
    layer.load_state_dict({k: np.asarray(v) * 0 + 7 for k, v in layer.state_dict().items()})
    with pytest.raises(RuntimeError, match="changed in place since"):
        loss.backward()
    t_layer = torch.nn.Conv2d(1, 1, 1)
    tx = torch.ones((1, 1, 2, 2), requires_grad=True)
    t_loss = t_layer(tx).sum()
    t_layer.load_state_dict({k: v * 0 + 7 for k, v in t_layer.state_dict().items()})
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        t_loss.backward()


def test_a_leaf_written_through_a_slice_of_it_is_an_error(torch):
    """v = w[0:1] (taken in no_grad(), a view); v -= 1 changes w's first value, which Mul saved:
    the gradient was silently [2, 8] (right: [4, 8]). PyTorch raises."""
    results = []
    for lib, no_grad in ((msn, msn.no_grad), (torch, torch.no_grad)):
        w = lib.tensor([2.0, 4.0], requires_grad=True)
        loss = (w * w).sum()
        with no_grad():
            v = w[0:1]
            v -= 1.0
        results.append(_backward_outcome(loss, w))
        assert v.shape == (1,)
    assert results == ["raised", "raised"]


def test_an_element_written_through_a_temporary_view_is_an_error(torch):
    """w[0] -= 1 in no_grad(): the view w[0] is gone before the backward, but the memory it wrote
    is w's, which Mul saved. NumPy gave w[0] as a scalar copy, so this was an error about item
    assignment before; now a 0-d view (as CuPy's and PyTorch's) written through, then refused at
    the backward as in PyTorch."""
    results = []
    for lib, no_grad in ((msn, msn.no_grad), (torch, torch.no_grad)):
        w = lib.tensor([2.0, 4.0], requires_grad=True)
        loss = (w * w).sum()
        with no_grad():
            w[0] -= 1.0
        assert w.tolist() == [1.0, 4.0]
        results.append(_backward_outcome(loss, w))
    assert results == ["raised", "raised"]


def test_setitem_writes_in_place_under_the_in_place_rules():
    """x[index] = y as in PyTorch, except that nothing is broadcast but a number and nothing is
    truncated or wrapped (PyTorch would write 1.5 into an integer tensor as 1, and 300 into uint8
    as 44)."""
    x = msn.tensor(np.zeros((2, 3)))
    x[0] = 5
    x[1, 1:] = msn.tensor(np.array([7.0, 8.0]))
    x[x > 6] = 1
    assert x.numpy().tolist() == [[5, 5, 5], [0, 1, 1]]
    with pytest.raises(ValueError, match=r"y has shape \(2,\) but x\[index\] has \(3,\)"):
        x[0] = np.ones(2)
    with pytest.raises(IndexError, match="getitem: tensor index 5 does not fit"):
        x[5] = 1
    with pytest.raises(TypeError, match="y must be a number, a Tensor or an array"):
        x[0] = "a"
    with pytest.raises(RuntimeError, match="cannot be written into x's dtype int64 without truncating"):
        msn.tensor(np.zeros(2, np.int64))[0] = 1.5
    with pytest.raises(OverflowError, match=r"x\[index\] = y: y=300 cannot be converted to uint8"):
        msn.tensor(np.zeros(2, np.uint8))[0] = 300
    w = msn.tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"x\[index\] = y on a tensor that requires grad is not recorded"):
        w[0] = 1.0
    assert x.numpy().tolist() == [[5, 5, 5], [0, 1, 1]] and w.numpy().tolist() == [0, 0]   # nothing written


def test_a_full_reduction_and_a_full_index_give_arrays_not_numpy_scalars():
    """.data is always an array: NumPy's sum() of everything and x[i, j] gave NumPy scalars."""
    x = msn.tensor(np.arange(6.0).reshape(2, 3))
    for t in (x.sum(), x[1, 2]):
        assert isinstance(t.data, type(x.data)) and t.shape == ()
    view = x[1, 2]
    view -= 1.0                                     # a 0-d view: written into x
    assert x.numpy()[1, 2] == 4.0


@pytest.mark.parametrize("through_an_op", [False, True])
def test_a_gradient_tensor_of_another_dtype_gives_the_leaf_its_own_dtype(torch, through_an_op):
    """``backward(gradient)`` with a float64 Tensor on float32: the leaf's ``.grad`` is float32,
    as PyTorch's (and as with an array gradient); the old code kept float64 on a leaf."""
    a = msn.tensor(np.ones(3, np.float32), requires_grad=True)
    (a * 2 if through_an_op else a).backward(msn.tensor(np.ones(3, np.float64)))
    ta = torch.ones(3, requires_grad=True)
    (ta * 2 if through_an_op else ta).backward(torch.ones(3, dtype=torch.float64))
    assert a.grad.dtype == np.float32 and str(ta.grad.dtype) == "torch.float32"
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())


@pytest.mark.parametrize("op", [operator.lt, operator.le, operator.gt, operator.ge])
@pytest.mark.parametrize("other", [[1, 3], (1, 3), "ab", None])
def test_ordering_comparisons_refuse_a_list_as_pytorch(op, other):
    """``t < [1, 3]`` is Python's TypeError in PyTorch (as ``==`` is an identity test there and
    here); the old code compared elementwise through NumPy."""
    with pytest.raises(TypeError, match="not supported between instances of 'Tensor' and"):
        op(msn.tensor(np.array([1, 2])), other)


def test_ordering_comparisons_still_take_tensors_arrays_and_numbers():
    x = msn.tensor(np.array([1, 2]))
    assert (x < msn.tensor(np.array([2, 2]))).numpy().tolist() == [True, False]
    assert (x >= 2).numpy().tolist() == [False, True]
    assert (x <= msn.backend.get_array_module(x.data).asarray([0, 2])).numpy().tolist() == [False, True]
    assert (3 > x).numpy().tolist() == [True, True]


@pytest.mark.parametrize("a, b", [(np.array([0.1], np.float32), np.array(0.1)),
                                  (np.array([16777217]), 16777216.0),
                                  (np.array([1, 2], np.uint8), 2),
                                  (np.array([True, False]), 1),
                                  (np.array([1.5, 2.0]), np.array([1.5, 3.0], np.float32)),
                                  (np.array([3, 250], np.uint8), np.array([3, -6], np.int8))])
@pytest.mark.parametrize("op", [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge])
def test_comparisons_meet_in_pytorchs_dtype_first(torch, a, b, op):
    """PyTorch compares after type promotion (as for a + b): float32 against a zero-dimensional
    float64 0.1 compares in float32 (equal), an int64 against 16777216.0 in float32 (equal). The
    old code compared the raw arrays under NumPy's rules (not equal in both)."""
    ours = op(msn.tensor(a), msn.tensor(b) if isinstance(b, np.ndarray) else b)
    theirs = op(torch.tensor(a), torch.tensor(b) if isinstance(b, np.ndarray) else b)
    assert ours.dtype == np.bool_ and not ours.requires_grad
    assert ours.numpy().tolist() == theirs.numpy().tolist()


def test_a_comparison_refuses_a_number_the_integer_dtype_cannot_hold():
    """PyTorch wraps -1 to 255 against uint8 (so 1 < -1 is True there); arithmetic here refuses
    the number, and so does a comparison."""
    with pytest.raises(OverflowError, match="lt: the number -1 does not fit uint8"):
        msn.tensor(np.array([1], np.uint8)) < -1


def test_a_comparison_records_nothing_and_needs_one_device():
    x = msn.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x > msn.tensor(np.array(1.5))
    assert y.creator is None and not y.requires_grad and y.numpy().tolist() == [False, True]


@pytest.mark.parametrize("data", [2**63, 2**64 - 1, [2**63, 1], [[2**63], [-1]]])
def test_tensor_refuses_an_int_beyond_int64(torch, data):
    """PyTorch: 'Overflow when unpacking long long'. NumPy makes 2**63 uint64 (which the int64
    cast wrapped to -2**63) and [2**63, 1] float64 (a float32 tensor, silently)."""
    with pytest.raises((ValueError, RuntimeError, OverflowError), match="Overflow"):
        torch.tensor(data)
    with pytest.raises(OverflowError, match="tensor: an int beyond int64's range"):
        msn.tensor(data)


def test_tensor_takes_int64s_extremes_and_big_floats():
    assert msn.tensor(2**63 - 1).item() == 2**63 - 1 and msn.tensor(-2**63).item() == -2**63
    assert msn.tensor([2**63, 1.5]).dtype == np.float32


@pytest.mark.parametrize("dtype, value", [(np.uint8, np.int64(300)), (np.uint8, np.uint64(2**64 - 1)),
                                          (np.uint8, -1), (np.float32, 1e300), (np.float32, np.float64(1e300)),
                                          (np.float16, 1e6), (np.int64, float("nan"))])
def test_setitem_refuses_a_number_its_dtype_cannot_hold(torch, dtype, value):
    """PyTorch: 'value cannot be converted to type ... without overflow'. The old code checked
    Python ints only: np.int64(300) into uint8 wrote 44, 1e300 into float32 wrote inf."""
    x = msn.tensor(np.array([1, 2], dtype))
    with pytest.raises(OverflowError, match=r"x\[index\] = y: y=.* cannot be converted to"):
        x[0] = value
    assert x.numpy().tolist() == [1, 2]


# ---- A review of the engine against PyTorch (stop 40): each fails on the code before -------------
def test_a_leafs_grad_is_writable_and_its_own_memory(torch):
    """A gradient through sum() was a broadcast_to view (read-only on NumPy); through an addition
    and a reshape two leaves' .grad shared one array, so changing one changed the other."""
    x = msn.tensor(np.ones(3), requires_grad=True)
    x.sum().backward()
    with msn.no_grad():
        x.grad *= 2
    assert x.grad.numpy().tolist() == [2.0, 2.0, 2.0]
    for view in (lambda b: b.reshape(2, 2), lambda b: b.reshape(2, 2).transpose(0, 1)):
        a = msn.tensor(np.ones((2, 2)), requires_grad=True)
        b = msn.tensor(np.ones(4), requires_grad=True)
        ((a + view(b)) * msn.tensor(np.full((2, 2), 3.0))).sum().backward()
        with msn.no_grad():
            a.grad *= 0
        assert b.grad.numpy().tolist() == [3.0] * 4
    given = np.ones(3)
    y = msn.tensor(np.ones(3), requires_grad=True)
    y.backward(given)
    y.grad.data[0] = 5
    assert given.tolist() == [1.0, 1.0, 1.0]                 # the caller's gradient is theirs


def test_gradients_accumulate_in_place_as_pytorchs(torch):
    x = msn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (tx * tx).sum().backward()
    tfirst = tx.grad
    (tx * tx).sum().backward()
    assert (first is x.grad) == (tfirst is tx.grad) == True    # noqa: E712
    assert first.numpy().tolist() == tfirst.numpy().tolist() == [4.0, 8.0]


def test_a_custom_backward_may_return_tensors():
    """A PyTorch habit: the returned Tensor is taken as its array (it was kept, a Tensor inside
    .grad, and the optimizer failed far from the cause)."""
    class Double(msn.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return msn.tensor(g * 2)

    x = msn.tensor(np.ones(3), requires_grad=True)
    Double()(x).sum().backward()
    assert msn.backend.is_array(x.grad.data) and x.grad.numpy().tolist() == [2.0] * 3


def test_a_power_by_a_number_keeps_only_its_base(torch):
    """x ** 2 needs x for its gradient, not its output (PyTorch saves the base alone): writing
    into the output before the backward is fine there, and was refused here."""
    x = msn.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    z = x ** 2
    y = z.sum()
    with msn.no_grad():
        z -= 1
    y.backward()
    assert x.grad.numpy().tolist() == [2.0, 4.0, 6.0]
    w = msn.tensor(np.array([2.0]), requires_grad=True)
    out = msn.tensor(np.array([3.0])) ** w                 # the exponent's gradient needs the output
    total = out.sum()
    with msn.no_grad():
        out -= 1
    with pytest.raises(RuntimeError, match="Pow's backward needs values it saved"):
        total.backward()


def test_no_grad_decorates_a_generator_function_for_each_step():
    @msn.no_grad()
    def doubled(x):
        yield x * 2
        yield x * 3
        return "done"

    x = msn.tensor(np.ones(3), requires_grad=True)
    steps = doubled(x)
    assert not next(steps).requires_grad and msn.is_grad_enabled()     # off inside, on between steps
    assert not next(steps).requires_grad
    with pytest.raises(StopIteration) as stop:
        next(steps)
    assert stop.value.value == "done"


def test_gradcheck_takes_a_computed_input_and_an_output_that_ignores_the_inputs():
    leaf = msn.tensor(np.array([0.3, -0.7, 1.1]), requires_grad=True)
    assert gradcheck(lambda t: t * t, [leaf * 1.0])
    assert gradcheck(lambda t: msn.tensor(np.ones(3)), [msn.tensor(np.ones(3), requires_grad=True)])
    transposed = msn.tensor(np.arange(6.0).reshape(2, 3).T, requires_grad=True)
    before = transposed.data
    assert gradcheck(lambda t: (t * t).sum(), [transposed])
    assert transposed.data is before and transposed.grad is None           # the caller's tensor untouched


def test_requires_grad_and_grad_are_checked_when_assigned(torch):
    """PyTorch checks both attributes as requires_grad_ does; plain attributes let an int tensor
    require grad, cut a graph silently, or take a .grad of another shape."""
    with pytest.raises(TypeError, match="only a floating-point tensor can require gradients"):
        msn.tensor(np.array([1, 2, 3])).requires_grad = True
    with pytest.raises(RuntimeError, match="only a leaf's requires_grad can be turned off"):
        (msn.tensor(np.ones(3), requires_grad=True) * 2).requires_grad = False
    x = msn.tensor(np.ones(1), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"assigned grad of shape \(3,\) .* must match"):
        x.grad = msn.tensor(np.zeros(3))
    with pytest.raises(TypeError, match="grad must be a Tensor or None"):
        x.grad = np.zeros(1)
    x.grad = msn.tensor(np.zeros(1))
    x.grad = None
    y = msn.tensor(np.ones(2))
    y.requires_grad = True
    (y * 2).sum().backward()
    assert y.grad.numpy().tolist() == [2.0, 2.0]


# ---- mutation review of stop 40's changes
def test_accumulating_into_a_grad_that_a_graph_saved_is_a_write_it_sees():
    """The in-place += into .grad stamps it written: a graph that saved .grad refuses its backward."""
    x = msn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    w = msn.tensor(np.ones(2), requires_grad=True)
    y = (x.grad * w).sum()                     # Mul saves x.grad's array for w's gradient
    (x * 3).sum().backward()                   # x.grad += 3, in place
    with pytest.raises(RuntimeError):
        y.backward()


def test_two_leaves_given_views_of_one_gradient_get_their_own_memory():
    """Add passes one view (Reshape's) to both leaves: the second is copied, as the two views share a base."""
    x, z = msn.tensor(np.ones(4), requires_grad=True), msn.tensor(np.ones(4), requires_grad=True)
    loss = ((x + z).reshape(2, 2) * msn.tensor(np.full((2, 2), 3.0))).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert x.grad.numpy().tolist() == z.grad.numpy().tolist() == [6.0] * 4


def test_a_read_only_gradient_from_a_custom_backward_is_copied_into_grad():
    class Frozen(msn.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            out = g * 2
            out.flags.writeable = False
            return out

    x = msn.tensor(np.ones(3), requires_grad=True)
    Frozen()(x).sum().backward()
    Frozen()(x).sum().backward()               # accumulates in place: .grad must be writable
    assert x.grad.numpy().tolist() == [4.0] * 3


def test_grad_assigned_by_hand_must_have_the_tensors_dtype():
    x = msn.tensor(np.zeros(2, np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="must match"):
        x.grad = msn.tensor(np.zeros(2, np.float64))


def test_no_grad_on_a_generator_passes_sent_values_on():
    @msn.no_grad()
    def echo():
        received = yield msn.is_grad_enabled()
        yield received

    steps = echo()
    assert next(steps) is False and steps.send("hello") == "hello"


def test_a_gradient_on_the_device_is_moved_to_a_host_tensor(cupy):
    x = msn.tensor(np.array([1.0, 2.0])).to_backend("numpy").requires_grad_()
    x.backward(cupy.asarray(np.array([3.0, 4.0])))
    assert msn.backend.get_array_module(x.grad.data) is np and x.grad.numpy().tolist() == [3.0, 4.0]


def test_a_view_given_as_gradient_stays_the_callers():
    """The caller's gradient is theirs by its memory: a slice of their array is copied, never accumulated into."""
    buffer = np.ones(4)
    x = msn.tensor(np.zeros(2), requires_grad=True)
    x.backward(buffer[:2])
    x.backward(buffer[:2])
    assert x.grad.numpy().tolist() == [2.0, 2.0] and buffer.tolist() == [1.0] * 4


def test_a_float_list_with_a_numpy_float32_and_a_huge_int_is_a_float_tensor(torch):
    data = [2**63, np.float32(1.0)]     # NumPy: float64; an int past int64 and a float: a float tensor
    assert msn.tensor(data).dtype == np.float32 and torch.tensor(data).dtype == torch.float32



def test_reading_grad_of_a_computed_tensor_warns_as_pytorch(torch):
    """backward() fills .grad for leaves only; reading it on a computed tensor that requires grad
    gives None with a UserWarning, as PyTorch warns (a learner's `y.grad` after `loss.backward()`
    was a silent None). A leaf, a tensor that does not require grad and a computed tensor under
    no_grad read None quietly, in both libraries."""
    import warnings

    def reads(lib, make):
        x = make([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.sum().backward()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            computed = y.grad
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            quiet = [x.grad is not None, make([1.0]).grad, (make([1.0], requires_grad=True) * 1).detach().grad]
            with lib.no_grad():
                quiet.append((x * 2).grad)
        return computed, [w.category for w in seen], quiet

    ours = reads(msn, msn.tensor)
    theirs = reads(torch, torch.tensor)
    assert ours[0] is None and theirs[0] is None
    assert ours[1] == theirs[1] == [UserWarning]
    assert ours[2] == theirs[2] == [True, None, None, None]


def _quiet_reads(lib, make):
    x = make([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.grad = make([5.0, 6.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return [x.grad, y.grad.tolist()]


def test_reading_grad_of_a_fresh_leaf_or_an_assigned_one_is_quiet_as_pytorch(torch):
    assert _quiet_reads(msn, msn.tensor) == _quiet_reads(torch, torch.tensor) == [None, [5.0, 6.0]]


def test_the_non_leaf_grad_warning_names_the_callers_line():
    y = msn.tensor([1.0], requires_grad=True) * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert y.grad is None
    assert [w.filename for w in caught] == [__file__]


@pytest.mark.parametrize("use", [list, sum, tuple])
def test_iterating_a_zero_dim_tensor_is_a_type_error_as_torch(torch, use):
    """Tensor has __getitem__ but no __iter__, so Python iterates by indexing t[0], t[1], ...
    until an IndexError: a 0-d tensor iterated as empty, sum(loss) was 0 and list(loss) []
    without a word. PyTorch raises TypeError('iteration over a 0-d tensor')."""
    with pytest.raises(TypeError):
        use(torch.tensor(5.0))
    with pytest.raises(TypeError):
        use(msn.tensor(5.0))


def test_iterating_a_tensor_walks_its_first_axis_as_torch(torch):
    x = np.arange(6.0).reshape(3, 2)
    assert [r.numpy().tolist() for r in msn.tensor(x)] == [r.tolist() for r in torch.tensor(x)]


@pytest.mark.parametrize("data", [[np.uint64(2**63)], [np.uint64(2**64 - 1), 1], [[np.uint64(2**63)], [np.uint64(1)]]])
def test_tensor_does_not_wrap_numpy_uint64_scalars_beyond_int64(torch, data):
    """PyTorch refuses a list of NumPy uint64 scalars. _has_big_int looked at Python ints only, so
    [np.uint64(2**63)] became int64 -2**63 (a silent wrap) and [np.uint64(2**64 - 1), 1] a float32
    1.8e19 ('No argument is silently truncated or wrapped', docs/guarantees.md)."""
    with pytest.raises((TypeError, ValueError, RuntimeError, OverflowError)):
        torch.tensor(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # and no RuntimeWarning from a wrapping cast
        with pytest.raises((TypeError, OverflowError)):
            msn.tensor(data)


def test_tensor_of_floats_and_an_int_past_uint64_is_float32_as_pytorchs(torch):
    """torch.tensor([1.5, 2**64]) is float32 (as [2**63, 1.5] is, here and there); NumPy makes the
    list an object array, which tensor() refused as 'dtype object'."""
    assert torch.tensor([1.5, 2**64]).dtype == torch.float32
    x = msn.tensor([1.5, 2**64])
    assert x.dtype == np.float32 and x.numpy().tolist() == [1.5, float(np.float32(2**64))]


@pytest.mark.parametrize("on_device", [False, True])
def test_an_int_beyond_int64_beside_a_device_array_is_refused_as_beside_a_host_one(cupy, on_device):
    """[array(5), 2**63] is an OverflowError with a NumPy array; with a CuPy array _as_array first
    assembled the list on the device (uint64 and int64: float64) and then asked _beyond_int64 about
    that array instead of the list, so _has_big_int saw no Python int and the tensor came out
    float32 [5.0, 9.2e18], silently."""
    xp = cupy if on_device else np
    with pytest.raises(OverflowError, match="tensor: an int beyond int64's range"):
        msn.tensor([xp.asarray(np.int64(5)), 2**63])


def test_int64s_smallest_beside_a_float_array_is_a_float_tensor_not_an_overflow(torch):
    """-2**63 is int64's own: beside a 0-d float array (a Tensor's data in a list) NumPy reads the
    list as float64 with |-2**63| = 2**63, so only the int's own range check tells it from 2**63."""
    ours = msn.tensor([-2**63, msn.tensor(np.float32(1.0))])
    theirs = torch.tensor([-2**63, 1.0])
    assert ours.dtype == np.float32 and str(theirs.dtype) == "torch.float32"
    assert ours.numpy().tolist() == theirs.tolist()


def test_an_int_past_uint64_alone_is_a_type_error_naming_int64():
    """[2**64] is an object array to NumPy (no float beside it): the TypeError that says why, not the
    float path meant for [1.5, 2**64]."""
    with pytest.raises(TypeError, match=r"an int beyond int64's range\?"):
        msn.tensor([2**64])


def test_iterating_a_zero_dim_tensor_says_so_as_torch(torch):
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(torch.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(msn.tensor(1.0))


def test_no_grad_in_another_thread_leaves_this_threads_graph_alone(torch):
    """PyTorch's grad mode is thread-local: one thread evaluating under ``no_grad`` does not stop
    another from recording its graph. Ours is one module-level switch (grad_mode.enabled), so a
    user's evaluation thread inside ``no_grad`` made this thread's conv record nothing
    (y.requires_grad False, and backward then fails), depending on timing."""
    entered, leave = threading.Event(), threading.Event()

    def evaluator(no_grad):
        with no_grad():
            entered.set()
            leave.wait(10)

    results = {}
    for name, lib, no_grad in (("torch", torch, torch.no_grad), ("minisegnet", msn, msn.no_grad)):
        entered.clear()
        leave.clear()
        other = threading.Thread(target=evaluator, args=(no_grad,))
        other.start()
        try:
            assert entered.wait(10)
            if lib is torch:
                x = torch.ones((1, 1, 4, 4), dtype=torch.float64, requires_grad=True)
                y = torch.nn.functional.conv2d(x, torch.ones((1, 1, 3, 3), dtype=torch.float64))
                results[name] = (torch.is_grad_enabled(), y.requires_grad)
            else:
                x = msn.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
                y = F.conv2d(x, msn.tensor(np.ones((1, 1, 3, 3))))
                results[name] = (msn.is_grad_enabled(), y.requires_grad)
        finally:
            leave.set()
            other.join(10)
    assert results["torch"] == (True, True)
    assert results["minisegnet"] == results["torch"]


def test_setitem_with_an_int_beside_an_advanced_index_writes_where_torch_writes(torch):
    """x[0, :, [0, 1]] is x[0][:, [0, 1]] in PyTorch, of shape (2, 2) here whichever rule: NumPy's rule
    (the int counted as an advanced index, the advanced axes first) wrote y transposed, without a word."""
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    x, tx = msn.tensor(np.zeros((2, 2, 2))), torch.zeros((2, 2, 2), dtype=torch.float64)
    x[0, :, [0, 1]] = y
    tx[0, :, torch.tensor([0, 1])] = torch.tensor(y)
    np.testing.assert_array_equal(x.numpy(), tx.numpy())      # torch [[1, 2], [3, 4]] in x[0]; old [[1, 3], [2, 4]]


@pytest.mark.parametrize("value", [1j, np.array([1j, 2j]), np.array(["a", "b"])])
def test_setitem_of_a_value_that_is_not_a_number_type_is_a_clear_error(value):
    """x[:] = a complex or string value: a TypeError naming y (as msn.tensor refuses such data), not the
    bare KeyError: 'c' of promotion._category."""
    x = msn.tensor(np.zeros(2))
    with pytest.raises((TypeError, ValueError, RuntimeError), match=r"x\[index\] = y"):
        x[:] = value
    assert x.numpy().tolist() == [0.0, 0.0]


@pytest.mark.parametrize("make", [
    lambda t: [np.float64(1.5), 2.0],
    lambda t: [np.uint8(3), np.uint8(4)],
    lambda t: [[np.float16(1.0)]],
    lambda t: [np.int32(3), 4],
])
def test_a_list_of_numpy_scalars_keeps_their_dtype_as_torch_tensor(torch, make):
    """torch.tensor([np.float64(1.5), 2.0]) is float64 (a NumPy scalar keeps its dtype, as
    an array does); ours made every list float32 or int64, as if of Python numbers."""
    ours, theirs = msn.tensor(make(None)), torch.tensor(make(None))
    assert str(theirs.dtype) == f"torch.{ours.dtype}"


def test_a_list_of_zero_dim_float64_tensors_stays_float64(torch):
    """msn.tensor([loss_a, loss_b]) of float64 values (a float64 model's losses) rounded them to
    float32; torch.tensor of 0-d float64 tensors is float64."""
    values = [1.0 + 1e-12, 2.0]
    theirs = torch.tensor([torch.tensor(v, dtype=torch.float64) for v in values])
    ours = msn.tensor([msn.tensor(np.array(v)) for v in values])
    assert theirs.dtype == torch.float64
    assert ours.dtype == np.float64
    assert ours.numpy().tolist() == theirs.numpy().tolist()


def test_a_view_made_in_no_grad_is_not_written_with_grad_mode_on(torch):
    """y = w[0] inside no_grad() is a view of a leaf that requires grad; PyTorch refuses to write into it
    once grad mode is back ("a view ... created in no_grad mode and is being modified inplace with grad
    mode enabled"). The write went into w's array here."""
    tw = torch.ones((2, 2), dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        ty = tw[0]
    with pytest.raises(RuntimeError, match="no_grad mode"):
        ty[0] = 5.0
    w = msn.tensor(np.ones((2, 2)), requires_grad=True)
    with msn.no_grad():
        y = w[0]
    with pytest.raises(RuntimeError):
        y[0] = 5.0
    with pytest.raises(RuntimeError):
        y -= 1.0
    assert w.numpy().tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_only_views_of_a_grad_tensor_made_in_no_grad_are_refused_with_grad_mode_on():
    """A copy made in no_grad() (w * 2) is the caller's to write; a view of a view is still a view
    of w; inside no_grad() the write is an update by hand, allowed (PyTorch's rules)."""
    w = msn.tensor(np.ones((2, 3)), requires_grad=True)
    with msn.no_grad():
        copy, row = w * 2, w[0]
        element = row[1:]
    copy += 1                                         # not a view: written
    assert copy.numpy().tolist() == [[3.0] * 3] * 2
    with pytest.raises(RuntimeError, match="made inside no_grad"):
        element[0] = 7.0
    with msn.no_grad():
        row -= 1                                      # an update by hand: allowed
    assert w.numpy().tolist() == [[0.0] * 3, [1.0] * 3]
