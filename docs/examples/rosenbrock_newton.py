"""Newton's method on the Rosenbrock function in 50 dimensions, with gpuad's exact Hessian.

    f(x) = sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2,   minimum f = 0 at x = (1, ..., 1)

Run: python docs/examples/rosenbrock_newton.py
"""
import numpy as np

import gpuad as ad


def rosenbrock(x):
    return ad.reduce_sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def newton(x, steps=30):
    value_and_grad, hess = ad.value_and_grad(rosenbrock), ad.hessian(rosenbrock)
    for step in range(steps):
        value, g = value_and_grad(x)
        H = hess(x).numpy()
        shift = max(0.0, -np.linalg.eigvalsh(H).min()) + 1e-6  # make the step a descent one
        dx = np.linalg.solve(H + shift * np.eye(len(H)), g.numpy())
        t = 1.0  # backtracking line search keeps each step downhill
        while float(rosenbrock(x - t * dx)) > float(value) and t > 1e-6:
            t /= 2
        x = ad.constant(x.numpy() - t * dx)
        print(f"step {step:2d}  f = {float(value):.3e}  |grad| = {np.linalg.norm(g.numpy()):.2e}")
        if np.linalg.norm(g.numpy()) < 1e-10:
            break
    return x


if __name__ == "__main__":
    x = newton(ad.constant(0.8 + 0.1 * np.cos(np.arange(50))))
    print("distance to the minimum:", np.abs(x.numpy() - 1).max())
