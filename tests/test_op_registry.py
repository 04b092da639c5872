"""Generic checks of every registered op (tests/op_registry.py) and the registry's coverage:
a public op without an entry fails `test_every_public_op_is_registered`."""
import inspect

import pytest

import gpuad as ad
from gpuad import table
from gpuad.testing import check_gradients
from op_registry import NOT_DIFFERENTIABLE, REGISTRY

# the public API that is not an op: transforms, tapes, tensors, backends, modules
NOT_OPS = {
    "GradientTape", "UnconnectedGradients", "Tensor", "Variable", "constant",
    "convert_to_tensor", "backend", "get_backend", "set_backend", "gradients_function",
    "device", "set_device",
    "value_and_gradients_function", "implicit_gradients", "implicit_value_and_gradients",
    "grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian", "ForwardAccumulator",
    "custom_gradient", "stop_gradient", "function", "from_dlpack", "show_config",
    "vmap", "recompute_grad",  # transforms: tests/test_vmap.py checks them to second order
}


def public_ops():
    names, seen = set(), set()
    for prefix, module in [("", ad), ("nn.", ad.nn), ("linalg.", getattr(ad, "linalg", None)),
                           ("random.", getattr(ad, "random", None))]:
        if module is None:
            continue
        own = {n for n, v in vars(module).items()  # defined in the module itself ...
               if getattr(v, "__module__", None) == module.__name__}
        for name in sorted(set(getattr(module, "__all__", vars(module))) | own):  # or exported
            value = getattr(module, name)
            if name.startswith("_") or not callable(value) or inspect.isclass(value) or \
                    inspect.ismodule(value) or name in NOT_OPS:
                continue
            if getattr(value, "__module__", "").startswith("gpuad") and id(value) not in seen:
                seen.add(id(value))  # an op exported twice (ad.einsum, ad.linalg.einsum): once
                names.add(prefix + name)
    return names


def test_every_public_op_is_registered():
    table_ops = set(table.load())  # covered by tests/test_table.py
    missing = sorted(public_ops() - table_ops - set(REGISTRY) - set(NOT_DIFFERENTIABLE)
                     - {"nn." + n for n in table_ops})
    assert not missing, f"ops without a registry entry (add them to a tests/registry_*.py): {missing}"


CASES = [(name, i, fn, args) for name, cases in sorted(REGISTRY.items())
         for i, (fn, args) in enumerate(cases)]


@pytest.mark.parametrize("name, i, fn, args", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
@pytest.mark.parametrize("order", [1, 2])
def test_registered_op_gradients(name, i, fn, args, order):
    check_gradients(fn, args, order=order)


@pytest.mark.gpu
@pytest.mark.parametrize("name, i, fn, args", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_registered_op_gradients_on_cupy(name, i, fn, args):
    check_gradients(fn, args, order=2)


@pytest.mark.parametrize("name", sorted(NOT_DIFFERENTIABLE))
def test_not_differentiable_op_values(name):
    NOT_DIFFERENTIABLE[name]()
