"""The CuPy backend on a GPU (marked gpu: skipped without a CUDA device).

The derivative-table entries are checked on CuPy by tests/test_table.py; here: the other ops,
the fused-kernel path, float32 agreement with NumPy, the seed programs, backend mixing.
"""
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpuad as ad
from gpuad import backends, cuda
from gpuad.testing import check_gradients
from test_ops import CASES

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("f, args", CASES)
def test_ops_gradients_on_cupy(f, args):
    args = [ad.constant(a, backend="cupy") for a in args]
    assert f(*args).backend == "cupy"
    check_gradients(f, args, order=1)
    check_gradients(f, args, order=2)


def w3(x):
    return ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))


def test_backward_runs_fused_kernels_and_matches_numpy_in_float32():
    host = np.random.default_rng(0).uniform(-2, 2, 100_000).astype(np.float32)
    grads = {}
    for name in ("numpy", "cupy"):
        x = ad.constant(host, backend=name)
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = w3(x)
        grads[name] = tape.gradient(y, x)
        assert grads[name].backend == name and grads[name].dtype == np.float32
    launched = {(key[0] if isinstance(key, tuple) else key).name for key in cuda._kernel_cache}
    assert {"gpuad_vjp_sin_x", "gpuad_vjp_exp_x", "gpuad_vjp_multiply_x_y"} <= launched
    x64 = host.astype(np.float64)
    closed_form = (2 * np.sin(x64) * np.cos(x64) - 2 * x64 * np.sin(x64) ** 2) * np.exp(-x64 ** 2)
    np.testing.assert_allclose(grads["cupy"].numpy(), closed_form, atol=2e-6)
    np.testing.assert_allclose(grads["cupy"].numpy(), grads["numpy"].numpy(), atol=2e-6)


def test_seed_programs_on_cupy(capsys):
    from gpuad.examples import seed2_gradients_function, seed3_gradient_tape
    seed2_gradients_function.main()
    seed3_gradient_tape.main()
    assert capsys.readouterr().out.splitlines() == [
        "9", "6.0", "27", "27.0", "8.0", "[[8. 8.]", " [8. 8.]]", "3.0 6.0"]


def test_seed_program_1_on_cupy(capsys):
    from gpuad.examples import seed1_higher_order
    x, curves = seed1_higher_order.main()
    assert x.backend == "cupy" and capsys.readouterr().out.startswith("True\n")
    x = x.numpy().astype(np.float64)
    np.testing.assert_allclose(curves["third derivative"].numpy(), -4 * np.sin(2 * x), atol=2e-5)


def test_mixing_backends_is_a_type_error():
    with pytest.raises(TypeError, match="two backends"):
        ad.constant([1.0], backend="cupy") + ad.constant([1.0], backend="numpy")
    with pytest.raises(TypeError, match="two backends"):
        ad.matmul(ad.ones((2, 2), backend="cupy"), ad.ones((2, 2), backend="numpy"))


def test_transfers_and_interop():
    x = ad.constant([1.0, 2.0], backend="cupy")
    assert type(x.array).__module__.startswith("cupy")
    assert x.to("numpy").backend == "numpy" and x.to("numpy").to("cupy").backend == "cupy"
    assert np.asarray(x).tolist() == [1.0, 2.0] and float(x[1]) == 2.0
    assert ad.convert_to_tensor(x.array).backend == "cupy"
    assert "backend=cupy" in repr(x)


def test_variables_and_int_ops_on_cupy():
    v = ad.Variable([1.0, 2.0], name="v")
    with ad.GradientTape() as tape:
        y = ad.reduce_sum(v * v)
    assert v.backend == "cupy" and tape.gradient(y, v).numpy().tolist() == [2.0, 4.0]
    i = ad.constant([7, 8])
    assert (i * 2).numpy().tolist() == [14, 16] and (i // 2).numpy().tolist() == [3, 4]
    assert (i / ad.constant([2, 2])).dtype == np.float64


@pytest.mark.parametrize("n", [1000, 1 << 18])
def test_compiled_function_on_cupy_matches_eager(n):
    """ad.function on CuPy: the elementwise group is one generated kernel (its sum in float64
    after it); values and gradients equal eager CuPy's, a second call replays."""
    rng = np.random.default_rng(1)
    x = ad.constant(rng.uniform(-2, 2, n).astype(np.float32), backend="cupy")
    w = ad.constant(rng.uniform(-1, 1, n).astype(np.float32), backend="cupy")

    def step(x, w):
        with ad.GradientTape() as tape:
            tape.watch([x, w])
            y = ad.reduce_sum(ad.softplus(x * w) + ad.relu(x - w) * ad.sigmoid(w) +
                              ad.sin(x) ** 2 * ad.exp(-x * x))
        return y, tape.gradient(y, [x, w])
    compiled = ad.function(step)
    for scale in (1.0, 0.5):  # a trace, then a replay with other values
        y, (gx, gw) = compiled(x * scale, w)
        y0, (gx0, gw0) = step(x * scale, w)
        assert y.backend == gx.backend == "cupy"
        np.testing.assert_allclose(float(y), float(y0), rtol=1e-5)
        np.testing.assert_allclose(gx.numpy(), gx0.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gw.numpy(), gw0.numpy(), rtol=1e-5, atol=1e-6)
    assert compiled.experimental_get_tracing_count() == 1
    assert "k_" in compiled.explain(x, w)  # the group launches one generated kernel


def test_a_compiled_elementwise_step_is_relaunched_as_a_cuda_graph():
    """From its second call the replay is one CUDA graph over buffers it owns: new input
    values reach it, and a result returned earlier is not overwritten by later launches."""
    rng = np.random.default_rng(2)
    inputs = [ad.constant(rng.uniform(-2, 2, 1 << 16).astype(np.float32), backend="cupy")
              for _ in range(4)]

    def step(x):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
        return y, tape.gradient(y, x)
    compiled = ad.function(step)
    results = [compiled(x) for x in inputs]
    assert "CUDA graph: captured as one CUDA graph" in compiled.explain(inputs[0])
    for x, (y, g) in zip(inputs, results):  # each result still holds its own call's values
        y0, g0 = step(x)
        np.testing.assert_allclose(float(y), float(y0), rtol=1e-5)
        np.testing.assert_allclose(g.numpy(), g0.numpy(), rtol=1e-5, atol=1e-6)


def test_a_compiled_step_with_matmuls_and_variables_is_right_captured_or_not():
    """cuBLAS refuses capture in CuPy: the replay then runs uncaptured, with the same values;
    Variables assigned inside hold the new values after each call."""
    rng = np.random.default_rng(3)
    w = ad.Variable(rng.normal(0, 0.1, (64, 32)).astype(np.float32))
    w_eager = ad.Variable(w.numpy())
    x = ad.constant(rng.normal(size=(16, 64)).astype(np.float32), backend="cupy")

    def step(w, x):
        with ad.GradientTape() as tape:
            loss = ad.reduce_mean(ad.tanh(ad.matmul(x, w)) ** 2)
        w.assign_sub(0.1 * tape.gradient(loss, w))
        return loss
    compiled = ad.function(step)
    for _ in range(4):
        np.testing.assert_allclose(float(compiled(w, x)), float(step(w_eager, x)), rtol=1e-5)
        np.testing.assert_allclose(w.numpy(), w_eager.numpy(), rtol=1e-5, atol=1e-7)
    assert "CUDA graph:" in compiled.explain(w, x)


def test_generated_kernels_are_compiled_once_per_machine(tmp_path):
    """A second process finds every cubin in the private disk cache and compiles nothing."""
    program = textwrap.dedent("""
        import numpy as np
        import gpuad as ad
        from gpuad import cuda
        compiled = []
        original = cuda.nvrtc_compile
        cuda.nvrtc_compile = lambda *a, **k: compiled.append(1) or original(*a, **k)
        x = ad.constant(np.linspace(-1, 1, 4096, dtype=np.float32), backend="cupy")
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.sin(x) * ad.exp(x))
        tape.gradient(y, x).numpy()
        print(len(compiled))
        """)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    counts = [int(subprocess.run([sys.executable, "-c", program], env=env, check=True,
                                 capture_output=True, text=True, timeout=300).stdout)
              for _ in range(2)]
    assert counts[0] > 0 and counts[1] == 0, counts
    assert stat.S_IMODE((tmp_path / "gpuad" / "cuda").stat().st_mode) == 0o700
