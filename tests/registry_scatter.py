"""Registry entries of gpuad/scatter_ops.py: gather_nd, scatter_nd, tensor_scatter_nd_*.

Indices stay in range when an input grows by a row (the registry's other-shape call); the
update cases have no repeated index (TensorFlow's gradient then gives every update of it the
gradient, which differences cannot see: tests/test_scatter.py checks that rule).
"""
import numpy as np

import gpuad as ad
from op_registry import register, rng

A = rng(21).uniform(-1, 1, (3, 4))
U = rng(22).uniform(-1, 1, (3, 4))
C = rng(23).uniform(-1, 1, (2, 3, 4))

register("gather_nd", lambda a: ad.gather_nd(a, [[2, 1], [0, 3], [2, 1]]) ** 2, A)  # repeated
register("gather_nd", lambda c: ad.gather_nd(c, [[1], [0]])
         * ad.gather_nd(c, [[[0]], [[2]]], batch_dims=1), C)  # slices; batch_dims
register("gather_nd", lambda a: ad.gather_nd(a, np.zeros((2, 0), np.int32)) ** 2, A)  # K = 0
register("scatter_nd", lambda u: ad.scatter_nd([[1], [3], [1]], u, [5, u.shape[1]]) ** 2, U)
register("scatter_nd", lambda u: ad.scatter_nd([[0, 1], [2, 2]], u[0, :2], [3, 3]) * 2.0, U)
register("tensor_scatter_nd_update",
         lambda a, u: ad.tensor_scatter_nd_update(a, [[2], [0]], u[:2]) ** 2, A, U)
register("tensor_scatter_nd_update",
         lambda a: ad.tensor_scatter_nd_update(a, [[0, 1], [2, 3]], ad.sin(a[1, :2])) * a, A)
register("tensor_scatter_nd_add",
         lambda a, u: ad.tensor_scatter_nd_add(a, [[1], [1]], u[:2]) ** 2, A, U)
register("tensor_scatter_nd_sub",
         lambda c: ad.tensor_scatter_nd_sub(c, [[1, 2]], c[0, :1] ** 2) * c, C)
register("tensor_scatter_nd_max",
         lambda a, u: ad.tensor_scatter_nd_max(a, [[0, 1], [2, 2], [0, 1]], u[0, :3]) ** 2, A, U)
register("tensor_scatter_nd_min",
         lambda a, u: ad.tensor_scatter_nd_min(a, [[1], [2]], u[:2]) * a, A, U)
