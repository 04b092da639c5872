"""Sorting and segment sums, with TensorFlow's names and semantics: sort, argsort, top_k,
segment_sum and unsorted_segment_sum.

``argsort`` is a primitive without a gradient (a stable sort, as TensorFlow's); ``sort`` and
``top_k`` gather the input at its indices with ``getitem``, so their gradients are a scatter
of the cotangent back to where each value came from, differentiable again.  The segment sums
are a pair of primitives, a scatter-add and its adjoint, a gather: each one's VJP and JVP is
the other or itself, so they are differentiable to any order.
"""
import numbers
import typing

import numpy

from . import backends as _backend
from .array_ops import getitem, index_arg, index_dtype_arg, tensor_arg
from .core import Primitive, bind
from .tensor import DTypeLike, Tensor, TensorLike, concrete_value

__all__ = ["sort", "argsort", "top_k", "TopKV2", "segment_sum", "unsorted_segment_sum"]

_DIRECTIONS = ("ASCENDING", "DESCENDING")


# -------------------------------------------------------------------------- sort, argsort

def _stable_argsort(v, axis):
    if _backend.module_of(v) is numpy:
        return numpy.argsort(v, axis=axis, kind="stable")
    return _backend.module_of(v).argsort(v, axis=axis)  # CuPy's is always stable


def _argsort_impl(values, attrs):
    v, (axis, descending, dtype) = values[0], attrs
    if not descending:
        return _stable_argsort(v, axis).astype(dtype)
    # descending and stable (ties keep their order): the reversed values' ascending order,
    # read backwards, counted from the other end
    flip = (slice(None),) * axis + (slice(None, None, -1),)
    return (v.shape[axis] - 1 - _stable_argsort(v[flip], axis)[flip]).astype(dtype)


# attrs: (axis, descending, index dtype); no gradient (an integer result)
_ARGSORT = Primitive("argsort", _argsort_impl)


def _sortable(op, values, arg):
    """A numeric tensor of rank 1 or more, the argument ``arg`` of ``op``."""
    x = tensor_arg(values, op, arg)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{op}: {arg} has dtype {x.dtype}; expected a numeric tensor")
    if x.ndim == 0:
        raise ValueError(f"{op}: {arg} must have rank >= 1, got a scalar (shape ())")
    return x


def _sort_args(op, values, axis, direction):
    x = _sortable(op, values, "values")
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, numpy.integer)) or \
            not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: axis must be an int in [{-x.ndim}, {x.ndim}) for values of "
                         f"shape {x.shape}, got {axis!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"{op}: direction must be 'ASCENDING' or 'DESCENDING', got "
                         f"{direction!r}")
    return x, int(axis) % x.ndim


def _take_along(x, indices, axis):
    """``x`` at ``indices`` along ``axis`` and at the same position along the others
    (NumPy's ``take_along_axis``), as getitem: its gradient scatters back."""
    xp = _backend.module_of(x._value)
    key = tuple(indices if d == axis else
                xp.arange(n).reshape((-1,) + (1,) * (x.ndim - 1 - d))
                for d, n in enumerate(x.shape))
    return getitem(x, key)


def argsort(values: TensorLike, axis: int = -1, direction: str = "ASCENDING",
            stable: bool = False) -> Tensor:
    """The indices that sort ``values`` along ``axis``, int32, as ``tf.argsort``; no
    gradient.  The sort is always stable (equal values keep their order, in both
    directions), whatever ``stable`` says, as TensorFlow's.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.argsort(ad.constant([1.0, 3.0, 3.0, 2.0]), direction="DESCENDING").numpy()
    array([1, 2, 3, 0], dtype=int32)
    """
    x, axis = _sort_args("argsort", values, axis, direction)
    return bind(_ARGSORT, (x,), (axis, direction == "DESCENDING", numpy.dtype(numpy.int32)))


def sort(values: TensorLike, axis: int = -1, direction: str = "ASCENDING") -> Tensor:
    """``values`` sorted along ``axis``, as ``tf.sort``.

    The gradient sends each output's cotangent to the input element the sort put there.
    Tied values are placed in their order (a stable sort, as TensorFlow's), so each tied
    element gets the cotangent of its own output position: not a share of the tie's.

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([[3.0, 1.0, 2.0]])
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = ad.sort(x, direction="DESCENDING")
    ...     loss = ad.reduce_sum(y * [[1.0, 10.0, 100.0]])
    >>> y.numpy(), tape.gradient(loss, x).numpy()
    (array([[3., 2., 1.]], dtype=float32), array([[  1., 100.,  10.]], dtype=float32))
    """
    x, axis = _sort_args("sort", values, axis, direction)
    order = bind(_ARGSORT, (x,), (axis, direction == "DESCENDING", numpy.dtype(numpy.intp)))
    return _take_along(x, order, axis)


class TopKV2(typing.NamedTuple):
    """What :func:`top_k` returns (TensorFlow's name)."""
    values: Tensor
    indices: Tensor


def top_k(input: TensorLike, k: int = 1, sorted: bool = True,  # noqa: A002 (TF's names)
          index_type: DTypeLike = numpy.int32) -> TopKV2:
    """The ``k`` largest entries along the last axis of ``input`` and their indices, as
    ``tf.math.top_k`` (also ``ad.nn.top_k``).

    Returns ``TopKV2(values, indices)``; ``indices`` (int32, or ``index_type`` int64) have no
    gradient; the gradient of ``values`` goes to the entries chosen.  Equal entries come in
    the order of their indices (the lower index first, as TensorFlow's); the result is
    sorted (largest first) whatever ``sorted`` says.

    Examples
    --------
    >>> import gpuad as ad
    >>> values, indices = ad.math.top_k(ad.constant([1.0, 3.0, 3.0, 2.0]), k=3)
    >>> values.numpy(), indices.numpy()
    (array([3., 3., 2.], dtype=float32), array([1, 2, 3], dtype=int32))
    """
    x = _sortable("top_k", input, "input")
    if isinstance(k, Tensor) and k.ndim == 0:
        k = concrete_value(k, "k of top_k").item()
    if isinstance(k, bool) or not isinstance(k, (numbers.Integral, numpy.integer)):
        raise TypeError(f"top_k: k must be an int, got {k!r}")
    if not 0 <= k <= x.shape[-1]:
        raise ValueError(f"top_k: k must be in [0, {x.shape[-1]}] (the last axis of input of "
                         f"shape {x.shape}), got k={k}")
    order = bind(_ARGSORT, (x,), (x.ndim - 1, True, index_dtype_arg("top_k", "index_type",
                                                                    index_type)))
    indices = getitem(order, (Ellipsis, slice(0, int(k))))
    return TopKV2(_take_along(x, indices, x.ndim - 1), indices)


# ---------------------------------------------------------------------------- segment sums

def _segment_sum_impl(values, attrs):
    """``out[s] = sum of data[i] over ids[i] == s`` on the axes after ``batch``; negative ids
    are dropped (as TensorFlow's), ids >= num_segments are an error (checked here, so a
    compiled function's replays check them too: CuPy would wrap them around)."""
    (data, ids), (batch, num_segments, op) = values, attrs
    xp = _backend.module_of(data)
    if ids.size and int(ids.max()) >= num_segments:
        raise IndexError(f"{op}: segment_ids must be < num_segments = {num_segments}, got "
                         f"{int(ids.max())}")
    lead, rest = data.shape[:batch], data.shape[batch + ids.ndim:]
    out = xp.zeros(lead + (num_segments + 1,) + rest, data.dtype)
    # a negative id goes to an extra last row, dropped
    rows = xp.where(ids < 0, num_segments, ids)
    xp.add.at(out, (slice(None),) * batch + (rows,), data)
    return out[(slice(None),) * batch + (slice(0, num_segments),)]


def _segment_gather_impl(values, attrs):
    """``out[i] = g[ids[i]]`` on the axes after ``batch``; 0 where ``ids[i]`` is negative."""
    (g, ids), (batch, _, _) = values, attrs
    xp = _backend.module_of(g)
    taken = xp.take(g, xp.where(ids < 0, 0, ids), axis=batch)
    dropped = (ids < 0).reshape((1,) * batch + ids.shape + (1,) * (g.ndim - batch - 1))
    return xp.where(dropped, xp.zeros((), g.dtype), taken)


def _save_ids(inputs, out, attrs):
    return (inputs[1],)


def _segment_sum(data, ids, batch, num_segments, op):
    return bind(_SEGMENT_SUM, (data, ids), (batch, num_segments, op))


def _segment_gather(g, ids, batch, num_segments, op):
    return bind(_SEGMENT_GATHER, (g, ids), (batch, num_segments, op))


# inputs: (data, segment ids); attrs: (leading batch axes, num_segments, the op's name).
# Adjoint to each other and linear in data: each one's VJP is the other, its JVP itself.
_SEGMENT_SUM = Primitive(
    "segment_sum", _segment_sum_impl,
    lambda g, saved, attrs, needs: (_segment_gather(g, saved[0], *attrs), None),
    lambda tangents, saved, out, attrs, batch:
    _segment_sum(tangents[0], saved[0], attrs[0] + batch, *attrs[1:]), save=_save_ids)
_SEGMENT_GATHER = Primitive(
    "segment_sum gradient", _segment_gather_impl,
    lambda g, saved, attrs, needs: (_segment_sum(g, saved[0], *attrs), None),
    lambda tangents, saved, out, attrs, batch:
    _segment_gather(tangents[0], saved[0], attrs[0] + batch, *attrs[1:]), save=_save_ids)


def _segment_args(op, data, segment_ids):
    x = tensor_arg(data, op, "data")
    ids = index_arg(op, segment_ids, x)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{op}: segment_ids must be int32 or int64, got {ids.dtype}")
    if x.shape[:ids.ndim] != ids.shape:
        raise ValueError(f"{op}: the shape {ids.shape} of segment_ids must be a prefix of the "
                         f"shape {x.shape} of data")
    return x, ids


def segment_sum(data: TensorLike, segment_ids: TensorLike) -> Tensor:
    """Sums of the rows of ``data`` over segments, as ``tf.math.segment_sum``:
    ``out[s] = sum of data[i] where segment_ids[i] == s``.

    ``segment_ids`` (int32 or int64, of length ``data.shape[0]``) must be sorted and >= 0;
    the output has ``max(segment_ids) + 1`` rows (a segment without rows sums to 0).  The
    gradient with respect to ``data`` is the cotangent gathered at ``segment_ids``.  The
    output's shape depends on the ids' values: a compiled function (``gpuad.function``)
    takes them as a constant but refuses ids computed from its inputs (TraceError); use
    :func:`unsorted_segment_sum` with ``num_segments`` there.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.math.segment_sum(ad.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), [0, 0, 2]).numpy()
    array([[4., 6.],
           [0., 0.],
           [5., 6.]], dtype=float32)
    """
    x, ids = _segment_args("segment_sum", data, segment_ids)
    if ids.ndim != 1:
        raise ValueError(f"segment_sum: segment_ids must be 1-D, got shape {ids.shape}")
    values = _backend.to_numpy(concrete_value(
        ids, "the segment ids of segment_sum (they set its output's shape: use "
             "unsorted_segment_sum with num_segments there)"))
    if values.size and values[0] < 0:
        raise ValueError(f"segment_sum: segment_ids must be >= 0, got {int(values[0])} at 0")
    unsorted = numpy.flatnonzero(values[1:] < values[:-1])
    if unsorted.size:
        i = int(unsorted[0])
        raise ValueError(f"segment_sum: segment_ids must be sorted, got {int(values[i])} "
                         f"before {int(values[i + 1])} at {i} (use unsorted_segment_sum)")
    return _segment_sum(x, ids, 0, int(values[-1]) + 1 if values.size else 0, "segment_sum")


def unsorted_segment_sum(data: TensorLike, segment_ids: TensorLike,
                         num_segments: int) -> Tensor:
    """Sums of the entries of ``data`` over segments, in any order, as
    ``tf.math.unsorted_segment_sum``: ``out[s] = sum of data[i...] where
    segment_ids[i...] == s``, of shape ``(num_segments,) + data.shape[segment_ids.ndim:]``.

    ``segment_ids`` (int32 or int64) has a prefix of ``data``'s shape; an id < 0 drops its
    entry (as TensorFlow's), one >= ``num_segments`` is an IndexError (in a compiled
    function's replays too).  The gradient with respect to ``data`` is the cotangent gathered
    at ``segment_ids`` (0 where dropped).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.math.unsorted_segment_sum(ad.constant([1.0, 2.0, 3.0, 4.0]), [1, -1, 1, 0], 3).numpy()
    array([4., 4., 0.], dtype=float32)
    """
    op = "unsorted_segment_sum"
    x, ids = _segment_args(op, data, segment_ids)
    if isinstance(num_segments, Tensor) and num_segments.ndim == 0:
        num_segments = concrete_value(num_segments, f"{op}'s num_segments").item()
    if isinstance(num_segments, bool) or \
            not isinstance(num_segments, (numbers.Integral, numpy.integer)) or num_segments < 0:
        raise ValueError(f"{op}: num_segments must be an int >= 0, got {num_segments!r}")
    return _segment_sum(x, ids, 0, int(num_segments), op)
