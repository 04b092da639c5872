"""Linear algebra: ``tensordot`` and ``einsum`` (also at the top level), and ``gpuad.linalg.inv``,
``det``, ``solve``, ``slogdet``, ``logdet``, ``cholesky``, ``trace`` and ``matrix_transpose``
(batched over leading dimensions).

The derivative rules are written with gpuad ops, so they are differentiable again: the VJP
of an einsum is an einsum, those of inv, det and solve use inv, solve and matmul.
"""
import builtins
import math
import numbers
import string

import numpy

from . import backends as _backend
from .array_ops import (broadcast_to, convert_like, eye, ones, reduce_sum, reshape, same_backend,
                        swap_last, tensor_arg, transpose)
from .core import Primitive, bind, names_memory_errors, save_inputs
from .math_ops import matmul
from .tensor import Tensor

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
def tensordot(a, b, axes):
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
def einsum(subscripts, *operands):
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
    tensors = [g] + [x for j, x in enumerate(operands) if j != k]
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

def _square(op, a, arg="a"):
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


def inv(a):
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


def det(a):
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


def solve(matrix, rhs):
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
    try:
        batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"solve: batch dimensions of matrix {a.shape} and rhs {b.shape} do "
                         f"not broadcast") from None
    # CuPy's solve does not broadcast batch dimensions: broadcast here (gradient: a sum)
    return _solve(broadcast_to(a, batch + a.shape[-2:]), broadcast_to(b, batch + b.shape[-2:]))


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


def slogdet(input):
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


def logdet(matrix):
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


def cholesky(input):
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


def _leading_square(op, x, arg):
    """The leading square part ``x[..., :k, :k]`` (k the smaller of the last two dimensions),
    whose diagonal is ``x``'s."""
    x = tensor_arg(x, op, arg)
    if x.ndim < 2:
        raise ValueError(f"{op}: {arg} must have shape [..., m, n], got shape {x.shape}")
    k = builtins.min(x.shape[-2:])
    return x[..., :k, :k]


def trace(x):
    """The sum of the diagonal of each matrix in ``x`` (shape ``[..., m, n]``), as
    ``tf.linalg.trace``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.linalg.trace(ad.constant([[1.0, 2.0], [3.0, 4.0]])).numpy()
    array(5., dtype=float32)
    """
    return einsum("...ii->...", _leading_square("trace", x, "x"))


def matrix_transpose(a):
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


def diag_part(input, k=0):  # noqa: A002
    """The main diagonal of each matrix in ``input`` (shape ``[..., m, n]``), as
    ``tf.linalg.diag_part`` (``k=0`` only).

    >>> import gpuad as ad
    >>> ad.linalg.diag_part(ad.constant([[1.0, 2.0], [3.0, 4.0]])).numpy()
    array([1., 4.], dtype=float32)
    """
    if k != 0:
        raise NotImplementedError(f"diag_part: only k=0 is supported, got k={k!r}")
    return einsum("...ii->...i", _leading_square("diag_part", input, "input"))


def diag(diagonal):
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


def band_part(input, num_lower, num_upper):  # noqa: A002
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
