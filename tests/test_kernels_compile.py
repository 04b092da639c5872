"""Every CUDA source the CuPy backend can launch, compiled with NVRTC for sm_90 in float32 and
float64.  Needs cupy and pip's nvidia-cuda-nvrtc but no GPU, so CI keeps the GPU path honest.
"""
import os
import re

import pytest

from gpuad import backends, cuda, table

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
