"""TensorFlow-1 eager's function transforms: gradients_function and friends.

Each positional argument selected by ``params`` is converted to a Tensor and watched on a
fresh tape while ``f`` runs; nesting these transforms gives higher derivatives.
"""
import functools
import inspect
import typing
from collections.abc import Callable, Sequence

from . import core
from .array_ops import (convert_like, convert_to_tensor, identity, reduce_sum,
                        stop_gradient, zeros)
from .core import Primitive, bind
from .forward import ForwardAccumulator
from .nest import flatten
from .tape import GradientTape
from .tensor import Tensor

_Function = Callable[..., typing.Any]  # what the transforms take and give


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


def _check_returned(value, f):
    """TensorFlow's error for a function that returns None (a forgotten ``return``)."""
    if value is None:
        raise ValueError("Cannot differentiate a function that returns None; did you forget "
                         f"to return a value from {getattr(f, '__name__', f)}?")


def _watched_call(op, f, args, positions):
    """Run ``f(*args)`` on a fresh tape that watches the floating arguments at ``positions``,
    converted to Tensors (an integer one is not watched: its gradient is None, as TensorFlow
    1's); returns ``(tape, f's value, the Tensors at positions)``."""
    args = list(args)
    seen = set()
    for i in positions:
        t = convert_to_tensor(args[i], op=op)
        if id(t) in seen:  # the same tensor twice gets two separate derivatives
            t = identity(t)
        seen.add(id(t))
        args[i] = t
    tape = GradientTape()
    with tape:
        for i in positions:
            if args[i].dtype.kind in "fc":
                tape.watch(args[i])
        out = f(*args)
    return tape, out, [args[i] for i in positions]


def _value_and_gradients(f, params, args, kwargs):
    dy = kwargs.pop("dy", None)
    if kwargs:
        raise ValueError("gradients_function: the function to differentiate cannot take "
                         f"keyword arguments (got {sorted(kwargs)})")
    positions = _param_positions(f, params, len(args))
    tape, value, sources = _watched_call("gradients_function", f, args, positions)
    _check_returned(value, f)
    return value, tape.gradient(value, sources, output_gradients=dy)


def value_and_gradients_function(f: _Function,
                                 params: Sequence[int | str] | None = None) -> _Function:
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


def gradients_function(f: _Function, params: Sequence[int | str] | None = None) -> _Function:
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


def implicit_value_and_gradients(f: _Function) -> _Function:
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
        _check_returned(value, f)
        variables = tape.watched_variables()
        if not variables:
            raise ValueError("implicit_gradients: no trainable Variables were accessed while "
                             f"{getattr(f, '__name__', 'the function')} was computed")
        return value, list(zip(tape.gradient(value, list(variables)), variables))
    return decorated


def implicit_gradients(f: _Function) -> _Function:
    """Return ``fn(*args) -> [(gradient, variable), ...]`` for the trainable Variables ``f``
    reads (see :func:`implicit_value_and_gradients`)."""
    @functools.wraps(f)
    def decorated(*args, **kwargs):
        return implicit_value_and_gradients(f)(*args, **kwargs)[1]
    return decorated


__all__ = ["gradients_function", "value_and_gradients_function", "implicit_gradients",
           "implicit_value_and_gradients"]


# --------------------------------------------------------------- JAX-style transforms

def _argnums(op, argnums, nargs):
    single = isinstance(argnums, int)
    positions = (argnums,) if single else tuple(argnums)
    for p in positions:
        if not isinstance(p, int) or not -nargs <= p < nargs:
            raise ValueError(f"{op}: argnums {argnums!r} is out of range for {nargs} arguments")
    return single, tuple(p % nargs for p in positions)


class _Tree:
    """One argument of a JAX-style transform: a nested list, tuple or dict of values (JAX's
    pytree), its leaves converted to Tensors; a None leaf stays None (an empty subtree)."""

    def __init__(self, op, value, seen, position):
        leaves, self.rebuild = flatten(value)
        self.leaves = []
        for leaf in leaves:
            if leaf is None:
                self.leaves.append(None)
                continue
            t = convert_to_tensor(leaf, op=op)
            if t.dtype.kind not in "fc":
                raise TypeError(f"{op}: argument {position} has a leaf of dtype {t.dtype}; only "
                                f"floating arguments can be differentiated")
            if id(t) in seen:  # the same tensor twice gets two separate derivatives
                t = identity(t)
            seen.add(id(t))
            self.leaves.append(t)

    @property
    def value(self):
        return self.rebuild(self.leaves)

    @property
    def tensors(self):
        return [t for t in self.leaves if t is not None]

    def build(self, flat):
        """This argument's structure from ``flat``, one value per Tensor leaf."""
        flat = iter(flat)
        return self.rebuild([None if t is None else next(flat) for t in self.leaves])


def _trees(op, args, positions):
    seen = set()
    return [_Tree(op, args[i], seen, i) for i in positions]


def _tree_call(op, f, args, positions, persistent=False):
    """Run ``f(*args)`` on a fresh tape watching every leaf of the arguments at
    ``positions``; returns ``(tape, f's value, their _Trees)``."""
    args = list(args)
    trees = _trees(op, args, positions)
    tape = GradientTape(persistent=persistent)
    for i, tree in zip(positions, trees):
        args[i] = tree.value
    with tape:
        tape.watch(_sources(trees))
        out = f(*args)
    return tape, out, trees


def _sources(trees):
    return [t for tree in trees for t in tree.tensors]


def _per_tree(trees, flat):
    """Split ``flat`` (one value per Tensor leaf of all ``trees``) into their structures."""
    out, start = [], 0
    for tree in trees:
        n = len(tree.tensors)
        out.append(tree.build(flat[start:start + n]))
        start += n
    return out


def value_and_grad(f: _Function, argnums: int | Sequence[int] = 0) -> _Function:
    """Return ``fn(*args) -> (f(*args), gradient)`` for a scalar-valued ``f``, as JAX.

    ``argnums`` (int or tuple) selects the arguments; a tuple gives a tuple of gradients.  An
    argument may be a nested list, tuple or dict of Tensors: its gradient has its structure.

    >>> import gpuad as ad
    >>> value, g = ad.value_and_grad(lambda x, y: x * x * y, argnums=(0, 1))(3.0, 2.0)
    >>> float(value), [float(v) for v in g]
    (18.0, [12.0, 9.0])
    >>> g = ad.grad(lambda p: p["w"] * p["b"][0])({"w": 3.0, "b": [2.0]})
    >>> float(g["w"]), float(g["b"][0])
    (2.0, 3.0)
    """
    @functools.wraps(f)
    def decorated(*args):
        single, positions = _argnums("grad", argnums, len(args))
        tape, out, trees = _tree_call("grad", f, args, positions)
        if not isinstance(out, Tensor) or out.shape != ():
            shape = getattr(out, "shape", type(out).__name__)
            raise TypeError(f"grad: f must return a scalar Tensor (shape ()), got {shape}; "
                            f"use jacobian or vjp for non-scalar outputs")
        grads = _per_tree(trees, tape.gradient(out, _sources(trees),
                                               unconnected_gradients="zero"))
        return out, grads[0] if single else tuple(grads)
    return decorated


def grad(f: _Function, argnums: int | Sequence[int] = 0) -> _Function:
    """Return ``fn(*args) -> df/dargs`` for a scalar-valued ``f``; compose freely.

    >>> import gpuad as ad
    >>> d3 = ad.grad(ad.grad(ad.grad(lambda x: x ** 4)))
    >>> float(d3(2.0))
    48.0
    """
    @functools.wraps(f)
    def decorated(*args):
        return value_and_grad(f, argnums)(*args)[1]
    return decorated


def vjp(f: _Function, *primals: typing.Any) -> tuple[typing.Any, _Function]:
    """Return ``(f(*primals), vjp_fn)`` where ``vjp_fn(cotangent)`` gives one cotangent per
    primal (a tuple); ``vjp_fn`` may be called many times.  Primals, the result and the
    cotangents may be nested lists, tuples and dicts of Tensors.

    >>> import gpuad as ad
    >>> y, vjp_fn = ad.vjp(lambda x: x * x, ad.constant([1.0, 2.0]))
    >>> vjp_fn(ad.constant([1.0, 10.0]))[0].numpy()
    array([ 2., 40.], dtype=float32)
    """
    tape, out, trees = _tree_call("vjp", f, primals, range(len(primals)), persistent=True)
    targets, _ = flatten(out)

    def vjp_fn(cotangent):
        cotangents, _ = flatten(cotangent)
        if len(cotangents) != len(targets):
            raise ValueError(f"vjp: the cotangent has {len(cotangents)} leaves but f's result "
                             f"has {len(targets)}")
        grads = tape.gradient(targets, _sources(trees), output_gradients=cotangents,
                              unconnected_gradients="zero")
        return tuple(_per_tree(trees, grads))
    return out, vjp_fn


def jvp(f: _Function, primals: Sequence[typing.Any],
        tangents: Sequence[typing.Any]) -> tuple[typing.Any, typing.Any]:
    """Return ``(f(*primals), J tangents)`` by forward mode; each primal (and its tangent) may
    be a nested list, tuple or dict of Tensors.

    >>> import gpuad as ad
    >>> y, t = ad.jvp(lambda x: ad.sin(x) * x, [ad.constant(0.0)], [ad.constant(1.0)])
    >>> float(y), float(t)
    (0.0, 0.0)
    """
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    trees = _trees("jvp", primals, range(len(primals)))
    flat_tangents = []
    for i, (tree, tangent) in enumerate(zip(trees, tangents)):
        leaves = [t for t in flatten(tangent)[0] if t is not None]
        if len(leaves) != len(tree.tensors):
            raise ValueError(f"jvp: primal {i} has {len(tree.tensors)} leaves but its tangent "
                             f"has {len(leaves)}")
        flat_tangents += leaves
    with ForwardAccumulator(_sources(trees), flat_tangents) as acc:
        out = f(*[tree.value for tree in trees])
    return out, acc.jvp(out, unconnected_gradients="zero")


def jacobian(f: _Function, argnums: int | Sequence[int] = 0) -> _Function:
    """Return ``fn(*args) -> J`` with ``J.shape == f(*args).shape + arg.shape`` (a tuple for
    tuple ``argnums``); one vectorized pass (see :meth:`GradientTape.jacobian`).  With nested
    arguments or results, as JAX: the result's structure, each leaf holding the structure of
    the arguments.

    >>> import gpuad as ad
    >>> ad.jacobian(lambda x: x * x)(ad.constant([1.0, 2.0])).numpy()
    array([[2., 0.],
           [0., 4.]], dtype=float32)
    >>> j = ad.jacobian(lambda p: p[0] * p[1])([ad.constant(2.0), ad.constant(3.0)])
    >>> [float(d) for d in j]
    [3.0, 2.0]
    """
    @functools.wraps(f)
    def decorated(*args):
        single, positions = _argnums("jacobian", argnums, len(args))
        tape, out, trees = _tree_call("jacobian", f, args, positions, persistent=True)
        targets, rebuild = flatten(out)
        sources = _sources(trees)
        blocks = []
        for target in targets:
            if not isinstance(target, Tensor):
                raise TypeError(f"jacobian: f must return Tensors, got {type(target).__name__}")
            parts = _per_tree(trees, tape.jacobian(target, sources,
                                                   unconnected_gradients="zero"))
            blocks.append(parts[0] if single else tuple(parts))
        return rebuild(blocks)
    return decorated


def hessian(f: _Function, argnums: int | Sequence[int] = 0) -> _Function:
    """Return ``fn(*args) -> H`` for a scalar-valued ``f``: the Jacobian of its gradient
    (nested arguments give nested blocks, ``H[i][j]`` for leaves i and j, as JAX).

    >>> import gpuad as ad
    >>> ad.hessian(lambda x: ad.reduce_sum(x ** 3))(ad.constant([1.0, 2.0])).numpy()
    array([[ 6.,  0.],
           [ 0., 12.]], dtype=float32)
    """
    return jacobian(grad(f, argnums), argnums)


def _as_list(grads):
    return list(grads) if isinstance(grads, (list, tuple)) else [grads]


def _custom_vjp(g, saved, attrs, needs):
    grad_fn, inputs, variables, name = attrs
    n_args = len(inputs) - len(variables)
    if variables:
        both = grad_fn(g, variables=list(variables))
        if not isinstance(both, (list, tuple)) or len(both) != 2:
            raise ValueError(f"custom_gradient({name}): f reads Variables, so grad_fn(dy, "
                             f"variables=...) must return (input_grads, variable_grads), got "
                             f"{type(both).__name__}")
        input_grads, variable_grads = _as_list(both[0]), _as_list(both[1])
    else:
        input_grads, variable_grads = _as_list(grad_fn(g)), []
    if len(input_grads) != n_args or len(variable_grads) != len(variables):
        raise ValueError(f"custom_gradient({name}): grad_fn returned {len(input_grads)} input "
                         f"gradients and {len(variable_grads)} variable gradients for "
                         f"{n_args} inputs and {len(variables)} variables")
    # Python and NumPy values take the dtype and backend of the input they belong to
    return [None if gi is None else convert_like(gi, x, "custom_gradient")
            for gi, x in zip(input_grads + variable_grads, inputs)] + [None]  # (none for y)


def _custom_jvp(tangents, saved, out, attrs):
    """Forward mode from ``grad_fn``: it is linear in ``dy``, so the gradient of
    ``<grad_fn(u), t>`` with respect to ``u`` is ``J t`` (the VJP, twice)."""
    u = zeros(out.shape, out.dtype, out.backend)
    with GradientTape() as tape:
        tape.watch(u)
        grads = _custom_vjp(u, saved, attrs, tuple(t is not None for t in tangents))
        terms = [reduce_sum(g * t) for g, t in zip(grads, tangents)
                 if g is not None and t is not None]
        total = terms[0] if terms else None
        for term in terms[1:]:
            total = total + term
    return None if total is None else tape.gradient(total, u)


# inputs: the inputs, the Variables f read, then f's output y (an input, so that a tracer of
# gpuad.function sees where the value comes from); attrs: (grad_fn, the inputs and Variables,
# the Variables, f's name)
_CUSTOM = Primitive("custom_gradient", lambda values, attrs: values[-1], _custom_vjp,
                    _custom_jvp)


def custom_gradient(f: Callable[..., tuple[typing.Any, _Function]]) -> _Function:
    """Decorate ``f(*inputs) -> (y, grad_fn)`` to give ``y`` the gradient ``grad_fn``, as
    ``tf.custom_gradient``.

    ``grad_fn(dy)`` returns one gradient per input (a tensor or a list; Python and NumPy
    values are converted to the input's dtype).  A Variable passed as an argument is an input
    like any other.  If ``f`` reads other trainable Variables, ``grad_fn(dy, variables=...)``
    returns ``(input_grads, variable_grads)``.  ``grad_fn`` written with gpuad ops is
    differentiable again (second order); the ops inside ``f`` itself are not recorded.

    >>> import gpuad as ad
    >>> @ad.custom_gradient
    ... def clip_grad(x):
    ...     return ad.identity(x), lambda dy: ad.clip_by_value(dy, -1.0, 1.0)
    >>> x = ad.constant(2.0)
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = clip_grad(x) * 10.0
    >>> float(tape.gradient(y, x))
    1.0
    """
    @functools.wraps(f)
    def decorated(*args):
        inputs = [convert_to_tensor(a, op="custom_gradient") for a in args]
        with core.recording_suspended():  # f's own ops are not recorded ...
            with GradientTape() as probe:  # ... but the Variables it reads are noted
                y, grad_fn = f(*inputs)
        # a Variable passed as an argument is an input: only the others go to `variables=`
        variables = [v for v in probe.watched_variables() if not any(v is x for x in inputs)]
        if variables and "variables" not in inspect.signature(grad_fn).parameters:
            raise TypeError("custom_gradient: f reads Variables "
                            f"{[v.name for v in variables]}, so grad_fn must accept a "
                            "`variables` keyword argument")
        if not isinstance(y, Tensor):
            raise TypeError(f"custom_gradient: f must return (Tensor, grad_fn), got "
                            f"{type(y).__name__}")
        # read the Variables on the outer tapes (watching trainable ones), as TF converts them
        recorded = tuple([core.as_input(x) for x in inputs + variables])
        return bind(_CUSTOM, recorded + (y,), (grad_fn, recorded, variables,
                                               getattr(f, "__name__", "f")))
    return decorated


__all__ += ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "stop_gradient",
            "custom_gradient"]


def recompute_grad(f: _Function) -> _Function:
    """Decorate ``f`` to keep only its inputs in the forward pass and run it again, under a
    tape, when the gradient is needed, as ``tf.recompute_grad`` (memory for compute).

    Values and gradients (of any order) are those of ``f``; trainable Variables that ``f``
    reads get their gradients too.

    Examples
    --------
    >>> import gpuad as ad
    >>> w = ad.Variable(2.0)
    >>> block = ad.recompute_grad(lambda x: ad.tanh(x * w) * x)
    >>> x = ad.constant(0.5)
    >>> with ad.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = block(x)
    >>> [f"{float(g):.4f}" for g in tape.gradient(y, [x, w])]
    ['1.1816', '0.1050']
    """
    @functools.wraps(f)
    def decorated(*args):
        @custom_gradient
        def recomputed(*inputs):
            def grad_fn(dy, variables=()):
                with GradientTape() as tape:  # the forward again, recorded this time
                    tape.watch([x for x in inputs if x.dtype.kind in "fc"])
                    y = f(*inputs)
                grads = tape.gradient(y, list(inputs) + list(variables), output_gradients=dy)
                input_grads = grads[:len(inputs)]
                return (input_grads, grads[len(inputs):]) if variables else input_grads
            return f(*inputs), grad_fn
        return recomputed(*args)
    return decorated


__all__ += ["recompute_grad"]
