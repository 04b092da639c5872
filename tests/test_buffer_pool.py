"""The NumPy buffer pool (gpuad.numpy_memory.empty): large results reuse freed buffers, and never
one that anything still references.

Each table entry's forward, gradient and tangent on 1 MiB inputs (pooled buffers, writing into
fresh intermediates) must equal the same rules on a small slice (plain NumPy allocations).
"""
import threading

import numpy as np
import pytest

import gpuad as ad
from gpuad import numpy_memory, table

from test_table import entry_inputs  # noqa: E402  (inputs in each entry's domain)

ENTRIES = table.load()
BIG = (512, 512)  # 1 MiB in float32, 2 MiB in float64: above numpy_memory.POOL_MIN_BYTES


def _inputs(name, dtype, rng):
    values = entry_inputs(name, [BIG] * len(ENTRIES[name].inputs), rng)
    return [v if v.dtype == bool else v.astype(dtype) for v in values]


def _all_modes(name, arrays):
    """Forward value, every input's gradient (cotangent 1.5) and the tangent (all ones)."""
    f = getattr(ad, name)
    xs = [ad.convert_to_tensor(a) for a in arrays]
    floating = [x for x in xs if x.dtype.kind == "f"]
    with ad.GradientTape() as tape:
        tape.watch(floating)
        y = f(*xs)
    grads = tape.gradient(y, floating, output_gradients=ad.fill(y.shape, 1.5, y.dtype),
                          unconnected_gradients="zero")
    with ad.ForwardAccumulator(floating, [ad.ones_like(x) for x in floating]) as acc:
        t = acc.jvp(f(*xs), unconnected_gradients="zero")
    return [y.numpy()] + [g.numpy() for g in grads] + [t.numpy()]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items()
                                        if any(a not in e.ctypes for a in e.inputs)))
def test_pooled_results_equal_the_plain_numpy_ones(name, dtype):
    arrays = _inputs(name, dtype, np.random.default_rng(1))
    with ad.backend("numpy"), np.errstate(all="ignore"):
        big = _all_modes(name, arrays)
        small = _all_modes(name, [a[:3, :5] for a in arrays])
    for i, (b, s) in enumerate(zip(big, small)):
        assert b.shape == BIG and b.dtype == s.dtype, (name, i, b.shape, b.dtype, s.dtype)
        np.testing.assert_allclose(b[:3, :5], s, rtol=1e-6, atol=0, err_msg=f"{name} [{i}]")


def _step(x):
    """W3's value and gradient."""
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
    return y, tape.gradient(y, x)


def _w3_closed_form(x):
    s, e = np.sin(x), np.exp(-x * x)
    return np.sum(s * s * e), (2 * s * np.cos(x) - 2 * x * s * s) * e


def test_repeated_steps_reuse_the_same_buffers():
    x = ad.constant(np.random.default_rng(2).uniform(-2, 2, 1 << 20))
    with ad.backend("numpy"):
        for _ in range(2):  # the second step runs while the first one's gradient lives
            y, g = _step(x)
        held = numpy_memory.pool_bytes()
        for _ in range(5):
            y, g = _step(x)
        assert numpy_memory.pool_bytes() == held
    want = _w3_closed_form(x.numpy())
    np.testing.assert_allclose(float(y), want[0], rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), want[1], rtol=1e-12, atol=1e-15)


def test_a_buffer_is_not_reused_while_a_view_of_it_lives():
    x = ad.constant(np.linspace(-1.0, 1.0, 1 << 18))
    y = ad.sin(x)
    view = y.numpy()[::3]  # keeps y's buffer referenced after y is gone
    want = np.sin(x.numpy())[::3]
    del y
    for _ in range(3):
        z = ad.cos(x)  # noqa: F841 (allocates, and frees the previous z)
    np.testing.assert_array_equal(view, want)


def test_a_gradient_returned_to_the_user_is_never_written_again():
    x = ad.constant(np.linspace(-1.0, 1.0, 1 << 18))
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ad.reduce_sum(x * x + ad.sin(x))
    first = tape.gradient(y, x).numpy()
    kept = first.copy()
    second = tape.gradient(y, x).numpy()
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(second, 2 * x.numpy() + np.cos(x.numpy()), rtol=1e-15)


def test_free_buffers_beyond_the_limit_are_released(monkeypatch):
    numpy_memory.free_pooled_buffers()
    monkeypatch.setattr(numpy_memory, "POOL_FREE_LIMIT", 3 << 20)
    for n in range(1, 9):  # 8 sizes of 1..8 MiB, each freed at once
        numpy_memory.empty((n << 18,), "float32")
    assert numpy_memory.pool_bytes() <= (3 << 20) + (8 << 20)  # the free ones, and the last
    assert numpy_memory.free_pooled_buffers() > 0
    assert numpy_memory.pool_bytes() == 0


def test_threads_never_share_a_buffer():
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-2, 2, 1 << 18) for _ in range(4)]
    results, errors = [None] * 4, []

    def worker(i):
        try:
            with ad.backend("numpy"):
                for _ in range(20):
                    y, g = _step(ad.constant(xs[i]))
                    results[i] = (float(y), g.numpy().copy())
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for x, (y, g) in zip(xs, results):
        want = _w3_closed_form(x)
        np.testing.assert_allclose(y, want[0], rtol=1e-12)
        np.testing.assert_allclose(g, want[1], rtol=1e-12, atol=1e-15)


def test_gradients_are_never_summed_into_a_users_array():
    x = ad.constant(np.linspace(-1.0, 1.0, 1 << 18))
    dy = np.full(x.shape, 0.5)  # add's gradient is dy itself, twice: the sum must be new
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.add(x, x)
    g = tape.gradient(y, x, output_gradients=dy)
    np.testing.assert_array_equal(dy, 0.5)
    np.testing.assert_array_equal(g.numpy(), 1.0)


def test_sole_view_sees_every_other_holder_of_the_memory():
    a = numpy_memory.empty((1 << 18,), "float32")
    assert numpy_memory.sole_view(a, 1)
    other = a.reshape(512, 512)  # another view of the same pooled buffer
    assert not numpy_memory.sole_view(a, 1)
    del other
    assert numpy_memory.sole_view(a, 1)
    alias = a  # noqa: F841
    assert not numpy_memory.sole_view(a, 1)
    user = np.ones(1 << 18)
    assert not numpy_memory.sole_view(user[::2], 0)  # a view of memory someone else owns
    user.flags.writeable = False
    assert not numpy_memory.sole_view(user, 1)
