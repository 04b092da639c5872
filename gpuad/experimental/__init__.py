"""TensorFlow's ``tf.experimental`` names that gpuad has: :mod:`gpuad.experimental.dlpack`."""
from . import dlpack

__all__ = ["dlpack"]
