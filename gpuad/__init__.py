"""gpuad: TensorFlow-eager-style automatic differentiation on CuPy (GPU) and NumPy (CPU).

>>> import gpuad as ad
>>> x = ad.constant(2.0)
>>> with ad.GradientTape() as tape:
...     tape.watch(x)
...     y = ad.sin(x) * x
>>> print(f"{float(tape.gradient(y, x)):.4f}")  # cos(2)*2 + sin(2)
0.0770
"""
import warnings as _warnings
from importlib import metadata as _metadata

from . import (backends, core, cuda, distributed, experimental, linalg, math, nn,
               numpy_memory, optimizers, random, testing, train)
from .array_ops import (broadcast_to, cast, constant, convert_to_tensor, eye, fill, getitem,
                        identity, ones, ones_like, range, reduce_sum, reshape, stack,
                        stop_gradient, transpose, unstack, zeros, zeros_like)
from .backends import backend, device, get_backend, set_backend, set_device, show_config
from .experimental.dlpack import from_dlpack
from .forward import ForwardAccumulator, UnconnectedGradients
from .function import Function, TraceError, function
from .functional import (custom_gradient, grad, gradients_function, hessian, implicit_gradients,
                         implicit_value_and_gradients, jacobian, jvp, recompute_grad,
                         value_and_grad, value_and_gradients_function, vjp)
from .linalg import einsum, tensordot
from .math_ops import lin_space, linspace, matmul, reduce_max, reduce_mean, reduce_min
from .ops import (ELEMENTWISE_OPS, abs, acos, acosh, add, asin, asinh, atan, atan2, atanh,
                  ceil, clip_by_value, cos, cosh, divide, elu, equal, erf, exp, expm1, floor,
                  floordiv, greater, greater_equal, leaky_relu, less, less_equal, log, log1p,
                  log_sigmoid, logical_and, logical_not, logical_or, maximum, minimum, mod,
                  multiply, negative, not_equal, pow, reciprocal, relu, round, rsqrt, selu,
                  sigmoid, sign, silu, sin, sinh, softplus, softsign, sqrt, square,
                  squared_difference, subtract, tan, tanh, where, xlogy)
from .ops import angle, complex, conj, imag, real  # noqa: A004 (TF's names)
from .reductions import (argmax, argmin, clip_by_global_norm, clip_by_norm, cumprod, cumsum,
                         cumulative_logsumexp, global_norm, norm, reduce_euclidean_norm,
                         reduce_logsumexp, reduce_prod, reduce_std, reduce_variance)
from .shape_ops import (boolean_mask, concat, expand_dims, gather, one_hot, pad, rank, repeat,
                        reverse, roll, shape, size, split, squeeze, tile)
from .scatter_ops import (gather_nd, scatter_nd, tensor_scatter_nd_add, tensor_scatter_nd_max,
                          tensor_scatter_nd_min, tensor_scatter_nd_sub, tensor_scatter_nd_update)
from .sorting import argsort, segment_sum, sort, top_k, unsorted_segment_sum
from .tape import GradientTape
from .tensor import Tensor
from .variables import Variable
from .vmap import vectorized_map, vmap

try:
    __version__ = _metadata.version("gpuad")
except _metadata.PackageNotFoundError:  # imported from a source tree that pip never installed
    __version__ = "0+unknown"

# NumPy's inf/nan warnings from inside gpuad's ops stay silent, as in TensorFlow, PyTorch and
# CuPy: an inf or a nan is a value, and it reaches the user's code as one
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"gpuad(\.|$)")


def _reflected(op):
    def reflected(self, other):
        return op(other, self)
    reflected.__name__ = f"__r{op.__name__}__"
    return reflected


def _iterate(tensor):
    if not tensor.ndim:
        raise TypeError("iteration over a 0-d Tensor")
    return iter(unstack(tensor))


def _install_operators():
    ops = ELEMENTWISE_OPS
    # add and multiply are commutative in IEEE arithmetic, so the reflected form is the op
    for name, op in [("add", ops["add"]), ("sub", ops["subtract"]), ("mul", ops["multiply"]),
                     ("truediv", ops["divide"]), ("floordiv", ops["floordiv"]),
                     ("mod", ops["mod"]), ("pow", ops["pow"]), ("matmul", matmul)]:
        setattr(Tensor, f"__{name}__", op)
        setattr(Tensor, f"__r{name}__", op if name in ("add", "mul") else _reflected(op))
    power = ops["pow"]

    def __pow__(self, exponent):  # x ** 2 is square: a cheaper rule, the same derivatives
        return ops["square"](self) if type(exponent) is int and exponent == 2 else \
            power(self, exponent)
    Tensor.__pow__ = __pow__
    Tensor.__neg__ = ops["negative"]
    Tensor.__abs__ = ops["abs"]
    Tensor.__pos__ = lambda self: self
    Tensor.__getitem__ = getitem
    Tensor.__iter__ = _iterate
    for name, op in [("lt", less), ("le", less_equal), ("gt", greater), ("ge", greater_equal),
                     ("eq", equal), ("ne", not_equal), ("and", logical_and),
                     ("or", logical_or)]:
        setattr(Tensor, f"__{name}__", op)
    Tensor.__invert__ = logical_not


_install_operators()
