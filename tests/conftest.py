"""CPU tests run on the NumPy backend; tests marked `gpu` run on CuPy (the repository's
conftest.py skips them without a GPU)."""
import pytest

import gpuad as ad


@pytest.fixture(autouse=True)
def _backend_for_test(request):
    name = "cupy" if "gpu" in request.keywords else "numpy"
    with ad.backend(name):
        yield name
