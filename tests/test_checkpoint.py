"""ad.train.Checkpoint / CheckpointManager: what is tracked, optimizer slots, the file format
(no pickle), atomic writes under a killed writer, restoring across backends."""
import json
import os
import select
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import gpuad as ad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Dense:
    def __init__(self, n, seed):
        rng = np.random.default_rng(seed)
        self.kernel = ad.Variable(rng.standard_normal((n, 2)).astype(np.float32))
        self.bias = ad.Variable(np.zeros(2, np.float32))


class Model:
    def __init__(self, seed=0):
        self.layers = [Dense(3, seed), Dense(2, seed + 1)]
        self.extra = {"scale": ad.Variable(1.5)}
        self.alias = self.layers[0].kernel  # saved once, under its first path
        self.not_tracked = ad.constant([1.0])


def train(model, opt, steps=2):
    for _ in range(steps):
        variables = [model.layers[0].kernel, model.layers[1].bias, model.extra["scale"]]
        with ad.GradientTape() as tape:
            loss = ad.reduce_sum(variables[0] ** 2) + ad.reduce_sum(variables[1]) * \
                variables[2]
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))


def values(model):
    return [model.layers[0].kernel.numpy(), model.layers[0].bias.numpy(),
            model.layers[1].kernel.numpy(), model.layers[1].bias.numpy(),
            model.extra["scale"].numpy()]


def test_round_trip_with_optimizer_slots_created_on_restore(tmp_path):
    model, opt = Model(0), ad.optimizers.Adam(0.1, amsgrad=True)
    train(model, opt)
    path = ad.train.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")
    assert path == str(tmp_path / "ckpt-1")
    index = json.loads((tmp_path / "ckpt-1.index.json").read_text())
    assert "model/layers/0/kernel" in index["entries"]
    assert "optimizer/slots/model/layers/0/kernel/velocity_hat" in index["entries"]
    assert not any("alias" in p or "not_tracked" in p for p in index["entries"])

    fresh, opt2 = Model(5), ad.optimizers.Adam(0.1, amsgrad=True)
    assert len(opt2.variables) == 2  # no slots yet: the restore makes them
    ad.train.Checkpoint(model=fresh, optimizer=opt2).restore(path).assert_consumed()
    for a, b in zip(values(fresh), values(model)):
        np.testing.assert_array_equal(a, b)
    assert int(opt2.iterations) == 2 and len(opt2.variables) == 2 + 3 * 3
    # both continue identically
    train(model, opt)
    train(fresh, opt2)
    for a, b in zip(values(fresh), values(model)):
        np.testing.assert_array_equal(a, b)


def test_write_read_and_status(tmp_path):
    v = ad.Variable([1.0, 2.0])
    ckpt = ad.train.Checkpoint(v=v, nested=[{"w": ad.Variable(3.0)}])
    prefix = ckpt.write(tmp_path / "weights")
    v.assign([0.0, 0.0])
    ckpt.read(prefix).assert_consumed()
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    status = ad.train.Checkpoint(v=v, other=ad.Variable(1.0)).read(prefix)
    with pytest.raises(AssertionError, match="nested/0/w"):
        status.assert_consumed()
    assert status.expect_partial() is status
    assert ad.train.Checkpoint(v=v).restore(None).missing == []


def test_no_pickle_in_the_file(tmp_path):
    ad.train.Checkpoint(v=ad.Variable([1.0])).write(tmp_path / "c")
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        for name in z.namelist():
            np.lib.format.read_array(z.open(name), allow_pickle=False)


def test_bad_checkpoints_are_named(tmp_path):
    v = ad.Variable([1.0, 2.0])
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        ad.train.Checkpoint(v=v).restore(tmp_path / "missing")
    ad.train.Checkpoint(v=ad.Variable([1.0, 2.0, 3.0])).write(tmp_path / "c")
    with pytest.raises(ValueError, match=r"'v' has shape \(3,\) in the checkpoint, the "
                                         r"variable \(2,\)"):
        ad.train.Checkpoint(v=v).read(tmp_path / "c")
    with pytest.raises(ValueError, match="not an object"):
        ad.train.Checkpoint(x=1.0)


def test_manager_keeps_max_to_keep(tmp_path):
    v = ad.Variable(0.0)
    ckpt = ad.train.Checkpoint(v=v)
    manager = ad.train.CheckpointManager(ckpt, tmp_path, max_to_keep=2)
    for k in range(4):
        v.assign(float(k))
        manager.save()
    assert [os.path.basename(p) for p in manager.checkpoints] == ["ckpt-3", "ckpt-4"]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "ckpt-3.index.json", "ckpt-3.npz",
                                            "ckpt-4.index.json", "ckpt-4.npz"]
    assert ad.train.latest_checkpoint(tmp_path) == str(tmp_path / "ckpt-4")
    again = ad.train.CheckpointManager(ad.train.Checkpoint(v=v), tmp_path, max_to_keep=2)
    assert again.checkpoints == manager.checkpoints
    v.assign(-1.0)
    status = ad.train.Checkpoint(v=v).restore(again.latest_checkpoint)
    assert float(v) == 3.0
    assert status.unused == ["save_counter"] or not status.unused
    assert ad.train.latest_checkpoint(tmp_path / "nothing") is None


WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    import gpuad as ad
    v = ad.Variable(np.full(4 << 20, 1.0, np.float32))  # 16 MB
    manager = ad.train.CheckpointManager(ad.train.Checkpoint(v=v), sys.argv[1], max_to_keep=3)
    manager.save()
    v.assign(np.full(4 << 20, 2.0, np.float32))
    real_fsync = os.fsync
    def stall(fd):  # the data file is written: stall before its rename, to be killed there
        real_fsync(fd)
        print("saving", flush=True)
        import time; time.sleep(60)
    os.fsync = stall
    manager.save()
    print("finished", flush=True)
""")


def test_killed_writer_leaves_the_previous_checkpoint_readable(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": ROOT, "GPUAD_BACKEND": "numpy"})
    try:
        ready, _, _ = select.select([writer.stdout], [], [], 120)  # never a hang
        assert ready and writer.stdout.readline().strip() == "saving"  # now mid-save
        assert any(".tmp-" in name for name in os.listdir(tmp_path))
        writer.kill()
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert not (tmp_path / "ckpt-2.index.json").exists()
    latest = ad.train.latest_checkpoint(tmp_path)
    assert latest == str(tmp_path / "ckpt-1")
    v = ad.Variable(np.zeros(4 << 20, np.float32))
    ad.train.Checkpoint(v=v).restore(latest)
    assert float(ad.reduce_min(v)) == 1.0 == float(ad.reduce_max(v))


def test_a_data_file_from_another_write_is_refused(tmp_path):
    ad.train.Checkpoint(v=ad.Variable([1.0])).write(tmp_path / "a")
    ad.train.Checkpoint(v=ad.Variable([2.0])).write(tmp_path / "b")
    os.replace(tmp_path / "b.npz", tmp_path / "a.npz")  # as an interrupted overwrite would
    with pytest.raises(ValueError, match="interrupted write"):
        ad.train.Checkpoint(v=ad.Variable([0.0])).read(tmp_path / "a")


def test_restores_onto_the_variables_backend(tmp_path):
    """A checkpoint records each array's backend, and restores onto whatever backend the
    receiving variable lives on (the NumPy half; the CuPy half is the gpu test below)."""
    ad.train.Checkpoint(v=ad.Variable([1.0, 2.0])).write(tmp_path / "c")
    index = json.loads((tmp_path / "c.index.json").read_text())
    index["entries"]["v"]["backend"] = "cupy"  # as written on a GPU
    (tmp_path / "c.index.json").write_text(json.dumps(index))
    with ad.backend("numpy"):
        v = ad.Variable([0.0, 0.0])
    ad.train.Checkpoint(v=v).read(tmp_path / "c").assert_consumed()
    assert v.backend == "numpy" and v.numpy().tolist() == [1.0, 2.0]


@pytest.mark.gpu
def test_save_on_cupy_restore_on_numpy(tmp_path):
    from gpuad import backends
    if not backends.CUDA_AVAILABLE:
        pytest.skip("no CUDA device")
    with ad.backend("cupy"):
        model, opt = Model(0), ad.optimizers.Adam(0.1)
        train(model, opt)
        path = ad.train.Checkpoint(model=model, optimizer=opt).save(tmp_path / "ckpt")
    with ad.backend("numpy"):
        fresh, opt2 = Model(3), ad.optimizers.Adam(0.1)
        ad.train.Checkpoint(model=fresh, optimizer=opt2).restore(path).assert_consumed()
    assert fresh.layers[0].kernel.backend == "numpy"
    for a, b in zip(values(fresh), values(model)):
        np.testing.assert_array_equal(a, b)
    with ad.backend("cupy"):
        back = Model(4)
        ad.train.Checkpoint(model=back).restore(path).expect_partial()
    assert back.layers[0].kernel.backend == "cupy"
    np.testing.assert_array_equal(back.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())
