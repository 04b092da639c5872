"""linalg's decompositions and solves (qr, svd, eigh, eigvalsh, triangular_solve,
cholesky_solve, lstsq, pinv, expm): values against NumPy and closed forms, TensorFlow's output
conventions, gradients in closed form, the degenerate cases, and the errors. Gradients to
second order against central differences: tests/registry_decompositions.py."""
import numpy as np
import pytest

import gpuad as ad
from gpuad.testing import check_gradients

L = ad.linalg
RNG = np.random.default_rng(5)
DEEP = RNG.uniform(-1, 1, (2, 5, 3))
WIDE = RNG.uniform(-1, 1, (2, 3, 5))
SQUARE = RNG.uniform(-1, 1, (2, 4, 4))


def _t(x):
    return np.swapaxes(x, -1, -2)


def _gradient(f, *args):
    xs = [ad.constant(a) for a in args]
    with ad.GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        y = f(*xs)
    grads = tape.gradient(y, xs)
    return [g.numpy() for g in grads] if len(xs) > 1 else grads[0].numpy()


# ------------------------------------------------------------------------------- values

@pytest.mark.parametrize("a", [DEEP, WIDE, SQUARE], ids=["deep", "wide", "square"])
@pytest.mark.parametrize("full_matrices", [False, True])
def test_qr_and_svd_factor_their_input(a, full_matrices):
    m, n = a.shape[-2:]
    k = m if full_matrices else min(m, n)
    q, r = [t.numpy() for t in L.qr(ad.constant(a), full_matrices=full_matrices)]
    assert q.shape == (2, m, k) and r.shape == (2, k, n)
    np.testing.assert_allclose(q @ r, a, atol=1e-12)
    np.testing.assert_allclose(_t(q) @ q, np.broadcast_to(np.eye(k), (2, k, k)), atol=1e-12)
    np.testing.assert_array_equal(np.tril(r, -1), 0)
    s, u, v = [t.numpy() for t in L.svd(ad.constant(a), full_matrices=full_matrices)]
    k = min(m, n)
    assert s.shape == (2, k) and u.shape[-2] == m and v.shape[-2] == n  # v, not v^T
    assert u.shape[-1] == (m if full_matrices else k) and v.shape[-1] == (n if full_matrices
                                                                        else k)
    np.testing.assert_allclose((u[..., :k] * s[..., None, :]) @ _t(v[..., :k]), a, atol=1e-12)
    assert np.all(np.diff(s, axis=-1) <= 0)  # descending
    np.testing.assert_allclose(L.svd(ad.constant(a), compute_uv=False).numpy(), s, rtol=1e-12)


def test_eigh_reads_the_lower_triangle_and_sorts_ascending():
    a = SQUARE + 5.0 * np.triu(np.ones((4, 4)), 1)  # garbage above the diagonal
    lower = np.tril(SQUARE) + _t(np.tril(SQUARE, -1))
    e, v = [t.numpy() for t in L.eigh(ad.constant(a))]
    np.testing.assert_allclose(e, np.linalg.eigvalsh(lower), rtol=1e-12)
    np.testing.assert_allclose((v * e[..., None, :]) @ _t(v), lower, atol=1e-12)
    np.testing.assert_allclose(L.eigvalsh(ad.constant(a)).numpy(), e, rtol=1e-12)
    assert np.all(np.diff(e, axis=-1) > 0)
    assert L.eigh(ad.constant(a, np.float32))[1].dtype == np.float32


def test_solves():
    m = np.tril(SQUARE) + 3.0 * np.eye(4)
    b = RNG.uniform(-1, 1, (4, 2))  # batch dimensions broadcast
    garbage = m + 7.0 * np.triu(np.ones((4, 4)), 1)  # the other triangle is not read
    x = L.triangular_solve(ad.constant(garbage), ad.constant(b)).numpy()
    np.testing.assert_allclose(m @ x, np.broadcast_to(b, (2, 4, 2)), atol=1e-12)
    x = L.triangular_solve(ad.constant(_t(m)), ad.constant(b), lower=False, adjoint=True).numpy()
    np.testing.assert_allclose(m @ x, np.broadcast_to(b, (2, 4, 2)), atol=1e-12)
    x = L.cholesky_solve(ad.constant(m), ad.constant(b)).numpy()
    np.testing.assert_allclose(m @ _t(m) @ x, np.broadcast_to(b, (2, 4, 2)), atol=1e-12)


@pytest.mark.parametrize("lower, adjoint", [(True, False), (True, True), (False, False),
                                            (False, True)])
def test_triangular_solve_by_blocks(lower, adjoint):
    """Past 64 rows the solve goes by blocks of rows (forward or back substitution)."""
    n = 150
    m = RNG.uniform(-1, 1, (2, n, n)) / np.sqrt(n) + 2.0 * np.eye(n)
    t = np.tril(m) if lower else np.triu(m)
    b = RNG.uniform(-1, 1, (2, n, 3))
    x = L.triangular_solve(ad.constant(m), ad.constant(b), lower=lower, adjoint=adjoint).numpy()
    np.testing.assert_allclose((_t(t) if adjoint else t) @ x, b, atol=1e-12)
    m[1, 100, 100] = 0.0
    with pytest.raises(np.linalg.LinAlgError, match="triangular_solve"):
        L.triangular_solve(ad.constant(m), ad.constant(b), lower=lower, adjoint=adjoint)


def test_lstsq_and_pinv():
    b = RNG.uniform(-1, 1, (2, 5, 2))
    want = np.stack([np.linalg.lstsq(a, y, rcond=None)[0] for a, y in zip(DEEP, b)])
    for fast in (True, False):
        np.testing.assert_allclose(L.lstsq(ad.constant(DEEP), ad.constant(b), fast=fast).numpy(),
                                   want, atol=1e-10)
    # ridge: (A^T A + l I)^-1 A^T b; wide: the minimum-norm solution A^T (A A^T)^-1 b
    ridge = np.linalg.solve(_t(DEEP) @ DEEP + 0.5 * np.eye(3), _t(DEEP) @ b)
    np.testing.assert_allclose(L.lstsq(ad.constant(DEEP), ad.constant(b), 0.5).numpy(), ridge,
                               atol=1e-12)
    np.testing.assert_allclose(L.lstsq(ad.constant(WIDE), ad.constant(b[:, :3])).numpy(),
                               np.linalg.pinv(WIDE) @ b[:, :3], atol=1e-10)
    rank_one = np.outer([1.0, 2.0, 3.0], [1.0, -1.0])
    np.testing.assert_allclose(L.pinv(ad.constant(rank_one)).numpy(), np.linalg.pinv(rank_one),
                               atol=1e-12)
    np.testing.assert_allclose(L.pinv(ad.constant(WIDE)).numpy(), np.linalg.pinv(WIDE),
                               atol=1e-12)


def test_expm_closed_forms():
    # a rotation generator (1-norm 60: six squarings), a symmetric matrix, a nilpotent one
    t = 30.0
    rotation = L.expm(ad.constant(np.array([[0.0, -t], [t, 0.0]]))).numpy()
    np.testing.assert_allclose(rotation, [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]],
                               atol=1e-12)
    sym = SQUARE + _t(SQUARE)
    e, v = np.linalg.eigh(3.0 * sym)
    want = (v * np.exp(e)[..., None, :]) @ _t(v)
    np.testing.assert_allclose(L.expm(ad.constant(3.0 * sym)).numpy(), want, rtol=1e-12)
    got32 = L.expm(ad.constant(3.0 * sym, np.float32)).numpy()
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
    nilpotent = np.triu(RNG.uniform(-1, 1, (4, 4)), 1)
    series = np.eye(4) + nilpotent + nilpotent @ nilpotent / 2 + \
        nilpotent @ nilpotent @ nilpotent / 6
    np.testing.assert_allclose(L.expm(ad.constant(nilpotent)).numpy(), series, atol=1e-14)
    assert L.expm(ad.zeros((0, 0), "float64")).shape == (0, 0)


# --------------------------------------------------------------------- gradients, closed

def test_spectral_gradients_in_closed_form():
    a = SQUARE[0]
    # sum(log s) = log|det a|: gradient inv(a)^T
    grad = _gradient(lambda x: ad.reduce_sum(ad.log(L.svd(x, compute_uv=False))), a)
    np.testing.assert_allclose(grad, np.linalg.inv(a).T, rtol=1e-10)
    grad = _gradient(lambda x: ad.reduce_sum(ad.log(L.svd(x)[0])), a)
    np.testing.assert_allclose(grad, np.linalg.inv(a).T, rtol=1e-10)
    # sum of the eigenvalues is the trace of the lower triangle's symmetric matrix
    np.testing.assert_allclose(_gradient(lambda x: ad.reduce_sum(L.eigvalsh(x)), a), np.eye(4),
                               atol=1e-12)
    # d tr(expm(a)) = expm(a)^T
    grad = _gradient(lambda x: L.trace(L.expm(x)), a)
    np.testing.assert_allclose(grad, L.expm(ad.constant(a)).numpy().T, rtol=1e-12)
    # pinv of an invertible matrix is its inverse: d sum(inv) = -inv^T 1 inv^T
    inv_t = np.linalg.inv(a).T
    np.testing.assert_allclose(_gradient(lambda x: ad.reduce_sum(L.pinv(x)), a),
                               -inv_t @ np.ones((4, 4)) @ inv_t, rtol=1e-9)


def test_eigh_gradient_is_tensorflows_lower_triangle():
    """The gradient of a symmetric-matrix function is lower triangular, the diagonal
    halved, as TensorFlow's: it is the derivative with respect to the lower triangle."""
    a = SQUARE[1]

    def f(x):
        e, v = L.eigh(x)
        return ad.reduce_sum(ad.matmul(v * ad.exp(e)[None, :], L.matrix_transpose(v)) * W)
    W = ad.constant(RNG.uniform(-1, 1, (4, 4)))
    grad = _gradient(f, a)
    np.testing.assert_array_equal(np.triu(grad, 1), 0)
    check_gradients(f, [a])


def test_degenerate_eigenvalues_give_finite_gradients_as_tensorflow():
    """TensorFlow 2.21 broadens 1 / (e_i - e_j) to x / (x^2 + 1e-20): an exact tie gives 0
    (no inf or NaN); the eigenvalues' own gradient is exact."""
    identity = np.eye(3)
    grad = _gradient(lambda x: ad.reduce_sum(abs(L.eigh(x)[1])), identity)
    np.testing.assert_array_equal(grad, np.zeros((3, 3)))
    grad = _gradient(lambda x: ad.reduce_sum(L.eigh(x)[0] ** 2), identity)
    np.testing.assert_allclose(grad, 2.0 * identity)
    grad = _gradient(lambda x: ad.reduce_sum(abs(L.svd(x)[1])), identity)  # ties, s = 1
    assert np.isfinite(grad).all()
    # a near tie: finite but large, 1 / (e_i - e_j) (the eigenvectors turn fast there)
    near = np.diag([1.0, 1.0 + 1e-6, 2.0])
    near[1, 0] = 1e-9
    grad = _gradient(lambda x: ad.reduce_sum(abs(L.eigh(x)[1])), near)
    assert np.isfinite(grad).all() and np.abs(grad).max() > 1e2


def test_zero_singular_values_and_cut_off_values_have_finite_gradients():
    rank_one = np.outer([1.0, 2.0, 3.0], [1.0, -1.0])
    assert np.isfinite(_gradient(lambda x: ad.reduce_sum(L.pinv(x)), rank_one)).all()
    s_grad = _gradient(lambda x: ad.reduce_sum(L.svd(x)[0]), rank_one)
    u, _, vh = np.linalg.svd(rank_one, full_matrices=False)
    np.testing.assert_allclose(s_grad[:, :], u[:, :1] @ vh[:1] + u[:, 1:] @ vh[1:], atol=1e-12)


def test_only_the_read_triangle_gets_a_gradient():
    m = np.tril(SQUARE[0]) + 3.0 * np.eye(4)
    b = RNG.uniform(-1, 1, (4, 2))
    for lower, adjoint in [(True, False), (False, True)]:
        ga, gb = _gradient(lambda x, y: ad.reduce_sum(L.triangular_solve(
            x, y, lower=lower, adjoint=adjoint) ** 2), m if lower else m.T, b)
        np.testing.assert_array_equal(np.triu(ga, 1) if lower else np.tril(ga, -1), 0)
    # batch broadcast: the rhs's gradient is summed over the matrices' batch
    _, gb = _gradient(lambda x, y: ad.reduce_sum(L.triangular_solve(x, y)),
                      np.stack([m, 2.0 * m]), b)
    want = np.linalg.solve(m.T, np.ones((4, 2))) * 1.5
    np.testing.assert_allclose(gb, want, rtol=1e-12)


def test_third_order_of_expm_and_eigvalsh():
    """The rules are gpuad ops: a third derivative by nesting tapes, against differences of
    the second."""
    for f in (lambda x: L.trace(L.expm(x)), lambda x: ad.reduce_sum(L.eigvalsh(x) ** 3)):
        check_gradients(lambda x: _second(f, x), [0.5 * SQUARE[0]], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("f, a", [
    (lambda a: L.qr(a, full_matrices=True)[0] + ad.reduce_sum(L.qr(a)[1]), WIDE),
    (lambda a: abs(L.svd(a, full_matrices=True)[1]) * ad.reduce_sum(L.svd(a)[0]), DEEP[:, :4]),
    (lambda a: abs(L.eigh(a)[1]) * ad.expand_dims(L.eigvalsh(a), -2), SQUARE),
    (lambda a: L.triangular_solve(a, a[..., :2], lower=False, adjoint=True),
     SQUARE + 3 * np.eye(4)),
    (lambda a: L.expm(3.0 * a) + L.pinv(a), SQUARE),
], ids=["qr", "svd", "eigh", "triangular_solve", "expm-pinv"])
def test_batched_forward_jacobian_equals_reverse(f, a):
    """GradientTape.jacobian pushes the whole basis through the JVP rules at once (a batch of
    tangents); each row by reverse mode must agree."""
    x = ad.constant(a)
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ad.reshape(f(x), (-1,))
        picked = [y[i] for i in range(0, y.shape[0], 7)]
    forward = tape.jacobian(y, x).numpy()
    rows = [tape.gradient(p, x).numpy() for p in picked]
    np.testing.assert_allclose(forward[::7], np.stack(rows), atol=1e-12)


def test_full_matrices_forward_mode_past_tensorflows_gradient():
    """Forward mode takes |m - n| > 1 with full_matrices=True (the complement of the
    vectors: its projector u2 u2^T against differences)."""
    a, d = RNG.uniform(-1, 1, (3, 6)), RNG.uniform(-1, 1, (3, 6))

    def projector(x):
        v2 = L.svd(x, full_matrices=True)[2][:, 3:]
        return ad.matmul(v2, L.matrix_transpose(v2))
    x = ad.constant(a)
    with ad.ForwardAccumulator(x, ad.constant(d)) as acc:
        y = projector(x)
    numeric = (projector(ad.constant(a + 1e-6 * d)).numpy() -
               projector(ad.constant(a - 1e-6 * d)).numpy()) / 2e-6
    np.testing.assert_allclose(acc.jvp(y).numpy(), numeric, atol=1e-8)


def test_compiled_replays_recompute_the_factors():
    """A replay runs each decomposition on its call's matrices (expm: its own number of
    squarings)."""
    def step(a):
        with ad.GradientTape() as tape:
            tape.watch(a)
            y = ad.reduce_sum(L.expm(a)) + ad.reduce_sum(L.svd(a)[0]) + \
                ad.reduce_sum(L.eigvalsh(a) ** 2)
        return y, tape.gradient(y, a)
    compiled = ad.function(step)
    for scale in (0.1, 20.0, 0.5):
        a = ad.constant(scale * SQUARE)
        for got, want in zip(compiled(a), step(a)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert compiled.experimental_get_tracing_count() == 1


def _second(f, x):
    """The gradient of |gradient of f|^2, recorded by the tapes around it."""
    with ad.GradientTape() as t2:
        t2.watch(x)
        with ad.GradientTape() as t1:
            t1.watch(x)
            y = f(x)
        g = ad.reduce_sum(t1.gradient(y, x) ** 2)
    return t2.gradient(g, x)


# ---------------------------------------------------------------------------------- errors

def test_unsupported_gradients_raise_as_tensorflow():
    x = ad.constant(DEEP[0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        q, r = L.qr(x, full_matrices=True)
    with pytest.raises(NotImplementedError, match=r"qr: .*full_matrices=True.*\(5, 3\)"):
        tape.gradient(q, x)
    y = ad.constant(RNG.uniform(-1, 1, (6, 3)))
    with ad.GradientTape() as tape:
        tape.watch(y)
        s, u, v = L.svd(y, full_matrices=True)
    with pytest.raises(NotImplementedError, match=r"svd: .*full_matrices=True.*3 and 6"):
        tape.gradient(s, y)


@pytest.mark.parametrize("call, error, match", [
    (lambda: L.eigh(ad.ones((2, 3))), ValueError, r"eigh: tensor must be square .*\(2, 3\)"),
    (lambda: L.eigvalsh(ad.ones((3,))), ValueError, r"eigvalsh: tensor .*\(3,\)"),
    (lambda: L.qr(ad.ones((3,))), ValueError, r"qr: input must be matrices .*\(3,\)"),
    (lambda: L.svd(ad.constant([[1, 2]])), TypeError, r"svd: tensor must be floating.*int32"),
    (lambda: L.expm(ad.ones((2, 3))), ValueError, r"expm: input must be square"),
    (lambda: L.triangular_solve(ad.eye(3), ad.ones((2, 1))), ValueError,
     r"triangular_solve: rhs must have shape \[..., 3, k\] .*\(3, 3\).*\(2, 1\)"),
    (lambda: L.triangular_solve(ad.eye(3), ad.ones((3, 1), "float64")), TypeError,
     r"triangular_solve: matrix has dtype float32 and rhs has dtype float64"),
    (lambda: L.triangular_solve(ad.ones((2, 3, 3)), ad.ones((4, 3, 1))), ValueError,
     r"triangular_solve: batch dimensions of matrix \(2, 3, 3\) and rhs \(4, 3, 1\)"),
    (lambda: L.cholesky_solve(ad.eye(3), ad.ones((2, 1))), ValueError,
     r"cholesky_solve: rhs .*chol of shape \(3, 3\)"),
    (lambda: L.lstsq(ad.ones((4, 3)), ad.ones((3, 1))), ValueError,
     r"lstsq: rhs must have shape \[..., 4, k\]"),
    (lambda: L.pinv(ad.ones((3,))), ValueError, r"pinv: a must be matrices"),
    (lambda: L.svd(ad.eye(2, dtype="float16")), TypeError, r"svd: .*float16"),
])
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_singular_triangle_raises():
    with pytest.raises(np.linalg.LinAlgError, match="triangular_solve"):
        L.triangular_solve(ad.constant([[1.0, 0.0], [1.0, 0.0]]), ad.ones((2, 1)))


# ------------------------------------------------------------------------------ on CuPy

def _dominant(a):
    return a + 3.0 * ad.eye(a.shape[-1], dtype=a.dtype, backend=a.backend)


ALL_OPS = [
    ("qr", lambda a: L.qr(a)[1]),
    ("qr wide", lambda a: L.qr(L.matrix_transpose(a), full_matrices=True)[0]),
    ("svd", lambda a: L.svd(a)[0]),
    ("svd values", lambda a: L.svd(a, compute_uv=False)),
    ("svd usv", lambda a: (lambda s, u, v: ad.matmul(u * ad.expand_dims(s, -2),
                                                     L.matrix_transpose(v)))(*L.svd(a))),
    ("eigh", lambda a: (lambda e, v: ad.matmul(v * ad.expand_dims(e, -2),
                                               L.matrix_transpose(v)))(*L.eigh(a[..., :3, :]))),
    ("eigvalsh", lambda a: L.eigvalsh(a[..., :3, :])),
    ("triangular_solve", lambda a: L.triangular_solve(_dominant(a[..., :3, :]), a[..., 1:, :2],
                                                      adjoint=True)),
    ("lstsq", lambda a: L.lstsq(a, a[..., :2])),
    ("pinv", lambda a: L.pinv(a)),
    ("expm", lambda a: L.expm(3.0 * a[..., :3, :])),
]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, f", ALL_OPS, ids=[n for n, _ in ALL_OPS])
def test_cupy_matches_numpy(name, f, dtype):
    a = RNG.uniform(-1, 1, (2, 4, 3)).astype(dtype)
    on_gpu = f(ad.constant(a, backend="cupy"))
    assert on_gpu.backend == "cupy" and on_gpu.dtype == dtype
    want = f(ad.constant(a, backend="numpy")).numpy()
    tol = 1e-4 if dtype == np.float32 else 1e-10
    if name in ("qr", "qr wide"):  # LAPACK's and cuSOLVER's signs may differ per row
        np.testing.assert_allclose(np.abs(on_gpu.numpy()), np.abs(want), atol=tol)
    else:
        np.testing.assert_allclose(on_gpu.numpy(), want, atol=tol * max(1, np.abs(want).max()))


@pytest.mark.gpu
@pytest.mark.parametrize("name, f", ALL_OPS[2:], ids=[n for n, _ in ALL_OPS[2:]])
def test_cupy_gradients(name, f):
    check_gradients(f, [ad.constant(RNG.uniform(-1, 1, (2, 4, 3)), backend="cupy")], order=2)


@pytest.mark.gpu
def test_cupy_singular_triangle_raises():
    with pytest.raises(np.linalg.LinAlgError, match="triangular_solve"):
        L.triangular_solve(ad.constant([[1.0, 0.0], [1.0, 0.0]], backend="cupy"),
                           ad.ones((2, 1), backend="cupy"))
