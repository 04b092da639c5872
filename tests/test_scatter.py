"""gather_nd, scatter_nd, tensor_scatter_nd_* (gpuad/scatter_ops.py) and Variable slice and
scatter assignment (gpuad/variables.py): values against NumPy, TensorFlow's gradient rules
for repeated indices and ties (closed forms, the numbers TF 2.21 gives), Jacobians against
central differences, clear errors, and assignments inside ``ad.function``.

The gradients of every op to second order, reverse and forward, are checked by the op
registry (tests/registry_scatter.py).
"""
import warnings

import numpy as np
import pytest

import gpuad as ad

X = np.arange(24.0).reshape(2, 3, 4)


# ----------------------------------------------------------------------------- values

def test_gather_nd_elements_slices_batches_and_empty_index_depth():
    x = ad.constant(X)
    np.testing.assert_array_equal(ad.gather_nd(x, [[1, 2, 3], [0, 0, 1]]).numpy(),
                                  [X[1, 2, 3], X[0, 0, 1]])
    np.testing.assert_array_equal(ad.gather_nd(x, [[[1, 2]], [[0, 0]]]).numpy(),
                                  [[X[1, 2]], [X[0, 0]]])
    np.testing.assert_array_equal(ad.gather_nd(x, [1, 0]).numpy(), X[1, 0])  # 1-D indices
    np.testing.assert_array_equal(ad.gather_nd(x, [[2], [0]], batch_dims=1).numpy(),
                                  [X[0, 2], X[1, 0]])
    np.testing.assert_array_equal(ad.gather_nd(x, [[[2, 3]], [[0, 1]]], batch_dims=1).numpy(),
                                  [[X[0, 2, 3]], [X[1, 0, 1]]])
    assert ad.gather_nd(x, np.zeros((5, 0), np.int64)).shape == (5, 2, 3, 4)
    ints = ad.constant([[1, 2], [3, 4]])
    assert ad.gather_nd(ints, [[1, 1]]).numpy().tolist() == [4]


def test_scatter_nd_sums_repeated_indices():
    got = ad.scatter_nd([[1], [3], [1]], ad.constant([1.0, 2.0, 5.0]), [4])
    np.testing.assert_array_equal(got.numpy(), [0.0, 6.0, 0.0, 2.0])
    slices = ad.scatter_nd([[0], [0]], ad.constant([[1, 2], [10, 20]]), [2, 2])
    assert slices.numpy().tolist() == [[11, 22], [0, 0]] and slices.dtype == np.int32
    whole = ad.scatter_nd(np.zeros((3, 0), np.int32), ad.ones((3, 2)), [2])  # K = 0
    np.testing.assert_array_equal(whole.numpy(), [3.0, 3.0])


def test_tensor_scatter_nd_update_add_sub_max_min():
    t = ad.constant([1.0, 2.0, 3.0])
    dup = [[1], [1]]
    # the last of repeated indices wins (TF on the CPU: [1, 6, 3])
    np.testing.assert_array_equal(ad.tensor_scatter_nd_update(t, dup, [5.0, 6.0]).numpy(),
                                  [1.0, 6.0, 3.0])
    np.testing.assert_array_equal(ad.tensor_scatter_nd_add(t, dup, [5.0, 6.0]).numpy(),
                                  [1.0, 13.0, 3.0])
    np.testing.assert_array_equal(ad.tensor_scatter_nd_sub(t, dup, [5.0, 6.0]).numpy(),
                                  [1.0, -9.0, 3.0])
    np.testing.assert_array_equal(ad.tensor_scatter_nd_max(t, dup, [5.0, 6.0]).numpy(),
                                  [1.0, 6.0, 3.0])
    np.testing.assert_array_equal(ad.tensor_scatter_nd_min(t, [[1], [2]], [5.0, 0.0]).numpy(),
                                  [1.0, 2.0, 0.0])
    m = ad.tensor_scatter_nd_update(ad.zeros((3, 2), "int32"), [[2], [0]], [[1, 2], [3, 4]])
    assert m.numpy().tolist() == [[3, 4], [0, 0], [1, 2]]
    assert t.numpy().tolist() == [1.0, 2.0, 3.0]  # inputs unchanged


# ------------------------------------------------------------------ TensorFlow's gradients

def _grads(op, tensor, indices, updates, g):
    t, u = ad.constant(tensor, "float64"), ad.constant(updates, "float64")
    with ad.GradientTape() as tape:
        tape.watch([t, u])
        y = op(t, indices, u)
    return [r.numpy() for r in tape.gradient(y, [t, u], output_gradients=ad.constant(g, "float64"))]


def test_update_gradient_with_a_repeated_index_is_tensorflows():
    # TF 2.21: tensor gets g zeroed where updated, every update at index 1 gets g[1]
    gt, gu = _grads(ad.tensor_scatter_nd_update, [1.0, 2.0, 3.0], [[1], [1]], [5.0, 2.0],
                    [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(gt, [10.0, 0.0, 30.0])
    np.testing.assert_array_equal(gu, [20.0, 20.0])


def test_max_min_gradients_share_ties_as_tensorflow():
    # the numbers TF 2.21 gives: a tie of the tensor and two updates splits g[1] in three
    gt, gu = _grads(ad.tensor_scatter_nd_max, [1.0, 2.0, 3.0], [[1], [1]], [2.0, 2.0],
                    [10.0, 20.0, 30.0])
    np.testing.assert_allclose(gt, [10.0, 20.0 / 3, 30.0])
    np.testing.assert_allclose(gu, [20.0 / 3, 20.0 / 3])
    gt, gu = _grads(ad.tensor_scatter_nd_max, [1.0, 2.0, 3.0], [[1], [0]], [5.0, 2.0],
                    [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(gt, [0.0, 0.0, 30.0])
    np.testing.assert_array_equal(gu, [20.0, 10.0])
    gt, gu = _grads(ad.tensor_scatter_nd_min, [1.0, 2.0, 3.0], [[1], [0]], [2.0, 2.0],
                    [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(gt, [10.0, 10.0, 30.0])
    np.testing.assert_array_equal(gu, [10.0, 0.0])


def _numeric_jacobian(f, x, eps=1e-6):
    cols = []
    for i in range(x.size):
        d = np.zeros(x.size)
        d[i] = eps
        d = d.reshape(x.shape)
        cols.append((f(x + d) - f(x - d)) / (2 * eps))
    return np.stack(cols, -1).reshape(f(x).shape + x.shape)


@pytest.mark.parametrize("op", [ad.tensor_scatter_nd_update, ad.tensor_scatter_nd_max,
                                ad.tensor_scatter_nd_add])
def test_jacobians_by_forward_mode_match_central_differences(op):
    # tape.jacobian pushes the whole basis through the forward rules at once (batched)
    rng = np.random.default_rng(3)
    t0, u0 = rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (2, 2))
    idx = [[2], [0]]

    def f(t, u):
        return ad.sin(op(t, idx, u * u))
    t, u = ad.constant(t0), ad.constant(u0)
    with ad.GradientTape(persistent=True) as tape:
        tape.watch([t, u])
        y = f(t, u)
    jt, ju = tape.jacobian(y, [t, u])
    np.testing.assert_allclose(jt.numpy(), _numeric_jacobian(
        lambda a: f(ad.constant(a), u).numpy(), t0), atol=1e-8)
    np.testing.assert_allclose(ju.numpy(), _numeric_jacobian(
        lambda a: f(t, ad.constant(a)).numpy(), u0), atol=1e-8)


# --------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("call, error, message", [
    (lambda x: ad.gather_nd(x, [[2]]), IndexError,
     r"gather_nd: indices\[0\] = \[2\] does not index into params of shape \(2, 3, 4\)"),
    (lambda x: ad.gather_nd(x, [[0, -1]]), IndexError, r"indices\[0\] = \[0, -1\]"),
    (lambda x: ad.gather_nd(x, [[0.0]]), TypeError, r"gather_nd: indices must be integers"),
    (lambda x: ad.gather_nd(x, [[0, 0, 0, 0]]), ValueError,
     r"gather_nd: indices of shape \(1, 4\) have a last dimension > 3"),
    (lambda x: ad.gather_nd(x, 1), ValueError, r"gather_nd: indices must be at least 1-D"),
    (lambda x: ad.gather_nd(x, [[[0]]], batch_dims=1), ValueError,
     r"gather_nd: batch_dims=1 .* params shape \(2, 3, 4\), indices shape \(1, 1, 1\)"),
    (lambda x: ad.gather_nd(x, [[0]], batch_dims=-1), ValueError, r"non-negative"),
    (lambda x: ad.scatter_nd([[3]], x[0, 0], [3, 4]), IndexError,
     r"scatter_nd: indices\[0\] = \[3\] does not index into shape \[3, 4\]"),
    (lambda x: ad.scatter_nd([[1]], x[0], [3, 4]), ValueError,
     r"scatter_nd: updates must have shape \[1, 4\] .* got \[3, 4\]"),
    (lambda x: ad.tensor_scatter_nd_update(x, [[0, 1]], ad.ones((4,), "float32")), TypeError,
     r"tensor_scatter_nd_update: updates of dtype float32 for a tensor of dtype float64"),
    (lambda x: ad.tensor_scatter_nd_add(x, [[0, 1]], x[0]), ValueError,
     r"tensor_scatter_nd_add: updates must have shape \[1, 4\] .* got \[3, 4\]"),
    (lambda x: ad.tensor_scatter_nd_max(x, [[1, 3]], x[0, :1]), IndexError,
     r"tensor_scatter_nd_max: indices\[0\] = \[1, 3\] does not index into tensor of shape"),
    (lambda x: ad.tensor_scatter_nd_update(x, np.zeros((1, 0), int), x[None]), ValueError,
     r"indices.shape\[-1\] must be at least 1"),
])
def test_bad_indices_and_updates_raise_naming_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call(ad.constant(X))


def test_a_compiled_function_checks_each_calls_indices():
    f = ad.function(lambda x, i: ad.gather_nd(x, i) * 2.0)
    x = ad.constant(X)
    np.testing.assert_array_equal(f(x, ad.constant([[1, 2]])).numpy(), X[1:2, 2] * 2)
    with pytest.raises(IndexError, match=r"gather_nd: indices\[0\] = \[1, -1\]"):
        f(x, ad.constant([[1, -1]]))  # replayed: a wrapped index would be a wrong number
    assert f.experimental_get_tracing_count() == 1


# ---------------------------------------------------------------- Variable assignments

def test_sliced_assignment_as_tensorflow():
    v = ad.Variable([1.0, 2.0, 3.0, 4.0])
    assert v[1:3].assign([9.0, 8.0]) is v
    assert v.numpy().tolist() == [1.0, 9.0, 8.0, 4.0]
    v[1:3].assign(5.0)  # broadcast, as TF 2.21
    v[ad.constant(0)].assign(3.0)
    assert v.numpy().tolist() == [3.0, 5.0, 5.0, 4.0]
    v[::-2].assign([10.0, 20.0])
    assert v.numpy().tolist() == [3.0, 20.0, 5.0, 10.0]
    v[None, 1:3].assign([[1.0, 2.0]])
    v[...].assign(v + 1.0)
    assert v.numpy().tolist() == [4.0, 2.0, 3.0, 11.0]
    m = ad.Variable(np.zeros((2, 3)))
    m[:, 1].assign([1.0, 2.0])
    m[1, ::2].assign(ad.constant([7.0, 8.0], "float64"))
    np.testing.assert_array_equal(m.numpy(), [[0, 1, 0], [7, 2, 8]])


def test_sliced_assignment_errors():
    v = ad.Variable([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(TypeError, match=r"Variable\[...\].assign: only ints, slices"):
        v[[0, 2]].assign(1.0)  # a read works (beyond TF), an assignment does not (as TF)
    with pytest.raises(ValueError, match=r"cannot broadcast a value of shape \(3,\) to the "
                                         r"slice .* of shape \(2,\)"):
        v[1:3].assign([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"Variable\[...\].assign: requested dtype float32"):
        v[1:3].assign(ad.constant([1, 2]))  # as Variable.assign: no implicit cast
    assert v.numpy().tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_slice_reads_differentiably_and_a_tape_sees_the_assigned_value():
    v = ad.Variable([1.0, 2.0, 3.0])
    x = ad.constant([5.0, 6.0, 7.0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        head = v[:2]
        v[0:2].assign(x[:2] * 2.0)  # not differentiable (as TF): x gets no gradient through it
        y = ad.reduce_sum(v * v) + ad.reduce_sum(head * head)
    gx, gv = tape.gradient(y, [x, v])
    assert gx is None
    # 2 v_new + 2 v_old on the slice: [2*10 + 2*1, 2*12 + 2*2, 2*3]
    np.testing.assert_array_equal(gv.numpy(), [22.0, 28.0, 6.0])
    assert type(head).__name__ == "VariableSlice" and head.numpy().tolist() == [1.0, 2.0]


def test_variable_scatter_methods():
    v = ad.Variable([1.0, 2.0, 3.0, 4.0])
    assert v.scatter_nd_update([[1]], [7.0]) is v
    v.scatter_nd_add([[1], [1]], [1.0, 1.0])
    v.scatter_nd_sub([[0]], [1.0])
    v.scatter_nd_max([[2], [3]], [0.0, 10.0])
    v.scatter_nd_min([[2]], [-3.0])
    assert v.numpy().tolist() == [0.0, 9.0, -3.0, 10.0]
    with pytest.raises(IndexError, match=r"Variable.scatter_nd_update: tensor_scatter_nd_update:"
                                         r" indices\[0\] = \[9\]"):
        v.scatter_nd_update([[9]], [7.0])


def _stepper(v):
    def step(x, idx):
        v[1:3, ::2].assign(x)
        v.scatter_nd_add(idx, ad.stack([x[0, 0], x[1, 1]]))
        v[0].assign(v[0] * 2.0 + 1.0)
        v.scatter_nd_update([[2, 3]], [x[0, 1]])
        with ad.GradientTape() as tape:
            y = ad.reduce_sum(v[2] * x[0, 0]) + ad.reduce_sum(v * v)
        return y, tape.gradient(y, v)
    return step


def test_assignments_inside_a_compiled_function_are_replayed():
    eager_v = ad.Variable(np.arange(12.0).reshape(3, 4))
    compiled_v = ad.Variable(np.arange(12.0).reshape(3, 4))
    eager, compiled = _stepper(eager_v), ad.function(_stepper(compiled_v))
    for k in range(3):
        x = ad.constant(np.arange(4.0).reshape(2, 2) * (k + 1))
        idx = ad.constant([[0, 1], [k, 1]])
        (ye, ge), (yc, gc) = eager(x, idx), compiled(x, idx)
        np.testing.assert_allclose(yc.numpy(), ye.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gc.numpy(), ge.numpy(), rtol=1e-12)
        np.testing.assert_allclose(compiled_v.numpy(), eager_v.numpy(), rtol=1e-12)
    assert compiled.experimental_get_tracing_count() == 1


def test_a_variable_argument_assigned_by_slice_in_a_compiled_function():
    bump = ad.function(lambda var, d: var[1:].assign(var[1:] + d))
    v = ad.Variable([1.0, 2.0, 3.0])
    assert bump(v, ad.constant([1.0, 1.0])) is v
    bump(v, ad.constant([1.0, 2.0]))
    assert v.numpy().tolist() == [1.0, 4.0, 6.0]


@pytest.mark.skipif(not hasattr(ad, "vmap"), reason="no ad.vmap")
def test_indexing_a_variable_inside_vmap_gives_the_batch():
    v = ad.Variable(np.arange(12.0).reshape(3, 4))
    with warnings.catch_warnings():  # vmap's own: getitem of a batched index runs in a loop
        warnings.simplefilter("ignore")
        got = ad.vmap(lambda i: v[i] * 2.0)(ad.constant([0, 2]))
    np.testing.assert_array_equal(got.numpy(), np.arange(12.0).reshape(3, 4)[[0, 2]] * 2.0)


# ------------------------------------------------------------------------------------ GPU

@pytest.mark.gpu
def test_scatter_ops_and_slice_assignment_on_cupy_match_numpy():
    rng = np.random.default_rng(5)
    t, u = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (3, 3))
    idx = np.array([[2], [0], [2]])
    for op in (ad.tensor_scatter_nd_add, ad.tensor_scatter_nd_max, ad.tensor_scatter_nd_min):
        want = op(ad.constant(t, backend="numpy"), idx, ad.constant(u, backend="numpy"))
        got = op(ad.constant(t, backend="cupy"), idx, ad.constant(u, backend="cupy"))
        assert got.backend == "cupy"
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    x = ad.constant(t, backend="cupy")
    np.testing.assert_array_equal(ad.gather_nd(x, [[1, 2], [3, 0]]).numpy(), t[[1, 3], [2, 0]])
    np.testing.assert_array_equal(ad.scatter_nd(idx, ad.constant(u, backend="cupy"), [4, 3])
                                  .numpy()[2], u[0] + u[2])
    with pytest.raises(IndexError, match="gather_nd"):
        ad.gather_nd(x, [[4, 0]])
    v = ad.Variable(x)
    v[1:3, 0].assign(0.0)
    v.scatter_nd_update([[0, 1]], [5.0])
    assert v.backend == "cupy" and v.numpy()[1, 0] == 0.0 and v.numpy()[0, 1] == 5.0
