"""Optimizer step on the CPU: one Adam step over 100 float32 tensors of 1e5 elements each
(gradients given), gpuad's ``ad.optimizers.Adam.apply_gradients`` against
``torch.optim.Adam(foreach=True)``; floor: the same update hand-written as in-place NumPy
ufuncs.  Each implementation's first step from the same state is checked in float64 before
it is timed: gpuad and the floor against Keras's Adam equations, torch against its own
(epsilon added after the bias correction).  Target: gpuad <= 1.0x torch.
"""
import math

import numpy as np
import pytest

import gpuad as ad
from benchlib import check, interleaved_line, require, timed, torch

N_TENSORS, SIZE, LR = 100, 10**5, 1e-3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(SIZE).astype(np.float32) for _ in range(N_TENSORS)]
    grads = [rng.standard_normal(SIZE).astype(np.float32) for _ in range(N_TENSORS)]
    # Keras's first Adam step in float64: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(.001) / .1
    alpha = LR * math.sqrt(1 - 0.999) / (1 - 0.9)
    g64 = [g.astype(np.float64) for g in grads]
    want = [p - 0.1 * g * alpha / (np.sqrt(0.001 * g ** 2) + 1e-7) for p, g in zip(params, g64)]
    # torch adds epsilon after the bias correction: p - lr m_hat / (sqrt(v_hat) + eps)
    want_torch = [p - LR * g / (np.abs(g) + 1e-7) for p, g in zip(params, g64)]
    return params, grads, {"torch": want_torch}, want


def gpuad_adam(params, grads):
    variables = [ad.Variable(p) for p in params]
    gradients = [ad.constant(g) for g in grads]
    opt = ad.optimizers.Adam(learning_rate=LR)
    return (lambda: opt.apply_gradients(zip(gradients, variables))), variables


def torch_adam(params, grads):
    tensors = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g.copy())
    opt = torch.optim.Adam(tensors, lr=LR, eps=1e-7, foreach=True)
    return opt.step, tensors


def numpy_floor(params, grads):
    ps = [p.copy() for p in params]
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    scratch = np.empty(SIZE, np.float32)
    count = [0]

    def step():
        count[0] += 1
        alpha = LR * math.sqrt(1 - 0.999 ** count[0]) / (1 - 0.9 ** count[0])
        for p, g, m, v in zip(ps, grads, ms, vs):
            np.subtract(g, m, out=scratch)
            np.multiply(scratch, 0.1, out=scratch)
            np.add(m, scratch, out=m)
            np.multiply(g, g, out=scratch)
            np.subtract(scratch, v, out=scratch)
            np.multiply(scratch, 0.001, out=scratch)
            np.add(v, scratch, out=v)
            np.sqrt(v, out=scratch)
            np.add(scratch, 1e-7, out=scratch)
            np.divide(m, scratch, out=scratch)
            np.multiply(scratch, alpha, out=scratch)
            np.subtract(p, scratch, out=p)
    return step, ps


IMPLS = {"gpuad": gpuad_adam, "torch": torch_adam, "numpy-floor": numpy_floor}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_adam_step(benchmark, impl, data):
    require(impl)
    params, grads, peer_want, want = data
    step, state = IMPLS[impl](params, grads)
    step()
    check(impl, state, peer_want.get(impl, want), rtol=1e-5, atol=1e-7)
    timed(benchmark, "optimizer: Adam step, 100 x 1e5 float32", impl, step)


def test_adam_interleaved_ratios(data, capsys):
    params, grads, _, _ = data
    impls = {name: ((lambda step: step()), (lambda make=make: make(params, grads)[0]))
             for name, make in IMPLS.items()}
    with capsys.disabled():
        print("\n" + interleaved_line("Adam step, 100 x 1e5 float32", impls, rounds=15))
