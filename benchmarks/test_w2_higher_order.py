"""W2, higher order: f(x) = sin(x)^2 on 100 float32 points in [-2pi, 2pi], and f', f'', f'''
by nesting a first-derivative function, as seed program 1 (gpuad/examples/seed1_higher_order.py)
does: f(x), d(f)(x), d(d(f))(x), d(d(d(f)))(x) in one call, each derivative recomputing the
lower orders (the cost of building tapes of tapes).

gpuad: gradients_function nested; torch: autograd.grad(create_graph=True) nested; autograd:
elementwise_grad nested; jax: grad nested, vmap over the points, one jit for the four outputs.
Floor: the closed forms in NumPy (2 sin cos, 2 cos 2x, -4 sin 2x).  Checked against float64.
Compiled: ``gpuad (function)``, the whole nest (the four outputs) under ``gpuad.function``,
traced by a first call outside the timing; its target is a ratio against jax (under jit).
"""
import numpy as np
import pytest

import gpuad as ad
from benchlib import (anp, autograd, check, first_call, interleaved_line, jax, jax_cpu, jnp,
                      require, require_ok, timed, torch, traced_once)

X = np.linspace(-2 * np.pi, 2 * np.pi, 100).astype(np.float32)


def closed_form(x):
    x = x.astype(np.float64)
    return [np.sin(x) ** 2, np.sin(2 * x), 2 * np.cos(2 * x), -4 * np.sin(2 * x)]


def numpy_floor(x):
    s, c = np.sin(x), np.cos(x)
    sc = s * c
    return [s * s, 2 * sc, 2 * (c * c - s * s), -8 * sc]


def gpuad_d(f):
    return lambda x: ad.gradients_function(f)(x)[0]


def gpuad_all(x):
    f = lambda v: ad.square(ad.sin(v))  # noqa: E731
    return [f(x), gpuad_d(f)(x), gpuad_d(gpuad_d(f))(x), gpuad_d(gpuad_d(gpuad_d(f)))(x)]


def torch_d(f):
    def df(x):
        with torch.enable_grad():
            x = x if x.requires_grad else x.detach().requires_grad_()
            return torch.autograd.grad(f(x).sum(), x, create_graph=True)[0]
    return df


def torch_all(x):
    f = lambda v: torch.sin(v) ** 2  # noqa: E731
    return [f(x), torch_d(f)(x), torch_d(torch_d(f))(x), torch_d(torch_d(torch_d(f)))(x)]


def autograd_all(x):
    f, d = (lambda v: anp.sin(v) ** 2), autograd.elementwise_grad
    return [f(x), d(f)(x), d(d(f))(x), d(d(d(f)))(x)]


def jax_all(x):
    f, d = (lambda v: jnp.sin(v) ** 2), jax.grad
    return [jax.vmap(g)(x) for g in (f, d(f), d(d(f)), d(d(d(f))))]


jax_jit = jax and jax.jit(jax_all)
IMPLS = {"gpuad": (gpuad_all, lambda: ad.constant(X)),
         "gpuad (function)": (ad.function(gpuad_all), lambda: ad.constant(X)),
         "numpy-floor": (numpy_floor, lambda: X),
         "torch": (torch_all, lambda: torch.tensor(X)),
         "autograd": (autograd_all, lambda: X),
         "jax": (jax_jit, lambda: jax_cpu(X))}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_w2_higher_order(benchmark, impl):
    require(impl)
    fn, make = IMPLS[impl]
    with ad.backend("numpy"):
        arg = make()
        first_call(impl, fn, arg)
        check(impl, fn(arg), closed_form(X), rtol=0, atol=2e-5)
        timed(benchmark, "W2 sin^2 and 3 derivatives, nested, 100 points", impl, fn, arg)
        traced_once(impl, fn)


def test_w2_interleaved_ratios(capsys):
    """gpuad, gpuad.function, the floor, torch, autograd and jax alternating call by call:
    medians of 300 rounds."""
    impls = {name: IMPLS[name] for name in ("gpuad", "gpuad (function)", "numpy-floor", "torch",
                                            "autograd", "jax")
             if require_ok(name)}
    with ad.backend("numpy"):
        line = interleaved_line("W2 (us)", impls, rounds=300, unit=1e6, suffix="us")
    with capsys.disabled():
        print("\n" + line)
