"""minisegnet.functional's signatures against torch.nn.functional's: the same argument names, in order."""
import inspect

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import functional as F

# torch's arguments that minisegnet leaves out: deprecated (size_average, reduce, softmax's
# implicit dim helper)
_NOT_OURS = {"size_average", "reduce", "_stacklevel"}
# torch's public name is a dispatching wrapper (*args, **kwargs); its signature is here
_TORCH_SIGNATURE_OF = {"max_pool2d": "max_pool2d_with_indices"}


def _torch_parameters(fn):
    """The argument names of a torch.nn.functional function; for the ones written in C++ (conv2d,
    avg_pool2d, ...), from the signature line that opens their docstring."""
    try:
        return list(inspect.signature(fn).parameters)
    except ValueError:
        line = fn.__doc__.strip().splitlines()[0]
        inside = line[line.index("(") + 1:line.rindex(")")]
        return [part.split("=")[0].strip() for part in inside.split(",") if part.strip() not in ("*", "")]


def _shared_functions(torch):
    names = [n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n))
             and callable(getattr(torch.nn.functional, n, None))]
    assert len(names) >= 25, names          # the comparison below covers the whole shared API
    return names


def test_every_shared_function_takes_torchs_argument_names_in_torchs_order(torch):
    mismatched = {}
    for name in _shared_functions(torch):
        theirs = getattr(torch.nn.functional, _TORCH_SIGNATURE_OF.get(name, name))
        ours = list(inspect.signature(getattr(F, name)).parameters)
        expected = [p for p in _torch_parameters(theirs) if p not in _NOT_OURS]
        if ours != [p for p in expected if p in ours]:      # each of ours is torch's, in torch's order
            mismatched[name] = (ours, expected)
    assert not mismatched


@pytest.mark.parametrize("name, kwargs", [
    ("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.1}), ("sigmoid", {}), ("tanh", {}),
    ("softmax", {"dim": 1}), ("log_softmax", {"dim": 1}), ("dropout", {"p": 0.5, "training": False}),
    ("dropout2d", {"p": 0.5, "training": False}), ("pad", {"pad": (1, 1)}), ("interpolate", {"scale_factor": 2}),
    ("max_pool2d", {"kernel_size": 2}), ("avg_pool2d", {"kernel_size": 2}),
    ("adaptive_avg_pool2d", {"output_size": 1}),
])
def test_the_tensor_is_passed_by_torchs_keyword_input(name, kwargs, torch):
    """A torch user's ``F.relu(input=t)``: the same result as torch's with the same keywords."""
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    ours = getattr(F, name)(input=msn.tensor(x), **kwargs).numpy()
    theirs = getattr(torch.nn.functional, name)(input=torch.tensor(x), **kwargs).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_center_crop_takes_input_by_keyword_like_the_rest():
    """Ours only (U-Net's copy-and-crop), named as the other functional ops' tensor argument."""
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(F.center_crop(input=msn.tensor(x), size=2).numpy(), x[:, :, 1:3, 1:3])


def test_max_unpool2d_takes_input_by_keyword(torch):
    x = np.random.default_rng(1).standard_normal((1, 1, 4, 4)).astype(np.float32)
    pooled, indices = F.max_pool2d(msn.tensor(x), 2, return_indices=True)
    ours = F.max_unpool2d(input=pooled, indices=indices, kernel_size=2).numpy()
    t_pooled, t_indices = torch.nn.functional.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(ours, torch.nn.functional.max_unpool2d(input=t_pooled, indices=t_indices,
                                                                         kernel_size=2).numpy())


def test_every_shared_module_forward_takes_torchs_argument_names(torch):
    """``layer.forward(input=...)`` works as in torch.nn (our layers named it ``x``)."""
    import minisegnet.nn as mnn
    names = [n for n in dir(mnn) if inspect.isclass(getattr(mnn, n)) and n not in ("Module", "ModuleList", "ModuleDict")
             and inspect.isclass(getattr(torch.nn, n, None)) and hasattr(getattr(mnn, n), "forward")]
    assert len(names) >= 20, names
    mismatched = {}
    for name in names:
        ours = list(inspect.signature(getattr(mnn, name).forward).parameters)[1:]
        theirs = list(inspect.signature(getattr(torch.nn, name).forward).parameters)[1:]
        if ours != theirs:
            mismatched[name] = (ours, theirs)
    assert not mismatched


def test_softmax_dtype_and_interpolate_antialias_as_torch(torch):
    """softmax(dtype=) casts first, as torch; interpolate takes antialias=False (torch's default)
    and names what it lacks for True (both were a bare 'unexpected keyword argument')."""
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for ours, theirs in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        y = ours(msn.tensor(x), 1, dtype=np.float64)
        assert y.dtype == np.float64
        np.testing.assert_allclose(y.numpy(), theirs(torch.tensor(x), 1, dtype=torch.float64).numpy(), rtol=1e-12)
    with pytest.raises(TypeError, match="^softmax: dtype must be a floating-point dtype"):
        F.softmax(msn.tensor(x), 1, dtype=np.int64)
    # the gradient flows back through the cast, to the input's dtype
    g = np.random.default_rng(1).standard_normal((2, 3))
    for ours, theirs in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        xt, tx = msn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        (ours(xt, 1, dtype=np.float64) * msn.tensor(g)).sum().backward()
        (theirs(tx, 1, dtype=torch.float64) * torch.tensor(g)).sum().backward()
        assert xt.grad.dtype == np.float32
        np.testing.assert_allclose(xt.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7)
    img = msn.tensor(np.zeros((1, 1, 4, 4), np.float32))
    assert F.interpolate(img, size=2, antialias=False).shape == (1, 1, 2, 2)
    for mode in ("bilinear", "nearest"):
        with pytest.raises(ValueError, match="antialias=True .* is not implemented"):
            F.interpolate(img, size=2, mode=mode, antialias=True)
    with pytest.raises(TypeError, match="antialias"):
        F.interpolate(img, size=2, antialias="yes")


def test_manual_seed_refusing_a_negative_seed_is_documented(torch):
    """torch.manual_seed(-1) seeds (as 2**64 - 1); ours refuses it with a ValueError, which only a
    code comment in minisegnet/random.py mentions. Either accept it as torch does, or say so."""
    torch.manual_seed(-1)                      # accepted by the reference
    try:
        msn.manual_seed(-1)
    except ValueError:
        doc = msn.manual_seed.__doc__.lower()
        assert "negative" in doc and "pytorch" in doc, doc


def test_numpy_of_a_tensor_that_requires_grad_is_documented(torch):
    """torch refuses ``t.numpy()`` when ``t`` requires grad (it wants ``t.detach().numpy()``,
    or ``numpy(force=True)``); ours returns the array. A difference the docstring should state."""
    with pytest.raises(RuntimeError):
        torch.ones(2, requires_grad=True).numpy()
    t = msn.tensor(np.ones(2, np.float32), requires_grad=True)
    t.numpy()                                  # ours accepts it
    doc = msn.Tensor.numpy.__doc__
    assert "requires_grad" in doc or "requires grad" in doc, doc
