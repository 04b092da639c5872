"""Non-elementwise primitives (reductions, shapes, indexing, matmul, cast) and creation ops.

Each primitive is a forward on raw arrays plus a VJP written with gpuad ops, so that an outer
tape records the backward pass and it can be differentiated again.
"""
import builtins
import math
import numbers

import numpy

from . import backends as _backend
from . import numpy_memory
from . import tape as _tape
from .ops import (_apply, _out_of_memory, _tensor, _same_backend, _wrap, divide, equal, multiply,
                  names_memory_errors)
from .tape import Primitive
from .tensor import Tensor, convert_to_tensor


def _axes(op, axis, shape):
    """Normalize ``axis`` (None, int or tuple, negatives allowed) to a sorted tuple."""
    ndim = len(shape)
    if axis is None:
        return tuple(builtins.range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:
        return (axis % ndim,)
    if isinstance(axis, Tensor):
        axis = axis.numpy().tolist()
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = []
    for a in items:
        if not isinstance(a, (numbers.Integral, numpy.integer)) or isinstance(a, bool):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of shape {shape}")
        axes.append(int(a) % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(axes))


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# ------------------------------------------------------------------------------ reductions

def _reduce_sum_vjp(g, saved, attrs, needs):
    shape, axes, keepdims = attrs
    if not keepdims:
        g = reshape(g, _kept_shape(shape, axes))
    return (broadcast_to(g, shape),)


def _batch_axes(axes, batch):
    return tuple(a + batch for a in axes)


def _batch_key(key, batch):
    """An index key for a tangent with ``batch`` leading dimensions."""
    return (slice(None),) * batch + (key if isinstance(key, tuple) else (key,))


_REDUCE_SUM = Primitive("reduce_sum", _reduce_sum_vjp, lambda tangents, saved, out, attrs, batch:
                        reduce_sum(tangents[0], _batch_axes(attrs[1], batch), attrs[2]))


def _reduce_input(op, x, float_only=False):
    x = _tensor(x, op)
    if x.dtype.kind not in "fiu" or (float_only and x.dtype.kind != "f"):
        raise TypeError(f"{op}: unsupported dtype {x.dtype}")
    return x


def reduce_sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (None: all; int or tuple; negative counts from the end).

    >>> import gpuad as ad
    >>> ad.reduce_sum(ad.constant([[1.0, 2.0], [3.0, 4.0]]), axis=0).numpy()
    array([4., 6.], dtype=float32)
    """
    x = _reduce_input("reduce_sum", x)
    axes = _axes("reduce_sum", axis, x.shape)
    v = x._value
    value = v.sum(axis=axes, keepdims=keepdims, dtype=v.dtype)
    return _apply(_REDUCE_SUM, (x,), value, (), (x.shape, axes, keepdims))


def reduce_mean(x, axis=None, keepdims=False):
    """Mean over ``axis``; an integer tensor's mean stays integer (truncated), as TensorFlow.

    >>> import gpuad as ad
    >>> ad.reduce_mean(ad.constant([1, 2])).numpy()
    array(1, dtype=int32)
    """
    x = _reduce_input("reduce_mean", x)
    axes = _axes("reduce_mean", axis, x.shape)
    count = int(numpy.prod([x.shape[a] for a in axes]))
    if x.dtype.kind != "f":
        total = x._value.sum(axis=axes, keepdims=keepdims, dtype=x.dtype)
        xp = _backend.module_of(x._value)
        return _wrap((xp.sign(total) * (abs(total) // builtins.max(count, 1))).astype(x.dtype))
    return divide(reduce_sum(x, axes, keepdims), float(count))


def _extreme_share(saved, attrs):
    """Where x attains its extreme, each tie's share (1/count), keeping reduced axes."""
    x, out = saved
    shape, axes, keepdims = attrs
    if not keepdims:
        out = reshape(out, _kept_shape(shape, axes))
    hit = cast(equal(x, out), x.dtype)  # ties share the gradient equally, as TensorFlow
    return divide(hit, reduce_sum(hit, axes, keepdims=True))


def _reduce_extreme_vjp(g, saved, attrs, needs):
    shape, axes, keepdims = attrs
    if not keepdims:
        g = reshape(g, _kept_shape(shape, axes))
    return (multiply(g, _extreme_share(saved, attrs)),)


_REDUCE_EXTREME = Primitive(
    "reduce_max/min", _reduce_extreme_vjp, lambda tangents, saved, out, attrs, batch:
    reduce_sum(tangents[0] * _extreme_share(saved, attrs), _batch_axes(attrs[1], batch),
               attrs[2]))


def _reduce_extreme(op, method, x, axis, keepdims):
    x = _reduce_input(op, x)
    axes = _axes(op, axis, x.shape)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: cannot reduce an empty axis (shape {x.shape}, axis {axis})")
    out = _wrap(getattr(x._value, method)(axis=axes, keepdims=keepdims))
    if _tape.ACTIVE and _tape._state.stack:
        _tape.record(_REDUCE_EXTREME, (x,), out, (x, out), (x.shape, axes, keepdims))
    return out


def reduce_max(x, axis=None, keepdims=False):
    """Maximum over ``axis``; tied maxima share the gradient equally, as TensorFlow.

    >>> import gpuad as ad
    >>> ad.reduce_max(ad.constant([1.0, 3.0, 2.0])).numpy()
    array(3., dtype=float32)
    """
    return _reduce_extreme("reduce_max", "max", x, axis, keepdims)


def reduce_min(x, axis=None, keepdims=False):
    """Minimum over ``axis``; tied minima share the gradient equally, as TensorFlow."""
    return _reduce_extreme("reduce_min", "min", x, axis, keepdims)


# ---------------------------------------------------------------------------------- shapes

_RESHAPE = Primitive("reshape", lambda g, saved, attrs, needs: (reshape(g, attrs),),
                     lambda tangents, saved, out, attrs, batch:
                     reshape(tangents[0], tangents[0].shape[:batch] + out.shape))


def _shape_tuple(op, shape):
    if type(shape) is tuple and all([type(n) is int for n in shape]):
        return shape
    if isinstance(shape, Tensor):
        shape = shape.numpy().tolist()
    if isinstance(shape, (numbers.Integral, numpy.integer)):
        shape = (shape,)
    try:
        return tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: shape must be a sequence of ints, got {shape!r}") from None


def _reshape_large(v, shape):
    """A view when one can do, else a copy into a pooled buffer."""
    try:
        return numpy.reshape(v, shape, copy=False)
    except ValueError:
        flat = numpy_memory.empty((v.size,), v.dtype)
        flat.reshape(v.shape)[...] = v
        return flat.reshape(shape)


def reshape(x, shape):
    """Reshape (one dimension may be -1).

    >>> import gpuad as ad
    >>> ad.reshape(ad.range(6), (2, -1)).shape
    (2, 3)
    """
    x = _tensor(x, "reshape")
    shape = _shape_tuple("reshape", shape)
    v = x._value
    try:
        value = v.reshape(shape) if type(v) is not numpy.ndarray or \
            v.nbytes < numpy_memory.POOL_MIN_BYTES or v.flags.c_contiguous else \
            _reshape_large(v, shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {v.shape} "
                         f"({v.size} elements) into shape {shape}") from None
    return _apply(_RESHAPE, (x,), value, (), v.shape)


_TRANSPOSE = Primitive("transpose", lambda g, saved, attrs, needs: (
    transpose(g, tuple(numpy.argsort(attrs))),),
    lambda tangents, saved, out, attrs, batch: transpose(
        tangents[0], tuple(builtins.range(batch)) + _batch_axes(attrs, batch)))


def transpose(x, perm=None):
    """Permute the axes (default: reverse them).

    >>> import gpuad as ad
    >>> ad.transpose(ad.zeros((2, 3, 4)), (1, 0, 2)).shape
    (3, 2, 4)
    """
    x = _tensor(x, "transpose")
    perm = tuple(builtins.range(x.ndim))[::-1] if perm is None else _shape_tuple("transpose", perm)
    if sorted(perm) != list(builtins.range(x.ndim)):
        raise ValueError(f"transpose: perm {perm} is not a permutation of the axes of a "
                         f"tensor of shape {x.shape}")
    return _apply(_TRANSPOSE, (x,), x._value.transpose(perm), (), perm)


_BROADCAST_TO = Primitive("broadcast_to", lambda g, saved, attrs, needs: (
    sum_to_shape(g, attrs),), lambda tangents, saved, out, attrs, batch: broadcast_to(
        expand_batched(tangents[0], batch, len(out.shape)), tangents[0].shape[:batch] + out.shape))


def expand_batched(t, batch, ndim):
    """A tangent with ``batch`` leading dimensions, given singleton axes after them so that it
    broadcasts like its primal against a result of ``ndim`` dimensions."""
    missing = ndim - (t.ndim - batch)
    if not batch or missing <= 0:
        return t
    return reshape(t, t.shape[:batch] + (1,) * missing + t.shape[batch:])


def broadcast_to(x, shape):
    """Broadcast ``x`` to ``shape`` (NumPy rules); the gradient is summed back.

    >>> import gpuad as ad
    >>> ad.broadcast_to(ad.constant([1.0, 2.0]), (3, 2)).shape
    (3, 2)
    """
    x = _tensor(x, "broadcast_to")
    shape = _shape_tuple("broadcast_to", shape)
    if x.shape == shape:
        return x
    try:
        value = _backend.module_of(x._value).broadcast_to(x._value, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return _apply(_BROADCAST_TO, (x,), value, (), x.shape)


def sum_to_shape(x, shape):
    """Sum ``x`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``x.shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(builtins.range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    return reshape(reduce_sum(x, axes, keepdims=True), shape)


_CAST = Primitive("cast", lambda g, saved, attrs, needs: (cast(g, attrs),),
                  lambda tangents, saved, out, attrs, batch: cast(tangents[0], out.dtype))


def cast(x, dtype):
    """Convert ``x`` to ``dtype`` (differentiable between floating dtypes).

    >>> import gpuad as ad
    >>> ad.cast(ad.constant([1.7, -1.7]), "int32").numpy()
    array([ 1, -1], dtype=int32)
    """
    x = _tensor(x, "cast")
    try:
        dtype = numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"cast: {dtype!r} is not a dtype") from None
    if x.dtype == dtype:
        return x
    value = x._value.astype(dtype)
    if x.dtype.kind != "f":
        return _wrap(value)
    return _apply(_CAST, (x,), value, (), x.dtype)


def _index_key(key, x):
    """A key with Tensors replaced by raw arrays on ``x``'s backend."""
    def raw(k):
        if isinstance(k, Tensor):
            return _backend.asarray(k._value, x.backend)
        if isinstance(k, list):  # an empty list is an empty integer index, as NumPy
            return _backend.asarray(numpy.asarray(k, dtype=None if k else numpy.intp), x.backend)
        return k
    return tuple(raw(k) for k in key) if isinstance(key, tuple) else raw(key)


def _is_basic(key):
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (numbers.Integral, slice, type(None), type(Ellipsis)))
               or getattr(k, "dtype", None) == numpy.bool_ for k in items)


def _separated_advanced_ndim(key):
    """The number of leading result dimensions of ``key``'s advanced indices when a slice,
    None or ``...`` separates them (NumPy then puts them first), else 0."""
    items = key if isinstance(key, tuple) else (key,)
    if not any(hasattr(k, "dtype") for k in items):
        return 0
    advanced = [i for i, k in enumerate(items)
                if hasattr(k, "dtype") or isinstance(k, numbers.Integral)]
    if advanced[-1] - advanced[0] == len(advanced) - 1:
        return 0
    shapes = [(int(k.sum()),) if getattr(k, "dtype", None) == numpy.bool_ else numpy.shape(k)
              for k in (items[i] for i in advanced)]
    return len(numpy.broadcast_shapes(*shapes))


def _swap_leading(x, first, second):
    """``x`` with its leading ``first`` axes moved after the ``second`` that follow them."""
    if not first or not second:
        return x
    perm = tuple(builtins.range(first, first + second)) + tuple(builtins.range(first))
    return transpose(x, perm + tuple(builtins.range(first + second, x.ndim)))


def _getitem_jvp(tangents, saved, out, attrs, batch):
    # separated advanced indices put their dimensions before the batch: move it back first
    t = getitem(tangents[0], _batch_key(attrs[0], batch))
    return _swap_leading(t, _separated_advanced_ndim(attrs[0]), batch)


def _scatter_add_jvp(tangents, saved, out, attrs, batch):
    t = _swap_leading(tangents[0], batch, _separated_advanced_ndim(attrs[0]))
    return _scatter_add(t, _batch_key(attrs[0], batch), tangents[0].shape[:batch] + out.shape)


_GETITEM = Primitive("getitem", lambda g, saved, attrs, needs: (_scatter_add(g, *attrs),),
                     _getitem_jvp)
_SCATTER_ADD = Primitive("scatter_add", lambda g, saved, attrs, needs: (getitem(g, attrs[0]),),
                         _scatter_add_jvp)


def getitem(x, key):
    """``x[key]``: ints, slices (negative steps too), ``...``, None, integer arrays and bool
    masks; the gradient of repeated indices accumulates.

    >>> import gpuad as ad
    >>> ad.constant([[1.0, 2.0], [3.0, 4.0]])[:, 1].numpy()
    array([2., 4.], dtype=float32)
    """
    x = _tensor(x, "getitem")
    key = _index_key(key, x)
    try:
        value = x._value[key]
    except IndexError as error:
        raise IndexError(f"getitem: {error} (tensor shape {x.shape})") from None
    return _apply(_GETITEM, (x,), value, (), (key, x.shape))


def _scatter_add(g, key, shape):
    """zeros(shape) with ``g`` added at ``key`` (repeated indices accumulate)."""
    xp = _backend.module_of(g._value)
    value = xp.zeros(shape, g.dtype)
    if _is_basic(key):
        value[key] = g._value
    else:
        _backend.scatter_add(value, key, g._value)
    return _apply(_SCATTER_ADD, (g,), value, (), (key, g.shape))


def _stack_jvp(tangents, saved, out, attrs, batch):
    lead = next(t for t in tangents if t is not None).shape[:batch]
    part = lead + out.shape[:attrs] + out.shape[attrs + 1:]
    return stack([zeros(part, out.dtype, out.backend) if t is None else t for t in tangents],
                 attrs + batch)


_STACK = Primitive("stack", lambda g, saved, attrs, needs: unstack(g, attrs), _stack_jvp)


def tensor_list(op, values):
    """The tensors of a non-empty list argument, all on one backend (stack, concat)."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    tensors = [_tensor(v, op, f"values[{i}]") for i, v in enumerate(values)]
    _same_backend(op, tensors)
    return tensors


@names_memory_errors("stack")
def stack(values, axis=0):
    """Stack a list of tensors of one shape along a new axis.

    >>> import gpuad as ad
    >>> ad.stack([ad.constant([1.0, 2.0]), ad.constant([3.0, 4.0])], axis=1).shape
    (2, 2)
    """
    tensors = tensor_list("stack", values)
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.shape != first.shape or t.dtype != first.dtype:
            raise ValueError(f"stack: values[0] is {first.dtype}{list(first.shape)} but "
                             f"values[{i}] is {t.dtype}{list(t.shape)}")
    if not -first.ndim - 1 <= axis <= first.ndim:
        raise ValueError(f"stack: axis {axis} is out of range for tensors of shape {first.shape}")
    axis = axis % (first.ndim + 1)
    value = _backend.module_of(first._value).stack([t._value for t in tensors], axis=axis)
    return _apply(_STACK, tuple(tensors), value, (), axis)


def unstack(x, axis=0):
    """Split ``x`` along ``axis`` into a list of tensors (the inverse of :func:`stack`)."""
    x = _tensor(x, "unstack")
    axis = _axes("unstack", axis, x.shape)[0]
    lead = (slice(None),) * axis
    return [getitem(x, lead + (i,)) for i in builtins.range(x.shape[axis])]


# ---------------------------------------------------------------------------------- matmul

def _swap_last(x):
    perm = list(builtins.range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return transpose(x, perm)


def _matmul_vjp(g, saved, attrs, needs):
    a, b = saved
    ga = sum_to_shape(matmul(g, _swap_last(b)), a.shape) if needs[0] else None
    gb = sum_to_shape(matmul(_swap_last(a), g), b.shape) if needs[1] else None
    return ga, gb


def _matmul_jvp(tangents, saved, out, attrs, batch):  # matmul broadcasts a leading batch
    (ta, tb), (a, b) = tangents, saved
    # singleton axes keep the batch off the other operand's stack axes when it has more
    ndim = max(a.ndim, b.ndim)
    ta = None if ta is None else expand_batched(ta, batch, ndim)
    tb = None if tb is None else expand_batched(tb, batch, ndim)
    terms = ([matmul(ta, b)] if ta is not None else []) + ([matmul(a, tb)] if tb is not None else [])
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


_MATMUL = Primitive("matmul", _matmul_vjp, _matmul_jvp)


def _matmul_raw(xp, a, b):
    """``a @ b``, folding a stack of matrices against a single matrix into one GEMM (NumPy
    otherwise runs one small product per matrix of the stack: batched JVPs do this)."""
    if b.ndim == 2 and a.ndim > 2:
        rows = _product(xp, a.reshape(-1, a.shape[-1]), b)
        return rows.reshape(a.shape[:-1] + b.shape[-1:])
    if a.ndim == 2 and b.ndim > 2:  # (b^T a^T)^T, one GEMM, contiguous like NumPy's result
        rows = _product(xp, xp.swapaxes(b, -1, -2).reshape(-1, b.shape[-2]), a.T)
        return xp.ascontiguousarray(xp.swapaxes(
            rows.reshape(b.shape[:-2] + (b.shape[-1], a.shape[0])), -1, -2))
    return _product(xp, a, b)


def _product(xp, a, b):
    """``xp.matmul(a, b)``; on NumPy a large result goes into a pooled buffer."""
    if xp is not numpy:
        return xp.matmul(a, b)
    shape = (a.shape[-2], b.shape[-1])
    if a.ndim > 2 or b.ndim > 2:  # broadcast_shapes costs microseconds: only for stacks
        shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + shape
    if math.prod(shape) * a.itemsize < numpy_memory.POOL_MIN_BYTES:
        return numpy.matmul(a, b)
    return numpy.matmul(a, b, out=numpy_memory.empty(shape, numpy.result_type(a, b)))


@names_memory_errors("matmul")
def matmul(a, b):
    """Matrix product with NumPy's rules: batched, broadcasting, 1-D operands.

    >>> import gpuad as ad
    >>> ad.matmul(ad.ones((2, 3)), ad.ones((3, 4))).shape
    (2, 4)
    """
    a, b = _tensor(a, "matmul", "a"), _tensor(b, "matmul", "b")
    _same_backend("matmul", (a, b))
    av, bv = a._value, b._value
    if av.dtype != bv.dtype:
        raise TypeError(f"matmul: a has dtype {av.dtype} and b has dtype {bv.dtype}; gpuad "
                        f"does not promote dtypes implicitly (use gpuad.cast)")
    if av.ndim == 0 or bv.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dimension, got shapes "
                         f"{av.shape} and {bv.shape}")
    if av.shape[-1] != bv.shape[-2 if bv.ndim > 1 else 0]:
        raise ValueError(f"matmul: inner dimensions differ: a has shape {av.shape} and b has "
                         f"shape {bv.shape}")
    if av.ndim == 1:  # a row vector whose axis is dropped from the result, as NumPy
        return reshape(matmul(reshape(a, (1, -1)), b if bv.ndim > 1 else reshape(b, (-1, 1))),
                       bv.shape[:-2] + bv.shape[-1:] if bv.ndim > 1 else ())
    if bv.ndim == 1:
        return reshape(matmul(a, reshape(b, (-1, 1))), av.shape[:-1])
    try:
        value = _matmul_raw(_backend.module_of(av), av, bv)
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} do not "
                         f"broadcast") from None
    return _apply(_MATMUL, (a, b), value, (a, b))


# -------------------------------------------------------------------------------- creation

def _creation_module(backend):
    return _backend.module(backend or _backend.get_backend())


def _allocate(op, make, shape, dtype):
    """``make(shape, dtype)`` as a Tensor; a negative dimension or a failed allocation raises
    an error that names ``op`` (and the bytes asked for)."""
    if any(n < 0 for n in shape):
        raise ValueError(f"{op}: dimensions must be non-negative, got shape {shape}")
    try:
        return _wrap(make(shape, dtype))
    except MemoryError as error:
        raise _out_of_memory(op, error, shape, dtype) from None


def zeros(shape, dtype=numpy.float32, backend=None):
    """A tensor of zeros (float32 by default).

    >>> import gpuad as ad
    >>> ad.zeros((2,)).numpy()
    array([0., 0.], dtype=float32)
    """
    return _allocate("zeros", _creation_module(backend).zeros, _shape_tuple("zeros", shape),
                     dtype)


def ones(shape, dtype=numpy.float32, backend=None):
    """A tensor of ones (float32 by default)."""
    return _allocate("ones", _creation_module(backend).ones, _shape_tuple("ones", shape), dtype)


def zeros_like(x, dtype=None):
    """Zeros of ``x``'s shape, dtype (unless given) and backend."""
    x = x if isinstance(x, Tensor) else convert_to_tensor(x, op="zeros_like")
    try:
        return _wrap(_backend.module_of(x._value).zeros(x.shape, dtype or x.dtype))
    except MemoryError as error:
        raise _out_of_memory("zeros_like", error, x.shape, dtype or x.dtype) from None


def ones_like(x, dtype=None):
    """Ones of ``x``'s shape, dtype (unless given) and backend."""
    x = x if isinstance(x, Tensor) else convert_to_tensor(x, op="ones_like")
    try:
        return _wrap(_backend.module_of(x._value).ones(x.shape, dtype or x.dtype))
    except MemoryError as error:
        raise _out_of_memory("ones_like", error, x.shape, dtype or x.dtype) from None


def fill(dims, value, backend=None):
    """A tensor of shape ``dims`` filled with ``value`` (dtype by TensorFlow's rules).

    >>> import gpuad as ad
    >>> ad.fill((2,), 7).numpy()
    array([7, 7], dtype=int32)
    """
    value = convert_to_tensor(value, backend=backend, op="fill")
    if value.ndim:
        raise ValueError(f"fill: value must be a scalar, got shape {value.shape}")
    xp = _backend.module_of(value._value)
    item = value.numpy().item()
    return _allocate("fill", lambda shape, dtype: xp.full(shape, item, dtype),
                     _shape_tuple("fill", dims), value.dtype)


def eye(num_rows, num_columns=None, dtype=numpy.float32, backend=None):
    """The identity matrix (float32 by default)."""
    xp = _creation_module(backend)
    return _allocate("eye", lambda shape, dtype: xp.eye(*shape, dtype=dtype),
                     (num_rows, num_rows if num_columns is None else num_columns), dtype)


_RANGE_DTYPES = tuple(numpy.dtype(t) for t in ("int32", "int64", "float16", "float32", "float64"))


def _range_arg_dtype(op, name, value):
    """An argument's dtype as ``tf.range`` infers it: a Python float is float32, an int int32."""
    if isinstance(value, (Tensor, numpy.generic, numpy.ndarray)):
        dtype = value.dtype
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        dtype = numpy.dtype(numpy.int32)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        dtype = numpy.dtype(numpy.float32)
    else:
        raise TypeError(f"{op}: {name} must be a number or a scalar tensor, got "
                        f"{type(value).__name__} {value!r:.60}")
    if dtype not in _RANGE_DTYPES:
        raise TypeError(f"{op}: {name} has dtype {dtype}; expected one of "
                        f"{', '.join(map(str, _RANGE_DTYPES))}")
    return dtype


def _range_number(name, value, dtype):
    """``value`` as a scalar of ``dtype`` (a Python int for integer dtypes: exact arithmetic)."""
    if dtype.kind == "f":
        return dtype.type(float(value))
    if isinstance(value, (Tensor, numbers.Integral)):
        return int(value)  # a floating tensor is cast (truncated), as tf.range does
    raise TypeError(f"range: {name} is {value!r}, not an integer, and dtype is {dtype}")


def range(start, limit=None, delta=1, dtype=None, backend=None):  # noqa: A001 (TF's name)
    """Numbers from ``start`` to ``limit`` (exclusive) by ``delta``, as ``tf.range``.

    The dtype is ``dtype``, else the widest of the arguments' (a Python float counts as
    float32, an int as int32); the length, ``ceil((limit - start) / delta)``, is computed in
    that dtype, as TensorFlow does (float32 arguments count in float32).

    >>> import gpuad as ad
    >>> ad.range(4).numpy(), ad.range(0.0, 1.0, 0.5).numpy()
    (array([0, 1, 2, 3], dtype=int32), array([0. , 0.5], dtype=float32))
    """
    if limit is None:
        start, limit = 0, start
    names = ("start", "limit", "delta")
    if dtype is None:
        dtype = builtins.max([_range_arg_dtype("range", n, v)
                              for n, v in zip(names, (start, limit, delta))],
                             key=_RANGE_DTYPES.index)
    dtype = numpy.dtype(dtype)
    start, limit, delta = [_range_number(n, v, dtype) for n, v in zip(names, (start, limit, delta))]
    if delta == 0:
        raise ValueError("range: delta must not be 0")
    if dtype.kind == "f":
        size = numpy.ceil((limit - start) / delta)  # in dtype: float32 args count in float32
        if not numpy.isfinite(size):
            raise ValueError(f"range: the length (limit - start) / delta is {size} for start "
                             f"{start}, limit {limit}, delta {delta}")
        size = builtins.max(int(size), 0)
    else:
        size = builtins.max(-((start - limit) // delta), 0)  # ceil division of Python ints
    try:
        values = _creation_module(backend).arange(size, dtype=dtype)
    except MemoryError as error:
        raise _out_of_memory("range", error) from None
    try:
        return _wrap(values * delta + start)  # start + i * delta, as TensorFlow's kernel
    except OverflowError:
        raise OverflowError(f"range: start {start} or delta {delta} does not fit in {dtype} "
                            f"(pass dtype='int64')") from None


def _linspace_weights(num, like):
    """The share of ``stop`` in each of ``num`` elements, i / (num - 1) ([0] when num is 1),
    a constant of ``like``'s dtype and backend; ``start``'s share is one minus it."""
    weights = numpy.linspace(0.0, 1.0, num).astype(like.dtype)
    return _wrap(_backend.asarray(weights, like.backend))


def _linspace_vjp(g, saved, attrs, needs):
    to_stop = _linspace_weights(attrs, g)
    return (reduce_sum(g * (1.0 - to_stop)) if needs[0] else None,
            reduce_sum(g * to_stop) if needs[1] else None)


def _linspace_jvp(tangents, saved, out, attrs, batch):
    to_stop = _linspace_weights(attrs, out)
    t_start, t_stop = [None if t is None else expand_batched(t, batch, 1) for t in tangents]
    terms = ([t_start * (1.0 - to_stop)] if t_start is not None else []) + \
        ([t_stop * to_stop] if t_stop is not None else [])
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


_LINSPACE = Primitive("linspace", _linspace_vjp, _linspace_jvp)


def _linspace_ends(start, stop, backend):
    """``start`` and ``stop`` as 0-d Tensors of one floating dtype: their floating Tensors'
    (float32 when neither is one); Python numbers and integer tensors take it."""
    given = {"start": start, "stop": stop}
    tensors = {name: _tensor(v, "linspace", name) for name, v in given.items()
               if isinstance(v, Tensor)}
    floats = {name: t.dtype for name, t in tensors.items() if t.dtype.kind == "f"}
    if len(set(floats.values())) > 1:
        raise TypeError(f"linspace: start has dtype {floats['start']} and stop has dtype "
                        f"{floats['stop']}; gpuad does not promote dtypes implicitly "
                        f"(use gpuad.cast)")
    dtype = next(iter(floats.values()), numpy.dtype(numpy.float32))
    backend = backend or next((t.backend for t in tensors.values()), None)
    ends = []
    for name, value in given.items():
        t = tensors[name] if name in tensors else \
            convert_to_tensor(value, dtype=dtype, backend=backend, op="linspace")
        if t.dtype.kind not in "fiu":
            raise TypeError(f"linspace: {name} has dtype {t.dtype}; expected a floating or "
                            f"integer number")
        if t.size != 1:
            raise ValueError(f"linspace: {name} must be a scalar, got shape {t.shape}")
        ends.append(reshape(cast(t, dtype), ()))  # both differentiable: gradients reach t
    return ends


def linspace(start, stop, num, backend=None):
    """``num`` evenly spaced numbers from ``start`` to ``stop`` inclusive, as ``tf.linspace``;
    differentiable with respect to ``start`` and ``stop``.

    The dtype is that of the floating tensor among ``start`` and ``stop`` (float32 when
    neither is one); Python numbers adopt it.

    >>> import gpuad as ad
    >>> ad.linspace(0.0, 1.0, 3).numpy()
    array([0. , 0.5, 1. ], dtype=float32)
    """
    start_t, stop_t = _linspace_ends(start, stop, backend)
    _same_backend("linspace", (start_t, stop_t))
    num = int(num)
    if num < 0:
        raise ValueError(f"linspace: num must be >= 0, got {num}")
    try:
        values = numpy.linspace(float(start_t), float(stop_t), num).astype(start_t.dtype)
        value = _backend.asarray(values, start_t.backend)
    except MemoryError as error:
        raise _out_of_memory("linspace", error) from None
    return _apply(_LINSPACE, (start_t, stop_t), value, (), num)


lin_space = linspace


def identity(x):
    """A new tensor with the value of ``x`` (gradient: the identity), as ``tf.identity``."""
    x = _tensor(x, "identity")
    return _apply(_tape._IDENTITY, (x,), x._value)
