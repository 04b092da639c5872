"""Every CUDA source the CuPy backend can launch, compiled with NVRTC for sm_90 in float32 and
float64.  Needs cupy and pip's nvidia-cuda-nvrtc but no GPU, so CI keeps the GPU path honest.
"""
import os
import re

import numpy as np
import pytest

import gpuad as ad
from gpuad import backends, cuda, ops, table

ENTRIES = table.load()
SPECS = table.kernel_specs(ENTRIES)

if backends.cupy is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must compile the CUDA kernels: pip install '.[test]' brings cupy "
                           "and NVRTC")
    pytest.skip("cupy is not installed (pip install '.[test]')", allow_module_level=True)


def test_every_entry_has_kernels():
    names = {spec.name for spec in SPECS}
    for entry in ENTRIES.values():
        assert f"gpuad_{entry.name}" in names
        if entry.partials:
            assert any(n.startswith(f"gpuad_vjp_{entry.name}_") for n in names)
            assert any(n.startswith(f"gpuad_jvp_{entry.name}_") for n in names)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_cupy_accepts_the_kernel(spec):
    """CuPy parses the parameters (reserved names, types) without a GPU."""
    backends.cupy.ElementwiseKernel(*spec.elementwise_kernel_args(),
                                    preamble=table.cuda_preamble(ENTRIES))


@pytest.mark.parametrize("ctype", ["float", "double"])
def test_nvrtc_compiles_every_kernel(ctype):
    """Each spec as the RawKernel the backend launches: all inputs full-size, and a variant
    with the last input a one-element array and the first (after the cotangent) a value."""
    preamble = table.cuda_preamble(ENTRIES)
    sources = []
    for spec in SPECS:
        n = len(spec.params)
        for kinds in {("full",) * n, tuple(("value" if i == 1 else "one" if i == n - 1 and i
                                             else "full") for i in range(n))}:
            sources.append(table.contiguous_kernel(spec, "", ctype, kinds)[0])
    # one translation unit: the preamble once, every kernel after it
    cubin = cuda.nvrtc_compile(preamble + "\n".join(sources), f"gpuad_{ctype}.cu")
    assert len(cubin) > 1000


def test_nvrtc_reports_a_broken_kernel():
    with pytest.raises(RuntimeError, match="NVRTC could not compile"):
        cuda.nvrtc_compile('extern "C" __global__ void k() { undefined_call(); }')


def test_literals_are_rendered_in_the_kernel_type():
    """Every numeric literal is T(...): a bare 0.5 would be a double in a float kernel."""
    for spec in SPECS:
        bare = re.sub(r"T\(-?[0-9.e+-]+\)", "", spec.operation)
        assert not re.search(r"[0-9]\.[0-9]", bare), spec.operation


def _fused_kernels():
    """The fused group of a few compiled steps, traced on the NumPy backend (large enough to
    fuse): each becomes one generated CUDA kernel on CuPy."""
    rng = np.random.default_rng(0)
    x = ad.constant(rng.uniform(-2, 2, 1 << 18).astype(np.float32), backend="numpy")
    w = ad.constant(rng.uniform(-1, 1, 1 << 18).astype(np.float32), backend="numpy")

    def w3(x):
        with ad.GradientTape() as tape:
            tape.watch(x)
            y = ad.reduce_sum(ad.sin(x) ** 2 * ad.exp(-x * x))
        return y, tape.gradient(y, x)

    def activations(x, w):
        with ad.GradientTape() as tape:
            tape.watch([x, w])
            y = ad.reduce_sum(ad.softplus(x * w) + ad.relu(x - w) * ad.sigmoid(w) +
                              ad.where(x > w, ad.sqrt(ad.abs(x)), ad.tanh(w)))
        return tape.gradient(y, [x, w])
    specs = []
    for fn, args in ((w3, (x,)), (activations, (x, w))):
        group = ad.function(fn).get_concrete_function(*args).fused
        specs.append((group.kernel_spec(), tuple(
            "full" if group.avals[a].shape == group.shape else "one" for a in group.inputs)))
    return specs, table.cuda_preamble(ops.ENTRIES)


@pytest.mark.parametrize("ctype", ["float", "double"])
def test_nvrtc_compiles_the_fused_kernels_of_compiled_functions(ctype):
    specs, preamble = _fused_kernels()
    sources = [table.contiguous_kernel(spec, "", ctype, kinds)[0] for spec, kinds in specs]
    assert len(cuda.nvrtc_compile(preamble + "\n".join(sources), f"fused_{ctype}.cu")) > 1000


def _scalar_sources(specs, ctype):
    """Each spec as the float16 or complex RawKernel: all inputs full-size, and the last one
    element with the first (after the cotangent) a value."""
    sources = []
    for spec in specs:
        n = len(spec.params)
        for kinds in {("full",) * n, tuple(("value" if i == 1 else "one" if i == n - 1 and i
                                             else "full") for i in range(n))}:
            sources.append(table.scalar_kernel(spec, "", ctype, kinds)[0])
    return sources


def test_nvrtc_compiles_every_kernel_in_float16():
    """float16 data: loaded as float, computed in float, stored rounded to float16."""
    cubin = cuda.nvrtc_compile(table.cuda_preamble(ENTRIES) + "\n".join(
        _scalar_sources(SPECS, "half")), "gpuad_half.cu")
    assert len(cubin) > 1000


@pytest.mark.parametrize("ctype", ["complex<float>", "complex<double>"])
def test_nvrtc_compiles_the_complex_vjp_kernels(ctype):
    """The conjugated VJPs g * conj(d_x) of every entry that takes complex numbers."""
    specs = table.complex_kernel_specs(ENTRIES)
    multiply = next(s for s in specs if s.name == "gpuad_vjp_multiply_x_y_conj")
    assert multiply.operation == "gx = (g * conj(y)); gy = (g * conj(x));"
    source = table.COMPLEX_HEADER + table.cuda_preamble(ENTRIES) + "\n".join(
        _scalar_sources(specs, ctype))
    assert len(cuda.nvrtc_compile(source, f"gpuad_{ctype[8:-1]}_complex.cu")) > 1000


def test_nvrtc_compiles_the_fused_kernels_in_float16():
    specs, preamble = _fused_kernels()
    sources = [table.scalar_kernel(spec, "", "half", kinds)[0] for spec, kinds in specs]
    assert len(cuda.nvrtc_compile(preamble + "\n".join(sources), "fused_half.cu")) > 1000


def _optimizer_rules():
    from gpuad.optimizers import SGD, Adagrad, Adam, RMSprop, _rule
    optimizers = [SGD(), SGD(momentum=0.9), SGD(momentum=0.9, nesterov=True), Adam(),
                  Adam(amsgrad=True), RMSprop(), RMSprop(momentum=0.5, centered=True),
                  Adagrad()]
    statements = {o._statements() for o in optimizers}
    statements |= {("var = var - var * weight_decay_lr",) + s for s in statements}
    rules = [_rule(s) for s in sorted(statements)]
    return rules + [r for rule in rules for _, r in rule.statement_rules()]  # traced steps


@pytest.mark.parametrize("ctype", ["float", "double"])
def test_nvrtc_compiles_the_optimizer_updates(ctype):
    """Each optimizer's update (ad.optimizers): the CuPy ElementwiseKernel's arguments parse,
    and its body compiles as a standalone kernel."""
    rules = _optimizer_rules()
    for rule in rules:
        backends.cupy.ElementwiseKernel(*rule.kernel.elementwise_kernel_args())
    source = "\n".join(rule.kernel.raw_source(ctype) for rule in rules)
    assert len(cuda.nvrtc_compile(source, f"optimizers_{ctype}.cu")) > 1000
