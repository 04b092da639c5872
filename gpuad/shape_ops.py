"""Shape and indexing ops beyond the core, with TensorFlow's names and semantics.

Most are compositions of differentiable core ops (reshape, broadcast_to, getitem), so they
need no derivative rules of their own; ``concat`` and ``pad`` are primitives whose VJPs are
written with gpuad ops (slices and constant padding), so they are differentiable again.
"""
import builtins
import numbers
import typing
from collections.abc import Sequence

import numpy

from . import backends as _backend
from . import ops as _ops
from .array_ops import (axes_arg, broadcast_to, convert_like, convert_to_tensor, create,
                        getitem, index_arg, index_dtype_arg, reshape, shape_arg, tensor_arg,
                        tensor_list, transpose, zeros)
from .core import Primitive, bind, names_memory_errors
from .tensor import DTypeLike, Tensor, TensorLike

__all__ = ["expand_dims", "squeeze", "concat", "split", "tile", "pad", "gather",
           "boolean_mask", "shape", "size", "rank", "reverse", "roll", "one_hot", "repeat"]


def _int(op, name, value):
    if isinstance(value, Tensor) and value.ndim == 0:
        value = value.numpy().item()
    if not isinstance(value, (numbers.Integral, numpy.integer)) or isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    return int(value)


def _axis(op, axis, shape):
    axis = _int(op, "axis", axis)
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape {shape}")
    return axis % len(shape)


def expand_dims(input: TensorLike, axis: int) -> Tensor:  # noqa: A002 (TF's name)
    """Insert an axis of size 1 at ``axis`` (in ``[-rank - 1, rank]``).

    >>> import gpuad as ad
    >>> ad.expand_dims(ad.zeros((2, 3)), -1).shape
    (2, 3, 1)
    """
    x = tensor_arg(input, "expand_dims", "input")
    axis = _int("expand_dims", "axis", axis)
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(f"expand_dims: axis {axis} is out of range for a tensor of shape "
                         f"{x.shape} (expected [{-x.ndim - 1}, {x.ndim}])")
    axis %= x.ndim + 1
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(input: TensorLike, axis: int | Sequence[int] | None = None) -> Tensor:  # noqa: A002
    """Remove axes of size 1: all of them, or those in ``axis`` (an int or a tuple), which
    must have size 1.

    >>> import gpuad as ad
    >>> ad.squeeze(ad.zeros((1, 2, 1)), axis=0).shape
    (2, 1)
    """
    x = tensor_arg(input, "squeeze", "input")
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = axes_arg("squeeze", axis, x.shape)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: cannot squeeze axis {a} of size {x.shape[a]} "
                                 f"(tensor shape {x.shape})")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


# ---------------------------------------------------------------------------------- concat

def _concat_vjp(g, saved, attrs, needs):
    axis, sizes = attrs
    lead, start, grads = (slice(None),) * axis, 0, []
    for n, need in zip(sizes, needs):
        grads.append(getitem(g, lead + (slice(start, start + n),)) if need else None)
        start += n
    return grads


def _concat_jvp(tangents, saved, out, attrs, batch):
    axis, sizes = attrs
    lead = next(t for t in tangents if t is not None).shape[:batch]
    return _concat([zeros(lead + out.shape[:axis] + (n,) + out.shape[axis + 1:], out.dtype,
                          out.backend) if t is None else t
                    for t, n in zip(tangents, sizes)], axis + batch)


# attrs: (axis, the inputs' sizes along it)
_CONCAT = Primitive("concat", lambda values, attrs: _backend.module_of(values[0]).concatenate(
    values, attrs[0]), _concat_vjp, _concat_jvp)


def _concat(tensors, axis):
    return bind(_CONCAT, tuple(tensors), (axis, tuple(t.shape[axis] for t in tensors)))


def concat(values: Sequence[TensorLike], axis: int) -> Tensor:
    """Join a list of tensors along an existing ``axis``; the other dimensions must agree.

    >>> import gpuad as ad
    >>> ad.concat([ad.zeros((2, 1)), ad.ones((2, 3))], axis=1).shape
    (2, 4)
    """
    tensors = tensor_list("concat", values)
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("concat: cannot concatenate 0-d tensors (use stack)")
    axis = _axis("concat", axis, first.shape)
    for i, t in enumerate(tensors):
        if t.dtype != first.dtype or t.ndim != first.ndim or \
                t.shape[:axis] + t.shape[axis + 1:] != first.shape[:axis] + first.shape[axis + 1:]:
            raise ValueError(f"concat: values[0] is {first.dtype}{list(first.shape)} but "
                             f"values[{i}] is {t.dtype}{list(t.shape)}; dtypes and all "
                             f"dimensions but axis {axis} must agree")
    return _concat(tensors, axis)


# ----------------------------------------------------------------------------------- split

def split(value: TensorLike, num_or_size_splits: int | Sequence[int] | Tensor,
          axis: int = 0) -> list[Tensor]:
    """Split ``value`` along ``axis`` into a list of tensors, as ``tf.split``.

    ``num_or_size_splits``: a count of equal parts (which must divide the axis), or a list of
    sizes summing to the axis length, one of which may be -1 (inferred).

    >>> import gpuad as ad
    >>> [t.shape for t in ad.split(ad.zeros((5, 2)), [1, -1, 2])]
    [(1, 2), (2, 2), (2, 2)]
    """
    x = tensor_arg(value, "split", "value")
    if x.ndim == 0:
        raise ValueError("split: cannot split a 0-d tensor")
    axis = _axis("split", axis, x.shape)
    n = x.shape[axis]
    splits: typing.Any = num_or_size_splits  # a Tensor, an int or a list of ints
    if isinstance(splits, Tensor):
        splits = splits.numpy().tolist()
    if isinstance(splits, (numbers.Integral, numpy.integer)) and not isinstance(splits, bool):
        if splits <= 0 or n % splits:
            raise ValueError(f"split: cannot split axis {axis} of size {n} (shape {x.shape}) "
                             f"into {splits} equal parts")
        sizes = [n // splits] * int(splits)
    else:
        sizes = [_int("split", "a size", s) for s in splits]
        known = builtins.sum(s for s in sizes if s != -1)
        if sizes.count(-1) > 1 or builtins.any(s < -1 for s in sizes) or \
                (known != n if -1 not in sizes else known > n):
            raise ValueError(f"split: sizes {list(splits)} do not split axis {axis} of size {n} "
                             f"(shape {x.shape}); they must be >= 0 and sum to {n}, one may "
                             f"be -1")
        sizes = [n - known if s == -1 else s for s in sizes]
    lead, start, parts = (slice(None),) * axis, 0, []
    for size in sizes:
        parts.append(getitem(x, lead + (slice(start, start + size),)))
        start += size
    return parts


# ------------------------------------------------------------------------------------ tile

@names_memory_errors("tile")
def tile(input: TensorLike, multiples: int | Sequence[int] | Tensor) -> Tensor:  # noqa: A002
    """Repeat ``input`` ``multiples[i]`` times along each axis ``i``, as ``tf.tile``.

    >>> import gpuad as ad
    >>> ad.tile(ad.constant([1.0, 2.0]), [2]).numpy()
    array([1., 2., 1., 2.], dtype=float32)
    """
    x = tensor_arg(input, "tile", "input")
    multiples = shape_arg("tile", multiples)
    if len(multiples) != x.ndim or builtins.any(m < 0 for m in multiples):
        raise ValueError(f"tile: multiples {list(multiples)} must be {x.ndim} non-negative "
                         f"ints for a tensor of shape {x.shape}")
    # (m, n) broadcast then flattened row-major repeats the whole axis m times; the gradient
    # of the broadcast is one sum
    pairs = [(1, n) for n in x.shape]
    wide = broadcast_to(reshape(x, [k for p in pairs for k in p]),
                        [k for m, n in zip(multiples, x.shape) for k in (m, n)])
    return reshape(wide, tuple(m * n for m, n in zip(multiples, x.shape)))


# ------------------------------------------------------------------------------------- pad

_PAD_MODES = {"CONSTANT": "constant", "REFLECT": "reflect", "SYMMETRIC": "symmetric"}


def _pad_vjp(g, saved, attrs, needs):
    paddings, mode, _ = attrs
    # pad works one axis after the other (corners are padded twice), so fold back one axis
    # at a time: the interior, plus the mirrored borders added where they were copied from
    for axis, (p, q) in enumerate(paddings):
        if p == q == 0:
            continue
        n = g.shape[axis] - p - q
        lead = (slice(None),) * axis
        inner = getitem(g, lead + (slice(p, p + n),))
        if mode != "CONSTANT":
            s = 1 if mode == "REFLECT" else 0  # REFLECT skips the edge element, SYMMETRIC not
            if p:
                inner = inner + _pad(getitem(g, lead + (slice(p - 1, None, -1),)),
                                     _one_axis(paddings, axis, (s, n - s - p)), "CONSTANT", 0)
            if q:
                inner = inner + _pad(getitem(g, lead + (slice(p + n + q - 1, p + n - 1, -1),)),
                                     _one_axis(paddings, axis, (n - s - q, s)), "CONSTANT", 0)
        g = inner
    return (g,)


def _one_axis(paddings, axis, pair):
    return tuple(pair if i == axis else (0, 0) for i in builtins.range(len(paddings)))


def _pad_impl(values, attrs):
    paddings, mode, constant = attrs
    xp = _backend.module_of(values[0])
    if mode == "CONSTANT":
        return xp.pad(values[0], paddings, mode="constant", constant_values=constant)
    return xp.pad(values[0], paddings, mode=_PAD_MODES[mode])


# attrs: (paddings, mode, constant value)
_PAD = Primitive("pad", _pad_impl, _pad_vjp, lambda tangents, saved, out, attrs, batch:
                 _pad(tangents[0], ((0, 0),) * batch + attrs[0], attrs[1], 0))


def _pad(x, paddings, mode, constant):
    return bind(_PAD, (x,), (paddings, mode, constant))


def pad(tensor: TensorLike, paddings: TensorLike, mode: str = "CONSTANT",
        constant_values: TensorLike = 0) -> Tensor:
    """Pad ``tensor`` as ``tf.pad``.

    Parameters
    ----------
    tensor : Tensor
    paddings : [rank, 2] ints
        ``paddings[i] = [before, after]``: how many values to add on each side of axis ``i``.
    mode : {"CONSTANT", "REFLECT", "SYMMETRIC"}
        Case-insensitive.  REFLECT mirrors without repeating the edge (pads must be < the
        axis length), SYMMETRIC repeats it (pads must be <= the axis length).
    constant_values : scalar
        The padding value for CONSTANT (no gradient flows to it).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.pad(ad.constant([1.0, 2.0, 3.0]), [[2, 1]], "REFLECT").numpy()
    array([3., 2., 1., 2., 3., 2.], dtype=float32)
    """
    x = tensor_arg(tensor, "pad", "tensor")
    if not isinstance(mode, str) or mode.upper() not in _PAD_MODES:
        raise ValueError(f"pad: mode must be 'CONSTANT', 'REFLECT' or 'SYMMETRIC', got {mode!r}")
    mode = mode.upper()
    if isinstance(paddings, Tensor):
        paddings = paddings.numpy().tolist()
    try:
        pairs = numpy.asarray(paddings)
        ok = pairs.shape == (x.ndim, 2) and pairs.dtype.kind in "iu" and (pairs >= 0).all()
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"pad: paddings must be {x.ndim} pairs of non-negative ints "
                         f"([rank, 2]) for a tensor of shape {x.shape}, got {paddings!r}")
    paddings = tuple((int(p), int(q)) for p, q in pairs)
    if mode != "CONSTANT":
        for axis, (n, (p, q)) in enumerate(zip(x.shape, paddings)):
            if builtins.max(p, q) > (n - 1 if mode == "REFLECT" else n):
                raise ValueError(f"pad: {mode} paddings {[p, q]} of axis {axis} must be "
                                 f"{'<' if mode == 'REFLECT' else '<='} its size {n} "
                                 f"(tensor shape {x.shape})")
    constant = convert_like(constant_values, x, "pad")
    if constant.ndim:
        raise ValueError(f"pad: constant_values must be a scalar, got shape {constant.shape}")
    return _pad(x, paddings, mode, constant.numpy().item())


# ---------------------------------------------------------------------- gather, boolean_mask

def gather(params: TensorLike, indices: TensorLike, axis: int = 0, batch_dims: int = 0) -> Tensor:
    """Gather slices of ``params`` along ``axis`` at ``indices``, as ``tf.gather``.

    The result has shape ``params.shape[:axis] + indices.shape[batch_dims:] +
    params.shape[axis + 1:]``.  Indices must lie in ``[0, params.shape[axis])``; gradients
    of repeated indices accumulate.  With ``batch_dims=b`` the first ``b`` dimensions of
    ``params`` and ``indices`` are batch dimensions, gathered from pairwise.

    >>> import gpuad as ad
    >>> ad.gather(ad.constant([[1.0, 2.0], [3.0, 4.0]]), [1, 1, 0], axis=1).numpy()
    array([[2., 2., 1.],
           [4., 4., 3.]], dtype=float32)
    """
    x = tensor_arg(params, "gather", "params")
    idx = index_arg("gather", indices, x)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: indices must be integers, got {idx.dtype}")
    if x.ndim == 0:
        raise ValueError("gather: params must have at least one dimension")
    axis = _axis("gather", axis, x.shape)
    b = _int("gather", "batch_dims", batch_dims)
    b = b + idx.ndim if b < 0 else b
    if not 0 <= b <= builtins.min(idx.ndim, axis) or idx.shape[:b] != x.shape[:b]:
        raise ValueError(f"gather: batch_dims={batch_dims} must be <= axis ({axis}) and <= "
                         f"the rank of indices, and the batch dimensions must agree: params "
                         f"shape {x.shape}, indices shape {idx.shape}")
    n, values = x.shape[axis], idx._value  # checked now (a compiled function: when traced)
    if idx.size and (int(values.min()) < 0 or int(values.max()) >= n):
        raise IndexError(f"gather: indices must be in [0, {n}) for axis {axis} of params of "
                         f"shape {x.shape}; got values in [{int(values.min())}, "
                         f"{int(values.max())}]")
    xp = _backend.module_of(x._value)
    # batch dimension d is indexed by arange(B_d), broadcast against the indices
    batch = tuple(xp.arange(x.shape[d]).reshape((-1,) + (1,) * (idx.ndim - d - 1))
                  for d in builtins.range(b))
    out = getitem(x, batch + (slice(None),) * (axis - b) + (idx,))
    if b == 0 or axis == b:
        return out
    # NumPy puts index arrays separated by slices first: move params.shape[b:axis] before them
    k, m = idx.ndim - b, axis - b
    perm = list(builtins.range(b)) + list(builtins.range(b + k, b + k + m)) + \
        list(builtins.range(b, b + k)) + list(builtins.range(b + k + m, out.ndim))
    return transpose(out, perm)


def boolean_mask(tensor: TensorLike, mask: TensorLike, axis: int = 0) -> Tensor:
    """The entries of ``tensor`` where ``mask`` is true, as ``tf.boolean_mask``.

    ``mask`` (bool, k-D) must have the shape ``tensor.shape[axis:axis + k]``; those k axes
    become one, of length ``count_nonzero(mask)``.

    >>> import gpuad as ad
    >>> ad.boolean_mask(ad.constant([[1.0, 2.0], [3.0, 4.0]]), [True, False], axis=1).numpy()
    array([[1.],
           [3.]], dtype=float32)
    """
    x = tensor_arg(tensor, "boolean_mask", "tensor")
    m = index_arg("boolean_mask", mask, x)
    if m.dtype != numpy.bool_:
        raise TypeError(f"boolean_mask: mask must be bool, got {m.dtype}")
    if m.ndim == 0:
        raise ValueError("boolean_mask: mask must have at least one dimension")
    if x.ndim == 0:
        raise ValueError("boolean_mask: tensor must have at least one dimension")
    axis = _axis("boolean_mask", axis, x.shape)
    if x.shape[axis:axis + m.ndim] != m.shape:
        raise ValueError(f"boolean_mask: mask of shape {m.shape} does not match the shape "
                         f"{x.shape[axis:axis + m.ndim]} of tensor {x.shape} at axis {axis}")
    return getitem(x, (slice(None),) * axis + (m,))


# ------------------------------------------------- shape, size, rank, reverse, roll, one_hot

def shape(input: TensorLike, out_type: DTypeLike = numpy.int32) -> Tensor:  # noqa: A002
    """The shape of ``input`` as a 1-D int32 (or int64) Tensor, as ``tf.shape``.

    >>> import gpuad as ad
    >>> ad.shape(ad.zeros((2, 3))).numpy()
    array([2, 3], dtype=int32)
    """
    x = tensor_arg(input, "shape", "input")
    return create("shape", "values", (x.ndim,), index_dtype_arg("shape", "out_type", out_type), x.backend,
                  x.shape)


def size(input: TensorLike, out_type: DTypeLike = numpy.int32) -> Tensor:  # noqa: A002
    """The number of elements of ``input`` as a scalar int32 (or int64) Tensor, as ``tf.size``.

    >>> import gpuad as ad
    >>> ad.size(ad.zeros((2, 3))).numpy()
    array(6, dtype=int32)
    """
    x = tensor_arg(input, "size", "input")
    return create("size", "full", (), index_dtype_arg("size", "out_type", out_type), x.backend, x.size)


def rank(input: TensorLike) -> Tensor:  # noqa: A002
    """The number of dimensions of ``input`` as a scalar int32 Tensor, as ``tf.rank``.

    >>> import gpuad as ad
    >>> ad.rank(ad.zeros((2, 3))).numpy()
    array(2, dtype=int32)
    """
    x = tensor_arg(input, "rank", "input")
    return create("rank", "full", (), numpy.int32, x.backend, x.ndim)


def reverse(tensor: TensorLike, axis: int | Sequence[int]) -> Tensor:
    """``tensor`` with the order of its elements reversed along each axis in ``axis``, as
    ``tf.reverse`` (a slice with step -1, so differentiable again).

    >>> import gpuad as ad
    >>> ad.reverse(ad.constant([[1, 2], [3, 4]]), [1]).numpy().tolist()
    [[2, 1], [4, 3]]
    """
    x = tensor_arg(tensor, "reverse", "tensor")
    axes = axes_arg("reverse", axis, x.shape)
    return getitem(x, tuple(slice(None, None, -1) if i in axes else slice(None)
                            for i in builtins.range(x.ndim)))


def roll(input: TensorLike, shift: int | Sequence[int],  # noqa: A002
         axis: int | Sequence[int]) -> Tensor:
    """Elements of ``input`` shifted by ``shift`` along ``axis``, wrapping around, as
    ``tf.roll``; ``shift`` and ``axis`` may be lists of equal length (an axis named twice
    shifts by the sum). Differentiable: the gradient rolls back.

    >>> import gpuad as ad
    >>> ad.roll(ad.constant([0, 1, 2, 3, 4]), shift=2, axis=0).numpy().tolist()
    [3, 4, 0, 1, 2]
    """
    x = tensor_arg(input, "roll", "input")
    shifts = [shift] if isinstance(shift, numbers.Integral) else \
        list(typing.cast(Sequence[int], shift))
    axes = [axis] if isinstance(axis, numbers.Integral) else \
        list(typing.cast(Sequence[int], axis))
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift and axis must have the same length, got {len(shifts)} "
                         f"shifts and {len(axes)} axes")
    total = {}
    for s, a in zip(shifts, axes):
        a = _axis("roll", a, x.shape)
        total[a] = total.get(a, 0) + _int("roll", "shift", s)
    for a, s in total.items():
        n = x.shape[a]
        s = s % n if n else 0
        if s:
            before = (slice(None),) * a
            x = concat([x[before + (slice(n - s, None),)], x[before + (slice(0, n - s),)]], a)
    return x


def one_hot(indices: TensorLike, depth: int, on_value: TensorLike | None = None,
            off_value: TensorLike | None = None, axis: int | None = None,
            dtype: DTypeLike | None = None) -> Tensor:
    """A one-hot encoding of integer ``indices``, as ``tf.one_hot``: a new axis of size
    ``depth`` (last, or at ``axis``) holds ``on_value`` (default 1) at each index and
    ``off_value`` (default 0) elsewhere; an index outside ``[0, depth)`` gives all
    ``off_value``. The dtype is ``dtype``, else ``on_value``'s or ``off_value``'s, else
    float32. The result is differentiable with respect to ``on_value`` and ``off_value``.

    >>> import gpuad as ad
    >>> ad.one_hot(ad.constant([0, 2, -1]), 3).numpy()
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    """
    idx = tensor_arg(indices, "one_hot", "indices")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    depth = _int("one_hot", "depth", depth)
    if depth < 0:
        raise ValueError(f"one_hot: depth must be >= 0, got {depth}")
    given = [v for v in (on_value, off_value) if isinstance(v, Tensor)]
    dtype = numpy.dtype(dtype if dtype is not None else given[0].dtype if given else
                        numpy.float32)
    on = convert_to_tensor(1 if on_value is None else on_value, dtype, backend=idx.backend,
                           op="one_hot")
    off = convert_to_tensor(0 if off_value is None else off_value, dtype, backend=idx.backend,
                            op="one_hot")
    for name, value in (("on_value", on), ("off_value", off)):
        if value.dtype != dtype or value.ndim:
            raise TypeError(f"one_hot: {name} must be a scalar of dtype {dtype}, got "
                            f"{value.dtype} of shape {value.shape}")
    axis = idx.ndim if axis is None or axis == -1 else _int("one_hot", "axis", axis)
    if not 0 <= axis <= idx.ndim:
        raise ValueError(f"one_hot: axis {axis} is out of range for indices of shape "
                         f"{idx.shape}")
    positions = numpy.arange(depth).reshape((depth,) + (1,) * (idx.ndim - axis))
    hot = _ops.equal(expand_dims(idx, axis),
                     convert_to_tensor(positions.astype(idx.dtype), backend=idx.backend))
    return _ops.where(hot, on, off)


def repeat(input: TensorLike, repeats: TensorLike,  # noqa: A002
           axis: int | None = None) -> Tensor:
    """Each element (or slice along ``axis``) of ``input`` repeated, as ``tf.repeat``:
    ``repeats`` is one int or one int per element along ``axis``; ``axis=None`` flattens
    first. A gather, so the gradient sums the copies.

    >>> import gpuad as ad
    >>> ad.repeat(ad.constant([[1, 2], [3, 4]]), [1, 2], axis=0).numpy().tolist()
    [[1, 2], [3, 4], [3, 4]]
    """
    x = tensor_arg(input, "repeat", "input")
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = _axis("repeat", axis, x.shape)
    counts = numpy.asarray(repeats.numpy() if isinstance(repeats, Tensor) else repeats)
    n = x.shape[axis]
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or counts.ndim == 1 and \
            counts.shape[0] not in (1, n) or (counts < 0).any():
        raise ValueError(f"repeat: repeats must be a non-negative int or {n} of them for axis "
                         f"{axis} of input shape {x.shape}, got {repeats!r}")
    return gather(x, numpy.repeat(numpy.arange(n), counts), axis=axis)
