"""W4, an MLP training step: a 784-512-512-10 ReLU network, softmax cross-entropy averaged over
a batch of 256, float32; the loss and the gradients of all six parameters (no update).

gpuad: GradientTape over ad.Variable parameters, ad.nn.softmax_cross_entropy_with_logits.
Floor: the forward and the textbook backward (p - onehot, ReLU masks, three GEMMs per layer) in
NumPy.  Peers: torch (F.cross_entropy, autograd.grad), autograd and jax (value_and_grad of the
same loss written with logsumexp; jax under jit), TensorFlow (GradientTape over tf.Variables,
tf.nn.softmax_cross_entropy_with_logits, under tf.function).  Compiled: ``gpuad (function)``,
the same gpuad step under ``gpuad.function``, traced by a first call outside the timing (the
first call's cost, trace and code generation, in a fresh process: ``test_w4_first_call``;
its target is a ratio against the NumPy floor).  Checked against the floor's code run in
float64: each output within 1e-3 relative plus 1e-4 of its largest entry (the batch holds no
pre-activation within 1e-4 of 0, where float32 rounding could flip a ReLU mask).
"""
import functools
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import gpuad as ad
from benchlib import (NOTES, anp, autograd, check, first_call, interleaved_line, jax, jax_cpu,
                      jnp, require, tf, timed, torch, traced_once)

SIZES = [784, 512, 512, 10]
BATCH = 256


@functools.cache
def make_data():  # parameters, inputs, labels, one-hot labels, float64 loss and gradients
    rng = np.random.default_rng(0)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        params += [(rng.normal(size=(n_in, n_out)) * np.sqrt(2 / n_in)).astype(np.float32),
                   (rng.normal(size=n_out) * 0.1).astype(np.float32)]
    x = rng.uniform(0, 1, (BATCH, SIZES[0])).astype(np.float32)
    while True:  # redraw examples with a pre-activation within 1e-4 of ReLU's kink, where
        z, near = x.astype(np.float64), np.zeros(BATCH, bool)  # float32 rounding flips masks
        for w, b in zip(params[0:4:2], params[1:4:2]):
            z = z @ w + b
            near |= (np.abs(z) < 1e-4).any(1)
            z = np.maximum(z, 0)
        if not near.any():
            break
        x[near] = rng.uniform(0, 1, (near.sum(), SIZES[0]))
    labels = rng.integers(0, SIZES[-1], BATCH)
    onehot = np.eye(SIZES[-1], dtype=np.float32)[labels]
    want = numpy_floor([p.astype(np.float64) for p in params], x.astype(np.float64),
                       onehot.astype(np.float64))
    return params, x, labels, onehot, want


@pytest.fixture(scope="module")
def data():
    return make_data()


def numpy_floor(params, x, onehot, xp=np):  # xp=cupy on the GPU
    w1, b1, w2, b2, w3, b3 = params
    z1 = x @ w1 + b1
    h1 = xp.maximum(z1, 0)
    z2 = h1 @ w2 + b2
    h2 = xp.maximum(z2, 0)
    logits = h2 @ w3 + b3
    shifted = logits - logits.max(1, keepdims=True)
    e = xp.exp(shifted)
    total = e.sum(1, keepdims=True)
    loss = -(onehot * (shifted - xp.log(total))).sum(1).mean()
    d3 = (e / total - onehot) / x.shape[0]
    d2 = (d3 @ w3.T) * (z2 > 0)
    d1 = (d2 @ w2.T) * (z1 > 0)
    return [loss, x.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]


def gpuad_step(params, x, onehot):
    with ad.GradientTape() as tape:
        h = x
        for w, b in zip(params[0:4:2], params[1:4:2]):
            h = ad.nn.relu(ad.matmul(h, w) + b)
        logits = ad.matmul(h, params[4]) + params[5]
        loss = ad.reduce_mean(ad.nn.softmax_cross_entropy_with_logits(onehot, logits))
    return [loss] + list(tape.gradient(loss, params))


def torch_step(params, x, labels):
    h = x
    for w, b in zip(params[0:4:2], params[1:4:2]):
        h = torch.relu(h @ w + b)
    loss = torch.nn.functional.cross_entropy(h @ params[4] + params[5], labels)
    return [loss] + list(torch.autograd.grad(loss, params))


def tf_step(params, x, onehot):
    with tf.GradientTape() as tape:
        h = x
        for w, b in zip(params[0:4:2], params[1:4:2]):
            h = tf.nn.relu(tf.matmul(h, w) + b)
        logits = tf.matmul(h, params[4]) + params[5]
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, logits))
    return [loss] + list(tape.gradient(loss, params))


def peer_loss(np_, logsumexp):
    def loss(params, x, onehot):
        h = x
        for w, b in zip(params[0:4:2], params[1:4:2]):
            h = np_.maximum(np_.dot(h, w) + b, 0)
        logits = np_.dot(h, params[4]) + params[5]
        return -np_.mean(np_.sum(onehot * (logits - logsumexp(logits, 1, keepdims=True)), 1))
    return loss


def peer_step(value_and_grad):
    def step(params, x, onehot):
        loss, grads = value_and_grad(params, x, onehot)
        return [loss] + list(grads)
    return step


autograd_step = jax_step = None
if autograd is not None:
    from autograd.scipy.special import logsumexp
    autograd_step = peer_step(autograd.value_and_grad(peer_loss(anp, logsumexp)))
if jax is not None:
    jax_step = peer_step(jax.jit(jax.value_and_grad(peer_loss(jnp, jax.nn.logsumexp))))
IMPLS = {
    "gpuad": (gpuad_step, lambda p, x, labels, onehot: (
        [ad.Variable(a) for a in p], ad.constant(x), ad.constant(onehot))),
    "gpuad (function)": (ad.function(gpuad_step), lambda p, x, labels, onehot: (
        [ad.Variable(a) for a in p], ad.constant(x), ad.constant(onehot))),
    "numpy-floor": (numpy_floor, lambda p, x, labels, onehot: (p, x, onehot)),
    "torch": (torch_step, lambda p, x, labels, onehot: (
        [torch.tensor(a, requires_grad=True) for a in p], torch.tensor(x), torch.tensor(labels))),
    "autograd": (autograd_step, lambda p, x, labels, onehot: (p, x, onehot)),
    "jax": (jax_step, lambda p, x, labels, onehot: jax_cpu((list(p), x, onehot))),
    "tf.function": (tf and tf.function(tf_step), lambda p, x, labels, onehot: (
        [tf.Variable(a) for a in p], tf.constant(x), tf.constant(onehot))),
}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_w4_mlp(benchmark, impl, data):
    require(impl)
    fn, make = IMPLS[impl]
    params, x, labels, onehot, want = data
    with ad.backend("numpy"):
        args = make(params, x, labels, onehot)
        first_call(impl, fn, *args)
        check(impl, fn(*args), want, rtol=1e-3, atol=[1e-4 * np.abs(w).max() for w in want])
        timed(benchmark, "W4 MLP 784-512-512-10 step, batch 256, float32", impl, fn, *args)
        traced_once(impl, fn)


FIRST_CALL = """
import time
import gpuad as ad
from test_w4_mlp import IMPLS, make_data
with ad.backend("numpy"):
    params, x, labels, onehot, want = make_data()
    fn, make = IMPLS["gpuad (function)"]
    args = make(params, x, labels, onehot)
    start = time.perf_counter()
    fn(*args)
    first = time.perf_counter() - start
    times = []
    for f in [fn] * 5 + [IMPLS["gpuad"][0]] * 5:
        start = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - start)
print(first, sorted(times[:5])[2], sorted(times[5:])[2])
"""


def test_w4_interleaved_ratios(data, capsys):
    """gpuad, gpuad.function, the floor, jax and tf.function alternating call by call:
    medians of 20 rounds.  Not torch: its OpenMP threads spin for a while after each call,
    and NumPy's (OpenBLAS) GEMMs right after it took 2.4x their time on the 2-core machine."""
    params, x, labels, onehot, _ = data
    impls = {name: (IMPLS[name][0], lambda m=IMPLS[name][1]: m(params, x, labels, onehot))
             for name in ("gpuad", "gpuad (function)", "numpy-floor", "jax", "tf.function")}
    with ad.backend("numpy"):
        line = interleaved_line("W4 (ms)", impls, rounds=20, star=True)
    with capsys.disabled():
        print("\n" + line)


def test_w4_first_call(request, capsys):
    """The first call of the compiled step (trace: the eager step run observed, then the
    replay's code generated and compiled), timed in a fresh process without the peers, next
    to the median of 5 replays and of 5 eager steps that follow it."""
    if request.config._benchmarksession.disabled:
        pytest.skip("timing only (--benchmark-enable)")
    here = pathlib.Path(__file__).parent
    env = dict(os.environ, GPUAD_BENCH_NO_PEERS="1", PYTHONPATH=os.pathsep.join(
        [str(here), str(here.parent), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, capture_output=True,
                         text=True, check=True, timeout=300).stdout.split()
    first, replay, eager = (float(t) * 1e3 for t in out[-3:])
    NOTES.append(f"W4 first call of gpuad (function) in a fresh process (trace + code "
                 f"generation): {first:.1f} ms; then replay median {replay:.2f} ms, eager "
                 f"step median {eager:.2f} ms")
    with capsys.disabled():
        print("\n" + NOTES[-1])
