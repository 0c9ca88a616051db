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


def traffic_per_step(transfers, train_steps):
    """Host-device copies of one training step, by call site (the CuPy stand-in counts them).

    ``transfers``: the fixture; ``train_steps(steps)`` trains a fresh run of
    ``steps`` steps. Two runs that differ only in their number of steps (2 and
    4): the difference of their traffic, halved, is what one step moves.
    Returns ``({(direction, site, what): (copies, bytes)}, text)``, the text
    listing them for an assertion's message."""
    logs = {}
    for steps in (2, 4):
        with transfers() as log:
            train_steps(steps)
        logs[steps] = log.by_site()
    per_step = {}
    for key in set(logs[2]) | set(logs[4]):
        n = logs[4].get(key, (0, 0))[0] - logs[2].get(key, (0, 0))[0]
        size = logs[4].get(key, (0, 0))[1] - logs[2].get(key, (0, 0))[1]
        if n:
            per_step[key] = (n / 2, size / 2)
    shown = "\n".join(f"{d} {s} {w}: {n:g} x, {b:g} B" for (d, s, w), (n, b) in sorted(per_step.items()))
    return per_step, shown
