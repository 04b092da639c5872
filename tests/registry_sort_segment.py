"""Registry entries of gpuad/sorting.py (sort, argsort, top_k, the segment sums) and of
reduce_euclidean_norm and cumulative_logsumexp (gpuad/reductions.py).  The cases call the
top-level names, which tests/test_core.py spies on (``ad.math.top_k is ad.top_k``)."""
import numpy as np

import gpuad as ad
from op_registry import register, register_value_check, rng

A = rng(31).uniform(-1, 1, (3, 4))           # distinct values: sort is smooth around them
C = rng(32).uniform(-1, 1, (2, 3, 4))
SPREAD = rng(33).uniform(-1, 1, (3, 5)) * np.array([[1.0], [30.0], [300.0]])  # far apart


def _pairs(n):
    """Sorted segment ids for n rows: [0, 0, 1, 1, 2, ...] (any n: the grown inputs too)."""
    return np.arange(n) // 2


register("sort", lambda x: ad.sort(x) ** 2, A)
register("sort", lambda x: ad.sort(x, axis=0, direction="DESCENDING") * x, A)
register("sort", lambda c: ad.sort(c, axis=-2) ** 2, C)
register("sort", lambda c: ad.sort(c, axis=1, direction="DESCENDING")[:, 0] * c[:, 1], C)
register("top_k", lambda x: ad.top_k(x, k=2).values ** 2, A)
register("top_k", lambda c: ad.nn.top_k(c, 3).values * c[..., :3], C)
register("top_k", lambda x: ad.top_k(x, k=x.shape[-1], sorted=False)[0] ** 2, A)
register("segment_sum", lambda x: ad.segment_sum(x, _pairs(x.shape[0])) ** 2, A)
register("segment_sum", lambda c: ad.segment_sum(c * c, [0, 2][:c.shape[0]]), C)
register("unsorted_segment_sum", lambda x: ad.unsorted_segment_sum(
    x, _pairs(x.shape[0])[::-1], x.shape[0]) ** 2, A)
register("unsorted_segment_sum", lambda c: ad.unsorted_segment_sum(  # ids of rank 2
    c, np.arange(c.shape[0] * c.shape[1]).reshape(c.shape[:2]) % 3 - 1, 2) ** 2, C)
register("reduce_euclidean_norm", lambda x: ad.reduce_euclidean_norm(x), A)
register("reduce_euclidean_norm", lambda c: ad.reduce_euclidean_norm(
    c, axis=(0, -1), keepdims=True) ** 2, C)
register("reduce_euclidean_norm", lambda x: ad.reduce_euclidean_norm(x, 1) * x[:, 0], A)
register("cumulative_logsumexp", lambda x: ad.cumulative_logsumexp(x) ** 2, A)
register("cumulative_logsumexp", lambda x: ad.cumulative_logsumexp(
    x, axis=1, reverse=True), SPREAD)
register("cumulative_logsumexp", lambda c: ad.exp(ad.cumulative_logsumexp(
    c, axis=-1, exclusive=True)) ** 2, C)
register("cumulative_logsumexp", lambda x: ad.cumulative_logsumexp(
    x, axis=-1, exclusive=True, reverse=True)[:, :-1] * x[:, :-1], SPREAD)


def _argsort():
    x = ad.constant([[2.0, 1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert ad.argsort(x).numpy().tolist() == [[3, 1, 0, 2], [0, 1, 2, 3]]  # stable
    assert ad.argsort(x, direction="DESCENDING").numpy().tolist() == [[0, 2, 1, 3],
                                                                      [0, 1, 2, 3]]
    assert ad.argsort(x, axis=0).numpy().tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]
    assert ad.argsort(x).dtype == np.int32
    ints = ad.constant([3, -2, 7, -2])
    assert ad.argsort(ints, direction="DESCENDING", stable=True).numpy().tolist() == [2, 0, 1, 3]


register_value_check("argsort", _argsort)
