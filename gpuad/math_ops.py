"""Math primitives built on the elementwise ops: matmul, reduce_mean/max/min, linspace.

TensorFlow's ``math_ops`` names; their rules use elementwise ops, so they sit above
:mod:`gpuad.ops`.
"""
import math
from collections.abc import Sequence

import numpy

from . import backends as _backend
from . import numpy_memory
from .array_ops import (FLOAT16, axes_arg, batch_axes, cast, convert_to_tensor, expand_batched,
                        kept_shape, reduce_input, reduce_sum, reshape, same_backend,
                        sum_to_shape, swap_last, tensor_arg)
from .core import Primitive, bind, save_inputs, save_inputs_and_output
from .ops import conj, divide, equal, multiply
from .tensor import Tensor, TensorLike, wrap


def reduce_mean(x: TensorLike, axis: int | Sequence[int] | None = None,
                keepdims: bool = False) -> Tensor:
    """Mean over ``axis``; an integer tensor's mean stays integer (truncated), as TensorFlow.

    >>> import gpuad as ad
    >>> ad.reduce_mean(ad.constant([1, 2])).numpy()
    array(1, dtype=int32)
    """
    x = reduce_input("reduce_mean", x, complex_ok=True)
    axes = axes_arg("reduce_mean", axis, x.shape)
    if x.dtype.kind not in "fc":
        return bind(_INTEGER_MEAN, (x,), (axes, bool(keepdims)))
    if x.dtype == numpy.float16:  # accumulated and divided in float32, as TensorFlow
        return cast(reduce_mean(cast(x, numpy.float32), axes, keepdims), numpy.float16)
    return divide(reduce_sum(x, axes, keepdims), float(math.prod(x.shape[a] for a in axes)))


def _integer_mean_impl(values, attrs):
    (v,), (axes, keepdims) = values, attrs
    total = v.sum(axis=axes, keepdims=keepdims, dtype=v.dtype)
    count = max(math.prod(v.shape[a] for a in axes), 1)
    xp = _backend.module_of(v)
    return (xp.sign(total) * (abs(total) // count)).astype(v.dtype)  # truncated, as TF


_INTEGER_MEAN = Primitive("reduce_mean (integer)", _integer_mean_impl)  # no gradient


def _extreme_share(saved, attrs):
    """Where x attains its extreme, each tie's share (1/count), keeping reduced axes."""
    x, out = saved
    method, axes, keepdims = attrs
    if not keepdims:
        out = reshape(out, kept_shape(x.shape, axes))
    hit = cast(equal(x, out), x.dtype)  # ties share the gradient equally, as TensorFlow
    return divide(hit, reduce_sum(hit, axes, keepdims=True))


def _reduce_extreme_vjp(g, saved, attrs, needs):
    method, axes, keepdims = attrs
    if not keepdims:
        g = reshape(g, kept_shape(saved[0].shape, axes))
    return (multiply(g, _extreme_share(saved, attrs)),)


# attrs: ("max" or "min", axes, keepdims)
REDUCE_EXTREME = Primitive(
    "reduce_max/min", lambda values, attrs: getattr(values[0], attrs[0])(
        axis=attrs[1], keepdims=attrs[2]),
    _reduce_extreme_vjp, lambda tangents, saved, out, attrs, batch:
    reduce_sum(tangents[0] * _extreme_share(saved, attrs), batch_axes(attrs[1], batch),
               attrs[2]), save=save_inputs_and_output)


def _reduce_extreme(op, method, x, axis, keepdims):
    x = reduce_input(op, x)
    axes = axes_arg(op, axis, x.shape)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: cannot reduce an empty axis (shape {x.shape}, axis {axis})")
    return bind(REDUCE_EXTREME, (x,), (method, axes, bool(keepdims)))


def reduce_max(x: TensorLike, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tensor:
    """Maximum over ``axis``; tied maxima share the gradient equally, as TensorFlow.

    >>> import gpuad as ad
    >>> ad.reduce_max(ad.constant([1.0, 3.0, 2.0])).numpy()
    array(3., dtype=float32)
    """
    return _reduce_extreme("reduce_max", "max", x, axis, keepdims)


def reduce_min(x: TensorLike, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tensor:
    """Minimum over ``axis``; tied minima share the gradient equally, as TensorFlow."""
    return _reduce_extreme("reduce_min", "min", x, axis, keepdims)


# ---------------------------------------------------------------------------------- matmul

def _matmul_vjp(g, saved, attrs, needs):
    a, b = saved  # complex: the adjoints, g b^H and a^H g, as TensorFlow
    ga = sum_to_shape(matmul(g, conj(swap_last(b))), a.shape) if needs[0] else None
    gb = sum_to_shape(matmul(conj(swap_last(a)), g), b.shape) if needs[1] else None
    return ga, gb


def _matmul_jvp(tangents, saved, out, attrs, batch):  # matmul broadcasts a leading batch
    (ta, tb), (a, b) = tangents, saved
    # singleton axes keep the batch off the other operand's stack axes when it has more
    ndim = max(a.ndim, b.ndim)
    ta = None if ta is None else expand_batched(ta, batch, ndim)
    tb = None if tb is None else expand_batched(tb, batch, ndim)
    terms = ([matmul(ta, b)] if ta is not None else []) + ([matmul(a, tb)] if tb is not None else [])
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


MATMUL = Primitive("matmul", lambda values, attrs: _matmul_raw(
    _backend.module_of(values[0]), *values), _matmul_vjp, _matmul_jvp, save=save_inputs)


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
    if a.dtype is FLOAT16:  # NumPy's float16 matmul accumulates in float16: float32
        return numpy.matmul(a.astype(numpy.float32), b.astype(numpy.float32)).astype(a.dtype)
    shape = (a.shape[-2], b.shape[-1])
    if a.ndim > 2 or b.ndim > 2:  # broadcast_shapes costs microseconds: only for stacks
        shape = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + shape
    if math.prod(shape) * a.itemsize < numpy_memory.POOL_MIN_BYTES:
        return numpy.matmul(a, b)
    return numpy.matmul(a, b, out=numpy_memory.empty(shape, numpy.result_type(a, b)))


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """Matrix product with NumPy's rules: batched, broadcasting, 1-D operands.

    >>> import gpuad as ad
    >>> ad.matmul(ad.ones((2, 3)), ad.ones((3, 4))).shape
    (2, 4)
    """
    a, b = tensor_arg(a, "matmul", "a"), tensor_arg(b, "matmul", "b")
    same_backend("matmul", (a, b))
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
    if av.ndim > 2 or bv.ndim > 2:  # broadcast_shapes costs microseconds: only for stacks
        try:
            numpy.broadcast_shapes(av.shape[:-2], bv.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} do "
                             f"not broadcast") from None
    return bind(MATMUL, (a, b))


# ---------------------------------------------------------------------------------- linspace

def _linspace_weights(num, like):
    """The share of ``stop`` in each of ``num`` elements, i / (num - 1) ([0] when num is 1),
    a constant of ``like``'s dtype and backend; ``start``'s share is one minus it."""
    weights = numpy.linspace(0.0, 1.0, num).astype(like.dtype)
    return wrap(_backend.asarray(weights, like.backend))


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


def _linspace_impl(values, num):
    start, stop = values
    xp = _backend.module_of(start)  # in float64, then cast
    return xp.linspace(start.item(), stop.item(), num).astype(start.dtype)


_LINSPACE = Primitive("linspace", _linspace_impl, _linspace_vjp, _linspace_jvp)


def _linspace_ends(start, stop, backend):
    """``start`` and ``stop`` as 0-d Tensors of one floating dtype: their floating Tensors'
    (float32 when neither is one); Python numbers and integer tensors take it."""
    given = {"start": start, "stop": stop}
    tensors = {name: tensor_arg(v, "linspace", name) for name, v in given.items()
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


def linspace(start: TensorLike, stop: TensorLike, num: int,
             backend: str | None = None) -> Tensor:
    """``num`` evenly spaced numbers from ``start`` to ``stop`` inclusive, as ``tf.linspace``;
    differentiable with respect to ``start`` and ``stop``.

    The dtype is that of the floating tensor among ``start`` and ``stop`` (float32 when
    neither is one); Python numbers adopt it.

    >>> import gpuad as ad
    >>> ad.linspace(0.0, 1.0, 3).numpy()
    array([0. , 0.5, 1. ], dtype=float32)
    """
    start_t, stop_t = _linspace_ends(start, stop, backend)
    same_backend("linspace", (start_t, stop_t))
    num = int(num)
    if num < 0:
        raise ValueError(f"linspace: num must be >= 0, got {num}")
    return bind(_LINSPACE, (start_t, stop_t), num)


lin_space = linspace
