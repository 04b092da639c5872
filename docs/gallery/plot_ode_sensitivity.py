"""
Sensitivities of an ODE solution
================================

Integrate a damped oscillator  x'' = -k x - c x'  with a fixed-step Runge-Kutta 4 scheme
written in gpuad ops, and differentiate the whole trajectory with respect to the parameters
``k`` and ``c`` in one reverse pass (discretize-then-differentiate).  The sensitivities are
checked against central differences.
"""
import matplotlib.pyplot as plt
import numpy as np

import gpuad as ad

dt, steps = 0.05, 200


def rhs(state, k, c):
    x, v = state[0], state[1]
    return ad.stack([v, -k * x - c * v])


def trajectory(k, c):
    state = ad.constant([1.0, 0.0], dtype="float64")
    xs = [state[0]]
    for _ in range(steps):
        k1 = rhs(state, k, c)
        k2 = rhs(state + 0.5 * dt * k1, k, c)
        k3 = rhs(state + 0.5 * dt * k2, k, c)
        k4 = rhs(state + dt * k3, k, c)
        state = state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        xs.append(state[0])
    return ad.stack(xs)


k = ad.constant(4.0, dtype="float64")
c = ad.constant(0.3, dtype="float64")
with ad.ForwardAccumulator(k, ad.constant(1.0, dtype="float64")) as acc_k:
    xs = trajectory(k, c)
dx_dk = acc_k.jvp(xs).numpy()
with ad.GradientTape() as tape:
    tape.watch([k, c])
    loss = ad.reduce_sum(trajectory(k, c) ** 2) * dt  # energy-like functional
dloss_dk, dloss_dc = (g.numpy() for g in tape.gradient(loss, [k, c]))

h = 1e-6
central = (trajectory(k + h, c).numpy() - trajectory(k - h, c).numpy()) / (2 * h)
print("forward-mode dx/dk vs central differences, max error:", np.abs(dx_dk - central).max())
loss_of = lambda kk, cc: float(ad.reduce_sum(trajectory(kk, cc) ** 2) * dt)  # noqa: E731
print("reverse-mode dL/dc:", dloss_dc,
      " central:", (loss_of(k, c + h) - loss_of(k, c - h)) / (2 * h))

t = np.arange(steps + 1) * dt
fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
top.plot(t, xs.numpy())
top.set_ylabel("x(t)")
bottom.plot(t, dx_dk, label="dx/dk, forward mode")
bottom.plot(t[::8], central[::8], "o", ms=3, label="central differences")
bottom.set_xlabel("t")
bottom.legend()
fig.tight_layout()
plt.show()
