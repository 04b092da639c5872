"""Convolutions and pooling (gpuad/conv.py): values against a float64 reference written with a
loop over filter taps, TensorFlow's conventions (SAME, empty outputs, max pooling's ties and
padding, average pooling's counts), gradients where the VJP crops or the output is empty, and
the errors.  Every registered case is checked to second order by tests/test_op_registry.py."""
import itertools

import numpy as np
import pytest

import gpuad as ad
from gpuad.testing import check_gradients

rng = np.random.default_rng(41)


def reference_conv(x, w, strides, dilations, pads):
    """Channels last, any number of spatial axes, groups from the channel counts: one
    product per filter tap, summed."""
    d = x.ndim - 2
    x = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    k, (cg, co) = w.shape[:d], w.shape[-2:]
    groups = x.shape[-1] // cg
    out = [(n - (kk - 1) * r - 1) // s + 1 for n, kk, s, r in zip(x.shape[1:-1], k, strides,
                                                                    dilations)]
    y = np.zeros([x.shape[0]] + out + [co])
    for tap in itertools.product(*[range(kk) for kk in k]):
        rows = x[(slice(None),) + tuple(slice(t * r, t * r + (o - 1) * s + 1, s)
                                        for t, r, s, o in zip(tap, dilations, strides, out))]
        m = co // groups
        for g in range(groups):
            y[..., g * m:(g + 1) * m] += \
                rows[..., g * cg:(g + 1) * cg] @ w[tap][:, g * m:(g + 1) * m]
    return y


def same_pads(shape, k, strides, dilations):
    pads = []
    for n, kk, s, r in zip(shape, k, strides, dilations):
        total = max((-(-n // s) - 1) * s + (kk - 1) * r + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


@pytest.mark.parametrize("strides, dilations", [(1, 1), (2, 1), ((1, 3), 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("padding", ["SAME", "VALID", "explicit"])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_matches_the_reference(strides, dilations, padding, groups):
    x, w = rng.uniform(-1, 1, (2, 7, 6, 4)), rng.uniform(-1, 1, (3, 2, 4 // groups, 6))
    s = (strides,) * 2 if isinstance(strides, int) else strides
    r = (dilations,) * 2
    pads = same_pads((7, 6), (3, 2), s, r) if padding == "SAME" else \
        [(0, 0)] * 2 if padding == "VALID" else [(2, 0), (1, 3)]
    arg = padding if padding != "explicit" else [[0, 0]] + [list(p) for p in pads] + [[0, 0]]
    got = ad.nn.conv2d(x, w, strides, arg, dilations=dilations).numpy()
    np.testing.assert_allclose(got, reference_conv(x, w, s, r, pads), rtol=1e-12, atol=1e-12)


def test_conv_formats_batch_shapes_and_conv1d():
    x, w = rng.uniform(-1, 1, (2, 3, 5, 6, 4)), rng.uniform(-1, 1, (3, 3, 4, 2))
    want = reference_conv(x.reshape(6, 5, 6, 4), w, (2, 1), (1, 1),
                          same_pads((5, 6), (3, 3), (2, 1), (1, 1))).reshape(2, 3, 3, 6, 2)
    np.testing.assert_allclose(ad.nn.conv2d(x, w, [1, 2, 1, 1], "SAME").numpy(), want,
                               rtol=1e-12)  # batch_shape (2, 3)
    nchw = ad.nn.conv2d(np.moveaxis(x[0], -1, 1), w, [1, 1, 2, 1], "SAME", "NCHW").numpy()
    np.testing.assert_allclose(nchw, np.moveaxis(want[0], -1, 1), rtol=1e-12)
    x1, w1 = rng.uniform(-1, 1, (2, 9, 3)), rng.uniform(-1, 1, (4, 3, 5))
    for stride, dilation, padding in [(1, 1, "SAME"), (3, 1, "SAME"), (1, 2, "VALID")]:
        pads = same_pads((9,), (4,), (stride,), (dilation,)) if padding == "SAME" else [(0, 0)]
        want = reference_conv(x1, w1, (stride,), (dilation,), pads)
        got = ad.nn.conv1d(x1, w1, stride, padding, dilations=dilation).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)
        got = ad.nn.conv1d(np.moveaxis(x1, -1, 1), w1, stride, padding, "NCW", dilation)
        np.testing.assert_allclose(got.numpy(), np.moveaxis(want, -1, 1), rtol=1e-12)


def test_conv_gradients_where_padding_exceeds_the_filter_and_strides_skip_rows():
    """The input's gradient crops the cotangent where the padding is wider than the filter,
    and rows no window reads (stride 3 over 8 rows) get zero."""
    x, w = rng.uniform(-1, 1, (1, 8, 5, 2)), rng.uniform(-1, 1, (2, 2, 2, 3))
    check_gradients(lambda x, w: ad.nn.conv2d(x, w, [3, 2], [[0, 0], [3, 1], [0, 4], [0, 0]]),
                    [x, w], order=1)
    with ad.GradientTape() as tape:
        xt = ad.constant(x)
        tape.watch(xt)
        y = ad.nn.conv2d(xt, w, [3, 1], "VALID")  # windows start at rows 0, 3, 6: row 2 unread
    assert y.shape == (1, 3, 4, 3) and not tape.gradient(y, xt).numpy()[0, 2].any()


@pytest.mark.parametrize("groups", [1, 2])
def test_jacobians_push_the_whole_basis_through_one_convolution(groups):
    """Forward mode with a batch of tangents (the basis, as jacobian's replay sends it): the
    Jacobian of a convolution is the convolution of each basis element."""
    x, w = rng.uniform(-1, 1, (1, 3, 4, 2)), rng.uniform(-1, 1, (2, 2, 2 // groups, 4))
    pads = [(0, 1), (1, 0)]
    jx, jw = ad.jacobian(lambda x, w: ad.nn.conv2d(x, w, [1, 2], [[0, 0]] + [list(p) for p in pads]
                                                   + [[0, 0]]), argnums=(0, 1))(x, w)
    for jac, source, conv in [(jx, x, lambda e: reference_conv(e, w, (1, 2), (1, 1), pads)),
                              (jw, w, lambda e: reference_conv(x, e, (1, 2), (1, 1), pads))]:
        basis = np.eye(source.size).reshape((source.size,) + source.shape)
        want = np.moveaxis(np.stack([conv(e) for e in basis]), 0, -1)
        np.testing.assert_allclose(jac.numpy(), want.reshape(jac.shape), rtol=1e-12, atol=1e-12)


def test_an_output_that_just_does_not_fit_is_empty_as_tensorflow():
    """TF: output size trunc((in - span + stride) / stride); 0 is allowed, negative raises."""
    x, w = ad.constant(rng.uniform(-1, 1, (1, 4, 5, 1))), ad.constant(np.ones((5, 1, 1, 2)))
    with ad.GradientTape() as tape:
        tape.watch([x, w])
        y = ad.nn.conv2d(x, w, 1, "VALID")
        total = ad.reduce_sum(y)
    assert y.shape == (1, 0, 5, 2)
    gx, gw = tape.gradient(total, [x, w])
    assert gx.shape == x.shape and gw.shape == w.shape and not gx.numpy().any() \
        and not gw.numpy().any()
    assert ad.nn.max_pool2d(x, 5, 1, "VALID").shape == (1, 0, 1, 1)
    with pytest.raises(ValueError, match=r"conv2d: .*spans 5 .*only 3.*negative"):
        ad.nn.conv2d(x[:, :3], w, 1, "VALID")


def test_max_pool_gradient_goes_to_the_first_maximum_as_tensorflow():
    """Ties: the first maximum in row-major window order gets it (values of TF 2.21's CPU
    MaxPoolGrad); overlapping windows add."""
    def grad(x, *args):
        x = ad.constant(np.asarray(x, np.float32)[None, :, :, None])
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.nn.max_pool2d(x, *args)
        return y.numpy()[0, :, :, 0], tape.gradient(y, x).numpy()[0, :, :, 0]

    y, g = grad([[1.0, 1.0], [1.0, 1.0]], 2, 2, "VALID")
    assert y.tolist() == [[1.0]] and g.tolist() == [[1, 0], [0, 0]]
    y, g = grad([[0.0, 2.0, 2.0], [2.0, 1.0, 2.0], [0.0, 0.0, 2.0]], 2, 1, "VALID")
    assert y.tolist() == [[2, 2], [2, 2]] and g.tolist() == [[0, 2, 0], [1, 0, 1], [0, 0, 0]]
    # padding never wins, not even against -inf: the window's first element inside the input
    y, g = grad(np.full((3, 3), -np.inf), 2, 2, "SAME")
    assert (y == -np.inf).all() and g.tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 1]]
    y, g = grad(np.full((3, 3), -np.inf), 2, 2, [[0, 0], [1, 1], [1, 1], [0, 0]])
    assert g.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    y, _ = grad([[np.nan, 1.0], [3.0, 2.0]], 2, 2, "VALID")
    assert np.isnan(y).all()


def test_max_pool_of_integers_and_channels_first():
    x = rng.integers(-9, 9, (2, 3, 4, 5)).astype(np.int32)  # NCHW
    got = ad.nn.max_pool2d(x, [1, 1, 2, 3], [1, 1, 2, 2], "SAME", "NCHW")
    padded = np.pad(x, [(0, 0), (0, 0), (0, 0), (1, 1)], constant_values=-99)  # SAME: 5 -> 3
    want = np.stack([padded[:, :, i:i + 2, j:j + 3].max(axis=(2, 3)) for i in (0, 2)
                     for j in (0, 2, 4)], -1).reshape(2, 3, 2, 3)
    assert got.dtype == np.int32 and (got.numpy() == want).all()


def test_avg_pool_divides_by_the_inputs_each_window_covers():
    x = ad.reshape(ad.range(1.0, 13.0, dtype="float64"), (1, 3, 4, 1))
    got = ad.nn.avg_pool2d(x, 3, 2, "SAME").numpy()[0, :, :, 0]  # pads (1, 1) and (0, 1)
    want = [[np.mean([1, 2, 3, 5, 6, 7]), np.mean([3, 4, 7, 8])],
            [np.mean([5, 6, 7, 9, 10, 11]), np.mean([7, 8, 11, 12])]]
    np.testing.assert_allclose(got, want, rtol=1e-14)
    x = rng.uniform(-1, 1, (2, 5, 3))
    np.testing.assert_allclose(ad.nn.avg_pool(x, 2, 2, "VALID").numpy(),
                               (x[:, 0:4:2] + x[:, 1:5:2]) / 2, rtol=1e-14)


@pytest.mark.parametrize("call, error, match", [
    (lambda: ad.nn.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 1), np.float32), 1, "SAME"),
     TypeError, r"conv2d: input and filters must have one floating dtype, got float64 and "
                r"float32"),
    (lambda: ad.nn.conv2d(np.ones((1, 4, 4, 2), np.int32), np.ones((3, 3, 2, 1), np.int32), 1,
                          "SAME"), TypeError, r"conv2d: .*floating dtype, got int32"),
    (lambda: ad.nn.conv2d(np.ones((4, 4, 2)), np.ones((3, 3, 2, 1)), 1, "SAME"),
     ValueError, r"conv2d: input must have rank >= 4 .*\(4, 4, 2\)"),
    (lambda: ad.nn.conv1d(np.ones((1, 4, 2)), np.ones((3, 3, 1)), 1, "SAME"),
     ValueError, r"conv1d: the input's 2 channels must be a multiple of the filters' 3"),
    (lambda: ad.nn.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 1)), [1, 2, 2], "SAME"),
     ValueError, r"conv2d: strides must be .*1, 2 or 4 positive ints, got \[1, 2, 2\]"),
    (lambda: ad.nn.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 1)), [2, 1, 1, 1], "SAME"),
     ValueError, r"conv2d: strides \[2, 1, 1, 1\] must be 1 along the batch and channel"),
    (lambda: ad.nn.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 1)), 1, "FULL"),
     ValueError, r"conv2d: padding must be 'SAME', 'VALID' or a list"),
    (lambda: ad.nn.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 1)), 1,
                          [[1, 0], [0, 0], [0, 0], [0, 0]]),
     ValueError, r"conv2d: explicit padding .* must be \[0, 0\] along the batch and channel"),
    (lambda: ad.nn.conv2d(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 1)), 1, "SAME", "NHCW"),
     ValueError, r"conv2d: data_format must be 'NHWC' or 'NCHW', got 'NHCW'"),
    (lambda: ad.nn.max_pool2d(np.ones((1, 4, 4, 2)), 2, 1, [[0, 0], [2, 0], [0, 0], [0, 0]]),
     ValueError, r"max_pool2d: explicit padding .* must be smaller than the window \(2, 2\)"),
    (lambda: ad.nn.avg_pool2d(np.ones((1, 4, 4, 2)), 2, 1, [[0, 0], [1, 0], [0, 0], [0, 0]]),
     ValueError, r"avg_pool2d: padding must be 'SAME' or 'VALID'"),
    (lambda: ad.nn.avg_pool2d(np.ones((1, 4, 4, 2), np.int32), 2, 1, "SAME"),
     TypeError, r"avg_pool2d: input must be floating, got int32"),
    (lambda: ad.nn.max_pool(np.ones((4, 2)), 2, 1, "SAME"),
     ValueError, r"max_pool: input must have rank 3, 4 or 5, got shape \(4, 2\)"),
    (lambda: ad.nn.max_pool2d(np.ones((1, 4, 4, 2)), 0, 1, "SAME"),
     ValueError, r"max_pool2d: ksize must be a positive int"),
])
def test_bad_arguments_name_the_op_and_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.gpu
def test_conv_and_pools_on_cupy_match_numpy():
    x, w = rng.uniform(-1, 1, (2, 6, 5, 4)), rng.uniform(-1, 1, (3, 3, 2, 6))
    for dtype, rtol in [(np.float64, 1e-12), (np.float32, 1e-4)]:
        def step(x, w):
            with ad.GradientTape() as tape:
                tape.watch([x, w])
                y = ad.nn.conv2d(x, w, [2, 1], "SAME", dilations=1) ** 2 + \
                    ad.nn.conv2d(x[..., :2], w[..., :2, :], 1, [[0, 0], [1, 2], [0, 1], [0, 0]],
                                 dilations=2)[:, :3, :3]
                z = ad.reduce_sum(y) + ad.reduce_sum(ad.nn.max_pool2d(x, 2, 1, "SAME") ** 2) + \
                    ad.reduce_sum(ad.nn.avg_pool2d(x, 3, 2, "SAME") ** 2)
            return [z] + tape.gradient(z, [x, w])
        on_gpu = step(ad.constant(x.astype(dtype), backend="cupy"),
                      ad.constant(w.astype(dtype), backend="cupy"))
        on_cpu = step(ad.constant(x.astype(dtype), backend="numpy"),
                      ad.constant(w.astype(dtype), backend="numpy"))
        for a, b in zip(on_gpu, on_cpu):
            assert a.backend == "cupy"
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol, atol=rtol)
    check_gradients(lambda x, w: ad.nn.conv1d(x, w, 2, "SAME") ** 2,
                    [ad.constant(x[0], backend="cupy"), ad.constant(w[0, :, :2], backend="cupy")],
                    order=2)
