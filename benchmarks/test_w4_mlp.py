"""W4, an MLP training step: a 784-512-512-10 ReLU network, softmax cross-entropy averaged over
a batch of 256, float32; the loss and the gradients of all six parameters (no update).

gpuad: GradientTape over ad.Variable parameters, ad.nn.softmax_cross_entropy_with_logits.
Floor: the forward and the textbook backward (p - onehot, ReLU masks, three GEMMs per layer) in
NumPy.  Peers: torch (F.cross_entropy, autograd.grad), autograd and jax (value_and_grad of the
same loss written with logsumexp; jax under jit).  Checked against the floor's code run in
float64: each output within 1e-3 relative plus 1e-4 of its largest entry (the batch holds no
pre-activation within 1e-4 of 0, where float32 rounding could flip a ReLU mask).
"""
import functools

import numpy as np
import pytest

import gpuad as ad
from benchlib import anp, autograd, check, jax, jax_cpu, jnp, require, timed, torch

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
    "numpy-floor": (numpy_floor, lambda p, x, labels, onehot: (p, x, onehot)),
    "torch": (torch_step, lambda p, x, labels, onehot: (
        [torch.tensor(a, requires_grad=True) for a in p], torch.tensor(x), torch.tensor(labels))),
    "autograd": (autograd_step, lambda p, x, labels, onehot: (p, x, onehot)),
    "jax": (jax_step, lambda p, x, labels, onehot: jax_cpu((list(p), x, onehot))),
}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_w4_mlp(benchmark, impl, data):
    require(impl)
    fn, make = IMPLS[impl]
    params, x, labels, onehot, want = data
    with ad.backend("numpy"):
        args = make(params, x, labels, onehot)
        check(impl, fn(*args), want, rtol=1e-3, atol=[1e-4 * np.abs(w).max() for w in want])
        timed(benchmark, "W4 MLP 784-512-512-10 step, batch 256, float32", impl, fn, *args)
