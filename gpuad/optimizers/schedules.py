"""Learning-rate schedules, as ``keras.optimizers.schedules``: called with the step (an int or
a Tensor such as an optimizer's ``iterations``), they return a float32 Tensor, computed with
gpuad ops so that ``gpuad.function`` traces them.

Examples
--------
>>> import gpuad as ad
>>> schedule = ad.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
>>> float(schedule(10)), float(schedule(5))
(0.05000000074505806, 0.0707106813788414)
"""
import math
import typing

import numpy

from ..array_ops import cast, convert_to_tensor
from ..ops import cos, floor, minimum, where
from ..tensor import Tensor

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "CosineDecay"]


def _float_step(step):
    step = convert_to_tensor(step)
    return step if step.dtype == numpy.float32 else cast(step, numpy.float32)


class LearningRateSchedule:
    """The base of the schedules: a subclass defines ``__call__(step)``."""

    def __call__(self, step: typing.Any) -> Tensor:
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  f"override `__call__(self, step)`.")

    def get_config(self) -> dict[str, typing.Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (the exponent floored
    when ``staircase``), as ``keras.optimizers.schedules.ExponentialDecay``.

    Examples
    --------
    >>> import gpuad as ad
    >>> s = ad.optimizers.schedules.ExponentialDecay(1.0, 2, 0.5, staircase=True)
    >>> [float(s(k)) for k in (0, 1, 2, 3)]
    [1.0, 1.0, 0.5, 0.5]
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay") -> None:
        if decay_steps <= 0:
            raise ValueError(f"ExponentialDecay: argument `decay_steps` must be > 0. "
                             f"Received: decay_steps={decay_steps}")
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step: typing.Any) -> Tensor:
        p = _float_step(step) / float(self.decay_steps)
        if self.staircase:
            p = floor(p)
        return float(self.initial_learning_rate) * float(self.decay_rate) ** p


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` for ``boundaries[i-1] <
    step <= boundaries[i]``, ``values[-1]`` after the last boundary, as
    ``keras.optimizers.schedules.PiecewiseConstantDecay``.

    Examples
    --------
    >>> import gpuad as ad
    >>> s = ad.optimizers.schedules.PiecewiseConstantDecay([2, 4], [1.0, 0.5, 0.1])
    >>> [float(s(k)) for k in (2, 3, 4, 5)]
    [1.0, 0.5, 0.5, 0.10000000149011612]
    """

    def __init__(self, boundaries: typing.Sequence[float], values: typing.Sequence[float],
                 name: str = "PiecewiseConstant") -> None:
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"PiecewiseConstantDecay: the length of boundaries should be 1 "
                             f"less than the length of values. Received: boundaries="
                             f"{boundaries} of length {len(boundaries)}, and values={values} "
                             f"of length {len(values)}.")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step: typing.Any) -> Tensor:
        step = convert_to_tensor(step)
        result = convert_to_tensor(float(self.values[-1]), dtype=numpy.float32,
                                   backend=step.backend)
        # from the last range down, so each step lands in the first range that holds it
        for boundary, value in reversed(list(zip(self.boundaries, self.values))):
            result = where(step <= boundary, float(value), result)
        return result


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warmup, as
    ``keras.optimizers.schedules.CosineDecay``.

    Without ``warmup_target``: ``initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi *
    min(step, decay_steps) / decay_steps)) + alpha)``.  With it: a linear rise from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``, then the same decay
    from ``warmup_target`` over ``decay_steps``.

    Examples
    --------
    >>> import gpuad as ad
    >>> s = ad.optimizers.schedules.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=5)
    >>> [round(float(s(k)), 3) for k in (0, 5, 10, 15, 20)]
    [0.0, 1.0, 0.5, 0.0, 0.0]
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None,
                 warmup_steps: int = 0) -> None:
        self.initial_learning_rate, self.decay_steps, self.alpha = \
            initial_learning_rate, decay_steps, alpha
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def _decay(self, step, decay_from):
        cosine = 0.5 * (1.0 + cos(math.pi * (step / float(self.decay_steps))))
        return decay_from * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: typing.Any) -> Tensor:
        step = _float_step(step)
        initial = float(self.initial_learning_rate)
        if self.warmup_target is None:
            return self._decay(minimum(step, float(self.decay_steps)), initial)
        target, warmup = float(self.warmup_target), float(self.warmup_steps)
        step = minimum(step, float(self.decay_steps) + warmup)
        warming = (target - initial) * (step / max(warmup, 1.0)) + initial
        return where(step < warmup, warming, self._decay(step - warmup, target))
