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
import typing
from importlib import metadata as _metadata

import numpy

try:  # cupy is optional: gpuad runs on NumPy alone
    import cupy
except Exception:  # ImportError, or a broken CUDA install
    cupy = None
try:  # NVRTC compiles gpuad's CUDA sources; it needs no GPU (gpuad.cuda.nvrtc_compile)
    from cupy.cuda import nvrtc
except Exception:  # no cupy, or no libnvrtc to load
    nvrtc = None

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


def set_backend(name: str) -> None:
    """Set the backend that new tensors are created on: ``"numpy"`` or ``"cupy"``.

    The choice is per thread; threads that never call it use the process default
    (``GPUAD_BACKEND`` if set, else ``"cupy"`` where a CUDA device is usable, else ``"numpy"``).
    """
    _state.name = _check_name(name)


def get_backend() -> str:
    """Return the name of the current backend, ``"numpy"`` or ``"cupy"``."""
    return _state.name or _DEFAULT


@contextlib.contextmanager
def backend(name: str) -> typing.Iterator[None]:
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


def parse_device(name: str) -> tuple[str, int | None]:
    """``("numpy", None)`` or ``("cupy", index)`` for a device name: ``"cpu"``, ``"gpu"``,
    ``"gpu:1"``, or TensorFlow's ``"/CPU:0"``, ``"/GPU:1"``, ``"/device:GPU:1"``."""
    text = str(name).strip().lower().removeprefix("/").removeprefix("device:")
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "gpu") or index and not index.isdigit():
        raise ValueError(f"device: cannot read device name {name!r}; expected 'cpu', 'gpu' "
                         f"or 'gpu:N' (or TensorFlow's '/GPU:N')")
    if kind == "cpu":
        return "numpy", None
    if not CUDA_AVAILABLE:
        why = "cupy is not installed" if cupy is None else "no usable CUDA device"
        raise RuntimeError(f"device: {name!r} needs a GPU ({why})")
    count = cupy.cuda.runtime.getDeviceCount()
    if int(index or 0) >= count:
        raise ValueError(f"device: {name!r} asked for, and this machine has {count} GPU(s)")
    return "cupy", int(index or 0)


@contextlib.contextmanager
def device(name: str) -> typing.Iterator[None]:
    """Context manager creating new tensors on a device, as ``tf.device``: ``"cpu"`` is the
    NumPy backend, ``"gpu:N"`` CuPy on GPU N (``"/GPU:N"`` too); restored on exit.

    >>> import gpuad as ad
    >>> with ad.device("cpu"):
    ...     ad.constant([1.0, 2.0]).backend
    'numpy'
    """
    name, index = parse_device(name)
    with backend(name):
        if index is None:
            yield
        else:
            with cupy.cuda.Device(index):
                yield


def set_device(name: str) -> None:
    """Make a device this thread's default from now on (``set_backend`` and, for ``"gpu:N"``,
    CuPy's current device); :func:`gpuad.distributed.init` puts each rank on its local GPU."""
    name, index = parse_device(name)
    set_backend(name)
    if index is not None:
        cupy.cuda.Device(index).use()


def gpu_count() -> int:
    """The number of usable CUDA devices (0 without cupy or a GPU)."""
    return cupy.cuda.runtime.getDeviceCount() if CUDA_AVAILABLE else 0


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


# DLPack device types (dlpack.h): host memory, and memory a CUDA kernel can read
_DLPACK_HOST = (1, 3)           # kDLCPU, kDLCUDAHost
_DLPACK_CUDA = (2, 13)          # kDLCUDA, kDLCUDAManaged


def from_dlpack(value, name=None):
    """An array sharing ``value``'s memory (an object with ``__dlpack__``), on backend ``name``.

    Zero-copy when the data already lives where backend ``name`` keeps arrays (host memory for
    ``"numpy"``, a CUDA device for ``"cupy"``); a copy otherwise.  ``name=None`` keeps the data
    where it is.
    """
    device_type = value.__dlpack_device__()[0]
    if device_type in _DLPACK_CUDA:
        if cupy is None:
            raise TypeError(f"from_dlpack: {type(value).__name__} lives on a CUDA device, and "
                            f"cupy is not installed (pip install 'gpuad[cuda13]')")
        array = cupy.from_dlpack(value)
        return array.get() if name == "numpy" else array
    if device_type not in _DLPACK_HOST:
        raise TypeError(f"from_dlpack: {type(value).__name__} lives on DLPack device type "
                        f"{device_type}; gpuad reads host (1) and CUDA (2) memory")
    array = numpy.from_dlpack(value)
    return asarray(array, "cupy") if name == "cupy" else array


def scatter_add(target, key, values):
    """``target[key] += values`` with repeated indices accumulating, in place."""
    module_of(target).add.at(target, key, values)


def config() -> list[tuple[str, str]]:
    """gpuad's version, the backend, and the NumPy/CuPy/CUDA versions and device, as pairs."""
    try:
        version = _metadata.version("gpuad")
    except _metadata.PackageNotFoundError:
        version = "not installed (a source tree)"
    rows = [("gpuad", version), ("backend", get_backend()), ("numpy", numpy.__version__),
            ("cupy", cupy.__version__ if cupy is not None else "not installed")]
    if CUDA_AVAILABLE:
        runtime = cupy.cuda.runtime
        properties = runtime.getDeviceProperties(runtime.getDevice())
        name = properties["name"]
        rows += [("CUDA runtime", _cuda_version(runtime.runtimeGetVersion())),
                 ("CUDA driver", _cuda_version(runtime.driverGetVersion())),
                 ("device", f"{runtime.getDevice()}: "
                            f"{name.decode() if isinstance(name, bytes) else name}, "
                            f"{properties['totalGlobalMem'] / 2**30:.0f} GiB, "
                            f"sm_{properties['major']}{properties['minor']}")]
    else:
        rows.append(("device", "CPU only (no usable CUDA device)"))
    return rows


def _cuda_version(number):  # 12040 -> "12.4"
    return f"{number // 1000}.{number % 1000 // 10}"


def show_config() -> None:
    """Print gpuad's version, the backend, NumPy/CuPy/CUDA versions and the device.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.show_config()  # doctest: +ELLIPSIS
    gpuad: ...
    backend: ...
    numpy: ...
    """
    for key, value in config():
        print(f"{key}: {value}")
