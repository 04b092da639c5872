"""TensorFlow-1 eager's function transforms: gradients_function and friends.

Each positional argument selected by ``params`` is converted to a Tensor and watched on a
fresh tape while ``f`` runs; nesting these transforms gives higher derivatives.
"""
import functools
import inspect

from .array_ops import identity
from .tape import GradientTape
from .tensor import convert_to_tensor


def _param_positions(f, params, nargs):
    if params is None:
        return list(range(nargs))
    names = []
    try:
        names = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        pass
    positions = []
    for p in params:
        if isinstance(p, str):
            if p not in names:
                raise ValueError(f"gradients_function: {f.__name__} has no parameter {p!r}")
            p = names.index(p)
        if not 0 <= p < nargs:
            raise ValueError(f"gradients_function: parameter index {p} is out of range for "
                             f"{nargs} positional arguments")
        positions.append(p)
    return positions


def _value_and_gradients(f, params, args, kwargs):
    dy = kwargs.pop("dy", None)
    if kwargs:
        raise ValueError("gradients_function: the function to differentiate cannot take "
                         f"keyword arguments (got {sorted(kwargs)})")
    positions = _param_positions(f, params, len(args))
    args = list(args)
    seen = set()
    for i in positions:
        t = convert_to_tensor(args[i], op="gradients_function")
        if id(t) in seen:  # the same tensor twice gets two separate gradients
            t = identity(t)
        seen.add(id(t))
        args[i] = t
    with GradientTape() as tape:
        for i in positions:
            if args[i].dtype.kind in "fc":
                tape._watch_one(args[i])
        value = f(*args)
    grads = tape.gradient(value, [args[i] for i in positions], output_gradients=dy)
    return value, grads


def value_and_gradients_function(f, params=None):
    """Return ``fn(*args, dy=None) -> (f(*args), [gradients])``, as TensorFlow 1 eager.

    >>> import gpuad as ad
    >>> value, (dx,) = ad.value_and_gradients_function(lambda x: x * x)(3.0)
    >>> float(value), float(dx)
    (9.0, 6.0)
    """
    @functools.wraps(f)
    def decorated(*args, **kwargs):
        return _value_and_gradients(f, params, args, kwargs)
    return decorated


def gradients_function(f, params=None):
    """Return ``fn(*args, dy=None) -> [df/darg for each selected argument]``.

    Every positional argument (or those ``params`` selects, by index or name) is converted
    to a Tensor and watched.  Integer arguments get ``None``, with a warning.  Nest the
    returned function for higher derivatives.

    >>> import gpuad as ad
    >>> def f(x, y):
    ...     return x * x * y
    >>> [float(g) for g in ad.gradients_function(f)(3.0, 2.0)]
    [12.0, 9.0]
    >>> d2 = ad.gradients_function(lambda x: ad.gradients_function(f, params=[0])(x, 2.0)[0])
    >>> float(d2(3.0)[0])
    4.0
    """
    @functools.wraps(f)
    def decorated(*args, **kwargs):
        return _value_and_gradients(f, params, args, kwargs)[1]
    return decorated


def implicit_value_and_gradients(f):
    """Return ``fn(*args) -> (f(*args), [(gradient, variable), ...])`` over the trainable
    Variables that ``f`` reads.

    >>> import gpuad as ad
    >>> w = ad.Variable(2.0, name="w")
    >>> value, [(dw, var)] = ad.implicit_value_and_gradients(lambda x: w * x)(3.0)
    >>> float(value), float(dw), var is w
    (6.0, 3.0, True)
    """
    @functools.wraps(f)
    def decorated(*args, **kwargs):
        with GradientTape() as tape:
            value = f(*args, **kwargs)
        variables = tape.watched_variables()
        if not variables:
            raise ValueError("implicit_gradients: no trainable Variables were accessed while "
                             f"{getattr(f, '__name__', 'the function')} was computed")
        return value, list(zip(tape.gradient(value, list(variables)), variables))
    return decorated


def implicit_gradients(f):
    """Return ``fn(*args) -> [(gradient, variable), ...]`` for the trainable Variables ``f``
    reads (see :func:`implicit_value_and_gradients`)."""
    @functools.wraps(f)
    def decorated(*args, **kwargs):
        return implicit_value_and_gradients(f)(*args, **kwargs)[1]
    return decorated


__all__ = ["gradients_function", "value_and_gradients_function", "implicit_gradients",
           "implicit_value_and_gradients"]
