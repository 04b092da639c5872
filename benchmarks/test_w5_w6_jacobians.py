"""W5 and W6: full Hessians and Jacobians, side by side with hand-written NumPy and with HIPS
autograd (when installed: pip install 'gpuad[bench]').

W5: Hessian of f(x) = sum(tanh(A x)^2), x in R^200, A 200x200, float64; floor: the closed form
    A^T diag(f'') A in NumPy.  Target (issue 4): within 3x of the closed form.
W6: Jacobian of y = tanh(W x + b), W 256x256, float32; checked against diag(1 - y^2) W.
    Target (issue 4): at most 0.1x the time of autograd.jacobian.
"""
import numpy as np
import pytest

import gpuad as ad

rng = np.random.default_rng(0)
A5 = rng.normal(size=(200, 200)) / 10
X5 = rng.normal(size=200)
W6 = (rng.normal(size=(256, 256)) / 16).astype(np.float32)
B6 = rng.normal(size=256).astype(np.float32)
X6 = rng.normal(size=256).astype(np.float32)

try:
    import autograd
    import autograd.numpy as anp
except ImportError:
    autograd = None


def w5_closed_form(x):
    t = np.tanh(A5 @ x)
    d2 = 2 * (1 - t * t) * (1 - 3 * t * t)  # d^2/du^2 tanh(u)^2
    return A5.T @ (d2[:, None] * A5)


def w5_gpuad(x):
    A = ad.constant(A5)
    return ad.hessian(lambda v: ad.reduce_sum(ad.tanh(ad.matmul(A, v)) ** 2))(x)


def w6_expected():
    y = np.tanh(W6 @ X6 + B6)
    return (1 - y * y)[:, None] * W6


def w6_gpuad(x):
    W, b = ad.constant(W6), ad.constant(B6)
    return ad.jacobian(lambda v: ad.tanh(ad.matmul(W, v) + b))(x)


W5_IMPLS = {"gpuad": (w5_gpuad, lambda: ad.constant(X5)),
            "numpy-floor (closed form)": (w5_closed_form, lambda: X5)}
W6_IMPLS = {"gpuad": (w6_gpuad, lambda: ad.constant(X6))}
if autograd is not None:
    W5_IMPLS["autograd"] = (autograd.hessian(lambda v: anp.sum(anp.tanh(anp.dot(A5, v)) ** 2)),
                            lambda: X5)
    W6_IMPLS["autograd"] = (autograd.jacobian(lambda v: anp.tanh(anp.dot(W6, v) + B6)),
                            lambda: X6)


@pytest.mark.parametrize("impl", list(W5_IMPLS))
def test_w5_hessian(benchmark, impl):
    fn, make = W5_IMPLS[impl]
    with ad.backend("numpy"):
        arg = make()
        np.testing.assert_allclose(np.asarray(fn(arg)), w5_closed_form(X5), rtol=1e-9, atol=1e-12)
        benchmark.group = "W5 Hessian of sum(tanh(Ax)^2), n=200, float64"
        benchmark.extra_info.update(impl=impl)
        benchmark.pedantic(fn, args=(arg,), rounds=30, iterations=1, warmup_rounds=2)


@pytest.mark.parametrize("impl", list(W6_IMPLS))
def test_w6_jacobian(benchmark, impl):
    fn, make = W6_IMPLS[impl]
    with ad.backend("numpy"):
        arg = make()
        np.testing.assert_allclose(np.asarray(fn(arg)), w6_expected(), rtol=1e-5, atol=1e-6)
        benchmark.group = "W6 Jacobian of tanh(Wx+b), 256x256, float32"
        benchmark.extra_info.update(impl=impl)
        benchmark.pedantic(fn, args=(arg,), rounds=20, iterations=1, warmup_rounds=2)
