"""Random tensors (``gpuad.random``)."""
__all__ = []
