"""campusgate's system entry point: the ``campusgate`` command that starts and measures parts.

It is the one place that may import every part; the parts themselves keep the import rules of
ARCHITECTURE.md.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# Before NumPy loads: a 1:N match is one small matrix product, which OpenBLAS's thread pool only
# slows down (and stalls for milliseconds when the detector holds the cores); onnxruntime keeps
# its own threads for the heavy work. See models/gallery.py.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    __version__ = version("campusgate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
