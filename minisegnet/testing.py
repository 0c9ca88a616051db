"""Check an op's analytic gradient against finite differences.

``gradcheck(fn, inputs)`` perturbs each float64 input by +-eps and compares
``(f(x + eps e) - f(x - eps e)) / 2eps`` (the central difference, error
O(eps^2)) with what ``backward`` computed. ``fn`` may return any tensor; it is
reduced to a scalar by a fixed random projection ``sum(fn(*inputs) * r)`` so
every output element takes part.

Small inputs are checked element by element. For inputs larger than
``max_elementwise`` elements, a random-direction check compares the
directional derivative along a random unit vector ``v``,
``(f(x + eps v) - f(x - eps v)) / 2eps``, with ``<grad, v>``; a few directions
catch any wrong gradient with probability 1 at a fraction of the cost.
"""
import numpy as np

from . import backend
from .autograd import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised when analytic and numerical gradients disagree."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, max_elementwise=200, directions=3, seed=0):
    """Return True if every input's gradient matches finite differences, else raise.

    ``inputs``: a sequence of Tensors; those with ``requires_grad`` are checked
    and must be float64 (float32 differences are too coarse to mean anything).
    The error message names the input, the element (or direction) and both values.
    """
    inputs = list(inputs)
    rng = np.random.default_rng(seed)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; use float64")
    for i in checked:
        # Each checked input becomes a leaf of its own, a contiguous copy: the analytic gradient
        # is read from its .grad, which only leaves get (an input computed from another tensor
        # would have none), and the perturbations below write through a flat view of it
        # (reshape(-1) of a transposed array would be a copy, the writes lost), never into the
        # caller's tensor.
        data = inputs[i].data
        inputs[i] = Tensor(backend.get_array_module(data).array(data, order="C", copy=True), requires_grad=True)

    out = fn(*inputs)
    xp = backend.get_array_module(out.data)
    projection = xp.asarray(rng.standard_normal(out.shape))

    def scalar():
        with no_grad():
            return float((fn(*inputs).data * projection).sum())

    if out.requires_grad:               # else the output does not depend on the inputs: all gradients 0
        (out * Tensor._wrap(projection)).sum().backward()

    for i in checked:
        t = inputs[i]
        analytic = backend.to_numpy(t.grad.data) if t.grad is not None else np.zeros(t.shape)
        original = t.data.copy().reshape(-1)
        if t.size <= max_elementwise:
            flat = t.data.reshape(-1)
            for j in range(t.size):
                flat[j] = original[j] + eps
                plus = scalar()
                flat[j] = original[j] - eps
                minus = scalar()
                flat[j] = original[j]
                numeric = (plus - minus) / (2 * eps)
                got = analytic.reshape(-1)[j]
                if not abs(got - numeric) <= atol + rtol * abs(numeric):
                    where = np.unravel_index(j, t.shape)
                    raise GradcheckError(
                        f"gradcheck: input {i}, element {tuple(int(w) for w in where)}: "
                        f"analytic {got:.10g} vs numerical {numeric:.10g}")
        else:
            for k in range(directions):
                v = rng.standard_normal(t.shape)
                v /= np.linalg.norm(v)
                v_dev = xp.asarray(v)
                t.data[...] = original.reshape(t.shape) + eps * v_dev
                plus = scalar()
                t.data[...] = original.reshape(t.shape) - eps * v_dev
                minus = scalar()
                t.data[...] = original.reshape(t.shape)
                numeric = (plus - minus) / (2 * eps)
                got = float((analytic * v).sum())
                if not abs(got - numeric) <= atol + rtol * abs(numeric):
                    raise GradcheckError(
                        f"gradcheck: input {i}, random direction {k}: analytic <grad, v> "
                        f"{got:.10g} vs numerical {numeric:.10g}")
    return True
