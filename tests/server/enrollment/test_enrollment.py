"""Enrollment (server.enrollment): photos become templates only under a consent, and every bad
photo is refused with its reason while nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from pydantic import ValidationError
from sqlmodel import Session, func, select

from models.engine import FaceEngine
from models.images import decode_image
from models.quality import Quality, refusals
from server.enrollment import (
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    QUALITY_TEXTS,
    ConsentGiver,
    EnrollmentRefused,
    StudentNotFound,
    enroll,
    enrollment_status,
    withdraw_consent,
)
from server.models import AuditLog, BiometricConsent, EnrollmentSource, FaceEnrollment
from tests.server.conftest import World
from tests.server.enrollment.conftest import BIDEN, GROUP, OBAMA, OBAMA_2, a_consent


def _encoded(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def _count(db: Session, model) -> int:
    db.rollback()
    return db.exec(select(func.count()).select_from(model)).one()


def _enroll(db, face_engine, student, photos, consent=None, source=EnrollmentSource.PHOTO):
    return enroll(
        db, face_engine, student.id, photos, source=source, consent=consent, actor_id=None
    )


def test_photos_of_a_consenting_student_become_templates(
    db: Session, world: World, face_engine: FaceEngine, photo
) -> None:
    student = world.students[0]
    done = _enroll(db, face_engine, student, [photo(OBAMA), photo(OBAMA_2)], a_consent())

    rows = db.exec(select(FaceEnrollment).where(FaceEnrollment.student_id == student.id)).all()
    assert sorted(row.id for row in rows) == sorted(done.enrollment_ids)
    assert {row.consent_id for row in rows} == {done.consent_id}
    for row in rows:
        template = np.frombuffer(row.embedding, "<f4")
        assert row.model_pack == face_engine.pack.name == done.model_pack
        assert row.dim == len(template) == face_engine.embedding_size
        assert np.linalg.norm(template) == pytest.approx(1.0, abs=1e-5)
        assert 0.0 < row.quality <= 1.0
        assert row.source == EnrollmentSource.PHOTO
    consent = db.get(BiometricConsent, done.consent_id)
    assert (consent.given_by_name, consent.scope) == ("Trần Văn Bố", "attendance")
    assert consent.given_at == datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    entry = db.exec(select(AuditLog).where(AuditLog.action == "face.enroll")).one()
    assert entry.student_id == student.id
    assert entry.detail["templates"] == 2 and entry.detail["consent_given_by"] == "guardian"


def test_a_later_upload_uses_the_consent_on_record(
    db: Session, world: World, face_engine: FaceEngine, photo
) -> None:
    student = world.students[0]
    first = _enroll(db, face_engine, student, [photo(OBAMA)], a_consent())
    second = _enroll(db, face_engine, student, [photo(OBAMA_2)])
    assert second.consent_id == first.consent_id
    assert _count(db, FaceEnrollment) == 2


def test_a_cccd_portrait_is_recorded_as_such(
    db: Session, world: World, face_engine: FaceEngine, photo
) -> None:
    # The chip's portrait is often JPEG 2000: the same path reads it.
    jp2 = cv2.imencode(".jp2", cv2.cvtColor(decode_image(photo(OBAMA)), cv2.COLOR_RGB2BGR))[1]
    _enroll(db, face_engine, world.students[0], [jp2.tobytes()], a_consent(), EnrollmentSource.CCCD)
    assert db.exec(select(FaceEnrollment.source)).all() == [EnrollmentSource.CCCD]


def test_without_consent_nothing_is_analysed_or_stored(db: Session, world: World, photo) -> None:
    class NoEngine:
        def analyse(self, *_args, **_kwargs):
            raise AssertionError("a photo was analysed without consent")

    with pytest.raises(EnrollmentRefused) as refused:
        _enroll(db, NoEngine(), world.students[0], [photo(OBAMA)])
    assert [problem.code for problem in refused.value.problems] == ["no_consent"]
    assert "đồng ý" in refused.value.problems[0].vi
    assert _count(db, FaceEnrollment) == 0


def test_withdrawn_consent_is_no_consent(
    db: Session, world: World, face_engine: FaceEngine, photo
) -> None:
    student = world.students[0]
    _enroll(db, face_engine, student, [photo(OBAMA)], a_consent())
    withdrawn = withdraw_consent(db, student.id, actor_id=None)
    assert (withdrawn.consents, withdrawn.templates) == (1, 1)
    assert _count(db, FaceEnrollment) == 0
    assert db.exec(select(BiometricConsent.withdrawn_at)).one() is not None
    with pytest.raises(EnrollmentRefused, match="No consent"):
        _enroll(db, face_engine, student, [photo(OBAMA_2)])
    again = withdraw_consent(db, student.id, actor_id=None)
    assert (again.consents, again.templates) == (0, 0)
    actions = db.exec(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["face.enroll", "face.consent_withdrawn"]


def _tiny(photo) -> bytes:
    image = decode_image(photo(OBAMA))
    return _encoded(cv2.resize(image, None, fx=0.1, fy=0.1, interpolation=cv2.INTER_AREA))


def _blurred(photo) -> bytes:
    return _encoded(cv2.GaussianBlur(decode_image(photo(OBAMA)), (41, 41), 0))


BAD_PHOTOS = {
    "landscape": ("no_face", lambda photo: photo("compreface/_no_face/017_0.jpg")),
    "white": ("no_face", lambda photo: photo("face-api-js/_no_face/white.png")),
    "group": (
        "several_faces",
        lambda photo: photo(GROUP),
    ),
    "tiny face": ("too_small", _tiny),
    "blurred face": ("blurred", _blurred),
    "truncated jpeg": ("unreadable", lambda photo: photo(OBAMA)[:300]),
    "not an image": ("unreadable", lambda photo: b"%PDF-1.4 not a photo"),
    "empty": ("unreadable", lambda photo: b""),
    "over the size limit": ("too_large", lambda photo: photo(OBAMA) + bytes(MAX_PHOTO_BYTES)),
}


@pytest.mark.parametrize("case", BAD_PHOTOS)
def test_a_bad_photo_is_refused_with_its_reason_and_nothing_is_stored(
    db: Session, world: World, face_engine: FaceEngine, photo, case: str
) -> None:
    code, make = BAD_PHOTOS[case]
    with pytest.raises(EnrollmentRefused) as refused:
        _enroll(db, face_engine, world.students[0], [photo(OBAMA), make(photo)], a_consent())
    (problem,) = refused.value.problems
    assert (problem.code, problem.photo) == (code, 2)
    assert problem.vi and problem.en
    assert _count(db, FaceEnrollment) == 0
    assert _count(db, BiometricConsent) == 0  # the consent given with it is not kept either


def test_a_webp_file_named_jpg_is_read(
    db: Session, world: World, face_engine: FaceEngine, photo
) -> None:
    _enroll(
        db,
        face_engine,
        world.students[0],
        [photo("deepface/by_identity/id03_img8/img47.jpg")],
        a_consent(),
    )
    assert _count(db, FaceEnrollment) == 1


def test_the_same_face_for_another_student_is_refused_as_too_close(
    db: Session, world: World, face_engine: FaceEngine, photo
) -> None:
    first, second = world.students[0], world.students[1]
    _enroll(db, face_engine, first, [photo(OBAMA)], a_consent())
    with pytest.raises(EnrollmentRefused) as refused:
        _enroll(db, face_engine, second, [photo(BIDEN), photo(OBAMA_2)], a_consent())
    (problem,) = refused.value.problems
    assert (problem.code, problem.photo, problem.other_student) == ("too_close", 2, first.code)
    hidden = problem.public(reveal_other_student=False)
    assert first.code not in hidden["vi"] + hidden["en"] and "other_student" not in hidden
    shown = problem.public(reveal_other_student=True)
    assert first.code in shown["vi"] and shown["other_student"] == first.code
    assert _count(db, FaceEnrollment) == 1

    _enroll(db, face_engine, second, [photo(BIDEN)], a_consent())  # someone else is fine
    assert _count(db, FaceEnrollment) == 2


def test_photo_count_limits(db: Session, world: World, face_engine: FaceEngine, photo) -> None:
    student = world.students[0]
    for photos, code in (([], "no_photos"), ([photo(OBAMA)] * (MAX_PHOTOS + 1), "too_many_photos")):
        with pytest.raises(EnrollmentRefused) as refused:
            _enroll(db, face_engine, student, photos, a_consent())
        assert [problem.code for problem in refused.value.problems] == [code]
    assert _count(db, FaceEnrollment) == 0


def test_an_unknown_student_is_not_found(db: Session, world: World, face_engine) -> None:
    with pytest.raises(StudentNotFound):
        enroll(
            db,
            face_engine,
            999_999,
            [b""],
            source=EnrollmentSource.PHOTO,
            consent=a_consent(),
            actor_id=None,
        )


def test_status_tells_consent_and_template_counts_never_templates(
    db: Session, world: World, face_engine: FaceEngine, photo
) -> None:
    student = world.students[0]
    assert enrollment_status(db, student.id).consent is None
    _enroll(db, face_engine, student, [photo(OBAMA), photo(OBAMA_2)], a_consent())
    status = enrollment_status(db, student.id)
    assert status.consent.given_by_name == "Trần Văn Bố"
    [pack] = status.packs
    assert (pack.model_pack, pack.templates, pack.sources) == (face_engine.pack.name, 2, ["photo"])


@pytest.mark.parametrize(
    "changes",
    [
        {"given_by": ConsentGiver.STUDENT, "guardian_id": 3},
        {"given_at": datetime.now(UTC) + timedelta(days=1)},
        {"given_by_name": "   "},
        {"scope": "marketing"},
    ],
)
def test_a_malformed_consent_is_refused(changes: dict) -> None:
    with pytest.raises(ValidationError):
        a_consent(**changes)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("size_px", 10.0, "too_small"),
        ("detector_score", 0.1, "doubtful"),
        ("yaw_deg", 80.0, "turned"),
        ("pitch_deg", 80.0, "tilted"),
        ("sharpness", 0.0, "blurred"),
    ],
)
def test_every_quality_refusal_has_its_own_words(
    face_engine: FaceEngine, field: str, value: float, code: str
) -> None:
    good = dict(size_px=200.0, sharpness=500.0, yaw_deg=0.0, pitch_deg=0.0, detector_score=1.0)
    figures = {name: np.array([v], np.float32) for name, v in (good | {field: value}).items()}
    [reason] = refusals(Quality(**figures), face_engine.pack.manifest.quality)
    assert [key for key in QUALITY_TEXTS if reason.startswith(key)] == [
        key for key, (known, _) in QUALITY_TEXTS.items() if known == code
    ]
