"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

This is the only module of gpuad that imports cupy (:mod:`gpuad.cuda` takes it from here).  It
chooses the default backend and converts arrays between backends; the NumPy buffer pool lives
in :mod:`gpuad.numpy_memory` and CUDA kernel launching in :mod:`gpuad.cuda`.

Examples
--------
>>> import gpuad as ad
>>> with ad.backend("numpy"):
...     ad.get_backend()
'numpy'
"""
import contextlib
import os
import threading

import numpy

try:  # cupy is optional: gpuad runs on NumPy alone
    import cupy
except Exception:  # ImportError, or a broken CUDA install
    cupy = None

NAMES = ("numpy", "cupy")


def _cuda_usable():
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver, no device
        return False


CUDA_AVAILABLE = _cuda_usable()
_DEFAULT = "cupy" if CUDA_AVAILABLE else "numpy"


class _State(threading.local):
    name = None  # None: the process default


_state = _State()


def _check_name(name):
    if name not in NAMES:
        raise ValueError(f"set_backend: unknown backend {name!r}; expected 'numpy' or 'cupy'")
    if name == "cupy" and not CUDA_AVAILABLE:
        why = "cupy is not installed" if cupy is None else "no usable CUDA device"
        raise RuntimeError(f"set_backend: the 'cupy' backend needs a GPU ({why})")
    return name


def set_backend(name):
    """Set the backend that new tensors are created on: ``"numpy"`` or ``"cupy"``.

    The choice is per thread; threads that never call it use the process default
    (``GPUAD_BACKEND`` if set, else ``"cupy"`` where a CUDA device is usable, else ``"numpy"``).
    """
    _state.name = _check_name(name)


def get_backend():
    """Return the name of the current backend, ``"numpy"`` or ``"cupy"``."""
    return _state.name or _DEFAULT


@contextlib.contextmanager
def backend(name):
    """Context manager that switches the current thread's backend and restores it on exit.

    >>> import gpuad as ad
    >>> with ad.backend("numpy"):
    ...     ad.constant([1.0, 2.0]).backend
    'numpy'
    """
    previous = _state.name
    _state.name = _check_name(name)
    try:
        yield
    finally:
        _state.name = previous


def _default_from_env():
    global _DEFAULT
    name = os.environ.get("GPUAD_BACKEND")
    if name:
        _DEFAULT = _check_name(name.strip().lower())


_default_from_env()

# The array types of the two backends: the one place other modules learn them from (the ops'
# fast paths compare types with ``is``, the cheapest test there is).
numpy_ndarray = numpy.ndarray


class _NoCupyArray:  # stands in for cupy.ndarray when cupy is absent: nothing is one
    pass


cupy_ndarray = cupy.ndarray if cupy is not None else _NoCupyArray


def module(name):
    """The array module (numpy or cupy) of a backend name."""
    return cupy if name == "cupy" else numpy


def name_of(value):
    """The backend name of a raw array."""
    return "cupy" if type(value) is cupy_ndarray else "numpy"


def module_of(value):
    return cupy if type(value) is cupy_ndarray else numpy


def is_array(value):
    return isinstance(value, (numpy.ndarray, numpy.generic, cupy_ndarray))


def to_numpy(value):
    """A host NumPy copy (or the array itself when it already is one)."""
    if type(value) is cupy_ndarray:
        return value.get()
    return numpy.asarray(value)


def asarray(value, name, dtype=None):
    """``value`` (host data, a numpy or cupy array) as an array of backend ``name``."""
    if name == "cupy":
        return cupy.asarray(value, dtype=dtype)
    if type(value) is cupy_ndarray:
        raise TypeError("cannot place a cupy array on the numpy backend implicitly; "
                        "use Tensor.to('numpy') or cupy.asnumpy")
    return numpy.asarray(value, dtype=dtype)


def scatter_add(target, key, values):
    """``target[key] += values`` with repeated indices accumulating, in place."""
    module_of(target).add.at(target, key, values)
