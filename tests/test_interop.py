"""Interop: DLPack both ways, __array__/range/memoryview conversion, NumPy ufuncs on Tensors.

The torch rows run where torch is installed (the `bench` extra) and skip elsewhere; the CuPy
and torch-CUDA rows are marked gpu.
"""
import numpy as np
import pytest

import gpuad as ad


class Producer:
    """A third-party array: only the DLPack protocol, over a NumPy buffer it owns."""

    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


class ArrayLike:
    def __init__(self, data):
        self.data = data

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.data, dtype=dtype)


def test_a_dlpack_producer_is_read_without_a_copy():
    buffer = np.arange(4.0)
    t = ad.from_dlpack(Producer(buffer))
    buffer[0] = 9.0
    assert t.backend == "numpy" and t.dtype == np.float64
    np.testing.assert_array_equal(t.numpy(), [9.0, 1.0, 2.0, 3.0])


def test_convert_to_tensor_takes_dlpack_producers_and_keeps_their_dtype():
    buffer = np.arange(3, dtype=np.int16)
    t = ad.convert_to_tensor(Producer(buffer), backend="numpy")
    assert t.dtype == np.int16 and np.shares_memory(t.array, buffer)
    assert ad.constant(Producer(np.ones(2)), dtype="float32", backend="numpy").dtype == np.float32


def test_a_tensor_exported_through_dlpack_shares_its_memory():
    t = ad.constant([1.0, 2.0, 3.0], backend="numpy")
    view = np.from_dlpack(t)
    assert np.shares_memory(view, t.array) and t.__dlpack_device__() == (1, 0)
    capsule = ad.experimental.dlpack.to_dlpack(t)
    np.testing.assert_array_equal(ad.experimental.dlpack.from_dlpack(capsule).numpy(), [1, 2, 3])


def test_from_dlpack_refuses_what_is_not_dlpack():
    with pytest.raises(TypeError, match="from_dlpack: expected an object with __dlpack__"):
        ad.from_dlpack([1.0, 2.0])


def test_gradients_flow_through_a_tensor_read_from_dlpack():
    x = ad.from_dlpack(Producer(np.array([0.5, 1.5])))
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(x ** 3)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 3 * np.array([0.5, 1.5]) ** 2)


def test_array_likes_ranges_and_memoryviews_convert_as_tensorflow():
    assert ad.constant(ArrayLike([[1.0, 2.0]])).dtype == np.float64  # arrays keep their dtype
    r = ad.constant(range(2, 5))
    assert r.dtype == np.int32 and r.numpy().tolist() == [2, 3, 4]  # as a list of ints
    m = ad.constant(memoryview(np.array([1.5, 2.5], np.float32)))
    assert m.dtype == np.float32 and m.numpy().tolist() == [1.5, 2.5]
    with pytest.raises(TypeError, match="constant: cannot convert an array of dtype <U1"):
        ad.constant(ArrayLike(["a"]))


def test_a_numpy_ufunc_on_a_tensor_names_the_gpuad_op():
    t = ad.constant([0.5])
    with pytest.raises(TypeError, match=r"numpy.sin does not apply to a gpuad Tensor.*gpuad\.sin"):
        np.sin(t)
    with pytest.raises(TypeError, match=r"gpuad\.atan2"):
        np.arctan2(t, t)


def test_numpy_operators_with_a_tensor_on_the_right_are_recorded():
    x = ad.constant([1.0, 2.0], dtype="float64")
    left = np.array([3.0, 5.0])
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = left * x - left / x
        z = np.less(left, x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), left + left / x.numpy() ** 2)
    assert isinstance(z, ad.Tensor) and z.numpy().tolist() == [False, False]
    assert (np.array([1.0, 3.0]) > x).numpy().tolist() == [False, True]


def test_a_numpy_tensor_has_no_cuda_array_interface():
    assert not hasattr(ad.constant([1.0], backend="numpy"), "__cuda_array_interface__")


# -------------------------------------------------------------------------------- torch

def test_torch_round_trip_shares_memory():
    torch = pytest.importorskip("torch")
    source = torch.arange(4, dtype=torch.float32)
    t = ad.constant(source, backend="numpy")
    source[0] = 7.0
    assert t.numpy()[0] == 7.0
    back = torch.from_dlpack(t)
    back[1] = -1.0
    assert t.numpy()[1] == -1.0 and source[1].item() == -1.0


def test_a_torch_tensor_that_requires_grad_is_refused_with_torchs_advice():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="constant: cannot read Tensor through DLPack.*detach"):
        ad.constant(torch.ones(2, requires_grad=True))


# --------------------------------------------------------------------------------- GPU

@pytest.mark.gpu
def test_cupy_round_trip_shares_device_memory():
    cupy = pytest.importorskip("cupy")
    source = cupy.arange(4, dtype=cupy.float32)
    t = ad.from_dlpack(source)
    assert t.backend == "cupy" and t.__dlpack_device__()[0] == 2
    source[0] = 5.0
    assert float(t[0]) == 5.0
    view = cupy.from_dlpack(t)
    assert view.data.ptr == t.array.data.ptr
    assert t.__cuda_array_interface__["data"][0] == source.data.ptr


@pytest.mark.gpu
def test_torch_cuda_round_trip_shares_device_memory():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    source = torch.arange(4, dtype=torch.float32, device="cuda")
    t = ad.constant(source)
    assert t.backend == "cupy" and t.array.data.ptr == source.data_ptr()
    back = torch.from_dlpack(t)
    assert back.data_ptr() == source.data_ptr()
    host = ad.constant(source, backend="numpy")  # another device: a copy
    assert host.backend == "numpy" and host.numpy().tolist() == [0, 1, 2, 3]
