"""Face enrollment: a student's photos become face templates, only under a recorded consent.

Each photo (an upload, or the portrait read from the chip of a CCCD: same path, the source is
recorded) is decoded and analysed by the same pack the school's gates run, and must show
exactly one usable face, good enough by the pack's quality bar, that is not too close to
another student's enrolled faces (a similarity at or above the pack's identify threshold: the
gates could mistake one for the other, so it is a duplicate or a mix-up). Every problem of every
photo is reported at once, in Vietnamese and English; a request with any problem stores
nothing.

Templates are stored only under a consent on record: one given with the request (who gave it —
the guardian, the student, or an admin on their behalf — when, and its scope), or one recorded
earlier and not withdrawn. Without one, photos are refused before any face is analysed.
Photos themselves are never stored, on disk or in the database: only the templates, which
cannot be turned back into a picture. Withdrawing consent deletes every template of the student.

Analysing a photo takes a fraction of a second to seconds of CPU, so it runs outside any
database transaction: a SQLite writer must not hold the write lock (and stall ingest) meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session, col, delete, select

from models.engine import FaceEngine
from models.gallery import Gallery
from models.gallery_delta import EMBEDDING_DTYPE
from models.images import ImageError, decode_image
from server import audit
from server.gallery_publish import GATE_SCOPE
from server.models import (
    BiometricConsent,
    EnrollmentSource,
    FaceEnrollment,
    Student,
    utc_now,
)

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTOS = 10
DETECT_MIN_FACE_PX = 20
"""Faces this small are looked for (the gates skip them), so that a photo whose face is too
small is refused as "too small", not as "no face"."""
CLOCK_SKEW = timedelta(minutes=5)


class ConsentGiver(StrEnum):
    """Who gave the consent: a guardian, the student (of age), or an admin on their behalf
    (e.g. from a signed paper form)."""

    GUARDIAN = "guardian"
    STUDENT = "student"
    ADMIN = "admin"


class ConsentIn(BaseModel):
    """A consent given with an enrollment request."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_by: ConsentGiver
    given_by_name: str = Field(min_length=1, max_length=128, description="As they signed.")
    guardian_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="The guardian's record, if they have one."
    )
    given_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    scope: Literal["attendance"] = Field(
        default=GATE_SCOPE, description="Templates are used only by the school's gates."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ConsentIn:
        if self.guardian_id is not None and self.given_by != ConsentGiver.GUARDIAN:
            raise ValueError("guardian_id is given only with given_by 'guardian'")
        if self.given_at is not None and self.given_at > utc_now() + CLOCK_SKEW:
            raise ValueError("given_at is in the future")
        return self


# --- refusals -----------------------------------------------------------------------------------

QUALITY_TEXTS = {
    # The prefixes models.quality.refusals gives, and what to tell the person taking the photo.
    "too small": ("too_small", "Khuôn mặt quá nhỏ trong ảnh; hãy chụp gần hơn"),
    "doubtful face": ("doubtful", "Không chắc đây là khuôn mặt (tối, bị che hoặc mờ)"),
    "head turned": ("turned", "Khuôn mặt quay nghiêng; hãy nhìn thẳng vào máy ảnh"),
    "head tilted": ("tilted", "Đầu cúi hoặc ngửa; hãy nhìn thẳng vào máy ảnh"),
    "blurred": ("blurred", "Ảnh bị mờ; hãy chụp lại cho nét"),
}


@dataclass(frozen=True)
class Problem:
    """Why a photo (``photo``, counted from 1) or the whole request (``photo`` None) was
    refused. ``other_student`` is the code of the student a face is too close to: shown to
    admins only, as it tells who else is enrolled."""

    code: str
    vi: str
    en: str
    photo: int | None = None
    other_student: str | None = None

    def public(self, *, reveal_other_student: bool) -> dict[str, Any]:
        """The problem as the API shows it to a caller who may or may not see other students."""
        vi, en = self.vi, self.en
        other = self.other_student if reveal_other_student else None
        if self.other_student is not None:
            vi = vi.format(other=f"học sinh {other}" if other else "một học sinh khác")
            en = en.format(other=f"student {other}" if other else "another student")
        shown = {"code": self.code, "photo": self.photo, "vi": vi, "en": en}
        return shown | ({"other_student": other} if other else {})


class EnrollmentRefused(ValueError):
    """Nothing was stored; ``problems`` says why, for each photo that had one."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        shown = (problem.public(reveal_other_student=False)["en"] for problem in problems)
        super().__init__("; ".join(shown))
        self.problems = list(problems)


class StudentNotFound(LookupError):
    """No student with this id."""


def _refuse(code: str, vi: str, en: str) -> EnrollmentRefused:
    """A refusal of the whole request, not of one photo."""
    return EnrollmentRefused([Problem(code, vi, en)])


# --- photos → templates (no database) -----------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """The face template of one accepted photo."""

    photo: int
    embedding: np.ndarray
    quality: float


def analyse_photo(engine: FaceEngine, data: bytes, photo: int) -> Template | Problem:
    """The template of the one usable face in a photo, or the problem with it."""
    if len(data) > MAX_PHOTO_BYTES:
        limit = MAX_PHOTO_BYTES // (1024 * 1024)
        return Problem(
            "too_large", f"Ảnh lớn hơn {limit} MB", f"The photo is over {limit} MB", photo
        )
    try:
        image = decode_image(data)
    except ImageError as exc:
        return Problem(
            "unreadable",
            "Không đọc được ảnh (hỏng hoặc không phải JPEG, PNG, WebP, BMP, TIFF, JPEG 2000)",
            f"Cannot read the image: {exc}",
            photo,
        )
    faces = engine.analyse(image, min_face_size=DETECT_MIN_FACE_PX)
    if not len(faces.detections):
        return Problem(
            "no_face", "Không tìm thấy khuôn mặt nào trong ảnh", "No face found in the photo", photo
        )
    sizes = faces.quality.size_px
    usable = int(np.count_nonzero(sizes >= engine.pack.manifest.quality.min_face_px))
    if usable > 1:
        return Problem(
            "several_faces",
            f"Ảnh có {usable} khuôn mặt; ảnh đăng ký chỉ được có một người",
            f"The photo shows {usable} faces; an enrollment photo must show one person only",
            photo,
        )
    best = int(np.argmax(sizes))
    reason = faces.refusals[best]
    if reason is not None:
        code, vi = next(
            (text for prefix, text in QUALITY_TEXTS.items() if reason.startswith(prefix)),
            ("poor_quality", "Chất lượng khuôn mặt không đạt"),
        )
        return Problem(code, vi, f"The face is not good enough: {reason}", photo)
    quality = float(np.clip(faces.quality_score[best], 0.0, 1.0))
    return Template(photo, faces.embeddings[best].astype(np.float32), quality)


def analyse_photos(engine: FaceEngine, photos: Sequence[bytes]) -> list[Template]:
    """A template per photo, or :class:`EnrollmentRefused` listing every photo's problem."""
    if not photos:
        raise _refuse("no_photos", "Chưa có ảnh nào", "No photo was sent")
    if len(photos) > MAX_PHOTOS:
        raise _refuse(
            "too_many_photos",
            f"Tối đa {MAX_PHOTOS} ảnh mỗi lần",
            f"At most {MAX_PHOTOS} photos at a time",
        )
    results = [analyse_photo(engine, data, n) for n, data in enumerate(photos, start=1)]
    problems = [result for result in results if isinstance(result, Problem)]
    if problems:
        raise EnrollmentRefused(problems)
    return [result for result in results if isinstance(result, Template)]


# --- the database -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    """What an accepted request stored."""

    student_id: int
    school_id: int
    consent_id: int
    enrollment_ids: list[int]
    model_pack: str


def enroll(
    db: Session,
    engine: FaceEngine,
    student_id: int,
    photos: Sequence[bytes],
    *,
    source: EnrollmentSource,
    consent: ConsentIn | None,
    actor_id: int | None,
) -> Enrolled:
    """Store a template per photo under ``consent`` (or the student's consent on record) and
    commit, with an audit entry; or raise :class:`EnrollmentRefused` / :class:`StudentNotFound`
    having stored nothing. Ends any transaction open on ``db`` first (give it nothing pending).

    The gallery is not republished here; the caller does that after success.
    """
    student = _student(db, student_id)
    if consent is None:  # refuse before any face is analysed
        _consent_on_record(db, student)
    db.rollback()  # end the read: no transaction stays open while the photos are analysed
    templates = analyse_photos(engine, photos)
    student = _student(db, student_id)  # again: it may have changed meanwhile
    too_close = _too_close(db, engine, student, templates)
    if too_close:
        db.rollback()
        raise EnrollmentRefused(too_close)
    consent_row = (
        _consent_on_record(db, student)
        if consent is None
        else _record_consent(db, student, consent, actor_id)
    )
    rows = [
        FaceEnrollment(
            student_id=student.id,
            consent_id=consent_row.id,
            model_pack=engine.pack.name,
            embedding=template.embedding.astype(EMBEDDING_DTYPE).tobytes(),
            dim=engine.embedding_size,
            quality=template.quality,
            source=source,
            created_by=actor_id,
        )
        for template in templates
    ]
    db.add_all(rows)
    db.flush()
    audit.record(
        db,
        actor_id=actor_id,
        action="face.enroll",
        entity="student",
        entity_id=student.id,
        student_id=student.id,
        detail={
            "templates": len(rows),
            "source": source.value,
            "model_pack": engine.pack.name,
            "consent_id": consent_row.id,
            # BiometricConsent has no column for who gave it; the audit entry keeps it.
            "consent_given_by": consent.given_by.value if consent else None,
        },
    )
    db.commit()
    return Enrolled(
        student.id, student.school_id, consent_row.id, [row.id for row in rows], engine.pack.name
    )


@dataclass(frozen=True)
class Withdrawn:
    """What withdrawing consent removed."""

    student_id: int
    school_id: int
    consents: int
    templates: int


def withdraw_consent(db: Session, student_id: int, *, actor_id: int | None) -> Withdrawn:
    """Mark the student's consents withdrawn and delete all their templates (every pack), with
    an audit entry, and commit. Withdrawing again changes nothing. The caller republishes."""
    student = _student(db, student_id)
    now = utc_now()
    consents = db.exec(
        select(BiometricConsent).where(
            BiometricConsent.student_id == student.id, col(BiometricConsent.withdrawn_at).is_(None)
        )
    ).all()
    for consent in consents:
        consent.withdrawn_at = now
        db.add(consent)
    deleted = db.exec(delete(FaceEnrollment).where(col(FaceEnrollment.student_id) == student.id))
    if consents or deleted.rowcount:
        audit.record(
            db,
            actor_id=actor_id,
            action="face.consent_withdrawn",
            entity="student",
            entity_id=student.id,
            student_id=student.id,
            detail={"consents": len(consents), "templates_deleted": deleted.rowcount},
        )
    db.commit()
    return Withdrawn(student.id, student.school_id, len(consents), deleted.rowcount)


@dataclass(frozen=True)
class PackTemplates:
    """How many templates a student has for one pack, and from where."""

    model_pack: str
    templates: int
    sources: list[EnrollmentSource]
    last_enrolled_at: datetime


@dataclass(frozen=True)
class EnrollmentStatus:
    """A student's consent on record (None: none, or withdrawn) and templates per pack."""

    student_id: int
    consent: BiometricConsent | None
    packs: list[PackTemplates]


def enrollment_status(db: Session, student_id: int) -> EnrollmentStatus:
    """The student's consent and templates; never the templates themselves."""
    student = _student(db, student_id)
    consent = _active_consent(db, student.id)
    rows = db.exec(
        select(FaceEnrollment.model_pack, FaceEnrollment.source, FaceEnrollment.created_at)
        .where(FaceEnrollment.student_id == student.id)
        .order_by(col(FaceEnrollment.model_pack), col(FaceEnrollment.id))
    ).all()
    packs: dict[str, list[tuple[EnrollmentSource, datetime]]] = {}
    for pack, source, created_at in rows:
        packs.setdefault(pack, []).append((source, created_at))
    return EnrollmentStatus(
        student.id,
        consent,
        [
            PackTemplates(
                pack,
                len(items),
                sorted({source for source, _ in items}),
                max(created for _, created in items),
            )
            for pack, items in packs.items()
        ],
    )


def _too_close(
    db: Session, engine: FaceEngine, student: Student, templates: Sequence[Template]
) -> list[Problem]:
    """A problem for each template that the gates could take for another student of the
    school: a score at or above the pack's identify threshold, matched as the gates match."""
    others = db.exec(
        select(Student.code, FaceEnrollment.embedding)
        .join(Student, col(Student.id) == FaceEnrollment.student_id)
        .where(
            Student.school_id == student.school_id,
            Student.id != student.id,
            FaceEnrollment.model_pack == engine.pack.name,
        )
    ).all()
    if not others:
        return []
    enrolled = Gallery(engine.pack.name, engine.embedding_size, engine.identify_threshold)
    enrolled.add_rows(
        [code for code, _ in others],
        np.array([np.frombuffer(blob, EMBEDDING_DTYPE) for _, blob in others]),
    )
    matches = enrolled.search(np.array([template.embedding for template in templates]))
    return [
        Problem(
            "too_close",
            "Khuôn mặt quá giống {other} đã đăng ký (có thể trùng người hoặc nhầm ảnh)",
            "The face is too close to {other}, already enrolled (a duplicate or a mix-up?)",
            template.photo,
            matches[n].person_id,
        )
        for n, template in enumerate(templates)
        if matches.known[n]
    ]


def _student(db: Session, student_id: int) -> Student:
    student = db.get(Student, student_id)
    if student is None:
        raise StudentNotFound(f"student {student_id} not found")
    return student


def _active_consent(db: Session, student_id: int) -> BiometricConsent | None:
    return db.exec(
        select(BiometricConsent)
        .where(
            BiometricConsent.student_id == student_id,
            col(BiometricConsent.withdrawn_at).is_(None),
            BiometricConsent.scope == GATE_SCOPE,
        )
        .order_by(col(BiometricConsent.given_at).desc(), col(BiometricConsent.id).desc())
        .limit(1)
    ).first()


def _consent_on_record(db: Session, student: Student) -> BiometricConsent:
    """The student's consent on record, or :class:`EnrollmentRefused` saying there is none."""
    on_record = _active_consent(db, student.id)
    if on_record is None:
        raise _refuse(
            "no_consent",
            "Chưa có sự đồng ý thu thập dữ liệu khuôn mặt của học sinh này (hoặc đã rút lại); "
            "hãy ghi nhận sự đồng ý trước",
            "No consent to face templates is on record for this student (or it was "
            "withdrawn); record one first",
        )
    return on_record


def _record_consent(
    db: Session, student: Student, given: ConsentIn, recorded_by: int | None
) -> BiometricConsent:
    row = BiometricConsent(
        student_id=student.id,
        given_by_guardian_id=given.guardian_id,
        given_by_name=given.given_by_name,
        given_at=given.given_at or utc_now(),
        scope=given.scope,
        recorded_by=recorded_by,
    )
    db.add(row)
    db.flush()
    return row
