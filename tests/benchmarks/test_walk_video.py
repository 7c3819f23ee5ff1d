"""The walk videos: each person crosses the frame and grows, one after the other, with empty
frame between them and after the last."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from benchmarks.walk_video import make_walk_video, make_walks_video

FPS = 10.0


def photo_with_face(colour: tuple[int, int, int]) -> tuple[np.ndarray, tuple[float, ...]]:
    """A grey photo with a coloured square standing in for the face, and the square's box."""
    photo = np.full((300, 300, 3), 90, np.uint8)
    photo[100:200, 100:200] = colour
    return photo, (100.0, 100.0, 200.0, 200.0)


def frames(video: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    read = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        read.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return read


def box_of(frame: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int] | None:
    """Left edge and width of the pixels close to ``colour`` (JPEG blurs edges), or None."""
    near = np.abs(frame.astype(int) - colour).max(axis=2) < 40
    columns = np.flatnonzero(near.any(axis=0))
    return (int(columns[0]), int(columns[-1] - columns[0] + 1)) if len(columns) else None


def test_people_walk_in_turn_towards_the_camera_and_the_frame_empties_after(
    tmp_path: Path,
) -> None:
    red, blue = (220, 30, 30), (30, 30, 220)
    video = make_walks_video(
        [photo_with_face(red), photo_with_face(blue)],
        tmp_path / "walks.avi",
        seconds=1.0,
        fps=FPS,
        face_px=(60.0, 120.0),
        gap_s=0.5,
        tail_s=0.8,
    )
    shown = frames(video)
    assert len(shown) == 10 + 5 + 10 + 8
    first, second = shown[:10], shown[15:25]
    for walk, colour in ((first, red), (second, blue)):
        start, end = box_of(walk[0], colour), box_of(walk[-1], colour)
        assert start is not None and end is not None
        assert end[0] > start[0], "walks left to right"
        assert 50 <= start[1] <= 70 and 110 <= end[1] <= 130, "grows from 60 to 120 px"
    for empty in shown[10:15] + shown[25:]:
        assert box_of(empty, red) is None and box_of(empty, blue) is None


def test_one_person_walks_again_after_an_empty_gap(tmp_path: Path) -> None:
    red = (220, 30, 30)
    photo, box = photo_with_face(red)
    shown = frames(
        make_walk_video(photo, box, tmp_path / "twice.avi", seconds=1.0, fps=FPS, passes=2)
    )
    assert len(shown) == 10 + 20 + 10  # the default gap is 2 s, and no tail
    assert all(box_of(frame, red) is not None for frame in shown[:10] + shown[30:])
    assert all(box_of(frame, red) is None for frame in shown[10:30])
