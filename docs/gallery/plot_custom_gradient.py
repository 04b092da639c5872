"""
A numerically stable gradient with ``custom_gradient``
======================================================

``log(1 + exp(x))`` written naively overflows for large ``x``: its value is ``inf`` and the
gradient ``exp(x) / (1 + exp(x))`` is ``inf / inf = nan``.  ``ad.custom_gradient`` supplies
the stable derivative ``sigmoid(x)`` while the forward pass uses a stable formula, exactly as
``tf.custom_gradient``.
"""
import matplotlib.pyplot as plt

import gpuad as ad


def log1pexp_naive(x):
    return ad.log(1.0 + ad.exp(x))


@ad.custom_gradient
def log1pexp(x):
    def grad(upstream):
        return upstream * ad.sigmoid(x)
    return ad.softplus(x), grad


x = ad.lin_space(-20.0, 120.0, 300)
grads = {}
for name, fn in [("naive", log1pexp_naive), ("custom_gradient", log1pexp)]:
    with ad.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    grads[name] = tape.gradient(y, x).numpy()
    print(f"{name:16s} gradient at x = 120: {grads[name][-1]}")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(x.numpy(), grads["custom_gradient"], label="custom_gradient: sigmoid(x)", lw=3)
ax.plot(x.numpy(), grads["naive"], "--", label="naive (nan where exp overflows)")
ax.set_xlabel("x")
ax.set_ylabel("d/dx log(1 + exp(x))")
ax.legend()
fig.tight_layout()
plt.show()
