"""
Newton's method with an exact Hessian
=====================================

Newton's method on the two-dimensional Rosenbrock function, with the gradient from
``ad.value_and_grad`` and the exact Hessian from ``ad.hessian`` (reverse over reverse).
"""
import matplotlib.pyplot as plt
import numpy as np

import gpuad as ad


def rosenbrock(p):
    return 100.0 * (p[1] - p[0] ** 2) ** 2 + (1.0 - p[0]) ** 2


value_and_grad, hessian = ad.value_and_grad(rosenbrock), ad.hessian(rosenbrock)
p = ad.constant([-1.2, 1.0], dtype="float64")
path = [p.numpy()]
for step in range(20):
    value, g = value_and_grad(p)
    H = hessian(p).numpy()
    dp = np.linalg.solve(H, g.numpy())
    t = 1.0  # backtracking keeps each step downhill
    while float(rosenbrock(p - t * dp)) > float(value) and t > 1e-8:
        t /= 2
    p = ad.constant(p.numpy() - t * dp)
    path.append(p.numpy())
    print(f"step {step:2d}  f = {float(value):.3e}  |grad| = {np.linalg.norm(g.numpy()):.2e}")
    if np.linalg.norm(g.numpy()) < 1e-12:
        break

X, Y = np.meshgrid(np.linspace(-1.5, 1.5, 200), np.linspace(-0.5, 1.5, 200))
fig, ax = plt.subplots(figsize=(6, 4))
ax.contour(X, Y, np.log1p(100 * (Y - X ** 2) ** 2 + (1 - X) ** 2), levels=20, cmap="Greys")
path = np.array(path)
ax.plot(path[:, 0], path[:, 1], "o-", color="C3", label="Newton iterates")
ax.plot(1, 1, "*", color="C2", markersize=14, label="minimum (1, 1)")
ax.legend()
ax.set_title(f"Rosenbrock: {len(path) - 1} Newton steps")
fig.tight_layout()
plt.show()
