"""Benchmark plumbing: each workload is one pytest-benchmark group whose implementations are
named by ``impl``; the terminal summary prints the median of each and its ratio to the group's
floor (the hand-written NumPy/CuPy version).  Run: ``python -m pytest benchmarks --benchmark-enable``.
"""
import json
import os
import pathlib

import pytest

from gpuad import backends


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU and cupy")


def pytest_collection_modifyitems(config, items):
    if backends.CUDA_AVAILABLE:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and cupy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _rows(config):
    session = getattr(config, "_benchmarksession", None)
    rows = []
    for bench in getattr(session, "benchmarks", []) or []:
        stats = bench.stats
        if not stats or not getattr(stats, "data", None):
            continue
        per_op = bench.extra_info.get("ops", 1)
        rows.append({"group": bench.group, "impl": bench.extra_info.get("impl", bench.name),
                     "median_us": stats.median * 1e6 / per_op, "min_us": stats.min * 1e6 / per_op,
                     "max_us": stats.max * 1e6 / per_op, "rounds": stats.rounds,
                     "unit": "us/op" if per_op != 1 else "us"})
    floors = {r["group"]: r["median_us"] for r in rows if "floor" in r["impl"]}
    for r in rows:
        floor = floors.get(r["group"])
        r["vs_floor"] = r["median_us"] / floor if floor else None
    return rows


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = _rows(config)
    if not rows:
        return
    lines = ["| workload | implementation | median | min-max | vs floor |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["group"], r["vs_floor"] or 0)):
        ratio = f"{r['vs_floor']:.2f}x" if r["vs_floor"] is not None else "-"
        lines.append(f"| {r['group']} | {r['impl']} | {r['median_us']:.3f} {r['unit']} | "
                     f"{r['min_us']:.3f}-{r['max_us']:.3f} | {ratio} |")
    terminalreporter.write_sep("=", "gpuad benchmarks: medians and ratios to the floor")
    terminalreporter.write_line("\n".join(lines))
    out = os.environ.get("GPUAD_BENCH_OUT")
    if out:
        path = pathlib.Path(out)
        path.mkdir(parents=True, exist_ok=True)
        (path / "latest.md").write_text("\n".join(lines) + "\n")
        (path / "latest.json").write_text(json.dumps(rows, indent=1))
