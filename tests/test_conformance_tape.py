"""Tape semantics where gpuad must agree with TensorFlow 2.21 (issue 10): copies of tensors,
custom_gradient over Variables, the order of variables, and the errors TensorFlow defines."""
import copy
import pickle
import re

import numpy as np
import pytest

import gpuad as ad
from gpuad import backends


def _pickled(x):
    return pickle.loads(pickle.dumps(x))


COPIES = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": _pickled}


# ------------------------------------------------------------------ copies get a new identity

@pytest.mark.parametrize("make_copy", COPIES.values(), ids=COPIES.keys())
def test_a_copied_variable_is_a_separate_source(make_copy):
    w = ad.Variable(2.0, name="w")
    w2 = make_copy(w)
    with ad.GradientTape(persistent=True) as tape:
        only_copy = 4.0 * w2
        both = 3.0 * w + 5.0 * w2
    assert tape.gradient(only_copy, w) is None
    assert float(tape.gradient(only_copy, w2)) == 4.0
    g_w, g_w2 = tape.gradient(both, [w, w2])
    assert (float(g_w), float(g_w2)) == (3.0, 5.0)
    assert [v is w2 for v in tape.watched_variables()].count(True) == 1


@pytest.mark.parametrize("make_copy", COPIES.values(), ids=COPIES.keys())
def test_a_copied_variable_keeps_value_dtype_name_trainable_and_owns_its_buffer(make_copy):
    w = ad.Variable(np.array([1.0, 2.0]), trainable=False, name="frozen")
    w2 = make_copy(w)
    assert type(w2) is ad.Variable and w2.dtype == np.float64 and w2.backend == "numpy"
    assert (w2.name, w2.trainable) == ("frozen", False)
    assert w2.numpy().tolist() == [1.0, 2.0] and not np.shares_memory(w2.array, w.array)
    assert w2._id not in (0, w._id)  # a Variable always has an id of its own
    w2.assign([5.0, 6.0])
    assert w.numpy().tolist() == [1.0, 2.0]


@pytest.mark.parametrize("make_copy", COPIES.values(), ids=COPIES.keys())
def test_a_copied_tensor_is_not_watched(make_copy):
    x = ad.constant([1.0, 3.0], dtype="float64")
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        x2 = make_copy(x)
        y = ad.reduce_sum(x2 * x2) + ad.reduce_sum(2.0 * x)
    assert type(x2) is ad.Tensor and x2.dtype == np.float64
    assert x2.numpy().tolist() == [1.0, 3.0]
    assert tape.gradient(y, x).numpy().tolist() == [2.0, 2.0]  # only the direct term
    assert tape.gradient(y, x2) is None


@pytest.mark.gpu
def test_pickling_a_cupy_variable_keeps_it_on_cupy():
    w = ad.Variable(ad.constant([1.0, 2.0], backend="cupy"), name="w")
    w2 = _pickled(w)
    assert w2.backend == "cupy" and w2.numpy().tolist() == [1.0, 2.0] and w2._id != w._id
    t2 = _pickled(ad.constant([3.0], backend="cupy"))
    assert t2.backend == "cupy" and t2.numpy().tolist() == [3.0]
    assert backends.name_of(t2.array) == "cupy"


# ------------------------------------------------------- custom_gradient over a Variable argument

@ad.custom_gradient
def _doubled_gradient(x):
    return ad.identity(x), lambda dy: 2.0 * dy


@ad.custom_gradient
def _square_plus_x(x):  # value x**2, declared gradient 2x + 1 (reads x when differentiated)
    return ad.square(x), lambda dy: 2.0 * dy * x + 1.0


def test_custom_gradient_of_a_variable_argument_reaches_the_variable():
    v = ad.Variable(1.0)
    with ad.GradientTape() as tape:
        y = _doubled_gradient(v)
    assert float(tape.gradient(y, v)) == 2.0


def test_custom_gradient_reading_its_variable_argument_needs_no_variables_keyword():
    v = ad.Variable(3.0)
    [(g, var)] = ad.implicit_gradients(lambda: _square_plus_x(v))()
    assert var is v and float(g) == 7.0
    with ad.GradientTape() as outer:
        with ad.GradientTape() as inner:
            y = _square_plus_x(v)
        g = inner.gradient(y, v)
    assert float(g) == 7.0 and float(outer.gradient(g, v)) == 2.0  # d(2v + 1)/dv


def test_custom_gradient_passes_only_the_other_variables_to_grad_fn():
    v, w = ad.Variable(3.0, name="v"), ad.Variable(2.0, name="w")
    passed = []

    @ad.custom_gradient
    def scale(x):
        def grad_fn(dy, variables=None):
            passed.append(variables)
            return dy * w, [dy * x]
        return x * w, grad_fn
    with ad.GradientTape() as tape:
        y = scale(v)
    g_v, g_w = tape.gradient(y, [v, w])
    assert (float(g_v), float(g_w)) == (2.0, 3.0)
    assert len(passed) == 1 and len(passed[0]) == 1 and passed[0][0] is w


@pytest.mark.parametrize("dtype, returned", [
    ("float64", lambda dy: 3.0),  # a Python float (float32 by itself)
    ("float32", lambda dy: np.float64(3.0)),
    ("float32", lambda dy: np.array(3.0)),
], ids=["python float", "numpy scalar", "numpy 0-d array"])
def test_custom_gradient_converts_python_and_numpy_gradients_to_the_input_dtype(dtype, returned):
    @ad.custom_gradient
    def f(x):
        return x * x, returned
    x = ad.constant(2.0, dtype=dtype)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    g = tape.gradient(y, x)
    assert g.dtype == np.dtype(dtype) and float(g) == 3.0


def test_custom_gradient_with_the_wrong_number_of_gradients_is_a_value_error():
    w = ad.Variable(2.0, name="w")

    @ad.custom_gradient
    def scale(x):
        return x * w, lambda dy, variables=None: dy * w  # forgot the variable gradients
    x = ad.constant(3.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = scale(x)
    with pytest.raises(ValueError, match=r"custom_gradient\(scale\).*input_grads, variable_grads"):
        tape.gradient(y, x)

    @ad.custom_gradient
    def two_for_one(x):
        return x * 2.0, lambda dy: [dy, dy]
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = two_for_one(x)
    with pytest.raises(ValueError, match=r"returned 2 input gradients .* for 1 inputs"):
        tape.gradient(y, x)


# ----------------------------------------------------------- variables come in creation order

def test_variables_are_listed_in_creation_order_not_access_order():
    a, b, c = ad.Variable(1.0, name="a"), ad.Variable(2.0, name="b"), ad.Variable(3.0, name="c")

    def loss():
        return c * 5.0 + a * 7.0 + b * 11.0  # read c first, then a, then b
    with ad.GradientTape() as tape:
        loss()
    assert [v.name for v in tape.watched_variables()] == ["a", "b", "c"]
    pairs = ad.implicit_gradients(loss)()
    assert [(v.name, float(g)) for g, v in pairs] == [("a", 7.0), ("b", 11.0), ("c", 5.0)]
    value, pairs = ad.implicit_value_and_gradients(loss)()
    assert float(value) == 15.0 + 7.0 + 22.0
    assert [v.name for _, v in pairs] == ["a", "b", "c"]


# ------------------------------------------------------------------- the errors TF defines

def _forgets_to_return(x):
    x * x


@pytest.mark.parametrize("transform", [
    ad.gradients_function, ad.value_and_gradients_function,
    ad.implicit_gradients, ad.implicit_value_and_gradients])
def test_differentiating_a_function_that_returns_none(transform):
    v = ad.Variable(1.0)  # read, so that the implicit transforms have a variable

    def forgets(x):
        x * v
    for f in (_forgets_to_return, forgets):
        message = ("Cannot differentiate a function that returns None; did you forget to "
                   f"return a value from {f.__name__}?")
        with pytest.raises(ValueError) as info:
            transform(f)(2.0)
        assert str(info.value) == message


@pytest.mark.parametrize("not_a_tensor", [1.0, np.array([1.0, 2.0]), [ad.constant(1.0), 2.0]],
                         ids=["float", "ndarray", "list with a float"])
def test_watching_a_non_tensor_is_a_value_error(not_a_tensor):
    with ad.GradientTape() as tape:
        with pytest.raises(ValueError, match="GradientTape.watch: Passed in object"):
            tape.watch(not_a_tensor)


@pytest.mark.parametrize("source_shape, f, bad", [
    ((3, 2), lambda x: ad.reduce_sum(x, axis=1), "target shape (3,)"),
    ((3,), lambda x: ad.reshape(x, (3, 1)) * 2.0, "source shape (3,)")], ids=["target", "source"])
def test_batch_jacobian_needs_rank_two(source_shape, f, bad):
    x = ad.constant(np.ones(source_shape))
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    with pytest.raises(ValueError, match=re.escape(f"{bad} must have rank at least 2")):
        tape.batch_jacobian(y, x)


def test_batch_jacobian_batch_size_mismatch_has_tensorflows_message():
    x = ad.constant(np.ones((3, 2)))
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(x) * ad.ones((4, 2), "float64")
    with pytest.raises(ValueError) as info:
        tape.batch_jacobian(y, x)
    assert str(info.value) == ("Need first dimension of target shape ((4, 2)) and source "
                               "shape ((3, 2)) to match.")


@pytest.mark.parametrize("first, second", [
    ("gradient", "gradient"), ("jacobian", "jacobian"), ("batch_jacobian", "batch_jacobian"),
    ("gradient", "batch_jacobian"), ("batch_jacobian", "gradient")])
def test_a_used_non_persistent_tape_says_what_tensorflow_says(first, second):
    x = ad.constant(np.arange(6.0).reshape(3, 2))
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    getattr(tape, first)(y, x)
    with pytest.raises(RuntimeError) as info:
        getattr(tape, second)(y, x)
    assert str(info.value).startswith(
        "A non-persistent GradientTape can only be used to compute one set of gradients")


@pytest.mark.parametrize("method", ["gradient", "jacobian", "batch_jacobian"])
def test_an_unknown_unconnected_gradients_value(method):
    x = ad.constant(np.ones((2, 2)))
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * 2.0
    with pytest.raises(ValueError) as info:
        getattr(tape, method)(y, x, unconnected_gradients="nonsense")
    assert str(info.value) == "Unknown value for unconnected_gradients: 'nonsense'"
