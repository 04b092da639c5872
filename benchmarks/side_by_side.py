"""W1, W3 and W4 of two gpuad checkouts, side by side: is a change free of eager overhead?

    python benchmarks/side_by_side.py OLD_CHECKOUT [NEW_CHECKOUT] [--rounds 7]

Each round runs every workload once per checkout, alternating which goes first, each in a
fresh process (two versions of one package cannot share one), on the NumPy backend; a round's
figure per workload is the median of many calls.  It prints the median over rounds of each
figure and the ratio NEW / OLD: the machines are shared and noisy, and interleaving keeps a
burst of load from landing on one side only.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

# Runs inside each checkout's process: prints {workload: median seconds per call}.
PROBE = r'''
import json, time
import numpy as np
import gpuad as ad

def median_time(fn, calls, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    times.sort()
    return times[len(times) // 2]

def chain(x):  # W1: 100 scalar ops
    for _ in range(25):
        x = ad.tanh(ad.sin(x) * 1.01 + 0.1)
    return x

def chain_and_gradient(x):
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = chain(x)
    return tape.gradient(y, x)

def w3(x):  # W3: a large elementwise loss and its gradient
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
    return tape.gradient(y, x)

rng = np.random.default_rng(0)
params = [ad.Variable(rng.normal(0, 0.1, s).astype(np.float32))
          for s in [(256, 512), (512,), (512, 10), (10,)]]
batch = ad.constant(rng.normal(size=(128, 256)).astype(np.float32))
labels = ad.constant(np.eye(10, dtype=np.float32)[rng.integers(0, 10, 128)])

def w4():  # W4: an MLP training step's gradient
    w1, b1, w2, b2 = params
    with ad.GradientTape() as tape:
        h = ad.relu(batch @ w1 + b1)
        loss = ad.reduce_mean(ad.nn.softmax_cross_entropy_with_logits(labels, h @ w2 + b2))
    return tape.gradient(loss, params)

x1 = ad.constant(0.5)
x3 = ad.constant(rng.uniform(-2, 2, 10**6).astype(np.float32))
print(json.dumps({
    "W1 forward (us/op)": median_time(lambda: chain(x1), 20, 15) * 1e6 / 100,
    "W1 forward+gradient (us/op)": median_time(lambda: chain_and_gradient(x1), 10, 15) * 1e6 / 100,
    "W3 1e6 (ms)": median_time(lambda: w3(x3), 3, 7) * 1e3,
    "W4 (ms)": median_time(w4, 5, 7) * 1e3,
}))
'''


def run(checkout):
    env = dict(os.environ, PYTHONPATH=str(checkout), GPUAD_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=checkout, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=pathlib.Path)
    parser.add_argument("new", type=pathlib.Path, nargs="?",
                        default=pathlib.Path(__file__).resolve().parent.parent)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    figures = {"old": [], "new": []}
    for k in range(args.rounds):
        for side in (("old", "new") if k % 2 == 0 else ("new", "old")):
            figures[side].append(run(getattr(args, side).resolve()))
    print(f"| workload | old | new | new / old |  ({args.rounds} interleaved rounds, medians)")
    print("|---|---|---|---|")
    for name in figures["old"][0]:
        old = statistics.median(f[name] for f in figures["old"])
        new = statistics.median(f[name] for f in figures["new"])
        print(f"| {name} | {old:.3f} | {new:.3f} | {new / old:.3f} |")


if __name__ == "__main__":
    main()
