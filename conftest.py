"""For every pytest run here (tests/, benchmarks/, doctests): items marked `gpu` skip cleanly
on a machine without a usable CUDA GPU and cupy."""
import pytest

from gpuad import backends


def pytest_collection_modifyitems(config, items):
    if backends.CUDA_AVAILABLE:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and cupy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# the gallery's scripts run when the site is built (sphinx-gallery), not on import by pytest;
# the site's configuration and generated pages are not test modules either
collect_ignore_glob = ["docs/gallery/*", "docs/conf.py", "docs/_build/*", "docs/reference/*",
                       "docs/auto_examples/*"]
