"""The daily digest: a guardian who chose one gets the day's news in one message, once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from server.notify.digest import build_digests
from server.notify.models import NotificationPolicy
from server.notify.outbox import AttendanceChange, enqueue_for_changes
from server.notify.templates import MessageKind
from tests.server.conftest import World
from tests.server.notify.family import NOW, Clock, add_guardian, dispatcher, outbox, start_sms
from tests.server.notify.servers import HttpServer

DIGEST_HOUR = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # 18:00 in Hà Nội


def happened(db: Session, world: World, kind: MessageKind, at: datetime) -> None:
    change = AttendanceChange(world.students[0].id, kind, at, gate="gate-1")
    enqueue_for_changes(db, [change], now=at)
    db.commit()


def test_a_days_messages_become_one_digest_at_the_digest_hour(
    db: Session, engine: Engine, world: World, http_server: Callable[..., HttpServer]
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678", digest=True)
    happened(db, world, MessageKind.ARRIVED, NOW)  # 07:12
    happened(db, world, MessageKind.LEFT, NOW + timedelta(hours=9))  # 16:12

    assert build_digests(engine, DIGEST_HOUR - timedelta(minutes=1)) == 0
    assert build_digests(engine, DIGEST_HOUR) == 1
    assert build_digests(engine, DIGEST_HOUR + timedelta(minutes=1)) == 0

    arrived, left, digest = outbox(db)
    assert (arrived.status, left.status) == ("digested", "digested")
    assert arrived.digest_id == left.digest_id == digest.id
    assert (digest.kind, digest.status, digest.channel) == ("digest", "queued", "sms")
    assert digest.text == (
        "Tóm tắt điểm danh ngày 02/12/2026 của học sinh Học sinh 1, lớp 10A1:\n"
        "- 07:12 đến trường tại gate-1\n"
        "- 16:12 rời trường tại gate-1"
    )
    sms = start_sms(http_server)
    with dispatcher(engine, sms.channel, clock=Clock(DIGEST_HOUR)) as worker:
        assert worker.run_once() == 1
    [sent] = sms.fake.sent
    assert "02/12/2026: 07:12 den truong; 16:12 roi truong." in sent["Content"]


def test_news_after_the_digest_hour_waits_for_the_next_digest(
    db: Session, engine: Engine, world: World
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", digest=True, digest_at=time(18, 0))
    happened(db, world, MessageKind.ARRIVED, NOW)
    build_digests(engine, DIGEST_HOUR)
    happened(db, world, MessageKind.LEFT, DIGEST_HOUR + timedelta(hours=1))  # 19:00
    assert build_digests(engine, DIGEST_HOUR + timedelta(hours=2)) == 0
    assert build_digests(engine, DIGEST_HOUR + timedelta(days=1)) == 1
    digests = [row for row in outbox(db) if row.kind == "digest"]
    assert [row.text.count("\n- ") for row in digests] == [1, 1]
    assert digests[0].idempotency_key != digests[1].idempotency_key


def test_news_the_school_switched_off_before_the_digest_hour_is_left_out_of_it(
    db: Session, engine: Engine, world: World
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", digest=True)
    happened(db, world, MessageKind.ARRIVED, NOW)
    happened(db, world, MessageKind.LEFT, NOW + timedelta(hours=9))
    db.add(NotificationPolicy(school_id=world.school.id, disabled_kinds=["left"]))
    db.commit()

    assert build_digests(engine, DIGEST_HOUR) == 1
    arrived, left, digest = outbox(db)
    assert (arrived.status, arrived.digest_id) == ("digested", digest.id)
    assert (left.status, left.reason) == ("skipped", "the school has turned off 'left' messages")
    assert "đến trường" in digest.text and "rời trường" not in digest.text
