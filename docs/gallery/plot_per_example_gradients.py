"""
Per-example gradients with ``vmap``
===================================

``ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))`` computes the gradient of the loss of each
example separately, as batched ops rather than a Python loop — what differentially private
SGD needs to clip each example's gradient before averaging.  The result is checked against
a loop over the examples.
"""
import matplotlib.pyplot as plt
import numpy as np

import gpuad as ad

rng = np.random.default_rng(0)
x = rng.standard_normal((256, 20)).astype(np.float32)
y = (x[:, 0] + 0.5 * x[:, 1] ** 2 > 0.5).astype(np.float32)
flip = rng.random(256) < 0.1  # some label noise
y[flip] = 1 - y[flip]
params = {"w1": ad.constant(rng.standard_normal((20, 32)).astype(np.float32) * 0.3),
          "w2": ad.constant(rng.standard_normal((32, 1)).astype(np.float32) * 0.3)}


def loss(params, xi, yi):  # one example: xi of shape (20,), yi a scalar
    hidden = ad.tanh(ad.matmul(xi[None, :], params["w1"]))
    logit = ad.matmul(hidden, params["w2"])[0, 0]
    return ad.nn.sigmoid_cross_entropy_with_logits(labels=yi, logits=logit)


per_example = ad.vmap(ad.grad(loss), in_axes=(None, 0, 0))(params, ad.constant(x),
                                                           ad.constant(y))
print({name: g.shape for name, g in per_example.items()})  # a leading axis of 256

one = ad.grad(loss)(params, ad.constant(x[7]), ad.constant(y[7]))
error = max(np.abs(per_example[k].numpy()[7] - one[k].numpy()).max() for k in params)
print(f"example 7 against its own gradient: max difference {error:.1e}")

norms = np.sqrt(sum((per_example[k].numpy().reshape(256, -1) ** 2).sum(1) for k in params))
clip = np.median(norms)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(norms, bins=40)
ax.axvline(clip, color="C3", label=f"clip at the median, {clip:.2f}")
ax.set_xlabel("per-example gradient norm")
ax.set_ylabel("examples")
ax.legend()
fig.tight_layout()
plt.show()
