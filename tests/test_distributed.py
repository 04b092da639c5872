"""gpuad.distributed: data-parallel training under mpiexec (1, 2 and 4 ranks on the CPU), failure
behaviour, and the NCCL path at world size 1 (marked gpu).

This file is also the MPI program the tests launch: ``mpiexec -n N python
tests/test_distributed.py MODE OUT``.  The reference it is checked against is computed here,
in the pytest process, by plain single-process training on the whole batch.
"""
import importlib.util
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gpuad as ad
from gpuad import cuda
from gpuad import distributed as dist
from gpuad.nest import flatten

ROOT = pathlib.Path(__file__).resolve().parent.parent
BATCH, STEPS, LEARNING_RATE = 8, 3, 0.5
TIMEOUT = 60  # seconds for one mpiexec job: a hang fails the test instead of stalling CI


# ------------------------------------------------------------------ the training job

def make_data():
    rng = np.random.default_rng(42)
    x = rng.normal(size=(BATCH, 5)).astype(np.float32)
    labels = rng.integers(0, 3, BATCH)
    return x, np.eye(3, dtype=np.float32)[labels]


def make_params(seed):
    """A 5-6-3 tanh network; the output bias is float64 (a second dtype: a second bucket)."""
    rng = np.random.default_rng(seed)
    return [ad.Variable(rng.normal(size=(5, 6)).astype(np.float32), name="w1"),
            ad.Variable(rng.normal(size=6).astype(np.float32), name="b1"),
            ad.Variable(rng.normal(size=(6, 3)).astype(np.float32), name="w2"),
            ad.Variable(rng.normal(size=3), name="b2")]


def loss_of(params, x, onehot):
    w1, b1, w2, b2 = params
    logits = ad.tanh(x @ w1 + b1) @ w2 + ad.cast(b2, np.float32)
    return ad.reduce_mean(ad.nn.softmax_cross_entropy_with_logits(onehot, logits))


def train(params, x, onehot, step_hook=None, wrap=lambda tape: tape):
    """Plain SGD steps, with the gradients of ``wrap(tape)``."""
    for _ in range(STEPS):
        with ad.GradientTape() as tape:
            loss = loss_of(params, x, onehot)
        grads = wrap(tape).gradient(loss, params)
        for v, g in zip(params, grads):
            v.assign_sub(LEARNING_RATE * g)
        if step_hook:
            step_hook()
    return [v.numpy() for v in params]


def train_with_optimizer(params, x, onehot, wrap=lambda optimizer: optimizer):
    """Steps of SGD with momentum, ``wrap(optimizer).minimize``."""
    optimizer = wrap(ad.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=0.9))
    for _ in range(STEPS):
        optimizer.minimize(lambda: loss_of(params, x, onehot), params)
    return [v.numpy() for v in params]


def replicas_identical(params):
    """Whether every rank holds the same bits in every parameter."""
    comm, MPI = dist._world.comm, dist._world.mpi
    mine = b"".join(v.numpy().tobytes() for v in params)
    return comm.allreduce(mine == comm.bcast(mine, root=0), op=MPI.LAND)


def run_training(out):
    dist.init()
    n, r = dist.size(), dist.rank()
    params = make_params(seed=r)  # each rank starts elsewhere; broadcast_variables fixes it
    dist.broadcast_variables(params, root_rank=0)
    checks = [replicas_identical(params)]
    x, onehot = make_data()
    part = slice(r * BATCH // n, (r + 1) * BATCH // n)
    weights = train(params, x[part], onehot[part],
                    step_hook=lambda: checks.append(replicas_identical(params)),
                    wrap=lambda tape: dist.DistributedGradientTape(tape, bucket_bytes=100))
    collectives = dist._world.collectives
    params = make_params(seed=0)
    with_optimizer = train_with_optimizer(params, x[part], onehot[part],
                                          wrap=dist.DistributedOptimizer)
    checks.append(replicas_identical(params))
    values = {"f16": ad.constant(np.array([r + 0.5], np.float16)), "i": ad.constant([r - 1]),
              "f64": ad.constant(np.float64(r))}
    reduced = {op: dist.all_reduce(values, op=op) for op in ("average", "sum", "min", "max")}
    gathered = dist.all_gather(ad.constant(np.full((r + 1, 2), r, np.float32)))
    from_last = dist.broadcast(ad.constant([r]), root_rank=n - 1)
    if r == 0:
        np.savez(out, *weights, *with_optimizer, identical=np.array(checks),
                 collectives=np.array(collectives), gathered=gathered.numpy(),
                 from_last=from_last.numpy(),
                 **{f"{op} {k}": v.numpy() for op, d in reduced.items() for k, v in d.items()})


def run_raise(out):
    dist.init()
    if dist.rank() == 1:
        raise RuntimeError("boom on rank 1")
    dist.all_reduce(ad.constant([1.0]))  # the other ranks wait here for rank 1, forever
    time.sleep(TIMEOUT)


def run_mismatch(out):
    dist.init()
    shape = (3,) if dist.rank() == 1 else (2,)
    w = ad.Variable(np.ones(shape, np.float32), name="w")
    with ad.GradientTape() as tape:
        loss = ad.reduce_sum(w * w)
    try:
        dist.DistributedGradientTape(tape).gradient(loss, [w])
    except ValueError as error:
        print(f"rank {dist.rank()} ValueError: {error}", flush=True)
    try:
        dist.broadcast(ad.constant([1.0]), root_rank=dist.rank())  # every rank its own root
    except ValueError as error:
        print(f"rank {dist.rank()} root ValueError: {error}", flush=True)


# ------------------------------------------------------------------ launching

def mpiexec():
    beside = pathlib.Path(sys.executable).parent / "mpiexec"  # the mpich wheel's, in the venv
    return str(beside) if beside.exists() else shutil.which("mpiexec")


HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI4PY or mpiexec() is None,
                               reason="needs mpi4py and mpiexec (pip install 'gpuad[dist]')")


def launch(n, mode, tmp_path, *python_args):
    """Run this file under ``mpiexec -n n`` in ``mode``; (returncode, output, seconds)."""
    env = dict(os.environ, GPUAD_BACKEND="numpy", PYTHONPATH=str(ROOT))
    command = [mpiexec(), "-n", str(n), sys.executable, *python_args, __file__, mode,
               str(tmp_path / "out.npz")]
    start = time.perf_counter()
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                           start_new_session=True)  # a group: a hung job is killed whole
    try:
        output = job.communicate(timeout=TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        output = job.communicate()[0]
        pytest.fail(f"mpiexec -n {n} {mode} still ran after {TIMEOUT} s (a hang):\n{output}")
    return job.returncode, output, time.perf_counter() - start


@needs_mpi
@pytest.mark.parametrize("n", [1, 2, 4])
def test_data_parallel_training_matches_one_process_on_the_whole_batch(n, tmp_path):
    code, output, _ = launch(n, "train", tmp_path, "-m", "mpi4py")
    assert code == 0, output
    result = np.load(tmp_path / "out.npz")
    assert result["identical"].all() and len(result["identical"]) == STEPS + 2
    x, onehot = make_data()
    want = train(make_params(seed=0), x, onehot) + \
        train_with_optimizer(make_params(seed=0), x, onehot)
    for i, w in enumerate(want):
        got = result[f"arr_{i}"]
        assert got.dtype == w.dtype
        np.testing.assert_allclose(got, w, rtol=2e-5, atol=2e-6)
    # one broadcast per variable; then per step, in 100-byte buckets: w1 (120 bytes) alone,
    # b1 and w2 (24 + 72) together, b2 (float64) apart
    assert result["collectives"] == 4 + 3 * STEPS
    ranks = np.arange(n)
    for op, want in [("average", [np.mean(ranks + 0.5), int(np.mean(ranks - 1)), np.mean(ranks)]),
                     ("sum", [np.sum(ranks + 0.5), np.sum(ranks - 1), np.sum(ranks)]),
                     ("min", [0.5, -1, 0.0]), ("max", [n - 0.5, n - 2, n - 1.0])]:
        for key, dtype, w in zip(["f16", "i", "f64"], [np.float16, np.int32, np.float64], want):
            got = result[f"{op} {key}"]
            assert got.dtype == dtype and got.reshape(-1)[0] == w, (op, key, got, w)
    assert result["gathered"].tolist() == [[r, r] for r in ranks for _ in range(r + 1)]
    assert result["from_last"].tolist() == [n - 1]


@needs_mpi
def test_a_raising_rank_aborts_the_job_with_its_error(tmp_path):
    # without `python -m mpi4py`: init()'s excepthook is what aborts the waiting ranks
    code, output, seconds = launch(2, "raise", tmp_path)
    assert code != 0
    assert "boom on rank 1" in output and "rank 1 of 2 raised" in output, output
    assert seconds < TIMEOUT / 2


@needs_mpi
def test_mismatched_shapes_are_reported_on_every_rank_with_the_tensor_name(tmp_path):
    code, output, _ = launch(2, "mismatch", tmp_path)
    assert code == 0, output
    for r in range(2):
        assert f"rank {r} ValueError" in output, output
    assert "'w (sources[0])' differs between ranks" in output
    assert "rank 1: 'w (sources[0])' shape (3,) dtype float32" in output, output
    assert "rank 0: 'w (sources[0])' shape (2,) dtype float32" in output, output
    assert output.count("root ValueError: gpuad.distributed.broadcast: the ranks pass different "
                        "root_rank (rank 0: root_rank=0, rank 1: root_rank=1)") == 2, output


# ------------------------------------------------------------------ in this process: one rank

mpi4py_here = pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py (pip install "
                                 "'gpuad[dist]')")


@mpi4py_here
def test_world_of_one_reduces_gathers_and_broadcasts_structures():
    dist.init()
    dist.init()  # again: nothing happens
    assert (dist.rank(), dist.size(), dist.local_rank(), dist.local_size()) == (0, 1, 0, 1)
    tree = {"a": ad.constant([1.0, 2.0]), "b": [ad.constant(np.arange(6.0).reshape(2, 3)),
                                                ad.constant(np.float16(3.0))],
            "i": ad.constant([7, -7]), "z": ad.constant(np.array([1 + 2j], np.complex64))}
    for op in ("average", "sum", "min", "max"):
        if op in ("min", "max"):
            tree.pop("z", None)
        out = dist.all_reduce(tree, op=op)
        for got, want in zip(flatten(out)[0], flatten(tree)[0]):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    gathered = dist.all_gather([ad.constant([[1.0, 2.0]]), ad.constant([True, False])])
    assert gathered[0].shape == (1, 2) and gathered[1].numpy().tolist() == [True, False]
    np.testing.assert_array_equal(dist.broadcast(tree)["b"][0].numpy(),
                                  np.arange(6.0).reshape(2, 3))


@mpi4py_here
def test_buckets_are_reduced_during_the_backward_pass_last_layer_first(monkeypatch):
    """Overlap: a bucket's collective starts as soon as its gradients are final, while the
    tape still holds the records of the first layers; the result is the plain gradient."""
    dist.init()
    params = make_params(seed=3)
    x, onehot = make_data()
    inner = ad.GradientTape()
    started = []  # (records the walk has not reached yet, the bucket's size)
    original = dist._start_reduce
    monkeypatch.setattr(dist, "_start_reduce", lambda flat, how: started.append(
        (len(inner._records), flat.size)) or original(flat, how))
    with inner:
        loss = loss_of(params, x, onehot)
    grads = dist.DistributedGradientTape(inner, bucket_bytes=1).gradient(loss, params)
    with ad.GradientTape() as tape:
        plain = tape.gradient(loss_of(params, x, onehot), params)
    for g, want in zip(grads, plain):
        np.testing.assert_allclose(g.numpy(), want.numpy(), rtol=1e-6)
    # one bucket per Variable, the output layer's first: b2 (3), w2 (18), b1 (6), w1 (30)
    assert [size for _, size in started] == [3, 18, 6, 30]
    assert started[0][0] > 0 and started[-1][0] < started[0][0]


@mpi4py_here
def test_gradient_tape_keeps_structure_dtypes_and_none():
    dist.init()
    w16 = ad.Variable(np.array([1.5, -2.0], np.float16), name="w16")
    w64 = ad.Variable(np.ones((2, 2)), name="w64")
    unused = ad.Variable(1.0, name="unused")
    with dist.DistributedGradientTape(ad.GradientTape()) as tape:
        loss = ad.reduce_sum(ad.cast(w16 * w16, np.float64)) + ad.reduce_sum(w64 * 3.0)
    grads = tape.gradient(loss, {"a": w16, "b": [w64, unused]})
    assert grads["a"].dtype == np.float16 and grads["b"][0].dtype == np.float64
    np.testing.assert_array_equal(grads["a"].numpy(), [3.0, -4.0])
    np.testing.assert_array_equal(grads["b"][0].numpy(), np.full((2, 2), 3.0))
    assert grads["b"][1] is None


@mpi4py_here
def test_distributed_optimizer_is_the_optimizer_with_averaged_gradients():
    dist.init()
    w = ad.Variable([1.0, -1.0], name="w")
    opt = dist.DistributedOptimizer(ad.optimizers.SGD(learning_rate=0.25))
    opt.learning_rate = 0.5  # set on the wrapped optimizer
    with ad.GradientTape() as tape:
        loss = ad.reduce_sum(w * w)
    opt.minimize(loss, [w], tape=tape)
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0])  # w - 0.5 * 2w
    assert int(opt.iterations) == 1 and float(opt.learning_rate) == 0.5


def test_buckets_are_per_backend_and_dtype_and_bounded_in_bytes():
    f32 = [np.zeros(n, np.float32) for n in (10, 10, 30, 1)]  # 40, 40, 120, 4 bytes
    assert dist.plan_buckets(f32, bucket_bytes=80) == [[0, 1], [2], [3]]
    assert dist.plan_buckets(f32, bucket_bytes=1000) == [[0, 1, 2, 3]]
    mixed = [np.zeros(4, np.float16), np.zeros(4, np.float64), np.zeros(4, np.float32)]
    assert dist.plan_buckets(mixed) == [[0, 2], [1]]  # float16 travels in float32
    assert dist.bucket_dtype(np.float16) == np.float32


@mpi4py_here
def test_errors_name_the_op_and_the_argument(monkeypatch):
    dist.init()
    with pytest.raises(ValueError, match="all_reduce: op='mean'"):
        dist.all_reduce(ad.constant([1.0]), op="mean")
    with pytest.raises(TypeError, match="tensor 'flags' has dtype bool"):
        dist.all_reduce(ad.constant([True]), name="flags")
    with pytest.raises(TypeError, match="complex64, which has no max"):
        dist.all_reduce(ad.constant(np.array([1j], np.complex64)), op="max")
    with pytest.raises(ValueError, match="root_rank=1 is not a rank of this job"):
        dist.broadcast(ad.constant([1.0]), root_rank=1)
    with pytest.raises(ValueError, match="tensor 's' is 0-d"):
        dist.all_gather(ad.constant(1.0), name="s")
    with pytest.raises(TypeError, match=r"variables\[0\] is a Tensor"):
        dist.broadcast_variables([ad.constant(1.0)])
    traced = ad.function(lambda x: dist.all_reduce(x * 2.0))  # a trace has no data to send
    with pytest.raises(ad.TraceError, match="gpuad.distributed.all_reduce of a Tensor"):
        traced(ad.constant([1.0]))
    monkeypatch.setattr(dist._world, "comm", None)
    with pytest.raises(RuntimeError, match="rank: init\\(\\) was not called"):
        dist.rank()
    with pytest.raises(RuntimeError, match="DistributedGradientTape: init\\(\\) was not"):
        dist.DistributedGradientTape(ad.GradientTape())
    for collective in (dist.all_reduce, dist.all_gather, dist.broadcast):
        with pytest.raises(RuntimeError, match=f"{collective.__name__}: init\\(\\) was not"):
            collective(ad.constant([1.0]))
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    with pytest.raises(RuntimeError, match="mpi4py is not installed; pip install 'gpuad"):
        dist.init()


def test_nccl_binding_loads_or_says_what_to_install():
    try:
        nccl = cuda.nccl()
    except RuntimeError as error:  # no cupy, or no NCCL library
        assert "pip install 'gpuad[cuda" in str(error)
        return
    assert len(nccl.get_unique_id()) == 128  # libnccl loaded: no GPU needed for an id
    for name in dist._NCCL_TYPES.values():
        assert isinstance(getattr(nccl, name), int)


def test_device_names():
    assert ad.backends.parse_device("/CPU:0") == ("numpy", None)
    with ad.device("cpu"):
        assert ad.get_backend() == "numpy"
    with pytest.raises(ValueError, match="cannot read device name 'tpu:0'"):
        ad.device("tpu:0").__enter__()
    if not ad.backends.CUDA_AVAILABLE:
        with pytest.raises(RuntimeError, match="device: '/GPU:0' needs a GPU"):
            ad.backends.parse_device("/GPU:0")


# ------------------------------------------------------------------ NCCL at world size 1

@pytest.mark.gpu
@mpi4py_here
def test_nccl_all_reduce_gather_broadcast_and_tape_on_the_gpu():
    dist.init()
    with ad.device(f"gpu:{dist.local_rank()}"):
        x = ad.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
        h = ad.constant(np.array([1.5, 2.5], np.float16))
        before = dist._world.collectives
        out = dist.all_reduce([x, h, ad.constant([3, 4])], op="sum")
        assert dist._world.collectives - before == 2  # float32 (with float16) and int32
        assert out[0].backend == "cupy" and out[1].dtype == np.float16
        np.testing.assert_array_equal(out[0].numpy(), x.numpy())
        np.testing.assert_array_equal(out[1].numpy(), h.numpy())
        np.testing.assert_array_equal(dist.all_gather(x).numpy(), x.numpy())
        np.testing.assert_array_equal(dist.broadcast(x).numpy(), x.numpy())
        w = ad.Variable(np.ones(3, np.float32), name="w")
        with dist.DistributedGradientTape(ad.GradientTape()) as tape:
            loss = ad.reduce_sum(w * w)
        g = tape.gradient(loss, w)
        assert g.backend == "cupy"
        np.testing.assert_array_equal(g.numpy(), [2.0, 2.0, 2.0])


if __name__ == "__main__":
    {"train": run_training, "raise": run_raise, "mismatch": run_mismatch}[sys.argv[1]](
        sys.argv[2])
