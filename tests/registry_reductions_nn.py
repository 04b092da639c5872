"""Registry entries of gpuad/reductions.py, gpuad/nn.py and gpuad/random.py."""
import numpy as np

import gpuad as ad
from op_registry import register, register_value_check, rng

A = rng(11).uniform(-1, 1, (3, 4))
POSITIVE = rng(12).uniform(0.5, 1.5, (2, 3, 4))
VECTOR = rng(13).uniform(-1, 1, 5)
WITH_ZEROS = np.array([[0.0, 0.7, -1.2, 0.9],    # one zero: the others' product
                       [1.1, 0.0, 0.0, -0.8],    # two zeros: 0
                       [0.6, -1.3, 0.9, 1.4]])   # none
BIG = rng(14).uniform(-1, 1, (3, 4)) + np.array([[1000.0], [-1000.0], [0.0]])

register("reduce_prod", lambda x: ad.reduce_prod(x), rng(15).uniform(0.5, 1.5, (2, 3)))
register("reduce_prod", lambda x: ad.reduce_prod(x, axis=1), WITH_ZEROS)
register("reduce_prod", lambda x: ad.reduce_prod(x, axis=-2, keepdims=True) ** 2, WITH_ZEROS)
register("reduce_prod", lambda x: ad.reduce_prod(x, axis=(0, 2)), POSITIVE)
register("reduce_prod", lambda x: ad.reduce_prod(x * x, axis=(-1, 0), keepdims=True),
         np.where(np.arange(24).reshape(2, 3, 4) % 5 == 0, 0.0, POSITIVE))
register("reduce_prod", lambda x: ad.reduce_prod(x, axis=()), A)
register("reduce_logsumexp", lambda x: ad.reduce_logsumexp(x), A)
register("reduce_logsumexp", lambda x: ad.reduce_logsumexp(x, axis=1), BIG)
register("reduce_logsumexp", lambda x: ad.reduce_logsumexp(x, axis=(0, -1), keepdims=True),
         POSITIVE)
register("reduce_logsumexp", lambda x: ad.reduce_logsumexp(x, axis=0) ** 2, A)
register("reduce_variance", lambda x: ad.reduce_variance(x), A)
register("reduce_variance", lambda x: ad.reduce_variance(x, axis=-1, keepdims=True), A)
register("reduce_variance", lambda x: ad.reduce_variance(x, axis=(0, 2)), POSITIVE)
register("reduce_std", lambda x: ad.reduce_std(x, axis=0), A)
register("reduce_std", lambda x: ad.reduce_std(x, axis=(1, 2), keepdims=True), POSITIVE)
register("norm", lambda x: ad.norm(x), A)
register("norm", lambda x: ad.norm(x, ord="fro", axis=(0, 1)), A)
register("norm", lambda x: ad.norm(x, ord=1, axis=-1, keepdims=True), A)
register("norm", lambda x: ad.norm(x, ord=np.inf, axis=0), A)
register("norm", lambda x: ad.norm(x, ord=2, axis=1), POSITIVE)
register("norm", lambda x: ad.norm(x, ord=3, axis=0), A)
register("norm", lambda x: ad.norm(x, ord=1.5), VECTOR)
register("norm", lambda x: ad.norm(x, ord=1, axis=(0, 1)), A)
register("norm", lambda x: ad.norm(x, ord=np.inf, axis=(1, 0), keepdims=True), A)
register("norm", lambda x: ad.norm(x, ord=2, axis=(-2, -1)), A)  # largest singular value
register("norm", lambda x: ad.norm(x, ord=2, axis=(2, 0), keepdims=True), POSITIVE)
register("norm", lambda x: ad.norm(x, ord=2, axis=(0, 1)), A.T)  # more rows than columns
register("cumsum", lambda x: ad.cumsum(x), A)
register("cumsum", lambda x: ad.cumsum(x, axis=-1, exclusive=True) ** 2, A)
register("cumsum", lambda x: ad.cumsum(x, axis=1, reverse=True) ** 2, POSITIVE)
register("cumsum", lambda x: ad.cumsum(x, axis=0, exclusive=True, reverse=True) * x, A)
register("cumprod", lambda x: ad.cumprod(x, axis=1), WITH_ZEROS)
register("cumprod", lambda x: ad.cumprod(x, axis=-1, exclusive=True), WITH_ZEROS)
register("cumprod", lambda x: ad.cumprod(x, axis=1, reverse=True), WITH_ZEROS)
register("cumprod", lambda x: ad.cumprod(x, axis=1, exclusive=True, reverse=True) ** 2,
         WITH_ZEROS)
register("cumprod", lambda x: ad.cumprod(x, axis=0), WITH_ZEROS)
register("cumprod", lambda x: ad.cumprod(x, axis=2, reverse=True), POSITIVE)
register("cumprod", lambda x: ad.cumprod(x), np.array([0.0, 0.0, 1.3, -0.7, 0.0]))
register("nn.softmax", lambda x: ad.nn.softmax(x, axis=0), BIG)
register("nn.log_softmax", lambda x: ad.nn.log_softmax(x) ** 2, BIG)
register("nn.softmax_cross_entropy_with_logits",
         lambda labels, logits: ad.nn.softmax_cross_entropy_with_logits(labels, logits, axis=0),
         rng(16).uniform(0, 1, (3, 4)), BIG)
register("nn.gelu", lambda x: ad.nn.gelu(x), A)
register("nn.gelu", lambda x: ad.nn.gelu(x, approximate=True) ** 2, A)
register("nn.l2_loss", lambda x: ad.nn.l2_loss(x * x), A)
register("nn.sigmoid_cross_entropy_with_logits",
         lambda labels, logits: ad.nn.sigmoid_cross_entropy_with_logits(labels, logits) ** 2,
         rng(17).uniform(0, 1, (3, 4)), 3 * A)
register("nn.sparse_softmax_cross_entropy_with_logits",
         lambda logits: ad.nn.sparse_softmax_cross_entropy_with_logits(
             ad.constant([[0, 3, 1], [2, 2, 0]]), logits), POSITIVE)
register("nn.moments", lambda x: ad.nn.moments(x, [0, 2])[1] * ad.nn.moments(x, [0, 2])[0],
         POSITIVE)
register("nn.moments", lambda x: ad.nn.moments(x, [1], keepdims=True)[1] ** 2, A)
register("nn.batch_normalization", lambda x, mean, var, offset, scale:
         ad.nn.batch_normalization(x, mean, var, offset, scale, 1e-3), A, VECTOR[:4],
         POSITIVE[0, 0], VECTOR[1:], POSITIVE[1, 1])
register("nn.batch_normalization", lambda x, var:
         ad.nn.batch_normalization(x, 0.5, var, None, None, 1e-3) ** 2, A, POSITIVE[0, 0])
register("nn.embedding_lookup", lambda p: ad.nn.embedding_lookup(p, [[2, 0], [2, 2]]) ** 2, A)
register("nn.dropout", lambda x: ad.nn.dropout(x, 0.4, seed=7) * x, A)
register("nn.dropout", lambda x: ad.nn.dropout(x, 0.5, noise_shape=(3, 1), seed=2) ** 2, A)


def _moments(op, draw, low=-np.inf, high=np.inf, mean=None, std=None):
    values = draw(seed=5).numpy()
    assert low <= values.min() and values.max() < high, op
    if mean is not None:
        assert abs(values.mean() - mean) < 0.02 * max(std, 1), (op, values.mean())
        assert abs(values.std() - std) < 0.02 * std, (op, values.std())


def _random_normal():
    a, b = ad.random.normal((3, 4), seed=7), ad.random.normal((3, 4), seed=7)
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.backend == ad.get_backend()
    assert np.array_equal(a.numpy(), b.numpy()), "random.normal: a seed must reproduce values"
    assert not np.array_equal(a.numpy(), ad.random.normal((3, 4), seed=8).numpy())
    assert not np.array_equal(ad.random.normal((3, 4)).numpy(), ad.random.normal((3, 4)).numpy())
    for dtype in (np.float16, np.float32, np.float64):
        assert ad.random.normal((2,), dtype=dtype).dtype == dtype
    assert ad.random.normal(()).shape == () and ad.random.normal((0, 3)).shape == (0, 3)
    _moments("random.normal", lambda seed: ad.random.normal((200000,), 2.0, 3.0, seed=seed),
             mean=2.0, std=3.0)


def _random_uniform():
    a, b = ad.random.uniform((5,), seed=3), ad.random.uniform((5,), seed=3)
    assert a.shape == (5,) and a.dtype == np.float32 and a.backend == ad.get_backend()
    assert np.array_equal(a.numpy(), b.numpy()), "random.uniform: a seed must reproduce values"
    assert not np.array_equal(a.numpy(), ad.random.uniform((5,), seed=4).numpy())
    _moments("random.uniform", lambda seed: ad.random.uniform((200000,), seed=seed), 0.0, 1.0,
             0.5, 12 ** -0.5)
    _moments("random.uniform", lambda seed: ad.random.uniform(
        (200000,), -3.0, 5.0, dtype=np.float64, seed=seed), -3.0, 5.0, 1.0, 8 * 12 ** -0.5)
    ints = ad.random.uniform((10000,), 2, 7, dtype=np.int32, seed=1)
    assert ints.dtype == np.int32 and set(ints.numpy().tolist()) == {2, 3, 4, 5, 6}
    assert ad.random.uniform((2,), maxval=3, dtype="int64").dtype == np.int64


register_value_check("random.normal", _random_normal)
register_value_check("random.uniform", _random_uniform)
