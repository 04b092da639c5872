"""Shape and indexing ops beyond the core."""
__all__ = []
