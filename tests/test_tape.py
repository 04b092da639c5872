"""GradientTape and the function transforms: every semantic of API.md, errors included."""
import gc
import threading
import weakref

import numpy as np
import pytest

import gpuad as ad


def test_watch_and_gradient_closed_form():
    x = ad.constant([1.0, 2.0, 3.0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(x * x * x)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), 3 * x.numpy() ** 2)


def test_unwatched_constant_has_no_gradient():
    x = ad.constant(2.0)
    with ad.GradientTape() as tape:
        y = x * x
    assert tape.gradient(y, x) is None


def test_watch_nested_structures_and_sources_keep_their_structure():
    a, b, c = ad.constant(1.0), ad.constant(2.0), ad.constant(3.0)
    with ad.GradientTape() as tape:
        tape.watch({"a": a, "rest": [b, (c,)]})
        y = a * b * c
    grads = tape.gradient(y, {"a": a, "rest": [b, (c,)]})
    assert float(grads["a"]) == 6.0 and float(grads["rest"][0]) == 3.0
    assert isinstance(grads["rest"][1], tuple) and float(grads["rest"][1][0]) == 2.0


def test_persistent_tape_allows_several_gradients():
    x = ad.constant(3.0)
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        z = y * y
    assert float(tape.gradient(z, x)) == 108.0  # 4 x^3
    assert float(tape.gradient(y, x)) == 6.0
    assert float(tape.gradient(z, y)) == 18.0   # gradient w.r.t. an intermediate


def test_non_persistent_tape_raises_on_second_gradient_and_releases_records():
    x = ad.constant(np.ones(4, np.float32))
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(ad.tanh(ad.sin(x)))  # tanh saves its output
    saved_output = [r.saved for r in tape._records.values() if r.primitive.name == "tanh"][0][0]
    ref = weakref.ref(saved_output)
    del saved_output
    tape.gradient(y, x)
    gc.disable()
    try:
        assert ref() is None, "records must be released by the first gradient"
    finally:
        gc.enable()
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(y, x)


def test_list_targets_are_summed():
    x = ad.constant(2.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y1, y2 = x * x, x * 3.0
    assert float(tape.gradient([y1, y2], x)) == 7.0


def test_output_gradients():
    x = ad.constant([1.0, 2.0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    g = tape.gradient(y, x, output_gradients=ad.constant([10.0, -1.0]))
    assert g.numpy().tolist() == [20.0, -4.0]


def test_output_gradients_shape_mismatch_is_an_error():
    x = ad.constant([1.0, 2.0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    with pytest.raises(ValueError, match="output_gradients shape"):
        tape.gradient(y, x, output_gradients=ad.constant([1.0, 2.0, 3.0]))


def test_unconnected_gradients_none_and_zero():
    x, z = ad.constant([1.0, 2.0]), ad.constant([5.0, 6.0])
    with ad.GradientTape(persistent=True) as tape:
        tape.watch([x, z])
        y = ad.reduce_sum(x * 2.0)
    assert tape.gradient(y, [x, z])[1] is None
    zero = tape.gradient(y, [x, z], unconnected_gradients=ad.UnconnectedGradients.ZERO)[1]
    assert zero.numpy().tolist() == [0.0, 0.0] and zero.dtype == np.float32
    assert tape.gradient(y, z, unconnected_gradients="zero").numpy().tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        tape.gradient(y, z, unconnected_gradients="sometimes")


def test_integer_sources_give_none_with_a_warning():
    i = ad.constant(3)
    with pytest.warns(UserWarning, match="must be floating"):
        with ad.GradientTape() as tape:
            tape.watch(i)
    x = ad.constant(2.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * ad.cast(i, "float32")
    with pytest.warns(UserWarning, match="source must be floating"):
        assert tape.gradient(y, [x, i])[1] is None


def test_gradient_of_a_source_with_respect_to_itself_is_ones():
    v = ad.Variable([1.0, 2.0])
    with ad.GradientTape() as tape:
        tape.watch(v)
    assert tape.gradient(v, v).numpy().tolist() == [1.0, 1.0]


def test_stop_recording():
    x = ad.constant(2.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        with tape.stop_recording():
            z = y * x  # not recorded: z is a constant to the tape
        w = y + z
    assert float(tape.gradient(w, x)) == 4.0


def test_reset_forgets_the_record():
    x = ad.constant(2.0)
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        tape.reset()
        tape.watch(x)
        z = x * 3.0
    assert float(tape.gradient(z, x)) == 3.0
    assert tape.gradient(y, x) is None  # recorded before the reset: forgotten


def test_variables_are_watched_when_read_unless_disabled_or_untrainable():
    v = ad.Variable(2.0, name="v")
    frozen = ad.Variable(5.0, trainable=False)
    with ad.GradientTape() as tape:
        y = v * v * frozen
    assert tape.watched_variables() == (v,)
    dv, dfrozen = tape.gradient(y, [v, frozen])
    assert float(dv) == 20.0 and dfrozen is None
    with ad.GradientTape(watch_accessed_variables=False) as tape:
        y = v * v
    assert tape.gradient(y, v) is None and tape.watched_variables() == ()
    with ad.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(v)
        y = v * v
    assert float(tape.gradient(y, v)) == 4.0


def test_assign_after_a_read_does_not_corrupt_saved_values():
    v = ad.Variable(3.0)
    with ad.GradientTape() as tape:
        y = v * v
    v.assign(100.0)
    assert float(tape.gradient(y, v)) == 6.0


def test_gradient_inside_own_context():
    x = ad.constant(3.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        g = tape.gradient(y, x)  # non-persistent: the tape stops recording
    assert float(g) == 6.0
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * x
        with pytest.warns(UserWarning, match="persistent tape inside its context"):
            g = tape.gradient(y, x)
    assert float(g) == 27.0
    assert float(tape.gradient(g, x)) == 18.0  # recorded on itself: second order


def test_nested_tapes_to_third_order():
    x = ad.constant(0.7, dtype="float64")
    with ad.GradientTape() as t1:
        t1.watch(x)
        with ad.GradientTape() as t2:
            t2.watch(x)
            with ad.GradientTape() as t3:
                t3.watch(x)
                y = ad.sin(x) * ad.exp(x)
            d1 = t3.gradient(y, x)
        d2 = t2.gradient(d1, x)
    d3 = t1.gradient(d2, x)
    v = 0.7
    np.testing.assert_allclose(float(d1), np.exp(v) * (np.sin(v) + np.cos(v)), rtol=1e-12)
    np.testing.assert_allclose(float(d2), 2 * np.exp(v) * np.cos(v), rtol=1e-12)
    np.testing.assert_allclose(float(d3), 2 * np.exp(v) * (np.cos(v) - np.sin(v)), rtol=1e-12)


def test_errors_name_the_problem():
    x = ad.constant(1.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * 2.0
    with pytest.raises(TypeError, match="target must be a Tensor"):
        tape.gradient(3.0, x)
    with ad.GradientTape() as tape:
        with pytest.raises(ValueError, match="GradientTape.watch: Passed in object .x. of type"):
            tape.watch([x, "x"])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * 2.0
    with pytest.raises(TypeError, match="sources must be Tensors"):
        tape.gradient(y, [x, 1.0])
    del y


def test_an_exception_inside_the_tape_leaves_no_tape_recording():
    x = ad.constant(1.0)
    with pytest.raises(ZeroDivisionError):
        with ad.GradientTape() as tape:
            tape.watch(x)
            1 / 0
    assert ad.core.recorders() in ((), [])


def test_tape_stack_is_thread_local():
    x = ad.constant(2.0)
    results = {}
    with ad.GradientTape() as tape:
        tape.watch(x)

        def other_thread():
            results["y"] = x * x  # not recorded by the main thread's tape
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        z = x * 3.0
    assert results["y"]._id == 0 and z._id != 0
    assert tape.gradient(results["y"], x) is None


def test_threads_compute_their_own_gradients():
    def work(k, out):
        x = ad.constant(float(k))
        for _ in range(50):
            with ad.GradientTape() as tape:
                tape.watch(x)
                y = x * x * x
            out[k] = float(tape.gradient(y, x))
    out = {}
    threads = [threading.Thread(target=work, args=(k, out)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {k: 3.0 * k * k for k in range(1, 5)}


# --------------------------------------------------------------------- function transforms

def test_gradients_function_watches_every_argument_and_params_selects():
    def f(x, y):
        return x * x * y
    assert [float(g) for g in ad.gradients_function(f)(3.0, 2.0)] == [12.0, 9.0]
    assert [float(g) for g in ad.gradients_function(f, params=[1])(3.0, 2.0)] == [9.0]
    assert [float(g) for g in ad.gradients_function(f, params=["y"])(3.0, 2.0)] == [9.0]
    with pytest.raises(ValueError, match="keyword"):
        ad.gradients_function(f)(3.0, y=2.0)


def test_value_and_gradients_function_and_dy():
    value, grads = ad.value_and_gradients_function(lambda x: x * x)(ad.constant([1.0, 2.0]),
                                                                   dy=ad.constant([1.0, 3.0]))
    assert value.numpy().tolist() == [1.0, 4.0] and grads[0].numpy().tolist() == [2.0, 12.0]


def test_same_tensor_passed_twice_gets_separate_gradients():
    x = ad.constant(3.0)
    grads = ad.gradients_function(lambda a, b: a * b * b)(x, x)
    assert [float(g) for g in grads] == [9.0, 18.0]


def test_nested_gradients_function_higher_order():
    def f(x):
        return ad.square(ad.sin(x))

    def grad(fn):
        return lambda x: ad.gradients_function(fn)(x)[0]
    x = ad.constant(np.linspace(-2, 2, 7), dtype="float64")
    np.testing.assert_allclose(grad(grad(grad(f)))(x).numpy(), -4 * np.sin(2 * x.numpy()),
                               atol=1e-12)


def test_implicit_gradients():
    w, b = ad.Variable([1.0, 2.0], name="w"), ad.Variable(0.5, name="b")

    def loss(x):
        return ad.reduce_sum(w * x) + b
    value, pairs = ad.implicit_value_and_gradients(loss)(ad.constant([3.0, 4.0]))
    assert float(value) == 11.5
    assert [(g.numpy().tolist(), v.name) for g, v in pairs] == [([3.0, 4.0], "w"), (1.0, "b")]
    assert len(ad.implicit_gradients(loss)(ad.constant([3.0, 4.0]))) == 2
    with pytest.raises(ValueError, match="no trainable Variables"):
        ad.implicit_gradients(lambda x: x * 2.0)(1.0)
