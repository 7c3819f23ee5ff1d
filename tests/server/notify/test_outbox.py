"""The outbox: an attendance change writes its messages in its own transaction — one per guardian
who should hear of it, once, at the time their choices allow, never to a stranger."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import Session, select

from broker.codec import decode, encode
from broker.payloads import Event
from broker.topics import device_topic
from server.attendance import (
    Calendar,
    Directory,
    approve_leave,
    place_gate_event,
    run_absent_job,
    set_status_manually,
)
from server.ingest import store_batch
from server.models import (
    Attendance,
    AttendanceStatus,
    Card,
    EventOutcome,
    LeaveReason,
    LeaveRequest,
    utc_now,
)
from server.notify.models import Notification, NotificationPolicy, NotificationStatus
from server.notify.outbox import (
    AttendanceChange,
    enqueue_for_change,
    enqueue_for_changes,
)
from server.notify.templates import MessageKind
from tests.server.conftest import World, fresh
from tests.server.notify.family import (
    NOW,
    add_guardian,
    gate_event,
    moments_today,
    outbox,
    school_today,
    through_gate,
)


@pytest.fixture
def today(db: Session) -> World:
    return school_today(db)


def local_clock(world: World, at: datetime) -> tuple[str, str]:
    local = at.astimezone(world.school.zone)
    return local.strftime("%H:%M"), local.strftime("%d/%m/%Y")


def test_an_arrival_queues_one_message_per_guardian_inside_the_same_transaction(
    db: Session, today: World
) -> None:
    child, classmate = today.students[0], today.students[1]
    mother = add_guardian(db, child, "Trần Thị Mai", channels=("push", "sms"))
    father = add_guardian(db, child, "Nguyễn Văn Hùng", channels=("sms",))
    stranger = add_guardian(db, classmate, "Lê Thị Hoa", channels=("sms",))
    [arrived] = moments_today(today, 1)

    through_gate(db, today, gate_event(child, arrived))
    pending = db.exec(select(Notification.guardian_id, Notification.channel)).all()
    assert sorted(pending) == sorted([(mother.id, "push"), (father.id, "sms")])
    db.commit()

    rows = outbox(db)
    assert {row.guardian_id for row in rows} == {mother.id, father.id} != {stranger.id}
    clock, day = local_clock(today, arrived)
    for row in rows:
        assert (row.status, row.kind, row.student_id) == ("queued", "arrived", child.id)
        assert row.text == (
            f"Học sinh Học sinh 1, lớp 10A1, đã đến trường lúc {clock} ngày {day} tại Cổng chính."
        )
        assert row.event_at == arrived and row.attendance_id is not None and row.event_id
        assert row.idempotency_key.endswith(f":arrived:g{row.guardian_id}:{row.channel}")


def test_a_rolled_back_change_leaves_no_message(db: Session, today: World) -> None:
    add_guardian(db, today.students[0], "Trần Thị Mai")
    through_gate(db, today, gate_event(today.students[0], utc_now()))
    db.rollback()
    assert outbox(db) == []
    assert fresh(db).exec(select(Attendance)).all() == []


def test_repeated_and_later_events_make_no_second_message_but_leaving_does(
    db: Session, today: World
) -> None:
    child = today.students[0]
    add_guardian(db, child, "Trần Thị Mai")
    arrived, again_in, left, left_again = moments_today(today, 4)
    first = gate_event(child, arrived)
    through_gate(db, today, first)
    db.commit()
    through_gate(db, today, gate_event(child, again_in))
    through_gate(db, today, gate_event(child, left, "out"))
    through_gate(db, today, gate_event(child, left_again, "out"))
    db.commit()
    again = AttendanceChange(child.id, MessageKind.ARRIVED, first.ts, session_id=today.morning.id)
    assert enqueue_for_change(db, again) == 0
    db.commit()
    assert [row.kind for row in outbox(db)] == ["arrived", "left"]


def test_an_arrival_after_late_after_is_a_late_message(db: Session, today: World) -> None:
    today.morning.late_after = time(0, 0)
    db.add(today.morning)
    db.commit()
    add_guardian(db, today.students[0], "Trần Thị Mai")
    through_gate(db, today, gate_event(today.students[0], utc_now()))
    db.commit()
    [row] = outbox(db)
    assert row.kind == "late" and "đến trường muộn" in row.text


def test_a_teachers_change_and_an_approved_leave_tell_the_guardians(
    db: Session, today: World
) -> None:
    child, sick = today.students[0], today.students[1]
    add_guardian(db, child, "Trần Thị Mai")
    add_guardian(db, sick, "Lê Thị Hoa")
    day = datetime.now(today.school.zone).date()
    set_status_manually(
        db,
        student_id=child.id,
        day=day,
        session_id=today.morning.id,
        status=AttendanceStatus.ABSENT,
        user_id=today.teacher.id,
    )
    db.commit()
    leave = LeaveRequest(
        student_id=sick.id, starts_on=day, ends_on=day, reason=LeaveReason.MEDICAL, note="Sốt"
    )
    db.add(leave)
    db.commit()
    approve_leave(db, leave.id, today.teacher.id)
    db.commit()
    absent, excused = outbox(db)
    assert (absent.student_id, absent.kind) == (child.id, "absent")
    assert (excused.student_id, excused.kind) == (sick.id, "excused")
    assert excused.text.endswith(f"nghỉ có phép ngày {day:%d/%m/%Y}. Lý do: Sốt.")


def test_the_absent_job_tells_the_guardians_of_absent_students_only(
    db: Session, today: World
) -> None:
    arrived, absent_after = moments_today(today, 2)
    today.morning.late_after = time(0, 0)
    today.morning.absent_after = absent_after.astimezone(today.school.zone).time()
    db.add(today.morning)
    db.commit()
    here, away = today.students[0], today.students[1]
    add_guardian(db, here, "Trần Thị Mai")
    add_guardian(db, away, "Lê Thị Hoa")
    through_gate(db, today, gate_event(here, arrived))
    db.commit()
    run_absent_job(db.get_bind(), utc_now(), catch_up_days=0)
    kinds = {(row.student_id, row.kind) for row in outbox(db)}
    assert (away.id, "absent") in kinds and (here.id, "absent") not in kinds


def test_a_card_used_without_its_owners_face_tells_the_owners_guardians(
    db: Session, today: World
) -> None:
    owner = today.students[0]
    add_guardian(db, owner, "Trần Thị Mai")
    db.add(Card(uid="04A1B2C3D4E5F6", student_id=owner.id))
    db.commit()
    tap = Event(
        event_id=gate_event(owner, utc_now()).event_id,
        kind="card",
        ts=utc_now(),
        site="school-a",
        device="gate-1",
        direction="in",
        card_uid="04A1B2C3D4E5F6",
        face_check="mismatch",
        latency_ms=30.0,
    )
    placement = place_gate_event(Calendar(db), Directory(db, [tap]), tap, today.school)
    assert placement.outcome is EventOutcome.FACE_MISMATCH

    # Through ingest, as the gate's message arrives: stored, no attendance, one message.
    decoded = decode(device_topic("events", "school-a", "gate-1"), encode(tap))
    store_batch(db, [(decoded, utc_now())])
    db.commit()

    [row] = outbox(db)
    assert row.kind == "card_without_face" and "không nhận ra khuôn mặt" in row.text
    assert not list(fresh(db).exec(select(Attendance)))


def test_quiet_hours_hold_the_message_until_they_end(db: Session, world: World) -> None:
    child = world.students[0]
    add_guardian(db, child, "Trần Thị Mai", quiet_start=time(21, 30), quiet_end=time(6, 30))
    evening = datetime(2026, 12, 2, 15, 5, tzinfo=UTC)  # 22:05 in Hà Nội
    change = AttendanceChange(child.id, MessageKind.LEFT, evening)
    enqueue_for_changes(db, [change], now=evening + timedelta(minutes=1))
    db.commit()
    [row] = outbox(db)
    assert row.status == NotificationStatus.HELD and "quiet hours" in row.reason
    assert row.next_attempt_at == datetime(2026, 12, 2, 23, 30, tzinfo=UTC)  # 06:30 next day


def test_a_digest_guardian_s_messages_wait_for_the_digest_hour(db: Session, world: World) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", digest=True, digest_at=time(18, 0))
    enqueue_for_changes(db, [AttendanceChange(world.students[0].id, "arrived", NOW)], now=NOW)
    db.commit()
    [row] = outbox(db)
    assert row.status == NotificationStatus.DIGEST
    assert row.next_attempt_at == datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # 18:00 local


def test_the_schools_switch_and_the_guardians_kinds_leave_messages_out(
    db: Session, world: World
) -> None:
    child = world.students[0]
    add_guardian(db, child, "Trần Thị Mai")
    add_guardian(db, child, "Nguyễn Văn Hùng", kinds=["absent"])
    db.add(NotificationPolicy(school_id=world.school.id, disabled_kinds=["left"]))
    db.commit()
    changes = [
        AttendanceChange(child.id, MessageKind.ARRIVED, NOW),
        AttendanceChange(child.id, MessageKind.LEFT, NOW),
    ]
    assert enqueue_for_changes(db, changes, now=NOW) == 1
    db.commit()
    assert [row.kind for row in outbox(db)] == ["arrived"]


def test_stale_news_is_not_sent(db: Session, world: World) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai")
    old = AttendanceChange(world.students[0].id, MessageKind.ARRIVED, NOW - timedelta(hours=13))
    assert enqueue_for_changes(db, [old], now=NOW) == 0


def test_one_guardians_unusable_choices_leave_only_their_message_out(
    db: Session, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    child = world.students[0]
    add_guardian(db, child, "Trần Thị Mai", kinds=["arrived", "flying"])
    fine = add_guardian(db, child, "Nguyễn Văn Hùng")
    with caplog.at_level(logging.ERROR, logger="server.notify.outbox"):
        enqueue_for_changes(db, [AttendanceChange(child.id, MessageKind.ARRIVED, NOW)], now=NOW)
    db.commit()
    assert [row.guardian_id for row in outbox(db)] == [fine.id]
    assert "notification left out" in caplog.text
