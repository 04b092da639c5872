"""Reductions and scans beyond the core."""
__all__ = []
