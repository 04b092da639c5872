"""W5 and W6: full Hessians and Jacobians, side by side with hand-written NumPy and with the
peers (torch.autograd.functional, HIPS autograd, jax; each skipped when not installed).

W5: Hessian of f(x) = sum(tanh(A x)^2), x in R^200, A 200x200, float64; floor: the closed form
    A^T diag(f'') A in NumPy.  Target (issue 4): within 3x of the closed form.
    Peers: torch.autograd.functional.hessian (vectorize=True; the default, one backward pass
    per row, shown for reference), autograd.hessian, jax.hessian under jit.
W6: Jacobian of y = tanh(W x + b), W 256x256, float32; checked against diag(1 - y^2) W.
    Target (issue 4): at most 0.1x the time of autograd.jacobian.  Peers:
    torch.autograd.functional.jacobian (vectorize=True, and the default for reference),
    autograd.jacobian, jax.jacrev and jax.jacfwd under jit.  The floor is that closed form.
Compiled (both): ``gpuad (function)``, the whole computation (ad.hessian, ad.jacobian, or a
GradientTape's jacobian) under ``gpuad.function``, traced by a first call outside the timing;
its targets are ratios against jax (under jit).
"""
import numpy as np
import pytest

import gpuad as ad
from benchlib import (anp, autograd, check, first_call, interleaved_line, jax, jax_cpu, jnp,
                      require, timed, torch, traced_once)

rng = np.random.default_rng(0)
A5 = rng.normal(size=(200, 200)) / 10
X5 = rng.normal(size=200)
W6 = (rng.normal(size=(256, 256)) / 16).astype(np.float32)
B6 = rng.normal(size=256).astype(np.float32)
X6 = rng.normal(size=256).astype(np.float32)


def w5_closed_form(x):
    t = np.tanh(A5 @ x)
    d2 = 2 * (1 - t * t) * (1 - 3 * t * t)  # d^2/du^2 tanh(u)^2
    return A5.T @ (d2[:, None] * A5)


def w5_gpuad(x):
    A = ad.constant(A5)
    return ad.hessian(lambda v: ad.reduce_sum(ad.tanh(ad.matmul(A, v)) ** 2))(x)


def w6_closed_form(x, w=W6, b=B6):
    y = np.tanh(w @ x + b)
    return (1 - y * y)[:, None] * w


def w6_gpuad(x):
    W, b = ad.constant(W6), ad.constant(B6)
    return ad.jacobian(lambda v: ad.tanh(ad.matmul(W, v) + b))(x)


def w6_gpuad_tape(x):
    W, b = ad.constant(W6), ad.constant(B6)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.tanh(ad.matmul(W, x) + b)
    return tape.jacobian(y, x)


def torch_functional(transform, f, *constants, **options):
    tensors = [torch.from_numpy(c) for c in constants]

    def run(x):
        return transform(lambda v: f(v, *tensors), x, **options)
    return run


def w5_f(np_, dot):
    return lambda v: np_.sum(np_.tanh(dot(A5, v)) ** 2)


def w6_f(np_, dot):
    return lambda v: np_.tanh(dot(W6, v) + B6)


def torch_w5(v, a):
    return (torch.tanh(a @ v) ** 2).sum()


def torch_w6(v, w, b):
    return torch.tanh(w @ v + b)


W5_IMPLS = {"gpuad": (w5_gpuad, lambda: ad.constant(X5)),
            "gpuad (function)": (ad.function(w5_gpuad), lambda: ad.constant(X5)),
            "numpy-floor (closed form)": (w5_closed_form, lambda: X5)}
W6_IMPLS = {"gpuad": (w6_gpuad, lambda: ad.constant(X6)),
            "gpuad (function)": (ad.function(w6_gpuad), lambda: ad.constant(X6)),
            "gpuad (function, tape.jacobian)": (ad.function(w6_gpuad_tape),
                                                lambda: ad.constant(X6)),
            "numpy-floor (closed form)": (w6_closed_form, lambda: X6)}
if torch is not None:
    functional = torch.autograd.functional
    W5_IMPLS["torch"] = (torch_functional(functional.hessian, torch_w5, A5, vectorize=True),
                         lambda: torch.from_numpy(X5))
    W5_IMPLS["torch (vectorize=False)"] = (torch_functional(functional.hessian, torch_w5, A5),
                                           lambda: torch.from_numpy(X5))
    W6_IMPLS["torch"] = (torch_functional(functional.jacobian, torch_w6, W6, B6, vectorize=True),
                         lambda: torch.from_numpy(X6))
    W6_IMPLS["torch (vectorize=False)"] = (torch_functional(functional.jacobian, torch_w6, W6, B6),
                                           lambda: torch.from_numpy(X6))
if autograd is not None:
    W5_IMPLS["autograd"] = (autograd.hessian(w5_f(anp, anp.dot)), lambda: X5)
    W6_IMPLS["autograd"] = (autograd.jacobian(w6_f(anp, anp.dot)), lambda: X6)
if jax is not None:
    W5_IMPLS["jax"] = (jax.jit(jax.hessian(w5_f(jnp, jnp.dot))), lambda: jax_cpu(X5))
    W6_IMPLS["jax"] = (jax.jit(jax.jacrev(w6_f(jnp, jnp.dot))), lambda: jax_cpu(X6))
    W6_IMPLS["jax (jacfwd)"] = (jax.jit(jax.jacfwd(w6_f(jnp, jnp.dot))), lambda: jax_cpu(X6))
PEERS = ["torch", "torch (vectorize=False)", "autograd", "jax"]


@pytest.mark.parametrize("impl", list(W5_IMPLS) + [p for p in PEERS if p not in W5_IMPLS])
def test_w5_hessian(benchmark, impl):
    require(impl)
    fn, make = W5_IMPLS[impl]
    with ad.backend("numpy"):
        arg = make()
        first_call(impl, fn, arg)
        check(impl, [fn(arg)], [w5_closed_form(X5)], rtol=1e-9, atol=1e-12)
        timed(benchmark, "W5 Hessian of sum(tanh(Ax)^2), n=200, float64", impl, fn, arg)
        traced_once(impl, fn)


@pytest.mark.parametrize("impl", list(W6_IMPLS) + [p for p in PEERS if p not in W6_IMPLS])
def test_w6_jacobian(benchmark, impl):
    require(impl)
    fn, make = W6_IMPLS[impl]
    with ad.backend("numpy"):
        arg = make()
        first_call(impl, fn, arg)
        want = w6_closed_form(*(a.astype(np.float64) for a in (X6, W6, B6)))
        check(impl, [fn(arg)], [want], rtol=1e-5, atol=1e-6)
        timed(benchmark, "W6 Jacobian of tanh(Wx+b), 256x256, float32", impl, fn, arg)
        traced_once(impl, fn)


@pytest.mark.parametrize("workload, impls, rounds", [("W5", W5_IMPLS, 100),
                                                     ("W6", W6_IMPLS, 300)])
def test_w5_w6_interleaved_ratios(workload, impls, rounds, capsys):
    """gpuad, gpuad.function, the closed form and jax alternating call by call."""
    impls = {name: impls[name] for name in ("gpuad", "gpuad (function)",
                                            "numpy-floor (closed form)", "jax") if name in impls}
    with ad.backend("numpy"):
        line = interleaved_line(f"{workload} (us)", impls, rounds=rounds, unit=1e6,
                                suffix="us")
    with capsys.disabled():
        print("\n" + line)
