"""Memory tricks of the NumPy backend: a pool of large buffers, and in-place writes.

Fresh pages cost more than arithmetic on them, so large results of gpuad's NumPy ops come from
a pool (:func:`empty`), as CuPy's memory pool does on the GPU; an op may write into an
array that nothing else can see (:func:`sole_view`, NumPy's own temporary elision); and the
rendered NumPy rules write into fresh intermediates (:func:`into`) and select by masking bits
(:func:`select`).
"""
import math
import sys
import threading

import numpy

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


def add_into_sole(old, new, refs):
    """``old += new`` in place when ``old`` is a large NumPy array that nothing but the
    caller's ``refs`` references can see, ``new`` matches its dtype and broadcasts to its
    shape; returns whether it did (else the caller makes a new sum)."""
    if type(old) is numpy.ndarray and type(new) is numpy.ndarray and old.dtype == new.dtype \
            and old.nbytes >= POOL_MIN_BYTES and sole_view(old, refs) \
            and old.shape == numpy.broadcast(old, new).shape:
        numpy.add(old, new, out=old)
        return True
    return False


# ------------------------------------------------------------------ in the rendered rules

def into(ufunc, k, *args):
    """``ufunc(*args)``, written into ``args[k]`` (a fresh intermediate that only this op
    reads) when it has the result's shape, else into a pooled buffer when the result is large
    (``k=None``: no fresh argument).  Rendered into the rules that run on large arrays."""
    shape = numpy.broadcast(*args).shape
    buffer = args[k] if k is not None else None
    if type(buffer) is numpy.ndarray and buffer.shape == shape:
        return ufunc(*args, out=buffer)
    dtype = numpy.result_type(*args)
    return ufunc(*args, out=numpy_out(shape, dtype)) if dtype.kind == "f" else ufunc(*args)


def numpy_out(shape, dtype):
    """The ``out`` of an op's ufunc: a pooled buffer when large, else ``...`` (``out=...``
    makes NumPy return a 0-d array, not a scalar)."""
    if math.prod(shape) * dtype.itemsize >= POOL_MIN_BYTES:
        return empty(shape, dtype)
    return ...


_SAME_SIZE_INT = {n: numpy.dtype(f"int{8 * n}") for n in (2, 4, 8)}


def select(cond, a, b):
    """``numpy.where(cond, a, b)``; when one branch is 0, by masking bits instead: exactly
    TensorFlow's select (NaN in the other branch gives 0) and ~10x faster than numpy.where,
    which branches per element."""
    for value, zero, keep in ((a, b, cond), (b, a, None)):
        if type(value) is numpy.ndarray and value.dtype.kind == "f" and numpy.ndim(zero) == 0 \
                and zero == 0 and value.ndim >= numpy.ndim(cond):
            if keep is None:
                keep = numpy.logical_not(cond)
            ints = _SAME_SIZE_INT[value.dtype.itemsize]
            # True -> all bits set, False -> 0; large masks and results in pooled buffers
            mask = numpy.negative(keep, dtype=ints, out=numpy_out(keep.shape, ints))
            shape = numpy.broadcast(value, mask).shape
            out = mask if mask.shape == shape else numpy_out(shape, ints)
            return numpy.bitwise_and(value.view(ints), mask, out=out).view(value.dtype)
    return numpy.where(cond, a, b)
