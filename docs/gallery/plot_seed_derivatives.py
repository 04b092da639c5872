"""
sin² and its first three derivatives
====================================

The first program of the TensorFlow eager walkthrough gpuad grew from: nest
``gradients_function`` to differentiate f(x) = sin²(x) three times, and plot the four curves.
"""
from math import pi

import matplotlib.pyplot as plt

import gpuad as ad


def f(x):
    return ad.square(ad.sin(x))


def derivative(g):  # one more order each time it is applied
    return lambda x: ad.gradients_function(g)(x)[0]


print(f(pi / 2).numpy() == 1.0)
print(ad.abs(ad.gradients_function(f)((pi / 2, pi))).numpy())  # both ~0: flat at the extrema

x = ad.lin_space(-2 * pi, 2 * pi, 200)
curves = {"f": f, "f'": derivative(f), "f''": derivative(derivative(f)),
          "f'''": derivative(derivative(derivative(f)))}
fig, ax = plt.subplots(figsize=(7, 4))
for label, fn in curves.items():
    ax.plot(x.numpy(), fn(x).numpy(), label=label)
ax.set_xlabel("x")
ax.legend()
ax.set_title("sin²(x) and three derivatives, by nested gradients_function")
fig.tight_layout()
plt.show()
