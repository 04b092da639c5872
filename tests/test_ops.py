"""Non-elementwise primitives: values, gradients to second order (central differences) and errors."""
import numpy as np
import pytest

import gpuad as ad
from gpuad.testing import check_gradients

rng = np.random.default_rng(0)
A = rng.uniform(-1, 1, (3, 4))
B = rng.uniform(-1, 1, (4, 2))


CASES = [
    (lambda x: ad.reduce_sum(x), [A]),
    (lambda x: ad.reduce_sum(x, axis=1), [A]),
    (lambda x: ad.reduce_sum(x, axis=(0, -1), keepdims=True), [A]),
    (lambda x: ad.reduce_mean(x, axis=0), [A]),
    (lambda x: ad.reduce_mean(x, axis=-1, keepdims=True), [A]),
    (lambda x: ad.reduce_max(x, axis=1), [A]),
    (lambda x: ad.reduce_min(x), [A]),
    (lambda x: ad.reshape(x, (2, -1)) * ad.reshape(x, (2, 6)), [A]),
    (lambda x: ad.transpose(x) * 2.0, [A]),
    (lambda x: ad.transpose(ad.reshape(x, (3, 2, 2)), (2, 0, 1)) ** 2, [A]),
    (lambda a, b: ad.matmul(a, b), [A, B]),
    (lambda a, b: ad.matmul(a, b) ** 2, [A, B]),
    (lambda a, b: ad.matmul(a[:, :3], a[:, 1:]) * 1.0 + ad.reduce_sum(b), [A, B]),
    (lambda a, b: ad.matmul(a[0], b), [A, B]),          # 1-D @ 2-D
    (lambda a, b: ad.matmul(a, b[:, 0]), [A, B]),       # 2-D @ 1-D
    (lambda x: ad.broadcast_to(x[0], (2, 3, 4)) ** 2, [A]),
    (lambda x: x[1:, ::-2] * x[:2, 1::2], [A]),
    (lambda x: x[..., None, 1] ** 2, [A]),
    (lambda x: x[[0, 0, 2]] ** 2, [A]),                   # repeated indices accumulate
    (lambda x: ad.stack([x, x * x], axis=1), [A]),
    (lambda x: ad.stack(ad.unstack(x, axis=1)[::-1]) ** 2, [A]),
    (lambda x: ad.nn.softmax(x), [A]),
    (lambda x: ad.nn.log_softmax(x, axis=0), [A]),
    (lambda x: ad.nn.softmax_cross_entropy_with_logits(ad.nn.softmax(x * 0.5), x), [A]),
    (lambda x: ad.identity(x) * x, [A]),
    (lambda x: ad.where(x > 0, x * x, ad.sin(x)), [A]),
]


@pytest.mark.parametrize("f, args", CASES)
@pytest.mark.parametrize("order", [1, 2])
def test_gradients(f, args, order):
    check_gradients(f, args, order=order)


def test_values():
    x = ad.constant(A)
    np.testing.assert_allclose(ad.reduce_sum(x, 1).numpy(), A.sum(1))
    np.testing.assert_allclose(ad.reduce_mean(x, (0, 1), keepdims=True).numpy(),
                               A.mean(keepdims=True))
    np.testing.assert_allclose(ad.reduce_max(x, 0).numpy(), A.max(0))
    np.testing.assert_allclose(ad.matmul(x, ad.constant(B)).numpy(), A @ B)
    np.testing.assert_allclose(ad.transpose(x).numpy(), A.T)
    assert ad.reduce_sum(ad.constant([1, 2, 3])).dtype == np.int32


def test_reduce_max_ties_split_the_gradient_equally():
    x = ad.constant([1.0, 3.0, 3.0, 2.0])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_max(x)
    assert tape.gradient(y, x).numpy().tolist() == [0.0, 0.5, 0.5, 0.0]


def test_broadcast_gradients_have_the_input_shape():
    x, b = ad.constant(np.ones((2, 3))), ad.constant(np.ones((3,)))
    s = ad.constant(np.ones((2, 1)))
    with ad.GradientTape() as tape:
        tape.watch([x, b, s])
        y = ad.reduce_sum((x + b) * s)
    gx, gb, gs = tape.gradient(y, [x, b, s])
    assert gx.shape == (2, 3) and gb.shape == (3,) and gs.shape == (2, 1)
    assert gb.numpy().tolist() == [2.0, 2.0, 2.0] and gs.numpy().tolist() == [[6.0], [6.0]]


def test_creation_ops():
    assert ad.zeros((2, 3)).dtype == np.float32 and ad.ones((2,), "float64").dtype == np.float64
    assert ad.zeros_like(ad.constant([1, 2])).numpy().tolist() == [0, 0]
    assert ad.ones_like(ad.constant([1.0])).numpy().tolist() == [1.0]
    assert ad.fill((2,), 1.5).numpy().tolist() == [1.5, 1.5]
    assert ad.range(3).numpy().tolist() == [0, 1, 2] and ad.range(3).dtype == np.int32
    assert ad.range(1, 2, 0.5).numpy().tolist() == [1.0, 1.5]
    assert ad.linspace(0.0, 1.0, 5).numpy().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ad.lin_space is ad.linspace
    assert ad.eye(2).numpy().tolist() == [[1.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("call, error, match", [
    (lambda: ad.reduce_sum(ad.zeros((2, 3)), axis=2), ValueError,
     r"reduce_sum: axis 2 is out of range for a tensor of shape \(2, 3\)"),
    (lambda: ad.reduce_sum(ad.zeros((2, 3)), axis=(0, -2)), ValueError, "repeated axis"),
    (lambda: ad.reduce_max(ad.zeros((0, 3)), axis=0), ValueError, "empty"),
    (lambda: ad.reshape(ad.zeros((2, 3)), (4,)), ValueError,
     r"reshape: cannot reshape a tensor of shape \(2, 3\)"),
    (lambda: ad.matmul(ad.zeros((2, 3)), ad.zeros((4, 5))), ValueError,
     r"matmul: inner dimensions differ: a has shape \(2, 3\) and b has shape \(4, 5\)"),
    (lambda: ad.matmul(ad.zeros((2, 3)), ad.zeros((3, 2), "float64")), TypeError,
     "matmul: a has dtype float32 and b has dtype float64"),
    (lambda: ad.matmul(ad.zeros(()), ad.zeros((3,))), ValueError, "at least one dimension"),
    (lambda: ad.transpose(ad.zeros((2, 3)), (0, 0)), ValueError, "not a permutation"),
    (lambda: ad.broadcast_to(ad.zeros((2, 3)), (4, 3)), ValueError, "broadcast_to"),
    (lambda: ad.zeros((2, 3))[5], IndexError, r"getitem: .*tensor shape \(2, 3\)"),
    (lambda: ad.stack([ad.zeros((2,)), ad.zeros((3,))]), ValueError, r"values\[1\]"),
    (lambda: ad.cast(ad.zeros(()), "nonsense"), TypeError, "not a dtype"),
])
def test_errors_name_the_op_and_shapes(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_mlp_gradients_match_a_hand_written_backward():
    """A small ReLU MLP with softmax cross-entropy against its closed-form backward."""
    r = np.random.default_rng(1)
    x, w1, w2 = r.normal(size=(5, 4)), r.normal(size=(4, 6)), r.normal(size=(6, 3))
    labels = np.eye(3)[r.integers(0, 3, 5)]
    W1, W2 = ad.Variable(w1), ad.Variable(w2)
    with ad.GradientTape() as tape:
        h = ad.relu(ad.matmul(ad.constant(x), W1))
        loss = ad.reduce_mean(ad.nn.softmax_cross_entropy_with_logits(labels, ad.matmul(h, W2)))
    g1, g2 = tape.gradient(loss, [W1, W2])
    hh = np.maximum(x @ w1, 0)
    logits = hh @ w2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dlogits = (p - labels) / 5
    np.testing.assert_allclose(g2.numpy(), hh.T @ dlogits, rtol=1e-10)
    np.testing.assert_allclose(g1.numpy(), x.T @ ((dlogits @ w2.T) * (hh > 0)), rtol=1e-10)


def test_math_namespace_is_the_top_level_ops_under_tf_math_names():
    aliases = {"floormod": "mod", "truediv": "divide"}
    for name in ad.math.__all__:
        assert getattr(ad.math, name) is getattr(ad, aliases.get(name, name)), name
    x, y = ad.constant([7.0, -7.0]), ad.constant([3.0, 3.0])
    assert ad.math.floormod(x, y).numpy().tolist() == [1.0, 2.0]  # sign of the divisor, as TF
