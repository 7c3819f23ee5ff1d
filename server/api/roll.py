"""The live roll of a class: for a date, every student expected and their status in each
session, with first in, last out and the gates that saw them.

A student with no mark yet is ``absent`` once the session's absent-after time has passed on a
school day (what the absent job is about to record) and ``not_yet`` before. Students who are not
active, or enrolled later, appear only if they have a mark that day. The roll is read in one
query besides the calendar's, whatever the class size: it is the page teachers keep open.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from server.api.history import local
from server.api.schemas.records import (
    ClassRoll,
    RollStatus,
)
from server.attendance import Calendar
from server.models import (
    Attendance,
    Device,
    RawEvent,
    School,
    SchoolClass,
    Student,
    StudentStatus,
)


def _roll_statement() -> Any:
    """Each student of a class with each of their marks of a day (or none), and the gates of the
    events that gave the first in and the last out. Built once: making a statement with aliases
    costs more than running it, and this one runs on every refresh of every teacher's page."""
    event_in, event_out = aliased(RawEvent), aliased(RawEvent)
    gate_in, gate_out = aliased(Device), aliased(Device)
    mark = and_(col(Attendance.student_id) == Student.id, col(Attendance.date) == bindparam("day"))
    return (
        select(
            Student.id,
            Student.code,
            Student.full_name,
            Student.status,
            Student.enrolled_on,
            Attendance.session_id,
            Attendance.status,
            Attendance.source,
            Attendance.first_in,
            Attendance.last_out,
            Attendance.note,
            gate_in.device_id,
            gate_in.name,
            gate_out.device_id,
            gate_out.name,
        )
        .outerjoin(Attendance, mark)
        .outerjoin(
            event_in, and_(event_in.student_id == Student.id, event_in.ts == Attendance.first_in)
        )
        .outerjoin(gate_in, gate_in.id == event_in.device_id)
        .outerjoin(
            event_out, and_(event_out.student_id == Student.id, event_out.ts == Attendance.last_out)
        )
        .outerjoin(gate_out, gate_out.id == event_out.device_id)
        .where(col(Student.class_id) == bindparam("class_id"))
        .order_by(col(Student.code))
    )


_ROLL = _roll_statement()


def class_roll(
    db: Session,
    school_class: SchoolClass,
    day: date,
    now: datetime,
    session_id: int | None = None,
) -> ClassRoll:
    """The roll of ``school_class`` on ``day`` as of ``now`` (only ``session_id``, if given)."""
    school = db.get(School, school_class.school_id)
    assert school is not None
    zone = school.zone
    calendar = Calendar(db)
    school_day = calendar.is_school_day(school, day)
    sessions = [s for s in calendar.sessions(school.id) if session_id is None or s.id == session_id]
    local_now = now.astimezone(zone)
    overdue = {
        s.id: school_day and local_now >= datetime.combine(day, s.absent_after, zone)
        for s in sessions
    }
    # Plain dicts, validated once at the end: pydantic-core checks the whole nested roll faster
    # than Python builds ~100 small models one by one.
    students: dict[int, tuple[dict[str, Any], dict[int, dict[str, Any]], bool]] = {}
    for sid, code, name, status, enrolled_on, session, *mark in db.exec(
        _ROLL, params={"class_id": school_class.id, "day": day}
    ):
        if sid not in students:
            expected = status == StudentStatus.ACTIVE and (
                enrolled_on is None or enrolled_on <= day
            )
            student = {"student_id": sid, "code": code, "full_name": name, "marks": []}
            students[sid] = (student, {}, expected)
        if session is not None:
            # Two events at the very same instant (face and card) repeat a mark; keep one.
            students[sid][1].setdefault(session, _mark(session, *mark, zone=zone))
    totals = {s.code: dict.fromkeys(RollStatus, 0) for s in sessions}
    shown = []
    for student, marks, expected in students.values():
        if not expected and not marks:
            continue
        for session in sessions:
            default = RollStatus.ABSENT if overdue[session.id] else RollStatus.NOT_YET
            found = marks.get(session.id) or {"session_id": session.id, "status": default}
            totals[session.code][found["status"]] += 1
            student["marks"].append(found)
        shown.append(student)
    return ClassRoll.model_validate(
        {
            "class_id": school_class.id,
            "class_name": school_class.name,
            "date": day,
            "timezone": school.timezone,
            "school_day": school_day,
            "as_of": local_now,
            "sessions": [s.model_dump() for s in sessions],
            "students": shown,
            "totals": totals,
        }
    )


def _mark(
    session_id: int,
    status: str,
    source: str,
    first_in: datetime | None,
    last_out: datetime | None,
    note: str | None,
    gate_in: str | None,
    gate_in_name: str | None,
    gate_out: str | None,
    gate_out_name: str | None,
    *,
    zone: ZoneInfo,
) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "status": RollStatus(status),
        "source": source,
        "first_in": local(first_in, zone),
        "last_out": local(last_out, zone),
        "gate_in": gate_in,
        "gate_out": gate_out,
        # A gate with no display name (the default "") shows as its device id.
        "gate_in_name": gate_in_name or gate_in,
        "gate_out_name": gate_out_name or gate_out,
        "note": note,
    }
