"""GPU benchmarks (marked gpu), each beside hand-written CuPy with an analytic backward (the
floor) and, when they import and see the GPU, torch on CUDA and jax on the GPU:

W1 tape overhead (the 100-op scalar chain; us per op), W3 large elementwise (value and gradient
of sum(sin(x)^2 exp(-x^2)), 1e8 float32), W4 the MLP training step (784-512-512-10, batch 256,
float32); each for gpuad eager and compiled (``gpuad (function)``, traced by the check's call);
and an Adam step over 100 float32 tensors of 1e5 against ``torch.optim.Adam(fused=True)``.  Each result is checked against float64 before it is timed; every timed call ends
with a device synchronize (cupy: Device().synchronize(), torch: torch.cuda.synchronize(),
jax: block_until_ready), and one runs before each round.  Run through benchmarks/gpu_check.sh.
"""
import functools

import numpy as np
import pytest

import gpuad as ad
from benchlib import check, jax, jnp, require, timed, torch
from gpuad import backends
from test_w1_tape_overhead import N, closed_form, gpuad_value_and_gradient, peer_forward, \
    torch_value_and_gradient
from test_optimizers import LR as ADAM_LR, N_TENSORS as ADAM_TENSORS, SIZE as ADAM_SIZE
from test_w4_mlp import gpuad_step, jax_step, make_data, numpy_floor, torch_step

pytestmark = pytest.mark.gpu
cp = backends.cupy
N3 = 10**8


def cupy_sync():
    cp.cuda.Device().synchronize()


def torch_sync():
    torch.cuda.synchronize()


@functools.cache
def jax_gpu():
    """The GPU jax computes on, or None (jax without a GPU backend, or one that fails)."""
    try:
        device = jax.devices("gpu")[0]
        jax.block_until_ready(jax.device_put(np.float32(1), device) + 1)
        return device
    except Exception:
        return None


def require_gpu(impl):
    """Skip a peer that is not installed or does not reach the GPU; return its synchronize."""
    require(impl)
    if impl == "torch-cuda":
        if not torch.cuda.is_available():
            pytest.skip("torch has no CUDA device")
        return torch_sync
    if impl == "jax-gpu":
        if jax_gpu() is None:
            pytest.skip("jax has no usable GPU backend")
        return cupy_sync  # outputs are blocked on by timed(); this syncs the device around
    return cupy_sync


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


def torch_w3(x):
    x = x.detach().requires_grad_()
    y = (torch.sin(x) ** 2 * torch.exp(-x * x)).sum()
    return y, torch.autograd.grad(y, x)[0]


def jax_f3(x):
    return jnp.sum(jnp.sin(x) ** 2 * jnp.exp(-x * x))


jax_w3 = jax and jax.jit(jax.value_and_grad(jax_f3))
W3_IMPLS = {"gpuad": (gpuad_w3, ad.convert_to_tensor),
            # traced by check()'s first call: the loss and gradient as one generated kernel
            "gpuad (function)": (ad.function(gpuad_w3), ad.convert_to_tensor),
            "cupy-floor": (cupy_w3, lambda x: x),
            "cupy-one-kernel (ideal)": (cupy_fused_w3, lambda x: x),
            "torch-cuda": (torch_w3, lambda x: torch.as_tensor(x, device="cuda")),
            "jax-gpu": (jax_w3, lambda x: jax.device_put(cp.asnumpy(x), jax_gpu()))}
STRIDE = 1000  # the gradient is checked on every 1000th element


@pytest.fixture(scope="module")
def x3():
    x = cp.random.default_rng(0).uniform(-2, 2, N3, dtype=cp.float32)
    x64 = x.astype(cp.float64)
    s, e = cp.sin(x64), cp.exp(-x64 * x64)
    want = [float((s * s * e).sum()),
            cp.asnumpy(((2 * s * cp.cos(x64) - 2 * x64 * s * s) * e)[::STRIDE])]
    return x, want


@pytest.mark.parametrize("impl", list(W3_IMPLS))
def test_w3_gpu(benchmark, impl, x3):
    sync = require_gpu(impl)
    fn, make = W3_IMPLS[impl]
    x, want = x3
    arg = make(x)
    y, g = fn(arg)
    check(impl, [y, (g.array if isinstance(g, ad.Tensor) else g)[::STRIDE]], want,
          rtol=1e-4, atol=3e-6)
    del y, g
    timed(benchmark, "W3 GPU value+gradient, 1e8 float32", impl, fn, arg, sync=sync)


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


W1_IMPLS = {"gpuad": (gpuad_value_and_gradient, lambda: ad.constant(0.5, backend="cupy")),
            "gpuad (function)": (ad.function(gpuad_value_and_gradient),
                                 lambda: ad.constant(0.5, backend="cupy")),
            "cupy-floor": (cupy_value_and_gradient, lambda: cp.asarray(0.5, cp.float32)),
            "torch-cuda": (torch_value_and_gradient,
                           lambda: torch.tensor(0.5, device="cuda")),
            "jax-gpu": (jax and jax.jit(jax.value_and_grad(peer_forward(jnp))),
                        lambda: jax.device_put(np.float32(0.5), jax_gpu()))}


@pytest.mark.parametrize("impl", list(W1_IMPLS))
def test_w1_gpu(benchmark, impl):
    sync = require_gpu(impl)
    fn, make = W1_IMPLS[impl]
    arg = make()
    check(impl, fn(arg), closed_form(), rtol=1e-4)
    timed(benchmark, "W1 GPU forward+gradient (100-op scalar chain)", impl, fn, arg, ops=N,
          sync=sync)


W4_IMPLS = {"gpuad": (gpuad_step, lambda p, x, labels, onehot: (
                [ad.Variable(cp.asarray(a)) for a in p], ad.constant(cp.asarray(x)),
                ad.constant(cp.asarray(onehot)))),
            "gpuad (function)": (ad.function(gpuad_step), lambda p, x, labels, onehot: (
                [ad.Variable(cp.asarray(a)) for a in p], ad.constant(cp.asarray(x)),
                ad.constant(cp.asarray(onehot)))),
            "cupy-floor": (lambda p, x, onehot: numpy_floor(p, x, onehot, xp=cp),
                           lambda p, x, labels, onehot: (
                               [cp.asarray(a) for a in p], cp.asarray(x), cp.asarray(onehot))),
            "torch-cuda": (torch_step, lambda p, x, labels, onehot: (
                [torch.tensor(a, device="cuda", requires_grad=True) for a in p],
                torch.tensor(x, device="cuda"), torch.tensor(labels, device="cuda"))),
            "jax-gpu": (jax_step, lambda p, x, labels, onehot: jax.device_put(
                (list(p), x, onehot), jax_gpu()))}


@pytest.mark.parametrize("impl", list(W4_IMPLS))
def test_w4_gpu(benchmark, impl):
    sync = require_gpu(impl)
    fn, make = W4_IMPLS[impl]
    params, x, labels, onehot, want = make_data()
    args = make(params, x, labels, onehot)
    # TF32 GEMMs would fail this check: off by default in cupy and torch, and jax is set to
    # "highest" matmul precision in benchlib.py
    check(impl, fn(*args), want, rtol=1e-3, atol=[1e-4 * np.abs(w).max() for w in want])
    timed(benchmark, "W4 GPU MLP 784-512-512-10 step, batch 256, float32", impl, fn, *args,
          sync=sync)


# ------------------------------------------------------- the optimizer step (issue 15)

@functools.cache
def adam_data():
    """test_optimizers.py's 100 float32 tensors of 1e5 and their gradients, with the first
    step's closed forms in float64: Keras's (gpuad) and torch's (epsilon after the bias
    correction)."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(ADAM_SIZE).astype(np.float32) for _ in range(ADAM_TENSORS)]
    grads = [rng.standard_normal(ADAM_SIZE).astype(np.float32) for _ in range(ADAM_TENSORS)]
    alpha = ADAM_LR * np.sqrt(1 - 0.999) / (1 - 0.9)
    keras = [p - 0.1 * g * alpha / (np.sqrt(0.001 * g.astype(np.float64) ** 2) + 1e-7)
             for p, g in zip(params, grads)]
    torch_first = [p - ADAM_LR * g / (np.abs(g.astype(np.float64)) + 1e-7)
                   for p, g in zip(params, grads)]
    return params, grads, {"gpuad": keras, "torch-cuda": torch_first}


def gpuad_adam_gpu(params, grads):
    variables = [ad.Variable(cp.asarray(p)) for p in params]
    gradients = [ad.constant(cp.asarray(g)) for g in grads]
    with ad.backend("cupy"):  # the step counter and learning rate on the GPU too
        opt = ad.optimizers.Adam(learning_rate=ADAM_LR)
    return (lambda: opt.apply_gradients(zip(gradients, variables))), variables


def torch_adam_gpu(params, grads):
    tensors = [torch.nn.Parameter(torch.from_numpy(p.copy()).cuda()) for p in params]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g.copy()).cuda()
    opt = torch.optim.Adam(tensors, lr=ADAM_LR, eps=1e-7, fused=True)
    return opt.step, tensors


@pytest.mark.parametrize("impl", ["gpuad", "torch-cuda"])
def test_adam_step_gpu(benchmark, impl):
    """Target (issue 15): gpuad's Adam (one generated kernel per variable) <= 1.0x
    torch.optim.Adam(fused=True)."""
    sync = require_gpu(impl)
    params, grads, want = adam_data()
    step, state = (gpuad_adam_gpu if impl == "gpuad" else torch_adam_gpu)(params, grads)
    step()
    sync()
    check(impl, state, want[impl], rtol=1e-5, atol=1e-7)
    timed(benchmark, "GPU optimizer: Adam step, 100 x 1e5 float32", impl, step, sync=sync)
