"""float16 through every derivative-table op, the reductions (accumulated in float32, as
TensorFlow), matmul and cast, against float64 references at float16 tolerances."""
import numpy as np
import pytest

import gpuad as ad
from test_table import ENTRIES, sample

DIFFERENTIABLE = sorted(name for name, entry in ENTRIES.items() if entry.partials)


def value_and_gradients(op, arrays, dtype):
    tensors = [ad.constant(a if a.dtype == bool else a.astype(dtype)) for a in arrays]
    floats = [t for t in tensors if t.dtype != bool]
    with ad.GradientTape() as tape:
        tape.watch(floats)
        out = op(*tensors)
        loss = ad.reduce_sum(out * out)
    return out, tape.gradient(loss, floats)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_table_op_in_float16_matches_float64(name):
    arrays = sample(name, [(8,)] * len(ENTRIES[name].inputs), np.float64, seed=3)
    op = getattr(ad, name)
    out, grads = value_and_gradients(op, arrays, np.float16)
    want, want_grads = value_and_gradients(op, arrays, np.float64)
    assert out.dtype == np.float16 and all(g is None or g.dtype == np.float16 for g in grads)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=4e-3, atol=2e-3)
    for g, w in zip(grads, want_grads):  # a few float16 roundings deep
        if w is None:  # leaky_relu's alpha
            continue
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=2e-2, atol=2e-2 *
                                   np.abs(w.numpy()).max())


def test_reductions_accumulate_in_float32():
    x = np.full(20000, 0.1, np.float16)  # a float16 running sum stalls at 256
    assert ad.reduce_sum(ad.constant(x)).dtype == np.float16
    want = x.astype(np.float64).sum()
    assert abs(float(ad.reduce_sum(ad.constant(x))) - want) <= 2.0  # one float16 ulp at 2000
    mean = ad.reduce_mean(ad.constant(np.full(70000, 2.0, np.float16)))  # the sum overflows
    assert mean.dtype == np.float16 and float(mean) == 2.0
    a = np.random.default_rng(0).uniform(-1, 1, (64, 512))
    b = np.random.default_rng(1).uniform(-1, 1, (512, 8))
    got = ad.matmul(ad.constant(a.astype(np.float16)), ad.constant(b.astype(np.float16)))
    want = a.astype(np.float16).astype(np.float64) @ b.astype(np.float16).astype(np.float64)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-3, atol=2e-2)


def test_reduction_and_matmul_gradients_in_float16():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4, 2))
    cases = [lambda x, y: ad.matmul(x, y), lambda x, y: ad.reduce_mean(x, axis=0) * 2.0,
             lambda x, y: ad.reduce_prod(x, axis=1), lambda x, y: ad.einsum("ij,jk->ik", x, y),
             lambda x, y: ad.reduce_sum(x, axis=1) + ad.reduce_max(x, axis=1)]
    for case in cases:
        out, grads = value_and_gradients(case, [a, b], np.float16)
        want, want_grads = value_and_gradients(case, [a, b], np.float64)
        assert out.dtype == np.float16
        np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-2, atol=1e-2)
        for g, w in zip(grads, want_grads):
            if w is not None:
                np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=2e-2, atol=2e-2)


def test_cast_between_float16_and_float32_is_differentiable():
    x = ad.constant([0.5, -1.5], dtype="float16")
    with ad.GradientTape() as tape:
        tape.watch(x)
        wide = ad.cast(x, "float32")
        y = ad.reduce_sum(ad.cast(ad.sin(wide) * wide, "float16"))
    g = tape.gradient(y, x)
    assert g.dtype == np.float16
    v = np.array([0.5, -1.5])
    np.testing.assert_allclose(g.numpy(), np.cos(v) * v + np.sin(v), rtol=2e-3)
    with ad.ForwardAccumulator(x, ad.constant([1.0, 1.0], dtype="float16")) as acc:
        z = ad.cast(ad.cast(x, "float32") ** 2, "float16")
    assert acc.jvp(z).dtype == np.float16
    np.testing.assert_allclose(acc.jvp(z).numpy(), 2 * v, rtol=1e-3)


def test_compiled_function_in_float16():
    x = ad.constant(np.random.default_rng(4).uniform(-2, 2, 1 << 17).astype(np.float16))

    def step(x):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
        return y, tape.gradient(y, x)
    (y, g), (y_eager, g_eager) = ad.function(step)(x), step(x)
    assert g.dtype == np.float16 and y.dtype == np.float16
    np.testing.assert_allclose(float(y), float(y_eager), rtol=1e-2)
    np.testing.assert_allclose(g.numpy(), g_eager.numpy(), rtol=1e-2, atol=1e-2)


@pytest.mark.gpu
def test_cupy_matches_numpy_in_float16():
    """On CuPy float16 kernels load float16, compute in float and store float16."""
    x = np.random.default_rng(6).uniform(-2, 2, 100_000).astype(np.float16)
    results = {}
    for backend in ("numpy", "cupy"):
        t = ad.constant(x, backend=backend)
        with ad.GradientTape() as tape:
            tape.watch(t)
            y = ad.reduce_sum(ad.sin(t) ** 2 * ad.exp(-t * t) + ad.softplus(t))
        results[backend] = (y.numpy(), tape.gradient(y, t).numpy())
    assert results["cupy"][1].dtype == np.float16
    np.testing.assert_allclose(results["cupy"][0], results["numpy"][0], rtol=1e-2)
    np.testing.assert_allclose(results["cupy"][1], results["numpy"][1], rtol=1e-2, atol=1e-2)
