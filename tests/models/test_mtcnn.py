"""MTCNN on the shared photos: faces where there are faces, none where there are none, the right
count in group photos, and odd image formats accepted."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.detectors import Detections
from models.detectors.mtcnn import MtcnnDetector
from models.weights import WeightsNotInstalled

SINGLE_FACE_PHOTOS = [
    "deepface/by_identity/id01_angelina/img1.jpg",
    "deepface/by_identity/id01_angelina/img5.jpg",
    "deepface/by_identity/id02_img3/img3.jpg",
    "deepface/by_identity/id03_img8/img47.jpg",  # WebP data named .jpg
    "deepface/by_identity/id04_img13/img13.jpg",
    "deepface/by_identity/id06_img18/img18.jpg",
    "deepface/by_identity/id08_img22/img22.jpg",
    "deepface/by_identity/id10_img26/img26.jpg",
    "deepface/by_identity/id12_img34/img34.jpg",
    "deepface/by_identity/id13_img38/img38.jpg",
    "face_recognition/by_identity/obama/obama.jpg",
    "face_recognition/by_identity/biden/biden.jpg",
    "face_recognition/by_identity/kit_harington/john1.jpeg",
    "face_recognition/by_identity/rose_leslie/img1.jpg",
    "face_recognition/by_identity/alex_lacamoire/img1.jpg",
]
NO_FACE_IMAGES = ["compreface/_no_face/017_0.jpg", "face-api-js/_no_face/white.png"]
RGBA_PHOTO = "face_recognition/by_identity/alex_lacamoire/alex-lacamoire.png"
# Group photos are about 800 px wide with faces of 50 px and more.
GROUP_MIN_FACE = 30


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    try:
        return MtcnnDetector()
    except WeightsNotInstalled as exc:
        pytest.skip(str(exc))


def read_image(path: Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode by content, not extension (some .jpg files are WebP); colour comes back as RGB(A)."""
    image = cv2.imdecode(np.fromfile(path, np.uint8), flags)
    assert image is not None, f"cannot decode {path}"
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def portrait_min_face(image: np.ndarray) -> float:
    """A minimum face for photos of one person: a tenth of the short side, at least 20 px."""
    return max(20.0, min(image.shape[:2]) / 10)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b`` (x1, y1, x2, y2)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def inside(points: np.ndarray, box: np.ndarray) -> bool:
    return bool(np.all((points >= box[:2]) & (points <= box[2:])))


def nose_points(field: str) -> np.ndarray:
    return np.array([[float(v) for v in point.split()] for point in field.split(";") if point])


def face_count_rows(faces_dir: Path) -> list[dict[str, str]]:
    with (faces_dir / "compreface" / "face_count_ground_truth.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("relative", SINGLE_FACE_PHOTOS)
def test_single_face_photo_gives_one_face_with_upright_landmarks(faces_dir, detector, relative):
    image = read_image(faces_dir / relative)

    found = detector.detect(image, min_face_size=portrait_min_face(image))

    assert len(found) == 1, f"{relative}: {len(found)} faces, scores {found.scores}"
    box, points = found.boxes[0], found.landmarks[0]
    assert inside(points, box), f"landmarks {points} outside box {box}"
    left_eye, right_eye, _, mouth_left, mouth_right = points
    assert max(left_eye[1], right_eye[1]) < min(mouth_left[1], mouth_right[1])
    # Left and right as seen in the image.
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]


def test_results_have_the_documented_shapes_and_types(faces_dir, detector):
    found = detector.detect(read_image(faces_dir / "compreface/_group_photos/000_5.jpg"))

    n = len(found)
    assert found.boxes.shape == (n, 4) and found.boxes.dtype == np.float32
    assert found.scores.shape == (n,) and found.scores.dtype == np.float32
    assert found.landmarks.shape == (n, 5, 2) and found.landmarks.dtype == np.float32
    assert np.all(np.diff(found.scores) <= 0), "not sorted best first"


@pytest.mark.parametrize("relative", NO_FACE_IMAGES)
def test_no_face_image_gives_no_detections(faces_dir, detector, relative):
    found = detector.detect(read_image(faces_dir / relative), min_face_size=20)

    assert len(found) == 0, f"scores {found.scores}, boxes {found.boxes}"


def test_group_photos_give_the_ground_truth_count_with_every_nose_in_a_box(faces_dir, detector):
    rows = [r for r in face_count_rows(faces_dir) if int(r["n_faces"]) > 1]
    assert rows, "no group photos in the ground truth"
    for row in rows:
        image = read_image(faces_dir / "compreface" / "_group_photos" / row["file"])

        found = detector.detect(image, min_face_size=GROUP_MIN_FACE)

        assert len(found) == int(row["n_faces"]), f"{row['file']}: scores {found.scores}"
        for nose in nose_points(row["nose_points_xy"]):
            hits = [inside(nose[None], box) for box in found.boxes]
            assert any(hits), f"{row['file']}: no box holds the nose at {nose}"


def test_large_portraits_find_the_ground_truth_face(faces_dir, detector):
    """compreface's single-person photos are up to 7360 px with a small face, and some hold
    face-like things (a wooden medal, a doll) that MTCNN also scores as faces, so at most one extra
    detection is tolerated; the best-scoring box must hold the nose."""
    rows = [r for r in face_count_rows(faces_dir) if int(r["n_faces"]) == 1]
    for row in rows:
        person = "person_" + Path(row["file"]).stem.split("_")[1]
        image = read_image(faces_dir / "compreface" / "by_identity" / person / row["file"])

        found = detector.detect(image, min_face_size=min(image.shape[:2]) / 20)

        assert 1 <= len(found) <= 2, f"{row['file']}: scores {found.scores}"
        assert inside(nose_points(row["nose_points_xy"]), found.boxes[0]), row["file"]


def test_bbt4_faces_match_the_ground_truth_boxes(faces_dir, detector):
    folder = faces_dir / "face-api-js" / "_group_photos"
    xywh = np.loadtxt(folder / "bbt4_face_boxes.csv", delimiter=",", skiprows=1, ndmin=2)
    truth = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])

    found = detector.detect(read_image(folder / "bbt4.jpg"), min_face_size=GROUP_MIN_FACE)

    assert len(found) == len(truth) == 6
    overlap = iou(truth, found.boxes)
    assert np.all(overlap.max(axis=1) >= 0.5), overlap.round(2)
    assert len(set(overlap.argmax(axis=1).tolist())) == len(truth), "two truths share a box"


def test_grayscale_crops_are_accepted_as_2d_arrays(faces_dir, detector):
    """face-api-js's 150×150 crops are grayscale PNGs of a face filling the frame; MTCNN misses
    a couple of the tightest ones, so at least 36 of the 40 must give exactly one face."""
    paths = sorted((faces_dir / "face-api-js" / "by_identity").glob("*/*.png"))
    assert len(paths) == 40
    counts = []
    for path in paths:
        gray = read_image(path, cv2.IMREAD_UNCHANGED)
        assert gray.ndim == 2
        found = detector.detect(gray, min_face_size=20)
        counts.append(len(found))

    assert max(counts) <= 1, counts
    assert sum(counts) >= 36, [p.name for p, n in zip(paths, counts, strict=True) if n == 0]


def test_grayscale_gives_the_same_faces_as_its_rgb_copy(faces_dir, detector):
    gray = read_image(faces_dir / "orl_att/by_identity/s1/1.pgm", cv2.IMREAD_UNCHANGED)

    as_2d = detector.detect(gray, min_face_size=20)
    as_rgb = detector.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), min_face_size=20)
    as_one_channel = detector.detect(gray[:, :, None], min_face_size=20)

    assert len(as_2d) == 1
    for other in (as_rgb, as_one_channel):
        np.testing.assert_allclose(as_2d.boxes, other.boxes)
        np.testing.assert_allclose(as_2d.landmarks, other.landmarks)


def test_orl_pgm_crops_give_one_face_each(faces_dir, detector):
    paths = sorted((faces_dir / "orl_att" / "by_identity").glob("s*/1.pgm"))
    assert len(paths) == 40
    misses = []
    for path in paths:
        found = detector.detect(read_image(path, cv2.IMREAD_UNCHANGED), min_face_size=20)
        if len(found) != 1:
            misses.append((path.parent.name, len(found)))

    assert not misses


def test_rgba_photo_gives_the_faces_of_its_rgb_channels(faces_dir, detector):
    rgba = read_image(faces_dir / RGBA_PHOTO, cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4
    min_face = portrait_min_face(rgba)

    found = detector.detect(rgba, min_face_size=min_face)
    from_rgb = detector.detect(np.ascontiguousarray(rgba[:, :, :3]), min_face_size=min_face)

    assert len(found) == 1
    np.testing.assert_allclose(found.boxes, from_rgb.boxes)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (0, 0, 3), (0, 7), (5, 0, 4), (11, 40, 3)])
def test_tiny_or_empty_image_gives_no_detections(detector, shape):
    found = detector.detect(np.zeros(shape, np.uint8))

    assert len(found) == 0
    assert found.boxes.shape == (0, 4) and found.landmarks.shape == (0, 5, 2)


@pytest.mark.parametrize(
    "image",
    [np.zeros((50, 50, 3), np.float32), np.zeros((50, 50, 2), np.uint8), np.zeros(50, np.uint8)],
    ids=["float", "two-channel", "1d"],
)
def test_unsupported_image_is_refused_with_a_clear_error(detector, image):
    with pytest.raises(ValueError, match="expected"):
        detector.detect(image)


def test_face_is_found_at_every_resolution_of_the_same_photo(faces_dir, detector):
    """The same framing at 240p to 1080p: the face is found in the same place at each, and a
    copy shrunk until the face is just above the minimum face still gives it. (Small background
    false positives near the minimum size are not this test's concern.)"""
    folder = faces_dir / "face_recognition" / "_same_photo_resolutions"
    paths = sorted(folder.glob("obama-*p.jpg"), key=lambda p: int(p.stem.split("-")[1][:-1]))
    assert len(paths) >= 4
    min_face = 40.0
    largest = read_image(paths[-1])
    reference = detector.detect(largest, min_face_size=min_face)
    assert len(reference) >= 1
    face = reference.boxes[0]
    face_width = float(face[2] - face[0])

    for path in paths[:-1]:
        image = read_image(path)
        expected = face * image.shape[1] / largest.shape[1]
        found = detector.detect(image, min_face_size=min_face)
        assert len(found) >= 1 and iou(expected[None], found.boxes).max() >= 0.7, path.name

    for face_px in (0.9 * face_width * 240 / 1080, 1.25 * min_face):
        factor = face_px / face_width
        small = cv2.resize(largest, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        found = detector.detect(small, min_face_size=min_face)
        assert len(found) >= 1 and iou(face[None] * factor, found.boxes).max() >= 0.6, face_px

    assert len(detector.detect(read_image(folder / "obama_small.jpg"), min_face_size=min_face)) == 1


def test_detections_empty_has_zero_rows():
    empty = Detections.empty()

    assert len(empty) == 0 and empty.landmarks.shape == (0, 5, 2)
