"""Short test videos of a person walking towards a gate camera, made from one photo.

The face in the photo is cut out with a margin and moved across a plain background while it
grows, as a student walking towards the camera does. Used by tests and benchmarks; the photos
stay in the shared folder and the videos in temporary ones.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_walk_video(
    photo: np.ndarray,
    face_box: tuple[float, float, float, float],
    out: Path,
    *,
    seconds: float = 3.0,
    fps: float = 15.0,
    size: tuple[int, int] = (640, 480),
    face_px: tuple[float, float] = (90.0, 160.0),
    passes: int = 1,
    leftwards: bool = False,
    gap_s: float = 2.0,
) -> Path:
    """Write an MJPG .avi where the face (``face_box`` in ``photo``, RGB) crosses the frame from
    left to right (or right to left) while its width grows from ``face_px[0]`` to
    ``face_px[1]`` pixels; ``passes`` walks, each after ``gap_s`` seconds of empty frame."""
    x1, y1, x2, y2 = face_box
    margin = 0.8 * (x2 - x1)
    height, width = photo.shape[:2]
    crop = photo[
        int(max(0, y1 - margin)) : int(min(height, y2 + margin)),
        int(max(0, x1 - margin)) : int(min(width, x2 + margin)),
    ]
    face_fraction = (x2 - x1) / crop.shape[1]
    frames = max(2, round(seconds * fps))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise OSError(f"cannot write {out}")
    empty = np.full((size[1], size[0], 3), 90, np.uint8)
    for walk in range(passes):
        if walk:
            for _ in range(round(gap_s * fps)):
                writer.write(empty)
        for i in range(frames):
            writer.write(
                _walk_frame(crop, face_fraction, i / (frames - 1), size, face_px, leftwards)
            )
    writer.release()
    return out


def _walk_frame(
    crop: np.ndarray,
    face_fraction: float,
    t: float,
    size: tuple[int, int],
    face_px: tuple[float, float],
    leftwards: bool,
) -> np.ndarray:
    """One BGR frame of a walk, ``t`` from 0 (start) to 1 (end)."""
    face_width = face_px[0] + t * (face_px[1] - face_px[0])
    scale = face_width / (face_fraction * crop.shape[1])
    piece = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    piece = piece[: size[1], : size[0]]
    frame = np.full((size[1], size[0], 3), 90, np.uint8)
    travel = 1.0 - t if leftwards else t
    left = int(travel * (size[0] - piece.shape[1]))
    top = (size[1] - piece.shape[0]) // 2
    frame[top : top + piece.shape[0], left : left + piece.shape[1]] = piece
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
