"""The face engine: detect → assess quality → align → embed, for whichever pack is installed.

A thin façade in the manner of insightface's ``FaceAnalysis``: the pack's manifest names the
detector, recogniser and alignment kinds, and the tables below pick the code that runs each, so
a new kind of network is one new entry here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime as ort

from models.detectors import Detections
from models.images import as_rgb
from models.packs import Pack
from models.quality import Quality, measure, refusals
from models.sessions import Optimisation, session_options


class Detector(Protocol):
    def detect(self, image: np.ndarray, *, min_face_size: float | None = None) -> Detections: ...


class Recogniser(Protocol):
    def embed(self, chips: np.ndarray) -> np.ndarray: ...


Aligner = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``align(rgb_image, landmarks)``: (N, 5, 2) detector landmarks → (N, H, W, 3) uint8 chips."""


def _mtcnn(pack: Pack, options: ort.SessionOptions) -> Detector:
    from models.detectors.mtcnn import MtcnnDetector

    files = pack.manifest.detector.files
    if {files.get("pnet"), files.get("rnet"), files.get("onet")} != {
        "pnet.onnx",
        "rnet.onnx",
        "onet.onnx",
    }:
        raise ValueError("an mtcnn detector needs pnet.onnx, rnet.onnx and onet.onnx")
    return MtcnnDetector(
        pack.root,
        min_face_size=pack.manifest.quality.min_face_px,
        session_options=options,
    )


def _scrfd(pack: Pack, options: ort.SessionOptions) -> Detector:
    from models.insightface_pack import ScrfdDetector

    spec = pack.manifest.detector
    return ScrfdDetector(
        pack.path(spec.files["model"]),
        session_options=options,
        score_threshold=spec.score_threshold,
        input_size=spec.input_size or (640, 640),
    )


def _dlib_resnet(pack: Pack, options: ort.SessionOptions) -> Recogniser:
    from models.recognisers.dlib_resnet import DlibResnetRecogniser

    return DlibResnetRecogniser(pack.path(pack.manifest.recogniser.file), session_options=options)


def _arcface(pack: Pack, options: ort.SessionOptions) -> Recogniser:
    from models.insightface_pack import ArcFaceRecogniser

    return ArcFaceRecogniser(pack.path(pack.manifest.recogniser.file), session_options=options)


def _dlib_template(pack: Pack) -> Aligner:
    from models.align import align_faces

    return align_faces


def _dlib_5pt(pack: Pack) -> Aligner:
    from models.shape_predictor import ShapePredictor, dlib_chips

    predictor = ShapePredictor.from_npz(pack.path(pack.manifest.recogniser.alignment_file))
    return lambda image, landmarks: dlib_chips(predictor, image, landmarks)


def _arcface_112(pack: Pack) -> Aligner:
    from models.insightface_pack import ARCFACE_CHIP, align_arcface

    def align(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        chips = np.empty((len(landmarks), ARCFACE_CHIP, ARCFACE_CHIP, 3), np.uint8)
        for chip, points in zip(chips, landmarks, strict=True):
            chip[:] = align_arcface(image, points)
        return chips

    return align


DETECTORS: dict[str, Callable[[Pack, ort.SessionOptions], Detector]] = {
    "mtcnn": _mtcnn,
    "scrfd": _scrfd,
}
RECOGNISERS: dict[str, Callable[[Pack, ort.SessionOptions], Recogniser]] = {
    "dlib-resnet": _dlib_resnet,
    "arcface": _arcface,
}
ALIGNERS: dict[str, Callable[[Pack], Aligner]] = {
    "dlib-150": _dlib_template,
    "dlib-5pt": _dlib_5pt,
    "arcface-112": _arcface_112,
}


@dataclass(frozen=True, slots=True)
class Faces:
    """Faces of one image: detections, their quality and, for those good enough, embeddings.

    ``embeddings`` is (N, D) float32, L2-normalised, with zero rows for refused faces;
    ``refusals[i]`` says why face ``i`` was not embedded (None when it was).
    """

    detections: Detections
    quality: Quality
    quality_score: np.ndarray
    refusals: list[str | None]
    embeddings: np.ndarray

    @property
    def embedded(self) -> np.ndarray:
        """Boolean mask of the faces that have an embedding."""
        return np.array([reason is None for reason in self.refusals], dtype=bool)


class FaceEngine:
    """All networks of one pack, with onnxruntime sessions created once and reused."""

    def __init__(self, pack: Pack, *, threads: int = 0, optimisation: Optimisation = "all"):
        options = session_options(threads, optimisation)
        manifest = pack.manifest
        self.pack = pack
        self.threshold = manifest.match_threshold
        self.identify_threshold = (
            manifest.identify_threshold
            if manifest.identify_threshold is not None
            else manifest.match_threshold
        )
        self.embedding_size = manifest.recogniser.embedding_size
        self.detector = DETECTORS[manifest.detector.kind](pack, options)
        self.recogniser = RECOGNISERS[manifest.recogniser.kind](pack, options)
        self._align = ALIGNERS[manifest.recogniser.alignment](pack)

    def detect(self, image: np.ndarray, *, min_face_size: float | None = None) -> Detections:
        """Faces in an RGB image (grey and RGBA accepted), best first."""
        return self.detector.detect(image, min_face_size=min_face_size)

    def align(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(N, 5, 2) landmarks → (N, H, W, 3) uint8 chips in the recogniser's geometry."""
        return self._align(as_rgb(image), np.asarray(landmarks, np.float64).reshape(-1, 5, 2))

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) chips → (N, D) L2-normalised float32 embeddings in one batch."""
        raw = np.asarray(self.recogniser.embed(chips), dtype=np.float32)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.maximum(norms, 1e-12)

    def analyse(self, image: np.ndarray, *, min_face_size: float | None = None) -> Faces:
        """Detect every face, measure its quality and embed those that pass the pack's bar."""
        rgb = as_rgb(image)
        found = self.detect(rgb, min_face_size=min_face_size)
        chips = self.align(rgb, found.landmarks)
        spec = self.pack.manifest.quality
        quality = measure(found.boxes, found.scores, found.landmarks, chips)
        reasons = refusals(quality, spec)
        embeddings = np.zeros((len(found), self.embedding_size), np.float32)
        ok = np.array([r is None for r in reasons], dtype=bool)
        if ok.any():
            embeddings[ok] = self.embed(chips[ok])
        return Faces(found, quality, quality.score(spec), reasons, embeddings)
