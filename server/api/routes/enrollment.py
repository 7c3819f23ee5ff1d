"""Face enrollment of a student: upload photos under a consent, see the status, withdraw.

Admins only. Photos arrive as ``multipart/form-data`` and are read into memory
(:mod:`server.api.uploads`), analysed, and dropped: only templates are stored. Every change is
followed by a publish of the galleries of the student's school, so gates learn of it at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from models.engine import FaceEngine
from server.api.deps import AdminUser, IdPath, SessionDep, audit_read, not_found
from server.api.routes.gallery import PublisherDep, published
from server.api.schemas.enrollment import (
    ConsentWithdrawn,
    EnrollmentDone,
    EnrollmentStatusPublic,
    PhotoForm,
    Refusal,
    RefusalAnswer,
)
from server.api.schemas.records import ConsentPublic
from server.api.uploads import Upload, read_upload
from server.enrollment import (
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    ConsentIn,
    EnrollmentRefused,
    Problem,
    StudentNotFound,
    enroll,
    enrollment_status,
    withdraw_consent,
)
from server.faces import shared_engine
from server.gallery_publish import GalleryPublisher
from server.models import EnrollmentSource, Role, User

router = APIRouter(prefix="/students/{student_id}/faces", tags=["enrollment"])

EngineDep = Annotated[FaceEngine, Depends(shared_engine)]
CONSENT_FIELDS = ("given_by", "given_by_name", "guardian_id", "given_at")
FORM_FIELDS = {"source", *CONSENT_FIELDS}
PHOTOS = "photos"


def _bad_fields(problems: dict[str, str]) -> EnrollmentRefused:
    """A refusal naming each bad form field (``name`` → what is wrong, in English)."""
    return EnrollmentRefused(
        [
            Problem("bad_field", f"Trường {name} không hợp lệ: {why}", f"Field {name}: {why}")
            for name, why in problems.items()
        ]
    )


def _source_and_consent(upload: Upload) -> tuple[EnrollmentSource, ConsentIn | None]:
    """The form's text fields, checked."""
    unknown = sorted((set(upload.fields) - FORM_FIELDS) | (set(upload.files) - {PHOTOS}))
    if unknown:
        raise _bad_fields({name: "unknown field" for name in unknown})
    try:
        source = EnrollmentSource(upload.fields.get("source", EnrollmentSource.PHOTO))
    except ValueError:
        raise _bad_fields({"source": "use 'photo' or 'cccd'"}) from None
    given = {name: upload.fields[name] for name in CONSENT_FIELDS if name in upload.fields}
    if not given:
        return source, None
    try:
        return source, ConsentIn.model_validate(given)
    except ValidationError as exc:
        raise _bad_fields(
            {
                ".".join(map(str, error["loc"])) or "consent": error["msg"]
                for error in exc.errors(include_url=False)
            }
        ) from None


def _refusal(refused: EnrollmentRefused, user: User) -> HTTPException:
    reveal = user.role == Role.ADMIN
    detail = Refusal(
        vi="Không đăng ký được khuôn mặt; chưa lưu gì",
        en="Face enrollment refused; nothing was stored",
        problems=[problem.public(reveal_other_student=reveal) for problem in refused.problems],
    )
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail.model_dump())


def _enroll_and_publish(
    db: Session,
    engine: FaceEngine,
    publisher: GalleryPublisher,
    student_id: int,
    upload: Upload,
    user: User,
) -> EnrollmentDone:
    try:
        source, consent = _source_and_consent(upload)
        done = enroll(
            db,
            engine,
            student_id,
            upload.files.get(PHOTOS, []),
            source=source,
            consent=consent,
            actor_id=user.id,
        )
    except StudentNotFound:
        raise not_found("student", student_id) from None
    except EnrollmentRefused as refused:
        raise _refusal(refused, user) from None
    galleries = publisher.publish_school(db, done.school_id, reason="enrollment", actor_id=user.id)
    return EnrollmentDone(
        student_id=done.student_id,
        consent_id=done.consent_id,
        templates=len(done.enrollment_ids),
        model_pack=done.model_pack,
        galleries=[published(result) for result in galleries],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": PhotoForm.model_json_schema()}},
        }
    },
    responses={
        400: {"description": "Not a well-formed multipart body."},
        413: {"description": "Over the upload limits."},
        415: {"description": "Not multipart/form-data."},
        422: {"model": RefusalAnswer, "description": "Refused; nothing was stored."},
    },
)
async def enroll_photos(
    student_id: IdPath,
    request: Request,
    admin: AdminUser,
    db: SessionDep,
    engine: EngineDep,
    publisher: PublisherDep,
) -> EnrollmentDone:
    """Store a face template per photo for the student, under the consent given in the form
    (or the one on record), then republish the school's galleries. Up to 10 photos of at most
    10 MB each, each showing the student's face alone; any problem refuses the whole request."""
    db.rollback()  # no transaction (nor SQLite's write lock) stays open while photos arrive
    upload = await read_upload(request, max_files=MAX_PHOTOS, max_file_bytes=MAX_PHOTO_BYTES)
    return await run_in_threadpool(
        _enroll_and_publish, db, engine, publisher, student_id, upload, admin
    )


@router.get("")
def get_enrollment(
    student_id: IdPath, request: Request, admin: AdminUser, db: SessionDep
) -> EnrollmentStatusPublic:
    """The student's consent on record and how many templates they have per pack."""
    try:
        found = enrollment_status(db, student_id)
    except StudentNotFound:
        raise not_found("student", student_id) from None
    audit_read(db, admin, student_id, "face enrollment", request=request)
    consent = found.consent
    return EnrollmentStatusPublic(
        student_id=found.student_id,
        consent=None
        if consent is None
        else ConsentPublic.model_validate(consent, from_attributes=True),
        packs=found.packs,
    )


@router.delete("")
def withdraw(
    student_id: IdPath, admin: AdminUser, db: SessionDep, publisher: PublisherDep
) -> ConsentWithdrawn:
    """Withdraw the student's consent: every template is deleted and the school's galleries
    are republished without them."""
    try:
        done = withdraw_consent(db, student_id, actor_id=admin.id)
    except StudentNotFound:
        raise not_found("student", student_id) from None
    galleries = publisher.publish_school(
        db, done.school_id, reason="consent withdrawn", actor_id=admin.id
    )
    return ConsentWithdrawn(
        student_id=done.student_id,
        consents_withdrawn=done.consents,
        templates_deleted=done.templates,
        galleries=[published(result) for result in galleries],
    )
