"""Compiling and launching gpuad's generated CUDA kernels through CuPy.

Only the CuPy backend launches kernels; :func:`nvrtc_compile` works without a GPU, so CI keeps
every generated source compiling.
"""
import math
import os
import threading
import typing
import warnings

import numpy

from . import disk_cache
from .backends import cupy, cupy_ndarray, nvrtc as _nvrtc

_kernel_cache = {}
_COMPILE_OPTIONS = ("--std=c++17",)


def elementwise_kernel(spec, preamble):
    """A cached ``cupy.ElementwiseKernel`` for :class:`gpuad.table.KernelSpec` ``spec``
    (compiled per dtype by CuPy on first launch)."""
    kernel = _kernel_cache.get(spec)
    if kernel is None:
        kernel = _kernel_cache[spec] = cupy.ElementwiseKernel(
            *spec.elementwise_kernel_args(), preamble=preamble)
    return kernel


_CONTIGUOUS_DTYPES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double",
                      numpy.dtype(numpy.float16): "half",
                      numpy.dtype(numpy.complex64): "complex<float>",
                      numpy.dtype(numpy.complex128): "complex<double>"}
# the kernel's C type -> (the NumPy type of a scalar it takes by value, elements per thread
# and step): float16 kernels compute in float (gpuad.table.scalar_kernel)
_LAUNCH = {"float": (numpy.float32, 4), "double": (numpy.float64, 2), "half": (numpy.float32, 1),
           "complex<float>": (numpy.complex64, 1), "complex<double>": (numpy.complex128, 1)}


def launch_elementwise(spec, preamble, args, render):
    """Run the elementwise kernel ``spec`` (a :class:`gpuad.table.KernelSpec`) on ``args``,
    one per parameter.

    Contiguous float32/float64 data, where every array is either full-size or one element,
    runs as a generated RawKernel with vector loads (``render(kinds, ctype) -> (source,
    name)``), float16 and complex data as one with scalar loads; anything else (real
    broadcasting, strides, other dtypes) as CuPy's ElementwiseKernel, which handles every
    layout.
    """
    arrays = [a for a in args if type(a) is cupy_ndarray]
    if not arrays:
        return elementwise_kernel(spec, preamble)(*args)
    shape = max((a.shape for a in arrays), key=math.prod)
    data_dtype = next((a.dtype for a in arrays if a.dtype != numpy.bool_), None)
    ctype = _CONTIGUOUS_DTYPES.get(data_dtype)
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
    device = cupy.cuda.runtime.getDevice()
    key = (spec, ctype, tuple(kinds), device)
    kernel = _kernel_cache.get(key)
    if kernel is None:
        kernel = _kernel_cache[key] = cached_kernel(*render(tuple(kinds), ctype))
    dtype, width = _LAUNCH[ctype]  # dtype: of the scalars passed by value
    outs = [cupy.empty(shape, data_dtype) for _ in spec.outputs]
    n = math.prod(shape)
    if n:
        threads = 256
        blocks = max(1, min((n // width + threads - 1) // threads, _max_blocks(device)))
        values = [a if type(a) is cupy_ndarray else
                  (numpy.bool_(a) if ctype_of == "bool" else dtype(a))
                  for a, (_, ctype_of) in zip(args, spec.params)]
        kernel((blocks,), (threads,), (*values, *outs, numpy.int64(n)))
    return outs[0] if len(outs) == 1 else tuple(outs)


def cached_kernel(source, name):
    """Kernel ``name`` of CUDA ``source``, compiled by NVRTC for the current device once.

    The cubin is kept in the private disk cache (:mod:`gpuad.disk_cache`, ``~/.cache/gpuad/
    cuda``) under the hash of the source, the architecture and NVRTC's version, so a second
    process compiles nothing; a stale, foreign or damaged entry is compiled anew.
    """
    arch = f"sm_{cupy.cuda.Device().compute_capability}"
    key = disk_cache.key_of(source, name, arch, _nvrtc.getVersion(), _COMPILE_OPTIONS)
    try:
        cubin = disk_cache.load_or_build(disk_cache.private_dir("cuda"), f"{key}.cubin",
                                         lambda: nvrtc_compile(source, f"{name}.cu", arch))
    except RuntimeError as error:  # an NVRTC older than the device: CuPy picks an arch
        if "gpu-architecture" not in str(error):  # a real compile error stays one
            raise
        return cupy.RawKernel(source, name, options=_COMPILE_OPTIONS)
    module = cupy.cuda.function.Module()
    module.load(cubin)
    return module.get_function(name)  # the Function keeps its module loaded


class GraphReplay:
    """A compiled function's replay on CuPy, recorded once as a CUDA graph and relaunched.

    The replay is captured on its second call (the first compiles and loads every kernel)
    into buffers the graph owns: its arguments are copied into static inputs before each
    launch, its intermediates come from a private memory pool that nothing else allocates
    from (so their addresses, baked into the graph, stay its own), and its results are copied
    out after the launch (a returned Tensor survives later calls).  A replay that cannot be
    captured (cuBLAS, cuSOLVER and cuRAND refuse capture in CuPy; a value read on the host)
    keeps running uncaptured; :attr:`status` says which and why.
    """

    def __init__(self, replay):
        self.replay, self.graph, self.calls = replay, None, 0
        self.status = "not captured yet"
        self._lock = threading.Lock()  # one graph, one set of static buffers: one call at a time

    def __call__(self, *arrays):
        with self._lock:
            self.calls += 1
            if self.calls == 2 and _GRAPHS:
                self._capture(arrays)
            if self.graph is None:
                return self.replay(*arrays)
            for static, a in zip(self._inputs, arrays):  # on the current stream, in order
                if static.data.ptr != a.data.ptr:
                    cupy.copyto(static, a)
            self.graph.launch(stream=cupy.cuda.get_current_stream())
            values, new = self._outputs
            return tuple(map(_copy_out, values)), tuple(map(_copy_out, new))

    def _capture(self, arrays):
        self._inputs = [a.copy() for a in arrays]
        self._pool = cupy.cuda.MemoryPool()  # lives as long as the graph: it holds its buffers
        stream = cupy.cuda.Stream(non_blocking=True)
        cupy.cuda.get_current_stream().synchronize()  # the copies above are done
        with cupy.cuda.using_allocator(self._pool.malloc), stream:
            stream.begin_capture()
            try:
                outputs = self.replay(*self._inputs)
            except Exception as error:  # a library call or a host read: no graph
                try:
                    stream.end_capture()
                except Exception:  # the failed capture invalidated the graph: nothing to end
                    pass
                self.status = f"not captured: {type(error).__name__}: {error}"[:300]
                self._inputs = self._pool = None
                return
            graph = stream.end_capture()
        graph.upload(stream=stream)
        stream.synchronize()
        self.graph, self._outputs = graph, outputs
        self.status = "captured as one CUDA graph"


def _copy_out(value):
    return value.copy() if type(value) is cupy_ndarray else value


_GRAPHS = os.environ.get("GPUAD_CUDA_GRAPHS", "1") != "0"  # 0: replays run uncaptured
_MAX_BLOCKS = {}  # device id -> the grid that fills it: 32 blocks of 256 threads per SM


def _max_blocks(device):
    blocks = _MAX_BLOCKS.get(device)
    if blocks is None:
        sms = cupy.cuda.Device(device).attributes["MultiProcessorCount"]
        blocks = _MAX_BLOCKS[device] = 32 * sms
    return blocks


def nccl():
    """CuPy's NCCL binding, ``cupy.cuda.nccl`` (:mod:`gpuad.distributed` reduces device arrays
    with it); RuntimeError saying what to install when cupy or the NCCL library is missing."""
    if cupy is None:
        raise RuntimeError("NCCL needs cupy and a GPU: pip install 'gpuad[cuda13]' (or cuda12)")
    with warnings.catch_warnings():  # CuPy warns when libnccl is missing: the error says it
        warnings.simplefilter("ignore")
        from cupy.cuda import nccl as binding  # loads libnccl: only for a device collective
    if not binding.available:
        raise RuntimeError("NCCL is not installed: pip install 'gpuad[cuda13]' (it brings "
                           "nvidia-nccl-cu13; cuda12: nvidia-nccl-cu12)")
    return binding


_cudnn: typing.Any = None
_cudnn_lib: typing.Any = None
if cupy is not None:
    try:  # CuPy 13 and older, with cuDNN installed; CuPy 14 removed its cuDNN bindings
        from cupy.cuda import cudnn as _cudnn_lib  # type: ignore[no-redef]
        from cupyx import cudnn as _cudnn  # type: ignore[no-redef]
    except Exception:  # no binding, or no libcudnn to load
        _cudnn = _cudnn_lib = None


def cudnn_conv(x, w, strides, dilations, pads, groups):
    """:mod:`gpuad.conv`'s convolution through cuDNN: ``x`` (N, [H,] W, C), ``w`` ([KH,] KW,
    C / groups, C_out), ``pads`` a (lo, hi) pair per spatial axis.  None where CuPy has no
    cuDNN or cuDNN does not take the case (3-D, not float32/float64): then gpuad's im2col
    runs on the GPU."""
    if _cudnn is None or x.ndim not in (3, 4) or x.dtype.char not in "fd":
        return None
    one_axis = x.ndim == 3
    if one_axis:  # a convolution of height 1
        x, w = x[:, None], w[None]
        strides, dilations, pads = (1,) + strides, (1,) + dilations, ((0, 0),) + pads
    if any(lo != hi for lo, hi in pads):  # cuDNN pads both sides alike
        x = cupy.pad(x, ((0, 0),) + pads + ((0, 0),))
        pads = ((0, 0), (0, 0))
    out = tuple((n + 2 * lo - (k - 1) * r - 1) // s + 1 for n, (lo, _), k, r, s in
                zip(x.shape[1:3], pads, w.shape[:2], dilations, strides))
    # NCHW, the layout cuDNN takes in every dtype; C_out, C / groups, KH, KW for the filter
    y = cupy.empty((x.shape[0], w.shape[3]) + out, x.dtype)
    try:
        _cudnn.convolution_forward(
            cupy.ascontiguousarray(x.transpose(0, 3, 1, 2)),
            cupy.ascontiguousarray(w.transpose(3, 2, 0, 1)), None, y,
            (pads[0][0], pads[1][0]), tuple(strides), tuple(dilations), groups,
            auto_tune=False, tensor_core="never")
    except _cudnn_lib.CuDNNError:  # a case this cuDNN does not support: im2col does it
        return None
    y = cupy.ascontiguousarray(y.transpose(0, 2, 3, 1))
    return y[:, 0] if one_axis else y


def _cupy_include_options():
    """``-I`` options for CuPy's headers (``cupy/complex.cuh`` and the CCCL it includes), as
    CuPy passes them when it compiles a RawKernel."""
    include = os.path.join(os.path.dirname(cupy.__file__), "_core", "include")
    cccl = [os.path.join(include, "cupy", "_cccl", d) for d in ("libcudacxx", "thrust", "cub")]
    return [f"-I{d}" for d in [include] + cccl]


def nvrtc_compile(source, name="kernel.cu", arch="sm_90"):
    """Compile CUDA C++ ``source`` with NVRTC and return the cubin bytes.

    Needs cupy and NVRTC (pip's ``nvidia-cuda-nvrtc``) but no GPU.  Raises RuntimeError
    with NVRTC's log when the source does not compile.
    """
    if _nvrtc is None:
        raise RuntimeError("nvrtc_compile needs cupy and NVRTC (pip install 'gpuad[test]')")
    program = _nvrtc.createProgram(source, name, [], [])
    try:
        try:
            _nvrtc.compileProgram(program, [f"--gpu-architecture={arch}", *_COMPILE_OPTIONS,
                                            *_cupy_include_options()])
        except _nvrtc.NVRTCError as error:
            raise RuntimeError(f"NVRTC could not compile {name}: {error}\n"
                               f"{_nvrtc.getProgramLog(program)}") from None
        return _nvrtc.getCUBIN(program)
    finally:
        _nvrtc.destroyProgram(program)
