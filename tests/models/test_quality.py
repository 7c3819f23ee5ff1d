"""Quality figures: pose from landmarks, sharpness from the chip, and the reasons for refusal."""

from __future__ import annotations

import cv2
import numpy as np

from models.packs import QualitySpec
from models.quality import head_pose, measure, refusals, sharpness

# A frontal face's five points (eyes, nose tip, mouth corners), 60 px between the eyes.
FRONTAL = np.array([[70, 100], [130, 100], [100, 130], [75, 160], [125, 160]], np.float64)
SPEC = QualitySpec(
    min_face_px=40, min_sharpness=15, max_yaw_deg=40, max_pitch_deg=30, min_detector_score=0.9
)


def _rotated(points: np.ndarray, degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = points.mean(0)
    return (points - centre) @ rotation.T + centre


def test_frontal_face_has_no_yaw_or_pitch_even_when_rolled() -> None:
    faces = np.stack([FRONTAL, _rotated(FRONTAL, 25), _rotated(FRONTAL, -40)])
    yaw, pitch = head_pose(faces)
    np.testing.assert_allclose(yaw, 0, atol=0.5)
    np.testing.assert_allclose(pitch, pitch[0], atol=0.5)


def test_nose_off_the_midline_means_a_turned_head() -> None:
    turned = FRONTAL.copy()
    turned[2, 0] -= 25  # nose towards the image's left
    other = FRONTAL.copy()
    other[2, 0] += 25
    yaw, _ = head_pose(np.stack([turned, other]))
    assert yaw[0] > 30 and yaw[1] < -30
    down = FRONTAL.copy()
    down[2, 1] += 20
    _, pitch = head_pose(np.stack([FRONTAL, down]))
    assert pitch[1] - pitch[0] > 20


def test_blur_lowers_sharpness() -> None:
    rng = np.random.default_rng(1)
    chip = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(chip, (0, 0), 3)
    sharp, soft = sharpness(np.stack([chip, blurred]))
    assert sharp > 50 * soft


def test_each_failing_figure_is_named() -> None:
    rng = np.random.default_rng(2)
    crisp = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
    flat = np.full((150, 150, 3), 128, np.uint8)
    turned = FRONTAL.copy()
    turned[2, 0] -= 40
    boxes = np.array(
        [[0, 0, 100, 100], [0, 0, 30, 30], [0, 0, 100, 100], [0, 0, 100, 100], [0, 0, 100, 100]],
        np.float32,
    )
    scores = np.array([0.99, 0.99, 0.5, 0.99, 0.99], np.float32)
    landmarks = np.stack([FRONTAL, FRONTAL, FRONTAL, turned, FRONTAL])
    chips = np.stack([crisp, crisp, crisp, crisp, flat])
    quality = measure(boxes, scores, landmarks, chips)
    reasons = refusals(quality, SPEC)
    assert reasons[0] is None
    assert reasons[1].startswith("too small (30 px")
    assert reasons[2].startswith("doubtful face")
    assert reasons[3].startswith("head turned")
    assert reasons[4].startswith("blurred")
    score = quality.score(SPEC)
    assert score[0] > score[1] and 0 < score[0] <= 1
