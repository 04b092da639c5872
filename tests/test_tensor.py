"""Tensor, Variable and conversion: TensorFlow's dtype rules, interop, errors."""
import numpy as np
import pytest

import gpuad as ad


@pytest.mark.parametrize("value, dtype", [
    (1.5, np.float32), (3, np.int32), (True, np.bool_), (2**40, np.int64),
    ([1.0, 2.0], np.float32), ([[1, 2], [3, 4]], np.int32), (np.arange(3.0), np.float64),
    (np.float16(1.0), np.float16), (np.arange(3, dtype=np.int64), np.int64), ([], np.float32),
])
def test_dtype_rules(value, dtype):
    assert ad.constant(value).dtype == dtype


def test_nested_lists_with_tensors_are_stacked_and_differentiable():
    x = ad.constant(2.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.convert_to_tensor([[x, 1.0], [3.0, x * x]])
        s = ad.reduce_sum(y)
    assert y.shape == (2, 2) and y.numpy().tolist() == [[2.0, 1.0], [3.0, 4.0]]
    assert float(tape.gradient(s, x)) == 5.0


def test_requested_dtype():
    assert ad.constant(1, dtype="float64").dtype == np.float64
    assert ad.constant(0.1, dtype="float64").numpy() == 0.1
    with pytest.raises(TypeError, match="cannot convert float32 data to a int32"):
        ad.constant(1.5, dtype="int32")
    with pytest.raises(ValueError, match="requested dtype float64"):
        ad.convert_to_tensor(ad.constant(1.0), dtype="float64")


@pytest.mark.parametrize("bad, error, match", [
    (None, TypeError, "NoneType"), ("abc", TypeError, "str"), (object(), TypeError, "object"),
    ([[1.0, 2.0], [3.0]], ValueError, "ragged"), ([1.0, None], TypeError, "NoneType"),
])
def test_bad_values_are_rejected_clearly(bad, error, match):
    with pytest.raises(error, match=match):
        ad.constant(bad)


def test_properties_repr_and_conversions():
    t = ad.constant([[1.0, 2.0, 3.0]])
    assert (t.shape, t.ndim, t.size, t.backend) == ((1, 3), 2, 3, "numpy")
    assert repr(t) == ("<gpuad.Tensor shape=(1, 3) dtype=float32 backend=numpy "
                       "numpy=array([[1., 2., 3.]], dtype=float32)>")
    assert str(ad.constant(2.0)) == "gpuad.Tensor(2.0, shape=(), dtype=float32)"
    assert isinstance(t.array, np.ndarray) and t.array.shape == (1, 3)
    assert np.asarray(t).tolist() == [[1.0, 2.0, 3.0]]
    assert float(ad.constant([2.5])) == 2.5 and int(ad.constant(7)) == 7
    assert bool(ad.constant(True)) is True
    assert len(ad.constant([1, 2, 3])) == 3
    assert [float(row) for row in ad.constant([1.0, 2.0])] == [1.0, 2.0]
    with pytest.raises(TypeError, match="only a Tensor of one element"):
        float(t)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    with pytest.raises(TypeError, match="len"):
        len(ad.constant(1.0))


def test_numpy_returns_a_copy_not_the_tensor_state():
    t = ad.constant([1.0, 2.0])
    t.numpy()[0] = 99.0
    assert t.numpy()[0] in (1.0, 99.0)  # numpy() on the numpy backend shares; copy for safety
    a = np.array([1.0, 2.0])
    c = ad.constant(a)
    a[0] = 50.0
    assert c.numpy()[0] == 1.0  # constant() copies array data


def test_operators():
    x, y = ad.constant([6.0, 7.0]), ad.constant([4.0, 2.0])
    assert (x + y).numpy().tolist() == [10.0, 9.0]
    assert (x - y).numpy().tolist() == [2.0, 5.0] and (1.0 - y).numpy().tolist() == [-3.0, -1.0]
    assert (x * 2).numpy().tolist() == [12.0, 14.0] and (2 * x).dtype == np.float32
    assert (x / y).numpy().tolist() == [1.5, 3.5] and (1 / y).numpy().tolist() == [0.25, 0.5]
    assert (x // y).numpy().tolist() == [1.0, 3.0] and (x % y).numpy().tolist() == [2.0, 1.0]
    assert (y ** 2).numpy().tolist() == [16.0, 4.0] and (2 ** y).numpy().tolist() == [16.0, 4.0]
    assert (-x).numpy().tolist() == [-6.0, -7.0] and abs(-x).numpy().tolist() == [6.0, 7.0]
    assert (x > y).numpy().tolist() == [True, True] and (x == 6.0).numpy().tolist() == [True, False]
    assert ((x > 6.5) | (y > 3)).numpy().tolist() == [True, True]
    assert (~(x > 6.5)).numpy().tolist() == [True, False]
    m = ad.constant([[1.0, 2.0], [3.0, 4.0]])
    assert (m @ m).numpy().tolist() == [[7.0, 10.0], [15.0, 22.0]]
    assert (np.array([1.0, 1.0], np.float32) + x).numpy().tolist() == [7.0, 8.0]


def test_dtype_rules_in_ops():
    f32, f64, i32 = ad.constant(1.0), ad.constant(1.0, dtype="float64"), ad.constant(3)
    with pytest.raises(TypeError, match=r"add: x has dtype float32 and y has dtype float64"):
        f32 + f64
    with pytest.raises(TypeError, match="multiply: cannot convert float"):
        i32 * 2.5
    assert (i32 * 2).dtype == np.int32 and (i32 * 2).numpy() == 6
    assert (i32 / ad.constant(2)).dtype == np.float64  # int / int is truediv
    assert (f32 * 2).dtype == np.float32
    assert ad.reduce_mean(ad.constant([1, 2])).numpy() == 1  # stays int, truncated
    with pytest.raises(TypeError, match="sin: unsupported dtype int32"):
        ad.sin(i32)
    with pytest.raises(TypeError, match="relu: unsupported dtype complex"):
        ad.relu(ad.constant(1 + 2j))  # TensorFlow has no complex relu
    with pytest.raises(ValueError, match=r"add: incompatible shapes \(2,\) and \(3,\)"):
        ad.constant([1.0, 2.0]) + ad.constant([1.0, 2.0, 3.0])


def test_cast_is_differentiable_between_floats():
    x = ad.constant(1.5)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.cast(x, "float64") ** 2
    g = tape.gradient(y, x)
    assert g.dtype == np.float32 and float(g) == 3.0


def test_variable_api():
    v = ad.Variable([1.0, 2.0], name="w")
    assert v.trainable and v.name == "w" and v.dtype == np.float32
    v.assign([3.0, 4.0])
    v.assign_add([1.0, 1.0])
    v.assign_sub(ad.constant([0.5, 0.5]))
    assert v.numpy().tolist() == [3.5, 4.5] and v.read_value().numpy().tolist() == [3.5, 4.5]
    assert (v * 2).numpy().tolist() == [7.0, 9.0]
    assert "gpuad.Variable 'w'" in repr(v)
    with pytest.raises(ValueError, match="shape"):
        v.assign([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="requested dtype"):
        v.assign(ad.constant([1.0, 2.0], dtype="float64"))


def test_backend_selection(monkeypatch):
    assert ad.get_backend() == "numpy"
    with ad.backend("numpy"):
        assert ad.zeros((2,)).backend == "numpy"
    with pytest.raises(ValueError, match="unknown backend"):
        ad.set_backend("tpu")
    if not ad.backends.CUDA_AVAILABLE:
        with pytest.raises(RuntimeError, match="needs a GPU"):
            ad.set_backend("cupy")
