"""Attendance rules: how gate events, teachers, leave and the clock decide a student's status.

Who decides, in rank order: a teacher's manual change, then an approved leave, then the gate,
then the absent job. A lower rank never overwrites a higher one's status, but the gate's facts
(first in, last out) are recorded whatever the status.

The gate's part depends only on the set of events, never on their order: ``first_in`` is the
earliest ``in``, ``last_out`` the latest ``out``, and the status follows from ``first_in``
(present up to and including ``late_after``, late after it). Gates store and forward, so an event
may arrive hours late, twice, or after a later one; each lands where it belongs. A student seen
only going out counts as present (they were on site). A gate event after the absent job ran
turns the absent into present or late.

Dates and times of day are the school's local ones; timestamps are stored in UTC. An ``in``
belongs to the first session that has not ended yet, an ``out`` to the last one that has started.

The functions take an open session and leave committing to the caller, except
:func:`run_absent_job`, which commits each session-day it sweeps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Engine, Row, bindparam, exists, tuple_, update
from sqlmodel import Session, col, select

from broker.payloads import Event
from server import audit
from server.core.config import AttendanceSection
from server.db import in_chunks, insert_or_ignore, session_scope
from server.models import (
    AbsentSweep,
    Attendance,
    AttendanceSource,
    AttendanceStatus,
    CalendarDay,
    CalendarDayKind,
    Card,
    EventOutcome,
    LeaveRequest,
    LeaveStatus,
    School,
    SchoolSession,
    SchoolYear,
    Student,
    StudentStatus,
    Term,
    utc_now,
)
from server.notify import outbox

log = logging.getLogger(__name__)

RANK = {
    AttendanceSource.ABSENT_JOB: 0,
    AttendanceSource.GATE: 1,
    AttendanceSource.LEAVE: 2,
    AttendanceSource.MANUAL: 3,
}
MAX_LEAVE_DAYS = 366
EXCUSED_BY_LEAVE = (AttendanceStatus.EXCUSED, AttendanceSource.LEAVE)


class AttendanceError(ValueError):
    """A request the rules refuse (unknown student, not a school day, …); nothing was changed."""


class Calendar:
    """School days and sessions, each looked up once for the life of the object (one batch or
    one request), since every event of a batch asks the same few questions."""

    def __init__(self, db: Session) -> None:
        self._db = db
        self._days: dict[tuple[int, date], bool] = {}
        self._sessions: dict[int, list[SchoolSession]] = {}

    def is_school_day(self, school: School, day: date) -> bool:
        """Inside a term, and a usual lesson weekday or a make-up day, and not a holiday."""
        key = (school.id, day)
        if key not in self._days:
            self._days[key] = self._lookup_school_day(school, day)
        return self._days[key]

    def _lookup_school_day(self, school: School, day: date) -> bool:
        override = self._db.exec(
            select(CalendarDay.kind).where(
                CalendarDay.school_id == school.id, CalendarDay.date == day
            )
        ).first()
        if override == CalendarDayKind.HOLIDAY:
            return False
        in_term = self._db.exec(
            select(Term.id)
            .join(SchoolYear, col(SchoolYear.id) == Term.school_year_id)
            .where(SchoolYear.school_id == school.id, Term.starts_on <= day, Term.ends_on >= day)
        ).first()
        if in_term is None:
            return False
        return override == CalendarDayKind.SCHOOL_DAY or str(day.isoweekday()) in (
            school.school_weekdays
        )

    def sessions(self, school_id: int) -> list[SchoolSession]:
        """The school's sessions in the order of the day."""
        if school_id not in self._sessions:
            self._sessions[school_id] = list(
                self._db.exec(
                    select(SchoolSession)
                    .where(SchoolSession.school_id == school_id)
                    .order_by(col(SchoolSession.start))
                )
            )
        return self._sessions[school_id]

    def session_for(self, school_id: int, direction: str, at: time) -> SchoolSession | None:
        """The session an ``in`` or ``out`` at local time ``at`` belongs to, if any."""
        sessions = self.sessions(school_id)
        if direction == "in":
            return next((s for s in sessions if at < s.end), None)
        return next((s for s in reversed(sessions) if s.start <= at), None)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a gate event lands: the outcome, and for a counted one the row it updates."""

    outcome: EventOutcome
    student: StudentRef | None = None
    day: date | None = None
    session: SchoolSession | None = None
    school: School | None = None


@dataclass(frozen=True, slots=True)
class StudentRef:
    """What the rules need to know about the student an event names."""

    id: int
    school_id: int
    status: str


class Directory:
    """The students a batch of events names, by card UID and by student code, looked up in two
    queries instead of two per event."""

    def __init__(self, db: Session, events: Iterable[Event]) -> None:
        events = list(events)
        uids = {e.card_uid for e in events if e.card_uid is not None}
        codes = {e.student_id for e in events if e.card_uid is None and e.student_id is not None}
        ref = (col(Student.id), col(Student.school_id), col(Student.status))
        self._by_card: dict[str, StudentRef] = {}
        self._by_code: dict[str, StudentRef] = {}
        if uids:
            self._by_card = {
                uid: StudentRef(*fields)
                for uid, *fields in db.exec(
                    select(Card.uid, *ref)
                    .join(Student, col(Student.id) == Card.student_id)
                    .where(col(Card.uid).in_(uids), col(Card.active).is_(True))
                )
            }
        if codes:
            self._by_code = {
                code: StudentRef(*fields)
                for code, *fields in db.exec(
                    select(Student.code, *ref).where(col(Student.code).in_(codes))
                )
            }

    def resolve(self, event: Event) -> tuple[StudentRef | None, EventOutcome | None]:
        """The student an event names: by card when it carries one (the server's card registry
        is the authority), else by the gallery's student id; or the reason there is none."""
        if event.card_uid is not None:
            student = self._by_card.get(event.card_uid)
            return student, None if student else EventOutcome.UNKNOWN_CARD
        if event.student_id is None:
            return None, EventOutcome.UNKNOWN_FACE
        student = self._by_code.get(event.student_id)
        return student, None if student else EventOutcome.UNKNOWN_STUDENT


_FACE_CHECK_OUTCOMES = {
    "mismatch": EventOutcome.FACE_MISMATCH,
    "missing": EventOutcome.FACE_MISSING,
}


def place_gate_event(
    calendar: Calendar, directory: Directory, event: Event, school: School
) -> Placement:
    """Decide, without changing anything, what a gate event at ``school`` counts for.

    Card taps whose face check failed (someone else's face, or none) are kept but never count:
    a card alone must not mark a student present where the school requires the face.
    """
    student, unknown = directory.resolve(event)
    if student is None:
        return Placement(unknown or EventOutcome.UNKNOWN_STUDENT)
    if event.face_check in _FACE_CHECK_OUTCOMES:
        return Placement(_FACE_CHECK_OUTCOMES[event.face_check], student)
    if student.school_id != school.id:
        return Placement(EventOutcome.OTHER_SCHOOL, student)
    if student.status != StudentStatus.ACTIVE:
        return Placement(EventOutcome.INACTIVE_STUDENT, student)
    local = event.ts.astimezone(school.zone)
    day = local.date()
    if not calendar.is_school_day(school, day):
        return Placement(EventOutcome.NOT_SCHOOL_DAY, student, day)
    session = calendar.session_for(school.id, event.direction, local.time())
    if session is None:
        return Placement(EventOutcome.OUTSIDE_SESSIONS, student, day)
    return Placement(EventOutcome.COUNTED, student, day, session, school)


def gate_status(first_in: datetime | None, session: SchoolSession, school: School) -> str:
    """Present if the first ``in`` was at or before ``late_after`` (local), late after it;
    present when only an ``out`` was seen."""
    if first_in is None:
        return AttendanceStatus.PRESENT
    at = first_in.astimezone(school.zone).time()
    return AttendanceStatus.PRESENT if at <= session.late_after else AttendanceStatus.LATE


RowKey = tuple[int, date, int]
"""An attendance row's identity: (student id, date, session id)."""


def apply_gate_events(db: Session, counted: Iterable[tuple[Placement, Event]]) -> None:
    """Record counted gate events on their attendance rows (created if missing): per row the
    earliest ``in`` and the latest ``out``, then the status if the gate may set it."""
    facts: dict[RowKey, tuple[Placement, list[Event]]] = {}
    for placement, event in counted:
        assert placement.outcome is EventOutcome.COUNTED
        assert placement.student and placement.day and placement.session and placement.school
        key = (placement.student.id, placement.day, placement.session.id)
        facts.setdefault(key, (placement, []))[1].append(event)
    if not facts:
        return
    rows, _ = locked_rows(db, list(facts), AttendanceStatus.PRESENT, AttendanceSource.GATE)
    now = utc_now()
    changes = []
    for key, (placement, events) in facts.items():
        row = rows[key]
        ins = [e.ts for e in events if e.direction == "in"] + [row.first_in] * bool(row.first_in)
        outs = [e.ts for e in events if e.direction == "out"] + [row.last_out] * bool(row.last_out)
        first_in, last_out = min(ins, default=None), max(outs, default=None)
        status, source = row.status, row.source
        if RANK[source] <= RANK[AttendanceSource.GATE]:
            status = gate_status(first_in, placement.session, placement.school)
            source = AttendanceSource.GATE
        if (first_in, last_out, status, source) != (
            row.first_in,
            row.last_out,
            row.status,
            row.source,
        ):
            changes.append(
                {
                    "row_id": row.id,
                    "first_in": first_in,
                    "last_out": last_out,
                    "status": status,
                    "source": source,
                    "updated_at": now,
                }
            )
    if changes:
        table = Attendance.__table__  # type: ignore[attr-defined]
        db.connection().execute(update(table).where(table.c.id == bindparam("row_id")), changes)
        outbox.enqueue_for_changes(db, outbox.gate_changes(rows, facts, changes))


def locked_rows(
    db: Session, keys: list[RowKey], status: str, source: str
) -> tuple[dict[RowKey, Row], set[RowKey]]:
    """The attendance rows of ``keys`` (id, status, source, first_in, last_out), locked for
    this transaction, and which of them this call created (with ``status`` and ``source``).

    Safe when another transaction creates the same rows at the same moment: one insert wins,
    the other waits and finds the row. Rows are created and locked in key order, so two
    transactions wanting overlapping rows queue instead of deadlocking.
    """
    keys = sorted(set(keys))
    now = utc_now()
    fresh = [
        {
            "student_id": student_id,
            "date": day,
            "session_id": session_id,
            "status": status,
            "source": source,
            "updated_at": now,
        }
        for student_id, day, session_id in keys
    ]
    key_columns = ["student_id", "date", "session_id"]
    inserted = insert_or_ignore(db, Attendance, fresh, key_columns, returning=key_columns)
    created: set[RowKey] = {(r.student_id, r.date, r.session_id) for r in inserted}
    table = Attendance.__table__  # type: ignore[attr-defined]
    columns = (table.c.student_id, table.c.date, table.c.session_id)
    times = (table.c.first_in, table.c.last_out)
    rows: dict[RowKey, Row] = {}
    for chunk in in_chunks(keys):
        query = (
            select(*columns, table.c.id, table.c.status, table.c.source, *times)
            .where(tuple_(*columns).in_(chunk))
            .order_by(*columns)
            .with_for_update()
        )
        rows.update(
            ((r.student_id, r.date, r.session_id), r) for r in db.connection().execute(query)
        )
    return rows, created


def locked_row(
    db: Session, student_id: int, day: date, session_id: int, status: str, source: str
) -> tuple[Attendance, bool]:
    """:func:`locked_rows` for one row, as an ORM object, and whether this call created it."""
    key = (student_id, day, session_id)
    rows, created = locked_rows(db, [key], status, source)
    row = db.get(Attendance, rows[key].id, populate_existing=True)
    assert row is not None
    return row, key in created


def _snapshot(row: Attendance) -> dict[str, str | None]:
    return {
        "status": row.status,
        "source": row.source,
        "first_in": row.first_in.isoformat() if row.first_in else None,
        "last_out": row.last_out.isoformat() if row.last_out else None,
    }


def _school_session(db: Session, student: Student, session_id: int) -> SchoolSession:
    session = db.get(SchoolSession, session_id)
    if session is None or session.school_id != student.school_id:
        raise AttendanceError(f"session {session_id} is not a session of the student's school")
    return session


def _school(db: Session, school_id: int) -> School:
    school = db.get(School, school_id)
    assert school is not None  # a foreign key guarantees it
    return school


def set_status_manually(
    db: Session,
    *,
    student_id: int,
    day: date,
    session_id: int,
    status: AttendanceStatus,
    user_id: int,
    note: str | None = None,
) -> Attendance:
    """A teacher's (or admin's) decision: it wins over every later gate event and leave, and it
    is audited with the status before and after. Checking that the user may change this
    student's attendance is the API's job; this records who did."""
    student = db.get(Student, student_id)
    if student is None:
        raise AttendanceError(f"no student with id {student_id}")
    status = AttendanceStatus(status)
    _school_session(db, student, session_id)
    if not Calendar(db).is_school_day(_school(db, student.school_id), day):
        raise AttendanceError(f"{day.isoformat()} is not a school day at the student's school")
    row, created = locked_row(db, student_id, day, session_id, status, AttendanceSource.MANUAL)
    before = None if created else _snapshot(row)
    row.status = status
    row.source = AttendanceSource.MANUAL
    row.changed_by = user_id
    row.note = note
    row.updated_at = utc_now()
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor_id=user_id,
        action="attendance.manual_change",
        entity="attendance",
        entity_id=row.id,
        student_id=student_id,
        detail={
            "date": day.isoformat(),
            "session_id": session_id,
            "before": before,
            "after": _snapshot(row),
            "note": note,
        },
    )
    outbox.enqueue_for_changes(db, outbox.status_change(row, before and before["status"]))
    return row


def approve_leave(db: Session, leave_id: int, user_id: int) -> int:
    """Approve a pending leave request: every covered session of every school day becomes
    excused (ahead of time, for future days), except those a teacher set by hand. Audited.
    Returns how many sessions were excused."""
    leave = db.exec(
        select(LeaveRequest).where(LeaveRequest.id == leave_id).with_for_update()
    ).first()
    if leave is None:
        raise AttendanceError(f"no leave request with id {leave_id}")
    if leave.status != LeaveStatus.PENDING:
        raise AttendanceError(f"leave request {leave_id} is {leave.status}, not pending")
    if (leave.ends_on - leave.starts_on).days >= MAX_LEAVE_DAYS:
        raise AttendanceError(f"a leave request covers at most {MAX_LEAVE_DAYS} days")
    student = db.get(Student, leave.student_id)
    assert student is not None
    school = _school(db, student.school_id)
    calendar = Calendar(db)
    sessions = (
        [_school_session(db, student, leave.session_id)]
        if leave.session_id is not None
        else calendar.sessions(school.id)
    )
    excused = 0
    day = leave.starts_on
    while day <= leave.ends_on:
        if calendar.is_school_day(school, day):
            for session in sessions:
                row, _ = locked_row(db, student.id, day, session.id, *EXCUSED_BY_LEAVE)
                if RANK[row.source] <= RANK[AttendanceSource.LEAVE]:
                    row.status = AttendanceStatus.EXCUSED
                    row.source = AttendanceSource.LEAVE
                    row.changed_by = user_id
                    row.updated_at = utc_now()
                    db.add(row)
                    excused += 1
        day += timedelta(days=1)
    leave.status = LeaveStatus.APPROVED
    leave.decided_by = user_id
    leave.decided_at = utc_now()
    db.add(leave)
    audit.record(
        db,
        actor_id=user_id,
        action="leave.approve",
        entity="leave_request",
        entity_id=leave.id,
        student_id=student.id,
        detail={"sessions_excused": excused},
    )
    outbox.enqueue_for_changes(db, outbox.leave_approved(leave, excused))
    return excused


def sweep(db: Session, school: School, session: SchoolSession, day: date) -> int:
    """Mark every active student of ``school`` with no row for (``day``, ``session``) absent, or
    excused when an approved leave covers it. Idempotent; returns how many rows it added."""
    has_row = exists().where(
        Attendance.student_id == Student.id,
        Attendance.date == day,
        Attendance.session_id == session.id,
    )
    on_leave = exists().where(
        LeaveRequest.student_id == Student.id,
        LeaveRequest.status == LeaveStatus.APPROVED,
        LeaveRequest.starts_on <= day,
        LeaveRequest.ends_on >= day,
        (col(LeaveRequest.session_id).is_(None)) | (LeaveRequest.session_id == session.id),
    )
    missing = db.exec(
        select(Student.id, on_leave).where(
            Student.school_id == school.id,
            Student.status == StudentStatus.ACTIVE,
            col(Student.enrolled_on).is_(None) | (col(Student.enrolled_on) <= day),
            ~has_row,
        )
    ).all()
    if not missing:
        return 0
    now = utc_now()
    values = [
        {
            "student_id": student_id,
            "date": day,
            "session_id": session.id,
            "status": AttendanceStatus.EXCUSED if excused else AttendanceStatus.ABSENT,
            "source": AttendanceSource.LEAVE if excused else AttendanceSource.ABSENT_JOB,
            "updated_at": now,
        }
        for student_id, excused in missing
    ]
    key_columns = ["student_id", "date", "session_id"]
    inserted = insert_or_ignore(
        db, Attendance, values, key_columns, returning=["id", "student_id", "status"]
    )
    outbox.enqueue_for_changes(db, outbox.absences(inserted, day, session, school))
    return len(inserted)


def run_absent_job(engine: Engine, now: datetime, catch_up_days: int) -> int:
    """Sweep every (school day, session) whose ``absent_after`` has passed, back to
    ``catch_up_days`` before today, that no earlier run swept. Safe to run at any time, as often
    as wanted and from several processes. Returns how many rows it added."""
    total = 0
    with Session(engine) as db:
        schools = list(db.exec(select(School)))
    for school in schools:
        today = now.astimezone(school.zone).date()
        for offset in range(catch_up_days, -1, -1):
            total += _sweep_day(engine, school, today - timedelta(days=offset), now)
    return total


def _sweep_day(engine: Engine, school: School, day: date, now: datetime) -> int:
    added = 0
    with session_scope(engine, write=True) as db:
        calendar = Calendar(db)
        if not calendar.is_school_day(school, day):
            return 0
        due = [
            s
            for s in calendar.sessions(school.id)
            if datetime.combine(day, s.absent_after, school.zone) <= now
        ]
        done = set(
            db.exec(
                select(AbsentSweep.session_id).where(
                    AbsentSweep.date == day, col(AbsentSweep.session_id).in_([s.id for s in due])
                )
            )
        )
        for session in due:
            if session.id in done:
                continue
            marked = sweep(db, school, session, day)
            done_row = {
                "session_id": session.id,
                "date": day,
                "done_at": utc_now(),
                "marked": marked,
            }
            insert_or_ignore(db, AbsentSweep, [done_row], ["session_id", "date"])
            added += marked
            log.info(
                "absent sweep",
                extra={
                    "school": school.id,
                    "date": day.isoformat(),
                    "session": session.code,
                    "marked": marked,
                },
            )
    return added


def absent_job_loop(engine: Engine, settings: AttendanceSection, stop: threading.Event) -> None:
    """Run the absent job now and then every ``absent_check_interval_s`` until ``stop`` is set.

    A failed run (the database away, say) is logged and simply tried again at the next tick:
    the job catches up on whatever it missed."""
    while True:
        try:
            run_absent_job(engine, utc_now(), settings.catch_up_days)
        except Exception:
            log.exception("absent job failed; trying again at the next tick")
        if stop.wait(settings.absent_check_interval_s):
            return
