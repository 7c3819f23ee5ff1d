"""Face detectors: each takes an RGB image and returns :class:`Detections` (boxes, scores and
five landmarks), whichever network produced them."""

from models.detectors.detections import LANDMARK_NAMES, Detections

__all__ = ["LANDMARK_NAMES", "Detections"]
