"""Reading and normalising images: everything the engine sees is H×W×3 uint8 RGB.

Photos arrive from uploads, CCCD chips and test sets in every shape — greyscale, RGBA, 16-bit,
WebP under a .jpg name — and none of that may crash a gate or the enrollment page.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageError(ValueError):
    """An image that cannot be read or used; the message says why."""


def as_rgb(image: np.ndarray) -> np.ndarray:
    """The image as H×W×3 uint8 RGB: grey (H×W, H×W×1) is expanded, RGBA loses its alpha."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = getattr(image, "dtype", type(image).__name__)
        raise ImageError(f"expected a uint8 NumPy image, got {kind}")
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 4):
        raise ImageError(f"expected an H×W, H×W×1, H×W×3 or H×W×4 image, got {image.shape}")
    if image.size == 0:
        return np.zeros((*image.shape[:2], 3), np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if channels == 1 else cv2.COLOR_RGBA2RGB)


def decode_image(data: bytes) -> np.ndarray:
    """Decode JPEG, PNG, WebP, PGM, BMP or TIFF bytes (whatever the file name claims) to RGB."""
    if not data:
        raise ImageError("the image is empty")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageError("not a readable image (corrupt, truncated or an unknown format)")
    if decoded.dtype == np.uint16:
        decoded = (decoded >> 8).astype(np.uint8)
    elif decoded.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {decoded.dtype}")
    if decoded.ndim == 3 and decoded.shape[2] == 3:
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if decoded.ndim == 3 and decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    return as_rgb(decoded)


def read_image(path: Path) -> np.ndarray:
    """Read an image file as RGB, raising :class:`ImageError` with the file's name on failure."""
    try:
        return decode_image(Path(path).read_bytes())
    except OSError as exc:
        raise ImageError(f"{path}: {exc.strerror}") from None
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
