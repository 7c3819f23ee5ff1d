"""Students: who may see whom is in :mod:`server.api.deps`; every read and change is audited.

Admins create and change students and their guardian links; teachers read their classes'
students; parents read their own children, their history, and export their data. Erasure
(admin) is :mod:`server.api.privacy`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlmodel import Session, col, or_, select

from server.api import crud
from server.api.deps import (
    AdminUser,
    IdPath,
    PersonUser,
    SessionDep,
    StudentDep,
    audit_change,
    audit_read,
    forbidden,
    not_found,
)
from server.api.history import attendance_marks, leave_requests
from server.api.privacy import erase_student, export_student, guardians_of
from server.api.routes.gallery import PublisherDep, published
from server.api.schemas.classes import StudentCreate, StudentPublic, StudentUpdate
from server.api.schemas.common import MAX_ID
from server.api.schemas.people import GuardianLinkSet, StudentGuardianPublic
from server.api.schemas.privacy import ErasureSummary
from server.api.schemas.records import StudentExport, StudentHistory
from server.models import (
    Guardian,
    Role,
    School,
    SchoolClass,
    Student,
    StudentGuardian,
    utc_now,
)

router = APIRouter(prefix="/students", tags=["students"])
DUPLICATE = "a student with this code exists / mã học sinh đã tồn tại"
NATIONAL_ID_TAKEN = (
    "another student has this national ID number / số định danh đã thuộc về học sinh khác"
)
MAX_RANGE_DAYS = 366
DEFAULT_HISTORY_DAYS = 30
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _check_class(db: Session, student: Student) -> None:
    """422 unless the student's class is one of the student's school."""
    if student.class_id is None:
        return
    school_class = db.get(SchoolClass, student.class_id)
    if school_class is not None and school_class.school_id != student.school_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "class_id: a class of another school / lớp của trường khác",
        )


def _check_national_id(db: Session, national_id: str | None, student_id: int | None) -> None:
    """409 if a student other than ``student_id`` has ``national_id``. The unique index would
    refuse it too, but its error does not say which of the student's unique keys clashed."""
    if national_id is None:
        return
    holder = db.exec(
        select(Student.id).where(Student.national_id == national_id, Student.id != student_id)
    ).first()
    if holder is not None:
        raise crud.conflict(NATIONAL_ID_TAKEN)


def date_range(starts_on: date | None, ends_on: date | None, today: date) -> tuple[date, date]:
    """The asked range, defaulting to the last 30 days up to today; 422 if reversed or longer
    than a year."""
    ends_on = ends_on or today
    starts_on = starts_on or ends_on - timedelta(days=DEFAULT_HISTORY_DAYS - 1)
    if ends_on < starts_on or (ends_on - starts_on).days >= MAX_RANGE_DAYS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"from/to: a range of 1 to {MAX_RANGE_DAYS} days / khoảng ngày không hợp lệ",
        )
    return starts_on, ends_on


def _link_fields(link: StudentGuardian) -> dict[str, object]:
    return link.model_dump(include={"guardian_id", "relationship", "is_primary"})


@router.get("")
def list_students(
    user: PersonUser,
    db: SessionDep,
    request: Request,
    school_id: OptionalId = None,
    class_id: OptionalId = None,
    q: Annotated[str | None, Query(max_length=64, description="Code or name contains.")] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[StudentPublic]:
    """Students an admin picks by school/class/text; a teacher's homeroom students; a parent's
    children. Audited."""
    statement = select(Student).order_by(col(Student.code))
    if user.role == Role.TEACHER:
        statement = statement.join(SchoolClass, col(SchoolClass.id) == Student.class_id).where(
            SchoolClass.homeroom_teacher_id == user.id
        )
    elif user.role == Role.PARENT:
        statement = (
            statement.join(StudentGuardian, col(StudentGuardian.student_id) == Student.id)
            .join(Guardian, col(Guardian.id) == StudentGuardian.guardian_id)
            .where(Guardian.user_id == user.id)
        )
    if school_id is not None:
        statement = statement.where(Student.school_id == school_id)
    if class_id is not None:
        statement = statement.where(Student.class_id == class_id)
    if q:
        pattern = f"%{q}%"
        statement = statement.where(
            or_(col(Student.code).ilike(pattern), col(Student.full_name).ilike(pattern))
        )
    students = list(db.exec(statement.offset(offset).limit(limit)))
    audit_read(db, user, [s.id for s in students], "list", request=request)
    return students


@router.post("", status_code=status.HTTP_201_CREATED)
def create_student(
    body: StudentCreate, admin: AdminUser, db: SessionDep, request: Request
) -> StudentPublic:
    student = Student(**body.model_dump())
    _check_class(db, student)
    _check_national_id(db, student.national_id, None)
    crud.store(db, student, DUPLICATE)
    audit_change(db, admin, "student.create", student, student_id=student.id, request=request)
    db.commit()
    return student


@router.get("/{student_id}")
def get_student(
    student: StudentDep, user: PersonUser, db: SessionDep, request: Request
) -> StudentPublic:
    audit_read(db, user, student.id, "record", request=request)
    return student


@router.patch("/{student_id}")
def update_student(
    student_id: IdPath,
    body: StudentUpdate,
    admin: AdminUser,
    db: SessionDep,
    request: Request,
    publisher: PublisherDep,
) -> StudentPublic:
    """Change a student; the school's galleries follow (a student no longer active, or moved,
    leaves the gates' gallery)."""
    student = crud.get_or_404(db, Student, student_id, "student")
    _check_national_id(db, body.national_id, student_id)  # type: ignore[attr-defined]
    before = crud.patch(db, student, StudentCreate, body, DUPLICATE)
    _check_class(db, student)
    student.updated_at = utc_now()
    audit_change(
        db, admin, "student.update", student, student_id=student.id, before=before, request=request
    )
    db.commit()
    publisher.publish_school(db, student.school_id, reason="student changed", actor_id=admin.id)
    return student


@router.post("/{student_id}/erase")
def erase(
    student_id: IdPath, admin: AdminUser, db: SessionDep, publisher: PublisherDep
) -> ErasureSummary:
    """Erase the student's personal data (see :mod:`server.api.privacy` for what stays), then
    republish the school's galleries without the student's templates and cards."""
    student = crud.get_or_404(db, Student, student_id, "student")
    summary = erase_student(db, student, admin.id)
    db.commit()
    galleries = publisher.publish_school(db, student.school_id, reason="erasure", actor_id=admin.id)
    return summary.model_copy(update={"galleries": [published(g) for g in galleries]})


@router.get("/{student_id}/history")
def history(
    student: StudentDep,
    user: PersonUser,
    db: SessionDep,
    request: Request,
    starts_on: Annotated[date | None, Query(alias="from")] = None,
    ends_on: Annotated[date | None, Query(alias="to")] = None,
) -> StudentHistory:
    """The student's attendance and leave between two dates (default: the last 30 days)."""
    school = db.get(School, student.school_id)
    assert school is not None
    starts_on, ends_on = date_range(starts_on, ends_on, utc_now().astimezone(school.zone).date())
    audit_read(
        db,
        user,
        student.id,
        "history",
        request=request,
        detail={"from": starts_on.isoformat(), "to": ends_on.isoformat()},
    )
    return StudentHistory(
        student_id=student.id,
        timezone=school.timezone,
        starts_on=starts_on,
        ends_on=ends_on,
        marks=attendance_marks(db, student.id, school.zone, starts_on, ends_on),
        leave_requests=leave_requests(db, student.id, starts_on, ends_on),
    )


@router.get("/{student_id}/export")
def export(
    student: StudentDep, user: PersonUser, db: SessionDep, request: Request
) -> StudentExport:
    """Everything held about the student, for an admin or the student's own guardian."""
    if user.role not in (Role.ADMIN, Role.PARENT):
        raise forbidden("only an admin or the student's guardian / chỉ quản trị hoặc phụ huynh")
    audit_read(db, user, student.id, "export", request=request)
    return export_student(db, student)


@router.get("/{student_id}/guardians")
def list_guardians(
    student: StudentDep, user: PersonUser, db: SessionDep, request: Request
) -> list[StudentGuardianPublic]:
    audit_read(db, user, student.id, "guardians", request=request)
    return guardians_of(db, student.id)


@router.put("/{student_id}/guardians/{guardian_id}")
def link_guardian(
    student_id: IdPath,
    guardian_id: IdPath,
    body: GuardianLinkSet,
    admin: AdminUser,
    db: SessionDep,
    request: Request,
) -> StudentGuardianPublic:
    """Link a guardian to a student, or change the link."""
    crud.get_or_404(db, Student, student_id, "student")
    guardian = crud.get_or_404(db, Guardian, guardian_id, "guardian")
    link = db.get(StudentGuardian, (student_id, guardian_id))
    before = None if link is None else _link_fields(link)
    if link is None:
        link = StudentGuardian(student_id=student_id, guardian_id=guardian_id, **body.model_dump())
    else:
        for key, value in body.model_dump().items():
            setattr(link, key, value)
    db.add(link)
    audit_change(
        db,
        admin,
        "student.guardian_link",
        link,
        student_id=student_id,
        before=before,
        after=_link_fields(link),
        request=request,
    )
    db.commit()
    return StudentGuardianPublic(guardian=guardian, **body.model_dump())


@router.delete("/{student_id}/guardians/{guardian_id}", status_code=status.HTTP_204_NO_CONTENT)
def unlink_guardian(
    student_id: IdPath, guardian_id: IdPath, admin: AdminUser, db: SessionDep, request: Request
) -> None:
    link = db.get(StudentGuardian, (student_id, guardian_id))
    if link is None:
        raise not_found("guardian link", f"{student_id}/{guardian_id}")
    audit_change(
        db,
        admin,
        "student.guardian_unlink",
        link,
        student_id=student_id,
        before=_link_fields(link),
        after={},
        request=request,
    )
    db.delete(link)
    db.commit()
