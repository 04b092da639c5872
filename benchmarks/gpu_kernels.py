"""Bandwidth of each fused backward kernel of W3 (1e8 float32) against the card's measured
device-to-device copy bandwidth.  Prints a Markdown table; run by benchmarks/gpu_check.sh."""
import sys

import gpuad as ad
from gpuad import backends, cuda, table

cp = backends.cupy
N = 10**8


def gpu_time(fn, repeat=10):
    start, end = cp.cuda.Event(), cp.cuda.Event()
    fn()
    times = []
    for _ in range(repeat):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3)
    return sorted(times)[len(times) // 2]


def main(out=sys.stdout):
    props = cp.cuda.runtime.getDeviceProperties(0)
    a = cp.random.default_rng(0).uniform(-2, 2, N, dtype=cp.float32)
    b = cp.empty_like(a)
    copy_bw = 2 * a.nbytes / gpu_time(lambda: cp.copyto(b, a))
    lines = [f"card: {props['name'].decode()}, device-to-device copy {copy_bw / 1e9:.0f} GB/s "
             f"(bytes read + written)", "",
             "| backward kernel | bytes moved | time (ms) | GB/s | vs copy | CuPy ElementwiseKernel "
             "(ms), same math | max abs difference |", "|---|---|---|---|---|---|---|"]
    x = ad.convert_to_tensor(a)
    with ad.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
    for record in tape._records.values():
        prim, ids, saved, attrs = record.primitive, record.input_ids, record.saved, record.attrs
        if not hasattr(prim, "entry"):
            continue  # reductions and shapes: views or CuPy's own kernels
        needs = tuple(i in tape._ids for i in ids)
        g = cp.ones(N, cp.float32)
        grads = prim.vjp(g, saved, attrs, needs, False)
        spec = table.vjp_kernel_spec(prim.entry, needs)
        read = spec.param_names
        values = dict(zip(prim.entry.saves, saved))
        moved = g.nbytes + sum(values[n].array.nbytes for n in read[1:] if
                               isinstance(values[n], ad.Tensor) and values[n].size == N) + \
            sum(r.nbytes for r in grads if r is not None)
        t = gpu_time(lambda: prim.vjp(g, saved, attrs, needs, False))
        generic = cuda.elementwise_kernel(spec, table.cuda_preamble(table.load()))
        args = [g] + [values[n].array if isinstance(values[n], ad.Tensor) else
                      cp.float32(values[n]) for n in read[1:]]
        t_generic = gpu_time(lambda: generic(*args))
        reference = generic(*args)
        reference = reference if isinstance(reference, tuple) else (reference,)
        diff = max(float(abs(r - o).max()) for r, o in zip(reference,
                                                           [r for r in grads if r is not None]))
        lines.append(f"| {prim.name} (needs {needs}) | {moved / 1e9:.1f} GB | {t * 1e3:.2f} | "
                     f"{moved / t / 1e9:.0f} | {moved / t / copy_bw:.0%} | {t_generic * 1e3:.2f} "
                     f"| {diff:.1e} |")
    for label, fn, moved in [("reference: cupy.negative (1 read, 1 write)", lambda: cp.negative(a), 2 * a.nbytes),
                             ("reference: cupy.multiply a*b (2 reads, 1 write)", lambda: a * b, 3 * a.nbytes)]:
        t = gpu_time(fn)
        lines.append(f"| {label} | {moved / 1e9:.1f} GB | {t * 1e3:.2f} | {moved / t / 1e9:.0f} | "
                     f"{moved / t / copy_bw:.0%} |")
    print("\n".join(lines), file=out)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
