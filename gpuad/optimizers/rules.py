"""Optimizer update rules, written once and run three ways.

A rule is a few statements ``name = expression`` over the variable (``var``), its gradient
(``g``), its slots and per-step coefficients, in Python syntax with ``+ - * /``, unary ``-``,
``sqrt`` and ``maximum``.  :class:`UpdateRule` compiles it to

- NumPy: generated code of in-place ufunc calls (``out=``), the statement written straight into
  its target where that is safe, intermediate results in a few scratch buffers kept per shape:
  no temporary array per slot or per step;
- CuPy: one elementwise kernel per variable per step (:func:`gpuad.cuda.elementwise_kernel`);
- recorded ops: per statement one op computing its value into a new array (the same NumPy
  code or CUDA kernel) and a ``Variable.assign``, which a tracer (``gpuad.function``) sees.

Examples
--------
>>> import numpy as np
>>> rule = UpdateRule(("m = m * mu - g * lr", "var = var + m"))
>>> rule.slots, rule.coefficients
(('m',), ('lr', 'mu'))
>>> var, m, g = np.ones(3), np.zeros(3), np.full(3, 2.0)
>>> rule.numpy_update(var, g, {"m": m}, {"lr": 0.5, "mu": 0.9}, lambda level: np.empty(3))
>>> var, m
(array([0., 0., 0.]), array([-1., -1., -1.]))
"""
import ast
import copy
import dataclasses

import numpy

from .. import backends, core, cuda, numpy_memory

_UFUNCS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}
_FUNCTIONS = {"sqrt": ("sqrt", "sqrt"), "maximum": ("maximum", "max")}  # numpy, CUDA names
_ARRAYS = ("var", "g")


@dataclasses.dataclass(frozen=True)
class UpdateKernel:
    """A CuPy ElementwiseKernel: ``g`` and the coefficients in, ``var`` and the slots updated
    in place (output parameters are read before they are written)."""

    name: str
    inputs: tuple
    outputs: tuple
    operation: str

    def elementwise_kernel_args(self):
        return (", ".join(f"T {n}" for n in self.inputs),
                ", ".join(f"T {n}" for n in self.outputs), self.operation, self.name)

    def raw_source(self, ctype):
        """The same body as a standalone CUDA kernel over contiguous arrays (what the NVRTC
        test compiles without a GPU)."""
        params = [f"const {ctype}* {n}_" for n in self.inputs] + \
            [f"{ctype}* {n}_" for n in self.outputs] + ["long long n"]
        loads = "".join(f"{ctype} {n} = {n}_[{'i' if n == 'g' else '0'}]; "
                        for n in self.inputs)
        loads += "".join(f"{ctype} {n} = {n}_[i]; " for n in self.outputs)
        stores = "".join(f"{n}_[i] = {n}; " for n in self.outputs)
        return (f'extern "C" __global__ void {self.name}_{ctype}({", ".join(params)}) {{\n'
                f"  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; "
                f"i < n; i += (long long)gridDim.x * blockDim.x) {{\n"
                f"    {loads}\n    {self.operation}\n    {stores}\n  }}\n}}\n")


class UpdateRule:
    """The compiled forms of one rule (see the module's docstring).

    Parameters
    ----------
    statements : tuple of str
        ``"target = expression"``; targets are ``var`` or slot names, written in order (a later
        statement reads the new value).
    """

    def __init__(self, statements, name="gpuad_update"):
        self.statements = tuple(statements)
        parsed = [ast.parse(s, mode="exec").body[0] for s in self.statements]
        for s, tree in zip(self.statements, parsed):
            if not (isinstance(tree, ast.Assign) and len(tree.targets) == 1 and
                    isinstance(tree.targets[0], ast.Name)):
                raise ValueError(f"UpdateRule: {s!r} is not 'name = expression'")
        self._parsed = [(tree.targets[0].id, tree.value) for tree in parsed]
        targets = [t for t, _ in self._parsed]
        read = sorted({n.id for _, e in self._parsed for n in ast.walk(e)
                       if isinstance(n, ast.Name)} - set(_FUNCTIONS))
        self.slots = tuple(dict.fromkeys(t for t in targets if t != "var"))
        self.coefficients = tuple(n for n in read if n not in _ARRAYS and n not in self.slots)
        self.updated = ("var",) + self.slots
        self._numpy, self.scratch_levels = self._numpy_function()
        self._values = None  # the statements as rules of their own, for ops_update
        operation = " ".join(f"{t} = {ast.unparse(_CudaNames().visit(copy.deepcopy(e)))};"
                             for t, e in self._parsed)
        self.kernel = UpdateKernel(name, ("g",) + self.coefficients, self.updated, operation)

    # ---------------------------------------------------------------------------- NumPy
    def _numpy_function(self):
        lines, levels = [], [0]

        def leaf(node):
            return isinstance(node, ast.Name)

        def operands(node):
            if isinstance(node, ast.BinOp):
                return _UFUNCS[type(node.op)], [node.left, node.right]
            if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
                return "negative", [node.operand]
            if isinstance(node, ast.Call) and node.func.id in _FUNCTIONS:
                return _FUNCTIONS[node.func.id][0], node.args
            raise ValueError(f"UpdateRule: cannot compile {ast.unparse(node)!r}")

        def emit(node, out, level):  # compute `node` into the array named `out`
            levels[0] = max(levels[0], level)
            if leaf(node):
                if node.id != out:
                    lines.append(f"numpy.copyto({out}, {node.id})")
                return
            ufunc, args = operands(node)
            if all(leaf(a) for a in args):
                names = [a.id for a in args]
            elif len(args) == 1:
                emit(args[0], out, level)
                names = [out]
            elif leaf(args[1]):
                emit(args[0], out, level)
                names = [out, args[1].id]
            elif leaf(args[0]) and args[0].id != out:
                emit(args[1], out, level)
                names = [args[0].id, out]
            else:  # both sides computed: the right one in the next scratch buffer
                emit(args[0], out, level)
                emit(args[1], f"s{level}", level + 1)
                names = [out, f"s{level}"]
            lines.append(f"numpy.{ufunc}({', '.join(names)}, out={out})")

        for target, expr in self._parsed:
            names = [n.id for n in ast.walk(expr) if isinstance(n, ast.Name)]
            leftmost = expr
            while not leaf(leftmost):
                leftmost = operands(leftmost)[1][0]
            # into the target itself where every read of it comes before the first write:
            # read only as the leftmost leaf, or as the root's left operand (the right one is
            # computed into scratch before the root writes)
            first = None if leaf(expr) else operands(expr)[1][0]
            if names.count(target) == 0 or names.count(target) == 1 and leftmost.id == target \
                    or leaf(first) and first.id == target:
                emit(expr, target, 0)
            else:
                emit(expr, "s0", 1)
                lines.append(f"numpy.copyto({target}, s0)")
        scratch = [f"s{k}" for k in range(levels[0])]
        source = (f"def update({', '.join(('var', 'g') + self.slots + self.coefficients)}"
                  f"{''.join(', ' + s for s in scratch)}):\n" +
                  "".join(f"    {line}\n" for line in lines))
        namespace = {"numpy": numpy}
        exec(compile(source, "<update rule>", "exec"), namespace)
        self.numpy_source = source
        return namespace["update"], levels[0]

    def numpy_update(self, var, g, slots, coefficients, scratch):
        """Update NumPy arrays ``var`` and ``slots`` (name -> array) in place;
        ``scratch(level)`` gives a buffer of var's shape and dtype."""
        self._numpy(var, g, *[slots[s] for s in self.slots],
                    *[coefficients[c] for c in self.coefficients],
                    *[scratch(k) for k in range(self.scratch_levels)])

    # ----------------------------------------------------------------------------- CuPy
    def cupy_update(self, var, g, slots, coefficients):
        """Update CuPy arrays in place with one elementwise kernel."""
        kernel = cuda.elementwise_kernel(self.kernel, "")
        kernel(g, *[coefficients[c] for c in self.coefficients], var,
               *[slots[s] for s in self.slots])

    # ------------------------------------------------------------------------ gpuad ops
    def statement_rules(self):
        """(target, rule) per statement: a rule writing the statement's value into ``var``,
        which it reads as ``old``."""
        if self._values is None:
            self._values = [
                (t, UpdateRule((f"var = {ast.unparse(_Renamed().visit(copy.deepcopy(e)))}",),
                               f"{self.kernel.name}_{k}"))
                for k, (t, e) in enumerate(self._parsed)]
        return self._values

    def ops_update(self, var, g, slots, coefficients):
        """Assign the new values to Variables ``var`` and ``slots`` as recorded ops: per
        statement one :data:`STATEMENT` op (its value, in a new array) and an ``assign``,
        which a tracer (``gpuad.function``) sees and replays."""
        targets = {"var": var, **slots}
        env = dict(targets, g=g, **coefficients)
        env["old"] = var
        for target, rule in self.statement_rules():
            inputs = [env[c] for c in rule.coefficients]
            tensors = tuple(x for x in inputs if not isinstance(x, (int, float)))
            numbers = tuple((c, x) for c, x in zip(rule.coefficients, inputs)
                            if isinstance(x, (int, float)))
            value = core.bind(STATEMENT, (g,) + tensors, (rule, numbers))
            env[target] = targets[target].assign(value)
            if target == "var":
                env["old"] = env["var"]


class _Renamed(ast.NodeTransformer):
    """``var`` read in a statement becomes ``old``: the statement's rule writes ``var``."""

    def visit_Name(self, node):
        return ast.Name("old", ast.Load()) if node.id == "var" else node


def _statement_impl(values, attrs):
    rule, numbers = attrs
    g = values[0]
    coefficients = dict(numbers)
    coefficients.update(zip([c for c in rule.coefficients if c not in coefficients], values[1:]))
    if type(g) is backends.cupy_ndarray:
        out = backends.module_of(g).empty(g.shape, g.dtype)
        rule.cupy_update(out, g, {}, coefficients)
    else:
        out = numpy_memory.empty(g.shape, g.dtype)
        rule.numpy_update(out, g, {}, coefficients,
                          lambda level: numpy_memory.empty(g.shape, g.dtype))
    return out


# One statement of an update rule, run as an op: inputs (the gradient, the Tensors the
# statement reads), attrs (its rule, its Python-number coefficients); not differentiable
STATEMENT = core.Primitive("optimizer_statement", _statement_impl,
                           abstract_eval=lambda avals, attrs: avals[0])


class _CudaNames(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        node.func = ast.Name(_FUNCTIONS[node.func.id][1], ast.Load())
        return node
