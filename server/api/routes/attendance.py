"""Attendance as people see and correct it: the live roll of a class, a teacher's manual
change (it wins over the gates, and is audited), and leave requests that excuse absences."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlmodel import Session, col, select

from server.api import crud
from server.api.deps import (
    IdPath,
    PersonUser,
    SessionDep,
    StaffUser,
    audit_change,
    audit_read,
    class_or_404,
    student_or_404,
)
from server.api.history import attendance_marks
from server.api.roll import class_roll
from server.api.schemas.common import MAX_ID
from server.api.schemas.records import (
    AttendanceMark,
    ClassRoll,
    LeaveRequestCreate,
    LeaveRequestPublic,
    ManualMark,
)
from server.attendance import MAX_LEAVE_DAYS, AttendanceError, approve_leave, set_status_manually
from server.models import (
    Guardian,
    LeaveRequest,
    LeaveStatus,
    Role,
    School,
    SchoolClass,
    SchoolSession,
    Student,
    StudentGuardian,
    User,
    utc_now,
)

router = APIRouter(tags=["attendance"])
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _unprocessable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.get("/classes/{class_id}/roll", response_model=ClassRoll)
def roll(
    class_id: IdPath,
    user: StaffUser,
    db: SessionDep,
    request: Request,
    day: Annotated[date | None, Query(alias="date", description="Default: today.")] = None,
    session_id: OptionalId = None,
) -> Response:
    """The class's roll for a date (default: today on the school's clock). Audited."""
    school_class = class_or_404(db, user, class_id)
    now = utc_now()
    if day is None:
        school = db.get(School, school_class.school_id)
        assert school is not None
        day = now.astimezone(school.zone).date()
    result = class_roll(db, school_class, day, now, session_id)
    audit_read(
        db,
        user,
        [s.student_id for s in result.students],
        "roll",
        request=request,
        detail={"class_id": class_id, "date": day.isoformat()},
    )
    # Serialised once, here: the roll is the most requested page of the API.
    return Response(result.model_dump_json(), media_type="application/json")


@router.put("/students/{student_id}/attendance/{day}/{session_id}")
def set_mark(
    student_id: IdPath,
    day: date,
    session_id: IdPath,
    body: ManualMark,
    user: StaffUser,
    db: SessionDep,
) -> AttendanceMark:
    """A teacher's (or admin's) decision on one session: it wins over later gate events and
    leave, and the audit log keeps the status before and after."""
    student = student_or_404(db, user, student_id)
    try:
        set_status_manually(
            db,
            student_id=student.id,
            day=day,
            session_id=session_id,
            status=body.status,
            user_id=user.id,
            note=body.note,
        )
    except AttendanceError as exc:
        raise _unprocessable(exc) from None
    db.commit()
    school = db.get(School, student.school_id)
    assert school is not None
    marks = attendance_marks(db, student.id, school.zone, day, day)
    return next(m for m in marks if m.session_id == session_id)


# --- leave requests -----------------------------------------------------------------------------


def _leave_or_404(db: Session, user: User, leave_id: int) -> LeaveRequest:
    """The leave request if ``user`` may see its student (same rules as the student)."""
    leave = crud.get_or_404(db, LeaveRequest, leave_id, "leave request")
    student_or_404(db, user, leave.student_id)
    return leave


def _check_leave(db: Session, body: LeaveRequestCreate) -> None:
    if (body.ends_on - body.starts_on).days >= MAX_LEAVE_DAYS:
        raise _unprocessable(ValueError(f"a leave covers at most {MAX_LEAVE_DAYS} days"))
    if body.session_id is not None:
        session = db.get(SchoolSession, body.session_id)
        student = db.get(Student, body.student_id)
        if session is None or student is None or session.school_id != student.school_id:
            raise _unprocessable(ValueError("session_id: not a session of the student's school"))


@router.post("/leave-requests", status_code=status.HTTP_201_CREATED)
def request_leave(
    body: LeaveRequestCreate, user: PersonUser, db: SessionDep, request: Request
) -> LeaveRequestPublic:
    """Ask for an excused absence: a parent for their child, a teacher for a student of their
    class, or an admin. A teacher or admin approves it."""
    student_or_404(db, user, body.student_id)
    _check_leave(db, body)
    leave = crud.create(db, LeaveRequest, body, "leave request exists", requested_by=user.id)
    audit_change(
        db, user, "leave.create", leave, student_id=leave.student_id, before={}, request=request
    )
    db.commit()
    return leave


@router.get("/leave-requests")
def list_leave_requests(
    user: PersonUser,
    db: SessionDep,
    request: Request,
    leave_status: Annotated[LeaveStatus | None, Query(alias="status")] = None,
    class_id: OptionalId = None,
    student_id: OptionalId = None,
) -> list[LeaveRequestPublic]:
    """Leave requests an admin picks; those of a teacher's classes; a parent's children's."""
    statement = (
        select(LeaveRequest)
        .join(Student, col(Student.id) == LeaveRequest.student_id)
        .order_by(col(LeaveRequest.requested_at).desc())
        .limit(1000)
    )
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
    if leave_status is not None:
        statement = statement.where(LeaveRequest.status == leave_status)
    if class_id is not None:
        statement = statement.where(Student.class_id == class_id)
    if student_id is not None:
        statement = statement.where(LeaveRequest.student_id == student_id)
    leaves = list(db.exec(statement))
    audit_read(db, user, [leave.student_id for leave in leaves], "leave requests", request=request)
    return leaves


@router.get("/leave-requests/{leave_id}")
def get_leave_request(
    leave_id: IdPath, user: PersonUser, db: SessionDep, request: Request
) -> LeaveRequestPublic:
    leave = _leave_or_404(db, user, leave_id)
    audit_read(db, user, leave.student_id, "leave requests", request=request)
    return leave


def _pending(leave: LeaveRequest) -> None:
    if leave.status != LeaveStatus.PENDING:
        raise crud.conflict(f"the request is {leave.status}, not pending / đơn đã được xử lý")


@router.post("/leave-requests/{leave_id}/approve")
def approve_leave_request(leave_id: IdPath, user: StaffUser, db: SessionDep) -> LeaveRequestPublic:
    """Approve: every covered session becomes excused, except those a teacher set by hand."""
    leave = _leave_or_404(db, user, leave_id)
    _pending(leave)
    try:
        approve_leave(db, leave.id, user.id)
    except AttendanceError as exc:
        raise _unprocessable(exc) from None
    db.commit()
    db.refresh(leave)
    return leave


def _decide(
    db: Session, user: User, leave: LeaveRequest, outcome: LeaveStatus, request: Request
) -> LeaveRequest:
    _pending(leave)
    before = {"status": leave.status}
    leave.status = outcome
    leave.decided_by = user.id
    leave.decided_at = utc_now()
    db.add(leave)
    audit_change(
        db,
        user,
        f"leave.{outcome}",
        leave,
        student_id=leave.student_id,
        before=before,
        request=request,
    )
    db.commit()
    return leave


@router.post("/leave-requests/{leave_id}/reject")
def reject_leave_request(
    leave_id: IdPath, user: StaffUser, db: SessionDep, request: Request
) -> LeaveRequestPublic:
    return _decide(db, user, _leave_or_404(db, user, leave_id), LeaveStatus.REJECTED, request)


@router.post("/leave-requests/{leave_id}/cancel")
def cancel_leave_request(
    leave_id: IdPath, user: PersonUser, db: SessionDep, request: Request
) -> LeaveRequestPublic:
    """Withdraw a pending request (whoever may see the student may)."""
    return _decide(db, user, _leave_or_404(db, user, leave_id), LeaveStatus.CANCELLED, request)
