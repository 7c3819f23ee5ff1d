"""Group commit for the audit entries of reads.

Every read of students' data writes one audit row per student, committed before the data is
returned. Committed one request at a time, that is one disk sync per read (about 5 ms on SQLite
with ``synchronous=FULL``), and on SQLite one writer at a time: fifty teachers refreshing their
rolls would queue behind each other's syncs. So requests hand their rows to one writer thread
per database, which commits whatever has gathered in one transaction and then releases every
request in it. Each request still returns only after its own rows are durable; a batch that
fails is retried request by request, so one bad entry (a student deleted meanwhile) fails only
its own request.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert

from server.db import writer
from server.models import AuditLog

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 5_000


@dataclass(eq=False)
class _Pending:
    rows: list[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class AuditWriter:
    """The writer thread of one database; :meth:`write` blocks until the rows are committed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = writer(engine)
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Commit ``rows`` (``audit_log`` columns) and return; raise what the database raised."""
        if not rows:
            return
        pending = _Pending(rows)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            size = len(batch[0].rows)
            while size < MAX_BATCH_ROWS:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                size += len(batch[-1].rows)
            try:
                self._commit(batch)
            except Exception:
                log.warning("audit batch failed; retrying its requests one by one", exc_info=True)
                for pending in batch:
                    try:
                        self._commit([pending])
                    except Exception as exc:  # handed to the request, which fails with it
                        pending.error = exc
            for pending in batch:
                pending.done.set()

    def _commit(self, batch: list[_Pending]) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                insert(AuditLog.__table__),  # type: ignore[attr-defined]
                [row for pending in batch for row in pending.rows],
            )


_writers: dict[str, AuditWriter] = {}
_lock = threading.Lock()


def audit_writer(engine: Engine) -> AuditWriter:
    """The writer of ``engine``'s database in this process, started on first use (keyed by the
    URL, so the same database behind differently-optioned engines shares one writer)."""
    key = engine.url.render_as_string(hide_password=False)
    with _lock:
        if key not in _writers:
            _writers[key] = AuditWriter(engine)
        return _writers[key]
