"""Optimizers with Keras 3's names, arguments and update rules (``tf.keras.optimizers``).

Each optimizer's per-variable update is one :class:`~gpuad.optimizers.rules.UpdateRule`: run
eagerly it updates the variable and its slots in place (in-place NumPy ufuncs; one CuPy
kernel per variable); under ``gpuad.function`` it runs as recorded ops (one per statement
of the rule, each the same NumPy code or CUDA kernel) and ``Variable.assign``, which the
trace replays.  Slots, ``iterations`` and a float learning rate are
gpuad Variables, listed by ``variables`` and saved by :class:`gpuad.train.Checkpoint`.

Examples
--------
>>> import gpuad as ad
>>> w = ad.Variable([1.0, 2.0])
>>> opt = ad.optimizers.SGD(learning_rate=0.1)
>>> with ad.GradientTape() as tape:
...     loss = ad.reduce_sum(w * w)
>>> opt.apply_gradients(zip(tape.gradient(loss, [w]), [w])).numpy()
array(1)
>>> w.numpy()
array([0.8, 1.6], dtype=float32)
"""
import hashlib
import sys
import typing

import numpy

from .. import backends, core, user_warnings
from ..array_ops import cast, convert_to_tensor, reduce_sum
from ..ops import clip_by_value, maximum, minimum, sqrt, where
from ..tape import GradientTape
from ..tensor import Tensor
from ..variables import Variable, _new_variable
from . import schedules
from .rules import UpdateRule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "schedules"]

_rules = {}  # statements -> UpdateRule (compiled once per process)


# what an optimizer's learning_rate may be: a number, a schedule or a callable
_LearningRate = typing.Union[float, schedules.LearningRateSchedule,
                             typing.Callable[[], typing.Any]]


def _rule(statements):
    rule = _rules.get(statements)
    if rule is None:
        digest = hashlib.sha1("\n".join(statements).encode()).hexdigest()[:10]
        rule = _rules[statements] = UpdateRule(statements, f"gpuad_optimizer_{digest}")
    return rule


def _references(holder):
    value = holder._value
    return sys.getrefcount(value)


class _Holder:
    __slots__ = ("_value",)


def _owned_references():
    """The count :func:`_references` gives for an array that only its holder refers to,
    measured the same way (interpreters differ in what the count includes)."""
    holder = _Holder()
    holder._value = numpy.empty(1)
    return _references(holder)


_OWNED_REFERENCES = _owned_references()


def _owned(var):
    """``var``'s array, copied first unless only the variable refers to it: a Tensor read
    earlier (or a tape's saved value) keeps its value when the update writes in place."""
    if var._value.base is not None or _references(var) > _OWNED_REFERENCES:
        var._value = var._value.copy()
    return var._value


def loss_gradients(loss, var_list, tape, no_tape):
    """Keras's ``minimize`` up to the update: ``(gradients, variables)`` of ``loss`` (a Tensor
    that ``tape`` recorded, or a function of no arguments) over ``var_list`` (Variables or a
    function returning them); ``no_tape``: the ValueError's message for a Tensor loss without
    a tape."""
    if tape is None:
        if not callable(loss):
            raise ValueError(no_tape)
        with GradientTape() as tape:
            var_list = var_list() if callable(var_list) else var_list
            tape.watch(var_list)
            loss = loss()
    elif callable(loss):
        with tape:
            loss = loss()
    var_list = list(var_list() if callable(var_list) else var_list)
    return tape.gradient(loss, var_list), var_list


class Optimizer:
    """The base of gpuad's optimizers, as ``keras.optimizers.Optimizer``.

    A subclass gives :meth:`_statements` (its update rule), :meth:`_coefficients` (the
    numbers the rule reads, per step) and its slots' initial value.

    Parameters
    ----------
    learning_rate : float or schedules.LearningRateSchedule or callable
        A float becomes a float32 Variable (settable: ``opt.learning_rate = 0.01``); a
        schedule is called with ``iterations``; another callable with no argument.
    weight_decay : float, optional
        Before each update, ``var -= var * weight_decay * learning_rate`` (decoupled, as
        Keras).
    clipnorm, clipvalue, global_clipnorm : float, optional
        At most one: clip each gradient to this L2 norm, each element to
        ``[-clipvalue, clipvalue]``, or all gradients together to this global norm.
    loss_scale_factor : float, optional
        Gradients are divided by it first.
    name : str, optional
    """

    _slot_initial_value = 0.0

    def __init__(self, learning_rate: _LearningRate,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 loss_scale_factor: float | None = None,
                 gradient_accumulation_steps: int | None = None, name: str | None = None,
                 **kwargs: typing.Any) -> None:
        kind = type(self).__name__
        if kwargs.pop("decay", None) is not None:
            user_warnings.warn(f"{kind}: argument `decay` is no longer supported and is "
                               f"ignored")
        if kwargs:
            raise ValueError(f"{kind}: argument(s) not recognized: {kwargs}")
        if use_ema or gradient_accumulation_steps:
            raise NotImplementedError(f"{kind}: use_ema and gradient_accumulation_steps are "
                                      f"not supported by gpuad")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{kind}: only one of `clipnorm`, `clipvalue` and "
                             f"`global_clipnorm` can be set. Received: clipnorm={clipnorm}, "
                             f"clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        self.name = name or kind.lower()
        self.weight_decay, self.clipnorm = weight_decay, clipnorm
        self.clipvalue, self.global_clipnorm = clipvalue, global_clipnorm
        self.loss_scale_factor = loss_scale_factor
        self.iterations = Variable(numpy.int64(0), trainable=False, name="iteration")
        self._variables = [self.iterations]
        self._learning_rate: typing.Any = None  # a Variable, a schedule or a callable
        if isinstance(learning_rate, schedules.LearningRateSchedule) or \
                callable(learning_rate):
            self._learning_rate = learning_rate
        elif isinstance(learning_rate, (int, float, numpy.number)) and \
                not isinstance(learning_rate, bool):
            self._learning_rate = Variable(numpy.float32(learning_rate), trainable=False,
                                           name="learning_rate")
            self._variables.append(self._learning_rate)
        else:
            raise ValueError(f"{kind}: argument `learning_rate` should be a float, a "
                             f"LearningRateSchedule or a callable. Received instead: "
                             f"learning_rate={learning_rate!r}")
        self._slots = {}      # Variable._id -> {slot name: Variable}
        self._scratch = {}    # (shape, dtype) -> scratch arrays of the NumPy updates

    # ------------------------------------------------------------------ public interface
    @property
    def learning_rate(self) -> Tensor:
        """The current learning rate as a float32 Tensor (a schedule's value at
        ``iterations``)."""
        lr = self._learning_rate
        if isinstance(lr, Variable):
            return lr.read_value()
        value = lr(self.iterations) if isinstance(lr, schedules.LearningRateSchedule) else lr()
        return convert_to_tensor(value, dtype=numpy.float32) \
            if not isinstance(value, Tensor) else value

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if not isinstance(self._learning_rate, Variable):
            raise TypeError(f"{type(self).__name__}: this optimizer was created with a "
                            f"schedule or a callable as its learning rate, which cannot be "
                            f"set; create it with a float learning rate to set it")
        self._learning_rate.assign(numpy.float32(value))

    @property
    def variables(self) -> list[Variable]:
        """``iterations``, the learning-rate Variable (for a float rate) and every slot, in
        the order made."""
        return list(self._variables)

    def build(self, var_list: typing.Iterable[Variable]) -> None:
        """Create the slots of ``var_list`` (done by the first ``apply_gradients``)."""
        for var in var_list:
            self._slots_of(var)

    def apply_gradients(self, grads_and_vars: typing.Iterable[
            tuple[typing.Any, Variable]]) -> Variable:
        """Apply ``(gradient, variable)`` pairs; None gradients are skipped (with a warning
        naming the variables, as Keras). Returns ``iterations``."""
        pairs = list(grads_and_vars)
        if not pairs:
            return self.iterations
        for _, var in pairs:
            if not isinstance(var, Variable):
                raise TypeError(f"{type(self).__name__}.apply_gradients: expected gpuad "
                                f"Variables to update, got {type(var).__name__}")
        missing = [var.name for g, var in pairs if g is None]
        pairs = [(g, var) for g, var in pairs if g is not None]
        if not pairs:
            raise ValueError(f"{type(self).__name__}.apply_gradients: no gradients provided "
                             f"for any variable ({missing})")
        if missing:
            user_warnings.warn(f"Gradients do not exist for variables {missing} when "
                               f"minimizing the loss.")
        grads = [self._gradient_of(g, var) for g, var in pairs]
        variables = [var for _, var in pairs]
        if self.loss_scale_factor is not None:
            grads = [g / self.loss_scale_factor for g in grads]
        grads = self._clip(grads)
        lr = self.learning_rate
        step = self.iterations + 1
        coefficients = {}  # per dtype
        traced = core.observed()  # a tracer must see every op: the ops path
        for g, var in zip(grads, variables):
            if var.dtype not in coefficients:
                lr_d, step_d = cast(lr, var.dtype), cast(step, var.dtype)
                made = self._coefficients(lr_d, step_d)
                made["weight_decay_lr"] = 0.0 if self.weight_decay is None else \
                    lr_d * self.weight_decay
                coefficients[var.dtype] = made
            self._update(var, g, coefficients[var.dtype], traced)
        self.iterations.assign_add(numpy.int64(1))
        return self.iterations

    def minimize(self, loss: typing.Any, var_list: typing.Any,
                 tape: GradientTape | None = None) -> Variable:
        """Minimize ``loss`` over ``var_list`` by one step, as ``tf.keras``'s optimizer.

        ``loss``: a Tensor computed under ``tape``, or (without a tape) a callable of no
        argument; ``var_list``: Variables or a callable returning them. Returns
        ``iterations``.
        """
        grads, var_list = loss_gradients(
            loss, var_list, tape, f"{type(self).__name__}.minimize: `tape` is required when "
                                  f"`loss` is a Tensor (a callable loss needs none)")
        return self.apply_gradients(zip(grads, var_list))

    def exclude_from_weight_decay(self, var_list: typing.Iterable[Variable] | None = None,
                                  var_names: typing.Iterable[str] | None = None) -> None:
        """Exclude Variables (or those whose name contains one of ``var_names``) from weight
        decay, as Keras."""
        self._no_decay = {v._id for v in var_list or ()}
        self._no_decay_names = tuple(var_names or ())

    # ----------------------------------------------------------------------- internals
    def _statements(self):
        raise NotImplementedError

    def _coefficients(self, lr, step):
        """name -> Tensor or float, the per-step numbers the rule reads (``lr``, ``step``:
        0-d Tensors in the variable's dtype)."""
        raise NotImplementedError

    def _slots_of(self, var):
        slots = self._slots.get(var._id)
        if slots is None:
            xp = backends.module_of(var._value)
            slots = self._slots[var._id] = {}
            for name in _rule(self._statements()).slots:
                slot = _new_variable(xp.full(var.shape, self._slot_initial_value, var.dtype),
                                     False, f"{var.name}_{name}")
                slots[name] = slot
                self._variables.append(slot)
        return slots

    def _gradient_of(self, g, var):
        op = f"{type(self).__name__}.apply_gradients"
        g = convert_to_tensor(g, op=op)
        if g.shape != var.shape:
            raise ValueError(f"{op}: gradient of shape {g.shape} for variable '{var.name}' of "
                             f"shape {var.shape}")
        if g.backend != var.backend:
            raise TypeError(f"{op}: gradient on {g.backend} for variable '{var.name}' on "
                            f"{var.backend}")
        if var.dtype.kind not in "fc":
            raise TypeError(f"{op}: variable '{var.name}' has dtype {var.dtype}; only "
                            f"floating variables are trained")
        return g if g.dtype == var.dtype else cast(g, var.dtype)

    def _clip(self, grads):
        if self.clipnorm is not None and self.clipnorm > 0:
            return [self._clip_by_norm(g) for g in grads]
        if self.global_clipnorm is not None and self.global_clipnorm > 0:
            sums = [reduce_sum(g * g) for g in grads]
            wide = max((s.dtype for s in sums), key=lambda d: d.itemsize)
            norm = sqrt(sum(cast(s, wide) for s in sums))
            # inf or nan norm: a nan scale, as Keras
            scale = self.global_clipnorm * minimum(1.0 / norm, 1.0 / self.global_clipnorm) + \
                (norm - norm)
            return [g * cast(scale, g.dtype) for g in grads]
        if self.clipvalue is not None and self.clipvalue > 0:
            return [clip_by_value(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _clip_by_norm(self, g):
        l2sum = reduce_sum(g * g)
        l2norm = where(l2sum > 0, sqrt(where(l2sum > 0, l2sum, 1.0)), l2sum)
        return g * self.clipnorm / maximum(l2norm, self.clipnorm)

    def _decays(self, var):
        if self.weight_decay is None or var._id in getattr(self, "_no_decay", ()):
            return False
        return not any(n in var.name for n in getattr(self, "_no_decay_names", ()))

    def _update(self, var, g, coefficients, traced):
        statements = self._statements()
        if self._decays(var):
            statements = ("var = var - var * weight_decay_lr",) + statements
        rule = _rule(statements)
        slots = self._slots_of(var)
        if traced:
            rule.ops_update(var, g, slots, {c: coefficients[c] for c in rule.coefficients})
            return
        dtype = var.dtype.type
        values = {c: _raw(coefficients[c], var, dtype) for c in rule.coefficients}
        arrays = {name: _owned(slot) for name, slot in slots.items()}
        if var.backend == "cupy":
            rule.cupy_update(_owned(var), g._value, arrays, values)
        else:
            rule.numpy_update(_owned(var), g._value, arrays, values, self._scratch_for(var))

    def _scratch_for(self, var):
        key = (var.shape, var.dtype)
        buffers = self._scratch.setdefault(key, [])

        def scratch(level):
            while len(buffers) <= level:
                buffers.append(numpy.empty(var.shape, var.dtype))
            return buffers[level]
        return scratch


def _raw(value, var, dtype):
    """A coefficient for the eager kernels: a 0-d array of ``var``'s backend (no device
    sync) or a scalar of its dtype."""
    if isinstance(value, Tensor):
        if value.backend == var.backend:
            return value._value
        value = float(value)
    return dtype(value)


class SGD(Optimizer):
    """Gradient descent with momentum, as ``keras.optimizers.SGD``.

    ``m = m * momentum - g * lr; var += m`` (Nesterov: ``var += m * momentum - g * lr``);
    without momentum ``var -= g * lr``.

    Examples
    --------
    >>> import gpuad as ad
    >>> w = ad.Variable([1.0])
    >>> opt = ad.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     _ = opt.apply_gradients([(ad.constant([1.0]), w)])
    >>> w.numpy()  # 1 - 0.1 - (0.9 * 0.1 + 0.1)
    array([0.71], dtype=float32)
    """

    def __init__(self, learning_rate: _LearningRate = 0.01,
                 momentum: float = 0.0, nesterov: bool = False, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
                 loss_scale_factor: float | None = None,
                 gradient_accumulation_steps: int | None = None, name: str | None = "SGD",
                 **kwargs: typing.Any) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        if not isinstance(momentum, (int, float)) or momentum < 0 or momentum > 1:
            raise ValueError(f"SGD: `momentum` must be a float between [0, 1]. Received: "
                             f"momentum={momentum!r}")
        self.momentum, self.nesterov = momentum, bool(nesterov)

    def _statements(self):
        if self.momentum == 0:
            return ("var = var - g * lr",)
        return ("momentum = momentum * mu - g * lr",
                "var = var + momentum * mu - g * lr" if self.nesterov else
                "var = var + momentum")

    def _coefficients(self, lr, step):
        return {"lr": lr, "mu": float(self.momentum)}


class Adam(Optimizer):
    """Adam, as ``keras.optimizers.Adam``.

    ``m += (g - m) * (1 - beta_1); v += (g² - v) * (1 - beta_2);
    var -= m * alpha / (sqrt(v) + epsilon)`` with ``alpha = lr * sqrt(1 - beta_2^t) /
    (1 - beta_1^t)`` at step ``t = iterations + 1``; ``amsgrad`` uses the running maximum of
    ``v`` (slot ``velocity_hat``).

    Examples
    --------
    >>> import gpuad as ad
    >>> w = ad.Variable([1.0, -1.0])
    >>> opt = ad.optimizers.Adam(learning_rate=0.1)
    >>> _ = opt.apply_gradients([(ad.constant([0.5, -2.0]), w)])
    >>> w.numpy().round(5)  # the first step moves each element by lr, against its gradient
    array([ 0.9, -0.9], dtype=float32)
    >>> [v.name for v in opt.variables]
    ['iteration', 'learning_rate', 'Variable_momentum', 'Variable_velocity']
    """

    def __init__(self, learning_rate: _LearningRate = 0.001,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
                 loss_scale_factor: float | None = None,
                 gradient_accumulation_steps: int | None = None, name: str | None = "adam",
                 **kwargs: typing.Any) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad = bool(amsgrad)

    def _statements(self):
        head = ("momentum = momentum + (g - momentum) * one_minus_beta_1",
                "velocity = velocity + (g * g - velocity) * one_minus_beta_2")
        if self.amsgrad:
            return head + ("velocity_hat = maximum(velocity_hat, velocity)",
                           "var = var - momentum * alpha / (sqrt(velocity_hat) + epsilon)")
        return head + ("var = var - momentum * alpha / (sqrt(velocity) + epsilon)",)

    def _coefficients(self, lr, step):
        beta_1_power = self.beta_1 ** step  # a Python float takes step's dtype
        beta_2_power = self.beta_2 ** step
        return {"alpha": lr * sqrt(1 - beta_2_power) / (1 - beta_1_power),
                "one_minus_beta_1": 1 - self.beta_1, "one_minus_beta_2": 1 - self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``keras.optimizers.AdamW``: ``var -= var *
    weight_decay * lr`` before each Adam update.

    Examples
    --------
    >>> import gpuad as ad
    >>> w = ad.Variable([1.0])
    >>> opt = ad.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    >>> _ = opt.apply_gradients([(ad.constant([1.0]), w)])
    >>> w.numpy().round(5)  # 1 - 1 * 0.5 * 0.1, then Adam's first step of lr
    array([0.85], dtype=float32)
    """

    def __init__(self, learning_rate: _LearningRate = 0.001,
                 weight_decay: float | None = 0.004, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 loss_scale_factor: float | None = None,
                 gradient_accumulation_steps: int | None = None, name: str | None = "adamw",
                 **kwargs: typing.Any) -> None:
        if weight_decay is None:
            raise ValueError("AdamW: argument `weight_decay` must be a float. Received: "
                             "weight_decay=None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
                         ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)


class RMSprop(Optimizer):
    """RMSprop, as ``keras.optimizers.RMSprop``.

    ``velocity = rho * velocity + (1 - rho) * g²``; centered: ``average_gradient = rho *
    average_gradient + (1 - rho) * g`` and ``velocity - average_gradient²`` in the
    denominator; ``increment = lr * g / sqrt(velocity + epsilon)``; with momentum
    ``momentum = momentum * mu + increment; var -= momentum``, else ``var -= increment``.

    Examples
    --------
    >>> import gpuad as ad
    >>> w = ad.Variable([1.0])
    >>> opt = ad.optimizers.RMSprop(learning_rate=0.01, rho=0.0)
    >>> _ = opt.apply_gradients([(ad.constant([3.0]), w)])
    >>> w.numpy()  # 1 - 0.01 * 3 / sqrt(9)
    array([0.99], dtype=float32)
    """

    def __init__(self, learning_rate: _LearningRate = 0.001,
                 rho: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-7,
                 centered: bool = False, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, use_ema: bool = False,
                 ema_momentum: float = 0.99, ema_overwrite_frequency: int | None = None,
                 loss_scale_factor: float | None = None,
                 gradient_accumulation_steps: int | None = None, name: str | None = "rmsprop",
                 **kwargs: typing.Any) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        self.rho, self.momentum, self.epsilon = rho, momentum, epsilon
        self.centered = bool(centered)

    def _statements(self):
        statements = ["velocity = velocity * rho + g * g * one_minus_rho"]
        denominator = "velocity + epsilon"
        if self.centered:
            statements.append("average_gradient = average_gradient * rho + g * one_minus_rho")
            denominator = "velocity - average_gradient * average_gradient + epsilon"
        increment = f"lr * g / sqrt({denominator})"
        if self.momentum > 0:
            statements += [f"momentum = momentum * mu + {increment}", "var = var - momentum"]
        else:
            statements.append(f"var = var - {increment}")
        return tuple(statements)

    def _coefficients(self, lr, step):
        return {"lr": lr, "rho": self.rho, "one_minus_rho": 1 - self.rho,
                "epsilon": self.epsilon, "mu": self.momentum}


class Adagrad(Optimizer):
    """Adagrad, as ``keras.optimizers.Adagrad``: ``accumulator += g²;
    var -= lr * g / sqrt(accumulator + epsilon)``, the accumulator starting at
    ``initial_accumulator_value``.

    Examples
    --------
    >>> import gpuad as ad
    >>> w = ad.Variable([1.0])
    >>> opt = ad.optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=0.0,
    ...                             epsilon=0.0)
    >>> _ = opt.apply_gradients([(ad.constant([2.0]), w)])
    >>> w.numpy()  # 1 - 0.1 * 2 / sqrt(4)
    array([0.9], dtype=float32)
    """

    def __init__(self, learning_rate: _LearningRate = 0.001,
                 initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None,
                 loss_scale_factor: float | None = None,
                 gradient_accumulation_steps: int | None = None, name: str | None = "adagrad",
                 **kwargs: typing.Any) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                         gradient_accumulation_steps, name, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon
        self._slot_initial_value = initial_accumulator_value

    def _statements(self):
        return ("accumulator = accumulator + g * g",
                "var = var - lr * g / sqrt(accumulator + epsilon)")

    def _coefficients(self, lr, step):
        return {"lr": lr, "epsilon": self.epsilon}
