"""Zero-copy exchange with PyTorch, JAX, CuPy and NumPy through DLPack, as ``tf.experimental.dlpack``.

A gpuad Tensor implements ``__dlpack__`` and ``__dlpack_device__``, so ``torch.from_dlpack(t)``,
``jax.dlpack.from_dlpack(t)``, ``cupy.from_dlpack(t)`` and ``numpy.from_dlpack(t)`` read it
without a copy; :func:`from_dlpack` reads theirs.  Memory is shared, not copied: a consumer that
writes into the buffer changes the Tensor too.
"""
import ctypes
import typing

from .. import backends as _backend
from ..tensor import Tensor, concrete_value, wrap

__all__ = ["from_dlpack", "to_dlpack"]


def to_dlpack(tf_tensor: Tensor) -> typing.Any:
    """A DLPack capsule of ``tf_tensor``'s memory (no copy), as ``tf.experimental.dlpack.to_dlpack``.

    A capsule can be consumed once.  Prefer passing the Tensor itself to the consumer's
    ``from_dlpack``, which calls ``Tensor.__dlpack__``.

    Examples
    --------
    >>> import gpuad as ad
    >>> capsule = ad.experimental.dlpack.to_dlpack(ad.constant([1.0, 2.0], backend="numpy"))
    >>> ad.experimental.dlpack.from_dlpack(capsule).numpy()
    array([1., 2.], dtype=float32)
    """
    if not isinstance(tf_tensor, Tensor):
        raise TypeError(f"to_dlpack: expected a gpuad Tensor, got {type(tf_tensor).__name__}")
    return concrete_value(tf_tensor, "to_dlpack()").__dlpack__()


def from_dlpack(dlcapsule: typing.Any) -> Tensor:
    """A Tensor sharing the memory of a DLPack capsule or of any object with ``__dlpack__``.

    The data stays where it is: host memory becomes a ``numpy``-backend Tensor, CUDA memory a
    ``cupy``-backend one (zero-copy both ways).  ``gpuad.from_dlpack`` is the same function.

    Examples
    --------
    >>> import numpy as np
    >>> import gpuad as ad
    >>> a = np.arange(3.0)
    >>> t = ad.from_dlpack(a)
    >>> a[0] = 7.0                      # the memory is shared
    >>> t.numpy()
    array([7., 1., 2.])
    """
    value = dlcapsule if hasattr(dlcapsule, "__dlpack__") else _Capsule(dlcapsule)
    return wrap(_backend.from_dlpack(value))


class _Capsule:
    """A bare DLPack capsule dressed as a producer, for consumers that take only producers."""

    def __init__(self, capsule):
        self.capsule = capsule
        self.device = _capsule_device(capsule)

    def __dlpack__(self, **_):
        return self.capsule

    def __dlpack_device__(self):
        return self.device


_pythonapi = ctypes.pythonapi
_pythonapi.PyCapsule_IsValid.restype = ctypes.c_int
_pythonapi.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_pythonapi.PyCapsule_GetPointer.restype = ctypes.c_void_p
_pythonapi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
# where DLTensor.device sits (dlpack.h): after the data pointer, inside DLManagedTensor, or
# after the version, manager context, deleter and flags inside DLManagedTensorVersioned
_DEVICE_OFFSET = {b"dltensor": 8, b"dltensor_versioned": 40}


def _capsule_device(capsule):
    for name, offset in _DEVICE_OFFSET.items():
        if _pythonapi.PyCapsule_IsValid(capsule, name):
            address = _pythonapi.PyCapsule_GetPointer(capsule, name) + offset
            device = (ctypes.c_int32 * 2).from_address(address)
            return int(device[0]), int(device[1])
    raise TypeError(f"from_dlpack: expected an object with __dlpack__ or an unused DLPack "
                    f"capsule, got {type(capsule).__name__}")
