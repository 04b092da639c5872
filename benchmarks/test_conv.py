"""Conv2d: the forward and both gradients (input and filters) of a 3x3, 64 -> 64-channel
convolution of 32 images of 32x32, float32, SAME padding, stride 1; the cotangent is given.

gpuad: ``ad.nn.conv2d`` in NHWC (TensorFlow's layout) under a GradientTape.  Floor: NumPy by
hand, im2col of x and of g (two copies) and one GEMM for the forward and each gradient.
Peers: torch (``F.conv2d`` + ``autograd.grad``) in NCHW, its native layout (the transposes
are done before the timing), tf.function (``tf.nn.conv2d``, NHWC) and jax
(``lax.conv_general_dilated``, NHWC, under jit).  Checked against the floor's code run in
float64: each output within 1e-3 relative plus 1e-3 of its largest entry.
"""
import functools

import numpy as np
import pytest

import gpuad as ad
from benchlib import (check, first_call, interleaved_line, jax, jax_cpu, require, tf, timed,
                      torch, traced_once)

BATCH, SIZE, CHANNELS, K = 32, 32, 64, 3
GROUP = "conv2d 3x3 64->64, 32 images 32x32, float32: forward + both gradients"


def _rows(a):
    """im2col: the 3x3 windows of ``a`` (SAME: padded by 1), one row each, taps then channels."""
    n, h, wd, c = a.shape
    a = np.pad(a, ((0, 0), (1, 1), (1, 1), (0, 0)))
    s = a.strides
    windows = np.lib.stride_tricks.as_strided(a, (n, h, wd, K, K, c), s[:3] + s[1:])
    return windows.reshape(n * h * wd, K * K * c)  # one copy


def numpy_floor(x, w, g):
    """y = conv(x, w) SAME and the gradients of <g, y> by hand: im2col, then one GEMM each
    (the input's gradient: g's windows times the flipped filter, its channels swapped)."""
    c, co = w.shape[2:]
    rows, g2 = _rows(x), g.reshape(-1, co)
    y = rows @ w.reshape(-1, co)
    gw = (rows.T @ g2).reshape(w.shape)
    gx = _rows(g) @ w[::-1, ::-1].transpose(0, 1, 3, 2).reshape(-1, c)
    return [y.reshape(g.shape), gx.reshape(x.shape), gw]


@functools.cache
def make_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZE, SIZE, CHANNELS)).astype(np.float32)
    w = (rng.standard_normal((K, K, CHANNELS, CHANNELS)) / np.sqrt(K * K * CHANNELS)).astype(
        np.float32)
    g = rng.standard_normal((BATCH, SIZE, SIZE, CHANNELS)).astype(np.float32)
    want = numpy_floor(x.astype(np.float64), w.astype(np.float64), g.astype(np.float64))
    return x, w, g, want


@pytest.fixture(scope="module")
def data():
    return make_data()


def gpuad_step(x, w, g):
    with ad.GradientTape() as tape:
        tape.watch([x, w])
        y = ad.nn.conv2d(x, w, 1, "SAME")
    return [y] + tape.gradient(y, [x, w], output_gradients=g)


def torch_step(x, w, g):  # NCHW, OIHW
    y = torch.nn.functional.conv2d(x, w, padding=1)
    return [y] + list(torch.autograd.grad(y, (x, w), g))


def tf_step(x, w, g):
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        y = tf.nn.conv2d(x, w, 1, "SAME")
    return [y] + tape.gradient(y, [x, w], output_gradients=g)


def jax_step(x, w, g):
    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y, pullback = jax.vjp(conv, x, w)
    return [y] + list(pullback(g))


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


IMPLS = {
    "gpuad": (gpuad_step, lambda x, w, g: (ad.constant(x), ad.constant(w), ad.constant(g))),
    "gpuad (function)": (ad.function(gpuad_step), lambda x, w, g: (
        ad.constant(x), ad.constant(w), ad.constant(g))),
    "numpy-floor": (numpy_floor, lambda x, w, g: (x, w, g)),
    "torch": (torch_step, lambda x, w, g: (
        torch.tensor(_nchw(x), requires_grad=True),
        torch.tensor(np.ascontiguousarray(w.transpose(3, 2, 0, 1)), requires_grad=True),
        torch.tensor(_nchw(g)))),
    "tf.function": (tf and tf.function(tf_step), lambda x, w, g: (
        tf.constant(x), tf.constant(w), tf.constant(g))),
    "jax": (jax and jax.jit(jax_step), lambda x, w, g: jax_cpu((x, w, g))),
}


def _as_nhwc(impl, outputs):
    """torch's outputs back in the layout of the others (after the timing)."""
    if not impl.startswith("torch"):
        return outputs
    y, gx, gw = [o.detach().numpy() for o in outputs]
    return [y.transpose(0, 2, 3, 1), gx.transpose(0, 2, 3, 1), gw.transpose(2, 3, 1, 0)]


@pytest.mark.parametrize("impl", list(IMPLS))
def test_conv2d(benchmark, impl, data):
    require(impl)
    fn, make = IMPLS[impl]
    x, w, g, want = data
    with ad.backend("numpy"):
        args = make(x, w, g)
        first_call(impl, fn, *args)
        check(impl, _as_nhwc(impl, fn(*args)), want, rtol=1e-3,
              atol=[1e-3 * np.abs(v).max() for v in want])
        timed(benchmark, GROUP, impl, fn, *args, max_rounds=50)
        traced_once(impl, fn)


def test_conv2d_interleaved_ratios(data, capsys):
    """gpuad, gpuad.function, the floor and torch alternating call by call: medians of 10
    rounds (torch's OpenMP threads spin a while after each of its calls, which can slow the
    NumPy GEMM that follows: see benchmarks/README.md)."""
    x, w, g, _ = data
    impls = {name: (IMPLS[name][0], lambda m=IMPLS[name][1]: m(x, w, g))
             for name in ("gpuad", "gpuad (function)", "numpy-floor", "torch")}
    with ad.backend("numpy"):
        line = interleaved_line("conv2d (ms)", impls, rounds=10, star=True)
    with capsys.disabled():
        print("\n" + line)
