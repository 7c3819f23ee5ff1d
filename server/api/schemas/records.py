"""What the API shows of attendance, leave, gate events and the audit log; times are in the
school's zone (ISO 8601 with the offset)."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from server.api.schemas.common import create_model_of
from server.api.schemas.people import CardPublic, StudentGuardianPublic
from server.models import (
    AttendanceSource,
    AttendanceStatus,
    EnrollmentSource,
    EventOutcome,
    LeaveRequestBase,
    LeaveStatus,
)

LeaveRequestCreate = create_model_of(LeaveRequestBase, "LeaveRequestCreate")


class RollStatus(StrEnum):
    """A student's status on the roll: the attendance statuses, and ``not_yet`` before the
    session's absent-after time (or on a day that is not a school day) with no mark."""

    PRESENT = "present"
    LATE = "late"
    ABSENT = "absent"
    EXCUSED = "excused"
    NOT_YET = "not_yet"


class AttendanceMark(BaseModel):
    """One session of one day of a student."""

    date: dt.date
    session_id: int
    session: str = Field(description="The session's code, e.g. 'morning'.")
    status: AttendanceStatus
    source: AttendanceSource
    first_in: datetime | None
    last_out: datetime | None
    note: str | None = None
    changed_by: int | None = None


class ManualMark(BaseModel):
    """A teacher's decision on one session of one day."""

    status: AttendanceStatus
    note: str | None = Field(default=None, max_length=500)


class LeaveRequestPublic(LeaveRequestBase):
    id: int
    status: LeaveStatus
    requested_by: int | None
    requested_at: datetime
    decided_by: int | None
    decided_at: datetime | None


class StudentHistory(BaseModel):
    student_id: int
    timezone: str
    starts_on: dt.date
    ends_on: dt.date
    marks: list[AttendanceMark]
    leave_requests: list[LeaveRequestPublic]


class ConsentPublic(BaseModel):
    id: int
    given_by_guardian_id: int | None
    given_by_name: str
    given_at: datetime
    scope: str
    recorded_by: int | None
    withdrawn_at: datetime | None


class FaceEnrollmentInfo(BaseModel):
    """A stored face template, described (the export leaves the vector itself out: it is only
    useful to a matcher, and copies of it are what the consent limits)."""

    id: int
    consent_id: int
    model_pack: str
    dim: int
    quality: float | None
    source: EnrollmentSource
    created_at: datetime


class GateEvent(BaseModel):
    event_id: str
    ts: datetime
    device_id: int
    outcome: EventOutcome
    payload: dict[str, Any]


class AuditEntry(BaseModel):
    at: datetime
    actor_id: int | None
    action: str
    entity: str
    entity_id: str | None
    detail: dict[str, Any]


class StudentExport(BaseModel):
    """Everything the school holds about a student, as of ``exported_at``."""

    exported_at: datetime
    timezone: str
    student: dict[str, Any]
    guardians: list[StudentGuardianPublic]
    cards: list[CardPublic]
    consents: list[ConsentPublic]
    face_enrollments: list[FaceEnrollmentInfo]
    attendance: list[AttendanceMark]
    leave_requests: list[LeaveRequestPublic]
    gate_events: list[GateEvent]
    audit_log: list[AuditEntry]


class RollSession(BaseModel):
    id: int
    code: str
    name: str
    start: dt.time
    late_after: dt.time
    absent_after: dt.time
    end: dt.time


class RollMark(BaseModel):
    """A student's status in one session; ``gate_in``/``gate_out`` are the device ids of the
    first in and last out, ``gate_in_name``/``gate_out_name`` what people call those gates (the
    device id when the gate has no name)."""

    session_id: int
    status: RollStatus
    source: AttendanceSource | None = None
    first_in: datetime | None = None
    last_out: datetime | None = None
    gate_in: str | None = None
    gate_out: str | None = None
    gate_in_name: str | None = None
    gate_out_name: str | None = None
    note: str | None = None


class RollStudent(BaseModel):
    student_id: int
    code: str
    full_name: str
    marks: list[RollMark]


class ClassRoll(BaseModel):
    """The live roll of a class for a date: every expected student, every session."""

    class_id: int
    class_name: str
    date: dt.date
    timezone: str
    school_day: bool
    as_of: datetime = Field(description="When the roll was made, on the school's clock.")
    sessions: list[RollSession]
    students: list[RollStudent]
    totals: dict[str, dict[RollStatus, int]] = Field(
        description="Per session code, how many students have each status."
    )
