"""CPU tests run on the NumPy backend; tests marked `gpu` run on CuPy (the repository's
conftest.py skips them without a GPU)."""
import gc

import pytest

import gpuad as ad


@pytest.fixture
def no_gc():
    """Only reference counting frees memory in the test (what a cycle would keep alive, leaks)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture(autouse=True)
def _backend_for_test(request):
    name = "cupy" if "gpu" in request.keywords else "numpy"
    with ad.backend(name):
        yield name
