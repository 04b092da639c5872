"""The seed document's three programs, ported to gpuad, print what TensorFlow prints."""
import numpy as np

from gpuad.examples import seed1_higher_order, seed2_gradients_function, seed3_gradient_tape


def test_program_1_higher_order_derivatives(capsys, tmp_path):
    x, curves = seed1_higher_order.main()
    first, second = capsys.readouterr().out.splitlines()
    assert first == "True"
    grads = np.array(second.strip("[]").split(), dtype=float)
    assert grads.shape == (2,) and np.all(np.abs(grads) < 1e-6)  # float32: ~1e-7
    x = x.numpy().astype(np.float64)
    assert x.shape == (100,)
    expected = {"f": np.sin(x) ** 2, "first derivative": np.sin(2 * x),
                "second derivative": 2 * np.cos(2 * x), "third derivative": -4 * np.sin(2 * x)}
    for label, want in expected.items():
        assert curves[label].dtype == np.float32
        np.testing.assert_allclose(curves[label].numpy(), want, atol=2e-5, err_msg=label)


def test_program_2_gradients_function(capsys):
    seed2_gradients_function.main()
    assert capsys.readouterr().out.splitlines() == ["9", "6.0", "27", "27.0"]


def test_program_3_gradient_tape(capsys):
    seed3_gradient_tape.main()
    assert capsys.readouterr().out.splitlines() == ["8.0", "[[8. 8.]", " [8. 8.]]", "3.0 6.0"]


def test_demo_command_writes_the_plot(tmp_path, capsys):
    import pytest
    pytest.importorskip("matplotlib")
    from gpuad.__main__ import main
    path = tmp_path / "plot.png"
    main(["demo", "--plot", str(path)])
    out = capsys.readouterr().out
    assert str(path) in out and path.stat().st_size > 10000
