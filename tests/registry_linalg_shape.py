"""Registry entries of the linear algebra (linalg.py) and shape/indexing ops (shape_ops.py,
and more getitem variants)."""
import numpy as np

import gpuad as ad
from op_registry import register, register_value_check, rng

A = rng(11).uniform(-1, 1, (3, 4))
B = rng(12).uniform(-1, 1, (4, 2))
C = rng(13).uniform(-1, 1, (2, 3, 4))
V = rng(14).uniform(-1, 1, (3,))
D = rng(17).uniform(-1, 1, (3, 3, 2))
MASK = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0]], bool)
# well-conditioned: diagonally dominant, determinants far from 0
M = rng(15).uniform(-0.5, 0.5, (3, 3)) + 2.0 * np.eye(3)
MB = rng(16).uniform(-0.5, 0.5, (2, 3, 3)) + 2.0 * np.eye(3)

# ------------------------------------------------------------------------ linear algebra
register("tensordot", lambda a, b: ad.tensordot(a, b, 1) ** 2, A, B)
register("tensordot", lambda c, a: ad.tensordot(c, a, [[1, 2], [0, 1]]), C, A)
register("tensordot", lambda c, b: ad.tensordot(c, b, [[2], [0]])
         * ad.tensordot(c, c, 0)[0, 0, 0, 0, 0, 0], C, B)  # axes=0: outer product
register("tensordot", lambda a, c: ad.tensordot(a, c, ([0, 1], [1, 2])) ** 2, A, C)  # transposes
register("einsum", lambda a, b: ad.einsum("ij,jk->ik", a, b) ** 2, A, B)
register("einsum", lambda a, b: ad.einsum("ij,jk", a, b) * ad.einsum("ij->", a), A, B)  # implicit
register("einsum", lambda m: ad.einsum("ii->i", m) * ad.einsum("ii", m), M)  # diagonal, trace
register("einsum", lambda c, a: ad.einsum("bij,ij->b", c, a) ** 2, C, A)
register("einsum", lambda c, v: ad.einsum("...ij,i->...j", c, v) ** 2, C, V)  # broadcasting
register("einsum", lambda a, c: ad.einsum("...j,...j->...", a[:1], c), A, C)  # size-1 broadcast
register("einsum", lambda d: ad.einsum("iij->j", d) ** 2, D)  # repeated index, then summed
register("einsum", lambda a, b, v: ad.einsum("ij,jk,i->k", a, b, v ** 2), A, B, V)  # three operands
register("einsum", lambda a: ad.einsum("ij,ij->ij", a, a), A)  # one tensor twice
register("linalg.inv", lambda m: ad.linalg.inv(m), M)
register("linalg.inv", lambda m: ad.linalg.inv(m) ** 2, MB)
register("linalg.det", lambda m: ad.linalg.det(m), M)
register("linalg.det", lambda m: ad.linalg.det(m) ** 2, MB)
register("linalg.solve", lambda m, b: ad.linalg.solve(m, b), M, A)
register("linalg.solve", lambda m, v: ad.linalg.solve(m, v) ** 2, MB, V)  # one vector
register("linalg.solve", lambda m, b: ad.linalg.solve(m, b), MB, A[:, :2])  # batch broadcast
register("linalg.slogdet", lambda m: ad.linalg.slogdet(m)[1] * ad.linalg.slogdet(-m)[0], M)
register("linalg.slogdet", lambda m: ad.linalg.slogdet(m)[1] ** 2, MB)
register("linalg.logdet", lambda m: ad.linalg.logdet(m) ** 2, M)
register("linalg.logdet", lambda m: ad.linalg.logdet(m), MB)


def _spd(m):  # symmetric positive definite whatever the perturbation of m
    return ad.matmul(m, ad.linalg.matrix_transpose(m))


register("linalg.cholesky", lambda m: ad.linalg.cholesky(_spd(m)), M)
register("linalg.cholesky", lambda m: ad.linalg.cholesky(_spd(m)) ** 2, MB)
register("linalg.trace", lambda m: ad.linalg.trace(m) ** 2, M)
register("linalg.trace", lambda c: ad.linalg.trace(c), C)  # batched, not square
register("linalg.matrix_transpose", lambda c: ad.linalg.matrix_transpose(c) ** 2, C)

# ----------------------------------------------------------------------------- shapes
register("expand_dims", lambda x: ad.expand_dims(x, 1) * ad.expand_dims(x, -1), A)
register("squeeze", lambda x: ad.squeeze(ad.reshape(x, (1, 3, 1, 4))) ** 2, A)
register("squeeze", lambda x: ad.squeeze(ad.reshape(x, (1, 3, 1, 4)), (0, -2)) ** 2, A)
register("concat", lambda a, c: ad.concat([a, c[0] ** 2, a * c[1]], axis=0), A, C)
register("concat", lambda a, b: ad.concat([ad.transpose(a), b ** 2], axis=-1), A, B)
register("split", lambda x: ad.concat(ad.split(x, 2, axis=1)[::-1], axis=0) ** 2, A)
register("split", lambda x: ad.split(x, [1, -1, 1], axis=1)[1]
         * ad.split(x, [0, 3, -1])[1][:, 1:3], A)  # sizes, -1 inferred (once as 0)
register("tile", lambda x: ad.tile(x, [2, 1, 3]) ** 2, C)
register("tile", lambda v: ad.tile(v, [1]) * ad.tile(v, [3])[2:5], V)
for _mode in ("CONSTANT", "REFLECT", "SYMMETRIC"):
    register("pad", lambda x, mode=_mode: ad.pad(x, [[2, 1], [0, 3]], mode) ** 2, A)
    register("pad", lambda c, mode=_mode: ad.pad(c, [[1, 0], [0, 2], [3, 3]], mode) ** 2, C)
register("pad", lambda x: ad.pad(x, [[1, 1], [1, 0]], "constant", constant_values=0.5) ** 2, A)

# ----------------------------------------------------------------------------- indexing
register("gather", lambda x: ad.gather(x, [2, 0, 2, 2]) ** 2, A)  # repeated indices
register("gather", lambda x: ad.gather(x, [[1, 3], [3, 3]], axis=1) ** 2, A)
register("gather", lambda c: ad.gather(c, 1, axis=-1) ** 2, C)
register("gather", lambda c: ad.gather(c, [[0, 0, 2], [1, 2, 2]], axis=1, batch_dims=1) ** 2, C)
register("gather", lambda c: ad.gather(c, [[3, 3], [0, 1]], axis=2, batch_dims=1) ** 2, C)
register("boolean_mask", lambda x: ad.boolean_mask(x, [True, False, True]) ** 2, A)
register("boolean_mask", lambda c: ad.boolean_mask(c, MASK, axis=1) ** 2, C)  # 2-D mask
register("boolean_mask", lambda x: ad.boolean_mask(x, x[0] > 0.0, axis=-1) ** 2, A)
register("getitem", lambda x: x[-1] * x[0, ::-1], A)  # ints, negative step
register("getitem", lambda c: c[..., 1:, None, ::-2] ** 2, C)  # ellipsis, newaxis
register("getitem", lambda c: c[1, [2, 0, 2], ..., [3, 1, 3]] ** 2, C)  # int arrays, repeats
register("getitem", lambda c: c[:, [[0, 0], [1, 1]]] ** 2, C)  # 2-D index array, repeats
register("getitem", lambda c: c[np.array([True, False])][..., ::3] ** 2, C)  # bool mask
register("getitem", lambda c: c[c[..., 0] > 0.0] ** 2, C)  # 2-D bool mask
register("getitem", lambda x: x[ad.constant([2, 2, 1]), -2:0:-1] ** 2, A)  # int Tensor index

# ------------------------------------------------ reverse, roll, one_hot, shape, argmax ...
register("reverse", lambda c: ad.reverse(c, [0, 2]) * c, C)
register("reverse", lambda a: ad.reverse(a, -1) ** 2, A)
register("roll", lambda c: ad.roll(c, 2, 2) * c, C)
register("roll", lambda a: ad.roll(a, [1, -1, 5], [0, 1, 0]) ** 2, A)  # an axis twice, wraps
register("one_hot", lambda on, off: ad.one_hot(ad.constant([[0, 3], [1, 9]]), 4, on, off,
                                               axis=1) ** 2, V[0], V[1])


def _shape_size_rank():
    x = ad.zeros((2, 3, 0))
    assert ad.shape(x).numpy().tolist() == [2, 3, 0] and ad.shape(x).dtype == np.int32
    assert ad.shape(x, out_type=np.int64).dtype == np.int64
    assert ad.size(x).numpy() == 0 and ad.size(ad.ones((4, 5))).numpy() == 20
    assert ad.rank(x).numpy() == 3 and ad.rank(ad.constant(1.0)).numpy() == 0


def _argmax_argmin():
    x = ad.constant([[1.0, 5.0, 5.0], [7.0, -2.0, 7.0]])
    assert ad.argmax(x).numpy().tolist() == [1, 0, 1]  # axis 0 by default, as TF
    assert ad.argmax(x, axis=1).numpy().tolist() == [1, 0]  # first of a tie
    assert ad.argmin(x, axis=-1, output_type=np.int32).numpy().tolist() == [0, 1]
    assert ad.argmax(x).dtype == np.int64 and ad.argmin(x, 1, np.int32).dtype == np.int32


for _name in ("shape", "size", "rank"):
    register_value_check(_name, _shape_size_rank)
for _name in ("argmax", "argmin"):
    register_value_check(_name, _argmax_argmin)
register("repeat", lambda a: ad.repeat(a, 2) ** 2, A)  # flattened
register("repeat", lambda c: ad.repeat(c, [2, 0, 1], axis=1) * 3.0, C)
register("linalg.diag_part", lambda c: ad.linalg.diag_part(c) ** 2, C)
register("linalg.diag", lambda a: ad.linalg.diag(a) ** 2, A)
register("linalg.band_part", lambda c: ad.linalg.band_part(c, 1, 0) ** 2, C)
register("linalg.band_part", lambda a: ad.linalg.band_part(a, -1, 1) * a, A)
register("clip_by_norm", lambda a: ad.clip_by_norm(a, 0.5), A)  # clipped
register("clip_by_norm", lambda a: ad.clip_by_norm(a, 10.0, axes=[1]) ** 2, A)  # not clipped
register("clip_by_global_norm", lambda a, v: ad.clip_by_global_norm([a, None, v], 0.7)[0][2], A, V)
register("global_norm", lambda a, c: ad.global_norm([a, c]) ** 2, A, C)
