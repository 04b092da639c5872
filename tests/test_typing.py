"""The public API's type hints (PEP 561: gpuad ships py.typed): mypy checks the package, and a
user's program typed against it."""
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

USER_PROGRAM = textwrap.dedent("""
    import numpy as np
    import gpuad as ad

    x: ad.Tensor = ad.constant([1.0, 2.0])
    v = ad.Variable(np.zeros(2, np.float32))
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ad.reduce_sum(ad.sin(x) * v)
    g = tape.gradient(y, [x, v])
    j = tape.jacobian(y, x)
    with ad.ForwardAccumulator(x, ad.ones_like(x)) as acc:
        z = x * x
    t = acc.jvp(z)
    count: int = ad.function(lambda a: a * 2).experimental_get_tracing_count()
    name: str = ad.get_backend()
    sample: ad.Tensor = ad.random.normal((2, 3), seed=0)
    ad.testing.check_gradients(ad.sin, [[0.5]])

    # a training step: an optimizer, a schedule, a loss from gpuad.nn, a checkpoint
    w = ad.Variable(np.ones((3, 2), np.float32), name="w")
    schedule = ad.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    opt = ad.optimizers.Adam(learning_rate=schedule)
    with ad.GradientTape() as tape:
        logits = ad.matmul(ad.ones((4, 3)), w)
        loss: ad.Tensor = ad.reduce_mean(ad.nn.softmax_cross_entropy_with_logits(
            ad.one_hot([0, 1, 1, 0], 2), logits))
    grads = tape.gradient(loss, [w])
    opt.apply_gradients(zip(grads, [w]))
    lr: ad.Tensor = opt.learning_rate
    clipped, total = ad.clip_by_global_norm([ad.ones(2)], 1.0)
    ckpt = ad.train.Checkpoint(model=w, optimizer=opt)
    manager = ad.train.CheckpointManager(ckpt, "/tmp/ckpts", max_to_keep=2)
    path: str = manager.save()
    ckpt.restore(ad.train.latest_checkpoint("/tmp/ckpts")).assert_consumed()

    # linalg: factors unpack as tuples; compute_uv=False is one Tensor
    a = ad.constant([[2.0, 1.0], [1.0, 3.0]])
    s, u, vt = ad.linalg.svd(a)
    singular: ad.Tensor = ad.linalg.svd(a, compute_uv=False)
    q, r = ad.linalg.qr(a)
    e, vecs = ad.linalg.eigh(a)
    sign, logabs = ad.linalg.slogdet(a)
    x2: ad.Tensor = ad.linalg.solve(a, ad.linalg.cholesky(a)) @ ad.linalg.inv(a)

    # nn, math and shape ops
    image = ad.random.uniform((1, 5, 5, 2), seed=1)
    feature_map: ad.Tensor = ad.nn.relu(ad.nn.conv2d(image, ad.ones((3, 3, 2, 4)), 1, "SAME"))
    pooled = ad.nn.max_pool2d(feature_map, 2, 2, "VALID")
    mean, variance = ad.nn.moments(pooled, axes=[0, 1, 2])
    best = ad.math.top_k(ad.constant([3.0, 1.0, 2.0]), k=2)
    top: ad.Tensor = best.values
    idx: ad.Tensor = best.indices
    parts: list[ad.Tensor] = ad.split(ad.range(6), 3)
    big = ad.where(ad.greater(x, 1.0), ad.exp(x), ad.math.log1p(x))
    mixed: ad.Tensor = ad.concat([ad.reshape(x, [2, 1]), ad.expand_dims(x, 1)], axis=1)

    # transforms compose: a per-example gradient
    def f(p: ad.Tensor) -> ad.Tensor:
        return ad.reduce_sum(ad.tanh(p) ** 2)
    per_example = ad.vmap(ad.grad(f))(ad.ones((4, 3)))
    value, vjp_fn = ad.vjp(f, x)
    cached = ad.recompute_grad(f)

    # variables: slices assign into the variable; assign returns the variable
    v2 = ad.Variable([1.0, 2.0, 3.0, 4.0])
    v2[1:3].assign([9.0, 8.0])
    v2.assign_add(ad.ones(4)).scatter_nd_update([[0]], [5.0])
    read: ad.Tensor = v2.read_value()
    """)


def test_mypy_accepts_the_package_and_a_program_using_it(tmp_path):
    pytest.importorskip("mypy")
    program = tmp_path / "user_program.py"
    program.write_text(USER_PROGRAM)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "setup.cfg"),
         "--cache-dir", str(tmp_path / "cache"), str(ROOT / "gpuad"), str(program)],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_package_is_marked_typed():
    assert (ROOT / "gpuad" / "py.typed").exists()
