"""What the outbox and dispatcher tests share: a school whose school day is today, guardians with
their channels, a clock the tests move by hand, and the local providers the channel tests built
(the eSMS fake honours RequestId; the push service decrypts like a browser)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from broker.payloads import Event
from server.attendance import Calendar, Directory, apply_gate_events, place_gate_event
from server.models import (
    Guardian,
    GuardianRelationship,
    SchoolSession,
    Student,
    StudentGuardian,
    Term,
)
from server.notify.channel import Channel, Delivery, Outgoing
from server.notify.channels.esms import EsmsChannel
from server.notify.channels.webpush import WebPushChannel
from server.notify.dispatcher import ChannelBook, Dispatcher
from server.notify.models import Notification, NotificationPreference
from server.notify.settings import NotifySection
from tests.server.conftest import World, fresh, make_school
from tests.server.notify.servers import HttpServer
from tests.server.notify.test_esms import FakeEsms
from tests.server.notify.test_esms import channel as esms_channel
from tests.server.notify.test_webpush import Browser, FakePushService, b64url, public_point
from tests.server.notify.test_webpush import channel as push_channel

NOW = datetime(2026, 12, 2, 0, 12, tzinfo=UTC)
"""07:12 on Wednesday 02/12/2026 in Hà Nội: the clock of tests that set it."""
SETTINGS = NotifySection(
    public_url="https://truong.example.vn",
    opt_out_secret="a-long-enough-test-secret",
    send_threads=4,
    lease_s=60,
    max_attempts=3,
    retry_base_s=10,
    retry_max_s=100,
    poll_interval_s=0.02,
)


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def school_today(db: Session) -> World:
    """The test school, but every day is a school day and one session spans it (present up to
    23:59:57), so gate events stamped now count wherever and whenever the tests run."""
    world = make_school(db)
    world.school.school_weekdays = "1234567"
    today = datetime.now(world.school.zone).date()
    db.add(Term(school_year_id=world.year.id, name="Hôm nay", starts_on=today, ends_on=today))
    db.exec(delete(SchoolSession).where(SchoolSession.id == world.afternoon.id))
    world.morning.start, world.morning.end = time(0, 0), time(23, 59, 59, 999_999)
    world.morning.late_after, world.morning.absent_after = time(23, 59, 57), time(23, 59, 58)
    world.devices["gate-1"].name = "Cổng chính"
    db.add_all([world.school, world.morning, world.devices["gate-1"]])
    db.commit()
    return world


def moments_today(world: World, count: int) -> list[datetime]:
    """``count`` increasing moments (UTC) between the school's local midnight and now, evenly
    spaced: earlier events that still fall on today's school day at any hour the tests run
    (an hour "ago" is yesterday in Hà Nội from 00:00 to 01:00)."""
    now = datetime.now(world.school.zone)
    midnight = datetime.combine(now.date(), time(0), world.school.zone)
    step = (now - midnight) / (count + 1)
    return [(midnight + step * (i + 1)).astimezone(UTC) for i in range(count)]


def add_guardian(
    db: Session,
    student: Student,
    name: str,
    *,
    phone: str | None = None,
    email: str | None = None,
    channels: tuple[str, ...] = ("sms",),
    **preference: Any,
) -> Guardian:
    """A guardian of ``student`` who wants messages on ``channels`` in that order, with the
    given :class:`NotificationPreference` fields if any."""
    guardian = Guardian(full_name=name, phone=phone, email=email)
    db.add(guardian)
    db.flush()
    db.add(
        StudentGuardian(
            student_id=student.id,
            guardian_id=guardian.id,
            relationship=GuardianRelationship.MOTHER,
            channel_preferences={channel: True for channel in channels},
        )
    )
    if preference:
        db.add(NotificationPreference(guardian_id=guardian.id, **preference))
    db.commit()
    return guardian


def gate_event(student: Student, ts: datetime, direction: str = "in") -> Event:
    return Event(
        event_id=uuid.uuid4(),
        kind="face",
        ts=ts,
        site="school-a",
        device="gate-1",
        direction=direction,
        student_id=student.code,
        score=0.9,
        track_id=1,
        model_pack="dlib-r29-mtcnn",
        latency_ms=50.0,
    )


def through_gate(db: Session, world: World, event: Event) -> None:
    """Apply one gate event as ingest does, in ``db``'s open transaction (not committed)."""
    placement = place_gate_event(Calendar(db), Directory(db, [event]), event, world.school)
    apply_gate_events(db, [(placement, event)])


def outbox(db: Session) -> list[Notification]:
    """Every outbox row, as committed, oldest first."""
    return list(fresh(db).exec(select(Notification).order_by(Notification.id)))


# --- providers ----------------------------------------------------------------------------------


@dataclass
class Sms:
    """The local eSMS and a channel named "sms" on it."""

    fake: FakeEsms
    server: HttpServer
    channel: EsmsChannel


def start_sms(http_server: Callable[..., HttpServer], **settings: Any) -> Sms:
    fake = FakeEsms()
    server = http_server(fake)
    return Sms(fake, server, esms_channel(server, **settings))


@dataclass
class Push:
    """A local push service, the browser subscribed to it, and a channel named "push"."""

    fake: FakePushService
    server: HttpServer
    browser: Browser
    channel: WebPushChannel

    def endpoint(self, name: str = "phone") -> str:
        return f"{self.server.url}/push/{name}"


def start_push(http_server: Callable[..., HttpServer]) -> Push:
    key = Vapid()
    key.generate_keys()
    raw = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    vapid = (b64url(raw), b64url(public_point(key.private_key)))
    browser = Browser(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
    fake = FakePushService(browser, vapid[1])
    server = http_server(fake)
    fake.origin = server.url
    return Push(fake, server, browser, push_channel(vapid))


class Recorder(Channel):
    """A channel that accepts everything and keeps what it was given."""

    kind = "recorder"
    address = "phone"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> Delivery:
        self.sent.append(message)
        return Delivery.accepted(f"rec-{len(self.sent)}")


@contextmanager
def dispatcher(
    engine: Engine,
    *channels: Channel,
    clock: Callable[[], datetime] | None = None,
    **settings: Any,
) -> Iterator[Dispatcher]:
    """A dispatcher over ``channels`` (by their names) with the test settings, on a
    :class:`Clock` at :data:`NOW` unless given another."""
    book = ChannelBook({channel.name: channel for channel in channels})
    section = SETTINGS.model_copy(update=settings)
    with Dispatcher(engine, book, section, clock=clock or Clock()) as worker:
        yield worker
    book.close()
