"""
Fitting a Gaussian process by its likelihood gradient
=====================================================

A Gaussian process with a squared-exponential kernel is fitted to noisy samples of a sine by
minimising the negative log marginal likelihood::

    -log p(y) = ½ yᵀ K⁻¹ y + ½ log det K + (n/2) log 2π,    K = s² exp(-(x - x')² / 2ℓ²) + σ² I

over the log length scale, log signal scale and log noise, with gradients through
``ad.linalg.logdet`` and ``ad.linalg.solve`` (TensorFlow's gradients: K⁻¹ for ``logdet``).
"""
import matplotlib.pyplot as plt
import numpy as np

import gpuad as ad

rng = np.random.default_rng(0)
x_train = np.sort(rng.uniform(-3, 3, 40))
y_train = np.sin(2 * x_train) + 0.2 * rng.standard_normal(40)
X, Y = ad.constant(x_train), ad.constant(y_train)


def kernel(a, b, log_length, log_scale):
    d2 = (a[:, None] - b[None, :]) ** 2
    return ad.exp(2 * log_scale) * ad.exp(-0.5 * d2 / ad.exp(2 * log_length))


def negative_log_likelihood(params):
    log_length, log_scale, log_noise = params[0], params[1], params[2]
    K = kernel(X, X, log_length, log_scale) + ad.exp(2 * log_noise) * ad.eye(40, dtype="float64")
    alpha = ad.linalg.solve(K, Y[:, None])
    return (0.5 * ad.reduce_sum(Y[:, None] * alpha) + 0.5 * ad.linalg.logdet(K)
            + 20.0 * np.log(2 * np.pi))


value_and_grad = ad.value_and_grad(negative_log_likelihood)
params = ad.constant([0.5, 0.0, -1.0], dtype="float64")
losses = []
for step in range(150):
    loss, g = value_and_grad(params)
    losses.append(float(loss))
    params = params - 0.02 * g
length, scale, noise = np.exp(params.numpy())
print(f"length scale {length:.3f}, signal scale {scale:.3f}, noise {noise:.3f} (true 0.2)")

# the posterior at test points, with the fitted hyperparameters
x_test = ad.constant(np.linspace(-3.5, 3.5, 200))
log_length, log_scale, log_noise = params[0], params[1], params[2]
K = kernel(X, X, log_length, log_scale) + ad.exp(2 * log_noise) * ad.eye(40, dtype="float64")
K_star = kernel(x_test, X, log_length, log_scale)
mean = ad.matmul(K_star, ad.linalg.solve(K, Y[:, None]))[:, 0].numpy()
var = (ad.exp(2 * log_scale) - ad.reduce_sum(
    K_star * ad.transpose(ad.linalg.solve(K, ad.transpose(K_star))), axis=1)).numpy()

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
left.plot(losses)
left.set_xlabel("gradient step")
left.set_ylabel("-log p(y)")
xs = x_test.numpy()
right.fill_between(xs, mean - 2 * np.sqrt(var), mean + 2 * np.sqrt(var), alpha=0.3,
                   label="±2σ")
right.plot(xs, mean, label="posterior mean")
right.plot(x_train, y_train, "k.", label="data")
right.legend()
fig.tight_layout()
plt.show()
