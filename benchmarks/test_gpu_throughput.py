"""GPU benchmarks (marked gpu): W3 large elementwise (1e8 float32) and W1 tape overhead on CuPy,
each beside hand-written CuPy with an analytic backward (the floor).  Every timed call ends
with a device synchronize.  Run through benchmarks/gpu_check.sh on a CUDA machine.
"""
import numpy as np
import pytest

import gpuad as ad
from gpuad import backends

pytestmark = pytest.mark.gpu
cp = backends.cupy
N3 = 10**8


def sync(fn):
    def run(*args):
        out = fn(*args)
        cp.cuda.Device().synchronize()
        return out
    return run


def gpuad_w3(x):
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
    return y, tape.gradient(y, x)


def cupy_w3(x):  # natural CuPy: forward with ufuncs, analytic backward with ufuncs
    s = cp.sin(x)
    e = cp.exp(-x * x)
    y = (s * s * e).sum()
    g = (2 * s * cp.cos(x) - 2 * x * s * s) * e
    return y, g


_fused = None


def cupy_fused_w3(x):  # one kernel for the gradient, one reduction for the value: the ideal
    global _fused
    if _fused is None:
        _fused = cp.ElementwiseKernel(
            "T x", "T g", "T s = sin(x); T e = exp(-x * x); g = (T(2) * s * cos(x) - "
            "T(2) * x * s * s) * e;", "w3_grad")
    y = cp.sum(cp.sin(x) ** 2 * cp.exp(-x * x))
    return y, _fused(x)


@pytest.fixture(scope="module")
def x3():
    return cp.random.default_rng(0).uniform(-2, 2, N3, dtype=cp.float32)


@pytest.mark.parametrize("impl", ["gpuad", "cupy-floor", "cupy-one-kernel (ideal)"])
def test_w3_gpu(benchmark, impl, x3):
    fn = {"gpuad": lambda: gpuad_w3(_tensor(x3)),
          "cupy-floor": lambda: cupy_w3(x3), "cupy-one-kernel (ideal)": lambda: cupy_fused_w3(x3)}
    run = sync(fn[impl])
    y, g = run()
    g = g.array if isinstance(g, ad.Tensor) else g
    sample = cp.asnumpy(x3[:100000]).astype(np.float64)
    want = (2 * np.sin(sample) * np.cos(sample) - 2 * sample * np.sin(sample) ** 2) * \
        np.exp(-sample ** 2)
    np.testing.assert_allclose(cp.asnumpy(g[:100000]), want, atol=3e-6)
    benchmark.group = "W3 GPU value+gradient, 1e8 float32"
    benchmark.extra_info.update(impl=impl)
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=2)


def _tensor(array):
    return ad.convert_to_tensor(array)


@pytest.mark.parametrize("impl", ["gpuad", "cupy-floor"])
def test_w1_gpu(benchmark, impl):
    from test_w1_tape_overhead import N, gpuad_value_and_gradient

    def cupy_value_and_gradient(a):
        saved = []
        for _ in range(N // 4):
            saved.append(a)
            a = cp.tanh(cp.sin(a) * 1.01 + 0.1)
            saved.append(a)
        g = cp.ones_like(a)
        for i in range(N // 4 - 1, -1, -1):
            x_in, t_out = saved[2 * i], saved[2 * i + 1]
            g = g * (1 - t_out * t_out) * 1.01 * cp.cos(x_in)
        return a, g
    fn = {"gpuad": lambda: gpuad_value_and_gradient(ad.constant(0.5, backend="cupy")),
          "cupy-floor": lambda: cupy_value_and_gradient(cp.asarray(0.5, cp.float32))}[impl]
    run = sync(fn)
    run()
    benchmark.group = "W1 GPU forward+gradient (100-op scalar chain)"
    benchmark.extra_info.update(impl=impl, ops=N)
    benchmark.pedantic(run, rounds=30, iterations=1, warmup_rounds=3)
