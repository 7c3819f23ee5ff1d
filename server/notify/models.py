"""The notification tables: the outbox, guardians' push subscriptions, opt-outs, and the
choices that :mod:`server.notify.preferences` reads (a guardian's, a school's).

The outbox (:class:`Notification`) is written in the same transaction as the attendance change it
announces, so a committed change always has its messages and a rolled-back one never does; the
dispatcher only ever reads and updates it. Its ``idempotency_key`` (student × local date × session
× kind × guardian × channel) is UNIQUE, which is what makes a repeated event, a second ingest
worker or a re-run job harmless, and it travels to providers as their request or tracking id.

Which channels a guardian wants for a child, in order of preference, is the child's link
(:attr:`server.models.StudentGuardian.channel_preferences`, in key order); the rest of their
choices are per guardian here, and a guardian with no row gets the defaults.
"""

import datetime as dt
import uuid
from datetime import datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.models import utc_now
from server.sqltypes import UtcDateTime, enum_type


class NotificationStatus(StrEnum):
    """Where an outbox row stands.

    ``queued`` and ``held`` (quiet hours) wait for ``next_attempt_at``, then a dispatcher takes
    them; ``digest`` waits for the digest job, which folds it into one message and marks it
    ``digested``. ``sending`` is set before the provider is called, so a row a killed dispatcher
    left ``sending`` may have reached the provider. ``accepted``, ``failed`` and ``skipped`` are
    final.
    """

    QUEUED = "queued"
    HELD = "held"
    DIGEST = "digest"
    SENDING = "sending"
    ACCEPTED = "accepted"
    FAILED = "failed"
    SKIPPED = "skipped"
    DIGESTED = "digested"


DUE_STATUSES = (NotificationStatus.QUEUED, NotificationStatus.HELD, NotificationStatus.SENDING)
"""The statuses a dispatcher takes once ``next_attempt_at`` has come and no lease holds them."""

ALL_KINDS = "all"
"""The ``kind`` of an opt-out from every kind of message on a channel (a digest's opt-out)."""


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=UtcDateTime, **kwargs)


class Notification(SQLModel, table=True):
    """One message to one guardian on one channel: the outbox row and its delivery log entry."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notification_school_id_day", "school_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE")
    student_id: int = Field(foreign_key="student.id", ondelete="CASCADE", index=True)
    guardian_id: int = Field(foreign_key="guardian.id", ondelete="CASCADE", index=True)
    channel: str = Field(max_length=32)
    kind: str = Field(max_length=32, description="A MessageKind value, or 'digest'.")
    locale: str = Field(default="vi", max_length=8)
    day: dt.date = Field(description="The school-local date the news is about.")
    event_at: datetime = _timestamp(description="When it happened.")
    gate: str | None = Field(default=None, max_length=200, description="Gate name, as shown.")
    subject: str = Field(max_length=300)
    text: str = Field(sa_type=String(2000))
    short_text: str = Field(sa_type=String(1000))
    fields: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    reason: str = Field(default="", max_length=300, description="Why the row is as it is.")
    status: NotificationStatus = Field(sa_type=enum_type(NotificationStatus))
    attempts: int = Field(default=0, description="Times a dispatcher took the row to send it.")
    next_attempt_at: datetime = _timestamp()
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = _timestamp(default=None)
    provider_id: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _timestamp(default_factory=utc_now)
    sent_at: datetime | None = _timestamp(default=None)
    # Plain ids, not foreign keys: a delivery log entry outlives a corrected attendance row, and
    # the rows a fallback or digest points to share its student and guardian, so they are
    # erased together (and PostgreSQL needs no extra index to check them on every delete).
    attendance_id: int | None = Field(default=None, description="The attendance row behind it.")
    event_id: uuid.UUID | None = Field(default=None, description="The gate event behind it.")
    fallback_of: int | None = Field(
        default=None, description="The row whose permanent failure made this one."
    )
    digest_id: int | None = Field(
        default=None, description="For a digested row: the digest message that carried it."
    )


class PushSubscription(SQLModel, table=True):
    """A guardian's browser or installed dashboard app, as ``PushManager.subscribe`` gave it."""

    __tablename__ = "push_subscription"

    id: int | None = Field(default=None, primary_key=True)
    guardian_id: int = Field(foreign_key="guardian.id", ondelete="CASCADE", index=True)
    endpoint: str = Field(max_length=1000, unique=True)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    created_at: datetime = _timestamp(default_factory=utc_now)
    last_success_at: datetime | None = _timestamp(default=None)


class NotificationOptOut(SQLModel, table=True):
    """A guardian stopped one kind of message (or :data:`ALL_KINDS`) on one channel."""

    __tablename__ = "notification_opt_out"
    __table_args__ = (UniqueConstraint("guardian_id", "channel", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    guardian_id: int = Field(foreign_key="guardian.id", ondelete="CASCADE")
    channel: str = Field(max_length=32)
    kind: str = Field(max_length=32)
    created_at: datetime = _timestamp(default_factory=utc_now)


class NotificationPreference(SQLModel, table=True):
    """A guardian's choices beyond channels (see :class:`~server.notify.preferences.
    GuardianPreferences`); ``kinds`` None means every kind."""

    __tablename__ = "notification_preference"

    guardian_id: int = Field(foreign_key="guardian.id", ondelete="CASCADE", primary_key=True)
    locale: str = Field(default="vi", max_length=8)
    kinds: list[str] | None = Field(default=None, sa_type=JSON)
    quiet_start: time | None = None
    quiet_end: time | None = None
    digest: bool = False
    digest_at: time = time(18, 0)
    apprise_target: str | None = Field(
        default=None,
        max_length=500,
        description="The guardian's own destination on an Apprise channel (chat id, topic, URL).",
    )


class NotificationPolicy(SQLModel, table=True):
    """A school's switches: the kinds of message it does not send to anyone."""

    __tablename__ = "notification_policy"

    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE", primary_key=True)
    disabled_kinds: list[str] = Field(default_factory=list, sa_type=JSON)
