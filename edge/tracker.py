"""Face tracker: one track per person walking through the gate.

Recognition is paid per track, not per detection, so the tracker must keep a person's id while
they cross the frame, pass another student, or slip out of the detector for a few frames.
Each track predicts where its box is now from its last velocity (boxes move between detector
runs, and the loop drops frames, so time rather than frame count drives everything), and
detections are assigned to tracks by the Hungarian method on a cost that combines overlap with
the predicted box and centroid distance relative to the face's size — the distance is what
still matches a fast mover whose boxes no longer overlap from one detection to the next.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(slots=True)
class Track:
    """One person's face over time.

    ``box`` is the last observed x1, y1, x2, y2 in pixels and ``velocity`` the rate of change
    of those four coordinates in px/s (so a face growing as it approaches is predicted too).
    ``hits`` counts the detections matched to the track; ``confirmed`` says whether it has
    reached the tracker's ``min_hits``.
    """

    id: int
    box: np.ndarray
    first_seen: float
    last_seen: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    hits: int = 1
    confirmed: bool = False
    first_centroid: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.first_centroid = _centroids(self.box[None])[0]

    @property
    def age(self) -> float:
        """Seconds between the first and the last detection."""
        return self.last_seen - self.first_seen

    @property
    def centroid(self) -> np.ndarray:
        return _centroids(self.box[None])[0]

    def crossed(self, line: tuple[float, float, float, float]) -> Literal["in", "out"] | None:
        """Which way the track crossed ``line`` (x1, y1, x2, y2 in pixels, extended both ways)
        between its first and last centroid: ``"in"`` from the line's left to its right looking
        from (x1, y1) towards (x2, y2) in the image — for a line drawn left to right, moving down
        the picture — ``"out"`` the other way, None when it ended on the side where it started.
        """
        start = _side(line, self.first_centroid)
        end = _side(line, self.centroid)
        if start < 0 < end:
            return "in"
        if end < 0 < start:
            return "out"
        return None


@dataclass(frozen=True, slots=True)
class Update:
    """What one ``Tracker.update`` did: the live tracks, the tracks that ended now (each
    reported once, so the loop can finalise that pass), and the track id given to each
    detection, in the order of the boxes passed in."""

    active: list[Track]
    ended: list[Track]
    assignment: np.ndarray


class Tracker:
    """Assigns detections to tracks over time.

    A detection matches a track when their IoU (against the track's predicted box) reaches
    ``iou_match`` or their centroids are within ``max_distance`` face sizes. A track ends once
    not seen for ``max_missed_s`` seconds; a track that has not yet reached ``min_hits``
    detections ends at its first miss, so a one-off false detection does not linger and catch
    a real face's detections. ``update`` must be called only for frames the detector ran on.
    """

    def __init__(
        self,
        iou_match: float = 0.3,
        max_missed_s: float = 1.0,
        min_hits: int = 2,
        max_distance: float = 1.5,
    ) -> None:
        self.iou_match = iou_match
        self.max_missed_s = max_missed_s
        self.min_hits = min_hits
        self.max_distance = max_distance
        self._tracks: list[Track] = []
        self._ids = itertools.count(1)

    @property
    def tracks(self) -> list[Track]:
        """The live tracks, oldest first."""
        return list(self._tracks)

    def update(self, boxes: np.ndarray, timestamp: float) -> Update:
        """Match (N, 4) x1, y1, x2, y2 detections seen at ``timestamp`` (monotonic seconds,
        the frame's capture time) to the tracks; every unmatched detection starts a track."""
        boxes = np.array(boxes, np.float32).reshape(-1, 4)  # a copy: tracks keep its rows
        live: list[Track] = []
        ended: list[Track] = []
        for track in self._tracks:
            (live if timestamp - track.last_seen <= self.max_missed_s else ended).append(track)

        assignment = np.zeros(len(boxes), np.int64)
        matched = np.zeros(len(live), bool)
        unmatched = np.ones(len(boxes), bool)
        if live and len(boxes):
            last = np.stack([t.box for t in live])
            velocity = np.stack([t.velocity for t in live])
            elapsed = np.array([timestamp - t.last_seen for t in live], np.float32)[:, None]
            cost, valid = self._cost(last + velocity * elapsed, boxes)
            rows, cols = linear_sum_assignment(cost)
            keep = valid[rows, cols]
            rows, cols = rows[keep], cols[keep]
            # Velocity from the last two observations, whatever time separates them.
            dt = elapsed[rows]
            moved = (boxes[cols] - last[rows]) / np.maximum(dt, np.float32(1e-6))
            velocities = np.where(dt > 0, moved, velocity[rows])
            for row, col, track_velocity in zip(rows, cols, velocities, strict=True):
                track = live[row]
                track.box, track.velocity, track.last_seen = boxes[col], track_velocity, timestamp
                track.hits += 1
                track.confirmed = track.confirmed or track.hits >= self.min_hits
                assignment[col] = track.id
            matched[rows] = True
            unmatched[cols] = False

        survivors = []
        for track, seen in zip(live, matched.tolist(), strict=True):
            (survivors if seen or track.confirmed else ended).append(track)
        for col in np.flatnonzero(unmatched).tolist():
            track = Track(next(self._ids), boxes[col], timestamp, timestamp)
            track.confirmed = self.min_hits <= 1
            survivors.append(track)
            assignment[col] = track.id
        self._tracks = survivors
        return Update(list(survivors), ended, assignment)

    def finish(self) -> list[Track]:
        """End every live track (the source has ended) and return them."""
        ended, self._tracks = self._tracks, []
        return ended

    def _cost(self, predicted: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, N) cost of giving each detection to each track's predicted box, and whether
        the pair may match at all."""
        area_t, area_d = _areas(predicted), _areas(boxes)
        iou = _iou(predicted, boxes, area_t, area_d)
        # Distance in units of the face's size (the geometric mean of the two boxes' sides).
        offset = _centroids(predicted)[:, None, :] - _centroids(boxes)[None, :, :]
        squared = (offset * offset).sum(axis=2) / np.sqrt(np.outer(area_t, area_d))
        distance = np.sqrt(squared)
        valid = (iou >= self.iou_match) | (distance <= self.max_distance)
        cost = (1.0 - iou) + distance / self.max_distance
        # Forbidden pairs cost more than any allowed assignment could, so they are chosen only
        # when nothing else is left, and are then refused by ``valid``.
        return np.where(valid, cost, 1e6), valid


def _centroids(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) * 0.5


def _areas(boxes: np.ndarray) -> np.ndarray:
    """Box areas, at least one pixel so that no ratio divides by zero."""
    return np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0)


def _iou(a: np.ndarray, b: np.ndarray, area_a: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x1, y1, x2, y2 boxes."""
    size = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
    np.maximum(size, 0.0, out=size)
    inter = size[..., 0] * size[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _side(line: tuple[float, float, float, float], point: np.ndarray) -> float:
    """Positive on the right of the directed line in image coordinates (y down), negative on
    the left, zero on it."""
    x1, y1, x2, y2 = line
    return float((x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1))
