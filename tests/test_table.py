"""Generic tests of every derivative-table entry: a new entry is covered without a new test.

Forward values against NumPy in float64, first- and second-order gradients against float64
central differences, on the NumPy backend and (marked gpu) the CuPy backend.
"""
import math

import numpy as np
import pytest

import gpuad as ad
from gpuad import ops, table

ENTRIES = table.load()

# Where an entry's inputs must stay to be differentiable by central differences.
DOMAINS = {
    "log": [(0.2, 3.0)], "sqrt": [(0.2, 3.0)], "rsqrt": [(0.2, 3.0)],
    "log1p": [(-0.5, 3.0)], "reciprocal": [(0.3, 3.0)], "divide": [(-2, 2), (0.3, 3.0)],
    "pow": [(0.3, 2.0), (-2.0, 2.0)], "tan": [(-1.2, 1.2)],
    "mod": [(0.1, 0.9), (1.5, 3.0)], "floordiv": [(0.1, 0.9), (1.5, 3.0)],
    "floor": [(0.1, 0.9)], "ceil": [(0.1, 0.9)], "round": [(0.1, 0.4)],
    "asin": [(-0.9, 0.9)], "acos": [(-0.9, 0.9)], "acosh": [(1.3, 3.0)], "atanh": [(-0.8, 0.8)],
    "xlogy": [(-2.0, 2.0), (0.3, 3.0)], "leaky_relu": [(-2.0, 2.0), (0.05, 0.5)],
    "clip_by_value": [(-2.0, 2.0), (-1.0, -0.5), (0.5, 1.0)],  # x beyond both bounds too
}
# NumPy's spelling of each forward, to check the values the table computes
REFERENCE = {
    "negative": np.negative, "abs": np.abs, "sign": np.sign, "square": np.square,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "reciprocal": np.reciprocal,
    "exp": np.exp, "expm1": np.expm1, "log": np.log, "log1p": np.log1p, "sin": np.sin,
    "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.log1p(np.exp(x)), "relu": lambda x: np.maximum(x, 0),
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "where": np.where,
    "floor": np.floor, "ceil": np.ceil, "round": np.rint, "floordiv": np.floor_divide,
    "mod": np.mod, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh,
    "cosh": np.cosh, "erf": np.vectorize(math.erf, otypes=[np.float64]), "atan2": np.arctan2,
    "squared_difference": lambda x, y: (x - y) ** 2,
    "clip_by_value": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "xlogy": lambda x, y: np.where(x == 0, 0.0, x * np.log(y)),
    "log_sigmoid": lambda x: -np.log1p(np.exp(-x)),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 *
                                                     np.expm1(np.minimum(x, 0))),
    "silu": lambda x: x / (1 + np.exp(-x)), "softsign": lambda x: x / (1 + np.abs(x)),
    "leaky_relu": lambda x, alpha: np.where(x > 0, x, alpha * x),
}


def test_every_entry_has_a_reference():
    assert set(ENTRIES) == set(REFERENCE), "add the new entry's NumPy reference to REFERENCE"


def domain(name, i):
    """The interval input ``i`` of table entry ``name`` is drawn from."""
    domains = DOMAINS.get(name, [])
    return domains[i] if i < len(domains) else (-2.0, 2.0)


def entry_inputs(name, shapes, rng):
    """Inputs of table entry ``name`` in its domain: uniform floats (float64), or random
    booleans for a bool input."""
    entry = ENTRIES[name]
    return [rng.uniform(size=shape) > 0.5 if arg in entry.ctypes else
            rng.uniform(*domain(name, i), size=shape)
            for i, (arg, shape) in enumerate(zip(entry.inputs, shapes))]


def sample(name, shapes, dtype=np.float64, seed=0):
    """Inputs inside the entry's domain, away from kinks (|x| >= 0.2, x != y)."""
    values = entry_inputs(name, shapes, np.random.default_rng(seed))
    for i, v in enumerate(values):
        if v.dtype == bool:
            continue
        low, high = domain(name, i)
        if low < 0 < high:  # keep away from 0, where abs, relu and sign have kinks
            v = np.where(np.abs(v) < 0.2, 0.2 + np.abs(v), v)
        values[i] = v.astype(dtype)
    if name in ("maximum", "minimum"):  # keep the two arguments apart
        values[1] = values[0] + np.where(np.random.default_rng(seed + 1).uniform(
            size=shapes[1]) > 0.5, 0.5, -0.5).astype(dtype)
    return values


def shapes_for(name, broadcast):
    n = len(ENTRIES[name].inputs)
    if not broadcast or n == 1:
        return [(3, 4)] * n
    return [(3, 4), (4,), (3, 1)][:n] if n == 3 else [(3, 4), (4,)]


@pytest.mark.parametrize("name", sorted(ENTRIES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_numpy(name, dtype):
    values = sample(name, shapes_for(name, broadcast=True), dtype)
    got = getattr(ad, name)(*values).numpy()
    want = REFERENCE[name](*values)
    assert got.dtype == (want.dtype if name != "where" else dtype) or got.dtype == dtype
    np.testing.assert_allclose(got, want.astype(got.dtype), rtol=2e-6 if dtype == np.float32
                               else 1e-12, atol=1e-6 if dtype == np.float32 else 1e-12)


def _differentiable_inputs(name):
    entry = ENTRIES[name]
    return [i for i, n in enumerate(entry.inputs) if n in entry.partials]


def _check(name, broadcast, order):
    values = sample(name, shapes_for(name, broadcast))
    diff = _differentiable_inputs(name)
    if not diff:
        pytest.skip(f"{name} has no gradient")

    def f(*xs):  # differentiate the inputs that have partials; hold the others fixed
        args = list(values)
        for i, x in zip(diff, xs):
            args[i] = x
        return getattr(ad, name)(*args)
    ad.testing.check_gradients(f, [values[i] for i in diff], order=order)


@pytest.mark.parametrize("name", sorted(ENTRIES))
@pytest.mark.parametrize("broadcast", [False, True])
def test_first_order(name, broadcast):
    _check(name, broadcast, order=1)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_second_order(name):
    _check(name, broadcast=True, order=2)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_first_and_second_order_on_cupy(name):
    _check(name, broadcast=True, order=1)
    _check(name, broadcast=True, order=2)


@pytest.mark.parametrize("name", [n for n in sorted(ENTRIES) if not ENTRIES[n].partials])
def test_no_gradient_entries_give_none(name):
    values = [ad.constant(v) for v in sample(name, shapes_for(name, False))]
    with ad.GradientTape() as tape:
        tape.watch(values)
        y = getattr(ad, name)(*values)
    assert tape.gradient(y, values) == [None] * len(values)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_fused_and_differentiable_rules_agree(name):
    """The NumPy-fused VJP and the gpuad-ops VJP are renderings of one expression."""
    prim = ops.PRIMITIVES[name]
    diff = _differentiable_inputs(name)
    if not diff:
        pytest.skip(f"{name} has no gradient")
    values = [ad.constant(v) for v in sample(name, shapes_for(name, False), np.float32)]
    out = getattr(ad, name)(*values)
    saved = prim.save(tuple(values), out, None)
    needs = tuple(i in diff for i in range(len(values)))
    g = ad.constant(np.random.default_rng(3).uniform(-1, 1, out.shape).astype(np.float32))
    fused = prim.vjp(g.numpy(), saved, None, needs, False)
    recorded = prim.vjp(g, saved, None, needs, True)
    for a, b in zip(fused, recorded):
        assert (a is None) == (b is None)
        if a is not None:
            assert np.asarray(a).dtype == np.float32
            np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol=1e-6, atol=1e-7)


def test_conventions_at_kinks_follow_tensorflow():
    x = ad.constant([0.0, -1.0, 2.0])
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ys = {n: getattr(ad, n)(x) for n in ("abs", "relu", "sign", "sqrt")}
        tie = ad.maximum(x, ad.constant([0.0, 1.0, 2.0]))
        tie_min = ad.minimum(x, ad.constant([0.0, 1.0, 2.0]))
    assert tape.gradient(ys["abs"], x).numpy().tolist() == [0.0, -1.0, 1.0]
    assert tape.gradient(ys["relu"], x).numpy().tolist() == [0.0, 0.0, 1.0]
    assert tape.gradient(ys["sign"], x).numpy().tolist() == [0.0, 0.0, 0.0]
    assert np.isinf(tape.gradient(ys["sqrt"], x).numpy()[0])
    assert tape.gradient(tie, x).numpy().tolist() == [1.0, 0.0, 1.0]  # ties: all to x
    assert tape.gradient(tie_min, x).numpy().tolist() == [1.0, 1.0, 1.0]


def test_table_rejects_malformed_lines(tmp_path):
    bad = tmp_path / "derivatives.txt"
    bad.write_text("sin(x) = sin(x) ; dz = cos(x)\n")
    with pytest.raises(ValueError, match="derivatives.txt:1"):
        table.load(bad)
    bad.write_text("f(g) = g ; dg = 1\n")
    with pytest.raises(ValueError, match="reserved"):
        table.load(bad)


def test_erf_is_float64_accurate():
    """gpuad's own NumPy erf (Cody's approximations) against the C library's, in ulps."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-7, 7, 20000), rng.uniform(-0.5, 0.5, 5000),
                        10 ** rng.uniform(-300, 2, 5000) * rng.choice([-1, 1], 5000),
                        [0.0, 0.46875, np.nextafter(0.46875, 1), 4.0, np.nextafter(4.0, 5),
                         6.0, 27.0, 1e300, np.inf, -np.inf]])
    want = np.array([math.erf(v) for v in x])
    got = ad.erf(x).numpy()
    ulps = np.abs(got - want) / np.spacing(np.abs(want))
    assert ulps.max() <= 4, (x[ulps.argmax()], got[ulps.argmax()], want[ulps.argmax()])
    assert np.isnan(ad.erf(np.array([np.nan])).numpy()).all()
    assert np.signbit(ad.erf(np.array(-0.0)).numpy())
    assert ad.erf(np.float32(0.5)).dtype == np.float32


def test_clip_by_value_gradient_follows_tensorflow():
    """x gets the gradient on the bounds inclusive; a bound only where x lies beyond it."""
    x = ad.constant([-2.0, -1.0, 0.0, 1.0, 2.0])
    lo, hi = ad.constant(-1.0), ad.constant(1.0)
    with ad.GradientTape() as tape:
        tape.watch([x, lo, hi])
        y = ad.clip_by_value(x, lo, hi)
    gx, glo, ghi = tape.gradient(y, [x, lo, hi])
    assert y.numpy().tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    assert gx.numpy().tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert float(glo) == 1.0 and float(ghi) == 1.0


def test_mod_and_rounding_gradients_follow_tensorflow():
    """FloorMod: (1, -floor(x / y)); floor, ceil, round and floordiv: None."""
    x, y = ad.constant([5.5, -5.5]), ad.constant([2.0, 2.0])
    with ad.GradientTape(persistent=True) as tape:
        tape.watch([x, y])
        m = ad.mod(x, y)
        rounded = [ad.floor(x), ad.ceil(x), ad.round(x), ad.floordiv(x, y)]
    gx, gy = tape.gradient(m, [x, y])
    assert gx.numpy().tolist() == [1.0, 1.0] and gy.numpy().tolist() == [-2.0, 3.0]
    for r in rounded:
        assert tape.gradient(r, [x, y]) == [None, None]


def test_complex_vjps_conjugate_the_partials():
    """TensorFlow's complex rule g * conj(d_x): conj pushed into selects, off constants."""
    entries = table.load()
    spec = table.vjp_kernel_spec(entries["multiply"], (True, True), conjugate=True)
    assert spec.operation == "gx = (g * conj(y)); gy = (g * conj(x));"
    where = table.vjp_kernel_spec(entries["where"], (False, True, True), conjugate=True)
    assert "conj" not in where.operation  # partials 1 and 0: real
    pow_dy = table.vjp_exprs(table.complex_entry(entries["pow"]), (False, True), True)[1]
    assert table.ast.unparse(pow_dy) == "where(x == 0, 0, g * conj(out * log(x)))"
    assert table.complex_entry(entries["pow"]).saves == entries["pow"].saves
    assert table.COMPLEX_ENTRIES <= set(entries)


def test_float16_kernels_compute_in_float():
    spec = table.vjp_kernel_spec(table.load()["sin"], (True,))
    source, name = table.contiguous_kernel(spec, "", "half", ("full", "value"))
    assert name == "gpuad_vjp_sin_x_half_fv" and "typedef float T;" in source
    assert "const T x = x_s;" in source and "const float x_s" in source  # a value: float
    assert "const T g = ad_load_half(g_p[i]);" in source
    assert "gx_p[i] = ad_store_half(gx);" in source
    source, _ = table.contiguous_kernel(spec, "", "complex<float>", ("full", "full"))
    assert source.startswith(table.COMPLEX_HEADER) and "typedef complex<float> T;" in source
