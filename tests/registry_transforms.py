"""Registry entries of vectorized_map, the one transform called like an op (on its inputs):
the registry's checks differentiate through the batching interpreter to second order (outer
tapes and accumulators see the batched ops) and run it under ad.function.  vmap and
recompute_grad return functions; tests/test_vmap.py checks them the same way."""
import gpuad as ad
from op_registry import register, rng

X = rng(31).uniform(-1, 1, (4, 3))
W = rng(32).uniform(-1, 1, (3, 2))
S = rng(33).uniform(0.5, 1.5, (4,))


def _row(x, w):
    return ad.reduce_sum(ad.tanh(ad.matmul(x, w)) ** 2) * ad.reduce_max(x)


register("vectorized_map", lambda x, w: ad.vectorized_map(lambda r: _row(r, w), x), X, W)
register("vectorized_map", lambda x, s: ad.vectorized_map(
    lambda e: ad.einsum("i,i->", e[0], e[0]) * ad.sin(e[1]), (x, s)), X, S)
register("vectorized_map", lambda x: ad.vectorized_map(
    lambda r: ad.concat([ad.cumsum(r), ad.reshape(r, (3, 1))[:, 0] ** 3], 0), x), X)
# per-example gradients (a tape inside the map), differentiated again from outside
register("vectorized_map", lambda x, w: ad.vectorized_map(
    lambda r: ad.grad(_row, argnums=1)(r, w), x), X, W)
