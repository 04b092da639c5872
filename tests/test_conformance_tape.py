"""Tape semantics where gpuad must agree with TensorFlow 2.21 (issue 10): copies of tensors,
custom_gradient over Variables, the order of variables, and the errors TensorFlow defines."""
import copy
import pickle

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
