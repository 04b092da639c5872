"""Gradient checking for users testing their own functions (and for gpuad's own tests).

>>> import gpuad as ad
>>> ad.testing.check_gradients(lambda x, y: ad.sin(x) * y, [[0.5, 1.0], [2.0, -1.0]], order=2)
"""
import typing

import numpy

from .array_ops import convert_to_tensor, reduce_sum
from .forward import ForwardAccumulator
from .tape import GradientTape
from .tensor import Tensor, wrap


def _float64_args(args):
    tensors = []
    for a in args:
        t = convert_to_tensor(a.numpy() if isinstance(a, Tensor) else a,
                              backend=a.backend if isinstance(a, Tensor) else None)
        if t.dtype != numpy.float64:
            t = wrap(t._value.astype(numpy.float64))
        tensors.append(t)
    return tensors


def _reverse(f, args, weights):
    """Gradients of sum(f(args) * weights) by reverse mode (None -> zeros)."""
    with GradientTape() as tape:
        for a in args:
            tape.watch(a)
        out = f(*args)
        scalar = _weighted_sum(out, weights)
    grads = tape.gradient(scalar, list(args), unconnected_gradients="zero")
    return [g.numpy() for g in grads]


def _weighted_sum(out, weights):
    if not isinstance(out, Tensor):
        raise TypeError(f"check_gradients: f must return a Tensor, got {type(out).__name__}")
    return reduce_sum(out * convert_to_tensor(weights, dtype=out.dtype, backend=out.backend))


def _central_differences(scalar_fn, args, eps):
    """d scalar_fn / d args by central differences, one element at a time."""
    grads = []
    for i, a in enumerate(args):
        host = a.numpy()
        grad = numpy.zeros_like(host)
        for index in numpy.ndindex(host.shape):
            values = []
            for step in (eps, -eps):
                moved = host.copy()
                moved[index] += step
                shifted = list(args)
                shifted[i] = convert_to_tensor(moved, backend=a.backend)
                values.append(float(scalar_fn(shifted)))
            grad[index] = (values[0] - values[1]) / (2 * eps)
        grads.append(grad)
    return grads


def _compare(what, analytic, numeric, rtol, atol):
    for i, (got, want) in enumerate(zip(analytic, numeric)):
        error = numpy.abs(got - want) - (atol + rtol * numpy.abs(want))
        if got.shape != want.shape:
            raise AssertionError(f"check_gradients: {what} of argument {i} has shape "
                                 f"{got.shape}, expected {want.shape}")
        if error.size and not numpy.all(error <= 0):
            worst = numpy.unravel_index(numpy.nanargmax(numpy.where(numpy.isnan(error),
                                                                    numpy.inf, error)),
                                        error.shape)
            raise AssertionError(
                f"check_gradients: {what} of argument {i} differs at index "
                f"{tuple(int(k) for k in worst)}: analytic {got[worst]!r}, central differences "
                f"{want[worst]!r} (max abs error {numpy.nanmax(numpy.abs(got - want))!r}, "
                f"rtol={rtol}, atol={atol})")


def check_gradients(f: typing.Callable[..., typing.Any], args: typing.Sequence[typing.Any],
                    order: int = 1, eps: float | None = None, rtol: float | None = None,
                    atol: float | None = None, seed: int = 0) -> None:
    """Check the derivatives of ``f`` against float64 central differences.

    Parameters
    ----------
    f : callable
        ``f(*tensors) -> Tensor``, built from gpuad ops.
    args : list
        The point to check at; converted to float64 tensors.
    order : {1, 2}
        1 checks the reverse-mode gradient of ``sum(f(*args) * w)`` for a random ``w`` and
        the forward-mode JVP along a random direction ``v``; 2 also checks the Hessian-vector
        product, reverse over reverse and forward over reverse, against central differences
        of the first-order gradient.
    eps, rtol, atol : float, optional
        Step and tolerances (defaults 1e-6, 1e-5 and 1e-6 for order 1; 1e-5, 1e-4 and 1e-5
        for order 2).

    Raises
    ------
    AssertionError
        Naming the argument, the index of the worst element and both values.
    """
    if order not in (1, 2):
        raise ValueError(f"check_gradients: order must be 1 or 2, got {order}")
    eps = eps or (1e-6 if order == 1 else 1e-5)
    rtol = rtol if rtol is not None else (1e-5 if order == 1 else 1e-4)
    atol = atol if atol is not None else (1e-6 if order == 1 else 1e-5)
    rng = numpy.random.default_rng(seed)
    args = _float64_args(args)
    out = f(*args)
    weights = rng.uniform(0.5, 1.5, size=out.shape)

    def scalar(xs):
        return _weighted_sum(f(*xs), weights)

    analytic = _reverse(f, args, weights)
    _compare("the gradient", analytic,
             _central_differences(scalar, args, eps), rtol, atol)
    directions = [rng.uniform(-1, 1, size=a.shape) for a in args]
    _compare("the forward-mode JVP", [_forward(f, args, directions)],
             [_directional_difference(lambda xs: f(*xs).numpy(), args, directions, eps)],
             rtol, atol)
    if order == 2:
        def gradient(*xs):  # reverse mode, itself differentiable
            with GradientTape() as tape:
                for x in xs:
                    tape.watch(x)
                s = scalar(xs)
            return tape.gradient(s, list(xs), unconnected_gradients="zero")

        def directional(*xs):  # <gradient, v>
            total = None
            for g, v in zip(gradient(*xs), directions):
                term = _weighted_sum(g, v)
                total = term if total is None else total + term
            return total

        second = _reverse(directional, args, numpy.ones(()))
        _compare("the second derivative (reverse over reverse)", second,
                 _central_differences(lambda xs: directional(*xs), args, eps), rtol, atol)
        with ForwardAccumulator(args, [convert_to_tensor(v, dtype=a.dtype, backend=a.backend)
                                       for a, v in zip(args, directions)]) as acc:
            grads = gradient(*args)
        hvp = [acc.jvp(g, unconnected_gradients="zero").numpy() for g in grads]
        numeric = [_directional_difference(lambda xs, i=i: gradient(*xs)[i].numpy(), args,
                                           directions, eps) for i in range(len(args))]
        _compare("the second derivative (forward over reverse)", hvp, numeric, rtol, atol)


def _forward(f, args, directions):
    """J v by forward mode."""
    tangents = [convert_to_tensor(v, dtype=a.dtype, backend=a.backend)
                for a, v in zip(args, directions)]
    with ForwardAccumulator(args, tangents) as acc:
        out = f(*args)
    return acc.jvp(out, unconnected_gradients="zero").numpy()


def _directional_difference(fn, args, directions, eps):
    """(fn(x + eps v) - fn(x - eps v)) / 2 eps, moving every argument at once."""
    values = []
    for step in (eps, -eps):
        moved = [convert_to_tensor(a.numpy() + step * v, backend=a.backend)
                 for a, v in zip(args, directions)]
        values.append(numpy.asarray(fn(moved)))
    return (values[0] - values[1]) / (2 * eps)
