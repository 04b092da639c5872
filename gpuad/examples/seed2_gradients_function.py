"""Seed program 2: d(x^y)/dx with gradients_function and a Python loop (TensorFlow prints
9, 6.0, 27, 27.0: f(3, 2) is an int32 tensor; the int argument's gradient is not computed)."""
import gpuad as ad


def f(x, y):  # x^y
    output = 1
    for i in range(int(y)):  # an ordinary Python loop is recorded like any code
        output = ad.multiply(output, x)
    return output


def g(x, y):  # d x^y / d x
    return ad.gradients_function(f)(x, y)[0]


def main():
    print(f(3, 2).numpy())
    print(g(3.0, 2).numpy())
    print(f(3, 3).numpy())
    print(g(3.0, 3).numpy())


if __name__ == "__main__":
    main()
