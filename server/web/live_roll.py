"""The live roll as Server-Sent Events: a snapshot of the class's roll, then the students whose
row changed, within a fraction of a second of the change.

Attendance is written by ingest workers in other processes (and by other web workers), so a
stream sleeps until this process's watcher of the database (:mod:`server.web.roll_watch`) wakes
it because its class's roll of the day may have changed, and then rebuilds the roll. It rebuilds
every :data:`REFRESH_S` too, because time alone turns "not yet" into "absent"; and it follows the
school's today by the clock, from the school's time zone it keeps (read again at each refresh),
so an idle roll asks the database nothing in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as day_time
from typing import Any
from zoneinfo import ZoneInfo

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session

from server.api.roll import class_roll
from server.models import School, SchoolClass, utc_now
from server.web.roll_watch import Interest, Signature

REFRESH_S = 30.0
HEARTBEAT_S = 15.0


def school_zone(db: Session, school_class: SchoolClass) -> ZoneInfo:
    """The time zone of the class's school."""
    school = db.get(School, school_class.school_id)
    assert school is not None
    return school.zone


def today_in(zone: ZoneInfo) -> date:
    """Today on the clock of ``zone``."""
    return utc_now().astimezone(zone).date()


def school_today(db: Session, school_class: SchoolClass) -> date:
    """Today on the class's school's clock."""
    return today_in(school_zone(db, school_class))


def _seconds_to_midnight(zone: ZoneInfo) -> float:
    now = utc_now().astimezone(zone)
    midnight = datetime.combine(now.date() + timedelta(days=1), day_time(0), zone)
    return midnight.timestamp() - now.timestamp()


def roll_json(db: Session, school_class: SchoolClass, day: date) -> dict[str, Any]:
    """The class's roll of ``day`` as of now, as JSON-ready data."""
    return class_roll(db, school_class, day, utc_now()).model_dump(mode="json")


@dataclass
class RollDiff:
    """Tells a stream what to send: remembers the last roll it sent, by student."""

    students: dict[int, dict[str, Any]] = field(default_factory=dict)

    def snapshot(self, roll: dict[str, Any]) -> dict[str, Any]:
        self.students = {s["student_id"]: s for s in roll["students"]}
        return roll

    def changes(self, roll: dict[str, Any]) -> dict[str, Any] | None:
        """The students that differ from the last roll sent (and those gone), with the new
        totals; None when nothing a teacher sees changed."""
        now = {s["student_id"]: s for s in roll["students"]}
        changed = [s for sid, s in now.items() if self.students.get(sid) != s]
        removed = [sid for sid in self.students if sid not in now]
        self.students = now
        if not changed and not removed:
            return None
        return {
            "as_of": roll["as_of"],
            "totals": roll["totals"],
            "students": changed,
            "removed": removed,
        }


def sse(event: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _read(engine: Engine, fn: Any, *args: Any) -> Any:
    with Session(engine) as db:
        return fn(db, *args)


async def roll_stream(
    engine: Engine,
    interest: Interest,
    school_class: SchoolClass,
    first: dict[str, Any],
    signature: Signature,
    fixed_day: date | None,
) -> AsyncIterator[str]:
    """The events of one teacher's open roll page, starting from the roll ``first`` (already
    read and audited by the caller after registering ``interest``, and after reading the
    ``signature`` of the class and day). Without ``fixed_day`` the roll follows the school's
    today, and a new day starts with a fresh snapshot."""
    diff = RollDiff()
    day = date.fromisoformat(first["date"])
    interest.follow(day, signature)
    yield "retry: 1000\n\n" + sse("snapshot", diff.snapshot(first))
    zone = await to_thread.run_sync(_read, engine, school_zone, school_class)
    built = sent = time.monotonic()
    while True:
        woken = await interest.wait(_quiet_s(built, sent, None if fixed_day else zone))
        today = fixed_day or today_in(zone)
        clock = time.monotonic()
        refresh = today != day or clock - built >= REFRESH_S
        if refresh:
            zone = await to_thread.run_sync(_read, engine, school_zone, school_class)
        if today != day:
            interest.follow(today, None)
        if refresh or woken:
            roll = await to_thread.run_sync(_read, engine, roll_json, school_class, today)
            built = clock
            if today != day:
                day = today
                yield sse("snapshot", diff.snapshot(roll))
                sent = clock
                continue
            update = diff.changes(roll)
            if update is not None:
                yield sse("update", update)
                sent = clock
                continue
        if clock - sent >= HEARTBEAT_S:
            yield ": keep-alive\n\n"
            sent = clock


def _quiet_s(built: float, sent: float, zone: ZoneInfo | None) -> float:
    """How long a stream may sleep unless woken: until its refresh, its heartbeat or, when it
    follows the school's today (``zone``), the school's midnight."""
    quiet = min(built + REFRESH_S, sent + HEARTBEAT_S) - time.monotonic()
    return quiet if zone is None else min(quiet, _seconds_to_midnight(zone))
