"""Fusing a trace's elementwise steps into one program per group (``gpuad.function``).

A group is the floating elementwise steps of a trace over one large iteration space, with
the broadcasts of one-element values to it and the sums over all its axes (its sinks).  Each
member's forward expression, from the derivative table, is substituted into one program of
single operations over the group's inputs, which the trace lets simplify: a value it knows
(a Python number; the cotangent 1 of a loss) folds away (``g * 1``, ``where(1 == 0, a, b)``),
and an operation repeated by two members -- the backward's reuse of the forward's values --
is computed once.  The program then runs as a chunked NumPy loop: each operation writes a
chunk into a scratch buffer (reused once its last reader is done), so the group's
intermediates stay in the cache; the values needed outside the group are copied out, and
each sink is summed per chunk (pairwise, as NumPy's ``sum``) and the chunks' sums in float64.
"""
import ast
import math

import numpy

from .array_ops import BROADCAST_TO, REDUCE_SUM
from .disk_cache import key_of
from .ops import ENTRIES, numpy_function  # noqa: F401 (function.py's too)
from .table import BUILTINS, KernelSpec

CHUNK_MIN_ELEMENTS = 1 << 18  # below this a value fits the caches whole: no chunking
CHUNK = 1 << 15               # elements per chunk: a group's scratch stays in L2

# the program's operations: the table's builtins by name, and the operators
_OPERATORS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply",
              ast.Div: "true_divide", ast.Pow: "power", ast.Gt: "greater",
              ast.GtE: "greater_equal", ast.Lt: "less", ast.LtE: "less_equal",
              ast.Eq: "equal", ast.NotEq: "not_equal", ast.And: "logical_and",
              ast.Or: "logical_or"}
_COMPARISONS = {"greater": float.__gt__, "greater_equal": float.__ge__, "less": float.__lt__,
                "less_equal": float.__le__, "equal": float.__eq__, "not_equal": float.__ne__}
BOOLEAN = set(_COMPARISONS) | {"logical_and", "logical_or", "logical_not"}


def literal(value):
    """Python source for a number (inf and nan spelled so that they evaluate)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


# the comparisons and logic ops (not entries of the table): their inputs and forward
LOGIC = {name: (inputs, ast.parse(text, mode="eval").body) for name, inputs, text in [
    ("greater", ("x", "y"), "x > y"), ("greater_equal", ("x", "y"), "x >= y"),
    ("less", ("x", "y"), "x < y"), ("less_equal", ("x", "y"), "x <= y"),
    ("equal", ("x", "y"), "x == y"), ("not_equal", ("x", "y"), "x != y"),
    ("logical_and", ("x", "y"), "x and y"), ("logical_or", ("x", "y"), "x or y"),
    ("logical_not", ("x",), "not x")]}


class Program:
    """Single operations ``(name, operands)`` over the group's inputs, each computed once.

    An operand is ``("num", value)`` (a number), ``("in", k)`` (input k: a chunk of a
    full-size value, or a one-element value) or ``("op", k)`` (operation k's result).
    """

    def __init__(self):
        self.ops, self._index = [], {}

    def emit(self, name, operands):
        """The operand of ``name(*operands)``: folded when the numbers known allow it, an
        earlier identical operation's, or a new one."""
        folded = _fold(self, name, operands)
        if folded is not None:
            return folded
        # numbers by type and spelling: 0.0 is not -0.0, 1 is not 1.0
        key = (name, tuple(("num", type(o[1]), repr(o[1])) if o[0] == "num" else o
                           for o in operands))
        if key not in self._index:
            self._index[key] = ("op", len(self.ops))
            self.ops.append((name, operands))
        return self._index[key]

    def lower(self, expr, env):
        """The operand of table expression ``expr``, its names bound by ``env``."""
        if isinstance(expr, ast.Name):
            return env[expr.id]
        if isinstance(expr, ast.Constant):
            return ("num", expr.value)
        if isinstance(expr, ast.UnaryOp):
            name = "negative" if isinstance(expr.op, ast.USub) else "logical_not"
            return self.emit(name, (self.lower(expr.operand, env),))
        if isinstance(expr, ast.BinOp):
            return self.emit(_OPERATORS[type(expr.op)],
                             (self.lower(expr.left, env), self.lower(expr.right, env)))
        if isinstance(expr, ast.Compare):
            return self.emit(_OPERATORS[type(expr.ops[0])],
                             (self.lower(expr.left, env), self.lower(expr.comparators[0], env)))
        if isinstance(expr, ast.BoolOp):
            value = self.lower(expr.values[0], env)
            for other in expr.values[1:]:
                value = self.emit(_OPERATORS[type(expr.op)], (value, self.lower(other, env)))
            return value
        name, args = expr.func.id, [self.lower(a, env) for a in expr.args]
        if name in BUILTINS:
            return self.emit(name, tuple(args))
        entry = ENTRIES[name]  # an entry of the table used as a function: its forward, inlined
        return self.lower(entry.forward, dict(zip(entry.inputs, args)))


def _fold(program, name, operands):
    """The operand ``name(*operands)`` reduces to, or None: only rewrites exact in IEEE
    arithmetic (``x * 0`` stays: it is NaN for an infinite x)."""
    numbers = [o[1] if o[0] == "num" else None for o in operands]
    if name in _COMPARISONS and None not in numbers:
        return ("num", _COMPARISONS[name](float(numbers[0]), float(numbers[1])))
    if name == "where":
        if operands[0][0] == "num":
            return operands[1] if operands[0][1] else operands[2]
        if operands[1] == operands[2]:
            return operands[1]
    if name == "multiply":
        for a, b in ((0, 1), (1, 0)):
            if numbers[b] == 1 and type(numbers[b]) is not bool:
                return operands[a]
            if numbers[b] == -1:
                return program.emit("negative", (operands[a],))
    if name in ("add", "subtract") and operands[1][0] == "op" and \
            program.ops[operands[1][1]][0] == "negative":  # a + -b, a - -b
        return program.emit("subtract" if name == "add" else "add",
                            (operands[0], program.ops[operands[1][1]][1][0]))
    # a - 0 and a + -0.0 are a (a + 0.0 is not, for a = -0.0)
    if name == "subtract" and numbers[1] == 0 and type(numbers[1]) is not bool or \
            name == "add" and _negative_zero(numbers[1]):
        return operands[0]
    if name == "add" and _negative_zero(numbers[0]):
        return operands[1]
    if name == "true_divide" and numbers[1] == 1:
        return operands[0]
    if name == "negative":
        if numbers[0] is not None:
            return ("num", -numbers[0])
        if operands[0][0] == "op" and program.ops[operands[0][1]][0] == "negative":
            return program.ops[operands[0][1]][1][0]
    return None


def _negative_zero(number):
    return type(number) is float and number == 0 and math.copysign(1, number) < 0


class ChunkGroup:
    """One fused group: which steps, which of their values leave it, and its program."""

    def __init__(self, shape, members, sinks, outside, after, avals, steps, constants):
        self.shape, self.members, self.sinks, self.outside = shape, members, sinks, outside
        self.after, self.avals, self.steps = after, avals, steps
        self.constants = constants  # ref -> the raw array of a constant the group reads
        # what the group reads from outside it (for the liveness of the replay's values)
        self.reads = {a for r in members for a in steps[r][1] if a not in members}
        self.inputs = sorted({a for a in self.reads if a[0] != "number"})
        self.program, self.results = self._lower()

    def _lower(self):
        """The program, and each member's operand (a sink's: the summed operand)."""
        program, value = Program(), {}
        for k, a in enumerate(self.inputs):
            value[a] = ("in", k)
            known = self.constants.get(a)
            if known is not None and known.size == 1 and known.dtype.kind in "biuf":
                value[a] = ("num", known.reshape(()).item())  # folds: g * 1 -> g
        for r in sorted(self.members, key=lambda r: r[1]):
            primitive, refs, attrs, aval = self.steps[r]
            args = [("num", a[1]) if a[0] == "number" else value[a] for a in refs]
            if primitive is BROADCAST_TO or r in self.sinks:
                value[r] = args[0]
            else:
                entry = primitive.entry
                value[r] = program.lower(entry.forward, dict(zip(entry.inputs, args)))
        return program, value

    @property
    def size(self):
        return math.prod(self.shape)

    def render(self, name, namespace):
        """The replay's lines for the group: ``name(ref)`` names a value of the replay;
        functions and dtypes go into ``namespace``."""
        program, dtype = self.program, self._dtypes()
        wanted = self._wanted()
        last_read, live = {}, set()
        for k in range(len(program.ops) - 1, -1, -1):  # only what an output needs, in order
            if ("op", k) in wanted or ("op", k) in last_read:
                live.add(k)
                for o in program.ops[k][1]:
                    if o[0] == "op":
                        last_read.setdefault(o, k)
        lines = []
        for k, a in enumerate(self.inputs):
            full = self.avals[a].shape == self.shape
            lines.append(f"x{k} = numpy.ascontiguousarray({name(a)}).reshape(-1)" +
                         ("" if full else "[:1]"))
        for r in sorted(self.outside):
            namespace[f"s{r[1]}"] = (self.avals[r].shape, self.avals[r].dtype)
            lines.append(f"v{r[1]} = empty(*s{r[1]})")
            lines.append(f"v{r[1]}_f = v{r[1]}.reshape(-1)")
        for r in sorted(self.sinks):
            lines.append(f"v{r[1]}_acc = 0.0")
        body, slots, free, held = [], [], {}, {}

        def operand(o):
            if o[0] == "num":
                return literal(o[1])
            if o[0] == "in":
                return f"x{o[1]}[start:stop]" if self.avals[self.inputs[o[1]]].shape == \
                    self.shape else f"x{o[1]}"
            return f"t{o[1]}"
        # an operation whose value only leaves the group is written straight into its output
        direct = {self.results[r][1]: r for r in sorted(self.outside)
                  if self.results[r][0] == "op" and self.results[r] not in last_read and
                  program.ops[self.results[r][1]][0] != "where" and  # select makes its own
                  [self.results[q] for q in self.outside | self.sinks].count(self.results[r]) == 1}
        for k in sorted(live):
            op, operands = program.ops[k]
            namespace[f"u_{op}"] = numpy_function(op)
            args = ", ".join(operand(o) for o in operands)
            if op == "where":  # numpy_memory.select returns a new array
                if operands[1][0] == "num" and operands[2][0] == "num":  # in the dtype
                    namespace[f"n{k}"] = dtype[("op", k)].type
                    args = ", ".join([operand(operands[0]), f"n{k}({operand(operands[1])})",
                                      operand(operands[2])])
                body.append(f"t{k} = u_where({args})")
            elif k in direct:
                body.append(f"t{k} = u_{op}({args}, out=v{direct[k][1]}_f[start:stop])")
            else:
                kind = dtype[("op", k)]
                pool = free.setdefault(kind, [])
                slot = pool.pop() if pool else len(slots)
                if slot == len(slots):
                    slots.append(kind)
                held[k] = slot
                body.append(f"t{k} = u_{op}({args}, out=b{slot}[:stop - start])")
            for o in set(operands):  # a value copied out or summed is read at the end
                if o[0] == "op" and last_read.get(o) == k and o[1] in held and o not in wanted:
                    slot = held.pop(o[1])
                    free.setdefault(slots[slot], []).append(slot)
        for r in sorted(self.outside):
            if self.results[r][0] != "op" or self.results[r][1] not in direct:
                body.append(f"v{r[1]}_f[start:stop] = {operand(self.results[r])}")
        full = self._full()
        for r in sorted(self.sinks):
            # pairwise in the chunk's dtype (as NumPy's sum), the chunks' sums in float64;
            # a value of one element stands for a whole chunk of it
            summed = operand(self.results[r])
            body.append(f"v{r[1]}_acc += float(numpy.add.reduce({summed}))" if
                        self.results[r] in full else
                        f"v{r[1]}_acc += float(numpy.add.reduce({summed}, axis=None)) * "
                        f"(stop - start)")
        for slot, kind in enumerate(slots):
            namespace[f"d{slot}"] = kind
            lines.append(f"b{slot} = numpy.empty({CHUNK}, d{slot})")
        chunks = -(-self.size // CHUNK)
        self.calls = chunks * (len(live) + len(self.sinks) +
                               sum(1 for r in self.outside if self.results[r][0] != "op"
                                   or self.results[r][1] not in direct))
        lines.append(f"for start in range(0, {self.size}, {CHUNK}):")
        lines.append(f"    stop = min(start + {CHUNK}, {self.size})")
        lines.extend("    " + line for line in body)
        for r in sorted(self.sinks):
            aval = self.avals[r]
            namespace[f"s{r[1]}"] = (aval.shape, aval.dtype)
            lines.append(f"v{r[1]} = numpy.asarray(v{r[1]}_acc, s{r[1]}[1]).reshape(s{r[1]}[0])")
        return lines

    def _wanted(self):
        return [self.results[r] for r in sorted(self.outside | self.sinks)]

    def kernel_spec(self):
        """The group as one CUDA kernel (:class:`gpuad.table.KernelSpec`): the program's
        operations as single assignments, every value that leaves the group (a sink's summed
        operand included) an output.  Its source is compiled by NVRTC in CI."""
        ops = self.program.ops
        live, stack = set(), [o for o in self._wanted() if o[0] == "op"]
        while stack:
            o = stack.pop()
            if o[1] not in live:
                live.add(o[1])
                stack.extend(a for a in ops[o[1]][1] if a[0] == "op")

        def leaf(o):
            return ast.Constant(o[1]) if o[0] == "num" else \
                ast.Name(f"x{o[1]}" if o[0] == "in" else f"t{o[1]}")
        body = [(f"t{k}", _expression(ops[k][0], [leaf(o) for o in ops[k][1]]))
                for k in sorted(live)]
        outputs = []
        for j, o in enumerate(self._wanted()):
            outputs.append(f"o{j}")
            body.append((f"o{j}", leaf(o)))
        params = tuple((f"x{k}", "bool" if self.avals[a].dtype == numpy.bool_ else "T")
                       for k, a in enumerate(self.inputs))
        # a name from the program alone (not Python's salted hash()): the cubin cache on disk
        # finds the kernel again in the next process
        digest = key_of(params, *(ast.dump(e) for _, e in body))[:8]
        return KernelSpec(f"gpuad_fused_{digest}", params, tuple(outputs), tuple(body))

    def render_cuda(self, name, namespace, launcher):
        """The replay's lines for the group on CuPy: one launch of :meth:`kernel_spec`'s
        kernel, then each sink summed (in float64) from its output."""
        namespace[f"k_{id(self)}"] = launcher(self.kernel_spec())
        wanted = sorted(self.outside | self.sinks)
        outs = ", ".join(f"o{j}" for j in range(len(wanted)))  # one output: not a tuple
        lines = [f"{outs} = k_{id(self)}({', '.join(name(a) for a in self.inputs)})"]
        self.calls = 1 + len(self.sinks)  # the kernel, and a sum per sink
        for j, r in enumerate(wanted):
            aval = self.avals[r]
            namespace[f"s{r[1]}"] = (aval.shape, aval.dtype)
            if r in self.sinks:
                lines.append(f"v{r[1]} = o{j}.sum(dtype=numpy.float64).astype(s{r[1]}[1])"
                             f".reshape(s{r[1]}[0])")
            else:
                lines.append(f"v{r[1]} = o{j}.reshape(s{r[1]}[0])")
        return lines

    def _full(self):
        """The operands with a value per element of a chunk: the full-size inputs, every
        operation written into a chunk's scratch, and a select of one of them."""
        full = {("in", k) for k, a in enumerate(self.inputs)
                if self.avals[a].shape == self.shape}
        for k, (op, operands) in enumerate(self.program.ops):
            if op != "where" or any(o in full for o in operands):
                full.add(("op", k))
        return full

    def _dtypes(self):
        """The dtype of each operation's result (a comparison's is bool)."""
        dtype = {("in", k): self.avals[a].dtype for k, a in enumerate(self.inputs)}
        floating = next(self.avals[r].dtype for r in self.members)
        for k, (op, operands) in enumerate(self.program.ops):
            dtype[("op", k)] = result_dtype(
                op, [dtype[o] for o in operands if o[0] != "num"], floating)
        return dtype


def result_dtype(op, operand_dtypes, default):
    """A program operation's result dtype: bool for a comparison, else its first operand's
    that is not bool (numbers have none: None), else ``default``."""
    if op in BOOLEAN:
        return numpy.dtype(numpy.bool_)
    return next((d for d in operand_dtypes if d is not None and d != numpy.bool_), default)


_BINARY = {name: op for op, name in _OPERATORS.items()}


def _expression(op, args):
    """A program operation as a table expression (for the CUDA renderer)."""
    if op == "negative":
        return ast.UnaryOp(ast.USub(), args[0])
    if op == "logical_not":
        return ast.UnaryOp(ast.Not(), args[0])
    if op == "power":
        return ast.Call(ast.Name("pow"), args, [])
    kind = _BINARY.get(op)
    if kind in (ast.Add, ast.Sub, ast.Mult, ast.Div):
        return ast.BinOp(args[0], kind(), args[1])
    if kind in (ast.And, ast.Or):
        return ast.BoolOp(kind(), args)
    if kind is not None:
        return ast.Compare(args[0], [kind()], [args[1]])
    return ast.Call(ast.Name(op), args, [])


def chunk_group(steps, avals, kept, constants, min_elements=CHUNK_MIN_ELEMENTS):
    """The :class:`ChunkGroup` of the largest elementwise iteration space of ``steps``, or
    None.  Its members are the floating elementwise steps of that shape (whose inputs have
    that shape or one element), broadcasts of one element to it, and sums over all its axes
    (sinks, which nothing in the group may read); a step that reads something made outside
    the group from the group's values does not join (the group runs before it)."""
    shapes = {}
    for n, (primitive, refs, attrs, aval) in steps:
        if getattr(primitive, "entry", None) is not None and aval.dtype.kind == "f" and \
                aval.size >= min_elements:
            key = (aval.shape, aval.dtype)
            shapes[key] = shapes.get(key, 0) + 1
    if not shapes:
        return None
    shape, dtype = max(shapes, key=shapes.get)
    table = {("node", n): step for n, step in steps}

    def fits(ref):
        return ref[0] == "number" or avals[ref].shape == shape or avals[ref].size == 1
    members, sinks, tainted = set(), set(), set()  # tainted: outside steps reading the group
    for n, (primitive, refs, attrs, aval) in steps:
        r = ("node", n)
        reads_group = any(a in members for a in refs)
        blocked = any(a in sinks or a in tainted for a in refs)
        elementwise = getattr(primitive, "entry", None) is not None and \
            aval.dtype == dtype and aval.shape == shape and all(fits(a) for a in refs)
        broadcast = primitive is BROADCAST_TO and aval.shape == shape and \
            aval.dtype == dtype and fits(refs[0])
        summed = primitive is REDUCE_SUM and reads_group and refs[0] in members and \
            tuple(attrs[0]) == tuple(range(len(shape)))
        if not blocked and (elementwise or broadcast or summed):
            members.add(r)
            if summed:
                sinks.add(r)
        elif reads_group or blocked:
            tainted.add(r)
    if len(members) - len(sinks) < 2:
        return None
    readers = {a for n, step in steps if ("node", n) not in members for a in step[1]}
    outside = {r for r in members if (r in kept or r in readers) and r not in sinks}
    return ChunkGroup(shape, members, sinks, outside, tainted, avals, table, constants)
