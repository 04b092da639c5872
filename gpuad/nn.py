"""Neural-network ops (``gpuad.nn``), built from differentiable primitives."""
import numbers

import numpy

from .array_ops import axes_arg, reduce_sum, tensor_arg
from .core import Primitive, bind
from . import ops
from .ops import elu, exp, log, relu, selu, sigmoid, silu, softplus, softsign, subtract

# the maximum taken out of logits: the result does not depend on it, so it has no gradient
_LOGITS_MAX = Primitive("logits maximum", lambda values, axis: values[0].max(
    axis=axis, keepdims=True))


def _shifted(op, logits, axis):
    """``logits - max(logits)`` along ``axis``.  The result does not depend on the max, so it
    is a constant (nothing is recorded for it)."""
    logits = tensor_arg(logits, op, "logits")
    if logits.dtype.kind != "f":
        raise TypeError(f"{op}: logits must be floating, got {logits.dtype}")
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, numpy.integer)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if logits.ndim == 0:
        raise ValueError(f"{op}: logits must have at least one dimension, got shape ()")
    axis = axes_arg(op, axis, logits.shape)[0]
    if logits.shape[axis] == 0:
        return logits, axis
    return subtract(logits, bind(_LOGITS_MAX, (logits,), axis)), axis


def softmax(logits, axis=-1):
    """``exp(logits) / sum(exp(logits))`` along ``axis``, computed without overflow.

    Parameters
    ----------
    logits : Tensor
        A floating tensor.
    axis : int
        The axis of the classes (default: the last).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.nn.softmax(ad.constant([0.0, 1000.0])).numpy()
    array([0., 1.], dtype=float32)
    """
    shifted, axis = _shifted("softmax", logits, axis)
    e = exp(shifted)
    return e / reduce_sum(e, axis, keepdims=True)


def log_softmax(logits, axis=-1):
    """``logits - log(sum(exp(logits)))`` along ``axis``, computed without overflow.

    Parameters
    ----------
    logits : Tensor
        A floating tensor.
    axis : int
        The axis of the classes (default: the last).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.nn.log_softmax(ad.constant([0.0, 1000.0])).numpy()
    array([-1000.,     0.], dtype=float32)
    """
    shifted, axis = _shifted("log_softmax", logits, axis)
    return shifted - log(reduce_sum(exp(shifted), axis, keepdims=True))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    """``-sum(labels * log_softmax(logits))`` along ``axis``, per example, as
    ``tf.nn.softmax_cross_entropy_with_logits``; differentiable in both arguments.

    Parameters
    ----------
    labels : Tensor
        A probability distribution along ``axis`` per example, of the dtype of ``logits`` and
        a shape that broadcasts with it.
    logits : Tensor
        Unscaled log-probabilities.
    axis : int
        The axis of the classes (default: the last).

    Examples
    --------
    >>> import gpuad as ad
    >>> loss = ad.nn.softmax_cross_entropy_with_logits([[0.0, 1.0]], [[0.0, 0.0]])
    >>> round(float(loss[0]), 4)
    0.6931
    """
    op = "softmax_cross_entropy_with_logits"
    logits = tensor_arg(logits, op, "logits")
    labels = tensor_arg(labels, op, "labels")
    if labels.dtype != logits.dtype:
        raise TypeError(f"{op}: labels has dtype {labels.dtype} but logits has dtype "
                        f"{logits.dtype}; they must match (use gpuad.cast)")
    try:
        numpy.broadcast_shapes(labels.shape, logits.shape)
    except ValueError:
        raise ValueError(f"{op}: labels of shape {labels.shape} and logits of shape "
                         f"{logits.shape} do not broadcast") from None
    log_p = log_softmax(logits, axis)
    # the classes axis of logits, counted from the end: labels may broadcast in front
    return -reduce_sum(labels * log_p, axes_arg(op, axis, logits.shape)[0] - logits.ndim)


def leaky_relu(features, alpha=0.2):
    """``features`` where positive, else ``alpha * features``, as ``tf.nn.leaky_relu``; the
    gradient is 1 or ``alpha`` (none flows to ``alpha``).

    >>> import gpuad as ad
    >>> ad.nn.leaky_relu(ad.constant([-1.0, 2.0])).numpy()
    array([-0.2,  2. ], dtype=float32)
    """
    return ops.leaky_relu(features, alpha)


__all__ = ["relu", "sigmoid", "softplus", "softmax", "log_softmax",
           "softmax_cross_entropy_with_logits", "elu", "selu", "silu", "softsign",
           "leaky_relu"]
