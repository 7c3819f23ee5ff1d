"""Face quality: is a detected face good enough to be worth an embedding?

Embedding a blurred, tiny or turned face wastes the gate's slowest stage and, worse, produces a
template that matches the wrong person more easily. Each face is measured on four things —
size, sharpness, head pose and detector confidence — and refused with the reason when any falls
below the pack's thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.packs import QualitySpec

# Nose tip depth in front of the eyes' plane, as a fraction of the inter-ocular distance (about
# 30 mm against 63 mm on an adult); turns the nose's offset in the image into an angle.
_NOSE_DEPTH = 0.5
# Where the nose sits between the eye line (0) and the mouth line (1) on a frontal face, as
# five-point detectors place it.
_NOSE_HEIGHT_FRONTAL = 0.5


@dataclass(frozen=True, slots=True)
class Quality:
    """Quality figures of N faces, as arrays of shape (N,)."""

    size_px: np.ndarray
    sharpness: np.ndarray
    yaw_deg: np.ndarray
    pitch_deg: np.ndarray
    detector_score: np.ndarray

    def score(self, spec: QualitySpec) -> np.ndarray:
        """One figure in [0, 1] per face for the event's ``quality`` field: size, sharpness and
        frontality each scaled to 1 at twice their minimum, multiplied together."""
        size = np.clip(self.size_px / (2.0 * spec.min_face_px), 0.0, 1.0)
        sharp = np.clip(self.sharpness / (2.0 * max(spec.min_sharpness, 1e-6)), 0.0, 1.0)
        pose = np.cos(np.radians(self.yaw_deg)) * np.cos(np.radians(self.pitch_deg))
        return (size * sharp * np.clip(pose, 0.0, 1.0)).astype(np.float32)


def head_pose(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch in degrees estimated from (N, 5, 2) five-point landmarks.

    The points are first rotated so the eyes are level (in-plane roll does not hurt
    recognition, alignment removes it). Yaw comes from how far the nose tip sits off the
    eyes-to-mouth midline, pitch from how far it sits above or below its frontal height.
    Positive yaw: the face turns towards the image's left; positive pitch: it looks down.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    left_eye, right_eye, nose = pts[:, 0], pts[:, 1], pts[:, 2]
    mouth = (pts[:, 3] + pts[:, 4]) / 2.0
    eyes = (left_eye + right_eye) / 2.0
    delta = right_eye - left_eye
    iod = np.maximum(np.hypot(delta[:, 0], delta[:, 1]), 1e-6)
    cos, sin = delta[:, 0] / iod, delta[:, 1] / iod

    def level(points: np.ndarray) -> np.ndarray:
        rel = points - eyes
        return np.stack([rel[:, 0] * cos + rel[:, 1] * sin, -rel[:, 0] * sin + rel[:, 1] * cos], 1)

    nose_l, mouth_l = level(nose), level(mouth)
    midline_x = mouth_l[:, 0] * np.clip(nose_l[:, 1] / np.maximum(mouth_l[:, 1], 1e-6), 0, 1)
    yaw = np.degrees(np.arctan((midline_x - nose_l[:, 0]) / (_NOSE_DEPTH * iod)))
    height = np.maximum(mouth_l[:, 1], 1e-6)
    offset = nose_l[:, 1] - _NOSE_HEIGHT_FRONTAL * height
    pitch = np.degrees(np.arctan(offset / (_NOSE_DEPTH * iod)))
    return yaw.astype(np.float32), pitch.astype(np.float32)


def sharpness(chips: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each aligned chip (N, H, W, 3) uint8: low means blurred.

    Measured on the aligned chip, so faces of every size are judged at one scale: a small face
    upscaled to the chip size is rightly found soft.
    """
    out = np.empty(len(chips), dtype=np.float32)
    for i, chip in enumerate(chips):
        grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
        out[i] = cv2.Laplacian(grey, cv2.CV_32F).var()
    return out


def measure(
    boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, chips: np.ndarray
) -> Quality:
    """Quality of N detected faces, given their boxes, scores, landmarks and aligned chips."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    size = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    yaw, pitch = head_pose(landmarks)
    return Quality(
        size_px=size,
        sharpness=sharpness(chips),
        yaw_deg=yaw,
        pitch_deg=pitch,
        detector_score=np.asarray(scores, dtype=np.float32).reshape(-1),
    )


def refusals(quality: Quality, spec: QualitySpec) -> list[str | None]:
    """For each face, None when it may be embedded, else why not (in English, for logs/UI)."""
    reasons: list[str | None] = []
    for i in range(len(quality.size_px)):
        if quality.size_px[i] < spec.min_face_px:
            reasons.append(f"too small ({quality.size_px[i]:.0f} px < {spec.min_face_px})")
        elif quality.detector_score[i] < spec.min_detector_score:
            reasons.append(f"doubtful face (score {quality.detector_score[i]:.2f})")
        elif abs(quality.yaw_deg[i]) > spec.max_yaw_deg:
            reasons.append(f"head turned ({quality.yaw_deg[i]:+.0f}° yaw)")
        elif abs(quality.pitch_deg[i]) > spec.max_pitch_deg:
            reasons.append(f"head tilted ({quality.pitch_deg[i]:+.0f}° pitch)")
        elif quality.sharpness[i] < spec.min_sharpness:
            reasons.append(
                f"blurred (sharpness {quality.sharpness[i]:.0f} < {spec.min_sharpness:.0f})"
            )
        else:
            reasons.append(None)
    return reasons
