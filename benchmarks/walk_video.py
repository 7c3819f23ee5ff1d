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
) -> Path:
    """Write an MJPG .avi where the face (``face_box`` in ``photo``, RGB) crosses the frame from
    left to right while its width grows from ``face_px[0]`` to ``face_px[1]`` pixels."""
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
    for i in range(frames):
        t = i / (frames - 1)
        face_width = face_px[0] + t * (face_px[1] - face_px[0])
        scale = face_width / (face_fraction * crop.shape[1])
        piece = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        piece = piece[: size[1], : size[0]]
        frame = np.full((size[1], size[0], 3), 90, np.uint8)
        left = int(t * (size[0] - piece.shape[1]))
        top = (size[1] - piece.shape[0]) // 2
        frame[top : top + piece.shape[0], left : left + piece.shape[1]] = piece
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return out
