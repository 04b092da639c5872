"""ad.optimizers against Keras 3's update equations, written out here in float64 NumPy, on
fixed gradients over several steps; every optimizer, option, clipping mode and schedule."""
import math
import warnings

import numpy as np
import pytest

import gpuad as ad
from gpuad.optimizers import schedules

STEPS = 4
RNG = np.random.default_rng(7)
SHAPES = [(3, 4), (5,)]
INIT = [RNG.standard_normal(s) for s in SHAPES]
GRADS = [[RNG.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]


def lr_at(lr, t):  # t: iterations before the step
    return lr(t) if callable(lr) else lr


def clip(grads, clipnorm=None, clipvalue=None, global_clipnorm=None, **_):
    if clipnorm:
        return [g * clipnorm / max(np.sqrt(np.sum(g * g)), clipnorm) for g in grads]
    if global_clipnorm:
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        return [g * global_clipnorm * min(1 / norm, 1 / global_clipnorm) for g in grads]
    if clipvalue:
        return [np.clip(g, -clipvalue, clipvalue) for g in grads]
    return grads


def reference(kind, lr, options):
    """Keras 3's update_step (and base_optimizer's weight decay), in float64."""
    ws = [w.copy() for w in INIT]
    state = [{} for _ in ws]
    wd = options.get("weight_decay", 0.004 if kind == "AdamW" else None)
    for t in range(STEPS):
        rate = lr_at(lr, t)
        for w, g, s in zip(ws, clip(GRADS[t], **options), state):
            if wd:
                w -= w * wd * rate
            if kind == "SGD":
                mu = options.get("momentum", 0.0)
                if mu:
                    s["m"] = s.get("m", 0) * mu - g * rate
                    w += s["m"] * mu - g * rate if options.get("nesterov") else s["m"]
                else:
                    w -= g * rate
            elif kind in ("Adam", "AdamW"):
                b1, b2, eps = 0.9, 0.999, 1e-7
                s["m"] = s.get("m", 0) + (g - s.get("m", 0)) * (1 - b1)
                s["v"] = s.get("v", 0) + (g * g - s.get("v", 0)) * (1 - b2)
                v = s["v"]
                if options.get("amsgrad"):
                    s["vhat"] = v = np.maximum(s.get("vhat", 0), s["v"])
                alpha = rate * math.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
                w -= s["m"] * alpha / (np.sqrt(v) + eps)
            elif kind == "RMSprop":
                rho, eps, mu = options.get("rho", 0.9), 1e-7, options.get("momentum", 0.0)
                s["v"] = rho * s.get("v", 0) + (1 - rho) * g * g
                if options.get("centered"):
                    s["a"] = rho * s.get("a", 0) + (1 - rho) * g
                    den = s["v"] - s["a"] ** 2 + eps
                else:
                    den = s["v"] + eps
                inc = rate * g / np.sqrt(den)
                if mu > 0:
                    s["m"] = mu * s.get("m", 0) + inc
                    w -= s["m"]
                else:
                    w -= inc
            elif kind == "Adagrad":
                s["acc"] = s.get("acc", options.get("initial_accumulator_value", 0.1)) + g * g
                w -= rate * g / np.sqrt(s["acc"] + 1e-7)
    return ws


def run(kind, lr, options, dtype=np.float32, step=None):
    ws = [ad.Variable(w.astype(dtype)) for w in INIT]
    opt = getattr(ad.optimizers, kind)(learning_rate=lr, **options)
    for t in range(STEPS):
        grads = [ad.constant(g.astype(dtype)) for g in GRADS[t]]
        if step is None:
            opt.apply_gradients(zip(grads, ws))
        else:
            step(opt, grads, ws)
    return ws, opt


CASES = [
    ("SGD", {}), ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {}), ("Adam", {"amsgrad": True}), ("AdamW", {}), ("AdamW", {"weight_decay": 0.1}),
    ("Adam", {"weight_decay": 0.05}),
    ("RMSprop", {}), ("RMSprop", {"momentum": 0.5}), ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "rho": 0.8}),
    ("Adagrad", {}), ("Adagrad", {"initial_accumulator_value": 1.0}),
    ("SGD", {"momentum": 0.9, "clipnorm": 0.5}), ("Adam", {"clipvalue": 0.3}),
    ("RMSprop", {"global_clipnorm": 1.0}), ("Adagrad", {"global_clipnorm": 100.0}),
]


@pytest.mark.parametrize("kind,options", CASES, ids=[f"{k}-{o}" for k, o in CASES])
def test_matches_keras_equations(kind, options):
    ws, opt = run(kind, 0.05, options)
    for w, expected in zip(ws, reference(kind, 0.05, options)):
        np.testing.assert_allclose(w.numpy(), expected, rtol=2e-5, atol=2e-6)
    assert int(opt.iterations) == STEPS


def test_float64_variables_are_exact():
    ws, _ = run("Adam", 0.05, {"amsgrad": True}, dtype=np.float64)
    for w, expected in zip(ws, reference("Adam", 0.05, {"amsgrad": True})):
        np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)


SCHEDULES = [
    (schedules.ExponentialDecay(0.1, 2, 0.5), lambda t: 0.1 * 0.5 ** (t / 2)),
    (schedules.ExponentialDecay(0.1, 2, 0.5, staircase=True),
     lambda t: 0.1 * 0.5 ** math.floor(t / 2)),
    (schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.05, 0.01]),
     lambda t: 0.1 if t <= 1 else 0.05 if t <= 2 else 0.01),
    (schedules.CosineDecay(0.1, 3, alpha=0.1),
     lambda t: 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 3) / 3)) + 0.1)),
    (schedules.CosineDecay(0.01, 2, warmup_target=0.1, warmup_steps=2),
     lambda t: 0.01 + (0.1 - 0.01) * t / 2 if t < 2 else
     0.1 * 0.5 * (1 + math.cos(math.pi * min(t - 2, 2) / 2))),
]


@pytest.mark.parametrize("schedule,closed_form", SCHEDULES)
def test_schedules(schedule, closed_form):
    for t in range(6):
        assert float(schedule(t)) == pytest.approx(closed_form(t), rel=1e-6, abs=1e-9)
    ws, _ = run("Adam", schedule, {})
    for w, expected in zip(ws, reference("Adam", closed_form, {})):
        np.testing.assert_allclose(w.numpy(), expected, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("kind,options", [
    ("Adam", {"amsgrad": True}), ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5}), ("AdamW", {"global_clipnorm": 1.0}),
    ("Adagrad", {"clipnorm": 0.5})])
def test_traced_step_matches_eager(kind, options):
    schedule = schedules.ExponentialDecay(0.05, 3, 0.7)

    @ad.function
    def step(opt, grads, ws):
        opt.apply_gradients(zip(grads, ws))

    ws, opt = run(kind, schedule, options, step=step)
    assert step.experimental_get_tracing_count() == 1
    expected = reference(kind, lambda t: 0.05 * 0.7 ** (t / 3), options)
    for w, e in zip(ws, expected):
        np.testing.assert_allclose(w.numpy(), e, rtol=2e-5, atol=2e-6)
    assert int(opt.iterations) == STEPS


def test_traced_training_step_with_tape():
    w = ad.Variable([1.0, -2.0])
    opt = ad.optimizers.SGD(learning_rate=0.1, momentum=0.5)

    @ad.function
    def train(x):
        with ad.GradientTape() as tape:
            loss = ad.reduce_sum(w * w * x)
        opt.apply_gradients(zip(tape.gradient(loss, [w]), [w]))
        return loss

    x = ad.constant([1.0, 1.0])
    expected, m = np.array([1.0, -2.0]), 0.0
    for _ in range(3):
        train(x)
        m = m * 0.5 - 2 * expected * 0.1
        expected = expected + m
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    opt.learning_rate = 0.0  # a Variable: the replay reads the new value, no retrace
    before = w.numpy()
    train(x)
    np.testing.assert_allclose(w.numpy(), before + m * 0.5, rtol=1e-6)
    assert train.experimental_get_tracing_count() == 1


def test_values_read_before_a_step_keep_their_value():
    w = ad.Variable([1.0, 2.0])
    before = w.read_value()
    with ad.GradientTape() as tape:
        y = ad.reduce_sum(w * w)
    opt = ad.optimizers.Adam(0.1)
    opt.apply_gradients(zip(tape.gradient(y, [w]), [w]))
    np.testing.assert_array_equal(before.numpy(), [1.0, 2.0])
    assert not np.allclose(w.numpy(), [1.0, 2.0])


def test_minimize_and_variables():
    w = ad.Variable([3.0])
    opt = ad.optimizers.SGD(0.25, momentum=0.5)
    opt.minimize(lambda: ad.reduce_sum(w * w), [w])
    np.testing.assert_allclose(w.numpy(), [1.5])
    with ad.GradientTape() as tape:
        loss = ad.reduce_sum(w * w)
    opt.minimize(loss, [w], tape=tape)
    np.testing.assert_allclose(w.numpy(), [1.5 + (-1.5 * 0.5 - 0.75)])
    assert [v.name for v in opt.variables] == ["iteration", "learning_rate", "Variable_momentum"]
    assert int(opt.iterations) == 2


def test_none_gradients_are_skipped_with_a_warning():
    a, b = ad.Variable([1.0], name="a"), ad.Variable([1.0], name="b")
    opt = ad.optimizers.SGD(0.5)
    with pytest.warns(UserWarning, match=r"\['b'\]"):
        opt.apply_gradients([(ad.constant([1.0]), a), (None, b)])
    assert a.numpy()[0] == 0.5 and b.numpy()[0] == 1.0


def test_bad_input_is_named():
    w = ad.Variable([1.0, 2.0], name="w")
    with pytest.raises(ValueError, match=r"SGD.apply_gradients: gradient of shape \(3,\) for "
                                         r"variable 'w' of shape \(2,\)"):
        ad.optimizers.SGD().apply_gradients([(ad.constant([1.0, 2.0, 3.0]), w)])
    with pytest.raises(ValueError, match="only one of `clipnorm`"):
        ad.optimizers.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="not recognized"):
        ad.optimizers.Adam(beta1=0.9)
    with pytest.raises(ValueError, match="learning_rate"):
        ad.optimizers.Adam(learning_rate="fast")
    with pytest.raises(ValueError, match="weight_decay"):
        ad.optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1])
    with pytest.raises(TypeError, match="cannot be set"):
        ad.optimizers.SGD(schedules.ExponentialDecay(0.1, 1, 0.5)).learning_rate = 0.1


def test_eager_steps_update_the_buffers_in_place():
    w = ad.Variable(np.ones(1000, np.float32))
    opt = ad.optimizers.Adam(0.1)
    g = ad.constant(np.full(1000, 0.5, np.float32))
    opt.apply_gradients([(g, w)])
    buffers = [v._value for v in [w] + opt.variables[2:]]
    addresses = [b.__array_interface__["data"][0] for b in buffers]
    del buffers
    opt.apply_gradients([(g, w)])
    assert [v._value.__array_interface__["data"][0] for v in [w] + opt.variables[2:]] == \
        addresses


@pytest.mark.parametrize("statements", [
    ("m = m * c + m * m", "var = var - m"),
    ("m = m - (m * c - g) / sqrt(m * m + c)", "var = var * m - var"),
    ("m = maximum(g, m) - m", "var = c - (var + m) * (g - var)"),
    ("m = -m", "var = sqrt(var * var) + m / c"),
])
def test_rule_compiler_matches_plain_numpy(statements):
    """The in-place NumPy code (writing into a target before or after reading it) against the
    statements evaluated on fresh arrays."""
    from gpuad.optimizers.rules import UpdateRule
    rng = np.random.default_rng(1)
    var, g, m = rng.uniform(0.5, 2, (3, 5, 7))
    env = {"var": var.copy(), "g": g, "m": m.copy(), "c": 0.7, "sqrt": np.sqrt,
           "maximum": np.maximum}
    for statement in statements:
        target, expr = statement.split(" = ")
        env[target] = eval(expr, env)
    rule = UpdateRule(statements)
    slots = {"m": m.copy()}
    got = var.copy()
    rule.numpy_update(got, g, slots, {"c": 0.7}, lambda level: np.full((5, 7), np.nan))
    np.testing.assert_allclose(got, env["var"], rtol=1e-14)
    np.testing.assert_allclose(slots["m"], env["m"], rtol=1e-14)


def test_numpy_update_makes_no_temporaries():
    """The generated NumPy update writes every ufunc into the variable, a slot or a scratch
    buffer (``out=``)."""
    from gpuad.optimizers import _rule
    rule = _rule(ad.optimizers.Adam(amsgrad=True)._statements())
    calls = [line for line in rule.numpy_source.splitlines()[1:]]
    assert calls and all("out=" in line or "copyto" in line for line in calls), \
        rule.numpy_source
    assert rule.scratch_levels <= 2


@pytest.mark.gpu
def test_cupy_kernel_matches_numpy():
    from gpuad import backends
    if not backends.CUDA_AVAILABLE:
        pytest.skip("no CUDA device")
    for kind, options in CASES:
        with ad.backend("cupy"), warnings.catch_warnings():
            ws, _ = run(kind, 0.05, options)
        for w, expected in zip(ws, reference(kind, 0.05, options)):
            assert w.backend == "cupy"
            np.testing.assert_allclose(w.numpy(), expected, rtol=2e-5, atol=2e-6)
    step = ad.function(lambda opt, grads, ws: opt.apply_gradients(zip(grads, ws)))
    with ad.backend("cupy"):  # the traced statements: one kernel each
        ws, _ = run("Adam", 0.05, {"amsgrad": True, "weight_decay": 0.1}, step=step)
    for w, expected in zip(ws, reference("Adam", 0.05, {"amsgrad": True, "weight_decay": 0.1})):
        np.testing.assert_allclose(w.numpy(), expected, rtol=2e-5, atol=2e-6)
