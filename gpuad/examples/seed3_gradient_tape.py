"""Seed program 3: GradientTape, gradients w.r.t. an intermediate value, and a second
derivative from nested tapes (TensorFlow prints 8.0, [[8. 8.] [8. 8.]], then 3.0 6.0)."""
import gpuad as ad


def main():
    x = ad.ones((2, 2))
    with ad.GradientTape(persistent=True) as t:
        t.watch(x)
        y = ad.reduce_sum(x)
        z = ad.multiply(y, y)
    dz_dy = t.gradient(z, y)  # w.r.t. the intermediate value y
    print(dz_dy.numpy())
    dz_dx = t.gradient(z, x)  # w.r.t. the original input x
    print(dz_dx.numpy())

    x = ad.Variable(1.0)
    with ad.GradientTape() as t:
        with ad.GradientTape() as t2:
            y = x * x * x
        # computed inside t's context, so the gradient computation is recorded too
        dy_dx = t2.gradient(y, x)
    d2y_dx2 = t.gradient(dy_dx, x)
    print(dy_dx.numpy(), d2y_dx2.numpy())


if __name__ == "__main__":
    main()
