"""Registry entries of the complex-number ops (gpuad/ops.py), and complex cases of matmul,
einsum and the reductions: each a real function of real inputs that goes through complex
values, so the float64 central differences of the registry check TensorFlow's complex
gradient convention (dL/dRe z + i dL/dIm z) to second order."""
import gpuad as ad
from op_registry import register, rng

X = rng(31).uniform(-1, 1, (2, 3))
Y = rng(32).uniform(-1, 1, (2, 3))
P = rng(33).uniform(-1, 1, (3, 2))


def _z(a, b):
    return ad.complex(a, b)


register("complex", lambda a, b: ad.real(_z(a, b) * _z(b, a)), X, Y)
register("complex", lambda a, b: ad.abs(_z(a, b) + 2.0) * a, X, Y)  # abs of complex: real
register("complex", lambda a, b: ad.imag(_z(a, b[:1]) ** 2), X, Y)  # imag broadcast
register("real", lambda a, b: ad.real(ad.exp(_z(a, b)) / _z(b + 2.0, a)), X, Y)
register("imag", lambda a, b: ad.imag(ad.sin(_z(a, b)) * ad.sqrt(_z(a + 2.0, b))), X, Y)
register("conj", lambda a, b: ad.imag(ad.conj(_z(a, b)) * _z(b, a) ** 2), X, Y)
register("angle", lambda a, b: ad.angle(_z(a, b + 2.0)) * b, X, Y)  # off the cut
register("matmul", lambda a, b, p: ad.abs(ad.matmul(_z(a, b), _z(p, p * p))), X, Y, P)
register("einsum", lambda a, b, p: ad.real(ad.einsum("ij,jk->ik", _z(a, b), _z(p, -p))),
         X, Y, P)
register("reduce_prod", lambda a, b: ad.imag(ad.reduce_prod(_z(a, b), axis=1)), X, Y)
register("reduce_mean", lambda a, b: ad.real(ad.reduce_mean(ad.log(_z(a + 2.0, b)), 0)), X, Y)
