"""The gate's store-and-forward outbox: every event is on disk before anyone tries to send it.

A gate loses power and network, so an event is first committed to a SQLite file (WAL,
``synchronous=FULL``: durable once :meth:`Outbox.put` returns, even through a power cut) and
leaves it only when the broker has acknowledged it. Rows are numbered by an AUTOINCREMENT ``seq``
that is never reused, even after the table empties, so "send everything after seq N" keeps the
order the events happened in. The outbox is bounded and refuses, loudly, to grow past its
capacity rather than silently dropping the oldest or the newest events.

Threads: the inference loop writes while the MQTT sender reads and removes. One connection
(``check_same_thread=False``) is shared behind a lock: every operation is a single short
statement, SQLite would serialise the writes anyway, and one connection lets the outbox keep an
exact depth counter without a ``COUNT(*)`` over up to 100,000 rows on every put.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
)
"""


class OutboxFull(RuntimeError):
    """The outbox holds ``capacity`` events; the new one was not stored."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored message, waiting for the broker's acknowledgement."""

    seq: int
    topic: str
    payload: bytes
    event_id: str


class Outbox:
    """A bounded, durable, ordered queue of messages in one SQLite file."""

    def __init__(self, path: str | Path, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.path = Path(path)
        self.capacity = capacity
        self._lock = threading.Lock()
        # Autocommit: each statement is its own transaction, committed (and fsynced) on return.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            self._db.close()
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        log.info(
            "outbox opened",
            extra={"path": str(self.path), "depth": self._depth, "capacity": capacity},
        )

    def put(self, topic: str, payload: bytes, event_id: str) -> int:
        """Store a message and return its seq; it is on disk when this returns.

        A repeated ``event_id`` stores nothing and returns the seq of the first copy. Raises
        :class:`OutboxFull` when the outbox is at capacity; nothing is dropped to make room.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM outbox WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is not None:
                return row[0]
            if self._depth >= self.capacity:
                log.error(
                    "outbox full: event refused",
                    extra={
                        "path": str(self.path),
                        "event_id": event_id,
                        "depth": self._depth,
                        "capacity": self.capacity,
                    },
                )
                raise OutboxFull(
                    f"outbox {self.path} is full ({self._depth} of {self.capacity} events waiting "
                    f"for the broker); event {event_id} was not stored"
                )
            cursor = self._db.execute(
                "INSERT INTO outbox (event_id, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                (event_id, topic, payload, time.time()),
            )
            self._depth += 1
            return cursor.lastrowid

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[OutboxItem]:
        """Up to ``limit`` stored messages with a seq above ``after_seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, event_id FROM outbox WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxItem(seq, topic, bytes(blob), event) for seq, topic, blob, event in rows]

    def remove(self, *seqs: int) -> None:
        """Forget messages the broker has acknowledged, in one transaction; unknown seqs are
        ignored. Batching matters when a long backlog drains: one fsync per batch, not per event.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                removed = self._db.executemany(
                    "DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in seqs]
                ).rowcount
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._depth -= removed

    def depth(self) -> int:
        """How many messages are waiting."""
        with self._lock:
            return self._depth

    def oldest_age_s(self) -> float | None:
        """Seconds since the oldest waiting message was stored, or None when the outbox is empty."""
        with self._lock:
            row = self._db.execute("SELECT created_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else max(0.0, time.time() - row[0])

    def close(self) -> None:
        """Close the file; every stored message stays on disk for the next open."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
