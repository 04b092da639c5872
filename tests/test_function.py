"""``ad.function`` (gpuad/function.py) against eager execution, with tf.function's semantics.

A compiled call must give what the same Python function gives eagerly (float32 within rtol
1e-5, float64 within 1e-12): every op of the op registry and of the derivative table, their
first and second derivatives by tapes inside the function, random compositions with
broadcasting, and large inputs (where pooled buffers and chunked groups are used).  A trace
serves every later call of its signature with that call's values; the signature (shapes,
dtypes, structure, Python values, Variables' shapes) decides when to retrace.  Values that
depend on the inputs cannot become Python data while tracing (TraceError).  Variables are
read and assigned at each call; outputs of one call survive the next; a recording tape around
a call makes it run eagerly; nested functions, methods, random ops and threads work.

The tests at the end of the file are the bugs these tests found (fixed in e6b056d), each with
its input and the result it gave: they stay as regression tests.
"""
import inspect
import math
import os
import random
import re
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import gpuad as ad
from gpuad import fusion, numpy_memory, table
from op_registry import NOT_DIFFERENTIABLE, REGISTRY
from test_table import sample

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


# ---------------------------------------------------------------------------------- helpers

def _rtol(dtype):
    return RTOL[np.dtype(dtype)]


def _numpy_tree(value):
    """A nested result with every Tensor replaced by a copy of its NumPy value."""
    if isinstance(value, ad.Tensor):
        return value.numpy().copy()
    if isinstance(value, dict):
        return {k: _numpy_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_numpy_tree(v) for v in value]
    return value


def assert_same(got, want, rtol, where="result"):
    """``got`` (compiled) has ``want``'s (eager) structure, Nones, shapes, dtypes, and values
    within ``rtol`` (absolute tolerance: ``rtol`` times the largest magnitude of the value, at
    least 1e-3: a value that is 0 but for rounding may round otherwise)."""
    if want is None:
        assert got is None, f"{where}: expected None, got {got!r}"
    elif isinstance(want, dict):
        assert type(got) is type(want) and list(got) == list(want), (where, got)
        for k in want:
            assert_same(got[k], want[k], rtol, f"{where}[{k!r}]")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), \
            f"{where}: {type(got).__name__} of {len(got)} vs {type(want).__name__} of {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, rtol, f"{where}[{i}]")
    elif isinstance(want, (ad.Tensor, np.ndarray)):
        g = got.numpy() if isinstance(got, ad.Tensor) else np.asarray(got)
        w = want.numpy() if isinstance(want, ad.Tensor) else want
        assert isinstance(got, type(want)), f"{where}: {type(got).__name__}"
        assert g.shape == w.shape and g.dtype == w.dtype, \
            f"{where}: {g.shape} {g.dtype} vs eager {w.shape} {w.dtype}"
        finite = np.abs(w[np.isfinite(w)])
        atol = rtol * max(float(finite.max()) if finite.size else 0.0, 1e-3)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=where)
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


def _constants(arrays, dtype=None):
    return [ad.constant(a if dtype is None or np.asarray(a).dtype == bool
                        else np.asarray(a, dtype)) for a in arrays]


def _half_squares(y):
    return ad.reduce_sum(y * y) * 0.5


def _value_of(fn):
    def value(*xs):
        return fn(*xs)
    return value


def _first_order_of(fn):
    """A step with a tape inside: the loss and its gradient with respect to every float input
    (None where it has none)."""
    def first_order(*xs):
        floats = [x for x in xs if x.dtype.kind == "f"]
        with ad.GradientTape() as tape:
            for x in floats:
                tape.watch(x)
            loss = _half_squares(fn(*xs))
        return loss, tape.gradient(loss, floats)
    return first_order


def _second_order_of(fn):
    """Nested tapes inside: the gradient, and the gradient of its squared norm (second
    derivatives of ``fn``)."""
    def second_order(*xs):
        floats = [x for x in xs if x.dtype.kind == "f"]
        with ad.GradientTape() as outer:
            for x in floats:
                outer.watch(x)
            with ad.GradientTape() as inner:
                for x in floats:
                    inner.watch(x)
                loss = _half_squares(fn(*xs))
            grads = inner.gradient(loss, floats)
            connected = [ad.reduce_sum(g * g) for g in grads if g is not None]
            total = connected[0] if connected else None
            for term in connected[1:]:
                total = total + term
        return grads, (outer.gradient(total, floats) if total is not None else None)
    return second_order


ORDERS = {"value": _value_of, "gradient": _first_order_of, "second order": _second_order_of}


def _check_three_calls(fn, calls, dtype):
    """Compile ``fn`` three ways (value, gradient, second order); call each with ``calls``:
    two argument lists of one signature (different values), then one of another shape.
    Each compiled result equals the eager one; the second call does not retrace, the third
    retraces exactly once; the first call's results are unchanged by the later calls."""
    rtol = _rtol(dtype)
    for label in ORDERS:
        step = ORDERS[label](fn)
        compiled = ad.function(step)
        kept = []
        for k, args in enumerate(calls):
            want = step(*args)
            got = compiled(*args)
            assert_same(got, want, rtol, f"{label}, call {k + 1}")
            assert compiled.experimental_get_tracing_count() == (1 if k < 2 else 2), \
                f"{label}, call {k + 1}: {compiled.experimental_get_tracing_count()} traces"
            kept.append((got, _numpy_tree(got)))
        got, snapshot = kept[0]
        assert_same(_numpy_tree(got), snapshot, 0.0, f"{label}: call 1's result after call 3")
        if len(calls) == 3:  # back to the first signature: replayed, no new trace
            assert_same(compiled(*calls[0]), step(*calls[0]), rtol, f"{label}, call 4")
            assert compiled.experimental_get_tracing_count() == 2


def _moved(arrays, seed):
    """Other values of the same shapes: each element scaled by 1 +- 10% (signs, zeros and
    masks kept; well-conditioned matrices stay so)."""
    rng = np.random.default_rng(seed)
    return [a * (1 + 0.1 * rng.uniform(-1, 1, np.shape(a))) for a in arrays]


def _grown(arrays, axes, seed):
    """Each array with one more row along each of ``axes`` ("first", "last" or "all"), the
    new entries drawn within the array's range."""
    rng = np.random.default_rng(seed)
    out = []
    for a in arrays:
        a = np.asarray(a)
        chosen = [] if a.ndim == 0 else [0] if axes == "first" else \
            [a.ndim - 1] if axes == "last" else list(range(a.ndim))
        for axis in chosen:
            shape = list(a.shape)
            shape[axis] = 1
            extra = rng.uniform(a.min(), a.max(), shape) if a.size else np.zeros(shape)
            a = np.concatenate([a, extra], axis=axis)
        out.append(a)
    return out


def _eager_works(fn, arrays, dtype):
    try:
        with np.errstate(all="ignore"):
            for make in ORDERS.values():
                result = make(fn)(*_constants(arrays, dtype))
                if not all(np.isfinite(v).all() for v in _leaves(_numpy_tree(result))):
                    return False
    except Exception:  # a shape the case does not take
        return False
    return True


def _leaves(tree):
    if isinstance(tree, (list, tuple)):
        return [x for t in tree for x in _leaves(t)]
    return [] if tree is None else [np.asarray(tree)]


def _poison_pool(*shapes_and_dtypes):
    """Hand every free pooled buffer of these sizes back filled with all-ones bytes (NaN as
    float32 and float64): a compiled call that returns a buffer it never wrote shows NaNs
    rather than a stale copy of an earlier, maybe equal, result."""
    for shape, dtype in shapes_and_dtypes:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        held = [numpy_memory.empty((nbytes,), np.uint8) for _ in range(8)]
        for buffer in held:
            buffer.fill(0xFF)
        del held


def _poisoned_call(compiled, xs):
    shape = np.broadcast_shapes(*[x.shape for x in xs])
    _poison_pool(*[(x.shape, x.dtype) for x in xs], (shape, np.float32), (shape, np.float64))
    return compiled(*xs)


def _other_shape(fn, arrays, dtype):
    """Inputs of another shape that the case takes (eagerly, with finite results), or None."""
    for axes in ("first", "last", "all"):
        grown = _grown(arrays, axes, seed=7)
        if [a.shape for a in grown] != [np.shape(a) for a in arrays] and \
                _eager_works(fn, grown, dtype):
            return grown
    return None


# --------------------------------------------------------------------- every registered op

def _takes_float32(fn, arrays):
    try:
        fn(*_constants(arrays, np.float32))
    except (TypeError, ValueError):  # the case mixes in float64 data: float64 only
        return False
    return True


REGISTRY_CASES = []
for _name, _cases in sorted(REGISTRY.items()):
    for _i, (_fn, _args) in enumerate(_cases):
        for _dtype in (np.float64, np.float32):
            if _dtype == np.float32 and not _takes_float32(_fn, _args):
                continue
            REGISTRY_CASES.append(pytest.param(_name, _fn, _args, _dtype,
                                               id=f"{_name}-{_i}-{np.dtype(_dtype).name}"))


def test_registry_cases_cover_both_dtypes_and_other_shapes():
    """Most cases run in float32 too, and most take inputs of another shape (the third call
    of test_registered_op_compiled_equals_eager)."""
    n = sum(len(c) for c in REGISTRY.values())
    float32 = sum(1 for c in REGISTRY_CASES if c.values[3] == np.float32)
    assert float32 >= 0.9 * n, (float32, n)
    other = sum(_other_shape(fn, args, np.float64) is not None
                for cases in REGISTRY.values() for fn, args in cases)
    assert other >= 0.9 * n, (other, n)


@pytest.mark.parametrize("name, fn, args, dtype", REGISTRY_CASES)
def test_registered_op_compiled_equals_eager(name, fn, args, dtype):
    """Value, gradient and second order of each registry case under ad.function: call 1
    (traced), call 2 (other values: replayed), call 3 (another shape: retraced), as eager."""
    try:
        ad.function(_value_of(fn))(*_constants(args, dtype))
    except ad.TraceError as error:  # a boolean mask computed from the inputs: refused
        assert "boolean mask" in str(error) and "value" in str(error), str(error)
        return
    calls = [_constants(args, dtype), _constants(_moved(args, seed=1), dtype)]
    other = _other_shape(fn, args, dtype)
    if other is not None:
        calls.append(_constants(other, dtype))
    _check_three_calls(fn, calls, dtype)


def test_data_dependent_masks_are_refused_with_a_trace_error():
    """tf.function gives a dynamic shape; gpuad.function cannot: it raises TraceError,
    naming the function and the comparison that made the mask."""
    def masked(x):
        return x[x > 0.0] * 2.0
    x = ad.constant([[0.5, -1.0], [2.0, 3.0]])
    with pytest.raises(ad.TraceError, match=r"masked.*boolean mask.*by greater"):
        ad.function(masked)(x)
    np.testing.assert_allclose(masked(x).numpy(), [1.0, 4.0, 6.0])  # eager still works


def _creation_and_comparisons(x, y):
    """Every op of the registry's NOT_DIFFERENTIABLE list (comparisons, logical ops,
    creation, random draws with a seed, shapes, argmax), on values or shapes of the inputs."""
    a, b = x > 0.0, y > 0.0
    n = len(x)
    return {
        "equal": ad.equal(x, y), "not_equal": ad.not_equal(x, y), "less": ad.less(x, y),
        "less_equal": x <= y, "greater": ad.greater(x, y), "greater_equal": x >= y,
        "logical_and": ad.logical_and(a, b), "logical_or": a | b, "logical_not": ~a,
        "zeros": ad.zeros(x.shape) + x, "ones": ad.ones((n, 2), "float64"),
        "zeros_like": ad.zeros_like(y) * y, "ones_like": ad.ones_like(x) - x,
        "fill": ad.fill(x.shape, 3.0) * y, "eye": ad.eye(n) * x, "range": ad.range(1, n + 1) * 2,
        "lin_space": ad.lin_space(0.0, 1.0, n) * x,
        "random.normal": ad.random.normal((n,), seed=3) * y,
        "random.uniform": ad.random.uniform((n,), 2, 9, dtype="int32", seed=4),
        "shape": ad.shape(x) * 2, "size": ad.size(y) + 1, "rank": ad.rank(x),
        "argmax": ad.argmax(x * y), "argmin": ad.argmin(ad.stack([x, y]), axis=1),
        "argsort": ad.argsort(ad.stack([x, y]), direction="DESCENDING") + ad.argsort(x - y),
    }


def test_not_differentiable_registry_ops():
    assert set(NOT_DIFFERENTIABLE) <= set(_creation_and_comparisons(ad.ones((2,)), ad.ones((2,))))
    compiled = ad.function(_creation_and_comparisons)
    rng = np.random.default_rng(8)
    for shape in [(4,), (4,), (4,), (6,)]:
        x = ad.constant(np.round(rng.uniform(-2, 2, shape)).astype(np.float32))  # ties
        y = ad.constant(np.round(rng.uniform(-2, 2, shape)).astype(np.float32))
        assert_same(compiled(x, y), _creation_and_comparisons(x, y), 1e-6, f"{shape}")
    assert compiled.experimental_get_tracing_count() == 2


# ----------------------------------------------------------- every derivative-table entry

ENTRIES = table.load()


def _entry_shapes(n, other):
    """Broadcasting shapes for n inputs: (3, 4) with (4,) and (3, 1); another set for the
    third call."""
    shapes = [(2, 5), (5,), (2, 1)] if other else [(3, 4), (4,), (3, 1)]
    return shapes[:n] if n > 1 else shapes[:1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_table_op_compiled_equals_eager(name, dtype):
    n = len(ENTRIES[name].inputs)
    calls = [sample(name, _entry_shapes(n, False), dtype, seed=0),
             sample(name, _entry_shapes(n, False), dtype, seed=1),
             sample(name, _entry_shapes(n, True), dtype, seed=2)]
    op = getattr(ad, name)
    _check_three_calls(lambda *xs: op(*xs), [_constants(c) for c in calls], dtype)


LARGE = [(512, 512), (512,), (512, 1)]  # 2^18 elements: pooled buffers, a chunked group


def _large_table_cases():
    return [pytest.param(name, order, id=f"{name}-{order}")
            for name in sorted(ENTRIES) for order in ORDERS]


@pytest.mark.parametrize("name, order", _large_table_cases())
def test_large_table_op_compiled_equals_eager(name, order):
    """Each table entry over 2^18 elements (broadcast from (512,) and (512, 1)), value,
    gradient and second order: three calls with other values, each as eager; float32 too.
    (Found: the gradients of maximum, minimum, relu, pow, rsqrt, sqrt and where returned an
    unwritten pooled buffer: a fused select with a constant branch was never written.)"""
    n = len(ENTRIES[name].inputs)
    op = getattr(ad, name)
    step = ORDERS[order](lambda *xs: op(*xs))
    for dtype in (np.float64, np.float32) if order == "gradient" else (np.float64,):
        compiled = ad.function(step)
        for seed in range(3):
            xs = _constants(sample(name, LARGE[:n] if n > 1 else LARGE[:1], dtype, seed=seed))
            assert_same(_poisoned_call(compiled, xs), step(*xs), _rtol(dtype),
                        f"{np.dtype(dtype).name}, call {seed + 1}")
        assert compiled.experimental_get_tracing_count() == 1


# ------------------------------------------------------------------ random compositions

UNARY = [ad.sin, ad.cos, ad.tanh, ad.sigmoid, ad.atan, ad.erf, ad.negative, ad.softplus,
         lambda a: a * a, lambda a: ad.exp(-a * a)]
BINARY = [ad.add, ad.subtract, ad.multiply, ad.maximum, ad.minimum, ad.squared_difference,
          lambda a, b: a * 0.5 - b, lambda a, b: ad.atan2(a, b * b + 1.0)]


def _random_program(seed, n_inputs, length=10):
    """A random straight-line program over the inputs: (op, operand indices), each index
    into the values made so far (the inputs first)."""
    rng = random.Random(seed)
    program = []
    for step in range(length):
        available = n_inputs + step
        if rng.random() < 0.45:
            program.append((rng.choice(UNARY), [rng.randrange(available)]))
        else:
            program.append((rng.choice(BINARY), [rng.randrange(available),
                                                 rng.randrange(available)]))
    return program


def _run_program(program, xs):
    values = list(xs)
    for fn, operands in program:
        values.append(fn(*[values[k] for k in operands]))
    # squash before summing: every value made stays bounded
    return ad.reduce_sum(ad.tanh(values[-1])) + 0.5 * ad.reduce_sum(ad.sin(values[-2]))


def _chain_step(program):
    def step(*xs):
        with ad.GradientTape() as tape:
            for x in xs:
                tape.watch(x)
            loss = _run_program(program, xs)
        return loss, tape.gradient(loss, list(xs))
    return step


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("seed", range(6))
def test_random_elementwise_chains(seed, dtype):
    shapes = [(3, 1), (4,), (1, 4)]
    program = _random_program(seed, len(shapes))
    step = _chain_step(program)
    compiled = ad.function(step)
    rng = np.random.default_rng(seed)
    for k in range(3):
        xs = _constants([rng.uniform(-1.5, 1.5, s) for s in shapes], dtype)
        assert_same(compiled(*xs), step(*xs), _rtol(dtype), f"seed {seed}, call {k + 1}")
    assert compiled.experimental_get_tracing_count() == 1
    xs = _constants([rng.uniform(-1.5, 1.5, s) for s in [(2, 5, 1), (5,), (1, 5)]], dtype)
    assert_same(compiled(*xs), step(*xs), _rtol(dtype), f"seed {seed}, another shape")
    assert compiled.experimental_get_tracing_count() == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("seed", range(6))
def test_random_elementwise_chains_large(seed, dtype):
    """The same over (512, 1) x (1024,) x (1, 1024) and a scalar: values of 2^19 elements
    (pooled buffers, chunked elementwise groups with sums in them)."""
    shapes = [(512, 1), (1024,), (1, 1024), ()]
    program = _random_program(100 + seed, len(shapes), length=12)
    step = _chain_step(program)
    compiled = ad.function(step)
    rng = np.random.default_rng(seed)
    for k in range(2):
        xs = _constants([rng.uniform(-1.5, 1.5, s) for s in shapes], dtype)
        got = _poisoned_call(compiled, xs)
        assert_same(got, step(*xs), _rtol(dtype), f"seed {seed}, call {k + 1}")
        if dtype == np.float32:  # the loss, a sum of 2^19 terms, against float64's
            exact = step(*[ad.cast(x, "float64") for x in xs])[0]
            assert abs(float(got[0]) - float(exact)) <= 1e-5 * abs(float(exact))
    assert compiled.experimental_get_tracing_count() == 1


# ------------------------------------------------------------------------------ retracing

def test_same_signature_does_not_retrace_new_shape_or_dtype_does():
    traces = []

    @ad.function
    def f(x, y):
        traces.append(x.shape)  # Python side effects run only while tracing
        return ad.sin(x) * y + 1.0

    a, b = ad.constant([1.0, 2.0]), ad.constant([3.0, 4.0])
    for x, y in [(a, b), (b, a), (a * 2.0, b - 1.0)]:
        assert_same(f(x, y), ad.sin(x) * y + 1.0, 1e-5)
    assert f.experimental_get_tracing_count() == 1 and len(traces) == 1
    c = ad.constant([1.0, 2.0, 3.0])
    assert_same(f(c, c + 1.0), ad.sin(c) * (c + 1.0) + 1.0, 1e-5)  # new shape
    assert f.experimental_get_tracing_count() == 2
    d = ad.constant([1.0, 2.0], dtype="float64")
    assert_same(f(d, d + 1.0), ad.sin(d) * (d + 1.0) + 1.0, 1e-12)  # new dtype
    assert f.experimental_get_tracing_count() == 3
    f(a, b), f(c, c), f(d, d)  # all seen
    assert f.experimental_get_tracing_count() == 3 and len(traces) == 3


def test_python_scalars_retrace_per_value():
    @ad.function
    def f(x, scale, flag):
        return x * scale if flag else x - scale

    x = ad.constant([1.0, -2.0])
    assert_same(f(x, 2.0, True), x * 2.0, 1e-6)
    assert_same(f(x, 3.0, True), x * 3.0, 1e-6)
    assert_same(f(x, 3.0, False), x - 3.0, 1e-6)
    assert_same(f(x, 3, False), x - 3, 1e-6)  # an int is another value than a float
    assert f.experimental_get_tracing_count() == 4
    assert_same(f(x * 5.0, 2.0, True), x * 10.0, 1e-6)  # seen: replayed with the new x
    assert f.experimental_get_tracing_count() == 4


def test_reduce_retracing_makes_python_numbers_inputs():
    @ad.function(reduce_retracing=True)
    def f(x, scale, power):
        return x * scale + x ** ad.cast(power, x.dtype)

    x = ad.constant([1.5, 2.0])
    for scale, power in [(2.0, 2), (-0.5, 3), (10.0, 1), (0.25, 0)]:
        want = x.numpy() * np.float32(scale) + x.numpy() ** power
        np.testing.assert_allclose(f(x, scale, power).numpy(), want, rtol=1e-6)
    assert f.experimental_get_tracing_count() == 1

    @ad.function(reduce_retracing=True)
    def g(x, flag):  # a bool stays a Python value: one trace per value
        return x * 2.0 if flag else x
    g(x, True), g(x, False), g(x, True)
    assert g.experimental_get_tracing_count() == 2


def test_nested_arguments_and_results():
    @ad.function
    def f(inputs, pair, options):
        a, (b, c) = inputs["a"], inputs["rest"]
        return {"sum": a + b, "parts": [a * c, (b - c, options["k"] * a)], "k": options["k"],
                "same": pair[0], "none": None}

    def tensors(seed):
        rng = np.random.default_rng(seed)
        return {"a": ad.constant(rng.uniform(size=3)),
                "rest": [ad.constant(rng.uniform(size=3)), ad.constant(rng.uniform(size=3))]}

    pair = (ad.constant(1.0), ad.constant(2.0))
    for seed in range(3):
        args = (tensors(seed), pair, {"k": 2.0})
        got = f(*args)
        assert_same(got, f._fn(*args), 1e-6)
        assert got["same"] is pair[0]  # an input returned is returned itself, as eagerly
    assert f.experimental_get_tracing_count() == 1
    # another structure: a tuple where there was a list, another key, another Python value
    changed = tensors(4)
    changed["rest"] = tuple(changed["rest"])
    assert_same(f(changed, pair, {"k": 2.0}), f._fn(changed, pair, {"k": 2.0}), 1e-6)
    assert f.experimental_get_tracing_count() == 2
    assert_same(f(tensors(5), pair, {"k": 3.0}), f._fn(tensors(5), pair, {"k": 3.0}), 1e-6)
    assert f.experimental_get_tracing_count() == 3
    assert_same(f(tensors(5), list(pair), {"k": 3.0}), f._fn(tensors(5), list(pair),
                                                           {"k": 3.0}), 1e-6)
    assert f.experimental_get_tracing_count() == 4


def test_keyword_arguments():
    @ad.function
    def f(x, scale=1.0, *, shift):
        return x * scale + shift

    x, y = ad.constant([1.0, 2.0]), ad.constant([3.0, -4.0])
    assert_same(f(x, shift=y), x + y, 1e-6)
    assert_same(f(y, shift=x), y + x, 1e-6)
    assert_same(f(x, 2.0, shift=y), x * 2.0 + y, 1e-6)
    assert f.experimental_get_tracing_count() == 2


def test_numpy_arrays_as_arguments_are_refused():
    with pytest.raises(TypeError, match="pass arrays as Tensors"):
        ad.function(lambda x: x * 2.0)(np.ones(3))


def test_a_warning_after_more_than_five_traces():
    @ad.function
    def f(x):
        return x * 2.0

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the first five traces
        for n in range(1, 6):
            f(ad.ones((n,)))
    with pytest.warns(UserWarning, match="traced"):
        f(ad.ones((6,)))
    assert f.experimental_get_tracing_count() == 6
    np.testing.assert_allclose(f(ad.ones((6,))).numpy(), np.full(6, 2.0))


def test_an_error_while_tracing_leaves_the_function_usable():
    @ad.function
    def f(x):
        if x.shape[0] == 2:
            raise ValueError("two")
        return x * 2.0

    with pytest.raises(ValueError, match="two"):
        f(ad.constant([1.0, 2.0]))
    x = ad.constant([1.0, 2.0, 3.0])
    assert_same(f(x), x * 2.0, 1e-6)
    assert float(ad.constant(2.0) * 3.0) == 6.0  # eager reads work again
    with pytest.raises(ValueError, match="two"):
        f(ad.constant([5.0, 6.0]))
    assert f.experimental_get_tracing_count() == 1


# --------------------------------------------------------------------- trace-time errors

def _line_of(fn, marker):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if marker in line)


def _branches(x):
    y = ad.sin(x) * 2.0
    if y[0] > 0:  # marker: branch
        return y
    return -y


def _to_float(x):
    y = ad.exp(x)
    return x * float(ad.reduce_sum(y))  # marker: float


def _to_int(x):
    y = ad.floor(x)
    return x * int(y[0])  # marker: int


def _to_numpy(x):
    y = ad.tanh(x)
    return ad.constant(y.numpy() * 2.0)  # marker: numpy


@pytest.mark.parametrize("fn, marker, op, what", [
    (_branches, "branch", "greater", "bool()"),
    (_to_float, "float", "reduce_sum", "float()"),
    (_to_int, "int", "getitem", "int()"),
    (_to_numpy, "numpy", "tanh", "Tensor.numpy()"),
], ids=["if", "float", "int", "numpy"])
def test_reading_a_traced_value_raises_trace_error(fn, marker, op, what):
    x = ad.constant([0.5, 1.5])
    fn(x)  # eagerly fine
    compiled = ad.function(fn)
    with pytest.raises(ad.TraceError) as info:
        compiled(x)
    message = str(info.value)
    assert fn.__name__ in message, message
    assert f"by {op}" in message, message
    assert what in message, message
    assert f"line {_line_of(fn, 'marker: ' + marker)} " in message, message
    assert __file__.rstrip("c") in message or "test_function.py" in message, message
    # the state is clean afterwards: eager reads work, the function can trace other code
    assert float(ad.reduce_sum(ad.exp(x))) > 0
    assert compiled.experimental_get_tracing_count() == 0


def test_reading_an_argument_or_a_variable_names_it():
    v = ad.Variable([1.0, 2.0])
    with pytest.raises(ad.TraceError, match="by an argument"):
        ad.function(lambda x: x * float(x))(ad.constant(1.0))
    with pytest.raises(ad.TraceError, match="by a Variable"):
        ad.function(lambda x: x * v.numpy())(ad.constant(1.0))


def test_values_not_depending_on_the_inputs_are_python_data():
    @ad.function
    def f(x):
        c = ad.constant([2.0, 3.0])  # made inside, by no op: a constant
        scale = float(ad.constant(2.0))
        n = len(x)                   # shapes are known while tracing
        if x.shape[0] > 2:           # shape-based control flow
            x = x[:2]
        return x * scale + c * n + np.asarray(c)

    for values in ([1.0, 2.0], [-1.0, 4.0], [1.0, 2.0, 3.0]):
        x = ad.constant(values)
        assert_same(f(x), f._fn(x), 1e-6)
    assert f.experimental_get_tracing_count() == 2
    np.testing.assert_allclose(f(ad.constant([1.0, 2.0, 3.0])).numpy(),
                               [2 + 6 + 2, 4 + 9 + 3])


def test_printing_a_traced_tensor_does_not_raise():
    seen = []

    @ad.function
    def f(x):
        y = ad.sin(x)
        seen.append((repr(y), str(y)))
        return y
    f(ad.constant([1.0]))
    assert "traced" in seen[0][0] and "traced" in seen[0][1]


# ------------------------------------------------------------------------------ Variables

def test_variable_read_by_closure_sees_assignments_outside():
    w = ad.Variable([1.0, 2.0])
    f = ad.function(lambda x: ad.reduce_sum(x * w))
    x = ad.constant([3.0, 4.0])
    assert float(f(x)) == 11.0
    w.assign([10.0, 20.0])
    assert float(f(x)) == 110.0
    w.assign_add([1.0, 1.0])
    assert float(f(x * 2.0)) == 2 * (33.0 + 84.0)
    assert f.experimental_get_tracing_count() == 1


def test_variable_passed_as_argument():
    w = ad.Variable([1.0, 2.0])
    f = ad.function(lambda v, x: v * x + 1.0)
    x = ad.constant([3.0, 4.0])
    assert_same(f(w, x), w * x + 1.0, 1e-6)
    w.assign([-1.0, 0.5])
    assert_same(f(w, x), w * x + 1.0, 1e-6)
    assert f.experimental_get_tracing_count() == 1


def _assigning(v):
    def step(x):
        v.assign(x * 2.0)
        first = v.read_value()
        v.assign_add(x)
        v.assign_sub(ad.sin(v) * 0.5)
        with ad.GradientTape() as tape:
            loss = ad.reduce_sum(v * v)
        grad = tape.gradient(loss, v)
        v.assign_sub(grad * 0.125)
        return first, v.read_value(), loss, grad
    return step


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_assign_assign_add_assign_sub_inside(dtype):
    compiled_v = ad.Variable(np.zeros(3, dtype))
    eager_v = ad.Variable(np.zeros(3, dtype))
    compiled = ad.function(_assigning(compiled_v))
    eager = _assigning(eager_v)
    rng = np.random.default_rng(0)
    for k in range(4):
        x = ad.constant(rng.uniform(-1, 1, 3).astype(dtype))
        assert_same(compiled(x), eager(x), _rtol(dtype), f"call {k + 1}")
        assert_same(compiled_v.numpy(), eager_v.numpy(), _rtol(dtype), f"call {k + 1}: v")
    assert compiled.experimental_get_tracing_count() == 1


def test_assign_of_a_variable_argument_and_a_returned_variable():
    v = ad.Variable([1.0, 2.0])

    @ad.function
    def bump(var, delta):
        return var.assign_add(delta)

    for k in range(1, 4):
        out = bump(v, ad.constant([1.0, 10.0]))
        assert out is v  # a Variable returned is the Variable itself
        np.testing.assert_allclose(v.numpy(), [1.0 + k, 2.0 + 10 * k])
    assert bump.experimental_get_tracing_count() == 1


def _descent(w, b):
    def step(x, y):
        with ad.GradientTape() as tape:
            prediction = ad.matmul(x, w) + b
            loss = ad.reduce_mean(ad.square(prediction - y))
        gw, gb = tape.gradient(loss, [w, b])
        w.assign_sub(0.1 * gw)
        b.assign_sub(0.1 * gb)
        return loss
    return step


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_gradient_descent_steps_compiled_equal_eager(dtype):
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(3, 2)).astype(dtype), np.zeros(2, dtype)
    cw, cb, ew, eb = (ad.Variable(a) for a in (w0, b0, w0, b0))
    compiled, eager = ad.function(_descent(cw, cb)), _descent(ew, eb)
    losses = []
    for k in range(8):
        x = ad.constant(rng.normal(size=(5, 3)).astype(dtype))
        y = ad.constant(rng.normal(size=(5, 2)).astype(dtype))
        got, want = compiled(x, y), eager(x, y)
        assert_same(got, want, _rtol(dtype) * 10, f"step {k}: loss")
        assert_same(cw.numpy(), ew.numpy(), _rtol(dtype) * 10, f"step {k}: w")
        assert_same(cb.numpy(), eb.numpy(), _rtol(dtype) * 10, f"step {k}: b")
        losses.append(float(got))
    assert not np.allclose(cw.numpy(), w0)  # it moved
    assert compiled.experimental_get_tracing_count() == 1


def test_a_variable_of_another_shape_retraces():
    f = ad.function(lambda v, x: ad.reduce_sum(v * x))
    a, b = ad.Variable([1.0, 2.0]), ad.Variable([1.0, 2.0, 3.0])
    assert float(f(a, ad.constant(2.0))) == 6.0
    assert float(f(b, ad.constant(2.0))) == 12.0
    assert f.experimental_get_tracing_count() == 2
    assert float(f(a, ad.constant(3.0))) == 9.0
    assert float(f(b, ad.constant(3.0))) == 18.0
    assert f.experimental_get_tracing_count() == 2


# ----------------------------------------------------------------- outputs survive calls

def test_outputs_survive_later_calls_large():
    """Results of 10^6 elements come from pooled buffers: a later call must not reuse the
    buffers of results still held."""
    def step(x):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.sin(x) * 2.0 + 1.0
            z = ad.exp(-x * x)
            loss = ad.reduce_sum(y * z)
        return y, z * y, loss, tape.gradient(loss, x)

    compiled = ad.function(step)
    rng = np.random.default_rng(2)
    inputs = [ad.constant(rng.uniform(-2, 2, 10 ** 6).astype(np.float32)) for _ in range(3)]
    held = [_poisoned_call(compiled, [x]) for x in inputs]
    for x, got in zip(inputs, held):
        want = step(x)
        for i, (g, w) in enumerate(zip(got, want)):
            if i != 2:
                assert_same(g, w, 1e-5, f"output {i}")
        v = x.numpy().astype(np.float64)
        terms = (np.sin(v) * 2.0 + 1.0) * np.exp(-v * v)
        assert abs(float(got[2]) - terms.sum()) <= 1e-5 * np.abs(terms).sum()
    arrays = [t.numpy() for got in held for t in got if t.size > 1]
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            assert not np.shares_memory(arrays[i], arrays[j])


def test_outputs_survive_later_calls_small():
    f = ad.function(lambda x: (ad.sin(x), x * 2.0))
    a = f(ad.constant([1.0, 2.0]))
    snapshot = _numpy_tree(a)
    f(ad.constant([5.0, 6.0]))
    assert_same(_numpy_tree(a), snapshot, 0.0)


# ------------------------------------------------------------- a tape around a compiled call

def test_tape_around_a_compiled_call_first_and_second_order():
    def g(x):
        return ad.reduce_sum(ad.sin(x) * x * x)

    compiled = ad.function(g)
    x = ad.constant([0.3, -1.2, 2.0], dtype="float64")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with ad.GradientTape() as outer:
                outer.watch(x)
                with ad.GradientTape() as inner:
                    inner.watch(x)
                    y = compiled(x)
                grad = inner.gradient(y, x)
                s = ad.reduce_sum(grad)
            hess_sum = outer.gradient(s, x)
            v = x.numpy()
            np.testing.assert_allclose(float(y), np.sum(np.sin(v) * v * v), rtol=1e-12)
            np.testing.assert_allclose(grad.numpy(), np.cos(v) * v * v + 2 * v * np.sin(v),
                                       rtol=1e-12)
            np.testing.assert_allclose(hess_sum.numpy(), -np.sin(v) * v * v + 4 * v * np.cos(v)
                                       + 2 * np.sin(v), rtol=1e-12)
    mine = [w for w in caught if "GradientTape" in str(w.message)]
    assert len(mine) == 1, [str(w.message) for w in caught]
    assert "runs eagerly" in str(mine[0].message) and "g" in str(mine[0].message)
    assert compiled.experimental_get_tracing_count() == 0  # it ran eagerly, untraced
    assert_same(compiled(x), g(x), 1e-12)  # outside the tape: traced
    assert compiled.experimental_get_tracing_count() == 1


def test_forward_accumulator_around_a_compiled_call():
    compiled = ad.function(lambda x: ad.sin(x) * x)
    x = ad.constant([0.5, 1.0], dtype="float64")
    with pytest.warns(UserWarning, match="runs eagerly"):
        with ad.ForwardAccumulator(x, ad.constant([1.0, 1.0], dtype="float64")) as acc:
            y = compiled(x)
    v = x.numpy()
    np.testing.assert_allclose(acc.jvp(y).numpy(), np.cos(v) * v + np.sin(v), rtol=1e-12)


# -------------------------------------------------------------- nested functions and methods

def test_a_compiled_function_calling_another():
    @ad.function
    def inner(x, y):
        return ad.exp(-x * y)

    @ad.function
    def outer(x, y):
        with ad.GradientTape() as tape:
            tape.watch(x)
            z = ad.reduce_sum(inner(x, y) * x)
        return z, tape.gradient(z, x), inner(y, x)

    def eager(x, y):
        with ad.GradientTape() as tape:
            tape.watch(x)
            z = ad.reduce_sum(ad.exp(-x * y) * x)
        return z, tape.gradient(z, x), ad.exp(-y * x)

    rng = np.random.default_rng(3)
    for _ in range(3):
        x, y = _constants([rng.uniform(-1, 1, 4), rng.uniform(-1, 1, 4)], np.float64)
        assert_same(outer(x, y), eager(x, y), 1e-12)
    assert outer.experimental_get_tracing_count() == 1
    x, y = _constants([[0.5], [2.0]], np.float64)
    assert_same(inner(x, y), ad.exp(-x * y), 1e-12)  # inner, called on its own


class _Model:
    def __init__(self, scale):
        self.w = ad.Variable(np.array([[1.0, -1.0], [0.5, 2.0]]) * scale)

    @ad.function
    def __call__(self, x):
        return ad.tanh(ad.matmul(x, self.w))

    @ad.function
    def train_step(self, x):
        with ad.GradientTape() as tape:
            loss = ad.reduce_sum(self(x) ** 2)  # a compiled method calling another
        self.w.assign_sub(0.1 * tape.gradient(loss, self.w))
        return loss


@pytest.mark.filterwarnings("ignore:gpuad.function:UserWarning")  # the eager reference
def test_compiled_methods():
    a, b = _Model(1.0), _Model(-3.0)
    x = ad.constant([[0.2, 0.4], [-0.1, 0.3]], dtype="float64")
    for _ in range(2):
        for model in (a, b):
            want = np.tanh(x.numpy() @ model.w.numpy())
            np.testing.assert_allclose(model(x).numpy(), want, rtol=1e-12)
    # the same steps eagerly, on copies
    ea, eb = _Model(1.0), _Model(-3.0)
    for _ in range(3):
        for model, eager in ((a, ea), (b, eb)):
            got = model.train_step(x)
            want = _Model.train_step._fn(eager, x)
            assert_same(got, want, 1e-12)
            assert_same(model.w.numpy(), eager.w.numpy(), 1e-12)
    assert _Model.train_step is _Model.__dict__["train_step"]  # unbound: the Function


# ------------------------------------------------------------------------------ random ops

def test_unseeded_random_draws_differ_per_call_seeded_repeat():
    unseeded = ad.function(lambda x: x + ad.random.normal(x.shape))
    seeded = ad.function(lambda x: x + ad.random.normal(x.shape, seed=11)
                         + ad.random.uniform(x.shape, seed=12))
    x = ad.constant(np.zeros(1000, np.float32))
    draws = [unseeded(x).numpy() for _ in range(3)]
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])
    for d in draws:
        assert abs(d.mean()) < 0.2 and 0.8 < d.std() < 1.2
    want = (x + ad.random.normal(x.shape, seed=11) + ad.random.uniform(x.shape, seed=12)).numpy()
    for _ in range(3):
        np.testing.assert_array_equal(seeded(x).numpy(), want)
    y = ad.constant(np.ones(1000, np.float32))
    np.testing.assert_array_equal(seeded(y).numpy(), seeded._fn(y).numpy())
    assert unseeded.experimental_get_tracing_count() == 1
    assert seeded.experimental_get_tracing_count() == 1


def test_identical_random_draws_are_not_merged():
    f = ad.function(lambda x: (x + ad.random.normal((50,)), x + ad.random.normal((50,))))
    x = ad.constant(np.zeros(50, np.float32))
    for _ in range(2):
        a, b = f(x)
        assert not np.array_equal(a.numpy(), b.numpy())


# -------------------------------------------------------------------------------- threads

def _threaded_step(x):
    with ad.GradientTape() as tape:
        tape.watch(x)
        loss = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x)) + ad.reduce_sum(ad.tanh(x[::2]))
    return loss, tape.gradient(loss, x), ad.cos(x) * 3.0


@pytest.mark.parametrize("warm", [True, False], ids=["traced-first", "traced-concurrently"])
def test_four_threads_one_compiled_function(warm):
    """Each thread's results equal the single-threaded replay's: exactly when the function
    was traced before; within float32 rounding when one thread's call is the trace (an eager
    run)."""
    compiled = ad.function(_threaded_step)
    rng = np.random.default_rng(4)
    inputs = [ad.constant(rng.uniform(-2, 2, 1 << 18).astype(np.float32)) for _ in range(4)]
    reference = compiled if warm else ad.function(_threaded_step)
    reference(inputs[-1])  # the trace: later calls replay
    wants = [reference(x) for x in inputs]
    results, errors = [[] for _ in inputs], []
    barrier = threading.Barrier(len(inputs))

    def work(k):
        try:
            barrier.wait(10)
            for _ in range(6):
                results[k].append(_numpy_tree(compiled(inputs[k])))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for k, want in enumerate(wants):
        assert len(results[k]) == 6
        for got in results[k]:
            assert_same(got, list(_numpy_tree(want)), 0.0 if warm else 1e-5, f"thread {k}")
    assert compiled.experimental_get_tracing_count() >= 1


# -------------------------------------------------------------------------------- explain

def _counts(text):
    """(ops traced, steps replayed: those run one by one plus those of a fused group)."""
    match = re.search(r"traced ops: (\d+); replayed (?:ops|steps): (\d+)(?:; fused: (\d+) "
                      r"steps)?", text)
    assert match, text
    return int(match.group(1)), int(match.group(2)) + int(match.group(3) or 0)


def test_explain_shows_the_replay_and_drops_dead_values():
    @ad.function
    def with_dead(x):
        unused = ad.exp(x)  # noqa: F841 (dead: not replayed)
        return ad.sin(x) * 2.0

    @ad.function
    def without(x):
        return ad.sin(x) * 2.0

    @ad.function
    def repeated(x):
        return ad.sin(x) * 2.0 + ad.sin(x) * 2.0  # computed once

    x = ad.constant([0.1, 0.2])
    text = with_dead.explain(x)
    assert "def replay" in text
    traced, replayed = _counts(text)
    clean_traced, clean_replayed = _counts(without.explain(x))
    assert (traced, replayed) == (clean_traced + 1, clean_replayed) and replayed < traced
    traced, replayed = _counts(repeated.explain(x))
    assert traced == 5 and replayed < traced, (traced, replayed)
    concrete = repeated.get_concrete_function(x)
    assert _counts(concrete.explain()) == (traced, replayed)
    assert "def replay" in concrete.explain()
    assert repeated.experimental_get_tracing_count() == 1  # explain traced once, calls reuse it
    assert_same(repeated(x), ad.sin(x) * 4.0, 1e-6)
    assert repeated.experimental_get_tracing_count() == 1
    y = ad.constant([0.3, 0.4])
    assert_same(concrete([y]), ad.sin(y) * 4.0, 1e-6)  # the concrete function replays too


def test_explain_of_a_gradient_step_replays_fewer_ops_than_traced():
    @ad.function
    def step(x):
        with ad.GradientTape() as tape:
            tape.watch(x)
            loss = ad.reduce_sum(ad.sin(x) ** 2)
        return tape.gradient(loss, x)  # the loss itself is not returned

    traced, replayed = _counts(step.explain(ad.constant([0.5, 1.0])))
    assert 0 < replayed < traced


# ------------------------------------------------------------------------ large W3-like step

def _w3(x):
    with ad.GradientTape() as tape:
        tape.watch(x)
        loss = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
    return loss, tape.gradient(loss, x)


def test_large_w3_step_compiled_equals_eager():
    compiled = ad.function(_w3)
    rng = np.random.default_rng(5)
    for k in range(3):
        v = rng.uniform(-3, 3, 10 ** 6).astype(np.float32)
        x = ad.constant(v)
        loss, grad = _poisoned_call(compiled, [x])
        eager_loss, eager_grad = _w3(x)
        np.testing.assert_allclose(grad.numpy(), eager_grad.numpy(), rtol=1e-5, atol=1e-6)
        exact = np.sum(np.sin(v.astype(np.float64)) ** 2 * np.exp(-v.astype(np.float64) ** 2))
        assert loss.dtype == np.float32 and loss.shape == ()
        assert abs(float(loss) - exact) / exact < 1e-5, (k, float(loss), exact)
        assert abs(float(eager_loss) - exact) / exact < 1e-5, (k, float(eager_loss), exact)
        w = v.astype(np.float64)
        np.testing.assert_allclose(grad.numpy(), (2 * np.sin(w) * np.cos(w) - 2 * w * np.sin(w)
                                                  ** 2) * np.exp(-w * w), rtol=1e-4, atol=1e-6)
    assert compiled.experimental_get_tracing_count() == 1


def _chunk_patterns(x, y, s):
    a = ad.sin(x) * y + s
    b = ad.exp(-a * a)
    c = ad.tanh(b - x)
    return (ad.reduce_sum(a), ad.reduce_sum(b * c, axis=0, keepdims=True), ad.reduce_mean(c),
            c, ad.reduce_max(b), ad.reshape(b, (-1,))[:3],
            ad.reduce_sum(ad.broadcast_to(s, x.shape) * 2.0), a[::1000] * 2.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_large_elementwise_groups_with_sums_and_outside_readers(dtype):
    """A size that is not a multiple of the chunk: sums (keepdims too), a mean, values used by
    later non-elementwise ops and returned, a broadcast scalar, as eager."""
    n = (1 << 18) + 12345
    compiled = ad.function(_chunk_patterns)
    rng = np.random.default_rng(9)
    for _ in range(3):
        xs = _constants([rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.uniform(-1, 1)],
                        dtype)
        got, want = _poisoned_call(compiled, xs), _chunk_patterns(*xs)
        for i, (g, w) in enumerate(zip(got, want)):
            # sums of n terms: rounding of the order of n * eps of their magnitude
            rtol = _rtol(dtype) * (100 if w.size == 1 and i != 4 else 1)
            assert_same(g, w, rtol, f"output {i}")
    assert compiled.experimental_get_tracing_count() == 1


# -------------------------------------------------- bugs these tests found (regressions)

def test_same_tensor_passed_for_two_arguments():
    """Was: the tracer mapped both arguments to the last input index, so f(x, x) raised
    KeyError ('input', 1) while compiling."""
    f = ad.function(lambda a, b: a - b)
    x, y = ad.constant([1.0, 2.0]), ad.constant([5.0, 7.0])
    assert_same(f(x, x), x - x, 0.0)
    assert_same(f(x, y), x - y, 0.0)  # the trace of f(x, x) must not alias a and b
    assert_same(f(y, x), y - x, 0.0)


def test_another_variable_of_the_same_shape_as_argument():
    """Was: a Variable argument was captured by identity, so a replay with another Variable
    of the same shape read and assigned the traced one."""
    read = ad.function(lambda v, x: v * x)
    bump = ad.function(lambda v, d: v.assign_add(d))
    v1, v2 = ad.Variable([1.0, 2.0]), ad.Variable([10.0, 20.0])
    x = ad.constant([1.0, 2.0])
    read(v1, x)
    bump(v1, x)
    bump(v2, x)
    np.testing.assert_allclose(v1.numpy(), [2.0, 4.0])   # was [3, 6]: assigned twice
    np.testing.assert_allclose(v2.numpy(), [11.0, 22.0])  # was [10, 20]: untouched
    np.testing.assert_allclose(read(v2, x).numpy(), [11.0, 44.0])  # was v1's value * x
    assert read.experimental_get_tracing_count() == 1 and bump.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("fn", [lambda x: ad.minimum(x, math.inf) + ad.maximum(x, -math.inf),
                                lambda x: ad.where(x > 1.5, x, math.nan)], ids=["inf", "nan"])
def test_python_inf_and_nan_constants(fn):
    """Was: Python numbers were written into the replay's source by repr(): inf and nan were
    undefined names (NameError at the first replay)."""
    compiled = ad.function(fn)
    for values in ([1.0, 2.0], [3.0, 1.0]):
        x = ad.constant(values)
        assert_same(compiled(x), fn(x), 0.0)


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_signed_zero_constants_are_not_merged():
    """Was: common subexpressions were keyed by Python numbers' ==, so x * 0.0 and x * -0.0
    were merged: the replay gave +inf for 1 / (x * -0.0)."""
    f = ad.function(lambda x: (1.0 / (x * 0.0), 1.0 / (x * -0.0)))
    x = ad.constant([1.0, 2.0])
    for _ in range(2):  # the trace, then a replay
        pos, neg = f(x)
        np.testing.assert_array_equal(pos.numpy(), [np.inf, np.inf])
        np.testing.assert_array_equal(neg.numpy(), [-np.inf, -np.inf])


def test_spectral_norm_is_recomputed_per_call():
    """Was: norm(ord=2) of matrices computed the SVD at bind time into the primitive's attrs:
    every replay returned the traced call's norm."""
    f = ad.function(lambda m: ad.norm(m, ord=2, axis=(0, 1)))
    assert float(f(ad.constant(np.eye(2)))) == 1.0
    assert float(f(ad.constant(3.0 * np.eye(2)))) == 3.0  # was 1.0


def test_chunked_sum_of_a_broadcast_scalar():
    """Was: in a chunked group, a sum over all axes of a one-element broadcast added one
    element per 32K-element chunk: d/dc sum(x + c) over 2^19 elements gave 16."""
    def step(x, c):
        with ad.GradientTape() as tape:
            tape.watch(c)
            loss = ad.reduce_sum(x + c)
        return loss, tape.gradient(loss, c)  # d loss / d c = x.size

    compiled = ad.function(step)
    x = ad.constant(np.linspace(0.0, 1.0, 1 << 19, dtype=np.float32))
    c = ad.constant(np.float32(0.5))
    for _ in range(2):  # the trace, then a replay
        loss, grad = compiled(x, c)
        assert float(grad) == float(1 << 19)
        assert_same(loss, step(x, c)[0], 1e-5)


def test_a_variable_created_from_an_input_inside_is_refused():
    """Was: Variable(x * 2.0) inside copied the traced call's value (no bind, no error), and
    replays returned it.  Now refused while tracing, as tf.function refuses an initializer
    that depends on the function's inputs."""
    def make(x):
        v = ad.Variable(x * 2.0)
        return v + 1.0

    with pytest.raises(ad.TraceError, match=r"make.*Variable\(initial_value\).*by multiply"):
        ad.function(make)(ad.constant([1.0, 2.0]))
    np.testing.assert_allclose(make(ad.constant([3.0, 4.0])).numpy(), [7.0, 9.0])  # eagerly

    @ad.function
    def from_a_constant(x):  # an initial value not computed from the inputs is fine
        v = ad.Variable(ad.constant([1.0, 2.0]))
        return v * x
    np.testing.assert_allclose(from_a_constant(ad.constant([3.0, 4.0])).numpy(), [3.0, 8.0])
    np.testing.assert_allclose(from_a_constant(ad.constant([5.0, 6.0])).numpy(), [5.0, 12.0])


@ad.custom_gradient
def _clipped_identity(x):
    return ad.identity(x), lambda dy: ad.clip_by_value(dy, -0.5, 0.5)


def _transforms(x, m):
    """Every transform of gpuad inside one function: their ops are in the trace."""
    with ad.GradientTape(persistent=True) as tape:
        tape.watch([x, m])
        y = ad.reduce_sum(ad.sin(x) * x)
        with tape.stop_recording():
            z = ad.exp(x)  # a constant for the tape
        w = x * z
        rows = ad.tanh(m) * 2.0
        c = ad.reduce_sum(_clipped_identity(x) * 3.0)
    jv_x = ad.ones_like(x)
    with ad.ForwardAccumulator(x, jv_x) as acc:
        v = ad.tanh(x) * x
    return (tape.gradient(y, x), tape.jacobian(w, x), tape.batch_jacobian(rows, m),
            tape.gradient(c, x), acc.jvp(v), ad.grad(lambda t: ad.reduce_sum(t ** 3))(x),
            ad.hessian(lambda t: ad.reduce_sum(ad.sin(t) * t))(x),
            ad.gradients_function(lambda t: ad.reduce_sum(ad.exp(t)))(x)[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_every_transform_inside_a_compiled_function(dtype):
    """Persistent tapes, stop_recording, jacobian, batch_jacobian, custom_gradient,
    ForwardAccumulator and the JAX- and TF1-style transforms inside a compiled function give
    eager's results, on the trace and on replays with other values."""
    compiled = ad.function(_transforms)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = ad.constant(rng.uniform(-1, 1, 3).astype(dtype))
        m = ad.constant(rng.uniform(-1, 1, (2, 3)).astype(dtype))
        for got, want in zip(compiled(x, m), _transforms(x, m)):
            assert_same(got, want, _rtol(dtype))
    assert compiled.experimental_get_tracing_count() == 1


def test_a_fused_group_compiles_through_the_cuda_rendering(monkeypatch):
    """Was: the CuPy path of a fused group never counted its launches, so compiling any
    function with a fused group on CuPy raised AttributeError (ChunkGroup.calls).  The CUDA
    rendering is exercised here with a launcher that records the kernel spec."""
    specs = []
    monkeypatch.setattr(fusion.ChunkGroup, "render", lambda self, name, namespace:
                        self.render_cuda(name, namespace, lambda spec: specs.append(spec)))
    f = ad.function(lambda x: ad.reduce_sum(ad.sin(x) * ad.exp(x)))
    concrete = f.get_concrete_function(ad.constant(np.zeros(1 << 19, np.float32)))
    assert len(specs) == 1 and concrete.fused.calls == 2  # the kernel, and the sum
    assert "calls per call: 2;" in concrete.explain()


def test_a_fused_kernel_has_the_same_name_in_every_process():
    """Was: named by Python's salted hash(), so every process compiled every fused kernel
    again instead of finding its cubin in the disk cache."""
    program = ("import numpy as np, gpuad as ad\n"
               "f = ad.function(lambda x: ad.reduce_sum(ad.sin(x) * ad.exp(x)))\n"
               "c = f.get_concrete_function(ad.constant(np.zeros(1 << 19, np.float32)))\n"
               "print(c.fused.kernel_spec().name)")
    names = {subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            check=True, timeout=120,
                            env={**os.environ, "PYTHONHASHSEED": seed,
                                 "GPUAD_BACKEND": "numpy"}).stdout.strip()
             for seed in ("1", "2")}
    assert len(names) == 1 and names.pop().startswith("gpuad_fused_")
