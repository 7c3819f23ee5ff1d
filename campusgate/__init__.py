"""campusgate's system entry point: the ``campusgate`` command that starts and measures parts.

It is the one place that may import every part; the parts themselves keep the import rules of
ARCHITECTURE.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("campusgate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
