"""Registry entries of the decompositions and solves of linalg.py: qr, svd, eigh, eigvalsh,
triangular_solve, cholesky_solve, lstsq, pinv, expm.

The singular vectors and eigenvectors are defined up to sign, so each case reads them through
a function that does not see the sign (|u|, u diag(s) v^T, v f(e) v^T); the inputs have
distinct eigenvalues and singular values, where the vectors are differentiable."""
import numpy as np

import gpuad as ad
from op_registry import register, rng

L = ad.linalg
DEEP = rng(41).uniform(-1, 1, (4, 3))
WIDE = rng(42).uniform(-1, 1, (3, 4))
BATCH = rng(43).uniform(-1, 1, (2, 4, 3))
SQUARE = rng(44).uniform(-1, 1, (3, 3))
SQUARES = rng(45).uniform(-1, 1, (2, 3, 3))
RHS = rng(46).uniform(-1, 1, (3, 2))
# well-conditioned triangles: diagonally dominant
M = rng(47).uniform(-0.5, 0.5, (3, 3)) + 2.0 * np.eye(3)
MB = rng(48).uniform(-0.5, 0.5, (2, 3, 3)) + 2.0 * np.eye(3)


def _flat(*tensors):
    return ad.concat([ad.reshape(t, (-1,)) for t in tensors], 0)


def _qr(a, full_matrices=False):
    q, r = L.qr(a, full_matrices=full_matrices)
    return _flat(q, r * r)


def _svd_invariant(a, full_matrices=False):
    """|u| s, |v| and u diag(s^2) v^T: blind to the vectors' signs."""
    s, u, v = L.svd(a, full_matrices=full_matrices)
    k = s.shape[-1]
    product = ad.matmul(u[..., :k] * ad.expand_dims(s * s, -2),
                        L.matrix_transpose(v[..., :k]))
    return _flat(abs(u) * ad.reduce_sum(s), abs(v), product)


def _eigh_invariant(m):
    """v diag(exp(e)) v^T (expm of the symmetric matrix) and |v| e."""
    e, v = L.eigh(m)
    return _flat(ad.matmul(v * ad.expand_dims(ad.exp(e), -2), L.matrix_transpose(v)),
                 abs(v) * ad.expand_dims(e, -2))


def _spd(m):
    return ad.matmul(m, L.matrix_transpose(m))


register("linalg.qr", _qr, DEEP)
register("linalg.qr", _qr, WIDE)  # m < n: TensorFlow's partition into a square part
register("linalg.qr", _qr, BATCH)
register("linalg.qr", lambda w: _qr(w, full_matrices=True), WIDE)
register("linalg.svd", _svd_invariant, DEEP)
register("linalg.svd", _svd_invariant, WIDE)
register("linalg.svd", _svd_invariant, BATCH)
register("linalg.svd", lambda a: _svd_invariant(a, full_matrices=True), DEEP)  # |m - n| = 1
register("linalg.svd", lambda a: L.svd(a, compute_uv=False) ** 2, BATCH)
register("linalg.eigh", _eigh_invariant, SQUARE)  # reads the lower triangle
register("linalg.eigh", lambda m: _eigh_invariant(m + L.matrix_transpose(m)), SQUARES)
register("linalg.eigvalsh", lambda m: L.eigvalsh(m) ** 2, SQUARE)
register("linalg.eigvalsh", lambda m: L.eigvalsh(_spd(m)), SQUARES)
register("linalg.triangular_solve", lambda m, b: L.triangular_solve(m, b), M, RHS)
register("linalg.triangular_solve", lambda m, b: L.triangular_solve(
    m, b, lower=False, adjoint=True) ** 2, MB, RHS)  # batch broadcast
register("linalg.cholesky_solve", lambda m, b: L.cholesky_solve(L.cholesky(_spd(m)), b), M, RHS)
register("linalg.cholesky_solve", lambda m, b: L.cholesky_solve(m, b) ** 2, MB, RHS)
register("linalg.lstsq", lambda a, b: L.lstsq(a, b), DEEP, WIDE.T)
register("linalg.lstsq", lambda a, b: L.lstsq(a, b, l2_regularizer=0.1) ** 2, WIDE, RHS)
register("linalg.lstsq", lambda a, b: L.lstsq(a, b, fast=False), DEEP, WIDE.T)
register("linalg.pinv", lambda a: L.pinv(a), DEEP)
register("linalg.pinv", lambda a: L.pinv(a) ** 2, BATCH)
register("linalg.expm", lambda m: L.expm(m), SQUARE)
register("linalg.expm", lambda m: L.expm(4.0 * m) ** 2, SQUARES)  # scaled and squared
