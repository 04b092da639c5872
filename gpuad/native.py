"""Native CPU kernels for ``gpuad.function``'s fused groups, with numba (``gpuad[numba]``).

A fused group's program (:class:`gpuad.fusion.Program`) becomes one loop over the elements:
each operation a scalar expression kept in a register, every value that leaves the group
stored once, each sum accumulated in float64.  The generated module is written to the user's
cache directory (created private) under the hash of its source and of numba's version, and
numba caches its machine code beside it: a second process compiles nothing.  A file whose
text is not the expected source is rewritten, never imported.  Without numba, or if it fails
on a kernel (once, with a warning), the NumPy code runs instead.
"""
import importlib.util
import math
import os
import sys

import numpy

from . import disk_cache, user_warnings

try:  # optional: pip install "gpuad[numba]"
    import numba
except Exception:  # not installed, or an install that does not import
    numba = None  # type: ignore[assignment]

PARALLEL_MIN_ELEMENTS = 1 << 20  # below this one thread: starting the others costs more
enabled = numba is not None and os.environ.get("GPUAD_NUMBA", "1") != "0"
_warned = False

# the program's operations as scalar Python that numba compiles (a, b, c: the operands)
_SCALAR = {
    "add": "{0} + {1}", "subtract": "{0} - {1}", "multiply": "{0} * {1}",
    "true_divide": "{0} / {1}", "power": "{0} ** {1}", "pow": "{0} ** {1}",
    "negative": "-{0}", "greater": "{0} > {1}", "greater_equal": "{0} >= {1}",
    "less": "{0} < {1}", "less_equal": "{0} <= {1}", "equal": "{0} == {1}",
    "not_equal": "{0} != {1}", "logical_and": "{0} and {1}", "logical_or": "{0} or {1}",
    "logical_not": "not {0}", "where": "({1} if {0} else {2})",
    "abs": "abs({0})", "sign": "np.sign({0})", "maximum": "_maximum({0}, {1})",
    "minimum": "_minimum({0}, {1})", "floor": "np.floor({0})", "ceil": "np.ceil({0})",
    "round": "np.rint({0})", "floor_divide": "np.floor_divide({0}, {1})",
    "remainder": "np.remainder({0}, {1})", "atan2": "math.atan2({0}, {1})",
    "sin": "math.sin({0})", "cos": "math.cos({0})", "tan": "math.tan({0})",
    "asin": "math.asin({0})", "acos": "math.acos({0})", "atan": "math.atan({0})",
    "sinh": "math.sinh({0})", "cosh": "math.cosh({0})", "tanh": "math.tanh({0})",
    "asinh": "math.asinh({0})", "acosh": "math.acosh({0})", "atanh": "math.atanh({0})",
    "exp": "math.exp({0})", "expm1": "math.expm1({0})", "log": "math.log({0})",
    "log1p": "math.log1p({0})", "sqrt": "math.sqrt({0})", "erf": "math.erf({0})",
}

_HEADER = '''import math

import numba
import numpy as np


@numba.njit(inline="always")
def _maximum(a, b):  # NumPy's: a NaN operand gives NaN
    return a if a >= b or a != a else b


@numba.njit(inline="always")
def _minimum(a, b):
    return a if a <= b or a != a else b

'''


def kernel_source(program, ops, inputs_full, results, sums, parallel, dtypes):
    """Source of ``kernel(n, x0, ..., o0, ...) -> (sum0, ...)``: the operations ``ops`` of
    ``program`` per element, each rounded to its dtype (``dtypes[k]``: float32 values are
    float32 after every operation, as NumPy's); input k is read at ``i``
    (``inputs_full[k]``) or at 0; output j stores operand ``results[j]``; sum j accumulates
    operand ``sums[j]`` in float64."""
    def operand(o):
        if o[0] == "num":
            value = o[1]
            if isinstance(value, float) and not math.isfinite(value):
                return "math.nan" if value != value else ("-" if value < 0 else "") + "math.inf"
            return repr(value)
        return f"a{o[1]}" if o[0] == "in" else f"t{o[1]}"
    xs = [f"x{k}" for k in range(len(inputs_full))]
    outs = [f"o{j}" for j in range(len(results))]
    loop = "numba.prange" if parallel else "range"
    lines = [f"@numba.njit(cache=True, error_model='numpy', parallel={parallel})",
             f"def kernel(n, {', '.join(xs + outs)}):"]
    lines += [f"    s{j} = 0.0" for j in range(len(sums))]
    lines.append(f"    for i in {loop}(n):")
    lines += [f"        a{k} = x{k}[{'i' if full else 0}]" for k, full in enumerate(inputs_full)]
    for k in ops:
        op, operands = program.ops[k]
        value = _SCALAR[op].format(*[operand(o) for o in operands])
        lines.append(f"        t{k} = np.{dtypes[k].name}({value})" if dtypes[k].kind == "f"
                     else f"        t{k} = {value}")
    lines += [f"        o{j}[i] = {operand(o)}" for j, o in enumerate(results)]
    lines += [f"        s{j} += {operand(o)}" for j, o in enumerate(sums)]
    lines.append(f"    return ({''.join(f's{j}, ' for j in range(len(sums)))})")
    return _HEADER + "\n" + "\n".join(lines) + "\n"


def load(source, dtypes):
    """The compiled ``kernel`` of ``source`` (a module in the private ``numba`` folder of
    :mod:`gpuad.disk_cache`), compiled now for inputs and outputs of ``dtypes``; None, with one
    warning, if numba fails on it."""
    global _warned
    key = disk_cache.key_of(source, numba.__version__)[:24]
    path = disk_cache.private_dir("numba") / f"gpuad_kernel_{key}.py"
    try:
        try:
            return _compiled(path, source, dtypes)
        except Exception:  # numba's cache of it unreadable (another numba, say): again, anew
            for stale in (path.parent / "__pycache__").glob(f"{path.stem}.*"):
                stale.unlink()
            sys.modules.pop(path.stem, None)
            return _compiled(path, source, dtypes)
    except Exception as error:  # numba's own errors: the NumPy code does the same work
        if not _warned:
            _warned = True
            user_warnings.warn(f"gpuad.function: numba could not compile a kernel ({error}); "
                               f"NumPy runs it instead")
        return None


def _compiled(path, source, dtypes):
    if not disk_cache.trusted(path) or path.read_text() != source:  # stale or foreign
        disk_cache.write_atomic(path, lambda f: f.write(source.encode()), mode=0o600)
    module = sys.modules.get(path.stem)
    if module is None:  # importable by its name: numba's cache finds its functions by it
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    module.kernel(0, *[numpy.empty(1, d) for d in dtypes])  # compiled for these types now
    return module.kernel
