"""Checkpoints, as ``tf.train.Checkpoint`` and ``tf.train.CheckpointManager``.

A checkpoint is two files: ``PREFIX.npz`` holds the arrays (host NumPy, whatever backend they
came from) and ``PREFIX.index.json`` maps each object path (``model/layers/0/kernel``,
``optimizer/slots/model/layers/0/kernel/momentum``) to its array. Nothing is pickled: a
checkpoint from an untrusted source cannot run code. Each file is written under a temporary
name, fsynced and renamed, the index last: a process killed mid-save leaves the previous
checkpoints readable, and an index only ever names a complete data file.

What is saved: the Variables reachable from the objects given to :class:`Checkpoint`, through
attributes, lists, tuples and dicts (as TensorFlow's trackable objects), and optimizers: their
``iterations``, learning-rate Variable and slots.  A slot is keyed by its variable's path, so
restoring into an optimizer that has not made its slots yet creates them then.

Examples
--------
>>> import os, tempfile
>>> import gpuad as ad
>>> class Model:
...     def __init__(self):
...         self.layers = [ad.Variable([1.0, 2.0]), {"bias": ad.Variable(0.5)}]
>>> model, opt = Model(), ad.optimizers.Adam(0.1)
>>> _ = opt.apply_gradients([(ad.constant([1.0, 1.0]), model.layers[0])])
>>> ckpt = ad.train.Checkpoint(model=model, optimizer=opt)
>>> directory = tempfile.mkdtemp()
>>> path = ckpt.save(os.path.join(directory, "ckpt"))
>>> os.path.basename(path), ad.train.latest_checkpoint(directory) == path
('ckpt-1', True)
>>> restored, opt2 = Model(), ad.optimizers.Adam(0.1)
>>> ad.train.Checkpoint(model=restored, optimizer=opt2).restore(path).assert_consumed()
>>> restored.layers[0].numpy().round(4), int(opt2.iterations), len(opt2.variables)
(array([0.9, 1.9], dtype=float32), 1, 4)
"""
import json
import os
import typing
import uuid

import numpy

from . import backends
from .disk_cache import write_atomic
from .optimizers import Optimizer
from .tensor import Tensor
from .variables import Variable

FORMAT = "gpuad-checkpoint"
VERSION = 1
_STATE_FILE = "checkpoint"  # in a directory: the latest checkpoint and those kept
_SKIPPED = (str, bytes, int, float, complex, bool, type(None), Tensor, type,
            type(os), type(len), type(lambda: 0))


def _walk(objects):
    """(path -> Variable, path -> Optimizer) for everything reachable from ``objects``; an
    object reached twice is saved once, under its first path."""
    variables, optimizers, seen = {}, {}, set()

    def visit(obj, path):
        if isinstance(obj, Variable):
            if obj._id not in seen:
                seen.add(obj._id)
                variables[path] = obj
            return
        if isinstance(obj, _SKIPPED) or id(obj) in seen or backends.is_array(obj):
            return
        seen.add(id(obj))
        if isinstance(obj, Optimizer):
            optimizers[path] = obj
            visit(obj.iterations, f"{path}/iterations")
            if isinstance(obj._learning_rate, Variable):
                visit(obj._learning_rate, f"{path}/learning_rate")
            return
        if isinstance(obj, Checkpoint):
            children = obj._objects.items()
        elif isinstance(obj, dict):
            children = ((str(k), v) for k, v in obj.items())
        elif isinstance(obj, (list, tuple)):
            children = ((str(k), v) for k, v in enumerate(obj))
        elif hasattr(obj, "__dict__"):
            children = ((k, v) for k, v in vars(obj).items() if not k.startswith("__"))
        else:
            return
        for key, child in children:
            visit(child, f"{path}/{key}" if path else key)

    visit(objects, "")
    return variables, optimizers


def _slot_paths(variables, optimizers):
    """path -> (optimizer, variable, slot name) for every slot an optimizer has made for a
    variable of this checkpoint."""
    slots = {}
    for opt_path, opt in optimizers.items():
        for var_path, var in variables.items():
            for name in opt._slots.get(var._id, {}):
                slots[f"{opt_path}/slots/{var_path}/{name}"] = (opt, var, name)
    return slots


def _write_json(path, value):
    write_atomic(path, lambda f: f.write(json.dumps(value, indent=1).encode()))


def _files(prefix):
    return f"{prefix}.npz", f"{prefix}.index.json"


class CheckpointLoadStatus:
    """What a restore matched: ``assert_consumed()`` raises if a checkpoint value found no
    object or an object found no value; ``expect_partial()`` silences nothing (gpuad never
    warns about a partial restore) and returns the status."""

    def __init__(self, unused: typing.Iterable[str], missing: typing.Iterable[str]) -> None:
        self.unused, self.missing = sorted(unused), sorted(missing)

    def assert_consumed(self) -> None:
        if self.unused or self.missing:
            raise AssertionError(f"checkpoint restore: values not matched to an object: "
                                 f"{self.unused}; objects without a value: {self.missing}")

    def assert_existing_objects_matched(self) -> None:
        if self.missing:
            raise AssertionError(f"checkpoint restore: objects without a value: "
                                 f"{self.missing}")

    def expect_partial(self) -> "CheckpointLoadStatus":
        return self


class Checkpoint:
    """Groups objects to save and restore, as ``tf.train.Checkpoint(**kwargs)``.

    Parameters
    ----------
    **objects
        Variables, optimizers, and objects, lists and dicts holding them, by name.

    Attributes
    ----------
    save_counter : Variable
        int64, incremented by :meth:`save` and saved with the checkpoint.
    """

    def __init__(self, root: typing.Any = None, **objects: typing.Any):
        if root is not None:
            objects["root"] = root
        for name, obj in objects.items():
            if isinstance(obj, _SKIPPED) and not isinstance(obj, Variable):
                raise ValueError(f"Checkpoint: `{name}` is a {type(obj).__name__}, not an "
                                 f"object that holds Variables")
        self._objects = objects
        self.save_counter = Variable(numpy.int64(0), trainable=False, name="save_counter")

    def _tracked(self):
        variables, optimizers = _walk({**self._objects, "save_counter": self.save_counter})
        return variables, optimizers

    def write(self, file_prefix: str | os.PathLike) -> str:
        """Write the checkpoint to ``file_prefix.npz`` and ``file_prefix.index.json``, without
        numbering; returns ``file_prefix``."""
        file_prefix = os.fspath(file_prefix)
        variables, optimizers = self._tracked()
        values = {path: var for path, var in variables.items()}
        values.update({path: opt._slots[var._id][name] for path, (opt, var, name) in
                       _slot_paths(variables, optimizers).items()})
        arrays, entries = {}, {}
        for k, (path, var) in enumerate(sorted(values.items())):
            array = backends.to_numpy(var._value)
            arrays[f"a{k}"] = array
            entries[path] = {"key": f"a{k}", "shape": list(array.shape),
                             "dtype": array.dtype.str, "backend": var.backend}
        nonce = uuid.uuid4().hex
        arrays["__nonce__"] = numpy.array(nonce)
        data, index = _files(file_prefix)
        directory = os.path.dirname(file_prefix)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if os.path.exists(index):  # overwritten: no index may name a data file half-replaced
            os.remove(index)
        write_atomic(data, lambda f: numpy.savez(f, **arrays))
        _write_json(index, {"format": FORMAT, "version": VERSION, "nonce": nonce,
                            "data": os.path.basename(data), "entries": entries})
        return file_prefix

    def save(self, file_prefix: str | os.PathLike) -> str:
        """Write a numbered checkpoint ``file_prefix-N`` (N: ``save_counter`` after its
        increment), record it as its directory's latest; returns its path."""
        self.save_counter.assign_add(numpy.int64(1))
        path = self.write(f"{os.fspath(file_prefix)}-{int(self.save_counter)}")
        directory = os.path.dirname(path)
        state = _read_state(directory)
        kept = [p for p in state["all_model_checkpoint_paths"] if p != os.path.basename(path)]
        _write_state(directory, kept + [os.path.basename(path)])
        return path

    def read(self, save_path: str | os.PathLike) -> CheckpointLoadStatus:
        """Restore the values of checkpoint ``save_path`` (a prefix, as :meth:`write` and
        :meth:`save` return); returns a :class:`CheckpointLoadStatus`."""
        save_path = os.fspath(save_path)
        data_path, index_path = _files(save_path)
        if not os.path.exists(index_path):
            raise FileNotFoundError(f"Checkpoint.restore: no checkpoint at {save_path!r} "
                                    f"({index_path} does not exist)")
        with open(index_path) as f:
            index = json.load(f)
        if index.get("format") != FORMAT:
            raise ValueError(f"Checkpoint.restore: {index_path} is not a gpuad checkpoint")
        with numpy.load(os.path.join(os.path.dirname(index_path), index["data"]),
                        allow_pickle=False) as data:
            if str(data["__nonce__"]) != index["nonce"]:
                raise ValueError(f"Checkpoint.restore: {data_path} does not belong to "
                                 f"{index_path} (an interrupted write)")
            values = {path: data[entry["key"]] for path, entry in index["entries"].items()}
        variables, optimizers = self._tracked()
        targets = dict(variables)
        # slots of the checkpoint: made now where the optimizer has not made them yet
        for opt_path, opt in optimizers.items():
            for var_path, var in variables.items():
                prefix = f"{opt_path}/slots/{var_path}/"
                if any(p.startswith(prefix) for p in values):
                    slots = opt._slots_of(var)
                    targets.update({prefix + name: slot for name, slot in slots.items()})
        for path, var in targets.items():
            if path in values:
                _assign(var, values[path], path)
        return CheckpointLoadStatus(set(values) - set(targets), set(targets) - set(values))

    def restore(self, save_path: str | os.PathLike | None) -> CheckpointLoadStatus:
        """Restore checkpoint ``save_path`` (``None``: nothing, as TensorFlow when there is no
        latest checkpoint); returns a :class:`CheckpointLoadStatus`."""
        if save_path is None:
            return CheckpointLoadStatus(set(), set())
        return self.read(save_path)


def _assign(var, value, path):
    if tuple(value.shape) != var.shape:
        raise ValueError(f"Checkpoint.restore: '{path}' has shape {tuple(value.shape)} in "
                         f"the checkpoint, the variable {var.shape}")
    if value.dtype != var.dtype:
        raise TypeError(f"Checkpoint.restore: '{path}' has dtype {value.dtype} in the "
                        f"checkpoint, the variable {var.dtype}")
    var._value = backends.asarray(value, var.backend).copy()  # the variable owns its buffer


def _read_state(directory):
    try:
        with open(os.path.join(directory or ".", _STATE_FILE)) as f:
            state = json.load(f)
    except (FileNotFoundError, ValueError):
        return {"model_checkpoint_path": None, "all_model_checkpoint_paths": []}
    return state


def _write_state(directory, kept):
    _write_json(os.path.join(directory or ".", _STATE_FILE),
                {"model_checkpoint_path": kept[-1] if kept else None,
                 "all_model_checkpoint_paths": kept})


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> str | None:
    """The path of the latest checkpoint saved in ``checkpoint_dir``, or None, as
    ``tf.train.latest_checkpoint``."""
    name = _read_state(checkpoint_dir)["model_checkpoint_path"]
    if name is None:
        return None
    path = os.path.join(checkpoint_dir, name)
    return path if os.path.exists(_files(path)[1]) else None


class CheckpointManager:
    """Numbered checkpoints in a directory, keeping the last ``max_to_keep``, as
    ``tf.train.CheckpointManager``.

    Examples
    --------
    >>> import tempfile
    >>> import gpuad as ad
    >>> v = ad.Variable(1.0)
    >>> manager = ad.train.CheckpointManager(ad.train.Checkpoint(v=v), tempfile.mkdtemp(),
    ...                                      max_to_keep=2)
    >>> for _ in range(3):
    ...     _ = v.assign_add(1.0)
    ...     path = manager.save()
    >>> [p.rsplit("/", 1)[1] for p in manager.checkpoints], manager.latest_checkpoint == path
    (['ckpt-2', 'ckpt-3'], True)
    """

    def __init__(self, checkpoint: Checkpoint, directory: str | os.PathLike,
                 max_to_keep: int | None, checkpoint_name: str = "ckpt"):
        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"CheckpointManager: `checkpoint` must be a gpuad.train.Checkpoint,"
                            f" got {type(checkpoint).__name__}")
        if max_to_keep is not None and max_to_keep <= 0:
            raise ValueError(f"CheckpointManager: max_to_keep must be positive or None, got "
                             f"{max_to_keep}")
        self.checkpoint, self.directory = checkpoint, os.fspath(directory)
        self.max_to_keep, self.checkpoint_name = max_to_keep, checkpoint_name
        self._prefix = os.path.join(self.directory, checkpoint_name)
        kept = _read_state(self.directory)["all_model_checkpoint_paths"]
        self._checkpoints = [os.path.join(self.directory, p) for p in kept
                             if os.path.exists(_files(os.path.join(self.directory, p))[1])]

    @property
    def checkpoints(self) -> list[str]:
        """The paths of the checkpoints kept, oldest first."""
        return list(self._checkpoints)

    @property
    def latest_checkpoint(self) -> str | None:
        return self._checkpoints[-1] if self._checkpoints else None

    def save(self, checkpoint_number: int | None = None) -> str:
        """Save a checkpoint ``ckpt-N`` (N: ``checkpoint_number``, else the checkpoint's
        ``save_counter`` after its increment), delete those beyond ``max_to_keep``; returns
        its path."""
        self.checkpoint.save_counter.assign_add(numpy.int64(1))
        number = int(self.checkpoint.save_counter) if checkpoint_number is None else \
            int(checkpoint_number)
        path = self.checkpoint.write(f"{self._prefix}-{number}")
        self._checkpoints = [p for p in self._checkpoints if p != path] + [path]
        if self.max_to_keep is not None:
            while len(self._checkpoints) > self.max_to_keep:
                old = self._checkpoints.pop(0)
                for file in reversed(_files(old)):  # the index first: never a dangling one
                    if os.path.exists(file):
                        os.remove(file)
        _write_state(self.directory, [os.path.basename(p) for p in self._checkpoints])
        return path
