"""Compiling and launching gpuad's generated CUDA kernels through CuPy.

Only the CuPy backend launches kernels; :func:`nvrtc_compile` works without a GPU, so CI keeps
every generated source compiling.
"""
import math

import numpy

from .backends import cupy, cupy_ndarray

_kernel_cache = {}


def elementwise_kernel(spec, preamble):
    """A cached ``cupy.ElementwiseKernel`` for :class:`gpuad.table.KernelSpec` ``spec``
    (compiled per dtype by CuPy on first launch)."""
    kernel = _kernel_cache.get(spec)
    if kernel is None:
        kernel = _kernel_cache[spec] = cupy.ElementwiseKernel(
            *spec.elementwise_kernel_args(), preamble=preamble)
    return kernel


_CONTIGUOUS_DTYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}


def launch_elementwise(spec, preamble, args, render):
    """Run the elementwise kernel ``spec`` (a :class:`gpuad.table.KernelSpec`) on ``args``,
    one per parameter.

    Contiguous float32/float64 data, where every array is either full-size or one element,
    runs as a generated RawKernel with vector loads (``render(kinds, ctype) -> (source,
    name)``); anything else (real broadcasting, strides, other dtypes) as CuPy's
    ElementwiseKernel, which handles every layout.
    """
    arrays = [a for a in args if type(a) is cupy_ndarray]
    if not arrays:
        return elementwise_kernel(spec, preamble)(*args)
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
        return elementwise_kernel(spec, preamble)(*args)
    key = (spec, ctype, tuple(kinds))
    kernel = _kernel_cache.get(key)
    if kernel is None:
        source, name = render(tuple(kinds), ctype)
        kernel = _kernel_cache[key] = cupy.RawKernel(source, name, options=("--std=c++17",))
    dtype = numpy.float32 if ctype == "float" else numpy.float64
    outs = [cupy.empty(shape, dtype) for _ in spec.outputs]
    n = math.prod(shape)
    if n:
        threads, width = 256, 4 if ctype == "float" else 2
        blocks = max(1, min((n // width + threads - 1) // threads, _max_blocks()))
        values = [a if type(a) is cupy_ndarray else
                  (numpy.bool_(a) if ctype_of == "bool" else dtype(a))
                  for a, (_, ctype_of) in zip(args, spec.params)]
        kernel((blocks,), (threads,), (*values, *outs, numpy.int64(n)))
    return outs[0] if len(outs) == 1 else tuple(outs)


_MAX_BLOCKS = {}  # device id -> the grid that fills it: 32 blocks of 256 threads per SM


def _max_blocks():
    device = cupy.cuda.runtime.getDevice()
    blocks = _MAX_BLOCKS.get(device)
    if blocks is None:
        sms = cupy.cuda.Device(device).attributes["MultiProcessorCount"]
        blocks = _MAX_BLOCKS[device] = 32 * sms
    return blocks


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
