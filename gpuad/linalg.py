"""Linear algebra: ``tensordot`` and ``einsum`` (also at the top level), and ``gpuad.linalg.inv``,
``det``, ``solve``, ``slogdet``, ``logdet``, ``cholesky``, ``trace``, ``matrix_transpose``, the
decompositions ``qr``, ``svd``, ``eigh`` and ``eigvalsh``, ``triangular_solve``,
``cholesky_solve``, ``lstsq``, ``pinv`` and ``expm`` (batched over leading dimensions).

The derivative rules are written with gpuad ops, so they are differentiable again: the VJP
of an einsum is an einsum, those of inv, det and solve use inv, solve and matmul, those of the
decompositions read their factors, and that of expm is an expm of a block matrix.
"""
import builtins
import math
import numbers
import string
import typing
from collections.abc import Sequence

import numpy

from . import backends as _backend
from .array_ops import (broadcast_to, convert_like, eye, ones, reduce_sum, reshape, same_backend,
                        swap_last, tensor_arg, transpose, zeros_like)
from .core import Primitive, bind, names_memory_errors, save_inputs
from .math_ops import matmul, reduce_max
from .ops import conj, where
from .shape_ops import concat, expand_dims
from .tensor import Tensor, TensorLike

__all__ = ["tensordot", "einsum"]  # inv, det, solve, cholesky, ... stay in gpuad.linalg, as tf.linalg


def _same_dtype(op, tensors, names):
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: " + " and ".join(f"{n} has dtype {t.dtype}"
                                                 for n, t in zip(names, tensors)) +
                        "; gpuad does not promote dtypes implicitly (use gpuad.cast)")


# ------------------------------------------------------------------------------- tensordot

def _tensordot_axes(axes, a, b):
    """``axes`` (an int, or a pair of ints or of int lists) as two lists of axes."""
    if isinstance(axes, Tensor):
        axes = axes.numpy().tolist()
    if isinstance(axes, (numbers.Integral, numpy.integer)) and not isinstance(axes, bool):
        most = builtins.min(a.ndim, b.ndim)
        if not 0 <= axes <= most:
            raise ValueError(f"tensordot: axes={axes} must be in [0, {most}] for shapes "
                             f"{a.shape} and {b.shape}")
        return list(builtins.range(a.ndim - axes, a.ndim)), list(builtins.range(axes))
    if not isinstance(axes, (list, tuple)) or len(axes) != 2:
        raise ValueError(f"tensordot: axes must be an int or a pair of axis lists, got {axes!r}")
    pair = []
    for name, x, ax in (("a", a, axes[0]), ("b", b, axes[1])):
        ax = list(ax) if isinstance(ax, (list, tuple)) else [ax]
        for i in ax:
            if not isinstance(i, (numbers.Integral, numpy.integer)) or isinstance(i, bool) or \
                    not -x.ndim <= i < x.ndim:
                raise ValueError(f"tensordot: axis {i!r} is out of range for {name} of shape "
                                 f"{x.shape}")
        ax = [int(i) % x.ndim for i in ax]
        if len(set(ax)) != len(ax):
            raise ValueError(f"tensordot: repeated axis in {axes[0 if name == 'a' else 1]!r} "
                             f"for {name}")
        pair.append(ax)
    if len(pair[0]) != len(pair[1]):
        raise ValueError(f"tensordot: {len(pair[0])} axes of a but {len(pair[1])} of b in "
                         f"axes={axes!r}")
    return pair


@names_memory_errors("tensordot")
def tensordot(a: TensorLike, b: TensorLike, axes: int | Sequence[typing.Any]) -> Tensor:
    """Sum the products of ``a`` and ``b`` over the given axes, as ``tf.tensordot``.

    Parameters
    ----------
    a, b : Tensor
        Operands of one dtype.
    axes : int or pair
        ``N``: the last N axes of ``a`` with the first N of ``b``; or ``[axes_a, axes_b]``,
        two equally long lists of axes (or two ints) contracted pairwise.

    Returns
    -------
    Tensor
        The free axes of ``a`` followed by the free axes of ``b``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.tensordot(ad.ones((2, 3, 4)), ad.ones((4, 3, 5)), [[1, 2], [1, 0]]).numpy()[0]
    array([12., 12., 12., 12., 12.], dtype=float32)
    """
    a, b = tensor_arg(a, "tensordot", "a"), tensor_arg(b, "tensordot", "b")
    same_backend("tensordot", (a, b))
    _same_dtype("tensordot", (a, b), "ab")
    axes_a, axes_b = _tensordot_axes(axes, a, b)
    for i, j in zip(axes_a, axes_b):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"tensordot: axis {i} of a (shape {a.shape}) has size {a.shape[i]} "
                             f"but axis {j} of b (shape {b.shape}) has size {b.shape[j]}")
    free_a = [i for i in builtins.range(a.ndim) if i not in axes_a]
    free_b = [i for i in builtins.range(b.ndim) if i not in axes_b]
    # one matmul of (free_a, contracted) by (contracted, free_b): BLAS does the work
    k = math.prod(a.shape[i] for i in axes_a)
    a2 = _reshape(_transpose(a, free_a + axes_a), (math.prod(a.shape[i] for i in free_a), k))
    b2 = _reshape(_transpose(b, axes_b + free_b), (k, math.prod(b.shape[i] for i in free_b)))
    return _reshape(matmul(a2, b2), tuple(a.shape[i] for i in free_a) +
                    tuple(b.shape[i] for i in free_b))


def _transpose(x, perm):  # skips the no-op (then nothing is recorded)
    return x if perm == list(builtins.range(x.ndim)) else transpose(x, perm)


def _reshape(x, shape):
    return x if x.shape == shape else reshape(x, shape)


# ---------------------------------------------------------------------------------- einsum

def _einsum_parse(subscripts, shapes):
    """Explicit subscripts: (one letter string per operand, output letters), with ``...``
    replaced by letters of their own (right-aligned, as broadcasting)."""
    spec = subscripts.replace(" ", "")

    def error(why):
        return ValueError(f"einsum: {why} in subscripts {subscripts!r} for operand shapes "
                          f"{', '.join(str(s) for s in shapes)}")

    lhs, arrow, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise error(f"{len(terms)} operand terms but {len(shapes)} operands")
    for term in terms + ([rhs] if arrow else []):
        rest = term.replace("...", "", 1)
        if not builtins.all(c in string.ascii_letters for c in rest):
            raise error(f"invalid term {term!r} (letters and one '...' only)")
    unused = iter(sorted(set(string.ascii_letters) - set(spec)))
    ellipsis_ndim = 0
    for term, shape in zip(terms, shapes):
        letters = len(term.replace("...", ""))
        if letters > len(shape) or ("..." not in term and letters != len(shape)):
            raise error(f"term {term!r} does not fit an operand of shape {shape}")
        if "..." in term:
            ellipsis_ndim = builtins.max(ellipsis_ndim, len(shape) - letters)
    dots = "".join(next(unused) for _ in builtins.range(ellipsis_ndim))
    ins = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            n = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", dots[len(dots) - n:])
        ins.append(term)
    joined = "".join(ins)
    if not arrow:  # implicit output: the broadcast axes, then the letters seen once, sorted
        rhs = dots + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and
                                    c not in dots))
    elif "..." in rhs:
        rhs = rhs.replace("...", dots)
    elif dots:
        raise error("broadcast axes ('...') of the operands are missing from the output")
    for c in rhs:
        if rhs.count(c) > 1 or c not in joined:
            raise error(f"output letter {c!r} is repeated or in no operand")
    return ins, rhs


def _einsum_sizes(ins, shapes, subscripts):
    """The size of each letter; a size-1 axis broadcasts against a larger one, as NumPy."""
    sizes = {}
    for term, shape in zip(ins, shapes):
        own = {}
        for c, n in zip(term, shape):
            if own.setdefault(c, n) != n:
                raise ValueError(f"einsum: the repeated index {c!r} spans axes of sizes "
                                 f"{own[c]} and {n} in an operand of shape {shape} "
                                 f"(subscripts {subscripts!r})")
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise ValueError(f"einsum: index {c!r} has sizes {sizes[c]} and {n} in operand "
                                 f"shapes {', '.join(str(s) for s in shapes)} "
                                 f"(subscripts {subscripts!r})")
            if sizes.get(c, 1) == 1:  # unseen or 1 so far: n (0 too, which 1 broadcasts to)
                sizes[c] = n
    return sizes


@names_memory_errors("einsum")
def einsum(subscripts: str, *operands: TensorLike) -> Tensor:
    """Einstein summation, as ``numpy.einsum``.

    Implicit (``'ij,jk'``) and explicit (``'ij,jk->ik'``) output, repeated indices within an
    operand (``'ii->i'`` is the diagonal, ``'ii'`` the trace), indices summed away, and
    broadcasting with ``...`` (size-1 axes broadcast, as NumPy).

    Parameters
    ----------
    subscripts : str
        The subscripts, letters ``a-zA-Z``.
    *operands : Tensor
        Operands of one dtype and backend.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.einsum("ij,jk->ik", ad.ones((2, 3)), ad.ones((3, 4))).shape
    (2, 4)
    >>> ad.einsum("ii", ad.constant([[1.0, 2.0], [3.0, 4.0]])).numpy()
    array(5., dtype=float32)
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a str, got {type(subscripts).__name__}")
    if not operands:
        raise ValueError("einsum: expected at least one operand")
    tensors = [tensor_arg(x, "einsum", f"operands[{i}]") for i, x in enumerate(operands)]
    same_backend("einsum", tensors)
    _same_dtype("einsum", tensors, [f"operands[{i}]" for i in builtins.range(len(tensors))])
    shapes = [t.shape for t in tensors]
    ins, out = _einsum_parse(subscripts, shapes)
    sizes = _einsum_sizes(ins, shapes, subscripts)
    # broadcast size-1 axes up front: the primitive then sees one size per letter, and the
    # gradient of the broadcast is broadcast_to's (a sum)
    tensors = [broadcast_to(t, tuple(sizes[c] for c in term)) for t, term in zip(tensors, ins)]
    return _einsum(ins, out, tensors)


def _einsum_impl(values, attrs):
    ins, out = attrs
    # the contraction-path search costs ~20 us but turns pairwise contractions into BLAS calls
    optimize = len(values) > 2 or builtins.sum(v.size for v in values) > 4096
    return _backend.module_of(values[0]).einsum(",".join(ins) + "->" + out, *values,
                                                optimize=optimize)


def _einsum(ins, out, tensors):
    """The einsum primitive on explicit subscripts whose letters have one size each."""
    return bind(_EINSUM, tuple(tensors), (tuple(ins), out))


def _einsum_operand_grad(k, g, operands, ins, out):
    """d<g, einsum(operands)>/d operands[k]: an einsum of g with the other operands."""
    dtype = g.dtype
    sizes = {c: n for term, x in zip(ins, operands) for c, n in zip(term, x.shape)}
    terms = [out] + [t for j, t in enumerate(ins) if j != k]
    tensors = [g] + [conj(x) for j, x in enumerate(operands) if j != k]  # complex: as TF
    bound = set("".join(terms))
    fresh = iter(sorted(set(string.ascii_letters) - set("".join(ins) + out)))
    target = ""
    for c in ins[k]:
        if c in target:  # a repeated index: the gradient lives on the diagonal, delta(c, f)
            f = next(fresh)
            terms.append(c + f)
            tensors.append(eye(sizes[c], dtype=dtype, backend=g.backend))
            target += f
            continue
        if c not in bound and ins[k].count(c) == 1:  # summed in this operand only: broadcast
            terms.append(c)
            tensors.append(ones((sizes[c],), dtype=dtype, backend=g.backend))
        target += c
    return _einsum(terms, target, tensors)


def _einsum_vjp(g, saved, attrs, needs):
    ins, out = attrs
    return [_einsum_operand_grad(k, g, saved, ins, out) if need else None
            for k, need in enumerate(needs)]


def _einsum_jvp(tangents, saved, out, attrs, batch):
    ins, subscript_out = attrs
    # a batch of tangents carries a leading axis of its own letter through to the output
    z = min(set(string.ascii_letters) - set("".join(ins) + subscript_out)) if batch else ""
    terms = [_einsum(ins[:k] + (z + ins[k],) + ins[k + 1:], z + subscript_out,
                     saved[:k] + (t,) + saved[k + 1:])
             for k, t in enumerate(tangents) if t is not None]
    total = terms[0] if terms else None
    for term in terms[1:]:
        total = total + term
    return total


# attrs: (the operands' subscripts, the output's)
_EINSUM = Primitive("einsum", _einsum_impl, _einsum_vjp, _einsum_jvp, save=save_inputs)


# ------------------------------------------------------------------------ inv, det, solve

def _square(op: str, a: TensorLike, arg: str = "a") -> Tensor:
    a = tensor_arg(a, op, arg)
    if a.dtype.kind != "f":
        raise TypeError(f"{op}: {arg} must be floating, got {a.dtype} (use gpuad.cast)")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: {arg} must be square matrices of shape [..., n, n], got shape "
                         f"{a.shape}")
    return a


def _finite_or_singular(op, value, shape):
    # NumPy's LAPACK raises for a singular matrix; CuPy does not check (it would synchronize)
    # and returns inf/nan there, so check its result to behave as NumPy does
    xp = _backend.module_of(value)
    if xp is not numpy and not bool(xp.isfinite(value).all()):
        raise numpy.linalg.LinAlgError(f"{op}: singular matrix (shape {shape})")
    return value


def _linalg_call(op, fn, *args):
    try:
        return fn(*args)
    except numpy.linalg.LinAlgError as error:
        raise numpy.linalg.LinAlgError(f"{op}: {error} (shape {args[0].shape})") from None
    except TypeError as error:  # a dtype LAPACK lacks (float16)
        raise TypeError(f"{op}: {error} (dtype {args[0].dtype})") from None


def _inv_vjp(g, saved, attrs, needs):
    inv_t = swap_last(saved[0])  # d inv(A) = -inv dA inv, so g_A = -inv^T g inv^T
    return (-matmul(matmul(inv_t, g), inv_t),)


# the JVP rules below take a batch of tangents as they are: matmul, solve and the
# elementwise ops broadcast the extra leading axis
def _inv_impl(values, shape):
    xp = _backend.module_of(values[0])
    return _finite_or_singular("inv", _linalg_call("inv", xp.linalg.inv, values[0]), shape)


_INV = Primitive("inv", _inv_impl, _inv_vjp, lambda tangents, saved, out, attrs, batch:
                 -matmul(matmul(saved[0], tangents[0]), saved[0]),
                 save=lambda inputs, out, attrs: (out,))


def inv(a: TensorLike) -> Tensor:
    """The inverse of each square matrix in ``a`` (shape ``[..., n, n]``).

    A singular matrix raises ``numpy.linalg.LinAlgError``, as NumPy (on both backends).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.inv(ad.constant([[2.0, 0.0], [0.0, 4.0]])).numpy()
    array([[0.5 , 0.  ],
           [0.  , 0.25]], dtype=float32)
    """
    a = _square("inv", a)
    return bind(_INV, (a,), a.shape)


def _det_vjp(g, saved, attrs, needs):
    a, d = saved  # d det(A) = det(A) tr(inv(A) dA), so g_A = g det(A) inv(A)^T
    return (reshape(g * d, g.shape + (1, 1)) * swap_last(inv(a)),)


_DET = Primitive("det", lambda values, attrs: _backend.module_of(values[0]).linalg.det(
    values[0]), _det_vjp, lambda tangents, saved, out, attrs, batch:
    saved[1] * reduce_sum(swap_last(inv(saved[0])) * tangents[0], (-2, -1)),
    save=lambda inputs, out, attrs: (inputs[0], out))


def det(a: TensorLike) -> Tensor:
    """The determinant of each square matrix in ``a`` (shape ``[..., n, n]``).

    A singular matrix gives 0, as NumPy; its gradient (``det(a) inv(a)^T``, as TensorFlow's)
    then raises ``numpy.linalg.LinAlgError``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.det(ad.constant([[2.0, 1.0], [1.0, 3.0]])).numpy()
    array(5., dtype=float32)
    """
    return bind(_DET, (_square("det", a),))


def _solve_vjp(g, saved, attrs, needs):
    a, x = saved  # A X = B: g_B = A^-T g, g_A = -g_B X^T
    g_b = _solve(swap_last(a), g)
    return (-matmul(g_b, swap_last(x)) if needs[0] else None), (g_b if needs[1] else None)


def _solve_jvp(tangents, saved, out, attrs, batch):
    (ta, tb), (a, x) = tangents, saved  # A dX = dB - dA X
    rhs = tb if ta is None else -matmul(ta, x) if tb is None else tb - matmul(ta, x)
    return solve(a, rhs)  # solve, not _solve: it broadcasts a batch of tangents against a


def _solve_impl(values, shape):
    xp = _backend.module_of(values[0])
    return _finite_or_singular("solve", _linalg_call("solve", xp.linalg.solve, *values), shape)


_SOLVE = Primitive("solve", _solve_impl, _solve_vjp, _solve_jvp,
                   save=lambda inputs, out, attrs: (inputs[0], out))


def _solve(a, b):
    """The solve primitive: ``a`` [..., n, n] and ``b`` [..., n, k] of one batch shape."""
    return bind(_SOLVE, (a, b), a.shape)


def _batch_broadcast(op, a, b, names):
    """``a`` [..., n, n] and ``b`` [..., n, k] with their batch dimensions broadcast (the
    gradient sums them back): the LAPACK calls take one batch shape."""
    try:
        batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: batch dimensions of {names[0]} {a.shape} and {names[1]} "
                         f"{b.shape} do not broadcast") from None
    return broadcast_to(a, batch + a.shape[-2:]), broadcast_to(b, batch + b.shape[-2:])


def solve(matrix: TensorLike, rhs: TensorLike) -> Tensor:
    """Solve ``matrix @ x = rhs`` for ``x``, as ``tf.linalg.solve``.

    Parameters
    ----------
    matrix : Tensor
        Square matrices, shape ``[..., n, n]``.
    rhs : Tensor
        Right-hand sides, shape ``[..., n, k]`` (batch dimensions broadcast against
        ``matrix``'s), or one vector of shape ``[n]``.

    A singular matrix raises ``numpy.linalg.LinAlgError``, as NumPy (on both backends).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.solve(ad.constant([[2.0, 0.0], [0.0, 4.0]]), ad.constant([2.0, 2.0])).numpy()
    array([1. , 0.5], dtype=float32)
    """
    a = _square("solve", matrix, "matrix")
    b = tensor_arg(rhs, "solve", "rhs")
    same_backend("solve", (a, b))
    _same_dtype("solve", (a, b), ("matrix", "rhs"))
    n = a.shape[-1]
    if b.ndim == 1 and b.shape[0] == n:
        return reshape(solve(a, reshape(b, (n, 1))), a.shape[:-2] + (n,))
    if b.ndim < 2 or b.shape[-2] != n:
        raise ValueError(f"solve: rhs must have shape [..., {n}, k] or [{n}] for matrix of "
                         f"shape {a.shape}, got shape {b.shape}")
    # CuPy's solve does not broadcast batch dimensions: broadcast here (gradient: a sum)
    return _solve(*_batch_broadcast("solve", a, b, ("matrix", "rhs")))


# ------------------------------------------- slogdet, logdet, cholesky, trace, matrix_transpose

def _log_abs_det_vjp(g, saved, attrs, needs):
    # d log|det A| = tr(inv(A) dA), so g_A = g inv(A)^T (TensorFlow's rule, as for det)
    return (reshape(g, g.shape + (1, 1)) * swap_last(inv(saved[0])),)


def _log_abs_det_impl(values, attrs):
    xp = _backend.module_of(values[0])
    return _linalg_call("slogdet", xp.linalg.slogdet, values[0])[1]


_SLOGDET_SIGN = Primitive("slogdet_sign", lambda values, attrs: _backend.module_of(
    values[0]).linalg.slogdet(values[0])[0])  # no gradient: piecewise constant
_LOG_ABS_DET = Primitive("log_abs_det", _log_abs_det_impl, _log_abs_det_vjp,
                         lambda tangents, saved, out, attrs, batch: reduce_sum(
                             swap_last(inv(saved[0])) * tangents[0], (-2, -1)),
                         save=save_inputs)


def slogdet(input: TensorLike) -> tuple[Tensor, Tensor]:
    """The sign and the log of the absolute determinant of each square matrix, as
    ``tf.linalg.slogdet``: ``(sign, log_abs_determinant)``, stable where ``det`` would
    overflow or underflow.

    ``sign`` has no gradient; ``log_abs_determinant``'s is ``inv(a)^T`` (TensorFlow's). A
    singular matrix gives sign 0 and ``-inf``, as NumPy; its gradient then raises
    ``numpy.linalg.LinAlgError``.

    Examples
    --------
    >>> import gpuad as ad
    >>> sign, logabsdet = ad.linalg.slogdet(ad.constant([[-2.0, 0.0], [0.0, 3.0]]))
    >>> sign.numpy(), round(float(logabsdet), 6)
    (array(-1., dtype=float32), 1.791759)
    """
    a = _square("slogdet", input, "input")
    return bind(_SLOGDET_SIGN, (a,)), bind(_LOG_ABS_DET, (a,))


def logdet(matrix: TensorLike) -> Tensor:
    """The log of the determinant of each Hermitian positive definite matrix, as
    ``tf.linalg.logdet``: finite for a 200×200 covariance whose ``det`` underflows to 0.

    Its gradient is ``inv(matrix)^T``. A matrix that is not positive definite gives the log of
    its absolute determinant (TensorFlow gives NaN there; check with ``slogdet``'s sign).

    Examples
    --------
    >>> import gpuad as ad
    >>> round(float(ad.linalg.logdet(0.01 * ad.eye(200))), 2)
    -921.03
    """
    return bind(_LOG_ABS_DET, (_square("logdet", matrix, "matrix"),))


def _lower_mask(n, like, diagonal):
    """A constant [n, n] mask like Tensor ``like``: 1 below the diagonal, ``diagonal`` on it."""
    return convert_like(numpy.tril(numpy.ones((n, n)), -1) + diagonal * numpy.eye(n), like,
                        "cholesky")


def _cholesky_vjp(g, saved, attrs, needs):
    # Murray (2016), as TensorFlow: g_A = sym(L^-T Phi(L^T g) L^-1), Phi = lower part, halved
    # diagonal; written with gpuad ops, so it is differentiable again
    l = saved[0]
    l_inv = inv(l)
    middle = matmul(swap_last(l), g) * _lower_mask(l.shape[-1], l, 0.5)
    grad = matmul(matmul(swap_last(l_inv), middle), l_inv)
    return (0.5 * (grad + swap_last(grad)),)


def _cholesky_jvp(tangents, saved, out, attrs, batch):
    # dL = L Phi(L^-1 dA L^-T)
    l = saved[0]
    l_inv = inv(l)
    inner = matmul(matmul(l_inv, tangents[0]), swap_last(l_inv))
    return matmul(l, inner * _lower_mask(l.shape[-1], l, 0.5))


def _cholesky_impl(values, shape):
    xp = _backend.module_of(values[0])
    return _finite_or_singular("cholesky", _linalg_call("cholesky", xp.linalg.cholesky,
                                                        values[0]), shape)


_CHOLESKY = Primitive("cholesky", _cholesky_impl, _cholesky_vjp, _cholesky_jvp,
                      save=lambda inputs, out, attrs: (out,))


def cholesky(input: TensorLike) -> Tensor:
    """The lower Cholesky factor ``L`` (``L @ L^T = input``) of each symmetric positive
    definite matrix, as ``tf.linalg.cholesky``.

    Only the lower triangle of ``input`` is read; the gradient is TensorFlow's, symmetric
    (for a perturbation that keeps ``input`` symmetric). A matrix that is not positive definite
    raises ``numpy.linalg.LinAlgError`` (on both backends).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.cholesky(ad.constant([[4.0, 2.0], [2.0, 5.0]])).numpy()
    array([[2., 0.],
           [1., 2.]], dtype=float32)
    """
    a = _square("cholesky", input, "input")
    return bind(_CHOLESKY, (a,), a.shape)


def _leading_square(op: str, x: TensorLike, arg: str) -> Tensor:
    """The leading square part ``x[..., :k, :k]`` (k the smaller of the last two dimensions),
    whose diagonal is ``x``'s."""
    x = tensor_arg(x, op, arg)
    if x.ndim < 2:
        raise ValueError(f"{op}: {arg} must have shape [..., m, n], got shape {x.shape}")
    k = builtins.min(x.shape[-2:])
    return x[..., :k, :k]


def trace(x: TensorLike) -> Tensor:
    """The sum of the diagonal of each matrix in ``x`` (shape ``[..., m, n]``), as
    ``tf.linalg.trace``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.trace(ad.constant([[1.0, 2.0], [3.0, 4.0]])).numpy()
    array(5., dtype=float32)
    """
    return einsum("...ii->...", _leading_square("trace", x, "x"))


def matrix_transpose(a: TensorLike) -> Tensor:
    """Each matrix in ``a`` transposed (its last two axes swapped), as
    ``tf.linalg.matrix_transpose``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.matrix_transpose(ad.constant([[1.0, 2.0]])).numpy()
    array([[1.],
           [2.]], dtype=float32)
    """
    a = tensor_arg(a, "matrix_transpose", "a")
    if a.ndim < 2:
        raise ValueError(f"matrix_transpose: a must have rank >= 2, got shape {a.shape}")
    return swap_last(a)


def diag_part(input: TensorLike, k: int = 0) -> Tensor:  # noqa: A002
    """The main diagonal of each matrix in ``input`` (shape ``[..., m, n]``), as
    ``tf.linalg.diag_part`` (``k=0`` only).

    >>> import gpuad as ad
    >>> ad.linalg.diag_part(ad.constant([[1.0, 2.0], [3.0, 4.0]])).numpy()
    array([1., 4.], dtype=float32)
    """
    if k != 0:
        raise NotImplementedError(f"diag_part: only k=0 is supported, got k={k!r}")
    return einsum("...ii->...i", _leading_square("diag_part", input, "input"))


def diag(diagonal: TensorLike) -> Tensor:
    """Square matrices with ``diagonal`` (shape ``[..., n]``) on their diagonals and zeros
    elsewhere, as ``tf.linalg.diag`` (``k=0``).

    >>> import gpuad as ad
    >>> ad.linalg.diag(ad.constant([1.0, 2.0])).numpy()
    array([[1., 0.],
           [0., 2.]], dtype=float32)
    """
    d = tensor_arg(diagonal, "diag", "diagonal")
    if d.ndim < 1:
        raise ValueError(f"diag: diagonal must have shape [..., n], got shape {d.shape}")
    n = d.shape[-1]
    return reshape(d, d.shape + (1,)) * eye(n, dtype=d.dtype, backend=d.backend)


def band_part(input: TensorLike, num_lower: int, num_upper: int) -> Tensor:  # noqa: A002
    """Each matrix with everything outside a band zeroed, as ``tf.linalg.band_part``: keeps
    ``num_lower`` subdiagonals and ``num_upper`` superdiagonals (a negative number keeps them
    all), so ``band_part(x, -1, 0)`` is the lower triangle.

    >>> import gpuad as ad
    >>> ad.linalg.band_part(ad.ones((3, 3)), -1, 0).numpy()
    array([[1., 0., 0.],
           [1., 1., 0.],
           [1., 1., 1.]], dtype=float32)
    """
    x = tensor_arg(input, "band_part", "input")
    if x.ndim < 2:
        raise ValueError(f"band_part: input must have shape [..., m, n], got shape {x.shape}")
    m, n = x.shape[-2:]
    offset = numpy.arange(n)[None, :] - numpy.arange(m)[:, None]  # column - row
    keep = ((offset >= -num_lower) | (num_lower < 0)) & ((offset <= num_upper) | (num_upper < 0))
    return x * convert_like(keep, x, "band_part")


# ---------------------------------------------------------------------------- decompositions

def _matrices(op: str, x: TensorLike, arg: str) -> Tensor:
    """A floating tensor of matrices, shape [..., m, n]."""
    x = tensor_arg(x, op, arg)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {arg} must be floating, got {x.dtype} (use gpuad.cast)")
    if x.ndim < 2:
        raise ValueError(f"{op}: {arg} must be matrices of shape [..., m, n], got shape "
                         f"{x.shape}")
    return x


def _safe_reciprocal(x):
    # TensorFlow's _SafeReciprocal (a Lorentz broadening): 1 / x, but 0 at x == 0, not inf
    return x / (x * x + 1e-20)


def _gap_reciprocals(e):
    """F[..., i, j] = 1 / (e_j - e_i) off the diagonal (broadened as TensorFlow's), 0 on it."""
    off_diagonal = convert_like(1.0 - numpy.eye(e.shape[-1]), e, "linalg")
    return _safe_reciprocal(expand_dims(e, -2) - expand_dims(e, -1)) * off_diagonal


def _row(x):  # [..., k] -> [..., 1, k]: a column scale (x @ diag(s) is x * _row(s))
    return expand_dims(x, -2)


def _col(x):  # [..., k] -> [..., k, 1]: a row scale (diag(s) @ x is _col(s) * x)
    return expand_dims(x, -1)


# A primitive has one output: a decomposition's factors travel as one packed array
# [..., total] (each factor flattened) and are sliced out of it. Their cotangents arrive
# packed the same way, zeros for a factor the loss does not read (as TensorFlow passes them).
def _pack_raw(parts, shapes):
    batch = parts[0].shape[:parts[0].ndim - len(shapes[0])]
    return _backend.module_of(parts[0]).concatenate(
        [p.reshape(batch + (math.prod(s),)) for p, s in zip(parts, shapes)], axis=-1)


def _pack(tensors, shapes):
    return concat([reshape(t, t.shape[:t.ndim - len(s)] + (math.prod(s),))
                   for t, s in zip(tensors, shapes)], -1)


def _unpack(packed, shapes):
    parts, start = [], 0
    for s in shapes:
        size = math.prod(s)
        parts.append(reshape(packed[..., start:start + size], packed.shape[:-1] + s))
        start += size
    return parts


def _factorization(name, factor, vjp, jvp):
    """The primitive of a decomposition. ``factor(raw_a, option)`` returns the raw factors;
    ``vjp(cotangents, a, factors, option)`` the input's cotangent and ``jvp(tangent, a,
    factors, option)`` the factors' tangents, with gpuad ops (batched tangents broadcast).
    attrs: (the factors' shapes per matrix, option)."""
    def vjp_rule(g, saved, attrs, needs):
        shapes, option = attrs
        return (vjp(_unpack(g, shapes), saved[0], _unpack(saved[1], shapes), option),)

    def jvp_rule(tangents, saved, out, attrs, batch):
        shapes, option = attrs
        return _pack(jvp(tangents[0], saved[0], _unpack(saved[1], shapes), option), shapes)

    return Primitive(name, lambda values, attrs: _pack_raw(factor(values[0], attrs[1]), attrs[0]),
                     vjp_rule, jvp_rule, save=lambda inputs, out, attrs: (inputs[0], out))


def _factors(primitive, a, shapes, option):
    return _unpack(bind(primitive, (a,), (tuple(shapes), option)), shapes)


# ------------------------------------------------------------------------------------ qr

def _times_inverse(x, r):
    """x @ inv(r) for upper triangular r."""
    return swap_last(triangular_solve(r, swap_last(x), lower=False, adjoint=True))


def _times_inverse_transpose(x, r):
    """x @ inv(r)^T for upper triangular r (TensorFlow's _TriangularSolve)."""
    return swap_last(triangular_solve(r, swap_last(x), lower=False))


def _qr_deep_vjp(q, r, g_q, g_r):
    # TensorFlow's _QrGradSquareAndDeepMatrices (arXiv:2009.10071), m >= n
    qdq = matmul(swap_last(q), g_q)
    rdr = matmul(r, swap_last(g_r))
    lower = band_part(qdq - swap_last(qdq) + rdr - swap_last(rdr), -1, 0)
    return matmul(q, g_r + _times_inverse_transpose(lower, r)) + \
        _times_inverse_transpose(g_q - matmul(q, qdq), r)


def _qr_deep_jvp(q, r, t):
    # dA = dQ R + Q dR: C = Q^T dA R^-1 is skew (Q^T dQ) plus upper triangular (dR R^-1)
    t_r = _times_inverse(t, r)
    c = matmul(swap_last(q), t_r)
    low = c * _lower_mask(c.shape[-1], c, 0.0)
    skew = low - swap_last(low)
    return matmul(q, skew) + t_r - matmul(q, c), matmul(c - skew, r)


def _qr_unsupported(a, full_matrices):
    m, n = a.shape[-2:]
    if full_matrices and m > n:
        raise NotImplementedError(f"qr: no derivative with full_matrices=True for a matrix "
                                  f"with more rows than columns (shape {a.shape}), as "
                                  f"TensorFlow; use full_matrices=False")
    return m, n


def _qr_vjp(cotangents, a, factors, full_matrices):
    (g_q, g_r), (q, r) = cotangents, factors
    m, n = _qr_unsupported(a, full_matrices)
    if m >= n:
        return _qr_deep_vjp(q, r, g_q, g_r)
    # wide: a = [x, y], r = [u, v] with x = q u square (TensorFlow's reduction)
    g_v = g_r[..., m:]
    dx = _qr_deep_vjp(q, r[..., :m], g_q + matmul(a[..., m:], swap_last(g_v)), g_r[..., :m])
    return concat([dx, matmul(q, g_v)], -1)


def _qr_jvp(t, a, factors, full_matrices):
    q, r = factors
    m, n = _qr_unsupported(a, full_matrices)
    if m >= n:
        return _qr_deep_jvp(q, r, t)
    dq, du = _qr_deep_jvp(q, r[..., :m], t[..., :m])
    dv = matmul(swap_last(q), t[..., m:] - matmul(dq, r[..., m:]))  # y = q v
    return dq, concat([du, dv], -1)


def _qr_factor(a, full_matrices):
    xp = _backend.module_of(a)
    return _linalg_call("qr", xp.linalg.qr, a, "complete" if full_matrices else "reduced")


_QR = _factorization("qr", _qr_factor, _qr_vjp, _qr_jvp)


def qr(input: TensorLike,  # noqa: A002 (TF's name)
       full_matrices: bool = False) -> tuple[Tensor, Tensor]:
    """The QR decomposition of each matrix, as ``tf.linalg.qr``: ``(q, r)`` with ``q``
    orthonormal columns and ``r`` upper triangular, ``input = q @ r``.

    Parameters
    ----------
    input : Tensor
        Matrices, shape ``[..., m, n]``.
    full_matrices : bool
        ``q`` of shape ``[..., m, m]`` and ``r`` ``[..., m, n]``; default the reduced
        ``[..., m, k]`` and ``[..., k, n]``, ``k = min(m, n)``.

    The signs are LAPACK's or cuSOLVER's (``r``'s diagonal may be negative). The gradient is
    TensorFlow's, for every shape but ``full_matrices=True`` with ``m > n``, which raises
    ``NotImplementedError`` as TensorFlow does. It solves with ``r``: a zero on its diagonal
    (dependent leading columns) raises ``numpy.linalg.LinAlgError`` there.

    Examples
    --------
    >>> import gpuad as ad
    >>> q, r = ad.linalg.qr(ad.constant([[3.0, 1.0], [4.0, 2.0]]))
    >>> ad.matmul(q, r).numpy().round(5)
    array([[3., 1.],
           [4., 2.]], dtype=float32)
    """
    a = _matrices("qr", input, "input")
    m, n = a.shape[-2:]
    k = m if full_matrices else builtins.min(m, n)
    q, r = _factors(_QR, a, ((m, k), (k, n)), bool(full_matrices))
    return q, r


# ----------------------------------------------------------------------------------- svd

def _svd_wide_vjp(g_s, g_u, g_v, s, u, v, full_matrices):
    # TensorFlow's _SvdGrad for m <= n
    m, n = u.shape[-2], v.shape[-2]
    if full_matrices and n - m > 1:
        raise NotImplementedError(f"svd: no gradient with full_matrices=True when the "
                                  f"matrix dimensions differ by more than 1 (got {m} and "
                                  f"{n}), as TensorFlow; use full_matrices=False")
    f = _gap_reciprocals(s * s)
    v1, g_v1 = v[..., :m], g_v[..., :m]
    f_u = f * matmul(swap_last(u), g_u)
    f_v = f * matmul(swap_last(v1), g_v1)
    inner = diag(g_s) + (f_u + swap_last(f_u)) * _row(s) + _col(s) * (f_v + swap_last(f_v))
    grad = matmul(u, matmul(inner, swap_last(v1)))
    if m == n:
        return grad
    g_v1t = swap_last(g_v1)
    rest = g_v1t - matmul(matmul(g_v1t, v1), swap_last(v1))
    if full_matrices:
        rest = rest - matmul(matmul(swap_last(v1), g_v[..., m:]), swap_last(v[..., m:]))
    return grad + matmul(u * _row(_safe_reciprocal(s)), rest)


def _svd_vjp(cotangents, a, factors, full_matrices):
    (g_s, g_u, g_v), (s, u, v) = cotangents, factors
    if a.shape[-2] > a.shape[-1]:  # the gradient for a^T = v s u^T, transposed
        return swap_last(_svd_wide_vjp(g_s, g_v, g_u, s, v, u, full_matrices))
    return _svd_wide_vjp(g_s, g_u, g_v, s, u, v, full_matrices)


def _svd_jvp(t, a, factors, full_matrices):
    # dP = U^T dA V; dU = U (F o (dP S + S dP^T)) + (I - U U^T) dA V S^-1, dV likewise
    s, u, v = factors
    m, n = a.shape[-2:]
    k = builtins.min(m, n)
    u1, v1 = u[..., :k], v[..., :k]
    t_v, t_u = matmul(t, v1), matmul(swap_last(t), u1)
    p = matmul(swap_last(u1), t_v)
    p_t, f = swap_last(p), _gap_reciprocals(s * s)
    s_inv = _row(_safe_reciprocal(s))
    du = matmul(u1, f * (p * _row(s) + _col(s) * p_t)) + (t_v - matmul(u1, p)) * s_inv
    dv = matmul(v1, f * (_col(s) * p + p_t * _row(s))) + (t_u - matmul(v1, p_t)) * s_inv
    if full_matrices and m > k:  # the complement: u1^T du2 = -(u2^T du1)^T, u2^T du2 = 0
        du = concat([du, -matmul(u1 * s_inv, matmul(swap_last(t_v), u[..., k:]))], -1)
    if full_matrices and n > k:
        dv = concat([dv, -matmul(v1 * s_inv, matmul(swap_last(t_u), v[..., k:]))], -1)
    return diag_part(p), du, dv


def _svd_factor(a, full_matrices):
    xp = _backend.module_of(a)
    u, s, vh = _linalg_call("svd", xp.linalg.svd, a, full_matrices)
    return s, u, xp.swapaxes(vh, -1, -2)


_SVD = _factorization("svd", _svd_factor, _svd_vjp, _svd_jvp)


def _singular_values_vjp(g, saved, attrs, needs):
    _, u, v = svd(saved[0])  # TensorFlow recomputes the vectors: g_a = u diag(g) v^T
    return (matmul(u * _row(g), swap_last(v)),)


def _singular_values_jvp(tangents, saved, out, attrs, batch):
    _, u, v = svd(saved[0])
    return diag_part(matmul(matmul(swap_last(u), tangents[0]), v))


_SINGULAR_VALUES = Primitive(
    "svd (singular values)", lambda values, attrs: _linalg_call(
        "svd", _backend.module_of(values[0]).linalg.svd, values[0], False, False),
    _singular_values_vjp, _singular_values_jvp, save=save_inputs)


@typing.overload
def svd(tensor: TensorLike, full_matrices: bool = ...,
        compute_uv: typing.Literal[True] = ...) -> tuple[Tensor, Tensor, Tensor]: ...


@typing.overload
def svd(tensor: TensorLike, full_matrices: bool = ..., *,
        compute_uv: typing.Literal[False]) -> Tensor: ...


def svd(tensor: TensorLike, full_matrices: bool = False,
        compute_uv: bool = True) -> Tensor | tuple[Tensor, Tensor, Tensor]:
    """The singular value decomposition of each matrix, as ``tf.linalg.svd``:
    ``(s, u, v)`` with ``tensor = u @ diag(s) @ v^T`` (``v``, not ``v^T``), or ``s`` alone
    with ``compute_uv=False``; ``s`` descending.

    Parameters
    ----------
    tensor : Tensor
        Matrices, shape ``[..., m, n]``.
    full_matrices : bool
        ``u`` of shape ``[..., m, m]`` and ``v`` ``[..., n, n]``; default ``[..., m, k]``
        and ``[..., n, k]``, ``k = min(m, n)``.
    compute_uv : bool

    The gradient is TensorFlow's ``_SvdGrad``: the singular vectors' terms divide by
    ``s_i^2 - s_j^2`` and by ``s_i``, broadened as TensorFlow's (``x / (x^2 + 1e-20)``: an
    exact tie or zero gives 0, a near one a large value); ``s`` alone has the gradient
    ``u v^T`` wherever ``s`` is distinct. ``full_matrices=True`` with ``|m - n| > 1`` has no
    gradient (``NotImplementedError``, as TensorFlow). The vectors' signs are the library's
    (LAPACK, cuSOLVER): a loss should not depend on them (``u @ diag(s) @ v^T``, ``|u|``,
    ``v @ v^T``).

    Examples
    --------
    >>> import gpuad as ad
    >>> s, u, v = ad.linalg.svd(ad.constant([[3.0, 0.0], [0.0, -4.0]]))
    >>> s.numpy()
    array([4., 3.], dtype=float32)
    >>> ad.linalg.svd(ad.constant([[3.0, 0.0], [0.0, -4.0]]), compute_uv=False).numpy()
    array([4., 3.], dtype=float32)
    """
    a = _matrices("svd", tensor, "tensor")
    if not compute_uv:
        return bind(_SINGULAR_VALUES, (a,))
    m, n = a.shape[-2:]
    k = builtins.min(m, n)
    shapes = ((k,), (m, m if full_matrices else k), (n, n if full_matrices else k))
    s, u, v = _factors(_SVD, a, shapes, bool(full_matrices))
    return s, u, v


# ------------------------------------------------------------------------- eigh, eigvalsh

def _symmetric_lower(grad):
    """TensorFlow's gradient for an op that reads the lower triangle of a symmetric matrix:
    the lower triangle of grad + grad^T, its diagonal halved."""
    return (grad + swap_last(grad)) * _lower_mask(grad.shape[-1], grad, 0.5)


def _symmetrized(t):
    """The symmetric matrix that an op reading the lower triangle of ``t`` sees."""
    n = t.shape[-1]
    return t * _lower_mask(n, t, 1.0) + swap_last(t * _lower_mask(n, t, 0.0))


def _eigh_vjp(cotangents, a, factors, option):
    # TensorFlow's _SelfAdjointEigV2Grad: v (diag(g_e) + F o (v^T g_v)) v^T
    (g_e, g_v), (e, v) = cotangents, factors
    inner = diag(g_e) + _gap_reciprocals(e) * matmul(swap_last(v), g_v)
    return _symmetric_lower(matmul(matmul(v, inner), swap_last(v)))


def _eigh_jvp(t, a, factors, option):
    # P = v^T dA v: de = diag(P), dv = v (F o P)
    e, v = factors
    p = matmul(matmul(swap_last(v), _symmetrized(t)), v)
    return diag_part(p), matmul(v, _gap_reciprocals(e) * p)


def _eigh_factor(a, option):  # LAPACK reads the lower triangle (UPLO="L")
    return _linalg_call("eigh", _backend.module_of(a).linalg.eigh, a)


_EIGH = _factorization("eigh", _eigh_factor, _eigh_vjp, _eigh_jvp)


def eigh(tensor: TensorLike) -> tuple[Tensor, Tensor]:
    """The eigenvalues (ascending) and eigenvectors of each symmetric matrix, as
    ``tf.linalg.eigh``: ``(e, v)`` with ``tensor = v @ diag(e) @ v^T``.

    Only the lower triangle of ``tensor`` is read, and the gradient is TensorFlow's: lower
    triangular, the diagonal halved (it equals the derivative with respect to every element
    of ``tensor``). The eigenvectors' terms divide by ``e_i - e_j``, broadened as
    TensorFlow's (``x / (x^2 + 1e-20)``): for a repeated eigenvalue (an exact tie) they give
    0, not inf or NaN, and for a close pair a large value (the eigenvectors of a degenerate
    eigenvalue are not defined). The vectors' signs are the library's (LAPACK, cuSOLVER): a
    loss should not depend on them (``v @ diag(f(e)) @ v^T``, ``|v|``).

    Examples
    --------
    >>> import gpuad as ad
    >>> e, v = ad.linalg.eigh(ad.constant([[2.0, 1.0], [1.0, 2.0]]))
    >>> e.numpy()
    array([1., 3.], dtype=float32)
    """
    a = _square("eigh", tensor, "tensor")
    n = a.shape[-1]
    e, v = _factors(_EIGH, a, ((n,), (n, n)), None)
    return e, v


def _eigvalsh_vjp(g, saved, attrs, needs):
    _, v = eigh(saved[0])  # TensorFlow recomputes the vectors: no 1 / (e_i - e_j) term
    return (_symmetric_lower(matmul(v * _row(g), swap_last(v))),)


def _eigvalsh_jvp(tangents, saved, out, attrs, batch):
    _, v = eigh(saved[0])
    return diag_part(matmul(matmul(swap_last(v), _symmetrized(tangents[0])), v))


_EIGVALSH = Primitive("eigvalsh", lambda values, attrs: _linalg_call(
    "eigvalsh", _backend.module_of(values[0]).linalg.eigvalsh, values[0]),
    _eigvalsh_vjp, _eigvalsh_jvp, save=save_inputs)


def eigvalsh(tensor: TensorLike) -> Tensor:
    """The eigenvalues (ascending) of each symmetric matrix, as ``tf.linalg.eigvalsh``.

    Reads the lower triangle; the gradient is ``v diag(g) v^T`` made lower triangular as
    :func:`eigh`'s, finite for repeated eigenvalues.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.eigvalsh(ad.constant([[2.0, 1.0], [1.0, 2.0]])).numpy()
    array([1., 3.], dtype=float32)
    """
    return bind(_EIGVALSH, (_square("eigvalsh", tensor, "tensor"),))


# ------------------------------------------------------- triangular and least-squares solves

def _rhs(op, matrix, rhs, names=("matrix", "rhs")):
    """``rhs`` [..., m, k] for ``matrix`` [..., m, n], of its dtype and backend."""
    b = tensor_arg(rhs, op, names[1])
    same_backend(op, (matrix, b))
    _same_dtype(op, (matrix, b), names)
    m = matrix.shape[-2]
    if b.ndim < 2 or b.shape[-2] != m:
        raise ValueError(f"{op}: {names[1]} must have shape [..., {m}, k] for {names[0]} of "
                         f"shape {matrix.shape}, got shape {b.shape}")
    return b


def _triangle(x, lower):
    return band_part(x, -1, 0) if lower else band_part(x, 0, -1)


_SUBSTITUTION_BLOCK = 64


def _substitute(t, b, lower):
    """Solve ``t x = b`` for triangular raw ``t`` by blocks of rows: a general solve of each
    diagonal block and a product for the rest, n^2 k work where one general solve is n^3."""
    xp = _backend.module_of(t)
    n = t.shape[-1]
    if n <= _SUBSTITUTION_BLOCK:
        return xp.linalg.solve(t, b)
    x = xp.empty_like(b)
    starts = builtins.range(0, n, _SUBSTITUTION_BLOCK)
    for start in (starts if lower else reversed(starts)):
        stop = builtins.min(start + _SUBSTITUTION_BLOCK, n)
        known = slice(0, start) if lower else slice(stop, n)  # the rows solved already
        rhs = b[..., start:stop, :] - t[..., start:stop, known] @ x[..., known, :]
        x[..., start:stop, :] = xp.linalg.solve(t[..., start:stop, start:stop], rhs)
    return x


def _triangular_solve_impl(values, attrs):
    a, b = values
    lower, adjoint = attrs
    xp = _backend.module_of(a)
    keep = xp.tri(a.shape[-1], dtype=bool)
    t = xp.where(keep if lower else keep.T, a, 0)  # the other triangle is not read
    if adjoint:
        t = xp.swapaxes(t, -1, -2)
    x = _linalg_call("triangular_solve", _substitute, t, b, lower != adjoint)
    return _finite_or_singular("triangular_solve", x, a.shape)


def _triangular_solve_vjp(g, saved, attrs, needs):
    (a, x), (lower, adjoint) = saved, attrs  # TensorFlow's _MatrixTriangularSolveGrad
    g_b = _triangular_solve(a, g, lower, not adjoint)
    g_a = -matmul(x, swap_last(g_b)) if adjoint else -matmul(g_b, swap_last(x))
    return (_triangle(g_a, lower) if needs[0] else None), (g_b if needs[1] else None)


def _triangular_solve_jvp(tangents, saved, out, attrs, batch):
    (ta, tb), (a, x), (lower, adjoint) = tangents, saved, attrs  # op(A) dX = dB - op(dA) X
    rhs = tb
    if ta is not None:
        ta = _triangle(ta, lower)
        change = matmul(swap_last(ta) if adjoint else ta, x)
        rhs = -change if tb is None else tb - change
    return triangular_solve(a, rhs, lower, adjoint)  # broadcasts a batch of tangents


_TRIANGULAR_SOLVE = Primitive("triangular_solve", _triangular_solve_impl,
                              _triangular_solve_vjp, _triangular_solve_jvp,
                              save=lambda inputs, out, attrs: (inputs[0], out))


def _triangular_solve(a, b, lower, adjoint):
    return bind(_TRIANGULAR_SOLVE, (a, b), (lower, adjoint))


def triangular_solve(matrix: TensorLike, rhs: TensorLike, lower: bool = True,
                     adjoint: bool = False) -> Tensor:
    """Solve ``matrix @ x = rhs`` (``matrix^T @ x = rhs`` with ``adjoint=True``) for
    triangular matrices, as ``tf.linalg.triangular_solve``.

    Parameters
    ----------
    matrix : Tensor
        Square matrices ``[..., n, n]``; only the lower (``lower=True``) or the upper
        triangle is read, and the gradient is that triangle's (TensorFlow's).
    rhs : Tensor
        ``[..., n, k]``; batch dimensions broadcast against ``matrix``'s.
    lower, adjoint : bool

    A zero on the diagonal raises ``numpy.linalg.LinAlgError`` (on both backends).

    Examples
    --------
    >>> import gpuad as ad
    >>> l = ad.constant([[2.0, 0.0], [1.0, 4.0]])
    >>> ad.linalg.triangular_solve(l, ad.constant([[2.0], [5.0]])).numpy()
    array([[1.],
           [1.]], dtype=float32)
    """
    a = _square("triangular_solve", matrix, "matrix")
    b = _rhs("triangular_solve", a, rhs)
    a, b = _batch_broadcast("triangular_solve", a, b, ("matrix", "rhs"))
    return _triangular_solve(a, b, bool(lower), bool(adjoint))


def cholesky_solve(chol: TensorLike, rhs: TensorLike) -> Tensor:
    """Solve ``A @ x = rhs`` given the lower Cholesky factor ``chol`` of ``A``, as
    ``tf.linalg.cholesky_solve``: two triangular solves (so the gradient is theirs, with
    respect to ``chol``'s lower triangle).

    Examples
    --------
    >>> import gpuad as ad
    >>> chol = ad.linalg.cholesky(ad.constant([[4.0, 2.0], [2.0, 5.0]]))
    >>> ad.linalg.cholesky_solve(chol, ad.constant([[6.0], [7.0]])).numpy()
    array([[1.],
           [1.]], dtype=float32)
    """
    chol = _square("cholesky_solve", chol, "chol")
    b = _rhs("cholesky_solve", chol, rhs, ("chol", "rhs"))
    return triangular_solve(chol, triangular_solve(chol, b), adjoint=True)


@names_memory_errors("lstsq")
def lstsq(matrix: TensorLike, rhs: TensorLike, l2_regularizer: float = 0.0,
          fast: bool = True) -> Tensor:
    """Least-squares solutions of ``matrix @ x = rhs``, as ``tf.linalg.lstsq``.

    Parameters
    ----------
    matrix : Tensor
        ``[..., m, n]``.
    rhs : Tensor
        ``[..., m, k]``.
    l2_regularizer : float or 0-d Tensor
        ``lambda``: with ``fast``, ``x = (A^T A + lambda I)^-1 A^T rhs`` for ``m >= n`` and
        ``A^T (A A^T + lambda I)^-1 rhs`` for ``m < n`` (the minimum-norm solution), by
        Cholesky factors of the normal equations, as TensorFlow; their gradient.
    fast : bool
        False: the minimum-norm least-squares solution ``pinv(matrix) @ rhs``, for
        rank-deficient matrices too (``l2_regularizer`` is ignored, as TensorFlow). Its
        gradient is :func:`pinv`'s (TensorFlow has none).

    Examples
    --------
    >>> import gpuad as ad
    >>> a = ad.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> ad.linalg.lstsq(a, ad.constant([[1.0], [1.0], [2.0]])).numpy().round(5)
    array([[1.],
           [1.]], dtype=float32)
    """
    a = _matrices("lstsq", matrix, "matrix")
    b = _rhs("lstsq", a, rhs)
    if not fast:
        return matmul(pinv(a), b)
    m, n = a.shape[-2:]
    a_t = swap_last(a)
    gram = matmul(a_t, a) if m >= n else matmul(a, a_t)
    if isinstance(l2_regularizer, Tensor) or l2_regularizer != 0:
        gram = gram + l2_regularizer * eye(gram.shape[-1], dtype=a.dtype, backend=a.backend)
    chol = cholesky(gram)
    if m >= n:
        return cholesky_solve(chol, matmul(a_t, b))
    return matmul(a_t, cholesky_solve(chol, b))


@names_memory_errors("pinv")
def pinv(a: TensorLike, rcond: TensorLike | None = None,
         validate_args: bool = False) -> Tensor:
    """The Moore-Penrose pseudo-inverse of each matrix, as ``tf.linalg.pinv``: from the SVD,
    singular values at most ``rcond`` times the largest taken as zero.

    Parameters
    ----------
    a : Tensor
        ``[..., m, n]``; the result is ``[..., n, m]``.
    rcond : float, optional
        Default ``10 * max(m, n) * eps`` of ``a``'s dtype.
    validate_args : bool
        Accepted for TensorFlow's signature; arguments are always checked.

    The gradient is the SVD's (:func:`svd`), through TensorFlow's formula: a cut-off
    singular value becomes ``inf``, so its terms are 0, not NaN.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.pinv(ad.constant([[2.0, 0.0], [0.0, 0.0]])).numpy()
    array([[0.5, 0. ],
           [0. , 0. ]], dtype=float32)
    """
    a = _matrices("pinv", a, "a")
    if rcond is None:
        rcond = 10.0 * builtins.max(a.shape[-2:]) * float(numpy.finfo(a.dtype).eps)
    s, u, v = svd(a)
    cutoff = rcond * reduce_max(s, axis=-1, keepdims=True)
    s = where(s > cutoff, s, numpy.inf)  # 1 / s = 0 without a NaN gradient
    return matmul(v / _row(s), swap_last(u))


# ---------------------------------------------------------------------------------- expm

# the [13/13] Padé approximant and the largest 1-norm it is accurate for in float64
# (Higham, "The scaling and squaring method for the matrix exponential revisited", 2005)
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_PADE13_THETA = 5.371920351148152


def _expm_impl(values, attrs):
    a = values[0]
    xp = _backend.module_of(a)
    if a.size == 0:
        return a.copy()
    norm = xp.abs(a).sum(axis=-2).max(axis=-1)  # the 1-norm of each matrix
    with numpy.errstate(divide="ignore", invalid="ignore"):
        squarings = xp.ceil(xp.log2(norm / _PADE13_THETA))
    squarings = xp.where(xp.isfinite(squarings) & (squarings > 0), squarings, 0)
    a = a * (0.5 ** squarings)[..., None, None].astype(a.dtype)  # exact: powers of 2
    b, i = _PADE13, xp.eye(a.shape[-1], dtype=a.dtype)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2
             + b[1] * i)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + b[0] * i
    r = _linalg_call("expm", xp.linalg.solve, v - u, v + u)
    for k in builtins.range(int(squarings.max())):  # each matrix squared its own number of times
        r = xp.where((squarings > k)[..., None, None], r @ r, r)
    return r


def _frechet(a, e):
    """The derivative of expm at ``a`` in the direction ``e``: the upper right block of
    expm([[a, e], [0, a]]) (Higham 2008, (3.16)), itself an expm, so differentiable again."""
    a = broadcast_to(a, e.shape)  # a batch of tangents
    n = a.shape[-1]
    block = concat([concat([a, e], -1), concat([zeros_like(a), a], -1)], -2)
    return bind(_EXPM, (block,))[..., :n, n:]


_EXPM = Primitive("expm", _expm_impl,
                  lambda g, saved, attrs, needs: (_frechet(swap_last(saved[0]), g),),
                  lambda tangents, saved, out, attrs, batch: _frechet(saved[0], tangents[0]),
                  save=save_inputs)


def expm(input: TensorLike) -> Tensor:  # noqa: A002 (TF's name)
    """The matrix exponential of each square matrix, as ``tf.linalg.expm``: the [13/13]
    Padé approximant with scaling and squaring (Higham 2005), each matrix of a batch scaled
    by its own 1-norm.

    The derivative is the Fréchet derivative, the upper right block of
    ``expm([[A^T, G], [0, A^T]])`` (reverse mode) or ``expm([[A, dA], [0, A]])`` (forward
    mode): an expm again, so differentiable to any order.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.expm(ad.constant([[0.0, 1.0], [0.0, 0.0]])).numpy()
    array([[1., 1.],
           [0., 1.]], dtype=float32)
    """
    return bind(_EXPM, (_square("expm", input, "input"),))
