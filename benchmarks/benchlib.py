"""Shared by the benchmark modules: the peers (each imported when installed, else None), the
check every implementation passes before it is timed, and the timing call.

Implementation names: ``gpuad`` (eager) and ``gpuad (function)`` (the same step under
``gpuad.function``, traced by its first call, before the check and the timing); the
hand-written floor (``numpy-floor``, ``cupy-floor``); a peer's reference row (``torch``,
``autograd``, ``jax`` (under jit), ``tf.function`` on the CPU, ``torch-cuda``, ``jax-gpu`` on a
GPU), against which the table's "vs <peer>" column divides; variants such as ``jax (no jit)``
or ``tf eager`` are shown in the table but divide nothing.
"""
import importlib
import math
import os
import time

import numpy as np
import pytest

import gpuad as ad

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # jax shares the GPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up log lines


def _optional(name):
    if os.environ.get("GPUAD_BENCH_NO_PEERS"):  # a fresh process timing gpuad alone
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or an install that does not import: that peer skips
        return None


torch = _optional("torch")
autograd = _optional("autograd")
jax = _optional("jax")
if jax is not None:
    jax.config.update("jax_enable_x64", True)  # W5 is float64; float32 inputs stay float32
    jax.config.update("jax_default_matmul_precision", "highest")  # no TF32 on the GPU
anp = _optional("autograd.numpy")
jnp = _optional("jax.numpy")
tf = _optional("tensorflow")  # the CPU rows tf.function and tf eager (W1, W3, W4)
if tf is not None:
    try:  # a GPU build of TensorFlow would take the whole card at its first op
        tf.config.set_visible_devices([], "GPU")
    except Exception:
        pass

PEER_OF = {"torch": "torch", "autograd": "autograd", "jax": "jax", "torch-cuda": "torch",
           "jax-gpu": "jax", "tf.function": "tf"}
COMPILED = "gpuad (function)"  # the row whose fn is a gpuad.function (and its variants)
_MODULES = (("torch", torch, "torch"), ("autograd", autograd, "autograd"), ("jax", jax, "jax"),
            ("tf", tf, "tensorflow"))
BUDGET_S = float(os.environ.get("GPUAD_BENCH_BUDGET", "2"))  # timed seconds per implementation


def _missing(impl):
    return next((package for prefix, module, package in _MODULES
                 if impl.startswith(prefix) and module is None), None)


def require_ok(impl):
    """Whether the peer that ``impl`` names (if any) is importable."""
    return _missing(impl) is None


def require(impl):
    """Skip the test when the peer that ``impl`` names is not importable."""
    if not require_ok(impl):
        pytest.skip(f"{_missing(impl)} is not installed")


def first_call(impl, fn, *args):
    """Trace the compiled row (``gpuad (function)``) by its first call, so that the check
    sees a replay's result and the timing never includes the trace; other rows: nothing."""
    if impl.startswith(COMPILED[:-1]):
        fn(*args)
        assert fn.experimental_get_tracing_count() == 1


def traced_once(impl, fn):
    """After the timing: the compiled row replayed every call (no retrace)."""
    if impl.startswith(COMPILED[:-1]):
        assert fn.experimental_get_tracing_count() == 1, "gpuad.function retraced"


def jax_cpu(tree):
    """Arrays placed on jax's CPU device (its default device is the GPU where it has one)."""
    return jax.device_put(tree, jax.devices("cpu")[0])


def to_numpy(a):
    if isinstance(a, ad.Tensor):
        return a.numpy()
    if torch is not None and isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    if hasattr(a, "get") and not isinstance(a, np.ndarray):  # cupy
        return a.get()
    return np.asarray(a)


def check(impl, got, want, rtol, atol=0.0):
    """Compare each output of ``impl`` with its float64 closed form; fail naming ``impl``.
    ``atol`` is one tolerance or one per output."""
    assert len(got) == len(want), f"{impl}: {len(got)} outputs, expected {len(want)}"
    atols = atol if np.ndim(atol) else [atol] * len(want)
    for i, (g, w, a) in enumerate(zip(got, want, atols)):
        np.testing.assert_allclose(to_numpy(g).astype(np.float64), w, rtol=rtol, atol=a,
                                   err_msg=f"{impl} is wrong (output {i}): not timed")


def _until_ready(impl, fn):
    """JAX dispatches asynchronously, on the CPU too: a jax call is timed until its outputs
    are ready (block_until_ready)."""
    return (lambda *a: jax.block_until_ready(fn(*a))) if impl.startswith("jax") else fn


def timed(benchmark, group, impl, fn, *args, ops=1, sync=None, max_rounds=300):
    """Time ``fn(*args)`` for about BUDGET_S seconds (5 to ``max_rounds`` rounds; calls shorter
    than 1 ms are repeated within a round).  ``sync`` (a device synchronize) runs before each
    round, untimed, and after each call, timed.  A jax call is timed until its outputs are
    ready."""
    call = _until_ready(impl, fn)
    run = call if sync is None else (lambda *a: (call(*a), sync())[0])
    if benchmark.disabled:  # without --benchmark-enable: the checks ran; one untimed call
        return benchmark.pedantic(run, args=args)
    run(*args)
    times = []
    while len(times) < 3 and sum(times) < 0.2:  # the fastest of up to 3 calls
        start = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - start)
    once = min(times)
    iterations = 1 if sync else max(1, math.ceil(1e-3 / once))
    rounds = min(max_rounds, max(5, int(BUDGET_S / (once * iterations))))
    benchmark.group = group
    benchmark.extra_info.update(impl=impl, ops=ops)
    if impl in PEER_OF:
        benchmark.extra_info["peer"] = PEER_OF[impl]
    if sync is None:
        benchmark.pedantic(run, args=args, rounds=rounds, iterations=iterations,
                           warmup_rounds=min(10, rounds // 10))
    else:
        benchmark.pedantic(run, args=args, setup=sync, rounds=rounds, warmup_rounds=1)


def interleaved(calls, rounds):
    """Medians (s) of each ``name: (fn, arg)`` of ``calls``, run in turn call by call for
    ``rounds`` rounds: on a shared machine a burst of noise then hits every one of them."""
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (fn, arg) in calls.items():
            start = time.perf_counter()
            fn(arg)
            times[name].append(time.perf_counter() - start)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


NOTES = []  # lines for the summary after the table (interleaved ratios, peak memory)


def interleaved_line(label, impls, rounds, unit=1e3, suffix="ms", star=False):
    """One line (also kept in NOTES): the interleaved median of each importable ``name: (fn,
    make)`` of ``impls`` and gpuad's ratio to each of the others (and the compiled row's,
    ``function``, where ``impls`` has one).  ``star``: ``make()`` gives a tuple of arguments."""
    calls = {name: (fn, make()) for name, (fn, make) in impls.items()
             if fn is not None and require_ok(name)}
    for name, (fn, arg) in calls.items():
        first_call(name, fn, *(arg if star else (arg,)))
    calls = {name: (_until_ready(name, (lambda a, f=fn: f(*a)) if star else fn), arg)
             for name, (fn, arg) in calls.items()}
    medians = interleaved(calls, rounds)
    ours = [(short, medians[name]) for short, name in (("gpuad", "gpuad"), ("function", COMPILED))
            if name in medians]

    def ratios(name, t):
        return ", ".join(f"{short} {mine / t:.2f}x" for short, mine in ours
                         if name not in ("gpuad", COMPILED) or short == "gpuad")

    parts = [f"{name} {t * unit:.3f} {suffix}" + ("" if name == "gpuad" else
                                                   f" ({ratios(name, t)})")
             for name, t in medians.items()]
    NOTES.append(f"{label}, interleaved medians of {rounds}: " + ", ".join(parts))
    return NOTES[-1]
