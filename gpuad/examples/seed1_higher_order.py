"""Seed program 1: f(x) = sin(x)^2 and its first three derivatives, by nesting
gradients_function (TensorFlow prints True, |f'| at pi/2 and pi near 1e-7, and four curves)."""
from math import pi

import gpuad as ad


def f(x):
    return ad.square(ad.sin(x))


def grad(f):  # a first-derivative function; nest it for higher orders
    return lambda x: ad.gradients_function(f)(x)[0]


def main(plot_path=None):
    print(f(pi / 2).numpy() == 1.0)
    grad_f = ad.gradients_function(f)
    print(ad.abs(grad_f((pi / 2, pi))).numpy())

    x = ad.lin_space(-2 * pi, 2 * pi, 100)  # 100 points between -2pi and 2pi
    curves = {"f": f(x), "first derivative": grad(f)(x),
              "second derivative": grad(grad(f))(x),
              "third derivative": grad(grad(grad(f)))(x)}
    if plot_path:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        for label, y in curves.items():
            plt.plot(x, y, label=label)
        plt.legend()
        plt.savefig(plot_path)
        plt.close()
    return x, curves


if __name__ == "__main__":
    main("seed1_derivatives.png")
