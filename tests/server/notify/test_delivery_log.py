"""The delivery log: the admin's view of what went to whom, filtered and paged."""

from __future__ import annotations

from datetime import time, timedelta

from sqlmodel import Session

from server.notify.delivery_log import DeliveryLogQuery, delivery_counts, delivery_log
from server.notify.models import NotificationStatus
from server.notify.outbox import AttendanceChange, enqueue_for_changes
from server.notify.templates import MessageKind
from tests.server.conftest import World
from tests.server.notify.family import NOW, add_guardian


def test_the_log_filters_pages_and_counts(db: Session, world: World) -> None:
    first, second = world.students[0], world.students[1]
    mai = add_guardian(db, first, "Trần Thị Mai", channels=("push", "sms"))
    quiet = {"quiet_start": time(7, 0), "quiet_end": time(8, 0)}  # NOW is 07:12 in Hà Nội
    hoa = add_guardian(db, second, "Lê Thị Hoa", channels=("sms",), **quiet)
    for days in range(3):
        at = NOW - timedelta(days=days)
        changes = [AttendanceChange(s.id, MessageKind.ARRIVED, at) for s in (first, second)]
        enqueue_for_changes(db, changes, now=at)
    db.commit()

    everything = delivery_log(db, DeliveryLogQuery(school_id=world.school.id))
    assert len(everything) == 6
    assert [entry.id for entry in everything] == sorted((e.id for e in everything), reverse=True)
    entry = next(e for e in everything if e.guardian_id == mai.id)
    assert (entry.guardian_name, entry.student_name, entry.channel) == (
        "Trần Thị Mai",
        "Học sinh 1",
        "push",
    )

    assert {e.guardian_id for e in delivery_log(db, DeliveryLogQuery(channel="sms"))} == {hoa.id}
    today = delivery_log(db, DeliveryLogQuery(day_from=NOW.date(), day_to=NOW.date()))
    assert len(today) == 2
    page = delivery_log(db, DeliveryLogQuery(limit=4))
    rest = delivery_log(db, DeliveryLogQuery(limit=4, before_id=page[-1].id))
    assert [e.id for e in page + rest] == [e.id for e in everything]
    assert delivery_log(db, DeliveryLogQuery(school_id=world.school.id + 1)) == []

    counts = delivery_counts(db, DeliveryLogQuery(school_id=world.school.id))
    assert counts == {NotificationStatus.QUEUED: 3, NotificationStatus.HELD: 3}
