"""sort, argsort, top_k, segment_sum, unsorted_segment_sum, reduce_euclidean_norm and
cumulative_logsumexp: values against NumPy, gradients against closed forms (ties, dropped
segment ids, zeros, extreme values), Jacobians by forward mode, ``ad.function`` (data-dependent
shapes refused, ids checked in replays) and the errors (each names the op, the argument and
the shapes or dtypes).  Second-order checks of every case against central differences are in
tests/registry_sort_segment.py (run by tests/test_op_registry.py)."""
import itertools

import numpy as np
import pytest

import gpuad as ad
from gpuad import reductions

rng = np.random.default_rng(41)
X = rng.uniform(-1, 1, (3, 4, 5))


def _gradient(f, x):
    x = ad.constant(x)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    return tape.gradient(y, x).numpy()


# ------------------------------------------------------------------------- sort, argsort

@pytest.mark.parametrize("axis", [0, 1, -1, -3])
@pytest.mark.parametrize("direction", ["ASCENDING", "DESCENDING"])
def test_sort_and_argsort_match_numpy(axis, direction):
    want = np.sort(X, axis=axis)
    order = np.argsort(X, axis=axis, kind="stable")
    if direction == "DESCENDING":
        want, order = np.flip(want, axis), np.flip(order, axis)  # no ties in X
    np.testing.assert_array_equal(ad.sort(X, axis, direction).numpy(), want)
    got = ad.argsort(X, axis, direction)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got.numpy(), order)


def test_integer_sort_and_top_k():
    x = ad.constant([[5, -3, 7, -3], [0, 2, 2, 1]])
    assert ad.sort(x).numpy().tolist() == [[-3, -3, 5, 7], [0, 1, 2, 2]]
    assert ad.sort(x, direction="DESCENDING").dtype == np.int32
    values, indices = ad.math.top_k(x, 2)
    assert values.numpy().tolist() == [[7, 5], [2, 2]] and indices.numpy().tolist() == [[2, 0],
                                                                                       [1, 2]]


def test_sort_gradient_is_the_permutation_and_ties_follow_the_stable_order():
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    x = np.array([0.3, -1.0, 0.3, 2.0])  # a tie: index 0 comes before index 2 both ways
    # ascending: [-1.0, 0.3 (x0), 0.3 (x2), 2.0]; each input gets its own position's weight
    np.testing.assert_array_equal(_gradient(lambda t: ad.reduce_sum(ad.sort(t) * w), x),
                                  [10.0, 1.0, 100.0, 1000.0])
    # descending: [2.0, 0.3 (x0), 0.3 (x2), -1.0]
    np.testing.assert_array_equal(
        _gradient(lambda t: ad.reduce_sum(ad.sort(t, direction="DESCENDING") * w), x),
        [10.0, 1000.0, 100.0, 1.0])


def test_sort_batched_gradient_and_jacobian():
    w = rng.uniform(-1, 1, X.shape)
    order = np.argsort(X, axis=1, kind="stable")
    want = np.zeros_like(X)
    np.put_along_axis(want, order, w, axis=1)  # out[order[j]] = w[j]
    got = _gradient(lambda t: ad.reduce_sum(ad.sort(t, axis=-2) * w), X)
    np.testing.assert_allclose(got, want, rtol=0, atol=0)
    v = X[0, :, 0]
    jacobian = ad.jacobian(lambda t: ad.sort(t))(ad.constant(v)).numpy()  # forward and reverse
    np.testing.assert_array_equal(jacobian, np.eye(4)[np.argsort(v)])


def test_sort_forward_mode():
    x, t = ad.constant(X), ad.constant(rng.uniform(-1, 1, X.shape))
    with ad.ForwardAccumulator(x, t) as acc:
        y = ad.sort(x, axis=0, direction="DESCENDING")
    order = np.flip(np.argsort(X, axis=0, kind="stable"), 0)
    np.testing.assert_array_equal(acc.jvp(y).numpy(), np.take_along_axis(t.numpy(), order, 0))


@pytest.mark.parametrize("op", [ad.sort, ad.argsort])
def test_sort_errors(op):
    name = op.__name__
    with pytest.raises(ValueError, match=rf"{name}: direction must be 'ASCENDING' or "
                                         r"'DESCENDING', got 'ascending'"):
        op(X, direction="ascending")
    with pytest.raises(ValueError, match=rf"{name}: axis must be an int in \[-3, 3\) for "
                                         r"values of shape \(3, 4, 5\), got 3"):
        op(X, axis=3)
    with pytest.raises(ValueError, match=rf"{name}: values must have rank >= 1"):
        op(1.0)
    with pytest.raises(TypeError, match=rf"{name}: values has dtype bool; expected a numeric"):
        op([True, False])


# ------------------------------------------------------------------------------------ top_k

def test_top_k_values_indices_and_gradient():
    x = np.array([[0.5, 2.0, -1.0, 2.0, 0.1], [3.0, 1.0, 4.0, 1.5, 9.0]])
    result = ad.math.top_k(x, k=3)
    assert isinstance(result, ad.sorting.TopKV2) and ad.nn.top_k is ad.math.top_k
    np.testing.assert_array_equal(result.values.numpy(), [[2.0, 2.0, 0.5], [9.0, 4.0, 3.0]])
    assert result.indices.dtype == np.int32
    assert result.indices.numpy().tolist() == [[1, 3, 0], [4, 2, 0]]  # ties: lower index first
    w = np.array([1.0, 10.0, 100.0])
    got = _gradient(lambda t: ad.reduce_sum(ad.math.top_k(t, 3).values * w), x)
    np.testing.assert_array_equal(got, [[100.0, 1.0, 0.0, 10.0, 0.0],
                                        [100.0, 0.0, 10.0, 0.0, 1.0]])


def test_top_k_batched_k_as_tensor_int64_and_empty():
    values, indices = ad.nn.top_k(X, k=ad.constant(2), index_type=np.int64)
    order = np.argsort(-X, axis=-1, kind="stable")[..., :2]
    assert indices.dtype == np.int64 and values.shape == (3, 4, 2)
    np.testing.assert_array_equal(indices.numpy(), order)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(X, order, -1))
    assert ad.math.top_k(X, 0).values.shape == (3, 4, 0)
    assert ad.math.top_k(X, 5, sorted=False).values.numpy()[0, 0, 0] == X[0, 0].max()


def test_top_k_errors():
    with pytest.raises(ValueError, match=r"top_k: k must be in \[0, 5\] \(the last axis of input "
                                         r"of shape \(3, 4, 5\)\), got k=6"):
        ad.math.top_k(X, 6)
    with pytest.raises(ValueError, match=r"got k=-1"):
        ad.math.top_k(X, -1)
    with pytest.raises(TypeError, match=r"top_k: k must be an int, got 1.5"):
        ad.math.top_k(X, 1.5)
    with pytest.raises(ValueError, match=r"top_k: input must have rank >= 1"):
        ad.math.top_k(1.0)
    with pytest.raises(TypeError, match=r"top_k: index_type must be int32 or int64"):
        ad.math.top_k(X, 1, index_type=np.float32)


def test_sort_and_top_k_compile_and_replay_new_orders():
    @ad.function
    def step(x):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.math.top_k(x, 2).values * ad.constant([1.0, 3.0], 'float64')) + \
                ad.reduce_sum(ad.sort(x, axis=0)[0])
        return y, tape.gradient(y, x)
    for seed in range(3):  # other orders each call: the replay sorts anew
        x = ad.constant(np.random.default_rng(seed).uniform(-1, 1, (3, 4)))
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.math.top_k(x, 2).values * ad.constant([1.0, 3.0], 'float64')) + \
                ad.reduce_sum(ad.sort(x, axis=0)[0])
        got = step(x)
        np.testing.assert_allclose(got[0].numpy(), y.numpy(), rtol=1e-12)
        np.testing.assert_array_equal(got[1].numpy(), tape.gradient(y, x).numpy())
    assert step.experimental_get_tracing_count() == 1


# ----------------------------------------------------------------------------- segment sums

def _segment_reference(data, ids, n):
    out = np.zeros((n,) + data.shape[ids.ndim:])
    for i in np.ndindex(ids.shape):
        if ids[i] >= 0:
            out[ids[i]] += data[i]
    return out


def test_segment_sum_values_and_gradient():
    ids = np.array([0, 0, 2])  # segment 1 is empty: a row of zeros
    got = ad.math.segment_sum(X, ids)
    assert got.shape == (3, 4, 5)
    np.testing.assert_allclose(got.numpy(), _segment_reference(X, ids, 3), rtol=1e-15)
    w = rng.uniform(-1, 1, (3, 4, 5))
    np.testing.assert_array_equal(_gradient(lambda t: ad.reduce_sum(
        ad.math.segment_sum(t, ids) * w), X), w[ids])  # a gather of the cotangent
    assert ad.math.segment_sum(np.zeros((0, 2)), np.zeros(0, np.int64)).shape == (0, 2)
    ints = ad.math.segment_sum(ad.constant([1, 2, 3]), ad.constant([0, 1, 1], "int64"))
    assert ints.numpy().tolist() == [1, 5] and ints.dtype == np.int32


def test_unsorted_segment_sum_drops_negative_ids_with_zero_gradient():
    ids = np.array([[1, -1, 0, 4], [1, 1, -3, 0], [4, 0, 0, 2]])  # a prefix (3, 4) of X's shape
    got = ad.math.unsorted_segment_sum(X, ids, 6)
    assert got.shape == (6, 5)
    np.testing.assert_allclose(got.numpy(), _segment_reference(X, ids, 6), rtol=1e-14)
    w = rng.uniform(-1, 1, (6, 5))
    want = np.where((ids >= 0)[..., None], w[np.maximum(ids, 0)], 0.0)
    np.testing.assert_array_equal(_gradient(lambda t: ad.reduce_sum(
        ad.math.unsorted_segment_sum(t, ids, 6) * w), X), want)


def test_segment_sum_jacobians_forward_and_reverse():
    ids = np.array([2, 0, 2, -1])
    x = ad.constant(rng.uniform(-1, 1, 4))
    want = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], float)  # out x data
    got = ad.jacobian(lambda t: ad.math.unsorted_segment_sum(t, ids, 3))(x)
    np.testing.assert_array_equal(got.numpy(), want)
    t = ad.constant(rng.uniform(-1, 1, 4))
    with ad.ForwardAccumulator(x, t) as acc:
        y = ad.math.unsorted_segment_sum(x * x, ids, 3)
        z = ad.math.segment_sum(y, [0, 0, 1])
    np.testing.assert_allclose(acc.jvp(y).numpy(), want @ (2 * x.numpy() * t.numpy()))
    np.testing.assert_allclose(acc.jvp(z).numpy(), [[1, 1, 0], [0, 0, 1]] @ acc.jvp(y).numpy())


def test_segment_sum_errors():
    with pytest.raises(ValueError, match=r"segment_sum: segment_ids must be sorted, got 2 "
                                         r"before 1 at 1 \(use unsorted_segment_sum\)"):
        ad.math.segment_sum(X, [0, 2, 1])
    with pytest.raises(ValueError, match=r"segment_sum: segment_ids must be >= 0, got -1"):
        ad.math.segment_sum(X, [-1, 0, 1])
    with pytest.raises(TypeError, match=r"segment_sum: segment_ids must be int32 or int64, got "
                                        r"float32"):
        ad.math.segment_sum(X, [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"segment_sum: the shape \(2,\) of segment_ids must be "
                                         r"a prefix of the shape \(3, 4, 5\) of data"):
        ad.math.segment_sum(X, [0, 1])
    with pytest.raises(ValueError, match=r"segment_sum: segment_ids must be 1-D, got shape "
                                         r"\(3, 4\)"):
        ad.math.segment_sum(X, np.zeros((3, 4), np.int32))
    with pytest.raises(IndexError, match=r"unsorted_segment_sum: segment_ids must be < "
                                         r"num_segments = 2, got 2"):
        ad.math.unsorted_segment_sum(X, [0, 2, 1], 2)
    with pytest.raises(ValueError, match=r"unsorted_segment_sum: num_segments must be an int "
                                         r">= 0, got -1"):
        ad.math.unsorted_segment_sum(X, [0, 1, 1], -1)


def test_segment_sums_under_function():
    """Constant ids compile (the output's shape is known); ids computed from the inputs give
    segment_sum a data-dependent shape: a TraceError pointing to unsorted_segment_sum, which
    checks its ids in every replay (never a silently wrapped index)."""
    @ad.function
    def constant_ids(x):
        return ad.math.segment_sum(x, [0, 1, 1]) * 2.0
    for x in (X, X + 1.0):
        np.testing.assert_allclose(constant_ids(ad.constant(x)).numpy(),
                                   2 * _segment_reference(x, np.array([0, 1, 1]), 2))
    assert constant_ids.experimental_get_tracing_count() == 1

    @ad.function
    def traced_ids(x, ids):
        return ad.math.segment_sum(x, ids)
    with pytest.raises(ad.TraceError, match=r"the segment ids of segment_sum \(they set "
                                            r"its output's shape: use unsorted_segment_sum"):
        traced_ids(ad.constant(X), ad.constant([0, 1, 1]))

    @ad.function
    def unsorted(x, ids):
        return ad.math.unsorted_segment_sum(x, ids, 3)
    ids = np.array([2, -1, 0])
    np.testing.assert_allclose(unsorted(ad.constant(X), ad.constant(ids)).numpy(),
                               _segment_reference(X, ids, 3))
    ids = np.array([0, 0, 1])
    np.testing.assert_allclose(unsorted(ad.constant(X), ad.constant(ids)).numpy(),
                               _segment_reference(X, ids, 3))
    assert unsorted.experimental_get_tracing_count() == 1
    with pytest.raises(IndexError, match=r"unsorted_segment_sum: segment_ids must be < "
                                         r"num_segments = 3, got 7"):
        unsorted(ad.constant(X), ad.constant([0, 7, 1]))  # a replay


# -------------------------------------------------------------------- reduce_euclidean_norm

@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, True), ((0, -1), False)])
def test_reduce_euclidean_norm_values_and_gradient(axis, keepdims):
    got = ad.math.reduce_euclidean_norm(X, axis, keepdims)
    want = np.sqrt(np.sum(X * X, axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-15)
    norm = np.sqrt(np.sum(X * X, axis=axis, keepdims=True))
    np.testing.assert_allclose(_gradient(lambda t: ad.math.reduce_euclidean_norm(
        t, axis, keepdims), X), X / norm, rtol=1e-14)


def test_reduce_euclidean_norm_at_zero_is_nan_as_tensorflow():
    """tf.math.reduce_euclidean_norm's gradient is x / norm: NaN where the norm is 0 (checked
    against TF 2.21: [[nan, nan], [0.6, 0.8]] here), finite wherever the norm is not."""
    x = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    got = _gradient(lambda t: ad.math.reduce_euclidean_norm(t, axis=1), x)
    np.testing.assert_allclose(got, [[np.nan, np.nan], [0.6, 0.8]], rtol=1e-7)
    np.testing.assert_allclose(_gradient(ad.math.reduce_euclidean_norm, x), [[0, 0], [0.6, 0.8]])


def test_reduce_euclidean_norm_of_integers_and_errors():
    got = ad.math.reduce_euclidean_norm(ad.constant([[1, 2, 3], [1, 1, 1]]))
    assert got.dtype == np.int32 and int(got) == 4  # sqrt(17), truncated as TensorFlow's
    assert ad.math.reduce_euclidean_norm(ad.constant([[3, 4]]), 1).numpy().tolist() == [5]
    with pytest.raises(TypeError, match=r"reduce_euclidean_norm: input_tensor has dtype bool"):
        ad.math.reduce_euclidean_norm([True])
    with pytest.raises(ValueError, match=r"reduce_euclidean_norm: axis 3 is out of range"):
        ad.math.reduce_euclidean_norm(X, 3)


# --------------------------------------------------------------------- cumulative_logsumexp

@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive, reverse", list(itertools.product([False, True], repeat=2)))
def test_cumulative_logsumexp_matches_numpy(axis, exclusive, reverse):
    v = np.flip(X, axis) if reverse else X
    want = np.log(np.cumsum(np.exp(v), axis=axis))
    if exclusive:
        want = np.concatenate([np.full_like(np.take(want, [0], axis), -np.inf),
                               np.delete(want, -1, axis)], axis)
    want = np.flip(want, axis) if reverse else want
    got = ad.math.cumulative_logsumexp(X, axis, exclusive, reverse).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_cumulative_logsumexp_extremes_and_closed_form_gradient():
    """Values 2000 apart: no overflow, no lost term; the gradient, sum over k >= i of
    g[k] exp(x[i] - y[k]), from float64 at high precision."""
    x = np.array([-1000.0, 0.0, 1000.0, 999.0, -5.0], np.float32)
    y = ad.math.cumulative_logsumexp(x)
    np.testing.assert_allclose(y.numpy(), [-1000.0, 0.0, 1000.0, 1000.0 + np.log1p(np.exp(-1)),
                                           1000.0 + np.log1p(np.exp(-1))], rtol=1e-7)
    w = np.array([1.0, -2.0, 0.5, 3.0, -1.0], np.float32)
    got = _gradient(lambda t: ad.reduce_sum(ad.math.cumulative_logsumexp(t) * w), x)
    x64, y64 = x.astype(np.float64), y.numpy().astype(np.float64)
    want = [sum(w[k] * np.exp(x64[i] - y64[k]) for k in range(i, 5)) for i in range(5)]
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-30)
    t = np.array([0.3, -1.0, 2.0, 0.5, 4.0])  # forward, reversed: t[j] e^(x[j] - y[k]), j >= k
    xt = ad.constant(x64)
    with ad.ForwardAccumulator(xt, ad.constant(t)) as acc:
        out = ad.math.cumulative_logsumexp(xt, reverse=True)
    yr = out.numpy()
    want = [sum(t[j] * np.exp(x64[j] - yr[k]) for j in range(k, 5)) for k in range(5)]
    np.testing.assert_allclose(acc.jvp(out).numpy(), want, rtol=1e-12)


def test_cumulative_logsumexp_doubling_scan_equals_accumulate():
    """The CuPy path (log2(n) logaddexp steps) against NumPy's logaddexp.accumulate."""
    v = rng.uniform(-30, 30, (4, 9, 3))
    for axis in (-1, -2, -3):
        np.testing.assert_allclose(reductions._logaddexp_doubling(v, axis),
                                   np.logaddexp.accumulate(v, axis=axis), rtol=1e-13)


def test_cumulative_logsumexp_errors():
    with pytest.raises(TypeError, match=r"cumulative_logsumexp: x has dtype int32; expected a "
                                        r"floating"):
        ad.math.cumulative_logsumexp([1, 2])
    with pytest.raises(ValueError, match=r"cumulative_logsumexp: axis 2 is out of range for a "
                                         r"tensor of shape \(2,\)"):
        ad.math.cumulative_logsumexp([1.0, 2.0], axis=2)


# ------------------------------------------------------------------------------------- CuPy

@pytest.mark.gpu
def test_sorting_and_segments_on_cupy_match_numpy():
    x = X.astype(np.float32)
    ids = np.array([[1, -1, 0, 4], [1, 1, -3, 0], [4, 0, 0, 2]])

    def results(backend):
        with ad.backend(backend):
            t = ad.constant(x)
            with ad.GradientTape() as tape:
                tape.watch(t)
                parts = [ad.sort(t, axis=1, direction="DESCENDING"),
                         ad.math.top_k(t, 3).values,
                         ad.math.unsorted_segment_sum(t, ids, 5),
                         ad.math.segment_sum(t, [0, 0, 1]),
                         ad.math.cumulative_logsumexp(t * 100.0, axis=-1, reverse=True),
                         ad.math.reduce_euclidean_norm(t, -1)]
                loss = sum(ad.reduce_sum(p * p) for p in parts)
            return [p.numpy() for p in parts] + [tape.gradient(loss, t).numpy(),
                                                 ad.argsort(t, axis=0).numpy()]
    for got, want in zip(results("cupy"), results("numpy")):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5)
    with ad.backend("cupy"):
        with pytest.raises(IndexError, match="must be < num_segments = 2"):
            ad.math.unsorted_segment_sum(ad.constant(x), [0, 2, 1], 2)
        v = ad.constant(rng.uniform(-30, 30, (3, 1000)))
        np.testing.assert_allclose(ad.math.cumulative_logsumexp(v, axis=1).numpy(),
                                   np.logaddexp.accumulate(v.numpy(), axis=1), rtol=1e-12)
