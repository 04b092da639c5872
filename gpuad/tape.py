"""``GradientTape`` and reverse mode over its records.

A tape is a recorder (:mod:`gpuad.core`): while it records, every op whose output is floating
and one of whose inputs it knows (watched, or the output of an op it recorded) is stored as a
:class:`gpuad.core.Record` under the output's id.  Ids only grow, so the records are in
topological order and :func:`backward` walks them backwards, summing cotangents per id.

A backward step runs the primitive's VJP fused on raw arrays (one kernel per elementwise rule)
unless an outer recorder knows one of the step's values; then it runs the VJP as gpuad ops,
which that recorder records, so gradients of gradients work to any order.
"""
import contextlib
import typing

import numpy

from . import array_ops, core, forward, numpy_memory, user_warnings
from .backends import module_of
from .forward import UnconnectedGradients, unconnected_gradients_value
from .nest import flatten
from .ops import add
from .array_ops import convert_like
from .tensor import Tensor, TensorStructure
from .variables import Variable


def _add_cotangents(a, b):
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return add(core.as_tensor(a), core.as_tensor(b))
    return a + b


def _accumulate(grads, i, gi):
    """``grads[i] += gi``: in place when nothing else can see the old array, else a new sum
    (an outer tape may record it)."""
    if not numpy_memory.add_into_sole(grads[i], gi, refs=2):
        grads[i] = _add_cotangents(grads[i], gi)


def _initial_cotangent(target, output_gradient):
    """The cotangent a target starts with: ones, or its output gradient (checked)."""
    if output_gradient is None:
        v = target._value
        return module_of(v).ones(v.shape, v.dtype)
    g = convert_like(output_gradient, target, "GradientTape.gradient")  # a Tensor: an outer
    if g.shape != target.shape:                                          # tape may watch it
        raise ValueError(f"GradientTape.gradient: output_gradients shape {g.shape} does not "
                         f"match the target's shape {target.shape}")
    return g


def _cotangent_of_itself(source, targets, output_gradients):
    """An unwatched source that is also a target gets that target's cotangent, as TensorFlow
    (d x / d x is one whether or not x was watched); None when it is no target."""
    g = None
    for t, og in zip(targets, output_gradients):
        if t is source:
            g = _initial_cotangent(t, og) if g is None else \
                _add_cotangents(g, _initial_cotangent(t, og))
    return g


def backward(tape, cotangents, source_ids, release=False, on_final=None):
    """Reverse mode over ``tape``'s records.

    ``cotangents``: {id: cotangent} for the targets.  Returns {id: cotangent} for every id
    reached, the sources among them.  With ``release`` (a non-persistent tape's only pass)
    each record is dropped once walked, so saved arrays are freed during the pass.

    ``on_final``, if given, hears of each source's gradient as soon as it is final (so a
    data-parallel tape can start reducing it during the pass): first ``on_final.start(ids)``
    with the ids of the sources some record reads, then ``on_final(id, cotangent or None)``
    for each of them once the walk has passed its first reader, the last record to add to it.
    """
    records, known = tape._records, tape._ids
    grads = dict(cotangents)
    stop = min(source_ids)
    outer = core.recorders()  # still recording: they may record this backward pass
    observed = core.observed()  # an observer must see every step: no fused rules
    pending = _first_readers(records, source_ids, on_final)
    with numpy.errstate(all="ignore"):  # masked-off branches of where() may compute log(0)
        for oid in reversed(list(records)):
            while pending and pending[-1][0] > oid:  # its readers are all walked: final
                on_final(pending[-1][1], grads.get(pending.pop()[1]))
            if oid < stop:  # records are in id order: none below the first source matters
                break
            entry = records.pop(oid) if release else records[oid]
            g = grads.get(oid) if oid in source_ids else grads.pop(oid, None)
            if g is None:
                continue
            prim, input_ids, _, saved, attrs, _, _, _ = entry  # a Record, unpacked: fastest
            if len(input_ids) == 1:
                if input_ids[0] not in known:
                    continue
                needs = (True,)
            else:
                needs = tuple([i in known for i in input_ids])
                if True not in needs:
                    continue
            differentiable = observed or bool(outer) and core.seen_by_recorders((g,) + saved)
            for i, gi in zip(input_ids, prim.vjp(g, saved, attrs, needs, differentiable)):
                if gi is not None and i:
                    if i in grads:
                        _accumulate(grads, i, gi)
                    else:
                        grads[i] = gi
        while pending:
            on_final(pending[-1][1], grads.get(pending.pop()[1]))
    return grads


def _first_readers(records, source_ids, on_final):
    """[(id of the first record reading a source, the source's id)], last-walked first."""
    if on_final is None:
        return []
    first = {}
    for oid, entry in records.items():  # in id order
        for i in entry.input_ids:
            if i in source_ids and i not in first:
                first[i] = oid
    on_final.start(set(first))
    return sorted((oid, i) for i, oid in first.items())


class GradientTape:
    """Record operations for automatic differentiation, as ``tf.GradientTape``.

    Parameters
    ----------
    persistent : bool
        Allow several calls to :meth:`gradient`; otherwise the record is released after the
        first and a second call raises RuntimeError.
    watch_accessed_variables : bool
        Watch trainable Variables automatically when they are read inside the context.

    Examples
    --------
    >>> import gpuad as ad
    >>> x = ad.constant(3.0)
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x * x
    >>> tape.gradient(y, x).numpy()
    array(6., dtype=float32)

    Nested tapes give higher derivatives:

    >>> with ad.GradientTape() as outer:
    ...     outer.watch(x)
    ...     with ad.GradientTape() as inner:
    ...         inner.watch(x)
    ...         y = x * x * x
    ...     dy = inner.gradient(y, x)
    >>> float(dy), float(outer.gradient(dy, x))
    (27.0, 18.0)
    """

    _forward = False  # a reverse-mode recorder (ForwardAccumulator is the forward one)

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True) -> None:
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._ids = set()
        self._records = {}
        self._variables = {}
        self._recording = False
        self._used = False
        self._on_final: typing.Any = None  # backward's on_final (gpuad.distributed sets it)

    def __enter__(self) -> "GradientTape":
        if self._recording:
            raise ValueError("GradientTape: this tape is already recording (nested `with` "
                             "on the same tape)")
        self._push()
        return self

    def __exit__(self, *exc: object) -> None:  # exceptions propagate
        if self._recording:
            self._pop()

    def _push(self):
        core.push_recorder(self)
        self._recording = True

    def _pop(self):
        core.pop_recorder(self)
        self._recording = False

    def _watch_one(self, t):
        if t.dtype.kind not in "fc":  # only floating tensors are ever watched or recorded
            return
        if not t._id:
            core.give_id(t)
        self._ids.add(t._id)
        if isinstance(t, Variable):
            self._variables.setdefault(t._id, t)

    def watch(self, tensor: TensorStructure) -> None:
        """Watch a Tensor, Variable, or a nested list/tuple/dict of them.

        Watching a tensor that is not floating warns and has no effect, as TensorFlow;
        anything but a Tensor or Variable is a ValueError.
        """
        for t in flatten(tensor)[0]:
            if not isinstance(t, Tensor):  # ValueError, as TensorFlow
                raise ValueError(f"GradientTape.watch: Passed in object {t!r:.60} of type "
                                 f"{type(t).__name__!r}, not a Tensor or Variable")
            if t.dtype.kind not in "fc":
                user_warnings.warn(f"GradientTape.watch: the watched tensor must be floating, "
                                   f"got {t.dtype}; it is not watched")
                continue
            self._watch_one(t)

    @contextlib.contextmanager
    def stop_recording(self) -> typing.Iterator[None]:
        """Context manager in which this tape records nothing.

        >>> import gpuad as ad
        >>> x = ad.constant(2.0)
        >>> with ad.GradientTape() as tape:
        ...     tape.watch(x)
        ...     with tape.stop_recording():
        ...         y = x * x
        >>> print(tape.gradient(y, x))
        None
        """
        if not self._recording:
            raise RuntimeError("GradientTape.stop_recording: the tape is not recording")
        self._pop()
        try:
            yield
        finally:
            self._push()

    def reset(self) -> None:
        """Forget everything recorded and watched (the tape keeps recording if it was)."""
        self._ids, self._records, self._variables = set(), {}, {}
        self._used = False

    def _check_unused(self, op):
        """TensorFlow's error for a second pass over a non-persistent tape."""
        if self._used:
            raise RuntimeError(f"A non-persistent GradientTape can only be used to compute one "
                               f"set of gradients (or jacobians): GradientTape.{op} on a used "
                               f"tape; use GradientTape(persistent=True) to compute several")

    def watched_variables(self) -> tuple[Variable, ...]:
        """The Variables this tape watches, in creation order (as TensorFlow: the order does
        not depend on which one the computation read first)."""
        return tuple([self._variables[i] for i in sorted(self._variables)])

    def gradient(self, target: TensorStructure, sources: TensorStructure,
                 output_gradients: TensorStructure = None,
                 unconnected_gradients: UnconnectedGradients | str = UnconnectedGradients.NONE
                 ) -> TensorStructure:
        """The gradient of ``target`` with respect to ``sources``.

        Parameters
        ----------
        target : Tensor or list of Tensors
            A list is differentiated as the sum of its elements.
        sources : Tensor, Variable, or nested list/tuple/dict of them
            The result has the same structure.
        output_gradients : Tensor or list, optional
            The cotangent of each target (default: ones).
        unconnected_gradients : {"none", "zero"}
            What a source the target does not depend on gets: None or zeros.

        Returns
        -------
        Tensors (or None) in the structure of ``sources``, each with its source's dtype.
        """
        self._check_unused("gradient")
        unconnected = unconnected_gradients if unconnected_gradients is \
            UnconnectedGradients.NONE else unconnected_gradients_value(unconnected_gradients)
        if self._recording:
            if not self._persistent:
                self._pop()
            else:
                user_warnings.warn("GradientTape.gradient on a persistent tape inside its "
                                   "context records the gradient computation on the tape "
                                   "itself; call it outside the context unless you want "
                                   "higher-order gradients")
        targets = flatten(target)[0]
        for t in targets:
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.gradient: target must be a Tensor or a list "
                                f"of Tensors, got {type(t).__name__}")
        if output_gradients is None:
            output_gradients = [None] * len(targets)
        else:
            output_gradients = flatten(output_gradients)[0]
            if len(output_gradients) != len(targets):
                raise ValueError(f"GradientTape.gradient: {len(targets)} targets but "
                                 f"{len(output_gradients)} output_gradients")
        flat_sources, rebuild = flatten(sources)
        result = self._gradient(targets, output_gradients, flat_sources, unconnected)
        if not self._persistent:
            self._used = True
            self._ids, self._records = set(), {}  # release every saved array now
        return rebuild(result)

    def jacobian(self, target: Tensor, sources: TensorStructure,
                 unconnected_gradients: UnconnectedGradients | str = UnconnectedGradients.NONE,
                 parallel_iterations: int | None = None, experimental_use_pfor: bool = True
                 ) -> TensorStructure:
        """The Jacobian of ``target`` with respect to each source, as ``tf.GradientTape.jacobian``.

        Each result has shape ``target.shape + source.shape``.  It costs one pass, not one per
        element: forward mode is replayed over the record with the source's whole standard
        basis as a batch of tangents (in chunks, to bound memory); when the target has far
        fewer elements than the source, reverse mode runs once per target element instead.
        ``parallel_iterations`` and ``experimental_use_pfor`` are TensorFlow's and ignored: the
        computation is always vectorized.

        >>> import gpuad as ad
        >>> x = ad.constant([1.0, 2.0])
        >>> with ad.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = x * x
        >>> tape.jacobian(y, x).numpy()
        array([[2., 0.],
               [0., 4.]], dtype=float32)
        """
        return self._jacobian("jacobian", target, sources, unconnected_gradients, False)

    def batch_jacobian(self, target: Tensor, source: Tensor,
                       unconnected_gradients: UnconnectedGradients | str =
                       UnconnectedGradients.NONE, parallel_iterations: int | None = None,
                       experimental_use_pfor: bool = True) -> Tensor | None:
        """Per-example Jacobians: ``result[i] = d target[i] / d source[i]``, of shape
        ``target.shape + source.shape[1:]``, assuming example ``i`` of the target depends only
        on example ``i`` of the source (as ``tf.GradientTape.batch_jacobian``).  Both need
        rank at least 2 and the same first dimension (ValueError otherwise, as TensorFlow).
        ``parallel_iterations`` and ``experimental_use_pfor`` are accepted and ignored."""
        self._check_unused("batch_jacobian")
        for name, t in (("target", target), ("source", source)):
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.batch_jacobian: {name} must be a Tensor, got "
                                f"{type(t).__name__}")
            if t.ndim < 2:
                raise ValueError(f"GradientTape.batch_jacobian: {name} shape {t.shape} must "
                                 f"have rank at least 2")
        if target.shape[0] != source.shape[0]:  # TensorFlow's text, word for word
            raise ValueError("Need first dimension of target shape (%s) and source shape (%s) "
                             "to match." % (target.shape, source.shape))
        return self._jacobian("batch_jacobian", target, source, unconnected_gradients, True)

    def _jacobian(self, op, target, sources, unconnected_gradients, per_example):
        self._check_unused(op)
        if not isinstance(target, Tensor):
            raise TypeError(f"GradientTape.{op}: target must be a Tensor, got "
                            f"{type(target).__name__}")
        unconnected = unconnected_gradients_value(unconnected_gradients)
        if self._recording and not self._persistent:
            self._pop()
        flat, rebuild = flatten(sources)
        result = []
        for s in flat:
            if not isinstance(s, Tensor):
                raise TypeError(f"GradientTape.{op}: sources must be Tensors, got "
                                f"{type(s).__name__}")
            shape = target.shape + s.shape[1 if per_example else 0:]
            if s is target:
                columns = forward.basis(s, per_example)
            elif s._id not in self._ids or not target._id or target._id < s._id:
                columns = None
            elif 0 in shape:  # an empty Jacobian: no pass to run (nor an empty list to stack)
                result.append(array_ops.zeros(shape, s.dtype, s.backend))
                continue
            elif not per_example and target.size * 4 < s.size:
                result.append(array_ops.reshape(self._jacobian_rows(target, s), shape))
                continue
            else:
                columns = forward.jacobian_columns(self, target, s, per_example)
            if columns is None:
                result.append(array_ops.zeros(shape, s.dtype, s.backend)
                              if unconnected is UnconnectedGradients.ZERO else None)
                continue
            # columns: (source elements, *target.shape) -> target dimensions first
            perm = tuple(range(1, columns.ndim)) + (0,)
            result.append(array_ops.reshape(array_ops.transpose(columns, perm), shape))
        if not self._persistent:
            self._used = True
            self._ids, self._records = set(), {}
        return rebuild(result)

    def _jacobian_rows(self, target, source):
        """Reverse mode, once per target element: (target.size, *source.shape)."""
        rows = []
        eye = array_ops.eye(target.size, dtype=target.dtype, backend=target.backend)
        for k in range(target.size):
            g = backward(self, {target._id: array_ops.reshape(eye[k], target.shape)._value},
                         {source._id}).get(source._id)
            rows.append(array_ops.zeros_like(source) if g is None else core.as_tensor(g))
        return array_ops.stack(rows)

    def _gradient(self, targets, output_gradients, sources, unconnected):
        cotangents = {}
        for t, og in zip(targets, output_gradients):
            if not t._id or t.dtype.kind not in "fc":
                continue
            g = _initial_cotangent(t, og)
            old = cotangents.get(t._id)
            cotangents[t._id] = g if old is None else _add_cotangents(old, g)
        source_ids = set()
        for s in sources:
            if not isinstance(s, Tensor):
                raise TypeError(f"GradientTape.gradient: sources must be Tensors or "
                                f"Variables, got {type(s).__name__}")
            if s.dtype.kind not in "fc":
                user_warnings.warn(f"GradientTape.gradient: the dtype of a source must be "
                                   f"floating, got {s.dtype}; its gradient is None")
            elif s._id in self._ids:
                source_ids.add(s._id)
        grads = backward(self, cotangents, source_ids, release=not self._persistent,
                         on_final=self._on_final) if source_ids and cotangents else {}
        result = []
        for s in sources:
            g = grads.get(s._id) if s._id in source_ids else None
            if g is None and s._id not in source_ids and s.dtype.kind in "fc":
                g = _cotangent_of_itself(s, targets, output_gradients)
            if g is not None:
                result.append(core.as_tensor(g))
            elif unconnected is UnconnectedGradients.ZERO:
                result.append(array_ops.zeros_like(s))
            else:
                result.append(None)
        return result
