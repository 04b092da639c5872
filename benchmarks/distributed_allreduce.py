"""Communication cost per data-parallel training step for W4's parameters, on 1, 2 and 4 ranks.

W4 (``test_w4_mlp.py``) is a 784-512-512-10 MLP: six float32 gradients, 669,706 numbers,
2.68 MB, averaged across the ranks once per step.  Each row times one step's worth of that
communication, on the CPU (the NumPy backend, MPI over shared memory):

* ``MPI Allreduce (floor)``: mpi4py's ``Allreduce`` of one ready 2.68 MB buffer, the transport
  alone;
* ``all_reduce, one bucket``: ``gpuad.distributed.all_reduce`` of the six gradients as
  ``DistributedGradientTape`` does it (25 MiB buckets: one collective), with the signature
  check, packing, averaging and unpacking;
* ``all_reduce, per tensor``: the same with ``bucket_bytes=0``, one collective per gradient;
* ``signature check``: the 16-byte all-reduce that compares names, shapes and dtypes.

A repetition is timed on every rank between barriers; its time is the slowest rank's; the
figure is the median over repetitions (and the range).  Usage::

    python benchmarks/distributed_allreduce.py                # launches mpiexec -n 1, 2, 4
    mpiexec -n 4 python -m mpi4py benchmarks/distributed_allreduce.py --worker   # one size

Results and the scaling model: benchmarks/README.md, "Data-parallel communication".
"""
import argparse
import json
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

import gpuad as ad
from gpuad import distributed as dist

SIZES = [784, 512, 512, 10]  # W4's layers (test_w4_mlp.py)
SHAPES = [shape for n_in, n_out in zip(SIZES[:-1], SIZES[1:]) for shape in [(n_in, n_out),
                                                                            (n_out,)]]


def worker(repeats):
    dist.init()
    comm, MPI = dist._world.comm, dist._world.mpi
    rng = np.random.default_rng(dist.rank())
    grads = [ad.constant(rng.normal(size=s).astype(np.float32)) for s in SHAPES]
    nbytes = sum(g.size * 4 for g in grads)
    flat = np.concatenate([g.numpy().reshape(-1) for g in grads])
    names = [f"g{i}" for i in range(len(grads))]
    cases = {
        "MPI Allreduce (floor)": lambda: comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM),
        "all_reduce, one bucket": lambda: dist.all_reduce(grads),
        "all_reduce, per tensor": lambda: dist.all_reduce(grads, bucket_bytes=0),
        "signature check": lambda: dist._check_agree(
            "all_reduce", dist._signature(names, [g._value for g in grads]), "average"),
    }
    rows = []
    for label, run in cases.items():
        for _ in range(3):  # warm-up: first-touch of buffers, MPI's connection setup
            run()
        times = []
        for _ in range(repeats):
            comm.Barrier()
            start = time.perf_counter()
            run()
            times.append(comm.reduce(time.perf_counter() - start, op=MPI.MAX, root=0))
        if dist.rank() == 0:
            rows.append({"case": label, "ranks": dist.size(), "bytes": nbytes,
                         "median_s": statistics.median(times), "min_s": min(times),
                         "max_s": max(times)})
    if dist.rank() == 0:
        for row in rows:
            print("RESULT " + json.dumps(row), flush=True)


def launch(ranks, repeats):
    beside = pathlib.Path(sys.executable).parent / "mpiexec"
    mpiexec = str(beside) if beside.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("no mpiexec: pip install 'gpuad[dist]' (mpi4py and the mpich wheel)")
    rows = []
    for n in ranks:
        done = subprocess.run([mpiexec, "-n", str(n), sys.executable, "-m", "mpi4py", __file__,
                               "--worker", "--repeats", str(repeats)],
                              capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        if done.returncode:
            sys.exit(f"mpiexec -n {n} failed:\n{done.stdout}{done.stderr}")
        rows += [json.loads(line[7:]) for line in done.stdout.splitlines()
                 if line.startswith("RESULT ")]
    print(f"W4 gradients: {rows[0]['bytes'] / 1e6:.2f} MB float32 in {len(SHAPES)} tensors; "
          f"median (min-max) of {repeats} steps, the slowest rank's time")
    print("| case | ranks | median | min-max | bytes moved per rank (ring: 2(N-1)/N x S) "
          "| bus bandwidth |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        moved = 2 * (r["ranks"] - 1) / r["ranks"] * r["bytes"]
        bandwidth = f"{moved / r['median_s'] / 1e9:.2f} GB/s" if moved and \
            r["case"] != "signature check" else "-"
        print(f"| {r['case']} | {r['ranks']} | {r['median_s'] * 1e6:.0f} us | "
              f"{r['min_s'] * 1e6:.0f}-{r['max_s'] * 1e6:.0f} us | "
              f"{moved / 1e6 if r['case'] != 'signature check' else 0:.2f} MB | {bandwidth} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="run as one rank (under mpiexec)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=50)
    options = parser.parse_args()
    if options.worker:
        worker(options.repeats)
    else:
        launch(options.ranks, options.repeats)
