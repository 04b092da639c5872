"""vmap and vectorized_map: the batching interpreter against NumPy closed forms (float64,
example by example), per-example gradients against central differences, composition with
tapes, accumulators, the JAX-style transforms, ad.function and nesting, and the errors."""
import warnings

import numpy as np
import pytest

import gpuad as ad
from gpuad.testing import check_gradients

RNG = np.random.default_rng(5)
N = 3  # examples


def _batch(*shape):
    return RNG.uniform(-1, 1, (N,) + shape)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


SPD = _batch(3, 3) @ np.swapaxes(_batch(3, 3), -1, -2) + 3 * np.eye(3)
INTS = np.array([[0, 1, 0, 2], [2, 2, -1, 0], [1, 0, 1, 1]])
TRIL = np.tril(_batch(3, 3)) + 2 * np.eye(3)
IMAGES, FILTERS = _batch(2, 5, 5, 4), _batch(3, 3, 2, 4)

# (name, gpuad function of one example, NumPy function of one example, in_axes, inputs)
CASES = [
    ("elementwise", lambda x, y: ad.sin(x) * y + 2.0, lambda x, y: np.sin(x) * y + 2.0,
     0, [_batch(4), _batch(4)]),
    ("rank-broadcast", lambda x, y: x * y - ad.exp(x), lambda x, y: x * y - np.exp(x),
     (0, None), [_batch(4), RNG.uniform(-1, 1, (2, 4))]),
    ("compare-where", lambda x: ad.where(x > 0.0, x, -2.0 * x),
     lambda x: np.where(x > 0, x, -2 * x), 0, [_batch(5)]),
    ("vector-matmul", lambda x, w: x @ w, lambda x, w: x @ w, (0, None),
     [_batch(3), RNG.uniform(-1, 1, (3, 4))]),
    ("batched-matmul", lambda a, b: ad.matmul(a, b), lambda a, b: a @ b, 0,
     [_batch(2, 3), _batch(3, 4)]),
    ("outer-product", lambda a, b: ad.matmul(a, b), lambda a, b: a @ b, 0,
     [_batch(3, 1), _batch(1, 2)]),
    ("stacked-matmul", lambda a, b: ad.matmul(a, b), lambda a, b: a @ b, (None, 0),
     [RNG.uniform(-1, 1, (2, 2, 3)), _batch(3, 2)]),
    ("einsum", lambda a, b: ad.einsum("ij,j->i", a, b), lambda a, b: a @ b, 0,
     [_batch(2, 3), _batch(3)]),
    ("einsum-shared", lambda a, b: ad.einsum("ij,jk->ik", a, b), lambda a, b: a @ b,
     (0, None), [_batch(2, 3), RNG.uniform(-1, 1, (3, 2))]),
    ("reductions", lambda x: ad.reduce_sum(x, 0) + ad.reduce_max(x, -1, keepdims=True)
     + ad.reduce_mean(x) + ad.reduce_logsumexp(x, 1, keepdims=True),
     lambda x: x.sum(0) + x.max(-1, keepdims=True) + x.mean()
     + np.log(np.exp(x).sum(1, keepdims=True)), 0, [_batch(2, 3)]),
    ("min-prod-norm", lambda x: ad.reduce_min(x, 0) * ad.reduce_prod(x, 0) + ad.norm(x),
     lambda x: x.min(0) * x.prod(0) + np.sqrt((x * x).sum()), 0, [_batch(2, 3)]),
    ("shapes", lambda x: ad.reshape(ad.transpose(x), (-1,))[1:4] * ad.reduce_sum(
        ad.expand_dims(x, 0), (0, 1)), lambda x: x.T.reshape(-1)[1:4] * x.sum(0), 0,
     [_batch(2, 3)]),
    ("concat-stack", lambda x, y: ad.concat([x, y, ad.stack([x[0], y[1]])], 0),
     lambda x, y: np.concatenate([x, y, np.stack([x[0], y[1]])], 0), (0, None),
     [_batch(2), RNG.uniform(-1, 1, (2,))]),
    ("getitem", lambda x: x[::-1, 1] + x[ad.constant([0, 0]), 2] + x[..., None][0, 0],
     lambda x: x[::-1, 1] + x[[0, 0], 2] + x[..., None][0, 0], 0, [_batch(2, 3)]),
    ("pad-tile-broadcast", lambda x: ad.reduce_sum(ad.pad(x, [[1, 0]])) + ad.tile(x, [2])
     + ad.broadcast_to(x[:1], (6,)), lambda x: np.pad(x, [[1, 0]]).sum() + np.tile(x, 2)
     + np.broadcast_to(x[:1], (6,)), 0, [_batch(3)]),
    ("scans", lambda x: ad.cumsum(x, 1) + ad.cumprod(x, 0) + ad.roll(x, 1, 1),
     lambda x: np.cumsum(x, 1) + np.cumprod(x, 0) + np.roll(x, 1, 1), 0, [_batch(2, 3)]),
    ("nn", lambda x, y: ad.nn.softmax(x) * ad.nn.log_softmax(x)
     + ad.nn.softmax_cross_entropy_with_logits(y, x),
     lambda x, y: _softmax(x) * np.log(_softmax(x)) - (y * np.log(_softmax(x))).sum(), 0,
     [_batch(4), np.abs(_batch(4))]),
    ("linalg", lambda a: ad.linalg.inv(a) * ad.linalg.det(a) + ad.linalg.cholesky(a),
     lambda a: np.linalg.inv(a) * np.linalg.det(a) + np.linalg.cholesky(a), 0, [SPD]),
    ("cast-stop", lambda x: ad.cast(ad.stop_gradient(x) * 10.0, "int32"),
     lambda x: (x * 10).astype(np.int32), 0, [_batch(3)]),
    ("unbatched-result", lambda x, w: ad.reduce_sum(w), lambda x, w: w.sum(), (0, None),
     [_batch(2), RNG.uniform(-1, 1, (2,))]),
]


@pytest.mark.parametrize("name, f, ref, in_axes, inputs", CASES, ids=[c[0] for c in CASES])
def test_vmap_matches_numpy_per_example(name, f, ref, in_axes, inputs):
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(inputs)
    got = ad.vmap(f, in_axes=in_axes)(*[ad.constant(x) for x in inputs])
    want = np.stack([ref(*[x if a is None else x[k] for x, a in zip(inputs, axes)])
                     for k in range(N)])
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def _central_gradient(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def _loss_np(params, x, y):
    w1, b1, w2 = params["w1"], params["b1"], params["w2"]
    return ((np.tanh(x @ w1 + b1) @ w2 - y) ** 2).sum()


def _loss(params, x, y):
    h = ad.tanh(x @ params["w1"] + params["b1"])
    return ad.reduce_sum((h @ params["w2"] - y) ** 2)


PARAMS = {"w1": RNG.uniform(-1, 1, (3, 4)), "b1": RNG.uniform(-1, 1, (4,)),
          "w2": RNG.uniform(-1, 1, (4, 2))}
XS, YS = _batch(3), _batch(2)


def test_per_example_gradients_of_a_dict_of_parameters():
    params = {k: ad.constant(v) for k, v in PARAMS.items()}
    grads = ad.vmap(ad.grad(_loss), in_axes=(None, 0, 0))(params, ad.constant(XS),
                                                           ad.constant(YS))
    assert set(grads) == set(PARAMS)
    for key, value in PARAMS.items():
        for k in range(N):
            def f(v, key=key, k=k):
                return _loss_np(dict(PARAMS, **{key: v}), XS[k], YS[k])
            np.testing.assert_allclose(grads[key].numpy()[k], _central_gradient(f, value),
                                       rtol=1e-6, atol=1e-8)


def test_per_example_gradients_with_a_tape_and_variables():
    w = ad.Variable(PARAMS["w1"])

    def per_example(x):
        with ad.GradientTape() as tape:
            y = ad.reduce_sum(ad.sin(x @ w) ** 2)
        return tape.gradient(y, w)
    got = ad.vectorized_map(per_example, ad.constant(XS))
    for k in range(N):
        want = _central_gradient(lambda v: (np.sin(XS[k] @ v) ** 2).sum(), PARAMS["w1"])
        np.testing.assert_allclose(got.numpy()[k], want, rtol=1e-6, atol=1e-8)


def test_tape_outside_vmap_and_second_order():
    x = ad.constant(XS)
    with ad.GradientTape() as outer:
        outer.watch(x)
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.vmap(lambda r: ad.reduce_sum(r ** 3) * r[0])(x))
        g = tape.gradient(y, x)  # d/dr: 3 r^2 r0 + e0 * sum(r^3)
        total = ad.reduce_sum(g * g)
    want = 3 * XS ** 2 * XS[:, :1]
    want[:, 0] += (XS ** 3).sum(1)
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-12)
    h = outer.gradient(total, x)
    f = lambda v: (((3 * v ** 2 * v[:, :1]) + np.eye(3)[0] * (v ** 3).sum(1, keepdims=True))
                   ** 2).sum()
    np.testing.assert_allclose(h.numpy(), _central_gradient(f, XS), rtol=1e-6)


def test_hessians_and_jvps_inside_vmap():
    f = lambda r: ad.reduce_sum(ad.sin(r) * r[0])
    hessians = ad.vmap(ad.hessian(f))(ad.constant(XS))
    for k in range(N):
        x = XS[k]
        want = np.diag(-np.sin(x) * x[0])
        want[0, :] += np.cos(x)
        want[:, 0] += np.cos(x)
        np.testing.assert_allclose(hessians.numpy()[k], want, rtol=1e-12, atol=1e-12)
    v = ad.constant([1.0, 0.5, -1.0], dtype="float64")
    tangents = ad.vmap(lambda r: ad.jvp(f, [r], [v])[1])(ad.constant(XS))
    want = [np.cos(x) @ np.array([1, .5, -1]) * x[0] + np.sin(x).sum() for x in XS]
    np.testing.assert_allclose(tangents.numpy(), want, rtol=1e-12)
    x = ad.constant(XS)  # an accumulator outside the map
    with ad.ForwardAccumulator(x, ad.ones((N, 3), "float64")) as acc:
        y = ad.vmap(lambda r: ad.reduce_sum(r * r))(x)
    np.testing.assert_allclose(acc.jvp(y).numpy(), 2 * XS.sum(1), rtol=1e-12)


def test_nested_vmap_and_axes():
    x = RNG.uniform(-1, 1, (2, 3, 4))
    got = ad.vmap(ad.vmap(lambda r: ad.reduce_sum(r * r) * r))(ad.constant(x))
    np.testing.assert_allclose(got.numpy(), (x * x).sum(-1, keepdims=True) * x, rtol=1e-12)
    got = ad.vmap(lambda c: c * ad.reduce_max(c), in_axes=1, out_axes=1)(ad.constant(x))
    np.testing.assert_allclose(got.numpy(), x * x.max((0, 2), keepdims=True), rtol=1e-12)
    out = ad.vmap(lambda p: {"s": p["a"] + p["b"], "t": [p["a"]]},
                  in_axes=({"a": 0, "b": None},))({"a": ad.constant(x[0]),
                                                   "b": ad.constant(x[1, 0])})
    np.testing.assert_allclose(out["s"].numpy(), x[0] + x[1, 0], rtol=1e-12)
    np.testing.assert_allclose(out["t"][0].numpy(), x[0], rtol=1e-12)


def test_function_and_vmap_compose():
    double = ad.function(lambda r: ad.reduce_sum(r * r))  # runs eagerly inside a map
    np.testing.assert_allclose(ad.vmap(double)(ad.constant(XS)).numpy(), (XS * XS).sum(1))
    np.testing.assert_allclose(ad.vmap(double)(ad.constant(YS)).numpy(), (YS * YS).sum(1))
    compiled = ad.function(ad.vmap(lambda r: ad.reduce_sum(ad.exp(r))))  # traced, replayed
    for x in (XS, 2 * XS, _batch(3)):
        np.testing.assert_allclose(compiled(ad.constant(x)).numpy(), np.exp(x).sum(1),
                                   rtol=1e-12)
    assert compiled.experimental_get_tracing_count() == 1


def test_custom_gradient_and_recompute_grad_inside_vmap():
    @ad.custom_gradient
    def clipped(x):
        return x * 1.0, lambda dy: ad.clip_by_value(dy, -0.5, 0.5)
    g = ad.vmap(ad.grad(lambda r: ad.reduce_sum(clipped(r) * 3.0)))(ad.constant(XS))
    np.testing.assert_allclose(g.numpy(), np.full(XS.shape, 0.5))
    block = ad.recompute_grad(lambda r: ad.tanh(r) * r)
    g = ad.vmap(ad.grad(lambda r: ad.reduce_sum(block(r))))(ad.constant(XS))
    np.testing.assert_allclose(g.numpy(), np.tanh(XS) + XS * (1 - np.tanh(XS) ** 2),
                               rtol=1e-12)


def _row(x, w):
    return ad.reduce_sum(ad.tanh(ad.matmul(x, w)) ** 2) * ad.reduce_max(x)


# functions of float64 arrays built on vmap and recompute_grad, differentiated from outside
TRANSFORMED = [
    ("vmap-shared", lambda x, w: ad.vmap(_row, in_axes=(0, None))(x, w), [_batch(3), PARAMS["w1"]]),
    ("vmap-softmax", lambda x, s: ad.vmap(lambda r, c: ad.nn.softmax(r * c) * ad.exp(r[1:2]))(
        x, s), [_batch(3), np.abs(_batch()) + 0.5]),
    ("vmap-grad", lambda x, w: ad.vmap(ad.grad(_row, argnums=1), in_axes=(0, None))(x, w),
     [_batch(3), PARAMS["w1"]]),
    ("vmap-axes", lambda x: ad.vmap(lambda c: ad.reduce_logsumexp(c) * c, in_axes=1,
                                    out_axes=1)(x), [_batch(3)]),
    ("vmap-solve", lambda a, b: ad.vmap(ad.linalg.solve)(a, b), [SPD, _batch(3, 2)]),
    ("vmap-conv-segments", lambda x, w: ad.vmap(lambda i, f, s: ad.math.unsorted_segment_sum(
        ad.nn.conv1d(i, f, 1, "SAME")[0], s, 3))(x, w, ad.constant(INTS)),
     [_batch(1, 4, 2), _batch(3, 2, 2)]),
    ("recompute_grad", lambda x, w: ad.recompute_grad(
        lambda a, b: ad.tanh(ad.matmul(a, b)) * a[:, :1])(x, w), [_batch(3), PARAMS["w1"]]),
]


@pytest.mark.parametrize("name, f, args", TRANSFORMED, ids=[c[0] for c in TRANSFORMED])
def test_transforms_to_second_order_and_compiled(name, f, args):
    check_gradients(f, args, order=2)  # reverse, forward, forward-over-reverse
    compiled = ad.function(f)
    for scale in (1.0, 0.5):  # the second call replays the trace
        inputs = [ad.constant(a * scale) for a in args]
        np.testing.assert_allclose(compiled(*inputs).numpy(), f(*inputs).numpy(), rtol=1e-12)
    assert compiled.experimental_get_tracing_count() == 1


def test_fallback_loop_warns_once_or_refuses():
    starts, stops = _batch(), _batch()
    f = lambda a, b: ad.linspace(a, b, 3)  # no batching rule: a loop over the examples
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = ad.vmap(f)(ad.constant(starts), ad.constant(stops))
        ad.vmap(f)(ad.constant(starts), ad.constant(stops))
    assert sum("no batching rule" in str(w.message) for w in caught) <= 1
    np.testing.assert_allclose(got.numpy(), np.linspace(starts, stops, 3, axis=-1),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="linspace has no batching rule"):
        ad.vectorized_map(lambda e: f(*e), (ad.constant(starts), ad.constant(stops)),
                          fallback_to_while_loop=False)


def test_errors_name_vmap_and_the_problem():
    x = ad.constant(XS)
    with pytest.raises(TypeError, match="vmap: float"):
        ad.vmap(lambda r: float(r[0]))(x)
    with pytest.raises(TypeError, match="vmap"):
        ad.vmap(lambda r: r if r[0] > 0 else -r)(x)
    with pytest.raises(ValueError, match="different sizes"):
        ad.vmap(lambda a, b: a + b[:3])(x, ad.constant(_batch(3)[:2]))
    with pytest.raises(ValueError, match="no argument is mapped"):
        ad.vmap(lambda r: r, in_axes=None)(x)
    with pytest.raises(ValueError, match="in_axes has 1 entries for 2"):
        ad.vmap(lambda a, b: a, in_axes=(0,))(x, x)
    with pytest.raises(ValueError, match="out of range"):
        ad.vmap(lambda r: r, in_axes=2)(x)
    with pytest.raises(ValueError, match="assign"):
        ad.vmap(lambda r: ad.Variable(np.zeros(3)).assign(r))(x)
    with pytest.raises(ValueError, match="slice_update of a batched value"):
        ad.vmap(lambda r: ad.Variable(np.zeros((2, 3)))[0].assign(r))(x)


@pytest.mark.gpu
def test_per_example_gradients_on_cupy():
    params = {k: ad.constant(v, backend="cupy") for k, v in PARAMS.items()}
    grads = ad.vmap(ad.grad(_loss), in_axes=(None, 0, 0))(
        params, ad.constant(XS, backend="cupy"), ad.constant(YS, backend="cupy"))
    for key, value in PARAMS.items():
        assert grads[key].backend == "cupy"
        for k in range(N):
            def f(v, key=key, k=k):
                return _loss_np(dict(PARAMS, **{key: v}), XS[k], YS[k])
            np.testing.assert_allclose(grads[key].numpy()[k], _central_gradient(f, value),
                                       rtol=1e-6, atol=1e-8)
    got = ad.vmap(CASES[-4][1])(*[ad.constant(x, backend="cupy") for x in CASES[-4][4]])
    assert got.backend == "cupy"


def test_keyword_arguments_are_mapped_over_axis_0():
    got = ad.vmap(lambda x, scale: x * scale, in_axes=(None,))(ad.constant(2.0, "float64"),
                                                               scale=ad.constant(XS[:, 0]))
    np.testing.assert_allclose(got.numpy(), 2 * XS[:, 0], rtol=1e-12)


def test_out_axes_none_for_results_shared_by_every_example():
    w = ad.constant(PARAMS["b1"])
    got = ad.vmap(lambda x, w: ad.reduce_sum(w * w), in_axes=(0, None), out_axes=None)(
        ad.constant(XS), w)
    np.testing.assert_allclose(got.numpy(), (PARAMS["b1"] ** 2).sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="out_axes=None, but a result of shape \\(3,\\)"):
        ad.vmap(lambda x: x * 2.0, out_axes=None)(ad.constant(XS))


def test_batched_indices_gather_without_a_loop():
    table = RNG.uniform(-1, 1, (5, 3))
    ids = np.array([[4, 0], [1, 1], [3, 2]])
    labels = np.array([2, 0, 1])
    logits = _batch(3)

    def f(ids, label, logits, table):
        rows = ad.gather(table, ids)  # (2, 3)
        return ad.reduce_sum(rows ** 2) * logits[label] + \
            ad.nn.sparse_softmax_cross_entropy_with_logits(label, logits)

    def f_np(ids, label, logits, table):
        p = np.log(_softmax(logits))
        return (table[ids] ** 2).sum() * logits[label] - p[label]

    args = [ad.constant(ids), ad.constant(labels), ad.constant(logits), ad.constant(table)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback loop
        got = ad.vmap(f, in_axes=(0, 0, 0, None))(*args)
        grads = ad.vmap(ad.grad(f, argnums=(2, 3)), in_axes=(0, 0, 0, None))(*args)
    np.testing.assert_allclose(got.numpy(), [f_np(ids[k], labels[k], logits[k], table)
                                             for k in range(N)], rtol=1e-12)
    for k in range(N):
        for i, x in ((0, logits[k]), (1, table)):
            def g(v, i=i, k=k):
                a = [ids[k], labels[k], logits[k], table]
                a[2 + i] = v
                return f_np(*a)
            np.testing.assert_allclose(grads[i].numpy()[k], _central_gradient(g, x),
                                       rtol=1e-6, atol=1e-8)


def test_a_batched_value_used_after_its_map_raises():
    kept = []
    ad.vmap(lambda r: kept.append(r) or r * 2.0)(ad.constant(XS))
    with pytest.raises(RuntimeError, match="vmap: a batched value was used after its map"):
        kept[0] + 1.0
    with pytest.raises(RuntimeError, match="used after its map"):
        ad.vmap(lambda r: r * kept[0])(ad.constant(XS))


def test_recompute_grad_keeps_only_its_inputs_and_differentiates_variables_twice():
    w = ad.Variable(np.array([0.5, -1.0]))
    calls = []

    def block(x):
        calls.append(1)
        return ad.reduce_sum(ad.sin(x * w) * x)

    x = ad.constant(np.array([0.3, 0.7]))
    with ad.GradientTape(persistent=True) as outer:
        outer.watch(x)
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.recompute_grad(block)(x)
        assert len(tape._records) <= 3  # the Variable's read and the one recompute op
        gx, gw = tape.gradient(y, [x, w])
        assert len(calls) == 2  # the forward, then once more for the gradient
        sum_gw, sum_gx = ad.reduce_sum(gw), ad.reduce_sum(gx)
    xv, wv = x.numpy(), w.numpy()
    np.testing.assert_allclose(gx.numpy(), np.cos(xv * wv) * wv * xv + np.sin(xv * wv))
    np.testing.assert_allclose(gw.numpy(), np.cos(xv * wv) * xv * xv)
    # second order, through the recomputation: d(sum gw)/dx and d(sum gx)/dw
    np.testing.assert_allclose(outer.gradient(sum_gw, x).numpy(),
                               -np.sin(xv * wv) * wv * xv * xv + 2 * np.cos(xv * wv) * xv)
    np.testing.assert_allclose(outer.gradient(sum_gx, w).numpy(),
                               -np.sin(xv * wv) * xv * wv * xv + np.cos(xv * wv) * xv
                               + np.cos(xv * wv) * xv)


# ---------------------------------------------------------------- batching rules, no loop

def _svd_parts(a):
    s, u, v = ad.linalg.svd(a)
    return s * ad.reduce_sum(u ** 3) + v[0]


def _eigh_parts(a):
    e, v = ad.linalg.eigh(a)
    return e + ad.reduce_sum(v ** 3, 0) + ad.linalg.eigvalsh(a)


def _qr_parts(a):
    q, r = ad.linalg.qr(a)
    return q * 2.0 + r



# (name, gpuad function of one example, in_axes, inputs): ad.vmap(f) against f on each
# example, and its per-example gradients (float inputs, float result) against eager ones
RULE_CASES = [
    ("qr", _qr_parts, 0, [_batch(3, 3)]),
    ("svd", _svd_parts, 0, [_batch(3, 2)]),
    ("singular-values-expm", lambda a: ad.linalg.svd(a, compute_uv=False)
     + ad.linalg.expm(a)[0] + ad.norm(a, ord=2, axis=[-2, -1]), 0, [_batch(2, 2)]),
    ("eigh-eigvalsh", _eigh_parts, 0, [SPD]),
    ("solve", lambda a, b: ad.linalg.solve(a, b), 0, [SPD, _batch(3, 2)]),
    ("solve-shared-matrix", lambda a, b: ad.linalg.solve(a, b), (None, 0), [SPD[0], _batch(3)]),
    ("solve-shared-rhs", lambda a, b: ad.linalg.solve(a, b), (0, None), [SPD, _batch(3, 1)[0]]),
    ("triangular-solve", lambda a, b: ad.linalg.triangular_solve(a, b, adjoint=True)
     + ad.linalg.slogdet(a)[1], (0, None), [TRIL, _batch(3, 2)[0]]),
    ("triangular-solve-shared-matrix", lambda a, b: ad.linalg.triangular_solve(
        a, b, lower=False), (None, 0), [TRIL[0].T, _batch(2, 3, 2)]),
    ("conv-batched-images", lambda x, w: ad.nn.conv2d(x, w, 2, "SAME"), (0, None),
     [IMAGES, FILTERS[0]]),
    ("conv-batched-filters", lambda x, w: ad.nn.conv2d(x, w, 1, "VALID", dilations=2),
     (None, 0), [IMAGES[0], FILTERS]),
    ("conv-both-grouped", lambda x, w: ad.nn.conv1d(x, w, 1, "SAME"), 0,
     [_batch(2, 6, 4), _batch(3, 2, 4)]),
    ("pooling", lambda x: ad.nn.max_pool2d(x, 2, 2, "SAME") + ad.nn.avg_pool2d(x, 2, 2, "SAME"),
     0, [IMAGES]),
    ("tensor-scatter", lambda t, u: ad.tensor_scatter_nd_update(t, [[2], [0]], u)
     * ad.tensor_scatter_nd_max(t, [[1], [1]], u), 0, [_batch(4), _batch(2)]),
    ("tensor-scatter-batched-indices", lambda t, i, u: ad.tensor_scatter_nd_min(
        t, ad.expand_dims(i, 1), u) + ad.tensor_scatter_nd_update(t, ad.expand_dims(i, 1), u),
     (None, 0, 0), [_batch(4)[0], INTS[:, :2] + 1, _batch(2)]),
    ("sort-top-k", lambda x: ad.sort(x, direction="DESCENDING") + ad.math.top_k(x, 4).values
     + ad.cast(ad.argsort(x, axis=0), x.dtype), 0, [_batch(4)]),
    ("segments", lambda x: ad.math.unsorted_segment_sum(x, [1, 0, -1, 1], 3)
     + ad.math.segment_sum(x, [0, 0, 1, 2]), 0, [_batch(4, 2)]),
    ("segments-batched-ids", lambda x, i: ad.math.unsorted_segment_sum(x, i, 3), 0,
     [_batch(4, 2), INTS]),
    ("segments-shared-data", lambda x, i: ad.math.unsorted_segment_sum(x * x, i, 3),
     (None, 0), [_batch(4)[0], INTS]),
    ("shape-ops", lambda x, i: ad.reduce_sum(ad.one_hot(i, 3, dtype=x.dtype), 1) * ad.roll(x, 1, 0)
     + ad.reverse(x, [0]) + ad.repeat(x[:2], 2, 0) + ad.gather_nd(
         x, ad.expand_dims(ad.math.abs(i), 1)) * ad.gather(x, ad.math.abs(i)), 0,
     [_batch(4), INTS]),
    ("scans-arg", lambda x: ad.math.cumulative_logsumexp(x, axis=1, reverse=True)
     + ad.cast(ad.argmax(x, 1), x.dtype)[:, None] - ad.cast(ad.argmin(x, 0), x.dtype), 0,
     [_batch(2, 3)]),
    ("complex-int-mean", lambda x: ad.math.abs(ad.complex(x, 2.0 * x)) + ad.math.real(
        ad.math.conj(ad.complex(x, x))) + ad.cast(ad.reduce_mean(ad.cast(x * 10.0, "int32"), 0),
                                                  x.dtype), 0, [_batch(2, 3)]),
]


def _examples(inputs, axes, k):
    return [x if a is None else x[k] for x, a in zip(inputs, axes)]


@pytest.mark.parametrize("name, f, in_axes, inputs", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_batching_rules_run_once_on_the_batch(name, f, in_axes, inputs):
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(inputs)
    args = [ad.constant(x) for x in inputs]
    floats = tuple(i for i, x in enumerate(inputs) if x.dtype.kind == "f")
    loss = lambda *a: ad.reduce_sum(ad.sin(f(*a)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback loop warns: no op here may take it
        got = ad.vmap(f, in_axes=in_axes)(*args)
        grads = ad.vmap(ad.grad(loss, argnums=floats), in_axes=in_axes)(*args)
    want = np.stack([f(*_examples(args, axes, k)).numpy() for k in range(N)])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    for k in range(N):
        eager = ad.grad(loss, argnums=floats)(*_examples(args, axes, k))
        for g, e in zip(grads, eager):
            np.testing.assert_allclose(g.numpy()[k], e.numpy(), rtol=1e-9, atol=1e-12)


def test_batched_segment_ids_out_of_range_raise():
    ids = INTS.copy()
    ids[1, 0] = 3  # would be example 2's segment 0 after the batch's offsets
    with pytest.raises(IndexError, match="unsorted_segment_sum"):
        ad.vmap(lambda x, i: ad.math.unsorted_segment_sum(x, i, 3))(ad.constant(_batch(4)),
                                                                     ad.constant(ids))


@pytest.mark.gpu
def test_batching_rules_on_cupy():
    for name, f, in_axes, inputs in RULE_CASES:
        if name not in ("solve", "conv-both-grouped", "pooling", "segments-batched-ids",
                        "tensor-scatter-batched-indices"):
            continue
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(inputs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = ad.vmap(f, in_axes=in_axes)(*[ad.constant(x, backend="cupy") for x in inputs])
        assert got.backend == "cupy"
        want = np.stack([f(*_examples([ad.constant(x) for x in inputs], axes, k)).numpy()
                         for k in range(N)])
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def test_out_axes_other_than_an_int_or_none_is_a_type_error_naming_vmap():
    with pytest.raises(TypeError, match=r"vmap: out_axes must be an int or None.*\(0, 0\)"):
        ad.vmap(lambda x: (x, x), out_axes=(0, 0))


def test_in_axes_as_a_list_with_keyword_arguments():
    """Was: a list in_axes plus keyword arguments raised TypeError (list + tuple)."""
    xs = ad.constant([[1.0, 2.0], [3.0, 4.0]])
    got = ad.vmap(lambda x, y: x * y, in_axes=[0])(xs, y=xs)
    np.testing.assert_array_equal(got.numpy(), xs.numpy() ** 2)
