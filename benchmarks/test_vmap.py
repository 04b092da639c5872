"""Per-example gradients: a 784-128-10 MLP (tanh, softmax cross-entropy of one example),
batch 256, float32, CPU; the gradients of the four parameters for every example.

gpuad: ``ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))``, one batched pass (``gpuad``), and the
same ``ad.grad(loss)`` in a Python loop over the examples (``gpuad (loop)``).  Floor: the
closed-form per-example gradients in NumPy (outer products by broadcasting).  Peers:
``torch.func.vmap(torch.func.grad(loss))`` (the reference) and ``jax.vmap(jax.grad(loss))``
under jit.  Checked against the closed form in float64.
"""
import functools

import numpy as np
import pytest

import gpuad as ad
from benchlib import check, interleaved_line, jax, jax_cpu, jnp, require, timed, torch

SIZES = (784, 128, 10)
BATCH = 256
GROUP = "vmap: per-example gradients, MLP 784-128-10, batch 256, float32"


@functools.cache
def make_data():  # w1, b1, w2, b2, inputs, one-hot labels, float64 per-example gradients
    rng = np.random.default_rng(0)
    w1 = (rng.normal(size=SIZES[:2]) / np.sqrt(SIZES[0])).astype(np.float32)
    b1 = (rng.normal(size=SIZES[1]) * 0.1).astype(np.float32)
    w2 = (rng.normal(size=SIZES[1:]) / np.sqrt(SIZES[1])).astype(np.float32)
    b2 = (rng.normal(size=SIZES[2]) * 0.1).astype(np.float32)
    x = rng.uniform(0, 1, (BATCH, SIZES[0])).astype(np.float32)
    onehot = np.eye(SIZES[2], dtype=np.float32)[rng.integers(0, SIZES[2], BATCH)]
    params = [w1, b1, w2, b2]
    want = numpy_floor([p.astype(np.float64) for p in params], x.astype(np.float64),
                       onehot.astype(np.float64))
    return params, x, onehot, want


def numpy_floor(params, x, onehot):
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    e = np.exp(logits - logits.max(1, keepdims=True))
    d2 = e / e.sum(1, keepdims=True) - onehot  # d loss / d logits, per example
    d1 = (d2 @ w2.T) * (1 - h * h)
    return [x[:, :, None] * d1[:, None, :], d1, h[:, :, None] * d2[:, None, :], d2]


def gpuad_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = ad.tanh(ad.matmul(x, w1) + b1)
    return ad.nn.softmax_cross_entropy_with_logits(y, ad.matmul(h, w2) + b2)


gpuad_per_example = ad.vmap(ad.grad(gpuad_loss), in_axes=(None, 0, 0))


def gpuad_loop(params, xs, ys):
    grads = [ad.grad(gpuad_loss)(params, x, y) for x, y in zip(ad.unstack(xs), ad.unstack(ys))]
    return [ad.stack(g) for g in zip(*grads)]


torch_per_example = jax_per_example = None
if torch is not None:
    def torch_loss(params, x, y):
        w1, b1, w2, b2 = params
        h = torch.tanh(x @ w1 + b1)
        return -(y * torch.log_softmax(h @ w2 + b2, -1)).sum()
    torch_per_example = torch.func.vmap(torch.func.grad(torch_loss), in_dims=(None, 0, 0))
if jax is not None:
    def jax_loss(params, x, y):
        w1, b1, w2, b2 = params
        h = jnp.tanh(x @ w1 + b1)
        return -(y * jax.nn.log_softmax(h @ w2 + b2)).sum()
    jax_per_example = jax.jit(jax.vmap(jax.grad(jax_loss), in_axes=(None, 0, 0)))


def _gpuad_args(p, x, onehot):
    return [ad.constant(a) for a in p], ad.constant(x), ad.constant(onehot)


IMPLS = {
    "gpuad": (gpuad_per_example, _gpuad_args),
    "gpuad (loop)": (gpuad_loop, _gpuad_args),
    "numpy-floor": (numpy_floor, lambda p, x, onehot: (p, x, onehot)),
    "torch": (torch_per_example, lambda p, x, onehot: (
        [torch.tensor(a) for a in p], torch.tensor(x), torch.tensor(onehot))),
    "jax": (jax_per_example, lambda p, x, onehot: jax_cpu((list(p), x, onehot))),
}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_vmap_per_example_gradients(benchmark, impl):
    require(impl)
    fn, make = IMPLS[impl]
    params, x, onehot, want = make_data()
    with ad.backend("numpy"):
        args = make(params, x, onehot)
        check(impl, list(fn(*args)), want, rtol=1e-3,
              atol=[1e-5 * np.abs(w).max() for w in want])
        timed(benchmark, GROUP, impl, fn, *args)


def test_vmap_interleaved_ratios(request, capsys):
    """gpuad, its loop, the floor and torch alternating call by call: medians of 20 rounds."""
    if request.config._benchmarksession.disabled:
        pytest.skip("timing only (--benchmark-enable)")
    params, x, onehot, _ = make_data()
    impls = {name: (IMPLS[name][0], lambda m=IMPLS[name][1]: m(params, x, onehot))
             for name in ("gpuad", "gpuad (loop)", "numpy-floor", "torch")}
    with ad.backend("numpy"):
        line = interleaved_line("vmap per-example gradients (ms)", impls, rounds=20, star=True)
    with capsys.disabled():
        print("\n" + line)
