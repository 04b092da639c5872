"""The documentation's example programs run and reach their answers."""
import pathlib
import runpy

import numpy as np

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_rosenbrock_newton_converges(capsys):
    module = runpy.run_path(str(EXAMPLES / "rosenbrock_newton.py"))
    import gpuad as ad
    x = module["newton"](ad.constant(0.8 + 0.1 * np.cos(np.arange(50))))
    np.testing.assert_allclose(x.numpy(), np.ones(50), atol=1e-8)
    assert "step" in capsys.readouterr().out
