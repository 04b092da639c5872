"""The structural primitives and creation ops, below the elementwise ops that build on them.

Reshaping, transposing, broadcasting, summing, casting, indexing and stacking, with VJP and JVP
rules written with gpuad ops (differentiable again); creation ops; and the conversion of
Python, NumPy and CuPy data to Tensors (a nested list of Tensors is stacked, differentiably).
The elementwise rules (:mod:`gpuad.ops`) need these -- sum-to-shape is the adjoint of
broadcasting -- so they sit below them.  Every op runs through :func:`gpuad.core.bind`.
"""
import builtins
import math
import numbers
import typing
from collections.abc import Sequence

import numpy

from . import backends as _backend
from . import core, numpy_memory
from .core import Primitive, bind
from .tensor import (DTypeLike, Tensor, TensorLike, cast_checked, concrete_value,
                     contains_tensor, dtype_of_tensors_in, host_array, wrap)


# ------------------------------------------------------------------------- arguments

def tensor_arg(x: TensorLike, op: str, arg: str = "x") -> Tensor:
    """An op's tensor argument: converted if needed; a Variable is read while a recorder
    records (a recorded read)."""
    if type(x) is Tensor:
        return x
    if isinstance(x, Tensor):
        return core.as_input(x)
    try:
        return convert_to_tensor(x, op=op)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{error} (argument {arg!r})") from None


def same_backend(op, tensors):
    """A TypeError naming ``op`` when ``tensors`` live on two backends."""
    if len({t.backend for t in tensors}) > 1:
        names = {t.backend for t in tensors}
        raise TypeError(f"{op}: tensors of two backends ({' and '.join(sorted(names))}) in one "
                        f"op; move one with Tensor.to()")


def index_arg(op, value, like):
    """An index argument (indices, ids, a mask) as a Tensor of its own dtype, on ``like``'s
    backend: a TypeError naming ``op`` if a Tensor given lives on the other one."""
    if not isinstance(value, Tensor):
        value = convert_to_tensor(value, backend=like.backend, op=op)
    same_backend(op, (like, value))
    return value


def tensor_list(op, values):
    """The tensors of a non-empty list argument, all on one backend (stack, concat)."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    tensors = [tensor_arg(v, op, f"values[{i}]") for i, v in enumerate(values)]
    same_backend(op, tensors)
    return tensors


def index_dtype_arg(op, arg, dtype):
    """An op's output dtype for indices or sizes: int32 or int64, as TensorFlow allows."""
    dtype = numpy.dtype(dtype)
    if dtype not in (numpy.dtype("int32"), numpy.dtype("int64")):
        raise TypeError(f"{op}: {arg} must be int32 or int64, got {dtype}")
    return dtype


def axes_arg(op, axis, shape):
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


def kept_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def batch_axes(axes, batch):
    return tuple(a + batch for a in axes)


def batch_key(key, batch):
    """An index key for a tangent with ``batch`` leading dimensions."""
    return (slice(None),) * batch + (key if isinstance(key, tuple) else (key,))


def shape_arg(op: str, shape: typing.Any) -> tuple[int, ...]:
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



# -------------------------------------------------------------------------------- reduce_sum

FLOAT16 = numpy.dtype(numpy.float16)  # compared by identity on hot paths


def _reduce_sum_impl(values, attrs):
    v = values[0]
    axes, keepdims = attrs
    if v.dtype is FLOAT16:  # accumulated in float32, as TensorFlow
        return v.sum(axis=axes, keepdims=keepdims, dtype=numpy.float32).astype(numpy.float16)
    return v.sum(axis=axes, keepdims=keepdims, dtype=v.dtype)


def _reduce_sum_vjp(g, saved, attrs, needs):
    (shape,), (axes, keepdims) = saved, attrs
    if not keepdims:
        g = reshape(g, kept_shape(shape, axes))
    return (broadcast_to(g, shape),)


REDUCE_SUM = Primitive("reduce_sum", _reduce_sum_impl, _reduce_sum_vjp,
                       lambda tangents, saved, out, attrs, batch:
                       reduce_sum(tangents[0], batch_axes(attrs[0], batch), attrs[1]),
                       save=lambda inputs, out, attrs: (inputs[0].shape,))


def reduce_input(op: str, x: TensorLike, float_only: bool = False,
                 complex_ok: bool = False) -> Tensor:
    """A reduction's argument: a numeric (``float_only``: floating; ``complex_ok``: or
    complex) Tensor."""
    x = tensor_arg(x, op)
    if x.dtype.kind == "c" and complex_ok:
        return x
    if x.dtype.kind not in "fiu" or (float_only and x.dtype.kind != "f"):
        raise TypeError(f"{op}: unsupported dtype {x.dtype}")
    return x


def reduce_sum(x: TensorLike, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (None: all; int or tuple; negative counts from the end).

    >>> import gpuad as ad
    >>> ad.reduce_sum(ad.constant([[1.0, 2.0], [3.0, 4.0]]), axis=0).numpy()
    array([4., 6.], dtype=float32)
    """
    x = reduce_input("reduce_sum", x, complex_ok=True)
    return bind(REDUCE_SUM, (x,), (axes_arg("reduce_sum", axis, x.shape), bool(keepdims)))


# ------------------------------------------------------------------------------------ shapes

def _reshape_impl(values, attrs):
    v = values[0]
    if _backend.name_of(v) == "cupy" or v.nbytes < numpy_memory.POOL_MIN_BYTES or \
            v.flags.c_contiguous:
        return v.reshape(attrs)
    return _reshape_large(v, attrs)


# attrs: the new shape; the record keeps the old one
RESHAPE = Primitive("reshape", _reshape_impl,
                    lambda g, saved, attrs, needs: (reshape(g, saved[0]),),
                    lambda tangents, saved, out, attrs, batch:
                    reshape(tangents[0], tangents[0].shape[:batch] + out.shape),
                    save=lambda inputs, out, attrs: (inputs[0].shape,))


def _reshape_large(v, shape):
    """A view when one can do, else a copy into a pooled buffer."""
    try:
        return numpy.reshape(v, shape, copy=False)
    except ValueError:
        flat = numpy_memory.empty((v.size,), v.dtype)
        flat.reshape(v.shape)[...] = v
        return flat.reshape(shape)


def reshape(x: TensorLike, shape: int | Sequence[int] | Tensor) -> Tensor:
    """Reshape (one dimension may be -1).

    >>> import gpuad as ad
    >>> ad.reshape(ad.range(6), (2, -1)).shape
    (2, 3)
    """
    x = tensor_arg(x, "reshape")
    shape = shape_arg("reshape", shape)
    try:
        return bind(RESHAPE, (x,), shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into shape {shape}") from None


TRANSPOSE = Primitive("transpose", lambda values, perm: values[0].transpose(perm),
                      lambda g, saved, attrs, needs: (
                          transpose(g, tuple(numpy.argsort(attrs))),),
                      lambda tangents, saved, out, attrs, batch: transpose(
                          tangents[0], tuple(builtins.range(batch)) + batch_axes(attrs, batch)))


def transpose(x: TensorLike, perm: Sequence[int] | None = None) -> Tensor:
    """Permute the axes (default: reverse them).

    >>> import gpuad as ad
    >>> ad.transpose(ad.zeros((2, 3, 4)), (1, 0, 2)).shape
    (3, 2, 4)
    """
    x = tensor_arg(x, "transpose")
    perm = tuple(builtins.range(x.ndim))[::-1] if perm is None else shape_arg("transpose", perm)
    if sorted(perm) != list(builtins.range(x.ndim)):
        raise ValueError(f"transpose: perm {perm} is not a permutation of the axes of a "
                         f"tensor of shape {x.shape}")
    return bind(TRANSPOSE, (x,), perm)


def swap_last(x):
    """``x`` with its last two axes swapped (a batch of matrices transposed)."""
    perm = list(builtins.range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return transpose(x, perm)


# attrs: the target shape; the record keeps the input's
BROADCAST_TO = Primitive(
    "broadcast_to", lambda values, shape: _backend.module_of(values[0]).broadcast_to(
        values[0], shape),
    lambda g, saved, attrs, needs: (sum_to_shape(g, saved[0]),),
    lambda tangents, saved, out, attrs, batch: broadcast_to(
        expand_batched(tangents[0], batch, len(out.shape)), tangents[0].shape[:batch] + out.shape),
    save=lambda inputs, out, attrs: (inputs[0].shape,))


def expand_batched(t, batch, ndim):
    """A tangent with ``batch`` leading dimensions, given singleton axes after them so that it
    broadcasts like its primal against a result of ``ndim`` dimensions."""
    missing = ndim - (t.ndim - batch)
    if not batch or missing <= 0:
        return t
    return reshape(t, t.shape[:batch] + (1,) * missing + t.shape[batch:])


def broadcast_to(x: TensorLike, shape: int | Sequence[int] | Tensor) -> Tensor:
    """Broadcast ``x`` to ``shape`` (NumPy rules); the gradient is summed back.

    >>> import gpuad as ad
    >>> ad.broadcast_to(ad.constant([1.0, 2.0]), (3, 2)).shape
    (3, 2)
    """
    x = tensor_arg(x, "broadcast_to")
    shape = shape_arg("broadcast_to", shape)
    if x.shape == shape:
        return x
    try:
        if len(shape) < x.ndim or numpy.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return bind(BROADCAST_TO, (x,), shape)


def broadcast_axes(shape, broadcast_shape):
    """The axes of ``broadcast_shape`` that broadcasting ``shape`` to it added or stretched:
    the axes to sum over to go back (the adjoint of broadcasting)."""
    lead = len(broadcast_shape) - len(shape)
    return tuple(builtins.range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and broadcast_shape[lead + i] != 1)


def sum_to_shape(x, shape):
    """Sum ``x`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``x.shape``
    (a Tensor, differentiable; a raw array, for the fused rules)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    axes = broadcast_axes(shape, x.shape)
    if not isinstance(x, Tensor):
        return x.sum(axis=axes).reshape(shape) if axes else x.reshape(shape)
    return reshape(reduce_sum(x, axes, keepdims=True), shape)


def _cast_impl(values, dtype):
    v = values[0]  # complex to real keeps the real part, as TensorFlow (NumPy would warn)
    return (v.real if v.dtype.kind == "c" and dtype.kind != "c" else v).astype(dtype)


CAST = Primitive("cast", _cast_impl,
                 lambda g, saved, attrs, needs: (cast(g, saved[0]),),
                 lambda tangents, saved, out, attrs, batch: cast(tangents[0], out.dtype),
                 save=lambda inputs, out, attrs: (inputs[0].dtype,))


def cast(x: TensorLike, dtype: DTypeLike) -> Tensor:
    """Convert ``x`` to ``dtype`` (differentiable between floating and complex dtypes, float16
    included: the gradient is cast back; complex to real keeps the real part, as TensorFlow).

    >>> import gpuad as ad
    >>> ad.cast(ad.constant([1.7, -1.7]), "int32").numpy()
    array([ 1, -1], dtype=int32)
    """
    x = tensor_arg(x, "cast")
    try:
        dtype = numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"cast: {dtype!r} is not a dtype") from None
    if x.dtype == dtype:
        return x
    # only a floating input has a gradient (an integer one is never recorded: its id is 0)
    return bind(CAST, (x,), dtype)


# ---------------------------------------------------------------------------------- indexing

class IndexInput(typing.NamedTuple):
    """In a getitem key's template: the integer index Tensor that is input ``position`` of
    the primitive (after the indexed tensor), so that a compiled function replays the op
    with each call's indices."""
    position: int


def _split_key(key, x):
    """``(template, index tensors)`` of a getitem key: integer Tensors on ``x``'s backend
    become inputs; lists and boolean masks become arrays (a mask fixes the result's shape,
    so its values are read now)."""
    tensors = []

    def item(k):
        if isinstance(k, Tensor) and k.dtype != numpy.bool_ and k.backend == x.backend:
            tensors.append(k)
            return IndexInput(len(tensors) - 1)
        if isinstance(k, Tensor):
            return _backend.asarray(concrete_value(k, "a boolean mask or an index from "
                                                   "another backend"), x.backend)
        if isinstance(k, list):  # an empty list is an empty integer index, as NumPy
            return _backend.asarray(numpy.asarray(k, dtype=None if k else numpy.intp), x.backend)
        return k
    template = tuple(item(k) for k in key) if isinstance(key, tuple) else item(key)
    return template, tuple(tensors)


def fill_key(template, indices):
    """The key of ``template`` with index input ``k`` replaced by ``indices[k]``."""
    if type(template) is IndexInput:
        return indices[template.position]
    if type(template) is tuple and any(type(k) is IndexInput for k in template):
        return tuple(indices[k.position] if type(k) is IndexInput else k for k in template)
    return template


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


def _separated_ndim(template, indices):
    """:func:`_separated_advanced_ndim` of a template filled with index Tensors' arrays."""
    return _separated_advanced_ndim(fill_key(template, [t._value for t in indices]))


def _getitem_jvp(tangents, saved, out, attrs, batch):
    # separated advanced indices put their dimensions before the batch: move it back first
    t = getitem(tangents[0], batch_key(fill_key(attrs[0], saved), batch))
    return _swap_leading(t, _separated_ndim(attrs[0], saved), batch)


def _scatter_add_jvp(tangents, saved, out, attrs, batch):
    t = _swap_leading(tangents[0], batch, _separated_ndim(attrs[0], saved))
    return _scatter_add(t, batch_key(fill_key(attrs[0], saved), batch),
                        tangents[0].shape[:batch] + out.shape)


def _scatter_add_impl(values, attrs):
    template, shape = attrs
    g, key = values[0], fill_key(template, values[1:])
    value = _backend.module_of(g).zeros(shape, g.dtype)
    if _is_basic(key):
        value[key] = g
    else:
        _backend.scatter_add(value, key, g)
    return value


def _save_indices(inputs, out, attrs):
    return tuple(inputs[1:])


# inputs: (the tensor, its integer index Tensors); attrs: (key template, the other side's
# shape); the records keep the index Tensors
GETITEM = Primitive("getitem", lambda values, attrs: values[0][fill_key(attrs[0], values[1:])],
                    lambda g, saved, attrs, needs: (_scatter_add(g, fill_key(attrs[0], saved),
                                                                 attrs[1]),) + (None,) * len(saved),
                    _getitem_jvp, save=_save_indices)
SCATTER_ADD = Primitive("scatter_add", _scatter_add_impl,
                        lambda g, saved, attrs, needs: (getitem(g, fill_key(attrs[0], saved)),) +
                        (None,) * len(saved), _scatter_add_jvp, save=_save_indices)


def getitem(x: TensorLike, key: typing.Any) -> Tensor:
    """``x[key]``: ints, slices (negative steps too), ``...``, None, integer arrays and bool
    masks; the gradient of repeated indices accumulates.

    >>> import gpuad as ad
    >>> ad.constant([[1.0, 2.0], [3.0, 4.0]])[:, 1].numpy()
    array([2., 4.], dtype=float32)
    """
    x = tensor_arg(x, "getitem")
    template, indices = _split_key(key, x)
    try:
        return bind(GETITEM, (x,) + indices, (template, x.shape))
    except IndexError as error:
        raise IndexError(f"getitem: {error} (tensor shape {x.shape})") from None


def _scatter_add(g, key, shape):
    """zeros(shape) with ``g`` added at ``key`` (repeated indices accumulate; Tensors in
    ``key`` are inputs, as getitem's)."""
    template, indices = _split_key(key, g)
    return bind(SCATTER_ADD, (g,) + indices, (template, shape))


def _stack_jvp(tangents, saved, out, attrs, batch):
    lead = next(t for t in tangents if t is not None).shape[:batch]
    part = lead + out.shape[:attrs] + out.shape[attrs + 1:]
    return stack([zeros(part, out.dtype, out.backend) if t is None else t for t in tangents],
                 attrs + batch)


STACK = Primitive("stack", lambda values, axis: _backend.module_of(values[0]).stack(
    values, axis=axis), lambda g, saved, attrs, needs: unstack(g, attrs), _stack_jvp)


def stack(values: Sequence[TensorLike], axis: int = 0) -> Tensor:
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
    return bind(STACK, tuple(tensors), axis % (first.ndim + 1))


def unstack(x: TensorLike, axis: int = 0) -> list[Tensor]:
    """Split ``x`` along ``axis`` into a list of tensors (the inverse of :func:`stack`)."""
    x = tensor_arg(x, "unstack")
    axis = axes_arg("unstack", axis, x.shape)[0]
    lead = (slice(None),) * axis
    return [getitem(x, lead + (i,)) for i in builtins.range(x.shape[axis])]


IDENTITY = Primitive("identity", lambda values, attrs: values[0],
                     lambda g, saved, attrs, needs: (g,),
                     lambda tangents, saved, out, attrs, batch: tangents[0])


def identity(x: TensorLike) -> Tensor:
    """A new tensor with the value of ``x`` (gradient: the identity), as ``tf.identity``."""
    return bind(IDENTITY, (tensor_arg(x, "identity"),))


STOP_GRADIENT = Primitive("stop_gradient", lambda values, attrs: values[0])  # no gradient


def stop_gradient(x: TensorLike) -> Tensor:
    """``x`` as a constant: no gradient flows through it, as ``tf.stop_gradient``.

    >>> import gpuad as ad
    >>> x = ad.constant(3.0)
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x * ad.stop_gradient(x)
    >>> float(tape.gradient(y, x))
    3.0
    """
    return bind(STOP_GRADIENT, (convert_to_tensor(x, op="stop_gradient"),))


# -------------------------------------------------------------------------------- conversion

def convert_to_tensor(value: TensorLike, dtype: DTypeLike | None = None,
                      backend: str | None = None, op: str = "convert_to_tensor") -> Tensor:
    """Convert ``value`` to a :class:`Tensor`, with TensorFlow's dtype rules.

    Parameters
    ----------
    value : Tensor, Python scalar, nested list/tuple (may contain Tensors), numpy or cupy array
    dtype : dtype, optional
        The requested dtype.  Python floats default to float32, ints to int32, bools to
        bool; numpy and cupy arrays keep their dtype.  The Python numbers of a nested list
        holding Tensors take the Tensors' dtype, and the list is stacked (differentiably).
    backend : {"numpy", "cupy"}, optional
        Where the data goes; defaults to the current backend (:func:`gpuad.get_backend`).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.convert_to_tensor(1.5).dtype, ad.convert_to_tensor(3).dtype
    (dtype('float32'), dtype('int32'))
    >>> import numpy as np
    >>> ad.convert_to_tensor(np.arange(3.0)).dtype
    dtype('float64')
    """
    if isinstance(value, Tensor):
        if dtype is not None and numpy.dtype(dtype) != value.dtype:
            raise ValueError(f"{op}: requested dtype {numpy.dtype(dtype)} for a Tensor of "
                             f"dtype {value.dtype} (use gpuad.cast)")
        return value
    if isinstance(value, (list, tuple)) and contains_tensor(value):
        if dtype is None:  # the list's Python numbers take its Tensors' dtype, as TensorFlow
            dtype = dtype_of_tensors_in(value, op)
        return stack([convert_to_tensor(v, dtype, backend, op) for v in value])
    array = host_array(value, dtype, op, backend)
    if dtype is not None:
        array = cast_checked(array, dtype, op)
    name = backend or _backend.get_backend()
    if _backend.name_of(array) == "cupy" and name == "numpy" and backend is None:
        name = "cupy"  # a cupy array stays on the GPU
    return wrap(_backend.asarray(array, name))


def constant(value: TensorLike, dtype: DTypeLike | None = None,
             shape: int | Sequence[int] | Tensor | None = None, name: str | None = None, *,
             backend: str | None = None) -> Tensor:
    """Create a constant Tensor (see :func:`convert_to_tensor`); copies array data.

    With ``shape``, as ``tf.constant``: a single value fills the shape, and a value with as
    many elements as the shape is reshaped to it. ``name`` is accepted and ignored.

    >>> import gpuad as ad
    >>> ad.constant([[1, 2], [3, 4]]).dtype
    dtype('int32')
    >>> ad.constant(7.0, shape=(2, 2)).numpy().tolist()
    [[7.0, 7.0], [7.0, 7.0]]
    """
    tensor = convert_to_tensor(value, dtype=dtype, backend=backend, op="constant")
    if tensor is value or (_backend.is_array(value) and tensor._value is value):
        tensor = wrap(tensor._value.copy())
    if shape is None:
        return tensor
    shape = shape_arg("constant", shape)
    if tensor.size == 1:
        return wrap(_backend.module_of(tensor._value).full(shape, tensor._value.reshape(()),
                                                           tensor.dtype))
    if tensor.size != math.prod(shape):
        raise TypeError(f"constant: a value of shape {tensor.shape} ({tensor.size} elements) "
                        f"cannot be given shape {shape}")
    return wrap(tensor._value.reshape(shape))


def convert_like(value: TensorLike, like: Tensor, op: str) -> Tensor:
    """Data used in an op with Tensor ``like``: adopt its dtype and backend (as Python scalars do)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (list, tuple)) and contains_tensor(value):
        return convert_to_tensor(value, op=op)
    # Python floats are made in a floating tensor's dtype directly, not rounded to float32 first
    array = host_array(value, like.dtype if like.dtype.kind in "fc" else None, op)
    if _backend.name_of(array) == "cupy" and like.backend == "numpy":
        raise TypeError(f"{op}: a cupy array cannot be combined with a numpy-backend Tensor")
    return wrap(_backend.asarray(cast_checked(array, like.dtype, op), like.backend))


# ---------------------------------------------------------------------------------- creation

def _create_impl(values, attrs):
    """zeros, ones, a fill value, eye, arange or given values (a shape): no inputs,
    everything in ``attrs``."""
    kind, shape, dtype, backend, value = attrs
    xp = _backend.module(backend)
    if kind == "eye":
        return xp.eye(*shape, dtype=dtype)
    if kind == "arange":
        start, delta = value
        return xp.arange(shape[0], dtype=dtype) * delta + start  # start + i * delta, as TF
    if kind == "values":
        return xp.asarray(value, dtype)
    return xp.full(shape, value, dtype)


CREATE = Primitive("create", _create_impl)  # no gradient: a creation has no inputs


def create(op, kind, shape, dtype, backend, value=None):
    """A created Tensor; a negative dimension is an error naming ``op``."""
    if builtins.any(n < 0 for n in shape):
        raise ValueError(f"{op}: dimensions must be non-negative, got shape {shape}")
    dtype = numpy.dtype(dtype)
    try:
        return bind(CREATE, (), (kind, shape, dtype, backend or _backend.get_backend(), value))
    except MemoryError as error:
        raise core.out_of_memory(op, error, shape, dtype) from None


def zeros(shape: int | Sequence[int] | Tensor, dtype: DTypeLike = numpy.float32,
          backend: str | None = None) -> Tensor:
    """A tensor of zeros (float32 by default).

    >>> import gpuad as ad
    >>> ad.zeros((2,)).numpy()
    array([0., 0.], dtype=float32)
    """
    return create("zeros", "full", shape_arg("zeros", shape), dtype, backend, 0)


def ones(shape: int | Sequence[int] | Tensor, dtype: DTypeLike = numpy.float32,
         backend: str | None = None) -> Tensor:
    """A tensor of ones (float32 by default)."""
    return create("ones", "full", shape_arg("ones", shape), dtype, backend, 1)


def zeros_like(x: TensorLike, dtype: DTypeLike | None = None) -> Tensor:
    """Zeros of ``x``'s shape, dtype (unless given) and backend."""
    x = x if isinstance(x, Tensor) else convert_to_tensor(x, op="zeros_like")
    return create("zeros_like", "full", x.shape, dtype or x.dtype, x.backend, 0)


def ones_like(x: TensorLike, dtype: DTypeLike | None = None) -> Tensor:
    """Ones of ``x``'s shape, dtype (unless given) and backend."""
    x = x if isinstance(x, Tensor) else convert_to_tensor(x, op="ones_like")
    return create("ones_like", "full", x.shape, dtype or x.dtype, x.backend, 1)


def fill(dims: int | Sequence[int] | Tensor, value: TensorLike,
         backend: str | None = None) -> Tensor:
    """A tensor of shape ``dims`` filled with ``value`` (dtype by TensorFlow's rules).

    >>> import gpuad as ad
    >>> ad.fill((2,), 7).numpy()
    array([7, 7], dtype=int32)
    """
    value = convert_to_tensor(value, backend=backend, op="fill")
    if value.ndim:
        raise ValueError(f"fill: value must be a scalar, got shape {value.shape}")
    return create("fill", "full", shape_arg("fill", dims), value.dtype, value.backend,
                   value.numpy().item())


def eye(num_rows: int, num_columns: int | None = None, dtype: DTypeLike = numpy.float32,
        backend: str | None = None) -> Tensor:
    """The identity matrix (float32 by default)."""
    return create("eye", "eye", (num_rows, num_rows if num_columns is None else num_columns),
                   dtype, backend)


_RANGE_DTYPES = tuple(numpy.dtype(t) for t in ("int32", "int64", "float16", "float32", "float64"))


def _range_arg_dtype(op, name, value):
    """An argument's dtype as ``tf.range`` infers it: a Python float is float32, an int int32."""
    if isinstance(value, Tensor) or _backend.is_array(value):
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


def range(start: float, limit: float | None = None, delta: float = 1,  # noqa: A001
          dtype: DTypeLike | None = None, backend: str | None = None) -> Tensor:  # (TF's name)
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
        return create("range", "arange", (size,), dtype, backend, (start, delta))
    except OverflowError:
        raise OverflowError(f"range: start {start} or delta {delta} does not fit in {dtype} "
                            f"(pass dtype='int64')") from None
