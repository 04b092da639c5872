"""complex64 and complex128: values, TensorFlow's gradient convention pinned by closed forms,
central differences in the real and imaginary directions, and the errors of ops TensorFlow
does not define for complex numbers."""
import numpy as np
import pytest

import gpuad as ad

rng = np.random.default_rng(5)
Z = rng.normal(size=4) + 1j * rng.normal(size=4)
W = rng.normal(size=4) + 1j * rng.normal(size=4)


def gradient(loss, *values):
    tensors = [ad.constant(v) for v in values]
    with ad.GradientTape() as tape:
        tape.watch(tensors)
        out = loss(*tensors)
    return [g.numpy() for g in tape.gradient(out, tensors)]


def central_differences(loss, z, h=1e-6):
    """dL/dRe(z) + i dL/dIm(z), elementwise, for a real loss of one complex128 array."""
    grad = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        for direction in (1, 1j):
            up, down = z.copy(), z.copy()
            up[i] += h * direction
            down[i] -= h * direction
            grad[i] += direction * (float(loss(ad.constant(up))) -
                                    float(loss(ad.constant(down)))) / (2 * h)
    return grad


# -------------------------------------------------------------- TensorFlow's convention

def test_squared_modulus_has_gradient_2z():
    """TF: the gradient of |z|^2 is 2z (dL/dx + i dL/dy), not JAX's 2 conj(z)."""
    (g,) = gradient(lambda z: ad.reduce_sum(ad.abs(z) ** 2), Z)
    np.testing.assert_allclose(g, 2 * Z, rtol=1e-12)
    (g,) = gradient(lambda z: ad.reduce_sum(ad.real(z * ad.conj(z))), Z)
    np.testing.assert_allclose(g, 2 * Z, rtol=1e-12)


def test_real_part_of_a_product():
    """L = Re(z w): dL/dz = conj(w), as TF's MulGrad grad * conj(y)."""
    gz, gw = gradient(lambda z, w: ad.reduce_sum(ad.real(z * w)), Z, W)
    np.testing.assert_allclose(gz, np.conj(W), rtol=1e-12)
    np.testing.assert_allclose(gw, np.conj(Z), rtol=1e-12)


def test_real_imag_complex_gradients():
    (g,) = gradient(lambda z: ad.reduce_sum(ad.imag(z)), Z)
    np.testing.assert_array_equal(g, np.full(4, 1j))
    (g,) = gradient(lambda z: ad.reduce_sum(ad.real(z)), Z)
    np.testing.assert_array_equal(g, np.ones(4))
    x, y = Z.real, Z.imag
    gx, gy = gradient(lambda a, b: ad.reduce_sum(ad.abs(ad.complex(a, b)) ** 2), x, y)
    np.testing.assert_allclose(gx, 2 * x, rtol=1e-12)
    np.testing.assert_allclose(gy, 2 * y, rtol=1e-12)


def test_abs_and_angle_closed_forms():
    (g,) = gradient(lambda z: ad.reduce_sum(ad.abs(z)), Z)
    np.testing.assert_allclose(g, Z / np.abs(Z), rtol=1e-12)
    (g,) = gradient(lambda z: ad.reduce_sum(ad.math.angle(z)), Z)
    np.testing.assert_allclose(g, 1j * Z / np.abs(Z) ** 2, rtol=1e-12)
    (g,) = gradient(lambda z: ad.reduce_sum(ad.abs(z)), np.zeros(2, complex))
    np.testing.assert_array_equal(g, np.zeros(2))  # 0 at 0, as TF's div_no_nan


@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "rsqrt",
                                  "square", "reciprocal", "negative", "sigmoid", "asin",
                                  "atan", "sinh", "cosh", "expm1", "log1p", "atanh", "asinh",
                                  "acos", "acosh"])
def test_holomorphic_unary_against_central_differences(name):
    op = getattr(ad, name)
    z = 0.5 * Z

    def loss(t):  # a real loss mixing both parts of the output
        out = op(t)
        return ad.reduce_sum(0.7 * ad.real(out) - 0.4 * ad.imag(out))
    (g,) = gradient(loss, z)
    np.testing.assert_allclose(g, central_differences(loss, z), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "pow", "xlogy"])
def test_binary_against_central_differences(name):
    op = getattr(ad, name)
    for k in range(2):
        def loss(t):
            args = [ad.constant(Z), ad.constant(0.5 * W)]
            args[k] = t
            out = op(*args)
            return ad.reduce_sum(ad.real(out) + 0.3 * ad.imag(out))
        (g,) = gradient(loss, [Z, 0.5 * W][k])
        np.testing.assert_allclose(g, central_differences(loss, [Z, 0.5 * W][k]),
                                   rtol=1e-6, atol=1e-8)


def test_matmul_einsum_reductions_against_central_differences():
    a = rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3))
    b = ad.constant(rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2)))
    for loss in (lambda t: ad.reduce_sum(ad.abs(ad.matmul(t, b)) ** 2),
                 lambda t: ad.real(ad.einsum("ij,jk->", t, b)),
                 lambda t: ad.imag(ad.reduce_prod(t)),
                 lambda t: ad.real(ad.reduce_mean(t * t))):
        (g,) = gradient(loss, a)
        np.testing.assert_allclose(g, central_differences(loss, a), rtol=1e-6, atol=1e-8)


def test_second_order_and_forward_mode():
    z = ad.constant(Z)
    with ad.GradientTape() as outer:
        outer.watch(z)
        with ad.GradientTape() as inner:
            inner.watch(z)
            loss = ad.reduce_sum(ad.real(ad.sin(z) * ad.conj(z)))
        g = inner.gradient(loss, z)
        norm = ad.reduce_sum(ad.abs(g) ** 2)
    got = outer.gradient(norm, z).numpy()

    def gradient_norm(t):
        with ad.GradientTape() as tape:
            tape.watch(t)
            inner_loss = ad.reduce_sum(ad.real(ad.sin(t) * ad.conj(t)))
        return ad.reduce_sum(ad.abs(tape.gradient(inner_loss, t)) ** 2)
    np.testing.assert_allclose(got, central_differences(gradient_norm, Z), rtol=1e-6)
    tangent = ad.constant(W)
    with ad.ForwardAccumulator(z, tangent) as acc:  # holomorphic: f'(z) t
        y = ad.exp(z) * z
    np.testing.assert_allclose(acc.jvp(y).numpy(), np.exp(Z) * (1 + Z) * W, rtol=1e-12)


# ------------------------------------------------------------------------ values, dtypes

def test_dtypes_and_values():
    z64 = ad.constant(Z, dtype="complex64")
    assert (z64 * z64).dtype == np.complex64 and ad.exp(z64).dtype == np.complex64
    assert ad.abs(z64).dtype == np.float32 and ad.real(z64).dtype == np.float32
    assert ad.complex(ad.constant(1.0), ad.constant(2.0)).dtype == np.complex64
    assert ad.reduce_sum(z64).dtype == np.complex64
    np.testing.assert_allclose(ad.math.angle(ad.constant(Z)).numpy(), np.angle(Z))
    np.testing.assert_allclose((ad.constant(Z) * 2j).numpy(), Z * 2j)  # a Python complex
    x = ad.constant([-1.0, 2.0])
    assert ad.real(x) is x and ad.conj(x) is x
    np.testing.assert_array_equal(ad.imag(x).numpy(), [0.0, 0.0])
    np.testing.assert_allclose(ad.math.angle(x).numpy(), [np.pi, 0.0])


def test_cast_between_complex_and_real_is_differentiable():
    x = ad.constant([1.0, -2.0], dtype="float64")
    with ad.GradientTape() as tape:
        tape.watch(x)
        z = ad.cast(x, "complex128") * ad.constant(W[:2])
        loss = ad.reduce_sum(ad.real(z))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), W[:2].real)  # real part of g
    np.testing.assert_array_equal(ad.cast(ad.constant(Z), "float64").numpy(), Z.real)


def test_complex_errors_name_the_op():
    z = ad.constant(Z)
    for op in (ad.less, ad.greater, ad.less_equal, ad.greater_equal):
        with pytest.raises(TypeError, match=f"{op.__name__}: complex numbers are not ordered"):
            op(z, z)
    assert ad.equal(z, z).numpy().all() and not ad.not_equal(z, z).numpy().any()
    for op in (ad.relu, ad.erf, ad.floor, ad.sign, ad.maximum, ad.atan2):
        with pytest.raises(TypeError, match=f"{op.__name__}: unsupported dtype complex128"):
            op(*[z] * (2 if op in (ad.maximum, ad.atan2) else 1))
    with pytest.raises(TypeError, match="reduce_max: unsupported dtype complex128"):
        ad.reduce_max(z)
    with pytest.raises(TypeError, match="complex: real has dtype float32 and imag has dtype "
                                        "float64"):
        ad.complex(ad.constant([1.0]), ad.constant([1.0], dtype="float64"))
    with pytest.raises(ValueError, match=r"complex: real has shape \(2,\) and imag has shape"):
        ad.complex(ad.constant([1.0, 2.0]), ad.constant([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="multiply"):
        ad.constant([1.0]) * z[:1]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_cupy_matches_numpy(dtype):
    """On CuPy the VJP of each complex entry is one fused kernel (g * conj(d_x))."""
    z = (rng.uniform(0.2, 1, 4096) + 1j * rng.uniform(0.2, 1, 4096)).astype(dtype)
    w = (rng.uniform(0.2, 1, 4096) - 1j * rng.uniform(0.2, 1, 4096)).astype(dtype)
    results = {}
    for backend in ("numpy", "cupy"):
        a, b = ad.constant(z, backend=backend), ad.constant(w, backend=backend)
        with ad.GradientTape() as tape:
            tape.watch([a, b])
            out = ad.sqrt(a) * ad.exp(b) / a + ad.sin(a) ** b + ad.reduce_prod(a[:3])
            loss = ad.reduce_sum(ad.abs(out) + ad.math.angle(ad.matmul(a[None], b[:, None])))
        results[backend] = [loss.numpy()] + [g.numpy() for g in tape.gradient(loss, [a, b])]
    for got, want in zip(results["cupy"], results["numpy"]):
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "complex64" else 1e-10)


def test_compiled_function_runs_complex_steps_unfused():
    """ad.function traces complex ops; its fusion takes floating steps only."""
    z = ad.constant(np.linspace(0.1, 1, 1 << 16) * (1 + 1j))

    def step(z):
        with ad.GradientTape() as tape:
            tape.watch(z)
            y = ad.reduce_sum(ad.abs(ad.sin(z) * z) ** 2 + ad.real(ad.exp(z)))
        return y, tape.gradient(y, z)
    (y, g), (y_eager, g_eager) = ad.function(step)(z), step(z)
    np.testing.assert_allclose(y.numpy(), y_eager.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), g_eager.numpy(), rtol=1e-12)
