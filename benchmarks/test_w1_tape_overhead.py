"""W1, per-op cost of the tape: a scalar chain of 100 ops (alternating sin, x1.01, +0.1, tanh).

Side by side in one run: gpuad without a tape (forward only), gpuad forward + gradient, and raw
NumPy doing the same forward and a hand-written backward on 0-d float32 arrays.  The NumPy
floor keeps its values as 0-d arrays (``ufunc(..., out=...)``), as gpuad holds them: NumPy's
default turns 0-d results into NumPy scalars, a path no array library takes.  Figures are
microseconds per op (per chain / 100).  Targets (issue 2): forward <= 1.5x, forward+gradient
<= 3x the NumPy floor.

Peers (forward+gradient): PyTorch (autograd.grad on 0-d tensors), HIPS autograd
(value_and_grad), JAX (jit of value_and_grad, and without jit: one dispatch per op plus a trace
per call), TensorFlow (GradientTape under tf.function, and eager).

Compiled: ``gpuad (function)`` is the same gpuad step (forward, or forward+gradient with its
GradientTape inside) under ``gpuad.function``, traced by a first call outside the timing; its
target is a ratio against tf.function.
"""
import numpy as np
import pytest

import gpuad as ad
from benchlib import (anp, autograd, check, first_call, interleaved_line, jax, jax_cpu, jnp,
                      require, require_ok, tf, timed, torch, traced_once)

N = 100  # ops per chain


def gpuad_forward(x):
    for _ in range(N // 4):
        x = ad.tanh(ad.sin(x) * 1.01 + 0.1)
    return x


def gpuad_value_and_gradient(x):
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = gpuad_forward(x)
    return y, tape.gradient(y, x)


def numpy_forward(a):
    for _ in range(N // 4):
        a = np.tanh(np.add(np.multiply(np.sin(a, out=...), 1.01, out=...), 0.1, out=...),
                    out=...)
    return a


def numpy_value_and_gradient(a):
    saved = []
    for _ in range(N // 4):
        saved.append(a)
        a = np.tanh(np.add(np.multiply(np.sin(a, out=...), 1.01, out=...), 0.1, out=...),
                    out=...)
        saved.append(a)
    g = np.ones_like(a)
    for i in range(N // 4 - 1, -1, -1):
        x_in, t_out = saved[2 * i], saved[2 * i + 1]
        g = np.multiply(g, np.subtract(1, np.multiply(t_out, t_out, out=...), out=...), out=...)
        g = np.multiply(np.multiply(g, 1.01, out=...), np.cos(x_in, out=...), out=...)
    return a, g


def numpy_scalar_forward(a):  # for reference: NumPy's own 0-d -> scalar path
    for _ in range(N // 4):
        a = np.tanh(np.sin(a) * 1.01 + 0.1)
    return a


def torch_value_and_gradient(x):
    x = x.detach().requires_grad_()
    y = x
    for _ in range(N // 4):
        y = torch.tanh(torch.sin(y) * 1.01 + 0.1)
    return y, torch.autograd.grad(y, x)[0]


def tf_forward(x):
    for _ in range(N // 4):
        x = tf.tanh(tf.sin(x) * 1.01 + 0.1)
    return x


def tf_value_and_gradient(x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf_forward(x)
    return y, tape.gradient(y, x)


def peer_forward(np_):  # the chain written against autograd.numpy or jax.numpy
    def forward(a):
        for _ in range(N // 4):
            a = np_.tanh(np_.sin(a) * 1.01 + 0.1)
        return a
    return forward


def closed_form(x0=0.5):  # float64 value and derivative of the chain
    value, grad = x0, 1.0
    for _ in range(N // 4):
        t = np.tanh(np.sin(value) * 1.01 + 0.1)
        grad *= np.cos(value) * 1.01 * (1 - t * t)
        value = t
    return value, grad


JAX_VG = jax and jax.value_and_grad(peer_forward(jnp))
IMPLS = {
    "forward": {"gpuad": (gpuad_forward, lambda: ad.constant(0.5)),
                "gpuad (function)": (ad.function(gpuad_forward), lambda: ad.constant(0.5)),
                "numpy-floor": (numpy_forward, lambda: np.array(0.5, np.float32)),
                "numpy-scalars (reference)": (numpy_scalar_forward,
                                              lambda: np.array(0.5, np.float32))},
    "forward+gradient": {
        "gpuad": (gpuad_value_and_gradient, lambda: ad.constant(0.5)),
        "gpuad (function)": (ad.function(gpuad_value_and_gradient), lambda: ad.constant(0.5)),
        "numpy-floor": (numpy_value_and_gradient, lambda: np.array(0.5, np.float32)),
        "torch": (torch_value_and_gradient, lambda: torch.tensor(0.5)),
        "autograd": (autograd and autograd.value_and_grad(peer_forward(anp)),
                     lambda: np.float32(0.5)),
        "jax": (jax and jax.jit(JAX_VG), lambda: jax_cpu(np.float32(0.5))),
        "jax (no jit)": (JAX_VG, lambda: jax_cpu(np.float32(0.5))),
        "tf.function": (tf and tf.function(tf_value_and_gradient), lambda: tf.constant(0.5)),
        "tf eager": (tf_value_and_gradient, lambda: tf.constant(0.5))},
}


@pytest.mark.parametrize("mode, impl", [(m, i) for m in IMPLS for i in IMPLS[m]])
def test_w1_tape_overhead(benchmark, mode, impl):
    require(impl)
    fn, make = IMPLS[mode][impl]
    value, grad = closed_form()
    with ad.backend("numpy"):
        arg = make()
        first_call(impl, fn, arg)
        if mode == "forward":
            check(impl, [fn(arg)], [value], rtol=1e-5)
        else:
            check(impl, fn(arg), [value, grad], rtol=1e-4)
        timed(benchmark, f"W1 {mode} (100-op scalar chain)", impl, fn, arg, ops=N)
        traced_once(impl, fn)


def test_w1_interleaved_ratios(capsys):
    """The targets' ratios measured robustly on a shared machine: gpuad, gpuad.function, the
    NumPy floor, torch and tf.function alternate call by call, so a burst of noise hits all of
    them."""
    lines = []
    for mode in IMPLS:
        impls = {name: IMPLS[mode][name] for name in ("gpuad", "gpuad (function)", "numpy-floor",
                                                      "torch", "tf.function")
                 if name in IMPLS[mode] and require_ok(name)}
        with ad.backend("numpy"):
            lines.append(interleaved_line(f"W1 {mode} (us/op)", impls, rounds=400,
                                          unit=1e6 / N, suffix="us"))
    with capsys.disabled():
        print("\n" + "\n".join(lines))
