"""gpuad/core.py: bind sees every op, records are in topological order, observers and
recorders are per thread and restored, abstract evaluation agrees with the eager result,
and an allocator's MemoryError comes out of bind naming the primitive."""
import threading

import numpy as np
import pytest

import gpuad as ad
from gpuad import array_ops, core, math_ops, ops, table
from gpuad.tensor import Tensor
from op_registry import NOT_DIFFERENTIABLE, REGISTRY
from test_op_registry import public_ops

# ------------------------------------------------------------------ bind sees every op

TABLE = table.load()


def _table_case(name):
    """A case of derivative-table op ``name``: floats inside every entry's domain (0.3 to
    0.9; acosh's from 1.3), a bool array for a bool input, the second and later inputs
    broadcast."""
    entry, rng = TABLE[name], np.random.default_rng(0)
    low = 1.3 if name == "acosh" else 0.3
    args = [rng.uniform(size=(4,) if i else (3, 4)) for i in range(len(entry.inputs))]
    args = [a > 0.5 if n in entry.ctypes else low + 0.6 * a
            for a, n in zip(args, entry.inputs)]
    return lambda: getattr(ad, name)(*[ad.constant(a) for a in args])


def _cases(name):
    """Thunks running op ``name``: its registry cases, its value check, or a table case."""
    if name in REGISTRY:
        return [lambda fn=fn, args=args: fn(*[ad.constant(a) for a in args])
                for fn, args in REGISTRY[name]]
    if name in NOT_DIFFERENTIABLE:
        return [NOT_DIFFERENTIABLE[name]]
    return [_table_case(name)]


ALL_OPS = sorted(set(REGISTRY) | set(NOT_DIFFERENTIABLE) | set(TABLE))


def _resolve(name):
    value = ad
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _tensors(value):
    """The Tensors in a (nested list or tuple) value."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def test_bind_cases_cover_every_public_op():
    missing = sorted(public_ops() - set(ALL_OPS) - {"nn." + n for n in ALL_OPS})
    assert not missing, f"public ops that test_bind_sees_every_public_op does not run: {missing}"


@pytest.mark.parametrize("name", ALL_OPS)
def test_bind_sees_every_public_op(name, monkeypatch):
    """Every public op runs through bind: each of its cases binds, only Tensors come out of
    binds, the op itself binds, and every Tensor the op returns came out of one of its binds
    (or is one of its arguments, passed through)."""
    op = _resolve(name)
    depth, during_op, calls = [0], [], []

    def spied(*args, **kwargs):
        depth[0] += 1
        start = len(during_op)
        try:
            result = op(*args, **kwargs)
        finally:
            depth[0] -= 1
        if not depth[0]:  # an outermost call (ops call each other: softmax in cross entropy)
            calls.append((args, kwargs, result, during_op[start:]))
        return result

    # every name the op is reachable by: gpuad, gpuad.nn, gpuad.linalg (imported names
    # included), gpuad.random, and Tensor's operators (x[i], x @ y, x > y)
    for namespace in (ad, ad.nn, ad.linalg, ad.random, Tensor):
        for attr, value in list(vars(namespace).items()):
            if value is op:
                monkeypatch.setattr(namespace, attr, spied)

    for i, case in enumerate(_cases(name)):
        seen = []

        def observe(primitive, args, attrs, out):
            seen.append((primitive, out))
            if depth[0]:
                during_op.append(out)

        calls.clear()
        del during_op[:]
        with core.observing(observe):
            result = case()
        where = f"{name}, case {i}"
        assert seen, f"{where}: no bind observed"
        for primitive, out in seen:
            assert isinstance(primitive, core.Primitive), (where, primitive)
            assert isinstance(out, Tensor), f"{where}: {primitive.name} returned {type(out)}"
        assert calls, f"{where}: the case never called {name}"
        assert during_op, f"{where}: {name} itself never binds (its calls observed no bind)"
        outs = {id(t) for _, t in seen}
        for t in _tensors(result):
            assert id(t) in outs, f"{where}: the case's result did not come out of a bind"
        for args, kwargs, returned, binds in calls:
            produced = {id(t) for t in binds} | {id(t) for t in _tensors(list(args))} | \
                {id(t) for t in _tensors(list(kwargs.values()))}
            for t in _tensors(returned):
                assert id(t) in produced, \
                    f"{where}: {name} returned a Tensor of shape {t.shape} made outside bind"


# ------------------------------------------------------------- records: topological order

def _check_records(tape, tensors):
    """The invariant reverse mode relies on, and each record's fields against the output
    Tensor it describes (``tensors``: id -> Tensor)."""
    previous = 0
    for key, record in tape._records.items():
        assert isinstance(record, core.Record)
        assert key == record.out_id
        assert record.out_id > previous, "tape._records is not in increasing id order"
        previous = record.out_id
        for i in record.input_ids:
            assert i == 0 or i < record.out_id, \
                f"{record.primitive.name}: input id {i} is not below its output id {record.out_id}"
        assert len(record.input_ids) >= 1
        out = record.out
        assert isinstance(out, core.Aval)
        assert out == (record.out_shape, record.out_dtype, record.out_backend)
        assert out == core.Aval(record.out_shape, record.out_dtype, record.out_backend)
        t = tensors.get(record.out_id)
        if t is not None:
            assert (record.out_shape, record.out_dtype, record.out_backend) == \
                (t.shape, t.dtype, t.backend), record.primitive.name
            assert out == core.aval_of(t)


@pytest.mark.parametrize("observed", [False, True], ids=["fast-paths", "observed"])
def test_record_ids_are_in_topological_order(observed):
    """Branches, reuse of intermediates, a Variable read, broadcasting, and the gradient of
    an inner tape recorded by an outer one.  Observed, every op goes through bind (and every
    record's output is checked); else the ops' inlined fast paths record."""
    v = ad.Variable(np.array([[0.5, -0.3, 0.2], [0.1, 0.8, -0.6]]))
    x = ad.constant(np.array([[0.1, 0.2], [0.3, -0.4], [0.7, 0.05]]))
    observed_outputs = []  # observers see an op before it is recorded: ids come after

    def observe(primitive, args, attrs, out):
        observed_outputs.append(out)

    with core.observing(observe) if observed else _nothing():
        with ad.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with ad.GradientTape(persistent=True) as inner:
                inner.watch(x)
                h = ad.matmul(x, v)                      # reads v: (3, 3)
                a = ad.sin(h)
                b = h * h                                 # h reused
                c = ad.reduce_sum(a * b, axis=0)          # the branches joined
                d = ad.exp(c)[1] + ad.reduce_sum(ad.transpose(h) / 2.0)
                e = ad.tanh(x) * ad.reshape(c, (3, 1))[:, :1]  # broadcast, x reused
                y = d + ad.reduce_mean(e) + ad.reduce_sum(v * v)  # v read again
            held = {t._id: t for t in (h, a, b, c, d, e, y)}
            # checked before reverse mode walks the inner tape
            _check_records(inner, {**held, **{t._id: t for t in observed_outputs if t._id}})
            dx, dv = inner.gradient(y, [x, v])            # recorded by outer
            z = ad.reduce_sum(dx * dx) + ad.reduce_sum(ad.sqrt(dv * dv + 1.0)) + y
        gx, gv = outer.gradient(z, [x, v])
    assert gx is not None and gv is not None and gx.shape == x.shape and gv.shape == v.shape

    held.update((t._id, t) for t in (dx, dv, z))
    for t in (h, a, b, c, d, e, y):
        assert t._id in inner._records and t._id in outer._records
    for t in (dx, dv, z):  # the backward pass of the inner tape: on the outer tape only
        assert t._id in outer._records and t._id not in inner._records
    assert len(outer._records) > len(inner._records)
    outputs = {t._id: t for t in observed_outputs if t._id}
    for tape in (inner, outer):
        if observed:  # every record comes from an observed bind
            missing = [r.primitive.name for r in tape._records.values()
                       if r.out_id not in outputs]
            assert not missing, f"records of ops that no observer saw: {missing}"
        _check_records(tape, {**held, **outputs})


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------- observers

def test_observers_are_per_thread_and_removed():
    before = core.OBSERVING
    x = ad.constant([0.5, 1.5])
    main, other = [], []
    started, go = threading.Event(), threading.Event()
    failures = []

    def worker():
        try:
            with core.observing(lambda p, args, attrs, out:
                                other.append((threading.get_ident(), p.name, out))):
                started.set()
                assert go.wait(10)
                y = ad.cos(x)
            ad.tanh(x)  # after its block: this thread's observer is gone
            other.append(("result", y))
        except BaseException as error:  # surfaced in the main thread
            failures.append(error)
            started.set()

    with core.observing(lambda p, args, attrs, out:
                        main.append((threading.get_ident(), p.name, args, out))):
        thread = threading.Thread(target=worker)
        thread.start()
        assert started.wait(10)
        assert core.OBSERVING == before + 2  # both observe at the same time
        s = ad.sin(x)
        go.set()
        thread.join(10)
        assert not thread.is_alive() and not failures, failures
        p = s * 2.0
    assert core.OBSERVING == before

    me = threading.get_ident()
    assert [(t, n) for t, n, _, _ in main] == [(me, "sin"), (me, "multiply")]  # no cos
    assert main[0][2] == (x,) and main[0][3] is s and main[1][3] is p
    (ident, name, out), (tag, y) = other
    assert ident != me and name == "cos" and tag == "result" and out is y  # no sin, no tanh

    ad.exp(x)  # outside every block: nobody observes
    assert len(main) == 2 and len(other) == 2

    # nested observers both see; each is removed at the end of its block, also on an error
    outer, inner = [], []
    with core.observing(lambda p, *rest: outer.append(p.name)):
        with pytest.raises(ZeroDivisionError):
            with core.observing(lambda p, *rest: inner.append(p.name)):
                ad.sin(x)
                1 / 0
        assert core.OBSERVING == before + 1
        ad.cos(x)
    assert core.OBSERVING == before
    ad.tan(x)
    assert outer == ["sin", "cos"] and inner == ["sin"]


# --------------------------------------------------------------------------- recorders

def test_recording_suspended_hides_recorders():
    x = ad.constant([0.3, 0.6])
    start = list(core.recorders())
    with ad.GradientTape(persistent=True) as outer:
        outer.watch(x)
        with ad.GradientTape(persistent=True) as inner:
            inner.watch(x)
            stack = list(core.recorders())
            assert stack[-2:] == [outer, inner]
            y = x * x
            n_outer, n_inner = len(outer._records), len(inner._records)

            with core.recording_suspended():  # every recorder hidden
                assert list(core.recorders()) == start
                hidden = ad.sin(x) * x
            assert list(core.recorders()) == stack
            assert (len(outer._records), len(inner._records)) == (n_outer, n_inner)
            assert hidden._id not in outer._records

            with pytest.raises(RuntimeError):  # restored on an exception too
                with core.recording_suspended():
                    raise RuntimeError("inside")
            assert list(core.recorders()) == stack

            with core.recording_suspended(inner):  # inner hidden, outer records
                assert list(core.recorders()) == stack[:-1]
                only_outer = ad.exp(x)
            assert list(core.recorders()) == stack
            assert only_outer._id in outer._records and only_outer._id not in inner._records

            with pytest.raises(KeyError):
                with core.recording_suspended(outer):  # outer and inner (inside it) hidden
                    assert list(core.recorders()) == start
                    ad.cos(x)
                    raise KeyError("inside")
            assert list(core.recorders()) == stack
            assert (len(outer._records), len(inner._records)) == (n_outer + 1, n_inner)

            after = ad.tanh(x)  # recording again
            assert after._id in outer._records and after._id in inner._records
    assert list(core.recorders()) == start
    assert inner.gradient(hidden, x) is None and outer.gradient(hidden, x) is None
    assert inner.gradient(only_outer, x) is None
    np.testing.assert_allclose(outer.gradient(only_outer, x).numpy(), np.exp([0.3, 0.6]),
                               rtol=1e-6)
    np.testing.assert_allclose(inner.gradient(y, x).numpy(), [0.6, 1.2], rtol=1e-6)


# ------------------------------------------------------------------ abstract evaluation

def _c(shape, dtype=np.float64, seed=0):
    return ad.constant(np.random.default_rng(seed).uniform(0.5, 1.5, shape).astype(dtype))


ABSTRACT_CASES = [
    ("add broadcast", ops.PRIMITIVES["add"], lambda: ad.add(_c((3, 1)), _c((4,), seed=1))),
    ("atan2 float32", ops.PRIMITIVES["atan2"],
     lambda: ad.atan2(_c((2, 1, 3), np.float32), _c((4, 1), np.float32))),
    ("multiply operator", ops.PRIMITIVES["multiply"], lambda: _c((1, 5)) * _c((2, 1))),
    ("reduce_sum axes", array_ops.REDUCE_SUM, lambda: ad.reduce_sum(_c((2, 3, 4)), (0, 2))),
    ("reduce_sum keepdims", array_ops.REDUCE_SUM,
     lambda: ad.reduce_sum(_c((2, 3, 4), np.float32), -1, keepdims=True)),
    ("reduce_sum all", array_ops.REDUCE_SUM, lambda: ad.reduce_sum(_c((2, 3)))),
    ("reshape", array_ops.RESHAPE, lambda: ad.reshape(_c((2, 3, 4)), (4, -1))),
    ("matmul batch broadcast", math_ops.MATMUL,
     lambda: ad.matmul(_c((2, 1, 3, 4)), _c((5, 4, 6), seed=1))),
    ("matmul float32", math_ops.MATMUL,
     lambda: ad.matmul(_c((3, 4), np.float32), _c((4, 2), np.float32))),
    ("transpose", array_ops.TRANSPOSE, lambda: ad.transpose(_c((2, 3, 4)), (2, 0, 1))),
    ("cast", array_ops.CAST, lambda: ad.cast(_c((2, 3)), np.float32)),
]


@pytest.mark.parametrize("primitive, run", [c[1:] for c in ABSTRACT_CASES],
                         ids=[c[0] for c in ABSTRACT_CASES])
def test_abstract_eval_matches_eager(primitive, run):
    binds = []
    with core.observing(lambda p, args, attrs, out: binds.append((p, args, attrs, out))):
        run()
    mine = [b for b in binds if b[0] is primitive]
    assert mine, f"{primitive.name} was not bound (saw {[b[0].name for b in binds]})"
    for p, args, attrs, out in mine:
        avals = [core.aval_of(a) for a in args]
        got = p.abstract_eval(avals, attrs)
        assert isinstance(got, core.Aval)
        assert (got.shape, got.dtype) == (out.shape, out.dtype)
        assert got == core.aval_of(out)


# ------------------------------------------------------------------------ memory errors

class _ArrayMemoryError(MemoryError):
    """What NumPy's allocator raises (numpy's _ArrayMemoryError): a MemoryError with the
    shape and dtype it could not allocate, naming no op."""

    def __init__(self, shape, dtype):
        super().__init__(f"Unable to allocate array with shape {shape} and data type {dtype}")
        self.shape, self.dtype = shape, np.dtype(dtype)


def _raise(error):
    def impl(*args, **kwargs):
        raise error
    return impl


def test_bind_names_the_primitive_in_memory_errors(monkeypatch):
    x = ad.constant(np.ones((2, 3)))

    huge = core.Primitive("huge_op", _raise(_ArrayMemoryError((1000, 2000), np.float32)))
    with pytest.raises(MemoryError) as info:
        core.bind(huge, (x,))
    message = str(info.value)
    assert message.startswith("huge_op:") and "8000000 bytes" in message, message
    assert "(1000, 2000)" in message and "float32" in message, message
    assert info.value.__suppress_context__  # raised `from None`: one clean message

    # a real primitive, through its public op
    monkeypatch.setattr(array_ops.TRANSPOSE, "impl",
                        _raise(_ArrayMemoryError((3, 2, 10 ** 6), np.float64)))
    with pytest.raises(MemoryError, match=r"^transpose: .*48000000 bytes"):
        ad.transpose(x)

    # an elementwise primitive through bind (its op's fast path has its own handler)
    monkeypatch.setattr(ops.PRIMITIVES["exp"], "numpy_forward",
                        _raise(_ArrayMemoryError((7, 11), np.float64)))
    with pytest.raises(MemoryError, match=r"^exp: .*616 bytes"):
        core.bind(ops.PRIMITIVES["exp"], (x,))

    # CuPy's OutOfMemoryError: a MemoryError subclass without shape or dtype
    class OutOfMemoryError(MemoryError):
        pass
    cupy_like = core.Primitive("gpu_op", _raise(OutOfMemoryError("allocating 512 bytes")))
    with pytest.raises(MemoryError, match=r"^gpu_op: out of memory \(allocating 512 bytes\)"):
        core.bind(cupy_like, (x,))

    # a plain MemoryError is one an op already named: it passes unchanged
    named = MemoryError("inner_op: cannot allocate 64 bytes")
    with pytest.raises(MemoryError) as info:
        core.bind(core.Primitive("outer_op", _raise(named)), (x,))
    assert info.value is named
