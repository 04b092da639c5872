"""Variables: mutable tensors, whose reads the recorders see (``tf.Variable``)."""
from . import backends as _backend
from . import core
from .array_ops import constant, convert_to_tensor
from .tensor import Tensor, concrete_value, next_id


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

    def read_value(self):
        """The current value as a Tensor (recorded on active tapes, as a read)."""
        return read_variable(self)

    def value(self):
        """The current value as a Tensor, as ``tf.Variable.value`` (the same as
        :meth:`read_value`)."""
        return read_variable(self)

    def assign(self, value):
        """Replace the value (same shape and dtype); returns the variable.

        The old array is kept by any tape that recorded a read, so saved values stay valid.
        """
        return self._update(value, None, "Variable.assign")

    def assign_add(self, delta):
        """Add ``delta`` to the value; returns the variable."""
        return self._update(delta, "add", "Variable.assign_add")

    def assign_sub(self, delta):
        """Subtract ``delta`` from the value; returns the variable."""
        return self._update(delta, "subtract", "Variable.assign_sub")

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


def _assign_impl(values, how):
    old, new = values
    if how is None:
        return new
    return _backend.module_of(old).add(old, new) if how == "add" else \
        _backend.module_of(old).subtract(old, new)


# inputs: (the variable, the value); attrs: None, "add" or "subtract".  Not differentiable (as
# TensorFlow's assign); a tracer (gpuad.function) sees the variable's new value here.
ASSIGN = core.Primitive("assign", _assign_impl)
