"""Data-parallel training across processes and GPUs, in Horovod's shape.

Every process (rank) runs the same script on its own part of each batch; gradients are
averaged across ranks before the update, so every replica applies the same step.  MPI, through
mpi4py, launches the job and reduces host (NumPy) arrays; NCCL, through CuPy, reduces device
(CuPy) arrays without a copy to the host, each rank on the GPU of its local rank.  Launch with
``mpiexec -n 4 python -m mpi4py train.py`` (``pip install 'gpuad[dist]'``); the guide is
``docs/distributed.md``.

Gradients travel in buckets: those of one dtype are packed into flat buffers of at most
``bucket_bytes`` (25 MiB by default) and each buffer is reduced by one collective, started as
soon as it is packed; float16 gradients are reduced and averaged in float32 buckets.  Before
the data moves, the ranks compare the names, shapes and dtypes they pass (one 16-byte
all-reduce), so a mismatch is a ValueError naming the tensor on every rank instead of a hang.
After :func:`init`, an uncaught exception on any rank prints that rank's traceback and aborts
the whole job (MPI ``Abort``), as ``python -m mpi4py`` does.

Examples
--------
>>> import gpuad as ad
>>> from gpuad import distributed as dist
>>> dist.init()                      # a process started without mpiexec is a world of one
>>> dist.rank(), dist.size()
(0, 1)
>>> w = ad.Variable([1.0, 2.0], name="w")
>>> with dist.DistributedGradientTape(ad.GradientTape()) as tape:
...     loss = ad.reduce_sum(w * w)
>>> tape.gradient(loss, [w])[0].numpy()     # averaged over the ranks
array([2., 4.], dtype=float32)
"""
import hashlib
import math
import sys
import typing

import numpy

from . import backends as _backend
from . import cuda, numpy_memory
from .array_ops import convert_to_tensor
from .core import raw
from .forward import UnconnectedGradients
from .nest import flatten
from .optimizers import loss_gradients
from .tape import GradientTape
from .tensor import Tensor, concrete_value, wrap
from .variables import Variable

OPS = ("average", "sum", "min", "max")
BUCKET_BYTES = 25 * 2 ** 20  # PyTorch DDP's bucket size: a few collectives per step, each large

_NCCL_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
               "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
               "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64"}


class _World:
    """The job, once :func:`init` ran: mpi4py's MPI module and communicators (all ranks, the
    ranks on this node), and the NCCL communicator, made at the first device collective."""
    mpi: typing.Any = None
    comm: typing.Any = None
    local: typing.Any = None
    nccl: typing.Any = None
    previous_hook: typing.Any = None  # sys.excepthook before init() put the aborting one in
    collectives = 0  # data collectives started (the tests count one per bucket)


_world = _World()


def init(comm: typing.Any = None) -> None:
    """Initialize MPI and join the job (calling it again does nothing), as ``hvd.init``.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        The ranks to train over (default ``MPI.COMM_WORLD``).

    On a GPU (the ``cupy`` backend), each rank is put on GPU ``local_rank() % GPUs``.  In a
    job of more than one rank, an uncaught exception prints the rank's traceback and aborts
    every rank.  RuntimeError when mpi4py is not installed.
    """
    if _world.comm is not None:
        return
    try:  # importing mpi4py.MPI initializes MPI: only init() may do that
        from mpi4py import MPI
    except ImportError as error:
        raise RuntimeError("gpuad.distributed.init: mpi4py is not installed; pip install "
                           "'gpuad[dist]' (mpi4py and the mpich wheel, which brings mpiexec)"
                           ) from error
    comm = MPI.COMM_WORLD if comm is None else comm
    _world.mpi, _world.comm = MPI, comm
    _world.local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.rank)
    if comm.size > 1 and sys.excepthook is not _abort_on_uncaught:
        _world.previous_hook, sys.excepthook = sys.excepthook, _abort_on_uncaught
    if _backend.get_backend() == "cupy":
        _backend.set_device(f"gpu:{_world.local.rank % _backend.gpu_count()}")


def _abort_on_uncaught(kind, value, traceback):
    """A rank that died would leave the others waiting in a collective: print its error,
    then abort them all."""
    sys.stderr.write(f"gpuad.distributed: rank {_world.comm.rank} of {_world.comm.size} "
                     f"raised; aborting the job\n")
    _world.previous_hook(kind, value, traceback)
    sys.stderr.flush()
    _world.comm.Abort(1)


def _comm(op):
    if _world.comm is None:
        raise RuntimeError(f"gpuad.distributed.{op}: init() was not called; call "
                           f"gpuad.distributed.init() first, and launch the script with "
                           f"mpiexec -n N python -m mpi4py script.py")
    return _world.comm


def rank() -> int:
    """This process's rank, ``0 <= rank() < size()``."""
    return _comm("rank").rank


def size() -> int:
    """The number of ranks in the job."""
    return _comm("size").size


def local_rank() -> int:
    """This process's rank among the ranks on its node (its GPU, on the cupy backend)."""
    _comm("local_rank")
    return _world.local.rank


def local_size() -> int:
    """The number of ranks on this process's node."""
    _comm("local_size")
    return _world.local.size


# ------------------------------------------------------------------------ checks

def _leaves(op, tensors, name=None):
    """The leaves of ``tensors`` as Tensors, with their structure and their names (``name``
    for a single tensor, else a Variable's name or the leaf's position)."""
    _comm(op)
    flat, rebuild = flatten(tensors)
    flat = [convert_to_tensor(t, op=op) for t in flat]
    names = [name] if name is not None and isinstance(tensors, Tensor) else \
        [t.name if isinstance(t, Variable) else f"tensors[{i}]" for i, t in enumerate(flat)]
    return flat, rebuild, names


def _arrays(op, flat):
    return [concrete_value(t, f"gpuad.distributed.{op}") for t in flat]


def _signature(names, arrays, gathered=False):
    """What must agree across ranks: name, shape (less axis 0 for all_gather), dtype and
    backend of each tensor; None for a missing gradient."""
    return [(name, None) if a is None else
            (name, a.shape[1:] if gathered else a.shape, a.dtype.str, _backend.name_of(a))
            for name, a in zip(names, arrays)]


def _describe(entry):
    if entry is None:
        return "no such tensor"
    if entry[1] is None:
        return f"{entry[0]!r} with no gradient (None)"
    return f"{entry[0]!r} shape {entry[1]} dtype {numpy.dtype(entry[2]).name} on {entry[3]}"


def _ranks(ranks):
    shown = ", ".join(map(str, ranks[:4])) + (f" and {len(ranks) - 4} more" if ranks[4:] else "")
    return f"rank{'s' if len(ranks) > 1 else ''} {shown}"


def _mismatch(op, signatures):
    """The ValueError for the first tensor whose signature differs between ranks."""
    for i in range(max(len(s) for s in signatures)):
        entries = [s[i] if i < len(s) else None for s in signatures]
        if any(e != entries[0] for e in entries):
            name = next(e[0] for e in entries if e is not None)
            ranks_of = {}  # description -> the ranks passing it (a few, of a large job)
            for r, e in enumerate(entries):
                ranks_of.setdefault(_describe(e), []).append(r)
            found = "; ".join(f"{_ranks(ranks)}: {what}" for what, ranks in ranks_of.items())
            return ValueError(f"gpuad.distributed.{op}: tensor {name!r} differs between "
                              f"ranks: {found}")
    return ValueError(f"gpuad.distributed.{op}: the ranks' tensors differ: {signatures}")


def _check_agree(op, signature, setting=None, label="op"):
    """Raise on every rank when the ranks' signatures (or their ``label`` arguments) differ,
    before a data collective could wait forever on mismatched buffers: one 16-byte
    all-reduce of a digest (its min and max agree only when every rank's does), then a
    gather of the signatures to name the tensor."""
    comm, MPI = _world.comm, _world.mpi
    digest = int.from_bytes(hashlib.blake2b(repr((setting, signature)).encode(),
                                            digest_size=7).digest(), "little")
    extremes = numpy.array([digest, -digest], numpy.int64)
    comm.Allreduce(MPI.IN_PLACE, extremes, op=MPI.MAX)
    if extremes[0] == -extremes[1]:
        return
    everyone = comm.allgather((setting, signature))
    if any(s != setting for s, _ in everyone):
        found = ", ".join(f"rank {r}: {label}={s!r}" for r, (s, _) in enumerate(everyone))
        raise ValueError(f"gpuad.distributed.{op}: the ranks pass different {label} ({found})")
    raise _mismatch(op, [s for _, s in everyone])


def _op_arg(op, value):
    if value not in OPS:
        raise ValueError(f"gpuad.distributed.{op}: op={value!r}; expected one of {OPS}")
    return value


def _root_arg(op, root_rank):
    if not isinstance(root_rank, (int, numpy.integer)) or not 0 <= root_rank < size():
        raise ValueError(f"gpuad.distributed.{op}: root_rank={root_rank!r} is not a rank of "
                         f"this job (size {size()})")
    return int(root_rank)


# ------------------------------------------------------------------------ buckets

def bucket_dtype(dtype: typing.Any) -> numpy.dtype:
    """The dtype a gradient travels and is averaged in: float32 for float16 (its sums
    overflow and round early), its own otherwise."""
    return numpy.dtype(numpy.float32) if dtype == numpy.float16 else numpy.dtype(dtype)


def plan_buckets(arrays: list, bucket_bytes: int = BUCKET_BYTES) -> list[list[int]]:
    """Indices of ``arrays`` grouped into buckets: one backend and bucket dtype per bucket,
    in order, each at most ``bucket_bytes`` unless one array alone is larger.

    >>> import numpy as np
    >>> a, b = np.zeros(100, np.float32), np.zeros(300, np.float32)     # 400 and 1200 bytes
    >>> plan_buckets([a, b, np.zeros(8), a, np.zeros(8, np.float16)], bucket_bytes=1600)
    [[0, 1], [2], [3, 4]]
    """
    groups: list[list[int]] = []
    filling: dict = {}  # (backend, bucket dtype) -> (the bucket being filled, its bytes)
    for i, a in enumerate(arrays):
        key = (_backend.name_of(a), bucket_dtype(a.dtype))
        nbytes = a.size * key[1].itemsize
        bucket, used = filling.get(key, (None, 0))
        if bucket is None or used + nbytes > bucket_bytes:
            bucket, used = [], 0
            groups.append(bucket)
        bucket.append(i)
        filling[key] = (bucket, used + nbytes)
    return groups


def _check_reducible(op, names, arrays, how):
    for name, a in zip(names, arrays):
        if a is None:
            continue
        if a.dtype.kind not in "fciu":
            raise TypeError(f"gpuad.distributed.{op}: tensor {name!r} has dtype {a.dtype}; "
                            f"only numbers are reduced (cast it first)")
        if a.dtype.kind == "c" and how in ("min", "max"):
            raise TypeError(f"gpuad.distributed.{op}: tensor {name!r} is {a.dtype}, which "
                            f"has no {how}")
        if a.dtype.kind == "f" and a.dtype.itemsize > 8:
            raise TypeError(f"gpuad.distributed.{op}: tensor {name!r} has dtype {a.dtype}, "
                            f"which MPI and NCCL do not reduce")
        if _backend.name_of(a) == "cupy" and \
                (a.dtype.kind != "c" and bucket_dtype(a.dtype).name not in _NCCL_TYPES):
            raise TypeError(f"gpuad.distributed.{op}: tensor {name!r} has dtype {a.dtype}, "
                            f"which NCCL does not reduce")


def _start_reduce(flat, how):
    """Start the sum, min or max of the flat buffer across ranks, in place: a request to
    wait on (MPI), or None (NCCL: ordered on the current CUDA stream, no wait needed)."""
    _world.collectives += 1
    data = flat.view(flat.real.dtype) if flat.dtype.kind == "c" else flat
    if _backend.name_of(flat) == "numpy":
        MPI = _world.mpi
        mpi_op = {"min": MPI.MIN, "max": MPI.MAX}.get(how, MPI.SUM)
        return _world.comm.Iallreduce(MPI.IN_PLACE, data, op=mpi_op)
    nccl = cuda.nccl()
    nccl_op = {"min": nccl.NCCL_MIN, "max": nccl.NCCL_MAX}.get(how, nccl.NCCL_SUM)
    _nccl_comm().allReduce(data.data.ptr, data.data.ptr, data.size,
                           getattr(nccl, _NCCL_TYPES[data.dtype.name]), nccl_op,
                           _backend.cupy.cuda.get_current_stream().ptr)
    return None


def _nccl_comm():
    """The NCCL communicator, made by every rank at its first device collective (the
    collectives are matched, so all get here together); rank 0's unique id goes over MPI."""
    if _world.nccl is None:
        nccl = cuda.nccl()
        unique_id = _world.comm.bcast(nccl.get_unique_id() if rank() == 0 else None, root=0)
        _world.nccl = nccl.NcclCommunicator(size(), unique_id, rank())
    return _world.nccl


def _pack(arrays):
    """A new flat buffer of the arrays one after the other, in their bucket dtype; on NumPy
    from gpuad's buffer pool (fresh pages cost more than the copy into them)."""
    dtype = bucket_dtype(arrays[0].dtype)
    parts = [a.reshape(-1) for a in arrays]
    if _backend.module_of(arrays[0]) is numpy:
        return numpy.concatenate(parts, out=numpy_memory.empty((sum(a.size for a in arrays),),
                                                              dtype))
    return _backend.cupy.concatenate(parts, dtype=dtype)


def _plan(op, names, arrays, how, bucket_bytes, last_first=False):
    """The buckets of ``arrays`` (indices; None entries left out), once every rank agrees on
    the arrays' names, shapes and dtypes and on ``how`` (before any data moves)."""
    _check_agree(op, _signature(names, arrays), how)  # first: then all ranks raise alike
    _check_reducible(op, names, arrays, how)
    present = [i for i, a in enumerate(arrays) if a is not None]
    if last_first:
        present.reverse()
    return [[present[j] for j in b]
            for b in plan_buckets([arrays[i] for i in present], bucket_bytes)]


def _reduce_arrays(op, names, arrays, how, bucket_bytes):
    """``arrays`` (None entries pass through) reduced across ranks: new arrays, each of its
    input's dtype and shape, one collective per bucket."""
    buckets = _plan(op, names, arrays, how, bucket_bytes)
    flats, requests = [], []
    for bucket in buckets:  # pack the next bucket while the previous one travels
        flat = _pack([arrays[i] for i in bucket])
        flats.append(flat)
        requests.append(_start_reduce(flat, how))
    return _unpacked(list(arrays), buckets, flats, requests, arrays, how)


def _unpacked(out, buckets, flats, requests, like, how):
    """``out`` with each bucket's reduced arrays put at their indices, shaped and typed as
    ``like``'s, once its collective is done."""
    for bucket, flat, request in zip(buckets, flats, requests):
        for i, a in zip(bucket, _unpack(flat, request, [like[i] for i in bucket], how)):
            out[i] = a
    return out


def _unpack(flat, request, like, how):
    """A bucket's reduced arrays, shaped and typed as ``like``, once its collective is done
    (averaged in the bucket's dtype: float32 for float16)."""
    if request is not None:
        request.Wait()
    if how == "average" and size() > 1:
        if flat.dtype.kind in "fc":
            flat /= size()
        else:  # integers truncate, as reduce_mean of an integer tensor
            flat[...] = flat / size()
    out, offset = [], 0
    for a in like:
        out.append(flat[offset:offset + a.size].reshape(a.shape).astype(a.dtype, copy=False))
        offset += a.size
    return out


# ------------------------------------------------------------------------ collectives

def all_reduce(tensors: typing.Any, op: str = "average", name: str | None = None,
               bucket_bytes: int = BUCKET_BYTES) -> typing.Any:
    """Reduce a Tensor, or a nested structure of them, across ranks, as ``hvd.allreduce``.

    Parameters
    ----------
    tensors : Tensor, Variable, or list/tuple/dict of them
        The same structure, shapes and dtypes on every rank (checked: ValueError naming the
        first tensor that differs).
    op : {"average", "sum", "min", "max"}
        Average divides the sum by :func:`size` in the tensor's dtype (float32 for float16;
        integers truncate).
    name : str, optional
        The name a single tensor is reported under (default: a Variable's name, or its
        position).
    bucket_bytes : int
        Tensors of one dtype are packed into flat buffers of at most this size, one
        collective each.

    Returns
    -------
    New Tensors in the structure of ``tensors``; the same values, bit for bit, on every rank.
    Not recorded by tapes (reduce gradients, as :class:`DistributedGradientTape` does).

    Examples
    --------
    >>> import gpuad as ad
    >>> from gpuad import distributed as dist
    >>> dist.init()
    >>> out = dist.all_reduce({"w": ad.constant([1.0, 3.0]), "n": ad.constant(4)}, op="sum")
    >>> out["w"].numpy(), int(out["n"])
    (array([1., 3.], dtype=float32), 4)
    """
    how = _op_arg("all_reduce", op)
    flat, rebuild, names = _leaves("all_reduce", tensors, name)
    arrays = _reduce_arrays("all_reduce", names, _arrays("all_reduce", flat), how,
                            bucket_bytes)
    return rebuild([wrap(a) for a in arrays])


def _as_bytes(a):
    """A contiguous array's data as a flat uint8 array (the same memory)."""
    return a.reshape(-1).view(numpy.uint8)


def all_gather(tensors: typing.Any, name: str | None = None) -> typing.Any:
    """Concatenate a Tensor (or each tensor of a nested structure) of every rank along axis
    0, in rank order, as ``hvd.allgather``: the sizes of axis 0 may differ between ranks;
    the other axes and the dtype must agree (ValueError naming the tensor otherwise).

    Examples
    --------
    >>> import gpuad as ad
    >>> from gpuad import distributed as dist
    >>> dist.init()
    >>> dist.all_gather(ad.constant([[1.0, 2.0]])).shape    # (sum of the ranks' rows, 2)
    (1, 2)
    """
    flat, rebuild, names = _leaves("all_gather", tensors, name)
    comm = _world.comm
    arrays = _arrays("all_gather", flat)
    for n, a in zip(names, arrays):
        if a.ndim == 0:
            raise ValueError(f"gpuad.distributed.all_gather: tensor {n!r} is 0-d; all_gather "
                             f"concatenates along axis 0 (reshape it to shape (1,))")
    signatures = comm.allgather(_signature(names, arrays, gathered=True) +
                                [[a.shape[0] for a in arrays]])
    if any(s[:-1] != signatures[0][:-1] for s in signatures):
        raise _mismatch("all_gather", [s[:-1] for s in signatures])  # shapes after axis 0
    out = []
    for i, a in enumerate(arrays):
        xp = _backend.module_of(a)
        rows = [s[-1][i] for s in signatures]
        row_bytes = a.itemsize * math.prod(a.shape[1:])
        send = xp.ascontiguousarray(a)
        _world.collectives += 1
        if xp is numpy:
            received = numpy.empty((sum(rows),) + a.shape[1:], a.dtype)
            comm.Allgatherv(_as_bytes(send), [_as_bytes(received),
                                              [r * row_bytes for r in rows]])
        else:  # NCCL gathers equal counts: pad every rank's rows to the longest
            padded = xp.zeros((max(rows),) + a.shape[1:], a.dtype)
            padded[:a.shape[0]] = send
            gathered = xp.empty((len(rows),) + padded.shape, a.dtype)
            nccl = cuda.nccl()
            _nccl_comm().allGather(padded.data.ptr, gathered.data.ptr, padded.nbytes,
                                   nccl.NCCL_UINT8, _backend.cupy.cuda.get_current_stream().ptr)
            received = xp.concatenate([gathered[r, :n] for r, n in enumerate(rows)])
        out.append(wrap(received))
    return rebuild(out)


def broadcast(tensors: typing.Any, root_rank: int = 0, name: str | None = None) -> typing.Any:
    """Rank ``root_rank``'s value of a Tensor (or of each tensor of a nested structure), on
    every rank, as ``hvd.broadcast``; shapes and dtypes must agree across ranks (ValueError
    naming the tensor otherwise).

    Examples
    --------
    >>> import gpuad as ad
    >>> from gpuad import distributed as dist
    >>> dist.init()
    >>> dist.broadcast(ad.constant([1.0, 2.0]), root_rank=0).numpy()
    array([1., 2.], dtype=float32)
    """
    flat, rebuild, names = _leaves("broadcast", tensors, name)
    root = _root_arg("broadcast", root_rank)
    arrays = _arrays("broadcast", flat)
    _check_agree("broadcast", _signature(names, arrays), root, "root_rank")
    out = []
    for a in arrays:
        xp = _backend.module_of(a)
        # a copy on the root too: the result must not alias a Variable an optimizer updates
        buffer = xp.array(a, order="C", copy=True) if rank() == root else \
            xp.empty(a.shape, a.dtype)
        _world.collectives += 1
        if xp is numpy:
            _world.comm.Bcast(_as_bytes(buffer), root=root)
        else:
            _nccl_comm().bcast(buffer.data.ptr, buffer.nbytes, cuda.nccl().NCCL_UINT8, root,
                               _backend.cupy.cuda.get_current_stream().ptr)
        out.append(wrap(buffer))
    return rebuild(out)


def broadcast_variables(variables: typing.Any, root_rank: int = 0) -> None:
    """Assign rank ``root_rank``'s values to ``variables`` (a list or nested structure of
    Variables) on every rank, as ``hvd.broadcast_variables``: call it once after creating
    the model, so all replicas start from the same weights.

    Examples
    --------
    >>> import gpuad as ad
    >>> from gpuad import distributed as dist
    >>> dist.init()
    >>> w = ad.Variable([0.5, -0.5], name="w")
    >>> dist.broadcast_variables([w], root_rank=0)
    >>> w.numpy()
    array([ 0.5, -0.5], dtype=float32)
    """
    _comm("broadcast_variables")
    flat = flatten(variables)[0]
    for i, v in enumerate(flat):
        if not isinstance(v, Variable):
            raise TypeError(f"gpuad.distributed.broadcast_variables: variables[{i}] is a "
                            f"{type(v).__name__}, not a Variable")
    values = broadcast(list(flat), root_rank)
    for v, value in zip(flat, values):
        v.assign(value)


def _names_of(sources):
    return [f"{s.name} (sources[{i}])" if isinstance(s, Variable) else f"sources[{i}]"
            for i, s in enumerate(sources)]


def _reduce_gradients(op, grads, sources, how, bucket_bytes):
    """Gradients (Tensors or None) reduced across ranks, named after their sources."""
    arrays = [None if g is None else concrete_value(g, f"gpuad.distributed.{op}")
              for g in grads]
    reduced = _reduce_arrays(op, _names_of(sources), arrays, how, bucket_bytes)
    return [None if a is None else wrap(a) for a in reduced]


class _Streaming:
    """The tape's ``on_final`` (gpuad.tape.backward): packs each bucket of gradients and
    starts its collective as soon as the last of them is final, during the backward pass."""

    def __init__(self, op, sources, how, bucket_bytes):
        self.op, self.sources, self.how, self.bucket_bytes = op, sources, how, bucket_bytes
        self.buckets = None  # planned by start(), when the pass begins

    def start(self, read_ids):
        """The pass begins; ``read_ids``: the sources some op read (each will get a
        gradient).  All ranks agree on them, then on the buckets, before any data moves."""
        self.arrays = [s._value if s._id in read_ids else None for s in self.sources]
        # the last sources first (the last layers, whose gradients are final first); the
        # buckets start in this order on every rank, whatever order their gradients come in
        self.buckets = _plan(self.op, _names_of(self.sources), self.arrays, self.how,
                             self.bucket_bytes, last_first=True)
        self.waiting, self.started = [len(b) for b in self.buckets], 0
        self.bucket_of = {k: b for b, bucket in enumerate(self.buckets) for k in bucket}
        self.positions = {}  # a source's id -> its positions among the sources
        for k in self.bucket_of:
            self.positions.setdefault(self.sources[k]._id, []).append(k)
        self.grads = [None] * len(self.sources)
        self.flats, self.requests = [None] * len(self.buckets), [None] * len(self.buckets)

    def __call__(self, source_id, grad):
        for k in self.positions.get(source_id, ()):
            a = self.arrays[k]  # an unconnected source read by some op: zeros
            self.grads[k] = raw(grad) if grad is not None else \
                _backend.module_of(a).zeros(a.shape, a.dtype)
            self.waiting[self.bucket_of[k]] -= 1
        while self.started < len(self.buckets) and not self.waiting[self.started]:
            b, self.started = self.started, self.started + 1  # complete: send it now
            self.flats[b] = _pack([self.grads[i] for i in self.buckets[b]])
            self.requests[b] = _start_reduce(self.flats[b], self.how)

    def finish(self, local):
        """The reduced gradients (Tensors), in the sources' order; ``local``: what the tape
        returned, kept where no op read the source (None, zeros, or ones for a target)."""
        out = _unpacked([None] * len(local), self.buckets, self.flats, self.requests,
                        self.arrays, self.how)
        return [local[k] if k not in self.bucket_of else wrap(a) for k, a in enumerate(out)]


class DistributedGradientTape:
    """A ``GradientTape`` whose :meth:`gradient` returns gradients averaged across ranks, as
    ``hvd.DistributedGradientTape``: wrap the tape after recording, or use it as the
    recording context itself.

    Parameters
    ----------
    tape : GradientTape
    op : {"average", "sum", "min", "max"}
        How gradients are combined (average: the gradient of the mean of the ranks' losses).
    bucket_bytes : int
        Gradients of one dtype are packed into flat buffers of at most this many bytes and
        reduced with one collective per buffer.

    Everything else (``watch``, ``jacobian``, ``stop_recording``, ...) is the wrapped tape's.
    The ranks must ask for the gradients of the same sources (checked by name, shape and
    dtype: a ValueError naming the source otherwise).

    Examples
    --------
    >>> import gpuad as ad
    >>> from gpuad import distributed as dist
    >>> dist.init()
    >>> w = ad.Variable(3.0, name="w")
    >>> with ad.GradientTape() as tape:
    ...     loss = w * w
    >>> tape = dist.DistributedGradientTape(tape)
    >>> float(tape.gradient(loss, w))
    6.0
    """

    def __init__(self, tape: GradientTape, op: str = "average",
                 bucket_bytes: int = BUCKET_BYTES) -> None:
        _comm("DistributedGradientTape")
        self._tape = tape
        self._op = _op_arg("DistributedGradientTape", op)
        self._bucket_bytes = bucket_bytes

    def __getattr__(self, name):  # watch, jacobian, stop_recording, ...: the tape's own
        if name == "_tape":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self._tape, name)

    def __enter__(self):
        self._tape.__enter__()
        return self

    def __exit__(self, *exc):
        return self._tape.__exit__(*exc)

    def gradient(self, target: typing.Any, sources: typing.Any,
                 output_gradients: typing.Any = None,
                 unconnected_gradients: typing.Any = UnconnectedGradients.NONE) -> typing.Any:
        """``tape.gradient(...)`` reduced across ranks (``op``, average by default).

        The reduction overlaps the backward pass: a bucket's collective starts as soon as
        the last of its gradients is final (the last layers' first).  A source that an op
        read but the target does not depend on gets zeros, not None (every rank must send
        the same buckets before it knows)."""
        op = "DistributedGradientTape.gradient"
        flat_sources = flatten(sources)[0]
        streaming = _Streaming(op, flat_sources, self._op, self._bucket_bytes)
        self._tape._on_final = streaming
        try:
            grads = self._tape.gradient(target, sources, output_gradients,
                                        unconnected_gradients)
        finally:
            self._tape._on_final = None
        flat_grads, rebuild = flatten(grads)
        if streaming.buckets is None:  # no backward pass ran: reduce what gradient returned
            return rebuild(_reduce_gradients(op, flat_grads, flat_sources, self._op,
                                             self._bucket_bytes))
        return rebuild(streaming.finish(flat_grads))


class DistributedOptimizer:
    """An optimizer whose ``apply_gradients`` first averages the gradients across ranks, as
    ``hvd.DistributedOptimizer``; anything else is the wrapped optimizer's.

    Parameters
    ----------
    optimizer : an optimizer with Keras 3's ``apply_gradients(grads_and_vars)``
        (:mod:`gpuad.optimizers`)
    op, bucket_bytes : as :class:`DistributedGradientTape`

    Examples
    --------
    >>> import gpuad as ad
    >>> from gpuad import distributed as dist
    >>> dist.init()
    >>> w = ad.Variable(1.0, name="w")
    >>> opt = dist.DistributedOptimizer(ad.optimizers.SGD(learning_rate=0.5))
    >>> with ad.GradientTape() as tape:
    ...     loss = w * w
    >>> _ = opt.apply_gradients(zip([tape.gradient(loss, w)], [w]))
    >>> float(w)
    0.0
    """

    def __init__(self, optimizer: typing.Any, op: str = "average",
                 bucket_bytes: int = BUCKET_BYTES) -> None:
        _comm("DistributedOptimizer")
        self._optimizer = optimizer
        self._op = _op_arg("DistributedOptimizer", op)
        self._bucket_bytes = bucket_bytes

    def __getattr__(self, name):  # learning_rate, iterations, ...: the optimizer's own
        if name == "_optimizer":
            raise AttributeError(name)
        return getattr(self._optimizer, name)

    def __setattr__(self, name, value):  # opt.learning_rate = 0.01 sets the optimizer's
        if name in ("_optimizer", "_op", "_bucket_bytes"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._optimizer, name, value)

    def apply_gradients(self, grads_and_vars: typing.Any, *args: typing.Any,
                        **kwargs: typing.Any) -> typing.Any:
        """Average the gradients across ranks, then apply them with the wrapped optimizer."""
        pairs = list(grads_and_vars)
        grads = _reduce_gradients("DistributedOptimizer.apply_gradients",
                                  [g for g, _ in pairs], [v for _, v in pairs], self._op,
                                  self._bucket_bytes)
        return self._optimizer.apply_gradients(list(zip(grads, [v for _, v in pairs])),
                                               *args, **kwargs)

    def minimize(self, loss: typing.Any, var_list: typing.Any,
                 tape: GradientTape | None = None) -> typing.Any:
        """Keras 3's ``minimize``: the gradients of ``loss`` (a Tensor that ``tape``
        recorded, or a function of no arguments) with respect to ``var_list``, averaged
        across ranks and applied."""
        grads, var_list = loss_gradients(
            loss, var_list, tape, "gpuad.distributed.DistributedOptimizer.minimize: loss is a "
                                  "Tensor and no tape was given; pass the tape that recorded "
                                  "it, or a function of no arguments")
        return self.apply_gradients(zip(grads, var_list))
