"""``gpuad.math``: the ops gpuad has under their ``tf.math`` names, so TensorFlow code ports by
changing the import (``tf.math.xlogy`` -> ``ad.math.xlogy``). Every name here is the same
object as the top-level one.

>>> import gpuad as ad
>>> print(f"{float(ad.math.reduce_logsumexp(ad.constant([0.0, 0.0]))):.4f}")
0.6931
"""
from .array_ops import reduce_sum
from .math_ops import reduce_max, reduce_mean, reduce_min
from .ops import (abs, acos, acosh, add, asin, asinh, atan, atan2, atanh, ceil, cos, cosh,
                  divide, equal, erf, exp, expm1, floor, floordiv, greater, greater_equal, less,
                  less_equal, log, log1p, log_sigmoid, logical_and, logical_not, logical_or,
                  maximum, minimum, mod, multiply, negative, not_equal, pow, reciprocal, round,
                  rsqrt, sigmoid, sign, sin, sinh, softplus, softsign, sqrt, square,
                  squared_difference, subtract, tan, tanh, xlogy)
from .reductions import (argmax, argmin, cumprod, cumsum, cumulative_logsumexp,
                         reduce_euclidean_norm, reduce_logsumexp, reduce_prod, reduce_std,
                         reduce_variance)
from .ops import angle, conj, imag, real  # complex numbers
from .sorting import segment_sum, top_k, unsorted_segment_sum

floormod = mod  # tf.math.floormod and tf.math.mod are one op
truediv = divide

__all__ = ["abs", "acos", "acosh", "add", "angle", "argmax", "argmin", "asin", "asinh", "atan", "atan2",
           "atanh", "ceil", "conj", "cos", "cosh", "cumprod", "cumsum", "cumulative_logsumexp", "divide",
           "equal", "erf", "exp", "expm1", "floor", "floordiv", "floormod", "greater",
           "greater_equal", "imag", "less", "less_equal", "log", "log1p", "log_sigmoid", "logical_and",
           "logical_not", "logical_or", "maximum", "minimum", "mod", "multiply", "negative",
           "not_equal", "pow", "real", "reciprocal", "reduce_euclidean_norm", "reduce_logsumexp",
           "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_std", "reduce_sum",
           "reduce_variance", "round", "rsqrt", "segment_sum", "sigmoid", "sign", "sin", "sinh",
           "softplus", "softsign", "sqrt", "square", "squared_difference", "subtract", "tan",
           "tanh", "top_k", "truediv", "unsorted_segment_sum", "xlogy"]
