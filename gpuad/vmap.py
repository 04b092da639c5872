"""Vectorizing maps: ``vmap`` (JAX's) and ``vectorized_map`` (TensorFlow's), a batching
interpreter on :func:`gpuad.core.bind`.

Inside the mapped function every batched value is a :class:`Batched` Tensor: to the Python
code of the ops, the tapes and the user it is one example (its ``shape`` and ``dtype`` are an
example's), while it carries the whole batch, axis 0 first, in ``batch``.  A primitive bound
to a batched value runs once on the whole batch by a *batching rule*: elementwise ops and
matmul broadcast (the batch axis first, singleton axes after it aligning the ranks);
reductions, reshapes, transposes and the other shape ops shift their axes by one; getitem and
scatter_add use their batched JVP rules (linear, the batch a leading tangent axis); the
linalg decompositions take it as one more leading axis, solves broadcast their inputs to it,
convolutions fold it into their own batch (or groups), and batched segment ids and scatter
indices offset or index into it.  A primitive without a rule runs once per example in a
Python loop, with a one-time warning (as TensorFlow's ``fallback_to_while_loop``).

Levels: each (nested) vmap is one level.  The recorders that were on the stack when it started
(outer tapes, accumulators) record the whole-batch ops a rule binds; those started inside it
record the per-example op on the batched values, so a ``GradientTape`` inside the mapped
function differentiates one example (per-example gradients), and one outside it the whole map.
While a map runs, every op goes through ``bind`` and every backward step runs as ops (a no-op
observer), so no fused rule reads a batched value's per-example placeholder.
"""
import functools
import threading
import typing
from collections.abc import Callable

import numpy

from . import backends as _backend
from . import core, linalg, nest, nn, ops, reductions, shape_ops, user_warnings
from .array_ops import (BROADCAST_TO, CAST, GETITEM, IDENTITY, REDUCE_SUM, RESHAPE,
                        SCATTER_ADD, STACK, STOP_GRADIENT, TRANSPOSE, IndexInput, broadcast_to,
                        cast, convert_like, convert_to_tensor, expand_batched, getitem,
                        reshape, stack, transpose)
from .array_ops import _scatter_add as scatter_add  # getitem's adjoint, as its VJP calls it
from .conv import _CONV, _WINDOW_ARGMAX
from .function import calls_run_eagerly
from .functional import _CUSTOM
from .math_ops import _INTEGER_MEAN, MATMUL, REDUCE_EXTREME
from .ops import (Elementwise, equal, greater, greater_equal, less, less_equal, logical_and,
                  logical_or, multiply, not_equal, where)
from .scatter_ops import _CHECK_INDICES, _SCATTER
from .sorting import _ARGSORT, _SEGMENT_GATHER, _SEGMENT_SUM
from .tensor import Tensor, value_read_checks, wrap
from .variables import ASSIGN, SLICE_UPDATE


class _Level:
    """One running map: its depth, batch size, the recorders outside it, its options."""

    def __init__(self, depth, size, outer, fallback, warn, name):
        self.depth, self.size, self.outer = depth, size, outer
        self.fallback, self.warn, self.name = fallback, warn, name
        self.closed = False  # the map returned: its batched values must not be used

    def is_outer(self, recorder):
        return id(recorder) in self.outer


class Batched(Tensor):
    """A value inside a map: an example to everything outside :func:`bind` (``_value`` is a
    zero-stride placeholder of an example's shape and dtype), the whole batch in ``batch``."""

    __slots__ = ("batch", "trace", "level", "_example")

    def __init__(self, batch, trace):
        v = batch._value
        xp = _backend.module_of(v)
        self._example = xp.broadcast_to(xp.zeros((), v.dtype), v.shape[1:])
        self._id = 0
        self.batch, self.trace, self.level = batch, trace, trace.depth

    @property
    def _value(self):  # (overrides Tensor's slot: an escaped value raises, never computes)
        if self.trace.closed:
            raise RuntimeError(f"{self.trace.name}: a batched value was used after its map "
                               f"returned (kept in a closure, a global or a tape); return it "
                               f"from the mapped function instead")
        return self._example

    def read_value(self):  # an op's input (core.as_input): already a value
        return self

    def interpret(self, primitive, args, attrs):
        self._value  # an escaped value raises here
        return _apply(self.trace, primitive, args, attrs)

    def __repr__(self):
        return (f"<gpuad.Tensor shape={self.shape} dtype={self.dtype} backend={self.backend} "
                f"(inside {self.trace.name}: one example of {self.trace.size})>")

    __str__ = __repr__


def _check_read(t, what):
    if type(t) is Batched:
        raise TypeError(f"vmap: {what} needs the value of one example, but inside vmap a "
                        f"value is the whole batch (its shape {t.shape} is an example's); "
                        f"use ops (ad.where for conditions) instead of Python data")


# ---------------------------------------------------------------------------- rules
# A rule takes (level, primitive, values, batched, attrs), ``values`` the arguments with each
# batched one replaced by its whole batch (axis 0), and returns the whole batch of the result.

def _example_ndim(v, b):
    return (v.ndim - 1 if b else v.ndim) if isinstance(v, Tensor) else numpy.ndim(v)


def _aligned(values, batched):
    """The batch first, singleton axes after it aligning the ranks (to broadcast)."""
    ndim = max(_example_ndim(v, b) for v, b in zip(values, batched))
    return tuple(expand_batched(v, 1, ndim) if b else v for v, b in zip(values, batched))


def _broadcasting(level, primitive, values, batched, attrs):
    """Elementwise ops and matmul: they broadcast."""
    return core.bind(primitive, _aligned(values, batched), attrs)


def _same_attrs(level, primitive, values, batched, attrs):
    """Unary ops on trailing axes (or none): the batch is one more leading axis."""
    return core.bind(primitive, tuple(values), attrs)


def _shifted(shift):
    """Unary ops whose attrs name axes: ``shift(attrs)`` moves them past the batch axis."""
    def rule(level, primitive, values, batched, attrs):
        return core.bind(primitive, tuple(values), shift(attrs, level.size))
    return rule


def _plus_one(axes):
    return tuple(a + 1 for a in axes)


def _all_batched(level, values, batched):
    return tuple(v if b else broadcast_to(v, (level.size,) + v.shape)
                 for v, b in zip(values, batched))


def _stack(level, primitive, values, batched, attrs):
    return core.bind(primitive, _all_batched(level, values, batched), attrs + 1)


def _concat(level, primitive, values, batched, attrs):
    return core.bind(primitive, _all_batched(level, values, batched), (attrs[0] + 1,) + attrs[1:])


def _linear(primitive, values, attrs, out_shape):
    """An op linear in its first argument, the others unbatched: its batched JVP rule with
    the whole batch as the tangent is the op on the whole batch."""
    tangents = (values[0],) + (None,) * (len(values) - 1)
    return primitive.jvp(tangents, tuple(values[1:]), core.Aval(out_shape, None, None), attrs, 1)


def _batched_key(level, values, batched, attrs):
    """For getitem or scatter_add with batched index tensors: the key on the whole batch,
    ``(arange(batch), *indices, *rest)``, when the key's index tensors come first and only
    full slices or ``...`` follow (gathers along axis 0: lookups, sparse labels); else None.
    All advanced indices adjacent and first: NumPy puts their dimensions first, the batch's
    among them."""
    template = attrs[0] if type(attrs[0]) is tuple else (attrs[0],)
    lead = 0
    while lead < len(template) and type(template[lead]) is IndexInput:
        lead += 1
    if not lead or any(type(k) is IndexInput or not (k is Ellipsis or k == slice(None))
                       for k in template[lead:]):
        return None
    indices = [(values[1 + k.position], batched[1 + k.position]) for k in template[:lead]]
    ndim = max(_example_ndim(v, b) for v, b in indices)
    xp = _backend.module_of(values[0]._value)
    batch = wrap(xp.arange(level.size).reshape((level.size,) + (1,) * ndim))
    return (batch,) + tuple(expand_batched(v, 1, ndim) if b else v for v, b in indices) + \
        template[lead:]


def _getitem(level, primitive, values, batched, attrs):
    """x[key]: by the JVP rule when only x is batched, else indexing the batch as well."""
    if not any(batched[1:]):
        return _linear(primitive, values, attrs, None)
    key = _batched_key(level, values, batched, attrs)
    if key is None:
        return _loop(level, primitive, values, batched, attrs)
    return getitem(_all_batched(level, values[:1], batched[:1])[0], key)


def _scatter_add(level, primitive, values, batched, attrs):
    """getitem's adjoint: zeros with g added at the key, one batch of them."""
    if not any(batched[1:]):
        return _linear(primitive, values, attrs, attrs[1])
    key = _batched_key(level, values, batched, attrs)
    if key is None:
        return _loop(level, primitive, values, batched, attrs)
    return scatter_add(_all_batched(level, values[:1], batched[:1])[0], key,
                       (level.size,) + attrs[1])


def _einsum(level, primitive, values, batched, attrs):
    """A letter of its own for the batch, on the batched operands and the result."""
    ins, out = attrs
    z = min(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("".join(ins) + out))
    return core.bind(primitive, tuple(values), (tuple(z + s if b else s for s, b in
                                                      zip(ins, batched)), z + out))


def _custom(level, primitive, values, batched, attrs):
    """custom_gradient: the result is f's (its last input), already computed on the batch."""
    y = values[-1]
    return y if batched[-1] else broadcast_to(y, (level.size,) + y.shape)


def _refuse(level, primitive, values, batched, attrs):
    raise ValueError(f"{level.name}: {primitive.name} of a batched value is not supported "
                     f"(a Variable holds one value, not one per example)")


def _broadcast_to(level, primitive, values, batched, attrs):
    return core.bind(primitive, (expand_batched(values[0], 1, len(attrs)),), (level.size,) + attrs)


def _matmul(level, primitive, values, batched, attrs):
    """matmul broadcasts like an elementwise op; a batch of outer products (inner dimension 1:
    per-example gradients of a dense layer) is a broadcast multiply, which NumPy runs far
    faster than a stack of rank-1 products."""
    a, b = _aligned(values, batched)
    if all(batched) and a.shape[-1] == 1:
        return multiply(a, b)
    return core.bind(primitive, (a, b), attrs)


def _solve(level, primitive, values, batched, attrs):
    """solve, triangular_solve (a [..., n, n], b [..., n, k]): a shared matrix takes the
    batch's right-hand sides as more columns (one factorization); a batched one gets the
    inputs broadcast to the batch (LAPACK's calls take one batch shape)."""
    a, b = values
    if batched[0]:
        return core.bind(primitive, _all_batched(level, values, batched), attrs)
    nd = b.ndim  # b (B, ..., n, k) -> (..., n, B * k)
    columns = transpose(b, tuple(range(1, nd - 1)) + (0, nd - 1))
    x = core.bind(primitive, (a, reshape(columns, columns.shape[:-2] + (-1,))), attrs)
    return transpose(reshape(x, columns.shape), (nd - 2,) + tuple(range(nd - 2)) + (nd - 1,))


def _conv(level, primitive, values, batched, attrs):
    """conv is linear in each input, and its JVP rule takes a batch of either's tangents:
    batched images fold into the conv's own batch, batched filters into its output channels
    (x read once).  Both batched: one grouped conv, each example's channels its own groups."""
    (x, w), n = values, level.size
    if not batched[1]:
        return primitive.jvp((x, None), (None, w), None, attrs, 1)
    if not batched[0]:
        return primitive.jvp((None, w), (x, None), None, attrs, 1)
    strides, dilations, pads, groups = attrs
    d = len(strides)
    # x (B, N, S..., C) -> (N, S..., B * C); w (B, K..., Cg, Co) -> (K..., Cg, B * Co)
    x = transpose(x, tuple(range(1, d + 2)) + (0, d + 2))
    x = reshape(x, x.shape[:-2] + (n * x.shape[-1],))
    w = transpose(w, tuple(range(1, d + 2)) + (0, d + 2))
    w = reshape(w, w.shape[:-2] + (n * w.shape[-1],))
    y = core.bind(primitive, (x, w), (strides, dilations, pads, n * groups))
    y = reshape(y, y.shape[:-1] + (n, y.shape[-1] // n))  # (N, O..., B, Co)
    return transpose(y, (d + 1,) + tuple(range(d + 1)) + (d + 2,))


def _window_argmax(level, primitive, values, batched, attrs):
    """max pooling's flat indices into each example: the batch's images as one bigger batch,
    each example's indices then counted from its own start."""
    x = values[0]
    flat = core.bind(primitive, (reshape(x, (-1,) + x.shape[2:]),), attrs)
    flat = reshape(flat, x.shape[:2] + flat.shape[1:])
    xp = _backend.module_of(x._value)
    starts = xp.arange(level.size).reshape((-1,) + (1,) * (flat.ndim - 1)) * (x.size // x.shape[0])
    return flat - wrap(starts.astype(flat.dtype))


def _tensor_scatter(level, primitive, values, batched, attrs):
    """tensor_scatter_nd_update/max/min: the batch a leading slice of the key (unbatched
    indices), or an arange index column before the others (batched ones)."""
    template, updates_shape, how = attrs
    tensor, updates = _all_batched(level, values[:2], batched[:2])
    columns, columns_batched = values[2:], batched[2:]
    if not any(columns_batched):
        return core.bind(primitive, (tensor, updates) + tuple(columns),
                         ((slice(None),) + template, (level.size,) + updates_shape, how))
    ndim = max(_example_ndim(v, b) for v, b in zip(columns, columns_batched))
    xp = _backend.module_of(tensor._value)
    batch = wrap(xp.arange(level.size).reshape((level.size,) + (1,) * ndim))
    columns = tuple(expand_batched(v, 1, ndim) if b else v
                    for v, b in zip(columns, columns_batched))
    template = (IndexInput(0),) + tuple(IndexInput(k.position + 1) if type(k) is IndexInput
                                        else k for k in template)
    return core.bind(primitive, (tensor, updates, batch) + columns,
                     (template, (level.size,) + updates_shape, how))


def _segment(level, primitive, values, batched, attrs):
    """segment_sum and its adjoint gather: with unbatched ids the batch is one more leading
    axis; batched ids are offset by ``example * num_segments`` into one segment op of
    ``size * num_segments`` segments, the batch axis moved after the op's own leading axes."""
    (data, ids), (lead, segments, op) = values, attrs
    if not batched[1]:
        return core.bind(primitive, (data, ids), (lead + 1, segments, op))
    data = data if batched[0] else broadcast_to(data, (level.size,) + data.shape)
    xp = _backend.module_of(ids._value)
    offsets = wrap(xp.arange(level.size).reshape((-1,) + (1,) * (ids.ndim - 1)) * segments)
    # out of range stays out of range (the op's own error), never another example's segment
    ids = where(less(ids, 0), -1, where(greater_equal(ids, segments), level.size * segments,
                                        ids + cast(offsets, ids.dtype)))
    data = transpose(data, tuple(range(1, lead + 1)) + (0,) + tuple(range(lead + 1, data.ndim)))
    if primitive is _SEGMENT_SUM:  # data (L..., B, I..., R...) -> (L..., B * segments, R...)
        out = core.bind(primitive, (data, ids), (lead, level.size * segments, op))
        out = reshape(out, out.shape[:lead] + (level.size, segments) + out.shape[lead + 1:])
    else:  # g (L..., B, segments, R...) -> (L..., B * segments, R...): result (L..., B, I..., R...)
        data = reshape(data, data.shape[:lead] + (-1,) + data.shape[lead + 2:])
        out = core.bind(primitive, (data, ids), (lead, level.size * segments, op))
    return transpose(out, (lead,) + tuple(range(lead)) + tuple(range(lead + 1, out.ndim)))


_RULES = {
    MATMUL: _matmul, BROADCAST_TO: _broadcast_to, ops._LOGICAL_NOT: _same_attrs,
    STOP_GRADIENT: _same_attrs, IDENTITY: _same_attrs,
    CAST: _same_attrs, linalg._DET: _same_attrs, linalg._LOG_ABS_DET: _same_attrs,
    linalg._SLOGDET_SIGN: _same_attrs, reductions._CUMSUM: _same_attrs,
    reductions._CUMPROD: _same_attrs, reductions._SHIFT: _same_attrs,
    REDUCE_SUM: _shifted(lambda a, n: (_plus_one(a[0]), a[1])),
    reductions._REDUCE_PROD: _shifted(lambda a, n: (_plus_one(a[0]), a[1])),
    REDUCE_EXTREME: _shifted(lambda a, n: (a[0], _plus_one(a[1]), a[2])),
    reductions._LOGSUMEXP_SHIFT: _shifted(lambda a, n: _plus_one(a)),
    nn._LOGITS_MAX: _shifted(lambda a, n: a + 1),
    RESHAPE: _shifted(lambda a, n: (n,) + a),
    TRANSPOSE: _shifted(lambda a, n: (0,) + _plus_one(a)),
    shape_ops._PAD: _shifted(lambda a, n: (((0, 0),) + a[0],) + a[1:]),
    linalg._INV: _shifted(lambda a, n: (n,) + a), linalg._CHOLESKY: _shifted(lambda a, n: (n,) + a),
    STACK: _stack, shape_ops._CONCAT: _concat,
    GETITEM: _getitem, SCATTER_ADD: _scatter_add,
    linalg._EINSUM: _einsum, _CUSTOM: _custom, ASSIGN: _refuse, SLICE_UPDATE: _refuse,
    linalg._SOLVE: _solve, linalg._TRIANGULAR_SOLVE: _solve,
    _CONV: _conv, _WINDOW_ARGMAX: _window_argmax,
    _SEGMENT_SUM: _segment, _SEGMENT_GATHER: _segment,
    _ARGSORT: _shifted(lambda a, n: (a[0] + 1,) + a[1:]),
    reductions.argmax.primitive: _shifted(lambda a, n: (a[0] + 1,) + a[1:]),
    reductions.argmin.primitive: _shifted(lambda a, n: (a[0] + 1,) + a[1:]),
    _INTEGER_MEAN: _shifted(lambda a, n: (_plus_one(a[0]), a[1])),
}
for _op in (equal, not_equal, less, less_equal, greater, greater_equal, logical_and, logical_or):
    _RULES[_op.primitive] = _broadcasting
for _primitive in _SCATTER.values():
    _RULES[_primitive] = _tensor_scatter
# on the trailing (matrix) axes, any leading batch: the batch is one more
for _primitive in (linalg._QR, linalg._SVD, linalg._EIGH, linalg._EIGVALSH,
                   linalg._SINGULAR_VALUES, linalg._EXPM, reductions._CUMULATIVE_LOGSUMEXP,
                   ops._REAL, ops._IMAG, ops._CONJ, ops._COMPLEX_ABS, _CHECK_INDICES):
    _RULES[_primitive] = _same_attrs
_RULES[ops._COMPLEX] = _broadcasting


def _rule(primitive):
    if isinstance(primitive, Elementwise):
        return _broadcasting
    return _RULES.get(primitive)


_warned = set()
_warned_lock = threading.Lock()


def _loop(level, primitive, values, batched, attrs):
    """No rule: the op once per example, the results stacked (TF's fallback_to_while_loop)."""
    if not level.fallback:
        raise ValueError(f"{level.name}: {primitive.name} has no batching rule and "
                         f"fallback_to_while_loop is False")
    if level.warn:
        with _warned_lock:
            first = primitive.name not in _warned
            _warned.add(primitive.name)
        if first:
            user_warnings.warn(f"{level.name}: {primitive.name} has no batching rule; it runs "
                               f"in a Python loop over the examples")
    parts = [core.bind(primitive, tuple(getitem(v, k) if b else v
                                        for v, b in zip(values, batched)), attrs)
             for k in range(level.size)]
    return stack(parts)


def _record_inputs(primitive, args, out):
    """The arguments as the op's own dispatch records them: Variables read, and (for an
    elementwise op) Python numbers as scalars of the result's dtype."""
    inputs = []
    for a in args:
        if isinstance(a, Tensor):
            inputs.append(core.as_input(a))
        elif type(a) in (float, int) and isinstance(primitive, Elementwise):
            inputs.append(out.dtype.type(a))
        elif isinstance(primitive, Elementwise) and a is not None:
            inputs.append(convert_like(a, out, primitive.name))
        else:
            inputs.append(a)
    return tuple(inputs)


def _apply(level, primitive, args, attrs):
    """Bind ``primitive`` to ``args``, some batched at ``level``: its rule on the whole batch
    (recorded by the recorders outside the map), then the per-example op recorded by those
    inside it."""
    batched = [type(a) is Batched and a.trace is level for a in args]
    values = [a.batch if b else a for a, b in zip(args, batched)]
    rule = _rule(primitive) or _loop
    with core.recording_only(level.is_outer):
        whole = rule(level, primitive, values, batched, attrs)
    if whole.ndim == 0 or whole.shape[0] != level.size:  # a rule that dropped the batch axis
        raise AssertionError(f"{level.name}: the batching rule of {primitive.name} returned "
                             f"shape {whole.shape} for a batch of {level.size}")
    out = Batched(whole, level)
    if core.ACTIVE and primitive.differentiable and out.dtype.kind in "fc":
        with core.recording_only(lambda r: not level.is_outer(r)):
            inputs = _record_inputs(primitive, args, out)
            if isinstance(primitive, Elementwise):  # its record keeps broadcast input shapes
                attrs = ops._broadcast_shapes(inputs, out.shape)
            core.record(primitive, inputs, out, attrs)
    return out


# -------------------------------------------------------------------------- entering

_depth = threading.local()


def _noop_observer(primitive, args, attrs, out):
    """Observing makes every op bind, and every backward step run as ops."""


def _axes_of(op, axes, arg, where):
    """Per leaf of ``arg``: its batch axis (an int or None), from ``axes``, a prefix of
    ``arg``'s structure (JAX's in_axes)."""
    if axes is None or isinstance(axes, int):
        return [axes] * len(nest.flatten(arg)[0])
    if isinstance(axes, dict) and isinstance(arg, dict) and set(axes) == set(arg):
        return [a for k in arg for a in _axes_of(op, axes[k], arg[k], f"{where}[{k!r}]")]
    if isinstance(axes, (list, tuple)) and isinstance(arg, (list, tuple)) and \
            len(axes) == len(arg):
        return [a for i, (ax, x) in enumerate(zip(axes, arg))
                for a in _axes_of(op, ax, x, f"{where}[{i}]")]
    raise ValueError(f"{op}: in_axes {axes!r} does not match the structure of {where} "
                     f"({type(arg).__name__})")


def _map(fn, args, in_axes, out_axes, op, fallback, warn):
    args = tuple(args)
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if isinstance(in_axes, tuple) and len(in_axes) != len(args):
        raise ValueError(f"{op}: in_axes has {len(in_axes)} entries for {len(args)} "
                         f"positional arguments")
    leaves, rebuild = nest.flatten(args)
    axes = _axes_of(op, in_axes, args, "the arguments")
    sizes, moved = {}, []
    for i, (x, axis) in enumerate(zip(leaves, axes)):
        if axis is None:
            moved.append(x)
            continue
        if not isinstance(axis, int):
            raise TypeError(f"{op}: in_axes entries must be ints or None, got {axis!r}")
        t = convert_to_tensor(x, op=op)
        if not -t.ndim <= axis < t.ndim:
            raise ValueError(f"{op}: in_axes {axis} is out of range for argument leaf {i} of "
                             f"shape {t.shape}")
        axis %= t.ndim
        sizes[i] = t.shape[axis]
        moved.append(t if axis == 0 else transpose(
            t, (axis,) + tuple(d for d in range(t.ndim) if d != axis)))
    if not sizes:
        raise ValueError(f"{op}: no argument is mapped (every in_axes is None)")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{op}: the mapped axes have different sizes: " + ", ".join(
            f"argument leaf {i}: {n}" for i, n in sizes.items()))
    size = next(iter(sizes.values()))
    depth = getattr(_depth, "value", 0) + 1
    level = _Level(depth, size, {id(r) for r in core.recorders()}, fallback, warn, op)
    inner = [Batched(x, level) if axes[i] is not None else x for i, x in enumerate(moved)]
    _depth.value = depth
    value_read_checks.append(_check_read)
    try:  # a compiled function called inside runs eagerly, as inside its own trace
        with core.interpreting(), core.observing(_noop_observer), calls_run_eagerly():
            out = fn(*rebuild(inner))
        return _results(out, level, out_axes, op)
    finally:
        level.closed = True
        value_read_checks.remove(_check_read)
        _depth.value = depth - 1


def _results(out, level, out_axes, op):
    """The mapped function's results as whole batches, the batch axis at ``out_axes``."""
    flat, rebuild_out = nest.flatten(out)
    result = []
    for x in flat:
        if type(x) is Batched and x.trace is level:
            if out_axes is None:
                raise ValueError(f"{op}: out_axes=None, but a result of shape {x.shape} "
                                 f"differs between examples")
            whole = x.batch
        elif x is None or out_axes is None:  # the same for every example, kept so
            result.append(x)
            continue
        else:  # the same for every example
            x = convert_to_tensor(x, op=op)
            whole = broadcast_to(x, (level.size,) + x.shape)
        if out_axes != 0:
            if not -whole.ndim <= out_axes < whole.ndim:
                raise ValueError(f"{op}: out_axes {out_axes} is out of range for a result of "
                                 f"shape {whole.shape[1:]}")
            axis = out_axes % whole.ndim
            perm = list(range(1, whole.ndim))
            perm.insert(axis, 0)
            whole = transpose(whole, perm)
        result.append(whole)
    return rebuild_out(result)


def vmap(fun: Callable[..., typing.Any], in_axes: typing.Any = 0,
         out_axes: typing.Any = 0) -> Callable[..., typing.Any]:
    """Vectorize ``fun`` over an axis of its arguments, as ``jax.vmap``.

    Parameters
    ----------
    fun : callable
        A function of examples (Tensors, or nested lists, tuples and dicts of them).
    in_axes : int, None or a structure of them
        The mapped axis of each argument (None: the argument is the same for every example);
        a tuple with one entry per positional argument, each an int, None, or a structure
        matching that argument's (a prefix, as JAX's).
    out_axes : int or None
        Where the batch axis goes in each result (None: the results do not depend on the
        mapped arguments, and come back without a batch axis).

    Returns
    -------
    callable
        ``fun`` on a batch: every op runs once on the whole batch (see the module's
        docstring); it composes with ``grad``, ``GradientTape`` and the other transforms.

    Examples
    --------
    >>> import gpuad as ad
    >>> xs = ad.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> ad.vmap(lambda x: ad.reduce_sum(x * x))(xs).numpy()
    array([ 5., 25., 61.], dtype=float32)

    Per-example gradients: the parameters are shared (``None``), the data mapped.

    >>> def loss(w, x, y):
    ...     return (ad.reduce_sum(w * x) - y) ** 2
    >>> w, ys = ad.constant([0.5, -1.0]), ad.constant([0.0, 1.0, 2.0])
    >>> ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(w, xs, ys).numpy()
    array([[ -3.,  -6.],
           [-21., -28.],
           [-55., -66.]], dtype=float32)
    """
    if out_axes is not None and (isinstance(out_axes, bool) or not isinstance(out_axes, int)):
        raise TypeError(f"vmap: out_axes must be an int or None (one axis for every result), "
                        f"got {out_axes!r}")

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        if not kwargs:
            return _map(fun, args, in_axes, out_axes, "vmap", True, True)
        # keyword arguments are mapped over their axis 0, as JAX's
        n, keys = len(args), list(kwargs)
        axes = tuple(in_axes) + (0,) * len(keys) if isinstance(in_axes, (tuple, list)) \
            else in_axes
        return _map(lambda *a: fun(*a[:n], **dict(zip(keys, a[n:]))),
                    args + tuple(kwargs.values()), axes, out_axes, "vmap", True, True)
    return batched


def vectorized_map(fn: Callable[..., typing.Any], elems: typing.Any,
                   fallback_to_while_loop: bool = True, warn: bool = True) -> typing.Any:
    """``fn`` applied to each slice of ``elems`` along axis 0, in one vectorized pass, as
    ``tf.vectorized_map``.

    Parameters
    ----------
    fn : callable
        A function of one example: a Tensor, or the structure of ``elems`` with slices.
    elems : Tensor or nested structure of Tensors
        Each mapped over its axis 0 (all of one size).
    fallback_to_while_loop : bool
        Whether an op without a batching rule may run once per example (else ValueError).
    warn : bool
        Whether such a fallback warns (once per op).

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> ad.vectorized_map(lambda row: ad.reduce_max(row) * row, x).numpy()
    array([[ 2.,  4.],
           [12., 16.]], dtype=float32)
    >>> ad.vectorized_map(lambda e: e["a"] + e["b"],
    ...                   {"a": x, "b": ad.constant([10.0, 20.0])}).numpy()
    array([[11., 12.],
           [23., 24.]], dtype=float32)
    """
    return _map(fn, (elems,), 0, 0, "vectorized_map", bool(fallback_to_while_loop), bool(warn))


__all__ = ["vmap", "vectorized_map"]
