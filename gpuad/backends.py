"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

This is the only module of gpuad that imports cupy.  It chooses the default backend, converts
arrays between backends, builds CuPy's fused elementwise kernels and compiles CUDA sources with
NVRTC (which works without a GPU, so CI can keep every kernel compiling).

Examples
--------
>>> import gpuad as ad
>>> with ad.backend("numpy"):
...     ad.get_backend()
'numpy'
"""
import contextlib
import math
import os
import sys
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

ndarray = numpy.ndarray


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


# ---------------------------------------------------------------------------- NumPy buffer pool

POOL_MIN_BYTES = 1 << 18   # smaller arrays come quickly from malloc's own free lists
POOL_FREE_LIMIT = 1 << 30  # free bytes kept when the pool must allocate

_pool = {}                 # nbytes -> [uint8 buffers]; a buffer is free when only its list holds it
_pool_ids = set()          # id() of every pooled buffer
_pool_lock = threading.RLock()  # pool_bytes is called with it held too


# Reference counts differ between Python versions in what a call adds (borrowed references on
# the stack), so each count below is compared with one measured the same way at import.

def _ref_counts(objects):
    return [sys.getrefcount(o) for o in objects]


_FREE_REFS = _ref_counts([numpy.empty(1, numpy.uint8)])[0]  # a buffer only its list holds
_CALL_REFS = _FREE_REFS - 1  # what _ref_counts adds to the count of an object it is given


def _free_buffers(buffers):
    return [b for b, n in zip(buffers, _ref_counts(buffers)) if n == _FREE_REFS]


def empty(shape, dtype):
    """``numpy.empty(shape, dtype)``; a large one reuses a buffer from gpuad's pool.

    Fresh pages cost more than arithmetic on them: a new 40 MB float32 array takes ~7 ms of
    page faults, a multiply into an existing one ~4 ms.  So, as CuPy's memory pool does on the
    GPU, the buffers of large arrays that gpuad's NumPy ops allocate are kept and handed out
    again once nothing references them.  Before it allocates a new buffer, the pool releases
    free ones beyond ``POOL_FREE_LIMIT`` bytes.

    >>> a = empty((512, 1024), "float32")
    >>> a.shape, a.dtype
    ((512, 1024), dtype('float32'))
    """
    dtype = numpy.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:
        return numpy.empty(shape, dtype)
    with _pool_lock:
        buffers = _pool.setdefault(nbytes, [])  # the last handed out last: likely in cache
        counts = _ref_counts(buffers)
        for i in range(len(buffers) - 1, -1, -1):
            if counts[i] == _FREE_REFS:
                buffers.append(buffers.pop(i))
                return buffers[-1].view(dtype).reshape(shape)
        _trim(POOL_FREE_LIMIT - nbytes)
        try:
            buffer = numpy.empty(nbytes, numpy.uint8)
        except MemoryError:  # NumPy's own error names the shape and dtype asked for
            return numpy.empty(shape, dtype)
        buffers.append(buffer)
        _pool_ids.add(id(buffer))
        return buffer.view(dtype).reshape(shape)


def _trim(limit):
    """Drop free buffers, largest first, until at most ``limit`` bytes of them are left."""
    free = sorted((b for bs in _pool.values() for b in _free_buffers(bs)), key=len)
    held = sum(len(b) for b in free)
    while free and held > max(limit, 0):
        b = free.pop()
        held -= len(b)
        _pool[len(b)] = [kept for kept in _pool[len(b)] if kept is not b]
        _pool_ids.discard(id(b))


def free_pooled_buffers():
    """Release the free buffers of the NumPy pool (see :func:`empty`); returns the bytes.

    >>> free_pooled_buffers() >= 0
    True
    """
    with _pool_lock:
        before = pool_bytes()
        _trim(0)
        return before - pool_bytes()


def pool_bytes():
    """Bytes the NumPy pool holds, in use or free."""
    with _pool_lock:
        return sum(len(b) for bs in _pool.values() for b in bs)


def sole_view(array, refs):
    """Whether writing into NumPy ``array`` changes nothing that other code can see: only the
    caller's ``refs`` references (its local variable included) hold it, and it owns its
    memory or is the one view of a pool buffer (NumPy's temporary elision, by reference count)."""
    base = array.base
    count, base_count = _ref_counts((array, base))
    # each also held by the tuple; `array` by this function's parameter, a pooled `base` by
    # its list, array.base and this local
    if count != refs + 2 + _CALL_REFS or not array.flags.writeable:
        return False
    return base is None or id(base) in _pool_ids and base_count == 4 + _CALL_REFS


# ---------------------------------------------------------------------------- CUDA kernels

_kernel_cache = {}


def elementwise_kernel(in_params, out_params, operation, name, preamble):
    """A cached ``cupy.ElementwiseKernel`` (compiled per dtype by CuPy on first launch)."""
    key = (in_params, out_params, operation, name)
    kernel = _kernel_cache.get(key)
    if kernel is None:
        kernel = cupy.ElementwiseKernel(in_params, out_params, operation, name,
                                        preamble=preamble)
        _kernel_cache[key] = kernel
    return kernel


_CONTIGUOUS_DTYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}


def launch_elementwise(spec, preamble, args, render):
    """Run the elementwise kernel ``spec`` on ``args`` (one per input parameter).

    Contiguous float32/float64 data, where every array is either full-size or one element,
    runs as a generated RawKernel with vector loads (``render(kinds, ctype) -> (source,
    name)``); anything else (real broadcasting, strides, other dtypes) as CuPy's
    ElementwiseKernel, which handles every layout.
    """
    arrays = [a for a in args if type(a) is cupy_ndarray]
    if not arrays:
        return elementwise_kernel(*spec, preamble=preamble)(*args)
    shape = max((a.shape for a in arrays), key=math.prod)
    ctype = _CONTIGUOUS_DTYPES.get(next(a.dtype for a in arrays if a.dtype != numpy.bool_)
                                   if any(a.dtype != numpy.bool_ for a in arrays) else None)
    kinds = []
    for a in args:
        if type(a) is not cupy_ndarray:
            kinds.append("value")
        elif a.size == 1 and a.shape != shape or a.shape == () == shape:
            kinds.append("one")
        elif a.shape == shape and a.flags.c_contiguous and a.data.ptr % 16 == 0:
            kinds.append("full")
        else:
            ctype = None  # broadcast or strided: CuPy's indexing
    if ctype is None:
        return elementwise_kernel(*spec, preamble=preamble)(*args)
    key = (spec, ctype, tuple(kinds))
    kernel = _kernel_cache.get(key)
    if kernel is None:
        source, name = render(tuple(kinds), ctype)
        kernel = _kernel_cache[key] = cupy.RawKernel(source, name, options=("--std=c++17",))
    dtype = numpy.float32 if ctype == "float" else numpy.float64
    outs = [cupy.empty(shape, dtype) for _ in spec[1].split(",")]
    n = math.prod(shape)
    if n:
        threads, width = 256, 4 if ctype == "float" else 2
        blocks = max(1, min((n // width + threads - 1) // threads, 132 * 32))
        values = [a if type(a) is cupy_ndarray else
                  (numpy.bool_(a) if p.split()[0] == "bool" else dtype(a))
                  for a, p in zip(args, spec[0].split(","))]
        kernel((blocks,), (threads,), (*values, *outs, numpy.int64(n)))
    return outs[0] if len(outs) == 1 else tuple(outs)


def nvrtc_compile(source, name="kernel.cu", arch="sm_90"):
    """Compile CUDA C++ ``source`` with NVRTC and return the cubin bytes.

    Needs cupy and NVRTC (pip's ``nvidia-cuda-nvrtc``) but no GPU.  Raises RuntimeError
    with NVRTC's log when the source does not compile.
    """
    if cupy is None:
        raise RuntimeError("nvrtc_compile needs cupy (pip install 'gpuad[test]')")
    from cupy.cuda import nvrtc
    program = nvrtc.createProgram(source, name, [], [])
    try:
        try:
            nvrtc.compileProgram(program, [f"--gpu-architecture={arch}", "--std=c++17"])
        except nvrtc.NVRTCError as error:
            raise RuntimeError(f"NVRTC could not compile {name}: {error}\n"
                               f"{nvrtc.getProgramLog(program)}") from None
        return nvrtc.getCUBIN(program)
    finally:
        nvrtc.destroyProgram(program)
