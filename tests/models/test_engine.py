"""The default pack end to end on real photos: who matches whom, and what is refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.engine import FaceEngine
from models.images import read_image

SAME = [
    (
        "face_recognition/by_identity/obama/obama.jpg",
        "face_recognition/by_identity/obama/obama2.jpg",
    ),
    (
        "face_recognition/by_identity/biden/biden.jpg",
        "face_recognition/by_identity/biden/biden2.jpg",
    ),
    ("deepface/by_identity/id01_angelina/img1.jpg", "deepface/by_identity/id01_angelina/img2.jpg"),
]


def _best_embedding(engine: FaceEngine, path: Path) -> np.ndarray:
    faces = engine.analyse(read_image(path))
    assert len(faces.detections) >= 1, f"no face in {path}"
    best = int(np.argmax(faces.quality.size_px))
    assert faces.refusals[best] is None, faces.refusals[best]
    return faces.embeddings[best]


def _existing(faces_dir: Path, pairs) -> list[tuple[Path, Path]]:
    found = [(faces_dir / a, faces_dir / b) for a, b in pairs]
    return [(a, b) for a, b in found if a.exists() and b.exists()]


def test_same_person_matches_across_photos(engine: FaceEngine, faces_dir: Path) -> None:
    pairs = _existing(faces_dir, SAME)
    assert pairs, "the shared photos changed: none of the known pairs exists"
    for a, b in pairs:
        score = float(_best_embedding(engine, a) @ _best_embedding(engine, b))
        assert score >= engine.threshold, f"{a.name} vs {b.name}: {score:.3f}"


def test_different_people_do_not_match(engine: FaceEngine, faces_dir: Path) -> None:
    people = [a for a, _ in _existing(faces_dir, SAME)]
    embeddings = [_best_embedding(engine, p) for p in people]
    for i in range(len(people)):
        for j in range(i + 1, len(people)):
            score = float(embeddings[i] @ embeddings[j])
            assert score < engine.threshold, f"{people[i].name} vs {people[j].name}: {score:.3f}"


def test_embeddings_are_unit_vectors_of_the_pack_size(engine: FaceEngine, faces_dir) -> None:
    faces = engine.analyse(read_image(faces_dir / SAME[0][0]))
    kept = faces.embeddings[faces.embedded]
    assert kept.shape[1] == 128
    np.testing.assert_allclose(np.linalg.norm(kept, axis=1), 1.0, atol=1e-5)
    assert 0.0 < faces.quality_score[faces.embedded].max() <= 1.0


def test_no_face_images_give_no_faces(engine: FaceEngine, faces_dir: Path) -> None:
    for name in ("compreface/_no_face/017_0.jpg", "face-api-js/_no_face/white.png"):
        faces = engine.analyse(read_image(faces_dir / name))
        assert len(faces.detections) == 0 and faces.embeddings.shape == (0, 128)


def test_grey_and_webp_photos_are_recognised(engine: FaceEngine, faces_dir: Path) -> None:
    grey = faces_dir / "face-api-js/by_identity/sheldon"
    photos = sorted(grey.iterdir())[:2]
    assert read_image(photos[0]).std(axis=2).max() == 0  # really grey
    # 150×150 tight crops: give the detector the surroundings a camera would.
    padded = [
        cv2.copyMakeBorder(read_image(p), 75, 75, 75, 75, cv2.BORDER_REPLICATE) for p in photos
    ]
    a, b = (engine.analyse(img) for img in padded)
    assert a.embedded.any() and b.embedded.any()
    assert float(a.embeddings[a.embedded][0] @ b.embeddings[b.embedded][0]) >= engine.threshold
    webp = engine.analyse(read_image(faces_dir / "deepface/by_identity/id03_img8/img47.jpg"))
    assert webp.embedded.any()


def test_small_blurred_faces_are_refused_with_a_reason(engine: FaceEngine, faces_dir) -> None:
    image = read_image(faces_dir / SAME[0][0])
    tiny = cv2.resize(image, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(cv2.resize(tiny, image.shape[1::-1]), (0, 0), 6)
    faces = engine.analyse(blurred, min_face_size=20)
    assert len(faces.detections) >= 1
    reason = faces.refusals[0]
    assert reason is not None and ("blurred" in reason or "doubtful" in reason), reason
    assert not faces.embeddings[0].any()


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (10, 10)])
def test_degenerate_images_give_no_faces(engine: FaceEngine, shape) -> None:
    assert len(engine.analyse(np.zeros(shape, np.uint8)).detections) == 0


def test_the_default_pack_cuts_dlib_s_own_chip(engine: FaceEngine, faces_dir: Path) -> None:
    """dlib's shape predictor places the points dlib's chip is cut from, so the engine's chip
    of MTCNN's face describes it as dlib's own chip does, closer than the template fit."""
    from models.align import align_faces
    from tests.models.dlib_faces import reference_faces

    faces = reference_faces(faces_dir)
    theirs = np.stack([face.descriptor for face in faces])
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)

    def similarity(cut) -> np.ndarray:
        chips = np.concatenate([cut(face.image, face.landmarks[None]) for face in faces])
        return (engine.embed(chips) * theirs).sum(1)

    ours, fitted = similarity(engine.align), similarity(align_faces)
    assert engine.pack.manifest.recogniser.alignment == "dlib-5pt"
    # Measured: lowest 0.998, mean 0.9994 (the template fit: 0.988, 0.996).
    assert ours.min() >= 0.995, dict(zip([f.photo for f in faces], ours, strict=True))
    assert ours.mean() >= 0.999 and ours.mean() > fitted.mean()
