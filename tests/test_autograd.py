"""The Tensor, the graph walk, no_grad, seeding, and gradcheck itself."""
import numpy as np
import pytest

import minisegnet as msn
from minisegnet.testing import GradcheckError, gradcheck
from helpers import t64


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
    with pytest.raises(RuntimeError, match="`grad`"):
        (x * 2).backward()
    (x * 2).backward(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(x.grad.numpy(), [2, 2])


def test_backward_grad_argument_shape_checked():
    x = msn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="grad"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(TypeError, match="`grad` must be a Tensor or an array of numbers"):
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
    a = msn.nn.init.kaiming_uniform((4, 3, 3, 3))
    msn.manual_seed(7)
    b = msn.nn.init.kaiming_uniform((4, 3, 3, 3))
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
