"""Random tensors (``gpuad.random``), as ``tf.random``, on the current backend.

Without a seed the values come from one generator per backend, seeded by the operating
system.  With a seed every call draws from a fresh ``default_rng(seed)`` of the backend's
array module (NumPy's PCG64, CuPy's XORWOW): the same seed gives the same values on a backend,
run after run (the two backends' streams differ).  Unlike TensorFlow, calling an op twice
with one seed repeats the values rather than advancing a hidden per-op counter.
"""
import numbers
import typing

import numpy

from . import backends as _backend
from .array_ops import shape_arg
from .core import Primitive, bind
from .tensor import DTypeLike, Tensor

__all__ = ["normal", "uniform"]

_GENERATORS = {}  # backend name -> the generator of unseeded calls


def _seed(op, seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, numpy.integer)):
        raise TypeError(f"{op}: seed must be an int or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{op}: seed must be >= 0, got {seed}")
    return int(seed)


def _generator(backend, seed):
    random = _backend.module(backend).random
    if seed is None:
        if backend not in _GENERATORS:
            _GENERATORS[backend] = random.default_rng()
        return _GENERATORS[backend]
    return random.default_rng(seed)


def _draw(values, attrs):
    """Samples: ``attrs`` is (distribution, shape, dtype, backend, seed, (a, b)), the
    distribution "normal" (mean a, stddev b), "uniform" or "integers" (on [a, b))."""
    kind, shape, dtype, backend, seed, (a, b) = attrs
    rng = _generator(backend, seed)
    if kind == "integers":
        return rng.integers(a, b, size=shape, dtype=dtype)
    if kind == "normal":
        return (rng.standard_normal(size=shape, dtype=_draw_dtype(dtype)) * b + a).astype(
            dtype, copy=False)
    return (rng.random(size=shape, dtype=_draw_dtype(dtype)) * (b - a) + a).astype(
        dtype, copy=False)


_RANDOM = Primitive("random", _draw)  # no gradient


def _shape(op, shape):
    shape = shape_arg(op, shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"{op}: shape {shape} has a negative dimension")
    return shape


def _dtype(op, dtype, kinds) -> numpy.dtype:
    try:
        dtype = numpy.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is not a dtype") from None
    if dtype.kind not in kinds:
        expected = "a floating dtype" if kinds == "f" else "a floating or integer dtype"
        raise TypeError(f"{op}: dtype {dtype} is not supported; expected {expected}")
    return dtype


def _number(op, arg, value):
    if isinstance(value, Tensor):
        if value.size != 1:
            raise ValueError(f"{op}: {arg} must be a scalar, got a tensor of shape {value.shape}")
        value = value.numpy().item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {arg} must be a number, got {value!r}")
    return value


def _draw_dtype(dtype):
    """The dtype to draw in: the generators make float32 and float64 only."""
    return dtype if dtype == numpy.float64 else numpy.dtype(numpy.float32)


def normal(shape: typing.Sequence[int] | Tensor, mean: float | Tensor = 0.0,
           stddev: float | Tensor = 1.0, dtype: DTypeLike = numpy.float32,
           seed: int | None = None) -> Tensor:
    """Samples of a normal distribution, as ``tf.random.normal``.

    Parameters
    ----------
    shape : tuple of ints
    mean, stddev : float
        The distribution's mean and standard deviation.
    dtype : floating dtype
        float16, float32 (default) or float64.
    seed : int, optional
        Makes the values reproducible (see the module's docstring).

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.random.normal((2, 3), seed=0)
    >>> x.shape, x.dtype
    ((2, 3), dtype('float32'))
    >>> bool((x.numpy() == ad.random.normal((2, 3), seed=0).numpy()).all())
    True
    """
    op = "random.normal"
    shape, dtype = _shape(op, shape), _dtype(op, dtype, "f")
    mean, stddev = _number(op, "mean", mean), _number(op, "stddev", stddev)
    return bind(_RANDOM, (), ("normal", shape, dtype, _backend.get_backend(), _seed(op, seed),
                              (mean, stddev)))


def uniform(shape: typing.Sequence[int] | Tensor, minval: float | Tensor = 0,
            maxval: float | Tensor | None = None, dtype: DTypeLike = numpy.float32,
            seed: int | None = None) -> Tensor:
    """Samples of a uniform distribution on ``[minval, maxval)``, as ``tf.random.uniform``.

    Parameters
    ----------
    shape : tuple of ints
    minval, maxval : number
        The range; ``maxval`` defaults to 1 for floating dtypes and must be given for integer
        ones (then ``minval < maxval``).
    dtype : dtype
        float16, float32 (default), float64, or an integer dtype.
    seed : int, optional
        Makes the values reproducible (see the module's docstring).

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.random.uniform((1000,), -1.0, 1.0, seed=0)
    >>> bool(x.numpy().min() >= -1.0 and x.numpy().max() < 1.0)
    True
    >>> ad.random.uniform((3,), 0, 10, dtype="int32", seed=0).dtype
    dtype('int32')
    """
    op = "random.uniform"
    shape = _shape(op, shape)
    dtype = _dtype(op, dtype, "fiu")
    minval = _number(op, "minval", minval)
    where = (_backend.get_backend(), _seed(op, seed))
    if dtype.kind in "iu":
        if maxval is None:
            raise ValueError(f"{op}: maxval must be given for integer dtype {dtype}")
        maxval = _number(op, "maxval", maxval)
        if not isinstance(minval, numbers.Integral) or not isinstance(maxval, numbers.Integral):
            raise TypeError(f"{op}: minval and maxval must be ints for integer dtype {dtype}, "
                            f"got {minval!r} and {maxval!r}")
        if minval >= maxval:
            raise ValueError(f"{op}: need minval < maxval for integer dtype {dtype}, got "
                             f"minval={minval} and maxval={maxval}")
        return bind(_RANDOM, (), ("integers", shape, dtype) + where + ((int(minval),
                                                                        int(maxval)),))
    maxval = 1.0 if maxval is None else _number(op, "maxval", maxval)
    return bind(_RANDOM, (), ("uniform", shape, dtype) + where + ((minval, maxval),))
