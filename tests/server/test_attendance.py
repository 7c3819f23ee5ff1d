"""Attendance rules at their boundaries, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from broker.payloads import Event
from server.attendance import (
    AttendanceError,
    Calendar,
    Directory,
    apply_gate_events,
    approve_leave,
    place_gate_event,
    run_absent_job,
    set_status_manually,
)
from server.models import (
    AbsentSweep,
    Attendance,
    AuditLog,
    CalendarDay,
    Card,
    EventOutcome,
    LeaveRequest,
    SchoolSession,
    Student,
)
from tests.server.conftest import World, fresh, make_school

MONDAY = date(2025, 10, 6)
VN = 7  # Asia/Ho_Chi_Minh is UTC+7 all year


def local(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    """An aware UTC datetime for a wall-clock time in Vietnam."""
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC) - timedelta(hours=VN)


def event(student: Student | None, ts: datetime, direction: str = "in", **fields) -> Event:
    base = dict(
        event_id=uuid.uuid4(),
        kind="face",
        ts=ts,
        site="school-a",
        device="gate-1",
        direction=direction,
        student_id=student.code if student else None,
        score=0.9,
        track_id=1,
        model_pack="dlib-r29-mtcnn",
        latency_ms=50.0,
    )
    return Event(**(base | fields))


def gate(db: Session, world: World, ev: Event) -> EventOutcome:
    """Run one event through the rules and commit, as ingest does."""
    placement = place_gate_event(Calendar(db), Directory(db, [ev]), ev, world.school)
    if placement.outcome is EventOutcome.COUNTED:
        apply_gate_events(db, [(placement, ev)])
    db.commit()
    return placement.outcome


def row(db: Session, student: Student, day: date = MONDAY, session_id: int | None = None):
    return (
        fresh(db)
        .exec(
            select(Attendance).where(
                Attendance.student_id == student.id,
                Attendance.date == day,
                Attendance.session_id == (session_id or _morning_id(db, student)),
            )
        )
        .first()
    )


def _morning_id(db: Session, student: Student) -> int:
    return db.exec(
        select(SchoolSession.id).where(
            SchoolSession.school_id == student.school_id, SchoolSession.code == "morning"
        )
    ).one()


# --- present or late ------------------------------------------------------------------------------


def test_arriving_exactly_at_late_after_is_present(db: Session, world: World) -> None:
    student = world.students[0]
    assert gate(db, world, event(student, local(MONDAY, 7, 15))) is EventOutcome.COUNTED
    r = row(db, student)
    assert (r.status, r.source, r.first_in) == ("present", "gate", local(MONDAY, 7, 15))


def test_arriving_one_second_after_late_after_is_late(db: Session, world: World) -> None:
    student = world.students[0]
    gate(db, world, event(student, local(MONDAY, 7, 15, 1)))
    assert row(db, student).status == "late"


def test_the_local_day_decides_not_the_utc_day(db: Session, world: World) -> None:
    """06:30 Monday in Hanoi is 23:30 Sunday UTC; 00:30 Tuesday local is 17:30 Monday UTC."""
    early, after_midnight = world.students[0], world.students[1]
    sunday_utc = datetime(2025, 10, 5, 23, 30, tzinfo=UTC)
    assert gate(db, world, event(early, sunday_utc)) is EventOutcome.COUNTED
    assert row(db, early).status == "present"

    monday_utc = datetime(2025, 10, 6, 17, 30, tzinfo=UTC)
    assert gate(db, world, event(after_midnight, monday_utc)) is EventOutcome.COUNTED
    assert row(db, after_midnight) is None
    tuesday = row(db, after_midnight, MONDAY + timedelta(days=1))
    assert (tuesday.status, tuesday.first_in) == ("present", monday_utc)


def test_sessions_split_the_day_by_direction(db: Session, world: World) -> None:
    """At noon an ``in`` is for the afternoon (morning ended), an ``out`` for the morning."""
    coming, leaving = world.students[0], world.students[1]
    gate(db, world, event(coming, local(MONDAY, 12, 0)))
    gate(db, world, event(leaving, local(MONDAY, 12, 0), "out"))
    assert row(db, coming) is None
    assert row(db, coming, session_id=world.afternoon.id).status == "present"
    assert row(db, leaving).last_out == local(MONDAY, 12, 0)
    assert gate(db, world, event(coming, local(MONDAY, 17, 0))) is EventOutcome.OUTSIDE_SESSIONS
    assert gate(db, world, event(coming, local(MONDAY, 6, 0), "out")) is (
        EventOutcome.OUTSIDE_SESSIONS
    )


# --- calendar -------------------------------------------------------------------------------------


def test_holidays_weekends_and_days_outside_terms_are_not_counted(
    db: Session, world: World
) -> None:
    student = world.students[0]
    db.add(CalendarDay(school_id=world.school.id, date=MONDAY, kind="holiday", name="Nghỉ lễ"))
    db.commit()
    for day in (MONDAY, date(2025, 10, 4), date(2026, 3, 2)):  # holiday, Saturday, after the term
        assert gate(db, world, event(student, local(day, 7, 0))) is EventOutcome.NOT_SCHOOL_DAY
    assert db.exec(select(Attendance)).all() == []


def test_a_make_up_saturday_is_a_school_day(db: Session, world: World) -> None:
    saturday = date(2025, 10, 4)
    db.add(CalendarDay(school_id=world.school.id, date=saturday, kind="school_day", name="Học bù"))
    db.commit()
    student = world.students[0]
    assert gate(db, world, event(student, local(saturday, 7, 0))) is EventOutcome.COUNTED


# --- order and repeats ----------------------------------------------------------------------------


def test_an_out_arriving_before_its_in_ends_the_same(db: Session, world: World) -> None:
    student = world.students[0]
    gate(db, world, event(student, local(MONDAY, 11, 0), "out"))
    assert row(db, student).status == "present"  # seen on site, not yet known when they came
    gate(db, world, event(student, local(MONDAY, 7, 20)))
    r = row(db, student)
    assert (r.status, r.first_in, r.last_out) == (
        "late",
        local(MONDAY, 7, 20),
        local(MONDAY, 11, 0),
    )


def test_an_earlier_in_arriving_later_sets_first_in_and_status(db: Session, world: World) -> None:
    student = world.students[0]
    gate(db, world, event(student, local(MONDAY, 7, 40)))
    assert row(db, student).status == "late"
    gate(db, world, event(student, local(MONDAY, 6, 55)))  # delivered late by a gate's outbox
    gate(db, world, event(student, local(MONDAY, 9, 0)))
    r = row(db, student)
    assert (r.status, r.first_in) == ("present", local(MONDAY, 6, 55))


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["in", "out"]), st.integers(6 * 60, 11 * 60 + 29)),
        min_size=1,
        max_size=5,
    ),
    st.randoms(use_true_random=False),
)
def test_any_order_of_the_same_events_gives_the_same_row(
    db: Session, world: World, passes: list[tuple[str, int]], rnd
) -> None:
    student = world.students[0]
    events = [event(student, local(MONDAY, 0, 0) + timedelta(minutes=m), d) for d, m in passes]
    outcomes = []
    for order in (events, rnd.sample(events, len(events))):
        db.exec(delete(Attendance))
        db.commit()
        for ev in order:
            gate(db, world, ev)
        r = row(db, student)
        outcomes.append(r and (r.status, r.first_in, r.last_out))
    assert outcomes[0] == outcomes[1]


# --- who may count ------------------------------------------------------------------------------


def test_card_taps_without_the_owners_face_are_kept_but_do_not_count(
    db: Session, world: World
) -> None:
    student = world.students[0]
    db.add(Card(uid="04A1B2C3D4E5F6", student_id=student.id))
    db.commit()
    card = dict(kind="card", student_id=None, score=None, track_id=None, card_uid="04A1B2C3D4E5F6")
    for check, outcome in (
        ("mismatch", EventOutcome.FACE_MISMATCH),
        ("missing", EventOutcome.FACE_MISSING),
    ):
        ev = event(None, local(MONDAY, 7, 0), **card, face_check=check)
        placement = place_gate_event(Calendar(db), Directory(db, [ev]), ev, world.school)
        assert (placement.outcome, placement.student.id) == (outcome, student.id)
    assert gate(db, world, event(None, local(MONDAY, 7, 0), **card)) is EventOutcome.COUNTED
    assert row(db, student).status == "present"


def test_unknown_faces_cards_students_and_other_schools_do_not_count(
    db: Session, world: World
) -> None:
    other = make_school(db, site="school-b", devices=(), students=1, prefix="B")
    inactive = world.students[1]
    inactive.status = "graduated"
    db.add(inactive)
    db.commit()
    at = local(MONDAY, 7, 0)
    unknown_card = dict(
        kind="card", student_id=None, score=None, track_id=None, card_uid="0A0B0C0D"
    )
    cases = [
        (event(None, at), EventOutcome.UNKNOWN_FACE),
        (event(None, at, student_id="NOBODY"), EventOutcome.UNKNOWN_STUDENT),
        (event(None, at, **unknown_card), EventOutcome.UNKNOWN_CARD),
        (event(other.students[0], at), EventOutcome.OTHER_SCHOOL),
        (event(inactive, at), EventOutcome.INACTIVE_STUDENT),
    ]
    for ev, outcome in cases:
        assert gate(db, world, ev) is outcome
    assert db.exec(select(Attendance)).all() == []


# --- people decide --------------------------------------------------------------------------------


def test_a_teachers_change_wins_over_later_gate_events_and_is_audited(
    db: Session, world: World
) -> None:
    student = world.students[0]
    gate(db, world, event(student, local(MONDAY, 7, 40)))
    set_status_manually(
        db,
        student_id=student.id,
        day=MONDAY,
        session_id=world.morning.id,
        status="present",
        user_id=world.teacher.id,
        note="Đi học đúng giờ, máy quét lỗi",
    )
    db.commit()
    gate(db, world, event(student, local(MONDAY, 11, 0), "out"))
    gate(db, world, event(student, local(MONDAY, 7, 50)))
    r = row(db, student)
    assert (r.status, r.source, r.changed_by) == ("present", "manual", world.teacher.id)
    assert r.last_out == local(MONDAY, 11, 0)  # the gate's facts are still recorded

    entry = db.exec(select(AuditLog)).one()
    assert (entry.actor_id, entry.action, entry.student_id) == (
        world.teacher.id,
        "attendance.manual_change",
        student.id,
    )
    assert entry.detail["before"]["status"] == "late"
    assert entry.detail["after"] == {
        "status": "present",
        "source": "manual",
        "first_in": local(MONDAY, 7, 40).isoformat(),
        "last_out": None,
    }


def test_a_manual_change_on_a_day_without_school_is_refused_and_changes_nothing(
    db: Session, world: World
) -> None:
    student = world.students[0]
    with pytest.raises(AttendanceError, match="not a school day"):
        set_status_manually(
            db,
            student_id=student.id,
            day=date(2025, 10, 4),
            session_id=world.morning.id,
            status="absent",
            user_id=world.teacher.id,
        )
    db.rollback()
    with pytest.raises(ValueError):
        set_status_manually(
            db,
            student_id=student.id,
            day=MONDAY,
            session_id=world.morning.id,
            status="sleeping",
            user_id=world.teacher.id,
        )
    db.rollback()
    assert db.exec(select(Attendance)).all() == []
    assert db.exec(select(AuditLog)).all() == []


def test_approved_leave_excuses_and_outranks_the_gate_but_not_a_teacher(
    db: Session, world: World
) -> None:
    student = world.students[0]
    tuesday = MONDAY + timedelta(days=1)
    gate(db, world, event(student, local(MONDAY, 7, 0)))
    set_status_manually(
        db,
        student_id=student.id,
        day=tuesday,
        session_id=world.afternoon.id,
        status="present",
        user_id=world.teacher.id,
    )
    leave = LeaveRequest(
        student_id=student.id, starts_on=MONDAY, ends_on=tuesday, reason="medical", note="Ốm"
    )
    db.add(leave)
    db.commit()
    assert approve_leave(db, leave.id, world.teacher.id) == 3
    db.commit()
    gate(db, world, event(student, local(tuesday, 7, 0)))
    assert row(db, student).status == "excused"
    assert row(db, student, tuesday).status == "excused"
    assert row(db, student, tuesday).first_in == local(tuesday, 7, 0)
    assert row(db, student, tuesday, world.afternoon.id).status == "present"
    with pytest.raises(AttendanceError, match="not pending"):
        approve_leave(db, leave.id, world.teacher.id)


# --- the absent job -------------------------------------------------------------------------------


def test_the_absent_job_marks_unseen_students_once(
    engine: Engine, db: Session, world: World
) -> None:
    seen, unseen, on_leave = world.students
    gate(db, world, event(seen, local(MONDAY, 7, 5)))
    db.add(
        LeaveRequest(
            student_id=on_leave.id,
            starts_on=MONDAY,
            ends_on=MONDAY,
            session_id=world.morning.id,
            reason="family",
            status="approved",
        )
    )
    db.commit()
    assert run_absent_job(engine, local(MONDAY, 7, 29, 59), catch_up_days=0) == 0
    assert run_absent_job(engine, local(MONDAY, 7, 30), catch_up_days=0) == 2
    assert run_absent_job(engine, local(MONDAY, 7, 31), catch_up_days=0) == 0
    assert [row(db, s).status for s in world.students] == ["present", "absent", "excused"]
    assert row(db, unseen).source == "absent_job"

    db.exec(delete(AbsentSweep))  # even without its record of past runs, nothing doubles
    db.commit()
    assert run_absent_job(engine, local(MONDAY, 7, 31), catch_up_days=0) == 0
    assert len(db.exec(select(Attendance)).all()) == 3


def test_a_late_arrival_after_the_absent_job_is_late(
    engine: Engine, db: Session, world: World
) -> None:
    student = world.students[0]
    run_absent_job(engine, local(MONDAY, 8, 0), catch_up_days=0)
    assert row(db, student).status == "absent"
    gate(db, world, event(student, local(MONDAY, 8, 30)))
    assert (row(db, student).status, row(db, student).source) == ("late", "gate")


def test_the_absent_job_catches_up_school_days_it_missed(
    engine: Engine, db: Session, world: World
) -> None:
    """Down from Friday to Tuesday noon: Friday, Monday and Tuesday morning are swept; the
    weekend and the Monday holiday are not; Tuesday afternoon is not due yet."""
    friday, holiday, tuesday = date(2025, 10, 3), date(2025, 10, 13), date(2025, 10, 14)
    db.add(CalendarDay(school_id=world.school.id, date=holiday, kind="holiday"))
    late_joiner = world.students[2]
    late_joiner.enrolled_on = tuesday
    db.add(late_joiner)
    db.commit()
    added = run_absent_job(engine, local(tuesday, 12, 0), catch_up_days=11)
    days = sorted({(r.date, r.session_id) for r in db.exec(select(Attendance)).all()})
    expected = [
        (day, session)
        for day in (
            friday,
            date(2025, 10, 6),
            date(2025, 10, 7),
            date(2025, 10, 8),
            date(2025, 10, 9),
            date(2025, 10, 10),
        )
        for session in (world.morning.id, world.afternoon.id)
    ] + [(tuesday, world.morning.id)]
    assert days == sorted(expected)
    assert added == 2 * (len(expected) - 1) + 3  # the late joiner only on Tuesday morning
