"""The live roll as Server-Sent Events: a snapshot of the class's roll, then the students whose
row changed, within a poll interval of the change.

Attendance is written by ingest workers in other processes (and by other web workers), so there
is no in-process event to wait for. Instead each stream polls a signature of the class's day that
costs one small indexed query (the newest ``updated_at`` and the row count of the class's
attendance that day, and the same of its students) and rebuilds the roll only when the signature
moved — or every :data:`REFRESH_S`, because time alone turns "not yet" into "absent".
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from server.api.roll import class_roll
from server.models import Attendance, School, SchoolClass, Student, utc_now

POLL_S = 0.25
REFRESH_S = 30.0
HEARTBEAT_S = 15.0


def class_day_signature(db: Session, class_id: int, day: date) -> tuple[Any, ...]:
    """What changes whenever the class's roll of ``day`` may have: a mark written or removed,
    a student added, moved or edited."""
    marks = db.exec(
        select(func.max(Attendance.updated_at), func.count())
        .select_from(Attendance)
        .join(Student, col(Student.id) == Attendance.student_id)
        .where(Student.class_id == class_id, Attendance.date == day)
    ).one()
    students = db.exec(
        select(func.max(Student.updated_at), func.count()).where(Student.class_id == class_id)
    ).one()
    return (*marks, *students)


def school_today(db: Session, school_class: SchoolClass) -> date:
    """Today on the class's school's clock."""
    school = db.get(School, school_class.school_id)
    assert school is not None
    return utc_now().astimezone(school.zone).date()


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
    school_class: SchoolClass,
    first: dict[str, Any],
    fixed_day: date | None,
) -> AsyncIterator[str]:
    """The events of one teacher's open roll page, starting from the roll ``first`` (already
    read and audited by the caller). Without ``fixed_day`` the roll follows the school's today,
    and a new day starts with a fresh snapshot."""
    diff = RollDiff()
    day = date.fromisoformat(first["date"])
    yield "retry: 1000\n\n" + sse("snapshot", diff.snapshot(first))
    signature = await to_thread.run_sync(_read, engine, class_day_signature, school_class.id, day)
    built = sent = time.monotonic()
    while True:
        await asyncio.sleep(POLL_S)
        today = fixed_day or await to_thread.run_sync(_read, engine, school_today, school_class)
        now_signature = await to_thread.run_sync(
            _read, engine, class_day_signature, school_class.id, today
        )
        clock = time.monotonic()
        if today != day or now_signature != signature or clock - built >= REFRESH_S:
            roll = await to_thread.run_sync(_read, engine, roll_json, school_class, today)
            built, signature = clock, now_signature
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
