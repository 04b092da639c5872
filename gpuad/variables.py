"""Variables: mutable tensors, whose reads the recorders see (``tf.Variable``)."""
from . import backends as _backend
from . import core
from .array_ops import convert_to_tensor
from .tensor import Tensor, next_id


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
    """

    __slots__ = ("trainable", "name")

    def __init__(self, initial_value, trainable=True, name=None, dtype=None):
        value = convert_to_tensor(initial_value, dtype=dtype)._value
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

    def read_value(self):
        """The current value as a Tensor (recorded on active tapes, as a read)."""
        return read_variable(self)

    def assign(self, value):
        """Replace the value (same shape and dtype); returns the variable.

        The old array is kept by any tape that recorded a read, so saved values stay valid.
        """
        new = convert_to_tensor(value, dtype=self.dtype)._value
        if new.shape != self.shape:
            raise ValueError(f"Variable.assign: shape {new.shape} does not match the "
                             f"variable's shape {self.shape}")
        if _backend.name_of(new) != self.backend:
            raise TypeError(f"Variable.assign: value is on {_backend.name_of(new)}, the "
                            f"variable on {self.backend}")
        self._value = new.copy() if new is value or _backend.is_array(value) else new
        return self

    def assign_add(self, delta):
        return self.assign(self._value + convert_to_tensor(delta, dtype=self.dtype)._value)

    def assign_sub(self, delta):
        return self.assign(self._value - convert_to_tensor(delta, dtype=self.dtype)._value)

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


def read_variable(var):
    """A Tensor holding the variable's current value; a recorded read on active recorders,
    which watch a trainable variable first when they watch accessed variables.

    The record keeps this snapshot, so a later ``assign`` cannot change saved values.
    """
    if core.ACTIVE:
        for recorder in core.recorders():
            if var.trainable and not recorder._forward and recorder._watch_accessed:
                recorder._watch_one(var)
    return core.bind(READ_VARIABLE, (var,))
