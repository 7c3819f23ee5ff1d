"""The daily digest: the messages a guardian chose to get once a day, folded into one.

Rows waiting for a digest (status ``digest``) carry the time it is due in ``next_attempt_at``.
Once due, the rows of one guardian, child, channel and day with the same due time become one
``digest`` row (queued for the dispatcher like any message) and are marked ``digested`` with a
link to it. The digest row's idempotency key names that due time, so running the job twice, or in
two dispatchers at once, makes one digest; and news that arrives after a digest went out (an event
after the digest hour) waits for the next one instead of being lost.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from server.db import insert_or_ignore, session_scope
from server.models import School
from server.notify.messages import DigestEvent, MessageContext, render_digest
from server.notify.models import (
    Notification,
    NotificationPolicy,
    NotificationPreference,
    NotificationStatus,
)
from server.notify.outbox import message_columns
from server.notify.preferences import unwanted
from server.notify.templates import Locale, MessageKind

DIGEST_KIND = "digest"

_Group = tuple[int, int, str, date, datetime, str]
"""(guardian, student, channel, day, due, locale): the rows one digest carries."""


def build_digests(engine: Engine, now: datetime) -> int:
    """Fold every due digest row into its digest message; returns how many digests are new."""
    due = (
        select(Notification)
        .where(
            Notification.status == NotificationStatus.DIGEST,
            col(Notification.next_attempt_at) <= now,
        )
        .order_by(col(Notification.event_at), col(Notification.id))
    )
    with Session(engine) as db:  # a read first, so an idle job never takes SQLite's write lock
        if db.exec(due.limit(1)).first() is None:
            return 0
    made = 0
    with session_scope(engine, write=True) as db:
        groups: dict[_Group, list[Notification]] = defaultdict(list)
        rows = list(db.exec(due.with_for_update()))
        for row in _drop_unwanted(db, rows):
            key = (row.guardian_id, row.student_id, row.channel, row.day, row.next_attempt_at)
            groups[(*key, row.locale)].append(row)
        zones = dict(db.exec(select(School.id, School.timezone)).all())
        for group, rows in groups.items():
            digest_id, new = _digest(db, group, rows, zones[rows[0].school_id], now)
            made += new
            db.execute(
                update(Notification)
                .where(col(Notification.id).in_([row.id for row in rows]))
                .values(status=NotificationStatus.DIGESTED, digest_id=digest_id)
            )
    return made


def _drop_unwanted(db: Session, rows: list[Notification]) -> list[Notification]:
    """The rows still wanted; the others (their kind switched off by the school, or no longer
    chosen by the guardian, since they were written) are marked skipped with the reason."""
    schools = {row.school_id for row in rows}
    guardians = {row.guardian_id for row in rows}
    disabled = dict(
        db.exec(
            select(NotificationPolicy.school_id, NotificationPolicy.disabled_kinds).where(
                col(NotificationPolicy.school_id).in_(schools)
            )
        ).all()
    )
    kinds = dict(
        db.exec(
            select(NotificationPreference.guardian_id, NotificationPreference.kinds).where(
                col(NotificationPreference.guardian_id).in_(guardians)
            )
        ).all()
    )
    kept = []
    for row in rows:
        reason = unwanted(row.kind, disabled.get(row.school_id) or (), kinds.get(row.guardian_id))
        if reason is None:
            kept.append(row)
            continue
        row.status, row.reason = NotificationStatus.SKIPPED, reason
        db.add(row)
    return kept


def _digest(
    db: Session, group: _Group, rows: list[Notification], zone: str, now: datetime
) -> tuple[int, bool]:
    """The digest row for ``group`` (id, and whether this call made it)."""
    guardian_id, student_id, channel, day, due, locale = group
    first = rows[0]
    context = MessageContext(
        student_name=first.fields["student_name"],
        class_name=first.fields["class_name"],
        at=now,
        school_name=first.fields.get("school_name") or None,
        zone=zone,
    )
    events = [DigestEvent(MessageKind(row.kind), row.event_at, row.gate) for row in rows]
    language: Locale = "en" if locale == "en" else "vi"
    message = render_digest(language, context, day, events)
    about = f"st{student_id}:{day.isoformat()}:{DIGEST_KIND}-{due:%Y%m%dT%H%M}"
    key = f"{about}:g{guardian_id}:{channel}"
    row = message_columns(message, language) | {
        "idempotency_key": key,
        "school_id": first.school_id,
        "student_id": student_id,
        "guardian_id": guardian_id,
        "channel": channel,
        "kind": DIGEST_KIND,
        "day": day,
        "event_at": now,
        "reason": f"daily digest of {len(rows)} message(s)",
        "status": NotificationStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    inserted = insert_or_ignore(db, Notification, [row], ["idempotency_key"], ["id"])
    if inserted:
        return inserted[0].id, True
    existing = db.exec(select(Notification.id).where(Notification.idempotency_key == key)).one()
    return existing, False
