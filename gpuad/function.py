"""``gpuad.function``: trace a step once per input signature, then replay it.

The first call with a new signature runs ``f`` eagerly while a tracer observes every
:func:`gpuad.core.bind` of this thread: the trace is the list of primitives applied, with
where each input came from (an argument, a Variable, a constant, an earlier op) -- forward
ops and, since tracing makes every backward step run as ops, the backward ops of any
``GradientTape`` inside ``f``.  That call's result is the eager result.  Later calls with the
same signature replay the trace on raw arrays (:class:`ConcreteFunction`): no Tensors, no
records, no dispatch, dead values dropped and repeated ones computed once.

The signature: the backend, the structure of the arguments, each Tensor's shape and dtype,
the value of every other argument (a Python number retraces per value, as TensorFlow), and
the shapes and dtypes of the Variables the trace read.  Python code runs only while tracing:
its side effects happen once per trace, and a value that depends on an input cannot become
Python data then (``float(x)``, ``if x > 0:``, ``x.numpy()``): that raises
:class:`TraceError`.
"""
import contextlib
import functools
import inspect
import math
import threading
import typing

import numpy

from . import backends, core, cuda, fusion, native, nest, numpy_memory, user_warnings
from .backends import name_of as _backend_name
from .array_ops import convert_to_tensor
from .ops import kernel_launcher
from .tensor import Tensor, value_read_checks, wrap
from .variables import ASSIGN, Variable

RETRACE_WARNING_AFTER = 5  # traces of one function, as tf.function's warning


class TraceError(RuntimeError):
    """A value that ``gpuad.function`` cannot know while it traces (it depends on an input)."""


# ---------------------------------------------------------------------------------- tracing

class _Tracing(threading.local):
    def __init__(self):
        self.tracer = None  # the tracer of this thread's trace in progress


_tracing = _Tracing()
_UNTRACED = object()  # stands for a tracer while compiled functions run eagerly


@contextlib.contextmanager
def calls_run_eagerly() -> typing.Iterator[None]:
    """Within it, a compiled function called runs its Python function eagerly, untraced (as
    inside another trace); :func:`gpuad.vmap` uses it, since its batched values cannot be
    traced.  A trace already in progress keeps going."""
    outer = _tracing.tracer
    if outer is None:
        _tracing.tracer = _UNTRACED
    try:
        yield
    finally:
        if outer is None:
            _tracing.tracer = None


class _Tracer:
    """Builds the graph of one trace from the binds it observes.

    A value is referred to as ``("input", k)`` (the k-th Tensor leaf of the arguments),
    ``("variable", v)`` (Variable ``v``'s value when the call starts), ``("number", value)``
    (a Python number), ``("const", k)`` (``constants[k]``, the raw array of a Tensor made
    outside the trace) or ``("node", n)`` (the output of step n).
    """

    def __init__(self, fn, input_leaves):
        self.fn = fn
        self.inputs = {id(t): k for k, t in enumerate(input_leaves)}
        self.input_avals = [core.aval_of(t) for t in input_leaves]
        self.steps = []          # (primitive, argument refs, attrs, the output's Aval)
        self.nodes = {}          # id(Tensor) -> step index of the op that made it
        self.variables = {}      # id(Variable) -> the Variable, for every one read or assigned
        self.current = {}        # id(Variable) -> ref of its value now (after assigns)
        self.assigned = {}       # id(Variable) -> step index of its last assign
        self.keep = list(input_leaves)  # every Tensor seen: ids stay unique during the trace
        self.constants, self.constant_of = [], {}  # raw arrays; id(Tensor) -> index

    def ref(self, t):
        if type(t) in (int, float, bool):  # repr tells 0.0 from -0.0 and 1 from 1.0
            return ("number", t, repr(t))
        key = id(t)
        if not isinstance(t, Tensor):  # a NumPy scalar (a rule's saved Python number)
            self.keep.append(t)
            return self._constant(key, numpy.asarray(t))
        if key in self.nodes:
            return ("node", self.nodes[key])
        if key in self.current:  # a Variable after an assign in the trace
            return self.current[key]
        if key in self.inputs:  # a Variable passed as an argument is an input too
            return ("input", self.inputs[key])
        if isinstance(t, Variable):
            self.variables.setdefault(key, t)
            return ("variable", key)
        return self._constant(key, t._value)

    def _constant(self, key, value):
        if key not in self.constant_of:
            self.constant_of[key] = len(self.constants)
            self.constants.append(value)
        return ("const", self.constant_of[key])

    def observe(self, primitive, args, attrs, out):
        refs = tuple(self.ref(a) for a in args)
        self.keep.append(out)
        self.keep.extend(a for a in args if isinstance(a, Tensor))
        self.nodes[id(out)] = len(self.steps)
        self.steps.append((primitive, refs, attrs, core.aval_of(out)))
        if primitive is ASSIGN:
            key = id(args[0])
            if key not in self.inputs:
                self.variables.setdefault(key, args[0])
            self.current[key] = self.assigned[key] = ("node", len(self.steps) - 1)

    def traced(self, t):
        """Does ``t``'s value depend on the call (an input, a Variable, an op of the trace)?"""
        return id(t) in self.nodes or id(t) in self.inputs or isinstance(t, Variable)

    def check_read(self, t, what):
        if _tracing.tracer is not self or not self.traced(t):
            return
        made_by = self.steps[self.nodes[id(t)]][0].name if id(t) in self.nodes else \
            "an argument" if id(t) in self.inputs else "a Variable"
        raise TraceError(
            f"gpuad.function({_name(self.fn)}): {what} of a Tensor computed from the call's "
            f"inputs (by {made_by}){_where(self.fn)} has no value while the function is "
            f"traced. Use gpuad.where for a data-dependent choice, compute it outside the "
            f"function, or pass the value as a Python argument (one trace per value).")


def _name(fn):
    return getattr(fn, "__qualname__", getattr(fn, "__name__", repr(fn)))


def _where(fn):
    """`` at line N of FILE`` for the innermost frame of ``fn`` on the stack, if any."""
    code = getattr(fn, "__code__", None)
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code is code:
            return f" at line {frame.f_lineno} of {frame.f_code.co_filename}"
        frame = frame.f_back
    return ""


# ----------------------------------------------------------------------------------- replay

class ConcreteFunction:
    """One trace of a :class:`Function`, for one signature, compiled to a replay.

    The replay is generated Python (:attr:`source`), the live steps of the trace in order:
    the fused group of the largest elementwise iteration space as one loop over chunks (or
    one CUDA kernel on CuPy: :mod:`gpuad.fusion`); the other small elementwise steps as one
    program of NumPy calls, each written once; every other step as a call of its elementwise
    NumPy forward or of its ``impl`` on raw arrays, large results in pooled buffers, each
    value dropped after its last use (the pool hands its buffer on within the call).  Then
    the Variables get their new values and the outputs are wrapped in new Tensors.
    """

    def __init__(self, tracer, result, backend):
        leaves, self._rebuild = nest.flatten(result)
        # a Variable returned is returned itself (as eagerly), with its new value
        outputs = [tracer.ref(t) if isinstance(t, Tensor) and not isinstance(t, Variable)
                   else ("python", t) for t in leaves]
        self.variables = list(tracer.variables.values())
        self.guards = [(v.shape, v.dtype, v.backend) for v in self.variables]
        # each assigned Variable: a captured one, or ("input", k) for one passed as argument k
        assigned = [(("input", tracer.inputs[k]) if k in tracer.inputs else tracer.variables[k],
                     ref) for k, ref in tracer.assigned.items()]
        steps, renames = _common_subexpressions(_fold_constants(tracer))
        outputs = [renames.get(r, r) if r[0] == "node" else r for r in outputs]
        assigned = [(v, renames.get(r, r) if r[0] == "node" else r) for v, r in assigned]
        self.steps = _live_steps(steps, outputs + [r for _, r in assigned])
        self.traced_ops = len(tracer.steps)
        self.n_inputs = len(tracer.inputs)
        self._trace_constants = tracer.constants
        self._compile(outputs, assigned, tracer.variables, backend,
                      {("input", k): a for k, a in enumerate(tracer.input_avals)})

    def _compile(self, outputs, assigned, variables, backend, input_avals):
        names = {("input", k): f"i{k}" for k in range(self.n_inputs)}
        names.update({("variable", key): f"w{j}" for j, key in enumerate(variables)})
        namespace = {"empty": numpy_memory.empty, "wrap": wrap, "numpy": numpy,
                     "__name__": __name__}  # the warning filter of gpuad/__init__.py
        constants = []

        def name(ref):
            if ref[0] == "number":  # a literal in the source
                return fusion.literal(ref[1])
            if ref[0] == "const" and ref not in names:
                names[ref] = f"c{len(constants)}"
                constants.append(self._trace_constants[ref[1]])
            if names[ref] is None:  # a step folded to a number, read as an array
                names[ref] = small.materialize(ref, lines)
            return names[ref]
        trace_constants = {("const", k): c for k, c in enumerate(self._trace_constants)}
        avals = dict(input_avals)
        avals.update({ref: core.Aval(c.shape, c.dtype, _backend_name(c))
                      for ref, c in trace_constants.items()})
        avals.update({("variable", key): core.aval_of(v) for key, v in variables.items()})
        avals.update({("node", n): step[3] for n, step in self.steps})
        kept = {r for r in outputs + [r for _, r in assigned] if r[0] == "node"}
        group = fusion.chunk_group(self.steps, avals, kept, trace_constants,
                                   fusion.CHUNK_MIN_ELEMENTS if backend == "numpy" else 1)
        self.fused = group
        if group is not None:  # what does not need the group, the group, what needs it
            before = [s for s in self.steps if ("node", s[0]) not in group.members and
                      ("node", s[0]) not in group.after]
            self.steps = before + [(None, group)] + \
                [s for s in self.steps if ("node", s[0]) in group.after]
            for r in group.members:
                names[r] = f"v{r[1]}"
        last_use = {}
        for position, (n, step) in enumerate(self.steps):
            for r in (step.reads if n is None else step[1]):
                if r[0] == "node":
                    last_use[r] = position
        lines = []
        small = _SmallValues(avals, trace_constants, name, namespace)
        lowered = 0  # steps lowered into `small`
        for position, (n, step) in enumerate(self.steps):
            if n is None:  # the fused group
                lines.extend(step.render(name, namespace) if backend == "numpy" else
                             step.render_cuda(name, namespace, kernel_launcher))
                continue
            primitive, refs, attrs, aval = step
            if backend == "numpy" and small.takes(primitive, aval):
                names[("node", n)] = small.lower(("node", n), primitive, refs, lines)
                lowered += 1
                continue
            names[("node", n)] = out = f"v{n}"
            args = [name(r) for r in refs]
            namespace[f"a{n}"] = attrs
            if backend == "numpy" and getattr(primitive, "entry", None) is not None:
                namespace[f"f{n}"] = primitive.numpy_forward
                large = aval.size * aval.dtype.itemsize >= numpy_memory.POOL_MIN_BYTES
                namespace[f"s{n}"] = (aval.shape, aval.dtype)
                lines.append(f"{out} = f{n}({', '.join(args)}, "
                             f"out={f'empty(*s{n})' if large else '...'})")
            else:
                namespace[f"f{n}"] = primitive.impl
                lines.append(f"{out} = f{n}([{', '.join(args)}], a{n})")
            dead = [names[r] for r in refs if r[0] == "node" and last_use[r] == position
                    and r not in kept and names[r] == f"v{r[1]}"]
            if dead:  # its buffer goes back to the pool
                lines.append(f"{' = '.join(dict.fromkeys(dead))} = None")
        if backend == "numpy" and native.enabled and group is None and not assigned and \
                0 < lowered == len(self.steps):  # one elementwise program: one native kernel
            kernel_lines = small.native(outputs, names)
            if kernel_lines is not None:
                lines = kernel_lines
        returned = ", ".join(name(r) if r[0] != "python" else "None" for r in outputs)
        assigns = ", ".join(name(r) for _, r in assigned)
        head = ", ".join([f"i{k}" for k in range(self.n_inputs)] +
                         [f"w{j}" for j in range(len(variables))] +
                         [f"c{k}" for k in range(len(constants))])
        body = "".join(f"    {line}\n" for line in lines)
        self.source = (f"def replay({head}):\n{body}"
                       f"    return ({returned}{',' if outputs else ''}), "
                       f"({assigns}{',' if assigned else ''})\n")
        exec(compile(self.source, "<gpuad.function replay>", "exec"), namespace)
        self._replay = namespace["replay"]
        if backend == "cupy":  # relaunched as a CUDA graph from its second call
            self._replay = cuda.GraphReplay(self._replay)
        # a native replay reads no Variable nor constant (the whole replay is one program)
        self.native = small.kernel is not None and not variables and not constants
        self.calls = len(self.steps) - (group is not None) - lowered + \
            len(small.program.ops) + (group.calls if group is not None else 0) \
            if small.kernel is None else 1
        self._constants = constants
        self._outputs = outputs
        self._all_new = all(r[0] not in ("python", "input") for r in outputs)
        self._assigned = [v for v, _ in assigned]

    def matches(self):
        """Do the Variables still have the shapes, dtypes and backends traced?"""
        return not self.variables or all(
            (v.shape, v.dtype, v.backend) == g for v, g in zip(self.variables, self.guards))

    def __call__(self, input_leaves):
        if self.native:  # compiled code: no floating-point warnings to silence
            values, new = self._replay(*[t._value for t in input_leaves])
        else:
            with numpy.errstate(all="ignore"):  # as eager: masked-off branches divide by 0
                values, new = self._replay(*[t._value for t in input_leaves],
                                           *[v._value for v in self.variables],
                                           *self._constants)
        for v, value in zip(self._assigned, new):
            (input_leaves[v[1]] if type(v) is tuple else v)._value = value
        if self._all_new:  # every output a value of the replay: each a new Tensor
            return self._rebuild([wrap(value) for value in values])
        leaves = [r[1] if r[0] == "python" else input_leaves[r[1]] if r[0] == "input"
                  else wrap(value) for r, value in zip(self._outputs, values)]
        return self._rebuild(leaves)

    def explain(self):
        """What the trace became: its size, the NumPy calls (or primitives) a call makes, and
        the replay's generated source."""
        steps = sum(1 for n, _ in self.steps if n is not None)
        fused = "" if self.fused is None else (
            f"; fused: {len(self.fused.members)} steps into one loop of "
            f"{len(self.fused.program.ops)} operations per chunk")
        graph = f"; CUDA graph: {self._replay.status}" if isinstance(
            self._replay, cuda.GraphReplay) else ""
        return (f"traced ops: {self.traced_ops}; replayed steps: {steps}{fused}; calls per "
                f"call: {self.calls}; {len(self.variables)} Variables, {len(self._constants)} "
                f"constants{graph}\n{self.source}")


class _SmallValues:
    """The small floating elementwise steps of a replay (below the buffer pool's size), all
    lowered into one :class:`gpuad.fusion.Program`: each NumPy operation they need is written
    once, at the first step that needs it, and what the trace knows folds away (``x * 1``, the
    cotangent of a loss, an operation repeated by the backward)."""

    def __init__(self, avals, constants, name, namespace):
        self.program, self.avals, self.constants = fusion.Program(), avals, constants
        self.name, self.namespace = name, namespace
        self.operand_of, self.shape, self.dtype = {}, {}, {}
        self.kernel = None  # the numba kernel's source, when the program became one

    def native(self, outputs, names):
        """The replay's lines when the whole replay is this program over one shape, as one
        numba kernel (:mod:`gpuad.native`); None where that does not apply or numba fails.
        ``names`` of the outputs become the kernel's output arrays."""
        ops = self.program.ops
        shapes = set(self.shape.values())
        inputs = sorted({o for _, operands in ops for o in operands if o[0] == "in"})
        results = [self.operand_of.get(r) for r in outputs]
        if len(shapes) != 1 or any(r is None or r[0] != "op" for r in results) or \
                any(self.avals[o[1]].shape not in shapes and self.avals[o[1]].size != 1
                    for o in inputs) or \
                any(self.dtype[k].kind not in "fb" for k in range(len(ops))):
            return None
        (shape,) = shapes
        size = math.prod(shape)
        position = {o: k for k, o in enumerate(inputs)}
        program = fusion.Program()  # the same operations, inputs renumbered for the kernel
        program.ops = [(op, tuple(("in", position[o]) if o[0] == "in" else o
                                  for o in operands)) for op, operands in ops]
        source = native.kernel_source(
            program, range(len(ops)), [self.avals[o[1]].shape == shape for o in inputs],
            results, [], size >= native.PARALLEL_MIN_ELEMENTS, self.dtype)
        kernel = native.load(source, [self.avals[o[1]].dtype for o in inputs] +
                             [self.dtype[r[1]] for r in results])
        if kernel is None:
            return None
        self.kernel = source
        self.namespace["native_kernel"] = kernel
        lines = [f"x{k} = {self.name(o[1])}.reshape(-1)" +  # a copy if not contiguous
                 ("" if self.avals[o[1]].shape == shape else "[:1]")
                 for k, o in enumerate(inputs)]
        for j, (r, result) in enumerate(zip(outputs, results)):
            self.namespace[f"out{j}"] = (shape, self.dtype[result[1]])
            lines.append(f"o{j} = numpy.empty(*out{j})")
            names[r] = f"o{j}"
        arrays = [f"x{k}" for k in range(len(inputs))] + \
            [f"o{j}.reshape(-1)" for j in range(len(outputs))]
        lines.append(f"native_kernel({size}, {', '.join(arrays)})")
        return lines

    def takes(self, primitive, aval):
        """Is this step a small floating elementwise step, or a small comparison?"""
        kind = "f" if getattr(primitive, "entry", None) is not None else \
            "b" if primitive.name in fusion.LOGIC else None
        return aval.dtype.kind == kind and \
            aval.size * aval.dtype.itemsize < numpy_memory.POOL_MIN_BYTES

    def forward(self, primitive):
        """(input names, forward expression) of a step it takes."""
        entry = getattr(primitive, "entry", None)
        return (entry.inputs, entry.forward) if entry is not None else \
            fusion.LOGIC[primitive.name]

    def operand(self, ref, shape):
        """The program operand of ``ref``, an input of a step whose result has ``shape``."""
        if ref in self.operand_of:
            return self.operand_of[ref]
        if ref[0] == "number":
            return ("num", ref[1])
        known = self.constants.get(ref)
        # a constant of one value (a loss's cotangent of ones) is that number, where the
        # step's result has its shape anyway
        if known is not None and known.dtype.kind in "biuf" and known.size and \
                (known.ndim == 0 or known.shape == shape and _uniform(known)):
            return ("num", known.reshape(-1)[0].item())
        return ("in", ref)

    def source(self, o):
        if o[0] == "num":
            return fusion.literal(o[1])
        return self.name(o[1]) if o[0] == "in" else f"p{o[1]}"

    def _aval(self, o):
        if o[0] == "num":
            return (), None
        if o[0] == "in":
            return self.avals[o[1]].shape, self.avals[o[1]].dtype
        return self.shape[o[1]], self.dtype[o[1]]

    def lower(self, ref, primitive, refs, lines):
        """Lower step ``ref`` (its primitive, its inputs), writing the new operations into
        ``lines``; returns the source naming its value."""
        inputs, forward = self.forward(primitive)
        program = self.program
        first = len(program.ops)
        shape = self.avals[ref].shape
        # a constant's value may stand for it when the other inputs give the result's shape
        others = [self.avals[r].shape for r in refs if r[0] != "number" and r[0] != "const"]
        operands = [self.operand(r, shape if all(o == shape for o in others) else None)
                    for r in refs]
        value = program.lower(forward, dict(zip(inputs, operands)))
        for k in range(first, len(program.ops)):
            op, operands = program.ops[k]
            shapes, dtypes = zip(*[self._aval(o) for o in operands])
            self.shape[k] = numpy.broadcast_shapes(*shapes)
            self.dtype[k] = fusion.result_dtype(op, dtypes, self.avals[ref].dtype)
            self.namespace[f"u_{op}"] = fusion.numpy_function(op)
            args = [self.source(o) for o in operands]
            # Python numbers alone (a select's branches too) would compute in float64
            values = operands[1:] if op == "where" else operands
            if all(o[0] == "num" for o in values):
                self.namespace[f"n{k}"] = self.dtype[k].type
                args[len(operands) - len(values)] = f"n{k}({args[len(operands) - len(values)]})"
            args = ", ".join(args)
            lines.append(f"p{k} = u_{op}({args})" if op == "where" else
                         f"p{k} = u_{op}({args}, out=...)")
        self.operand_of[ref] = value
        if value[0] == "num":  # folded to a number: an array only if a reader needs one
            return None
        return self.source(value)

    def materialize(self, ref, lines):
        """The source of a step folded to a number, made an array of its aval (once)."""
        aval, value = self.avals[ref], self.operand_of[ref][1]
        self.namespace[f"s{ref[1]}"] = (aval.shape, aval.dtype)
        lines.append(f"v{ref[1]} = numpy.full(s{ref[1]}[0], {fusion.literal(value)}, "
                     f"s{ref[1]}[1])")
        return f"v{ref[1]}"


def _uniform(array):
    flat = array.reshape(-1)
    return bool((flat == flat[0]).all())


_UNFOLDABLE = ("random", "assign")  # a new draw each call; a side effect
_FOLD_MAX_ELEMENTS = 64  # a larger constant result is cheaper to recompute than to keep


def _fold_constants(tracer):
    """The trace's steps, but each small step on constants only, computed now, once: its
    output becomes a constant of the trace (``tracer.constants`` grows)."""
    steps, folded = [], {}
    for n, (primitive, refs, attrs, aval) in enumerate(tracer.steps):
        refs = tuple(folded.get(r, r) for r in refs)
        if primitive.name not in _UNFOLDABLE and aval.size <= _FOLD_MAX_ELEMENTS and \
                all(r[0] in ("const", "number") for r in refs):
            values = [tracer.constants[r[1]] if r[0] == "const" else r[1] for r in refs]
            with numpy.errstate(all="ignore"):
                value = primitive.impl(values, attrs)
            folded[("node", n)] = tracer._constant(("folded", n), value)
            continue
        steps.append((n, (primitive, refs, attrs, aval)))
    return steps, folded


def _common_subexpressions(steps_and_folded):
    """``([(n, step)], renames)``: each repeated step (same primitive, inputs and attrs)
    dropped for its first occurrence (``renames`` maps the dropped one's ref, and a folded
    one's, to what replaces it); random draws and assignments are never merged."""
    steps, folded = steps_and_folded
    first, renamed, out = {}, dict(folded), []
    for n, (primitive, refs, attrs, aval) in steps:
        refs = tuple(renamed.get(r, r) if r[0] == "node" else r for r in refs)
        try:
            key = (primitive, refs, attrs)
            hash(key)
        except TypeError:  # arrays in attrs or constants: not comparable, kept apart
            key = None
        if key is not None and primitive.name not in _UNFOLDABLE and key in first:
            renamed[("node", n)] = first[key]
            continue
        if key is not None:
            first[key] = ("node", n)
        out.append((n, (primitive, refs, attrs, aval)))
    return out, renamed


def _live_steps(steps, needed_refs):
    """The steps that ``needed_refs`` (outputs, Variables' new values) need, in order."""
    needed = {r for r in needed_refs if r[0] == "node"}
    live = []
    for n, step in reversed(steps):
        if ("node", n) in needed:
            live.append((n, step))
            needed.update(r for r in step[1] if r[0] == "node")
    live.reverse()
    return live


# --------------------------------------------------------------------------------- function

def _leaf_key(x):
    if isinstance(x, Variable):
        return ("variable", x.shape, x.dtype.str, x.backend)
    if isinstance(x, Tensor):
        return ("tensor", x.shape, x.dtype.str, x.backend)
    try:
        hash(x)
    except TypeError:
        raise TypeError(f"gpuad.function: an argument of type {type(x).__name__} is neither "
                        f"a Tensor nor hashable; pass arrays as Tensors") from None
    return ("value", type(x), x)


class Function:
    """A function traced once per input signature and replayed (see :func:`function`)."""

    def __init__(self, fn: typing.Callable[..., typing.Any],
                 reduce_retracing: bool = False) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._reduce_retracing = bool(reduce_retracing)
        self._traces = {}  # signature -> [ConcreteFunction]
        self._simple = {}  # calls with Tensor arguments only: (backend, shapes, dtypes) -> one
        self._count = 0
        self._lock = threading.Lock()
        self._warned_eager = False

    def experimental_get_tracing_count(self) -> int:
        """How many times the function has been traced (as ``tf.function``'s)."""
        return self._count

    def _arguments(self, args, kwargs):
        """(input Tensor leaves, signature, a function of the leaves giving args, kwargs)."""
        leaves, rebuild = nest.flatten((args, kwargs))
        if self._reduce_retracing:  # Python numbers become inputs: one trace for all values
            leaves = [convert_to_tensor(x, backend=backends.get_backend())
                      if type(x) in (int, float) else x for x in leaves]
        tensors = [x for x in leaves if isinstance(x, Tensor)]
        signature = (backends.get_backend(), _structure((args, kwargs)),
                     tuple(_leaf_key(x) for x in leaves))
        return leaves, tensors, signature, rebuild

    def get_concrete_function(self, *args: typing.Any, **kwargs: typing.Any
                              ) -> ConcreteFunction:
        """The :class:`ConcreteFunction` for these arguments, tracing them if needed."""
        leaves, tensors, signature, rebuild = self._arguments(args, kwargs)
        concrete = self._lookup(signature)
        if concrete is None:
            concrete = self._trace(leaves, tensors, signature, rebuild)[0]
        return concrete

    def explain(self, *args: typing.Any, **kwargs: typing.Any) -> str:
        """What the trace for these arguments became (see :meth:`ConcreteFunction.explain`)."""
        return self.get_concrete_function(*args, **kwargs).explain()

    def _lookup(self, signature):
        for concrete in self._traces.get(signature, ()):
            if concrete.matches():
                return concrete
        return None

    def __call__(self, *args, **kwargs):
        if _tracing.tracer is not None:  # inside another trace: its tracer sees these ops
            return self._fn(*args, **kwargs)
        # the common call, Tensors only: its trace found by a cheap key (no flattening)
        simple = not kwargs and not self._reduce_retracing and \
            all([type(a) is Tensor for a in args])
        if simple:
            key = (backends.get_backend(),) + tuple([(a._value.shape, a._value.dtype)
                                                     for a in args])
            concrete = self._simple.get(key)
            if concrete is not None and concrete.matches() and not core.recorders():
                return concrete(args)
        leaves, tensors, signature, rebuild = self._arguments(args, kwargs)
        if core.recorders():  # a tape or accumulator would not see a replay's ops
            if not self._warned_eager:
                self._warned_eager = True
                user_warnings.warn(f"gpuad.function({_name(self._fn)}): called while a "
                                   f"GradientTape or ForwardAccumulator records, so it runs "
                                   f"eagerly (the recorder sees its ops); results are the same")
            call_args, call_kwargs = rebuild(leaves)
            return self._fn(*call_args, **call_kwargs)
        concrete = self._lookup(signature)
        if concrete is None:
            concrete, result = self._trace(leaves, tensors, signature, rebuild)
        else:
            result = concrete(tensors)
        if simple:
            self._simple[key] = concrete
        return result

    def _trace(self, leaves, tensors, signature, rebuild):
        # one Tensor passed for two arguments is two inputs of the trace (later calls may
        # pass two): each leaf after the first gets a Tensor of its own
        seen, separate = set(), []
        for x in leaves:
            if isinstance(x, Tensor) and not isinstance(x, Variable):
                x = wrap(x._value) if id(x) in seen else x
                seen.add(id(x))
            separate.append(x)
        leaves, tensors = separate, [x for x in separate if isinstance(x, Tensor)]
        tracer = _Tracer(self._fn, tensors)
        call_args, call_kwargs = rebuild(leaves)
        _tracing.tracer = tracer
        value_read_checks.append(tracer.check_read)
        try:
            with core.observing(tracer.observe):
                result = self._fn(*call_args, **call_kwargs)
        finally:
            value_read_checks.remove(tracer.check_read)
            _tracing.tracer = None
        concrete = ConcreteFunction(tracer, result, signature[0])
        with self._lock:
            self._traces.setdefault(signature, []).append(concrete)
            self._count += 1
            count = self._count
        if count == RETRACE_WARNING_AFTER + 1:
            user_warnings.warn(f"gpuad.function({_name(self._fn)}) has been traced {count} "
                               f"times: each new shape, dtype or Python value of an argument "
                               f"traces it again. Pass Tensors instead of Python numbers, or "
                               f"use reduce_retracing=True")
        return concrete, result

    def __get__(self, instance, owner):  # a decorated method binds like a function
        return self if instance is None else functools.partial(self, instance)


def _structure(value):
    """The shape of a nested argument, without its leaves (part of the signature)."""
    if isinstance(value, Tensor):
        return "T"
    if isinstance(value, dict):
        return ("dict", type(value), tuple((k, _structure(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_structure(v) for v in value))
    return "."


def function(fn: typing.Callable[..., typing.Any] | None = None, *,
             reduce_retracing: bool = False) -> typing.Any:
    """Compile ``fn``: trace it once per input signature, replay the trace on later calls, as
    ``tf.function``.

    Parameters
    ----------
    fn : callable
        Takes Tensors, Variables, Python values and nested lists, tuples and dicts of them.
    reduce_retracing : bool
        Treat Python ``int`` and ``float`` arguments as Tensor inputs rather than as part of
        the signature: one trace serves every value.

    Returns
    -------
    Function
        Callable like ``fn``; ``experimental_get_tracing_count()``, ``explain(*args)`` and
        ``get_concrete_function(*args)`` tell what was traced.

    Examples
    --------
    >>> import gpuad as ad
    >>> @ad.function
    ... def step(x):
    ...     with ad.GradientTape() as tape:
    ...         tape.watch(x)
    ...         y = ad.reduce_sum(ad.sin(x) ** 2)
    ...     return y, tape.gradient(y, x)
    >>> x = ad.constant([0.5, 1.0])
    >>> y, g = step(x)          # traces
    >>> y, g = step(x * 2.0)    # replays
    >>> step.experimental_get_tracing_count()
    1
    """
    if fn is None:
        return lambda f: Function(f, reduce_retracing)
    return Function(fn, reduce_retracing)
