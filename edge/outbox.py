"""The gate's store-and-forward outbox: every event is on disk before anyone tries to send it.

A gate loses power and network, so an event is first committed to a SQLite file (WAL,
``synchronous=FULL``: durable once :meth:`Outbox.put` returns, even through a power cut) and
leaves it only when the server's receipt says the event is in the server's database
(:meth:`Outbox.remove_stored`). The broker's PUBACK is not enough: it says only that the broker
took the event, and a broker can still drop it (Mosquitto forgets shared subscriptions across a
restart). Each PUBACK without a receipt yet is counted in ``attempts``
(:meth:`Outbox.acknowledged`), on disk so that the wait before the next try keeps growing across
restarts of the gate.

Rows are numbered by an AUTOINCREMENT ``seq`` that is never reused, even after the table empties,
so "send everything after seq N" keeps the order the events happened in. The outbox is bounded
and refuses, loudly, to grow past its capacity rather than silently dropping the oldest or the
newest events. A file written before receipts existed (no ``attempts`` column) is migrated in
place when opened; its events are kept.

Threads: the inference loop writes while the MQTT sender reads and removes. One connection
(``check_same_thread=False``) is shared behind a lock: every operation is a single short
statement or transaction, SQLite would serialise the writes anyway, and one connection lets the
outbox keep an exact depth counter without a ``COUNT(*)`` over up to 100,000 rows on every put.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 100_000
_SEQS_PER_QUERY = 500  # bound parameters per IN list, well below SQLite's limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
)
"""


class OutboxFull(RuntimeError):
    """The outbox holds ``capacity`` events; the new one was not stored."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One stored message, waiting for the server's receipt; ``attempts`` counts the broker's
    PUBACKs for it so far."""

    seq: int
    topic: str
    payload: bytes
    event_id: str
    attempts: int = 0


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
        self._migrate()
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        log.info(
            "outbox opened",
            extra={"path": str(self.path), "depth": self._depth, "capacity": capacity},
        )

    def _migrate(self) -> None:
        """Add what an outbox file from before receipts lacks; gates in the field have one."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "attempts" not in columns:
            self._db.execute("ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
            log.info("outbox migrated: added attempts", extra={"path": str(self.path)})

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
                    f"for the server's receipt); event {event_id} was not stored"
                )
            cursor = self._db.execute(
                "INSERT INTO outbox (event_id, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                (event_id, topic, payload, time.time()),
            )
            self._depth += 1
            return cursor.lastrowid

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[OutboxItem]:
        """Up to ``limit`` stored messages with a seq above ``after_seq``, oldest first."""
        return self._select("WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))

    def items(self, seqs: Iterable[int]) -> list[OutboxItem]:
        """The messages among ``seqs`` that are still stored, oldest first."""
        wanted = sorted(set(seqs))
        found: list[OutboxItem] = []
        for start in range(0, len(wanted), _SEQS_PER_QUERY):
            chunk = wanted[start : start + _SEQS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            found += self._select(f"WHERE seq IN ({marks}) ORDER BY seq", chunk)
        return found

    def _select(self, where: str, params: Sequence[object]) -> list[OutboxItem]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, topic, payload, event_id, attempts FROM outbox {where}", params
            ).fetchall()
        return [
            OutboxItem(seq, topic, bytes(blob), event, n) for seq, topic, blob, event, n in rows
        ]

    def acknowledged(self, *seqs: int) -> dict[int, int]:
        """Count one more attempt for each message the broker acknowledged (PUBACK), in one
        transaction; returns seq -> attempts so far for those still stored (a receipt may have
        removed one already). The message stays: only the server's receipt removes it."""
        counted: dict[int, int] = {}
        with self._lock, self._transaction():
            for seq in seqs:
                # fetchall: a RETURNING statement left unfinished would block the COMMIT.
                for (attempts,) in self._db.execute(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ? RETURNING attempts",
                    (seq,),
                ).fetchall():
                    counted[seq] = attempts
        return counted

    def remove_stored(self, event_ids: Iterable[str]) -> list[int]:
        """Forget the messages of events the server has stored, in one transaction; returns
        their seqs. Ids not in the outbox (never here, or already removed) are ignored. Batching
        matters when a long backlog drains: one fsync per receipt, not per event."""
        removed: list[int] = []
        with self._lock:
            with self._transaction():
                for event_id in event_ids:
                    removed += (
                        seq
                        for (seq,) in self._db.execute(
                            "DELETE FROM outbox WHERE event_id = ? RETURNING seq", (event_id,)
                        ).fetchall()
                    )
            self._depth -= len(removed)
        return removed

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction (one fsync) around several statements; the caller holds the lock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def depth(self) -> int:
        """How many messages are waiting: not sent yet, or sent and without a receipt."""
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
