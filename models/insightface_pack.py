"""InsightFace packs (buffalo_l, buffalo_s, buffalo_sc, antelopev2): SCRFD finds faces, ArcFace
embeds them, both run by onnxruntime through the ``insightface`` package's own model classes.

The weights are InsightFace's and licensed for non-commercial research only, so they are never
downloaded here: a technician installs a pack from a folder or zip they obtained themselves
(``gatectl models install PATH_OR_ZIP``). Which file is the detector and which the recogniser is
decided by insightface's own model routing, which looks at each network's inputs and outputs, so
any of its packs installs without a table of file names; the pack's other networks (3-D and
106-point landmarks, gender/age) are left out.

``insightface`` is installed without its dependencies (it asks for the GUI build of OpenCV, which
conflicts with ``opencv-python-headless``); what it imports besides is ``scikit-image``, ``tqdm``
and ``requests``. Its model-licence code (``model_zoo/model_license.py``) only labels packs for
its GUI and is never called when loading a model from a path.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import onnxruntime as ort
from insightface.model_zoo import get_model
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.model_zoo.scrfd import SCRFD
from insightface.utils.face_align import norm_crop
from pydantic import TypeAdapter, ValidationError

from models.detectors.detections import Detections
from models.images import as_rgb
from models.packs import (
    DetectorSpec,
    Pack,
    PackError,
    PackManifest,
    PackName,
    QualitySpec,
    RecogniserSpec,
    default_models_dir,
    file_entries,
    install_pack,
)
from models.sessions import session_options as make_session_options

# norm_crop calls scikit-image's SimilarityTransform.estimate, deprecated since 0.26 (removed in
# 2.2); the warning would otherwise be printed for every aligned face.
warnings.filterwarnings(
    "ignore",
    message=r"`estimate` is deprecated",
    category=FutureWarning,
    module=r"insightface\.utils\.face_align",
)

LICENCE = "InsightFace model zoo: non-commercial research use only"

#: Cosine similarity at or above which two ArcFace embeddings are taken as one person: the
#: default of insightface's own verification tool (``insightface.gui.core.constants
#: .DEFAULT_THRESHOLD``, "leave 0.40 unless you have reviewed the results"). A school that has
#: measured its own false matches can change ``match_threshold`` in the pack's manifest.
MATCH_THRESHOLD = 0.40
#: SCRFD's own defaults (``SCRFD.det_thresh``, ``SCRFD.nms_thresh``) and its usual input size.
SCORE_THRESHOLD = 0.5
NMS_THRESHOLD = 0.4
INPUT_SIZE = (640, 640)
#: Faces not worth embedding. A face under 40 px is magnified three times or more onto the
#: 112-px chip; ArcFace tolerates more yaw than pitch.
QUALITY = QualitySpec(
    min_face_px=40,
    min_sharpness=20.0,
    max_yaw_deg=40.0,
    max_pitch_deg=30.0,
    min_detector_score=0.6,
)
ARCFACE_CHIP = 112

#: A zip holding more than this, once unpacked, is refused (buffalo_l unpacks to about 330 MB).
MAX_UNZIPPED_BYTES = 2 * 1024**3
MAX_ZIP_ENTRIES = 1000

_CPU = ("CPUExecutionProvider",)
_pack_name = TypeAdapter(PackName)


@dataclass(frozen=True)
class InsightFaceFiles:
    """The two networks of an InsightFace pack that campusgate runs."""

    detector: Path
    recogniser: Path


def identify_insightface_files(folder: Path) -> InsightFaceFiles:
    """Which ``.onnx`` file in ``folder`` is the SCRFD detector and which the ArcFace recogniser.

    Each file is routed by ``insightface.model_zoo.get_model``, which tells the networks apart by
    their inputs and outputs, never by file name. Other networks (landmarks, gender/age) are
    ignored. Raises :class:`PackError` when either is missing, or when there are several of one.
    """
    folder = Path(folder)
    candidates = sorted(
        p for p in folder.glob("*.onnx") if p.is_file() and not p.name.startswith(".")
    )
    if not candidates:
        raise PackError(f"{folder} holds no .onnx files; expected an InsightFace pack (buffalo_l…)")
    # Routing only reads the graphs' signatures: skip optimisation so large models open fast.
    options = make_session_options(threads=1, optimisation="disable")
    detectors: list[Path] = []
    recognisers: list[Path] = []
    unreadable: list[str] = []
    for path in candidates:
        try:
            model = get_model(str(path), providers=list(_CPU), sess_options=options)
        except Exception as exc:  # onnx, onnxruntime and insightface each raise their own
            unreadable.append(f"{path.name} ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        if isinstance(model, SCRFD):
            detectors.append(path)
        elif isinstance(model, ArcFaceONNX):
            recognisers.append(path)
    names = ", ".join(p.name for p in candidates)
    problems = f"; could not read {', '.join(unreadable)}" if unreadable else ""
    for role, found in (("SCRFD face detector", detectors), ("ArcFace recogniser", recognisers)):
        if not found:
            raise PackError(f"no {role} among {names} in {folder}{problems}")
        if len(found) > 1:
            raise PackError(
                f"{folder} has several {role}s ({', '.join(p.name for p in found)}); "
                "install one pack at a time"
            )
    return InsightFaceFiles(detector=detectors[0], recogniser=recognisers[0])


class ScrfdDetector:
    """Faces and five landmarks from an SCRFD network, decoded by insightface's ``SCRFD``.

    The image is letterboxed into ``input_size`` (width, height; a multiple of the largest
    stride, 32) unless the network has a fixed input, which then wins. One onnxruntime session
    is created here with ``session_options`` and used for every call. SCRFD's landmarks come in
    the order of :data:`~models.detectors.LANDMARK_NAMES` (left eye as seen in the image first),
    which is also what ``norm_crop`` expects.
    """

    def __init__(
        self,
        path: Path,
        *,
        session_options: ort.SessionOptions | None = None,
        score_threshold: float = SCORE_THRESHOLD,
        input_size: tuple[int, int] = INPUT_SIZE,
        nms_threshold: float = NMS_THRESHOLD,
        providers: Sequence[str] = _CPU,
    ) -> None:
        if not 0.0 < score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in (0, 1], got {score_threshold}")
        if not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
        session = ort.InferenceSession(
            str(path), sess_options=session_options, providers=list(providers)
        )
        # Without static_shape_sessions=False, SCRFD builds a second, fixed-shape session per
        # input size (an aid for CoreML) that would not share our options, doubling memory.
        model = SCRFD(model_file=str(path), session=session, static_shape_sessions=False)
        if not hasattr(model, "fmc"):
            count = len(session.get_outputs())
            raise ValueError(f"{path.name} is not an SCRFD detector ({count} outputs)")
        if not model.use_kps:
            raise ValueError(f"{path.name} gives no landmarks; use an SCRFD *_kps/bnkps model")
        size = model.static_input_size or tuple(int(v) for v in input_size)
        largest_stride = 8 * 2 ** (model.fmc - 1)
        if len(size) != 2 or any(v <= 0 or v % largest_stride for v in size):
            raise ValueError(
                f"input_size must be two positive multiples of {largest_stride}, got {input_size}"
            )
        model.nms_thresh = float(nms_threshold)
        self._model = model
        self.input_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.score_threshold = float(score_threshold)

    def detect(self, image: np.ndarray, *, min_face_size: float | None = None) -> Detections:
        """The faces in an RGB image (grey and RGBA accepted), best score first.

        ``min_face_size`` drops faces whose box is narrower or shorter than that many pixels.
        """
        if min_face_size is not None and min_face_size <= 0:
            raise ValueError(f"min_face_size must be positive, got {min_face_size}")
        rgb = as_rgb(image)
        if rgb.size == 0:
            return Detections.empty()
        # insightface takes OpenCV's BGR and swaps it back to RGB for the network.
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        det, kps = self._model.detect(
            bgr, input_size=self.input_size, det_thresh=self.score_threshold
        )
        if not len(det):
            return Detections.empty()
        boxes, scores = det[:, :4], det[:, 4]
        keep = np.ones(len(det), dtype=bool)
        if min_face_size is not None:
            keep = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= min_face_size
        order = np.argsort(-scores[keep], kind="stable")
        return Detections(
            boxes=np.ascontiguousarray(boxes[keep][order], dtype=np.float32),
            scores=np.ascontiguousarray(scores[keep][order], dtype=np.float32),
            landmarks=np.ascontiguousarray(kps[keep][order].reshape(-1, 5, 2), dtype=np.float32),
        )


class ArcFaceRecogniser:
    """Embeddings from aligned ArcFace chips, through insightface's ``ArcFaceONNX``.

    ``ArcFaceONNX`` decides the input scaling from the graph (pixels mapped to [-1, 1] for
    PyTorch exports such as w600k_r50, left as 0–255 for MXNet ones that normalise inside).
    """

    def __init__(
        self,
        path: Path,
        *,
        session_options: ort.SessionOptions | None = None,
        providers: Sequence[str] = _CPU,
    ) -> None:
        session = ort.InferenceSession(
            str(path), sess_options=session_options, providers=list(providers)
        )
        model = ArcFaceONNX(model_file=str(path), session=session)
        width, height = model.input_size
        if not all(isinstance(v, int) and v > 0 for v in (width, height)):
            raise ValueError(f"{path.name} has no fixed chip size: input {model.input_shape}")
        self._model = model
        self.input_size: tuple[int, int] = (width, height)
        # Some exports fix the batch at 1; those are run one chip at a time.
        self._one_at_a_time = model.input_shape[0] == 1
        declared = model.output_shape[-1]
        self.embedding_size: int = (
            declared
            if isinstance(declared, int) and declared > 0
            else self._run(np.zeros((1, height, width, 3), np.uint8)).shape[1]
        )

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB chips → (N, D) float32 raw (not normalised) embeddings, the
        whole batch in one onnxruntime run."""
        width, height = self.input_size
        if (
            not isinstance(chips, np.ndarray)
            or chips.dtype != np.uint8
            or chips.ndim != 4
            or chips.shape[1:] != (height, width, 3)
        ):
            shape = getattr(chips, "shape", None)
            raise ValueError(f"expected N×{height}×{width}×3 uint8 chips, got {shape}")
        if not len(chips):
            return np.zeros((0, self.embedding_size), np.float32)
        return self._run(chips)

    def _run(self, chips: np.ndarray) -> np.ndarray:
        # ArcFaceONNX.forward applies the model's mean and std to an RGB N×3×H×W batch; its
        # get_feat would take BGR images only to swap them back, so RGB chips go straight in.
        batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        if self._one_at_a_time:
            out = np.concatenate([self._model.forward(batch[i : i + 1]) for i in range(len(batch))])
        else:
            out = self._model.forward(batch)
        return np.asarray(out, dtype=np.float32).reshape(len(chips), -1)


def align_arcface(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112×112×3 chip ArcFace expects, cut from an RGB image by insightface's ``norm_crop``
    (a similarity transform of the five landmarks onto ArcFace's template); RGB stays RGB."""
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (5, 2):
        raise ValueError(f"expected five (x, y) landmarks, got shape {points.shape}")
    return norm_crop(as_rgb(image), landmark=points, image_size=ARCFACE_CHIP)


def build_insightface_pack(source: Path, staging: Path, name: str | None = None) -> PackManifest:
    """Put an InsightFace pack's detector and recogniser into ``staging`` and describe them.

    ``source`` is a folder or a zip (files at its top or in one folder, as InsightFace ships
    them). The pack is named ``name``, else after the folder or zip, lower-cased. Both networks
    are opened and run once, so a pack that installs is one that works. For use with
    :func:`models.packs.install_pack`; raises :class:`PackError` saying what is wrong.
    """
    source = Path(source)
    pack_name = _valid_name(name) if name else _valid_name(source.stem.lower(), derived=True)
    with _unpacked(source, staging.parent) as (folder, from_zip):
        files = identify_insightface_files(folder)
        for path in (files.detector, files.recogniser):
            if from_zip:
                shutil.move(path, staging / path.name)
            else:
                shutil.copyfile(path, staging / path.name)
    det_file, rec_file = files.detector.name, files.recogniser.name
    detector, recogniser = _open_and_run(staging / det_file, staging / rec_file)
    if recogniser.input_size != (ARCFACE_CHIP, ARCFACE_CHIP):
        raise PackError(
            f"{rec_file} takes {recogniser.input_size[0]}×{recogniser.input_size[1]} chips; "
            f"only {ARCFACE_CHIP}×{ARCFACE_CHIP} ArcFace models are supported"
        )
    entries = file_entries(staging, [det_file, rec_file])
    # InsightFace packs carry no version number; a fingerprint of the weights stands in for one.
    fingerprint = hashlib.sha256("".join(e.sha256 for e in entries).encode()).hexdigest()[:12]
    return PackManifest(
        name=pack_name,
        version=fingerprint,
        licence=LICENCE,
        source=f"InsightFace pack {source.name}: {det_file} (SCRFD), {rec_file} (ArcFace)"[:500],
        detector=DetectorSpec(
            kind="scrfd",
            files={"model": det_file},
            input_size=detector.input_size,
            score_threshold=detector.score_threshold,
        ),
        recogniser=RecogniserSpec(
            kind="arcface",
            file=rec_file,
            alignment="arcface-112",
            input_size=recogniser.input_size,
            embedding_size=recogniser.embedding_size,
        ),
        match_threshold=MATCH_THRESHOLD,
        quality=QUALITY,
        files=entries,
    )


def install_insightface_pack(
    source: Path, models_dir: Path | None = None, *, name: str | None = None
) -> Pack:
    """Install an InsightFace pack from a folder or zip into the models directory, atomically."""
    return install_pack(
        models_dir or default_models_dir(),
        lambda staging: build_insightface_pack(source, staging, name),
    )


def _valid_name(candidate: str, *, derived: bool = False) -> str:
    try:
        return _pack_name.validate_python(candidate)
    except ValidationError:
        hint = "; give the pack a name explicitly" if derived else ""
        raise PackError(
            f"{candidate!r} is not a valid pack name: use up to 64 lower-case letters, digits, "
            f"'.', '_' or '-', starting with a letter or digit{hint}"
        ) from None


def _open_and_run(det_path: Path, rec_path: Path) -> tuple[ScrfdDetector, ArcFaceRecogniser]:
    try:
        detector = ScrfdDetector(det_path)
        detector.detect(np.zeros((*detector.input_size[::-1], 3), np.uint8))
    except Exception as exc:  # anything onnxruntime or insightface raise means a broken file
        raise PackError(f"{det_path.name} does not run as an SCRFD detector: {exc}") from exc
    try:
        recogniser = ArcFaceRecogniser(rec_path)
        width, height = recogniser.input_size
        recogniser.embed(np.zeros((1, height, width, 3), np.uint8))
    except Exception as exc:
        raise PackError(f"{rec_path.name} does not run as an ArcFace recogniser: {exc}") from exc
    return detector, recogniser


@contextmanager
def _unpacked(source: Path, scratch_parent: Path) -> Iterator[tuple[Path, bool]]:
    """The folder holding the pack's ``.onnx`` files, and whether it is a scratch copy."""
    if source.is_dir():
        yield source, False
    elif source.is_file() and zipfile.is_zipfile(source):
        with tempfile.TemporaryDirectory(prefix=".unzip-", dir=scratch_parent) as scratch:
            yield _extract_onnx(source, Path(scratch)), True
    elif source.exists():
        raise PackError(f"{source} is neither a folder nor a zip file")
    else:
        raise PackError(f"{source} does not exist")


def _extract_onnx(archive_path: Path, dest: Path) -> Path:
    """Extract a zip's ``.onnx`` files into ``dest`` after checking every entry is safe."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise PackError(f"{archive_path.name} has {len(infos)} entries; refusing it")
            total = 0
            wanted: list[zipfile.ZipInfo] = []
            for info in infos:
                _check_entry(archive_path, info)
                total += info.file_size
                parts = PurePosixPath(info.filename).parts
                if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
                    continue
                if parts[-1].lower().endswith(".onnx"):
                    wanted.append(info)
            if total > MAX_UNZIPPED_BYTES:
                raise PackError(
                    f"{archive_path.name} unpacks to {total / 2**30:.1f} GiB, more than the "
                    f"{MAX_UNZIPPED_BYTES / 2**30:.0f} GiB an InsightFace pack can be; refusing it"
                )
            if not wanted:
                raise PackError(f"{archive_path.name} holds no .onnx files")
            folders = sorted({str(PurePosixPath(i.filename).parent) for i in wanted})
            if len(folders) > 1 or folders[0].count("/"):
                raise PackError(
                    f"{archive_path.name} must hold its .onnx files at its top or in one folder; "
                    f"found them in {', '.join(f + '/' for f in folders)}"
                )
            names = [PurePosixPath(i.filename).name for i in wanted]
            if len(set(names)) < len(names):
                raise PackError(f"{archive_path.name} lists the same file twice")
            for info, filename in zip(wanted, names, strict=True):
                with archive.open(info) as src, (dest / filename).open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as exc:
        raise PackError(f"{archive_path.name} is damaged: {exc}") from None
    return dest


def _check_entry(archive_path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or "\\" in name or ":" in parts[0] or ".." in parts:
        raise PackError(f"{archive_path.name}: entry {name!r} points outside the pack; refusing it")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise PackError(f"{archive_path.name}: entry {name!r} is a symbolic link; refusing it")
    if info.flag_bits & 0x1:
        raise PackError(f"{archive_path.name}: entry {name!r} is encrypted")
