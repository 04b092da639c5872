"""``python -m gpuad demo [--plot PATH]``: run the seed programs on the default backend."""
import argparse
import os
import pathlib
import warnings

import gpuad as ad
from gpuad import bench as benchmarking


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
    bench = sub.add_parser("bench", help="time W1-W6 against the peers that import")
    bench.add_argument("--out", default=f"gpuad-bench-{ad.get_backend()}",
                       help="folder for latest.md, latest.json and latest.png")
    bench.add_argument("-k", dest="select", help="a pytest -k expression choosing rows")
    bench.add_argument("--budget", type=float,
                       help="timed seconds per implementation (default 2; 0.2 is a quick look)")
    bench.add_argument("--benchmarks", type=pathlib.Path, default=benchmarking.SOURCE_BENCHMARKS,
                       help="the benchmarks/ folder of a gpuad checkout")
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.plot)
    elif args.command == "bench":
        benchmarking.run(args.out, args.select, args.budget, args.benchmarks)


if __name__ == "__main__":
    main()
