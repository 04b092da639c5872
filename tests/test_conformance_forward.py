"""Forward mode, nested Jacobians and dtypes as TensorFlow 2.21 has them (issue 10, items 6 and
8 to 11).  Derivatives are checked against closed forms or float64 central differences."""
import weakref

import numpy as np
import pytest

import gpuad as ad
from op_registry import REGISTRY
from test_table import ENTRIES, sample

EPS = 1e-6


def f64(value):
    return ad.constant(np.asarray(value, dtype=np.float64))


def numeric_jacobian(f, x, eps=EPS):
    """d f / d x by float64 central differences, shaped ``f(x).shape + x.shape``."""
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        columns.append((f(f64(x + step)).numpy() - f(f64(x - step)).numpy()) / (2 * eps))
    out_shape = columns[0].shape
    return np.moveaxis(np.stack(columns), 0, -1).reshape(out_shape + x.shape)


# ------------------------------------------------------------ item 6: broadcast tangents

def test_jvp_of_scalar_plus_vector_is_a_vector():
    y = f64([0.0, 1.0, 2.0, 3.0])
    for f in (lambda x: x + y, lambda x: y - x, lambda x: x % (y + 5.0)):
        _, t = ad.jvp(f, [f64(2.0)], [f64(1.0)])
        assert t.shape == (4,)
    _, t = ad.jvp(lambda x: x - y, [f64(2.0)], [f64(1.0)])
    np.testing.assert_array_equal(t.numpy(), [1.0, 1.0, 1.0, 1.0])


BROADCAST_CASES = [(name, i, shape) for name in sorted(ENTRIES) if len(ENTRIES[name].inputs) > 1
                   for i, arg in enumerate(ENTRIES[name].inputs) if arg in ENTRIES[name].partials
                   for shape in [(), (4,), (3, 1)]]


def _only_one_operand(name, i, shape):
    """``f(x)``: entry ``name`` with input ``i`` the broadcast operand ``x``, the others
    fixed (3, 4) arrays; and the point ``x``."""
    shapes = [shape if k == i else (3, 4) for k in range(len(ENTRIES[name].inputs))]
    values = sample(name, shapes)

    def f(x):
        return getattr(ad, name)(*values[:i], x, *values[i + 1:])
    return f, values[i]


@pytest.mark.parametrize("name, i, shape", BROADCAST_CASES,
                         ids=[f"{n}-{i}-{s}" for n, i, s in BROADCAST_CASES])
def test_broadcast_operand_tangent_has_the_output_shape(name, i, shape):
    f, x = _only_one_operand(name, i, shape)
    v = np.random.default_rng(1).uniform(-1, 1, size=np.shape(x))
    want = numeric_jacobian(f, x)
    want_jvp = np.tensordot(want, v, axes=np.ndim(x))
    _, t = ad.jvp(f, [f64(x)], [f64(v)])
    np.testing.assert_allclose(t.numpy(), want_jvp, rtol=1e-6, atol=1e-8, strict=True)
    primal = f64(x)
    with ad.ForwardAccumulator(primal, f64(v)) as acc:
        out = f(primal)
    np.testing.assert_allclose(acc.jvp(out).numpy(), want_jvp, rtol=1e-6, atol=1e-8,
                               strict=True)
    np.testing.assert_allclose(ad.jacobian(f)(f64(x)).numpy(), want, rtol=1e-6, atol=1e-8,
                               strict=True)


@pytest.mark.parametrize("shape", [(), (4,)])
def test_broadcast_tangent_seen_by_an_outer_accumulator(shape):
    # the inner tangent s v is computed with ops the outer accumulator sees: d/ds is v
    y, x, v = f64(np.arange(12.0).reshape(3, 4)), np.full(shape, 0.5), np.full(shape, 2.0)
    _, t = ad.jvp(lambda s: ad.jvp(lambda a: a + y * s, [f64(x)], [f64(v) * s])[1],
                  [f64(1.0)], [f64(1.0)])
    np.testing.assert_array_equal(t.numpy(), np.full((3, 4), 2.0), strict=True)


# ------------------------------------------------------------ item 8: float32 stays float32

@pytest.mark.parametrize("two", [2.0, 2])
def test_gradient_of_two_to_the_x_is_float32_and_exact(two):
    x = ad.constant(np.float32(0.7))
    g = ad.grad(lambda x: two ** x)(x)
    g2 = ad.grad(ad.grad(lambda x: two ** x))(x)
    assert g.dtype == np.float32 and g2.dtype == np.float32
    np.testing.assert_allclose(g.numpy(), 2 ** 0.7 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(g2.numpy(), 2 ** 0.7 * np.log(2) ** 2, rtol=1e-6)


SCALAR_CASES = [(name, p) for name in sorted(ENTRIES) if ENTRIES[name].partials
                and len(ENTRIES[name].inputs) > 1
                for p, arg in enumerate(ENTRIES[name].inputs) if arg not in ENTRIES[name].ctypes]


def _with_python_scalar(name, p):
    """``(f, xs)``: entry ``name`` with input ``p`` a Python float and the other differentiable
    inputs ``xs`` (float32 tensors) the arguments of ``f``."""
    entry = ENTRIES[name]
    values = sample(name, [(3,)] * len(entry.inputs), np.float32)
    scalar = float(values[p][0])
    free = [i for i, arg in enumerate(entry.inputs) if i != p and arg in entry.partials]

    def f(*xs):
        args = list(values)
        args[p] = scalar
        for i, x in zip(free, xs):
            args[i] = x
        return getattr(ad, name)(*args)
    return f, [ad.constant(values[i]) for i in free]


@pytest.mark.parametrize("name, p", SCALAR_CASES, ids=[f"{n}-{p}" for n, p in SCALAR_CASES])
def test_python_scalar_operand_keeps_float32(name, p):
    f, xs = _with_python_scalar(name, p)
    if not xs:
        pytest.skip(f"{name}: only the scalar operand has a partial")
    tangents = [ad.ones_like(x) for x in xs]

    def gradient(*args):
        with ad.GradientTape() as tape:
            tape.watch(list(args))
            y = ad.reduce_sum(f(*args))
        return tape.gradient(y, list(args), unconnected_gradients="zero")

    def second(*args):
        with ad.GradientTape() as tape:
            tape.watch(list(args))
            y = ad.reduce_sum(ad.stack(gradient(*args)))
        return tape.gradient(y, list(args), unconnected_gradients="zero")

    def tangent(*args):
        return ad.jvp(f, list(args), tangents)[1]

    results = gradient(*xs) + second(*xs) + [tangent(*xs), ad.jvp(tangent, xs, tangents)[1]]
    with ad.ForwardAccumulator(xs, tangents) as acc:  # forward over reverse
        hvp = acc.jvp(gradient(*xs), unconnected_gradients="zero")
    assert [r.dtype for r in results + hvp] == [np.float32] * (len(results) + len(hvp))


# ------------------------------------------------------------ item 9: the where trap of sqrt

@pytest.mark.parametrize("name, d", [("sqrt", lambda x: 0.5 / np.sqrt(x)),
                                     ("rsqrt", lambda x: -0.5 * x ** -1.5)],
                         ids=["sqrt", "rsqrt"])
def test_masked_sqrt_has_gradient_zero_where_the_mask_is_off(name, d):
    x = f64([-1.0, 0.0, 4.0])
    f = getattr(ad, name)
    with np.errstate(all="ignore"), ad.GradientTape() as outer:
        outer.watch(x)
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.where(x > 0.0, f(x), 0.0))
        g = tape.gradient(y, x)  # under `outer`: the differentiable rule
        fused = ad.grad(lambda x: ad.reduce_sum(ad.where(x > 0.0, f(x), 0.0)))(x)
        h = outer.gradient(ad.reduce_sum(g), x)
        log_grad = ad.grad(lambda x: ad.reduce_sum(ad.where(x > 0.0, ad.log(x), 0.0)))(x)
        _, t0 = ad.jvp(f, [f64(0.0)], [f64(0.0)])
    want = [0.0, 0.0, d(4.0)]
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(fused.numpy(), want, rtol=1e-12)
    second = (d(4.0 + EPS) - d(4.0 - EPS)) / (2 * EPS)
    np.testing.assert_allclose(h.numpy(), [0.0, 0.0, second], rtol=1e-6)
    # as TensorFlow: log's 0 * inf stays NaN, and forward mode multiplies by the derivative
    np.testing.assert_array_equal(log_grad.numpy(), [0.0, np.nan, 0.25])
    assert np.isnan(t0.numpy())
    _, t = ad.jvp(f, [f64([4.0, 4.0])], [f64([2.0, 0.0])])
    np.testing.assert_allclose(t.numpy(), [2.0 * d(4.0), 0.0], rtol=1e-12)


# ------------------------------------------------------------ item 10: nested jacobian

@pytest.mark.parametrize("axes", [1, 0])
def test_nested_jacobian_of_tensordot(axes):
    x = f64([0.3, -0.7])
    got = ad.jacobian(ad.jacobian(lambda x: ad.tensordot(x, x, axes)))(x).numpy()
    eye = np.eye(2)  # d2 (x_i x_j) / dx_k dx_l = d_ik d_jl + d_il d_jk
    want = 2 * eye if axes == 1 else np.einsum("ik,jl->ijkl", eye, eye) + \
        np.einsum("il,jk->ijkl", eye, eye)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _one_argument(fn, args, i):
    """``fn`` as a function of its argument ``i`` alone, the others fixed."""
    def g(x):
        return fn(*[f64(a) for a in args[:i]], x, *[f64(a) for a in args[i + 1:]])
    return g


NESTED_CASES = [(name, k, fn, args, i) for name, cases in sorted(REGISTRY.items())
                for k, (fn, args) in enumerate(cases) for i in range(len(args))]


@pytest.mark.parametrize("name, k, fn, args, i", NESTED_CASES,
                         ids=[f"{c[0]}-{c[1]}-arg{c[4]}" for c in NESTED_CASES])
def test_nested_jacobian_matches_differences_of_the_jacobian(name, k, fn, args, i):
    g, x = _one_argument(fn, args, i), args[i]
    rng = np.random.default_rng(k)
    v, w = rng.uniform(-1, 1, size=x.shape), f64(rng.uniform(0.5, 1.5, size=g(f64(x)).shape))
    gradient = ad.grad(lambda x: ad.reduce_sum(g(x) * w))  # a Hessian replays its VJP's ops
    for first in (ad.jacobian(g), gradient):
        eps = 1e-5
        want = (first(f64(x + eps * v)).numpy() - first(f64(x - eps * v)).numpy()) / (2 * eps)
        got = np.tensordot(ad.jacobian(first)(f64(x)).numpy(), v, axes=x.ndim)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------ item 11: ForwardAccumulator

def test_accumulator_frees_a_tangent_with_its_tensor(no_gc):
    x = f64(np.linspace(0.1, 1.0, 1000))
    acc = ad.ForwardAccumulator(x, ad.ones_like(x))
    with acc:
        dead = []
        for _ in range(20):  # a long block: each step's intermediates die with the step
            y = ad.sin(x) * x
            dead.append(weakref.ref(acc.jvp(y)))
        z = ad.exp(x)
        np.testing.assert_allclose(acc.jvp(z).numpy(), np.exp(x.numpy()))
    assert [r for r in dead[:-1] if r() is not None] == []
    np.testing.assert_allclose(acc.jvp(y).numpy(), np.cos(x.numpy()) * x.numpy() +
                               np.sin(x.numpy()))


def test_entering_a_recording_accumulator_raises():
    x = f64(2.0)
    acc = ad.ForwardAccumulator(x, f64(1.0))
    with acc:
        with pytest.raises(ValueError, match="^Accumulator is already recording.$"):
            with acc:
                pass
        y = x * x  # still recording, once
    assert float(acc.jvp(y)) == 4.0
    with acc:  # as TensorFlow: a new block after the first has ended is fine
        z = x * x * x
    assert float(acc.jvp(z)) == 12.0
