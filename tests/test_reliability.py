"""Reliability (issue 6): memory that tapes release, exceptions and KeyboardInterrupt inside
tapes and transforms, the per-thread tape stack, hostile input, and no op or gradient ever
writing into a user's array.

The property-based tests (random shapes, axes, dtypes) are in tests/test_properties.py.
"""
import gc
import sys
import threading
import tracemalloc
import weakref

import numpy as np
import pytest

import gpuad as ad
from gpuad import backends, table
from gpuad import core
from op_registry import REGISTRY

from test_table import entry_inputs  # noqa: E402  (inputs in each entry's domain)

ENTRIES = table.load()
RNG = np.random.default_rng(6)
X = RNG.uniform(-1, 1, (3, 4))
W = RNG.uniform(0.5, 1.5, (4,))


def _no_tape_is_recording():
    return list(core.recorders()) == [] and core._recorders.stack == [] and core.ACTIVE == 0


# ================================================================================ 1. memory

@ad.custom_gradient
def _log1pexp(x):
    e = ad.exp(x)  # the gradient closes over an intermediate: the tape keeps it via grad_fn
    return ad.log(1.0 + e), lambda dy: dy * (1.0 - 1.0 / (1.0 + e))


def _nested(x, w):
    with ad.GradientTape() as inner:
        inner.watch(x)
        y = ad.reduce_sum(ad.sin(x) * w)
    g = inner.gradient(y, x)  # recorded by the outer tape: second order
    return ad.reduce_sum(g * g * x)


# each: f(x, w) -> a scalar, through many kinds of records (what they save differs)
GRAPHS = {
    "elementwise": lambda x, w: ad.reduce_sum(ad.exp(ad.sin(x) * w) + ad.tanh(x) ** 3
                                              + ad.sigmoid(x) * ad.sqrt(ad.abs(x) + 1.0)),
    "broadcasting": lambda x, w: ad.reduce_sum(ad.maximum(x, -w) / (1.0 + ad.square(w))
                                               + ad.where(x > 0.0, x * w, w)),
    "reductions": lambda x, w: ad.reduce_logsumexp(x) + ad.reduce_max(x, axis=0)[0]
    + ad.norm(x) + ad.reduce_prod(w) + ad.reduce_variance(x, axis=1)[1]
    + ad.reduce_mean(ad.cumsum(x, axis=1)),
    "linalg": lambda x, w: ad.reduce_sum(ad.matmul(x, w) ** 2)
    + ad.linalg.det(ad.matmul(x, ad.transpose(x)) + ad.eye(3, dtype="float64"))
    + ad.reduce_sum(ad.einsum("ij,j->i", x, w)) + ad.reduce_sum(ad.tensordot(x, w, 1)),
    "shapes": lambda x, w: ad.reduce_sum(ad.concat([x[1:, ::-1], ad.reshape(w, (1, 4))], 0)
                                         ** 2) + ad.reduce_sum(ad.gather(x, [2, 0, 2]) * w)
    + ad.reduce_sum(ad.pad(ad.tile(x, [1, 2]), [[1, 0], [0, 1]]) ** 3)
    + ad.reduce_sum(ad.stack(ad.unstack(x)) * ad.boolean_mask(x, [True, False, True])[0]),
    "nn": lambda x, w: ad.reduce_sum(ad.nn.softmax(x * w) * ad.nn.log_softmax(x))
    + ad.reduce_sum(ad.nn.softmax_cross_entropy_with_logits(ad.nn.softmax(x), x * w)),
    "custom_gradient": lambda x, w: ad.reduce_sum(_log1pexp(x * w)),
    "nested tapes": _nested,
}


def _record(graph, persistent, variable=None):
    """Record GRAPHS[graph] on a tape; only the tape holds the intermediates afterwards."""
    x, w = ad.constant(X), ad.constant(W)
    tape = ad.GradientTape(persistent=persistent)
    with tape:
        tape.watch([x, w])
        y = GRAPHS[graph](x, w if variable is None else variable * w)
    return tape, x, w, y


def _held_by(tape, keep):
    """Weak references to every Tensor and array that ``tape``'s records hold (in saved
    values, attributes and gradient closures), except the objects in ``keep``."""
    skip = {id(o) for k in keep for o in (k, k._value)}
    seen, refs = set(), []

    def visit(v):
        if id(v) in seen or id(v) in skip:
            return
        seen.add(id(v))
        if isinstance(v, ad.Tensor):
            refs.append(weakref.ref(v))
            visit(v._value)
        elif isinstance(v, np.ndarray):
            refs.append(weakref.ref(v))
        elif isinstance(v, (tuple, list)):
            for item in v:
                visit(item)
        elif callable(v) and getattr(v, "__closure__", None):
            for cell in v.__closure__:
                visit(cell.cell_contents)
    for entry in tape._records.values():
        visit(entry)
    return refs


def _alive(refs):
    return [r() for r in refs if r() is not None]


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_non_persistent_tape_releases_every_saved_array_when_gradient_returns(graph, no_gc):
    tape, x, w, y = _record(graph, persistent=False)
    refs = _held_by(tape, [x, w, y])
    assert refs, "the tape should hold intermediates before gradient"
    grads = tape.gradient(y, [x, w])
    assert all(g is not None and g.shape == s.shape for g, s in zip(grads, [x, w]))
    assert not _alive(refs), f"{graph}: saved values still alive after gradient"
    assert tape._records == {} and not tape._ids


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_persistent_tape_keeps_its_record_until_reset_or_deleted(graph, no_gc):
    tape, x, w, y = _record(graph, persistent=True)
    refs = _held_by(tape, [x, w, y])
    first = [g.numpy() for g in tape.gradient(y, [x, w])]
    assert len(_alive(refs)) == len(refs), "a persistent tape keeps what it saved"
    second = [g.numpy() for g in tape.gradient(y, [x, w])]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    tape.reset()
    assert not _alive(refs), f"{graph}: reset() did not release the saved values"
    assert tape.gradient(y, x) is None  # reset forgot everything

    tape, x, w, y = _record(graph, persistent=True)
    refs = _held_by(tape, [x, w, y])
    tape.gradient(y, [x, w])
    tape_ref = weakref.ref(tape)
    del tape
    assert tape_ref() is None, "the tape is in a reference cycle"
    assert not _alive(refs), f"{graph}: deleting the tape did not release the saved values"


def test_persistent_tape_keeps_the_values_a_variable_had_when_read(no_gc):
    v = ad.Variable(W)
    tape, x, w, y = _record("broadcasting", persistent=True, variable=v)
    old = v._value
    v.assign(W * 2.0)  # replaces the array: the tape's snapshot stays valid
    ref = weakref.ref(old)
    del old
    assert ref() is not None and any(t is v for t in tape.watched_variables())
    g = tape.gradient(y, v)
    assert g.shape == v.shape
    del tape
    assert ref() is None


def test_jacobian_of_a_non_persistent_tape_releases_the_record(no_gc):
    x = ad.constant(X)
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.tanh(ad.matmul(x, ad.transpose(x))) * ad.reduce_sum(ad.exp(x))
    refs = _held_by(tape, [x, y])
    assert refs
    assert tape.jacobian(y, x).shape == (3, 3, 3, 4)
    assert not _alive(refs)


def test_forward_accumulator_releases_its_tangents_when_deleted(no_gc):
    x = ad.constant(X)
    acc = ad.ForwardAccumulator(x, ad.ones_like(x))
    with acc:
        y = ad.reduce_sum(ad.sin(x) * ad.exp(x))
    refs = [weakref.ref(t) for t in acc._tangents.values()]
    assert float(acc.jvp(y)) == pytest.approx(np.sum(np.cos(X) * np.exp(X) + np.sin(X)
                                                     * np.exp(X)))
    acc_ref = weakref.ref(acc)
    del acc
    assert acc_ref() is None and not _alive(refs)


def _exception_inside_a_tape():
    x = ad.constant(X)
    try:
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.exp(x) * x
            raise _Boom
    except _Boom:
        pass
    return tape, y


def _transform_runs():
    x, v = ad.constant(X), ad.Variable(W)

    def f(t):
        return ad.reduce_sum(ad.sin(t) * t)

    def tape_gradient(persistent):
        with ad.GradientTape(persistent=persistent) as tape:
            tape.watch(x)
            y = f(x) * v
        return tape.gradient(y, [x, v])

    def forward_over_reverse():
        with ad.ForwardAccumulator(x, ad.ones_like(x)) as acc:
            with ad.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
            g = tape.gradient(y, x)
        return acc.jvp(g)

    def batch_jacobian():
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = x * ad.reduce_sum(x, axis=1, keepdims=True)
        return tape.batch_jacobian(y, x)

    return {
        "tape": lambda: tape_gradient(False),
        "persistent tape": lambda: tape_gradient(True),
        "nested tapes": lambda: _record("nested tapes", False)[0],
        "gradients_function": lambda: ad.gradients_function(f)(x),
        "value_and_gradients_function": lambda: ad.value_and_gradients_function(f)(x),
        "implicit_gradients": lambda: ad.implicit_gradients(lambda t: f(t) * v)(x),
        "grad": lambda: ad.grad(f)(x),
        "jacobian": lambda: ad.jacobian(lambda t: ad.sin(t) * t)(x),
        "hessian": lambda: ad.hessian(f)(x),
        "batch_jacobian": batch_jacobian,
        "vjp": lambda: ad.vjp(lambda t: ad.sin(t) * t, x)[1](ad.ones_like(x)),
        "jvp": lambda: ad.jvp(f, [x], [ad.ones_like(x)]),
        "forward over reverse": forward_over_reverse,
        "custom_gradient": lambda: ad.grad(lambda t: ad.reduce_sum(_log1pexp(t)))(x),
        "exception inside a tape": _exception_inside_a_tape,
    }


@pytest.mark.parametrize("name", sorted(_transform_runs()))
def test_no_reference_cycles(name):
    """Nothing a tape, a transform or an accumulator makes needs the garbage collector."""
    run = _transform_runs()[name]
    run()  # warm the caches (compiled rules) first
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            run()
        found = gc.collect()
        kinds = sorted({type(o).__name__ for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert found == 0, f"{name}: {found} objects in reference cycles: {kinds}"


def test_memory_stays_flat_over_1e5_training_steps():
    """10^5 steps of gradient descent on a 0-d tensor: Python's allocated blocks do not grow
    over the first 9.1 * 10^4, nor tracemalloc's traced memory over the last 8 * 10^3."""
    def step(x):  # minimizes x * (x - 1)
        with ad.GradientTape() as tape:
            tape.watch(x)
            loss = x * (x - 1.0)
        return x - tape.gradient(loss, x) * 0.1

    x = ad.constant(3.0, dtype="float64")
    for _ in range(1000):  # warm-up: caches of compiled rules, free lists
        x = step(x)
    gc.collect()
    blocks = sys.getallocatedblocks()
    for _ in range(90_000):
        x = step(x)
    gc.collect()
    grown_blocks = sys.getallocatedblocks() - blocks
    tracemalloc.start()
    try:
        for _ in range(1000):
            x = step(x)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(8000):
            x = step(x)
        gc.collect()
        grown_bytes = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert float(x) == pytest.approx(0.5)
    # one object kept per step would be 90000 blocks, and at least 8000 * 16 bytes
    assert grown_blocks < 1000, f"{grown_blocks} memory blocks more after 90000 steps"
    assert grown_bytes < 16384, f"{grown_bytes} bytes more after 8000 traced steps"


@pytest.mark.gpu
def test_device_memory_is_released_and_stays_flat_on_cupy():
    cupy = backends.cupy
    pool = cupy.get_default_memory_pool()
    host = RNG.uniform(-1, 1, 1 << 20).astype(np.float32)  # 4 MiB on the device
    x = ad.constant(host, backend="cupy")
    cupy.cuda.Device().synchronize()
    base = pool.used_bytes()

    def record(persistent):
        tape = ad.GradientTape(persistent=persistent)
        with tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.exp(ad.sin(x)) * ad.tanh(x) + ad.sqrt(ad.abs(x) + 1.0))
        return tape, y

    tape, y = record(False)
    assert pool.used_bytes() >= base + 3 * x.array.nbytes  # the saved intermediates
    g = tape.gradient(y, x)
    assert g.backend == "cupy" and g.shape == x.shape
    del tape
    # what is left: the gradient and the scalar target (the pool rounds to 512 bytes)
    assert pool.used_bytes() <= base + g.array.nbytes + 4096
    del g, y
    assert pool.used_bytes() <= base + 4096

    tape, y = record(True)
    tape.gradient(y, x)
    assert pool.used_bytes() >= base + 3 * x.array.nbytes  # kept for the next gradient
    tape.reset()
    assert pool.used_bytes() <= base + 4096
    tape, y = record(True)
    del tape, y
    assert pool.used_bytes() <= base + 4096

    # a training step, many times: the pool's used bytes do not grow
    target = ad.constant(np.array([0.5, -1.5], np.float32), backend="cupy")
    w = ad.constant(np.array([3.0, 2.0], np.float32), backend="cupy")

    def step(w):
        with ad.GradientTape() as tape:
            tape.watch(w)
            loss = ad.reduce_sum(ad.square(w - target))
        return w - tape.gradient(loss, w) * 0.1
    for _ in range(100):
        w = step(w)
    used = pool.used_bytes()
    for _ in range(3000):
        w = step(w)
    assert pool.used_bytes() <= used
    np.testing.assert_allclose(w.numpy(), [0.5, -1.5], rtol=1e-5)


# ================================================================ 2. exceptions inside tapes

class _Boom(Exception):
    pass


def _scenarios():
    """name -> fn(fail): runs a tape or transform in which ``fail()`` raises."""
    x, v = ad.constant(X), ad.Variable(W)

    def tape_block(fail):
        with ad.GradientTape() as tape:
            tape.watch(x)
            ad.sin(x) * v
            fail()

    def nested_with_stop_recording(fail):
        with ad.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with ad.ForwardAccumulator(x, ad.ones_like(x)):
                with ad.GradientTape() as inner:
                    inner.watch(x)
                    y = ad.exp(x)
                    with inner.stop_recording():
                        y * y
                        fail()

    def accumulator(fail):
        with ad.ForwardAccumulator(x, ad.ones_like(x)):
            ad.sin(x) * x
            fail()

    def custom_f(fail):
        @ad.custom_gradient
        def f(t):
            fail()
        with ad.GradientTape() as tape:
            tape.watch(x)
            f(x)

    def custom_grad_fn(fail):  # raised during the backward pass, with an outer tape recording
        @ad.custom_gradient
        def f(t):
            def grad_fn(dy):
                fail()
            return ad.identity(t), grad_fn
        with ad.GradientTape() as outer:
            outer.watch(x)
            with ad.GradientTape() as inner:
                inner.watch(x)
                y = f(x) * x
            inner.gradient(y, x)

    def custom_grad_fn_forward(fail):  # raised in forward mode (the JVP from the VJP)
        @ad.custom_gradient
        def f(t):
            def grad_fn(dy):
                fail()
            return ad.identity(t), grad_fn
        with ad.ForwardAccumulator(x, ad.ones_like(x)):
            f(x)

    def nested_transforms(fail):
        def inner(t):
            fail()
        ad.gradients_function(lambda t: ad.grad(lambda s: inner(s))(t))(x)

    def scalar(fail):
        def f(*args):
            ad.sin(args[0]) * v
            fail()
        return f

    return {
        "GradientTape block": tape_block,
        "nested tapes, accumulator and stop_recording": nested_with_stop_recording,
        "ForwardAccumulator block": accumulator,
        "gradients_function": lambda fail: ad.gradients_function(scalar(fail))(x),
        "value_and_gradients_function":
            lambda fail: ad.value_and_gradients_function(scalar(fail))(x),
        "implicit_gradients": lambda fail: ad.implicit_gradients(scalar(fail))(x),
        "grad": lambda fail: ad.grad(scalar(fail))(x),
        "value_and_grad": lambda fail: ad.value_and_grad(scalar(fail))(x),
        "jacobian": lambda fail: ad.jacobian(scalar(fail))(x),
        "hessian": lambda fail: ad.hessian(scalar(fail))(x),
        "vjp": lambda fail: ad.vjp(scalar(fail), x),
        "jvp": lambda fail: ad.jvp(scalar(fail), [x], [ad.ones_like(x)]),
        "custom_gradient f": custom_f,
        "custom_gradient grad_fn, reverse": custom_grad_fn,
        "custom_gradient grad_fn, forward": custom_grad_fn_forward,
        "transforms nested": nested_transforms,
    }


def _check_the_next_tape_works():
    x = ad.constant([1.0, 2.0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(x * x * x)
    assert tape.gradient(y, x).numpy().tolist() == [3.0, 12.0]
    with ad.ForwardAccumulator(x, ad.constant([1.0, 0.0])) as acc:
        y = ad.reduce_sum(x * x)
    assert float(acc.jvp(y)) == 2.0
    assert float(ad.grad(lambda t: ad.reduce_sum(t ** 3))(ad.constant(2.0))) == 12.0


@pytest.mark.parametrize("error", [_Boom, KeyboardInterrupt])
@pytest.mark.parametrize("name", sorted(_scenarios()))
def test_an_exception_leaves_no_tape_recording(name, error):
    assert _no_tape_is_recording()

    def fail():
        raise error("raised inside")
    try:
        _scenarios()[name](fail)
    except error as raised:
        assert str(raised) == "raised inside"
    else:
        pytest.fail(f"{name}: the exception did not propagate")
    assert _no_tape_is_recording(), f"{name}: {core._recorders.stack} left recording"
    _check_the_next_tape_works()


def test_library_errors_inside_a_tape_leave_no_tape_recording():
    x = ad.constant([1.0, 2.0])
    with pytest.raises(TypeError, match="add"):
        with ad.GradientTape() as tape:
            tape.watch(x)
            x + ad.constant([1.0, 2.0], dtype="float64")  # no implicit promotion
    assert not tape._recording and _no_tape_is_recording()
    with pytest.raises(ValueError, match="output_gradients"):
        with ad.GradientTape() as tape:
            tape.watch(x)
            tape.gradient(x * x, x, output_gradients=ad.ones((3,)))
    assert _no_tape_is_recording()
    t = ad.GradientTape()
    with pytest.raises(ValueError, match="already recording"):
        with t:
            with t:
                pass
    assert not t._recording and _no_tape_is_recording()
    _check_the_next_tape_works()


# ===================================================================================== 3. threads

def _thread_jobs():
    """Four different computations on a shared input: each returns arrays."""
    def tape_gradient(x):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.sin(x) * x ** 3)
        return [tape.gradient(y, x).numpy()]

    def hessian(x):
        return [ad.hessian(lambda t: ad.reduce_logsumexp(t * t))(x).numpy()]

    def forward_over_reverse(x):
        with ad.ForwardAccumulator(x, ad.ones_like(x)) as acc:
            g = ad.grad(lambda t: ad.reduce_sum(ad.tanh(t) * t))(x)
        return [g.numpy(), acc.jvp(g).numpy()]

    def jacobian_and_variable(x):
        v = ad.Variable(np.arange(4.0))
        with ad.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = ad.matmul(ad.exp(x), v) * ad.reduce_max(x)
        return [tape.jacobian(y, x).numpy(), tape.gradient(y, v).numpy()]
    return [tape_gradient, hessian, forward_over_reverse, jacobian_and_variable]


def test_four_threads_get_exactly_the_single_threaded_results():
    jobs = _thread_jobs()
    want = [job(ad.constant(X)) for job in jobs]
    rounds = 40
    shared = [ad.constant(X) for _ in range(rounds)]  # fresh per round: watched at once by all
    barrier = threading.Barrier(len(jobs))
    results, errors = [[] for _ in jobs], []
    backend = ad.get_backend()  # the backend is per thread too

    def work(k):
        try:
            with ad.backend(backend):
                for x in shared:
                    barrier.wait()
                    results[k].append(jobs[k](x))
        except BaseException as error:  # reported below, in the main thread
            errors.append(error)
            barrier.abort()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    for k, job in enumerate(jobs):
        assert len(results[k]) == rounds
        for got in results[k]:
            for a, b in zip(got, want[k]):
                np.testing.assert_array_equal(a, b, err_msg=job.__name__)
    assert _no_tape_is_recording()


def test_a_tape_does_not_record_another_threads_ops():
    x, v = ad.constant(X), ad.Variable(W)
    opened, computed = threading.Event(), threading.Event()
    other = {}
    backend = ad.get_backend()

    def other_thread():
        ad.set_backend(backend)
        opened.wait()
        other["y"] = ad.reduce_sum(ad.sin(x) * v)  # x is watched by the main thread's tape
        with ad.ForwardAccumulator(x, ad.ones_like(x)) as acc:
            other["z"] = ad.exp(x)
        other["jvp"] = acc.jvp(other["z"])
        with ad.GradientTape() as tape:  # this thread's own tape works meanwhile
            tape.watch(x)
            y = ad.reduce_sum(x * x)
        other["g"] = tape.gradient(y, x)
        computed.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        with ad.ForwardAccumulator(x, ad.zeros_like(x)) as acc:
            opened.set()
            assert computed.wait(30)
            mine = ad.reduce_sum(x * 2.0)
    thread.join()
    assert other["y"]._id == 0  # recorded by no tape at all
    assert tape.gradient(other["y"], x) is None and tape.watched_variables() == ()
    assert acc.jvp(other["z"]) is None
    assert len(tape._records) == 2  # only this thread's multiply and reduce_sum
    np.testing.assert_array_equal(tape.gradient(mine, x).numpy(), np.full(X.shape, 2.0))
    np.testing.assert_array_equal(other["jvp"].numpy(), np.exp(X))
    np.testing.assert_array_equal(other["g"].numpy(), 2 * X)


# ============================================================================ 4. hostile input

BAD_INPUT = [  # (what, call, exception, fragments of its message)
    ("ragged list", lambda: ad.constant([[1.0, 2.0], [3.0]]), ValueError, ["constant", "ragged"]),
    ("ragged operand", lambda: ad.add(ad.constant([1.0, 2.0]), [[1.0], [2.0, 3.0]]),
     ValueError, ["add", "ragged"]),
    ("None", lambda: ad.constant(None), TypeError, ["constant", "NoneType"]),
    ("None in a list", lambda: ad.constant([1.0, None]), TypeError, ["constant", "NoneType"]),
    ("None operand", lambda: ad.sin(None), TypeError, ["sin", "NoneType"]),
    ("None to a reduction", lambda: ad.reduce_sum(None), TypeError,
     ["reduce_sum", "NoneType", "argument 'x'"]),
    ("string", lambda: ad.constant("abc"), TypeError, ["constant", "str", "abc"]),
    ("string operand", lambda: ad.multiply(ad.constant(1.0), "2"), TypeError,
     ["multiply", "str"]),
    ("strings in a list", lambda: ad.constant(["a", "b"]), TypeError, ["constant", "str"]),
    ("object", lambda: ad.reduce_mean(object()), TypeError,
     ["reduce_mean", "object", "argument 'x'"]),
    ("object operand", lambda: ad.constant(1.0) * object(), TypeError, ["multiply", "object"]),
    ("object array", lambda: ad.constant(np.array([1.0, None], dtype=object)), TypeError,
     ["constant", "dtype object"]),
    ("string array", lambda: ad.sin(np.array(["a", "b"])), TypeError, ["sin", "dtype <U1"]),
    ("bytes array", lambda: ad.matmul(np.array([[b"a"]]), ad.ones((1, 1))), TypeError,
     ["matmul", "dtype |S1", "argument 'a'"]),
    ("string array variable", lambda: ad.Variable(np.array(["a"])), TypeError, ["dtype <U1"]),
    ("complex elementwise", lambda: ad.erf(ad.constant([1 + 2j])), TypeError,
     ["erf", "complex"]),
    ("complex reduction", lambda: ad.reduce_max(ad.constant([1j])), TypeError,
     ["reduce_max", "complex"]),
    ("complex ordering", lambda: ad.less(ad.constant([1j]), ad.constant([2j])), TypeError,
     ["less", "complex", "not ordered"]),
    ("complex scalar into float", lambda: ad.constant(1.0) + 1j, TypeError,
     ["add", "complex", "float32"]),
    ("complex and float tensors", lambda: ad.multiply(ad.constant([1.0]), ad.constant([1j])),
     TypeError, ["multiply", "complex"]),
    ("complex cumsum", lambda: ad.cumsum(ad.constant([1j, 2j])), TypeError, ["cumsum"]),
    ("axis out of range", lambda: ad.reduce_sum(ad.ones((2, 3)), axis=2), ValueError,
     ["reduce_sum", "axis 2", "(2, 3)"]),
    ("negative axis out of range", lambda: ad.reduce_max(ad.ones((2, 3)), axis=-3),
     ValueError, ["reduce_max", "axis -3"]),
    ("axis of a 0-d tensor", lambda: ad.reduce_mean(ad.constant(1.0), axis=0), ValueError,
     ["reduce_mean", "axis 0", "()"]),
    ("repeated axis", lambda: ad.reduce_sum(ad.ones((2, 3)), axis=(0, -2)), ValueError,
     ["reduce_sum", "repeated"]),
    ("string axis", lambda: ad.reduce_min(ad.ones((2, 3)), axis="0"), TypeError,
     ["reduce_min", "axis"]),
    ("float axis", lambda: ad.reduce_prod(ad.ones((2, 3)), axis=1.0), TypeError,
     ["reduce_prod", "axis"]),
    ("logsumexp axis", lambda: ad.reduce_logsumexp(ad.ones((2, 3)), axis=(0, 5)), ValueError,
     ["reduce_logsumexp", "axis 5"]),
    ("cumsum axis", lambda: ad.cumsum(ad.ones((2, 3)), axis=-3), ValueError,
     ["cumsum", "axis -3"]),
    ("cumprod axis", lambda: ad.cumprod(ad.ones((2, 3)), axis=2), ValueError,
     ["cumprod", "axis 2"]),
    ("softmax axis", lambda: ad.nn.softmax(ad.ones((2, 3)), axis=2), ValueError,
     ["softmax", "axis 2"]),
    ("concat axis", lambda: ad.concat([ad.ones((2, 3))] * 2, axis=-3), ValueError,
     ["concat", "axis -3"]),
    ("stack axis", lambda: ad.stack([ad.ones((2, 3))] * 2, axis=3), ValueError,
     ["stack", "axis 3"]),
    ("unstack axis", lambda: ad.unstack(ad.ones((2, 3)), axis=2), ValueError,
     ["unstack", "axis 2"]),
    ("expand_dims axis", lambda: ad.expand_dims(ad.ones((2, 3)), -4), ValueError,
     ["expand_dims", "axis -4"]),
    ("squeeze axis", lambda: ad.squeeze(ad.ones((2, 1)), 0), ValueError, ["squeeze", "axis 0"]),
    ("split axis", lambda: ad.split(ad.ones((2, 4)), 2, axis=2), ValueError,
     ["split", "axis 2"]),
    ("gather axis", lambda: ad.gather(ad.ones((2, 4)), [0], axis=-3), ValueError,
     ["gather", "axis -3"]),
    ("gather index out of range", lambda: ad.gather(ad.ones((2, 4)), [2]), IndexError,
     ["gather", "[0, 2)"]),
    ("index out of range", lambda: ad.ones((2, 4))[:, 4], IndexError, ["getitem", "4"]),
    ("transpose perm", lambda: ad.transpose(ad.ones((2, 4)), (0, 0)), ValueError,
     ["transpose", "perm"]),
    ("norm axis", lambda: ad.norm(ad.ones((2, 4)), axis=3), ValueError, ["norm", "axis"]),
    ("reduce_max of an empty axis", lambda: ad.reduce_max(ad.ones((0, 3)), axis=0),
     ValueError, ["reduce_max", "empty"]),
    ("negative dimension", lambda: ad.zeros((2, -1)), ValueError,
     ["zeros", "non-negative", "(2, -1)"]),
    ("negative ones", lambda: ad.ones((-2,)), ValueError, ["ones", "non-negative"]),
    ("negative fill", lambda: ad.fill((-1, 2), 1.0), ValueError, ["fill", "non-negative"]),
    ("negative eye", lambda: ad.eye(-3), ValueError, ["eye", "non-negative"]),
    ("shapes that do not broadcast", lambda: ad.ones((2, 3)) * ad.ones((4,)), ValueError,
     ["multiply", "(2, 3)", "(4,)"]),
    ("comparison shapes", lambda: ad.ones((2, 3)) < ad.ones((2,)), ValueError, ["less"]),
    ("matmul of 0-d", lambda: ad.matmul(ad.constant(1.0), ad.constant(2.0)), ValueError,
     ["matmul", "()"]),
    ("softmax of 0-d", lambda: ad.nn.softmax(ad.constant(1.0)), ValueError,
     ["softmax", "()"]),
    ("cumsum of 0-d", lambda: ad.cumsum(ad.constant(1.0)), ValueError, ["cumsum", "0-d"]),
    ("concat of 0-d", lambda: ad.concat([ad.constant(1.0)], 0), ValueError,
     ["concat", "0-d"]),
    ("det of 0-d", lambda: ad.linalg.det(ad.constant(1.0)), ValueError, ["det", "()"]),
    ("singular inverse", lambda: ad.linalg.inv(ad.zeros((2, 2))), np.linalg.LinAlgError,
     ["inv", "ingular"]),
    ("dtype mix", lambda: ad.constant(1.0) + ad.constant(1.0, dtype="float64"), TypeError,
     ["add", "float32", "float64"]),
]


@pytest.mark.parametrize("what, call, error, fragments", BAD_INPUT,
                         ids=[case[0] for case in BAD_INPUT])
def test_hostile_input_raises_a_clear_error(what, call, error, fragments):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{what}: {fragment!r} is not in {message!r}"


HUGE = (10 ** 8, 10 ** 8)  # 4e16 bytes of float32: beyond any address space, even overcommitted
HUGE_BYTES = 4 * 10 ** 16
_ONE = ad.constant(1.0, backend="numpy")
_BIG = ad.broadcast_to(_ONE, HUGE)  # stride-0 views: they allocate nothing
_COLUMN = ad.broadcast_to(_ONE, (10 ** 8, 1))
_ROW = ad.broadcast_to(_ONE, (1, 10 ** 8))

ALLOCATIONS = [  # (op named in the error, call, bytes requested or None)
    ("zeros", lambda: ad.zeros(HUGE), HUGE_BYTES),
    ("ones", lambda: ad.ones(HUGE), HUGE_BYTES),
    ("fill", lambda: ad.fill(HUGE, 7.0), HUGE_BYTES),
    ("fill", lambda: ad.fill(HUGE, 7), HUGE_BYTES),
    ("eye", lambda: ad.eye(10 ** 8, dtype="float64"), 8 * 10 ** 16),
    ("zeros_like", lambda: ad.zeros_like(_BIG), HUGE_BYTES),
    ("ones_like", lambda: ad.ones_like(_BIG), HUGE_BYTES),
    ("range", lambda: ad.range(10 ** 16), 4 * 10 ** 16),
    ("linspace", lambda: ad.linspace(0.0, 1.0, 10 ** 16), 8 * 10 ** 16),
    ("matmul", lambda: ad.matmul(_COLUMN, _ROW), HUGE_BYTES),
    ("tensordot", lambda: ad.tensordot(_COLUMN, _ROW, axes=1), HUGE_BYTES),
    ("einsum", lambda: ad.einsum("ik,kj->ij", _COLUMN, _ROW), HUGE_BYTES),
    ("concat", lambda: ad.concat([_BIG, _BIG], 0), 2 * HUGE_BYTES),
    ("stack", lambda: ad.stack([_BIG, _BIG]), 2 * HUGE_BYTES),
    ("tile", lambda: ad.tile(ad.ones((1, 100)), (1, 10 ** 14)), HUGE_BYTES),
    ("pad", lambda: ad.pad(_BIG, [[1, 1], [0, 0]]), None),
    ("add", lambda: _COLUMN + _ROW, HUGE_BYTES),
    ("multiply", lambda: _BIG * 2.0, HUGE_BYTES),
    ("multiply", lambda: ad.multiply(_BIG, ad.constant([[2.0]])), HUGE_BYTES),
    ("sin", lambda: ad.sin(_BIG), HUGE_BYTES),
    ("where", lambda: ad.where(ad.constant([True]), _BIG, 0.0), HUGE_BYTES),
    ("clip_by_value", lambda: ad.clip_by_value(_BIG, 0.0, 1.0), None),
    ("less", lambda: _COLUMN < _ROW, 10 ** 16),
]


@pytest.mark.parametrize("op, call, nbytes", ALLOCATIONS,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(ALLOCATIONS)])
def test_a_failed_allocation_is_a_memory_error_naming_the_op_and_the_bytes(op, call, nbytes):
    with pytest.raises(MemoryError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{op}: "), message
    assert "bytes" in message and (nbytes is None or f" {nbytes} bytes" in message), message


def test_a_failed_allocation_while_recording_leaves_the_tape_usable():
    x = ad.constant(2.0)
    with ad.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(MemoryError, match="multiply"):
            ad.broadcast_to(x, HUGE) * x
        y = x * x * x
    assert float(tape.gradient(y, x)) == 12.0


@pytest.mark.gpu
def test_a_failed_device_allocation_names_the_op_and_the_bytes():
    for op, call in [("zeros", lambda: ad.zeros(HUGE)), ("ones", lambda: ad.ones(HUGE)),
                     ("fill", lambda: ad.fill(HUGE, 1.0)),
                     ("add", lambda: ad.broadcast_to(ad.constant(1.0), (10 ** 8, 1))
                      + ad.broadcast_to(ad.constant(1.0), (1, 10 ** 8))),
                     ("sin", lambda: ad.sin(ad.broadcast_to(ad.constant(1.0), HUGE)))]:
        with pytest.raises(MemoryError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{op}: ") and "bytes" in message, message
    assert ad.zeros((2,)).backend == "cupy"  # the device still works


def _grads(f, *arrays):
    """f's value and its reverse-mode gradients (zeros if unconnected) at float64 copies of
    ``arrays``; Tensors are used as they are."""
    xs = [a if isinstance(a, ad.Tensor) else ad.constant(np.asarray(a, dtype=np.float64))
          for a in arrays]
    with ad.GradientTape() as tape:
        tape.watch(xs)
        y = f(*xs)
    return y, [g.numpy() for g in tape.gradient(y, xs, unconnected_gradients="zero")]


nan, inf = np.nan, np.inf
# (what, f, inputs, expected gradients): TensorFlow's values
NAN_INF = [
    ("product", lambda x, y: x * y, [[nan, 1.0, inf], [2.0, inf, 0.0]],
     [[2.0, inf, 0.0], [nan, 1.0, inf]]),
    ("sum of squares", lambda x: ad.reduce_sum(x * x), [[inf, 1.0, nan]], [[inf, 2.0, nan]]),
    ("relu", lambda x: ad.relu(x), [[nan, -1.0, 1.0, 0.0]], [[0.0, 0.0, 1.0, 0.0]]),
    ("abs", lambda x: ad.abs(x), [[nan, 0.0, -inf]], [[nan, 0.0, -1.0]]),
    ("sign", lambda x: ad.sign(x), [[nan, inf]], [[0.0, 0.0]]),
    ("maximum", lambda x, y: ad.maximum(x, y), [[nan, 1.0, inf], [0.0, nan, inf]],
     [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]),
    ("minimum", lambda x, y: ad.minimum(x, y), [[nan, 1.0], [0.0, nan]],
     [[0.0, 0.0], [1.0, 1.0]]),
    ("sqrt at 0", lambda x: ad.sqrt(x), [[0.0, inf]], [[inf, 0.0]]),
    ("log at 0 and inf", lambda x: ad.log(x), [[0.0, inf]], [[inf, 0.0]]),
    ("exp at +-inf", lambda x: ad.exp(x), [[inf, -inf]], [[inf, 0.0]]),
    ("division by 0", lambda x, y: x / y, [[1.0, 0.0], [0.0, 0.0]],
     [[inf, inf], [-inf, nan]]),
    ("where with a nan branch", lambda x: ad.where(x > 0.0, ad.sqrt(x), x), [[-1.0, 4.0]],
     [[1.0, 0.25]]),  # not tf.where's famous NaN: TF's sqrt gradient is 0 where g is 0
    ("clip_by_value", lambda x: ad.clip_by_value(x, -1.0, 1.0), [[nan, 2.0, -inf, 0.5]],
     [[1.0, 0.0, 0.0, 1.0]]),
    ("reduce_max with inf", lambda x: ad.reduce_max(x), [[inf, 1.0, -inf]], [[1.0, 0.0, 0.0]]),
    ("logsumexp with -inf", lambda x: ad.reduce_logsumexp(x), [[-inf, 0.0, 0.0]],
     [[0.0, 0.5, 0.5]]),
    ("matmul", lambda a, b: ad.matmul(a, b), [[[nan, 1.0]], [[1.0], [inf]]],
     [[[1.0, inf]], [[nan], [1.0]]]),
    ("reduce_prod", lambda x: ad.reduce_prod(x), [[nan, 0.0, 2.0]], [[0.0, nan, nan]]),
    ("cumprod", lambda x: ad.reduce_sum(ad.cumprod(x)), [[inf, 0.0, 2.0]], [[1.0, inf, nan]]),
    ("pow", lambda x, y: ad.pow(x, y), [[0.0, -1.0], [2.0, 2.0]], [[0.0, -2.0], [0.0, 0.0]]),
    ("norm at 0", lambda x: ad.norm(x), [[0.0, 0.0]], [[nan, nan]]),
]


@pytest.mark.parametrize("what, f, inputs, want", NAN_INF, ids=[c[0] for c in NAN_INF])
def test_nan_and_inf_propagate_through_gradients_as_tensorflow(what, f, inputs, want):
    with np.errstate(all="ignore"):
        _, got = _grads(f, *inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, np.asarray(w, dtype=np.float64), err_msg=what)


def test_nan_cotangents_and_tangents():
    with np.errstate(all="ignore"):
        c = ad.constant([True, False])
        x, y = ad.constant([1.0, 2.0]), ad.constant([3.0, 4.0])
        with ad.GradientTape() as tape:
            tape.watch([x, y])
            z = ad.where(c, x, y)
        gx, gy = tape.gradient(z, [x, y], output_gradients=ad.constant([nan, nan]))
        # select: a NaN cotangent does not reach the branch that was not taken
        np.testing.assert_array_equal(gx.numpy(), [nan, 0.0])
        np.testing.assert_array_equal(gy.numpy(), [0.0, nan])
        with ad.ForwardAccumulator(x, ad.constant([nan, inf])) as acc:
            out = [x * 2.0, ad.sin(x), ad.where(c, x, y), ad.reduce_sum(x)]
        for o, want in zip(out, [[nan, inf], [nan, inf * np.cos(2.0)], [nan, 0.0], nan]):
            np.testing.assert_array_equal(acc.jvp(o, "zero").numpy(), want)


# ops on zero-size tensors: (what, f, input shapes, output shape)
EMPTY = [
    ("elementwise", lambda x: ad.sin(x) * x, [(0, 3)], (0, 3)),
    ("broadcast", lambda x, y: x * y + y, [(0, 3), (3,)], (0, 3)),
    ("broadcast to empty", lambda x, y: x - y, [(2, 1), (0,)], (2, 0)),
    ("matmul", lambda a, b: ad.matmul(a, b), [(2, 0), (0, 3)], (2, 3)),
    ("matmul batch", lambda a, b: ad.matmul(a, b), [(0, 2, 3), (3, 4)], (0, 2, 4)),
    ("reduce_sum over empty", lambda x: ad.reduce_sum(x, axis=0), [(0, 3)], (3,)),
    ("reduce_max over non-empty", lambda x: ad.reduce_max(x, axis=1), [(0, 3)], (0,)),
    ("reduce_prod over empty", lambda x: ad.reduce_prod(x, axis=1), [(2, 0)], (2,)),
    ("softmax", lambda x: ad.nn.softmax(x), [(0, 3)], (0, 3)),
    ("cumsum", lambda x: ad.cumsum(x, axis=0), [(0, 3)], (0, 3)),
    ("cumprod", lambda x: ad.cumprod(x, axis=1), [(2, 0)], (2, 0)),
    ("concat", lambda x, y: ad.concat([x, y], 0), [(0, 3), (2, 3)], (2, 3)),
    ("stack", lambda x: ad.stack([x, x], axis=1), [(0, 3)], (0, 2, 3)),
    ("getitem", lambda x: x[2:, ::-1], [(2, 3)], (0, 3)),
    ("gather", lambda x: ad.gather(x, np.zeros((0,), np.int32)), [(2, 3)], (0, 3)),
    ("boolean_mask", lambda x: ad.boolean_mask(x, [False, False]), [(2, 3)], (0, 3)),
    ("tile", lambda x: ad.tile(x, [0, 2]), [(2, 3)], (0, 6)),
    ("pad", lambda x: ad.pad(x, [[1, 1], [0, 0]]), [(0, 3)], (2, 3)),
    ("split", lambda x: ad.split(x, 2, axis=1)[0], [(0, 4)], (0, 2)),
    ("transpose", lambda x: ad.transpose(x), [(0, 3)], (3, 0)),
    ("reshape", lambda x: ad.reshape(x, (3, 0, 2)), [(0, 6)], (3, 0, 2)),
    ("einsum", lambda a, b: ad.einsum("ij,jk->ik", a, b), [(2, 0), (0, 3)], (2, 3)),
    ("tensordot", lambda a, b: ad.tensordot(a, b, 1), [(2, 0), (0, 3)], (2, 3)),
    ("inv", lambda x: ad.linalg.inv(x), [(0, 0)], (0, 0)),
    ("det of a batch", lambda x: ad.linalg.det(x), [(0, 2, 2)], (0,)),
    ("solve", lambda a, b: ad.linalg.solve(a, b), [(0, 2, 2), (0, 2, 1)], (0, 2, 1)),
]


@pytest.mark.parametrize("what, f, shapes, out_shape", EMPTY, ids=[c[0] for c in EMPTY])
def test_zero_size_tensors(what, f, shapes, out_shape):
    arrays = [RNG.uniform(0.5, 1.5, s) for s in shapes]
    y, grads = _grads(f, *arrays)
    assert y.shape == out_shape
    assert not np.isnan(y.numpy()).any()
    for g, a in zip(grads, arrays):
        assert g.shape == a.shape and np.isfinite(g).all()
    xs = [ad.constant(a) for a in arrays]
    _, tangent = ad.jvp(f, xs, [ad.ones_like(x) for x in xs])
    assert tangent.shape == out_shape


def test_reductions_of_nothing_follow_tensorflow():
    empty = ad.zeros((0, 3), dtype="float64")
    with np.errstate(all="ignore"):
        assert ad.reduce_sum(empty).numpy() == 0.0 and ad.reduce_prod(empty).numpy() == 1.0
        assert np.isnan(ad.reduce_mean(empty).numpy())
        assert ad.reduce_logsumexp(empty).numpy() == -inf
        assert ad.norm(empty).numpy() == 0.0
    assert ad.linalg.det(ad.zeros((0, 0))).numpy() == 1.0
    for f, source in [(lambda x: x * x, ad.ones((0,))), (lambda x: ad.reduce_sum(x),
                                                         ad.ones((0, 3))),
                      (lambda x: x[:0], ad.ones((5,))), (lambda x: x[:, :0], ad.ones((2, 3)))]:
        assert ad.jacobian(f)(source).shape == f(source).shape + source.shape
    assert ad.hessian(lambda x: ad.reduce_sum(x ** 3))(ad.ones((0,))).shape == (0, 0)


SCALAR_OPS = [  # (what, f at a 0-d x, d f / d x at x = 0.7)
    ("reduce_sum", ad.reduce_sum, 1.0),
    ("reduce_sum axis ()", lambda x: ad.reduce_sum(x, ()), 1.0),
    ("reduce_mean", ad.reduce_mean, 1.0), ("reduce_max", ad.reduce_max, 1.0),
    ("reduce_min", ad.reduce_min, 1.0), ("reduce_prod", ad.reduce_prod, 1.0),
    ("reduce_logsumexp", ad.reduce_logsumexp, 1.0), ("reduce_variance", ad.reduce_variance, 0.0),
    ("norm", ad.norm, 1.0), ("norm ord 1", lambda x: ad.norm(x, ord=1), 1.0),
    ("reshape", lambda x: ad.reshape(x, (1, 1)), 1.0), ("transpose", ad.transpose, 1.0),
    ("broadcast_to", lambda x: ad.broadcast_to(x, (2, 3)), 6.0),
    ("expand_dims", lambda x: ad.expand_dims(x, -1), 1.0), ("squeeze", ad.squeeze, 1.0),
    ("stack", lambda x: ad.stack([x, x * x]), 2.4), ("tile", lambda x: ad.tile(x, []), 1.0),
    ("getitem ()", lambda x: x[()], 1.0), ("getitem None", lambda x: x[None, ...], 1.0),
    ("getitem mask", lambda x: x[x > 0.0], 1.0), ("cast", lambda x: ad.cast(x, "float32"), 1.0),
    ("identity", ad.identity, 1.0), ("einsum", lambda x: ad.einsum(",->", x, x), 1.4),
    ("tensordot", lambda x: ad.tensordot(x, x, 0), 1.4),
    ("sigmoid", ad.nn.sigmoid, 0.22171287329310904), ("relu", ad.nn.relu, 1.0),
    ("where", lambda x: ad.where(x > 0.0, x * x, -x), 1.4),
    ("clip_by_value", lambda x: ad.clip_by_value(x, 0.0, 1.0), 1.0),
    ("pow", lambda x: ad.pow(x, x), 0.7 ** 0.7 * (np.log(0.7) + 1.0)),
    ("jacobian", lambda x: ad.jacobian(lambda t: t * t * t)(x), 4.2),
    ("hessian", lambda x: ad.hessian(lambda t: t ** 3)(x), 6.0),
]


@pytest.mark.parametrize("what, f, want", SCALAR_OPS, ids=[c[0] for c in SCALAR_OPS])
def test_0d_tensors(what, f, want):
    y, (g,) = _grads(f, 0.7)
    assert g.shape == () and g == pytest.approx(want, rel=1e-12)
    _, tangent = ad.jvp(f, [ad.constant(0.7, dtype="float64")],
                        [ad.constant(1.0, dtype="float64")])
    assert tangent.shape == y.shape
    assert float(ad.reduce_sum(ad.cast(tangent, "float64"))) == pytest.approx(want, rel=1e-6)


def _strided_arrays():
    base = RNG.uniform(-1, 1, (6, 8))
    readonly = RNG.uniform(-1, 1, (3, 4))
    readonly.flags.writeable = False
    return {
        "non-contiguous": base[::2, ::-2],
        "broadcast (stride 0)": np.broadcast_to(RNG.uniform(-1, 1, 4), (3, 4)),
        "read-only": readonly,
        "Fortran order": np.asfortranarray(RNG.uniform(-1, 1, (3, 4))),
        "0-d view": base[1, 1, ...],
    }


def _matrix(x):
    return ad.reshape(x, (-1, x.shape[-1] if x.ndim else 1))


STRIDED_OPS = [  # any number of dimensions
    lambda x: ad.sin(x) * x + 1.0,
    lambda x: x + x + x,
    lambda x: ad.reduce_sum(_matrix(x) * _matrix(x), axis=0),
    lambda x: ad.reduce_logsumexp(_matrix(x), axis=-1),
    lambda x: ad.matmul(ad.reshape(x, (1, -1)), ad.reshape(x, (-1, 1))),
    lambda x: ad.reshape(x, (-1,))[::-1] ** 2,
    lambda x: ad.cumsum(ad.reshape(x, (-1,))) * ad.cumprod(ad.reshape(x, (-1,)) * 0.5 + 1.0),
    lambda x: ad.nn.softmax(_matrix(x), axis=0),
    lambda x: ad.transpose(ad.expand_dims(x, 0)) * 2.0,
]


@pytest.mark.parametrize("layout", sorted(_strided_arrays()))
def test_strided_broadcast_and_read_only_arrays_give_the_contiguous_results(layout):
    array = _strided_arrays()[layout]
    snapshot = array.copy()
    for f in STRIDED_OPS:
        tensor = ad.convert_to_tensor(array)  # no copy: the ops read the user's array
        assert tensor.array is array
        got_y, got_g = _grads(f, tensor)
        want_y, want_g = _grads(f, array.copy())  # C order (ascontiguousarray makes 0-d 1-d)
        np.testing.assert_allclose(got_y.numpy(), want_y.numpy(), rtol=1e-13)
        np.testing.assert_allclose(got_g[0], want_g[0], rtol=1e-13)
        _, tangent = ad.jvp(f, [tensor], [np.ones(array.shape)])
        _, want_t = ad.jvp(f, [ad.constant(snapshot)], [np.ones(array.shape)])
        np.testing.assert_allclose(tangent.numpy(), want_t.numpy(), rtol=1e-13)
    np.testing.assert_array_equal(array, snapshot)
    variable = ad.Variable(array)  # a variable owns a copy: assign never writes to the user's
    variable.assign_add(np.ones(array.shape))
    np.testing.assert_array_equal(array, snapshot)


# ===================================================================== 6. no input mutation

def _entry_inputs(name, big, seed=0):
    """Inputs of table entry ``name`` (in its domain); ``big``: 1 MiB, the size at which the
    NumPy paths write into fresh intermediates and pooled buffers, the others broadcast."""
    shapes = [(512, 256) if big else (3, 4), (256,) if big else (4,), (512, 1) if big else (3, 1)]
    return entry_inputs(name, shapes, np.random.default_rng(seed))


def _through_every_mode(f, arrays, cotangent, tangents, second_order=True):
    """Run f forward, reverse (and reverse over reverse) and forward mode on user arrays."""
    xs = [ad.convert_to_tensor(a) for a in arrays]
    floating = [x for x in xs if x.dtype.kind == "f"]
    f(*xs)
    with ad.GradientTape() as outer:
        outer.watch(floating)
        with ad.GradientTape() as tape:
            tape.watch(floating)
            y = f(*xs)
        grads = tape.gradient([y, y], floating, output_gradients=[cotangent, cotangent],
                              unconnected_gradients="zero")
        total = ad.reduce_sum(ad.stack([ad.reduce_sum(g) for g in grads]))
    if second_order:
        outer.gradient(total, floating)
    with ad.ForwardAccumulator(floating, tangents) as acc:
        y = f(*xs)
    acc.jvp(y)


def _freeze(arrays, writeable):
    out = []
    for a in arrays:
        a = np.array(a)  # the test's own copy
        a.flags.writeable = writeable
        out.append(a)
    return out


@pytest.mark.parametrize("big", [False, True], ids=["small", "big"])
@pytest.mark.parametrize("writeable", [False, True], ids=["read-only", "writeable"])
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_table_entries_never_write_into_user_arrays(name, writeable, big):
    entry = ENTRIES[name]
    f = getattr(ad, name)
    with np.errstate(all="ignore"):
        inputs = _freeze(_entry_inputs(name, big), writeable)
        out_shape = np.broadcast_shapes(*[a.shape for a in inputs])
        cotangent, = _freeze([RNG.uniform(-1, 1, out_shape)], writeable)
        tangents = _freeze([RNG.uniform(-1, 1, a.shape) for a, n in zip(inputs, entry.inputs)
                            if n not in entry.ctypes], writeable)
        snapshots = [a.copy() for a in inputs + [cotangent] + tangents]
        _through_every_mode(f, inputs, cotangent, tangents)
    for a, before in zip(inputs + [cotangent] + tangents, snapshots):
        np.testing.assert_array_equal(a, before, err_msg=f"{name} wrote into an input")


REGISTERED = [(name, i, fn, args) for name, cases in sorted(REGISTRY.items())
              for i, (fn, args) in enumerate(cases)]


@pytest.mark.parametrize("writeable", [False, True], ids=["read-only", "writeable"])
@pytest.mark.parametrize("name, i, fn, args", REGISTERED,
                         ids=[f"{c[0]}-{c[1]}" for c in REGISTERED])
def test_registered_ops_never_write_into_user_arrays(name, i, fn, args, writeable):
    inputs = _freeze(args, writeable)
    out_shape = fn(*[ad.constant(a) for a in args]).shape
    cotangent, = _freeze([RNG.uniform(-1, 1, out_shape)], writeable)
    tangents = _freeze([RNG.uniform(-1, 1, a.shape) for a in inputs], writeable)
    snapshots = [a.copy() for a in inputs + [cotangent] + tangents]
    _through_every_mode(fn, inputs, cotangent, tangents)
    for a, before in zip(inputs + [cotangent] + tangents, snapshots):
        np.testing.assert_array_equal(a, before, err_msg=f"{name} wrote into an input")
