"""Forward mode: ``ForwardAccumulator``, and forward mode replayed over a tape (Jacobians).

A tangent is a Tensor shaped like its primal, or -- when Jacobians push a whole basis through
at once -- with one extra leading *batch* dimension.  Each primitive's JVP rule maps the
inputs' tangents to the output's; elementwise rules come from the derivative table.  A rule
that cannot take a batch runs once per batch element.

The Jacobian machinery of ``GradientTape`` lives here too: :func:`replay` runs forward mode
over a tape's records with a whole standard basis as the seed (:func:`basis`).
"""
import enum
import functools
import weakref

import numpy

from . import backends, core, numpy_memory
from .array_ops import RESHAPE, convert_like, reshape, stack, transpose, zeros
from .math_ops import MATMUL
from .nest import flatten
from .shape_ops import concat, expand_dims
from .tensor import Tensor, TensorStructure, wrap


class UnconnectedGradients(str, enum.Enum):
    """What ``gradient`` returns for a source the target does not depend on."""
    NONE = "none"
    ZERO = "zero"


def unconnected_gradients_value(value):
    """``unconnected_gradients`` as an :class:`UnconnectedGradients`, with TensorFlow's error."""
    try:
        return UnconnectedGradients(value)
    except ValueError:
        raise ValueError(f"Unknown value for unconnected_gradients: {value!r}") from None


def jvp_step(prim, tangents, saved, out, attrs, batch):
    """The output tangent of one recorded op (None when no input has a tangent)."""
    if all(t is None for t in tangents):
        return None
    if batch and not prim.batched_jvp:
        size = next(t for t in tangents if t is not None).shape[0]
        parts = [prim.jvp(tuple(None if t is None else t[k] for t in tangents), saved, out,
                          attrs, 0) for k in range(size)]
        if any(p is None for p in parts):
            return None
        return stack(parts)
    return prim.jvp(tangents, saved, out, attrs, batch)


def _forget(accumulator_ref, tensor_id, tensor_ref):
    """The callback of the weak reference to a tensor with a tangent: the tangent goes with it
    (the accumulator is itself weakly held: no cycle keeps it, or its tangents, alive)."""
    accumulator = accumulator_ref()
    if accumulator is not None:
        accumulator._tangents.pop(tensor_id, None)
        accumulator._tensors.pop(tensor_id, None)


class ForwardAccumulator:
    """Forward-mode autodiff, as ``tf.autodiff.ForwardAccumulator``.

    Inside the context every op on a tensor with a tangent computes its output's tangent
    (the Jacobian-vector product).  Nested in or around a ``GradientTape`` it gives
    forward-over-reverse Hessian-vector products.

    Parameters
    ----------
    primals : Tensor or nested structure of Tensors
    tangents : same structure, each of its primal's shape

    Examples
    --------
    >>> import gpuad as ad
    >>> x, v = ad.constant([1.0, 2.0]), ad.constant([1.0, 0.0])
    >>> with ad.ForwardAccumulator(x, v) as acc:
    ...     y = ad.reduce_sum(x * x * x)
    >>> float(acc.jvp(y))
    3.0

    Hessian-vector product, forward over reverse:

    >>> with ad.ForwardAccumulator(x, v) as acc:
    ...     with ad.GradientTape() as tape:
    ...         tape.watch(x)
    ...         y = ad.reduce_sum(x * x * x)
    ...     g = tape.gradient(y, x)
    >>> acc.jvp(g).numpy()
    array([6., 0.], dtype=float32)
    """

    _forward = True

    def __init__(self, primals: TensorStructure, tangents: TensorStructure,
                 _batch: int = 0) -> None:
        flat_primals, _ = flatten(primals)
        flat_tangents, _ = flatten(tangents)
        if len(flat_primals) != len(flat_tangents):
            raise ValueError(f"ForwardAccumulator: {len(flat_primals)} primals but "
                             f"{len(flat_tangents)} tangents")
        self._tangents, self._batch, self._recording = {}, _batch, False
        self._tensors = {}  # id -> weak reference to the tensor whose tangent is kept
        self._weak_self = weakref.ref(self)
        self._ids = self._tangents  # the recorders' known ids: only tested for membership
        for i, (p, t) in enumerate(zip(flat_primals, flat_tangents)):
            if not isinstance(p, Tensor) or p.dtype.kind not in "fc":
                raise TypeError(f"ForwardAccumulator: primal {i} must be a floating Tensor, "
                                f"got {getattr(p, 'dtype', type(p).__name__)}")
            t = convert_like(t, p, "ForwardAccumulator")
            if t.shape[_batch:] != p.shape or t.dtype != p.dtype:
                raise ValueError(f"ForwardAccumulator: tangent {i} is {t.dtype}{list(t.shape)} "
                                 f"but its primal is {p.dtype}{list(p.shape)}")
            if not p._id:
                core.give_id(p)  # atomically: another thread may watch p now
            self._keep(p, t)

    def _keep(self, tensor, tangent):
        """Keep ``tangent`` while ``tensor`` lives (as TensorFlow: a long ``with`` block does
        not accumulate the tangents of dead tensors)."""
        self._tangents[tensor._id] = tangent
        self._tensors[tensor._id] = weakref.ref(
            tensor, functools.partial(_forget, self._weak_self, tensor._id))

    def __enter__(self) -> "ForwardAccumulator":
        if self._recording:
            raise ValueError("Accumulator is already recording.")
        core.push_recorder(self)
        self._recording = True
        return self

    def __exit__(self, *exc: object) -> None:  # exceptions propagate
        core.pop_recorder(self)
        self._recording = False

    def _push_tangent(self, prim, ids, out, saved, attrs):
        tangents = tuple([self._tangents.get(i) for i in ids])
        # only the recorders outside this one see its JVP computation (as TensorFlow): not
        # itself, and not an inner tape, whose records must stay in id order (`out` already
        # has its id, the JVP's ops would get larger ones and be recorded before it)
        with core.recording_suspended(self):
            t = jvp_step(prim, tangents, saved, core.aval_of(out), attrs, self._batch)
        if t is not None:
            self._keep(out, t)

    def jvp(self, primals: TensorStructure,
            unconnected_gradients: UnconnectedGradients | str = UnconnectedGradients.NONE
            ) -> TensorStructure:
        """The tangent of each tensor in ``primals`` (None, or zeros, if unconnected)."""
        unconnected = unconnected_gradients_value(unconnected_gradients)
        flat, rebuild = flatten(primals)
        result = []
        for p in flat:
            if not isinstance(p, Tensor):
                raise TypeError(f"ForwardAccumulator.jvp: expected Tensors, got "
                                f"{type(p).__name__}")
            t = self._tangents.get(p._id) if p._id else None
            if t is None and unconnected is UnconnectedGradients.ZERO:
                t = zeros(p.shape, p.dtype, p.backend)
            result.append(t)
        return rebuild(result)


def replay(tape, seeds, batch, last_id, basis_of=None):
    """Forward mode over ``tape``'s records: {id: tangent} for every id the seeds reach on
    the way to ``last_id`` (records that ``last_id`` does not depend on are skipped: the
    forward pass of a gradient's tape, say, whose value the gradient never reads).

    ``basis_of``: a source whose seed is its whole standard basis, built only when a rule
    reads it.  A matrix product of the source (or of a reshape of it) with a matrix that does
    not depend on it has that matrix as its tangent (:func:`_product_with_basis`): no
    product with the identity is computed."""
    tangents = dict(seeds)
    identity = {}  # id -> shape of a tangent that is the standard basis, not built (yet)
    if basis_of is not None:
        identity[basis_of._id] = (basis_of.size,) + basis_of.shape
    first = min(list(tangents) + list(identity))
    records = tape._records
    needed = {last_id}
    for oid in reversed(records):
        if oid in needed:
            needed.update(records[oid].input_ids)
    for oid, record in list(records.items()):
        if oid > last_id:
            break
        if oid < first or oid not in needed:
            continue
        prim, ids, saved, attrs, out = record.primitive, record.input_ids, record.saved, \
            record.attrs, record.out
        if identity:
            if prim is RESHAPE and ids[0] in identity:  # same flat order: still the basis
                identity[oid] = identity[ids[0]][:1] + out.shape
                continue
            if prim is MATMUL:
                t = _product_with_basis(ids, tangents, saved, identity)
                if t is not None:
                    tangents[oid] = t
                    continue
            for i in ids:
                if i in identity and i not in tangents:
                    tangents[i] = reshape(basis(basis_of), identity[i])
        ts = tuple([tangents.get(i) for i in ids])
        t = jvp_step(prim, ts, saved, out, attrs, batch)
        if t is not None:
            tangents[oid] = t
    if last_id in identity and last_id not in tangents:
        tangents[last_id] = reshape(basis(basis_of), identity[last_id])
    return tangents


def _product_with_basis(ids, tangents, saved, identity):
    """The tangent of ``a @ b`` when one operand's tangent is the standard basis of its
    elements (its id is in ``identity``) and the other has none: ``a @ e_i`` is column i of
    ``a`` (b a column), and ``e_i @ b`` row i of ``b`` (a a row) -- views, where the JVP
    would multiply by the identity.  None when neither case applies."""
    (a, b), (ia, ib) = saved, ids
    if ib in identity and ia not in identity and ia not in tangents and a.ndim == 2 \
            and b.ndim == 2 and b.shape[1] == 1:
        return expand_dims(transpose(a), -1)  # (n, rows, 1)
    if ia in identity and ib not in identity and ib not in tangents and b.ndim == 2 \
            and a.ndim == 2 and a.shape[0] == 1:
        return expand_dims(b, 1)  # (n, 1, cols)
    return None


def basis(source, batch_axis=False):
    """The standard basis of ``source``'s elements, as a batch of tangents."""
    xp = backends.module_of(source._value)
    if batch_axis:  # one basis per example: (features, batch, *features_shape)
        b, rest = source.shape[0], source.shape[1:]
        m = int(numpy.prod(rest))
        eye = xp.broadcast_to(xp.eye(m, dtype=source.dtype)[:, None, :], (m, b, m))
        return reshape(wrap(xp.ascontiguousarray(eye)), (m, b) + rest)
    n = source.size
    if xp is numpy:  # a pooled buffer: a fresh n x n array costs more in page faults
        eye = numpy_memory.empty((n, n), source.dtype)
        eye.fill(0)
        numpy.fill_diagonal(eye, 1)
    else:
        eye = xp.eye(n, dtype=source.dtype)
    return reshape(wrap(eye), (n,) + source.shape)


def jacobian_columns(tape, target, source, per_example):
    """Columns of the Jacobian of ``target`` by ``source`` on ``tape``: forward mode replayed
    with the source's basis, in chunks that bound memory; ``(source elements, *target.shape)``
    (``per_example``: one basis per example, as ``batch_jacobian``), or None if unconnected."""
    chunk = max(1, (1 << 22) // max(1, target.size, source.size))
    if chunk >= source.size and not per_example:  # one pass, the whole basis
        return replay(tape, {}, 1, target._id, basis_of=source).get(target._id)
    seeds = basis(source, per_example)
    parts = []
    for start in range(0, seeds.shape[0], chunk):
        t = replay(tape, {source._id: seeds[start:start + chunk]}, 1,
                   target._id).get(target._id)
        if t is None:
            return None
        parts.append(t)
    return parts[0] if len(parts) == 1 else concat(parts, 0)
