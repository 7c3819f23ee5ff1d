"""The result every face detector returns, so the tracker and alignment never care which ran."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Landmark rows, in the order detectors return them. "Left" and "right" are as seen in the
#: image, not from the subject's point of view: in an upright, unmirrored photo ``left_eye`` is
#: the eye nearer the image's left edge, which is the subject's right eye.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True, slots=True)
class Detections:
    """Faces found in one image, in that image's pixel coordinates.

    ``boxes`` is (N, 4) float32 ``x1, y1, x2, y2`` (x2/y2 exclusive, so width is ``x2 - x1``);
    a box may reach past the image edge when a face is cut off by it, so clip before cropping.
    ``scores`` is (N,) float32 in [0, 1]. ``landmarks`` is (N, 5, 2) float32 ``x, y`` points in
    the order of :data:`LANDMARK_NAMES`. Rows are sorted by descending score.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        """No faces: arrays of the right shapes with zero rows, so callers need no special case."""
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32),
        )

    def __len__(self) -> int:
        return int(self.scores.shape[0])
