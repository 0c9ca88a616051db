"""Small helpers shared by the tests (import as ``from helpers import ...``)."""
import numpy as np

import minisegnet as msn


def t64(array, requires_grad=True):
    """A float64 minisegnet tensor on the current backend."""
    return msn.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


def as_torch(torch, array, requires_grad=True):
    """A float64 (or array-dtype) torch leaf tensor holding the same numbers."""
    data = msn.backend.to_numpy(array.data if isinstance(array, msn.Tensor) else array)
    t = torch.tensor(np.array(data))
    if requires_grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def assert_close(ours, theirs, atol=1e-10, rtol=1e-10, what="values"):
    """Compare a minisegnet tensor/array with a torch tensor or array."""
    a = ours.numpy() if isinstance(ours, msn.Tensor) else msn.backend.to_numpy(ours)
    b = theirs.detach().cpu().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=what)
