"""Reductions and scans beyond the core: reduce_prod, reduce_logsumexp, reduce_variance,
reduce_std, norm, reduce_euclidean_norm, cumsum, cumprod and cumulative_logsumexp, with
TensorFlow's names and semantics.

Composites of differentiable ops where they are exact: logsumexp, variance, std and most
norms need no derivative rules of their own.  Primitives where a composite would be wrong or
slow: ``reduce_prod`` and ``cumprod`` (their gradients must not divide by ``x``, which may be
0), ``cumulative_logsumexp`` (a composite would overflow or lose the small terms), ``cumsum``
(the array module's O(n) scan; a composite would take log2(n) passes).  Their rules are
written with gpuad ops, so they are differentiable again.
"""
import builtins
import numbers
import typing
from collections.abc import Sequence

import numpy

from . import backends as _backend
from . import ops as _ops
from .array_ops import (axes_arg, cast, index_dtype_arg, kept_shape, ones_like, reduce_sum,
                        reshape, tensor_arg, transpose, zeros)
from .core import Primitive, bind, save_inputs, save_inputs_and_output
from .linalg import svd
from .math_ops import reduce_max, reduce_mean
from .tensor import DTypeLike, Tensor, TensorLike

__all__ = ["reduce_prod", "reduce_logsumexp", "reduce_variance", "reduce_std", "norm",
           "reduce_euclidean_norm", "cumsum", "cumprod", "cumulative_logsumexp", "argmax",
           "argmin", "clip_by_norm", "global_norm", "clip_by_global_norm"]


def _input(op: str, x: TensorLike, floating: bool = False, arg: str = "x",
           complex_ok: bool = False) -> Tensor:
    """An op's tensor argument, of a numeric (or, with ``floating``, a floating; with
    ``complex_ok``, also a complex) dtype."""
    x = tensor_arg(x, op, arg)
    if x.dtype.kind not in ("f" if floating else "fiu") + ("c" if complex_ok else ""):
        raise TypeError(f"{op}: {arg} has dtype {x.dtype}; expected a "
                        f"{'floating' if floating else 'numeric'} tensor (use gpuad.cast)")
    return x


def _reduced_shape(shape, axes):
    return tuple(n for i, n in enumerate(shape) if i not in axes)


# ------------------------------------------------------------------------------- shifting

def _raw_shift(v, axis, s, fill):
    """``out[k] = v[k - s]`` along the (negative) ``axis``; ``fill`` where ``k - s`` is outside."""
    out = _backend.module_of(v).full_like(v, fill)
    n, tail = v.shape[axis], (slice(None),) * (-1 - axis)
    if builtins.abs(s) < n:
        if s >= 0:
            out[(..., slice(s, None)) + tail] = v[(..., slice(0, n - s)) + tail]
        else:
            out[(..., slice(0, n + s)) + tail] = v[(..., slice(-s, None)) + tail]
    return out


# Linear apart from the constant fill: the cotangent shifts back, the tangent along.  The axis
# counts from the end, so tangents with leading batch dimensions (Jacobians) work unchanged.
# attrs: (axis, s, fill)
_SHIFT = Primitive("shift", lambda values, attrs: _raw_shift(values[0], *attrs),
                   lambda g, saved, attrs, needs: (_shift(g, attrs[0], -attrs[1], 0),),
                   lambda tangents, saved, out, attrs, batch:
                   _shift(tangents[0], attrs[0], attrs[1], 0))


def _shift(x, axis, s, fill):
    return bind(_SHIFT, (x,), (axis, s, fill))


def _linear_scan(a, b, axis, d):
    """``h[k] = b[k] + a[k] * h[k - d]`` along the (negative) ``axis`` (``h`` is 0 before the
    start; ``d`` is 1 or -1), in log2(n) doubling steps of gpuad ops (Hillis and Steele).

    Only multiplications and additions: exact when ``a`` has zeros, and differentiable to any
    order.  ``a`` may lack the leading batch dimensions of ``b``.
    """
    n, s = b.shape[axis], 1
    while s < n:
        b = b + a * _shift(b, axis, s * d, 0)
        if 2 * s < n:  # a[k] becomes the product over the window b[k] now spans
            a = a * _shift(a, axis, s * d, 0)
        s *= 2
    return b


# ---------------------------------------------------------------------------------- scans

def _raw_scan(name, v, axis, exclusive, reverse):
    """NumPy/CuPy ``cumsum``/``cumprod`` along the (negative) ``axis``, as TensorFlow's."""
    flip = (..., slice(None, None, -1)) + (slice(None),) * (-1 - axis)
    if reverse:
        v = v[flip]
    out = getattr(_backend.module_of(v), name)(v, axis=axis, dtype=v.dtype)
    if exclusive:
        out = _raw_shift(out, axis, 1, 0 if name == "cumsum" else 1)
    return out[flip] if reverse else out


def _scan_args(op, x, axis, floating=False):
    x = _input(op, x, floating)
    if isinstance(axis, Tensor) and axis.ndim == 0:
        axis = axis.numpy().item()
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, numpy.integer)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if x.ndim == 0:
        raise ValueError(f"{op}: cannot scan a 0-d tensor (shape ()); it needs an axis")
    return x, axes_arg(op, axis, x.shape)[0] - x.ndim  # from the end: batch-proof


# attrs: (axis, exclusive, reverse)
_CUMSUM = Primitive(
    "cumsum", lambda values, attrs: _raw_scan("cumsum", values[0], *attrs),
    lambda g, saved, attrs, needs: (_cumsum(g, attrs[0], attrs[1], not attrs[2]),),
    lambda tangents, saved, out, attrs, batch: _cumsum(tangents[0], *attrs))


def _cumsum(x, axis, exclusive, reverse):
    return bind(_CUMSUM, (x,), (axis, exclusive, reverse))


def cumsum(x: TensorLike, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Cumulative sum along ``axis``, as ``tf.math.cumsum``.

    Parameters
    ----------
    x : Tensor
    axis : int
        The axis to scan (negative counts from the end).
    exclusive : bool
        Leave each element out of its own sum: ``[a, b, c] -> [0, a, a + b]``.
    reverse : bool
        Sum from the end: ``[a, b, c] -> [a + b + c, b + c, c]``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.cumsum(ad.constant([1.0, 2.0, 3.0]), exclusive=True, reverse=True).numpy()
    array([5., 3., 0.], dtype=float32)
    """
    x, axis = _scan_args("cumsum", x, axis)
    return _cumsum(x, axis, bool(exclusive), bool(reverse))


def _cumprod_vjp(g, saved, attrs, needs):
    # d out[k] / d x[i] = prod of x[j] over j <= k (in scan order), j != i.  Factored as
    # (product before i) * r[i] with r[i] = g[i] + x[i + d] r[i + d]: a scan against the
    # scan's direction, with no division, so zeros in x are exact (TensorFlow divides).
    (x, out), (axis, d) = saved, attrs
    before = _shift(out, axis, d, 1)  # complex (reduce_prod's gradient): conjugated, as TF
    return (_ops.conj(before) * _linear_scan(_ops.conj(_shift(x, axis, -d, 0)), g, axis, -d),)


def _cumprod_jvp(tangents, saved, out, attrs, batch):
    # t_out[k] = x[k] t_out[k - d] + t[k] * (product before k): the same scan, forwards
    (x, out), (axis, d) = saved, attrs
    return _linear_scan(x, tangents[0] * _shift(out, axis, d, 1), axis, d)


# attrs: (axis, the scan's direction d: 1, or -1 in reverse)
_CUMPROD = Primitive("cumprod", lambda values, attrs: _raw_scan(
    "cumprod", values[0], attrs[0], False, attrs[1] == -1), _cumprod_vjp, _cumprod_jvp,
    save=save_inputs_and_output)


def _cumprod(x, axis, reverse):
    """The inclusive scan, a primitive: ``exclusive`` is a shift of it."""
    return bind(_CUMPROD, (x,), (axis, -1 if reverse else 1))


def cumprod(x: TensorLike, axis: int = 0, exclusive: bool = False,
            reverse: bool = False) -> Tensor:
    """Cumulative product along ``axis``, as ``tf.math.cumprod``; the gradient is exact when
    ``x`` has zeros (it never divides by ``x``).

    Parameters
    ----------
    x : Tensor
    axis : int
        The axis to scan (negative counts from the end).
    exclusive : bool
        Leave each element out of its own product: ``[a, b, c] -> [1, a, a * b]``.
    reverse : bool
        Multiply from the end: ``[a, b, c] -> [a * b * c, b * c, c]``.

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([2.0, 0.0, 3.0])
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = ad.cumprod(x)
    >>> y.numpy(), tape.gradient(y, x).numpy()
    (array([2., 0., 0.], dtype=float32), array([1., 8., 0.], dtype=float32))
    """
    x, axis = _scan_args("cumprod", x, axis)
    out = _cumprod(x, axis, bool(reverse))
    return _shift(out, axis, -1 if reverse else 1, 1) if exclusive else out


def _logaddexp_doubling(v, axis):
    """``logaddexp.accumulate`` along the (negative) ``axis`` in log2(n) doubling steps of
    ``logaddexp`` (Hillis and Steele), for CuPy, which has no ufunc ``accumulate``."""
    xp, s = _backend.module_of(v), 1
    while s < v.shape[axis]:
        v, s = xp.logaddexp(v, _raw_shift(v, axis, s, -numpy.inf)), 2 * s
    return v


def _raw_logsumexp_scan(v, axis, reverse):
    """``out[k] = log(sum(exp(v[j])) over j <= k)`` along the (negative) ``axis`` (j >= k in
    reverse), one ``logaddexp`` at a time: no overflow, no term lost."""
    flip = (..., slice(None, None, -1)) + (slice(None),) * (-1 - axis)
    if reverse:
        v = v[flip]
    if _backend.module_of(v) is numpy:
        out = numpy.logaddexp.accumulate(v, axis=axis, dtype=v.dtype)
    else:
        out = _logaddexp_doubling(v, axis)
    return out[flip] if reverse else out


def _cumulative_logsumexp_vjp(g, saved, attrs, needs):
    # gx[i] = sum over k >= i (in scan order) of g[k] exp(x[i] - y[k])
    #       = exp(x[i] - y[i]) r[i],  r[i] = g[i] + exp(y[i] - y[i + d]) r[i + d]:
    # y only grows along the scan, so every factor is <= 1 (no overflow, no log of g)
    (x, y), (axis, d) = saved, attrs
    decay = _ops.exp(y - _shift(y, axis, -d, numpy.inf))
    return (_ops.exp(x - y) * _linear_scan(decay, g, axis, -d),)


def _cumulative_logsumexp_jvp(tangents, saved, out, attrs, batch):
    # t_out[k] = sum over j <= k of t[j] exp(x[j] - y[k]): the same recurrence, forwards
    (x, y), (axis, d) = saved, attrs
    decay = _ops.exp(_shift(y, axis, d, -numpy.inf) - y)
    return _linear_scan(decay, tangents[0] * _ops.exp(x - y), axis, d)


# attrs: (axis, the scan's direction d: 1, or -1 in reverse)
_CUMULATIVE_LOGSUMEXP = Primitive(
    "cumulative_logsumexp", lambda values, attrs: _raw_logsumexp_scan(
        values[0], attrs[0], attrs[1] == -1), _cumulative_logsumexp_vjp,
    _cumulative_logsumexp_jvp, save=save_inputs_and_output)


def cumulative_logsumexp(x: TensorLike, axis: int = 0, exclusive: bool = False,
                         reverse: bool = False) -> Tensor:
    """``log(cumsum(exp(x)))`` along ``axis`` without overflow or underflow, as
    ``tf.math.cumulative_logsumexp``: each step is a ``logaddexp``.

    Parameters
    ----------
    x : Tensor
        A floating tensor.
    axis : int
        The axis to scan (negative counts from the end).
    exclusive : bool
        Leave each element out of its own sum: the first output is ``-inf`` (log 0).
    reverse : bool
        Scan from the end.

    The gradient, ``sum over k >= i of g[k] exp(x[i] - y[k])``, is computed as a scan whose
    factors are all at most 1: finite wherever ``y`` is.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.math.cumulative_logsumexp(ad.constant([-1000.0, 0.0, 1000.0])).numpy()
    array([-1000.,     0.,  1000.], dtype=float32)
    >>> ad.math.cumulative_logsumexp(ad.constant([0.0, 0.0]), exclusive=True).numpy()
    array([-inf,   0.], dtype=float32)
    """
    x, axis = _scan_args("cumulative_logsumexp", x, axis, floating=True)
    out = bind(_CUMULATIVE_LOGSUMEXP, (x,), (axis, -1 if reverse else 1))
    return _shift(out, axis, -1 if reverse else 1, -numpy.inf) if exclusive else out


# ----------------------------------------------------------------------------- reductions

def _others_product(x, axes):
    """For each element, the product of the others over ``axes``: exclusive products from
    both ends multiplied, so no division by ``x`` (exact with zeros)."""
    if not axes:
        return ones_like(x)
    keep = [i for i in builtins.range(x.ndim) if i not in axes]
    perm = keep + list(axes)
    moved = x if perm == sorted(perm) else transpose(x, perm)
    n = int(numpy.prod([x.shape[a] for a in axes]))
    flat = reshape(moved, moved.shape[:len(keep)] + (n,))
    before, after = _cumprod(flat, -1, False), _cumprod(flat, -1, True)
    others = _shift(before, -1, 1, 1) * _shift(after, -1, -1, 1)
    others = reshape(others, moved.shape)
    return others if moved is x else transpose(others, tuple(numpy.argsort(perm)))


def _reduce_prod_vjp(g, saved, attrs, needs):
    (x,), (axes, keepdims) = saved, attrs
    if not keepdims:
        g = reshape(g, kept_shape(x.shape, axes))
    return (g * _ops.conj(_others_product(x, axes)),)  # complex: conjugated, as TensorFlow


def _reduce_prod_jvp(tangents, saved, out, attrs, batch):
    (x,), (axes, keepdims) = saved, attrs
    return reduce_sum(tangents[0] * _others_product(x, axes),
                      tuple(a - x.ndim for a in axes), keepdims)


_REDUCE_PROD = Primitive("reduce_prod", lambda values, attrs: values[0].prod(
    axis=attrs[0], keepdims=attrs[1], dtype=values[0].dtype), _reduce_prod_vjp,
    _reduce_prod_jvp, save=save_inputs)


def reduce_prod(x: TensorLike, axis: int | Sequence[int] | None = None,
                keepdims: bool = False) -> Tensor:
    """Product over ``axis`` (None: all; an int or a tuple; negative counts from the end).

    The gradient is the product of the other elements, computed without dividing by ``x``:
    exact when ``x`` has zeros (one zero: the others' product; two or more: 0).

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([[1.0, 2.0], [0.0, 4.0]])
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = ad.reduce_prod(x, axis=1)
    >>> y.numpy(), tape.gradient(y, x).numpy()
    (array([2., 0.], dtype=float32), array([[2., 1.],
           [4., 0.]], dtype=float32))
    """
    x = _input("reduce_prod", x, complex_ok=True)
    axes = axes_arg("reduce_prod", axis, x.shape)
    return bind(_REDUCE_PROD, (x,), (axes, bool(keepdims)))


def reduce_logsumexp(x: TensorLike, axis: int | Sequence[int] | None = None,
                     keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` over ``axis``, without overflow (the maximum is taken out first).

    Examples
    --------
    >>> import gpuad as ad
    >>> round(float(ad.reduce_logsumexp(ad.constant([1000.0, 1000.0]))), 3)  # 1000 + log(2)
    1000.693
    """
    x = _input("reduce_logsumexp", x, floating=True)
    axes = axes_arg("reduce_logsumexp", axis, x.shape)
    if any(x.shape[a] == 0 for a in axes):  # an empty sum: log(0) = -inf, as TensorFlow
        shift = zeros(kept_shape(x.shape, axes), x.dtype, x.backend)
    else:  # the result does not depend on the shift: a constant, the gradient is softmax
        shift = bind(_LOGSUMEXP_SHIFT, (x,), axes)
    total = _ops.log(reduce_sum(_ops.exp(x - shift), axes, keepdims))
    return total + (shift if keepdims else reshape(shift, total.shape))


def _logsumexp_shift(values, axes):
    """The maximum, taken out of the exponentials; an infinite one is not (inf - inf would
    be NaN), as TensorFlow's."""
    shift = values[0].max(axis=axes, keepdims=True)
    return _backend.module_of(shift).where(_backend.module_of(shift).isfinite(shift), shift, 0)


_LOGSUMEXP_SHIFT = Primitive("reduce_logsumexp shift", _logsumexp_shift)  # no gradient


def reduce_variance(x: TensorLike, axis: int | Sequence[int] | None = None,
                    keepdims: bool = False) -> Tensor:
    """Variance over ``axis`` (the mean of squared deviations, no Bessel correction), as
    ``tf.math.reduce_variance``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.reduce_variance(ad.constant([[1.0, 2.0], [3.0, 4.0]]), axis=0).numpy()
    array([1., 1.], dtype=float32)
    """
    x = _input("reduce_variance", x, floating=True)
    axes = axes_arg("reduce_variance", axis, x.shape)
    deviations = x - reduce_mean(x, axes, keepdims=True)
    return reduce_mean(_ops.square(deviations), axes, keepdims)


def reduce_std(x: TensorLike, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tensor:
    """Standard deviation over ``axis``: ``sqrt(reduce_variance(x, axis))``.  Where the
    variance is 0 the gradient is NaN, as TensorFlow's.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.reduce_std(ad.constant([1.0, 3.0])).numpy()
    array(1., dtype=float32)
    """
    x = _input("reduce_std", x, floating=True)
    return _ops.sqrt(reduce_variance(x, axes_arg("reduce_std", axis, x.shape), keepdims))


# ---------------------------------------------------------------------------------- norms

def _spectral_norm(a):
    """The largest singular value of each matrix of ``a`` (..., m, n), through
    :func:`gpuad.linalg.svd`: TensorFlow's SVD rules, differentiable to any order."""
    if a.size == 0:
        return zeros(a.shape[:-2], a.dtype, a.backend)
    return svd(a, compute_uv=False)[..., 0]


def _norm_axes(axis, shape):
    """(axes, is_matrix); a pair keeps its order (ord 1 and inf tell rows from columns)."""
    if axis is None:
        return tuple(builtins.range(len(shape))), False
    if isinstance(axis, Tensor):
        axis = axis.numpy().tolist()
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    if len(items) not in (1, 2):
        raise ValueError(f"norm: axis must be None, an int or a pair of ints, got {axis!r} "
                         f"(tensor shape {shape})")
    axes = tuple(axes_arg("norm", a, shape)[0] for a in items)
    if len(axes) == 2 and axes[0] == axes[1]:
        raise ValueError(f"norm: the two axes of a matrix norm must differ, got {axis!r} "
                         f"(tensor shape {shape})")
    return axes, len(axes) == 2


def norm(tensor: TensorLike, ord: str | float = "euclidean",  # noqa: A002 (TF's name)
         axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """Vector and matrix norms, as ``tf.norm``.

    Parameters
    ----------
    tensor : Tensor
        A floating tensor.
    ord : {'euclidean', 'fro', 1, 2, np.inf} or a positive number
        Vector norms (``axis`` None or an int): 'euclidean' and 2 the 2-norm, 1 the sum of
        absolute values, np.inf the largest one, ``p > 0`` the p-norm; 'fro' only with
        ``axis`` None.  Matrix norms (``axis`` a pair of axes): 'euclidean'/'fro' the
        Frobenius norm, 1 the largest column sum of absolute values (summed over
        ``axis[0]``), np.inf the largest row sum (over ``axis[1]``), 2 the largest singular
        value (its derivatives are exact to second order).
    axis : None, int or pair of ints
        None takes the whole tensor as one vector.
    keepdims : bool
        Keep the reduced axes with size 1.

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([[3.0, -4.0], [0.0, 0.0]])
    >>> float(ad.norm(x)), float(ad.norm(x, ord=1)), float(ad.norm(x, ord=1, axis=(0, 1)))
    (5.0, 7.0, 4.0)
    >>> ad.norm(x, ord=2, axis=(-2, -1)).numpy()
    array(5., dtype=float32)
    """
    x = _input("norm", tensor, floating=True, arg="tensor")
    axes, matrix = _norm_axes(axis, x.shape)
    if matrix and ord not in ("euclidean", "fro", 1, 2, numpy.inf):
        raise ValueError(f"norm: ord must be 'euclidean', 'fro', 1, 2 or np.inf for a matrix "
                         f"norm (axis={axis!r}), got {ord!r}")
    if isinstance(ord, str):
        if ord not in ("euclidean", "fro"):
            raise ValueError(f"norm: ord must be 'euclidean', 'fro', 1, 2, np.inf or a "
                             f"positive number, got {ord!r}")
        if ord == "fro" and axis is not None and not matrix:
            raise ValueError(f"norm: ord='fro' is a matrix norm; it needs axis None or a pair "
                             f"of axes, got axis={axis!r}")
    elif isinstance(ord, bool) or not isinstance(ord, numbers.Real) or not ord > 0:
        raise ValueError(f"norm: ord must be 'euclidean', 'fro', 1, 2, np.inf or a positive "
                         f"number, got {ord!r}")
    out_shape = kept_shape(x.shape, axes) if keepdims else _reduced_shape(x.shape, axes)
    if ord in ("euclidean", "fro") or (ord == 2 and not matrix):
        return _ops.sqrt(reduce_sum(_ops.square(x), axes, keepdims))
    if matrix and ord == 2:  # the matrices to the end; the spectral norm ignores their order
        keep = [i for i in builtins.range(x.ndim) if i not in axes]
        return reshape(_spectral_norm(transpose(x, keep + sorted(axes))), out_shape)
    size = _ops.abs(x)
    if matrix:  # ord 1: the largest column sum; inf: the largest row sum
        inner, outer = axes if ord == 1 else axes[::-1]
        return reshape(reduce_max(reduce_sum(size, inner, keepdims=True), outer,
                                  keepdims=True), out_shape)
    if ord == 1:
        return reduce_sum(size, axes, keepdims)
    if ord == numpy.inf:
        return reduce_max(size, axes, keepdims)
    return _ops.pow(reduce_sum(_ops.pow(size, ord), axes, keepdims), 1.0 / typing.cast(float, ord))


def reduce_euclidean_norm(input_tensor: TensorLike, axis: int | Sequence[int] | None = None,
                          keepdims: bool = False) -> Tensor:
    """The Euclidean norm ``sqrt(sum(x * x))`` over ``axis``, as
    ``tf.math.reduce_euclidean_norm``; an integer tensor gives an integer norm (truncated).

    The gradient is ``x / norm``; where the norm is 0 it is NaN (0 / 0), as TensorFlow's
    (``tf.math.reduce_euclidean_norm`` gives NaN there too).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.math.reduce_euclidean_norm(ad.constant([[3.0, 4.0], [0.0, 0.0]]), axis=1).numpy()
    array([5., 0.], dtype=float32)
    >>> ad.math.reduce_euclidean_norm(ad.constant([[1, 2, 3], [1, 1, 1]])).numpy()
    array(4, dtype=int32)
    """
    x = _input("reduce_euclidean_norm", input_tensor, arg="input_tensor")
    axes = axes_arg("reduce_euclidean_norm", axis, x.shape)
    if x.dtype.kind in "iu":  # no gradient: in float64, truncated back
        wide = cast(x, numpy.float64)
        return cast(_ops.floor(_ops.sqrt(reduce_sum(wide * wide, axes, keepdims))), x.dtype)
    return _ops.sqrt(reduce_sum(x * x, axes, keepdims))


# ---------------------------------------------------------------------------- argmax, argmin

def _arg_reduction(name: str, numpy_name: str) -> typing.Any:  # typed by _ArgReduction
    primitive = Primitive(name, lambda values, attrs: getattr(
        _backend.module_of(values[0]), numpy_name)(values[0], axis=attrs[0]).astype(attrs[1]))

    def op(input, axis=None, output_type=numpy.int64):  # noqa: A002 (TF's names)
        x = tensor_arg(input, name, "input")
        if x.ndim == 0:
            raise ValueError(f"{name}: input must have rank >= 1, got a scalar")
        axes = axes_arg(name, 0 if axis is None else axis, x.shape)  # TF's default: 0
        if len(axes) != 1:
            raise ValueError(f"{name}: axis must be one int, got {axis!r}")
        axis = axes[0]
        if x.shape[axis] == 0:
            raise ValueError(f"{name}: axis {axis} of input shape {x.shape} is empty")
        return bind(primitive, (x,), (axis, index_dtype_arg(name, "output_type", output_type)))
    op.__name__ = op.__qualname__ = name
    op.primitive = primitive  # type: ignore[attr-defined]  # for gpuad.vmap's batching rule
    op.__doc__ = f"""The index of the {name[3:]}imum of ``input`` along ``axis`` (default 0, as
    ``tf.math.{name}``), int64 (or ``output_type`` int32); the first one on ties; no gradient.

    >>> import gpuad as ad
    >>> ad.{name}(ad.constant([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]]), axis=1).numpy().tolist()
    {[1, 0] if name == "argmax" else [0, 1]}
    """
    return op


class _ArgReduction(typing.Protocol):  # argmax and argmin, for mypy
    primitive: Primitive

    def __call__(self, input: TensorLike, axis: int | None = None,  # noqa: A002
                 output_type: DTypeLike = numpy.int64) -> Tensor: ...


argmax: _ArgReduction = _arg_reduction("argmax", "argmax")
argmin: _ArgReduction = _arg_reduction("argmin", "argmin")


# ------------------------------------------------------------------------- clipping by norm

def clip_by_norm(t: TensorLike, clip_norm: TensorLike,
                 axes: int | Sequence[int] | None = None) -> Tensor:
    """``t`` scaled down so that its L2 norm over ``axes`` is at most ``clip_norm``, as
    ``tf.clip_by_norm``: ``t * clip_norm / maximum(norm, clip_norm)``; an all-zero ``t`` has
    gradient 1, not NaN.

    >>> import gpuad as ad
    >>> ad.clip_by_norm(ad.constant([3.0, 4.0]), 1.0).numpy()
    array([0.6, 0.8], dtype=float32)
    """
    t = tensor_arg(t, "clip_by_norm", "t")
    squares = reduce_sum(t * t, axes_arg("clip_by_norm", axes, t.shape), keepdims=True)
    positive = _ops.greater(squares, 0.0)
    # sqrt only where positive: its derivative at 0 is inf, and inf * 0 is NaN
    l2 = _ops.where(positive, _ops.sqrt(_ops.where(positive, squares, 1.0)), squares)
    return t * clip_norm / _ops.maximum(l2, clip_norm)


def global_norm(t_list: Sequence[Tensor | None]) -> Tensor:
    """The L2 norm of all the Tensors of ``t_list`` together (None entries skipped), as
    ``tf.linalg.global_norm``.

    >>> import gpuad as ad
    >>> float(ad.global_norm([ad.constant([3.0]), None, ad.constant([[4.0]])]))
    5.0
    """
    tensors = [tensor_arg(t, "global_norm", "t_list") for t in t_list if t is not None]
    if not tensors:
        raise ValueError("global_norm: t_list holds no Tensor")
    total = reduce_sum(tensors[0] * tensors[0])
    for t in tensors[1:]:
        total = total + reduce_sum(t * t)
    return _ops.sqrt(total)


def clip_by_global_norm(t_list: Sequence[Tensor | None], clip_norm: Tensor | float,
                        use_norm: Tensor | None = None) -> tuple[list[Tensor | None], Tensor]:
    """Every Tensor of ``t_list`` scaled by ``clip_norm / maximum(global_norm, clip_norm)``,
    as ``tf.clip_by_global_norm``; returns ``(clipped list, global_norm)`` (None entries stay
    None). ``use_norm`` replaces the computed global norm.

    >>> import gpuad as ad
    >>> clipped, norm = ad.clip_by_global_norm([ad.constant([3.0]), ad.constant([4.0])], 1.0)
    >>> [float(t) for t in clipped], float(norm)
    ([0.6000000238418579, 0.800000011920929], 5.0)
    """
    t_list = list(t_list)
    norm_value = global_norm(t_list) if use_norm is None else use_norm
    scale = clip_norm / _ops.maximum(norm_value, clip_norm)
    return [None if t is None else t * scale for t in t_list], norm_value
