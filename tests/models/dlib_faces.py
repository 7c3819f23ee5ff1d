"""Dev photos on which the dlib→ONNX converter and the alignment are checked against dlib itself,
and dlib's own results for them, computed once per test session."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

#: Several photos of several people from two sources, a WebP file named .jpg, and a grayscale
#: 150×150 tight crop (in which HOG may find nothing, so the whole image is the face).
REFERENCE_PHOTOS = (
    "deepface/by_identity/id01_angelina/img1.jpg",
    "deepface/by_identity/id01_angelina/img2.jpg",
    "deepface/by_identity/id01_angelina/img4.jpg",
    "deepface/by_identity/id03_img8/img47.jpg",
    "deepface/by_identity/id05_img16/img16.jpg",
    "deepface/by_identity/id05_img16/img17.jpg",
    "deepface/by_identity/id08_img22/img22.jpg",
    "deepface/by_identity/id08_img22/img23.jpg",
    "deepface/by_identity/id11_img29/img29.jpg",
    "deepface/by_identity/id11_img29/img30.jpg",
    "deepface/by_identity/id13_img38/img38.jpg",
    "deepface/by_identity/id13_img38/img39.jpg",
    "face_recognition/by_identity/obama/obama.jpg",
    "face_recognition/by_identity/obama/obama2.jpg",
    "face_recognition/by_identity/biden/biden.jpg",
    "face_recognition/by_identity/biden/biden2.jpg",
    "face_recognition/by_identity/kit_harington/john1.jpeg",
    "face_recognition/by_identity/kit_harington/john2.jpeg",
    "face_recognition/by_identity/rose_leslie/img1.jpg",
    "face-api-js/by_identity/amy/amy1.png",
)
TIGHT_CROPS = ("face-api-js/",)


@dataclass(frozen=True, slots=True)
class ReferenceFace:
    """One photo's face: its pixels, MTCNN's five landmarks of it, and
    dlib's own 150×150 chip and (unnormalised) descriptor of that chip."""

    photo: str
    identity: str
    image: np.ndarray
    landmarks: np.ndarray
    chip: np.ndarray
    descriptor: np.ndarray


@functools.cache
def reference_faces(faces_dir: Path) -> tuple[ReferenceFace, ...]:
    """dlib's results for :data:`REFERENCE_PHOTOS`; skips the test when dlib is not installed."""
    pytest.importorskip("dlib", reason="dlib (dev dependency dlib-bin) is not installed")
    from benchmarks.dlib_reference import DlibStack, read_rgb

    stack = DlibStack()
    found = []
    for photo in REFERENCE_PHOTOS:
        image = read_rgb(faces_dir / photo)
        assert image is not None, f"cannot read {photo}"
        face = stack.face(image, whole_if_none=photo.startswith(TIGHT_CROPS))
        assert face is not None, f"dlib finds no face in {photo}"
        points = stack.mtcnn_points(image, face)
        assert points is not None, f"MTCNN misses dlib's face in {photo}"
        found.append((photo, image, points, stack.chip(image, face)))
    descriptors = stack.descriptors([chip for *_, chip in found])
    return tuple(
        ReferenceFace(photo, Path(photo).parent.name, image, points, chip, descriptor)
        for (photo, image, points, chip), descriptor in zip(found, descriptors, strict=True)
    )
