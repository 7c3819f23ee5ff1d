"""Motion gate: a still doorway is quiet, a walking person is motion, light changes are not."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from edge.motion import MotionGate

HEIGHT, WIDTH = 720, 1280


def _doorway(seed: int = 0) -> np.ndarray:
    """A textured 720p RGB scene standing in for an empty doorway."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (18, 32, 3), dtype=np.uint8)
    return cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


# A few frames of sensor noise (sigma 3 grey levels), split into the parts that brighten and
# darken a pixel so they can be applied with saturating uint8 arithmetic.
_NOISE = [
    np.random.default_rng(seed).normal(0.0, 3.0, (HEIGHT, WIDTH, 3)).round().astype(np.int16)
    for seed in range(4)
]
_NOISE_PARTS = [
    (n.clip(0, 255).astype(np.uint8), (-n).clip(0, 255).astype(np.uint8)) for n in _NOISE
]


def _frames(
    image: np.ndarray, count: int, gains: Iterable[float] | None = None
) -> Iterator[np.ndarray]:
    """``count`` frames of ``image`` with fresh-looking sensor noise, scaled by ``gains``."""
    gains = itertools.repeat(1.0) if gains is None else gains
    for step, gain in zip(range(count), gains, strict=False):
        brighten, darken = _NOISE_PARTS[step % len(_NOISE_PARTS)]
        scaled = cv2.convertScaleAbs(image, alpha=gain)
        yield cv2.subtract(cv2.add(scaled, brighten), darken)


def _with_person(image: np.ndarray, x: int) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (x, 150), (x + 160, 700), (230, 200, 170), -1)
    cv2.circle(out, (x + 80, 110), 60, (90, 60, 40), -1)
    return out


def test_a_still_scene_is_not_motion_after_the_first_frame() -> None:
    gate = MotionGate()
    frames = _frames(_doorway(), 51)
    assert gate.moved(next(frames))  # nothing to compare with yet
    assert not any(gate.moved(frame) for frame in frames)
    assert gate.changed_fraction < gate.threshold


def test_a_person_walking_through_is_motion() -> None:
    gate, scene = MotionGate(), _doorway()
    for frame in _frames(scene, 20):
        gate.moved(frame)
    walking = [gate.moved(_with_person(scene, x)) for x in range(0, 1100, 40)]
    assert all(walking)
    assert gate.changed_fraction > 0.02


def test_a_slow_brightness_ramp_is_not_motion() -> None:
    gate, scene = MotionGate(), _doorway()
    # Dawn: the scene brightens by 40 % over 200 frames.
    ramp = (1.0 + 0.4 * step / 200 for step in range(201))
    assert not any([gate.moved(frame) for frame in _frames(scene, 201, ramp)][1:])


def test_an_exposure_step_over_the_whole_picture_is_not_motion() -> None:
    gate, scene = MotionGate(), _doorway()
    for frame in _frames(scene, 5):
        gate.moved(frame)
    brighter = cv2.add(scene, np.full_like(scene, 25))
    assert not gate.moved(next(_frames(brighter, 1)))


def test_someone_who_stops_fades_into_the_background() -> None:
    gate, scene = MotionGate(), _doorway()
    gate.moved(scene)
    results = [gate.moved(frame) for frame in _frames(_with_person(scene, 500), 150)]
    assert results[0]
    assert not any(results[-20:])
