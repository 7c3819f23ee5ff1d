"""InsightFace packs run through insightface's own classes, exercised with tiny ONNX stand-ins."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from insightface.model_zoo.arcface_onnx import ArcFaceONNX
from insightface.utils.face_align import arcface_dst

import models.insightface_pack as pack_module
from models.detectors import Detections
from models.insightface_pack import (
    LICENCE,
    ArcFaceRecogniser,
    ScrfdDetector,
    align_arcface,
    build_insightface_pack,
    identify_insightface_files,
    install_insightface_pack,
)
from models.packs import MANIFEST, PackError, install_pack, load_pack
from tests.models.tiny_onnx import (
    BUFFALO_L_FILES,
    TinyFace,
    write_arcface,
    write_buffalo_like,
    write_genderage,
    write_landmark_3d68,
    write_scrfd,
)

# Two faces in network-input pixels (640×640). A 1280×720 image is letterboxed into the top
# 640×360 of the input at half scale, so in the image every coordinate is doubled.
BIG = TinyFace(
    box=(100, 80, 200, 200),
    landmarks=((130, 120), (170, 121), (150, 150), (135, 175), (166, 174)),
    score=0.95,
    stride=16,
)
SMALL = TinyFace(
    box=(400, 200, 420, 224),
    landmarks=((405, 208), (415, 208), (410, 214), (406, 219), (414, 219)),
    score=0.7,
    stride=8,
    anchor=1,
)
SCALE = 2.0

# insightface's norm_crop calls a scikit-image method deprecated in 0.26; the module silences it,
# but pytest resets warning filters after collection.
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")


def _frame(width: int = 1280, height: int = 720) -> np.ndarray:
    """An RGB frame whose red channel outshines its blue one, which the tiny SCRFD insists on."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0], frame[..., 2] = 200, 40
    return frame


@pytest.fixture(scope="module")
def buffalo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_buffalo_like(tmp_path_factory.mktemp("buffalo_l"), [BIG, SMALL])


# --- identifying the networks ---------------------------------------------------------------


def test_identify_picks_the_detector_and_recogniser_among_the_pack_files(buffalo: Path) -> None:
    assert sorted(p.name for p in buffalo.glob("*.onnx")) == sorted(BUFFALO_L_FILES)
    files = identify_insightface_files(buffalo)
    assert files.detector == buffalo / "det_10g.onnx"
    assert files.recogniser == buffalo / "w600k_r50.onnx"


def test_identify_goes_by_what_the_files_are_not_their_names(tmp_path: Path) -> None:
    write_scrfd(tmp_path / "model_a.onnx")
    write_arcface(tmp_path / "model_b.onnx", input_name="data")
    write_genderage(tmp_path / "model_c.onnx")
    (tmp_path / "._model_a.onnx").write_bytes(b"macOS resource fork")
    files = identify_insightface_files(tmp_path)
    assert (files.detector.name, files.recogniser.name) == ("model_a.onnx", "model_b.onnx")


def test_identify_says_what_is_missing_or_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="holds no .onnx files"):
        identify_insightface_files(tmp_path)
    write_landmark_3d68(tmp_path / "1k3d68.onnx")
    write_arcface(tmp_path / "w600k_r50.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(PackError, match=r"no SCRFD face detector .* could not read broken.onnx"):
        identify_insightface_files(tmp_path)
    (tmp_path / "broken.onnx").unlink()
    write_scrfd(tmp_path / "det_10g.onnx")
    write_arcface(tmp_path / "glintr100.onnx", seed=5)
    with pytest.raises(PackError, match=r"several ArcFace recognisers \(glintr100.onnx, w600k"):
        identify_insightface_files(tmp_path)


# --- SCRFD -----------------------------------------------------------------------------------


def _assert_face(found: Detections, row: int, face: TinyFace, scale: float) -> None:
    np.testing.assert_allclose(found.boxes[row], np.array(face.box) * scale, atol=1e-3)
    np.testing.assert_allclose(found.landmarks[row], np.array(face.landmarks) * scale, atol=1e-3)
    assert found.scores[row] == pytest.approx(face.score)


def test_scrfd_returns_boxes_and_landmarks_in_image_pixels(buffalo: Path) -> None:
    found = ScrfdDetector(buffalo / "det_10g.onnx").detect(_frame())
    assert isinstance(found, Detections) and len(found) == 2
    assert found.boxes.dtype == found.scores.dtype == found.landmarks.dtype == np.float32
    assert found.landmarks.shape == (2, 5, 2)
    _assert_face(found, 0, BIG, SCALE)  # best score first
    _assert_face(found, 1, SMALL, SCALE)


def test_scrfd_landmarks_come_left_eye_first_as_norm_crop_expects(buffalo: Path) -> None:
    (left_eye, right_eye, nose, mouth_left, mouth_right) = (
        ScrfdDetector(buffalo / "det_10g.onnx").detect(_frame()).landmarks[0]
    )
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert left_eye[1] < nose[1] < mouth_left[1]
    # insightface's ArcFace template lists its points in the same order.
    assert arcface_dst[0, 0] < arcface_dst[1, 0] and arcface_dst[3, 0] < arcface_dst[4, 0]


def test_scrfd_feeds_the_network_rgb(buffalo: Path) -> None:
    detector = ScrfdDetector(buffalo / "det_10g.onnx")
    assert len(detector.detect(_frame())) == 2
    # The same picture with red and blue swapped is what a BGR mix-up would show the network.
    assert len(detector.detect(_frame()[..., ::-1].copy())) == 0


def test_scrfd_respects_min_face_size_and_score_threshold(buffalo: Path) -> None:
    detector = ScrfdDetector(buffalo / "det_10g.onnx")
    small_side = min(SMALL.box[2] - SMALL.box[0], SMALL.box[3] - SMALL.box[1]) * SCALE
    found = detector.detect(_frame(), min_face_size=small_side + 1)
    assert len(found) == 1
    _assert_face(found, 0, BIG, SCALE)
    assert len(detector.detect(_frame(), min_face_size=small_side)) == 2
    strict = ScrfdDetector(buffalo / "det_10g.onnx", score_threshold=0.8)
    assert len(strict.detect(_frame())) == 1
    with pytest.raises(ValueError, match="min_face_size must be positive"):
        detector.detect(_frame(), min_face_size=0)


def test_scrfd_letterboxes_portrait_images_and_accepts_grey(buffalo: Path) -> None:
    # 360×720 portrait: scaled by 640/720 into the input's left 320 columns.
    detector = ScrfdDetector(buffalo / "det_10g.onnx")
    found = detector.detect(_frame(360, 720))
    assert len(found) == 2
    _assert_face(found, 0, BIG, 720 / 640)
    _assert_face(found, 1, SMALL, 720 / 640)
    assert len(detector.detect(np.full((720, 1280), 128, np.uint8))) == 0  # grey: red == blue
    assert len(detector.detect(np.zeros((0, 0, 3), np.uint8))) == 0


def test_scrfd_handles_batched_outputs_and_fixed_inputs(tmp_path: Path) -> None:
    batched = ScrfdDetector(write_scrfd(tmp_path / "batched.onnx", [BIG], batched=True))
    _assert_face(batched.detect(_frame()), 0, BIG, SCALE)
    fixed_path = write_scrfd(tmp_path / "fixed.onnx", [BIG], input_size=(640, 640))
    fixed = ScrfdDetector(fixed_path, input_size=(320, 320))
    assert fixed.input_size == (640, 640)  # the network's own size wins
    _assert_face(fixed.detect(_frame()), 0, BIG, SCALE)


def test_scrfd_refuses_models_and_sizes_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gives no landmarks"):
        ScrfdDetector(write_scrfd(tmp_path / "nokps.onnx", with_keypoints=False))
    with pytest.raises(ValueError, match="multiples of 32"):
        ScrfdDetector(write_scrfd(tmp_path / "det.onnx"), input_size=(640, 500))
    with pytest.raises(ValueError, match="score_threshold"):
        ScrfdDetector(tmp_path / "det.onnx", score_threshold=0)


# --- ArcFace ---------------------------------------------------------------------------------


def _chips(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_arcface_embeds_a_batch_as_it_embeds_each_chip(buffalo: Path) -> None:
    recogniser = ArcFaceRecogniser(buffalo / "w600k_r50.onnx")
    assert recogniser.input_size == (112, 112) and recogniser.embedding_size == 512
    chips = _chips(4)
    batch = recogniser.embed(chips)
    assert batch.shape == (4, 512) and batch.dtype == np.float32
    singles = np.concatenate([recogniser.embed(chips[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(batch, singles, rtol=1e-5, atol=1e-5)
    assert not np.allclose(batch[0], batch[1])
    assert recogniser.embed(chips[:0]).shape == (0, 512)


def test_arcface_sees_the_chips_as_insightface_get_feat_sees_bgr_images(buffalo: Path) -> None:
    path = buffalo / "w600k_r50.onnx"
    chips = _chips(3, seed=1)
    reference = ArcFaceONNX(model_file=str(path)).get_feat([c[..., ::-1].copy() for c in chips])
    np.testing.assert_allclose(ArcFaceRecogniser(path).embed(chips), reference, atol=1e-4)


def test_arcface_with_a_fixed_batch_of_one_still_takes_batches(tmp_path: Path) -> None:
    fixed = ArcFaceRecogniser(write_arcface(tmp_path / "one.onnx", fixed_batch=True))
    free = ArcFaceRecogniser(write_arcface(tmp_path / "many.onnx"))
    np.testing.assert_allclose(fixed.embed(_chips(3)), free.embed(_chips(3)), atol=1e-5)


def test_arcface_refuses_chips_of_the_wrong_shape(buffalo: Path) -> None:
    recogniser = ArcFaceRecogniser(buffalo / "w600k_r50.onnx")
    with pytest.raises(ValueError, match="N×112×112×3 uint8"):
        recogniser.embed(np.zeros((1, 150, 150, 3), np.uint8))
    with pytest.raises(ValueError, match="N×112×112×3 uint8"):
        recogniser.embed(np.zeros((1, 112, 112, 3), np.float32))


def test_align_arcface_maps_the_landmarks_onto_arcface_s_template() -> None:
    rng = np.random.default_rng(2)
    chip = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    # Landmarks already on the template: the chip is the image itself.
    np.testing.assert_array_equal(align_arcface(chip, arcface_dst), chip)
    # The same face twice as large and shifted in a bigger image comes back at 112×112.
    big = np.zeros((400, 500, 3), np.uint8)
    big[50:274, 100:324] = np.repeat(np.repeat(chip, 2, axis=0), 2, axis=1)
    aligned = align_arcface(big, arcface_dst * 2 + [100, 50])
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    assert np.abs(aligned.astype(int) - chip).mean() < 40  # resampled, so only close
    with pytest.raises(ValueError, match="five"):
        align_arcface(big, np.zeros((68, 2)))


# --- building and installing packs -----------------------------------------------------------


def test_a_pack_built_from_a_folder_installs_and_verifies(buffalo: Path, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    pack = install_pack(models_dir, lambda staging: build_insightface_pack(buffalo, staging, None))
    assert pack.name == buffalo.name.lower()
    manifest = load_pack(pack.name, models_dir).manifest
    assert manifest.licence == LICENCE
    assert manifest.detector.kind == "scrfd"
    assert manifest.detector.files == {"model": "det_10g.onnx"}
    assert manifest.detector.input_size == (640, 640)
    assert manifest.recogniser.kind == "arcface"
    assert manifest.recogniser.file == "w600k_r50.onnx"
    assert manifest.recogniser.alignment == "arcface-112"
    assert manifest.recogniser.input_size == (112, 112)
    assert manifest.recogniser.embedding_size == 512
    assert 0.0 < manifest.match_threshold < 1.0
    # Only the two networks campusgate runs are kept.
    assert {p.name for p in pack.root.iterdir()} == {MANIFEST, "det_10g.onnx", "w600k_r50.onnx"}
    assert (buffalo / "det_10g.onnx").is_file()  # the source folder is left as it was
    assert [p.name for p in models_dir.iterdir()] == [pack.name]


def _zip(path: Path, folder: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, prefix + file.name)
    return path


@pytest.mark.parametrize("prefix", ["", "buffalo_l/"], ids=["top-level", "in-a-folder"])
def test_a_pack_installs_from_a_zip(buffalo: Path, tmp_path: Path, prefix: str) -> None:
    archive = _zip(tmp_path / "Buffalo_L.zip", buffalo, prefix)
    models_dir = tmp_path / "models"
    pack = install_insightface_pack(archive, models_dir)
    assert pack.name == "buffalo_l"
    loaded = load_pack("buffalo_l", models_dir)
    assert loaded.manifest.recogniser.file == "w600k_r50.onnx"
    assert [p.name for p in models_dir.iterdir()] == ["buffalo_l"]  # no scratch left behind
    renamed = install_insightface_pack(archive, models_dir, name="school-a")
    assert renamed.manifest.files == pack.manifest.files


def test_a_tampered_pack_file_is_refused_on_load(buffalo: Path, tmp_path: Path) -> None:
    pack = install_insightface_pack(buffalo, tmp_path, name="buffalo_l")
    with (pack.root / "w600k_r50.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(PackError, match="w600k_r50.onnx has sha256 .* reinstall the pack"):
        load_pack("buffalo_l", tmp_path)


def _entry_zip(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        archive.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("entry", "mode", "message"),
    [
        ("../evil.onnx", None, "points outside the pack"),
        ("buffalo_l/../../evil.onnx", None, "points outside the pack"),
        ("/etc/evil.onnx", None, "points outside the pack"),
        ("C:/evil.onnx", None, "points outside the pack"),
        ("..\\evil.onnx", None, "points outside the pack"),
        ("det_10g.onnx", stat.S_IFLNK | 0o777, "symbolic link"),
    ],
)
def test_unsafe_zip_entries_are_refused(
    tmp_path: Path, entry: str, mode: int | None, message: str
) -> None:
    archive = _entry_zip(tmp_path / "evil.zip", entry, mode=mode)
    models_dir = tmp_path / "models"
    with pytest.raises(PackError, match=message):
        install_insightface_pack(archive, models_dir)
    assert not (tmp_path / "evil.onnx").exists()
    assert list(models_dir.iterdir()) == []


def test_zips_too_big_or_badly_laid_out_are_refused(
    buffalo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _zip(tmp_path / "buffalo_l.zip", buffalo)
    monkeypatch.setattr(pack_module, "MAX_UNZIPPED_BYTES", 1000)
    with pytest.raises(PackError, match="unpacks to .* refusing it"):
        install_insightface_pack(archive, tmp_path / "models")
    monkeypatch.undo()
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as out:
        out.write(buffalo / "det_10g.onnx", "a/det_10g.onnx")
        out.write(buffalo / "w600k_r50.onnx", "b/w600k_r50.onnx")
    with pytest.raises(PackError, match="at its top or in one folder"):
        install_insightface_pack(nested, tmp_path / "models")
    (tmp_path / "damaged.zip").write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(PackError, match="neither a folder nor a zip|damaged"):
        install_insightface_pack(tmp_path / "damaged.zip", tmp_path / "models")


def test_pack_names_are_validated(buffalo: Path, tmp_path: Path) -> None:
    odd = _zip(tmp_path / "buffalo l (1).zip", buffalo)
    with pytest.raises(PackError, match="not a valid pack name.*give the pack a name"):
        install_insightface_pack(odd, tmp_path / "models")
    with pytest.raises(PackError, match="not a valid pack name"):
        install_insightface_pack(buffalo, tmp_path / "models", name="Bad/Name")
    assert install_insightface_pack(odd, tmp_path / "models", name="buffalo_l").name == "buffalo_l"
    with pytest.raises(PackError, match="does not exist"):
        install_insightface_pack(tmp_path / "missing.zip", tmp_path / "models")


def test_a_pack_whose_detector_cannot_run_is_not_installed(tmp_path: Path) -> None:
    source = tmp_path / "nokps"
    write_scrfd(source / "det.onnx", with_keypoints=False)
    write_arcface(source / "rec.onnx")
    with pytest.raises(PackError, match="det.onnx does not run as an SCRFD detector"):
        install_insightface_pack(source, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_the_manifest_is_plain_json_a_school_can_tune(buffalo: Path, tmp_path: Path) -> None:
    pack = install_insightface_pack(buffalo, tmp_path, name="buffalo_l")
    manifest = json.loads((pack.root / MANIFEST).read_text())
    manifest["match_threshold"] = 0.45
    (pack.root / MANIFEST).write_text(json.dumps(manifest))
    assert load_pack("buffalo_l", tmp_path).manifest.match_threshold == 0.45
