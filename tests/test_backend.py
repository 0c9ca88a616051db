"""The backend switch: where tensors live, moving them, and asking for CuPy where it is missing.

Cross-backend tests use the session's ``cupy`` module (real CuPy on a GPU, the
CPU stand-in elsewhere), so they run in the NumPy session as well.
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import minisegnet as msn
from minisegnet import backend
from minisegnet import functional as F


def _is_device(t, cupy):
    return isinstance(t.data, cupy.ndarray)


# ---- Tensor.to_backend --------------------------------------------------------------------------
@pytest.mark.parametrize("current", ["numpy", "cupy"])
def test_to_backend_moves_to_the_named_backend_whatever_the_current_one(current, cupy):
    msn.set_backend(current)
    host = msn.tensor(np.arange(6.0).reshape(2, 3)).to_backend("numpy")
    assert isinstance(host.data, np.ndarray)
    device = host.to_backend("cupy")
    assert _is_device(device, cupy)
    back = device.to_backend("numpy")
    assert isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.numpy(), np.arange(6.0).reshape(2, 3))
    leaf = msn.tensor([1.0, 2.0], requires_grad=True).to_backend("cupy")
    assert leaf.requires_grad and leaf.is_leaf and _is_device(leaf, cupy)
    assert device.to_backend("cupy").data is device.data        # already there: no copy


def test_the_mixing_error_names_a_remedy_that_works(cupy):
    a = msn.tensor([1.0, 2.0]).to_backend("numpy")
    b = msn.tensor([3.0, 4.0]).to_backend("cupy")
    with pytest.raises(TypeError, match="to_backend"):
        a + b
    np.testing.assert_array_equal((a.to_backend("cupy") + b).numpy(), [4.0, 6.0])


# ---- scatter-add ----------------------------------------------------------------------------------
def test_repeated_index_backward_accumulates_without_deprecation_warnings(cupy):
    x = msn.tensor([1.0, 2.0, 3.0], requires_grad=True).to_backend("cupy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # cupyx.scatter_add warns on every call in CuPy 14
        y = x[msn.tensor([0, 0, 2]).to_backend("cupy")].sum()
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])


# ---- asking for CuPy where it is missing ---------------------------------------------------------
def test_set_backend_cupy_without_cupy_says_so_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)       # `import cupy` now fails
    monkeypatch.setattr(backend, "_cupy", None)
    msn.set_backend("numpy")
    with pytest.raises(RuntimeError) as info:
        msn.set_backend("cupy")
    message = str(info.value)
    assert "\n" not in message and message.startswith("set_backend('cupy'): CuPy is not installed")
    assert "pip install 'minisegnet[cuda12]'" in message
    assert msn.get_backend() == "numpy" and not backend.cupy_available()


def test_set_backend_cupy_without_a_gpu_says_so_in_one_line(monkeypatch, cupy):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    monkeypatch.setattr(cupy.cuda.runtime, "getDeviceCount", no_device)
    monkeypatch.setattr(backend, "_cupy", None)
    msn.set_backend("numpy")
    with pytest.raises(RuntimeError, match=r"^set_backend\('cupy'\): CuPy .* sees no CUDA GPU \(.*no CUDA-capable"):
        msn.set_backend("cupy")
    assert msn.get_backend() == "numpy"


def _python(code, backend_name, hide_cupy=True):
    env = dict(os.environ, MINISEGNET_BACKEND=backend_name)
    prelude = "import sys; sys.modules['cupy'] = None\n" if hide_cupy else ""
    return subprocess.run([sys.executable, "-c", prelude + code], env=env, capture_output=True, text=True,
                          timeout=120)


def test_environment_asking_for_cupy_without_cupy_fails_at_first_use_not_at_import():
    done = _python("import minisegnet as msn\nprint(msn.get_backend())", "cupy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cupy"
    done = _python("import minisegnet as msn\nmsn.tensor([1.0])", "cupy")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: MINISEGNET_BACKEND=cupy: CuPy is not installed"), done.stderr
    done = _python("import minisegnet as msn\nmsn.set_backend('numpy'); print(msn.tensor([1.0]).shape)", "cupy")
    assert done.returncode == 0 and done.stdout.strip() == "(1,)", done.stderr


def test_environment_with_a_misspelt_backend_is_a_clear_error():
    done = _python("import minisegnet", "gpu")
    assert done.returncode == 1
    assert "MINISEGNET_BACKEND must be one of ('numpy', 'cupy') (or unset), got 'gpu'" in done.stderr
