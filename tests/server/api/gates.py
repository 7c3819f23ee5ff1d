"""Gate events for the API tests, stored the way ingest stores them (raw event + attendance)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session

from broker.codec import decode, encode
from broker.payloads import Event
from broker.topics import Channel, device_topic
from server.ingest import store_batch
from server.models import Student, utc_now

MONDAY = date(2025, 10, 6)  # a school day of the test school's term
VN = timedelta(hours=7)  # Asia/Ho_Chi_Minh is UTC+7 all year


def vn(day: date, at: time) -> datetime:
    """An aware UTC datetime for a wall-clock time in Vietnam."""
    return datetime.combine(day, at, UTC) - VN


def pass_gate(
    db: Session,
    student: Student,
    day: date,
    at: time,
    direction: str = "in",
    device: str = "gate-1",
) -> None:
    """``student`` seen by ``device`` of site ``school-a`` at local time ``at``; committed."""
    event = Event(
        event_id=uuid.uuid4(),
        kind="face",
        ts=vn(day, at),
        site="school-a",
        device=device,
        direction=direction,
        student_id=student.code,
        score=0.9,
        track_id=1,
        model_pack="dlib-r29-mtcnn",
        latency_ms=50.0,
    )
    decoded = decode(device_topic(Channel.EVENTS, "school-a", device), encode(event))
    store_batch(db, [(decoded, utc_now())])
    db.commit()
