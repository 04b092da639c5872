"""ad.function's native CPU kernels (gpuad.native, numba): a replay that is one elementwise
program over one shape runs as one compiled loop, kept in a private disk cache; results as
eager's (each operation rounded to its dtype), and NumPy's code where numba is absent or fails.
"""
import stat

import numpy as np
import pytest

import gpuad as ad
from gpuad import native

if native.numba is None:
    pytest.skip("numba is not installed (pip install 'gpuad[numba]')", allow_module_level=True)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test its own cache directory and its own generated modules."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native, "enabled", True)
    return tmp_path / "gpuad" / "numba"


def chain_and_gradient(x):
    """W1's chain (sin, a product, a sum, tanh) and its gradient: all elementwise."""
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = x
        for _ in range(5):
            y = ad.tanh(ad.sin(y) * 1.01 + 0.1)
        y = ad.where(y > 0.3, ad.sqrt(y), ad.maximum(y, -y) * 2.0)
    return y, tape.gradient(y, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (100,)])
def test_a_program_replays_as_one_native_kernel(shape, dtype):
    compiled = ad.function(chain_and_gradient)
    rng = np.random.default_rng(0)
    for _ in range(3):  # the trace, then replays with other values
        x = ad.constant(rng.uniform(-1.5, 1.5, shape).astype(dtype))
        for got, want in zip(compiled(x), chain_and_gradient(x)):
            assert got.dtype == want.dtype and got.shape == want.shape
            # float32: each operation here is rounded from a float64 result, where NumPy's
            # float32 sin, tanh, ... are a few ulp off; over a chain that adds up to ~1e-5
            scale = float(np.abs(want.numpy()).max())
            np.testing.assert_allclose(got.numpy(), want.numpy(),
                                       rtol=1e-4 if dtype == np.float32 else 1e-12,
                                       atol=(1e-6 if dtype == np.float32 else 1e-14) * scale)
    text = compiled.explain(x)
    assert "calls per call: 1;" in text and "native_kernel(" in text
    assert compiled.experimental_get_tracing_count() == 1


def test_the_kernel_lives_in_a_private_cache_and_a_foreign_file_is_rewritten(private_cache):
    x = ad.constant(np.float32(0.3))
    ad.function(chain_and_gradient)(x)
    (module,) = private_cache.glob("gpuad_kernel_*.py")
    for folder in (private_cache, private_cache.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    source = module.read_text()
    assert "def kernel(n," in source and "numba.njit(cache=True" in source
    module.write_text("raise RuntimeError('not gpuad code')\n")  # a foreign file, same name
    for name in [n for n in list(__import__("sys").modules) if n == module.stem]:
        del __import__("sys").modules[name]
    y, g = ad.function(chain_and_gradient)(x)  # rewritten from the expected source, not run
    assert module.read_text() == source
    np.testing.assert_allclose(g.numpy(), chain_and_gradient(x)[1].numpy(), rtol=1e-5)


def test_without_numba_the_numpy_program_runs(monkeypatch):
    monkeypatch.setattr(native, "enabled", False)
    compiled = ad.function(chain_and_gradient)
    x = ad.constant(np.linspace(-1, 1, 7, dtype=np.float32))
    for got, want in zip(compiled(x), chain_and_gradient(x)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5)
    assert "native_kernel" not in compiled.explain(x)


def test_a_kernel_numba_cannot_compile_warns_once_and_numpy_runs_it(monkeypatch):
    monkeypatch.setattr(native, "_warned", False)
    monkeypatch.setitem(native._SCALAR, "sin", "no_such_function({0})")
    compiled = ad.function(chain_and_gradient)
    x = ad.constant(np.linspace(-1, 1, 5))
    with pytest.warns(UserWarning, match="numba could not compile"):
        got = compiled(x)
    for g, w in zip(got, chain_and_gradient(x)):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12)
    assert "native_kernel" not in compiled.explain(x)
