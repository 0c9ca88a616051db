"""The CuPy rules the suite relies on, checked on whichever ``cupy`` this session has.

On a CPU the ``cupy`` fixture is the strict stand-in in ``tests/cupy_standin``;
on a GPU machine it is real CuPy, and the same tests then show that the
stand-in models real behaviour. The last tests plant host arrays in hot paths
of the library and show that the stand-in catches them while NumPy does not.
"""
import warnings

import numpy as np
import pytest

import cupy_standin
import minisegnet as msn
from minisegnet import functional as F
from minisegnet.functional import activation, pooling

IMPLICIT = "Implicit conversion to a NumPy array is not allowed"


# ---- the rules ------------------------------------------------------------------------------
def test_implicit_conversion_to_the_host_is_refused(cupy):
    x = cupy.arange(6.0).reshape(2, 3)
    for convert in (np.asarray, np.array, np.ascontiguousarray):
        with pytest.raises(TypeError, match=IMPLICIT):
            convert(x)
    np.testing.assert_array_equal(x.get(), cupy.asnumpy(x))
    assert type(x.get()) is np.ndarray and x.get().shape == (2, 3)


def test_matplotlib_refuses_a_device_array(cupy):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        with pytest.raises(TypeError, match=IMPLICIT):
            ax.imshow(cupy.zeros((4, 4)))
    finally:
        plt.close(fig)


def test_host_arrays_are_refused_as_operands(cupy):
    x = cupy.ones(3)
    host = np.ones(3)
    for op in (lambda: x + host, lambda: host + x, lambda: x * np.float64(2) + np.asarray(1.0),
               lambda: cupy.maximum(x, host), lambda: cupy.where(x > 0, x, host),
               lambda: cupy.concatenate([x, host])):
        with pytest.raises(TypeError):
            op()
    # scalars, Python or NumPy, travel as kernel arguments
    assert isinstance(x * 2 + np.float32(1), cupy.ndarray)


def test_basic_slice_assignment_of_a_host_array_is_refused(cupy):
    x = cupy.zeros((2, 3))
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x[0, :] = np.ones(3)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        x[...] = [[1, 2, 3], [4, 5, 6]]
    x[0, :] = cupy.ones(3)            # device to device is fine
    x[1, 1] = np.float64(5.0)         # so is a scalar
    np.testing.assert_array_equal(x.get(), [[1, 1, 1], [0, 5, 0]])


def test_an_index_of_every_axis_is_a_zero_d_view_and_a_view_knows_its_owner(cupy):
    """As CuPy (and unlike NumPy, which gives a scalar copy): a[1, 2] is a 0-d array sharing a's
    memory, and every view's .base is the very array owning the memory (autograd's in-place check
    stamps that owner; a fresh wrapper per call would be forgotten at once)."""
    a = cupy.arange(6.0).reshape(2, 3)
    owner = a.base
    element = a[1, 2]
    assert element.shape == () and cupy.shares_memory(element, a)
    element[...] = -1
    assert float(a[1, 2]) == -1
    assert a[0].base is owner and a[:, 1:].base is owner and element.base is owner


def test_reductions_return_zero_d_device_arrays(cupy):
    x = cupy.arange(6.0)
    for value in (x.sum(), x.max(), x.mean(), cupy.sum(x), x.argmax(), (x > 2).any(), x[3]):
        assert isinstance(value, cupy.ndarray) and value.shape == ()
    assert float(x.sum()) == 15.0 and int(x.argmax()) == 5


def test_only_cupys_namespace_exists(cupy):
    for name in ("errstate", "seterr", "asmatrix"):
        assert not hasattr(cupy, name), name
    with pytest.raises((AttributeError, TypeError)):
        cupy.arange(3).max(initial=0)          # a NumPy-only argument
    with pytest.raises(TypeError):
        range(cupy.asarray(3))                 # no __index__: a device scalar is not a Python int
    for name in ("add", "where", "bincount", "pad", "shares_memory", "broadcast_to", "float32", "newaxis"):
        assert hasattr(cupy, name), name


def test_asarray_copies_host_data(cupy):
    host = np.zeros(3)
    device = cupy.asarray(host)
    host[0] = 7.0
    assert float(device[0]) == 0.0
    with pytest.raises((TypeError, AttributeError)):
        np.shares_memory(host, device)         # host and device memory are different things
    assert cupy.asarray(device) is device      # already on the device: no copy


def test_add_at_accumulates_repeated_indices_and_scatter_add_is_deprecated(cupy):
    import cupyx

    a = cupy.zeros(3)
    cupy.add.at(a, cupy.asarray([0, 0, 2]), cupy.asarray([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(a.get(), [3.0, 0.0, 5.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cupyx.scatter_add(a, cupy.asarray([1]), 1.0)
    assert any(issubclass(w.category, DeprecationWarning) and "cupy.add.at" in str(w.message) for w in caught)


@pytest.mark.parametrize("op, dtype, takes", [
    ("add", np.float32, True), ("add", np.int64, True), ("add", np.float16, True), ("add", np.int8, False),
    ("add", np.uint8, False), ("add", np.bool_, False), ("add", np.int16, False),
    ("subtract", np.int32, True), ("subtract", np.float32, False), ("subtract", np.int64, False),
    ("maximum", np.float64, True), ("maximum", np.float16, False), ("minimum", np.uint8, False),
])
def test_ufunc_at_takes_the_dtypes_cupys_atomics_take(cupy, op, dtype, takes):
    """CuPy's ``ufunc.at`` is a CUDA atomic, which exists for a few dtypes alone (cupy 14.2's
    ``_scatter_op_single``): the stand-in passed ``add.at`` on int8 or bool, ``subtract.at`` on
    float32, which a GPU refuses. (Skipped types of real CuPy: it answers for itself.)"""
    a = cupy.zeros(3, dtype=dtype)
    call = lambda: getattr(cupy, op).at(a, cupy.asarray([0, 2]), cupy.ones(2, dtype=dtype))
    if takes:
        call()
    else:
        with pytest.raises(TypeError, match=f"cupy.{op}.at only supports"):
            call()


def test_numpys_sort_kinds_and_keywords_that_cupy_lacks_are_refused(cupy):
    """They passed on the stand-in and raise on CuPy: sorts other than stable, initial=/where= of
    the reductions, unique(sorted=False)."""
    if not cupy_standin.is_standin(cupy):
        pytest.skip("the stand-in's own rules")
    a = cupy.asarray([3.0, 1.0, 2.0])
    np.testing.assert_array_equal(cupy.argsort(a, kind="stable").get(), [1, 2, 0])
    for call in (lambda: cupy.argsort(a, kind="quicksort"), lambda: a.argsort(kind="mergesort"),
                 lambda: a.sort(kind="heapsort"), lambda: cupy.sort(a, kind="quicksort")):
        with pytest.raises(ValueError, match="kind must be None or 'stable'"):
            call()
    for call in (lambda: cupy.max(a, initial=0.0), lambda: cupy.sum(a, where=a > 1),
                 lambda: cupy.unique(a, sorted=False)):
        with pytest.raises(TypeError, match="NumPy's, not CuPy's"):
            call()


def test_integer_array_indices_wrap_around(cupy):
    x = cupy.arange(3)
    np.testing.assert_array_equal(x[cupy.asarray([1, 3])].get(), [1, 0])    # NumPy would raise


def test_cuda_stub_answers_what_backend_asks(cupy):
    assert cupy.cuda.runtime.getDeviceCount() >= 1
    cupy.cuda.Device(0).synchronize()
    cupy.cuda.get_current_stream().synchronize()


# ---- counting transfers (stand-in only) -------------------------------------------------------
def test_transfers_are_counted_by_call_site(transfers, cupy):
    with transfers() as log:
        x = cupy.asarray(np.ones((4, 4), np.float32))      # one upload of 64 bytes
        total = float(x.sum())                             # one download of 4 bytes
        picked = x[[0, 1]]                                 # a host index: uploaded implicitly
        kept = x[x > 0]                                    # a boolean mask: a hidden sync
    assert total == 16.0 and picked.shape == (2, 4) and kept.shape == (16,)
    assert log.count("H2D") == 2 and log.nbytes("H2D") == 64 + 16
    assert log.count("D2H") == 2
    sites = {site for (_, site, _) in log.by_site()}
    assert all("test_cupy_standin.py" in site for site in sites), sites
    assert "upload" in log.report()


def test_stand_in_without_a_gpu_raises_like_cuda(monkeypatch, cupy):
    if not cupy_standin.is_standin(cupy):
        pytest.skip("the empty-CUDA_VISIBLE_DEVICES switch belongs to the stand-in")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(Exception, match="no CUDA-capable device"):
        cupy.cuda.runtime.getDeviceCount()


# ---- planted bugs: NumPy passes, the stand-in fails ---------------------------------------------
def _max_pool_reference(x, k, s, p):
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    out = (padded.shape[2] - k) // s + 1
    return np.array([[[[padded[n, c, i * s:i * s + k, j * s:j * s + k].max() for j in range(out)]
                       for i in range(out)] for c in range(x.shape[1])] for n in range(x.shape[0])])


def _host_pad_buffer(x, extent, padding, fill):
    """The bug: the padded buffer is always made with NumPy, whatever holds ``x``."""
    n, c, h, w = x.shape
    out = np.full((n, c) + extent, fill, dtype=x.dtype)
    out[..., padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    return out


def test_planted_host_pad_buffer_passes_on_numpy_and_fails_on_the_standin(monkeypatch, rng):
    monkeypatch.setattr(pooling, "_pad_to", _host_pad_buffer)
    x = rng.standard_normal((2, 3, 7, 7))
    got = F.max_pool2d(msn.tensor(x).to_backend("numpy"), 3, stride=2, padding=1)
    np.testing.assert_allclose(got.numpy(), _max_pool_reference(x, 3, 2, 1))
    with pytest.raises(TypeError, match=IMPLICIT):
        F.max_pool2d(msn.tensor(x).to_backend("cupy"), 3, stride=2, padding=1)


class _HostMaskDropout(activation.Dropout):
    """The bug: the mask is drawn on the host and used there, never moved to the input's device."""

    def forward(self, x):
        keep = msn.random.generator().random(self.mask_shape) >= self.p
        self.mask = keep.astype(x.dtype) / (1.0 - self.p)
        return x * self.mask


def test_planted_host_dropout_mask_passes_on_numpy_and_fails_on_the_standin(monkeypatch):
    monkeypatch.setattr(activation, "Dropout", _HostMaskDropout)
    x = np.ones((2, 4, 5, 5), np.float32)
    y = F.dropout(msn.tensor(x).to_backend("numpy"), p=0.5)
    assert set(np.unique(y.numpy())) <= {0.0, 2.0}
    with pytest.raises(TypeError, match="Unsupported type"):
        F.dropout(msn.tensor(x).to_backend("cupy"), p=0.5)


@pytest.mark.parametrize("index", [[5], [-4], (0, [3]), (Ellipsis, [7]), ([1, 0], [2, -4]), (None, 0, [3])])
def test_an_integer_index_out_of_range_is_an_index_error_on_the_device_too(cupy, index):
    """CuPy wraps an out-of-range position around (the rule above); getitem and x[index] = y
    check the range first, so both backends give NumPy's IndexError. The old code read x[2]
    for x[[5]] of 3 rows on the device, and wrote there."""
    for xp in (np, cupy):
        x = msn.tensor(xp.arange(6.0).reshape(2, 3))
        on = msn.backend.get_array_module(x.data)         # (a NumPy session makes x a host tensor)
        device_index = tuple(on.asarray(p) if isinstance(p, list) else p for p in index) \
            if isinstance(index, tuple) else on.asarray(index)
        for i in (index, device_index):
            with pytest.raises(IndexError, match=r"getitem: tensor index .* does not fit a tensor of shape \(2, 3\)"):
                x[i]
            with pytest.raises(IndexError, match="is out of bounds for axis"):
                with msn.no_grad():
                    x[i] = 9.0
        assert x.numpy().tolist() == [[0, 1, 2], [3, 4, 5]]


def test_integer_indices_in_range_read_the_same_on_both_backends(cupy):
    for index in ([1, -2], (Ellipsis, [2, -3]), ([1, 0], [2, -3]), (None, 0, [2])):
        on_host = msn.tensor(np.arange(6.0).reshape(2, 3))[index].numpy()
        on_device = msn.tensor(cupy.arange(6.0).reshape(2, 3))[index].numpy()
        np.testing.assert_array_equal(on_host, on_device)


def test_a_gradient_from_the_other_backend_is_moved_to_the_tensors(cupy):
    """backward(gradient) with a host Tensor or array for a device tensor: the leaf's .grad is a
    device array (the old code gave a leaf a host .grad, and through an op failed with CuPy's
    cryptic 'Unsupported type')."""
    for make in (np.ones, lambda shape: msn.tensor(np.ones(shape))):
        x = msn.tensor(cupy.asarray([1.0, 2.0]), requires_grad=True)
        if msn.backend.get_array_module(x.data) is np:
            pytest.skip("a NumPy session makes every tensor a host tensor")
        x.backward(make(2))
        assert msn.backend.get_array_module(x.grad.data) is not np
        y = msn.tensor(cupy.asarray([1.0, 2.0]), requires_grad=True)
        (y * 2).backward(make(2))
        assert msn.backend.get_array_module(y.grad.data) is not np
        assert y.grad.numpy().tolist() == [2.0, 2.0]


@pytest.mark.parametrize("shape, index, expected", [
    ((4, 2), (True, [3]), [[6.0, 7.0]]),          # in range: read, not refused as "out of bounds for axis 1"
    ((3, 2), (False, [2]), []),                     # an empty result, not an IndexError
    ((2, 5), (True, [4]), IndexError),              # out of range for axis 0: an error, not row 4 % 2 = 0
])
def test_the_device_range_check_counts_no_axis_for_a_bool_index(cupy, shape, index, expected):
    """A bool scalar takes no axis of x (NumPy and PyTorch add one of length 1 or 0); the check counted
    it as one, so on the device a position was checked against the next axis: a spurious IndexError,
    or an out-of-range position that CuPy wrapped around and read (and x[index] = y wrote)."""
    for to in ("numpy", "cupy"):
        x = msn.tensor(np.arange(float(np.prod(shape))).reshape(shape)).to_backend(to)
        if expected is IndexError:
            with pytest.raises(IndexError, match=r"getitem: tensor index .* does not fit a tensor of shape"):
                x[index]
            with pytest.raises(IndexError, match="is out of bounds for axis"):
                x[index] = -1.0
            assert (x.numpy() >= 0).all()           # nothing written
        else:
            assert x[index].numpy().tolist() == expected
