"""Tracker: ids kept through crossings, gaps and fast movement; tracks end once; line crossings."""

from __future__ import annotations

import numpy as np

from edge.tracker import Tracker

DT = 0.1  # the detector runs ten times a second


def _box(cx: float, cy: float, size: float = 80.0) -> list[float]:
    half = size / 2
    return [cx - half, cy - half, cx + half, cy + half]


def _boxes(*boxes: list[float]) -> np.ndarray:
    return np.array(boxes, np.float32).reshape(-1, 4)


def test_two_faces_passing_each_other_keep_their_ids() -> None:
    tracker = Tracker()
    ids = []
    for step in range(25):
        left_to_right = _box(100 + 25 * step, 300)
        right_to_left = _box(710 - 25 * step, 300)  # same height
        # The detector lists faces in no particular order.
        pair = [left_to_right, right_to_left] if step % 2 else [right_to_left, left_to_right]
        update = tracker.update(_boxes(*pair), step * DT)
        ids.append(update.assignment if step % 2 else update.assignment[::-1])
    assert len({tuple(pair) for pair in ids}) == 1
    assert len(tracker.tracks) == 2
    walker = next(t for t in tracker.tracks if t.id == ids[0][0])
    np.testing.assert_allclose(walker.velocity, [250, 0, 250, 0], atol=1e-3)


def test_a_face_missed_for_a_few_frames_keeps_its_id() -> None:
    tracker = Tracker(max_missed_s=1.0)
    first = tracker.update(_boxes(_box(100, 300)), 0.0).assignment[0]
    tracker.update(_boxes(_box(130, 300)), DT)
    for step in range(2, 8):  # six detector runs without the face: 0.6 s
        assert tracker.update(_boxes(), step * DT).ended == []
    update = tracker.update(_boxes(_box(100 + 30 * 8, 300)), 8 * DT)
    assert update.assignment.tolist() == [first]
    assert [t.id for t in update.active] == [first]


def test_a_long_gap_ends_the_track_once() -> None:
    tracker = Tracker(max_missed_s=0.5)
    first = tracker.update(_boxes(_box(100, 300)), 0.0).assignment[0]
    tracker.update(_boxes(_box(100, 300)), DT)
    assert tracker.update(_boxes(), 0.5).ended == []
    ended = tracker.update(_boxes(), 0.7).ended
    assert [t.id for t in ended] == [first]
    assert ended[0].hits == 2 and ended[0].age == DT
    assert tracker.update(_boxes(), 0.8).ended == []
    # The same place later is a new pass.
    again = tracker.update(_boxes(_box(100, 300)), 0.9)
    assert again.assignment[0] != first


def test_a_one_off_detection_ends_at_its_first_miss() -> None:
    tracker = Tracker(min_hits=2)
    update = tracker.update(_boxes(_box(100, 300)), 0.0)
    assert not update.active[0].confirmed
    ended = tracker.update(_boxes(), DT).ended
    assert len(ended) == 1 and not ended[0].confirmed
    assert tracker.tracks == []


def test_a_fast_mover_whose_boxes_never_overlap_is_still_one_track() -> None:
    tracker = Tracker()
    # A running student, 1000 px/s with an 80 px face: consecutive boxes share no pixel, and
    # after the second detection every other frame is dropped, so each new box lands 2.5 face
    # sizes from the last one, where only the velocity prediction expects it.
    times = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]
    assignments = []
    for t in times:
        box = _box(60 + 1000 * t, 360 + 50 * t)
        assignments.append(tracker.update(_boxes(box), t).assignment[0])
    assert len(set(assignments)) == 1
    assert tracker.tracks[0].hits == len(times)


def test_crossing_a_line_gives_the_direction() -> None:
    line = (0.0, 400.0, 1280.0, 400.0)  # drawn left to right: "in" is down the picture
    tracker = Tracker()
    for step in range(8):
        tracker.update(_boxes(_box(300, 200 + 60 * step), _box(900, 700 - 60 * step)), step * DT)
    down, up = sorted(tracker.tracks, key=lambda t: t.first_centroid[0])
    assert down.crossed(line) == "in"
    assert up.crossed(line) == "out"
    assert down.crossed((1280.0, 400.0, 0.0, 400.0)) == "out"  # the line's direction decides
    assert down.crossed((0.0, 100.0, 1280.0, 100.0)) is None  # started and ended below it


def test_finish_ends_every_live_track() -> None:
    tracker = Tracker()
    tracker.update(_boxes(_box(100, 100), _box(500, 500)), 0.0)
    assert len(tracker.finish()) == 2
    assert tracker.tracks == []
