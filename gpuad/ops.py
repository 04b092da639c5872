"""The elementwise ops, generated from the derivative table, and the comparisons.

One :class:`Elementwise` primitive per entry of ``kernels/derivatives.txt``
(:mod:`gpuad.table`), whose forward, VJP and JVP are rendered for NumPy, for CuPy (one fused
kernel each) and as gpuad ops (the differentiable path, for higher order).  Each op is named
below, one line per entry.  Every op runs through :func:`gpuad.core.bind`; the op functions of
one and two inputs inline bind's most common dispatch (a NumPy Tensor of a supported dtype)
while nothing observes binds, because a Python call costs a tenth of a scalar op.
"""
import numbers
import typing

import numpy

from . import backends as _backend
from . import core, cuda, numpy_memory
from . import table as _table
from .array_ops import (broadcast_to, convert_like, convert_to_tensor, expand_batched,
                        ones_like, same_backend, sum_to_shape, tensor_arg, zeros, zeros_like)
from .backends import cupy_ndarray
from .backends import numpy_ndarray as ndarray
from .numpy_memory import into as _into
from .tensor import Tensor, TensorLike, cast_checked, wrap
from .variables import Variable

_INT_OK = {"negative", "abs", "sign", "square", "add", "subtract", "multiply", "divide", "pow",
           "clip_by_value", "squared_difference",
           "maximum", "minimum", "where", "relu", "floordiv", "mod", "floor", "ceil", "round"}
_COMPLEX_OK = _table.COMPLEX_ENTRIES
_COMPLEX_OVERRIDES = {}  # entry name -> the op for complex input: abs (filled at the end)


# ============================================================ elementwise ops from the table

ENTRIES = _table.load()  # the derivative table: name -> table.Entry


def _dtype_type(*values):
    for v in values:
        if hasattr(v, "dtype"):
            return v.dtype.type
    return numpy.float32


def _compile(source, namespace, fname):
    exec(compile(source, f"<gpuad derivative table: {fname}>", "exec"), namespace)
    return namespace[fname]


def _forward_source(entry, fname, root_out):
    args = ", ".join(entry.inputs)
    typed = any(isinstance(n, _table.ast.Constant) for n in _table.ast.walk(entry.forward))
    head = f"    T = _dtype_type({args})\n" if typed else ""
    return (f"def {fname}({args}, out=None):\n{head}"
            f"    return {_table.python_source(entry.forward, root_out=root_out)}\n")


# W. J. Cody's rational Chebyshev approximations of erf and erfc (Math. Comp. 23, 1969; netlib
# specfun CALERF), accurate to a few float64 ulps: erf = x A(x^2) / B(x^2) for |x| <= 0.46875,
# else 1 - erfc with erfc = exp(-x^2) C(x) / D(x) up to 4 and
# exp(-x^2) (1/sqrt(pi) - P(1/x^2) / (x^2 Q(1/x^2))) / x beyond.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)


def _rational(num, den, z):
    """Cody's ``num(z) / den(z)`` by Horner, in place (the coefficients are in his order: the
    leading one of ``num`` last, the constant terms at ``num[-2]`` and ``den[-1]``)."""
    top, bottom = z * num[-1], z + den[0]
    top += num[0]
    for a, b in zip(num[1:-2], den[1:-1]):
        top *= z
        top += a
        bottom *= z
        bottom += b
    top *= z
    top += num[-2]
    bottom *= z
    bottom += den[-1]
    top /= bottom
    return top


def _erf(x, out=None):
    """The error function, elementwise, in float64 (NumPy has no erf ufunc and scipy is not a
    dependency); the result has ``x``'s floating dtype.  Called like a ufunc by the rendered
    table code: ``out=...`` returns a 0-d array for a 0-d input, an array ``out`` is filled."""
    xp = _backend.module_of(x)
    x = xp.asarray(x)
    v = x.astype(numpy.float64)
    y = xp.minimum(xp.abs(v), 6.0)  # erf(6) rounds to 1; the clamp keeps inf out of the tail
    result = xp.empty_like(v)
    small, far = y <= 0.46875, ~(y <= 4.0)  # NaN goes to `far` and stays NaN
    mid = ~(small | far)
    ys = y[small]
    result[small] = v[small] * _rational(_ERF_A, _ERF_B, ys * ys)
    for mask in (mid, far):
        yy = y[mask]
        if mask is mid:
            tail = _rational(_ERF_C, _ERF_D, yy)
        else:
            z = 1.0 / (yy * yy)
            tail = (0.5641895835477562869 - z * _rational(_ERF_P, _ERF_Q, z)) / yy
        # exp(-y^2) = exp(-t^2) exp(-(y - t)(y + t)) with t = y cut to 1/16: t^2 is exact,
        # so the rounding of y^2 is not amplified (Cody)
        t = xp.floor(yy * 16.0) / 16.0
        erfc = xp.exp(-t * t) * xp.exp(-(yy - t) * (yy + t)) * tail
        result[mask] = xp.copysign(0.5 - erfc + 0.5, v[mask])
    result = result.astype(x.dtype if x.dtype.kind == "f" else numpy.float64, copy=False)
    if out is None or out is ...:  # out=... asks for a 0-d array, not a NumPy scalar
        return result
    out[...] = result
    return out


_OWN_UFUNCS = {"erf": _erf}  # builtins of the table that an array module may lack


_POOL_MIN_BYTES = numpy_memory.POOL_MIN_BYTES


def _array_namespace(xp):
    """Names the rendered Python code uses, resolved in array module ``xp``."""
    ns = {name: getattr(xp, ufunc, None) or _OWN_UFUNCS[ufunc]
          for name, (ufunc, _) in _table.BUILTINS.items()}
    ns.update({"ufunc_" + u: getattr(xp, u) for u in _table.OPERATOR_UFUNCS.values()})
    ns.update(asarray=xp.asarray, zeros_like=xp.zeros_like, _dtype_type=_dtype_type, _into=_into)
    ns["__name__"] = __name__  # the warning filter in gpuad/__init__.py knows generated code by it
    return ns


_NUMPY_NS = _array_namespace(numpy)
_NUMPY_NS["where"] = numpy_memory.select


def numpy_function(name):
    """The NumPy function of a builtin of the table (``erf`` and ``where`` are gpuad's) or
    of a ufunc named as NumPy names it (``add``, ``greater``, ...)."""
    return _NUMPY_NS[name] if name in _table.BUILTINS else getattr(numpy, name)
_CUPY_NS = None  # built on first use, from the same sources
_GPUAD_NS = {}   # filled below with the op functions: the differentiable rendering


def _cupy_namespace():
    global _CUPY_NS
    if _CUPY_NS is None:
        ns = _array_namespace(_backend.cupy)
        for entry in ENTRIES.values():
            fwd = _compile(_forward_source(entry, "fwd_" + entry.name, False), ns,
                           "fwd_" + entry.name)
            if entry.name not in _table.BUILTINS:
                ns[entry.name] = fwd
        _CUPY_NS = ns
    return _CUPY_NS


_PREAMBLE = None


def kernel_launcher(spec):
    """A launcher for the fused kernel ``spec`` (see :func:`gpuad.cuda.launch_elementwise`)."""
    global _PREAMBLE
    if _PREAMBLE is None:
        _PREAMBLE = _table.cuda_preamble(ENTRIES)

    def render(kinds, ctype):
        return _table.contiguous_kernel(spec, _PREAMBLE, ctype, kinds)
    return lambda *args: cuda.launch_elementwise(spec, _PREAMBLE, args, render)


_UNWRAP = "    {name} = {name}._value if type({name}) is Tensor else {name}\n"
_FLOATS = (numpy.dtype("float32"), numpy.dtype("float64"), numpy.dtype("float16"))
_NUMBERS = _FLOATS + tuple(numpy.dtype(t) for t in ("int32", "int64", "int16", "int8", "uint8"))


class Elementwise(core.Primitive):
    """An elementwise primitive rendered from one row of the derivative table.

    Its ``attrs`` (set when it is recorded) are the inputs' shapes when one was broadcast,
    else None; its records keep the values the partials read (``entry.saves``).
    """

    def __init__(self, entry):
        super().__init__(entry.name, self._impl)
        self.entry = entry
        self.differentiable = bool(entry.partials)
        self.batched_jvp = True
        # the ufunc itself when the forward is one ufunc of the inputs in order: no extra call
        root = _table._with_out(entry.forward)
        direct = isinstance(root, _table.ast.Call) and root.func.id != "asarray" and \
            [getattr(a, "id", None) for a in root.args] == list(entry.inputs)
        self.direct = direct
        fname = "fwd_" + entry.name
        self.numpy_forward = _NUMPY_NS[root.func.id] if direct else \
            _compile(_forward_source(entry, fname, True), _NUMPY_NS, fname)
        if entry.name not in _table.BUILTINS:
            _NUMPY_NS[entry.name] = self.numpy_forward
        # what a record keeps: the values the partials read
        self.save_values = eval(f"lambda {', '.join(entry.inputs)}, out: "
                                f"({''.join(n + ', ' for n in entry.saves)})")
        self._numpy_rules, self._cuda_rules, self._jvp_rules, self._gradient_ops = {}, {}, {}, {}
        self._gradient_plans = {}
        self._cuda_forward, self._cuda_jvps = None, {}
        self.complex_entry = _table.complex_entry(entry)
        self._complex_vjps = {}

    def __repr__(self):
        return f"<gpuad elementwise primitive {self.name}>"

    def save(self, inputs, out, attrs):
        return self.save_values(*inputs, out)

    def eager(self, args, attrs):
        return _call_elementwise(self, args)

    def _impl(self, values, attrs):
        if type(next(v for v in values if hasattr(v, "dtype"))) is cupy_ndarray:
            return self.cupy_forward(values)
        return self.numpy_forward(*values, out=...)

    def abstract_eval(self, avals, attrs):
        typed = [a for a, n in zip(avals, self.entry.inputs) if n not in self.entry.ctypes]
        return core.Aval(numpy.broadcast_shapes(*[a.shape for a in avals]), typed[0].dtype,
                         avals[0].backend)

    def cupy_forward(self, values):
        dtype = next(v.dtype for v, n in zip(values, self.entry.inputs)
                     if hasattr(v, "dtype") and n not in self.entry.ctypes)
        if dtype.kind != "f":  # integer arithmetic: CuPy's ufuncs, as NumPy's
            return _cupy_namespace()["fwd_" + self.name](*values)
        if self._cuda_forward is None:
            self._cuda_forward = kernel_launcher(_table.forward_kernel_spec(self.entry))
        return self._cuda_forward(*[dtype.type(v) if isinstance(v, numbers.Number) else v
                                    for v in values])

    def _gradient_plan(self, needs):
        """Per input: (None, ()) when not needed or without a partial, (zeros_like, ()) when
        the partial is 0, else (the gradient op, positions of its arguments in ``saves``)."""
        plan = self._gradient_plans.get(needs)
        if plan is None:
            plan = []
            for name, need in zip(self.entry.inputs, needs):
                partial = self.entry.partials.get(name) if need else None
                if partial is None or _table._is_const(partial, 0):
                    plan.append((None if partial is None else zeros_like, ()))
                else:
                    op = self._gradient_op(name)
                    plan.append((op, [self.entry.saves.index(n) for n in op.entry.arguments]))
            plan = self._gradient_plans[needs] = tuple(plan)
        return plan

    def _gradient_op(self, wrt):
        """The elementwise primitive ``g * d_wrt`` (see :func:`gpuad.table.gradient_entry`)."""
        op = self._gradient_ops.get(wrt)
        if op is None:
            op = self._gradient_ops[wrt] = Elementwise(
                _table.gradient_entry(self.entry, wrt, ENTRIES))
        return op

    def _numpy_rules_for(self, needs):
        """The NumPy VJP rule as (plain, writing into fresh large intermediates)."""
        rules = self._numpy_rules.get(needs)
        if rules is None:
            rules = self._numpy_rules[needs] = tuple(
                _compile(_with_literal_type(_table.python_vjp_source(
                    self.entry, needs, "vjp_" + self.name, _UNWRAP, in_place), "g"),
                    dict(_NUMPY_NS, Tensor=Tensor), "vjp_" + self.name)
                for in_place in (False, True))
        return rules

    def _cuda_vjp(self, needs, g, values, conjugate=False):
        rule = self._cuda_rules.get((needs, conjugate))
        if rule is None:
            spec = _table.vjp_kernel_spec(self.complex_entry, needs, True) if conjugate else \
                _table.vjp_kernel_spec(self.entry, needs)
            ins = spec.param_names[1:]  # after the cotangent
            rule = self._cuda_rules[(needs, conjugate)] = (
                kernel_launcher(spec), [self.entry.saves.index(n) for n in ins])
        kernel, order = rule
        T = g.dtype.type
        args = [g] + [T(values[i]) if isinstance(values[i], numbers.Number) else values[i]
                      for i in order]
        result = kernel(*args)
        result = iter(result if isinstance(result, tuple) else (result,))
        return [next(result) if need and n in self.entry.partials else None
                for n, need in zip(self.entry.inputs, needs)]

    def jvp(self, tangents, saved, out, shapes, batch=0):
        """The output's tangent ``sum_x t_x * d_x``: fused when no recorder would see it."""
        has = tuple(t is not None and n in self.entry.partials
                    for t, n in zip(tangents, self.entry.inputs))
        if True not in has:
            return None
        tangents = [t for t, h in zip(tangents, has) if h]
        if batch and shapes is not None:  # a broadcast input's tangent needs singleton axes
            ndim = max(len(s) for s in shapes if s is not None)
            tangents = [expand_batched(t, batch, ndim) for t in tangents]
        tout = self._jvp_unbroadcast(has, tangents, saved)
        if shapes is None:
            return tout
        # a broadcast operand's tangent passed on as is (d(x + y)/dx = 1) has its own shape
        shape = numpy.broadcast_shapes(*[s for s in shapes if s is not None])
        return broadcast_to(tout, tout.shape[:batch] + shape)

    def _jvp_unbroadcast(self, has, tangents, saved):
        """``sum_x t_x * d_x``, broadcast only as far as its operands are."""
        if tangents[0].dtype.kind == "c":  # holomorphic: t * d_x, as gpuad ops
            return self._jvp_rule(has, _GPUAD_NS, "", complex_inputs=True)(*tangents, *saved)
        if core.OBSERVING and core.observed() or \
                core.seen_by_recorders(tuple(tangents) + saved):
            rule = self._jvp_rule(has, _GPUAD_NS, "")
            return rule(*tangents, *saved)
        raw = [t._value for t in tangents]
        if type(raw[0]) is cupy_ndarray:
            launch_and_names = self._cuda_jvps.get(has)
            if launch_and_names is None:
                spec = _table.jvp_kernel_spec(self.entry, has)
                launch_and_names = self._cuda_jvps[has] = (
                    kernel_launcher(spec), spec.param_names)
            launch, names = launch_and_names
            values = dict(zip([f"t{n}" for n, h in zip(self.entry.inputs, has) if h], raw))
            T = raw[0].dtype.type
            values.update((n, T(v) if isinstance(v, numbers.Number) else v) for n, v in
                          zip(self.entry.saves, [core.raw(v) for v in saved]))
            return wrap(launch(*[values[n] for n in names]))
        rule = self._jvp_rule(has, _NUMPY_NS, _UNWRAP, raw[0].nbytes >= _POOL_MIN_BYTES)
        return wrap(rule(*raw, *saved))

    def _jvp_rule(self, has, namespace, prologue, in_place=False, complex_inputs=False):
        key = (has, namespace is _GPUAD_NS, in_place, complex_inputs)
        rule = self._jvp_rules.get(key)
        if rule is None:
            entry = self.complex_entry if complex_inputs else self.entry
            source = _table.python_jvp_source(entry, has, "jvp_" + self.name, prologue,
                                              in_place=in_place)
            first = next(f"t{n}" for n, h in zip(self.entry.inputs, has) if h)
            source = _with_literal_type(source, first if prologue else None)
            rule = self._jvp_rules[key] = _compile(source, dict(namespace, Tensor=Tensor),
                                                   "jvp_" + self.name)
        return rule

    def _complex_vjp(self, needs):
        """TensorFlow's complex VJP ``g * conj(d_x)``, as gpuad ops (differentiable again)."""
        rule = self._complex_vjps.get(needs)
        if rule is None:
            source = _table.python_vjp_source(self.complex_entry, needs, "cvjp_" + self.name,
                                              conjugate=True)
            rule = self._complex_vjps[needs] = _compile(
                _with_literal_type(source, None), dict(_GPUAD_NS, Tensor=Tensor),
                "cvjp_" + self.name)
        return rule

    def vjp(self, g, saved, shapes, needs, differentiable):
        if (g._value if type(g) is Tensor else g).dtype.kind == "c":  # g * conj(d_x), as TF
            if not differentiable and type(core.raw(g)) is cupy_ndarray:  # one fused kernel
                grads = self._cuda_vjp(needs, core.raw(g), [core.raw(s) for s in saved], True)
            else:  # as gpuad ops
                grads = self._complex_vjp(needs)(core.as_tensor(g), *saved)
        elif differentiable:  # one recorded gradient op per input, differentiable again
            g = core.as_tensor(g)
            grads = []
            for op, positions in self._gradient_plan(needs):
                if op is None:
                    grads.append(None)
                elif op is zeros_like:
                    grads.append(zeros_like(g))
                else:
                    grads.append(core.bind(op, (g,) + tuple([saved[i] for i in positions])))
        elif type(g) is cupy_ndarray or type(g) is Tensor and type(g._value) is cupy_ndarray:
            grads = self._cuda_vjp(needs, core.raw(g), [core.raw(s) for s in saved])
        else:  # the rendered expression with NumPy's ufuncs
            plain, in_place = self._numpy_rules.get(needs) or self._numpy_rules_for(needs)
            raw = g._value if type(g) is Tensor else g
            grads = (in_place if raw.nbytes >= _POOL_MIN_BYTES else plain)(g, *saved)
        if shapes is not None:
            grads = [sum_to_shape(gi, s) if gi is not None and s is not None else gi
                     for gi, s in zip(grads, shapes)]
        return grads


def _with_literal_type(source, name):
    """Bind ``T``, the type of the rendered literals: ``name``'s dtype (NumPy) or ``float``
    (gpuad ops, whose Python scalars take the tensor's dtype)."""
    if "T(" not in source:
        return source
    return source.replace("):\n", f"):\n    T = {name}.dtype.type\n" if name else
                          "):\n    T = float\n", 1)


def _broadcast_shapes(inputs, shape):
    """An elementwise record's ``attrs``: the inputs' shapes when one was broadcast to
    ``shape``, else None."""
    shapes = [x._value.shape if isinstance(x, Tensor) else None for x in inputs]
    return None if shapes.count(shape) + shapes.count(None) == len(shapes) else tuple(shapes)


def _record_elementwise(prim, inputs, out):
    """Record ``out = prim(*inputs)``, with the input shapes when one was broadcast."""
    if prim.differentiable:
        core.record(prim, inputs, out, _broadcast_shapes(inputs, out._value.shape))


def _dtype_error(prim, dtype):
    why = f" (TensorFlow defines no complex {prim.name})" if dtype.kind == "c" else ""
    raise TypeError(f"{prim.name}: unsupported dtype {dtype}{why}; expected a floating tensor "
                    f"(use gpuad.cast)")


def _shape_error(prim, values, error):
    shapes = " and ".join(str(getattr(v, "shape", ())) for v in values)
    raise ValueError(f"{prim.name}: incompatible shapes {shapes} for broadcasting") from error


def _call_elementwise(prim, args):
    """The general path: converts arguments, checks dtypes and backends, runs and records."""
    entry = prim.entry
    typed = [i for i, n in enumerate(entry.inputs) if n not in entry.ctypes]
    like = next((a for i, a in enumerate(args) if i in typed and isinstance(a, Tensor)), None)
    if like is None:
        like = convert_to_tensor(args[typed[0]], op=prim.name)
        args = args[:typed[0]] + (like,) + args[typed[0] + 1:]
    inputs = []
    for a, n in zip(args, entry.inputs):
        if isinstance(a, Tensor):
            inputs.append(core.as_input(a))
        elif n in entry.ctypes:
            inputs.append(convert_to_tensor(a, dtype=entry.ctypes[n], op=prim.name))
        elif type(a) in (float, int):  # a Python number stays a scalar of the tensor's dtype
            cast_checked(numpy.asarray(a), like.dtype, prim.name)
            inputs.append(like.dtype.type(a))
        else:
            inputs.append(convert_like(a, like, prim.name))
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    same_backend(prim.name, tensors)
    if len({inputs[i].dtype for i in typed}) > 1:
        raise TypeError(f"{prim.name}: " + " and ".join(
            f"{entry.inputs[i]} has dtype {inputs[i].dtype}" for i in typed) +
            "; gpuad does not promote dtypes implicitly (use gpuad.cast)")
    for n, t in zip(entry.inputs, inputs):
        if n in entry.ctypes and t.dtype != numpy.dtype(entry.ctypes[n]):
            raise TypeError(f"{prim.name}: {n} must be {entry.ctypes[n]}, got {t.dtype}")
    dtype = like.dtype
    if dtype.kind == "c" and prim.name in _COMPLEX_OVERRIDES:  # abs: a real result
        return _COMPLEX_OVERRIDES[prim.name](*inputs)
    if dtype.kind != "f" and not (prim.name in _INT_OK and dtype.kind in "iub") and \
            not (prim.name in _COMPLEX_OK and dtype.kind == "c"):
        _dtype_error(prim, dtype)
    values = [t._value if isinstance(t, Tensor) else t for t in inputs]
    try:
        out = wrap(prim.cupy_forward(values) if like.backend == "cupy" else
                   prim.numpy_forward(*values, out=...))
    except ValueError as error:
        _shape_error(prim, values, error)
    if core.ACTIVE:
        _record_elementwise(prim, tuple(inputs), out)
    return out


def _read(variable):
    """A Variable as a plain Tensor: a recorded read while a tape records, else its value."""
    t = core.as_input(variable)
    return t if type(t) is Tensor else wrap(t._value)


def _make_unary(prim):
    forward, dtypes = prim.numpy_forward, _NUMBERS if prim.name in _INT_OK else _FLOATS
    record_ids, differentiable = core.record_ids, prim.differentiable
    saves_x, saves_out = "x" in prim.entry.saves, "out" in prim.entry.saves  # x before out
    name = prim.name
    pool_min = _POOL_MIN_BYTES

    def op(x):
        # bind's dispatch for a NumPy or CuPy Tensor of a supported dtype, inlined while
        # nothing observes binds (see the module's docstring); the rest goes through bind
        if type(x) is Tensor and not core.OBSERVING:
            v = x._value
            if type(v) is ndarray and v.dtype in dtypes:
                out = Tensor()
                try:
                    out._value = forward(v, out=... if v.nbytes < pool_min else
                                         numpy_memory.empty(v.shape, v.dtype))
                except MemoryError as error:
                    raise core.out_of_memory(prim.name, error) from None
                out._id = 0
                if x._id and differentiable and core.ACTIVE:  # the cheapest test first
                    record_ids(prim, (x._id,), None, out, None, (x, out) if saves_out and saves_x
                               else (out,) if saves_out else (x,) if saves_x else ())
                return out
            if type(v) is cupy_ndarray and v.dtype in _FLOATS:  # one fused kernel
                try:
                    out = wrap(prim.cupy_forward((v,)))
                except MemoryError as error:
                    raise core.out_of_memory(prim.name, error) from None
                if core.ACTIVE and x._id and differentiable:
                    record_ids(prim, (x._id,), None, out, None, (x, out) if saves_out and saves_x
                               else (out,) if saves_out else (x,) if saves_x else ())
                return out
        if type(x) is Variable and not core.OBSERVING:
            return op(_read(x))
        if name in _COMPLEX_OVERRIDES and getattr(x, "dtype", None) is not None and \
                x.dtype.kind == "c":  # a primitive of its own (traced as such): abs -> real
            return _COMPLEX_OVERRIDES[name](x)
        return core.bind(prim, (x,))
    return op


def _cupy_pair(xv, yv):
    """Two CuPy arrays of one floating dtype, or one and a Python float: one fused kernel."""
    tx, ty = type(xv), type(yv)
    if tx is cupy_ndarray and ty is cupy_ndarray:
        return xv.dtype is yv.dtype and xv.dtype in _FLOATS
    array = xv if tx is cupy_ndarray else yv
    return (tx is float or ty is float) and array.dtype in _FLOATS


def _binary_out(xv, yv):
    """A pooled ``out`` for a binary ufunc on NumPy arrays (or an array and a Python number),
    one of them large (the op's fast path tests that; two small ones broadcast to a large
    result are left to NumPy)."""
    a, b = (xv, yv) if type(xv) is ndarray else (yv, xv)
    shape = a.shape if type(b) is not ndarray or b.shape == a.shape else \
        numpy.broadcast(a, b).shape
    return numpy_memory.empty(shape, a.dtype)


def _make_binary(prim):
    forward, dtypes = prim.numpy_forward, _NUMBERS if prim.name in _INT_OK else _FLOATS
    record_ids, save, differentiable = core.record_ids, prim.save_values, prim.differentiable
    saves_first, saves_second = [n in prim.entry.saves for n in prim.entry.inputs]
    pool_min, direct = _POOL_MIN_BYTES, prim.direct

    def op(x, y):
        # bind's dispatch for NumPy (or CuPy) Tensors of one supported dtype, or a Tensor and
        # a Python number, inlined while nothing observes binds; the rest goes through bind
        tx, ty = type(x), type(y)
        if tx is Tensor:
            xv = x._value
            if ty is Tensor:
                yv = y._value
                fast = type(xv) is ndarray and type(yv) is ndarray and \
                    xv.dtype is yv.dtype and xv.dtype in dtypes
            elif ty is float:
                yv = y
                fast = type(xv) is ndarray and xv.dtype in _FLOATS
            else:
                yv = y
                fast = ty is int and type(xv) is ndarray and xv.dtype in dtypes
        elif ty is Tensor and (tx is float or tx is int):
            xv, yv = x, y._value
            fast = type(yv) is ndarray and yv.dtype in (_FLOATS if tx is float else dtypes)
        else:
            xv = yv = fast = None
        if core.OBSERVING:
            return core.bind(prim, (x, y))
        if not fast:
            if tx is Variable or ty is Variable:  # read, then the fast path
                return op(_read(x) if tx is Variable else x, _read(y) if ty is Variable else y)
            if type(xv if tx is Tensor else yv) is cupy_ndarray and _cupy_pair(xv, yv):
                try:
                    out = wrap(prim.cupy_forward((xv, yv)))
                except ValueError as error:
                    _shape_error(prim, (xv, yv), error)
                except MemoryError as error:
                    raise core.out_of_memory(prim.name, error) from None
                if core.ACTIVE and differentiable:
                    _record_elementwise(prim, (x, y), out)
                return out
            return core.bind(prim, (x, y))
        if not direct:  # log(2.0) inside a rendered forward would be float64: type it first
            if tx is not Tensor:
                xv = yv.dtype.type(xv)
            elif ty is not Tensor:
                yv = xv.dtype.type(yv)
        try:
            value = forward(xv, yv, out=_binary_out(xv, yv) if tx is Tensor and
                            xv.nbytes >= pool_min or ty is Tensor and yv.nbytes >= pool_min
                            else ...)
        except ValueError as error:
            _shape_error(prim, (xv, yv), error)
        except MemoryError as error:
            raise core.out_of_memory(prim.name, error) from None
        out = Tensor()
        out._value = value
        out._id = 0
        if core.ACTIVE and differentiable:
            # a Python number operand that is saved becomes a scalar of the tensor's dtype
            # (so the rules of 2.0 ** x stay float32)
            shape = value.shape
            if tx is not Tensor:
                if y._id:
                    if saves_first:
                        x = value.dtype.type(x)
                    record_ids(prim, (0, y._id), None, out,
                               None if yv.shape == shape else (None, yv.shape), save(x, y, out))
            elif ty is not Tensor:
                if x._id:
                    if saves_second:
                        y = value.dtype.type(y)
                    record_ids(prim, (x._id, 0), None, out,
                               None if xv.shape == shape else (xv.shape, None), save(x, y, out))
            elif x._id or y._id:
                record_ids(prim, (x._id, y._id), None, out, None if xv.shape == shape and
                           yv.shape == shape else (xv.shape, yv.shape), save(x, y, out))
        return out
    return op


def _make_op(prim):
    n = len(prim.entry.inputs)
    if n == 1 and not prim.entry.ctypes:
        op = _make_unary(prim)
    elif n == 2 and not prim.entry.ctypes:
        op = _make_binary(prim)
    else:
        def op(*args):
            if len(args) != n:
                raise TypeError(f"{prim.name}() takes {n} arguments ({len(args)} given)")
            return core.bind(prim, args)
    op.__name__ = op.__qualname__ = prim.name
    op.__doc__ = _elementwise_doc(prim.entry)
    op.primitive = prim
    return op


def _elementwise_doc(entry):
    partials = "; ".join(f"d/d{n} = {_table.ast.unparse(p)}" for n, p in entry.partials.items())
    return (f"Elementwise ``{entry.name}({', '.join(entry.inputs)}) = "
            f"{_table.ast.unparse(entry.forward)}``, with NumPy broadcasting.\n\n"
            f"Derivative (from kernels/derivatives.txt): {partials or 'none (no gradient)'}.\n")


PRIMITIVES = {name: Elementwise(entry) for name, entry in ENTRIES.items()}
ELEMENTWISE_OPS = {}  # name -> op, filled by _elementwise_op


def _elementwise_op(name: str) -> typing.Any:  # typed by the assignments below
    op = ELEMENTWISE_OPS[name] = _make_op(PRIMITIVES[name])
    return op


# the elementwise ops' types for mypy, by arity (vmap reads an op's primitive)
class _Unary(typing.Protocol):
    primitive: core.Primitive

    def __call__(self, x: TensorLike) -> Tensor: ...


class _Binary(typing.Protocol):
    primitive: core.Primitive

    def __call__(self, x: TensorLike, y: TensorLike) -> Tensor: ...


class _Ternary(typing.Protocol):
    primitive: core.Primitive

    def __call__(self, a: TensorLike, b: TensorLike, c: TensorLike, /) -> Tensor: ...


# one line per entry of kernels/derivatives.txt
negative: _Unary = _elementwise_op("negative")
abs: _Unary = _elementwise_op("abs")  # noqa: A001 (TF's name)
sign: _Unary = _elementwise_op("sign")
square: _Unary = _elementwise_op("square")
sqrt: _Unary = _elementwise_op("sqrt")
rsqrt: _Unary = _elementwise_op("rsqrt")
reciprocal: _Unary = _elementwise_op("reciprocal")
exp: _Unary = _elementwise_op("exp")
expm1: _Unary = _elementwise_op("expm1")
log: _Unary = _elementwise_op("log")
log1p: _Unary = _elementwise_op("log1p")
sin: _Unary = _elementwise_op("sin")
cos: _Unary = _elementwise_op("cos")
tan: _Unary = _elementwise_op("tan")
asin: _Unary = _elementwise_op("asin")
acos: _Unary = _elementwise_op("acos")
atan: _Unary = _elementwise_op("atan")
sinh: _Unary = _elementwise_op("sinh")
cosh: _Unary = _elementwise_op("cosh")
tanh: _Unary = _elementwise_op("tanh")
sigmoid: _Unary = _elementwise_op("sigmoid")
softplus: _Unary = _elementwise_op("softplus")
relu: _Unary = _elementwise_op("relu")
erf: _Unary = _elementwise_op("erf")
add: _Binary = _elementwise_op("add")
subtract: _Binary = _elementwise_op("subtract")
multiply: _Binary = _elementwise_op("multiply")
divide: _Binary = _elementwise_op("divide")
pow: _Binary = _elementwise_op("pow")  # noqa: A001 (TF's name)
maximum: _Binary = _elementwise_op("maximum")
minimum: _Binary = _elementwise_op("minimum")
atan2: _Binary = _elementwise_op("atan2")
squared_difference: _Binary = _elementwise_op("squared_difference")
where: _Ternary = _elementwise_op("where")
clip_by_value: _Ternary = _elementwise_op("clip_by_value")
floor: _Unary = _elementwise_op("floor")
ceil: _Unary = _elementwise_op("ceil")
round: _Unary = _elementwise_op("round")  # noqa: A001 (TF's name)
floordiv: _Binary = _elementwise_op("floordiv")
mod: _Binary = _elementwise_op("mod")
asinh: _Unary = _elementwise_op("asinh")
acosh: _Unary = _elementwise_op("acosh")
atanh: _Unary = _elementwise_op("atanh")
xlogy: _Binary = _elementwise_op("xlogy")
log_sigmoid: _Unary = _elementwise_op("log_sigmoid")
elu: _Unary = _elementwise_op("elu")
selu: _Unary = _elementwise_op("selu")
silu: _Unary = _elementwise_op("silu")
softsign: _Unary = _elementwise_op("softsign")
leaky_relu: _Binary = _elementwise_op("leaky_relu")  # ad.nn.leaky_relu gives alpha its default

_missing = set(ENTRIES) - set(ELEMENTWISE_OPS)
if _missing:
    raise RuntimeError(f"gpuad/ops.py names no op for the table's entries {sorted(_missing)}")
_GPUAD_NS.update(ELEMENTWISE_OPS)
_GPUAD_NS.update(floor_divide=floordiv, remainder=mod, zeros_like=zeros_like)


# ==================================================================== comparisons and logic

def _compare(name: str, ufunc: str) -> typing.Any:  # typed by the assignments below
    primitive = core.Primitive(name, lambda values, attrs: getattr(
        _backend.module_of(values[0]), ufunc)(*values))  # bool: no gradient

    def op(x, y):
        x, y = core.as_input(x), core.as_input(y)  # a Variable read here is watched, as TF
        if not isinstance(x, Tensor):
            x = convert_like(x, y, name) if isinstance(y, Tensor) else \
                convert_to_tensor(x, op=name)
        y = convert_like(y, x, name)
        same_backend(name, (x, y))
        if x.dtype != y.dtype:
            raise TypeError(f"{name}: x has dtype {x.dtype} and y has dtype {y.dtype}")
        if x.dtype.kind == "c" and name not in ("equal", "not_equal"):
            raise TypeError(f"{name}: complex numbers are not ordered (x and y have dtype "
                            f"{x.dtype}); compare their real parts, imaginary parts or abs")
        try:
            return core.bind(primitive, (x, y))
        except ValueError as error:
            _shape_error(primitive, (x._value, y._value), error)
    op.__name__ = name
    op.__doc__ = f"Elementwise ``{ufunc}`` with broadcasting; a bool Tensor, not differentiable."
    op.primitive = primitive  # type: ignore[attr-defined]  # read by vmap
    return op


equal: _Binary = _compare("equal", "equal")
not_equal: _Binary = _compare("not_equal", "not_equal")
less: _Binary = _compare("less", "less")
less_equal: _Binary = _compare("less_equal", "less_equal")
greater: _Binary = _compare("greater", "greater")
greater_equal: _Binary = _compare("greater_equal", "greater_equal")
logical_and: _Binary = _compare("logical_and", "logical_and")
logical_or: _Binary = _compare("logical_or", "logical_or")
_LOGICAL_NOT = core.Primitive("logical_not", lambda values, attrs: _backend.module_of(
    values[0]).logical_not(values[0]))


def logical_not(x: TensorLike) -> Tensor:
    """Elementwise logical not of a bool Tensor."""
    x = tensor_arg(x, "logical_not")
    if x.dtype != numpy.bool_:
        raise TypeError(f"logical_not: x must be bool, got {x.dtype}")
    return core.bind(_LOGICAL_NOT, (x,))


# ======================================================================== complex numbers
# Gradients follow TensorFlow: for a real loss L of z = x + iy, the gradient is
# dL/dx + i dL/dy (docs/dtypes.md); holomorphic ops above take g * conj(f'(z)).

_COMPLEX_OF = {numpy.dtype(numpy.float32): numpy.dtype(numpy.complex64),
               numpy.dtype(numpy.float64): numpy.dtype(numpy.complex128)}


def _complex_input(op: str, x: TensorLike, arg: str = "x") -> Tensor:
    """A Tensor argument of a complex op: numeric, not promoted."""
    x = tensor_arg(x, op, arg)
    if x.dtype.kind not in "fciu":
        raise TypeError(f"{op}: {arg} has dtype {x.dtype}; expected a complex or real tensor")
    return x


# real and imag copy: a strided view would hold the whole complex buffer
_REAL = core.Primitive(
    "real", lambda values, attrs: values[0].real.copy(),
    lambda g, saved, attrs, needs: (complex(g, zeros_like(g)),),
    lambda tangents, saved, out, attrs: real(tangents[0]))
_IMAG = core.Primitive(
    "imag", lambda values, attrs: values[0].imag.copy(),
    lambda g, saved, attrs, needs: (complex(zeros_like(g), g),),
    lambda tangents, saved, out, attrs: imag(tangents[0]))
_CONJ = core.Primitive(
    "conj", lambda values, attrs: _backend.module_of(values[0]).conjugate(values[0]),
    lambda g, saved, attrs, needs: (conj(g),),
    lambda tangents, saved, out, attrs: conj(tangents[0]))


def real(input: TensorLike) -> Tensor:  # noqa: A002 (TF's argument name)
    """The real part of a complex tensor (a real tensor is returned as is), as ``tf.math.real``.

    The gradient of a real loss ``L`` with respect to a complex ``z`` is ``dL/dRe(z) +
    i dL/dIm(z)`` (TensorFlow's convention, see docs/dtypes.md): here ``complex(g, 0)``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.real(ad.constant([1 + 2j, 3 - 4j])).numpy()
    array([1., 3.])
    """
    x = _complex_input("real", input, "input")
    return core.bind(_REAL, (x,)) if x.dtype.kind == "c" else x


def imag(input: TensorLike) -> Tensor:  # noqa: A002 (TF's argument name)
    """The imaginary part of a complex tensor (zeros for a real one), as ``tf.math.imag``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.imag(ad.constant([1 + 2j, 3 - 4j], dtype="complex64")).numpy()
    array([ 2., -4.], dtype=float32)
    """
    x = _complex_input("imag", input, "input")
    return core.bind(_IMAG, (x,)) if x.dtype.kind == "c" else zeros_like(x)


def conj(x: TensorLike) -> Tensor:
    """The complex conjugate (a real tensor is returned as is), as ``tf.math.conj``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.conj(ad.constant([1 + 2j])).numpy()
    array([1.-2.j])
    """
    x = _complex_input("conj", x)
    return core.bind(_CONJ, (x,)) if x.dtype.kind == "c" else x


def _complex_impl(values, attrs):
    re, im = values
    xp = _backend.module_of(re)
    out = xp.empty(numpy.broadcast_shapes(re.shape, im.shape), _COMPLEX_OF[re.dtype])
    out.real[...] = re
    out.imag[...] = im
    return out


def _complex_vjp(g, saved, attrs, needs):
    re_shape, im_shape = saved
    return (sum_to_shape(real(g), re_shape) if needs[0] else None,
            sum_to_shape(imag(g), im_shape) if needs[1] else None)


def _complex_jvp(tangents, saved, out, attrs):
    t_re, t_im = tangents
    shape = out.shape
    t_re = zeros(shape, t_im.dtype, t_im.backend) if t_re is None else broadcast_to(t_re, shape)
    t_im = zeros(shape, t_re.dtype, t_re.backend) if t_im is None else broadcast_to(t_im, shape)
    return complex(t_re, t_im)


_COMPLEX = core.Primitive("complex", _complex_impl, _complex_vjp, _complex_jvp,
                          save=lambda inputs, out, attrs: (inputs[0].shape, inputs[1].shape))


def complex(real: TensorLike, imag: TensorLike) -> Tensor:  # noqa: A001 (TF's name)
    """``real + i imag`` from two float32 (complex64) or float64 (complex128) tensors, with
    broadcasting, as ``tf.complex``; the gradients are ``real(g)`` and ``imag(g)``.

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.complex(ad.constant([1.0, 2.0]), ad.constant([3.0, -1.0])).numpy()
    array([1.+3.j, 2.-1.j], dtype=complex64)
    """
    re = tensor_arg(real, "complex", "real")
    im = convert_like(imag, re, "complex")
    same_backend("complex", (re, im))
    if re.dtype != im.dtype or re.dtype not in _COMPLEX_OF:
        raise TypeError(f"complex: real has dtype {re.dtype} and imag has dtype {im.dtype}; "
                        f"expected both float32 or both float64")
    try:
        numpy.broadcast_shapes(re.shape, im.shape)
    except ValueError:
        raise ValueError(f"complex: real has shape {re.shape} and imag has shape {im.shape}, "
                         f"which do not broadcast") from None
    return core.bind(_COMPLEX, (re, im))


def angle(input: TensorLike) -> Tensor:  # noqa: A002 (TF's argument name)
    """The argument of a complex number, ``atan2(imag, real)``, as ``tf.math.angle`` (a real
    tensor gives pi where it is negative, else 0).

    Examples
    --------
    >>> import gpuad as ad
    >>> ad.math.angle(ad.constant([1j, -1.0 + 0j])).numpy()
    array([1.57079633, 3.14159265])
    """
    x = _complex_input("angle", input, "input")
    if x.dtype.kind in "iu":
        raise TypeError(f"angle: input has dtype {x.dtype}; expected a floating or complex "
                        f"tensor, as TensorFlow")
    if x.dtype.kind != "c":
        return where(less(x, 0), numpy.pi * ones_like(x), zeros_like(x))
    return atan2(imag(x), real(x))  # atan2's gradients, through imag and real: TF's


def _nonzero(out):  # |z| with 1 where it is 0: the derivatives are 0 there, as TF's div_no_nan
    return where(equal(out, 0), ones_like(out), out)


def _complex_abs_vjp(g, saved, attrs, needs):
    z, out = saved
    return (complex(g / _nonzero(out), zeros_like(g)) * z,)


def _complex_abs_jvp(tangents, saved, out_aval, attrs):
    z, out = saved
    return real(conj(z) * tangents[0]) / _nonzero(out)


_COMPLEX_ABS = core.Primitive(
    "abs (complex)", lambda values, attrs: _backend.module_of(values[0]).abs(values[0]),
    _complex_abs_vjp, _complex_abs_jvp, save=lambda inputs, out, attrs: (inputs[0], out))
_COMPLEX_OVERRIDES["abs"] = lambda x: core.bind(_COMPLEX_ABS, (x,))  # complex -> real
_GPUAD_NS.update(conj=conj)
