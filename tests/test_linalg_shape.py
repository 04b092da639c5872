"""Linear algebra and shape/indexing ops: values against NumPy, errors, and the JVP rules of
the new primitives against central differences (gradients to second order: the registry)."""
import numpy as np
import pytest

import gpuad as ad

rng = np.random.default_rng(7)
A = rng.uniform(-1, 1, (3, 4))
C = rng.uniform(-1, 1, (2, 3, 4))
M = rng.uniform(-0.5, 0.5, (3, 3)) + 2.0 * np.eye(3)
MB = rng.uniform(-0.5, 0.5, (2, 3, 3)) + 2.0 * np.eye(3)


def close(tensor, want):
    np.testing.assert_allclose(tensor.numpy(), want, rtol=1e-12, atol=1e-12)


# -------------------------------------------------------------------------------- values

@pytest.mark.parametrize("axes, a, b", [
    (1, A, A.T), (0, A[0], A[:, 0]), (2, C, A), ([[0], [1]], A, A.T), ([1, 0], A, A.T),
    ([[2, 0], [1, 0]], C, rng.uniform(-1, 1, (2, 4, 5))), (([0, 1], [1, 2]), A, C)])
def test_tensordot_matches_numpy(axes, a, b):
    close(ad.tensordot(a, b, axes), np.tensordot(a, b, axes))


EINSUMS = [("ij,jk->ik", A, A.T), ("ij,jk", A, A.T), ("ii->i", M), ("ii", M), ("ij->", A),
           ("ij", A), ("ji", A), ("ij->j", A), ("bij,ij->b", C, A), ("...ij,j->...i", C, A[0]),
           ("...j,...j->...", A[:1], C), ("i...->...i", C), ("iij->j", rng.uniform(size=(3, 3, 2))),
           ("ij,jk,kl->il", A, A.T, M), ("i,j->ij", A[0], A[1]), ("ij,ij->ij", A, A),
           ("Ba,aB->", A, A.T), ("...", C), (" i j , j -> i ", A, A[0]),
           ("iji->j", rng.uniform(size=(3, 2, 3)))]


@pytest.mark.parametrize("case", EINSUMS, ids=[c[0] for c in EINSUMS])
def test_einsum_matches_numpy(case):
    subscripts, *operands = case
    close(ad.einsum(subscripts, *operands), np.einsum(subscripts, *operands))


def test_einsum_keeps_float32_and_int():
    x = ad.constant([[1.0, 2.0], [3.0, 4.0]])
    assert ad.einsum("ij,jk", x, x).dtype == np.float32
    assert ad.einsum("ii", ad.constant([[1, 2], [3, 4]])).numpy() == 5


def test_inv_det_solve_match_numpy():
    close(ad.linalg.inv(M), np.linalg.inv(M))
    close(ad.linalg.inv(MB), np.linalg.inv(MB))
    close(ad.linalg.det(M), np.linalg.det(M))
    close(ad.linalg.det(MB), np.linalg.det(MB))
    close(ad.linalg.solve(M, A), np.linalg.solve(M, A))
    close(ad.linalg.solve(MB, A[:, 0]), np.linalg.solve(MB, A[:, 0]))
    close(ad.linalg.solve(MB, A[:, :2]), np.linalg.solve(MB, A[:, :2]))
    close(ad.linalg.solve(M, C[:, :, :3].transpose(0, 2, 1)),
          np.linalg.solve(M, C[:, :, :3].transpose(0, 2, 1)))
    assert ad.linalg.inv(ad.constant(M, dtype="float32")).dtype == np.float32


def test_singular_matrices_behave_as_numpy():
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(np.linalg.LinAlgError, match="inv"):
        ad.linalg.inv(singular)
    with pytest.raises(np.linalg.LinAlgError, match="solve"):
        ad.linalg.solve(singular, np.ones((2, 1)))
    assert float(ad.linalg.det(singular)) == 0.0


def test_inv_det_solve_are_not_top_level():
    assert not {"inv", "det", "solve"} & set(dir(ad))
    assert ad.tensordot is ad.linalg.tensordot and ad.einsum is ad.linalg.einsum


def test_shape_ops_match_numpy():
    assert ad.expand_dims(A, 0).shape == (1, 3, 4) and ad.expand_dims(A, -3).shape == (1, 3, 4)
    assert ad.expand_dims(A, 2).shape == (3, 4, 1)
    x = np.zeros((1, 3, 1, 4))
    assert ad.squeeze(x).shape == (3, 4) and ad.squeeze(x, -2).shape == (1, 3, 4)
    assert ad.squeeze(x, [0, 2]).shape == (3, 4) and ad.squeeze(A).shape == (3, 4)
    close(ad.concat([A, C[0], C[1]], 0), np.concatenate([A, C[0], C[1]], 0))
    close(ad.concat([A], -1), A)
    close(ad.concat([C, C[:, :, :1]], -1), np.concatenate([C, C[:, :, :1]], -1))
    for got, want in zip(ad.split(A, 2, axis=1), np.split(A, 2, axis=1)):
        close(got, want)
    parts = ad.split(A, [1, -1, 0, 2], axis=-1)
    assert [p.shape for p in parts] == [(3, 1), (3, 1), (3, 0), (3, 2)]
    close(parts[1], A[:, 1:2])
    close(ad.tile(C, [2, 1, 3]), np.tile(C, (2, 1, 3)))
    close(ad.tile(A, [0, 2]), np.tile(A, (0, 2)))
    close(ad.tile(np.float64(2.0), []), np.float64(2.0))


@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "SYMMETRIC", "reflect"])
def test_pad_matches_numpy(mode):
    paddings = [[1, 0], [2, 2], [0, 3]]
    want = np.pad(C, paddings, mode.lower(), **({"constant_values": 1.5}
                                                if mode == "CONSTANT" else {}))
    close(ad.pad(C, paddings, mode, constant_values=1.5), want)


def test_pad_constant_keeps_dtype():
    got = ad.pad(ad.constant([1, 2]), [[1, 1]], constant_values=7)
    assert got.dtype == np.int32 and got.numpy().tolist() == [7, 1, 2, 7]


def test_gather_matches_numpy():
    close(ad.gather(A, [2, 0, 2]), np.take(A, [2, 0, 2], axis=0))
    close(ad.gather(C, [[1, 3], [3, 3]], axis=-1), np.take(C, [[1, 3], [3, 3]], axis=-1))
    close(ad.gather(C, 1, axis=1), C[:, 1])
    close(ad.gather(A, np.zeros((0,), np.int64)), A[:0])
    idx = np.array([[0, 2, 2], [1, 0, 1]])  # batch_dims=1: out[b, ...] = take(C[b], idx[b])
    close(ad.gather(C, idx, axis=1, batch_dims=1), np.stack([np.take(C[b], idx[b], axis=0)
                                                            for b in range(2)]))
    idx = np.array([[3, 0], [1, 1]])
    close(ad.gather(C, idx, axis=2, batch_dims=1), np.stack([np.take(C[b], idx[b], axis=1)
                                                            for b in range(2)]))
    close(ad.gather(C, idx, axis=2, batch_dims=-1), np.stack([np.take(C[b], idx[b], axis=1)
                                                             for b in range(2)]))
    idx = np.array([[[3], [0], [1]], [[1], [1], [2]]])  # batch_dims=2
    close(ad.gather(C, idx, axis=2, batch_dims=2),
          np.array([[C[b, r][idx[b, r]] for r in range(3)] for b in range(2)]))


def test_boolean_mask_matches_numpy():
    mask = A > 0
    close(ad.boolean_mask(A, mask), A[mask])
    close(ad.boolean_mask(C, mask, axis=1), C[:, mask])
    close(ad.boolean_mask(C, [True, False], axis=0), C[:1])
    close(ad.boolean_mask(C, [True, False, False, True], axis=-1), C[..., [0, 3]])


def test_getitem_matches_numpy():
    for key in [(1,), (-1, slice(None, None, -1)), (Ellipsis, 0), (None, 1, Ellipsis, None),
                (slice(None), [2, 0, 2]), ([1, 1, 0], Ellipsis, [3, 3, 0]),
                (C[..., 0] > 0,), (slice(None), np.array([[0, 0], [2, 1]])),
                (slice(None, None, -2), slice(3, 0, -1), slice(None, None, -3))]:
        close(ad.constant(C)[key], C[key])


def test_gradients_of_repeated_indices_accumulate():
    x = ad.constant([1.0, 2.0, 3.0, 4.0])
    for fn in (lambda x: x[[0, 0, 2, 0]], lambda x: ad.gather(x, [0, 0, 2, 0]),
               lambda x: ad.einsum("i->", x[ad.constant([2, 0, 0, 0])])):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(fn(x))
        assert tape.gradient(y, x).numpy().tolist() == [3.0, 0.0, 1.0, 0.0]


def test_jacobian_through_the_new_ops():
    # a target larger than the source: the Jacobian replays the batched JVP rules
    x = ad.constant(M)
    fns = [lambda m: ad.einsum("ij,jk->ikj", m, m), lambda m: ad.linalg.inv(m) * m,
           lambda m: ad.reshape(ad.linalg.det(ad.stack([m, m * m])), (2, 1, 1)) * m,
           lambda m: ad.linalg.solve(m, ad.concat([m, m * m], 1)),
           lambda m: ad.pad(m, [[1, 2], [2, 1]], "REFLECT"),
           lambda m: ad.pad(m, [[1, 2], [2, 1]], "SYMMETRIC")]
    for fn in fns:
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        jac = tape.jacobian(y, x).numpy()
        want = np.zeros(y.shape + x.shape)
        for index in np.ndindex(x.shape):
            step = np.zeros(x.shape)
            step[index] = 1e-6
            want[(Ellipsis,) + index] = (fn(ad.constant(M + step)).numpy() -
                                         fn(ad.constant(M - step)).numpy()) / 2e-6
        np.testing.assert_allclose(jac, want, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------- JVP rules

def _jvp_check(fn, args, tangent_mask):
    """The recorded primitive's JVP rule, unbatched and batched, against central differences
    of ``fn`` along random tangents (None where tangent_mask is False)."""
    xs = [ad.constant(a) for a in args]
    with ad.GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        out = fn(*xs)
    record = tape._records[out._id]
    prim, ids, saved, attrs = record.primitive, record.input_ids, record.saved, record.attrs
    assert prim.jvp_rule is not None, prim
    directions = [[rng.uniform(-1, 1, a.shape) if use else None
                   for a, use in zip(args, tangent_mask)] for _ in range(2)]
    position = {x._id: i for i, x in enumerate(xs)}
    wants = []
    for vs in directions:
        def moved(step):
            return fn(*[ad.constant(a if v is None else a + step * v)
                        for a, v in zip(args, vs)]).numpy()
        want = (moved(1e-6) - moved(-1e-6)) / 2e-6
        tangents = tuple(None if vs[position[i]] is None else ad.constant(vs[position[i]])
                         for i in ids)
        np.testing.assert_allclose(prim.jvp(tangents, saved, out, attrs, 0).numpy(), want,
                                   rtol=1e-6, atol=1e-7)
        wants.append(want)
    batched = tuple(None if directions[0][position[i]] is None else
                    ad.constant(np.stack([d[position[i]] for d in directions])) for i in ids)
    np.testing.assert_allclose(prim.jvp(batched, saved, out, attrs, 1).numpy(), np.stack(wants),
                               rtol=1e-6, atol=1e-7)


JVP_CASES = [
    ("einsum", lambda a, b: ad.einsum("ij,jk->ik", a, b), [A, A.T], [True, True]),
    ("einsum", lambda a, b: ad.einsum("ij,jk->ik", a, b), [A, A.T], [False, True]),
    ("einsum", lambda m, c: ad.einsum("ii,bij->bj", m, c), [M, C[:, :, :3]], [True, True]),
    ("inv", ad.linalg.inv, [MB], [True]),
    ("det", ad.linalg.det, [MB], [True]),
    ("solve", ad.linalg.solve, [MB, C[:, :, :2]], [True, True]),
    ("solve", ad.linalg.solve, [MB, C[:, :, :2]], [True, False]),
    ("solve", ad.linalg.solve, [MB, C[:, :, :2]], [False, True]),
    ("concat", lambda a, b: ad.concat([a, b, a], 0), [A, C[0]], [True, True]),
    ("concat", lambda a, b: ad.concat([a, b], 1), [A, A[:, :2]], [False, True]),
    ("pad", lambda c: ad.pad(c, [[1, 0], [2, 1], [0, 3]], "SYMMETRIC"), [C], [True]),
    ("pad", lambda c: ad.pad(c, [[0, 1], [2, 2], [3, 3]], constant_values=2.0), [C], [True]),
]


@pytest.mark.parametrize("name, fn, args, mask", JVP_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(JVP_CASES)])
def test_jvp_rules_match_central_differences(name, fn, args, mask):
    _jvp_check(fn, args, mask)


# ------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("fn, error, match", [
    (lambda: ad.tensordot(A, A, 3), ValueError, r"tensordot: axes=3 .*\(3, 4\)"),
    (lambda: ad.tensordot(A, A, 1), ValueError, r"tensordot: axis 1 of a \(shape \(3, 4\)\) "
                                                r"has size 4 but axis 0 of b"),
    (lambda: ad.tensordot(A, A, [[0], [0, 1]]), ValueError, "tensordot: 1 axes of a but 2"),
    (lambda: ad.tensordot(A, A, [[2], [0]]), ValueError, r"tensordot: axis 2 is out of range "
                                                         r"for a of shape \(3, 4\)"),
    (lambda: ad.tensordot(A, A, [[0, 0], [0, 1]]), ValueError, "tensordot: repeated axis"),
    (lambda: ad.tensordot(A, A, "x"), ValueError, "tensordot: axes must be"),
    (lambda: ad.tensordot(A, ad.constant(A, "float32"), 0), TypeError,
     "tensordot: a has dtype float64 and b has dtype float32"),
    (lambda: ad.einsum("ij,jk", A), ValueError, r"einsum: 2 operand terms but 1 operands .*"
                                                r"\(3, 4\)"),
    (lambda: ad.einsum("i1", A), ValueError, "einsum: invalid term 'i1'"),
    (lambda: ad.einsum("i.j", A), ValueError, "einsum: invalid term"),
    (lambda: ad.einsum("......", A), ValueError, "einsum: invalid term"),
    (lambda: ad.einsum("ijk", A), ValueError, r"einsum: term 'ijk' does not fit an operand "
                                              r"of shape \(3, 4\)"),
    (lambda: ad.einsum("ij,ij", A, A.T), ValueError, r"einsum: index 'i' has sizes 3 and 4 in "
                                                     r"operand shapes \(3, 4\), \(4, 3\)"),
    (lambda: ad.einsum("ij->k", A), ValueError, "einsum: output letter 'k'"),
    (lambda: ad.einsum("ij->ii", A), ValueError, "einsum: output letter 'i' is repeated"),
    (lambda: ad.einsum("...i->i", C), ValueError, r"einsum: broadcast axes \('...'\)"),
    (lambda: ad.einsum("ii", A), ValueError, r"einsum: the repeated index 'i' spans axes of "
                                             r"sizes 3 and 4 in an operand of shape \(3, 4\)"),
    (lambda: ad.einsum("ij"), ValueError, "einsum: expected at least one operand"),
    (lambda: ad.einsum(["ij"], A), TypeError, "einsum: subscripts must be a str"),
    (lambda: ad.einsum("i,i", A[0], ad.constant(A[0], "float32")), TypeError,
     r"einsum: operands\[0\] has dtype float64 and operands\[1\] has dtype float32"),
    (lambda: ad.linalg.inv(A), ValueError, r"inv: a must be square matrices .*\(3, 4\)"),
    (lambda: ad.linalg.inv(A[0]), ValueError, r"inv: .*shape \(4,\)"),
    (lambda: ad.linalg.det(C), ValueError, r"det: a must be square matrices .*\(2, 3, 4\)"),
    (lambda: ad.linalg.det(ad.constant([[1, 2], [3, 4]])), TypeError, "det: a must be floating"),
    (lambda: ad.linalg.solve(A, A), ValueError, r"solve: matrix must be square .*\(3, 4\)"),
    (lambda: ad.linalg.solve(M, A.T), ValueError, r"solve: rhs must have shape \[..., 3, k\] "
                                                  r"or \[3\] .*\(4, 3\)"),
    (lambda: ad.linalg.solve(MB, np.ones((3, 3, 1))), ValueError,
     r"solve: batch dimensions of matrix \(2, 3, 3\) and rhs \(3, 3, 1\)"),
    (lambda: ad.expand_dims(A, 3), ValueError, r"expand_dims: axis 3 is out of range .*\(3, 4\)"),
    (lambda: ad.expand_dims(A, 1.0), TypeError, "expand_dims: axis must be an int"),
    (lambda: ad.squeeze(A, 1), ValueError, r"squeeze: cannot squeeze axis 1 of size 4 "
                                           r"\(tensor shape \(3, 4\)\)"),
    (lambda: ad.squeeze(A, 2), ValueError, "squeeze: axis 2 is out of range"),
    (lambda: ad.concat([A, C], 0), ValueError, r"concat: values\[0\] is float64\[3, 4\] but "
                                               r"values\[1\] is float64\[2, 3, 4\]"),
    (lambda: ad.concat([A, A.T], 0), ValueError, r"concat: .*values\[1\] is float64\[4, 3\]"),
    (lambda: ad.concat([A, A], 2), ValueError, r"concat: axis 2 is out of range .*\(3, 4\)"),
    (lambda: ad.concat([], 0), ValueError, "concat: expected a non-empty list"),
    (lambda: ad.concat([np.float64(1.0)], 0), ValueError, "concat: cannot concatenate 0-d"),
    (lambda: ad.split(A, 3, axis=1), ValueError, r"split: cannot split axis 1 of size 4 "
                                                 r"\(shape \(3, 4\)\) into 3 equal parts"),
    (lambda: ad.split(A, [1, 1], axis=1), ValueError, r"split: sizes \[1, 1\] do not split "
                                                      r"axis 1 of size 4"),
    (lambda: ad.split(A, [-1, -1]), ValueError, "split: sizes"),
    (lambda: ad.split(A, [2, 2, -1]), ValueError, "split: sizes"),
    (lambda: ad.tile(A, [2]), ValueError, r"tile: multiples \[2\] must be 2 non-negative ints "
                                          r"for a tensor of shape \(3, 4\)"),
    (lambda: ad.tile(A, [2, -1]), ValueError, "tile: multiples"),
    (lambda: ad.pad(A, [[1, 1]]), ValueError, r"pad: paddings must be 2 pairs .*\(3, 4\)"),
    (lambda: ad.pad(A, [[1, 1], [0, -1]]), ValueError, "pad: paddings must be"),
    (lambda: ad.pad(A, [[1, 1], [0, 1]], "WRAP"), ValueError, "pad: mode must be"),
    (lambda: ad.pad(A, [[3, 0], [0, 0]], "REFLECT"), ValueError,
     r"pad: REFLECT paddings \[3, 0\] of axis 0 must be < its size 3 .*\(3, 4\)"),
    (lambda: ad.pad(A, [[0, 4], [0, 0]], "SYMMETRIC"), ValueError,
     r"pad: SYMMETRIC paddings \[0, 4\] of axis 0 must be <= its size 3"),
    (lambda: ad.pad(ad.constant([1, 2]), [[1, 1]], constant_values=0.5), TypeError, "pad"),
    (lambda: ad.pad(A, [[1, 1], [0, 1]], constant_values=[1.0, 2.0]), ValueError,
     "pad: constant_values must be a scalar"),
    (lambda: ad.gather(A, [0, 3]), IndexError, r"gather: indices must be in \[0, 3\) for axis 0 "
                                               r"of params of shape \(3, 4\); got values in "
                                               r"\[0, 3\]"),
    (lambda: ad.gather(A, [-1]), IndexError, "gather: indices must be in"),
    (lambda: ad.gather(A, [0.0]), TypeError, "gather: indices must be integers"),
    (lambda: ad.gather(A, [0], axis=2), ValueError, "gather: axis 2 is out of range"),
    (lambda: ad.gather(C, [[0], [0], [0]], axis=1, batch_dims=1), ValueError,
     r"gather: batch_dims=1 .*params shape \(2, 3, 4\), indices shape \(3, 1\)"),
    (lambda: ad.gather(C, [[0], [0]], axis=0, batch_dims=1), ValueError, "gather: batch_dims=1"),
    (lambda: ad.boolean_mask(A, [True, False]), ValueError,
     r"boolean_mask: mask of shape \(2,\) does not match the shape \(3,\) of tensor \(3, 4\)"),
    (lambda: ad.boolean_mask(A, [1, 0, 1]), TypeError, "boolean_mask: mask must be bool"),
    (lambda: ad.boolean_mask(A, True), ValueError, "boolean_mask: mask must have at least one"),
    (lambda: ad.constant(A)[3], IndexError, r"getitem: .* \(tensor shape \(3, 4\)\)"),
    (lambda: ad.constant(A)[:, [0, 4]], IndexError, r"getitem: .*\(3, 4\)"),
])
def test_errors_name_the_op_and_shapes(fn, error, match):
    with pytest.raises(error, match=match):
        fn()


def test_det_gradient_at_a_singular_matrix_raises():
    x = ad.constant([[1.0, 2.0], [2.0, 4.0]])
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.linalg.det(x)
    with pytest.raises(np.linalg.LinAlgError, match="inv"):
        tape.gradient(y, x)


# --------------------------------------------------------------------------------- CuPy

@pytest.mark.gpu
def test_new_ops_on_cupy_match_numpy_in_float32():
    a32, c32, m32 = (x.astype(np.float32) for x in (A, C, MB))
    cases = [lambda a, c, m: ad.einsum("bij,ij->b", c, a), lambda a, c, m: ad.einsum("ii->i", m[0]),
             lambda a, c, m: ad.tensordot(c, a, [[1, 2], [0, 1]]),
             lambda a, c, m: ad.linalg.inv(m), lambda a, c, m: ad.linalg.det(m),
             lambda a, c, m: ad.linalg.solve(m, c[:, :, :2]),
             lambda a, c, m: ad.concat([a, c[0]], 0), lambda a, c, m: ad.split(a, [1, -1], 1)[1],
             lambda a, c, m: ad.tile(a, [2, 2]),
             lambda a, c, m: ad.pad(c, [[1, 0], [2, 1], [0, 3]], "REFLECT"),
             lambda a, c, m: ad.pad(a, [[1, 1], [2, 2]], constant_values=3.0),
             lambda a, c, m: ad.gather(c, [[0, 2, 2], [1, 1, 0]], axis=1, batch_dims=1),
             lambda a, c, m: ad.boolean_mask(c, a > 0, axis=1),
             lambda a, c, m: a[[2, 2, 0], ::-1]]
    for fn in cases:
        want = fn(*(ad.constant(x, backend="numpy") for x in (a32, c32, m32)))
        got = fn(*(ad.constant(x, backend="cupy") for x in (a32, c32, m32)))
        assert got.backend == "cupy" and got.dtype == np.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_singular_matrices_on_cupy_behave_as_numpy():
    singular = ad.constant([[1.0, 2.0], [2.0, 4.0]], backend="cupy")
    with pytest.raises(np.linalg.LinAlgError, match="inv"):
        ad.linalg.inv(singular)
    with pytest.raises(np.linalg.LinAlgError, match="solve"):
        ad.linalg.solve(singular, ad.constant([[1.0], [1.0]], backend="cupy"))
    assert float(ad.linalg.det(singular)) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logdet_of_a_200x200_covariance_is_finite_with_the_closed_form_gradient(dtype):
    """A GP's log det K: det underflows to 0, logdet stays finite; gradient inv(K)^T."""
    x = np.random.default_rng(0).normal(size=(200, 5))
    k = np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1)) + 1e-2 * np.eye(200)
    kt = ad.constant(k.astype(dtype))
    with ad.GradientTape() as tape:
        tape.watch(kt)
        value = ad.linalg.logdet(kt)
    if dtype == np.float32:
        assert float(ad.linalg.det(kt)) == 0.0  # why logdet exists
    expected = np.linalg.slogdet(k)[1]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(float(value), expected, rtol=rtol)
    inverse = np.linalg.inv(k)
    grad = tape.gradient(value, kt).numpy()
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad, inverse.T, atol=(1e-4 if dtype == np.float32 else 1e-9)
                               * np.abs(inverse).max())


def test_slogdet_sign_and_cholesky_values_and_errors():
    sign, logabs = ad.linalg.slogdet(ad.constant([[[0.0, 2.0], [3.0, 0.0]], [[1.0, 0.0],
                                                                              [0.0, 1.0]]]))
    assert sign.numpy().tolist() == [-1.0, 1.0]
    np.testing.assert_allclose(logabs.numpy(), [np.log(6.0), 0.0], atol=1e-6)
    a = np.array([[4.0, 2.0], [2.0, 5.0]])
    np.testing.assert_allclose(ad.linalg.cholesky(ad.constant(a)).numpy(), [[2, 0], [1, 2]])
    with pytest.raises(np.linalg.LinAlgError, match="cholesky"):
        ad.linalg.cholesky(ad.constant([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"cholesky: input must be square.*\(2, 3\)"):
        ad.linalg.cholesky(ad.ones((2, 3)))
    with pytest.raises(ValueError, match=r"trace: x must have shape.*\(3,\)"):
        ad.linalg.trace(ad.ones((3,)))


def test_cholesky_gradient_is_tensorflows_symmetric_one():
    """For L = chol(A), loss sum(L): the gradient is symmetric, and a symmetric perturbation's
    central difference matches it (A's upper triangle is never read)."""
    a = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    at = ad.constant(a)
    with ad.GradientTape() as tape:
        tape.watch(at)
        loss = ad.reduce_sum(ad.linalg.cholesky(at))
    grad = tape.gradient(loss, at).numpy()
    np.testing.assert_allclose(grad, grad.T, atol=1e-12)
    direction = np.random.default_rng(3).normal(size=(3, 3))
    direction = direction + direction.T
    eps = 1e-6
    diff = (np.linalg.cholesky(a + eps * direction).sum()
            - np.linalg.cholesky(a - eps * direction).sum()) / (2 * eps)
    np.testing.assert_allclose((grad * direction).sum(), diff, rtol=1e-7)


def test_new_shape_ops_name_the_op_and_argument_on_bad_input():
    with pytest.raises(ValueError, match=r"argmax: input must have rank >= 1"):
        ad.argmax(ad.constant(1.0))
    with pytest.raises(ValueError, match=r"argmin: axis 0 of input shape \(0, 2\) is empty"):
        ad.argmin(ad.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"roll: shift and axis must have the same length"):
        ad.roll(ad.zeros((2, 2)), [1, 2], [0])
    with pytest.raises(ValueError, match=r"roll: axis 2 is out of range.*\(2, 2\)"):
        ad.roll(ad.zeros((2, 2)), 1, 2)
    with pytest.raises(TypeError, match=r"one_hot: indices must be integers, got dtype float32"):
        ad.one_hot(ad.constant([0.0]), 3)
    with pytest.raises(TypeError, match=r"one_hot: on_value must be a scalar"):
        ad.one_hot(ad.constant([0]), 3, on_value=ad.constant([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"constant: a value of shape \(3,\).*shape \(2, 2\)"):
        ad.constant([1, 2, 3], shape=(2, 2))
    with pytest.raises(TypeError, match=r"shape: out_type must be int32 or int64"):
        ad.shape(ad.zeros((2,)), out_type=np.float32)


def test_constant_with_shape_fills_or_reshapes_as_tensorflow():
    assert ad.constant(7, shape=(2, 3)).numpy().tolist() == [[7] * 3] * 2
    assert ad.constant([5.0], "float64", (2,)).numpy().tolist() == [5.0, 5.0]
    assert ad.constant([1, 2, 3, 4], shape=[2, 2]).numpy().tolist() == [[1, 2], [3, 4]]
    v = ad.Variable([1.0, 2.0])
    with ad.GradientTape() as tape:
        y = ad.reduce_sum(v.value() ** 2)
    assert tape.gradient(y, v).numpy().tolist() == [2.0, 4.0]  # value() is a recorded read


def test_repeat_band_part_and_jacobian_options_as_tensorflow():
    with pytest.raises(ValueError, match=r"repeat: repeats must be a non-negative int or 2 of "
                                         r"them for axis 0 of input shape \(2, 3\)"):
        ad.repeat(ad.ones((2, 3)), [1, 2, 3], axis=0)
    with pytest.raises(ValueError, match=r"band_part: input must have shape"):
        ad.linalg.band_part(ad.ones((3,)), 0, 0)
    x = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(ad.linalg.band_part(ad.constant(x), 0, 1).numpy(),
                                  np.triu(x) - np.triu(x, 2))
    v, w = ad.constant([1.0, 2.0]), ad.constant([[1.0], [2.0]])
    with ad.GradientTape(persistent=True) as tape:
        tape.watch([v, w])
        y, z = v * v, w * w
    np.testing.assert_array_equal(tape.jacobian(y, v, experimental_use_pfor=False,
                                                parallel_iterations=4).numpy(), [[2, 0], [0, 4]])
    np.testing.assert_array_equal(tape.batch_jacobian(z, w, experimental_use_pfor=True).numpy(),
                                  [[[2]], [[4]]])
