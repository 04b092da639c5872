"""Neural-network ops (``gpuad.nn``), built from differentiable primitives."""
from .array_ops import reduce_max, reduce_sum
from .ops import _tensor, _wrap, exp, log, relu, sigmoid, softplus, subtract


def _shifted(op, logits, axis):
    """``logits - max(logits)`` along ``axis``; the max is a constant (the result does not
    depend on it), so it is not differentiated."""
    logits = _tensor(logits, op, "logits")
    if logits.dtype.kind != "f":
        raise TypeError(f"{op}: logits must be floating, got {logits.dtype}")
    shift = _wrap(reduce_max(logits, axis, keepdims=True)._value)
    return subtract(logits, shift)


def softmax(logits, axis=-1):
    """``exp(logits) / sum(exp(logits))`` along ``axis``, computed without overflow.

    >>> import gpuad as ad
    >>> ad.nn.softmax(ad.constant([0.0, 1000.0])).numpy()
    array([0., 1.], dtype=float32)
    """
    e = exp(_shifted("softmax", logits, axis))
    return e / reduce_sum(e, axis, keepdims=True)


def log_softmax(logits, axis=-1):
    """``logits - log(sum(exp(logits)))`` along ``axis``, computed without overflow."""
    shifted = _shifted("log_softmax", logits, axis)
    return shifted - log(reduce_sum(exp(shifted), axis, keepdims=True))


def softmax_cross_entropy_with_logits(labels, logits, axis=-1):
    """``-sum(labels * log_softmax(logits))`` along ``axis``, per example.

    >>> import gpuad as ad
    >>> loss = ad.nn.softmax_cross_entropy_with_logits([[0.0, 1.0]], [[0.0, 0.0]])
    >>> round(float(loss[0]), 4)
    0.6931
    """
    log_p = log_softmax(logits, axis)
    return -reduce_sum(_tensor(labels, "softmax_cross_entropy_with_logits", "labels") * log_p,
                       axis)


__all__ = ["relu", "sigmoid", "softplus", "softmax", "log_softmax",
           "softmax_cross_entropy_with_logits"]
