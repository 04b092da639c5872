"""Linear algebra (``gpuad.linalg``)."""
__all__ = []
