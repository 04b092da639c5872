"""CPU tests run on the NumPy backend; tests marked `gpu` run on CuPy and skip without a GPU."""
import pytest

import gpuad as ad
from gpuad import backends as _backend


def pytest_collection_modifyitems(config, items):
    if _backend.CUDA_AVAILABLE:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and cupy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _backend_for_test(request):
    name = "cupy" if "gpu" in request.keywords else "numpy"
    with ad.backend(name):
        yield name
