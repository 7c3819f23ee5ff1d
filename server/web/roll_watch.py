"""Wakes the open live rolls of this web process when what they show may have changed, so that
an idle roll costs the database nothing (:mod:`server.web.live_roll` waits on it).

Attendance is written by other processes (ingest workers, other web workers, the absent job), so
there is no in-process event to wait for. One watcher per process and database listens instead,
on a connection of its own, in a thread of its own:

- **PostgreSQL** says what changed: triggers (migration 0007) send ``NOTIFY cg_roll`` with
  ``<class_id>:<YYYY-MM-DD>`` for every class and day whose marks a statement changed, and
  ``<class_id>:*`` when a class's students did. The watcher wakes only the rolls of that class
  (and day); they rebuild at once. If the connection is lost (the server restarted), the watcher
  reconnects with a growing pause.
- **SQLite** cannot say it across processes, but ``PRAGMA data_version`` on a connection that
  never writes changes whenever any other connection commits. The watcher reads it every
  :data:`POLL_S`; when it moved, it reads the signature of every class and day watched (two
  grouped queries, whatever their number: see :func:`class_day_signatures`) and wakes the rolls
  whose signature moved. Something is committed all day long (ingest, audit rows, the outbox),
  so one check per process rather than one per roll: with 50 rolls open, each checking its own
  took half a core beside 25 roll requests a second (``campusgate bench roll --streams 50``).

Whenever a watcher starts or restarts listening, it wakes every roll (on SQLite: checks every
signature) once: a change committed before then reached nobody.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from datetime import date
from typing import Any

import psycopg
from anyio import to_thread
from fastapi import FastAPI
from sqlalchemy import Engine, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from server.models import Attendance, Student

log = logging.getLogger(__name__)

CHANNEL = "cg_roll"
"""The PostgreSQL notification channel of migration 0007's triggers."""
ANY_DAY = "*"
POLL_S = 0.25
"""How often the SQLite watcher reads ``data_version``: the live roll's delay, at most."""
STOP_CHECK_S = 0.5
"""How long the PostgreSQL watcher waits for a notification before it looks whether to stop."""
RECONNECT_MIN_S = 0.25
RECONNECT_MAX_S = 10.0
APPLICATION_NAME = "campusgate roll watcher"
"""How the PostgreSQL watcher's connection shows in ``pg_stat_activity``."""
CONNECTION_OPTIONS = {
    "autocommit": True,
    "application_name": APPLICATION_NAME,
    "connect_timeout": 10,
    # A listener only reads, so without TCP keepalives it would wait forever on a connection
    # whose server vanished without closing it (a host that lost power): these notice in ~30 s.
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


Signature = tuple[Any, ...]
ClassDay = tuple[int, date]


def class_day_signatures(db: Session, keys: Collection[ClassDay]) -> dict[ClassDay, Signature]:
    """For each (class id, day) of ``keys``, what changes whenever the class's roll of the day
    may have: a mark written or removed, a student added, moved or edited (the newest
    ``updated_at`` and the row count of the class's attendance that day, and the same of its
    students). Two indexed queries however many keys."""
    classes = {class_id for class_id, _ in keys}
    marks = db.exec(
        select(Student.class_id, Attendance.date, func.max(Attendance.updated_at), func.count())
        .select_from(Attendance)
        .join(Student, col(Student.id) == Attendance.student_id)
        .where(
            col(Student.class_id).in_(classes),
            col(Attendance.date).in_({day for _, day in keys}),
        )
        .group_by(Student.class_id, Attendance.date)
    )
    students = db.exec(
        select(Student.class_id, func.max(Student.updated_at), func.count())
        .where(col(Student.class_id).in_(classes))
        .group_by(Student.class_id)
    )
    by_day = {(class_id, day): (latest, n) for class_id, day, latest, n in marks}
    by_class = {class_id: (latest, n) for class_id, latest, n in students}
    none = (None, 0)
    return {
        (class_id, day): (*by_day.get((class_id, day), none), *by_class.get(class_id, none))
        for class_id, day in keys
    }


def class_day_signature(db: Session, class_id: int, day: date) -> Signature:
    """:func:`class_day_signatures` of one class and day."""
    return class_day_signatures(db, [(class_id, day)])[class_id, day]


class Interest:
    """One open roll's registration: the class it shows, the day (None until the stream knows
    it: every change of the class wakes it meanwhile) and, for SQLite's watcher, the signature
    of that class and day the roll is up to date with."""

    def __init__(self, class_id: int) -> None:
        self.class_id = class_id
        self.day: date | None = None
        self.signature: Signature | None = None
        self._woken = asyncio.Event()

    def follow(self, day: date, signature: Signature | None) -> None:
        """The roll now shows ``day``, up to date with ``signature`` (None: not known, so the
        next check wakes it)."""
        self.day, self.signature = day, signature

    def wake(self) -> None:
        self._woken.set()

    def concerns(self, day: str) -> bool:
        """Whether a change of ``day`` (ISO date, or :data:`ANY_DAY`) may show on this roll."""
        return day == ANY_DAY or self.day is None or self.day.isoformat() == day

    async def wait(self, timeout: float) -> bool:
        """True as soon as woken, False after ``timeout`` seconds without a wake-up. Wake-ups
        that came while the stream was busy count as one: it reads the database afterwards."""
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self._woken.wait()
        except TimeoutError:
            return False
        self._woken.clear()
        return True


class RollWatcher:
    """The thread that listens to one database for one event loop, and the rolls it wakes.

    Subclasses implement :meth:`_listen` and :meth:`_deliver`; everything but the thread runs on
    the loop."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        self._interests: dict[int, set[Interest]] = {}
        self._stopping = threading.Event()
        self._pause_s = 0.0
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and wait for the thread to end (within a poll interval or so)."""
        self._stopping.set()
        self._thread.join()

    @contextmanager
    def watch(self, class_id: int) -> Iterator[Interest]:
        """Registers a roll of ``class_id`` for the duration of the block (call on the loop)."""
        interest = Interest(class_id)
        self._interests.setdefault(class_id, set()).add(interest)
        try:
            yield interest
        finally:
            interests = self._interests.get(class_id, set())
            interests.discard(interest)
            if not interests:
                self._interests.pop(class_id, None)

    # --- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.wait(self._pause_s):
            try:
                self._listen()
            except (psycopg.Error, sqlite3.Error, OSError) as exc:
                # The database went away (restarted, say): try again, ever more slowly.
                self._pause_s = min(max(2 * self._pause_s, RECONNECT_MIN_S), RECONNECT_MAX_S)
                log.warning(
                    "roll watcher lost the database",
                    extra={"error": str(exc).strip(), "retry_in_s": self._pause_s},
                )

    def _listen(self) -> None:
        """Listen until asked to stop; raise when the connection fails."""
        raise NotImplementedError

    def _listening(self) -> None:
        """Called by :meth:`_listen` once it listens: changes from now on will be seen, earlier
        ones perhaps not, so every roll checks once."""
        self._pause_s = 0.0
        self._post(None)

    def _post(self, payload: str | None) -> None:
        """Hand a change (None: anything) to the loop."""
        try:
            self._loop.call_soon_threadsafe(self._deliver, payload)
        except RuntimeError:  # the loop is closed: nobody is left to wake
            self._stopping.set()

    # --- the loop -------------------------------------------------------------------------------

    def _deliver(self, payload: str | None) -> None:
        """Wake the rolls ``payload`` concerns."""
        raise NotImplementedError

    def _all(self) -> list[Interest]:
        return [interest for interests in self._interests.values() for interest in interests]


class PostgresWatcher(RollWatcher):
    """``LISTEN cg_roll`` on a connection of its own, outside SQLAlchemy's pool."""

    def _listen(self) -> None:
        conninfo = self._engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        with psycopg.connect(conninfo, **CONNECTION_OPTIONS) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            self._listening()
            while not self._stopping.is_set():
                for notification in connection.notifies(timeout=STOP_CHECK_S):
                    self._post(notification.payload)

    def _deliver(self, payload: str | None) -> None:
        if payload is None:
            for interest in self._all():
                interest.wake()
            return
        class_id, _, day = payload.partition(":")
        if not class_id.isdigit():
            log.warning("roll watcher ignored a notification", extra={"payload": payload[:100]})
            return
        for interest in self._interests.get(int(class_id), ()):
            if interest.concerns(day):
                interest.wake()


class SqliteWatcher(RollWatcher):
    """``PRAGMA data_version`` every :data:`POLL_S` on a connection of its own that never
    writes (its own commits would not move it); when it moved, one check of the signatures."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(engine, loop)
        self._checking: asyncio.Task[None] | None = None
        self._again = False

    def _listen(self) -> None:
        path = self._engine.url.database
        assert path is not None
        with closing(sqlite3.connect(path, isolation_level=None)) as connection:
            seen = _data_version(connection)
            self._listening()
            while not self._stopping.wait(POLL_S):
                version = _data_version(connection)
                if version != seen:
                    seen = version
                    self._post(None)

    def _deliver(self, payload: str | None) -> None:
        # A commit while a check runs may have come after its reads: check once more after it.
        self._again = True
        if self._checking is None:
            self._checking = self._loop.create_task(self._check())

    async def _check(self) -> None:
        try:
            while self._again:
                self._again = False
                await self._compare()
        finally:
            self._checking = None

    async def _compare(self) -> None:
        """Wake the rolls whose class and day's signature moved, and those that do not know
        their day yet (their route read the roll at some moment during the check)."""
        interests = self._all()
        keys = {(i.class_id, i.day) for i in interests if i.day is not None}
        try:
            signatures = await to_thread.run_sync(_signatures, self._engine, keys) if keys else {}
        except SQLAlchemyError as exc:  # let every roll find out for itself
            log.warning("roll watcher could not check the rolls", extra={"error": str(exc)})
            signatures = {}
        for interest in interests:
            if interest.day is None:
                interest.wake()
                continue
            signature = signatures.get((interest.class_id, interest.day))
            if signature != interest.signature:  # None: the check failed, or missed a new day
                interest.signature = signature
                interest.wake()


def _signatures(engine: Engine, keys: Collection[ClassDay]) -> dict[ClassDay, Signature]:
    with Session(engine) as db:
        return class_day_signatures(db, keys)


def _data_version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA data_version").fetchone()[0]


_watchers: dict[tuple[Engine, asyncio.AbstractEventLoop], RollWatcher] = {}


def roll_watcher(engine: Engine) -> RollWatcher:
    """This process's watcher of ``engine``'s database, started by the first roll opened (call
    on the event loop that serves the rolls)."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _watchers if key[1].is_closed()]:
        _watchers.pop(key).stop()
    key = (engine, loop)
    if key not in _watchers:
        kind = PostgresWatcher if engine.dialect.name == "postgresql" else SqliteWatcher
        _watchers[key] = watcher = kind(engine, loop)
        watcher.start()
    return _watchers[key]


def stop_watchers() -> None:
    """Stop every watcher of this process."""
    while _watchers:
        _watchers.popitem()[1].stop()


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """The app's lifespan: its watchers stop with it."""
    try:
        yield
    finally:
        await to_thread.run_sync(stop_watchers)
