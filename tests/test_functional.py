"""Functional transforms, Jacobians, forward mode, custom gradients (issue 4), each against
closed forms or float64 central differences."""
import numpy as np
import pytest

import gpuad as ad
from gpuad.testing import check_gradients

rng = np.random.default_rng(0)


def f_scalar(x, y):
    return ad.reduce_sum(ad.sin(x) * y * y)


def test_grad_and_value_and_grad_with_argnums():
    x, y = rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
    gx = ad.grad(f_scalar)(x, y)
    np.testing.assert_allclose(gx.numpy(), np.cos(x) * y * y, rtol=1e-6)
    value, (gx, gy) = ad.value_and_grad(f_scalar, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(float(value), np.sum(np.sin(x) * y * y), rtol=1e-6)
    np.testing.assert_allclose(gy.numpy(), 2 * np.sin(x) * y, rtol=1e-6)
    with pytest.raises(TypeError, match="must return a scalar"):
        ad.grad(lambda x: x * 2.0)(ad.constant([1.0, 2.0]))
    with pytest.raises(ValueError, match="argnums"):
        ad.grad(f_scalar, argnums=2)(x, y)
    with pytest.raises(TypeError, match="only floating"):
        ad.grad(lambda i: ad.cast(i, "float32"))(3)


def test_grad_composes_to_any_order():
    f = lambda x: x ** 5  # noqa: E731
    assert float(ad.grad(ad.grad(ad.grad(f)))(ad.constant(2.0, dtype="float64"))) == 240.0
    x = ad.constant(0.3, dtype="float64")
    with ad.GradientTape() as tape:  # grad inside a tape is recorded
        tape.watch(x)
        g = ad.grad(lambda v: ad.sin(v) * v)(x)
    np.testing.assert_allclose(float(tape.gradient(g, x)), -0.3 * np.sin(0.3) + 2 * np.cos(0.3))


def test_vjp_and_jvp():
    x = ad.constant(rng.uniform(-1, 1, 4))
    out, vjp_fn = ad.vjp(lambda v: ad.exp(v) * 2.0, x)
    ct = rng.uniform(-1, 1, 4)
    np.testing.assert_allclose(vjp_fn(ct)[0].numpy(), ct * 2 * np.exp(x.numpy()))
    np.testing.assert_allclose(vjp_fn(ct * 2)[0].numpy(), 2 * ct * 2 * np.exp(x.numpy()))
    v = rng.uniform(-1, 1, 4)
    out, t = ad.jvp(lambda v_: ad.exp(v_) * 2.0, [x], [v])
    np.testing.assert_allclose(t.numpy(), v * 2 * np.exp(x.numpy()))


def test_jacobian_closed_form_and_argnums():
    W, b, x = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3)

    def layer(w, bias, v):
        return ad.tanh(ad.matmul(w, v) + bias)
    J = ad.jacobian(layer, argnums=2)(W, b, x).numpy()
    y = np.tanh(W @ x + b)
    np.testing.assert_allclose(J, (1 - y ** 2)[:, None] * W, rtol=1e-10)
    Jw, Jb = ad.jacobian(layer, argnums=(0, 1))(W, b, x)
    assert Jw.shape == (5, 5, 3) and Jb.shape == (5, 5)
    np.testing.assert_allclose(Jb.numpy(), np.diag(1 - y ** 2), rtol=1e-10)
    np.testing.assert_allclose(Jw.numpy(), np.einsum("i,ij,k->ijk", 1 - y ** 2, np.eye(5), x),
                               atol=1e-12)


def test_jacobian_of_a_matrix_product_with_the_source_takes_the_matrix_as_is(monkeypatch):
    """The standard basis through ``W @ x`` (or ``x @ W``, x a row) is W itself: no product
    with the identity is computed, and the Jacobian still matches the closed form."""
    from gpuad import math_ops
    products, real = [], math_ops._product
    monkeypatch.setattr(math_ops, "_product", lambda xp, a, b: products.append(
        (a.shape, b.shape)) or real(xp, a, b))
    W, x = rng.normal(size=(5, 3)), rng.normal(size=3)
    J = ad.jacobian(lambda v: ad.tanh(ad.matmul(W, v)))(x).numpy()
    np.testing.assert_allclose(J, (1 - np.tanh(W @ x) ** 2)[:, None] * W, rtol=1e-12)
    assert products == [((5, 3), (3, 1))]  # the forward product only
    products.clear()
    row, V = rng.normal(size=(1, 5)), rng.normal(size=(5, 4))
    J = ad.jacobian(lambda r: ad.sin(ad.matmul(r, V)))(row).numpy()
    want = np.cos(row @ V)[0][:, None] * V.T  # d sin(r V)_j / d r_i = cos(.)_j V_ij
    np.testing.assert_allclose(J, want.reshape(1, 4, 1, 5), rtol=1e-12)
    assert products == [((1, 5), (5, 4))]
    # both operands depend on the source: the ordinary JVP, x x^T and x^T x
    J = ad.jacobian(lambda v: ad.matmul(ad.reshape(v, (3, 1)), ad.reshape(v, (1, 3))))(x)
    want = np.einsum("ik,j->ijk", np.eye(3), x) + np.einsum("i,jk->ijk", x, np.eye(3))
    np.testing.assert_allclose(J.numpy(), want, rtol=1e-12)
    J = ad.jacobian(lambda v: ad.matmul(ad.reshape(v, (1, 3)), ad.reshape(v, (3, 1))))(x)
    np.testing.assert_allclose(J.numpy(), 2 * x.reshape(1, 1, 3), rtol=1e-12)
    # the target a reshape of the source: the basis itself
    J = ad.jacobian(lambda v: ad.reshape(v, (1, 3)) * 1.0)(x)
    np.testing.assert_array_equal(J.numpy(), np.eye(3).reshape(1, 3, 3))
    with ad.GradientTape() as tape:
        tape.watch(x := ad.constant(x))
        y = ad.reshape(x, (3, 1))
    np.testing.assert_array_equal(tape.jacobian(y, x).numpy(), np.eye(3).reshape(3, 1, 3))


def test_hessian_of_a_function_of_a_matrix():
    A = rng.normal(size=(2, 3))
    H = ad.hessian(lambda m: ad.reduce_sum(m ** 3))(A).numpy()
    assert H.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(H.reshape(6, 6), np.diag(6 * A.reshape(-1)), atol=1e-12)


def test_hessian_closed_form():
    A, x = rng.normal(size=(7, 4)), rng.normal(size=4)
    H = ad.hessian(lambda v: ad.reduce_sum(ad.tanh(ad.matmul(A, v)) ** 2))(x).numpy()
    t = np.tanh(A @ x)
    d2 = 2 * (1 - t ** 2) ** 2 - 4 * t ** 2 * (1 - t ** 2)  # d^2/du^2 of tanh(u)^2
    np.testing.assert_allclose(H, A.T @ (d2[:, None] * A), rtol=1e-9)
    np.testing.assert_allclose(ad.jacobian(ad.grad(lambda v: ad.reduce_sum(
        ad.tanh(ad.matmul(A, v)) ** 2)))(x).numpy(), H, rtol=1e-12)


def test_tape_jacobian_modes_agree_and_unconnected():
    x = ad.constant(rng.uniform(-1, 1, 6))
    z = ad.constant(1.0, dtype="float64")
    with ad.GradientTape(persistent=True) as tape:
        tape.watch([x, z])
        wide = ad.reduce_sum(ad.sin(x)) * 2.0          # 1 output, 6 inputs: reverse rows
        tall = ad.stack([x * x, ad.exp(x)])            # 12 outputs, 6 inputs: forward columns
    np.testing.assert_allclose(tape.jacobian(wide, x).numpy(), 2 * np.cos(x.numpy()))
    j = tape.jacobian(tall, x).numpy()
    np.testing.assert_allclose(j[0], np.diag(2 * x.numpy()))
    np.testing.assert_allclose(j[1], np.diag(np.exp(x.numpy())))
    assert tape.jacobian(tall, z) is None
    assert tape.jacobian(tall, z, unconnected_gradients="zero").shape == (2, 6)
    np.testing.assert_array_equal(tape.jacobian(x, x).numpy(), np.eye(6))


def test_non_persistent_tape_allows_one_jacobian():
    x = ad.constant([1.0, 2.0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    tape.jacobian(y, x)
    with pytest.raises(RuntimeError, match="can only be used to compute one set of gradients"):
        tape.jacobian(y, x)


def test_batch_jacobian():
    X, W = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    x = ad.constant(X)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.tanh(ad.matmul(x, ad.constant(W)))
    bj = tape.batch_jacobian(y, x).numpy()
    assert bj.shape == (4, 2, 3)
    t = np.tanh(X @ W)
    for i in range(4):
        np.testing.assert_allclose(bj[i], (1 - t[i] ** 2)[:, None] * W.T, rtol=1e-10)
    with pytest.raises(ValueError, match="batch"):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(x)
        tape.batch_jacobian(y, x)


def test_forward_accumulator_semantics():
    x, y = ad.constant(2.0), ad.constant(5.0)
    with ad.ForwardAccumulator([x, y], [1.0, 0.0]) as acc:
        z = x * x * y + ad.sin(y)
        w = ad.constant(5.0) * 3.0
    assert float(acc.jvp(z)) == 20.0
    assert acc.jvp(w) is None and float(acc.jvp(w, unconnected_gradients="zero")) == 0.0
    assert float(acc.jvp(x)) == 1.0
    v = ad.Variable(3.0)
    with ad.ForwardAccumulator(v, 2.0) as acc:
        z = v * v
    assert float(acc.jvp(z)) == 12.0
    with pytest.raises(ValueError, match="tangent 0"):
        ad.ForwardAccumulator(x, ad.constant([1.0, 2.0]))
    with pytest.raises(TypeError, match="floating"):
        ad.ForwardAccumulator(ad.constant(1), 1)


def test_nested_accumulators_give_second_directional_derivatives():
    x = ad.constant(0.7, dtype="float64")
    with ad.ForwardAccumulator(x, 1.0) as outer:
        with ad.ForwardAccumulator(x, 1.0) as inner:
            y = ad.sin(x) * x
        dy = inner.jvp(y)
    np.testing.assert_allclose(float(dy), np.cos(0.7) * 0.7 + np.sin(0.7))
    np.testing.assert_allclose(float(outer.jvp(dy)), -np.sin(0.7) * 0.7 + 2 * np.cos(0.7))


def test_forward_over_reverse_hessian_vector_product():
    A, x, v = rng.normal(size=(5, 5)), rng.normal(size=5), rng.normal(size=5)
    A = A + A.T
    x_t = ad.constant(x)
    with ad.ForwardAccumulator(x_t, v) as acc:
        with ad.GradientTape() as tape:
            tape.watch(x_t)
            y = 0.5 * ad.reduce_sum(x_t * ad.matmul(ad.constant(A), x_t))
        g = tape.gradient(y, x_t)
    np.testing.assert_allclose(acc.jvp(g).numpy(), A @ v, rtol=1e-10)


def test_custom_gradient_tf_semantics_and_second_order():
    @ad.custom_gradient
    def log1pexp(x):
        def grad_fn(dy):  # from the input, so that outer tapes can differentiate it again
            return dy * (1 - 1 / (1 + ad.exp(x)))
        return ad.log(1 + ad.exp(x)), grad_fn
    x = ad.constant(100.0, dtype="float64")
    with ad.GradientTape() as outer:
        outer.watch(x)
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = log1pexp(x)
        g = tape.gradient(y, x)
    assert float(g) == 1.0  # the stable gradient, not nan
    x = ad.constant(0.5, dtype="float64")
    with ad.GradientTape() as outer:
        outer.watch(x)
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = log1pexp(x)
        g = tape.gradient(y, x)
    s = 1 / (1 + np.exp(-0.5))
    np.testing.assert_allclose(float(g), s)
    np.testing.assert_allclose(float(outer.gradient(g, x)), s * (1 - s))


def test_custom_gradient_with_variables():
    w = ad.Variable(2.0, name="w")

    @ad.custom_gradient
    def scaled(x):
        def grad_fn(dy, variables=None):
            return dy * w, [dy * x * 10.0]  # deliberately not the true gradient of w
        return x * w, grad_fn
    x = ad.constant(3.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = scaled(x)
    gx, gw = tape.gradient(y, [x, w])
    assert float(gx) == 2.0 and float(gw) == 30.0

    @ad.custom_gradient
    def forgets_variables(x):
        return x * w, lambda dy: dy
    with pytest.raises(TypeError, match="variables"):
        forgets_variables(x)


def test_custom_gradient_forward_mode_uses_the_custom_vjp():
    @ad.custom_gradient
    def double_grad(x):
        return ad.identity(x), lambda dy: dy * 2.0
    x = ad.constant([1.0, 2.0])
    with ad.ForwardAccumulator(x, ad.constant([1.0, 1.0])) as acc:
        y = double_grad(x)
    assert acc.jvp(y).numpy().tolist() == [2.0, 2.0]


def test_stop_gradient():
    x = ad.constant(2.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x * x + ad.stop_gradient(x * x)
    assert float(tape.gradient(y, x)) == 4.0


def test_check_gradients_reports_the_worst_element():
    @ad.custom_gradient
    def wrong(x):
        return x * x, lambda dy: dy * 3.0 * x  # true gradient is 2x
    with pytest.raises(AssertionError, match=r"argument 0 differs at index \(\d+,\): analytic"):
        check_gradients(wrong, [[1.0, 2.0]])
    check_gradients(lambda a, b: ad.matmul(a, b) ** 2, [rng.normal(size=(2, 3)),
                                                        rng.normal(size=(3, 2))], order=2)
