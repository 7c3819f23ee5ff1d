"""Every image the engine may be given becomes RGB, or a clear error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.images import ImageError, as_rgb, decode_image, read_image


def _encode(image: np.ndarray, ext: str) -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def test_grey_rgba_and_16_bit_become_rgb() -> None:
    grey = np.full((20, 30), 100, np.uint8)
    assert decode_image(_encode(grey, ".png")).shape == (20, 30, 3)
    bgra = np.zeros((20, 30, 4), np.uint8)
    bgra[..., 2] = 255  # red in OpenCV's BGRA order
    rgb = decode_image(_encode(bgra, ".png"))
    assert rgb.shape == (20, 30, 3) and rgb[0, 0].tolist() == [255, 0, 0]
    deep = np.full((8, 8), 65535, np.uint16)
    assert decode_image(_encode(deep, ".png")).max() == 255
    assert as_rgb(np.zeros((5, 5, 1), np.uint8)).shape == (5, 5, 3)


def test_format_is_read_from_the_content_not_the_name(faces_dir: Path) -> None:
    webp_named_jpg = faces_dir / "deepface/by_identity/id03_img8/img47.jpg"
    assert webp_named_jpg.read_bytes()[:4] == b"RIFF"
    assert read_image(webp_named_jpg).shape == (1800, 1350, 3)
    assert read_image(faces_dir / "face_recognition/_unlabeled/32bit.png").ndim == 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"GIF89a not really", "not a readable image"),
        (_encode(np.zeros((40, 40, 3), np.uint8), ".jpg")[:100], "not a readable image"),
    ],
)
def test_bad_images_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_image(data)


def test_read_image_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="missing.jpg"):
        read_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(ImageError, match="bad.png: not a readable image"):
        read_image(bad)
    with pytest.raises(ImageError, match="float32"):
        as_rgb(np.zeros((4, 4, 3), np.float32))
