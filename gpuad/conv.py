"""Convolutions and pooling (``gpuad.nn.conv1d``, ``conv2d``, ``max_pool2d``, ``avg_pool2d``,
``max_pool``, ``avg_pool``), channels last inside, as TensorFlow's CPU kernels.

One primitive, ``conv``, does all the arithmetic: a grouped convolution over any number of
spatial axes, ``x`` of shape ``(N, S..., C)`` and a filter ``(K..., C / groups, C_out)``.
On NumPy (and on CuPy without cuDNN) it is im2col plus GEMM: a strided view of the windows,
one copy of them into rows, one (batched) matrix product.  Its derivatives are convolutions
again, so every order comes from the same primitive:

* with respect to ``x`` (TF's Conv2DBackpropInput): the convolution of the cotangent, spread
  out by the strides, with the filter flipped and its channels transposed per group;
* with respect to the filter (Conv2DBackpropFilter): a convolution whose batch is the input
  channels and whose filter is the cotangent, strides and dilations trading places.

Average pooling is the grouped convolution with a filter of ones, divided by the number of
inputs (not padding) in each window.  Max pooling is a gather at the index of each window's
maximum (a primitive of its own, without gradient), so its gradient goes to that element, the
first maximum in row-major window order on ties, as TensorFlow's CPU ``MaxPoolGrad``.
"""
import math
import numbers
import typing
from collections.abc import Sequence

import numpy

from . import backends as _backend
from . import cuda, numpy_memory
from .array_ops import constant, getitem, reshape, same_backend, tensor_arg, transpose
from .core import Primitive, bind, save_inputs
from .shape_ops import pad
from .tensor import Tensor, TensorLike

__all__ = ["conv1d", "conv2d", "max_pool", "max_pool2d", "avg_pool", "avg_pool2d"]

_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


# ----------------------------------------------------------------------- the primitive

def _windows(x, ksize, strides, dilations, split=1):
    """The view ``(N, O..., K..., split, C / split)`` of every window of ``x`` (``(N, S...,
    C)``, already padded): no copy."""
    d, st = len(ksize), x.strides
    out = tuple(max((n - (k - 1) * r - 1) // s + 1, 0)  # 0: a window that does not fit
                for n, k, s, r in zip(x.shape[1:-1], ksize, strides, dilations))
    shape = (x.shape[0],) + out + tuple(ksize) + (split, x.shape[-1] // split)
    steps = (st[0],) + tuple(st[1 + i] * strides[i] for i in range(d)) + \
        tuple(st[1 + i] * dilations[i] for i in range(d)) + (st[-1] * shape[-1], st[-1])
    return _backend.module_of(x).lib.stride_tricks.as_strided(x, shape, steps)  # read only


def _contiguous(xp, view):
    if xp is numpy:  # a pooled buffer: fresh pages cost more than the copy
        out = numpy_memory.empty(view.shape, view.dtype)
        numpy.copyto(out, view)
        return out
    return xp.ascontiguousarray(view)


def _conv_impl(values, attrs):
    x, w = values
    strides, dilations, pads, groups = attrs
    xp = _backend.module_of(x)
    if xp is not numpy:
        y = cuda.cudnn_conv(x, w, strides, dilations, pads, groups)
        if y is not None:
            return y
    if any(p for pair in pads for p in pair):
        x = xp.pad(x, ((0, 0),) + pads + ((0, 0),))
    d = len(strides)
    ksize, (cg, co) = w.shape[:d], w.shape[d:]
    view = _windows(x, ksize, strides, dilations, groups)  # (N, O..., K..., G, Cg)
    out = view.shape[1:1 + d]
    # im2col: one copy of the windows into rows (G, N*O, K*Cg), then one GEMM per group
    rows = _contiguous(xp, xp.moveaxis(view, -2, 0))
    rows = rows.reshape(groups, x.shape[0] * math.prod(out), math.prod(ksize) * cg)
    filt = w.reshape(math.prod(ksize) * cg, groups, co // groups).transpose(1, 0, 2)
    y = xp.matmul(rows, filt)  # (G, N*O, C_out / G)
    return y.transpose(1, 0, 2).reshape((x.shape[0],) + out + (co,))


def _conv(x, w, attrs):
    """The conv primitive; attrs: (strides, dilations, ((lo, hi) pads per axis), groups)."""
    return bind(_CONV, (x, w), attrs)


def _input_grad(g, w, x_shape, attrs):
    """d<g, conv(x, w)>/dx: g spread out by the strides, convolved with the flipped filter
    whose channels are transposed per group."""
    strides, dilations, pads, groups = attrs
    d = len(strides)
    ksize, (cg, co) = w.shape[:d], w.shape[d:]
    spatial = tuple(range(d))
    w = transpose(reshape(w, ksize + (cg, groups, co // groups)), spatial + (d + 2, d + 1, d))
    w = getitem(reshape(w, ksize + (co // groups, groups * cg)), (slice(None, None, -1),) * d)
    if any(s > 1 for s in strides):  # s - 1 zeros after each row of g
        g = _dilate(g, strides)
    # pad g (or crop it where x's padding was wider than the filter) to x's shape
    widths = [((k - 1) * r - lo, n + lo - m) for k, r, (lo, _), n, m in
              zip(ksize, dilations, pads, x_shape[1:-1], g.shape[1:-1])]
    if any(p < 0 for pair in widths for p in pair):
        g = getitem(g, (slice(None),) + tuple(slice(max(-lo, 0), m + min(hi, 0)) for (lo, hi), m
                                              in zip(widths, g.shape[1:-1])))
    widths = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
    return _conv(g, w, ((1,) * d, dilations, widths, groups))


def _dilate(g, strides):
    """``g`` (N, O..., C) with ``s - 1`` zeros after each element along each spatial axis."""
    out = g.shape[1:-1]
    g = reshape(g, g.shape[:1] + tuple(n for o in out for n in (o, 1)) + g.shape[-1:])
    g = pad(g, [[0, 0]] + [p for s in strides for p in ([0, 0], [0, s - 1])] + [[0, 0]])
    return reshape(g, g.shape[:1] + tuple(o * s for o, s in zip(out, strides)) + g.shape[-1:])


def _filter_grad(g, x, w_shape, attrs):
    """d<g, conv(x, w)>/dw: the convolution of x, its input channels as the batch, with g as
    the filter (strides and dilations trade places), cropped to the filter's size."""
    strides, dilations, pads, groups = attrs
    d = len(strides)
    ksize, cg = w_shape[:d], w_shape[d]
    n, spatial = x.shape[0], x.shape[1:-1]
    x = transpose(reshape(x, (n,) + spatial + (groups, cg)),
                  (d + 2,) + tuple(range(1, d + 1)) + (d + 1, 0))  # Cg, S..., G, N
    x = reshape(x, (cg,) + spatial + (groups * n,))
    g = transpose(g, tuple(range(1, d + 1)) + (0, d + 1))  # O..., N, C_out
    dw = _conv(x, g, (dilations, strides, pads, groups))  # (Cg, K'..., C_out), K' >= K
    if dw.shape[1:-1] != ksize:
        dw = getitem(dw, (slice(None),) + tuple(slice(0, k) for k in ksize))
    return transpose(dw, tuple(range(1, d + 1)) + (0, d + 1))


def _conv_vjp(g, saved, attrs, needs):
    x, w = saved
    return (_input_grad(g, w, x.shape, attrs) if needs[0] else None,
            _filter_grad(g, x, w.shape, attrs) if needs[1] else None)


def _conv_jvp(tangents, saved, out, attrs, batch):
    """Bilinear: d conv = conv(dx, w) + conv(x, dw).  A batch of tangents (one leading axis)
    rides along the images of dx and the output channels of dw."""
    (x, w), (tx, tw) = saved, tangents
    terms = []
    if tx is not None:
        y = _conv(reshape(tx, (-1,) + tx.shape[2:]) if batch else tx, w, attrs)
        terms.append(reshape(y, tx.shape[:2] + y.shape[1:]) if batch else y)
    if tw is not None and not batch:
        terms.append(_conv(x, tw, attrs))
    elif tw is not None:  # (B, K..., Cg, G * Cog) -> (K..., Cg, G * B * Cog), B within each group
        d, groups = len(attrs[0]), attrs[3]
        b, ksize, (cg, co) = tw.shape[0], tw.shape[1:-2], tw.shape[-2:]
        t = transpose(reshape(tw, (b,) + ksize + (cg, groups, co // groups)),
                      tuple(range(1, d + 2)) + (d + 2, 0, d + 3))
        y = _conv(x, reshape(t, ksize + (cg, groups * b * (co // groups))), attrs)
        y = transpose(reshape(y, y.shape[:-1] + (groups, b, co // groups)),
                      (d + 2,) + tuple(range(d + 1)) + (d + 1, d + 3))
        terms.append(reshape(y, (b,) + y.shape[1:-2] + (co,)))
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


_CONV = Primitive("conv", _conv_impl, _conv_vjp, _conv_jvp, save=save_inputs)


# --------------------------------------------------------------------------- arguments

def _sequence(op, name, value, n, channels_first):
    """strides, dilations or ksize, as TF: an int or a list of 1, n or n + 2 ints (the batch
    and channel entries 1), as n positive ints."""
    items = [value] if isinstance(value, (numbers.Integral, numpy.integer)) else value
    if isinstance(items, Tensor):
        items = items.numpy().tolist()
    try:
        items = list(items)
    except TypeError:
        items = None
    if items is None or len(items) not in (1, n, n + 2) or not all(
            isinstance(i, (numbers.Integral, numpy.integer)) and not isinstance(i, bool) and
            i > 0 for i in items):
        raise ValueError(f"{op}: {name} must be a positive int or a list of 1, {n} or {n + 2} "
                         f"positive ints, got {value!r}")
    if len(items) == n + 2:
        outer = (items[0], items[1]) if channels_first else (items[0], items[-1])
        if outer != (1, 1):
            raise ValueError(f"{op}: {name} {value!r} must be 1 along the batch and channel "
                             f"dimensions")
        items = items[2:] if channels_first else items[1:-1]
    return tuple(int(i) for i in (items * n if len(items) == 1 else items))


def _paddings(op, padding, shape, ksize, strides, dilations, channels_first, explicit=True):
    """``padding`` ('SAME', 'VALID' or TF's explicit list, one pair per dimension of the
    input) as one (lo, hi) pair per spatial axis of the channels-last ``shape``."""
    spatial = shape[1:-1]
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        if padding.upper() == "VALID":
            return ((0, 0),) * len(spatial)
        pairs = []
        for n, k, s, r in zip(spatial, ksize, strides, dilations):  # TF's SAME
            total = max((-(-n // s) - 1) * s + (k - 1) * r + 1 - n, 0)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    what = "'SAME', 'VALID' or a list of [before, after] pairs" if explicit else \
        "'SAME' or 'VALID'"
    try:
        pairs = numpy.asarray(padding.numpy() if isinstance(padding, Tensor) else padding)
        ok = explicit and pairs.shape == (len(shape), 2) and pairs.dtype.kind in "iu" and \
            bool((pairs >= 0).all())
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{op}: padding must be {what} ({len(shape)} non-negative pairs for an "
                         f"input of rank {len(shape)}), got {padding!r}")
    outer = (pairs[0], pairs[1]) if channels_first else (pairs[0], pairs[-1])
    if numpy.any(outer):
        raise ValueError(f"{op}: explicit padding {padding!r} must be [0, 0] along the batch "
                         f"and channel dimensions")
    pairs = pairs[2:] if channels_first else pairs[1:-1]
    return tuple((int(lo), int(hi)) for lo, hi in pairs)


def _channels_first(op, data_format, n):
    if data_format not in _FORMATS[n]:
        raise ValueError(f"{op}: data_format must be {' or '.join(map(repr, _FORMATS[n]))}, "
                         f"got {data_format!r}")
    return data_format.startswith("NC")


def _to_channels_last(x, n):
    return transpose(x, (0,) + tuple(range(2, n + 2)) + (1,))


def _to_channels_first(x, n):
    return transpose(x, (0, n + 1) + tuple(range(1, n + 1)))


def _output_sizes(op, shape, ksize, strides, dilations, pads):
    """TF's output sizes: ``trunc((padded - span + stride) / stride)``, 0 for a window
    that just does not fit, an error below that."""
    sizes = []
    for n, k, s, r, (lo, hi) in zip(shape[1:-1], ksize, strides, dilations, pads):
        span, room = (k - 1) * r + 1, n + lo + hi
        if room - span + s < 0:
            raise ValueError(f"{op}: the window spans {span} elements (size {k}, dilation "
                             f"{r}, stride {s}) but the padded input only {room}: the output "
                             f"size would be negative (input shape {shape} in channels-last "
                             f"order, padding {pads})")
        sizes.append(max((room - span) // s + 1, 0))
    return tuple(sizes)


# -------------------------------------------------------------------------- convolutions

def _convolution(op, input, filters, strides, padding, data_format, dilations, n):
    x = tensor_arg(input, op, "input")
    w = tensor_arg(filters, op, "filters")
    same_backend(op, (x, w))
    first = _channels_first(op, data_format, n)
    if x.dtype.kind != "f" or w.dtype != x.dtype:
        raise TypeError(f"{op}: input and filters must have one floating dtype, got "
                        f"{x.dtype} and {w.dtype}")
    if x.ndim < n + 2 or w.ndim != n + 2:
        raise ValueError(f"{op}: input must have rank >= {n + 2} and filters rank {n + 2}, got "
                         f"input shape {x.shape} and filters shape {w.shape}")
    strides = _sequence(op, "strides", strides, n, first)
    dilations = _sequence(op, "dilations", 1 if dilations is None else dilations, n, first)
    batch = x.shape[:-n - 1]
    if len(batch) != 1:  # batch_shape: one axis
        x = reshape(x, (math.prod(batch),) + x.shape[-n - 1:])
    if first:
        x = _to_channels_last(x, n)
    c, (cg, co) = x.shape[-1], w.shape[-2:]
    if cg == 0 or c % cg or co % (c // cg):
        raise ValueError(f"{op}: the input's {c} channels must be a multiple of the filters' "
                         f"{cg} input channels, and the filters' {co} output channels a "
                         f"multiple of their ratio (input shape {x.shape}, filters shape "
                         f"{w.shape})")
    pads = _paddings(op, padding, x.shape, w.shape[:n], strides, dilations, first)
    _output_sizes(op, x.shape, w.shape[:n], strides, dilations, pads)
    y = _conv(x, w, (strides, dilations, pads, c // cg))
    if first:
        y = _to_channels_first(y, n)
    return y if len(batch) == 1 else reshape(y, batch + y.shape[1:])


def conv1d(input: TensorLike, filters: TensorLike, stride: int | Sequence[int],  # noqa: A002
           padding: str | Sequence[typing.Any], data_format: str = "NWC",
           dilations: int | Sequence[int] | None = None) -> Tensor:
    """The 1-D convolution (cross-correlation, as every deep-learning library) of ``input``
    with ``filters``, as ``tf.nn.conv1d``; differentiable in both, to any order.

    Parameters
    ----------
    input : Tensor
        ``batch_shape + [width, in_channels]`` (``"NWC"``) or ``batch_shape + [in_channels,
        width]`` (``"NCW"``), floating.
    filters : Tensor
        ``[filter_width, in_channels, out_channels]``, input's dtype.  Fewer input channels
        than the input's makes a grouped convolution (``in_channels / filter_in_channels``
        groups), as TensorFlow's op.
    stride : int or list of 1 or 3 ints
    padding : {"SAME", "VALID"} or a list of 3 [before, after] pairs
        SAME pads so that the output width is ``ceil(width / stride)`` (the extra one after).
    data_format : {"NWC", "NCW"}
    dilations : int or list of 1 or 3 ints, optional
        Filter taps ``dilations`` elements apart.

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant([[[1.0], [2.0], [3.0], [4.0]]])          # NWC: 1 x 4 x 1
    >>> ad.nn.conv1d(x, ad.constant([[[1.0]], [[-1.0]]]), 1, "VALID").numpy().ravel()
    array([-1., -1., -1.], dtype=float32)
    """
    return _convolution("conv1d", input, filters, stride, padding, data_format, dilations, 1)


def conv2d(input: TensorLike, filters: TensorLike, strides: int | Sequence[int],  # noqa: A002
           padding: str | Sequence[typing.Any], data_format: str = "NHWC",
           dilations: int | Sequence[int] | None = None) -> Tensor:
    """The 2-D convolution (cross-correlation) of ``input`` with ``filters``, as
    ``tf.nn.conv2d``: ``out[b, i, j, k] = sum_{di, dj, q} input[b, s_h i + r_h di - pad_top,
    s_w j + r_w dj - pad_left, q] filters[di, dj, q, k]``; differentiable in both, to any
    order (the gradients are convolutions again).

    Parameters
    ----------
    input : Tensor
        ``batch_shape + [height, width, in_channels]`` (``"NHWC"``) or ``batch_shape +
        [in_channels, height, width]`` (``"NCHW"``), floating.
    filters : Tensor
        ``[filter_height, filter_width, in_channels, out_channels]``, input's dtype.  Fewer
        input channels than the input's makes a grouped convolution, as TensorFlow's op.
    strides : int or list of 1, 2 or 4 ints
    padding : {"SAME", "VALID"} or a list of 4 [before, after] pairs
        Explicit pairs are in ``data_format``'s order, zero for the batch and channels.
    data_format : {"NHWC", "NCHW"}
    dilations : int or list of 1, 2 or 4 ints, optional

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.reshape(ad.range(16.0), (1, 4, 4, 1))
    >>> w = ad.ones((2, 2, 1, 1))
    >>> ad.nn.conv2d(x, w, strides=2, padding="VALID").numpy()[0, :, :, 0]
    array([[10., 18.],
           [42., 50.]], dtype=float32)
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(w)
    ...     y = ad.reduce_sum(ad.nn.conv2d(x, w, 1, "SAME"))
    >>> tape.gradient(y, w).numpy()[:, :, 0, 0]  # the sums of x the taps saw
    array([[120.,  96.],
           [114.,  90.]], dtype=float32)
    """
    return _convolution("conv2d", input, filters, strides, padding, data_format, dilations, 2)


# ------------------------------------------------------------------------------- pooling

def _window_argmax_impl(values, attrs):
    """The flat index into ``x`` (N, S..., C) of the first maximum of each window, in
    row-major window order (TF's CPU MaxPoolGrad): padding never wins, even against -inf."""
    x = values[0]
    ksize, strides, pads = attrs
    xp = _backend.module_of(x)
    d = len(ksize)
    lowest = -numpy.inf if x.dtype.kind == "f" else numpy.iinfo(x.dtype).min
    padded = xp.pad(x, ((0, 0),) + pads + ((0, 0),), constant_values=lowest)
    view = _windows(padded, ksize, strides, (1,) * d)[..., 0, :]  # (N, O..., K..., C)
    out = view.shape[1:1 + d]
    local = view.reshape(view.shape[:1 + d] + (math.prod(ksize), x.shape[-1])).argmax(axis=-2)
    taps = xp.unravel_index(local, ksize)
    starts = [(xp.arange(o) * s - lo).reshape((-1,) + (1,) * (d - i))  # broadcast to local's
              for i, (o, s, (lo, _)) in enumerate(zip(out, strides, pads))]
    at = [start + tap for start, tap in zip(starts, taps)]
    inside = True
    for a, n in zip(at, x.shape[1:-1]):
        inside = inside & (a >= 0) & (a < n)
    # a window of padding and -inf only: its first element inside x, as TF
    at = [xp.where(inside, a, xp.maximum(start, 0)) for a, start in zip(at, starts)]
    coords = [xp.arange(x.shape[0]).reshape((-1,) + (1,) * (d + 1))] + at + \
        [xp.arange(x.shape[-1])]
    index = xp.zeros(local.shape, numpy.int64)
    for axis, c in enumerate(coords):  # the C-order flat index
        index = index + c * math.prod(x.shape[axis + 1:])
    return index


_WINDOW_ARGMAX = Primitive("window argmax", _window_argmax_impl)  # indices: no gradient


def _pool_args(op, input, ksize, strides, padding, data_format, n, explicit):
    x = tensor_arg(input, op, "input")
    if n is None:  # max_pool, avg_pool: the rank says
        n = x.ndim - 2
        if n not in _FORMATS:
            raise ValueError(f"{op}: input must have rank 3, 4 or 5, got shape {x.shape}")
        data_format = data_format or _FORMATS[n][0]
    first = _channels_first(op, data_format, n)
    if x.ndim != n + 2:
        raise ValueError(f"{op}: input must have rank {n + 2}, got shape {x.shape}")
    ksize = _sequence(op, "ksize", ksize, n, first)
    strides = _sequence(op, "strides", strides, n, first)
    if first:
        x = _to_channels_last(x, n)
    pads = _paddings(op, padding, x.shape, ksize, strides, (1,) * n, first, explicit)
    if any(max(pair) >= k for pair, k in zip(pads, ksize)):
        raise ValueError(f"{op}: explicit padding {padding!r} must be smaller than the window "
                         f"{ksize}")
    out = _output_sizes(op, x.shape, ksize, strides, (1,) * n, pads)
    return x, ksize, strides, pads, out, first, n


def _max_pool(op, input, ksize, strides, padding, data_format, n=None):
    x, ksize, strides, pads, _, first, n = _pool_args(op, input, ksize, strides, padding,
                                                      data_format, n, explicit=True)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{op}: input must be floating or integer, got {x.dtype}")
    index = bind(_WINDOW_ARGMAX, (x,), (ksize, strides, pads))
    y = getitem(reshape(x, (-1,)), (index,))  # the gradient goes to each window's maximum
    return _to_channels_first(y, n) if first else y


def _avg_pool(op, input, ksize, strides, padding, data_format, n=None):
    x, ksize, strides, pads, out, first, n = _pool_args(op, input, ksize, strides, padding,
                                                        data_format, n, explicit=False)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating, got {x.dtype}")
    c = x.shape[-1]
    ones = constant(numpy.ones(ksize + (1, c), x.dtype), backend=x.backend)
    total = _conv(x, ones, (strides, (1,) * n, pads, c))  # each channel its own group
    # divided by the inputs in each window, padding not counted (TF's SAME)
    counts = numpy.ones((), x.dtype)
    for o, k, s, (lo, _), size in zip(out, ksize, strides, pads, x.shape[1:-1]):
        start = numpy.arange(o) * s - lo
        counts = numpy.multiply.outer(counts, numpy.minimum(start + k, size) -
                                      numpy.maximum(start, 0))
    y = total * constant((1 / counts)[..., None].astype(x.dtype), backend=x.backend)
    return _to_channels_first(y, n) if first else y


def max_pool2d(input: TensorLike, ksize: int | Sequence[int],  # noqa: A002
               strides: int | Sequence[int], padding: str, data_format: str = "NHWC") -> Tensor:
    """The maximum of each ``ksize`` window of ``input``, as ``tf.nn.max_pool2d``.

    The gradient goes to the window's maximum; on ties to the first in row-major window
    order (TF's CPU ``MaxPoolGrad``); overlapping windows add.  Padding never wins a window.
    A NaN in a window gives NaN (TF's CPU kernel skips NaNs in the value).

    Parameters
    ----------
    input : Tensor
        4-D, in ``data_format``; floating or integer.
    ksize, strides : int or list of 1, 2 or 4 ints
    padding : {"SAME", "VALID"} or a list of 4 [before, after] pairs (each < the window)
    data_format : {"NHWC", "NCHW"}

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.reshape(ad.range(1.0, 13.0), (1, 3, 4, 1))
    >>> ad.nn.max_pool2d(x, 2, 2, "SAME").numpy()[0, :, :, 0]
    array([[ 6.,  8.],
           [10., 12.]], dtype=float32)
    >>> ad.nn.max_pool2d(x, 2, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]).numpy()[0, :, :, 0]
    array([[ 1.,  3.,  4.],
           [ 9., 11., 12.]], dtype=float32)
    """
    return _max_pool("max_pool2d", input, ksize, strides, padding, data_format, 2)


def avg_pool2d(input: TensorLike, ksize: int | Sequence[int],  # noqa: A002
               strides: int | Sequence[int], padding: str, data_format: str = "NHWC") -> Tensor:
    """The mean of each ``ksize`` window of ``input``, as ``tf.nn.avg_pool2d``: with SAME
    padding a window is divided by the number of inputs it covers (padding not counted).

    Parameters
    ----------
    input : Tensor
        4-D, in ``data_format``; floating.
    ksize, strides : int or list of 1, 2 or 4 ints
    padding : {"SAME", "VALID"}
    data_format : {"NHWC", "NCHW"}

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.reshape(ad.range(1.0, 13.0), (1, 3, 4, 1))
    >>> ad.nn.avg_pool2d(x, 2, 2, "SAME").numpy()[0, :, :, 0]
    array([[ 3.5,  5.5],
           [ 9.5, 11.5]], dtype=float32)
    """
    return _avg_pool("avg_pool2d", input, ksize, strides, padding, data_format, 2)


def max_pool(input: TensorLike, ksize: int | Sequence[int],  # noqa: A002
             strides: int | Sequence[int], padding: str,
             data_format: str | None = None) -> Tensor:
    """:func:`max_pool2d` for 1, 2 or 3 spatial dimensions (the rank of ``input`` says), as
    ``tf.nn.max_pool``; ``data_format`` defaults to channels last ("NWC", "NHWC", "NDHWC").

    >>> import gpuad as ad
    >>> ad.nn.max_pool(ad.constant([[[1.0], [3.0], [2.0]]]), 2, 1, "VALID").numpy().ravel()
    array([3., 3.], dtype=float32)
    """
    return _max_pool("max_pool", input, ksize, strides, padding, data_format)


def avg_pool(input: TensorLike, ksize: int | Sequence[int],  # noqa: A002
             strides: int | Sequence[int], padding: str,
             data_format: str | None = None) -> Tensor:
    """:func:`avg_pool2d` for 1, 2 or 3 spatial dimensions (the rank of ``input`` says), as
    ``tf.nn.avg_pool``.

    >>> import gpuad as ad
    >>> ad.nn.avg_pool(ad.constant([[[1.0], [3.0], [2.0]]]), 2, 2, "SAME").numpy().ravel()
    array([2., 2.], dtype=float32)
    """
    return _avg_pool("avg_pool", input, ksize, strides, padding, data_format)
