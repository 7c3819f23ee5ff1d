"""dlib's face recognition ResNet, converted to ONNX by :mod:`models.convert.dlib_resnet`.

The converted graph takes the raw chip (float32 0..255, RGB, N×3×150×150) and does dlib's own
input normalisation inside, so this wrapper only reorders axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort


class DlibResnetRecogniser:
    """128-d descriptors from 150×150 RGB chips, one onnxruntime run per batch."""

    def __init__(
        self,
        path: Path,
        *,
        session_options: ort.SessionOptions | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        self._session = ort.InferenceSession(
            str(path), sess_options=session_options, providers=list(providers)
        )
        self._input = self._session.get_inputs()[0].name

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips → (N, 128) float32 raw (not normalised) descriptors."""
        if chips.ndim != 4 or chips.shape[1:] != (150, 150, 3):
            raise ValueError(f"expected N×150×150×3 chips, got {chips.shape}")
        if not len(chips):
            return np.zeros((0, 128), np.float32)
        batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        return self._session.run(None, {self._input: batch})[0]
