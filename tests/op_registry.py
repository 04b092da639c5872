"""The op registry: every public op of gpuad that is not a derivative-table entry, listed once.

Each entry names the op and gives cases: a function of float64 arrays built on the op, and
inputs that stay inside its domain.  tests/test_op_registry.py checks every case to second
order against float64 central differences (reverse mode, and forward mode where it exists)
on NumPy, and on CuPy under the `gpu` marker.  Ops without a derivative (creation, random,
comparisons) are listed in NOT_DIFFERENTIABLE with a value check instead.

The entries live in the registry_*.py modules beside this file, one per area.
"""
import importlib
import pathlib

import numpy as np

REGISTRY = {}            # op name -> [(case function, [input arrays]), ...]
NOT_DIFFERENTIABLE = {}  # op name -> a function that asserts the op's values


def register(name, fn, *args):
    """Add a differentiable case ``fn(*tensors)`` for op ``name``, at inputs ``args``."""
    REGISTRY.setdefault(name, []).append((fn, [np.asarray(a, dtype=np.float64) for a in args]))


def register_value_check(name, check):
    """An op without a gradient: ``check()`` asserts its values (and raises on failure)."""
    NOT_DIFFERENTIABLE[name] = check


def rng(seed=0):
    return np.random.default_rng(seed)


# every registry_*.py beside this file adds its entries when imported
for _path in sorted(pathlib.Path(__file__).resolve().parent.glob("registry_*.py")):
    importlib.import_module(_path.stem)
