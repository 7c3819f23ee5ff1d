"""The outbox: messages written in the same transaction as the attendance change they announce.

:func:`enqueue_for_changes` runs inside the caller's transaction (ingest's batch, a teacher's
change, the absent job), so the messages commit with the change or not at all; the dispatcher
sends them later. Per change, every guardian linked to the child who should hear of it (the
school's switch, the guardian's kinds, channels and opt-outs: :func:`~server.notify.preferences.
decide`) gets one row on their first wanted channel; the dispatcher adds a row on the next channel
only if that one fails for good. Quiet hours make the row ``held`` until they end, a daily digest
makes it wait for the digest job.

Rows are inserted with ``ON CONFLICT DO NOTHING`` on the idempotency key, so an event delivered
twice, the same change seen by two ingest workers, or a re-run job never makes a second message.
News older than :data:`STALE_AFTER` (a gate's backlog after days offline, the absent job catching
up after downtime) is history, not news, and is not sent.

This module must never fail the caller's transaction over one bad message: a guardian's unusable
preferences or a name that cannot be rendered is logged and that one message left out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row
from sqlmodel import Session, col, select

from server.db import in_chunks, insert_or_ignore
from server.models import (
    Attendance,
    AttendanceStatus,
    Device,
    LeaveRequest,
    School,
    SchoolClass,
    SchoolSession,
    Site,
    Student,
    StudentGuardian,
    utc_now,
)
from server.notify.messages import MessageContext, RenderedMessage, render, zone_info
from server.notify.models import (
    Notification,
    NotificationPolicy,
    NotificationPreference,
    NotificationStatus,
)
from server.notify.opt_out import OptedOut, opted_out, wanted_channels
from server.notify.preferences import (
    Action,
    GuardianPreferences,
    QuietHours,
    SchoolPolicy,
    decide,
)
from server.notify.templates import Locale, MessageKind

if TYPE_CHECKING:
    from broker.payloads import Event
    from server.attendance import Placement, RowKey

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=12)
NO_CLASS = "-"
"""Shown for a student not (yet) placed in a class: the templates need a class name."""

_STATUS_KIND = {
    AttendanceStatus.PRESENT: MessageKind.ARRIVED,
    AttendanceStatus.LATE: MessageKind.LATE,
    AttendanceStatus.ABSENT: MessageKind.ABSENT,
    AttendanceStatus.EXCUSED: MessageKind.EXCUSED,
}
_ROW_STATUS = {
    Action.DELIVER_NOW: NotificationStatus.QUEUED,
    Action.HOLD_UNTIL: NotificationStatus.HELD,
    Action.DIGEST: NotificationStatus.DIGEST,
}


@dataclass(frozen=True, slots=True)
class AttendanceChange:
    """Something about a student a guardian may want to hear of."""

    student_id: int
    kind: MessageKind
    at: datetime
    """When it happened (aware): the gate's timestamp, or when the school decided."""
    day: date | None = None
    """The school-local date it counts for; None: the local date of ``at``."""
    session_id: int | None = None
    """The session it is about; None: the whole day (one message a day of this kind)."""
    gate: str | None = None
    """The gate's device id, for events from a gate."""
    reason: str | None = None
    attendance_id: int | None = None
    event_id: uuid.UUID | None = None


def idempotency_key(change: AttendanceChange, day: date, guardian_id: int, channel: str) -> str:
    """``st{student}:{date}:{ss{session}|day}:{kind}:g{guardian}:{channel}`` — short enough to
    be eSMS's RequestId as it is, so an operator finds it in the provider's console."""
    session = f"ss{change.session_id}" if change.session_id is not None else "day"
    about = f"st{change.student_id}:{day.isoformat()}:{session}:{change.kind}"
    return f"{about}:g{guardian_id}:{channel}"


def key_for_channel(key: str, channel: str) -> str:
    """The same message's key on another channel (the channel is the key's last part)."""
    return f"{key.rpartition(':')[0]}:{channel}"


# --- changes, as the attendance rules see them ------------------------------------------------


def gate_changes(
    rows: Mapping[RowKey, Row],
    facts: Mapping[RowKey, tuple[Placement, list[Event]]],
    updates: Sequence[dict[str, Any]],
) -> list[AttendanceChange]:
    """What gate events changed for parents: a first ``in`` (arrived, or late by the row's new
    status) and a later ``out`` (left). ``rows`` are the attendance rows before, ``updates``
    the values :func:`server.attendance.apply_gate_events` wrote, by ``row_id``."""
    written = {update["row_id"]: update for update in updates}
    changes = []
    for key, (_, events) in facts.items():
        before, after = rows[key], written.get(rows[key].id)
        if after is None:
            continue
        student_id, day, session_id = key
        common = {"day": day, "session_id": session_id, "attendance_id": before.id}
        if before.first_in is None and after["first_in"] is not None:
            first = min((e for e in events if e.direction == "in"), key=lambda e: e.ts)
            kind = MessageKind.LATE if after["status"] == AttendanceStatus.LATE else None
            changes.append(
                AttendanceChange(
                    student_id,
                    kind or MessageKind.ARRIVED,
                    first.ts,
                    gate=first.device,
                    event_id=first.event_id,
                    **common,
                )
            )
        if after["last_out"] is not None and after["last_out"] != before.last_out:
            last = max((e for e in events if e.direction == "out"), key=lambda e: e.ts)
            changes.append(
                AttendanceChange(
                    student_id,
                    MessageKind.LEFT,
                    last.ts,
                    gate=last.device,
                    event_id=last.event_id,
                    **common,
                )
            )
    return changes


def card_mismatches(placed: Iterable[tuple[Placement, Event]]) -> list[AttendanceChange]:
    """A card tapped where the camera saw another face or none: the card's owner's guardians
    hear of it (once a day), since it may be in someone else's hand."""
    return [
        AttendanceChange(
            placement.student.id,
            MessageKind.CARD_WITHOUT_FACE,
            event.ts,
            gate=event.device,
            event_id=event.event_id,
        )
        for placement, event in placed
        if placement.student is not None and event.face_check in ("mismatch", "missing")
    ]


def status_change(row: Attendance, before: str | None) -> list[AttendanceChange]:
    """A person set ``row``'s status (it was ``before``; None for a new row): news when the
    status is different."""
    status = AttendanceStatus(row.status)
    if before is not None and AttendanceStatus(before) is status:
        return []
    at = row.updated_at
    if status in (AttendanceStatus.PRESENT, AttendanceStatus.LATE) and row.first_in is not None:
        at = row.first_in
    return [
        AttendanceChange(
            row.student_id,
            _STATUS_KIND[status],
            at,
            row.date,
            row.session_id,
            reason=row.note,
            attendance_id=row.id,
        )
    ]


def leave_approved(leave: LeaveRequest, sessions_excused: int) -> list[AttendanceChange]:
    """One "excused" message per approved leave (not one per session it covers), dated its
    first day; none when the leave excused nothing (no school day, or all set by hand)."""
    if not sessions_excused:
        return []
    return [
        AttendanceChange(
            leave.student_id,
            MessageKind.EXCUSED,
            leave.decided_at or utc_now(),
            leave.starts_on,
            leave.session_id,
            reason=leave.note or None,
        )
    ]


def absences(
    inserted: Iterable[Row], day: date, session: SchoolSession, school: School
) -> list[AttendanceChange]:
    """The absent job's new ``absent`` rows (id, student_id, status), as of the moment the
    session's ``absent_after`` passed — when the absence became a fact, whenever the job ran."""
    at = datetime.combine(day, session.absent_after, school.zone)
    return [
        AttendanceChange(
            row.student_id, MessageKind.ABSENT, at, day, session.id, attendance_id=row.id
        )
        for row in inserted
        if row.status == AttendanceStatus.ABSENT
    ]


# --- who hears of it ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Child:
    name: str
    class_name: str
    school_id: int
    school_name: str
    policy: SchoolPolicy


@dataclass(frozen=True, slots=True)
class _Guardian:
    id: int
    channel_preferences: dict[str, bool]
    preference: NotificationPreference | None
    opted: OptedOut

    def preferences(self, kind: str) -> GuardianPreferences:
        """As :func:`decide` takes them; ValueError when the stored choices are unusable."""
        choices: dict[str, Any] = {
            "channels": wanted_channels(self.channel_preferences, self.opted, kind)
        }
        stored = self.preference
        if stored is not None:
            choices["digest"], choices["digest_at"] = stored.digest, stored.digest_at
            if stored.kinds is not None:
                choices["kinds"] = frozenset(stored.kinds)
            if stored.quiet_start is not None and stored.quiet_end is not None:
                choices["quiet_hours"] = QuietHours(start=stored.quiet_start, end=stored.quiet_end)
        return GuardianPreferences.model_validate(choices)

    @property
    def locale(self) -> Locale:
        locale = self.preference.locale if self.preference else "vi"
        return "en" if locale == "en" else "vi"


class _Audience:
    """The students a batch of changes is about and their guardians, in a few queries."""

    def __init__(self, db: Session, student_ids: set[int]) -> None:
        self.children: dict[int, _Child] = {}
        self.guardians: dict[int, list[_Guardian]] = {}
        links = []
        for chunk in in_chunks(sorted(student_ids)):
            for sid, name, class_name, school_id, school, zone, disabled in db.exec(
                select(
                    Student.id,
                    Student.full_name,
                    SchoolClass.name,
                    School.id,
                    School.name,
                    School.timezone,
                    NotificationPolicy.disabled_kinds,
                )
                .join(School, col(School.id) == Student.school_id)
                .outerjoin(SchoolClass, col(SchoolClass.id) == Student.class_id)
                .outerjoin(NotificationPolicy, col(NotificationPolicy.school_id) == School.id)
                .where(col(Student.id).in_(chunk))
            ):
                policy = _policy(school_id, zone, disabled)
                self.children[sid] = _Child(name, class_name or NO_CLASS, school_id, school, policy)
            links += db.exec(
                select(StudentGuardian, NotificationPreference)
                .outerjoin(
                    NotificationPreference,
                    col(NotificationPreference.guardian_id) == StudentGuardian.guardian_id,
                )
                .where(col(StudentGuardian.student_id).in_(chunk))
                .order_by(col(StudentGuardian.student_id), col(StudentGuardian.guardian_id))
            ).all()
        opted = opted_out(db, (link.guardian_id for link, _ in links))
        for link, preference in links:
            self.guardians.setdefault(link.student_id, []).append(
                _Guardian(
                    link.guardian_id,
                    dict(link.channel_preferences or {}),
                    preference,
                    opted.get(link.guardian_id, frozenset()),
                )
            )


def _policy(school_id: int, zone: str, disabled: list[str] | None) -> SchoolPolicy:
    try:
        return SchoolPolicy(zone=zone, disabled_kinds=frozenset(disabled or ()))
    except ValueError:
        # An unknown kind in the school's switches must not silence the whole school: keep
        # the kinds that exist.
        log.error(
            "unknown kinds in a school's notification switches ignored",
            extra={"school": school_id, "disabled_kinds": disabled},
        )
        known = {kind for kind in disabled or () if kind in set(MessageKind)}
        return SchoolPolicy(zone=zone, disabled_kinds=frozenset(known))


def _gate_names(db: Session, changes: Sequence[AttendanceChange]) -> dict[tuple[int, str], str]:
    """(school id, device id) → the name a parent sees ("Cổng chính"), where one is set."""
    device_ids = sorted({c.gate for c in changes if c.gate})
    names: dict[tuple[int, str], str] = {}
    for chunk in in_chunks(device_ids):
        for device_id, name, school_id in db.exec(
            select(Device.device_id, Device.name, Site.school_id)
            .join(Site, col(Site.id) == Device.site_id)
            .where(col(Device.device_id).in_(chunk))
        ):
            if name:
                names[(school_id, device_id)] = name
    return names


# --- writing the rows ---------------------------------------------------------------------------


def enqueue_for_changes(
    db: Session, changes: Iterable[AttendanceChange], *, now: datetime | None = None
) -> int:
    """Write the outbox rows for ``changes`` in the caller's transaction (see the module's
    docstring); returns how many rows are new. ``now`` is for tests: the moment quiet hours and
    staleness are judged at."""
    changes = list(changes)
    if not changes:
        return 0
    now = now or utc_now()
    audience = _Audience(db, {c.student_id for c in changes})
    gate_names = _gate_names(db, changes)
    rows = []
    for change in changes:
        child = audience.children.get(change.student_id)
        if child is None:
            continue  # erased in the meantime
        if now - change.at > STALE_AFTER:
            log.info(
                "stale news not sent",
                extra={"student": change.student_id, "kind": change.kind, "at": change.at},
            )
            continue
        day = change.day or change.at.astimezone(zone_info(child.policy.zone)).date()
        gate = gate_names.get((child.school_id, change.gate or ""), change.gate)
        about = {
            "school_id": child.school_id,
            "student_id": change.student_id,
            "kind": str(change.kind),
            "day": day,
            "event_at": change.at,
            "gate": gate,
            "attempts": 0,
            "created_at": now,
            "attendance_id": change.attendance_id,
            "event_id": change.event_id,
        }
        rendered: dict[Locale, RenderedMessage] = {}
        for guardian in audience.guardians.get(change.student_id, []):
            try:
                preferences = guardian.preferences(change.kind)
                decision = decide(change.kind, now, preferences, child.policy)
                if decision.action is Action.SKIP:
                    continue
                locale = guardian.locale
                if locale not in rendered:
                    rendered[locale] = render(change.kind, locale, _context(change, child, gate))
            except ValueError as exc:
                log.error(
                    "notification left out",
                    extra={"student": change.student_id, "guardian": guardian.id, "error": exc},
                )
                continue
            channel = preferences.channels[0]
            rows.append(
                about
                | message_columns(rendered[locale], locale)
                | {
                    "idempotency_key": idempotency_key(change, day, guardian.id, channel),
                    "guardian_id": guardian.id,
                    "channel": channel,
                    "reason": decision.reason,
                    "status": _ROW_STATUS[decision.action],
                    "next_attempt_at": decision.at or now,
                }
            )
    # In key order, so two transactions inserting overlapping keys queue instead of deadlocking.
    rows.sort(key=lambda row: row["idempotency_key"])
    return len(insert_or_ignore(db, Notification, rows, ["idempotency_key"], returning=["id"]))


def enqueue_for_change(db: Session, change: AttendanceChange) -> int:
    """:func:`enqueue_for_changes` for one change."""
    return enqueue_for_changes(db, [change])


def _context(change: AttendanceChange, child: _Child, gate: str | None) -> MessageContext:
    return MessageContext(
        student_name=child.name,
        class_name=child.class_name,
        at=change.at,
        gate=gate,
        school_name=child.school_name,
        reason=change.reason,
        zone=child.policy.zone,
    )


def message_columns(message: RenderedMessage, locale: Locale) -> dict[str, Any]:
    """A rendered message as outbox columns (the digest job writes its own the same way)."""
    return {
        "locale": locale,
        "subject": message.subject,
        "text": message.text,
        "short_text": message.short_text_unaccented,
        "fields": message.fields,
    }
