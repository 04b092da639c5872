"""``python -m gpuad bench``: W1-W6 on the current backend against the peers that import.

It runs the pytest-benchmark workloads of the source tree's ``benchmarks/`` (the suite's own
code: the same checks, the same timing, the same peers) with a progress bar, prints the table of
medians and ratios, and writes ``latest.md``, ``latest.json`` and ``latest.png`` (a chart of
each implementation's median per workload, log scale) to the output folder.
"""
import contextlib
import io
import json
import os
import pathlib
import sys

try:  # the `bench` extra: pytest and pytest-benchmark run the workloads, matplotlib charts them
    import pytest
except ImportError:
    pytest = None  # type: ignore[assignment]
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None  # type: ignore[assignment]

WORKLOADS = ("test_w1_tape_overhead.py", "test_w2_higher_order.py", "test_w3_elementwise.py",
             "test_w4_mlp.py", "test_w5_w6_jacobians.py")
SOURCE_BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


class ProgressBar:
    """A pytest plugin drawing one line: how many implementations have been timed."""

    def __init__(self, stream):
        self.stream, self.done, self.total = stream, 0, 0

    def pytest_collection_finish(self, session):
        self.total = len(session.items)

    def pytest_runtest_logreport(self, report):
        if report.when != "call" and not (report.when == "setup" and report.skipped):
            return
        self.done += 1
        width = 30
        filled = width * self.done // max(self.total, 1)
        name = report.nodeid.split("::")[-1][:50]
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] "
                          f"{self.done}/{self.total} {name:50s}")
        self.stream.flush()


def run(out, select=None, budget=None, benchmarks=SOURCE_BENCHMARKS):
    """Time the workloads, write latest.md/.json/.png to ``out`` and return the table rows."""
    if pytest is None:
        raise SystemExit("python -m gpuad bench needs pytest and pytest-benchmark: "
                         "pip install 'gpuad[bench]'")
    if not (benchmarks / "conftest.py").exists():
        raise SystemExit(f"python -m gpuad bench runs the benchmarks of a source checkout; "
                         f"{benchmarks} has none (git clone the repository, or pass "
                         f"--benchmarks PATH)")
    out = pathlib.Path(out).resolve()
    os.environ["GPUAD_BENCH_OUT"] = str(out)
    if budget is not None:
        os.environ["GPUAD_BENCH_BUDGET"] = str(budget)
    args = [str(benchmarks / name) for name in WORKLOADS] + [
        "--benchmark-enable", "-p", "no:cacheprovider", "-o", "addopts=", "-q",
        f"--rootdir={benchmarks}"] + (["-k", select] if select else [])
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # pytest's own report goes to the log, not the screen
        code = pytest.main(args, plugins=[ProgressBar(sys.stderr)])
    sys.stderr.write("\n")
    if code not in (0, 5) or not (out / "latest.json").exists():
        sys.stdout.write(log.getvalue())
        raise SystemExit(f"the benchmarks failed (pytest exit code {code})")
    table = (out / "latest.md").read_text()
    print(table)
    rows = json.loads((out / "latest.json").read_text())["rows"]
    if plt is not None:
        chart(rows, out / "latest.png")
        print(f"chart: {out / 'latest.png'}")
    print(f"table: {out / 'latest.md'}, data: {out / 'latest.json'}")
    return rows


def chart(rows, path):
    """Each workload's medians, one bar per implementation, on a log scale."""
    groups = sorted({r["group"] for r in rows})
    impls = sorted({r["impl"] for r in rows}, key=lambda i: (not i.startswith("gpuad"), i))
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(groups)), 4.5))
    width = 0.8 / len(impls)
    for k, impl in enumerate(impls):
        xs, ys = [], []
        for g, group in enumerate(groups):
            match = [r for r in rows if r["group"] == group and r["impl"] == impl]
            if match:  # each workload relative to its slowest row: one scale for all
                slowest = max(r["median_us"] for r in rows if r["group"] == group)
                xs.append(g + k * width)
                ys.append(match[0]["median_us"] / slowest)
        ax.bar(xs, ys, width, label=impl)
    ax.set_yscale("log")
    ax.set_ylabel("median time / slowest implementation (log)")
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
    ax.set_xticklabels([g.split(":")[0] for g in groups], rotation=0)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("gpuad and its peers, per workload (lower is faster)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
