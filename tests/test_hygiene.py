"""Package hygiene: the version, show_config, and which warnings reach the user."""
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import gpuad as ad


def test_the_version_comes_from_the_package_metadata():
    from importlib import metadata
    try:
        expected = metadata.version("gpuad")
    except metadata.PackageNotFoundError:
        expected = "0+unknown"
    assert ad.__version__ == expected


def test_show_config_names_the_backend_and_versions(capsys):
    ad.show_config()
    out = capsys.readouterr().out
    assert f"numpy: {np.__version__}" in out and f"backend: {ad.get_backend()}" in out
    assert "device: " in out


def test_inf_and_nan_results_do_not_warn():
    # a fresh process, as a user's: pytest restores the warning filters after collecting, so
    # the filter gpuad installs when imported would not be there in this process
    program = textwrap.dedent("""
        import warnings
        import gpuad as ad
        x = ad.constant([0.0, -1.0, 1.0])
        with warnings.catch_warnings(record=True) as caught:
            with ad.GradientTape() as tape:
                tape.watch(x)
                y = ad.reduce_sum(ad.log(x) * ad.sqrt(x) / x)
            tape.gradient(y, x)
            ad.function(lambda v: ad.log(v) / v)(x)
            import numpy
            numpy.log(numpy.zeros(1))  # NumPy's own warnings still surface
        print(sorted({str(w.message) for w in caught}))
        """)
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                         check=True, timeout=60, env={**os.environ, "GPUAD_BACKEND": "numpy"})
    assert out.stdout.strip() == "['divide by zero encountered in log']", out


def test_a_warning_gpuad_raises_points_at_the_users_line():
    x = ad.constant([1, 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ad.GradientTape() as tape:
            tape.watch(x)  # an integer tensor is not watched: a warning, at this line
    assert caught and caught[0].filename == __file__, [(w.filename, w.lineno) for w in caught]


def test_the_fixed_warnings_of_a_compiled_function_point_at_the_caller():
    f = ad.function(lambda v: v * 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(7):
            f(ad.zeros([n + 1]))  # the sixth trace warns, at this line
    retrace = [w for w in caught if "traced" in str(w.message)]
    assert retrace and retrace[0].filename == __file__


def test_the_bench_command_times_a_workload_and_writes_its_table(tmp_path):
    env = {**os.environ, "GPUAD_BACKEND": "numpy", "GPUAD_BENCH_NO_PEERS": "1"}
    out = subprocess.run([sys.executable, "-m", "gpuad", "bench", "--out", str(tmp_path),
                          "--budget", "0.02", "-k", "w1 and floor"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "/1 " in out.stderr or "1/" in out.stderr  # the progress bar
    rows = json.loads((tmp_path / "latest.json").read_text())["rows"]
    assert rows and all(r["median_us"] > 0 and r["group"].startswith("W1") for r in rows)
    assert "| W1" in (tmp_path / "latest.md").read_text() and "| W1" in out.stdout
    pytest.importorskip("matplotlib")
    assert (tmp_path / "latest.png").read_bytes()[:4] == b"\x89PNG"


def test_the_optimizers_warnings_point_at_the_users_line():
    w, unused = ad.Variable([1.0]), ad.Variable([2.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ad.optimizers.AdamW(decay=0.1)  # ignored, as Keras: a warning at this line
        with ad.GradientTape() as tape:
            loss = ad.reduce_sum(w * w)
        ad.optimizers.SGD().minimize(loss, [w, unused], tape=tape)  # no gradient for one
    assert len(caught) == 2 and {c.filename for c in caught} == {__file__}, \
        [(c.filename, c.lineno, str(c.message)) for c in caught]
