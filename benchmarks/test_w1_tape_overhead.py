"""W1, per-op cost of the tape: a scalar chain of 100 ops (alternating sin, x1.01, +0.1, tanh).

Side by side in one run: gpuad without a tape (forward only), gpuad forward + gradient, and raw
NumPy doing the same forward and a hand-written backward on 0-d float32 arrays.  The NumPy
floor keeps its values as 0-d arrays (``ufunc(..., out=...)``), as gpuad holds them: NumPy's
default turns 0-d results into NumPy scalars, a path no array library takes.  Figures are
microseconds per op (per chain / 100).  Targets (issue 2): forward <= 1.5x, forward+gradient
<= 3x the NumPy floor.
"""
import numpy as np
import pytest

import gpuad as ad

N = 100  # ops per chain
ROUNDS = 200


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


def test_results_agree_with_float64_closed_form():
    x0 = 0.5
    value, grad = x0, 1.0
    for _ in range(N // 4):
        s = np.sin(value)
        t = np.tanh(s * 1.01 + 0.1)
        grad *= np.cos(value) * 1.01 * (1 - t * t)
        value = t
    y, g = gpuad_value_and_gradient(ad.constant(x0))
    np.testing.assert_allclose(float(y), value, rtol=1e-5)
    np.testing.assert_allclose(float(g), grad, rtol=1e-4)
    a, ga = numpy_value_and_gradient(np.array(x0, np.float32))
    np.testing.assert_allclose(float(ga), grad, rtol=1e-4)


IMPLS = {
    "forward": {"gpuad": (gpuad_forward, lambda: ad.constant(0.5)),
                "numpy-floor": (numpy_forward, lambda: np.array(0.5, np.float32)),
                "numpy-scalars (reference)": (numpy_scalar_forward,
                                              lambda: np.array(0.5, np.float32))},
    "forward+gradient": {"gpuad": (gpuad_value_and_gradient, lambda: ad.constant(0.5)),
                         "numpy-floor": (numpy_value_and_gradient,
                                         lambda: np.array(0.5, np.float32))},
}


@pytest.mark.parametrize("mode, impl", [(m, i) for m in IMPLS for i in IMPLS[m]])
def test_w1_tape_overhead(benchmark, mode, impl):
    fn, make = IMPLS[mode][impl]
    arg = make()
    with ad.backend("numpy"):
        benchmark.group = f"W1 {mode} (100-op scalar chain)"
        benchmark.extra_info.update(impl=impl, ops=N)
        benchmark.pedantic(fn, args=(arg,), rounds=ROUNDS, iterations=5, warmup_rounds=20)
