"""Benchmark plumbing: each workload is one pytest-benchmark group whose implementations are
named by ``impl`` (see benchlib.py); the terminal summary prints the median of each, its ratio
to the group's floor (the hand-written NumPy/CuPy version) and to each peer present (torch,
autograd, jax, tf: tf.function), and writes the table as latest.md and latest.json to
$GPUAD_BENCH_OUT (default benchmarks/results/cpu-latest, or gpu-latest on a machine with a
CUDA device).  Run: ``python -m pytest benchmarks --benchmark-enable``.
"""
import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import sys

from gpuad import backends

PEERS = ("torch", "autograd", "jax", "tf")
RESULTS = pathlib.Path(__file__).parent / "results"


def _rows(config):
    session = getattr(config, "_benchmarksession", None)
    rows = []
    for bench in getattr(session, "benchmarks", []) or []:
        stats = bench.stats
        if not stats or not getattr(stats, "data", None):
            continue
        per_op = bench.extra_info.get("ops", 1)
        rows.append({"group": bench.group, "impl": bench.extra_info.get("impl", bench.name),
                     "peer": bench.extra_info.get("peer"),
                     "median_us": stats.median * 1e6 / per_op, "min_us": stats.min * 1e6 / per_op,
                     "max_us": stats.max * 1e6 / per_op, "rounds": stats.rounds,
                     "unit": "us/op" if per_op != 1 else "us"})
    refs = {(r["group"], "floor"): r["median_us"] for r in rows if "floor" in r["impl"]}
    refs.update({(r["group"], r["peer"]): r["median_us"] for r in rows if r["peer"]})
    for r in rows:
        for ref in ("floor",) + PEERS:
            base = refs.get((r["group"], ref))
            r[f"vs_{ref}"] = r["median_us"] / base if base else None
    return rows


def _machine():
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if backends.CUDA_AVAILABLE:
        props = backends.cupy.cuda.runtime.getDeviceProperties(0)
        cpu = f"{props['name'].decode()} + {cpu}"
    versions = [f"python {sys.version.split()[0]}"]
    for name in ("numpy", "torch", "autograd", "jax", "tensorflow", "cupy"):
        if name in sys.modules:
            try:
                versions.append(f"{name} {importlib.metadata.version(name)}")
            except importlib.metadata.PackageNotFoundError:  # cupy-cuda13x and the like
                versions.append(f"{name} {getattr(sys.modules[name], '__version__', '?')}")
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu}, "
            f"{os.cpu_count()} CPUs, " + ", ".join(versions))


def _fmt(ratio):
    return "-" if ratio is None else f"{ratio:.2f}x"


def _times(r):  # "median", "min-max", in ms from 1 ms up
    scale, unit = (1e-3, "ms") if r["unit"] == "us" and r["median_us"] >= 1000 else (1, r["unit"])
    return (f"{r['median_us'] * scale:.3f} {unit}",
            f"{r['min_us'] * scale:.3f}-{r['max_us'] * scale:.3f}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = _rows(config)
    if not rows:
        return
    refs = ["floor"] + [p for p in PEERS if any(r["peer"] == p for r in rows)]
    lines = ["| workload | implementation | median | min-max | rounds | " +
             " | ".join(f"vs {ref}" for ref in refs) + " |", "|---" * (5 + len(refs)) + "|"]
    for r in sorted(rows, key=lambda r: (r["group"], r["vs_floor"] or 0, r["median_us"])):
        lines.append(f"| {r['group']} | {r['impl']} | " + " | ".join(_times(r)) +
                     f" | {r['rounds']} | " +
                     " | ".join(_fmt(r[f"vs_{ref}"]) for ref in refs) + " |")
    from benchlib import NOTES
    if NOTES:
        lines += ["", "Side by side, call by call (see benchmarks/README.md):", ""]
        lines += [f"- {note}" for note in NOTES]
    machine = _machine()
    terminalreporter.write_sep("=", "gpuad benchmarks: medians and ratios of medians")
    terminalreporter.write_line("\n".join([machine] + lines))  # no blank line: gpu_check.sh
    default = RESULTS / ("gpu-latest" if backends.CUDA_AVAILABLE else "cpu-latest")
    path = pathlib.Path(os.environ.get("GPUAD_BENCH_OUT") or default)
    path.mkdir(parents=True, exist_ok=True)
    (path / "latest.md").write_text(machine + "\n\n" + "\n".join(lines) + "\n")
    (path / "latest.json").write_text(json.dumps({"machine": machine, "rows": rows,
                                                  "notes": NOTES}, indent=1))
