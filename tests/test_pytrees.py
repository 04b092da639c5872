"""Nested arguments (JAX's pytrees: lists, tuples, namedtuples, dicts, None leaves) in grad,
value_and_grad, vjp, jvp, jacobian and hessian: derivatives come back in the arguments'
structure, never stacked; values against closed forms."""
import collections

import numpy as np
import pytest

import gpuad as ad

A, B, C = 0.5, -1.5, 2.0


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got.numpy() if isinstance(got, ad.Tensor) else got),
                               want, rtol=1e-6, atol=1e-7)


def test_grad_of_a_list_is_a_list_not_a_stack():
    g = ad.grad(lambda p: p[0] * p[1] ** 2)([A, B])
    assert isinstance(g, list) and len(g) == 2
    _close(g[0], B ** 2)
    _close(g[1], 2 * A * B)
    # leaves of different shapes (a list that could never stack)
    v = ad.constant([1.0, 2.0, 3.0])
    g = ad.grad(lambda p: ad.reduce_sum(p[0] * p[1]))([ad.constant(C), v])
    _close(g[0], 6.0)
    _close(g[1], [C] * 3)


def test_tuples_dicts_nesting_and_none_leaves():
    Point = collections.namedtuple("Point", "x y")

    def f(params, point):
        return params["w"][0] * params["w"][1] * point.x + params["b"] ** 2 * point.y

    params = {"w": (A, B), "b": C, "unused": None}
    point = Point(ad.constant(2.0), ad.constant(3.0))
    value, (gp, gq) = ad.value_and_grad(f, argnums=(0, 1))(params, point)
    _close(value, A * B * 2 + C ** 2 * 3)
    assert set(gp) == {"w", "b", "unused"} and gp["unused"] is None
    assert isinstance(gp["w"], tuple) and isinstance(gq, Point)
    _close(gp["w"][0], B * 2)
    _close(gp["w"][1], A * 2)
    _close(gp["b"], 2 * C * 3)
    _close(gq.x, A * B)
    _close(gq.y, C ** 2)


def test_unconnected_leaves_get_zeros_and_one_tensor_twice_two_gradients():
    x = ad.constant(3.0)
    g = ad.grad(lambda p: p[0] * 2.0)([x, x, ad.constant([1.0, 2.0])])
    _close(g[0], 2.0)
    _close(g[1], 0.0)
    _close(g[2], [0.0, 0.0])


def test_vjp_and_jvp_with_structures():
    def f(p):
        return {"s": p["a"] * p["b"], "t": [ad.sin(p["a"])]}

    p = {"a": ad.constant(A), "b": ad.constant(B)}
    out, vjp_fn = ad.vjp(f, p)
    assert set(out) == {"s", "t"}
    (ct,) = vjp_fn({"s": ad.constant(1.0), "t": [ad.constant(10.0)]})
    _close(ct["a"], B + 10 * np.cos(A))
    _close(ct["b"], A)
    with pytest.raises(ValueError, match="cotangent has 1 leaves but f's result has 2"):
        vjp_fn(ad.constant(1.0))
    out, tangent = ad.jvp(f, (p,), ({"a": ad.constant(1.0), "b": ad.constant(2.0)},))
    _close(tangent["s"], B + 2 * A)
    _close(tangent["t"][0], np.cos(A))
    with pytest.raises(ValueError, match="primal 0 has 2 leaves but its tangent has 1"):
        ad.jvp(f, (p,), ({"a": ad.constant(1.0)},))


def test_jacobian_structure_as_jax():
    x, y = ad.constant([1.0, 2.0]), ad.constant(3.0)

    def f(p):
        return (p["x"] * p["y"], ad.reduce_sum(p["x"]))

    jac = ad.jacobian(f)({"x": x, "y": y})
    assert isinstance(jac, tuple) and set(jac[0]) == {"x", "y"}
    assert jac[0]["x"].shape == (2, 2) and jac[0]["y"].shape == (2,)
    assert jac[1]["x"].shape == (2,) and jac[1]["y"].shape == ()
    _close(jac[0]["x"], 3.0 * np.eye(2))
    _close(jac[0]["y"], [1.0, 2.0])
    _close(jac[1]["x"], [1.0, 1.0])
    _close(jac[1]["y"], 0.0)
    jx, jy = ad.jacobian(lambda a, b: a * b, argnums=(0, 1))(x, y)
    _close(jx, 3.0 * np.eye(2))
    _close(jy, [1.0, 2.0])


def test_hessian_blocks_as_jax():
    def f(p):
        return ad.reduce_sum(p["x"] ** 2) * p["y"] ** 3

    x, y = np.array([1.0, -2.0]), 1.5
    h = ad.hessian(f)({"x": ad.constant(x, dtype="float64"), "y": ad.constant(y, "float64")})
    assert set(h) == {"x", "y"} and set(h["x"]) == {"x", "y"}
    assert h["x"]["x"].shape == (2, 2) and h["x"]["y"].shape == (2,) and h["y"]["y"].shape == ()
    _close(h["x"]["x"], 2 * y ** 3 * np.eye(2))
    _close(h["x"]["y"], 6 * x * y ** 2)
    _close(h["y"]["x"], 6 * x * y ** 2)
    _close(h["y"]["y"], 6 * (x ** 2).sum() * y)


def test_integer_leaves_are_refused_by_name():
    with pytest.raises(TypeError, match="grad: argument 0 has a leaf of dtype int32"):
        ad.grad(lambda p: p[0] * 1.0)([ad.constant(1.0), ad.constant(2)])
