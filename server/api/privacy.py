"""A student's data: everything held about them as one JSON document, and its erasure.

Erasure removes what identifies the student or was kept only because of them: face templates
and consents, cards, guardian links (and guardians left with no other child), leave requests
(reasons can be medical), the messages sent to parents about them (they name the child), the
student and card ids inside stored gate events, arrival and
departure times, and the before/after values in audit entries. What stays: the student row as
an anonymous placeholder (so the class's and school's attendance counts do not change), the
attendance statuses per date and session, and the audit log's who-did-what-when, plus a new
entry recording the erasure itself.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, delete, select

from server import audit
from server.api.history import attendance_marks, leave_requests, local
from server.api.schemas.classes import StudentPublic
from server.api.schemas.people import CardPublic, GuardianPublic, StudentGuardianPublic
from server.api.schemas.privacy import ErasureSummary
from server.api.schemas.records import (
    AuditEntry,
    ConsentPublic,
    FaceEnrollmentInfo,
    GateEvent,
    StudentExport,
)
from server.models import (
    Attendance,
    AuditLog,
    BiometricConsent,
    Card,
    FaceEnrollment,
    Guardian,
    LeaveRequest,
    RawEvent,
    School,
    Student,
    StudentGuardian,
    StudentStatus,
    utc_now,
)
from server.notify.models import Notification

ERASED_NAME = "(đã xoá)"


def guardians_of(db: Session, student_id: int) -> list[StudentGuardianPublic]:
    """The student's guardians with their links, primary first."""
    rows = db.exec(
        select(Guardian, StudentGuardian)
        .join(StudentGuardian, col(StudentGuardian.guardian_id) == Guardian.id)
        .where(StudentGuardian.student_id == student_id)
        .order_by(col(StudentGuardian.is_primary).desc(), col(Guardian.id))
    )
    return [
        StudentGuardianPublic(
            guardian=GuardianPublic.model_validate(guardian, from_attributes=True),
            relationship=link.relationship,
            is_primary=link.is_primary,
            channel_preferences=link.channel_preferences,
        )
        for guardian, link in rows
    ]


def export_student(db: Session, student: Student) -> StudentExport:
    """Everything about ``student``, times in the school's zone."""
    school = db.get(School, student.school_id)
    assert school is not None
    zone = school.zone

    def rows(model: Any, *order: Any) -> list[Any]:
        return list(db.exec(select(model).where(model.student_id == student.id).order_by(*order)))

    events = rows(RawEvent, col(RawEvent.ts))
    return StudentExport(
        exported_at=utc_now().astimezone(zone),
        timezone=school.timezone,
        student=StudentPublic.model_validate(student, from_attributes=True).model_dump(mode="json"),
        guardians=guardians_of(db, student.id),
        cards=[CardPublic.model_validate(c, from_attributes=True) for c in rows(Card, Card.id)],
        consents=[
            ConsentPublic.model_validate(c, from_attributes=True)
            for c in rows(BiometricConsent, BiometricConsent.id)
        ],
        face_enrollments=[
            FaceEnrollmentInfo.model_validate(f, from_attributes=True)
            for f in rows(FaceEnrollment, FaceEnrollment.id)
        ],
        attendance=attendance_marks(db, student.id, zone),
        leave_requests=leave_requests(db, student.id),
        gate_events=[
            GateEvent(
                event_id=str(e.event_id),
                ts=local(e.ts, zone),
                device_id=e.device_id,
                outcome=e.outcome,
                payload=e.payload,
            )
            for e in events
        ],
        audit_log=[
            AuditEntry.model_validate(a, from_attributes=True) for a in rows(AuditLog, AuditLog.at)
        ],
    )


def _rowcount(db: Session, statement: Any) -> int:
    return db.exec(statement).rowcount or 0


# Deleted in this order; templates go before the consents they rest on.
_REMOVED = {
    "face_enrollments": FaceEnrollment,
    "consents": BiometricConsent,
    "cards": Card,
    "guardian_links": StudentGuardian,
    "leave_requests": LeaveRequest,
    "notifications": Notification,  # their texts name the child
}


def erase_student(db: Session, student: Student, actor_id: int) -> ErasureSummary:
    """Erase ``student`` as the module docstring says, in the caller's transaction (audited)."""
    sid = student.id
    assert sid is not None
    guardian_ids = list(
        db.exec(select(StudentGuardian.guardian_id).where(StudentGuardian.student_id == sid))
    )
    counts = {
        name: _rowcount(db, delete(model).where(col(model.student_id) == sid))
        for name, model in _REMOVED.items()
    }
    orphans = [
        gid
        for gid in guardian_ids
        if db.exec(
            select(func.count())
            .select_from(StudentGuardian)
            .where(StudentGuardian.guardian_id == gid)
        ).one()
        == 0
    ]
    counts["guardians"] = (
        _rowcount(db, delete(Guardian).where(col(Guardian.id).in_(orphans))) if orphans else 0
    )
    events = list(db.exec(select(RawEvent).where(RawEvent.student_id == sid)))
    for event in events:
        event.payload = {**event.payload, "student_id": None, "card_uid": None}
        event.student_id = None
        db.add(event)
    counts["gate_events_scrubbed"] = len(events)
    counts["attendance_kept"] = _rowcount(
        db,
        update(Attendance)
        .where(col(Attendance.student_id) == sid)
        .values(first_in=None, last_out=None, note=None),
    )
    counts["audit_entries_scrubbed"] = _rowcount(
        db,
        update(AuditLog).where(col(AuditLog.student_id) == sid).values(detail={"erased": True}),
    )
    student.code = f"erased-{sid}"
    student.full_name = ERASED_NAME
    student.date_of_birth = None
    student.national_id = None
    student.enrolled_on = None
    student.status = StudentStatus.TRANSFERRED
    student.updated_at = utc_now()
    db.add(student)
    summary = ErasureSummary(student_id=sid, **counts)
    audit.record(
        db,
        actor_id=actor_id,
        action="student.erase",
        entity="student",
        entity_id=sid,
        student_id=sid,
        detail=summary.model_dump(),
    )
    return summary
