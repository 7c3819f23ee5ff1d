"""A fair turn at SQLite's one write lock, across threads and processes.

SQLite lets one transaction write at a time; a connection that finds the lock taken sleeps and
tries again, sleeping longer each time (up to 100 ms at a go). With two ingest workers and a
dispatcher writing all the time, a writer that lost a few rounds sleeps through the moments the
lock is free and its batch waits hundreds of milliseconds: at 200 events/s the ingest p95 was
400 ms with two workers against 16 ms with one. So every writing transaction first takes an
``flock`` on a file beside the database — the kernel hands it on the moment it is released —
and only then ``BEGIN IMMEDIATE``; it lets go once the transaction has committed or rolled back.

Each connection has its own descriptor, so threads of one process queue like processes do. A
writer never waits more than SQLite's own busy timeout: past it the transaction fails with
"database is locked", as it would without this lock.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from pathlib import Path

POLL_S = 0.0005
"""How often a waiting writer tries the lock: fine enough to be fair, coarse enough to be cheap."""


class WriterLockedConnection(sqlite3.Connection):
    """A pysqlite connection that can hold the database's writer lock for one transaction
    (``factory`` of :func:`sqlite3.connect`)."""

    lock_path: Path | None = None
    timeout_s: float = 30.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._lock_fd: int | None = None
        self._held = False

    def take_writer_lock(self) -> None:
        """Block until this connection holds the writer lock (sqlite3.OperationalError after
        the busy timeout)."""
        if self._held or self.lock_path is None:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(POLL_S)
        self._held = True

    def _release(self) -> None:
        if self._held and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._held = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def connection_factory(database: Path, timeout_s: float) -> type[WriterLockedConnection]:
    """A :class:`WriterLockedConnection` class for the database file ``database``."""
    return type(
        "WriterLockedConnection",
        (WriterLockedConnection,),
        {"lock_path": database.with_name(database.name + ".writer-lock"), "timeout_s": timeout_s},
    )
