"""gpuad: TensorFlow-eager-style automatic differentiation on CuPy (GPU) and NumPy (CPU).

>>> import gpuad as ad
>>> x = ad.constant(2.0)
>>> with ad.GradientTape() as tape:
...     tape.watch(x)
...     y = ad.sin(x) * x
>>> print(f"{float(tape.gradient(y, x)):.4f}")  # cos(2)*2 + sin(2)
0.0770
"""
from . import ops as _ops  # first: array_ops builds on it
from . import backends, cuda, numpy_memory
from . import linalg, nn, random, testing
from .linalg import *  # noqa: F401,F403  (tensordot, einsum)
from .reductions import *  # noqa: F401,F403
from .shape_ops import *  # noqa: F401,F403
from .array_ops import (broadcast_to, cast, eye, fill, getitem, identity, lin_space, linspace,
                        matmul, ones, ones_like, range, reduce_max, reduce_mean, reduce_min,
                        reduce_sum, reshape, stack, transpose, unstack, zeros, zeros_like)
from .backends import backend, get_backend, set_backend
from .forward import ForwardAccumulator
from .functional import (custom_gradient, grad, gradients_function, hessian, implicit_gradients,
                         implicit_value_and_gradients, jacobian, jvp, stop_gradient,
                         value_and_grad, value_and_gradients_function, vjp)
from .ops import (ELEMENTWISE_OPS, equal, greater, greater_equal, less, less_equal, logical_and,
                  logical_not, logical_or, not_equal)
from .tape import GradientTape, UnconnectedGradients
from .tensor import Tensor, Variable, constant, convert_to_tensor

globals().update(ELEMENTWISE_OPS)  # negative, abs, sin, ..., add, multiply, where, ...

__version__ = "0.1.0"


def _reflected(op):
    def reflected(self, other):
        return op(other, self)
    reflected.__name__ = f"__r{op.__name__}__"
    return reflected


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
    for name, op in [("lt", less), ("le", less_equal), ("gt", greater), ("ge", greater_equal),
                     ("eq", equal), ("ne", not_equal), ("and", logical_and),
                     ("or", logical_or)]:
        setattr(Tensor, f"__{name}__", op)
    Tensor.__invert__ = logical_not


_install_operators()
