"""Variables: mutable tensors, whose reads the recorders see (``tf.Variable``).

Every change of a Variable's value is one ``assign`` primitive (the variable, its new value),
so ``gpuad.function``'s tracer sees each one; sliced and scatter assignments compute the new
value first (non-differentiable, as TensorFlow's), then assign it.
"""
import numbers
import typing

import numpy

from . import backends as _backend
from . import core
from .array_ops import constant, convert_to_tensor, getitem
from .scatter_ops import (tensor_scatter_nd_add, tensor_scatter_nd_max, tensor_scatter_nd_min,
                          tensor_scatter_nd_sub, tensor_scatter_nd_update)
from .tensor import DTypeLike, Tensor, TensorLike, concrete_value, next_id


class Variable(Tensor):
    """A mutable tensor, as ``tf.Variable``: trainable variables are watched automatically.

    Parameters
    ----------
    initial_value : tensor-like
    trainable : bool
        Watched by a ``GradientTape`` (with ``watch_accessed_variables=True``) when read.
    name : str, optional
    dtype : dtype, optional

    Examples
    --------
    >>> import gpuad as ad
    >>> v = ad.Variable(1.0)
    >>> with ad.GradientTape() as tape:
    ...     y = v * v * v
    >>> float(tape.gradient(y, v))
    3.0
    >>> v.assign_add(1.0).numpy()
    array(2., dtype=float32)
    >>> w = ad.Variable([1.0, 2.0, 3.0, 4.0])
    >>> w[1:3].assign([9.0, 8.0]).numpy()
    array([1., 9., 8., 4.], dtype=float32)
    >>> w.scatter_nd_add([[0], [0]], [1.0, 2.0]).numpy()
    array([4., 9., 8., 4.], dtype=float32)
    """

    __slots__ = ("trainable", "name")

    def __init__(self, initial_value: TensorLike, trainable: bool = True, name: str | None = None,
                 dtype: DTypeLike | None = None) -> None:
        value = concrete_value(convert_to_tensor(initial_value, dtype=dtype),
                               "Variable(initial_value)")  # a tracer refuses a traced one
        self._value = value.copy()  # a variable owns its buffer
        self._id = next_id()
        self.trainable = bool(trainable)
        self.name = name or "Variable"

    # A copy is a new variable with its own id and buffer, so tapes tell it from the original.
    def __copy__(self):
        return _new_variable(self._value.copy(), self.trainable, self.name)

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __reduce__(self):
        return _unpickle_variable, (_backend.to_numpy(self._value), self.backend,
                                    self.trainable, self.name)

    def read_value(self) -> Tensor:
        """The current value as a Tensor (recorded on active tapes, as a read)."""
        return read_variable(self)

    def value(self) -> Tensor:
        """The current value as a Tensor, as ``tf.Variable.value`` (the same as
        :meth:`read_value`)."""
        return read_variable(self)

    def assign(self, value: TensorLike) -> "Variable":
        """Replace the value (same shape and dtype); returns the variable.

        The old array is kept by any tape that recorded a read, so saved values stay valid.
        """
        return self._update(value, None, "Variable.assign")

    def assign_add(self, delta: TensorLike) -> "Variable":
        """Add ``delta`` to the value; returns the variable."""
        return self._update(delta, "add", "Variable.assign_add")

    def assign_sub(self, delta: TensorLike) -> "Variable":
        """Subtract ``delta`` from the value; returns the variable."""
        return self._update(delta, "subtract", "Variable.assign_sub")

    def scatter_nd_update(self, indices: TensorLike, updates: TensorLike) -> "Variable":
        """Replace the elements or slices at ``indices`` by ``updates``, as
        :func:`gpuad.tensor_scatter_nd_update` (the last of repeated indices wins); returns
        the variable."""
        return self._scatter(tensor_scatter_nd_update, indices, updates,
                             "Variable.scatter_nd_update")

    def scatter_nd_add(self, indices: TensorLike, updates: TensorLike) -> "Variable":
        """Add ``updates`` at ``indices`` (repeated indices add each); returns the variable."""
        return self._scatter(tensor_scatter_nd_add, indices, updates, "Variable.scatter_nd_add")

    def scatter_nd_sub(self, indices: TensorLike, updates: TensorLike) -> "Variable":
        """Subtract ``updates`` at ``indices``; returns the variable."""
        return self._scatter(tensor_scatter_nd_sub, indices, updates, "Variable.scatter_nd_sub")

    def scatter_nd_max(self, indices: TensorLike, updates: TensorLike) -> "Variable":
        """The maximum of the value and ``updates`` at ``indices``; returns the variable."""
        return self._scatter(tensor_scatter_nd_max, indices, updates, "Variable.scatter_nd_max")

    def scatter_nd_min(self, indices: TensorLike, updates: TensorLike) -> "Variable":
        """The minimum of the value and ``updates`` at ``indices``; returns the variable."""
        return self._scatter(tensor_scatter_nd_min, indices, updates, "Variable.scatter_nd_min")

    def _scatter(self, scatter, indices, updates, op):
        try:
            with core.recording_suspended():  # an assignment: nothing to record, no read
                new = scatter(self, indices, updates)
        except (TypeError, ValueError, IndexError) as error:
            raise type(error)(f"{op}: {error}") from None
        return self._update(new, None, op)

    def __getitem__(self, key: typing.Any) -> "VariableSlice":
        """``v[key]``: a Tensor, differentiable with respect to ``v`` as any getitem, which
        can be assigned to as TensorFlow's: ``v[1:3].assign(value)``."""
        read = getitem(self, key)
        if type(read) is not Tensor:  # a transform's value (vmap's batch): no assign
            return typing.cast(VariableSlice, read)
        part = core.bind(_SLICE_OF_VARIABLE, (read,))
        part._variable, part._key = self, key
        return part

    def _assign_slice(self, key, value):
        op = "Variable[...].assign"
        key = _slice_key(key, op)
        try:
            target = self._value[key]  # a view: the slice's shape, and IndexErrors
        except IndexError as error:
            raise IndexError(f"{op}: {error} (variable shape {self.shape})") from None
        new = convert_to_tensor(value, dtype=self.dtype, op=op)
        if new.backend != self.backend:
            raise TypeError(f"{op}: value is on {new.backend}, the variable on {self.backend}")
        try:  # TensorFlow broadcasts the value too
            fits = numpy.broadcast_shapes(new.shape, target.shape) == target.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: cannot broadcast a value of shape {new.shape} to the slice "
                             f"{key!r} of shape {target.shape} of a variable of shape "
                             f"{self.shape}")
        return self._update(core.bind(SLICE_UPDATE, (self, new), key), None, op)

    def _update(self, value, how, op):
        # a user's array is copied (they may change it); a Tensor's is immutable, kept as is
        new = constant(value, dtype=self.dtype) if _backend.is_array(value) else \
            convert_to_tensor(value, dtype=self.dtype, op=op)
        if new.shape != self.shape:
            raise ValueError(f"{op}: shape {new.shape} does not match the variable's shape "
                             f"{self.shape}")
        if new.backend != self.backend:
            raise TypeError(f"{op}: value is on {new.backend}, the variable on {self.backend}")
        self._value = core.bind(ASSIGN, (self, new), how)._value
        return self

    def __repr__(self):
        return (f"<gpuad.Variable '{self.name}' shape={self.shape} dtype={self.dtype} "
                f"backend={self.backend} numpy={self.numpy()!r}>")


def _new_variable(value, trainable, name):
    """A Variable owning the backend array ``value``, with a fresh id (no conversion)."""
    var = Variable.__new__(Variable)
    var._value = value
    var._id = next_id()
    var.trainable = trainable
    var.name = name
    return var


def _unpickle_variable(value, backend, trainable, name):
    """A pickled Variable, with a fresh id."""
    return _new_variable(_backend.asarray(value, backend), trainable, name)


def _read_variable_impl(values, attrs):
    return values[0]


READ_VARIABLE = core.Primitive("read_variable", _read_variable_impl,
                               lambda g, saved, attrs, needs: (g,),
                               lambda tangents, saved, out, attrs, batch: tangents[0])


def read_variable(var: "Variable") -> Tensor:
    """A Tensor holding the variable's current value; a recorded read on active recorders,
    which watch a trainable variable first when they watch accessed variables.

    The record keeps this snapshot, so a later ``assign`` cannot change saved values.
    """
    if core.ACTIVE:
        for recorder in core.recorders():
            if var.trainable and not recorder._forward and recorder._watch_accessed:
                recorder._watch_one(var)
    return core.bind(READ_VARIABLE, (var,))


def _assign_impl(values, how):
    old, new = values
    if how is None:
        return new
    return _backend.module_of(old).add(old, new) if how == "add" else \
        _backend.module_of(old).subtract(old, new)


# inputs: (the variable, the value); attrs: None, "add" or "subtract".  Not differentiable (as
# TensorFlow's assign); a tracer (gpuad.function) sees the variable's new value here.
ASSIGN = core.Primitive("assign", _assign_impl)


class VariableSlice(Tensor):
    """What indexing a Variable gives: a Tensor (the slice's value when it was taken) with
    ``assign``, as TensorFlow's ``v[1:3].assign(value)``; ``assign`` returns the variable."""

    __slots__ = ("_variable", "_key")
    _variable: Variable
    _key: typing.Any

    def assign(self, value: TensorLike) -> Variable:
        """Write ``value`` (broadcast to the slice's shape) into the variable's slice."""
        return self._variable._assign_slice(self._key, value)

    def read_value(self) -> Tensor:  # an op's input (core.as_input): already a value
        return self


class _SliceOfVariable(core.Primitive):
    """An identity whose output is a :class:`VariableSlice` (the one thing it adds)."""

    def eager(self, args, attrs):
        out = VariableSlice()
        out._value, out._id = args[0]._value, 0
        if core.ACTIVE:
            core.record(self, args, out, attrs)
        return out


_SLICE_OF_VARIABLE = _SliceOfVariable(
    "slice_of_variable", lambda values, attrs: values[0], lambda g, saved, attrs, needs: (g,),
    lambda tangents, saved, out, attrs, batch: tangents[0])


def _slice_key(key, op):
    """A key of ints, slices, ``...`` and None (scalar integer Tensors read as ints), the
    indices TensorFlow assigns through; anything else is a TypeError naming ``op``."""
    def index(k):
        if isinstance(k, Tensor) and k.ndim == 0 and k.dtype.kind in "iu":
            return int(k)  # a traced one is a TraceError (gpuad.function cannot read it)
        if k is None or isinstance(k, numbers.Integral) and not isinstance(k, bool):
            return k
        raise TypeError(f"{op}: only ints, slices (`:`), `...`, None (newaxis) and scalar "
                        f"integer Tensors index a slice to assign, as TensorFlow's; got {k!r}")

    def item(k):
        if isinstance(k, slice):
            return slice(index(k.start), index(k.stop), index(k.step))
        return k if k is Ellipsis else index(k)
    return tuple(item(k) for k in key) if isinstance(key, tuple) else item(key)


def _slice_update_impl(values, key):
    old, new = values
    out = old.copy()
    out[key] = new
    return out


# inputs: (the variable, the value); attrs: the key.  The variable's new value, assigned next
# (not differentiable, as TensorFlow's strided slice assignment).
SLICE_UPDATE = core.Primitive("slice_update", _slice_update_impl,
                              abstract_eval=lambda avals, attrs: avals[0])
