"""A student's attendance history and leave requests, as people see them: times in the school's
zone, sessions named."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from server.api.schemas.records import AttendanceMark, LeaveRequestPublic
from server.models import Attendance, LeaveRequest, SchoolSession


def local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A stored UTC timestamp as the school's clock shows it."""
    return moment.astimezone(zone) if moment is not None else None


def attendance_marks(
    db: Session,
    student_id: int,
    zone: ZoneInfo,
    starts_on: date | None = None,
    ends_on: date | None = None,
) -> list[AttendanceMark]:
    """The student's attendance rows between the dates (both included; None: unbounded), in
    date and session order."""
    statement = (
        select(Attendance, SchoolSession.code)
        .join(SchoolSession, col(SchoolSession.id) == Attendance.session_id)
        .where(Attendance.student_id == student_id)
        .order_by(col(Attendance.date), col(SchoolSession.start))
    )
    if starts_on is not None:
        statement = statement.where(Attendance.date >= starts_on)
    if ends_on is not None:
        statement = statement.where(Attendance.date <= ends_on)
    return [
        AttendanceMark(
            date=row.date,
            session_id=row.session_id,
            session=code,
            status=row.status,
            source=row.source,
            first_in=local(row.first_in, zone),
            last_out=local(row.last_out, zone),
            note=row.note,
            changed_by=row.changed_by,
        )
        for row, code in db.exec(statement)
    ]


def leave_requests(
    db: Session, student_id: int, starts_on: date | None = None, ends_on: date | None = None
) -> list[LeaveRequestPublic]:
    """The student's leave requests overlapping the dates (None: unbounded), newest first."""
    statement = (
        select(LeaveRequest)
        .where(LeaveRequest.student_id == student_id)
        .order_by(col(LeaveRequest.starts_on).desc())
    )
    if starts_on is not None:
        statement = statement.where(LeaveRequest.ends_on >= starts_on)
    if ends_on is not None:
        statement = statement.where(LeaveRequest.starts_on <= ends_on)
    rows = db.exec(statement)
    return [LeaveRequestPublic.model_validate(row, from_attributes=True) for row in rows]
