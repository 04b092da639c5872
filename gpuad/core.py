"""The core every op and every transform stands on: primitives, ``bind``, records, recorders.

* A :class:`Primitive` is an operation gpuad can differentiate: an implementation on raw
  arrays, a VJP and a JVP rule, and an abstract evaluation (the output's shape and dtype
  without running it).
* :func:`bind` applies a primitive to Tensors.  Every op of gpuad runs through it, so a tracer,
  a profiler or a test can see every op in one place (:func:`observing`).
* Recorders (``GradientTape``, ``ForwardAccumulator``) sit on a per-thread stack
  (:func:`push_recorder`, :func:`pop_recorder`, :func:`recording_suspended`).  An op whose
  output is floating is recorded by every recorder that knows one of its inputs: a tape
  stores a :class:`Record` under the output's id, an accumulator computes the output's tangent.

The order of ids: ids come from one counter and only grow, and an op's output gets its id
when it is recorded, after every input already has one.  So a recorder's records, in id
order, are in topological order: reverse mode walks them backwards and forward-mode replay
walks them forwards, with no sort (``tests/test_core.py`` asserts it).
"""
import contextlib
import functools
import math
import threading
import typing

import numpy

from .backends import cupy_ndarray
from .tensor import Tensor, next_id, wrap


class Aval(typing.NamedTuple):
    """An abstract value: what a Tensor is without its data (JAX's name)."""
    shape: tuple
    dtype: numpy.dtype
    backend: str

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)


def aval_of(t):
    """The :class:`Aval` of a Tensor."""
    return Aval(t._value.shape, t._value.dtype, t.backend)


class Record(typing.NamedTuple):
    """What a tape keeps of one op, under ``out_id``: ``out = primitive(*inputs)``.

    ``input_ids`` has 0 for an input no recorder knew (a constant); ``saved`` holds the
    values the primitive's rules read (Tensors or raw arrays); the output's shape, dtype and
    backend are kept apart (:attr:`out` is them as an :class:`Aval`): a record is made per
    op, so it is made cheap (``tuple.__new__``, no nested tuple), and never holds the output.
    """
    primitive: "Primitive"
    input_ids: tuple
    out_id: int
    saved: tuple
    attrs: object
    out_shape: tuple
    out_dtype: numpy.dtype
    out_backend: str

    @property
    def out(self):
        """The output's :class:`Aval`."""
        return Aval(self.out_shape, self.out_dtype, self.out_backend)


class Primitive:
    """An operation gpuad can apply and differentiate.

    Parameters
    ----------
    name : str
    impl : callable ``impl(values, attrs) -> array``
        The forward on raw backend arrays (NumPy or CuPy alike, through
        :func:`gpuad.backends.module_of`).
    vjp_rule : callable ``vjp_rule(g, saved, attrs, needs) -> cotangents``, optional
        One cotangent (Tensor or None) per input, for the inputs flagged in ``needs``; ``g``
        is a Tensor.  Without one the primitive is not differentiable and is never recorded.
    jvp_rule : callable ``jvp_rule(tangents, saved, out, attrs[, batch]) -> tangent``, optional
        The output's tangent from a Tensor or None per input; ``out`` is the output's
        :class:`Aval`.  A rule with a ``batch`` parameter also takes tangents with one extra
        leading dimension when ``batch`` is 1 (Jacobians push a whole basis through at once);
        other rules run once per batch element.  Without one, forward mode through the
        primitive raises NotImplementedError (``custom_gradient`` is the one op whose forward
        mode uses its VJP twice).
    save : callable ``save(inputs, out, attrs) -> tuple``, optional
        What a record keeps for the rules (default: nothing).
    abstract_eval : callable ``abstract_eval(avals, attrs) -> Aval``, optional
        The output's shape and dtype from the inputs' (default: ``impl`` run on zero-stride
        placeholders, which reads no memory).

    Rules are written with gpuad ops, so an outer tape records them: differentiable to any
    order.
    """

    def __init__(self, name, impl, vjp_rule=None, jvp_rule=None, save=None, abstract_eval=None):
        self.name, self.impl, self.vjp_rule, self.jvp_rule = name, impl, vjp_rule, jvp_rule
        self.differentiable = vjp_rule is not None  # else never recorded
        self.batched_jvp = jvp_rule is not None and \
            "batch" in jvp_rule.__code__.co_varnames[:jvp_rule.__code__.co_argcount]
        if save is not None:
            self.save = save
        self._abstract_eval = abstract_eval

    def eager(self, args, attrs):
        """Run on Tensors ``args`` now, and record the op on the recorders that know an
        input (:func:`bind` calls this; elementwise primitives specialise it)."""
        out = wrap(self.impl([a._value for a in args], attrs))
        if ACTIVE and self.differentiable:
            record(self, args, out, attrs)
        return out

    def save(self, inputs, out, attrs):
        """What a record keeps for the rules (none by default; see ``save``)."""
        return ()

    def vjp(self, g, saved, attrs, needs, differentiable):
        """The inputs' cotangents.  ``differentiable``: an outer recorder may see this step,
        so it must run as gpuad ops (elementwise primitives otherwise fuse it)."""
        return self.vjp_rule(as_tensor(g), saved, attrs, needs)

    def jvp(self, tangents, saved, out, attrs, batch=0):
        if self.jvp_rule is None:
            raise NotImplementedError(f"{self.name}: no forward-mode rule")
        if self.batched_jvp:
            return self.jvp_rule(tangents, saved, out, attrs, batch)
        return self.jvp_rule(tangents, saved, out, attrs)

    def abstract_eval(self, avals, attrs):
        """The output's :class:`Aval` given the inputs', without computing it."""
        if self._abstract_eval is not None:
            return self._abstract_eval(avals, attrs)
        placeholders = [numpy.broadcast_to(numpy.zeros((), a.dtype), a.shape) for a in avals]
        with numpy.errstate(all="ignore"):
            value = numpy.asarray(self.impl(placeholders, attrs))
        return Aval(value.shape, value.dtype, avals[0].backend if avals else "numpy")

    def __repr__(self):
        return f"<gpuad primitive {self.name}>"


def save_inputs(inputs, out, attrs):
    """A ``save`` for rules that read the inputs."""
    return tuple(inputs)


def save_inputs_and_output(inputs, out, attrs):
    return tuple(inputs) + (out,)


# ---------------------------------------------------------------------------------- bind

class _Observers(threading.local):
    def __init__(self):
        self.functions = []
        self.pending = None  # the records of the op being bound, while observers wait for it


_observers = _Observers()
OBSERVING = 0  # observers in all threads: bind skips the thread-local lookup while it is 0


def bind(primitive, args, attrs=None):
    """Apply ``primitive`` to ``args`` (Tensors, or Python numbers where the primitive takes
    them) with ``attrs``: the one place where every op of gpuad runs.

    Runs it eagerly (through the primitive's dispatch: elementwise primitives pick a fused
    kernel or a NumPy ufunc by backend and dtype), records it on the recorders that know an
    input, and shows it to the observers of this thread.  An allocator's MemoryError comes
    out naming the primitive and the bytes it asked for.
    """
    if INTERPRETING:
        top = interpreted_argument(args)
        if top is not None:  # a transform's value (vmap's batch) takes the op over
            return top.interpret(primitive, args, attrs)
    if OBSERVING and _observers.functions:
        return _bind_observed(primitive, args, attrs)
    try:
        return primitive.eager(args, attrs)
    except MemoryError as error:
        raise out_of_memory(primitive.name, error) from None


INTERPRETING = 0  # transforms running, all threads, whose Tensors interpret binds (vmap)


def interpreted_argument(args):
    """The argument of the innermost interpreting transform among ``args``, or None: a Tensor
    subclass with a ``level`` (its transform's nesting depth) and ``interpret(primitive,
    args, attrs)``, which :func:`bind` calls instead of running the op."""
    top, top_level = None, 0
    for a in args:
        level = getattr(a, "level", 0)
        if level > top_level:
            top, top_level = a, level
    return top


@contextlib.contextmanager
def interpreting():
    """Make :func:`bind` look for interpreted arguments in this block (a transform's)."""
    global INTERPRETING
    with _lock:
        INTERPRETING += 1
    try:
        yield
    finally:
        with _lock:
            INTERPRETING -= 1


def _bind_observed(primitive, args, attrs):
    """:func:`bind` with observers: they see the op before it is recorded, since recording
    runs the forward-mode rules of the accumulators, whose ops read its output."""
    outer, _observers.pending = _observers.pending, []
    try:
        out = primitive.eager(args, attrs)
    except MemoryError as error:
        raise out_of_memory(primitive.name, error) from None
    finally:
        pending, _observers.pending = _observers.pending, outer
    for observe in _observers.functions:
        observe(primitive, args, attrs, out)
    outer, _observers.pending = _observers.pending, None
    try:  # now, before the op that bound this one records itself
        for entry in pending:
            record_ids(*entry)
    finally:
        _observers.pending = outer
    return out


@contextlib.contextmanager
def observing(function):
    """Call ``function(primitive, args, attrs, out)`` after every :func:`bind` in this
    thread, inside the block (tracers, profilers, tests).

    >>> import gpuad as ad
    >>> seen = []
    >>> with observing(lambda p, args, attrs, out: seen.append(p.name)):
    ...     y = ad.sin(ad.constant(1.0)) * 2.0
    >>> seen
    ['sin', 'multiply']
    """
    global OBSERVING
    _observers.functions.append(function)
    with _lock:
        OBSERVING += 1
    try:
        yield
    finally:
        _observers.functions.remove(function)
        with _lock:
            OBSERVING -= 1


def observed():
    """Does an observer see this thread's binds?  Then every op must run through bind, the
    backward steps included (no fused raw-array rules: an observer would not see them)."""
    return bool(OBSERVING and _observers.functions)


def out_of_memory(op, error, shape=None, dtype=None):
    """A MemoryError naming ``op`` and the bytes it asked for, from an allocator's error
    (NumPy's gives the shape and dtype, CuPy's the bytes; neither names the op).  One that
    an op already named passes unchanged."""
    if type(error) is MemoryError and shape is None:
        return error
    shape, dtype = getattr(error, "shape", shape), getattr(error, "dtype", dtype)
    if shape is None or dtype is None:
        return MemoryError(f"{op}: out of memory ({error})")
    nbytes = numpy.dtype(dtype).itemsize
    for n in shape:
        nbytes *= int(n)
    return MemoryError(f"{op}: cannot allocate {nbytes} bytes for a tensor of shape "
                       f"{tuple(shape)} and dtype {numpy.dtype(dtype)} ({error})")


_F = typing.TypeVar("_F", bound=typing.Callable[..., typing.Any])


def names_memory_errors(op: str) -> typing.Callable[[_F], _F]:  # keeps the signature
    """Decorator for an op made of several primitives: a MemoryError inside it comes out
    naming ``op`` first (``tensordot: matmul: cannot allocate ...``)."""
    def decorate(f):
        @functools.wraps(f)
        def named(*args, **kwargs):
            try:
                return f(*args, **kwargs)
            except MemoryError as error:
                if type(error) is MemoryError:
                    raise MemoryError(f"{op}: {error}") from None
                raise out_of_memory(op, error) from None
        return named
    return decorate


# ----------------------------------------------------------------------------- recorders

class _Recorders(threading.local):
    def __init__(self):
        self.stack = []  # the recorders of this thread, innermost last


_recorders = _Recorders()
_lock = threading.Lock()
ACTIVE = 0  # recorders in all threads: ops skip the thread-local lookup while it is 0


def recorders():
    """The recorders of this thread, innermost last (an empty tuple when none)."""
    return _recorders.stack if ACTIVE else ()


def push_recorder(recorder):
    """Make ``recorder`` the innermost recorder of this thread."""
    global ACTIVE
    _recorders.stack.append(recorder)
    with _lock:
        ACTIVE += 1


def pop_recorder(recorder):
    """Remove ``recorder`` from this thread's stack (wherever it is)."""
    global ACTIVE
    stack = _recorders.stack
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is recorder:
            del stack[i]
            with _lock:
                ACTIVE -= 1
            return


@contextlib.contextmanager
def recording_suspended(from_recorder=None):
    """Hide ``from_recorder`` and every recorder inside it (default: all) in this block."""
    stack = _recorders.stack
    start = 0 if from_recorder is None else \
        next(i for i, r in enumerate(stack) if r is from_recorder)
    hidden = stack[start:]
    del stack[start:]
    try:
        yield
    finally:
        stack[start:] = hidden


@contextlib.contextmanager
def recording_only(keep):
    """Only the recorders of this thread for which ``keep(recorder)`` is true record in this
    block (a transform's levels: vmap's inner tapes see batched values, the outer ones the
    whole batch)."""
    stack = _recorders.stack
    everyone = stack[:]
    stack[:] = [r for r in everyone if keep(r)]
    try:
        yield
    finally:
        stack[:] = everyone


def record(primitive, inputs, out, attrs, saved=None):
    """Record ``out = primitive(*inputs)`` on every recorder that knows one of ``inputs``
    (only a floating ``out``).  ``saved`` defaults to ``primitive.save(inputs, out, attrs)``,
    computed only when some recorder records."""
    if out._value.dtype.kind in "fc":
        record_ids(primitive, tuple([x._id if isinstance(x, Tensor) else 0 for x in inputs]),
                   inputs, out, attrs, saved)


_new_tuple = tuple.__new__


def record_ids(primitive, ids, inputs, out, attrs, saved=None):
    """:func:`record` given the inputs' ids (0 for a constant), for the ops' fast paths
    (which pass ``saved``, and no ``inputs``)."""
    if OBSERVING and _observers.pending is not None:  # after the observers (_bind_observed)
        _observers.pending.append((primitive, ids, inputs, out, attrs, saved))
        return
    entry = None
    for recorder in _recorders.stack:
        known = recorder._ids
        for i in ids:
            if i in known:
                break
        else:
            continue
        if not out._id:
            out._id = next_id()
        if saved is None:
            saved = primitive.save(inputs, out, attrs)
        if recorder._forward:
            recorder._push_tangent(primitive, ids, out, saved, attrs)
            continue
        if entry is None:  # _new_tuple: a NamedTuple's own __new__ is a Python call
            v = out._value
            entry = _new_tuple(Record, (primitive, ids, out._id, saved, attrs, v.shape, v.dtype,
                                        "cupy" if type(v) is cupy_ndarray else "numpy"))
        recorder._records[out._id] = entry
        known.add(out._id)


def give_id(t):
    """Give a watched tensor its id, once: two threads may watch one tensor at the same
    time, and each recorder must keep the id that the tensor ends up with."""
    with _lock:
        if not t._id:
            t._id = next_id()
    return t._id


def seen_by_recorders(values):
    """Would a recorder of this thread record a computation on one of ``values``?"""
    for recorder in recorders():
        known = recorder._ids
        for v in values:
            if isinstance(v, Tensor) and v._id in known:
                return True
    return False


def as_tensor(g):
    """A cotangent as a Tensor (raw arrays are wrapped; NumPy scalars become 0-d arrays)."""
    return g if isinstance(g, Tensor) else wrap(g)


def raw(g):
    """The raw array of a Tensor, or ``g`` itself."""
    return g._value if isinstance(g, Tensor) else g


def as_input(x):
    """An op's input: a Variable (the one subclass of Tensor) is read -- a recorded read --
    while a recorder records."""
    if type(x) is not Tensor and ACTIVE and _recorders.stack and isinstance(x, Tensor):
        return x.read_value()
    return x
