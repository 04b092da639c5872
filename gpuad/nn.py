"""Neural-network ops (``gpuad.nn``), built from differentiable primitives."""
import numbers
from collections.abc import Sequence

import numpy

from . import ops
from . import random as _random
from .array_ops import axes_arg, reduce_sum, reshape, tensor_arg
from .conv import avg_pool, avg_pool2d, conv1d, conv2d, max_pool, max_pool2d
from .core import Primitive, bind
from .math_ops import reduce_mean
from .shape_ops import gather, one_hot
from .sorting import top_k
from .tensor import Tensor, TensorLike
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


def softmax(logits: TensorLike, axis: int = -1) -> Tensor:
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


def log_softmax(logits: TensorLike, axis: int = -1) -> Tensor:
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


def softmax_cross_entropy_with_logits(labels: TensorLike, logits: TensorLike,
                                      axis: int = -1) -> Tensor:
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


def leaky_relu(features: TensorLike, alpha: float = 0.2) -> Tensor:
    """``features`` where positive, else ``alpha * features``, as ``tf.nn.leaky_relu``; the
    gradient is 1 or ``alpha`` (none flows to ``alpha``).

    >>> import gpuad as ad
    >>> ad.nn.leaky_relu(ad.constant([-1.0, 2.0])).numpy()
    array([-0.2,  2. ], dtype=float32)
    """
    return ops.leaky_relu(features, alpha)


def gelu(features: TensorLike, approximate: bool = False) -> Tensor:
    """The Gaussian error linear unit ``x * Phi(x)``, as ``tf.nn.gelu``: exact (with erf), or
    with ``approximate=True`` the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    >>> import gpuad as ad
    >>> ad.nn.gelu(ad.constant([-1.0, 0.0, 1.0])).numpy().round(4)
    array([-0.1587,  0.    ,  0.8413], dtype=float32)
    """
    x = tensor_arg(features, "gelu", "features")
    if x.dtype.kind != "f":
        raise TypeError(f"gelu: features must be floating, got {x.dtype}")
    if approximate:
        return 0.5 * x * (1.0 + ops.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1.0 + ops.erf(x * 0.7071067811865476))


def l2_loss(t: TensorLike) -> Tensor:
    """``sum(t ** 2) / 2``, as ``tf.nn.l2_loss``.

    >>> import gpuad as ad
    >>> ad.nn.l2_loss(ad.constant([1.0, 2.0])).numpy()
    array(2.5, dtype=float32)
    """
    return 0.5 * reduce_sum(ops.square(tensor_arg(t, "l2_loss", "t")))


def sigmoid_cross_entropy_with_logits(labels: TensorLike, logits: TensorLike) -> Tensor:
    """``-labels log(sigmoid(logits)) - (1 - labels) log(1 - sigmoid(logits))`` elementwise,
    as ``tf.nn.sigmoid_cross_entropy_with_logits``, computed as ``softplus(logits) - logits *
    labels`` (stable for large logits; its gradient is ``sigmoid(logits) - labels`` everywhere).

    >>> import gpuad as ad
    >>> loss = ad.nn.sigmoid_cross_entropy_with_logits([1.0, 0.0], [0.0, 100.0])
    >>> loss.numpy().round(4)
    array([  0.6931, 100.    ], dtype=float32)
    """
    op = "sigmoid_cross_entropy_with_logits"
    logits = tensor_arg(logits, op, "logits")
    labels = tensor_arg(labels, op, "labels")
    if labels.dtype != logits.dtype or labels.shape != logits.shape:
        raise ValueError(f"{op}: labels ({labels.dtype}, shape {labels.shape}) and logits "
                         f"({logits.dtype}, shape {logits.shape}) must have one dtype and shape")
    return softplus(logits) - logits * labels


def sparse_softmax_cross_entropy_with_logits(labels: TensorLike, logits: TensorLike) -> Tensor:
    """The softmax cross entropy of integer class ``labels`` (shape ``[...]``) against
    ``logits`` (shape ``[..., classes]``), as ``tf.nn.sparse_softmax_cross_entropy_with_logits``;
    differentiable in ``logits``. A label outside ``[0, classes)`` raises ``ValueError``.

    >>> import gpuad as ad
    >>> loss = ad.nn.sparse_softmax_cross_entropy_with_logits([1], [[0.0, 0.0]])
    >>> round(float(loss[0]), 4)
    0.6931
    """
    op = "sparse_softmax_cross_entropy_with_logits"
    logits = tensor_arg(logits, op, "logits")
    labels = tensor_arg(labels, op, "labels")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integers, got dtype {labels.dtype}")
    if logits.ndim == 0 or labels.shape != logits.shape[:-1]:
        raise ValueError(f"{op}: labels must have the shape of logits without its last axis; "
                         f"got labels of shape {labels.shape} and logits of shape "
                         f"{logits.shape}")
    classes = logits.shape[-1]
    values = labels._value  # checked now (a compiled function: when traced), as gather
    if values.size and (int(values.min()) < 0 or int(values.max()) >= classes):
        raise ValueError(f"{op}: labels must be in [0, {classes}), got values from "
                         f"{values.min()} to {values.max()}")
    hot = one_hot(labels, classes, dtype=logits.dtype)
    return -reduce_sum(hot * log_softmax(logits), -1)


def moments(x: TensorLike, axes: int | Sequence[int], shift: TensorLike | None = None,
            keepdims: bool = False) -> tuple[Tensor, Tensor]:
    """The mean and variance of ``x`` over ``axes``, as ``tf.nn.moments`` (``shift`` is
    accepted and unused, as in TensorFlow 2). Unlike TensorFlow, no ``stop_gradient`` on the
    mean inside the variance: the same gradient, and second derivatives that are exact.

    >>> import gpuad as ad
    >>> mean, variance = ad.nn.moments(ad.constant([1.0, 2.0, 3.0, 4.0]), axes=[0])
    >>> float(mean), float(variance)
    (2.5, 1.25)
    """
    x = tensor_arg(x, "moments", "x")
    mean = reduce_mean(x, axes, keepdims=True)
    variance = reduce_mean(ops.squared_difference(x, mean), axes, keepdims=keepdims)
    return (mean if keepdims else reshape(mean, variance.shape)), variance


def batch_normalization(x: TensorLike, mean: Tensor | float, variance: Tensor | float,
                        offset: Tensor | float | None, scale: Tensor | float | None,
                        variance_epsilon: float) -> Tensor:
    """``(x - mean) / sqrt(variance + variance_epsilon) * scale + offset``, as
    ``tf.nn.batch_normalization``; ``offset`` and ``scale`` may be None.

    >>> import gpuad as ad
    >>> ad.nn.batch_normalization(ad.constant([1.0, 3.0]), 2.0, 1.0, None, None, 0.0).numpy()
    array([-1.,  1.], dtype=float32)
    """
    x = tensor_arg(x, "batch_normalization", "x")
    out = (x - mean) * ops.rsqrt(variance + variance_epsilon)
    if scale is not None:
        out = out * scale
    return out if offset is None else out + offset


def embedding_lookup(params: TensorLike, ids: TensorLike) -> Tensor:
    """The rows of ``params`` at ``ids`` (any shape), as ``tf.nn.embedding_lookup`` with one
    params tensor; the gradient adds into the looked-up rows.

    >>> import gpuad as ad
    >>> ad.nn.embedding_lookup(ad.constant([[1.0], [2.0], [3.0]]), [2, 0, 2]).numpy().ravel()
    array([3., 1., 3.], dtype=float32)
    """
    return gather(params, ids)


def dropout(x: TensorLike, rate: float, noise_shape: Sequence[int] | Tensor | None = None,
            seed: int | None = None) -> Tensor:
    """``x`` with each element zeroed with probability ``rate`` and the rest scaled by
    ``1 / (1 - rate)``, as ``tf.nn.dropout``; ``noise_shape`` (broadcast against ``x``'s
    shape) shares the mask along its size-1 axes; ``seed`` makes the mask reproducible.

    >>> import gpuad as ad
    >>> y = ad.nn.dropout(ad.ones((1000,)), 0.5, seed=1)
    >>> sorted(set(y.numpy().tolist()))
    [0.0, 2.0]
    """
    x = tensor_arg(x, "dropout", "x")
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: x must be floating, got {x.dtype}")
    if isinstance(rate, Tensor) or not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be a number in [0, 1), got {rate!r}")
    if rate == 0:
        return x
    # drawn in float32 whatever x's dtype: one seed gives one mask in every precision
    draws = _random.uniform(x.shape if noise_shape is None else noise_shape, seed=seed)
    keep = ops.greater_equal(draws, rate)
    return ops.where(keep, x * (1.0 / (1.0 - rate)), 0.0)


__all__ = ["relu", "sigmoid", "softplus", "softmax", "log_softmax",
           "softmax_cross_entropy_with_logits", "elu", "selu", "silu", "softsign",
           "leaky_relu", "gelu", "l2_loss", "sigmoid_cross_entropy_with_logits",
           "sparse_softmax_cross_entropy_with_logits", "moments", "batch_normalization",
           "embedding_lookup", "dropout", "top_k", "conv1d", "conv2d", "max_pool2d",
           "avg_pool2d", "max_pool", "avg_pool"]
