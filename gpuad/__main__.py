"""``python -m gpuad demo [--plot PATH]``: run the seed programs on the default backend."""
import argparse
import os
import warnings

import gpuad as ad


def demo(plot_path):
    from gpuad.examples import seed1_higher_order, seed2_gradients_function, seed3_gradient_tape
    print(f"gpuad {ad.__version__} on the {ad.get_backend()} backend\n")
    print("# program 1: sin(x)^2 and its derivatives")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(matplotlib is missing: pip install 'gpuad[plot]' for the plot)")
        plot_path = None
    seed1_higher_order.main(plot_path)
    if plot_path:
        print(f"plot of f, f', f'', f''' written to {os.path.abspath(plot_path)}")
    print("\n# program 2: gradients_function")
    with warnings.catch_warnings():  # the int argument's None gradient warns, as TensorFlow logs
        warnings.simplefilter("ignore")
        seed2_gradients_function.main()
    print("\n# program 3: GradientTape")
    seed3_gradient_tape.main()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gpuad")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="run the three seed programs")
    run.add_argument("--plot", default="gpuad_demo_derivatives.png",
                     help="where to write program 1's plot (PNG)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.plot)


if __name__ == "__main__":
    main()
