"""Reductions, scans, nn and random: values against NumPy, the exact gradients at zeros, the
JVP rules of the new primitives against central differences, and the errors (each names the
op, the argument and the shapes, axes or dtypes).  Gradients of every registered case are
checked generically by tests/test_op_registry.py."""
import itertools
import math

import numpy as np
import pytest

import gpuad as ad
from gpuad import reductions

rng = np.random.default_rng(21)
X = rng.uniform(-1, 1, (3, 4, 5))


# ----------------------------------------------------------------------------------- values

@pytest.mark.parametrize("name, reference, identity", [("cumsum", np.cumsum, 0),
                                                       ("cumprod", np.cumprod, 1)])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("exclusive, reverse", list(itertools.product([False, True], repeat=2)))
def test_scans_match_tensorflow(name, reference, identity, axis, exclusive, reverse):
    got = getattr(ad, name)(X, axis, exclusive, reverse).numpy()
    v = np.flip(X, axis) if reverse else X
    want = reference(v, axis=axis)
    if exclusive:  # [a, b, c] -> [identity, a, a (op) b]
        want = np.concatenate([np.full_like(np.take(want, [0], axis), identity),
                               np.delete(want, -1, axis)], axis)
    np.testing.assert_allclose(got, np.flip(want, axis) if reverse else want, rtol=1e-13)


def test_integer_scans_and_products_keep_their_dtype():
    x = ad.constant([[1, 2], [3, 4]])
    assert ad.cumsum(x, 1).numpy().tolist() == [[1, 3], [3, 7]]
    assert ad.cumprod(x, 0, exclusive=True).dtype == np.int32
    assert ad.reduce_prod(x, 0).numpy().tolist() == [3, 8]
    assert ad.reduce_prod(x).dtype == np.int32


NORMS = [(o, a) for o in ["euclidean", "fro", 1, 2, np.inf, 3, 0.5]
         for a in [None, 0, -1, (0, 1), (2, 0), (-1, -2)]
         if not (isinstance(a, tuple) and o in (3, 0.5)) and not (o == "fro" and a in (0, -1))]


@pytest.mark.parametrize("ord_, axis", NORMS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_norm_matches_numpy(ord_, axis, keepdims):
    got = ad.norm(X, ord_, axis, keepdims).numpy()
    if axis is None:  # the whole tensor as one vector
        want = np.linalg.norm(X.ravel(), 2 if isinstance(ord_, str) else ord_)
        want = want.reshape((1,) * X.ndim) if keepdims else want
    else:
        want = np.linalg.norm(X, None if isinstance(ord_, str) else ord_, axis, keepdims)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_reductions_match_numpy():
    np.testing.assert_allclose(ad.reduce_prod(X, (0, 2)).numpy(), X.prod((0, 2)))
    np.testing.assert_allclose(ad.reduce_prod(X, -1, keepdims=True).numpy(),
                               X.prod(-1, keepdims=True))
    np.testing.assert_allclose(ad.reduce_variance(X, 1).numpy(), X.var(1), rtol=1e-12)
    np.testing.assert_allclose(ad.reduce_std(X, (0, 1), True).numpy(),
                               X.std((0, 1), keepdims=True), rtol=1e-12)
    lse = np.log(np.exp(X).sum(axis=(0, 2)))
    np.testing.assert_allclose(ad.reduce_logsumexp(X, (0, -1)).numpy(), lse, rtol=1e-12)
    assert ad.reduce_prod(X, ()).shape == X.shape and ad.reduce_prod(np.zeros((2, 0)), 1) \
        .numpy().tolist() == [1.0, 1.0]


def test_logsumexp_is_stable_and_follows_tensorflow_at_infinities():
    x = ad.constant([[1000.0, 1000.0], [-1000.0, -1000.0], [-np.inf, -np.inf], [np.inf, 0.0]],
                    dtype="float64")
    with ad.GradientTape() as tape:
        tape.watch(x)
        with np.errstate(divide="ignore"):  # log(0) for the row of -inf
            y = ad.reduce_logsumexp(x, axis=1)
    np.testing.assert_allclose(y.numpy()[:2], [1000 + np.log(2), -1000 + np.log(2)])
    assert y.numpy()[2] == -np.inf and y.numpy()[3] == np.inf
    np.testing.assert_allclose(tape.gradient(y, x).numpy()[:2], 0.5)
    with np.errstate(divide="ignore"):
        assert ad.reduce_logsumexp(np.zeros((2, 0)), 1).numpy().tolist() == [-np.inf, -np.inf]


def test_prod_gradient_is_exact_with_zeros():
    x = ad.constant([[0.0, 2.0, 3.0], [0.0, 0.0, 5.0], [2.0, 3.0, 4.0]], dtype="float64")
    with ad.GradientTape() as outer:
        outer.watch(x)
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_prod(x, axis=1)
        g = tape.gradient(y, x)
        g01 = g[0, 1]
    # one zero: the product of the others; two zeros: 0; none: prod / x
    assert g.numpy().tolist() == [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0], [12.0, 8.0, 6.0]]
    # d/dx of g[0, 1] = x00 x02: (x02, 0, x00) in row 0, though x00 is 0
    h = outer.gradient(g01, x).numpy()
    assert h[0].tolist() == [3.0, 0.0, 0.0] and not h[1:].any()


def _brute_cumprod_jacobian(x):
    """d out[k] / d x[i] = prod of x[j], j <= k, j != i (a polynomial: exact at zeros)."""
    n = len(x)
    return np.array([[np.prod([x[j] for j in range(k + 1) if j != i]) if i <= k else 0.0
                      for i in range(n)] for k in range(n)])


@pytest.mark.parametrize("x", [[0.0, 2.0, 0.0, 3.0, -1.5], [1.5, 0.0, 2.0, 0.5, 3.0],
                               [2.0, -1.0, 0.5, 3.0, 1.5]])
def test_cumprod_jacobian_is_exact_with_zeros(x):
    x = np.array(x)
    t = ad.constant(x)
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(t)
        forward = ad.cumprod(t)
        backward = ad.cumprod(t, reverse=True)
    np.testing.assert_array_equal(tape.jacobian(forward, t).numpy(), _brute_cumprod_jacobian(x))
    rows = [tape.gradient(backward, t, output_gradients=ad.constant(np.eye(5)[k])).numpy()
            for k in range(5)]
    np.testing.assert_array_equal(rows, _brute_cumprod_jacobian(x[::-1])[::-1, ::-1])


# --------------------------------------------------------------------- JVP rules, directly

def _jvp_case(name):
    """(forward of a float64 tensor, primitive, saved and attrs at X) for one primitive."""
    x = ad.constant(np.where(np.abs(X) < 0.3, 0.0, X))  # zeros for the products
    if name == "cumsum":
        fn = lambda z: ad.cumsum(z, 1, True, True)  # noqa: E731
        return x, fn, reductions._CUMSUM, (), (-2, True, True)
    if name == "cumprod":
        fn = lambda z: reductions._cumprod(z, -1, True)  # noqa: E731
        return x, fn, reductions._CUMPROD, (x, fn(x)), (-1, -1)
    if name == "reduce_prod":
        fn = lambda z: ad.reduce_prod(z, (0, 2))  # noqa: E731
        return x, fn, reductions._REDUCE_PROD, (x,), ((0, 2), False)
    if name == "shift":
        fn = lambda z: reductions._shift(z, -2, -3, 1.0)  # noqa: E731
        return x, fn, reductions._SHIFT, (), (-2, -3, 1.0)


@pytest.mark.parametrize("name", ["cumsum", "cumprod", "reduce_prod", "shift"])
def test_jvp_rule_matches_central_differences(name):
    x, fn, prim, saved, attrs = _jvp_case(name)
    tangents = rng.uniform(-1, 1, (2,) + x.shape)
    out = fn(x)
    eps = 1e-6
    for t in tangents:
        got = prim.jvp((ad.constant(t),), saved, out, attrs).numpy()
        want = (fn(ad.constant(x.numpy() + eps * t)).numpy() -
                fn(ad.constant(x.numpy() - eps * t)).numpy()) / (2 * eps)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    # a batch of tangents (leading dimension), as Jacobians push them through
    batched = prim.jvp((ad.constant(tangents),), saved, out, attrs, 1).numpy()
    for t, row in zip(tangents, batched):
        np.testing.assert_allclose(row, prim.jvp((ad.constant(t),), saved, out, attrs).numpy(),
                                   rtol=1e-12, atol=1e-14)


def test_spectral_norm_third_derivative_along_a_line():
    """norm(ord=2) goes through linalg.svd: derivatives beyond the second along a line
    A + tE match central differences of the second (the largest singular value is simple)."""
    a, e = X[0, :3, :4], rng.uniform(-1, 1, (3, 4))
    def second(t):
        with ad.GradientTape() as outer:
            outer.watch(t)
            with ad.GradientTape() as inner:
                inner.watch(t)
                s = ad.norm(ad.constant(a) + t * ad.constant(e), ord=2, axis=(0, 1))
            ds = inner.gradient(s, t)
        return ds, outer.gradient(ds, t)
    t0, h = ad.constant(0.1, dtype="float64"), 1e-5
    with ad.GradientTape() as tape:
        tape.watch(t0)
        d2 = second(t0)[1]
    third = float(tape.gradient(d2, t0))
    central = (float(second(t0 + h)[1]) - float(second(t0 - h)[1])) / (2 * h)
    np.testing.assert_allclose(third, central, rtol=1e-5)


# ------------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("op", [ad.reduce_prod, ad.reduce_logsumexp, ad.reduce_variance,
                                ad.reduce_std])
def test_reduction_axis_errors(op):
    name = op.__name__
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range .* shape \(3, 4\)"):
        op(np.ones((3, 4)), axis=2)
    with pytest.raises(ValueError, match=f"{name}: repeated axis"):
        op(np.ones((3, 4)), axis=(0, -2))
    with pytest.raises(TypeError, match=f"{name}: axis must be an int"):
        op(np.ones((3, 4)), axis=1.0)


@pytest.mark.parametrize("op", [ad.reduce_logsumexp, ad.reduce_variance, ad.reduce_std,
                                ad.norm])
def test_floating_only_reductions_reject_integers(op):
    with pytest.raises(TypeError, match=rf"{op.__name__}: \w+ has dtype int32; expected a "
                                        r"floating tensor"):
        op(ad.constant([1, 2]))


@pytest.mark.parametrize("op", [ad.reduce_prod, ad.cumsum, ad.cumprod])
def test_numeric_reductions_reject_bool(op):
    with pytest.raises(TypeError, match=f"{op.__name__}: x has dtype bool"):
        op(ad.constant([True, False]))


@pytest.mark.parametrize("op", [ad.cumsum, ad.cumprod])
def test_scan_errors(op):
    name = op.__name__
    with pytest.raises(TypeError, match=f"{name}: axis must be an int, got \\(0, 1\\)"):
        op(np.ones((3, 4)), axis=(0, 1))
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range .* \(3, 4\)"):
        op(np.ones((3, 4)), axis=-3)
    with pytest.raises(ValueError, match=rf"{name}: cannot scan a 0-d tensor"):
        op(ad.constant(1.0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(ord="nuc"), "ord must be 'euclidean', 'fro', 1, 2, np.inf or a positive number"),
    (dict(ord=0), "got 0"), (dict(ord=-1.0, axis=1), "got -1.0"), (dict(ord=True), "got True"),
    (dict(ord=3, axis=(0, 1)), r"for a matrix norm \(axis=\(0, 1\)\), got 3"),
    (dict(ord="fro", axis=1), "ord='fro' is a matrix norm"),
    (dict(axis=(0, 1, 2)), r"axis must be None, an int or a pair .* shape \(3, 4, 5\)"),
    (dict(axis=(1, -2)), r"the two axes of a matrix norm must differ, got \(1, -2\)"),
    (dict(axis=3), r"axis 3 is out of range for a tensor of shape \(3, 4, 5\)"),
])
def test_norm_errors(kwargs, message):
    with pytest.raises(ValueError, match="norm: .*" + message):
        ad.norm(X, **kwargs)


def test_random_errors():
    with pytest.raises(ValueError, match=r"random.normal: shape \(2, -1\) has a negative"):
        ad.random.normal((2, -1))
    with pytest.raises(TypeError, match="random.normal: dtype int32 is not supported; "
                                        "expected a floating dtype"):
        ad.random.normal((2,), dtype="int32")
    with pytest.raises(TypeError, match="random.uniform: dtype complex64 is not supported"):
        ad.random.uniform((2,), dtype="complex64")
    with pytest.raises(ValueError, match="random.uniform: maxval must be given for integer "
                                         "dtype int32"):
        ad.random.uniform((2,), dtype="int32")
    with pytest.raises(ValueError, match="random.uniform: need minval < maxval .* minval=3 "
                                         "and maxval=3"):
        ad.random.uniform((2,), 3, 3, dtype="int64")
    with pytest.raises(TypeError, match="random.normal: seed must be an int or None, got 1.5"):
        ad.random.normal((2,), seed=1.5)
    with pytest.raises(ValueError, match="random.uniform: seed must be >= 0, got -1"):
        ad.random.uniform((2,), seed=-1)
    with pytest.raises(ValueError, match=r"random.normal: mean must be a scalar, got a tensor "
                                         r"of shape \(2,\)"):
        ad.random.normal((2,), mean=ad.constant([1.0, 2.0]))


def test_random_is_reproducible_and_uses_the_current_backend():
    a = ad.random.uniform((4,), dtype="float64", seed=11)
    np.testing.assert_array_equal(a.numpy(), np.random.default_rng(11).random(4))
    assert a.backend == "numpy"
    b = ad.random.normal((3,), mean=ad.constant(1.0), stddev=2, dtype="float16", seed=2)
    assert b.dtype == np.float16


def test_nn_errors():
    with pytest.raises(TypeError, match="softmax: logits must be floating, got int32"):
        ad.nn.softmax(ad.constant([1, 2]))
    with pytest.raises(ValueError, match=r"log_softmax: axis 2 is out of range for a tensor "
                                         r"of shape \(2, 3\)"):
        ad.nn.log_softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="softmax: axis must be an int, got"):
        ad.nn.softmax(np.zeros((2, 3)), axis=(0, 1))
    op = "softmax_cross_entropy_with_logits"
    with pytest.raises(TypeError, match=f"{op}: labels has dtype float32 but logits has dtype "
                                        "float64"):
        ad.nn.softmax_cross_entropy_with_logits(ad.constant([0.5, 0.5]), np.zeros(2))
    with pytest.raises(ValueError, match=rf"{op}: labels of shape \(3,\) and logits of shape "
                                         r"\(2,\) do not broadcast"):
        ad.nn.softmax_cross_entropy_with_logits(np.ones(3), np.zeros(2))


def test_nn_values():
    logits = X[0]
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(ad.nn.softmax(logits).numpy(), p, rtol=1e-13)
    np.testing.assert_allclose(ad.nn.log_softmax(logits, axis=0).numpy(),
                               logits - np.log(np.exp(logits).sum(0)), rtol=1e-13)
    labels = np.broadcast_to(p[::-1], (2, 4, 5))  # more dimensions than the logits
    np.testing.assert_allclose(  # axis 1 of the logits: the last
        ad.nn.softmax_cross_entropy_with_logits(labels, logits, axis=1).numpy(),
        -(labels * np.log(p)).sum(-1), rtol=1e-13)
    assert ad.nn.softmax(np.zeros((2, 0))).shape == (2, 0)


def test_new_elementwise_ops_check_dtypes():
    with pytest.raises(TypeError, match="atan2: y has dtype float32 and x has dtype float64"):
        ad.atan2(ad.constant([1.0]), ad.constant([1.0], dtype="float64"))
    with pytest.raises(TypeError, match="erf: unsupported dtype int32"):
        ad.erf(ad.constant([1]))
    with pytest.raises(ValueError, match=r"clip_by_value: incompatible shapes \(3,\) and "
                                         r"\(2,\)"):
        ad.clip_by_value(ad.constant([1.0, 2.0, 3.0]), ad.constant([0.0, 1.0]), 2.0)


def test_gelu_against_its_closed_forms():
    xs = np.linspace(-4, 4, 41)
    exact = [0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs]
    tanh_form = 0.5 * xs * (1 + np.tanh(math.sqrt(2 / math.pi) * (xs + 0.044715 * xs ** 3)))
    x = ad.constant(xs)
    np.testing.assert_allclose(ad.nn.gelu(x).numpy(), exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ad.nn.gelu(x, approximate=True).numpy(), tanh_form, rtol=1e-12)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.nn.gelu(x)
    pdf = np.exp(-xs ** 2 / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(xs / math.sqrt(2)))
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), cdf + xs * pdf, rtol=1e-12,
                               atol=1e-15)


def test_sigmoid_cross_entropy_is_stable_and_its_gradient_is_sigmoid_minus_labels():
    logits = ad.constant([-800.0, -1.0, 0.0, 2.0, 800.0], "float64")
    labels = ad.constant([1.0, 0.0, 0.5, 1.0, 0.0], "float64")
    with ad.GradientTape() as tape:
        tape.watch(logits)
        loss = ad.nn.sigmoid_cross_entropy_with_logits(labels, logits)
    x, z = logits.numpy(), labels.numpy()
    np.testing.assert_allclose(loss.numpy(), np.logaddexp(0, x) - x * z, rtol=1e-12)
    sig = 0.5 * (1 + np.tanh(x / 2))
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), sig - z, atol=1e-15)


def test_sparse_softmax_cross_entropy_and_moments_and_dropout():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    loss = ad.nn.sparse_softmax_cross_entropy_with_logits(ad.constant([1, 2]), logits)
    expected = [np.log(np.exp(row).sum()) - row[k] for row, k in zip(logits, [1, 2])]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"sparse_softmax_cross_entropy_with_logits: labels "
                                         r"must be in \[0, 3\), got values from 0 to 3"):
        ad.nn.sparse_softmax_cross_entropy_with_logits(ad.constant([0, 3]), logits)
    data = np.random.default_rng(1).normal(size=(5, 4, 3))
    mean, variance = ad.nn.moments(ad.constant(data), axes=[0, 2])
    np.testing.assert_allclose(mean.numpy(), data.mean((0, 2)), rtol=1e-12)
    np.testing.assert_allclose(variance.numpy(), data.var((0, 2)), rtol=1e-12)
    y = ad.nn.dropout(ad.ones((200, 100), "float64"), 0.25, seed=9).numpy()
    assert set(np.unique(y)) == {0.0, 1 / 0.75} and abs((y == 0).mean() - 0.25) < 0.01
    shared = ad.nn.dropout(ad.ones((50, 6)), 0.5, noise_shape=(50, 1), seed=4).numpy()
    assert (shared == shared[:, :1]).all()  # one draw per row
    with pytest.raises(ValueError, match=r"dropout: rate must be a number in \[0, 1\)"):
        ad.nn.dropout(ad.ones((2,)), 1.0)


def test_sparse_softmax_cross_entropy_compiles_with_labels_as_an_input():
    # its label-range check reads the labels when traced, not through Tensor.numpy()
    f = ad.function(lambda labels, logits: ad.reduce_sum(
        ad.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)))
    logits = np.array([[0.1, 0.7, -0.2], [1.0, 0.0, 0.5]])
    for labels in ([1, 2], [0, 0]):
        shifted = logits - logits.max(1, keepdims=True)
        expected = -(shifted - np.log(np.exp(shifted).sum(1, keepdims=True)))[[0, 1], labels]
        np.testing.assert_allclose(float(f(ad.constant(labels), ad.constant(logits))),
                                   expected.sum(), rtol=1e-12)
