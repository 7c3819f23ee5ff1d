"""The delivery log: what was sent to whom, on which channel, and what became of it.

Read-only queries over the outbox for the admin page and the API (which add the routes and
decide who may see what: an admin their school, a guardian only their own rows). Newest first,
paged by id (``before_id``) so a page stays stable while new messages arrive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from server.models import Guardian, Student
from server.notify.models import Notification, NotificationStatus


class DeliveryLogQuery(BaseModel):
    """Filters (all optional, combined with AND) and a page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    school_id: int | None = None
    student_id: int | None = None
    guardian_id: int | None = None
    status: NotificationStatus | None = None
    channel: str | None = Field(default=None, max_length=32)
    day_from: dt.date | None = Field(default=None, description="School-local date, inclusive.")
    day_to: dt.date | None = Field(default=None, description="School-local date, inclusive.")
    before_id: int | None = Field(default=None, description="The page after this entry.")
    limit: int = Field(default=100, ge=1, le=1000)


class DeliveryLogEntry(BaseModel):
    """One message as the log shows it."""

    id: int
    created_at: dt.datetime
    sent_at: dt.datetime | None
    day: dt.date
    school_id: int
    student_id: int
    student_name: str
    guardian_id: int
    guardian_name: str
    channel: str
    kind: str
    status: NotificationStatus
    reason: str
    attempts: int
    next_attempt_at: dt.datetime
    provider_id: str | None
    last_error: str | None
    subject: str
    text: str
    fallback_of: int | None
    digest_id: int | None


def _filters(query: DeliveryLogQuery) -> list[ColumnElement[bool]]:
    equal = {
        Notification.school_id: query.school_id,
        Notification.student_id: query.student_id,
        Notification.guardian_id: query.guardian_id,
        Notification.status: query.status,
        Notification.channel: query.channel,
    }
    where = [col(column) == value for column, value in equal.items() if value is not None]
    if query.day_from is not None:
        where.append(col(Notification.day) >= query.day_from)
    if query.day_to is not None:
        where.append(col(Notification.day) <= query.day_to)
    return where


def delivery_log(db: Session, query: DeliveryLogQuery) -> list[DeliveryLogEntry]:
    """The entries matching ``query``, newest first."""
    where = _filters(query)
    if query.before_id is not None:
        where.append(col(Notification.id) < query.before_id)
    found: Sequence = db.exec(
        select(Notification, Student.full_name, Guardian.full_name)
        .join(Student, col(Student.id) == Notification.student_id)
        .join(Guardian, col(Guardian.id) == Notification.guardian_id)
        .where(*where)
        .order_by(col(Notification.id).desc())
        .limit(query.limit)
    ).all()
    return [
        DeliveryLogEntry.model_validate(
            row.model_dump() | {"student_name": student, "guardian_name": guardian}
        )
        for row, student, guardian in found
    ]


def delivery_counts(db: Session, query: DeliveryLogQuery) -> dict[NotificationStatus, int]:
    """How many entries matching ``query`` (its page aside) are in each status."""
    counted = db.exec(
        select(Notification.status, func.count())
        .where(*_filters(query))
        .group_by(col(Notification.status))
    ).all()
    return {NotificationStatus(status): count for status, count in counted}
