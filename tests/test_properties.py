"""Property-based tests (hypothesis) over random shapes, broadcasting patterns, axes, dtypes.

* reverse mode equals forward mode: <u, J v> (GradientTape) = <J^T u, v> (ForwardAccumulator)
  for every derivative-table entry and every registered op (tests/op_registry.py);
* the gradient of a broadcasting op has its input's shape and dtype;
* float32 results (values and gradients) match float64 within float32's tolerance;
* reductions, scans and shape ops over random axes (negative ones too) match NumPy.

The profile is bounded (few examples, no deadline, derandomized, no example database) so that
the file runs in a few seconds and the same examples run in CI every time.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import gpuad as ad
from gpuad import table
from op_registry import REGISTRY

from test_table import entry_inputs  # noqa: E402  (inputs in each entry's domain)


def bounded(max_examples):
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


ENTRIES = table.load()
DTYPES = st.sampled_from([np.float32, np.float64])
SEEDS = st.integers(0, 2 ** 32 - 1)
TOLERANCE = {np.float32: (2e-5, 1e-6), np.float64: (1e-12, 1e-14)}  # rtol, atol of <u, Jv>


def adjoint_gap(f, args, rng):
    """Check <u, J v> = <J^T u, v> at ``args`` for random u and v; returns the gradients.

    J v by forward mode (ForwardAccumulator), J^T u by reverse mode (GradientTape), both on
    the same tensors.  Integer and bool arguments are held fixed.
    """
    xs = [ad.convert_to_tensor(a) for a in args]
    floating = [x for x in xs if x.dtype.kind == "f"]
    with ad.GradientTape() as tape:
        tape.watch(floating)
        y = f(*xs)
    dtype = y.dtype.type
    u = rng.uniform(-1, 1, y.shape).astype(dtype)
    grads = tape.gradient(y, floating, output_gradients=u, unconnected_gradients="zero")
    vs = [rng.uniform(-1, 1, x.shape).astype(x.dtype) for x in floating]
    with ad.ForwardAccumulator(floating, vs) as acc:
        y2 = f(*xs)
    np.testing.assert_array_equal(y2.numpy(), y.numpy())  # forward mode changes no value
    jv = acc.jvp(y2, unconnected_gradients="zero").numpy()
    assert jv.shape == y.shape and jv.dtype == y.dtype
    forward = (u.astype(np.float64) * jv).ravel()
    reverse = np.concatenate([(g.numpy().astype(np.float64) * v).ravel()
                              for g, v in zip(grads, vs)] + [np.zeros(0)])
    rtol, atol = TOLERANCE[dtype]
    scale = np.abs(forward).sum() + np.abs(reverse).sum()
    assert abs(forward.sum() - reverse.sum()) <= rtol * scale + atol, \
        f"<u, J v> = {forward.sum()!r} but <J^T u, v> = {reverse.sum()!r}"
    for g, x in zip(grads, floating):
        assert g.shape == x.shape and g.dtype == x.dtype  # broadcast inputs included
    return y, grads


def assert_close(got32, want64, rtol, what):
    """float32 ``got32`` against float64 ``want64``, relative to the array's own scale."""
    got32, want64 = np.asarray(got32), np.asarray(want64)
    assert got32.dtype == np.float32 and got32.shape == want64.shape, what
    scale = np.max(np.abs(want64), initial=1.0)
    np.testing.assert_allclose(got32, want64, rtol=rtol, atol=rtol * scale, err_msg=what)


# ================================================================ derivative-table entries

def entry_case(name, data, min_side=1):
    entry = ENTRIES[name]
    shapes = data.draw(mutually_broadcastable_shapes(num_shapes=len(entry.inputs), min_dims=0,
                                                     max_dims=3, min_side=min_side,
                                                     max_side=4), label="shapes").input_shapes
    rng = np.random.default_rng(data.draw(SEEDS, label="seed"))
    return entry_inputs(name, shapes, rng), rng


def cast_floats(values, dtype):
    return [v.astype(dtype) if v.dtype.kind == "f" else v for v in values]


@pytest.mark.parametrize("name", sorted(ENTRIES))
@bounded(8)
@given(data=st.data())
def test_table_entry_reverse_mode_equals_forward_mode(name, data):
    values, rng = entry_case(name, data)
    dtype = data.draw(DTYPES, label="dtype")
    y, grads = adjoint_gap(getattr(ad, name), cast_floats(values, dtype), rng)
    assert y.dtype == dtype and y.shape == np.broadcast_shapes(*[np.shape(v) for v in values])


@pytest.mark.parametrize("name", sorted(ENTRIES))
@bounded(4)
@given(data=st.data())
def test_table_entry_on_empty_and_0d_shapes(name, data):
    values, rng = entry_case(name, data, min_side=0)
    adjoint_gap(getattr(ad, name), values, rng)


@pytest.mark.parametrize("name", sorted(ENTRIES))
@bounded(6)
@given(data=st.data())
def test_table_entry_float32_matches_float64(name, data):
    values, rng = entry_case(name, data)
    values32 = cast_floats(values, np.float32)
    values64 = cast_floats(values32, np.float64)  # the same numbers: only arithmetic differs
    op = getattr(ad, name)
    y32, g32 = adjoint_gap(op, values32, np.random.default_rng(1))
    y64, g64 = adjoint_gap(op, values64, np.random.default_rng(1))
    assert_close(y32.numpy(), y64.numpy(), 1e-5, f"{name} value")
    for i, (a, b) in enumerate(zip(g32, g64)):
        assert_close(a.numpy(), b.numpy(), 2e-5, f"{name} gradient {i}")


# ========================================================================= registered ops

CASES = [(name, i, fn, args) for name, cases in sorted(REGISTRY.items())
         for i, (fn, args) in enumerate(cases)]
IDS = [f"{c[0]}-{c[1]}" for c in CASES]


def _perturbed(args, rng, scale):
    return [a + scale * rng.uniform(-1, 1, a.shape) for a in args]


@pytest.mark.parametrize("name, i, fn, args", CASES, ids=IDS)
@bounded(3)
@given(seed=SEEDS, scale=st.sampled_from([0.0, 0.05]))
def test_registered_op_reverse_mode_equals_forward_mode(name, i, fn, args, seed, scale):
    rng = np.random.default_rng(seed)
    adjoint_gap(fn, _perturbed(args, rng, scale), rng)


def _runs_in_float32(fn, args):
    """Cases that spell a float64 dtype out (cast(..., "float64")) cannot run in float32."""
    try:
        return fn(*[ad.constant(a.astype(np.float32)) for a in args]).dtype == np.float32
    except TypeError as error:
        assert "float64" in str(error), error
        return False


FLOAT32_CASES = [c for c in CASES if _runs_in_float32(c[2], c[3])]


def test_nearly_every_registered_case_runs_in_float32():
    assert len(FLOAT32_CASES) >= len(CASES) - 2


@pytest.mark.parametrize("name, i, fn, args", FLOAT32_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in FLOAT32_CASES])
@bounded(2)
@given(seed=SEEDS)
def test_registered_op_float32_matches_float64(name, i, fn, args, seed):
    rng = np.random.default_rng(seed)
    args32 = [a.astype(np.float32) for a in _perturbed(args, rng, 0.05)]
    y32, g32 = adjoint_gap(fn, args32, np.random.default_rng(seed))
    y64, g64 = adjoint_gap(fn, [a.astype(np.float64) for a in args32],
                           np.random.default_rng(seed))
    assert_close(y32.numpy(), y64.numpy(), 1e-4, f"{name} value")
    for k, (a, b) in enumerate(zip(g32, g64)):
        assert_close(a.numpy(), b.numpy(), 1e-4, f"{name} gradient {k}")


# ==================================================== random shapes and axes, against NumPy

@st.composite
def shape_and_axis(draw, min_dims=0, max_dims=4, min_side=1, tuple_axis=True):
    """A shape, an axis (None, an int, negative ones too, or a tuple) and keepdims."""
    shape = tuple(draw(st.lists(st.integers(min_side, 4), min_size=min_dims,
                                max_size=max_dims), label="shape"))
    ndim = len(shape)
    choices = [st.none()]
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
        if tuple_axis:
            choices.append(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim).map(
                lambda axes: tuple(a - ndim if i % 2 else a for i, a in enumerate(axes))))
    return shape, draw(st.one_of(choices), label="axis"), draw(st.booleans(), label="keepdims")


def _np_axis(axis):
    return tuple(axis) if isinstance(axis, (tuple, list)) else axis


def _logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis if axis is not None
                                           else tuple(range(x.ndim)))


REDUCTIONS = {  # op -> NumPy reference(x, axis, keepdims)
    "reduce_sum": np.sum, "reduce_mean": np.mean, "reduce_max": np.max, "reduce_min": np.min,
    "reduce_prod": np.prod, "reduce_variance": np.var, "reduce_std": np.std,
    "reduce_logsumexp": _logsumexp,
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@bounded(12)
@given(case=shape_and_axis(), seed=SEEDS, dtype=DTYPES)
def test_reductions_over_random_axes(name, case, seed, dtype):
    shape, axis, keepdims = case
    if name == "reduce_std":  # the std of one element is 0: its gradient is NaN (TensorFlow's)
        axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
        assume(np.prod([shape[a] for a in axes]) > 1)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, shape).astype(dtype)  # positive: prod and std are smooth
    op = getattr(ad, name)

    def f(t):
        return op(t, axis=axis, keepdims=keepdims)
    y, (g,) = adjoint_gap(f, [x], rng)
    want = REDUCTIONS[name](x.astype(np.float64), axis=_np_axis(axis), keepdims=keepdims)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert g.shape == x.shape


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@bounded(10)
@given(case=shape_and_axis(min_dims=1, tuple_axis=False), seed=SEEDS,
       exclusive=st.booleans(), reverse=st.booleans())
def test_scans_over_random_axes(name, case, seed, exclusive, reverse):
    shape, axis, _ = case
    axis = 0 if axis is None else axis
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, shape)
    x[rng.uniform(size=shape) < 0.2] = 0.0  # cumprod's gradient at zeros
    op = getattr(ad, name)
    y, _ = adjoint_gap(lambda t: op(t, axis=axis, exclusive=exclusive, reverse=reverse), [x], rng)
    ref = np.flip(x, axis) if reverse else x
    want = np.cumsum(ref, axis) if name == "cumsum" else np.cumprod(ref, axis)
    if exclusive:
        want = np.moveaxis(want, axis, 0)
        want = np.concatenate([np.full_like(want[:1], 0.0 if name == "cumsum" else 1.0),
                               want[:-1]])
        want = np.moveaxis(want, 0, axis)
    np.testing.assert_allclose(y.numpy(), np.flip(want, axis) if reverse else want,
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@bounded(10)
@given(case=shape_and_axis(min_dims=1, tuple_axis=False), seed=SEEDS, dtype=DTYPES)
def test_softmax_over_random_axes(name, case, seed, dtype):
    shape, axis, _ = case
    axis = -1 if axis is None else axis
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, shape).astype(dtype)
    y, _ = adjoint_gap(lambda t: getattr(ad.nn, name)(t, axis=axis), [x], rng)
    x64 = x.astype(np.float64)
    want = np.exp(x64 - _logsumexp(x64, axis, keepdims=True))
    want = np.log(want) if name == "log_softmax" else want
    np.testing.assert_allclose(y.numpy(), want, rtol=2e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-14)


@bounded(15)
@given(shapes=mutually_broadcastable_shapes(signature="(m,n),(n,p)->(m,p)",
                                            min_dims=0, max_dims=2, max_side=3),
       seed=SEEDS, dtype=DTYPES)
def test_matmul_with_broadcast_batch_dimensions(shapes, seed, dtype):
    rng = np.random.default_rng(seed)
    a, b = [rng.uniform(-1, 1, s).astype(dtype) for s in shapes.input_shapes]
    y, (ga, gb) = adjoint_gap(ad.matmul, [a, b], rng)
    assert y.shape == shapes.result_shape
    np.testing.assert_allclose(y.numpy(), np.matmul(a.astype(np.float64), b),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@bounded(15)
@given(shapes=mutually_broadcastable_shapes(num_shapes=1, min_dims=0, max_dims=3, max_side=3),
       extra=st.lists(st.integers(1, 3), max_size=2), seed=SEEDS, dtype=DTYPES)
def test_broadcast_to_gradient_sums_back_to_the_input_shape(shapes, extra, seed, dtype):
    shape = shapes.input_shapes[0]
    target = tuple(extra) + tuple(n if n != 1 else 3 for n in shape)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    y, (g,) = adjoint_gap(lambda t: ad.broadcast_to(t, target) * 2.0, [x], rng)
    assert y.shape == target and g.shape == shape
    with ad.GradientTape() as tape:
        t = ad.constant(x)
        tape.watch(t)
        z = ad.broadcast_to(t, target)
    np.testing.assert_allclose(tape.gradient(z, t).numpy(),
                               np.full(shape, np.prod(target) / max(np.prod(shape), 1)))


@st.composite
def shape_ops(draw):
    """(description, f, input shape): shape and indexing ops at random axes."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4), label="shape"))
    ndim = len(shape)
    axis = draw(st.integers(-ndim, ndim - 1), label="axis")
    new_axis = draw(st.integers(-ndim - 1, ndim), label="new axis")
    perm = tuple(draw(st.permutations(range(ndim)), label="perm"))
    size = shape[axis]
    cut = draw(st.integers(0, size), label="cut")
    index = draw(st.lists(st.integers(0, size - 1), max_size=5), label="index")
    choices = [
        ("concat", lambda t: ad.concat([t, t * 2.0, t[..., :0] if axis % ndim == ndim - 1
                                        else t], axis)),
        ("stack", lambda t: ad.stack([t, t * t], new_axis)),
        ("unstack", lambda t: ad.stack(ad.unstack(t, axis)[::-1], axis)),
        ("expand_dims", lambda t: ad.expand_dims(t, new_axis) * 3.0),
        ("squeeze", lambda t: ad.squeeze(ad.expand_dims(t, new_axis), new_axis)),
        ("transpose", lambda t: ad.transpose(t, perm) ** 2),
        ("split", lambda t: ad.split(t, [cut, size - cut], axis)[1] * 1.5),
        ("gather", lambda t: ad.gather(t, np.asarray(index, np.int32), axis=axis) ** 2),
        ("reverse slice", lambda t: t[(slice(None),) * (axis % ndim) + (slice(None, None, -1),)]
         * t),
        ("reshape", lambda t: ad.reshape(ad.transpose(t, perm), (-1,)) ** 3),
        ("tile", lambda t: ad.tile(t, [2 if k == axis % ndim else 1 for k in range(ndim)])),
        ("pad", lambda t: ad.pad(t, [[1, 0] if k == axis % ndim else [0, 2]
                                     for k in range(ndim)]) ** 2),
    ]
    what, f = draw(st.sampled_from(choices), label="op")
    return what, f, shape


@bounded(60)
@given(op=shape_ops(), seed=SEEDS, dtype=DTYPES)
def test_shape_ops_at_random_axes(op, seed, dtype):
    what, f, shape = op
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape).astype(dtype)
    y, (g,) = adjoint_gap(f, [x], rng)
    assert y.dtype == dtype, what
    y64, _ = adjoint_gap(f, [x.astype(np.float64)], rng)
    np.testing.assert_allclose(y.numpy(), y64.numpy(), rtol=1e-6, err_msg=what)


@bounded(10)
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3),
       seed=SEEDS)
def test_second_order_reverse_equals_forward_over_reverse(shapes, seed):
    """Hessian-vector products: reverse over reverse <w, H v> equals forward over reverse."""
    rng = np.random.default_rng(seed)
    a, b, c = [rng.uniform(0.5, 1.5, s) for s in shapes.input_shapes]

    def f(x, y, z):
        return ad.reduce_sum(ad.sin(x * y) * ad.exp(z) + ad.log(x + y) * z ** 3)

    xs = [ad.constant(v) for v in (a, b, c)]
    vs = [rng.uniform(-1, 1, v.shape) for v in (a, b, c)]
    with ad.ForwardAccumulator(xs, vs) as acc:
        with ad.GradientTape() as outer:
            outer.watch(xs)
            with ad.GradientTape() as inner:
                inner.watch(xs)
                y = f(*xs)
            grads = inner.gradient(y, xs)
            directional = ad.reduce_sum(ad.stack([ad.reduce_sum(g * v)
                                                  for g, v in zip(grads, vs)]))
    hv_forward = [acc.jvp(g).numpy() for g in grads]
    hv_reverse = [h.numpy() for h in outer.gradient(directional, xs)]
    for fwd, rev, x in zip(hv_forward, hv_reverse, (a, b, c)):
        assert fwd.shape == rev.shape == x.shape
        np.testing.assert_allclose(fwd, rev, rtol=1e-10, atol=1e-12)
