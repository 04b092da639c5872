"""The elementwise derivative table and its renderers.

``kernels/derivatives.txt`` declares every elementwise primitive once: its forward expression
and, per input, its partial derivative.  An elementwise Jacobian is diagonal, so the partials
say everything: the VJP is ``g_x = g * d_x`` and the JVP is ``t_out = sum_x t_x * d_x``.

Each expression is parsed with :mod:`ast` and rendered three ways:

* :func:`python_source` -- Python code, run with NumPy's ufuncs (the CPU path) or with gpuad's
  own ops (the differentiable path that an outer tape records, for higher order);
* :func:`cuda_expression` -- CUDA C++ for one fused ``cupy.ElementwiseKernel`` per primitive
  and set of needed gradients (:func:`vjp_kernel_spec`, :func:`forward_kernel_spec`).

For complex data (:data:`COMPLEX_ENTRIES`) the VJP conjugates the partial, ``g * conj(d_x)``
(TensorFlow's convention, docs/dtypes.md); float16 and complex kernels are
:func:`scalar_kernel`'s (float16 computed in float).

Multiplying a partial by ``g`` is done symbolically (:func:`scale`): ``g * where(c, 1, 0)``
becomes ``where(c, g, 0)``, exactly TensorFlow's select, so a NaN cotangent is not spread
into the masked-off branch.
"""
import ast
import copy
import dataclasses
import itertools
import operator
import pathlib
import re

# Builtins of the expression language: name -> (NumPy ufunc, CUDA spelling).  Every other
# function name in an expression refers to an entry of the table.
BUILTINS = {
    "sin": ("sin", "sin"), "cos": ("cos", "cos"), "tan": ("tan", "tan"),
    "asin": ("arcsin", "asin"), "acos": ("arccos", "acos"), "atan": ("arctan", "atan"),
    "atan2": ("arctan2", "atan2"), "sinh": ("sinh", "sinh"), "cosh": ("cosh", "cosh"),
    "asinh": ("arcsinh", "asinh"), "acosh": ("arccosh", "acosh"), "atanh": ("arctanh", "atanh"),
    "erf": ("erf", "erf"),  # NumPy has no erf ufunc: gpuad.ops._erf stands in for it
    "exp": ("exp", "exp"), "expm1": ("expm1", "expm1"), "log": ("log", "log"),
    "log1p": ("log1p", "log1p"), "sqrt": ("sqrt", "sqrt"), "tanh": ("tanh", "tanh"),
    "abs": ("absolute", "fabs"), "sign": ("sign", "ad_sign"), "pow": ("power", "pow"),
    "maximum": ("maximum", "ad_maximum"), "minimum": ("minimum", "ad_minimum"),
    "where": ("where", None), "floor": ("floor", "floor"), "ceil": ("ceil", "ceil"),
    "round": ("rint", "rint"),  # half to even, as TensorFlow
    "floor_divide": ("floor_divide", "ad_floor_divide"), "remainder": ("remainder", "ad_remainder"),
    "conj": ("conjugate", "conj"),  # only in complex VJPs (see conjugated); CuPy's complex.cuh
}
# The ufunc of each operator, named apart from the table's entries (an entry may be "add").
OPERATOR_UFUNCS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply",
                   ast.Div: "true_divide", ast.Pow: "power", ast.USub: "negative"}
_C_OPERATOR = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Gt: ">",
               ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=",
               ast.And: "&&", ast.Or: "||"}
RESERVED = {"g", "t", "out", "T"}  # names the renderers use themselves
# The entries TensorFlow defines for complex64/complex128 whose partials are the complex
# derivative f'(z) (abs, complex -> real, is gpuad.ops'); the VJP is g * conj(f'(z)).
COMPLEX_ENTRIES = {"negative", "square", "sqrt", "rsqrt", "reciprocal", "exp", "expm1", "log",
                   "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                   "asinh", "acosh", "atanh", "sigmoid", "add", "subtract", "multiply", "divide",
                   "pow", "where", "xlogy"}
# partials that differ for complex inputs: pow's dy masks x == 0, not x <= 0 (TensorFlow's);
# acosh's 1 / sqrt(x^2 - 1) has the wrong sign off the real axis, its factors do not
COMPLEX_PARTIALS = {"pow": {"y": "where(x == 0, 0, out * log(x))"},
                    "acosh": {"x": "1 / (sqrt(x - 1) * sqrt(x + 1))"}}


class Entry:
    """One row of the table.

    Attributes: ``name``; ``inputs`` (names, in call order); ``ctypes`` (input name -> C type
    of an input that is not of the kernel's type ``T``, e.g. ``bool``); ``forward`` (ast);
    ``partials`` (input name -> ast; inputs without one get no gradient; ``g`` in one is the
    cotangent, see :func:`plain`); ``saves`` (the names among the inputs and ``out`` that the
    partials read, i.e. what a tape keeps).
    """

    def __init__(self, name, inputs, ctypes, forward, partials):
        self.name, self.inputs, self.ctypes = name, inputs, ctypes
        self.forward, self.partials = forward, partials
        used = {n.id for p in partials.values() for n in ast.walk(p) if isinstance(n, ast.Name)}
        self.saves = tuple(n for n in inputs + ("out",) if n in used)

    def __repr__(self):
        return f"<derivative table entry {self.name}({', '.join(self.inputs)})>"


def _parse_line(line, lineno):
    """``name(inputs) = forward ; dx = partial ; ...`` -> Entry."""
    first, *partials = [part.strip() for part in line.split(";")]
    head, _, body = first.partition("=")
    try:
        fn = ast.parse(f"def {head.strip()}: pass").body[0]
        forward = ast.parse(body.strip(), mode="eval").body
        table = {}
        for partial in filter(None, partials):
            match = re.fullmatch(r"d(\w+)\s*=\s*(.+)", partial)
            if match is None or match.group(1) not in [a.arg for a in fn.args.args]:
                raise SyntaxError(f"bad partial {partial!r}")
            table[match.group(1)] = ast.parse(match.group(2), mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"derivatives.txt:{lineno}: cannot parse {line!r}: {error}") from None
    inputs = tuple(a.arg for a in fn.args.args)
    if RESERVED & set(inputs):
        raise ValueError(f"derivatives.txt:{lineno}: input names {sorted(RESERVED)} are reserved")
    ctypes = {a.arg: a.annotation.id for a in fn.args.args if a.annotation is not None}
    return Entry(fn.name, inputs, ctypes, forward, table)


def complex_entry(entry):
    """``entry`` with its complex partials (:data:`COMPLEX_PARTIALS`), saving what it saves
    (the records of an op keep the real entry's values)."""
    changed = COMPLEX_PARTIALS.get(entry.name)
    if not changed:
        return entry
    partials = dict(entry.partials, **{n: ast.parse(e, mode="eval").body
                                       for n, e in changed.items()})
    derived = Entry(entry.name, entry.inputs, entry.ctypes, entry.forward, partials)
    derived.saves = entry.saves
    return derived


def load(path=None):
    """Parse the table file into an ordered ``{name: Entry}``."""
    path = pathlib.Path(path) if path else kernels_dir() / "derivatives.txt"
    entries = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            entry = _parse_line(line, lineno)
            entries[entry.name] = entry
    return entries


def kernels_dir():
    """The folder of the table: ``gpuad/kernels`` when installed, ``kernels/`` in a checkout."""
    here = pathlib.Path(__file__).resolve().parent
    for candidate in (here / "kernels", here.parent / "kernels"):
        if (candidate / "derivatives.txt").is_file():
            return candidate
    raise FileNotFoundError("gpuad: kernels/derivatives.txt is missing from the installation")


# ------------------------------------------------------------------ symbolic multiplication

def _is_const(node, value=None):
    return isinstance(node, ast.Constant) and (value is None or node.value == value)


def scale(factor, expr):
    """``factor * expr`` simplified: by 1 and 0, and pushed into ``where`` branches; a
    condition on ``g`` (the cotangent) tests ``factor``."""
    if _is_const(expr, 1):
        return factor
    if _is_const(expr, 0):
        return ast.Constant(0)
    if _is_const(expr, -1):
        return ast.UnaryOp(ast.USub(), factor)
    if isinstance(expr, ast.Call) and getattr(expr.func, "id", "") == "where":
        cond, a, b = expr.args
        cond = substitute(cond, {"g": factor})
        return ast.Call(ast.Name("where"), [cond, scale(factor, a), scale(factor, b)], [])
    return ast.BinOp(factor, ast.Mult(), expr)


_CONSTANT_COMPARISONS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Gt: operator.gt,
                         ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le}


class _FoldSelects(ast.NodeTransformer):
    """``where(1 == 0, a, b)`` -> ``b``: a select on a comparison of two constants."""

    def visit_Call(self, node):
        self.generic_visit(node)
        cond = node.args[0] if getattr(node.func, "id", "") == "where" else None
        if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and _is_const(cond.left) \
                and _is_const(cond.comparators[0]):
            holds = _CONSTANT_COMPARISONS[type(cond.ops[0])](cond.left.value,
                                                              cond.comparators[0].value)
            return node.args[1] if holds else node.args[2]
        return node


def plain(partial):
    """The derivative itself: ``partial`` at a cotangent ``g`` of 1.  A partial may select on
    ``g`` (``where(g == 0, 0, 0.5 / out)``: TensorFlow's sqrt gradient kernel gives 0 where the
    gradient is 0); only the VJPs (:func:`vjp_exprs`, :func:`gradient_entry`) test it, while
    forward mode (as TensorFlow's) and the chain rule of :func:`derivative` use this."""
    return _FoldSelects().visit(substitute(partial, {"g": ast.Constant(1)}))


# ------------------------------------------------------------------ symbolic differentiation

# operators and the builtins spelled apart from their entry, as entries of the table
_OPERATOR_ENTRIES = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply",
                     ast.Div: "divide", ast.Pow: "pow"}
_BUILTIN_ENTRIES = {"floor_divide": "floordiv", "remainder": "mod"}


def _times(a, b):
    if _is_const(a) and _is_const(b):
        return ast.Constant(a.value * b.value)
    if _is_const(a) or (isinstance(a, ast.Call) and a.func.id == "where"):
        a, b = b, a
    return scale(a, b)


def _plus(a, b):
    if _is_const(a, 0):
        return b
    if _is_const(b, 0):
        return a
    return ast.BinOp(a, ast.Add(), b)


def substitute(expr, names):
    """``expr`` with each Name in ``names`` replaced by its expression."""
    class Substitute(ast.NodeTransformer):
        def visit_Name(self, node):
            return names.get(node.id, node)
    return Substitute().visit(copy.deepcopy(expr))


def derivative(expr, var, entries):
    """d expr / d var, by the chain rule over the table's own partials (0 if none)."""
    if isinstance(expr, ast.Name):
        return ast.Constant(1 if expr.id == var else 0)
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        d = derivative(expr.operand, var, entries)
        return ast.Constant(-d.value) if _is_const(d) else ast.UnaryOp(ast.USub(), d)
    if isinstance(expr, ast.BinOp):
        name, args = _OPERATOR_ENTRIES[type(expr.op)], [expr.left, expr.right]
    elif isinstance(expr, ast.Call):
        name, args = _BUILTIN_ENTRIES.get(expr.func.id, expr.func.id), expr.args
    else:  # constants, comparisons, boolean logic: piecewise constant
        return ast.Constant(0)
    entry = entries[name]
    total = ast.Constant(0)
    for arg_name, arg in zip(entry.inputs, args):
        d_arg = derivative(arg, var, entries) if arg_name in entry.partials else ast.Constant(0)
        if not _is_const(d_arg, 0):
            names = dict(zip(entry.inputs, args), out=expr)
            total = _plus(total, _times(substitute(plain(entry.partials[arg_name]), names),
                                        d_arg))
    return total


def gradient_entry(entry, wrt, entries):
    """The entry computing ``g * d_wrt`` as a primitive of its own: its inputs are the
    cotangent ``cot``, the values the partial reads and ``res`` (the original output), and
    its partials come from :func:`derivative`.  Recording one such op per backward step makes
    higher-order gradients cheap and, on the GPU, one fused kernel each; it can itself be
    differentiated again, to any order."""
    cot, res = (next(f"{base}{k or ''}" for k in range(len(entry.inputs) + 1)
                     if f"{base}{k or ''}" not in entry.inputs) for base in ("cot", "res"))
    forward = scale(ast.Name(cot), substitute(entry.partials[wrt], {"out": ast.Name(res)}))
    used = {n.id for n in ast.walk(forward) if isinstance(n, ast.Name)}
    inputs = (cot,) + tuple(n for n in entry.inputs + (res,) if n in used and n != cot)
    ctypes = {n: c for n, c in entry.ctypes.items() if n in inputs}
    partials = {n: derivative(forward, n, entries) for n in inputs if n not in ctypes}
    derived = Entry(f"{entry.name}_grad_{wrt}", inputs, ctypes, forward, partials)
    derived.arguments = tuple("out" if n == res else n for n in inputs[1:])  # after the cot
    return derived


# ------------------------------------------------------------------ simplification and CSE

def _negated(node):
    if _is_const(node) and not isinstance(node.value, bool):
        return ast.Constant(-node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return node.operand
    return ast.UnaryOp(ast.USub(), node)


class _Simplify(ast.NodeTransformer):
    """Local rewrites, bottom up: constants folded, identities of 0 and 1, double negation,
    and ``where`` with equal branches.  Only rewrites exact in IEEE arithmetic up to the sign
    of a zero result (``x + 0`` is ``x`` even for ``x = -0.0``, as the symbolic derivative's
    own sums); ``x * 0`` is left alone: it is NaN for an infinite ``x``."""

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        return _negated(node.operand) if isinstance(node.op, ast.USub) else node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        a, b, op = node.left, node.right, type(node.op)
        if _is_const(a) and _is_const(b) and op in (ast.Add, ast.Sub, ast.Mult):
            return ast.Constant({ast.Add: a.value + b.value, ast.Sub: a.value - b.value,
                                 ast.Mult: a.value * b.value}[op])
        if op is ast.Add and _is_const(b, 0) or op is ast.Sub and _is_const(b, 0):
            return a
        if op is ast.Add and _is_const(a, 0):
            return b
        if op is ast.Sub and _is_const(a, 0):
            return _negated(b)
        if op is ast.Add and isinstance(b, ast.UnaryOp) and isinstance(b.op, ast.USub):
            return ast.BinOp(a, ast.Sub(), b.operand)  # a + -b -> a - b
        if op is ast.Sub and isinstance(b, ast.UnaryOp) and isinstance(b.op, ast.USub):
            return ast.BinOp(a, ast.Add(), b.operand)
        if op is ast.Mult and _is_const(b, 1) or op is ast.Div and _is_const(b, 1):
            return a
        if op is ast.Mult and _is_const(a, 1):
            return b
        if op is ast.Mult and (_is_const(a, -1) or _is_const(b, -1)):
            return _negated(b if _is_const(a, -1) else a)
        if op in (ast.Mult, ast.Div) and all(isinstance(v, ast.UnaryOp) and
                                              isinstance(v.op, ast.USub) for v in (a, b)):
            return ast.BinOp(a.operand, node.op, b.operand)  # -a * -b -> a * b
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if getattr(node.func, "id", "") == "where" and \
                ast.dump(node.args[1]) == ast.dump(node.args[2]):
            return node.args[1]
        return node


def simplify(expr):
    """``expr`` with the exact local rewrites of :class:`_Simplify` applied."""
    return ast.fix_missing_locations(_Simplify().visit(copy.deepcopy(expr)))


_COMPUTED = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Compare, ast.BoolOp)


def _subtrees(expr):
    return [n for n in ast.walk(expr) if isinstance(n, _COMPUTED)]


def common_subexpressions(exprs, prefix="s"):
    """Compute each repeated subexpression of ``exprs`` once.

    Returns ``(temporaries, exprs)``: ``temporaries`` are ``(name, ast)`` assignments in
    dependency order (``s0``, ``s1``, ...), and ``exprs`` read them by name.  The largest
    repeated subtree is taken first, so a temporary never just renames another.
    """
    exprs = [copy.deepcopy(e) for e in exprs]
    temporaries = []
    while True:
        counts = {}
        for e in exprs + [t for _, t in temporaries]:
            for node in _subtrees(e):
                key = ast.dump(node)
                counts[key] = counts.get(key, 0) + 1
        repeated = [k for k, c in counts.items() if c > 1]
        if not repeated:
            break
        key = max(repeated, key=len)
        name = f"{prefix}{len(temporaries)}"
        definition = next(n for e in exprs + [t for _, t in temporaries]
                          for n in _subtrees(e) if ast.dump(n) == key)
        definition = copy.deepcopy(definition)
        replace = _ReplaceSubtree(key, name)
        exprs = [replace.visit(e) for e in exprs]
        temporaries = [(n, replace.visit(t)) for n, t in temporaries] + [(name, definition)]
    ordered = _dependency_order(temporaries)
    rename = {old: ast.Name(f"{prefix}{i}") for i, (old, _) in enumerate(ordered)}
    return ([(rename[n].id, substitute(e, rename)) for n, e in ordered],
            [substitute(e, rename) for e in exprs])


class _ReplaceSubtree(ast.NodeTransformer):
    def __init__(self, key, name):
        self.key, self.name = key, name

    def visit(self, node):
        if isinstance(node, _COMPUTED) and ast.dump(node) == self.key:
            return ast.Name(self.name)
        return super().visit(node)


def _dependency_order(temporaries):
    """Temporaries reordered so each is defined before it is read."""
    pending, ordered, done = list(temporaries), [], set()
    names = {n for n, _ in temporaries}
    while pending:
        for i, (name, expr) in enumerate(pending):
            reads = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)} & names
            if reads <= done:
                ordered.append(pending.pop(i))
                done.add(name)
                break
    return ordered


# ------------------------------------------------------------------ Python (NumPy / gpuad)

class _TypedLiterals(ast.NodeTransformer):
    """Numeric literal ``2`` -> ``T(2)``: literals take the kernel's dtype, never float64."""

    def visit_Constant(self, node):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            return node
        return ast.Call(ast.Name("T"), [node], [])


def _with_out(expr):
    """Make the root an ufunc call with ``out=out`` so NumPy returns arrays, not scalars."""
    if isinstance(expr, ast.BinOp) and type(expr.op) in OPERATOR_UFUNCS:
        func, args = "ufunc_" + OPERATOR_UFUNCS[type(expr.op)], [expr.left, expr.right]
    elif isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        func, args = "ufunc_negative", [expr.operand]
    elif (isinstance(expr, ast.Call) and expr.func.id in BUILTINS and expr.func.id != "where"):
        func, args = expr.func.id, expr.args
    else:
        return ast.Call(ast.Name("asarray"), [expr], [])
    return ast.Call(ast.Name(func), args, [ast.keyword("out", ast.Name("out"))])


class _InPlace(ast.NodeTransformer):
    """``f(fresh, y)`` -> ``_into(f, 0, fresh, y)``: an op may write into the buffer of an
    intermediate that only it reads (``_into`` checks size, shape and type at run time);
    ``f(x, y)`` -> ``_into(f, None, x, y)``: a large result takes a pooled buffer."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._into("ufunc_" + OPERATOR_UFUNCS[type(node.op)], [node.left, node.right],
                          node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if not isinstance(node.op, ast.USub):
            return node
        return self._into("ufunc_negative", [node.operand], node)

    def visit_Call(self, node):
        self.generic_visit(node)
        if node.func.id not in BUILTINS or node.func.id == "where":
            return node
        return self._into(node.func.id, node.args, node)

    @staticmethod
    def _into(func, args, node):
        fresh = [i for i, a in enumerate(args) if isinstance(a, (ast.BinOp, ast.UnaryOp)) or
                 isinstance(a, ast.Call) and a.func.id != "T"]
        if not fresh and all(isinstance(a, ast.Call) for a in args):
            return node  # T(2) * T(3): no array
        return ast.Call(ast.Name("_into"), [ast.Name(func), ast.Constant(
            fresh[0] if fresh else None)] + args, [])


def python_source(expr, root_out=False, in_place=False):
    """Python source of ``expr``; names resolve in the namespace it is run in.

    ``in_place`` (NumPy) lets an op write into a fresh intermediate's buffer; ``root_out``
    gives the outermost op ``out=out``.
    """
    expr = _TypedLiterals().visit(copy.deepcopy(expr))
    if root_out:
        expr = _with_out(expr)
        if in_place:
            expr.args = [_InPlace().visit(a) for a in expr.args]
    elif in_place:
        expr = _InPlace().visit(expr)
    return ast.unparse(ast.fix_missing_locations(expr))


def conjugated(expr):
    """``conj(expr)``, pushed into ``where`` branches and dropped on constants (real)."""
    if not any(isinstance(n, ast.Name) for n in ast.walk(expr)):  # -1, 0.5 * 2: real
        return expr
    if isinstance(expr, ast.Call) and getattr(expr.func, "id", "") == "where":
        cond, a, b = expr.args
        return ast.Call(ast.Name("where"), [cond, conjugated(a), conjugated(b)], [])
    return ast.Call(ast.Name("conj"), [expr], [])


def vjp_exprs(entry, needs, conjugate=False):
    """The VJP expressions ``g * d_x`` for the inputs flagged in ``needs`` (else None);
    ``conjugate``: ``g * conj(d_x)``, TensorFlow's rule for complex inputs (docs/dtypes.md)."""
    def partial(name):
        return conjugated(entry.partials[name]) if conjugate else entry.partials[name]
    return [scale(ast.Name("g"), partial(name)) if need and name in entry.partials
            else None for name, need in zip(entry.inputs, needs)]


def jvp_expr(entry, tangents):
    """``sum_x t_x * d_x`` over the inputs named in ``tangents`` (tangent variable names)."""
    terms = [scale(ast.Name(t), plain(entry.partials[name]))
             for name, t in zip(entry.inputs, tangents) if t and name in entry.partials]
    terms = [term for term in terms if not _is_const(term, 0)]
    if not terms:
        return ast.Constant(0)
    total = terms[0]
    for term in terms[1:]:
        total = ast.BinOp(total, ast.Add(), term)
    return total


def _python_body(params, prologue, exprs, in_place):
    """The statements of a rule and the sources of its results: ``exprs`` (None for a missing
    one) simplified, with their common subexpressions computed once into temporaries."""
    present = [simplify(e) for e in exprs if e is not None]
    temporaries, present = common_subexpressions(present)
    results = iter(present)  # one per expression that is not None, in order
    parts = []
    for e in exprs:
        result = None if e is None else next(results)
        parts.append("None" if e is None else  # a partial identically 0 (sign): zeros
                     f"zeros_like({params[0]})" if _is_const(result) else
                     python_source(result, in_place=in_place))
    head = "".join(prologue.format(name=n) for n in params if prologue)
    body = "".join(f"    {n} = {python_source(e, in_place=in_place)}\n" for n, e in temporaries)
    return head + body, parts


def python_vjp_source(entry, needs, fname, prologue="", in_place=False, conjugate=False):
    """Source of ``def fname(g, <saves>)`` returning a tuple of one gradient (or None) per
    input.

    ``prologue`` (a format string over ``{name}``) is run first for ``g`` and each saved
    name, e.g. to unwrap Tensors; ``T`` -- the type of literals -- must be bound by the
    namespace or by a prologue line; ``in_place`` lets NumPy ops reuse fresh buffers.  A
    partial that is identically 0 (sign) gives ``zeros_like(g)``; ``conjugate``: the complex
    rule ``g * conj(d_x)``.
    """
    params = ("g",) + entry.saves
    body, results = _python_body(params, prologue, vjp_exprs(entry, needs, conjugate), in_place)
    return f"def {fname}({', '.join(params)}):\n{body}    return ({', '.join(results)},)\n"


def python_jvp_source(entry, has_tangent, fname, prologue="", in_place=False):
    """Source of ``def fname(<t_x for inputs with a tangent>, <saves>)`` returning the output's
    tangent ``sum_x t_x * d_x`` (``zeros_like`` of the tangent when that is identically 0)."""
    tangents = [f"t{n}" if has else None for n, has in zip(entry.inputs, has_tangent)]
    params = tuple(t for t in tangents if t) + entry.saves
    body, (result,) = _python_body(params, prologue, [jvp_expr(entry, tangents)], in_place)
    return f"def {fname}({', '.join(params)}):\n{body}    return {result}\n"


# ------------------------------------------------------------------ CUDA

def cuda_expression(expr):
    """CUDA C++ of ``expr``, with every literal in the kernel's type ``T``."""
    if isinstance(expr, ast.Constant):
        if isinstance(expr.value, bool):
            return "true" if expr.value else "false"
        return f"T({expr.value!r})"
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.UnaryOp):
        op = "-" if isinstance(expr.op, ast.USub) else "!"
        return f"({op}{cuda_expression(expr.operand)})"
    if isinstance(expr, ast.BinOp):
        a, b = cuda_expression(expr.left), cuda_expression(expr.right)
        if isinstance(expr.op, ast.Pow):
            return f"pow({a}, {b})"
        return f"({a} {_C_OPERATOR[type(expr.op)]} {b})"
    if isinstance(expr, ast.Compare):
        (op,), (right,) = expr.ops, expr.comparators
        return f"({cuda_expression(expr.left)} {_C_OPERATOR[type(op)]} {cuda_expression(right)})"
    if isinstance(expr, ast.BoolOp):
        return "(" + f" {_C_OPERATOR[type(expr.op)]} ".join(map(cuda_expression, expr.values)) + ")"
    if isinstance(expr, ast.Call):
        name, args = expr.func.id, [cuda_expression(a) for a in expr.args]
        if name == "where":
            return f"({args[0]} ? {args[1]} : {args[2]})"
        spelled = BUILTINS[name][1] if name in BUILTINS else f"ad_{name}"
        return f"{spelled}({', '.join(args)})"
    raise ValueError(f"cannot render {ast.unparse(expr)!r} to CUDA")


def cuda_preamble(entries):
    """The helpers header plus one ``__device__`` function per non-builtin entry."""
    header = (kernels_dir() / "gpuad_math.cuh").read_text()
    own = [e for e in entries.values() if e.name not in BUILTINS]

    def signature(e):
        params = ", ".join(f"{e.ctypes.get(n, 'T')} {n}" for n in e.inputs)
        return f"template <typename T> __device__ __forceinline__ T ad_{e.name}({params})"

    declarations = "".join(f"{signature(e)};\n" for e in own)
    definitions = "".join(f"{signature(e)} {{ return {cuda_expression(e.forward)}; }}\n"
                          for e in own)
    return header + declarations + definitions


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """One generated elementwise kernel: what it reads, what it writes, how.

    ``params``: ``(name, C type)`` per input in launch order (``"T"`` is the kernel's floating
    type, bound at launch); ``outputs``: the names it writes, each of type ``T``; ``body``:
    single assignments ``(name, ast)`` in order, temporaries (names not in ``outputs``) first.
    Frozen, so it keys the caches of compiled kernels.
    """

    name: str
    params: tuple
    outputs: tuple
    body: tuple

    @property
    def param_names(self):
        return tuple(n for n, _ in self.params)

    @property
    def in_params(self):
        """CuPy's ``in_params`` string."""
        return ", ".join(f"{c} {n}" for n, c in self.params)

    @property
    def out_params(self):
        return ", ".join(f"T {n}" for n in self.outputs)

    @property
    def operation(self):
        """The body as CUDA statements (outputs are declared by the kernel around it)."""
        return " ".join(f"{_declaration(n, e, self.outputs)}{n} = {cuda_expression(e)};"
                        for n, e in self.body)

    def elementwise_kernel_args(self):
        """``(in_params, out_params, operation, name)`` for ``cupy.ElementwiseKernel``."""
        return self.in_params, self.out_params, self.operation, self.name


def _declaration(name, expr, outputs):
    if name in outputs:  # declared by the kernel around the body
        return ""
    return "const bool " if isinstance(expr, (ast.Compare, ast.BoolOp)) else "const T "


def kernel_spec(name, ctypes, candidates, outputs):
    """The spec computing ``outputs`` (``[(name, ast)]``): each simplified, their common
    subexpressions computed once; its parameters are the ``candidates`` the body reads, in
    the candidates' order (``ctypes``: C types other than ``T``)."""
    outputs = [(n, simplify(e)) for n, e in outputs]
    temporaries, exprs = common_subexpressions([e for _, e in outputs])
    body = tuple(temporaries) + tuple(zip([n for n, _ in outputs], exprs))
    used = {n.id for _, e in body for n in ast.walk(e) if isinstance(n, ast.Name)}
    params = tuple((n, ctypes.get(n, "T")) for n in candidates if n in used)
    return KernelSpec(name, params, tuple(n for n, _ in outputs), body)


def forward_kernel_spec(entry):
    """The fused forward kernel of ``entry``."""
    return kernel_spec(f"gpuad_{entry.name}", entry.ctypes, entry.inputs,
                       [("out", entry.forward)])


def vjp_kernel_spec(entry, needs, conjugate=False):
    """The fused VJP kernel: one launch reads ``g`` and the saved values once and writes each
    needed gradient ``g<input>`` once (``conjugate``: complex, ``g * conj(d_x)``)."""
    outputs = [(f"g{n}", e) for n, e in zip(entry.inputs, vjp_exprs(entry, needs, conjugate))
               if e is not None]
    grads = "_".join(n[1:] for n, _ in outputs) + ("_conj" if conjugate else "")
    return kernel_spec(f"gpuad_vjp_{entry.name}_{grads}", entry.ctypes,
                       ("g",) + entry.inputs + ("out",), outputs)


def jvp_kernel_spec(entry, has_tangent):
    """The fused JVP kernel: ``tout = sum_x t<x> * d_x`` over the inputs with a tangent."""
    tangents = [f"t{n}" if has else None for n, has in zip(entry.inputs, has_tangent)]
    with_tangents = "_".join(n for n, t in zip(entry.inputs, tangents) if t)
    return kernel_spec(f"gpuad_jvp_{entry.name}_{with_tangents}", entry.ctypes,
                       entry.inputs + ("out",) + tuple(t for t in tangents if t),
                       [("tout", jvp_expr(entry, tangents))])


def kernel_specs(entries):
    """Every :class:`KernelSpec` the CuPy backend can launch: each entry's and each
    first-order gradient entry's (higher orders are made the same way)."""
    specs = []
    gradient_entries = [gradient_entry(e, n, entries) for e in entries.values()
                        for n in e.partials if not _is_const(e.partials[n])]
    for entry in list(entries.values()) + gradient_entries:
        specs.append(forward_kernel_spec(entry))
        for needs in _needs_sets(entry):
            specs.append(vjp_kernel_spec(entry, needs))
            specs.append(jvp_kernel_spec(entry, needs))
    return specs


def _needs_sets(entry):
    """Each ``needs`` (which inputs want a gradient) of a VJP or JVP kernel of ``entry``: at
    least one, and only inputs that have a partial."""
    grads = [n in entry.partials for n in entry.inputs]
    for needs in itertools.product((False, True), repeat=len(entry.inputs)):
        if any(needs) and all(g or not n for g, n in zip(grads, needs)):
            yield needs


def complex_kernel_specs(entries):
    """The kernels the CuPy backend launches for complex data: the VJPs ``g * conj(d_x)`` of
    the entries in :data:`COMPLEX_ENTRIES` (complex forwards and JVPs run as CuPy's ufuncs
    and gpuad ops)."""
    specs = []
    for entry in (complex_entry(entries[n]) for n in sorted(COMPLEX_ENTRIES)):
        specs.extend(vjp_kernel_spec(entry, needs, conjugate=True)
                     for needs in _needs_sets(entry))
    return specs


# C type of a kernel -> (the type it computes in, its storage type, a name for kernel names).
# float16 is stored as its bits and computed in float (ad_load_half / ad_store_half, PTX
# conversions: NVRTC without CUDA's headers has no __half); complex uses CuPy's complex.cuh.
SCALAR_KERNEL_TYPES = {"half": ("float", "unsigned short", "half"),
                       "complex<float>": ("complex<float>", "complex<float>", "complex64"),
                       "complex<double>": ("complex<double>", "complex<double>", "complex128")}
COMPLEX_HEADER = "#include <cupy/complex.cuh>\n"


def scalar_kernel(spec, preamble, ctype, kinds):
    """CUDA source of ``spec`` for float16 or complex data (``ctype`` a key of
    :data:`SCALAR_KERNEL_TYPES`): one element per thread and step of a grid-stride loop,
    float16 loaded as float and stored rounded to float16.  ``kinds`` as
    :func:`contiguous_kernel`'s; a ``"value"`` of type ``T`` is passed in the compute type.
    Returns ``(source, kernel name)``."""
    compute, storage, tag = SCALAR_KERNEL_TYPES[ctype]
    half = ctype == "half"
    kernel_name = f"{spec.name}_{tag}_{''.join(k[0] for k in kinds)}"
    params, loads = [], []
    for (n, c), kind in zip(spec.params, kinds):
        if kind == "value":
            params.append(f"const {compute if c == 'T' else c} {n}_s")
            loads.append(f"const {'T' if c == 'T' else c} {n} = {n}_s;")
            continue
        at = "0" if kind == "one" else "i"
        params.append(f"const {storage if c == 'T' else c}* __restrict__ {n}_p")
        value = f"ad_load_half({n}_p[{at}])" if half and c == "T" else f"{n}_p[{at}]"
        loads.append(f"const {'T' if c == 'T' else c} {n} = {value};")
    params += [f"{storage}* __restrict__ {n}_p" for n in spec.outputs] + ["long long n"]
    stores = " ".join(f"{n}_p[i] = {f'ad_store_half({n})' if half else n};"
                      for n in spec.outputs)
    header = COMPLEX_HEADER if ctype.startswith("complex") else ""
    return (f"{header}{preamble}\nextern \"C\" __global__ void {kernel_name}("
            f"{', '.join(params)}) {{\n  typedef {compute} T;\n"
            f"  const long long stride = (long long)blockDim.x * gridDim.x;\n"
            f"  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; "
            f"i += stride) {{\n    {' '.join(loads)}\n"
            f"    {' '.join(f'T {n};' for n in spec.outputs)}\n    {spec.operation}\n"
            f"    {stores}\n  }}\n}}\n", kernel_name)


def contiguous_kernel(spec, preamble, ctype, kinds):
    """CUDA source of ``spec`` as the RawKernel the CuPy backend launches on contiguous data.

    ``kinds`` says, per input: ``"full"`` (an array of all ``n`` elements, read with 16-byte
    vector loads), ``"one"`` (a one-element array, read once: broadcasting without a copy) or
    ``"value"`` (a scalar passed by value).  Each thread handles a vector of 4 floats or 2
    doubles, so even a one-read-one-write kernel moves data at close to copy bandwidth.
    Returns ``(source, kernel name)``; NVRTC compiles these in CI without a GPU.  float16
    and complex kernels are :func:`scalar_kernel`'s.
    """
    if ctype in SCALAR_KERNEL_TYPES:
        return scalar_kernel(spec, preamble, ctype, kinds)
    operation, outs = spec.operation, spec.outputs
    width, vector = (4, "float4") if ctype == "float" else (2, "double2")
    kernel_name = f"{spec.name}_{ctype}_{''.join(k[0] for k in kinds)}"
    params, vector_loads, lane_loads, tail_loads = [], [], [], []
    for (n, c), kind in zip(spec.params, kinds):
        c = ctype if c == "T" else c
        vectorized = kind == "full" and c == ctype
        if kind == "value":
            params.append(f"const {c} {n}_s")
            lane_loads.append(f"const {c} {n} = {n}_s;")
            tail_loads.append(f"const {c} {n} = {n}_s;")
            continue
        params.append(f"const {c}* __restrict__ {n}_p")
        at = "0" if kind == "one" else "i"
        tail_loads.append(f"const {c} {n} = {n}_p[{at}];")
        if vectorized:
            vector_loads.append(f"const V {n}_v = reinterpret_cast<const V*>({n}_p)[v];")
            lane_loads.append(f"const T {n} = reinterpret_cast<const T*>(&{n}_v)[k];")
        else:
            lane_loads.append(f"const {c} {n} = {n}_p[{'0' if kind == 'one' else 'v * W + k'}];")
    params += [f"{ctype}* __restrict__ {n}_p" for n in outs] + ["long long n"]
    decls = " ".join(f"T {n};" for n in outs)
    return (f"{preamble}\nextern \"C\" __global__ void {kernel_name}({', '.join(params)}) {{\n"
            f"  typedef {ctype} T;\n  typedef {vector} V;\n  const int W = {width};\n"
            f"  const long long stride = (long long)blockDim.x * gridDim.x;\n"
            f"  const long long first = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
            f"  for (long long v = first; v < n / W; v += stride) {{\n"
            f"    {' '.join(vector_loads)}\n"
            f"    {' '.join(f'V {n}_v;' for n in outs)}\n"
            f"#pragma unroll\n    for (int k = 0; k < W; ++k) {{\n"
            f"      {' '.join(lane_loads)}\n      {decls}\n      {operation}\n"
            f"      {' '.join(f'reinterpret_cast<T*>(&{n}_v)[k] = {n};' for n in outs)}\n"
            f"    }}\n    {' '.join(f'reinterpret_cast<V*>({n}_p)[v] = {n}_v;' for n in outs)}\n"
            f"  }}\n  for (long long i = n / W * W + first; i < n; i += stride) {{\n"
            f"    {' '.join(tail_loads)}\n    {decls}\n    {operation}\n"
            f"    {' '.join(f'{n}_p[i] = {n};' for n in outs)}\n  }}\n}}\n", kernel_name)
