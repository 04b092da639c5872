"""Registry entries of the core ops (array_ops.py, nn.py, comparisons)."""
import numpy as np

import gpuad as ad
from op_registry import register, register_value_check, rng

A = rng(1).uniform(-1, 1, (3, 4))
B = rng(2).uniform(-1, 1, (4, 2))
BATCH = rng(3).uniform(-1, 1, (2, 3, 4))

register("reduce_sum", lambda x: ad.reduce_sum(x, axis=(0, -1), keepdims=True), A)
register("reduce_sum", lambda x: ad.reduce_sum(x, 1) ** 2, A)
register("reduce_mean", lambda x: ad.reduce_mean(x, axis=0) ** 2, A)
register("reduce_max", lambda x: ad.reduce_max(x, axis=1) ** 2, A)
register("reduce_min", lambda x: ad.reduce_min(x, axis=-1, keepdims=True) ** 2, A)
register("reshape", lambda x: ad.reshape(x, (2, -1)) ** 2, A)
register("transpose", lambda x: ad.transpose(ad.reshape(x, (3, 2, 2)), (2, 0, 1)) ** 2, A)
register("broadcast_to", lambda x: ad.broadcast_to(x[0], (2, 3, 4)) ** 2, A)
register("cast", lambda x: ad.cast(ad.cast(x, "int32"), "float64") + x * x, A)  # int: no grad
register("identity", lambda x: ad.identity(x) * x, A)
register("getitem", lambda x: x[1:, ::-2] * x[:2, 1::2], A)
register("getitem", lambda x: x[[0, 0, 2], None, ..., 1] ** 2, A)
register("getitem", lambda x: x[x > 0.0] ** 2, A)
register("stack", lambda x: ad.stack([x, x * x], axis=1), A)
register("unstack", lambda x: ad.stack(ad.unstack(x, axis=1)[::-1]) ** 2, A)
register("matmul", lambda a, b: ad.matmul(a, b) ** 2, A, B)
register("matmul", lambda a, b: ad.matmul(a, b[:, 0]), A, B)
register("matmul", lambda a, b: ad.matmul(a, ad.transpose(a, (0, 2, 1))) * ad.reduce_sum(b), BATCH, B)
register("linspace", lambda a, b: ad.linspace(a, b, 5) ** 2, 1.2, 3.4)
register("linspace", lambda a, b: ad.linspace(a * b, a, 4) * ad.linspace(b, 2.0, 4), -0.7, 0.4)
register("nn.softmax", lambda x: ad.nn.softmax(x) ** 2, A)
register("nn.log_softmax", lambda x: ad.nn.log_softmax(x, axis=0), A)
register("nn.softmax_cross_entropy_with_logits",
         lambda x: ad.nn.softmax_cross_entropy_with_logits(ad.nn.softmax(x * 0.5), x), A)
register("nn.relu", lambda x: ad.nn.relu(x) ** 2, A)
register("nn.sigmoid", lambda x: ad.nn.sigmoid(x), A)
register("nn.softplus", lambda x: ad.nn.softplus(x), A)


def _comparisons():
    x, y = ad.constant([1.0, 2.0, 3.0]), ad.constant([2.0, 2.0, 2.0])
    for name, want in [("equal", [0, 1, 0]), ("not_equal", [1, 0, 1]), ("less", [1, 0, 0]),
                       ("less_equal", [1, 1, 0]), ("greater", [0, 0, 1]),
                       ("greater_equal", [0, 1, 1])]:
        got = getattr(ad, name)(x, y)
        assert got.dtype == np.bool_ and got.numpy().tolist() == [bool(w) for w in want], name
    a, b = x > 1.5, y > 1.5
    assert ad.logical_and(a, b).numpy().tolist() == [False, True, True]
    assert ad.logical_or(a, ~b).numpy().tolist() == [False, True, True]
    assert ad.logical_not(a).numpy().tolist() == [True, False, False]


for _name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
              "logical_and", "logical_or", "logical_not"):
    register_value_check(_name, _comparisons)


def _creation():
    assert ad.zeros((2,)).numpy().tolist() == [0, 0] and ad.ones((1,)).numpy().tolist() == [1]
    assert ad.zeros_like(ad.constant([1.0])).numpy().tolist() == [0.0]
    assert ad.ones_like(ad.constant([1])).numpy().tolist() == [1]
    assert ad.fill((2,), 3.0).numpy().tolist() == [3.0, 3.0]
    assert ad.eye(2).numpy().tolist() == [[1, 0], [0, 1]]
    assert ad.range(1, 7, 2).numpy().tolist() == [1, 3, 5]
    assert ad.linspace(0.0, 2.0, 3).numpy().tolist() == [0.0, 1.0, 2.0]


# lin_space: linspace's alias (the coverage test sees the op under this name); its gradient
# is checked by linspace's entries above
for _name in ("zeros", "ones", "zeros_like", "ones_like", "fill", "eye", "range", "lin_space"):
    register_value_check(_name, _creation)
