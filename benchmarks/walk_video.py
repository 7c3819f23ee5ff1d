"""Short test videos of a person walking towards a gate camera, made from one photo.

The face in the photo is cut out with a margin and moved across a plain background while it
grows, as a student walking towards the camera does. Used by tests and benchmarks; the photos
stay in the shared folder and the videos in temporary ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

Face = tuple[np.ndarray, tuple[float, float, float, float]]
"""A person's photo (RGB) and the box of their face in it."""


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
    tail_s: float = 0.0,
) -> Path:
    """Write an MJPG .avi where the face (``face_box`` in ``photo``, RGB) crosses the frame from
    left to right (or right to left) while its width grows from ``face_px[0]`` to
    ``face_px[1]`` pixels; ``passes`` walks, each after ``gap_s`` seconds of empty frame, and
    ``tail_s`` seconds of empty frame after the last."""
    return make_walks_video(
        [(photo, face_box)] * passes,
        out,
        seconds=seconds,
        fps=fps,
        size=size,
        face_px=face_px,
        leftwards=leftwards,
        gap_s=gap_s,
        tail_s=tail_s,
    )


def make_walks_video(
    faces: Sequence[Face],
    out: Path,
    *,
    seconds: float = 3.0,
    fps: float = 15.0,
    size: tuple[int, int] = (640, 480),
    face_px: tuple[float, float] = (90.0, 160.0),
    leftwards: bool = False,
    gap_s: float = 2.0,
    tail_s: float = 0.0,
) -> Path:
    """Like :func:`make_walk_video`, but the people of ``faces`` walk one after the other, so
    one video shows a gate several passes (a student, then a stranger). ``tail_s`` of empty
    frame at the end lets a gate see the last person leave: a gate ends a track, and decides
    about a face it could not match while walking, only on frames without that face."""
    crops = [_face_crop(photo, face_box) for photo, face_box in faces]
    frames = max(2, round(seconds * fps))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise OSError(f"cannot write {out}")
    empty = np.full((size[1], size[0], 3), 90, np.uint8)
    for walk, (crop, face_fraction) in enumerate(crops):
        if walk:
            for _ in range(round(gap_s * fps)):
                writer.write(empty)
        for i in range(frames):
            writer.write(
                _walk_frame(crop, face_fraction, i / (frames - 1), size, face_px, leftwards)
            )
    for _ in range(round(tail_s * fps)):
        writer.write(empty)
    writer.release()
    return out


def _face_crop(
    photo: np.ndarray, face_box: tuple[float, float, float, float]
) -> tuple[np.ndarray, float]:
    """The face with a margin around it, and the face's share of the crop's width."""
    x1, y1, x2, y2 = face_box
    margin = 0.8 * (x2 - x1)
    height, width = photo.shape[:2]
    crop = photo[
        int(max(0, y1 - margin)) : int(min(height, y2 + margin)),
        int(max(0, x1 - margin)) : int(min(width, x2 + margin)),
    ]
    return crop, (x2 - x1) / crop.shape[1]


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
