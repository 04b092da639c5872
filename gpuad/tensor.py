"""Tensor, and Python / NumPy / CuPy data with TensorFlow's dtype rules.

Ops are installed on Tensor by the package (operators, indexing, iteration: see
``gpuad/__init__.py``); :func:`gpuad.convert_to_tensor` builds on the data rules here.
"""
import itertools
import numbers
import typing

import numpy
import numpy.typing

from . import backends as _backend
from .backends import cupy_ndarray, numpy_ndarray

next_id = itertools.count(1).__next__  # tensor ids: unique, increasing (0 = never watched)


class Tensor:
    """An immutable array on the NumPy or CuPy backend that gradient tapes can record.

    Create tensors with :func:`gpuad.constant` or :func:`gpuad.convert_to_tensor`.

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([1.0, 2.0], backend="numpy")
    >>> x
    <gpuad.Tensor shape=(2,) dtype=float32 backend=numpy numpy=array([1., 2.], dtype=float32)>
    >>> (x * 2 + 1).numpy()
    array([3., 5.], dtype=float32)
    """

    __slots__ = ("_value", "_id", "__weakref__")
    _value: typing.Any  # the numpy.ndarray or cupy.ndarray
    _id: int  # what tapes know it by (0: never watched)

    if typing.TYPE_CHECKING:  # installed by gpuad/__init__.py (the ops live in higher layers)
        def __add__(self, other: "TensorLike") -> "Tensor": ...
        def __radd__(self, other: "TensorLike") -> "Tensor": ...
        def __sub__(self, other: "TensorLike") -> "Tensor": ...
        def __rsub__(self, other: "TensorLike") -> "Tensor": ...
        def __mul__(self, other: "TensorLike") -> "Tensor": ...
        def __rmul__(self, other: "TensorLike") -> "Tensor": ...
        def __truediv__(self, other: "TensorLike") -> "Tensor": ...
        def __rtruediv__(self, other: "TensorLike") -> "Tensor": ...
        def __floordiv__(self, other: "TensorLike") -> "Tensor": ...
        def __rfloordiv__(self, other: "TensorLike") -> "Tensor": ...
        def __mod__(self, other: "TensorLike") -> "Tensor": ...
        def __rmod__(self, other: "TensorLike") -> "Tensor": ...
        def __pow__(self, other: "TensorLike") -> "Tensor": ...
        def __rpow__(self, other: "TensorLike") -> "Tensor": ...
        def __matmul__(self, other: "TensorLike") -> "Tensor": ...
        def __rmatmul__(self, other: "TensorLike") -> "Tensor": ...
        def __lt__(self, other: "TensorLike") -> "Tensor": ...
        def __le__(self, other: "TensorLike") -> "Tensor": ...
        def __gt__(self, other: "TensorLike") -> "Tensor": ...
        def __ge__(self, other: "TensorLike") -> "Tensor": ...
        def __and__(self, other: "TensorLike") -> "Tensor": ...
        def __or__(self, other: "TensorLike") -> "Tensor": ...
        def __eq__(self, other: object) -> "Tensor": ...  # type: ignore[override]
        def __ne__(self, other: object) -> "Tensor": ...  # type: ignore[override]
        def __neg__(self) -> "Tensor": ...
        def __pos__(self) -> "Tensor": ...
        def __abs__(self) -> "Tensor": ...
        def __invert__(self) -> "Tensor": ...
        def __getitem__(self, key: typing.Any) -> "Tensor": ...
        def __iter__(self) -> typing.Iterator["Tensor"]: ...

    __array_priority__ = 1000
    __hash__ = None  # type: ignore[assignment]  # elementwise __eq__, as TF 2: use id(t)

    @property
    def shape(self):
        """The shape, a tuple of ints."""
        return self._value.shape

    @property
    def dtype(self):
        """The element type, a :class:`numpy.dtype`."""
        return self._value.dtype

    @property
    def ndim(self):
        return self._value.ndim

    @property
    def size(self):
        return self._value.size

    @property
    def backend(self):
        """``"numpy"`` or ``"cupy"``."""
        return _backend.name_of(self._value)

    @property
    def array(self):
        """The raw backend array (numpy.ndarray or cupy.ndarray), not a copy."""
        return self._value

    def numpy(self):
        """A NumPy array with the tensor's value (a host copy on the CuPy backend)."""
        return _backend.to_numpy(concrete_value(self, "Tensor.numpy()"))

    def to(self, name):
        """A copy of this tensor on backend ``name`` (``"numpy"`` or ``"cupy"``)."""
        return wrap(_backend.asarray(_backend.to_numpy(self._value) if name == "numpy"
                                     else self._value, name))

    def __array__(self, dtype=None, copy=None):
        value = self.numpy()
        return value if dtype is None else value.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # ndarray (op) Tensor arrives here: the Tensor's operator runs, so the tape sees it
        dunder = _OPERATOR_UFUNCS.get(ufunc.__name__)
        if dunder and method == "__call__" and not kwargs and len(inputs) == 2:
            a, b = inputs
            if isinstance(a, Tensor):
                return getattr(a, f"__{dunder}__")(b)
            return getattr(b, f"__{_REFLECTED.get(dunder, 'r' + dunder)}__")(a)
        name = _GPUAD_NAME_OF_UFUNC.get(ufunc.__name__, ufunc.__name__)
        raise TypeError(f"numpy.{ufunc.__name__} does not apply to a gpuad Tensor (NumPy would "
                        f"copy it to the host and no tape would see the op): use gpuad.{name}, "
                        f"or Tensor.numpy() for a NumPy array")

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export the tensor's memory through DLPack (zero-copy; see :func:`gpuad.from_dlpack`)."""
        given = {"stream": stream, "max_version": max_version, "dl_device": dl_device,
                 "copy": copy}
        return concrete_value(self, "Tensor.__dlpack__()").__dlpack__(
            **{k: v for k, v in given.items() if v is not None})

    def __dlpack_device__(self):
        return self._value.__dlpack_device__()

    @property
    def __cuda_array_interface__(self):
        """CUDA Array Interface of a CuPy-backed tensor (Numba, PyTorch, JAX read it)."""
        if self.backend != "cupy":
            raise AttributeError("a Tensor on the numpy backend has no __cuda_array_interface__")
        return concrete_value(self, "Tensor.__cuda_array_interface__")\
            .__cuda_array_interface__

    def _scalar(self, kind):
        if self._value.size != 1:
            raise TypeError(f"{kind}(): only a Tensor of one element converts to a Python "
                            f"scalar; this one has shape {self.shape}")
        return _backend.to_numpy(concrete_value(self, f"{kind}()")).reshape(()).item()

    def __float__(self):
        return float(self._scalar("float"))

    def __int__(self):
        return int(self._scalar("int"))

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer Tensors can be used as an index, not {self.dtype}")
        return int(self._scalar("index"))

    def __bool__(self):
        if self._value.size != 1:
            raise ValueError(f"the truth value of a Tensor of shape {self.shape} is ambiguous")
        return bool(self._scalar("bool"))

    def __len__(self):
        if not self._value.ndim:
            raise TypeError("len() of a 0-d Tensor")
        return self._value.shape[0]

    def __repr__(self):
        if _traced(self):
            return (f"<gpuad.Tensor shape={self.shape} dtype={self.dtype} "
                    f"backend={self.backend} (traced by gpuad.function: no value yet)>")
        return (f"<gpuad.Tensor shape={self.shape} dtype={self.dtype} "
                f"backend={self.backend} numpy={self.numpy()!r}>")

    def __str__(self):
        if _traced(self):
            return f"gpuad.Tensor(<traced>, shape={self.shape}, dtype={self.dtype})"
        return f"gpuad.Tensor({self.numpy()}, shape={self.shape}, dtype={self.dtype})"

    # A copy is a new tensor that no tape knows (id 0); the default copy would keep the id.
    def __copy__(self):
        return wrap(self._value)  # tensors are immutable: the buffer can be shared

    def __deepcopy__(self, memo):
        return wrap(self._value.copy())

    def __reduce__(self):
        return _unpickle_tensor, (_backend.to_numpy(self._value), self.backend)


# numpy ufunc -> the Tensor operator it stands for (ndarray + Tensor calls numpy.add)
_OPERATOR_UFUNCS = {
    "add": "add", "subtract": "sub", "multiply": "mul", "divide": "truediv",
    "true_divide": "truediv", "floor_divide": "floordiv", "remainder": "mod", "power": "pow",
    "matmul": "matmul", "less": "lt", "less_equal": "le", "greater": "gt",
    "greater_equal": "ge", "equal": "eq", "not_equal": "ne", "logical_and": "and",
    "bitwise_and": "and", "logical_or": "or", "bitwise_or": "or"}
# a comparison with the Tensor on the right is the mirrored comparison with it on the left
_REFLECTED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}
_GPUAD_NAME_OF_UFUNC = {
    "absolute": "abs", "arcsin": "asin", "arccos": "acos", "arctan": "atan",
    "arctan2": "atan2", "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh",
    "power": "pow", "remainder": "mod", "true_divide": "divide", "conjugate": "conj",
    "fmax": "maximum", "fmin": "minimum", "rint": "round"}


# Checks run before a Tensor's value becomes Python or NumPy data: gpuad.function's tracer
# puts one here while it traces (a value computed from a call's inputs is not known at trace
# time), each ``check(tensor, what)`` raising for the tensors it traces.  Empty otherwise.
value_read_checks = []


def concrete_value(t, what):
    """``t``'s raw array, for code that turns it into Python or NumPy data (``what`` names
    the use in the error a tracer raises for a traced tensor)."""
    for check in value_read_checks:
        check(t, what)
    return t._value


def _traced(t):
    try:
        concrete_value(t, "repr")
    except Exception:  # a tracer's error: print the tensor without its value
        return True
    return False


def wrap(value):
    """A new Tensor around a backend array (a NumPy scalar becomes a 0-d array).

    Tensors are made only here and by the ops' fast paths: ``Tensor()`` with no ``__init__``
    is the cheapest object Python can make, and ops make one per call.
    """
    out = Tensor()
    out._value = value if type(value) is numpy_ndarray or type(value) is cupy_ndarray \
        else numpy.asarray(value)
    out._id = 0
    return out


def _unpickle_tensor(value, backend):
    """A pickled Tensor's value (a NumPy array) back on its backend, unwatched."""
    return wrap(_backend.asarray(value, backend))


# -------------------------------------------------------------------------- conversion

def _python_dtype(value):
    """TensorFlow's dtype for Python data: float -> float32, int -> int32, bool -> bool."""
    if isinstance(value, bool):
        return numpy.bool_
    if isinstance(value, numbers.Integral):
        return numpy.int32 if -2**31 <= value < 2**31 else numpy.int64
    if isinstance(value, numbers.Real):
        return numpy.float32
    if isinstance(value, numbers.Complex):
        return numpy.complex128
    return None


# the dtype kinds a Python number converts to directly (float -> int, complex -> real are refused)
_KINDS_A_NUMBER_BECOMES = {numpy.bool_: "biufc", numpy.int32: "biufc", numpy.int64: "biufc",
                           numpy.float32: "fc", numpy.complex128: "c"}


def contains_tensor(value):
    return isinstance(value, Tensor) or (
        isinstance(value, (list, tuple)) and any(contains_tensor(v) for v in value))


def host_array(value, dtype, op, backend=None):
    """Python data or a numpy/cupy array -> an array, before placing it on a backend.

    Data read through DLPack is shared where it already lives on ``backend``'s device (or
    anywhere when ``backend`` is None), copied otherwise.
    """
    if _backend.is_array(value):
        if value.dtype.kind not in "biufc":  # object, str, bytes, void, datetime arrays
            raise TypeError(f"{op}: cannot convert an array of dtype {value.dtype} to a "
                            f"Tensor (expected bool, integer, floating or complex data)")
        return value
    if isinstance(value, range):
        value = list(value)  # as a list: Python ints become int32, as TensorFlow
    if isinstance(value, memoryview) or (hasattr(value, "__array__")
                                         and not hasattr(value, "__dlpack__")):
        return host_array(numpy.asarray(value), dtype, op)
    if hasattr(value, "__dlpack__"):  # torch, JAX, CuPy arrays: shared, not copied
        try:
            return host_array(_backend.from_dlpack(value, backend), dtype, op)
        except (BufferError, RuntimeError) as error:
            raise TypeError(f"{op}: cannot read {type(value).__name__} through DLPack: "
                            f"{error}") from None
    if isinstance(value, (list, tuple)):
        try:
            array = numpy.asarray(value)
        except ValueError:
            raise ValueError(f"{op}: cannot convert a ragged nested sequence to a Tensor "
                             f"(its elements have different shapes)") from None
        if array.dtype == object or array.dtype.kind in "USV":
            bad = next((v for v in nested_items(value) if _python_dtype(v) is None
                        and not _backend.is_array(v)), value)
            raise TypeError(f"{op}: cannot convert {type(bad).__name__} {bad!r:.60} "
                            f"to a Tensor")
        if dtype is None and not any(_backend.is_array(v) for v in nested_items(value)):
            if array.dtype == numpy.float64:
                array = array.astype(numpy.float32)
            elif array.dtype == numpy.int64 and array.size and (
                    -2**31 <= array.min() and array.max() < 2**31):
                array = array.astype(numpy.int32)
            elif array.dtype == numpy.int64 and not array.size:
                array = array.astype(numpy.float32)  # [] is float32, as TensorFlow
        return array
    python_dtype = _python_dtype(value)
    if python_dtype is None:
        raise TypeError(f"{op}: cannot convert {type(value).__name__} {value!r:.60} to a Tensor")
    if dtype is None or numpy.dtype(dtype).kind not in _KINDS_A_NUMBER_BECOMES[python_dtype]:
        return numpy.asarray(value, dtype=python_dtype)  # _cast_checked refuses what is lossy
    try:
        return numpy.asarray(value, dtype=dtype)  # directly: 0.1 in float64 is not float32's 0.1
    except OverflowError:
        raise ValueError(f"{op}: {value!r:.60} does not fit in a {numpy.dtype(dtype)} "
                         f"Tensor") from None


def nested_items(value):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from nested_items(v)
    else:
        yield value


def dtype_of_tensors_in(value, op):
    """The one dtype of the Tensors in a nested list; Tensors of two dtypes are a TypeError."""
    dtypes = sorted({str(v.dtype) for v in nested_items(value) if isinstance(v, Tensor)})
    if len(dtypes) > 1:
        raise TypeError(f"{op}: a nested list holds Tensors of dtypes {' and '.join(dtypes)}; "
                        f"gpuad does not promote dtypes implicitly (use gpuad.cast)")
    return numpy.dtype(dtypes[0])


def cast_checked(array, dtype, op):
    """Cast data to ``dtype``; float data into an integer tensor is an error, as TensorFlow."""
    dtype = numpy.dtype(dtype)
    if array.dtype == dtype:
        return array
    if array.dtype.kind in "fc" and dtype.kind in "iub":
        raise TypeError(f"{op}: cannot convert {array.dtype} data to a {dtype} Tensor "
                        f"(use gpuad.cast for an explicit conversion)")
    if array.dtype.kind == "c" and dtype.kind == "f":
        raise TypeError(f"{op}: cannot convert complex data to a {dtype} Tensor")
    return array.astype(dtype)


# ------------------------------------------------------------------------ type hints

# What the public API converts to a Tensor (tf.types.experimental.TensorLike): Tensors and
# Variables, NumPy and CuPy arrays and scalars, Python numbers and nested sequences of them
TensorLike = typing.Union[Tensor, numpy.ndarray, numpy.generic, float, int, bool, complex,
                          typing.Sequence[typing.Any]]
# A nested structure of Tensors (lists, tuples, dicts), as GradientTape.gradient takes
TensorStructure = typing.Any
DTypeLike = numpy.typing.DTypeLike
