"""Warnings that gpuad raises itself, attributed to the user's line rather than to gpuad's."""
import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _inside_gpuad(code):
    name = code.co_filename
    return name.startswith(_PACKAGE) or name.startswith("<gpuad")  # generated code too


def warn(message, category=UserWarning):
    """``warnings.warn`` pointing at the first frame outside gpuad, whatever the call path.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("careful")
    >>> caught[0].filename == __file__ or caught[0].filename.startswith("<doctest")
    True
    """
    frame, level = sys._getframe(1), 2  # stacklevel 2: the frame that called warn()
    while frame is not None and _inside_gpuad(frame.f_code):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
