"""N-dimensional gather and scatter with TensorFlow's names and semantics: ``gather_nd``,
``scatter_nd`` and ``tensor_scatter_nd_update/add/sub/max/min``.

The last axis of ``indices`` (length K) holds a position in the first K dimensions of the
indexed tensor, so an index picks an element (K = rank) or a slice (K < rank).  The K index
columns become NumPy integer-array indices: ``gather_nd`` is a ``getitem`` and ``scatter_nd``
its adjoint (``SCATTER_ADD``, duplicates summed), whose rules already exist; the
``tensor_scatter`` primitives here have rules written with gpuad ops (operators, ``getitem``,
``SCATTER_ADD``), so all are differentiable again.  Indices are checked by a primitive of the
trace, so a compiled function checks every call's indices too.

This module sits below the elementwise ops (``Variable.scatter_nd_*`` use it), so its rules
do their arithmetic with Tensor operators rather than importing ``gpuad.ops``.
"""
import builtins
import numbers
from collections.abc import Sequence

import numpy

from . import backends as _backend
from .array_ops import (SCATTER_ADD, IndexInput, broadcast_to, cast, convert_like,
                        fill_key, getitem, index_arg, reduce_sum, reshape, same_backend,
                        shape_arg, tensor_arg, unstack, zeros)
from .core import Primitive, bind
from .tensor import Tensor, TensorLike

__all__ = ["gather_nd", "scatter_nd", "tensor_scatter_nd_update", "tensor_scatter_nd_add",
           "tensor_scatter_nd_sub", "tensor_scatter_nd_max", "tensor_scatter_nd_min"]


# --------------------------------------------------------------------------------- indices

def _check_indices_impl(values, attrs):
    op, dims, indexed = attrs
    idx = values[0]
    if idx.size and dims:
        xp = _backend.module_of(idx)
        bad = ((idx < 0) | (idx >= xp.asarray(dims, idx.dtype))).any(axis=-1)
        if bool(bad.any()):  # TF raises on the CPU; a wrapped index would be a wrong number
            where = tuple(int(i) for i in xp.argwhere(bad)[0])
            raise IndexError(f"{op}: indices{list(where)} = {idx[where].tolist()} does not "
                             f"index into {indexed} (indices shape {tuple(idx.shape)})")
    return idx


# inputs: (indices,); attrs: (op name, the indexed dimensions, what they are in words).
# Returns the indices, so a compiled function keeps the check (its output is used) and runs it
# on each call's indices.
_CHECK_INDICES = Primitive("check_indices", _check_indices_impl,
                           abstract_eval=lambda avals, attrs: avals[0])


def _indices_arg(op, indices, like):
    """``indices`` as an integer Tensor of at least one dimension, on ``like``'s backend."""
    idx = index_arg(op, indices, like)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got dtype {idx.dtype} (shape "
                        f"{idx.shape})")
    if idx.ndim == 0:
        raise ValueError(f"{op}: indices must be at least 1-D (the last axis holds a "
                         f"position), got a scalar")
    return idx


def _index_columns(op, idx, dims, indexed):
    """``(columns, indices.shape[:-1])``: the K columns of ``idx`` (K <= len(dims), each
    index in range of ``dims``, checked when the op runs), each of shape
    ``indices.shape[:-1]``."""
    if idx.shape[-1] > len(dims):
        raise ValueError(f"{op}: indices of shape {idx.shape} have a last dimension > "
                         f"{len(dims)}, the rank they index into ({indexed})")
    checked = bind(_CHECK_INDICES, (idx,), (op, tuple(dims[:idx.shape[-1]]), indexed))
    return unstack(checked, axis=-1), idx.shape[:-1]


def _updates_arg(op, updates, tensor, columns, index_shape):
    """``updates`` in ``tensor``'s dtype, of shape ``indices.shape[:-1] + tensor.shape[K:]``."""
    u = tensor_arg(updates, op, "updates") if isinstance(updates, Tensor) else \
        convert_like(updates, tensor, op)
    same_backend(op, (tensor, u))
    want = index_shape + tensor.shape[len(columns):]
    if u.dtype != tensor.dtype:
        raise TypeError(f"{op}: updates of dtype {u.dtype} for a tensor of dtype "
                        f"{tensor.dtype} (gpuad does not promote dtypes; use gpuad.cast)")
    if u.shape != want:
        raise ValueError(f"{op}: updates must have shape {list(want)} (indices.shape[:-1] + "
                         f"tensor.shape[indices.shape[-1]:]) for a tensor of shape "
                         f"{list(tensor.shape)} and indices of shape "
                         f"{index_shape + (len(columns),)}; got {list(u.shape)}")
    return u


# ------------------------------------------------------------------------------- gather_nd

def gather_nd(params: TensorLike, indices: TensorLike, batch_dims: int = 0) -> Tensor:
    """Slices of ``params`` at N-dimensional ``indices``, as ``tf.gather_nd``.

    ``indices[..., :]`` (its last axis of length K) is a position in the first K dimensions
    of ``params``: the result has shape ``indices.shape[:-1] + params.shape[K:]``.  With
    ``batch_dims=b`` the first ``b`` dimensions of both are batch dimensions, gathered from
    pairwise.  Indices out of range raise IndexError (TensorFlow's CPU behaviour); the
    gradient scatters back, repeated indices accumulating.

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([[1.0, 2.0], [3.0, 4.0]])
    >>> ad.gather_nd(x, [[1, 0], [0, 1]]).numpy()
    array([3., 2.], dtype=float32)
    >>> ad.gather_nd(x, [[1]]).numpy()
    array([[3., 4.]], dtype=float32)
    """
    x = tensor_arg(params, "gather_nd", "params")
    b = batch_dims.numpy().item() if isinstance(batch_dims, Tensor) else batch_dims
    if not isinstance(b, (numbers.Integral, numpy.integer)) or isinstance(b, bool) or b < 0:
        raise ValueError(f"gather_nd: batch_dims must be a non-negative int, got {batch_dims!r}")
    b = int(b)
    idx = _indices_arg("gather_nd", indices, x)
    if idx.ndim <= b or idx.shape[:b] != x.shape[:b]:
        raise ValueError(f"gather_nd: batch_dims={b} must be less than the rank of indices, "
                         f"and the batch dimensions must agree: params shape {x.shape}, "
                         f"indices shape {idx.shape}")
    columns, lead = _index_columns("gather_nd", idx, x.shape[b:], f"params of shape {x.shape}"
                                   + (f" after batch_dims={b}" if b else ""))
    if not columns:  # K = 0: every index picks the whole of params (of its batch)
        n = len(lead) - b
        return broadcast_to(reshape(x, x.shape[:b] + (1,) * n + x.shape[b:]),
                            lead + x.shape[b:])
    xp = _backend.module_of(x._value)
    # batch dimension d is indexed by arange(B_d), broadcast against the index columns
    batch = tuple(xp.arange(x.shape[d]).reshape((-1,) + (1,) * (len(lead) - d - 1))
                  for d in builtins.range(b))
    return getitem(x, batch + tuple(columns))


# ------------------------------------------------------------------------------ scatter_nd

def scatter_nd(indices: TensorLike, updates: TensorLike,
               shape: int | Sequence[int] | Tensor) -> Tensor:
    """A tensor of ``shape``, zero but for ``updates`` added at ``indices``, as
    ``tf.scatter_nd``: repeated indices sum their updates.

    ``updates`` has shape ``indices.shape[:-1] + shape[K:]`` (K = ``indices.shape[-1]``).
    The gradient with respect to ``updates`` is ``gather_nd`` of the output's.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.scatter_nd([[1], [3], [1]], ad.constant([1.0, 2.0, 5.0]), [4]).numpy()
    array([0., 6., 0., 2.], dtype=float32)
    """
    u = tensor_arg(updates, "scatter_nd", "updates")
    shape = shape_arg("scatter_nd", shape)
    if builtins.any(n < 0 for n in shape):
        raise ValueError(f"scatter_nd: shape must be non-negative, got {list(shape)}")
    columns, lead = _index_columns("scatter_nd", _indices_arg("scatter_nd", indices, u), shape,
                                   f"shape {list(shape)}")
    k = len(columns)
    if u.shape != lead + shape[k:]:
        raise ValueError(f"scatter_nd: updates must have shape {list(lead + shape[k:])} "
                         f"(indices.shape[:-1] + shape[indices.shape[-1]:]) for indices of "
                         f"shape {lead + (k,)} and shape {list(shape)}; got {list(u.shape)}")
    if not columns:  # K = 0: every update adds to the whole tensor
        return reduce_sum(u, tuple(builtins.range(len(lead)))) if lead else u
    template = tuple(IndexInput(i) for i in builtins.range(k))
    return bind(SCATTER_ADD, (u,) + tuple(columns), (template, shape))


# ------------------------------------------------------------------------ tensor_scatter_nd

def _scatter_impl(values, attrs):
    template, _, how = attrs
    tensor, updates, key = values[0], values[1], fill_key(template, values[2:])
    out = tensor.copy()
    if how == "update":  # NumPy: the last of repeated indices wins, as TF on the CPU
        out[key] = updates
    else:
        getattr(_backend.module_of(out), how).at(out, key, updates)
    return out


def _scatter(how, tensor, updates, columns, attrs):
    return bind(_SCATTER[how], (tensor, updates) + tuple(columns), attrs)


def _save_columns(inputs, out, attrs):
    return tuple(inputs[2:])


def _update_vjp(g, saved, attrs, needs):
    template, updates_shape, _ = attrs
    # as TF: the tensor's gradient is g zeroed where updated, each update gets g at its index
    # (a repeated index gives every update of it g, though one of them won)
    tensor_grad = _scatter("update", g, zeros(updates_shape, g.dtype, g.backend), saved, attrs) \
        if needs[0] else None
    updates_grad = getitem(g, fill_key(template, saved)) if needs[1] else None
    return (tensor_grad, updates_grad) + (None,) * len(saved)


def _update_jvp(tangents, saved, out, attrs, batch):
    template, updates_shape, _ = attrs
    t, u = tangents[0], tangents[1]
    lead = (t if t is not None else u).shape[:batch]
    t = zeros(lead + out.shape, out.dtype, out.backend) if t is None else t
    u = zeros(lead + updates_shape, out.dtype, out.backend) if u is None else u
    # a leading batch axis of tangents: a slice before the index columns
    return _scatter("update", t, u, saved,
                    ((slice(None),) * batch + template, lead + updates_shape, "update"))


def _extremum_save(inputs, out, attrs):
    return (inputs[0], inputs[1], out) + tuple(inputs[2:])


def _indicators(saved, attrs):
    """TF's rule for max and min: which of the tensor's entries and which updates equal the
    output, and how many do per output element (ties share the gradient)."""
    template, updates_shape, _ = attrs
    x, y, out, columns = saved[0], saved[1], saved[2], saved[3:]
    key = fill_key(template, columns)
    x_hit = cast(x == out, x.dtype)
    y_hit = cast(y == getitem(out, key), x.dtype)
    count = x_hit + bind(SCATTER_ADD, (y_hit,) + tuple(columns), (template, x.shape))
    return key, x_hit, y_hit, count


def _extremum_vjp(g, saved, attrs, needs):
    key, x_hit, y_hit, count = _indicators(saved, attrs)
    share = g / count
    return (share * x_hit if needs[0] else None,
            getitem(share, key) * y_hit if needs[1] else None) + (None,) * (len(saved) - 3)


def _extremum_jvp(tangents, saved, out, attrs):
    key, x_hit, y_hit, count = _indicators(saved, attrs)
    t, u = tangents[0], tangents[1]
    total = zeros(out.shape, out.dtype, out.backend) if t is None else t * x_hit
    if u is not None:
        total = total + bind(SCATTER_ADD, (u * y_hit,) + tuple(saved[3:]),
                             (attrs[0], out.shape))
    return total / count


# inputs: (tensor, updates, the K index columns); attrs: (key template, updates' shape, how)
_SCATTER = {
    "update": Primitive("tensor_scatter_nd_update", _scatter_impl, _update_vjp, _update_jvp,
                        save=_save_columns),
    "maximum": Primitive("tensor_scatter_nd_max", _scatter_impl, _extremum_vjp, _extremum_jvp,
                         save=_extremum_save),
    "minimum": Primitive("tensor_scatter_nd_min", _scatter_impl, _extremum_vjp, _extremum_jvp,
                         save=_extremum_save),
}


def _tensor_scatter(op, how, tensor, indices, updates):
    x = tensor_arg(tensor, op, "tensor")
    columns, lead = _index_columns(op, _indices_arg(op, indices, x), x.shape,
                                   f"tensor of shape {x.shape}")
    if not columns:
        raise ValueError(f"{op}: indices.shape[-1] must be at least 1, got indices of shape "
                         f"{lead + (0,)}")
    u = _updates_arg(op, updates, x, columns, lead)
    template = tuple(IndexInput(i) for i in builtins.range(len(columns)))
    return _scatter(how, x, u, columns, (template, u.shape, how))


def tensor_scatter_nd_update(tensor: TensorLike, indices: TensorLike,
                           updates: TensorLike) -> Tensor:
    """``tensor`` with the elements or slices at ``indices`` replaced by ``updates``, as
    ``tf.tensor_scatter_nd_update``.

    ``indices`` has shape ``[..., K]``, ``updates`` ``indices.shape[:-1] + tensor.shape[K:]``.
    Gradients as TensorFlow's: ``tensor`` gets the output's gradient with the updated
    positions zeroed, ``updates`` get ``gather_nd`` of it.  A repeated index keeps the last
    of its updates (TensorFlow on the CPU; on the GPU which one wins is unspecified, as
    TensorFlow's), and every update of it still gets the gradient at that position.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.tensor_scatter_nd_update(ad.zeros((4,)), [[0], [2]], [5.0, 7.0]).numpy()
    array([5., 0., 7., 0.], dtype=float32)
    >>> ad.tensor_scatter_nd_update(ad.zeros((2, 2)), [[1]], [[1.0, 2.0]]).numpy()
    array([[0., 0.],
           [1., 2.]], dtype=float32)
    """
    return _tensor_scatter("tensor_scatter_nd_update", "update", tensor, indices, updates)


def tensor_scatter_nd_add(tensor: TensorLike, indices: TensorLike,
                           updates: TensorLike) -> Tensor:
    """``tensor`` with ``updates`` added at ``indices`` (repeated indices add each of
    theirs), as ``tf.tensor_scatter_nd_add``; shapes as :func:`tensor_scatter_nd_update`.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.tensor_scatter_nd_add(ad.ones((4,)), [[1], [1], [3]], [5.0, 7.0, 1.0]).numpy()
    array([ 1., 13.,  1.,  2.], dtype=float32)
    """
    x = tensor_arg(tensor, "tensor_scatter_nd_add", "tensor")
    return x + _scatter_nd_like("tensor_scatter_nd_add", x, indices, updates)


def tensor_scatter_nd_sub(tensor: TensorLike, indices: TensorLike,
                           updates: TensorLike) -> Tensor:
    """``tensor`` with ``updates`` subtracted at ``indices``, as
    ``tf.tensor_scatter_nd_sub``; shapes as :func:`tensor_scatter_nd_update`.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.tensor_scatter_nd_sub(ad.ones((3,)), [[2], [2]], [1.0, 2.0]).numpy()
    array([ 1.,  1., -2.], dtype=float32)
    """
    x = tensor_arg(tensor, "tensor_scatter_nd_sub", "tensor")
    return x - _scatter_nd_like("tensor_scatter_nd_sub", x, indices, updates)


def _scatter_nd_like(op, x, indices, updates):
    """scatter_nd of ``updates`` to ``x``'s shape, with ``op``'s checks and messages."""
    columns, lead = _index_columns(op, _indices_arg(op, indices, x), x.shape,
                                   f"tensor of shape {x.shape}")
    u = _updates_arg(op, updates, x, columns, lead)
    if not columns:  # K = 0: every update adds to the whole tensor
        return reduce_sum(u, tuple(builtins.range(u.ndim - x.ndim))) if u.ndim > x.ndim else u
    template = tuple(IndexInput(i) for i in builtins.range(len(columns)))
    return bind(SCATTER_ADD, (u,) + tuple(columns), (template, x.shape))


def tensor_scatter_nd_max(tensor: TensorLike, indices: TensorLike,
                           updates: TensorLike) -> Tensor:
    """``tensor`` with each element at ``indices`` the maximum of itself and its updates, as
    ``tf.tensor_scatter_nd_max``; shapes as :func:`tensor_scatter_nd_update`.  The gradient
    goes to the values equal to the output (TensorFlow's rule: ties share it equally).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.tensor_scatter_nd_max(ad.constant([1.0, 2.0, 3.0]), [[1], [1], [2]],
    ...                          [5.0, 4.0, 0.0]).numpy()
    array([1., 5., 3.], dtype=float32)
    """
    return _tensor_scatter("tensor_scatter_nd_max", "maximum", tensor, indices, updates)


def tensor_scatter_nd_min(tensor: TensorLike, indices: TensorLike,
                           updates: TensorLike) -> Tensor:
    """``tensor`` with each element at ``indices`` the minimum of itself and its updates, as
    ``tf.tensor_scatter_nd_min``; shapes and gradient as :func:`tensor_scatter_nd_max`.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.tensor_scatter_nd_min(ad.constant([1.0, 2.0, 3.0]), [[1], [2]], [5.0, 0.0]).numpy()
    array([1., 2., 0.], dtype=float32)
    """
    return _tensor_scatter("tensor_scatter_nd_min", "minimum", tensor, indices, updates)
