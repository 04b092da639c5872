"""Nested structures of Tensors (lists, tuples, namedtuples, dicts), as ``tf.nest``."""
from .tensor import Tensor


def _first(flat):
    return flat[0]


def flatten(structure):
    """``(leaves, rebuild)``: the Tensors nested in ``structure`` (lists, tuples, namedtuples,
    dicts; anything else is a leaf), and a function building the same structure from new
    leaves."""
    if isinstance(structure, Tensor):
        return [structure], _first
    if type(structure) in (list, tuple) and all([isinstance(s, Tensor) for s in structure]):
        return list(structure), type(structure)
    if isinstance(structure, dict):
        keys = list(structure)
        parts = [flatten(structure[k]) for k in keys]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild(flat):
            out, i = {}, 0
            for k, (sub, sub_rebuild) in zip(keys, parts):
                out[k] = sub_rebuild(flat[i:i + len(sub)])
                i += len(sub)
            return type(structure)(out) if type(structure) is not dict else out
        return leaves, rebuild
    if isinstance(structure, (list, tuple)):
        parts = [flatten(s) for s in structure]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild(flat):
            out, i = [], 0
            for sub, sub_rebuild in parts:
                out.append(sub_rebuild(flat[i:i + len(sub)]))
                i += len(sub)
            return type(structure)(out) if not hasattr(structure, "_fields") \
                else type(structure)(*out)
        return leaves, rebuild
    return [structure], _first
