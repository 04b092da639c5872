"""Conformance with TensorFlow 2.21 (issue 10): range, linspace, convert_to_tensor of mixed lists,
comparisons with Python floats and Variables, and the gradient of a target that is its source."""
import numpy as np
import pytest

import gpuad as ad

F32, F64 = np.float32, np.float64


# ----------------------------------------------------------------------------------- range

def test_range_counts_a_float32_delta_in_float32():
    # (1 - -2) / float32(3/800) is 800 exactly in float32 (800.0000x in float64)
    delta = ad.constant(3.0) / ad.constant(800.0)
    out = ad.range(-2.0, 1.0, delta)
    assert out.shape == (800,) and out.dtype == np.float32
    assert out.numpy()[0] == F32(-2.0) and out.numpy()[-1] < F32(1.0)


def test_range_of_python_floats_counts_in_float32():
    # float32(0.3) / float32(0.03) rounds to 10.000001 in float32: TensorFlow gives 11 elements
    out = ad.range(0.0, 0.3, 0.03)
    assert out.shape == (11,) and out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), np.arange(11, dtype=F32) * F32(0.03))


def test_range_of_float64_tensors_is_float64_counted_in_float64():
    start, limit, delta = ad.constant(F64(0.0)), ad.constant(F64(0.3)), ad.constant(F64(0.03))
    out = ad.range(start, limit, delta)
    assert out.dtype == np.float64 and out.shape == (10,)  # 0.3 / 0.03 is 9.999... in float64
    np.testing.assert_allclose(out.numpy(), 0.03 * np.arange(10), rtol=0, atol=1e-15)


def test_range_takes_the_widest_dtype_of_its_arguments():
    assert ad.range(ad.constant(F64(1.0)), 3.0).dtype == np.float64
    assert ad.range(ad.constant(1.0), ad.constant(F64(2.5)), 0.5).shape == (3,)
    assert ad.range(ad.constant(np.int64(3))).dtype == np.int64
    assert ad.range(3, dtype="float64").numpy().tolist() == [0.0, 1.0, 2.0]
    assert ad.range(5, 0, -2).numpy().tolist() == [5, 3, 1]
    assert ad.range(0.0, -1.0, -0.25).numpy().tolist() == [0.0, -0.25, -0.5, -0.75]
    assert ad.range(5, 0).shape == (0,)


def test_range_rejects_bad_arguments_naming_them():
    with pytest.raises(ValueError, match="range: delta must not be 0"):
        ad.range(1, 2, 0)
    with pytest.raises(TypeError, match="range: start is 0.5, not an integer"):
        ad.range(0.5, 3, dtype="int32")
    with pytest.raises(TypeError, match="range: delta must be a number"):
        ad.range(0, 3, "1")


# ------------------------------------------------------- comparisons with Python floats

@pytest.mark.parametrize("value", [0.1, 1 / 3, 1e-300, 2.0 ** 60 + 2.0 ** 8])
def test_a_python_float_compares_in_a_float64_tensors_dtype(value):
    x = ad.constant(F64(value))
    assert bool(x == value) and bool(value == x) and not bool(x != value)
    assert not bool(x < value) and not bool(value > x) and bool(x <= value)
    assert ad.equal(x, value).numpy() and ad.less_equal(value, x).numpy()
    assert (ad.constant([F64(value), 0.5]) == [value, 0.5]).numpy().tolist() == [True, True]


def test_a_python_float_adopts_the_dtype_of_the_tensor_it_is_compared_with():
    assert bool(ad.constant(0.1) == 0.1) and not bool(ad.constant(0.1) > 0.1)  # float32's 0.1
    x = ad.constant(F64(0.1))
    assert not bool(x < 0.1) and bool(x < F32(0.1).item())  # float64's 0.1 < float32's 0.1
    assert bool(x < np.nextafter(0.1, 1.0)) and bool(x > np.nextafter(0.1, 0.0))
    with pytest.raises(TypeError, match="less: cannot convert float32 data to a int32"):
        ad.constant(1) < 0.5


# ------------------------------------------- a target that is its own source; Variables read

def test_the_gradient_of_an_unwatched_tensor_with_respect_to_itself_is_ones():
    x = ad.constant(np.array([1.0, -2.0, 3.0]))
    with ad.GradientTape(persistent=True) as tape:
        pass
    g = tape.gradient(x, x)
    assert g.dtype == np.float64 and g.numpy().tolist() == [1.0, 1.0, 1.0]
    assert tape.gradient([x, x], x).numpy().tolist() == [2.0, 2.0, 2.0]
    seed = ad.constant(np.array([0.5, 4.0, -1.0]))
    assert tape.gradient(x, [x], output_gradients=seed)[0].numpy().tolist() == [0.5, 4.0, -1.0]
    assert tape.gradient(x, ad.constant(1.0)) is None
    assert tape.gradient(x, ad.constant(1.0), unconnected_gradients="zero").numpy() == 0.0


def test_the_gradient_of_an_unwatched_variable_with_respect_to_itself_is_ones():
    v = ad.Variable(2.0, trainable=False)
    with ad.GradientTape(watch_accessed_variables=False) as tape:
        pass
    assert tape.gradient(v, v).numpy() == 1.0


def test_a_comparison_reads_its_variables_so_the_tape_watches_them():
    v1, v2, v3 = ad.Variable(2.0), ad.Variable(3.0), ad.Variable(5.0)
    with ad.GradientTape(persistent=True) as tape:
        assert bool(v1 < v2) and bool(v3 >= 5.0)
    assert {id(v) for v in tape.watched_variables()} == {id(v1), id(v2), id(v3)}
    with ad.GradientTape(watch_accessed_variables=False) as quiet:
        assert bool(v1 != v2)
    assert quiet.watched_variables() == ()


def test_the_gradient_through_python_max_of_variables_goes_to_the_largest():
    vs = [ad.Variable(2.0), ad.Variable(3.0), ad.Variable(5.0)]
    with ad.GradientTape() as tape:
        largest = max(vs)  # Python's max compares the Variables and returns vs[2] itself
    grads = tape.gradient(largest, vs)
    assert grads[0] is None and grads[1] is None and grads[2].numpy() == 1.0


# --------------------------------------------- nested lists of Tensors and Python numbers

def test_python_numbers_in_a_list_take_the_dtype_of_its_tensors():
    out = ad.convert_to_tensor([ad.constant(1.0), 2])
    assert out.dtype == np.float32 and out.numpy().tolist() == [1.0, 2.0]
    assert ad.constant([ad.constant(3), 4]).dtype == np.int32
    x = ad.constant(F64(0.5))
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.convert_to_tensor([[x, 1], [0.1, x * x]])
        total = ad.reduce_sum(y)
    assert y.dtype == np.float64 and y.numpy()[1, 0] == 0.1  # 0.1 made in float64
    assert float(tape.gradient(total, x)) == 1.0 + 2 * 0.5  # d(x + x^2)/dx


def test_a_list_of_tensors_of_two_dtypes_is_an_error_naming_them():
    with pytest.raises(TypeError, match="convert_to_tensor: .*dtypes float32 and int32"):
        ad.convert_to_tensor([ad.constant(1.0), 2, ad.constant(1)])
    with pytest.raises(TypeError, match="cannot convert float32 data to a int32"):
        ad.convert_to_tensor([ad.constant(1), 2.5])


# --------------------------------------------------------------- linspace's derivatives

TO_STOP = np.array([0.0, 0.25, 0.5, 0.75, 1.0])  # d linspace(a, b, 5) / d b; d/d a is 1 - it


def test_linspace_jacobians_are_the_closed_form_in_reverse_and_forward_mode():
    a, b = ad.constant(F64(1.2)), ad.constant(F64(3.4))
    np.testing.assert_allclose(ad.jacobian(lambda s: ad.linspace(s, b, 5))(a).numpy(),
                               1.0 - TO_STOP, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ad.jacobian(lambda s: ad.linspace(a, s, 5))(b).numpy(),
                               TO_STOP, rtol=0, atol=1e-15)
    with ad.GradientTape(persistent=True) as tape:
        tape.watch([a, b])
        out = ad.linspace(a, b, 5)
    jac_a, jac_b = tape.jacobian(out, a), tape.jacobian(out, b)
    np.testing.assert_allclose(jac_a.numpy(), 1.0 - TO_STOP, rtol=0, atol=1e-15)
    np.testing.assert_allclose(jac_b.numpy(), TO_STOP, rtol=0, atol=1e-15)
    with ad.ForwardAccumulator([a, b], [ad.constant(F64(2.0)), ad.constant(F64(-1.0))]) as acc:
        out = ad.linspace(a, b, 5)
    np.testing.assert_allclose(acc.jvp(out).numpy(), 2.0 * (1.0 - TO_STOP) - TO_STOP,
                               rtol=0, atol=1e-15)


def test_linspace_second_order_matches_the_closed_form():
    # sum(linspace(a, b, 5) ** 2) = sum(((1 - w) a + w b) ** 2); d2/da db = 2 sum(w (1 - w))
    a, b = ad.constant(F64(1.2)), ad.constant(F64(3.4))
    with ad.GradientTape() as outer:
        outer.watch(b)
        with ad.GradientTape() as inner:
            inner.watch(a)
            total = ad.reduce_sum(ad.linspace(a, b, 5) ** 2)
        d_a = inner.gradient(total, a)
    np.testing.assert_allclose(float(d_a), 2 * np.sum((1 - TO_STOP) * ((1 - TO_STOP) * 1.2 +
                                                                       TO_STOP * 3.4)))
    np.testing.assert_allclose(float(outer.gradient(d_a, b)), 2 * np.sum(TO_STOP * (1 - TO_STOP)))


def test_linspace_gradients_keep_dtypes_and_reach_variables():
    start, stop = ad.Variable(0.5), ad.Variable(2.0)
    with ad.GradientTape() as tape:
        total = ad.reduce_sum(ad.linspace(start, stop, 1) * 3.0)  # one element: start
    g_start, g_stop = tape.gradient(total, [start, stop])
    assert g_start.dtype == np.float32 and float(g_start) == 3.0 and float(g_stop) == 0.0
    x = ad.constant(F64(2.0))
    with ad.GradientTape() as tape:
        tape.watch(x)
        out = ad.linspace(0.1, x, 3)  # the Python float adopts x's dtype
        total = ad.reduce_sum(out)
    assert out.dtype == np.float64 and out.numpy()[0] == 0.1
    assert float(tape.gradient(total, x)) == 1.5
    with pytest.raises(TypeError, match="linspace: start has dtype float32 and stop has dtype "
                                        "float64"):
        ad.linspace(ad.constant(0.0), x, 3)
    with pytest.raises(ValueError, match="linspace: start must be a scalar, got shape"):
        ad.linspace(ad.constant([0.0, 1.0]), 1.0, 3)
